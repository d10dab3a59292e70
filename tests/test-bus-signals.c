/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* --bus-signals=subscribed: signals go on the bus only while a bus client is subscribed (Subscribe(),
 * counted per call, until Unsubscribe() or it leaves the bus, also across a re-exec); the default sends
 * them to every match rule whether or not anyone subscribed. */
#include <string.h>
#include <sys/wait.h>

#include "fixture.h"

static const char *const subscribed_args[] = { "--bus-signals=subscribed", NULL };
static const char *const always_args[] = { "--bus-signals=always", NULL };

/* What one connection heard of procpoold's signals (those on its objects). */
typedef struct {
        guint added, changed, finished, removed, other;
} Heard;

static void on_signal(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                      const char *member, GVariant *params, gpointer userdata) {
        Heard *h = userdata;

        if (!g_str_has_prefix(path, MANAGER_PATH))
                return;
        if (g_str_equal(member, "JobFinished"))
                h->finished++;
        else if (g_str_equal(member, "InterfacesAdded"))
                h->added++;
        else if (g_str_equal(member, "InterfacesRemoved"))
                h->removed++;
        else if (g_str_equal(member, "PropertiesChanged"))
                h->changed++;
        else
                h->other++;
}

static guint heard_total(const Heard *h) {
        return h->added + h->changed + h->finished + h->removed + h->other;
}

/* A client of the bus with a match rule for every signal: it hears whatever procpoold sends on the bus. */
typedef struct {
        GDBusConnection *c;
        guint id;
        Heard heard;
} Listener;

static void listener_start(Fixture *f, Listener *l) {
        *l = (Listener) { .c = fixture_connect_other(f) };
        l->id = g_dbus_connection_signal_subscribe(l->c, NULL, NULL, NULL, NULL, NULL,
                                                   G_DBUS_SIGNAL_FLAGS_NONE, on_signal, &l->heard, NULL);
        /* The match rule is in before the Ping's reply: the bus handles a connection's messages in order. */
        fixture_sync_with_daemon(l->c);
}

static void listener_stop(Listener *l) {
        if (!l->c)
                return;
        g_dbus_connection_signal_unsubscribe(l->c, l->id);
        g_clear_object(&l->c);
}

/* Lets whatever procpoold sent before now reach l: the bus keeps the order of one sender's messages to
 * one receiver, so what it sent before this Ping's reply has been dispatched once the reply is in. */
static void drain(Listener *l) {
        fixture_sync_with_daemon(l->c);
        while (g_main_context_iteration(NULL, FALSE))
                ;
}

static void call_manager(GDBusConnection *c, const char *method) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = fixture_call_raw(c, MANAGER_PATH, MANAGER_IFACE, method, NULL, &error);

        g_assert_no_error(error);
}

/* Runs one job to its end with Call: the job's signals, if any were sent, went out before its reply. */
static void run_job(Fixture *f) {
        const char *const argv[] = { "true", NULL };

        g_assert_cmpint(fixture_call_argv(f, argv, NULL, NULL), ==, 0);
}

/* Every listener hears the job from its InterfacesAdded to its JobFinished. */
static void assert_heard_job(Listener *l) {
        g_assert_cmpuint(l->heard.added, >=, 1);
        g_assert_cmpuint(l->heard.changed, >=, 1);
        g_assert_cmpuint(l->heard.finished, ==, 1);
}

/* With nobody subscribed, a client with a match rule hears nothing of jobs that run; once one client
 * subscribed, the signals are on the bus again, for every match rule. */
static void test_unsubscribed(Fixture *f, gconstpointer unused) {
        Listener a, b;

        listener_start(f, &a);
        listener_start(f, &b);

        run_job(f);
        drain(&a);
        drain(&b);
        g_assert_cmpuint(heard_total(&a.heard), ==, 0);
        g_assert_cmpuint(heard_total(&b.heard), ==, 0);

        call_manager(b.c, "Subscribe");
        run_job(f);
        drain(&a);
        drain(&b);
        assert_heard_job(&b);
        assert_heard_job(&a);

        listener_stop(&a);
        listener_stop(&b);
}

/* Subscribe() counts per call: two need two Unsubscribe()s, and then nothing comes. An Unsubscribe()
 * more is no error. */
static void test_unsubscribe(Fixture *f, gconstpointer unused) {
        Listener a, b;

        listener_start(f, &a);
        listener_start(f, &b);
        call_manager(b.c, "Subscribe");
        call_manager(b.c, "Subscribe");
        call_manager(b.c, "Unsubscribe");
        run_job(f);
        drain(&a);
        assert_heard_job(&a);

        a.heard = (Heard) {};
        call_manager(b.c, "Unsubscribe");
        run_job(f);
        drain(&a);
        g_assert_cmpuint(heard_total(&a.heard), ==, 0);

        call_manager(b.c, "Unsubscribe");
        listener_stop(&a);
        listener_stop(&b);
}

/* A subscriber that leaves the bus is subscribed no more: the daemon sends nothing after it left. */
static void test_subscriber_left(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusConnection) s = fixture_connect_other(f);
        Listener a;

        listener_start(f, &a);
        call_manager(s, "Subscribe");
        run_job(f);
        drain(&a);
        assert_heard_job(&a);

        a.heard = (Heard) {};
        fixture_disconnect(f, s);
        run_job(f);
        drain(&a);
        g_assert_cmpuint(heard_total(&a.heard), ==, 0);
        listener_stop(&a);
}

static void on_owner_changed(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                             const char *member, GVariant *params, gpointer userdata) {
        const char *name, *old_owner, *new_owner;

        g_variant_get(params, "(&s&s&s)", &name, &old_owner, &new_owner);
        if (*new_owner)
                *(gboolean *) userdata = TRUE;
}

static gboolean is_true(gpointer data) {
        return *(gboolean *) data;
}

/* A re-exec keeps who subscribed: the signals go on, and stop once the subscriber unsubscribes. */
static void test_reexec(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        gboolean back = FALSE;
        Listener a;
        guint sub;

        listener_start(f, &a);
        call_manager(a.c, "Subscribe");
        /* The name's next owner is the new image: the old one keeps it until its exec. */
        sub = g_dbus_connection_signal_subscribe(f->conn, "org.freedesktop.DBus", "org.freedesktop.DBus",
                                                 "NameOwnerChanged", "/org/freedesktop/DBus", BUS_NAME,
                                                 G_DBUS_SIGNAL_FLAGS_NONE, on_owner_changed, &back, NULL);
        fixture_sync_with_daemon(f->conn);
        g_autoptr(GVariant) r = fixture_call(f, "Reexecute", NULL, &error);
        g_assert_no_error(error);
        g_assert_true(fixture_iterate_until(is_true, &back));
        g_dbus_connection_signal_unsubscribe(f->conn, sub);
        a.heard = (Heard) {};
        run_job(f);
        drain(&a);
        assert_heard_job(&a);

        a.heard = (Heard) {};
        call_manager(a.c, "Unsubscribe");
        run_job(f);
        drain(&a);
        g_assert_cmpuint(heard_total(&a.heard), ==, 0);
        listener_stop(&a);
}

/* The default sends to every match rule, subscribed or not; Subscribe() and Unsubscribe() are accepted
 * and change nothing. */
static void test_always(Fixture *f, gconstpointer unused) {
        Listener a;

        listener_start(f, &a);
        run_job(f);
        drain(&a);
        assert_heard_job(&a);

        a.heard = (Heard) {};
        call_manager(a.c, "Subscribe");
        call_manager(a.c, "Unsubscribe");
        call_manager(a.c, "Unsubscribe");
        run_job(f);
        drain(&a);
        assert_heard_job(&a);
        listener_stop(&a);
}

/* An unknown value is refused before the daemon starts anything. */
static void test_usage(Fixture *f, gconstpointer unused) {
        const char *argv[] = { g_getenv("PROCPOOLD"), "--bus-signals=never", "--ephemeral", NULL };
        g_autofree char *err = NULL;
        g_autoptr(GError) error = NULL;
        int status;

        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                                   &err, &status, &error));
        g_assert_no_error(error);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), !=, 0);
        g_assert_nonnull(strstr(err, "bus-signals"));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
#define ADD(name, args, fn) FIXTURE_ADD("/procpool/bus-signals/" name, fixture_setup, args, fn)
        ADD("unsubscribed", subscribed_args, test_unsubscribed);
        ADD("unsubscribe", subscribed_args, test_unsubscribe);
        ADD("subscriber-left", subscribed_args, test_subscriber_left);
        ADD("reexec", subscribed_args, test_reexec);
        ADD("always", always_args, test_always);
        ADD("usage", NULL, test_usage);
        return g_test_run();
}
