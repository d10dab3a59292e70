/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The job state machine: queued, starting, running, stopping, finished; its timeout and the kill after
 * the stop timeout; what its executor reports. It knows no fds, pids or cgroups: those are the
 * executor's (executor.h). */
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "job-internal.h"
#include "macro.h"
#include "pool-internal.h"
#include "registry-internal.h"
#include "spool.h"

static uint64_t now_usec(clockid_t clock) {
        struct timespec ts;
        (void) clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

/* ---- the spec -------------------------------------------------------------------------------------- */

void job_spec_init(JobSpec *spec) {
        *spec = (JobSpec) {
                .stop_timeout_usec = JOB_STOP_TIMEOUT_DEFAULT_USEC,
                .output_limit = JOB_OUTPUT_LIMIT_UNSET,
                .fds = { -EBADF, -EBADF, -EBADF },
        };
}

void job_spec_close_fds(JobSpec *spec) {
        for (int i = 0; i < 3; i++)
                closep(&spec->fds[i]);
}

unsigned job_spec_count_fds(const JobSpec *spec) {
        unsigned n = 0;
        for (int i = 0; i < 3; i++)
                n += spec->fds[i] >= 0;
        return n;
}

void job_spec_release_input(JobSpec *spec) {
        if (spec->input_free)
                spec->input_free(spec->input_userdata);
        spec->input_free = NULL;
        spec->input_userdata = NULL;
        spec->input = NULL;
        spec->input_size = 0;
}

void job_spec_done(JobSpec *spec) {
        strv_free(spec->argv);
        strv_free(spec->environment);
        free(spec->cwd);
        free(spec->label);
        free(spec->pool);
        free(spec->after);
        free(spec->user.groups);
        job_spec_close_fds(spec);
        job_spec_release_input(spec);
        job_spec_init(spec);
}

int job_spec_copy(const JobSpec *from, JobSpec *to) {
        JobSpec c;

        assert(job_spec_count_fds(from) == 0 && !from->input);
        c = *from;
        c.argv = strv_copy(from->argv);
        c.environment = from->environment ? strv_copy(from->environment) : NULL;
        c.cwd = from->cwd ? strdup(from->cwd) : NULL;
        c.label = from->label ? strdup(from->label) : NULL;
        c.pool = from->pool ? strdup(from->pool) : NULL;
        c.after = from->n_after > 0 ? memdup(from->after, from->n_after * sizeof(uint64_t)) : NULL;
        c.user.groups = from->user.n_groups > 0
                                ? memdup(from->user.groups, from->user.n_groups * sizeof(gid_t))
                                : NULL;
        if (!c.argv || (from->environment && !c.environment) || (from->cwd && !c.cwd) ||
            (from->label && !c.label) || (from->pool && !c.pool) || (from->n_after > 0 && !c.after) ||
            (from->user.n_groups > 0 && !c.user.groups)) {
                job_spec_done(&c);
                return -ENOMEM;
        }
        *to = c;
        return 0;
}

/* ---- the record ------------------------------------------------------------------------------------ */

const JobRecord *job_get_record(const Job *j) {
        return &j->r;
}

Pool *job_get_pool(const Job *j) {
        return j->pool;
}

void *job_get_userdata(const Job *j) {
        return j->userdata;
}

void job_set_userdata(Job *j, void *userdata) {
        j->userdata = userdata;
}

static Executor *job_executor(Job *j) {
        return pool_get_executor(j->pool);
}

static void close_source(sd_event_source **s) {
        *s = sd_event_source_disable_unref(*s);
}

Job *job_new(Pool *pool, JobSpec *spec, void *userdata) {
        Job *j = calloc(1, sizeof(Job));

        if (!j)
                return NULL;
        j->pool = pool;
        j->r.spec = *spec;
        job_spec_init(spec); /* taken over */
        j->r.state = JOB_QUEUED;
        j->r.submitted_at = now_usec(CLOCK_REALTIME);
        j->r.attempt = 1;
        j->r.wait_until_usec = j->r.spec.not_before_usec;
        j->queue_index = SIZE_MAX;
        j->output_fd[JOB_STDOUT] = j->output_fd[JOB_STDERR] = -EBADF;
        j->userdata = userdata;
        return j;
}

Job *job_new_loaded(Pool *pool, JobRecord *record) {
        Job *j = calloc(1, sizeof(Job));

        if (!j)
                return NULL;
        j->pool = pool;
        j->r = *record;
        job_spec_init(&record->spec); /* taken over */
        record->reason.detail = NULL;
        record->external_id = record->node = NULL;
        j->r.pid = 0;
        j->queue_index = SIZE_MAX;
        j->output_fd[JOB_STDOUT] = j->output_fd[JOB_STDERR] = -EBADF;
        j->stale = j->r.state == JOB_RUNNING; /* it ran when the daemon stopped: see job_finish_stale() */
        return j;
}

/* The executor is done with the job: what it kept for it goes. */
static void job_release_runtime(Job *j) {
        Executor *e;

        if (!j->runtime)
                return;
        e = job_executor(j);
        e->vtable->done(e, TAKE_PTR(j->runtime));
}

Job *job_free(Job *j) {
        if (!j)
                return NULL;
        close_source(&j->timeout_source);
        close_source(&j->kill_source);
        job_release_runtime(j);
        for (int s = 0; s < _JOB_STREAM_MAX; s++)
                closep(&j->output_fd[s]);
        job_spec_done(&j->r.spec);
        free(j->r.reason.detail);
        free(j->r.external_id);
        free(j->r.node);
        free(j);
        return NULL;
}

/* ---- ending ---------------------------------------------------------------------------------------- */

static JobPhase job_phase(const Job *j) {
        if (j->stale)
                return JOB_PHASE_STALE;
        if (j->r.state == JOB_RUNNING)
                return JOB_PHASE_RUNNING;
        return j->starting ? JOB_PHASE_STARTING : JOB_PHASE_QUEUED;
}

static void job_finish(Job *j, JobState state) {
        JobPhase phase = job_phase(j);

        assert(!job_state_is_final(j->r.state));
        assert(job_state_is_final(state));

        if (j->r.paused) {
                /* Something outside ended it while it was paused (a SIGKILL, say). */
                j->r.paused = false;
                j->timeout_left = 0;
                pool_job_changed(j->pool, j, JOB_CHANGE_PAUSED);
        }
        j->starting = false;
        j->stale = false;
        j->r.state = state;
        j->r.pid = 0;
        j->r.finished_at = now_usec(CLOCK_REALTIME);
        j->finished_monotonic = now_usec(CLOCK_MONOTONIC);
        /* A finished job holds no fd and no event source: retained jobs would otherwise keep them, and
         * every spawn would close them all again before exec. */
        close_source(&j->timeout_source);
        close_source(&j->kill_source);
        job_release_runtime(j);
        for (int s = 0; s < _JOB_STREAM_MAX; s++)
                closep(&j->output_fd[s]);
        job_spec_close_fds(&j->r.spec);
        job_spec_release_input(&j->r.spec);
        pool_job_finished(j->pool, j, phase);
}

void job_finish_unstarted(Job *j, JobReasonKind kind) {
        assert(j->r.state == JOB_QUEUED);
        j->r.reason.kind = kind;
        job_finish(j, kind == JOB_REASON_CANCEL_QUEUED || kind == JOB_REASON_CANCEL ? JOB_CANCELLED
                                                                                    : JOB_FAILED);
}

void job_fail_dependency(Job *j, JobReason reason) {
        assert(j->r.state == JOB_QUEUED && reason.kind == JOB_REASON_DEPENDENCY);
        free(j->r.reason.detail);
        j->r.reason = reason;
        job_finish(j, JOB_FAILED);
}

void job_finish_stale(Job *j, JobReasonKind kind) {
        assert(j->stale);
        j->r.reason = (JobReason) { .kind = kind };
        job_finish(j, kind == JOB_REASON_CALLER_GONE ? JOB_CANCELLED : JOB_FAILED);
}

/* ---- stopping -------------------------------------------------------------------------------------- */

static int on_kill_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Job *j = userdata;
        Executor *e = job_executor(j);

        (void) e->vtable->stop(e, j->runtime, EXECUTOR_STOP_KILL);
        return 0;
}

/* Asks the running job to stop, and kills it after its stop timeout. Returns false if it was being
 * stopped already: the first reason stands. */
static bool job_stop(Job *j, JobReason reason) {
        Executor *e = job_executor(j);

        assert(j->r.state == JOB_RUNNING);
        assert(reason.kind != JOB_REASON_NONE);

        if (j->r.reason.kind != JOB_REASON_NONE) {
                free(reason.detail);
                return false;
        }
        j->r.reason = reason;
        close_source(&j->timeout_source);
        (void) e->vtable->stop(e, j->runtime, EXECUTOR_STOP_TERMINATE);
        if (j->r.paused) {
                /* The stop thawed it, so that it acts on its SIGTERM: it is no longer paused. */
                j->r.paused = false;
                j->timeout_left = 0;
                pool_job_changed(j->pool, j, JOB_CHANGE_PAUSED);
        }
        if (j->r.spec.stop_timeout_usec == 0) {
                (void) e->vtable->stop(e, j->runtime, EXECUTOR_STOP_KILL);
                return true;
        }
        /* Without the timer the job could outlive its stop timeout: kill it now instead. */
        if (sd_event_add_time_relative(pool_get_event(j->pool), &j->kill_source, CLOCK_MONOTONIC,
                                       j->r.spec.stop_timeout_usec, 0, on_kill_timer, j) < 0)
                (void) e->vtable->stop(e, j->runtime, EXECUTOR_STOP_KILL);
        return true;
}

static int on_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        Job *j = userdata;

        if (job_stop(j, (JobReason) { .kind = JOB_REASON_TIMEOUT }))
                pool_job_changed(j->pool, j, JOB_CHANGE_ERROR);
        return 0;
}

int job_cancel(Job *j) {
        if (job_state_is_final(j->r.state))
                return JOB_ERROR_NOT_RUNNING;
        if (j->r.state == JOB_QUEUED && !j->starting) {
                job_finish_unstarted(j, JOB_REASON_CANCEL_QUEUED);
                return 0;
        }
        if (j->starting) {
                /* Its executor has not said yet whether it runs: stop it once it does. */
                j->stop_pending = JOB_REASON_CANCEL;
                return 0;
        }
        if (job_stop(j, (JobReason) { .kind = JOB_REASON_CANCEL }))
                pool_job_changed(j->pool, j, JOB_CHANGE_ERROR);
        return 0;
}

void job_stop_daemon_stopping(Job *j) {
        if (j->starting) {
                j->stop_pending = JOB_REASON_DAEMON_STOPPED;
                return;
        }
        if (job_stop(j, (JobReason) { .kind = JOB_REASON_DAEMON_STOPPED }))
                pool_job_changed(j->pool, j, JOB_CHANGE_ERROR);
}

int job_kill(Job *j, int sig) {
        Executor *e;

        if (sig <= 0 || sig >= _NSIG)
                return -EINVAL;
        if (j->r.state != JOB_RUNNING)
                return JOB_ERROR_NOT_RUNNING;
        /* SIGCONT would let a paused job go on behind Paused's back: it resumes it. */
        if (sig == SIGCONT && j->r.paused)
                return job_resume(j);
        e = job_executor(j);
        return e->vtable->signal(e, j->runtime, sig);
}

int job_pause(Job *j) {
        Executor *e;
        uint64_t at, now;
        int r;

        if (j->r.state != JOB_RUNNING)
                return JOB_ERROR_NOT_RUNNING;
        if (j->r.reason.kind != JOB_REASON_NONE)
                return JOB_ERROR_STOPPING;
        if (j->r.paused)
                return 0;
        e = job_executor(j);
        if (!e->vtable->pause)
                return -EOPNOTSUPP;
        r = e->vtable->pause(e, j->runtime);
        if (r < 0)
                return r;
        j->r.paused = true;
        /* Paused time does not count toward the timeout: what is left of it waits for job_resume(). */
        if (j->timeout_source && sd_event_source_get_time(j->timeout_source, &at) >= 0 &&
            sd_event_now(pool_get_event(j->pool), CLOCK_MONOTONIC, &now) >= 0)
                j->timeout_left = at > now ? at - now : 1;
        close_source(&j->timeout_source);
        pool_job_changed(j->pool, j, JOB_CHANGE_PAUSED);
        return 0;
}

int job_resume(Job *j) {
        Executor *e;
        JobChange what = JOB_CHANGE_PAUSED;
        int r;

        if (j->r.state != JOB_RUNNING)
                return JOB_ERROR_NOT_RUNNING;
        if (!j->r.paused)
                return 0;
        e = job_executor(j);
        r = e->vtable->resume(e, j->runtime);
        if (r < 0)
                return r;
        j->r.paused = false;
        if (j->timeout_left > 0) {
                r = sd_event_add_time_relative(pool_get_event(j->pool), &j->timeout_source, CLOCK_MONOTONIC,
                                               j->timeout_left, 0, on_timeout, j);
                j->timeout_left = 0;
                /* It could run past its timeout unseen: stop it rather than leave it so. */
                if (r < 0 && job_stop(j, (JobReason) { .kind = JOB_REASON_LOST, .error = -r }))
                        what |= JOB_CHANGE_ERROR;
        }
        pool_job_changed(j->pool, j, what);
        return 0;
}

void job_abandon(Job *j) {
        Executor *e;

        if (j->r.state != JOB_RUNNING)
                return;
        e = job_executor(j);
        (void) e->vtable->stop(e, j->runtime, EXECUTOR_STOP_KILL);
}

int job_release(Job *j) {
        if (!job_state_is_final(j->r.state))
                return JOB_ERROR_NOT_FINISHED;
        registry_release(pool_get_registry(j->pool), j);
        return 0;
}

int job_release_output(Job *j) {
        Registry *registry = pool_get_registry(j->pool);

        if (!job_state_is_final(j->r.state))
                return JOB_ERROR_NOT_FINISHED;
        spool_remove(registry_get_spool(registry), j->r.id);
        for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                JobOutput *o = &j->r.output[s];
                if (j->usage)
                        j->usage->output_bytes -= o->size;
                o->size = 0;
                o->released = true;
        }
        registry_job_dirty(registry, j);
        return 0;
}

static uint64_t job_usage(Job *j, bool memory) {
        Executor *e;
        uint64_t cpu, mem;

        if (j->r.state == JOB_RUNNING && j->runtime) {
                e = job_executor(j);
                if (e->vtable->usage && e->vtable->usage(e, j->runtime, &cpu, &mem) >= 0)
                        return memory ? mem : cpu;
        }
        return memory ? j->r.memory_peak : j->r.cpu_usage_usec;
}

uint64_t job_cpu_usage(Job *j) {
        return job_usage(j, false);
}

uint64_t job_memory_peak(Job *j) {
        return job_usage(j, true);
}

/* ---- starting -------------------------------------------------------------------------------------- */

void job_mark_starting(Job *j) {
        assert(j->r.state == JOB_QUEUED && !j->starting);
        j->starting = true;
        registry_job_dirty(pool_get_registry(j->pool), j);
}

void job_start(Job *j) {
        Executor *e = job_executor(j);
        int r;

        assert(j->r.state == JOB_QUEUED);
        assert(j->starting && !j->runtime);

        r = e->vtable->start(e, j, j->r.id, &j->r.spec, &j->runtime);
        if (r < 0) {
                assert(!j->runtime);
                j->r.reason = (JobReason) { .kind = JOB_REASON_START_FAILED, .error = -r };
                job_finish(j, JOB_FAILED);
        }
}

/* ---- across a re-exec ---------------------------------------------------------------------------- */

/* The input not yet released, in a memfd of its own: the memory behind it (a bus message) does not
 * outlive the image. */
static int input_memfd(const void *data, size_t size, int *ret) {
        _cleanup_close_ int fd = memfd_create("procpoold-input", MFD_CLOEXEC);
        size_t done = 0;

        if (fd < 0)
                return -errno;
        while (done < size) {
                ssize_t k = write(fd, (const char *) data + done, size - done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t) k;
        }
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        *ret = TAKE_FD(fd);
        return 0;
}

static int input_read(int fd, size_t size, void **ret) {
        _cleanup_free_ char *buf = malloc(size ?: 1);
        size_t done = 0;

        if (!buf)
                return -ENOMEM;
        while (done < size) {
                ssize_t k = read(fd, buf + done, size - done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EBADMSG;
                done += (size_t) k;
        }
        *ret = TAKE_PTR(buf);
        return 0;
}

/* An armed timer's deadline, as key=<CLOCK_MONOTONIC usec>; nothing for one that is off. */
static int serialize_timer(Serializer *s, const char *key, sd_event_source *source) {
        int enabled = SD_EVENT_OFF, r;
        uint64_t usec;

        if (!source)
                return 0;
        r = sd_event_source_get_enabled(source, &enabled);
        if (r < 0)
                return r;
        if (enabled == SD_EVENT_OFF)
                return 0;
        r = sd_event_source_get_time(source, &usec);
        if (r < 0)
                return r;
        return serialize_itemf(s, key, "%" PRIu64, usec);
}

static int job_serialize_running(Job *j, Serializer *s) {
        Executor *e = job_executor(j);
        int r;

        if (!e->vtable->serialize || !e->vtable->deserialize || !e->vtable->coldplug)
                return -EOPNOTSUPP;
        r = serialize_itemf(s, "pid", "%d", (int) j->r.pid);
        if (r < 0)
                return r;
        r = serialize_itemf(s, "returncode", "%d", j->r.returncode);
        if (r < 0)
                return r;
        r = serialize_itemf(s, "reason", "%d %d %" PRIu64 " %d", j->r.reason.kind, j->r.reason.stream,
                            j->r.reason.limit, j->r.reason.error);
        if (r < 0)
                return r;
        for (int i = 0; i < _JOB_STREAM_MAX; i++) {
                const JobOutput *o = &j->r.output[i];
                r = serialize_itemf(s, i == JOB_STDOUT ? "stdout" : "stderr", "%" PRIu64 " %d %d", o->size,
                                    o->truncated, o->incomplete);
                if (r < 0)
                        return r;
        }
        r = serialize_timer(s, "timeout", j->timeout_source);
        if (r < 0)
                return r;
        r = serialize_timer(s, "kill", j->kill_source);
        if (r < 0)
                return r;
        if (j->r.paused) {
                r = serialize_itemf(s, "paused", "%" PRIu64, j->timeout_left);
                if (r < 0)
                        return r;
        }
        s->prefix = e->vtable->name;
        r = e->vtable->serialize(e, j->runtime, s);
        s->prefix = NULL;
        return r;
}

int job_serialize(Job *j, Serializer *s) {
        int r;

        assert(!job_state_is_final(j->r.state));

        if (j->starting)
                return -EBUSY;
        r = serialize_itemf(s, "job", "%" PRIu64, j->r.id);
        if (r < 0)
                return r;
        r = serialize_item(s, "state", j->r.state == JOB_RUNNING ? "running" : "queued");
        if (r < 0)
                return r;
        if (j->r.spec.input && j->r.spec.input_size > 0) {
                int fd = -EBADF;

                r = input_memfd(j->r.spec.input, j->r.spec.input_size, &fd);
                if (r < 0)
                        return r;
                r = serialize_fd(s, "input-fd", fd, true);
                if (r < 0)
                        return r;
                r = serialize_itemf(s, "input-size", "%zu", j->r.spec.input_size);
                if (r < 0)
                        return r;
        }
        if (j->r.state == JOB_RUNNING)
                r = job_serialize_running(j, s);
        else
                for (int i = 0; i < 3 && r >= 0; i++) {
                        char key[8];
                        if (j->r.spec.fds[i] < 0)
                                continue;
                        snprintf(key, sizeof(key), "fd%d", i);
                        r = serialize_fd(s, key, j->r.spec.fds[i], false);
                }
        if (r < 0)
                return r;
        return serialize_item(s, "end-job", "");
}

/* What job_deserialize() reads before it changes anything. */
typedef struct Taken {
        bool running;
        pid_t pid;
        int returncode;
        JobReason reason;
        JobOutput output[_JOB_STREAM_MAX];
        uint64_t timeout_at, kill_at;
        bool paused;
        uint64_t timeout_left;
        int fds[3];
        int input_fd;
        uint64_t input_size;
        bool has_input_size;
} Taken;

static int parse_output(const char *value, JobOutput *ret) {
        unsigned long long size;
        int truncated, incomplete, n = 0;

        if (sscanf(value, "%llu %d %d%n", &size, &truncated, &incomplete, &n) != 3 || value[n] != '\0' ||
            (truncated | incomplete) & ~1)
                return -EBADMSG;
        *ret = (JobOutput) { .size = size, .truncated = truncated, .incomplete = incomplete };
        return 0;
}

static int parse_reason(const char *value, JobReason *ret) {
        unsigned long long limit;
        int kind, stream, error, n = 0;

        if (sscanf(value, "%d %d %llu %d%n", &kind, &stream, &limit, &error, &n) != 4 || value[n] != '\0' ||
            kind < 0 || kind >= _JOB_REASON_MAX || stream < 0 || stream >= _JOB_STREAM_MAX || error < 0)
                return -EBADMSG;
        *ret = (JobReason) { .kind = kind, .stream = stream, .limit = limit, .error = error };
        return 0;
}

static int take_item(Taken *t, const SerializedItem *item, Deserializer *d) {
        int64_t v;
        int r;

        if (strcmp(item->key, "state") == 0) {
                if (strcmp(item->value, "running") != 0 && strcmp(item->value, "queued") != 0)
                        return -EBADMSG;
                t->running = strcmp(item->value, "running") == 0;
                return 0;
        }
        if (strcmp(item->key, "pid") == 0) {
                r = deserialize_int(item->value, 0, INT32_MAX, &v);
                t->pid = (pid_t) v;
                return r;
        }
        if (strcmp(item->key, "returncode") == 0) {
                r = deserialize_int(item->value, INT32_MIN, INT32_MAX, &v);
                t->returncode = (int) v;
                return r;
        }
        if (strcmp(item->key, "reason") == 0)
                return parse_reason(item->value, &t->reason);
        if (strcmp(item->key, "stdout") == 0)
                return parse_output(item->value, &t->output[JOB_STDOUT]);
        if (strcmp(item->key, "stderr") == 0)
                return parse_output(item->value, &t->output[JOB_STDERR]);
        if (strcmp(item->key, "timeout") == 0 || strcmp(item->key, "kill") == 0) {
                r = deserialize_int(item->value, 1, INT64_MAX, &v);
                *(item->key[0] == 't' ? &t->timeout_at : &t->kill_at) = (uint64_t) v;
                return r;
        }
        if (strcmp(item->key, "paused") == 0) {
                r = deserialize_int(item->value, 0, INT64_MAX, &v);
                t->paused = true;
                t->timeout_left = (uint64_t) v;
                return r;
        }
        if (strcmp(item->key, "input-size") == 0) {
                r = deserialize_int(item->value, 0, SSIZE_MAX, &v);
                t->input_size = (uint64_t) v;
                t->has_input_size = true;
                return r;
        }
        if (strcmp(item->key, "input-fd") == 0) {
                closep(&t->input_fd);
                return deserializer_take_fd(d, item->value, &t->input_fd);
        }
        if (strncmp(item->key, "fd", 2) == 0 && item->key[2] >= '0' && item->key[2] <= '2' && !item->key[3]) {
                int i = item->key[2] - '0';
                closep(&t->fds[i]);
                return deserializer_take_fd(d, item->value, &t->fds[i]);
        }
        return 0; /* written by a later version: what this one does not know, it does without */
}

static void taken_done(Taken *t) {
        for (int i = 0; i < 3; i++)
                closep(&t->fds[i]);
        closep(&t->input_fd);
}

int job_deserialize(Job *j, const SerializedItem *items, size_t n_items, Deserializer *d) {
        Executor *e = job_executor(j);
        _cleanup_free_ SerializedItem *exec_items = calloc(n_items ?: 1, sizeof(SerializedItem));
        _cleanup_free_ void *input = NULL;
        size_t n_exec = 0, prefix_len = strlen(e->vtable->name);
        Taken t = { .fds = { -EBADF, -EBADF, -EBADF }, .input_fd = -EBADF };
        JobSpec *spec = &j->r.spec;
        int r = 0;

        if (!exec_items)
                return -ENOMEM;
        for (size_t i = 0; i < n_items && r >= 0; i++) {
                if (strncmp(items[i].key, e->vtable->name, prefix_len) == 0 &&
                    items[i].key[prefix_len] == '.')
                        exec_items[n_exec++] =
                                (SerializedItem) { items[i].key + prefix_len + 1, items[i].value };
                else
                        r = take_item(&t, &items[i], d);
        }
        /* The store says what the job is; what was handed over must agree. */
        if (r >= 0 && (t.running ? j->r.state != JOB_RUNNING || !j->stale : j->r.state != JOB_QUEUED))
                r = -ESTALE;
        if (r >= 0 && t.input_fd >= 0) {
                r = t.has_input_size && spec->has_input ? input_read(t.input_fd, t.input_size, &input)
                                                        : -EBADMSG;
                closep(&t.input_fd);
        }
        if (r < 0) {
                taken_done(&t);
                return r;
        }

        if (input) {
                job_spec_release_input(spec);
                spec->input_size = t.input_size;
                spec->input = spec->input_userdata = TAKE_PTR(input);
                spec->input_free = free;
        }
        if (!t.running) {
                for (int i = 0; i < 3; i++)
                        if (t.fds[i] >= 0) {
                                closep(&spec->fds[i]);
                                spec->fds[i] = TAKE_FD(t.fds[i]);
                        }
                /* A job whose fds or input did not come across stays stale: it cannot run as asked. */
                for (int i = 0; i < 3; i++)
                        if ((spec->passed_fds & (1U << i)) && spec->fds[i] < 0)
                                return -EBADMSG;
                if (!j->stale)
                        return 0;
                r = pool_job_requeue(j->pool, j);
                if (r < 0)
                        return r;
                j->stale = false;
                return 0;
        }

        taken_done(&t);
        r = e->vtable->deserialize(e, j, spec, exec_items, n_exec, d, &j->runtime);
        if (r < 0)
                return r;
        j->r.pid = t.pid;
        j->r.returncode = t.returncode;
        free(j->r.reason.detail);
        j->r.reason = t.reason;
        for (int i = 0; i < _JOB_STREAM_MAX; i++) {
                /* The store may have lagged behind the bytes spooled: the owner's share follows. */
                j->usage->output_bytes -= j->r.output[i].size;
                j->r.output[i] = t.output[i];
                j->usage->output_bytes += j->r.output[i].size;
        }
        j->timeout_at = t.timeout_at;
        j->kill_at = t.kill_at;
        j->r.paused = t.paused;
        j->timeout_left = t.timeout_left;
        j->stale = false;
        j->deserialized = true;
        pool_job_resumed(j->pool, j);
        return 0;
}

void job_coldplug(Job *j) {
        Executor *e = job_executor(j);
        sd_event *event = pool_get_event(j->pool);
        int r;

        assert(j->deserialized && j->r.state == JOB_RUNNING);

        j->deserialized = false;
        r = e->vtable->coldplug(e, j->runtime);
        if (r < 0) {
                /* Its executor ended what it could not watch. */
                free(j->r.reason.detail);
                j->r.reason = (JobReason) { .kind = JOB_REASON_LOST, .error = -r };
                job_finish(j, JOB_FAILED);
                return;
        }
        /* Deadlines that passed meanwhile fire on the next loop iteration. */
        if (j->timeout_at > 0) {
                r = sd_event_add_time(event, &j->timeout_source, CLOCK_MONOTONIC, j->timeout_at, 0,
                                      on_timeout, j);
                if (r < 0 && job_stop(j, (JobReason) { .kind = JOB_REASON_LOST, .error = -r }))
                        pool_job_changed(j->pool, j, JOB_CHANGE_ERROR);
        }
        if (j->kill_at > 0) {
                r = sd_event_add_time(event, &j->kill_source, CLOCK_MONOTONIC, j->kill_at, 0, on_kill_timer,
                                      j);
                if (r < 0)
                        (void) e->vtable->stop(e, j->runtime, EXECUTOR_STOP_KILL);
        }
        j->timeout_at = j->kill_at = 0;
}

/* ---- what the executor reports ----------------------------------------------------------------------- */

static void on_executor_started(Job *j, pid_t pid) {
        int r;

        assert(j->starting && j->r.state == JOB_QUEUED);

        j->starting = false;
        j->r.pid = j->r.main_pid = pid;
        j->r.started_at = now_usec(CLOCK_REALTIME);
        j->r.state = JOB_RUNNING;
        /* The child has its own copies now. */
        job_spec_close_fds(&j->r.spec);

        if (j->r.spec.timeout_usec > 0) {
                r = sd_event_add_time_relative(pool_get_event(j->pool), &j->timeout_source, CLOCK_MONOTONIC,
                                               j->r.spec.timeout_usec, 0, on_timeout, j);
                /* A timeout past the clock's range (UINT64_MAX, as systemd's "infinity") never comes. */
                if (r < 0 && r != -EOVERFLOW) {
                        pool_job_started(j->pool, j);
                        /* It could run past its timeout unseen: stop it rather than leave it so. */
                        if (job_stop(j, (JobReason) { .kind = JOB_REASON_LOST, .error = -r }))
                                pool_job_changed(j->pool, j, JOB_CHANGE_ERROR);
                        return;
                }
        }
        pool_job_started(j->pool, j);
        if (j->stop_pending != JOB_REASON_NONE && job_stop(j, (JobReason) { .kind = j->stop_pending }))
                pool_job_changed(j->pool, j, JOB_CHANGE_ERROR);
}

/* The state a running job ends in, from why it was stopped and its return code. */
static JobState job_end_state(const Job *j, int returncode) {
        switch (j->r.reason.kind) {
        case JOB_REASON_TIMEOUT:
                return JOB_TIMED_OUT;
        case JOB_REASON_CANCEL:
                return JOB_CANCELLED;
        case JOB_REASON_OUTPUT_LIMIT:
        case JOB_REASON_USER_OUTPUT_LIMIT:
                return JOB_KILLED;
        case JOB_REASON_LOST:
        case JOB_REASON_DAEMON_STOPPED:
        case JOB_REASON_RUN_FAILED:
                return JOB_FAILED;
        default:
                return returncode < 0 ? JOB_KILLED : JOB_EXITED;
        }
}

/* A running job its executor saw end for a reason outside the job (a remote executor's node failed, say):
 * failed, unless it was being stopped, whose reason stands. Not run again: the failure is not the
 * job's. */
static void on_executor_failed_running(Job *j, int error, const char *detail) {
        if (j->r.reason.kind == JOB_REASON_NONE) {
                j->r.reason = (JobReason) {
                        .kind = JOB_REASON_RUN_FAILED,
                        .error = error < 0 ? -error : error,
                        .detail = detail ? strdup(detail) : NULL,
                };
                job_finish(j, JOB_FAILED);
                return;
        }
        job_finish(j, job_end_state(j, j->r.returncode));
}

static void on_executor_failed(Job *j, int error, const char *detail) {
        if (j->r.state == JOB_RUNNING) {
                on_executor_failed_running(j, error, detail);
                return;
        }
        assert(j->starting && j->r.state == JOB_QUEUED);

        if (j->stop_pending == JOB_REASON_CANCEL) {
                job_finish_unstarted(j, JOB_REASON_CANCEL);
                return;
        }
        j->r.reason = (JobReason) {
                .kind = JOB_REASON_START_FAILED,
                .error = error < 0 ? -error : error,
                .detail = detail ? strdup(detail) : NULL,
        };
        job_finish(j, JOB_FAILED);
}

/* Appends data to stream s's spool file, opening it at the first byte. Returns the bytes written (fewer
 * than size once the spool is full), or a negative errno once none could be. */
static ssize_t job_spool_write(Job *j, JobStream s, const void *data, size_t size) {
        if (j->output_fd[s] < 0) {
                int fd = spool_open_write(registry_get_spool(pool_get_registry(j->pool)), j->r.id, s);
                if (fd < 0)
                        return fd;
                j->output_fd[s] = fd;
        }
        return spool_write(j->output_fd[s], data, size);
}

/* Keeps what fits of size bytes of stream s; past the limit, stops the job where it asked for that. */
static void on_executor_output(Job *j, JobStream s, const void *data, size_t size) {
        JobOutput *o = &j->r.output[s];
        const QuotaLimits *quota = pool_get_quota(j->pool);
        uint64_t limit = j->r.spec.output_limit, room = quota_output_room(j->usage, quota);
        bool user_limited = false;
        size_t keep;

        assert(j->r.state == JOB_RUNNING);

        if (o->incomplete)
                return; /* capture stopped when the spool could not take more */
        /* The uid's share of captured bytes may end the stream's capture before its own limit. */
        if (o->size < limit && room < limit - o->size) {
                limit = o->size + room;
                user_limited = true;
        }
        keep = o->size < limit ? (size_t) MIN((uint64_t) size, limit - o->size) : 0;
        if (keep > 0) {
                ssize_t k = job_spool_write(j, s, data, keep);
                if (k > 0) {
                        o->size += (uint64_t) k;
                        j->usage->output_bytes += (uint64_t) k;
                }
                if (k < 0 || (size_t) k < keep) {
                        /* A full or failing disk ends this stream's capture, and only that. */
                        o->incomplete = true;
                        closep(&j->output_fd[s]);
                        pool_job_changed(j->pool, j, JOB_CHANGE_OUTPUT);
                        return;
                }
        }
        if (keep == size)
                return;

        o->truncated = true;
        if (j->r.spec.kill_on_output_limit &&
            job_stop(j, (JobReason) {
                                .kind = user_limited ? JOB_REASON_USER_OUTPUT_LIMIT : JOB_REASON_OUTPUT_LIMIT,
                                .stream = s,
                                .limit = user_limited ? quota->max_output : limit,
                        }))
                pool_job_changed(j->pool, j, JOB_CHANGE_ERROR);
}

int job_read_output(Job *j, JobStream s, void *buf, size_t size, size_t *ret_read) {
        if (j->r.output[s].released)
                return JOB_ERROR_OUTPUT_RELEASED;
        size = (size_t) MIN((uint64_t) size, j->r.output[s].size);
        return spool_read(registry_get_spool(pool_get_registry(j->pool)), j->r.id, s, buf, size, ret_read);
}

int job_open_output(Job *j, JobStream s) {
        /* Opening makes the file: a released stream must not come back as an empty one. */
        if (j->r.output[s].released)
                return JOB_ERROR_OUTPUT_RELEASED;
        return spool_open_read(registry_get_spool(pool_get_registry(j->pool)), j->r.id, s);
}

static void on_executor_main_exited(Job *j, int returncode) {
        assert(j->r.state == JOB_RUNNING);

        j->r.returncode = returncode;
        j->r.pid = 0;
        pool_job_changed(j->pool, j, JOB_CHANGE_PID);
}

/* Whether an attempt that ended in state is run again: it ran and failed on its own account (not
 * cancelled, not stopped by the daemon) and has retries left. */
static bool job_should_retry(Job *j, JobState state) {
        if (j->r.attempt > j->r.spec.retry || pool_is_shutting_down(j->pool))
                return false;
        switch (state) {
        case JOB_EXITED:
                return j->r.returncode != 0;
        case JOB_KILLED:
        case JOB_TIMED_OUT:
                return true;
        default:
                return false;
        }
}

/* Runs the job again after its retry delay: what the last attempt left goes, its output included (the
 * output kept is the last attempt's). */
static void job_retry(Job *j) {
        Registry *r = pool_get_registry(j->pool);
        JobChange what = 0;

        if (j->r.paused) {
                /* The attempt ended while paused (a SIGKILL, say): the next one starts unpaused. */
                j->r.paused = false;
                j->timeout_left = 0;
                what |= JOB_CHANGE_PAUSED;
        }
        close_source(&j->timeout_source);
        close_source(&j->kill_source);
        job_release_runtime(j);
        for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                closep(&j->output_fd[s]);
                j->usage->output_bytes -= j->r.output[s].size;
                j->r.output[s] = (JobOutput) {};
        }
        spool_remove(registry_get_spool(r), j->r.id);
        free(j->r.reason.detail);
        j->r.reason = (JobReason) {};
        j->stop_pending = JOB_REASON_NONE;
        j->r.state = JOB_QUEUED;
        j->r.pid = 0;
        j->r.returncode = 0;
        j->r.started_at = 0;
        j->r.cpu_usage_usec = j->r.memory_peak = 0;
        if (j->r.external_id || j->r.node)
                what |= JOB_CHANGE_PLACED;
        j->r.external_id = mfree(j->r.external_id);
        j->r.node = mfree(j->r.node);
        j->r.attempt++;
        j->r.wait_until_usec = now_usec(CLOCK_REALTIME) + j->r.spec.retry_delay_usec;
        pool_job_retry(j->pool, j);
        pool_job_changed(j->pool, j,
                         what | JOB_CHANGE_STATE | JOB_CHANGE_PID | JOB_CHANGE_STARTED_AT |
                                 JOB_CHANGE_ATTEMPT | JOB_CHANGE_RETURNCODE | JOB_CHANGE_ERROR |
                                 JOB_CHANGE_OUTPUT | JOB_CHANGE_USAGE);
}

static void on_executor_exited(Job *j, const ExecutorExit *exit) {
        JobState state;

        assert(j->r.state == JOB_RUNNING);

        j->r.returncode = exit->returncode;
        j->r.cpu_usage_usec = exit->cpu_usage_usec;
        j->r.memory_peak = exit->memory_peak;
        state = job_end_state(j, exit->returncode);
        if (job_should_retry(j, state)) {
                job_retry(j);
                return;
        }
        job_finish(j, state);
}

static bool streq_null(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

static void on_executor_placed(Job *j, const char *external_id, const char *node) {
        char *x = NULL, *n = NULL;

        assert(!job_state_is_final(j->r.state));

        if (streq_null(external_id, j->r.external_id) && streq_null(node, j->r.node))
                return;
        if (external_id) {
                x = strdup(external_id);
                if (!x)
                        return; /* where it runs is not known: it still runs as it would */
        }
        if (node) {
                n = strdup(node);
                if (!n) {
                        free(x);
                        return;
                }
        }
        free(j->r.external_id);
        free(j->r.node);
        j->r.external_id = x;
        j->r.node = n;
        pool_job_changed(j->pool, j, JOB_CHANGE_PLACED);
}

const ExecutorEvents job_executor_events = {
        .started = on_executor_started,
        .output = on_executor_output,
        .main_exited = on_executor_main_exited,
        .exited = on_executor_exited,
        .failed = on_executor_failed,
        .placed = on_executor_placed,
};
