/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Call: the return code as Popen.returncode, and the errors of a job that cannot run. */
#include "fixture.h"

static void test_exit_code(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        const char *argv[] = { "sh", "-c", "exit 3", NULL };

        g_assert_cmpint(fixture_call_argv(f, argv, NULL, &error), ==, 3);
        g_assert_no_error(error);
}

static void test_exit_zero(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) jobs = NULL;
        const char *argv[] = { "true", NULL };
        const char *state, *path;
        guint64 id;
        int rc;

        g_assert_cmpint(fixture_call_argv(f, argv, NULL, &error), ==, 0);
        g_assert_no_error(error);
        jobs = fixture_call(f, "ListJobs", NULL, &error);
        g_assert_no_error(error);
        g_autoptr(GVariant) list = g_variant_get_child_value(jobs, 0);
        g_assert_cmpuint(g_variant_n_children(list), ==, 1);
        g_variant_get_child(list, 0, "(t&o&si)", &id, &path, &state, &rc);
        g_assert_cmpuint(id, ==, 1);
        g_assert_cmpstr(path, ==, MANAGER_PATH "/job/1");
        g_assert_cmpstr(state, ==, "exited");
        g_assert_cmpint(rc, ==, 0);
}

static void test_signal(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autofree char *state = NULL;
        const char *argv[] = { "sh", "-c", "kill -TERM $$", NULL };

        /* Minus the signal, as Popen.returncode; the state says a signal ended it. */
        g_assert_cmpint(fixture_call_argv(f, argv, NULL, &error), ==, -15);
        g_assert_no_error(error);
        fixture_job_outcome(f, MANAGER_PATH "/job/1", &state, NULL, NULL);
        g_assert_cmpstr(state, ==, "killed");
}

static void test_spawn_failed(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL, error2 = NULL;
        g_autofree char *state = NULL, *message = NULL;
        const char *argv[] = { "procpool-no-such-program", "arg", NULL };
        const char *argv_abs[] = { "/nonexistent/procpool-prog", NULL };
        int rc;

        /* Never an exit status of 127: the error, naming the program and errno's text. */
        g_assert_cmpint(fixture_call_argv(f, argv, NULL, &error), ==, -1000);
        fixture_assert_error(error, "org.procpool.Error.SpawnFailed",
                             "Failed to execute 'procpool-no-such-program': No such file or directory");
        fixture_job_outcome(f, MANAGER_PATH "/job/1", &state, &rc, &message);
        g_assert_cmpstr(state, ==, "failed");
        g_assert_cmpint(rc, ==, 0);
        g_assert_cmpstr(message, ==,
                        "Failed to execute 'procpool-no-such-program': No such file or directory");

        g_assert_cmpint(fixture_call_argv(f, argv_abs, NULL, &error2), ==, -1000);
        fixture_assert_error(error2, "org.procpool.Error.SpawnFailed",
                             "Failed to execute '/nonexistent/procpool-prog': No such file or directory");
}

static void test_bad_argv(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL, e4 = NULL, e5 = NULL;
        const char *empty[] = { NULL };
        const char *empty0[] = { "", "x", NULL };
        const char *ok[] = { "sh", "-c", "exit 4", NULL };
        g_autoptr(GVariant) r = NULL;

        g_assert_cmpint(fixture_call_argv(f, empty, NULL, &e1), ==, -1000);
        fixture_assert_error(e1, "org.freedesktop.DBus.Error.InvalidArgs", "argv is empty");
        g_assert_cmpint(fixture_call_argv(f, empty0, NULL, &e2), ==, -1000);
        fixture_assert_error(e2, "org.freedesktop.DBus.Error.InvalidArgs", "argv[0] is empty");
        r = fixture_call(f, "Submit", g_variant_new("(^as@a{sv})", empty, FIXTURE_NO_OPTIONS), &e3);
        g_assert_null(r);
        fixture_assert_error(e3, "org.freedesktop.DBus.Error.InvalidArgs", "argv is empty");
        r = fixture_call(f, "Communicate",
                         g_variant_new("(^as@ay@a{sv})", empty0, fixture_bytes("", 0), FIXTURE_NO_OPTIONS),
                         &e4);
        g_assert_null(r);
        fixture_assert_error(e4, "org.freedesktop.DBus.Error.InvalidArgs", "argv[0] is empty");

        /* No job was made of them, and the daemon goes on serving. */
        g_assert_cmpint(fixture_call_argv(f, ok, NULL, &e5), ==, 4);
        g_assert_no_error(e5);
        g_autofree char *state = NULL;
        fixture_job_outcome(f, MANAGER_PATH "/job/1", &state, NULL, NULL);
        g_assert_cmpstr(state, ==, "exited");
}

static void test_argv_verbatim(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        const char *argv[] = { "printf", "%s|", "a b", "", "$HOME", "*", NULL };
        int rc;

        /* No shell in between: every argument arrives as given. */
        g_assert_true(fixture_communicate(f, argv, NULL, 0, NULL, &rc, &out, &err, &error));
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 0);
        g_assert_cmpmem(g_bytes_get_data(out, NULL), g_bytes_get_size(out), "a b||$HOME|*|", 13);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        FIXTURE_ADD("/procpool/call/exit-code", fixture_setup, NULL, test_exit_code);
        FIXTURE_ADD("/procpool/call/exit-zero", fixture_setup, NULL, test_exit_zero);
        FIXTURE_ADD("/procpool/call/signal", fixture_setup, NULL, test_signal);
        FIXTURE_ADD("/procpool/call/spawn-failed", fixture_setup, NULL, test_spawn_failed);
        FIXTURE_ADD("/procpool/call/bad-argv", fixture_setup, NULL, test_bad_argv);
        FIXTURE_ADD("/procpool/call/argv-verbatim", fixture_setup, NULL, test_argv_verbatim);
        return g_test_run();
}
