/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who may do what, decided in one place: root at once; on a session instance (or --address without
 * --system) the daemon's own uid and nobody else; on the system instance whoever polkit allows, asked
 * asynchronously for the caller's bus name. */
#pragma once

#include <stdbool.h>

#include <systemd/sd-bus.h>

typedef struct Manager Manager;
typedef struct Authz Authz;

/* The polkit actions of data/org.procpool.policy. */
typedef enum AuthzAction {
        AUTHZ_RUN,    /* org.procpool.run: run a job as oneself */
        AUTHZ_RUN_AS, /* org.procpool.run-as: run a job as another user */
        AUTHZ_MANAGE, /* org.procpool.manage: PoolSize, Reexecute, other users' jobs */
        _AUTHZ_ACTION_MAX,
} AuthzAction;

/* The most requests of one uid that may wait for polkit's answer at once: each holds its message (and the
 * fds it carries) meanwhile. More get LimitsExceeded. */
#define AUTHZ_PENDING_MAX_PER_UID 16U
/* How long polkit may take to answer; one that asks the user through an agent may take longer. */
#define AUTHZ_TIMEOUT_USEC (25ULL * 1000000ULL)
#define AUTHZ_INTERACTIVE_TIMEOUT_USEC (120ULL * 1000000ULL)

/* The action's polkit id, "org.procpool.run" etc. */
const char *authz_action_id(AuthzAction action);

int authz_new(Manager *m, Authz **ret);
Authz *authz_free(Authz *a);

/* Whether message's sender may do action. 1: yes. Negative: no, and error says why (AccessDenied,
 * InteractiveAuthorizationRequired, LimitsExceeded). 0: polkit was asked; the caller must send no reply
 * and return 1 from its handler: message is dispatched again once polkit has answered, and this call
 * then gives the answer. Honours the message's allow-interactive-authorization flag. A sender that
 * leaves the bus before the answer has its message dropped: nothing it asked for is done. */
int authz_check(Authz *a, sd_bus_message *message, AuthzAction action, sd_bus_error *error);
/* As authz_check() for org.procpool.manage, to read what others may not: never interactive, and a no is
 * -EACCES without an error (the caller shows less rather than fails). */
int authz_check_read(Authz *a, sd_bus_message *message);
/* Whether an answer already given for message (by authz_check() or authz_check_read() while it was
 * dispatched, or at once) allows action; never asks polkit. For getters, which cannot wait. */
bool authz_allowed(Authz *a, sd_bus_message *message, AuthzAction action);

/* Called for every message before sd-bus dispatches it: marks one that comes again with polkit's
 * answer, so that the answer is forgotten once it has been dispatched. */
void authz_dispatching(Authz *a, sd_bus_message *message);
/* The unique name left the bus: its requests waiting for polkit are dropped unanswered. */
void authz_name_gone(Authz *a, const char *name);
