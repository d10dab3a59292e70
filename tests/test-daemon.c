/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* procpoold as a process: its command line, a bus name already taken, and a clean stop on SIGTERM. */
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

typedef struct {
        int status;
        char *out;
        char *err;
} Run;

static void run_done(Run *r) {
        g_free(r->out);
        g_free(r->err);
}

/* Runs procpoold with args, in envp (NULL: the test's environment), until it exits. */
static void run_daemon_env(Run *ret, const char *const *args, char **envp) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_autoptr(GError) error = NULL;

        g_ptr_array_add(argv, (gpointer) g_getenv("PROCPOOLD"));
        for (const char *const *a = args; *a; a++)
                g_ptr_array_add(argv, (gpointer) *a);
        g_ptr_array_add(argv, NULL);
        g_assert_true(g_spawn_sync(NULL, (char **) argv->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL, &ret->out,
                                   &ret->err, &ret->status, &error));
        g_assert_no_error(error);
}

static void run_daemon(Run *ret, const char *const *args) {
        run_daemon_env(ret, args, NULL);
}

static void test_help(void) {
        const char *args[] = { "--help", NULL };
        Run r = {};

        run_daemon(&r, args);
        g_assert_true(WIFEXITED(r.status));
        g_assert_cmpint(WEXITSTATUS(r.status), ==, 0);
        g_assert_nonnull(strstr(r.out, "--pool-size"));
        g_assert_nonnull(strstr(r.out, "--retain"));
        run_done(&r);
}

static void test_version(void) {
        const char *args[] = { "--version", NULL };
        Run r = {};

        run_daemon(&r, args);
        g_assert_true(WIFEXITED(r.status));
        g_assert_cmpint(WEXITSTATUS(r.status), ==, 0);
        g_assert_true(g_str_has_prefix(r.out, "procpoold "));
        g_assert_true(g_ascii_isdigit(r.out[strlen("procpoold ")]));
        run_done(&r);
}

static void test_bad_options(void) {
        static const struct {
                const char *arg;
                const char *mentions;
        } cases[] = {
                { "--frobnicate", "frobnicate" },    { "--pool-size=0", "pool-size" },
                { "--pool-size=many", "pool-size" }, { "--max-queued=-1", "max-queued" },
                { "--retain=abc", "retain" },        { "--output-limit=lots", "output-limit" },
                { "unexpected", "unexpected" },
        };

        /* A usage error: exit status 2 and a message naming what was wrong, nothing started. */
        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                const char *args[] = { "--address=unix:path=/nonexistent/procpool-bus", cases[i].arg, NULL };
                Run r = {};
                run_daemon(&r, args);
                g_test_message("%s: %s", cases[i].arg, r.err);
                g_assert_true(WIFEXITED(r.status));
                g_assert_cmpint(WEXITSTATUS(r.status), ==, 2);
                g_assert_nonnull(strstr(r.err, cases[i].mentions));
                run_done(&r);
        }
}

static void test_no_bus(void) {
        const char *args[] = { "--address=unix:path=/nonexistent/procpool-bus", NULL };
        Run r = {};

        run_daemon(&r, args);
        g_assert_true(WIFEXITED(r.status));
        g_assert_cmpint(WEXITSTATUS(r.status), !=, 0);
        g_assert_cmpint(WEXITSTATUS(r.status), !=, 2);
        g_assert_nonnull(strstr(r.err, "Failed to connect"));
        run_done(&r);
}

static void test_name_taken(Fixture *f, gconstpointer unused) {
        g_autofree char *address = g_strdup_printf("--address=%s", f->address);
        /* --ephemeral: the default state dir is not the test's to touch. */
        const char *args[] = { address, "--ephemeral", NULL };
        const char *t[] = { "sh", "-c", "exit 6", NULL };
        g_autoptr(GError) error = NULL;
        Run r = {};

        /* The second daemon says why it cannot serve, and leaves the first one alone. */
        run_daemon(&r, args);
        g_assert_true(WIFEXITED(r.status));
        g_assert_cmpint(WEXITSTATUS(r.status), !=, 0);
        g_assert_nonnull(strstr(r.err, BUS_NAME));
        g_assert_nonnull(strstr(r.err, "already running"));
        run_done(&r);
        g_assert_cmpint(fixture_call_argv(f, t, NULL, &error), ==, 6);
        g_assert_no_error(error);
}

/* An ephemeral daemon keeps its spool in a dir of its own making under $RUNTIME_DIRECTORY, and leaves
 * nothing of it when it exits (here at once, the bus name being taken; every exit frees the same way). */
static void test_ephemeral_leaves_nothing(Fixture *f, gconstpointer unused) {
        g_autofree char *address = g_strdup_printf("--address=%s", f->address);
        const char *args[] = { address, "--ephemeral", NULL };
        g_autoptr(GError) error = NULL;
        g_autofree char *runtime = g_dir_make_tmp("procpool-runtime-XXXXXX", &error);
        g_auto(GStrv) envp = NULL;
        g_autoptr(GDir) d = NULL;
        g_autofree char *left = NULL;
        Run r = {};

        g_assert_no_error(error);
        envp = g_environ_setenv(g_get_environ(), "RUNTIME_DIRECTORY", runtime, TRUE);
        run_daemon_env(&r, args, envp);
        g_assert_true(WIFEXITED(r.status));
        g_assert_cmpint(WEXITSTATUS(r.status), !=, 0);
        g_assert_nonnull(strstr(r.err, "already running"));
        run_done(&r);
        d = g_dir_open(runtime, 0, &error);
        g_assert_no_error(error);
        left = g_strdup(g_dir_read_name(d));
        if (left)
                fixture_remove_tree(runtime);
        g_assert_cmpstr(left, ==, NULL);
        g_assert_cmpint(rmdir(runtime), ==, 0);
}

/* Without a store: the v1 stop, in which every waiting caller hears Cancelled. */
static const char *const pool2[] = { "--pool-size=2", "--ephemeral", NULL };
/* With a store, as by default: both stubborn jobs run at once. */
static const char *const pool2_stored[] = { "--pool-size=2", NULL };

static void test_sigterm(Fixture *f, gconstpointer unused) {
        g_autofree char *marker = fixture_gate_path(f, "ran"), *ready = fixture_gate_path(f, "ready");
        g_autofree char *quoted_ready = g_shell_quote(ready);
        /* The gate comes from the shell itself (a redirection, not touch): the groups hold only the
         * shell and the sleeps when the test counts them. */
        g_autofree char *script = g_strdup_printf("sleep 30 & : > %s; wait; exit 0", quoted_ready);
        const char *with_child[] = { "sh", "-c", script, NULL };
        const char *sleeper[] = { "sleep", "30", NULL };
        const char *touch[] = { "touch", marker, NULL };
        g_autofree char *submitted = fixture_submit(f, with_child, NULL);
        g_autofree char *queued = NULL;
        g_autoptr(GArray) members = g_array_new(FALSE, FALSE, sizeof(pid_t));
        FixtureReply call = {}, wait = {};
        guint32 pids[2];
        int status;

        g_dbus_connection_call(f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call",
                               g_variant_new("(^as@a{sv})", sleeper, FIXTURE_NO_OPTIONS), NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, fixture_on_reply, &call);
        g_dbus_connection_call(f->conn, BUS_NAME, submitted, JOB_IFACE, "Wait", NULL, NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, fixture_on_reply, &wait);
        g_assert_true(fixture_wait_state(f, submitted, "running"));
        g_assert_true(fixture_wait_state(f, MANAGER_PATH "/job/2", "running"));
        queued = fixture_submit(f, touch, NULL);
        g_assert_cmpstr(queued, ==, MANAGER_PATH "/job/3");
        for (int i = 0; i < 2; i++) {
                g_autofree char *p = fixture_job_path(i + 1);
                pids[i] = fixture_job_pid(f, p);
                g_assert_cmpuint(pids[i], >, 0);
        }
        /* Every process of both jobs' groups: the shell says so once its sleep has started. */
        g_assert_true(fixture_wait_for_file(ready));
        for (int i = 0; i < 2; i++) {
                g_autoptr(GArray) group = fixture_proc_group(pids[i]);
                g_array_append_vals(members, group->data, group->len);
        }
        g_assert_cmpuint(members->len, ==, 3);
        /* What the daemon leaves behind comes to the test, which reaps it below. */
        g_assert_no_errno(prctl(PR_SET_CHILD_SUBREAPER, 1));

        /* Stops what runs, answers who waits, exits 0; the queued job never starts. */
        g_assert_no_errno(kill(f->daemon_pid, SIGTERM));
        g_assert_cmpint(waitpid(f->daemon_pid, &status, 0), ==, f->daemon_pid);
        f->daemon_pid = 0;
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        g_assert_true(fixture_reply_wait(&call));
        g_assert_true(fixture_reply_wait(&wait));
        fixture_assert_error(call.error, "org.procpool.Error.Cancelled", NULL);
        fixture_assert_error(wait.error, "org.procpool.Error.Cancelled", NULL);
        /* Nothing of either group is left, not even a zombie. */
        for (guint i = 0; i < members->len; i++)
                g_assert_true(fixture_wait_pid_exit(g_array_index(members, pid_t, i)));
        for (int i = 0; i < 2; i++) {
                while (waitpid(-(pid_t) pids[i], NULL, WNOHANG) > 0)
                        ;
                g_assert_cmpint(kill(-(pid_t) pids[i], 0), ==, -1);
                g_assert_cmpint(errno, ==, ESRCH);
        }
        g_assert_no_errno(prctl(PR_SET_CHILD_SUBREAPER, 0));
        g_assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
        fixture_reply_clear(&call);
        fixture_reply_clear(&wait);
}

static void test_shutting_down(Fixture *f, gconstpointer unused) {
        g_autofree char *stubborn_ready = fixture_gate_path(f, "stubborn-ready");
        g_autofree char *holdout_ready = fixture_gate_path(f, "holdout-ready");
        g_autofree char *got_term = fixture_gate_path(f, "got-term"),
                        *release = fixture_gate_path(f, "release");
        g_autofree char *q1 = g_shell_quote(stubborn_ready), *q2 = g_shell_quote(holdout_ready);
        g_autofree char *q3 = g_shell_quote(got_term), *wait_release = fixture_gate_wait_sh(release);
        /* Ignores SIGTERM, so the daemon stays up, stopping, until the stop timeout's SIGKILL... */
        g_autofree char *stubborn_sh =
                g_strdup_printf("trap '' TERM; touch %s; while :; do sleep 0.1; done", q1);
        /* ...and this one, once it has had its SIGTERM, holds out until the test lets it go. */
        g_autofree char *holdout_sh =
                g_strdup_printf("trap 'touch %s' TERM; touch %s; %s", q3, q2, wait_release);
        const char *stubborn[] = { "sh", "-c", stubborn_sh, NULL };
        const char *holdout[] = { "sh", "-c", holdout_sh, NULL };
        const char *t[] = { "true", NULL };
        g_autofree char *p1 = fixture_submit(
                f, stubborn, fixture_options("stop-timeout-usec", g_variant_new_uint64(1500000), NULL));
        g_autofree char *p2 = fixture_submit(
                f, holdout,
                fixture_options("stop-timeout-usec", g_variant_new_uint64(FIXTURE_WAIT_SEC * G_USEC_PER_SEC),
                                NULL));
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        int status;

        g_assert_true(fixture_wait_for_file(stubborn_ready));
        g_assert_true(fixture_wait_for_file(holdout_ready));
        g_assert_no_errno(kill(f->daemon_pid, SIGTERM));
        /* The jobs have their SIGTERM once the daemon stops: from then on it takes no new work. */
        g_assert_true(fixture_wait_for_file(got_term));
        r = fixture_call(f, "Submit", g_variant_new("(^as@a{sv})", t, FIXTURE_NO_OPTIONS), &error);
        g_assert_null(r);
        fixture_assert_error(error, "org.procpool.Error.ShuttingDown", NULL);
        g_clear_error(&error);
        /* A batch too. */
        {
                const char *const *argvs[] = { t, t };
                GVariantBuilder b;

                g_variant_builder_init(&b, G_VARIANT_TYPE("aas"));
                for (size_t i = 0; i < G_N_ELEMENTS(argvs); i++)
                        g_variant_builder_add(&b, "^as", argvs[i]);
                r = fixture_call(f, "SubmitMany", g_variant_new("(aas@a{sv})", &b, FIXTURE_NO_OPTIONS),
                                 &error);
                g_assert_null(r);
                fixture_assert_error(error, "org.procpool.Error.ShuttingDown", NULL);
        }
        fixture_gate_open(release);
        g_assert_cmpint(waitpid(f->daemon_pid, &status, 0), ==, f->daemon_pid);
        f->daemon_pid = 0;
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/procpool/daemon/help", test_help);
        g_test_add_func("/procpool/daemon/version", test_version);
        g_test_add_func("/procpool/daemon/bad-options", test_bad_options);
        g_test_add_func("/procpool/daemon/no-bus", test_no_bus);
        FIXTURE_ADD("/procpool/daemon/name-taken", fixture_setup, NULL, test_name_taken);
        FIXTURE_ADD("/procpool/daemon/ephemeral-leaves-nothing", fixture_setup, NULL,
                    test_ephemeral_leaves_nothing);
        FIXTURE_ADD("/procpool/daemon/sigterm", fixture_setup, pool2, test_sigterm);
        FIXTURE_ADD("/procpool/daemon/shutting-down", fixture_setup, pool2_stored, test_shutting_down);
        return g_test_run();
}
