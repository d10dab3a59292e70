/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How much of the daemon's replies may wait at the bus for clients that do not read them (see
 * reply-bound.h): a count per client and in all, set right by the bus's own figures when it comes near a
 * bound, and the filter that holds method calls to it. */
#include <errno.h>
#include <inttypes.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "job-dbus.h"
#include "log.h"
#include "macro.h"
#include "reply-bound.h"

/* What one reply costs at least: its header, and a body of a few fields. */
#define REPLY_MIN 512ULL
/* A client with less than this waiting for it reads what it is sent: it may get a large reply. */
#define CAUGHT_UP (64ULL * 1024)
/* What a client over its bound may still be sent as refusals, and the daemon over its own: past that,
 * calls are taken and not answered (the bus answers them once the client leaves). */
#define CLIENT_REFUSALS_MAX (1024ULL * 1024)
#define GLOBAL_REFUSALS_MAX (4ULL * 1024 * 1024)
/* The daemon's own queue to the bus, in messages: past it, the bus does not take what the daemon writes
 * (it reads megabytes in a millisecond when it does), and calls are taken unanswered, so that the daemon's
 * memory does not grow with their replies. While it is stalled, the counts above grow with every reply
 * and the bus cannot be asked: they hold large replies back first. */
#define WQUEUE_MAX 16384U
/* The bus is asked at most this often for one client, and for the daemon: a client that floods calls
 * does not make the daemon flood the bus. */
#define STATS_INTERVAL_USEC (5ULL * 1000)
/* A question to the bus that is not answered in this time is given up: the count stays as it was, and
 * the bus is not asked anything again for a while (it does not read the daemon's connection). */
#define STATS_TIMEOUT_USEC (250ULL * 1000)
#define STATS_BACKOFF_USEC (2ULL * 1000000)

/* dbus-daemon's default max_incoming_bytes is 127 MiB (the session bus's configuration raises it to
 * 1 GB). The bounds keep what the daemon has waiting at the bus well below it: the bound in all, plus
 * the largest reply (two streams of MANAGER_STREAM_MAX), plus the refusals. */
#define CLIENT_MAX_SYSTEM (16ULL * 1024 * 1024)
#define GLOBAL_MAX_SYSTEM (48ULL * 1024 * 1024)
#define CLIENT_MAX_SESSION (64ULL * 1024 * 1024)
#define GLOBAL_MAX_SESSION (256ULL * 1024 * 1024)

typedef struct Peer {
        char *name;        /* unique bus name */
        uint64_t waiting;  /* bytes waiting for it at the bus: as the bus last said, plus what went since */
        uint64_t next_ask; /* when the bus may be asked again (CLOCK_MONOTONIC usec) */
        bool warned;       /* its calls are held back, and the log said so */
        bool refused_for_client; /* the last refusal was for what waits for it, not for the daemon */
} Peer;

struct ReplyBound {
        sd_bus *bus;
        bool stats; /* the bus answers org.freedesktop.DBus.Debug.Stats for the daemon */
        uint64_t client_max, global_max;
        void *peers;      /* tsearch() tree of Peer, by name */
        uint64_t waiting; /* the daemon's bytes waiting at the bus, as for a Peer */
        uint64_t next_ask;
        uint64_t silent_until; /* a question timed out: none before this */
        bool warned, warned_stalled;
};

static uint64_t now_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static int peer_compare(const void *a, const void *b) {
        return strcmp(((const Peer *) a)->name, ((const Peer *) b)->name);
}

static void peer_free(void *p) {
        Peer *peer = p;
        if (!peer)
                return;
        free(peer->name);
        free(peer);
}

static Peer *peer_get(ReplyBound *b, const char *name) {
        Peer key = { .name = (char *) name }, **found, *p;

        found = tfind(&key, &b->peers, peer_compare);
        if (found)
                return *found;
        p = calloc(1, sizeof(Peer));
        if (!p)
                return NULL;
        p->name = strdup(name);
        if (!p->name || !tsearch(p, &b->peers, peer_compare)) {
                peer_free(p);
                return NULL;
        }
        return p;
}

/* One figure of GetConnectionStats(name) (a uint32), from the bus, waiting for its answer. */
static int stats_get(ReplyBound *b, const char *name, const char *key, uint64_t *ret);

/* Asks the bus for *value, at most once per interval; *next_ask says when it may be asked again. */
static void stats_refresh(ReplyBound *b, const char *name, const char *key, uint64_t now, uint64_t *next_ask,
                          uint64_t *value) {
        uint64_t v;

        if (now < *next_ask || now < b->silent_until)
                return;
        if (stats_get(b, name, key, &v) < 0) {
                *next_ask = b->silent_until = now + STATS_BACKOFF_USEC;
                return;
        }
        *value = v;
        *next_ask = now + STATS_INTERVAL_USEC;
}

static int stats_get(ReplyBound *b, const char *name, const char *key, uint64_t *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_new_method_call(b->bus, &call, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                           "org.freedesktop.DBus.Debug.Stats", "GetConnectionStats");
        if (r < 0)
                return r;
        r = sd_bus_message_append(call, "s", name);
        if (r < 0)
                return r;
        r = sd_bus_call(b->bus, call, STATS_TIMEOUT_USEC, &error, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *k;
                uint32_t v;

                r = sd_bus_message_read_basic(reply, 's', &k);
                if (r < 0)
                        return r;
                if (strcmp(k, key) == 0) {
                        r = sd_bus_message_read(reply, "v", "u", &v);
                        if (r < 0)
                                return r;
                        *ret = v;
                        return 0;
                }
                r = sd_bus_message_skip(reply, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        return r < 0 ? r : -ENODATA;
}

int reply_bound_new(sd_bus *bus, BusKind kind, ReplyBound **ret) {
        ReplyBound *b = calloc(1, sizeof(ReplyBound));
        const char *me = NULL;
        uint64_t v;
        int r;

        if (!b)
                return -ENOMEM;
        b->bus = sd_bus_ref(bus);
        b->client_max = kind == BUS_USER ? CLIENT_MAX_SESSION : CLIENT_MAX_SYSTEM;
        b->global_max = kind == BUS_USER ? GLOBAL_MAX_SESSION : GLOBAL_MAX_SYSTEM;
        r = sd_bus_get_unique_name(bus, &me);
        if (r >= 0)
                r = stats_get(b, me, "IncomingBytes", &v);
        if (r >= 0) {
                b->stats = true;
                b->waiting = v;
        } else
                /* dbus-broker has no Debug.Stats, and disconnects a client whose queue overflows itself. */
                log_notice("The bus does not say how much it holds for each client "
                           "(org.freedesktop.DBus.Debug.Stats: %s): replies to clients that do not read them "
                           "are bounded by the bus alone",
                           strerror(-r));
        *ret = b;
        return 0;
}

ReplyBound *reply_bound_free(ReplyBound *b) {
        if (!b)
                return NULL;
        tdestroy(b->peers, peer_free);
        sd_bus_unref(b->bus);
        free(b);
        return NULL;
}

void reply_bound_forget(ReplyBound *b, const char *sender) {
        Peer key = { .name = (char *) sender }, **found;
        Peer *p;

        if (!b)
                return;
        found = tfind(&key, &b->peers, peer_compare);
        if (!found)
                return;
        p = *found;
        (void) tdelete(p, &b->peers, peer_compare);
        peer_free(p);
}

/* The daemon's own queue: a bus that stopped taking what the daemon writes. */
static ReplyVerdict check_stalled(ReplyBound *b) {
        uint64_t queued = 0;

        if (sd_bus_get_n_queued_write(b->bus, &queued) < 0)
                return REPLY_SEND;
        if (queued >= WQUEUE_MAX) {
                if (!b->warned_stalled)
                        log_warning("The bus has not taken %" PRIu64
                                    " messages procpoold wrote (it holds too "
                                    "much of them for clients that do not read): calls are taken unanswered "
                                    "until it does",
                                    queued);
                b->warned_stalled = true;
                return REPLY_DROP;
        }
        b->warned_stalled = false;
        return REPLY_SEND;
}

ReplyVerdict reply_bound_admit(ReplyBound *b, const char *sender, uint64_t size) {
        bool over_client, over_global;
        const char *me = NULL;
        ReplyVerdict v;
        uint64_t now;
        Peer *p;

        if (!b)
                return REPLY_SEND;
        v = check_stalled(b);
        if (v != REPLY_SEND || !b->stats || !sender)
                return v;
        p = peer_get(b, sender);
        if (!p)
                return REPLY_SEND; /* out of memory: no count, no bound */

        /* The counts only grow between questions: ask the bus before they hold anything back. */
        now = now_usec();
        if (p->waiting >= CAUGHT_UP &&
            (p->waiting + size > b->client_max || b->waiting + size > b->global_max))
                stats_refresh(b, p->name, "OutgoingBytes", now, &p->next_ask, &p->waiting);
        if (b->waiting + size > b->global_max && sd_bus_get_unique_name(b->bus, &me) >= 0)
                stats_refresh(b, me, "IncomingBytes", now, &b->next_ask, &b->waiting);

        /* One large reply may go to a client that reads what it is sent, whatever its size. */
        over_client = p->waiting >= CAUGHT_UP && p->waiting + size > b->client_max;
        over_global = b->waiting + size > b->global_max && (size >= REPLY_LARGE || p->waiting >= CAUGHT_UP);
        if (!over_client && !over_global) {
                p->waiting += size;
                b->waiting += size;
                /* Said once it has read most of it, not at every reply that fits again. */
                if (p->warned && p->waiting <= b->client_max / 2) {
                        log_info("Client %s reads its replies again", p->name);
                        p->warned = false;
                }
                if (b->warned && b->waiting <= b->global_max / 2)
                        b->warned = false;
                return REPLY_SEND;
        }
        if (over_client && !p->warned)
                log_warning("Client %s has %" PRIu64 " bytes of replies waiting at the bus that it does not "
                            "read; its calls are refused until it reads them",
                            p->name, p->waiting);
        if (!over_client && !b->warned)
                log_warning("%" PRIu64
                            " bytes of procpoold's messages wait at the bus for clients that do not "
                            "read them; large replies are refused until they do",
                            b->waiting);
        p->warned = p->warned || over_client;
        b->warned = b->warned || !over_client;
        p->refused_for_client = over_client; /* how refuse() words it */
        if (p->waiting >= b->client_max + CLIENT_REFUSALS_MAX ||
            b->waiting >= b->global_max + GLOBAL_REFUSALS_MAX)
                return REPLY_DROP;
        return REPLY_REFUSE;
}

int reply_bound_refuse(ReplyBound *b, const char *sender, sd_bus_error *error) {
        Peer key = { .name = (char *) sender }, **found = NULL;
        uint64_t waiting = 0;

        if (b && sender)
                found = tfind(&key, &b->peers, peer_compare);
        if (found) {
                waiting = (*found)->waiting;
                (*found)->waiting += REPLY_MIN;
        }
        if (b)
                b->waiting += REPLY_MIN;
        if (found && (*found)->refused_for_client)
                return sd_bus_error_setf(
                        error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                        "%" PRIu64 " bytes of replies to %s wait at the bus unread, more than "
                        "the %" PRIu64 " procpoold lets wait for one client; read them, then "
                        "call again",
                        waiting, sender, b->client_max);
        return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                 "procpoold holds back large replies: its messages waiting at the bus for "
                                 "clients that do not read them reach its bound; call again later, or use "
                                 "OpenOutput() for output");
}

/* ---- the filter ------------------------------------------------------------------------------------ */

static bool streq(const char *a, const char *b) {
        return a && b && strcmp(a, b) == 0;
}

/* What the properties of job j weigh in a reply: its strings and the rest. */
static uint64_t job_properties_size(Job *j) {
        const JobRecord *r = job_get_record(j);
        uint64_t size = 2048; /* the fixed properties, and an Error text, which is at most 1 KiB */

        for (char **a = r->spec.argv; a && *a; a++)
                size += strlen(*a) + 8;
        size += r->spec.label ? strlen(r->spec.label) : 0;
        size += r->spec.cwd ? strlen(r->spec.cwd) : 0;
        return size;
}

/* At most what the reply to a method call weighs: exact where the daemon knows it before it answers
 * (GetOutput), an upper bound from what it holds for what sd-bus answers itself. */
uint64_t reply_bound_reply_size(Manager *m, sd_bus_message *message) {
        const char *iface = sd_bus_message_get_interface(message),
                   *member = sd_bus_message_get_member(message), *path = sd_bus_message_get_path(message);
        uint64_t n = registry_get_n_jobs(m->registry);
        Job *j;

        if (!sd_bus_message_get_expect_reply(message))
                return 0;
        if (streq(iface, "org.freedesktop.DBus.ObjectManager") && streq(member, "GetManagedObjects"))
                return REPLY_MIN + registry_get_held_bytes(m->registry) + n * 1024;
        if (streq(iface, "org.freedesktop.DBus.Introspectable"))
                return 16 * 1024 + (streq(path, PROCPOOL_JOB_PATH_PREFIX) ? n * 48 : 0);
        if (streq(iface, "org.freedesktop.DBus.Properties")) {
                j = job_bus_find(m, path);
                return REPLY_MIN + (j ? job_properties_size(j) : 1024);
        }
        if (streq(iface, PROCPOOL_JOB_INTERFACE) && streq(member, "GetOutput")) {
                j = job_bus_find(m, path);
                if (!j)
                        return REPLY_MIN;
                return REPLY_MIN + job_get_record(j)->output[JOB_STDOUT].size +
                       job_get_record(j)->output[JOB_STDERR].size;
        }
        if (streq(iface, PROCPOOL_MANAGER_INTERFACE) && streq(member, "ListJobs"))
                return REPLY_MIN + n * 128;
        return REPLY_MIN;
}

int reply_bound_filter(sd_bus_message *message, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        Manager *m = userdata;
        const char *sender;
        uint8_t type = 0;

        if (sd_bus_message_get_type(message, &type) < 0 || type != SD_BUS_MESSAGE_METHOD_CALL)
                return 0;
        sender = sd_bus_message_get_sender(message);
        switch (reply_bound_admit(m->reply_bound, sender, reply_bound_reply_size(m, message))) {
        case REPLY_SEND:
                return 0;
        case REPLY_DROP:
                return 1; /* taken: no reply that the client would not read either */
        case REPLY_REFUSE:
                (void) reply_bound_refuse(m->reply_bound, sender, &error);
                (void) sd_bus_reply_method_error(message, &error);
                return 1;
        }
        return 0;
}
