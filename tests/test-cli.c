/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* procpoolctl end to end: its exit codes, streams, JSON and messages, against procpoold on a private bus. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "fixture.h"

#include "cli-common.h"

/* ---- call ------------------------------------------------------------------------------------------- */

static void test_call_exit_code(Fixture *f, gconstpointer data) {
        CtlResult r = {};

        g_assert_cmpint(ctl(f, &r, "call", "--", "true", NULL), ==, 0);
        g_assert_cmpint(ctl(f, &r, "call", "--", "sh", "-c", "exit 3", NULL), ==, 3);
        /* 128+N for signal N, as a shell reports it */
        g_assert_cmpint(ctl(f, &r, "call", "--", "sh", "-c", "kill -9 $$", NULL), ==, 128 + 9);
        g_assert_cmpstr(r.err_str, ==, "");
        /* without "--" the command starts at its first word and keeps its own options */
        g_assert_cmpint(ctl(f, &r, "call", "sh", "-c", "exit 4", NULL), ==, 4);
        ctl_result_clear(&r);
}

static void test_call_streams(Fixture *f, gconstpointer data) {
        g_autoptr(GBytes) input = g_bytes_new_static("line one\nline two\n", 18);
        const char *cat[] = { "call", "--", "cat", NULL };
        const char *err[] = { "call", "--", "sh", "-c", "echo to-stderr >&2; echo to-stdout", NULL };
        CtlResult r = {};

        /* stdin flows into the job, its stdout comes out of procpoolctl's */
        ctl_run_full(f->address, NULL, NULL, input, cat, &r);
        g_assert_cmpint(r.status, ==, 0);
        g_assert_cmpstr(r.out_str, ==, "line one\nline two\n");
        ctl_result_clear(&r);

        ctl_run_full(f->address, NULL, NULL, NULL, err, &r);
        g_assert_cmpint(r.status, ==, 0);
        g_assert_cmpstr(r.out_str, ==, "to-stdout\n");
        g_assert_cmpstr(r.err_str, ==, "to-stderr\n");
        ctl_result_clear(&r);
}

/* A job prints, then sleeps: its line is readable while it still runs; then a signal to procpoolctl
 * cancels the job and procpoolctl exits as a shell reports that signal. */
static void check_live_and_signal(Fixture *f, int sig) {
        const char *args[] = { "call", "--", "sh", "-c", "echo started; exec sleep 600", NULL };
        g_autoptr(GPtrArray) argv = ctl_argv(f->address, args);
        g_autoptr(GSubprocessLauncher) l = ctl_launcher(G_SUBPROCESS_FLAGS_STDOUT_PIPE, NULL, NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(GSubprocess) p = g_subprocess_launcher_spawnv(l, (const char *const *) argv->pdata, &error);
        g_autoptr(GDataInputStream) out = NULL;
        g_autofree char *line = NULL;
        g_autofree char *state = NULL;
        g_autoptr(GVariant) pid = NULL;
        g_autofree char *path = NULL;
        guint64 id;

        g_assert_no_error(error);
        out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(p));
        line = g_data_input_stream_read_line(out, NULL, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(line, ==, "started");

        id = last_job(f);
        path = fixture_job_path(id);
        state = job_state(f, id);
        g_assert_cmpstr(state, ==, "running");
        pid = fixture_get_property(f, path, JOB_IFACE, "Pid");
        g_assert_cmpuint(g_variant_get_uint32(pid), >, 0);

        g_subprocess_send_signal(p, sig);
        g_assert_true(g_subprocess_wait(p, NULL, &error));
        g_assert_no_error(error);
        g_assert_true(g_subprocess_get_if_exited(p));
        g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 128 + sig);

        g_assert_true(job_wait_state(f, id, "cancelled"));
        /* the sleep is gone, and reaped by the daemon */
        g_assert_cmpint(kill((pid_t) g_variant_get_uint32(pid), 0), ==, -1);
        g_assert_cmpint(errno, ==, ESRCH);
}

static void test_call_ctrl_c(Fixture *f, gconstpointer data) {
        check_live_and_signal(f, SIGINT);
}

static void test_call_sigterm(Fixture *f, gconstpointer data) {
        check_live_and_signal(f, SIGTERM);
}

/* Runs procpoolctl with its stdout and stderr in files rather than pipes, so that a daemon that kept
 * them open could not hang the test; then checks that the daemon did not keep them. */
static void ctl_run_to_files(Fixture *f, const char *const *args, CtlResult *ret) {
        g_autofree char *dir = g_dir_make_tmp("procpool-cli-XXXXXX", NULL);
        g_autofree char *out_path = g_build_filename(dir, "out", NULL);
        g_autofree char *err_path = g_build_filename(dir, "err", NULL);
        g_autofree char *fds = g_strdup_printf("/proc/%d/fd", (int) f->daemon_pid);
        g_autoptr(GPtrArray) argv = ctl_argv(f->address, args);
        g_autoptr(GSubprocessLauncher) l = ctl_launcher(G_SUBPROCESS_FLAGS_NONE, NULL, NULL);
        g_autoptr(GSubprocess) p = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GDir) d = NULL;
        const char *name;
        gsize size;

        g_subprocess_launcher_set_stdout_file_path(l, out_path);
        g_subprocess_launcher_set_stderr_file_path(l, err_path);
        p = g_subprocess_launcher_spawnv(l, (const char *const *) argv->pdata, &error);
        g_assert_no_error(error);
        g_assert_true(g_subprocess_wait(p, NULL, &error));
        ctl_result_clear(ret);
        ret->status = wait_status_of(p);
        g_assert_true(g_file_get_contents(out_path, &ret->out_str, &size, NULL));
        g_assert_true(g_file_get_contents(err_path, &ret->err_str, &size, NULL));
        g_test_message("-> %d\nstdout: %s\nstderr: %s", ret->status, ret->out_str, ret->err_str);

        /* the job is over: the daemon must not hold procpoolctl's streams any more */
        d = g_dir_open(fds, 0, &error);
        g_assert_no_error(error);
        while ((name = g_dir_read_name(d))) {
                g_autofree char *link = g_build_filename(fds, name, NULL);
                g_autofree char *target = g_file_read_link(link, NULL);
                /* a failure, not an abort: the fixture must still stop the daemon that holds them */
                if (target && g_str_has_prefix(target, dir)) {
                        g_test_message("procpoold still holds %s as its fd %s after the job ended", target,
                                       name);
                        g_test_fail();
                }
        }
        (void) g_unlink(out_path);
        (void) g_unlink(err_path);
        (void) g_rmdir(dir);
}

#define NO_SUCH_PROGRAM "Failed to execute 'procpool-no-such-program': No such file or directory\n"

static void test_call_spawn_failed(Fixture *f, gconstpointer data) {
        const char *call[] = { "call", "--", "procpool-no-such-program", NULL };
        const char *communicate[] = { "communicate", "--", "procpool-no-such-program", NULL };
        const char *submit[] = { "submit", "--wait", "--", "procpool-no-such-program", NULL };
        const char *cwd[] = { "call", "--cwd=/procpool-no-such-dir", "--", "true", NULL };
        CtlResult r = {};

        ctl_run_to_files(f, call, &r);
        g_assert_cmpint(r.status, ==, 1);
        g_assert_cmpstr(r.err_str, ==, NO_SUCH_PROGRAM);
        ctl_run_to_files(f, communicate, &r);
        g_assert_cmpint(r.status, ==, 1);
        g_assert_cmpstr(r.err_str, ==, NO_SUCH_PROGRAM);
        ctl_run_to_files(f, submit, &r);
        g_assert_cmpint(r.status, ==, 1);
        g_assert_cmpstr(r.err_str, ==, NO_SUCH_PROGRAM);
        ctl_run_to_files(f, cwd, &r);
        g_assert_cmpint(r.status, ==, 1);
        g_assert_true(strstr(r.err_str, "/procpool-no-such-dir") != NULL);
        ctl_result_clear(&r);
}

/* ---- communicate ------------------------------------------------------------------------------------ */

static void test_communicate_binary(Fixture *f, gconstpointer data) {
        g_autofree guint8 *bytes = g_malloc(256 * 257);
        g_autoptr(GBytes) input = NULL;
        const char *cat[] = { "communicate", "--", "cat", NULL };
        const char *to_err[] = { "communicate", "--", "sh", "-c", "cat >&2; exit 4", NULL };
        CtlResult r = {};

        /* every byte value, NULs included, in a pattern that is not periodic in 256 */
        for (gsize i = 0; i < 256 * 257; i++)
                bytes[i] = (guint8) (i + i / 256);
        input = g_bytes_new(bytes, 256 * 257);

        ctl_run_full(f->address, NULL, NULL, input, cat, &r);
        g_assert_cmpint(r.status, ==, 0);
        g_assert_true(g_bytes_equal(r.out, input));
        g_assert_cmpuint(g_bytes_get_size(r.err), ==, 0);
        ctl_result_clear(&r);

        ctl_run_full(f->address, NULL, NULL, input, to_err, &r);
        g_assert_cmpint(r.status, ==, 4);
        g_assert_cmpuint(g_bytes_get_size(r.out), ==, 0);
        g_assert_true(g_bytes_equal(r.err, input));
        ctl_result_clear(&r);
}

/* ---- submit, wait, output ----------------------------------------------------------------------------- */

static void test_submit(Fixture *f, gconstpointer data) {
        g_autoptr(JsonNode) root = NULL;
        JsonObject *o;
        g_autofree char *state = NULL;
        g_autofree char *expected_path = NULL;
        CtlResult r = {};
        guint64 id;

        id = ctl_submit(f, "echo out; echo err >&2; exit 5");
        {
                g_autofree char *ids = g_strdup_printf("%" G_GUINT64_FORMAT, id);
                g_assert_cmpint(ctl(f, &r, "wait", ids, NULL), ==, 5);
                g_assert_cmpint(ctl(f, &r, "output", ids, NULL), ==, 0);
                g_assert_cmpstr(r.out_str, ==, "out\n");
                g_assert_cmpstr(r.err_str, ==, "err\n");
        }

        /* --wait: the id, then the job's code */
        g_assert_cmpint(ctl(f, &r, "submit", "--wait", "--", "sh", "-c", "exit 6", NULL), ==, 6);
        id = parse_id(r.out_str);
        state = job_state(f, id);
        g_assert_cmpstr(state, ==, "exited");

        /* --json: an object with the id and the path */
        g_assert_cmpint(ctl(f, &r, "--json", "submit", "--", "true", NULL), ==, 0);
        root = parse_json(r.out_str);
        o = json_node_get_object(root);
        id = (guint64) json_object_get_int_member(o, "id");
        expected_path = fixture_job_path(id);
        g_assert_cmpstr(json_object_get_string_member(o, "path"), ==, expected_path);
        g_assert_cmpuint(id, ==, last_job(f));
        ctl_result_clear(&r);
}

static void test_output(Fixture *f, gconstpointer data) {
        g_autofree char *ids = NULL;
        CtlResult r = {};
        guint64 id;

        id = ctl_submit(f, "printf 'a\\000b'; printf 'x\\377y' >&2");
        ids = g_strdup_printf("%" G_GUINT64_FORMAT, id);
        g_assert_cmpint(ctl(f, &r, "wait", ids, NULL), ==, 0);
        g_assert_cmpint(ctl(f, &r, "output", ids, NULL), ==, 0);
        g_assert_cmpmem(g_bytes_get_data(r.out, NULL), g_bytes_get_size(r.out), "a\0b", 3);
        g_assert_cmpmem(g_bytes_get_data(r.err, NULL), g_bytes_get_size(r.err), "x\377y", 3);
        g_assert_cmpint(ctl(f, &r, "output", "9999", NULL), ==, 1);
        g_assert_cmpstr(r.err_str, ==, "Job 9999 could not be found.\n");
        ctl_result_clear(&r);
}

static void test_wait_mixed(Fixture *f, gconstpointer data) {
        g_autofree char *a = g_strdup_printf("%" G_GUINT64_FORMAT, ctl_submit(f, "exit 0"));
        g_autofree char *b = g_strdup_printf("%" G_GUINT64_FORMAT, ctl_submit(f, "exit 0"));
        g_autofree char *c = g_strdup_printf("%" G_GUINT64_FORMAT, ctl_submit(f, "exit 3"));
        g_autofree char *d = g_strdup_printf("%" G_GUINT64_FORMAT, ctl_submit(f, "kill -9 $$"));
        CtlResult r = {};

        g_assert_cmpint(ctl(f, &r, "wait", a, b, NULL), ==, 0);
        g_assert_cmpint(ctl(f, &r, "wait", a, b, c, NULL), ==, 1);
        g_assert_true(strstr(r.err_str, "exited with code 3") != NULL);
        g_assert_cmpint(ctl(f, &r, "wait", a, d, NULL), ==, 1);
        /* one job: its own code, as submit --wait gives it */
        g_assert_cmpint(ctl(f, &r, "wait", c, NULL), ==, 3);
        g_assert_cmpint(ctl(f, &r, "wait", d, NULL), ==, 128 + 9);
        g_assert_cmpint(ctl(f, &r, "wait", a, "9999", NULL), ==, 1);
        g_assert_cmpint(ctl(f, &r, "wait", "x", NULL), ==, 2);
        /* nothing unfinished: nothing to wait for */
        g_assert_cmpint(ctl(f, &r, "wait", NULL), ==, 0);
        ctl_result_clear(&r);
}

/* wait with no IDs waits for the caller's unfinished jobs, showing progress on a terminal. */
static void test_wait_all(Fixture *f, gconstpointer data) {
        g_autofree char *gate = fixture_gate_path(f, "gate"), *wait_gate = fixture_gate_wait_sh(gate);
        g_autofree char *ok = g_strdup_printf("%s; exit 0", wait_gate);
        g_autofree char *bad = g_strdup_printf("%s; exit 7", wait_gate);
        guint64 a = ctl_submit(f, ok), b = ctl_submit(f, bad);
        const char *args[] = { "wait", NULL };
        g_autoptr(GPtrArray) argv = ctl_argv(f->address, args);
        g_autoptr(GSubprocessLauncher) l = ctl_launcher(G_SUBPROCESS_FLAGS_NONE, NULL, NULL);
        g_autoptr(GSubprocess) p = NULL;
        g_autoptr(GString) tty = g_string_new(NULL);
        g_autoptr(GError) error = NULL;
        g_autofree char *sa = NULL, *sb = NULL;
        int slave, master = open_pty(80, &slave);

        g_subprocess_launcher_take_stderr_fd(l, slave);
        p = g_subprocess_launcher_spawnv(l, (const char *const *) argv->pdata, &error);
        g_assert_no_error(error);
        g_clear_object(&l); /* closes our copy of the slave */

        pty_read_until(master, tty, "0/2 done, 2 running");
        fixture_gate_open(gate);
        pty_read_until(master, tty, NULL);
        g_assert_true(g_subprocess_wait(p, NULL, &error));
        g_assert_cmpint(wait_status_of(p), ==, 1); /* one job exited 7 */
        g_assert_true(strstr(tty->str, "1/2 done, 1 running") != NULL);
        g_assert_true(strstr(tty->str, "exited with code 7") != NULL);
        sa = job_state(f, a);
        sb = job_state(f, b);
        g_assert_cmpstr(sa, ==, "exited");
        g_assert_cmpstr(sb, ==, "exited");

        (void) close(master);
}

static GSubprocess *spawn_with_bus_timeout(Fixture *f, const char *const *args) {
        g_autoptr(GPtrArray) argv = ctl_argv(f->address, args);
        g_autoptr(GSubprocessLauncher) l = ctl_launcher(G_SUBPROCESS_FLAGS_STDOUT_SILENCE, NULL, NULL);
        g_autoptr(GError) error = NULL;
        GSubprocess *p;

        g_subprocess_launcher_setenv(l, "SYSTEMD_BUS_TIMEOUT", "300ms", TRUE);
        p = g_subprocess_launcher_spawnv(l, (const char *const *) argv->pdata, &error);
        g_assert_no_error(error);
        return p;
}

/* Waiting has no method call timeout: sd-bus takes its default one from $SYSTEMD_BUS_TIMEOUT, and a
 * job that outlasts it still ends with its own code. Each job lasts 1.5 s from when the request is
 * in: its own time, five times that timeout. */
static void test_no_call_timeout(Fixture *f, gconstpointer data) {
        g_autofree char *gate = fixture_gate_path(f, "waiting"), *wait_gate = fixture_gate_wait_sh(gate);
        g_autofree char *script = g_strdup_printf("%s; sleep 1.5; exit 7", wait_gate);
        g_autofree char *id = g_strdup_printf("%" G_GUINT64_FORMAT, ctl_submit(f, script));
        g_autofree char *path = fixture_job_path(parse_id(id));
        const char *const cases[][7] = {
                { "call", "--", "sh", "-c", "sleep 1.5; exit 3", NULL },
                { "communicate", "--", "sh", "-c", "sleep 1.5; exit 4", NULL },
                { "submit", "--wait", "--", "sh", "-c", "sleep 1.5; exit 5", NULL },
        };
        const int expected[] = { 3, 4, 5 };
        const char *wait_args[] = { "wait", id, NULL };
        FixtureWaitWatch watch = { .path = path };
        g_autoptr(GSubprocess) waiter = NULL;
        g_autoptr(GError) error = NULL;

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GSubprocess) p = spawn_with_bus_timeout(f, cases[i]);
                g_assert_true(g_subprocess_wait(p, NULL, &error));
                g_assert_cmpint(wait_status_of(p), ==, expected[i]);
        }
        /* wait: the job is held until its Wait is on the bus, then lasts 1.5 s. */
        fixture_wait_watch_start(f, &watch);
        waiter = spawn_with_bus_timeout(f, wait_args);
        g_assert_true(fixture_wait_watch_seen(&watch));
        fixture_gate_open(gate);
        g_assert_true(g_subprocess_wait(waiter, NULL, &error));
        g_assert_cmpint(wait_status_of(waiter), ==, 7);
        fixture_wait_watch_stop(&watch);
}

/* ---- job options ------------------------------------------------------------------------------------ */

static void test_options_env(Fixture *f, gconstpointer data) {
        CtlResult r = {};

        g_assert_cmpint(
                ctl(f, &r, "call", "-E", "FOO=bar", "--setenv=X=1=2", "--", "sh", "-c", "echo $FOO/$X", NULL),
                ==, 0);
        g_assert_cmpstr(r.out_str, ==, "bar/1=2\n");
        /* --clear-env: only what -E sets */
        g_assert_cmpint(ctl(f, &r, "call", "--clear-env", "-E", "ONLY=this", "--", "env", NULL), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "ONLY=this\n");
        ctl_result_clear(&r);
}

/* -E NAME and --setenv=NAME pass procpoolctl's own value on, as systemd-run -E does; an unset NAME
 * passes an empty value, as there. */
static void test_options_env_passthrough(Fixture *f, gconstpointer data) {
        const char *args[] = { "call",
                               "--clear-env",
                               "-E",
                               "PROCPOOL_PASSED",
                               "--setenv=PROCPOOL_TOO",
                               "-E",
                               "PROCPOOL_UNSET",
                               "--",
                               "env",
                               NULL };
        g_autoptr(GPtrArray) argv = ctl_argv(f->address, args);
        g_autoptr(GSubprocessLauncher) l = ctl_launcher(G_SUBPROCESS_FLAGS_STDOUT_PIPE, NULL, NULL);
        g_autoptr(GSubprocess) p = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL;
        g_auto(GStrv) lines = NULL;
        CtlResult r = {};

        g_subprocess_launcher_setenv(l, "PROCPOOL_PASSED", "a value with spaces=and equals", TRUE);
        g_subprocess_launcher_setenv(l, "PROCPOOL_TOO", "", TRUE);
        g_subprocess_launcher_unsetenv(l, "PROCPOOL_UNSET");
        p = g_subprocess_launcher_spawnv(l, (const char *const *) argv->pdata, &error);
        g_assert_no_error(error);
        g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, &out, NULL, &error));
        g_assert_no_error(error);
        g_assert_cmpint(wait_status_of(p), ==, 0);
        lines = g_strsplit(out, "\n", -1);
        g_assert_cmpuint(g_strv_length(lines), ==, 4);
        g_assert_cmpstr(lines[0], ==, "PROCPOOL_PASSED=a value with spaces=and equals");
        g_assert_cmpstr(lines[1], ==, "PROCPOOL_TOO=");
        g_assert_cmpstr(lines[2], ==, "PROCPOOL_UNSET=");

        /* not a variable name: a usage error naming it */
        g_assert_cmpint(ctl(f, &r, "call", "-E", "1BAD", "--", "true", NULL), ==, 2);
        g_assert_nonnull(strstr(r.err_str, "'1BAD' is not a variable name"));
        g_assert_cmpint(ctl(f, &r, "call", "-E", "=x", "--", "true", NULL), ==, 2);
        g_assert_nonnull(strstr(r.err_str, "expected NAME=VALUE or NAME"));
        ctl_result_clear(&r);
}

static void test_options_cwd(Fixture *f, gconstpointer data) {
        const char *pwd[] = { "call", "--", "pwd", NULL };
        const char *root[] = { "call", "--cwd=/", "--", "pwd", NULL };
        const char *rel[] = { "call", "--cwd=bin", "--", "pwd", NULL };
        CtlResult r = {};

        /* the default is procpoolctl's own working directory, not the daemon's */
        ctl_run_full(f->address, NULL, "/usr", NULL, pwd, &r);
        g_assert_cmpstr(r.out_str, ==, "/usr\n");
        ctl_result_clear(&r);
        ctl_run_full(f->address, NULL, "/usr", NULL, root, &r);
        g_assert_cmpstr(r.out_str, ==, "/\n");
        ctl_result_clear(&r);
        ctl_run_full(f->address, NULL, "/usr", NULL, rel, &r);
        g_assert_cmpstr(r.out_str, ==, "/usr/bin\n");
        ctl_result_clear(&r);
}

static void test_options_timeout(Fixture *f, gconstpointer data) {
        g_autofree char *state = NULL;
        CtlResult r = {};

        g_assert_cmpint(ctl(f, &r, "call", "--timeout=200ms", "--", "sleep", "600", NULL), ==, 124);
        g_assert_cmpstr(r.err_str, !=, "");
        g_assert_true(strstr(r.err_str, "timed out") != NULL);
        state = job_state(f, last_job(f));
        g_assert_cmpstr(state, ==, "timed-out");
        g_assert_cmpint(ctl(f, &r, "call", "--timeout=soon", "--", "true", NULL), ==, 2);
        ctl_result_clear(&r);
}

static void test_options_priority(Fixture *f, gconstpointer data) {
        g_autofree char *blocker = NULL, *low = NULL, *high = NULL;
        g_autofree char *low_state = NULL;
        CtlResult r = {};

        g_assert_cmpint(ctl(f, &r, "pool-size", "1", NULL), ==, 0);
        blocker = g_strdup_printf("%" G_GUINT64_FORMAT, ctl_submit(f, "exec sleep 600"));
        g_assert_true(job_wait_state(f, parse_id(blocker), "running"));
        g_assert_cmpint(ctl(f, &r, "submit", "--priority=0", "--", "sleep", "600", NULL), ==, 0);
        low = g_strstrip(g_strdup(r.out_str));
        g_assert_cmpint(ctl(f, &r, "submit", "--priority=5", "--", "sleep", "600", NULL), ==, 0);
        high = g_strstrip(g_strdup(r.out_str));

        /* the later, higher-priority job takes the free worker */
        g_assert_cmpint(ctl(f, &r, "cancel", blocker, NULL), ==, 0);
        g_assert_true(job_wait_state(f, parse_id(high), "running"));
        low_state = job_state(f, parse_id(low));
        g_assert_cmpstr(low_state, ==, "queued");
        g_assert_cmpint(ctl(f, &r, "cancel", high, low, NULL), ==, 0);
        g_assert_cmpint(ctl(f, &r, "submit", "--priority=high", "--", "true", NULL), ==, 2);
        ctl_result_clear(&r);
}

static void test_options_output_limit(Fixture *f, gconstpointer data) {
        g_autofree char *id = NULL;
        CtlResult r = {};

        g_assert_cmpint(ctl(f, &r, "submit", "--wait", "--output-limit=1K", "--", "head", "-c", "5000",
                            "/dev/zero", NULL),
                        ==, 0);
        id = g_strstrip(g_strdup(r.out_str));
        g_assert_cmpint(ctl(f, &r, "output", id, NULL), ==, 0);
        g_assert_cmpuint(g_bytes_get_size(r.out), ==, 1024);
        g_assert_cmpint(ctl(f, &r, "submit", "--output-limit=lots", "--", "true", NULL), ==, 2);
        ctl_result_clear(&r);
}

/* ---- list and status -------------------------------------------------------------------------------- */

static void test_list(Fixture *f, gconstpointer data) {
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *running = NULL, *done = NULL;
        JsonArray *a;
        gboolean seen_running = FALSE, seen_done = FALSE;
        CtlResult r = {};

        g_assert_cmpint(ctl(f, &r, "submit", "--label=nightly", "--", "sleep", "600", NULL), ==, 0);
        running = g_strstrip(g_strdup(r.out_str));
        g_assert_cmpint(ctl(f, &r, "submit", "--wait", "--", "sh", "-c", "exit 3", NULL), ==, 3);
        done = g_strstrip(g_strdup(r.out_str));
        g_assert_true(job_wait_state(f, parse_id(running), "running"));

        /* unfinished jobs, with a header and a legend */
        g_assert_cmpint(ctl(f, &r, "list", NULL), ==, 0);
        g_assert_true(g_str_has_prefix(r.out_str, "ID "));
        g_assert_true(strstr(r.out_str, "STATE") && strstr(r.out_str, "RC") && strstr(r.out_str, "PID") &&
                      strstr(r.out_str, "RUNTIME") && strstr(r.out_str, "LABEL") &&
                      strstr(r.out_str, "COMMAND"));
        g_assert_true(strstr(r.out_str, "running") != NULL);
        g_assert_true(strstr(r.out_str, "nightly") != NULL);
        g_assert_true(strstr(r.out_str, "sleep 600") != NULL);
        g_assert_null(strstr(r.out_str, "exit 3"));
        g_assert_true(strstr(r.out_str, "1 job listed.") != NULL);

        /* --all, -a: finished ones too */
        g_assert_cmpint(ctl(f, &r, "list", "--all", NULL), ==, 0);
        g_assert_true(strstr(r.out_str, "sh -c 'exit 3'") != NULL);
        g_assert_true(strstr(r.out_str, "2 jobs listed.") != NULL);
        g_assert_cmpint(ctl(f, &r, "-a", "list", NULL), ==, 0);
        g_assert_true(strstr(r.out_str, "sh -c 'exit 3'") != NULL);

        /* status without an ID lists */
        g_assert_cmpint(ctl(f, &r, "status", NULL), ==, 0);
        g_assert_true(g_str_has_prefix(r.out_str, "ID "));
        g_assert_true(strstr(r.out_str, "sleep 600") != NULL);

        /* --no-legend and -q: rows only */
        g_assert_cmpint(ctl(f, &r, "--no-legend", "list", NULL), ==, 0);
        g_assert_true(g_str_has_prefix(r.out_str, running));
        g_assert_null(strstr(r.out_str, "listed"));
        g_assert_cmpint(ctl(f, &r, "-q", "list", NULL), ==, 0);
        g_assert_true(g_str_has_prefix(r.out_str, running));
        g_assert_null(strstr(r.out_str, "listed"));

        /* --json: an array with the right values */
        g_assert_cmpint(ctl(f, &r, "--json", "list", "-a", NULL), ==, 0);
        root = parse_json(r.out_str);
        a = json_node_get_array(root);
        g_assert_cmpuint(json_array_get_length(a), ==, 2);
        for (guint i = 0; i < json_array_get_length(a); i++) {
                JsonObject *o = json_array_get_object_element(a, i);
                guint64 id = (guint64) json_object_get_int_member(o, "id");
                JsonArray *argv = json_object_get_array_member(o, "argv");

                if (id == parse_id(running)) {
                        g_assert_cmpstr(json_object_get_string_member(o, "state"), ==, "running");
                        g_assert_cmpstr(json_object_get_string_member(o, "label"), ==, "nightly");
                        g_assert_cmpint(json_object_get_int_member(o, "pid"), >, 0);
                        g_assert_cmpstr(json_array_get_string_element(argv, 0), ==, "sleep");
                        seen_running = TRUE;
                } else if (id == parse_id(done)) {
                        g_assert_cmpstr(json_object_get_string_member(o, "state"), ==, "exited");
                        g_assert_cmpint(json_object_get_int_member(o, "returncode"), ==, 3);
                        g_assert_cmpstr(json_array_get_string_element(argv, 2), ==, "exit 3");
                        seen_done = TRUE;
                }
        }
        g_assert_true(seen_running && seen_done);
        g_assert_cmpint(ctl(f, &r, "--json", "list", NULL), ==, 0);
        g_clear_pointer(&root, json_node_unref);
        root = parse_json(r.out_str);
        g_assert_cmpuint(json_array_get_length(json_node_get_array(root)), ==, 1);

        g_assert_cmpint(ctl(f, &r, "cancel", running, NULL), ==, 0);
        ctl_result_clear(&r);
}

/* On a terminal the command column is cut to its width, unless --full. */
static void test_list_full(Fixture *f, gconstpointer data) {
        static const char *long_arg = "an-argument-long-enough-to-pass-the-width-of-a-narrow-terminal-xyz";
        const char *args_cut[] = { "list", NULL };
        const char *args_full[] = { "list", "--full", NULL };
        const char *const *variants[] = { args_cut, args_full };
        g_autofree char *id = NULL;
        CtlResult r = {};

        g_assert_cmpint(ctl(f, &r, "submit", "--", "sh", "-c", "exec sleep 600", long_arg, NULL), ==, 0);
        id = g_strstrip(g_strdup(r.out_str));
        g_assert_true(job_wait_state(f, parse_id(id), "running"));
        for (gsize v = 0; v < G_N_ELEMENTS(variants); v++) {
                g_autoptr(GPtrArray) argv = ctl_argv(f->address, variants[v]);
                g_autoptr(GSubprocessLauncher) l = ctl_launcher(G_SUBPROCESS_FLAGS_NONE, NULL, NULL);
                g_autoptr(GSubprocess) p = NULL;
                g_autoptr(GString) tty = g_string_new(NULL);
                g_autoptr(GError) error = NULL;
                int slave, master = open_pty(60, &slave);

                g_subprocess_launcher_take_stdout_fd(l, slave);
                p = g_subprocess_launcher_spawnv(l, (const char *const *) argv->pdata, &error);
                g_assert_no_error(error);
                g_clear_object(&l);
                pty_read_until(master, tty, NULL);
                g_assert_true(g_subprocess_wait(p, NULL, NULL));
                g_assert_cmpint(wait_status_of(p), ==, 0);
                g_test_message("%s", tty->str);
                if (v == 0) {
                        /* cut to the terminal's 60 columns (libsmartcols cuts without an ellipsis) */
                        g_auto(GStrv) lines = g_strsplit(tty->str, "\r\n", -1);
                        g_assert_null(strstr(tty->str, long_arg));
                        g_assert_nonnull(strstr(tty->str, "sh -c 'exec sleep 600' an-"));
                        g_assert_cmpuint(g_strv_length(lines), >=, 2);
                        for (int i = 0; i < 2; i++) /* the header and the job's row */
                                g_assert_cmpuint(g_utf8_strlen(lines[i], -1), <=, 60);
                } else
                        g_assert_true(strstr(tty->str, long_arg) != NULL);
                (void) close(master);
        }
        g_assert_cmpint(ctl(f, &r, "cancel", id, NULL), ==, 0);
        ctl_result_clear(&r);
}

static void test_status(Fixture *f, gconstpointer data) {
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *id = NULL, *failed = NULL;
        JsonObject *o;
        CtlResult r = {};

        g_assert_cmpint(ctl(f, &r, "submit", "--wait", "--label=build", "--", "sh", "-c", "exit 3", NULL), ==,
                        3);
        id = g_strstrip(g_strdup(r.out_str));
        g_assert_cmpint(ctl(f, &r, "status", id, NULL), ==, 0);
        g_assert_true(strstr(r.out_str, "State: exited (code 3)") != NULL);
        g_assert_true(strstr(r.out_str, "Command: sh -c 'exit 3'") != NULL);
        g_assert_true(strstr(r.out_str, "Label: build") != NULL);
        g_assert_true(strstr(r.out_str, "Owner: ") != NULL);

        g_assert_cmpint(ctl(f, &r, "--json", "status", id, NULL), ==, 0);
        root = parse_json(r.out_str);
        o = json_node_get_object(root);
        g_assert_cmpint(json_object_get_int_member(o, "id"), ==, (gint64) parse_id(id));
        g_assert_cmpstr(json_object_get_string_member(o, "state"), ==, "exited");
        g_assert_cmpint(json_object_get_int_member(o, "returncode"), ==, 3);
        g_assert_cmpstr(json_object_get_string_member(o, "label"), ==, "build");
        g_assert_cmpint(json_object_get_int_member(o, "owner"), ==, (gint64) getuid());
        g_assert_cmpint(json_object_get_int_member(o, "finished_at"), >=,
                        json_object_get_int_member(o, "started_at"));

        /* a failed job shows why */
        g_assert_cmpint(ctl(f, &r, "submit", "--wait", "--", "procpool-no-such-program", NULL), ==, 1);
        failed = g_strdup_printf("%" G_GUINT64_FORMAT, last_job(f));
        g_assert_cmpint(ctl(f, &r, "status", failed, NULL), ==, 0);
        g_assert_true(strstr(r.out_str, "State: failed") != NULL);
        g_assert_true(strstr(r.out_str, "Error: Failed to execute 'procpool-no-such-program'") != NULL);

        g_assert_cmpint(ctl(f, &r, "status", "424242", NULL), ==, 1);
        g_assert_cmpstr(r.err_str, ==, "Job 424242 could not be found.\n");
        ctl_result_clear(&r);
}

/* ---- cancel, kill, release, pool-size ------------------------------------------------------------------ */

static void test_cancel(Fixture *f, gconstpointer data) {
        g_autofree char *id = g_strdup_printf("%" G_GUINT64_FORMAT, ctl_submit(f, "exec sleep 600"));
        g_autofree char *state = NULL;
        CtlResult r = {};

        g_assert_true(job_wait_state(f, parse_id(id), "running"));
        g_assert_cmpint(ctl(f, &r, "cancel", id, NULL), ==, 0);
        g_assert_true(job_wait_state(f, parse_id(id), "cancelled"));
        g_assert_cmpint(ctl(f, &r, "wait", id, NULL), ==, 1);
        g_assert_true(strstr(r.err_str, "cancelled") != NULL);
        /* cancelling it again is an error that says why */
        g_assert_cmpint(ctl(f, &r, "cancel", id, NULL), ==, 1);
        g_assert_true(g_str_has_prefix(r.err_str, "Failed to cancel job "));
        g_assert_cmpint(ctl(f, &r, "cancel", "31337", NULL), ==, 1);
        g_assert_cmpint(ctl(f, &r, "cancel", NULL), ==, 2);
        ctl_result_clear(&r);
}

static void test_kill(Fixture *f, gconstpointer data) {
        static const struct {
                const char *const args[3];
                int signal;
        } cases[] = {
                { { NULL }, SIGTERM },
                { { "-s", "USR1", NULL }, SIGUSR1 },
                { { "--signal=SIGHUP", NULL }, SIGHUP },
                { { "-s", "9", NULL }, SIGKILL },
        };
        CtlResult r = {};

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *id = g_strdup_printf("%" G_GUINT64_FORMAT, ctl_submit(f, "exec sleep 600"));
                g_autoptr(GPtrArray) args = g_ptr_array_new();
                g_autofree char *state = NULL;
                const char *wait_args[] = { "wait", id, NULL };

                g_assert_true(job_wait_state(f, parse_id(id), "running"));
                g_ptr_array_add(args, (char *) "kill");
                for (const char *const *a = cases[i].args; *a; a++)
                        g_ptr_array_add(args, (char *) *a);
                g_ptr_array_add(args, id);
                g_ptr_array_add(args, NULL);
                ctl_result_clear(&r);
                ctl_run_full(f->address, NULL, NULL, NULL, (const char *const *) args->pdata, &r);
                g_assert_cmpint(r.status, ==, 0);
                ctl_result_clear(&r);
                ctl_run_full(f->address, NULL, NULL, NULL, wait_args, &r);
                g_assert_cmpint(r.status, ==, 128 + cases[i].signal);
                state = job_state(f, parse_id(id));
                g_assert_cmpstr(state, ==, "killed");
        }
        g_assert_cmpint(ctl(f, &r, "kill", "-s", "NOSUCHSIG", "1", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "kill", "1", NULL), ==, 1); /* not running any more */
        ctl_result_clear(&r);
}

static void test_release(Fixture *f, gconstpointer data) {
        g_autofree char *id = NULL, *running = NULL;
        CtlResult r = {};

        g_assert_cmpint(ctl(f, &r, "submit", "--wait", "--", "true", NULL), ==, 0);
        id = g_strstrip(g_strdup(r.out_str));
        g_assert_cmpint(ctl(f, &r, "release", id, NULL), ==, 0);
        g_assert_cmpint(ctl(f, &r, "status", id, NULL), ==, 1);
        g_assert_true(strstr(r.err_str, "could not be found") != NULL);

        running = g_strdup_printf("%" G_GUINT64_FORMAT, ctl_submit(f, "exec sleep 600"));
        g_assert_cmpint(ctl(f, &r, "release", running, NULL), ==, 1);
        g_assert_true(g_str_has_prefix(r.err_str, "Failed to release job "));
        g_assert_cmpint(ctl(f, &r, "cancel", running, NULL), ==, 0);
        ctl_result_clear(&r);
}

static void test_pool_size(Fixture *f, gconstpointer data) {
        g_autoptr(JsonNode) root = NULL;
        g_autoptr(GVariant) v = NULL;
        CtlResult r = {};

        g_assert_cmpint(ctl(f, &r, "pool-size", "3", NULL), ==, 0);
        v = fixture_get_property(f, MANAGER_PATH, MANAGER_IFACE, "PoolSize");
        g_assert_cmpuint(g_variant_get_uint32(v), ==, 3);
        g_assert_cmpint(ctl(f, &r, "pool-size", NULL), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "3\n");
        g_assert_cmpint(ctl(f, &r, "--json", "pool-size", NULL), ==, 0);
        root = parse_json(r.out_str);
        g_assert_cmpint(json_object_get_int_member(json_node_get_object(root), "pool_size"), ==, 3);
        g_assert_cmpint(json_object_get_int_member(json_node_get_object(root), "max_queued"), >, 0);
        /* the daemon refuses 0: a daemon error, not a usage error */
        g_assert_cmpint(ctl(f, &r, "pool-size", "0", NULL), ==, 1);
        g_assert_true(g_str_has_prefix(r.err_str, "Failed to set the pool size to 0: "));
        g_assert_cmpint(ctl(f, &r, "pool-size", "many", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "pool-size", "1", "2", NULL), ==, 2);
        ctl_result_clear(&r);
}

/* ---- monitor ---------------------------------------------------------------------------------------- */

static void check_monitor(Fixture *f, gboolean json) {
        const char *args_text[] = { "monitor", NULL };
        const char *args_json[] = { "--json", "monitor", NULL };
        g_autoptr(GPtrArray) argv = ctl_argv(f->address, json ? args_json : args_text);
        g_autoptr(GSubprocessLauncher) l =
                ctl_launcher(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, NULL, NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(GSubprocess) p = g_subprocess_launcher_spawnv(l, (const char *const *) argv->pdata, &error);
        g_autoptr(GDataInputStream) out = NULL, err = NULL;
        g_autofree char *ready = NULL, *submitted = NULL, *started = NULL, *finished = NULL, *path = NULL;
        const char *sleep_argv[] = { "sleep", "600", NULL };
        guint64 id;

        g_assert_no_error(error);
        out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(p));
        err = g_data_input_stream_new(g_subprocess_get_stderr_pipe(p));
        /* its subscriptions are in place once it says so */
        ready = fixture_read_line(err, "monitor");
        g_assert_true(g_str_has_prefix(ready, "Monitoring"));

        path = fixture_submit(f, sleep_argv, fixture_options("label", g_variant_new_string("mon"), NULL));
        id = last_job(f);
        submitted = fixture_read_line(out, "monitor");
        started = fixture_read_line(out, "monitor");
        fixture_job_call(f, path, "Kill", g_variant_new("(i)", SIGKILL), &error);
        g_assert_no_error(error);
        finished = fixture_read_line(out, "monitor");

        if (json) {
                g_autoptr(JsonNode) a = parse_json(submitted), b = parse_json(started),
                                    c = parse_json(finished);
                JsonObject *oa = json_node_get_object(a), *ob = json_node_get_object(b),
                           *oc = json_node_get_object(c);

                g_assert_cmpstr(json_object_get_string_member(oa, "event"), ==, "submitted");
                g_assert_cmpint(json_object_get_int_member(oa, "id"), ==, (gint64) id);
                g_assert_cmpstr(json_object_get_string_member(oa, "label"), ==, "mon");
                g_assert_cmpstr(json_array_get_string_element(json_object_get_array_member(oa, "argv"), 0),
                                ==, "sleep");
                g_assert_cmpstr(json_object_get_string_member(ob, "event"), ==, "started");
                g_assert_cmpint(json_object_get_int_member(ob, "id"), ==, (gint64) id);
                g_assert_cmpint(json_object_get_int_member(ob, "pid"), >, 0);
                g_assert_cmpstr(json_object_get_string_member(oc, "event"), ==, "finished");
                g_assert_cmpint(json_object_get_int_member(oc, "id"), ==, (gint64) id);
                g_assert_cmpstr(json_object_get_string_member(oc, "state"), ==, "killed");
                g_assert_cmpint(json_object_get_int_member(oc, "returncode"), ==, -9);
        } else {
                g_autofree char *s = g_strdup_printf("Job %" G_GUINT64_FORMAT " submitted: sleep 600", id);
                g_autofree char *st = g_strdup_printf("Job %" G_GUINT64_FORMAT " started", id);
                g_autofree char *fi =
                        g_strdup_printf("Job %" G_GUINT64_FORMAT " finished: killed, return code -9.", id);
                g_assert_cmpstr(submitted, ==, s);
                g_assert_true(g_str_has_prefix(started, st));
                g_assert_cmpstr(finished, ==, fi);
        }

        /* it runs until interrupted, and an interrupt is its normal end */
        g_assert_nonnull(g_subprocess_get_identifier(p)); /* still running */
        g_subprocess_send_signal(p, SIGINT);
        g_assert_true(g_subprocess_wait(p, NULL, &error));
        g_assert_true(g_subprocess_get_if_exited(p));
        g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 0);
}

static void test_monitor(Fixture *f, gconstpointer data) {
        check_monitor(f, FALSE);
}

static void test_monitor_json(Fixture *f, gconstpointer data) {
        check_monitor(f, TRUE);
}

/* ---- buses, the absent daemon, usage ----------------------------------------------------------------- */

static void assert_one_line(const char *s) {
        g_assert_true(g_str_has_suffix(s, "\n"));
        g_assert_true(strchr(s, '\n') == s + strlen(s) - 1);
}

static void test_absent(Fixture *f, gconstpointer data) {
        const char *const commands[][5] = {
                { "list", NULL },
                { "call", "--", "true", NULL },
                { "communicate", "--", "true", NULL },
                { "submit", "--", "true", NULL },
                { "status", "1", NULL },
                { "cancel", "1", "2", NULL },
                { "pool-size", NULL },
                { "wait", NULL },
        };
        const char *list[] = { "list", NULL };
        CtlResult r = {};

        for (gsize i = 0; i < G_N_ELEMENTS(commands); i++) {
                ctl_run_full(f->address, NULL, NULL, NULL, commands[i], &r);
                g_assert_cmpint(r.status, ==, 1);
                g_assert_true(g_str_has_prefix(r.err_str, "procpoold is not running"));
                assert_one_line(r.err_str);
                ctl_result_clear(&r);
        }

        /* through DBUS_SESSION_BUS_ADDRESS, the user bus: how to start it there */
        ctl_run_full(NULL, f->address, NULL, NULL, list, &r);
        g_assert_cmpint(r.status, ==, 1);
        g_assert_cmpstr(r.err_str, ==,
                        "procpoold is not running on the user bus; start it with 'systemctl --user start "
                        "procpoold', or run 'procpoold'.\n");
        ctl_result_clear(&r);

        /* no bus at all */
        {
                const char *args[] = { "--address=unix:path=/nonexistent/procpool-bus", "list", NULL };
                ctl_run_full(NULL, NULL, NULL, NULL, args, &r);
                g_assert_cmpint(r.status, ==, 1);
                g_assert_true(g_str_has_prefix(r.err_str, "Failed to connect to the bus at "));
                assert_one_line(r.err_str);
                ctl_result_clear(&r);
        }
}

static void test_buses(Fixture *f, gconstpointer data) {
        const char *user[] = { "--user", "pool-size", NULL };
        const char *plain[] = { "pool-size", NULL };
        const char *system[] = { "--system", "pool-size", NULL };
        const char *host[] = { "-H", "root@procpool-no-such-host.invalid", "pool-size", NULL };
        const char *machine[] = { "--machine=procpool-no-such-machine", "pool-size", NULL };
        const char *both[] = { "-H", "x", "-M", "y", "pool-size", NULL };
        const char *user_host[] = { "--user", "--host=x", "pool-size", NULL };
        CtlResult r = {};

        /* the user bus is DBUS_SESSION_BUS_ADDRESS, by default and with --user */
        ctl_run_full(NULL, f->address, NULL, NULL, plain, &r);
        g_assert_cmpint(r.status, ==, 0);
        ctl_result_clear(&r);
        ctl_run_full(NULL, f->address, NULL, NULL, user, &r);
        g_assert_cmpint(r.status, ==, 0);
        ctl_result_clear(&r);
        /* --system, -H and -M go elsewhere, where this daemon is not */
        ctl_run_full(NULL, f->address, NULL, NULL, system, &r);
        g_assert_cmpint(r.status, ==, 1);
        g_assert_true(strstr(r.err_str, "system bus") != NULL);
        ctl_result_clear(&r);
        ctl_run_full(NULL, f->address, NULL, NULL, host, &r);
        g_assert_cmpint(r.status, ==, 1);
        ctl_result_clear(&r);
        ctl_run_full(NULL, f->address, NULL, NULL, machine, &r);
        g_assert_cmpint(r.status, ==, 1);
        ctl_result_clear(&r);
        ctl_run_full(NULL, f->address, NULL, NULL, both, &r);
        g_assert_cmpint(r.status, ==, 2);
        ctl_result_clear(&r);
        ctl_run_full(NULL, f->address, NULL, NULL, user_host, &r);
        g_assert_cmpint(r.status, ==, 2);
        ctl_result_clear(&r);
}

static void test_usage(Fixture *f, gconstpointer data) {
        static const char *const verbs[] = { "call",   "communicate", "submit",    "wait",   "list",
                                             "status", "output",      "cancel",    "kill",   "pause",
                                             "resume", "release",     "pool-size", "monitor" };
        CtlResult r = {};

        g_assert_cmpint(ctl(f, &r, "--version", NULL), ==, 0);
        g_assert_true(g_str_has_prefix(r.out_str, "procpoolctl "));
        g_assert_true(g_ascii_isdigit(r.out_str[strlen("procpoolctl ")]));
        g_assert_cmpint(ctl(f, &r, "--help", NULL), ==, 0);
        for (gsize i = 0; i < G_N_ELEMENTS(verbs); i++)
                g_assert_true(strstr(r.out_str, verbs[i]) != NULL);
        g_assert_nonnull(strstr(r.out_str, "\n  help [COMMAND] "));
        for (gsize i = 0; i < G_N_ELEMENTS(verbs); i++) {
                g_autofree char *synopsis = g_strdup_printf("procpoolctl [OPTIONS...] %s", verbs[i]);
                g_assert_cmpint(ctl(f, &r, verbs[i], "--help", NULL), ==, 0);
                g_assert_true(g_str_has_prefix(r.out_str, synopsis));
                g_assert_cmpint(ctl(f, &r, "help", verbs[i], NULL), ==, 0);
                g_assert_true(g_str_has_prefix(r.out_str, synopsis));
        }
        /* usage errors: 2, with the error on stderr and nothing on stdout */
        g_assert_cmpint(ctl(f, &r, NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "frobnicate", NULL), ==, 2);
        g_assert_true(strstr(r.err_str, "Unknown command 'frobnicate'") != NULL);
        g_assert_cmpstr(r.out_str, ==, "");
        g_assert_cmpint(ctl(f, &r, "call", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "call", "--", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "--no-such-option", "list", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "list", "--label=x", NULL), ==, 2);
        g_assert_true(strstr(r.err_str, "--label") != NULL);
        g_assert_cmpint(ctl(f, &r, "call", "--wait", "--", "true", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "list", "extra", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "output", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "call", "--stop-timeout=forever-ish", "--", "true", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "status", "abc", NULL), ==, 2);
        g_assert_cmpstr(r.out_str, ==, "");
        ctl_result_clear(&r);
}

/* ---- bash completion ---------------------------------------------------------------------------------- */

static const char completion_script[] =
        "source /usr/share/bash-completion/bash_completion\n"
        "source \"$1\"\n"
        "comp() {\n"
        "        COMP_WORDS=(\"$@\"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
        "        COMP_LINE=\"$*\"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()\n"
        "        _procpoolctl procpoolctl \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD-1]}\"\n"
        "        echo \"${COMPREPLY[*]}\"\n"
        "}\n"
        "comp procpoolctl ''\n"
        "comp procpoolctl kill -s US\n"
        "comp procpoolctl submit --w\n"
        "comp procpoolctl \"--address=$2\" cancel ''\n"
        "comp procpoolctl \"--address=$2\" status ''\n"
        "comp procpoolctl kill -s SIGT\n"
        "comp procpoolctl kill --signal=SIGT\n"
        "comp procpoolctl kill --signal=US\n"
        "comp procpoolctl pa\n"
        "comp procpoolctl \"--address=$2\" resume ''\n";

static void test_bash_completion(Fixture *f, gconstpointer data) {
        g_autofree char *file = g_build_filename(g_getenv("PROCPOOL_SOURCE_ROOT"), "tools",
                                                 "procpoolctl.bash-completion", NULL);
        g_autofree char *bindir = g_path_get_dirname(ctl_path());
        g_autofree char *path = g_strdup_printf("%s:%s", bindir, g_getenv("PATH"));
        g_autofree char *running = NULL, *done = NULL, *expected_running = NULL, *expected_all = NULL;
        g_autoptr(GSubprocessLauncher) l = NULL;
        g_autoptr(GSubprocess) p = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL;
        g_auto(GStrv) lines = NULL;
        CtlResult r = {};

        if (!g_file_test("/usr/share/bash-completion/bash_completion", G_FILE_TEST_EXISTS)) {
                g_test_skip("bash-completion is not installed");
                return;
        }
        g_assert_cmpint(ctl(f, &r, "submit", "--wait", "--", "true", NULL), ==, 0);
        done = g_strstrip(g_strdup(r.out_str));
        running = g_strdup_printf("%" G_GUINT64_FORMAT, ctl_submit(f, "exec sleep 600"));
        g_assert_true(job_wait_state(f, parse_id(running), "running"));

        l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
        g_subprocess_launcher_setenv(l, "PATH", path, TRUE);
        g_subprocess_launcher_unsetenv(l, "DBUS_SESSION_BUS_ADDRESS");
        p = g_subprocess_launcher_spawn(l, &error, "bash", "-c", completion_script, "bash", file, f->address,
                                        NULL);
        g_assert_no_error(error);
        g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, &out, NULL, &error));
        g_assert_no_error(error);
        g_test_message("%s", out);
        lines = g_strsplit(out, "\n", -1);
        g_assert_cmpuint(g_strv_length(lines), >=, 5);

        /* commands, signal names, a command's options */
        g_assert_true(
                g_str_has_prefix(lines[0], "call communicate submit wait list status output cancel kill"));
        g_assert_cmpstr(lines[1], ==, "USR1 USR2");
        g_assert_cmpstr(lines[2], ==, "--wait");
        /* job ids from the daemon on the bus named on the line: unfinished ones to cancel, all for status */
        expected_running = g_strdup(running);
        expected_all = g_strdup_printf("%s %s", done, running);
        g_assert_cmpstr(lines[3], ==, expected_running);
        g_assert_cmpstr(lines[4], ==, expected_all);
        /* signal names with SIG when it was typed, also after --signal=, and the new commands */
        g_assert_cmpuint(g_strv_length(lines), >=, 10);
        for (int i = 5; i <= 6; i++) {
                g_auto(GStrv) names = g_strsplit(lines[i], " ", -1);
                g_assert_true(g_strv_contains((const char *const *) names, "SIGTERM"));
                g_assert_true(g_strv_contains((const char *const *) names, "SIGTSTP"));
                for (char **n = names; *n; n++)
                        g_assert_true(g_str_has_prefix(*n, "SIGT"));
        }
        g_assert_cmpstr(lines[7], ==, "USR1 USR2");
        g_assert_cmpstr(lines[8], ==, "pause");
        g_assert_cmpstr(lines[9], ==, expected_running);

        g_assert_cmpint(ctl(f, &r, "cancel", running, NULL), ==, 0);
        ctl_result_clear(&r);
}

/* ---- --json: one meaning everywhere ----------------------------------------------------------------- */

static JsonObject *json_object_of(JsonNode *n) {
        g_assert_true(JSON_NODE_HOLDS_OBJECT(n));
        return json_node_get_object(n);
}

/* stderr under --json: {"error": NAME, "message": TEXT}. */
static void assert_json_error(const CtlResult *r, const char *name, const char *text) {
        g_autoptr(JsonNode) n = parse_json(r->err_str);
        JsonObject *o = json_object_of(n);

        g_assert_cmpint(r->status, !=, 0);
        g_assert_cmpstr(json_object_get_string_member(o, "error"), ==, name);
        g_assert_nonnull(strstr(json_object_get_string_member(o, "message"), text));
}

static void test_json(Fixture *f, gconstpointer data) {
        g_autoptr(GBytes) input = g_bytes_new_static("abc", 3);
        const char *communicate[] = { "--json", "communicate", "--", "sh", "-c", "cat; echo err >&2; exit 2",
                                      NULL };
        g_autofree char *a = NULL, *b = NULL, *sleeper = NULL;
        CtlResult r = {};

        /* call: the job as it ended */
        g_assert_cmpint(ctl(f, &r, "--json", "call", "--", "sh", "-c", "exit 3", NULL), ==, 3);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                JsonObject *o = json_object_of(n);
                g_assert_cmpstr(json_object_get_string_member(o, "state"), ==, "exited");
                g_assert_cmpint(json_object_get_int_member(o, "returncode"), ==, 3);
                g_assert_cmpint(json_object_get_int_member(o, "id"), >, 0);
                /* measured where the daemon can: null here without per-job cgroups, else a number */
                g_assert_true(json_object_has_member(o, "cpu_usage_usec"));
                g_assert_true(json_object_has_member(o, "memory_peak"));
                g_assert_false(json_object_get_boolean_member(o, "paused"));
        }

        /* communicate: its streams as base64 */
        ctl_result_clear(&r);
        ctl_run_full(f->address, NULL, NULL, input, communicate, &r);
        g_assert_cmpint(r.status, ==, 2);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                JsonObject *o = json_object_of(n);
                g_assert_cmpint(json_object_get_int_member(o, "returncode"), ==, 2);
                g_assert_cmpstr(json_object_get_string_member(o, "stdout_base64"), ==, "YWJj");
                g_assert_cmpstr(json_object_get_string_member(o, "stderr_base64"), ==, "ZXJyCg==");
        }

        /* wait: one ID an object, several an array; output with its streams */
        a = g_strdup_printf("%" G_GUINT64_FORMAT, ctl_submit(f, "echo out-a; exit 0"));
        b = g_strdup_printf("%" G_GUINT64_FORMAT, ctl_submit(f, "exit 5"));
        g_assert_cmpint(ctl(f, &r, "--json", "wait", a, NULL), ==, 0);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                g_assert_cmpstr(json_object_get_string_member(json_object_of(n), "state"), ==, "exited");
        }
        g_assert_cmpint(ctl(f, &r, "--json", "wait", a, b, NULL), ==, 1);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                JsonArray *arr = json_node_get_array(n);
                g_assert_cmpuint(json_array_get_length(arr), ==, 2);
                g_assert_cmpint(
                        json_object_get_int_member(json_array_get_object_element(arr, 1), "returncode"), ==,
                        5);
        }
        g_assert_cmpstr(r.err_str, ==, "");
        g_assert_cmpint(ctl(f, &r, "--json", "output", a, NULL), ==, 0);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                JsonObject *o = json_object_of(n);
                g_assert_cmpstr(json_object_get_string_member(o, "stdout_base64"), ==, "b3V0LWEK");
                g_assert_cmpstr(json_object_get_string_member(o, "stderr_base64"), ==, "");
        }
        g_assert_cmpint(ctl(f, &r, "--json", "status", a, b, NULL), ==, 0);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                g_assert_cmpuint(json_array_get_length(json_node_get_array(n)), ==, 2);
        }

        /* kill and cancel: the job afterwards */
        sleeper = g_strdup_printf("%" G_GUINT64_FORMAT, ctl_submit(f, "exec sleep 600"));
        g_assert_true(job_wait_state(f, parse_id(sleeper), "running"));
        g_assert_cmpint(ctl(f, &r, "--json", "kill", "-s", "CONT", sleeper, NULL), ==, 0);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                g_assert_cmpstr(json_object_get_string_member(json_object_of(n), "state"), ==, "running");
        }
        g_assert_cmpint(ctl(f, &r, "--json", "cancel", sleeper, NULL), ==, 0);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                g_assert_cmpint(json_object_get_int_member(json_object_of(n), "id"), ==,
                                (gint64) parse_id(sleeper));
        }
        g_assert_true(job_wait_state(f, parse_id(sleeper), "cancelled"));

        /* errors: JSON on stderr, with the D-Bus error's name */
        g_assert_cmpint(ctl(f, &r, "--json", "cancel", sleeper, NULL), ==, 1);
        assert_json_error(&r, "org.procpool.Error.NotRunning", "has already ended");
        g_assert_cmpint(ctl(f, &r, "--json", "status", "9999", NULL), ==, 1);
        assert_json_error(&r, "org.freedesktop.DBus.Error.UnknownObject", "Job 9999 could not be found");
        g_assert_cmpint(ctl(f, &r, "--json", "communicate", "--", "procpool-no-such-program", NULL), ==, 1);
        assert_json_error(&r, "org.procpool.Error.SpawnFailed",
                          "Failed to execute 'procpool-no-such-program'");
        /* a call that failed to start: the job says so, nothing on stderr */
        g_assert_cmpint(ctl(f, &r, "--json", "call", "--", "procpool-no-such-program", NULL), ==, 1);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                JsonObject *o = json_object_of(n);
                g_assert_cmpstr(json_object_get_string_member(o, "state"), ==, "failed");
                g_assert_nonnull(strstr(json_object_get_string_member(o, "error"), "Failed to execute"));
        }
        g_assert_cmpstr(r.err_str, ==, "");
        ctl_result_clear(&r);
}

/* monitor --json: a finished event carries the job's Error */
static void test_monitor_json_error(Fixture *f, gconstpointer data) {
        g_autoptr(GPtrArray) argv = ctl_argv(f->address, (const char *const[]) { "--json", "monitor", NULL });
        g_autoptr(GSubprocessLauncher) l =
                ctl_launcher(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, NULL, NULL);
        g_autoptr(GSubprocess) p = NULL;
        g_autoptr(GDataInputStream) out = NULL, err = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *banner = NULL, *id = NULL;
        CtlResult r = {};

        p = g_subprocess_launcher_spawnv(l, (const char *const *) argv->pdata, &error);
        g_assert_no_error(error);
        err = g_data_input_stream_new(g_subprocess_get_stderr_pipe(p));
        banner = g_data_input_stream_read_line(err, NULL, NULL, &error);
        g_assert_no_error(error);
        id = g_strdup_printf("%" G_GUINT64_FORMAT, ctl_submit(f, "exec sleep 600"));
        g_assert_true(job_wait_state(f, parse_id(id), "running"));
        g_assert_cmpint(ctl(f, &r, "cancel", id, NULL), ==, 0);
        out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(p));
        for (;;) {
                g_autofree char *line = g_data_input_stream_read_line(out, NULL, NULL, &error);
                g_autoptr(JsonNode) n = NULL;
                JsonObject *o;

                g_assert_no_error(error);
                g_assert_nonnull(line);
                n = parse_json(line);
                o = json_object_of(n);
                if (!g_str_equal(json_object_get_string_member(o, "event"), "finished"))
                        continue;
                g_assert_cmpstr(json_object_get_string_member(o, "state"), ==, "cancelled");
                g_assert_cmpstr(json_object_get_string_member(o, "error"), ==, "Cancelled");
                break;
        }
        g_subprocess_send_signal(p, SIGINT);
        g_assert_true(g_subprocess_wait(p, NULL, NULL));
        ctl_result_clear(&r);
}

/* ---- zsh and fish: the scripts load, and fish completes signal names ------------------------------------ */

static char *run_shell(const char *const *argv, int *ret_status) {
        g_autoptr(GError) error = NULL;
        char *out = NULL, *err = NULL;

        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                                   ret_status, &error));
        g_assert_no_error(error);
        g_test_message("%s: %s%s", argv[0], out, err);
        g_free(err);
        return out;
}

static void test_fish_completion(Fixture *f, gconstpointer data) {
        g_autofree char *file =
                g_build_filename(g_getenv("PROCPOOL_SOURCE_ROOT"), "tools", "procpoolctl.fish", NULL);
        g_autofree char *script = g_strdup_printf("source %s; complete -C 'procpoolctl kill -s SIGT'; "
                                                  "complete -C 'procpoolctl pau'",
                                                  file);
        g_autofree char *out = NULL, *fish = g_find_program_in_path("fish");
        int status;

        if (!fish) {
                g_test_skip("fish is not installed");
                return;
        }
        out = run_shell((const char *const[]) { "fish", "--no-config", "-c", script, NULL }, &status);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        g_assert_true(g_str_has_prefix(out, "SIGT"));
        g_assert_nonnull(strstr(out, "SIGTERM\t"));
        g_assert_nonnull(strstr(out, "SIGTSTP\t"));
        g_assert_true(strstr(out, "\npause\n") || strstr(out, "\npause\t"));
}

static void test_zsh_completion(Fixture *f, gconstpointer data) {
        g_autofree char *file = g_build_filename(g_getenv("PROCPOOL_SOURCE_ROOT"), "tools",
                                                 "procpoolctl.zsh-completion", NULL);
        g_autofree char *dir = g_dir_make_tmp("procpool-zsh-XXXXXX", NULL);
        g_autofree char *installed = g_build_filename(dir, "_procpoolctl", NULL);
        g_autofree char *contents = NULL, *script = NULL, *out = NULL;
        g_autofree char *zsh = g_find_program_in_path("zsh");
        int status;

        if (!zsh) {
                g_test_skip("zsh is not installed");
                return;
        }
        /* the syntax */
        g_free(run_shell((const char *const[]) { "zsh", "-n", file, NULL }, &status));
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        /* installed as meson installs it, the completion system finds and loads it */
        g_assert_true(g_file_get_contents(file, &contents, NULL, NULL));
        g_assert_true(g_file_set_contents(installed, contents, -1, NULL));
        script = g_strdup_printf("fpath=(%s $fpath); autoload -Uz compinit; compinit -u -D; "
                                 "print -r -- ${_comps[procpoolctl]}; autoload +X _procpoolctl && "
                                 "[[ ${functions[_procpoolctl]} == *_procpoolctl_signals* ]] && print loaded",
                                 dir);
        out = run_shell((const char *const[]) { "zsh", "-f", "-c", script, NULL }, &status);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        g_assert_cmpstr(out, ==, "_procpoolctl\nloaded\n");
        (void) g_unlink(installed);
        (void) g_rmdir(dir);
}

/* ---- what reaches the daemon: a stand-in service records the options of Submit ------------------- */

typedef struct {
        GVariant *options;
        char **argv;
} Recorded;

static void mock_method_call(GDBusConnection *conn, const char *sender, const char *path, const char *iface,
                             const char *method, GVariant *params, GDBusMethodInvocation *inv,
                             gpointer data) {
        Recorded *rec = data;

        g_assert_cmpstr(method, ==, "Submit");
        g_clear_pointer(&rec->options, g_variant_unref);
        g_clear_pointer(&rec->argv, g_strfreev);
        g_variant_get(params, "(^as@a{sv})", &rec->argv, &rec->options);
        g_dbus_method_invocation_return_value(inv, g_variant_new("(o)", MANAGER_PATH "/job/77"));
}

static void on_communicated(GObject *source, GAsyncResult *res, gpointer data) {
        gboolean *done = data;
        g_autoptr(GError) error = NULL;

        g_assert_true(g_subprocess_communicate_finish(G_SUBPROCESS(source), res, NULL, NULL, &error));
        g_assert_no_error(error);
        *done = TRUE;
}

/* Runs procpoolctl submit with options against the stand-in, serving it meanwhile. */
static void mock_submit(Fixture *f, const char *cwd, const char *const *options, int expect_status) {
        g_autoptr(GPtrArray) args = g_ptr_array_new();
        g_autoptr(GPtrArray) argv = NULL;
        g_autoptr(GSubprocessLauncher) l = ctl_launcher(G_SUBPROCESS_FLAGS_STDOUT_SILENCE, cwd, NULL);
        g_autoptr(GSubprocess) p = NULL;
        g_autoptr(GError) error = NULL;
        gboolean done = FALSE;

        g_ptr_array_add(args, (char *) "submit");
        for (const char *const *o = options; *o; o++)
                g_ptr_array_add(args, (char *) *o);
        g_ptr_array_add(args, (char *) "--");
        g_ptr_array_add(args, (char *) "true");
        g_ptr_array_add(args, NULL);
        argv = ctl_argv(f->address, (const char *const *) args->pdata);
        p = g_subprocess_launcher_spawnv(l, (const char *const *) argv->pdata, &error);
        g_assert_no_error(error);
        g_subprocess_communicate_async(p, NULL, NULL, on_communicated, &done);
        while (!done)
                g_main_context_iteration(NULL, TRUE);
        g_assert_true(g_subprocess_wait(p, NULL, NULL));
        g_assert_cmpint(wait_status_of(p), ==, expect_status);
}

static void test_options_sent(Fixture *f, gconstpointer data) {
        static const GDBusInterfaceVTable vtable = { .method_call = mock_method_call };
        g_autofree char *xml_path = g_build_filename(g_getenv("PROCPOOL_SOURCE_ROOT"), "data",
                                                     "org.procpool.Supervisor1.xml", NULL);
        g_autofree char *xml = NULL;
        g_autoptr(GDBusNodeInfo) node = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) owned = NULL;
        Recorded rec = {};
        guint reg;
        guint64 t;
        gint32 prio;
        gboolean b;
        const char *s;
        g_autofree const char **env = NULL;

        g_assert_true(g_file_get_contents(xml_path, &xml, NULL, &error));
        node = g_dbus_node_info_new_for_xml(xml, &error);
        g_assert_no_error(error);
        reg = g_dbus_connection_register_object(f->conn, MANAGER_PATH,
                                                g_dbus_node_info_lookup_interface(node, MANAGER_IFACE),
                                                &vtable, &rec, NULL, &error);
        g_assert_no_error(error);
        owned = g_dbus_connection_call_sync(f->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus", "RequestName",
                                            g_variant_new("(su)", BUS_NAME, 4 /* DO_NOT_QUEUE */), NULL,
                                            G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_no_error(error);

        /* nothing given: only the working directory, procpoolctl's own */
        mock_submit(f, "/usr", (const char *const[]) { NULL }, 0);
        g_assert_cmpuint(g_variant_n_children(rec.options), ==, 1);
        g_assert_true(g_variant_lookup(rec.options, "cwd", "&s", &s));
        g_assert_cmpstr(s, ==, "/usr");
        g_assert_cmpstr(rec.argv[0], ==, "true");

        mock_submit(f, NULL,
                    (const char *const[]) { "--timeout=1h 30min", "--stop-timeout=500ms", "-E", "A=1",
                                            "--setenv=B=x=y", "--clear-env", "--cwd=/srv",
                                            "--label=nightly build", "--priority=-5", "--output-limit=2M",
                                            NULL },
                    0);
        g_assert_true(g_variant_lookup(rec.options, "timeout-usec", "t", &t));
        g_assert_cmpuint(t, ==, 5400ULL * G_USEC_PER_SEC);
        g_assert_true(g_variant_lookup(rec.options, "stop-timeout-usec", "t", &t));
        g_assert_cmpuint(t, ==, 500000);
        g_assert_true(g_variant_lookup(rec.options, "environment", "^a&s", &env));
        g_assert_cmpuint(g_strv_length((char **) env), ==, 2);
        g_assert_cmpstr(env[0], ==, "A=1");
        g_assert_cmpstr(env[1], ==, "B=x=y");
        g_assert_true(g_variant_lookup(rec.options, "clear-environment", "b", &b));
        g_assert_true(b);
        g_assert_true(g_variant_lookup(rec.options, "cwd", "&s", &s));
        g_assert_cmpstr(s, ==, "/srv");
        g_assert_true(g_variant_lookup(rec.options, "label", "&s", &s));
        g_assert_cmpstr(s, ==, "nightly build");
        g_assert_true(g_variant_lookup(rec.options, "priority", "i", &prio));
        g_assert_cmpint(prio, ==, -5);
        g_assert_true(g_variant_lookup(rec.options, "output-limit", "t", &t));
        g_assert_cmpuint(t, ==, 2 * 1024 * 1024);
        /* submit leaves a job running when procpoolctl goes away */
        g_assert_false(g_variant_lookup(rec.options, "cancel-on-disconnect", "b", &b) && b);

        /* other spellings of time spans and sizes */
        mock_submit(
                f, NULL,
                (const char *const[]) { "--timeout=30", "--stop-timeout=2us", "--output-limit=16K", NULL },
                0);
        g_assert_true(g_variant_lookup(rec.options, "timeout-usec", "t", &t));
        g_assert_cmpuint(t, ==, 30 * G_USEC_PER_SEC);
        g_assert_true(g_variant_lookup(rec.options, "stop-timeout-usec", "t", &t));
        g_assert_cmpuint(t, ==, 2);
        g_assert_true(g_variant_lookup(rec.options, "output-limit", "t", &t));
        g_assert_cmpuint(t, ==, 16 * 1024);
        mock_submit(f, NULL, (const char *const[]) { "--timeout=5min", NULL }, 0);
        g_assert_true(g_variant_lookup(rec.options, "timeout-usec", "t", &t));
        g_assert_cmpuint(t, ==, 300 * G_USEC_PER_SEC);
        /* what systemd-analyze timespan reads: months, years, weeks, words */
        mock_submit(f, NULL, (const char *const[]) { "--timeout=1y 2M 3 weeks", "--stop-timeout=5us", NULL },
                    0);
        g_assert_true(g_variant_lookup(rec.options, "timeout-usec", "t", &t));
        g_assert_cmpuint(t, ==, (31557600ULL + 2 * 2629800ULL + 21 * 86400ULL) * G_USEC_PER_SEC);
        g_assert_true(g_variant_lookup(rec.options, "stop-timeout-usec", "t", &t));
        g_assert_cmpuint(t, ==, 5);
        mock_submit(f, NULL, (const char *const[]) { "--output-limit=16KiB", NULL }, 0);
        g_assert_true(g_variant_lookup(rec.options, "output-limit", "t", &t));
        g_assert_cmpuint(t, ==, 16 * 1024);

        g_dbus_connection_unregister_object(f->conn, reg);
        g_clear_pointer(&rec.options, g_variant_unref);
        g_clear_pointer(&rec.argv, g_strfreev);
}

static const char *const subscribed_args[] = { "--bus-signals=subscribed", NULL };

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);

#define ADD(name, fn) FIXTURE_ADD("/procpool/cli/" name, fixture_setup, NULL, fn)
        ADD("call/exit-code", test_call_exit_code);
        ADD("call/streams", test_call_streams);
        ADD("call/ctrl-c", test_call_ctrl_c);
        ADD("call/sigterm", test_call_sigterm);
        ADD("call/spawn-failed", test_call_spawn_failed);
        ADD("communicate/binary", test_communicate_binary);
        ADD("submit", test_submit);
        ADD("output", test_output);
        ADD("wait/mixed", test_wait_mixed);
        ADD("wait/all", test_wait_all);
        ADD("wait/no-call-timeout", test_no_call_timeout);
        ADD("options/env", test_options_env);
        ADD("options/env-passthrough", test_options_env_passthrough);
        ADD("options/cwd", test_options_cwd);
        ADD("options/timeout", test_options_timeout);
        ADD("options/priority", test_options_priority);
        ADD("options/output-limit", test_options_output_limit);
        ADD("list", test_list);
        ADD("list/full", test_list_full);
        ADD("status", test_status);
        ADD("cancel", test_cancel);
        ADD("kill", test_kill);
        ADD("release", test_release);
        ADD("pool-size", test_pool_size);
        ADD("monitor", test_monitor);
        ADD("monitor/json", test_monitor_json);
        ADD("buses", test_buses);
        ADD("usage", test_usage);
        ADD("bash-completion", test_bash_completion);
        ADD("json", test_json);
        ADD("fish-completion", test_fish_completion);
        ADD("zsh-completion", test_zsh_completion);
        ADD("monitor/json-error", test_monitor_json_error);
        /* Against a daemon that sends signals on the bus only to subscribers, procpoolctl subscribes. */
#define ADD_SUBSCRIBED(name, fn) \
        FIXTURE_ADD("/procpool/cli/subscribed/" name, fixture_setup, subscribed_args, fn)
        ADD_SUBSCRIBED("call/exit-code", test_call_exit_code);
        ADD_SUBSCRIBED("submit", test_submit);
        ADD_SUBSCRIBED("wait/mixed", test_wait_mixed);
        ADD_SUBSCRIBED("wait/all", test_wait_all);
        ADD_SUBSCRIBED("monitor", test_monitor);
        ADD_SUBSCRIBED("monitor/json", test_monitor_json);
#undef ADD
        FIXTURE_ADD("/procpool/cli/absent", fixture_setup_no_daemon, NULL, test_absent);
        FIXTURE_ADD("/procpool/cli/options/sent", fixture_setup_no_daemon, NULL, test_options_sent);
        return g_test_run();
}
