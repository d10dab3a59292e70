/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pool: never more than PoolSize running, one queue for Submit, Call and Communicate, PoolSize
 * changes, priorities and the queue bound. */
#include <unistd.h>

#include "fixture.h"

static guint32 manager_u(Fixture *f, const char *name) {
        g_autoptr(GVariant) v = fixture_get_property(f, MANAGER_PATH, MANAGER_IFACE, name);
        return g_variant_get_uint32(v);
}

static char *job_state(Fixture *f, const char *path) {
        g_autoptr(GVariant) v = fixture_get_property(f, path, JOB_IFACE, "State");
        return g_variant_dup_string(v, NULL);
}

static void assert_state(Fixture *f, const char *path, const char *state) {
        g_autofree char *s = job_state(f, path);
        g_assert_cmpstr(s, ==, state);
}

static void job_method(Fixture *f, const char *path, const char *method) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = fixture_job_call(f, path, method, NULL, &error);
        g_assert_no_error(error);
}

static gboolean set_pool_size(Fixture *f, guint32 n, GError **error) {
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                f->conn, BUS_NAME, MANAGER_PATH, "org.freedesktop.DBus.Properties", "Set",
                g_variant_new("(ssv)", MANAGER_IFACE, "PoolSize", g_variant_new_uint32(n)), NULL,
                G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
        return r != NULL;
}

/* Polls Running and Queued until they are as given. */
static gboolean wait_counts(Fixture *f, guint32 running, guint32 queued) {
        for (int i = 0; i < 2000; i++) {
                if (manager_u(f, "Running") == running && manager_u(f, "Queued") == queued)
                        return TRUE;
                g_usleep(5000);
        }
        return FALSE;
}

typedef struct {
        guint32 max_running;
        GPtrArray *seen; /* "Name=value" */
} Counts;

static void on_manager_changed(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                               const char *member, GVariant *params, gpointer data) {
        Counts *counts = data;
        g_autoptr(GVariant) changed = g_variant_get_child_value(params, 1);
        GVariantIter it;
        const char *name;
        GVariant *value;

        g_variant_iter_init(&it, changed);
        while (g_variant_iter_loop(&it, "{&sv}", &name, &value)) {
                guint32 v = g_variant_get_uint32(value);
                if (g_str_equal(name, "Running") && v > counts->max_running)
                        counts->max_running = v;
                g_ptr_array_add(counts->seen, g_strdup_printf("%s=%u", name, v));
        }
}

static guint subscribe_counts(Fixture *f, Counts *counts) {
        counts->seen = g_ptr_array_new_with_free_func(g_free);
        return g_dbus_connection_signal_subscribe(f->conn, NULL, "org.freedesktop.DBus.Properties",
                                                  "PropertiesChanged", MANAGER_PATH, MANAGER_IFACE,
                                                  G_DBUS_SIGNAL_FLAGS_NONE, on_manager_changed, counts, NULL);
}

static gboolean seen_all(gpointer data) {
        gpointer *d = data;
        Counts *counts = d[0];
        const char *const *wanted = d[1];

        for (const char *const *w = wanted; *w; w++)
                if (!g_ptr_array_find_with_equal_func(counts->seen, *w, g_str_equal, NULL))
                        return FALSE;
        return TRUE;
}

static const char *const pool1[] = { "--pool-size=1", NULL };
static const char *const pool3[] = { "--pool-size=3", NULL };
static const char *const pool4[] = { "--pool-size=4", NULL };

static void test_four_of_five(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sleep", "1", NULL };
        Counts counts = {};
        guint sub = subscribe_counts(f, &counts);
        char *paths[5];
        guint64 first_finish = G_MAXUINT64, fifth_start;

        for (int i = 0; i < 5; i++)
                paths[i] = fixture_submit(f, argv, NULL);
        /* Four run, the fifth waits: the newest, as all have the same priority. */
        g_assert_true(wait_counts(f, 4, 1));
        for (int i = 0; i < 4; i++)
                assert_state(f, paths[i], "running");
        assert_state(f, paths[4], "queued");

        for (int i = 0; i < 5; i++)
                g_assert_true(fixture_wait_state(f, paths[i], "exited"));
        for (int i = 0; i < 4; i++) {
                g_autoptr(GVariant) v = fixture_get_property(f, paths[i], JOB_IFACE, "FinishedAt");
                first_finish = MIN(first_finish, g_variant_get_uint64(v));
        }
        g_autoptr(GVariant) s = fixture_get_property(f, paths[4], JOB_IFACE, "StartedAt");
        fifth_start = g_variant_get_uint64(s);
        /* The fifth started only once a worker was free, and never more than four ran at once. */
        g_assert_cmpuint(fifth_start, >=, first_finish);
        g_assert_true(wait_counts(f, 0, 0));
        while (g_main_context_iteration(NULL, FALSE))
                ;
        g_assert_cmpuint(counts.max_running, ==, 4);
        g_dbus_connection_signal_unsubscribe(f->conn, sub);
        g_ptr_array_unref(counts.seen);
        for (int i = 0; i < 5; i++)
                g_free(paths[i]);
}

static void test_defaults(Fixture *f, gconstpointer unused) {
        g_autoptr(GVariant) version = fixture_get_property(f, MANAGER_PATH, MANAGER_IFACE, "Version");
        const char *argv[] = { g_getenv("PROCPOOLD"), "--version", NULL };
        g_autofree char *out = NULL, *expected = NULL;
        g_autoptr(GError) error = NULL;

        /* As Python's Pool(): one worker per online CPU. */
        g_assert_cmpuint(manager_u(f, "PoolSize"), ==, sysconf(_SC_NPROCESSORS_ONLN));
        g_assert_cmpuint(manager_u(f, "MaxQueued"), ==, 65536);
        g_assert_cmpuint(manager_u(f, "Running"), ==, 0);
        g_assert_cmpuint(manager_u(f, "Queued"), ==, 0);
        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, NULL,
                                   &error));
        g_assert_no_error(error);
        expected = g_strdup_printf("procpoold %s\n", g_variant_get_string(version, NULL));
        g_assert_cmpstr(out, ==, expected);
}

static void test_raise_starts_queued(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sleep", "30", NULL };
        g_autoptr(GError) error = NULL;
        Counts counts = {};
        guint sub = subscribe_counts(f, &counts);
        g_autofree char *a = fixture_submit(f, argv, NULL);
        g_autofree char *b = fixture_submit(f, argv, NULL);
        g_autofree char *c = fixture_submit(f, argv, NULL);

        g_assert_true(wait_counts(f, 1, 2));
        /* Running and Queued are coalesced in time: wait until the bus has said so too. */
        const char *before[] = { "Running=1", "Queued=2", NULL };
        gpointer b_d[] = { &counts, before };
        g_assert_true(fixture_iterate_until(seen_all, b_d));
        g_assert_true(set_pool_size(f, 3, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(manager_u(f, "PoolSize"), ==, 3);
        /* The queued ones start without waiting for the running one to end. */
        g_assert_true(fixture_wait_state(f, b, "running"));
        g_assert_true(fixture_wait_state(f, c, "running"));
        assert_state(f, a, "running");
        g_assert_true(wait_counts(f, 3, 0));

        const char *wanted[] = { "PoolSize=3", "Running=3", "Queued=0", NULL };
        gpointer d[] = { &counts, wanted };
        g_assert_true(fixture_iterate_until(seen_all, d));
        g_dbus_connection_signal_unsubscribe(f->conn, sub);
        g_ptr_array_unref(counts.seen);
        job_method(f, a, "Cancel");
        job_method(f, b, "Cancel");
        job_method(f, c, "Cancel");
}

static void test_lower_never_kills(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sleep", "30", NULL };
        const char *quick[] = { "sh", "-c", "exit 8", NULL };
        char *paths[3];
        g_autofree char *waiting = NULL;
        g_autoptr(GError) error = NULL;

        for (int i = 0; i < 3; i++)
                paths[i] = fixture_submit(f, argv, NULL);
        for (int i = 0; i < 3; i++)
                g_assert_true(fixture_wait_state(f, paths[i], "running"));
        g_assert_true(set_pool_size(f, 1, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(manager_u(f, "PoolSize"), ==, 1);
        waiting = fixture_submit(f, quick, NULL);

        /* All three keep running; the new job waits until fewer than one run. */
        for (int i = 0; i < 3; i++) {
                for (int k = 0; k < 3; k++)
                        assert_state(f, paths[k], k < i ? "cancelled" : "running");
                assert_state(f, waiting, "queued");
                job_method(f, paths[i], "Cancel");
                g_assert_true(fixture_wait_state(f, paths[i], "cancelled"));
        }
        g_assert_true(fixture_wait_state(f, waiting, "exited"));
        for (int i = 0; i < 3; i++)
                g_free(paths[i]);
}

static void test_size_zero(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;

        g_assert_false(set_pool_size(f, 0, &error));
        fixture_assert_error(error, "org.freedesktop.DBus.Error.InvalidArgs", NULL);
        g_assert_cmpuint(manager_u(f, "PoolSize"), ==, 1);
}

static const char *const max_queued2[] = { "--pool-size=1", "--max-queued=2", NULL };

static void test_queue_full(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sleep", "30", NULL };
        const char *quick[] = { "true", NULL };
        g_autofree char *running = fixture_submit(f, argv, NULL);
        g_autofree char *q1 = NULL, *q2 = NULL, *q3 = NULL;
        g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL;
        g_autoptr(GVariant) r = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        int rc;

        g_assert_cmpuint(manager_u(f, "MaxQueued"), ==, 2);
        g_assert_true(fixture_wait_state(f, running, "running"));
        q1 = fixture_submit(f, quick, NULL);
        q2 = fixture_submit(f, quick, NULL);
        /* The queue holds two: a third is refused, whichever method brings it. */
        r = fixture_call(f, "Submit", g_variant_new("(^as@a{sv})", quick, FIXTURE_NO_OPTIONS), &e1);
        g_assert_null(r);
        fixture_assert_error(e1, "org.procpool.Error.QueueFull", NULL);
        g_assert_cmpint(fixture_call_argv(f, quick, NULL, &e2), ==, -1000);
        fixture_assert_error(e2, "org.procpool.Error.QueueFull", NULL);
        g_assert_false(fixture_communicate(f, quick, NULL, 0, NULL, &rc, &out, &err, &e3));
        fixture_assert_error(e3, "org.procpool.Error.QueueFull", NULL);
        g_assert_cmpuint(manager_u(f, "Queued"), ==, 2);

        /* Room again once one leaves the queue. */
        job_method(f, q1, "Cancel");
        q3 = fixture_submit(f, quick, NULL);
        g_assert_cmpstr(q3, ==, MANAGER_PATH "/job/4");
        job_method(f, running, "Cancel");
        g_assert_true(fixture_wait_state(f, q2, "exited"));
        g_assert_true(fixture_wait_state(f, q3, "exited"));
}

typedef struct {
        int done;
        int call_rc;
        int comm_rc;
        char *comm_out;
} Shared;

static void on_call(GObject *source, GAsyncResult *res, gpointer data) {
        Shared *s = data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);

        g_assert_no_error(error);
        g_variant_get(r, "(i)", &s->call_rc);
        s->done++;
}

static void on_communicate(GObject *source, GAsyncResult *res, gpointer data) {
        Shared *s = data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error),
                            o = NULL, e = NULL;

        g_assert_no_error(error);
        g_variant_get(r, "(i@ay@ay)", &s->comm_rc, &o, &e);
        s->comm_out = g_strndup(g_variant_get_data(o), g_variant_get_size(o));
        s->done++;
}

static gboolean both_done(gpointer data) {
        return ((Shared *) data)->done == 2;
}

static void test_shared_queue(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sleep", "30", NULL };
        const char *exit5[] = { "sh", "-c", "exit 5", NULL };
        const char *cat[] = { "cat", NULL };
        g_autofree char *blocker = fixture_submit(f, argv, NULL);
        Shared s = {};

        /* Call and Communicate wait behind a Submit'd job in the one queue. */
        g_assert_true(fixture_wait_state(f, blocker, "running"));
        g_dbus_connection_call(f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call",
                               g_variant_new("(^as@a{sv})", exit5, FIXTURE_NO_OPTIONS), NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, on_call, &s);
        g_dbus_connection_call(f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                               g_variant_new("(^as@ay@a{sv})", cat,
                                             g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, "xyz", 3, 1),
                                             FIXTURE_NO_OPTIONS),
                               NULL, G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, on_communicate, &s);
        g_assert_true(wait_counts(f, 1, 2));
        assert_state(f, MANAGER_PATH "/job/2", "queued");
        assert_state(f, MANAGER_PATH "/job/3", "queued");
        g_assert_cmpint(s.done, ==, 0);

        job_method(f, blocker, "Cancel");
        g_assert_true(fixture_iterate_until(both_done, &s));
        g_assert_cmpint(s.call_rc, ==, 5);
        g_assert_cmpint(s.comm_rc, ==, 0);
        g_assert_cmpstr(s.comm_out, ==, "xyz");
        g_free(s.comm_out);
}

static void test_counts_changed(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sleep", "30", NULL };
        const char *quick[] = { "true", NULL };
        Counts counts = {};
        guint sub = subscribe_counts(f, &counts);
        g_autofree char *blocker = fixture_submit(f, argv, NULL);
        g_autofree char *queued = NULL;

        g_assert_true(fixture_wait_state(f, blocker, "running"));
        queued = fixture_submit(f, quick, NULL);
        const char *wanted1[] = { "Running=1", "Queued=1", NULL };
        gpointer d1[] = { &counts, wanted1 };
        g_assert_true(fixture_iterate_until(seen_all, d1));
        job_method(f, blocker, "Cancel");
        g_assert_true(fixture_wait_state(f, queued, "exited"));
        const char *wanted2[] = { "Running=1", "Queued=1", "Queued=0", "Running=0", NULL };
        gpointer d2[] = { &counts, wanted2 };
        g_assert_true(fixture_iterate_until(seen_all, d2));
        g_dbus_connection_signal_unsubscribe(f->conn, sub);
        g_ptr_array_unref(counts.seen);
}

static void test_timeout_from_start(Fixture *f, gconstpointer unused) {
        const char *blocker_argv[] = { "sleep", "0.6", NULL };
        const char *argv[] = { "sh", "-c", "exit 4", NULL };
        g_autofree char *blocker = fixture_submit(f, blocker_argv, NULL);
        g_autofree char *path = NULL;
        g_autoptr(GVariant) rc = NULL;

        /* The timeout runs from the start, not from the submission: waiting in the queue longer
         * than it does not end the job. */
        g_assert_true(fixture_wait_state(f, blocker, "running"));
        path = fixture_submit(f, argv, fixture_options("timeout-usec", g_variant_new_uint64(200000), NULL));
        g_assert_true(fixture_wait_state(f, path, "exited"));
        rc = fixture_get_property(f, path, JOB_IFACE, "ReturnCode");
        g_assert_cmpint(g_variant_get_int32(rc), ==, 4);
        assert_state(f, blocker, "exited");
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add("/procpool/pool/four-of-five", Fixture, pool4, fixture_setup, test_four_of_five,
                   fixture_teardown);
        g_test_add("/procpool/pool/defaults", Fixture, NULL, fixture_setup, test_defaults, fixture_teardown);
        g_test_add("/procpool/pool/raise-starts-queued", Fixture, pool1, fixture_setup,
                   test_raise_starts_queued, fixture_teardown);
        g_test_add("/procpool/pool/lower-never-kills", Fixture, pool3, fixture_setup, test_lower_never_kills,
                   fixture_teardown);
        g_test_add("/procpool/pool/size-zero", Fixture, pool1, fixture_setup, test_size_zero,
                   fixture_teardown);
        g_test_add("/procpool/pool/queue-full", Fixture, max_queued2, fixture_setup, test_queue_full,
                   fixture_teardown);
        g_test_add("/procpool/pool/shared-queue", Fixture, pool1, fixture_setup, test_shared_queue,
                   fixture_teardown);
        g_test_add("/procpool/pool/counts-changed", Fixture, pool1, fixture_setup, test_counts_changed,
                   fixture_teardown);
        g_test_add("/procpool/pool/timeout-from-start", Fixture, pool1, fixture_setup,
                   test_timeout_from_start, fixture_teardown);
        return g_test_run();
}
