/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Formatting for procpoolctl: JSON strings, time spans and stamps, command lines, tables. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Writes s as a JSON string literal, quotes included. s must be UTF-8 (every D-Bus string is). */
void json_write_string(FILE *f, const char *s);

/* Writes a NULL-terminated string array as a JSON array of strings. */
void json_write_strv(FILE *f, char *const *l);

/* Returns a malloc'd human-readable span, e.g. "1h 30min 5s" or "250ms", or NULL on OOM. */
char *format_timespan(uint64_t usec);

/* Returns a malloc'd local time such as "Sat 2026-11-28 07:40:01 UTC" for microseconds since the
 * epoch, or NULL on OOM. */
char *format_timestamp(uint64_t usec);

/* Returns argv joined by spaces, each argument quoted for a POSIX shell where it needs it, malloc'd;
 * NULL on OOM. */
char *format_command_line(char *const *argv);

/* A text table that sizes its columns to their contents, as systemctl list-units prints. */
typedef struct Table Table;

Table *table_new(size_t n_columns, const char *const *headers);
Table *table_free(Table *t);
/* Adds a row of n_columns cells (copied); returns 0 or -ENOMEM. */
int table_add_row(Table *t, const char *const *cells);
size_t table_rows(const Table *t);
/* Prints the table; with header false the header line is left out. A width above zero cuts the last
 * column so that lines fit, ending it with "…". */
void table_print(const Table *t, FILE *f, bool header, size_t width);
