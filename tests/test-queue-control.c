/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Queue control: a job's spec as properties, Restart, named pools, pausing pools, dependencies,
 * delayed starts and retries, and all of it across a restart of the daemon. */
#include <signal.h>
#include <unistd.h>

#include "fixture.h"

#define PROPS_IFACE "org.freedesktop.DBus.Properties"

static char *remote_error_name(const GError *e) {
        return e ? g_dbus_error_get_remote_error(e) : g_strdup("");
}

/* ---- as another uid: one call, its result printed ---------------------------------------------- */

static int run_as_other(const char *address, const char *path, const char *mode) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) c = fixture_connect(address, &error);
        g_autoptr(GVariant) r = NULL;

        if (!c)
                return 2;
        if (g_str_equal(mode, "get-environment"))
                r = g_dbus_connection_call_sync(c, BUS_NAME, path, PROPS_IFACE, "Get",
                                                g_variant_new("(ss)", JOB_IFACE, "Environment"), NULL,
                                                G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        else if (g_str_equal(mode, "get-cwd"))
                r = g_dbus_connection_call_sync(c, BUS_NAME, path, PROPS_IFACE, "Get",
                                                g_variant_new("(ss)", JOB_IFACE, "Cwd"), NULL,
                                                G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        else if (g_str_equal(mode, "restart"))
                r = g_dbus_connection_call_sync(c, BUS_NAME, path, JOB_IFACE, "Restart", NULL, NULL,
                                                G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        else
                return 3;
        if (r) {
                g_autofree char *p = g_variant_print(r, FALSE);
                g_print("%s\n", p);
        } else {
                g_autofree char *name = remote_error_name(error);
                g_print("%s\n", name);
        }
        return 0;
}

static char *as_other(Fixture *f, const char *path, const char *mode) {
        g_autofree char *self = fixture_self();
        const char *argv[] = { self, "--as-other-user", f->address, path, mode, NULL };

        return g_strstrip(fixture_run_as_other(argv));
}

/* ---- a job's spec --------------------------------------------------------------------------------- */

static void test_spec_properties(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sh", "-c", "exit 0", NULL };
        const char *env[] = { "SECRET=hunter2", "A=b", NULL };
        g_autofree char *path = fixture_submit(
                f, argv,
                fixture_options("cwd", g_variant_new_string("/tmp"), "environment",
                                g_variant_new_strv(env, -1), "timeout-usec", g_variant_new_uint64(90000000),
                                "stop-timeout-usec", g_variant_new_uint64(2000000), "priority",
                                g_variant_new_int32(-3), "output-limit", g_variant_new_uint64(4096),
                                "cancel-on-disconnect", g_variant_new_boolean(TRUE), "clear-environment",
                                g_variant_new_boolean(TRUE), NULL));
        g_autoptr(GVariant) all = NULL, props = NULL, e = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree const char **got = NULL;

        g_assert_true(fixture_wait_finished(f, path));
#define PROP(name) g_autoptr(GVariant) name = fixture_get_property(f, path, JOB_IFACE, #name)
        PROP(Cwd);
        PROP(TimeoutUSec);
        PROP(StopTimeoutUSec);
        PROP(Priority);
        PROP(OutputLimit);
        PROP(CancelOnDisconnect);
        PROP(ClearEnvironment);
        PROP(MemoryMax);
        PROP(PassedFds);
        PROP(Environment);
#undef PROP
        g_assert_cmpstr(g_variant_get_string(Cwd, NULL), ==, "/tmp");
        g_assert_cmpuint(g_variant_get_uint64(TimeoutUSec), ==, 90000000);
        g_assert_cmpuint(g_variant_get_uint64(StopTimeoutUSec), ==, 2000000);
        g_assert_cmpint(g_variant_get_int32(Priority), ==, -3);
        g_assert_cmpuint(g_variant_get_uint64(OutputLimit), ==, 4096);
        g_assert_true(g_variant_get_boolean(CancelOnDisconnect));
        g_assert_true(g_variant_get_boolean(ClearEnvironment));
        g_assert_cmpuint(g_variant_get_uint64(MemoryMax), ==, 0);
        g_assert_cmpuint(g_variant_n_children(PassedFds), ==, 0);
        got = g_variant_get_strv(Environment, NULL);
        g_assert_cmpstrv(got, env);

        /* The environment may hold secrets: GetAll, and with it GetManagedObjects and the signals, leave
         * it out; the owner reads it with Get. */
        all = fixture_call_raw(f->conn, path, PROPS_IFACE, "GetAll", g_variant_new("(s)", JOB_IFACE), &error);
        g_assert_no_error(error);
        props = g_variant_get_child_value(all, 0);
        e = g_variant_lookup_value(props, "Environment", NULL);
        g_assert_null(e);
        g_autoptr(GVariant) cwd = g_variant_lookup_value(props, "Cwd", NULL);
        g_assert_nonnull(cwd);
}

static void test_environment_private(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "true", NULL };
        const char *env[] = { "TOKEN=s3cret", NULL };
        g_autofree char *path =
                fixture_submit(f, argv, fixture_options("environment", g_variant_new_strv(env, -1), NULL));
        g_autofree char *env_out = NULL, *cwd_out = NULL, *restart_out = NULL;

        if (!fixture_have_root())
                return;
        g_assert_true(fixture_wait_finished(f, path));
        env_out = as_other(f, path, "get-environment");
        g_assert_cmpstr(env_out, ==, "org.freedesktop.DBus.Error.AccessDenied");
        cwd_out = as_other(f, path, "get-cwd");
        g_assert_cmpstr(cwd_out, ==, "(<''>,)");
        /* Restart is the owner's and root's too. */
        restart_out = as_other(f, path, "restart");
        g_assert_cmpstr(restart_out, ==, "org.freedesktop.DBus.Error.AccessDenied");
        g_autofree char *next = fixture_job_path(2);
        fixture_expect_error(f, next, PROPS_IFACE, "Get", g_variant_new("(ss)", JOB_IFACE, "State"),
                             "org.freedesktop.DBus.Error.UnknownObject", NULL);
}

/* ---- Restart ---------------------------------------------------------------------------------------- */

static void test_restart(Fixture *f, gconstpointer unused) {
        g_autofree char *count = fixture_gate_path(f, "count");
        g_autofree char *script = g_strdup_printf("echo run >> %s; printf \"$GREETING\"; exit 4", count);
        const char *argv[] = { "sh", "-c", script, NULL };
        const char *env[] = { "GREETING=hi", NULL };
        g_autofree char *path = fixture_submit(f, argv,
                                               fixture_options("environment", g_variant_new_strv(env, -1),
                                                               "label", g_variant_new_string("again"), "cwd",
                                                               g_variant_new_string("/"), NULL));
        g_autoptr(GVariant) r = NULL, out = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *contents = NULL;
        const char *new_path;

        g_assert_true(fixture_wait_finished(f, path));
        fixture_assert_outcome(f, path, "exited", 4);
        r = fixture_job_call(f, path, "Restart", NULL, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(&o)", &new_path);
        g_assert_cmpstr(new_path, !=, path);
        g_assert_true(fixture_wait_finished(f, new_path));
        fixture_assert_outcome(f, new_path, "exited", 4);
        out = fixture_job_call(f, new_path, "GetOutput", NULL, &error);
        g_assert_no_error(error);
        g_autoptr(GVariant) so = g_variant_get_child_value(out, 0);
        gsize n;
        const char *bytes = g_variant_get_fixed_array(so, &n, 1);
        g_assert_cmpmem(bytes, n, "hi", 2);
        g_autoptr(GVariant) label = fixture_get_property(f, new_path, JOB_IFACE, "Label");
        g_assert_cmpstr(g_variant_get_string(label, NULL), ==, "again");
        g_autoptr(GVariant) cwd = fixture_get_property(f, new_path, JOB_IFACE, "Cwd");
        g_assert_cmpstr(g_variant_get_string(cwd, NULL), ==, "/");
        g_assert_true(g_file_get_contents(count, &contents, NULL, NULL));
        g_assert_cmpstr(contents, ==, "run\nrun\n");

        /* A running job may be restarted too: the new one runs beside it. */
        g_autofree char *sleeper = fixture_submit_sleeper(f, NULL);
        g_autoptr(GVariant) r2 = fixture_job_call(f, sleeper, "Restart", NULL, &error);
        g_assert_no_error(error);
        const char *p2;
        g_variant_get(r2, "(&o)", &p2);
        g_assert_true(fixture_wait_state(f, p2, "running"));
        fixture_job_call_ok(f, sleeper, "Cancel", NULL);
        fixture_job_call_ok(f, p2, "Cancel", NULL);
}

static void test_restart_refused(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "cat", NULL };
        int rc;
        g_autoptr(GBytes) out = NULL, err = NULL;
        g_autoptr(GError) error = NULL;

        /* Communicate's input is not kept: its job cannot be run again as it was. */
        g_assert_true(fixture_communicate(f, argv, "x", 1, NULL, &rc, &out, &err, &error));
        g_autofree char *path = fixture_job_path(1);
        fixture_expect_error(f, path, JOB_IFACE, "Restart", NULL, "org.freedesktop.DBus.Error.NotSupported",
                             "was given input");
}

int main(int argc, char *argv[]) {
        if (argc == 5 && g_str_equal(argv[1], "--as-other-user"))
                return run_as_other(argv[2], argv[3], argv[4]);

        g_test_init(&argc, &argv, NULL);
        FIXTURE_ADD("/procpool/queue-control/spec-properties", fixture_setup, NULL, test_spec_properties);
        FIXTURE_ADD("/procpool/queue-control/environment-private", fixture_setup_open_bus, NULL,
                    test_environment_private);
        FIXTURE_ADD("/procpool/queue-control/restart", fixture_setup, NULL, test_restart);
        FIXTURE_ADD("/procpool/queue-control/restart-refused", fixture_setup, NULL, test_restart_refused);
        return g_test_run();
}
