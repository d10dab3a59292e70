/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* procpoold as a process: its command line, a bus name already taken, and a clean stop on SIGTERM. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "fixture.h"

typedef struct {
        int status;
        char *out;
        char *err;
} Run;

static void run_done(Run *r) {
        g_free(r->out);
        g_free(r->err);
}

static void run_daemon(Run *ret, const char *const *args) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_autoptr(GError) error = NULL;

        g_ptr_array_add(argv, (gpointer) g_getenv("PROCPOOLD"));
        for (const char *const *a = args; *a; a++)
                g_ptr_array_add(argv, (gpointer) *a);
        g_ptr_array_add(argv, NULL);
        g_assert_true(g_spawn_sync(NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &ret->out,
                                   &ret->err, &ret->status, &error));
        g_assert_no_error(error);
}

static void test_help(void) {
        const char *args[] = { "--help", NULL };
        Run r = {};

        run_daemon(&r, args);
        g_assert_true(WIFEXITED(r.status));
        g_assert_cmpint(WEXITSTATUS(r.status), ==, 0);
        g_assert_nonnull(strstr(r.out, "--pool-size"));
        g_assert_nonnull(strstr(r.out, "--retain"));
        run_done(&r);
}

static void test_version(void) {
        const char *args[] = { "--version", NULL };
        Run r = {};

        run_daemon(&r, args);
        g_assert_true(WIFEXITED(r.status));
        g_assert_cmpint(WEXITSTATUS(r.status), ==, 0);
        g_assert_true(g_str_has_prefix(r.out, "procpoold "));
        g_assert_true(g_ascii_isdigit(r.out[strlen("procpoold ")]));
        run_done(&r);
}

static void test_bad_options(void) {
        static const struct {
                const char *arg;
                const char *mentions;
        } cases[] = {
                { "--frobnicate", "frobnicate" },    { "--pool-size=0", "pool-size" },
                { "--pool-size=many", "pool-size" }, { "--max-queued=-1", "max-queued" },
                { "--retain=abc", "retain" },        { "--output-limit=lots", "output-limit" },
                { "unexpected", "unexpected" },
        };

        /* A usage error: exit status 2 and a message naming what was wrong, nothing started. */
        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                const char *args[] = { "--address=unix:path=/nonexistent/procpool-bus", cases[i].arg, NULL };
                Run r = {};
                run_daemon(&r, args);
                g_test_message("%s: %s", cases[i].arg, r.err);
                g_assert_true(WIFEXITED(r.status));
                g_assert_cmpint(WEXITSTATUS(r.status), ==, 2);
                g_assert_nonnull(strstr(r.err, cases[i].mentions));
                run_done(&r);
        }
}

static void test_no_bus(void) {
        const char *args[] = { "--address=unix:path=/nonexistent/procpool-bus", NULL };
        Run r = {};

        run_daemon(&r, args);
        g_assert_true(WIFEXITED(r.status));
        g_assert_cmpint(WEXITSTATUS(r.status), !=, 0);
        g_assert_cmpint(WEXITSTATUS(r.status), !=, 2);
        g_assert_nonnull(strstr(r.err, "Failed to connect"));
        run_done(&r);
}

static void test_name_taken(Fixture *f, gconstpointer unused) {
        g_autofree char *address = g_strdup_printf("--address=%s", f->address);
        const char *args[] = { address, NULL };
        const char *t[] = { "sh", "-c", "exit 6", NULL };
        g_autoptr(GError) error = NULL;
        Run r = {};

        /* The second daemon says why it cannot serve, and leaves the first one alone. */
        run_daemon(&r, args);
        g_assert_true(WIFEXITED(r.status));
        g_assert_cmpint(WEXITSTATUS(r.status), !=, 0);
        g_assert_nonnull(strstr(r.err, BUS_NAME));
        g_assert_nonnull(strstr(r.err, "already running"));
        run_done(&r);
        g_assert_cmpint(fixture_call_argv(f, t, NULL, &error), ==, 6);
        g_assert_no_error(error);
}

typedef struct {
        int replies;
        GError *call_error;
        GError *wait_error;
} Waiting;

static void on_reply(GObject *source, GAsyncResult *res, gpointer data) {
        GError **error = data;
        g_autoptr(GVariant) r = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, error);
        if (r)
                g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED, "the job was not stopped");
}

static gboolean both_replied(gpointer data) {
        Waiting *w = data;
        return w->call_error && w->wait_error;
}

static gboolean group_gone(pid_t pgid) {
        for (int i = 0; i < 2000; i++) {
                if (kill(-pgid, 0) < 0 && errno == ESRCH)
                        return TRUE;
                g_usleep(5000);
        }
        return FALSE;
}

/* Without a store: the v1 stop, in which every waiting caller hears Cancelled. */
static const char *const pool2[] = { "--pool-size=2", "--ephemeral", NULL };

static void test_sigterm(Fixture *f, gconstpointer unused) {
        g_autofree char *dir = g_dir_make_tmp("procpool-test-XXXXXX", NULL);
        g_autofree char *marker = g_build_filename(dir, "ran", NULL);
        const char *with_child[] = { "sh", "-c", "sleep 30; exit 0", NULL };
        const char *sleeper[] = { "sleep", "30", NULL };
        const char *touch[] = { "touch", marker, NULL };
        g_autofree char *submitted = fixture_submit(f, with_child, NULL);
        g_autofree char *queued = NULL;
        Waiting w = {};
        guint32 pids[2];
        int status;

        g_dbus_connection_call(f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call",
                               g_variant_new("(^as@a{sv})", sleeper, FIXTURE_NO_OPTIONS), NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, on_reply, &w.call_error);
        g_dbus_connection_call(f->conn, BUS_NAME, submitted, JOB_IFACE, "Wait", NULL, NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, on_reply, &w.wait_error);
        g_assert_true(fixture_wait_state(f, submitted, "running"));
        g_assert_true(fixture_wait_state(f, MANAGER_PATH "/job/2", "running"));
        queued = fixture_submit(f, touch, NULL);
        g_assert_cmpstr(queued, ==, MANAGER_PATH "/job/3");
        for (int i = 0; i < 2; i++) {
                g_autofree char *p = g_strdup_printf(MANAGER_PATH "/job/%d", i + 1);
                g_autoptr(GVariant) v = fixture_get_property(f, p, JOB_IFACE, "Pid");
                pids[i] = g_variant_get_uint32(v);
                g_assert_cmpuint(pids[i], >, 0);
        }

        /* Stops what runs, answers who waits, exits 0; the queued job never starts. */
        g_assert_no_errno(kill(f->daemon_pid, SIGTERM));
        g_assert_cmpint(waitpid(f->daemon_pid, &status, 0), ==, f->daemon_pid);
        f->daemon_pid = 0;
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        g_assert_true(fixture_iterate_until(both_replied, &w));
        fixture_assert_error(w.call_error, "org.procpool.Error.Cancelled", NULL);
        fixture_assert_error(w.wait_error, "org.procpool.Error.Cancelled", NULL);
        for (int i = 0; i < 2; i++)
                g_assert_true(group_gone(pids[i]));
        g_assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
        g_clear_error(&w.call_error);
        g_clear_error(&w.wait_error);
        (void) g_rmdir(dir);
}

static void test_shutting_down(Fixture *f, gconstpointer unused) {
        /* Ignores SIGTERM, so the daemon stays up, stopping, for the stop timeout. */
        const char *stubborn[] = { "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done",
                                   NULL };
        const char *t[] = { "true", NULL };
        g_autofree char *path = fixture_submit(
                f, stubborn, fixture_options("stop-timeout-usec", g_variant_new_uint64(1500000), NULL));
        g_autoptr(GError) error = NULL;
        gboolean refused = FALSE;
        int status;

        g_assert_true(fixture_wait_state(f, path, "running"));
        for (int i = 0; i < 2000; i++) {
                g_autoptr(GVariant) r = fixture_job_call(f, path, "GetOutput", NULL, &error), o = NULL,
                                    e = NULL;
                g_assert_no_error(error);
                g_variant_get(r, "(@ay@ay)", &o, &e);
                if (g_variant_get_size(o) > 0)
                        break;
                g_usleep(5000);
        }
        g_assert_no_errno(kill(f->daemon_pid, SIGTERM));
        for (int i = 0; i < 400 && !refused; i++) {
                g_autoptr(GVariant) r = fixture_call(
                        f, "Submit", g_variant_new("(^as@a{sv})", t, FIXTURE_NO_OPTIONS), &error);
                if (!r) {
                        fixture_assert_error(error, "org.procpool.Error.ShuttingDown", NULL);
                        refused = TRUE;
                }
                g_usleep(2000);
        }
        g_assert_true(refused);
        g_assert_cmpint(waitpid(f->daemon_pid, &status, 0), ==, f->daemon_pid);
        f->daemon_pid = 0;
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/procpool/daemon/help", test_help);
        g_test_add_func("/procpool/daemon/version", test_version);
        g_test_add_func("/procpool/daemon/bad-options", test_bad_options);
        g_test_add_func("/procpool/daemon/no-bus", test_no_bus);
        g_test_add("/procpool/daemon/name-taken", Fixture, NULL, fixture_setup, test_name_taken,
                   fixture_teardown);
        g_test_add("/procpool/daemon/sigterm", Fixture, pool2, fixture_setup, test_sigterm, fixture_teardown);
        g_test_add("/procpool/daemon/shutting-down", Fixture, NULL, fixture_setup, test_shutting_down,
                   fixture_teardown);
        return g_test_run();
}
