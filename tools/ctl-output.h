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

/* Returns a malloc'd size such as "512B", "1.5K" or "12.3M" (base 1024), or NULL on OOM. */
char *format_bytes(uint64_t bytes);

/* Writes size bytes of data as a JSON string of their base64 (RFC 4648), quotes included. */
void json_write_base64(FILE *f, const void *data, size_t size);

/* Returns a malloc'd local time such as "Sat 2026-11-28 07:40:01 UTC" for microseconds since the
 * epoch, or NULL on OOM. */
char *format_timestamp(uint64_t usec);

/* Returns s made safe to print on a terminal, malloc'd (NULL on OOM): control characters (C0, DEL, C1),
 * the Unicode ones that reorder or hide text (bidi overrides, zero-width and line separators) and bytes
 * that are not UTF-8 become \xNN (\u{NNNN} for the Unicode ones), so that a string another user chose
 * cannot move the cursor, retitle the terminal or split a line. Printable UTF-8 is kept as it is. */
char *escape_for_terminal(const char *s);

/* Returns argv joined by spaces, each argument quoted for a POSIX shell where it needs it, malloc'd;
 * NULL on OOM. */
char *format_command_line(char *const *argv);

/* A text table that sizes its columns to their contents by display width, as lsblk and findmnt print
 * them: libsmartcols underneath. Cells are escaped with escape_for_terminal() as they are added. */
typedef struct Table Table;

Table *table_new(size_t n_columns, const char *const *headers);
Table *table_free(Table *t);
/* Adds a row of n_columns cells (copied); returns 0 or -ENOMEM. */
int table_add_row(Table *t, const char *const *cells);
size_t table_rows(const Table *t);
/* Prints the table; with header false the header line is left out. With cut, a terminal's width cuts
 * the last column so that lines fit. */
void table_print(Table *t, FILE *f, bool header, bool cut);

/* Writes size bytes of data as a JSON string, quotes included: UTF-8 as json_write_string() writes it, NULs
 * as \u0000, and each byte that is not UTF-8 as \udcXX (XX the byte), as Python's surrogateescape reads
 * it, so that `json.loads(s).encode("utf-8", "surrogateescape")` gives the bytes back. */
void json_write_text(FILE *f, const void *data, size_t size);
