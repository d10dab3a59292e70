/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Per-uid use of the pool (jobs queued and running, captured bytes held), against per-uid limits, and
 * the uid's place in the pool's scheduling. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct QuotaLimits {
        unsigned max_queued;  /* 0: no per-uid limit */
        unsigned max_running; /* 0: no per-uid limit */
        uint64_t max_output;  /* captured bytes held for one uid; 0: no limit */
        unsigned max_fds;     /* fds passed with one uid's queued jobs; 0: no limit */
} QuotaLimits;

typedef struct UserUsage UserUsage;
struct UserUsage {
        uid_t uid;
        unsigned n_jobs; /* jobs held, in any state: the record lives while this is above 0 */
        size_t n_queued;
        size_t n_waiting; /* queued, but waiting for dependencies or a time: not in the heap */
        unsigned n_running;
        unsigned n_fds; /* fds passed with its queued jobs, held until they start */
        uint64_t output_bytes;

        /* The pool's scheduling of the uid (pool.c). */
        struct Job **queue; /* binary heap of its queued jobs: higher priority first, then lower id */
        size_t allocated_queue;
        bool in_ring;                     /* it has startable jobs: it takes turns with other uids */
        UserUsage *ring_prev, *ring_next; /* in the pool's list of this round or of the next */
        uint64_t round;                   /* the round of its next turn */
};

/* The record of uid in *tree, or NULL where it has none. */
const UserUsage *quota_find(void *const *tree, uid_t uid);
/* The record of uid in *tree, made if there is none yet; takes a job reference. NULL on OOM. */
UserUsage *quota_ref(void **tree, uid_t uid);
/* Drops a job reference; frees the record with the last one. */
void quota_unref(void **tree, UserUsage *u);
/* Frees every record. */
void quota_free_all(void **tree);
/* How many more captured bytes u may hold. */
uint64_t quota_output_room(const UserUsage *u, const QuotaLimits *limits);
