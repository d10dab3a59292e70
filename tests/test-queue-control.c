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
        else if (g_str_equal(mode, "create-pool"))
                r = g_dbus_connection_call_sync(c, BUS_NAME, path, MANAGER_IFACE, "CreatePool",
                                                g_variant_new("(s@a{sv})", "theirs", FIXTURE_NO_OPTIONS),
                                                NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        else if (g_str_equal(mode, "remove-pool"))
                r = g_dbus_connection_call_sync(c, BUS_NAME, path, MANAGER_IFACE, "RemovePool",
                                                g_variant_new("(s)", "mine"), NULL, G_DBUS_CALL_FLAGS_NONE,
                                                -1, NULL, &error);
        else if (g_str_equal(mode, "pause-pool"))
                r = g_dbus_connection_call_sync(c, BUS_NAME, path, "org.procpool.Pool1", "Pause", NULL, NULL,
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

static void count_signal(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                         const char *name, GVariant *params, gpointer data) {
        (*(guint *) data)++;
}

static gboolean attempt_at_least(gpointer data) {
        struct {
                Fixture *f;
                const char *path;
                guint32 n;
        } *w = data;
        g_autoptr(GVariant) v = fixture_get_property(w->f, w->path, JOB_IFACE, "Attempt");
        return g_variant_get_uint32(v) >= w->n;
}

/* Waits, on the job's signals, until its Attempt is at least n. */
static gboolean wait_attempt(Fixture *f, const char *path, guint32 n) {
        struct {
                Fixture *f;
                const char *path;
                guint32 n;
        } w = { f, path, n };
        guint sub = g_dbus_connection_signal_subscribe(f->conn, BUS_NAME, PROPS_IFACE, "PropertiesChanged",
                                                       path, NULL, G_DBUS_SIGNAL_FLAGS_NONE, count_signal,
                                                       &(guint) { 0 }, NULL);
        gboolean ok = fixture_iterate_until(attempt_at_least, &w);

        g_dbus_connection_signal_unsubscribe(f->conn, sub);
        return ok;
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

/* ---- named pools -------------------------------------------------------------------------------------- */

#define POOL_IFACE "org.procpool.Pool1"

static char *create_pool(Fixture *f, const char *name, guint32 size) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = fixture_call(
                f, "CreatePool",
                g_variant_new("(s@a{sv})", name, fixture_options("size", g_variant_new_uint32(size), NULL)),
                &error);
        char *path;

        g_assert_no_error(error);
        g_variant_get(r, "(o)", &path);
        return path;
}

static guint32 pool_u(Fixture *f, const char *path, const char *name) {
        g_autoptr(GVariant) v = fixture_get_property(f, path, POOL_IFACE, name);
        return g_variant_get_uint32(v);
}

static void pool_call_ok(Fixture *f, const char *path, const char *method) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = fixture_call_raw(f->conn, path, POOL_IFACE, method, NULL, &error);
        g_assert_no_error(error);
}

static gboolean pool_paused(Fixture *f, const char *path) {
        g_autoptr(GVariant) v = fixture_get_property(f, path, POOL_IFACE, "Paused");
        return g_variant_get_boolean(v);
}

/* A job that says it runs (gate "<name>-on"), then waits for the gate "<name>-go". */
static char *submit_gated(Fixture *f, const char *name, GVariant *options, char **ret_on, char **ret_go) {
        g_autofree char *on_name = g_strdup_printf("%s-on", name), *go_name = g_strdup_printf("%s-go", name);
        char *on = fixture_gate_path(f, on_name), *go = fixture_gate_path(f, go_name);
        g_autofree char *wait = fixture_gate_wait_sh(go);
        g_autofree char *script = g_strdup_printf("touch %s; %s", on, wait);
        const char *argv[] = { "sh", "-c", script, NULL };
        char *path = fixture_submit(f, argv, options ?: FIXTURE_NO_OPTIONS);

        *ret_on = on;
        *ret_go = go;
        return path;
}

static void test_pools(Fixture *f, gconstpointer unused) {
        g_autofree char *serial = create_pool(f, "serial-1", 1);
        g_autofree char *a_on = NULL, *a_go = NULL, *b_on = NULL, *b_go = NULL, *c_on = NULL, *c_go = NULL;
        g_autofree char *a = NULL, *b = NULL, *c = NULL;
        g_autoptr(GVariant) list = NULL, name = NULL, pool_prop = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_cmpstr(serial, ==, MANAGER_PATH "/pool/serial_2d1");
        name = fixture_get_property(f, serial, POOL_IFACE, "Name");
        g_assert_cmpstr(g_variant_get_string(name, NULL), ==, "serial-1");
        g_assert_cmpuint(pool_u(f, serial, "Size"), ==, 1);
        list = fixture_call(f, "ListPools", NULL, &error);
        g_assert_no_error(error);
        g_autofree char *printed = g_variant_print(list, FALSE);
        g_assert_cmpstr(printed, ==,
                        "([('default', '/org/procpool/Supervisor1/pool/default'), "
                        "('serial-1', '/org/procpool/Supervisor1/pool/serial_2d1')],)");

        /* Two jobs in the pool of one slot run one after the other; the default pool's beside them. */
        a = submit_gated(f, "a", fixture_options("pool", g_variant_new_string("serial-1"), NULL), &a_on,
                         &a_go);
        b = submit_gated(f, "b", fixture_options("pool", g_variant_new_string("serial-1"), NULL), &b_on,
                         &b_go);
        c = submit_gated(f, "c", NULL, &c_on, &c_go);
        g_assert_true(fixture_wait_for_file(a_on));
        g_assert_true(fixture_wait_for_file(c_on));
        fixture_sync_with_daemon(f->conn);
        fixture_assert_state(f, b, "queued");
        g_assert_cmpuint(pool_u(f, serial, "Running"), ==, 1);
        g_assert_cmpuint(pool_u(f, serial, "Queued"), ==, 1);
        pool_prop = fixture_get_property(f, b, JOB_IFACE, "Pool");
        g_assert_cmpstr(g_variant_get_string(pool_prop, NULL), ==, "serial-1");
        fixture_gate_open(a_go);
        g_assert_true(fixture_wait_for_file(b_on));
        fixture_gate_open(b_go);
        fixture_gate_open(c_go);
        g_assert_true(fixture_wait_finished(f, b));
        g_assert_true(fixture_wait_finished(f, c));

        /* Errors that name what is wrong. */
        const char *t[] = { "true", NULL };
        fixture_expect_call_error(f, t, fixture_options("pool", g_variant_new_string("nope"), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "there is no pool 'nope'");
        fixture_expect_call_error(f, t, fixture_options("pool", g_variant_new_string("a/b"), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "is not a pool name");
        fixture_expect_error(f, MANAGER_PATH, MANAGER_IFACE, "CreatePool",
                             g_variant_new("(s@a{sv})", "serial-1", FIXTURE_NO_OPTIONS),
                             "org.procpool.Error.PoolExists", "exists already");
        fixture_expect_error(f, MANAGER_PATH, MANAGER_IFACE, "CreatePool",
                             g_variant_new("(s@a{sv})", "", FIXTURE_NO_OPTIONS),
                             "org.freedesktop.DBus.Error.InvalidArgs", "is not a pool name");
        fixture_expect_error(
                f, MANAGER_PATH, MANAGER_IFACE, "CreatePool",
                g_variant_new("(s@a{sv})", "x", fixture_options("size", g_variant_new_uint32(0), NULL)),
                "org.freedesktop.DBus.Error.InvalidArgs", "at least 1");
        fixture_expect_error(f, MANAGER_PATH, MANAGER_IFACE, "RemovePool", g_variant_new("(s)", "default"),
                             "org.freedesktop.DBus.Error.InvalidArgs", "always exists");
        fixture_expect_error(f, MANAGER_PATH, MANAGER_IFACE, "RemovePool", g_variant_new("(s)", "nope"),
                             "org.procpool.Error.NoSuchPool", "no pool 'nope'");

        /* Size is writable; PoolSize stays the default pool's. */
        g_dbus_connection_call_sync(f->conn, BUS_NAME, serial, PROPS_IFACE, "Set",
                                    g_variant_new("(ssv)", POOL_IFACE, "Size", g_variant_new_uint32(3)), NULL,
                                    G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(pool_u(f, serial, "Size"), ==, 3);
        g_assert_cmpuint(fixture_manager_u(f, "PoolSize"), !=, 3);

        /* Busy while a job of it is unfinished; once removed, its finished jobs stay. */
        g_autofree char *d_on = NULL, *d_go = NULL;
        g_autofree char *d = submit_gated(
                f, "d", fixture_options("pool", g_variant_new_string("serial-1"), NULL), &d_on, &d_go);
        g_assert_true(fixture_wait_for_file(d_on));
        fixture_expect_error(f, MANAGER_PATH, MANAGER_IFACE, "RemovePool", g_variant_new("(s)", "serial-1"),
                             "org.procpool.Error.PoolBusy", "1 jobs running");
        fixture_gate_open(d_go);
        g_assert_true(fixture_wait_finished(f, d));
        g_autoptr(GVariant) removed = fixture_call(f, "RemovePool", g_variant_new("(s)", "serial-1"), &error);
        g_assert_no_error(error);
        fixture_expect_error(f, serial, PROPS_IFACE, "Get", g_variant_new("(ss)", POOL_IFACE, "Name"),
                             "org.freedesktop.DBus.Error.UnknownObject", NULL);
        g_autoptr(GVariant) dpool = fixture_get_property(f, d, JOB_IFACE, "Pool");
        g_assert_cmpstr(g_variant_get_string(dpool, NULL), ==, "serial-1");
        fixture_job_call_ok(f, d, "Release", NULL);
}

static void test_pool_manage_denied(Fixture *f, gconstpointer unused) {
        g_autofree char *out = NULL;

        if (!fixture_have_root())
                return;
        out = as_other(f, MANAGER_PATH, "create-pool");
        g_assert_cmpstr(out, ==, "org.freedesktop.DBus.Error.AccessDenied");
        g_autofree char *p = create_pool(f, "mine", 2);
        g_autofree char *o2 = as_other(f, p, "pause-pool");
        g_assert_cmpstr(o2, ==, "org.freedesktop.DBus.Error.AccessDenied");
        g_autofree char *o3 = as_other(f, MANAGER_PATH, "remove-pool");
        g_assert_cmpstr(o3, ==, "org.freedesktop.DBus.Error.AccessDenied");
        g_assert_false(pool_paused(f, p));
}

static void test_pool_pause(Fixture *f, gconstpointer unused) {
        g_autofree char *pool = create_pool(f, "p", 2);
        g_autofree char *a_on = NULL, *a_go = NULL, *b_on = NULL, *b_go = NULL;
        g_autofree char *a =
                submit_gated(f, "a", fixture_options("pool", g_variant_new_string("p"), NULL), &a_on, &a_go);
        g_autofree char *b = NULL;

        g_assert_true(fixture_wait_for_file(a_on));
        pool_call_ok(f, pool, "Pause");
        g_assert_true(pool_paused(f, pool));
        /* Nothing new starts; what runs goes on. */
        b = submit_gated(f, "b", fixture_options("pool", g_variant_new_string("p"), NULL), &b_on, &b_go);
        fixture_sync_with_daemon(f->conn);
        fixture_assert_state(f, b, "queued");
        fixture_assert_state(f, a, "running");
        /* A paused pool stays paused across a restart of the daemon. */
        fixture_gate_open(a_go);
        g_assert_true(fixture_wait_finished(f, a));
        g_assert_cmpint(fixture_stop_daemon(f->daemon_pid), ==, 0);
        f->daemon_pid = fixture_start_daemon(f, NULL);
        g_assert_true(pool_paused(f, pool));
        g_assert_cmpuint(pool_u(f, pool, "Size"), ==, 2);
        fixture_assert_state(f, b, "queued");
        pool_call_ok(f, pool, "Resume");
        g_assert_true(fixture_wait_for_file(b_on));
        fixture_gate_open(b_go);
        g_assert_true(fixture_wait_finished(f, b));
        fixture_assert_outcome(f, b, "exited", 0);
}

/* ---- dependencies, delayed starts, retries ------------------------------------------------------------ */

static void test_after_chain(Fixture *f, gconstpointer unused) {
        g_autofree char *a_on = NULL, *a_go = NULL;
        g_autofree char *a = submit_gated(f, "a", NULL, &a_on, &a_go);
        const char *fail[] = { "sh", "-c", "exit 3", NULL },
                   *never[] = { "touch", "/nonexistent-never-run", NULL };
        guint64 a_id = 1, ids_b[] = { a_id };
        g_autofree char *b = fixture_submit(
                f, fail,
                fixture_options("after",
                                g_variant_new_fixed_array(G_VARIANT_TYPE_UINT64, ids_b, 1, sizeof(guint64)),
                                NULL));
        guint64 ids_c[] = { 2 };
        g_autofree char *c = fixture_submit(
                f, never,
                fixture_options("after",
                                g_variant_new_fixed_array(G_VARIANT_TYPE_UINT64, ids_c, 1, sizeof(guint64)),
                                NULL));
        g_autoptr(GVariant) waiting = NULL;
        g_autofree char *state = NULL, *err = NULL;
        int rc;

        g_assert_true(fixture_wait_for_file(a_on));
        fixture_sync_with_daemon(f->conn);
        fixture_assert_state(f, b, "queued");
        waiting = fixture_get_property(f, b, JOB_IFACE, "WaitingFor");
        g_autofree char *w = g_variant_print(waiting, FALSE);
        g_assert_cmpstr(w, ==, "[1]");
        g_assert_cmpuint(fixture_manager_u(f, "Queued"), ==, 2);
        fixture_gate_open(a_go);
        g_assert_true(fixture_wait_finished(f, c));
        fixture_assert_outcome(f, a, "exited", 0);
        fixture_assert_outcome(f, b, "exited", 3);
        fixture_job_outcome(f, c, &state, &rc, &err);
        g_assert_cmpstr(state, ==, "failed");
        g_assert_cmpstr(err, ==, "Job 2, which it was to run after, exited with code 3");
        /* Wait says so with an error of its own. */
        fixture_expect_error(f, c, JOB_IFACE, "Wait", NULL, "org.procpool.Error.DependencyFailed",
                             "Job 3: Job 2, which it was to run after, exited with code 3");
        g_assert_false(g_file_test("/nonexistent-never-run", G_FILE_TEST_EXISTS));

        /* Ids that cannot be waited for. */
        guint64 own[] = { 4 }, later[] = { 9 }, zero[] = { 0 };
        const char *t[] = { "true", NULL };
        fixture_expect_call_error(
                f, t,
                fixture_options("after",
                                g_variant_new_fixed_array(G_VARIANT_TYPE_UINT64, own, 1, sizeof(guint64)),
                                NULL),
                "org.freedesktop.DBus.Error.InvalidArgs", "4 is this job's own id");
        fixture_expect_call_error(
                f, t,
                fixture_options("after",
                                g_variant_new_fixed_array(G_VARIANT_TYPE_UINT64, later, 1, sizeof(guint64)),
                                NULL),
                "org.freedesktop.DBus.Error.InvalidArgs", "there is no job 9 yet");
        fixture_expect_call_error(
                f, t,
                fixture_options("after",
                                g_variant_new_fixed_array(G_VARIANT_TYPE_UINT64, zero, 1, sizeof(guint64)),
                                NULL),
                "org.freedesktop.DBus.Error.InvalidArgs", "there is no job 0");
}

static void test_after_survives_restart(Fixture *f, gconstpointer unused) {
        const char *t[] = { "true", NULL };
        guint64 ids[] = { 1 };
        g_autofree char *a = fixture_submit(
                f, t,
                fixture_options("not-before-usec",
                                g_variant_new_uint64(g_get_real_time() + 3600ULL * G_USEC_PER_SEC), NULL));
        g_autofree char *b = fixture_submit(
                f, t,
                fixture_options("after",
                                g_variant_new_fixed_array(G_VARIANT_TYPE_UINT64, ids, 1, sizeof(guint64)),
                                "retry", g_variant_new_uint32(2), NULL));
        g_autoptr(GVariant) waiting = NULL, after = NULL, retry = NULL;
        g_autofree char *state = NULL, *err = NULL;
        int rc;

        /* Both wait, and go on waiting after a restart of the daemon. */
        g_assert_cmpint(fixture_stop_daemon(f->daemon_pid), ==, 0);
        f->daemon_pid = fixture_start_daemon(f, NULL);
        fixture_assert_state(f, a, "queued");
        fixture_assert_state(f, b, "queued");
        waiting = fixture_get_property(f, b, JOB_IFACE, "WaitingFor");
        g_autofree char *w = g_variant_print(waiting, FALSE);
        g_assert_cmpstr(w, ==, "[1]");
        after = fixture_get_property(f, b, JOB_IFACE, "After");
        g_autofree char *af = g_variant_print(after, FALSE);
        g_assert_cmpstr(af, ==, "[1]");
        retry = fixture_get_property(f, b, JOB_IFACE, "Retry");
        g_assert_cmpuint(g_variant_get_uint32(retry), ==, 2);
        /* Its dependency cancelled, it fails, naming how that one ended. */
        fixture_job_call_ok(f, a, "Cancel", NULL);
        g_assert_true(fixture_wait_finished(f, b));
        fixture_job_outcome(f, b, &state, &rc, &err);
        g_assert_cmpstr(state, ==, "failed");
        g_assert_cmpstr(err, ==, "Job 1, which it was to run after, ended cancelled");
}

static void test_not_before(Fixture *f, gconstpointer unused) {
        const char *t[] = { "true", NULL };
        guint64 now = g_get_real_time();
        g_autofree char *later =
                fixture_submit(f, t,
                               fixture_options("not-before-usec",
                                               g_variant_new_uint64(now + 3600ULL * G_USEC_PER_SEC), NULL));
        g_autofree char *soon = fixture_submit(
                f, t, fixture_options("not-before-usec", g_variant_new_uint64(now + 300 * 1000), NULL));
        g_autoptr(GVariant) nb = NULL, started = NULL;

        g_assert_true(fixture_wait_finished(f, soon));
        fixture_assert_outcome(f, soon, "exited", 0);
        started = fixture_get_property(f, soon, JOB_IFACE, "StartedAt");
        g_assert_cmpuint(g_variant_get_uint64(started), >=, now + 300 * 1000);
        fixture_assert_state(f, later, "queued");
        nb = fixture_get_property(f, later, JOB_IFACE, "NotBeforeUSec");
        g_assert_cmpuint(g_variant_get_uint64(nb), ==, now + 3600ULL * G_USEC_PER_SEC);
        /* It still waits after a restart. */
        g_assert_cmpint(fixture_stop_daemon(f->daemon_pid), ==, 0);
        f->daemon_pid = fixture_start_daemon(f, NULL);
        fixture_assert_state(f, later, "queued");
        fixture_job_call_ok(f, later, "Cancel", NULL);
        fixture_assert_state(f, later, "cancelled");
}

static void test_retry(Fixture *f, gconstpointer unused) {
        g_autofree char *count = fixture_gate_path(f, "count");
        g_autofree char *script = g_strdup_printf(
                "n=$(cat %s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s; echo attempt $n; [ $n -ge 3 ]",
                count, count);
        const char *argv[] = { "sh", "-c", script, NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) attempt = NULL, out = NULL;
        guint finished = 0;
        guint sub = g_dbus_connection_signal_subscribe(f->conn, BUS_NAME, MANAGER_IFACE, "JobFinished",
                                                       MANAGER_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                       count_signal, &finished, NULL);
        /* Call answers once, after the last attempt. */
        int rc = fixture_call_argv(f, argv,
                                   fixture_options("retry", g_variant_new_uint32(5), "retry-delay-usec",
                                                   g_variant_new_uint64(1000), NULL),
                                   &error);
        g_autofree char *path = fixture_job_path(1);

        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 0);
        attempt = fixture_get_property(f, path, JOB_IFACE, "Attempt");
        g_assert_cmpuint(g_variant_get_uint32(attempt), ==, 3);
        /* The output kept is the last attempt's. */
        out = fixture_job_call(f, path, "GetOutput", NULL, &error);
        g_assert_no_error(error);
        g_autoptr(GVariant) so = g_variant_get_child_value(out, 0);
        gsize n;
        const char *bytes = g_variant_get_fixed_array(so, &n, 1);
        g_assert_cmpmem(bytes, n, "attempt 3\n", 10);
        fixture_sync_with_daemon(f->conn);
        while (g_main_context_iteration(NULL, FALSE))
                ;
        g_assert_cmpuint(finished, ==, 1);
        g_dbus_connection_signal_unsubscribe(f->conn, sub);

        /* Retries used up: it ends as the last attempt did. */
        const char *fail[] = { "sh", "-c", "exit 7", NULL };
        rc = fixture_call_argv(f, fail, fixture_options("retry", g_variant_new_uint32(1), NULL), &error);
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 7);
        g_autofree char *p2 = fixture_job_path(2);
        g_autoptr(GVariant) a2 = fixture_get_property(f, p2, JOB_IFACE, "Attempt");
        g_assert_cmpuint(g_variant_get_uint32(a2), ==, 2);

        /* Cancel stops the retries. */
        g_autofree char *p3 =
                fixture_submit(f, fail,
                               fixture_options("retry", g_variant_new_uint32(3), "retry-delay-usec",
                                               g_variant_new_uint64(3600ULL * G_USEC_PER_SEC), NULL));
        g_assert_true(wait_attempt(f, p3, 2));
        fixture_assert_state(f, p3, "queued");
        fixture_job_call_ok(f, p3, "Cancel", NULL);
        fixture_assert_state(f, p3, "cancelled");

        /* Retries need what the first attempt uses up. */
        fixture_expect_error(f, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                             g_variant_new("(^as@ay@a{sv})", fail, fixture_bytes("x", 1),
                                           fixture_options("retry", g_variant_new_uint32(1), NULL)),
                             "org.freedesktop.DBus.Error.InvalidArgs", "does not go with");
}

/* A job that waits for a dependency is behind every job of its pool that may start now. */
static void test_waiting_queue_position(Fixture *f, gconstpointer unused) {
        g_autofree char *pool = create_pool(f, "one", 1);
        g_autofree char *a_on = NULL, *a_go = NULL;
        g_autofree char *a = submit_gated(f, "a", fixture_options("pool", g_variant_new_string("one"), NULL),
                                          &a_on, &a_go);
        const char *t[] = { "true", NULL };
        guint64 ids[] = { 1 };
        g_autofree char *waiting = fixture_submit(
                f, t,
                fixture_options("pool", g_variant_new_string("one"), "after",
                                g_variant_new_fixed_array(G_VARIANT_TYPE_UINT64, ids, 1, sizeof(guint64)),
                                NULL));
        g_autofree char *ready =
                fixture_submit(f, t, fixture_options("pool", g_variant_new_string("one"), NULL));
        g_autoptr(GVariant) w = NULL, r = NULL;

        g_assert_true(fixture_wait_for_file(a_on));
        w = fixture_get_property(f, waiting, JOB_IFACE, "QueuePosition");
        r = fixture_get_property(f, ready, JOB_IFACE, "QueuePosition");
        g_assert_cmpuint(g_variant_get_uint32(r), ==, 0);
        g_assert_cmpuint(g_variant_get_uint32(w), ==, 1);
        fixture_gate_open(a_go);
        g_assert_true(fixture_wait_finished(f, waiting));
        g_assert_true(fixture_wait_finished(f, ready));
}

/* A job waiting for its next attempt waits again after a restart, and counts on from where it was. */
static void test_retry_survives_restart(Fixture *f, gconstpointer unused) {
        g_autofree char *count = fixture_gate_path(f, "count");
        g_autofree char *script = g_strdup_printf(
                "n=$(cat %s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s; [ $n -ge 2 ]", count, count);
        const char *argv[] = { "sh", "-c", script, NULL };
        g_autofree char *path =
                fixture_submit(f, argv,
                               fixture_options("retry", g_variant_new_uint32(3), "retry-delay-usec",
                                               g_variant_new_uint64(3600ULL * G_USEC_PER_SEC), NULL));
        g_autoptr(GVariant) attempt = NULL, final_attempt = NULL;

        g_assert_true(wait_attempt(f, path, 2));
        fixture_assert_state(f, path, "queued");
        g_assert_cmpint(fixture_stop_daemon(f->daemon_pid), ==, 0);
        f->daemon_pid = fixture_start_daemon(f, NULL);
        fixture_assert_state(f, path, "queued");
        attempt = fixture_get_property(f, path, JOB_IFACE, "Attempt");
        g_assert_cmpuint(g_variant_get_uint32(attempt), ==, 2);
        /* Still an hour to wait: it is cancelled, which ends the retries. */
        fixture_job_call_ok(f, path, "Cancel", NULL);
        fixture_assert_state(f, path, "cancelled");
        final_attempt = fixture_get_property(f, path, JOB_IFACE, "Attempt");
        g_assert_cmpuint(g_variant_get_uint32(final_attempt), ==, 2);
        g_autofree char *runs = NULL;
        g_assert_true(g_file_get_contents(count, &runs, NULL, NULL));
        g_assert_cmpstr(runs, ==, "1\n");
}

/* ---- executors per pool --------------------------------------------------------------------------- */

static char *pool_s(Fixture *f, const char *path, const char *name) {
        g_autoptr(GVariant) v = fixture_get_property(f, path, POOL_IFACE, name);
        return g_variant_dup_string(v, NULL);
}

static void expect_create_error(Fixture *f, const char *name, GVariant *settings, const char *error,
                                const char *text) {
        fixture_expect_error(f, MANAGER_PATH, MANAGER_IFACE, "CreatePool",
                             g_variant_new("(s@a{sv})", name, settings), error, text);
}

#define INVALID_ARGS "org.freedesktop.DBus.Error.InvalidArgs"

/* The settings executor, slurm-conf and partition: checked, each error naming the setting; kept as the
 * pool's Executor, SlurmConf and Partition; a local job says nowhere else it ran. */
static void test_pool_executor_settings(Fixture *f, gconstpointer unused) {
        g_autofree char *conf = g_build_filename(f->state_dir, "slurm.conf", NULL);
        g_autofree char *def = g_strdup("/org/procpool/Supervisor1/pool/default"), *path = NULL;
        g_autofree char *kind = NULL, *slurm_conf = NULL, *partition = NULL, *def_kind = NULL;
        g_autofree char *external_id = NULL, *node = NULL, *job = NULL;
        const char *argv_true[] = { "true", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, x = NULL, n = NULL;

        /* A local pool, said so or not. */
        r = fixture_call(f, "CreatePool",
                         g_variant_new("(s@a{sv})", "here",
                                       fixture_options("executor", g_variant_new_string("local"), "size",
                                                       g_variant_new_uint32(2), NULL)),
                         &error);
        g_assert_no_error(error);
        g_variant_get(r, "(o)", &path);
        kind = pool_s(f, path, "Executor");
        slurm_conf = pool_s(f, path, "SlurmConf");
        partition = pool_s(f, path, "Partition");
        g_assert_cmpstr(kind, ==, "local");
        g_assert_cmpstr(slurm_conf, ==, "");
        g_assert_cmpstr(partition, ==, "");
        g_assert_cmpuint(pool_u(f, path, "Size"), ==, 2);
        def_kind = pool_s(f, def, "Executor");
        g_assert_cmpstr(def_kind, ==, "local");

        /* Errors name the setting. */
        expect_create_error(f, "x", fixture_options("executor", g_variant_new_string("ssh"), NULL),
                            INVALID_ARGS, "Unknown executor 'ssh' in pool setting 'executor'");
        expect_create_error(f, "x", fixture_options("executor", g_variant_new_uint32(1), NULL), INVALID_ARGS,
                            "'executor' must be of type 's'");
        expect_create_error(f, "x", fixture_options("slurm-conf", g_variant_new_string(conf), NULL),
                            INVALID_ARGS, "'slurm-conf' is for pools of executor 'slurm' only");
        expect_create_error(f, "x",
                            fixture_options("executor", g_variant_new_string("local"), "partition",
                                            g_variant_new_string("debug"), NULL),
                            INVALID_ARGS, "'partition' is for pools of executor 'slurm' only");
        expect_create_error(f, "x",
                            fixture_options("executor", g_variant_new_string("slurm"), "slurm-conf",
                                            g_variant_new_string("etc/slurm.conf"), NULL),
                            INVALID_ARGS, "'slurm-conf' must be an absolute path, not 'etc/slurm.conf'");
        expect_create_error(f, "x",
                            fixture_options("executor", g_variant_new_string("slurm"), "slurm-conf",
                                            g_variant_new_string(conf), NULL),
                            INVALID_ARGS, "No such file or directory");
        expect_create_error(f, "x",
                            fixture_options("executor", g_variant_new_string("slurm"), "slurm-conf",
                                            g_variant_new_string(f->state_dir), NULL),
                            INVALID_ARGS, "is not a regular file");
        expect_create_error(f, "x",
                            fixture_options("executor", g_variant_new_string("slurm"), "partition",
                                            g_variant_new_string("de bug"), NULL),
                            INVALID_ARGS, "'partition' must be 1 to 64 of");
        expect_create_error(f, "x",
                            fixture_options("executor", g_variant_new_string("slurm"), "partition",
                                            g_variant_new_string("--uid=0"), NULL),
                            INVALID_ARGS, "'partition' must be 1 to 64 of");
        expect_create_error(f, "x", fixture_options("nodes", g_variant_new_string("3"), NULL), INVALID_ARGS,
                            "Unknown pool setting 'nodes'");

        /* A Slurm pool whose cluster cannot be asked for its CPUs (no sinfo, or a slurm.conf of no
         * cluster) and whose size is not given is refused, and leaves no pool behind. */
        g_assert_true(g_file_set_contents(conf, "# no cluster here\n", -1, &error));
        expect_create_error(f, "cluster",
                            fixture_options("executor", g_variant_new_string("slurm"), "slurm-conf",
                                            g_variant_new_string(conf), "partition",
                                            g_variant_new_string("debug"), NULL),
                            "org.procpool.Error.ExecutorUnavailable", "Pool 'cluster': ");
        fixture_expect_error(f, MANAGER_PATH, MANAGER_IFACE, "RemovePool", g_variant_new("(s)", "cluster"),
                             "org.procpool.Error.NoSuchPool", "no pool 'cluster'");

        /* A local job ran nowhere else. */
        job = fixture_submit(f, argv_true, fixture_options("pool", g_variant_new_string("here"), NULL));
        g_assert_true(fixture_wait_finished(f, job));
        x = fixture_get_property(f, job, JOB_IFACE, "ExternalId");
        n = fixture_get_property(f, job, JOB_IFACE, "Node");
        g_assert_cmpstr(g_variant_get_string(x, NULL), ==, "");
        g_assert_cmpstr(g_variant_get_string(n, NULL), ==, "");
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
        FIXTURE_ADD("/procpool/queue-control/pools", fixture_setup, NULL, test_pools);
        FIXTURE_ADD("/procpool/queue-control/pool-manage-denied", fixture_setup_open_bus, NULL,
                    test_pool_manage_denied);
        FIXTURE_ADD("/procpool/queue-control/pool-pause", fixture_setup, NULL, test_pool_pause);
        FIXTURE_ADD("/procpool/queue-control/pool-executor-settings", fixture_setup, NULL,
                    test_pool_executor_settings);
        FIXTURE_ADD("/procpool/queue-control/after-chain", fixture_setup, NULL, test_after_chain);
        FIXTURE_ADD("/procpool/queue-control/after-survives-restart", fixture_setup, NULL,
                    test_after_survives_restart);
        FIXTURE_ADD("/procpool/queue-control/not-before", fixture_setup, NULL, test_not_before);
        FIXTURE_ADD("/procpool/queue-control/retry", fixture_setup, NULL, test_retry);
        FIXTURE_ADD("/procpool/queue-control/waiting-queue-position", fixture_setup, NULL,
                    test_waiting_queue_position);
        FIXTURE_ADD("/procpool/queue-control/retry-survives-restart", fixture_setup, NULL,
                    test_retry_survives_restart);
        return g_test_run();
}
