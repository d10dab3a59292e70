/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who may do what, decided in one place. On the system instance polkit is asked with CheckAuthorization,
 * asynchronously, for the subject system-bus-name of the caller, so that polkitd learns who it is from
 * the bus and never from us. A request waits for the answer as its message: when the answer comes the
 * message is queued for dispatch again (sd_bus_enqueue_for_read()), goes through the same handler, and
 * finds the answer here. That is one path for methods, property setters and reads alike (sd-bus answers a
 * property access in one go, so its getters and setters cannot wait for anything), and a handler never
 * acts on state that was true only before the wait. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authz.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "private.h"
#include "procpool-api.h"

#define POLKIT_BUS_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_INTERFACE "org.freedesktop.PolicyKit1.Authority"
/* CheckAuthorization's flag: polkit may ask the user through an authentication agent. */
#define POLKIT_ALLOW_USER_INTERACTION 1U

typedef enum AuthzAnswer {
        ANSWER_PENDING,   /* polkit is asked */
        ANSWER_YES,       /* authorized */
        ANSWER_NO,        /* not authorized, and authenticating would not change that */
        ANSWER_CHALLENGE, /* not authorized unless the caller authenticates */
        ANSWER_FAILED,    /* polkit could not be asked or failed: no */
        ANSWER_GONE,      /* the caller left before the answer was used: no */
} AuthzAnswer;

typedef struct AuthzQuery AuthzQuery;
struct AuthzQuery {
        Authz *authz;
        sd_bus_message *message; /* the request, held until it is dispatched again */
        char *sender;
        uid_t uid;
        bool direct;         /* from a direct connection: polkit is asked about its process */
        pid_t pid;           /* the peer's, as SO_PEERCRED said */
        uint64_t start_time; /* and its start time */
        AuthzAction action;
        bool read;        /* authz_check_read(): never interactive, a no is no error */
        bool interactive; /* polkit may ask the user */
        AuthzAnswer answer;
        char *failure; /* ANSWER_FAILED: why */
        char *cancellation_id;
        sd_bus_slot *slot; /* the CheckAuthorization call while it is out */
        bool dispatched;   /* the request came by again: the answer goes once the loop is idle */
        AuthzQuery *prev, *next;
};

struct Authz {
        Manager *manager;
        AuthzQuery *queries;
        sd_event_source *sweep_source; /* forgets the answers of requests that were dispatched again */
        uint64_t n_asked;              /* for cancellation ids */
};

static const char *const action_ids[_AUTHZ_ACTION_MAX] = {
        [AUTHZ_RUN] = PROCPOOL_ACTION_RUN,
        [AUTHZ_RUN_AS] = PROCPOOL_ACTION_RUN_AS,
        [AUTHZ_MANAGE] = PROCPOOL_ACTION_MANAGE,
};

/* What the action allows, for error messages: "uid 1001 is not allowed to <this>". */
static const char *const action_texts[_AUTHZ_ACTION_MAX] = {
        [AUTHZ_RUN] = "run jobs through procpoold",
        [AUTHZ_RUN_AS] = "run jobs as another user",
        [AUTHZ_MANAGE] = "manage procpoold and other users' jobs",
};

const char *authz_action_id(AuthzAction action) {
        assert(action >= 0 && action < _AUTHZ_ACTION_MAX);
        return action_ids[action];
}

static AuthzQuery *query_free(AuthzQuery *q) {
        if (!q)
                return NULL;
        if (q->prev)
                q->prev->next = q->next;
        else
                q->authz->queries = q->next;
        if (q->next)
                q->next->prev = q->prev;
        sd_bus_slot_unref(q->slot);
        sd_bus_message_unref(q->message);
        free(q->sender);
        free(q->failure);
        free(q->cancellation_id);
        free(q);
        return NULL;
}

static int on_sweep(sd_event_source *s, void *userdata) {
        Authz *a = userdata;

        for (AuthzQuery *q = a->queries, *next; q; q = next) {
                next = q->next;
                if (q->dispatched)
                        query_free(q);
        }
        return 0;
}

int authz_new(Manager *m, Authz **ret) {
        Authz *a = calloc(1, sizeof(Authz));
        int r;

        if (!a)
                return -ENOMEM;
        a->manager = m;
        r = sd_event_add_defer(m->event, &a->sweep_source, on_sweep, a);
        if (r < 0) {
                free(a);
                return r;
        }
        (void) sd_event_source_set_enabled(a->sweep_source, SD_EVENT_OFF);
        *ret = a;
        return 0;
}

Authz *authz_free(Authz *a) {
        if (!a)
                return NULL;
        while (a->queries)
                query_free(a->queries);
        sd_event_source_disable_unref(a->sweep_source);
        free(a);
        return NULL;
}

static AuthzQuery *query_find(Authz *a, sd_bus_message *message, AuthzAction action, bool read) {
        for (AuthzQuery *q = a->queries; q; q = q->next)
                if (q->message == message && q->action == action && q->read == read)
                        return q;
        return NULL;
}

static unsigned count_pending(Authz *a, uid_t uid) {
        unsigned n = 0;

        for (AuthzQuery *q = a->queries; q; q = q->next)
                n += q->answer == ANSWER_PENDING && q->uid == uid;
        return n;
}

void authz_dispatching(Authz *a, sd_bus_message *message) {
        bool any = false;

        for (AuthzQuery *q = a->queries; q; q = q->next)
                if (q->message == message && q->answer != ANSWER_PENDING) {
                        q->dispatched = true;
                        any = true;
                }
        /* The handler runs right after this, within the same dispatch: the sweep comes after it. */
        if (any)
                (void) sd_event_source_set_enabled(a->sweep_source, SD_EVENT_ONESHOT);
}

/* Asks polkitd to drop the dialog of an interactive check nobody waits for any more. */
static void cancel_interactive(Authz *a, AuthzQuery *q) {
        if (!q->interactive || !q->cancellation_id)
                return;
        (void) sd_bus_call_method_async(a->manager->bus, NULL, POLKIT_BUS_NAME, POLKIT_PATH, POLKIT_INTERFACE,
                                        "CancelCheckAuthorization", NULL, NULL, "s", q->cancellation_id);
}

void authz_name_gone(Authz *a, const char *name) {
        for (AuthzQuery *q = a->queries, *next; q; q = next) {
                next = q->next;
                if (strcmp(q->sender, name) != 0)
                        continue;
                if (q->answer == ANSWER_PENDING) {
                        /* Its answer will never be used: nothing it asked for starts. */
                        cancel_interactive(a, q);
                        query_free(q);
                } else
                        /* Queued for dispatch already: it comes by once more and is refused. */
                        q->answer = ANSWER_GONE;
        }
}

static int set_failure(AuthzQuery *q, const char *text) {
        free(q->failure);
        q->failure = strdup(text ?: "unknown error");
        q->answer = ANSWER_FAILED;
        return q->failure ? 0 : -ENOMEM;
}

/* Reads CheckAuthorization's (bba{ss}): authorized, challenge, details. */
static int read_result(AuthzQuery *q, sd_bus_message *reply) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        int authorized, challenge, r;

        if (e)
                return set_failure(q, e->message ?: e->name);
        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0)
                return set_failure(q, "its answer could not be read");
        q->answer = authorized ? ANSWER_YES : challenge ? ANSWER_CHALLENGE : ANSWER_NO;
        return 0;
}

static int on_check_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        AuthzQuery *q = userdata;
        /* The connection the request came on: the bus, or a direct connection. */
        sd_bus *bus = sd_bus_message_get_bus(q->message);
        int r;

        q->slot = sd_bus_slot_unref(q->slot);
        r = read_result(q, reply);
        if (r < 0) {
                (void) set_failure(q, "out of memory");
                q->answer = ANSWER_FAILED;
        }
        /* The request again, from its start, through the handler that asked: it finds the answer. */
        r = sd_bus_message_rewind(q->message, true);
        if (r >= 0)
                r = sd_bus_enqueue_for_read(bus, q->message);
        if (r < 0) {
                log_warning_errno(r,
                                  "Failed to dispatch the request of %s again after polkit answered: %m, "
                                  "refusing it",
                                  q->sender);
                (void) sd_bus_reply_method_errorf(q->message, SD_BUS_ERROR_ACCESS_DENIED,
                                                  "Failed to take up the request after polkit answered: %s",
                                                  strerror(-r));
                query_free(q);
        }
        return 0;
}

/* Sends CheckAuthorization for q, with the subject system-bus-name of its sender. */
static int query_send(Authz *a, AuthzQuery *q) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        sd_bus *bus = a->manager->bus;
        int r;

        if (q->interactive && asprintf(&q->cancellation_id, "procpool-%" PRIu64, ++a->n_asked) < 0)
                return -ENOMEM;
        r = sd_bus_message_new_method_call(bus, &call, POLKIT_BUS_NAME, POLKIT_PATH, POLKIT_INTERFACE,
                                           "CheckAuthorization");
        if (r < 0)
                return r;
        if (q->direct)
                /* A peer of the private socket has no bus name: the process that connected, by its pid
                 * and start time (never a bare pid, which may be reused), with its uid from SO_PEERCRED. */
                r = sd_bus_message_append(call, "(sa{sv})", "unix-process", 3, "pid", "u", (uint32_t) q->pid,
                                          "start-time", "t", q->start_time, "uid", "i", (int32_t) q->uid);
        else
                r = sd_bus_message_append(call, "(sa{sv})", "system-bus-name", 1, "name", "s", q->sender);
        if (r < 0)
                return r;
        r = sd_bus_message_append(call, "sa{ss}us", action_ids[q->action], 0,
                                  q->interactive ? POLKIT_ALLOW_USER_INTERACTION : 0U,
                                  q->cancellation_id ?: "");
        if (r < 0)
                return r;
        return sd_bus_call_async(bus, &q->slot, call, on_check_reply, q,
                                 q->interactive ? AUTHZ_INTERACTIVE_TIMEOUT_USEC : AUTHZ_TIMEOUT_USEC);
}

/* The answer q holds, for the request that asked: 1 yes, or negative with error set. */
static int query_answer(AuthzQuery *q, sd_bus_error *error) {
        const char *id = action_ids[q->action], *text = action_texts[q->action];
        unsigned uid = (unsigned) q->uid;

        switch (q->answer) {
        case ANSWER_YES:
                return 1;
        case ANSWER_NO:
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "uid %u is not allowed to %s (polkit action %s)", uid, text, id);
        case ANSWER_CHALLENGE:
                if (!q->interactive)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                                 "uid %u must authenticate to %s (polkit action %s); call "
                                                 "with interactive authorization allowed, with an "
                                                 "authentication agent running",
                                                 uid, text, id);
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "uid %u is not allowed to %s (polkit action %s): it must "
                                         "authenticate, and no authentication succeeded",
                                         uid, text, id);
        case ANSWER_FAILED:
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Failed to ask polkit whether uid %u may %s (polkit action %s): %s; "
                                         "without its answer only root may",
                                         uid, text, id, q->failure ?: "unknown error");
        case ANSWER_GONE:
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                        "The caller left the bus before polkit answered");
        default:
                assert(!"a pending query has no answer");
                return -EINVAL;
        }
}

static int check(Authz *a, sd_bus_message *message, AuthzAction action, bool read, sd_bus_error *error) {
        Manager *m = a->manager;
        const char *sender = manager_message_sender(message);
        AuthzQuery *q;
        Client *c;
        uid_t uid;
        int r;

        assert(action >= 0 && action < _AUTHZ_ACTION_MAX);

        /* Who asks comes from the bus (its credentials of the connection), never from the message. */
        r = manager_get_client(m, message, &c);
        if (r < 0)
                return r;
        uid = client_uid(c);
        if (uid == 0)
                return 1;
        if (!m->config.system_policy) {
                /* A session instance (or one on a bus given by address without --system) runs every job as
                 * its own uid: anyone else could run commands as it. */
                if (uid == geteuid())
                        return 1;
                if (read)
                        return -EACCES;
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "This procpoold runs as uid %u and serves it alone (it is not the "
                                         "system instance, procpoold --system): only uid %u and root may %s",
                                         (unsigned) geteuid(), (unsigned) geteuid(), action_texts[action]);
        }

        q = query_find(a, message, action, read);
        if (q && q->answer != ANSWER_PENDING) {
                r = query_answer(q, read ? NULL : error);
                return read && r < 0 ? -EACCES : r;
        }
        if (q) /* dispatched again while polkit is still asked: not done by sd-bus, but keep waiting */
                return 0;

        if (count_pending(a, uid) >= AUTHZ_PENDING_MAX_PER_UID) {
                if (read)
                        return -EACCES;
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "uid %u has %u requests waiting for polkit's answer already; wait "
                                         "for them",
                                         (unsigned) uid, AUTHZ_PENDING_MAX_PER_UID);
        }

        q = calloc(1, sizeof(AuthzQuery));
        if (!q)
                return -ENOMEM;
        *q = (AuthzQuery) {
                .authz = a,
                .message = sd_bus_message_ref(message),
                .sender = strdup(sender),
                .uid = uid,
                .action = action,
                .read = read,
                .interactive = !read && sd_bus_message_get_allow_interactive_authorization(message) > 0,
                .next = a->queries,
        };
        if (a->queries)
                a->queries->prev = q;
        a->queries = q;
        if (!q->sender) {
                query_free(q);
                return -ENOMEM;
        }
        if (sd_bus_message_get_bus(message) != m->bus) {
                uid_t peer_uid;

                q->direct = private_socket_peer(m->private, sd_bus_message_get_bus(message), &q->pid,
                                                &q->start_time, &peer_uid);
                if (!q->direct || q->start_time == 0) {
                        /* Without its start time, polkit would be asked about a bare pid: no. */
                        query_free(q);
                        if (read)
                                return -EACCES;
                        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "Failed to identify the process of uid %u on the private "
                                                 "socket (it may have exited), so polkit cannot be asked; "
                                                 "use the bus",
                                                 (unsigned) uid);
                }
        }
        r = query_send(a, q);
        if (r < 0) {
                /* Fail closed: no answer is a no. */
                log_warning_errno(r, "Failed to ask polkit about %s for uid %u: %m", action_ids[action],
                                  (unsigned) uid);
                query_free(q);
                if (read)
                        return -EACCES;
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Failed to ask polkit whether uid %u may %s (polkit action %s): %s; "
                                         "without its answer only root may",
                                         (unsigned) uid, action_texts[action], action_ids[action],
                                         strerror(-r));
        }
        return 0;
}

int authz_check(Authz *a, sd_bus_message *message, AuthzAction action, sd_bus_error *error) {
        return check(a, message, action, false, error);
}

int authz_check_read(Authz *a, sd_bus_message *message) {
        return check(a, message, AUTHZ_MANAGE, true, NULL);
}

bool authz_allowed(Authz *a, sd_bus_message *message, AuthzAction action) {
        Manager *m = a->manager;
        AuthzQuery *q;
        Client *c;

        if (!message || manager_get_client(m, message, &c) < 0)
                return false;
        if (client_uid(c) == 0)
                return true;
        if (!m->config.system_policy)
                return client_uid(c) == geteuid();
        for (q = a->queries; q; q = q->next)
                if (q->message == message && q->action == action && q->answer == ANSWER_YES)
                        return true;
        return false;
}
