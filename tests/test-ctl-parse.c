/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of procpoolctl's own argument parsers and its output formatting. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

#include "ctl-output.h"
#include "ctl-parse.h"

static void test_signal(void) {
        int s;

        g_assert_cmpint(parse_signal("TERM", &s), ==, 0);
        g_assert_cmpint(s, ==, SIGTERM);
        g_assert_cmpint(parse_signal("SIGUSR1", &s), ==, 0);
        g_assert_cmpint(s, ==, SIGUSR1);
        g_assert_cmpint(parse_signal("kill", &s), ==, 0);
        g_assert_cmpint(s, ==, SIGKILL);
        g_assert_cmpint(parse_signal("9", &s), ==, 0);
        g_assert_cmpint(s, ==, 9);
        g_assert_cmpint(parse_signal("NOPE", &s), ==, -EINVAL);
        g_assert_cmpint(parse_signal("0", &s), ==, -EINVAL);
        g_assert_cmpint(parse_signal("999", &s), ==, -EINVAL);
        g_assert_cmpint(parse_signal("", &s), ==, -EINVAL);
}

static void test_job_id(void) {
        uint64_t id;

        g_assert_cmpint(parse_job_id("42", &id), ==, 0);
        g_assert_cmpuint(id, ==, 42);
        g_assert_cmpint(parse_job_id("/org/procpool/Supervisor1/job/7", &id), ==, 0);
        g_assert_cmpuint(id, ==, 7);
        g_assert_cmpint(parse_job_id("0", &id), ==, -EINVAL);
        g_assert_cmpint(parse_job_id("-3", &id), ==, -EINVAL);
        g_assert_cmpint(parse_job_id("3x", &id), ==, -EINVAL);
        g_assert_cmpint(parse_job_id("", &id), ==, -EINVAL);
}

static char *json_of(const char *s) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        json_write_string(f, s);
        fclose(f);
        return buf;
}

static void test_json_string(void) {
        g_autofree char *a = json_of("plain");
        g_autofree char *b = json_of("a\"b\\c\nd\te\x01\x1f");
        g_autofree char *c = json_of("caf\xc3\xa9");

        g_assert_cmpstr(a, ==, "\"plain\"");
        g_assert_cmpstr(b, ==, "\"a\\\"b\\\\c\\nd\\te\\u0001\\u001f\"");
        g_assert_cmpstr(c, ==, "\"caf\xc3\xa9\"");
}

static char *json_text_of(const void *data, size_t n) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        json_write_text(f, data, n);
        fclose(f);
        return buf;
}

/* Bytes as a JSON string (procpoolctl map --json): UTF-8 kept, NULs and controls escaped, a byte that is
 * not UTF-8 as \udcXX, also a sequence the end of the data cuts short. */
static void test_json_text(void) {
        g_autofree char *a = json_text_of("a\"\n\x01"
                                          "caf\xc3\xa9"
                                          "\0z\xff",
                                          12);
        g_autofree char *b = json_text_of("x\xc3", 2);
        g_autofree char *c = json_text_of("\xe2\x80\xae\xc2\x85", 5);

        g_assert_cmpstr(a, ==, "\"a\\\"\\n\\u0001caf\xc3\xa9\\u0000z\\udcff\"");
        g_assert_cmpstr(b, ==, "\"x\\udcc3\"");
        /* a bidi override and a C1 control are escaped, as json_write_string() does */
        g_assert_cmpstr(c, ==, "\"\\u202e\\u0085\"");
}

static void test_format(void) {
        g_autofree char *a = format_timespan(0);
        g_autofree char *b = format_timespan(250000);
        g_autofree char *c = format_timespan(5400000000ULL + 5250000);
        g_autofree char *d = format_timespan(1500000);
        char *argv[] = { "sh", "-c", "echo 'hi' there", "", NULL };
        g_autofree char *cmd = format_command_line(argv);

        g_assert_cmpstr(a, ==, "0");
        g_assert_cmpstr(b, ==, "250ms");
        g_assert_cmpstr(c, ==, "1h 30min 5s");
        g_assert_cmpstr(d, ==, "1s 500ms");
        g_assert_cmpstr(cmd, ==, "sh -c 'echo '\\''hi'\\'' there' ''");
}

static void test_escape(void) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "plain text", "plain text" },
                { "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac" },
                { "\x1b]0;title\x07", "\\x1b]0;title\\x07" },
                { "a\nb\rc\td\x7f", "a\\x0ab\\x0dc\\x09d\\x7f" },
                { "csi\xc2\x9b", "csi\\xc2\\x9b" },      /* C1 */
                { "bad\xff\xfe", "bad\\xff\\xfe" },      /* not UTF-8 */
                { "over\xc0\xaf", "over\\xc0\\xaf" },    /* overlong */
                { "cut\xe6\x97", "cut\\xe6\\x97" },      /* cut short */
                { "rtl\xe2\x80\xae!", "rtl\\u{202e}!" }, /* bidi override */
                { "zw\xe2\x80\x8b", "zw\\u{200b}" },     /* zero-width space */
                { "ls\xe2\x80\xa8", "ls\\u{2028}" },     /* line separator */
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *e = escape_for_terminal(cases[i].in);
                g_assert_cmpstr(e, ==, cases[i].out);
        }
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/procpool/ctl-parse/signal", test_signal);
        g_test_add_func("/procpool/ctl-parse/job-id", test_job_id);
        g_test_add_func("/procpool/ctl-parse/json-string", test_json_string);
        g_test_add_func("/procpool/ctl-parse/json-text", test_json_text);
        g_test_add_func("/procpool/ctl-parse/format", test_format);
        g_test_add_func("/procpool/ctl-parse/escape", test_escape);
        return g_test_run();
}
