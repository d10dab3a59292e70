/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsers for procpoolctl's own arguments: signals and job ids. Time spans and sizes are read by
 * common/parse-util.h, as procpoold reads them. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Parses a signal given by name ("TERM", "SIGTERM", case-insensitive) or number ("9").
 * Returns 0 or -EINVAL. */
int parse_signal(const char *s, int *ret_signal);

/* Parses a job id: a positive decimal number or a job's object path. Returns 0 or -EINVAL. */
int parse_job_id(const char *s, uint64_t *ret_id);

/* Whether name is a valid environment variable name, as a POSIX shell takes one: letters, digits and
 * '_', not starting with a digit. */
bool env_name_is_valid(const char *name);

/* Parses a decimal integer in [min, max]. Returns 0, -EINVAL or -ERANGE. */
int parse_int_range(const char *s, long long min, long long max, long long *ret);
