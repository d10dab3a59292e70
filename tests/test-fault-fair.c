/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fault suite's fairness between uids: one uid's queue, held job data or finished jobs neither
 * starve nor evict another's. procpoold runs as OTHER_UID, so that root and OTHER_UID are two uids that
 * may both run jobs on a bus that admits every uid. */

#include "fixture.h"

/* Jobs uid 0 queues behind the one it runs: more than any fixed look-ahead would pass over. */
#define N_QUEUED 64

/* A job that waits at the gate of its name; the test opens it. */
static char *submit_gated(Fixture *f, const char *name, gint32 priority) {
        g_autofree char *gate = fixture_gate_path(f, name), *script = fixture_gate_wait_sh(gate);
        const char *const argv[] = { "sh", "-c", script, NULL };

        return fixture_submit(f, argv, fixture_options("priority", g_variant_new_int32(priority), NULL));
}

/* The same, submitted by OTHER_UID. */
static char *other_submit_gated(Fixture *f, const char *name, const char *priority) {
        g_autofree char *gate = fixture_gate_path(f, name), *script = fixture_gate_wait_sh(gate);
        const char *const cmd[] = { priority, "sh", "-c", script, NULL };
        g_autofree char *out = fixture_other_client(f, "submit", cmd);

        if (!g_str_has_prefix(out, "path="))
                g_error("Submit as uid %d: %s", OTHER_UID, out);
        return g_strdup(out + strlen("path="));
}

static void open_gate(Fixture *f, const char *name) {
        g_autofree char *gate = fixture_gate_path(f, name);
        fixture_gate_open(gate);
}

/* Job id is held and in state. */
static void assert_job_state(Fixture *f, guint64 id, const char *state) {
        g_autofree char *path = fixture_job_path(id);
        fixture_assert_state(f, path, state);
}

/* Job id is released: no object any more. */
static void assert_job_gone(Fixture *f, guint64 id) {
        g_autofree char *path = fixture_job_path(id);
        fixture_expect_error(f, path, JOB_IFACE, "Wait", NULL, "org.freedesktop.DBus.Error.UnknownObject",
                             NULL);
}

/* ---- scheduling ------------------------------------------------------------------------------------ */

static const char *const args_one_slot[] = { "--pool-size=1", NULL };

/* uid 0 queues N_QUEUED long jobs; uid OTHER_UID's one job, though of a lower priority, starts in the
 * next free slot; then uid 0's, its highest priority first. */
static void test_fair_next_slot(Fixture *f, gconstpointer unused) {
        g_autofree char *high = NULL, *other = NULL;
        g_autoptr(GPtrArray) own = g_ptr_array_new_with_free_func(g_free);

        if (!fixture_have_root())
                return;
        for (int i = 0; i < N_QUEUED + 1; i++) {
                g_autofree char *name = g_strdup_printf("own-%d", i);
                g_ptr_array_add(own, submit_gated(f, name, 0));
        }
        high = submit_gated(f, "own-high", 5);
        g_assert_true(fixture_wait_state(f, own->pdata[0], "running"));
        other = other_submit_gated(f, "other", "-10");
        g_assert_true(fixture_wait_counts(f, 1, N_QUEUED + 2));

        /* Priority orders the jobs of one uid, not of all: the other uid goes next. */
        open_gate(f, "own-0");
        g_assert_true(fixture_wait_counts(f, 1, N_QUEUED + 1));
        fixture_assert_state(f, other, "running");
        fixture_assert_state(f, high, "queued");
        fixture_assert_state(f, own->pdata[1], "queued");

        /* Then uid 0's turn, by its own priorities. */
        open_gate(f, "other");
        g_assert_true(fixture_wait_counts(f, 1, N_QUEUED));
        fixture_assert_state(f, high, "running");
        fixture_assert_state(f, own->pdata[1], "queued");
        open_gate(f, "own-high");
        g_assert_true(fixture_wait_counts(f, 1, N_QUEUED - 1));
        fixture_assert_state(f, own->pdata[1], "running");
}

/* Queued jobs read back from the store after a restart are scheduled by uid as well. */
static void test_fair_after_restart(Fixture *f, gconstpointer args) {
        g_autofree char *other = NULL;
        int status;

        if (!fixture_have_root())
                return;
        for (int i = 0; i < N_QUEUED; i++) {
                g_autofree char *name = g_strdup_printf("own-%d", i), *path = submit_gated(f, name, 0);
                if (i == 0)
                        g_assert_true(fixture_wait_state(f, path, "running"));
        }
        other = other_submit_gated(f, "other", "0");

        status = fixture_stop_daemon(f->daemon_pid);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        f->daemon_pid = fixture_start_daemon(f, args);
        assert_job_state(f, 1, "failed");
        /* Job 2 is uid 0's first: it runs, the rest waits. */
        g_assert_true(fixture_wait_counts(f, 1, N_QUEUED - 1));
        assert_job_state(f, 2, "running");

        open_gate(f, "own-1");
        g_assert_true(fixture_wait_counts(f, 1, N_QUEUED - 2));
        fixture_assert_state(f, other, "running");
        assert_job_state(f, 3, "queued");
}

/* ---- the held-data bound --------------------------------------------------------------------------- */

/* 900 KiB of argv, in strings the kernel takes (at most 128 KiB each). */
static char **big_argv(const char *prog) {
        g_autofree char *big = g_strnfill(100 * 1024, 'm');
        g_autoptr(GStrvBuilder) b = g_strv_builder_new();

        g_strv_builder_add(b, prog);
        for (int i = 0; i < 9; i++)
                g_strv_builder_add(b, big);
        return g_strv_builder_end(b);
}

/* uid 0 at its share of the held-data bound (three quarters of 24 MiB on a bus given by --address)
 * gets LimitsExceeded naming it; OTHER_UID still submits as large jobs, into the quarter left. */
static void test_held_share(Fixture *f, gconstpointer unused) {
        g_auto(GStrv) argv = big_argv("true");
        g_autofree char *blocker = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) objects = NULL, dict = NULL;
        unsigned accepted = 0, other_accepted = 0;

        if (!fixture_have_root())
                return;
        blocker = fixture_submit_sleeper(f, NULL);
        for (;;) {
                g_autoptr(GError) e = NULL;
                g_autoptr(GVariant) r =
                        fixture_call(f, "Submit", g_variant_new("(^as@a{sv})", argv, FIXTURE_NO_OPTIONS), &e);
                if (!r) {
                        fixture_assert_error(e, "org.freedesktop.DBus.Error.LimitsExceeded", "uid 0 holds");
                        fixture_assert_error(e, "org.freedesktop.DBus.Error.LimitsExceeded",
                                             "at most 18874368 (its share");
                        break;
                }
                accepted++;
                g_assert_cmpuint(accepted, <, 64);
        }
        /* 18 MiB of jobs of 900 KiB argv and 1 KiB besides, the sleeper's 1 KiB included. */
        g_assert_cmpuint(accepted, ==, 20);

        /* The other uid is served, with as large a job, until the quarter left is full: then the whole
         * bound is reached, and uid 0's jobs, none of them finished, cannot make room. */
        for (;;) {
                g_autoptr(GStrvBuilder) b = g_strv_builder_new();
                g_auto(GStrv) cmd = NULL;
                g_autofree char *out = NULL;

                g_strv_builder_add(b, "0");
                g_strv_builder_addv(b, (const char **) argv);
                cmd = g_strv_builder_end(b);
                out = fixture_other_client(f, "submit", (const char *const *) cmd);
                if (!g_str_has_prefix(out, "path=")) {
                        g_assert_cmpstr(out, ==, "error=org.freedesktop.DBus.Error.LimitsExceeded");
                        break;
                }
                other_accepted++;
                g_assert_cmpuint(other_accepted, <, 64);
        }
        /* 24 MiB less what uid 0 holds. */
        g_assert_cmpuint(other_accepted, ==, 7);
        fixture_expect_error(f, MANAGER_PATH, MANAGER_IFACE, "Submit",
                             g_variant_new("(^as@a{sv})", argv, FIXTURE_NO_OPTIONS),
                             "org.freedesktop.DBus.Error.LimitsExceeded", "uid 0 holds");

        objects = fixture_call_raw(f->conn, MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                                   "GetManagedObjects", NULL, &error);
        g_assert_no_error(error);
        dict = g_variant_get_child_value(objects, 0);
        /* The jobs, and the pool "default". */
        g_assert_cmpuint(g_variant_n_children(dict), ==, 1 + accepted + other_accepted + 1);
        fixture_job_call_ok(f, blocker, "Cancel", NULL);
        fixture_assert_answers(f);
}

/* Room in uid 0's share is made by releasing uid 0's oldest finished jobs, never OTHER_UID's, though
 * it is older. */
static void test_held_release_own(Fixture *f, gconstpointer unused) {
        g_auto(GStrv) argv = big_argv("true");
        const char *const echo[] = { "echo", "kept", NULL };
        g_autofree char *out = NULL, *other = NULL;
        const guint n = 40; /* 36 MiB: past the whole bound */

        if (!fixture_have_root())
                return;
        out = fixture_other_client(f, "call", echo);
        g_assert_cmpstr(out, ==, "rc=0");
        for (guint i = 0; i < n; i++) {
                g_autoptr(GError) error = NULL;
                g_assert_cmpint(fixture_call_argv(f, (const char *const *) argv, NULL, &error), ==, 0);
                g_assert_no_error(error);
        }
        /* OTHER_UID's job and its output are there; uid 0's oldest went, its newest stay. */
        assert_job_state(f, 1, "exited");
        other = fixture_job_path(1);
        {
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) o = fixture_job_call(f, other, "GetOutput", NULL, &error);
                g_autoptr(GVariant) stdout_v = NULL;
                g_assert_no_error(error);
                stdout_v = g_variant_get_child_value(o, 0);
                g_assert_cmpmem(g_variant_get_data(stdout_v), g_variant_get_size(stdout_v), "kept\n", 5);
        }
        assert_job_gone(f, 2);
        assert_job_state(f, n + 1, "exited");
        fixture_assert_answers(f);
}

/* ---- retention ------------------------------------------------------------------------------------- */

static const char *const args_retain[] = { "--retain=4", NULL };

/* --retain counts per uid: uid 0 running twice as many jobs releases its own oldest, not OTHER_UID's
 * finished job, which is older. */
static void test_retain_per_uid(Fixture *f, gconstpointer unused) {
        const char *const argv_true[] = { "true", NULL };
        const char *const echo[] = { "echo", "kept", NULL };
        g_autofree char *out = NULL;

        if (!fixture_have_root())
                return;
        out = fixture_other_client(f, "call", echo);
        g_assert_cmpstr(out, ==, "rc=0");
        for (int i = 0; i < 2 * 4; i++) {
                g_autoptr(GError) error = NULL;
                g_assert_cmpint(fixture_call_argv(f, argv_true, NULL, &error), ==, 0);
                g_assert_no_error(error);
        }
        assert_job_state(f, 1, "exited");
        for (guint64 id = 2; id <= 5; id++)
                assert_job_gone(f, id);
        for (guint64 id = 6; id <= 9; id++)
                assert_job_state(f, id, "exited");
        fixture_assert_answers(f);
}

/* ---- main ---------------------------------------------------------------------------------------- */

#define ADD(name, args, fn) \
        FIXTURE_ADD("/procpool/fault/" name, fixture_setup_open_bus_other_daemon, args, fn)

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        ADD("fair-next-slot", args_one_slot, test_fair_next_slot);
        ADD("fair-after-restart", args_one_slot, test_fair_after_restart);
        ADD("held-share", args_one_slot, test_held_share);
        ADD("held-release-own", args_one_slot, test_held_release_own);
        ADD("retain-per-uid", args_retain, test_retain_per_uid);
        return g_test_run();
}
