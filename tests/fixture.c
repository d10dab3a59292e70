/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Test fixture: a private bus with procpoold from the build tree on it, and what the suites share. */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gstdio.h>

#include "fixture.h"

static const char *daemon_path(void) {
        const char *p = g_getenv("PROCPOOLD");
        g_assert_nonnull(p); /* set by meson test */
        return p;
}

/* A test that fails aborts without its teardown: what it started must not outlive it. */
static void die_with_test(gpointer unused) {
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
}

/* As die_with_test, as OTHER_UID: the parent-death signal is set after the uid changes, which clears it. */
static void die_with_test_as_other(gpointer unused) {
        fixture_become_other(NULL);
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
}

static int pidfd_open_(pid_t pid) {
        return (int) syscall(SYS_pidfd_open, pid, 0);
}

static gboolean on_expired(gpointer data) {
        *(gboolean *) data = TRUE;
        return G_SOURCE_REMOVE;
}

/* Iterates ctx until *done or FIXTURE_WAIT_SEC pass; returns *done. */
static gboolean run_until(GMainContext *ctx, const gboolean *done) {
        GSource *timeout = g_timeout_source_new_seconds(FIXTURE_WAIT_SEC);
        gboolean expired = FALSE;

        g_source_set_callback(timeout, on_expired, &expired, NULL);
        g_source_attach(timeout, ctx);
        while (!*done && !expired)
                g_main_context_iteration(ctx, TRUE);
        g_source_destroy(timeout);
        g_source_unref(timeout);
        return *done;
}

/* Unsubscribes and lets what was queued for the subscription go, so that nothing keeps ctx. */
static void unsubscribe_and_free(GDBusConnection *c, guint sub, GMainContext *ctx) {
        g_dbus_connection_signal_unsubscribe(c, sub);
        while (g_main_context_iteration(ctx, FALSE))
                ;
        g_main_context_unref(ctx);
}

/* ---- names on the bus ------------------------------------------------------------------------------ */

static gboolean name_has_owner(GDBusConnection *c, const char *name) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                c, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
                g_variant_new("(s)", name), G_VARIANT_TYPE("(b)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        gboolean has;

        g_assert_no_error(error);
        g_variant_get(r, "(b)", &has);
        return has;
}

/* The pid of the connection that owns name (a well-known or unique name); 0 if none does. */
static GPid owner_pid(GDBusConnection *c, const char *name) {
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                c, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                "GetConnectionUnixProcessID", g_variant_new("(s)", name), G_VARIANT_TYPE("(u)"),
                G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
        guint32 pid = 0;

        if (r)
                g_variant_get(r, "(u)", &pid);
        return (GPid) pid;
}

typedef struct {
        const char *name;
        gboolean owned; /* wanted: the name has an owner, or has none */
        GPid owner;     /* with owned: the owner must be this process (0: any) */
        gboolean done;
        gboolean died; /* the process watched exited first */
} NameWait;

static void on_name_owner_changed(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                                  const char *member, GVariant *params, gpointer data) {
        NameWait *w = data;
        const char *name, *old_owner, *new_owner;

        g_variant_get(params, "(&s&s&s)", &name, &old_owner, &new_owner);
        if (!g_str_equal(name, w->name) || (new_owner[0] != '\0') != w->owned)
                return;
        if (w->owned && w->owner > 0 && owner_pid(c, new_owner) != w->owner)
                return;
        w->done = TRUE;
}

static gboolean on_watched_exit(int fd, GIOCondition condition, gpointer data) {
        NameWait *w = data;

        w->died = w->done = TRUE;
        return G_SOURCE_REMOVE;
}

/* Waits until name has an owner (owned) or none; with watch > 0, stops early if that process exits. With
 * owner > 0, the owner must be that process: a daemon killed a moment ago may still own the name until
 * the bus has seen its connection close. */
static gboolean wait_name_of(Fixture *f, const char *name, gboolean owned, GPid owner, GPid watch,
                             gboolean *ret_died) {
        GMainContext *ctx = g_main_context_new();
        NameWait w = { .name = name, .owned = owned, .owner = owner };
        GSource *exited = NULL;
        int pidfd = -1;
        guint sub;

        g_main_context_push_thread_default(ctx);
        sub = g_dbus_connection_signal_subscribe(f->conn, NULL, "org.freedesktop.DBus", "NameOwnerChanged",
                                                 "/org/freedesktop/DBus", name, G_DBUS_SIGNAL_FLAGS_NONE,
                                                 on_name_owner_changed, &w, NULL);
        g_main_context_pop_thread_default(ctx);
        if (watch > 0) {
                pidfd = pidfd_open_(watch);
                g_assert_cmpint(pidfd, >=, 0);
                exited = g_unix_fd_source_new(pidfd, G_IO_IN);
                g_source_set_callback(exited, G_SOURCE_FUNC(on_watched_exit), &w, NULL);
                g_source_attach(exited, ctx);
        }
        /* Asked after subscribing: a change after the answer is signalled. */
        if (name_has_owner(f->conn, name) == owned &&
            (!owned || owner <= 0 || owner_pid(f->conn, name) == owner))
                w.done = TRUE;
        run_until(ctx, &w.done);
        if (exited) {
                g_source_destroy(exited);
                g_source_unref(exited);
                close(pidfd);
        }
        unsubscribe_and_free(f->conn, sub, ctx);
        if (ret_died)
                *ret_died = w.died;
        return w.done && !w.died;
}

static gboolean wait_name(Fixture *f, const char *name, gboolean owned, GPid watch, gboolean *ret_died) {
        return wait_name_of(f, name, owned, 0, watch, ret_died);
}

void fixture_wait_for_name(Fixture *f, GPid pid) {
        gboolean died = FALSE;

        if (wait_name_of(f, BUS_NAME, TRUE, pid, pid, &died))
                return;
        if (died)
                g_error("procpoold exited before it took its bus name");
        g_error("procpoold did not take its bus name within %d s", FIXTURE_WAIT_SEC);
}

char *fixture_name_owner(Fixture *f) {
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                f->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                "GetNameOwner", g_variant_new("(s)", BUS_NAME), G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE,
                -1, NULL, NULL);
        char *owner;

        if (!r)
                return NULL;
        g_variant_get(r, "(s)", &owner);
        return owner;
}

static void on_owner_watched(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                             const char *signal, GVariant *params, gpointer data) {
        FixtureOwnerWatch *w = data;
        const char *name, *old_owner, *new_owner;

        g_variant_get(params, "(&s&s&s)", &name, &old_owner, &new_owner);
        if (g_str_equal(old_owner, w->old_owner) && !*new_owner)
                w->left = TRUE;
        if (*new_owner && !w->new_owner && (!g_str_equal(new_owner, w->old_owner) || w->left))
                w->new_owner = g_strdup(new_owner);
}

void fixture_watch_owner(Fixture *f, FixtureOwnerWatch *w) {
        *w = (FixtureOwnerWatch) {};
        /* Subscribed first: a change after the owner is read is signalled. */
        w->subscription = g_dbus_connection_signal_subscribe(
                f->conn, "org.freedesktop.DBus", "org.freedesktop.DBus", "NameOwnerChanged",
                "/org/freedesktop/DBus", BUS_NAME, G_DBUS_SIGNAL_FLAGS_NONE, on_owner_watched, w, NULL);
        w->old_owner = fixture_name_owner(f) ?: g_strdup("");
}

static gboolean owner_taken(gpointer data) {
        return ((FixtureOwnerWatch *) data)->new_owner != NULL;
}

void fixture_await_new_owner(Fixture *f, FixtureOwnerWatch *w) {
        g_assert_true(fixture_iterate_until(owner_taken, w));
        g_dbus_connection_signal_unsubscribe(f->conn, w->subscription);
        g_free(w->old_owner);
        g_free(w->new_owner);
        *w = (FixtureOwnerWatch) {};
}

void fixture_reexecute(Fixture *f) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        FixtureOwnerWatch w;

        fixture_watch_owner(f, &w);
        r = fixture_call(f, "Reexecute", NULL, &error);
        g_assert_no_error(error);
        fixture_await_new_owner(f, &w);
        g_assert_cmpint(owner_pid(f->conn, BUS_NAME), ==, f->daemon_pid);
}

char *fixture_read_to_end(int fd) {
        GString *s = g_string_new(NULL);
        char buf[4096];
        ssize_t k;

        while ((k = read(fd, buf, sizeof(buf))) != 0) {
                if (k < 0 && errno == EINTR)
                        continue;
                g_assert_cmpint(k, >, 0);
                g_string_append_len(s, buf, k);
        }
        return g_string_free(s, FALSE);
}

char *fixture_read_line(GDataInputStream *in, const char *what) {
        g_autoptr(GError) error = NULL;
        char *line = g_data_input_stream_read_line(in, NULL, NULL, &error);

        g_assert_no_error(error);
        g_assert_nonnull(line);
        g_test_message("%s: %s", what, line);
        return line;
}

/* ---- the bus and the daemon ------------------------------------------------------------------ */

GPid fixture_start_daemon(Fixture *f, const char *const *extra_args) {
        return fixture_start_daemon_env(f, extra_args, NULL);
}

GPid fixture_start_daemon_env(Fixture *f, const char *const *extra_args, const char *const *envp) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;
        GPid pid;

        gboolean own_state = FALSE;

        g_ptr_array_add(argv, g_strdup(daemon_path()));
        g_ptr_array_add(argv, g_strdup_printf("--address=%s", f->address));
        for (const char *const *a = extra_args; a && *a; a++) {
                g_ptr_array_add(argv, g_strdup(*a));
                own_state =
                        own_state || g_str_has_prefix(*a, "--state-dir=") || g_str_equal(*a, "--ephemeral");
        }
        if (!own_state) {
                if (!f->state_dir) {
                        f->state_dir = g_dir_make_tmp("procpool-state-XXXXXX", &error);
                        g_assert_no_error(error);
                        if (f->daemon_uid != 0)
                                g_assert_no_errno(chown(f->state_dir, f->daemon_uid, f->daemon_uid));
                }
                g_ptr_array_add(argv, g_strdup_printf("--state-dir=%s", f->state_dir));
        }
        g_ptr_array_add(argv, NULL);

        g_assert_true(g_spawn_async(NULL, (char **) argv->pdata, (char **) envp, G_SPAWN_DO_NOT_REAP_CHILD,
                                    f->daemon_uid != 0 ? die_with_test_as_other : die_with_test, NULL, &pid,
                                    &error));
        g_assert_no_error(error);
        /* Ready means the name is owned. */
        fixture_wait_for_name(f, pid);
        return pid;
}

void fixture_restart_daemon_nofile(Fixture *f, const char *const *extra_args, rlim_t soft, rlim_t hard) {
        g_autofree char *real = g_strdup(daemon_path()), *wrapper = NULL, *script = NULL;
        g_autoptr(GError) error = NULL;
        int status = fixture_stop_daemon(f->daemon_pid), fd;

        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        fd = g_file_open_tmp("procpoold-limited-XXXXXX", &wrapper, &error);
        g_assert_no_error(error);
        close(fd);
        /* A hard limit once lowered stays so for the test: only the daemon's own is. */
        script = g_strdup_printf("#!/bin/sh\nexec prlimit --nofile=%lu:%lu '%s' \"$@\"\n",
                                 (unsigned long) soft, (unsigned long) hard, real);
        g_assert_true(g_file_set_contents(wrapper, script, -1, &error));
        g_assert_no_error(error);
        g_assert_cmpint(chmod(wrapper, 0755), ==, 0);
        g_setenv("PROCPOOLD", wrapper, TRUE);
        f->daemon_pid = fixture_start_daemon(f, extra_args);
        g_setenv("PROCPOOLD", real, TRUE);
        (void) unlink(wrapper);
}

int fixture_stop_daemon(GPid pid) {
        struct pollfd p = { .events = POLLIN };
        int status = 0, r;

        if (pid <= 0)
                return 0;
        p.fd = pidfd_open_(pid);
        g_assert_cmpint(p.fd, >=, 0);
        (void) kill(pid, SIGTERM);
        do
                r = poll(&p, 1, 10 * 1000);
        while (r < 0 && errno == EINTR);
        close(p.fd);
        if (r == 1) {
                g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
                return status;
        }
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, &status, 0);
        g_error("procpoold did not stop within 10 s of SIGTERM");
}

GDBusConnection *fixture_connect(const char *address, GError **error) {
        return g_dbus_connection_new_for_address_sync(address,
                                                      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                              G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                      NULL, NULL, error);
}

GIOStream *fixture_raw_connect(const char *address) {
        g_autoptr(GError) error = NULL;
        g_autofree char *uid = g_strdup_printf("%u", (unsigned) getuid()), *hex = NULL, *auth = NULL;
        GIOStream *s = g_dbus_address_get_stream_sync(address, NULL, NULL, &error);
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

void fixture_raw_send(GIOStream *s, GDBusMessage *m, guint32 serial) {
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

GDBusMessage *fixture_raw_receive(GIOStream *s) {
        GInputStream *in = g_io_stream_get_input_stream(s);
        g_autoptr(GError) error = NULL;
        g_autofree guchar *blob = g_malloc(16);
        GDBusMessage *m;
        gssize needed;

        g_assert_true(g_input_stream_read_all(in, blob, 16, NULL, NULL, &error));
        g_assert_no_error(error);
        needed = g_dbus_message_bytes_needed(blob, 16, &error);
        g_assert_no_error(error);
        g_assert_cmpint(needed, >=, 16);
        blob = g_realloc(blob, needed);
        g_assert_true(g_input_stream_read_all(in, blob + 16, needed - 16, NULL, NULL, &error));
        g_assert_no_error(error);
        m = g_dbus_message_new_from_blob(blob, needed, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
        g_assert_no_error(error);
        return m;
}

GDBusConnection *fixture_connect_other(Fixture *f) {
        g_autoptr(GError) error = NULL;
        GDBusConnection *c = fixture_connect(f->address, &error);

        g_assert_no_error(error);
        return c;
}

void fixture_disconnect(Fixture *f, GDBusConnection *c) {
        g_autofree char *name = g_strdup(g_dbus_connection_get_unique_name(c));
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) v = NULL;

        g_assert_true(g_dbus_connection_close_sync(c, NULL, &error));
        g_assert_no_error(error);
        g_assert_true(wait_name(f, name, FALSE, 0, NULL));
        /* The bus sent NameOwnerChanged to procpoold before this call, which it handles in order. */
        v = fixture_get_property(f, MANAGER_PATH, MANAGER_IFACE, "Version");
}

void fixture_sync_with_daemon(GDBusConnection *c) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r =
                fixture_call_raw(c, MANAGER_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL, &error);

        g_assert_no_error(error);
}

gboolean fixture_per_job_cgroups(Fixture *f) {
        g_autofree char *path = g_strdup_printf("/proc/%d/cgroup", f->daemon_pid), *cg = NULL;

        g_assert_true(g_file_get_contents(path, &cg, NULL, NULL));
        return g_str_has_suffix(g_strstrip(cg), "/supervisor");
}

static void connect_test(Fixture *f) {
        f->conn = fixture_connect_other(f);
}

void fixture_setup(Fixture *f, gconstpointer extra_args) {
        fixture_setup_no_daemon(f, NULL);
        f->daemon_pid = fixture_start_daemon(f, extra_args);
}

/* The bus GTestDBus would start. It is started here instead, to die with the test (die_with_test()):
 * GTestDBus's watcher waits for a pipe that the dbus-daemon it is to stop holds open itself, so a test that
 * aborted left both behind, holding meson's pipes until its timeout. */
static const char test_bus_config[] =
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
        " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
        "<busconfig>\n"
        "  <type>session</type>\n"
        "  <listen>unix:tmpdir=/tmp</listen>\n"
        "  <policy context=\"default\">\n"
        "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
        "    <allow eavesdrop=\"true\"/>\n"
        "    <allow own=\"*\"/>\n"
        "  </policy>\n"
        "</busconfig>\n";

void fixture_setup_no_daemon(Fixture *f, gconstpointer unused) {
        fixture_setup_bus_config(f, test_bus_config);
        /* As GTestDBus: what the test starts finds the bus as its session bus. */
        g_setenv("DBUS_SESSION_BUS_ADDRESS", f->address, TRUE);
}

/* test_bus_config admits only the uid that started the bus; this one admits everyone. */
static const char open_bus_config[] =
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
        " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
        "<busconfig>\n"
        "  <type>session</type>\n"
        "  <listen>unix:tmpdir=/tmp</listen>\n"
        "  <auth>EXTERNAL</auth>\n"
        "  <policy context=\"default\">\n"
        "    <allow user=\"*\"/>\n"
        "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
        "    <allow eavesdrop=\"true\"/>\n"
        "    <allow own=\"*\"/>\n"
        "  </policy>\n"
        "</busconfig>\n";

void fixture_setup_bus_config(Fixture *f, const char *config_text) {
        g_autoptr(GError) error = NULL;
        g_autofree char *config = NULL, *config_arg = NULL;
        g_autoptr(GString) address = g_string_new(NULL);
        int fd, out = -1;

        fd = g_file_open_tmp("procpool-bus-XXXXXX.conf", &config, &error);
        g_assert_no_error(error);
        g_assert_true(g_file_set_contents(config, config_text, -1, &error));
        g_assert_no_error(error);
        close(fd);
        config_arg = g_strdup_printf("--config-file=%s", config);

        const char *argv[] = { "dbus-daemon", config_arg, "--nofork", "--print-address", NULL };
        g_assert_true(g_spawn_async_with_pipes(NULL, (char **) argv, NULL,
                                               G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, die_with_test,
                                               NULL, &f->bus_pid, NULL, &out, NULL, &error));
        g_assert_no_error(error);
        /* The address is the first line it prints, once it listens. */
        for (;;) {
                char c;
                ssize_t k = read(out, &c, 1);
                if (k < 0 && errno == EINTR)
                        continue;
                g_assert_cmpint(k, ==, 1);
                if (c == '\n')
                        break;
                g_string_append_c(address, c);
        }
        close(out);
        (void) unlink(config);
        f->address = g_strdup(address->str);
        connect_test(f);
}

void fixture_setup_open_bus(Fixture *f, gconstpointer extra_args) {
        fixture_setup_bus_config(f, open_bus_config);
        f->daemon_pid = fixture_start_daemon(f, extra_args);
}

void fixture_setup_open_bus_other_daemon(Fixture *f, gconstpointer extra_args) {
        fixture_setup_bus_config(f, open_bus_config);
        if (!fixture_have_root())
                return;
        f->daemon_uid = OTHER_UID;
        f->daemon_pid = fixture_start_daemon(f, extra_args);
}

static void stop_process(GPid pid);

void fixture_teardown(Fixture *f, gconstpointer extra_args) {
        int status = fixture_stop_daemon(f->daemon_pid);

        /* Every fixture's daemon must stop cleanly: exit 0 on SIGTERM. */
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        if (f->polkit_pid > 0) {
                stop_process(f->polkit_pid);
                f->polkit_pid = 0;
        }
        if (f->polkit_dir) {
                fixture_remove_tree(f->polkit_dir);
                g_clear_pointer(&f->polkit_dir, g_free);
        }
        g_clear_object(&f->conn);
        if (f->bus_pid > 0) {
                (void) kill(f->bus_pid, SIGTERM);
                (void) waitpid(f->bus_pid, NULL, 0);
                f->bus_pid = 0;
        }
        g_unsetenv("DBUS_SESSION_BUS_ADDRESS");
        g_free(f->address);
        if (f->state_dir) {
                fixture_remove_tree(f->state_dir);
                g_clear_pointer(&f->state_dir, g_free);
        }
        if (f->gate_dir) {
                fixture_remove_tree(f->gate_dir);
                g_clear_pointer(&f->gate_dir, g_free);
        }
}

void fixture_remove_tree(const char *path) {
        const char *argv[] = { "rm", "-rf", "--", path, NULL };
        g_autoptr(GError) error = NULL;
        int status;

        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                                   &status, &error));
        g_assert_no_error(error);
        g_assert_true(g_spawn_check_wait_status(status, NULL));
}

/* ---- calls ------------------------------------------------------------------------------------ */

GVariant *fixture_call_raw(GDBusConnection *c, const char *path, const char *iface, const char *method,
                           GVariant *params, GError **error) {
        return g_dbus_connection_call_sync(c, BUS_NAME, path, iface, method, params, NULL,
                                           G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, error);
}

GVariant *fixture_call(Fixture *f, const char *method, GVariant *params, GError **error) {
        return fixture_call_raw(f->conn, MANAGER_PATH, MANAGER_IFACE, method, params, error);
}

GVariant *fixture_job_call(Fixture *f, const char *job_path, const char *method, GVariant *params,
                           GError **error) {
        return fixture_call_raw(f->conn, job_path, JOB_IFACE, method, params, error);
}

void fixture_job_call_ok(Fixture *f, const char *job_path, const char *method, GVariant *params) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = fixture_job_call(f, job_path, method, params, &error);

        g_assert_no_error(error);
}

char *fixture_job_stdout(Fixture *f, const char *job_path) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = fixture_job_call(f, job_path, "GetOutput", NULL, &error);
        g_autoptr(GVariant) out = NULL;

        g_assert_no_error(error);
        out = g_variant_get_child_value(r, 0);
        return fixture_bytes_text(out);
}

void fixture_expect_error(Fixture *f, const char *path, const char *iface, const char *method,
                          GVariant *params, const char *name, const char *text) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = fixture_call_raw(f->conn, path, iface, method, params, &error);

        if (r)
                g_error("%s on %s: expected %s, got a reply %s", method, path, name,
                        g_variant_print(r, TRUE));
        fixture_assert_error(error, name, text);
}

void fixture_expect_call_error(Fixture *f, const char *const *argv, GVariant *options, const char *name,
                               const char *text) {
        if (!options)
                options = FIXTURE_NO_OPTIONS;
        fixture_expect_error(f, MANAGER_PATH, MANAGER_IFACE, "Call",
                             g_variant_new("(^as@a{sv})", argv, options), name, text);
}

GVariant *fixture_get_property(Fixture *f, const char *path, const char *iface, const char *name) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r =
                g_dbus_connection_call_sync(f->conn, BUS_NAME, path, "org.freedesktop.DBus.Properties", "Get",
                                            g_variant_new("(ss)", iface, name), G_VARIANT_TYPE("(v)"),
                                            G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        GVariant *v;

        g_assert_no_error(error);
        g_variant_get(r, "(v)", &v);
        return v;
}

guint32 fixture_manager_u(Fixture *f, const char *name) {
        g_autoptr(GVariant) v = fixture_get_property(f, MANAGER_PATH, MANAGER_IFACE, name);
        return g_variant_get_uint32(v);
}

char *fixture_job_path(guint64 id) {
        return g_strdup_printf(MANAGER_PATH "/job/%" G_GUINT64_FORMAT, id);
}

char *fixture_job_state(Fixture *f, const char *job_path) {
        g_autoptr(GVariant) v = fixture_get_property(f, job_path, JOB_IFACE, "State");
        return g_variant_dup_string(v, NULL);
}

guint32 fixture_job_pid(Fixture *f, const char *job_path) {
        g_autoptr(GVariant) v = fixture_get_property(f, job_path, JOB_IFACE, "Pid");
        return g_variant_get_uint32(v);
}

char *fixture_submit(Fixture *f, const char *const *argv, GVariant *options) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        char *path;

        if (!options)
                options = FIXTURE_NO_OPTIONS;
        r = fixture_call(f, "Submit", g_variant_new("(^as@a{sv})", argv, options), &error);
        g_assert_no_error(error);
        g_variant_get(r, "(o)", &path);
        return path;
}

char *fixture_submit_sleeper(Fixture *f, GVariant *options) {
        const char *const argv[] = { "sleep", "1000", NULL };
        char *path = fixture_submit(f, argv, options);

        g_assert_true(fixture_wait_state(f, path, "running"));
        return path;
}

GVariant *fixture_options(const char *first_key, ...) {
        GVariantBuilder b;
        va_list ap;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        va_start(ap, first_key);
        for (const char *k = first_key; k; k = va_arg(ap, const char *))
                g_variant_builder_add(&b, "{sv}", k, va_arg(ap, GVariant *));
        va_end(ap);
        return g_variant_builder_end(&b);
}

char *fixture_bytes_text(GVariant *ay) {
        gsize n;
        const char *p = g_variant_get_fixed_array(ay, &n, 1);

        return p ? g_strndup(p, n) : g_strdup("");
}

GVariant *fixture_bytes(const void *data, gsize size) {
        return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, size ? data : "", size, 1);
}

char *fixture_shell(const char *script) {
        g_autoptr(GError) error = NULL;
        char *out = NULL;
        const char *argv[] = { "/bin/sh", "-c", script, NULL };

        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, NULL,
                                   &error));
        g_assert_no_error(error);
        return g_strstrip(out);
}

int fixture_call_argv(Fixture *f, const char *const *argv, GVariant *options, GError **error) {
        g_autoptr(GVariant) r = NULL;
        int rc;

        if (!options)
                options = FIXTURE_NO_OPTIONS;
        r = fixture_call(f, "Call", g_variant_new("(^as@a{sv})", argv, options), error);
        if (!r)
                return -1000;
        g_variant_get(r, "(i)", &rc);
        return rc;
}

gboolean fixture_communicate(Fixture *f, const char *const *argv, const void *input, gsize input_size,
                             GVariant *options, int *ret_rc, GBytes **ret_stdout, GBytes **ret_stderr,
                             GError **error) {
        g_autoptr(GVariant) r = NULL, out = NULL, err = NULL;

        if (!options)
                options = FIXTURE_NO_OPTIONS;
        r = fixture_call(f, "Communicate",
                         g_variant_new("(^as@ay@a{sv})", argv, fixture_bytes(input, input_size), options),
                         error);
        if (!r)
                return FALSE;
        g_variant_get(r, "(i@ay@ay)", ret_rc, &out, &err);
        *ret_stdout = g_variant_get_data_as_bytes(out);
        *ret_stderr = g_variant_get_data_as_bytes(err);
        return TRUE;
}

char *fixture_run_output(Fixture *f, const char *const *argv, GVariant *options, int expected_rc) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        int rc = -1;

        g_assert_true(fixture_communicate(f, argv, NULL, 0, options, &rc, &out, &err, &error));
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, expected_rc);
        return g_strndup(g_bytes_get_size(out) ? g_bytes_get_data(out, NULL) : "", g_bytes_get_size(out));
}

void fixture_job_outcome(Fixture *f, const char *job_path, char **ret_state, int *ret_rc, char **ret_error) {
        g_autoptr(GVariant) state = fixture_get_property(f, job_path, JOB_IFACE, "State");
        g_autoptr(GVariant) rc = fixture_get_property(f, job_path, JOB_IFACE, "ReturnCode");
        g_autoptr(GVariant) err = fixture_get_property(f, job_path, JOB_IFACE, "Error");

        if (ret_state)
                *ret_state = g_variant_dup_string(state, NULL);
        if (ret_rc)
                *ret_rc = g_variant_get_int32(rc);
        if (ret_error)
                *ret_error = g_variant_dup_string(err, NULL);
}

void fixture_assert_outcome(Fixture *f, const char *job_path, const char *state, int rc) {
        g_autofree char *s = NULL;
        int r;

        fixture_job_outcome(f, job_path, &s, &r, NULL);
        g_assert_cmpstr(s, ==, state);
        g_assert_cmpint(r, ==, rc);
}

void fixture_assert_state(Fixture *f, const char *job_path, const char *state) {
        g_autofree char *s = fixture_job_state(f, job_path);
        g_assert_cmpstr(s, ==, state);
}

void fixture_assert_answers(Fixture *f) {
        const char *const argv[] = { "true", NULL };
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(fixture_call_argv(f, argv, NULL, &error), ==, 0);
        g_assert_no_error(error);
}

void fixture_assert_error(const GError *error, const char *name, const char *text) {
        g_autofree char *remote = NULL;

        g_assert_nonnull(error);
        remote = g_dbus_error_get_remote_error(error);
        if (g_strcmp0(remote, name) != 0)
                g_error("expected %s, got %s: %s", name, remote, error->message);
        if (text && !strstr(error->message, text))
                g_error("expected %s to mention \"%s\": %s", name, text, error->message);
}

void fixture_on_reply(GObject *source, GAsyncResult *result, gpointer reply) {
        FixtureReply *r = reply;

        r->value = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &r->error);
        r->done = TRUE;
}

static gboolean reply_done(gpointer reply) {
        return ((FixtureReply *) reply)->done;
}

gboolean fixture_reply_wait(FixtureReply *reply) {
        return fixture_iterate_until(reply_done, reply);
}

void fixture_reply_clear(FixtureReply *reply) {
        g_clear_pointer(&reply->value, g_variant_unref);
        g_clear_error(&reply->error);
        reply->done = FALSE;
}

/* ---- waits: on signals, files and processes, never on the clock -------------------------------- */

gboolean fixture_iterate_until(gboolean (*cond)(gpointer data), gpointer data) {
        GSource *timeout = g_timeout_source_new_seconds(FIXTURE_WAIT_SEC);
        gboolean expired = FALSE, met;

        g_source_set_callback(timeout, on_expired, &expired, NULL);
        g_source_attach(timeout, NULL);
        while (!(met = cond(data)) && !expired)
                g_main_context_iteration(NULL, TRUE);
        g_source_destroy(timeout);
        g_source_unref(timeout);
        return met;
}

/* A property of a job that may not be there (yet, or any more): NULL then. */
static GVariant *job_property_if_any(Fixture *f, const char *job_path, const char *name) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r =
                g_dbus_connection_call_sync(f->conn, BUS_NAME, job_path, "org.freedesktop.DBus.Properties",
                                            "Get", g_variant_new("(ss)", JOB_IFACE, name),
                                            G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        GVariant *v;

        if (g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT) ||
            g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD) ||
            g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_INTERFACE))
                return NULL;
        g_assert_no_error(error);
        g_variant_get(r, "(v)", &v);
        return v;
}

/* A wait on an object's PropertiesChanged: check() is asked once with changed NULL (it reads the
 * properties then), and again with the a{sv} of each signal; for a job, InterfacesAdded counts as
 * a change of all its properties, so that the wait may begin before the job is there. */
typedef struct PropertyWait PropertyWait;
struct PropertyWait {
        Fixture *f;
        const char *path;
        gboolean (*check)(PropertyWait *w, GVariant *changed);
        gboolean any_job; /* also asked again (changed NULL) on every job's signals */
        const char *state;
        guint32 running, queued;
        gboolean done;
};

static void on_wait_changed(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                            const char *member, GVariant *params, gpointer data) {
        PropertyWait *w = data;
        g_autoptr(GVariant) changed = g_variant_get_child_value(params, 1);

        if (!w->done)
                w->done = w->check(w, changed);
}

static void on_wait_job_changed(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                                const char *member, GVariant *params, gpointer data) {
        PropertyWait *w = data;

        if (!w->done)
                w->done = w->check(w, NULL);
}

static void on_wait_added(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                          const char *member, GVariant *params, gpointer data) {
        PropertyWait *w = data;
        g_autoptr(GVariant) interfaces = NULL, props = NULL;
        const char *object;

        g_variant_get_child(params, 0, "&o", &object);
        if (w->done)
                return;
        if (w->any_job) {
                w->done = w->check(w, NULL);
                return;
        }
        if (!g_str_equal(object, w->path))
                return;
        interfaces = g_variant_get_child_value(params, 1);
        props = g_variant_lookup_value(interfaces, JOB_IFACE, G_VARIANT_TYPE("a{sv}"));
        if (props)
                w->done = w->check(w, props);
}

static gboolean wait_properties(PropertyWait *w, const char *iface) {
        GMainContext *ctx = g_main_context_new();
        guint sub, sub_added = 0, sub_jobs = 0;

        g_main_context_push_thread_default(ctx);
        sub = g_dbus_connection_signal_subscribe(w->f->conn, NULL, "org.freedesktop.DBus.Properties",
                                                 "PropertiesChanged", w->path, iface,
                                                 G_DBUS_SIGNAL_FLAGS_NONE, on_wait_changed, w, NULL);
        if (g_str_equal(iface, JOB_IFACE) || w->any_job)
                sub_added = g_dbus_connection_signal_subscribe(
                        w->f->conn, NULL, "org.freedesktop.DBus.ObjectManager", "InterfacesAdded",
                        MANAGER_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_wait_added, w, NULL);
        if (w->any_job)
                sub_jobs = g_dbus_connection_signal_subscribe(
                        w->f->conn, NULL, "org.freedesktop.DBus.Properties", "PropertiesChanged", NULL,
                        JOB_IFACE, G_DBUS_SIGNAL_FLAGS_NONE, on_wait_job_changed, w, NULL);
        g_main_context_pop_thread_default(ctx);
        /* Read after subscribing: the match is on the bus before this call, so a later change is
         * signalled. */
        w->done = w->check(w, NULL);
        /* A signal goes out while the daemon handles a change (a job's end: before its process is
         * reaped); what it does after that, it has done before it answers a call sent now. */
        if (!w->done && run_until(ctx, &w->done))
                fixture_sync_with_daemon(w->f->conn);
        if (sub_jobs)
                g_dbus_connection_signal_unsubscribe(w->f->conn, sub_jobs);
        if (sub_added)
                g_dbus_connection_signal_unsubscribe(w->f->conn, sub_added);
        unsubscribe_and_free(w->f->conn, sub, ctx);
        return w->done;
}

static gboolean state_is(PropertyWait *w, GVariant *changed) {
        g_autoptr(GVariant) now = NULL;
        const char *s;

        if (changed)
                return g_variant_lookup(changed, "State", "&s", &s) && g_str_equal(s, w->state);
        now = job_property_if_any(w->f, w->path, "State");
        return now && g_str_equal(g_variant_get_string(now, NULL), w->state);
}

gboolean fixture_wait_state(Fixture *f, const char *job_path, const char *state) {
        PropertyWait w = { .f = f, .path = job_path, .check = state_is, .state = state };
        return wait_properties(&w, JOB_IFACE);
}

static gboolean state_not_queued(PropertyWait *w, GVariant *changed) {
        g_autoptr(GVariant) now = NULL;
        const char *s;

        if (changed)
                return g_variant_lookup(changed, "State", "&s", &s) && !g_str_equal(s, "queued");
        now = job_property_if_any(w->f, w->path, "State");
        return now && !g_str_equal(g_variant_get_string(now, NULL), "queued");
}

gboolean fixture_wait_started(Fixture *f, const char *job_path) {
        PropertyWait w = { .f = f, .path = job_path, .check = state_not_queued };
        return wait_properties(&w, JOB_IFACE);
}

static gboolean finished_at_set(PropertyWait *w, GVariant *changed) {
        g_autoptr(GVariant) v = NULL;
        guint64 t;

        if (changed)
                return g_variant_lookup(changed, "FinishedAt", "t", &t) && t > 0;
        v = job_property_if_any(w->f, w->path, "FinishedAt");
        return v && g_variant_get_uint64(v) > 0;
}

static gboolean pid_zero(PropertyWait *w, GVariant *changed) {
        g_autoptr(GVariant) v = NULL;
        guint32 pid;

        if (changed)
                return g_variant_lookup(changed, "Pid", "u", &pid) && pid == 0;
        v = job_property_if_any(w->f, w->path, "Pid");
        return v && g_variant_get_uint32(v) == 0;
}

gboolean fixture_wait_main_exited(Fixture *f, const char *job_path) {
        PropertyWait w = { .f = f, .path = job_path, .check = pid_zero };
        return wait_properties(&w, JOB_IFACE);
}

gboolean fixture_wait_finished(Fixture *f, const char *job_path) {
        PropertyWait w = { .f = f, .path = job_path, .check = finished_at_set };
        return wait_properties(&w, JOB_IFACE);
}

/* Running and Queued are signalled coalesced in time, and only when they differ from what was last
 * signalled: a count read in between (a job that came and went within one interval) may never be
 * followed by a signal of its own. Each job's changes are signalled, and the counts follow from the
 * jobs' states: any of these signals says to read them again. */
static gboolean counts_are(PropertyWait *w, GVariant *changed) {
        return fixture_manager_u(w->f, "Running") == w->running &&
               fixture_manager_u(w->f, "Queued") == w->queued;
}

gboolean fixture_wait_counts(Fixture *f, guint32 running, guint32 queued) {
        PropertyWait w = { .f = f,
                           .path = MANAGER_PATH,
                           .check = counts_are,
                           .any_job = TRUE,
                           .running = running,
                           .queued = queued };
        return wait_properties(&w, MANAGER_IFACE);
}

gboolean fixture_wait_pid_exit(pid_t pid) {
        struct pollfd p = { .fd = pidfd_open_(pid), .events = POLLIN };
        int r;

        if (p.fd < 0) {
                g_assert_cmpint(errno, ==, ESRCH);
                return TRUE;
        }
        do
                r = poll(&p, 1, FIXTURE_WAIT_SEC * 1000);
        while (r < 0 && errno == EINTR);
        close(p.fd);
        return r == 1;
}

gboolean fixture_wait_for_file(const char *path) {
        g_autofree char *dir = g_path_get_dirname(path), *base = g_path_get_basename(path);
        gint64 end = g_get_monotonic_time() + FIXTURE_WAIT_SEC * G_USEC_PER_SEC;
        int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        gboolean found;

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(inotify_add_watch(fd, dir, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR), >=, 0);
        /* Watched first, then looked for: a file made in between is seen either way. */
        found = g_file_test(path, G_FILE_TEST_EXISTS);
        while (!found && g_get_monotonic_time() < end) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
                const struct inotify_event *ev;
                ssize_t n;

                if (poll(&p, 1, (int) ((end - g_get_monotonic_time()) / 1000) + 1) < 0) {
                        g_assert_cmpint(errno, ==, EINTR);
                        continue;
                }
                n = read(fd, buf, sizeof(buf));
                if (n < 0) {
                        g_assert_true(errno == EAGAIN || errno == EINTR);
                        continue;
                }
                for (char *e = buf; e < buf + n; e += sizeof(struct inotify_event) + ev->len) {
                        ev = (const struct inotify_event *) e;
                        if ((ev->len > 0 && g_str_equal(ev->name, base)) || (ev->mask & IN_Q_OVERFLOW))
                                found = g_file_test(path, G_FILE_TEST_EXISTS);
                }
        }
        close(fd);
        return found;
}

/* ---- gates ------------------------------------------------------------------------------------- */

char *fixture_gate_path(Fixture *f, const char *name) {
        if (!f->gate_dir) {
                g_autoptr(GError) error = NULL;
                f->gate_dir = g_dir_make_tmp("procpool-gate-XXXXXX", &error);
                g_assert_no_error(error);
                /* The daemon's jobs wait for gates there, and open some of their own. */
                if (f->daemon_uid != 0)
                        g_assert_no_errno(chown(f->gate_dir, f->daemon_uid, f->daemon_uid));
        }
        return g_build_filename(f->gate_dir, name, NULL);
}

void fixture_gate_open(const char *path) {
        g_autoptr(GError) error = NULL;

        g_assert_true(g_file_set_contents(path, "", 0, &error));
        g_assert_no_error(error);
}

pid_t fixture_wait_pid_file(const char *path) {
        g_autofree char *text = NULL;
        gint64 pid;

        g_assert_true(fixture_wait_for_file(path));
        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        pid = g_ascii_strtoll(text, NULL, 10);
        g_assert_cmpint(pid, >, 1);
        return (pid_t) pid;
}

char *fixture_gate_wait_sh(const char *path) {
        g_autofree char *dir = g_path_get_dirname(path);
        g_autofree char *quoted = g_shell_quote(path), *quoted_dir = g_shell_quote(dir);

        /* A gate that is gone with its directory (the teardown removes it) lets the job go too. */
        return g_strdup_printf("until [ -e %s ] || [ ! -d %s ]; do sleep 0.01; done", quoted, quoted_dir);
}

/* ---- another uid -------------------------------------------------------------------------------- */

void fixture_become_other(gpointer unused) {
        if (setgroups(0, NULL) < 0 || setgid(OTHER_UID) < 0 || setuid(OTHER_UID) < 0)
                _exit(99);
}

gboolean fixture_have_root(void) {
        if (getuid() == 0)
                return TRUE;
        g_test_skip("needs root to act as another uid");
        return FALSE;
}

char *fixture_run_as_other(const char *const *argv) {
        g_autoptr(GError) error = NULL;
        char *out = NULL;
        int status;

        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, fixture_become_other, NULL,
                                   &out, NULL, &status, &error));
        g_assert_no_error(error);
        g_assert_true(g_spawn_check_wait_status(status, NULL));
        return out;
}

char *fixture_self(void) {
        char *self = g_file_read_link("/proc/self/exe", NULL);

        g_assert_nonnull(self);
        return self;
}

const char *fixture_helper(void) {
        const char *p = g_getenv("PROCPOOL_TEST_HELPER");
        g_assert_nonnull(p); /* set by meson test */
        return p;
}

char **fixture_other_client_argv(Fixture *f, const char *mode, const char *const *cmd) {
        g_autoptr(GStrvBuilder) b = g_strv_builder_new();

        g_strv_builder_add_many(b, fixture_helper(), "client", f->address, mode, NULL);
        g_strv_builder_addv(b, (const char **) cmd);
        return g_strv_builder_end(b);
}

char *fixture_other_client(Fixture *f, const char *mode, const char *const *cmd) {
        g_auto(GStrv) argv = fixture_other_client_argv(f, mode, cmd);
        return g_strstrip(fixture_run_as_other((const char *const *) argv));
}

/* ---- the system bus, polkit and real users ------------------------------------------------------ */

const FixtureUser *fixture_user(const char *name) {
        static GHashTable *users = NULL;
        FixtureUser *u;
        struct passwd *pw;

        if (!users)
                users = g_hash_table_new(g_str_hash, g_str_equal);
        u = g_hash_table_lookup(users, name);
        if (u)
                return u;
        pw = getpwnam(name);
        if (!pw)
                g_error("There is no user %s: tools/install-deps makes the polkit suite's users", name);
        u = g_new0(FixtureUser, 1);
        u->name = g_strdup(pw->pw_name);
        u->uid = pw->pw_uid;
        u->gid = pw->pw_gid;
        u->home = g_strdup(pw->pw_dir);
        u->shell = g_strdup(pw->pw_shell);
        u->n_groups = 64;
        u->groups = g_new0(gid_t, u->n_groups);
        if (getgrouplist(u->name, u->gid, u->groups, &u->n_groups) < 0) {
                u->groups = g_renew(gid_t, u->groups, u->n_groups);
                g_assert_cmpint(getgrouplist(u->name, u->gid, u->groups, &u->n_groups), >=, 0);
        }
        g_hash_table_insert(users, u->name, u);
        return u;
}

void fixture_become_user(gpointer user) {
        const FixtureUser *u = user;

        if (setgroups((size_t) u->n_groups, u->groups) < 0 || setgid(u->gid) < 0 || setuid(u->uid) < 0)
                _exit(99);
}

int fixture_run_as_user(const FixtureUser *user, const char *const *argv, const char *const *envp,
                        char **ret_out, char **ret_err) {
        g_autoptr(GError) error = NULL;
        int status;

        g_assert_true(g_spawn_sync("/", (char **) argv, (char **) envp, G_SPAWN_DEFAULT, fixture_become_user,
                                   (gpointer) user, ret_out, ret_err, &status, &error));
        g_assert_no_error(error);
        return status;
}

char *fixture_user_client(Fixture *f, const FixtureUser *user, const char *const *ops) {
        g_autoptr(GStrvBuilder) b = g_strv_builder_new();
        g_auto(GStrv) argv = NULL;
        g_autofree char *err = NULL;
        char *out = NULL;
        int status;

        g_strv_builder_add_many(b, fixture_helper(), "script", f->address, NULL);
        g_strv_builder_addv(b, (const char **) ops);
        argv = g_strv_builder_end(b);
        status = fixture_run_as_user(user, (const char *const *) argv, NULL, &out, &err);
        if (!g_spawn_check_wait_status(status, NULL))
                g_error("the helper as %s failed (status %d): %s", user->name, status, err);
        g_test_message("as %s:\n%s", user->name, out);
        return out;
}

/* A system bus's configuration, as dbus's own system.conf has it (every user may connect; nothing is
 * owned or called unless a policy allows it; signals and replies flow), then procpool's policy as it is
 * installed and polkit's. %s is the source tree. */
static const char system_bus_config[] =
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
        " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
        "<busconfig>\n"
        "  <type>system</type>\n"
        "  <listen>unix:tmpdir=/tmp</listen>\n"
        "  <auth>EXTERNAL</auth>\n"
        "  <policy context=\"default\">\n"
        "    <allow user=\"*\"/>\n"
        "    <deny own=\"*\"/>\n"
        "    <deny send_type=\"method_call\"/>\n"
        "    <allow send_type=\"signal\"/>\n"
        "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
        "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
        "    <allow receive_type=\"method_call\"/>\n"
        "    <allow receive_type=\"method_return\"/>\n"
        "    <allow receive_type=\"error\"/>\n"
        "    <allow receive_type=\"signal\"/>\n"
        "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
        "    <allow send_destination=\"org.freedesktop.DBus\"\n"
        "           send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
        "    <allow send_destination=\"org.freedesktop.DBus\"\n"
        "           send_interface=\"org.freedesktop.DBus.Properties\"/>\n"
        "  </policy>\n"
        "  <policy user=\"root\">\n"
        "    <allow send_destination=\"org.freedesktop.DBus\"\n"
        "           send_interface=\"org.freedesktop.DBus.Monitoring\"/>\n"
        "  </policy>\n"
        "  <include>%s/data/org.procpool.Supervisor1.conf</include>\n"
        "  <include ignore_missing=\"yes\">/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf</include>\n"
        "</busconfig>\n";

void fixture_setup_system_bus(Fixture *f, gconstpointer unused) {
        const char *source = g_getenv("PROCPOOL_SOURCE_ROOT");
        g_autofree char *config = NULL;

        g_assert_nonnull(source); /* set by meson test */
        config = g_strdup_printf(system_bus_config, source);
        fixture_setup_bus_config(f, config);
}

/* Ends pid with SIGTERM, SIGKILL after the fixture's bound, and reaps it. */
static void stop_process(GPid pid) {
        struct pollfd p = { .events = POLLIN };
        int r;

        p.fd = pidfd_open_(pid);
        g_assert_cmpint(p.fd, >=, 0);
        (void) kill(pid, SIGTERM);
        do
                r = poll(&p, 1, FIXTURE_WAIT_SEC * 1000);
        while (r < 0 && errno == EINTR);
        close(p.fd);
        if (r != 1)
                (void) kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
}

static void write_rules(Fixture *f, const char *rules) {
        g_autofree char *path = g_build_filename(f->polkit_dir, "rules", "50-procpool-test.rules", NULL);
        g_autoptr(GError) error = NULL;

        if (!rules) {
                (void) unlink(path);
                return;
        }
        g_assert_true(g_file_set_contents(path, rules, -1, &error));
        g_assert_no_error(error);
        g_assert_cmpint(chmod(path, 0644), ==, 0);
}

void fixture_polkit_start(Fixture *f, const char *rules, gboolean with_actions) {
        static const char mount_and_run[] = "mount --bind \"$1/actions\" /usr/share/polkit-1/actions && "
                                            "mount --bind \"$1/rules\" /etc/polkit-1/rules.d && "
                                            "mount --bind \"$1/empty\" /usr/share/polkit-1/rules.d && "
                                            "exec /usr/lib/polkit-1/polkitd --no-debug";
        const char *source = g_getenv("PROCPOOL_SOURCE_ROOT");
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) env = NULL;
        gboolean died = FALSE;

        g_assert_nonnull(source);
        g_assert_cmpint(f->polkit_pid, ==, 0);
        if (!g_file_test("/usr/lib/polkit-1/polkitd", G_FILE_TEST_IS_EXECUTABLE))
                g_error("There is no /usr/lib/polkit-1/polkitd: tools/install-deps installs it");
        /* polkitd runs as its own user: what it reads must be open to it. */
        f->polkit_dir = g_dir_make_tmp("procpool-polkit-XXXXXX", &error);
        g_assert_no_error(error);
        g_assert_cmpint(chmod(f->polkit_dir, 0755), ==, 0);
        for (size_t i = 0; i < 3; i++) {
                const char *names[] = { "actions", "rules", "empty" };
                g_autofree char *d = g_build_filename(f->polkit_dir, names[i], NULL);
                g_assert_cmpint(mkdir(d, 0755), ==, 0);
        }
        if (with_actions) {
                g_autofree char *from = g_build_filename(source, "data", "org.procpool.policy", NULL);
                g_autofree char *to = g_build_filename(f->polkit_dir, "actions", "org.procpool.policy", NULL);
                g_autofree char *text = NULL;
                g_assert_true(g_file_get_contents(from, &text, NULL, &error));
                g_assert_no_error(error);
                g_assert_true(g_file_set_contents(to, text, -1, &error));
                g_assert_no_error(error);
                g_assert_cmpint(chmod(to, 0644), ==, 0);
        }
        write_rules(f, rules);

        const char *argv[] = { "unshare",     "--mount", "--propagation", "private", "--", "sh", "-c",
                               mount_and_run, "sh",      f->polkit_dir,   NULL };
        env = g_environ_setenv(g_get_environ(), "DBUS_SYSTEM_BUS_ADDRESS", f->address, TRUE);
        /* unshare and sh exec: the pid is polkitd's. It leaves with the bus if the test dies (it drops
         * to its own user, which clears a parent-death signal). */
        g_assert_true(g_spawn_async(NULL, (char **) argv, env,
                                    G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                    &f->polkit_pid, &error));
        g_assert_no_error(error);
        if (!wait_name(f, "org.freedesktop.PolicyKit1", TRUE, f->polkit_pid, &died))
                g_error("polkitd %s",
                        died ? "exited before it took its bus name" : "did not take its bus name");
}

void fixture_polkit_set_rules(Fixture *f, const char *rules) {
        g_assert_nonnull(f->polkit_dir);
        write_rules(f, rules);
}

/* The start time of pid since boot, in clock ticks: field 22 of /proc/PID/stat. */
static guint64 proc_start_time(pid_t pid) {
        g_autofree char *file = g_strdup_printf("/proc/%d/stat", pid), *text = NULL;
        g_auto(GStrv) fields = NULL;
        const char *p;

        g_assert_true(g_file_get_contents(file, &text, NULL, NULL));
        p = strrchr(text, ')');
        g_assert_nonnull(p);
        fields = g_strsplit(p + 2, " ", -1);
        g_assert_cmpuint(g_strv_length(fields), >, 19);
        return g_ascii_strtoull(fields[19], NULL, 10); /* field 22; fields[0] is field 3 */
}

gboolean fixture_polkit_answers(Fixture *f, const FixtureUser *user, const char *action,
                                gboolean authorized) {
        const char *argv[] = { "sleep", "1000", NULL };
        g_autoptr(GError) error = NULL;
        gint64 deadline = g_get_monotonic_time() + FIXTURE_WAIT_SEC * G_USEC_PER_SEC;
        gboolean seen = FALSE;
        guint64 start;
        GPid pid;

        /* A process of the user to ask about: polkit knows a subject by its pid and start time. */
        g_assert_true(g_spawn_async("/", (char **) argv, NULL,
                                    G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, fixture_become_user,
                                    (gpointer) user, &pid, &error));
        g_assert_no_error(error);
        start = proc_start_time(pid);
        while (!seen && g_get_monotonic_time() < deadline) {
                GVariantBuilder subject;
                g_autoptr(GVariant) r = NULL;
                g_autoptr(GError) e = NULL;
                gboolean yes, challenge;

                g_variant_builder_init(&subject, G_VARIANT_TYPE("a{sv}"));
                g_variant_builder_add(&subject, "{sv}", "pid", g_variant_new_uint32((guint32) pid));
                g_variant_builder_add(&subject, "{sv}", "start-time", g_variant_new_uint64(start));
                g_variant_builder_add(&subject, "{sv}", "uid", g_variant_new_int32((gint32) user->uid));
                r = g_dbus_connection_call_sync(
                        f->conn, "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
                        "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization",
                        g_variant_new("((sa{sv})sa{ss}us)", "unix-process", &subject, action, NULL, 0, ""),
                        G_VARIANT_TYPE("((bba{ss}))"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &e);
                if (!r)
                        continue; /* asked again until the bound: polkitd may be reloading */
                g_variant_get(r, "((bb@a{ss}))", &yes, &challenge, NULL);
                seen = yes == authorized;
        }
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
        return seen;
}

void fixture_setup_system(Fixture *f, gconstpointer extra_args) {
        g_autoptr(GPtrArray) args = g_ptr_array_new();

        fixture_setup_system_bus(f, NULL);
        fixture_polkit_start(f, NULL, TRUE);
        g_ptr_array_add(args, (gpointer) "--system");
        for (const char *const *a = extra_args; a && *a; a++)
                g_ptr_array_add(args, (gpointer) *a);
        g_ptr_array_add(args, NULL);
        f->daemon_pid = fixture_start_daemon(f, (const char *const *) args->pdata);
}

/* ---- what /proc says ------------------------------------------------------------------------------- */

GArray *fixture_proc_pids(void) {
        g_autoptr(GDir) d = g_dir_open("/proc", 0, NULL);
        GArray *pids = g_array_new(FALSE, FALSE, sizeof(pid_t));
        const char *name;

        g_assert_nonnull(d);
        while ((name = g_dir_read_name(d))) {
                pid_t pid;
                if (!g_ascii_isdigit(name[0]))
                        continue;
                pid = (pid_t) atoi(name);
                g_array_append_val(pids, pid);
        }
        return pids;
}

gboolean fixture_proc_stat(pid_t pid, char *ret_state, pid_t *ret_ppid, pid_t *ret_pgrp) {
        g_autofree char *file = g_strdup_printf("/proc/%d/stat", pid), *text = NULL;
        const char *p;
        char state;
        int ppid, pgrp;

        if (!g_file_get_contents(file, &text, NULL, NULL))
                return FALSE;
        p = strrchr(text, ')'); /* the command name may hold anything */
        if (!p || sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) != 3)
                return FALSE;
        if (ret_state)
                *ret_state = state;
        if (ret_ppid)
                *ret_ppid = ppid;
        if (ret_pgrp)
                *ret_pgrp = pgrp;
        return TRUE;
}

void fixture_proc_children(pid_t parent, guint *ret_children, guint *ret_zombies) {
        g_autoptr(GArray) pids = fixture_proc_pids();

        *ret_children = *ret_zombies = 0;
        for (guint i = 0; i < pids->len; i++) {
                char state;
                pid_t ppid;
                if (!fixture_proc_stat(g_array_index(pids, pid_t, i), &state, &ppid, NULL) || ppid != parent)
                        continue;
                (*ret_children)++;
                if (state == 'Z')
                        (*ret_zombies)++;
        }
}

GArray *fixture_proc_group(pid_t pgid) {
        g_autoptr(GArray) pids = fixture_proc_pids();
        GArray *members = g_array_new(FALSE, FALSE, sizeof(pid_t));

        for (guint i = 0; i < pids->len; i++) {
                pid_t pid = g_array_index(pids, pid_t, i), pgrp;
                char state;
                if (fixture_proc_stat(pid, &state, NULL, &pgrp) && pgrp == pgid && state != 'Z' &&
                    state != 'X')
                        g_array_append_val(members, pid);
        }
        return members;
}

guint fixture_proc_fd_count(pid_t pid) {
        g_autofree char *dir = g_strdup_printf("/proc/%d/fd", pid);
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        guint n = 0;

        g_assert_nonnull(d);
        while (g_dir_read_name(d))
                n++;
        return n;
}

/* The hex mask of a "SigPnd:"-like line of /proc/PID/status. */
static guint64 status_mask(const char *text, const char *field) {
        const char *p = strstr(text, field);
        return p ? g_ascii_strtoull(p + strlen(field), NULL, 16) : 0;
}

gboolean fixture_proc_killed(pid_t pid) {
        g_autofree char *file = g_strdup_printf("/proc/%d/status", pid), *text = NULL, *stat = NULL;
        guint64 sigkill = 1ULL << (SIGKILL - 1);
        unsigned long flags = 0;
        const char *p;
        char state;

        if (!fixture_proc_stat(pid, &state, NULL, NULL) || state == 'Z' || state == 'X')
                return TRUE;
        if (!g_file_get_contents(file, &text, NULL, NULL))
                return TRUE;
        if ((status_mask(text, "\nSigPnd:") | status_mask(text, "\nShdPnd:")) & sigkill)
                return TRUE;
        /* Between taking SIGKILL and becoming a zombie: PF_EXITING (0x4) in the flags, field 9. */
        g_free(file);
        file = g_strdup_printf("/proc/%d/stat", pid);
        if (!g_file_get_contents(file, &stat, NULL, NULL))
                return TRUE;
        p = strrchr(stat, ')');
        if (p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) == 1 && (flags & 0x4))
                return TRUE;
        return FALSE;
}

guint64 fixture_proc_status_kib(pid_t pid, const char *field) {
        g_autofree char *file = g_strdup_printf("/proc/%d/status", pid), *text = NULL;
        const char *p;

        g_assert_true(g_file_get_contents(file, &text, NULL, NULL));
        p = strstr(text, field);
        g_assert_nonnull(p);
        return g_ascii_strtoull(p + strlen(field) + 1, NULL, 10);
}

gboolean fixture_proc_has_asan(pid_t pid) {
        g_autofree char *file = g_strdup_printf("/proc/%d/maps", pid), *text = NULL;

        g_assert_true(g_file_get_contents(file, &text, NULL, NULL));
        return strstr(text, "libasan") || strstr(text, "libclang_rt.asan");
}

static GDBusMessage *on_monitored(GDBusConnection *c, GDBusMessage *m, gboolean incoming, gpointer data) {
        FixtureWaitWatch *w = data;

        if (!incoming || g_dbus_message_get_message_type(m) != G_DBUS_MESSAGE_TYPE_METHOD_CALL)
                return m;
        if (g_strcmp0(g_dbus_message_get_member(m), "Wait") == 0 &&
            g_strcmp0(g_dbus_message_get_path(m), w->path) == 0) {
                g_atomic_int_set(&w->seen, 1);
                g_main_context_wakeup(NULL);
        }
        /* A monitor answers nothing: the calls it is shown go no further. */
        g_object_unref(m);
        return NULL;
}

static gboolean wait_seen(gpointer data) {
        return g_atomic_int_get(&((FixtureWaitWatch *) data)->seen);
}

void fixture_wait_watch_start(Fixture *f, FixtureWaitWatch *w) {
        const char *rules[] = { "type='method_call',interface='" JOB_IFACE "',member='Wait'", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;

        w->seen = 0;
        w->monitor = fixture_connect_other(f);
        g_dbus_connection_add_filter(w->monitor, on_monitored, w, NULL);
        r = g_dbus_connection_call_sync(w->monitor, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus.Monitoring", "BecomeMonitor",
                                        g_variant_new("(^asu)", rules, 0), NULL, G_DBUS_CALL_FLAGS_NONE, -1,
                                        NULL, &error);
        g_assert_no_error(error);
}

gboolean fixture_wait_watch_seen(FixtureWaitWatch *w) {
        return fixture_iterate_until(wait_seen, w);
}

void fixture_wait_watch_stop(FixtureWaitWatch *w) {
        g_autoptr(GError) error = NULL;

        g_assert_true(g_dbus_connection_close_sync(w->monitor, NULL, &error));
        g_assert_no_error(error);
        g_clear_object(&w->monitor);
}
