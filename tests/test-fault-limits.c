/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fault suite's limits: the bounds on what one user, the queue and the jobs held may take,
 * each checked from a client's side, and the daemon still answering afterwards. */

#include "fixture.h"

static const char *const argv_true[] = { "true", NULL };
static const char *const argv_sleep[] = { "sleep", "1000", NULL };

static const char *const args_user_queue[] = { "--pool-size=2", "--max-queued-per-user=3",
                                               "--max-running-per-user=1", NULL };

static void test_user_queue_limit(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autofree char *first = fixture_submit_sleeper(f, NULL), *out = NULL, *queued = NULL;
        g_autoptr(GVariant) r = NULL;

        if (!fixture_have_root())
                return;
        /* One uid running one job and holding three queued is at its queue limit... */
        for (int i = 0; i < 3; i++)
                g_free(fixture_submit(f, (const char *const *) argv_sleep, NULL));
        r = fixture_call(f, "Submit", g_variant_new("(^as@a{sv})", argv_sleep, FIXTURE_NO_OPTIONS), &error);
        g_assert_null(r);
        fixture_assert_error(error, "org.procpool.Error.QueueFull", "uid 0 has 3 jobs queued");
        fixture_assert_error(error, "org.procpool.Error.QueueFull", "--max-queued-per-user");

        /* ...and another uid is still served, at once. */
        out = fixture_other_client(f, "call", (const char *const *) argv_true);
        g_assert_cmpstr(out, ==, "rc=0");

        /* A queued job of the first uid that goes makes room for one more. */
        queued = fixture_job_path(2);
        g_clear_error(&error);
        g_clear_pointer(&r, g_variant_unref);
        r = fixture_job_call(f, queued, "Cancel", NULL, &error);
        g_assert_no_error(error);
        g_clear_pointer(&r, g_variant_unref);
        g_free(fixture_submit(f, (const char *const *) argv_sleep, NULL));
        r = fixture_call(f, "Submit", g_variant_new("(^as@a{sv})", argv_sleep, FIXTURE_NO_OPTIONS), &error);
        g_assert_null(r);
        fixture_assert_error(error, "org.procpool.Error.QueueFull", "uid 0");
        g_assert_cmpuint(fixture_manager_u(f, "Queued"), ==, 3);
}

static const char *const args_queue[] = { "--pool-size=1", "--max-queued=3", NULL };

static void test_queue_limit(Fixture *f, gconstpointer unused) {
        g_autofree char *first = fixture_submit_sleeper(f, NULL);
        g_autoptr(GError) error = NULL;

        for (int i = 0; i < 3; i++)
                g_free(fixture_submit(f, (const char *const *) argv_sleep, NULL));
        /* Call and Communicate share the queue with Submit. */
        fixture_expect_call_error(f, (const char *const *) argv_true, NULL, "org.procpool.Error.QueueFull",
                                  "MaxQueued");
        fixture_expect_error(
                f, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                g_variant_new("(^as@ay@a{sv})", argv_true, fixture_bytes("", 0), FIXTURE_NO_OPTIONS),
                "org.procpool.Error.QueueFull", "3 jobs are waiting");
        g_assert_cmpuint(fixture_manager_u(f, "MaxQueued"), ==, 3);

        /* Once the sleeper goes, the queue drains and the daemon answers. */
        g_autoptr(GVariant) cancelled = fixture_job_call(f, first, "Cancel", NULL, &error);
        g_assert_no_error(error);
        for (int id = 2; id <= 4; id++) {
                g_autofree char *p = fixture_job_path(id);
                g_autoptr(GVariant) v = NULL;
                g_assert_true(fixture_wait_state(f, p, "running"));
                v = fixture_job_call(f, p, "Cancel", NULL, &error);
                g_assert_no_error(error);
        }
        fixture_assert_answers(f);
}

static const char *const args_user_running[] = { "--pool-size=2", "--max-running-per-user=1", NULL };

static void test_user_running_limit(Fixture *f, gconstpointer unused) {
        g_autofree char *first = fixture_submit_sleeper(f, NULL), *out = NULL, *second = fixture_job_path(2);
        g_autofree char *state = NULL;

        if (!fixture_have_root())
                return;
        /* More waiting jobs of the limited uid than any fixed look-ahead would pass over. */
        for (int i = 0; i < 200; i++)
                g_free(fixture_submit(f, (const char *const *) argv_sleep, NULL));
        out = fixture_other_client(f, "call", (const char *const *) argv_true);
        g_assert_cmpstr(out, ==, "rc=0");

        /* The free worker went to the other uid; the first uid still runs one job only. */
        state = fixture_job_state(f, second);
        g_assert_cmpstr(state, ==, "queued");
        g_assert_cmpuint(fixture_manager_u(f, "Running"), ==, 1);
        g_assert_cmpuint(fixture_manager_u(f, "Queued"), ==, 200);
}

static const char *const args_user_output[] = { "--max-output-per-user=1M", NULL };

static void test_user_output_limit(Fixture *f, gconstpointer unused) {
        const char *const head[] = { "head", "-c", "700K", "/dev/zero", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        g_autoptr(GVariant) o = NULL, o2 = NULL;
        g_autofree char *p1 = NULL, *p3 = NULL, *other = NULL;
        GVariant *stdout_v;
        int rc;

        if (!fixture_have_root())
                return;
        /* 700K held for uid 0 out of 1M. */
        p1 = fixture_submit(f, head, NULL);
        g_assert_true(fixture_wait_state(f, p1, "exited"));
        o = fixture_job_call(f, p1, "GetOutput", NULL, &error);
        g_assert_no_error(error);
        stdout_v = g_variant_get_child_value(o, 0);
        g_assert_cmpuint(g_variant_n_children(stdout_v), ==, 700 * 1024);
        g_variant_unref(stdout_v);

        /* Communicate of 700K more passes the per-user limit: OutputLimit, naming it. */
        g_assert_false(fixture_communicate(f, head, NULL, 0, NULL, &rc, &out, &err, &error));
        fixture_assert_error(error, "org.procpool.Error.OutputLimit", "--max-output-per-user");
        g_clear_error(&error);

        /* Submit keeps what fits (nothing now) and drains the rest: the job itself succeeds. */
        p3 = fixture_submit(f, head, NULL);
        g_assert_true(fixture_wait_state(f, p3, "exited"));
        o2 = fixture_job_call(f, p3, "GetOutput", NULL, &error);
        g_assert_no_error(error);
        stdout_v = g_variant_get_child_value(o2, 0);
        g_assert_cmpuint(g_variant_n_children(stdout_v), ==, 0);
        g_variant_unref(stdout_v);

        /* Another uid has its own share. */
        other = fixture_other_client(f, "communicate", head);
        g_assert_cmpstr(other, ==, "rc=0 out=716800");

        /* Releasing the held output gives the room back. */
        for (int id = 1; id <= 3; id++) {
                g_autofree char *p = fixture_job_path(id);
                g_autoptr(GVariant) v = fixture_job_call(f, p, "Release", NULL, &error);
                g_assert_no_error(error);
        }
        g_clear_pointer(&out, g_bytes_unref);
        g_clear_pointer(&err, g_bytes_unref);
        g_assert_true(fixture_communicate(f, head, NULL, 0, NULL, &rc, &out, &err, &error));
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 0);
        g_assert_cmpuint(g_bytes_get_size(out), ==, 700 * 1024);
        fixture_assert_answers(f);
}

static const char *const args_held[] = { "--pool-size=1", NULL };

/* The jobs the daemon holds are bounded so that GetManagedObjects, which lists them all with their
 * argv, fits in one message of the bus (32 MiB on a bus given by --address): past the bound a Submit
 * is refused, GetManagedObjects still answers, and finished jobs make room for new ones. */
static void test_managed_objects_fit(Fixture *f, gconstpointer unused) {
        /* 900 KiB of argv, in strings the kernel takes (at most 128 KiB each). */
        g_autofree char *big = g_strnfill(100 * 1024, 'm');
        const char *const big_argv[] = { "true", big, big, big, big, big, big, big, big, big, NULL };
        g_autofree char *blocker = fixture_submit(f, argv_sleep, NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) objects = NULL;
        unsigned accepted = 0;

        for (;;) {
                g_autoptr(GError) e = NULL;
                g_autoptr(GVariant) r =
                        fixture_call_raw(f->conn, MANAGER_PATH, MANAGER_IFACE, "Submit",
                                         g_variant_new("(^as@a{sv})", big_argv, FIXTURE_NO_OPTIONS), &e);
                if (!r) {
                        fixture_assert_error(e, "org.freedesktop.DBus.Error.LimitsExceeded",
                                             "GetManagedObjects");
                        break;
                }
                accepted++;
                g_assert_cmpuint(accepted, <, 64); /* 64 of these are 57 MiB: the bound must come first */
        }
        g_assert_cmpuint(accepted, >=, 16);

        objects = fixture_call_raw(f->conn, MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                                   "GetManagedObjects", NULL, &error);
        g_assert_no_error(error);
        g_autoptr(GVariant) dict = g_variant_get_child_value(objects, 0);
        /* The jobs, and the pool "default". */
        g_assert_cmpuint(g_variant_n_children(dict), ==, accepted + 1 + 1);

        /* Once they have run, finished jobs give their room to new ones, oldest first. */
        g_autoptr(GVariant) c = fixture_job_call(f, blocker, "Cancel", NULL, &error);
        g_assert_no_error(error);
        g_autofree char *last = fixture_job_path(accepted + 1);
        g_assert_true(fixture_wait_state(f, last, "exited"));
        g_autofree char *again = fixture_submit(f, big_argv, NULL);
        g_assert_true(fixture_wait_state(f, again, "exited"));
        fixture_expect_error(f, blocker, JOB_IFACE, "Wait", NULL, "org.freedesktop.DBus.Error.UnknownObject",
                             NULL);
        fixture_assert_answers(f);
}

/* ---- main ---------------------------------------------------------------------------------------- */

#define ADD(name, setup, args, fn) FIXTURE_ADD("/procpool/fault/" name, setup, args, fn)

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        ADD("user-queue-limit", fixture_setup_system, args_user_queue, test_user_queue_limit);
        ADD("queue-limit", fixture_setup, args_queue, test_queue_limit);
        ADD("user-running-limit", fixture_setup_system, args_user_running, test_user_running_limit);
        ADD("user-output-limit", fixture_setup_system, args_user_output, test_user_output_limit);
        ADD("managed-objects-fit", fixture_setup, args_held, test_managed_objects_fit);
        return g_test_run();
}
