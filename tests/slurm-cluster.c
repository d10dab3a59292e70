/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The test side of tests/slurm/cluster. */
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>

#include "slurm-cluster.h"

static char *script_path(void) {
        const char *root = g_getenv("PROCPOOL_SOURCE_ROOT");
        return g_build_filename(root ? root : ".", "tests", "slurm", "cluster", NULL);
}

/* Runs argv with SLURM_CONF set; its stdout, or NULL if it failed. */
static char *run(SlurmCluster *c, char **argv) {
        g_auto(GStrv) env = g_get_environ();
        g_autoptr(GError) error = NULL;
        g_autofree char *err = NULL;
        char *out = NULL;
        int status = 0;

        if (c->conf)
                env = g_environ_setenv(env, "SLURM_CONF", c->conf, TRUE);
        if (!g_spawn_sync(NULL, argv, env, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, &error)) {
                g_test_message("%s: %s", argv[0], error->message);
                return NULL;
        }
        if (!g_spawn_check_wait_status(status, NULL)) {
                g_test_message("%s %s failed: %s", argv[0], argv[1] ? argv[1] : "", err);
                g_free(out);
                return NULL;
        }
        return out;
}

SlurmCluster *slurm_cluster_new(void) {
        SlurmCluster *c = g_new0(SlurmCluster, 1);
        g_autofree char *script = script_path();
        char *out;

        c->dir = g_dir_make_tmp("procpool-slurm-XXXXXX", NULL);
        if (!c->dir) {
                g_free(c);
                return NULL;
        }
        out = run(c, (char *[]) { script, (char *) "start", c->dir, NULL });
        if (!out) {
                slurm_cluster_free(c);
                return NULL;
        }
        c->conf = g_strdup(g_strstrip(out));
        g_free(out);
        /* A test that aborts must not leave the cluster running: a guard stops it once this process is
         * gone, which closes the guard's stdin. */
        g_autofree char *guard =
                g_strdup_printf("read _; '%s' stop '%s'; rm -rf '%s'", script, c->dir, c->dir);
        GPid pid;
        if (g_spawn_async_with_pipes(
                    NULL, (char *[]) { (char *) "/bin/sh", (char *) "-c", guard, NULL }, NULL,
                    G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL,
                    NULL, &pid, &c->guard_fd, NULL, NULL, NULL))
                c->guard_pid = pid;
        return c;
}

void slurm_cluster_start(SlurmCluster *c) {
        g_autofree char *script = script_path();
        g_autofree char *out = run(c, (char *[]) { script, (char *) "start", c->dir, NULL });
        g_assert_nonnull(out);
}

void slurm_cluster_kill(SlurmCluster *c, const char *daemon) {
        g_autofree char *script = script_path();
        g_autofree char *out = run(c, (char *[]) { script, (char *) "kill", (char *) daemon, c->dir, NULL });
        g_assert_nonnull(out);
}

char *slurm_cluster_squeue(SlurmCluster *c, const char *name) {
        char *out = run(c, (char *[]) { (char *) "squeue", (char *) "-h", (char *) "-t", (char *) "all",
                                        (char *) "-n", (char *) name, (char *) "-o", (char *) "%i", NULL });
        g_assert_nonnull(out);
        return out;
}

static char *job_field(SlurmCluster *c, const char *id, const char *key) {
        g_autofree char *out = run(c, (char *[]) { (char *) "scontrol", (char *) "-o", (char *) "show",
                                                   (char *) "job", (char *) id, NULL });
        g_autofree char *pattern = g_strdup_printf(" %s=", key);
        const char *p;

        if (!out || !(p = strstr(out, pattern)))
                return NULL;
        p += strlen(pattern);
        return g_strndup(p, strcspn(p, " \n"));
}

bool slurm_cluster_wait_job_final(SlurmCluster *c, const char *id, unsigned timeout_s) {
        gint64 deadline = g_get_monotonic_time() + (gint64) timeout_s * G_USEC_PER_SEC;
        static const char *const running[] = { "PENDING", "RUNNING", "COMPLETING", "CONFIGURING",
                                               "SUSPENDED" };

        /* Slurm's state changes outside this process: it is looked at until it settles. */
        while (g_get_monotonic_time() < deadline) {
                g_autofree char *state = job_field(c, id, "JobState");
                bool final = state != NULL;
                for (gsize i = 0; state && i < G_N_ELEMENTS(running); i++)
                        if (strcmp(state, running[i]) == 0)
                                final = false;
                if (final)
                        return true;
                g_usleep(100 * 1000);
        }
        return false;
}

bool slurm_cluster_job_started_at_once(SlurmCluster *c, const char *id) {
        g_autofree char *submit = job_field(c, id, "SubmitTime");
        g_autofree char *start = job_field(c, id, "StartTime");

        return submit && start && strcmp(submit, start) == 0;
}

void slurm_cluster_run(SlurmCluster *c, const char *program, ...) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        const char *a;
        va_list ap;

        g_ptr_array_add(argv, (char *) program);
        va_start(ap, program);
        while ((a = va_arg(ap, const char *)))
                g_ptr_array_add(argv, (char *) a);
        va_end(ap);
        g_ptr_array_add(argv, NULL);
        g_autofree char *out = run(c, (char **) argv->pdata);
        g_assert_nonnull(out);
}

void slurm_cluster_free(SlurmCluster *c) {
        g_autofree char *script = script_path();
        g_autofree char *out = NULL;

        if (!c)
                return;
        /* Stopped here, not by the guard: a process forked since it was made (a daemon the test started, say)
         * holds its pipe too, so closing ours need not end the guard's read. */
        out = run(c, (char *[]) { script, (char *) "stop", c->dir, NULL });
        g_autofree char *rm = run(c, (char *[]) { (char *) "rm", (char *) "-rf", c->dir, NULL });
        if (c->guard_pid > 0) {
                int status;
                (void) kill(c->guard_pid, SIGKILL);
                close(c->guard_fd);
                (void) waitpid(c->guard_pid, &status, 0);
        }
        g_free(c->dir);
        g_free(c->conf);
        g_free(c);
}
