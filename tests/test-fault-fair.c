/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fault suite's fairness between uids: one uid's queue does not starve another's. procpoold runs as OTHER_UID, so that root and OTHER_UID are two uids that
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

/* ---- main ---------------------------------------------------------------------------------------- */

#define ADD(name, args, fn) FIXTURE_ADD("/procpool/fault/" name, fixture_setup_open_bus_other_daemon, args, fn)

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        ADD("fair-next-slot", args_one_slot, test_fair_next_slot);
        ADD("fair-after-restart", args_one_slot, test_fair_after_restart);
        return g_test_run();
}
