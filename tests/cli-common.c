/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What procpoolctl's end-to-end suites share: running it and reading what it printed, JSON, ptys. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli-common.h"

void ctl_result_clear(CtlResult *r) {
        g_clear_pointer(&r->out, g_bytes_unref);
        g_clear_pointer(&r->err, g_bytes_unref);
        g_clear_pointer(&r->out_str, g_free);
        g_clear_pointer(&r->err_str, g_free);
}

const char *ctl_path(void) {
        const char *p = g_getenv("PROCPOOLCTL");
        g_assert_nonnull(p); /* set by meson test */
        return p;
}

int wait_status_of(GSubprocess *p) {
        if (g_subprocess_get_if_signaled(p))
                return 128 + g_subprocess_get_term_sig(p);
        return g_subprocess_get_exit_status(p);
}

/* The argv of a procpoolctl run: the binary, --address= unless address is NULL, then args. */
GPtrArray *ctl_argv(const char *address, const char *const *args) {
        GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);

        g_ptr_array_add(argv, g_strdup(ctl_path()));
        if (address)
                g_ptr_array_add(argv, g_strdup_printf("--address=%s", address));
        for (const char *const *a = args; *a; a++)
                g_ptr_array_add(argv, g_strdup(*a));
        g_ptr_array_add(argv, NULL);
        return argv;
}

GSubprocessLauncher *ctl_launcher(GSubprocessFlags flags, const char *cwd, const char *session_address) {
        GSubprocessLauncher *l = g_subprocess_launcher_new(flags);

        if (cwd)
                g_subprocess_launcher_set_cwd(l, cwd);
        if (session_address)
                g_subprocess_launcher_setenv(l, "DBUS_SESSION_BUS_ADDRESS", session_address, TRUE);
        else
                g_subprocess_launcher_unsetenv(l, "DBUS_SESSION_BUS_ADDRESS");
        return l;
}

/* Runs procpoolctl to its end with input on stdin; address goes in --address= unless NULL, and env_address
 * becomes DBUS_SESSION_BUS_ADDRESS. */
void ctl_run_full(const char *address, const char *env_address, const char *cwd, GBytes *input,
                  const char *const *args, CtlResult *ret) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) argv = ctl_argv(address, args);
        g_autoptr(GSubprocessLauncher) l =
                ctl_launcher(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                     G_SUBPROCESS_FLAGS_STDERR_PIPE,
                             cwd, env_address);
        g_autoptr(GSubprocess) p = g_subprocess_launcher_spawnv(l, (const char *const *) argv->pdata, &error);
        g_autofree char *cmdline = g_strjoinv(" ", (char **) argv->pdata);
        g_autofree char *out_text = NULL, *err_text = NULL;
        g_autoptr(GBytes) empty = g_bytes_new_static("", 0);
        gsize size;

        /* ret may hold an earlier run's result: it is replaced */
        ctl_result_clear(ret);
        g_assert_no_error(error);
        g_assert_true(g_subprocess_communicate(p, input ? input : empty, NULL, &ret->out, &ret->err, &error));
        g_assert_no_error(error);
        ret->status = wait_status_of(p);
        /* empty GBytes may have no data pointer at all */
        size = g_bytes_get_size(ret->out);
        ret->out_str = g_strndup(size ? g_bytes_get_data(ret->out, NULL) : "", size);
        size = g_bytes_get_size(ret->err);
        ret->err_str = g_strndup(size ? g_bytes_get_data(ret->err, NULL) : "", size);
        /* The log is TAP, which is UTF-8: bytes that are not become U+FFFD there. */
        out_text = g_utf8_make_valid(ret->out_str, -1);
        err_text = g_utf8_make_valid(ret->err_str, -1);
        g_test_message("%s -> %d\nstdout: %s\nstderr: %s", cmdline, ret->status, out_text, err_text);
}

/* Runs procpoolctl --address=<f's bus> with the NULL-terminated arguments; stdin is empty. */
int ctl(Fixture *f, CtlResult *ret, ...) {
        g_autoptr(GPtrArray) args = g_ptr_array_new();
        va_list ap;

        va_start(ap, ret);
        for (const char *a = va_arg(ap, const char *); a; a = va_arg(ap, const char *))
                g_ptr_array_add(args, (char *) a);
        va_end(ap);
        g_ptr_array_add(args, NULL);
        ctl_result_clear(ret);
        ctl_run_full(f->address, NULL, NULL, NULL, (const char *const *) args->pdata, ret);
        return ret->status;
}

int ctl_other(Fixture *f, CtlResult *ret, const char *const *args) {
        g_autoptr(GPtrArray) argv = ctl_argv(f->address, args);
        g_autoptr(GError) error = NULL;
        int status;

        ctl_result_clear(ret);
        g_assert_true(g_spawn_sync("/", (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, fixture_become_other,
                                   NULL, &ret->out_str, &ret->err_str, &status, &error));
        g_assert_no_error(error);
        ret->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        g_test_message("as uid %d: %s -> %d\nstdout: %s\nstderr: %s", OTHER_UID, (char *) argv->pdata[2],
                       ret->status, ret->out_str, ret->err_str);
        return ret->status;
}

JsonNode *parse_json(const char *text) {
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GError) error = NULL;

        json_parser_load_from_data(parser, text, -1, &error);
        g_assert_no_error(error);
        return json_node_copy(json_parser_get_root(parser));
}

guint64 parse_id(const char *text) {
        g_autofree char *s = g_strstrip(g_strdup(text));
        guint64 id = 0;

        g_assert_true(g_ascii_string_to_unsigned(s, 10, 1, G_MAXUINT64, &id, NULL));
        return id;
}

/* Submits through procpoolctl and returns the job's id. */
guint64 ctl_submit(Fixture *f, const char *shell) {
        CtlResult r = {};
        guint64 id;

        g_assert_cmpint(ctl(f, &r, "submit", "--", "sh", "-c", shell, NULL), ==, 0);
        id = parse_id(r.out_str);
        ctl_result_clear(&r);
        return id;
}

char *job_state(Fixture *f, guint64 id) {
        g_autofree char *path = fixture_job_path(id);
        return fixture_job_state(f, path);
}

gboolean job_wait_state(Fixture *f, guint64 id, const char *state) {
        g_autofree char *path = fixture_job_path(id);
        return fixture_wait_state(f, path, state);
}

/* The id of the newest job the daemon holds. */
guint64 last_job(Fixture *f) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = fixture_call(f, "ListJobs", NULL, &error);
        g_autoptr(GVariantIter) it = NULL;
        guint64 id, last = 0;

        g_assert_no_error(error);
        g_variant_get(r, "(a(tosi))", &it);
        while (g_variant_iter_next(it, "(t&o&si)", &id, NULL, NULL, NULL))
                last = id;
        return last;
}

/* A master/slave pseudo-terminal pair of cols columns, for what procpoolctl does on a terminal. */
int open_pty(unsigned cols, int *ret_slave) {
        struct winsize ws = { .ws_row = 24, .ws_col = cols };
        int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);

        g_assert_cmpint(m, >=, 0);
        g_assert_cmpint(grantpt(m), ==, 0);
        g_assert_cmpint(unlockpt(m), ==, 0);
        *ret_slave = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
        g_assert_cmpint(*ret_slave, >=, 0);
        g_assert_cmpint(ioctl(m, TIOCSWINSZ, &ws), ==, 0);
        return m;
}

/* Reads from a pty master into buf until needle shows up (NULL: until the other side is closed). */
void pty_read_until(int master, GString *buf, const char *needle) {
        while (!needle || !strstr(buf->str, needle)) {
                struct pollfd pfd = { .fd = master, .events = POLLIN };
                char chunk[4096];
                ssize_t n;

                /* a guard against hanging the suite, not a timing requirement */
                g_assert_cmpint(poll(&pfd, 1, 60000), ==, 1);
                n = read(master, chunk, sizeof chunk);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) { /* EIO: every slave fd is closed */
                        g_assert_null(needle);
                        return;
                }
                g_string_append_len(buf, chunk, n);
        }
}
