/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fault suite's hardening cases (issue 16): fds carried by messages, the fd limit, losing the bus,
 * stops that must stop, stored sizes and who may run jobs, each with two uids and the 1024-fd limit. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>

#include "fixture.h"

/* Clients of another user: the open bus admits every uid. */
#define OTHER_UID 65534

static const char *const argv_true[] = { "true", NULL };
static const char *const argv_sleep[] = { "sleep", "1000", NULL };

/* ---- helpers ------------------------------------------------------------------------------------ */

static void assert_answers(Fixture *f) {
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(fixture_call_argv(f, (const char *const *) argv_true, NULL, &error), ==, 0);
        g_assert_no_error(error);
}

static gboolean have_root(void) {
        if (getuid() == 0)
                return TRUE;
        g_test_skip("needs root to run clients as another uid");
        return FALSE;
}

static guint proc_fd_count(GPid pid) {
        g_autofree char *dir = g_strdup_printf("/proc/%d/fd", pid);
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        guint n = 0;

        g_assert_nonnull(d);
        while (g_dir_read_name(d))
                n++;
        return n;
}

static gboolean daemon_alive(Fixture *f) {
        return waitpid(f->daemon_pid, NULL, WNOHANG) == 0;
}

static void become_other(gpointer unused) {
        if (setgroups(0, NULL) < 0 || setgid(OTHER_UID) < 0 || setuid(OTHER_UID) < 0)
                _exit(99);
}

/* A call that carries an fd list of n copies of fd. */
static GVariant *call_with_fds(GDBusConnection *c, const char *path, const char *iface, const char *method,
                               GVariant *params, int fd, guint n, GError **error) {
        g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();

        for (guint i = 0; i < n; i++)
                g_assert_cmpint(g_unix_fd_list_append(fds, fd, NULL), ==, (gint) i);
        return g_dbus_connection_call_with_unix_fd_list_sync(c, BUS_NAME, path, iface, method, params, NULL,
                                                             G_DBUS_CALL_FLAGS_NONE, 90 * 1000, fds, NULL,
                                                             NULL, error);
}

static char *error_name(const GError *error) {
        g_autofree char *remote = g_dbus_error_get_remote_error(error);
        return g_strdup(remote ? remote : error->message);
}

/* Child side: "--client ADDRESS MODE ARGS...", run as OTHER_UID; prints its outcome on stdout.
 *   wait-fds PATH N: N Waits on PATH, each carrying an fd, not awaited; then whether the daemon answers.
 *   submit-fd: one Submit of `true` with its stdin passed. */
static int run_client(int argc, char *argv[]) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) c = NULL;
        g_autoptr(GVariant) r = NULL;
        int p[2];

        c = g_dbus_connection_new_for_address_sync(argv[2],
                                                   G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                           G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                   NULL, NULL, &error);
        if (!c) {
                g_print("connect-failed=%s\n", error->message);
                return 0;
        }
        if (pipe2(p, O_CLOEXEC) < 0)
                return 1;

        if (g_str_equal(argv[3], "wait-fds") && argc >= 6) {
                guint n = (guint) g_ascii_strtoull(argv[5], NULL, 10);
                for (guint i = 0; i < n; i++) {
                        g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
                        (void) g_unix_fd_list_append(fds, p[0], NULL);
                        g_dbus_connection_call_with_unix_fd_list(c, BUS_NAME, argv[4], JOB_IFACE, "Wait",
                                                                 NULL, NULL, G_DBUS_CALL_FLAGS_NONE, G_MAXINT,
                                                                 fds, NULL, NULL, NULL);
                }
                /* One connection's calls are handled in order: this answer comes after every Wait. */
                r = g_dbus_connection_call_sync(c, BUS_NAME, MANAGER_PATH, "org.freedesktop.DBus.Peer",
                                                "Ping", NULL, NULL, G_DBUS_CALL_FLAGS_NONE, 90 * 1000, NULL,
                                                &error);
        } else if (g_str_equal(argv[3], "submit-fd")) {
                GVariant *options = fixture_options("stdin", g_variant_new_handle(0), NULL);
                r = call_with_fds(c, MANAGER_PATH, MANAGER_IFACE, "Submit",
                                  g_variant_new("(^as@a{sv})", argv_true, options), p[0], 1, &error);
        } else
                return 2;
        if (!r) {
                g_autofree char *name = error_name(error);
                g_print("error=%s\n", name);
        } else
                g_print("ok\n");
        return 0;
}

/* Runs one client as OTHER_UID and returns what it printed, stripped. */
static char *other_client(Fixture *f, const char *const *args) {
        g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;
        char *out = NULL;
        int status;

        g_ptr_array_add(a, g_file_read_link("/proc/self/exe", NULL));
        g_ptr_array_add(a, g_strdup("--client"));
        g_ptr_array_add(a, g_strdup(f->address));
        for (const char *const *s = args; *s; s++)
                g_ptr_array_add(a, g_strdup(*s));
        g_ptr_array_add(a, NULL);
        g_assert_true(g_spawn_sync(NULL, (char **) a->pdata, NULL, G_SPAWN_DEFAULT, become_other, NULL, &out,
                                   NULL, &status, &error));
        g_assert_no_error(error);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        return g_strstrip(out);
}

static char *submit_running(Fixture *f, GVariant *options) {
        char *path = fixture_submit(f, (const char *const *) argv_sleep, options);

        g_assert_true(fixture_wait_state(f, path, "running"));
        return path;
}

/* ---- fds carried by messages ---------------------------------------------------------------------- */

/* Waits held on a running job kept their messages' fds: another uid's 1500 Waits, each with an fd,
 * took a daemon at the service limit of 1024 fds off the bus (it exited 0). */
static void test_wait_fds(Fixture *f, gconstpointer unused) {
        g_autofree char *path = NULL, *out = NULL;
        guint base;

        if (!have_root())
                return;
        fixture_restart_daemon_nofile(f, NULL, FIXTURE_SERVICE_NOFILE, FIXTURE_SERVICE_NOFILE);
        path = submit_running(f, NULL);
        base = proc_fd_count(f->daemon_pid);

        out = other_client(f, (const char *const[]) { "wait-fds", path, "1500", NULL });
        g_assert_cmpstr(out, ==, "ok");
        g_assert_true(daemon_alive(f));
        /* The Waits are dropped with their client; none kept an fd meanwhile. */
        g_assert_cmpuint(proc_fd_count(f->daemon_pid), <=, base + 4);
        assert_answers(f);
        (void) fixture_job_call(f, path, "Cancel", NULL, NULL);
}

/* Call kept its message, and the fds it carried, until its job ended; Communicate's input lived in its
 * message until it was written. */
static void send_with_fds(Fixture *f, const char *method, GVariant *params, int fd, guint n) {
        g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();

        for (guint k = 0; k < n; k++)
                (void) g_unix_fd_list_append(fds, fd, NULL);
        g_dbus_connection_call_with_unix_fd_list(f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, method,
                                                 params, NULL, G_DBUS_CALL_FLAGS_NONE, G_MAXINT, fds, NULL,
                                                 NULL, NULL);
}

static const char *const args_pool_32[] = { "--pool-size=32", NULL };

static void test_call_fds(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        guint base;
        int p[2];

        fixture_restart_daemon_nofile(f, args_pool_32, FIXTURE_SERVICE_NOFILE, FIXTURE_SERVICE_NOFILE);
        base = proc_fd_count(f->daemon_pid);
        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        /* 10 Calls and 10 Communicates that run on, each message with 16 fds (the most the bus passes) that
         * the method does not take. */
        for (int i = 0; i < 10; i++) {
                send_with_fds(f, "Call", g_variant_new("(^as@a{sv})", argv_sleep, FIXTURE_NO_OPTIONS), p[0],
                              16);
                send_with_fds(f, "Communicate",
                              g_variant_new("(^as@ay@a{sv})", argv_sleep,
                                            g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, "input", 5, 1),
                                            FIXTURE_NO_OPTIONS),
                              p[0], 16);
        }
        r = g_dbus_connection_call_sync(f->conn, BUS_NAME, MANAGER_PATH, "org.freedesktop.DBus.Peer", "Ping",
                                        NULL, NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_no_error(error);
        close(p[0]);
        close(p[1]);
        for (int i = 0; i < 2000; i++) {
                g_autoptr(GVariant) v = fixture_get_property(f, MANAGER_PATH, MANAGER_IFACE, "Running");
                if (g_variant_get_uint32(v) == 20)
                        break;
                g_usleep(10000);
        }
        /* 320 fds were sent: the daemon holds its 20 jobs' pipes and pidfds, none of the messages' fds. */
        g_assert_cmpuint(proc_fd_count(f->daemon_pid), <, base + 120);
        assert_answers(f);
}

/* systemd's advice: raise the soft limit to the hard one at start; jobs still get the old soft limit. */
static void test_raise_nofile(Fixture *f, gconstpointer unused) {
        const char *const ulimit_n[] = { "sh", "-c", "ulimit -n", NULL };
        g_autoptr(GBytes) out = NULL, err = NULL;
        g_autoptr(GError) error = NULL;
        struct rlimit rl;
        int rc;

        fixture_restart_daemon_nofile(f, NULL, FIXTURE_SERVICE_NOFILE, 4 * FIXTURE_SERVICE_NOFILE);
        g_assert_cmpint(prlimit(f->daemon_pid, RLIMIT_NOFILE, NULL, &rl), ==, 0);
        g_assert_cmpuint(rl.rlim_cur, ==, 4 * FIXTURE_SERVICE_NOFILE);
        g_assert_true(fixture_communicate(f, ulimit_n, NULL, 0, NULL, &rc, &out, &err, &error));
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 0);
        g_assert_cmpmem(g_bytes_get_data(out, NULL), g_bytes_get_size(out), "1024\n", 5);
}

/* Running jobs took the last fds, and the next message with fds cost the daemon its bus. With a
 * reserve, jobs past it fail with EMFILE and the daemon still takes messages that carry fds. */
static const char *const args_big_pool[] = { "--pool-size=400", NULL };

static void test_fd_reserve(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        g_autofree char *path = NULL;
        guint failed = 0;
        int p[2];

        fixture_restart_daemon_nofile(f, args_big_pool, FIXTURE_SERVICE_NOFILE, FIXTURE_SERVICE_NOFILE);
        for (int i = 0; i < 400; i++)
                g_free(fixture_submit(f, (const char *const *) argv_sleep, NULL));
        for (int i = 0; i < 2000; i++) {
                g_autoptr(GVariant) q = fixture_get_property(f, MANAGER_PATH, MANAGER_IFACE, "Queued");
                if (g_variant_get_uint32(q) == 0)
                        break;
                g_usleep(10000);
        }
        for (guint64 id = 1; id <= 400; id++) {
                g_autofree char *job = g_strdup_printf(MANAGER_PATH "/job/%" G_GUINT64_FORMAT, id);
                g_autofree char *state = NULL, *text = NULL;
                fixture_job_outcome(f, job, &state, NULL, &text);
                if (g_str_equal(state, "failed")) {
                        g_assert_nonnull(strstr(text, "Too many open files"));
                        failed++;
                }
        }
        g_assert_cmpuint(failed, >, 0);

        /* A message with 16 fds (the most the bus passes) still arrives whole. */
        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        r = call_with_fds(f->conn, MANAGER_PATH, MANAGER_IFACE, "Submit",
                          g_variant_new("(^as@a{sv})", argv_true,
                                        fixture_options("stdin", g_variant_new_handle(0), NULL)),
                          p[0], 16, &error);
        close(p[0]);
        close(p[1]);
        g_assert_true(daemon_alive(f));
        g_assert_no_error(error);
        g_variant_get(r, "(o)", &path);
        g_assert_true(daemon_alive(f));
}

/* One uid's queued jobs held every fd passed with them, without bound. The system instance, where
 * another uid may run jobs too. */
static const char *const args_one_slot[] = { "--system", "--pool-size=1", NULL };

static void test_user_fd_bound(Fixture *f, gconstpointer unused) {
        g_autofree char *blocker = NULL, *out = NULL;
        guint ok = 0;
        int p[2];

        if (!have_root())
                return;
        fixture_restart_daemon_nofile(f, args_one_slot, FIXTURE_SERVICE_NOFILE, FIXTURE_SERVICE_NOFILE);
        blocker = submit_running(f, NULL);
        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        for (int i = 0; i < 300; i++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) r =
                        call_with_fds(f->conn, MANAGER_PATH, MANAGER_IFACE, "Submit",
                                      g_variant_new("(^as@a{sv})", argv_true,
                                                    fixture_options("stdin", g_variant_new_handle(0), NULL)),
                                      p[0], 1, &error);
                if (!r) {
                        fixture_assert_error(error, "org.freedesktop.DBus.Error.LimitsExceeded",
                                             "fds passed with its queued jobs");
                        break;
                }
                ok++;
        }
        close(p[0]);
        close(p[1]);
        /* A sixteenth of the limit per uid. */
        g_assert_cmpuint(ok, ==, FIXTURE_SERVICE_NOFILE / 16);
        /* Another uid has its own share. */
        out = other_client(f, (const char *const[]) { "submit-fd", NULL });
        g_assert_cmpstr(out, ==, "ok");
        (void) fixture_job_call(f, blocker, "Cancel", NULL, NULL);
        assert_answers(f);
}

/* Losing the bus ended the loop with status 0: Restart=on-failure did not restart the daemon. */
static void test_lost_bus(Fixture *f, gconstpointer unused) {
        int status;

        g_assert_cmpint(f->bus_pid, >, 0);
        (void) kill(f->bus_pid, SIGKILL);
        g_assert_cmpint(waitpid(f->bus_pid, NULL, 0), ==, f->bus_pid);
        f->bus_pid = 0;
        g_assert_cmpint(waitpid(f->daemon_pid, &status, 0), ==, f->daemon_pid);
        f->daemon_pid = 0;
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), !=, 0);
}

/* ---- every size stored is bounded ------------------------------------------------------------------ */

/* A multi-MiB cwd was taken, uncounted, and repeated whole in the failed job's Error. */
static void test_cwd_bounded(Fixture *f, gconstpointer unused) {
        g_autofree char *d = g_strnfill(16400, 'd'), *cwd = g_strconcat("/", d, NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;

        r = fixture_call(f, "Call",
                         g_variant_new("(^as@a{sv})", argv_true,
                                       fixture_options("cwd", g_variant_new_string(cwd), NULL)),
                         &error);
        g_assert_null(r);
        fixture_assert_error(error, "org.freedesktop.DBus.Error.LimitsExceeded", "Option 'cwd' is longer");
        assert_answers(f);
}

/* The Error of a job that could not start named a client's string whole: argv[0] of 1 MiB. */
static void test_error_text_bounded(Fixture *f, gconstpointer unused) {
        g_autofree char *name = g_strnfill(900 * 1024, 'x');
        const char *const argv[] = { name, NULL };
        g_autoptr(GError) error = NULL;
        g_autofree char *path = NULL, *state = NULL, *text = NULL;

        g_assert_cmpint(fixture_call_argv(f, argv, NULL, &error), ==, -1000);
        fixture_assert_error(error, "org.procpool.Error.SpawnFailed", "...");
        g_assert_cmpuint(strlen(error->message), <, 2048);
        path = fixture_submit(f, argv, NULL);
        g_assert_true(fixture_wait_state(f, path, "failed"));
        fixture_job_outcome(f, path, &state, NULL, &text);
        g_assert_cmpuint(strlen(text), <=, 1024);
        g_assert_nonnull(strstr(text, "..."));
        g_assert_true(g_str_has_suffix(text, "No such file or directory"));
        assert_answers(f);
}

/* ---- main ---------------------------------------------------------------------------------------------- */

#define ADD(name, setup, args, fn) \
        g_test_add("/procpool/fault/" name, Fixture, args, setup, fn, fixture_teardown)

int main(int argc, char *argv[]) {
        if (argc >= 4 && g_str_equal(argv[1], "--client"))
                return run_client(argc, argv);

        g_test_init(&argc, &argv, NULL);

        /* fds carried by messages */
        ADD("wait-fds", fixture_setup_open_bus, NULL, test_wait_fds);
        ADD("call-fds", fixture_setup_open_bus, NULL, test_call_fds);
        ADD("raise-nofile", fixture_setup_open_bus, NULL, test_raise_nofile);
        ADD("fd-reserve", fixture_setup_open_bus, NULL, test_fd_reserve);
        ADD("user-fd-bound", fixture_setup_system, NULL, test_user_fd_bound);
        ADD("lost-bus", fixture_setup_open_bus, NULL, test_lost_bus);

        /* every size stored is bounded */
        ADD("cwd-bounded", fixture_setup, NULL, test_cwd_bounded);
        ADD("error-text-bounded", fixture_setup, NULL, test_error_text_bounded);
        return g_test_run();
}
