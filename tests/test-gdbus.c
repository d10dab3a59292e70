/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GDBus clients as desktop apps use them: a proxy's cached properties are final by the time JobFinished
 * or the answer to Wait, Call or Communicate arrives, a released job is gone before Release returns, and
 * JobCgroups says whether jobs run in cgroups. */
#include "fixture.h"

/* A job that waits for gate, burns a little CPU (so that its final CPUUsageUSec is worth checking), and
 * exits 7. */
static char *submit_gated(Fixture *f, const char *gate) {
        g_autofree char *wait = fixture_gate_wait_sh(gate);
        g_autofree char *script =
                g_strdup_printf("%s; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 7", wait);
        const char *argv[] = { "sh", "-c", script, NULL };

        return fixture_submit(f, argv, NULL);
}

static GDBusProxy *job_proxy(Fixture *f, const char *path) {
        g_autoptr(GError) error = NULL;
        GDBusProxy *p = g_dbus_proxy_new_sync(f->conn, G_DBUS_PROXY_FLAGS_NONE, NULL, BUS_NAME, path,
                                              JOB_IFACE, NULL, &error);

        g_assert_no_error(error);
        return p;
}

static char *cached_string(GDBusProxy *p, const char *name) {
        g_autoptr(GVariant) v = g_dbus_proxy_get_cached_property(p, name);

        g_assert_nonnull(v);
        return g_variant_dup_string(v, NULL);
}

static gint64 cached_number(GDBusProxy *p, const char *name) {
        g_autoptr(GVariant) v = g_dbus_proxy_get_cached_property(p, name);

        g_assert_nonnull(v);
        if (g_variant_is_of_type(v, G_VARIANT_TYPE_INT32))
                return g_variant_get_int32(v);
        if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32))
                return g_variant_get_uint32(v);
        return (gint64) g_variant_get_uint64(v);
}

/* What the cache says and what a fresh Get says must agree, for every property of the job. */
static void assert_cache_is_live(Fixture *f, GDBusProxy *p, const char *path) {
        g_auto(GStrv) names = g_dbus_proxy_get_cached_property_names(p);

        g_assert_nonnull(names);
        g_assert_true(g_strv_contains((const char *const *) names, "CPUUsageUSec"));
        for (char **n = names; *n; n++) {
                g_autoptr(GVariant) cached = g_dbus_proxy_get_cached_property(p, *n);
                g_autoptr(GVariant) live = fixture_get_property(f, path, JOB_IFACE, *n);

                g_autofree char *c = g_variant_print(cached, TRUE), *l = g_variant_print(live, TRUE);

                g_test_message("%s: cached %s, live %s", *n, c, l);
                g_assert_true(g_variant_equal(cached, live));
        }
}

typedef struct {
        GDBusProxy *proxy;
        char *state; /* State in the cache as JobFinished arrived */
        gint64 rc;
        guint64 finished_at;
        gboolean seen;
} FinishedSeen;

static void on_job_finished(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                            const char *member, GVariant *params, gpointer data) {
        FinishedSeen *s = data;

        s->state = cached_string(s->proxy, "State");
        s->rc = cached_number(s->proxy, "ReturnCode");
        s->finished_at = (guint64) cached_number(s->proxy, "FinishedAt");
        s->seen = TRUE;
}

static gboolean finished_seen(gpointer data) {
        return ((FinishedSeen *) data)->seen;
}

static void test_proxy_in_job_finished(Fixture *f, gconstpointer unused) {
        g_autofree char *gate = fixture_gate_path(f, "go");
        g_autofree char *path = submit_gated(f, gate);
        g_autoptr(GDBusProxy) proxy = job_proxy(f, path);
        FinishedSeen seen = { .proxy = proxy };
        guint sub;

        sub = g_dbus_connection_signal_subscribe(f->conn, NULL, MANAGER_IFACE, "JobFinished", MANAGER_PATH,
                                                 NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_job_finished, &seen,
                                                 NULL);
        fixture_gate_open(gate);
        g_assert_true(fixture_iterate_until(finished_seen, &seen));
        g_dbus_connection_signal_unsubscribe(f->conn, sub);

        g_assert_cmpstr(seen.state, ==, "exited");
        g_assert_cmpint(seen.rc, ==, 7);
        g_assert_cmpuint(seen.finished_at, >, 0);
        /* CPUUsageUSec and MemoryPeak, which send no signal while the job runs, end right too. */
        assert_cache_is_live(f, proxy, path);
        g_free(seen.state);
}

/* What the cache said in the reply's own callback: one main loop iteration may dispatch the reply and a
 * later signal together, so reading after the wait would hide a signal that came after the answer. */
typedef struct {
        GDBusProxy *proxy; /* the job's proxy, or NULL: the only job of om */
        GDBusObjectManager *om;
        GDBusProxy *job; /* the proxy read */
        char *state;
        gint64 rc;
        gboolean done;
} ReplySeen;

static GDBusProxy *only_job(GDBusObjectManager *om);

static void on_reply(GObject *source, GAsyncResult *result, gpointer data) {
        g_autoptr(GVariant) r = NULL;
        g_autoptr(GError) error = NULL;
        ReplySeen *s = data;

        r = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        g_assert_no_error(error);
        s->job = s->proxy ? g_object_ref(s->proxy) : only_job(s->om);
        s->state = cached_string(s->job, "State");
        s->rc = cached_number(s->job, "ReturnCode");
        s->done = TRUE;
}

static gboolean reply_seen(gpointer data) {
        return ((ReplySeen *) data)->done;
}

static void reply_seen_clear(ReplySeen *s) {
        g_clear_object(&s->job);
        g_free(s->state);
}

static void test_proxy_after_wait(Fixture *f, gconstpointer unused) {
        g_autofree char *gate = fixture_gate_path(f, "go");
        g_autofree char *path = submit_gated(f, gate);
        g_autoptr(GDBusProxy) proxy = job_proxy(f, path);
        ReplySeen seen = { .proxy = proxy };

        g_assert_true(fixture_wait_state(f, path, "running"));
        /* On the proxy's connection, in its main context, as g_dbus_proxy_call() would. */
        g_dbus_connection_call(f->conn, BUS_NAME, path, JOB_IFACE, "Wait", NULL, NULL, G_DBUS_CALL_FLAGS_NONE,
                               G_MAXINT, NULL, on_reply, &seen);
        fixture_sync_with_daemon(f->conn); /* the Wait is held before the job may end */
        fixture_gate_open(gate);
        g_assert_true(fixture_iterate_until(reply_seen, &seen));

        g_assert_cmpstr(seen.state, ==, "exited");
        g_assert_cmpint(seen.rc, ==, 7);
        assert_cache_is_live(f, proxy, path);
        reply_seen_clear(&seen);
}

static GDBusObjectManager *object_manager(Fixture *f) {
        g_autoptr(GError) error = NULL;
        GDBusObjectManager *om =
                g_dbus_object_manager_client_new_sync(f->conn, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_NONE,
                                                      BUS_NAME, MANAGER_PATH, NULL, NULL, NULL, NULL, &error);

        g_assert_no_error(error);
        return om;
}

/* The one job among the managed objects (the pools are there too). */
static GDBusProxy *only_job(GDBusObjectManager *om) {
        GList *objects = g_dbus_object_manager_get_objects(om);
        GDBusProxy *p = NULL;
        guint n = 0;

        for (GList *o = objects; o; o = o->next) {
                GDBusInterface *i = g_dbus_object_get_interface(o->data, JOB_IFACE);
                if (!i)
                        continue;
                n++;
                if (!p)
                        p = G_DBUS_PROXY(i);
                else
                        g_object_unref(i);
        }
        g_list_free_full(objects, g_object_unref);
        g_assert_cmpuint(n, ==, 1);
        return p;
}

/* Call and Communicate: the job's proxy in an ObjectManager client is final when the answer comes. */
static void object_manager_after_call(Fixture *f, const char *method) {
        g_autoptr(GDBusObjectManager) om = object_manager(f);
        const char *argv[] = { "sh", "-c", "echo out; exit 3", NULL };
        ReplySeen seen = { .om = om };
        GVariant *params;

        if (g_str_equal(method, "Call"))
                params = g_variant_new("(^as@a{sv})", argv, FIXTURE_NO_OPTIONS);
        else
                params = g_variant_new("(^as@ay@a{sv})", argv, fixture_bytes("", 0), FIXTURE_NO_OPTIONS);
        g_dbus_connection_call(f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, method, params, NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, on_reply, &seen);
        g_assert_true(fixture_iterate_until(reply_seen, &seen));

        g_assert_cmpstr(seen.state, ==, "exited");
        g_assert_cmpint(seen.rc, ==, 3);
        assert_cache_is_live(f, seen.job, g_dbus_proxy_get_object_path(seen.job));
        reply_seen_clear(&seen);
}

static void test_object_manager_after_call(Fixture *f, gconstpointer unused) {
        object_manager_after_call(f, "Call");
}

static void test_object_manager_after_communicate(Fixture *f, gconstpointer unused) {
        object_manager_after_call(f, "Communicate");
}

typedef struct ObjectWait {
        GDBusObjectManager *om;
        const char *path;
} ObjectWait;

static gboolean has_object(gpointer data) {
        ObjectWait *w = data;
        g_autoptr(GDBusObject) o = g_dbus_object_manager_get_object(w->om, w->path);

        return o != NULL;
}

/* Release answers after InterfacesRemoved: the ObjectManager client has dropped the job by then. */
static void test_release_after_removed(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusObjectManager) om = object_manager(f);
        const char *argv[] = { "true", NULL };
        g_autofree char *path = fixture_submit(f, argv, NULL);
        g_autoptr(GDBusObject) before = NULL, after = NULL;
        FixtureReply reply = {};

        g_assert_true(fixture_wait_finished(f, path));
        g_assert_true(fixture_iterate_until(has_object, &(ObjectWait) { om, path }));
        before = g_dbus_object_manager_get_object(om, path);
        g_assert_nonnull(before);

        g_dbus_connection_call(f->conn, BUS_NAME, path, JOB_IFACE, "Release", NULL, NULL,
                               G_DBUS_CALL_FLAGS_NONE, -1, NULL, fixture_on_reply, &reply);
        g_assert_true(fixture_reply_wait(&reply));
        g_assert_no_error(reply.error);
        after = g_dbus_object_manager_get_object(om, path);
        g_assert_null(after);
        fixture_reply_clear(&reply);
}

/* JobCgroups says what the daemon does: on a test bus, outside a unit with Delegate=yes, it is false. */
static void test_job_cgroups(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusProxy) manager = g_dbus_proxy_new_sync(
                f->conn, G_DBUS_PROXY_FLAGS_NONE, NULL, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, NULL, &error);
        g_autoptr(GVariant) v = NULL;

        g_assert_no_error(error);
        v = g_dbus_proxy_get_cached_property(manager, "JobCgroups");
        g_assert_nonnull(v);
        g_assert_true(g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN));
        g_assert_cmpint(g_variant_get_boolean(v), ==, fixture_per_job_cgroups(f));
        if (!g_getenv("INVOCATION_ID"))
                g_assert_false(g_variant_get_boolean(v));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        FIXTURE_ADD("/procpool/gdbus/proxy-in-job-finished", fixture_setup, NULL, test_proxy_in_job_finished);
        FIXTURE_ADD("/procpool/gdbus/proxy-after-wait", fixture_setup, NULL, test_proxy_after_wait);
        FIXTURE_ADD("/procpool/gdbus/object-manager-after-call", fixture_setup, NULL,
                    test_object_manager_after_call);
        FIXTURE_ADD("/procpool/gdbus/object-manager-after-communicate", fixture_setup, NULL,
                    test_object_manager_after_communicate);
        FIXTURE_ADD("/procpool/gdbus/release-after-removed", fixture_setup, NULL, test_release_after_removed);
        FIXTURE_ADD("/procpool/gdbus/job-cgroups", fixture_setup, NULL, test_job_cgroups);
        return g_test_run();
}
