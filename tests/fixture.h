/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Test fixture: a private bus (GTestDBus) with procpoold from the build tree on it. */
#pragma once

#include <string.h>

#include <gio/gio.h>

#define BUS_NAME "org.procpool.Supervisor1"
#define MANAGER_PATH "/org/procpool/Supervisor1"
#define MANAGER_IFACE "org.procpool.Supervisor1"
#define JOB_IFACE "org.procpool.Job1"

typedef struct {
        GTestDBus *bus;
        GDBusConnection *conn; /* the test's own connection to the private bus */
        GPid daemon_pid;
        char *address;
        GPid bus_pid; /* a dbus-daemon of fixture_setup_open_bus(), used instead of bus */
        char *state_dir; /* the daemons' --state-dir (job store and spool), removed at teardown */
} Fixture;

/* Extra daemon arguments for a fixture: pass a NULL-terminated array of strings as test data. */
void fixture_setup(Fixture *f, gconstpointer extra_args);
void fixture_teardown(Fixture *f, gconstpointer extra_args);

/* As fixture_setup, on a private dbus-daemon that admits every uid (GTestDBus admits only its own),
 * so that a client can talk to procpoold as another user. */
void fixture_setup_open_bus(Fixture *f, gconstpointer extra_args);
/* Brings up the bus and the test's connection only; the test starts procpoold itself. */
void fixture_setup_no_daemon(Fixture *f, gconstpointer unused);

/* Starts procpoold on f's bus with extra_args and waits until it owns its name; returns its pid. Unless
 * extra_args name --state-dir or --ephemeral, it keeps its state in f->state_dir, the same for every
 * daemon of the test, so that a daemon started again reads back what the last one stored. */
GPid fixture_start_daemon(Fixture *f, const char *const *extra_args);
/* As fixture_start_daemon, with envp as the daemon's whole environment (NULL: the test's own). */
GPid fixture_start_daemon_env(Fixture *f, const char *const *extra_args, const char *const *envp);
/* Removes a state dir and everything in it. */
void fixture_remove_tree(const char *path);
/* Sends SIGTERM to pid and waits for it (SIGKILL after 10 s); returns its wait status. */
int fixture_stop_daemon(GPid pid);

/* Calls a manager method and waits as long as it takes; returns NULL and sets error on failure. */
GVariant *fixture_call(Fixture *f, const char *method, GVariant *params, GError **error);
/* Calls a method on a job object and waits as long as it takes. */
GVariant *fixture_job_call(Fixture *f, const char *job_path, const char *method, GVariant *params,
                           GError **error);
/* Reads a property of a job object or of the manager (path MANAGER_PATH). */
GVariant *fixture_get_property(Fixture *f, const char *path, const char *iface, const char *name);
/* Submit with a NULL-terminated argv and an a{sv} options value (floating refs are taken). */
char *fixture_submit(Fixture *f, const char *const *argv, GVariant *options);
/* Polls a job's State until it equals state or 20 s pass; returns TRUE if it got there. */
gboolean fixture_wait_state(Fixture *f, const char *job_path, const char *state);
/* Builds an a{sv} from key/GVariant pairs ending in NULL; values may be floating. */
GVariant *fixture_options(const char *first_key, ...) G_GNUC_NULL_TERMINATED;
/* Runs a shell snippet's output as a string, e.g. to count processes; stripped. */
char *fixture_shell(const char *script);

/* Iterates the default main context (signals arrive there) until cond(data) or 20 s pass. */
gboolean fixture_iterate_until(gboolean (*cond)(gpointer data), gpointer data);
/* Call with a NULL-terminated argv; returns the return code, or -1000 with error set. */
int fixture_call_argv(Fixture *f, const char *const *argv, GVariant *options, GError **error);
/* Communicate: returns TRUE with the return code and both streams (free them), or FALSE and error. */
gboolean fixture_communicate(Fixture *f, const char *const *argv, const void *input, gsize input_size,
                             GVariant *options, int *ret_rc, GBytes **ret_stdout, GBytes **ret_stderr,
                             GError **error);
/* The State, ReturnCode and Error of a job, read in one go; free *ret_error. */
void fixture_job_outcome(Fixture *f, const char *job_path, char **ret_state, int *ret_rc, char **ret_error);
/* Asserts that error is the D-Bus error name (and, if non-NULL, that its message contains text). */
void fixture_assert_error(const GError *error, const char *name, const char *text);
/* An empty a{sv}, floating. */
#define FIXTURE_NO_OPTIONS g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0)
