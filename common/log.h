/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Logging at the edges (main, dbus/): one line per message, with a level the journal understands. */
#pragma once

#include <errno.h>
#include <syslog.h>

#include "macro.h"

/* Decides how lines are written: with sd-daemon's "<N>" level prefixes when stderr is the journal
 * (JOURNAL_STREAM names it), else as "ident: message". Call once, early. */
void log_setup(const char *ident);
/* Messages above this level (LOG_DEBUG, ..., LOG_ERR) are dropped; LOG_INFO by default. */
void log_set_max_level(int level);

/* Writes one line at level; "%m" names error (a negative or positive errno, or 0 for errno). Returns
 * -abs(error), so that "return log_error_errno(r, "Failed to X: %m");" passes r on. */
int log_internal(int level, int error, const char *format, ...) _printf_(3, 4);

#define log_error_errno(error, ...) log_internal(LOG_ERR, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_internal(LOG_WARNING, (error), __VA_ARGS__)
#define log_debug_errno(error, ...) log_internal(LOG_DEBUG, (error), __VA_ARGS__)
#define log_oom() log_internal(LOG_ERR, ENOMEM, "Out of memory")
#define log_error(...) log_internal(LOG_ERR, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_internal(LOG_DEBUG, 0, __VA_ARGS__)
