/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsers for procpoolctl's arguments: time spans, sizes, signals and job ids. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "ctl-parse.h"
#include "macro.h"

static const struct {
        const char *suffix;
        uint64_t usec;
} time_units[] = {
        { "seconds", USEC_PER_SEC },
        { "second", USEC_PER_SEC },
        { "sec", USEC_PER_SEC },
        { "s", USEC_PER_SEC },
        { "minutes", 60 * USEC_PER_SEC },
        { "minute", 60 * USEC_PER_SEC },
        { "min", 60 * USEC_PER_SEC },
        { "m", 60 * USEC_PER_SEC },
        { "months", 2629800 * USEC_PER_SEC }, /* 30.44 days, as systemd counts a month */
        { "month", 2629800 * USEC_PER_SEC },
        { "M", 2629800 * USEC_PER_SEC },
        { "msec", USEC_PER_MSEC },
        { "ms", USEC_PER_MSEC },
        { "hours", 3600 * USEC_PER_SEC },
        { "hour", 3600 * USEC_PER_SEC },
        { "hr", 3600 * USEC_PER_SEC },
        { "h", 3600 * USEC_PER_SEC },
        { "days", 86400 * USEC_PER_SEC },
        { "day", 86400 * USEC_PER_SEC },
        { "d", 86400 * USEC_PER_SEC },
        { "weeks", 7 * 86400 * USEC_PER_SEC },
        { "week", 7 * 86400 * USEC_PER_SEC },
        { "w", 7 * 86400 * USEC_PER_SEC },
        { "years", 31557600 * USEC_PER_SEC }, /* 365.25 days */
        { "year", 31557600 * USEC_PER_SEC },
        { "y", 31557600 * USEC_PER_SEC },
        { "usec", 1 },
        { "us", 1 },
        { "\xc2\xb5s", 1 }, /* µs */
};

static bool is_unit_char(char c) {
        return isalpha((unsigned char) c) || (unsigned char) c >= 0x80;
}

/* Parses digits with an optional fraction into value * unit; fractions are kept to the microsecond. */
static int parse_one_span(const char **p, uint64_t *ret) {
        const char *s = *p, *unit_start;
        uint64_t whole = 0, frac = 0, frac_div = 1, mult = USEC_PER_SEC;
        bool digits = false;
        size_t unit_len;

        while (isdigit((unsigned char) *s)) {
                if (whole > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                whole = whole * 10 + (uint64_t) (*s - '0');
                s++;
                digits = true;
        }
        if (*s == '.' && digits) {
                s++;
                while (isdigit((unsigned char) *s)) {
                        /* Digits past the microsecond of the largest unit cannot change the result. */
                        if (frac_div < 1000000000000ULL) {
                                frac = frac * 10 + (uint64_t) (*s - '0');
                                frac_div *= 10;
                        }
                        s++;
                        digits = true;
                }
        }
        if (!digits)
                return -EINVAL;

        while (*s == ' ')
                s++;
        unit_start = s;
        while (is_unit_char(*s))
                s++;
        unit_len = (size_t) (s - unit_start);
        if (unit_len > 0) {
                bool found = false;
                for (size_t i = 0; i < ELEMENTSOF(time_units); i++)
                        if (strlen(time_units[i].suffix) == unit_len &&
                            strncmp(time_units[i].suffix, unit_start, unit_len) == 0) {
                                mult = time_units[i].usec;
                                found = true;
                                break;
                        }
                if (!found)
                        return -EINVAL;
        }

        if (whole > UINT64_MAX / mult)
                return -ERANGE;
        whole *= mult;
        /* frac / frac_div * mult, without overflow: frac < frac_div <= 10^12 and mult < 2^45. */
        whole += (uint64_t) ((long double) frac * (long double) mult / (long double) frac_div);
        *ret = whole;
        *p = s;
        return 0;
}

int parse_timespan(const char *s, uint64_t *ret_usec) {
        uint64_t total = 0;
        bool any = false;

        if (!s)
                return -EINVAL;
        while (*s == ' ')
                s++;
        if (strcmp(s, "infinity") == 0) {
                *ret_usec = USEC_INFINITY;
                return 0;
        }
        while (*s) {
                uint64_t v;
                int r;

                if (*s == '-' || *s == '+')
                        return -EINVAL;
                r = parse_one_span(&s, &v);
                if (r < 0)
                        return r;
                if (total > UINT64_MAX - 1 - v)
                        return -ERANGE;
                total += v;
                any = true;
                while (*s == ' ')
                        s++;
        }
        if (!any)
                return -EINVAL;
        *ret_usec = total;
        return 0;
}

int parse_size(const char *s, uint64_t *ret_bytes) {
        static const char prefixes[] = "KMGT";
        uint64_t v = 0, mult = 1;
        const char *p;
        bool digits = false;

        if (!s)
                return -EINVAL;
        for (p = s; isdigit((unsigned char) *p); p++) {
                if (v > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (*p - '0');
                digits = true;
        }
        if (!digits)
                return -EINVAL;
        while (*p == ' ')
                p++;
        if (*p) {
                const char *k = strchr(prefixes, toupper((unsigned char) *p));
                if (k) {
                        for (const char *i = prefixes; i <= k; i++)
                                mult *= 1024;
                        p++;
                        if (strcmp(p, "iB") == 0 || strcmp(p, "B") == 0)
                                p += strlen(p);
                } else if (*p == 'B')
                        p++;
                if (*p)
                        return -EINVAL;
        }
        if (v > UINT64_MAX / mult)
                return -ERANGE;
        *ret_bytes = v * mult;
        return 0;
}

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
        const char *prefix = PROCPOOL_OBJECT_PATH "/job/";

        if (!s)
                return -EINVAL;
        if (strncmp(s, prefix, strlen(prefix)) == 0)
                s += strlen(prefix);
        if (!isdigit((unsigned char) *s) || parse_int_range(s, 1, LLONG_MAX, &n) < 0)
                return -EINVAL;
        *ret_id = (uint64_t) n;
        return 0;
}
