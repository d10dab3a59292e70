/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The registry and a pool with the local executor on an sd-event loop, without a bus: queue order, pool
 * size, cancel, retention, ids, with real processes. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <systemd/sd-event.h>

#include "executor-local.h"
#include "pool.h"
#include "registry.h"
#include "unit-util.h"

typedef struct {
        sd_event *event;
        char *spool_dir;
        Registry *registry;
        Pool *pool;
        Executor *executor;
        GArray *started;  /* ids in the order they started */
        GArray *finished; /* ids in the order they ended */
        unsigned max_running;
        unsigned expected;
        sd_event_source *guard;
} Ctx;

static void on_changed(Job *j, JobChange what, void *userdata) {
        Ctx *c = userdata;

        if ((what & JOB_CHANGE_STATE) && job_get_record(j)->state == JOB_RUNNING) {
                g_array_append_val(c->started, job_get_record(j)->id);
                c->max_running = MAX(c->max_running, pool_get_running(c->pool));
        }
}

static void on_finished(Job *j, void *userdata) {
        Ctx *c = userdata;

        g_array_append_val(c->finished, job_get_record(j)->id);
        if (c->finished->len >= c->expected)
                (void) sd_event_exit(c->event, 0);
}

static const RegistryCallbacks callbacks = {
        .job_changed = on_changed,
        .job_finished = on_finished,
};

static int on_guard(sd_event_source *s, uint64_t usec, void *userdata) {
        Ctx *c = userdata;
        return sd_event_exit(c->event, -ETIMEDOUT);
}

static void ctx_init(Ctx *c, unsigned pool_size, unsigned max_queued, unsigned retain) {
        RegistryConfig registry_config = {
                .retain = retain,
        };
        PoolConfig config = {
                .pool_size = pool_size,
                .max_queued = max_queued,
                .output_limit = 1024,
        };
        Spool *spool;

        memset(c, 0, sizeof(*c));
        c->expected = G_MAXUINT;
        g_assert_cmpint(sd_event_new(&c->event), >=, 0);
        c->spool_dir = spool_dir_new();
        g_assert_cmpint(spool_open(c->spool_dir, &spool), ==, 0);
        g_assert_cmpint(registry_new(c->event, &registry_config, spool, &callbacks, c, &c->registry), ==, 0);
        g_assert_cmpint(executor_local_new(c->event, NULL, &c->executor), ==, 0);
        g_assert_cmpint(pool_new(c->event, c->registry, POOL_DEFAULT_NAME, &config, c->executor, &c->pool),
                        ==, 0);
        c->started = g_array_new(FALSE, FALSE, sizeof(uint64_t));
        c->finished = g_array_new(FALSE, FALSE, sizeof(uint64_t));
        g_assert_cmpint(sd_event_add_time_relative(c->event, &c->guard, CLOCK_MONOTONIC, 20 * 1000000ULL, 0,
                                                   on_guard, c),
                        >=, 0);
}

static void ctx_done(Ctx *c) {
        c->registry = registry_free(c->registry);
        c->pool = pool_free(c->pool);
        c->executor = executor_free(c->executor);
        spool_dir_free(c->spool_dir);
        sd_event_source_disable_unref(c->guard);
        sd_event_unref(c->event);
        g_array_unref(c->started);
        g_array_unref(c->finished);
}

/* Runs the loop until expected jobs have finished. */
static void ctx_run(Ctx *c, unsigned expected) {
        c->expected = expected;
        g_assert_cmpint(sd_event_loop(c->event), ==, 0);
}

static Job *submit(Ctx *c, const char *script, int32_t priority) {
        JobSpec spec;
        Job *j = NULL;

        job_spec_init(&spec);
        spec.argv = calloc(4, sizeof(char *));
        spec.argv[0] = strdup("/bin/sh");
        spec.argv[1] = strdup("-c");
        spec.argv[2] = strdup(script);
        spec.priority = priority;
        spec.owner = getuid();
        g_assert_cmpint(pool_submit(c->pool, &spec, NULL, &j), ==, 0);
        g_assert_nonnull(j);
        g_assert_cmpint(job_get_record(j)->state, ==, JOB_QUEUED);
        return j;
}

static char *ids(GArray *a) {
        GString *s = g_string_new(NULL);
        for (guint i = 0; i < a->len; i++)
                g_string_append_printf(s, "%s%" G_GUINT64_FORMAT, i ? " " : "",
                                       g_array_index(a, uint64_t, i));
        return g_string_free(s, FALSE);
}

static void test_priority_order(void) {
        static const int32_t prios[] = { 0, 5, -1, 5, 10, 0, INT32_MIN, INT32_MAX };
        g_autofree char *order = NULL;
        Ctx c;

        ctx_init(&c, 1, 100, 100);
        /* All queued before the loop runs: nothing starts inside pool_submit(). */
        for (gsize i = 0; i < G_N_ELEMENTS(prios); i++)
                submit(&c, "exit 0", prios[i]);
        g_assert_cmpuint(pool_get_queued(c.pool), ==, G_N_ELEMENTS(prios));
        g_assert_cmpuint(pool_get_running(c.pool), ==, 0);
        ctx_run(&c, G_N_ELEMENTS(prios));
        /* Highest priority first, FIFO within one priority. */
        order = ids(c.started);
        g_assert_cmpstr(order, ==, "8 5 2 4 1 6 3 7");
        g_assert_cmpuint(c.max_running, ==, 1);
        ctx_done(&c);
}

static void test_pool_size(void) {
        Ctx c;

        ctx_init(&c, 2, 100, 100);
        for (int i = 0; i < 6; i++)
                submit(&c, "sleep 0.05", 0);
        ctx_run(&c, 6);
        g_assert_cmpuint(c.max_running, ==, 2);
        g_assert_cmpuint(pool_get_running(c.pool), ==, 0);
        g_assert_cmpuint(pool_get_queued(c.pool), ==, 0);
        g_assert_true(registry_is_idle(c.registry, false));
        g_assert_false(registry_is_idle(c.registry, true));
        g_assert_cmpint(pool_set_size(c.pool, 0), ==, -EINVAL);
        ctx_done(&c);
}

static void test_cancel_queued(void) {
        g_autofree char *started = NULL, *finished = NULL;
        Job *a, *b, *d;
        Ctx c;

        ctx_init(&c, 1, 100, 100);
        a = submit(&c, "exit 1", 0);
        b = submit(&c, "exit 2", 0);
        d = submit(&c, "exit 3", 0);
        /* Cancelled in the queue: it ends at once and never starts. */
        g_assert_cmpint(job_cancel(b), ==, 0);
        g_assert_cmpint(job_get_record(b)->state, ==, JOB_CANCELLED);
        g_assert_cmpint(job_get_record(b)->returncode, ==, 0);
        g_assert_cmpuint(job_get_record(b)->started_at, ==, 0);
        g_assert_cmpint(job_cancel(b), ==, JOB_ERROR_NOT_RUNNING);
        g_assert_cmpuint(pool_get_queued(c.pool), ==, 2);
        ctx_run(&c, 3);
        started = ids(c.started);
        finished = ids(c.finished);
        g_assert_cmpstr(started, ==, "1 3");
        g_assert_cmpstr(finished, ==, "2 1 3");
        g_assert_cmpint(job_get_record(a)->state, ==, JOB_EXITED);
        g_assert_cmpint(job_get_record(a)->returncode, ==, 1);
        g_assert_cmpint(job_get_record(d)->returncode, ==, 3);
        ctx_done(&c);
}

static void test_retain_and_ids(void) {
        JobSpec spec;
        Job *j;
        Ctx c;

        ctx_init(&c, 1, 100, 2);
        for (int i = 0; i < 4; i++)
                submit(&c, "exit 0", 0);
        ctx_run(&c, 4);
        /* More than two finished: the oldest finished ones were released. */
        g_assert_cmpuint(registry_get_n_finished(c.registry), ==, 2);
        g_assert_cmpuint(registry_get_n_jobs(c.registry), ==, 2);
        g_assert_null(registry_find(c.registry, 1));
        g_assert_null(registry_find(c.registry, 2));
        g_assert_nonnull(registry_find(c.registry, 3));
        j = registry_find(c.registry, 4);
        g_assert_nonnull(j);
        g_assert_cmpint(job_release(j), ==, 0);
        g_assert_null(registry_find(c.registry, 4));
        /* Ids go on from the highest ever given. */
        j = submit(&c, "exit 0", 0);
        g_assert_cmpuint(job_get_record(j)->id, ==, 5);
        g_assert_cmpint(job_release(j), ==, JOB_ERROR_NOT_FINISHED);

        /* The queue bound: the spec stays the caller's. */
        ctx_done(&c);
        ctx_init(&c, 1, 2, 100);
        submit(&c, "exit 0", 0);
        submit(&c, "exit 0", 0);
        job_spec_init(&spec);
        spec.argv = calloc(2, sizeof(char *));
        spec.argv[0] = strdup("true");
        g_assert_cmpint(pool_submit(c.pool, &spec, NULL, &j), ==, POOL_ERROR_QUEUE_FULL);
        g_assert_nonnull(spec.argv);
        g_assert_cmpstr(spec.argv[0], ==, "true");
        job_spec_done(&spec);
        ctx_done(&c);
}

static void test_shutdown(void) {
        JobSpec spec;
        Job *running, *queued, *j;
        Ctx c;

        ctx_init(&c, 1, 100, 100);
        running = submit(&c, "sleep 30", 0);
        queued = submit(&c, "exit 0", 0);
        /* One iteration starts the first job. */
        for (int i = 0; i < 10 && job_get_record(running)->state != JOB_RUNNING; i++)
                g_assert_cmpint(sd_event_run(c.event, 100000), >=, 0);
        g_assert_cmpint(job_get_record(running)->state, ==, JOB_RUNNING);

        pool_shutdown(c.pool, false);
        g_assert_cmpint(job_get_record(queued)->state, ==, JOB_CANCELLED);
        job_spec_init(&spec);
        spec.argv = calloc(2, sizeof(char *));
        spec.argv[0] = strdup("true");
        g_assert_cmpint(pool_submit(c.pool, &spec, NULL, &j), ==, POOL_ERROR_SHUTTING_DOWN);
        job_spec_done(&spec);
        ctx_run(&c, 2);
        g_assert_cmpint(job_get_record(running)->state, ==, JOB_CANCELLED);
        g_assert_cmpint(job_get_record(running)->returncode, ==, -SIGTERM);
        ctx_done(&c);
}

int main(int argc, char *argv[]) {
        sigset_t mask;

        /* sd-event watches children through pidfds, with SIGCHLD blocked, as procpoold does. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        g_assert_cmpint(pthread_sigmask(SIG_BLOCK, &mask, NULL), ==, 0);

        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/procpool/queue/priority-order", test_priority_order);
        g_test_add_func("/procpool/queue/pool-size", test_pool_size);
        g_test_add_func("/procpool/queue/cancel-queued", test_cancel_queued);
        g_test_add_func("/procpool/queue/retain-and-ids", test_retain_and_ids);
        g_test_add_func("/procpool/queue/shutdown", test_shutdown);
        return g_test_run();
}
