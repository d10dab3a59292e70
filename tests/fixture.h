/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Test fixture: a private bus with procpoold from the build tree on it, and what the suites share:
 * calls, gates, waits on signals and processes, clients of another uid and what /proc says. */
#pragma once

#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <gio/gio.h>

#define BUS_NAME "org.procpool.Supervisor1"
#define MANAGER_PATH "/org/procpool/Supervisor1"
#define MANAGER_IFACE "org.procpool.Supervisor1"
#define JOB_IFACE "org.procpool.Job1"

/* Clients and jobs of another user run as this uid (nobody). */
#define OTHER_UID 65534
/* The most any wait of the fixture lasts: a bound that fails a broken daemon instead of hanging the
 * suite, never a time anything is expected to take. */
#define FIXTURE_WAIT_SEC 60
/* The soft limit of open files systemd gives a service. */
#define FIXTURE_SERVICE_NOFILE 1024

typedef struct {
        GDBusConnection *conn; /* the test's own connection to the private bus */
        GPid daemon_pid;
        char *address;
        GPid bus_pid;     /* the test's dbus-daemon, at address */
        char *state_dir;  /* the daemons' --state-dir (job store and spool), removed at teardown */
        char *gate_dir;   /* where fixture_gate_path() puts gates, made on first use */
        uid_t daemon_uid; /* the uid procpoold runs as: the test's own (0), or OTHER_UID */
        GPid polkit_pid;  /* polkitd of fixture_polkit_start() */
        char *polkit_dir; /* its actions and rules, removed at teardown */
} Fixture;

/* Registers a test case on a Fixture; args are the daemon's extra arguments (NULL-terminated). */
#define FIXTURE_ADD(path, setup, args, fn) g_test_add(path, Fixture, args, setup, fn, fixture_teardown)

/* ---- the bus and the daemon ------------------------------------------------------------------ */

/* Extra daemon arguments for a fixture: pass a NULL-terminated array of strings as test data. */
void fixture_setup(Fixture *f, gconstpointer extra_args);
void fixture_teardown(Fixture *f, gconstpointer extra_args);

/* As fixture_setup, on a private dbus-daemon that admits every uid (fixture_setup's admits only its own), so
 * that a client can talk to procpoold as another user. */
void fixture_setup_open_bus(Fixture *f, gconstpointer extra_args);
/* As fixture_setup_open_bus, with procpoold (and so its jobs) run as OTHER_UID: root (the test's own
 * connection) and OTHER_UID (fixture_other_client()) are then two uids that may both run jobs, the
 * daemon's own and root. Its state dir and the gate dir belong to OTHER_UID. Skipped unless the test
 * is root. */
void fixture_setup_open_bus_other_daemon(Fixture *f, gconstpointer extra_args);
/* Watches the bus for a Wait on one job, through a monitor (org.freedesktop.DBus.Monitoring): so that a
 * test knows a client's Wait is in before it goes on. */
typedef struct FixtureWaitWatch {
        const char *path; /* the job's object path; set before fixture_wait_watch_start() */
        gint seen;        /* set in GDBus's worker thread */
        GDBusConnection *monitor;
} FixtureWaitWatch;
void fixture_wait_watch_start(Fixture *f, FixtureWaitWatch *w);
/* Iterates the main context until the Wait was seen; FALSE after the fixture's bound. */
gboolean fixture_wait_watch_seen(FixtureWaitWatch *w);
void fixture_wait_watch_stop(FixtureWaitWatch *w);
/* Brings up a dbus-daemon of the configuration config_text as f's bus, and the test's connection. */
void fixture_setup_bus_config(Fixture *f, const char *config_text);
/* Brings up the bus and the test's connection only; the test starts procpoold itself. */
void fixture_setup_no_daemon(Fixture *f, gconstpointer unused);

/* Starts procpoold on f's bus with extra_args, as f->daemon_uid, and waits until it owns its name;
 * returns its pid. Unless extra_args name --state-dir or --ephemeral, it keeps its state in
 * f->state_dir, the same for every daemon of the test, so that a daemon started again reads back what
 * the last one stored. */
GPid fixture_start_daemon(Fixture *f, const char *const *extra_args);
/* As fixture_start_daemon, with envp as the daemon's whole environment (NULL: the test's own). */
GPid fixture_start_daemon_env(Fixture *f, const char *const *extra_args, const char *const *envp);
/* Replaces f's daemon by one started with extra_args under RLIMIT_NOFILE soft:hard, as under systemd
 * (FIXTURE_SERVICE_NOFILE): through prlimit(1), which execs it, so f->daemon_pid is the daemon. */
void fixture_restart_daemon_nofile(Fixture *f, const char *const *extra_args, rlim_t soft, rlim_t hard);
/* Removes a state dir and everything in it. */
void fixture_remove_tree(const char *path);
/* Waits until procpoold, pid itself (not one killed a moment ago), owns its bus name; fails the test if
 * pid exits first. */
void fixture_wait_for_name(Fixture *f, GPid pid);
/* The unique name that owns procpoold's bus name now; NULL if none does. */
char *fixture_name_owner(Fixture *f);
/* Watches procpoold's bus name being taken anew (a re-exec, a start): from its owner now, if any. */
typedef struct FixtureOwnerWatch {
        char *old_owner;
        char *new_owner; /* set once another connection, or the old one again after leaving, owns the name */
        gboolean left;
        guint subscription;
} FixtureOwnerWatch;
void fixture_watch_owner(Fixture *f, FixtureOwnerWatch *w);
/* Waits until w sees the name taken anew, fails the test after FIXTURE_WAIT_SEC, and ends the watch. */
void fixture_await_new_owner(Fixture *f, FixtureOwnerWatch *w);
/* Supervisor1.Reexecute(), and back: returns once procpoold's next image owns its name (fixture_wait_for_name()
 * cannot tell: the image before it is the same process). */
void fixture_reexecute(Fixture *f);
/* Sends SIGTERM to pid and waits for it (SIGKILL after 10 s); returns its wait status. */
int fixture_stop_daemon(GPid pid);

/* Reads fd to its end (failing the test on an error) and returns what it read. */
char *fixture_read_to_end(int fd);
/* Reads one line from in, failing the test at its end; logs it, prefixed with what. */
char *fixture_read_line(GDataInputStream *in, const char *what);

/* A new connection to the bus at address; NULL and error if it cannot connect. */
GDBusConnection *fixture_connect(const char *address, GError **error);
/* A client of the bus at address that authenticates and is then the test's to drive: it sends what
 * fixture_raw_send() writes, and reads only what the test reads, or nothing. No Hello is sent. */
GIOStream *fixture_raw_connect(const char *address);
/* Writes m on s as message serial. */
void fixture_raw_send(GIOStream *s, GDBusMessage *m, guint32 serial);
/* Reads the next message from s, waiting for it. */
GDBusMessage *fixture_raw_receive(GIOStream *s);
/* Another client of f's bus, of the test's own uid. */
GDBusConnection *fixture_connect_other(Fixture *f);
/* Closes c and returns once procpoold has certainly heard that it left the bus. */
void fixture_disconnect(Fixture *f, GDBusConnection *c);
/* Returns once every call sent on c so far has reached procpoold: it handles a connection's messages
 * in order, so it has handled them before it answers a Ping sent after them. */
void fixture_sync_with_daemon(GDBusConnection *c);
/* Whether procpoold runs jobs in per-job cgroups: it then lives in <cgroup>/supervisor. */
gboolean fixture_per_job_cgroups(Fixture *f);

/* ---- calls ------------------------------------------------------------------------------------ */

/* Calls a manager method and waits as long as it takes; returns NULL and sets error on failure. */
GVariant *fixture_call(Fixture *f, const char *method, GVariant *params, GError **error);
/* Calls a method on a job object and waits as long as it takes. */
GVariant *fixture_job_call(Fixture *f, const char *job_path, const char *method, GVariant *params,
                           GError **error);
/* Calls a method of procpoold on connection c and waits as long as it takes. */
GVariant *fixture_call_raw(GDBusConnection *c, const char *path, const char *iface, const char *method,
                           GVariant *params, GError **error);
/* Calls a job method that must succeed. */
void fixture_job_call_ok(Fixture *f, const char *job_path, const char *method, GVariant *params);
/* A job's captured stdout, from GetOutput (which must succeed), as a string. */
char *fixture_job_stdout(Fixture *f, const char *job_path);
/* Calls and asserts the D-Bus error name (and text, if given); no reply may come. */
void fixture_expect_error(Fixture *f, const char *path, const char *iface, const char *method,
                          GVariant *params, const char *name, const char *text);
/* Call of argv with options (NULL: none) that must fail with the error name (and text, if given). */
void fixture_expect_call_error(Fixture *f, const char *const *argv, GVariant *options, const char *name,
                               const char *text);
/* Reads a property of a job object or of the manager (path MANAGER_PATH). */
GVariant *fixture_get_property(Fixture *f, const char *path, const char *iface, const char *name);
/* A uint32 property of the manager: PoolSize, Running, Queued, MaxQueued. */
guint32 fixture_manager_u(Fixture *f, const char *name);
/* The path of job id. */
char *fixture_job_path(guint64 id);
/* A job's State. */
char *fixture_job_state(Fixture *f, const char *job_path);
/* A job's Pid. */
guint32 fixture_job_pid(Fixture *f, const char *job_path);
/* Submit with a NULL-terminated argv and an a{sv} options value (floating refs are taken). */
char *fixture_submit(Fixture *f, const char *const *argv, GVariant *options);
/* Submits "sleep 1000" with options (NULL: none) and waits until it runs; the test ends it. */
char *fixture_submit_sleeper(Fixture *f, GVariant *options);
/* Builds an a{sv} from key/GVariant pairs ending in NULL; values may be floating. */
GVariant *fixture_options(const char *first_key, ...) G_GNUC_NULL_TERMINATED;
/* The bytes of an 'ay' as a string (free it), whether or not they end in a NUL. */
char *fixture_bytes_text(GVariant *ay);
/* An 'ay' of size bytes, floating. */
GVariant *fixture_bytes(const void *data, gsize size);
/* Runs a shell snippet's output as a string, e.g. to count processes; stripped. */
char *fixture_shell(const char *script);

/* Call with a NULL-terminated argv; returns the return code, or -1000 with error set. */
int fixture_call_argv(Fixture *f, const char *const *argv, GVariant *options, GError **error);
/* Communicate: returns TRUE with the return code and both streams (free them), or FALSE and error. */
gboolean fixture_communicate(Fixture *f, const char *const *argv, const void *input, gsize input_size,
                             GVariant *options, int *ret_rc, GBytes **ret_stdout, GBytes **ret_stderr,
                             GError **error);
/* Communicate with empty input; asserts success and the return code, returns stdout as a string. */
char *fixture_run_output(Fixture *f, const char *const *argv, GVariant *options, int expected_rc);
/* The State, ReturnCode and Error of a job, read in one go; free *ret_error. */
void fixture_job_outcome(Fixture *f, const char *job_path, char **ret_state, int *ret_rc, char **ret_error);
/* Asserts a job's State and ReturnCode. */
void fixture_assert_outcome(Fixture *f, const char *job_path, const char *state, int rc);
/* Asserts a job's State. */
void fixture_assert_state(Fixture *f, const char *job_path, const char *state);
/* Asserts that the daemon runs a job and answers: Call of "true" returns 0. */
void fixture_assert_answers(Fixture *f);
/* Asserts that error is the D-Bus error name (and, if non-NULL, that its message contains text). */
void fixture_assert_error(const GError *error, const char *name, const char *text);
/* An empty a{sv}, floating. */
#define FIXTURE_NO_OPTIONS g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0)

/* The outcome of an asynchronous call: pass fixture_on_reply and a FixtureReply to
 * g_dbus_connection_call(), then fixture_reply_wait() it. */
typedef struct {
        gboolean done;
        GVariant *value; /* the reply, or NULL */
        GError *error;   /* the error, or NULL */
} FixtureReply;
void fixture_on_reply(GObject *source, GAsyncResult *result, gpointer reply);
/* Iterates the default main context until the reply is there (at most FIXTURE_WAIT_SEC). */
gboolean fixture_reply_wait(FixtureReply *reply);
void fixture_reply_clear(FixtureReply *reply);

/* ---- waits: on signals, files and processes, never on the clock -------------------------------- */

/* Iterates the default main context (signals arrive there) until cond(data), at most FIXTURE_WAIT_SEC. */
gboolean fixture_iterate_until(gboolean (*cond)(gpointer data), gpointer data);
/* Waits until the job has been seen in state (read, or in a signal); it need not be there yet. */
gboolean fixture_wait_state(Fixture *f, const char *job_path, const char *state);
/* Waits until the job has left the queue: running, or ended without starting. */
gboolean fixture_wait_started(Fixture *f, const char *job_path);
/* Waits until the job's Pid reads 0: its main process has exited (with the job, or before the rest of a
 * job being stopped). Only for a job that has started. */
gboolean fixture_wait_main_exited(Fixture *f, const char *job_path);
/* Waits until the job has ended: its FinishedAt is set. */
gboolean fixture_wait_finished(Fixture *f, const char *job_path);
/* Waits until the manager's Running and Queued read as given. */
gboolean fixture_wait_counts(Fixture *f, guint32 running, guint32 queued);
/* Waits until process pid has ended (it may be a zombie); TRUE also if it is gone already. */
gboolean fixture_wait_pid_exit(pid_t pid);
/* Waits until the file at path exists (inotify on its directory). */
gboolean fixture_wait_for_file(const char *path);
/* Waits for the file at path and returns the pid written in it (by a job, as "echo $! > path"); the job
 * writes it elsewhere and renames it, so that it is whole when it appears. */
pid_t fixture_wait_pid_file(const char *path);

/* ---- gates: a job says it got somewhere by creating a file, or waits for one the test creates ---- */

/* A path in a directory of the fixture's own (removed by the teardown); nothing is created yet. */
char *fixture_gate_path(Fixture *f, const char *name);
/* Creates the file at path, opening the gate a job waits on. */
void fixture_gate_open(const char *path);
/* The shell snippet of a job that waits until path exists (or its directory is gone): the job polls,
 * the test does not. */
char *fixture_gate_wait_sh(const char *path);

/* ---- another uid -------------------------------------------------------------------------------- */

/* A child setup function for g_spawn_*(): drops to OTHER_UID (exit 99 if it cannot). */
void fixture_become_other(gpointer unused);
/* TRUE if the test may act as another uid (it is root); otherwise marks the test skipped. */
gboolean fixture_have_root(void);
/* Runs argv as OTHER_UID, asserts that it exited 0 and returns its stdout. */
char *fixture_run_as_other(const char *const *argv);
/* This test binary, to run again in another mode. */
char *fixture_self(void);
/* The helper (tests/helper.c) that runs as a job or as a client of another uid. */
const char *fixture_helper(void);
/* The argv of the helper's one request as another uid: "client ADDRESS call|communicate CMD..." or
 * "client ADDRESS submit PRIORITY CMD...". */
char **fixture_other_client_argv(Fixture *f, const char *mode, const char *const *cmd);
/* Runs that request as OTHER_UID and returns what the helper printed, stripped: "rc=N", "rc=N out=N",
 * "path=JOB_PATH" (Submit) or "error=NAME". */
char *fixture_other_client(Fixture *f, const char *mode, const char *const *cmd);

/* ---- the system bus, polkit and real users ------------------------------------------------------ */

/* Two unprivileged users made by tools/install-deps; procpool-test1 is in the supplementary group
 * procpool-test-extra as well. */
#define FIXTURE_USER1 "procpool-test1"
#define FIXTURE_USER2 "procpool-test2"

typedef struct FixtureUser {
        char *name;
        uid_t uid;
        gid_t gid;
        gid_t *groups; /* as initgroups() gives them, the primary gid among them */
        int n_groups;
        char *home;
        char *shell;
} FixtureUser;

/* A user of the user database, looked up once; fails the test if there is none. */
const FixtureUser *fixture_user(const char *name);
/* A child setup function for g_spawn_*(): becomes user (a const FixtureUser *): its groups, gid and uid;
 * exit 99 if it cannot. */
void fixture_become_user(gpointer user);
/* Runs argv as user in /, with envp (NULL: the test's environment); its stdout and stderr in ret_out and
 * ret_err (if not NULL; free them); returns its wait status. */
int fixture_run_as_user(const FixtureUser *user, const char *const *argv, const char *const *envp,
                        char **ret_out, char **ret_err);
/* Runs the helper's "script" mode as user against f's bus: one line per operation (tests/helper.c says
 * which there are and what they print); returns what it printed. */
char *fixture_user_client(Fixture *f, const FixtureUser *user, const char *const *ops);

/* A dbus-daemon of type system as f's bus: a system bus's base policy (nothing is owned or called that no
 * policy allows), with data/org.procpool.Supervisor1.conf and polkit's policy in it; and the test's
 * connection. */
void fixture_setup_system_bus(Fixture *f, gconstpointer unused);
/* Starts polkitd against f's bus, in a mount namespace of its own where its actions are
 * data/org.procpool.policy alone (none without with_actions) and its rules rules (JavaScript, or NULL
 * for none): nothing of the machine's polkit configuration is touched or seen. Waits until it owns its
 * name; the teardown stops it. */
void fixture_polkit_start(Fixture *f, const char *rules, gboolean with_actions);
/* Replaces polkitd's rules; polkitd reloads them when it notices: gate on fixture_polkit_answers(). */
void fixture_polkit_set_rules(Fixture *f, const char *rules);
/* Asks polkitd, until it answers so or the fixture's bound passes, whether a process of user is
 * authorized for action without interaction; TRUE once the answer is authorized. */
gboolean fixture_polkit_answers(Fixture *f, const FixtureUser *user, const char *action, gboolean authorized);
/* The system bus, polkitd with procpool's actions and no rules (their defaults apply), and procpoold
 * --system with extra_args (a NULL-terminated array, or NULL). */
void fixture_setup_system(Fixture *f, gconstpointer extra_args);

/* ---- what /proc says ------------------------------------------------------------------------------- */

/* The pids of every process. */
GArray *fixture_proc_pids(void);
/* State letter, parent and process group of a process; FALSE if it is gone. */
gboolean fixture_proc_stat(pid_t pid, char *ret_state, pid_t *ret_ppid, pid_t *ret_pgrp);
/* Children of parent, and how many of them are zombies. */
void fixture_proc_children(pid_t parent, guint *ret_children, guint *ret_zombies);
/* The live (neither zombie nor dead) processes of process group pgid. */
GArray *fixture_proc_group(pid_t pgid);
/* Whether nothing of pid runs on: it is gone, dead (a zombie, whoever its parent), exiting, or has SIGKILL
 * pending. Right after a SIGKILL it may not be gone yet; it cannot run any more. */
gboolean fixture_proc_killed(pid_t pid);
/* How many fds pid has open. */
guint fixture_proc_fd_count(pid_t pid);
/* A KiB field of /proc/PID/status, e.g. "VmRSS:". */
guint64 fixture_proc_status_kib(pid_t pid, const char *field);
/* Whether pid runs with AddressSanitizer, whose quarantine keeps freed memory: its RSS says nothing. */
gboolean fixture_proc_has_asan(pid_t pid);
