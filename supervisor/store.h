/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The job store: every job's record, the settings changed at run time and the next job id, in one SQLite
 * database (WAL mode, a schema version, migrations). The registry writes through it in batches. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "job.h"
#include "macro.h"

typedef struct Store Store;

typedef enum StoreSync {
        STORE_SYNC_NORMAL, /* a commit survives a crash of the daemon; a power cut may lose the last ones */
        STORE_SYNC_FULL,   /* a commit survives a power cut too: every commit waits for the disk */
} StoreSync;

/* The schema this build writes; a store of a later one is refused. */
#define STORE_SCHEMA_VERSION 4

/* Opens the database at path, making it (0600) if there is none. A store that is corrupt, unreadable or
 * from a newer schema is refused with a negative errno and, in *ret_error, a sentence that names the file
 * and why. */
int store_open(const char *path, StoreSync sync, Store **ret, char **ret_error);
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);

/* One transaction: begin, any number of puts and deletes, then commit or rollback. A failed commit
 * leaves nothing of the transaction behind. */
int store_begin(Store *s);
int store_put_job(Store *s, const JobRecord *r);
int store_delete_job(Store *s, uint64_t id);
int store_put_setting(Store *s, const char *key, uint64_t value);
/* A pool's settings, as stored. */
typedef struct StorePool {
        const char *name;
        unsigned size;
        bool paused;
        const char *executor;   /* the kind of its executor (NULL when put: "local") */
        const char *slurm_conf; /* NULL: unset */
        const char *partition;  /* NULL: unset */
} StorePool;

/* A pool's settings, by name; deleted when the pool is removed. */
int store_put_pool(Store *s, const StorePool *p);
int store_delete_pool(Store *s, const char *name);
int store_commit(Store *s);
void store_rollback(Store *s);

/* A setting, -ENOENT if it was never written. */
int store_get_setting(Store *s, const char *key, uint64_t *ret);
/* Calls f with each job's record, by id; f takes over what the record holds. */
int store_load_jobs(Store *s, int (*f)(JobRecord *r, void *userdata), void *userdata);
/* Calls f with each pool's settings, by name. */
int store_load_pools(Store *s, int (*f)(const StorePool *p, void *userdata), void *userdata);
/* Gives back the memory SQLite caches (its page cache): for a daemon that has gone idle. */
void store_release_memory(Store *s);
/* The last error SQLite reported, for log lines. */
const char *store_last_error(Store *s);

#define STORE_SETTING_NEXT_ID "next-id"
