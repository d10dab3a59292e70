/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The registry: every job of every pool by id (ids only grow, never reused), iteration, retention of
 * finished jobs, and the bound on job data held. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "macro.h"
#include "pool-internal.h"
#include "registry-internal.h"

/* What the jobs of one uid hold, against its share of the bounds. */
typedef struct RegistryUser {
        uid_t uid;
        size_t n_jobs; /* jobs held, in any state: the record lives while this is above 0 */
        uint64_t held_bytes;
        Job *finished_head, *finished_tail; /* its finished jobs, oldest first */
        size_t n_finished;
} RegistryUser;

struct Registry {
        sd_event *event;
        RegistryConfig config;
        const RegistryCallbacks *callbacks;
        void *userdata;
        Spool *spool;

        /* Jobs by id: slots[id - first_id], NULL where released. */
        Job **slots;
        size_t n_slots, allocated_slots;
        uint64_t first_id, next_id;
        size_t n_jobs;
        uint64_t held_bytes; /* sum of the jobs' held_cost */
        void *users;         /* tsearch() tree of RegistryUser, by uid */

        Job *finished_head, *finished_tail; /* oldest first */
        size_t n_finished;
        uint64_t n_finished_total;
        sd_event_source *retain_source;

        /* Write-behind to the store: what changed since the last commit, and who waits for it. */
        Store *store;
        uint64_t *dirty, *deleted; /* job ids */
        size_t n_dirty, allocated_dirty, n_deleted, allocated_deleted;
        struct Ack {
                uint64_t id;
                uint64_t n; /* jobs id to id + n - 1, which done_many hears of as one */
                void (*done)(Job *j, int error, void *userdata);
                void (*done_many)(int error, void *userdata);
                void *userdata;
        } * acks;
        size_t n_acks, allocated_acks;
        struct PoolChange {
                char name[POOL_NAME_MAX + 1];
                unsigned size;
                bool paused, removed;
                Pool *pool; /* its executor settings, which never change; NULL once removed */
        } * pool_changes;
        size_t n_pool_changes, allocated_pool_changes;
        uint64_t stored_next_id;
        sd_event_source *flush_source; /* at the end of a loop iteration */
        sd_event_source *retry_source; /* after a failed commit */

        /* Queued jobs that may not start yet: waiting for jobs of "after", or for a time. */
        Job *waiting_head;
        size_t n_waiting;
        sd_event_source *wait_check_source; /* looks at them again: a job ended, or one was added */
        sd_event_source *wait_timer_source; /* CLOCK_REALTIME: the earliest time one waits for */
        bool flushing;                      /* in registry_flush(), whose callbacks may release jobs */
};

/* Commits wait for at most this many callers before they are forced: a client that floods requests must
 * not hold back everyone's acknowledgement. */
#define REGISTRY_ACKS_MAX 256
#define REGISTRY_RETRY_USEC (1ULL * USEC_PER_SEC)

static uint64_t now_clock(clockid_t clock) {
        struct timespec ts;
        (void) clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static uint64_t now_monotonic(void) {
        return now_clock(CLOCK_MONOTONIC);
}

static uint64_t now_realtime(void) {
        return now_clock(CLOCK_REALTIME);
}

/* ---- what each uid holds ------------------------------------------------------------------------------ */

static int user_compare(const void *a, const void *b) {
        uid_t x = ((const RegistryUser *) a)->uid, y = ((const RegistryUser *) b)->uid;
        return x < y ? -1 : x > y;
}

static RegistryUser *user_find(Registry *r, uid_t uid) {
        RegistryUser key = { .uid = uid }, **found = tfind(&key, &r->users, user_compare);
        return found ? *found : NULL;
}

/* Counts j, which holds cost bytes, against its owner: the registry holds it from now on. */
static int registry_hold(Registry *r, Job *j, size_t cost) {
        uid_t uid = j->r.spec.owner;
        RegistryUser *u = user_find(r, uid);

        assert(!j->holder);
        if (!u) {
                u = calloc(1, sizeof(RegistryUser));
                if (!u)
                        return -ENOMEM;
                u->uid = uid;
                if (!tsearch(u, &r->users, user_compare)) {
                        free(u);
                        return -ENOMEM;
                }
        }
        u->n_jobs++;
        u->held_bytes += cost;
        j->holder = u;
        j->held_cost = cost;
        r->held_bytes += cost;
        return 0;
}

static void registry_unhold(Registry *r, Job *j) {
        RegistryUser *u = TAKE_PTR(j->holder);

        assert(u && u->n_jobs > 0 && !j->user_finished_prev && !j->user_finished_next &&
               u->finished_head != j);
        r->held_bytes -= j->held_cost;
        u->held_bytes -= j->held_cost;
        if (--u->n_jobs > 0)
                return;
        (void) tdelete(u, &r->users, user_compare);
        free(u);
}

/* Appends the finished job j to the finished lists, of all and of its owner. */
static void finished_append(Registry *r, Job *j) {
        RegistryUser *u = j->holder;

        j->finished_prev = r->finished_tail;
        if (r->finished_tail)
                r->finished_tail->finished_next = j;
        else
                r->finished_head = j;
        r->finished_tail = j;
        r->n_finished++;

        j->user_finished_prev = u->finished_tail;
        if (u->finished_tail)
                u->finished_tail->user_finished_next = j;
        else
                u->finished_head = j;
        u->finished_tail = j;
        u->n_finished++;
}

static void finished_unlink(Registry *r, Job *j) {
        RegistryUser *u = j->holder;

        if (j->finished_prev)
                j->finished_prev->finished_next = j->finished_next;
        else
                r->finished_head = j->finished_next;
        if (j->finished_next)
                j->finished_next->finished_prev = j->finished_prev;
        else
                r->finished_tail = j->finished_prev;
        j->finished_prev = j->finished_next = NULL;
        r->n_finished--;

        if (j->user_finished_prev)
                j->user_finished_prev->user_finished_next = j->user_finished_next;
        else
                u->finished_head = j->user_finished_next;
        if (j->user_finished_next)
                j->user_finished_next->user_finished_prev = j->user_finished_prev;
        else
                u->finished_tail = j->user_finished_prev;
        j->user_finished_prev = j->user_finished_next = NULL;
        u->n_finished--;
}

uint64_t registry_get_user_held_bytes(Registry *r, uid_t uid) {
        RegistryUser *u = user_find(r, uid);
        return u ? u->held_bytes : 0;
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

uint64_t registry_get_next_id(const Registry *r) {
        return r->next_id;
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

Spool *registry_get_spool(const Registry *r) {
        return r->spool;
}

bool registry_is_idle(const Registry *r, bool include_retained) {
        if (r->n_jobs > r->n_finished)
                return false;
        return !include_retained || r->n_jobs == 0;
}

int registry_add(Registry *r, Job *j, size_t cost) {
        int k;

        assert(j->r.id == 0);
        k = registry_hold(r, j, cost);
        if (k < 0)
                return k;
        j->r.id = r->next_id;
        k = slots_add(r, j);
        if (k < 0) {
                j->r.id = 0;
                registry_unhold(r, j);
                return k;
        }
        r->next_id++;
        r->n_jobs++;
        registry_job_dirty(r, j);
        return 0;
}

void registry_remove(Registry *r, Job *j) {
        assert(!job_state_is_final(j->r.state));
        slots_remove(r, j);
        r->n_jobs--;
        registry_unhold(r, j);
}

/* ---- the store ----------------------------------------------------------------------------------- */

static int grow(void **array, size_t *allocated, size_t n, size_t size) {
        size_t a;
        void *l;

        if (n < *allocated)
                return 0;
        a = *allocated ? *allocated * 2 : 64;
        l = realloc(*array, a * size);
        if (!l)
                return -ENOMEM;
        *array = l;
        *allocated = a;
        return 0;
}

static void flush_arm(Registry *r) {
        if (r->store)
                (void) sd_event_source_set_enabled(r->flush_source, SD_EVENT_ONESHOT);
}

/* Marks j to be written with the next commit; arm: make that commit happen (else it goes with whichever
 * comes next). */
static void job_dirty(Registry *r, Job *j, bool arm) {
        if (!r->store)
                return;
        if (j->store_dirty && !j->store_lazy)
                return; /* its commit is armed already */
        if (!j->store_dirty) {
                /* Out of memory, the job is written with the next one that fits: mark nothing, lose
                 * nothing acknowledged (its insert is held by its ack). */
                if (grow((void **) &r->dirty, &r->allocated_dirty, r->n_dirty, sizeof(uint64_t)) < 0)
                        return;
                r->dirty[r->n_dirty++] = j->r.id;
                j->store_dirty = true;
        }
        j->store_lazy = !arm;
        if (arm)
                flush_arm(r);
}

void registry_job_dirty(Registry *r, Job *j) {
        job_dirty(r, j, true);
}

static void registry_job_deleted(Registry *r, uint64_t id) {
        if (!r->store)
                return;
        if (grow((void **) &r->deleted, &r->allocated_deleted, r->n_deleted, sizeof(uint64_t)) < 0)
                return; /* the row stays; registry_load() of a released job just shows it again */
        r->deleted[r->n_deleted++] = id;
        flush_arm(r);
}

static void pool_change(Registry *r, Pool *p, const char *name, unsigned size, bool paused, bool removed) {
        struct PoolChange *c = NULL;

        if (!r->store)
                return;
        for (size_t i = 0; i < r->n_pool_changes; i++)
                if (strcmp(r->pool_changes[i].name, name) == 0)
                        c = &r->pool_changes[i];
        if (!c) {
                if (grow((void **) &r->pool_changes, &r->allocated_pool_changes, r->n_pool_changes,
                         sizeof(struct PoolChange)) < 0)
                        return; /* the last stored settings are read back */
                c = &r->pool_changes[r->n_pool_changes++];
                snprintf(c->name, sizeof(c->name), "%s", name);
        }
        c->size = size;
        c->paused = paused;
        c->removed = removed;
        c->pool = p;
        flush_arm(r);
}

void registry_pool_changed(Registry *r, Pool *p) {
        pool_change(r, p, pool_get_name(p), pool_get_size(p), pool_get_paused(p), false);
}

void registry_pool_removed(Registry *r, const char *name) {
        pool_change(r, NULL, name, 0, false, true);
}

int registry_await_stored(Registry *r, Job *j, void (*done)(Job *j, int error, void *userdata),
                          void *userdata) {
        if (!r->store) {
                done(j, 0, userdata);
                return 0;
        }
        if (grow((void **) &r->acks, &r->allocated_acks, r->n_acks, sizeof(struct Ack)) < 0)
                return -ENOMEM;
        r->acks[r->n_acks++] = (struct Ack) { .id = j->r.id, .n = 1, .done = done, .userdata = userdata };
        if (r->n_acks >= REGISTRY_ACKS_MAX)
                (void) registry_flush(r);
        else
                flush_arm(r);
        return 0;
}

int registry_await_stored_many(Registry *r, uint64_t first_id, uint64_t n,
                               void (*done)(int error, void *userdata), void *userdata) {
        assert(n > 0 && first_id + n <= r->next_id);

        if (!r->store) {
                done(0, userdata);
                return 0;
        }
        if (grow((void **) &r->acks, &r->allocated_acks, r->n_acks, sizeof(struct Ack)) < 0)
                return -ENOMEM;
        r->acks[r->n_acks++] =
                (struct Ack) { .id = first_id, .n = n, .done_many = done, .userdata = userdata };
        /* One ack however many jobs: the commit that holds their inserts is the one that answers. */
        if (r->n_acks >= REGISTRY_ACKS_MAX)
                (void) registry_flush(r);
        else
                flush_arm(r);
        return 0;
}

static void registry_drop(Registry *r, Job *j);
static void retain_arm(Registry *r);

static int store_write(Registry *r) {
        int k;

        k = store_begin(r->store);
        if (k < 0)
                return k;
        for (size_t i = 0; i < r->n_dirty; i++) {
                Job *j = registry_find(r, r->dirty[i]);
                JobRecord rec;

                if (!j || !j->store_dirty)
                        continue;
                rec = j->r;
                /* Stored as running before it is handed to its executor: after a crash it is not run
                 * twice. */
                if (j->starting)
                        rec.state = JOB_RUNNING;
                k = store_put_job(r->store, &rec);
                if (k < 0)
                        goto fail;
        }
        for (size_t i = 0; i < r->n_deleted; i++) {
                k = store_delete_job(r->store, r->deleted[i]);
                if (k < 0)
                        goto fail;
        }
        /* The next id is read back as the larger of this and the highest stored id + 1: it needs
         * writing only when rows go, which saves a page per commit. */
        if (r->n_deleted > 0 && r->next_id != r->stored_next_id) {
                k = store_put_setting(r->store, STORE_SETTING_NEXT_ID, r->next_id);
                if (k < 0)
                        goto fail;
        }
        for (size_t i = 0; i < r->n_pool_changes; i++) {
                const struct PoolChange *c = &r->pool_changes[i];
                PoolExecutorSettings e = {};

                if (!c->removed)
                        e = pool_get_executor_settings(c->pool);
                k = c->removed ? store_delete_pool(r->store, c->name)
                               : store_put_pool(r->store, &(StorePool) {
                                                                  .name = c->name,
                                                                  .size = c->size,
                                                                  .paused = c->paused,
                                                                  .executor = e.kind,
                                                                  .slurm_conf = e.slurm_conf,
                                                                  .partition = e.partition,
                                                          });
                if (k < 0)
                        goto fail;
        }
        return store_commit(r->store);
fail:
        store_rollback(r->store);
        return k;
}

/* A job whose caller hears that the store refused it: it is forgotten unless it has gone on already. */
static void ack_refused(Registry *r, uint64_t id) {
        Job *j = registry_find(r, id);

        if (j && j->starting)
                pool_job_unstart(j->pool, j); /* taken out to start in this very batch */
        if (j && !job_state_is_final(j->r.state) && !j->starting && j->r.state == JOB_QUEUED) {
                registry_drop(r, j);
                /* Its id was seen (InterfacesAdded): the next id is stored with the next commit, so that
                 * it is not given again after a restart. */
                registry_job_deleted(r, id);
                registry_check_idle(r);
        }
}

int registry_flush(Registry *r) {
        struct Ack *acks;
        size_t n_acks;
        int k;

        if (!r->store)
                return 0;
        (void) sd_event_source_set_enabled(r->flush_source, SD_EVENT_OFF);
        if (r->n_dirty == 0 && r->n_deleted == 0 && r->n_acks == 0 && r->n_pool_changes == 0)
                return 0;

        r->flushing = true;
        k = store_write(r);
        /* The callbacks below may add acks and changes of their own: they go to the next batch. */
        acks = TAKE_PTR(r->acks);
        n_acks = r->n_acks;
        r->n_acks = r->allocated_acks = 0;
        if (k < 0) {
                if (r->callbacks->store_failed)
                        r->callbacks->store_failed(k, store_last_error(r->store), r->userdata);
                /* What nobody was told is stored is refused and forgotten; every other change is kept
                 * and tried again. */
                for (size_t i = 0; i < n_acks; i++) {
                        if (acks[i].done_many)
                                acks[i].done_many(k, acks[i].userdata);
                        for (uint64_t id = acks[i].id; id < acks[i].id + acks[i].n; id++) {
                                Job *j = registry_find(r, id);
                                if (!j)
                                        continue;
                                if (acks[i].done)
                                        acks[i].done(j, k, acks[i].userdata);
                                ack_refused(r, id);
                        }
                }
                free(acks);
                r->flushing = false;
                (void) sd_event_source_set_time_relative(r->retry_source, REGISTRY_RETRY_USEC);
                (void) sd_event_source_set_enabled(r->retry_source, SD_EVENT_ONESHOT);
                return k;
        }

        for (size_t i = 0; i < r->n_dirty; i++) {
                Job *j = registry_find(r, r->dirty[i]);
                if (j)
                        j->store_dirty = j->store_lazy = false;
        }
        if (r->n_deleted > 0)
                r->stored_next_id = r->next_id;
        r->n_dirty = r->n_deleted = r->n_pool_changes = 0;
        for (size_t i = 0; i < n_acks; i++) {
                Job *j;

                if (acks[i].done_many) {
                        acks[i].done_many(0, acks[i].userdata);
                        continue;
                }
                j = registry_find(r, acks[i].id);
                if (j)
                        acks[i].done(j, 0, acks[i].userdata);
        }
        free(acks);
        r->flushing = false;
        return 0;
}

static int on_flush(sd_event_source *s, void *userdata) {
        (void) registry_flush(userdata);
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) registry_flush(userdata);
        return 0;
}

void registry_set_store(Registry *r, Store *store) {
        assert(!r->store);
        r->store = store;
}

typedef struct LoadContext {
        Registry *registry;
        Pool *(*pool_for)(const char *name, void *userdata);
        void *userdata;
        uint64_t now_realtime, now_monotonic;
        Job **finished;
        size_t n_finished, allocated_finished;
} LoadContext;

static int load_one(JobRecord *rec, void *userdata) {
        LoadContext *c = userdata;
        Registry *r = c->registry;
        Pool *p = c->pool_for(rec->spec.pool, c->userdata);
        Job *j;
        int k;

        if (!p)
                return -ENOENT;
        if (rec->id == 0 || (r->n_slots > 0 && rec->id < r->first_id + r->n_slots))
                return -EBADMSG; /* ids come in order, each once */
        j = job_new_loaded(p, rec);
        if (!j)
                return -ENOMEM;
        k = registry_hold(r, j, job_spec_cost(&j->r.spec));
        if (k < 0) {
                job_free(j);
                return k;
        }
        k = slots_add(r, j);
        if (k < 0) {
                registry_unhold(r, j);
                job_free(j);
                return k;
        }
        r->n_jobs++;
        if (j->r.id >= r->next_id)
                r->next_id = j->r.id + 1;
        if (j->stale && j->r.state == JOB_RUNNING) {
                /* It wrote on after the last commit: the spool file has it all. */
                for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                        uint64_t size;
                        if (spool_size(r->spool, j->r.id, s, &size) >= 0)
                                j->r.output[s].size = MIN(size, j->r.spec.output_limit);
                }
        }
        if (job_state_is_final(j->r.state)) {
                uint64_t age = c->now_realtime > j->r.finished_at ? c->now_realtime - j->r.finished_at : 0;
                j->finished_monotonic = c->now_monotonic > age ? c->now_monotonic - age : 0;
                k = grow((void **) &c->finished, &c->allocated_finished, c->n_finished, sizeof(Job *));
                if (k < 0)
                        return k;
                c->finished[c->n_finished++] = j;
        } else if (j->r.state == JOB_QUEUED && !j->stale &&
                   (j->r.spec.cancel_on_disconnect || j->r.spec.passed_fds || j->r.spec.has_input))
                j->stale = true; /* its caller, fds or input are gone: ended by registry_coldplug() */
        return pool_job_adopt(p, j);
}

static int finished_compare(const void *a, const void *b) {
        const Job *x = *(Job *const *) a, *y = *(Job *const *) b;
        if (x->finished_monotonic != y->finished_monotonic)
                return x->finished_monotonic < y->finished_monotonic ? -1 : 1;
        return x->r.id < y->r.id ? -1 : x->r.id > y->r.id;
}

static bool spool_keep(uint64_t id, void *userdata) {
        return registry_find(userdata, id) != NULL;
}

int registry_load(Registry *r, Pool *(*pool_for)(const char *name, void *userdata), void *userdata) {
        LoadContext c = {
                .registry = r,
                .pool_for = pool_for,
                .userdata = userdata,
                .now_realtime = now_realtime(),
                .now_monotonic = now_monotonic(),
        };
        uint64_t next_id;
        int k;

        assert(r->store && r->n_jobs == 0);

        k = store_get_setting(r->store, STORE_SETTING_NEXT_ID, &next_id);
        if (k >= 0)
                r->next_id = MAX(r->next_id, next_id);
        else if (k != -ENOENT)
                return k;
        k = store_load_jobs(r->store, load_one, &c);
        if (k >= 0) {
                /* Retention goes by when they ended, oldest first. */
                if (c.n_finished > 0)
                        qsort(c.finished, c.n_finished, sizeof(Job *), finished_compare);
                for (size_t i = 0; i < c.n_finished; i++)
                        finished_append(r, c.finished[i]);
                retain_arm(r);
        }
        free(c.finished);
        if (k < 0)
                return k;
        r->stored_next_id = r->next_id;
        spool_prune(r->spool, spool_keep, r);
        return 0;
}

static int coldplug_one(Job *j, void *userdata) {
        if (j->deserialized) {
                job_coldplug(j);
                return 0;
        }
        if (!j->stale)
                return 0;
        if (j->r.spec.cancel_on_disconnect)
                job_finish_stale(j, JOB_REASON_CALLER_GONE);
        else if (j->r.state == JOB_RUNNING)
                job_finish_stale(j, JOB_REASON_DAEMON_STOPPED);
        else
                job_finish_stale(j, JOB_REASON_INPUT_LOST);
        return 0;
}

void registry_coldplug(Registry *r) {
        (void) registry_foreach(r, coldplug_one, NULL);
}

/* ---- across a re-exec ---------------------------------------------------------------------------- */

static int serialize_one(Job *j, void *userdata) {
        if (job_state_is_final(j->r.state))
                return 0;
        return job_serialize(j, userdata);
}

int registry_serialize(Registry *r, Serializer *s) {
        int k;

        k = serialize_itemf(s, "finished-total", "%" PRIu64, r->n_finished_total);
        if (k < 0)
                return k;
        return registry_foreach(r, serialize_one, s);
}

/* Reads one job's items, up to its "end-job", and takes the job over. */
static int deserialize_job(Registry *r, const char *id_value, Deserializer *d) {
        _cleanup_free_ SerializedItem *items = NULL;
        size_t n = 0, allocated = 0;
        SerializedItem item;
        int64_t id;
        Job *j;
        int k;

        for (;;) {
                k = deserializer_next(d, &item);
                if (k < 0)
                        return k;
                if (k == 0)
                        return -EBADMSG; /* cut short */
                if (strcmp(item.key, "end-job") == 0)
                        break;
                k = grow((void **) &items, &allocated, n, sizeof(SerializedItem));
                if (k < 0)
                        return k;
                items[n++] = item;
        }
        k = deserialize_int(id_value, 1, INT64_MAX, &id);
        if (k < 0)
                return k;
        j = registry_find(r, (uint64_t) id);
        if (!j)
                return -ESTALE; /* not in the store: its fds are closed with the deserializer */
        k = job_deserialize(j, items, n, d);
        if (k < 0)
                return k;
        /* The store may lag behind what it captured meanwhile. */
        registry_job_dirty(r, j);
        return 0;
}

int registry_deserialize(Registry *r, Deserializer *d,
                         int (*item)(const SerializedItem *item, void *userdata), void *userdata) {
        SerializedItem i;
        int k, ret = 0;

        for (;;) {
                k = deserializer_next(d, &i);
                if (k <= 0)
                        return k < 0 ? k : ret;
                if (strcmp(i.key, "job") == 0) {
                        k = deserialize_job(r, i.value, d);
                        if (k < 0 && ret >= 0)
                                ret = k;
                } else if (strcmp(i.key, "finished-total") == 0) {
                        int64_t v;
                        if (deserialize_int(i.value, 0, INT64_MAX, &v) >= 0)
                                r->n_finished_total = MAX(r->n_finished_total, (uint64_t) v);
                } else if (item) {
                        k = item(&i, userdata);
                        if (k < 0 && ret >= 0)
                                ret = k;
                }
        }
}

/* ---- what the observer hears ----------------------------------------------------------------------- */

void registry_job_added(Registry *r, Job *j) {
        if (r->callbacks->job_added)
                r->callbacks->job_added(j, r->userdata);
}

void registry_job_changed(Registry *r, Job *j, JobChange what) {
        /* A start whose mark is stored (the commit before the executor was called): the store reads the
         * job running already, and after a crash it ends failed whatever its pid was. Its pid and start
         * time go with the next commit, at the latest its end's, rather than in a commit of their own
         * while it runs. */
        bool started = what == (JOB_CHANGE_STATE | JOB_CHANGE_PID | JOB_CHANGE_STARTED_AT) &&
                       j->r.state == JOB_RUNNING && !j->store_dirty;

        job_dirty(r, j, !started);
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
        if (r->store && !r->flushing) {
                /* The deletes of what was just released are written first; then SQLite's page cache and
                 * the write-behind arrays, sized for the busiest moment, go back too. */
                (void) registry_flush(r);
                if (r->n_dirty == 0 && r->n_deleted == 0) {
                        r->dirty = mfree(r->dirty);
                        r->deleted = mfree(r->deleted);
                        r->allocated_dirty = r->allocated_deleted = 0;
                        store_release_memory(r->store);
                }
        }
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
        (void) sd_event_source_set_time(r->retain_source,
                                        r->finished_head->finished_monotonic + r->config.retain_usec);
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

typedef struct MostFinishedContext {
        RegistryUser *found;
} MostFinishedContext;

static void find_most_finished(const void *node, VISIT which, void *userdata) {
        RegistryUser *u = *(RegistryUser *const *) node;
        MostFinishedContext *c = userdata;

        if ((which != postorder && which != leaf) || u->n_finished == 0)
                return;
        /* Of those with as many, the one whose oldest ended first. */
        if (!c->found || u->n_finished > c->found->n_finished ||
            (u->n_finished == c->found->n_finished &&
             finished_compare(&u->finished_head, &c->found->finished_head) < 0))
                c->found = u;
}

/* Applies --retain: per uid, only the uid's own finished jobs go, oldest first; past the cap on all,
 * those of the uid that has the most. */
static void retain_count(Registry *r, uid_t uid) {
        size_t total = (size_t) r->config.retain * REGISTRY_RETAIN_UIDS;
        RegistryUser *u;

        while ((u = user_find(r, uid)) && u->n_finished > r->config.retain)
                registry_release(r, u->finished_head);
        while (r->n_finished > total) {
                MostFinishedContext c = {};

                twalk_r(r->users, find_most_finished, &c);
                assert(c.found);
                registry_release(r, c.found->finished_head);
        }
}

/* ---- jobs that wait before they may start ------------------------------------------------------------ */

void registry_wait_add(Registry *r, Job *j) {
        assert(!j->waiting);
        j->waiting = true;
        j->wait_prev = NULL;
        j->wait_next = r->waiting_head;
        if (r->waiting_head)
                r->waiting_head->wait_prev = j;
        r->waiting_head = j;
        r->n_waiting++;
        (void) sd_event_source_set_enabled(r->wait_check_source, SD_EVENT_ONESHOT);
}

void registry_wait_remove(Registry *r, Job *j) {
        if (!j->waiting)
                return;
        if (j->wait_prev)
                j->wait_prev->wait_next = j->wait_next;
        else
                r->waiting_head = j->wait_next;
        if (j->wait_next)
                j->wait_next->wait_prev = j->wait_prev;
        j->wait_prev = j->wait_next = NULL;
        j->waiting = false;
        r->n_waiting--;
}

unsigned registry_waiting_for(Registry *r, const Job *j, uint64_t *ret_ids) {
        unsigned n = 0;

        if (job_state_is_final(j->r.state))
                return 0;
        for (size_t i = 0; i < j->r.spec.n_after; i++) {
                Job *d = registry_find(r, j->r.spec.after[i]);
                if (d && !job_state_is_final(d->r.state)) {
                        if (ret_ids)
                                ret_ids[n] = d->r.id;
                        n++;
                }
        }
        return n;
}

/* Whether j may start as far as its dependencies go: 1 yes, 0 not yet, or, for one that did not exit 0,
 * -1 with the reason filled in. */
static int dependencies_met(Registry *r, Job *j, JobReason *ret_reason) {
        bool pending = false;

        for (size_t i = 0; i < j->r.spec.n_after; i++) {
                uint64_t id = j->r.spec.after[i];
                Job *d = registry_find(r, id);

                if (d && !job_state_is_final(d->r.state)) {
                        pending = true;
                        continue;
                }
                if (d && d->r.state == JOB_EXITED && d->r.returncode == 0)
                        continue;
                *ret_reason = (JobReason) {
                        .kind = JOB_REASON_DEPENDENCY,
                        .dependency = id,
                        .dependency_state = d ? d->r.state : _JOB_STATE_MAX,
                        .dependency_returncode = d ? d->r.returncode : 0,
                };
                return -1;
        }
        return !pending;
}

bool registry_job_may_start(Registry *r, Job *j) {
        JobReason reason;

        /* A dependency that failed ends it: it is looked at once it waits. */
        return j->r.spec.n_after == 0
                       ? j->r.wait_until_usec <= now_realtime()
                       : dependencies_met(r, j, &reason) > 0 && j->r.wait_until_usec <= now_realtime();
}

static int on_wait_check(sd_event_source *s, void *userdata) {
        Registry *r = userdata;
        uint64_t now = now_realtime(), next = UINT64_MAX;
        Job *j = r->waiting_head;

        while (j) {
                Job *next_job = j->wait_next; /* j may leave the list, and only j */
                JobReason reason = {};
                int k = dependencies_met(r, j, &reason);
                unsigned n = registry_waiting_for(r, j, NULL);

                if (k < 0)
                        job_fail_dependency(j, reason);
                else if (k > 0 && j->r.wait_until_usec <= now)
                        pool_job_ready(j->pool, j);
                else {
                        if (k > 0)
                                next = MIN(next, j->r.wait_until_usec);
                        if (n != j->n_waiting_for) {
                                j->n_waiting_for = n;
                                registry_job_changed(r, j, JOB_CHANGE_WAITING);
                        }
                }
                j = next_job;
        }
        if (next != UINT64_MAX) {
                (void) sd_event_source_set_time(r->wait_timer_source, next);
                (void) sd_event_source_set_enabled(r->wait_timer_source, SD_EVENT_ONESHOT);
        } else
                (void) sd_event_source_set_enabled(r->wait_timer_source, SD_EVENT_OFF);
        return 0;
}

static int on_wait_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        return on_wait_check(s, userdata);
}

void registry_job_finished(Registry *r, Job *j, JobChange what) {
        uid_t uid = j->r.spec.owner;

        assert(job_state_is_final(j->r.state));
        assert(!j->finished_prev && !j->finished_next && r->finished_tail != j);

        finished_append(r, j);
        r->n_finished_total++;
        registry_job_dirty(r, j);
        if (r->n_waiting > 0)
                (void) sd_event_source_set_enabled(r->wait_check_source, SD_EVENT_ONESHOT);

        /* The change first: a client that caches properties (a GDBusProxy) has the final state by the
         * time the end is announced and its waiting callers get their answer. */
        registry_job_changed(r, j, what);
        if (r->callbacks->job_finished)
                r->callbacks->job_finished(j, r->userdata);

        retain_count(r, uid);
        retain_arm(r);
}

typedef struct HeavierContext {
        uint64_t than; /* what the submitter will hold */
        RegistryUser *found;
} HeavierContext;

static void find_heavier(const void *node, VISIT which, void *userdata) {
        RegistryUser *u = *(RegistryUser *const *) node;
        HeavierContext *c = userdata;

        if (which != postorder && which != leaf)
                return;
        if (u->finished_head && u->held_bytes > c->than &&
            (!c->found || u->held_bytes > c->found->held_bytes))
                c->found = u;
}

/* The finished job to release so that uid's job of cost bytes fits the whole bound: uid's oldest, else the
 * oldest of the uid that holds the most, if that is more than uid will hold; else NULL. */
static Job *held_victim(Registry *r, uid_t uid, size_t cost) {
        RegistryUser *u = user_find(r, uid);
        HeavierContext c = { .than = (u ? u->held_bytes : 0) + cost };

        if (u && u->finished_head)
                return u->finished_head;
        twalk_r(r->users, find_heavier, &c);
        return c.found ? c.found->finished_head : NULL;
}

int registry_make_room(Registry *r, uid_t uid, size_t cost) {
        uint64_t share = r->config.max_held_bytes_per_user;
        RegistryUser *u;

        /* The uid's share: only its own finished jobs make room in it. */
        if (share > 0) {
                while ((u = user_find(r, uid)) && u->held_bytes + cost > share && u->finished_head)
                        registry_release(r, u->finished_head);
                u = user_find(r, uid);
                if ((u ? u->held_bytes : 0) + cost > share)
                        return REGISTRY_ERROR_USER_HELD_LIMIT;
        }
        if (r->config.max_held_bytes == 0)
                return 0;
        while (r->held_bytes + cost > r->config.max_held_bytes) {
                Job *j = held_victim(r, uid, cost);
                if (!j)
                        return REGISTRY_ERROR_HELD_LIMIT;
                registry_release(r, j);
        }
        return 0;
}

/* Unlinks j and frees it, telling the observer first; does not check for idleness. */
static void registry_drop(Registry *r, Job *j) {
        if (r->callbacks->job_removed)
                r->callbacks->job_removed(j, r->userdata);
        if (job_state_is_final(j->r.state))
                finished_unlink(r, j);
        slots_remove(r, j);
        r->n_jobs--;
        registry_unhold(r, j);
        pool_job_detach(j->pool, j);
        job_free(j);
}

void registry_release(Registry *r, Job *j) {
        uint64_t id = j->r.id;

        assert(job_state_is_final(j->r.state));
        registry_drop(r, j);
        /* Released, its output goes too; a daemon that merely stops keeps it (registry_free()). */
        spool_remove(r->spool, id);
        registry_job_deleted(r, id);
        registry_check_idle(r);
}

/* ---- the registry ------------------------------------------------------------------------------------ */

int registry_new(sd_event *event, const RegistryConfig *config, Spool *spool,
                 const RegistryCallbacks *callbacks, void *userdata, Registry **ret) {
        static const RegistryCallbacks no_callbacks = {};
        Registry *r;
        int k;

        assert(spool);
        r = calloc(1, sizeof(Registry));
        if (!r) {
                spool_free(spool);
                return -ENOMEM;
        }
        r->spool = spool;
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
        /* Last in a loop iteration: the commit takes in everything the iteration changed. */
        k = sd_event_add_defer(event, &r->flush_source, on_flush, r);
        if (k >= 0)
                k = sd_event_source_set_priority(r->flush_source, SD_EVENT_PRIORITY_IDLE);
        if (k >= 0)
                k = sd_event_add_time(event, &r->retry_source, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_SEC / 10,
                                      on_retry, r);
        if (k >= 0)
                k = sd_event_add_defer(event, &r->wait_check_source, on_wait_check, r);
        if (k >= 0)
                k = sd_event_add_time(event, &r->wait_timer_source, CLOCK_REALTIME, UINT64_MAX, 0,
                                      on_wait_timer, r);
        if (k < 0) {
                registry_free(r);
                return k;
        }
        (void) sd_event_source_set_enabled(r->flush_source, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(r->retry_source, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(r->wait_check_source, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(r->wait_timer_source, SD_EVENT_OFF);
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
        /* What changed last is kept, before the jobs are let go of. */
        (void) registry_flush(r);
        r->store = store_free(r->store);
        (void) registry_foreach(r, abandon_one, r);
        assert(r->n_jobs == 0 && !r->users);
        free(r->slots);
        free(r->dirty);
        free(r->deleted);
        free(r->pool_changes);
        free(r->acks);
        sd_event_source_disable_unref(r->flush_source);
        sd_event_source_disable_unref(r->wait_check_source);
        sd_event_source_disable_unref(r->wait_timer_source);
        sd_event_source_disable_unref(r->retry_source);
        spool_free(r->spool);
        sd_event_source_disable_unref(r->retain_source);
        sd_event_unref(r->event);
        free(r);
        return NULL;
}
