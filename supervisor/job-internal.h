/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* struct Job and what the pool and the registry do to jobs: private to supervisor/. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <systemd/sd-event.h>

#include "executor.h"
#include "job.h"
#include "quota.h"
#include "serialize.h"

struct Job {
        JobRecord r;
        Pool *pool;

        /* The state machine. */
        bool starting;              /* handed to the executor, which has not said started or failed yet */
        JobReasonKind stop_pending; /* stopped while starting: stopped for this as soon as it runs */
        bool stale;                 /* read back from the store unfinished, waiting for registry_coldplug() */
        bool deserialized;          /* taken over running from the daemon's last image, to be coldplugged */
        uint64_t timeout_at, kill_at; /* their deadlines then (CLOCK_MONOTONIC) until coldplugged; 0: none */
        uint64_t timeout_left;        /* paused: what was left of its timeout (usec); 0: none */
        void *runtime;                /* the executor's, from start until the job is over */
        sd_event_source *timeout_source;
        sd_event_source *kill_source;   /* the kill after the stop timeout */
        int output_fd[_JOB_STREAM_MAX]; /* the spool files being written while it runs */

        /* The pool's bookkeeping. */
        size_t queue_index;  /* position in the pool's queue while queued, else SIZE_MAX */
        UserUsage *usage;    /* the owner's use of the pool */
        unsigned queued_fds; /* the passed fds counted in the pool's and the owner's while queued */

        /* Queued but waiting for its dependencies or a time (the registry's list), not in the queue. */
        bool waiting;
        Job *wait_prev, *wait_next;
        unsigned n_waiting_for; /* what WaitingFor last said */

        /* The registry's bookkeeping. */
        size_t held_cost;                   /* counted in the registry's held bytes, and its owner's */
        struct RegistryUser *holder;        /* its owner's share of what the registry holds */
        bool store_dirty;                   /* its record changed since it was last stored */
        bool store_lazy;                    /* ... but nothing asked for a commit of its own yet */
        uint64_t finished_monotonic;        /* when it ended, for retention */
        Job *finished_prev, *finished_next; /* the list of finished jobs, oldest first */
        Job *user_finished_prev, *user_finished_next; /* its owner's finished jobs, oldest first */

        void *userdata; /* the observer's; see job_get_userdata() */
};

/* A queued job of pool made from spec, which it takes over. Its id is the registry's to give. */
Job *job_new(Pool *pool, JobSpec *spec, void *userdata);
/* A job of pool read back from the store; takes over what record holds. */
Job *job_new_loaded(Pool *pool, JobRecord *record);
/* Ends a job read back unfinished (stale) as kind says. */
void job_finish_stale(Job *j, JobReasonKind kind);
Job *job_free(Job *j);
/* The pool took a queued job out of its queue to start it: it takes a slot from now on. */
void job_mark_starting(Job *j);
/* Hands a job marked starting to the pool's executor. A job that cannot start ends as failed. */
void job_start(Job *j);
/* Ends a queued job that will never run, cancelled as kind says. */
void job_finish_unstarted(Job *j, JobReasonKind kind);
/* Ends a waiting job whose dependency did not exit 0, as reason says. */
void job_fail_dependency(Job *j, JobReason reason);
/* Stops a running job because the daemon stops: it ends failed (JOB_REASON_DAEMON_STOPPED). */
void job_stop_daemon_stopping(Job *j);
/* Kills what still runs of the job now, without waiting: for a daemon that lets go of its jobs. */
void job_abandon(Job *j);

/* Writes what the daemon's next image needs to carry on with an unfinished job: for a running one its
 * executor's state, its timers and what it captured so far; for a queued one the fds it was given;
 * the input it was given, not yet written. -EBUSY while it is being started, -EOPNOTSUPP if its
 * executor cannot hand running jobs over. */
int job_serialize(Job *j, Serializer *s);
/* Takes a job read back from the store over again from what job_serialize() wrote (items without the
 * "job" and "end-job" lines): a running one gets its runtime back and runs on, a queued one its fds and
 * input. Neither is stale then. On failure it stays as it was read back. */
int job_deserialize(Job *j, const SerializedItem *items, size_t n_items, Deserializer *d);
/* Attaches a deserialized running job to the event loop and re-arms its timers; a job that cannot be
 * watched any more ends failed. */
void job_coldplug(Job *j);

/* How executors report to jobs: the ExecutorEvents every pool gives its executor. */
extern const ExecutorEvents job_executor_events;

/* Where a job was before it ended, for the pool's accounting. */
typedef enum JobPhase {
        JOB_PHASE_QUEUED,   /* in the pool's queue */
        JOB_PHASE_STARTING, /* out of the queue, its executor not yet heard from */
        JOB_PHASE_RUNNING,
        JOB_PHASE_STALE, /* read back unfinished: no slot, not queued */
} JobPhase;
