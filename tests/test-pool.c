/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pool: never more than PoolSize running, one queue for Submit, Call and Communicate, PoolSize
 * changes, priorities and the queue bound. */
#include <unistd.h>

#include "fixture.h"

static gboolean set_pool_size(Fixture *f, guint32 n, GError **error) {
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                f->conn, BUS_NAME, MANAGER_PATH, "org.freedesktop.DBus.Properties", "Set",
                g_variant_new("(ssv)", MANAGER_IFACE, "PoolSize", g_variant_new_uint32(n)), NULL,
                G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
        return r != NULL;
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
        g_autofree char *gate = fixture_gate_path(f, "go"), *wait_gate = fixture_gate_wait_sh(gate);
        const char *argv[] = { "sh", "-c", wait_gate, NULL };
        Counts counts = {};
        guint sub = subscribe_counts(f, &counts);
        char *paths[5];
        guint64 first_finish = G_MAXUINT64, fifth_start;

        for (int i = 0; i < 5; i++)
                paths[i] = fixture_submit(f, argv, NULL);
        /* Four run, the fifth waits: the newest, as all have the same priority. */
        g_assert_true(fixture_wait_counts(f, 4, 1));
        for (int i = 0; i < 4; i++)
                fixture_assert_state(f, paths[i], "running");
        fixture_assert_state(f, paths[4], "queued");

        /* They hold their workers until the test lets them go, once the bus has said that four run
         * (Running is signalled coalesced in time). */
        const char *four[] = { "Running=4", NULL };
        gpointer d[] = { &counts, four };
        g_assert_true(fixture_iterate_until(seen_all, d));
        fixture_gate_open(gate);
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
        g_assert_true(fixture_wait_counts(f, 0, 0));
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
        g_assert_cmpuint(fixture_manager_u(f, "PoolSize"), ==, sysconf(_SC_NPROCESSORS_ONLN));
        g_assert_cmpuint(fixture_manager_u(f, "MaxQueued"), ==, 65536);
        g_assert_cmpuint(fixture_manager_u(f, "Running"), ==, 0);
        g_assert_cmpuint(fixture_manager_u(f, "Queued"), ==, 0);
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

        g_assert_true(fixture_wait_counts(f, 1, 2));
        /* Running and Queued are coalesced in time: wait until the bus has said so too. */
        const char *before[] = { "Running=1", "Queued=2", NULL };
        gpointer b_d[] = { &counts, before };
        g_assert_true(fixture_iterate_until(seen_all, b_d));
        g_assert_true(set_pool_size(f, 3, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(fixture_manager_u(f, "PoolSize"), ==, 3);
        /* The queued ones start without waiting for the running one to end. */
        g_assert_true(fixture_wait_state(f, b, "running"));
        g_assert_true(fixture_wait_state(f, c, "running"));
        fixture_assert_state(f, a, "running");
        g_assert_true(fixture_wait_counts(f, 3, 0));

        const char *wanted[] = { "PoolSize=3", "Running=3", "Queued=0", NULL };
        gpointer d[] = { &counts, wanted };
        g_assert_true(fixture_iterate_until(seen_all, d));
        g_dbus_connection_signal_unsubscribe(f->conn, sub);
        g_ptr_array_unref(counts.seen);
        fixture_job_call_ok(f, a, "Cancel", NULL);
        fixture_job_call_ok(f, b, "Cancel", NULL);
        fixture_job_call_ok(f, c, "Cancel", NULL);
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
        g_assert_cmpuint(fixture_manager_u(f, "PoolSize"), ==, 1);
        waiting = fixture_submit(f, quick, NULL);

        /* All three keep running; the new job waits until fewer than one run. */
        for (int i = 0; i < 3; i++) {
                for (int k = 0; k < 3; k++)
                        fixture_assert_state(f, paths[k], k < i ? "cancelled" : "running");
                fixture_assert_state(f, waiting, "queued");
                fixture_job_call_ok(f, paths[i], "Cancel", NULL);
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
        g_assert_cmpuint(fixture_manager_u(f, "PoolSize"), ==, 1);
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

        g_assert_cmpuint(fixture_manager_u(f, "MaxQueued"), ==, 2);
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
        g_assert_cmpuint(fixture_manager_u(f, "Queued"), ==, 2);

        /* Room again once one leaves the queue. */
        fixture_job_call_ok(f, q1, "Cancel", NULL);
        q3 = fixture_submit(f, quick, NULL);
        g_assert_cmpstr(q3, ==, MANAGER_PATH "/job/4");
        fixture_job_call_ok(f, running, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, q2, "exited"));
        g_assert_true(fixture_wait_state(f, q3, "exited"));
}

static void test_shared_queue(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sleep", "30", NULL };
        const char *exit5[] = { "sh", "-c", "exit 5", NULL };
        const char *cat[] = { "cat", NULL };
        g_autofree char *blocker = fixture_submit(f, argv, NULL);
        g_autoptr(GVariant) out = NULL, err = NULL;
        FixtureReply call = {}, comm = {};
        int rc;

        /* Call and Communicate wait behind a Submit'd job in the one queue. */
        g_assert_true(fixture_wait_state(f, blocker, "running"));
        g_dbus_connection_call(f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call",
                               g_variant_new("(^as@a{sv})", exit5, FIXTURE_NO_OPTIONS), NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, fixture_on_reply, &call);
        g_dbus_connection_call(
                f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                g_variant_new("(^as@ay@a{sv})", cat, fixture_bytes("xyz", 3), FIXTURE_NO_OPTIONS), NULL,
                G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, fixture_on_reply, &comm);
        g_assert_true(fixture_wait_counts(f, 1, 2));
        fixture_assert_state(f, MANAGER_PATH "/job/2", "queued");
        fixture_assert_state(f, MANAGER_PATH "/job/3", "queued");
        g_assert_false(call.done || comm.done);

        fixture_job_call_ok(f, blocker, "Cancel", NULL);
        g_assert_true(fixture_reply_wait(&call));
        g_assert_true(fixture_reply_wait(&comm));
        g_assert_no_error(call.error);
        g_assert_no_error(comm.error);
        g_variant_get(call.value, "(i)", &rc);
        g_assert_cmpint(rc, ==, 5);
        g_variant_get(comm.value, "(i@ay@ay)", &rc, &out, &err);
        g_assert_cmpint(rc, ==, 0);
        g_assert_cmpmem(g_variant_get_data(out), g_variant_get_size(out), "xyz", 3);
        fixture_reply_clear(&call);
        fixture_reply_clear(&comm);
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
        fixture_job_call_ok(f, blocker, "Cancel", NULL);
        g_assert_true(fixture_wait_state(f, queued, "exited"));
        const char *wanted2[] = { "Running=1", "Queued=1", "Queued=0", "Running=0", NULL };
        gpointer d2[] = { &counts, wanted2 };
        g_assert_true(fixture_iterate_until(seen_all, d2));
        g_dbus_connection_signal_unsubscribe(f->conn, sub);
        g_ptr_array_unref(counts.seen);
}

static void test_timeout_from_start(Fixture *f, gconstpointer unused) {
        g_autofree char *gate = fixture_gate_path(f, "go"), *wait_gate = fixture_gate_wait_sh(gate);
        /* Once let go, the blocker keeps its worker for 0.6 s more: the job's own time, not the test's. */
        g_autofree char *script = g_strdup_printf("%s; sleep 0.6", wait_gate);
        const char *blocker_argv[] = { "sh", "-c", script, NULL };
        const char *argv[] = { "sh", "-c", "exit 4", NULL };
        g_autofree char *blocker = fixture_submit(f, blocker_argv, NULL);
        g_autofree char *path = NULL;
        g_autoptr(GVariant) rc = NULL, submitted = NULL, started = NULL;

        /* The timeout runs from the start, not from the submission: waiting in the queue longer
         * than it does not end the job. */
        g_assert_true(fixture_wait_state(f, blocker, "running"));
        path = fixture_submit(f, argv, fixture_options("timeout-usec", g_variant_new_uint64(200000), NULL));
        fixture_assert_state(f, path, "queued");
        fixture_gate_open(gate);
        g_assert_true(fixture_wait_state(f, path, "exited"));
        rc = fixture_get_property(f, path, JOB_IFACE, "ReturnCode");
        g_assert_cmpint(g_variant_get_int32(rc), ==, 4);
        fixture_assert_state(f, blocker, "exited");
        /* It did wait in the queue longer than its timeout. */
        submitted = fixture_get_property(f, path, JOB_IFACE, "SubmittedAt");
        started = fixture_get_property(f, path, JOB_IFACE, "StartedAt");
        g_assert_cmpuint(g_variant_get_uint64(started) - g_variant_get_uint64(submitted), >, 200000);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        FIXTURE_ADD("/procpool/pool/four-of-five", fixture_setup, pool4, test_four_of_five);
        FIXTURE_ADD("/procpool/pool/defaults", fixture_setup, NULL, test_defaults);
        FIXTURE_ADD("/procpool/pool/raise-starts-queued", fixture_setup, pool1, test_raise_starts_queued);
        FIXTURE_ADD("/procpool/pool/lower-never-kills", fixture_setup, pool3, test_lower_never_kills);
        FIXTURE_ADD("/procpool/pool/size-zero", fixture_setup, pool1, test_size_zero);
        FIXTURE_ADD("/procpool/pool/queue-full", fixture_setup, max_queued2, test_queue_full);
        FIXTURE_ADD("/procpool/pool/shared-queue", fixture_setup, pool1, test_shared_queue);
        FIXTURE_ADD("/procpool/pool/counts-changed", fixture_setup, pool1, test_counts_changed);
        FIXTURE_ADD("/procpool/pool/timeout-from-start", fixture_setup, pool1, test_timeout_from_start);
        return g_test_run();
}
