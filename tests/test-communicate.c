/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Communicate: input to stdin and both streams back, through the event loop, without deadlocks. */
#include "fixture.h"

static void assert_bytes(GBytes *b, const char *expected) {
        g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b), expected, strlen(expected));
}

static void test_filter(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL, out2 = NULL, err2 = NULL;
        const char *input = "set q=mx\npython.org\nexit\n";
        const char *tr[] = { "tr", "a-z.", "A-Z_", NULL };
        const char *sed[] = { "sed", "-e", "s/^/> /", NULL };
        int rc = -1;

        g_assert_true(fixture_communicate(f, tr, input, strlen(input), NULL, &rc, &out, &err, &error));
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 0);
        assert_bytes(out, "SET Q=MX\nPYTHON_ORG\nEXIT\n");
        assert_bytes(err, "");

        g_assert_true(fixture_communicate(f, sed, input, strlen(input), NULL, &rc, &out2, &err2, &error));
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 0);
        assert_bytes(out2, "> set q=mx\n> python.org\n> exit\n");
}

static void test_both_streams(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        const char *argv[] = { "sh", "-c", "cat; echo to-err >&2; exit 4", NULL };
        int rc = -1;

        g_assert_true(fixture_communicate(f, argv, "in\n", 3, NULL, &rc, &out, &err, &error));
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 4);
        assert_bytes(out, "in\n");
        assert_bytes(err, "to-err\n");
}

static void test_binary(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        const char *argv[] = { "cat", NULL };
        guint8 input[4096];
        int rc = -1;

        /* Every byte value, NULs included, comes back unchanged. */
        for (gsize i = 0; i < sizeof(input); i++)
                input[i] = (guint8) (i * 7 + i / 256);
        g_assert_true(fixture_communicate(f, argv, input, sizeof(input), NULL, &rc, &out, &err, &error));
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 0);
        g_assert_cmpmem(g_bytes_get_data(out, NULL), g_bytes_get_size(out), input, sizeof(input));
}

static void test_empty_input(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        const char *argv[] = { "sh", "-c", "cat; echo eof", NULL };
        int rc = -1;

        /* Empty input is an immediate EOF, not /dev/null nor a stdin left open. */
        g_assert_true(fixture_communicate(f, argv, NULL, 0, NULL, &rc, &out, &err, &error));
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 0);
        assert_bytes(out, "eof\n");
}

#define BIG_STDERR (10U * 1024U * 1024U)
#define BIG_INPUT (1024U * 1024U)
/* More than a pipe takes (pipe-max-size is 1 MiB by default), so that a blocking write would stall. */
#define HUGE_INPUT (4U * 1024U * 1024U)

static void test_stderr_before_stdin(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        /* 10 MiB to stderr before it reads a byte: a daemon that writes the input first, or reads
         * the streams one after the other, deadlocks here. */
        const char *argv[] = { "sh", "-c", "yes abcdefghi | head -c 10485760 >&2; cat", NULL };
        g_autofree guint8 *input = g_malloc(HUGE_INPUT);
        g_autoptr(GVariant) r = NULL, o = NULL, ev = NULL;
        const char *e;
        int rc = -1;

        for (gsize i = 0; i < HUGE_INPUT; i++)
                input[i] = (guint8) (i % 251);
        /* Bounded, so that a deadlock fails the test instead of hanging it. */
        r = g_dbus_connection_call_sync(
                f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                g_variant_new("(^as@ay@a{sv})", argv, fixture_bytes(input, HUGE_INPUT), FIXTURE_NO_OPTIONS),
                NULL, G_DBUS_CALL_FLAGS_NONE, 60000, NULL, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(i@ay@ay)", &rc, &o, &ev);
        out = g_variant_get_data_as_bytes(o);
        err = g_variant_get_data_as_bytes(ev);
        g_assert_cmpint(rc, ==, 0);
        g_assert_cmpmem(g_bytes_get_data(out, NULL), g_bytes_get_size(out), input, HUGE_INPUT);
        g_assert_cmpuint(g_bytes_get_size(err), ==, BIG_STDERR);
        e = g_bytes_get_data(err, NULL);
        for (gsize i = 0; i < BIG_STDERR; i += 4099)
                g_assert_cmpint(e[i], ==, "abcdefghi\n"[i % 10]);
        g_assert_cmpint(e[BIG_STDERR - 1], ==, "abcdefghi\n"[(BIG_STDERR - 1) % 10]);
}

static void test_exit_without_reading(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        const char *argv[] = { "sh", "-c", "echo bye; exit 7", NULL };
        g_autofree guint8 *input = g_malloc0(BIG_INPUT);
        int rc = -1;

        /* The unread 1 MiB neither hangs the job nor turns into a SIGPIPE return code. */
        g_assert_true(fixture_communicate(f, argv, input, BIG_INPUT, NULL, &rc, &out, &err, &error));
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 7);
        assert_bytes(out, "bye\n");
}

static void test_output_limit(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        const char *argv[] = { "seq", "1", "100000000", NULL };
        g_autofree char *state = NULL, *message = NULL;
        int rc = -1;

        /* A stream that passes the limit fails the call, and the job is stopped: seq would
         * otherwise print for a long time. */
        g_assert_false(fixture_communicate(f, argv, NULL, 0,
                                           fixture_options("output-limit", g_variant_new_uint64(100), NULL),
                                           &rc, &out, &err, &error));
        fixture_assert_error(error, "org.procpool.Error.OutputLimit", "100 bytes");
        g_assert_nonnull(strstr(error->message, "output-limit"));
        fixture_job_outcome(f, MANAGER_PATH "/job/1", &state, &rc, &message);
        g_assert_cmpstr(state, ==, "killed");
        g_assert_cmpint(rc, ==, -15);
        g_assert_nonnull(strstr(message, "100 bytes"));
}

static void test_output_limit_exact(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        const char *argv[] = { "printf", "0123456789", NULL };
        int rc = -1;

        /* Exactly the limit is not past it. */
        g_assert_true(fixture_communicate(f, argv, NULL, 0,
                                          fixture_options("output-limit", g_variant_new_uint64(10), NULL),
                                          &rc, &out, &err, &error));
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 0);
        assert_bytes(out, "0123456789");
}

static void test_timeout(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        const char *argv[] = { "sleep", "30", NULL };
        g_autofree char *state = NULL;
        int rc = -1;

        g_assert_false(fixture_communicate(
                f, argv, NULL, 0, fixture_options("timeout-usec", g_variant_new_uint64(200000), NULL), &rc,
                &out, &err, &error));
        fixture_assert_error(error, "org.procpool.Error.TimedOut", NULL);
        fixture_job_outcome(f, MANAGER_PATH "/job/1", &state, &rc, NULL);
        g_assert_cmpstr(state, ==, "timed-out");
        g_assert_cmpint(rc, ==, -15);
}

static void test_background_holds_pipe(Fixture *f, gconstpointer unused) {
        /* The job ends with its main process: a background process that keeps stdout open does not
         * hold the reply back. It holds the pipe until the test lets it go, after the reply, and
         * says when it goes. */
        g_autofree char *gate = fixture_gate_path(f, "release"), *wait_gate = fixture_gate_wait_sh(gate);
        g_autofree char *gone = fixture_gate_path(f, "gone"), *quoted_gone = g_shell_quote(gone);
        g_autofree char *script =
                g_strdup_printf("{ %s; touch %s; } & echo main done; exit 5", wait_gate, quoted_gone);
        const char *argv[] = { "sh", "-c", script, NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, out = NULL, err = NULL;
        int rc = -1;

        /* With per-job cgroups a job lasts until the last process of its tree: another rule. */
        if (fixture_per_job_cgroups(f)) {
                g_test_skip("procpoold runs jobs in per-job cgroups here");
                return;
        }
        /* Bounded, so that a daemon that waits for the pipe fails the test instead of hanging it. */
        r = g_dbus_connection_call_sync(
                f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                g_variant_new("(^as@ay@a{sv})", argv, fixture_bytes("", 0), FIXTURE_NO_OPTIONS), NULL,
                G_DBUS_CALL_FLAGS_NONE, FIXTURE_WAIT_SEC * 1000, NULL, &error);
        fixture_gate_open(gate);
        g_assert_true(fixture_wait_for_file(gone));
        g_assert_no_error(error);
        g_variant_get(r, "(i@ay@ay)", &rc, &out, &err);
        g_assert_cmpint(rc, ==, 5);
        g_assert_cmpmem(g_variant_get_data(out), g_variant_get_size(out), "main done\n", 10);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        FIXTURE_ADD("/procpool/communicate/filter", fixture_setup, NULL, test_filter);
        FIXTURE_ADD("/procpool/communicate/both-streams", fixture_setup, NULL, test_both_streams);
        FIXTURE_ADD("/procpool/communicate/binary", fixture_setup, NULL, test_binary);
        FIXTURE_ADD("/procpool/communicate/empty-input", fixture_setup, NULL, test_empty_input);
        FIXTURE_ADD("/procpool/communicate/stderr-before-stdin", fixture_setup, NULL,
                    test_stderr_before_stdin);
        FIXTURE_ADD("/procpool/communicate/exit-without-reading", fixture_setup, NULL,
                    test_exit_without_reading);
        FIXTURE_ADD("/procpool/communicate/output-limit", fixture_setup, NULL, test_output_limit);
        FIXTURE_ADD("/procpool/communicate/output-limit-exact", fixture_setup, NULL, test_output_limit_exact);
        FIXTURE_ADD("/procpool/communicate/timeout", fixture_setup, NULL, test_timeout);
        FIXTURE_ADD("/procpool/communicate/background-holds-pipe", fixture_setup, NULL,
                    test_background_holds_pipe);
        return g_test_run();
}
