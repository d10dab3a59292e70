/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fault suite's size bounds: requests and replies too big for the daemon or the bus are refused
 * or bounded, and the daemon still answers afterwards. */

#include "fixture.h"

#define MiB (1024U * 1024U)
/* The cap of one captured stream on a bus given by --address (see docs/reliability.md). */
#define STREAM_CAP (15ULL * MiB)

static const char *const argv_true[] = { "true", NULL };

static void test_argv_too_big(Fixture *f, gconstpointer unused) {
        g_autoptr(GPtrArray) many = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *big = g_strnfill(MiB, 'x');
        const char *const huge_arg[] = { "true", big, NULL };

        /* 1 MiB of argv and environment, 16384 entries: refused before anything is forked. */
        fixture_expect_call_error(f, huge_arg, NULL, "org.freedesktop.DBus.Error.LimitsExceeded",
                                  "at most 1048576");
        g_ptr_array_add(many, g_strdup("true"));
        for (int i = 0; i < 16384; i++)
                g_ptr_array_add(many, g_strdup("a"));
        g_ptr_array_add(many, NULL);
        fixture_expect_call_error(f, (const char *const *) many->pdata, NULL,
                                  "org.freedesktop.DBus.Error.LimitsExceeded", "at most 16384 are taken");
        /* Nothing was made of them. */
        g_assert_cmpuint(fixture_manager_u(f, "Queued"), ==, 0);
        fixture_assert_answers(f);
}

static void test_environment_too_big(Fixture *f, gconstpointer unused) {
        g_autoptr(GPtrArray) env = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *big = g_strnfill(MiB, 'v');
        g_autofree char *big_entry = g_strconcat("BIG=", big, NULL);
        const char *const one_big[] = { big_entry, NULL };

        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("environment", g_variant_new_strv(one_big, -1), NULL),
                                  "org.freedesktop.DBus.Error.LimitsExceeded", "bytes");
        /* 16383 entries and argv[0] are fine together... */
        for (int i = 0; i < 16383; i++)
                g_ptr_array_add(env, g_strdup_printf("V%d=x", i));
        g_ptr_array_add(env, NULL);
        g_autoptr(GError) error = NULL;
        g_assert_cmpint(
                fixture_call_argv(f, (const char *const *) argv_true,
                                  fixture_options("environment",
                                                  g_variant_new_strv((const char *const *) env->pdata, -1),
                                                  NULL),
                                  &error),
                ==, 0);
        g_assert_no_error(error);
        /* ...one more is not. */
        g_ptr_array_remove_index(env, env->len - 1);
        g_ptr_array_add(env, g_strdup("LAST=x"));
        g_ptr_array_add(env, NULL);
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("environment",
                                                  g_variant_new_strv((const char *const *) env->pdata, -1),
                                                  NULL),
                                  "org.freedesktop.DBus.Error.LimitsExceeded", "16384");
        fixture_assert_answers(f);
}

static void test_environment_many_entries(Fixture *f, gconstpointer unused) {
        const guint n = 400000;
        g_autoptr(GPtrArray) env = g_ptr_array_new_with_free_func(g_free);

        /* Tiny entries, as many as a message takes: refused by count, without first comparing every
         * pair of names (which would keep the daemon busy for minutes). */
        for (guint i = 0; i < n; i++)
                g_ptr_array_add(env, g_strdup_printf("V%u=", i));
        g_ptr_array_add(env, NULL);
        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("environment",
                                                  g_variant_new_strv((const char *const *) env->pdata, -1),
                                                  NULL),
                                  "org.freedesktop.DBus.Error.LimitsExceeded", "16384");
        fixture_assert_answers(f);
}

static void test_label_too_long(Fixture *f, gconstpointer unused) {
        g_autofree char *ok = g_strnfill(4096, 'l'), *too_long = g_strnfill(4097, 'l'), *path = NULL;
        g_autoptr(GVariant) label = NULL;

        fixture_expect_call_error(f, (const char *const *) argv_true,
                                  fixture_options("label", g_variant_new_string(too_long), NULL),
                                  "org.freedesktop.DBus.Error.LimitsExceeded", "4096 bytes");
        path = fixture_submit(f, (const char *const *) argv_true,
                              fixture_options("label", g_variant_new_string(ok), NULL));
        label = fixture_get_property(f, path, JOB_IFACE, "Label");
        g_assert_cmpstr(g_variant_get_string(label, NULL), ==, ok);
        fixture_assert_answers(f);
}

static void test_output_limit_cap(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;

        /* One Communicate reply carries two streams and must stay below what the bus takes. */
        fixture_expect_error(
                f, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                g_variant_new("(^as@ay@a{sv})", argv_true, fixture_bytes("", 0),
                              fixture_options("output-limit", g_variant_new_uint64(STREAM_CAP + 1), NULL)),
                "org.freedesktop.DBus.Error.LimitsExceeded", "one bus reply");
        /* Call captures into the spool, read with OpenOutput: any limit fits. */
        g_assert_cmpint(
                fixture_call_argv(f, (const char *const *) argv_true,
                                  fixture_options("output-limit", g_variant_new_uint64(STREAM_CAP + 1), NULL),
                                  &error),
                ==, 0);
        g_assert_no_error(error);
        fixture_expect_error(
                f, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                g_variant_new("(^as@ay@a{sv})", argv_true, fixture_bytes("", 0),
                              fixture_options("output-limit", g_variant_new_uint64(G_MAXUINT64), NULL)),
                "org.freedesktop.DBus.Error.LimitsExceeded", "'stdout' or 'stderr' option");
        g_assert_cmpint(
                fixture_call_argv(f, (const char *const *) argv_true,
                                  fixture_options("output-limit", g_variant_new_uint64(STREAM_CAP), NULL),
                                  &error),
                ==, 0);
        g_assert_no_error(error);
        fixture_assert_answers(f);
}

static void test_reply_fits_bus(Fixture *f, gconstpointer unused) {
        const char *const argv[] = { "sh", "-c", "head -c 16M /dev/zero; head -c 16M /dev/zero >&2", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        int rc;

        /* 16 MiB on each stream: with the default output limit, that reply would pass the 32 MiB a
         * dbus-daemon takes by default, and the bus would throw the daemon off. It must not get there. */
        g_assert_false(fixture_communicate(f, argv, NULL, 0, NULL, &rc, &out, &err, &error));
        fixture_assert_error(error, "org.procpool.Error.OutputLimit", NULL);
        fixture_assert_answers(f);
}

static void test_input_huge(Fixture *f, gconstpointer unused) {
        const char *const wc[] = { "wc", "-c", NULL };
        gsize size = 20 * MiB;
        g_autofree char *input = g_malloc(size);
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        int rc;

        memset(input, 'i', size);
        g_assert_true(fixture_communicate(f, wc, input, size, NULL, &rc, &out, &err, &error));
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 0);
        g_assert_cmpint(g_ascii_strtoll(g_bytes_get_data(out, NULL), NULL, 10), ==, (gint64) size);
        fixture_assert_answers(f);
}

/* ---- main ---------------------------------------------------------------------------------------- */

#define ADD(name, setup, args, fn) FIXTURE_ADD("/procpool/fault/" name, setup, args, fn)

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        ADD("argv-too-big", fixture_setup, NULL, test_argv_too_big);
        ADD("environment-too-big", fixture_setup, NULL, test_environment_too_big);
        ADD("environment-many-entries", fixture_setup, NULL, test_environment_many_entries);
        ADD("label-too-long", fixture_setup, NULL, test_label_too_long);
        ADD("output-limit-cap", fixture_setup, NULL, test_output_limit_cap);
        ADD("reply-fits-bus", fixture_setup, NULL, test_reply_fits_bus);
        ADD("input-huge", fixture_setup, NULL, test_input_huge);
        return g_test_run();
}
