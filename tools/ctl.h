/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What procpoolctl's commands share: the parsed command line, the bus, and job property access. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <systemd/sd-bus.h>

#include "macro.h"
#include "procpool-api.h"

/* Exit codes of procpoolctl itself; a job's own code is passed through as it is. */
enum {
        EXIT_FAILED = 1, /* procpoolctl or the daemon failed: unreachable, access denied, unknown job */
        EXIT_USAGE = 2,
        EXIT_TIMED_OUT = 124, /* the job ran past --timeout, as timeout(1) reports it */
};

typedef struct Ctl {
        /* global options */
        bool user, system;
        const char *host;
        const char *machine;
        const char *address;
        bool force_bus; /* --bus: never the private socket */
        bool json;
        bool no_legend;
        bool quiet;
        bool all;
        bool full;
        bool no_ask_password; /* no interactive authorization: polkit asks for no password */

        /* job options of call, communicate and submit */
        uint64_t timeout_usec;
        bool timeout_set;
        uint64_t stop_timeout_usec;
        bool stop_timeout_set;
        char **environment;
        size_t n_environment;
        bool clear_env;
        const char *cwd;
        const char *label;
        int32_t priority;
        bool priority_set;
        uint64_t output_limit;
        bool output_limit_set;
        const char *run_as; /* --user=USER: whom the job runs as (the user option) */
        bool wait;
        uint64_t *after; /* --after: the jobs it runs after */
        size_t n_after;
        uint64_t not_before_usec; /* --at */
        bool not_before_set;
        uint32_t retry;
        bool retry_set;
        uint64_t retry_delay_usec;
        bool retry_delay_set;

        const char *pool;   /* --pool: the job's pool; list's filter; the pool pause and resume act on */
        uint32_t pool_size; /* pool create --size */
        bool pool_size_set;
        const char *executor;   /* pool create --executor */
        const char *slurm_conf; /* pool create --slurm-conf */
        const char *partition;  /* pool create --partition */
        bool failed_only;       /* clean --failed-only */

        /* map's own options */
        bool keep_order;
        bool halt_on_error;
        const char *joblog;
        const char *map_option_seen; /* the last of them given, refused for other commands */

        int kill_signal;
        bool follow; /* output: follow the job's output until it ends */

        const char *verb;
        sd_bus *bus;
        bool direct;     /* bus is a direct connection to procpoold's private socket, not the bus */
        bool subscribed; /* it called Subscribe() on it */
        sd_bus *old_bus; /* a direct connection given up for the bus (see waiter_to_bus()), closed at exit */
        bool absent;     /* the daemon turned out not to be running */
} Ctl;

/* The destination of calls to procpoold: its bus name, or none on a direct connection. */
static inline const char *ctl_destination(const Ctl *c) {
        return c->direct ? NULL : PROCPOOL_BUS_NAME;
}

/* One job's properties, as org.procpool.Job1 has them. */
typedef struct JobInfo {
        uint64_t id;
        char *path;
        char **argv;
        char *state;
        int32_t returncode;
        uint32_t pid;
        uint32_t owner;
        char *label;
        uint64_t submitted_at, started_at, finished_at;
        char *error;
        bool output_incomplete; /* capture stopped where the spool could not take more */
        bool paused;
        uint32_t queue_position;              /* queued jobs that start before it */
        uint64_t cpu_usage_usec, memory_peak; /* 0 where not measured */
        char *pool;                           /* NULL from a daemon without pools */
        uint64_t *after, *waiting_for;
        size_t n_after, n_waiting_for;
        uint64_t not_before_usec;
        uint32_t retry, attempt;
        uint64_t retry_delay_usec;
        char *external_id, *node; /* where it runs or ran outside procpoold (a Slurm pool's); NULL: nowhere */
} JobInfo;

/* Connects to procpoold, once: over its private socket when it is there and takes the connection (not with
 * --bus, --address, -H or -M), else over the bus the options name; returns 0 or an exit code after
 * printing why. */
int ctl_connect(Ctl *c);
/* As ctl_connect(), for a command that passes fds: a direct connection that cannot pass them (procpoold
 * passes fds there only with root and its own uid) is given up for the bus. */
int ctl_connect_fds(Ctl *c);
/* Asks procpoold for its signals, which a direct connection gets only once it asked, and the bus too when
 * procpoold runs with --bus-signals=subscribed. Call before the first call whose signals matter. A daemon
 * without Subscribe() or, on the bus, none running is no error. */
int ctl_subscribe(Ctl *c);
/* Subscribe() again, without waiting for its reply, to a procpoold that took the bus name anew (it
 * restarted); nothing on a direct connection. */
int ctl_subscribe_again(Ctl *c);

/* A new method call to procpoold on c's bus. With auto_start false it never starts procpoold by bus
 * activation: while procpoold re-executes its name has no owner for a moment, and under systemd an
 * activation then turns into another reload of the unit. Such a call fails at once instead. */
int ctl_new_call(Ctl *c, const char *path, const char *interface, const char *member, bool auto_start,
                 sd_bus_message **ret);

/* Gives up the direct connection, which procpoold closed (it re-executed or stopped), for the bus, and
 * attaches the bus to event. The direct one is closed at exit: this may run within its dispatch. Nothing is
 * watched or subscribed on the bus yet. Returns 0 or a negative errno (-ENOTCONN: no bus either). */
int ctl_leave_direct(Ctl *c, sd_event *event);
/* Whether a call's error says procpoold went away under it without answering (re-executing, say): no
 * reply, no owner of its name, or the direct connection reset. */
bool ctl_error_is_departure(const sd_bus_error *e);

/* Prints "<what>: <error>" on stderr, or that procpoold is not running when the error says the name
 * has no owner; returns EXIT_FAILED. */
int ctl_log_error(Ctl *c, const sd_bus_error *error, int r, const char *what, ...) _printf_(4, 5);

/* Prints {"error": name, "message": message} and a newline on stderr, as every error under --json. */
void ctl_json_error(const char *name, const char *message);

/* Prints prefix and message on stderr, the message escaped for the terminal, and a newline. */
void ctl_print_error_message(const char *prefix, const char *message);

/* Whether the error means no daemon owns the bus name. */
bool ctl_error_is_absent(const sd_bus_error *error);

/* Parses the job ids argv[from..argc-1] names, in ret_ids if not NULL; an invalid one is printed as a
 * usage error and gives EXIT_USAGE, before anything is asked of the daemon. */
int ctl_parse_job_ids(int argc, char **argv, int from, uint64_t *ret_ids);

/* Looks up job id's object path with GetJob; prints the failure and returns EXIT_FAILED. */
int ctl_job_path(Ctl *c, uint64_t id, char **ret_path);

/* Reads all Job1 properties of path; returns 0 or a negative errno with error set. */
int ctl_job_info(Ctl *c, const char *path, JobInfo *ret, sd_bus_error *error);

/* Reads Job1 properties from an a{sv} at m's read position into info, keeping fields not present. */
int job_info_read_properties(sd_bus_message *m, JobInfo *info);

void job_info_done(JobInfo *info);

/* Writes size bytes to fd, all of them; returns 0 or a negative errno. */
int ctl_write_all(int fd, const void *data, size_t size);

/* Writes the ay at m's read position to fd; returns 0 or a negative errno. */
int ctl_write_byte_array(sd_bus_message *m, int fd);

/* Waits for job id at path as 'wait ID' does and returns the exit code 'wait' gives. The default event
 * loop runs meanwhile, with whatever else the caller put on it; before_end(userdata), if set, runs once
 * the daemon answers, before anything is printed about how the job ended. */
int ctl_wait_job(Ctl *c, uint64_t id, const char *path, void (*before_end)(void *userdata), void *userdata);

/* Calls ListJobs and enters its array: read "(tosi)" entries from *ret (id, path, state, returncode).
 * Returns 0, or the exit code after printing why. */
int ctl_list_jobs(Ctl *c, sd_bus_message **ret);

/* Watches, before the first call goes out so that no change is missed, procpoold's bus name
 * (NameOwnerChanged to on_owner_changed) and the jobs' ends (JobFinished to on_finished), and reads who owns
 * the name now into *ret_owner ("" if nobody; free it). */
int ctl_watch_daemon(Ctl *c, sd_bus_slot **ret_owner_match, sd_bus_message_handler_t on_owner_changed,
                     sd_bus_slot **ret_finished_match, sd_bus_message_handler_t on_finished, void *userdata,
                     char **ret_owner);

/* The id at the end of a job's object path, or 0. */
uint64_t job_path_to_id(const char *path);

/* The exit code a shell would give for a return code: the code, or 128+N for signal N. */
int returncode_to_exit(int32_t rc);

/* Whether a state, as the daemon names it (PROCPOOL_STATE_*), is one a job ends in: anything but queued
 * and running, so that a state added later counts as ended. */
bool ctl_state_is_final(const char *state);

/* How long a job ran, or has run so far; 0 if it never started. */
uint64_t job_runtime(const JobInfo *j);

/* Writes a job as the JSON object status --json prints (no newline). */
void json_write_job(FILE *f, const JobInfo *j);

/* Writes job id at path as that JSON object, its properties read now; {"id":N,"path":...} alone if they
 * cannot be read (released meanwhile). */
void ctl_json_job(Ctl *c, FILE *f, uint64_t id, const char *path);
/* As ctl_json_job(), with extra (",\"key\":value...") as further members of the object. */
void ctl_json_job_with(Ctl *c, FILE *f, uint64_t id, const char *path, const char *extra);

/* Appends the a{sv} options of Submit, Call and Communicate from the command line: the fds 0-2 of
 * procpoolctl when pass_fds, cancel-on-disconnect unless it is -1. */
int append_job_options(Ctl *c, sd_bus_message *m, bool pass_fds, int cancel_on_disconnect);

/* One JSON value on stdout: an array of the items when array, else the one item; a newline ends it. */
typedef struct JsonList {
        bool array;
        size_t n;
} JsonList;
void json_list_begin(JsonList *l, bool array);
void json_list_next(JsonList *l);
void json_list_end(JsonList *l);

/* Commands, each returning procpoolctl's exit code. argv[0] is the command's name. */
int verb_call(Ctl *c, int argc, char **argv);
int verb_communicate(Ctl *c, int argc, char **argv);
int verb_submit(Ctl *c, int argc, char **argv);
/* The argv of command for one input, as map and submit's ":::" build it: every {} in every word replaced
 * by input, or input appended when no word holds {}. NULL on OOM. */
char **ctl_command_argv(char *const *command, const char *input);
int verb_map(Ctl *c, int argc, char **argv);
int verb_wait(Ctl *c, int argc, char **argv);
int verb_list(Ctl *c, int argc, char **argv);
int verb_status(Ctl *c, int argc, char **argv);
int verb_output(Ctl *c, int argc, char **argv);
int verb_cancel(Ctl *c, int argc, char **argv);
int verb_kill(Ctl *c, int argc, char **argv);
int verb_pause(Ctl *c, int argc, char **argv);
int verb_resume(Ctl *c, int argc, char **argv);
int verb_release(Ctl *c, int argc, char **argv);
int verb_pool_size(Ctl *c, int argc, char **argv);
int verb_pool(Ctl *c, int argc, char **argv);
int verb_restart(Ctl *c, int argc, char **argv);
int verb_clean(Ctl *c, int argc, char **argv);

/* Looks up the object path of pool name with ListPools; prints NoSuchPool (as the daemon words it) if
 * there is none, and returns 0 or an exit code. */
int ctl_pool_path(Ctl *c, const char *name, char **ret_path);

/* Pauses or resumes pool name (pause and resume --pool); returns the exit code. */
int ctl_pool_pause_or_resume(Ctl *c, const char *name, bool pause);

/* Whether the daemon has pools besides default; false if it cannot tell (a daemon without pools). */
bool ctl_has_pools(Ctl *c);
int verb_monitor(Ctl *c, int argc, char **argv);
int verb_daemon_reexec(Ctl *c, int argc, char **argv);

static inline void job_info_donep(JobInfo **p) {
        if (*p)
                job_info_done(*p);
}
