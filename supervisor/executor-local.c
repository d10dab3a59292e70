/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The local executor: each job is a child process of the daemon, in a cgroup of its own where the
 * daemon has a delegated one, else in a process group of its own. It builds the job's environment and
 * pipes, spawns it, feeds its stdin, reads its stdout and stderr, and watches it end. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <dirent.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor-local.h"
#include "job-io.h"
#include "macro.h"
#include "spawn.h"

/* How often the process groups of stopped jobs whose main process is gone are looked at: soon after,
 * then less and less often. Their stop timeout bounds how long. */
#define GROUP_CHECK_MIN_USEC (5ULL * 1000ULL)
#define GROUP_CHECK_MAX_USEC (200ULL * 1000ULL)

typedef struct LocalExecutor {
        Executor executor;
        sd_event *event;
        CgroupRoot *cgroup;      /* per-job cgroups when set; process groups otherwise */
        int null_fd;             /* /dev/null, the stdin of jobs given none */
        char **base_environment; /* the daemon's environment minus what must not reach jobs */
        int fd_reserve_start;    /* the lowest fd of the reserve no job may reach into */

        /* Stopped jobs whose main process is gone and whose process group is not, and what looks at
         * those groups. */
        struct LocalJob *group_waiters;
        sd_event_source *group_timer;
        uint64_t group_interval;
} LocalExecutor;

/* One job while it runs. */
typedef struct LocalJob {
        LocalExecutor *executor;
        Job *job;
        JobSpec *spec; /* the job's; it outlives this */
        pid_t pid;
        bool main_exited; /* the main process is gone, its cgroup (or its group, being stopped) not yet empty */
        bool paused;      /* frozen, or stopped with SIGSTOP, by local_pause() */

        /* Stopping: pid leads the job's process group; a job being stopped without a cgroup ends once
         * nothing of that group runs any more, or all of it was killed. */
        bool stopping;
        bool killed;                              /* SIGKILL went to all of it: the stop is complete */
        bool group_gone;                          /* while waiting: nothing of its group runs any more */
        struct LocalJob *group_prev, *group_next; /* in the executor's group_waiters */

        int returncode;
        char *cgroup_path;               /* the job's own cgroup, or NULL */
        sd_event_source *cgroup_source;  /* watches cgroup.events for the tree to empty */
        sd_event_source *recheck_source; /* after a re-exec: whether the tree emptied meanwhile */
        sd_event_source *child_source;
        sd_event_source *stdin_source;
        sd_event_source *output_source[_JOB_STREAM_MAX];
        int stdin_fd;
        int output_fd[_JOB_STREAM_MAX];
        bool pipe_grown[_JOB_STREAM_MAX]; /* found full once and enlarged */
        size_t input_written;
} LocalJob;

static LocalExecutor *local(Executor *e) {
        return (LocalExecutor *) e;
}

static void close_source(sd_event_source **s) {
        *s = sd_event_source_disable_unref(*s);
}

static void closedirp(DIR **d) {
        if (*d)
                (void) closedir(*d);
}

static void local_job_group_wait(LocalJob *lj);

/* ---- the running job --------------------------------------------------------------------------------- */

static void local_job_release_cgroup(LocalJob *lj) {
        close_source(&lj->cgroup_source);
        close_source(&lj->recheck_source);
        if (!lj->cgroup_path)
                return;
        (void) cgroup_remove(lj->cgroup_path); /* still populated only if the daemon let go, ignoring */
        lj->cgroup_path = mfree(lj->cgroup_path);
}

static void local_job_close_stream(LocalJob *lj, JobStream s) {
        close_source(&lj->output_source[s]);
        closep(&lj->output_fd[s]);
}

static void local_job_close_stdin(LocalJob *lj) {
        close_source(&lj->stdin_source);
        closep(&lj->stdin_fd);
        job_spec_release_input(lj->spec);
}

/* Whether the main process (running still) left what local_job_signal() signals as a whole: its process
 * group (setpgid() into another one), or its cgroup (a job may write itself into another cgroup of the
 * delegated subtree). */
static bool local_job_main_left(LocalJob *lj) {
        _cleanup_free_ char *path = NULL;

        if (!lj->cgroup_path)
                return getpgid(lj->pid) != lj->pid;
        if (cgroup_pid_path(lj->pid, &path) < 0)
                return false; /* gone meanwhile */
        return strcmp(path, lj->cgroup_path) != 0;
}

static int local_job_signal(LocalJob *lj, int sig) {
        int r = 0;

        /* The main process by its pidfd (sd-event's, opened by pid while it is our unreaped child, also
         * after a re-exec): it may have moved itself out of reach of the rest. Where the rest reaches it,
         * it gets the signal once, except SIGKILL, which cannot be handled twice. */
        if (!lj->main_exited && lj->child_source && (sig == SIGKILL || local_job_main_left(lj))) {
                r = sd_event_source_send_child_signal(lj->child_source, sig, NULL, 0);
                if (r == -ESRCH)
                        r = 0; /* it has exited: what follows reaches the rest */
        }
        /* With a cgroup the whole tree gets it, also what left the process group. */
        if (lj->cgroup_path) {
                int k = cgroup_signal(lj->cgroup_path, sig,
                                      lj->executor->cgroup && lj->executor->cgroup->has_kill);
                return r < 0 ? r : k;
        }
        /* The group: its leader's pid names it while the leader is unreaped, and while any member lives
         * (a pid is not given out again while a process group has it). A job whose main process exited
         * is still signalled as a group only while it is being stopped. */
        if (lj->pid > 0 && (!lj->main_exited || lj->stopping) && killpg(lj->pid, sig) < 0 && errno != ESRCH)
                return -errno;
        return r;
}

static void local_job_group_unwait(LocalJob *lj) {
        LocalExecutor *le = lj->executor;

        if (!lj->group_prev && le->group_waiters != lj)
                return;
        if (lj->group_prev)
                lj->group_prev->group_next = lj->group_next;
        else
                le->group_waiters = lj->group_next;
        if (lj->group_next)
                lj->group_next->group_prev = lj->group_prev;
        lj->group_prev = lj->group_next = NULL;
}

static void local_job_free(LocalJob *lj) {
        if (!lj)
                return;
        local_job_group_unwait(lj);
        local_job_release_cgroup(lj);
        /* sd-event reaps the child after a callback that dropped its source, too. */
        close_source(&lj->child_source);
        local_job_close_stdin(lj);
        for (int s = 0; s < _JOB_STREAM_MAX; s++)
                local_job_close_stream(lj, s);
        free(lj);
}

static void local_job_sink(void *userdata, JobStream s, const void *data, size_t size) {
        LocalJob *lj = userdata;
        lj->executor->executor.events->output(lj->job, s, data, size);
}

/* Reads what a stream has and reports it; returns false once it reached EOF or failed. */
static bool local_job_read(LocalJob *lj, JobStream s) {
        return job_io_read(lj->output_fd[s], &lj->pipe_grown[s], s, local_job_sink, lj);
}

static int on_output(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        LocalJob *lj = userdata;
        JobStream s = source == lj->output_source[JOB_STDOUT] ? JOB_STDOUT : JOB_STDERR;

        if (!local_job_read(lj, s))
                local_job_close_stream(lj, s);
        return 0;
}

static int on_stdin(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        LocalJob *lj = userdata;

        if (!job_io_write_input(fd, lj->spec, &lj->input_written))
                local_job_close_stdin(lj);
        return 0;
}

/* The job is over: its main process exited and, with a cgroup, the whole tree is gone. Reports it; lj
 * is freed by then (the job calls done()), so the caller must not touch it after this. */
static void local_job_complete(LocalJob *lj) {
        ExecutorExit x = { .returncode = lj->returncode };

        /* What the job wrote is in the pipes now: take it, then stop listening, so that a process
         * outside the job's control that still holds a pipe cannot keep the job alive. */
        for (int s = 0; s < _JOB_STREAM_MAX; s++)
                if (lj->output_fd[s] >= 0) {
                        (void) local_job_read(lj, s);
                        local_job_close_stream(lj, s);
                }
        local_job_close_stdin(lj);

        if (lj->cgroup_path) {
                (void) cgroup_read_cpu_usage(lj->cgroup_path, &x.cpu_usage_usec);
                if (lj->executor->cgroup && lj->executor->cgroup->has_memory)
                        (void) cgroup_read_memory_peak(lj->cgroup_path, &x.memory_peak);
        }
        local_job_release_cgroup(lj);
        lj->executor->executor.events->exited(lj->job, &x);
}

static int on_cgroup_event(sd_event_source *source, const struct inotify_event *event, void *userdata) {
        LocalJob *lj = userdata;

        if (cgroup_is_populated(lj->cgroup_path) != 0)
                return 0;
        local_job_complete(lj);
        return 0;
}

static int on_child_exit(sd_event_source *source, const siginfo_t *si, void *userdata) {
        LocalJob *lj = userdata;
        _cleanup_free_ char *events = NULL;

        lj->returncode = si->si_code == CLD_EXITED ? si->si_status : -si->si_status;
        lj->main_exited = true;

        /* A job being stopped is stopped whole: without a cgroup, it ends once nothing of its process
         * group runs any more, or once all of it was killed after the stop timeout. One that ends by
         * itself ends with its main process (docs/dbus-api.md, "Process trees"). */
        if (!lj->cgroup_path && lj->stopping && !lj->killed) {
                lj->executor->executor.events->main_exited(lj->job, lj->returncode);
                local_job_group_wait(lj);
                return 0;
        }

        /* With a cgroup, the job ends when the last process of its tree does. */
        if (lj->cgroup_path && cgroup_is_populated(lj->cgroup_path) > 0 &&
            asprintf(&events, "%s/cgroup.events", lj->cgroup_path) >= 0 &&
            sd_event_add_inotify(lj->executor->event, &lj->cgroup_source, events, IN_MODIFY, on_cgroup_event,
                                 lj) >= 0) {
                lj->executor->executor.events->main_exited(lj->job, lj->returncode);
                /* It may have emptied between the check and the watch. */
                if (cgroup_is_populated(lj->cgroup_path) > 0)
                        return 0;
        }
        local_job_complete(lj);
        return 0;
}

/* ---- the rest of a stopped job's process group ------------------------------------------------------- */

/* Marks each waiting job whose process group has no live member left. kill(-pgid, 0) says when a group is
 * empty, but counts zombies too, which nobody may reap when the group's processes were orphaned: then
 * /proc says whether a live one is left, read once for all waiting jobs. */
static void local_mark_gone_groups(LocalExecutor *le) {
        _cleanup_(closedirp) DIR *d = NULL;
        bool scan = false;
        struct dirent *de;

        for (LocalJob *lj = le->group_waiters; lj; lj = lj->group_next) {
                lj->group_gone = lj->killed || (killpg(lj->pid, 0) < 0 && errno == ESRCH);
                scan = scan || !lj->group_gone;
        }
        if (!scan)
                return;
        d = opendir("/proc");
        if (!d)
                return; /* the stop timeout ends them */
        for (LocalJob *lj = le->group_waiters; lj; lj = lj->group_next)
                lj->group_gone = true;
        while ((de = readdir(d))) {
                char path[64], buf[512], *p;
                _cleanup_close_ int fd = -EBADF;
                int pgrp;
                ssize_t k;
                char state;

                if (de->d_name[0] < '1' || de->d_name[0] > '9')
                        continue;
                snprintf(path, sizeof(path), "/proc/%.20s/stat", de->d_name);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                k = read(fd, buf, sizeof(buf) - 1);
                if (k <= 0)
                        continue;
                buf[k] = '\0';
                /* pid (comm) state ppid pgrp ...: comm may hold anything, the last ')' ends it. */
                p = strrchr(buf, ')');
                if (!p || sscanf(p + 1, " %c %*d %d", &state, &pgrp) != 2 || state == 'Z' || state == 'X')
                        continue;
                for (LocalJob *lj = le->group_waiters; lj; lj = lj->group_next)
                        if (!lj->killed && pgrp == lj->pid)
                                lj->group_gone = false;
        }
}

static int on_group_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        LocalExecutor *le = userdata;

        local_mark_gone_groups(le);
        /* Completing a job frees its runtime, and only its own: look for the next from the start. */
        for (;;) {
                LocalJob *lj = le->group_waiters;
                while (lj && !lj->group_gone)
                        lj = lj->group_next;
                if (!lj)
                        break;
                local_job_group_unwait(lj);
                local_job_complete(lj);
        }
        if (le->group_waiters) {
                le->group_interval = MIN(le->group_interval * 2, GROUP_CHECK_MAX_USEC);
                (void) sd_event_source_set_time_relative(source, le->group_interval);
                (void) sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
        }
        return 0;
}

/* Looks at the waiting groups from the next loop iteration on, soon. The timer exists from the start: a
 * job waiting for its group must not depend on an allocation to end. */
static void local_group_check_soon(LocalExecutor *le) {
        le->group_interval = GROUP_CHECK_MIN_USEC;
        (void) sd_event_source_set_time_relative(le->group_timer, 0);
        (void) sd_event_source_set_enabled(le->group_timer, SD_EVENT_ONESHOT);
}

/* The main process of a job being stopped is gone: the job waits for the rest of its process group. */
static void local_job_group_wait(LocalJob *lj) {
        LocalExecutor *le = lj->executor;

        if (lj->group_prev || le->group_waiters == lj)
                return;
        lj->group_next = le->group_waiters;
        if (lj->group_next)
                lj->group_next->group_prev = lj;
        le->group_waiters = lj;
        local_group_check_soon(le);
}

/* ---- starting ---------------------------------------------------------------------------------------- */

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

/* Reports that job could not start, with "Failed to <what> '<subject>': <error>". */
static void report_failed(LocalExecutor *le, Job *j, int error, const char *what, const char *subject) {
        _cleanup_free_ char *detail = NULL;

        if (asprintf(&detail, "Failed to %s '%s': %s", what, subject, strerror(-error)) < 0)
                detail = NULL;
        le->executor.events->failed(j, error, detail);
}

/* Reports that job could not take on its user's credentials: it never ran, with the daemon's or any. */
static void report_failed_user(LocalExecutor *le, Job *j, int error, const JobUser *user) {
        _cleanup_free_ char *detail = NULL;

        if (asprintf(&detail, "Failed to run as uid %u with gid %u and %zu supplementary groups: %s",
                     (unsigned) user->uid, (unsigned) user->gid, user->n_groups, strerror(-error)) < 0)
                detail = NULL;
        le->executor.events->failed(j, error, detail);
}

/* Watches the running child: its exit, its output, its input. lj holds the daemon's pipe ends. */
static int local_job_watch(LocalJob *lj) {
        sd_event *event = lj->executor->event;
        int r;

        /* By pid: sd-event opens and watches the pidfd itself. Handing it one of ours instead makes it
         * parse /proc/self/fdinfo to learn the pid, an eighth of the daemon's CPU per job. */
        r = sd_event_add_child(event, &lj->child_source, lj->pid, WEXITED, on_child_exit, lj);
        if (r < 0)
                return r;
        /* Reap children before reading more bus requests: a finished job frees a worker. */
        (void) sd_event_source_set_priority(lj->child_source, SD_EVENT_PRIORITY_NORMAL - 10);

        for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                if (lj->output_fd[s] < 0)
                        continue;
                r = sd_event_add_io(event, &lj->output_source[s], lj->output_fd[s], EPOLLIN, on_output, lj);
                if (r < 0)
                        return r;
        }
        if (lj->stdin_fd >= 0) {
                if (lj->spec->input_size > JOB_IO_READ_CHUNK) /* fewer wakeups for bulk input; best effort */
                        (void) fcntl(lj->stdin_fd, F_SETPIPE_SZ,
                                     (int) MIN(lj->spec->input_size, JOB_IO_BULK_PIPE_SIZE));
                if (lj->spec->input_size == 0)
                        local_job_close_stdin(lj);
                else {
                        r = sd_event_add_io(event, &lj->stdin_source, lj->stdin_fd, EPOLLOUT, on_stdin, lj);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* The top quarter of the fd table is the daemon's reserve: a message that arrives with fds and finds no
 * room for them loses the daemon its bus connection. fds are given lowest first, so when the lowest free
 * one lies in the reserve, everything below it is taken: the job fails as if the table were full. */
static int check_fd_reserve(LocalExecutor *le) {
        int fd = fcntl(le->null_fd, F_DUPFD_CLOEXEC, 0);

        if (fd < 0)
                return -errno;
        (void) close(fd);
        return fd >= le->fd_reserve_start ? -EMFILE : 0;
}

/* The runtime of job j, with no process and no fds yet. */
static LocalJob *local_job_new(LocalExecutor *le, Job *j, JobSpec *spec) {
        LocalJob *lj = calloc(1, sizeof(LocalJob));

        if (!lj)
                return NULL;
        *lj = (LocalJob) {
                .executor = le,
                .job = j,
                .spec = spec,
                .stdin_fd = -EBADF,
                .output_fd = { -EBADF, -EBADF },
        };
        return lj;
}

static int local_start(Executor *e, Job *j, uint64_t id, JobSpec *spec, void **runtime) {
        LocalExecutor *le = local(e);
        int in[2] = { -EBADF, -EBADF }, out[2][2] = { { -EBADF, -EBADF }, { -EBADF, -EBADF } };
        _cleanup_close_ int cgroup_fd = -EBADF;
        _cleanup_free_ char **env = NULL;
        SpawnStage stage = SPAWN_STAGE_NONE;
        SpawnRequest req;
        LocalJob *lj;
        pid_t pid;
        int r;

        env = job_io_build_env(le->base_environment, spec);
        if (!env)
                return -ENOMEM;
        lj = local_job_new(le, j, spec);
        if (!lj)
                return -ENOMEM;
        *runtime = lj;

        req = (SpawnRequest) {
                .program = spec->argv[0],
                .argv = spec->argv,
                .envp = env,
                .path_env = job_io_env_lookup(env, "PATH"),
                .cwd = spec->cwd,
                .cgroup_procs_fd = -EBADF,
                .set_user = spec->user.set,
                .uid = spec->user.uid,
                .gid = spec->user.gid,
                .groups = spec->user.groups,
                .n_groups = spec->user.n_groups,
        };
        r = check_fd_reserve(le);
        if (r < 0)
                goto fail_setup;
        if (spec->has_input) {
                r = job_io_open_pipe(in, false);
                if (r < 0)
                        goto fail_setup;
                req.fds[0] = in[0];
        } else
                req.fds[0] = spec->fds[0] >= 0 ? spec->fds[0] : le->null_fd;
        for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                if (spec->fds[1 + s] >= 0) {
                        req.fds[1 + s] = spec->fds[1 + s];
                        continue;
                }
                r = job_io_open_pipe(out[s], true);
                if (r < 0)
                        goto fail_setup;
                req.fds[1 + s] = out[s][1];
        }

        if (le->cgroup) {
                r = cgroup_job_create(le->cgroup, id, spec->memory_max, &lj->cgroup_path, &cgroup_fd);
                if (r < 0) {
                        char name[32];
                        snprintf(name, sizeof(name), "job-%" PRIu64, id);
                        report_failed(le, j, r, "create the cgroup", name);
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
        if (r < 0 && stage == SPAWN_STAGE_USER)
                report_failed_user(le, j, r, &spec->user);
        if (r < 0 && stage != SPAWN_STAGE_USER)
                report_failed(le, j, r, spawn_stage_verb(stage),
                              stage == SPAWN_STAGE_CHDIR ? spec->cwd : spec->argv[0]);
        if (r < 0)
                goto fail;
        lj->pid = pid;
        lj->stdin_fd = TAKE_FD(in[1]);
        for (int s = 0; s < _JOB_STREAM_MAX; s++)
                lj->output_fd[s] = TAKE_FD(out[s][0]);

        r = local_job_watch(lj);
        if (r < 0) {
                /* The process runs but cannot be supervised: end it rather than leave it unwatched. */
                (void) local_job_signal(lj, SIGKILL);
                close_source(&lj->child_source);
                (void) waitpid(pid, NULL, 0);
                le->executor.events->failed(j, r, "Failed to watch the started process");
                return 0;
        }
        le->executor.events->started(j, pid);
        return 0;

fail_setup:
        report_failed(le, j, r, "set up", spec->argv[0]);
fail:
        closep(&in[0]);
        closep(&in[1]);
        for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                closep(&out[s][0]);
                closep(&out[s][1]);
        }
        return 0;
}

/* ---- across a re-exec ------------------------------------------------------------------------------ */

static int local_serialize(Executor *e, void *runtime, Serializer *s) {
        LocalJob *lj = runtime;
        int r;

        r = serialize_itemf(s, "pid", "%d", (int) lj->pid);
        if (r < 0)
                return r;
        r = serialize_itemf(s, "main-exited", "%d", lj->main_exited);
        if (r < 0)
                return r;
        r = serialize_itemf(s, "returncode", "%d", lj->returncode);
        if (r < 0)
                return r;
        r = serialize_itemf(s, "paused", "%d", lj->paused);
        if (r < 0)
                return r;
        r = serialize_itemf(s, "stopping", "%d", lj->stopping);
        if (r < 0)
                return r;
        r = serialize_itemf(s, "killed", "%d", lj->killed);
        if (r < 0)
                return r;
        if (lj->cgroup_path) {
                r = serialize_item(s, "cgroup", lj->cgroup_path);
                if (r < 0)
                        return r;
        }
        if (lj->stdin_fd >= 0) {
                r = serialize_fd(s, "stdin-fd", lj->stdin_fd, false);
                if (r < 0)
                        return r;
                r = serialize_itemf(s, "input-written", "%zu", lj->input_written);
                if (r < 0)
                        return r;
        }
        for (int i = 0; i < _JOB_STREAM_MAX; i++) {
                if (lj->output_fd[i] < 0)
                        continue;
                r = serialize_fd(s, i == JOB_STDOUT ? "stdout-fd" : "stderr-fd", lj->output_fd[i], false);
                if (r < 0)
                        return r;
                r = serialize_itemf(s, i == JOB_STDOUT ? "stdout-grown" : "stderr-grown", "%d",
                                    lj->pipe_grown[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Ends what runs of a job that cannot be watched, and reaps its main process: it is still this process's
 * child, so its pid (and process group) cannot have been reused. */
static void local_job_kill_and_reap(LocalJob *lj) {
        if (lj->cgroup_path)
                (void) cgroup_signal(lj->cgroup_path, SIGKILL,
                                     lj->executor->cgroup && lj->executor->cgroup->has_kill);
        else if (lj->main_exited && lj->stopping && lj->pid > 0)
                (void) killpg(lj->pid, SIGKILL); /* the rest of a group being stopped */
        if (lj->main_exited || lj->pid <= 0)
                return;
        (void) killpg(lj->pid, SIGKILL);
        (void) kill(lj->pid, SIGKILL);
        close_source(&lj->child_source);
        (void) waitpid(lj->pid, NULL, 0);
        lj->main_exited = true;
}

static int local_deserialize_item(LocalJob *lj, const SerializedItem *item, Deserializer *d) {
        int64_t v;
        int r;

        if (strcmp(item->key, "pid") == 0) {
                r = deserialize_int(item->value, 0, INT32_MAX, &v);
                lj->pid = (pid_t) v;
        } else if (strcmp(item->key, "main-exited") == 0) {
                r = deserialize_int(item->value, 0, 1, &v);
                lj->main_exited = v;
        } else if (strcmp(item->key, "stopping") == 0) {
                r = deserialize_int(item->value, 0, 1, &v);
                lj->stopping = v;
        } else if (strcmp(item->key, "killed") == 0) {
                r = deserialize_int(item->value, 0, 1, &v);
                lj->killed = v;
        } else if (strcmp(item->key, "returncode") == 0) {
                r = deserialize_int(item->value, INT32_MIN, INT32_MAX, &v);
                lj->returncode = (int) v;
        } else if (strcmp(item->key, "paused") == 0) {
                r = deserialize_int(item->value, 0, 1, &v);
                lj->paused = v;
        } else if (strcmp(item->key, "cgroup") == 0) {
                free(lj->cgroup_path);
                lj->cgroup_path = strdup(item->value);
                r = lj->cgroup_path ? 0 : -ENOMEM;
        } else if (strcmp(item->key, "stdin-fd") == 0) {
                closep(&lj->stdin_fd);
                r = deserializer_take_fd(d, item->value, &lj->stdin_fd);
        } else if (strcmp(item->key, "input-written") == 0) {
                r = deserialize_int(item->value, 0, INT64_MAX, &v);
                lj->input_written = (size_t) v;
        } else if (strcmp(item->key, "stdout-fd") == 0 || strcmp(item->key, "stderr-fd") == 0) {
                JobStream s = item->key[3] == 'o' ? JOB_STDOUT : JOB_STDERR;
                closep(&lj->output_fd[s]);
                r = deserializer_take_fd(d, item->value, &lj->output_fd[s]);
        } else if (strcmp(item->key, "stdout-grown") == 0 || strcmp(item->key, "stderr-grown") == 0) {
                r = deserialize_int(item->value, 0, 1, &v);
                lj->pipe_grown[item->key[3] == 'o' ? JOB_STDOUT : JOB_STDERR] = v;
        } else
                r = 0; /* written by a later version: what this one does not know, it does without */
        return r;
}

static int local_deserialize(Executor *e, Job *j, JobSpec *spec, const SerializedItem *items, size_t n_items,
                             Deserializer *d, void **ret_runtime) {
        LocalExecutor *le = local(e);
        LocalJob *lj;
        int r = 0;

        lj = local_job_new(le, j, spec);
        if (!lj)
                return -ENOMEM;
        for (size_t i = 0; i < n_items && r >= 0; i++)
                r = local_deserialize_item(lj, &items[i], d);
        /* A job runs until its main process ends and, with a cgroup, its tree, or being stopped, its process
         * group: one of them must be known. */
        if (r >= 0 && (lj->main_exited ? !lj->cgroup_path && !(lj->stopping && lj->pid > 0) : lj->pid <= 0))
                r = -EBADMSG;
        if (r >= 0 && lj->stdin_fd >= 0 && lj->input_written > spec->input_size)
                r = -EBADMSG;
        if (r < 0) {
                local_job_kill_and_reap(lj);
                local_job_free(lj);
                return r;
        }
        *ret_runtime = lj;
        return 0;
}

static int on_recheck(sd_event_source *source, void *userdata) {
        return on_cgroup_event(source, NULL, userdata);
}

static int local_coldplug(Executor *e, void *runtime) {
        LocalJob *lj = runtime;
        sd_event *event = lj->executor->event;
        _cleanup_free_ char *events = NULL;
        int r;

        if (!lj->main_exited) {
                /* The child of the last image is this one's: sd-event watches it by pid as any other. A
                 * child that ended meanwhile is a zombie still, and is reported at once. */
                r = local_job_watch(lj);
                if (r < 0)
                        goto fail;
                if (lj->stdin_fd >= 0 && lj->input_written >= lj->spec->input_size)
                        local_job_close_stdin(lj);
                return 0;
        }

        /* The main process was reaped already; the job ends when its cgroup empties, or being stopped
         * without one, its process group, which may have happened while nothing watched: look once more
         * from the loop. */
        for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                if (lj->output_fd[s] < 0)
                        continue;
                r = sd_event_add_io(event, &lj->output_source[s], lj->output_fd[s], EPOLLIN, on_output, lj);
                if (r < 0)
                        goto fail;
        }
        local_job_close_stdin(lj);
        if (!lj->cgroup_path) {
                local_job_group_wait(lj);
                return 0;
        }
        if (asprintf(&events, "%s/cgroup.events", lj->cgroup_path) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        r = sd_event_add_inotify(event, &lj->cgroup_source, events, IN_MODIFY, on_cgroup_event, lj);
        if (r < 0)
                goto fail;
        r = sd_event_add_defer(event, &lj->recheck_source, on_recheck, lj);
        if (r < 0)
                goto fail;
        return 0;

fail:
        local_job_kill_and_reap(lj);
        return r;
}

/* ---- the vtable -------------------------------------------------------------------------------------- */

static int local_validate(Executor *e, const JobSpec *spec, JobSpecField *ret_field) {
        LocalExecutor *le = local(e);

        if (spec->memory_max > 0 && !(le->cgroup && le->cgroup->has_memory)) {
                *ret_field = JOB_SPEC_MEMORY_MAX;
                return -EOPNOTSUPP;
        }
        return 0;
}

static int local_signal(Executor *e, void *runtime, int sig) {
        return local_job_signal(runtime, sig);
}

/* Sends sig to the main process too, through its pidfd: one that left the job's process group (setpgid,
 * setsid) must not go on while the rest of it is stopped. */
static void local_job_signal_main(LocalJob *lj, int sig) {
        if (lj->main_exited || !lj->child_source)
                return;
        (void) sd_event_source_send_child_signal(lj->child_source, sig, NULL, 0); /* best effort */
}

static int local_pause(Executor *e, void *runtime) {
        LocalJob *lj = runtime;
        int r;

        if (lj->cgroup_path)
                r = cgroup_freeze(lj->cgroup_path, true);
        else {
                r = local_job_signal(lj, SIGSTOP);
                local_job_signal_main(lj, SIGSTOP);
        }
        if (r < 0)
                return r;
        lj->paused = true;
        return 0;
}

static int local_resume(Executor *e, void *runtime) {
        LocalJob *lj = runtime;
        int r;

        if (lj->cgroup_path)
                r = cgroup_freeze(lj->cgroup_path, false);
        else {
                local_job_signal_main(lj, SIGCONT);
                r = local_job_signal(lj, SIGCONT);
        }
        if (r < 0)
                return r;
        lj->paused = false;
        return 0;
}

/* A paused job being stopped wakes up to act on the signal: it would wait in a frozen cgroup. */
static void local_job_unpause(LocalJob *lj) {
        if (!lj->paused)
                return;
        local_job_signal_main(lj, SIGCONT);
        if (lj->cgroup_path)
                (void) cgroup_freeze(lj->cgroup_path, false);
        lj->paused = false;
}

static int local_stop(Executor *e, void *runtime, ExecutorStop how) {
        LocalJob *lj = runtime;
        int r;

        lj->stopping = true;
        if (how == EXECUTOR_STOP_KILL) {
                r = local_job_signal(lj, SIGKILL);
                lj->killed = true;
                local_job_unpause(lj);
                /* Its main process gone, the job ends now, reported from the loop. */
                if (lj->group_prev || lj->executor->group_waiters == lj)
                        local_group_check_soon(lj->executor);
                return r;
        }
        r = local_job_signal(lj, SIGTERM);
        (void) local_job_signal(lj, SIGCONT); /* a stopped job must wake up to act on SIGTERM */
        local_job_unpause(lj);
        return r;
}

static int local_usage(Executor *e, void *runtime, uint64_t *ret_cpu_usec, uint64_t *ret_memory_peak) {
        LocalJob *lj = runtime;
        uint64_t cpu, mem = 0;
        int r;

        if (!lj->cgroup_path)
                return -ENODATA;
        r = cgroup_read_cpu_usage(lj->cgroup_path, &cpu);
        if (r < 0)
                return r;
        if (lj->executor->cgroup && lj->executor->cgroup->has_memory)
                (void) cgroup_read_memory_peak(lj->cgroup_path, &mem);
        *ret_cpu_usec = cpu;
        *ret_memory_peak = mem;
        return 0;
}

static void local_done(Executor *e, void *runtime) {
        local_job_free(runtime);
}

static void local_free(Executor *e) {
        LocalExecutor *le = local(e);

        strv_free(le->base_environment);
        close_source(&le->group_timer);
        closep(&le->null_fd);
        cgroup_root_free(le->cgroup);
        sd_event_unref(le->event);
        free(le);
}

static const ExecutorVTable local_vtable = {
        .name = "local",
        .validate = local_validate,
        .start = local_start,
        .signal = local_signal,
        .pause = local_pause,
        .resume = local_resume,
        .stop = local_stop,
        .usage = local_usage,
        .serialize = local_serialize,
        .deserialize = local_deserialize,
        .coldplug = local_coldplug,
        .done = local_done,
        .free = local_free,
};

int executor_local_new(sd_event *event, CgroupRoot *cgroup, Executor **ret) {
        LocalExecutor *le = calloc(1, sizeof(LocalExecutor));
        struct rlimit rl;
        int r;

        if (!le) {
                cgroup_root_free(cgroup);
                return -ENOMEM;
        }
        le->executor.vtable = &local_vtable;
        le->event = sd_event_ref(event);
        le->cgroup = cgroup;
        le->null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (le->null_fd < 0) {
                r = -errno;
                local_free(&le->executor);
                return r;
        }
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                rl.rlim_cur = 1024;
        le->fd_reserve_start = (int) MIN(rl.rlim_cur - rl.rlim_cur / 4, (rlim_t) INT_MAX);
        le->base_environment = job_io_base_environment_new(NULL);
        if (!le->base_environment) {
                local_free(&le->executor);
                return -ENOMEM;
        }
        r = sd_event_add_time_relative(event, &le->group_timer, CLOCK_MONOTONIC, 0, 0, on_group_timer, le);
        if (r < 0) {
                local_free(&le->executor);
                return r;
        }
        (void) sd_event_source_set_enabled(le->group_timer, SD_EVENT_OFF);
        *ret = &le->executor;
        return 0;
}
