/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Slurm executor: each job is a local srun child of the daemon, one Slurm job per procpool job. It
 * feeds srun the job's streams, keeps srun's own lines out of the job's stderr, learns the Slurm job id
 * and node from squeue, reads the outcome back from scontrol once srun exits, and stops jobs through
 * scancel. Every Slurm command other than srun is a short-lived child watched on the event loop. The
 * decisions behind it are in docs/slurm.md. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "executor-slurm.h"
#include "job-io.h"
#include "macro.h"
#include "spawn.h"

/* srun's exit status when --immediate found no free CPU (SLURM_EXIT_IMMEDIATE). */
#define SRUN_EXIT_IMMEDIATE 75
/* The wrapper's exit statuses on the node, with a "procpool-slurm: " line on stderr: no such cwd, no
 * such program. */
#define WRAP_EXIT_CHDIR 251
#define WRAP_EXIT_EXEC 252
/* A full cluster is retried this long, from 20 ms between tries up to 500 ms. */
#define IMMEDIATE_RETRY_USEC (60ULL * USEC_PER_SEC)
#define RETRY_MIN_USEC (20ULL * USEC_PER_MSEC)
#define RETRY_MAX_USEC (500ULL * USEC_PER_MSEC)
/* squeue while srun runs: soon after the start, then less often. */
#define LOOKUP_MIN_USEC (30ULL * USEC_PER_MSEC)
#define LOOKUP_MAX_USEC (1000ULL * USEC_PER_MSEC)
/* scontrol after srun exited, while the job is still completing: every 100 ms, for 30 s at most (a step
 * killed with scancel --signal=9 completes some 10 s later). */
#define STATE_INTERVAL_USEC (100ULL * USEC_PER_MSEC)
#define STATE_TRIES 300
/* A helper (squeue, scontrol, scancel) that takes longer is killed. */
#define HELPER_TIMEOUT_USEC (15ULL * USEC_PER_SEC)
#define HELPER_OUTPUT_MAX (256U * 1024U)
/* srun's own lines kept for an error message. */
#define DIAG_MAX 2048U

/* Runs on the node: changes to the job's directory (Slurm falls back to /tmp where it does not exist)
 * and checks the program exists, each failure marked by a status and a line the executor recognizes;
 * then becomes the job's program. */
static const char wrapper_script[] =
        "if [ -n \"$1\" ] && ! cd -- \"$1\" 2>/dev/null; then echo 'procpool-slurm: chdir' >&2; exit 251; fi; "
        "shift; "
        "if ! command -v -- \"$1\" >/dev/null 2>&1; then echo 'procpool-slurm: exec' >&2; exit 252; fi; "
        "exec \"$@\"";

typedef struct SlurmJob SlurmJob;
typedef struct SlurmHelper SlurmHelper;
typedef void (*SlurmHelperDone)(SlurmJob *sj, int status, const char *output);

typedef struct SlurmExecutor {
        Executor executor;
        sd_event *event;
        char *slurm_conf;
        char *partition;
        char **base_environment; /* the daemon's, minus SLURM_* and SRUN_*, plus what srun is told */
        int null_fd;
        char token[17]; /* random, per executor: marks its Slurm jobs (their comment) */
        uint64_t launches;
        SlurmHelper *helpers; /* every helper that runs */
} SlurmExecutor;

/* A short-lived Slurm command and what it prints on stdout. */
struct SlurmHelper {
        SlurmExecutor *executor;
        SlurmJob *job; /* who hears of its end; NULL once that job is gone */
        SlurmHelperDone done;
        pid_t pid;
        sd_event_source *child_source;
        sd_event_source *timer;
        int out_fd;
        char *out;
        size_t out_size;
        SlurmHelper *prev, *next;
};

/* One job while it runs: one srun at a time (another one after an --immediate that found no room). */
struct SlurmJob {
        SlurmExecutor *executor;
        Job *job;
        JobSpec *spec; /* the job's; it outlives this */
        uint64_t id;
        char *name;    /* procpool-<id> */
        char *comment; /* procpool:<token>:<launch>: tells this launch's Slurm job from any other */

        pid_t pid; /* srun's, while it runs */
        sd_event_source *child_source;
        int srun_status; /* its exit status, or minus the signal that killed it */
        bool started;    /* reported */
        bool over;       /* exited or failed reported, or about to be */

        /* The streams: the job's stdin (a pipe the daemon feeds, kept open across launches so that
         * unread input stays; or the caller's fd, duplicated) and stdout/stderr (pipes per launch, or the
         * caller's fds, duplicated: the job gives its own up once started). */
        int stdin_fd; /* the child's end, handed to each srun */
        int input_fd; /* the daemon's writing end */
        sd_event_source *input_source;
        size_t input_written;
        int passed_fd[_JOB_STREAM_MAX];
        int output_fd[_JOB_STREAM_MAX];
        sd_event_source *output_source[_JOB_STREAM_MAX];
        bool pipe_grown[_JOB_STREAM_MAX];

        /* stderr as srun writes it: the task's bytes and srun's own lines. */
        bool err_line_start;
        bool err_in_diag;
        char err_hold[32];
        size_t err_hold_size;
        char diag[DIAG_MAX]; /* srun's lines, the last ones kept */
        size_t diag_size;
        bool marker_seen; /* the wrapper's line came */

        /* What Slurm says. */
        char *slurm_id;
        char *node;
        bool placed;
        SlurmHelper *query;
        unsigned state_tries;
        uint64_t lookup_interval;
        sd_event_source *timer; /* the next squeue, scontrol or launch */
        uint64_t first_launch_usec;
        uint64_t retry_interval;

        /* Stopping: signals wait for the Slurm job id. */
        bool stopping;
        bool killed;
        uint64_t pending_signals; /* 1 << sig */
};

static SlurmExecutor *slurm(Executor *e) {
        return (SlurmExecutor *) e;
}

static void close_source(sd_event_source **s) {
        *s = sd_event_source_disable_unref(*s);
}

static uint64_t now_monotonic(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static void slurm_job_launch_or_fail(SlurmJob *sj);

static bool strv_contains_ptr(char *const *l, const char *p) {
        for (; l && *l; l++)
                if (*l == p)
                        return true;
        return false;
}
static void slurm_job_lookup(SlurmJob *sj);
static int on_timer(sd_event_source *source, uint64_t usec, void *userdata);

/* ---- helpers: squeue, scontrol, scancel ------------------------------------------------------------ */

static void helper_free(SlurmHelper *h) {
        SlurmExecutor *se = h->executor;

        if (h->prev)
                h->prev->next = h->next;
        else
                se->helpers = h->next;
        if (h->next)
                h->next->prev = h->prev;
        if (h->job && h->job->query == h)
                h->job->query = NULL;
        close_source(&h->child_source);
        close_source(&h->timer);
        closep(&h->out_fd);
        free(h->out);
        free(h);
}

/* Takes what the helper printed, up to HELPER_OUTPUT_MAX. */
static void helper_read(SlurmHelper *h) {
        char buf[4096];

        while (h->out_fd >= 0) {
                ssize_t k = read(h->out_fd, buf, sizeof(buf));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return;
                if (h->out_size + (size_t) k > HELPER_OUTPUT_MAX)
                        continue;
                char *n = realloc(h->out, h->out_size + (size_t) k + 1);
                if (!n)
                        continue;
                memcpy(n + h->out_size, buf, (size_t) k);
                h->out = n;
                h->out_size += (size_t) k;
                h->out[h->out_size] = '\0';
        }
}

static int on_helper_exit(sd_event_source *source, const siginfo_t *si, void *userdata) {
        SlurmHelper *h = userdata;
        SlurmJob *sj = h->job;
        SlurmHelperDone done = h->done;
        int status = si->si_code == CLD_EXITED ? si->si_status : -si->si_status;
        char *out;

        helper_read(h);
        out = TAKE_PTR(h->out);
        if (sj && sj->query == h)
                sj->query = NULL;
        helper_free(h);
        if (sj && done)
                done(sj, status, out ?: "");
        free(out);
        return 0;
}

static int on_helper_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        SlurmHelper *h = userdata;

        (void) sd_event_source_send_child_signal(h->child_source, SIGKILL, NULL, 0);
        return 0;
}

/* The environment of every Slurm command: the daemon's (without SLURM_* and SRUN_*), SLURM_CONF. */
static int helper_spawn(SlurmExecutor *se, char **argv, int out_fd, pid_t *ret_pid) {
        SpawnRequest req = {
                .program = argv[0],
                .argv = argv,
                .envp = se->base_environment,
                .path_env = job_io_env_lookup(se->base_environment, "PATH"),
                .fds = { se->null_fd, out_fd >= 0 ? out_fd : se->null_fd, se->null_fd },
                .cgroup_procs_fd = -EBADF,
        };
        return spawn_process(&req, ret_pid, NULL, NULL);
}

/* Runs argv; done hears of its end with what it printed, if sj is still there. */
static int helper_start(SlurmExecutor *se, SlurmJob *sj, char **argv, SlurmHelperDone done,
                        SlurmHelper **ret) {
        int out[2] = { -EBADF, -EBADF };
        SlurmHelper *h;
        int r;

        h = calloc(1, sizeof(SlurmHelper));
        if (!h)
                return -ENOMEM;
        *h = (SlurmHelper) { .executor = se, .job = sj, .done = done, .out_fd = -EBADF };
        if (done) {
                r = job_io_open_pipe(out, true);
                if (r < 0)
                        goto fail;
        }
        r = helper_spawn(se, argv, out[1], &h->pid);
        closep(&out[1]);
        if (r < 0)
                goto fail;
        h->out_fd = TAKE_FD(out[0]);
        h->next = se->helpers;
        if (h->next)
                h->next->prev = h;
        se->helpers = h;
        r = sd_event_add_child(se->event, &h->child_source, h->pid, WEXITED, on_helper_exit, h);
        if (r < 0) {
                (void) kill(h->pid, SIGKILL);
                (void) waitpid(h->pid, NULL, 0);
                helper_free(h);
                return r;
        }
        (void) sd_event_add_time_relative(se->event, &h->timer, CLOCK_MONOTONIC, HELPER_TIMEOUT_USEC, 0,
                                          on_helper_timeout, h); /* best effort */
        if (ret)
                *ret = h;
        return 0;
fail:
        closep(&out[0]);
        closep(&out[1]);
        free(h);
        return r;
}

/* Runs argv and waits for it, at most timeout_usec; what it printed in *ret_out. Blocks. */
static int helper_run_blocking(SlurmExecutor *se, char **argv, uint64_t timeout_usec, char **ret_out) {
        int out[2] = { -EBADF, -EBADF }, status = 0, r;
        uint64_t deadline = now_monotonic() + timeout_usec;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        pid_t pid;

        r = job_io_open_pipe(out, true);
        if (r < 0)
                return r;
        r = helper_spawn(se, argv, out[1], &pid);
        closep(&out[1]);
        if (r < 0) {
                closep(&out[0]);
                return r;
        }
        for (;;) {
                uint64_t now = now_monotonic();
                struct pollfd p = { .fd = out[0], .events = POLLIN };
                char chunk[4096];
                ssize_t k;

                if (now >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                if (poll(&p, 1, (int) ((deadline - now) / USEC_PER_MSEC) + 1) < 0 && errno != EINTR) {
                        r = -errno;
                        break;
                }
                k = read(out[0], chunk, sizeof(chunk));
                if (k < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (k <= 0)
                        break;
                if (size + (size_t) k <= HELPER_OUTPUT_MAX) {
                        char *n = realloc(buf, size + (size_t) k + 1);
                        if (!n) {
                                r = -ENOMEM;
                                break;
                        }
                        buf = n;
                        memcpy(buf + size, chunk, (size_t) k);
                        size += (size_t) k;
                        buf[size] = '\0';
                }
        }
        closep(&out[0]);
        if (r < 0)
                (void) kill(pid, SIGKILL);
        /* EOF comes with its exit, or it was killed: the wait is short. */
        if (waitpid(pid, &status, 0) < 0 && r >= 0)
                r = -errno;
        if (r >= 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                r = -EIO;
        if (r < 0)
                return r;
        if (ret_out)
                *ret_out = buf ? TAKE_PTR(buf) : strdup("");
        return 0;
}

/* ---- the job's streams ------------------------------------------------------------------------------ */

static void slurm_job_keep_diag(SlurmJob *sj, const char *data, size_t size) {
        if (size >= DIAG_MAX)
                return;
        if (sj->diag_size + size > DIAG_MAX - 1) {
                /* Keep the last lines: drop from the front. */
                size_t drop = sj->diag_size + size - (DIAG_MAX - 1);
                memmove(sj->diag, sj->diag + drop, sj->diag_size - drop);
                sj->diag_size -= drop;
        }
        memcpy(sj->diag + sj->diag_size, data, size);
        sj->diag_size += size;
        sj->diag[sj->diag_size] = '\0';
}

static bool line_is_slurms(const char *data, size_t size, bool *ret_undecided) {
        static const char *const prefixes[] = { "srun: ", "slurmstepd: ", "slurmstepd-", "procpool-slurm: " };
        bool undecided = false;

        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++) {
                size_t len = strlen(prefixes[i]);
                if (size >= len && memcmp(data, prefixes[i], len) == 0) {
                        *ret_undecided = false;
                        return true;
                }
                if (size < len && memcmp(data, prefixes[i], size) == 0)
                        undecided = true;
        }
        *ret_undecided = undecided;
        return false;
}

/* stderr as srun writes it: lines that start with "srun: ", "slurmstepd: " or "slurmstepd-<node>: " (Slurm's) or
 * "procpool-slurm: " (the wrapper's) are kept as diagnostics, everything else is the task's and goes to
 * the job as it comes. Only the start of a line waits, until it can be told apart. */
static void slurm_job_stderr(SlurmJob *sj, const char *data, size_t size) {
        const ExecutorEvents *ev = sj->executor->executor.events;

        while (size > 0) {
                if (sj->err_in_diag) {
                        const char *nl = memchr(data, '\n', size);
                        size_t n = nl ? (size_t) (nl - data) + 1 : size;
                        slurm_job_keep_diag(sj, data, n);
                        if (nl) {
                                sj->err_in_diag = false;
                                sj->err_line_start = true;
                        }
                        data += n;
                        size -= n;
                        continue;
                }
                if (sj->err_line_start) {
                        bool undecided;
                        size_t take = MIN(size, sizeof(sj->err_hold) - sj->err_hold_size);
                        memcpy(sj->err_hold + sj->err_hold_size, data, take);
                        if (line_is_slurms(sj->err_hold, sj->err_hold_size + take, &undecided)) {
                                if (sj->err_hold_size + take >= 16 &&
                                    memcmp(sj->err_hold, "procpool-slurm: ", 16) == 0)
                                        sj->marker_seen = true;
                                slurm_job_keep_diag(sj, sj->err_hold, sj->err_hold_size);
                                sj->err_hold_size = 0;
                                sj->err_line_start = false;
                                sj->err_in_diag = true;
                                continue; /* the bytes of data are taken from there */
                        }
                        if (undecided) {
                                sj->err_hold_size += take;
                                data += take;
                                size -= take;
                                continue;
                        }
                        /* The task's: what was held goes first. */
                        if (sj->err_hold_size > 0)
                                ev->output(sj->job, JOB_STDERR, sj->err_hold, sj->err_hold_size);
                        sj->err_hold_size = 0;
                        sj->err_line_start = false;
                        continue;
                }
                const char *nl = memchr(data, '\n', size);
                size_t n = nl ? (size_t) (nl - data) + 1 : size;
                ev->output(sj->job, JOB_STDERR, data, n);
                if (nl)
                        sj->err_line_start = true;
                data += n;
                size -= n;
        }
}

/* What was held at the start of a line that never ended is the task's. */
static void slurm_job_stderr_flush(SlurmJob *sj) {
        if (sj->err_hold_size > 0 && sj->started && !sj->over)
                sj->executor->executor.events->output(sj->job, JOB_STDERR, sj->err_hold, sj->err_hold_size);
        sj->err_hold_size = 0;
        sj->err_line_start = true;
        sj->err_in_diag = false;
}

static void slurm_job_sink(void *userdata, JobStream s, const void *data, size_t size) {
        SlurmJob *sj = userdata;

        if (s == JOB_STDERR)
                slurm_job_stderr(sj, data, size);
        else
                sj->executor->executor.events->output(sj->job, s, data, size);
}

static void slurm_job_close_stream(SlurmJob *sj, JobStream s) {
        close_source(&sj->output_source[s]);
        closep(&sj->output_fd[s]);
}

static void slurm_job_close_input(SlurmJob *sj) {
        close_source(&sj->input_source);
        closep(&sj->input_fd);
        job_spec_release_input(sj->spec);
}

static int on_output(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        SlurmJob *sj = userdata;
        JobStream s = source == sj->output_source[JOB_STDOUT] ? JOB_STDOUT : JOB_STDERR;

        if (!job_io_read(fd, &sj->pipe_grown[s], s, slurm_job_sink, sj))
                slurm_job_close_stream(sj, s);
        return 0;
}

static int on_input(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        SlurmJob *sj = userdata;

        if (!job_io_write_input(fd, sj->spec, &sj->input_written))
                slurm_job_close_input(sj);
        return 0;
}

/* ---- the job's end ---------------------------------------------------------------------------------- */

static void slurm_job_free(SlurmJob *sj) {
        if (!sj)
                return;
        for (SlurmHelper *h = sj->executor->helpers; h; h = h->next)
                if (h->job == sj)
                        h->job = NULL;
        close_source(&sj->child_source);
        close_source(&sj->timer);
        slurm_job_close_input(sj);
        closep(&sj->stdin_fd);
        for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                slurm_job_close_stream(sj, s);
                closep(&sj->passed_fd[s]);
        }
        free(sj->name);
        free(sj->comment);
        free(sj->slurm_id);
        free(sj->node);
        free(sj);
}

/* The last line srun (or slurmstepd) printed, for an error message; NULL if none. */
static char *slurm_job_last_diag(SlurmJob *sj) {
        char *end, *start;

        if (sj->diag_size == 0)
                return NULL;
        end = sj->diag + sj->diag_size;
        while (end > sj->diag && (end[-1] == '\n' || end[-1] == ' '))
                end--;
        start = end;
        while (start > sj->diag && start[-1] != '\n')
                start--;
        /* The wrapper's marker says nothing to a person. */
        if (end - start >= 16 && memcmp(start, "procpool-slurm: ", 16) == 0)
                return NULL;
        return strndup(start, (size_t) (end - start));
}

static void slurm_job_report_failed(SlurmJob *sj, int error, const char *fmt, ...) _printf_(3, 4);
static void slurm_job_report_failed(SlurmJob *sj, int error, const char *fmt, ...) {
        _cleanup_free_ char *detail = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&detail, fmt, ap) < 0)
                detail = NULL;
        va_end(ap);
        sj->over = true;
        sj->executor->executor.events->failed(sj->job, error, detail);
}

static void slurm_job_report_exited(SlurmJob *sj, int returncode) {
        ExecutorExit x = { .returncode = returncode };

        sj->over = true;
        sj->executor->executor.events->exited(sj->job, &x);
}

/* Value of key= in scontrol's one-line output, or NULL. */
static char *scontrol_field(const char *out, const char *key) {
        size_t len = strlen(key);

        for (const char *p = out; (p = strstr(p, key));) {
                if ((p == out || p[-1] == ' ') && p[len] == '=') {
                        const char *v = p + len + 1;
                        return strndup(v, strcspn(v, " \n"));
                }
                p += len;
        }
        return NULL;
}

static bool state_is_final(const char *state) {
        static const char *const final[] = { "COMPLETED", "FAILED",    "CANCELLED",
                                             "TIMEOUT",   "NODE_FAIL", "PREEMPTED",
                                             "BOOT_FAIL", "DEADLINE",  "OUT_OF_MEMORY" };
        for (size_t i = 0; i < ELEMENTSOF(final); i++)
                if (strcmp(state, final[i]) == 0)
                        return true;
        return false;
}

static void slurm_job_query_state(SlurmJob *sj);

/* The job's outcome from srun's status alone: Slurm could not be asked. A status of 128+N is taken for
 * what it is, an exit status. */
static void slurm_job_end_by_status(SlurmJob *sj) {
        slurm_job_report_exited(sj, sj->srun_status);
}

/* What Slurm says of the job, once srun has exited. */
static void slurm_job_end(SlurmJob *sj, const char *state, const char *exit_code) {
        const char *id = sj->slurm_id;
        int code = 0, sig = 0;

        if (!exit_code || sscanf(exit_code, "%d:%d", &code, &sig) != 2) {
                code = sj->srun_status >= 0 ? sj->srun_status : 0;
                sig = sj->srun_status < 0 ? -sj->srun_status : 0;
        }
        if (strcmp(state, "NODE_FAIL") == 0) {
                slurm_job_report_failed(sj, -EHOSTDOWN,
                                        "The node %s failed while the job ran (Slurm job %s ended NODE_FAIL)",
                                        sj->node ?: "(unknown)", id);
                return;
        }
        if (strcmp(state, "TIMEOUT") == 0) {
                slurm_job_report_failed(sj, -ETIME,
                                        "Slurm's time limit ended the job (Slurm job %s ended TIMEOUT)", id);
                return;
        }
        if (strcmp(state, "CANCELLED") == 0 && !sj->stopping) {
                slurm_job_report_failed(
                        sj, -ECANCELED,
                        "Slurm cancelled the job, not procpool (Slurm job %s ended CANCELLED)", id);
                return;
        }
        if (strcmp(state, "CANCELLED") == 0 && sig == 0 && code == 0)
                /* A step sent SIGKILL (scancel --signal=9) is cancelled by slurmstepd, its ExitCode 0:0:
                 * it was killed by what procpool sent. */
                sig = sj->killed ? SIGKILL : SIGTERM;
        if (strcmp(state, "COMPLETED") != 0 && strcmp(state, "FAILED") != 0 &&
            strcmp(state, "CANCELLED") != 0) {
                slurm_job_report_failed(sj, -EIO, "Slurm ended the job: Slurm job %s ended %s", id, state);
                return;
        }
        if (sig == 0 && code == WRAP_EXIT_CHDIR && (sj->marker_seen || sj->passed_fd[JOB_STDERR] >= 0)) {
                slurm_job_report_failed(sj, -ENOENT, "Failed to change directory to '%s' on node %s",
                                        sj->spec->cwd ?: "", sj->node ?: "(unknown)");
                return;
        }
        if (sig == 0 && code == WRAP_EXIT_EXEC && (sj->marker_seen || sj->passed_fd[JOB_STDERR] >= 0)) {
                slurm_job_report_failed(sj, -ENOENT,
                                        "Failed to execute '%s' on node %s: No such file or directory",
                                        sj->spec->argv[0], sj->node ?: "(unknown)");
                return;
        }
        slurm_job_report_exited(sj, sig > 0 ? -sig : code);
}

static void on_state(SlurmJob *sj, int status, const char *out) {
        _cleanup_free_ char *state = NULL, *exit_code = NULL, *nodes = NULL;

        state = scontrol_field(out, "JobState");
        exit_code = scontrol_field(out, "ExitCode");
        nodes = scontrol_field(out, "NodeList");
        if (nodes && !sj->node && strcmp(nodes, "(null)") != 0)
                sj->node = TAKE_PTR(nodes);
        if (status == 0 && state && state_is_final(state)) {
                slurm_job_end(sj, state, exit_code);
                return;
        }
        /* Still completing, or the controller did not answer: again, a while. */
        if (status == 0 && state && sj->killed && sj->state_tries == 1) {
                /* srun was killed before Slurm's end of it: Slurm's job must not outlive it. */
                char *argv[] = { (char *) "scancel", sj->slurm_id, NULL };
                (void) helper_start(sj->executor, NULL, argv, NULL, NULL);
        }
        if (sj->state_tries >= STATE_TRIES) {
                slurm_job_end_by_status(sj);
                return;
        }
        close_source(&sj->timer);
        if (sd_event_add_time_relative(sj->executor->event, &sj->timer, CLOCK_MONOTONIC, STATE_INTERVAL_USEC,
                                       0, on_timer, sj) < 0) {
                slurm_job_end_by_status(sj);
                return;
        }
}

static void slurm_job_query_state(SlurmJob *sj) {
        char *argv[] = { (char *) "scontrol", (char *) "-o", (char *) "show",
                         (char *) "job",      sj->slurm_id,  NULL };

        sj->state_tries++;
        if (helper_start(sj->executor, sj, argv, on_state, &sj->query) < 0)
                slurm_job_end_by_status(sj);
}

/* ---- where it runs: squeue -------------------------------------------------------------------------- */

/* Finds this launch's line in squeue's "id|nodes|state|comment" lines. */
static bool parse_lookup(SlurmJob *sj, const char *out, char **ret_id, char **ret_node) {
        for (const char *line = out; *line;) {
                const char *end = strchrnul(line, '\n');
                const char *f[4];
                size_t n = 0;

                f[n++] = line;
                for (const char *p = line; p < end && n < 4; p++)
                        if (*p == '|')
                                f[n++] = p + 1;
                if (n == 4 && (size_t) (end - f[3]) == strlen(sj->comment) &&
                    memcmp(f[3], sj->comment, (size_t) (end - f[3])) == 0) {
                        *ret_id = strndup(f[0], (size_t) (f[1] - 1 - f[0]));
                        *ret_node = f[2] - 1 > f[1] ? strndup(f[1], (size_t) (f[2] - 1 - f[1])) : NULL;
                        return *ret_id != NULL;
                }
                line = *end ? end + 1 : end;
        }
        return false;
}

static void slurm_job_send_pending(SlurmJob *sj);
static void slurm_job_after_srun(SlurmJob *sj);

static void on_lookup(SlurmJob *sj, int status, const char *out) {
        _cleanup_free_ char *id = NULL, *node = NULL;
        bool found = status == 0 && parse_lookup(sj, out, &id, &node);

        if (found && !sj->slurm_id)
                sj->slurm_id = TAKE_PTR(id);
        if (found && node && !sj->node)
                sj->node = TAKE_PTR(node);
        if (sj->slurm_id && sj->node && !sj->placed && sj->started) {
                const ExecutorEvents *ev = sj->executor->executor.events;
                sj->placed = true;
                if (ev->placed)
                        ev->placed(sj->job, sj->slurm_id, sj->node);
        }
        if (sj->slurm_id)
                slurm_job_send_pending(sj);

        if (sj->pid == 0) {
                /* srun is gone: this was the last look. */
                slurm_job_after_srun(sj);
                return;
        }
        if (sj->placed)
                return;
        sj->lookup_interval = MIN(sj->lookup_interval * 2, LOOKUP_MAX_USEC);
        close_source(&sj->timer);
        (void) sd_event_add_time_relative(sj->executor->event, &sj->timer, CLOCK_MONOTONIC,
                                          sj->lookup_interval, 0, on_timer,
                                          sj); /* without it the end's look finds it */
}

static void slurm_job_lookup(SlurmJob *sj) {
        char *argv[] = { (char *) "squeue", (char *) "-h",          (char *) "-t",
                         (char *) "all",    (char *) "-n",          sj->name,
                         (char *) "-o",     (char *) "%i|%N|%T|%k", NULL };

        if (sj->query)
                return;
        if (helper_start(sj->executor, sj, argv, on_lookup, &sj->query) < 0 && sj->pid == 0)
                slurm_job_end_by_status(sj);
}

/* The job's timer: the next look while srun runs, the next state query once it ended, or the next
 * launch after a full cluster. */
static int on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        SlurmJob *sj = userdata;

        close_source(&sj->timer);
        if (sj->pid > 0) {
                if (!sj->placed)
                        slurm_job_lookup(sj);
                return 0;
        }
        if (sj->slurm_id && sj->state_tries > 0) {
                slurm_job_query_state(sj);
                return 0;
        }
        if (sj->stopping) {
                /* Stopped between two launches: nothing runs. */
                slurm_job_report_exited(sj, sj->killed ? -SIGKILL : -SIGTERM);
                return 0;
        }
        slurm_job_launch_or_fail(sj);
        return 0;
}

/* ---- srun ------------------------------------------------------------------------------------------- */

/* srun is gone and its streams are drained: decide what Slurm's job (if any) became. */
static void slurm_job_after_srun(SlurmJob *sj) {
        _cleanup_free_ char *last = NULL;

        if (sj->slurm_id && sj->node) {
                slurm_job_query_state(sj);
                return;
        }
        if (sj->stopping) {
                /* Stopped before it ran on a node. */
                slurm_job_report_exited(sj, sj->srun_status);
                return;
        }
        if (sj->slurm_id && sj->srun_status == SRUN_EXIT_IMMEDIATE) {
                /* No CPU was free: launch again soon, for a while. */
                if (now_monotonic() - sj->first_launch_usec < IMMEDIATE_RETRY_USEC) {
                        free(sj->slurm_id);
                        sj->slurm_id = NULL;
                        sj->diag_size = 0;
                        sj->retry_interval = sj->retry_interval ? MIN(sj->retry_interval * 2, RETRY_MAX_USEC)
                                                                : RETRY_MIN_USEC;
                        close_source(&sj->timer);
                        if (sd_event_add_time_relative(sj->executor->event, &sj->timer, CLOCK_MONOTONIC,
                                                       sj->retry_interval, 0, on_timer, sj) >= 0)
                                return;
                }
                slurm_job_report_failed(sj, -EBUSY,
                                        "The cluster had no free CPU for the job for %llu"
                                        " s (srun --immediate)",
                                        IMMEDIATE_RETRY_USEC / USEC_PER_SEC);
                return;
        }
        last = slurm_job_last_diag(sj);
        if (sj->slurm_id)
                slurm_job_report_failed(sj, -EIO, "Slurm job %s never ran: %s", sj->slurm_id,
                                        last ?: "srun failed");
        else if (last)
                slurm_job_report_failed(sj, -EIO, "srun failed: %s", last);
        else
                slurm_job_report_failed(sj, -EIO, "srun exited with status %d before Slurm ran the job",
                                        sj->srun_status);
}

static int on_srun_exit(sd_event_source *source, const siginfo_t *si, void *userdata) {
        SlurmJob *sj = userdata;

        sj->srun_status = si->si_code == CLD_EXITED ? si->si_status : -si->si_status;
        sj->pid = 0;
        close_source(&sj->child_source);
        close_source(&sj->timer);
        /* What srun wrote is in the pipes now: take it, then stop listening. */
        for (int s = 0; s < _JOB_STREAM_MAX; s++)
                if (sj->output_fd[s] >= 0) {
                        (void) job_io_read(sj->output_fd[s], &sj->pipe_grown[s], s, slurm_job_sink, sj);
                        slurm_job_close_stream(sj, s);
                }
        slurm_job_stderr_flush(sj);

        if (sj->query)
                sj->query->done = NULL, sj->query->job = NULL, sj->query = NULL;
        if (sj->slurm_id && sj->node)
                slurm_job_after_srun(sj);
        else
                slurm_job_lookup(sj); /* its Slurm job, if there is one, once more */
        return 0;
}

static int slurm_job_argv(SlurmJob *sj, char ***ret) {
        SlurmExecutor *se = sj->executor;
        const JobSpec *spec = sj->spec;
        size_t n = 0, na = 0;
        char **argv;

        for (char **a = spec->argv; a && *a; a++)
                na++;
        argv = calloc(20 + na, sizeof(char *));
        if (!argv)
                return -ENOMEM;
#define ADD(s)                           \
        do {                             \
                argv[n] = strdup(s);     \
                if (!argv[n++]) {        \
                        strv_free(argv); \
                        return -ENOMEM;  \
                }                        \
        } while (0)
#define ADDF(...)                                            \
        do {                                                 \
                if (asprintf(&argv[n++], __VA_ARGS__) < 0) { \
                        argv[n - 1] = NULL;                  \
                        strv_free(argv);                     \
                        return -ENOMEM;                      \
                }                                            \
        } while (0)
        ADD("srun");
        ADD("--quiet");
        ADD("--immediate");
        ADDF("--job-name=%s", sj->name);
        ADDF("--comment=%s", sj->comment);
        ADD("--nodes=1");
        ADD("--ntasks=1");
        if (se->partition)
                ADDF("--partition=%s", se->partition);
        if (spec->cwd)
                ADDF("--chdir=%s", spec->cwd);
        ADD("--export=ALL");
        ADD("--");
        ADD("/bin/sh");
        ADD("-c");
        ADD(wrapper_script);
        ADD("procpool-slurm");
        ADD(spec->cwd ?: "");
        for (size_t i = 0; i < na; i++)
                ADD(spec->argv[i]);
#undef ADD
#undef ADDF
        *ret = argv;
        return 0;
}

/* Starts one srun for the job, with fresh stdout/stderr pipes where the job captures them. */
static int slurm_job_launch(SlurmJob *sj) {
        SlurmExecutor *se = sj->executor;
        int out[2][2] = { { -EBADF, -EBADF }, { -EBADF, -EBADF } };
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char **env = NULL;
        SpawnRequest req;
        int r;

        free(sj->comment);
        if (asprintf(&sj->comment, "procpool:%s:%" PRIu64, se->token, ++se->launches) < 0) {
                sj->comment = NULL;
                return -ENOMEM;
        }
        r = slurm_job_argv(sj, &argv);
        if (r < 0)
                return r;
        env = job_io_build_env(se->base_environment, sj->spec);
        if (!env)
                return -ENOMEM;
        /* A job's own SLURM_* or SRUN_* would steer srun, as the daemon's would: only the executor's
         * own (SLURM_CONF, SLURM_EXIT_IMMEDIATE) stay. */
        for (size_t i = 0, k = 0;; i++) {
                if (env[i] && (strncmp(env[i], "SLURM_", 6) == 0 || strncmp(env[i], "SRUN_", 5) == 0) &&
                    strv_contains_ptr(sj->spec->environment, env[i]))
                        continue;
                env[k++] = env[i];
                if (!env[i])
                        break;
        }
        req = (SpawnRequest) {
                .program = "srun",
                .argv = argv,
                .envp = env,
                .path_env = job_io_env_lookup(se->base_environment, "PATH"),
                .cgroup_procs_fd = -EBADF,
                .set_user = sj->spec->user.set,
                .uid = sj->spec->user.uid,
                .gid = sj->spec->user.gid,
                .groups = sj->spec->user.groups,
                .n_groups = sj->spec->user.n_groups,
        };
        req.fds[0] = sj->stdin_fd >= 0 ? sj->stdin_fd : se->null_fd;
        for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                if (sj->passed_fd[s] >= 0) {
                        req.fds[1 + s] = sj->passed_fd[s];
                        continue;
                }
                r = job_io_open_pipe(out[s], true);
                if (r < 0)
                        goto fail;
                req.fds[1 + s] = out[s][1];
        }
        r = spawn_process(&req, &sj->pid, NULL, NULL);
        closep(&out[0][1]);
        closep(&out[1][1]);
        if (r < 0)
                goto fail;
        for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                sj->output_fd[s] = TAKE_FD(out[s][0]);
                sj->pipe_grown[s] = false;
        }
        sj->err_line_start = true;
        sj->err_in_diag = false;
        sj->err_hold_size = 0;
        sj->marker_seen = false;

        r = sd_event_add_child(se->event, &sj->child_source, sj->pid, WEXITED, on_srun_exit, sj);
        if (r < 0)
                goto fail_running;
        for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                if (sj->output_fd[s] < 0)
                        continue;
                r = sd_event_add_io(se->event, &sj->output_source[s], sj->output_fd[s], EPOLLIN, on_output,
                                    sj);
                if (r < 0)
                        goto fail_running;
        }
        sj->lookup_interval = LOOKUP_MIN_USEC;
        r = sd_event_add_time_relative(se->event, &sj->timer, CLOCK_MONOTONIC, sj->lookup_interval, 0,
                                       on_timer, sj);
        if (r < 0)
                goto fail_running;
        return 0;

fail_running:
        /* Nothing was allocated yet that srun's death would leak for long: InactiveLimit ends it. */
        (void) kill(sj->pid, SIGKILL);
        close_source(&sj->child_source);
        (void) waitpid(sj->pid, NULL, 0);
        sj->pid = 0;
        for (int s = 0; s < _JOB_STREAM_MAX; s++)
                slurm_job_close_stream(sj, s);
        return r;
fail:
        for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                closep(&out[s][0]);
                closep(&out[s][1]);
        }
        return r;
}

static void slurm_job_launch_or_fail(SlurmJob *sj) {
        int r = slurm_job_launch(sj);
        if (r < 0)
                slurm_job_report_failed(sj, r, "Failed to execute 'srun': %s", strerror(-r));
}

/* ---- signals through scancel ------------------------------------------------------------------------ */

static void slurm_job_scancel(SlurmJob *sj, int sig) {
        char signal_arg[32];
        char *argv[] = { (char *) "scancel", (char *) "--quiet", signal_arg, sj->slurm_id, NULL };

        snprintf(signal_arg, sizeof(signal_arg), "--signal=%d", sig);
        (void) helper_start(sj->executor, NULL, argv, NULL, NULL); /* best effort: srun's end tells */
}

static void slurm_job_send_pending(SlurmJob *sj) {
        for (int sig = 1; sig < 64 && sj->pending_signals; sig++)
                if (sj->pending_signals & (1ULL << sig)) {
                        sj->pending_signals &= ~(1ULL << sig);
                        slurm_job_scancel(sj, sig);
                }
}

static int slurm_job_signal(SlurmJob *sj, int sig) {
        if (sig <= 0 || sig >= 64)
                return -EINVAL;
        if (sj->pid == 0)
                return 0; /* between launches, or ending */
        if (!sj->slurm_id) {
                /* Its Slurm job id comes with the next look. */
                sj->pending_signals |= 1ULL << sig;
                if (!sj->query) {
                        close_source(&sj->timer);
                        slurm_job_lookup(sj);
                }
                return 0;
        }
        slurm_job_scancel(sj, sig);
        return 0;
}

/* ---- the vtable -------------------------------------------------------------------------------------- */

static int slurm_validate(Executor *e, const JobSpec *spec, JobSpecField *ret_field) {
        if (spec->memory_max > 0) {
                *ret_field = JOB_SPEC_MEMORY_MAX;
                return -EOPNOTSUPP;
        }
        return 0;
}

static int slurm_start(Executor *e, Job *j, uint64_t id, JobSpec *spec, void **runtime) {
        SlurmExecutor *se = slurm(e);
        int in[2] = { -EBADF, -EBADF };
        SlurmJob *sj;
        int r;

        sj = calloc(1, sizeof(SlurmJob));
        if (!sj)
                return -ENOMEM;
        *sj = (SlurmJob) {
                .executor = se,
                .job = j,
                .spec = spec,
                .id = id,
                .stdin_fd = -EBADF,
                .input_fd = -EBADF,
                .passed_fd = { -EBADF, -EBADF },
                .output_fd = { -EBADF, -EBADF },
                .err_line_start = true,
        };
        if (asprintf(&sj->name, "procpool-%" PRIu64, id) < 0) {
                free(sj);
                return -ENOMEM;
        }
        *runtime = sj;

        /* The job gives its fds up once it runs; a second launch needs them too. */
        if (spec->has_input) {
                r = job_io_open_pipe(in, false);
                if (r < 0)
                        goto fail;
                sj->stdin_fd = TAKE_FD(in[0]);
                sj->input_fd = TAKE_FD(in[1]);
        } else if (spec->fds[0] >= 0) {
                sj->stdin_fd = fcntl(spec->fds[0], F_DUPFD_CLOEXEC, 3);
                if (sj->stdin_fd < 0) {
                        r = -errno;
                        goto fail;
                }
        }
        for (int s = 0; s < _JOB_STREAM_MAX; s++)
                if (spec->fds[1 + s] >= 0) {
                        sj->passed_fd[s] = fcntl(spec->fds[1 + s], F_DUPFD_CLOEXEC, 3);
                        if (sj->passed_fd[s] < 0) {
                                r = -errno;
                                goto fail;
                        }
                }
        sj->first_launch_usec = now_monotonic();
        r = slurm_job_launch(sj);
        if (r < 0) {
                slurm_job_report_failed(sj, r, "Failed to execute 'srun': %s", strerror(-r));
                return 0;
        }
        if (sj->input_fd >= 0) {
                if (spec->input_size > JOB_IO_READ_CHUNK) /* fewer wakeups for bulk input; best effort */
                        (void) fcntl(sj->input_fd, F_SETPIPE_SZ,
                                     (int) MIN(spec->input_size, JOB_IO_BULK_PIPE_SIZE));
                if (spec->input_size == 0)
                        slurm_job_close_input(sj);
                else if (sd_event_add_io(se->event, &sj->input_source, sj->input_fd, EPOLLOUT, on_input, sj) <
                         0) {
                        (void) kill(sj->pid, SIGKILL); /* nothing is allocated yet this early */
                        slurm_job_report_failed(sj, -ENOMEM, "Failed to watch srun's stdin");
                        return 0;
                }
        }
        sj->started = true;
        se->executor.events->started(j, sj->pid);
        return 0;

fail:
        slurm_job_report_failed(sj, r, "Failed to set up the streams of srun: %s", strerror(-r));
        return 0;
}

static int slurm_signal(Executor *e, void *runtime, int sig) {
        return slurm_job_signal(runtime, sig);
}

static int slurm_stop(Executor *e, void *runtime, ExecutorStop how) {
        SlurmJob *sj = runtime;

        sj->stopping = true;
        if (sj->pid == 0 && !sj->slurm_id && !sj->query && !sj->over) {
                /* Between two launches: nothing runs; the end is reported from the loop. */
                close_source(&sj->timer);
                sj->killed = how == EXECUTOR_STOP_KILL;
                return sd_event_add_time_relative(sj->executor->event, &sj->timer, CLOCK_MONOTONIC, 0, 0,
                                                  on_timer, sj);
        }
        if (how == EXECUTOR_STOP_KILL) {
                sj->killed = true;
                if (!sj->slurm_id && sj->pid > 0) {
                        /* Slurm has not told its job id yet, maybe never will (an unreachable controller):
                         * srun goes, and its Slurm job, if one appears, is cancelled when srun's end is
                         * looked at. */
                        (void) kill(sj->pid, SIGKILL);
                        return 0;
                }
                return slurm_job_signal(sj, SIGKILL);
        }
        /* Never SIGTERM to srun: it would SIGKILL the task at once. */
        return slurm_job_signal(sj, SIGTERM);
}

/* Ends what runs of the job now, blocking for a few seconds at most: the daemon is letting it go. */
static void slurm_job_abandon(SlurmJob *sj) {
        SlurmExecutor *se = sj->executor;

        if (sj->pid == 0)
                return;
        if (!sj->slurm_id) {
                char *argv[] = { (char *) "squeue", (char *) "-h",          (char *) "-t",
                                 (char *) "all",    (char *) "-n",          sj->name,
                                 (char *) "-o",     (char *) "%i|%N|%T|%k", NULL };
                _cleanup_free_ char *out = NULL, *node = NULL;
                if (helper_run_blocking(se, argv, 5 * USEC_PER_SEC, &out) >= 0)
                        (void) parse_lookup(sj, out, &sj->slurm_id, &node);
        }
        if (sj->slurm_id) {
                char *argv[] = { (char *) "scancel", (char *) "--quiet", sj->slurm_id, NULL };
                (void) helper_run_blocking(se, argv, 5 * USEC_PER_SEC, NULL);
        }
        close_source(&sj->child_source);
        (void) kill(sj->pid, SIGKILL);
        (void) waitpid(sj->pid, NULL, 0);
        sj->pid = 0;
}

static void slurm_done(Executor *e, void *runtime) {
        SlurmJob *sj = runtime;

        slurm_job_abandon(sj);
        slurm_job_free(sj);
}

static void slurm_free(Executor *e) {
        SlurmExecutor *se = slurm(e);

        /* Helpers that still run (scancel sent at the end) are waited for, briefly. */
        while (se->helpers) {
                SlurmHelper *h = se->helpers;
                pid_t k = 0;
                close_source(&h->child_source);
                for (int i = 0; i < 50 && (k = waitpid(h->pid, NULL, WNOHANG)) == 0; i++)
                        (void) usleep(100 * 1000);
                if (k == 0) {
                        (void) kill(h->pid, SIGKILL);
                        (void) waitpid(h->pid, NULL, 0);
                }
                helper_free(h);
        }
        strv_free(se->base_environment);
        closep(&se->null_fd);
        free(se->slurm_conf);
        free(se->partition);
        sd_event_unref(se->event);
        free(se);
}

static const ExecutorVTable slurm_vtable = {
        .name = "slurm",
        .validate = slurm_validate,
        .start = slurm_start,
        .signal = slurm_signal,
        .stop = slurm_stop,
        .done = slurm_done,
        .free = slurm_free,
};

/* The environment of srun and of every Slurm command: the daemon's without any SLURM_* or SRUN_* (an
 * inherited SLURM_JOB_ID, say, would make srun run inside another job), and SLURM_CONF when given. */
static char **slurm_environment_new(const char *slurm_conf) {
        static const char *const drop[] = { "SLURM_", "SRUN_", NULL };
        char **env = job_io_base_environment_new(drop);
        size_t n = 0;

        if (!env)
                return NULL;
        for (char **e = env; *e; e++)
                n++;
        char **l = realloc(env, (n + 3) * sizeof(char *));
        if (!l) {
                strv_free(env);
                return NULL;
        }
        env = l;
        env[n] = NULL;
        if (asprintf(&env[n], "SLURM_EXIT_IMMEDIATE=%d", SRUN_EXIT_IMMEDIATE) < 0) {
                env[n] = NULL;
                strv_free(env);
                return NULL;
        }
        env[++n] = NULL;
        if (slurm_conf) {
                if (asprintf(&env[n], "SLURM_CONF=%s", slurm_conf) < 0) {
                        env[n] = NULL;
                        strv_free(env);
                        return NULL;
                }
                env[++n] = NULL;
        }
        return env;
}

int executor_slurm_new(sd_event *event, const char *slurm_conf, const char *partition, Executor **ret) {
        SlurmExecutor *se = calloc(1, sizeof(SlurmExecutor));
        uint64_t token;

        if (!se)
                return -ENOMEM;
        se->executor.vtable = &slurm_vtable;
        se->event = sd_event_ref(event);
        se->null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        se->slurm_conf = slurm_conf ? strdup(slurm_conf) : NULL;
        se->partition = partition ? strdup(partition) : NULL;
        se->base_environment = slurm_environment_new(slurm_conf);
        if (se->null_fd < 0 || (slurm_conf && !se->slurm_conf) || (partition && !se->partition) ||
            !se->base_environment) {
                int r = se->null_fd < 0 ? -errno : -ENOMEM;
                slurm_free(&se->executor);
                return r;
        }
        if (getrandom(&token, sizeof(token), 0) != sizeof(token))
                token = (uint64_t) now_monotonic() ^ ((uint64_t) getpid() << 32);
        snprintf(se->token, sizeof(se->token), "%016" PRIx64, token);
        *ret = &se->executor;
        return 0;
}

int executor_slurm_cpus(const char *slurm_conf, const char *partition, unsigned *ret) {
        SlurmExecutor se = { .null_fd = open("/dev/null", O_RDWR | O_CLOEXEC) };
        _cleanup_free_ char *out = NULL, *partition_arg = NULL;
        unsigned allocated, idle, other, total;
        char *argv[6] = { (char *) "sinfo", (char *) "-h", (char *) "-o", (char *) "%C", NULL, NULL };
        int r;

        if (se.null_fd < 0)
                return -errno;
        se.base_environment = slurm_environment_new(slurm_conf);
        if (!se.base_environment) {
                closep(&se.null_fd);
                return -ENOMEM;
        }
        if (partition) {
                if (asprintf(&partition_arg, "--partition=%s", partition) < 0) {
                        partition_arg = NULL;
                        r = -ENOMEM;
                        goto finish;
                }
                argv[4] = partition_arg;
        }
        r = helper_run_blocking(&se, argv, 5 * USEC_PER_SEC, &out);
        if (r < 0)
                goto finish;
        /* allocated/idle/other/total, one line per partition asked for */
        if (sscanf(out, "%u/%u/%u/%u", &allocated, &idle, &other, &total) != 4)
                r = -EBADMSG;
        else
                *ret = total;
finish:
        strv_free(se.base_environment);
        closep(&se.null_fd);
        return r;
}
