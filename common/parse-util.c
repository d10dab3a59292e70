/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsing of the values people type: time spans as systemd writes them, points in time, byte sizes,
 * counts. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Reads exactly n digits at *p into *ret, moving *p past them. */
static bool read_digits(const char **p, size_t n, int *ret) {
        int v = 0;

        for (size_t i = 0; i < n; i++) {
                if (!isdigit((unsigned char) (*p)[i]))
                        return false;
                v = v * 10 + ((*p)[i] - '0');
        }
        *p += n;
        *ret = v;
        return true;
}

/* "HH:MM[:SS]" at p, and nothing after it. */
static int parse_clock(const char *p, struct tm *tm) {
        int h, m, sec = 0;

        if (!read_digits(&p, 2, &h) || *p++ != ':' || !read_digits(&p, 2, &m))
                return -EINVAL;
        if (*p == ':') {
                p++;
                if (!read_digits(&p, 2, &sec))
                        return -EINVAL;
        }
        if (*p != '\0' || h > 23 || m > 59 || sec > 59)
                return -EINVAL;
        tm->tm_hour = h;
        tm->tm_min = m;
        tm->tm_sec = sec;
        return 0;
}

/* mktime() of tm as a local time; -EINVAL if the date does not exist (mktime() moved it: 02-30). */
static int local_time_usec(struct tm *tm, uint64_t *ret_usec) {
        int year = tm->tm_year, mon = tm->tm_mon, mday = tm->tm_mday;
        time_t t;

        tm->tm_isdst = -1;
        t = mktime(tm);
        if (t == (time_t) -1 || t < 0 || tm->tm_year != year || tm->tm_mon != mon || tm->tm_mday != mday)
                return -EINVAL;
        *ret_usec = (uint64_t) t * USEC_PER_SEC;
        return 0;
}

int parse_timestamp(const char *s, uint64_t now_usec, uint64_t *ret_usec) {
        _cleanup_free_ char *text = NULL;
        uint64_t usec;
        char *p, *end;
        int r;

        if (!s)
                return -EINVAL;
        while (isspace((unsigned char) *s))
                s++;
        text = strdup(s);
        if (!text)
                return -ENOMEM;
        for (end = text + strlen(text); end > text && isspace((unsigned char) end[-1]); end--)
                end[-1] = '\0';
        p = text;
        if (*p == '\0')
                return -EINVAL;

        if (*p == '@') {
                r = parse_unsigned(p + 1, 0, UINT64_MAX / USEC_PER_SEC, &usec);
                if (r < 0)
                        return r;
                *ret_usec = usec * USEC_PER_SEC;
                return 0;
        }

        if (strlen(p) >= 10 && p[4] == '-' && p[7] == '-') {
                /* "YYYY-MM-DD HH:MM[:SS]" */
                const char *q = p;
                struct tm tm = {};
                int y, mon, d;

                if (!read_digits(&q, 4, &y) || *q++ != '-' || !read_digits(&q, 2, &mon) || *q++ != '-' ||
                    !read_digits(&q, 2, &d) || *q++ != ' ')
                        return -EINVAL;
                while (*q == ' ')
                        q++;
                if (mon < 1 || mon > 12 || d < 1 || d > 31)
                        return -EINVAL;
                r = parse_clock(q, &tm);
                if (r < 0)
                        return r;
                tm.tm_year = y - 1900;
                tm.tm_mon = mon - 1;
                tm.tm_mday = d;
                return local_time_usec(&tm, ret_usec);
        }

        if (strchr(p, ':')) {
                /* "HH:MM[:SS]": today, or tomorrow once it has passed */
                time_t now = (time_t) (now_usec / USEC_PER_SEC);
                struct tm tm;

                if (!localtime_r(&now, &tm))
                        return -EINVAL;
                r = parse_clock(p, &tm);
                if (r < 0)
                        return r;
                r = local_time_usec(&tm, &usec);
                if (r < 0)
                        return r;
                if (usec <= now_usec) {
                        /* mktime() carries the 32nd into the next month, at the hour the new day has */
                        if (!localtime_r(&now, &tm))
                                return -EINVAL;
                        r = parse_clock(p, &tm);
                        if (r < 0)
                                return r;
                        tm.tm_mday++;
                        tm.tm_isdst = -1;
                        time_t t = mktime(&tm);
                        if (t == (time_t) -1)
                                return -EINVAL;
                        usec = (uint64_t) t * USEC_PER_SEC;
                }
                *ret_usec = usec;
                return 0;
        }

        /* "+TIMESPAN", or a bare one */
        if (*p == '+')
                p++;
        r = parse_timespan(p, &usec);
        if (r < 0)
                return r;
        if (usec > UINT64_MAX - now_usec)
                return -ERANGE;
        *ret_usec = now_usec + usec;
        return 0;
}
