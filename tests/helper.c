/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the tests run as a job or as a client of another uid where a shell cannot do it:
 *   procpool-test-helper client ADDRESS call|communicate CMD...
 *   procpool-test-helper client ADDRESS submit PRIORITY CMD...
 *           one request to procpoold at ADDRESS, its outcome on stdout: "rc=N" (Call),
 *           "rc=N out=BYTES" (Communicate), "path=JOB_PATH" (Submit, with the option priority) or
 *           "error=NAME"
 *   procpool-test-helper drain TEXT GATE
 *           writes TEXT to stdout, waits until the reader of stdout (procpoold) has taken all of it,
 *           creates the file GATE, then waits for a signal to end it */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fixture.h"

/* How long the other uid's client waits for its answer: long enough for any loaded machine, short
 * enough that a client starved by a broken scheduler fails the test instead of hanging it. */
#define CLIENT_TIMEOUT_MSEC (90 * 1000)

static int run_client(const char *address, const char *mode, const char *const *cmd) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) c = fixture_connect(address, &error);
        g_autoptr(GVariant) r = NULL;
        gboolean communicate = g_str_equal(mode, "communicate"), submit = g_str_equal(mode, "submit");

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

int main(int argc, char *argv[]) {
        if (argc >= 5 && g_str_equal(argv[1], "client"))
                return run_client(argv[2], argv[3], (const char *const *) argv + 4);
        if (argc == 4 && g_str_equal(argv[1], "drain"))
                return drain(argv[2], argv[3]);
        fprintf(stderr,
                "usage: %s client ADDRESS call|communicate CMD... | client ADDRESS submit PRIORITY CMD... | "
                "drain TEXT GATE\n",
                argv[0]);
        return 2;
}
