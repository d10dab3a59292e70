/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Captured output on disk: OpenOutput of a large, a running and another user's job, GetOutput's bound,
 * and a state dir that fills up. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>

#include "fixture.h"

#define MiB (1024ULL * 1024ULL)
/* Clients of another user: the open bus admits every uid. */

/* ---- helpers -------------------------------------------------------------------------------------- */

/* A temporary directory for gates and copies, removed by the caller with fixture_remove_tree(). */
static char *make_tmp_dir(void) {
        g_autoptr(GError) error = NULL;
        char *dir = g_dir_make_tmp("procpool-output-XXXXXX", &error);

        g_assert_no_error(error);
        return dir;
}

/* OpenOutput on c: the two fds, our own. Returns FALSE with error set if the daemon refused. */
static gboolean open_output(GDBusConnection *c, const char *path, int *ret_out, int *ret_err,
                            GError **error) {
        g_autoptr(GUnixFDList) fds = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_with_unix_fd_list_sync(
                c, BUS_NAME, path, JOB_IFACE, "OpenOutput", NULL, G_VARIANT_TYPE("(hh)"),
                G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, &fds, NULL, error);
        gint32 out, err;

        if (!r)
                return FALSE;
        g_variant_get(r, "(hh)", &out, &err);
        *ret_out = g_unix_fd_list_get(fds, out, error);
        g_assert_cmpint(*ret_out, >=, 0);
        *ret_err = g_unix_fd_list_get(fds, err, error);
        g_assert_cmpint(*ret_err, >=, 0);
        return TRUE;
}

/* Reads fd from its offset to its current end into buf. */
static void read_available(int fd, GString *buf) {
        char chunk[65536];

        for (;;) {
                ssize_t n = read(fd, chunk, sizeof chunk);
                if (n < 0 && errno == EINTR)
                        continue;
                g_assert_cmpint(n, >=, 0);
                if (n == 0)
                        return;
                g_string_append_len(buf, chunk, n);
        }
}

/* Reads fd, a growing file, into buf until it holds needle, waking up on inotify's word that the file
 * changed: no sleeping, no polling. */
static void read_until(int fd, GString *buf, const char *needle) {
        g_autofree char *proc = g_strdup_printf("/proc/self/fd/%d", fd);
        int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);

        g_assert_cmpint(in, >=, 0);
        /* Watched before the first read, so that a write in between is not missed. */
        g_assert_cmpint(inotify_add_watch(in, proc, IN_MODIFY), >=, 0);
        for (;;) {
                struct pollfd p = { .fd = in, .events = POLLIN };
                char events[4096];

                read_available(fd, buf);
                if (strstr(buf->str, needle))
                        break;
                /* a guard against hanging the suite, not a timing requirement */
                g_assert_cmpint(poll(&p, 1, 60000), ==, 1);
                while (read(in, events, sizeof events) > 0)
                        ;
        }
        close(in);
}

/* SHA-256 of everything fd holds from its offset on, read 1 MiB at a time; the size in ret_size. */
static char *checksum_fd(int fd, guint64 *ret_size) {
        g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
        g_autofree guchar *buf = g_malloc(MiB);
        guint64 size = 0;

        for (;;) {
                ssize_t n = read(fd, buf, MiB);
                if (n < 0 && errno == EINTR)
                        continue;
                g_assert_cmpint(n, >=, 0);
                if (n == 0)
                        break;
                g_checksum_update(sum, buf, n);
                size += (guint64) n;
        }
        *ret_size = size;
        return g_strdup(g_checksum_get_string(sum));
}

static char *checksum_file(const char *path, guint64 *ret_size) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        char *s;

        g_assert_cmpint(fd, >=, 0);
        s = checksum_fd(fd, ret_size);
        close(fd);
        return s;
}

static guint64 proc_status_kib(GPid pid, const char *field) {
        g_autofree char *file = g_strdup_printf("/proc/%d/status", pid), *text = NULL;
        const char *p;

        g_assert_true(g_file_get_contents(file, &text, NULL, NULL));
        p = strstr(text, field);
        g_assert_nonnull(p);
        return g_ascii_strtoull(p + strlen(field) + 1, NULL, 10);
}

/* A daemon built with AddressSanitizer holds shadow memory and quarantine: its RSS says nothing then. */
static gboolean daemon_has_asan(GPid pid) {
        g_autofree char *file = g_strdup_printf("/proc/%d/maps", pid), *text = NULL;

        g_assert_true(g_file_get_contents(file, &text, NULL, NULL));
        return strstr(text, "libasan") || strstr(text, "libclang_rt.asan");
}

static gboolean property_bool(Fixture *f, const char *path, const char *name) {
        g_autoptr(GVariant) v = fixture_get_property(f, path, JOB_IFACE, name);
        return g_variant_get_boolean(v);
}

static int wait_job(Fixture *f, const char *path) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = fixture_job_call(f, path, "Wait", NULL, &error);
        int rc;

        g_assert_no_error(error);
        g_variant_get(r, "(i)", &rc);
        return rc;
}

/* ---- 200 MiB, through the spool ---------------------------------------------------------------------- */

static void test_large(Fixture *f, gconstpointer unused) {
        g_autofree char *dir = make_tmp_dir();
        g_autofree char *copy = g_build_filename(dir, "copy", NULL);
        g_autofree char *script =
                g_strdup_printf("head -c 200M /dev/urandom | tee '%s'; echo done >&2", copy);
        const char *const argv[] = { "sh", "-c", script, NULL };
        g_autofree char *path = fixture_submit(f, argv, NULL);
        g_autofree char *expected = NULL, *got = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        g_autoptr(GString) err_text = g_string_new(NULL);
        guint64 expected_size, got_size;
        int out, err;

        g_assert_cmpint(wait_job(f, path), ==, 0);
        g_assert_false(property_bool(f, path, "OutputIncomplete"));

        /* Byte for byte what the job wrote, through the fds. */
        g_assert_true(open_output(f->conn, path, &out, &err, &error));
        g_assert_cmpint(fcntl(out, F_GETFL) & O_ACCMODE, ==, O_RDONLY);
        g_assert_cmpint(write(out, "x", 1), ==, -1); /* read-only: the spool is the daemon's */
        expected = checksum_file(copy, &expected_size);
        got = checksum_fd(out, &got_size);
        g_assert_cmpuint(expected_size, ==, 200 * MiB);
        g_assert_cmpuint(got_size, ==, expected_size);
        g_assert_cmpstr(got, ==, expected);
        read_available(err, err_text);
        g_assert_cmpstr(err_text->str, ==, "done\n");
        close(out);
        close(err);

        /* The daemon never held it: it went from the pipe to the disk. */
        if (!daemon_has_asan(f->daemon_pid)) {
                g_test_message("daemon: VmRSS %" G_GUINT64_FORMAT " KiB, VmHWM %" G_GUINT64_FORMAT " KiB",
                               proc_status_kib(f->daemon_pid, "VmRSS:"),
                               proc_status_kib(f->daemon_pid, "VmHWM:"));
                g_assert_cmpuint(proc_status_kib(f->daemon_pid, "VmHWM:"), <, 32 * 1024);
                g_assert_cmpuint(proc_status_kib(f->daemon_pid, "VmRSS:"), <, 32 * 1024);
        }

        /* GetOutput cannot carry it, and says what can. */
        r = fixture_job_call(f, path, "GetOutput", NULL, &error);
        g_assert_null(r);
        fixture_assert_error(error, "org.freedesktop.DBus.Error.LimitsExceeded", "OpenOutput()");
        g_clear_error(&error);
        g_assert_cmpint(fixture_call_argv(f, (const char *const[]) { "true", NULL }, NULL, &error), ==, 0);
        g_assert_no_error(error);
        fixture_remove_tree(dir);
}

/* ---- while it runs ---------------------------------------------------------------------------------- */

/* Writes a line to each stream, waits for the gate file $1, writes another to stdout. */
static const char gated_script[] =
        "echo one; echo e1 >&2; while [ ! -e \"$1\" ]; do sleep 0.01; done; echo two; exit 4";

static void test_running(Fixture *f, gconstpointer unused) {
        g_autofree char *dir = make_tmp_dir();
        g_autofree char *gate = g_build_filename(dir, "gate", NULL);
        const char *const argv[] = { "sh", "-c", gated_script, "sh", gate, NULL };
        g_autofree char *path = fixture_submit(f, argv, NULL);
        g_autoptr(GVariant) state = NULL;
        g_autoptr(GString) out_text = g_string_new(NULL), err_text = g_string_new(NULL);
        g_autoptr(GError) error = NULL;
        int out, err;

        /* Opened at once, perhaps before the job has written anything: the fds follow the files. */
        g_assert_true(open_output(f->conn, path, &out, &err, &error));
        read_until(out, out_text, "one\n");
        read_until(err, err_text, "e1\n");
        state = fixture_get_property(f, path, JOB_IFACE, "State");
        g_assert_cmpstr(g_variant_get_string(state, NULL), ==, "running"); /* it waits for the gate */
        g_assert_cmpstr(out_text->str, ==, "one\n");

        g_assert_true(g_file_set_contents(gate, "", 0, NULL));
        read_until(out, out_text, "two\n");
        g_assert_cmpint(wait_job(f, path), ==, 4);
        read_available(out, out_text);
        read_available(err, err_text);
        g_assert_cmpstr(out_text->str, ==, "one\ntwo\n");
        g_assert_cmpstr(err_text->str, ==, "e1\n");
        close(out);
        close(err);

        /* A job that wrote nothing reads as empty. */
        {
                g_autofree char *quiet = fixture_submit(f, (const char *const[]) { "true", NULL }, NULL);
                g_autoptr(GString) text = g_string_new(NULL);

                g_assert_cmpint(wait_job(f, quiet), ==, 0);
                g_assert_true(open_output(f->conn, quiet, &out, &err, &error));
                read_available(out, text);
                read_available(err, text);
                g_assert_cmpuint(text->len, ==, 0);
                close(out);
                close(err);
        }
        fixture_remove_tree(dir);
}

/* ---- another user ------------------------------------------------------------------------------------ */

/* Child side: "--as-other ADDRESS open PATH" tries OpenOutput on PATH; "--as-other ADDRESS own" submits
 * a job of its own and reads it back. Prints what happened. */
static int run_as_other(char *argv[]) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) c =
                g_dbus_connection_new_for_address_sync(argv[2],
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                               G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, &error);
        g_autofree char *own = NULL;
        const char *path = argv[4];
        int out, err;

        if (!c) {
                g_print("connect failed: %s\n", error->message);
                return 0;
        }
        if (g_str_equal(argv[3], "own")) {
                const char *const job[] = { "sh", "-c", "printf mine; printf theirs >&2", NULL };
                g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                        c, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Submit",
                        g_variant_new("(^as@a{sv})", job, FIXTURE_NO_OPTIONS), G_VARIANT_TYPE("(o)"),
                        G_DBUS_CALL_FLAGS_NONE, 20000, NULL, &error);
                g_autoptr(GVariant) w = NULL;

                g_assert_no_error(error);
                g_variant_get(r, "(o)", &own);
                w = g_dbus_connection_call_sync(c, BUS_NAME, own, JOB_IFACE, "Wait", NULL, NULL,
                                                G_DBUS_CALL_FLAGS_NONE, 20000, NULL, &error);
                g_assert_no_error(error);
                path = own;
                g_print("%s\n", own);
        }
        if (!open_output(c, path, &out, &err, &error)) {
                g_autofree char *name = g_dbus_error_get_remote_error(error);
                g_print("OpenOutput %s\n", name);
                return 0;
        }
        {
                g_autoptr(GString) text = g_string_new(NULL);
                read_available(out, text);
                g_string_append_c(text, '|');
                read_available(err, text);
                g_print("OpenOutput %s\n", text->str);
        }
        return 0;
}

static char *spawn_as_other(Fixture *f, const char *mode, const char *path) {
        g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
        const char *argv[] = { self, "--as-other", f->address, mode, path, NULL };
        g_autoptr(GError) error = NULL;
        char *out = NULL;
        int status;

        g_assert_nonnull(self);
        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, fixture_become_other, NULL,
                                   &out, NULL, &status, &error));
        g_assert_no_error(error);
        g_assert_true(g_spawn_check_wait_status(status, NULL));
        return out;
}

static void test_other_uid(Fixture *f, gconstpointer unused) {
        const char *const argv[] = { "sh", "-c", "printf secret", NULL };
        g_autofree char *path = NULL, *out = NULL, *own = NULL;
        g_auto(GStrv) lines = NULL;
        g_autoptr(GString) text = g_string_new(NULL);
        g_autoptr(GError) error = NULL;
        int o, e;

        if (getuid() != 0) {
                g_test_skip("needs root to act as another uid");
                return;
        }
        /* Root's job: another uid may not read it (it would have to authenticate as an administrator). */
        path = fixture_submit(f, argv, NULL);
        g_assert_cmpint(wait_job(f, path), ==, 0);
        out = spawn_as_other(f, "open", path);
        g_assert_cmpstr(out, ==, "OpenOutput org.freedesktop.DBus.Error.InteractiveAuthorizationRequired\n");
        g_clear_pointer(&out, g_free);

        /* Its own job it may, though the files are the daemon's; and root may read it too. */
        out = spawn_as_other(f, "own", "");
        lines = g_strsplit(out, "\n", -1);
        g_assert_cmpuint(g_strv_length(lines), ==, 3);
        g_assert_cmpstr(lines[1], ==, "OpenOutput mine|theirs");
        own = g_strdup(lines[0]);
        g_assert_true(open_output(f->conn, own, &o, &e, &error));
        read_available(o, text);
        read_available(e, text);
        g_assert_cmpstr(text->str, ==, "minetheirs");
        close(o);
        close(e);
}

/* ---- a full state dir --------------------------------------------------------------------------------- */

/* The spool leaves 8 MiB free on a file system this small (see spool.h): about 8 MiB of it is for output. */
#define SMALL_FS_MIB 16

static void test_full_state_dir(Fixture *f, gconstpointer unused) {
        g_autofree char *mnt = NULL, *state = NULL, *state_arg = NULL, *options = NULL;
        const char *const fill[] = { "sh", "-c", "yes procpool | head -c 64M; echo after; exit 3", NULL };
        g_autofree char *path = NULL, *after = NULL;
        g_autoptr(GVariant) released = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GString) text = g_string_new(NULL);
        int out, err, status;

        if (getuid() != 0) {
                g_test_skip("needs root to mount a small tmpfs");
                return;
        }
        /* A mount namespace of this thread's own, so that a failing test leaves no mount behind; the
         * daemon it spawns shares it. */
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                g_test_message("no mount namespace of our own (%s): mounting in the test's",
                               g_strerror(errno));
        mnt = make_tmp_dir();
        options = g_strdup_printf("size=%dm", SMALL_FS_MIB);
        if (mount("tmpfs", mnt, "tmpfs", 0, options) < 0) {
                g_autofree char *why = g_strdup_printf("cannot mount a tmpfs: %s", g_strerror(errno));
                g_test_skip(why);
                g_rmdir(mnt);
                return;
        }
        state = g_build_filename(mnt, "state", NULL);
        state_arg = g_strdup_printf("--state-dir=%s", state);
        f->daemon_pid = fixture_start_daemon(f, (const char *const[]) { state_arg, NULL });

        /* More than fits: the job ends as it would have, its output cut where the spool stopped. */
        path = fixture_submit(f, fill, NULL);
        g_assert_cmpint(wait_job(f, path), ==, 3);
        g_assert_true(property_bool(f, path, "OutputIncomplete"));
        g_assert_true(open_output(f->conn, path, &out, &err, &error));
        read_available(out, text);
        g_test_message("kept %zu bytes of 64 MiB", text->len);
        g_assert_cmpuint(text->len, >, 1 * MiB);
        g_assert_cmpuint(text->len, <, SMALL_FS_MIB * MiB);
        for (gsize i = 0; i < text->len; i++) /* what fit, as written: "procpool\n" over and over */
                if (text->str[i] != "procpool\n"[i % 9])
                        g_error("byte %zu of the kept output is %d, not what the job wrote", i, text->str[i]);
        close(out);
        close(err);

        /* The daemon serves on: the store has its room. */
        for (int i = 0; i < 20; i++) {
                g_assert_cmpint(fixture_call_argv(f, (const char *const[]) { "true", NULL }, NULL, &error),
                                ==, 0);
                g_assert_no_error(error);
        }

        /* Released, the big one gives its room back, and output is captured whole again. */
        released = fixture_job_call(f, path, "Release", NULL, &error);
        g_assert_no_error(error);
        after = fixture_submit(f, (const char *const[]) { "echo", "after", NULL }, NULL);
        g_assert_cmpint(wait_job(f, after), ==, 0);
        g_assert_false(property_bool(f, after, "OutputIncomplete"));
        g_assert_true(open_output(f->conn, after, &out, &err, &error));
        g_string_truncate(text, 0);
        read_available(out, text);
        g_assert_cmpstr(text->str, ==, "after\n");
        close(out);
        close(err);

        status = fixture_stop_daemon(f->daemon_pid);
        f->daemon_pid = 0;
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        g_assert_cmpint(umount(mnt), ==, 0);
        g_assert_cmpint(g_rmdir(mnt), ==, 0);
}

/* ---- GetOutput on the session bus ------------------------------------------------------------------- */

/* A bus configured as a session bus is: messages up to 1 GB, where a dbus-daemon takes 32 MiB by default. */
static const char session_bus_config[] =
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
        " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
        "<busconfig>\n"
        "  <type>session</type>\n"
        "  <listen>unix:tmpdir=/tmp</listen>\n"
        "  <auth>EXTERNAL</auth>\n"
        "  <policy context=\"default\">\n"
        "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
        "    <allow eavesdrop=\"true\"/>\n"
        "    <allow own=\"*\"/>\n"
        "  </policy>\n"
        "  <limit name=\"max_message_size\">1000000000</limit>\n"
        "</busconfig>\n";

static void die_with_test(gpointer unused) {
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
}

/* A dbus-daemon of the config above, as f's bus; procpoold is started by the test, with --user. */
static void setup_session_bus(Fixture *f, gconstpointer unused) {
        fixture_setup_bus_config(f, session_bus_config);
}

/* procpoold --user on f's bus, as its session bus: the per-stream cap of the session bus applies. */
static void start_session_daemon(Fixture *f) {
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) env = g_environ_setenv(g_get_environ(), "DBUS_SESSION_BUS_ADDRESS", f->address, TRUE);
        g_autofree char *state_arg = NULL;

        f->state_dir = make_tmp_dir();
        state_arg = g_strdup_printf("--state-dir=%s", f->state_dir);
        const char *argv[] = { g_getenv("PROCPOOLD"), "--user", state_arg, NULL };
        g_assert_nonnull(argv[0]);
        g_assert_true(g_spawn_async(NULL, (char **) argv, env, G_SPAWN_DO_NOT_REAP_CHILD, die_with_test, NULL,
                                    &f->daemon_pid, &error));
        g_assert_no_error(error);
        for (int i = 0; i < 1000; i++) { /* ready means the name is owned */
                g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                        f->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                        "NameHasOwner", g_variant_new("(s)", BUS_NAME), G_VARIANT_TYPE("(b)"),
                        G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
                gboolean has = FALSE;
                if (r)
                        g_variant_get(r, "(b)", &has);
                if (has)
                        return;
                g_assert_cmpint(waitpid(f->daemon_pid, NULL, WNOHANG), ==, 0);
                g_usleep(10000);
        }
        g_error("procpoold did not take its bus name within 10 s");
}

static void test_get_output_session_bus(Fixture *f, gconstpointer unused) {
        /* 70 MiB on one stream, none on the other: within the two streams' 120 MiB, but past the 64 MiB a
         * D-Bus array may hold; a reply carrying it would get procpoold thrown off the bus. */
        const char *const argv[] = { "sh", "-c", "head -c 70M /dev/zero", NULL };
        g_autofree char *path = NULL;
        g_autoptr(GVariant) r = NULL;
        g_autoptr(GError) error = NULL;
        guint64 size;
        int out, err;

        start_session_daemon(f);
        path = fixture_submit(f, argv, NULL);
        g_assert_cmpint(wait_job(f, path), ==, 0);
        r = fixture_job_call(f, path, "GetOutput", NULL, &error);
        g_assert_null(r);
        fixture_assert_error(error, "org.freedesktop.DBus.Error.LimitsExceeded", "OpenOutput()");
        g_clear_error(&error);

        /* Still on the bus, and the output is all there. */
        g_assert_true(open_output(f->conn, path, &out, &err, &error));
        g_free(checksum_fd(out, &size));
        g_assert_cmpuint(size, ==, 70 * MiB);
        close(out);
        close(err);
        g_assert_cmpint(fixture_call_argv(f, (const char *const[]) { "true", NULL }, NULL, &error), ==, 0);
        g_assert_no_error(error);
}

int main(int argc, char *argv[]) {
        if (argc >= 5 && g_str_equal(argv[1], "--as-other"))
                return run_as_other(argv);

        g_test_init(&argc, &argv, NULL);

        g_test_add("/procpool/output/large", Fixture, NULL, fixture_setup, test_large, fixture_teardown);
        g_test_add("/procpool/output/running", Fixture, NULL, fixture_setup, test_running, fixture_teardown);
        /* The system instance: another uid runs jobs there (as itself). */
        g_test_add("/procpool/output/other-uid", Fixture, NULL, fixture_setup_system, test_other_uid,
                   fixture_teardown);
        g_test_add("/procpool/output/get-output-session-bus", Fixture, NULL, setup_session_bus,
                   test_get_output_session_bus, fixture_teardown);
        g_test_add("/procpool/output/full-state-dir", Fixture, NULL, fixture_setup_no_daemon,
                   test_full_state_dir, fixture_teardown);
        return g_test_run();
}
