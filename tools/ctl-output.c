/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Formatting for procpoolctl: JSON strings, time spans and stamps, command lines, tables. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libsmartcols.h>

#include "ctl-output.h"
#include "macro.h"

static size_t utf8_decode(const unsigned char *p, uint32_t *ret);
static bool is_invisible_format(uint32_t c);

void json_write_string(FILE *f, const char *s) {
        uint32_t c;
        size_t n;

        fputc('"', f);
        for (const unsigned char *p = (const unsigned char *) (s ? s : ""); *p; p++) {
                switch (*p) {
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\r':
                        fputs("\\r", f);
                        break;
                case '\t':
                        fputs("\\t", f);
                        break;
                default:
                        if (*p < 0x20 || *p == 0x7f)
                                fprintf(f, "\\u%04x", *p);
                        else if (*p >= 0x80 && (n = utf8_decode(p, &c)) > 0 &&
                                 ((c >= 0x80 && c <= 0x9f) || is_invisible_format(c))) {
                                /* C1 controls and bidi overrides too: the bytes stay safe on a terminal */
                                fprintf(f, "\\u%04" PRIx32, c);
                                p += n - 1;
                        } else
                                fputc(*p, f);
                }
        }
        fputc('"', f);
}

void json_write_strv(FILE *f, char *const *l) {
        fputc('[', f);
        for (char *const *i = l; i && *i; i++) {
                if (i != l)
                        fputc(',', f);
                json_write_string(f, *i);
        }
        fputc(']', f);
}

char *format_timespan(uint64_t usec) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                { "d", 86400 * USEC_PER_SEC }, { "h", 3600 * USEC_PER_SEC }, { "min", 60 * USEC_PER_SEC },
                { "s", USEC_PER_SEC },         { "ms", USEC_PER_MSEC },      { "us", 1 },
        };
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        bool first = true;
        /* Down to the millisecond under a minute, to the second above: enough to read a runtime. */
        uint64_t accuracy = usec >= 60 * USEC_PER_SEC ? USEC_PER_SEC
                            : usec >= USEC_PER_MSEC   ? USEC_PER_MSEC
                                                      : 1;

        if (!f)
                return NULL;
        if (usec == 0)
                fputs("0", f);
        for (size_t i = 0; i < ELEMENTSOF(units) && usec >= accuracy; i++) {
                if (usec < units[i].usec)
                        continue;
                fprintf(f, "%s%llu%s", first ? "" : " ", (unsigned long long) (usec / units[i].usec),
                        units[i].suffix);
                usec %= units[i].usec;
                first = false;
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

char *format_bytes(uint64_t bytes) {
        static const char units[] = "KMGTPE";
        char *s = NULL;
        size_t u = 0;
        double v = (double) bytes;

        if (bytes < 1024)
                return asprintf(&s, "%" PRIu64 "B", bytes) < 0 ? NULL : s;
        v /= 1024;
        while (v >= 1024 && u + 1 < sizeof(units) - 1) {
                v /= 1024;
                u++;
        }
        return asprintf(&s, "%.1f%c", v, units[u]) < 0 ? NULL : s;
}

void json_write_base64(FILE *f, const void *data, size_t size) {
        static const char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const unsigned char *p = data;

        fputc('"', f);
        for (size_t i = 0; i < size; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16 | (i + 1 < size ? (uint32_t) p[i + 1] << 8 : 0) |
                             (i + 2 < size ? p[i + 2] : 0);
                fputc(table[v >> 18 & 63], f);
                fputc(table[v >> 12 & 63], f);
                fputc(i + 1 < size ? table[v >> 6 & 63] : '=', f);
                fputc(i + 2 < size ? table[v & 63] : '=', f);
        }
        fputc('"', f);
}

char *format_timestamp(uint64_t usec) {
        time_t sec = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;
        char buf[128];

        if (!localtime_r(&sec, &tm) || strftime(buf, sizeof buf, "%a %Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                return strdup("n/a");
        return strdup(buf);
}

/* The length of the UTF-8 sequence at p and its code point; 0 if it is not one (overlong, a surrogate,
 * past U+10FFFF, or cut short). */
static size_t utf8_decode(const unsigned char *p, uint32_t *ret) {
        size_t n;
        uint32_t c;

        if (p[0] < 0x80) {
                *ret = p[0];
                return 1;
        }
        if ((p[0] & 0xe0) == 0xc0)
                n = 2, c = p[0] & 0x1f;
        else if ((p[0] & 0xf0) == 0xe0)
                n = 3, c = p[0] & 0x0f;
        else if ((p[0] & 0xf8) == 0xf0)
                n = 4, c = p[0] & 0x07;
        else
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                c = (c << 6) | (p[i] & 0x3f);
        }
        if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || c > 0x10ffff ||
            (c >= 0xd800 && c <= 0xdfff))
                return 0;
        *ret = c;
        return n;
}

/* Unicode characters that reorder, hide or break text although they print nothing themselves. */
static bool is_invisible_format(uint32_t c) {
        return (c >= 0x200b && c <= 0x200f) || (c >= 0x2028 && c <= 0x202e) || (c >= 0x2060 && c <= 0x2069) ||
               c == 0xfeff;
}

char *escape_for_terminal(const char *s) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) (s ? s : ""); *p;) {
                uint32_t c;
                size_t n = utf8_decode(p, &c);

                if (n == 0 || c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f)) {
                        /* a control character (each byte of a C1 one), or a byte that is not UTF-8 */
                        for (size_t i = 0; i < (n ?: 1); i++)
                                fprintf(f, "\\x%02x", p[i]);
                        p += n ?: 1;
                } else if (is_invisible_format(c)) {
                        fprintf(f, "\\u{%04" PRIx32 "}", c);
                        p += n;
                } else {
                        fwrite(p, 1, n, f);
                        p += n;
                }
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

static bool needs_quoting(const char *s) {
        if (!*s)
                return true;
        for (const char *p = s; *p; p++)
                if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@%+=:,./-_", *p) &&
                    (unsigned char) *p < 0x80)
                        return true;
        return false;
}

char *format_command_line(char *const *argv) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        for (char *const *a = argv; a && *a; a++) {
                if (a != argv)
                        fputc(' ', f);
                if (!needs_quoting(*a)) {
                        fputs(*a, f);
                        continue;
                }
                fputc('\'', f);
                for (const char *p = *a; *p; p++) {
                        if (*p == '\'')
                                fputs("'\\''", f);
                        else
                                fputc(*p, f);
                }
                fputc('\'', f);
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

struct Table {
        struct libscols_table *table;
        size_t n_columns;
        size_t n_rows;
};

Table *table_new(size_t n_columns, const char *const *headers) {
        Table *t = calloc(1, sizeof *t);

        if (!t)
                return NULL;
        t->n_columns = n_columns;
        t->table = scols_new_table();
        if (!t->table)
                return table_free(t);
        for (size_t i = 0; i < n_columns; i++) {
                /* The last column, the command line, is the one cut to the terminal's width. */
                struct libscols_column *c = scols_table_new_column(t->table, headers[i], 0,
                                                                   i + 1 == n_columns ? SCOLS_FL_TRUNC : 0);
                /* Cells come escaped by escape_for_terminal(), which also escapes what libsmartcols would
                 * let through (a bidi override prints): its own escaping would escape our backslashes. */
                if (!c || scols_column_set_safechars(c, "\\") < 0)
                        return table_free(t);
        }
        return t;
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        scols_unref_table(t->table);
        free(t);
        return NULL;
}

int table_add_row(Table *t, const char *const *cells) {
        struct libscols_line *line = scols_table_new_line(t->table, NULL);

        if (!line)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_columns; i++) {
                char *c = escape_for_terminal(cells[i] ? cells[i] : "");
                /* The line takes the cell over. */
                if (!c || scols_line_refer_data(line, i, c) < 0) {
                        free(c);
                        return -ENOMEM;
                }
        }
        t->n_rows++;
        return 0;
}

size_t table_rows(const Table *t) {
        return t->n_rows;
}

void table_print(Table *t, FILE *f, bool header, bool cut) {
        (void) scols_table_enable_noheadings(t->table, !header);
        (void) scols_table_set_stream(t->table, f);
        /* Cut only on a terminal, as lsblk does: piped output keeps every byte of the command. */
        (void) scols_table_set_termforce(t->table, cut ? SCOLS_TERMFORCE_AUTO : SCOLS_TERMFORCE_NEVER);
        (void) scols_print_table(t->table);
        fflush(f);
}

void json_write_text(FILE *f, const void *data, size_t size) {
        const unsigned char *p = data, *end = p + size;

        fputc('"', f);
        while (p < end) {
                unsigned char seq[5] = {};
                uint32_t c;
                size_t n;

                switch (*p) {
                case '"':
                        fputs("\\\"", f);
                        p++;
                        continue;
                case '\\':
                        fputs("\\\\", f);
                        p++;
                        continue;
                case '\n':
                        fputs("\\n", f);
                        p++;
                        continue;
                case '\r':
                        fputs("\\r", f);
                        p++;
                        continue;
                case '\t':
                        fputs("\\t", f);
                        p++;
                        continue;
                }
                if (*p < 0x20 || *p == 0x7f) {
                        fprintf(f, "\\u%04x", *p);
                        p++;
                        continue;
                }
                if (*p < 0x80) {
                        fputc(*p, f);
                        p++;
                        continue;
                }
                /* A NUL-terminated copy, so that a sequence cut by the end of the data reads as invalid. */
                memcpy(seq, p, MIN((size_t) (end - p), sizeof seq - 1));
                n = utf8_decode(seq, &c);
                if (n == 0) {
                        fprintf(f, "\\udc%02x", *p);
                        p++;
                } else if ((c >= 0x80 && c <= 0x9f) || is_invisible_format(c)) {
                        fprintf(f, "\\u%04" PRIx32, c);
                        p += n;
                } else {
                        fwrite(p, 1, n, f);
                        p += n;
                }
        }
        fputc('"', f);
}
