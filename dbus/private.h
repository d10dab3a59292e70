/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The private socket: direct peer-to-peer D-Bus connections to the daemon, past the bus, as systemd's
 * /run/systemd/private. Each accepted connection is an sd-bus server connection that serves the same
 * objects as the bus (manager_serve_bus()), for a Client of its own, named "@direct-N", with the uid
 * and process of SO_PEERCRED. Signals reach it only once it called Supervisor1.Subscribe(). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>

typedef struct Manager Manager;
typedef struct PrivateSocket PrivateSocket;

/* Direct connections the daemon takes at most, in all and of one uid; more are closed at once. */
#define PRIVATE_CONNECTIONS_MAX_DEFAULT 256U
#define PRIVATE_CONNECTIONS_MAX_PER_USER_DEFAULT 32U
/* A peer that has not completed the D-Bus authentication within this time is disconnected. */
#define PRIVATE_AUTH_TIMEOUT_USEC (5ULL * 1000000ULL)
/* What the daemon lets wait unread for one peer, besides one reply of any size: past it (or past
 * PRIVATE_QUEUE_MAX_MESSAGES messages), while the peer still has not read, it is disconnected. */
#define PRIVATE_QUEUE_MAX_BYTES (16ULL * 1024 * 1024)
#define PRIVATE_QUEUE_MAX_MESSAGES 4096U
/* What one signal counts for in that bound: an upper bound for a job's properties. */
#define PRIVATE_SIGNAL_COST (4ULL * 1024)

/* Listens on path (mode 0666 on the system instance, else 0600), or on inherited_fd (a listening socket
 * the last image handed over on a re-exec) if it is one. */
int private_socket_new(Manager *m, const char *path, int inherited_fd, PrivateSocket **ret);
/* Closes every connection and the listening socket, and removes the socket file. */
PrivateSocket *private_socket_free(PrivateSocket *p);
/* The listening fd, for the next image on a re-exec (its file stays); accepted peers are not handed over. */
int private_socket_get_fd(const PrivateSocket *p);
const char *private_socket_get_path(const PrivateSocket *p);
/* Calls send(bus, userdata) for every connection that subscribed to signals; returns the first error. */
int private_socket_foreach_subscribed(PrivateSocket *p, int (*send)(sd_bus *bus, void *userdata),
                                      void *userdata);
/* Subscribe() and Unsubscribe() on bus; -ENXIO if bus is none of its connections. */
int private_socket_subscribe(PrivateSocket *p, sd_bus *bus, bool b);
/* Counts size bytes against the bound of what waits for bus's peer (nothing for another bus). */
void private_socket_charge(PrivateSocket *p, sd_bus *bus, uint64_t size);
/* Whether bus is one of the direct connections. */
bool private_socket_owns(PrivateSocket *p, sd_bus *bus);
/* The peer's process, as SO_PEERCRED and /proc said when it connected; false for another bus. */
bool private_socket_peer(PrivateSocket *p, sd_bus *bus, pid_t *ret_pid, uint64_t *ret_start_time,
                         uid_t *ret_uid);
unsigned private_socket_get_n_connections(const PrivateSocket *p);
/* Whether any connection has messages its peer has not taken yet. */
bool private_socket_has_queued(PrivateSocket *p);
/* Writes what is queued for each connection, blocking (manager_flush() bounds it in time); returns
 * -EINTR as soon as one write is interrupted. */
int private_socket_flush(PrivateSocket *p);
