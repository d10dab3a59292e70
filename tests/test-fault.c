/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fault suite: limits, faults and hostile input, each checked from a client's side, and the daemon
 * still answering afterwards. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>

#include "fixture.h"

/* Clients of another user: the open bus admits every uid. */
#define OTHER_UID 65534
/* The daemon of the EAGAIN case runs as a user of its own, so that no other test's processes count
 * against its RLIMIT_NPROC; the bus wants the uid to have an entry in the user database. */
#define NPROC_USER "games"

#define MiB (1024U * 1024U)
/* The cap of one captured stream on a bus given by --address (see docs/reliability.md). */
#define STREAM_CAP (15ULL * MiB)

static const char *const argv_true[] = {"true", NULL};
static const char *const argv_sleep[] = {"sleep", "1000", NULL};

/* ---- helpers ------------------------------------------------------------------------------------ */

/* Every case ends with this: the daemon runs a job and answers. */
static void assert_answers(Fixture *f) {
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(fixture_call_argv(f, (const char *const *) argv_true, NULL, &error), ==, 0);
        g_assert_no_error(error);
}

static GVariant *call_raw(GDBusConnection *c, const char *path, const char *iface, const char *method,
                          GVariant *params, GError **error) {
        return g_dbus_connection_call_sync(c, BUS_NAME, path, iface, method, params, NULL,
                                           G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, error);
}

/* Calls and expects the D-Bus error name (and text, if given). */
static void expect_error(Fixture *f, const char *path, const char *iface, const char *method,
                         GVariant *params, const char *name, const char *text) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = call_raw(f->conn, path, iface, method, params, &error);

        if (r)
                g_error("%s on %s: expected %s, got a reply %s", method, path, name,
                        g_variant_print(r, TRUE));
        fixture_assert_error(error, name, text);
}

static void expect_call_error(Fixture *f, const char *const *argv, GVariant *options, const char *name,
                              const char *text) {
        if (!options)
                options = FIXTURE_NO_OPTIONS;
        expect_error(f, MANAGER_PATH, MANAGER_IFACE, "Call", g_variant_new("(^as@a{sv})", argv, options),
                     name, text);
}

static char *job_path_of(guint64 id) {
        return g_strdup_printf(MANAGER_PATH "/job/%" G_GUINT64_FORMAT, id);
}

static char *job_state(Fixture *f, const char *path) {
        g_autoptr(GVariant) v = fixture_get_property(f, path, JOB_IFACE, "State");
        return g_variant_dup_string(v, NULL);
}

static guint32 job_pid(Fixture *f, const char *path) {
        g_autoptr(GVariant) v = fixture_get_property(f, path, JOB_IFACE, "Pid");
        return g_variant_get_uint32(v);
}

static guint32 manager_u(Fixture *f, const char *name) {
        g_autoptr(GVariant) v = fixture_get_property(f, MANAGER_PATH, MANAGER_IFACE, name);
        return g_variant_get_uint32(v);
}

/* Submits a sleeper and waits until it runs. */
static char *submit_running(Fixture *f, GVariant *options) {
        char *path = fixture_submit(f, (const char *const *) argv_sleep, options);

        g_assert_true(fixture_wait_state(f, path, "running"));
        return path;
}

static GVariant *bytes_variant(const void *data, gsize size) {
        return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, data, size, 1);
}

/* ---- what /proc says about the daemon --------------------------------------------------------------- */

static guint proc_fd_count(GPid pid) {
        g_autofree char *dir = g_strdup_printf("/proc/%d/fd", pid);
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        guint n = 0;

        g_assert_nonnull(d);
        while (g_dir_read_name(d))
                n++;
        return n;
}

static guint64 proc_status_kib(GPid pid, const char *field) {
        g_autofree char *file = g_strdup_printf("/proc/%d/status", pid), *text = NULL;
        const char *p;

        g_assert_true(g_file_get_contents(file, &text, NULL, NULL));
        p = strstr(text, field);
        g_assert_nonnull(p);
        return g_ascii_strtoull(p + strlen(field) + 1, NULL, 10);
}

/* State letter and parent of a process from /proc/PID/stat; FALSE if it is gone. */
static gboolean proc_stat(pid_t pid, char *ret_state, pid_t *ret_ppid) {
        g_autofree char *file = g_strdup_printf("/proc/%d/stat", pid), *text = NULL;
        const char *p;

        if (!g_file_get_contents(file, &text, NULL, NULL))
                return FALSE;
        p = strrchr(text, ')'); /* the command name may hold anything */
        if (!p || sscanf(p + 1, " %c %d", ret_state, ret_ppid) != 2)
                return FALSE;
        return TRUE;
}

/* Gone, or a zombie nobody reaps (its parent died): either way not running. */
static gboolean process_dead(pid_t pid) {
        char state;
        pid_t ppid;

        return !proc_stat(pid, &state, &ppid) || state == 'Z' || state == 'X';
}

static gboolean wait_process_dead(pid_t pid) {
        for (int i = 0; i < 1000; i++) {
                if (process_dead(pid))
                        return TRUE;
                g_usleep(10000);
        }
        return FALSE;
}

/* Children of pid, counting zombies separately. */
static void proc_children(GPid parent, guint *ret_children, guint *ret_zombies) {
        g_autoptr(GDir) d = g_dir_open("/proc", 0, NULL);
        const char *name;

        *ret_children = *ret_zombies = 0;
        while ((name = g_dir_read_name(d))) {
                char state;
                pid_t ppid;
                if (!g_ascii_isdigit(name[0]) || !proc_stat(atoi(name), &state, &ppid) || ppid != parent)
                        continue;
                (*ret_children)++;
                if (state == 'Z')
                        (*ret_zombies)++;
        }
}

/* A daemon built with AddressSanitizer keeps freed memory in quarantine: its RSS says nothing then. */
static gboolean daemon_has_asan(GPid pid) {
        g_autofree char *file = g_strdup_printf("/proc/%d/maps", pid), *text = NULL;

        g_assert_true(g_file_get_contents(file, &text, NULL, NULL));
        return strstr(text, "libasan") || strstr(text, "libclang_rt.asan");
}

static guint processes_of_uid(uid_t uid) {
        g_autoptr(GDir) d = g_dir_open("/proc", 0, NULL);
        const char *name;
        guint n = 0;

        while ((name = g_dir_read_name(d))) {
                g_autofree char *file = NULL, *text = NULL;
                const char *p;
                if (!g_ascii_isdigit(name[0]))
                        continue;
                file = g_strdup_printf("/proc/%s/status", name);
                if (!g_file_get_contents(file, &text, NULL, NULL) || !(p = strstr(text, "\nUid:")))
                        continue;
                if ((uid_t) g_ascii_strtoull(p + 5, NULL, 10) == uid)
                        n++;
        }
        return n;
}

/* Clients of another uid, and a daemon run as one, need root to switch. */
static gboolean have_root(void) {
        if (getuid() == 0)
                return TRUE;
        g_test_skip("needs root to run clients as another uid");
        return FALSE;
}

/* ---- a client of another uid: this binary again, run as OTHER_UID ------------------------------------ */

static void become_other(gpointer unused) {
        if (setgroups(0, NULL) < 0 || setgid(OTHER_UID) < 0 || setuid(OTHER_UID) < 0)
                _exit(99);
}

/* How long the other uid's client waits for its answer: long enough for any loaded machine, short
 * enough that a client starved by a broken scheduler fails the test instead of hanging it. */
#define CLIENT_TIMEOUT_MSEC (90 * 1000)

/* Child side: "--client ADDRESS call|communicate ARGV...": one request, its outcome on stdout. */
static int run_client(int argc, char *argv[]) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) c = NULL;
        g_autoptr(GVariant) r = NULL;
        gboolean communicate = g_str_equal(argv[3], "communicate");
        const char *const *cmd = (const char *const *) argv + 4;

        c = g_dbus_connection_new_for_address_sync(argv[2],
                                                   G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                           G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                   NULL, NULL, &error);
        if (!c) {
                g_print("connect-failed=%s\n", error->message);
                return 0;
        }
        if (communicate)
                r = g_dbus_connection_call_sync(
                        c, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                        g_variant_new("(^as@ay@a{sv})", cmd, bytes_variant("", 0), FIXTURE_NO_OPTIONS), NULL,
                        G_DBUS_CALL_FLAGS_NONE, CLIENT_TIMEOUT_MSEC, NULL, &error);
        else
                r = g_dbus_connection_call_sync(c, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call",
                                                g_variant_new("(^as@a{sv})", cmd, FIXTURE_NO_OPTIONS), NULL,
                                                G_DBUS_CALL_FLAGS_NONE, CLIENT_TIMEOUT_MSEC, NULL, &error);
        if (!r) {
                g_autofree char *name = g_dbus_error_get_remote_error(error);
                g_print("error=%s\n", name ? name : error->message);
                return 0;
        }
        if (communicate) {
                g_autoptr(GVariant) out = NULL, err = NULL;
                int rc;
                g_variant_get(r, "(i@ay@ay)", &rc, &out, &err);
                g_print("rc=%d out=%zu\n", rc, g_variant_n_children(out));
        } else {
                int rc;
                g_variant_get(r, "(i)", &rc);
                g_print("rc=%d\n", rc);
        }
        return 0;
}

static char **other_client_argv(Fixture *f, const char *mode, const char *const *cmd) {
        g_autoptr(GPtrArray) a = g_ptr_array_new();
        char *self = g_file_read_link("/proc/self/exe", NULL);

        g_assert_nonnull(self);
        g_ptr_array_add(a, self);
        g_ptr_array_add(a, g_strdup("--client"));
        g_ptr_array_add(a, g_strdup(f->address));
        g_ptr_array_add(a, g_strdup(mode));
        for (const char *const *c = cmd; *c; c++)
                g_ptr_array_add(a, g_strdup(*c));
        g_ptr_array_add(a, NULL);
        return (char **) g_ptr_array_free(g_steal_pointer(&a), FALSE);
}

/* Runs one request as OTHER_UID and returns what it printed, stripped. */
static char *other_client(Fixture *f, const char *mode, const char *const *cmd) {
        g_auto(GStrv) argv = other_client_argv(f, mode, cmd);
        g_autoptr(GError) error = NULL;
        char *out = NULL;
        int status;

        g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, become_other, NULL, &out, NULL, &status,
                                   &error));
        g_assert_no_error(error);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        return g_strstrip(out);
}

/* ---- pipelined Submits ------------------------------------------------------------------------------- */

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

/* Waits until nothing is queued or running. */
static void wait_idle(Fixture *f) {
        for (int i = 0; i < 12000; i++) {
                if (manager_u(f, "Queued") == 0 && manager_u(f, "Running") == 0)
                        return;
                g_usleep(10000);
        }
        g_error("the daemon did not become idle within 120 s");
}

/* ---- limits ------------------------------------------------------------------------------------------ */

static const char *const args_user_queue[] = {"--pool-size=2", "--max-queued-per-user=3",
                                              "--max-running-per-user=1", NULL};

static void test_user_queue_limit(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autofree char *first = submit_running(f, NULL), *out = NULL, *queued = NULL;
        g_autoptr(GVariant) r = NULL;

        if (!have_root())
                return;
        /* One uid running one job and holding three queued is at its queue limit... */
        for (int i = 0; i < 3; i++)
                g_free(fixture_submit(f, (const char *const *) argv_sleep, NULL));
        r = fixture_call(f, "Submit", g_variant_new("(^as@a{sv})", argv_sleep, FIXTURE_NO_OPTIONS), &error);
        g_assert_null(r);
        fixture_assert_error(error, "org.procpool.Error.QueueFull", "uid 0 has 3 jobs queued");
        fixture_assert_error(error, "org.procpool.Error.QueueFull", "--max-queued-per-user");

        /* ...and another uid is still served, at once. */
        out = other_client(f, "call", (const char *const *) argv_true);
        g_assert_cmpstr(out, ==, "rc=0");

        /* A queued job of the first uid that goes makes room for one more. */
        queued = job_path_of(2);
        g_clear_error(&error);
        g_clear_pointer(&r, g_variant_unref);
        r = fixture_job_call(f, queued, "Cancel", NULL, &error);
        g_assert_no_error(error);
        g_clear_pointer(&r, g_variant_unref);
        g_free(fixture_submit(f, (const char *const *) argv_sleep, NULL));
        r = fixture_call(f, "Submit", g_variant_new("(^as@a{sv})", argv_sleep, FIXTURE_NO_OPTIONS), &error);
        g_assert_null(r);
        fixture_assert_error(error, "org.procpool.Error.QueueFull", "uid 0");
        g_assert_cmpuint(manager_u(f, "Queued"), ==, 3);
}

static const char *const args_queue[] = {"--pool-size=1", "--max-queued=3", NULL};

static void test_queue_limit(Fixture *f, gconstpointer unused) {
        g_autofree char *first = submit_running(f, NULL);
        g_autoptr(GError) error = NULL;

        for (int i = 0; i < 3; i++)
                g_free(fixture_submit(f, (const char *const *) argv_sleep, NULL));
        /* Call and Communicate share the queue with Submit. */
        expect_call_error(f, (const char *const *) argv_true, NULL, "org.procpool.Error.QueueFull",
                          "MaxQueued");
        expect_error(f, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                     g_variant_new("(^as@ay@a{sv})", argv_true, bytes_variant("", 0), FIXTURE_NO_OPTIONS),
                     "org.procpool.Error.QueueFull", "3 jobs are waiting");
        g_assert_cmpuint(manager_u(f, "MaxQueued"), ==, 3);

        /* Once the sleeper goes, the queue drains and the daemon answers. */
        g_autoptr(GVariant) cancelled = fixture_job_call(f, first, "Cancel", NULL, &error);
        g_assert_no_error(error);
        for (int id = 2; id <= 4; id++) {
                g_autofree char *p = job_path_of(id);
                g_autoptr(GVariant) v = NULL;
                g_assert_true(fixture_wait_state(f, p, "running"));
                v = fixture_job_call(f, p, "Cancel", NULL, &error);
                g_assert_no_error(error);
        }
        assert_answers(f);
}

static const char *const args_user_running[] = {"--pool-size=2", "--max-running-per-user=1", NULL};

static void test_user_running_limit(Fixture *f, gconstpointer unused) {
        g_autofree char *first = submit_running(f, NULL), *out = NULL, *second = job_path_of(2);
        g_autofree char *state = NULL;

        if (!have_root())
                return;
        /* More waiting jobs of the limited uid than any fixed look-ahead would pass over. */
        for (int i = 0; i < 200; i++)
                g_free(fixture_submit(f, (const char *const *) argv_sleep, NULL));
        out = other_client(f, "call", (const char *const *) argv_true);
        g_assert_cmpstr(out, ==, "rc=0");

        /* The free worker went to the other uid; the first uid still runs one job only. */
        state = job_state(f, second);
        g_assert_cmpstr(state, ==, "queued");
        g_assert_cmpuint(manager_u(f, "Running"), ==, 1);
        g_assert_cmpuint(manager_u(f, "Queued"), ==, 200);
}

static const char *const args_user_output[] = {"--max-output-per-user=1M", NULL};

static void test_user_output_limit(Fixture *f, gconstpointer unused) {
        const char *const head[] = {"head", "-c", "700K", "/dev/zero", NULL};
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        g_autoptr(GVariant) o = NULL, o2 = NULL;
        g_autofree char *p1 = NULL, *p3 = NULL, *other = NULL;
        GVariant *stdout_v;
        int rc;

        if (!have_root())
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
        other = other_client(f, "communicate", head);
        g_assert_cmpstr(other, ==, "rc=0 out=716800");

        /* Releasing the held output gives the room back. */
        for (int id = 1; id <= 3; id++) {
                g_autofree char *p = job_path_of(id);
                g_autoptr(GVariant) v = fixture_job_call(f, p, "Release", NULL, &error);
                g_assert_no_error(error);
        }
        g_clear_pointer(&out, g_bytes_unref);
        g_clear_pointer(&err, g_bytes_unref);
        g_assert_true(fixture_communicate(f, head, NULL, 0, NULL, &rc, &out, &err, &error));
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 0);
        g_assert_cmpuint(g_bytes_get_size(out), ==, 700 * 1024);
        assert_answers(f);
}

static const char *const args_flood[] = {"--pool-size=2", "--max-running-per-user=1", "--retain=16", NULL};

typedef struct FloodOther {
        Fixture *f;
        GPid pid;
        int out;
} FloodOther;

static void start_other_call(gpointer data) {
        FloodOther *o = data;
        g_auto(GStrv) argv = other_client_argv(o->f, "call", (const char *const *) argv_true);
        g_autoptr(GError) error = NULL;

        g_assert_true(g_spawn_async_with_pipes(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, become_other,
                                               NULL, &o->pid, NULL, &o->out, NULL, &error));
        g_assert_no_error(error);
}

static void test_submit_flood(Fixture *f, gconstpointer unused) {
        const guint n = 100000;
        g_autofree char *blocker = submit_running(f, NULL);
        FloodOther other = {.f = f};
        Flood fl = {};
        guint64 rss0, rss1;
        char buf[64] = {};
        ssize_t k;
        int status;

        if (!have_root())
                return;
        rss0 = proc_status_kib(f->daemon_pid, "VmRSS:");
        /* Halfway through, another uid calls; its answer must come while the flood goes on. */
        flood(f->conn, (const char *const *) argv_sleep, n, 100, &fl, NULL, start_other_call, &other);
        rss1 = proc_status_kib(f->daemon_pid, "VmRSS:");
        g_test_message("%u Submits: %u queued, %u QueueFull; VmRSS %" G_GUINT64_FORMAT
                       " -> %" G_GUINT64_FORMAT " KiB",
                       n, fl.ok, fl.queue_full, rss0, rss1);

        if (fl.other > 0)
                g_error("%u Submits failed otherwise, first: %s", fl.other, fl.first_other);
        /* Exactly the per-user queue limit (default 16384) was taken; everything else refused. */
        g_assert_cmpuint(fl.ok, ==, 16384);
        g_assert_cmpuint(fl.queue_full, ==, n - 16384);
        g_assert_cmpuint(manager_u(f, "Queued"), ==, 16384);
        /* Bounded by the limit: 16384 queued jobs take a few MiB, never memory per Submit sent. */
        if (!daemon_has_asan(f->daemon_pid))
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

/* ---- request size bounds --------------------------------------------------------------------------- */

static void test_argv_too_big(Fixture *f, gconstpointer unused) {
        g_autoptr(GPtrArray) many = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *big = g_strnfill(MiB, 'x');
        const char *const huge_arg[] = {"true", big, NULL};

        /* 1 MiB of argv and environment, 16384 entries: refused before anything is forked. */
        expect_call_error(f, huge_arg, NULL, "org.freedesktop.DBus.Error.LimitsExceeded", "at most 1048576");
        g_ptr_array_add(many, g_strdup("true"));
        for (int i = 0; i < 16384; i++)
                g_ptr_array_add(many, g_strdup("a"));
        g_ptr_array_add(many, NULL);
        expect_call_error(f, (const char *const *) many->pdata, NULL,
                          "org.freedesktop.DBus.Error.LimitsExceeded", "at most 16384 are taken");
        /* Nothing was made of them. */
        g_assert_cmpuint(manager_u(f, "Queued"), ==, 0);
        assert_answers(f);
}

static void test_environment_too_big(Fixture *f, gconstpointer unused) {
        g_autoptr(GPtrArray) env = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *big = g_strnfill(MiB, 'v');
        g_autofree char *big_entry = g_strconcat("BIG=", big, NULL);
        const char *const one_big[] = {big_entry, NULL};

        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("environment", g_variant_new_strv(one_big, -1), NULL),
                          "org.freedesktop.DBus.Error.LimitsExceeded", "bytes");
        /* 16383 entries and argv[0] are fine together... */
        for (int i = 0; i < 16383; i++)
                g_ptr_array_add(env, g_strdup_printf("V%d=x", i));
        g_ptr_array_add(env, NULL);
        g_autoptr(GError) error = NULL;
        g_assert_cmpint(
                fixture_call_argv(f, (const char *const *) argv_true,
                                  fixture_options("environment",
                                                  g_variant_new_strv((const char *const *) env->pdata, -1),
                                                  NULL),
                                  &error),
                ==, 0);
        g_assert_no_error(error);
        /* ...one more is not. */
        g_ptr_array_remove_index(env, env->len - 1);
        g_ptr_array_add(env, g_strdup("LAST=x"));
        g_ptr_array_add(env, NULL);
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("environment",
                                          g_variant_new_strv((const char *const *) env->pdata, -1), NULL),
                          "org.freedesktop.DBus.Error.LimitsExceeded", "16384");
        assert_answers(f);
}

static void test_environment_many_entries(Fixture *f, gconstpointer unused) {
        const guint n = 400000;
        g_autoptr(GPtrArray) env = g_ptr_array_new_with_free_func(g_free);

        /* Tiny entries, as many as a message takes: refused by count, without first comparing every
         * pair of names (which would keep the daemon busy for minutes). */
        for (guint i = 0; i < n; i++)
                g_ptr_array_add(env, g_strdup_printf("V%u=", i));
        g_ptr_array_add(env, NULL);
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("environment",
                                          g_variant_new_strv((const char *const *) env->pdata, -1), NULL),
                          "org.freedesktop.DBus.Error.LimitsExceeded", "16384");
        assert_answers(f);
}

static void test_label_too_long(Fixture *f, gconstpointer unused) {
        g_autofree char *ok = g_strnfill(4096, 'l'), *too_long = g_strnfill(4097, 'l'), *path = NULL;
        g_autoptr(GVariant) label = NULL;

        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("label", g_variant_new_string(too_long), NULL),
                          "org.freedesktop.DBus.Error.LimitsExceeded", "4096 bytes");
        path = fixture_submit(f, (const char *const *) argv_true,
                              fixture_options("label", g_variant_new_string(ok), NULL));
        label = fixture_get_property(f, path, JOB_IFACE, "Label");
        g_assert_cmpstr(g_variant_get_string(label, NULL), ==, ok);
        assert_answers(f);
}

static void test_output_limit_cap(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;

        /* One Communicate reply carries two streams and must stay below what the bus takes. */
        expect_error(f, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                     g_variant_new("(^as@ay@a{sv})", argv_true, bytes_variant("", 0),
                                   fixture_options("output-limit", g_variant_new_uint64(STREAM_CAP + 1), NULL)),
                     "org.freedesktop.DBus.Error.LimitsExceeded", "one bus reply");
        /* Call captures into the spool, read with OpenOutput: any limit fits. */
        g_assert_cmpint(
                fixture_call_argv(f, (const char *const *) argv_true,
                                  fixture_options("output-limit", g_variant_new_uint64(STREAM_CAP + 1), NULL),
                                  &error),
                ==, 0);
        g_assert_no_error(error);
        expect_error(f, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                     g_variant_new("(^as@ay@a{sv})", argv_true, bytes_variant("", 0),
                                   fixture_options("output-limit", g_variant_new_uint64(G_MAXUINT64), NULL)),
                     "org.freedesktop.DBus.Error.LimitsExceeded", "'stdout' or 'stderr' option");
        g_assert_cmpint(
                fixture_call_argv(f, (const char *const *) argv_true,
                                  fixture_options("output-limit", g_variant_new_uint64(STREAM_CAP), NULL),
                                  &error),
                ==, 0);
        g_assert_no_error(error);
        assert_answers(f);
}

static void test_reply_fits_bus(Fixture *f, gconstpointer unused) {
        const char *const argv[] = {"sh", "-c", "head -c 16M /dev/zero; head -c 16M /dev/zero >&2", NULL};
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        int rc;

        /* 16 MiB on each stream: with the default output limit, that reply would pass the 32 MiB a
         * dbus-daemon takes by default, and the bus would throw the daemon off. It must not get there. */
        g_assert_false(fixture_communicate(f, argv, NULL, 0, NULL, &rc, &out, &err, &error));
        fixture_assert_error(error, "org.procpool.Error.OutputLimit", NULL);
        assert_answers(f);
}

/* ---- faults ------------------------------------------------------------------------------------------ */

static void test_stdin_unread(Fixture *f, gconstpointer unused) {
        const char *const exit3[] = {"sh", "-c", "head -c 1 >/dev/null; exit 3", NULL};
        gsize size = 8 * MiB;
        g_autofree char *input = g_malloc0(size);
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL, out2 = NULL, err2 = NULL;
        int rc;

        /* The child is gone before the input is written: EPIPE for the daemon, never SIGPIPE, and the
         * child's own exit code in the reply. */
        g_assert_true(fixture_communicate(f, (const char *const *) argv_true, input, size, NULL, &rc, &out,
                                          &err, &error));
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 0);
        g_assert_true(fixture_communicate(f, exit3, input, size, NULL, &rc, &out2, &err2, &error));
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 3);
        assert_answers(f);
}

static GDBusConnection *connect_other(Fixture *f) {
        g_autoptr(GError) error = NULL;
        GDBusConnection *c =
                g_dbus_connection_new_for_address_sync(f->address,
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                               G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, &error);

        g_assert_no_error(error);
        return c;
}

/* Makes sure every call sent on c so far has reached the daemon: it handles one connection's
 * messages in order. */
static void sync_with_daemon(GDBusConnection *c) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = call_raw(c, MANAGER_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL, &error);

        g_assert_no_error(error);
}

static void test_call_disconnect(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusConnection) c = connect_other(f);
        g_autofree char *path = job_path_of(1), *path2 = job_path_of(2), *state = NULL, *error_text = NULL;
        g_autoptr(GError) error = NULL;
        guint32 pid, pid2;

        /* A Call and a Communicate in flight, then the caller leaves. */
        g_dbus_connection_call(c, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call",
                               g_variant_new("(^as@a{sv})", argv_sleep, FIXTURE_NO_OPTIONS), NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, NULL, NULL);
        g_dbus_connection_call(
                c, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                g_variant_new("(^as@ay@a{sv})", argv_sleep, bytes_variant("x", 1), FIXTURE_NO_OPTIONS), NULL,
                G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, NULL, NULL);
        sync_with_daemon(c);
        g_assert_true(fixture_wait_state(f, path, "running"));
        g_assert_true(fixture_wait_state(f, path2, "running"));
        pid = job_pid(f, path);
        pid2 = job_pid(f, path2);
        g_dbus_connection_close_sync(c, NULL, &error);
        g_assert_no_error(error);

        /* Nobody can hear the answer: both jobs are cancelled and their processes stopped. */
        g_assert_true(fixture_wait_state(f, path, "cancelled"));
        g_assert_true(fixture_wait_state(f, path2, "cancelled"));
        fixture_job_outcome(f, path, &state, NULL, &error_text);
        g_assert_cmpstr(error_text, ==, "Cancelled");
        g_assert_true(wait_process_dead(pid));
        g_assert_true(wait_process_dead(pid2));
        assert_answers(f);
}

static void test_wait_disconnect(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusConnection) c = connect_other(f);
        g_autofree char *path = submit_running(f, NULL), *state = NULL;
        g_autoptr(GError) error = NULL, error2 = NULL;
        g_autoptr(GVariant) r = NULL;

        /* Another connection waits, then leaves: the job is not its to stop. */
        g_dbus_connection_call(c, BUS_NAME, path, JOB_IFACE, "Wait", NULL, NULL, G_DBUS_CALL_FLAGS_NONE,
                               G_MAXINT, NULL, NULL, NULL);
        sync_with_daemon(c);
        g_dbus_connection_close_sync(c, NULL, &error);
        g_assert_no_error(error);
        assert_answers(f); /* the daemon has seen the disconnect by now: it is ordered before this call */
        state = job_state(f, path);
        g_assert_cmpstr(state, ==, "running");

        /* Its owner still waits and cancels. */
        r = fixture_job_call(f, path, "Cancel", NULL, &error);
        g_assert_no_error(error);
        g_clear_pointer(&r, g_variant_unref);
        r = fixture_job_call(f, path, "Wait", NULL, &error2);
        g_assert_null(r);
        fixture_assert_error(error2, "org.procpool.Error.Cancelled", NULL);
        assert_answers(f);
}

static void test_submit_disconnect(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusConnection) c = connect_other(f);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r1 = NULL, r2 = NULL;
        const char *p1, *p2;
        g_autofree char *s1 = NULL, *s2 = NULL;

        /* Submit keeps its job by default; cancel-on-disconnect asks otherwise. */
        r1 = call_raw(c, MANAGER_PATH, MANAGER_IFACE, "Submit",
                      g_variant_new("(^as@a{sv})", argv_sleep, FIXTURE_NO_OPTIONS), &error);
        g_assert_no_error(error);
        r2 = call_raw(
                c, MANAGER_PATH, MANAGER_IFACE, "Submit",
                g_variant_new("(^as@a{sv})", argv_sleep,
                              fixture_options("cancel-on-disconnect", g_variant_new_boolean(TRUE), NULL)),
                &error);
        g_assert_no_error(error);
        g_variant_get(r1, "(&o)", &p1);
        g_variant_get(r2, "(&o)", &p2);
        g_assert_true(fixture_wait_state(f, p1, "running"));
        g_assert_true(fixture_wait_state(f, p2, "running"));
        g_dbus_connection_close_sync(c, NULL, &error);
        g_assert_no_error(error);

        g_assert_true(fixture_wait_state(f, p2, "cancelled"));
        s1 = job_state(f, p1);
        g_assert_cmpstr(s1, ==, "running");
        assert_answers(f);
}

/* A client that authenticates, sends, and never reads again: its replies pile up in the bus. */
static GIOStream *raw_connect(Fixture *f) {
        g_autoptr(GError) error = NULL;
        g_autofree char *uid = g_strdup_printf("%u", (unsigned) getuid()), *hex = NULL, *auth = NULL;
        GIOStream *s = g_dbus_address_get_stream_sync(f->address, NULL, NULL, &error);
        GOutputStream *out;
        GInputStream *in;
        char line[256];
        gsize n = 0;

        g_assert_no_error(error);
        out = g_io_stream_get_output_stream(s);
        in = g_io_stream_get_input_stream(s);
        hex = g_malloc0(strlen(uid) * 2 + 1);
        for (size_t i = 0; uid[i]; i++)
                sprintf(hex + 2 * i, "%02x", (unsigned char) uid[i]);
        auth = g_strdup_printf("AUTH EXTERNAL %s\r\n", hex);
        g_assert_true(g_output_stream_write_all(out, "", 1, NULL, NULL, &error));
        g_assert_true(g_output_stream_write_all(out, auth, strlen(auth), NULL, NULL, &error));
        while (n < sizeof(line) - 1) {
                g_assert_cmpint(g_input_stream_read(in, line + n, 1, NULL, &error), ==, 1);
                if (line[n++] == '\n')
                        break;
        }
        line[n] = '\0';
        g_assert_true(g_str_has_prefix(line, "OK "));
        g_assert_true(g_output_stream_write_all(out, "BEGIN\r\n", 7, NULL, NULL, &error));
        g_assert_no_error(error);
        return s;
}

static void raw_send(GIOStream *s, GDBusMessage *m, guint32 serial) {
        g_autoptr(GError) error = NULL;
        g_autofree guchar *blob = NULL;
        gsize size;

        g_dbus_message_set_serial(m, serial);
        blob = g_dbus_message_to_blob(m, &size, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
        g_assert_no_error(error);
        g_assert_true(
                g_output_stream_write_all(g_io_stream_get_output_stream(s), blob, size, NULL, NULL, &error));
        g_assert_no_error(error);
}

static void test_stuck_client(Fixture *f, gconstpointer unused) {
        const char *const argv[] = {"head", "-c", "1M", "/dev/zero", NULL};
        g_autoptr(GIOStream) s = raw_connect(f);
        g_autoptr(GDBusMessage) hello = g_dbus_message_new_method_call(
                "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello");
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) jobs = NULL, list = NULL;
        const guint n = 40;

        raw_send(s, hello, 1);
        for (guint i = 0; i < n; i++) {
                g_autoptr(GDBusMessage) m =
                        g_dbus_message_new_method_call(BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Communicate");
                g_dbus_message_set_body(
                        m, g_variant_new("(^as@ay@a{sv})", argv, bytes_variant("", 0), FIXTURE_NO_OPTIONS));
                raw_send(s, m, 2 + i);
        }
        /* 40 MiB of replies wait for a reader that never comes; others are answered meanwhile. */
        for (guint i = 0; i < 3; i++)
                assert_answers(f);
        jobs = fixture_call(f, "ListJobs", NULL, &error);
        g_assert_no_error(error);
        list = g_variant_get_child_value(jobs, 0);
        g_assert_cmpuint(g_variant_n_children(list), >=, 3);
        g_assert_true(fixture_wait_counts(f, 0, 0));
        assert_answers(f);

        g_io_stream_close(s, NULL, NULL);
        assert_answers(f);
}

static void test_sigkill_daemon(Fixture *f, gconstpointer unused) {
        g_autofree char *dir = g_dir_make_tmp("procpool-fault-XXXXXX", NULL);
        g_autofree char *pidfile = g_build_filename(dir, "pid", NULL);
        g_autofree char *script = g_strdup_printf("sleep 1000 & echo $! > %s.tmp; mv %s.tmp %s; wait",
                                                  pidfile, pidfile, pidfile);
        const char *const tree[] = {"sh", "-c", script, NULL};
        g_autofree char *p1 = submit_running(f, NULL), *p2 = NULL, *text = NULL;
        guint32 pid1, pid2;
        pid_t grandchild;
        int status;

        p2 = fixture_submit(f, tree, NULL);
        g_assert_true(fixture_wait_state(f, p2, "running"));
        for (int i = 0; i < 2000 && !g_file_test(pidfile, G_FILE_TEST_EXISTS); i++)
                g_usleep(10000);
        g_assert_true(g_file_get_contents(pidfile, &text, NULL, NULL));
        grandchild = atoi(text);
        pid1 = job_pid(f, p1);
        pid2 = job_pid(f, p2);
        g_assert_cmpuint(pid1, >, 0);
        g_assert_cmpuint(pid2, >, 0);

        g_assert_cmpint(kill(f->daemon_pid, SIGKILL), ==, 0);
        g_assert_cmpint(waitpid(f->daemon_pid, &status, 0), ==, f->daemon_pid);
        f->daemon_pid = 0;

        /* Each job's main process dies with the daemon (PR_SET_PDEATHSIG). */
        g_assert_true(wait_process_dead(pid1));
        g_assert_true(wait_process_dead(pid2));
        /* A descendant is not the daemon's child: without per-job cgroups it is left to itself (see
         * docs/reliability.md); the test stops it. */
        g_test_message("descendant %d after SIGKILL of the daemon: %s", grandchild,
                       process_dead(grandchild) ? "gone" : "still running, as documented");
        (void) kill(grandchild, SIGKILL);
        (void) unlink(pidfile);
        (void) g_rmdir(dir);

        /* A new daemon takes over the bus name and answers. */
        f->daemon_pid = fixture_start_daemon(f, NULL);
        assert_answers(f);
}

static const char *const args_emfile[] = {"--pool-size=64", NULL};

static gboolean all_started(Fixture *f, guint n) {
        for (guint id = 1; id <= n; id++) {
                g_autofree char *p = job_path_of(id), *s = job_state(f, p);
                if (g_str_equal(s, "queued"))
                        return FALSE;
        }
        return TRUE;
}

/* Runs sleepers until starting one fails; returns how many run and checks the failure. */
static guint fill_until_failure(Fixture *f, guint n, const char *errno_text) {
        guint running = 0, failed = 0;

        for (guint i = 0; i < n; i++)
                g_free(fixture_submit(f, (const char *const *) argv_sleep, NULL));
        for (int i = 0; i < 2000 && !all_started(f, n); i++)
                g_usleep(10000);
        for (guint id = 1; id <= n; id++) {
                g_autofree char *p = job_path_of(id), *state = NULL, *error = NULL;
                fixture_job_outcome(f, p, &state, NULL, &error);
                if (g_str_equal(state, "running"))
                        running++;
                else {
                        g_assert_cmpstr(state, ==, "failed");
                        if (!strstr(error, errno_text))
                                g_error("job %u failed with \"%s\", expected \"%s\"", id, error, errno_text);
                        failed++;
                }
        }
        g_test_message("%u running, %u failed with %s", running, failed, errno_text);
        g_assert_cmpuint(running, >, 0);
        g_assert_cmpuint(failed, >, 0);
        return running;
}

static void cancel_all(Fixture *f, guint n) {
        for (guint id = 1; id <= n; id++) {
                g_autofree char *p = job_path_of(id), *state = job_state(f, p);
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) r = NULL;
                if (!g_str_equal(state, "running"))
                        continue;
                r = fixture_job_call(f, p, "Cancel", NULL, &error);
                g_assert_no_error(error);
                g_assert_true(fixture_wait_state(f, p, "cancelled"));
        }
}

static void test_emfile(Fixture *f, gconstpointer unused) {
        struct rlimit low, old;
        guint base = proc_fd_count(f->daemon_pid);
        g_autoptr(GError) error = NULL;

        /* Room for a few jobs' pipes and pidfds, not for 12. */
        g_assert_cmpint(prlimit(f->daemon_pid, RLIMIT_NOFILE, NULL, &old), ==, 0);
        low = (struct rlimit){.rlim_cur = base + 12, .rlim_max = old.rlim_max};
        g_assert_cmpint(prlimit(f->daemon_pid, RLIMIT_NOFILE, &low, NULL), ==, 0);

        fill_until_failure(f, 12, "Too many open files");
        /* A Call now fails the same way, as a job; the daemon itself goes on. */
        expect_call_error(f, (const char *const *) argv_true, NULL, "org.procpool.Error.SpawnFailed",
                          "Too many open files");

        /* The running jobs were not harmed; once they go, jobs start again under the same limit. */
        cancel_all(f, 12);
        assert_answers(f);
        assert_answers(f);
        g_assert_cmpint(prlimit(f->daemon_pid, RLIMIT_NOFILE, &old, NULL), ==, 0);
        assert_answers(f);
}

static uid_t nproc_uid;

static void become_nproc_user(gpointer data) {
        struct rlimit l = {.rlim_cur = GPOINTER_TO_UINT(data), .rlim_max = GPOINTER_TO_UINT(data)};

        if (setrlimit(RLIMIT_NPROC, &l) < 0 || setgroups(0, NULL) < 0 || setgid(nproc_uid) < 0 ||
            setuid(nproc_uid) < 0)
                _exit(99);
}

static void test_eagain(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
        struct passwd *pw = getpwnam(NPROC_USER);
        g_autofree char *state_dir = NULL;

        if (!have_root())
                return;
        if (!pw) {
                g_test_skip("no user " NPROC_USER " to run the daemon as");
                return;
        }
        nproc_uid = pw->pw_uid;
        if (processes_of_uid(nproc_uid) > 0) {
                g_test_skip("processes of user " NPROC_USER " exist already");
                return;
        }
        /* The daemon as a plain uid with room for itself and two jobs: the third fork gets EAGAIN. */
        g_assert_cmpint(fixture_stop_daemon(f->daemon_pid), ==, 0);
        f->daemon_pid = 0;
        /* It keeps its store, as every daemon of the suite does, where that uid may write. */
        state_dir = g_dir_make_tmp("procpool-state-XXXXXX", &error);
        g_assert_no_error(error);
        g_assert_no_errno(chown(state_dir, nproc_uid, pw->pw_gid));
        g_ptr_array_add(argv, g_strdup(g_getenv("PROCPOOLD")));
        g_ptr_array_add(argv, g_strdup_printf("--address=%s", f->address));
        g_ptr_array_add(argv, g_strdup("--pool-size=8"));
        g_ptr_array_add(argv, g_strdup_printf("--state-dir=%s", state_dir));
        g_ptr_array_add(argv, NULL);
        g_assert_true(g_spawn_async("/", (char **) argv->pdata, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                    become_nproc_user, GUINT_TO_POINTER(3), &f->daemon_pid, &error));
        g_assert_no_error(error);
        for (int i = 0; i < 1000; i++) {
                g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                        f->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                        "NameHasOwner", g_variant_new("(s)", BUS_NAME), G_VARIANT_TYPE("(b)"),
                        G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
                gboolean has = FALSE;
                if (r)
                        g_variant_get(r, "(b)", &has);
                if (has)
                        break;
                g_assert_cmpint(waitpid(f->daemon_pid, NULL, WNOHANG), ==, 0);
                g_usleep(10000);
        }

        g_assert_cmpuint(fill_until_failure(f, 4, "Resource temporarily unavailable"), ==, 2);
        expect_call_error(f, (const char *const *) argv_true, NULL, "org.procpool.Error.SpawnFailed",
                          "Resource temporarily unavailable");
        cancel_all(f, 4);
        assert_answers(f);
        assert_answers(f);
        /* The daemon holds its state dir until it stops. */
        g_assert_cmpint(fixture_stop_daemon(f->daemon_pid), ==, 0);
        f->daemon_pid = 0;
        fixture_remove_tree(state_dir);
}

/* ---- hostile input ------------------------------------------------------------------------------------- */

static void test_wrong_signatures(Fixture *f, gconstpointer unused) {
        g_autofree char *job = submit_running(f, NULL);
        const char *invalid = "org.freedesktop.DBus.Error.InvalidArgs";
        const struct {
                const char *path, *iface, *method, *params;
        } cases[] = {
                {MANAGER_PATH, MANAGER_IFACE, "Submit", "('true',)"},
                {MANAGER_PATH, MANAGER_IFACE, "Submit", "(['true'],)"},
                {MANAGER_PATH, MANAGER_IFACE, "Submit", "(['true'], {'a': 'b'})"},
                {MANAGER_PATH, MANAGER_IFACE, "Submit", "(['true'], @a{sv} {}, 1)"},
                {MANAGER_PATH, MANAGER_IFACE, "Call", "(@ay [0x74], @a{sv} {})"},
                {MANAGER_PATH, MANAGER_IFACE, "Call", "()"},
                {MANAGER_PATH, MANAGER_IFACE, "Communicate", "(['true'], @a{sv} {})"},
                {MANAGER_PATH, MANAGER_IFACE, "Communicate", "(['true'], 'input', @a{sv} {})"},
                {MANAGER_PATH, MANAGER_IFACE, "GetJob", "('1',)"},
                {MANAGER_PATH, MANAGER_IFACE, "GetJob", "(int32 1,)"},
                {MANAGER_PATH, MANAGER_IFACE, "GetJob", "()"},
                {MANAGER_PATH, MANAGER_IFACE, "ListJobs", "(1,)"},
                {NULL, JOB_IFACE, "Wait", "(1,)"},
                {NULL, JOB_IFACE, "Cancel", "('now',)"},
                {NULL, JOB_IFACE, "Kill", "('TERM',)"},
                {NULL, JOB_IFACE, "Kill", "(uint32 15,)"},
                {NULL, JOB_IFACE, "Kill", "()"},
                {NULL, JOB_IFACE, "GetOutput", "(true,)"},
                {NULL, JOB_IFACE, "Release", "(@ay [],)"},
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GError) error = NULL;
                GVariant *params = g_variant_parse(NULL, cases[i].params, NULL, NULL, &error);
                g_assert_no_error(error);
                expect_error(f, cases[i].path ? cases[i].path : job, cases[i].iface, cases[i].method, params,
                             invalid, NULL);
        }
        /* The job was not touched by any of them. */
        g_autofree char *state = job_state(f, job);
        g_assert_cmpstr(state, ==, "running");
        assert_answers(f);
}

static void test_option_wrong_types(Fixture *f, gconstpointer unused) {
        const char *const keys[] = {"cwd",
                                    "environment",
                                    "clear-environment",
                                    "timeout-usec",
                                    "stop-timeout-usec",
                                    "stdin",
                                    "stdout",
                                    "stderr",
                                    "output-limit",
                                    "priority",
                                    "label",
                                    "cancel-on-disconnect",
                                    "memory-max"};
        for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
                /* A double is the right type for no option; an array of variants neither. */
                g_autofree char *text = g_strdup_printf("Option '%s' takes a value of type", keys[i]);
                expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options(keys[i], g_variant_new_double(1.5), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", text);
                expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options(keys[i], g_variant_new_parsed("[<1>, <'x'>]"), NULL),
                                  "org.freedesktop.DBus.Error.InvalidArgs", text);
        }
        /* Near misses of the right type. */
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("timeout-usec", g_variant_new_int64(5), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs",
                          "'timeout-usec' takes a value of type 't', not 'x'");
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("priority", g_variant_new_uint32(5), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "'priority'");
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("stdout", g_variant_new_int32(1), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "'stdout'");
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("cwd", g_variant_new_object_path("/tmp"), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "'cwd'");
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("environment", g_variant_new_parsed("@ay [0x41, 0x3d]"), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "'environment'");
        g_assert_cmpuint(manager_u(f, "Queued") + manager_u(f, "Running"), ==, 0);
        assert_answers(f);
}

static void test_unknown_options(Fixture *f, gconstpointer unused) {
        g_autofree char *long_key = g_strnfill(10000, 'k');

        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("bogus", g_variant_new_string("x"), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "Unknown option 'bogus'");
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("", g_variant_new_string("x"), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "Unknown option ''");
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("CWD", g_variant_new_string("/"), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "Unknown option 'CWD'");
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options(long_key, g_variant_new_boolean(TRUE), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "Unknown option 'kkkk");
        assert_answers(f);
}

static void test_duplicate_options(Fixture *f, gconstpointer unused) {
        /* An a{sv} is an array on the wire: nothing stops a key from coming twice. */
        expect_call_error(
                f, (const char *const *) argv_true,
                fixture_options("label", g_variant_new_string("a"), "label", g_variant_new_string("b"), NULL),
                "org.freedesktop.DBus.Error.InvalidArgs", "Option 'label' is given twice");
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("timeout-usec", g_variant_new_uint64(1), "priority",
                                          g_variant_new_int32(1), "timeout-usec", g_variant_new_uint64(2),
                                          NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "'timeout-usec' is given twice");
        assert_answers(f);
}

static void test_many_options(Fixture *f, gconstpointer unused) {
        GVariantBuilder b;

        /* 100,000 entries: refused at the first unknown one, without a job. */
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "label", g_variant_new_string("x"));
        for (int i = 0; i < 100000; i++)
                g_variant_builder_add(&b, "{sv}", "x", g_variant_new_byte(0));
        expect_call_error(f, (const char *const *) argv_true, g_variant_builder_end(&b),
                          "org.freedesktop.DBus.Error.InvalidArgs", "Unknown option 'x'");
        assert_answers(f);
}

static void test_empty_values(Fixture *f, gconstpointer unused) {
        const char *const empty_env[] = {"", NULL}, *const no_name[] = {"=x", NULL};
        const char *const no_eq[] = {"NAME", NULL}, *const empty_value[] = {"E=", NULL};
        const char *const show[] = {"sh", "-c", "test \"${E-unset}\" = '' && test -z \"$L\"", NULL};
        const char *const none[] = {NULL};
        g_autoptr(GError) error = NULL;

        expect_call_error(f, none, NULL, "org.freedesktop.DBus.Error.InvalidArgs", "argv is empty");
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("cwd", g_variant_new_string(""), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "not an absolute path");
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("environment", g_variant_new_strv(empty_env, -1), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "has no '='");
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("environment", g_variant_new_strv(no_name, -1), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "empty name");
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("environment", g_variant_new_strv(no_eq, -1), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "'NAME' has no '='");
        /* Empty but well-formed values are taken as they are. */
        g_assert_cmpint(fixture_call_argv(f, show,
                                          fixture_options("environment", g_variant_new_strv(empty_value, -1),
                                                          "label", g_variant_new_string(""), NULL),
                                          &error),
                        ==, 0);
        g_assert_no_error(error);
        g_assert_cmpint(fixture_call_argv(f, (const char *const *) argv_true,
                                          fixture_options("environment", g_variant_new_strv(none, -1),
                                                          "output-limit", g_variant_new_uint64(0), NULL),
                                          &error),
                        ==, 0);
        g_assert_no_error(error);
        assert_answers(f);
}

static void test_huge_values(Fixture *f, gconstpointer unused) {
        const char *const echo[] = {"sh", "-c", "echo hi", NULL};
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        g_autofree char *long_cwd = NULL, *d = g_strnfill(8000, 'd');
        int rc;

        /* The largest timeouts mean "never", as systemd's infinity. */
        g_assert_cmpint(
                fixture_call_argv(f, (const char *const *) argv_true,
                                  fixture_options("timeout-usec", g_variant_new_uint64(G_MAXUINT64),
                                                  "stop-timeout-usec", g_variant_new_uint64(G_MAXUINT64),
                                                  "priority", g_variant_new_int32(G_MAXINT32), NULL),
                                  &error),
                ==, 0);
        g_assert_no_error(error);
        g_assert_cmpint(
                fixture_call_argv(f, (const char *const *) argv_true,
                                  fixture_options("timeout-usec", g_variant_new_uint64(G_MAXUINT64 / 2),
                                                  "priority", g_variant_new_int32(G_MININT32), NULL),
                                  &error),
                ==, 0);
        g_assert_no_error(error);
        /* output-limit 0 keeps nothing: Communicate of any output passes it. */
        g_assert_false(fixture_communicate(f, echo, NULL, 0,
                                           fixture_options("output-limit", g_variant_new_uint64(0), NULL),
                                           &rc, &out, &err, &error));
        fixture_assert_error(error, "org.procpool.Error.OutputLimit", NULL);
        g_clear_error(&error);
        /* A cwd longer than the kernel takes fails the job with the errno text. */
        long_cwd = g_strconcat("/", d, NULL);
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("cwd", g_variant_new_string(long_cwd), NULL),
                          "org.procpool.Error.SpawnFailed", "File name too long");
        /* memory-max without per-job cgroups: NotSupported, whatever the value. */
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("memory-max", g_variant_new_uint64(G_MAXUINT64), NULL),
                          "org.freedesktop.DBus.Error.NotSupported", "memory-max");
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("memory-max", g_variant_new_uint64(0), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "memory-max");
        assert_answers(f);
}

static void test_odd_bytes(Fixture *f, gconstpointer unused) {
        /* Control characters and any valid UTF-8 pass the bus; they reach the job untouched. */
        const char *odd =
                "\x01\x02\t\n\r\x1b[31m\x7f \xc3\xa9 \xe2\x80\xae \xf0\x9f\x92\xa3 \xf4\x8f\xbf\xbd";
        /* U+FFFF: the bus passes noncharacters, sd-bus refuses the whole message as inconsistent. */
        const char *const nonchar[] = {"printf", "\xef\xbf\xbf", NULL};
        const char *const argv[] = {"printf", "%s|%s", odd, "$(id)`id`", NULL};
        g_autofree char *env_entry = g_strconcat("ODD=", odd, NULL), *expected = NULL;
        const char *const env[] = {env_entry, NULL};
        const char *const print_env[] = {"printenv", "ODD", NULL};
        static const char input[] = "a\0b\0\xff\xfe\x00\x80";
        const char *const cat[] = {"cat", NULL};
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL, out2 = NULL, err2 = NULL, out3 = NULL, err3 = NULL;
        g_autofree char *path = NULL;
        g_autoptr(GVariant) l = NULL;
        gboolean ok;
        int rc;

        ok = fixture_communicate(f, argv, NULL, 0, NULL, &rc, &out, &err, &error);
        g_assert_no_error(error);
        g_assert_true(ok);
        expected = g_strdup_printf("%s|$(id)`id`", odd);
        g_assert_cmpmem(g_bytes_get_data(out, NULL), g_bytes_get_size(out), expected, strlen(expected));

        g_assert_true(fixture_communicate(f, print_env, NULL, 0,
                                          fixture_options("environment", g_variant_new_strv(env, -1), NULL),
                                          &rc, &out2, &err2, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(g_bytes_get_size(out2), ==, strlen(odd) + 1);

        /* Bytes, NULs included, are bytes in 'ay'. */
        g_assert_true(fixture_communicate(f, cat, input, sizeof(input), NULL, &rc, &out3, &err3, &error));
        g_assert_no_error(error);
        g_assert_cmpmem(g_bytes_get_data(out3, NULL), g_bytes_get_size(out3), input, sizeof(input));

        path = fixture_submit(f, (const char *const *) argv_true,
                              fixture_options("label", g_variant_new_string(odd), NULL));
        l = fixture_get_property(f, path, JOB_IFACE, "Label");
        g_assert_cmpstr(g_variant_get_string(l, NULL), ==, odd);

        expect_call_error(f, nonchar, NULL, "org.freedesktop.DBus.Error.InconsistentMessage", NULL);
        assert_answers(f);
}

static GVariant *call_with_fds(Fixture *f, const char *method, GVariant *params, GUnixFDList *fds,
                               GError **error) {
        return g_dbus_connection_call_with_unix_fd_list_sync(f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE,
                                                             method, params, NULL, G_DBUS_CALL_FLAGS_NONE,
                                                             G_MAXINT, fds, NULL, NULL, error);
}

static void test_fd_directory(Fixture *f, gconstpointer unused) {
        const char *const keys[] = {"stdin", "stdout", "stderr"};

        for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
                g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) r = NULL;
                int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                g_autofree char *text = g_strdup_printf("Option '%s': fd refers to a directory", keys[i]);

                g_assert_cmpint(g_unix_fd_list_append(fds, dir, &error), ==, 0);
                close(dir);
                r = call_with_fds(f, "Call",
                                  g_variant_new("(^as@a{sv})", argv_true,
                                                fixture_options(keys[i], g_variant_new_handle(0), NULL)),
                                  fds, &error);
                g_assert_null(r);
                fixture_assert_error(error, "org.freedesktop.DBus.Error.InvalidArgs", text);
        }
        assert_answers(f);
}

static void test_fd_closed_ends(Fixture *f, gconstpointer unused) {
        const char *const cat[] = {"cat", NULL};
        const char *const yes[] = {"sh", "-c", "while :; do echo y; done", NULL};
        g_autoptr(GUnixFDList) in_fds = g_unix_fd_list_new(), out_fds = g_unix_fd_list_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, r2 = NULL;
        int p[2], q[2], rc;

        /* A pipe whose writer is closed: the job reads EOF at once. */
        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        g_unix_fd_list_append(in_fds, p[0], &error);
        close(p[0]);
        close(p[1]);
        r = call_with_fds(
                f, "Call",
                g_variant_new("(^as@a{sv})", cat, fixture_options("stdin", g_variant_new_handle(0), NULL)),
                in_fds, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(i)", &rc);
        g_assert_cmpint(rc, ==, 0);

        /* A pipe whose reader is closed: the job, not the daemon, gets SIGPIPE. */
        g_assert_cmpint(pipe2(q, O_CLOEXEC), ==, 0);
        g_unix_fd_list_append(out_fds, q[1], &error);
        close(q[0]);
        close(q[1]);
        r2 = call_with_fds(
                f, "Call",
                g_variant_new("(^as@a{sv})", yes, fixture_options("stdout", g_variant_new_handle(0), NULL)),
                out_fds, &error);
        g_assert_no_error(error);
        g_variant_get(r2, "(i)", &rc);
        g_assert_cmpint(rc, ==, -SIGPIPE);
        assert_answers(f);
}

static void test_fd_bad_index(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusMessage) m =
                g_dbus_message_new_method_call(BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call");
        g_autoptr(GDBusMessage) reply = NULL;
        g_autoptr(GError) error = NULL;

        /* A handle that names an fd the message does not carry. */
        g_dbus_message_set_body(m, g_variant_new("(^as@a{sv})", argv_true,
                                                 fixture_options("stdout", g_variant_new_handle(7), NULL)));
        reply = g_dbus_connection_send_message_with_reply_sync(f->conn, m, G_DBUS_SEND_MESSAGE_FLAGS_NONE,
                                                               G_MAXINT, NULL, NULL, &error);
        if (reply) {
                g_assert_cmpint(g_dbus_message_get_message_type(reply), ==, G_DBUS_MESSAGE_TYPE_ERROR);
                g_test_message("a handle without an fd: %s", g_dbus_message_get_error_name(reply));
        } else
                g_test_message("a handle without an fd: %s", error->message);
        g_assert_cmpuint(manager_u(f, "Queued") + manager_u(f, "Running"), ==, 0);
        assert_answers(f);
}

static void test_duplicate_env(Fixture *f, gconstpointer unused) {
        const char *const twice[] = {"A=1", "B=2", "A=3", NULL};
        const char *const twice_empty[] = {"Z=", "Z=", NULL};
        const char *const prefix[] = {"A=1", "AB=2", "A_=3", NULL};
        const char *const check[] = {"sh", "-c", "test \"$A$AB$A_\" = 123", NULL};
        g_autoptr(GError) error = NULL;

        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("environment", g_variant_new_strv(twice, -1), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "'A' is set twice");
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("environment", g_variant_new_strv(twice_empty, -1), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "'Z' is set twice");
        /* Names that share a prefix are different names. */
        g_assert_cmpint(fixture_call_argv(
                                f, check,
                                fixture_options("environment", g_variant_new_strv(prefix, -1), NULL), &error),
                        ==, 0);
        g_assert_no_error(error);
        assert_answers(f);
}

static void test_relative_paths(Fixture *f, gconstpointer unused) {
        const char *const rel[] = {"./procpool-no-such-program", NULL};
        const char *const dot_true[] = {"./true", NULL};
        g_autoptr(GError) error = NULL;

        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("cwd", g_variant_new_string("tmp"), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "'tmp' is not an absolute path");
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("cwd", g_variant_new_string("../"), NULL),
                          "org.freedesktop.DBus.Error.InvalidArgs", "not an absolute path");
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("cwd", g_variant_new_string("/nonexistent/procpool"), NULL),
                          "org.procpool.Error.SpawnFailed",
                          "Failed to change directory to '/nonexistent/procpool': No such file or directory");
        expect_call_error(f, (const char *const *) argv_true,
                          fixture_options("cwd", g_variant_new_string("/etc/passwd"), NULL),
                          "org.procpool.Error.SpawnFailed", "Not a directory");
        /* argv[0] with a slash is taken relative to the job's cwd. */
        expect_call_error(f, rel, NULL, "org.procpool.Error.SpawnFailed",
                          "Failed to execute './procpool-no-such-program': No such file or directory");
        g_assert_cmpint(fixture_call_argv(f, dot_true,
                                          fixture_options("cwd", g_variant_new_string("/bin"), NULL), &error),
                        ==, 0);
        g_assert_no_error(error);
        assert_answers(f);
}

static void test_kill_bad_signals(Fixture *f, gconstpointer unused) {
        g_autofree char *path = submit_running(f, NULL), *state = NULL;
        const gint32 bad[] = {0, -1, 65, 1000, G_MININT32, G_MAXINT32};
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;

        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autofree char *text = g_strdup_printf("%d is not a valid signal", bad[i]);
                expect_error(f, path, JOB_IFACE, "Kill", g_variant_new("(i)", bad[i]),
                             "org.freedesktop.DBus.Error.InvalidArgs", text);
        }
        state = job_state(f, path);
        g_assert_cmpstr(state, ==, "running");
        /* A good one still works afterwards. */
        r = fixture_job_call(f, path, "Kill", g_variant_new("(i)", SIGKILL), &error);
        g_assert_no_error(error);
        g_assert_true(fixture_wait_state(f, path, "killed"));
        assert_answers(f);
}

static void test_get_job_ids(Fixture *f, gconstpointer unused) {
        const guint64 ids[] = {0, 2, G_MAXUINT64, G_MAXUINT64 / 2 + 1, (guint64) G_MAXUINT32 + 1};

        assert_answers(f); /* job 1 exists now */
        for (size_t i = 0; i < G_N_ELEMENTS(ids); i++)
                expect_error(f, MANAGER_PATH, MANAGER_IFACE, "GetJob", g_variant_new("(t)", ids[i]),
                             "org.freedesktop.DBus.Error.UnknownObject", "No job");
        assert_answers(f);
}

static void expect_no_job_object(Fixture *f, const char *path) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                f->conn, BUS_NAME, path, "org.freedesktop.DBus.Properties", "Get",
                g_variant_new("(ss)", JOB_IFACE, "State"), NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_autofree char *name = NULL;

        if (r)
                g_error("%s answered as a job: %s", path, g_variant_print(r, TRUE));
        name = g_dbus_error_get_remote_error(error);
        if (!g_str_equal(name, "org.freedesktop.DBus.Error.UnknownObject") &&
            !g_str_equal(name, "org.freedesktop.DBus.Error.UnknownMethod") &&
            !g_str_equal(name, "org.freedesktop.DBus.Error.UnknownInterface") &&
            !g_str_equal(name, "org.freedesktop.DBus.Error.UnknownProperty"))
                g_error("%s: unexpected %s: %s", path, name, error->message);
        g_clear_error(&error);
        g_clear_pointer(&r, g_variant_unref);
        r = g_dbus_connection_call_sync(f->conn, BUS_NAME, path, JOB_IFACE, "Cancel", NULL, NULL,
                                        G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_null(r);
        g_clear_pointer(&name, g_free);
        name = g_dbus_error_get_remote_error(error);
        g_assert_true(g_str_equal(name, "org.freedesktop.DBus.Error.UnknownObject") ||
                      g_str_equal(name, "org.freedesktop.DBus.Error.UnknownMethod"));
}

static void test_odd_job_paths(Fixture *f, gconstpointer unused) {
        const char *const paths[] = {
                MANAGER_PATH "/job/01", MANAGER_PATH "/job/abc", MANAGER_PATH "/job/0",
                MANAGER_PATH "/job/1_", MANAGER_PATH "/job/1/x", MANAGER_PATH "/job/18446744073709551617",
                MANAGER_PATH "/job/2",  MANAGER_PATH "/job",
        };

        assert_answers(f); /* job 1 exists */
        for (size_t i = 0; i < G_N_ELEMENTS(paths); i++)
                expect_no_job_object(f, paths[i]);
        assert_answers(f);
}

static void test_release_running(Fixture *f, gconstpointer unused) {
        g_autofree char *path = submit_running(f, NULL), *queued = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, r2 = NULL;

        expect_error(f, path, JOB_IFACE, "Release", NULL, "org.procpool.Error.NotFinished", "running");
        /* Still there and running; once ended it can go, and then it is gone. */
        g_assert_true(fixture_wait_state(f, path, "running"));
        r = fixture_job_call(f, path, "Cancel", NULL, &error);
        g_assert_no_error(error);
        g_assert_true(fixture_wait_state(f, path, "cancelled"));
        r2 = fixture_job_call(f, path, "Release", NULL, &error);
        g_assert_no_error(error);
        expect_error(f, MANAGER_PATH, MANAGER_IFACE, "GetJob", g_variant_new("(t)", (guint64) 1),
                     "org.freedesktop.DBus.Error.UnknownObject", NULL);
        expect_no_job_object(f, path);
        assert_answers(f);
}

static void test_cancel_finished(Fixture *f, gconstpointer unused) {
        const char *const exit7[] = {"sh", "-c", "exit 7", NULL};
        g_autofree char *path = fixture_submit(f, exit7, NULL), *state = NULL;
        int rc;

        g_assert_true(fixture_wait_state(f, path, "exited"));
        expect_error(f, path, JOB_IFACE, "Cancel", NULL, "org.procpool.Error.NotRunning",
                     "already ended (exited)");
        expect_error(f, path, JOB_IFACE, "Kill", g_variant_new("(i)", SIGTERM),
                     "org.procpool.Error.NotRunning", NULL);
        /* The outcome is unchanged. */
        fixture_job_outcome(f, path, &state, &rc, NULL);
        g_assert_cmpstr(state, ==, "exited");
        g_assert_cmpint(rc, ==, 7);
        assert_answers(f);
}

static void test_properties_hostile(Fixture *f, gconstpointer unused) {
        const char *props = "org.freedesktop.DBus.Properties";
        g_autoptr(GError) error = NULL;

        expect_error(f, MANAGER_PATH, props, "Set",
                     g_variant_new("(ssv)", MANAGER_IFACE, "PoolSize", g_variant_new_string("4")),
                     "org.freedesktop.DBus.Error.InvalidArgs", NULL);
        expect_error(f, MANAGER_PATH, props, "Set",
                     g_variant_new("(ssv)", MANAGER_IFACE, "PoolSize", g_variant_new_uint32(0)),
                     "org.freedesktop.DBus.Error.InvalidArgs", "at least 1");
        expect_error(f, MANAGER_PATH, props, "Set",
                     g_variant_new("(ssv)", MANAGER_IFACE, "Running", g_variant_new_uint32(3)),
                     "org.freedesktop.DBus.Error.PropertyReadOnly", NULL);
        expect_error(f, MANAGER_PATH, props, "Get", g_variant_new("(ss)", MANAGER_IFACE, "NoSuchProperty"),
                     "org.freedesktop.DBus.Error.UnknownProperty", NULL);
        expect_error(f, MANAGER_PATH, props, "Get", g_variant_new("(ss)", "org.procpool.NoSuch", "PoolSize"),
                     "org.freedesktop.DBus.Error.UnknownProperty", "org.procpool.NoSuch");
        expect_error(f, MANAGER_PATH, MANAGER_IFACE, "NoSuchMethod", NULL,
                     "org.freedesktop.DBus.Error.UnknownMethod", NULL);
        assert_answers(f);
}

static void test_input_huge(Fixture *f, gconstpointer unused) {
        const char *const wc[] = {"wc", "-c", NULL};
        gsize size = 20 * MiB;
        g_autofree char *input = g_malloc(size);
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        int rc;

        memset(input, 'i', size);
        g_assert_true(fixture_communicate(f, wc, input, size, NULL, &rc, &out, &err, &error));
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 0);
        g_assert_cmpint(g_ascii_strtoll(g_bytes_get_data(out, NULL), NULL, 10), ==, (gint64) size);
        assert_answers(f);
}

/* ---- soak ---------------------------------------------------------------------------------------------- */

static const char *const args_soak[] = {"--pool-size=2", "--retain=16", NULL};

static void on_job_finished(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                            const char *signal, GVariant *params, gpointer userdata) {
        (*(guint *) userdata)++;
}

/* n Submits, at most 100 of them unfinished at a time: the daemon's queue stays short, so its memory
 * has a working size to return to. */
static void run_batch(Fixture *f, guint n) {
        const char *const argv[] = {"/bin/true", NULL};
        guint finished = 0, id;
        Flood fl = {};

        id = g_dbus_connection_signal_subscribe(f->conn, NULL, MANAGER_IFACE, "JobFinished", MANAGER_PATH,
                                                NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_job_finished, &finished,
                                                NULL);
        flood(f->conn, argv, n, 100, &fl, &finished, NULL, NULL);
        g_dbus_connection_signal_unsubscribe(f->conn, id);
        if (fl.ok != n)
                g_error("%u of %u Submits failed, first: %s", n - fl.ok, n, fl.first_other);
        wait_idle(f);
}

static void test_soak(Fixture *f, gconstpointer unused) {
        guint fds0, fds1, children, zombies;
        guint64 rss0, rss1;

        /* Warm up first: the allocator and the bus connection reach their working size. */
        run_batch(f, 500);
        fds0 = proc_fd_count(f->daemon_pid);
        rss0 = proc_status_kib(f->daemon_pid, "VmRSS:");

        run_batch(f, 10000);
        fds1 = proc_fd_count(f->daemon_pid);
        rss1 = proc_status_kib(f->daemon_pid, "VmRSS:");
        proc_children(f->daemon_pid, &children, &zombies);
        g_test_message("10000 jobs: fds %u -> %u, VmRSS %" G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT
                       " KiB, %u children left",
                       fds0, fds1, rss0, rss1, children);

        g_assert_cmpuint(fds1, ==, fds0);
        g_assert_cmpuint(zombies, ==, 0);
        g_assert_cmpuint(children, ==, 0);
        if (daemon_has_asan(f->daemon_pid))
                g_test_message("AddressSanitizer's quarantine holds freed memory: VmRSS not compared");
        else
                g_assert_cmpuint(rss1, <=, rss0 + MAX(rss0 / 4, 2048));
        assert_answers(f);
}

/* ---- what GetManagedObjects lists ------------------------------------------------------------------------ */

static const char *const args_held[] = {"--pool-size=1", NULL};

/* The jobs the daemon holds are bounded so that GetManagedObjects, which lists them all with their
 * argv, fits in one message of the bus (32 MiB on a bus given by --address): past the bound a Submit
 * is refused, GetManagedObjects still answers, and finished jobs make room for new ones. */
static void test_managed_objects_fit(Fixture *f, gconstpointer unused) {
        /* 900 KiB of argv, in strings the kernel takes (at most 128 KiB each). */
        g_autofree char *big = g_strnfill(100 * 1024, 'm');
        const char *const big_argv[] = {"true", big, big, big, big, big, big, big, big, big, NULL};
        g_autofree char *blocker = fixture_submit(f, argv_sleep, NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) objects = NULL;
        unsigned accepted = 0;

        for (;;) {
                g_autoptr(GError) e = NULL;
                g_autoptr(GVariant) r = call_raw(f->conn, MANAGER_PATH, MANAGER_IFACE, "Submit",
                                                 g_variant_new("(^as@a{sv})", big_argv, FIXTURE_NO_OPTIONS), &e);
                if (!r) {
                        fixture_assert_error(e, "org.freedesktop.DBus.Error.LimitsExceeded", "GetManagedObjects");
                        break;
                }
                accepted++;
                g_assert_cmpuint(accepted, <, 64); /* 64 of these are 57 MiB: the bound must come first */
        }
        g_assert_cmpuint(accepted, >=, 16);

        objects = call_raw(f->conn, MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", NULL,
                           &error);
        g_assert_no_error(error);
        g_autoptr(GVariant) dict = g_variant_get_child_value(objects, 0);
        g_assert_cmpuint(g_variant_n_children(dict), ==, accepted + 1);

        /* Once they have run, finished jobs give their room to new ones, oldest first. */
        g_autoptr(GVariant) c = fixture_job_call(f, blocker, "Cancel", NULL, &error);
        g_assert_no_error(error);
        g_autofree char *last = job_path_of(accepted + 1);
        g_assert_true(fixture_wait_state(f, last, "exited"));
        g_autofree char *again = fixture_submit(f, big_argv, NULL);
        g_assert_true(fixture_wait_state(f, again, "exited"));
        expect_error(f, blocker, JOB_IFACE, "Wait", NULL, "org.freedesktop.DBus.Error.UnknownObject", NULL);
        assert_answers(f);
}

/* ---- main ---------------------------------------------------------------------------------------------- */

#define ADD(name, setup, args, fn)                                                                           \
        g_test_add("/procpool/fault/" name, Fixture, args, setup, fn, fixture_teardown)

int main(int argc, char *argv[]) {
        if (argc >= 5 && g_str_equal(argv[1], "--client"))
                return run_client(argc, argv);

        g_test_init(&argc, &argv, NULL);

        /* limits */
        ADD("user-queue-limit", fixture_setup_open_bus, args_user_queue, test_user_queue_limit);
        ADD("queue-limit", fixture_setup, args_queue, test_queue_limit);
        ADD("user-running-limit", fixture_setup_open_bus, args_user_running, test_user_running_limit);
        ADD("user-output-limit", fixture_setup_open_bus, args_user_output, test_user_output_limit);
        ADD("submit-flood", fixture_setup_open_bus, args_flood, test_submit_flood);
        ADD("argv-too-big", fixture_setup, NULL, test_argv_too_big);
        ADD("environment-too-big", fixture_setup, NULL, test_environment_too_big);
        ADD("environment-many-entries", fixture_setup, NULL, test_environment_many_entries);
        ADD("label-too-long", fixture_setup, NULL, test_label_too_long);
        ADD("output-limit-cap", fixture_setup, NULL, test_output_limit_cap);
        ADD("reply-fits-bus", fixture_setup, NULL, test_reply_fits_bus);
        ADD("managed-objects-fit", fixture_setup, args_held, test_managed_objects_fit);

        /* faults */
        ADD("stdin-unread", fixture_setup, NULL, test_stdin_unread);
        ADD("call-disconnect", fixture_setup, NULL, test_call_disconnect);
        ADD("wait-disconnect", fixture_setup, NULL, test_wait_disconnect);
        ADD("submit-disconnect", fixture_setup, NULL, test_submit_disconnect);
        ADD("stuck-client", fixture_setup, NULL, test_stuck_client);
        ADD("sigkill-daemon", fixture_setup, NULL, test_sigkill_daemon);
        ADD("emfile", fixture_setup, args_emfile, test_emfile);
        ADD("eagain", fixture_setup_open_bus, NULL, test_eagain);

        /* hostile input */
        ADD("wrong-signatures", fixture_setup, NULL, test_wrong_signatures);
        ADD("option-wrong-types", fixture_setup, NULL, test_option_wrong_types);
        ADD("unknown-options", fixture_setup, NULL, test_unknown_options);
        ADD("duplicate-options", fixture_setup, NULL, test_duplicate_options);
        ADD("many-options", fixture_setup, NULL, test_many_options);
        ADD("empty-values", fixture_setup, NULL, test_empty_values);
        ADD("huge-values", fixture_setup, NULL, test_huge_values);
        ADD("odd-bytes", fixture_setup, NULL, test_odd_bytes);
        ADD("fd-directory", fixture_setup, NULL, test_fd_directory);
        ADD("fd-closed-ends", fixture_setup, NULL, test_fd_closed_ends);
        ADD("fd-bad-index", fixture_setup, NULL, test_fd_bad_index);
        ADD("duplicate-env", fixture_setup, NULL, test_duplicate_env);
        ADD("relative-paths", fixture_setup, NULL, test_relative_paths);
        ADD("kill-bad-signals", fixture_setup, NULL, test_kill_bad_signals);
        ADD("get-job-ids", fixture_setup, NULL, test_get_job_ids);
        ADD("odd-job-paths", fixture_setup, NULL, test_odd_job_paths);
        ADD("release-running", fixture_setup, NULL, test_release_running);
        ADD("cancel-finished", fixture_setup, NULL, test_cancel_finished);
        ADD("properties-hostile", fixture_setup, NULL, test_properties_hostile);
        ADD("input-huge", fixture_setup, NULL, test_input_huge);

        /* soak */
        ADD("soak", fixture_setup, args_soak, test_soak);
        return g_test_run();
}
