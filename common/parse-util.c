/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsing of the values people type: time spans as systemd writes them, byte sizes, counts. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "parse-util.h"

int parse_unsigned(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        unsigned long long v;
        char *end;

        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -errno;
        if (*end != '\0')
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

/* A month and a year as systemd.time(7) defines them: 30.44 and 365.25 days. */
#define USEC_PER_MONTH (2629800ULL * USEC_PER_SEC)
#define USEC_PER_YEAR (31557600ULL * USEC_PER_SEC)

/* Every unit systemd.time(7) names, as systemd-analyze timespan reads them. Case matters: "m" is a
 * minute, "M" a month. Longer suffixes first, so that "ms" is not read as "m" followed by garbage. */
static const struct {
        const char *suffix;
        uint64_t usec;
} time_units[] = {
        { "seconds", USEC_PER_SEC },
        { "second", USEC_PER_SEC },
        { "minutes", 60 * USEC_PER_SEC },
        { "minute", 60 * USEC_PER_SEC },
        { "months", USEC_PER_MONTH },
        { "month", USEC_PER_MONTH },
        { "hours", 3600 * USEC_PER_SEC },
        { "hour", 3600 * USEC_PER_SEC },
        { "weeks", 7 * 86400 * USEC_PER_SEC },
        { "week", 7 * 86400 * USEC_PER_SEC },
        { "years", USEC_PER_YEAR },
        { "year", USEC_PER_YEAR },
        { "days", 86400 * USEC_PER_SEC },
        { "day", 86400 * USEC_PER_SEC },
        { "msec", USEC_PER_MSEC },
        { "usec", 1 },
        { "sec", USEC_PER_SEC },
        { "min", 60 * USEC_PER_SEC },
        { "hr", 3600 * USEC_PER_SEC },
        { "ms", USEC_PER_MSEC },
        { "us", 1 },
        { "\xc2\xb5s", 1 }, /* µs, MICRO SIGN */
        { "\xce\xbcs", 1 }, /* μs, GREEK SMALL LETTER MU */
        { "s", USEC_PER_SEC },
        { "m", 60 * USEC_PER_SEC },
        { "h", 3600 * USEC_PER_SEC },
        { "d", 86400 * USEC_PER_SEC },
        { "w", 7 * 86400 * USEC_PER_SEC },
        { "M", USEC_PER_MONTH },
        { "y", USEC_PER_YEAR },
};

int parse_timespan(const char *s, uint64_t *ret_usec) {
        uint64_t total = 0;
        bool any = false;

        if (!s)
                return -EINVAL;
        for (const char *p = s;;) {
                unsigned long long whole;
                uint64_t unit = USEC_PER_SEC, frac_usec = 0;
                char *end;

                while (isspace((unsigned char) *p))
                        p++;
                if (*p == '\0')
                        break;
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                errno = 0;
                whole = strtoull(p, &end, 10);
                if (errno != 0)
                        return -ERANGE;
                p = end;
                /* A fraction: "1.5s". */
                const char *frac = NULL;
                if (*p == '.') {
                        frac = ++p;
                        while (isdigit((unsigned char) *p))
                                p++;
                }
                while (isspace((unsigned char) *p))
                        p++;
                bool matched = false;
                for (size_t i = 0; i < ELEMENTSOF(time_units); i++) {
                        size_t l = strlen(time_units[i].suffix);
                        if (strncmp(p, time_units[i].suffix, l) == 0 && !isalpha((unsigned char) p[l])) {
                                unit = time_units[i].usec;
                                p += l;
                                matched = true;
                                break;
                        }
                }
                if (!matched && *p != '\0' && !isspace((unsigned char) *p) && !isdigit((unsigned char) *p))
                        return -EINVAL;
                if (frac) {
                        uint64_t scale = unit;
                        for (const char *f = frac; isdigit((unsigned char) *f) && scale >= 10; f++) {
                                scale /= 10;
                                frac_usec += (uint64_t) (*f - '0') * scale;
                        }
                }
                if (whole > (UINT64_MAX - frac_usec) / unit || total > UINT64_MAX - whole * unit - frac_usec)
                        return -ERANGE;
                total += whole * unit + frac_usec;
                any = true;
        }
        if (!any)
                return -EINVAL;
        *ret_usec = total;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        static const struct {
                char c;
                uint64_t factor;
        } units[] = { { 'K', 1ULL << 10 }, { 'M', 1ULL << 20 }, { 'G', 1ULL << 30 }, { 'T', 1ULL << 40 } };
        unsigned long long v;
        uint64_t factor = 1;
        char *end;

        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -ERANGE;
        if (*end != '\0') {
                bool found = false;
                for (size_t i = 0; i < ELEMENTSOF(units); i++)
                        if (toupper((unsigned char) *end) == units[i].c) {
                                factor = units[i].factor;
                                found = true;
                                break;
                        }
                if (found)
                        end++;
                if (strcmp(end, "") != 0 && strcmp(end, "B") != 0 && strcmp(end, "iB") != 0)
                        return -EINVAL;
                if (!found && strcmp(end, "B") != 0)
                        return -EINVAL;
        }
        if (v > UINT64_MAX / factor)
                return -ERANGE;
        *ret = v * factor;
        return 0;
}
