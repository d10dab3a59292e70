/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Test fixture: a private bus (GTestDBus) with procpoold from the build tree on it. */
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>

#include "fixture.h"

static const char *daemon_path(void) {
        const char *p = g_getenv("PROCPOOLD");
        g_assert_nonnull(p); /* set by meson test */
        return p;
}

GPid fixture_start_daemon(Fixture *f, const char *const *extra_args) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;
        GPid pid;

        g_ptr_array_add(argv, g_strdup(daemon_path()));
        g_ptr_array_add(argv, g_strdup_printf("--address=%s", f->address));
        for (const char *const *a = extra_args; a && *a; a++)
                g_ptr_array_add(argv, g_strdup(*a));
        g_ptr_array_add(argv, NULL);

        g_assert_true(g_spawn_async(NULL, (char **) argv->pdata, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                                    NULL, &pid, &error));
        g_assert_no_error(error);

        /* Ready means the name is owned. */
        for (int i = 0; i < 1000; i++) {
                g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                        f->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                        "NameHasOwner", g_variant_new("(s)", BUS_NAME), G_VARIANT_TYPE("(b)"),
                        G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
                gboolean has = FALSE;
                if (r)
                        g_variant_get(r, "(b)", &has);
                if (has)
                        return pid;
                g_assert_cmpint(waitpid(pid, NULL, WNOHANG), ==, 0); /* it must not have died */
                g_usleep(10000);
        }
        g_error("procpoold did not take its bus name within 10 s");
}

int fixture_stop_daemon(GPid pid) {
        int status = 0;

        if (pid <= 0)
                return 0;
        (void) kill(pid, SIGTERM);
        for (int i = 0; i < 1000; i++) {
                pid_t r = waitpid(pid, &status, WNOHANG);
                if (r == pid)
                        return status;
                g_usleep(10000);
        }
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, &status, 0);
        g_error("procpoold did not stop within 10 s of SIGTERM");
}

void fixture_setup(Fixture *f, gconstpointer extra_args) {
        g_autoptr(GError) error = NULL;

        f->bus = g_test_dbus_new(G_TEST_DBUS_NONE);
        g_test_dbus_up(f->bus);
        f->address = g_strdup(g_test_dbus_get_bus_address(f->bus));
        f->conn = g_dbus_connection_new_for_address_sync(
                f->address, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION, NULL, NULL, &error);
        g_assert_no_error(error);
        f->daemon_pid = fixture_start_daemon(f, extra_args);
}

void fixture_teardown(Fixture *f, gconstpointer extra_args) {
        int status = fixture_stop_daemon(f->daemon_pid);

        /* Every fixture's daemon must stop cleanly: exit 0 on SIGTERM. */
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        g_clear_object(&f->conn);
        g_test_dbus_down(f->bus);
        g_clear_object(&f->bus);
        g_free(f->address);
}

GVariant *fixture_call(Fixture *f, const char *method, GVariant *params, GError **error) {
        return g_dbus_connection_call_sync(f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, method, params,
                                           NULL, G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, error);
}

GVariant *fixture_job_call(Fixture *f, const char *job_path, const char *method, GVariant *params,
                           GError **error) {
        return g_dbus_connection_call_sync(f->conn, BUS_NAME, job_path, JOB_IFACE, method, params, NULL,
                                           G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, error);
}

GVariant *fixture_get_property(Fixture *f, const char *path, const char *iface, const char *name) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                f->conn, BUS_NAME, path, "org.freedesktop.DBus.Properties", "Get",
                g_variant_new("(ss)", iface, name), G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                &error);
        GVariant *v;

        g_assert_no_error(error);
        g_variant_get(r, "(v)", &v);
        return v;
}

char *fixture_submit(Fixture *f, const char *const *argv, GVariant *options) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        char *path;

        if (!options)
                options = g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0);
        r = fixture_call(f, "Submit", g_variant_new("(^as@a{sv})", argv, options), &error);
        g_assert_no_error(error);
        g_variant_get(r, "(o)", &path);
        return path;
}

gboolean fixture_wait_state(Fixture *f, const char *job_path, const char *state) {
        for (int i = 0; i < 2000; i++) {
                g_autoptr(GVariant) v = fixture_get_property(f, job_path, JOB_IFACE, "State");
                if (g_str_equal(g_variant_get_string(v, NULL), state))
                        return TRUE;
                g_usleep(10000);
        }
        return FALSE;
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

char *fixture_shell(const char *script) {
        g_autoptr(GError) error = NULL;
        char *out = NULL;
        const char *argv[] = { "/bin/sh", "-c", script, NULL };

        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, NULL,
                                   &error));
        g_assert_no_error(error);
        return g_strstrip(out);
}
