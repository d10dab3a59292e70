/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A pool: a priority queue, at most `size` jobs running at once, per-uid limits, and one executor that
 * runs its jobs. Job ids, lookup and retention are the registry's (registry.h). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "executor.h"
#include "job.h"
#include "quota.h"
#include "registry.h"

typedef struct PoolConfig {
        unsigned pool_size; /* 0: online CPUs */
        unsigned max_queued;
        uint64_t output_limit; /* default per-stream capture limit */
        unsigned max_fds;      /* fds passed with queued jobs, all uids; 0: no limit */
        QuotaLimits per_user;
} PoolConfig;

#define POOL_MAX_QUEUED_DEFAULT 65536U
#define POOL_MAX_QUEUED_PER_USER_DEFAULT 16384U
/* At shutdown, no job's grace between the polite stop and the kill is longer than this. */
#define POOL_SHUTDOWN_STOP_TIMEOUT_USEC (10ULL * 1000000ULL)
#define POOL_MAX_OUTPUT_PER_USER_DEFAULT (4ULL * 1024ULL * 1024ULL * 1024ULL) /* on disk, in the spool */

/* pool_submit(): the queue already holds max_queued jobs. */
#define POOL_ERROR_QUEUE_FULL (-EXFULL)
/* pool_submit(): the submitter's uid has max_queued jobs queued already. */
#define POOL_ERROR_USER_QUEUE_FULL (-EDQUOT)
/* pool_submit(): the registry holds max_held_bytes of jobs already, with every finished one that may go
 * released. */
#define POOL_ERROR_HELD_LIMIT REGISTRY_ERROR_HELD_LIMIT
/* pool_submit(): the submitter's jobs hold its share, max_held_bytes_per_user, with every finished one of
 * them released. */
#define POOL_ERROR_USER_HELD_LIMIT REGISTRY_ERROR_USER_HELD_LIMIT
/* pool_submit(): the pool's executor cannot honour the spec; pool_validate() names the field. */
#define POOL_ERROR_NOT_SUPPORTED (-EOPNOTSUPP)
/* pool_submit(): the fds passed with queued jobs would exceed per_user.max_fds (of the submitter's uid)
 * or max_fds (of all). */
#define POOL_ERROR_USER_FDS (-EMFILE)
#define POOL_ERROR_FDS (-ENFILE)
/* pool_submit(): the pool is shutting down. */
#define POOL_ERROR_SHUTTING_DOWN (-ESHUTDOWN)

/* A pool's name: 1 to POOL_NAME_MAX of [A-Za-z0-9_-]. The pool POOL_DEFAULT_NAME always exists. */
#define POOL_NAME_MAX 64
#define POOL_DEFAULT_NAME "default"
bool pool_name_is_valid(const char *name);

/* Which executor runs a pool's jobs, and with what, as its creator chose: kept with the pool's settings
 * so that the next start makes the same executor again. The pool only keeps them; the layer above makes
 * the executor. NULL: unset (a NULL kind is the shared local executor). */
typedef struct PoolExecutorSettings {
        const char *kind; /* PROCPOOL_EXECUTOR_* */
        const char *slurm_conf;
        const char *partition;
} PoolExecutorSettings;

/* A pool called name whose jobs get their ids from registry and run on executor, which stays its
 * caller's (several pools may share one) and must outlive the pool. */
int pool_new(sd_event *event, Registry *registry, const char *name, const PoolConfig *config,
             Executor *executor, Pool **ret);
/* Frees the pool. Its jobs must be gone: the registry frees them (registry_free()), or another pool took
 * over its finished ones (pool_retire()). */
Pool *pool_free(Pool *p);
/* Sets what pool_get_executor_settings() returns (copies), before pool_save(). */
int pool_set_executor_settings(Pool *p, const PoolExecutorSettings *settings);
/* Pointers into the pool's copies, valid while the pool lives. */
PoolExecutorSettings pool_get_executor_settings(const Pool *p);
/* Stores a new pool's settings (a pool's changes are stored as they happen). */
void pool_save(Pool *p);
/* Before p is removed for good: its finished jobs (it must have no other) are counted as to's from now
 * on, keeping the pool name they ran in, and its settings are deleted from the store. Free it next. */
void pool_retire(Pool *p, Pool *to);

/* Queues a job made from spec (taken over on success, handed back on failure) and returns it;
 * userdata becomes the job's (job_get_userdata()) before any callback hears of it. The job starts from
 * the event loop, never inside this call. */
int pool_submit(Pool *p, JobSpec *spec, void *userdata, Job **ret);
/* Whether the pool's executor can honour spec: POOL_ERROR_NOT_SUPPORTED naming the field if not. */
/* Whether the n jobs of specs (one owner, no fds passed) fit the queue, the per-uid queue and the bytes held,
 * as a whole, as pool_submit() checks each: 0, or the POOL_ERROR_* they meet, with *ret_fit set to how many
 * would fit the queue that is full (0 for the bytes held). Finished jobs may be released to make room, as
 * pool_submit() does. */
int pool_check_room(Pool *p, const JobSpec *specs, size_t n, size_t *ret_fit);
int pool_validate(Pool *p, const JobSpec *spec, JobSpecField *ret_field);
int pool_set_size(Pool *p, unsigned size);
/* A paused pool starts nothing; what runs goes on. Stored, as the size is. */
void pool_set_paused(Pool *p, bool paused);
bool pool_get_paused(const Pool *p);
const char *pool_get_name(const Pool *p);
/* One pointer for the layer above; the model never reads it. */
void *pool_get_userdata(const Pool *p);
void pool_set_userdata(Pool *p, void *userdata);
/* Stops taking jobs and stops what runs. Queued jobs are cancelled, or, with keep_queued (a store keeps
 * them for the next start), only those that cancel when their caller leaves; running jobs that would
 * not be cancelled that way end failed, the daemon having stopped while they ran. */
void pool_shutdown(Pool *p, bool keep_queued);
/* True once pool_shutdown() was called. */
bool pool_is_shutting_down(const Pool *p);
/* True while a job of the pool is starting or running. */
bool pool_is_active(const Pool *p);

const PoolConfig *pool_get_config(const Pool *p);
unsigned pool_get_size(const Pool *p);
/* Jobs running (started, not yet ended) and queued (waiting for a slot). */
unsigned pool_get_running(const Pool *p);
unsigned pool_get_queued(const Pool *p);
/* True while a job of the pool is queued, starting or running. */
bool pool_has_unfinished(const Pool *p);
unsigned pool_default_size(void);
/* How many times the pool's queues compared two jobs, ever: a measure of the work scheduling does, for
 * the tests and the bench. */
uint64_t pool_get_queue_compares(const Pool *p);
/* How many queued jobs start before job j (0: it is next); 0 for a job not in the queue. Positions are
 * worked out for the whole queue at once, after it changed: reading every job's costs O(n log n). */
unsigned pool_queue_position(Pool *p, Job *j);
