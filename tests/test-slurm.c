/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Slurm executor against a real throw-away cluster (tests/slurm/cluster): a pool of the model with
 * executor_slurm_new(), jobs submitted as the bus layer would, and what a user would see checked: states,
 * return codes, bytes, errors, where each ran, and what Slurm has left. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <systemd/sd-event.h>

#include "executor-slurm.h"
#include "pool.h"
#include "registry.h"
#include "slurm-cluster.h"
#include "unit-util.h"

static SlurmCluster *cluster;

/* ---- a pool on the Slurm executor ------------------------------------------------------------------- */

typedef struct Placed {
        char *external_id;
        char *node;
} Placed;

typedef struct Ctx {
        sd_event *event;
        char *spool_dir;
        Registry *registry;
        Pool *pool;
        Executor *executor;
        ExecutorEvents events; /* the model's, and placed recorded */
        GHashTable *placed;    /* Job * -> Placed */
        unsigned finished;
} Ctx;

static Ctx *the_ctx;
static const ExecutorEvents *model_events;

static void placed_free(gpointer p) {
        Placed *pl = p;
        g_free(pl->external_id);
        g_free(pl->node);
        g_free(pl);
}

static void on_placed(Job *j, const char *external_id, const char *node) {
        Placed *pl = g_new0(Placed, 1);

        pl->external_id = g_strdup(external_id);
        pl->node = g_strdup(node);
        g_hash_table_replace(the_ctx->placed, j, pl);
        if (model_events->placed)
                model_events->placed(j, external_id, node);
}

static void on_finished(Job *j, void *userdata) {
        Ctx *c = userdata;
        c->finished++;
}

static const RegistryCallbacks callbacks = {
        .job_finished = on_finished,
};

static void ctx_init(Ctx *c, unsigned pool_size) {
        PoolConfig config = { .pool_size = pool_size, .max_queued = 1000, .output_limit = 64 * 1024 * 1024 };
        RegistryConfig rc = { .retain = 1000 };
        Spool *spool;

        memset(c, 0, sizeof(*c));
        the_ctx = c;
        g_assert_cmpint(sd_event_new(&c->event), >=, 0);
        c->placed = g_hash_table_new_full(NULL, NULL, NULL, placed_free);
        c->spool_dir = spool_dir_new();
        g_assert_cmpint(spool_open(c->spool_dir, &spool), ==, 0);
        g_assert_cmpint(registry_new(c->event, &rc, spool, &callbacks, c, &c->registry), ==, 0);
        g_assert_cmpint(executor_slurm_new(c->event, cluster->conf, NULL, &c->executor), ==, 0);
        g_assert_cmpint(pool_new(c->event, c->registry, POOL_DEFAULT_NAME, &config, c->executor, &c->pool),
                        ==, 0);
        /* Hear placed as the bus layer will, passing everything on to the model. */
        model_events = c->executor->events;
        c->events = *model_events;
        c->events.placed = on_placed;
        c->executor->events = &c->events;
}

static void ctx_done(Ctx *c) {
        c->registry = registry_free(c->registry);
        c->pool = pool_free(c->pool);
        c->executor = executor_free(c->executor);
        g_hash_table_unref(c->placed);
        sd_event_unref(c->event);
        spool_dir_free(c->spool_dir);
        the_ctx = NULL;
}

/* Runs the loop until cond holds, at most timeout_s seconds. */
#define RUN_UNTIL(c, cond, timeout_s)                                                             \
        do {                                                                                      \
                gint64 _deadline = g_get_monotonic_time() + (gint64) (timeout_s) *G_USEC_PER_SEC; \
                while (!(cond)) {                                                                 \
                        g_assert_cmpint(g_get_monotonic_time(), <, _deadline);                    \
                        g_assert_cmpint(sd_event_run((c)->event, 100000), >=, 0);                 \
                }                                                                                 \
        } while (0)

typedef struct Submit {
        const char *script; /* run by /bin/sh -c */
        const char *cwd;
        uint64_t timeout_usec;
        uint64_t stop_timeout_usec;
        const void *input;
        size_t input_size;
        int fds[3];
} Submit;

static Job *submit(Ctx *c, const Submit *s) {
        JobSpec spec;
        Job *j = NULL;

        job_spec_init(&spec);
        spec.argv = g_new0(char *, 4);
        spec.argv[0] = strdup("/bin/sh");
        spec.argv[1] = strdup("-c");
        spec.argv[2] = strdup(s->script);
        spec.cwd = s->cwd ? strdup(s->cwd) : NULL;
        spec.timeout_usec = s->timeout_usec;
        spec.stop_timeout_usec = s->stop_timeout_usec ?: 5 * G_USEC_PER_SEC;
        spec.owner = getuid();
        if (s->input) {
                spec.has_input = true;
                spec.input = s->input;
                spec.input_size = s->input_size;
        }
        for (int i = 0; i < 3; i++)
                if (s->fds[i] > 0) {
                        spec.fds[i] = dup(s->fds[i]);
                        spec.passed_fds |= 1U << i;
                }
        g_assert_cmpint(pool_submit(c->pool, &spec, NULL, &j), ==, 0);
        return j;
}

static Job *submit_script(Ctx *c, const char *script) {
        return submit(c, &(Submit) { .script = script });
}

static const JobRecord *rec(Job *j) {
        return job_get_record(j);
}

static void wait_end(Ctx *c, Job *j, unsigned timeout_s) {
        RUN_UNTIL(c, job_state_is_final(rec(j)->state), timeout_s);
}

static char *output(Job *j, JobStream s) {
        size_t size = rec(j)->output[s].size, n = 0;
        char *buf = g_malloc0(size + 1);

        g_assert_cmpint(job_read_output(j, s, buf, size, &n), >=, 0);
        g_assert_cmpuint(n, ==, size);
        return buf;
}

/* Runs the loop until stream s of j holds needle. */
static void wait_output(Ctx *c, Job *j, JobStream s, const char *needle) {
        gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
        for (;;) {
                g_autofree char *o = output(j, s);
                if (strstr(o, needle))
                        return;
                g_assert_false(job_state_is_final(rec(j)->state));
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                g_assert_cmpint(sd_event_run(c->event, 100000), >=, 0);
        }
}

static Placed *placed_of(Ctx *c, Job *j) {
        return g_hash_table_lookup(c->placed, j);
}

static char *error_detail(Job *j) {
        return g_strdup(rec(j)->reason.detail ?: "");
}

/* ---- the cases -------------------------------------------------------------------------------------- */

static void test_exit_codes(void) {
        Ctx c;
        Job *ok, *three, *killed, *exit137;

        ctx_init(&c, 6);
        ok = submit_script(&c, "echo out; echo err >&2; exit 0");
        three = submit_script(&c, "exit 3");
        killed = submit_script(&c, "kill -9 $$");
        exit137 = submit_script(&c, "exit 137");
        wait_end(&c, ok, 60);
        wait_end(&c, three, 60);
        wait_end(&c, killed, 60);
        wait_end(&c, exit137, 60);

        if (rec(ok)->state != JOB_EXITED)
                g_test_message("ok: %s", rec(ok)->reason.detail);
        g_assert_cmpint(rec(ok)->state, ==, JOB_EXITED);
        g_assert_cmpint(rec(ok)->returncode, ==, 0);
        g_autofree char *out = output(ok, JOB_STDOUT), *err = output(ok, JOB_STDERR);
        g_assert_cmpstr(out, ==, "out\n");
        g_assert_cmpstr(err, ==, "err\n");
        g_assert_cmpint(rec(three)->state, ==, JOB_EXITED);
        g_assert_cmpint(rec(three)->returncode, ==, 3);
        /* srun says 137 for both; Slurm tells the signal from the exit. */
        g_assert_cmpint(rec(killed)->state, ==, JOB_KILLED);
        g_assert_cmpint(rec(killed)->returncode, ==, -SIGKILL);
        g_autofree char *killed_err = output(killed, JOB_STDERR);
        g_assert_cmpstr(killed_err, ==, ""); /* srun's "task 0: Killed" is not the task's */
        g_assert_cmpint(rec(exit137)->state, ==, JOB_EXITED);
        g_assert_cmpint(rec(exit137)->returncode, ==, 137);

        /* Each was placed: a Slurm job id and a node. */
        g_assert_nonnull(placed_of(&c, ok));
        g_assert_true(g_str_has_prefix(placed_of(&c, ok)->node, "n"));
        g_assert_cmpuint(strlen(placed_of(&c, ok)->external_id), >, 0);
        ctx_done(&c);
}

static void test_environment_scrubbed(void) {
        Ctx c;
        Job *j;

        /* An inherited SLURM_JOB_ID would make srun a step of a job that does not exist. */
        g_setenv("SLURM_JOB_ID", "999999", TRUE);
        ctx_init(&c, 1);
        j = submit_script(&c, "echo \"$SLURM_JOB_NAME $SLURM_JOB_ID\"");
        wait_end(&c, j, 60);
        g_unsetenv("SLURM_JOB_ID");
        g_assert_cmpint(rec(j)->state, ==, JOB_EXITED);
        g_assert_nonnull(placed_of(&c, j));
        g_autofree char *out = output(j, JOB_STDOUT);
        g_autofree char *want = g_strdup_printf("procpool-%" G_GUINT64_FORMAT " %s\n", rec(j)->id,
                                                placed_of(&c, j)->external_id);
        g_assert_cmpstr(out, ==, want);
        ctx_done(&c);
}

static void test_binary_stdin_stdout(void) {
        size_t size = 1024 * 1024;
        guint8 *data = g_malloc(size);
        Ctx c;
        Job *j;

        for (size_t i = 0; i < size; i++)
                data[i] = (guint8) (g_random_int() & 0xff);
        data[0] = 0;
        data[1] = '\n';
        ctx_init(&c, 1);
        j = submit(&c, &(Submit) { .script = "cat", .input = data, .input_size = size });
        wait_end(&c, j, 120);
        g_assert_cmpint(rec(j)->state, ==, JOB_EXITED);
        g_assert_cmpint(rec(j)->returncode, ==, 0);
        g_assert_cmpuint(rec(j)->output[JOB_STDOUT].size, ==, size);
        g_autofree char *out = output(j, JOB_STDOUT);
        g_assert_true(memcmp(out, data, size) == 0);
        ctx_done(&c);
        g_free(data);
}

static void test_passed_fds(void) {
        g_autofree char *dir = g_dir_make_tmp("procpool-slurm-fds-XXXXXX", NULL);
        g_autofree char *in_path = g_build_filename(dir, "in", NULL);
        g_autofree char *out_path = g_build_filename(dir, "out", NULL);
        g_autofree char *got = NULL;
        int in_fd, out_fd;
        Ctx c;
        Job *j;

        g_assert_true(g_file_set_contents(in_path, "line one\nline two\n", -1, NULL));
        in_fd = open(in_path, O_RDONLY | O_CLOEXEC);
        out_fd = open(out_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        g_assert_cmpint(in_fd, >=, 0);
        g_assert_cmpint(out_fd, >=, 0);
        ctx_init(&c, 1);
        j = submit(&c, &(Submit) { .script = "tr a-z A-Z", .fds = { in_fd, out_fd, 0 } });
        close(in_fd);
        close(out_fd);
        wait_end(&c, j, 60);
        g_assert_cmpint(rec(j)->state, ==, JOB_EXITED);
        g_assert_true(g_file_get_contents(out_path, &got, NULL, NULL));
        g_assert_cmpstr(got, ==, "LINE ONE\nLINE TWO\n");
        ctx_done(&c);
        g_unlink(in_path);
        g_unlink(out_path);
        g_rmdir(dir);
}

static void test_timeout(void) {
        Ctx c;
        Job *j;

        ctx_init(&c, 1);
        /* It traps TERM and says so: the stop was graceful, through scancel, not a SIGKILL from srun. */
        j = submit(&c, &(Submit) { .script = "trap 'echo got-TERM; exit 0' TERM; echo ready; "
                                             "while :; do sleep 0.1; done",
                                   .timeout_usec = 3 * G_USEC_PER_SEC });
        wait_end(&c, j, 60);
        g_assert_cmpint(rec(j)->state, ==, JOB_TIMED_OUT);
        g_autofree char *out = output(j, JOB_STDOUT);
        g_assert_cmpstr(out, ==, "ready\ngot-TERM\n");
        g_assert_cmpint(rec(j)->finished_at - rec(j)->started_at, >=, 3 * G_USEC_PER_SEC);
        ctx_done(&c);
}

static void test_cancel_running(void) {
        Ctx c;
        Job *j, *queued;

        ctx_init(&c, 1);
        j = submit_script(&c, "echo ready; exec sleep 600");
        queued = submit_script(&c, "echo never");
        /* Earlier cases' jobs of the same name stay listed for a while: only a new one would count. */
        g_autofree char *name = g_strdup_printf("procpool-%" G_GUINT64_FORMAT, rec(queued)->id);
        g_autofree char *before = slurm_cluster_squeue(cluster, name);
        wait_output(&c, j, JOB_STDOUT, "ready");
        g_assert_cmpint(job_cancel(queued), ==, 0);
        g_assert_cmpint(rec(queued)->state, ==, JOB_CANCELLED);
        g_assert_cmpint(job_cancel(j), ==, 0);
        wait_end(&c, j, 60);
        g_assert_cmpint(rec(j)->state, ==, JOB_CANCELLED);
        g_assert_cmpint(rec(j)->returncode, ==, -SIGTERM);
        /* The queued one never reached Slurm. */
        g_autofree char *after = slurm_cluster_squeue(cluster, name);
        g_assert_cmpstr(after, ==, before);
        ctx_done(&c);
}

static void test_kill_trapped_signal(void) {
        Ctx c;
        Job *j;

        ctx_init(&c, 1);
        j = submit_script(&c, "trap 'echo got-USR1; exit 7' USR1; echo ready; while :; do sleep 0.1; done");
        wait_output(&c, j, JOB_STDOUT, "ready");
        g_assert_cmpint(job_kill(j, SIGUSR1), ==, 0);
        wait_end(&c, j, 60);
        g_assert_cmpint(rec(j)->state, ==, JOB_EXITED);
        g_assert_cmpint(rec(j)->returncode, ==, 7);
        g_autofree char *out = output(j, JOB_STDOUT);
        g_assert_cmpstr(out, ==, "ready\ngot-USR1\n");
        ctx_done(&c);
}

static void test_spread(void) {
        GHashTable *nodes = g_hash_table_new(g_str_hash, g_str_equal);
        g_autofree char *gate = g_strdup_printf("%s/spread-gate", cluster->dir);
        g_autofree char *script = g_strdup_printf("echo ready; while [ ! -e %s ]; do sleep 0.1; done", gate);
        Job *jobs[3];
        Ctx c;

        ctx_init(&c, 3);
        for (int i = 0; i < 3; i++)
                jobs[i] = submit_script(&c, script);
        for (int i = 0; i < 3; i++)
                wait_output(&c, jobs[i], JOB_STDOUT, "ready");
        RUN_UNTIL(&c, g_hash_table_size(c.placed) == 3, 30);
        /* Running at once, one CPU each: Slurm spreads them over the 2-CPU nodes. */
        for (int i = 0; i < 3; i++)
                g_hash_table_add(nodes, placed_of(&c, jobs[i])->node);
        g_assert_cmpuint(g_hash_table_size(nodes), >=, 2);
        g_assert_true(g_file_set_contents(gate, "", 0, NULL));
        for (int i = 0; i < 3; i++) {
                wait_end(&c, jobs[i], 60);
                g_assert_cmpint(rec(jobs[i])->state, ==, JOB_EXITED);
        }
        g_unlink(gate);
        g_hash_table_unref(nodes);
        ctx_done(&c);
}

static void test_bad_cwd(void) {
        Ctx c;
        Job *j, *missing;

        ctx_init(&c, 2);
        j = submit(&c, &(Submit) { .script = "pwd", .cwd = "/nonexistent/procpool" });
        missing = submit(&c, &(Submit) { .script = "true" });
        wait_end(&c, j, 60);
        g_assert_cmpint(rec(j)->state, ==, JOB_FAILED);
        g_autofree char *detail = error_detail(j);
        g_assert_nonnull(strstr(detail, "Failed to change directory to '/nonexistent/procpool' on node n"));
        g_autofree char *out = output(j, JOB_STDOUT), *err = output(j, JOB_STDERR);
        g_assert_cmpstr(out, ==, ""); /* not /tmp */
        g_assert_cmpstr(err, ==, "");
        wait_end(&c, missing, 60);
        g_assert_cmpint(rec(missing)->state, ==, JOB_EXITED);
        ctx_done(&c);
}

static void test_executor_freed(void) {
        g_autofree char *name = NULL;
        Ctx c;
        Job *j[2];

        ctx_init(&c, 2);
        for (int i = 0; i < 2; i++)
                j[i] = submit_script(&c, "echo ready; exec sleep 600");
        for (int i = 0; i < 2; i++)
                wait_output(&c, j[i], JOB_STDOUT, "ready");
        RUN_UNTIL(&c, g_hash_table_size(c.placed) == 2, 30);
        char *ids[2] = { g_strdup(placed_of(&c, j[0])->external_id),
                         g_strdup(placed_of(&c, j[1])->external_id) };
        /* The daemon lets go of everything at once, as at its exit. */
        ctx_done(&c);
        for (int i = 0; i < 2; i++) {
                g_assert_true(slurm_cluster_wait_job_final(cluster, ids[i], 30));
                g_free(ids[i]);
        }
}

static void test_burst(void) {
        Job *jobs[50];
        Ctx c;

        ctx_init(&c, 6);
        for (int i = 0; i < 50; i++) {
                g_autofree char *script = g_strdup_printf("echo %d", i);
                jobs[i] = submit_script(&c, script);
        }
        RUN_UNTIL(&c, c.finished == 50, 300);
        for (int i = 0; i < 50; i++) {
                g_autofree char *want = g_strdup_printf("%d\n", i);
                g_autofree char *out = output(jobs[i], JOB_STDOUT);
                g_assert_cmpint(rec(jobs[i])->state, ==, JOB_EXITED);
                g_assert_cmpstr(out, ==, want);
                /* Slurm never queued it: it started when it was submitted. */
                g_assert_nonnull(placed_of(&c, jobs[i]));
                g_assert_true(
                        slurm_cluster_job_started_at_once(cluster, placed_of(&c, jobs[i])->external_id));
        }
        ctx_done(&c);
}

static void test_cpus(void) {
        unsigned n = 0;

        g_assert_cmpint(executor_slurm_cpus(cluster->conf, NULL, &n), ==, 0);
        g_assert_cmpuint(n, ==, 6);
        n = 0;
        g_assert_cmpint(executor_slurm_cpus(cluster->conf, "main", &n), ==, 0);
        g_assert_cmpuint(n, ==, 6);
        g_assert_cmpint(executor_slurm_cpus("/nonexistent/slurm.conf", NULL, &n), <, 0);
}

static void test_timeout_kill(void) {
        Ctx c;
        Job *j;

        ctx_init(&c, 1);
        /* It ignores TERM: after the stop timeout, KILL. */
        j = submit(&c, &(Submit) { .script = "trap '' TERM; echo ready; while :; do sleep 0.1; done",
                                   .timeout_usec = 2 * G_USEC_PER_SEC,
                                   .stop_timeout_usec = 1 * G_USEC_PER_SEC });
        wait_end(&c, j, 60);
        g_assert_cmpint(rec(j)->state, ==, JOB_TIMED_OUT);
        g_assert_cmpint(rec(j)->returncode, ==, -SIGKILL);
        ctx_done(&c);
}

static void test_shutdown(void) {
        Ctx c;
        Job *j[2];

        ctx_init(&c, 2);
        for (int i = 0; i < 2; i++)
                j[i] = submit_script(&c, "echo ready; exec sleep 600");
        for (int i = 0; i < 2; i++)
                wait_output(&c, j[i], JOB_STDOUT, "ready");
        RUN_UNTIL(&c, g_hash_table_size(c.placed) == 2, 30);
        /* procpoold stops: what runs is stopped, through Slurm. */
        pool_shutdown(c.pool, true);
        for (int i = 0; i < 2; i++) {
                wait_end(&c, j[i], 60);
                g_assert_cmpint(rec(j[i])->state, ==, JOB_FAILED);
                g_assert_cmpint(rec(j[i])->reason.kind, ==, JOB_REASON_DAEMON_STOPPED);
                g_assert_true(slurm_cluster_wait_job_final(cluster, placed_of(&c, j[i])->external_id, 30));
        }
        ctx_done(&c);
}

static void test_exec_not_found(void) {
        Ctx c;
        Job *j;
        JobSpec spec;

        ctx_init(&c, 1);
        job_spec_init(&spec);
        spec.argv = g_new0(char *, 2);
        spec.argv[0] = strdup("procpool-no-such-program");
        spec.owner = getuid();
        g_assert_cmpint(pool_submit(c.pool, &spec, NULL, &j), ==, 0);
        wait_end(&c, j, 60);
        g_assert_cmpint(rec(j)->state, ==, JOB_FAILED);
        g_autofree char *detail = error_detail(j);
        g_assert_nonnull(strstr(detail, "Failed to execute 'procpool-no-such-program' on node n"));
        g_autofree char *err = output(j, JOB_STDERR);
        g_assert_cmpstr(err, ==, "");
        ctx_done(&c);
}

/* Slurm ends a job by its own decision: never "exited". */
static void test_cancelled_by_slurm(void) {
        Ctx c;
        Job *j;

        ctx_init(&c, 1);
        j = submit_script(&c, "echo ready; exec sleep 600");
        wait_output(&c, j, JOB_STDOUT, "ready");
        RUN_UNTIL(&c, placed_of(&c, j), 30);
        slurm_cluster_run(cluster, "scancel", placed_of(&c, j)->external_id, NULL);
        wait_end(&c, j, 60);
        g_assert_cmpint(rec(j)->state, ==, JOB_FAILED);
        g_autofree char *detail = error_detail(j);
        g_assert_nonnull(strstr(detail, "Slurm cancelled the job, not procpool"));
        g_autofree char *err = output(j, JOB_STDERR);
        g_assert_cmpstr(err, ==, ""); /* slurmstepd's "*** JOB ... CANCELLED ***" is not the task's */
        ctx_done(&c);
}

static void test_slurm_time_limit(void) {
        Ctx c;
        Job *j;

        ctx_init(&c, 1);
        j = submit_script(&c, "echo ready; exec sleep 600");
        wait_output(&c, j, JOB_STDOUT, "ready");
        RUN_UNTIL(&c, placed_of(&c, j), 30);
        /* Slurm's limits are whole minutes: the shortest there is. */
        g_autofree char *arg = g_strdup_printf("JobId=%s", placed_of(&c, j)->external_id);
        slurm_cluster_run(cluster, "scontrol", "update", arg, "TimeLimit=1", NULL);
        wait_end(&c, j, 180);
        g_assert_cmpint(rec(j)->state, ==, JOB_FAILED);
        g_autofree char *detail = error_detail(j);
        g_assert_nonnull(strstr(detail, "Slurm's time limit ended the job"));
        ctx_done(&c);
}

/* Destructive cases last: a node, then the controller, go down. */

static void test_node_failure(void) {
        g_autofree char *gate = g_strdup_printf("%s/node-gate", cluster->dir);
        g_autofree char *script = g_strdup_printf("echo ready; while [ ! -e %s ]; do sleep 0.1; done", gate);
        g_autofree char *detail = NULL;
        Placed *p;
        Ctx c;
        Job *j;

        ctx_init(&c, 1);
        j = submit_script(&c, script);
        wait_output(&c, j, JOB_STDOUT, "ready");
        RUN_UNTIL(&c, placed_of(&c, j), 30);
        p = placed_of(&c, j);
        slurm_cluster_kill(cluster, p->node);
        /* SlurmdTimeout=5: Slurm declares the node down some seconds later; srun may even exit 0. */
        wait_end(&c, j, 120);
        g_assert_cmpint(rec(j)->state, ==, JOB_FAILED);
        detail = error_detail(j);
        g_assert_nonnull(strstr(detail, "failed while the job ran"));
        g_assert_nonnull(strstr(detail, p->node));
        g_assert_nonnull(strstr(detail, "NODE_FAIL"));
        /* The task ends; the node comes back for the cases after this one. */
        g_assert_true(g_file_set_contents(gate, "", 0, NULL));
        ctx_done(&c);
        slurm_cluster_start(cluster);
}

static void test_controller_down(void) {
        g_autofree char *detail = NULL;
        Ctx c;
        Job *j;

        slurm_cluster_kill(cluster, "slurmctld");
        ctx_init(&c, 1);
        j = submit_script(&c, "echo never");
        wait_end(&c, j, 60);
        g_assert_cmpint(rec(j)->state, ==, JOB_FAILED);
        detail = error_detail(j);
        g_assert_nonnull(strstr(detail, "srun failed: "));
        g_assert_nonnull(strstr(detail, "controller"));
        g_autofree char *out = output(j, JOB_STDOUT);
        g_assert_cmpstr(out, ==, "");
        ctx_done(&c);
        slurm_cluster_start(cluster);
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);
        /* As procpoold does: sd-event watches children only with SIGCHLD blocked. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        g_assert_cmpint(sigprocmask(SIG_BLOCK, &mask, NULL), ==, 0);
        cluster = slurm_cluster_new();
        /* The cluster needs root and Debian's Slurm packages (tools/install-deps): without them the
         * suite fails rather than pass unseen. */
        if (!cluster)
                g_error("No Slurm cluster could be started (tests/slurm/cluster)");
        g_test_add_func("/procpool/slurm/cpus", test_cpus);
        g_test_add_func("/procpool/slurm/exit-codes", test_exit_codes);
        g_test_add_func("/procpool/slurm/environment-scrubbed", test_environment_scrubbed);
        g_test_add_func("/procpool/slurm/binary-stdin-stdout", test_binary_stdin_stdout);
        g_test_add_func("/procpool/slurm/passed-fds", test_passed_fds);
        g_test_add_func("/procpool/slurm/timeout", test_timeout);
        g_test_add_func("/procpool/slurm/timeout-kill", test_timeout_kill);
        g_test_add_func("/procpool/slurm/cancel-running", test_cancel_running);
        g_test_add_func("/procpool/slurm/kill-trapped-signal", test_kill_trapped_signal);
        g_test_add_func("/procpool/slurm/spread", test_spread);
        g_test_add_func("/procpool/slurm/bad-cwd", test_bad_cwd);
        g_test_add_func("/procpool/slurm/executor-freed", test_executor_freed);
        g_test_add_func("/procpool/slurm/burst", test_burst);
        g_test_add_func("/procpool/slurm/shutdown", test_shutdown);
        g_test_add_func("/procpool/slurm/exec-not-found", test_exec_not_found);
        g_test_add_func("/procpool/slurm/cancelled-by-slurm", test_cancelled_by_slurm);
        g_test_add_func("/procpool/slurm/slurm-time-limit", test_slurm_time_limit);
        g_test_add_func("/procpool/slurm/node-failure", test_node_failure);
        g_test_add_func("/procpool/slurm/controller-down", test_controller_down);
        r = g_test_run();
        slurm_cluster_free(cluster);
        return r;
}
