/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The registry: every job of every pool by id (ids only grow, never reused), iteration, retention of
 * finished jobs, and the bound on job data held. The layer above hears of jobs through its callbacks. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "job.h"
#include "serialize.h"
#include "spool.h"
#include "store.h"

typedef struct Registry Registry;

/* How the layer above (the bus) hears about jobs. Every member may be NULL. */
typedef struct RegistryCallbacks {
        void (*job_added)(Job *j, void *userdata);
        void (*job_changed)(Job *j, JobChange what, void *userdata);
        /* The job reached a final state; it stays until released. */
        void (*job_finished)(Job *j, void *userdata);
        /* The job is about to be freed; release its job_get_userdata() here. */
        void (*job_removed)(Job *j, void *userdata);
        /* A pool's running or queued count changed. */
        void (*counts_changed)(Pool *p, void *userdata);
        /* No job is queued, running or retained. */
        void (*idle)(void *userdata);
        /* Writing to the store failed with error (what it said is in message); it is tried again. */
        void (*store_failed)(int error, const char *message, void *userdata);
} RegistryCallbacks;

typedef struct RegistryConfig {
        unsigned retain;      /* finished jobs kept at most per uid; REGISTRY_RETAIN_UIDS times it in all */
        uint64_t retain_usec; /* finished jobs are released this long after they end; 0: forever */
        uint64_t max_held_bytes;          /* job data held (argv, labels, a fixed share each); 0: no bound */
        uint64_t max_held_bytes_per_user; /* of it, by the jobs of one uid; 0: no per-uid bound */
} RegistryConfig;

#define REGISTRY_RETAIN_DEFAULT 1000U
/* The finished jobs kept in all are at most this many times `retain`: a cap on what many uids together
 * make the daemon hold and list, which one uid's jobs alone never reach. */
#define REGISTRY_RETAIN_UIDS 16U
#define REGISTRY_RETAIN_USEC_DEFAULT (10ULL * 60ULL * 1000000ULL)
/* What a job is counted as holding beyond its argv and label: its properties as a bus message lists
 * them (names, path, state, times, error text). */
#define REGISTRY_JOB_FIXED_COST 1024U
/* The jobs held take max_held_bytes already, with every finished one that may go released. */
#define REGISTRY_ERROR_HELD_LIMIT (-E2BIG)
/* The submitter's jobs take max_held_bytes_per_user already, with every finished one of them released. */
#define REGISTRY_ERROR_USER_HELD_LIMIT (-ENOBUFS)
/* Each uid's share of the held-data bound: three quarters. A uid's whole queue quota of short jobs
 * (16384 of about 1 KiB) and its retained jobs fit in three quarters of the smallest bound (24 MiB), so a
 * lone uid may do what it could without the share; the quarter left is room no single uid can take from
 * the others (6 MiB: 6000 short jobs, or 6 of 900 KiB argv). */
#define REGISTRY_HELD_PER_USER(max_held_bytes) ((max_held_bytes) / 4 * 3)

/* A registry whose jobs capture their output into spool, which it takes over. */
int registry_new(sd_event *event, const RegistryConfig *config, Spool *spool,
                 const RegistryCallbacks *callbacks, void *userdata, Registry **ret);
/* Frees every job, killing what still runs of them (job_removed is called for each), then the
 * registry. The pools must still exist. */
Registry *registry_free(Registry *r);

/* Writes every job through store from now on (taken over); jobs are written in batches, at the end of
 * a loop iteration and before jobs start. */
void registry_set_store(Registry *r, Store *store);
/* Reads the jobs back from the store into the registry, each into pool_for(its pool's name), and the next
 * id. A job that was running, or that cannot run as it was asked any more, is held as it was: see
 * registry_coldplug(). */
int registry_load(Registry *r, Pool *(*pool_for)(const char *name, void *userdata), void *userdata);
/* Ends what the last run of the daemon left unfinished: a job that was running ends failed (the daemon
 * stopped while it ran), a job whose caller is gone ends cancelled; the observer hears of each. Jobs
 * taken over by registry_deserialize() are attached to the event loop instead and run on. */
void registry_coldplug(Registry *r);
/* Calls done(j, 0) once j is stored, or done(j, error) when the store refused it, after which the
 * registry forgets j (job_removed is called). Without a store, calls done(j, 0) at once. */
int registry_await_stored(Registry *r, Job *j, void (*done)(Job *j, int error, void *userdata),
                          void *userdata);
/* As registry_await_stored(), once for the jobs first_id to first_id + n - 1 (a batch, added together):
 * done(0) once all of them are stored, in one commit, or done(error) once, when the store refused them,
 * after which the registry forgets every one of them that is still queued. */
int registry_await_stored_many(Registry *r, uint64_t first_id, uint64_t n,
                               void (*done)(int error, void *userdata), void *userdata);
/* Writes what changed now; returns 0, or the store's error (the changes are kept and tried again). */
int registry_flush(Registry *r);

/* Writes, for the daemon's next image after a re-exec, every unfinished job (see job_serialize()) and what
 * the registry counts. The store must be flushed first: the next image reads the records back from it. */
int registry_serialize(Registry *r, Serializer *s);
/* Reads back what registry_serialize() wrote, once registry_load() read the store: each job it names is
 * taken over (running on, or queued with its fds and input) instead of ending stale in
 * registry_coldplug(). Items it does not know go to item(), if given. Goes on past a job it cannot take
 * over; returns the first error. */
int registry_deserialize(Registry *r, Deserializer *d,
                         int (*item)(const SerializedItem *item, void *userdata), void *userdata);

Job *registry_find(Registry *r, uint64_t id);
/* Calls f for every job in id order; stops early and returns f's result if it is negative. f may
 * release the job it is given. */
int registry_foreach(Registry *r, int (*f)(Job *j, void *userdata), void *userdata);
size_t registry_get_n_jobs(const Registry *r);
/* How many of the jobs j waits for ("after") have not ended yet; their ids into ret_ids (room for
 * spec.n_after), if given. */
unsigned registry_waiting_for(Registry *r, const Job *j, uint64_t *ret_ids);
/* The id the next job will get. */
uint64_t registry_get_next_id(const Registry *r);
/* Finished jobs held now, and jobs that ever finished. */
size_t registry_get_n_finished(const Registry *r);
uint64_t registry_get_n_finished_total(const Registry *r);
uint64_t registry_get_held_bytes(const Registry *r);
/* What the jobs of uid hold, of max_held_bytes_per_user. */
uint64_t registry_get_user_held_bytes(Registry *r, uid_t uid);
const RegistryConfig *registry_get_config(const Registry *r);
Spool *registry_get_spool(const Registry *r);
/* True when no job is queued or running (and, with include_retained, no finished job is held). */
bool registry_is_idle(const Registry *r, bool include_retained);
