/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the bus says of a job agrees with the job object: InterfacesAdded, GetManagedObjects and
 * PropertiesChanged carry the keys GetAll has, with the values GetAll and Get return. */
#include "fixture.h"

#define PROPERTIES_IFACE "org.freedesktop.DBus.Properties"
#define OBJECT_MANAGER_IFACE "org.freedesktop.DBus.ObjectManager"

static const char *const pool1[] = { "--pool-size=1", NULL };

/* ---- what the signals said ------------------------------------------------------------------------ */

typedef struct {
        GVariant *added;    /* the a{sa{sv}} of the job's InterfacesAdded */
        GPtrArray *changes; /* the (sa{sv}as) of each of its PropertiesChanged, in order */
} Seen;

typedef struct {
        GHashTable *jobs; /* path -> Seen */
        guint finished;   /* JobFinished signals */
        guint subs[3];
} Recorder;

static void seen_free(gpointer data) {
        Seen *s = data;

        g_clear_pointer(&s->added, g_variant_unref);
        g_ptr_array_unref(s->changes);
        g_free(s);
}

static Seen *seen_of(Recorder *r, const char *path) {
        Seen *s = g_hash_table_lookup(r->jobs, path);

        if (!s) {
                s = g_new0(Seen, 1);
                s->changes = g_ptr_array_new_with_free_func((GDestroyNotify) g_variant_unref);
                g_hash_table_insert(r->jobs, g_strdup(path), s);
        }
        return s;
}

static void on_added(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                     const char *member, GVariant *params, gpointer data) {
        Recorder *r = data;
        const char *job;
        Seen *s;

        g_variant_get_child(params, 0, "&o", &job);
        s = seen_of(r, job);
        g_assert_null(s->added); /* once per job */
        s->added = g_variant_get_child_value(params, 1);
}

static void on_changed(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                       const char *member, GVariant *params, gpointer data) {
        g_ptr_array_add(seen_of(data, path)->changes, g_variant_ref(params));
}

static void on_finished(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                        const char *member, GVariant *params, gpointer data) {
        ((Recorder *) data)->finished++;
}

static void record_start(Fixture *f, Recorder *r) {
        r->jobs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, seen_free);
        r->subs[0] = g_dbus_connection_signal_subscribe(f->conn, NULL, OBJECT_MANAGER_IFACE,
                                                        "InterfacesAdded", MANAGER_PATH, NULL,
                                                        G_DBUS_SIGNAL_FLAGS_NONE, on_added, r, NULL);
        r->subs[1] =
                g_dbus_connection_signal_subscribe(f->conn, NULL, PROPERTIES_IFACE, "PropertiesChanged", NULL,
                                                   JOB_IFACE, G_DBUS_SIGNAL_FLAGS_NONE, on_changed, r, NULL);
        r->subs[2] =
                g_dbus_connection_signal_subscribe(f->conn, NULL, MANAGER_IFACE, "JobFinished", MANAGER_PATH,
                                                   NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_finished, r, NULL);
}

static void record_stop(Fixture *f, Recorder *r) {
        for (gsize i = 0; i < G_N_ELEMENTS(r->subs); i++)
                g_dbus_connection_signal_unsubscribe(f->conn, r->subs[i]);
        g_hash_table_unref(r->jobs);
}

/* Takes in every signal the daemon sent before now: they come before the answer to a call. */
static void take_signals(Fixture *f) {
        g_autoptr(GVariant) v = fixture_get_property(f, MANAGER_PATH, MANAGER_IFACE, "Version");

        while (g_main_context_iteration(NULL, FALSE))
                ;
}

typedef struct {
        Recorder *r;
        const char *const *paths;
} AddedWait;

static gboolean all_added(gpointer data) {
        AddedWait *w = data;

        for (const char *const *p = w->paths; *p; p++) {
                Seen *s = g_hash_table_lookup(w->r->jobs, *p);
                if (!s || !s->added)
                        return FALSE;
        }
        return TRUE;
}

typedef struct {
        Recorder *r;
        guint n;
} FinishedWait;

static gboolean enough_finished(gpointer data) {
        FinishedWait *w = data;
        return w->r->finished >= w->n;
}

/* ---- what the object says -------------------------------------------------------------------------- */

static GVariant *get_all(Fixture *f, const char *path) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                f->conn, BUS_NAME, path, PROPERTIES_IFACE, "GetAll", g_variant_new("(s)", JOB_IFACE),
                G_VARIANT_TYPE("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);

        g_assert_no_error(error);
        return g_variant_get_child_value(r, 0);
}

/* The a{sa{sv}} GetManagedObjects lists for path. */
static GVariant *managed(Fixture *f, const char *path) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                f->conn, BUS_NAME, MANAGER_PATH, OBJECT_MANAGER_IFACE, "GetManagedObjects", NULL,
                G_VARIANT_TYPE("(a{oa{sa{sv}}})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_autoptr(GVariant) objects = NULL;
        GVariant *ifaces;

        g_assert_no_error(error);
        objects = g_variant_get_child_value(r, 0);
        ifaces = g_variant_lookup_value(objects, path, G_VARIANT_TYPE("a{sa{sv}}"));
        g_assert_nonnull(ifaces);
        return ifaces;
}

/* The Job1 a{sv} of an a{sa{sv}}. */
static GVariant *job_properties(GVariant *ifaces) {
        GVariant *props = g_variant_lookup_value(ifaces, JOB_IFACE, G_VARIANT_TYPE("a{sv}"));

        g_assert_nonnull(props);
        return props;
}

static gint compare_strings(gconstpointer a, gconstpointer b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* The one property the ObjectManager's signals leave out, by design (docs/dbus-api.md): it would cost a
 * sort of the queue per job added. Left out of every comparison here. */
#define UNANNOUNCED "QueuePosition"

/* The names of an a{sa{sv}} or the keys of an a{sv}, sorted, one a line; each may come once only. */
static char *keys_of(GVariant *dict) {
        g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GString) s = g_string_new(NULL);
        GVariantIter it;
        GVariant *entry;

        g_variant_iter_init(&it, dict);
        while ((entry = g_variant_iter_next_value(&it))) {
                const char *key;
                g_variant_get_child(entry, 0, "&s", &key);
                if (!g_str_equal(key, UNANNOUNCED))
                        g_ptr_array_add(keys, g_strdup(key));
                g_variant_unref(entry);
        }
        g_ptr_array_sort(keys, compare_strings);
        for (guint i = 0; i < keys->len; i++) {
                if (i > 0 && g_str_equal(keys->pdata[i], keys->pdata[i - 1]))
                        g_error("%s comes twice", (char *) keys->pdata[i]);
                g_string_append_printf(s, "%s\n", (char *) keys->pdata[i]);
        }
        return g_strdup(s->str);
}

/* Two a{sv}, or two a{sa{sv}}, have the same keys. */
static void assert_same_keys(GVariant *expected, GVariant *got, const char *what) {
        g_autofree char *expected_keys = keys_of(expected), *got_keys = keys_of(got);

        g_test_message("%s: the same keys", what);
        g_assert_cmpstr(got_keys, ==, expected_keys);
}

/* Two a{sv} have the same keys and, key by key, equal values; the keys in skip (NULL-terminated, or
 * NULL) are left out of the comparison of values. */
static void assert_same_properties(GVariant *expected, GVariant *got, const char *const *skip,
                                   const char *what) {
        GVariantIter it;
        const char *key;
        GVariant *value;

        assert_same_keys(expected, got, what);
        g_test_message("%s: the same values", what);
        g_variant_iter_init(&it, expected);
        while (g_variant_iter_loop(&it, "{&sv}", &key, &value)) {
                g_autoptr(GVariant) other = g_variant_lookup_value(got, key, NULL);
                g_autofree char *a = NULL, *b = NULL;
                if ((skip && g_strv_contains(skip, key)) || g_str_equal(key, UNANNOUNCED))
                        continue;
                if (g_variant_equal(value, other))
                        continue;
                a = g_variant_print(value, TRUE);
                b = g_variant_print(other, TRUE);
                g_error("%s: %s is %s, expected %s", what, key, b, a);
        }
}

/* What a client that only listens knows of a job: its InterfacesAdded, with each PropertiesChanged
 * since applied in order. */
static GVariant *replayed(Seen *s) {
        g_autoptr(GVariant) added = job_properties(s->added);
        g_autoptr(GHashTable) values =
                g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_variant_unref);
        GVariantBuilder b;
        GHashTableIter ht;
        GVariantIter it;
        gpointer key, value;
        const char *name;
        char *k;
        GVariant *v;

        g_variant_iter_init(&it, added);
        while (g_variant_iter_next(&it, "{sv}", &k, &v))
                g_hash_table_replace(values, k, v);
        for (guint i = 0; i < s->changes->len; i++) {
                g_autoptr(GVariant) changed = g_variant_get_child_value(s->changes->pdata[i], 1);
                g_variant_iter_init(&it, changed);
                while (g_variant_iter_next(&it, "{&sv}", &name, &v))
                        g_hash_table_replace(values, g_strdup(name), v);
        }
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_hash_table_iter_init(&ht, values);
        while (g_hash_table_iter_next(&ht, &key, &value))
                g_variant_builder_add(&b, "{sv}", key, value);
        return g_variant_ref_sink(g_variant_builder_end(&b));
}

/* With per-job cgroups, CPU time and memory are read from the cgroup as the job runs and are not
 * signalled; without, they stay 0 and are compared too. */
static const char *const *accounted_live(Fixture *f) {
        static const char *const live[] = { "CPUUsageUSec", "MemoryPeak", NULL };
        return fixture_per_job_cgroups(f) ? live : NULL;
}

/* Everything the signals said of a job agrees with what it says of itself, which does not change
 * any more: the same interfaces as GetManagedObjects, the same keys as GetAll, and the values. */
static void assert_agrees(Fixture *f, Recorder *r, const char *path) {
        Seen *s = g_hash_table_lookup(r->jobs, path);
        g_autoptr(GVariant) all = get_all(f, path), listed = managed(f, path), listed_props = NULL;
        g_autoptr(GVariant) added = NULL, now = NULL;
        g_autofree char *added_ifaces = NULL, *listed_ifaces = NULL, *what = NULL;

        g_assert_nonnull(s);
        g_assert_nonnull(s->added);
        added = job_properties(s->added);
        added_ifaces = keys_of(s->added);
        listed_ifaces = keys_of(listed);
        g_test_message("%s: InterfacesAdded and GetManagedObjects list the same interfaces", path);
        g_assert_cmpstr(added_ifaces, ==, listed_ifaces);
        listed_props = job_properties(listed);
        what = g_strdup_printf("%s: GetManagedObjects and GetAll", path);
        assert_same_properties(all, listed_props, accounted_live(f), what);
        g_free(what);
        what = g_strdup_printf("%s: InterfacesAdded and GetAll", path);
        assert_same_keys(all, added, what);
        g_free(what);
        what = g_strdup_printf("%s: InterfacesAdded and PropertiesChanged applied, and GetAll", path);
        now = replayed(s);
        assert_same_properties(all, now, accounted_live(f), what);
        for (guint i = 0; i < s->changes->len; i++) {
                g_autoptr(GVariant) changed = g_variant_get_child_value(s->changes->pdata[i], 1);
                g_autoptr(GVariant) invalidated = g_variant_get_child_value(s->changes->pdata[i], 2);
                GVariantIter it;
                const char *name;
                GVariant *value;

                /* Only keys GetAll has, each with its value, none merely invalidated. */
                g_assert_cmpuint(g_variant_n_children(invalidated), ==, 0);
                g_variant_iter_init(&it, changed);
                while (g_variant_iter_loop(&it, "{&sv}", &name, &value)) {
                        g_autoptr(GVariant) in_all = g_variant_lookup_value(all, name, NULL);
                        if (!in_all)
                                g_error("%s: PropertiesChanged carries %s, which GetAll has not", path, name);
                        g_assert_true(g_variant_is_of_type(value, g_variant_get_type(in_all)));
                }
        }
}

/* The last value PropertiesChanged gave each key equals what Get returns now. */
static void assert_last_changes_read(Fixture *f, Recorder *r, const char *path) {
        Seen *s = g_hash_table_lookup(r->jobs, path);
        g_autoptr(GHashTable) last =
                g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_variant_unref);
        GHashTableIter ht;
        gpointer name, value;

        g_assert_cmpuint(s->changes->len, >, 0);
        for (guint i = 0; i < s->changes->len; i++) {
                g_autoptr(GVariant) changed = g_variant_get_child_value(s->changes->pdata[i], 1);
                GVariantIter it;
                char *key;
                GVariant *v;

                g_variant_iter_init(&it, changed);
                while (g_variant_iter_next(&it, "{sv}", &key, &v))
                        g_hash_table_replace(last, key, v);
        }
        g_hash_table_iter_init(&ht, last);
        while (g_hash_table_iter_next(&ht, &name, &value)) {
                g_autoptr(GVariant) read = fixture_get_property(f, path, JOB_IFACE, name);
                g_autofree char *a = g_variant_print(value, TRUE), *b = g_variant_print(read, TRUE);
                g_test_message("%s: %s last signalled %s, read %s", path, (char *) name, a, b);
                g_assert_true(g_variant_equal(value, read));
        }
}

/* ---- cases ------------------------------------------------------------------------------------------ */

/* A queued job does not change until a worker is free: what InterfacesAdded said of it is what
 * GetAll says at that moment. */
static void test_queued(Fixture *f, gconstpointer unused) {
        g_autofree char *gate = fixture_gate_path(f, "go"), *wait_gate = fixture_gate_wait_sh(gate);
        const char *blocker_argv[] = { "sh", "-c", wait_gate, NULL };
        const char *exit3[] = { "sh", "-c", "echo out; exit 3", NULL };
        const char *missing[] = { "procpool-no-such-program", NULL };
        Recorder r = {};
        g_autofree char *blocker = NULL, *queued = NULL, *failing = NULL;

        record_start(f, &r);
        blocker = fixture_submit(f, blocker_argv, NULL);
        g_assert_true(fixture_wait_state(f, blocker, "running"));
        queued = fixture_submit(f, exit3,
                                fixture_options("label", g_variant_new_string("queued \xe2\x9c\x93"),
                                                "priority", g_variant_new_int32(-3), NULL));
        failing = fixture_submit(f, missing, NULL);
        const char *const paths[] = { blocker, queued, failing, NULL };
        AddedWait added = { &r, paths };
        g_assert_true(fixture_iterate_until(all_added, &added));
        take_signals(f);

        for (int i = 1; i <= 2; i++) {
                Seen *s = g_hash_table_lookup(r.jobs, paths[i]);
                g_autoptr(GVariant) all = NULL, props = NULL;
                g_autofree char *what = g_strdup_printf("%s: InterfacesAdded and GetAll", paths[i]);

                fixture_assert_state(f, paths[i], "queued");
                all = get_all(f, paths[i]);
                /* Nothing changed since it was added. */
                g_assert_cmpuint(s->changes->len, ==, 0);
                props = job_properties(s->added);
                assert_same_properties(all, props, NULL, what);
                assert_agrees(f, &r, paths[i]);
        }
        /* The blocker runs and is held: what the signals said of it, applied in order, is what it says. */
        assert_agrees(f, &r, blocker);

        fixture_gate_open(gate);
        for (int i = 0; i < 3; i++)
                g_assert_true(fixture_wait_finished(f, paths[i]));
        record_stop(f, &r);
}

/* Ended jobs do not change any more: every PropertiesChanged carried keys GetAll has, and the last
 * value of each is what Get returns. */
static void test_finished(Fixture *f, gconstpointer unused) {
        const char *exit3[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
        const char *missing[] = { "procpool-no-such-program", NULL };
        const char *sleeper[] = { "sleep", "30", NULL };
        Recorder r = {};
        FinishedWait finished = { &r, 4 };
        g_autofree char *exited = NULL, *failed = NULL, *cancelled = NULL, *timed_out = NULL;

        record_start(f, &r);
        exited = fixture_submit(f, exit3, fixture_options("label", g_variant_new_string("exits"), NULL));
        failed = fixture_submit(f, missing, NULL);
        cancelled = fixture_submit(f, sleeper, NULL);
        timed_out = fixture_submit(f, sleeper,
                                   fixture_options("timeout-usec", g_variant_new_uint64(100000), NULL));
        const char *const paths[] = { exited, failed, cancelled, timed_out, NULL };
        g_assert_true(fixture_wait_state(f, cancelled, "running"));
        fixture_job_call_ok(f, cancelled, "Cancel", NULL);
        for (int i = 0; paths[i]; i++)
                g_assert_true(fixture_wait_finished(f, paths[i]));
        g_assert_true(fixture_iterate_until(enough_finished, &finished));
        take_signals(f);

        fixture_assert_outcome(f, exited, "exited", 3);
        fixture_assert_state(f, failed, "failed");
        fixture_assert_state(f, cancelled, "cancelled");
        fixture_assert_state(f, timed_out, "timed-out");
        for (int i = 0; paths[i]; i++) {
                assert_agrees(f, &r, paths[i]);
                assert_last_changes_read(f, &r, paths[i]);
        }
        record_stop(f, &r);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        FIXTURE_ADD("/procpool/object-manager/queued", fixture_setup, pool1, test_queued);
        FIXTURE_ADD("/procpool/object-manager/finished", fixture_setup, NULL, test_finished);
        return g_test_run();
}
