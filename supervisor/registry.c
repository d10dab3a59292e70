/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The registry: every job of every pool by id (ids only grow, never reused), iteration, retention of
 * finished jobs, and the bound on job data held. */
#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "macro.h"
#include "pool-internal.h"
#include "registry-internal.h"

struct Registry {
        sd_event *event;
        RegistryConfig config;
        const RegistryCallbacks *callbacks;
        void *userdata;

        /* Jobs by id: slots[id - first_id], NULL where released. */
        Job **slots;
        size_t n_slots, allocated_slots;
        uint64_t first_id, next_id;
        size_t n_jobs;
        uint64_t held_bytes; /* sum of the jobs' held_cost */

        Job *finished_head, *finished_tail; /* oldest first */
        size_t n_finished;
        uint64_t n_finished_total;
        sd_event_source *retain_source;
};

static uint64_t now_monotonic(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

/* ---- jobs by id -------------------------------------------------------------------------------------- */

static int slots_add(Registry *r, Job *j) {
        if (r->n_slots == r->allocated_slots) {
                size_t a = r->allocated_slots ? r->allocated_slots * 2 : 64;
                Job **s = realloc(r->slots, a * sizeof(Job *));
                if (!s)
                        return -ENOMEM;
                r->slots = s;
                r->allocated_slots = a;
        }
        if (r->n_slots == 0)
                r->first_id = j->r.id;
        r->slots[j->r.id - r->first_id] = j;
        r->n_slots = j->r.id - r->first_id + 1;
        return 0;
}

static void slots_remove(Registry *r, Job *j) {
        size_t lead = 0;

        assert(registry_find(r, j->r.id) == j);
        r->slots[j->r.id - r->first_id] = NULL;
        /* Drop released slots from the front once they are half the table, so lookups stay O(1) and
         * the table stays proportional to the jobs held. */
        while (lead < r->n_slots && !r->slots[lead])
                lead++;
        if (lead == r->n_slots) {
                r->n_slots = 0;
                return;
        }
        if (lead > 0 && lead >= r->n_slots / 2) {
                memmove(r->slots, r->slots + lead, (r->n_slots - lead) * sizeof(Job *));
                r->n_slots -= lead;
                r->first_id += lead;
                if (r->allocated_slots > 256 && r->n_slots < r->allocated_slots / 4) {
                        Job **s = realloc(r->slots, r->allocated_slots / 2 * sizeof(Job *));
                        if (s) {
                                r->slots = s;
                                r->allocated_slots /= 2;
                        }
                }
        }
}

Job *registry_find(Registry *r, uint64_t id) {
        if (r->n_slots == 0 || id < r->first_id || id - r->first_id >= r->n_slots)
                return NULL;
        return r->slots[id - r->first_id];
}

int registry_foreach(Registry *r, int (*f)(Job *j, void *userdata), void *userdata) {
        /* By id, so a callback that releases the current job does not disturb the walk. */
        for (uint64_t id = r->first_id; r->n_slots > 0 && id < r->first_id + r->n_slots; id++) {
                Job *j = registry_find(r, id);
                int k;

                if (!j)
                        continue;
                k = f(j, userdata);
                if (k < 0)
                        return k;
        }
        return 0;
}

size_t registry_get_n_jobs(const Registry *r) {
        return r->n_jobs;
}

size_t registry_get_n_finished(const Registry *r) {
        return r->n_finished;
}

uint64_t registry_get_n_finished_total(const Registry *r) {
        return r->n_finished_total;
}

uint64_t registry_get_held_bytes(const Registry *r) {
        return r->held_bytes;
}

const RegistryConfig *registry_get_config(const Registry *r) {
        return &r->config;
}

bool registry_is_idle(const Registry *r, bool include_retained) {
        if (r->n_jobs > r->n_finished)
                return false;
        return !include_retained || r->n_jobs == 0;
}

int registry_add(Registry *r, Job *j, size_t cost) {
        int k;

        assert(j->r.id == 0);
        j->r.id = r->next_id;
        k = slots_add(r, j);
        if (k < 0) {
                j->r.id = 0;
                return k;
        }
        r->next_id++;
        r->n_jobs++;
        j->held_cost = cost;
        r->held_bytes += cost;
        return 0;
}

void registry_remove(Registry *r, Job *j) {
        assert(!job_state_is_final(j->r.state));
        slots_remove(r, j);
        r->n_jobs--;
        r->held_bytes -= j->held_cost;
}

/* ---- what the observer hears ----------------------------------------------------------------------- */

void registry_job_added(Registry *r, Job *j) {
        if (r->callbacks->job_added)
                r->callbacks->job_added(j, r->userdata);
}

void registry_job_changed(Registry *r, Job *j, JobChange what) {
        if (r->callbacks->job_changed)
                r->callbacks->job_changed(j, what, r->userdata);
}

void registry_counts_changed(Registry *r, Pool *p) {
        if (r->callbacks->counts_changed)
                r->callbacks->counts_changed(p, r->userdata);
}

void registry_check_idle(Registry *r) {
        if (r->n_jobs > 0)
                return;
        /* Everything is released: give what the jobs used back to the system, not just to malloc, the
         * table sized for the busiest moment included. */
        r->slots = mfree(r->slots);
        r->allocated_slots = r->n_slots = 0;
        (void) malloc_trim(0);
        if (r->callbacks->idle)
                r->callbacks->idle(r->userdata);
}

/* ---- retention --------------------------------------------------------------------------------------- */

static void retain_arm(Registry *r) {
        if (r->config.retain_usec == 0 || !r->finished_head) {
                (void) sd_event_source_set_enabled(r->retain_source, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(r->retain_source, r->finished_head->finished_monotonic + r->config.retain_usec);
        (void) sd_event_source_set_enabled(r->retain_source, SD_EVENT_ONESHOT);
}

static int on_retain_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Registry *r = userdata;
        uint64_t now = now_monotonic();

        while (r->finished_head && r->finished_head->finished_monotonic + r->config.retain_usec <= now)
                registry_release(r, r->finished_head);
        retain_arm(r);
        return 0;
}

void registry_job_finished(Registry *r, Job *j, JobChange what) {
        assert(job_state_is_final(j->r.state));
        assert(!j->finished_prev && !j->finished_next && r->finished_tail != j);

        j->finished_prev = r->finished_tail;
        if (r->finished_tail)
                r->finished_tail->finished_next = j;
        else
                r->finished_head = j;
        r->finished_tail = j;
        r->n_finished++;
        r->n_finished_total++;

        /* Finished first: waiting callers get their answer before observers get signals. */
        if (r->callbacks->job_finished)
                r->callbacks->job_finished(j, r->userdata);
        registry_job_changed(r, j, what);

        while (r->n_finished > r->config.retain && r->finished_head)
                registry_release(r, r->finished_head);
        retain_arm(r);
}

int registry_make_room(Registry *r, size_t cost) {
        if (r->config.max_held_bytes == 0)
                return 0;
        while (r->held_bytes + cost > r->config.max_held_bytes && r->finished_head)
                registry_release(r, r->finished_head);
        if (r->held_bytes + cost > r->config.max_held_bytes)
                return REGISTRY_ERROR_HELD_LIMIT;
        return 0;
}

/* Unlinks j and frees it, telling the observer first; does not check for idleness. */
static void registry_drop(Registry *r, Job *j) {
        if (r->callbacks->job_removed)
                r->callbacks->job_removed(j, r->userdata);
        if (job_state_is_final(j->r.state)) {
                if (j->finished_prev)
                        j->finished_prev->finished_next = j->finished_next;
                else
                        r->finished_head = j->finished_next;
                if (j->finished_next)
                        j->finished_next->finished_prev = j->finished_prev;
                else
                        r->finished_tail = j->finished_prev;
                r->n_finished--;
        }
        slots_remove(r, j);
        r->n_jobs--;
        r->held_bytes -= j->held_cost;
        pool_job_detach(j->pool, j);
        job_free(j);
}

void registry_release(Registry *r, Job *j) {
        assert(job_state_is_final(j->r.state));
        registry_drop(r, j);
        registry_check_idle(r);
}

/* ---- the registry ------------------------------------------------------------------------------------ */

int registry_new(sd_event *event, const RegistryConfig *config, const RegistryCallbacks *callbacks,
                 void *userdata, Registry **ret) {
        static const RegistryCallbacks no_callbacks = {};
        Registry *r;
        int k;

        r = calloc(1, sizeof(Registry));
        if (!r)
                return -ENOMEM;
        r->event = sd_event_ref(event);
        r->config = *config;
        r->callbacks = callbacks ?: &no_callbacks;
        r->userdata = userdata;
        r->next_id = 1;
        k = sd_event_add_time(event, &r->retain_source, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_SEC,
                              on_retain_timer, r);
        if (k < 0) {
                registry_free(r);
                return k;
        }
        (void) sd_event_source_set_enabled(r->retain_source, SD_EVENT_OFF);
        *ret = r;
        return 0;
}

static int abandon_one(Job *j, void *userdata) {
        Registry *r = userdata;
        Pool *p = j->pool;

        /* Nothing may be left running unwatched once the daemon lets go of it. */
        job_abandon(j);
        if (j->starting)
                p->n_starting--;
        else if (j->r.state == JOB_RUNNING)
                p->n_running--;
        registry_drop(r, j);
        return 0;
}

Registry *registry_free(Registry *r) {
        if (!r)
                return NULL;
        (void) registry_foreach(r, abandon_one, r);
        assert(r->n_jobs == 0);
        free(r->slots);
        sd_event_source_disable_unref(r->retain_source);
        sd_event_unref(r->event);
        free(r);
        return NULL;
}
