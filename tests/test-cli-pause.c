/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Job1.Pause and Resume through procpoolctl pause/resume: the whole tree stops where it is and keeps its
 * slot, the timeout stands still, a cancel still ends it, only the owner or root may, and a re-exec keeps
 * it paused. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli-common.h"

static const char *const pool_of_one[] = { "--pool-size=1", NULL };

/* Wakes the main loop now and then: a process's state in /proc sends no event to wait on. */
static gboolean on_tick(gpointer data) {
        return G_SOURCE_CONTINUE;
}

static gboolean iterate_until_polled(gboolean (*cond)(gpointer data), gpointer data) {
        guint tick = g_timeout_add(10, on_tick, NULL);
        gboolean met = fixture_iterate_until(cond, data);

        g_source_remove(tick);
        return met;
}

/* The cgroup.freeze of the cgroup pid is in, as 0 or 1; -1 if it has none. */
static int cgroup_frozen(pid_t pid) {
        g_autofree char *path = g_strdup_printf("/proc/%d/cgroup", (int) pid), *text = NULL, *freeze = NULL;
        g_autofree char *file = NULL;
        const char *line;

        if (!g_file_get_contents(path, &text, NULL, NULL))
                return -1;
        line = strstr(text, "0::");
        if (!line)
                return -1;
        file = g_strdup_printf("/sys/fs/cgroup%.*s/cgroup.freeze", (int) strcspn(line + 3, "\n"), line + 3);
        if (!g_file_get_contents(file, &freeze, NULL, NULL))
                return -1;
        return freeze[0] == '1';
}

typedef struct {
        GArray *pids;
        gboolean cgroups; /* the daemon runs jobs in cgroups of their own: they freeze */
        gboolean stopped; /* what is waited for */
} TreeWait;

static gboolean tree_is(gpointer data) {
        TreeWait *w = data;

        for (guint i = 0; i < w->pids->len; i++) {
                pid_t pid = g_array_index(w->pids, pid_t, i);
                char state;

                if (w->cgroups) {
                        if (cgroup_frozen(pid) != w->stopped)
                                return FALSE;
                } else if (!fixture_proc_stat(pid, &state, NULL, NULL) || (state == 'T') != w->stopped)
                        return FALSE;
        }
        return TRUE;
}

/* Waits until every process of pids is stopped (or frozen), or none is. */
static gboolean wait_tree(Fixture *f, GArray *pids, gboolean stopped) {
        TreeWait w = { .pids = pids, .cgroups = fixture_per_job_cgroups(f), .stopped = stopped };
        return iterate_until_polled(tree_is, &w);
}

static gboolean job_paused(Fixture *f, const char *path) {
        g_autoptr(GVariant) v = fixture_get_property(f, path, JOB_IFACE, "Paused");
        return g_variant_get_boolean(v);
}

/* A job of two processes, a shell and a sleep it started; returns its id and their pids. */
static guint64 submit_tree(Fixture *f, GArray **ret_pids) {
        g_autofree char *gate = fixture_gate_path(f, "forked");
        /* The shell makes the gate itself (a touch would be a third process of the group, perhaps
         * still exiting when the group is counted). */
        g_autofree char *script = g_strdup_printf("sleep 600 & : > %s; wait", gate);
        g_autofree char *path = NULL;
        guint64 id = ctl_submit(f, script);
        pid_t pid;

        path = fixture_job_path(id);
        g_assert_true(fixture_wait_for_file(gate));
        pid = (pid_t) fixture_job_pid(f, path);
        g_assert_cmpint(pid, >, 0);
        *ret_pids = fixture_proc_group(pid);
        g_assert_cmpuint((*ret_pids)->len, ==, 2);
        return id;
}

/* ---- pause and resume ------------------------------------------------------------------------------ */

static void test_pause_resume(Fixture *f, gconstpointer data) {
        g_autoptr(GArray) pids = NULL;
        g_autofree char *path = NULL, *queued_path = NULL, *id_text = NULL, *queued_text = NULL;
        guint64 id = submit_tree(f, &pids), queued;
        CtlResult r = {};

        path = fixture_job_path(id);
        id_text = g_strdup_printf("%" G_GUINT64_FORMAT, id);
        queued = ctl_submit(f, "exit 7");
        queued_path = fixture_job_path(queued);
        queued_text = g_strdup_printf("%" G_GUINT64_FORMAT, queued);
        g_assert_false(job_paused(f, path));

        /* the whole tree stops, the job keeps its slot: the next one stays queued */
        g_assert_cmpint(ctl(f, &r, "pause", id_text, NULL), ==, 0);
        g_assert_cmpstr(r.err_str, ==, "");
        g_assert_true(job_paused(f, path));
        g_assert_true(wait_tree(f, pids, TRUE));
        g_autofree char *state = job_state(f, id);
        g_assert_cmpstr(state, ==, "running");
        g_assert_cmpuint(fixture_manager_u(f, "Running"), ==, 1);
        fixture_assert_state(f, queued_path, "queued");
        /* again: it stays paused */
        g_assert_cmpint(ctl(f, &r, "pause", id_text, NULL), ==, 0);
        g_assert_true(job_paused(f, path));

        /* a queued job cannot be paused, and the error names its state */
        g_assert_cmpint(ctl(f, &r, "pause", queued_text, NULL), ==, 1);
        g_assert_nonnull(strstr(r.err_str, "is not running (queued)"));
        fixture_expect_error(f, queued_path, JOB_IFACE, "Pause", NULL, "org.procpool.Error.NotRunning",
                             "(queued)");

        g_assert_cmpint(ctl(f, &r, "resume", id_text, NULL), ==, 0);
        g_assert_false(job_paused(f, path));
        g_assert_true(wait_tree(f, pids, FALSE));
        g_assert_cmpint(ctl(f, &r, "resume", id_text, NULL), ==, 0);

        /* a paused job that is cancelled wakes up to its SIGTERM and leaves nothing behind */
        g_assert_cmpint(ctl(f, &r, "pause", id_text, NULL), ==, 0);
        g_assert_true(wait_tree(f, pids, TRUE));
        g_assert_cmpint(ctl(f, &r, "cancel", id_text, NULL), ==, 0);
        g_assert_true(job_wait_state(f, id, "cancelled"));
        g_assert_false(job_paused(f, path));
        for (guint i = 0; i < pids->len; i++)
                g_assert_true(fixture_wait_pid_exit(g_array_index(pids, pid_t, i)));
        {
                g_autoptr(GArray) left = fixture_proc_group(g_array_index(pids, pid_t, 0));
                g_assert_cmpuint(left->len, ==, 0);
        }
        /* ended by the SIGTERM, not the SIGKILL after the stop timeout */
        fixture_assert_outcome(f, path, "cancelled", -SIGTERM);

        /* the slot went to the queued job; an ended job cannot be paused or resumed */
        g_assert_true(job_wait_state(f, queued, "exited"));
        g_assert_cmpint(ctl(f, &r, "pause", queued_text, NULL), ==, 1);
        g_assert_nonnull(strstr(r.err_str, "is not running (exited)"));
        fixture_expect_error(f, path, JOB_IFACE, "Resume", NULL, "org.procpool.Error.NotRunning",
                             "is not running (cancelled)");
        ctl_result_clear(&r);
}

/* ---- the timeout stands still while paused ---------------------------------------------------------- */

static gboolean on_elapsed(gpointer data) {
        *(gboolean *) data = TRUE;
        return G_SOURCE_REMOVE;
}

static gboolean flag_set(gpointer data) {
        return *(gboolean *) data;
}

static void on_paused_changed(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                              const char *signal, GVariant *params, gpointer data) {
        g_autoptr(GVariant) changed = NULL;
        gboolean paused;

        g_variant_get(params, "(&s@a{sv}@as)", NULL, &changed, NULL);
        if (g_variant_lookup(changed, "Paused", "b", &paused))
                g_ptr_array_add(data, GINT_TO_POINTER(paused ? 1 : 2));
}

static gboolean seen_two(gpointer data) {
        return ((GPtrArray *) data)->len >= 2;
}

static void test_pause_timeout(Fixture *f, gconstpointer data) {
        g_autofree char *path = NULL, *id_text = NULL, *state = NULL, *error = NULL;
        g_autoptr(GPtrArray) changes = g_ptr_array_new();
        g_autoptr(GVariant) finished = NULL;
        gboolean elapsed = FALSE;
        guint64 id, resumed_at;
        CtlResult r = {};
        guint sub;
        int rc;

        g_assert_cmpint(ctl(f, &r, "submit", "--timeout=2s", "--", "sleep", "600", NULL), ==, 0);
        id = parse_id(r.out_str);
        id_text = g_strdup_printf("%" G_GUINT64_FORMAT, id);
        path = fixture_job_path(id);
        g_assert_true(job_wait_state(f, id, "running"));
        sub = g_dbus_connection_signal_subscribe(f->conn, BUS_NAME, "org.freedesktop.DBus.Properties",
                                                 "PropertiesChanged", path, JOB_IFACE,
                                                 G_DBUS_SIGNAL_FLAGS_NONE, on_paused_changed, changes, NULL);
        fixture_sync_with_daemon(f->conn);
        g_assert_cmpint(ctl(f, &r, "pause", id_text, NULL), ==, 0);

        /* longer than the whole timeout: the job is still there, paused */
        g_timeout_add(3000, on_elapsed, &elapsed);
        g_assert_true(fixture_iterate_until(flag_set, &elapsed));
        state = job_state(f, id);
        g_assert_cmpstr(state, ==, "running");
        g_assert_true(job_paused(f, path));

        resumed_at = (guint64) g_get_real_time();
        g_assert_cmpint(ctl(f, &r, "resume", id_text, NULL), ==, 0);
        /* then it times out, with what was left of the 2 s after the moment it was paused */
        g_assert_true(fixture_wait_finished(f, path));
        g_clear_pointer(&state, g_free);
        fixture_job_outcome(f, path, &state, &rc, &error);
        g_assert_cmpstr(state, ==, "timed-out");
        g_assert_cmpstr(error, ==, "Timed out after 2000 ms");
        finished = fixture_get_property(f, path, JOB_IFACE, "FinishedAt");
        g_assert_cmpuint(g_variant_get_uint64(finished), >=, resumed_at + 500 * 1000);

        /* PropertiesChanged carried Paused: true, then false */
        g_assert_true(fixture_iterate_until(seen_two, changes));
        g_assert_cmpint(GPOINTER_TO_INT(changes->pdata[0]), ==, 1);
        g_assert_cmpint(GPOINTER_TO_INT(changes->pdata[1]), ==, 2);
        g_dbus_connection_signal_unsubscribe(f->conn, sub);
        ctl_result_clear(&r);
}

/* ---- who may ------------------------------------------------------------------------------------------ */

/* Runs procpoolctl as OTHER_UID with args; returns its exit code, its stderr in *ret_err. */
static int ctl_as_other(Fixture *f, const char *const *args, char **ret_err) {
        CtlResult r = {};
        int status = ctl_other(f, &r, args);

        *ret_err = g_steal_pointer(&r.err_str);
        ctl_result_clear(&r);
        return status;
}

static void test_pause_other_uid(Fixture *f, gconstpointer data) {
        g_autofree char *path = NULL, *id_text = NULL, *err = NULL, *other_id_text = NULL, *other_path = NULL;
        g_autoptr(GArray) pids = NULL;
        guint64 id;
        CtlResult r = {};

        if (!fixture_have_root())
                return;
        id = submit_tree(f, &pids);
        path = fixture_job_path(id);
        id_text = g_strdup_printf("%" G_GUINT64_FORMAT, id);

        /* root's job: another user may neither pause nor resume it */
        g_assert_cmpint(ctl_as_other(f, (const char *const[]) { "pause", id_text, NULL }, &err), ==, 1);
        g_assert_nonnull(strstr(err, "belongs to uid 0; only it or root may do this"));
        g_assert_false(job_paused(f, path));
        g_clear_pointer(&err, g_free);
        g_assert_cmpint(ctl(f, &r, "pause", id_text, NULL), ==, 0);
        g_assert_cmpint(ctl_as_other(f, (const char *const[]) { "resume", id_text, NULL }, &err), ==, 1);
        g_assert_nonnull(strstr(err, "belongs to uid 0"));
        g_assert_true(job_paused(f, path));
        g_clear_pointer(&err, g_free);

        /* its own job it may; and root may pause anyone's */
        {
                g_autoptr(GPtrArray) argv =
                        ctl_argv(f->address, (const char *const[]) { "submit", "--", "sleep", "600", NULL });
                g_autoptr(GError) error = NULL;
                g_autofree char *out = NULL;
                int status;

                g_assert_true(g_spawn_sync("/", (char **) argv->pdata, NULL, G_SPAWN_DEFAULT,
                                           fixture_become_other, NULL, &out, NULL, &status, &error));
                g_assert_no_error(error);
                g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                other_id_text = g_strstrip(g_steal_pointer(&out));
        }
        other_path = fixture_job_path(parse_id(other_id_text));
        g_assert_true(fixture_wait_state(f, other_path, "running"));
        g_assert_cmpint(ctl_as_other(f, (const char *const[]) { "pause", other_id_text, NULL }, &err), ==, 0);
        g_assert_true(job_paused(f, other_path));
        g_assert_cmpint(ctl(f, &r, "resume", other_id_text, NULL), ==, 0);
        g_assert_false(job_paused(f, other_path));

        g_assert_cmpint(ctl(f, &r, "cancel", id_text, other_id_text, NULL), ==, 0);
        g_assert_true(fixture_wait_finished(f, path));
        g_assert_true(fixture_wait_finished(f, other_path));
        ctl_result_clear(&r);
}

/* ---- across a re-exec ------------------------------------------------------------------------------------- */

static void test_pause_reexec(Fixture *f, gconstpointer data) {
        g_autoptr(GArray) pids = NULL;
        g_autofree char *path = NULL, *id_text = NULL;
        guint64 id = submit_tree(f, &pids);
        CtlResult r = {};

        path = fixture_job_path(id);
        id_text = g_strdup_printf("%" G_GUINT64_FORMAT, id);
        g_assert_cmpint(ctl(f, &r, "pause", id_text, NULL), ==, 0);
        g_assert_true(wait_tree(f, pids, TRUE));

        /* the next image knows it is paused, and it still is */
        g_assert_cmpint(ctl(f, &r, "daemon-reexec", NULL), ==, 0);
        g_assert_true(job_paused(f, path));
        g_assert_true(tree_is(&(TreeWait) { pids, fixture_per_job_cgroups(f), TRUE }));

        /* and lets it go on, or stops it, as before */
        g_assert_cmpint(ctl(f, &r, "resume", id_text, NULL), ==, 0);
        g_assert_true(wait_tree(f, pids, FALSE));
        g_assert_cmpint(ctl(f, &r, "pause", id_text, NULL), ==, 0);
        g_assert_cmpint(ctl(f, &r, "cancel", id_text, NULL), ==, 0);
        g_assert_true(job_wait_state(f, id, "cancelled"));
        for (guint i = 0; i < pids->len; i++)
                g_assert_true(fixture_wait_pid_exit(g_array_index(pids, pid_t, i)));
        ctl_result_clear(&r);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);

        FIXTURE_ADD("/procpool/cli/pause/resume", fixture_setup, pool_of_one, test_pause_resume);
        FIXTURE_ADD("/procpool/cli/pause/timeout", fixture_setup, NULL, test_pause_timeout);
        /* procpoold runs as OTHER_UID: root and that uid may both run jobs through it. */
        FIXTURE_ADD("/procpool/cli/pause/other-uid", fixture_setup_open_bus_other_daemon, NULL,
                    test_pause_other_uid);
        FIXTURE_ADD("/procpool/cli/pause/reexec", fixture_setup, NULL, test_pause_reexec);
        return g_test_run();
}
