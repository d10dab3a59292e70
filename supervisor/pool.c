/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A pool: a queue per uid, the uids taking turns, at most `size` jobs running at once, per-uid limits,
 * and one executor that runs its jobs. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "pool-internal.h"
#include "registry-internal.h"

unsigned pool_default_size(void) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (unsigned) n : 1;
}

sd_event *pool_get_event(const Pool *p) {
        return p->event;
}

Registry *pool_get_registry(const Pool *p) {
        return p->registry;
}

Executor *pool_get_executor(const Pool *p) {
        return p->executor;
}

const QuotaLimits *pool_get_quota(const Pool *p) {
        return &p->config.per_user;
}

const PoolConfig *pool_get_config(const Pool *p) {
        return &p->config;
}

unsigned pool_get_size(const Pool *p) {
        return p->config.pool_size;
}

unsigned pool_get_running(const Pool *p) {
        return p->n_running;
}

unsigned pool_get_queued(const Pool *p) {
        return (unsigned) (p->n_queued + p->n_waiting);
}

bool pool_has_unfinished(const Pool *p) {
        return p->n_queued + p->n_waiting + p->n_starting + p->n_running > 0;
}

const char *pool_get_name(const Pool *p) {
        return p->name;
}

void *pool_get_userdata(const Pool *p) {
        return p->userdata;
}

void pool_set_userdata(Pool *p, void *userdata) {
        p->userdata = userdata;
}

bool pool_get_paused(const Pool *p) {
        return p->paused;
}

bool pool_name_is_valid(const char *name) {
        size_t n = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");

        return n > 0 && n <= POOL_NAME_MAX && name[n] == '\0';
}

uint64_t pool_get_queue_compares(const Pool *p) {
        return p->n_compares;
}

static void pool_schedule(Pool *p);

/* ---- each uid's queue: a binary heap ----------------------------------------------------------------- */

static bool queue_before(Pool *p, const Job *a, const Job *b) {
        p->n_compares++;
        if (a->r.spec.priority != b->r.spec.priority)
                return a->r.spec.priority > b->r.spec.priority;
        return a->r.id < b->r.id;
}

static void queue_set(UserUsage *u, size_t i, Job *j) {
        u->queue[i] = j;
        j->queue_index = i;
}

static void queue_sift_up(Pool *p, UserUsage *u, size_t i) {
        Job *j = u->queue[i];
        while (i > 0) {
                size_t parent = (i - 1) / 2;
                if (!queue_before(p, j, u->queue[parent]))
                        break;
                queue_set(u, i, u->queue[parent]);
                i = parent;
        }
        queue_set(u, i, j);
}

static void queue_sift_down(Pool *p, UserUsage *u, size_t i) {
        Job *j = u->queue[i];
        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= u->n_queued)
                        break;
                if (c + 1 < u->n_queued && queue_before(p, u->queue[c + 1], u->queue[c]))
                        c++;
                if (!queue_before(p, u->queue[c], j))
                        break;
                queue_set(u, i, u->queue[c]);
                i = c;
        }
        queue_set(u, i, j);
}

/* ---- the ring of uids with startable jobs ------------------------------------------------------------ */

/* Uids take turns: in each round every uid with startable jobs (queued, below its running limit) starts
 * one, in the order they joined the round. A uid that had its turn waits in the next round's list; a uid
 * that joins (it queues a job, or drops below its running limit) joins this round unless it had its turn
 * in it already, so that a newcomer starts at the next free slot and queuing one job at a time gains
 * nothing. Each start is O(1) here and O(log n) in the uid's heap; a uid at its running limit is not in
 * the ring at all, so its waiting jobs cost nothing. */

static bool pool_user_at_limit(Pool *p, const UserUsage *u) {
        return p->config.per_user.max_running > 0 && u->n_running >= p->config.per_user.max_running;
}

/* Which list u is in: this round's (0) or the next's (1). */
static int ring_list(const Pool *p, const UserUsage *u) {
        assert(u->in_ring && (u->round == p->round || u->round == p->round + 1));
        return u->round > p->round;
}

static void ring_append(Pool *p, UserUsage *u) {
        int l = ring_list(p, u);

        u->ring_prev = p->ring_tail[l];
        u->ring_next = NULL;
        if (p->ring_tail[l])
                p->ring_tail[l]->ring_next = u;
        else
                p->ring_head[l] = u;
        p->ring_tail[l] = u;
}

static void ring_unlink(Pool *p, UserUsage *u) {
        int l = ring_list(p, u);

        if (u->ring_prev)
                u->ring_prev->ring_next = u->ring_next;
        else
                p->ring_head[l] = u->ring_next;
        if (u->ring_next)
                u->ring_next->ring_prev = u->ring_prev;
        else
                p->ring_tail[l] = u->ring_prev;
        u->ring_prev = u->ring_next = NULL;
        u->in_ring = false;
}

/* Puts u in the ring or takes it out, as it now has startable jobs or not. */
static void ring_update(Pool *p, UserUsage *u) {
        bool startable = u->n_queued > 0 && !pool_user_at_limit(p, u);

        if (startable == u->in_ring)
                return;
        if (!startable) {
                ring_unlink(p, u);
                return;
        }
        u->round = MAX(u->round, p->round);
        u->in_ring = true;
        ring_append(p, u);
}

/* The uid whose turn it is, or NULL if none has a startable job. */
static UserUsage *ring_pick(Pool *p) {
        if (!p->ring_head[0]) {
                if (!p->ring_head[1])
                        return NULL;
                /* This round is over: the next one begins. */
                p->ring_head[0] = TAKE_PTR(p->ring_head[1]);
                p->ring_tail[0] = TAKE_PTR(p->ring_tail[1]);
                p->round++;
        }
        return p->ring_head[0];
}

/* u started a job: its next turn is in the next round. */
static void ring_served(Pool *p, UserUsage *u) {
        if (u->in_ring)
                ring_unlink(p, u);
        u->round = p->round + 1;
        ring_update(p, u);
}

/* The order of one uid's queue, uncounted: for pool_queue_position(), not for scheduling. */
static bool job_before(const Job *a, const Job *b) {
        if (a->r.spec.priority != b->r.spec.priority)
                return a->r.spec.priority > b->r.spec.priority;
        return a->r.id < b->r.id;
}

unsigned pool_queue_position(Pool *p, Job *j) {
        UserUsage *u = j->usage;
        bool before_u = true;
        size_t rank = 0, ahead;

        /* One waiting for its dependencies or a time starts after every job that may start now. */
        if (j->waiting)
                return (unsigned) MIN(p->n_queued, (size_t) UINT_MAX);
        if (j->queue_index == SIZE_MAX)
                return 0;
        /* Its place among its owner's jobs: O(n) in its owner's queue. */
        for (size_t i = 0; i < u->n_queued; i++)
                if (u->queue[i] != j && job_before(u->queue[i], j))
                        rank++;
        /* Every round each other uid with jobs to start starts one: those before its owner in the ring
         * once more than rank, the others rank times, each at most as many as it has queued. */
        ahead = rank;
        for (int l = 0; l < 2; l++)
                for (UserUsage *v = p->ring_head[l]; v; v = v->ring_next) {
                        if (v == u) {
                                before_u = false;
                                continue;
                        }
                        ahead += MIN(v->n_queued, rank + (before_u ? 1 : 0));
                }
        return (unsigned) MIN(ahead, (size_t) UINT_MAX);
}

/* ---- queuing ------------------------------------------------------------------------------------------ */

/* u's heap, sized for its busiest moment, goes back once it has nothing queued or running. While a job of
 * it starts, the heap stays: pool_job_unstart() puts the job back without allocating. */
static void user_trim(UserUsage *u) {
        if (u->n_queued > 0 || u->n_running > 0)
                return;
        u->queue = mfree(u->queue);
        u->allocated_queue = 0;
}

/* The passed fds a queued or waiting job holds are counted in its owner's and the pool's. */
static void count_fds(Pool *p, Job *j, bool add) {
        if (add)
                j->queued_fds = job_spec_count_fds(&j->r.spec);
        j->usage->n_fds += add ? j->queued_fds : -j->queued_fds;
        p->n_fds += add ? j->queued_fds : -j->queued_fds;
        if (!add)
                j->queued_fds = 0;
}

/* Queues j in its owner's heap; the owner's queued count goes with it, as queue_remove() takes it back. */
static int queue_push(Pool *p, Job *j) {
        UserUsage *u = j->usage;

        assert(j->queue_index == SIZE_MAX);

        if (u->n_queued == u->allocated_queue) {
                size_t a = u->allocated_queue ? u->allocated_queue * 2 : 16;
                Job **q = realloc(u->queue, a * sizeof(Job *));
                if (!q)
                        return -ENOMEM;
                u->queue = q;
                u->allocated_queue = a;
        }
        queue_set(u, u->n_queued++, j);
        queue_sift_up(p, u, u->n_queued - 1);
        p->n_queued++;
        /* Passed fds are held while the job waits; starting hands them to the job's processes. */
        count_fds(p, j, true);
        ring_update(p, u);
        return 0;
}

/* j may not start yet: it waits, counted as queued, until the registry hands it to pool_job_ready(). */
static void wait_push(Pool *p, Job *j) {
        count_fds(p, j, true);
        j->usage->n_waiting++;
        p->n_waiting++;
        registry_wait_add(p->registry, j);
}

static void wait_remove(Pool *p, Job *j) {
        registry_wait_remove(p->registry, j);
        count_fds(p, j, false);
        j->usage->n_waiting--;
        p->n_waiting--;
}

/* Queues j, or lets it wait if it may not start yet. */
static int queue_or_wait(Pool *p, Job *j) {
        if (registry_job_may_start(p->registry, j))
                return queue_push(p, j);
        wait_push(p, j);
        return 0;
}

void pool_job_ready(Pool *p, Job *j) {
        assert(j->waiting);
        wait_remove(p, j);
        if (queue_push(p, j) < 0) {
                wait_push(p, j); /* looked at again when the next job ends */
                return;
        }
        pool_schedule(p);
}

void pool_job_retry(Pool *p, Job *j) {
        assert(p->n_running > 0 && j->r.state == JOB_QUEUED);
        p->n_running--;
        j->usage->n_running--;
        ring_update(p, j->usage);
        wait_push(p, j);
        pool_schedule(p);
        registry_counts_changed(p->registry, p);
}

static void queue_remove(Pool *p, Job *j) {
        UserUsage *u = j->usage;
        size_t i = j->queue_index;
        Job *moved;

        if (j->waiting) {
                wait_remove(p, j);
                return;
        }
        if (i == SIZE_MAX)
                return;
        assert(i < u->n_queued && u->queue[i] == j);
        j->queue_index = SIZE_MAX;
        count_fds(p, j, false);
        p->n_queued--;
        u->n_queued--;
        if (i < u->n_queued) {
                moved = u->queue[u->n_queued];
                queue_set(u, i, moved);
                if (i > 0 && queue_before(p, moved, u->queue[(i - 1) / 2]))
                        queue_sift_up(p, u, i);
                else
                        queue_sift_down(p, u, i);
        }
        user_trim(u);
        ring_update(p, u);
}

/* ---- scheduling -------------------------------------------------------------------------------------- */

/* Appends j to a growing array. */
static int job_array_add(Job ***array, size_t *n, size_t *allocated, Job *j) {
        if (*n == *allocated) {
                size_t a = *allocated ? *allocated * 2 : 64;
                Job **l = realloc(*array, a * sizeof(Job *));
                if (!l)
                        return -ENOMEM;
                *array = l;
                *allocated = a;
        }
        (*array)[(*n)++] = j;
        return 0;
}

static uint64_t *new_ids(Job **jobs, size_t n) {
        uint64_t *ids = malloc(n * sizeof(uint64_t));
        if (!ids)
                return NULL;
        for (size_t i = 0; i < n; i++)
                ids[i] = jobs[i]->r.id;
        return ids;
}

void pool_job_unstart(Pool *p, Job *j) {
        assert(j->starting && p->n_starting > 0);
        j->starting = false;
        p->n_starting--;
        j->usage->n_running--;
        (void) queue_push(p, j); /* room is there: it was just in its uid's heap (user_trim()) */
}

static int on_schedule(sd_event_source *s, void *userdata) {
        Pool *p = userdata;
        _cleanup_free_ Job **starting = NULL;
        size_t n_starting = 0, allocated_starting = 0;
        _cleanup_free_ uint64_t *ids = NULL;

        while (!p->shutting_down && !p->paused && p->n_starting + p->n_running < p->config.pool_size) {
                UserUsage *u = ring_pick(p);
                Job *j;

                if (!u)
                        break;
                assert(u->n_queued > 0 && !pool_user_at_limit(p, u));
                j = u->queue[0];
                if (job_array_add(&starting, &n_starting, &allocated_starting, j) < 0)
                        break;
                u->n_running++; /* first, so that its heap stays for pool_job_unstart() */
                queue_remove(p, j);
                p->n_starting++;
                ring_served(p, u);
                job_mark_starting(j);
        }

        /* What was submitted, and that these start, is stored before they do, in one commit: after a
         * crash a job is never run twice. A job the store refused is gone after this, unacknowledged
         * (pool_job_unstart()), so the jobs are found again by id. */
        if (n_starting > 0) {
                ids = new_ids(starting, n_starting);
                if (!ids) {
                        for (size_t i = 0; i < n_starting; i++)
                                pool_job_unstart(p, starting[i]);
                        n_starting = 0;
                }
        }
        (void) registry_flush(p->registry);
        for (size_t i = 0; i < n_starting; i++) {
                Job *j = registry_find(p->registry, ids[i]);
                if (j && j->starting)
                        job_start(j); /* a job that cannot start ends as failed */
        }
        registry_counts_changed(p->registry, p);
        return 0;
}

static void pool_schedule(Pool *p) {
        (void) sd_event_source_set_enabled(p->schedule_source, SD_EVENT_ONESHOT);
}

/* ---- what jobs report -------------------------------------------------------------------------------- */

void pool_job_started(Pool *p, Job *j) {
        assert(p->n_starting > 0);
        p->n_starting--;
        p->n_running++;
        pool_job_changed(p, j, JOB_CHANGE_STATE | JOB_CHANGE_PID | JOB_CHANGE_STARTED_AT);
}

void pool_job_changed(Pool *p, Job *j, JobChange what) {
        registry_job_changed(p->registry, j, what);
}

void pool_job_finished(Pool *p, Job *j, JobPhase phase) {
        JobChange what = JOB_CHANGE_STATE | JOB_CHANGE_FINISHED_AT;

        switch (phase) {
        case JOB_PHASE_QUEUED:
                queue_remove(p, j);
                break;
        case JOB_PHASE_STARTING:
                assert(p->n_starting > 0);
                p->n_starting--;
                j->usage->n_running--;
                user_trim(j->usage);
                ring_update(p, j->usage);
                break;
        case JOB_PHASE_RUNNING:
                assert(p->n_running > 0);
                p->n_running--;
                j->usage->n_running--;
                user_trim(j->usage);
                ring_update(p, j->usage);
                break;
        case JOB_PHASE_STALE:
                break; /* read back from the store: it never had a slot */
        }
        if (j->r.started_at != 0)
                what |= JOB_CHANGE_PID | JOB_CHANGE_RETURNCODE | JOB_CHANGE_USAGE;
        if (j->r.reason.kind != JOB_REASON_NONE)
                what |= JOB_CHANGE_ERROR;

        registry_job_finished(p->registry, j, what);
        pool_schedule(p);
        registry_counts_changed(p->registry, p);
        registry_check_idle(p->registry);
}

void pool_job_detach(Pool *p, Job *j) {
        if (!j->usage)
                return;
        queue_remove(p, j);
        for (int s = 0; s < _JOB_STREAM_MAX; s++)
                j->usage->output_bytes -= j->r.output[s].size;
        /* Its last job gone, the uid has nothing queued: it is out of the ring. */
        assert(j->usage->n_jobs > 1 || !j->usage->in_ring);
        quota_unref(&p->users, TAKE_PTR(j->usage));
}

int pool_job_adopt(Pool *p, Job *j) {
        int r;

        j->usage = quota_ref(&p->users, j->r.spec.owner);
        if (!j->usage)
                return -ENOMEM;
        for (int s = 0; s < _JOB_STREAM_MAX; s++)
                j->usage->output_bytes += j->r.output[s].size;
        if (j->r.state != JOB_QUEUED || j->stale)
                return 0;
        r = queue_or_wait(p, j);
        if (r < 0)
                return r;
        pool_schedule(p);
        return 0;
}

void pool_job_resumed(Pool *p, Job *j) {
        assert(j->r.state == JOB_RUNNING && j->usage);
        p->n_running++;
        j->usage->n_running++;
        ring_update(p, j->usage);
}

int pool_job_requeue(Pool *p, Job *j) {
        int r;

        assert(j->r.state == JOB_QUEUED && j->usage);
        r = queue_or_wait(p, j);
        if (r < 0)
                return r;
        pool_schedule(p);
        return 0;
}

/* ---- the pool ---------------------------------------------------------------------------------------- */

int pool_new(sd_event *event, Registry *registry, const char *name, const PoolConfig *config,
             Executor *executor, Pool **ret) {
        Pool *p;
        int r;

        assert(event && registry && config && executor && ret && pool_name_is_valid(name));

        p = calloc(1, sizeof(Pool));
        if (!p)
                return -ENOMEM;
        p->name = strdup(name);
        if (!p->name) {
                free(p);
                return -ENOMEM;
        }
        p->event = sd_event_ref(event);
        p->registry = registry;
        p->config = *config;
        if (p->config.pool_size == 0)
                p->config.pool_size = pool_default_size();
        p->executor = executor;
        p->executor->events = &job_executor_events;

        r = sd_event_add_defer(event, &p->schedule_source, on_schedule, p);
        if (r < 0) {
                pool_free(p);
                return r;
        }
        (void) sd_event_source_set_enabled(p->schedule_source, SD_EVENT_OFF);

        *ret = p;
        return 0;
}

Pool *pool_free(Pool *p) {
        if (!p)
                return NULL;
        assert(p->n_queued == 0 && p->n_running == 0 && p->n_starting == 0);
        assert(!p->ring_head[0] && !p->ring_head[1]);
        quota_free_all(&p->users);
        sd_event_source_disable_unref(p->schedule_source);
        sd_event_unref(p->event);
        free(p->executor_kind);
        free(p->slurm_conf);
        free(p->partition);
        free(p->name);
        free(p);
        return NULL;
}

static int strdup_or_null(const char *s, char **ret) {
        char *c = NULL;

        if (s) {
                c = strdup(s);
                if (!c)
                        return -ENOMEM;
        }
        free(*ret);
        *ret = c;
        return 0;
}

int pool_set_executor_settings(Pool *p, const PoolExecutorSettings *settings) {
        int r;

        r = strdup_or_null(settings->kind, &p->executor_kind);
        if (r < 0)
                return r;
        r = strdup_or_null(settings->slurm_conf, &p->slurm_conf);
        if (r < 0)
                return r;
        return strdup_or_null(settings->partition, &p->partition);
}

PoolExecutorSettings pool_get_executor_settings(const Pool *p) {
        return (PoolExecutorSettings) {
                .kind = p->executor_kind,
                .slurm_conf = p->slurm_conf,
                .partition = p->partition,
        };
}

typedef struct HandOver {
        Pool *from, *to;
} HandOver;

static int hand_over_one(Job *j, void *userdata) {
        HandOver *h = userdata;

        if (j->pool != h->from)
                return 0;
        assert(job_state_is_final(j->r.state));
        pool_job_detach(h->from, j);
        j->pool = h->to;
        /* Out of memory leaves it counted nowhere: it is still released as any other. */
        (void) pool_job_adopt(h->to, j);
        return 0;
}

void pool_retire(Pool *p, Pool *to) {
        HandOver h = { .from = p, .to = to };

        assert(!pool_has_unfinished(p) && p != to);
        (void) registry_foreach(p->registry, hand_over_one, &h);
        registry_pool_removed(p->registry, p->name);
}

void pool_save(Pool *p) {
        registry_pool_changed(p->registry, p);
}

size_t job_spec_cost(const JobSpec *spec) {
        size_t n = REGISTRY_JOB_FIXED_COST + (spec->label ? strlen(spec->label) : 0) +
                   (spec->cwd ? strlen(spec->cwd) : 0) + spec->user.n_groups * sizeof(gid_t);
        for (char **a = spec->argv; a && *a; a++)
                n += strlen(*a) + 1;
        /* After and WaitingFor list them; the bus layer bounds how many. */
        return n + spec->n_after * 2 * sizeof(uint64_t);
}

int pool_validate(Pool *p, const JobSpec *spec, JobSpecField *ret_field) {
        if (!p->executor->vtable->validate)
                return 0;
        return p->executor->vtable->validate(p->executor, spec, ret_field);
}

int pool_check_room(Pool *p, const JobSpec *specs, size_t n, size_t *ret_fit) {
        size_t queued = p->n_queued + p->n_waiting, cost = 0;
        uid_t owner = n > 0 ? specs[0].owner : 0;
        const UserUsage *u;
        int r;

        for (size_t i = 0; i < n; i++) {
                assert(specs[i].owner == owner && job_spec_count_fds(&specs[i]) == 0);
                cost += job_spec_cost(&specs[i]);
        }
        *ret_fit = 0;
        if (p->shutting_down)
                return POOL_ERROR_SHUTTING_DOWN;
        if (queued + n > p->config.max_queued) {
                *ret_fit = queued < p->config.max_queued ? p->config.max_queued - queued : 0;
                return POOL_ERROR_QUEUE_FULL;
        }
        u = quota_find(&p->users, owner);
        queued = u ? u->n_queued + u->n_waiting : 0;
        if (p->config.per_user.max_queued > 0 && queued + n > p->config.per_user.max_queued) {
                *ret_fit =
                        queued < p->config.per_user.max_queued ? p->config.per_user.max_queued - queued : 0;
                return POOL_ERROR_USER_QUEUE_FULL;
        }
        r = registry_make_room(p->registry, owner, cost);
        if (r < 0)
                return r;
        *ret_fit = n;
        return 0;
}

int pool_submit(Pool *p, JobSpec *spec, void *userdata, Job **ret) {
        size_t cost = job_spec_cost(spec);
        JobSpecField field;
        unsigned n_fds;
        UserUsage *u;
        Job *j;
        int r;

        if (p->shutting_down)
                return POOL_ERROR_SHUTTING_DOWN;
        if (p->n_queued + p->n_waiting >= p->config.max_queued)
                return POOL_ERROR_QUEUE_FULL;
        if (pool_validate(p, spec, &field) < 0)
                return POOL_ERROR_NOT_SUPPORTED;
        /* Everything held must still fit in one bus message (GetManagedObjects lists it all), and one uid
         * may not take all of that room. */
        r = registry_make_room(p->registry, spec->owner, cost);
        if (r < 0)
                return r;
        u = quota_ref(&p->users, spec->owner);
        if (!u)
                return -ENOMEM;
        if (p->config.per_user.max_queued > 0 &&
            u->n_queued + u->n_waiting >= p->config.per_user.max_queued) {
                quota_unref(&p->users, u);
                return POOL_ERROR_USER_QUEUE_FULL;
        }
        /* A queued job holds its passed fds until it starts: one uid must not take the daemon's. */
        n_fds = job_spec_count_fds(spec);
        if (n_fds > 0 && p->config.per_user.max_fds > 0 && u->n_fds + n_fds > p->config.per_user.max_fds) {
                quota_unref(&p->users, u);
                return POOL_ERROR_USER_FDS;
        }
        if (n_fds > 0 && p->config.max_fds > 0 && p->n_fds + n_fds > p->config.max_fds) {
                quota_unref(&p->users, u);
                return POOL_ERROR_FDS;
        }
        if (spec->output_limit == JOB_OUTPUT_LIMIT_UNSET)
                spec->output_limit = p->config.output_limit ?: JOB_OUTPUT_LIMIT_DEFAULT;
        if (!spec->pool || strcmp(spec->pool, p->name) != 0) {
                char *name = strdup(p->name);
                if (!name) {
                        quota_unref(&p->users, u);
                        return -ENOMEM;
                }
                free(spec->pool);
                spec->pool = name;
        }

        j = job_new(p, spec, userdata);
        if (!j) {
                quota_unref(&p->users, u);
                return -ENOMEM;
        }
        j->usage = u;
        r = registry_add(p->registry, j, cost);
        if (r < 0)
                goto fail;
        r = queue_or_wait(p, j);
        if (r < 0) {
                registry_remove(p->registry, j);
                goto fail;
        }

        registry_job_added(p->registry, j);
        if (!pool_user_at_limit(p, u))
                pool_schedule(p);
        registry_counts_changed(p->registry, p);
        *ret = j;
        return 0;
fail:
        /* Hand the spec back so the caller still owns what it passed in. */
        quota_unref(&p->users, TAKE_PTR(j->usage));
        *spec = j->r.spec;
        job_spec_init(&j->r.spec);
        job_free(j);
        return r;
}

int pool_set_size(Pool *p, unsigned size) {
        if (size == 0)
                return -EINVAL;
        p->config.pool_size = size;
        registry_pool_changed(p->registry, p);
        pool_schedule(p);
        return 0;
}

void pool_set_paused(Pool *p, bool paused) {
        if (p->paused == paused)
                return;
        p->paused = paused;
        registry_pool_changed(p->registry, p);
        if (!paused)
                pool_schedule(p);
}

typedef struct ShutdownContext {
        Pool *pool;
        bool keep_queued;
} ShutdownContext;

static int shutdown_one(Job *j, void *userdata) {
        ShutdownContext *c = userdata;

        if (j->pool != c->pool || job_state_is_final(j->r.state))
                return 0;
        if (j->r.state == JOB_QUEUED && !j->starting) {
                /* Kept for the next start, unless its caller will be gone by then. */
                if (!c->keep_queued || j->r.spec.cancel_on_disconnect)
                        (void) job_cancel(j);
                return 0;
        }
        /* The daemon must be gone within its unit's TimeoutStopSec whatever a job asked for. */
        if (j->r.spec.stop_timeout_usec > POOL_SHUTDOWN_STOP_TIMEOUT_USEC)
                j->r.spec.stop_timeout_usec = POOL_SHUTDOWN_STOP_TIMEOUT_USEC;
        if (c->keep_queued && !j->r.spec.cancel_on_disconnect)
                job_stop_daemon_stopping(j);
        else
                (void) job_cancel(j);
        return 0;
}

void pool_shutdown(Pool *p, bool keep_queued) {
        ShutdownContext c = { .pool = p, .keep_queued = keep_queued };

        p->shutting_down = true;
        (void) registry_foreach(p->registry, shutdown_one, &c);
        registry_counts_changed(p->registry, p);
}

bool pool_is_shutting_down(const Pool *p) {
        return p->shutting_down;
}

bool pool_is_active(const Pool *p) {
        return p->n_starting + p->n_running > 0;
}
