/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Job objects: properties, Wait, Cancel, Kill, GetOutput, Release, who may use them, retention,
 * GetJob and ListJobs, and the JobFinished and PropertiesChanged signals. */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>

#include "fixture.h"

static const char *const sleep30[] = { "sleep", "30", NULL };

static guint64 prop_t(Fixture *f, const char *path, const char *name) {
        g_autoptr(GVariant) v = fixture_get_property(f, path, JOB_IFACE, name);
        return g_variant_get_uint64(v);
}

static guint32 prop_u(Fixture *f, const char *path, const char *name) {
        g_autoptr(GVariant) v = fixture_get_property(f, path, JOB_IFACE, name);
        return g_variant_get_uint32(v);
}

static char *prop_s(Fixture *f, const char *path, const char *name) {
        g_autoptr(GVariant) v = fixture_get_property(f, path, JOB_IFACE, name);
        return g_variant_dup_string(v, NULL);
}

static void assert_job_call_error(Fixture *f, const char *path, const char *method, GVariant *params,
                                  const char *name) {
        fixture_expect_error(f, path, JOB_IFACE, method, params, name, NULL);
}

static int wait_job(Fixture *f, const char *path, GError **error) {
        g_autoptr(GVariant) r = fixture_job_call(f, path, "Wait", NULL, error);
        int rc;

        if (!r)
                return -1000;
        g_variant_get(r, "(i)", &rc);
        return rc;
}

static gboolean process_gone(pid_t pid) {
        return kill(pid, 0) < 0 && errno == ESRCH;
}

/* ---- properties ------------------------------------------------------------------------------- */

static void test_properties(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sh", "-c", "exit 5", NULL };
        g_autofree char *path =
                fixture_submit(f, argv, fixture_options("label", g_variant_new_string("five"), NULL));
        g_autoptr(GVariant) argv_v = NULL;
        g_autofree char *label = NULL, *error = NULL;
        g_autofree const char **got = NULL;

        g_assert_cmpstr(path, ==, MANAGER_PATH "/job/1");
        g_assert_true(fixture_wait_state(f, path, "exited"));
        g_assert_cmpuint(prop_t(f, path, "Id"), ==, 1);
        argv_v = fixture_get_property(f, path, JOB_IFACE, "Argv");
        got = g_variant_get_strv(argv_v, NULL);
        g_assert_true(g_strv_equal(got, argv));
        fixture_assert_outcome(f, path, "exited", 5);
        g_assert_cmpuint(prop_u(f, path, "Pid"), ==, 0);
        g_assert_cmpuint(prop_u(f, path, "Owner"), ==, getuid());
        label = prop_s(f, path, "Label");
        g_assert_cmpstr(label, ==, "five");
        error = prop_s(f, path, "Error");
        g_assert_cmpstr(error, ==, "");

        guint64 submitted = prop_t(f, path, "SubmittedAt"), started = prop_t(f, path, "StartedAt"),
                finished = prop_t(f, path, "FinishedAt"), now = g_get_real_time();
        /* Microseconds since the epoch, in order. */
        g_assert_cmpuint(submitted, >, now - 60 * G_USEC_PER_SEC);
        g_assert_cmpuint(submitted, <=, started);
        g_assert_cmpuint(started, <=, finished);
        g_assert_cmpuint(finished, <=, now);

        /* Without per-job cgroups there is no tree to account: both read 0. */
        if (!fixture_per_job_cgroups(f)) {
                g_assert_cmpuint(prop_t(f, path, "CPUUsageUSec"), ==, 0);
                g_assert_cmpuint(prop_t(f, path, "MemoryPeak"), ==, 0);
        }
}

static void test_running_properties(Fixture *f, gconstpointer unused) {
        g_autofree char *ready = fixture_gate_path(f, "ready"), *quoted = g_shell_quote(ready);
        /* The shell stays (its sleep is a child) and says it runs once its image is its own. */
        g_autofree char *script = g_strdup_printf("touch %s; sleep 30; exit 0", quoted);
        const char *argv[] = { "sh", "-c", script, NULL };
        g_autofree char *path = fixture_submit(f, argv, NULL);
        g_autofree char *cmdline = NULL, *label = NULL, *stat_path = NULL, *expected = NULL;
        gsize len, expected_len;
        guint32 pid;

        g_assert_true(fixture_wait_state(f, path, "running"));
        pid = prop_u(f, path, "Pid");
        g_assert_cmpuint(pid, >, 0);
        /* The Pid is the command's own process: its arguments are the job's argv. */
        g_assert_true(fixture_wait_for_file(ready));
        stat_path = g_strdup_printf("/proc/%u/cmdline", pid);
        g_assert_true(g_file_get_contents(stat_path, &cmdline, &len, NULL));
        expected = g_strdup_printf("sh%c-c%c%s%c", 0, 0, script, 0);
        expected_len = strlen("sh") + 1 + strlen("-c") + 1 + strlen(script) + 1;
        g_assert_cmpmem(cmdline, len, expected, expected_len);
        g_assert_cmpint(prop_t(f, path, "StartedAt"), >, 0);
        g_assert_cmpint(prop_t(f, path, "FinishedAt"), ==, 0);
        fixture_assert_outcome(f, path, "running", 0);
        label = prop_s(f, path, "Label");
        g_assert_cmpstr(label, ==, "");

        fixture_job_call_ok(f, path, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, path, "cancelled"));
        g_assert_cmpuint(prop_u(f, path, "Pid"), ==, 0);
        g_assert_true(process_gone(pid));
}

/* ---- Wait ------------------------------------------------------------------------------------- */

static void test_wait(Fixture *f, gconstpointer unused) {
        g_autofree char *gate = fixture_gate_path(f, "go"), *wait_gate = fixture_gate_wait_sh(gate);
        g_autofree char *script = g_strdup_printf("%s; exit 6", wait_gate);
        const char *exit6[] = { "sh", "-c", script, NULL };
        const char *missing[] = { "procpool-no-such-program", NULL };
        g_autofree char *a = fixture_submit(f, exit6, NULL);
        g_autofree char *b = fixture_submit(f, missing, NULL);
        g_autofree char *c = fixture_submit(f, sleep30, NULL);
        g_autofree char *d = fixture_submit(
                f, sleep30, fixture_options("timeout-usec", g_variant_new_uint64(100000), NULL));
        g_autoptr(GError) e2 = NULL, e3 = NULL, e4 = NULL, e5 = NULL;
        FixtureReply first = {};
        int rc;

        /* Waits for the end: the Wait is in the daemon while the job runs (the Get after it on the
         * same connection is answered after it), and is answered once the job is let go... */
        g_dbus_connection_call(f->conn, BUS_NAME, a, JOB_IFACE, "Wait", NULL, NULL, G_DBUS_CALL_FLAGS_NONE,
                               G_MAXINT, NULL, fixture_on_reply, &first);
        g_assert_true(fixture_wait_state(f, a, "running"));
        fixture_gate_open(gate);
        g_assert_true(fixture_reply_wait(&first));
        g_assert_no_error(first.error);
        g_variant_get(first.value, "(i)", &rc);
        g_assert_cmpint(rc, ==, 6);
        fixture_reply_clear(&first);
        /* ...then answers at once for a job that has ended. */
        g_assert_cmpint(wait_job(f, a, &e2), ==, 6);
        g_assert_no_error(e2);
        /* Ends like Call: the error of a failed, cancelled or timed-out job. */
        g_assert_cmpint(wait_job(f, b, &e3), ==, -1000);
        fixture_assert_error(e3, "org.procpool.Error.SpawnFailed",
                             "Failed to execute 'procpool-no-such-program': No such file or directory");
        g_assert_true(fixture_wait_state(f, c, "running"));
        fixture_job_call_ok(f, c, "Cancel", NULL);
        g_assert_cmpint(wait_job(f, c, &e4), ==, -1000);
        fixture_assert_error(e4, "org.procpool.Error.Cancelled", NULL);
        g_assert_cmpint(wait_job(f, d, &e5), ==, -1000);
        fixture_assert_error(e5, "org.procpool.Error.TimedOut", NULL);
}

static void test_wait_disconnect(Fixture *f, gconstpointer unused) {
        g_autofree char *gate = fixture_gate_path(f, "go"), *wait_gate = fixture_gate_wait_sh(gate);
        g_autofree char *script = g_strdup_printf("%s; exit 2", wait_gate);
        g_autoptr(GError) error = NULL;
        const char *argv[] = { "sh", "-c", script, NULL };
        const char *t[] = { "true", NULL };
        g_autofree char *path = fixture_submit(f, argv, NULL);
        g_autoptr(GDBusConnection) other = fixture_connect_other(f);
        FixtureReply call = {};

        /* A waiter that leaves the bus while the job runs: the job and everyone else carry on. */
        g_dbus_connection_call(other, BUS_NAME, path, JOB_IFACE, "Wait", NULL, NULL, G_DBUS_CALL_FLAGS_NONE,
                               G_MAXINT, NULL, fixture_on_reply, &call);
        fixture_sync_with_daemon(other);
        g_assert_true(fixture_wait_state(f, path, "running"));
        fixture_disconnect(f, other);
        g_assert_true(fixture_reply_wait(&call));
        g_assert_null(call.value);
        g_assert_true(g_error_matches(call.error, G_IO_ERROR, G_IO_ERROR_CLOSED));
        fixture_reply_clear(&call);

        fixture_assert_outcome(f, path, "running", 0);
        fixture_gate_open(gate);
        g_assert_true(fixture_wait_state(f, path, "exited"));
        fixture_assert_outcome(f, path, "exited", 2);
        g_assert_cmpint(fixture_call_argv(f, t, NULL, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpint(wait_job(f, path, &error), ==, 2);
}

static void test_wait_many(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sh", "-c", "read x; exit 12", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) other = fixture_connect_other(f);
        FixtureReply replies[3] = {};
        int p[2];

        g_assert_no_errno(pipe(p));
        /* The job waits for a line on a pipe the test holds, so every Wait arrives before it ends. */
        g_autoptr(GUnixFDList) list = g_unix_fd_list_new_from_array(&p[0], 1);
        g_autoptr(GVariant) r = g_dbus_connection_call_with_unix_fd_list_sync(
                f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Submit",
                g_variant_new("(^as@a{sv})", argv, fixture_options("stdin", g_variant_new_handle(0), NULL)),
                NULL, G_DBUS_CALL_FLAGS_NONE, -1, list, NULL, NULL, &error);
        const char *path;
        g_assert_no_error(error);
        g_variant_get(r, "(&o)", &path);
        g_assert_true(fixture_wait_state(f, path, "running"));
        for (int i = 0; i < 3; i++)
                g_dbus_connection_call(i == 1 ? other : f->conn, BUS_NAME, path, JOB_IFACE, "Wait", NULL,
                                       NULL, G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, fixture_on_reply,
                                       &replies[i]);
        g_assert_true(g_dbus_connection_flush_sync(other, NULL, NULL));
        /* Every Wait is in the daemon before the job can end: Get is answered after them. */
        g_autoptr(GVariant) state = fixture_get_property(f, path, JOB_IFACE, "State");
        g_assert_cmpstr(g_variant_get_string(state, NULL), ==, "running");
        g_assert_cmpint(write(p[1], "go\n", 3), ==, 3);
        close(p[1]);
        for (int i = 0; i < 3; i++) {
                int rc;
                g_assert_true(fixture_reply_wait(&replies[i]));
                g_assert_no_error(replies[i].error);
                g_variant_get(replies[i].value, "(i)", &rc);
                g_assert_cmpint(rc, ==, 12);
                fixture_reply_clear(&replies[i]);
        }
}

/* ---- Cancel ----------------------------------------------------------------------------------- */

static void test_cancel_running(Fixture *f, gconstpointer unused) {
        g_autofree char *path = fixture_submit(f, sleep30, NULL);
        g_autofree char *message = NULL;
        guint32 pid;

        g_assert_true(fixture_wait_state(f, path, "running"));
        pid = prop_u(f, path, "Pid");
        fixture_job_call_ok(f, path, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, path, "cancelled"));
        /* Stopped like a timeout: SIGTERM to the group. */
        fixture_assert_outcome(f, path, "cancelled", -15);
        message = prop_s(f, path, "Error");
        g_assert_cmpstr(message, !=, "");
        g_assert_true(process_gone(pid));
        /* Only once. */
        assert_job_call_error(f, path, "Cancel", NULL, "org.procpool.Error.NotRunning");
}

static void test_cancel_queued(Fixture *f, gconstpointer unused) {
        g_autofree char *marker = fixture_gate_path(f, "ran");
        const char *touch[] = { "touch", marker, NULL };
        const char *t[] = { "true", NULL };
        g_autofree char *blocker = fixture_submit(f, sleep30, NULL);
        g_autofree char *queued = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_true(fixture_wait_state(f, blocker, "running"));
        queued = fixture_submit(f, touch, NULL);
        fixture_assert_outcome(f, queued, "queued", 0);
        fixture_job_call_ok(f, queued, "Cancel", NULL);
        fixture_assert_outcome(f, queued, "cancelled", 0);
        g_assert_cmpuint(prop_t(f, queued, "StartedAt"), ==, 0);
        g_assert_cmpuint(prop_t(f, queued, "FinishedAt"), >, 0);

        /* Free the worker and run one more job through it: the cancelled one never got its turn. */
        fixture_job_call_ok(f, blocker, "Cancel", NULL);
        g_assert_cmpint(fixture_call_argv(f, t, NULL, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
        fixture_assert_outcome(f, queued, "cancelled", 0);
        g_assert_cmpint(wait_job(f, queued, &error), ==, -1000);
        fixture_assert_error(error, "org.procpool.Error.Cancelled", NULL);
}

static void test_queued_methods(Fixture *f, gconstpointer unused) {
        const char *t[] = { "true", NULL };
        g_autofree char *blocker = fixture_submit(f, sleep30, NULL);
        g_autofree char *queued = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, o = NULL, e = NULL;

        /* A job that has not started: no signal to send, nothing to release, no output yet. */
        g_assert_true(fixture_wait_state(f, blocker, "running"));
        queued = fixture_submit(f, t, NULL);
        assert_job_call_error(f, queued, "Kill", g_variant_new("(i)", SIGTERM),
                              "org.procpool.Error.NotRunning");
        assert_job_call_error(f, queued, "Release", NULL, "org.procpool.Error.NotFinished");
        r = fixture_job_call(f, queued, "GetOutput", NULL, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(@ay@ay)", &o, &e);
        g_assert_cmpuint(g_variant_get_size(o) + g_variant_get_size(e), ==, 0);
        g_assert_cmpuint(prop_u(f, queued, "Pid"), ==, 0);
        g_assert_cmpuint(prop_t(f, queued, "StartedAt"), ==, 0);
        g_assert_cmpuint(prop_t(f, queued, "SubmittedAt"), >, 0);
        fixture_assert_outcome(f, queued, "queued", 0);
        fixture_job_call_ok(f, blocker, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, queued, "exited"));
        /* A failed job has ended too. */
        const char *missing[] = { "procpool-no-such-program", NULL };
        g_autofree char *failed = fixture_submit(f, missing, NULL);
        g_assert_true(fixture_wait_state(f, failed, "failed"));
        assert_job_call_error(f, failed, "Cancel", NULL, "org.procpool.Error.NotRunning");
        assert_job_call_error(f, failed, "Kill", g_variant_new("(i)", SIGTERM),
                              "org.procpool.Error.NotRunning");
        fixture_job_call_ok(f, failed, "Release", NULL);
}

static void test_cancel_finished(Fixture *f, gconstpointer unused) {
        const char *t[] = { "true", NULL };
        g_autofree char *path = fixture_submit(f, t, NULL);

        g_assert_true(fixture_wait_state(f, path, "exited"));
        assert_job_call_error(f, path, "Cancel", NULL, "org.procpool.Error.NotRunning");
        fixture_assert_outcome(f, path, "exited", 0);
}

/* ---- Kill ------------------------------------------------------------------------------------- */

static void test_kill(Fixture *f, gconstpointer unused) {
        g_autofree char *path = fixture_submit(f, sleep30, NULL);

        g_assert_true(fixture_wait_state(f, path, "running"));
        fixture_job_call_ok(f, path, "Kill", g_variant_new("(i)", SIGKILL));
        g_assert_true(fixture_wait_state(f, path, "killed"));
        fixture_assert_outcome(f, path, "killed", -9);
        assert_job_call_error(f, path, "Kill", g_variant_new("(i)", SIGKILL),
                              "org.procpool.Error.NotRunning");
}

static void test_kill_group(Fixture *f, gconstpointer unused) {
        /* The whole process group gets the signal: the shell and its sleep both end. The shell says
         * once it has started its sleep, so that there is a group to signal, by a redirection (touch
         * would be one more process of the group). */
        g_autofree char *ready = fixture_gate_path(f, "ready"), *quoted = g_shell_quote(ready);
        g_autofree char *script = g_strdup_printf("sleep 30 & : > %s; wait; exit 0", quoted);
        const char *argv[] = { "sh", "-c", script, NULL };
        g_autofree char *path = fixture_submit(f, argv, NULL);
        g_autoptr(GArray) members = NULL, left = NULL;
        guint32 pid;

        g_assert_true(fixture_wait_state(f, path, "running"));
        pid = prop_u(f, path, "Pid");
        g_assert_true(fixture_wait_for_file(ready));
        members = fixture_proc_group(pid);
        g_assert_cmpuint(members->len, ==, 2);
        fixture_job_call_ok(f, path, "Kill", g_variant_new("(i)", SIGTERM));
        g_assert_true(fixture_wait_state(f, path, "killed"));
        fixture_assert_outcome(f, path, "killed", -15);
        /* Nothing is left in its process group (the shell's sleep included). */
        for (guint i = 0; i < members->len; i++)
                g_assert_true(fixture_wait_pid_exit(g_array_index(members, pid_t, i)));
        left = fixture_proc_group(pid);
        g_assert_cmpuint(left->len, ==, 0);
}

static void test_kill_nonfatal(Fixture *f, gconstpointer unused) {
        g_autofree char *path = fixture_submit(f, sleep30, NULL);

        g_assert_true(fixture_wait_state(f, path, "running"));
        /* A signal that does not end it leaves it running. */
        fixture_job_call_ok(f, path, "Kill", g_variant_new("(i)", SIGCONT));
        fixture_job_call_ok(f, path, "Kill", g_variant_new("(i)", SIGWINCH));
        fixture_assert_outcome(f, path, "running", 0);
        fixture_job_call_ok(f, path, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, path, "cancelled"));
}

static void test_kill_invalid(Fixture *f, gconstpointer unused) {
        g_autofree char *path = fixture_submit(f, sleep30, NULL);
        const int bad[] = { 0, -1, 65, 1000 };

        g_assert_true(fixture_wait_state(f, path, "running"));
        for (gsize i = 0; i < G_N_ELEMENTS(bad); i++)
                assert_job_call_error(f, path, "Kill", g_variant_new("(i)", bad[i]),
                                      "org.freedesktop.DBus.Error.InvalidArgs");
        fixture_assert_outcome(f, path, "running", 0);
        fixture_job_call_ok(f, path, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, path, "cancelled"));
}

/* ---- GetOutput -------------------------------------------------------------------------------- */

static void test_get_output(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sh", "-c", "printf 'out\\0put'; printf err >&2; exit 1", NULL };
        g_autofree char *path = fixture_submit(f, argv, NULL);
        g_autoptr(GVariant) r = NULL, out = NULL, err = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_true(fixture_wait_state(f, path, "exited"));
        r = fixture_job_call(f, path, "GetOutput", NULL, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(@ay@ay)", &out, &err);
        g_assert_cmpmem(g_variant_get_data(out), g_variant_get_size(out), "out\0put", 7);
        g_assert_cmpmem(g_variant_get_data(err), g_variant_get_size(err), "err", 3);
}

static void test_get_output_running(Fixture *f, gconstpointer unused) {
        /* The helper prints, and says so once procpoold has read it; then it runs until cancelled. */
        g_autofree char *gate = fixture_gate_path(f, "printed");
        const char *argv[] = { fixture_helper(), "drain", "early\n", gate, NULL };
        g_autofree char *path = fixture_submit(f, argv, NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, out = NULL, err = NULL;

        /* The output so far, while the job still runs. */
        g_assert_true(fixture_wait_for_file(gate));
        r = fixture_job_call(f, path, "GetOutput", NULL, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(@ay@ay)", &out, &err);
        g_assert_cmpmem(g_variant_get_data(out), g_variant_get_size(out), "early\n", 6);
        fixture_assert_outcome(f, path, "running", 0);
        fixture_job_call_ok(f, path, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, path, "cancelled"));
}

/* ---- Release, GetJob, ListJobs, ids ------------------------------------------------------------- */

static void assert_no_job(Fixture *f, guint64 id) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = fixture_call(f, "GetJob", g_variant_new("(t)", id), &error);
        g_assert_null(r);
        fixture_assert_error(error, "org.freedesktop.DBus.Error.UnknownObject", NULL);
}

static char *list_jobs(Fixture *f) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = fixture_call(f, "ListJobs", NULL, &error);
        g_autoptr(GVariantIter) it = NULL;
        GString *s = g_string_new(NULL);
        const char *path, *state;
        guint64 id;
        gint32 rc;

        g_assert_no_error(error);
        g_variant_get(r, "(a(tosi))", &it);
        while (g_variant_iter_next(it, "(t&o&si)", &id, &path, &state, &rc)) {
                g_autofree char *expected = g_strdup_printf(MANAGER_PATH "/job/%" G_GUINT64_FORMAT, id);
                g_assert_cmpstr(path, ==, expected);
                g_string_append_printf(s, "%s%" G_GUINT64_FORMAT ":%s:%d", s->len ? " " : "", id, state, rc);
        }
        return g_string_free(s, FALSE);
}

static void test_release(Fixture *f, gconstpointer unused) {
        const char *t[] = { "true", NULL };
        g_autofree char *path = fixture_submit(f, t, NULL);
        g_autofree char *running = fixture_submit(f, sleep30, NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;

        g_assert_true(fixture_wait_state(f, path, "exited"));
        g_assert_true(fixture_wait_state(f, running, "running"));
        assert_job_call_error(f, running, "Release", NULL, "org.procpool.Error.NotFinished");
        fixture_job_call_ok(f, path, "Release", NULL);

        /* The object is gone: GetJob, its properties and ListJobs no longer know it. */
        assert_no_job(f, 1);
        r = g_dbus_connection_call_sync(f->conn, BUS_NAME, path, "org.freedesktop.DBus.Properties", "Get",
                                        g_variant_new("(ss)", JOB_IFACE, "State"), NULL,
                                        G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_null(r);
        fixture_assert_error(error, "org.freedesktop.DBus.Error.UnknownObject", NULL);
        g_autofree char *list = list_jobs(f);
        g_assert_cmpstr(list, ==, "2:running:0");

        fixture_job_call_ok(f, running, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, running, "cancelled"));
        fixture_job_call_ok(f, running, "Release", NULL);
        g_autofree char *empty = list_jobs(f);
        g_assert_cmpstr(empty, ==, "");
}

static void test_ids(Fixture *f, gconstpointer unused) {
        const char *t[] = { "true", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        const char *got;

        for (int i = 1; i <= 3; i++) {
                g_autofree char *path = fixture_submit(f, t, NULL);
                g_autofree char *expected = g_strdup_printf(MANAGER_PATH "/job/%d", i);
                g_assert_cmpstr(path, ==, expected);
                g_assert_true(fixture_wait_state(f, path, "exited"));
        }
        /* Released ids are not handed out again, not even the highest one. */
        fixture_job_call_ok(f, MANAGER_PATH "/job/3", "Release", NULL);
        fixture_job_call_ok(f, MANAGER_PATH "/job/1", "Release", NULL);
        g_autofree char *next = fixture_submit(f, t, NULL);
        g_assert_cmpstr(next, ==, MANAGER_PATH "/job/4");

        r = fixture_call(f, "GetJob", g_variant_new("(t)", (guint64) 2), &error);
        g_assert_no_error(error);
        g_variant_get(r, "(&o)", &got);
        g_assert_cmpstr(got, ==, MANAGER_PATH "/job/2");
        assert_no_job(f, 0);
        assert_no_job(f, 1);
        assert_no_job(f, 3);
        assert_no_job(f, 5);
        assert_no_job(f, G_MAXUINT64);
        /* Paths that are not a job's canonical one name nothing. */
        g_clear_pointer(&r, g_variant_unref);
        r = g_dbus_connection_call_sync(
                f->conn, BUS_NAME, MANAGER_PATH "/job/02", "org.freedesktop.DBus.Properties", "Get",
                g_variant_new("(ss)", JOB_IFACE, "State"), NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_null(r);
        g_assert_nonnull(error);
}

static void test_list_jobs(Fixture *f, gconstpointer unused) {
        const char *exit3[] = { "sh", "-c", "exit 3", NULL };
        const char *missing[] = { "procpool-no-such-program", NULL };
        g_autofree char *a = fixture_submit(f, exit3, NULL);
        g_autofree char *b = fixture_submit(f, missing, NULL);
        g_autofree char *c = fixture_submit(f, sleep30, NULL);
        g_autofree char *list = NULL;

        g_assert_true(fixture_wait_state(f, a, "exited"));
        g_assert_true(fixture_wait_state(f, b, "failed"));
        g_assert_true(fixture_wait_state(f, c, "running"));
        list = list_jobs(f);
        g_assert_cmpstr(list, ==, "1:exited:3 2:failed:0 3:running:0");
        fixture_job_call_ok(f, c, "Kill", g_variant_new("(i)", SIGKILL));
        g_assert_true(fixture_wait_state(f, c, "killed"));
        g_free(list);
        list = list_jobs(f);
        g_assert_cmpstr(list, ==, "1:exited:3 2:failed:0 3:killed:-9");
}

static const char *const retain2[] = { "--retain=2", NULL };

static void test_retain(Fixture *f, gconstpointer unused) {
        const char *t[] = { "true", NULL };
        g_autofree char *running = fixture_submit(f, sleep30, NULL);
        g_autofree char *list = NULL;

        g_assert_true(fixture_wait_state(f, running, "running"));
        for (int i = 2; i <= 4; i++) {
                g_autofree char *path = fixture_submit(f, t, NULL);
                g_assert_true(fixture_wait_state(f, path, "exited"));
        }
        /* More than two finished: the oldest finished one goes; a running job is not counted. */
        list = list_jobs(f);
        g_assert_cmpstr(list, ==, "1:running:0 3:exited:0 4:exited:0");
        assert_no_job(f, 2);

        fixture_job_call_ok(f, running, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, running, "cancelled"));
        /* Job 1 finished last, so job 3 is now the oldest finished one. */
        g_free(list);
        list = list_jobs(f);
        g_assert_cmpstr(list, ==, "1:cancelled:-15 4:exited:0");
}

/* ---- signals ---------------------------------------------------------------------------------- */

typedef struct {
        GPtrArray *finished;
        GPtrArray *changes; /* "path State=value" */
        guint expected;
} Recorder;

static void on_job_finished(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                            const char *member, GVariant *params, gpointer data) {
        Recorder *r = data;
        const char *job, *state;
        guint64 id;
        gint32 rc;

        g_variant_get(params, "(t&o&si)", &id, &job, &state, &rc);
        g_ptr_array_add(r->finished, g_strdup_printf("%" G_GUINT64_FORMAT " %s %s %d", id, job, state, rc));
}

static void on_properties_changed(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                                  const char *member, GVariant *params, gpointer data) {
        Recorder *r = data;
        g_autoptr(GVariant) changed = NULL;
        const char *state;

        changed = g_variant_get_child_value(params, 1);
        if (g_variant_lookup(changed, "State", "&s", &state))
                g_ptr_array_add(r->changes, g_strdup_printf("%s %s", path, state));
}

static gboolean enough_finished(gpointer data) {
        Recorder *r = data;
        return r->finished->len >= r->expected;
}

static void test_job_finished_signal(Fixture *f, gconstpointer unused) {
        Recorder rec = { g_ptr_array_new_with_free_func(g_free), g_ptr_array_new_with_free_func(g_free), 4 };
        const char *t[] = { "true", NULL };
        const char *missing[] = { "procpool-no-such-program", NULL };
        const char *exit2[] = { "sh", "-c", "exit 2", NULL };
        guint sub = g_dbus_connection_signal_subscribe(f->conn, NULL, MANAGER_IFACE, "JobFinished",
                                                       MANAGER_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                       on_job_finished, &rec, NULL);
        g_autofree char *blocker = fixture_submit(f, sleep30, NULL);
        g_autofree char *queued = NULL, *failing = NULL, *exiting = NULL;

        /* Pool of one: the blocker runs, the rest queue behind it. */
        g_assert_true(fixture_wait_state(f, blocker, "running"));
        queued = fixture_submit(f, t, NULL);
        failing = fixture_submit(f, missing, NULL);
        exiting = fixture_submit(f, exit2, NULL);
        fixture_job_call_ok(f, queued, "Cancel", NULL);
        fixture_job_call_ok(f, blocker, "Cancel", NULL);
        g_assert_true(fixture_iterate_until(enough_finished, &rec));
        /* Once each: a round trip brings anything the daemon sent before it, then none may be extra. */
        g_autoptr(GVariant) v = fixture_get_property(f, MANAGER_PATH, MANAGER_IFACE, "Version");
        while (g_main_context_iteration(NULL, FALSE))
                ;

        g_assert_cmpuint(rec.finished->len, ==, 4);
        g_assert_cmpstr(rec.finished->pdata[0], ==, "2 " MANAGER_PATH "/job/2 cancelled 0");
        g_assert_cmpstr(rec.finished->pdata[1], ==, "1 " MANAGER_PATH "/job/1 cancelled -15");
        g_assert_cmpstr(rec.finished->pdata[2], ==, "3 " MANAGER_PATH "/job/3 failed 0");
        g_assert_cmpstr(rec.finished->pdata[3], ==, "4 " MANAGER_PATH "/job/4 exited 2");
        g_dbus_connection_signal_unsubscribe(f->conn, sub);
        g_ptr_array_unref(rec.finished);
        g_ptr_array_unref(rec.changes);
}

static gboolean five_changes(gpointer data) {
        Recorder *r = data;
        return r->finished->len >= r->expected && r->changes->len >= 5;
}

static void test_properties_changed(Fixture *f, gconstpointer unused) {
        Recorder rec = { g_ptr_array_new_with_free_func(g_free), g_ptr_array_new_with_free_func(g_free), 3 };
        const char *exit1[] = { "sh", "-c", "exit 1", NULL };
        guint sub1 = g_dbus_connection_signal_subscribe(f->conn, NULL, MANAGER_IFACE, "JobFinished",
                                                        MANAGER_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                        on_job_finished, &rec, NULL);
        guint sub2 = g_dbus_connection_signal_subscribe(
                f->conn, NULL, "org.freedesktop.DBus.Properties", "PropertiesChanged", NULL, JOB_IFACE,
                G_DBUS_SIGNAL_FLAGS_NONE, on_properties_changed, &rec, NULL);
        g_autofree char *blocker = fixture_submit(f, sleep30, NULL);
        g_autofree char *queued = NULL, *exiting = NULL;

        g_assert_true(fixture_wait_state(f, blocker, "running"));
        queued = fixture_submit(f, exit1, NULL);
        fixture_job_call_ok(f, queued, "Cancel", NULL);
        fixture_job_call_ok(f, blocker, "Kill", g_variant_new("(i)", SIGKILL));
        exiting = fixture_submit(f, exit1, NULL);
        /* JobFinished may come before or after a job's last PropertiesChanged: wait for both. */
        g_assert_true(fixture_iterate_until(five_changes, &rec));
        while (g_main_context_iteration(NULL, FALSE))
                ;

        /* Every State change, with its new value, in order; none for a state not taken. */
        g_autofree char *joined = NULL;
        g_ptr_array_add(rec.changes, NULL);
        joined = g_strjoinv(",", (char **) rec.changes->pdata);
        g_assert_cmpstr(joined, ==,
                        MANAGER_PATH "/job/1 running," MANAGER_PATH "/job/2 cancelled," MANAGER_PATH
                                     "/job/1 killed," MANAGER_PATH "/job/3 running," MANAGER_PATH
                                     "/job/3 exited");
        g_dbus_connection_signal_unsubscribe(f->conn, sub1);
        g_dbus_connection_signal_unsubscribe(f->conn, sub2);
        g_ptr_array_unref(rec.finished);
        g_ptr_array_unref(rec.changes);
}

/* The last value each job property had in a PropertiesChanged signal of path. */
typedef struct {
        const char *path;
        GHashTable *last; /* name -> GVariant */
        gboolean invalidated;
} Values;

static void on_values(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                      const char *member, GVariant *params, gpointer data) {
        Values *v = data;
        g_autoptr(GVariant) changed = g_variant_get_child_value(params, 1);
        g_autoptr(GVariant) invalidated = g_variant_get_child_value(params, 2);
        GVariantIter it;
        const char *name;
        GVariant *value;

        if (!g_str_equal(path, v->path))
                return;
        if (g_variant_n_children(invalidated) > 0)
                v->invalidated = TRUE;
        g_variant_iter_init(&it, changed);
        while (g_variant_iter_next(&it, "{&sv}", &name, &value))
                g_hash_table_replace(v->last, g_strdup(name), value);
}

static gboolean has_finished_at(gpointer data) {
        Values *v = data;
        GVariant *f = g_hash_table_lookup(v->last, "FinishedAt");
        return f && g_variant_get_uint64(f) > 0;
}

static gboolean has_started(gpointer data) {
        Values *v = data;
        return g_hash_table_contains(v->last, "Pid") && g_hash_table_contains(v->last, "StartedAt");
}

static void test_changed_values(Fixture *f, gconstpointer unused) {
        static const char *const props[] = {
                "State", "Pid", "ReturnCode", "StartedAt", "FinishedAt", "Error"
        };
        const char *path = MANAGER_PATH "/job/1";
        g_autofree char *got_term = fixture_gate_path(f, "got-term"), *gate = fixture_gate_path(f, "go");
        g_autofree char *quoted = g_shell_quote(got_term), *wait_gate = fixture_gate_wait_sh(gate);
        /* It outlives its timeout's SIGTERM until the test has looked at it running, then ends by
         * that signal: the daemon stopped it, so it timed out. The timeout is a clock of the daemon's:
         * 2 s for the shell to set its trap, where it needs milliseconds. */
        g_autofree char *script =
                g_strdup_printf("trap 'touch %s' TERM; %s; trap - TERM; kill -TERM $$", quoted, wait_gate);
        const char *argv[] = { "sh", "-c", script, NULL };
        Values v = { path, g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                 (GDestroyNotify) g_variant_unref) };
        guint sub = g_dbus_connection_signal_subscribe(f->conn, NULL, "org.freedesktop.DBus.Properties",
                                                       "PropertiesChanged", NULL, JOB_IFACE,
                                                       G_DBUS_SIGNAL_FLAGS_NONE, on_values, &v, NULL);
        g_autofree char *submitted = fixture_submit(
                f, argv,
                fixture_options("timeout-usec", g_variant_new_uint64(2000000), "stop-timeout-usec",
                                g_variant_new_uint64(FIXTURE_WAIT_SEC * G_USEC_PER_SEC), NULL));

        g_assert_cmpstr(submitted, ==, path);
        /* While it runs, the Pid and StartedAt signalled are the ones read. */
        g_assert_true(fixture_iterate_until(has_started, &v));
        for (gsize i = 0; i < 2; i++) {
                const char *name = i == 0 ? "Pid" : "StartedAt";
                g_autoptr(GVariant) now = fixture_get_property(f, path, JOB_IFACE, name);
                g_test_message("%s while running", name);
                g_assert_true(g_variant_equal(g_hash_table_lookup(v.last, name), now));
        }
        g_assert_cmpuint(g_variant_get_uint32(g_hash_table_lookup(v.last, "Pid")), >, 0);
        g_assert_true(fixture_wait_for_file(got_term));
        fixture_gate_open(gate);
        g_assert_true(fixture_iterate_until(has_finished_at, &v));
        /* Each of them came with its new value, equal to what Get says once the job has timed out. */
        g_assert_false(v.invalidated);
        for (gsize i = 0; i < G_N_ELEMENTS(props); i++) {
                g_autoptr(GVariant) now = fixture_get_property(f, path, JOB_IFACE, props[i]);
                GVariant *last = g_hash_table_lookup(v.last, props[i]);
                g_test_message("%s", props[i]);
                g_assert_nonnull(last);
                g_assert_true(g_variant_equal(last, now));
        }
        g_assert_cmpstr(g_variant_get_string(g_hash_table_lookup(v.last, "State"), NULL), ==, "timed-out");
        g_assert_cmpint(g_variant_get_int32(g_hash_table_lookup(v.last, "ReturnCode")), ==, -15);
        g_assert_cmpuint(g_variant_get_uint32(g_hash_table_lookup(v.last, "Pid")), ==, 0);
        g_dbus_connection_signal_unsubscribe(f->conn, sub);
        g_hash_table_unref(v.last);
}

static void on_interfaces(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                          const char *member, GVariant *params, gpointer data) {
        GPtrArray *events = data;
        const char *job;

        g_variant_get_child(params, 0, "&o", &job);
        g_ptr_array_add(events, g_strdup_printf("%s %s", member, job));
}

static gboolean two_events(gpointer data) {
        return ((GPtrArray *) data)->len >= 2;
}

static void test_object_manager(Fixture *f, gconstpointer unused) {
        g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func(g_free);
        const char *t[] = { "true", NULL };
        guint sub = g_dbus_connection_signal_subscribe(f->conn, NULL, "org.freedesktop.DBus.ObjectManager",
                                                       NULL, MANAGER_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                       on_interfaces, events, NULL);
        g_autofree char *path = fixture_submit(f, t, NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) objects = NULL, ifaces = NULL;

        g_assert_true(fixture_wait_state(f, path, "exited"));
        objects = g_dbus_connection_call_sync(
                f->conn, BUS_NAME, MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                NULL, G_VARIANT_TYPE("(a{oa{sa{sv}}})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_no_error(error);
        g_autoptr(GVariant) dict = g_variant_get_child_value(objects, 0);
        ifaces = g_variant_lookup_value(dict, path, G_VARIANT_TYPE("a{sa{sv}}"));
        g_assert_nonnull(ifaces);
        g_autoptr(GVariant) props = g_variant_lookup_value(ifaces, JOB_IFACE, G_VARIANT_TYPE("a{sv}"));
        g_assert_nonnull(props);
        const char *state;
        g_assert_true(g_variant_lookup(props, "State", "&s", &state));
        g_assert_cmpstr(state, ==, "exited");

        fixture_job_call_ok(f, path, "Release", NULL);
        g_assert_true(fixture_iterate_until(two_events, events));
        g_assert_cmpstr(events->pdata[0], ==, "InterfacesAdded " MANAGER_PATH "/job/1");
        g_assert_cmpstr(events->pdata[1], ==, "InterfacesRemoved " MANAGER_PATH "/job/1");
        g_dbus_connection_signal_unsubscribe(f->conn, sub);
}

/* ---- who may do what -------------------------------------------------------------------------- */

static const char *remote_error_name(GError *error) {
        static char buf[256];
        g_autofree char *name = g_dbus_error_get_remote_error(error);
        g_strlcpy(buf, name ? name : error->message, sizeof(buf));
        return buf;
}

/* Runs as OTHER_UID in a child of the test (re-executed): prints one line per call it makes. */
static int run_as_other(const char *address, const char *mode, const char *running, const char *finished) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) c = fixture_connect(address, &error);

        if (!c) {
                g_printerr("connect: %s\n", error->message);
                return 3;
        }
#define CALL(path, iface, method, params)                                                           \
        ({                                                                                          \
                g_autoptr(GError) e_ = NULL;                                                        \
                g_autoptr(GVariant) r_ =                                                            \
                        g_dbus_connection_call_sync(c, BUS_NAME, path, iface, method, params, NULL, \
                                                    G_DBUS_CALL_FLAGS_NONE, 20000, NULL, &e_);      \
                if (r_) {                                                                           \
                        g_autofree char *p_ = g_variant_print(r_, FALSE);                           \
                        g_print("%s %s\n", method, p_);                                             \
                } else                                                                              \
                        g_print("%s %s\n", method, remote_error_name(e_));                          \
        })
        if (g_str_equal(mode, "foreign")) {
                CALL(running, JOB_IFACE, "Cancel", NULL);
                CALL(running, JOB_IFACE, "Kill", g_variant_new("(i)", SIGKILL));
                CALL(running, JOB_IFACE, "GetOutput", NULL);
                CALL(finished, JOB_IFACE, "Release", NULL);
                CALL(finished, JOB_IFACE, "GetOutput", NULL);
                CALL(running, "org.freedesktop.DBus.Properties", "Get",
                     g_variant_new("(ss)", JOB_IFACE, "State"));
                CALL(finished, JOB_IFACE, "Wait", NULL);
                CALL(MANAGER_PATH, MANAGER_IFACE, "GetJob", g_variant_new("(t)", (guint64) 1));
                CALL(MANAGER_PATH, "org.freedesktop.DBus.Properties", "Set",
                     g_variant_new("(ssv)", MANAGER_IFACE, "PoolSize", g_variant_new_uint32(7)));
        } else if (g_str_equal(mode, "submit")) {
                /* Submit'd jobs outlive their submitter's connection. */
                CALL(MANAGER_PATH, MANAGER_IFACE, "Submit",
                     g_variant_new("(^as@a{sv})", sleep30, FIXTURE_NO_OPTIONS));
        } else {
                const char *argv[] = { "sh", "-c", "printf mine", NULL };
                g_autoptr(GVariant) r =
                        g_dbus_connection_call_sync(c, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Submit",
                                                    g_variant_new("(^as@a{sv})", argv, FIXTURE_NO_OPTIONS),
                                                    NULL, G_DBUS_CALL_FLAGS_NONE, 20000, NULL, &error);
                const char *path;
                if (!r) {
                        g_print("Submit %s\n", remote_error_name(error));
                        return 0;
                }
                g_variant_get(r, "(&o)", &path);
                CALL(path, JOB_IFACE, "Wait", NULL);
                CALL(path, JOB_IFACE, "GetOutput", NULL);
                CALL(path, "org.freedesktop.DBus.Properties", "Get",
                     g_variant_new("(ss)", JOB_IFACE, "Owner"));
                CALL(path, JOB_IFACE, "Release", NULL);
        }
#undef CALL
        return 0;
}

static char *spawn_as_other(Fixture *f, const char *mode, const char *running, const char *finished) {
        g_autofree char *self = fixture_self();
        const char *argv[] = { self, "--as-other-user", f->address, mode, running, finished, NULL };

        return fixture_run_as_other(argv);
}

static void test_owner_checks(Fixture *f, gconstpointer unused) {
        const char *exit6[] = { "sh", "-c", "printf secret; exit 6", NULL };
        g_autofree char *running = fixture_submit(f, sleep30, NULL);
        g_autofree char *finished = fixture_submit(f, exit6, NULL);
        g_autofree char *out = NULL;

        if (!fixture_have_root())
                return;
        g_assert_true(fixture_wait_state(f, running, "running"));
        g_assert_true(fixture_wait_state(f, finished, "exited"));
        out = spawn_as_other(f, "foreign", running, finished);
        g_assert_cmpstr(out, ==,
                        "Cancel org.freedesktop.DBus.Error.AccessDenied\n"
                        "Kill org.freedesktop.DBus.Error.AccessDenied\n"
                        "GetOutput org.freedesktop.DBus.Error.AccessDenied\n"
                        "Release org.freedesktop.DBus.Error.AccessDenied\n"
                        "GetOutput org.freedesktop.DBus.Error.AccessDenied\n"
                        "Get (<'running'>,)\n"
                        "Wait (6,)\n"
                        "GetJob ('/org/procpool/Supervisor1/job/1',)\n"
                        "Set org.freedesktop.DBus.Error.AccessDenied\n");
        /* Nothing they tried took effect. */
        fixture_assert_outcome(f, running, "running", 0);
        fixture_assert_outcome(f, finished, "exited", 6);
        g_autoptr(GVariant) size = fixture_get_property(f, MANAGER_PATH, MANAGER_IFACE, "PoolSize");
        g_assert_cmpuint(g_variant_get_uint32(size), !=, 7);
        fixture_job_call_ok(f, running, "Cancel", NULL);
}

static void test_owner_own_job(Fixture *f, gconstpointer unused) {
        g_autofree char *out = NULL;
        g_autofree char *path = NULL;

        if (!fixture_have_root())
                return;
        /* Another user runs a job and may do everything with it; root may too. */
        out = spawn_as_other(f, "own", "", "");
        g_assert_cmpstr(out, ==,
                        "Wait (0,)\n"
                        "GetOutput ([0x6d, 0x69, 0x6e, 0x65], [])\n"
                        "Get (<uint32 65534>,)\n"
                        "Release ()\n");
        g_autofree char *list = list_jobs(f);
        g_assert_cmpstr(list, ==, "");

        /* Root may act on another user's job. */
        g_autofree char *submitted = spawn_as_other(f, "submit", "", "");
        g_assert_nonnull(strstr(submitted, MANAGER_PATH "/job/2"));
        path = g_strdup(MANAGER_PATH "/job/2");
        g_assert_cmpuint(prop_u(f, path, "Owner"), ==, OTHER_UID);
        g_assert_true(fixture_wait_state(f, path, "running"));
        fixture_job_call_ok(f, path, "GetOutput", NULL);
        fixture_job_call_ok(f, path, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, path, "cancelled"));
        fixture_job_call_ok(f, path, "Release", NULL);
}

int main(int argc, char *argv[]) {
        if (argc == 6 && g_str_equal(argv[1], "--as-other-user"))
                return run_as_other(argv[2], argv[3], argv[4], argv[5]);

        g_test_init(&argc, &argv, NULL);
        static const char *const pool1[] = { "--pool-size=1", NULL };
        FIXTURE_ADD("/procpool/job/properties", fixture_setup, NULL, test_properties);
        FIXTURE_ADD("/procpool/job/running-properties", fixture_setup, NULL, test_running_properties);
        FIXTURE_ADD("/procpool/job/wait", fixture_setup, NULL, test_wait);
        FIXTURE_ADD("/procpool/job/wait-disconnect", fixture_setup, NULL, test_wait_disconnect);
        FIXTURE_ADD("/procpool/job/wait-many", fixture_setup, NULL, test_wait_many);
        FIXTURE_ADD("/procpool/job/cancel-running", fixture_setup, NULL, test_cancel_running);
        FIXTURE_ADD("/procpool/job/cancel-queued", fixture_setup, pool1, test_cancel_queued);
        FIXTURE_ADD("/procpool/job/queued-methods", fixture_setup, pool1, test_queued_methods);
        FIXTURE_ADD("/procpool/job/cancel-finished", fixture_setup, NULL, test_cancel_finished);
        FIXTURE_ADD("/procpool/job/kill", fixture_setup, NULL, test_kill);
        FIXTURE_ADD("/procpool/job/kill-group", fixture_setup, NULL, test_kill_group);
        FIXTURE_ADD("/procpool/job/kill-nonfatal", fixture_setup, NULL, test_kill_nonfatal);
        FIXTURE_ADD("/procpool/job/kill-invalid", fixture_setup, NULL, test_kill_invalid);
        FIXTURE_ADD("/procpool/job/get-output", fixture_setup, NULL, test_get_output);
        FIXTURE_ADD("/procpool/job/get-output-running", fixture_setup, NULL, test_get_output_running);
        FIXTURE_ADD("/procpool/job/release", fixture_setup, NULL, test_release);
        FIXTURE_ADD("/procpool/job/ids", fixture_setup, NULL, test_ids);
        FIXTURE_ADD("/procpool/job/list-jobs", fixture_setup, NULL, test_list_jobs);
        FIXTURE_ADD("/procpool/job/retain", fixture_setup, retain2, test_retain);
        FIXTURE_ADD("/procpool/job/job-finished-signal", fixture_setup, pool1, test_job_finished_signal);
        FIXTURE_ADD("/procpool/job/properties-changed", fixture_setup, pool1, test_properties_changed);
        FIXTURE_ADD("/procpool/job/changed-values", fixture_setup, NULL, test_changed_values);
        FIXTURE_ADD("/procpool/job/object-manager", fixture_setup, NULL, test_object_manager);
        FIXTURE_ADD("/procpool/job/owner-checks", fixture_setup_open_bus, NULL, test_owner_checks);
        /* Another uid runs jobs on the system instance only (polkit's defaults allow it there). */
        FIXTURE_ADD("/procpool/job/owner-own-job", fixture_setup_system, NULL, test_owner_own_job);
        return g_test_run();
}
