/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Job objects: properties, Wait, Cancel, Kill, GetOutput, Release, who may use them, retention,
 * GetJob and ListJobs, and the JobFinished and PropertiesChanged signals. */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>

#include "fixture.h"

#define OTHER_UID 65534

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

static void assert_outcome(Fixture *f, const char *path, const char *state, int rc) {
        g_autofree char *s = NULL;
        int r;

        fixture_job_outcome(f, path, &s, &r, NULL);
        g_assert_cmpstr(s, ==, state);
        g_assert_cmpint(r, ==, rc);
}

static GVariant *job_call(Fixture *f, const char *path, const char *method, GVariant *params,
                          GError **error) {
        return fixture_job_call(f, path, method, params, error);
}

static void assert_job_call_ok(Fixture *f, const char *path, const char *method, GVariant *params) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = job_call(f, path, method, params, &error);
        g_assert_no_error(error);
}

static void assert_job_call_error(Fixture *f, const char *path, const char *method, GVariant *params,
                                  const char *name) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = job_call(f, path, method, params, &error);
        g_assert_null(r);
        fixture_assert_error(error, name, NULL);
}

static int wait_job(Fixture *f, const char *path, GError **error) {
        g_autoptr(GVariant) r = job_call(f, path, "Wait", NULL, error);
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
        assert_outcome(f, path, "exited", 5);
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
        g_autofree char *cg_path = g_strdup_printf("/proc/%d/cgroup", f->daemon_pid), *cg = NULL;
        g_assert_true(g_file_get_contents(cg_path, &cg, NULL, NULL));
        if (!g_str_has_suffix(g_strstrip(cg), "/supervisor")) {
                g_assert_cmpuint(prop_t(f, path, "CPUUsageUSec"), ==, 0);
                g_assert_cmpuint(prop_t(f, path, "MemoryPeak"), ==, 0);
        }
}

static void test_running_properties(Fixture *f, gconstpointer unused) {
        g_autofree char *path = fixture_submit(f, sleep30, NULL);
        g_autofree char *cmdline = NULL, *label = NULL, *stat_path = NULL;
        gsize len;
        guint32 pid;

        g_assert_true(fixture_wait_state(f, path, "running"));
        pid = prop_u(f, path, "Pid");
        g_assert_cmpuint(pid, >, 0);
        /* The Pid is the command's own process. */
        stat_path = g_strdup_printf("/proc/%u/cmdline", pid);
        /* Right after a vfork()ed exec the new image may not have set up its arguments yet. */
        for (int i = 0; i < 2000; i++) {
                g_clear_pointer(&cmdline, g_free);
                g_assert_true(g_file_get_contents(stat_path, &cmdline, &len, NULL));
                if (len > 0)
                        break;
                g_usleep(1000);
        }
        g_assert_cmpmem(cmdline, len,
                        "sleep\0"
                        "30\0",
                        9);
        g_assert_cmpint(prop_t(f, path, "StartedAt"), >, 0);
        g_assert_cmpint(prop_t(f, path, "FinishedAt"), ==, 0);
        assert_outcome(f, path, "running", 0);
        label = prop_s(f, path, "Label");
        g_assert_cmpstr(label, ==, "");

        assert_job_call_ok(f, path, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, path, "cancelled"));
        g_assert_cmpuint(prop_u(f, path, "Pid"), ==, 0);
        g_assert_true(process_gone(pid));
}

/* ---- Wait ------------------------------------------------------------------------------------- */

static void test_wait(Fixture *f, gconstpointer unused) {
        const char *exit6[] = { "sh", "-c", "sleep 0.2; exit 6", NULL };
        const char *missing[] = { "procpool-no-such-program", NULL };
        g_autofree char *a = fixture_submit(f, exit6, NULL);
        g_autofree char *b = fixture_submit(f, missing, NULL);
        g_autofree char *c = fixture_submit(f, sleep30, NULL);
        g_autofree char *d = fixture_submit(
                f, sleep30, fixture_options("timeout-usec", g_variant_new_uint64(100000), NULL));
        g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL, e4 = NULL, e5 = NULL;

        /* Waits for the end, then answers at once for a job that has ended. */
        g_assert_cmpint(wait_job(f, a, &e1), ==, 6);
        g_assert_no_error(e1);
        g_assert_cmpint(wait_job(f, a, &e2), ==, 6);
        g_assert_no_error(e2);
        /* Ends like Call: the error of a failed, cancelled or timed-out job. */
        g_assert_cmpint(wait_job(f, b, &e3), ==, -1000);
        fixture_assert_error(e3, "org.procpool.Error.SpawnFailed",
                             "Failed to execute 'procpool-no-such-program': No such file or directory");
        g_assert_true(fixture_wait_state(f, c, "running"));
        assert_job_call_ok(f, c, "Cancel", NULL);
        g_assert_cmpint(wait_job(f, c, &e4), ==, -1000);
        fixture_assert_error(e4, "org.procpool.Error.Cancelled", NULL);
        g_assert_cmpint(wait_job(f, d, &e5), ==, -1000);
        fixture_assert_error(e5, "org.procpool.Error.TimedOut", NULL);
}

static void on_wait_done(GObject *source, GAsyncResult *res, gpointer data) {
        GError **error = data;
        g_autoptr(GVariant) r = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, error);
        if (r)
                g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_FAILED, "unexpected reply");
}

static gboolean error_set(gpointer data) {
        return *(GError **) data != NULL;
}

static void test_wait_disconnect(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL, call_error = NULL;
        const char *argv[] = { "sh", "-c", "sleep 0.3; exit 2", NULL };
        const char *t[] = { "true", NULL };
        g_autofree char *path = fixture_submit(f, argv, NULL);
        g_autoptr(GDBusConnection) other =
                g_dbus_connection_new_for_address_sync(f->address,
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                               G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, &error);

        g_assert_no_error(error);
        /* A waiter that leaves the bus: the job and everyone else carry on. */
        g_dbus_connection_call(other, BUS_NAME, path, JOB_IFACE, "Wait", NULL, NULL, G_DBUS_CALL_FLAGS_NONE,
                               G_MAXINT, NULL, on_wait_done, &call_error);
        g_assert_true(g_dbus_connection_flush_sync(other, NULL, &error));
        g_assert_no_error(error);
        g_assert_true(fixture_wait_state(f, path, "running"));
        g_assert_true(g_dbus_connection_close_sync(other, NULL, &error));
        g_assert_no_error(error);
        g_assert_true(fixture_iterate_until(error_set, &call_error));
        g_assert_true(g_error_matches(call_error, G_IO_ERROR, G_IO_ERROR_CLOSED));

        g_assert_true(fixture_wait_state(f, path, "exited"));
        assert_outcome(f, path, "exited", 2);
        g_assert_cmpint(fixture_call_argv(f, t, NULL, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_cmpint(wait_job(f, path, &error), ==, 2);
}

typedef struct {
        int n;
        int rc[3];
} Many;

static void on_many(GObject *source, GAsyncResult *res, gpointer data) {
        Many *m = data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);

        g_assert_no_error(error);
        g_variant_get(r, "(i)", &m->rc[m->n++]);
}

static gboolean three_replies(gpointer data) {
        return ((Many *) data)->n == 3;
}

static void test_wait_many(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sh", "-c", "read x; exit 12", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) other =
                g_dbus_connection_new_for_address_sync(f->address,
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                               G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, &error);
        int p[2];
        Many m = {};

        g_assert_no_error(error);
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
                                       NULL, G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, on_many, &m);
        g_assert_true(g_dbus_connection_flush_sync(other, NULL, NULL));
        /* Every Wait is in the daemon before the job can end: Get is answered after them. */
        g_autoptr(GVariant) state = fixture_get_property(f, path, JOB_IFACE, "State");
        g_assert_cmpstr(g_variant_get_string(state, NULL), ==, "running");
        g_assert_cmpint(write(p[1], "go\n", 3), ==, 3);
        close(p[1]);
        g_assert_true(fixture_iterate_until(three_replies, &m));
        for (int i = 0; i < 3; i++)
                g_assert_cmpint(m.rc[i], ==, 12);
}

/* ---- Cancel ----------------------------------------------------------------------------------- */

static void test_cancel_running(Fixture *f, gconstpointer unused) {
        g_autofree char *path = fixture_submit(f, sleep30, NULL);
        g_autofree char *message = NULL;
        guint32 pid;

        g_assert_true(fixture_wait_state(f, path, "running"));
        pid = prop_u(f, path, "Pid");
        assert_job_call_ok(f, path, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, path, "cancelled"));
        /* Stopped like a timeout: SIGTERM to the group. */
        assert_outcome(f, path, "cancelled", -15);
        message = prop_s(f, path, "Error");
        g_assert_cmpstr(message, !=, "");
        g_assert_true(process_gone(pid));
        /* Only once. */
        assert_job_call_error(f, path, "Cancel", NULL, "org.procpool.Error.NotRunning");
}

static void test_cancel_queued(Fixture *f, gconstpointer unused) {
        g_autofree char *dir = g_dir_make_tmp("procpool-test-XXXXXX", NULL);
        g_autofree char *marker = g_build_filename(dir, "ran", NULL);
        const char *touch[] = { "touch", marker, NULL };
        const char *t[] = { "true", NULL };
        g_autofree char *blocker = fixture_submit(f, sleep30, NULL);
        g_autofree char *queued = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_true(fixture_wait_state(f, blocker, "running"));
        queued = fixture_submit(f, touch, NULL);
        assert_outcome(f, queued, "queued", 0);
        assert_job_call_ok(f, queued, "Cancel", NULL);
        assert_outcome(f, queued, "cancelled", 0);
        g_assert_cmpuint(prop_t(f, queued, "StartedAt"), ==, 0);
        g_assert_cmpuint(prop_t(f, queued, "FinishedAt"), >, 0);

        /* Free the worker and run one more job through it: the cancelled one never got its turn. */
        assert_job_call_ok(f, blocker, "Cancel", NULL);
        g_assert_cmpint(fixture_call_argv(f, t, NULL, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
        assert_outcome(f, queued, "cancelled", 0);
        g_assert_cmpint(wait_job(f, queued, &error), ==, -1000);
        fixture_assert_error(error, "org.procpool.Error.Cancelled", NULL);
        (void) g_rmdir(dir);
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
        r = job_call(f, queued, "GetOutput", NULL, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(@ay@ay)", &o, &e);
        g_assert_cmpuint(g_variant_get_size(o) + g_variant_get_size(e), ==, 0);
        g_assert_cmpuint(prop_u(f, queued, "Pid"), ==, 0);
        g_assert_cmpuint(prop_t(f, queued, "StartedAt"), ==, 0);
        g_assert_cmpuint(prop_t(f, queued, "SubmittedAt"), >, 0);
        assert_outcome(f, queued, "queued", 0);
        assert_job_call_ok(f, blocker, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, queued, "exited"));
        /* A failed job has ended too. */
        const char *missing[] = { "procpool-no-such-program", NULL };
        g_autofree char *failed = fixture_submit(f, missing, NULL);
        g_assert_true(fixture_wait_state(f, failed, "failed"));
        assert_job_call_error(f, failed, "Cancel", NULL, "org.procpool.Error.NotRunning");
        assert_job_call_error(f, failed, "Kill", g_variant_new("(i)", SIGTERM),
                              "org.procpool.Error.NotRunning");
        assert_job_call_ok(f, failed, "Release", NULL);
}

static void test_cancel_finished(Fixture *f, gconstpointer unused) {
        const char *t[] = { "true", NULL };
        g_autofree char *path = fixture_submit(f, t, NULL);

        g_assert_true(fixture_wait_state(f, path, "exited"));
        assert_job_call_error(f, path, "Cancel", NULL, "org.procpool.Error.NotRunning");
        assert_outcome(f, path, "exited", 0);
}

/* ---- Kill ------------------------------------------------------------------------------------- */

static void test_kill(Fixture *f, gconstpointer unused) {
        g_autofree char *path = fixture_submit(f, sleep30, NULL);

        g_assert_true(fixture_wait_state(f, path, "running"));
        assert_job_call_ok(f, path, "Kill", g_variant_new("(i)", SIGKILL));
        g_assert_true(fixture_wait_state(f, path, "killed"));
        assert_outcome(f, path, "killed", -9);
        assert_job_call_error(f, path, "Kill", g_variant_new("(i)", SIGKILL),
                              "org.procpool.Error.NotRunning");
}

/* Live (not zombie) processes whose process group is pgid. */
static guint group_members(pid_t pgid) {
        g_autoptr(GDir) d = g_dir_open("/proc", 0, NULL);
        const char *name;
        guint n = 0;

        while ((name = g_dir_read_name(d))) {
                g_autofree char *p = NULL, *stat = NULL;
                const char *end;
                char state;
                int ppid, pgrp;

                if (!g_ascii_isdigit(name[0]))
                        continue;
                p = g_strdup_printf("/proc/%s/stat", name);
                if (!g_file_get_contents(p, &stat, NULL, NULL) || !(end = strrchr(stat, ')')))
                        continue;
                if (sscanf(end + 2, "%c %d %d", &state, &ppid, &pgrp) == 3 && pgrp == pgid && state != 'Z')
                        n++;
        }
        return n;
}

static void test_kill_group(Fixture *f, gconstpointer unused) {
        /* The whole process group gets the signal: the shell and its sleep both end. */
        const char *argv[] = { "sh", "-c", "sleep 30; exit 0", NULL };
        g_autofree char *path = fixture_submit(f, argv, NULL);
        guint32 pid;

        g_assert_true(fixture_wait_state(f, path, "running"));
        pid = prop_u(f, path, "Pid");
        /* Wait for the shell's child, so that there is a group to signal. */
        for (int i = 0; i < 2000 && group_members(pid) < 2; i++)
                g_usleep(5000);
        g_assert_cmpuint(group_members(pid), ==, 2);
        assert_job_call_ok(f, path, "Kill", g_variant_new("(i)", SIGTERM));
        g_assert_true(fixture_wait_state(f, path, "killed"));
        assert_outcome(f, path, "killed", -15);
        /* Nothing is left in its process group (the shell's sleep included). */
        for (int i = 0; i < 2000 && group_members(pid) > 0; i++)
                g_usleep(5000);
        g_assert_cmpuint(group_members(pid), ==, 0);
}

static void test_kill_nonfatal(Fixture *f, gconstpointer unused) {
        g_autofree char *path = fixture_submit(f, sleep30, NULL);

        g_assert_true(fixture_wait_state(f, path, "running"));
        /* A signal that does not end it leaves it running. */
        assert_job_call_ok(f, path, "Kill", g_variant_new("(i)", SIGCONT));
        assert_job_call_ok(f, path, "Kill", g_variant_new("(i)", SIGWINCH));
        assert_outcome(f, path, "running", 0);
        assert_job_call_ok(f, path, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, path, "cancelled"));
}

static void test_kill_invalid(Fixture *f, gconstpointer unused) {
        g_autofree char *path = fixture_submit(f, sleep30, NULL);
        const int bad[] = { 0, -1, 65, 1000 };

        g_assert_true(fixture_wait_state(f, path, "running"));
        for (gsize i = 0; i < G_N_ELEMENTS(bad); i++)
                assert_job_call_error(f, path, "Kill", g_variant_new("(i)", bad[i]),
                                      "org.freedesktop.DBus.Error.InvalidArgs");
        assert_outcome(f, path, "running", 0);
        assert_job_call_ok(f, path, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, path, "cancelled"));
}

/* ---- GetOutput -------------------------------------------------------------------------------- */

static void test_get_output(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sh", "-c", "printf 'out\\0put'; printf err >&2; exit 1", NULL };
        g_autofree char *path = fixture_submit(f, argv, NULL);
        g_autoptr(GVariant) r = NULL, out = NULL, err = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_true(fixture_wait_state(f, path, "exited"));
        r = job_call(f, path, "GetOutput", NULL, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(@ay@ay)", &out, &err);
        g_assert_cmpmem(g_variant_get_data(out), g_variant_get_size(out), "out\0put", 7);
        g_assert_cmpmem(g_variant_get_data(err), g_variant_get_size(err), "err", 3);
}

static void test_get_output_running(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sh", "-c", "echo early; exec sleep 30", NULL };
        g_autofree char *path = fixture_submit(f, argv, NULL);
        gboolean seen = FALSE;

        /* The output so far, while the job still runs. */
        for (int i = 0; i < 2000 && !seen; i++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) r = job_call(f, path, "GetOutput", NULL, &error), out = NULL, err = NULL;
                g_assert_no_error(error);
                g_variant_get(r, "(@ay@ay)", &out, &err);
                if (g_variant_get_size(out) == 6) {
                        g_assert_cmpmem(g_variant_get_data(out), 6, "early\n", 6);
                        seen = TRUE;
                } else
                        g_usleep(10000);
        }
        g_assert_true(seen);
        assert_outcome(f, path, "running", 0);
        assert_job_call_ok(f, path, "Cancel", NULL);
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
        assert_job_call_ok(f, path, "Release", NULL);

        /* The object is gone: GetJob, its properties and ListJobs no longer know it. */
        assert_no_job(f, 1);
        r = g_dbus_connection_call_sync(f->conn, BUS_NAME, path, "org.freedesktop.DBus.Properties", "Get",
                                        g_variant_new("(ss)", JOB_IFACE, "State"), NULL,
                                        G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_null(r);
        fixture_assert_error(error, "org.freedesktop.DBus.Error.UnknownObject", NULL);
        g_autofree char *list = list_jobs(f);
        g_assert_cmpstr(list, ==, "2:running:0");

        assert_job_call_ok(f, running, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, running, "cancelled"));
        assert_job_call_ok(f, running, "Release", NULL);
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
        assert_job_call_ok(f, MANAGER_PATH "/job/3", "Release", NULL);
        assert_job_call_ok(f, MANAGER_PATH "/job/1", "Release", NULL);
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
        assert_job_call_ok(f, c, "Kill", g_variant_new("(i)", SIGKILL));
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

        assert_job_call_ok(f, running, "Cancel", NULL);
        /* Job 1 finished last, so job 3 is now the oldest finished one. */
        for (int i = 0; i < 2000; i++) {
                g_free(list);
                list = list_jobs(f);
                if (!strstr(list, "running"))
                        break;
                g_usleep(10000);
        }
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
        assert_job_call_ok(f, queued, "Cancel", NULL);
        assert_job_call_ok(f, blocker, "Cancel", NULL);
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
        assert_job_call_ok(f, queued, "Cancel", NULL);
        assert_job_call_ok(f, blocker, "Kill", g_variant_new("(i)", SIGKILL));
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

static void test_changed_values(Fixture *f, gconstpointer unused) {
        static const char *const props[] = {
                "State", "Pid", "ReturnCode", "StartedAt", "FinishedAt", "Error"
        };
        const char *path = MANAGER_PATH "/job/1";
        Values v = { path, g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                 (GDestroyNotify) g_variant_unref) };
        guint sub = g_dbus_connection_signal_subscribe(f->conn, NULL, "org.freedesktop.DBus.Properties",
                                                       "PropertiesChanged", NULL, JOB_IFACE,
                                                       G_DBUS_SIGNAL_FLAGS_NONE, on_values, &v, NULL);
        g_autofree char *submitted = fixture_submit(
                f, sleep30, fixture_options("timeout-usec", g_variant_new_uint64(200000), NULL));
        gboolean saw_pid = FALSE;

        g_assert_cmpstr(submitted, ==, path);
        g_assert_true(fixture_wait_state(f, path, "running"));
        while (g_main_context_iteration(NULL, FALSE))
                ;
        /* While it runs, the Pid and StartedAt signalled are the ones read. */
        GVariant *pid = g_hash_table_lookup(v.last, "Pid");
        if (pid) {
                g_autoptr(GVariant) now = fixture_get_property(f, path, JOB_IFACE, "Pid");
                g_assert_cmpuint(g_variant_get_uint32(pid), ==, g_variant_get_uint32(now));
                g_assert_cmpuint(g_variant_get_uint32(pid), >, 0);
                saw_pid = TRUE;
        }
        g_assert_true(fixture_iterate_until(has_finished_at, &v));
        g_assert_true(saw_pid || g_hash_table_contains(v.last, "Pid"));
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

        assert_job_call_ok(f, path, "Release", NULL);
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
        g_autoptr(GDBusConnection) c =
                g_dbus_connection_new_for_address_sync(address,
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                               G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, &error);

        if (!c) {
                g_printerr("connect: %s\n", error->message);
                return 3;
        }
#define CALL(path, iface, method, params)                                                                    \
        ({                                                                                                   \
                g_autoptr(GError) e_ = NULL;                                                                 \
                g_autoptr(GVariant) r_ =                                                                     \
                        g_dbus_connection_call_sync(c, BUS_NAME, path, iface, method, params, NULL,          \
                                                    G_DBUS_CALL_FLAGS_NONE, 20000, NULL, &e_);               \
                if (r_) {                                                                                    \
                        g_autofree char *p_ = g_variant_print(r_, FALSE);                                    \
                        g_print("%s %s\n", method, p_);                                                      \
                } else                                                                                       \
                        g_print("%s %s\n", method, remote_error_name(e_));                                   \
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

static void become_other(gpointer unused) {
        if (setgroups(0, NULL) < 0 || setgid(OTHER_UID) < 0 || setuid(OTHER_UID) < 0)
                _exit(99);
}

static char *spawn_as_other(Fixture *f, const char *mode, const char *running, const char *finished) {
        g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
        const char *argv[] = { self, "--as-other-user", f->address, mode, running, finished, NULL };
        g_autoptr(GError) error = NULL;
        char *out = NULL;
        int status;

        g_assert_nonnull(self);
        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, become_other, NULL, &out,
                                   NULL, &status, &error));
        g_assert_no_error(error);
        g_assert_true(g_spawn_check_wait_status(status, NULL));
        return out;
}

static void test_owner_checks(Fixture *f, gconstpointer unused) {
        const char *exit6[] = { "sh", "-c", "printf secret; exit 6", NULL };
        g_autofree char *running = fixture_submit(f, sleep30, NULL);
        g_autofree char *finished = fixture_submit(f, exit6, NULL);
        g_autofree char *out = NULL;

        if (getuid() != 0) {
                g_test_skip("needs root to act as another uid");
                return;
        }
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
        assert_outcome(f, running, "running", 0);
        assert_outcome(f, finished, "exited", 6);
        g_autoptr(GVariant) size = fixture_get_property(f, MANAGER_PATH, MANAGER_IFACE, "PoolSize");
        g_assert_cmpuint(g_variant_get_uint32(size), !=, 7);
        assert_job_call_ok(f, running, "Cancel", NULL);
}

static void test_owner_own_job(Fixture *f, gconstpointer unused) {
        g_autofree char *out = NULL;
        g_autofree char *path = NULL;

        if (getuid() != 0) {
                g_test_skip("needs root to act as another uid");
                return;
        }
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
        assert_job_call_ok(f, path, "GetOutput", NULL);
        assert_job_call_ok(f, path, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, path, "cancelled"));
        assert_job_call_ok(f, path, "Release", NULL);
}

int main(int argc, char *argv[]) {
        if (argc == 6 && g_str_equal(argv[1], "--as-other-user"))
                return run_as_other(argv[2], argv[3], argv[4], argv[5]);

        g_test_init(&argc, &argv, NULL);
        static const char *const pool1[] = { "--pool-size=1", NULL };
        g_test_add("/procpool/job/properties", Fixture, NULL, fixture_setup, test_properties,
                   fixture_teardown);
        g_test_add("/procpool/job/running-properties", Fixture, NULL, fixture_setup, test_running_properties,
                   fixture_teardown);
        g_test_add("/procpool/job/wait", Fixture, NULL, fixture_setup, test_wait, fixture_teardown);
        g_test_add("/procpool/job/wait-disconnect", Fixture, NULL, fixture_setup, test_wait_disconnect,
                   fixture_teardown);
        g_test_add("/procpool/job/wait-many", Fixture, NULL, fixture_setup, test_wait_many, fixture_teardown);
        g_test_add("/procpool/job/cancel-running", Fixture, NULL, fixture_setup, test_cancel_running,
                   fixture_teardown);
        g_test_add("/procpool/job/cancel-queued", Fixture, pool1, fixture_setup, test_cancel_queued,
                   fixture_teardown);
        g_test_add("/procpool/job/queued-methods", Fixture, pool1, fixture_setup, test_queued_methods,
                   fixture_teardown);
        g_test_add("/procpool/job/cancel-finished", Fixture, NULL, fixture_setup, test_cancel_finished,
                   fixture_teardown);
        g_test_add("/procpool/job/kill", Fixture, NULL, fixture_setup, test_kill, fixture_teardown);
        g_test_add("/procpool/job/kill-group", Fixture, NULL, fixture_setup, test_kill_group,
                   fixture_teardown);
        g_test_add("/procpool/job/kill-nonfatal", Fixture, NULL, fixture_setup, test_kill_nonfatal,
                   fixture_teardown);
        g_test_add("/procpool/job/kill-invalid", Fixture, NULL, fixture_setup, test_kill_invalid,
                   fixture_teardown);
        g_test_add("/procpool/job/get-output", Fixture, NULL, fixture_setup, test_get_output,
                   fixture_teardown);
        g_test_add("/procpool/job/get-output-running", Fixture, NULL, fixture_setup, test_get_output_running,
                   fixture_teardown);
        g_test_add("/procpool/job/release", Fixture, NULL, fixture_setup, test_release, fixture_teardown);
        g_test_add("/procpool/job/ids", Fixture, NULL, fixture_setup, test_ids, fixture_teardown);
        g_test_add("/procpool/job/list-jobs", Fixture, NULL, fixture_setup, test_list_jobs, fixture_teardown);
        g_test_add("/procpool/job/retain", Fixture, retain2, fixture_setup, test_retain, fixture_teardown);
        g_test_add("/procpool/job/job-finished-signal", Fixture, pool1, fixture_setup,
                   test_job_finished_signal, fixture_teardown);
        g_test_add("/procpool/job/properties-changed", Fixture, pool1, fixture_setup, test_properties_changed,
                   fixture_teardown);
        g_test_add("/procpool/job/changed-values", Fixture, NULL, fixture_setup, test_changed_values,
                   fixture_teardown);
        g_test_add("/procpool/job/object-manager", Fixture, NULL, fixture_setup, test_object_manager,
                   fixture_teardown);
        g_test_add("/procpool/job/owner-checks", Fixture, NULL, fixture_setup_open_bus, test_owner_checks,
                   fixture_teardown);
        g_test_add("/procpool/job/owner-own-job", Fixture, NULL, fixture_setup_open_bus, test_owner_own_job,
                   fixture_teardown);
        return g_test_run();
}
