/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who reads what on the system instance: a job's command line, label, cwd, environment, output, return
 * code and error are its owner's, the user's it runs as, root's and those polkit allows to manage; any
 * other user sees that it exists (id, state, owner, times) and nothing more, through every property
 * read, ListJobs, GetManagedObjects, introspection and every signal it hears. */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

#define ERROR_ACCESS_DENIED "org.freedesktop.DBus.Error.AccessDenied"

/* Every secret a job of these tests carries has this in it. */
#define SECRET "SECRET"

static const FixtureUser *user1(void) {
        return fixture_user(FIXTURE_USER1);
}

static const FixtureUser *user2(void) {
        return fixture_user(FIXTURE_USER2);
}

static const char rules_manage_user2[] = "polkit.addRule(function(action, subject) {\n"
                                         "    if (action.id == \"org.procpool.manage\" &&\n"
                                         "        subject.user == \"" FIXTURE_USER2 "\")\n"
                                         "        return polkit.Result.YES;\n"
                                         "});\n";

/* The system bus, polkitd with rules (the test data, or NULL) and procpoold --system. */
static void setup(Fixture *f, gconstpointer rules) {
        const char *const args[] = { "--system", NULL };

        fixture_setup_system_bus(f, NULL);
        fixture_polkit_start(f, rules, TRUE);
        f->daemon_pid = fixture_start_daemon(f, args);
}

/* A job's secrets: a directory (its cwd) named SECRET-CWD with a script in it that prints its
 * environment's secret and exits 42. */
typedef struct Secrets {
        char *base; /* removed at the end */
        char *dir;
        char *script;
} Secrets;

static void secrets_make(Secrets *s) {
        g_autoptr(GError) error = NULL;

        s->base = g_dir_make_tmp("procpool-privacy-XXXXXX", &error);
        g_assert_no_error(error);
        g_assert_cmpint(chmod(s->base, 0755), ==, 0);
        s->dir = g_build_filename(s->base, SECRET "-CWD", NULL);
        g_assert_cmpint(mkdir(s->dir, 0755), ==, 0);
        s->script = g_build_filename(s->dir, "job", NULL);
        g_assert_true(g_file_set_contents(s->script, "#!/bin/sh\necho " SECRET "-OUT-$SECRET_ENV\nexit 42\n",
                                          -1, &error));
        g_assert_cmpint(chmod(s->script, 0755), ==, 0);
}

static void secrets_done(Secrets *s) {
        fixture_remove_tree(s->base);
        g_free(s->base);
        g_free(s->dir);
        g_free(s->script);
}

/* The helper's Submit of the secret job, with options opts ("" or "user=NAME "). */
static char *secret_submit_op(const Secrets *s, const char *opts) {
        return g_strdup_printf("submit %slabel=" SECRET "-LABEL cwd=%s env=SECRET_ENV=" SECRET
                               "-ENV -- %s " SECRET "-ARGV",
                               opts, s->dir, s->script);
}

/* The job path out of the helper's "submit ('/org/...',)". */
static char *submitted_path(const char *line) {
        const char *p = strstr(line, "('");

        g_assert_nonnull(p);
        return g_strndup(p + 2, strcspn(p + 2, "'"));
}

static char *run_ops(Fixture *f, const FixtureUser *u, const char *const *ops) {
        char *out = fixture_user_client(f, u, ops);
        return g_strstrip(out);
}

static void assert_no_secret(const char *text) {
        if (strstr(text, SECRET))
                g_error("a secret shows: %s", text);
}

/* ---- reads --------------------------------------------------------------------------------------------- */

static const char *const private_properties[] = { "Argv",         "Label",      "ReturnCode",
                                                  "Pid",          "Error",      "OutputIncomplete",
                                                  "CPUUsageUSec", "MemoryPeak", NULL };
static const char *const public_properties[] = { "Id",        "State",      "Owner", "SubmittedAt",
                                                 "StartedAt", "FinishedAt", NULL };

static void test_reads(Fixture *f, gconstpointer data) {
        Secrets s = {};
        g_autofree char *submit = NULL, *line = NULL, *job = NULL, *failed_line = NULL, *failed = NULL;
        g_autofree char *missing = NULL;
        g_autoptr(GPtrArray) ops = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *out = NULL, *owner_out = NULL;
        g_auto(GStrv) lines = NULL;
        guint i = 0;

        secrets_make(&s);
        submit = secret_submit_op(&s, "");
        line = run_ops(f, user1(), (const char *const[]) { submit, NULL });
        job = submitted_path(line);
        g_assert_true(fixture_wait_state(f, job, "exited"));
        /* A job that fails names its program in Error. */
        missing = g_strdup_printf("submit -- %s/" SECRET "-MISSING", s.dir);
        failed_line = run_ops(f, user1(), (const char *const[]) { missing, NULL });
        failed = submitted_path(failed_line);
        g_assert_true(fixture_wait_state(f, failed, "failed"));

        for (const char *const *p = private_properties; *p; p++)
                g_ptr_array_add(ops, g_strdup_printf("get %s %s", job, *p));
        for (const char *const *p = public_properties; *p; p++)
                g_ptr_array_add(ops, g_strdup_printf("get %s %s", job, *p));
        g_ptr_array_add(ops, g_strdup_printf("getall %s", job));
        g_ptr_array_add(ops, g_strdup_printf("getall %s", failed));
        g_ptr_array_add(ops, g_strdup("managed"));
        g_ptr_array_add(ops, g_strdup("list"));
        g_ptr_array_add(ops, g_strdup_printf("introspect %s", job));
        g_ptr_array_add(ops, g_strdup_printf("job %s Wait", job));
        g_ptr_array_add(ops, g_strdup_printf("job %s GetOutput", job));
        g_ptr_array_add(ops, g_strdup_printf("job %s OpenOutput", job));
        g_ptr_array_add(ops, g_strdup_printf("job %s Release", job));
        g_ptr_array_add(ops, NULL);
        out = run_ops(f, user2(), (const char *const *) ops->pdata);
        lines = g_strsplit(out, "\n", -1);
        g_assert_cmpuint(g_strv_length(lines), ==, ops->len - 1);

        /* Nothing private, in any answer. */
        assert_no_secret(out);
        for (const char *const *p = private_properties; *p; p++, i++) {
                g_autofree char *text =
                        g_strdup_printf("error=" ERROR_ACCESS_DENIED ": %s of job 1 is private", *p);
                g_assert_nonnull(strstr(lines[i], text));
        }
        for (const char *const *p = public_properties; *p; p++, i++) {
                g_autofree char *owner = g_strdup_printf("(<uint32 %u>,)", (unsigned) user1()->uid);
                g_assert_null(strstr(lines[i], "error="));
                if (g_str_equal(*p, "State"))
                        g_assert_true(g_str_has_suffix(lines[i], "(<'exited'>,)"));
                if (g_str_equal(*p, "Owner"))
                        g_assert_true(g_str_has_suffix(lines[i], owner));
        }
        /* GetAll: the private ones read empty. */
        g_assert_nonnull(strstr(lines[i], "'Argv': <@as []>"));
        g_assert_nonnull(strstr(lines[i], "'ReturnCode': <0>"));
        g_assert_nonnull(strstr(lines[i], "'State': <'exited'>"));
        i++;
        g_assert_nonnull(strstr(lines[i], "'Error': <''>"));
        g_assert_nonnull(strstr(lines[i], "'State': <'failed'>"));
        i++;
        g_assert_nonnull(strstr(lines[i], "'ReturnCode': <0>"));
        g_assert_null(strstr(lines[i], "<42>"));
        i++;
        if (!g_str_has_suffix(lines[i],
                              "'exited', 0), (2, '/org/procpool/Supervisor1/job/2', 'failed', 0)],)"))
                g_error("ListJobs: %s", lines[i]);
        i++;
        g_assert_nonnull(strstr(lines[i], "org.procpool.Job1"));
        i++;
        for (; lines[i]; i++)
                g_assert_nonnull(strstr(lines[i], "error="));

        /* The owner reads it all. */
        {
                g_autofree char *argv = g_strdup_printf("get %s Argv", job);
                g_autofree char *wait = g_strdup_printf("job %s Wait", job);
                g_autofree char *output = g_strdup_printf("job %s OpenOutput", job);
                g_autofree char *error = g_strdup_printf("get %s Error", failed);
                owner_out = run_ops(f, user1(),
                                    (const char *const[]) { argv, wait, output, "list", error, NULL });
        }
        g_strfreev(lines);
        lines = g_strsplit(owner_out, "\n", -1);
        g_assert_cmpuint(g_strv_length(lines), ==, 5);
        g_assert_nonnull(strstr(lines[0], SECRET "-ARGV"));
        g_assert_true(g_str_has_suffix(lines[1], " (42,)"));
        g_assert_true(g_str_has_suffix(lines[2], " out=" SECRET "-OUT-" SECRET "-ENV\\n|err="));
        g_assert_nonnull(strstr(lines[3], "'exited', 42)"));
        g_assert_nonnull(strstr(lines[4], SECRET "-MISSING"));
        secrets_done(&s);
}

/* The same reads by someone polkit allows org.procpool.manage: everything. */
static void test_manage_reads(Fixture *f, gconstpointer data) {
        Secrets s = {};
        g_autofree char *submit = NULL, *line = NULL, *job = NULL, *argv = NULL, *getall = NULL, *out = NULL;
        g_auto(GStrv) lines = NULL;

        secrets_make(&s);
        submit = secret_submit_op(&s, "");
        line = run_ops(f, user1(), (const char *const[]) { submit, NULL });
        job = submitted_path(line);
        g_assert_true(fixture_wait_state(f, job, "exited"));
        argv = g_strdup_printf("get %s Argv", job);
        getall = g_strdup_printf("getall %s", job);
        out = run_ops(f, user2(), (const char *const[]) { argv, getall, "managed", "list", NULL });
        lines = g_strsplit(out, "\n", -1);
        g_assert_cmpuint(g_strv_length(lines), ==, 4);
        g_assert_nonnull(strstr(lines[0], SECRET "-ARGV"));
        g_assert_nonnull(strstr(lines[1], SECRET "-LABEL"));
        g_assert_nonnull(strstr(lines[1], "'ReturnCode': <42>"));
        g_assert_nonnull(strstr(lines[2], SECRET "-ARGV"));
        g_assert_nonnull(strstr(lines[3], "'exited', 42)"));
        secrets_done(&s);
}

/* Root's job run as procpool-test2 is procpool-test2's to read; procpool-test1 still sees nothing. */
static void test_run_as_reads(Fixture *f, gconstpointer data) {
        Secrets s = {};
        g_autofree char *argv = NULL, *wait = NULL, *out2 = NULL, *out1 = NULL, *path = fixture_job_path(1);
        g_auto(GStrv) lines = NULL;
        g_autofree char *submitted = NULL;

        secrets_make(&s);
        const char *const job_argv[] = { s.script, SECRET "-ARGV", NULL };
        submitted = fixture_submit(f, job_argv,
                                   fixture_options("user", g_variant_new_string(FIXTURE_USER2), NULL));
        g_assert_cmpstr(submitted, ==, path);
        g_assert_true(fixture_wait_state(f, path, "exited"));
        argv = g_strdup_printf("get %s Argv", path);
        wait = g_strdup_printf("job %s Wait", path);
        out2 = run_ops(f, user2(), (const char *const[]) { argv, wait, NULL });
        lines = g_strsplit(out2, "\n", -1);
        g_assert_nonnull(strstr(lines[0], SECRET "-ARGV"));
        g_assert_true(g_str_has_suffix(lines[1], " (42,)"));
        out1 = run_ops(f, user1(), (const char *const[]) { argv, wait, NULL });
        assert_no_secret(out1);
        g_assert_nonnull(strstr(out1, "error=" ERROR_ACCESS_DENIED));
        secrets_done(&s);
}

/* ---- signals -------------------------------------------------------------------------------------------- */

/* What a second user hears of a job while it is submitted, runs, ends and is released: that it exists,
 * its state and times, and nothing private. */
static void test_signals(Fixture *f, gconstpointer data) {
        Secrets s = {};
        g_autofree char *ready = NULL, *submit = NULL, *line = NULL, *job = NULL, *heard = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) set = NULL;
        g_autoptr(GString) text = g_string_new(NULL);
        GPid pid;
        int out, status;

        secrets_make(&s);
        /* Where the listener, of another uid, may make its file. */
        g_assert_cmpint(chmod(s.base, 0777), ==, 0);
        ready = g_build_filename(s.base, "listening", NULL);
        {
                const char *argv[] = { fixture_helper(), "listen", f->address, ready, "77", NULL };
                g_assert_true(g_spawn_async_with_pipes("/", (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                                       fixture_become_user, (gpointer) user2(), &pid, NULL,
                                                       &out, NULL, &error));
                g_assert_no_error(error);
        }
        g_assert_true(fixture_wait_for_file(ready));

        submit = secret_submit_op(&s, "");
        line = run_ops(f, user1(), (const char *const[]) { submit, NULL });
        job = submitted_path(line);
        g_assert_true(fixture_wait_state(f, job, "exited"));
        fixture_job_call_ok(f, job, "Release", NULL);
        /* The listener stops at this change, which comes after every signal of the job. */
        set = g_dbus_connection_call_sync(
                f->conn, BUS_NAME, MANAGER_PATH, "org.freedesktop.DBus.Properties", "Set",
                g_variant_new("(ssv)", MANAGER_IFACE, "PoolSize", g_variant_new_uint32(77)), NULL,
                G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_no_error(error);
        for (;;) {
                char buf[4096];
                ssize_t k = read(out, buf, sizeof(buf));
                if (k < 0 && errno == EINTR)
                        continue;
                g_assert_cmpint(k, >=, 0);
                if (k == 0)
                        break;
                g_string_append_len(text, buf, k);
        }
        close(out);
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        g_test_message("%s heard:\n%s", FIXTURE_USER2, text->str);

        heard = g_string_free(g_steal_pointer(&text), FALSE);
        assert_no_secret(heard);
        /* It heard the job come, run, end and go, with the public properties only... */
        g_assert_nonnull(strstr(heard, "org.freedesktop.DBus.ObjectManager.InterfacesAdded "
                                       "('/org/procpool/Supervisor1/job/1'"));
        g_assert_nonnull(strstr(heard, "'Owner': <uint32 "));
        g_assert_null(strstr(heard, "'Argv'"));
        g_assert_null(strstr(heard, "'Label'"));
        g_assert_nonnull(strstr(heard, "{'State': <'running'>"));
        g_assert_nonnull(strstr(heard, "org.freedesktop.DBus.ObjectManager.InterfacesRemoved"));
        /* ...the private ones that changed named as invalidated, never with their values... */
        g_assert_null(strstr(heard, "'ReturnCode': <"));
        g_assert_null(strstr(heard, "'Pid': <"));
        g_assert_nonnull(strstr(heard, "{'State': <'exited'>, 'FinishedAt': <uint64 "));
        g_assert_nonnull(strstr(heard, "['ReturnCode', "));
        /* ...and JobFinished with the return code 0, not 42. */
        g_assert_nonnull(strstr(heard, "org.procpool.Supervisor1.JobFinished "
                                       "(1, '/org/procpool/Supervisor1/job/1', 'exited', 0)"));
        secrets_done(&s);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        if (getuid() != 0) {
                g_test_skip("needs root");
                return g_test_run();
        }
#define ADD(name, rules, fn) \
        g_test_add("/procpool/privacy/" name, Fixture, rules, setup, fn, fixture_teardown)
        ADD("reads", NULL, test_reads);
        ADD("manage-reads", rules_manage_user2, test_manage_reads);
        ADD("run-as-reads", NULL, test_run_as_reads);
        ADD("signals", NULL, test_signals);
#undef ADD
        return g_test_run();
}
