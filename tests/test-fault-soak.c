/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fault suite under load: a flood of Submits and ten thousand jobs in a row leave the daemon's
 * memory, fds and children bounded, and it answers throughout. */
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

static const char *const argv_true[] = { "true", NULL };
static const char *const argv_sleep[] = { "sleep", "1000", NULL };

/* ---- pipelined Submits -------------------------------------------------------------------------- */

typedef struct Flood {
        guint sent, done, ok, queue_full, other;
        char *first_other;
} Flood;

static void on_flood_reply(GObject *source, GAsyncResult *result, gpointer userdata) {
        Flood *fl = userdata;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);

        fl->done++;
        if (r) {
                fl->ok++;
                return;
        }
        g_autofree char *name = g_dbus_error_get_remote_error(error);
        if (g_strcmp0(name, "org.procpool.Error.QueueFull") == 0)
                fl->queue_full++;
        else {
                fl->other++;
                if (!fl->first_other)
                        fl->first_other = g_strdup(error->message);
        }
}

/* n Submits of argv with at most window in flight (the bus's own limit on calls awaiting a reply is
 * 128 per connection) or, with finished, at most window not finished; on_half runs once when half are
 * sent. */
static void flood(GDBusConnection *c, const char *const *argv, guint n, guint window, Flood *fl,
                  const guint *finished, void (*on_half)(gpointer), gpointer data) {
        while (fl->done < n || (finished && *finished < n)) {
                while (fl->sent < n && fl->sent - (finished ? *finished : fl->done) < window) {
                        g_dbus_connection_call(c, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Submit",
                                               g_variant_new("(^as@a{sv})", argv, FIXTURE_NO_OPTIONS),
                                               G_VARIANT_TYPE("(o)"), G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL,
                                               on_flood_reply, fl);
                        fl->sent++;
                        if (on_half && fl->sent == n / 2)
                                on_half(data);
                }
                g_main_context_iteration(NULL, TRUE);
        }
}

static const char *const args_flood[] = { "--pool-size=2", "--max-running-per-user=1", "--retain=16", NULL };

typedef struct FloodOther {
        Fixture *f;
        GPid pid;
        int out;
} FloodOther;

static void start_other_call(gpointer data) {
        FloodOther *o = data;
        g_auto(GStrv) argv = fixture_other_client_argv(o->f, "call", (const char *const *) argv_true);
        g_autoptr(GError) error = NULL;

        g_assert_true(g_spawn_async_with_pipes(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                               fixture_become_other, NULL, &o->pid, NULL, &o->out, NULL,
                                               &error));
        g_assert_no_error(error);
}

static void test_submit_flood(Fixture *f, gconstpointer unused) {
        const guint n = 100000;
        g_autofree char *blocker = fixture_submit_sleeper(f, NULL);
        FloodOther other = { .f = f };
        Flood fl = {};
        guint64 rss0, rss1;
        char buf[64] = {};
        ssize_t k;
        int status;

        if (!fixture_have_root())
                return;
        rss0 = fixture_proc_status_kib(f->daemon_pid, "VmRSS:");
        /* Halfway through, another uid calls; its answer must come while the flood goes on. */
        flood(f->conn, (const char *const *) argv_sleep, n, 100, &fl, NULL, start_other_call, &other);
        rss1 = fixture_proc_status_kib(f->daemon_pid, "VmRSS:");
        g_test_message("%u Submits: %u queued, %u QueueFull; VmRSS %" G_GUINT64_FORMAT
                       " -> %" G_GUINT64_FORMAT " KiB",
                       n, fl.ok, fl.queue_full, rss0, rss1);

        if (fl.other > 0)
                g_error("%u Submits failed otherwise, first: %s", fl.other, fl.first_other);
        /* Exactly the per-user queue limit (default 16384) was taken; everything else refused. */
        g_assert_cmpuint(fl.ok, ==, 16384);
        g_assert_cmpuint(fl.queue_full, ==, n - 16384);
        g_assert_cmpuint(fixture_manager_u(f, "Queued"), ==, 16384);
        /* Bounded by the limit: 16384 queued jobs take a few MiB, never memory per Submit sent. */
        if (!fixture_proc_has_asan(f->daemon_pid))
                g_assert_cmpuint(rss1, <, rss0 + 96 * 1024);
        else
                g_assert_cmpuint(rss1, <, rss0 + 768 * 1024);

        for (;;) {
                k = read(other.out, buf, sizeof(buf) - 1);
                if (k < 0 && errno == EINTR)
                        continue;
                break;
        }
        g_assert_cmpint(k, >, 0);
        g_assert_cmpstr(g_strstrip(buf), ==, "rc=0");
        close(other.out);
        g_assert_cmpint(waitpid(other.pid, &status, 0), ==, other.pid);
        g_free(fl.first_other);
}

/* ---- soak ---------------------------------------------------------------------------------------- */

static const char *const args_soak[] = { "--pool-size=2", "--retain=16", NULL };

static void on_job_finished(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                            const char *signal, GVariant *params, gpointer userdata) {
        (*(guint *) userdata)++;
}

/* n Submits, at most 100 of them unfinished at a time: the daemon's queue stays short, so its memory
 * has a working size to return to. */
static void run_batch(Fixture *f, guint n) {
        const char *const argv[] = { "/bin/true", NULL };
        guint finished = 0, id;
        Flood fl = {};

        id = g_dbus_connection_signal_subscribe(f->conn, NULL, MANAGER_IFACE, "JobFinished", MANAGER_PATH,
                                                NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_job_finished, &finished,
                                                NULL);
        flood(f->conn, argv, n, 100, &fl, &finished, NULL, NULL);
        g_dbus_connection_signal_unsubscribe(f->conn, id);
        if (fl.ok != n)
                g_error("%u of %u Submits failed, first: %s", n - fl.ok, n, fl.first_other);
        g_assert_true(fixture_wait_counts(f, 0, 0));
}

static void test_soak(Fixture *f, gconstpointer unused) {
        guint fds0, fds1, children, zombies;
        guint64 rss0, rss1;

        /* Warm up first: the allocator and the bus connection reach their working size. */
        run_batch(f, 500);
        fds0 = fixture_proc_fd_count(f->daemon_pid);
        rss0 = fixture_proc_status_kib(f->daemon_pid, "VmRSS:");

        run_batch(f, 10000);
        fds1 = fixture_proc_fd_count(f->daemon_pid);
        rss1 = fixture_proc_status_kib(f->daemon_pid, "VmRSS:");
        fixture_proc_children(f->daemon_pid, &children, &zombies);
        g_test_message("10000 jobs: fds %u -> %u, VmRSS %" G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT
                       " KiB, %u children left",
                       fds0, fds1, rss0, rss1, children);

        g_assert_cmpuint(fds1, ==, fds0);
        g_assert_cmpuint(zombies, ==, 0);
        g_assert_cmpuint(children, ==, 0);
        if (fixture_proc_has_asan(f->daemon_pid))
                g_test_message("AddressSanitizer's quarantine holds freed memory: VmRSS not compared");
        else
                g_assert_cmpuint(rss1, <=, rss0 + MAX(rss0 / 4, 2048));
        fixture_assert_answers(f);
}

/* ---- main ---------------------------------------------------------------------------------------- */

#define ADD(name, setup, args, fn) FIXTURE_ADD("/procpool/fault/" name, setup, args, fn)

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        ADD("submit-flood", fixture_setup_system, args_flood, test_submit_flood);
        ADD("soak", fixture_setup, args_soak, test_soak);
        return g_test_run();
}
