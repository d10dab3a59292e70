/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsers for procpoolctl's own arguments: signals and job ids. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "procpool-api.h"
#include "ctl-parse.h"
#include "macro.h"

int parse_int_range(const char *s, long long min, long long max, long long *ret) {
        char *end = NULL;
        long long v;

        if (!s || !*s || isspace((unsigned char) *s))
                return -EINVAL;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (*end)
                return -EINVAL;
        if (errno == ERANGE || v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int parse_signal(const char *s, int *ret_signal) {
        long long n;

        if (!s || !*s)
                return -EINVAL;
        if (isdigit((unsigned char) *s)) {
                if (parse_int_range(s, 1, SIGRTMAX, &n) < 0)
                        return -EINVAL;
                *ret_signal = (int) n;
                return 0;
        }
        if (strncasecmp(s, "SIG", 3) == 0)
                s += 3;
        for (int sig = 1; sig < SIGRTMIN; sig++) {
                const char *name = sigabbrev_np(sig);
                if (name && strcasecmp(name, s) == 0) {
                        *ret_signal = sig;
                        return 0;
                }
        }
        return -EINVAL;
}

int parse_job_id(const char *s, uint64_t *ret_id) {
        long long n;
        const char *prefix = PROCPOOL_JOB_PATH_PREFIX "/";

        if (!s)
                return -EINVAL;
        if (strncmp(s, prefix, strlen(prefix)) == 0)
                s += strlen(prefix);
        if (!isdigit((unsigned char) *s) || parse_int_range(s, 1, LLONG_MAX, &n) < 0)
                return -EINVAL;
        *ret_id = (uint64_t) n;
        return 0;
}

bool env_name_is_valid(const char *name) {
        if (!name || !*name || (*name >= '0' && *name <= '9'))
                return false;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '_'))
                        return false;
        return true;
}
