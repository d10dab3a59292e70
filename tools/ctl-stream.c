/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* procpoolctl output: a job's captured stdout and stderr, copied in chunks from OpenOutput's fds, and with
 * --follow copied as they grow until the job ends. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <unistd.h>
#include <systemd/sd-event.h>

#include "procpool-api.h"
#include "ctl-output.h"
#include "ctl.h"

/* inotify needs read access to the watched file itself, which a client of another uid than the daemon's
 * lacks (the spool files are the daemon's, 0600, even when an fd on them is handed out): such a client
 * looks for new bytes this often instead. */
#define FOLLOW_POLL_USEC (200ULL * USEC_PER_MSEC)
#define COPY_CHUNK (128U * 1024U)

typedef struct Follow Follow;

typedef struct Stream {
        Follow *follow;
        int fd;  /* OpenOutput's read-only fd on the job's spool file */
        int out; /* ours: STDOUT_FILENO or STDERR_FILENO */
        sd_event_source *watch;
} Stream;

struct Follow {
        sd_event *event;
        Stream streams[2];
        sd_event_source *poll; /* where inotify cannot watch a stream */
        int error;             /* the first failure to copy: a negative errno */
};

/* Copies what s's file holds past our offset to our stream, up to the file's current end. */
static int stream_copy(Stream *s) {
        uint8_t buf[COPY_CHUNK];

        for (;;) {
                ssize_t n = read(s->fd, buf, sizeof buf);
                int r;

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return 0;
                r = ctl_write_all(s->out, buf, (size_t) n);
                if (r < 0)
                        return r;
        }
}

/* Copies both streams as far as they go; a failure ends the loop, and is kept to be reported. */
static void follow_copy(Follow *f) {
        for (size_t i = 0; i < ELEMENTSOF(f->streams) && f->error == 0; i++) {
                int r = stream_copy(&f->streams[i]);
                if (r < 0) {
                        f->error = r;
                        (void) sd_event_exit(f->event, EXIT_FAILED);
                }
        }
}

/* The job has ended (or waiting for it failed): the files are complete, take the rest before the end is
 * reported. */
static void follow_drain(void *userdata) {
        follow_copy(userdata);
}

static int on_stream_modified(sd_event_source *source, const struct inotify_event *event, void *userdata) {
        follow_copy(((Stream *) userdata)->follow);
        return 0;
}

static int on_poll(sd_event_source *source, uint64_t usec, void *userdata) {
        int r;

        follow_copy(userdata);
        r = sd_event_source_set_time_relative(source, FOLLOW_POLL_USEC);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(source, SD_EVENT_ON);
}

static void follow_done(Follow *f) {
        f->poll = sd_event_source_disable_unref(f->poll);
        for (size_t i = 0; i < ELEMENTSOF(f->streams); i++)
                f->streams[i].watch = sd_event_source_disable_unref(f->streams[i].watch);
}

/* Watches each stream's file for appended bytes: inotify where it may, a timer for the others. */
static int follow_watch(Follow *f) {
        int r;

        for (size_t i = 0; i < ELEMENTSOF(f->streams); i++) {
                Stream *s = &f->streams[i];

                r = sd_event_add_inotify_fd(f->event, &s->watch, s->fd, IN_MODIFY, on_stream_modified, s);
                if (r >= 0 || f->poll)
                        continue;
                r = sd_event_add_time_relative(f->event, &f->poll, CLOCK_MONOTONIC, FOLLOW_POLL_USEC,
                                               FOLLOW_POLL_USEC / 4, on_poll, f);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Prints what the job writes until it ends; returns the exit code 'wait' would give for it. */
static int follow(Ctl *c, uint64_t id, const char *path, int fds[2]) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        Follow f = {};
        int r;

        for (size_t i = 0; i < ELEMENTSOF(f.streams); i++)
                f.streams[i] = (Stream) {
                        .follow = &f,
                        .fd = fds[i],
                        .out = i == 0 ? STDOUT_FILENO : STDERR_FILENO,
                };
        r = sd_event_default(&event);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to set up the event loop");
        f.event = event;
        /* Watched before the first copy, so that nothing written in between goes unnoticed. */
        r = follow_watch(&f);
        if (r < 0) {
                follow_done(&f);
                return ctl_log_error(c, NULL, r, "Failed to watch the output of job %" PRIu64, id);
        }
        follow_copy(&f);
        if (f.error == 0)
                r = ctl_wait_job(c, id, path, follow_drain, &f);
        follow_done(&f);
        if (f.error < 0)
                return ctl_log_error(c, NULL, f.error, "Failed to write the output of job %" PRIu64, id);
        return r;
}

/* --json: the job's object with its two streams as base64, which are bytes, not text. */
static int output_json(Ctl *c, uint64_t id, const char *path, const void *const data[2],
                       const size_t size[2]) {
        _cleanup_free_ char *extra = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&extra, &n);

        if (!f)
                return ctl_log_error(c, NULL, -ENOMEM, "Failed to print the output of job %" PRIu64, id);
        fputs(",\"stdout_base64\":", f);
        json_write_base64(f, data[0], size[0]);
        fputs(",\"stderr_base64\":", f);
        json_write_base64(f, data[1], size[1]);
        if (fclose(f) != 0)
                return ctl_log_error(c, NULL, -ENOMEM, "Failed to print the output of job %" PRIu64, id);
        ctl_json_job_with(c, stdout, id, path, extra);
        putchar('\n');
        fflush(stdout);
        return EXIT_SUCCESS;
}

/* Reads all of fd into memory, for --json. */
static int read_fd(int fd, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, allocated = 0;

        for (;;) {
                ssize_t k;

                if (allocated - size < 65536) {
                        char *b = realloc(buf, allocated * 2 + 65536);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                        allocated = allocated * 2 + 65536;
                }
                k = read(fd, buf + size, allocated - size);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                size += (size_t) k;
        }
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

/* GetOutput, as procpoolctl read output before OpenOutput: for a bus that cannot pass fds (SSH) and for
 * a daemon that does not know OpenOutput. What one bus message carries, no more. */
static int output_from_message(Ctl *c, uint64_t id, const char *path) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(c->bus, ctl_destination(c), path, PROCPOOL_JOB_INTERFACE, "GetOutput", &error,
                               &reply, NULL);
        if (r < 0)
                return ctl_log_error(c, &error, r, "Failed to get the output of job %" PRIu64, id);
        if (c->json) {
                const void *data[2];
                size_t size[2];

                for (int i = 0; i < 2; i++) {
                        r = sd_bus_message_read_array(reply, 'y', &data[i], &size[i]);
                        if (r < 0)
                                return ctl_log_error(c, NULL, r, "Failed to read the reply of GetOutput");
                }
                return output_json(c, id, path, data, size);
        }
        r = ctl_write_byte_array(reply, STDOUT_FILENO);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to write the output of job %" PRIu64, id);
        r = ctl_write_byte_array(reply, STDERR_FILENO);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to write the output of job %" PRIu64, id);
        return EXIT_SUCCESS;
}

static void close_pair(int (*fds)[2]) {
        closep(&(*fds)[0]);
        closep(&(*fds)[1]);
}

int verb_output(Ctl *c, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(close_pair) int fds[2] = { -EBADF, -EBADF };
        _cleanup_free_ char *path = NULL;
        uint64_t id;
        int r;

        if (ctl_parse_job_ids(2, argv, 1, &id) != 0)
                return EXIT_USAGE;
        /* OpenOutput's fds: over the bus if a direct connection does not pass them. */
        r = ctl_connect_fds(c);
        if (r != 0)
                return r;
        r = ctl_job_path(c, id, &path);
        if (r != 0)
                return r;
        if (sd_bus_can_send(c->bus, SD_BUS_TYPE_UNIX_FD) <= 0) {
                if (!c->follow)
                        return output_from_message(c, id, path);
                fprintf(stderr, "This bus connection cannot pass file descriptors, which 'output --follow' "
                                "needs.\n");
                return EXIT_FAILED;
        }

        r = sd_bus_call_method(c->bus, ctl_destination(c), path, PROCPOOL_JOB_INTERFACE, "OpenOutput", &error,
                               &reply, NULL);
        if (r < 0 && !c->follow && sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_METHOD))
                return output_from_message(c, id, path); /* a daemon from before OpenOutput */
        if (r < 0)
                return ctl_log_error(c, &error, r, "Failed to get the output of job %" PRIu64, id);
        for (int i = 0; i < 2; i++) {
                int fd;

                r = sd_bus_message_read_basic(reply, 'h', &fd);
                if (r < 0)
                        return ctl_log_error(c, NULL, r, "Failed to read the reply of OpenOutput");
                /* The message owns the fds it carries: keep copies of our own. */
                fds[i] = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                if (fds[i] < 0)
                        return ctl_log_error(c, NULL, -errno, "Failed to get the output of job %" PRIu64, id);
        }
        reply = sd_bus_message_unref(reply);

        if (c->follow)
                return follow(c, id, path, fds);
        if (c->json) {
                _cleanup_free_ char *out = NULL, *err = NULL;
                size_t size[2];

                r = read_fd(fds[0], &out, &size[0]);
                if (r >= 0)
                        r = read_fd(fds[1], &err, &size[1]);
                if (r < 0)
                        return ctl_log_error(c, NULL, r, "Failed to read the output of job %" PRIu64, id);
                return output_json(c, id, path, (const void *const[]) { out, err }, size);
        }
        /* stdout first, then stderr: each stream is kept whole, their interleaving is not. */
        for (int i = 0; i < 2; i++) {
                Stream s = { .fd = fds[i], .out = i == 0 ? STDOUT_FILENO : STDERR_FILENO };

                r = stream_copy(&s);
                if (r < 0)
                        return ctl_log_error(c, NULL, r, "Failed to write the output of job %" PRIu64, id);
        }
        return EXIT_SUCCESS;
}
