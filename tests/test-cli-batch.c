/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* procpoolctl's batches: submit with several commands (CMD ::: ARG...) and map send their jobs in
 * SubmitMany calls, seen on the bus by a monitor; an older procpoold without SubmitMany gets Submits. */
#include <glib/gstdio.h>

#include "cli-common.h"

/* ---- a monitor that counts procpoold's method calls by member ---------------------------------------- */

typedef struct {
        GDBusConnection *conn;
        gint submit, submit_many, list_jobs; /* set in GDBus's worker thread */
} Calls;

static GDBusMessage *on_monitored(GDBusConnection *c, GDBusMessage *m, gboolean incoming, gpointer userdata) {
        Calls *calls = userdata;
        const char *member = g_dbus_message_get_member(m);

        if (!incoming || g_dbus_message_get_message_type(m) != G_DBUS_MESSAGE_TYPE_METHOD_CALL || !member)
                return m;
        if (g_str_equal(member, "Submit"))
                g_atomic_int_inc(&calls->submit);
        else if (g_str_equal(member, "SubmitMany"))
                g_atomic_int_inc(&calls->submit_many);
        else if (g_str_equal(member, "ListJobs"))
                g_atomic_int_inc(&calls->list_jobs);
        g_main_context_wakeup(NULL);
        /* A monitor answers nothing: the calls it is shown go no further. */
        g_object_unref(m);
        return NULL;
}

static void calls_start(Fixture *f, Calls *calls) {
        const char *rules[] = { "type='method_call',interface='" MANAGER_IFACE "'", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;

        *calls = (Calls) { .conn = fixture_connect_other(f) };
        g_dbus_connection_add_filter(calls->conn, on_monitored, calls, NULL);
        r = g_dbus_connection_call_sync(calls->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus.Monitoring", "BecomeMonitor",
                                        g_variant_new("(^asu)", rules, 0), NULL, G_DBUS_CALL_FLAGS_NONE, -1,
                                        NULL, &error);
        g_assert_no_error(error);
}

typedef struct {
        Calls *calls;
        gint want;
} CallsSync;

static gboolean list_jobs_seen(gpointer data) {
        CallsSync *s = data;
        return g_atomic_int_get(&s->calls->list_jobs) >= s->want;
}

/* Returns once the monitor has seen every call made before: a ListJobs sent now comes to it after them. */
static void calls_sync(Fixture *f, Calls *calls) {
        CallsSync s = { calls, g_atomic_int_get(&calls->list_jobs) + 1 };
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = fixture_call(f, "ListJobs", NULL, &error);

        g_assert_no_error(error);
        g_assert_true(fixture_iterate_until(list_jobs_seen, &s));
}

static void calls_stop(Calls *calls) {
        g_dbus_connection_close_sync(calls->conn, NULL, NULL);
        g_clear_object(&calls->conn);
}

static char *job_output(Fixture *f, guint64 id) {
        g_autofree char *path = fixture_job_path(id);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, out = NULL;

        g_assert_true(fixture_wait_finished(f, path));
        r = fixture_job_call(f, path, "GetOutput", NULL, &error);
        g_assert_no_error(error);
        out = g_variant_get_child_value(r, 0);
        return fixture_bytes_text(out);
}

/* ---- submit with several commands ---------------------------------------------------------------------- */

static const char *const pool2[] = { "--pool-size=2", NULL };

/* Three jobs, one call: their ids in the order of the arguments, each with its own argument in place of
 * {}, or appended. */
static void test_submit_many(Fixture *f, gconstpointer unused) {
        CtlResult r = {};
        Calls calls;

        calls_start(f, &calls);
        g_assert_cmpint(ctl(f, &r, "submit", "--label=batch", "--", "sh", "-c", "echo [{}]", ":::", "a b",
                            "c", "", NULL),
                        ==, 0);
        g_assert_cmpstr(r.out_str, ==, "1\n2\n3\n");
        g_assert_cmpstr(r.err_str, ==, "");
        calls_sync(f, &calls);
        g_assert_cmpint(g_atomic_int_get(&calls.submit_many), ==, 1);
        g_assert_cmpint(g_atomic_int_get(&calls.submit), ==, 0);
        {
                g_autofree char *a = job_output(f, 1), *b = job_output(f, 2), *c = job_output(f, 3);
                g_autofree char *path = fixture_job_path(2);
                g_autoptr(GVariant) label = fixture_get_property(f, path, JOB_IFACE, "Label");

                g_assert_cmpstr(a, ==, "[a b]\n");
                g_assert_cmpstr(b, ==, "[c]\n");
                g_assert_cmpstr(c, ==, "[]\n");
                g_assert_cmpstr(g_variant_get_string(label, NULL), ==, "batch");
        }

        /* Without {}, the argument is the last word; --json prints one object per job. */
        g_assert_cmpint(ctl(f, &r, "submit", "--json", "--", "echo", "x", ":::", "1", "2", NULL), ==, 0);
        g_assert_cmpstr(r.out_str, ==,
                        "{\"id\":4,\"path\":\"/org/procpool/Supervisor1/job/4\"}\n"
                        "{\"id\":5,\"path\":\"/org/procpool/Supervisor1/job/5\"}\n");
        {
                g_autofree char *a = job_output(f, 4), *b = job_output(f, 5);
                g_assert_cmpstr(a, ==, "x 1\n");
                g_assert_cmpstr(b, ==, "x 2\n");
        }

        /* --wait waits for all of them, and exits as wait does: 1 if one did not exit 0. */
        g_assert_cmpint(ctl(f, &r, "submit", "--wait", "--", "sh", "-c", "exit {}", ":::", "0", "3", NULL),
                        ==, 1);
        g_assert_cmpstr(r.out_str, ==, "6\n7\n");
        g_assert_nonnull(strstr(r.err_str, "Job 7 exited with code 3"));
        g_assert_cmpint(ctl(f, &r, "submit", "--wait", "--", "true", ":::", "a", "b", NULL), ==, 0);

        /* The separator wants something on either side. */
        g_assert_cmpint(ctl(f, &r, "submit", "--", "echo", ":::", NULL), ==, 2);
        g_assert_nonnull(strstr(r.err_str, "at least one argument after ':::'"));
        g_assert_cmpint(ctl(f, &r, "submit", "--", ":::", "a", NULL), ==, 2);
        g_assert_nonnull(strstr(r.err_str, "needs a command before ':::'"));
        calls_sync(f, &calls);
        g_assert_cmpint(g_atomic_int_get(&calls.submit), ==, 0);
        calls_stop(&calls);
        ctl_result_clear(&r);
}

static const char *const queue2[] = { "--pool-size=1", "--max-queued=2", NULL };

/* All or none: three commands where two fit queue nothing, and say so. */
static void test_submit_many_queue_full(Fixture *f, gconstpointer unused) {
        g_autofree char *sleeper = fixture_submit_sleeper(f, NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) jobs = NULL;
        CtlResult r = {};

        g_assert_cmpint(ctl(f, &r, "submit", "--", "true", ":::", "1", "2", "3", NULL), ==, 1);
        g_assert_cmpstr(r.out_str, ==, "");
        g_assert_nonnull(strstr(r.err_str, "3 jobs do not fit: the queue takes 2 more"));
        g_assert_cmpuint(fixture_manager_u(f, "Queued"), ==, 0);
        fixture_job_call_ok(f, sleeper, "Cancel", NULL);
        ctl_result_clear(&r);
}

/* ---- map ------------------------------------------------------------------------------------------------ */

/* 300 lines go out in a few SubmitMany calls, none of them alone; the output is as before. */
static void test_map_batches(Fixture *f, gconstpointer unused) {
        const char *args[] = { "map", "--keep-order", "--", "echo", "line", NULL };
        g_autoptr(GString) input = g_string_new(NULL), expected = g_string_new(NULL);
        g_autoptr(GBytes) in = NULL;
        CtlResult r = {};
        Calls calls;

        for (int i = 1; i <= 300; i++) {
                g_string_append_printf(input, "%d\n", i);
                g_string_append_printf(expected, "line %d\n", i);
        }
        in = g_bytes_new(input->str, input->len);
        calls_start(f, &calls);
        ctl_run_full(f->address, NULL, NULL, in, args, &r);
        g_assert_cmpint(r.status, ==, 0);
        g_assert_cmpstr(r.out_str, ==, expected->str);
        calls_sync(f, &calls);
        g_assert_cmpint(g_atomic_int_get(&calls.submit), ==, 0);
        /* At most 128 lines a call: at least 3 calls, and far fewer than lines. */
        g_assert_cmpint(g_atomic_int_get(&calls.submit_many), >=, 3);
        g_assert_cmpint(g_atomic_int_get(&calls.submit_many), <=, 60);
        calls_stop(&calls);
        ctl_result_clear(&r);
}

/* ---- an older procpoold: Submit only --------------------------------------------------------------------- */

static const char old_daemon_xml[] = "<node><interface name='org.procpool.Supervisor1'>"
                                     "<method name='Submit'><arg type='as' name='argv' direction='in'/>"
                                     "<arg type='a{sv}' name='options' direction='in'/>"
                                     "<arg type='o' name='job' direction='out'/></method>"
                                     "</interface></node>";

typedef struct {
        GMainContext *context;
        GMainLoop *loop;
        GDBusConnection *conn;
        const char *address;
        GPtrArray *argvs; /* what each Submit asked for, as "w1 w2 ..." */
        guint n;
        GMutex lock;
        GCond ready;
        gboolean up;
} OldDaemon;

static void old_submit(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                       const char *method, GVariant *params, GDBusMethodInvocation *inv, gpointer userdata) {
        OldDaemon *d = userdata;
        g_autofree const char **argv = NULL;
        g_autofree char *job = NULL;

        g_variant_get(params, "(^a&s@a{sv})", &argv, NULL);
        g_mutex_lock(&d->lock);
        g_ptr_array_add(d->argvs, g_strjoinv(" ", (char **) argv));
        job = g_strdup_printf(MANAGER_PATH "/job/%u", ++d->n);
        g_mutex_unlock(&d->lock);
        g_dbus_method_invocation_return_value(inv, g_variant_new("(o)", job));
}

static const GDBusInterfaceVTable old_vtable = { .method_call = old_submit };

static gpointer old_daemon_thread(gpointer data) {
        OldDaemon *d = data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusNodeInfo) node = g_dbus_node_info_new_for_xml(old_daemon_xml, &error);
        g_autoptr(GVariant) r = NULL;

        g_assert_no_error(error);
        g_main_context_push_thread_default(d->context);
        d->conn = fixture_connect(d->address, &error);
        g_assert_no_error(error);
        g_dbus_connection_register_object(d->conn, MANAGER_PATH, node->interfaces[0], &old_vtable, d, NULL,
                                          &error);
        g_assert_no_error(error);
        r = g_dbus_connection_call_sync(d->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "RequestName",
                                        g_variant_new("(su)", BUS_NAME, 4 /* DO_NOT_QUEUE */), NULL,
                                        G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_no_error(error);
        g_mutex_lock(&d->lock);
        d->up = TRUE;
        g_cond_signal(&d->ready);
        g_mutex_unlock(&d->lock);
        g_main_loop_run(d->loop);
        g_dbus_connection_close_sync(d->conn, NULL, NULL);
        g_clear_object(&d->conn);
        g_main_context_pop_thread_default(d->context);
        return NULL;
}

/* submit with several commands falls back to one Submit each, in order, where SubmitMany is unknown. */
static void test_submit_fallback(Fixture *f, gconstpointer unused) {
        OldDaemon d = { .context = g_main_context_new(),
                        .address = f->address,
                        .argvs = g_ptr_array_new_with_free_func(g_free) };
        GThread *t;
        CtlResult r = {};

        d.loop = g_main_loop_new(d.context, FALSE);
        g_mutex_init(&d.lock);
        g_cond_init(&d.ready);
        t = g_thread_new("old-procpoold", old_daemon_thread, &d);
        g_mutex_lock(&d.lock);
        while (!d.up)
                g_cond_wait(&d.ready, &d.lock);
        g_mutex_unlock(&d.lock);

        g_assert_cmpint(ctl(f, &r, "submit", "--", "echo", "{}!", ":::", "a", "b", "c", NULL), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "1\n2\n3\n");
        g_assert_cmpstr(r.err_str, ==, "");
        g_mutex_lock(&d.lock);
        g_assert_cmpuint(d.argvs->len, ==, 3);
        g_assert_cmpstr(g_ptr_array_index(d.argvs, 0), ==, "echo a!");
        g_assert_cmpstr(g_ptr_array_index(d.argvs, 1), ==, "echo b!");
        g_assert_cmpstr(g_ptr_array_index(d.argvs, 2), ==, "echo c!");
        g_mutex_unlock(&d.lock);

        g_main_loop_quit(d.loop);
        g_thread_join(t);
        g_main_loop_unref(d.loop);
        g_main_context_unref(d.context);
        g_ptr_array_unref(d.argvs);
        g_mutex_clear(&d.lock);
        g_cond_clear(&d.ready);
        ctl_result_clear(&r);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        FIXTURE_ADD("/procpool/cli/submit/many", fixture_setup, pool2, test_submit_many);
        FIXTURE_ADD("/procpool/cli/submit/many-queue-full", fixture_setup, queue2,
                    test_submit_many_queue_full);
        FIXTURE_ADD("/procpool/cli/map/submit-many", fixture_setup, pool2, test_map_batches);
        FIXTURE_ADD("/procpool/cli/submit/many-fallback", fixture_setup_no_daemon, NULL,
                    test_submit_fallback);
        return g_test_run();
}
