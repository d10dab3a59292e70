/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsers for procpoolctl's arguments: time spans, sizes, signals and job ids. */
#pragma once

#include <stdint.h>

#define USEC_INFINITY UINT64_MAX

/* Parses a time span as systemd does: "30" (seconds), "30s", "5min", "1h 30min", "1.5s", "500ms", "2us";
 * "infinity" gives USEC_INFINITY. Returns 0, or -EINVAL for text that is not a time span and -ERANGE
 * for one that does not fit. */
int parse_timespan(const char *s, uint64_t *ret_usec);

/* Parses a byte count with an optional K, M, G or T suffix (base 1024; "K", "KB" and "KiB" alike).
 * Returns 0, -EINVAL or -ERANGE. */
int parse_size(const char *s, uint64_t *ret_bytes);

/* Parses a signal given by name ("TERM", "SIGTERM", case-insensitive) or number ("9").
 * Returns 0 or -EINVAL. */
int parse_signal(const char *s, int *ret_signal);

/* Parses a job id: a positive decimal number or a job's object path. Returns 0 or -EINVAL. */
int parse_job_id(const char *s, uint64_t *ret_id);

/* Parses a decimal integer in [min, max]. Returns 0, -EINVAL or -ERANGE. */
int parse_int_range(const char *s, long long min, long long max, long long *ret);
