/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The job state machine and the pool's scheduling through a fake executor: no processes, no bus; each
 * case runs in milliseconds. The fake executor records what the model asks of it, and the test decides
 * when each job starts, writes and ends. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <systemd/sd-event.h>

#include "executor.h"
#include "pool.h"
#include "registry.h"
#include "store.h"
#include "unit-util.h"

/* ---- the fake executor ------------------------------------------------------------------------------ */

typedef enum FakeStart {
        FAKE_START_NOW,    /* reports started from within start() */
        FAKE_START_LATER,  /* reports nothing: the test calls fake_started() or fake_failed() */
        FAKE_START_ENOMEM, /* start() fails at once, as building an environment may */
        FAKE_START_FAILS,  /* reports failed from within start() */
} FakeStart;

typedef struct FakeJob {
        struct Fake *fake;
        Job *job;
        uint64_t id;
        bool exit_on_terminate; /* ends with -SIGTERM when asked to stop, else only when killed */
        sd_event_source *exit_source;
        int exit_code;
} FakeJob;

typedef struct Fake {
        Executor executor;
        sd_event *event;
        FakeStart start_mode;
        bool exit_on_terminate;
        GString *log;     /* what the model asked: "start 1, term 1, kill 1, sig 1 10, done 1, " */
        GHashTable *jobs; /* FakeJob by id, while the model holds its runtime */
        unsigned n_live;
} Fake;

static Fake *fake_of(Executor *e) {
        return (Fake *) e;
}

static int fake_start(Executor *e, Job *j, uint64_t id, JobSpec *spec, void **runtime) {
        Fake *f = fake_of(e);
        FakeJob *fj;

        g_string_append_printf(f->log, "start %" G_GUINT64_FORMAT ", ", id);
        if (f->start_mode == FAKE_START_ENOMEM)
                return -ENOMEM;
        fj = g_new0(FakeJob, 1);
        fj->fake = f;
        fj->job = j;
        fj->id = id;
        fj->exit_on_terminate = f->exit_on_terminate;
        g_hash_table_insert(f->jobs, GSIZE_TO_POINTER(id), fj);
        f->n_live++;
        *runtime = fj;
        if (f->start_mode == FAKE_START_NOW)
                e->events->started(j, (pid_t) (1000 + id));
        else if (f->start_mode == FAKE_START_FAILS)
                e->events->failed(j, -ENOENT, "Failed to execute 'x': No such file or directory");
        return 0;
}

static int on_fake_exit(sd_event_source *s, void *userdata) {
        FakeJob *fj = userdata;
        ExecutorExit x = { .returncode = fj->exit_code, .cpu_usage_usec = 7, .memory_peak = 9 };

        fj->fake->executor.events->exited(fj->job, &x);
        return 0;
}

/* The job ends with code, from the event loop, as a real one would. */
static void fake_exit_later(FakeJob *fj, int code) {
        if (fj->exit_source)
                return;
        fj->exit_code = code;
        g_assert_cmpint(sd_event_add_defer(fj->fake->event, &fj->exit_source, on_fake_exit, fj), >=, 0);
}

/* The job runs at external_id on node, as a remote executor says once it knows. */
static void fake_placed(FakeJob *fj, const char *external_id, const char *node) {
        fj->fake->executor.events->placed(fj->job, external_id, node);
}

static int fake_signal(Executor *e, void *runtime, int sig) {
        FakeJob *fj = runtime;
        g_string_append_printf(fake_of(e)->log, "sig %" G_GUINT64_FORMAT " %d, ", fj->id, sig);
        return 0;
}

static int fake_stop(Executor *e, void *runtime, ExecutorStop how) {
        FakeJob *fj = runtime;

        g_string_append_printf(fake_of(e)->log, "%s %" G_GUINT64_FORMAT ", ",
                               how == EXECUTOR_STOP_KILL ? "kill" : "term", fj->id);
        if (how == EXECUTOR_STOP_KILL)
                fake_exit_later(fj, -SIGKILL);
        else if (fj->exit_on_terminate)
                fake_exit_later(fj, -SIGTERM);
        return 0;
}

static void fake_done(Executor *e, void *runtime) {
        FakeJob *fj = runtime;
        Fake *f = fake_of(e);

        g_string_append_printf(f->log, "done %" G_GUINT64_FORMAT ", ", fj->id);
        sd_event_source_disable_unref(fj->exit_source);
        g_hash_table_remove(f->jobs, GSIZE_TO_POINTER(fj->id));
        f->n_live--;
        g_free(fj);
}

static void fake_free(Executor *e) {
        /* The test owns the Fake: it reads the log after the pool is gone. */
}

static const ExecutorVTable fake_vtable = {
        .name = "fake",
        .start = fake_start,
        .signal = fake_signal,
        .stop = fake_stop,
        .done = fake_done,
        .free = fake_free,
};

/* ---- the context ------------------------------------------------------------------------------------ */

typedef struct Ctx {
        sd_event *event;
        char *spool_dir;
        Registry *registry;
        Pool *pool;
        Fake fake;
        GString *events; /* what the observer heard: "run 1, end 1 exited 0, rm 1, idle, " */
        bool idle;
} Ctx;

static const char *state_name(JobState s) {
        static const char *const names[_JOB_STATE_MAX] = {
                [JOB_QUEUED] = "queued", [JOB_RUNNING] = "running",     [JOB_EXITED] = "exited",
                [JOB_KILLED] = "killed", [JOB_TIMED_OUT] = "timed-out", [JOB_CANCELLED] = "cancelled",
                [JOB_FAILED] = "failed",
        };
        return names[s];
}

static void on_changed(Job *j, JobChange what, void *userdata) {
        Ctx *c = userdata;
        const JobRecord *r = job_get_record(j);

        if ((what & JOB_CHANGE_STATE) && r->state == JOB_RUNNING)
                g_string_append_printf(c->events, "run %" G_GUINT64_FORMAT ", ", r->id);
        if (what & JOB_CHANGE_PLACED)
                g_string_append_printf(c->events, "placed %" G_GUINT64_FORMAT " %s@%s, ", r->id,
                                       r->external_id ?: "-", r->node ?: "-");
}

static void on_finished(Job *j, void *userdata) {
        Ctx *c = userdata;
        const JobRecord *r = job_get_record(j);
        g_string_append_printf(c->events, "end %" G_GUINT64_FORMAT " %s %d, ", r->id, state_name(r->state),
                               r->returncode);
}

static void on_removed(Job *j, void *userdata) {
        Ctx *c = userdata;
        g_string_append_printf(c->events, "rm %" G_GUINT64_FORMAT ", ", job_get_record(j)->id);
}

static void on_idle(void *userdata) {
        Ctx *c = userdata;
        c->idle = true;
        g_string_append(c->events, "idle, ");
}

static const RegistryCallbacks callbacks = {
        .job_changed = on_changed,
        .job_finished = on_finished,
        .job_removed = on_removed,
        .idle = on_idle,
};

static void ctx_init_full(Ctx *c, unsigned pool_size, const RegistryConfig *rc, const QuotaLimits *per_user) {
        PoolConfig config = { .pool_size = pool_size, .max_queued = 20000, .output_limit = 8 };
        Spool *spool;

        memset(c, 0, sizeof(*c));
        if (per_user)
                config.per_user = *per_user;
        g_assert_cmpint(sd_event_new(&c->event), >=, 0);
        c->events = g_string_new(NULL);
        c->fake = (Fake) { .executor.vtable = &fake_vtable,
                           .event = c->event,
                           .log = g_string_new(NULL),
                           .jobs = g_hash_table_new(NULL, NULL) };
        c->spool_dir = spool_dir_new();
        g_assert_cmpint(spool_open(c->spool_dir, &spool), ==, 0);
        g_assert_cmpint(registry_new(c->event, rc, spool, &callbacks, c, &c->registry), ==, 0);
        g_assert_cmpint(
                pool_new(c->event, c->registry, POOL_DEFAULT_NAME, &config, &c->fake.executor, &c->pool), ==,
                0);
}

static void ctx_init(Ctx *c, unsigned pool_size) {
        RegistryConfig rc = { .retain = 100 };
        ctx_init_full(c, pool_size, &rc, NULL);
}

static void ctx_done(Ctx *c) {
        c->registry = registry_free(c->registry);
        c->pool = pool_free(c->pool);
        /* Every runtime the executor made was given back. */
        g_assert_cmpuint(c->fake.n_live, ==, 0);
        g_string_free(c->fake.log, TRUE);
        g_hash_table_unref(c->fake.jobs);
        g_string_free(c->events, TRUE);
        sd_event_unref(c->event);
        spool_dir_free(c->spool_dir);
}

/* Runs the loop until nothing is left to dispatch now. */
static void ctx_settle(Ctx *c) {
        for (int i = 0; i < 1000; i++)
                if (sd_event_run(c->event, 0) == 0)
                        return;
        g_assert_not_reached();
}

/* Runs the loop, waiting for timers, until cond holds; bounded by a generous guard. */
#define CTX_RUN_UNTIL(c, cond)                                                     \
        do {                                                                       \
                for (int _i = 0; !(cond); _i++) {                                  \
                        g_assert_cmpint(_i, <, 10000);                             \
                        g_assert_cmpint(sd_event_run((c)->event, 1000000), >=, 0); \
                }                                                                  \
        } while (0)

static Job *submit_as(Ctx *c, uid_t owner, int32_t priority, uint64_t timeout_usec,
                      uint64_t stop_timeout_usec) {
        JobSpec spec;
        Job *j = NULL;

        job_spec_init(&spec);
        spec.argv = g_new0(char *, 2);
        spec.argv[0] = strdup("x");
        spec.priority = priority;
        spec.timeout_usec = timeout_usec;
        spec.stop_timeout_usec = stop_timeout_usec;
        spec.owner = owner;
        g_assert_cmpint(pool_submit(c->pool, &spec, NULL, &j), ==, 0);
        g_assert_cmpint(job_get_record(j)->state, ==, JOB_QUEUED);
        return j;
}

static Job *submit_full(Ctx *c, int32_t priority, uint64_t timeout_usec, uint64_t stop_timeout_usec) {
        return submit_as(c, 1000, priority, timeout_usec, stop_timeout_usec);
}

static Job *submit(Ctx *c, int32_t priority) {
        return submit_full(c, priority, 0, JOB_STOP_TIMEOUT_DEFAULT_USEC);
}

static Job *submit_uid(Ctx *c, uid_t owner, int32_t priority) {
        return submit_as(c, owner, priority, 0, JOB_STOP_TIMEOUT_DEFAULT_USEC);
}

static FakeJob *fake_job(Ctx *c, Job *j) {
        FakeJob *fj = g_hash_table_lookup(c->fake.jobs, GSIZE_TO_POINTER(job_get_record(j)->id));
        g_assert_nonnull(fj);
        return fj;
}

/* Ends the one running job (pool size 1) and lets the next start. */
static void finish_running(Ctx *c) {
        GHashTableIter i;
        FakeJob *fj;
        guint n = 0;

        g_hash_table_iter_init(&i, c->fake.jobs);
        while (g_hash_table_iter_next(&i, NULL, (gpointer *) &fj)) {
                fake_exit_later(fj, 0);
                n++;
        }
        g_assert_cmpuint(n, ==, 1);
        ctx_settle(c);
}

/* ---- the cases -------------------------------------------------------------------------------------- */

static int load_job(JobRecord *r, void *userdata) {
        GString *s = userdata;
        g_string_append_printf(s, "job %" G_GUINT64_FORMAT " %s@%s, ", r->id, r->external_id ?: "-",
                               r->node ?: "-");
        return 0;
}

static int load_pool(const StorePool *p, void *userdata) {
        GString *s = userdata;
        g_string_append_printf(s, "pool %s %u %d %s %s %s, ", p->name, p->size, p->paused, p->executor,
                               p->slurm_conf ?: "-", p->partition ?: "-");
        return 0;
}

/* The store keeps where a job ran and which executor a pool has, with what. */
static void test_placed_stored(void) {
        char *dir = spool_dir_new();
        g_autofree char *path = g_build_filename(dir, "jobs.db", NULL);
        g_autofree char *wal = g_strconcat(path, "-wal", NULL), *shm = g_strconcat(path, "-shm", NULL);
        char *why = NULL;
        GString *seen = g_string_new(NULL);
        JobRecord a = { .id = 1,
                        .state = JOB_EXITED,
                        .attempt = 1,
                        .external_id = (char *) "77",
                        .node = (char *) "n1" };
        JobRecord b = { .id = 2, .state = JOB_EXITED, .attempt = 1 };
        char *argv[] = { (char *) "x", NULL };
        Store *store;

        a.spec.argv = b.spec.argv = argv;
        g_assert_cmpint(store_open(path, STORE_SYNC_NORMAL, &store, &why), ==, 0);
        g_assert_cmpint(store_begin(store), ==, 0);
        g_assert_cmpint(store_put_job(store, &a), ==, 0);
        g_assert_cmpint(store_put_job(store, &b), ==, 0);
        g_assert_cmpint(store_put_pool(store, &(StorePool) { .name = "cluster",
                                                             .size = 6,
                                                             .executor = "slurm",
                                                             .slurm_conf = "/etc/slurm/slurm.conf",
                                                             .partition = "debug" }),
                        ==, 0);
        g_assert_cmpint(store_put_pool(store, &(StorePool) { .name = "here", .size = 2, .paused = true }), ==,
                        0);
        g_assert_cmpint(store_commit(store), ==, 0);
        store = store_free(store);

        g_assert_cmpint(store_open(path, STORE_SYNC_NORMAL, &store, &why), ==, 0);
        g_assert_cmpint(store_load_jobs(store, load_job, seen), ==, 0);
        g_assert_cmpint(store_load_pools(store, load_pool, seen), ==, 0);
        g_assert_cmpstr(seen->str, ==,
                        "job 1 77@n1, job 2 -@-, pool cluster 6 0 slurm /etc/slurm/slurm.conf debug, "
                        "pool here 2 1 local - -, ");
        store = store_free(store);
        g_string_free(seen, TRUE);
        (void) g_unlink(wal);
        (void) g_unlink(shm);
        spool_dir_free(dir);
}

/* Where a job runs, as its executor says: kept (copies), reported once per change, cleared when the
 * attempt is retried (they are the current attempt's), and kept once the job ended. */
static void test_placed(void) {
        char id[] = "4242", node[] = "node1";
        const JobRecord *r;
        JobSpec spec;
        Job *j = NULL;
        Ctx c;

        ctx_init(&c, 1);
        job_spec_init(&spec);
        spec.argv = g_new0(char *, 2);
        spec.argv[0] = strdup("x");
        spec.owner = 1000;
        spec.retry = 1;
        g_assert_cmpint(pool_submit(c.pool, &spec, NULL, &j), ==, 0);
        r = job_get_record(j);
        ctx_settle(&c);
        g_assert_cmpint(r->state, ==, JOB_RUNNING);
        g_assert_null(r->external_id);
        g_assert_null(r->node);

        fake_placed(fake_job(&c, j), id, node);
        /* Copies: the executor's strings may go. */
        memset(id, 'x', strlen(id));
        memset(node, 'x', strlen(node));
        g_assert_cmpstr(r->external_id, ==, "4242");
        g_assert_cmpstr(r->node, ==, "node1");
        /* The same again changes nothing; a new node, or none, does. */
        fake_placed(fake_job(&c, j), "4242", "node1");
        fake_placed(fake_job(&c, j), "4242", "node2");
        fake_placed(fake_job(&c, j), "4242", NULL);
        g_assert_null(r->node);
        fake_placed(fake_job(&c, j), "4242", "node2");

        /* The attempt fails and runs again: where it ran goes with it. */
        fake_exit_later(fake_job(&c, j), 1);
        CTX_RUN_UNTIL(&c, r->attempt == 2 && r->state == JOB_RUNNING);
        g_assert_null(r->external_id);
        g_assert_null(r->node);
        fake_placed(fake_job(&c, j), "4243", "node3");
        fake_exit_later(fake_job(&c, j), 0);
        ctx_settle(&c);
        g_assert_cmpint(r->state, ==, JOB_EXITED);
        g_assert_cmpstr(r->external_id, ==, "4243");
        g_assert_cmpstr(r->node, ==, "node3");
        g_assert_cmpstr(c.events->str, ==,
                        "run 1, placed 1 4242@node1, placed 1 4242@node2, placed 1 4242@-, "
                        "placed 1 4242@node2, placed 1 -@-, run 1, placed 1 4243@node3, end 1 exited 0, ");
        ctx_done(&c);
}

static void test_queue_order(void) {
        static const int32_t prios[] = { 0, 5, -1, 5, 10, 0, INT32_MIN, INT32_MAX };
        Job *jobs[G_N_ELEMENTS(prios)];
        Ctx c;

        ctx_init(&c, 1);
        for (gsize i = 0; i < G_N_ELEMENTS(prios); i++)
                jobs[i] = submit(&c, prios[i]);
        /* Nothing starts inside pool_submit(). */
        g_assert_cmpstr(c.fake.log->str, ==, "");
        for (gsize n = 0; n < G_N_ELEMENTS(prios); n++) {
                ctx_settle(&c);
                /* One at a time: pool size 1. */
                g_assert_cmpuint(pool_get_running(c.pool), ==, 1);
                for (gsize i = 0; i < G_N_ELEMENTS(prios); i++)
                        if (job_get_record(jobs[i])->state == JOB_RUNNING)
                                fake_exit_later(fake_job(&c, jobs[i]), 0);
                ctx_settle(&c);
        }
        /* Highest priority first, FIFO within one priority. */
        g_assert_cmpstr(
                c.events->str, ==,
                "run 8, end 8 exited 0, run 5, end 5 exited 0, run 2, end 2 exited 0, run 4, end 4 exited 0, "
                "run 1, end 1 exited 0, run 6, end 6 exited 0, run 3, end 3 exited 0, run 7, end 7 exited 0, ");
        g_assert_cmpuint(pool_get_running(c.pool), ==, 0);
        g_assert_true(registry_is_idle(c.registry, false));
        ctx_done(&c);
}

static void test_fair_round_robin(void) {
        Ctx c;

        ctx_init(&c, 1);
        /* uid 1000's jobs 1-4 (one of priority 5), 1001's 5-6, 1002's 7 of the lowest priority. */
        submit_uid(&c, 1000, 0);
        submit_uid(&c, 1000, 0);
        submit_uid(&c, 1000, 5);
        submit_uid(&c, 1000, 0);
        submit_uid(&c, 1001, 0);
        submit_uid(&c, 1001, -1);
        submit_uid(&c, 1002, -100);
        ctx_settle(&c);
        for (int i = 0; i < 7; i++)
                finish_running(&c);
        /* One job of each uid with queued work in turn; priority orders each uid's own. */
        g_assert_cmpstr(c.events->str, ==,
                        "run 3, end 3 exited 0, run 5, end 5 exited 0, run 7, end 7 exited 0, run 1, end 1 "
                        "exited 0, run 6, end 6 exited 0, run 2, end 2 exited 0, run 4, end 4 exited 0, ");
        g_assert_true(registry_is_idle(c.registry, false));
        ctx_done(&c);
}

static void test_fair_next_slot(void) {
        Ctx c;

        ctx_init(&c, 1);
        for (int i = 0; i < 4; i++)
                submit_uid(&c, 1000, 0);
        ctx_settle(&c);
        /* uid 1001 comes while 1000 runs and waits: it has the next slot. */
        submit_uid(&c, 1001, 0);
        finish_running(&c);
        /* Queuing again right after its job started, it does not take the next one too: 1000's turn. */
        submit_uid(&c, 1001, 0);
        for (int i = 0; i < 5; i++)
                finish_running(&c);
        g_assert_cmpstr(c.events->str, ==,
                        "run 1, end 1 exited 0, run 5, end 5 exited 0, run 2, end 2 exited 0, run 6, end 6 "
                        "exited 0, run 3, end 3 exited 0, run 4, end 4 exited 0, ");
        ctx_done(&c);
}

typedef struct Queued {
        uid_t owner;
        int32_t priority;
        uint64_t id;
} Queued;

static gint queued_compare(gconstpointer a, gconstpointer b) {
        const Queued *x = a, *y = b;
        if (x->priority != y->priority)
                return x->priority > y->priority ? -1 : 1;
        return x->id < y->id ? -1 : x->id > y->id;
}

static void test_fair_heap_order(void) {
        GArray *by_uid[3];
        GString *expected = g_string_new(NULL);
        Job *jobs[300];
        Ctx c;

        ctx_init(&c, 1);
        for (int u = 0; u < 3; u++)
                by_uid[u] = g_array_new(FALSE, FALSE, sizeof(Queued));
        /* Three uids' jobs, interleaved, of a few priorities. */
        for (int i = 0; i < 300; i++) {
                uid_t owner = 1000 + (uid_t) g_test_rand_int_range(0, 3);
                int32_t prio = g_test_rand_int_range(-2, 3);
                if (i < 3)
                        owner = 1000 + (uid_t) i; /* they join in uid order */
                jobs[i] = submit_uid(&c, owner, prio);
        }
        /* A third cancelled from the middle of the heaps. */
        for (int i = 3; i < 300; i++) {
                const JobRecord *r = job_get_record(jobs[i]);
                Queued q = { r->spec.owner, r->spec.priority, r->id };
                if (g_test_rand_int_range(0, 3) == 0) {
                        g_assert_cmpint(job_cancel(jobs[i]), ==, 0);
                        continue;
                }
                g_array_append_val(by_uid[q.owner - 1000], q);
        }
        for (int i = 0; i < 3; i++) {
                const JobRecord *r = job_get_record(jobs[i]);
                Queued q = { r->spec.owner, r->spec.priority, r->id };
                g_array_append_val(by_uid[i], q);
        }
        /* Expected: each uid's jobs by priority then id, the uids in turn while they have any. */
        for (int u = 0; u < 3; u++)
                g_array_sort(by_uid[u], queued_compare);
        for (guint k = 0;; k++) {
                bool any = false;
                for (int u = 0; u < 3; u++)
                        if (k < by_uid[u]->len) {
                                g_string_append_printf(expected, "%" G_GUINT64_FORMAT " ",
                                                       g_array_index(by_uid[u], Queued, k).id);
                                any = true;
                        }
                if (!any)
                        break;
        }
        g_string_truncate(c.events, 0);
        g_string_truncate(c.fake.log, 0);
        ctx_settle(&c);
        while (pool_get_running(c.pool) > 0)
                finish_running(&c);
        {
                g_autoptr(GString) started = g_string_new(NULL);
                const char *p = c.fake.log->str;
                while ((p = strstr(p, "start "))) {
                        p += strlen("start ");
                        g_string_append_printf(started, "%" G_GUINT64_FORMAT " ",
                                               g_ascii_strtoull(p, NULL, 10));
                }
                g_assert_cmpstr(started->str, ==, expected->str);
        }
        g_assert_cmpuint(pool_get_queued(c.pool), ==, 0);
        g_assert_true(registry_is_idle(c.registry, false));
        for (int u = 0; u < 3; u++)
                g_array_unref(by_uid[u]);
        g_string_free(expected, TRUE);
        ctx_done(&c);
}

static void test_capped_uid_not_walked(void) {
        QuotaLimits per_user = { .max_running = 1 };
        RegistryConfig rc = { .retain = 100 };
        uint64_t before;
        Ctx c;

        ctx_init_full(&c, 2, &rc, &per_user);
        /* uid 1000 at its running limit with 10,000 jobs waiting, and a free slot. */
        for (int i = 0; i < 10000; i++)
                submit_uid(&c, 1000, i % 7);
        ctx_settle(&c);
        g_assert_cmpuint(pool_get_running(c.pool), ==, 1);
        g_assert_cmpuint(pool_get_queued(c.pool), ==, 9999);

        /* Jobs of uid 1001 start and end in the free slot: scheduling never walks 1000's queue. */
        before = pool_get_queue_compares(c.pool);
        for (int i = 0; i < 10; i++) {
                Job *j = submit_uid(&c, 1001, 0);
                ctx_settle(&c);
                g_assert_cmpint(job_get_record(j)->state, ==, JOB_RUNNING);
                fake_exit_later(fake_job(&c, j), 0);
                ctx_settle(&c);
                g_assert_cmpint(job_get_record(j)->state, ==, JOB_EXITED);
        }
        g_test_message("%" G_GUINT64_FORMAT " comparisons for 10 starts",
                       pool_get_queue_compares(c.pool) - before);
        g_assert_cmpuint(pool_get_queue_compares(c.pool) - before, <, 100);
        g_assert_cmpuint(pool_get_queued(c.pool), ==, 9999);
        ctx_done(&c);
}

/* pool_submit() of one job of "x" for owner, which must fail with error; the spec stays the caller's. */
static void submit_refused(Ctx *c, uid_t owner, int error) {
        JobSpec spec;
        Job *j = NULL;

        job_spec_init(&spec);
        spec.argv = g_new0(char *, 2);
        spec.argv[0] = strdup("x");
        spec.owner = owner;
        g_assert_cmpint(pool_submit(c->pool, &spec, NULL, &j), ==, error);
        g_assert_null(j);
        g_assert_cmpstr(spec.argv[0], ==, "x");
        job_spec_done(&spec);
}

static void test_held_share(void) {
        /* A job of "x" holds 1026 bytes: room for ten such jobs, six of one uid. */
        const uint64_t cost = 1026;
        RegistryConfig rc = { .retain = 100,
                              .max_held_bytes = 10 * cost,
                              .max_held_bytes_per_user = 6 * cost };
        Ctx c;

        ctx_init_full(&c, 1, &rc, NULL);
        /* Job 1, of uid 1001, ends first: the oldest finished job. */
        submit_uid(&c, 1001, 0);
        ctx_settle(&c);
        finish_running(&c);

        /* uid 1000 at its share, its jobs 2-7 running or queued: refused, naming its share... */
        for (int i = 0; i < 6; i++)
                submit_uid(&c, 1000, 0);
        g_assert_cmpuint(registry_get_user_held_bytes(c.registry, 1000), ==, 6 * cost);
        submit_refused(&c, 1000, POOL_ERROR_USER_HELD_LIMIT);
        /* ...and uid 1001 is served; job 8 is cancelled, finished too. */
        g_assert_cmpint(job_cancel(submit_uid(&c, 1001, 0)), ==, 0);
        g_assert_nonnull(registry_find(c.registry, 1));

        /* Once uid 1000's jobs end, its own oldest finished makes room in its share: job 2, not job 1. */
        ctx_settle(&c);
        for (int i = 0; i < 6; i++)
                finish_running(&c);
        submit_uid(&c, 1000, 0); /* 9 */
        g_assert_null(registry_find(c.registry, 2));
        g_assert_nonnull(registry_find(c.registry, 1));
        g_assert_cmpuint(registry_get_held_bytes(c.registry), ==, 8 * cost);

        /* The whole bound: uid 1002, with nothing finished, takes room from the uid that holds the most,
         * 1000 (job 3), never from 1001, which holds less. */
        submit_uid(&c, 1002, 0); /* 10 */
        submit_uid(&c, 1002, 0); /* 11 */
        submit_uid(&c, 1002, 0); /* 12 */
        g_assert_null(registry_find(c.registry, 3));
        g_assert_nonnull(registry_find(c.registry, 1));
        g_assert_nonnull(registry_find(c.registry, 8));
        /* uid 1001 makes room with its own oldest first. */
        submit_uid(&c, 1001, 0); /* 13 */
        g_assert_null(registry_find(c.registry, 1));
        g_assert_nonnull(registry_find(c.registry, 4));
        /* uid 1002 takes from 1000 while 1000 holds more than 1002 would... */
        submit_uid(&c, 1002, 0); /* 14: 1000 holds 5, 1002 would hold 4 */
        g_assert_null(registry_find(c.registry, 4));
        /* ...and no more once it does not: the whole bound is reached. */
        submit_refused(&c, 1002, POOL_ERROR_HELD_LIMIT);
        g_assert_cmpuint(registry_get_user_held_bytes(c.registry, 1000), ==, 4 * cost);
        g_assert_cmpuint(registry_get_user_held_bytes(c.registry, 1001), ==, 2 * cost);
        g_assert_cmpuint(registry_get_user_held_bytes(c.registry, 1002), ==, 4 * cost);
        g_assert_cmpuint(registry_get_held_bytes(c.registry), ==, 10 * cost);
        ctx_done(&c);
}

static void test_timeout_escalation(void) {
        const JobRecord *r;
        Job *j;
        Ctx c;

        ctx_init(&c, 1);
        /* A job that ignores the polite stop: timeout, then the kill after the stop timeout. */
        j = submit_full(&c, 0, 2000, 2000);
        r = job_get_record(j);
        ctx_settle(&c);
        g_assert_cmpint(r->state, ==, JOB_RUNNING);
        g_assert_cmpint(r->pid, ==, 1001);
        CTX_RUN_UNTIL(&c, job_state_is_final(r->state));
        g_assert_cmpstr(c.fake.log->str, ==, "start 1, term 1, kill 1, done 1, ");
        g_assert_cmpint(r->state, ==, JOB_TIMED_OUT);
        g_assert_cmpint(r->reason.kind, ==, JOB_REASON_TIMEOUT);
        g_assert_cmpint(r->returncode, ==, -SIGKILL);
        g_assert_cmpint(r->pid, ==, 0);
        g_assert_cmpint(r->main_pid, ==, 1001);
        g_assert_cmpuint(r->cpu_usage_usec, ==, 7);
        g_assert_cmpuint(r->memory_peak, ==, 9);
        g_assert_cmpuint(r->finished_at, >=, r->started_at);

        /* One that stops when asked: no kill follows, and its kill timer is gone with it. */
        c.fake.exit_on_terminate = true;
        g_string_truncate(c.fake.log, 0);
        j = submit_full(&c, 0, 2000, 60 * G_USEC_PER_SEC);
        r = job_get_record(j);
        CTX_RUN_UNTIL(&c, job_state_is_final(r->state));
        g_assert_cmpstr(c.fake.log->str, ==, "start 2, term 2, done 2, ");
        g_assert_cmpint(r->state, ==, JOB_TIMED_OUT);
        g_assert_cmpint(r->returncode, ==, -SIGTERM);

        /* A stop timeout of 0 kills at once. */
        c.fake.exit_on_terminate = false;
        g_string_truncate(c.fake.log, 0);
        j = submit_full(&c, 0, 0, 0);
        ctx_settle(&c);
        g_assert_cmpint(job_cancel(j), ==, 0);
        g_assert_cmpstr(c.fake.log->str, ==, "start 3, term 3, kill 3, ");
        ctx_settle(&c);
        g_assert_cmpint(job_get_record(j)->state, ==, JOB_CANCELLED);
        ctx_done(&c);
}

static void test_cancel_starting(void) {
        Job *a, *b;
        Ctx c;

        ctx_init(&c, 1);
        c.fake.start_mode = FAKE_START_LATER;
        c.fake.exit_on_terminate = true;
        a = submit(&c, 0);
        b = submit(&c, 0);
        ctx_settle(&c);
        /* a is being started: it takes the one slot, b waits, and a is not running yet. */
        g_assert_cmpstr(c.fake.log->str, ==, "start 1, ");
        g_assert_cmpint(job_get_record(a)->state, ==, JOB_QUEUED);
        g_assert_cmpuint(pool_get_running(c.pool), ==, 0);
        g_assert_cmpuint(pool_get_queued(c.pool), ==, 1);
        g_assert_cmpint(job_kill(a, SIGUSR1), ==, JOB_ERROR_NOT_RUNNING);

        /* Cancelled while starting: it is stopped the moment it runs. */
        g_assert_cmpint(job_cancel(a), ==, 0);
        g_assert_cmpint(job_get_record(a)->state, ==, JOB_QUEUED);
        c.fake.executor.events->started(a, 4242);
        g_assert_cmpstr(c.fake.log->str, ==, "start 1, term 1, ");
        ctx_settle(&c);
        g_assert_cmpint(job_get_record(a)->state, ==, JOB_CANCELLED);
        g_assert_cmpint(job_get_record(a)->reason.kind, ==, JOB_REASON_CANCEL);
        g_assert_cmpint(job_get_record(a)->returncode, ==, -SIGTERM);

        /* b starts in the freed slot; cancelled while starting, and then its start fails: it ends
         * cancelled, not failed, and never ran. */
        g_assert_cmpstr(c.fake.log->str, ==, "start 1, term 1, done 1, start 2, ");
        g_assert_cmpint(job_cancel(b), ==, 0);
        c.fake.executor.events->failed(b, -ENOENT, NULL);
        g_assert_cmpint(job_get_record(b)->state, ==, JOB_CANCELLED);
        g_assert_cmpuint(job_get_record(b)->started_at, ==, 0);
        g_assert_cmpuint(pool_get_running(c.pool), ==, 0);
        g_assert_cmpstr(c.events->str, ==, "run 1, end 1 cancelled -15, end 2 cancelled 0, ");
        ctx_done(&c);
}

static void test_start_failure(void) {
        Job *a, *b;
        Ctx c;

        ctx_init(&c, 1);
        /* start() fails before anything runs (out of memory building the environment): the job must
         * end as failed, its callers answered, and the pool go on with the next job. */
        c.fake.start_mode = FAKE_START_ENOMEM;
        a = submit(&c, 0);
        b = submit(&c, 0);
        ctx_settle(&c);
        g_assert_cmpint(job_get_record(a)->state, ==, JOB_FAILED);
        g_assert_cmpint(job_get_record(a)->reason.kind, ==, JOB_REASON_START_FAILED);
        g_assert_cmpint(job_get_record(a)->reason.error, ==, ENOMEM);
        g_assert_cmpint(job_get_record(b)->state, ==, JOB_FAILED);
        g_assert_cmpstr(c.events->str, ==, "end 1 failed 0, end 2 failed 0, ");
        g_assert_cmpuint(pool_get_running(c.pool), ==, 0);
        g_assert_cmpuint(pool_get_queued(c.pool), ==, 0);
        g_assert_true(registry_is_idle(c.registry, false));

        /* Reported as failed from within start(): the executor's own words are kept. */
        c.fake.start_mode = FAKE_START_FAILS;
        a = submit(&c, 0);
        ctx_settle(&c);
        g_assert_cmpint(job_get_record(a)->state, ==, JOB_FAILED);
        g_assert_cmpstr(job_get_record(a)->reason.detail, ==,
                        "Failed to execute 'x': No such file or directory");
        g_assert_cmpint(job_get_record(a)->reason.error, ==, ENOENT);

        /* The slot is free again: a job that starts runs. */
        c.fake.start_mode = FAKE_START_NOW;
        a = submit(&c, 0);
        ctx_settle(&c);
        g_assert_cmpint(job_get_record(a)->state, ==, JOB_RUNNING);
        fake_exit_later(fake_job(&c, a), 3);
        ctx_settle(&c);
        g_assert_cmpint(job_get_record(a)->state, ==, JOB_EXITED);
        g_assert_cmpint(job_get_record(a)->returncode, ==, 3);
        ctx_done(&c);
}

static void test_retention(void) {
        RegistryConfig rc = { .retain = 2, .retain_usec = 5000 };
        Job *j;
        Ctx c;

        ctx_init_full(&c, 4, &rc, NULL);
        for (int i = 0; i < 4; i++)
                submit(&c, 0);
        ctx_settle(&c);
        for (uint64_t id = 1; id <= 4; id++) {
                fake_exit_later(fake_job(&c, registry_find(c.registry, id)), 0);
                ctx_settle(&c);
        }
        /* At most two finished jobs are kept: the oldest went first. */
        g_assert_cmpuint(registry_get_n_finished(c.registry), ==, 2);
        g_assert_null(registry_find(c.registry, 1));
        g_assert_null(registry_find(c.registry, 2));
        g_assert_nonnull(registry_find(c.registry, 3));
        g_assert_false(c.idle);
        /* The others go retain_usec after they ended; then nothing is held. */
        CTX_RUN_UNTIL(&c, c.idle);
        g_assert_cmpuint(registry_get_n_jobs(c.registry), ==, 0);
        g_assert_cmpstr(c.events->str, ==,
                        "run 1, run 2, run 3, run 4, end 1 exited 0, end 2 exited 0, end 3 exited 0, rm 1, "
                        "end 4 exited 0, rm 2, rm 3, rm 4, idle, ");
        /* Ids are never given twice, also once everything was released. */
        j = submit(&c, 0);
        g_assert_cmpuint(job_get_record(j)->id, ==, 5);
        g_assert_cmpint(job_release(j), ==, JOB_ERROR_NOT_FINISHED);
        ctx_done(&c);
}

/* Runs one job of owner to its end. */
static uint64_t run_one(Ctx *c, uid_t owner) {
        Job *j = submit_uid(c, owner, 0);
        uint64_t id = job_get_record(j)->id;

        ctx_settle(c);
        finish_running(c);
        return id;
}

static void test_retain_per_uid(void) {
        RegistryConfig rc = { .retain = 2 };
        Ctx c;

        ctx_init_full(&c, 1, &rc, NULL);
        /* uid 1001's job ends first; uid 1000 then ends twice --retain: its own oldest go. */
        g_assert_cmpuint(run_one(&c, 1001), ==, 1);
        for (int i = 0; i < 4; i++)
                run_one(&c, 1000);
        g_assert_nonnull(registry_find(c.registry, 1));
        g_assert_null(registry_find(c.registry, 2));
        g_assert_null(registry_find(c.registry, 3));
        g_assert_nonnull(registry_find(c.registry, 4));
        g_assert_nonnull(registry_find(c.registry, 5));

        /* The cap on all, 16 × --retain: uids 1002-1015 end two each, 31 finished; then 1016's second
         * passes 32, and of the uids with the most the one whose oldest ended first (1000) loses it. */
        for (uid_t u = 1002; u <= 1015; u++) {
                run_one(&c, u);
                run_one(&c, u);
        }
        g_assert_cmpuint(run_one(&c, 1016), ==, 34);
        g_assert_cmpuint(registry_get_n_finished(c.registry), ==, 32);
        g_assert_nonnull(registry_find(c.registry, 4));
        g_assert_cmpuint(run_one(&c, 1016), ==, 35);
        g_assert_cmpuint(registry_get_n_finished(c.registry), ==, 32);
        g_assert_null(registry_find(c.registry, 4));
        /* uid 1001, with one, keeps it; 1000 keeps its newer one, 1016 both. */
        g_assert_nonnull(registry_find(c.registry, 1));
        g_assert_nonnull(registry_find(c.registry, 5));
        g_assert_nonnull(registry_find(c.registry, 34));
        ctx_done(&c);
}

static void test_user_queue_accounting(void) {
        QuotaLimits per_user = { .max_queued = 2 };
        RegistryConfig rc = { .retain = 100 };
        JobSpec spec;
        Job *a, *b, *j;
        Ctx c;

        ctx_init_full(&c, 1, &rc, &per_user);
        c.fake.start_mode = FAKE_START_LATER;
        a = submit(&c, 0);
        b = submit(&c, 0);
        /* Two queued for uid 1000: a third is refused, and the spec stays the caller's. */
        job_spec_init(&spec);
        spec.argv = g_new0(char *, 2);
        spec.argv[0] = strdup("y");
        spec.owner = 1000;
        g_assert_cmpint(pool_submit(c.pool, &spec, NULL, &j), ==, POOL_ERROR_USER_QUEUE_FULL);
        g_assert_cmpstr(spec.argv[0], ==, "y");
        /* Another uid is not held back by it. */
        spec.owner = 1001;
        g_assert_cmpint(pool_submit(c.pool, &spec, NULL, &j), ==, 0);
        g_assert_cmpint(job_cancel(j), ==, 0);

        /* a leaves the queue to start, b is cancelled in it: both counted out again, once each. */
        ctx_settle(&c);
        g_assert_cmpint(job_cancel(b), ==, 0);
        g_assert_cmpuint(pool_get_queued(c.pool), ==, 0);
        submit(&c, 0);
        submit(&c, 0);
        job_spec_init(&spec);
        spec.argv = g_new0(char *, 2);
        spec.argv[0] = strdup("z");
        spec.owner = 1000;
        g_assert_cmpint(pool_submit(c.pool, &spec, NULL, &j), ==, POOL_ERROR_USER_QUEUE_FULL);
        job_spec_done(&spec);
        c.fake.executor.events->started(a, 1);
        ctx_done(&c);
}

static void test_output_limit(void) {
        JobSpec spec;
        Job *j;
        Ctx c;

        ctx_init(&c, 1);
        c.fake.exit_on_terminate = true;
        job_spec_init(&spec);
        spec.argv = g_new0(char *, 2);
        spec.argv[0] = strdup("x");
        spec.kill_on_output_limit = true;
        g_assert_cmpint(pool_submit(c.pool, &spec, NULL, &j), ==, 0);
        ctx_settle(&c);
        /* The pool's output limit is 8 bytes: what fits is kept, the rest stops the job. */
        c.fake.executor.events->output(j, JOB_STDOUT, "hello", 5);
        g_assert_cmpstr(c.fake.log->str, ==, "start 1, ");
        c.fake.executor.events->output(j, JOB_STDOUT, " world", 6);
        g_assert_cmpstr(c.fake.log->str, ==, "start 1, term 1, ");
        ctx_settle(&c);
        g_assert_cmpint(job_get_record(j)->state, ==, JOB_KILLED);
        g_assert_cmpint(job_get_record(j)->reason.kind, ==, JOB_REASON_OUTPUT_LIMIT);
        g_assert_cmpint(job_get_record(j)->reason.stream, ==, JOB_STDOUT);
        g_assert_cmpuint(job_get_record(j)->reason.limit, ==, 8);
        {
                char buf[16];
                size_t n = 0;
                /* What was kept is in the spool, read back through the job. */
                g_assert_cmpint(job_read_output(j, JOB_STDOUT, buf, sizeof(buf), &n), ==, 0);
                g_assert_cmpmem(buf, n, "hello wo", 8);
                g_assert_cmpuint(job_get_record(j)->output[JOB_STDOUT].size, ==, 8);
        }
        g_assert_true(job_get_record(j)->output[JOB_STDOUT].truncated);
        ctx_done(&c);
}

/* Output given up once its caller has it: gone from the spool, not to be read or opened again. */
static void test_release_output(void) {
        g_autofree char *file = NULL;
        JobSpec spec;
        char buf[16];
        size_t n = 0;
        Job *j;
        Ctx c;

        ctx_init(&c, 1);
        job_spec_init(&spec);
        spec.argv = g_new0(char *, 2);
        spec.argv[0] = strdup("x");
        g_assert_cmpint(pool_submit(c.pool, &spec, NULL, &j), ==, 0);
        ctx_settle(&c);
        c.fake.executor.events->output(j, JOB_STDOUT, "hello", 5);
        g_assert_cmpint(job_release_output(j), ==, JOB_ERROR_NOT_FINISHED);
        c.fake.executor.events->exited(j, &(ExecutorExit) { .returncode = 0 });
        ctx_settle(&c);
        file = g_strdup_printf("%s/%" G_GUINT64_FORMAT ".stdout", c.spool_dir, job_get_record(j)->id);
        g_assert_true(g_file_test(file, G_FILE_TEST_EXISTS));
        g_assert_cmpint(job_release_output(j), ==, 0);
        g_assert_cmpuint(job_get_record(j)->output[JOB_STDOUT].size, ==, 0);
        g_assert_true(job_get_record(j)->output[JOB_STDOUT].released);
        g_assert_true(job_get_record(j)->output[JOB_STDERR].released);
        g_assert_cmpint(job_read_output(j, JOB_STDOUT, buf, sizeof(buf), &n), ==, JOB_ERROR_OUTPUT_RELEASED);
        g_assert_cmpint(job_open_output(j, JOB_STDOUT), ==, JOB_ERROR_OUTPUT_RELEASED);
        g_assert_false(g_file_test(file, G_FILE_TEST_EXISTS));
        ctx_done(&c);
}

static void test_shutdown(void) {
        Job *running, *queued;
        Ctx c;

        ctx_init(&c, 1);
        running = submit(&c, 0);
        queued = submit(&c, 0);
        ctx_settle(&c);
        pool_shutdown(c.pool, false);
        /* The queue is cancelled at once, what runs is asked to stop, nothing new is taken. */
        g_assert_cmpint(job_get_record(queued)->state, ==, JOB_CANCELLED);
        g_assert_cmpstr(c.fake.log->str, ==, "start 1, term 1, ");
        g_assert_cmpint(job_get_record(running)->state, ==, JOB_RUNNING);
        /* Freed with a job still running: it is killed, and its runtime given back. */
        c.registry = registry_free(c.registry);
        g_assert_cmpstr(c.fake.log->str, ==, "start 1, term 1, kill 1, done 1, ");
        ctx_done(&c);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/procpool/job-machine/queue-order", test_queue_order);
        g_test_add_func("/procpool/job-machine/fair-round-robin", test_fair_round_robin);
        g_test_add_func("/procpool/job-machine/fair-next-slot", test_fair_next_slot);
        g_test_add_func("/procpool/job-machine/fair-heap-order", test_fair_heap_order);
        g_test_add_func("/procpool/job-machine/capped-uid-not-walked", test_capped_uid_not_walked);
        g_test_add_func("/procpool/job-machine/held-share", test_held_share);
        g_test_add_func("/procpool/job-machine/timeout-escalation", test_timeout_escalation);
        g_test_add_func("/procpool/job-machine/cancel-starting", test_cancel_starting);
        g_test_add_func("/procpool/job-machine/start-failure", test_start_failure);
        g_test_add_func("/procpool/job-machine/placed", test_placed);
        g_test_add_func("/procpool/job-machine/placed-stored", test_placed_stored);
        g_test_add_func("/procpool/job-machine/retention", test_retention);
        g_test_add_func("/procpool/job-machine/retain-per-uid", test_retain_per_uid);
        g_test_add_func("/procpool/job-machine/user-queue-accounting", test_user_queue_accounting);
        g_test_add_func("/procpool/job-machine/output-limit", test_output_limit);
        g_test_add_func("/procpool/job-machine/release-output", test_release_output);
        g_test_add_func("/procpool/job-machine/shutdown", test_shutdown);
        return g_test_run();
}
