/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Slurm pools over the bus, on a real throw-away cluster (tests/slurm/cluster): the pool's settings and
 * default size, where a job ran (Job1.ExternalId and Node, as the task itself sees them), their change
 * signals, and both kept across a restart of the daemon. One cluster serves every case. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "fixture.h"
#include "slurm-cluster.h"

#define POOL_IFACE "org.procpool.Pool1"
#define CLUSTER_POOL_PATH MANAGER_PATH "/pool/cluster"

static SlurmCluster *cluster;    /* one for every case, stopped by its guard if the test aborts */
static const char *cluster_conf; /* its slurm.conf */

/* ---- helpers ----------------------------------------------------------------------------------------- */

static char *create_slurm_pool(Fixture *f, GVariant *extra_size) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        GVariantBuilder b;
        char *path;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "executor", g_variant_new_string("slurm"));
        g_variant_builder_add(&b, "{sv}", "slurm-conf", g_variant_new_string(cluster_conf));
        if (extra_size)
                g_variant_builder_add(&b, "{sv}", "size", extra_size);
        r = fixture_call(f, "CreatePool", g_variant_new("(sa{sv})", "cluster", &b), &error);
        g_assert_no_error(error);
        g_variant_get(r, "(o)", &path);
        return path;
}

static char *pool_s(Fixture *f, const char *name) {
        g_autoptr(GVariant) v = fixture_get_property(f, CLUSTER_POOL_PATH, POOL_IFACE, name);
        return g_variant_dup_string(v, NULL);
}

static guint32 pool_u(Fixture *f, const char *name) {
        g_autoptr(GVariant) v = fixture_get_property(f, CLUSTER_POOL_PATH, POOL_IFACE, name);
        return g_variant_get_uint32(v);
}

static char *job_s(Fixture *f, const char *path, const char *name) {
        g_autoptr(GVariant) v = fixture_get_property(f, path, JOB_IFACE, name);
        return g_variant_dup_string(v, NULL);
}

/* The values of ExternalId and Node each PropertiesChanged of a job carried, as "id@node, ". */
typedef struct {
        GString *seen;
        guint id;
} Placed;

static void on_properties_changed(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                                  const char *signal, GVariant *params, gpointer userdata) {
        Placed *p = userdata;
        g_autoptr(GVariant) changed = NULL;
        const char *x = NULL, *n = NULL;

        changed = g_variant_get_child_value(params, 1);
        if (g_variant_lookup(changed, "ExternalId", "&s", &x) | g_variant_lookup(changed, "Node", "&s", &n))
                g_string_append_printf(p->seen, "%s@%s, ", x ?: "?", n ?: "?");
}

/* ---- the cases ----------------------------------------------------------------------------------------- */

/* A Slurm pool of no given size is as large as the cluster's CPUs; its settings are its properties. */
static void test_pool_settings(Fixture *f, gconstpointer unused) {
        g_autofree char *path = create_slurm_pool(f, NULL);
        g_autofree char *kind = pool_s(f, "Executor"), *conf = pool_s(f, "SlurmConf");
        g_autofree char *partition = pool_s(f, "Partition");

        g_assert_cmpstr(path, ==, CLUSTER_POOL_PATH);
        g_assert_cmpstr(kind, ==, "slurm");
        g_assert_cmpstr(conf, ==, cluster_conf);
        g_assert_cmpstr(partition, ==, "");
        /* Three nodes: at least one CPU each. */
        g_assert_cmpuint(pool_u(f, "Size"), >=, 3);
}

/* ExternalId and Node are where the task ran, as Slurm told the task itself; PropertiesChanged carried
 * them, and procpoolctl status shows them. */
static void test_placed(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sh", "-c", "echo \"$SLURM_JOB_ID@$SLURMD_NODENAME\"", NULL };
        g_autofree char *pool = create_slurm_pool(f, g_variant_new_uint32(2));
        g_autofree char *job = NULL, *out = NULL, *x = NULL, *n = NULL, *expected = NULL;
        Placed p = { .seen = g_string_new(NULL) };

        p.id = g_dbus_connection_signal_subscribe(f->conn, BUS_NAME, "org.freedesktop.DBus.Properties",
                                                  "PropertiesChanged", NULL, JOB_IFACE,
                                                  G_DBUS_SIGNAL_FLAGS_NONE, on_properties_changed, &p, NULL);
        job = fixture_submit(f, argv, fixture_options("pool", g_variant_new_string("cluster"), NULL));
        g_assert_true(fixture_wait_finished(f, job));
        fixture_assert_outcome(f, job, "exited", 0);
        out = fixture_job_stdout(f, job);
        x = job_s(f, job, "ExternalId");
        n = job_s(f, job, "Node");
        g_assert_cmpstr(x, !=, "");
        g_assert_cmpstr(n, !=, "");
        expected = g_strdup_printf("%s@%s\n", x, n);
        g_assert_cmpstr(out, ==, expected);
        /* The signal came before the job's end, whose PropertiesChanged JobFinished follows. */
        fixture_sync_with_daemon(f->conn);
        /* The subscription delivers in this thread's default context: what the daemon sent before the Ping's
         * answer is there to dispatch now. */
        while (g_main_context_iteration(NULL, FALSE))
                ;
        g_free(expected);
        expected = g_strdup_printf("%s@%s, ", x, n);
        g_assert_nonnull(strstr(p.seen->str, expected));
        g_dbus_connection_signal_unsubscribe(f->conn, p.id);
        g_string_free(p.seen, TRUE);

        {
                g_autofree char *address = g_strdup_printf("--address=%s", f->address);
                g_autofree char *id = g_path_get_basename(job), *status = NULL, *line = NULL;
                g_autoptr(GError) error = NULL;
                int rc;

                g_assert_true(g_spawn_sync(
                        NULL,
                        (char *[]) { (char *) g_getenv("PROCPOOLCTL"), address, (char *) "status", id, NULL },
                        NULL, G_SPAWN_DEFAULT, NULL, NULL, &status, NULL, &rc, &error));
                g_assert_no_error(error);
                line = g_strdup_printf("\nExternal id: %s\n       Node: %s\n", x, n);
                g_assert_nonnull(strstr(status, line));
        }
}

/* The pool and where its jobs ran outlive a restart of the daemon; the pool still runs jobs. */
static void test_kept_across_restart(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "true", NULL };
        g_autofree char *pool = create_slurm_pool(f, g_variant_new_uint32(3));
        g_autofree char *job = NULL, *x = NULL, *n = NULL, *x2 = NULL, *n2 = NULL, *kind = NULL, *conf = NULL;
        g_autofree char *again = NULL, *x3 = NULL;

        job = fixture_submit(f, argv, fixture_options("pool", g_variant_new_string("cluster"), NULL));
        g_assert_true(fixture_wait_finished(f, job));
        x = job_s(f, job, "ExternalId");
        n = job_s(f, job, "Node");
        g_assert_cmpstr(x, !=, "");

        g_assert_cmpint(fixture_stop_daemon(f->daemon_pid), ==, 0);
        f->daemon_pid = fixture_start_daemon(f, NULL);
        kind = pool_s(f, "Executor");
        conf = pool_s(f, "SlurmConf");
        g_assert_cmpstr(kind, ==, "slurm");
        g_assert_cmpstr(conf, ==, cluster_conf);
        g_assert_cmpuint(pool_u(f, "Size"), ==, 3);
        x2 = job_s(f, job, "ExternalId");
        n2 = job_s(f, job, "Node");
        g_assert_cmpstr(x2, ==, x);
        g_assert_cmpstr(n2, ==, n);

        again = fixture_submit(f, argv, fixture_options("pool", g_variant_new_string("cluster"), NULL));
        g_assert_true(fixture_wait_finished(f, again));
        fixture_assert_outcome(f, again, "exited", 0);
        x3 = job_s(f, again, "ExternalId");
        g_assert_cmpstr(x3, !=, "");
        g_assert_cmpstr(x3, !=, x);
}

/* What the README has a new user type: a Slurm pool made with procpoolctl, and a command run on it. */
static void test_procpoolctl_call(Fixture *f, gconstpointer unused) {
        g_autofree char *address = g_strdup_printf("--address=%s", f->address);
        g_autofree char *conf = g_strdup_printf("--slurm-conf=%s", cluster_conf);
        g_autofree char *out = NULL, *err = NULL, *expected = NULL;
        g_autoptr(GError) error = NULL;
        char host[256];
        int status;

        g_assert_true(g_spawn_sync(NULL,
                                   (char *[]) { (char *) g_getenv("PROCPOOLCTL"), address, (char *) "pool",
                                                (char *) "create", (char *) "cluster",
                                                (char *) "--executor=slurm", conf, NULL },
                                   NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, &err, &status, &error));
        g_assert_no_error(error);
        if (!g_spawn_check_wait_status(status, NULL))
                g_error("procpoolctl pool create failed: %s", err);
        g_clear_pointer(&err, g_free);
        g_assert_true(g_spawn_sync(NULL,
                                   (char *[]) { (char *) g_getenv("PROCPOOLCTL"), address, (char *) "call",
                                                (char *) "--pool=cluster", (char *) "--", (char *) "hostname",
                                                NULL },
                                   NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, &error));
        g_assert_no_error(error);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        g_assert_cmpstr(err, ==, "");
        /* Every node of the throw-away cluster is this machine. */
        g_assert_cmpint(gethostname(host, sizeof(host)), ==, 0);
        expected = g_strdup_printf("%s\n", host);
        g_assert_cmpstr(out, ==, expected);
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);
        FIXTURE_ADD("/procpool/slurm/pool-settings", fixture_setup, NULL, test_pool_settings);
        FIXTURE_ADD("/procpool/slurm/placed", fixture_setup, NULL, test_placed);
        FIXTURE_ADD("/procpool/slurm/kept-across-restart", fixture_setup, NULL, test_kept_across_restart);
        FIXTURE_ADD("/procpool/slurm/procpoolctl-call", fixture_setup, NULL, test_procpoolctl_call);
        cluster = slurm_cluster_new();
        g_assert_nonnull(cluster);
        cluster_conf = cluster->conf;
        r = g_test_run();
        slurm_cluster_free(cluster);
        return r;
}
