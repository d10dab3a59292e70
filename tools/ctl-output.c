/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Formatting for procpoolctl: JSON strings, time spans and stamps, command lines, tables. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl-output.h"
#include "macro.h"

void json_write_string(FILE *f, const char *s) {
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
                        else
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

char *format_timestamp(uint64_t usec) {
        time_t sec = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;
        char buf[128];

        if (!localtime_r(&sec, &tm) || strftime(buf, sizeof buf, "%a %Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                return strdup("n/a");
        return strdup(buf);
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
        size_t n_columns;
        char **cells; /* rows * n_columns, the header first */
        size_t n_cells;
};

Table *table_new(size_t n_columns, const char *const *headers) {
        Table *t = calloc(1, sizeof *t);

        if (!t)
                return NULL;
        t->n_columns = n_columns;
        if (table_add_row(t, headers) < 0)
                return table_free(t);
        return t;
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t);
        return NULL;
}

int table_add_row(Table *t, const char *const *cells) {
        char **n = realloc(t->cells, (t->n_cells + t->n_columns) * sizeof(char *));

        if (!n)
                return -ENOMEM;
        t->cells = n;
        for (size_t i = 0; i < t->n_columns; i++) {
                char *c = strdup(cells[i] ? cells[i] : "");
                if (!c) {
                        for (size_t j = 0; j < i; j++)
                                free(t->cells[t->n_cells + j]);
                        return -ENOMEM;
                }
                t->cells[t->n_cells + i] = c;
        }
        t->n_cells += t->n_columns;
        return 0;
}

size_t table_rows(const Table *t) {
        return t->n_cells / t->n_columns - 1;
}

/* Display width of UTF-8 text, counting each code point as one column. */
static size_t text_width(const char *s) {
        size_t w = 0;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if ((*p & 0xc0) != 0x80)
                        w++;
        return w;
}

/* Writes at most max columns of s, cutting it with "…" when it is longer. */
static void write_cut(FILE *f, const char *s, size_t max) {
        size_t w = 0;

        if (text_width(s) <= max) {
                fputs(s, f);
                return;
        }
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if ((*p & 0xc0) != 0x80 && ++w >= max)
                        break;
                fputc(*p, f);
        }
        if (max > 0)
                fputs("\xe2\x80\xa6", f);
}

void table_print(const Table *t, FILE *f, bool header, size_t width) {
        size_t n_rows = t->n_cells / t->n_columns;
        _cleanup_free_ size_t *widths = calloc(t->n_columns, sizeof(size_t));
        size_t used = 0;

        if (!widths)
                return;
        for (size_t r = header ? 0 : 1; r < n_rows; r++)
                for (size_t c = 0; c < t->n_columns; c++) {
                        size_t w = text_width(t->cells[r * t->n_columns + c]);
                        if (w > widths[c])
                                widths[c] = w;
                }
        for (size_t c = 0; c + 1 < t->n_columns; c++)
                used += widths[c] + 1;

        for (size_t r = header ? 0 : 1; r < n_rows; r++) {
                for (size_t c = 0; c < t->n_columns; c++) {
                        const char *cell = t->cells[r * t->n_columns + c];
                        if (c + 1 == t->n_columns) {
                                if (width > 0)
                                        write_cut(f, cell, width > used + 8 ? width - used : 8);
                                else
                                        fputs(cell, f);
                        } else
                                fprintf(f, "%s%*s ", cell, (int) (widths[c] - text_width(cell)), "");
                }
                fputc('\n', f);
        }
}
