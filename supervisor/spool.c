/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The spool: every job's captured stdout and stderr, in files of a directory of the daemon's own, not in
 * its heap. Files are made at a stream's first byte and removed with the job. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "macro.h"
#include "spool.h"

struct Spool {
        char *path;
        int dir_fd;
};

static const char *const stream_suffix[_JOB_STREAM_MAX] = {
        [JOB_STDOUT] = "stdout",
        [JOB_STDERR] = "stderr",
};

int spool_open(const char *dir, Spool **ret) {
        _cleanup_close_ int fd = -EBADF;
        Spool *s;

        fd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        s = calloc(1, sizeof(Spool));
        if (!s)
                return -ENOMEM;
        s->path = strdup(dir);
        if (!s->path) {
                free(s);
                return -ENOMEM;
        }
        s->dir_fd = TAKE_FD(fd);
        *ret = s;
        return 0;
}

Spool *spool_free(Spool *s) {
        if (!s)
                return NULL;
        closep(&s->dir_fd);
        free(s->path);
        free(s);
        return NULL;
}

const char *spool_get_path(const Spool *s) {
        return s->path;
}

static void file_name(char buf[64], uint64_t id, JobStream stream) {
        snprintf(buf, 64, "%" PRIu64 ".%s", id, stream_suffix[stream]);
}

int spool_open_write(Spool *s, uint64_t id, JobStream stream) {
        char name[64];
        int fd;

        file_name(name, id, stream);
        fd = openat(s->dir_fd, name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        return fd < 0 ? -errno : fd;
}

/* What the spool leaves free on its file system: the job store shares it, and a full disk must stop
 * captures, not the store's commits (nor Submit with them). */
static uint64_t keep_free(const struct statvfs *sv) {
        uint64_t size = (uint64_t) sv->f_blocks * sv->f_frsize;
        return MIN(MAX(size / 100 * SPOOL_KEEP_FREE_PERCENT, SPOOL_KEEP_FREE_MIN), SPOOL_KEEP_FREE_MAX);
}

ssize_t spool_write(int fd, const void *data, size_t size) {
        struct statvfs sv;
        size_t done = 0;

        /* Once per chunk (64 KiB at most, from the executor): cheap beside the write itself. */
        if (fstatvfs(fd, &sv) >= 0) {
                uint64_t avail = (uint64_t) sv.f_bavail * sv.f_frsize, keep = keep_free(&sv);
                uint64_t room = avail > keep ? avail - keep : 0;

                if (room == 0)
                        return -ENOSPC;
                size = (size_t) MIN((uint64_t) size, room);
        }
        while (done < size) {
                ssize_t k = write(fd, (const char *) data + done, size - done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return done > 0 ? (ssize_t) done : -errno;
                }
                done += (size_t) k;
        }
        return (ssize_t) done;
}

int spool_open_read(Spool *s, uint64_t id, JobStream stream) {
        char name[64];
        int fd;

        file_name(name, id, stream);
        fd = openat(s->dir_fd, name, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        return fd < 0 ? -errno : fd;
}

int spool_read(Spool *s, uint64_t id, JobStream stream, void *buf, size_t size, size_t *ret_read) {
        _cleanup_close_ int fd = -EBADF;
        size_t done = 0;
        char name[64];

        file_name(name, id, stream);
        fd = openat(s->dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                if (errno != ENOENT)
                        return -errno;
                *ret_read = 0;
                return 0;
        }
        while (done < size) {
                ssize_t k = pread(fd, (char *) buf + done, size - done, (off_t) done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                done += (size_t) k;
        }
        *ret_read = done;
        return 0;
}

int spool_size(Spool *s, uint64_t id, JobStream stream, uint64_t *ret) {
        struct stat st;
        char name[64];

        file_name(name, id, stream);
        if (fstatat(s->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        *ret = (uint64_t) st.st_size;
        return 0;
}

void spool_remove(Spool *s, uint64_t id) {
        for (int i = 0; i < _JOB_STREAM_MAX; i++) {
                char name[64];
                file_name(name, id, i);
                (void) unlinkat(s->dir_fd, name, 0); /* most jobs never made one, ignoring */
        }
}

void spool_prune(Spool *s, bool (*keep)(uint64_t id, void *userdata), void *userdata) {
        _cleanup_close_ int fd = -EBADF;
        struct dirent *de;
        DIR *d;

        fd = openat(s->dir_fd, ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        d = fdopendir(TAKE_FD(fd));
        if (!d)
                return;
        while ((de = readdir(d))) {
                char *end;
                uint64_t id;

                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                errno = 0;
                id = strtoull(de->d_name, &end, 10);
                if (errno != 0 || *end != '.')
                        continue;
                if (!keep(id, userdata))
                        (void) unlinkat(s->dir_fd, de->d_name, 0);
        }
        closedir(d);
}
