/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who may run jobs where polkit does not decide: a session instance (or one on a bus given by --address
 * without --system) serves its own uid and root alone; the system instance with no polkitd to ask lets
 * only root, and shows another user's jobs' private properties to nobody else. */
#include <unistd.h>

#include "fixture.h"

static const char *const system_args[] = { "--system", NULL };

static char *error_text(GError *error) {
        g_autofree char *name = g_dbus_error_get_remote_error(error);

        g_dbus_error_strip_remote_error(error);
        return g_strdup_printf("%s: %s", name ? name : "none", error->message);
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
                { MANAGER_PATH, "org.freedesktop.DBus.Properties", "Set",
                  g_variant_new("(ssv)", MANAGER_IFACE, "PoolSize", g_variant_new_uint32(7)) },
                { MANAGER_PATH, MANAGER_IFACE, "ListJobs", NULL },
                { job, "org.freedesktop.DBus.Properties", "Get", g_variant_new("(ss)", JOB_IFACE, "Argv") },
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
                g_autofree char *text = r ? g_variant_print(r, FALSE) : error_text(e);
                g_print("%s %s\n", calls[i].method, text);
        }
        return 0;
}

static char *run_other(Fixture *f, const char *job) {
        g_autofree char *self = fixture_self();
        const char *argv[] = { self, "--as-other-user", f->address, job, NULL };

        return fixture_run_as_other(argv);
}

/* Root's job that exits 5; the next call's Reexecute would go to the daemon. */
static char *root_job(Fixture *f) {
        const char *exit5[] = { "sh", "-c", "exit 5", NULL };
        char *job = fixture_submit(f, exit5, NULL);

        g_assert_true(fixture_wait_state(f, job, "exited"));
        return job;
}

/* procpoold on a bus given by --address, without --system: it runs every job as its own uid (root here),
 * so another uid that could reach the bus would run commands as root. It may look and wait only. */
static void test_session_own_uid(Fixture *f, gconstpointer unused) {
        g_autofree char *job = NULL, *out = NULL, *expected = NULL, *denied = NULL;
        g_autoptr(GError) error = NULL;
        const char *argv[] = { "true", NULL };

        if (!fixture_have_root())
                return;
        (void) unlink("/tmp/procpool-system-test-must-not-exist");
        job = root_job(f);
        out = run_other(f, job);
        denied = g_strdup(
                "org.freedesktop.DBus.Error.AccessDenied: This procpoold runs as uid 0 and serves it "
                "alone (it is not the system instance, procpoold --system): only uid 0 and root may");
        expected = g_strdup_printf("Submit %s run jobs through procpoold\n"
                                   "Call %s run jobs through procpoold\n"
                                   "Communicate %s run jobs through procpoold\n"
                                   "Set %s manage procpoold and other users' jobs\n"
                                   "ListJobs ([(1, '%s/job/1', 'exited', 5)],)\n"
                                   "Get (<['sh', '-c', 'exit 5']>,)\n"
                                   "Wait (5,)\n",
                                   denied, denied, denied, denied, MANAGER_PATH);
        g_assert_cmpstr(out, ==, expected);
        /* Nothing of theirs ran or changed. */
        g_assert_false(g_file_test("/tmp/procpool-system-test-must-not-exist", G_FILE_TEST_EXISTS));
        g_assert_cmpuint(fixture_manager_u(f, "PoolSize"), !=, 7);

        /* Whom a job runs as is the system instance's business. */
        g_assert_cmpint(fixture_call_argv(f, argv,
                                          fixture_options("user", g_variant_new_string("nobody"), NULL),
                                          &error),
                        ==, -1000);
        fixture_assert_error(error, "org.freedesktop.DBus.Error.NotSupported",
                             "Option 'user' needs the system instance");
}

/* The system instance with no polkitd: root runs jobs as usual, everyone else is refused with the reason;
 * they see that root's job exists, and nothing private of it. */
static void test_system_without_polkit(Fixture *f, gconstpointer unused) {
        g_autofree char *job = NULL, *out = NULL, *expected = NULL;
        g_auto(GStrv) lines = NULL;
        g_autoptr(GError) error = NULL;

        if (!fixture_have_root())
                return;
        (void) unlink("/tmp/procpool-system-test-must-not-exist");
        job = root_job(f);
        out = run_other(f, job);
        lines = g_strsplit(out, "\n", -1);
        g_assert_cmpuint(g_strv_length(lines), ==, 8);
        for (int i = 0; i < 4; i++) {
                g_assert_nonnull(strstr(lines[i],
                                        " org.freedesktop.DBus.Error.AccessDenied: Failed to ask polkit "
                                        "whether uid 65534 may "));
                g_assert_true(g_str_has_suffix(lines[i], "without its answer only root may"));
        }
        expected = g_strdup_printf("ListJobs ([(1, '%s/job/1', 'exited', 0)],)", MANAGER_PATH);
        g_assert_cmpstr(lines[4], ==, expected);
        g_assert_true(g_str_has_prefix(lines[5],
                                       "Get org.freedesktop.DBus.Error.AccessDenied: Argv of job 1 is "
                                       "private"));
        g_assert_true(g_str_has_prefix(lines[6],
                                       "Wait org.freedesktop.DBus.Error.AccessDenied: Job 1 is private "
                                       "to uid 0 and the user it runs as: Failed to ask polkit"));
        g_assert_false(g_file_test("/tmp/procpool-system-test-must-not-exist", G_FILE_TEST_EXISTS));

        /* Root's own call runs. */
        g_assert_cmpint(fixture_call_argv(f, (const char *const[]) { "true", NULL }, NULL, &error), ==, 0);
        g_assert_no_error(error);
}

int main(int argc, char *argv[]) {
        if (argc == 4 && g_str_equal(argv[1], "--as-other-user"))
                return run_as_other(argv[2], argv[3]);

        g_test_init(&argc, &argv, NULL);
        FIXTURE_ADD("/procpool/system/session-own-uid", fixture_setup_open_bus, NULL, test_session_own_uid);
        FIXTURE_ADD("/procpool/system/without-polkit", fixture_setup_open_bus, system_args,
                    test_system_without_polkit);
        return g_test_run();
}
