/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsing of the values people type: time spans as systemd writes them, byte sizes, counts. */
#pragma once

#include <stdint.h>

/* "30" (seconds), "30s", "5min", "1h 30min", "500ms", "2us", "1d"; returns -EINVAL or -ERANGE. */
int parse_timespan(const char *s, uint64_t *ret_usec);
/* "1024", "64K", "16M", "1G" (powers of 1024, an optional trailing "B" or "iB"). */
int parse_size(const char *s, uint64_t *ret);
/* A whole decimal number in [min, max]. */
int parse_unsigned(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
