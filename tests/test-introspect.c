/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's live introspection matches data/org.procpool.Supervisor1.xml member for member. */
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

static void describe_args(GString *s, GDBusArgInfo **args, const char *direction) {
        for (GDBusArgInfo **a = args; a && *a; a++)
                g_string_append_printf(s, " %s:%s:%s", direction, (*a)->name ? (*a)->name : "",
                                       (*a)->signature);
}

static int compare_strings(gconstpointer a, gconstpointer b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* One sorted line per method, signal and property: names, argument names, types and directions,
 * property types and access. Annotations are not part of the comparison. */
static char *describe(GDBusInterfaceInfo *iface) {
        g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
        GString *out = g_string_new(NULL);

        for (GDBusMethodInfo **m = iface->methods; m && *m; m++) {
                GString *s = g_string_new(NULL);
                g_string_append_printf(s, "method %s", (*m)->name);
                describe_args(s, (*m)->in_args, "in");
                describe_args(s, (*m)->out_args, "out");
                g_ptr_array_add(lines, g_string_free(s, FALSE));
        }
        for (GDBusSignalInfo **sig = iface->signals; sig && *sig; sig++) {
                GString *s = g_string_new(NULL);
                g_string_append_printf(s, "signal %s", (*sig)->name);
                describe_args(s, (*sig)->args, "arg");
                g_ptr_array_add(lines, g_string_free(s, FALSE));
        }
        for (GDBusPropertyInfo **p = iface->properties; p && *p; p++) {
                const char *access = (*p)->flags == (G_DBUS_PROPERTY_INFO_FLAGS_READABLE |
                                                     G_DBUS_PROPERTY_INFO_FLAGS_WRITABLE)
                                             ? "readwrite"
                                     : (*p)->flags == G_DBUS_PROPERTY_INFO_FLAGS_READABLE ? "read"
                                                                                          : "write";
                g_ptr_array_add(lines,
                                g_strdup_printf("property %s %s %s", (*p)->name, (*p)->signature, access));
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

static void test_contract_complete(Fixture *f, gconstpointer unused) {
        g_autoptr(GDBusNodeInfo) expected = contract();

        /* The XML names exactly the two procpool interfaces. */
        g_assert_nonnull(expected->interfaces[0]);
        g_assert_nonnull(expected->interfaces[1]);
        g_assert_null(expected->interfaces[2]);
        g_assert_cmpstr(expected->interfaces[0]->name, ==, MANAGER_IFACE);
        g_assert_cmpstr(expected->interfaces[1]->name, ==, JOB_IFACE);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        FIXTURE_ADD("/procpool/introspect/manager", fixture_setup, NULL, test_manager);
        FIXTURE_ADD("/procpool/introspect/job", fixture_setup, NULL, test_job);
        FIXTURE_ADD("/procpool/introspect/contract-complete", fixture_setup, NULL, test_contract_complete);
        return g_test_run();
}
