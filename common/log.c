/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Logging at the edges (main, dbus/): one line per message, with a level the journal understands. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

/* The longest line written; the journal's own line limit is far larger, but no message of ours is. */
#define LOG_LINE_MAX 4096

static const char *log_ident = "procpool";
static bool log_to_journal = false;
static int log_max_level = LOG_INFO;

/* JOURNAL_STREAM is "device:inode" of the stream systemd connected to the journal; it is inherited,
 * so it counts only while stderr is still that stream. */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_setup(const char *ident) {
        log_ident = ident;
        log_to_journal = stderr_is_journal();
}

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_internal(int level, int error, const char *format, ...) {
        int saved = errno, e = error < 0 ? -error : error;
        va_list ap;

        if (level > log_max_level)
                return -e;
        errno = e != 0 ? e : saved; /* for %m */
        /* One write per line: stderr is unbuffered, and the daemon logs a line per job. */
        char line[LOG_LINE_MAX];
        int n = log_to_journal ? snprintf(line, sizeof(line), "<%d>", level)
                               : snprintf(line, sizeof(line), "%s: ", log_ident);
        if (n < 0 || (size_t) n >= sizeof(line))
                n = 0;
        va_start(ap, format);
        int k = vsnprintf(line + n, sizeof(line) - n, format, ap);
        va_end(ap);
        if (k < 0)
                k = 0;
        /* A longer line is cut, its end marked: "...". */
        if ((size_t) n + k >= sizeof(line) - 1) {
                n = sizeof(line) - 5;
                memcpy(line + n, "...", 3);
                n += 3;
        } else
                n += k;
        line[n++] = '\n';
        fwrite(line, 1, n, stderr);
        errno = saved;
        return -e;
}
