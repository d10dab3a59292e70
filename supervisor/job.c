/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A job: one command's request, its process while it runs, and its outcome. */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "job.h"
#include "macro.h"
#include "pool.h"
#include "spawn.h"

/* Bytes read from one stream per wakeup: enough for throughput, small enough to stay fair. */
#define READ_CHUNK (64U * 1024U)
#define READS_PER_WAKEUP 16
/* Pipes of jobs that move data in bulk grow to this (the default pipe-max-size). */
#define BULK_PIPE_SIZE (1024 * 1024)

static const char *const job_state_table[_JOB_STATE_MAX] = {
        [JOB_QUEUED] = "queued",     [JOB_RUNNING] = "running",     [JOB_EXITED] = "exited",
        [JOB_KILLED] = "killed",     [JOB_TIMED_OUT] = "timed-out", [JOB_CANCELLED] = "cancelled",
        [JOB_FAILED] = "failed",
};

const char *job_state_to_string(JobState s) {
        return s >= 0 && s < _JOB_STATE_MAX ? job_state_table[s] : NULL;
}

static uint64_t now_usec(clockid_t clock) {
        struct timespec ts;
        (void) clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

void job_spec_init(JobSpec *spec) {
        *spec = (JobSpec) {
                .stop_timeout_usec = JOB_STOP_TIMEOUT_DEFAULT_USEC,
                .output_limit = JOB_OUTPUT_LIMIT_UNSET,
                .fds = { -EBADF, -EBADF, -EBADF },
        };
}

void job_spec_done(JobSpec *spec) {
        strv_free(spec->argv);
        strv_free(spec->environment);
        free(spec->cwd);
        free(spec->label);
        for (int i = 0; i < 3; i++)
                closep(&spec->fds[i]);
        if (spec->input_free)
                spec->input_free(spec->input_userdata);
        job_spec_init(spec);
}

static void close_source(sd_event_source **s) {
        *s = sd_event_source_disable_unref(*s);
}

static void release_input(Job *j) {
        if (j->spec.input_free)
                j->spec.input_free(j->spec.input_userdata);
        j->spec.input_free = NULL;
        j->spec.input = NULL;
        j->spec.input_size = 0;
}

Job *job_new(Pool *pool, uint64_t id, JobSpec *spec) {
        Job *j = calloc(1, sizeof(Job));

        if (!j)
                return NULL;
        j->pool = pool;
        j->id = id;
        j->spec = *spec;
        job_spec_init(spec); /* taken over */
        j->state = JOB_QUEUED;
        j->submitted_at = now_usec(CLOCK_REALTIME);
        j->stdin_fd = -EBADF;
        j->output_fd[JOB_STDOUT] = j->output_fd[JOB_STDERR] = -EBADF;
        return j;
}

static void job_release_cgroup(Job *j) {
        close_source(&j->cgroup_source);
        if (!j->cgroup_path)
                return;
        (void) cgroup_remove(j->cgroup_path); /* still populated only if the daemon let go, ignoring */
        free(j->cgroup_path);
        j->cgroup_path = NULL;
}

static void job_close_stdin(Job *j);
static void job_close_stream(Job *j, JobStream s);

/* The caller's fds are the child's once it runs; a job that never runs gives them back at once. */
static void job_close_caller_fds(Job *j) {
        for (int i = 0; i < 3; i++)
                closep(&j->spec.fds[i]);
}

Job *job_free(Job *j) {
        if (!j)
                return NULL;
        job_release_cgroup(j);
        close_source(&j->child_source);
        close_source(&j->timeout_source);
        close_source(&j->kill_source);
        job_close_stdin(j);
        for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                job_close_stream(j, s);
                free(j->output[s].data);
        }
        job_spec_done(&j->spec);
        free(j->error);
        free(j);
        return NULL;
}

static void job_set_error(Job *j, char *error) {
        free(j->error);
        j->error = error;
}

static int job_signal_group(Job *j, int sig) {
        /* With a cgroup the whole tree gets it, also what left the process group. */
        if (j->cgroup_path)
                return cgroup_signal(j->cgroup_path, sig, j->pool->cgroup->has_kill);
        /* The group leader is not reaped before the job finishes, so its pid still names the group. */
        if (!j->main_exited && killpg(j->pid, sig) < 0 && errno != ESRCH)
                return -errno;
        return 0;
}

void job_kill_tree(Job *j) {
        if (j->state == JOB_RUNNING)
                (void) job_signal_group(j, SIGKILL);
}

uint64_t job_cpu_usage(Job *j) {
        uint64_t v;
        if (j->state == JOB_RUNNING && j->cgroup_path && cgroup_read_cpu_usage(j->cgroup_path, &v) >= 0)
                return v;
        return j->cpu_usage_usec;
}

uint64_t job_memory_peak(Job *j) {
        uint64_t v;
        if (j->state == JOB_RUNNING && j->cgroup_path && j->pool->cgroup->has_memory &&
            cgroup_read_memory_peak(j->cgroup_path, &v) >= 0)
                return v;
        return j->memory_peak;
}

static void job_finish(Job *j, JobState state) {
        j->state = state;
        j->pid = 0;
        j->finished_at = now_usec(CLOCK_REALTIME);
        j->finished_monotonic = now_usec(CLOCK_MONOTONIC);
        /* A finished job holds no fd: retained jobs would otherwise keep a pidfd each, and every
         * spawn's child would close them all again before exec. sd-event reaps the child after this
         * callback even with its source gone. */
        close_source(&j->child_source);
        close_source(&j->timeout_source);
        close_source(&j->kill_source);
        pool_job_finished(j->pool, j);
}

void job_finish_unstarted(Job *j, JobState state, const char *error) {
        /* Now, not at release: a pipeline reading the job's stdout would wait for that EOF. */
        job_close_caller_fds(j);
        if (error)
                job_set_error(j, strdup(error));
        job_finish(j, state);
}

static void job_stop(Job *j, JobStopReason reason);

/* Reads what a stream has; returns false once it reached EOF or failed. */
static bool job_read_stream(Job *j, JobStream s) {
        static char discard[READ_CHUNK];
        OutputBuffer *b = &j->output[s];
        const QuotaLimits *quota = &j->pool->config.per_user;
        uint64_t limit = j->spec.output_limit, room = quota_output_room(j->usage, quota);
        bool user_limited = false;

        /* The uid's share of captured bytes may end the stream's capture before its own limit. */
        if (b->size < limit && room < limit - b->size) {
                limit = b->size + room;
                user_limited = true;
        }

        for (int n = 0; n < READS_PER_WAKEUP; n++) {
                char *dst = discard;
                size_t want = sizeof(discard), keep;
                ssize_t k;

                /* Straight into the buffer where it has room; otherwise through the scratch buffer,
                 * so that a stream that ends without data costs no allocation. */
                if (b->size < limit && b->allocated > b->size) {
                        dst = b->data + b->size;
                        want = b->allocated - b->size;
                        if (want > limit - b->size)
                                want = limit - b->size;
                }

                k = read(j->output_fd[s], dst, want);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN;
                }
                if (k == 0)
                        return false;
                /* A full pipe means a stream in bulk: a larger pipe takes it in fewer wakeups. */
                if ((size_t) k >= READ_CHUNK && !b->pipe_grown) {
                        (void) fcntl(j->output_fd[s], F_SETPIPE_SZ, BULK_PIPE_SIZE); /* best effort, ignoring */
                        b->pipe_grown = true;
                }
                if (dst != discard) {
                        b->size += k;
                        j->usage->output_bytes += k;
                        continue;
                }

                keep = b->size < limit ? (size_t) MIN((uint64_t) k, limit - b->size) : 0;
                if (keep > 0) {
                        size_t a = b->allocated ? b->allocated * 2 : 4096;
                        while (a < b->size + keep)
                                a *= 2;
                        if (a > limit)
                                a = limit;
                        char *d = realloc(b->data, a);
                        if (!d)
                                keep = 0; /* dropped, as past a limit */
                        else {
                                b->data = d;
                                b->allocated = a;
                                memcpy(b->data + b->size, discard, keep);
                                b->size += keep;
                                j->usage->output_bytes += keep;
                        }
                }
                if (keep == (size_t) k)
                        continue;

                b->truncated = true;
                if (j->spec.kill_on_output_limit && j->stop_reason == JOB_STOP_NONE) {
                        const char *name = s == JOB_STDOUT ? "stdout" : "stderr";
                        _cleanup_free_ char *e = NULL;
                        int q;
                        if (user_limited)
                                q = asprintf(&e,
                                             "%s passed the per-user limit of %" PRIu64 " captured bytes held "
                                             "(--max-output-per-user); release finished jobs, or pass an fd "
                                             "with the '%s' option",
                                             name, quota->max_output, name);
                        else
                                q = asprintf(&e,
                                             "%s passed the output limit of %" PRIu64
                                             " bytes (option 'output-limit'); raise it, or pass an fd "
                                             "with the '%s' option to take more",
                                             name, limit, name);
                        if (q >= 0)
                                job_set_error(j, TAKE_PTR(e));
                        job_stop(j, JOB_STOP_OUTPUT_LIMIT);
                        pool_job_changed(j->pool, j, JOB_CHANGE_ERROR);
                }
        }
        return true;
}

static void job_close_stream(Job *j, JobStream s) {
        close_source(&j->output_source[s]);
        closep(&j->output_fd[s]);
}

static int on_output(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Job *j = userdata;
        JobStream s = source == j->output_source[JOB_STDOUT] ? JOB_STDOUT : JOB_STDERR;

        if (!job_read_stream(j, s))
                job_close_stream(j, s);
        return 0;
}

static void job_close_stdin(Job *j) {
        close_source(&j->stdin_source);
        closep(&j->stdin_fd);
        release_input(j);
}

static int on_stdin(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Job *j = userdata;

        while (j->input_written < j->spec.input_size) {
                ssize_t k = write(fd, (const char *) j->spec.input + j->input_written,
                                  j->spec.input_size - j->input_written);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        break; /* EPIPE: the child closed its stdin; what it did not read is dropped */
                }
                j->input_written += k;
        }
        job_close_stdin(j);
        return 0;
}

/* The job is over: its main process exited and, with a cgroup, the whole tree is gone. */
static void job_complete(Job *j) {
        JobState state;

        /* What the job wrote is in the pipes now: take it, then stop listening, so that a process
         * outside the job's control that still holds a pipe cannot keep the job alive. */
        for (int s = 0; s < _JOB_STREAM_MAX; s++)
                if (j->output_fd[s] >= 0) {
                        (void) job_read_stream(j, s);
                        job_close_stream(j, s);
                }
        job_close_stdin(j);

        if (j->cgroup_path) {
                (void) cgroup_read_cpu_usage(j->cgroup_path, &j->cpu_usage_usec);
                if (j->pool->cgroup->has_memory)
                        (void) cgroup_read_memory_peak(j->cgroup_path, &j->memory_peak);
        }
        job_release_cgroup(j);

        switch (j->stop_reason) {
        case JOB_STOP_TIMEOUT:
                state = JOB_TIMED_OUT;
                break;
        case JOB_STOP_CANCEL:
                state = JOB_CANCELLED;
                break;
        case JOB_STOP_OUTPUT_LIMIT:
                state = JOB_KILLED;
                break;
        default:
                state = j->returncode < 0 ? JOB_KILLED : JOB_EXITED;
        }
        job_finish(j, state);
}

static int on_cgroup_event(sd_event_source *source, const struct inotify_event *event, void *userdata) {
        Job *j = userdata;

        if (cgroup_is_populated(j->cgroup_path) != 0)
                return 0;
        job_complete(j);
        return 0;
}

static int on_child_exit(sd_event_source *source, const siginfo_t *si, void *userdata) {
        Job *j = userdata;
        _cleanup_free_ char *events = NULL;

        if (si->si_code == CLD_EXITED)
                j->returncode = si->si_status;
        else
                j->returncode = -si->si_status;
        j->main_exited = true;
        j->pid = 0;

        /* With a cgroup, the job ends when the last process of its tree does. */
        if (j->cgroup_path && cgroup_is_populated(j->cgroup_path) > 0 &&
            asprintf(&events, "%s/cgroup.events", j->cgroup_path) >= 0 &&
            sd_event_add_inotify(j->pool->event, &j->cgroup_source, events, IN_MODIFY, on_cgroup_event, j) >= 0) {
                pool_job_changed(j->pool, j, JOB_CHANGE_PID);
                /* It may have emptied between the check and the watch. */
                if (cgroup_is_populated(j->cgroup_path) > 0)
                        return 0;
        }
        job_complete(j);
        return 0;
}

static int on_kill_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Job *j = userdata;

        (void) job_signal_group(j, SIGKILL);
        return 0;
}

/* SIGTERM now, SIGKILL after the stop timeout. */
static void job_stop(Job *j, JobStopReason reason) {
        if (j->stop_reason != JOB_STOP_NONE)
                return;
        j->stop_reason = reason;
        close_source(&j->timeout_source);
        (void) job_signal_group(j, SIGTERM);
        (void) job_signal_group(j, SIGCONT); /* a stopped job must wake up to act on SIGTERM */
        if (j->spec.stop_timeout_usec == 0) {
                (void) job_signal_group(j, SIGKILL);
                return;
        }
        (void) sd_event_add_time_relative(j->pool->event, &j->kill_source, CLOCK_MONOTONIC,
                                          j->spec.stop_timeout_usec, 0, on_kill_timer, j);
}

static int on_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        Job *j = userdata;
        _cleanup_free_ char *e = NULL;

        if (asprintf(&e, "Timed out after %" PRIu64 " ms", (uint64_t) (j->spec.timeout_usec / USEC_PER_MSEC)) >= 0)
                job_set_error(j, TAKE_PTR(e));
        job_stop(j, JOB_STOP_TIMEOUT);
        pool_job_changed(j->pool, j, JOB_CHANGE_ERROR);
        return 0;
}

static int open_pipe(int ret_fds[2], bool parent_reads) {
        if (pipe2(ret_fds, O_CLOEXEC) < 0)
                return -errno;
        /* Only the daemon's end is non-blocking: the child gets an ordinary pipe. */
        if (fcntl(ret_fds[parent_reads ? 0 : 1], F_SETFL, O_NONBLOCK) < 0) {
                int e = errno;
                closep(&ret_fds[0]);
                closep(&ret_fds[1]);
                return -e;
        }
        return 0;
}

static const char *env_lookup(char *const *env, const char *name) {
        size_t len = strlen(name);
        for (char *const *e = env; e && *e; e++)
                if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
                        return *e + len + 1;
        return NULL;
}

/* The job's environment: pointers into the base environment and the job's own entries. */
static char **job_build_env(Job *j) {
        char **base = j->spec.clear_environment ? NULL : j->pool->base_environment;
        size_t nb = 0, no = 0, n = 0;
        char **env;

        for (char **e = base; e && *e; e++)
                nb++;
        for (char **e = j->spec.environment; e && *e; e++)
                no++;
        env = calloc(nb + no + 1, sizeof(char *));
        if (!env)
                return NULL;
        for (size_t i = 0; i < nb; i++) {
                const char *eq = strchr(base[i], '=');
                size_t len = eq ? (size_t) (eq - base[i] + 1) : strlen(base[i]);
                bool overridden = false;
                for (size_t k = 0; k < no; k++)
                        if (strncmp(j->spec.environment[k], base[i], len) == 0) {
                                overridden = true;
                                break;
                        }
                if (!overridden)
                        env[n++] = base[i];
        }
        for (size_t k = 0; k < no; k++)
                env[n++] = j->spec.environment[k];
        return env;
}

static const char *spawn_stage_verb(SpawnStage stage) {
        switch (stage) {
        case SPAWN_STAGE_CHDIR:
                return "change directory to";
        case SPAWN_STAGE_CGROUP:
                return "place in its cgroup";
        case SPAWN_STAGE_EXEC:
                return "execute";
        default:
                return "set up";
        }
}

/* Builds the Error text of a job that could not start. */
static char *start_error(const char *what, const char *subject, int r) {
        char *e;
        if (asprintf(&e, "Failed to %s '%s': %s", what, subject, strerror(-r)) < 0)
                return NULL;
        return e;
}

int job_start(Job *j) {
        int in[2] = { -EBADF, -EBADF }, out[2][2] = { { -EBADF, -EBADF }, { -EBADF, -EBADF } };
        _cleanup_close_ int cgroup_fd = -EBADF;
        _cleanup_free_ char **env = NULL, *why = NULL;
        SpawnStage stage = SPAWN_STAGE_NONE;
        SpawnRequest req;
        pid_t pid;
        int r;

        env = job_build_env(j);
        if (!env)
                return -ENOMEM;

        req = (SpawnRequest) {
                .program = j->spec.argv[0],
                .argv = j->spec.argv,
                .envp = env,
                .path_env = env_lookup(env, "PATH"),
                .cwd = j->spec.cwd,
                .cgroup_procs_fd = -EBADF,
        };

        if (j->spec.has_input) {
                r = open_pipe(in, false);
                if (r < 0)
                        goto fail_setup;
                req.fds[0] = in[0];
        } else if (j->spec.fds[0] >= 0)
                req.fds[0] = j->spec.fds[0];
        else
                req.fds[0] = j->pool->null_fd;
        for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                if (j->spec.fds[1 + s] >= 0) {
                        req.fds[1 + s] = j->spec.fds[1 + s];
                        continue;
                }
                r = open_pipe(out[s], true);
                if (r < 0)
                        goto fail_setup;
                req.fds[1 + s] = out[s][1];
        }

        if (j->pool->cgroup) {
                char id[32];
                r = cgroup_job_create(j->pool->cgroup, j->id, j->spec.memory_max, &j->cgroup_path, &cgroup_fd);
                if (r < 0) {
                        snprintf(id, sizeof(id), "job-%" PRIu64, j->id);
                        why = start_error("create the cgroup", id, r);
                        goto fail;
                }
                req.cgroup_procs_fd = cgroup_fd;
        }

        r = spawn_process(&req, &pid, NULL, &stage);
        /* The child has its ends, or failed: the daemon keeps only its own. */
        closep(&cgroup_fd);
        closep(&in[0]);
        closep(&out[0][1]);
        closep(&out[1][1]);
        if (r < 0) {
                why = start_error(spawn_stage_verb(stage),
                                  stage == SPAWN_STAGE_CHDIR ? j->spec.cwd : j->spec.argv[0], r);
                goto fail;
        }

        j->pid = j->main_pid = pid;
        j->started_at = now_usec(CLOCK_REALTIME);
        j->state = JOB_RUNNING;
        job_close_caller_fds(j);

        /* By pid: sd-event opens and watches the pidfd itself. Handing it one of ours instead makes it
         * parse /proc/self/fdinfo to learn the pid, an eighth of the daemon's CPU per job. */
        r = sd_event_add_child(j->pool->event, &j->child_source, pid, WEXITED, on_child_exit, j);
        if (r < 0)
                goto fail_running;
        /* Reap children before reading more bus requests: a finished job frees a worker. */
        (void) sd_event_source_set_priority(j->child_source, SD_EVENT_PRIORITY_NORMAL - 10);

        for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                if (out[s][0] < 0)
                        continue;
                j->output_fd[s] = TAKE_FD(out[s][0]);
                r = sd_event_add_io(j->pool->event, &j->output_source[s], j->output_fd[s], EPOLLIN, on_output,
                                    j);
                if (r < 0)
                        goto fail_running;
        }
        if (in[1] >= 0) {
                j->stdin_fd = TAKE_FD(in[1]);
                if (j->spec.input_size > READ_CHUNK) /* fewer wakeups for bulk input; best effort */
                        (void) fcntl(j->stdin_fd, F_SETPIPE_SZ, (int) MIN(j->spec.input_size, BULK_PIPE_SIZE));
                if (j->spec.input_size == 0)
                        job_close_stdin(j);
                else {
                        r = sd_event_add_io(j->pool->event, &j->stdin_source, j->stdin_fd, EPOLLOUT, on_stdin, j);
                        if (r < 0)
                                goto fail_running;
                }
        }
        if (j->spec.timeout_usec > 0) {
                r = sd_event_add_time_relative(j->pool->event, &j->timeout_source, CLOCK_MONOTONIC,
                                               j->spec.timeout_usec, 0, on_timeout, j);
                /* A timeout past the clock's range (UINT64_MAX, as systemd's "infinity") never comes. */
                if (r < 0 && r != -EOVERFLOW)
                        goto fail_running;
        }

        pool_job_started(j->pool, j);
        return 0;

fail_running:
        /* The process runs but cannot be supervised: stop it rather than leave it unwatched. The pipe
         * ends not yet handed to the job are closed, which the child sees as EOF or EPIPE. */
        closep(&in[1]);
        for (int s = 0; s < _JOB_STREAM_MAX; s++)
                closep(&out[s][0]);
        job_set_error(j, strdup("Failed to watch the started process"));
        pool_job_started(j->pool, j);
        if (j->child_source)
                job_stop(j, JOB_STOP_CANCEL);
        else {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                job_finish(j, JOB_FAILED);
        }
        return 0;
fail_setup:
        why = start_error("set up", j->spec.argv[0], r);
fail:
        closep(&in[0]);
        closep(&in[1]);
        for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                closep(&out[s][0]);
                closep(&out[s][1]);
        }
        job_release_cgroup(j);
        job_finish_unstarted(j, JOB_FAILED, why ?: "Failed to start");
        return 0;
}

int job_cancel(Job *j) {
        if (job_state_is_final(j->state))
                return JOB_ERROR_NOT_RUNNING;
        if (j->state == JOB_QUEUED) {
                job_finish_unstarted(j, JOB_CANCELLED, "Cancelled before it started");
                return 0;
        }
        if (j->stop_reason == JOB_STOP_NONE) {
                job_set_error(j, strdup("Cancelled"));
                pool_job_changed(j->pool, j, JOB_CHANGE_ERROR);
        }
        job_stop(j, JOB_STOP_CANCEL);
        return 0;
}

int job_kill(Job *j, int sig) {
        if (sig <= 0 || sig >= _NSIG)
                return -EINVAL;
        if (j->state != JOB_RUNNING)
                return JOB_ERROR_NOT_RUNNING;
        return job_signal_group(j, sig);
}

int job_release(Job *j) {
        if (!job_state_is_final(j->state))
                return JOB_ERROR_NOT_FINISHED;
        pool_job_removed(j->pool, j);
        return 0;
}
