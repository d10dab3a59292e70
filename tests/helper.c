/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the tests run as a job or as a client of another uid where a shell cannot do it:
 *   procpool-test-helper client ADDRESS call|communicate CMD...
 *   procpool-test-helper client ADDRESS submit PRIORITY CMD...
 *           one request to procpoold at ADDRESS, its outcome on stdout: "rc=N" (Call),
 *           "rc=N out=BYTES" (Communicate), "path=JOB_PATH" (Submit, with the option priority) or
 *           "error=NAME"
 *   procpool-test-helper drain TEXT GATE
 *           writes TEXT to stdout, waits until the reader of stdout (procpoold) has taken all of it,
 *           creates the file GATE, then waits for a signal to end it
 *   procpool-test-helper script ADDRESS OP...
 *           one request per OP, in order, on one connection; one line per OP on stdout (see run_op())
 *   procpool-test-helper listen ADDRESS READY STOP
 *           prints every signal procpoold sends that reaches this connection, one line each, from the
 *           moment it creates the file READY until a PropertiesChanged says PoolSize is STOP */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>

#include "fixture.h"

/* How long the other uid's client waits for its answer: long enough for any loaded machine, short
 * enough that a client starved by a broken scheduler fails the test instead of hanging it. */
#define CLIENT_TIMEOUT_MSEC (90 * 1000)

static int run_client(const char *address, const char *mode, const char *const *cmd) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) c = fixture_connect(address, &error);
        g_autoptr(GVariant) r = NULL;
        gboolean communicate = g_str_equal(mode, "communicate"), submit = g_str_equal(mode, "submit");
        gboolean many = g_str_equal(mode, "submit-many");

        if (!c) {
                g_print("connect-failed=%s\n", error->message);
                return 0;
        }
        if (submit) {
                GVariant *options;

                if (!cmd[0] || !cmd[1])
                        return 2;
                options = fixture_options(
                        "priority", g_variant_new_int32((gint32) g_ascii_strtoll(cmd[0], NULL, 10)), NULL);
                r = g_dbus_connection_call_sync(c, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Submit",
                                                g_variant_new("(^as@a{sv})", cmd + 1, options), NULL,
                                                G_DBUS_CALL_FLAGS_NONE, CLIENT_TIMEOUT_MSEC, NULL, &error);
        } else if (many) {
                /* Each word is a command of its own. */
                GVariantBuilder b;

                g_variant_builder_init(&b, G_VARIANT_TYPE("aas"));
                for (const char *const *w = cmd; *w; w++) {
                        const char *one[] = { *w, NULL };
                        g_variant_builder_add(&b, "^as", one);
                }
                r = g_dbus_connection_call_sync(c, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "SubmitMany",
                                                g_variant_new("(aas@a{sv})", &b, FIXTURE_NO_OPTIONS), NULL,
                                                G_DBUS_CALL_FLAGS_NONE, CLIENT_TIMEOUT_MSEC, NULL, &error);
        } else if (communicate)
                r = g_dbus_connection_call_sync(
                        c, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                        g_variant_new("(^as@ay@a{sv})", cmd, fixture_bytes("", 0), FIXTURE_NO_OPTIONS), NULL,
                        G_DBUS_CALL_FLAGS_NONE, CLIENT_TIMEOUT_MSEC, NULL, &error);
        else
                r = g_dbus_connection_call_sync(c, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Call",
                                                g_variant_new("(^as@a{sv})", cmd, FIXTURE_NO_OPTIONS), NULL,
                                                G_DBUS_CALL_FLAGS_NONE, CLIENT_TIMEOUT_MSEC, NULL, &error);
        if (!r) {
                g_autofree char *name = g_dbus_error_get_remote_error(error);
                g_print("error=%s\n", name ? name : error->message);
                return 0;
        }
        if (submit) {
                const char *path;
                g_variant_get(r, "(&o)", &path);
                g_print("path=%s\n", path);
        } else if (many) {
                g_autoptr(GVariant) paths = g_variant_get_child_value(r, 0);
                g_print("paths=%zu\n", g_variant_n_children(paths));
        } else if (communicate) {
                g_autoptr(GVariant) out = NULL, err = NULL;
                int rc;
                g_variant_get(r, "(i@ay@ay)", &rc, &out, &err);
                g_print("rc=%d out=%zu\n", rc, g_variant_n_children(out));
        } else {
                int rc;
                g_variant_get(r, "(i)", &rc);
                g_print("rc=%d\n", rc);
        }
        return 0;
}

static int drain(const char *text, const char *gate) {
        size_t n = strlen(text);
        int left;

        for (size_t done = 0; done < n;) {
                ssize_t k = write(STDOUT_FILENO, text + done, n - done);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return 1;
                done += (size_t) k;
        }
        /* The job polls, not the test: what is left in the pipe has not reached procpoold yet. */
        for (;;) {
                if (ioctl(STDOUT_FILENO, FIONREAD, &left) < 0)
                        return 1;
                if (left == 0)
                        break;
                g_usleep(10000);
        }
        if (!g_file_set_contents(gate, "", 0, NULL))
                return 1;
        for (;;)
                pause();
}

/* ---- script: requests of a client, one line of outcome each ----------------------------------------- */

/* "error=NAME: MESSAGE" of a failed call. */
static char *error_line(const GError *error) {
        g_autofree char *name = g_dbus_error_get_remote_error(error);
        g_autoptr(GError) copy = g_error_copy(error);

        if (name)
                g_dbus_error_strip_remote_error(copy);
        return g_strdup_printf("error=%s: %s", name ? name : "none", copy->message);
}

/* Prints "WHAT VALUE" or "WHAT error=NAME: MESSAGE" on one line. */
static void print_outcome(const char *what, GVariant *r, const GError *error) {
        g_autofree char *text = r ? g_variant_print(r, FALSE) : error_line(error);
        g_autofree char *escaped = g_strescape(text, NULL);

        g_print("%s %s\n", what, escaped);
}

static GVariant *call(GDBusConnection *c, const char *path, const char *iface, const char *method,
                      GVariant *params, GDBusCallFlags flags, GError **error) {
        return g_dbus_connection_call_sync(c, BUS_NAME, path, iface, method, params, NULL, flags,
                                           CLIENT_TIMEOUT_MSEC, NULL, error);
}

/* Reads "[user=U] [cwd=D] [label=L] [env=NAME=VALUE] [interactive] -- CMD..." from words into a{sv}
 * options and an argv; returns the argv's first word. */
static char **parse_job(char **words, GVariant **ret_options, GDBusCallFlags *flags) {
        GVariantBuilder b;
        char **w = words;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        for (; *w && !g_str_equal(*w, "--"); w++) {
                if (g_str_has_prefix(*w, "user="))
                        g_variant_builder_add(&b, "{sv}", "user", g_variant_new_string(*w + 5));
                else if (g_str_has_prefix(*w, "cwd="))
                        g_variant_builder_add(&b, "{sv}", "cwd", g_variant_new_string(*w + 4));
                else if (g_str_has_prefix(*w, "label="))
                        g_variant_builder_add(&b, "{sv}", "label", g_variant_new_string(*w + 6));
                else if (g_str_has_prefix(*w, "env=")) {
                        const char *env[] = { *w + 4, NULL };
                        g_variant_builder_add(&b, "{sv}", "environment", g_variant_new_strv(env, -1));
                } else if (g_str_equal(*w, "interactive"))
                        *flags |= G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION;
                else
                        g_error("unknown job word '%s'", *w);
        }
        *ret_options = g_variant_builder_end(&b);
        return *w ? w + 1 : w;
}

/* OpenOutput's two fds, read to their ends: "out=...|err=..." */
static char *read_open_output(GDBusConnection *c, const char *path, GDBusCallFlags flags, GError **error) {
        g_autoptr(GUnixFDList) fds = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_with_unix_fd_list_sync(
                c, BUS_NAME, path, JOB_IFACE, "OpenOutput", NULL, NULL, flags, CLIENT_TIMEOUT_MSEC, NULL,
                &fds, NULL, error);
        g_autoptr(GString) text = g_string_new(NULL);

        if (!r)
                return NULL;
        for (int i = 0; i < 2; i++) {
                int fd = g_unix_fd_list_get(fds, i, NULL);
                char buf[4096];
                ssize_t k;

                g_string_append(text, i == 0 ? "out=" : "|err=");
                while ((k = read(fd, buf, sizeof(buf))) > 0)
                        g_string_append_len(text, buf, k);
                close(fd);
        }
        return g_string_free(g_steal_pointer(&text), FALSE);
}

/* One operation, its words split on spaces:
 *   call|communicate|submit JOB          Call (rc=N), Communicate (rc=N out=... err=...), Submit (the path)
 *   submit-leave-after FILE JOB          Submit, sent; the client leaves once FILE exists, without the
 *                                        answer
 *   get PATH PROPERTY, getall PATH       a job's property, or all of them
 *   managed, list, introspect PATH       GetManagedObjects, ListJobs, Introspect
 *   job PATH METHOD [interactive]        Wait, Cancel, Release, GetOutput, Kill (SIGKILL), OpenOutput
 *   pool-size N [interactive]            sets PoolSize
 *   reexecute [interactive]              Reexecute()
 * JOB is as parse_job() reads it. Returns FALSE once the client must leave. */
static gboolean run_op(GDBusConnection *c, const char *op) {
        g_auto(GStrv) w = g_strsplit(op, " ", -1);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL;
        GDBusCallFlags flags = G_DBUS_CALL_FLAGS_NONE;
        const char *verb = w[0];

        if (g_str_equal(verb, "call") || g_str_equal(verb, "communicate") || g_str_equal(verb, "submit") ||
            (g_str_equal(verb, "submit-leave-after") && w[1])) {
                gboolean leave = g_str_equal(verb, "submit-leave-after");
                GVariant *options;
                char **argv = parse_job(w + (leave ? 2 : 1), &options, &flags);

                if (g_str_equal(verb, "communicate"))
                        r = call(c, MANAGER_PATH, MANAGER_IFACE, "Communicate",
                                 g_variant_new("(^as@ay@a{sv})", argv, fixture_bytes("", 0), options), flags,
                                 &error);
                else if (leave) {
                        gint64 deadline = g_get_monotonic_time() + CLIENT_TIMEOUT_MSEC * 1000;

                        g_dbus_connection_call(c, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Submit",
                                               g_variant_new("(^as@a{sv})", argv, options), NULL, flags, -1,
                                               NULL, NULL, NULL);
                        g_assert_true(g_dbus_connection_flush_sync(c, NULL, NULL));
                        /* The client polls, not the test: FILE says its request got where it should. */
                        while (!g_file_test(w[1], G_FILE_TEST_EXISTS) && g_get_monotonic_time() < deadline)
                                g_usleep(10000);
                        g_print("submit-leave-after %s\n",
                                g_file_test(w[1], G_FILE_TEST_EXISTS) ? "left" : "timeout");
                        return FALSE;
                } else
                        r = call(c, MANAGER_PATH, MANAGER_IFACE,
                                 g_str_equal(verb, "call") ? "Call" : "Submit",
                                 g_variant_new("(^as@a{sv})", argv, options), flags, &error);
                if (r && g_str_equal(verb, "communicate")) {
                        g_autoptr(GVariant) out = NULL, err = NULL;
                        g_autofree char *o = NULL, *e = NULL, *ot = NULL, *et = NULL;
                        int rc;

                        g_variant_get(r, "(i@ay@ay)", &rc, &out, &err);
                        ot = fixture_bytes_text(out);
                        et = fixture_bytes_text(err);
                        o = g_strescape(ot, NULL);
                        e = g_strescape(et, NULL);
                        g_print("communicate rc=%d out=%s err=%s\n", rc, o, e);
                        return TRUE;
                }
                print_outcome(verb, r, error);
        } else if (g_str_equal(verb, "submit-many")) {
                /* The job twice, in one SubmitMany. */
                GVariant *options;
                char **argv = parse_job(w + 1, &options, &flags);
                GVariantBuilder b;

                g_variant_builder_init(&b, G_VARIANT_TYPE("aas"));
                g_variant_builder_add(&b, "^as", argv);
                g_variant_builder_add(&b, "^as", argv);
                r = call(c, MANAGER_PATH, MANAGER_IFACE, "SubmitMany",
                         g_variant_new("(aas@a{sv})", &b, options), flags, &error);
                print_outcome(verb, r, error);
        } else if (g_str_equal(verb, "get") && w[1] && w[2]) {
                r = call(c, w[1], "org.freedesktop.DBus.Properties", "Get",
                         g_variant_new("(ss)", JOB_IFACE, w[2]), flags, &error);
                print_outcome(op, r, error);
        } else if (g_str_equal(verb, "getall") && w[1]) {
                r = call(c, w[1], "org.freedesktop.DBus.Properties", "GetAll",
                         g_variant_new("(s)", JOB_IFACE), flags, &error);
                print_outcome(op, r, error);
        } else if (g_str_equal(verb, "managed")) {
                r = call(c, MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", NULL,
                         flags, &error);
                print_outcome(op, r, error);
        } else if (g_str_equal(verb, "list")) {
                r = call(c, MANAGER_PATH, MANAGER_IFACE, "ListJobs", NULL, flags, &error);
                print_outcome(op, r, error);
        } else if (g_str_equal(verb, "introspect") && w[1]) {
                r = call(c, w[1], "org.freedesktop.DBus.Introspectable", "Introspect", NULL, flags, &error);
                print_outcome(op, r, error);
        } else if (g_str_equal(verb, "job") && w[1] && w[2]) {
                if (w[3] && g_str_equal(w[3], "interactive"))
                        flags |= G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION;
                if (g_str_equal(w[2], "OpenOutput")) {
                        g_autofree char *text = read_open_output(c, w[1], flags, &error);
                        g_autofree char *line = text ? g_strescape(text, NULL) : error_line(error);
                        g_print("%s %s\n", op, line);
                        return TRUE;
                }
                r = call(c, w[1], JOB_IFACE, w[2],
                         g_str_equal(w[2], "Kill") ? g_variant_new("(i)", SIGKILL) : NULL, flags, &error);
                print_outcome(op, r, error);
        } else if (g_str_equal(verb, "pool-size") && w[1]) {
                if (w[2] && g_str_equal(w[2], "interactive"))
                        flags |= G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION;
                r = call(c, MANAGER_PATH, "org.freedesktop.DBus.Properties", "Set",
                         g_variant_new("(ssv)", MANAGER_IFACE, "PoolSize",
                                       g_variant_new_uint32((guint32) g_ascii_strtoull(w[1], NULL, 10))),
                         flags, &error);
                print_outcome(op, r, error);
        } else if (g_str_equal(verb, "reexecute")) {
                if (w[1] && g_str_equal(w[1], "interactive"))
                        flags |= G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION;
                r = call(c, MANAGER_PATH, MANAGER_IFACE, "Reexecute", NULL, flags, &error);
                print_outcome(op, r, error);
        } else
                g_error("unknown operation '%s'", op);
        return TRUE;
}

static int run_script(const char *address, char **ops) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) c = fixture_connect(address, &error);

        if (!c) {
                g_print("connect-failed=%s\n", error->message);
                return 0;
        }
        for (char **op = ops; *op; op++)
                if (!run_op(c, *op))
                        break;
        return 0;
}

/* ---- listen: every signal procpoold sends, as another client hears it -------------------------------- */

typedef struct Listener {
        char *daemon; /* procpoold's unique name */
        guint32 stop;
        gboolean done;
} Listener;

static void on_signal(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                      const char *member, GVariant *params, gpointer userdata) {
        Listener *l = userdata;
        g_autofree char *text = g_variant_print(params, FALSE);
        g_autoptr(GVariant) changed = NULL;
        guint32 size;

        if (g_strcmp0(sender, l->daemon) != 0)
                return;
        g_print("%s %s.%s %s\n", path, iface, member, text);
        if (g_str_equal(member, "PropertiesChanged") && g_str_equal(path, MANAGER_PATH)) {
                g_variant_get(params, "(&s@a{sv}@as)", NULL, &changed, NULL);
                if (g_variant_lookup(changed, "PoolSize", "u", &size) && size == l->stop)
                        l->done = TRUE;
        }
}

static int run_listener(const char *address, const char *ready, const char *stop) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) c = fixture_connect(address, &error);
        g_autoptr(GVariant) owner = NULL, id = NULL;
        Listener l = { .stop = (guint32) g_ascii_strtoull(stop, NULL, 10) };
        guint sub;

        if (!c) {
                g_printerr("connect: %s\n", error->message);
                return 1;
        }
        owner = g_dbus_connection_call_sync(c, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus", "GetNameOwner",
                                            g_variant_new("(s)", BUS_NAME), G_VARIANT_TYPE("(s)"),
                                            G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_no_error(error);
        g_variant_get(owner, "(s)", &l.daemon);
        /* Every signal, from anyone: what procpoold broadcasts reaches every such listener. */
        sub = g_dbus_connection_signal_subscribe(c, NULL, NULL, NULL, NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                 on_signal, &l, NULL);
        /* The bus handles a connection's messages in order: once this is answered, the match is in. */
        id = g_dbus_connection_call_sync(c, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                         "org.freedesktop.DBus", "GetId", NULL, NULL, G_DBUS_CALL_FLAGS_NONE,
                                         -1, NULL, &error);
        g_assert_no_error(error);
        g_assert_true(g_file_set_contents(ready, "", 0, NULL));
        while (!l.done)
                g_main_context_iteration(NULL, TRUE);
        g_dbus_connection_signal_unsubscribe(c, sub);
        g_free(l.daemon);
        return 0;
}

int main(int argc, char *argv[]) {
        if (argc >= 5 && g_str_equal(argv[1], "client"))
                return run_client(argv[2], argv[3], (const char *const *) argv + 4);
        if (argc == 4 && g_str_equal(argv[1], "drain"))
                return drain(argv[2], argv[3]);
        if (argc >= 3 && g_str_equal(argv[1], "script"))
                return run_script(argv[2], argv + 3);
        if (argc == 5 && g_str_equal(argv[1], "listen"))
                return run_listener(argv[2], argv[3], argv[4]);
        fprintf(stderr,
                "usage: %s client ADDRESS call|communicate CMD... | client ADDRESS submit-many WORD... | client ADDRESS submit PRIORITY CMD... | "
                "drain TEXT GATE | script ADDRESS OP... | listen ADDRESS READY STOP\n",
                argv[0]);
        return 2;
}
