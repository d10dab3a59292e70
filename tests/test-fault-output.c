/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fault suite's output cases: what Communicate returned is its caller's, and no longer held by the
 * daemon nor counted against the uid's --max-output-per-user, unless the caller asked to keep it. Under
 * the 1024-fd limit, with clients of two uids. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "fixture.h"

#define MiB (1024U * 1024U)

static const char *const argv_mib[] = { "head", "-c", "1048576", "/dev/zero", NULL };
static const char *const args_quota[] = { "--max-output-per-user=4M", NULL };

static void restart(Fixture *f) {
        fixture_restart_daemon_nofile(f, args_quota, FIXTURE_SERVICE_NOFILE, FIXTURE_SERVICE_NOFILE);
}

/* The path of the job with the highest id. */
static char *last_job(Fixture *f) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = fixture_call(f, "ListJobs", NULL, &error), list = NULL;
        guint64 last = 0;

        g_assert_no_error(error);
        list = g_variant_get_child_value(r, 0);
        for (gsize i = 0; i < g_variant_n_children(list); i++) {
                guint64 id;
                g_variant_get_child(list, i, "(t&o&si)", &id, NULL, NULL, NULL);
                last = MAX(last, id);
        }
        g_assert_cmpuint(last, >, 0);
        return fixture_job_path(last);
}

/* How many files the spool holds. */
static guint spool_files(Fixture *f) {
        g_autofree char *dir = g_build_filename(f->state_dir, "output", NULL);
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        guint n = 0;

        g_assert_nonnull(d);
        while (g_dir_read_name(d))
                n++;
        return n;
}

static void communicate_mib(Fixture *f, GVariant *options) {
        g_autoptr(GBytes) out = NULL, err = NULL;
        g_autoptr(GError) error = NULL;
        int rc = -1;
        gboolean ok = fixture_communicate(f, argv_mib, NULL, 0, options, &rc, &out, &err, &error);

        g_assert_no_error(error);
        g_assert_true(ok);
        g_assert_cmpint(rc, ==, 0);
        g_assert_cmpuint(g_bytes_get_size(out), ==, MiB);
}

/* Output Communicate had returned stayed held and counted for the uid: with a 4 MiB bound, the fifth call
 * of 1 MiB failed with OutputLimit, though every caller had its output. */
static void test_released_quota(Fixture *f, gconstpointer unused) {
        if (!fixture_have_root())
                return;
        restart(f);
        for (int i = 0; i < 10; i++)
                communicate_mib(f, NULL);
        /* Nothing of it is left in the spool. */
        g_assert_cmpuint(spool_files(f), ==, 0);
        /* Another uid, the same. */
        for (int i = 0; i < 10; i++) {
                g_autofree char *out = fixture_other_client(f, "communicate", argv_mib);
                g_assert_cmpstr(out, ==, "rc=0 out=1048576");
        }
        g_assert_cmpuint(spool_files(f), ==, 0);
        fixture_assert_answers(f);
}

/* What is left to read of such a job: a clear error, also after a restart; the rest of the job stays. */
static void test_released_read(Fixture *f, gconstpointer unused) {
        const char *const both[] = { "sh", "-c", "echo out; echo err >&2", NULL };
        const char *const slow[] = { "sh", "-c", "echo kept; exec sleep 1000", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, rc = NULL;
        g_autofree char *path = NULL, *slow_path = NULL, *out = NULL;
        const char *text = "went to its Communicate caller and was not kept; pass the 'keep-output' option";

        restart(f);
        out = fixture_run_output(f, both, NULL, 0);
        g_assert_cmpstr(out, ==, "out\n");
        path = last_job(f);
        fixture_expect_error(f, path, JOB_IFACE, "GetOutput", NULL, "org.procpool.Error.OutputReleased",
                             text);
        fixture_expect_error(f, path, JOB_IFACE, "OpenOutput", NULL, "org.procpool.Error.OutputReleased",
                             text);
        /* The job is still there, with its outcome. */
        rc = fixture_job_call(f, path, "Wait", NULL, &error);
        g_assert_no_error(error);
        fixture_assert_outcome(f, path, "exited", 0);

        /* A Communicate answered with an error did not hand the output over: it is kept to look at. */
        r = fixture_call(
                f, "Communicate",
                g_variant_new("(^as@ay@a{sv})", slow, fixture_bytes("", 0),
                              fixture_options("timeout-usec", g_variant_new_uint64(G_USEC_PER_SEC), NULL)),
                &error);
        g_assert_null(r);
        fixture_assert_error(error, "org.procpool.Error.TimedOut", NULL);
        slow_path = last_job(f);
        r = fixture_job_call(f, slow_path, "GetOutput", NULL, NULL);
        g_assert_nonnull(r);
        {
                g_autoptr(GVariant) o = g_variant_get_child_value(r, 0);
                g_assert_cmpmem(g_variant_get_data(o), g_variant_get_size(o), "kept\n", 5);
        }

        /* The store knows, and says so after a restart. */
        g_assert_cmpint(fixture_stop_daemon(f->daemon_pid), ==, 0);
        f->daemon_pid = fixture_start_daemon(f, args_quota);
        fixture_expect_error(f, path, JOB_IFACE, "GetOutput", NULL, "org.procpool.Error.OutputReleased",
                             text);
        fixture_assert_outcome(f, path, "exited", 0);
}

/* keep-output: the output stays, readable and counted, until the job is released. */
static void test_keep_output(Fixture *f, gconstpointer unused) {
        const char *const argv_true[] = { "true", NULL };
        GVariant *keep =
                g_variant_ref_sink(fixture_options("keep-output", g_variant_new_boolean(TRUE), NULL));
        g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL;
        int rc;

        if (!fixture_have_root())
                return;
        restart(f);
        for (int i = 0; i < 4; i++) {
                communicate_mib(f, keep);
                g_ptr_array_add(paths, last_job(f));
        }
        r = fixture_job_call(f, paths->pdata[0], "GetOutput", NULL, &error);
        g_assert_no_error(error);
        {
                g_autoptr(GVariant) o = g_variant_get_child_value(r, 0);
                g_assert_cmpuint(g_variant_get_size(o), ==, MiB);
        }
        /* 4 MiB held for uid 0: the next Communicate passes the bound. Another uid has its own. */
        g_assert_false(fixture_communicate(f, argv_mib, NULL, 0, keep, &rc, &out, &err, &error));
        fixture_assert_error(error, "org.procpool.Error.OutputLimit", "--max-output-per-user");
        g_clear_error(&error);
        {
                g_autofree char *other = fixture_other_client(f, "communicate", argv_mib);
                g_assert_cmpstr(other, ==, "rc=0 out=1048576");
        }
        /* Released, the room is back. */
        for (guint i = 0; i < paths->len; i++)
                fixture_job_call_ok(f, paths->pdata[i], "Release", NULL);
        communicate_mib(f, NULL);

        /* Submit and Call keep their output anyway: the option is for Communicate only. */
        fixture_expect_error(
                f, MANAGER_PATH, MANAGER_IFACE, "Submit", g_variant_new("(^as@a{sv})", argv_true, keep),
                "org.freedesktop.DBus.Error.InvalidArgs", "Option 'keep-output' is for Communicate only");
        fixture_expect_call_error(f, argv_true, keep, "org.freedesktop.DBus.Error.InvalidArgs",
                                  "Option 'keep-output' is for Communicate only");
        g_variant_unref(keep);
        fixture_assert_answers(f);
}

#define ADD(name, setup, fn) g_test_add("/procpool/fault/" name, Fixture, NULL, setup, fn, fixture_teardown)

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        /* procpoold runs as OTHER_UID: root and that uid may both run jobs through it. */
        ADD("communicate-output-released", fixture_setup_open_bus_other_daemon, test_released_quota);
        ADD("communicate-output-released-read", fixture_setup, test_released_read);
        ADD("communicate-keep-output", fixture_setup_open_bus_other_daemon, test_keep_output);
        return g_test_run();
}
