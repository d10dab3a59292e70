/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsing of the values people type: time spans as systemd writes them, points in time, byte sizes,
 * counts. */
#pragma once

#include <stdint.h>

/* A time span as systemd.time(7) and systemd-analyze timespan read one: numbers (fractions too) each
 * followed by a unit or by none, meaning seconds, summed: "30", "30s", "5min", "1h 30min", "500ms", "2us",
 * "1.5d", "3 weeks", "2M" (months of 30.44 days), "1y" (365.25 days). Units: usec, us, µs, μs; msec, ms;
 * seconds, second, sec, s; minutes, minute, min, m; hours, hour, hr, h; days, day, d; weeks, week, w;
 * months, month, M; years, year, y. Not "infinity": callers that mean "no limit" read it themselves.
 * Returns -EINVAL or -ERANGE. */
int parse_timespan(const char *s, uint64_t *ret_usec);
/* Bytes: a whole number with an optional K, M, G or T (either case; powers of 1024), then an optional
 * "B", or "iB" after a unit: "1024", "1024B", "64K", "64k", "64KB", "64KiB", "16M", "1G", "2T". */
int parse_size(const char *s, uint64_t *ret);
/* A whole decimal number in [min, max]. */
int parse_unsigned(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
/* A point in time, as microseconds since the epoch (CLOCK_REALTIME), given now_usec, the current time:
 *   "@SECONDS"                   seconds since the epoch, a whole decimal number: "@1700000000";
 *   "+TIMESPAN" or "TIMESPAN"    that long after now, a time span as parse_timespan() reads it: "+5min",
 *                                "90s", "1h 30min" (as systemd-run --on-active= takes it);
 *   "YYYY-MM-DD HH:MM[:SS]"      that local time (the TZ of the process);
 *   "HH:MM[:SS]"                 that local time today, or tomorrow if it has passed today.
 * Leading and trailing blanks are ignored. A date or time out of range (2024-02-30, 24:00, 12:60) is
 * -EINVAL, as is anything else; a result past UINT64_MAX microseconds is -ERANGE. A time in the past is
 * returned as it is. */
int parse_timestamp(const char *s, uint64_t now_usec, uint64_t *ret_usec);
