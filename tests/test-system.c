/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The system instance's rule (--system): only root runs jobs; everyone may look and wait. */
#include <unistd.h>

#include "fixture.h"

static const char *const system_args[] = { "--system", NULL };

static char *error_name(GError *error) {
        char *name = g_dbus_error_get_remote_error(error);
        return name ? name : g_strdup(error->message);
}

/* Runs as OTHER_UID in a re-executed copy of this test: one line per call, its result or error. */
static int run_as_other(const char *address, const char *job) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) c = fixture_connect(address, &error);
        const char *argv[] = { "touch", "/tmp/procpool-system-test-must-not-exist", NULL };
        struct {
                const char *path, *iface, *method;
                GVariant *params;
        } calls[] = {
                { MANAGER_PATH, MANAGER_IFACE, "Submit",
                  g_variant_new("(^as@a{sv})", argv, FIXTURE_NO_OPTIONS) },
                { MANAGER_PATH, MANAGER_IFACE, "Call",
                  g_variant_new("(^as@a{sv})", argv, FIXTURE_NO_OPTIONS) },
                { MANAGER_PATH, MANAGER_IFACE, "Communicate",
                  g_variant_new("(^as@ay@a{sv})", argv, g_variant_new_bytestring(""), FIXTURE_NO_OPTIONS) },
                { MANAGER_PATH, MANAGER_IFACE, "ListJobs", NULL },
                { job, JOB_IFACE, "Wait", NULL },
        };

        if (!c) {
                g_printerr("connect: %s\n", error->message);
                return 3;
        }
        for (size_t i = 0; i < G_N_ELEMENTS(calls); i++) {
                g_autoptr(GError) e = NULL;
                g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                        c, BUS_NAME, calls[i].path, calls[i].iface, calls[i].method, calls[i].params, NULL,
                        G_DBUS_CALL_FLAGS_NONE, 20000, NULL, &e);
                g_autofree char *text = r ? g_variant_print(r, FALSE) : error_name(e);
                g_print("%s %s\n", calls[i].method, text);
        }
        return 0;
}

static void test_only_root_runs_jobs(Fixture *f, gconstpointer unused) {
        const char *exit5[] = { "sh", "-c", "exit 5", NULL };
        g_autofree char *self = fixture_self();
        g_autofree char *job = NULL, *out = NULL, *expected = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_cmpuint(getuid(), ==, 0); /* CI runs as root; acting as another uid needs it */
        (void) unlink("/tmp/procpool-system-test-must-not-exist");

        /* Root runs jobs as usual. */
        g_assert_cmpint(fixture_call_argv(f, exit5, NULL, &error), ==, 5);
        g_assert_no_error(error);
        job = fixture_submit(f, exit5, NULL);
        g_assert_true(fixture_wait_state(f, job, "exited"));

        const char *argv[] = { self, "--as-other-user", f->address, job, NULL };
        out = fixture_run_as_other(argv);
        expected = g_strdup_printf("Submit org.freedesktop.DBus.Error.AccessDenied\n"
                                   "Call org.freedesktop.DBus.Error.AccessDenied\n"
                                   "Communicate org.freedesktop.DBus.Error.AccessDenied\n"
                                   "ListJobs ([(1, '%s/job/1', 'exited', 5), "
                                   "(2, '%s/job/2', 'exited', 5)],)\n"
                                   "Wait (5,)\n",
                                   MANAGER_PATH, MANAGER_PATH);
        g_assert_cmpstr(out, ==, expected);
        /* Nothing of theirs ran. */
        g_assert_false(g_file_test("/tmp/procpool-system-test-must-not-exist", G_FILE_TEST_EXISTS));
}

int main(int argc, char *argv[]) {
        if (argc == 4 && g_str_equal(argv[1], "--as-other-user"))
                return run_as_other(argv[2], argv[3]);

        g_test_init(&argc, &argv, NULL);
        FIXTURE_ADD("/procpool/system/only-root-runs-jobs", fixture_setup_open_bus, system_args,
                    test_only_root_runs_jobs);
        return g_test_run();
}
