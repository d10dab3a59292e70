/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fault suite's clients that leave or stop reading: their jobs are cancelled or kept as asked,
 * and the daemon still answers everyone else. */
#include <stdio.h>
#include <unistd.h>

#include "fixture.h"

static const char *const argv_sleep[] = { "sleep", "1000", NULL };

static void test_call_disconnect(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusConnection) c = fixture_connect_other(f);
        g_autofree char *path = fixture_job_path(1), *path2 = fixture_job_path(2), *state = NULL,
                        *error_text = NULL;
        g_autoptr(GError) error = NULL;
        guint32 pid, pid2;

        /* A Call and a Communicate in flight, then the caller leaves. */
        g_dbus_connection_call(c, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call",
                               g_variant_new("(^as@a{sv})", argv_sleep, FIXTURE_NO_OPTIONS), NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, NULL, NULL);
        g_dbus_connection_call(
                c, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                g_variant_new("(^as@ay@a{sv})", argv_sleep, fixture_bytes("x", 1), FIXTURE_NO_OPTIONS), NULL,
                G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, NULL, NULL);
        fixture_sync_with_daemon(c);
        g_assert_true(fixture_wait_state(f, path, "running"));
        g_assert_true(fixture_wait_state(f, path2, "running"));
        pid = fixture_job_pid(f, path);
        pid2 = fixture_job_pid(f, path2);
        fixture_disconnect(f, c);

        /* Nobody can hear the answer: both jobs are cancelled and their processes stopped. */
        g_assert_true(fixture_wait_state(f, path, "cancelled"));
        g_assert_true(fixture_wait_state(f, path2, "cancelled"));
        fixture_job_outcome(f, path, &state, NULL, &error_text);
        g_assert_cmpstr(error_text, ==, "Cancelled");
        g_assert_true(fixture_wait_pid_exit(pid));
        g_assert_true(fixture_wait_pid_exit(pid2));
        fixture_assert_answers(f);
}

static void test_wait_disconnect(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusConnection) c = fixture_connect_other(f);
        g_autofree char *path = fixture_submit_sleeper(f, NULL), *state = NULL;
        g_autoptr(GError) error = NULL, error2 = NULL;
        g_autoptr(GVariant) r = NULL;

        /* Another connection waits, then leaves: the job is not its to stop. */
        g_dbus_connection_call(c, BUS_NAME, path, JOB_IFACE, "Wait", NULL, NULL, G_DBUS_CALL_FLAGS_NONE,
                               G_MAXINT, NULL, NULL, NULL);
        fixture_sync_with_daemon(c);
        fixture_disconnect(f, c);
        fixture_assert_answers(f);
        state = fixture_job_state(f, path);
        g_assert_cmpstr(state, ==, "running");

        /* Its owner still waits and cancels. */
        r = fixture_job_call(f, path, "Cancel", NULL, &error);
        g_assert_no_error(error);
        g_clear_pointer(&r, g_variant_unref);
        r = fixture_job_call(f, path, "Wait", NULL, &error2);
        g_assert_null(r);
        fixture_assert_error(error2, "org.procpool.Error.Cancelled", NULL);
        fixture_assert_answers(f);
}

static void test_submit_disconnect(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusConnection) c = fixture_connect_other(f);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r1 = NULL, r2 = NULL;
        const char *p1, *p2;
        g_autofree char *s1 = NULL, *s2 = NULL;

        /* Submit keeps its job by default; cancel-on-disconnect asks otherwise. */
        r1 = fixture_call_raw(c, MANAGER_PATH, MANAGER_IFACE, "Submit",
                              g_variant_new("(^as@a{sv})", argv_sleep, FIXTURE_NO_OPTIONS), &error);
        g_assert_no_error(error);
        r2 = fixture_call_raw(
                c, MANAGER_PATH, MANAGER_IFACE, "Submit",
                g_variant_new("(^as@a{sv})", argv_sleep,
                              fixture_options("cancel-on-disconnect", g_variant_new_boolean(TRUE), NULL)),
                &error);
        g_assert_no_error(error);
        g_variant_get(r1, "(&o)", &p1);
        g_variant_get(r2, "(&o)", &p2);
        g_assert_true(fixture_wait_state(f, p1, "running"));
        g_assert_true(fixture_wait_state(f, p2, "running"));
        fixture_disconnect(f, c);

        g_assert_true(fixture_wait_state(f, p2, "cancelled"));
        s1 = fixture_job_state(f, p1);
        g_assert_cmpstr(s1, ==, "running");
        fixture_assert_answers(f);
}

static void test_stuck_client(Fixture *f, gconstpointer unused) {
        const char *const argv[] = { "head", "-c", "1M", "/dev/zero", NULL };
        g_autoptr(GIOStream) s = fixture_raw_connect(f->address);
        g_autoptr(GDBusMessage) hello = g_dbus_message_new_method_call(
                "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello");
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) jobs = NULL, list = NULL;
        const guint n = 40;

        fixture_raw_send(s, hello, 1);
        for (guint i = 0; i < n; i++) {
                g_autoptr(GDBusMessage) m =
                        g_dbus_message_new_method_call(BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Communicate");
                g_dbus_message_set_body(
                        m, g_variant_new("(^as@ay@a{sv})", argv, fixture_bytes("", 0), FIXTURE_NO_OPTIONS));
                fixture_raw_send(s, m, 2 + i);
        }
        /* 40 MiB of replies wait for a reader that never comes; others are answered meanwhile. */
        for (guint i = 0; i < 3; i++)
                fixture_assert_answers(f);
        jobs = fixture_call(f, "ListJobs", NULL, &error);
        g_assert_no_error(error);
        list = g_variant_get_child_value(jobs, 0);
        g_assert_cmpuint(g_variant_n_children(list), >=, 3);
        g_assert_true(fixture_wait_counts(f, 0, 0));
        fixture_assert_answers(f);

        g_io_stream_close(s, NULL, NULL);
        fixture_assert_answers(f);
}

/* ---- main ---------------------------------------------------------------------------------------- */

#define ADD(name, setup, args, fn) FIXTURE_ADD("/procpool/fault/" name, setup, args, fn)

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        ADD("call-disconnect", fixture_setup, NULL, test_call_disconnect);
        ADD("wait-disconnect", fixture_setup, NULL, test_wait_disconnect);
        ADD("submit-disconnect", fixture_setup, NULL, test_submit_disconnect);
        ADD("stuck-client", fixture_setup, NULL, test_stuck_client);
        return g_test_run();
}
