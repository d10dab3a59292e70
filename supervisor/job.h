/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A job: one command's request, its process while it runs, and its outcome. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

typedef struct Pool Pool;
typedef struct Job Job;

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

/* Why the daemon itself stopped a running job; decides the final state. */
typedef enum JobStopReason {
        JOB_STOP_NONE,
        JOB_STOP_TIMEOUT,
        JOB_STOP_CANCEL,
        JOB_STOP_OUTPUT_LIMIT,
} JobStopReason;

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
} JobChange;

#define JOB_STOP_TIMEOUT_DEFAULT_USEC (5ULL * 1000000ULL)
#define JOB_OUTPUT_LIMIT_DEFAULT (16ULL * 1024ULL * 1024ULL)
#define JOB_OUTPUT_LIMIT_UNSET UINT64_MAX /* the pool's default applies */

/* What a client asked for, already validated. The job owns every pointer and fd in it. */
typedef struct JobSpec {
        char **argv;
        char **environment; /* NAME=value entries set over the base environment */
        bool clear_environment;
        char *cwd;          /* absolute, or NULL for the daemon's */
        uint64_t timeout_usec;      /* 0: none */
        uint64_t stop_timeout_usec;
        uint64_t output_limit;      /* bytes kept per captured stream */
        bool kill_on_output_limit;  /* Communicate: passing the limit stops the job */
        int fds[3];                 /* caller's fds for 0, 1, 2; -EBADF where not given */
        bool has_input;             /* stdin is a pipe fed with input (Communicate) */
        const void *input;
        size_t input_size;
        void (*input_free)(void *userdata); /* releases the memory behind input */
        void *input_userdata;
        int32_t priority;
        char *label;
        uid_t owner;
        uint64_t memory_max; /* bytes, 0: no limit; needs the memory controller */
} JobSpec;

/* Sets the defaults: no fds, default stop timeout and output limit. */
void job_spec_init(JobSpec *spec);
/* Frees what spec holds and re-initializes it. */
void job_spec_done(JobSpec *spec);

typedef struct OutputBuffer {
        char *data;
        size_t size;
        size_t allocated;
        bool truncated; /* bytes past the limit were dropped */
        bool pipe_grown; /* the pipe was found full once and enlarged */
} OutputBuffer;

struct Job {
        Pool *pool;
        uint64_t id;
        JobSpec spec;

        JobState state;
        JobStopReason stop_reason;
        int returncode;
        char *error;
        uint64_t submitted_at, started_at, finished_at; /* CLOCK_REALTIME, usec */
        uint64_t finished_monotonic;

        pid_t pid;                     /* the main process while it runs, else 0 */
        pid_t main_pid;                /* the main process it had, kept for the record */
        bool main_exited;              /* the main process is gone, its cgroup not yet empty */
        char *cgroup_path;             /* the job's own cgroup, when the daemon has a delegated one */
        sd_event_source *cgroup_source; /* watches cgroup.events for the tree to empty */
        uint64_t cpu_usage_usec;       /* from cpu.stat when the job ended */
        uint64_t memory_peak;          /* from memory.peak when the job ended */
        sd_event_source *child_source; /* owns the pidfd */
        sd_event_source *timeout_source;
        sd_event_source *kill_source; /* SIGKILL after the stop timeout */
        sd_event_source *stdin_source;
        sd_event_source *output_source[_JOB_STREAM_MAX];
        int stdin_fd;
        int output_fd[_JOB_STREAM_MAX];
        size_t input_written;
        OutputBuffer output[_JOB_STREAM_MAX];

        size_t queue_index;               /* position in the pool's queue while queued */
        struct UserUsage *usage;          /* the owner's use of the pool */
        size_t held_cost;                 /* counted in the pool's held_bytes */
        Job *finished_prev, *finished_next; /* the pool's list of finished jobs, oldest first */

        void *bus_data; /* owned by the bus layer, freed through PoolCallbacks.job_removed */
};

const char *job_state_to_string(JobState s);
static inline bool job_state_is_final(JobState s) {
        return s >= JOB_EXITED;
}

/* Stops a job: a queued one is removed and never runs, a running one gets SIGTERM, then SIGKILL
 * after its stop timeout. Returns JOB_ERROR_NOT_RUNNING if it has already ended. */
int job_cancel(Job *j);
/* Sends sig to the job's process group. JOB_ERROR_NOT_RUNNING if it is not running, -EINVAL for an
 * invalid signal. */
int job_kill(Job *j, int sig);
/* CPU time and peak memory of the job's cgroup: live while it runs, final once it ended; 0 without
 * a cgroup or the controller. */
uint64_t job_cpu_usage(Job *j);
uint64_t job_memory_peak(Job *j);
/* Forgets a finished job and frees it. JOB_ERROR_NOT_FINISHED if it has not ended. */
int job_release(Job *j);

/* Named results of the functions above and of pool_submit(). */
#define JOB_ERROR_NOT_RUNNING (-ESRCH)
#define JOB_ERROR_NOT_FINISHED (-EBUSY)

/* Internal to supervisor/: used by pool.c. */
Job *job_new(Pool *pool, uint64_t id, JobSpec *spec);
Job *job_free(Job *j);
/* SIGKILLs the whole job now, without waiting: for a daemon that lets go of its jobs. */
void job_kill_tree(Job *j);
int job_start(Job *j);
void job_finish_unstarted(Job *j, JobState state, const char *error);
