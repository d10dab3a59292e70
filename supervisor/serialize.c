/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the daemon hands over to its next image when it re-executes: key=value lines in a memfd, and the fds
 * those lines name, kept open across execve(). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "parse-util.h"
#include "serialize.h"

/* The first line: a next image that does not know it refuses the rest rather than misread it. */
#define SERIALIZATION_HEADER "procpool-serialization"
#define SERIALIZATION_VERSION "1"
/* The last line lists every fd handed over, so that the reader can close what nobody takes. */
#define SERIALIZATION_FDS "fds"

int serializer_init(Serializer *s) {
        int copy;

        *s = (Serializer) { .fd = memfd_create("procpoold-serialization", MFD_CLOEXEC) };
        if (s->fd < 0)
                return -errno;
        copy = fcntl(s->fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0) {
                int r = -errno;
                closep(&s->fd);
                return r;
        }
        s->f = fdopen(copy, "w");
        if (!s->f) {
                int r = -errno;
                (void) close(copy);
                closep(&s->fd);
                return r;
        }
        return serialize_item(s, SERIALIZATION_HEADER, SERIALIZATION_VERSION);
}

int serialize_item(Serializer *s, const char *key, const char *value) {
        if (strchr(value, '\n') || strchr(key, '=') || strchr(key, '\n'))
                return -EINVAL;
        if (s->prefix)
                fprintf(s->f, "%s.", s->prefix);
        fprintf(s->f, "%s=%s\n", key, value);
        return ferror(s->f) ? -EIO : 0;
}

int serialize_itemf(Serializer *s, const char *key, const char *format, ...) {
        _cleanup_free_ char *value = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&value, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return serialize_item(s, key, value);
}

int serialize_fd(Serializer *s, const char *key, int fd, bool owned) {
        if (fd < 0)
                return -EBADF;
        if (s->n_fds == s->allocated_fds) {
                size_t a = s->allocated_fds ? s->allocated_fds * 2 : 16;
                SerializedFd *l = realloc(s->fds, a * sizeof(SerializedFd));
                if (!l) {
                        if (owned)
                                (void) close(fd);
                        return -ENOMEM;
                }
                s->fds = l;
                s->allocated_fds = a;
        }
        /* Listed before it is written: an fd s owns is closed with s even if writing fails. */
        s->fds[s->n_fds++] = (SerializedFd) { .fd = fd, .owned = owned };
        return serialize_itemf(s, key, "%d", fd);
}

int serializer_finish(Serializer *s, int *ret_fd) {
        const char *prefix = s->prefix;
        int r;

        s->prefix = NULL;
        fprintf(s->f, SERIALIZATION_FDS "=");
        for (size_t i = 0; i < s->n_fds; i++)
                fprintf(s->f, "%s%d", i > 0 ? " " : "", s->fds[i].fd);
        fputc('\n', s->f);
        s->prefix = prefix;
        r = fclose(s->f) == 0 ? 0 : -errno;
        s->f = NULL;
        if (r < 0)
                return r;
        if (lseek(s->fd, 0, SEEK_SET) < 0)
                return -errno;
        *ret_fd = s->fd;
        return 0;
}

static int set_cloexec(int fd, bool cloexec) {
        int flags = fcntl(fd, F_GETFD);

        if (flags < 0)
                return -errno;
        flags = cloexec ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
        return fcntl(fd, F_SETFD, flags) < 0 ? -errno : 0;
}

int serializer_set_cloexec(Serializer *s, bool cloexec) {
        int r, ret;

        ret = set_cloexec(s->fd, cloexec);
        for (size_t i = 0; i < s->n_fds; i++) {
                r = set_cloexec(s->fds[i].fd, cloexec);
                if (r < 0 && ret >= 0)
                        ret = r;
        }
        return ret;
}

void serializer_done(Serializer *s) {
        if (s->f)
                fclose(s->f);
        s->f = NULL;
        closep(&s->fd);
        for (size_t i = 0; i < s->n_fds; i++)
                if (s->fds[i].owned)
                        closep(&s->fds[i].fd);
        s->fds = mfree(s->fds);
        s->n_fds = s->allocated_fds = 0;
}

/* ---- reading back ---------------------------------------------------------------------------------- */

static int read_all(int fd, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, allocated = 0;

        for (;;) {
                ssize_t k;

                if (allocated - size < 4096) {
                        char *b = realloc(buf, allocated * 2 + 4096);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                        allocated = allocated * 2 + 4096;
                }
                k = read(fd, buf + size, allocated - size - 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                size += (size_t) k;
        }
        buf[size] = '\0';
        if (strlen(buf) != size)
                return -EBADMSG; /* a NUL: not ours */
        *ret = TAKE_PTR(buf);
        return 0;
}

static int parse_fd_list(Deserializer *d, const char *list) {
        size_t n = 1;

        if (!*list)
                return 0;
        for (const char *p = list; *p; p++)
                if (*p == ' ')
                        n++;
        d->fds = calloc(n, sizeof(int));
        if (!d->fds)
                return -ENOMEM;
        for (const char *p = list; *p;) {
                size_t len = strcspn(p, " ");
                char word[16];
                uint64_t v;

                if (len == 0 || len >= sizeof(word))
                        return -EBADMSG;
                memcpy(word, p, len);
                word[len] = '\0';
                if (parse_unsigned(word, 3, INT32_MAX, &v) < 0)
                        return -EBADMSG;
                d->fds[d->n_fds++] = (int) v;
                p += len;
                if (*p == ' ')
                        p++;
        }
        return 0;
}

int deserializer_open(int fd, Deserializer *ret) {
        Deserializer d = {};
        size_t n_lines = 0;
        int r;

        r = read_all(fd, &d.text);
        (void) close(fd);
        if (r < 0)
                return r;
        for (const char *p = d.text; *p; p++)
                if (*p == '\n')
                        n_lines++;
        d.items = calloc(n_lines + 1, sizeof(SerializedItem));
        if (!d.items) {
                deserializer_done(&d);
                return -ENOMEM;
        }
        for (char *line = d.text, *end; *line; line = end + 1) {
                char *eq;

                end = strchr(line, '\n');
                if (!end)
                        break; /* the last line was cut: the fd list is missing, caught below */
                *end = '\0';
                eq = strchr(line, '=');
                if (!eq) {
                        deserializer_done(&d);
                        return -EBADMSG;
                }
                *eq = '\0';
                d.items[d.n_items++] = (SerializedItem) { .key = line, .value = eq + 1 };
        }
        /* Whole, and ours: the header first, the fd list last. */
        if (d.n_items < 2 || strcmp(d.items[0].key, SERIALIZATION_HEADER) != 0 ||
            strcmp(d.items[0].value, SERIALIZATION_VERSION) != 0 ||
            strcmp(d.items[d.n_items - 1].key, SERIALIZATION_FDS) != 0) {
                deserializer_done(&d);
                return -EBADMSG;
        }
        r = parse_fd_list(&d, d.items[d.n_items - 1].value);
        if (r < 0) {
                deserializer_done(&d);
                return r;
        }
        d.n_items--;
        d.next = 1;
        *ret = d;
        return 0;
}

int deserializer_next(Deserializer *d, SerializedItem *ret) {
        if (d->next >= d->n_items)
                return 0;
        *ret = d->items[d->next++];
        return 1;
}

int deserialize_int(const char *value, int64_t min, int64_t max, int64_t *ret) {
        char *end;
        long long v;

        if (!*value || *value == ' ')
                return -EBADMSG;
        errno = 0;
        v = strtoll(value, &end, 10);
        if (errno != 0 || *end != '\0' || v < min || v > max)
                return -EBADMSG;
        *ret = v;
        return 0;
}

int deserializer_take_fd(Deserializer *d, const char *value, int *ret_fd) {
        uint64_t v;

        if (parse_unsigned(value, 3, INT32_MAX, &v) < 0)
                return -EBADMSG;
        for (size_t i = 0; i < d->n_fds; i++) {
                if (d->fds[i] != (int) v)
                        continue;
                if (set_cloexec((int) v, true) < 0)
                        return -EBADF;
                d->fds[i] = d->fds[--d->n_fds];
                *ret_fd = (int) v;
                return 0;
        }
        return -EBADF; /* not handed over, or taken already */
}

void deserializer_done(Deserializer *d) {
        for (size_t i = 0; i < d->n_fds; i++)
                (void) close(d->fds[i]);
        free(d->fds);
        free(d->items);
        free(d->text);
        *d = (Deserializer) {};
}
