/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The system instance for every local user: polkit's answers per action (a real polkitd on a private
 * system bus), jobs that run as their callers, the user option, quotas across real users, procpoolctl
 * --system as an unprivileged user. Who reads what is test-privacy.c's. */
#include <errno.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

#define ERROR_ACCESS_DENIED "org.freedesktop.DBus.Error.AccessDenied"
#define ERROR_INTERACTIVE "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"

/* A test case: polkitd's rules (NULL: none, the actions' defaults apply) and procpoold's arguments
 * besides --system. */
typedef struct Case {
        const char *rules;
        const char *const *args;
        gboolean no_polkit;  /* no polkitd on the bus at all */
        gboolean no_actions; /* polkitd without procpool's actions */
} Case;

static void setup(Fixture *f, gconstpointer data) {
        const Case *c = data;
        g_autoptr(GPtrArray) args = g_ptr_array_new();

        fixture_setup_system_bus(f, NULL);
        if (!c->no_polkit)
                fixture_polkit_start(f, c->rules, !c->no_actions);
        g_ptr_array_add(args, (gpointer) "--system");
        for (const char *const *a = c->args; a && *a; a++)
                g_ptr_array_add(args, (gpointer) *a);
        g_ptr_array_add(args, NULL);
        f->daemon_pid = fixture_start_daemon(f, (const char *const *) args->pdata);
}

static const FixtureUser *user1(void) {
        return fixture_user(FIXTURE_USER1);
}

static const FixtureUser *user2(void) {
        return fixture_user(FIXTURE_USER2);
}

/* One operation of the helper's script mode as user; its one line of outcome, stripped. */
static char *op(Fixture *f, const FixtureUser *user, const char *operation) {
        const char *const ops[] = { operation, NULL };
        char *out = fixture_user_client(f, user, ops);

        return g_strstrip(out);
}

/* Asserts that line says error name, with text in its message. */
static void assert_error_line(const char *line, const char *name, const char *text) {
        g_autofree char *prefix = g_strdup_printf("error=%s: ", name);

        if (!strstr(line, prefix) || (text && !strstr(line, text)))
                g_error("expected %s with '%s', got: %s", name, text ? text : "", line);
}

/* A temporary directory of mode, owned by root; the caller removes it. */
static char *make_dir(mode_t mode) {
        g_autoptr(GError) error = NULL;
        char *dir = g_dir_make_tmp("procpool-polkit-test-XXXXXX", &error);

        g_assert_no_error(error);
        g_assert_cmpint(chmod(dir, mode), ==, 0);
        return dir;
}

/* The supplementary groups of u, as id -G prints them: the primary gid first. */
static char *id_groups(const FixtureUser *u) {
        g_autoptr(GString) s = g_string_new(NULL);

        g_string_append_printf(s, "%u", (unsigned) u->gid);
        for (int i = 0; i < u->n_groups; i++)
                if (u->groups[i] != u->gid)
                        g_string_append_printf(s, " %u", (unsigned) u->groups[i]);
        return g_string_free(g_steal_pointer(&s), FALSE);
}

/* ---- jobs run as their callers ---------------------------------------------------------------------- */

/* Runs sh -c script as user through Communicate: a client of the helper splits on spaces, so the
 * script is sent as one word. Returns the outcome line. */
static char *communicate_sh(Fixture *f, const FixtureUser *user, const char *options, const char *script) {
        g_autofree char *self = fixture_self();
        g_autofree char *encoded = g_uri_escape_string(script, NULL, FALSE);
        const char *argv[] = { self, "--sh-client", f->address, options, encoded, NULL };
        g_autofree char *err = NULL;
        char *out = NULL;
        int status = fixture_run_as_user(user, argv, NULL, &out, &err);

        if (!g_spawn_check_wait_status(status, NULL))
                g_error("client as %s failed: %s", user->name, err);
        g_test_message("as %s: %s", user->name, out);
        return g_strstrip(out);
}

/* Child side of communicate_sh(): "--sh-client ADDRESS OPTIONS SCRIPT", OPTIONS "user=NAME" or "-",
 * SCRIPT URI-escaped. Prints "rc=N out=ESCAPED" or "error=NAME: MESSAGE". */
static int run_sh_client(const char *address, const char *options, const char *encoded) {
        g_autofree char *script = g_uri_unescape_string(encoded, NULL);
        const char *argv[] = { "sh", "-c", script, NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) c = fixture_connect(address, &error);
        g_autoptr(GVariant) r = NULL;
        GVariantBuilder b;

        g_assert_no_error(error);
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        if (g_str_has_prefix(options, "user="))
                g_variant_builder_add(&b, "{sv}", "user", g_variant_new_string(options + 5));
        r = g_dbus_connection_call_sync(
                c, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                g_variant_new("(^as@ay@a{sv})", argv, fixture_bytes("", 0), g_variant_builder_end(&b)), NULL,
                G_DBUS_CALL_FLAGS_NONE, 90 * 1000, NULL, &error);
        if (!r) {
                g_autofree char *name = g_dbus_error_get_remote_error(error);
                g_print("error=%s: %s\n", name, error->message);
                return 0;
        }
        g_autoptr(GVariant) out = NULL, errv = NULL;
        g_autofree char *escaped = NULL, *text = NULL;
        int rc;
        g_variant_get(r, "(i@ay@ay)", &rc, &out, &errv);
        text = fixture_bytes_text(out);
        escaped = g_strescape(text, NULL);
        g_print("rc=%d out=%s\n", rc, escaped);
        return 0;
}

/* Each user's job runs with its uid, primary gid and supplementary groups, and its HOME, USER, LOGNAME
 * and SHELL; root's as root. */
static void test_run_as_caller(Fixture *f, gconstpointer data) {
        const char script[] = "id -u; id -g; id -G; echo \"$HOME|$USER|$LOGNAME|$SHELL\"; cd; pwd";
        const FixtureUser *users[] = { user1(), user2(), fixture_user("root") };

        /* procpool-test1 has a supplementary group: setgroups() must have given it. */
        g_assert_cmpint(user1()->n_groups, >=, 2);
        for (size_t i = 0; i < G_N_ELEMENTS(users); i++) {
                const FixtureUser *u = users[i];
                g_autofree char *groups = id_groups(u);
                g_autofree char *expected =
                        g_strdup_printf("%u\n%u\n%s\n%s|%s|%s|%s\n%s\n", (unsigned) u->uid, (unsigned) u->gid,
                                        groups, u->home, u->name, u->name, u->shell, u->home);
                g_autofree char *escaped = g_strescape(expected, NULL);
                g_autofree char *want = g_strdup_printf("rc=0 out=%s", escaped);
                g_autofree char *got = communicate_sh(f, u, "-", script);

                g_assert_cmpstr(got, ==, want);
        }
        /* The job's Owner is its caller. */
        g_autoptr(GVariant) owner = fixture_get_property(f, MANAGER_PATH "/job/1", JOB_IFACE, "Owner");
        g_assert_cmpuint(g_variant_get_uint32(owner), ==, user1()->uid);

        /* Its own environment entries win over the user database's. */
        g_autofree char *home = op(f, user1(), "communicate env=HOME=/elsewhere -- printenv HOME");
        g_assert_cmpstr(home, ==, "communicate rc=0 out=/elsewhere\\n err=");
}

/* A cwd the job's user may not enter, and a program it may not execute: the job fails, with the
 * error of the user's own try, while root runs both. */
static void test_cwd_and_program(Fixture *f, gconstpointer data) {
        g_autofree char *closed = make_dir(0700), *open_dir = make_dir(0755);
        g_autofree char *program = g_build_filename(open_dir, "root-only", NULL);
        g_autofree char *cwd_op = g_strdup_printf("call cwd=%s -- true", closed);
        g_autofree char *exec_op = g_strdup_printf("call -- %s", program);
        g_autofree char *line = NULL, *text = NULL;
        g_autoptr(GError) error = NULL;
        const char *root_argv[] = { program, NULL };

        g_assert_true(g_file_set_contents(program, "#!/bin/sh\nexit 3\n", -1, &error));
        g_assert_cmpint(chmod(program, 0700), ==, 0);

        line = op(f, user2(), cwd_op);
        text = g_strdup_printf("Failed to change directory to '%s': Permission denied", closed);
        assert_error_line(line, "org.procpool.Error.SpawnFailed", text);
        g_clear_pointer(&line, g_free);
        g_clear_pointer(&text, g_free);
        line = op(f, user2(), exec_op);
        text = g_strdup_printf("Failed to execute '%s': Permission denied", program);
        assert_error_line(line, "org.procpool.Error.SpawnFailed", text);

        /* Root may: the directory and the program are fine, the user's credentials are not. */
        g_assert_cmpint(fixture_call_argv(f, root_argv,
                                          fixture_options("cwd", g_variant_new_string(closed), NULL), &error),
                        ==, 3);
        g_assert_no_error(error);
        fixture_remove_tree(closed);
        fixture_remove_tree(open_dir);
}

/* ---- polkit's answers -------------------------------------------------------------------------------- */

/* org.procpool.run, allowed by default: a rule denies it to procpool-test2 only. */
static const char rules_deny_run_user2[] = "polkit.addRule(function(action, subject) {\n"
                                           "    if (action.id == \"org.procpool.run\" &&\n"
                                           "        subject.user == \"" FIXTURE_USER2 "\")\n"
                                           "        return polkit.Result.NO;\n"
                                           "});\n";

static void test_run_denied(Fixture *f, gconstpointer data) {
        g_autofree char *dir = make_dir(0777);
        g_autofree char *marker = g_build_filename(dir, "ran", NULL);
        g_autofree char *call = g_strdup_printf("call -- touch %s", marker);
        g_autofree char *submit = g_strdup_printf("submit -- touch %s", marker);
        g_autofree char *communicate = g_strdup_printf("communicate -- touch %s", marker);
        g_autofree char *many = g_strdup_printf("submit-many -- touch %s", marker);
        const char *const ops[] = { call, submit, communicate, many, NULL };
        g_autofree char *out = NULL, *expected = NULL, *mine = NULL, *batch = NULL;
        g_auto(GStrv) lines = NULL;

        g_assert_true(fixture_polkit_answers(f, user2(), "org.procpool.run", FALSE));
        out = fixture_user_client(f, user2(), ops);
        lines = g_strsplit(g_strstrip(out), "\n", -1);
        g_assert_cmpuint(g_strv_length(lines), ==, 4);
        expected = g_strdup_printf("uid %u is not allowed to run jobs through procpoold (polkit action "
                                   "org.procpool.run)",
                                   (unsigned) user2()->uid);
        for (int i = 0; i < 4; i++)
                assert_error_line(lines[i], ERROR_ACCESS_DENIED, expected);
        /* Nothing of theirs ran, or was even queued. */
        g_assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
        g_assert_cmpuint(fixture_manager_u(f, "Queued") + fixture_manager_u(f, "Running"), ==, 0);
        g_autoptr(GVariant) list = fixture_call(f, "ListJobs", NULL, NULL);
        g_assert_cmpuint(g_variant_n_children(g_variant_get_child_value(list, 0)), ==, 0);

        /* procpool-test1 still runs jobs: the default. */
        mine = op(f, user1(), "call -- true");
        g_assert_cmpstr(mine, ==, "call (0,)");
        /* ...and batches of them, asked about once. */
        batch = op(f, user1(), "submit-many -- true");
        g_assert_true(g_str_has_prefix(batch, "submit-many (['" MANAGER_PATH "/job/"));
        fixture_remove_tree(dir);
}

/* No polkitd on the bus: nobody but root runs anything, and the message says why. */
static void test_polkit_absent(Fixture *f, gconstpointer data) {
        const char *const argv[] = { "true", NULL };
        g_autofree char *line = op(f, user1(), "call -- true");
        g_autofree char *expected =
                g_strdup_printf("Failed to ask polkit whether uid %u may run jobs through procpoold "
                                "(polkit action org.procpool.run): ",
                                (unsigned) user1()->uid);
        g_autoptr(GError) error = NULL;

        assert_error_line(line, ERROR_ACCESS_DENIED, expected);
        assert_error_line(line, ERROR_ACCESS_DENIED, "without its answer only root may");
        g_assert_cmpint(fixture_call_argv(f, argv, NULL, &error), ==, 0);
        g_assert_no_error(error);
}

/* polkitd without procpool's actions fails the check: that is a no, too. */
static void test_polkit_fails(Fixture *f, gconstpointer data) {
        g_autofree char *line = op(f, user1(), "call -- true");

        assert_error_line(line, ERROR_ACCESS_DENIED, "Failed to ask polkit whether uid");
        assert_error_line(line, ERROR_ACCESS_DENIED, "org.procpool.run");
}

/* The rule for procpool-test1 waits for the file GATE before it answers yes, and makes ASKED first: the
 * test knows the question is out, and holds the answer back. polkitd runs it as its own user. */
static const char rules_slow_fmt[] =
        "polkit.addRule(function(action, subject) {\n"
        "    if (action.id == \"org.procpool.run\" &&\n"
        "        subject.user == \"" FIXTURE_USER1 "\") {\n"
        "        polkit.spawn([\"sh\", \"-c\",\n"
        "            \"touch %s/asked; until [ -e %s/gate ]; do sleep 0.01; done\"]);\n"
        "        return polkit.Result.YES;\n"
        "    }\n"
        "});\n";

/* A caller that leaves the bus while polkit is asked gets nothing started, even when the answer that
 * comes afterwards is yes (the lesson of CVE-2021-3560). */
static void test_caller_gone(Fixture *f, gconstpointer data) {
        g_autofree char *dir = make_dir(0777), *rules = NULL, *leave = NULL, *asked = NULL, *gate = NULL;
        g_autofree char *marker = NULL, *again = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) list = NULL, jobs = NULL;
        GPid pid;
        int status;

        /* polkitd reads its rules before it takes its name. */
        rules = g_strdup_printf(rules_slow_fmt, dir, dir);
        fixture_polkit_start(f, rules, TRUE);
        asked = g_build_filename(dir, "asked", NULL);
        gate = g_build_filename(dir, "gate", NULL);
        marker = g_build_filename(dir, "ran", NULL);
        leave = g_strdup_printf("submit-leave-after %s -- touch %s", asked, marker);

        /* The client leaves once polkit runs the rule for its question. */
        {
                const char *argv[] = { fixture_helper(), "script", f->address, leave, NULL };
                g_assert_true(g_spawn_async("/", (char **) argv, NULL,
                                            G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL,
                                            fixture_become_user, (gpointer) user1(), &pid, &error));
                g_assert_no_error(error);
        }
        g_assert_true(fixture_wait_pid_exit(pid));
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        g_assert_true(g_file_test(asked, G_FILE_TEST_EXISTS));
        /* procpoold has heard that the client left: it answers this after handling NameOwnerChanged. */
        fixture_sync_with_daemon(f->conn);

        /* Now polkit says yes, too late; the next question of procpool-test1 comes after that answer. */
        fixture_gate_open(gate);
        again = op(f, user1(), "call -- true");
        g_assert_cmpstr(again, ==, "call (0,)");
        g_assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
        list = fixture_call(f, "ListJobs", NULL, &error);
        g_assert_no_error(error);
        jobs = g_variant_get_child_value(list, 0);
        g_assert_cmpuint(g_variant_n_children(jobs), ==, 1); /* only the second client's */
        fixture_remove_tree(dir);
}

/* ---- the user option --------------------------------------------------------------------------------- */

static const char rules_run_as_user1[] = "polkit.addRule(function(action, subject) {\n"
                                         "    if (action.id == \"org.procpool.run-as\" &&\n"
                                         "        subject.user == \"" FIXTURE_USER1 "\")\n"
                                         "        return polkit.Result.YES;\n"
                                         "});\n";

static void test_user_option(Fixture *f, gconstpointer data) {
        g_autofree char *as2 = g_strdup_printf("call user=%s -- true", FIXTURE_USER2);
        g_autofree char *as2_interactive = g_strdup_printf("call user=%s interactive -- true", FIXTURE_USER2);
        g_autofree char *as_self = g_strdup_printf("communicate user=%s -- id -u", FIXTURE_USER1);
        g_autofree char *as_self_uid =
                g_strdup_printf("communicate user=%u -- id -u", (unsigned) user1()->uid);
        g_autofree char *line = NULL, *self_out = NULL, *text = NULL, *want = NULL, *owner_path = NULL;
        g_autofree char *root_out = NULL, *user_out = NULL;
        const FixtureUser *u2 = user2();

        /* auth_admin by default: without interaction the caller is told to authenticate... */
        line = op(f, user1(), as2);
        text = g_strdup_printf("uid %u must authenticate to run jobs as another user (polkit action "
                               "org.procpool.run-as)",
                               (unsigned) user1()->uid);
        assert_error_line(line, ERROR_INTERACTIVE, text);
        g_clear_pointer(&line, g_free);
        /* ...and with it, and no authentication agent, nothing succeeds. */
        line = op(f, user1(), as2_interactive);
        assert_error_line(line, ERROR_ACCESS_DENIED, "no authentication succeeded");
        g_clear_pointer(&line, g_free);
        g_assert_cmpuint(fixture_manager_u(f, "Queued") + fixture_manager_u(f, "Running"), ==, 0);

        /* Naming oneself, by name or uid, asks for nothing more. */
        want = g_strdup_printf("communicate rc=0 out=%u\\n err=", (unsigned) user1()->uid);
        self_out = op(f, user1(), as_self);
        g_assert_cmpstr(self_out, ==, want);
        g_clear_pointer(&self_out, g_free);
        self_out = op(f, user1(), as_self_uid);
        g_assert_cmpstr(self_out, ==, want);
        line = op(f, user1(), "call user=procpool-no-such-user -- true");
        assert_error_line(line, "org.freedesktop.DBus.Error.InvalidArgs",
                          "Option 'user': no user 'procpool-no-such-user' in the user database");

        /* Root may, without asking: the job runs as the user, and is root's. */
        {
                const char *argv[] = { "sh", "-c", "id -u; echo $HOME", NULL };
                g_autofree char *expected = g_strdup_printf("%u\n%s\n", (unsigned) u2->uid, u2->home);
                root_out = fixture_run_output(
                        f, argv, fixture_options("user", g_variant_new_string(FIXTURE_USER2), NULL), 0);
                g_assert_cmpstr(root_out, ==, expected);
        }

        /* A rule allows procpool-test1: its job runs as procpool-test2 and stays procpool-test1's. */
        fixture_polkit_set_rules(f, rules_run_as_user1);
        g_assert_true(fixture_polkit_answers(f, user1(), "org.procpool.run-as", TRUE));
        user_out = communicate_sh(f, user1(), "user=" FIXTURE_USER2, "id -u; id -G; echo $HOME $USER");
        {
                g_autofree char *groups = id_groups(u2);
                g_autofree char *expected =
                        g_strdup_printf("%u\n%s\n%s %s\n", (unsigned) u2->uid, groups, u2->home, u2->name);
                g_autofree char *escaped = g_strescape(expected, NULL);
                g_autofree char *expected_line = g_strdup_printf("rc=0 out=%s", escaped);
                g_assert_cmpstr(user_out, ==, expected_line);
        }
        {
                g_autoptr(GVariant) list = fixture_call(f, "ListJobs", NULL, NULL);
                g_autoptr(GVariant) jobs = g_variant_get_child_value(list, 0);
                g_autoptr(GVariant) last = g_variant_get_child_value(jobs, g_variant_n_children(jobs) - 1);
                g_autoptr(GVariant) owner = NULL;
                const char *path;

                g_variant_get_child(last, 1, "&o", &path);
                owner = fixture_get_property(f, path, JOB_IFACE, "Owner");
                g_assert_cmpuint(g_variant_get_uint32(owner), ==, user1()->uid);
        }
}

/* ---- org.procpool.manage ----------------------------------------------------------------------------- */

static void test_manage_default(Fixture *f, gconstpointer data) {
        g_autofree char *job = fixture_submit_sleeper(f, NULL);
        g_autofree char *cancel = g_strdup_printf("job %s Cancel", job);
        g_autofree char *cancel_i = g_strdup_printf("job %s Cancel interactive", job);
        const char *const ops[] = { cancel, "pool-size 3", "reexecute", cancel_i, "pool-size 3 interactive",
                                    NULL };
        g_autofree char *out = fixture_user_client(f, user2(), ops);
        g_auto(GStrv) lines = g_strsplit(g_strstrip(out), "\n", -1);
        g_autofree char *text =
                g_strdup_printf("uid %u must authenticate to manage procpoold and other users' "
                                "jobs (polkit action org.procpool.manage)",
                                (unsigned) user2()->uid);

        g_assert_cmpuint(g_strv_length(lines), ==, 5);
        for (int i = 0; i < 3; i++)
                assert_error_line(lines[i], ERROR_INTERACTIVE, text);
        for (int i = 3; i < 5; i++)
                assert_error_line(lines[i], ERROR_ACCESS_DENIED, "no authentication succeeded");
        /* Nothing they tried took effect. */
        fixture_assert_state(f, job, "running");
        g_assert_cmpuint(fixture_manager_u(f, "PoolSize"), !=, 3);
        fixture_job_call_ok(f, job, "Cancel", NULL);
}

static const char rules_manage_user2[] = "polkit.addRule(function(action, subject) {\n"
                                         "    if (action.id == \"org.procpool.manage\" &&\n"
                                         "        subject.user == \"" FIXTURE_USER2 "\")\n"
                                         "        return polkit.Result.YES;\n"
                                         "});\n";

static void test_manage_allowed(Fixture *f, gconstpointer data) {
        g_autofree char *submitted = op(f, user1(), "submit label=theirs -- sleep 1000");
        g_autofree char *job = NULL, *cancel = NULL, *label = NULL, *out = NULL;
        g_auto(GStrv) lines = NULL;

        g_assert_true(g_str_has_prefix(submitted, "submit ('"));
        job = g_strndup(submitted + strlen("submit ('"), strcspn(submitted + strlen("submit ('"), "'"));
        g_assert_true(fixture_wait_state(f, job, "running"));
        cancel = g_strdup_printf("job %s Cancel", job);
        label = g_strdup_printf("get %s Label", job);
        {
                const char *const ops[] = { label, cancel, "pool-size 3", NULL };
                out = fixture_user_client(f, user2(), ops);
        }
        lines = g_strsplit(g_strstrip(out), "\n", -1);
        g_assert_cmpuint(g_strv_length(lines), ==, 3);
        g_assert_true(g_str_has_suffix(lines[0], " (<'theirs'>,)"));
        g_assert_true(g_str_has_prefix(lines[1], cancel));
        g_assert_true(g_str_has_suffix(lines[1], " ()"));
        g_assert_cmpstr(lines[2], ==, "pool-size 3 ()");
        g_assert_true(fixture_wait_state(f, job, "cancelled"));
        g_assert_cmpuint(fixture_manager_u(f, "PoolSize"), ==, 3);
}

/* ---- quotas across real users ------------------------------------------------------------------------ */

static void test_quotas(Fixture *f, gconstpointer data) {
        g_autofree char *blocker = fixture_submit_sleeper(f, NULL);
        const char *const two[] = { "submit -- sleep 1000", "submit -- sleep 1000", NULL };
        g_autofree char *out1 = fixture_user_client(f, user1(), two);
        g_autofree char *out2 = NULL, *text = NULL;
        g_auto(GStrv) lines = g_strsplit(g_strstrip(out1), "\n", -1);

        /* One queued job each (--max-queued-per-user=1): the second of procpool-test1 is refused... */
        g_assert_cmpuint(g_strv_length(lines), ==, 2);
        g_assert_true(g_str_has_prefix(lines[0], "submit ('"));
        text = g_strdup_printf("uid %u has 1 jobs queued already", (unsigned) user1()->uid);
        assert_error_line(lines[1], "org.procpool.Error.QueueFull", text);
        /* ...procpool-test2 has a share of its own. */
        out2 = op(f, user2(), "submit -- sleep 1000");
        g_assert_true(g_str_has_prefix(out2, "submit ('"));
        g_assert_cmpuint(fixture_manager_u(f, "Queued"), ==, 2);
        for (int id = 1; id <= 3; id++) {
                g_autofree char *path = fixture_job_path(id);
                fixture_job_call_ok(f, path, "Cancel", NULL);
        }
}

/* ---- procpoolctl --system as an unprivileged user ------------------------------------------------------ */

static const char *ctl_path(void) {
        const char *p = g_getenv("PROCPOOLCTL");
        g_assert_nonnull(p); /* set by meson test */
        return p;
}

/* procpoolctl --system args... as user, the private bus as the system bus, after child_setup (which
 * becomes user); returns its exit code. */
static int ctl_as_with(Fixture *f, const FixtureUser *user, GSpawnChildSetupFunc child_setup,
                       const char *const *args, char **ret_out, char **ret_err) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_auto(GStrv) env = g_environ_setenv(g_get_environ(), "DBUS_SYSTEM_BUS_ADDRESS", f->address, TRUE);
        g_autoptr(GError) error = NULL;
        int status;

        g_ptr_array_add(argv, (gpointer) ctl_path());
        g_ptr_array_add(argv, (gpointer) "--system");
        for (const char *const *a = args; *a; a++)
                g_ptr_array_add(argv, (gpointer) *a);
        g_ptr_array_add(argv, NULL);
        g_assert_true(g_spawn_sync("/", (char **) argv->pdata, env, G_SPAWN_DEFAULT, child_setup,
                                   (gpointer) user, ret_out, ret_err, &status, &error));
        g_assert_no_error(error);
        g_test_message("procpoolctl as %s -> %d\nstdout: %s\nstderr: %s", user->name, status, *ret_out,
                       *ret_err);
        g_assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static int ctl_as(Fixture *f, const FixtureUser *user, const char *const *args, char **ret_out,
                  char **ret_err) {
        return ctl_as_with(f, user, fixture_become_user, args, ret_out, ret_err);
}

static void test_procpoolctl(Fixture *f, gconstpointer data) {
        g_autofree char *out = NULL, *err = NULL, *expected = NULL;
        const char *const call[] = { "call", "--", "id", "-u", NULL };
        const char *const run_as[] = { "submit", "--no-ask-password", "--user=" FIXTURE_USER1, "--", "true",
                                       NULL };

        expected = g_strdup_printf("%u\n", (unsigned) user1()->uid);
        g_assert_cmpint(ctl_as(f, user1(), call, &out, &err), ==, 0);
        g_assert_cmpstr(out, ==, expected);
        g_clear_pointer(&out, g_free);
        g_clear_pointer(&err, g_free);

        /* The second user can neither read nor touch that job. */
        {
                const char *const output[] = { "output", "1", NULL };
                const char *const cancel[] = { "release", "1", NULL };
                g_assert_cmpint(ctl_as(f, user2(), output, &out, &err), ==, 1);
                g_assert_cmpstr(out, ==, "");
                g_assert_nonnull(strstr(err, "is private to uid"));
                g_clear_pointer(&out, g_free);
                g_clear_pointer(&err, g_free);
                g_assert_cmpint(ctl_as(f, user2(), cancel, &out, &err), ==, 1);
                g_assert_nonnull(strstr(err, "org.procpool.manage"));
                g_clear_pointer(&out, g_free);
                g_clear_pointer(&err, g_free);
        }
        fixture_assert_outcome(f, MANAGER_PATH "/job/1", "exited", 0);

        /* --user=NAME asks for org.procpool.run-as: without a password, and no rule, it is refused. */
        g_assert_cmpint(ctl_as(f, user2(), run_as, &out, &err), ==, 1);
        g_assert_nonnull(strstr(err, "must authenticate to run jobs as another user"));
}

/* ---- the private socket ------------------------------------------------------------------------------ */

/* Child side of direct_client(): "--direct-client SOCKET": Communicate of "id -u" over a direct connection
 * to SOCKET. Prints "rc=N out=UID" or "error=NAME: MESSAGE". */
static int run_direct_client(const char *socket) {
        g_autofree char *address = g_strdup_printf("unix:path=%s", socket);
        const char *const argv[] = { "id", "-u", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) c = g_dbus_connection_new_for_address_sync(
                address, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT, NULL, NULL, &error);
        g_autoptr(GVariant) r = NULL, out = NULL, errv = NULL;
        g_autofree char *text = NULL;
        int rc;

        g_assert_no_error(error);
        r = g_dbus_connection_call_sync(
                c, NULL, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                g_variant_new("(^as@ay@a{sv})", argv, fixture_bytes("", 0), FIXTURE_NO_OPTIONS), NULL,
                G_DBUS_CALL_FLAGS_NONE, 90 * 1000, NULL, &error);
        if (!r) {
                g_autofree char *name = g_dbus_error_get_remote_error(error);
                g_print("error=%s: %s\n", name, error->message);
                return 0;
        }
        g_variant_get(r, "(i@ay@ay)", &rc, &out, &errv);
        text = fixture_bytes_text(out);
        g_print("rc=%d out=%s", rc, text);
        return 0;
}

static char *private_dir;

static char *direct_client(const FixtureUser *user) {
        g_autofree char *self = fixture_self();
        g_autofree char *socket = g_build_filename(private_dir, "private", NULL);
        const char *argv[] = { self, "--direct-client", socket, NULL };
        g_autofree char *err = NULL;
        char *out = NULL;
        int status = fixture_run_as_user(user, argv, NULL, &out, &err);

        if (!g_spawn_check_wait_status(status, NULL))
                g_error("direct client as %s failed: %s", user->name, err);
        g_test_message("as %s over the socket: %s", user->name, out);
        return g_strstrip(out);
}

static void setup_private(Fixture *f, gconstpointer data) {
        g_autofree char *arg = NULL;

        private_dir = make_dir(0755);
        arg = g_strdup_printf("--private-socket=%s/private", private_dir);
        const char *const args[] = { "--system", arg, NULL };
        fixture_setup_system_bus(f, NULL);
        fixture_polkit_start(f, data, TRUE);
        f->daemon_pid = fixture_start_daemon(f, args);
}

static void teardown_private(Fixture *f, gconstpointer data) {
        fixture_teardown(f, data);
        fixture_remove_tree(private_dir);
        g_clear_pointer(&private_dir, g_free);
}

/* Over the private socket, polkit is asked about the peer's process (unix-process: pid, start time, and
 * the uid of SO_PEERCRED), and its rules decide as on the bus: procpool-test1 runs as itself, procpool-test2
 * is denied by the rule that names it. The socket is usable by every user. */
static void test_private_socket(Fixture *f, gconstpointer data) {
        g_autofree char *socket = g_build_filename(private_dir, "private", NULL);
        g_autofree char *allowed = NULL, *denied = NULL, *expected_out = NULL, *expected_error = NULL;
        struct stat st;

        g_assert_cmpint(stat(socket, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 07777, ==, 0666);
        g_assert_true(fixture_polkit_answers(f, user2(), "org.procpool.run", FALSE));
        allowed = direct_client(user1());
        expected_out = g_strdup_printf("rc=0 out=%u", (unsigned) user1()->uid);
        g_assert_cmpstr(allowed, ==, expected_out);
        denied = direct_client(user2());
        expected_error = g_strdup_printf("uid %u is not allowed to run jobs through procpoold (polkit action "
                                         "org.procpool.run)",
                                         (unsigned) user2()->uid);
        assert_error_line(denied, ERROR_ACCESS_DENIED, expected_error);
}

/* Child setup of procpoolctl_direct(): /run/procpool is the test's private dir, in a mount namespace of
 * the child's own, where procpoolctl --system looks for the socket; then the user. */
static void become_user_with_socket(gpointer user) {
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0 ||
            mkdir("/run/procpool", 0755) < 0 || mount(private_dir, "/run/procpool", NULL, MS_BIND, NULL) < 0)
                _exit(98);
        fixture_become_user(user);
}

/* procpoolctl --system args... as user, with the daemon's private socket where procpoolctl looks for it. */
static int procpoolctl_direct(Fixture *f, const FixtureUser *user, const char *const *args, char **ret_out,
                              char **ret_err) {
        return ctl_as_with(f, user, become_user_with_socket, args, ret_out, ret_err);
}

/* On the system instance a direct connection passes fds only for root (see the fault suite's
 * untrusted-fds): procpoolctl call, which passes its stdin, stdout and stderr, takes the bus for another
 * user, and commands without fds the socket; either way the user sees the same. */
static void test_private_socket_procpoolctl(Fixture *f, gconstpointer data) {
        g_autofree char *out = NULL, *err = NULL, *expected = NULL;
        const char *const call[] = { "call", "--", "sh", "-c", "id -u; echo to-stderr >&2", NULL };
        const char *const submit[] = { "submit", "--wait", "--", "echo", "submitted", NULL };
        const char *const output[] = { "output", "2", NULL };

        expected = g_strdup_printf("%u\n", (unsigned) user1()->uid);
        g_assert_cmpint(procpoolctl_direct(f, user1(), call, &out, &err), ==, 0);
        g_assert_cmpstr(out, ==, expected);
        g_assert_nonnull(strstr(err, "to-stderr\n"));
        g_clear_pointer(&out, g_free);
        g_clear_pointer(&err, g_free);

        g_assert_cmpint(procpoolctl_direct(f, user1(), submit, &out, &err), ==, 0);
        g_clear_pointer(&out, g_free);
        g_clear_pointer(&err, g_free);
        g_assert_cmpint(procpoolctl_direct(f, user1(), output, &out, &err), ==, 0);
        g_assert_cmpstr(out, ==, "submitted\n");
        fixture_assert_outcome(f, MANAGER_PATH "/job/1", "exited", 0);
}

int main(int argc, char *argv[]) {
        if (argc == 5 && g_str_equal(argv[1], "--sh-client"))
                return run_sh_client(argv[2], argv[3], argv[4]);
        if (argc == 3 && g_str_equal(argv[1], "--direct-client"))
                return run_direct_client(argv[2]);

        g_test_init(&argc, &argv, NULL);
        if (getuid() != 0) {
                /* Jobs of other users, polkitd and its mount namespace need root. */
                g_test_skip("needs root");
                return g_test_run();
        }
        static const Case plain = { 0 };
        static const Case deny_run = { .rules = rules_deny_run_user2 };
        static const Case absent = { .no_polkit = TRUE };
        static const Case no_actions = { .no_actions = TRUE };
        static const Case manage = { .rules = rules_manage_user2 };
        static const char *const quota_args[] = { "--pool-size=1", "--max-queued-per-user=1", NULL };
        static const Case quotas = { .args = quota_args };

#define ADD(name, c, fn) g_test_add("/procpool/polkit/" name, Fixture, &c, setup, fn, fixture_teardown)
        ADD("run-as-caller", plain, test_run_as_caller);
        ADD("cwd-and-program", plain, test_cwd_and_program);
        ADD("run-denied", deny_run, test_run_denied);
        ADD("polkit-absent", absent, test_polkit_absent);
        ADD("polkit-fails", no_actions, test_polkit_fails);
        ADD("caller-gone", absent, test_caller_gone);
        ADD("user-option", plain, test_user_option);
        ADD("manage-default", plain, test_manage_default);
        ADD("manage-allowed", manage, test_manage_allowed);
        ADD("quotas", quotas, test_quotas);
        ADD("procpoolctl", plain, test_procpoolctl);
#undef ADD
        g_test_add("/procpool/polkit/private-socket", Fixture, rules_deny_run_user2, setup_private,
                   test_private_socket, teardown_private);
        g_test_add("/procpool/polkit/private-socket-procpoolctl", Fixture, NULL, setup_private,
                   test_private_socket_procpoolctl, teardown_private);
        return g_test_run();
}
