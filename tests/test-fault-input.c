/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fault suite's hostile input: wrong signatures, options, values, fds and paths, and misuse of
 * job objects, each refused with a clear error while the daemon goes on serving. */
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>

#include "fixture.h"

static const char *const argv_true[] = { "true", NULL };

/* ---- requests ------------------------------------------------------------------------------------ */

static void test_wrong_signatures(Fixture *f, gconstpointer unused) {
        g_autofree char *job = fixture_submit_sleeper(f, NULL);
        const char *invalid = "org.freedesktop.DBus.Error.InvalidArgs";
        const struct {
                const char *path, *iface, *method, *params;
        } cases[] = {
                { MANAGER_PATH, MANAGER_IFACE, "Submit", "('true',)" },
                { MANAGER_PATH, MANAGER_IFACE, "Submit", "(['true'],)" },
                { MANAGER_PATH, MANAGER_IFACE, "Submit", "(['true'], {'a': 'b'})" },
                { MANAGER_PATH, MANAGER_IFACE, "Submit", "(['true'], @a{sv} {}, 1)" },
                { MANAGER_PATH, MANAGER_IFACE, "Call", "(@ay [0x74], @a{sv} {})" },
                { MANAGER_PATH, MANAGER_IFACE, "Call", "()" },
                { MANAGER_PATH, MANAGER_IFACE, "Communicate", "(['true'], @a{sv} {})" },
                { MANAGER_PATH, MANAGER_IFACE, "Communicate", "(['true'], 'input', @a{sv} {})" },
                { MANAGER_PATH, MANAGER_IFACE, "GetJob", "('1',)" },
                { MANAGER_PATH, MANAGER_IFACE, "GetJob", "(int32 1,)" },
                { MANAGER_PATH, MANAGER_IFACE, "GetJob", "()" },
                { MANAGER_PATH, MANAGER_IFACE, "ListJobs", "(1,)" },
                { NULL, JOB_IFACE, "Wait", "(1,)" },
                { NULL, JOB_IFACE, "Cancel", "('now',)" },
                { NULL, JOB_IFACE, "Kill", "('TERM',)" },
                { NULL, JOB_IFACE, "Kill", "(uint32 15,)" },
                { NULL, JOB_IFACE, "Kill", "()" },
                { NULL, JOB_IFACE, "GetOutput", "(true,)" },
                { NULL, JOB_IFACE, "Release", "(@ay [],)" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GError) error = NULL;
                GVariant *params = g_variant_parse(NULL, cases[i].params, NULL, NULL, &error);
                g_assert_no_error(error);
                fixture_expect_error(f, cases[i].path ? cases[i].path : job, cases[i].iface, cases[i].method,
                                     params, invalid, NULL);
        }
        /* The job was not touched by any of them. */
        g_autofree char *state = fixture_job_state(f, job);
        g_assert_cmpstr(state, ==, "running");
        fixture_assert_answers(f);
}

static void test_option_wrong_types(Fixture *f, gconstpointer unused) {
        const char *const keys[] = { "cwd",
                                     "environment",
                                     "clear-environment",
                                     "timeout-usec",
                                     "stop-timeout-usec",
                                     "stdin",
                                     "stdout",
                                     "stderr",
                                     "output-limit",
                                     "priority",
                                     "label",
                                     "cancel-on-disconnect",
                                     "memory-max" };
        for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
                /* A double is the right type for no option; an array of variants neither. */
                g_autofree char *text = g_strdup_printf("Option '%s' takes a value of type", keys[i]);
                fixture_expect_call_error(f, (const char *const *) argv_true,
                                          fixture_options(keys[i], g_variant_new_double(1.5), NULL),
                                          "org.freedesktop.DBus.Error.InvalidArgs", text);
                fixture_expect_call_error(
                        f, (const char *const *) argv_true,
                        fixture_options(keys[i], g_variant_new_parsed("[<1>, <'x'>]"), NULL),
                        "org.freedesktop.DBus.Error.InvalidArgs", text);
        }
        /* Near misses of the right type. */
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("timeout-usec", g_variant_new_int64(5), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs",
                                  "'timeout-usec' takes a value of type 't', not 'x'");
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("priority", g_variant_new_uint32(5), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "'priority'");
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("stdout", g_variant_new_int32(1), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "'stdout'");
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("cwd", g_variant_new_object_path("/tmp"), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "'cwd'");
        fixture_expect_call_error(
                f, (const char *const *) argv_true,
                fixture_options("environment", g_variant_new_parsed("@ay [0x41, 0x3d]"), NULL),
                "org.freedesktop.DBus.Error.InvalidArgs", "'environment'");
        g_assert_cmpuint(fixture_manager_u(f, "Queued") + fixture_manager_u(f, "Running"), ==, 0);
        fixture_assert_answers(f);
}

static void test_unknown_options(Fixture *f, gconstpointer unused) {
        g_autofree char *long_key = g_strnfill(10000, 'k');

        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("bogus", g_variant_new_string("x"), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "Unknown option 'bogus'");
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("", g_variant_new_string("x"), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "Unknown option ''");
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("CWD", g_variant_new_string("/"), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "Unknown option 'CWD'");
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options(long_key, g_variant_new_boolean(TRUE), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "Unknown option 'kkkk");
        fixture_assert_answers(f);
}

static void test_duplicate_options(Fixture *f, gconstpointer unused) {
        /* An a{sv} is an array on the wire: nothing stops a key from coming twice. */
        fixture_expect_call_error(
                f, (const char *const *) argv_true,
                fixture_options("label", g_variant_new_string("a"), "label", g_variant_new_string("b"), NULL),
                "org.freedesktop.DBus.Error.InvalidArgs", "Option 'label' is given twice");
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("timeout-usec", g_variant_new_uint64(1), "priority",
                                                  g_variant_new_int32(1), "timeout-usec",
                                                  g_variant_new_uint64(2), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "'timeout-usec' is given twice");
        fixture_assert_answers(f);
}

static void test_many_options(Fixture *f, gconstpointer unused) {
        GVariantBuilder b;

        /* 100,000 entries: refused at the first unknown one, without a job. */
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "label", g_variant_new_string("x"));
        for (int i = 0; i < 100000; i++)
                g_variant_builder_add(&b, "{sv}", "x", g_variant_new_byte(0));
        fixture_expect_call_error(f, (const char *const *) argv_true, g_variant_builder_end(&b),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "Unknown option 'x'");
        fixture_assert_answers(f);
}

static void test_empty_values(Fixture *f, gconstpointer unused) {
        const char *const empty_env[] = { "", NULL }, *const no_name[] = { "=x", NULL };
        const char *const no_eq[] = { "NAME", NULL }, *const empty_value[] = { "E=", NULL };
        const char *const show[] = { "sh", "-c", "test \"${E-unset}\" = '' && test -z \"$L\"", NULL };
        const char *const none[] = { NULL };
        g_autoptr(GError) error = NULL;

        fixture_expect_call_error(f, none, NULL, "org.freedesktop.DBus.Error.InvalidArgs", "argv is empty");
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("cwd", g_variant_new_string(""), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "not an absolute path");
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("environment", g_variant_new_strv(empty_env, -1), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "has no '='");
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("environment", g_variant_new_strv(no_name, -1), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "empty name");
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("environment", g_variant_new_strv(no_eq, -1), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "'NAME' has no '='");
        /* Empty but well-formed values are taken as they are. */
        g_assert_cmpint(fixture_call_argv(f, show,
                                          fixture_options("environment", g_variant_new_strv(empty_value, -1),
                                                          "label", g_variant_new_string(""), NULL),
                                          &error),
                        ==, 0);
        g_assert_no_error(error);
        g_assert_cmpint(fixture_call_argv(f, (const char *const *) argv_true,
                                          fixture_options("environment", g_variant_new_strv(none, -1),
                                                          "output-limit", g_variant_new_uint64(0), NULL),
                                          &error),
                        ==, 0);
        g_assert_no_error(error);
        fixture_assert_answers(f);
}

static void test_huge_values(Fixture *f, gconstpointer unused) {
        const char *const echo[] = { "sh", "-c", "echo hi", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        g_autofree char *long_cwd = NULL, *d = g_strnfill(8000, 'd');
        int rc;

        /* The largest timeouts mean "never", as systemd's infinity. */
        g_assert_cmpint(
                fixture_call_argv(f, (const char *const *) argv_true,
                                  fixture_options("timeout-usec", g_variant_new_uint64(G_MAXUINT64),
                                                  "stop-timeout-usec", g_variant_new_uint64(G_MAXUINT64),
                                                  "priority", g_variant_new_int32(G_MAXINT32), NULL),
                                  &error),
                ==, 0);
        g_assert_no_error(error);
        g_assert_cmpint(
                fixture_call_argv(f, (const char *const *) argv_true,
                                  fixture_options("timeout-usec", g_variant_new_uint64(G_MAXUINT64 / 2),
                                                  "priority", g_variant_new_int32(G_MININT32), NULL),
                                  &error),
                ==, 0);
        g_assert_no_error(error);
        /* output-limit 0 keeps nothing: Communicate of any output passes it. */
        g_assert_false(fixture_communicate(f, echo, NULL, 0,
                                           fixture_options("output-limit", g_variant_new_uint64(0), NULL),
                                           &rc, &out, &err, &error));
        fixture_assert_error(error, "org.procpool.Error.OutputLimit", NULL);
        g_clear_error(&error);
        /* A cwd longer than the kernel takes fails the job with the errno text. */
        long_cwd = g_strconcat("/", d, NULL);
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("cwd", g_variant_new_string(long_cwd), NULL),
                                  "org.procpool.Error.SpawnFailed", "File name too long");
        /* memory-max without per-job cgroups: NotSupported, whatever the value. */
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("memory-max", g_variant_new_uint64(G_MAXUINT64), NULL),
                                  "org.freedesktop.DBus.Error.NotSupported", "memory-max");
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("memory-max", g_variant_new_uint64(0), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "memory-max");
        fixture_assert_answers(f);
}

static void test_odd_bytes(Fixture *f, gconstpointer unused) {
        /* Control characters and any valid UTF-8 pass the bus; they reach the job untouched. */
        const char *odd =
                "\x01\x02\t\n\r\x1b[31m\x7f \xc3\xa9 \xe2\x80\xae \xf0\x9f\x92\xa3 \xf4\x8f\xbf\xbd";
        /* U+FFFF: the bus passes noncharacters, sd-bus refuses the whole message as inconsistent. */
        const char *const nonchar[] = { "printf", "\xef\xbf\xbf", NULL };
        const char *const argv[] = { "printf", "%s|%s", odd, "$(id)`id`", NULL };
        g_autofree char *env_entry = g_strconcat("ODD=", odd, NULL), *expected = NULL;
        const char *const env[] = { env_entry, NULL };
        const char *const print_env[] = { "printenv", "ODD", NULL };
        static const char input[] = "a\0b\0\xff\xfe\x00\x80";
        const char *const cat[] = { "cat", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL, out2 = NULL, err2 = NULL, out3 = NULL, err3 = NULL;
        g_autofree char *path = NULL;
        g_autoptr(GVariant) l = NULL;
        gboolean ok;
        int rc;

        ok = fixture_communicate(f, argv, NULL, 0, NULL, &rc, &out, &err, &error);
        g_assert_no_error(error);
        g_assert_true(ok);
        expected = g_strdup_printf("%s|$(id)`id`", odd);
        g_assert_cmpmem(g_bytes_get_data(out, NULL), g_bytes_get_size(out), expected, strlen(expected));

        g_assert_true(fixture_communicate(f, print_env, NULL, 0,
                                          fixture_options("environment", g_variant_new_strv(env, -1), NULL),
                                          &rc, &out2, &err2, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(g_bytes_get_size(out2), ==, strlen(odd) + 1);

        /* Bytes, NULs included, are bytes in 'ay'. */
        g_assert_true(fixture_communicate(f, cat, input, sizeof(input), NULL, &rc, &out3, &err3, &error));
        g_assert_no_error(error);
        g_assert_cmpmem(g_bytes_get_data(out3, NULL), g_bytes_get_size(out3), input, sizeof(input));

        path = fixture_submit(f, (const char *const *) argv_true,
                              fixture_options("label", g_variant_new_string(odd), NULL));
        l = fixture_get_property(f, path, JOB_IFACE, "Label");
        g_assert_cmpstr(g_variant_get_string(l, NULL), ==, odd);

        fixture_expect_call_error(f, nonchar, NULL, "org.freedesktop.DBus.Error.InconsistentMessage", NULL);
        fixture_assert_answers(f);
}

static GVariant *call_with_fds(Fixture *f, const char *method, GVariant *params, GUnixFDList *fds,
                               GError **error) {
        return g_dbus_connection_call_with_unix_fd_list_sync(f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE,
                                                             method, params, NULL, G_DBUS_CALL_FLAGS_NONE,
                                                             G_MAXINT, fds, NULL, NULL, error);
}

static void test_fd_directory(Fixture *f, gconstpointer unused) {
        const char *const keys[] = { "stdin", "stdout", "stderr" };

        for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
                g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) r = NULL;
                int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                g_autofree char *text = g_strdup_printf("Option '%s': fd refers to a directory", keys[i]);

                g_assert_cmpint(g_unix_fd_list_append(fds, dir, &error), ==, 0);
                close(dir);
                r = call_with_fds(f, "Call",
                                  g_variant_new("(^as@a{sv})", argv_true,
                                                fixture_options(keys[i], g_variant_new_handle(0), NULL)),
                                  fds, &error);
                g_assert_null(r);
                fixture_assert_error(error, "org.freedesktop.DBus.Error.InvalidArgs", text);
        }
        fixture_assert_answers(f);
}

static void test_fd_closed_ends(Fixture *f, gconstpointer unused) {
        const char *const cat[] = { "cat", NULL };
        const char *const yes[] = { "sh", "-c", "while :; do echo y; done", NULL };
        g_autoptr(GUnixFDList) in_fds = g_unix_fd_list_new(), out_fds = g_unix_fd_list_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, r2 = NULL;
        int p[2], q[2], rc;

        /* A pipe whose writer is closed: the job reads EOF at once. */
        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        g_unix_fd_list_append(in_fds, p[0], &error);
        close(p[0]);
        close(p[1]);
        r = call_with_fds(
                f, "Call",
                g_variant_new("(^as@a{sv})", cat, fixture_options("stdin", g_variant_new_handle(0), NULL)),
                in_fds, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(i)", &rc);
        g_assert_cmpint(rc, ==, 0);

        /* A pipe whose reader is closed: the job, not the daemon, gets SIGPIPE. */
        g_assert_cmpint(pipe2(q, O_CLOEXEC), ==, 0);
        g_unix_fd_list_append(out_fds, q[1], &error);
        close(q[0]);
        close(q[1]);
        r2 = call_with_fds(
                f, "Call",
                g_variant_new("(^as@a{sv})", yes, fixture_options("stdout", g_variant_new_handle(0), NULL)),
                out_fds, &error);
        g_assert_no_error(error);
        g_variant_get(r2, "(i)", &rc);
        g_assert_cmpint(rc, ==, -SIGPIPE);
        fixture_assert_answers(f);
}

static void test_fd_bad_index(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusMessage) m =
                g_dbus_message_new_method_call(BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call");
        g_autoptr(GDBusMessage) reply = NULL;
        g_autoptr(GError) error = NULL;

        /* A handle that names an fd the message does not carry. */
        g_dbus_message_set_body(m, g_variant_new("(^as@a{sv})", argv_true,
                                                 fixture_options("stdout", g_variant_new_handle(7), NULL)));
        reply = g_dbus_connection_send_message_with_reply_sync(f->conn, m, G_DBUS_SEND_MESSAGE_FLAGS_NONE,
                                                               G_MAXINT, NULL, NULL, &error);
        if (reply) {
                g_assert_cmpint(g_dbus_message_get_message_type(reply), ==, G_DBUS_MESSAGE_TYPE_ERROR);
                g_test_message("a handle without an fd: %s", g_dbus_message_get_error_name(reply));
        } else
                g_test_message("a handle without an fd: %s", error->message);
        g_assert_cmpuint(fixture_manager_u(f, "Queued") + fixture_manager_u(f, "Running"), ==, 0);
        fixture_assert_answers(f);
}

static void test_duplicate_env(Fixture *f, gconstpointer unused) {
        const char *const twice[] = { "A=1", "B=2", "A=3", NULL };
        const char *const twice_empty[] = { "Z=", "Z=", NULL };
        const char *const prefix[] = { "A=1", "AB=2", "A_=3", NULL };
        const char *const check[] = { "sh", "-c", "test \"$A$AB$A_\" = 123", NULL };
        g_autoptr(GError) error = NULL;

        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("environment", g_variant_new_strv(twice, -1), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "'A' is set twice");
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("environment", g_variant_new_strv(twice_empty, -1), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "'Z' is set twice");
        /* Names that share a prefix are different names. */
        g_assert_cmpint(fixture_call_argv(
                                f, check,
                                fixture_options("environment", g_variant_new_strv(prefix, -1), NULL), &error),
                        ==, 0);
        g_assert_no_error(error);
        fixture_assert_answers(f);
}

static void test_relative_paths(Fixture *f, gconstpointer unused) {
        const char *const rel[] = { "./procpool-no-such-program", NULL };
        const char *const dot_true[] = { "./true", NULL };
        g_autoptr(GError) error = NULL;

        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("cwd", g_variant_new_string("tmp"), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "'tmp' is not an absolute path");
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("cwd", g_variant_new_string("../"), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", "not an absolute path");
        fixture_expect_call_error(
                f, (const char *const *) argv_true,
                fixture_options("cwd", g_variant_new_string("/nonexistent/procpool"), NULL),
                "org.procpool.Error.SpawnFailed",
                "Failed to change directory to '/nonexistent/procpool': No such file or directory");
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("cwd", g_variant_new_string("/etc/passwd"), NULL),
                                  "org.procpool.Error.SpawnFailed", "Not a directory");
        /* argv[0] with a slash is taken relative to the job's cwd. */
        fixture_expect_call_error(
                f, rel, NULL, "org.procpool.Error.SpawnFailed",
                "Failed to execute './procpool-no-such-program': No such file or directory");
        g_assert_cmpint(fixture_call_argv(f, dot_true,
                                          fixture_options("cwd", g_variant_new_string("/bin"), NULL), &error),
                        ==, 0);
        g_assert_no_error(error);
        fixture_assert_answers(f);
}

/* ---- job objects and properties ------------------------------------------------------------------ */

static void test_kill_bad_signals(Fixture *f, gconstpointer unused) {
        g_autofree char *path = fixture_submit_sleeper(f, NULL), *state = NULL;
        const gint32 bad[] = { 0, -1, 65, 1000, G_MININT32, G_MAXINT32 };
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;

        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autofree char *text = g_strdup_printf("%d is not a valid signal", bad[i]);
                fixture_expect_error(f, path, JOB_IFACE, "Kill", g_variant_new("(i)", bad[i]),
                                     "org.freedesktop.DBus.Error.InvalidArgs", text);
        }
        state = fixture_job_state(f, path);
        g_assert_cmpstr(state, ==, "running");
        /* A good one still works afterwards. */
        r = fixture_job_call(f, path, "Kill", g_variant_new("(i)", SIGKILL), &error);
        g_assert_no_error(error);
        g_assert_true(fixture_wait_state(f, path, "killed"));
        fixture_assert_answers(f);
}

static void test_get_job_ids(Fixture *f, gconstpointer unused) {
        const guint64 ids[] = { 0, 2, G_MAXUINT64, G_MAXUINT64 / 2 + 1, (guint64) G_MAXUINT32 + 1 };

        fixture_assert_answers(f); /* job 1 exists now */
        for (size_t i = 0; i < G_N_ELEMENTS(ids); i++)
                fixture_expect_error(f, MANAGER_PATH, MANAGER_IFACE, "GetJob", g_variant_new("(t)", ids[i]),
                                     "org.freedesktop.DBus.Error.UnknownObject", "No job");
        fixture_assert_answers(f);
}

static void expect_no_job_object(Fixture *f, const char *path) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                f->conn, BUS_NAME, path, "org.freedesktop.DBus.Properties", "Get",
                g_variant_new("(ss)", JOB_IFACE, "State"), NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_autofree char *name = NULL;

        if (r)
                g_error("%s answered as a job: %s", path, g_variant_print(r, TRUE));
        name = g_dbus_error_get_remote_error(error);
        if (!g_str_equal(name, "org.freedesktop.DBus.Error.UnknownObject") &&
            !g_str_equal(name, "org.freedesktop.DBus.Error.UnknownMethod") &&
            !g_str_equal(name, "org.freedesktop.DBus.Error.UnknownInterface") &&
            !g_str_equal(name, "org.freedesktop.DBus.Error.UnknownProperty"))
                g_error("%s: unexpected %s: %s", path, name, error->message);
        g_clear_error(&error);
        g_clear_pointer(&r, g_variant_unref);
        r = g_dbus_connection_call_sync(f->conn, BUS_NAME, path, JOB_IFACE, "Cancel", NULL, NULL,
                                        G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_null(r);
        g_clear_pointer(&name, g_free);
        name = g_dbus_error_get_remote_error(error);
        g_assert_true(g_str_equal(name, "org.freedesktop.DBus.Error.UnknownObject") ||
                      g_str_equal(name, "org.freedesktop.DBus.Error.UnknownMethod"));
}

static void test_odd_job_paths(Fixture *f, gconstpointer unused) {
        const char *const paths[] = {
                MANAGER_PATH "/job/01", MANAGER_PATH "/job/abc", MANAGER_PATH "/job/0",
                MANAGER_PATH "/job/1_", MANAGER_PATH "/job/1/x", MANAGER_PATH "/job/18446744073709551617",
                MANAGER_PATH "/job/2",  MANAGER_PATH "/job",
        };

        fixture_assert_answers(f); /* job 1 exists */
        for (size_t i = 0; i < G_N_ELEMENTS(paths); i++)
                expect_no_job_object(f, paths[i]);
        fixture_assert_answers(f);
}

static void test_release_running(Fixture *f, gconstpointer unused) {
        g_autofree char *path = fixture_submit_sleeper(f, NULL), *queued = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, r2 = NULL;

        fixture_expect_error(f, path, JOB_IFACE, "Release", NULL, "org.procpool.Error.NotFinished",
                             "running");
        /* Still there and running; once ended it can go, and then it is gone. */
        g_assert_true(fixture_wait_state(f, path, "running"));
        r = fixture_job_call(f, path, "Cancel", NULL, &error);
        g_assert_no_error(error);
        g_assert_true(fixture_wait_state(f, path, "cancelled"));
        r2 = fixture_job_call(f, path, "Release", NULL, &error);
        g_assert_no_error(error);
        fixture_expect_error(f, MANAGER_PATH, MANAGER_IFACE, "GetJob", g_variant_new("(t)", (guint64) 1),
                             "org.freedesktop.DBus.Error.UnknownObject", NULL);
        expect_no_job_object(f, path);
        fixture_assert_answers(f);
}

static void test_cancel_finished(Fixture *f, gconstpointer unused) {
        const char *const exit7[] = { "sh", "-c", "exit 7", NULL };
        g_autofree char *path = fixture_submit(f, exit7, NULL), *state = NULL;
        int rc;

        g_assert_true(fixture_wait_state(f, path, "exited"));
        fixture_expect_error(f, path, JOB_IFACE, "Cancel", NULL, "org.procpool.Error.NotRunning",
                             "already ended (exited)");
        fixture_expect_error(f, path, JOB_IFACE, "Kill", g_variant_new("(i)", SIGTERM),
                             "org.procpool.Error.NotRunning", NULL);
        /* The outcome is unchanged. */
        fixture_job_outcome(f, path, &state, &rc, NULL);
        g_assert_cmpstr(state, ==, "exited");
        g_assert_cmpint(rc, ==, 7);
        fixture_assert_answers(f);
}

static void test_properties_hostile(Fixture *f, gconstpointer unused) {
        const char *props = "org.freedesktop.DBus.Properties";
        g_autoptr(GError) error = NULL;

        fixture_expect_error(f, MANAGER_PATH, props, "Set",
                             g_variant_new("(ssv)", MANAGER_IFACE, "PoolSize", g_variant_new_string("4")),
                             "org.freedesktop.DBus.Error.InvalidArgs", NULL);
        fixture_expect_error(f, MANAGER_PATH, props, "Set",
                             g_variant_new("(ssv)", MANAGER_IFACE, "PoolSize", g_variant_new_uint32(0)),
                             "org.freedesktop.DBus.Error.InvalidArgs", "at least 1");
        fixture_expect_error(f, MANAGER_PATH, props, "Set",
                             g_variant_new("(ssv)", MANAGER_IFACE, "Running", g_variant_new_uint32(3)),
                             "org.freedesktop.DBus.Error.PropertyReadOnly", NULL);
        fixture_expect_error(f, MANAGER_PATH, props, "Get",
                             g_variant_new("(ss)", MANAGER_IFACE, "NoSuchProperty"),
                             "org.freedesktop.DBus.Error.UnknownProperty", NULL);
        fixture_expect_error(f, MANAGER_PATH, props, "Get",
                             g_variant_new("(ss)", "org.procpool.NoSuch", "PoolSize"),
                             "org.freedesktop.DBus.Error.UnknownProperty", "org.procpool.NoSuch");
        fixture_expect_error(f, MANAGER_PATH, MANAGER_IFACE, "NoSuchMethod", NULL,
                             "org.freedesktop.DBus.Error.UnknownMethod", NULL);
        fixture_assert_answers(f);
}

/* ---- main ---------------------------------------------------------------------------------------- */

#define ADD(name, setup, args, fn) FIXTURE_ADD("/procpool/fault/" name, setup, args, fn)

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        ADD("wrong-signatures", fixture_setup, NULL, test_wrong_signatures);
        ADD("option-wrong-types", fixture_setup, NULL, test_option_wrong_types);
        ADD("unknown-options", fixture_setup, NULL, test_unknown_options);
        ADD("duplicate-options", fixture_setup, NULL, test_duplicate_options);
        ADD("many-options", fixture_setup, NULL, test_many_options);
        ADD("empty-values", fixture_setup, NULL, test_empty_values);
        ADD("huge-values", fixture_setup, NULL, test_huge_values);
        ADD("odd-bytes", fixture_setup, NULL, test_odd_bytes);
        ADD("fd-directory", fixture_setup, NULL, test_fd_directory);
        ADD("fd-closed-ends", fixture_setup, NULL, test_fd_closed_ends);
        ADD("fd-bad-index", fixture_setup, NULL, test_fd_bad_index);
        ADD("duplicate-env", fixture_setup, NULL, test_duplicate_env);
        ADD("relative-paths", fixture_setup, NULL, test_relative_paths);
        ADD("kill-bad-signals", fixture_setup, NULL, test_kill_bad_signals);
        ADD("get-job-ids", fixture_setup, NULL, test_get_job_ids);
        ADD("odd-job-paths", fixture_setup, NULL, test_odd_job_paths);
        ADD("release-running", fixture_setup, NULL, test_release_running);
        ADD("cancel-finished", fixture_setup, NULL, test_cancel_finished);
        ADD("properties-hostile", fixture_setup, NULL, test_properties_hostile);
        return g_test_run();
}
