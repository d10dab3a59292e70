/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The private socket: direct peer-to-peer connections serve what the bus serves (calls, fds, errors),
 * signals only after Subscribe(), busctl and GDBus by address, procpoolctl's choice of the socket and its
 * fall back to the bus, the socket file's life across restarts and re-execs. The bounds of hostile peers
 * are test-fault-direct.c's; polkit's subject is test-polkit.c's. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>

#include "fixture.h"

#define ERROR_SPAWN_FAILED "org.procpool.Error.SpawnFailed"

/* The runtime dir of the test's daemon: its socket is <dir>/procpool/private, where procpoolctl looks with
 * XDG_RUNTIME_DIR=<dir>. */
static char *runtime_dir;
static char *socket_path;
static char *socket_address;

static void setup_paths(void) {
        g_autoptr(GError) error = NULL;

        runtime_dir = g_dir_make_tmp("procpool-private-XXXXXX", &error);
        g_assert_no_error(error);
        socket_path = g_build_filename(runtime_dir, "procpool", "private", NULL);
        socket_address = g_strdup_printf("unix:path=%s", socket_path);
}

static GPid start_with_socket(Fixture *f) {
        g_autofree char *arg = g_strdup_printf("--private-socket=%s", socket_path);
        const char *const args[] = { arg, NULL };

        return fixture_start_daemon(f, args);
}

static void setup(Fixture *f, gconstpointer unused) {
        setup_paths();
        fixture_setup_no_daemon(f, NULL);
        f->daemon_pid = start_with_socket(f);
}

static void teardown(Fixture *f, gconstpointer unused) {
        fixture_teardown(f, NULL);
        fixture_remove_tree(runtime_dir);
        g_clear_pointer(&runtime_dir, g_free);
        g_clear_pointer(&socket_path, g_free);
        g_clear_pointer(&socket_address, g_free);
}

/* A direct connection, as GDBus makes one to a peer: authenticated, no Hello. A Ping goes first: sd-bus
 * drops a connection whose first message with fds it reads together with the end of the authentication
 * (docs/dbus-api.md). */
static GDBusConnection *direct(void) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        GDBusConnection *c = g_dbus_connection_new_for_address_sync(
                socket_address, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT, NULL, NULL, &error);

        g_assert_no_error(error);
        r = g_dbus_connection_call_sync(c, NULL, MANAGER_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL,
                                        NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_no_error(error);
        return c;
}

/* A call on a direct connection: no destination, as there is no bus. */
static GVariant *dcall(GDBusConnection *c, const char *path, const char *iface, const char *method,
                       GVariant *params, GUnixFDList *fds, GError **error) {
        return g_dbus_connection_call_with_unix_fd_list_sync(c, NULL, path, iface, method, params, NULL,
                                                             G_DBUS_CALL_FLAGS_NONE, G_MAXINT, fds, NULL,
                                                             NULL, error);
}

static GVariant *dmanager(GDBusConnection *c, const char *method, GVariant *params, GError **error) {
        return dcall(c, MANAGER_PATH, MANAGER_IFACE, method, params, NULL, error);
}

/* ---- calls ---------------------------------------------------------------------------------------- */

/* Call over a direct connection, with the job's stdout a pipe passed as an fd. */
static void test_call_fd(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusConnection) c = direct();
        g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        const char *const argv[] = { "sh", "-c", "echo through-the-socket; exit 7", NULL };
        char buf[64] = "";
        int p[2];
        gint index;
        gint32 rc;

        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        index = g_unix_fd_list_append(fds, p[1], &error);
        g_assert_no_error(error);
        close(p[1]);
        r = dcall(c, MANAGER_PATH, MANAGER_IFACE, "Call",
                  g_variant_new("(^as@a{sv})", argv,
                                fixture_options("stdout", g_variant_new_handle(index), NULL)),
                  fds, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(i)", &rc);
        g_assert_cmpint(rc, ==, 7);
        g_assert_cmpint(read(p[0], buf, sizeof(buf) - 1), ==, strlen("through-the-socket\n"));
        g_assert_cmpstr(buf, ==, "through-the-socket\n");
        close(p[0]);
}

/* Communicate over a direct connection: input in, both streams out. */
static void test_communicate(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusConnection) c = direct();
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, out = NULL, err = NULL;
        const char *const argv[] = { "sh", "-c", "cat; echo oops >&2; exit 2", NULL };
        g_autofree char *out_text = NULL, *err_text = NULL;
        gint32 rc;

        r = dmanager(c, "Communicate",
                     g_variant_new("(^as@ay@a{sv})", argv, fixture_bytes("abc\n", 4), FIXTURE_NO_OPTIONS),
                     &error);
        g_assert_no_error(error);
        g_variant_get(r, "(i@ay@ay)", &rc, &out, &err);
        g_assert_cmpint(rc, ==, 2);
        out_text = fixture_bytes_text(out);
        err_text = fixture_bytes_text(err);
        g_assert_cmpstr(out_text, ==, "abc\n");
        g_assert_cmpstr(err_text, ==, "oops\n");
}

/* The same errors by the same names as on the bus. */
static void test_errors(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusConnection) c = direct();
        const char *const missing[] = { "/nonexistent/program", NULL };
        const char *const empty[] = { NULL };
        struct {
                const char *method;
                GVariant *params;
        } cases[] = {
                { "Call", g_variant_new("(^as@a{sv})", missing, FIXTURE_NO_OPTIONS) },
                { "Call", g_variant_new("(^as@a{sv})", empty, FIXTURE_NO_OPTIONS) },
                { "GetJob", g_variant_new("(t)", (guint64) 4242) },
                { "Call", g_variant_new("(^as@a{sv})", missing,
                                        fixture_options("no-such-option", g_variant_new_string("x"), NULL)) },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GError) on_bus = NULL, on_socket = NULL;
                g_autoptr(GVariant) a = NULL, b = NULL;
                g_autofree char *bus_name = NULL, *socket_name = NULL;

                g_variant_ref_sink(cases[i].params);
                a = fixture_call(f, cases[i].method, cases[i].params, &on_bus);
                b = dmanager(c, cases[i].method, cases[i].params, &on_socket);
                g_variant_unref(cases[i].params);
                g_assert_null(a);
                g_assert_null(b);
                bus_name = g_dbus_error_get_remote_error(on_bus);
                socket_name = g_dbus_error_get_remote_error(on_socket);
                g_test_message("%s: %s | %s", cases[i].method, bus_name, socket_name);
                g_assert_nonnull(bus_name);
                g_assert_cmpstr(socket_name, ==, bus_name);
        }
        {
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) r = dmanager(
                        c, "Call", g_variant_new("(^as@a{sv})", missing, FIXTURE_NO_OPTIONS), &error);
                fixture_assert_error(error, ERROR_SPAWN_FAILED, "/nonexistent/program");
        }
}

/* ---- signals ------------------------------------------------------------------------------------ */

typedef struct Heard {
        guint finished, added, changed, other;
} Heard;

static void on_signal(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                      const char *member, GVariant *params, gpointer userdata) {
        Heard *h = userdata;

        if (g_str_equal(member, "JobFinished"))
                h->finished++;
        else if (g_str_equal(member, "InterfacesAdded"))
                h->added++;
        else if (g_str_equal(member, "PropertiesChanged"))
                h->changed++;
        else
                h->other++;
}

static gboolean heard_finished(gpointer data) {
        return ((Heard *) data)->finished > 0;
}

/* Lets whatever c was sent before now arrive: the daemon answers a connection in order, so a signal it
 * sent before this Ping's reply has been dispatched once the reply is in. */
static void drain(GDBusConnection *c) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r =
                dcall(c, MANAGER_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL, NULL, &error);

        g_assert_no_error(error);
        while (g_main_context_iteration(NULL, FALSE))
                ;
}

/* Signals reach a direct connection only after Subscribe(), and no more after Unsubscribe(). */
static void test_subscribe(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusConnection) a = direct(), b = direct();
        const char *const argv[] = { "true", NULL };
        Heard ha = {}, hb = {};
        guint sa, sb;
        int rc;

        sa = g_dbus_connection_signal_subscribe(a, NULL, NULL, NULL, NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                on_signal, &ha, NULL);
        sb = g_dbus_connection_signal_subscribe(b, NULL, NULL, NULL, NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                on_signal, &hb, NULL);
        g_autoptr(GVariant) r = dmanager(a, "Subscribe", NULL, NULL);
        g_assert_nonnull(r);

        rc = fixture_call_argv(f, argv, NULL, NULL);
        g_assert_cmpint(rc, ==, 0);
        g_assert_true(fixture_iterate_until(heard_finished, &ha));
        drain(a);
        g_assert_cmpuint(ha.finished, ==, 1);
        g_assert_cmpuint(ha.added, >=, 1);
        g_assert_cmpuint(ha.changed, >=, 1);
        /* b never asked: nothing came, though the daemon sent a after it. */
        drain(b);
        g_assert_cmpuint(hb.finished + hb.added + hb.changed + hb.other, ==, 0);

        /* Unsubscribed, a hears nothing of the next job; b, subscribed now, hears it. */
        g_autoptr(GVariant) u = dmanager(a, "Unsubscribe", NULL, NULL);
        g_assert_nonnull(u);
        g_autoptr(GVariant) s = dmanager(b, "Subscribe", NULL, NULL);
        g_assert_nonnull(s);
        ha = (Heard) {};
        rc = fixture_call_argv(f, argv, NULL, NULL);
        g_assert_cmpint(rc, ==, 0);
        g_assert_true(fixture_iterate_until(heard_finished, &hb));
        drain(a);
        g_assert_cmpuint(ha.finished + ha.added + ha.changed + ha.other, ==, 0);

        /* On the bus both are accepted and change nothing. */
        g_autoptr(GVariant) x = fixture_call(f, "Subscribe", NULL, NULL);
        g_assert_nonnull(x);
        g_autoptr(GVariant) y = fixture_call(f, "Unsubscribe", NULL, NULL);
        g_assert_nonnull(y);
        g_dbus_connection_signal_unsubscribe(a, sa);
        g_dbus_connection_signal_unsubscribe(b, sb);
}

/* A direct connection that closes is a caller that left: its Call's job (cancel-on-disconnect) is
 * cancelled, a Submit's job runs on. */
static void test_caller_left(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusConnection) c = direct();
        g_autofree char *gate = fixture_gate_path(f, "never");
        g_autofree char *script = fixture_gate_wait_sh(gate);
        const char *const argv[] = { "sh", "-c", script, NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) submitted = NULL;
        g_autofree char *kept = NULL;
        const char *call_path = MANAGER_PATH "/job/1";
        FixtureReply reply = {};

        g_dbus_connection_call(c, NULL, MANAGER_PATH, MANAGER_IFACE, "Call",
                               g_variant_new("(^as@a{sv})", argv, FIXTURE_NO_OPTIONS), NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, fixture_on_reply, &reply);
        submitted = dmanager(c, "Submit", g_variant_new("(^as@a{sv})", argv, FIXTURE_NO_OPTIONS), &error);
        g_assert_no_error(error);
        g_variant_get(submitted, "(o)", &kept);
        g_assert_true(fixture_wait_started(f, call_path));
        g_assert_true(fixture_wait_started(f, kept));
        g_assert_true(g_dbus_connection_close_sync(c, NULL, &error));
        g_assert_no_error(error);
        g_assert_true(fixture_wait_finished(f, call_path));
        fixture_assert_state(f, call_path, "cancelled");
        fixture_assert_state(f, kept, "running");
        g_assert_true(fixture_reply_wait(&reply));
        fixture_reply_clear(&reply);
        fixture_job_call_ok(f, kept, "Cancel", NULL);
}

/* ---- other clients ---------------------------------------------------------------------------------- */

static char *run(const char *const *argv, const char *const *envp, int *ret_status) {
        g_autoptr(GError) error = NULL;
        g_autofree char *err = NULL;
        char *out = NULL;

        g_assert_true(g_spawn_sync(NULL, (char **) argv, (char **) envp, G_SPAWN_SEARCH_PATH, NULL, NULL,
                                   &out, &err, ret_status, &error));
        g_assert_no_error(error);
        g_test_message("%s -> %d\nstdout: %s\nstderr: %s", argv[0], *ret_status, out, err);
        return out;
}

/* busctl reaches the daemon by the socket's address (it says Hello, which a direct connection answers). */
static void test_busctl(Fixture *f, gconstpointer unused) {
        g_autofree char *address = g_strdup_printf("--address=%s", socket_address);
        const char *const argv[] = { "busctl",      address, "call",    BUS_NAME, MANAGER_PATH,
                                     MANAGER_IFACE, "Call",  "asa{sv}", "--",     "3",
                                     "sh",          "-c",    "exit 3",  "0",      NULL };
        const char *const get[] = { "busctl",     address,       "get-property", BUS_NAME,
                                    MANAGER_PATH, MANAGER_IFACE, "MaxQueued",    NULL };
        g_autofree char *out = NULL, *prop = NULL;
        int status;

        out = run(argv, NULL, &status);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        g_assert_cmpstr(out, ==, "i 3\n");
        prop = run(get, NULL, &status);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        g_assert_true(g_str_has_prefix(prop, "u "));
}

/* procpoolctl takes the socket of $XDG_RUNTIME_DIR when it is there, whatever the bus; the bus when it is
 * not; --bus the bus always. A session bus address that leads nowhere tells which one it used. */
static void test_procpoolctl(Fixture *f, gconstpointer unused) {
        g_autofree char *xdg = g_strdup_printf("XDG_RUNTIME_DIR=%s", runtime_dir);
        g_autofree char *good_bus = g_strdup_printf("DBUS_SESSION_BUS_ADDRESS=%s", f->address);
        const char *no_bus = "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/bus";
        const char *ctl = g_getenv("PROCPOOLCTL");
        const char *const call[] = { ctl, "call", "--", "sh", "-c", "echo direct; exit 5", NULL };
        const char *const call_bus[] = { ctl, "--bus", "call", "--", "sh", "-c", "echo bus; exit 6", NULL };
        const char *const env_socket_no_bus[] = { xdg, no_bus, "PATH=/usr/bin:/bin", NULL };
        g_autofree char *xdg_none = g_strdup_printf("XDG_RUNTIME_DIR=%s/none", runtime_dir);
        const char *const env_no_socket[] = { xdg_none, good_bus, "PATH=/usr/bin:/bin", NULL };
        const char *const env_both[] = { xdg, good_bus, "PATH=/usr/bin:/bin", NULL };
        int status;

        g_assert_nonnull(ctl);
        {
                /* The socket and no bus: it works, so the socket was used. */
                g_autofree char *out = run(call, env_socket_no_bus, &status);
                g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 5);
                g_assert_cmpstr(out, ==, "direct\n");
        }
        {
                /* --bus with no bus fails although the socket is there. */
                g_autofree char *out = run(call_bus, env_socket_no_bus, &status);
                g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 6);
                g_assert_cmpstr(out, ==, "");
        }
        {
                /* No socket: the bus, silently. */
                g_autofree char *out = run(call, env_no_socket, &status);
                g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 5);
                g_assert_cmpstr(out, ==, "direct\n");
        }
        {
                /* Both: --bus takes the bus. */
                g_autofree char *out = run(call_bus, env_both, &status);
                g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 6);
                g_assert_cmpstr(out, ==, "bus\n");
        }
        {
                /* Commands that need signals subscribe: a wait for a job that runs until a gate opens, over
                 * the socket alone. */
                g_autofree char *gate = fixture_gate_path(f, "go");
                g_autofree char *script = fixture_gate_wait_sh(gate);
                const char *const argv[] = { "sh", "-c", script, NULL };
                g_autofree char *path = fixture_submit(f, argv, NULL);
                g_autofree char *id = g_path_get_basename(path);
                const char *const wait_argv[] = { ctl, "wait", id, NULL };
                const char *const list_argv[] = { ctl, "list", "--all", NULL };
                g_autoptr(GError) error = NULL;
                GPid pid;
                int out_fd;

                g_assert_true(g_spawn_async_with_pipes(NULL, (char **) wait_argv, (char **) env_socket_no_bus,
                                                       G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid, NULL,
                                                       &out_fd, NULL, &error));
                g_assert_no_error(error);
                g_assert_true(fixture_wait_started(f, path));
                fixture_gate_open(gate);
                g_assert_true(fixture_wait_pid_exit(pid));
                g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
                g_spawn_close_pid(pid);
                close(out_fd);
                g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                g_autofree char *list = run(list_argv, env_socket_no_bus, &status);
                g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                g_assert_nonnull(strstr(list, "exited"));
        }
}

/* ---- the socket file ------------------------------------------------------------------------------ */

/* Made 0600 on a user's instance, over a stale file; removed when the daemon exits. */
static void test_socket_file(Fixture *f, gconstpointer unused) {
        struct stat st;

        g_assert_cmpint(stat(socket_path, &st), ==, 0);
        g_assert_true(S_ISSOCK(st.st_mode));
        g_assert_cmpint(st.st_mode & 07777, ==, 0600);

        g_assert_cmpint(fixture_stop_daemon(f->daemon_pid), ==, 0);
        f->daemon_pid = 0;
        g_assert_cmpint(stat(socket_path, &st), <, 0);
        g_assert_cmpint(errno, ==, ENOENT);

        /* A file left where the socket goes (a daemon that was killed) is replaced. */
        g_assert_true(g_file_set_contents(socket_path, "stale", -1, NULL));
        f->daemon_pid = start_with_socket(f);
        g_autoptr(GDBusConnection) c = direct();
        g_autoptr(GVariant) v = dmanager(c, "ListJobs", NULL, NULL);
        g_assert_nonnull(v);
}

/* A daemon on --address has no socket unless asked; --no-private-socket has none. */
static void test_no_socket(Fixture *f, gconstpointer unused) {
        g_autofree char *arg = g_strdup_printf("--private-socket=%s", socket_path);
        const char *const args[] = { arg, "--no-private-socket", NULL };
        struct stat st;

        g_assert_cmpint(fixture_stop_daemon(f->daemon_pid), ==, 0);
        f->daemon_pid = fixture_start_daemon(f, NULL);
        g_assert_cmpint(stat(socket_path, &st), <, 0);
        g_assert_cmpint(fixture_stop_daemon(f->daemon_pid), ==, 0);
        f->daemon_pid = fixture_start_daemon(f, args);
        g_assert_cmpint(stat(socket_path, &st), <, 0);
}

static gboolean closed(gpointer data) {
        return g_dbus_connection_is_closed(data);
}

/* Across a re-exec the socket keeps listening (the same socket, handed over): a peer that connects
 * meanwhile is served by the next image. Peers connected before are disconnected. */
static void test_reexec(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusConnection) before = direct(), after = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, v = NULL;
        struct stat st1, st2;

        g_assert_cmpint(stat(socket_path, &st1), ==, 0);
        r = dmanager(before, "Reexecute", NULL, &error);
        /* The reply may be lost with the connection: the re-exec closes it. */
        g_clear_error(&error);
        g_clear_pointer(&r, g_variant_unref);
        after = direct();
        v = dcall(after, MANAGER_PATH, "org.freedesktop.DBus.Properties", "Get",
                  g_variant_new("(ss)", MANAGER_IFACE, "Version"), NULL, &error);
        g_assert_no_error(error);
        g_assert_true(fixture_iterate_until(closed, before));
        g_assert_cmpint(stat(socket_path, &st2), ==, 0);
        g_assert_cmpuint(st1.st_ino, ==, st2.st_ino);
        /* The daemon is the same process, and the next image serves the bus too. */
        fixture_assert_answers(f);
}

/* The connections accepted on the socket: /proc/net/unix lists the listening socket and each accepted one
 * under its path. */
static guint socket_connections(void) {
        g_autofree char *text = NULL;
        g_auto(GStrv) lines = NULL;
        guint n = 0;

        g_assert_true(g_file_get_contents("/proc/net/unix", &text, NULL, NULL));
        lines = g_strsplit(text, "\n", -1);
        for (char **l = lines; *l; l++)
                n += g_str_has_suffix(*l, socket_path);
        return n > 0 ? n - 1 : 0;
}

/* Nothing signals a connection: /proc is looked at again every millisecond, within the fixture's bound. */
static gboolean await_connection(void) {
        for (int i = 0; i < FIXTURE_WAIT_SEC * 1000; i++) {
                if (socket_connections() > 0)
                        return TRUE;
                g_usleep(1000);
        }
        return FALSE;
}

/* The environment procpoolctl runs in here: the daemon's runtime dir, where it finds the socket, and the
 * bus. */
static char **ctl_env(Fixture *f) {
        char **env = g_new0(char *, 4);

        env[0] = g_strdup_printf("XDG_RUNTIME_DIR=%s", runtime_dir);
        env[1] = g_strdup_printf("DBUS_SESSION_BUS_ADDRESS=%s", f->address);
        env[2] = g_strdup("PATH=/usr/bin:/bin");
        return env;
}

/* procpoolctl call over the socket goes on through a re-exec (which closes direct connections, after the
 * Interrupted that names the job) over the bus, and exits with the job's code. */
static void test_wait_through_reexec(Fixture *f, gconstpointer unused) {
        g_auto(GStrv) env = ctl_env(f);
        g_autofree char *gate = fixture_gate_path(f, "go");
        g_autofree char *wait_sh = fixture_gate_wait_sh(gate);
        g_autofree char *script = g_strdup_printf("%s; exit 9", wait_sh);
        const char *const wait_argv[] = { g_getenv("PROCPOOLCTL"), "call", "--", "sh", "-c", script, NULL };
        const char *path = MANAGER_PATH "/job/1";
        g_autoptr(GError) error = NULL;
        int status;
        GPid pid;

        g_assert_cmpuint(socket_connections(), ==, 0);
        g_assert_true(g_spawn_async(NULL, (char **) wait_argv, env, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                    &pid, &error));
        g_assert_no_error(error);
        /* It connected to the socket, not only to the bus, and its Call is in: the job runs. */
        g_assert_true(await_connection());
        g_assert_true(fixture_wait_started(f, path));
        fixture_reexecute(f);
        fixture_gate_open(gate);
        g_assert_true(fixture_wait_pid_exit(pid));
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_spawn_close_pid(pid);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 9);
}

static int compare_strings(gconstpointer a, gconstpointer b) {
        return g_strcmp0(*(char *const *) a, *(char *const *) b);
}

/* procpoolctl map over the socket goes on through a re-exec over the bus: the jobs that ran through it
 * are printed once they end, the lines read after it are run by the next image, none is lost or run
 * twice, and every job is released. */
static void test_map_through_reexec(Fixture *f, gconstpointer unused) {
        g_auto(GStrv) env = ctl_env(f);
        g_autofree char *gate = fixture_gate_path(f, "go");
        g_autofree char *wait_sh = fixture_gate_wait_sh(gate);
        g_autofree char *script = g_strdup_printf("%s; echo out-$1", wait_sh);
        const char *const map_argv[] = {
                g_getenv("PROCPOOLCTL"), "map", "--", "sh", "-c", script, "sh", NULL
        };
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, jobs = NULL;
        const char *const true_argv[] = { "true", NULL };
        g_autofree char *out = NULL, *next = NULL;
        g_auto(GStrv) lines = NULL;
        int in_fd, out_fd, status;
        GPid pid;

        g_assert_cmpuint(socket_connections(), ==, 0);
        g_assert_true(g_spawn_async_with_pipes(NULL, (char **) map_argv, env, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                                               NULL, &pid, &in_fd, &out_fd, NULL, &error));
        g_assert_no_error(error);
        g_assert_cmpint(write(in_fd, "1\n2\n", 4), ==, 4);
        /* It took the socket, and its jobs are in: the first one runs. */
        g_assert_true(await_connection());
        g_assert_true(fixture_wait_started(f, MANAGER_PATH "/job/1"));
        fixture_reexecute(f);
        /* A line read after the re-exec goes to the next image. */
        g_assert_cmpint(write(in_fd, "3\n", 2), ==, 2);
        g_assert_cmpint(close(in_fd), ==, 0);
        fixture_gate_open(gate);
        out = fixture_read_to_end(out_fd);
        g_assert_cmpint(close(out_fd), ==, 0);
        g_assert_true(fixture_wait_pid_exit(pid));
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_spawn_close_pid(pid);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        lines = g_strsplit(out, "\n", -1);
        g_assert_cmpuint(g_strv_length(lines), ==, 4);
        g_assert_cmpstr(lines[3], ==, "");
        qsort(lines, 3, sizeof(char *), compare_strings);
        g_assert_cmpstr(lines[0], ==, "out-1");
        g_assert_cmpstr(lines[1], ==, "out-2");
        g_assert_cmpstr(lines[2], ==, "out-3");
        /* map released each job, and made three, not one more: the next is 4. */
        r = fixture_call(f, "ListJobs", NULL, &error);
        g_assert_no_error(error);
        jobs = g_variant_get_child_value(r, 0);
        g_assert_cmpuint(g_variant_n_children(jobs), ==, 0);
        next = fixture_submit(f, true_argv, NULL);
        g_assert_cmpstr(next, ==, MANAGER_PATH "/job/4");
}

/* procpoolctl monitor over the socket follows procpoold onto the bus when a re-exec closes its connection:
 * it says so, keeps running, and prints the next image's events. */
static void test_monitor_through_reexec(Fixture *f, gconstpointer unused) {
        g_autoptr(GSubprocessLauncher) l =
                g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
        const char *const argv[] = { g_getenv("PROCPOOLCTL"), "monitor", NULL };
        const char *const true_argv[] = { "true", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GSubprocess) p = NULL;
        g_autoptr(GDataInputStream) out = NULL, err = NULL;
        g_autofree char *ready = NULL, *followed = NULL, *submitted = NULL, *path = NULL;

        g_subprocess_launcher_setenv(l, "XDG_RUNTIME_DIR", runtime_dir, TRUE);
        g_subprocess_launcher_setenv(l, "DBUS_SESSION_BUS_ADDRESS", f->address, TRUE);
        g_assert_cmpuint(socket_connections(), ==, 0);
        p = g_subprocess_launcher_spawnv(l, argv, &error);
        g_assert_no_error(error);
        out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(p));
        err = g_data_input_stream_new(g_subprocess_get_stderr_pipe(p));
        /* Subscribed once it says so, over the socket. */
        ready = fixture_read_line(err, "monitor");
        g_assert_true(g_str_has_prefix(ready, "Monitoring"));
        g_assert_cmpuint(socket_connections(), ==, 1);

        fixture_reexecute(f);
        followed = fixture_read_line(err, "monitor");
        g_assert_cmpstr(
                followed, ==,
                "procpoold closed the direct connection (it re-executed or stopped); monitoring over the "
                "bus.");
        path = fixture_submit(f, true_argv, NULL);
        g_assert_cmpstr(path, ==, MANAGER_PATH "/job/1");
        submitted = fixture_read_line(out, "monitor");
        g_assert_cmpstr(submitted, ==, "Job 1 submitted: true");
        g_subprocess_send_signal(p, SIGTERM);
        g_assert_true(g_subprocess_wait(p, NULL, &error));
        g_assert_no_error(error);
        g_assert_true(g_subprocess_get_if_exited(p));
        g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 0);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/procpool/private/" name, Fixture, NULL, setup, fn, teardown)
        ADD("call-fd", test_call_fd);
        ADD("communicate", test_communicate);
        ADD("errors", test_errors);
        ADD("subscribe", test_subscribe);
        ADD("caller-left", test_caller_left);
        ADD("busctl", test_busctl);
        ADD("procpoolctl", test_procpoolctl);
        ADD("socket-file", test_socket_file);
        ADD("no-socket", test_no_socket);
        ADD("reexec", test_reexec);
        ADD("wait-through-reexec", test_wait_through_reexec);
        ADD("map-through-reexec", test_map_through_reexec);
        ADD("monitor-through-reexec", test_monitor_through_reexec);
        return g_test_run();
}
