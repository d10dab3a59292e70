/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A pool: a priority queue, at most `size` jobs running at once, per-uid limits, and one executor that
 * runs its jobs. */
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
        return (unsigned) p->n_queued;
}

/* ---- the priority queue: a binary heap --------------------------------------------------------------- */

static bool queue_before(const Job *a, const Job *b) {
        if (a->r.spec.priority != b->r.spec.priority)
                return a->r.spec.priority > b->r.spec.priority;
        return a->r.id < b->r.id;
}

static int queue_compare(const void *a, const void *b) {
        const Job *x = *(Job *const *) a, *y = *(Job *const *) b;
        return queue_before(x, y) ? -1 : queue_before(y, x) ? 1 : 0;
}

unsigned pool_queue_position(Pool *p, Job *j) {
        _cleanup_free_ Job **sorted = NULL;

        if (j->queue_index == SIZE_MAX)
                return 0;
        if (p->positions_generation != p->queue_generation) {
                /* The heap is in no order a position can be read from: sort a copy, once per change. */
                sorted = malloc(p->n_queued * sizeof(Job *));
                if (!sorted)
                        return (unsigned) p->n_queued - 1; /* at worst behind all the others */
                memcpy(sorted, p->queue, p->n_queued * sizeof(Job *));
                qsort(sorted, p->n_queued, sizeof(Job *), queue_compare);
                for (size_t i = 0; i < p->n_queued; i++)
                        sorted[i]->queue_ahead = i;
                p->positions_generation = p->queue_generation;
        }
        return (unsigned) MIN(j->queue_ahead, (size_t) UINT_MAX);
}

static void queue_set(Pool *p, size_t i, Job *j) {
        p->queue[i] = j;
        j->queue_index = i;
}

static void queue_sift_up(Pool *p, size_t i) {
        Job *j = p->queue[i];
        while (i > 0) {
                size_t parent = (i - 1) / 2;
                if (!queue_before(j, p->queue[parent]))
                        break;
                queue_set(p, i, p->queue[parent]);
                i = parent;
        }
        queue_set(p, i, j);
}

static void queue_sift_down(Pool *p, size_t i) {
        Job *j = p->queue[i];
        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= p->n_queued)
                        break;
                if (c + 1 < p->n_queued && queue_before(p->queue[c + 1], p->queue[c]))
                        c++;
                if (!queue_before(p->queue[c], j))
                        break;
                queue_set(p, i, p->queue[c]);
                i = c;
        }
        queue_set(p, i, j);
}

/* Queues j; the owner's queued count goes with it, as queue_remove() takes it back. */
static int queue_push(Pool *p, Job *j) {
        assert(j->queue_index == SIZE_MAX);

        if (p->n_queued == p->allocated_queue) {
                size_t a = p->allocated_queue ? p->allocated_queue * 2 : 64;
                Job **q = realloc(p->queue, a * sizeof(Job *));
                if (!q)
                        return -ENOMEM;
                p->queue = q;
                p->allocated_queue = a;
        }
        queue_set(p, p->n_queued++, j);
        queue_sift_up(p, p->n_queued - 1);
        p->queue_generation++;
        j->usage->n_queued++;
        /* Passed fds are held while the job waits; starting hands them to the job's processes. */
        j->queued_fds = job_spec_count_fds(&j->r.spec);
        j->usage->n_fds += j->queued_fds;
        p->n_fds += j->queued_fds;
        return 0;
}

static void queue_remove(Pool *p, Job *j) {
        size_t i = j->queue_index;
        Job *moved;

        if (i == SIZE_MAX)
                return;
        assert(i < p->n_queued && p->queue[i] == j);
        j->queue_index = SIZE_MAX;
        p->queue_generation++;
        j->usage->n_queued--;
        j->usage->n_fds -= j->queued_fds;
        p->n_fds -= j->queued_fds;
        j->queued_fds = 0;
        p->n_queued--;
        if (i == p->n_queued)
                return;
        moved = p->queue[p->n_queued];
        queue_set(p, i, moved);
        if (i > 0 && queue_before(moved, p->queue[(i - 1) / 2]))
                queue_sift_up(p, i);
        else
                queue_sift_down(p, i);
}

/* ---- scheduling -------------------------------------------------------------------------------------- */

static bool pool_user_at_limit(Pool *p, const UserUsage *u) {
        return p->config.per_user.max_running > 0 && u->n_running >= p->config.per_user.max_running;
}

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
        (void) queue_push(p, j); /* room is there: it was just in it */
}

static int on_schedule(sd_event_source *s, void *userdata) {
        Pool *p = userdata;
        /* Jobs of uids at their running limit, passed over this round. Not bounded: any bound lets
         * one uid's waiting jobs hide every other uid's behind them. pool_submit() does not schedule
         * for a uid at its limit, so a round runs per finished job, not per queued one. */
        _cleanup_free_ Job **held = NULL, **starting = NULL;
        size_t n_held = 0, allocated_held = 0, n_starting = 0, allocated_starting = 0;
        _cleanup_free_ uint64_t *ids = NULL;

        while (!p->shutting_down && p->n_starting + p->n_running < p->config.pool_size && p->n_queued > 0) {
                Job *j = p->queue[0];

                queue_remove(p, j);
                /* A uid at its running limit waits; the next jobs of others go first. */
                if (pool_user_at_limit(p, j->usage)) {
                        if (job_array_add(&held, &n_held, &allocated_held, j) < 0) {
                                (void) queue_push(p, j); /* room is there: it was just in it */
                                break;
                        }
                        continue;
                }
                if (job_array_add(&starting, &n_starting, &allocated_starting, j) < 0) {
                        (void) queue_push(p, j);
                        break;
                }
                p->n_starting++;
                j->usage->n_running++;
                job_mark_starting(j);
        }
        for (size_t i = 0; i < n_held; i++)
                (void) queue_push(p, held[i]); /* room is there: they were just in the queue */

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
                break;
        case JOB_PHASE_RUNNING:
                assert(p->n_running > 0);
                p->n_running--;
                j->usage->n_running--;
                break;
        case JOB_PHASE_STALE:
                break; /* read back from the store: it never had a slot */
        }
        if (j->r.started_at != 0)
                what |= JOB_CHANGE_PID | JOB_CHANGE_RETURNCODE | JOB_CHANGE_USAGE;
        if (j->r.reason.kind != JOB_REASON_NONE)
                what |= JOB_CHANGE_ERROR;

        /* Nothing queued or running: the queue sized for the busiest moment goes back. */
        if (p->n_queued == 0 && p->n_starting + p->n_running == 0) {
                p->queue = mfree(p->queue);
                p->allocated_queue = 0;
        }

        registry_job_finished(p->registry, j, what);
        pool_schedule(p);
        registry_counts_changed(p->registry, p);
        registry_check_idle(p->registry);
}

void pool_job_detach(Pool *p, Job *j) {
        queue_remove(p, j);
        if (!j->usage)
                return;
        for (int s = 0; s < _JOB_STREAM_MAX; s++)
                j->usage->output_bytes -= j->r.output[s].size;
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
        r = queue_push(p, j);
        if (r < 0)
                return r;
        pool_schedule(p);
        return 0;
}

void pool_job_resumed(Pool *p, Job *j) {
        assert(j->r.state == JOB_RUNNING && j->usage);
        p->n_running++;
        j->usage->n_running++;
}

int pool_job_requeue(Pool *p, Job *j) {
        int r;

        assert(j->r.state == JOB_QUEUED && j->usage);
        r = queue_push(p, j);
        if (r < 0)
                return r;
        pool_schedule(p);
        return 0;
}

/* ---- the pool ---------------------------------------------------------------------------------------- */

int pool_new(sd_event *event, Registry *registry, const PoolConfig *config, Executor *executor, Pool **ret) {
        Pool *p;
        int r;

        assert(event && registry && config && executor && ret);

        p = calloc(1, sizeof(Pool));
        if (!p) {
                executor_free(executor);
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
        free(p->queue);
        quota_free_all(&p->users);
        executor_free(p->executor);
        sd_event_source_disable_unref(p->schedule_source);
        sd_event_unref(p->event);
        free(p);
        return NULL;
}

size_t job_spec_cost(const JobSpec *spec) {
        size_t n = REGISTRY_JOB_FIXED_COST + (spec->label ? strlen(spec->label) : 0) +
                   (spec->cwd ? strlen(spec->cwd) : 0);
        for (char **a = spec->argv; a && *a; a++)
                n += strlen(*a) + 1;
        return n;
}

int pool_validate(Pool *p, const JobSpec *spec, JobSpecField *ret_field) {
        if (!p->executor->vtable->validate)
                return 0;
        return p->executor->vtable->validate(p->executor, spec, ret_field);
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
        if (p->n_queued >= p->config.max_queued)
                return POOL_ERROR_QUEUE_FULL;
        if (pool_validate(p, spec, &field) < 0)
                return POOL_ERROR_NOT_SUPPORTED;
        /* Everything held must still fit in one bus message (GetManagedObjects lists it all). */
        r = registry_make_room(p->registry, cost);
        if (r < 0)
                return r;
        u = quota_ref(&p->users, spec->owner);
        if (!u)
                return -ENOMEM;
        if (p->config.per_user.max_queued > 0 && u->n_queued >= p->config.per_user.max_queued) {
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

        j = job_new(p, spec, userdata);
        if (!j) {
                quota_unref(&p->users, u);
                return -ENOMEM;
        }
        j->usage = u;
        r = registry_add(p->registry, j, cost);
        if (r < 0)
                goto fail;
        r = queue_push(p, j);
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
        registry_set_setting(p->registry, STORE_SETTING_POOL_SIZE, size);
        pool_schedule(p);
        return 0;
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

bool pool_is_active(const Pool *p) {
        return p->n_starting + p->n_running > 0;
}
