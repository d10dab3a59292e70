/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SubmitMany: many jobs in one call, with one set of options, queued all or none, authorized and stored
 * as Submit's, and heard of by a listener one by one. */
#include <signal.h>
#include <sys/wait.h>

#include "fixture.h"

/* ---- helpers --------------------------------------------------------------------------------------- */

/* An aas of "sh -c SCRIPT" commands, floating. */
static GVariant *sh_argvs(const char *const *scripts) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("aas"));
        for (const char *const *s = scripts; *s; s++) {
                const char *argv[] = { "sh", "-c", *s, NULL };
                g_variant_builder_add(&b, "^as", argv);
        }
        return g_variant_builder_end(&b);
}

/* An aas of n commands "true", floating. */
static GVariant *true_argvs(guint n) {
        const char *argv[] = { "true", NULL };
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("aas"));
        for (guint i = 0; i < n; i++)
                g_variant_builder_add(&b, "^as", argv);
        return g_variant_builder_end(&b);
}

/* SubmitMany that must succeed: the paths, in order (free with g_strfreev). */
static char **submit_many(Fixture *f, GVariant *argvs, GVariant *options) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        char **paths;

        r = fixture_call(f, "SubmitMany", g_variant_new("(@aas@a{sv})", argvs, options ?: FIXTURE_NO_OPTIONS),
                         &error);
        g_assert_no_error(error);
        g_variant_get(r, "(^ao)", &paths);
        return paths;
}

static void expect_many_error(Fixture *f, GVariant *argvs, GVariant *options, const char *name,
                              const char *text) {
        fixture_expect_error(f, MANAGER_PATH, MANAGER_IFACE, "SubmitMany",
                             g_variant_new("(@aas@a{sv})", argvs, options ?: FIXTURE_NO_OPTIONS), name, text);
}

static guint n_jobs(Fixture *f) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = fixture_call(f, "ListJobs", NULL, &error);
        g_autoptr(GVariant) l = NULL;

        g_assert_no_error(error);
        l = g_variant_get_child_value(r, 0);
        return (guint) g_variant_n_children(l);
}

static guint64 path_id(const char *path) {
        return g_ascii_strtoull(strrchr(path, '/') + 1, NULL, 10);
}

/* ---- cases ------------------------------------------------------------------------------------------ */

static const char *const pool1[] = { "--pool-size=1", NULL };
static const char *const pool2[] = { "--pool-size=2", NULL };

/* n jobs, their paths in the order of the argvs and their ids consecutive; each runs its own command. */
static void test_happy(Fixture *f, gconstpointer unused) {
        const char *scripts[] = {
                "echo zero", "echo one", "echo two; exit 2", "echo three", "echo four", NULL
        };
        g_auto(GStrv) paths = submit_many(f, sh_argvs(scripts), NULL);
        const char *expected[] = { "zero\n", "one\n", "two\n", "three\n", "four\n" };

        g_assert_cmpuint(g_strv_length(paths), ==, 5);
        for (guint i = 0; i < 5; i++) {
                g_autofree char *out = NULL;

                g_assert_cmpuint(path_id(paths[i]), ==, path_id(paths[0]) + i);
                g_assert_true(fixture_wait_finished(f, paths[i]));
                fixture_assert_outcome(f, paths[i], "exited", i == 2 ? 2 : 0);
                out = fixture_job_stdout(f, paths[i]);
                g_assert_cmpstr(out, ==, expected[i]);
        }
        /* The next batch's ids follow. */
        {
                g_auto(GStrv) more = submit_many(f, true_argvs(2), NULL);
                g_assert_cmpuint(path_id(more[0]), ==, path_id(paths[4]) + 1);
                g_assert_cmpuint(path_id(more[1]), ==, path_id(paths[4]) + 2);
        }
}

/* One bad entry refuses the whole batch, naming its index; nothing is queued. */
static void test_all_or_nothing(Fixture *f, gconstpointer unused) {
        const char *one[] = { "true", NULL }, *none[] = { NULL }, *empty0[] = { "", "x", NULL };
        GVariantBuilder b;
        int pipefd[2];

        g_variant_builder_init(&b, G_VARIANT_TYPE("aas"));
        for (int i = 0; i < 3; i++)
                g_variant_builder_add(&b, "^as", one);
        g_variant_builder_add(&b, "^as", none);
        g_variant_builder_add(&b, "^as", one);
        expect_many_error(f, g_variant_builder_end(&b), NULL, "org.freedesktop.DBus.Error.InvalidArgs",
                          "argvs[3]: empty argv");

        g_variant_builder_init(&b, G_VARIANT_TYPE("aas"));
        g_variant_builder_add(&b, "^as", one);
        g_variant_builder_add(&b, "^as", empty0);
        expect_many_error(f, g_variant_builder_end(&b), NULL, "org.freedesktop.DBus.Error.InvalidArgs",
                          "argvs[1]: argv[0] is empty");

        expect_many_error(f, g_variant_new_array(G_VARIANT_TYPE("as"), NULL, 0), NULL,
                          "org.freedesktop.DBus.Error.InvalidArgs", "argvs is empty");
        /* A bad option is every job's. */
        expect_many_error(f, true_argvs(3), fixture_options("cwd", g_variant_new_string("relative"), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "Option 'cwd'");
        expect_many_error(f, true_argvs(3),
                          fixture_options("after", g_variant_new("at", NULL), "bogus",
                                          g_variant_new_boolean(TRUE), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "Unknown option 'bogus'");
        expect_many_error(f, true_argvs(2), fixture_options("pool", g_variant_new_string("nosuch"), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "there is no pool 'nosuch'");
        /* An argv too long for one job, at its index. */
        {
                g_autofree char *big = g_strnfill(1024 * 1024 + 1, 'x');
                const char *argv_big[] = { "echo", big, NULL };

                g_variant_builder_init(&b, G_VARIANT_TYPE("aas"));
                g_variant_builder_add(&b, "^as", one);
                g_variant_builder_add(&b, "^as", argv_big);
                expect_many_error(f, g_variant_builder_end(&b), NULL,
                                  "org.freedesktop.DBus.Error.LimitsExceeded",
                                  "argvs[1]: argv and environment");
        }
        /* More jobs than one call takes. */
        expect_many_error(f, true_argvs(4097), NULL, "org.freedesktop.DBus.Error.LimitsExceeded",
                          "at most 4096 jobs");

        /* An fd is used up by the one job it goes to: refused, naming the option. */
        g_assert_no_errno(pipe(pipefd));
        {
                g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) r = NULL;
                int h = g_unix_fd_list_append(fds, pipefd[1], &error);

                g_assert_no_error(error);
                r = g_dbus_connection_call_with_unix_fd_list_sync(
                        f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "SubmitMany",
                        g_variant_new("(@aas@a{sv})", true_argvs(2),
                                      fixture_options("stdout", g_variant_new_handle(h), NULL)),
                        NULL, G_DBUS_CALL_FLAGS_NONE, -1, fds, NULL, NULL, &error);
                g_assert_null(r);
                fixture_assert_error(error, "org.freedesktop.DBus.Error.InvalidArgs",
                                     "Option 'stdout' passes an fd");
        }
        close(pipefd[0]);
        close(pipefd[1]);

        g_assert_cmpuint(n_jobs(f), ==, 0);
        /* The ids were not used up either. */
        {
                g_auto(GStrv) paths = submit_many(f, true_argvs(1), NULL);
                g_assert_cmpstr(paths[0], ==, MANAGER_PATH "/job/1");
        }
}

/* The options are every job's. */
static void test_options_shared(Fixture *f, gconstpointer unused) {
        const char *scripts[] = { "echo \"a $X $(pwd)\"", "echo \"b $X $(pwd)\"", "echo \"c $X $(pwd)\"",
                                  NULL };
        g_autofree char *sleeper = fixture_submit_sleeper(f, NULL);
        g_auto(GStrv) paths = NULL;
        const char *env[] = { "X=shared", NULL };

        /* after the sleeper: they wait for it, all three. */
        paths = submit_many(
                f, sh_argvs(scripts),
                fixture_options(
                        "environment", g_variant_new_strv(env, -1), "cwd", g_variant_new_string("/tmp"),
                        "label", g_variant_new_string("batch"), "priority", g_variant_new_int32(7), "after",
                        g_variant_new_fixed_array(G_VARIANT_TYPE_UINT64, (guint64[]) { path_id(sleeper) }, 1,
                                                  sizeof(guint64)),
                        NULL));
        for (guint i = 0; i < 3; i++) {
                g_autoptr(GVariant) label = fixture_get_property(f, paths[i], JOB_IFACE, "Label");
                g_autoptr(GVariant) prio = fixture_get_property(f, paths[i], JOB_IFACE, "Priority");

                g_assert_cmpstr(g_variant_get_string(label, NULL), ==, "batch");
                g_assert_cmpint(g_variant_get_int32(prio), ==, 7);
                fixture_assert_state(f, paths[i], "queued");
        }
        fixture_job_call_ok(f, sleeper, "Kill", g_variant_new("(i)", SIGKILL));
        /* The sleeper did not exit 0: every job of the batch fails its dependency. */
        for (guint i = 0; i < 3; i++) {
                g_assert_true(fixture_wait_finished(f, paths[i]));
                fixture_assert_state(f, paths[i], "failed");
        }

        g_strfreev(paths);
        paths = submit_many(f, sh_argvs(scripts),
                            fixture_options("environment", g_variant_new_strv(env, -1), "cwd",
                                            g_variant_new_string("/tmp"), NULL));
        for (guint i = 0; i < 3; i++) {
                g_autofree char *out = NULL, *expected = g_strdup_printf("%c shared /tmp\n", 'a' + i);

                g_assert_true(fixture_wait_finished(f, paths[i]));
                fixture_assert_outcome(f, paths[i], "exited", 0);
                out = fixture_job_stdout(f, paths[i]);
                g_assert_cmpstr(out, ==, expected);
        }
}

static const char *const queue3[] = { "--pool-size=1", "--max-queued=3", "--max-queued-per-user=5", NULL };

/* A batch fits the queue as a whole, or none of it is queued; the error says how many would fit. */
static void test_queue_full(Fixture *f, gconstpointer unused) {
        g_autofree char *sleeper = fixture_submit_sleeper(f, NULL);
        const char *argv_true[] = { "true", NULL };
        g_auto(GStrv) paths = NULL;
        g_autofree char *single = NULL;

        single = fixture_submit(f, argv_true, NULL);
        expect_many_error(f, true_argvs(3), NULL, "org.procpool.Error.QueueFull",
                          "3 jobs do not fit: the queue takes 2 more (MaxQueued 3); none was queued");
        g_assert_cmpuint(fixture_manager_u(f, "Queued"), ==, 1);
        g_assert_cmpuint(n_jobs(f), ==, 2);
        paths = submit_many(f, true_argvs(2), NULL);
        g_assert_cmpuint(fixture_manager_u(f, "Queued"), ==, 3);
        expect_many_error(f, true_argvs(1), NULL, "org.procpool.Error.QueueFull", "takes 0 more");
        fixture_job_call_ok(f, sleeper, "Cancel", NULL);
        for (guint i = 0; i < 2; i++)
                g_assert_true(fixture_wait_state(f, paths[i], "exited"));
}

static const char *const user_queue2[] = { "--pool-size=1", "--max-queued-per-user=2", NULL };

static void test_user_queue_full(Fixture *f, gconstpointer unused) {
        g_autofree char *sleeper = fixture_submit_sleeper(f, NULL);

        expect_many_error(f, true_argvs(3), NULL, "org.procpool.Error.QueueFull",
                          "3 jobs do not fit: uid 0 may queue 2 more (--max-queued-per-user 2)");
        g_assert_cmpuint(n_jobs(f), ==, 1);
        g_strfreev(submit_many(f, true_argvs(2), NULL));
        g_assert_cmpuint(fixture_manager_u(f, "Queued"), ==, 2);
        fixture_job_call_ok(f, sleeper, "Cancel", NULL);
}

/* Authorized as Submit is: a session instance runs jobs for its own uid (and root) only. */
static void test_other_uid(Fixture *f, gconstpointer unused) {
        const char *cmds[] = { "true", "true", NULL };
        g_autofree char *out = NULL;

        if (!fixture_have_root())
                return;
        g_assert_cmpuint(f->daemon_uid, ==, 0);
        out = fixture_other_client(f, "submit-many", cmds);
        g_assert_cmpstr(out, ==, "error=org.freedesktop.DBus.Error.AccessDenied");
        g_assert_cmpuint(n_jobs(f), ==, 0);
}

/* Acknowledged means stored: a daemon killed right after the reply runs the whole batch when it is back. */
static void test_durable(Fixture *f, gconstpointer unused) {
        const char *scripts[] = { "echo first", "echo second", "echo third", NULL };
        g_autofree char *sleeper = fixture_submit_sleeper(f, NULL);
        g_auto(GStrv) paths = submit_many(f, sh_argvs(scripts), NULL);
        int status;

        g_assert_no_errno(kill(f->daemon_pid, SIGKILL));
        g_assert_cmpint(waitpid(f->daemon_pid, &status, 0), ==, f->daemon_pid);
        f->daemon_pid = fixture_start_daemon(f, pool1);
        for (guint i = 0; i < 3; i++) {
                g_autofree char *out = NULL, *expected = g_strdup_printf("%s\n", scripts[i] + 5);

                g_assert_true(fixture_wait_finished(f, paths[i]));
                fixture_assert_outcome(f, paths[i], "exited", 0);
                out = fixture_job_stdout(f, paths[i]);
                g_assert_cmpstr(out, ==, expected);
        }
        fixture_assert_state(f, sleeper, "failed");
}

/* A listener hears of every job of a burst of batches: its InterfacesAdded, its JobFinished, and its final
 * state, whatever the daemon folds together. */
typedef struct {
        GHashTable *added;    /* path -> State in InterfacesAdded */
        GHashTable *finished; /* path -> state in JobFinished */
        GHashTable *state;    /* path -> the last State heard (InterfacesAdded or PropertiesChanged) */
        guint want;
} Listen;

static void on_signal(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                      const char *signal, GVariant *params, gpointer userdata) {
        Listen *l = userdata;

        if (g_str_equal(signal, "InterfacesAdded")) {
                g_autoptr(GVariant) ifaces = NULL, props = NULL, state = NULL;
                const char *job;

                g_variant_get(params, "(&o@a{sa{sv}})", &job, &ifaces);
                props = g_variant_lookup_value(ifaces, JOB_IFACE, G_VARIANT_TYPE("a{sv}"));
                g_assert_nonnull(props);
                state = g_variant_lookup_value(props, "State", G_VARIANT_TYPE_STRING);
                g_assert_nonnull(state);
                g_assert_false(g_hash_table_contains(l->added, job));
                g_hash_table_insert(l->added, g_strdup(job), g_variant_dup_string(state, NULL));
                g_hash_table_insert(l->state, g_strdup(job), g_variant_dup_string(state, NULL));
        } else if (g_str_equal(signal, "JobFinished")) {
                const char *job, *state;

                g_variant_get(params, "(t&o&si)", NULL, &job, &state, NULL);
                g_assert_true(g_hash_table_contains(l->added, job));
                g_hash_table_insert(l->finished, g_strdup(job), g_strdup(state));
        } else if (g_str_equal(signal, "PropertiesChanged")) {
                g_autoptr(GVariant) changed = NULL, state = NULL;

                g_assert_true(g_hash_table_contains(l->added, path));
                g_variant_get(params, "(&s@a{sv}@as)", NULL, &changed, NULL);
                state = g_variant_lookup_value(changed, "State", G_VARIANT_TYPE_STRING);
                if (state)
                        g_hash_table_insert(l->state, g_strdup(path), g_variant_dup_string(state, NULL));
        }
}

static gboolean all_heard(gpointer data) {
        Listen *l = data;
        return g_hash_table_size(l->finished) >= l->want;
}

static const char *const pool4[] = { "--pool-size=4", NULL };
/* Jobs per batch: four batches of jobs that end faster than the daemon goes idle make more signals than
 * its queue holds (MANAGER_SIGNALS_MAX), which then goes out before the next one is queued. */
#define BURST 300

static void test_listener_hears_all(Fixture *f, gconstpointer unused) {
        Listen l = { .added = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free),
                     .finished = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free),
                     .state = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free),
                     .want = 4 * BURST };
        GPtrArray *all = g_ptr_array_new_with_free_func(g_free);
        guint subs[3];

        subs[0] = g_dbus_connection_signal_subscribe(f->conn, BUS_NAME, "org.freedesktop.DBus.ObjectManager",
                                                     "InterfacesAdded", MANAGER_PATH, NULL,
                                                     G_DBUS_SIGNAL_FLAGS_NONE, on_signal, &l, NULL);
        subs[1] = g_dbus_connection_signal_subscribe(f->conn, BUS_NAME, MANAGER_IFACE, "JobFinished",
                                                     MANAGER_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_signal,
                                                     &l, NULL);
        subs[2] = g_dbus_connection_signal_subscribe(f->conn, BUS_NAME, "org.freedesktop.DBus.Properties",
                                                     "PropertiesChanged", NULL, JOB_IFACE,
                                                     G_DBUS_SIGNAL_FLAGS_NONE, on_signal, &l, NULL);
        /* Four batches sent at once: the daemon takes them in one go where it can. */
        for (guint k = 0; k < 4; k++)
                g_dbus_connection_call(f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "SubmitMany",
                                       g_variant_new("(@aas@a{sv})", true_argvs(BURST), FIXTURE_NO_OPTIONS),
                                       NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL, NULL);
        g_assert_true(fixture_iterate_until(all_heard, &l));
        g_assert_cmpuint(g_hash_table_size(l.added), ==, 4 * BURST);
        g_assert_cmpuint(g_hash_table_size(l.finished), ==, 4 * BURST);
        for (guint64 id = 1; id <= 4 * BURST; id++)
                g_ptr_array_add(all, fixture_job_path(id));
        for (guint i = 0; i < all->len; i++) {
                const char *p = g_ptr_array_index(all, i);
                g_assert_cmpstr(g_hash_table_lookup(l.finished, p), ==, "exited");
                /* The property cache a listener builds from the signals alone ends final. */
                g_assert_cmpstr(g_hash_table_lookup(l.state, p), ==, "exited");
        }
        for (guint i = 0; i < 3; i++)
                g_dbus_connection_signal_unsubscribe(f->conn, subs[i]);
        g_ptr_array_unref(all);
        g_hash_table_unref(l.added);
        g_hash_table_unref(l.finished);
        g_hash_table_unref(l.state);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        FIXTURE_ADD("/procpool/submit-many/happy", fixture_setup, pool2, test_happy);
        FIXTURE_ADD("/procpool/submit-many/all-or-nothing", fixture_setup, pool2, test_all_or_nothing);
        FIXTURE_ADD("/procpool/submit-many/options-shared", fixture_setup, pool2, test_options_shared);
        FIXTURE_ADD("/procpool/submit-many/queue-full", fixture_setup, queue3, test_queue_full);
        FIXTURE_ADD("/procpool/submit-many/user-queue-full", fixture_setup, user_queue2,
                    test_user_queue_full);
        FIXTURE_ADD("/procpool/submit-many/other-uid", fixture_setup_open_bus, NULL, test_other_uid);
        FIXTURE_ADD("/procpool/submit-many/durable", fixture_setup, pool1, test_durable);
        FIXTURE_ADD("/procpool/submit-many/listener-hears-all", fixture_setup, pool4,
                    test_listener_hears_all);
        return g_test_run();
}
