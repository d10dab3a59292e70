/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How much of the daemon's replies may wait at the bus for clients that do not read them.
 *
 * dbus-daemon charges what it holds for a receiver to the sender's connection: once the messages of
 * procpoold that wait for readers pass the bus's max_incoming_bytes (127 MiB by default), dbus-daemon
 * stops reading procpoold's connection, and every client waits, as long as one of them does not read.
 * So the daemon bounds what it sends a client that has not read what it was sent before, and what it
 * has waiting at the bus in all; the bus itself says how much that is (org.freedesktop.DBus.Debug.Stats),
 * asked only when the daemon's own count comes near a bound. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "manager.h"

typedef struct ReplyBound ReplyBound;

typedef enum ReplyVerdict {
        REPLY_SEND,   /* send it: it is counted */
        REPLY_REFUSE, /* answer with LimitsExceeded instead (reply_bound_refuse()) */
        REPLY_DROP,   /* answer nothing: the client has not read even the refusals */
} ReplyVerdict;

/* A reply is large from this size on: past the daemon's bound, only large ones are held back from
 * clients that read. */
#define REPLY_LARGE (64ULL * 1024)

/* The bounds for the bus's kind; asks the bus whether it tells how much waits for whom. */
int reply_bound_new(sd_bus *bus, BusKind kind, ReplyBound **ret);
ReplyBound *reply_bound_free(ReplyBound *b);
/* Whether a reply of about size bytes may go to sender now; a sent one is counted. */
ReplyVerdict reply_bound_admit(ReplyBound *b, const char *sender, uint64_t size);
/* Fills error with the LimitsExceeded that a refused reply gets, and counts it. */
int reply_bound_refuse(ReplyBound *b, const char *sender, sd_bus_error *error);
/* The sender left the bus: what was counted for it goes. */
void reply_bound_forget(ReplyBound *b, const char *sender);
/* At most what the reply to message weighs. */
uint64_t reply_bound_reply_size(Manager *m, sd_bus_message *message);
/* The sd-bus filter that applies the bounds to every method call before it is dispatched, with the size
 * its reply will have at most; userdata is the Manager. */
int reply_bound_filter(sd_bus_message *message, void *userdata, sd_bus_error *error);
