/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pool: jobs by id, the priority queue, at most pool_size running, retention of finished jobs. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "job.h"
#include "quota.h"

/* How the bus layer hears about jobs. Every member may be NULL. */
typedef struct PoolCallbacks {
        void (*job_added)(Job *j, void *userdata);
        void (*job_changed)(Job *j, JobChange what, void *userdata);
        /* The job reached a final state; it stays until released. */
        void (*job_finished)(Job *j, void *userdata);
        /* The job is about to be freed; release j->bus_data here. */
        void (*job_removed)(Job *j, void *userdata);
        /* Running or Queued changed. */
        void (*counts_changed)(Pool *p, void *userdata);
        /* No job is queued, running or retained. */
        void (*idle)(Pool *p, void *userdata);
} PoolCallbacks;

typedef struct PoolConfig {
        unsigned pool_size;      /* 0: online CPUs */
        unsigned max_queued;
        unsigned retain;         /* finished jobs kept at most */
        uint64_t retain_usec;    /* finished jobs are released this long after they end; 0: forever */
        uint64_t output_limit;   /* default per-stream capture limit */
        QuotaLimits per_user;
        uint64_t max_held_bytes; /* job data held (argv, labels, a fixed share each); 0: no bound */
} PoolConfig;

#define POOL_MAX_QUEUED_DEFAULT 65536U
#define POOL_RETAIN_DEFAULT 1000U
#define POOL_MAX_QUEUED_PER_USER_DEFAULT 16384U
/* At shutdown, no job's grace between SIGTERM and SIGKILL is longer than this. */
#define POOL_SHUTDOWN_STOP_TIMEOUT_USEC (10ULL * 1000000ULL)
#define POOL_MAX_OUTPUT_PER_USER_DEFAULT (256ULL * 1024ULL * 1024ULL)
#define POOL_RETAIN_USEC_DEFAULT (10ULL * 60ULL * 1000000ULL)

/* pool_submit(): the queue already holds max_queued jobs. */
#define POOL_ERROR_QUEUE_FULL (-EXFULL)
/* pool_submit(): the submitter's uid has max_queued jobs queued already. */
#define POOL_ERROR_USER_QUEUE_FULL (-EDQUOT)
/* pool_submit(): the jobs held take max_held_bytes already, with every finished one released. */
#define POOL_ERROR_HELD_LIMIT (-E2BIG)
/* What a job is counted as holding beyond its argv and label: its properties as a bus message lists
 * them (names, path, state, times, error text). */
#define POOL_JOB_FIXED_COST 1024U
/* pool_submit(): memory-max was asked for, but the memory controller is not available. */
#define POOL_ERROR_NO_MEMORY_CONTROLLER (-EOPNOTSUPP)
/* pool_submit(): the pool is shutting down. */
#define POOL_ERROR_SHUTTING_DOWN (-ESHUTDOWN)

struct Pool {
        sd_event *event;
        PoolConfig config;
        const PoolCallbacks *callbacks;
        void *userdata;

        /* Jobs by id: slots[id - first_id], NULL where released. Ids only grow. */
        Job **slots;
        size_t n_slots, allocated_slots;
        uint64_t first_id, next_id;
        size_t n_jobs;
        uint64_t held_bytes; /* sum of the jobs' held_cost */

        void *users; /* tsearch() tree of UserUsage, by uid */

        Job **queue; /* binary heap: higher priority first, then lower id */
        size_t n_queued, allocated_queue;

        unsigned n_running;
        uint64_t n_finished_total;
        Job *finished_head, *finished_tail;
        size_t n_finished;

        struct CgroupRoot *cgroup; /* per-job cgroups when set; process groups otherwise */
        int null_fd; /* /dev/null, the stdin of jobs given none */
        char **base_environment; /* the daemon's environment minus what must not reach jobs */
        sd_event_source *schedule_source;
        sd_event_source *retain_source;
        bool shutting_down;
};

int pool_new(sd_event *event, const PoolConfig *config, const PoolCallbacks *callbacks, void *userdata,
             Pool **ret);
Pool *pool_free(Pool *p);

/* Queues a job made from spec (taken over on success) and returns it. The job starts from the event
 * loop, never inside this call. */
int pool_submit(Pool *p, JobSpec *spec, Job **ret);
Job *pool_find(Pool *p, uint64_t id);
/* Calls f for every job in id order; stops early and returns f's result if it is negative. */
int pool_foreach(Pool *p, int (*f)(Job *j, void *userdata), void *userdata);
int pool_set_size(Pool *p, unsigned size);
/* Stops taking jobs, cancels the queue and stops what runs. */
void pool_shutdown(Pool *p);
/* True when nothing is queued or running (and, with include_retained, no finished job is held). */
bool pool_is_idle(Pool *p, bool include_retained);
unsigned pool_default_size(void);

/* Internal to supervisor/: job.c reports transitions through these. */
void pool_job_started(Pool *p, Job *j);
void pool_job_finished(Pool *p, Job *j);
void pool_job_changed(Pool *p, Job *j, JobChange what);
void pool_job_removed(Pool *p, Job *j);
