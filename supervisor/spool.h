/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The spool: every job's captured stdout and stderr, in files of a directory of the daemon's own, not in
 * its heap. Files are made at a stream's first byte and removed with the job. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "job.h"

typedef struct Spool Spool;

/* The spool leaves this share of its file system free, within these bounds, for the job store: its
 * write-ahead log alone grows to about 4 MiB between checkpoints. */
#define SPOOL_KEEP_FREE_PERCENT 5
#define SPOOL_KEEP_FREE_MIN (8ULL * 1024ULL * 1024ULL)
#define SPOOL_KEEP_FREE_MAX (256ULL * 1024ULL * 1024ULL)

/* The spool in dir, which must exist; its files are made 0600. */
int spool_open(const char *dir, Spool **ret);
Spool *spool_free(Spool *s);
const char *spool_get_path(const Spool *s);

/* Opens job id's stream file for appending, making it if needed; returns the fd. */
int spool_open_write(Spool *s, uint64_t id, JobStream stream);
/* Appends size bytes to a stream file opened by spool_open_write(), or as many as fit before the file
 * system's free space falls to what the spool leaves free. Returns the bytes written (fewer than size
 * when it fills), or a negative errno (-ENOSPC) when none could be. */
ssize_t spool_write(int fd, const void *data, size_t size);
/* Opens job id's stream file read-only, making it (empty) if needed, so that a reader may follow it. */
int spool_open_read(Spool *s, uint64_t id, JobStream stream);
/* Reads size bytes from the start of job id's stream into buf; a missing file reads as empty. Returns
 * the bytes read. */
int spool_read(Spool *s, uint64_t id, JobStream stream, void *buf, size_t size, size_t *ret_read);
/* The size of job id's stream file; -ENOENT if there is none. */
int spool_size(Spool *s, uint64_t id, JobStream stream, uint64_t *ret);
/* Removes job id's files. */
void spool_remove(Spool *s, uint64_t id);
/* Removes every file of a job that keep() says is gone: what a crash left behind. */
void spool_prune(Spool *s, bool (*keep)(uint64_t id, void *userdata), void *userdata);
