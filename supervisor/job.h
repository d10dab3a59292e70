/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A job: its record (what was asked, its state and outcome) and what may be done to it. How it runs is
 * its executor's business (executor.h); the queue and the ids are the pool's and the registry's. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct Pool Pool;
typedef struct Job Job;

/* The store keeps these numbers: append only. */
typedef enum JobState {
        JOB_QUEUED,
        JOB_RUNNING,
        JOB_EXITED,
        JOB_KILLED,
        JOB_TIMED_OUT,
        JOB_CANCELLED,
        JOB_FAILED,
        _JOB_STATE_MAX,
} JobState;

typedef enum JobStream {
        JOB_STDOUT,
        JOB_STDERR,
        _JOB_STREAM_MAX,
} JobStream;

/* Which observable fields changed, for the bus layer's PropertiesChanged. */
typedef enum JobChange {
        JOB_CHANGE_STATE = 1 << 0,
        JOB_CHANGE_PID = 1 << 1,
        JOB_CHANGE_RETURNCODE = 1 << 2,
        JOB_CHANGE_STARTED_AT = 1 << 3,
        JOB_CHANGE_FINISHED_AT = 1 << 4,
        JOB_CHANGE_ERROR = 1 << 5,
        JOB_CHANGE_OUTPUT = 1 << 6,  /* OutputIncomplete */
        JOB_CHANGE_USAGE = 1 << 7,   /* CPU time and peak memory: only their final values are reported */
        JOB_CHANGE_WAITING = 1 << 8, /* WaitingFor: a job it waits for ended */
        JOB_CHANGE_ATTEMPT = 1 << 9, /* Attempt: it failed and waits to run again */
        JOB_CHANGE_PAUSED = 1 << 10,
        JOB_CHANGE_PLACED = 1 << 11, /* ExternalId and Node: its executor said where it runs */
} JobChange;

/* Why a job ended as it did, or is being stopped: structured, so that the layer that talks to people
 * words it. NONE while nothing stopped it. */
typedef enum JobReasonKind {
        JOB_REASON_NONE,
        JOB_REASON_TIMEOUT,           /* it ran past spec.timeout_usec */
        JOB_REASON_CANCEL,            /* cancelled while it ran (or was being started) */
        JOB_REASON_CANCEL_QUEUED,     /* cancelled before it started */
        JOB_REASON_OUTPUT_LIMIT,      /* stream passed limit, the job's own output limit */
        JOB_REASON_USER_OUTPUT_LIMIT, /* stream passed limit, the owner's share of captured bytes */
        JOB_REASON_START_FAILED,      /* the executor could not start it: error, and detail if it said */
        JOB_REASON_LOST,              /* it started, but could not be supervised, and was killed */
        JOB_REASON_DAEMON_STOPPED,    /* the daemon stopped (or died) while it ran */
        JOB_REASON_CALLER_GONE,       /* its caller left while the daemon was down */
        JOB_REASON_INPUT_LOST,        /* the fds or input it was given did not outlive the daemon */
        JOB_REASON_DEPENDENCY,        /* a job of "after" did not exit 0: dependency, state, returncode */
        JOB_REASON_RUN_FAILED,        /* it ran, and its executor saw it end for a reason outside the job
                                       * (a node failure, the cluster's own limit or cancel): error, detail */
        _JOB_REASON_MAX,              /* the store keeps these numbers: append only */
} JobReasonKind;

typedef struct JobReason {
        JobReasonKind kind;
        JobStream stream;          /* OUTPUT_LIMIT, USER_OUTPUT_LIMIT */
        uint64_t limit;            /* OUTPUT_LIMIT, USER_OUTPUT_LIMIT: the limit passed, in bytes */
        int error;                 /* START_FAILED, LOST, RUN_FAILED: a positive errno */
        char *detail;              /* START_FAILED, RUN_FAILED: the executor's own account, or NULL */
        uint64_t dependency;       /* DEPENDENCY: the job's id */
        JobState dependency_state; /* DEPENDENCY: how it ended; _JOB_STATE_MAX: released unseen */
        int dependency_returncode;
} JobReason;

/* A field of JobSpec, to name one that an executor cannot honour. */
typedef enum JobSpecField {
        JOB_SPEC_MEMORY_MAX,
        _JOB_SPEC_FIELD_MAX,
} JobSpecField;

#define JOB_STOP_TIMEOUT_DEFAULT_USEC (5ULL * 1000000ULL)
#define JOB_OUTPUT_LIMIT_DEFAULT (1024ULL * 1024ULL * 1024ULL) /* on disk, in the spool */
#define JOB_OUTPUT_LIMIT_UNSET UINT64_MAX                      /* the pool's default applies */

/* Whom a job runs as: a uid, its primary gid and its supplementary groups, as the bus layer resolved them
 * from the user database. Unset, the job runs with the daemon's own credentials. */
typedef struct JobUser {
        bool set;
        uid_t uid;
        gid_t gid;
        gid_t *groups; /* the supplementary groups, n_groups of them (may be 0) */
        size_t n_groups;
} JobUser;

/* The most supplementary groups a job's user may have (the kernel's NGROUPS_MAX). */
#define JOB_USER_GROUPS_MAX 65536U

/* What a client asked for, already validated. The job owns every pointer and fd in it. */
typedef struct JobSpec {
        char **argv;
        char **environment; /* NAME=value entries set over the base environment */
        bool clear_environment;
        char *cwd;                  /* absolute, or NULL for the daemon's */
        uint64_t timeout_usec;      /* 0: none */
        uint64_t stop_timeout_usec; /* between the polite stop and the kill */
        uint64_t output_limit;      /* bytes kept per captured stream */
        bool kill_on_output_limit;  /* Communicate: passing the limit stops the job */
        bool keep_output;           /* Communicate: the output stays held once its caller has it */
        int fds[3];                 /* caller's fds for 0, 1, 2; -EBADF where not given */
        unsigned passed_fds;        /* 1 << i for each fds[i] the caller passed: kept once they are closed */
        bool cancel_on_disconnect;  /* the job is cancelled when its submitter leaves the bus */
        bool has_input;             /* stdin is a pipe fed with input (Communicate) */
        const void *input;
        size_t input_size;
        void (*input_free)(void *userdata); /* releases the memory behind input */
        void *input_userdata;
        int32_t priority;
        char *label;
        uid_t owner;         /* who submitted it: its quotas are this uid's */
        JobUser user;        /* whom it runs as */
        uint64_t memory_max; /* bytes, 0: no limit; needs the memory controller */
        char *pool;          /* the name of the pool it was submitted to; set by pool_submit() */
        uint64_t *after;     /* ids of the jobs that must have exited 0 before it starts */
        size_t n_after;
        uint64_t not_before_usec;  /* CLOCK_REALTIME: it does not start earlier; 0: no bound */
        unsigned retry;            /* attempts after the first that fail: run again up to this often */
        uint64_t retry_delay_usec; /* between a failed attempt and the next */
} JobSpec;

/* Sets the defaults: no fds, default stop timeout and output limit. */
void job_spec_init(JobSpec *spec);
/* Frees what spec holds and re-initializes it. */
void job_spec_done(JobSpec *spec);
/* Closes the caller's fds: the child has its own copies once it runs, and a job that never runs must
 * give them back at once (a pipeline reading the job's stdout waits for that EOF). */
void job_spec_close_fds(JobSpec *spec);
/* How many fds the caller passed (and spec holds). */
unsigned job_spec_count_fds(const JobSpec *spec);
/* Copies what a job was asked for into to, for a new job; from must hold no fds and no input (a job's
 * are gone once it started). */
int job_spec_copy(const JobSpec *from, JobSpec *to);
/* Gives back the memory behind input, once it has been written or will never be. */
void job_spec_release_input(JobSpec *spec);

/* A captured stream: its bytes are in the spool (spool.h), not here. */
typedef struct JobOutput {
        uint64_t size;   /* bytes kept */
        bool truncated;  /* bytes past the limit were dropped */
        bool incomplete; /* writing it failed (a full disk): capture stopped there */
        bool released;   /* given up once its caller had it (job_release_output()): none is kept */
} JobOutput;

/* What a job is: only this is shown to clients, and only this would be stored. */
typedef struct JobRecord {
        uint64_t id;
        JobSpec spec;
        JobState state;
        JobReason reason;
        int returncode; /* the exit status, or minus the signal that killed it */
        pid_t pid;      /* the main process while it runs, else 0 */
        pid_t main_pid; /* the main process it had, kept for the record */
        uint64_t submitted_at, started_at, finished_at; /* CLOCK_REALTIME, usec; 0: not yet */
        uint64_t cpu_usage_usec;                        /* final, once it ended; 0 where not measured */
        uint64_t memory_peak;                           /* final, once it ended; 0 where not measured */
        JobOutput output[_JOB_STREAM_MAX];
        unsigned attempt;         /* 1 for the first run, counting up with each retry */
        uint64_t wait_until_usec; /* CLOCK_REALTIME: not started before (not-before, or a retry's delay) */
        bool paused;              /* stopped by job_pause() until job_resume() or its stop; never stored */
        /* Where its last attempt ran, as its executor said (ExecutorEvents.placed): an id outside the
         * daemon (a Slurm job id) and the machine; NULL where not said. A retry clears them: they are the
         * current attempt's. */
        char *external_id;
        char *node;
} JobRecord;

static inline bool job_state_is_final(JobState s) {
        return s >= JOB_EXITED;
}

const JobRecord *job_get_record(const Job *j);
Pool *job_get_pool(const Job *j);
/* One pointer for the layer that observes jobs (the bus layer keeps its per-job data here); the model
 * never reads it. It is handed to the observer's job_removed callback before the job is freed. */
void *job_get_userdata(const Job *j);
/* Sets it, for jobs read back from the store, which had none. */
void job_set_userdata(Job *j, void *userdata);

/* Stops a job: a queued one is removed and never runs, a running one is asked to stop, and killed
 * after its stop timeout. Returns JOB_ERROR_NOT_RUNNING if it has already ended. */
int job_cancel(Job *j);
/* Sends sig to the job's processes. JOB_ERROR_NOT_RUNNING if it is not running, -EINVAL for an
 * invalid signal. */
int job_kill(Job *j, int sig);
/* Stops every process of a running job where it is, keeping its slot; its timeout stands still until
 * job_resume() lets it go on. A job that is already paused stays so. JOB_ERROR_NOT_RUNNING if it is not
 * running, JOB_ERROR_STOPPING if it is being stopped, -EOPNOTSUPP if its executor cannot pause. */
int job_pause(Job *j);
/* Lets a paused job go on, its timeout with what was left of it. A job that is not paused stays as it
 * is. JOB_ERROR_NOT_RUNNING if it is not running. */
int job_resume(Job *j);
/* CPU time and peak memory: live while it runs, final once it ended; 0 where the executor does not
 * measure them. */
uint64_t job_cpu_usage(Job *j);
uint64_t job_memory_peak(Job *j);
/* Reads the first size bytes of stream s (at most what it holds) into buf; returns the bytes read. */
int job_read_output(Job *j, JobStream s, void *buf, size_t size, size_t *ret_read);
/* A read-only fd on stream s's spool file, which grows while the job runs. */
int job_open_output(Job *j, JobStream s);
/* Forgets a finished job and frees it. JOB_ERROR_NOT_FINISHED if it has not ended. */
int job_release(Job *j);
/* Gives up the captured output of a finished job, whose caller has it now: its spool files go, and its
 * bytes no longer count for its owner. Reading or opening it later is JOB_ERROR_OUTPUT_RELEASED.
 * JOB_ERROR_NOT_FINISHED if it has not ended. */
int job_release_output(Job *j);

/* Named results of the functions above. */
#define JOB_ERROR_NOT_RUNNING (-ESRCH)
#define JOB_ERROR_NOT_FINISHED (-EBUSY)
#define JOB_ERROR_STOPPING (-ECANCELED)
#define JOB_ERROR_OUTPUT_RELEASED (-ENODATA)
