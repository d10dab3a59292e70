/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pool: jobs by id, the priority queue, at most pool_size running, retention of finished jobs. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "macro.h"
#include "pool.h"

extern char **environ;

/* Variables that belong to the daemon's own service manager and must never reach a job. */
static bool env_is_private(const char *e) {
        static const char *const names[] = { "NOTIFY_SOCKET=", "LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=",
                                             "WATCHDOG_" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strncmp(e, names[i], strlen(names[i])) == 0)
                        return true;
        return false;
}

static char **base_environment_new(void) {
        size_t n = 0, k = 0;
        char **l;

        for (char **e = environ; e && *e; e++)
                n++;
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return NULL;
        for (char **e = environ; e && *e; e++) {
                if (env_is_private(*e) || !strchr(*e, '='))
                        continue;
                l[k] = strdup(*e);
                if (!l[k]) {
                        strv_free(l);
                        return NULL;
                }
                k++;
        }
        return l;
}

unsigned pool_default_size(void) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (unsigned) n : 1;
}

static uint64_t now_monotonic(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

/* ---- the priority queue: a binary heap ------------------------------------------------------- */

static bool queue_before(const Job *a, const Job *b) {
        if (a->spec.priority != b->spec.priority)
                return a->spec.priority > b->spec.priority;
        return a->id < b->id;
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

static int queue_push(Pool *p, Job *j) {
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
        return 0;
}

static void queue_remove(Pool *p, Job *j) {
        size_t i = j->queue_index;
        if (i == SIZE_MAX)
                return;
        j->queue_index = SIZE_MAX;
        j->usage->n_queued--;
        p->n_queued--;
        if (i == p->n_queued)
                return;
        Job *moved = p->queue[p->n_queued];
        queue_set(p, i, moved);
        if (i > 0 && queue_before(moved, p->queue[(i - 1) / 2]))
                queue_sift_up(p, i);
        else
                queue_sift_down(p, i);
}

/* ---- jobs by id ------------------------------------------------------------------------------ */

static int slots_add(Pool *p, Job *j) {
        if (p->n_slots == p->allocated_slots) {
                size_t a = p->allocated_slots ? p->allocated_slots * 2 : 64;
                Job **s = realloc(p->slots, a * sizeof(Job *));
                if (!s)
                        return -ENOMEM;
                p->slots = s;
                p->allocated_slots = a;
        }
        if (p->n_slots == 0)
                p->first_id = j->id;
        p->slots[j->id - p->first_id] = j;
        p->n_slots = j->id - p->first_id + 1;
        p->n_jobs++;
        p->held_bytes += j->held_cost;
        return 0;
}

static void slots_remove(Pool *p, Job *j) {
        size_t lead = 0;

        p->slots[j->id - p->first_id] = NULL;
        p->n_jobs--;
        p->held_bytes -= j->held_cost;
        /* Drop released slots from the front once they are half the table, so lookups stay
         * O(1) and the table stays proportional to the jobs held. */
        while (lead < p->n_slots && !p->slots[lead])
                lead++;
        if (lead == p->n_slots) {
                p->n_slots = 0;
                return;
        }
        if (lead > 0 && lead >= p->n_slots / 2) {
                memmove(p->slots, p->slots + lead, (p->n_slots - lead) * sizeof(Job *));
                p->n_slots -= lead;
                p->first_id += lead;
                if (p->allocated_slots > 256 && p->n_slots < p->allocated_slots / 4) {
                        Job **s = realloc(p->slots, p->allocated_slots / 2 * sizeof(Job *));
                        if (s) {
                                p->slots = s;
                                p->allocated_slots /= 2;
                        }
                }
        }
}

Job *pool_find(Pool *p, uint64_t id) {
        if (p->n_slots == 0 || id < p->first_id || id - p->first_id >= p->n_slots)
                return NULL;
        return p->slots[id - p->first_id];
}

int pool_foreach(Pool *p, int (*f)(Job *j, void *userdata), void *userdata) {
        /* By id, so a callback that releases the current job does not disturb the walk. */
        for (uint64_t id = p->first_id; p->n_slots > 0 && id < p->first_id + p->n_slots; id++) {
                Job *j = pool_find(p, id);
                if (!j)
                        continue;
                int r = f(j, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- scheduling -------------------------------------------------------------------------------- */

static void pool_counts_changed(Pool *p) {
        if (p->callbacks->counts_changed)
                p->callbacks->counts_changed(p, p->userdata);
}

static void pool_check_idle(Pool *p) {
        if (!pool_is_idle(p, true))
                return;
        /* Everything is released: give what the jobs used back to the system, not just to malloc,
         * the tables sized for the busiest moment included. */
        p->queue = mfree(p->queue);
        p->allocated_queue = 0;
        p->slots = mfree(p->slots);
        p->allocated_slots = p->n_slots = 0;
        (void) malloc_trim(0);
        if (p->callbacks->idle)
                p->callbacks->idle(p, p->userdata);
}

static bool pool_user_at_limit(Pool *p, const UserUsage *u) {
        return p->config.per_user.max_running > 0 && u->n_running >= p->config.per_user.max_running;
}

static int on_schedule(sd_event_source *s, void *userdata) {
        Pool *p = userdata;

        /* Jobs of uids at their running limit, passed over this round. Not bounded: any bound lets
         * one uid's waiting jobs hide every other uid's behind them. pool_submit() does not schedule
         * for a uid at its limit, so a round runs per finished job, not per queued one. */
        _cleanup_free_ Job **held = NULL;
        size_t n_held = 0, allocated_held = 0;

        while (!p->shutting_down && p->n_running < p->config.pool_size && p->n_queued > 0) {
                Job *j = p->queue[0];
                /* A uid at its running limit waits; the next jobs of others go first. */
                if (pool_user_at_limit(p, j->usage)) {
                        if (n_held == allocated_held) {
                                size_t a = allocated_held ? allocated_held * 2 : 64;
                                Job **h = realloc(held, a * sizeof(Job *));
                                if (!h)
                                        break;
                                held = h;
                                allocated_held = a;
                        }
                        queue_remove(p, j);
                        held[n_held++] = j;
                        continue;
                }
                queue_remove(p, j);
                (void) job_start(j); /* a job that cannot start ends as failed */
        }
        for (size_t i = 0; i < n_held; i++) {
                held[i]->usage->n_queued++;
                (void) queue_push(p, held[i]); /* room is there: they were just in the queue */
        }
        pool_counts_changed(p);
        return 0;
}

static void pool_schedule(Pool *p) {
        (void) sd_event_source_set_enabled(p->schedule_source, SD_EVENT_ONESHOT);
}

static void retain_arm(Pool *p);

static int on_retain_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Pool *p = userdata;
        uint64_t now = now_monotonic();

        while (p->finished_head && p->finished_head->finished_monotonic + p->config.retain_usec <= now)
                (void) job_release(p->finished_head);
        retain_arm(p);
        return 0;
}

static void retain_arm(Pool *p) {
        if (p->config.retain_usec == 0 || !p->finished_head) {
                (void) sd_event_source_set_enabled(p->retain_source, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(p->retain_source,
                                        p->finished_head->finished_monotonic + p->config.retain_usec);
        (void) sd_event_source_set_enabled(p->retain_source, SD_EVENT_ONESHOT);
}

void pool_job_started(Pool *p, Job *j) {
        p->n_running++;
        j->usage->n_running++;
        pool_job_changed(p, j, JOB_CHANGE_STATE | JOB_CHANGE_PID | JOB_CHANGE_STARTED_AT);
}

void pool_job_changed(Pool *p, Job *j, JobChange what) {
        if (p->callbacks->job_changed)
                p->callbacks->job_changed(j, what, p->userdata);
}

void pool_job_finished(Pool *p, Job *j) {
        JobChange what = JOB_CHANGE_STATE | JOB_CHANGE_FINISHED_AT;

        if (j->queue_index != SIZE_MAX)
                queue_remove(p, j);
        if (j->started_at != 0) {
                p->n_running--;
                j->usage->n_running--;
                what |= JOB_CHANGE_PID | JOB_CHANGE_RETURNCODE;
        }
        if (j->error)
                what |= JOB_CHANGE_ERROR;

        j->finished_prev = p->finished_tail;
        j->finished_next = NULL;
        if (p->finished_tail)
                p->finished_tail->finished_next = j;
        else
                p->finished_head = j;
        p->finished_tail = j;
        p->n_finished++;
        p->n_finished_total++;

        /* Finished first: waiting callers get their answer before observers get signals. */
        if (p->callbacks->job_finished)
                p->callbacks->job_finished(j, p->userdata);
        pool_job_changed(p, j, what);

        while (p->n_finished > p->config.retain && p->finished_head)
                (void) job_release(p->finished_head);
        retain_arm(p);

        pool_schedule(p);
        pool_counts_changed(p);
        pool_check_idle(p);
}

static void pool_job_unref_usage(Pool *p, Job *j) {
        if (!j->usage)
                return;
        for (int s = 0; s < _JOB_STREAM_MAX; s++)
                j->usage->output_bytes -= j->output[s].size;
        quota_unref(&p->users, TAKE_PTR(j->usage));
}

void pool_job_removed(Pool *p, Job *j) {
        if (p->callbacks->job_removed)
                p->callbacks->job_removed(j, p->userdata);

        if (job_state_is_final(j->state)) {
                if (j->finished_prev)
                        j->finished_prev->finished_next = j->finished_next;
                else
                        p->finished_head = j->finished_next;
                if (j->finished_next)
                        j->finished_next->finished_prev = j->finished_prev;
                else
                        p->finished_tail = j->finished_prev;
                p->n_finished--;
        }
        queue_remove(p, j);
        slots_remove(p, j);
        pool_job_unref_usage(p, j);
        job_free(j);
        pool_check_idle(p);
}

/* ---- the pool ---------------------------------------------------------------------------------- */

int pool_new(sd_event *event, const PoolConfig *config, const PoolCallbacks *callbacks, void *userdata,
             Pool **ret) {
        static const PoolCallbacks no_callbacks = {};
        Pool *p;
        int r;

        p = calloc(1, sizeof(Pool));
        if (!p)
                return -ENOMEM;
        p->null_fd = -EBADF;
        p->event = sd_event_ref(event);
        p->config = *config;
        if (p->config.pool_size == 0)
                p->config.pool_size = pool_default_size();
        p->callbacks = callbacks ?: &no_callbacks;
        p->userdata = userdata;
        p->next_id = 1;
        p->null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (p->null_fd < 0) {
                r = -errno;
                goto fail;
        }

        p->base_environment = base_environment_new();
        if (!p->base_environment) {
                r = -ENOMEM;
                goto fail;
        }
        r = sd_event_add_defer(event, &p->schedule_source, on_schedule, p);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(p->schedule_source, SD_EVENT_OFF);
        r = sd_event_add_time(event, &p->retain_source, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_SEC,
                              on_retain_timer, p);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(p->retain_source, SD_EVENT_OFF);

        *ret = p;
        return 0;
fail:
        pool_free(p);
        return r;
}

static int free_one(Job *j, void *userdata) {
        Pool *p = userdata;

        /* Nothing may be left running unwatched once the daemon lets go of it. */
        job_kill_tree(j);
        if (p->callbacks->job_removed)
                p->callbacks->job_removed(j, p->userdata);
        j->queue_index = SIZE_MAX;
        p->slots[j->id - p->first_id] = NULL;
        pool_job_unref_usage(p, j);
        job_free(j);
        return 0;
}

Pool *pool_free(Pool *p) {
        if (!p)
                return NULL;
        (void) pool_foreach(p, free_one, p);
        free(p->slots);
        free(p->queue);
        strv_free(p->base_environment);
        if (p->null_fd >= 0)
                (void) close(p->null_fd);
        cgroup_root_free(p->cgroup);
        quota_free_all(&p->users);
        sd_event_source_disable_unref(p->schedule_source);
        sd_event_source_disable_unref(p->retain_source);
        sd_event_unref(p->event);
        free(p);
        return NULL;
}

static size_t job_spec_cost(const JobSpec *spec) {
        size_t n = POOL_JOB_FIXED_COST + (spec->label ? strlen(spec->label) : 0);
        for (char **a = spec->argv; a && *a; a++)
                n += strlen(*a) + 1;
        return n;
}

int pool_submit(Pool *p, JobSpec *spec, Job **ret) {
        size_t cost = job_spec_cost(spec);
        Job *j;
        int r;

        if (p->shutting_down)
                return POOL_ERROR_SHUTTING_DOWN;
        if (p->n_queued >= p->config.max_queued)
                return POOL_ERROR_QUEUE_FULL;
        if (spec->memory_max > 0 && !(p->cgroup && p->cgroup->has_memory))
                return POOL_ERROR_NO_MEMORY_CONTROLLER;
        /* Everything held must still fit in one bus message (GetManagedObjects lists it all):
         * finished jobs make room first, oldest first, as retention would. */
        if (p->config.max_held_bytes > 0) {
                while (p->held_bytes + cost > p->config.max_held_bytes && p->finished_head)
                        (void) job_release(p->finished_head);
                if (p->held_bytes + cost > p->config.max_held_bytes)
                        return POOL_ERROR_HELD_LIMIT;
        }
        UserUsage *u = quota_ref(&p->users, spec->owner);
        if (!u)
                return -ENOMEM;
        if (p->config.per_user.max_queued > 0 && u->n_queued >= p->config.per_user.max_queued) {
                quota_unref(&p->users, u);
                return POOL_ERROR_USER_QUEUE_FULL;
        }
        if (spec->output_limit == JOB_OUTPUT_LIMIT_UNSET)
                spec->output_limit = p->config.output_limit ?: JOB_OUTPUT_LIMIT_DEFAULT;

        j = job_new(p, p->next_id, spec);
        if (!j) {
                quota_unref(&p->users, u);
                return -ENOMEM;
        }
        j->queue_index = SIZE_MAX;
        j->usage = u;
        j->held_cost = cost;
        r = slots_add(p, j);
        if (r < 0)
                goto fail;
        r = queue_push(p, j);
        if (r < 0) {
                slots_remove(p, j);
                goto fail;
        }
        u->n_queued++;
        p->next_id++;

        if (p->callbacks->job_added)
                p->callbacks->job_added(j, p->userdata);
        if (!pool_user_at_limit(p, u))
                pool_schedule(p);
        pool_counts_changed(p);
        *ret = j;
        return 0;
fail:
        /* Hand the spec back so the caller still owns what it passed in. */
        quota_unref(&p->users, TAKE_PTR(j->usage));
        *spec = j->spec;
        job_spec_init(&j->spec);
        job_free(j);
        return r;
}

int pool_set_size(Pool *p, unsigned size) {
        if (size == 0)
                return -EINVAL;
        p->config.pool_size = size;
        pool_schedule(p);
        return 0;
}

static int cancel_running(Job *j, void *userdata) {
        if (j->state != JOB_RUNNING)
                return 0;
        /* The daemon must be gone within its unit's TimeoutStopSec whatever a job asked for. */
        if (j->spec.stop_timeout_usec > POOL_SHUTDOWN_STOP_TIMEOUT_USEC)
                j->spec.stop_timeout_usec = POOL_SHUTDOWN_STOP_TIMEOUT_USEC;
        (void) job_cancel(j);
        return 0;
}

void pool_shutdown(Pool *p) {
        p->shutting_down = true;
        while (p->n_queued > 0)
                (void) job_cancel(p->queue[0]);
        (void) pool_foreach(p, cancel_running, NULL);
        pool_counts_changed(p);
}

bool pool_is_idle(Pool *p, bool include_retained) {
        if (p->n_running > 0 || p->n_queued > 0)
                return false;
        return !include_retained || p->n_jobs == 0;
}
