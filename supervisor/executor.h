/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The executor seam: how a job runs, behind a vtable as systemd's UnitVTable is for unit types. The job
 * state machine (job.c) calls an executor through it and hears back through ExecutorEvents; it knows
 * no fds, pids or cgroups of its own. executor-local.c runs jobs as child processes of the daemon. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "job.h"
#include "serialize.h"

typedef struct Executor Executor;

/* How a job ended, as its executor saw it. */
typedef struct ExecutorExit {
        int returncode;          /* the exit status, or minus the signal that killed it */
        uint64_t cpu_usage_usec; /* 0 where not measured */
        uint64_t memory_peak;    /* 0 where not measured */
} ExecutorExit;

typedef enum ExecutorStop {
        EXECUTOR_STOP_TERMINATE, /* ask it to end: SIGTERM, and SIGCONT (or a thaw) so that a stopped or
                                  * paused job can */
        EXECUTOR_STOP_KILL,      /* end it now: SIGKILL to everything it started */
} ExecutorStop;

/* How an executor reports back. It calls these from the event loop, or from within start(); never from
 * within signal(), stop() or usage(). Once exited or failed was called for a job, nothing more is
 * reported for it, and the job calls done() on its runtime. */
typedef struct ExecutorEvents {
        /* The job runs; pid is its main process. */
        void (*started)(Job *j, pid_t pid);
        /* The job wrote size bytes on stream s. */
        void (*output)(Job *j, JobStream s, const void *data, size_t size);
        /* The main process ended with returncode while other processes of the job still run. */
        void (*main_exited)(Job *j, int returncode);
        /* The job is over: nothing it started runs any more. */
        void (*exited)(Job *j, const ExecutorExit *exit);
        /* The job could not be started, or, once started, not supervised or ended for a reason outside
         * the job, such as the failure of the node it ran on (error is a negative errno, detail says what
         * failed, or is NULL); nothing of it runs any more. A started job so reported ends failed, unless
         * it was being stopped: then its stop's reason stands. */
        void (*failed)(Job *j, int error, const char *detail);
        /* Where the job runs, once the executor knows: an id the job has outside the daemon (a Slurm job
         * id) and the machine it runs on; either may be NULL. The job keeps copies. May come after
         * started, and more than once (the last one stands); never after exited or failed. */
        void (*placed)(Job *j, const char *external_id, const char *node);
} ExecutorEvents;

/* One per kind of executor. A job's runtime (void *) is what the executor keeps for it while it runs:
 * only the executor that made it reads it. Members marked optional may be NULL. */
typedef struct ExecutorVTable {
        const char *name;
        /* Refuses a spec this executor cannot honour: -EOPNOTSUPP, naming the field. Optional. */
        int (*validate)(Executor *e, const JobSpec *spec, JobSpecField *ret_field);
        /* Begins to run job id as spec says, storing its runtime in *runtime before it reports
         * anything; then reports started or failed, possibly before it returns. A negative return means
         * nothing was started, no runtime was kept and nothing will be reported. The job keeps spec
         * and the caller's fds in it; the executor uses them, and may release spec's input once it has
         * written it. */
        int (*start)(Executor *e, Job *j, uint64_t id, JobSpec *spec, void **runtime);
        /* Sends sig to the running job's processes, its main process also where it left the others. */
        int (*signal)(Executor *e, void *runtime, int sig);
        /* Stops every process of the running job where it is (a frozen cgroup, or SIGSTOP), and lets it go
         * on. A stop() thaws a paused job, so that it can act on its SIGTERM. Optional, both or none. */
        int (*pause)(Executor *e, void *runtime);
        int (*resume)(Executor *e, void *runtime);
        /* Stops the running job as how says; its end is reported through exited, later: only once
         * nothing of it runs any more (its main process gone too or not), or all of it was killed (KILL).
         * A job stopped so does not end with its main process alone. */
        int (*stop)(Executor *e, void *runtime, ExecutorStop how);
        /* CPU time and peak memory of the running job; -ENODATA where not measured. Optional. */
        int (*usage)(Executor *e, void *runtime, uint64_t *ret_cpu_usec, uint64_t *ret_memory_peak);
        /* Across a re-exec of the daemon (optional, all three or none). serialize writes, through s, what
         * finds the running job again (its fds with serialize_fd()); the job writes its own state
         * beside it. deserialize rebuilds a runtime in the next image from those items (keys without
         * the executor's prefix), taking its fds from d; spec is the job's, as the store kept it, with
         * its input back. On failure it ends what it learned of the job (nothing may run unwatched)
         * and keeps nothing. coldplug then attaches the runtime to the event loop; from there on the
         * executor reports as for a job it started. If it fails, it has ended the job's processes. */
        int (*serialize)(Executor *e, void *runtime, Serializer *s);
        int (*deserialize)(Executor *e, Job *j, JobSpec *spec, const SerializedItem *items, size_t n_items,
                           Deserializer *d, void **ret_runtime);
        int (*coldplug)(Executor *e, void *runtime);
        /* Frees the runtime; the job is over or being freed. A job still running is killed first. */
        void (*done)(Executor *e, void *runtime);
        /* Frees the executor; no job runtime is left. */
        void (*free)(Executor *e);
} ExecutorVTable;

/* The part every executor shares; each one embeds it first in its own struct. */
struct Executor {
        const ExecutorVTable *vtable;
        const ExecutorEvents *events; /* set by the pool that owns the executor */
};

Executor *executor_free(Executor *e);
