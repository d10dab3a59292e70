/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The private socket (see private.h): listening, accepting within the caps, one sd-bus server connection
 * per peer, its Client, and the bounds of a peer that does not authenticate or does not read. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-id128.h>

#include "log.h"
#include "macro.h"
#include "manager.h"
#include "private.h"
#include "reply-bound.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

typedef struct DirectConnection DirectConnection;
struct DirectConnection {
        PrivateSocket *socket;
        sd_bus *bus;
        char *name; /* "@direct-N": its Client's name, and the bus's description */
        uid_t uid;
        pid_t pid;
        uint64_t start_time; /* the peer's start time (/proc/<pid>/stat), 0 if unknown */
        bool subscribed;
        bool ready;       /* authenticated, and what came with the end of the authentication processed */
        bool closing;     /* freed after this loop iteration */
        uint64_t queued;  /* what was sent to it since its queue was last empty, about */
        uint64_t largest; /* the largest reply of those: one reply of any size may wait */
        sd_event_source *auth_timer;
        sd_bus_slot *disconnected_slot;
        DirectConnection *prev, *next;
};

struct PrivateSocket {
        Manager *manager;
        char *path;
        int fd;
        sd_id128_t id;
        sd_event_source *listen_source;
        sd_event_source *retry_source; /* accept() ran out of fds: listening again later */
        sd_event_source *post_source;  /* checks queues and frees closed connections */
        DirectConnection *connections;
        unsigned n_connections;
        uint64_t n_accepted;
        bool warned_total;
        uid_t warned_uid; /* the last uid whose cap was logged; (uid_t) -1 for none */
};

static uint64_t read_start_time(pid_t pid) {
        char path[64], buf[1024];
        const char *p;
        ssize_t n;
        int fd;

        (void) snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        /* The command name may hold anything, ')' too: the fields start after the last one. */
        p = strrchr(buf, ')');
        if (!p)
                return 0;
        p++;
        /* Field 22 is starttime; the text after ')' starts with field 3. */
        for (int field = 3; field < 22; field++) {
                p = strchr(p + 1, ' ');
                if (!p)
                        return 0;
        }
        return strtoull(p + 1, NULL, 10);
}

/* The peer's start time, read for the pid SO_PEERCRED gave. With SO_PEERPIDFD, the pidfd is checked to
 * be alive after the read, so that what was read is the peer's and not a later process's of the same
 * pid (a pid reused in between). Without it, the time is that of whoever has the pid when it is read,
 * which is the peer as long as the peer has not exited (its connection is then open but nobody's). */
static uint64_t peer_start_time(int fd, pid_t pid) {
        socklen_t l = sizeof(int);
        uint64_t t;
        int pidfd = -EBADF;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &l) < 0)
                pidfd = -EBADF;
        t = read_start_time(pid);
        if (pidfd >= 0) {
                if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
                        t = 0; /* gone: the time read may be another process's */
                close(pidfd);
        }
        return t;
}

static DirectConnection *find(PrivateSocket *p, sd_bus *bus) {
        if (!p)
                return NULL;
        for (DirectConnection *c = p->connections; c; c = c->next)
                if (c->bus == bus)
                        return c;
        return NULL;
}

static void connection_close(DirectConnection *c) {
        if (c->closing)
                return;
        c->closing = true;
        /* Its requests waiting for polkit and its replies go; its jobs that asked to be cancelled when
         * their caller leaves are. */
        manager_client_left(c->socket->manager, c->name);
}

static DirectConnection *connection_free(DirectConnection *c) {
        PrivateSocket *p;

        if (!c)
                return NULL;
        p = c->socket;
        /* Not while the daemon is freed: its jobs are told nothing then, and the clients go with it. */
        if (!c->closing && !p->manager->freeing)
                manager_client_left(p->manager, c->name);
        if (c->prev)
                c->prev->next = c->next;
        else
                p->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        p->n_connections--;
        sd_event_source_disable_unref(c->auth_timer);
        sd_bus_slot_unref(c->disconnected_slot);
        if (c->bus) {
                (void) sd_bus_detach_event(c->bus);
                sd_bus_close_unref(c->bus);
        }
        free(c->name);
        free(c);
        return NULL;
}

static int on_disconnected(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        DirectConnection *c = userdata;

        log_debug("direct connection %s (uid %u) closed", c->name, (unsigned) c->uid);
        connection_close(c);
        return 0;
}

static int on_auth_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        DirectConnection *c = userdata;

        if (sd_bus_is_ready(c->bus) > 0)
                return 0;
        log_debug("direct connection %s (uid %u, pid %d) did not authenticate in time, closing", c->name,
                  (unsigned) c->uid, (int) c->pid);
        connection_close(c);
        return 0;
}

static void connection_charge(DirectConnection *c, uint64_t size) {
        c->queued += size;
        c->largest = MAX(c->largest, size);
}

/* Counts what each method call's reply will weigh against the bound of its peer. */
static int charge_filter(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        DirectConnection *c = userdata;

        if (sd_bus_message_is_method_call(message, NULL, NULL))
                connection_charge(c, reply_bound_reply_size(c->socket->manager, message));
        return 0;
}

/* Clients made for a bus (busctl --address, gdbus --address, GDBus with MESSAGE_BUS_CONNECTION) say Hello
 * first and may add match rules: they get a unique name of their own, and their rules are kept by
 * themselves (sd-bus and GDBus match signals locally as well); Subscribe() is what brings signals. */
static int method_hello(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        DirectConnection *c = userdata;
        char name[64];

        (void) snprintf(name, sizeof(name), ":direct.%s", c->name + strlen("@direct-"));
        return sd_bus_reply_method_return(message, "s", name);
}

static int method_noop(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return sd_bus_reply_method_return(message, NULL);
}

static const sd_bus_vtable driver_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Hello", "", "s", method_hello, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("AddMatch", "s", "", method_noop, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("RemoveMatch", "s", "", method_noop, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static unsigned count_uid(PrivateSocket *p, uid_t uid) {
        unsigned n = 0;

        for (DirectConnection *c = p->connections; c; c = c->next)
                n += !c->closing && c->uid == uid;
        return n;
}

static int connection_new(PrivateSocket *p, int fd, const struct ucred *ucred) {
        Manager *m = p->manager;
        DirectConnection *c;
        int r;

        c = calloc(1, sizeof(DirectConnection));
        if (!c) {
                close(fd);
                return -ENOMEM;
        }
        c->socket = p;
        c->uid = ucred->uid;
        c->pid = ucred->pid;
        c->start_time = peer_start_time(fd, ucred->pid);
        c->next = p->connections;
        if (p->connections)
                p->connections->prev = c;
        p->connections = c;
        p->n_connections++;

        if (asprintf(&c->name, "@direct-%" PRIu64, ++p->n_accepted) < 0) {
                c->name = NULL;
                close(fd);
                r = -ENOMEM;
                goto fail;
        }
        r = sd_bus_new(&c->bus);
        if (r < 0) {
                close(fd);
                goto fail;
        }
        r = sd_bus_set_fd(c->bus, fd, fd);
        if (r < 0) {
                close(fd);
                goto fail;
        }
        r = sd_bus_set_server(c->bus, 1, p->id);
        /* fds pass only for root and the daemon's own uid: sd-bus keeps the fds of a message it drops
         * as malformed open for good (the bus checks messages before they reach the daemon; a direct
         * peer's reach it as sent), so any other uid could fill the daemon's fd table. Others pass fds
         * over the bus. */
        if (r >= 0)
                r = sd_bus_negotiate_fds(c->bus, c->uid == 0 || c->uid == geteuid());
        if (r >= 0)
                r = sd_bus_set_description(c->bus, c->name);
        if (r >= 0)
                /* The daemon writes what waits for a peer only from the loop: never blocks on one. */
                r = sd_bus_set_close_on_exit(c->bus, false);
        if (r >= 0)
                r = manager_add_client(m, c->name, c->uid);
        if (r >= 0)
                r = sd_bus_start(c->bus);
        if (r >= 0)
                r = sd_bus_attach_event(c->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_bus_match_signal(c->bus, &c->disconnected_slot, NULL, "/org/freedesktop/DBus/Local",
                                        "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, c);
        if (r >= 0)
                r = sd_bus_add_filter(c->bus, NULL, charge_filter, c);
        if (r >= 0)
                r = manager_serve_bus(m, c->bus);
        if (r >= 0)
                r = sd_bus_add_object_vtable(c->bus, NULL, "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                             driver_vtable, c);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &c->auth_timer, CLOCK_MONOTONIC,
                                               PRIVATE_AUTH_TIMEOUT_USEC, 0, on_auth_timeout, c);
        if (r < 0)
                goto fail;
        log_debug("direct connection %s from uid %u, pid %d", c->name, (unsigned) c->uid, (int) c->pid);
        return 0;
fail:
        /* A peer that left before it was set up is no news (any local user could fill the log so). */
        if (r == -ECONNRESET || r == -EPIPE || r == -ENOTCONN)
                log_debug_errno(r, "Direct connection of uid %u left before it was set up: %m",
                                (unsigned) ucred->uid);
        else
                log_warning_errno(r, "Failed to set up a direct connection of uid %u: %m, closing it",
                                  (unsigned) ucred->uid);
        connection_free(c);
        return r;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        PrivateSocket *p = userdata;

        p->retry_source = sd_event_source_disable_unref(p->retry_source);
        return sd_event_source_set_enabled(p->listen_source, SD_EVENT_ON);
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        PrivateSocket *p = userdata;
        Manager *m = p->manager;
        struct ucred ucred = {};
        socklen_t l = sizeof(ucred);
        int cfd;

        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
                if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                        return 0;
                log_warning_errno(errno,
                                  "Failed to accept a direct connection: %m; not accepting for a second");
                /* Out of fds, most likely: the pending peer would wake the loop at once, again and again. */
                (void) sd_event_source_set_enabled(p->listen_source, SD_EVENT_OFF);
                if (!p->retry_source)
                        (void) sd_event_add_time_relative(m->event, &p->retry_source, CLOCK_MONOTONIC,
                                                          USEC_PER_SEC, 0, on_retry, p);
                return 0;
        }
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &ucred, &l) < 0) {
                log_warning_errno(errno, "Failed to learn who connected to %s: %m, closing", p->path);
                close(cfd);
                return 0;
        }
        if (p->n_connections >= m->config.private_max_connections) {
                if (!p->warned_total)
                        log_warning("%u direct connections are open, the most procpoold takes "
                                    "(--max-direct-connections); refusing more until some close",
                                    p->n_connections);
                p->warned_total = true;
                close(cfd);
                return 0;
        }
        p->warned_total = false;
        if (count_uid(p, ucred.uid) >= m->config.private_max_connections_per_user) {
                if (p->warned_uid != ucred.uid)
                        log_warning("uid %u has %u direct connections open, the most it may "
                                    "(--max-direct-connections-per-user); refusing more until some close",
                                    (unsigned) ucred.uid, m->config.private_max_connections_per_user);
                p->warned_uid = ucred.uid;
                close(cfd);
                return 0;
        }
        if (p->warned_uid == ucred.uid)
                p->warned_uid = (uid_t) -1;
        (void) connection_new(p, cfd, &ucred);
        return 0;
}

/* What on_post() looks at in an open connection: what came with the end of its authentication, and the
 * bound of what waits unread for it. Either may close it. */
static void connection_check(DirectConnection *c) {
        uint64_t n = 0;

        if (!c->ready && sd_bus_is_ready(c->bus) > 0) {
                int r;

                /* What a client sent right after BEGIN was read with it and waits in sd-bus's buffer, not
                 * in the socket, which may stay quiet: process it now. */
                c->ready = true;
                c->auth_timer = sd_event_source_disable_unref(c->auth_timer);
                while ((r = sd_bus_process(c->bus, NULL)) > 0)
                        ;
                if (r < 0) {
                        connection_close(c);
                        return;
                }
                /* The peer's end of the stream may have come with it too: then it is closing now. */
                if (c->closing)
                        return;
        }
        if (sd_bus_get_n_queued_write(c->bus, &n) < 0 || n == 0) {
                c->queued = c->largest = 0;
                return;
        }
        /* One reply of any size may wait while the peer reads it, beside what the bound allows (a
         * subscriber's signals, say): a reply larger than the bound, a large Communicate's, is not counted
         * against it. Smaller ones are, so that a peer that reads none of them is still found out at the
         * bound. */
        uint64_t exempt = c->largest > PRIVATE_QUEUE_MAX_BYTES ? c->largest : 0;
        if (n <= 1 || (c->queued - exempt <= PRIVATE_QUEUE_MAX_BYTES && n <= PRIVATE_QUEUE_MAX_MESSAGES))
                return;
        log_warning("Direct connection %s of uid %u (pid %d) does not read what it is sent (%" PRIu64
                    " messages, about %" PRIu64 " bytes waiting); disconnecting it",
                    c->name, (unsigned) c->uid, (int) c->pid, n, c->queued);
        connection_close(c);
}

/* After each loop iteration: a peer whose unread messages pass the bound is disconnected, and closed
 * connections are freed (not within their own dispatch). What closes here is freed in the same pass: a
 * post source runs only after another source, and nothing else may come for a long time (the peer that
 * left with its authentication, or stopped reading, wakes the loop no more), while the connection holds
 * its fd, what waits for it and a place under the caps. */
static int on_post(sd_event_source *s, void *userdata) {
        PrivateSocket *p = userdata;

        for (DirectConnection *c = p->connections, *next; c; c = next) {
                next = c->next;
                if (!c->closing)
                        connection_check(c);
                if (c->closing)
                        connection_free(c);
        }
        return 0;
}

static int listen_path(const char *path, mode_t mode, int *ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_free_ char *dir = NULL;
        char *slash;
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = '\0';
                /* Everyone reaches a system instance's socket; the dir of a user's is in its runtime dir. */
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return -errno;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* A file left by a daemon that did not exit cleanly. */
        (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || chmod(path, mode) < 0 ||
            listen(fd, SOMAXCONN) < 0) {
                int r = -errno;
                close(fd);
                (void) unlink(path);
                return r;
        }
        *ret = fd;
        return 0;
}

static bool is_listening_socket(int fd) {
        int v = 0;
        socklen_t l = sizeof(v);

        return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) >= 0 && v;
}

int private_socket_new(Manager *m, const char *path, int inherited_fd, PrivateSocket **ret) {
        PrivateSocket *p;
        int r;

        p = calloc(1, sizeof(PrivateSocket));
        if (!p) {
                closep(&inherited_fd);
                return -ENOMEM;
        }
        p->manager = m;
        p->fd = -EBADF;
        p->warned_uid = (uid_t) -1;
        p->path = strdup(path);
        if (!p->path) {
                closep(&inherited_fd);
                r = -ENOMEM;
                goto fail;
        }
        r = sd_id128_randomize(&p->id);
        if (r < 0) {
                closep(&inherited_fd);
                goto fail;
        }
        if (inherited_fd >= 0 && is_listening_socket(inherited_fd)) {
                /* Handed over by the last image: the peers that connected meanwhile wait in its backlog. */
                p->fd = inherited_fd;
                (void) fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK);
        } else {
                closep(&inherited_fd);
                r = listen_path(path, m->config.system_policy ? 0666 : 0600, &p->fd);
                if (r < 0)
                        goto fail;
        }
        r = sd_event_add_io(m->event, &p->listen_source, p->fd, EPOLLIN, on_accept, p);
        if (r < 0)
                goto fail;
        r = sd_event_add_post(m->event, &p->post_source, on_post, p);
        if (r < 0)
                goto fail;
        *ret = p;
        return 0;
fail:
        private_socket_free(p);
        return r;
}

PrivateSocket *private_socket_free(PrivateSocket *p) {
        if (!p)
                return NULL;
        while (p->connections)
                connection_free(p->connections);
        sd_event_source_disable_unref(p->listen_source);
        sd_event_source_disable_unref(p->retry_source);
        sd_event_source_disable_unref(p->post_source);
        if (p->fd >= 0) {
                close(p->fd);
                (void) unlink(p->path);
        }
        free(p->path);
        free(p);
        return NULL;
}

int private_socket_get_fd(const PrivateSocket *p) {
        return p ? p->fd : -EBADF;
}

const char *private_socket_get_path(const PrivateSocket *p) {
        return p ? p->path : NULL;
}

int private_socket_foreach_subscribed(PrivateSocket *p, int (*send)(sd_bus *bus, void *userdata),
                                      void *userdata) {
        int ret = 0;

        if (!p)
                return 0;
        for (DirectConnection *c = p->connections; c; c = c->next) {
                int r;

                if (!c->subscribed || c->closing)
                        continue;
                c->queued += PRIVATE_SIGNAL_COST;
                r = send(c->bus, userdata);
                if (r < 0 && ret >= 0)
                        ret = r;
        }
        return ret;
}

int private_socket_subscribe(PrivateSocket *p, sd_bus *bus, bool b) {
        DirectConnection *c = find(p, bus);

        if (!c)
                return -ENXIO;
        c->subscribed = b;
        return 0;
}

void private_socket_charge(PrivateSocket *p, sd_bus *bus, uint64_t size) {
        DirectConnection *c = find(p, bus);

        if (c)
                connection_charge(c, size);
}

bool private_socket_owns(PrivateSocket *p, sd_bus *bus) {
        return find(p, bus) != NULL;
}

bool private_socket_peer(PrivateSocket *p, sd_bus *bus, pid_t *ret_pid, uint64_t *ret_start_time,
                         uid_t *ret_uid) {
        DirectConnection *c = find(p, bus);

        if (!c)
                return false;
        *ret_pid = c->pid;
        *ret_start_time = c->start_time;
        *ret_uid = c->uid;
        return true;
}

bool private_socket_has_queued(PrivateSocket *p) {
        for (DirectConnection *c = p ? p->connections : NULL; c; c = c->next) {
                uint64_t n = 0;

                if (!c->closing && sd_bus_get_n_queued_write(c->bus, &n) >= 0 && n > 0)
                        return true;
        }
        return false;
}

int private_socket_flush(PrivateSocket *p) {
        for (DirectConnection *c = p ? p->connections : NULL; c; c = c->next) {
                uint64_t n = 0;
                int r;

                if (c->closing || sd_bus_get_n_queued_write(c->bus, &n) < 0 || n == 0)
                        continue;
                r = sd_bus_flush(c->bus);
                if (r == -EINTR)
                        return r;
        }
        return 0;
}

unsigned private_socket_get_n_connections(const PrivateSocket *p) {
        return p ? p->n_connections : 0;
}
