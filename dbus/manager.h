/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's context: the bus, the event loop, the registry, the pool and the clients. Started as
 * logind is: manager_new() allocates, manager_startup() connects and serves, manager_run() loops. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "authz.h"
#include "macro.h"
#include "pool.h"
#include "registry.h"
#include "serialize.h"

typedef enum BusKind {
        BUS_USER,
        BUS_SYSTEM,
        BUS_ADDRESS,
        /* No bus: only the private socket serves, and the caller runs the loop (manager_run() needs a
         * bus). For tests/fuzz/fuzz-private.c, which drives the daemon in its own process; main() never
         * sets it. Signals go to subscribed direct connections only: set BUS_SIGNALS_SUBSCRIBED. */
        BUS_NONE,
} BusKind;

/* Which signals go on the bus (--bus-signals=): to every match rule as ever, or only while a bus client
 * has called Subscribe(), as systemd's Manager does. Direct connections subscribe each on their own. */
typedef enum BusSignals {
        BUS_SIGNALS_ALWAYS,
        BUS_SIGNALS_SUBSCRIBED,
        _BUS_SIGNALS_MAX,
} BusSignals;

typedef struct ManagerConfig {
        BusKind bus_kind; /* where to connect */
        const char *address;
        bool system_policy; /* --system: jobs run as their callers, polkit decides who may do what, and
                             * a job's private properties are its readers' alone (also on a bus given by
                             * --address) */
        RegistryConfig registry;
        PoolConfig pool;
        uint64_t exit_on_idle_usec; /* 0: never */
        const char *state_dir;      /* NULL: the default for the bus (manager_default_state_dir()) */
        bool ephemeral;             /* no store: nothing outlives the daemon */
        StoreSync sync;
        const char *private_socket; /* the private socket's path; NULL: none */
        unsigned private_max_connections, private_max_connections_per_user;
        BusSignals bus_signals;
        char **argv;        /* the command line, given again to the next image on a re-exec */
        int deserialize_fd; /* --deserialize: what the last image handed over, or -EBADF */
} ManagerConfig;

typedef struct Client Client;
typedef struct ReplyBound ReplyBound;
typedef struct PrivateSocket PrivateSocket;

/* The most one captured stream may hold: GetOutput and Communicate replies carry two streams, and a
 * D-Bus message is at most 128 MiB (the system bus's dbus-daemon takes 32 MiB). */
#define MANAGER_STREAM_MAX_SESSION (60ULL * 1024 * 1024)
#define MANAGER_STREAM_MAX_SYSTEM (15ULL * 1024 * 1024)
uint64_t manager_stream_max(BusKind kind);
/* The most job data the daemon holds, so that GetManagedObjects fits in one message on the bus. */
#define MANAGER_HELD_MAX_SESSION (100ULL * 1024 * 1024)
#define MANAGER_HELD_MAX_SYSTEM (24ULL * 1024 * 1024)
uint64_t manager_held_max(BusKind kind);
/* The longest the daemon waits for the bus to take what it wrote, when it exits or re-executes: a bus that
 * holds too much of it for clients that do not read must not hold the daemon. */
#define MANAGER_FLUSH_USEC (5ULL * 1000000ULL)

/* Signals the queue holds at most (manager_queue_signal()): each is a few hundred bytes. */
#define MANAGER_SIGNALS_MAX 1024U

/* A pool and what its bus object last said of its counts. */
typedef struct ManagerPool {
        Pool *pool;
        Executor *executor; /* the pool's own (a Slurm pool's), freed after it; NULL: it shares m->executor */
        unsigned last_running, last_queued;
} ManagerPool;

/* The longest partition name a Slurm pool takes (Pool setting "partition"). */
#define MANAGER_PARTITION_MAX 64U

/* Pools a daemon holds at most, "default" included. */
#define MANAGER_POOLS_MAX 256U

typedef struct Manager {
        ManagerConfig config;
        sd_event *event;
        sd_bus *bus;
        Registry *registry; /* every job, by id */
        char *state_dir;    /* the job store and the spool, or the private spool when ephemeral */
        int state_lock_fd;  /* held while the daemon uses the state dir */
        Executor *executor; /* the local executor, which every local pool shares */
        ManagerPool *pools; /* by creation; pools[0] is the pool "default" */
        size_t n_pools;
        Pool *pool;    /* pools[0].pool: "default", whose size PoolSize is */
        void *clients; /* tsearch() tree of Client, by unique name */
        Authz *authz;  /* who may do what */
        sd_bus_slot *filter_slot;

        /* What may wait at the bus for clients that do not read. */
        ReplyBound *reply_bound;
        /* Direct connections (private.h), NULL without the private socket. */
        PrivateSocket *private;
        int private_inherited_fd;   /* the listening socket the last image handed over, or -EBADF */
        Deserializer *deserializer; /* while take_over() reads what the last image handed over */
        /* The bus clients that called Subscribe() (once per call) and have not called Unsubscribe() nor
         * left the bus; with BUS_SIGNALS_SUBSCRIBED, signals go on the bus only while there is one. */
        sd_bus_track *subscribed;

        /* Job signals built and waiting to be sent once the loop has nothing more urgent to do (see
         * manager_queue_signal()), in the order they were built. */
        sd_bus_message **signals;
        size_t n_signals, n_signals_allocated;
        sd_event_source *signal_source;
        sd_bus *dispatch_bus;   /* the connection whose message was dispatched last (a reference) */
        bool queue_in_dispatch; /* the request being handled is answered later (manager_reply_later()) */
        sd_event_source *counts_source; /* coalesces Running/Queued PropertiesChanged */
        sd_event_source *status_source; /* rate-limits STATUS= */
        sd_event_source *idle_source;
        unsigned last_running, last_queued;
        bool shutting_down;
        bool under_systemd; /* log job lines to the journal */
        bool took_over;     /* started by a re-exec: its clients are checked once the bus is watched */
        bool freeing;
        bool job_cgroups;      /* each job runs in a cgroup of its own (Supervisor1.JobCgroups) */
        bool cgroups_unusable; /* the unit asks for delegation, which the daemon cannot use */
} Manager;

/* Where the job store lives unless --state-dir says: $STATE_DIRECTORY, else /var/lib/procpool for the
 * system instance, else $XDG_STATE_HOME/procpool (~/.local/state/procpool). */
int manager_default_state_dir(bool system, char **ret);

/* Allocates the manager and its event loop. */
int manager_new(const ManagerConfig *config, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);
/* Opens the state dir and the job store, connects to the bus, sets up cgroups, the executor and the pool,
 * reads the jobs back, serves the objects, takes the bus name, ends what the last run left unfinished
 * and tells systemd it is ready. Logs what failed. */
int manager_startup(Manager *m);
/* Runs the event loop until the daemon stops; returns 0 or a negative errno. */
int manager_run(Manager *m);
/* Writes what is queued for the bus, for at most MANAGER_FLUSH_USEC; -EINTR if the bus did not take it
 * all by then. */
int manager_flush(Manager *m);

/* The uid and connection record of a method call's sender, looked up once per connection. */
int manager_get_client(Manager *m, sd_bus_message *message, Client **ret);
uid_t client_uid(const Client *c);
/* Who sent message: its unique bus name, or the name of the direct connection it came on ("@direct-N",
 * which a bus name never is); NULL if neither. Every per-client record is keyed by it. */
const char *manager_message_sender(sd_bus_message *message);
/* A client known by its connection rather than by the bus (a direct connection), of uid. */
int manager_add_client(Manager *m, const char *name, uid_t uid);
/* The client called name left (its bus name went, its direct connection closed): its requests waiting for
 * polkit and its replies go, and its jobs that asked for it are cancelled. */
void manager_client_left(Manager *m, const char *name);
/* Serves every object, filter and method of the daemon on bus: the bus, or a direct connection. */
int manager_serve_bus(Manager *m, sd_bus *bus);
/* Sends a signal: send(bus, userdata) builds and sends it on the bus, then on every direct connection
 * that subscribed (a message is built for one connection and cannot be sent on another). Returns the
 * first error. */
int manager_emit(Manager *m, int (*send)(sd_bus *bus, void *userdata), void *userdata);
/* As manager_emit(), but build(bus, userdata, &message) only builds the message, which may wait in the
 * daemon's signal queue until the loop is idle: a job is spawned before its signals go out, and a caller
 * on the private socket is answered before the bus hears of the job's end. What a client sees on its
 * own connection keeps its order:
 *   - a signal made while a request is handled goes out at once (after the queue), before the request's
 *     reply, unless the handler said its reply comes later (manager_reply_later());
 *   - before a connection's next message is dispatched, and before a reply that comes later is sent on
 *     it (manager_flush_signals_for()), the signals queued for it go out;
 *   - manager_emit() sends the queue first.
 * At most MANAGER_SIGNALS_MAX wait; the one past that sends them all. */
int manager_queue_signal(Manager *m, int (*build)(sd_bus *bus, void *userdata, sd_bus_message **ret),
                         void *userdata);
/* Sends the queued signals for bus now (NULL: every one), in order. */
void manager_flush_signals_for(Manager *m, sd_bus *bus);
static inline void manager_flush_signals(Manager *m) {
        manager_flush_signals_for(m, NULL);
}
/* Called by a handler whose reply is sent later (Call, Communicate): the signals it makes may wait in
 * the queue (b), until it is done (!b). */
void manager_reply_later(Manager *m, bool b);
/* Subscribe() (b) or Unsubscribe() of the sender of message on the bus. */
int manager_subscribe(Manager *m, sd_bus_message *message, bool b);

/* Writes what the next image needs to carry on after a re-exec into s (see serialize.h): every unfinished
 * job with its runtime, and who submitted it. The store must be flushed first. */
int manager_serialize(Manager *m, Serializer *s);
/* Answers every waiting caller with org.procpool.Error.Interrupted, tells systemd it reloads and
 * re-executes the daemon's binary with what s holds; the same process, so running jobs stay its
 * children. Returns only if execve() failed, after which the daemon carries on as it was. */
int manager_reexecute(Manager *m, Serializer *s);

/* The pool called name, or NULL. */
Pool *manager_find_pool(Manager *m, const char *name);
/* Whether settings may make a pool (CreatePool's executor, slurm-conf and partition): -EINVAL if not,
 * with a sentence that names the setting in *ret_why. */
int manager_check_pool_settings(const PoolExecutorSettings *settings, char **ret_why);
/* The executor a pool of settings (checked) runs its jobs on: NULL in *ret for the local one every local
 * pool shares, else one of the pool's own. A Slurm pool whose *size is 0 gets the cluster's CPUs there
 * (sinfo: this blocks for up to a few seconds). On failure, a sentence in *ret_why. */
int manager_pool_executor_new(Manager *m, const PoolExecutorSettings *settings, unsigned *size,
                              Executor **ret, char **ret_why);
/* A new pool called name of size slots (0: the default), not yet stored, running its jobs on executor
 * (taken over, also on failure; NULL: the shared local one), with settings (NULL: local) kept for the
 * store; -EEXIST if there is one, -E2BIG past MANAGER_POOLS_MAX. */
int manager_add_pool(Manager *m, const char *name, unsigned size, const PoolExecutorSettings *settings,
                     Executor *executor, Pool **ret);
/* Removes a pool that holds no unfinished job; its finished ones stay, counted in "default". */
void manager_remove_pool(Manager *m, Pool *p);
/* Jobs running and queued in all pools. */
unsigned manager_running(const Manager *m);
unsigned manager_queued(const Manager *m);

/* Begins a graceful stop: no new jobs, running ones stopped, waiting callers answered. */
void manager_begin_shutdown(Manager *m);
