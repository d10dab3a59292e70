/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Test fixture: a private bus (GTestDBus) with procpoold from the build tree on it. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
                own_state = own_state || g_str_has_prefix(*a, "--state-dir=") || g_str_equal(*a, "--ephemeral");
        }
        if (!own_state) {
                if (!f->state_dir) {
                        f->state_dir = g_dir_make_tmp("procpool-state-XXXXXX", &error);
                        g_assert_no_error(error);
                }
                g_ptr_array_add(argv, g_strdup_printf("--state-dir=%s", f->state_dir));
        }
        g_ptr_array_add(argv, NULL);

        g_assert_true(g_spawn_async(NULL, (char **) argv->pdata, (char **) envp, G_SPAWN_DO_NOT_REAP_CHILD,
                                    die_with_test, NULL, &pid, &error));
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

static void connect_test(Fixture *f) {
        g_autoptr(GError) error = NULL;

        f->conn = g_dbus_connection_new_for_address_sync(
                f->address, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION, NULL, NULL, &error);
        g_assert_no_error(error);
}

void fixture_setup(Fixture *f, gconstpointer extra_args) {
        f->bus = g_test_dbus_new(G_TEST_DBUS_NONE);
        g_test_dbus_up(f->bus);
        f->address = g_strdup(g_test_dbus_get_bus_address(f->bus));
        connect_test(f);
        f->daemon_pid = fixture_start_daemon(f, extra_args);
}

void fixture_setup_no_daemon(Fixture *f, gconstpointer unused) {
        f->bus = g_test_dbus_new(G_TEST_DBUS_NONE);
        g_test_dbus_up(f->bus);
        f->address = g_strdup(g_test_dbus_get_bus_address(f->bus));
        connect_test(f);
}

/* GTestDBus's configuration admits only the uid that started the bus; this one admits everyone. */
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

void fixture_setup_open_bus(Fixture *f, gconstpointer extra_args) {
        g_autoptr(GError) error = NULL;
        g_autofree char *config = NULL, *config_arg = NULL;
        g_autoptr(GString) address = g_string_new(NULL);
        int fd, out = -1;

        fd = g_file_open_tmp("procpool-bus-XXXXXX.conf", &config, &error);
        g_assert_no_error(error);
        g_assert_true(g_file_set_contents(config, open_bus_config, -1, &error));
        g_assert_no_error(error);
        close(fd);
        config_arg = g_strdup_printf("--config-file=%s", config);

        const char *argv[] = { "dbus-daemon", config_arg, "--nofork", "--print-address", NULL };
        g_assert_true(g_spawn_async_with_pipes(NULL, (char **) argv, NULL,
                                               G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD, die_with_test, NULL,
                                               &f->bus_pid, NULL, &out, NULL, &error));
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
        f->daemon_pid = fixture_start_daemon(f, extra_args);
}

void fixture_teardown(Fixture *f, gconstpointer extra_args) {
        int status = fixture_stop_daemon(f->daemon_pid);

        /* Every fixture's daemon must stop cleanly: exit 0 on SIGTERM. */
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        g_clear_object(&f->conn);
        if (f->bus) {
                g_test_dbus_down(f->bus);
                g_clear_object(&f->bus);
        }
        if (f->bus_pid > 0) {
                (void) kill(f->bus_pid, SIGTERM);
                (void) waitpid(f->bus_pid, NULL, 0);
                f->bus_pid = 0;
        }
        g_free(f->address);
        if (f->state_dir) {
                fixture_remove_tree(f->state_dir);
                g_clear_pointer(&f->state_dir, g_free);
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

gboolean fixture_iterate_until(gboolean (*cond)(gpointer data), gpointer data) {
        gint64 end = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;

        while (!cond(data)) {
                if (g_get_monotonic_time() > end)
                        return FALSE;
                /* Not blocking: a condition may also change outside the main context. */
                if (!g_main_context_iteration(NULL, FALSE))
                        g_usleep(2000);
        }
        return TRUE;
}

int fixture_call_argv(Fixture *f, const char *const *argv, GVariant *options, GError **error) {
        g_autoptr(GVariant) r = NULL;
        int rc;

        if (!options)
                options = g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0);
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
        GVariant *in;

        if (!options)
                options = g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0);
        in = g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, input ? input : "", input_size, 1);
        r = fixture_call(f, "Communicate", g_variant_new("(^as@ay@a{sv})", argv, in, options), error);
        if (!r)
                return FALSE;
        g_variant_get(r, "(i@ay@ay)", ret_rc, &out, &err);
        *ret_stdout = g_variant_get_data_as_bytes(out);
        *ret_stderr = g_variant_get_data_as_bytes(err);
        return TRUE;
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

void fixture_assert_error(const GError *error, const char *name, const char *text) {
        g_autofree char *remote = NULL;

        g_assert_nonnull(error);
        remote = g_dbus_error_get_remote_error(error);
        if (g_strcmp0(remote, name) != 0)
                g_error("expected %s, got %s: %s", name, remote, error->message);
        if (text && !strstr(error->message, text))
                g_error("expected %s to mention \"%s\": %s", name, text, error->message);
}
