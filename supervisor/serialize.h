/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the daemon hands over to its next image when it re-executes: key=value lines in a memfd, and the fds
 * those lines name, kept open across execve(). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "macro.h"

/* One fd to hand over; owned ones (made for the hand-over, as an input memfd) are closed by
 * serializer_done(). */
typedef struct SerializedFd {
        int fd;
        bool owned;
} SerializedFd;

typedef struct Serializer {
        FILE *f;
        int fd; /* the memfd the lines go to */
        SerializedFd *fds;
        size_t n_fds, allocated_fds;
        const char *prefix; /* prefixed to keys with a dot while set: an executor writes under its name */
} Serializer;

/* A key and its value, as read back. */
typedef struct SerializedItem {
        const char *key;
        const char *value;
} SerializedItem;

typedef struct Deserializer {
        char *text; /* the whole memfd, its lines split in place */
        SerializedItem *items;
        size_t n_items, next;
        int *fds; /* handed over and not yet taken */
        size_t n_fds;
} Deserializer;

/* A serializer writing to a new memfd. */
int serializer_init(Serializer *s);
/* Writes key=value; a value with a newline is refused (-EINVAL). */
int serialize_item(Serializer *s, const char *key, const char *value);
int serialize_itemf(Serializer *s, const char *key, const char *format, ...) _printf_(3, 4);
/* Writes key=fd and hands fd over; with owned, s closes it unless it was handed over. */
int serialize_fd(Serializer *s, const char *key, int fd, bool owned);
/* Ends the lines (the list of fds comes last) and returns the memfd, read from its start. */
int serializer_finish(Serializer *s, int *ret_fd);
/* Clears FD_CLOEXEC on the memfd and every fd to hand over (before execve()), or sets it again. */
int serializer_set_cloexec(Serializer *s, bool cloexec);
/* Closes the memfd and the owned fds; what execve() took over is no longer this image's concern. */
void serializer_done(Serializer *s);

/* Reads what fd holds (taking fd over), as serializer_finish() left it; -EBADMSG if it is not that. */
int deserializer_open(int fd, Deserializer *ret);
/* The next item, 0 at the end; the strings live as long as d. */
int deserializer_next(Deserializer *d, SerializedItem *ret);
/* Takes over the fd value names, which must be one handed over and not taken yet; sets FD_CLOEXEC. */
int deserializer_take_fd(Deserializer *d, const char *value, int *ret_fd);
/* A whole decimal number in [min, max], as serialize_itemf() wrote it; -EBADMSG otherwise. */
int deserialize_int(const char *value, int64_t min, int64_t max, int64_t *ret);
/* Closes every handed-over fd nobody took, and frees d. */
void deserializer_done(Deserializer *d);
