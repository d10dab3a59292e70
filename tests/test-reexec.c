/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Supervisor1.Reexecute(): procpoold re-executes itself while jobs run, and they end as if it had not. */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "fixture.h"

/* A client of another uid, on a bus that admits every uid. */
#define OTHER_UID 65534

/* ---- helpers ------------------------------------------------------------------------------------ */

typedef struct Scratch {
        char *dir;
        char *gate; /* jobs wait for it to exist */
} Scratch;

static void scratch_init(Scratch *s) {
        g_autoptr(GError) error = NULL;

        s->dir = g_dir_make_tmp("procpool-reexec-XXXXXX", &error);
        g_assert_no_error(error);
        s->gate = g_build_filename(s->dir, "gate", NULL);
}

static void scratch_open_gate(Scratch *s) {
        g_autoptr(GError) error = NULL;

        g_assert_true(g_file_set_contents(s->gate, "", 0, &error));
        g_assert_no_error(error);
}

static void scratch_done(Scratch *s) {
        fixture_remove_tree(s->dir);
        g_free(s->dir);
        g_free(s->gate);
}

/* A shell line that waits for the gate. */
static char *wait_for_gate(const Scratch *s) {
        return g_strdup_printf("while ! [ -e '%s' ]; do sleep 0.02; done", s->gate);
}

static guint32 name_pid(Fixture *f) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                f->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                "GetConnectionUnixProcessID", g_variant_new("(s)", BUS_NAME), G_VARIANT_TYPE("(u)"),
                G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        guint32 pid;

        g_assert_no_error(error);
        g_variant_get(r, "(u)", &pid);
        return pid;
}

/* Waits until procpoold owns its name again after a re-exec, and checks that it is the same process, still
 * the test's child. */
static void await_reexecuted(Fixture *f, FixtureOwnerWatch *w) {
        fixture_await_new_owner(f, w);
        g_assert_cmpuint(name_pid(f), ==, (guint32) f->daemon_pid);
        g_assert_cmpint(waitpid(f->daemon_pid, NULL, WNOHANG), ==, 0);
}

/* Supervisor1.Reexecute(), and back. */
static void reexecute(Fixture *f) {
        fixture_reexecute(f);
        g_assert_cmpint(waitpid(f->daemon_pid, NULL, WNOHANG), ==, 0);
}

/* Waits until stream s ("stdout" 0, "stderr" 1) of a job holds at least min bytes: what the job signals. */
static void await_output(Fixture *f, const char *path, int s, gsize min) {
        for (int i = 0; i < 4000; i++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) r = fixture_job_call(f, path, "GetOutput", NULL, &error), out = NULL,
                                    err = NULL;

                g_assert_no_error(error);
                g_variant_get(r, "(@ay@ay)", &out, &err);
                if (g_variant_get_size(s == 0 ? out : err) >= min)
                        return;
                g_usleep(5000);
        }
        g_error("job %s did not write %zu bytes on %s", path, min, s == 0 ? "stdout" : "stderr");
}

static void get_output(Fixture *f, const char *path, GBytes **ret_out, GBytes **ret_err) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = fixture_job_call(f, path, "GetOutput", NULL, &error), out = NULL, err = NULL;

        g_assert_no_error(error);
        g_variant_get(r, "(@ay@ay)", &out, &err);
        *ret_out = g_variant_get_data_as_bytes(out);
        *ret_err = g_variant_get_data_as_bytes(err);
}

static void assert_bytes(GBytes *b, const void *data, gsize size) {
        g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b), data, size);
}

static void assert_text(GBytes *b, const char *text) {
        assert_bytes(b, text, strlen(text));
}

static int wait_job(Fixture *f, const char *path, GError **error) {
        g_autoptr(GVariant) r = fixture_job_call(f, path, "Wait", NULL, error);
        int rc;

        if (!r)
                return -1000;
        g_variant_get(r, "(i)", &rc);
        return rc;
}

static void assert_state(Fixture *f, const char *path, const char *state, int rc) {
        g_autofree char *s = NULL, *e = NULL;
        int got;

        fixture_job_outcome(f, path, &s, &got, &e);
        g_assert_cmpstr(s, ==, state);
        g_assert_cmpint(got, ==, rc);
}

static guint32 manager_uint(Fixture *f, const char *name) {
        g_autoptr(GVariant) v = fixture_get_property(f, MANAGER_PATH, MANAGER_IFACE, name);
        return g_variant_get_uint32(v);
}

typedef struct Reply {
        GVariant *result;
        GError *error;
        gboolean done;
} Reply;

static void on_reply(GObject *source, GAsyncResult *res, gpointer data) {
        Reply *r = data;

        r->result = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &r->error);
        r->done = TRUE;
}

static gboolean replied(gpointer data) {
        return ((Reply *) data)->done;
}

static void reply_clear(Reply *r) {
        g_clear_pointer(&r->result, g_variant_unref);
        g_clear_error(&r->error);
}

/* Its answer: org.procpool.Error.Interrupted, naming the job by its path. */
static void assert_interrupted(Reply *r, const char *path) {
        g_assert_true(fixture_iterate_until(replied, r));
        g_assert_null(r->result);
        fixture_assert_error(r->error, "org.procpool.Error.Interrupted", "re-executing");
        fixture_assert_error(r->error, "org.procpool.Error.Interrupted", path);
}

/* ---- a Submit job, a waiter, a queued job ---------------------------------------------------------- */

static const char *const pool1[] = { "--pool-size=1", NULL };

static void test_submit(Fixture *f, gconstpointer unused) {
        Scratch s;
        scratch_init(&s);
        g_autofree char *gate = wait_for_gate(&s);
        g_autofree char *script = g_strdup_printf("echo out-before; echo err-before >&2; %s; echo out-after; "
                                                  "echo err-after >&2; exit 7",
                                                  gate);
        const char *job[] = { "sh", "-c", script, NULL };
        const char *queued[] = { "sh", "-c", "echo queued-ran; exit 2", NULL };
        const char *later[] = { "true", NULL };
        g_autofree char *path = fixture_submit(f, job, NULL);
        g_autofree char *queued_path = NULL, *later_path = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL, qout = NULL, qerr = NULL;
        g_autoptr(GVariant) pid_before = NULL, pid_after = NULL;
        g_autoptr(GError) error = NULL;
        Reply waiting = {};

        await_output(f, path, 1, strlen("err-before\n"));
        pid_before = fixture_get_property(f, path, JOB_IFACE, "Pid");
        /* The pool is full: this one waits in the queue through the re-exec. */
        queued_path = fixture_submit(f, queued, NULL);
        assert_state(f, queued_path, "queued", 0);
        g_dbus_connection_call(f->conn, BUS_NAME, path, JOB_IFACE, "Wait", NULL, NULL, G_DBUS_CALL_FLAGS_NONE,
                               G_MAXINT, NULL, on_reply, &waiting);
        /* Wait is answered in order after this, so the waiter is registered when Reexecute comes. */
        g_assert_cmpuint(manager_uint(f, "Running"), ==, 1);

        reexecute(f);
        assert_interrupted(&waiting, path);
        /* Twice: the second image was started with --deserialize and in the first one's cgroup. */
        reexecute(f);

        /* The job runs on, the same process, counted as running; the queued one is still queued. */
        assert_state(f, path, "running", 0);
        pid_after = fixture_get_property(f, path, JOB_IFACE, "Pid");
        g_assert_cmpuint(g_variant_get_uint32(pid_after), ==, g_variant_get_uint32(pid_before));
        g_assert_cmpuint(manager_uint(f, "Running"), ==, 1);
        g_assert_cmpuint(manager_uint(f, "Queued"), ==, 1);

        scratch_open_gate(&s);
        g_assert_cmpint(wait_job(f, path, &error), ==, 7);
        g_assert_no_error(error);
        assert_state(f, path, "exited", 7);
        get_output(f, path, &out, &err);
        assert_text(out, "out-before\nout-after\n");
        assert_text(err, "err-before\nerr-after\n");

        g_assert_cmpint(wait_job(f, queued_path, &error), ==, 2);
        g_assert_no_error(error);
        get_output(f, queued_path, &qout, &qerr);
        assert_text(qout, "queued-ran\n");

        /* Ids go on where they were. */
        later_path = fixture_submit(f, later, NULL);
        g_assert_cmpstr(queued_path, ==, MANAGER_PATH "/job/2");
        g_assert_cmpstr(later_path, ==, MANAGER_PATH "/job/3");
        reply_clear(&waiting);
        scratch_done(&s);
}

/* ---- the timeout and the kill after the stop timeout ---------------------------------------------- */

static void test_timers(Fixture *f, gconstpointer unused) {
        const char *timed[] = { "sh", "-c", "echo ready; exec sleep 600", NULL };
        const char *stubborn[] = { "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done",
                                   NULL };
        g_autofree char *timed_path = fixture_submit(
                f, timed, fixture_options("timeout-usec", g_variant_new_uint64(3 * G_USEC_PER_SEC), NULL));
        g_autofree char *stubborn_path = fixture_submit(
                f, stubborn,
                fixture_options("stop-timeout-usec", g_variant_new_uint64(3 * G_USEC_PER_SEC), NULL));
        g_autoptr(GVariant) r = NULL;
        g_autoptr(GError) error = NULL, error2 = NULL;

        await_output(f, timed_path, 0, strlen("ready\n"));
        await_output(f, stubborn_path, 0, strlen("ready\n"));
        /* It ignores SIGTERM: only the kill after its stop timeout ends it. */
        r = fixture_job_call(f, stubborn_path, "Cancel", NULL, &error);
        g_assert_no_error(error);

        /* Both timers were armed by the last image; the new one must fire them. */
        reexecute(f);

        g_assert_cmpint(wait_job(f, timed_path, &error), ==, -1000);
        fixture_assert_error(error, "org.procpool.Error.TimedOut", NULL);
        assert_state(f, timed_path, "timed-out", -15);
        g_assert_cmpint(wait_job(f, stubborn_path, &error2), ==, -1000);
        fixture_assert_error(error2, "org.procpool.Error.Cancelled", NULL);
        assert_state(f, stubborn_path, "cancelled", -9);
}

/* ---- stops that span a re-exec ---------------------------------------------------------------------- */

/* Being stopped, a job whose main process has exited waits for the rest of its process group: the next
 * image waits on, and kills it after the stop timeout. */
static void test_stopping_group(Fixture *f, gconstpointer unused) {
        g_autofree char *pidfile = fixture_gate_path(f, "child"), *q = g_shell_quote(pidfile);
        g_autofree char *script = g_strdup_printf(
                "trap '' TERM; sleep 1000 & p=$!; trap - TERM; echo $p > %s.tmp; mv %s.tmp %s; exec sleep 1000",
                q, q, q);
        const char *argv[] = { "sh", "-c", script, NULL };
        g_autofree char *path = fixture_submit(
                f, argv,
                fixture_options("stop-timeout-usec", g_variant_new_uint64(3 * G_USEC_PER_SEC), NULL));
        g_autoptr(GError) error = NULL;
        g_autofree char *state = NULL;
        pid_t child = fixture_wait_pid_file(pidfile);

        fixture_job_call_ok(f, path, "Cancel", NULL);
        g_assert_true(fixture_wait_main_exited(f, path));
        /* Its main process is gone, the job is not: the stop is not complete. */
        state = fixture_job_state(f, path);
        if (!g_str_equal(state, "running")) {
                (void) kill(child, SIGKILL);
                g_error("job %s ended (%s) with its main process, before the rest of it", path, state);
        }
        reexecute(f);
        g_assert_cmpint(wait_job(f, path, &error), ==, -1000);
        fixture_assert_error(error, "org.procpool.Error.Cancelled", NULL);
        if (!fixture_proc_killed(child)) {
                (void) kill(child, SIGKILL);
                g_error("process %d of the stopped job still runs after the job ended", child);
        }
        assert_state(f, path, "cancelled", -15);
}

/* A main process that moved itself into another process group is signalled by its pidfd, which the next
 * image opens again. */
static void test_moved_main(Fixture *f, gconstpointer unused) {
        g_autofree char *pidfile = fixture_gate_path(f, "main");
        const char *argv[] = {
                "perl", "-e",
                "setpgrp(0, getpgrp(getppid())) or die; open(my $f, '>', \"$ARGV[0].tmp\") or die; "
                "print $f \"$$\\n\"; close $f; rename(\"$ARGV[0].tmp\", $ARGV[0]) or die; sleep 1000;",
                pidfile, NULL
        };
        g_autofree char *path = fixture_submit(f, argv, NULL);
        g_autoptr(GError) error = NULL;
        pid_t main_pid = fixture_wait_pid_file(pidfile);

        reexecute(f);
        fixture_job_call_ok(f, path, "Cancel", NULL);
        if (!fixture_wait_finished(f, path)) {
                (void) kill(main_pid, SIGKILL);
                g_error("the moved main process of job %s was not stopped", path);
        }
        g_assert_true(fixture_proc_killed(main_pid));
        assert_state(f, path, "cancelled", -15);
}

/* ---- waiting Call and Communicate --------------------------------------------------------------- */

#define INPUT_SIZE (4U * 1024U * 1024U)

static void test_call_communicate(Fixture *f, gconstpointer unused) {
        Scratch s;
        scratch_init(&s);
        g_autofree char *gate = wait_for_gate(&s);
        g_autofree char *call_script = g_strdup_printf("echo call-before; %s; echo call-after; exit 5", gate);
        /* Reads 64 KiB of its input, says so, and reads the rest once the gate opens: most of the input is
         * still the daemon's to write when it re-executes (a pipe holds at most 1 MiB). */
        g_autofree char *comm_script = g_strdup_printf(
                "dd bs=65536 count=1 iflag=fullblock status=none; echo ready >&2; %s; cat; exit 6", gate);
        const char *call[] = { "sh", "-c", call_script, NULL };
        const char *comm[] = { "sh", "-c", comm_script, NULL };
        const char *call_path = MANAGER_PATH "/job/1", *comm_path = MANAGER_PATH "/job/2";
        g_autofree guint8 *input = g_malloc(INPUT_SIZE);
        g_autoptr(GBytes) out = NULL, err = NULL, cout = NULL, cerr = NULL;
        g_autoptr(GError) error = NULL;
        Reply call_reply = {}, comm_reply = {};

        for (gsize i = 0; i < INPUT_SIZE; i++)
                input[i] = (guint8) (i * 7 + i / 65536);
        g_dbus_connection_call(f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call",
                               g_variant_new("(^as@a{sv})", call, FIXTURE_NO_OPTIONS), NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, on_reply, &call_reply);
        await_output(f, call_path, 0, strlen("call-before\n"));
        g_dbus_connection_call(
                f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                g_variant_new("(^as@ay@a{sv})", comm,
                              g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, input, INPUT_SIZE, 1),
                              FIXTURE_NO_OPTIONS),
                NULL, G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, on_reply, &comm_reply);
        await_output(f, comm_path, 1, strlen("ready\n"));

        reexecute(f);
        /* Both callers hear that their job goes on, and which one it is. */
        assert_interrupted(&call_reply, call_path);
        assert_interrupted(&comm_reply, comm_path);
        assert_state(f, call_path, "running", 0);
        assert_state(f, comm_path, "running", 0);

        scratch_open_gate(&s);
        g_assert_cmpint(wait_job(f, call_path, &error), ==, 5);
        g_assert_no_error(error);
        get_output(f, call_path, &out, &err);
        assert_text(out, "call-before\ncall-after\n");
        g_assert_cmpint(wait_job(f, comm_path, &error), ==, 6);
        g_assert_no_error(error);
        /* Every byte of input reached the job, and every byte it wrote was captured, across the re-exec. */
        get_output(f, comm_path, &cout, &cerr);
        assert_bytes(cout, input, INPUT_SIZE);
        assert_text(cerr, "ready\n");
        reply_clear(&call_reply);
        reply_clear(&comm_reply);
        scratch_done(&s);
}

/* ---- a caller that leaves meanwhile ------------------------------------------------------------ */

static void test_caller_gone(Fixture *f, gconstpointer unused) {
        const char *sleeper[] = { "sh", "-c", "echo ready; exec sleep 600", NULL };
        const char *path = MANAGER_PATH "/job/1";
        g_autoptr(GDBusConnection) caller = NULL;
        g_autoptr(GError) error = NULL, wait_error = NULL;
        g_autoptr(GVariant) r = NULL, r2 = NULL;
        FixtureOwnerWatch w;
        Reply call_reply = {};

        caller =
                g_dbus_connection_new_for_address_sync(f->address,
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                               G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, &error);
        g_assert_no_error(error);
        /* Call cancels its job when its caller leaves the bus (cancel-on-disconnect). */
        g_dbus_connection_call(caller, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call",
                               g_variant_new("(^as@a{sv})", sleeper, FIXTURE_NO_OPTIONS), NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, on_reply, &call_reply);
        await_output(f, path, 0, strlen("ready\n"));

        /* The caller leaves while procpoold re-executes: no image of it may see it go. */
        fixture_watch_owner(f, &w);
        r = fixture_call(f, "Reexecute", NULL, &error);
        g_assert_no_error(error);
        g_assert_true(g_dbus_connection_close_sync(caller, NULL, &error));
        g_assert_no_error(error);
        await_reexecuted(f, &w);

        /* Bounded, so that a job nobody cancels fails the test rather than hangs it. */
        r2 = g_dbus_connection_call_sync(f->conn, BUS_NAME, path, JOB_IFACE, "Wait", NULL, NULL,
                                         G_DBUS_CALL_FLAGS_NONE, 60000, NULL, &wait_error);
        g_assert_null(r2);
        fixture_assert_error(wait_error, "org.procpool.Error.Cancelled", NULL);
        assert_state(f, path, "cancelled", -15);
        g_assert_true(fixture_iterate_until(replied, &call_reply));
        reply_clear(&call_reply);
}

/* ---- procpoolctl rides through ------------------------------------------------------------------- */

#define CTL_INPUT_SIZE (2U * 1024U * 1024U)

static GSubprocess *ctl_spawn(Fixture *f, GSubprocessFlags flags, const char *const *args) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;
        GSubprocess *p;

        g_ptr_array_add(argv, g_strdup(g_getenv("PROCPOOLCTL")));
        g_ptr_array_add(argv, g_strdup_printf("--address=%s", f->address));
        for (const char *const *a = args; *a; a++)
                g_ptr_array_add(argv, g_strdup(*a));
        g_ptr_array_add(argv, NULL);
        p = g_subprocess_newv((const char *const *) argv->pdata, flags, &error);
        g_assert_no_error(error);
        return p;
}

static int ctl_status(GSubprocess *p) {
        g_assert_true(g_subprocess_get_if_exited(p));
        return g_subprocess_get_exit_status(p);
}

typedef struct Communicated {
        GBytes *out, *err;
        gboolean done;
} Communicated;

static void on_communicated(GObject *source, GAsyncResult *res, gpointer data) {
        Communicated *c = data;
        g_autoptr(GError) error = NULL;

        g_assert_true(g_subprocess_communicate_finish(G_SUBPROCESS(source), res, &c->out, &c->err, &error));
        g_assert_no_error(error);
        c->done = TRUE;
}

static gboolean file_exists(gpointer data) {
        return g_file_test(data, G_FILE_TEST_EXISTS);
}

static void on_dir_changed(GFileMonitor *m, GFile *file, GFile *other, GFileMonitorEvent event,
                           gpointer data) {
}

/* Waits for path while the main context runs (the test's own async calls feed the job that makes it):
 * a directory monitor wakes the context when the file appears. */
static gboolean wait_file_iterating(const char *path) {
        g_autofree char *dirname = g_path_get_dirname(path);
        g_autoptr(GFile) dir = g_file_new_for_path(dirname);
        g_autoptr(GFileMonitor) monitor = g_file_monitor_directory(dir, G_FILE_MONITOR_NONE, NULL, NULL);

        g_assert_nonnull(monitor);
        g_signal_connect(monitor, "changed", G_CALLBACK(on_dir_changed), NULL);
        return fixture_iterate_until(file_exists, (gpointer) path);
}

static gboolean communicated(gpointer data) {
        return ((Communicated *) data)->done;
}

static const char *const pool4[] = { "--pool-size=4", NULL };

static void test_ctl(Fixture *f, gconstpointer unused) {
        Scratch s;
        scratch_init(&s);
        g_autofree char *gate = wait_for_gate(&s);
        g_autofree char *ready = g_build_filename(s.dir, "ready", NULL);
        g_autofree char *call_script = g_strdup_printf(
                "echo before; echo err-before >&2; %s; echo after; echo err-after >&2; exit 5", gate);
        g_autofree char *comm_script = g_strdup_printf(
                "dd bs=65536 count=1 iflag=fullblock status=none; touch '%s'; %s; cat; exit 4", ready, gate);
        g_autofree char *wait_script = g_strdup_printf("%s; exit 3", gate);
        const char *call[] = { "call", "--", "sh", "-c", call_script, NULL };
        const char *comm[] = { "communicate", "--", "sh", "-c", comm_script, NULL };
        const char *submitted[] = { "sh", "-c", wait_script, NULL };
        const char *reexec[] = { "daemon-reexec", NULL };
        g_autofree char *submitted_path = fixture_submit(f, submitted, NULL);
        g_autofree char *wait_id = g_strdup(strrchr(submitted_path, '/') + 1);
        const char *wait[] = { "wait", wait_id, NULL };
        g_autofree guint8 *input = g_malloc(CTL_INPUT_SIZE);
        g_autoptr(GBytes) input_bytes = NULL, out = NULL, err = NULL, empty = g_bytes_new_static("", 0);
        g_autoptr(GSubprocess) call_p = NULL, comm_p = NULL, wait_p = NULL, reexec_p = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *owner = fixture_name_owner(f), *owner_after = NULL;
        FixtureWaitWatch watch = { .path = submitted_path };
        Communicated c = {};
        char before[7];
        gsize n = 0;

        for (gsize i = 0; i < CTL_INPUT_SIZE; i++)
                input[i] = (guint8) (i * 13 + i / 4096);
        input_bytes = g_bytes_new_static(input, CTL_INPUT_SIZE);

        /* call: the job writes to procpoolctl's own stdout, which the test reads. */
        call_p = ctl_spawn(f,
                           G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                   G_SUBPROCESS_FLAGS_STDERR_PIPE,
                           call);
        g_assert_true(g_input_stream_read_all(g_subprocess_get_stdout_pipe(call_p), before, sizeof(before),
                                              &n, NULL, &error));
        g_assert_no_error(error);
        g_assert_cmpmem(before, n, "before\n", 7);
        comm_p = ctl_spawn(f,
                           G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                   G_SUBPROCESS_FLAGS_STDERR_PIPE,
                           comm);
        g_subprocess_communicate_async(comm_p, input_bytes, NULL, on_communicated, &c);
        g_assert_true(wait_file_iterating(ready));
        /* procpoolctl wait's Wait is in before the re-exec: started in the gap, it would find no
         * daemon at all. */
        fixture_wait_watch_start(f, &watch);
        wait_p = ctl_spawn(f, G_SUBPROCESS_FLAGS_NONE, wait);
        g_assert_true(fixture_wait_watch_seen(&watch));
        fixture_wait_watch_stop(&watch);

        /* daemon-reexec returns once procpoold is back: a new connection of the same process. */
        reexec_p = ctl_spawn(f, G_SUBPROCESS_FLAGS_NONE, reexec);
        g_assert_true(g_subprocess_wait(reexec_p, NULL, &error));
        g_assert_no_error(error);
        g_assert_cmpint(ctl_status(reexec_p), ==, 0);
        owner_after = fixture_name_owner(f);
        g_assert_nonnull(owner_after);
        g_assert_cmpstr(owner_after, !=, owner);
        g_assert_cmpuint(name_pid(f), ==, (guint32) f->daemon_pid);

        scratch_open_gate(&s);
        g_assert_true(g_subprocess_communicate(call_p, empty, NULL, &out, &err, &error));
        g_assert_no_error(error);
        g_assert_cmpint(ctl_status(call_p), ==, 5);
        assert_text(out, "after\n");
        assert_text(err, "err-before\nerr-after\n");

        g_assert_true(fixture_iterate_until(communicated, &c));
        g_assert_cmpint(ctl_status(comm_p), ==, 4);
        assert_bytes(c.out, input, CTL_INPUT_SIZE);
        assert_text(c.err, "");

        g_assert_true(g_subprocess_wait(wait_p, NULL, &error));
        g_assert_no_error(error);
        g_assert_cmpint(ctl_status(wait_p), ==, 3);
        g_bytes_unref(c.out);
        g_bytes_unref(c.err);
        scratch_done(&s);
}

/* ---- who may ------------------------------------------------------------------------------------ */

static void become_other(gpointer unused) {
        if (setgroups(0, NULL) < 0 || setgid(OTHER_UID) < 0 || setuid(OTHER_UID) < 0)
                _exit(99);
}

static void test_access_denied(Fixture *f, gconstpointer unused) {
        g_autofree char *address = g_strdup_printf("--address=%s", f->address);
        const char *argv[] = { "gdbus",      "call",     address,
                               "--dest",     BUS_NAME,   "--object-path",
                               MANAGER_PATH, "--method", MANAGER_IFACE ".Reexecute",
                               NULL };
        g_autofree char *before = NULL, *after = NULL, *out = NULL, *err = NULL;
        g_autoptr(GError) error = NULL;
        int status;

        if (getuid() != 0) {
                g_test_skip("needs root to call as another uid");
                return;
        }
        before = fixture_name_owner(f);
        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, become_other, NULL, &out,
                                   &err, &status, &error));
        g_assert_no_error(error);
        g_test_message("gdbus as uid %d: %s", OTHER_UID, err);
        g_assert_false(g_spawn_check_wait_status(status, NULL));
        g_assert_nonnull(strstr(err, "org.freedesktop.DBus.Error.AccessDenied"));
        /* It did not re-execute. */
        after = fixture_name_owner(f);
        g_assert_cmpstr(after, ==, before);
}

static const char *const ephemeral[] = { "--ephemeral", NULL };

static void test_ephemeral(Fixture *f, gconstpointer unused) {
        const char *t[] = { "true", NULL };
        g_autofree char *before = fixture_name_owner(f), *after = NULL;
        g_autoptr(GVariant) r = NULL;
        g_autoptr(GError) error = NULL, error2 = NULL;

        r = fixture_call(f, "Reexecute", NULL, &error);
        g_assert_null(r);
        fixture_assert_error(error, "org.freedesktop.DBus.Error.NotSupported", "--ephemeral");
        after = fixture_name_owner(f);
        g_assert_cmpstr(after, ==, before);
        g_assert_cmpint(fixture_call_argv(f, t, NULL, &error2), ==, 0);
        g_assert_no_error(error2);
}

/* ---- an upgraded binary ------------------------------------------------------------------------- */

static void copy_binary(const char *from, const char *dir, const char *to) {
        g_autofree char *tmp = g_build_filename(dir, "procpoold.new", NULL);
        g_autoptr(GFile) src = g_file_new_for_path(from), dst = g_file_new_for_path(tmp);
        g_autoptr(GError) error = NULL;

        g_assert_true(g_file_copy(src, dst, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, &error));
        g_assert_no_error(error);
        g_assert_no_errno(chmod(tmp, 0755));
        /* As a package manager installs: a new file renamed over the old one. */
        g_assert_no_errno(rename(tmp, to));
}

/* procpoold from binary, on f's bus, with its state in dir; returns once it owns its name. */
static GPid start_daemon_binary(Fixture *f, const char *binary, const char *dir) {
        g_autofree char *address = g_strdup_printf("--address=%s", f->address);
        g_autofree char *state = g_strdup_printf("--state-dir=%s/state", dir);
        const char *argv[] = { binary, address, state, NULL };
        g_autoptr(GError) error = NULL;
        FixtureOwnerWatch w;
        GPid pid;

        fixture_watch_owner(f, &w);
        g_assert_true(g_spawn_async(NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid,
                                    &error));
        g_assert_no_error(error);
        fixture_await_new_owner(f, &w);
        return pid;
}

static void test_upgraded(Fixture *f, gconstpointer unused) {
        g_autofree char *exe_link = NULL, *exe = NULL, *binary = NULL;
        Scratch s;

        scratch_init(&s);
        binary = g_build_filename(s.dir, "procpoold", NULL);
        copy_binary(g_getenv("PROCPOOLD"), s.dir, binary);
        f->daemon_pid = start_daemon_binary(f, binary, s.dir);

        /* Upgraded under it: the running image's file is gone, a new one is at its path. */
        copy_binary(g_getenv("PROCPOOLD"), s.dir, binary);
        exe_link = g_strdup_printf("/proc/%d/exe", (int) f->daemon_pid);
        exe = g_file_read_link(exe_link, NULL);
        g_assert_true(g_str_has_suffix(exe, " (deleted)"));
        g_free(exe);

        /* The new image is the file at that path. */
        reexecute(f);
        exe = g_file_read_link(exe_link, NULL);
        g_assert_cmpstr(exe, ==, binary);
        g_assert_cmpint(fixture_stop_daemon(f->daemon_pid), ==, 0);
        f->daemon_pid = 0;
        scratch_done(&s);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add("/procpool/reexec/submit", Fixture, pool1, fixture_setup, test_submit, fixture_teardown);
        g_test_add("/procpool/reexec/timers", Fixture, NULL, fixture_setup, test_timers, fixture_teardown);
        g_test_add("/procpool/reexec/stopping-group", Fixture, NULL, fixture_setup, test_stopping_group,
                   fixture_teardown);
        g_test_add("/procpool/reexec/moved-main", Fixture, NULL, fixture_setup, test_moved_main,
                   fixture_teardown);
        g_test_add("/procpool/reexec/call-communicate", Fixture, NULL, fixture_setup, test_call_communicate,
                   fixture_teardown);
        g_test_add("/procpool/reexec/caller-gone", Fixture, NULL, fixture_setup, test_caller_gone,
                   fixture_teardown);
        g_test_add("/procpool/reexec/ctl", Fixture, pool4, fixture_setup, test_ctl, fixture_teardown);
        g_test_add("/procpool/reexec/access-denied", Fixture, NULL, fixture_setup_open_bus,
                   test_access_denied, fixture_teardown);
        g_test_add("/procpool/reexec/ephemeral", Fixture, ephemeral, fixture_setup, test_ephemeral,
                   fixture_teardown);
        g_test_add("/procpool/reexec/upgraded", Fixture, NULL, fixture_setup_no_daemon, test_upgraded,
                   fixture_teardown);
        return g_test_run();
}
