/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's live introspection matches data/org.procpool.Supervisor1.xml member for member, annotations
 * included. */
#include "fixture.h"

static GDBusNodeInfo *contract(void) {
        const char *root = g_getenv("PROCPOOL_SOURCE_ROOT");
        g_autofree char *path = NULL, *xml = NULL;
        g_autoptr(GError) error = NULL;
        GDBusNodeInfo *node;

        g_assert_nonnull(root); /* set by meson test */
        path = g_build_filename(root, "data", "org.procpool.Supervisor1.xml", NULL);
        g_assert_true(g_file_get_contents(path, &xml, NULL, &error));
        g_assert_no_error(error);
        node = g_dbus_node_info_new_for_xml(xml, &error);
        g_assert_no_error(error);
        return node;
}

static GDBusNodeInfo *live(Fixture *f, const char *path) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                f->conn, BUS_NAME, path, "org.freedesktop.DBus.Introspectable", "Introspect", NULL,
                G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        const char *xml;
        GDBusNodeInfo *node;

        g_assert_no_error(error);
        g_variant_get(r, "(&s)", &xml);
        node = g_dbus_node_info_new_for_xml(xml, &error);
        g_assert_no_error(error);
        return node;
}

/* Hints to gdbus-codegen, for clients only: the daemon does not serve them. */
#define CODEGEN_ANNOTATIONS "org.gtk.GDBus."

static int compare_strings(gconstpointer a, gconstpointer b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* The annotations, sorted, as " @name=value". */
static void describe_annotations(GString *s, GDBusAnnotationInfo **annotations) {
        g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func(g_free);

        for (GDBusAnnotationInfo **a = annotations; a && *a; a++)
                if (!g_str_has_prefix((*a)->key, CODEGEN_ANNOTATIONS))
                        g_ptr_array_add(items, g_strdup_printf(" @%s=%s", (*a)->key, (*a)->value));
        g_ptr_array_sort(items, compare_strings);
        for (guint i = 0; i < items->len; i++)
                g_string_append(s, items->pdata[i]);
}

static void describe_args(GString *s, GDBusArgInfo **args, const char *direction) {
        for (GDBusArgInfo **a = args; a && *a; a++) {
                g_string_append_printf(s, " %s:%s:%s", direction, (*a)->name ? (*a)->name : "",
                                       (*a)->signature);
                describe_annotations(s, (*a)->annotations);
        }
}

/* One sorted line per method, signal and property: names, argument names, types and directions,
 * property types and access, and the annotations of each (EmitsChangedSignal above all), but for
 * gdbus-codegen's, which only the XML has. */
static char *describe(GDBusInterfaceInfo *iface) {
        g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
        GString *out = g_string_new(NULL);

        for (GDBusMethodInfo **m = iface->methods; m && *m; m++) {
                GString *s = g_string_new(NULL);
                g_string_append_printf(s, "method %s", (*m)->name);
                describe_args(s, (*m)->in_args, "in");
                describe_args(s, (*m)->out_args, "out");
                describe_annotations(s, (*m)->annotations);
                g_ptr_array_add(lines, g_string_free(s, FALSE));
        }
        for (GDBusSignalInfo **sig = iface->signals; sig && *sig; sig++) {
                GString *s = g_string_new(NULL);
                g_string_append_printf(s, "signal %s", (*sig)->name);
                describe_args(s, (*sig)->args, "arg");
                describe_annotations(s, (*sig)->annotations);
                g_ptr_array_add(lines, g_string_free(s, FALSE));
        }
        for (GDBusPropertyInfo **p = iface->properties; p && *p; p++) {
                const char *access = (*p)->flags == (G_DBUS_PROPERTY_INFO_FLAGS_READABLE |
                                                     G_DBUS_PROPERTY_INFO_FLAGS_WRITABLE)
                                             ? "readwrite"
                                     : (*p)->flags == G_DBUS_PROPERTY_INFO_FLAGS_READABLE ? "read"
                                                                                          : "write";
                GString *s = g_string_new(NULL);

                g_string_append_printf(s, "property %s %s %s", (*p)->name, (*p)->signature, access);
                describe_annotations(s, (*p)->annotations);
                g_ptr_array_add(lines, g_string_free(s, FALSE));
        }
        {
                GString *s = g_string_new("interface");

                describe_annotations(s, iface->annotations);
                g_ptr_array_add(lines, g_string_free(s, FALSE));
        }
        g_ptr_array_sort(lines, compare_strings);
        for (guint i = 0; i < lines->len; i++)
                g_string_append_printf(out, "%s\n", (char *) lines->pdata[i]);
        return g_string_free(out, FALSE);
}

static void assert_same_interface(GDBusNodeInfo *expected, GDBusNodeInfo *got, const char *name) {
        GDBusInterfaceInfo *e = g_dbus_node_info_lookup_interface(expected, name);
        GDBusInterfaceInfo *g = g_dbus_node_info_lookup_interface(got, name);
        g_autofree char *de = NULL, *dg = NULL;

        g_assert_nonnull(e);
        g_assert_nonnull(g);
        de = describe(e);
        dg = describe(g);
        g_test_message("%s:\n%s", name, dg);
        g_assert_cmpstr(dg, ==, de);
}

static void test_manager(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusNodeInfo) expected = contract();
        g_autoptr(GDBusNodeInfo) got = live(f, MANAGER_PATH);

        assert_same_interface(expected, got, MANAGER_IFACE);
        /* Jobs appear through the ObjectManager, which is served beside the standard interfaces. */
        g_assert_nonnull(g_dbus_node_info_lookup_interface(got, "org.freedesktop.DBus.ObjectManager"));
        g_assert_nonnull(g_dbus_node_info_lookup_interface(got, "org.freedesktop.DBus.Properties"));
        g_assert_nonnull(g_dbus_node_info_lookup_interface(got, "org.freedesktop.DBus.Peer"));
        g_assert_null(g_dbus_node_info_lookup_interface(got, JOB_IFACE));
}

static void test_job(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "true", NULL };
        g_autofree char *path = fixture_submit(f, argv, NULL);
        g_autoptr(GDBusNodeInfo) expected = contract();
        g_autoptr(GDBusNodeInfo) got = live(f, path);
        g_autoptr(GDBusNodeInfo) parent = live(f, MANAGER_PATH "/job");

        assert_same_interface(expected, got, JOB_IFACE);
        g_assert_null(g_dbus_node_info_lookup_interface(got, MANAGER_IFACE));
        /* The enumerator lists the job as a child node. */
        g_assert_nonnull(parent->nodes);
        g_assert_nonnull(parent->nodes[0]);
        g_assert_cmpstr(parent->nodes[0]->path, ==, "1");
        g_assert_null(parent->nodes[1]);
}

static void test_pool(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusNodeInfo) expected = contract();
        g_autoptr(GDBusNodeInfo) got = live(f, MANAGER_PATH "/pool/default");
        g_autoptr(GDBusNodeInfo) parent = live(f, MANAGER_PATH "/pool");

        assert_same_interface(expected, got, "org.procpool.Pool1");
        /* The enumerator lists the default pool as a child node. */
        g_assert_nonnull(parent->nodes);
        g_assert_nonnull(parent->nodes[0]);
        g_assert_cmpstr(parent->nodes[0]->path, ==, "default");
        g_assert_null(parent->nodes[1]);
}

static void test_contract_complete(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusNodeInfo) expected = contract();

        /* The XML names exactly the three procpool interfaces. */
        g_assert_nonnull(expected->interfaces[0]);
        g_assert_nonnull(expected->interfaces[1]);
        g_assert_nonnull(expected->interfaces[2]);
        g_assert_null(expected->interfaces[3]);
        g_assert_cmpstr(expected->interfaces[0]->name, ==, MANAGER_IFACE);
        g_assert_cmpstr(expected->interfaces[1]->name, ==, JOB_IFACE);
        g_assert_cmpstr(expected->interfaces[2]->name, ==, "org.procpool.Pool1");
}

static void assert_bytes_forced(GDBusArgInfo **args, const char *member) {
        for (GDBusArgInfo **a = args; a && *a; a++) {
                const char *v;

                if (!g_str_equal((*a)->signature, "ay"))
                        continue;
                v = g_dbus_annotation_info_lookup((*a)->annotations, "org.gtk.GDBus.C.ForceGVariant");
                g_test_message("%s %s: ForceGVariant %s", member, (*a)->name, v ? v : "(none)");
                g_assert_cmpstr(v, ==, "true");
        }
}

/* gdbus-codegen maps an unannotated 'ay' to a NUL-terminated string: a Communicate through a generated
 * binding would send one NUL too many and read its output as empty. */
static void test_bytes_forced(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusNodeInfo) expected = contract();

        for (GDBusInterfaceInfo **i = expected->interfaces; *i; i++) {
                for (GDBusMethodInfo **m = (*i)->methods; m && *m; m++) {
                        assert_bytes_forced((*m)->in_args, (*m)->name);
                        assert_bytes_forced((*m)->out_args, (*m)->name);
                }
                for (GDBusSignalInfo **sig = (*i)->signals; sig && *sig; sig++)
                        assert_bytes_forced((*sig)->args, (*sig)->name);
        }
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        FIXTURE_ADD("/procpool/introspect/manager", fixture_setup, NULL, test_manager);
        FIXTURE_ADD("/procpool/introspect/job", fixture_setup, NULL, test_job);
        FIXTURE_ADD("/procpool/introspect/pool", fixture_setup, NULL, test_pool);
        FIXTURE_ADD("/procpool/introspect/contract-complete", fixture_setup, NULL, test_contract_complete);
        FIXTURE_ADD("/procpool/introspect/bytes-forced", fixture_setup, NULL, test_bytes_forced);
        return g_test_run();
}
