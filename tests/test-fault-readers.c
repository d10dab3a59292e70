/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fault suite's slow and stuck clients: a client that sends calls and never reads the replies must
 * not stall the daemon's other callers, grow its memory, or hold its exit. dbus-daemon charges what it
 * holds for a reader to the sender's connection, and stops reading that connection past its
 * max_incoming_bytes: procpoold bounds what waits at the bus for any client that does not read. Under the
 * 1024-fd limit, with clients of two uids. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

#define MiB (1024U * 1024U)
/* The bound the tests assert on a call of another client: generous, not a speed target. */
#define PROMPT_USEC (5 * G_USEC_PER_SEC)
/* What the docs promise for the daemon's exit on SIGTERM, with jobs that end on SIGTERM: the flush of
 * what it wrote to the bus is cut after 5 s. */
#define EXIT_BOUND_USEC (10 * G_USEC_PER_SEC)

static const char *const argv_true[] = { "true", NULL };
static const char *const argv_2mib[] = { "head", "-c", "2097152", "/dev/zero", NULL };

static void restart(Fixture *f) {
        fixture_restart_daemon_nofile(f, NULL, FIXTURE_SERVICE_NOFILE, FIXTURE_SERVICE_NOFILE);
}

/* ---- the stuck client: this binary again, as root or as the other uid ----------------------------- */

/* "--stuck ADDRESS N": Submits a job of 2 MiB of output and waits for it, says "ready", waits for a line on
 * stdin, then, on a connection of its own, sends N GetOutput of it and N/8 GetManagedObjects and ListJobs,
 * says "flooding" and never reads. */
static int run_stuck(const char *address, guint n) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) c = fixture_connect(address, &error);
        g_autoptr(GVariant) r = NULL, w = NULL;
        g_autoptr(GIOStream) s = NULL;
        g_autoptr(GDBusMessage) hello = NULL;
        g_autofree char *path = NULL;
        guint32 serial = 1;

        if (!c)
                return 1;
        r = g_dbus_connection_call_sync(c, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Submit",
                                        g_variant_new("(^as@a{sv})", argv_2mib, FIXTURE_NO_OPTIONS), NULL,
                                        G_DBUS_CALL_FLAGS_NONE, FIXTURE_WAIT_SEC * 1000, NULL, &error);
        if (!r)
                return 1;
        g_variant_get(r, "(o)", &path);
        w = g_dbus_connection_call_sync(c, BUS_NAME, path, JOB_IFACE, "Wait", NULL, NULL,
                                        G_DBUS_CALL_FLAGS_NONE, FIXTURE_WAIT_SEC * 1000, NULL, &error);
        if (!w)
                return 1;
        printf("ready\n");
        fflush(stdout);
        if (getchar() == EOF)
                return 1;

        s = fixture_raw_connect(address);
        hello = g_dbus_message_new_method_call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                               "org.freedesktop.DBus", "Hello");
        fixture_raw_send(s, hello, serial++);
        for (guint i = 0; i < n; i++) {
                g_autoptr(GDBusMessage) m =
                        g_dbus_message_new_method_call(BUS_NAME, path, JOB_IFACE, "GetOutput");
                fixture_raw_send(s, m, serial++);
                if (i % 8 == 0) {
                        g_autoptr(GDBusMessage) o = g_dbus_message_new_method_call(
                                BUS_NAME, MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                                "GetManagedObjects");
                        g_autoptr(GDBusMessage) l = g_dbus_message_new_method_call(BUS_NAME, MANAGER_PATH,
                                                                                   MANAGER_IFACE, "ListJobs");
                        fixture_raw_send(s, o, serial++);
                        fixture_raw_send(s, l, serial++);
                }
        }
        printf("flooding\n");
        fflush(stdout);
        for (;;)
                pause();
}

typedef struct Stuck {
        GPid pid;
        int in, out;
} Stuck;

/* The stuck client ends with the test, whatever becomes of it; PR_SET_PDEATHSIG goes with a new uid. */
static void stuck_child_setup(gpointer other) {
        if (other)
                fixture_become_other(NULL);
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* Reads the line the stuck client says: its gate. */
static void stuck_expect(Stuck *s, const char *line) {
        char buf[16] = {};
        size_t got = 0, n = strlen(line);

        while (got < n) {
                ssize_t k = read(s->out, buf + got, n - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        g_error("the stuck client ended before it said '%s'", line);
                got += (size_t) k;
        }
        g_assert_cmpstr(buf, ==, line);
}

/* Starts a stuck client (as the other uid with other), and returns once its job has ended. */
static void stuck_start(Fixture *f, Stuck *s, guint n, gboolean other) {
        g_autofree char *self = fixture_self(), *count = g_strdup_printf("%u", n);
        const char *argv[] = { self, "--stuck", f->address, count, NULL };
        g_autoptr(GError) error = NULL;

        g_assert_true(g_spawn_async_with_pipes(NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                               stuck_child_setup, GINT_TO_POINTER(other), &s->pid, &s->in,
                                               &s->out, NULL, &error));
        g_assert_no_error(error);
        stuck_expect(s, "ready\n");
}

/* Lets it send its calls, and returns once they are all written. */
static void stuck_flood(Stuck *s) {
        g_assert_cmpint(write(s->in, "\n", 1), ==, 1);
        stuck_expect(s, "flooding\n");
}

static void stuck_stop(Stuck *s) {
        (void) kill(s->pid, SIGKILL);
        (void) waitpid(s->pid, NULL, 0);
        g_spawn_close_pid(s->pid);
        close(s->in);
        close(s->out);
}

/* A Call of `true`, bounded: how long it took, or G_MAXINT64 if no answer came within 60 s. */
static gint64 timed_call(Fixture *f) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        gint64 start = g_get_monotonic_time();

        r = g_dbus_connection_call_sync(f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call",
                                        g_variant_new("(^as@a{sv})", argv_true, FIXTURE_NO_OPTIONS), NULL,
                                        G_DBUS_CALL_FLAGS_NONE, FIXTURE_WAIT_SEC * 1000, NULL, &error);
        if (!r) {
                g_test_message("Call: %s", error->message);
                return G_MAXINT64;
        }
        return g_get_monotonic_time() - start;
}

/* The other uid's Call, through the helper: how long it took, with the helper's start. */
static gint64 timed_other_call(Fixture *f) {
        gint64 start = g_get_monotonic_time();
        g_autofree char *out = fixture_other_client(f, "call", argv_true);

        if (!g_str_equal(out, "rc=0")) {
                g_test_message("the other uid's Call: %s", out);
                return G_MAXINT64;
        }
        return g_get_monotonic_time() - start;
}

/* ---- others are served --------------------------------------------------------------------------------- */

/* A client pipelined GetOutput of 2 MiB and never read: once 127 MiB of replies waited for it, dbus-daemon
 * stopped reading procpoold's connection, and no other caller got an answer again (each Call timed out). */
static void test_others_served(Fixture *f, gconstpointer unused) {
        Stuck root, other;

        if (!fixture_have_root())
                return;
        restart(f);
        stuck_start(f, &other, 400, TRUE);
        stuck_start(f, &root, 400, FALSE);
        stuck_flood(&other);
        stuck_flood(&root);
        for (int i = 0; i < 10; i++) {
                g_assert_cmpint(timed_call(f), <, PROMPT_USEC);
                g_assert_cmpint(timed_other_call(f), <, PROMPT_USEC);
        }
        /* What the daemon holds does not grow with what the clients do not read. */
        if (!fixture_proc_has_asan(f->daemon_pid))
                g_assert_cmpuint(fixture_proc_status_kib(f->daemon_pid, "VmRSS:"), <, 64 * 1024);
        fixture_assert_answers(f);
        stuck_stop(&root);
        stuck_stop(&other);
        fixture_assert_answers(f);
}

/* ---- a client that reads late hears why ------------------------------------------------------------------ */

/* Pipelined GetOutput of 2 MiB, read only once all are sent: the first come whole, then LimitsExceeded
 * naming what waits unread; once it has read them, it is served again. All 40 came whole, 80 MiB at the
 * bus for one client. */
static GDBusMessage *receive_reply(GIOStream *s) {
        for (;;) {
                GDBusMessage *r = fixture_raw_receive(s);
                /* Hello's reply and the bus's NameAcquired come first. */
                if (g_dbus_message_get_reply_serial(r) >= 2)
                        return r;
                g_object_unref(r);
        }
}

static void test_refused(Fixture *f, gconstpointer unused) {
        g_autofree char *gate = fixture_gate_path(f, "handled"), *q = g_shell_quote(gate);
        g_autofree char *touch_sh = g_strdup_printf("touch %s", q);
        const char *const touch[] = { "sh", "-c", touch_sh, NULL };
        g_autoptr(GIOStream) s = NULL;
        g_autoptr(GDBusMessage) hello = NULL, gate_job = NULL, again = NULL, last = NULL;
        g_autofree char *path = NULL;
        guint ok = 0, refused = 0;
        const guint n = 40;

        restart(f);
        path = fixture_submit(f, argv_2mib, NULL);
        g_assert_true(fixture_wait_finished(f, path));
        s = fixture_raw_connect(f->address);
        hello = g_dbus_message_new_method_call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                               "org.freedesktop.DBus", "Hello");
        fixture_raw_send(s, hello, 1);
        for (guint i = 0; i < n; i++) {
                g_autoptr(GDBusMessage) m =
                        g_dbus_message_new_method_call(BUS_NAME, path, JOB_IFACE, "GetOutput");
                fixture_raw_send(s, m, 2 + i);
        }
        /* A job it submits after them says when procpoold has handled them all: it reads only then. */
        gate_job = g_dbus_message_new_method_call(BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Submit");
        g_dbus_message_set_body(gate_job, g_variant_new("(^as@a{sv})", touch, FIXTURE_NO_OPTIONS));
        fixture_raw_send(s, gate_job, 2 + n);
        g_assert_true(fixture_wait_for_file(gate));
        for (guint i = 0; i < n;) {
                g_autoptr(GDBusMessage) r = receive_reply(s);
                GVariant *body = g_dbus_message_get_body(r);

                if (g_dbus_message_get_reply_serial(r) > 1 + n)
                        continue; /* the Submit's */
                i++;

                if (g_dbus_message_get_message_type(r) == G_DBUS_MESSAGE_TYPE_METHOD_RETURN) {
                        g_autoptr(GVariant) out = g_variant_get_child_value(body, 0);
                        g_assert_cmpuint(g_variant_n_children(out), ==, 2 * MiB);
                        ok++;
                } else {
                        g_autoptr(GVariant) text = g_variant_get_child_value(body, 0);
                        g_assert_cmpint(g_dbus_message_get_message_type(r), ==, G_DBUS_MESSAGE_TYPE_ERROR);
                        g_assert_cmpstr(g_dbus_message_get_error_name(r), ==,
                                        "org.freedesktop.DBus.Error.LimitsExceeded");
                        g_assert_nonnull(strstr(g_variant_get_string(text, NULL), "wait at the bus unread"));
                        refused++;
                }
        }
        g_test_message("%u replies whole, %u refused", ok, refused);
        g_assert_cmpuint(ok, >=, 2);
        g_assert_cmpuint(refused, >, 0);

        /* It has read everything: it is served whole again. */
        again = g_dbus_message_new_method_call(BUS_NAME, path, JOB_IFACE, "GetOutput");
        fixture_raw_send(s, again, 3 + n);
        do {
                g_clear_object(&last);
                last = receive_reply(s);
        } while (g_dbus_message_get_reply_serial(last) != 3 + n);
        g_assert_cmpint(g_dbus_message_get_message_type(last), ==, G_DBUS_MESSAGE_TYPE_METHOD_RETURN);
        fixture_assert_answers(f);
}

/* ---- the daemon's exit --------------------------------------------------------------------------------- */

/* Waits for the daemon to exit after SIGTERM; returns how long it took, or fails past the bound's double. */
static gint64 sigterm_exit(Fixture *f) {
        struct pollfd p = { .fd = (int) syscall(SYS_pidfd_open, f->daemon_pid, 0), .events = POLLIN };
        gint64 start = g_get_monotonic_time();
        int status = 0, r;

        g_assert_cmpint(p.fd, >=, 0);
        g_assert_cmpint(kill(f->daemon_pid, SIGTERM), ==, 0);
        do
                r = poll(&p, 1, 2 * EXIT_BOUND_USEC / 1000);
        while (r < 0 && errno == EINTR);
        close(p.fd);
        if (r != 1) {
                (void) kill(f->daemon_pid, SIGKILL);
                (void) waitpid(f->daemon_pid, NULL, 0);
                f->daemon_pid = 0;
                g_error("procpoold did not exit within %d s of SIGTERM",
                        (int) (2 * EXIT_BOUND_USEC / G_USEC_PER_SEC));
        }
        g_assert_cmpint(waitpid(f->daemon_pid, &status, 0), ==, f->daemon_pid);
        f->daemon_pid = 0;
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        return g_get_monotonic_time() - start;
}

/* With stuck clients of both uids connected and a Call running, SIGTERM: the daemon never exited (it waited
 * for the bus to take what it wrote, which the bus did not read). */
static void test_sigterm(Fixture *f, gconstpointer unused) {
        const char *const sleeper[] = { "sleep", "1000", NULL };
        FixtureReply call = {};
        Stuck root, other;
        gint64 t;

        if (!fixture_have_root())
                return;
        restart(f);
        stuck_start(f, &other, 400, TRUE);
        stuck_start(f, &root, 400, FALSE);
        stuck_flood(&other);
        stuck_flood(&root);
        g_dbus_connection_call(f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call",
                               g_variant_new("(^as@a{sv})", sleeper, FIXTURE_NO_OPTIONS), NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, fixture_on_reply, &call);
        g_assert_true(fixture_wait_counts(f, 1, 0));
        t = sigterm_exit(f);
        g_test_message("exited %" G_GINT64_FORMAT " ms after SIGTERM", t / 1000);
        g_assert_cmpint(t, <, EXIT_BOUND_USEC);
        /* The running Call's caller heard of it. */
        g_assert_true(fixture_reply_wait(&call));
        fixture_assert_error(call.error, "org.procpool.Error.Cancelled", NULL);
        fixture_reply_clear(&call);
        stuck_stop(&root);
        stuck_stop(&other);
}

/* A bus that stopped reading the daemon's connection (here: a client that subscribed to every signal and
 * never reads, on a bus of small limits): the daemon waited for it to take megabytes of signals, forever.
 * It gives them up after 5 s. */
static const char low_limits_bus[] =
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
        " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
        "<busconfig>\n"
        "  <type>session</type>\n"
        "  <listen>unix:tmpdir=/tmp</listen>\n"
        "  <auth>EXTERNAL</auth>\n"
        "  <limit name=\"max_incoming_bytes\">65536</limit>\n"
        "  <limit name=\"max_outgoing_bytes\">4194304</limit>\n"
        "  <policy context=\"default\">\n"
        "    <allow user=\"*\"/>\n"
        "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
        "    <allow eavesdrop=\"true\"/>\n"
        "    <allow own=\"*\"/>\n"
        "  </policy>\n"
        "</busconfig>\n";

static void setup_low_limits(Fixture *f, gconstpointer unused) {
        fixture_setup_bus_config(f, low_limits_bus);
        f->daemon_pid = fixture_start_daemon(f, NULL);
}

static void test_sigterm_stalled_bus(Fixture *f, gconstpointer unused) {
        g_autofree char *last = fixture_gate_path(f, "last"), *q_last = g_shell_quote(last);
        g_autofree char *touch_sh = g_strdup_printf("touch %s", q_last);
        g_autofree char *big = g_strnfill(64 * 1024, 'a');
        const char *const job[] = { "true", big, NULL };
        /* The last of them says when the daemon has handled them all, with an argv as large: a 151st
         * call behind them waited at the bus now and then, behind the daemon's unread replies. */
        const char *const final[] = { "sh", "-c", touch_sh, "sh", big, NULL };
        g_autoptr(GIOStream) s = NULL;
        g_autoptr(GDBusMessage) hello = NULL, match = NULL;
        gint64 t;

        s = fixture_raw_connect(f->address);
        hello = g_dbus_message_new_method_call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                               "org.freedesktop.DBus", "Hello");
        match = g_dbus_message_new_method_call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                               "org.freedesktop.DBus", "AddMatch");
        g_dbus_message_set_body(match, g_variant_new("(s)", "type='signal'"));
        fixture_raw_send(s, hello, 1);
        fixture_raw_send(s, match, 2);
        /* It reads until its match is in, and never again. */
        for (;;) {
                g_autoptr(GDBusMessage) r = fixture_raw_receive(s);
                if (g_dbus_message_get_reply_serial(r) == 2)
                        break;
        }

        /* 150 jobs of 64 KiB argv (well under uid 0's share of the held-data bound): about 10 MiB of
         * InterfacesAdded, which the bus stops taking from the daemon
         * at 64 KiB. Their Submits are not answered then: sent without waiting, and the last job says when
         * the daemon has handled them. */
        for (int i = 0; i < 149; i++)
                g_dbus_connection_call(f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Submit",
                                       g_variant_new("(^as@a{sv})", job, FIXTURE_NO_OPTIONS), NULL,
                                       G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, NULL, NULL);
        g_dbus_connection_call(f->conn, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Submit",
                               g_variant_new("(^as@a{sv})", final, FIXTURE_NO_OPTIONS), NULL,
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, NULL, NULL);
        g_assert_true(fixture_wait_for_file(last));
        t = sigterm_exit(f);
        g_test_message("exited %" G_GINT64_FORMAT " ms after SIGTERM", t / 1000);
        g_assert_cmpint(t, <, EXIT_BOUND_USEC);
}

#define ADD(name, setup, fn) g_test_add("/procpool/fault/" name, Fixture, NULL, setup, fn, fixture_teardown)

int main(int argc, char *argv[]) {
        if (argc == 4 && g_str_equal(argv[1], "--stuck"))
                return run_stuck(argv[2], (guint) g_ascii_strtoull(argv[3], NULL, 10));

        g_test_init(&argc, &argv, NULL);
        /* procpoold runs as OTHER_UID: root and that uid may both run jobs through it. */
        ADD("stuck-reader-others-served", fixture_setup_open_bus_other_daemon, test_others_served);
        ADD("stuck-reader-refused", fixture_setup, test_refused);
        ADD("stuck-reader-sigterm", fixture_setup_open_bus_other_daemon, test_sigterm);
        ADD("stuck-subscriber-sigterm", setup_low_limits, test_sigterm_stalled_bus);
        return g_test_run();
}
