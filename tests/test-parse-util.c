/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* parse_timespan(), parse_size(), parse_unsigned() and parse_timestamp(): the values of procpoold's and
 * procpoolctl's command lines. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

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

/* 2024-03-10 12:00:00 UTC; the tests run with TZ=UTC, where local time is UTC. */
#define NOON 1710072000ULL

static void assert_timestamp(const char *s, uint64_t now_sec, uint64_t expected_sec) {
        uint64_t v = 12345;
        g_test_message("'%s'", s);
        g_assert_cmpint(parse_timestamp(s, now_sec * SEC, &v), ==, 0);
        g_assert_cmpuint(v, ==, expected_sec * SEC);
}

static void assert_timestamp_fails(const char *s, int expected) {
        uint64_t v = 12345;
        g_test_message("'%s'", s);
        g_assert_cmpint(parse_timestamp(s, NOON * SEC, &v), ==, expected);
        g_assert_cmpuint(v, ==, 12345);
}

static void test_timestamp(void) {
        uint64_t v = 0;

        g_setenv("TZ", "UTC", TRUE);
        tzset();
        /* seconds since the epoch */
        assert_timestamp("@0", NOON, 0);
        assert_timestamp("@1700000000", NOON, 1700000000);
        assert_timestamp(" @5 ", NOON, 5);
        /* relative, with or without '+', as systemd-run --on-active= */
        assert_timestamp("+5min", NOON, NOON + 300);
        assert_timestamp("90s", NOON, NOON + 90);
        assert_timestamp("+1h 30min", NOON, NOON + 5400);
        assert_timestamp("+0", NOON, NOON);
        assert_timestamp("10", NOON, NOON + 10);
        g_assert_cmpint(parse_timestamp("+500ms", NOON * SEC, &v), ==, 0);
        g_assert_cmpuint(v, ==, NOON * SEC + 500000);
        /* a local date and time */
        assert_timestamp("2024-03-10 13:30", NOON, NOON + 5400);
        assert_timestamp("2024-03-10 13:30:15", NOON, NOON + 5415);
        assert_timestamp("2000-01-01 00:00", NOON, 946684800); /* the past stays the past */
        assert_timestamp("2024-02-29 00:00", NOON, 1709164800);
        /* a time of day: today if it is still to come, else tomorrow */
        assert_timestamp("13:00", NOON, NOON + 3600);
        assert_timestamp("12:00:01", NOON, NOON + 1);
        assert_timestamp("12:00", NOON, NOON + 86400);
        assert_timestamp("11:59:59", NOON, NOON + 86400 - 1);
        assert_timestamp("00:00", NOON, NOON + 12 * 3600);
        /* the last day of a month rolls into the next */
        assert_timestamp("08:00", 1711886400ULL /* 2024-03-31 12:00 */, 1711886400ULL + 20 * 3600);

        /* in another zone, local time is that zone's, with its summer time (where tzdata is) */
        if (g_file_test("/usr/share/zoneinfo/Europe/Berlin", G_FILE_TEST_EXISTS)) {
                g_setenv("TZ", "Europe/Berlin", TRUE);
                tzset();
                assert_timestamp("2024-03-10 13:00", NOON, NOON);       /* CET, UTC+1 */
                assert_timestamp("2024-07-01 14:00", NOON, 1719835200); /* CEST, UTC+2 */
                g_setenv("TZ", "UTC", TRUE);
                tzset();
        }

        assert_timestamp_fails("", -EINVAL);
        assert_timestamp_fails("   ", -EINVAL);
        assert_timestamp_fails(NULL, -EINVAL);
        assert_timestamp_fails("@", -EINVAL);
        assert_timestamp_fails("@-1", -EINVAL);
        assert_timestamp_fails("@1.5", -EINVAL);
        assert_timestamp_fails("@99999999999999999", -ERANGE);
        assert_timestamp_fails("+", -EINVAL);
        assert_timestamp_fails("-5min", -EINVAL);
        assert_timestamp_fails("5 apples", -EINVAL);
        assert_timestamp_fails("+600000y", -ERANGE);
        assert_timestamp_fails("2024-02-30 12:00", -EINVAL);
        assert_timestamp_fails("2024-13-01 12:00", -EINVAL);
        assert_timestamp_fails("2024-00-10 12:00", -EINVAL);
        assert_timestamp_fails("2024-03-10", -EINVAL);
        assert_timestamp_fails("2024-03-10T12:00", -EINVAL);
        assert_timestamp_fails("2024-03-10 12", -EINVAL);
        assert_timestamp_fails("24:00", -EINVAL);
        assert_timestamp_fails("12:60", -EINVAL);
        assert_timestamp_fails("12:00:60", -EINVAL);
        assert_timestamp_fails("1:00", -EINVAL);
        assert_timestamp_fails("12:00pm", -EINVAL);
        assert_timestamp_fails("tomorrow", -EINVAL);
        g_unsetenv("TZ");
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/procpool/parse-util/timespan", test_timespan);
        g_test_add_func("/procpool/parse-util/size", test_size);
        g_test_add_func("/procpool/parse-util/unsigned", test_unsigned);
        g_test_add_func("/procpool/parse-util/timestamp", test_timestamp);
        return g_test_run();
}
