/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The a{sv} options of Submit, Call and Communicate: what each does, and each bad value refused with
 * InvalidArgs naming the key while the daemon goes on serving. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>

#include "fixture.h"

#define INVALID_ARGS "org.freedesktop.DBus.Error.InvalidArgs"

/* Submit, Call and Communicate all refuse options with InvalidArgs mentioning text; no job is made. */
static void assert_refused(Fixture *f, GVariant *options, const char *text) {
        const char *argv[] = { "true", NULL };
        g_autoptr(GVariant) o = g_variant_ref_sink(options);
        g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL;
        g_autoptr(GVariant) r1 = NULL, r2 = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        int rc;

        r1 = fixture_call(f, "Submit", g_variant_new("(^as@a{sv})", argv, o), &e1);
        g_assert_null(r1);
        fixture_assert_error(e1, INVALID_ARGS, text);
        g_assert_cmpint(fixture_call_argv(f, argv, o, &e2), ==, -1000);
        fixture_assert_error(e2, INVALID_ARGS, text);
        g_assert_false(fixture_communicate(f, argv, NULL, 0, o, &rc, &out, &err, &e3));
        fixture_assert_error(e3, INVALID_ARGS, text);
}

static void assert_still_serving(Fixture *f) {
        const char *argv[] = { "sh", "-c", "exit 9", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, list = NULL;

        g_assert_cmpint(fixture_call_argv(f, argv, NULL, &error), ==, 9);
        g_assert_no_error(error);
        /* Refused requests made no job. */
        r = fixture_call(f, "ListJobs", NULL, &error);
        g_assert_no_error(error);
        list = g_variant_get_child_value(r, 0);
        g_assert_cmpuint(g_variant_n_children(list), ==, 1);
}

/* ---- bad input ---------------------------------------------------------------------------------- */

static void test_unknown_key(Fixture *f, gconstpointer unused) {
        assert_refused(f, fixture_options("frobnicate", g_variant_new_uint32(1), NULL), "'frobnicate'");
        assert_refused(
                f,
                fixture_options("label", g_variant_new_string("x"), "CWD", g_variant_new_string("/"), NULL),
                "'CWD'");
        assert_still_serving(f);
}

static void test_wrong_type(Fixture *f, gconstpointer unused) {
        static const struct {
                const char *key;
                const char *wrong; /* GVariant text of a value of another type */
        } cases[] = {
                { "cwd", "uint32 1" },
                { "environment", "'A=1'" },
                { "clear-environment", "'true'" },
                { "timeout-usec", "int32 5" },
                { "stop-timeout-usec", "uint32 5" },
                { "stdin", "int32 0" },
                { "stdout", "'1'" },
                { "stderr", "uint32 2" },
                { "output-limit", "int64 10" },
                { "priority", "uint32 1" },
                { "label", "['a']" },
                { "cancel-on-disconnect", "int32 1" },
        };

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *quoted = g_strdup_printf("'%s'", cases[i].key);
                GVariant *v = g_variant_parse(NULL, cases[i].wrong, NULL, NULL, NULL);
                g_assert_nonnull(v);
                g_test_message("key %s", cases[i].key);
                if (g_str_equal(cases[i].key, "stdin")) {
                        /* Communicate refuses stdin whatever its type; the others name the type. */
                        const char *argv[] = { "true", NULL };
                        g_autoptr(GError) error = NULL;
                        g_autoptr(GVariant) r = fixture_call(
                                f, "Submit",
                                g_variant_new("(^as@a{sv})", argv, fixture_options(cases[i].key, v, NULL)),
                                &error);
                        g_assert_null(r);
                        fixture_assert_error(error, INVALID_ARGS, quoted);
                        continue;
                }
                assert_refused(f, fixture_options(cases[i].key, v, NULL), quoted);
        }
        assert_still_serving(f);
}

static void test_bad_cwd(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "true", NULL };
        g_autoptr(GError) e1 = NULL, e2 = NULL;

        assert_refused(f, fixture_options("cwd", g_variant_new_string("tmp"), NULL), "'cwd'");
        assert_refused(f, fixture_options("cwd", g_variant_new_string(""), NULL), "'cwd'");
        assert_still_serving(f);

        /* Absolute but not enterable: the job fails at spawn. */
        g_assert_cmpint(
                fixture_call_argv(f, argv,
                                  fixture_options("cwd", g_variant_new_string("/nonexistent/procpool"), NULL),
                                  &e1),
                ==, -1000);
        fixture_assert_error(
                e1, "org.procpool.Error.SpawnFailed",
                "Failed to change directory to '/nonexistent/procpool': No such file or directory");
        g_assert_cmpint(fixture_call_argv(f, argv,
                                          fixture_options("cwd", g_variant_new_string("/dev/null"), NULL),
                                          &e2),
                        ==, -1000);
        fixture_assert_error(e2, "org.procpool.Error.SpawnFailed", "Not a directory");
        fixture_assert_outcome(f, MANAGER_PATH "/job/2", "failed", 0);
}

static void test_bad_environment(Fixture *f, gconstpointer unused) {
        const char *no_eq[] = { "A=1", "NOEQUALS", NULL };
        const char *empty_name[] = { "=value", NULL };
        const char *twice[] = { "A=1", "B=2", "A=3", NULL };

        assert_refused(f, fixture_options("environment", g_variant_new_strv(no_eq, -1), NULL), "'NOEQUALS'");
        assert_refused(f, fixture_options("environment", g_variant_new_strv(empty_name, -1), NULL),
                       "empty name");
        assert_refused(f, fixture_options("environment", g_variant_new_strv(twice, -1), NULL), "'A'");
        assert_refused(f, fixture_options("environment", g_variant_new_strv(twice, -1), NULL),
                       "'environment'");
        assert_still_serving(f);
}

/* ---- cwd, environment ------------------------------------------------------------------------------ */

static void test_cwd(Fixture *f, gconstpointer unused) {
        const char *pwd[] = { "pwd", NULL };
        g_autofree char *here = g_get_current_dir();
        g_autofree char *expected = g_strdup_printf("%s\n", here);
        g_autofree char *a =
                fixture_run_output(f, pwd, fixture_options("cwd", g_variant_new_string("/tmp"), NULL), 0);
        g_autofree char *b = fixture_run_output(f, pwd, NULL, 0);

        g_assert_cmpstr(a, ==, "/tmp\n");
        /* By default the daemon's own working directory, which it inherited from the test. */
        g_assert_cmpstr(b, ==, expected);
}

static void test_environment(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sh", "-c",
                               "printf '%s|%s|%s' \"$PP_NEW\" \"$PROCPOOL_SOURCE_ROOT\" \"$HOME\"", NULL };
        const char *env[] = { "PP_NEW=a b=c", "HOME=/procpool-home", NULL };
        g_autofree char *expected =
                g_strdup_printf("a b=c|%s|/procpool-home", g_getenv("PROCPOOL_SOURCE_ROOT"));
        g_autofree char *expected_default =
                g_strdup_printf("|%s|%s", g_getenv("PROCPOOL_SOURCE_ROOT"), g_getenv("HOME") ?: "");
        g_autofree char *out = fixture_run_output(
                f, argv, fixture_options("environment", g_variant_new_strv(env, -1), NULL), 0);
        g_autofree char *plain = fixture_run_output(f, argv, NULL, 0);

        g_assert_nonnull(g_getenv("PROCPOOL_SOURCE_ROOT")); /* set by meson test, inherited by procpoold */
        /* Set over the daemon's environment: new and overridden entries, the rest passes through. */
        g_assert_cmpstr(out, ==, expected);
        g_assert_cmpstr(plain, ==, expected_default);
}

static void test_clear_environment(Fixture *f, gconstpointer unused) {
        const char *env_argv[] = { "env", NULL };
        const char *only[] = { "ONLY=1", NULL };
        g_autofree char *a =
                fixture_run_output(f, env_argv,
                                   fixture_options("clear-environment", g_variant_new_boolean(TRUE),
                                                   "environment", g_variant_new_strv(only, -1), NULL),
                                   0);
        g_autofree char *b = fixture_run_output(
                f, env_argv, fixture_options("clear-environment", g_variant_new_boolean(TRUE), NULL), 0);
        g_autofree char *c = fixture_run_output(
                f, env_argv, fixture_options("clear-environment", g_variant_new_boolean(FALSE), NULL), 0);

        /* Nothing but the given entries; 'env' is still found, through the default PATH. */
        g_assert_cmpstr(a, ==, "ONLY=1\n");
        g_assert_cmpstr(b, ==, "");
        g_assert_nonnull(strstr(c, "PROCPOOL_SOURCE_ROOT="));
}

/* ---- timeouts ----------------------------------------------------------------------------------- */

static void test_timeout(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sleep", "30", NULL };
        const char *quick[] = { "sh", "-c", "exit 4", NULL };
        g_autoptr(GError) error = NULL;
        g_autofree char *path = NULL, *message = NULL, *state = NULL;
        int rc;

        g_assert_cmpint(fixture_call_argv(f, argv,
                                          fixture_options("timeout-usec", g_variant_new_uint64(200000), NULL),
                                          &error),
                        ==, -1000);
        fixture_assert_error(error, "org.procpool.Error.TimedOut", NULL);
        fixture_assert_outcome(f, MANAGER_PATH "/job/1", "timed-out", -15);

        path = fixture_submit(f, argv, fixture_options("timeout-usec", g_variant_new_uint64(100000), NULL));
        g_assert_true(fixture_wait_state(f, path, "timed-out"));
        fixture_job_outcome(f, path, &state, &rc, &message);
        g_assert_cmpint(rc, ==, -15);
        g_assert_nonnull(strstr(message, "100 ms"));

        /* A job that ends in time is not touched. */
        g_clear_error(&error);
        g_assert_cmpint(
                fixture_call_argv(f, quick,
                                  fixture_options("timeout-usec", g_variant_new_uint64(30000000), NULL),
                                  &error),
                ==, 4);
        g_assert_no_error(error);
}

static void test_stop_timeout(Fixture *f, gconstpointer unused) {
        /* Ignores SIGTERM (and so does the helper it becomes): only the SIGKILL after the grace ends it.
         * The helper prints "ready" and says when procpoold has read it. */
        g_autofree char *gate = fixture_gate_path(f, "ready"), *quoted_gate = g_shell_quote(gate);
        g_autofree char *quoted_helper = g_shell_quote(fixture_helper());
        g_autofree char *script =
                g_strdup_printf("trap '' TERM; exec %s drain 'ready\n' %s", quoted_helper, quoted_gate);
        const char *argv[] = { "sh", "-c", script, NULL };
        const char *quick_trap[] = { "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done", NULL };
        g_autofree char *path = fixture_submit(
                f, argv, fixture_options("stop-timeout-usec", g_variant_new_uint64(300000), NULL));
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, out = NULL, err = NULL;

        g_assert_true(fixture_wait_for_file(gate));
        r = fixture_job_call(f, path, "GetOutput", NULL, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(@ay@ay)", &out, &err);
        g_assert_cmpmem(g_variant_get_data(out), g_variant_get_size(out), "ready\n", 6);
        fixture_job_call_ok(f, path, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, path, "cancelled"));
        fixture_assert_outcome(f, path, "cancelled", -9);

        /* The same through a timeout. A timeout is a clock of the daemon's, so this job has it to get
         * its trap set: 2 s, where a fresh shell needs milliseconds. */
        g_assert_cmpint(
                fixture_call_argv(f, quick_trap,
                                  fixture_options("timeout-usec", g_variant_new_uint64(2000000),
                                                  "stop-timeout-usec", g_variant_new_uint64(200000), NULL),
                                  &error),
                ==, -1000);
        fixture_assert_error(error, "org.procpool.Error.TimedOut", NULL);
        fixture_assert_outcome(f, MANAGER_PATH "/job/2", "timed-out", -9);
}

/* ---- fds ------------------------------------------------------------------------------------------ */

static GVariant *submit_with_fds(Fixture *f, const char *const *argv, const char *const *keys, const int *fds,
                                 GError **error) {
        g_autoptr(GUnixFDList) list = g_unix_fd_list_new();
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        for (int i = 0; keys[i]; i++) {
                int idx = g_unix_fd_list_append(list, fds[i], NULL);
                g_assert_cmpint(idx, >=, 0);
                g_variant_builder_add(&b, "{sv}", keys[i], g_variant_new_handle(idx));
        }
        return g_dbus_connection_call_with_unix_fd_list_sync(
                f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Submit",
                g_variant_new("(^as@a{sv})", argv, g_variant_builder_end(&b)), NULL, G_DBUS_CALL_FLAGS_NONE,
                20000, list, NULL, NULL, error);
}

static void test_stdio_fds(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sh", "-c", "tr a-z A-Z; echo err >&2", NULL };
        const char *keys[] = { "stdin", "stdout", NULL };
        int in[2], out[2];
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, got = NULL, o = NULL, e = NULL;
        g_autofree char *data = NULL;
        const char *path;

        g_assert_no_errno(pipe2(in, O_CLOEXEC));
        g_assert_no_errno(pipe2(out, O_CLOEXEC));
        r = submit_with_fds(f, argv, keys, (int[]) { in[0], out[1] }, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(&o)", &path);
        /* Only the job holds the other ends now. */
        close(in[0]);
        close(out[1]);
        g_assert_cmpint(write(in[1], "bytes flow\n", 11), ==, 11);
        close(in[1]);
        data = fixture_read_to_end(out[0]);
        close(out[0]);
        g_assert_cmpstr(data, ==, "BYTES FLOW\n");
        g_assert_true(fixture_wait_state(f, path, "exited"));

        /* A stream given as an fd is not captured; the other one is. */
        got = fixture_job_call(f, path, "GetOutput", NULL, &error);
        g_assert_no_error(error);
        g_variant_get(got, "(@ay@ay)", &o, &e);
        g_assert_cmpuint(g_variant_get_size(o), ==, 0);
        g_assert_cmpmem(g_variant_get_data(e), g_variant_get_size(e), "err\n", 4);
}

static void test_stderr_file(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sh", "-c", "echo to-file >&2; echo captured", NULL };
        const char *keys[] = { "stderr", NULL };
        g_autofree char *name = NULL, *contents = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        const char *path;
        int fd = g_file_open_tmp("procpool-stderr-XXXXXX", &name, &error);

        g_assert_no_error(error);
        r = submit_with_fds(f, argv, keys, (int[]) { fd }, &error);
        g_assert_no_error(error);
        close(fd);
        g_variant_get(r, "(&o)", &path);
        g_assert_true(fixture_wait_state(f, path, "exited"));
        g_assert_true(g_file_get_contents(name, &contents, NULL, &error));
        g_assert_cmpstr(contents, ==, "to-file\n");
        (void) g_unlink(name);
        g_autoptr(GVariant) got = fixture_job_call(f, path, "GetOutput", NULL, &error), o = NULL, e = NULL;
        g_variant_get(got, "(@ay@ay)", &o, &e);
        g_assert_cmpmem(g_variant_get_data(o), g_variant_get_size(o), "captured\n", 9);
        g_assert_cmpuint(g_variant_get_size(e), ==, 0);
}

static void test_fd_directory(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "true", NULL };
        const char *const names[] = { "stdin", "stdout", "stderr" };
        int dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        g_assert_cmpint(dir, >=, 0);
        for (int i = 0; i < 3; i++) {
                const char *keys[] = { names[i], NULL };
                g_autofree char *quoted = g_strdup_printf("'%s'", names[i]);
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) r = submit_with_fds(f, argv, keys, (int[]) { dir }, &error);
                g_assert_null(r);
                fixture_assert_error(error, INVALID_ARGS, quoted);
                g_assert_nonnull(strstr(error->message, "directory"));
        }
        close(dir);
        assert_still_serving(f);
}

static void test_fd_not_sent(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "true", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;

        /* A handle that names no fd of the message: refused, and not a stall. */
        r = g_dbus_connection_call_with_unix_fd_list_sync(
                f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Submit",
                g_variant_new("(^as@a{sv})", argv, fixture_options("stdout", g_variant_new_handle(3), NULL)),
                NULL, G_DBUS_CALL_FLAGS_NONE, 10000, NULL, NULL, NULL, &error);
        g_assert_null(r);
        fixture_assert_error(error, INVALID_ARGS, "'stdout'");
        assert_still_serving(f);
}

static void test_communicate_refuses_stdin(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "cat", NULL };
        g_autoptr(GUnixFDList) list = g_unix_fd_list_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        g_assert_cmpint(g_unix_fd_list_append(list, fd, NULL), ==, 0);
        close(fd);
        r = g_dbus_connection_call_with_unix_fd_list_sync(
                f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                g_variant_new("(^as@ay@a{sv})", argv, fixture_bytes("x", 1),
                              fixture_options("stdin", g_variant_new_handle(0), NULL)),
                NULL, G_DBUS_CALL_FLAGS_NONE, 10000, list, NULL, NULL, &error);
        g_assert_null(r);
        fixture_assert_error(error, INVALID_ARGS, "'stdin'");
        assert_still_serving(f);
}

/* ---- output-limit, priority, label ------------------------------------------------------------------ */

static void test_output_limit_submit(Fixture *f, gconstpointer unused) {
        /* Each seq must succeed (no SIGPIPE) for the shell to reach its own exit 3. */
        const char *argv[] = { "sh", "-c", "seq 1 200000 && seq 1 200000 >&2 && exit 3", NULL };
        g_autofree char *path =
                fixture_submit(f, argv, fixture_options("output-limit", g_variant_new_uint64(10), NULL));
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, o = NULL, e = NULL;

        /* The first bytes are kept, the rest drained: the job runs to its own end, no SIGPIPE. */
        g_assert_true(fixture_wait_state(f, path, "exited"));
        fixture_assert_outcome(f, path, "exited", 3);
        r = fixture_job_call(f, path, "GetOutput", NULL, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(@ay@ay)", &o, &e);
        g_assert_cmpmem(g_variant_get_data(o), g_variant_get_size(o), "1\n2\n3\n4\n5\n", 10);
        g_assert_cmpmem(g_variant_get_data(e), g_variant_get_size(e), "1\n2\n3\n4\n5\n", 10);

        /* Call as well: the return code, never OutputLimit. */
        g_assert_cmpint(fixture_call_argv(f, argv,
                                          fixture_options("output-limit", g_variant_new_uint64(1), NULL),
                                          &error),
                        ==, 3);
        g_assert_no_error(error);
}

static const char *const daemon_limit[] = { "--output-limit=16", NULL };

static void test_output_limit_default(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "seq", "1", "100000", NULL };
        g_autofree char *path = fixture_submit(f, argv, NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, o = NULL, e = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        int rc;

        /* --output-limit is the default; the option overrides it. */
        g_assert_true(fixture_wait_state(f, path, "exited"));
        r = fixture_job_call(f, path, "GetOutput", NULL, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(@ay@ay)", &o, &e);
        g_assert_cmpmem(g_variant_get_data(o), g_variant_get_size(o), "1\n2\n3\n4\n5\n6\n7\n8\n", 16);

        g_assert_false(fixture_communicate(f, argv, NULL, 0, NULL, &rc, &out, &err, &error));
        fixture_assert_error(error, "org.procpool.Error.OutputLimit", "16 bytes");
        g_clear_error(&error);
        const char *small[] = { "seq", "1", "20", NULL };
        g_assert_true(fixture_communicate(f, small, NULL, 0,
                                          fixture_options("output-limit", g_variant_new_uint64(1000), NULL),
                                          &rc, &out, &err, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(g_bytes_get_size(out), ==, 51);
}

static void test_priority(Fixture *f, gconstpointer unused) {
        static const int prios[] = { 0, 5, -1, 5, 10, 0, G_MININT32, G_MAXINT32 };
        g_autofree char *log = fixture_gate_path(f, "order");
        const char *blocker_argv[] = { "sleep", "30", NULL };
        g_autofree char *blocker = fixture_submit(f, blocker_argv, NULL);
        g_autofree char *order = NULL;
        g_autoptr(GError) error = NULL;
        char *paths[G_N_ELEMENTS(prios)];

        /* One worker, held by the blocker: everything else queues, then runs highest first, FIFO
         * within one priority. */
        g_assert_true(fixture_wait_state(f, blocker, "running"));
        for (gsize i = 0; i < G_N_ELEMENTS(prios); i++) {
                g_autofree char *script = g_strdup_printf("echo %zu >> '%s'", i, log);
                const char *argv[] = { "sh", "-c", script, NULL };
                paths[i] = fixture_submit(f, argv,
                                          fixture_options("priority", g_variant_new_int32(prios[i]), NULL));
        }
        fixture_job_call_ok(f, blocker, "Cancel", NULL);
        for (gsize i = 0; i < G_N_ELEMENTS(prios); i++) {
                g_assert_true(fixture_wait_state(f, paths[i], "exited"));
                g_free(paths[i]);
        }
        g_assert_true(g_file_get_contents(log, &order, NULL, &error));
        g_assert_cmpstr(order, ==, "7\n4\n1\n3\n0\n5\n2\n6\n");
}

static const char *const pool1[] = { "--pool-size=1", NULL };

static void test_label(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "true", NULL };
        g_autofree char *a =
                fixture_submit(f, argv, fixture_options("label", g_variant_new_string("nightly ✓"), NULL));
        g_autofree char *b = fixture_submit(f, argv, NULL);
        g_autoptr(GVariant) la = fixture_get_property(f, a, JOB_IFACE, "Label");
        g_autoptr(GVariant) lb = fixture_get_property(f, b, JOB_IFACE, "Label");

        g_assert_cmpstr(g_variant_get_string(la, NULL), ==, "nightly ✓");
        g_assert_cmpstr(g_variant_get_string(lb, NULL), ==, "");
}

/* ---- cancel-on-disconnect ---------------------------------------------------------------------------- */

static char *other_submit(GDBusConnection *c, const char *const *argv, GVariant *options) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r =
                fixture_call_raw(c, MANAGER_PATH, MANAGER_IFACE, "Submit",
                                 g_variant_new("(^as@a{sv})", argv, options ?: FIXTURE_NO_OPTIONS), &error);
        char *path;

        g_assert_no_error(error);
        g_variant_get(r, "(o)", &path);
        return path;
}

static void test_cancel_on_disconnect_call(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sleep", "30", NULL };
        g_autoptr(GDBusConnection) other = fixture_connect_other(f);
        const char *path = MANAGER_PATH "/job/1";
        g_autoptr(GVariant) pid = NULL;
        g_autofree char *message = NULL, *state = NULL;
        int rc;

        g_dbus_connection_call(other, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call",
                               g_variant_new("(^as@a{sv})", argv, FIXTURE_NO_OPTIONS), NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, NULL, NULL);
        g_assert_true(fixture_wait_state(f, path, "running"));
        pid = fixture_get_property(f, path, JOB_IFACE, "Pid");
        fixture_disconnect(f, other);
        g_assert_true(fixture_wait_state(f, path, "cancelled"));
        fixture_job_outcome(f, path, &state, &rc, &message);
        g_assert_cmpint(rc, ==, -15);
        g_assert_cmpint(kill(g_variant_get_uint32(pid), 0), ==, -1);
        g_assert_cmpint(errno, ==, ESRCH);
}

static void test_cancel_on_disconnect_submit(Fixture *f, gconstpointer unused) {
        g_autofree char *gate = fixture_gate_path(f, "go"), *wait_gate = fixture_gate_wait_sh(gate);
        g_autofree char *script = g_strdup_printf("%s; exit 3", wait_gate);
        const char *survivor[] = { "sh", "-c", script, NULL };
        const char *victim[] = { "sleep", "30", NULL };
        g_autoptr(GDBusConnection) other = fixture_connect_other(f);
        g_autofree char *a = other_submit(other, survivor, NULL);
        g_autofree char *b = other_submit(
                other, victim, fixture_options("cancel-on-disconnect", g_variant_new_boolean(TRUE), NULL));
        g_autofree char *c = other_submit(
                other, survivor, fixture_options("cancel-on-disconnect", g_variant_new_boolean(FALSE), NULL));

        g_assert_true(fixture_wait_state(f, a, "running"));
        g_assert_true(fixture_wait_state(f, b, "running"));
        fixture_disconnect(f, other);
        /* Submit's default is to outlive the caller; asked for, it is cancelled like a Call. */
        g_assert_true(fixture_wait_state(f, b, "cancelled"));
        fixture_assert_outcome(f, a, "running", 0);
        fixture_gate_open(gate);
        g_assert_true(fixture_wait_state(f, a, "exited"));
        fixture_assert_outcome(f, a, "exited", 3);
        g_assert_true(fixture_wait_state(f, c, "exited"));
        fixture_assert_outcome(f, c, "exited", 3);
}

static void test_call_survives_disconnect(Fixture *f, gconstpointer unused) {
        g_autofree char *gate = fixture_gate_path(f, "go"), *wait_gate = fixture_gate_wait_sh(gate);
        g_autofree char *script = g_strdup_printf("%s; exit 3", wait_gate);
        const char *argv[] = { "sh", "-c", script, NULL };
        g_autoptr(GDBusConnection) other = fixture_connect_other(f);
        const char *path = MANAGER_PATH "/job/1";

        g_dbus_connection_call(
                other, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call",
                g_variant_new("(^as@a{sv})", argv,
                              fixture_options("cancel-on-disconnect", g_variant_new_boolean(FALSE), NULL)),
                NULL, G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, NULL, NULL);
        g_assert_true(g_dbus_connection_flush_sync(other, NULL, NULL));
        g_assert_true(fixture_wait_state(f, path, "running"));
        fixture_disconnect(f, other);
        fixture_assert_outcome(f, path, "running", 0);
        fixture_gate_open(gate);
        g_assert_true(fixture_wait_state(f, path, "exited"));
        fixture_assert_outcome(f, path, "exited", 3);
}

static void test_disconnect_queued(Fixture *f, gconstpointer unused) {
        g_autofree char *marker = fixture_gate_path(f, "ran");
        const char *touch[] = { "touch", marker, NULL };
        const char *sleeper[] = { "sleep", "30", NULL };
        const char *t[] = { "true", NULL };
        g_autofree char *blocker = fixture_submit(f, sleeper, NULL);
        g_autoptr(GDBusConnection) other = fixture_connect_other(f);
        const char *path = MANAGER_PATH "/job/2";
        g_autoptr(GError) error = NULL;

        /* A Call still in the queue when its caller leaves is cancelled there and never runs. */
        g_assert_true(fixture_wait_state(f, blocker, "running"));
        g_dbus_connection_call(other, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call",
                               g_variant_new("(^as@a{sv})", touch, FIXTURE_NO_OPTIONS), NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, NULL, NULL);
        g_assert_true(g_dbus_connection_flush_sync(other, NULL, NULL));
        g_assert_true(fixture_wait_state(f, path, "queued"));
        fixture_disconnect(f, other);
        g_assert_true(fixture_wait_state(f, path, "cancelled"));
        fixture_assert_outcome(f, path, "cancelled", 0);
        fixture_job_call_ok(f, blocker, "Cancel", NULL);
        g_assert_cmpint(fixture_call_argv(f, t, NULL, &error), ==, 0);
        g_assert_no_error(error);
        g_assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
}

static void test_disconnect_at_once(Fixture *f, gconstpointer unused) {
        const char *sleeper[] = { "sleep", "30", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        g_autoptr(GVariantIter) it = NULL;
        const char *state, *path;

        /* Callers that leave right after sending, maybe before procpoold watches them at all: a job
         * made for them is cancelled all the same (or none is made, if they left before procpoold
         * could learn who they were). */
        for (int i = 0; i < 5; i++) {
                g_autoptr(GDBusConnection) other = fixture_connect_other(f);
                g_dbus_connection_call(other, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call",
                                       g_variant_new("(^as@a{sv})", sleeper, FIXTURE_NO_OPTIONS), NULL,
                                       G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, NULL, NULL);
                g_assert_true(g_dbus_connection_flush_sync(other, NULL, NULL));
                fixture_disconnect(f, other);
        }
        /* Every job made for them ends, and ends cancelled. */
        r = fixture_call(f, "ListJobs", NULL, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(a(tosi))", &it);
        while (g_variant_iter_next(it, "(t&o&si)", NULL, &path, NULL, NULL))
                if (!fixture_wait_finished(f, path))
                        g_error("jobs of callers that left are still running");
        g_clear_pointer(&it, g_variant_iter_free);
        g_clear_pointer(&r, g_variant_unref);
        r = fixture_call(f, "ListJobs", NULL, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(a(tosi))", &it);
        while (g_variant_iter_next(it, "(t&o&si)", NULL, NULL, &state, NULL))
                g_assert_cmpstr(state, ==, "cancelled");
}

static void test_communicate_stdout_fd(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sh", "-c", "cat; echo err >&2", NULL };
        g_autoptr(GUnixFDList) list = g_unix_fd_list_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, o = NULL, e = NULL;
        g_autofree char *data = NULL;
        int p[2], rc;

        g_assert_no_errno(pipe2(p, O_CLOEXEC));
        g_assert_cmpint(g_unix_fd_list_append(list, p[1], NULL), ==, 0);
        close(p[1]);
        r = g_dbus_connection_call_with_unix_fd_list_sync(
                f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                g_variant_new("(^as@ay@a{sv})", argv, fixture_bytes("abc", 3),
                              fixture_options("stdout", g_variant_new_handle(0), NULL)),
                NULL, G_DBUS_CALL_FLAGS_NONE, 20000, list, NULL, NULL, &error);
        g_assert_no_error(error);
        g_clear_object(&list);
        /* stdout went to the fd, so the reply's stdout is empty; stderr was captured. */
        g_variant_get(r, "(i@ay@ay)", &rc, &o, &e);
        g_assert_cmpint(rc, ==, 0);
        g_assert_cmpuint(g_variant_get_size(o), ==, 0);
        g_assert_cmpmem(g_variant_get_data(e), g_variant_get_size(e), "err\n", 4);
        data = fixture_read_to_end(p[0]);
        close(p[0]);
        g_assert_cmpstr(data, ==, "abc");
}

static void test_output_limit_zero(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sh", "-c", "seq 1 1000; exit 2", NULL };
        g_autofree char *path =
                fixture_submit(f, argv, fixture_options("output-limit", g_variant_new_uint64(0), NULL));
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, o = NULL, e = NULL;

        g_assert_true(fixture_wait_state(f, path, "exited"));
        fixture_assert_outcome(f, path, "exited", 2);
        r = fixture_job_call(f, path, "GetOutput", NULL, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(@ay@ay)", &o, &e);
        g_assert_cmpuint(g_variant_get_size(o), ==, 0);
}

static void test_memory_max(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "true", NULL };
        g_autoptr(GError) error = NULL;

        assert_refused(f, fixture_options("memory-max", g_variant_new_uint64(0), NULL), "'memory-max'");
        assert_refused(f, fixture_options("memory-max", g_variant_new_uint32(1 << 30), NULL), "'memory-max'");
        if (fixture_per_job_cgroups(f)) {
                g_test_skip("procpoold runs jobs in per-job cgroups here");
                return;
        }
        /* Without per-job cgroups there is nothing to put the limit on. */
        g_assert_cmpint(
                fixture_call_argv(f, argv,
                                  fixture_options("memory-max", g_variant_new_uint64(1ULL << 30), NULL),
                                  &error),
                ==, -1000);
        fixture_assert_error(error, "org.freedesktop.DBus.Error.NotSupported", NULL);
        assert_still_serving(f);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        FIXTURE_ADD("/procpool/options/unknown-key", fixture_setup, NULL, test_unknown_key);
        FIXTURE_ADD("/procpool/options/wrong-type", fixture_setup, NULL, test_wrong_type);
        FIXTURE_ADD("/procpool/options/bad-cwd", fixture_setup, NULL, test_bad_cwd);
        FIXTURE_ADD("/procpool/options/bad-environment", fixture_setup, NULL, test_bad_environment);
        FIXTURE_ADD("/procpool/options/cwd", fixture_setup, NULL, test_cwd);
        FIXTURE_ADD("/procpool/options/environment", fixture_setup, NULL, test_environment);
        FIXTURE_ADD("/procpool/options/clear-environment", fixture_setup, NULL, test_clear_environment);
        FIXTURE_ADD("/procpool/options/timeout", fixture_setup, NULL, test_timeout);
        FIXTURE_ADD("/procpool/options/stop-timeout", fixture_setup, NULL, test_stop_timeout);
        FIXTURE_ADD("/procpool/options/stdio-fds", fixture_setup, NULL, test_stdio_fds);
        FIXTURE_ADD("/procpool/options/stderr-file", fixture_setup, NULL, test_stderr_file);
        FIXTURE_ADD("/procpool/options/fd-directory", fixture_setup, NULL, test_fd_directory);
        FIXTURE_ADD("/procpool/options/fd-not-sent", fixture_setup, NULL, test_fd_not_sent);
        FIXTURE_ADD("/procpool/options/communicate-refuses-stdin", fixture_setup, NULL,
                    test_communicate_refuses_stdin);
        FIXTURE_ADD("/procpool/options/output-limit-submit", fixture_setup, NULL, test_output_limit_submit);
        FIXTURE_ADD("/procpool/options/output-limit-default", fixture_setup, daemon_limit,
                    test_output_limit_default);
        FIXTURE_ADD("/procpool/options/priority", fixture_setup, pool1, test_priority);
        FIXTURE_ADD("/procpool/options/label", fixture_setup, NULL, test_label);
        FIXTURE_ADD("/procpool/options/cancel-on-disconnect-call", fixture_setup, NULL,
                    test_cancel_on_disconnect_call);
        FIXTURE_ADD("/procpool/options/cancel-on-disconnect-submit", fixture_setup, NULL,
                    test_cancel_on_disconnect_submit);
        FIXTURE_ADD("/procpool/options/call-survives-disconnect", fixture_setup, NULL,
                    test_call_survives_disconnect);
        FIXTURE_ADD("/procpool/options/cancel-on-disconnect-queued", fixture_setup, pool1,
                    test_disconnect_queued);
        FIXTURE_ADD("/procpool/options/cancel-on-disconnect-at-once", fixture_setup, NULL,
                    test_disconnect_at_once);
        FIXTURE_ADD("/procpool/options/communicate-stdout-fd", fixture_setup, NULL,
                    test_communicate_stdout_fd);
        FIXTURE_ADD("/procpool/options/output-limit-zero", fixture_setup, NULL, test_output_limit_zero);
        FIXTURE_ADD("/procpool/options/memory-max", fixture_setup, NULL, test_memory_max);
        return g_test_run();
}
