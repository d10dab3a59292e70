/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* procpoolctl map end to end: one job per line of stdin, whole output blocks in either order, exit codes,
 * the job log, halting, signals, the queue bound, and no job left held by the daemon afterwards. */
#include <signal.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "cli-common.h"

static const char *const small_queue[] = { "--max-queued=8", NULL };

/* Runs procpoolctl with input on stdin and the arguments after it. */
static int map_run(Fixture *f, const char *input, CtlResult *ret, const char *const *args) {
        g_autoptr(GBytes) in = g_bytes_new(input, strlen(input));

        ctl_result_clear(ret);
        ctl_run_full(f->address, NULL, NULL, in, args, ret);
        return ret->status;
}

/* "1\n2\n...n\n" */
static char *numbers(unsigned n) {
        GString *s = g_string_new(NULL);

        for (unsigned i = 1; i <= n; i++)
                g_string_append_printf(s, "%u\n", i);
        return g_string_free(s, FALSE);
}

/* map releases every job it ran: the daemon holds none of them afterwards. */
static void assert_no_jobs(Fixture *f) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = fixture_call(f, "ListJobs", NULL, &error);
        g_autoptr(GVariant) jobs = NULL;

        g_assert_no_error(error);
        jobs = g_variant_get_child_value(r, 0);
        g_assert_cmpuint(g_variant_n_children(jobs), ==, 0);
}

/* 1,000 lines, two lines of output each, in the order of the input: every block whole and in place. */
static void test_keep_order(Fixture *f, gconstpointer data) {
        const char *args[] = { "map", "--keep-order", "--", "sh", "-c", "echo a-{}; echo b-{}", NULL };
        g_autofree char *input = numbers(1000);
        g_autoptr(GString) expected = g_string_new(NULL);
        CtlResult r = {};

        for (unsigned i = 1; i <= 1000; i++)
                g_string_append_printf(expected, "a-%u\nb-%u\n", i, i);
        g_assert_cmpint(map_run(f, input, &r, args), ==, 0);
        g_assert_cmpstr(r.out_str, ==, expected->str);
        g_assert_cmpstr(r.err_str, ==, "");
        assert_no_jobs(f);
        ctl_result_clear(&r);
}

/* Without --keep-order the blocks come as the jobs end, each still whole: a-N is followed by b-N, on
 * stdout and likewise on stderr, and every line shows up once. */
static void test_completion_order(Fixture *f, gconstpointer data) {
        const char *args[] = { "map", "--", "sh", "-c", "echo a-{}; echo b-{}; echo c-{} >&2; echo d-{} >&2",
                               NULL };
        g_autofree char *input = numbers(300);
        g_autofree gboolean *seen = g_new0(gboolean, 301);
        g_auto(GStrv) out = NULL, err = NULL;
        CtlResult r = {};

        g_assert_cmpint(map_run(f, input, &r, args), ==, 0);
        out = g_strsplit(r.out_str, "\n", -1);
        err = g_strsplit(r.err_str, "\n", -1);
        g_assert_cmpuint(g_strv_length(out), ==, 601);
        g_assert_cmpuint(g_strv_length(err), ==, 601);
        for (guint i = 0; i < 600; i += 2) {
                guint64 n = 0;
                g_autofree char *b = NULL, *c = NULL, *d = NULL;

                g_assert_true(g_str_has_prefix(out[i], "a-"));
                g_assert_true(g_ascii_string_to_unsigned(out[i] + 2, 10, 1, 300, &n, NULL));
                b = g_strdup_printf("b-%" G_GUINT64_FORMAT, n);
                g_assert_cmpstr(out[i + 1], ==, b);
                g_assert_false(seen[n]);
                seen[n] = TRUE;
                g_assert_true(g_str_has_prefix(err[i], "c-"));
                d = g_strdup_printf("d-%s", err[i] + 2);
                g_assert_cmpstr(err[i + 1], ==, d);
        }
        assert_no_jobs(f);
        ctl_result_clear(&r);
}

/* 0 when every job exited 0, else the number of failed jobs, as GNU parallel; the output of failed jobs
 * is printed all the same. */
static void test_exit_code(Fixture *f, gconstpointer data) {
        const char *fail[] = { "map", "--keep-order", "--", "sh", "-c", "echo {}; exit $(({} % 3))", NULL };
        const char *spawn[] = { "map", "--", "/nonexistent/{}", NULL };
        const char *ok[] = { "map", "--", "true", NULL };
        CtlResult r = {};

        /* 1, 2, 4, 5 fail */
        g_assert_cmpint(map_run(f, "1\n2\n3\n4\n5\n6\n", &r, fail), ==, 4);
        g_assert_cmpstr(r.out_str, ==, "1\n2\n3\n4\n5\n6\n");
        g_assert_cmpint(map_run(f, "a\nb\n", &r, ok), ==, 0);
        /* jobs that could not start fail too */
        g_assert_cmpint(map_run(f, "x\ny\nz\n", &r, spawn), ==, 3);
        assert_no_jobs(f);
        ctl_result_clear(&r);
}

/* GNU parallel's job log: a header, then one tab-separated line per job. */
static void test_joblog(Fixture *f, gconstpointer data) {
        g_autofree char *dir = g_dir_make_tmp("procpool-map-XXXXXX", NULL);
        g_autofree char *log = g_build_filename(dir, "joblog", NULL);
        g_autofree char *opt = g_strdup_printf("--joblog=%s", log);
        const char *args[] = { "map", opt, "--", "sh", "-c", "printf %s {}; exit $(({} % 2))", NULL };
        g_autofree char *text = NULL;
        g_auto(GStrv) lines = NULL;
        gboolean seen[6] = {};
        CtlResult r = {};

        g_assert_cmpint(map_run(f, "1\n2\n3\n4\n55555\n", &r, args), ==, 3);
        g_assert_true(g_file_get_contents(log, &text, NULL, NULL));
        lines = g_strsplit(text, "\n", -1);
        g_assert_cmpuint(g_strv_length(lines), ==, 7); /* header, 5 jobs, and the empty rest */
        g_assert_cmpstr(lines[0], ==,
                        "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand");
        g_assert_cmpstr(lines[6], ==, "");
        for (guint i = 1; i <= 5; i++) {
                g_auto(GStrv) col = g_strsplit(lines[i], "\t", -1);
                guint64 seq = 0;
                g_autofree char *input = NULL, *exitval = NULL, *command = NULL;

                g_assert_cmpuint(g_strv_length(col), ==, 9);
                g_assert_true(g_ascii_string_to_unsigned(col[0], 10, 1, 5, &seq, NULL));
                g_assert_false(seen[seq]);
                seen[seq] = TRUE;
                input = g_strdup(seq == 5 ? "55555" : col[0]);
                g_assert_cmpstr(col[1], ==, "procpool");
                /* epoch seconds with milliseconds */
                g_assert_nonnull(strchr(col[2], '.'));
                g_assert_cmpuint(strlen(strchr(col[2], '.')), ==, 4);
                g_assert_cmpfloat(g_ascii_strtod(col[2], NULL), >, 1e9);
                g_assert_cmpuint(strlen(strchr(col[3], '.')), ==, 4);
                g_assert_cmpstr(col[4], ==, "0");
                /* the bytes of stdout */
                g_assert_cmpuint(g_ascii_strtoull(col[5], NULL, 10), ==, strlen(input));
                exitval = g_strdup_printf("%d", (int) (g_ascii_strtoull(input, NULL, 10) % 2));
                g_assert_cmpstr(col[6], ==, exitval);
                g_assert_cmpstr(col[7], ==, "0");
                command = g_strdup_printf("sh -c 'printf %%s %s; exit $((%s %% 2))'", input, input);
                g_assert_cmpstr(col[8], ==, command);
        }
        assert_no_jobs(f);
        ctl_result_clear(&r);
        fixture_remove_tree(dir);
}

/* The first failed job cancels the rest, which wait on a gate that never opens: without the halt map would
 * never end. It exits with that job's code. */
static void test_halt_on_error(Fixture *f, gconstpointer data) {
        g_autofree char *gate = fixture_gate_path(f, "never");
        g_autofree char *wait = fixture_gate_wait_sh(gate);
        g_autofree char *script =
                g_strdup_printf("if [ {} = 1 ]; then echo failing; exit 3; fi; %s; echo done-{}", wait);
        const char *args[] = { "map", "--halt-on-error", "--", "sh", "-c", script, NULL };
        g_autofree char *input = numbers(20);
        CtlResult r = {};

        g_assert_cmpint(map_run(f, input, &r, args), ==, 3);
        g_assert_cmpstr(r.out_str, ==, "failing\n");
        /* the cancelled jobs are released as well */
        assert_no_jobs(f);
        ctl_result_clear(&r);
}

/* Without {} the line is the last argument, as GNU parallel and xargs give it. */
static void test_append(Fixture *f, gconstpointer data) {
        const char *args[] = { "map", "--keep-order", "--", "printf", "<%s>", NULL };
        const char *braces[] = { "map", "--keep-order", "--", "printf", "%s\\n", "{}:{}", "x{}y", NULL };
        CtlResult r = {};

        g_assert_cmpint(map_run(f, "a\nb\nc\n", &r, args), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "<a><b><c>");
        /* every {} of every word, and nothing appended */
        g_assert_cmpint(map_run(f, "1\n2", &r, braces), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "1:1\nx1y\n2:2\nx2y\n");
        ctl_result_clear(&r);
}

/* No input, no job: 0, and nothing printed. */
static void test_empty(Fixture *f, gconstpointer data) {
        const char *args[] = { "map", "--", "sh", "-c", "echo ran", NULL };
        CtlResult r = {};

        g_assert_cmpint(map_run(f, "", &r, args), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "");
        g_assert_cmpstr(r.err_str, ==, "");
        g_assert_cmpuint(last_job(f), ==, 0);
        ctl_result_clear(&r);
}

/* A line is one argument whatever it holds: spaces, quotes, $, a backslash, a final line without a newline. */
static void test_quoting(Fixture *f, gconstpointer data) {
        const char *args[] = { "map", "--keep-order", "--", "printf", "[%s]\\n", NULL };
        CtlResult r = {};

        g_assert_cmpint(map_run(f, "it's a \"b  c\" $HOME\n\\n *\n\n  last", &r, args), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "[it's a \"b  c\" $HOME]\n[\\n *]\n[]\n[  last]\n");
        ctl_result_clear(&r);
}

/* A daemon that queues 8 jobs at most: the Submits past that are refused with QueueFull and sent again as
 * jobs end; every line still runs once, in order. */
static void test_queue_full(Fixture *f, gconstpointer data) {
        const char *args[] = { "map", "--keep-order", "--", "echo", NULL };
        g_autofree char *input = numbers(100);
        CtlResult r = {};

        g_assert_cmpuint(fixture_manager_u(f, "MaxQueued"), ==, 8);
        g_assert_cmpint(map_run(f, input, &r, args), ==, 0);
        g_assert_cmpstr(r.out_str, ==, input);
        g_assert_cmpstr(r.err_str, ==, "");
        assert_no_jobs(f);
        ctl_result_clear(&r);
}

/* --json: one object a line; the streams are text, a byte that is not UTF-8 as \udcXX. */
static void test_json(Fixture *f, gconstpointer data) {
        const char *args[] = { "--json",
                               "map",
                               "--keep-order",
                               "--",
                               "sh",
                               "-c",
                               "printf 'o-%s\\377\\n' {}; echo e >&2; exit {}",
                               NULL };
        g_auto(GStrv) lines = NULL;
        CtlResult r = {};

        g_assert_cmpint(map_run(f, "0\n2\n", &r, args), ==, 1);
        g_assert_cmpstr(r.err_str, ==, "");
        lines = g_strsplit(r.out_str, "\n", -1);
        g_assert_cmpuint(g_strv_length(lines), ==, 3);
        g_assert_nonnull(strstr(lines[0], "\"stdout\":\"o-0\\udcff\\n\""));
        for (guint i = 0; i < 2; i++) {
                g_autoptr(JsonNode) n = parse_json(lines[i]);
                JsonObject *o = json_node_get_object(n);

                g_assert_cmpint(json_object_get_int_member(o, "seq"), ==, i + 1);
                g_assert_cmpint(json_object_get_int_member(o, "id"), >, 0);
                g_assert_cmpstr(json_object_get_string_member(o, "input"), ==, i == 0 ? "0" : "2");
                g_assert_cmpstr(json_object_get_string_member(o, "state"), ==, "exited");
                g_assert_cmpint(json_object_get_int_member(o, "returncode"), ==, i * 2);
                g_assert_cmpstr(json_object_get_string_member(o, "stderr"), ==, "e\n");
        }
        assert_no_jobs(f);
        ctl_result_clear(&r);
}

/* SIGINT, as Ctrl-C sends it, cancels the jobs map submitted (they wait on a gate that never opens), and
 * map exits 130 once they have ended and been released; SIGTERM likewise, 143. */
static void check_signal(Fixture *f, int sig) {
        g_autofree char *started = fixture_gate_path(f, "started-1");
        g_autofree char *never = fixture_gate_path(f, "never");
        g_autofree char *wait = fixture_gate_wait_sh(never);
        g_autofree char *dir = g_path_get_dirname(started);
        g_autofree char *script = g_strdup_printf("touch %s/started-{}; %s", dir, wait);
        g_autofree char *input_path = g_build_filename(dir, "input", NULL);
        const char *args[] = { "map", "--", "sh", "-c", script, NULL };
        g_autoptr(GPtrArray) argv = ctl_argv(f->address, args);
        g_autoptr(GSubprocessLauncher) l = ctl_launcher(G_SUBPROCESS_FLAGS_STDOUT_SILENCE, NULL, NULL);
        g_autoptr(GSubprocess) p = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_true(g_file_set_contents(input_path, "1\n2\n3\n4\n5\n", -1, NULL));
        g_subprocess_launcher_set_stdin_file_path(l, input_path);
        p = g_subprocess_launcher_spawnv(l, (const char *const *) argv->pdata, &error);
        g_assert_no_error(error);
        g_assert_true(fixture_wait_for_file(started));
        g_subprocess_send_signal(p, sig);
        g_assert_true(g_subprocess_wait(p, NULL, &error));
        g_assert_no_error(error);
        g_assert_cmpint(wait_status_of(p), ==, 128 + sig);
        assert_no_jobs(f);
        g_assert_no_errno(g_unlink(started));
}

static void test_signal(Fixture *f, gconstpointer data) {
        check_signal(f, SIGINT);
        check_signal(f, SIGTERM);
}

/* The pool option reaches the daemon, which names a pool it does not know; and map's options are map's. */
static void test_options(Fixture *f, gconstpointer data) {
        const char *no_pool[] = { "map", "--pool=nosuchpool", "--", "true", NULL };
        const char *env[] = { "map", "--keep-order",      "-E", "GREETING=hi", "--", "sh",
                              "-c",  "echo $GREETING-{}", NULL };
        CtlResult r = {};

        g_assert_cmpint(map_run(f, "a\n", &r, no_pool), ==, 255);
        g_assert_nonnull(strstr(r.err_str, "nosuchpool"));
        g_assert_cmpint(map_run(f, "a\nb\n", &r, env), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "hi-a\nhi-b\n");
        g_assert_cmpint(ctl(f, &r, "list", "--keep-order", NULL), ==, 2);
        g_assert_nonnull(strstr(r.err_str, "--keep-order"));
        g_assert_cmpint(ctl(f, &r, "submit", "--joblog=x", "--", "true", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "map", NULL), ==, 2);
        assert_no_jobs(f);
        ctl_result_clear(&r);
}

/* A daemon that sends signals on the bus only to subscribers. */
static const char *const subscribed_args[] = { "--bus-signals=subscribed", NULL };

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);

#define ADD(name, fn) FIXTURE_ADD("/procpool/cli/map/" name, fixture_setup, NULL, fn)
        ADD("keep-order", test_keep_order);
        ADD("completion-order", test_completion_order);
        FIXTURE_ADD("/procpool/cli/map/subscribed/completion-order", fixture_setup, subscribed_args,
                    test_completion_order);
        ADD("exit-code", test_exit_code);
        ADD("joblog", test_joblog);
        ADD("halt-on-error", test_halt_on_error);
        ADD("append", test_append);
        ADD("empty", test_empty);
        ADD("quoting", test_quoting);
        ADD("json", test_json);
        ADD("signal", test_signal);
        ADD("options", test_options);
#undef ADD
        FIXTURE_ADD("/procpool/cli/map/queue-full", fixture_setup, small_queue, test_queue_full);
        return g_test_run();
}
