/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Logging at the edges (main, dbus/): one line per message, with a level the journal understands. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "log.h"

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
        if (log_to_journal)
                fprintf(stderr, "<%d>", level);
        else
                fprintf(stderr, "%s: ", log_ident);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fputc('\n', stderr);
        errno = saved;
        return -e;
}
