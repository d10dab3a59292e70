/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Durable jobs: what the job store keeps across a crash, a stop and a crash loop, and the stores and
 * state dirs the daemon refuses to start with. Every case restarts the real daemon on its state dir. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "fixture.h"

static const char *const pool1[] = { "--pool-size=1", NULL };

/* ---- helpers --------------------------------------------------------------------------------------- */

static void kill_daemon(Fixture *f) {
        int status;

        g_assert_no_errno(kill(f->daemon_pid, SIGKILL));
        g_assert_cmpint(waitpid(f->daemon_pid, &status, 0), ==, f->daemon_pid);
        g_assert_true(WIFSIGNALED(status));
        f->daemon_pid = 0;
}

static void stop_daemon(Fixture *f) {
        int status = fixture_stop_daemon(f->daemon_pid);

        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        f->daemon_pid = 0;
}

static char *job_string(Fixture *f, const char *path, const char *name) {
        g_autoptr(GVariant) v = fixture_get_property(f, path, JOB_IFACE, name);
        return g_variant_dup_string(v, NULL);
}

static guint64 job_u64(Fixture *f, const char *path, const char *name) {
        g_autoptr(GVariant) v = fixture_get_property(f, path, JOB_IFACE, name);
        return g_variant_get_uint64(v);
}

/* JobFinished as a listener hears it: "id state" entries. */
typedef struct {
        GPtrArray *seen;
        guint id;
} Finished;

static void on_job_finished(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                            const char *signal, GVariant *params, gpointer userdata) {
        Finished *fin = userdata;
        guint64 id;
        const char *state;
        int rc;

        g_variant_get(params, "(t&o&si)", &id, NULL, &state, &rc);
        g_ptr_array_add(fin->seen, g_strdup_printf("%" G_GUINT64_FORMAT " %s", id, state));
}

static void finished_watch(Fixture *f, Finished *fin) {
        fin->seen = g_ptr_array_new_with_free_func(g_free);
        fin->id = g_dbus_connection_signal_subscribe(f->conn, BUS_NAME, MANAGER_IFACE, "JobFinished",
                                                     MANAGER_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                     on_job_finished, fin, NULL);
}

static void finished_unwatch(Fixture *f, Finished *fin) {
        g_dbus_connection_signal_unsubscribe(f->conn, fin->id);
        g_ptr_array_unref(fin->seen);
}

typedef struct {
        Finished *fin;
        const char *entry;
} FinishedWait;

static gboolean finished_has(gpointer data) {
        FinishedWait *w = data;
        for (guint i = 0; i < w->fin->seen->len; i++)
                if (g_str_equal(g_ptr_array_index(w->fin->seen, i), w->entry))
                        return TRUE;
        return FALSE;
}

static void assert_finished_heard(Finished *fin, guint64 id, const char *state) {
        g_autofree char *entry = g_strdup_printf("%" G_GUINT64_FORMAT " %s", id, state);
        FinishedWait w = { fin, entry };
        g_assert_true(fixture_iterate_until(finished_has, &w));
}

static guint64 path_id(const char *path) {
        return g_ascii_strtoull(strrchr(path, '/') + 1, NULL, 10);
}

/* Runs procpoold on f's bus with the state dir given and waits for it to exit; returns its exit status
 * and what it wrote on stderr. */
static int run_daemon_sync(Fixture *f, const char *state_dir, char **ret_stderr) {
        g_autofree char *address = g_strdup_printf("--address=%s", f->address);
        g_autofree char *state = g_strdup_printf("--state-dir=%s", state_dir);
        const char *argv[] = { g_getenv("PROCPOOLD"), address, state, NULL };
        g_autoptr(GError) error = NULL;
        int status;

        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, ret_stderr,
                                   &status, &error));
        g_assert_no_error(error);
        g_assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

/* ---- what survives a crash ------------------------------------------------------------------------- */

static void test_crash(Fixture *f, gconstpointer unused) {
        g_autofree char *gate = fixture_gate_path(f, "running");
        g_autofree char *script = g_strdup_printf("echo partial; touch %s; exec sleep 600", gate);
        const char *argv_finished[] = { "sh", "-c", "echo finished-output; exit 3", NULL };
        const char *argv_running[] = { "sh", "-c", script, NULL };
        const char *argv_echo[] = { "true", NULL };
        g_autofree char *finished = NULL, *running = NULL, *low = NULL, *high = NULL, *after = NULL;
        g_autofree char *state = NULL, *error_text = NULL, *out = NULL, *call_path = NULL;
        g_autoptr(GVariant) listed = NULL, pool_size = NULL;
        g_autoptr(GError) error = NULL;
        Finished fin;
        int rc;

        /* A finished job with output, a running one that wrote some, two queued Submits, a queued Call. */
        finished = fixture_submit(f, argv_finished, NULL);
        g_assert_true(fixture_wait_state(f, finished, "exited"));
        running = fixture_submit(f, argv_running, NULL);
        g_assert_true(fixture_wait_for_file(gate));
        low = fixture_submit(f, argv_echo, fixture_options("label", g_variant_new_string("low"), NULL));
        high = fixture_submit(f, argv_echo,
                              fixture_options("priority", g_variant_new_int32(5), "label",
                                              g_variant_new_string("high"), NULL));
        g_dbus_connection_call(f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call",
                               g_variant_new("(^as@a{sv})", argv_echo, FIXTURE_NO_OPTIONS), NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, NULL, NULL);
        call_path = g_strdup_printf(MANAGER_PATH "/job/%" G_GUINT64_FORMAT, path_id(high) + 1);
        g_assert_true(fixture_wait_state(f, call_path, "queued"));

        kill_daemon(f);
        finished_watch(f, &fin);
        f->daemon_pid = fixture_start_daemon(f, pool1);

        /* What was running ended failed, its output so far kept, and listeners heard of it. */
        assert_finished_heard(&fin, path_id(running), "failed");
        fixture_job_outcome(f, running, &state, &rc, &error_text);
        g_assert_cmpstr(state, ==, "failed");
        g_assert_cmpstr(error_text, ==, "procpoold stopped while it ran");
        out = fixture_job_stdout(f, running);
        g_assert_cmpstr(out, ==, "partial\n");
        /* The Call's caller is gone with the daemon's last run: cancelled, as if it had left. */
        assert_finished_heard(&fin, path_id(call_path), "cancelled");
        g_clear_pointer(&state, g_free);
        g_clear_pointer(&error_text, g_free);
        fixture_job_outcome(f, call_path, &state, &rc, &error_text);
        g_assert_cmpstr(state, ==, "cancelled");
        g_assert_nonnull(strstr(error_text, "caller left"));

        /* The queued Submits run now, the higher priority first. */
        g_assert_true(fixture_wait_state(f, low, "exited"));
        g_assert_true(fixture_wait_state(f, high, "exited"));
        g_assert_cmpuint(job_u64(f, high, "StartedAt"), <, job_u64(f, low, "StartedAt"));
        g_free(state);
        state = job_string(f, low, "Label");
        g_assert_cmpstr(state, ==, "low");

        /* The finished job and its output are there as they were. */
        g_clear_pointer(&state, g_free);
        g_clear_pointer(&error_text, g_free);
        fixture_job_outcome(f, finished, &state, &rc, &error_text);
        g_assert_cmpstr(state, ==, "exited");
        g_assert_cmpint(rc, ==, 3);
        g_free(out);
        out = fixture_job_stdout(f, finished);
        g_assert_cmpstr(out, ==, "finished-output\n");

        /* Ids go on; the pool size set at run time is kept. */
        after = fixture_submit(f, argv_echo, NULL);
        g_assert_cmpuint(path_id(after), ==, path_id(call_path) + 1);
        pool_size = fixture_get_property(f, MANAGER_PATH, MANAGER_IFACE, "PoolSize");
        g_assert_cmpuint(g_variant_get_uint32(pool_size), ==, 1);
        listed = fixture_call(f, "ListJobs", NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(g_variant_n_children(g_variant_get_child_value(listed, 0)), ==, 6);
        finished_unwatch(f, &fin);
}

static void test_pool_size_kept(Fixture *f, gconstpointer unused) {
        g_autoptr(GVariant) v = NULL;
        g_autoptr(GError) error = NULL;

        g_dbus_connection_call_sync(
                f->conn, BUS_NAME, MANAGER_PATH, "org.freedesktop.DBus.Properties", "Set",
                g_variant_new("(ssv)", MANAGER_IFACE, "PoolSize", g_variant_new_uint32(7)), NULL,
                G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_no_error(error);
        stop_daemon(f);
        /* Set at run time, it wins over the command line's. */
        f->daemon_pid = fixture_start_daemon(f, pool1);
        v = fixture_get_property(f, MANAGER_PATH, MANAGER_IFACE, "PoolSize");
        g_assert_cmpuint(g_variant_get_uint32(v), ==, 7);
}

/* ---- a graceful stop ------------------------------------------------------------------------------- */

static void test_stop(Fixture *f, gconstpointer unused) {
        g_autofree char *gate = fixture_gate_path(f, "running");
        g_autofree char *script = g_strdup_printf("touch %s; exec sleep 600", gate);
        const char *argv_running[] = { "sh", "-c", script, NULL };
        const char *argv_queued[] = { "sh", "-c", "echo ran; exit 5", NULL };
        g_autofree char *running = NULL, *queued = NULL, *state = NULL, *error_text = NULL, *out = NULL;
        FixtureReply wait_running = {}, wait_queued = {};
        int rc;

        running = fixture_submit(f, argv_running, NULL);
        g_assert_true(fixture_wait_for_file(gate));
        queued = fixture_submit(f, argv_queued, NULL);
        g_dbus_connection_call(f->conn, BUS_NAME, running, JOB_IFACE, "Wait", NULL, NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, fixture_on_reply, &wait_running);
        g_dbus_connection_call(f->conn, BUS_NAME, queued, JOB_IFACE, "Wait", NULL, NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, fixture_on_reply, &wait_queued);
        g_assert_true(fixture_wait_state(f, queued, "queued"));

        /* The stop answers both waiters: the daemon stopped; nothing was lost. */
        stop_daemon(f);
        g_assert_true(fixture_reply_wait(&wait_running));
        g_assert_true(fixture_reply_wait(&wait_queued));
        fixture_assert_error(wait_running.error, "org.procpool.Error.Interrupted", "stopped while it ran");
        fixture_assert_error(wait_queued.error, "org.procpool.Error.Interrupted", "stays queued");
        fixture_reply_clear(&wait_running);
        fixture_reply_clear(&wait_queued);

        /* Started again, the queued job runs; the stopped one stays failed. */
        f->daemon_pid = fixture_start_daemon(f, pool1);
        g_assert_true(fixture_wait_state(f, queued, "exited"));
        fixture_job_outcome(f, queued, &state, &rc, &error_text);
        g_assert_cmpint(rc, ==, 5);
        out = fixture_job_stdout(f, queued);
        g_assert_cmpstr(out, ==, "ran\n");
        g_clear_pointer(&state, g_free);
        g_clear_pointer(&error_text, g_free);
        fixture_job_outcome(f, running, &state, &rc, &error_text);
        g_assert_cmpstr(state, ==, "failed");
        g_assert_cmpstr(error_text, ==, "procpoold stopped while it ran");
}

/* ---- a crash loop ---------------------------------------------------------------------------------- */

#define LOOP_JOBS 3000
#define LOOP_WINDOW 32

typedef struct {
        GHashTable *acked; /* labels whose Submit was answered with a job */
        GHashTable *sent;  /* every label sent */
        unsigned outstanding;
} Loop;

typedef struct {
        Loop *loop;
        char *label;
} Pending;

static void on_submitted(GObject *source, GAsyncResult *res, gpointer userdata) {
        Pending *p = userdata;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) v = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);

        if (v)
                g_hash_table_add(p->loop->acked, g_strdup(p->label));
        p->loop->outstanding--;
        g_free(p->label);
        g_free(p);
}

static gboolean loop_drained(gpointer data) {
        return ((Loop *) data)->outstanding == 0;
}

static void test_crash_loop(Fixture *f, gconstpointer unused) {
        const char *argv_true[] = { "true", NULL };
        GRand *rand = g_rand_new_with_seed(20261201);
        Loop loop = {
                .acked = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
                .sent = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
        };
        g_autoptr(GHashTable) stored = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_autoptr(GVariant) listed = NULL, jobs = NULL;
        g_autoptr(GError) error = NULL;
        const char *const args[] = { "--retain=100000", "--retain-time=0", NULL };
        unsigned next = 0, crashes = 0, kill_at;
        GVariantIter it;
        const char *path;

        stop_daemon(f);
        f->daemon_pid = fixture_start_daemon(f, args);
        kill_at = g_rand_int_range(rand, 50, 400);
        while (next < LOOP_JOBS) {
                /* Keep a window of Submits in flight, so that the kill lands among them. */
                while (loop.outstanding < LOOP_WINDOW && next < LOOP_JOBS) {
                        Pending *p = g_new0(Pending, 1);
                        p->loop = &loop;
                        p->label = g_strdup_printf("loop-%u", next++);
                        g_hash_table_add(loop.sent, g_strdup(p->label));
                        loop.outstanding++;
                        g_dbus_connection_call(
                                f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Submit",
                                g_variant_new("(^as@a{sv})", argv_true,
                                              fixture_options("label", g_variant_new_string(p->label), NULL)),
                                NULL, G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, on_submitted, p);
                }
                g_main_context_iteration(NULL, TRUE);
                if (g_hash_table_size(loop.acked) >= kill_at) {
                        kill_daemon(f);
                        crashes++;
                        /* What was in flight is answered (with an error) once the bus sees it gone. */
                        g_assert_true(fixture_iterate_until(loop_drained, &loop));
                        f->daemon_pid = fixture_start_daemon(f, args);
                        kill_at = g_hash_table_size(loop.acked) + g_rand_int_range(rand, 50, 400);
                }
        }
        g_assert_true(fixture_iterate_until(loop_drained, &loop));
        g_assert_cmpuint(crashes, >=, 5);
        kill_daemon(f);
        f->daemon_pid = fixture_start_daemon(f, args);

        /* Every acknowledged Submit is there exactly once; nothing appears that was never sent. */
        listed = fixture_call(f, "ListJobs", NULL, &error);
        g_assert_no_error(error);
        jobs = g_variant_get_child_value(listed, 0);
        g_variant_iter_init(&it, jobs);
        while (g_variant_iter_next(&it, "(t&o&si)", NULL, &path, NULL, NULL)) {
                g_autofree char *label = job_string(f, path, "Label");
                g_assert_true(g_hash_table_contains(loop.sent, label));
                g_assert_false(g_hash_table_contains(stored, label));
                g_hash_table_add(stored, g_steal_pointer(&label));
        }
        {
                GHashTableIter hi;
                gpointer label;
                g_hash_table_iter_init(&hi, loop.acked);
                while (g_hash_table_iter_next(&hi, &label, NULL))
                        if (!g_hash_table_contains(stored, label))
                                g_error("acknowledged job %s is gone after %u crashes", (char *) label,
                                        crashes);
        }
        g_test_message("%u sent, %u acknowledged, %u stored, %u crashes", LOOP_JOBS,
                       g_hash_table_size(loop.acked), g_hash_table_size(stored), crashes);
        g_hash_table_unref(loop.acked);
        g_hash_table_unref(loop.sent);
        g_rand_free(rand);
}

/* ---- what the daemon refuses ----------------------------------------------------------------------- */

/* A store with one finished job in it, the daemon stopped. */
static char *make_store(Fixture *f) {
        const char *argv_true[] = { "true", NULL };
        g_autofree char *path = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(fixture_call_argv(f, argv_true, NULL, &error), ==, 0);
        stop_daemon(f);
        return g_build_filename(f->state_dir, "jobs.db", NULL);
}

static void assert_refused(Fixture *f, const char *state_dir, const char *why) {
        g_autofree char *err = NULL;

        g_assert_cmpint(run_daemon_sync(f, state_dir, &err), ==, 1);
        g_test_message("procpoold said: %s", err);
        g_assert_nonnull(strstr(err, state_dir));
        g_assert_nonnull(strstr(err, why));
}

static void test_refuses_damaged(Fixture *f, gconstpointer unused) {
        g_autofree char *db = make_store(f);
        g_autofree char *wal = g_strconcat(db, "-wal", NULL), *shm = g_strconcat(db, "-shm", NULL);
        g_autoptr(GError) error = NULL;
        g_autofree char *contents = NULL;
        gsize size;

        /* Truncated: half of it, the journal gone. */
        g_assert_true(g_file_get_contents(db, &contents, &size, &error));
        (void) g_unlink(wal);
        (void) g_unlink(shm);
        g_assert_true(g_file_set_contents(db, contents, (gssize) size / 2, &error));
        assert_refused(f, f->state_dir, "jobs.db");
        /* Not a database at all. */
        g_assert_true(g_file_set_contents(db, "this is not a job store, it is a text file of some length ...",
                                          -1, &error));
        assert_refused(f, f->state_dir, "jobs.db");
        /* Nothing was thrown away. */
        g_free(contents);
        g_assert_true(g_file_get_contents(db, &contents, NULL, &error));
        g_assert_true(g_str_has_prefix(contents, "this is not a job store"));
        f->daemon_pid = 0;
        g_assert_cmpint(g_unlink(db), ==, 0);
        f->daemon_pid = fixture_start_daemon(f, NULL);
}

static void test_refuses_newer(Fixture *f, gconstpointer unused) {
        g_autofree char *db = make_store(f);
        sqlite3 *s;

        g_assert_cmpint(sqlite3_open(db, &s), ==, SQLITE_OK);
        g_assert_cmpint(sqlite3_exec(s, "PRAGMA user_version = 99", NULL, NULL, NULL), ==, SQLITE_OK);
        sqlite3_close(s);
        assert_refused(f, f->state_dir, "newer procpool");
        f->daemon_pid = fixture_start_daemon(f, (const char *const[]) { "--ephemeral", NULL });
}

static int user_version(const char *db) {
        sqlite3_stmt *st;
        sqlite3 *s;
        int v = -1;

        g_assert_cmpint(sqlite3_open(db, &s), ==, SQLITE_OK);
        g_assert_cmpint(sqlite3_prepare_v2(s, "PRAGMA user_version", -1, &st, NULL), ==, SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(s);
        return v;
}

static const char *const system_pool1[] = { "--system", "--pool-size=1", NULL };

/* A store of schema 1, from before a job had a user of its own and before named pools, is migrated when
 * it is opened: its queued job runs as the daemon, as it was submitted to (on the system instance those
 * were root's), its pool size setting becomes the default pool's, and the store is of the current
 * schema (4) afterwards. */
static void test_migrates_schema_1(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sh", "-c", "id -u; exit 4", NULL };
        g_autofree char *blocker = fixture_submit_sleeper(f, NULL), *queued = fixture_submit(f, argv, NULL);
        g_autofree char *db = g_build_filename(f->state_dir, "jobs.db", NULL), *out = NULL, *state = NULL;
        g_autofree char *error_text = NULL;
        sqlite3 *s;
        int rc;

        g_assert_true(fixture_wait_state(f, queued, "queued"));
        stop_daemon(f);
        g_assert_cmpint(user_version(db), ==, 4);
        g_assert_cmpint(sqlite3_open(db, &s), ==, SQLITE_OK);
        g_assert_cmpint(
                sqlite3_exec(
                        s,
                        "ALTER TABLE jobs DROP COLUMN user_uid; ALTER TABLE jobs DROP COLUMN user_gid; "
                        "ALTER TABLE jobs DROP COLUMN user_groups; ALTER TABLE jobs DROP COLUMN after_ids; "
                        "ALTER TABLE jobs DROP COLUMN not_before_usec; ALTER TABLE jobs DROP COLUMN retry; "
                        "ALTER TABLE jobs DROP COLUMN retry_delay_usec; ALTER TABLE jobs DROP COLUMN attempt; "
                        "ALTER TABLE jobs DROP COLUMN wait_until_usec; "
                        "ALTER TABLE jobs DROP COLUMN reason_dependency; "
                        "ALTER TABLE jobs DROP COLUMN reason_dependency_state; "
                        "ALTER TABLE jobs DROP COLUMN reason_dependency_returncode; "
                        "ALTER TABLE jobs DROP COLUMN external_id; ALTER TABLE jobs DROP COLUMN node; "
                        "DROP TABLE pools; "
                        "INSERT INTO settings (key, value) VALUES ('pool-size', 3); PRAGMA user_version = 1",
                        NULL, NULL, NULL),
                ==, SQLITE_OK);
        sqlite3_close(s);

        /* The pool size stored wins over the command line's, as it did. */
        f->daemon_pid = fixture_start_daemon(f, system_pool1);
        g_assert_cmpuint(fixture_manager_u(f, "PoolSize"), ==, 3);
        g_assert_true(fixture_wait_state(f, queued, "exited"));
        fixture_job_outcome(f, queued, &state, &rc, &error_text);
        g_assert_cmpint(rc, ==, 4);
        out = fixture_job_stdout(f, queued);
        g_assert_cmpstr(out, ==, "0\n");
        stop_daemon(f);
        g_assert_cmpint(user_version(db), ==, 4);
}

static char *pool_string(Fixture *f, const char *name, const char *property) {
        g_autofree char *path = g_strdup_printf("/org/procpool/Supervisor1/pool/%s", name);
        g_autoptr(GVariant) v = fixture_get_property(f, path, "org.procpool.Pool1", property);
        return g_variant_dup_string(v, NULL);
}

static guint32 pool_size(Fixture *f, const char *name) {
        g_autofree char *path = g_strdup_printf("/org/procpool/Supervisor1/pool/%s", name);
        g_autoptr(GVariant) v = fixture_get_property(f, path, "org.procpool.Pool1", "Size");
        return g_variant_get_uint32(v);
}

/* A store of schema 3, from before pools had executors and jobs a place outside the daemon: its pools
 * become local ones, as they were, its jobs ran nowhere else, and the store is of schema 4 afterwards. */
static void test_migrates_schema_3(Fixture *f, gconstpointer unused) {
        const char *argv_true[] = { "true", NULL };
        g_autofree char *db = g_build_filename(f->state_dir, "jobs.db", NULL), *job = NULL;
        g_autofree char *kind = NULL, *conf = NULL, *partition = NULL, *external_id = NULL, *node = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        sqlite3 *s;

        r = fixture_call(
                f, "CreatePool",
                g_variant_new("(s@a{sv})", "mine", fixture_options("size", g_variant_new_uint32(3), NULL)),
                &error);
        g_assert_no_error(error);
        job = fixture_submit(f, argv_true, fixture_options("pool", g_variant_new_string("mine"), NULL));
        g_assert_true(fixture_wait_state(f, job, "exited"));
        stop_daemon(f);
        g_assert_cmpint(sqlite3_open(db, &s), ==, SQLITE_OK);
        g_assert_cmpint(
                sqlite3_exec(s,
                             "ALTER TABLE jobs DROP COLUMN external_id; ALTER TABLE jobs DROP COLUMN node; "
                             "ALTER TABLE pools DROP COLUMN executor; "
                             "ALTER TABLE pools DROP COLUMN slurm_conf; "
                             "ALTER TABLE pools DROP COLUMN partition; PRAGMA user_version = 3",
                             NULL, NULL, NULL),
                ==, SQLITE_OK);
        sqlite3_close(s);

        f->daemon_pid = fixture_start_daemon(f, NULL);
        kind = pool_string(f, "mine", "Executor");
        conf = pool_string(f, "mine", "SlurmConf");
        partition = pool_string(f, "mine", "Partition");
        g_assert_cmpstr(kind, ==, "local");
        g_assert_cmpstr(conf, ==, "");
        g_assert_cmpstr(partition, ==, "");
        g_assert_cmpuint(pool_size(f, "mine"), ==, 3);
        external_id = job_string(f, job, "ExternalId");
        node = job_string(f, job, "Node");
        g_assert_cmpstr(external_id, ==, "");
        g_assert_cmpstr(node, ==, "");
        fixture_assert_state(f, job, "exited");
        stop_daemon(f);
        g_assert_cmpint(user_version(db), ==, 4);

        /* Where a job ran, as an executor of another place would have stored it, is read back. */
        g_assert_cmpint(sqlite3_open(db, &s), ==, SQLITE_OK);
        g_assert_cmpint(
                sqlite3_exec(s, "UPDATE jobs SET external_id = '77', node = 'node-2'", NULL, NULL, NULL), ==,
                SQLITE_OK);
        sqlite3_close(s);
        f->daemon_pid = fixture_start_daemon(f, NULL);
        g_free(external_id);
        g_free(node);
        external_id = job_string(f, job, "ExternalId");
        node = job_string(f, job, "Node");
        g_assert_cmpstr(external_id, ==, "77");
        g_assert_cmpstr(node, ==, "node-2");

        /* procpoolctl status shows them, in text and in JSON. */
        {
                g_autofree char *address = g_strdup_printf("--address=%s", f->address);
                g_autofree char *out = NULL, *json = NULL, *id = g_path_get_basename(job);
                const char *ctl = g_getenv("PROCPOOLCTL");
                int status;

                g_assert_true(g_spawn_sync(NULL,
                                           (char *[]) { (char *) ctl, address, (char *) "status", id, NULL },
                                           NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, &status, &error));
                g_assert_no_error(error);
                g_assert_true(g_spawn_check_wait_status(status, NULL));
                g_assert_nonnull(strstr(out, "\nExternal id: 77\n       Node: node-2\n"));
                g_assert_true(g_spawn_sync(
                        NULL,
                        (char *[]) { (char *) ctl, address, (char *) "--json", (char *) "status", id, NULL },
                        NULL, G_SPAWN_DEFAULT, NULL, NULL, &json, NULL, &status, &error));
                g_assert_no_error(error);
                g_assert_nonnull(strstr(json, "\"external_id\":\"77\",\"node\":\"node-2\""));
        }
}

/* A Slurm pool whose executor cannot be set up when the daemon starts (its slurm.conf is gone) does not
 * keep the daemon from starting: the pool is there with its settings, and its jobs fail as they would
 * start, saying why; a queued one of the last run too. The pool can be removed. */
static void test_slurm_pool_unavailable(Fixture *f, gconstpointer unused) {
        const char *argv_true[] = { "true", NULL };
        g_autofree char *db = g_build_filename(f->state_dir, "jobs.db", NULL);
        g_autofree char *conf = g_build_filename(f->state_dir, "gone", "slurm.conf", NULL);
        g_autofree char *sql = NULL, *kind = NULL, *slurm_conf = NULL, *partition = NULL, *job = NULL;
        g_autofree char *state = NULL, *error_text = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        int rc;
        sqlite3 *s;

        stop_daemon(f);
        g_assert_cmpint(sqlite3_open(db, &s), ==, SQLITE_OK);
        sql = g_strdup_printf("INSERT INTO pools (name, size, paused, executor, slurm_conf, partition) "
                              "VALUES ('cluster', 5, 0, 'slurm', '%s', 'debug')",
                              conf);
        g_assert_cmpint(sqlite3_exec(s, sql, NULL, NULL, NULL), ==, SQLITE_OK);
        sqlite3_close(s);

        f->daemon_pid = fixture_start_daemon(f, NULL);
        kind = pool_string(f, "cluster", "Executor");
        slurm_conf = pool_string(f, "cluster", "SlurmConf");
        partition = pool_string(f, "cluster", "Partition");
        g_assert_cmpstr(kind, ==, "slurm");
        g_assert_cmpstr(slurm_conf, ==, conf);
        g_assert_cmpstr(partition, ==, "debug");
        g_assert_cmpuint(pool_size(f, "cluster"), ==, 5);

        job = fixture_submit(f, argv_true, fixture_options("pool", g_variant_new_string("cluster"), NULL));
        g_assert_true(fixture_wait_finished(f, job));
        fixture_job_outcome(f, job, &state, &rc, &error_text);
        g_assert_cmpstr(state, ==, "failed");
        g_assert_nonnull(strstr(error_text, "Pool 'cluster' cannot run jobs: Pool setting 'slurm-conf': "));
        g_assert_nonnull(strstr(error_text, "No such file or directory"));

        r = fixture_call(f, "RemovePool", g_variant_new("(s)", "cluster"), &error);
        g_assert_no_error(error);
}

static void test_refuses_locked(Fixture *f, gconstpointer unused) {
        /* The fixture's daemon runs on this state dir: a second one must not share it. */
        assert_refused(f, f->state_dir, "another procpoold uses it");
}

static void test_refuses_read_only(Fixture *f, gconstpointer unused) {
        g_autofree char *mnt = g_build_filename(f->state_dir, "ro", NULL);
        g_autofree char *dir = g_build_filename(mnt, "state", NULL);

        /* Root writes through modes: a read-only mount is what stops it. */
        g_assert_cmpint(g_mkdir(mnt, 0700), ==, 0);
        g_assert_no_errno(mount("tmpfs", mnt, "tmpfs", 0, "size=1m"));
        g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
        g_assert_no_errno(mount(NULL, mnt, NULL, MS_REMOUNT | MS_RDONLY, NULL));
        assert_refused(f, dir, "Read-only file system");
        g_assert_no_errno(umount(mnt));
}

static void test_store_full(Fixture *f, gconstpointer unused) {
        g_autofree char *mnt = g_build_filename(f->state_dir, "small", NULL);
        g_autofree char *dir = g_build_filename(mnt, "state", NULL);
        g_autofree char *arg = g_strdup_printf("--state-dir=%s", dir);
        g_autofree char *filler = g_build_filename(mnt, "filler", NULL);
        const char *argv_true[] = { "true", NULL };
        const char *const args[] = { arg, NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        int fd;

        stop_daemon(f);
        g_assert_cmpint(g_mkdir(mnt, 0700), ==, 0);
        g_assert_no_errno(mount("tmpfs", mnt, "tmpfs", 0, "size=1m"));
        f->daemon_pid = fixture_start_daemon(f, args);
        g_assert_cmpint(fixture_call_argv(f, argv_true, NULL, &error), ==, 0);

        /* The disk fills up: a Submit that cannot be stored is refused, not acknowledged. */
        fd = open(filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        g_assert_cmpint(fd, >=, 0);
        for (;;) {
                static const char block[4096];
                if (write(fd, block, sizeof(block)) < 0)
                        break;
        }
        for (;;) {
                if (write(fd, "x", 1) < 0)
                        break;
        }
        g_assert_cmpint(close(fd), ==, 0);
        r = fixture_call(f, "Submit", g_variant_new("(^as@a{sv})", argv_true, FIXTURE_NO_OPTIONS), &error);
        g_assert_null(r);
        g_assert_nonnull(error);
        g_assert_nonnull(strstr(error->message, "not queued"));
        g_clear_error(&error);
        /* A SubmitMany is one commit: refused as a whole, none of its jobs left queued. */
        {
                GVariantBuilder b;

                g_variant_builder_init(&b, G_VARIANT_TYPE("aas"));
                for (int i = 0; i < 3; i++)
                        g_variant_builder_add(&b, "^as", argv_true);
                r = fixture_call(f, "SubmitMany", g_variant_new("(aas@a{sv})", &b, FIXTURE_NO_OPTIONS),
                                 &error);
                g_assert_null(r);
                g_assert_nonnull(error);
                g_assert_nonnull(strstr(error->message, "none of them was queued"));
                g_clear_error(&error);
                g_assert_cmpuint(fixture_manager_u(f, "Queued"), ==, 0);
        }

        /* Room again: the daemon, still serving, takes jobs as before. */
        g_assert_cmpint(g_unlink(filler), ==, 0);
        g_assert_cmpint(fixture_call_argv(f, argv_true, NULL, &error), ==, 0);
        g_assert_no_error(error);
        stop_daemon(f);
        g_assert_no_errno(umount(mnt));
        f->daemon_pid = fixture_start_daemon(f, NULL);
}

static void test_sync_full(Fixture *f, gconstpointer unused) {
        const char *argv_true[] = { "true", NULL };
        g_autoptr(GError) error = NULL;
        g_autofree char *job = NULL;

        job = fixture_submit(f, argv_true, NULL);
        g_assert_true(fixture_wait_state(f, job, "exited"));
        kill_daemon(f);
        f->daemon_pid = fixture_start_daemon(f, (const char *const[]) { "--sync=full", NULL });
        g_assert_true(fixture_wait_state(f, job, "exited"));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add("/procpool/store/crash", Fixture, pool1, fixture_setup, test_crash, fixture_teardown);
        g_test_add("/procpool/store/pool-size-kept", Fixture, NULL, fixture_setup, test_pool_size_kept,
                   fixture_teardown);
        g_test_add("/procpool/store/stop", Fixture, pool1, fixture_setup, test_stop, fixture_teardown);
        g_test_add("/procpool/store/crash-loop", Fixture, NULL, fixture_setup, test_crash_loop,
                   fixture_teardown);
        g_test_add("/procpool/store/refuses-damaged", Fixture, NULL, fixture_setup, test_refuses_damaged,
                   fixture_teardown);
        g_test_add("/procpool/store/refuses-newer", Fixture, NULL, fixture_setup, test_refuses_newer,
                   fixture_teardown);
        g_test_add("/procpool/store/migrates-schema-1", Fixture, system_pool1, fixture_setup,
                   test_migrates_schema_1, fixture_teardown);
        g_test_add("/procpool/store/migrates-schema-3", Fixture, NULL, fixture_setup, test_migrates_schema_3,
                   fixture_teardown);
        g_test_add("/procpool/store/slurm-pool-unavailable", Fixture, NULL, fixture_setup,
                   test_slurm_pool_unavailable, fixture_teardown);
        g_test_add("/procpool/store/refuses-locked", Fixture, NULL, fixture_setup, test_refuses_locked,
                   fixture_teardown);
        g_test_add("/procpool/store/refuses-read-only", Fixture, NULL, fixture_setup, test_refuses_read_only,
                   fixture_teardown);
        g_test_add("/procpool/store/full", Fixture, NULL, fixture_setup, test_store_full, fixture_teardown);
        g_test_add("/procpool/store/sync-full", Fixture, NULL, fixture_setup, test_sync_full,
                   fixture_teardown);
        return g_test_run();
}
