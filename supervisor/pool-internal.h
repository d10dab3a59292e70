/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* struct Pool, and how jobs report their transitions to their pool: private to supervisor/. */
#pragma once

#include "job-internal.h"
#include "pool.h"

struct Pool {
        char *name;
        sd_event *event;
        Registry *registry;
        PoolConfig config;
        Executor *executor;
        char *executor_kind, *slurm_conf, *partition; /* PoolExecutorSettings, kept for the store */

        void *users;      /* tsearch() tree of UserUsage, by uid; each holds its uid's queue */
        size_t n_queued;  /* in all the uids' queues */
        size_t n_waiting; /* queued, waiting for dependencies or a time (registry_wait_add()) */
        /* The uids with startable jobs, in turn (pool.c): [0] this round's, [1] the next round's. */
        UserUsage *ring_head[2], *ring_tail[2];
        uint64_t round;

        unsigned n_starting; /* out of the queue, their executor not heard from yet: they take a slot */
        unsigned n_running;
        unsigned n_fds;      /* fds passed with queued jobs (Job.queued_fds), held until they start */
        uint64_t n_compares; /* of two queued jobs, ever: the work of scheduling */
        sd_event_source *schedule_source;
        bool paused; /* starts nothing */
        void *userdata;
        bool shutting_down;
};

sd_event *pool_get_event(const Pool *p);
Registry *pool_get_registry(const Pool *p);
Executor *pool_get_executor(const Pool *p);
const QuotaLimits *pool_get_quota(const Pool *p);

/* job.c reports transitions through these. */
void pool_job_started(Pool *p, Job *j);
void pool_job_finished(Pool *p, Job *j, JobPhase phase);
void pool_job_changed(Pool *p, Job *j, JobChange what);
/* A waiting job may start now: it joins its owner's queue. */
void pool_job_ready(Pool *p, Job *j);
/* A running job's attempt failed and it runs again (spec.retry): it gives its slot back and waits until
 * j->r.wait_until_usec. */
void pool_job_retry(Pool *p, Job *j);
/* Puts a job marked starting back in the queue, not started. */
void pool_job_unstart(Pool *p, Job *j);
/* The registry is about to free j: the pool lets go of it. */
void pool_job_detach(Pool *p, Job *j);
/* Takes in a job read back from the store: counts its output against its owner, and queues it if it is
 * queued and not stale. */
int pool_job_adopt(Pool *p, Job *j);
/* A job read back stale was taken over running from the daemon's last image: it takes a slot again. */
void pool_job_resumed(Pool *p, Job *j);
/* A job read back stale and queued got back what it needs to run: it is queued again. */
int pool_job_requeue(Pool *p, Job *j);
/* What a job is counted as holding in the registry's bound. */
size_t job_spec_cost(const JobSpec *spec);
