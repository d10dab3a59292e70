/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What another user chose (labels, command lines, program names) never reaches procpoolctl's reader raw:
 * no escape sequence, bell, carriage return or line break of theirs in list, status, monitor, errors or
 * JSON; and tables align wide characters by their display width. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli-common.h"

static const char *const pool_of_eight[] = { "--pool-size=8", NULL };

/* An OSC that retitles the terminal, a bell, a line split, a C1 CSI and a right-to-left override. */
#define HOSTILE_LABEL                     \
        "x\x1b]0;pwned\x07y\r\nz\xc2\x9b" \
        "31m\xe2\x80\xae"
#define HOSTILE_ARG "\x1b[2J\nrow"

/* Asserts that bytes hold no ESC, BEL, CR, C1 control or bidi override. */
static void assert_inert(const char *what, const char *bytes) {
        g_test_message("%s:\n%s", what, bytes);
        g_assert_null(strchr(bytes, '\x1b'));
        g_assert_null(strchr(bytes, '\x07'));
        g_assert_null(strchr(bytes, '\r'));
        g_assert_null(strstr(bytes, "\xc2\x9b"));
        g_assert_null(strstr(bytes, "\xe2\x80\xae"));
}

/* Runs procpoolctl as OTHER_UID; returns its stdout, asserting exit 0. */
static char *ctl_as_other(Fixture *f, const char *const *args) {
        g_autoptr(GPtrArray) argv = ctl_argv(f->address, args);
        g_autoptr(GError) error = NULL;
        char *out = NULL;
        int status;

        g_assert_true(g_spawn_sync("/", (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, fixture_become_other,
                                   NULL, &out, NULL, &status, &error));
        g_assert_no_error(error);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        return out;
}

/* The display width of the text before needle in line: a wide character takes two columns. */
static glong columns_before(const char *line, const char *needle) {
        const char *end = strstr(line, needle);
        glong w = 0;

        g_assert_nonnull(end);
        for (const char *p = line; p < end; p = g_utf8_next_char(p))
                w += g_unichar_iswide(g_utf8_get_char(p)) ? 2 : 1;
        return w;
}

/* The line of out that starts with id and a space. */
static char *row_of(const char *out, guint64 id) {
        g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
        g_autofree char *prefix = g_strdup_printf("%" G_GUINT64_FORMAT " ", id);

        for (char **l = lines; *l; l++)
                if (g_str_has_prefix(*l, prefix))
                        return g_strdup(*l);
        g_assert_not_reached();
}

static void test_hostile(Fixture *f, gconstpointer data) {
        g_autofree char *out = NULL, *id_text = NULL, *row = NULL, *wide_row = NULL, *narrow_row = NULL;
        g_autofree char *monitor_line = NULL;
        g_autoptr(GPtrArray) monitor_argv = NULL;
        g_autoptr(GSubprocess) monitor = NULL;
        g_autoptr(GSubprocessLauncher) l = NULL;
        g_autoptr(GDataInputStream) monitor_out = NULL;
        g_autoptr(GError) error = NULL;
        guint64 id, wide, narrow;
        CtlResult r = {};
        guint rows = 0;

        if (!fixture_have_root())
                return;

        /* a monitor of root's, watching while the other user submits */
        monitor_argv = ctl_argv(f->address, (const char *const[]) { "monitor", NULL });
        l = ctl_launcher(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, NULL, NULL);
        monitor = g_subprocess_launcher_spawnv(l, (const char *const *) monitor_argv->pdata, &error);
        g_assert_no_error(error);
        {
                /* it says so on stderr once it listens */
                g_autoptr(GDataInputStream) err =
                        g_data_input_stream_new(g_subprocess_get_stderr_pipe(monitor));
                g_autofree char *banner = g_data_input_stream_read_line(err, NULL, NULL, &error);
                g_assert_no_error(error);
                g_assert_nonnull(strstr(banner, "Monitoring"));
        }

        out = ctl_as_other(f, (const char *const[]) { "submit", "--label=" HOSTILE_LABEL, "--", "sh", "-c",
                                                      "exec sleep 600", HOSTILE_ARG, NULL });
        id = parse_id(out);
        id_text = g_strdup_printf("%" G_GUINT64_FORMAT, id);
        g_assert_true(job_wait_state(f, id, "running"));

        monitor_out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(monitor));
        monitor_line = g_data_input_stream_read_line(monitor_out, NULL, NULL, &error);
        g_assert_no_error(error);
        assert_inert("monitor", monitor_line);
        g_assert_true(g_str_has_prefix(monitor_line, "Job "));
        g_assert_nonnull(strstr(monitor_line, "\\x1b[2J\\x0arow"));
        g_subprocess_send_signal(monitor, SIGINT);
        g_assert_true(g_subprocess_wait(monitor, NULL, NULL));

        /* list: one row per job, the label and the command escaped */
        g_assert_cmpint(ctl(f, &r, "submit", "--label=日本語ラベル", "--", "sleep", "601", NULL), ==, 0);
        wide = parse_id(r.out_str);
        g_assert_cmpint(ctl(f, &r, "submit", "--label=abc", "--", "sleep", "602", NULL), ==, 0);
        narrow = parse_id(r.out_str);
        g_assert_cmpint(ctl(f, &r, "list", "--all", "--full", NULL), ==, 0);
        assert_inert("list", r.out_str);
        row = row_of(r.out_str, id);
        g_assert_nonnull(strstr(row, "x\\x1b]0;pwned\\x07y\\x0d\\x0az\\xc2\\x9b31m\\u{202e}"));
        g_assert_nonnull(strstr(row, "\\x1b[2J\\x0arow"));
        g_assert_cmpint(ctl(f, &r, "--no-legend", "list", "--all", "--full", NULL), ==, 0);
        {
                g_auto(GStrv) lines = g_strsplit(r.out_str, "\n", -1);
                for (char **i = lines; *i; i++)
                        rows += **i != '\0';
        }
        /* one line for each of the three jobs, not one more */
        g_assert_cmpuint(rows, ==, 3);
        g_assert_null(strstr(r.out_str, "\nrow"));
        g_assert_null(strstr(r.out_str, "\nz"));
        /* the wide label takes two columns a character: the COMMAND column starts at one column */
        wide_row = row_of(r.out_str, wide);
        narrow_row = row_of(r.out_str, narrow);
        g_assert_cmpint(columns_before(wide_row, "sleep 601"), ==, columns_before(narrow_row, "sleep 602"));

        /* status */
        g_assert_cmpint(ctl(f, &r, "status", id_text, NULL), ==, 0);
        assert_inert("status", r.out_str);
        g_assert_nonnull(strstr(r.out_str, "      Label: x\\x1b]0;pwned\\x07y\\x0d\\x0az"));
        g_assert_null(strstr(r.out_str, "\nrow"));
        g_assert_null(strstr(r.out_str, "\nz"));

        /* JSON keeps the text, in escapes */
        g_assert_cmpint(ctl(f, &r, "--json", "status", id_text, NULL), ==, 0);
        assert_inert("json", r.out_str);
        {
                g_autoptr(JsonNode) root = parse_json(r.out_str);
                JsonObject *o = json_node_get_object(root);
                g_assert_cmpstr(json_object_get_string_member(o, "label"), ==, HOSTILE_LABEL);
        }

        /* an error that names the program */
        g_assert_cmpint(ctl(f, &r, "call", "--", "no-such-\x1b]0;pwned\x07", NULL), ==, 1);
        assert_inert("error", r.err_str);
        g_assert_nonnull(strstr(r.err_str, "Failed to execute 'no-such-\\x1b]0;pwned\\x07'"));

        {
                g_autofree char *w = g_strdup_printf("%" G_GUINT64_FORMAT, wide);
                g_autofree char *n = g_strdup_printf("%" G_GUINT64_FORMAT, narrow);
                g_assert_cmpint(ctl(f, &r, "cancel", id_text, w, n, NULL), ==, 0);
        }
        ctl_result_clear(&r);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);

        /* procpoold runs as OTHER_UID: root and that uid may both run jobs through it. */
        FIXTURE_ADD("/procpool/cli/escape/hostile", fixture_setup_open_bus_other_daemon, pool_of_eight,
                    test_hostile);
        return g_test_run();
}
