/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* parse_timespan(), parse_size() and parse_unsigned(): the values of procpoold's command line. */
#include <errno.h>
#include <stdint.h>

#include <glib.h>

#include "parse-util.h"

#define SEC 1000000ULL

static void assert_timespan(const char *s, uint64_t expected) {
        uint64_t v = 12345;
        g_test_message("'%s'", s);
        g_assert_cmpint(parse_timespan(s, &v), ==, 0);
        g_assert_cmpuint(v, ==, expected);
}

static void assert_timespan_fails(const char *s, int expected) {
        uint64_t v = 12345;
        g_test_message("'%s'", s);
        g_assert_cmpint(parse_timespan(s, &v), ==, expected);
        g_assert_cmpuint(v, ==, 12345); /* untouched on failure */
}

static void test_timespan(void) {
        assert_timespan("30", 30 * SEC);
        assert_timespan("0", 0);
        assert_timespan("30s", 30 * SEC);
        assert_timespan("30sec", 30 * SEC);
        assert_timespan("5min", 300 * SEC);
        assert_timespan("5m", 300 * SEC);
        assert_timespan("1h 30min", 5400 * SEC);
        assert_timespan("1h30min", 5400 * SEC);
        assert_timespan("500ms", 500000);
        assert_timespan("500msec", 500000);
        assert_timespan("2us", 2);
        assert_timespan("2usec", 2);
        assert_timespan("1d", 86400 * SEC);
        assert_timespan("1w", 7 * 86400 * SEC);
        assert_timespan("2 hours", 7200 * SEC);
        assert_timespan("1.5s", 1500000);
        assert_timespan("0.25min", 15 * SEC);
        assert_timespan(" 10s ", 10 * SEC);
        assert_timespan("1s 500ms", 1500000);
        /* everything systemd.time(7) names, as systemd-analyze timespan reads it */
        assert_timespan("1y", 31557600 * SEC);
        assert_timespan("1year", 31557600 * SEC);
        assert_timespan("2 years", 2 * 31557600 * SEC);
        assert_timespan("2M", 2 * 2629800 * SEC);
        assert_timespan("1month", 2629800 * SEC);
        assert_timespan("3 months", 3 * 2629800 * SEC);
        assert_timespan("3 weeks", 21 * 86400 * SEC);
        assert_timespan("1week", 7 * 86400 * SEC);
        assert_timespan("5us", 5);
        assert_timespan("5\xc2\xb5s", 5);
        assert_timespan("5\xce\xbcs", 5);
        assert_timespan("1hr", 3600 * SEC);
        assert_timespan("1 day 2 hours", 93600 * SEC);
        assert_timespan("1y 2M 3w 4d 5h 6min 7s 8ms 9us",
                        31557600 * SEC + 2 * 2629800 * SEC + 3 * 7 * 86400 * SEC + 4 * 86400 * SEC +
                                5 * 3600 * SEC + 6 * 60 * SEC + 7 * SEC + 8000 + 9);
        assert_timespan("1.5d", 129600 * SEC);
        assert_timespan("90", 90 * SEC);
        assert_timespan("2 3", 5 * SEC);

        assert_timespan_fails(NULL, -EINVAL);
        assert_timespan_fails("", -EINVAL);
        assert_timespan_fails("   ", -EINVAL);
        assert_timespan_fails("abc", -EINVAL);
        assert_timespan_fails("5 parsecs", -EINVAL);
        assert_timespan_fails("-5s", -EINVAL);
        assert_timespan_fails("5x", -EINVAL);
        assert_timespan_fails("5Y", -EINVAL); /* case matters: "y" is a year, "M" a month, "m" a minute */
        assert_timespan_fails("infinity", -EINVAL);
        assert_timespan_fails("18446744073709551615s", -ERANGE);
        assert_timespan_fails("99999999999999999999999", -ERANGE);
        assert_timespan_fails("10000000w 10000000w 10000000w 10000000w 10000000w", -ERANGE);
}

static void assert_size(const char *s, uint64_t expected) {
        uint64_t v = 12345;
        g_test_message("'%s'", s);
        g_assert_cmpint(parse_size(s, &v), ==, 0);
        g_assert_cmpuint(v, ==, expected);
}

static void assert_size_fails(const char *s, int expected) {
        uint64_t v = 12345;
        g_test_message("'%s'", s);
        g_assert_cmpint(parse_size(s, &v), ==, expected);
        g_assert_cmpuint(v, ==, 12345);
}

static void test_size(void) {
        assert_size("0", 0);
        assert_size("1024", 1024);
        assert_size("1024B", 1024);
        assert_size("64K", 64ULL << 10);
        assert_size("64k", 64ULL << 10);
        assert_size("16M", 16ULL << 20);
        assert_size("16MiB", 16ULL << 20);
        assert_size("16MB", 16ULL << 20);
        assert_size("1G", 1ULL << 30);
        assert_size("2T", 2ULL << 40);
        assert_size("18446744073709551615", UINT64_MAX);

        assert_size_fails(NULL, -EINVAL);
        assert_size_fails("", -EINVAL);
        assert_size_fails("K", -EINVAL);
        assert_size_fails("-1", -EINVAL);
        assert_size_fails("1X", -EINVAL);
        assert_size_fails("1 K", -EINVAL);
        assert_size_fails("1KX", -EINVAL);
        assert_size_fails("1iB", -EINVAL);
        assert_size_fails("18446744073709551616", -ERANGE);
        assert_size_fails("17179869184G", -ERANGE);
}

static void test_unsigned(void) {
        uint64_t v = 7;

        g_assert_cmpint(parse_unsigned("0", 0, 10, &v), ==, 0);
        g_assert_cmpuint(v, ==, 0);
        g_assert_cmpint(parse_unsigned("10", 0, 10, &v), ==, 0);
        g_assert_cmpuint(v, ==, 10);
        g_assert_cmpint(parse_unsigned("4294967295", 1, UINT32_MAX, &v), ==, 0);
        g_assert_cmpuint(v, ==, UINT32_MAX);
        v = 7;
        g_assert_cmpint(parse_unsigned("0", 1, 10, &v), ==, -ERANGE);
        g_assert_cmpint(parse_unsigned("11", 1, 10, &v), ==, -ERANGE);
        g_assert_cmpint(parse_unsigned("4294967296", 1, UINT32_MAX, &v), ==, -ERANGE);
        g_assert_cmpint(parse_unsigned("99999999999999999999999", 0, UINT64_MAX, &v), ==, -ERANGE);
        g_assert_cmpint(parse_unsigned("", 0, 10, &v), ==, -EINVAL);
        g_assert_cmpint(parse_unsigned(NULL, 0, 10, &v), ==, -EINVAL);
        g_assert_cmpint(parse_unsigned("-1", 0, 10, &v), ==, -EINVAL);
        g_assert_cmpint(parse_unsigned("+1", 0, 10, &v), ==, -EINVAL);
        g_assert_cmpint(parse_unsigned(" 1", 0, 10, &v), ==, -EINVAL);
        g_assert_cmpint(parse_unsigned("1 ", 0, 10, &v), ==, -EINVAL);
        g_assert_cmpint(parse_unsigned("1k", 0, 10, &v), ==, -EINVAL);
        g_assert_cmpint(parse_unsigned("0x5", 0, 10, &v), ==, -EINVAL);
        g_assert_cmpuint(v, ==, 7);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/procpool/parse-util/timespan", test_timespan);
        g_test_add_func("/procpool/parse-util/size", test_size);
        g_test_add_func("/procpool/parse-util/unsigned", test_unsigned);
        return g_test_run();
}
