/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of procpoolctl's argument parsers and output formatting. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

#include "ctl-output.h"
#include "ctl-parse.h"

static void test_timespan(void) {
        static const struct {
                const char *text;
                uint64_t usec;
        } good[] = {
                { "30", 30000000 },        { "30s", 30000000 },          { "5min", 300000000 },
                { "1h 30min", 5400000000 }, { "1h30min", 5400000000 },   { "500ms", 500000 },
                { "2us", 2 },              { "1.5s", 1500000 },          { "0", 0 },
                { "2 hours", 7200000000 }, { "1d", 86400000000 },        { "1w", 604800000000 },
                { " 10 sec ", 10000000 },  { "3m", 180000000 },          { "0.25ms", 250 },
                { "infinity", UINT64_MAX }, { "1min 30s 250ms", 90250000 },
        };
        static const char *const bad[] = { "", " ", "s", "5x", "-1", "1.2.3s", "5 min x", "abc", "1h -30min" };
        uint64_t v;

        for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
                g_test_message("%s", good[i].text);
                g_assert_cmpint(parse_timespan(good[i].text, &v), ==, 0);
                g_assert_cmpuint(v, ==, good[i].usec);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_test_message("%s", bad[i]);
                g_assert_cmpint(parse_timespan(bad[i], &v), ==, -EINVAL);
        }
        g_assert_cmpint(parse_timespan("99999999999999999999", &v), ==, -ERANGE);
        g_assert_cmpint(parse_timespan("999999999999y", &v), ==, -ERANGE);
}

static void test_size(void) {
        static const struct {
                const char *text;
                uint64_t bytes;
        } good[] = {
                { "0", 0 },       { "100", 100 },      { "1K", 1024 },           { "16k", 16384 },
                { "2M", 2097152 }, { "1G", 1073741824 }, { "1KiB", 1024 },       { "3MB", 3145728 },
                { "1T", 1099511627776ULL }, { "512B", 512 },  { "8 K", 8192 },
        };
        static const char *const bad[] = { "", "K", "1X", "1.5M", "-1", "1KK", "1Kb", "M1" };
        uint64_t v;

        for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
                g_test_message("%s", good[i].text);
                g_assert_cmpint(parse_size(good[i].text, &v), ==, 0);
                g_assert_cmpuint(v, ==, good[i].bytes);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_test_message("%s", bad[i]);
                g_assert_cmpint(parse_size(bad[i], &v), ==, -EINVAL);
        }
        g_assert_cmpint(parse_size("20000000000T", &v), ==, -ERANGE);
}

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

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/procpool/ctl-parse/timespan", test_timespan);
        g_test_add_func("/procpool/ctl-parse/size", test_size);
        g_test_add_func("/procpool/ctl-parse/signal", test_signal);
        g_test_add_func("/procpool/ctl-parse/job-id", test_job_id);
        g_test_add_func("/procpool/ctl-parse/json-string", test_json_string);
        g_test_add_func("/procpool/ctl-parse/format", test_format);
        return g_test_run();
}
