/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What every executor that runs a job as a child process of the daemon shares: the job's environment, the
 * pipes of its streams, reading what it writes and feeding it its input. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "job.h"

/* Bytes read from one stream per wakeup: enough for throughput, small enough to stay fair. */
#define JOB_IO_READ_CHUNK (64U * 1024U)
#define JOB_IO_READS_PER_WAKEUP 16
/* Pipes of jobs that move data in bulk grow to this (the default pipe-max-size). */
#define JOB_IO_BULK_PIPE_SIZE (1024 * 1024)

/* The daemon's environment minus what belongs to its own service manager (NOTIFY_SOCKET, LISTEN_*,
 * WATCHDOG_*) and minus every variable whose name starts with one of drop_prefixes (NULL-terminated,
 * may be NULL). */
char **job_io_base_environment_new(const char *const *drop_prefixes);
/* The job's environment: pointers into base (unless the spec clears it) and the job's own entries, which
 * win over base's. Free the array only. */
char **job_io_build_env(char *const *base, const JobSpec *spec);
/* The value of name in env, or NULL. */
const char *job_io_env_lookup(char *const *env, const char *name);

/* A pipe, O_CLOEXEC both ends, O_NONBLOCK only the daemon's end (the read end if parent_reads). */
int job_io_open_pipe(int ret_fds[2], bool parent_reads);

/* Called with each chunk a stream delivers. */
typedef void (*JobIoSink)(void *userdata, JobStream s, const void *data, size_t size);

/* Reads what fd has, up to JOB_IO_READS_PER_WAKEUP chunks, handing each to sink; grows a pipe found full
 * once (*pipe_grown). Returns false once it reached EOF or failed. */
bool job_io_read(int fd, bool *pipe_grown, JobStream s, JobIoSink sink, void *userdata);

/* Writes what is left of spec's input to the non-blocking fd from *written on. Returns true while some
 * is left to write and fd takes more later, false once all was written or the reader is gone (what it
 * did not read is dropped). */
bool job_io_write_input(int fd, const JobSpec *spec, size_t *written);
