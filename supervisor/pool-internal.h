/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* struct Pool, and how jobs report their transitions to their pool: private to supervisor/. */
#pragma once

#include "job-internal.h"
#include "pool.h"

struct Pool {
        sd_event *event;
        Registry *registry;
        PoolConfig config;
        Executor *executor;

        void *users; /* tsearch() tree of UserUsage, by uid */

        Job **queue; /* binary heap: higher priority first, then lower id */
        size_t n_queued, allocated_queue;
        uint64_t queue_generation;     /* counts changes of the queue: the positions below follow it */
        uint64_t positions_generation; /* the queue's generation when the queued jobs' positions were set */

        unsigned n_starting; /* out of the queue, their executor not heard from yet: they take a slot */
        unsigned n_running;
        unsigned n_fds; /* fds passed with queued jobs (Job.queued_fds), held until they start */
        sd_event_source *schedule_source;
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
