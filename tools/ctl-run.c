/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* procpoolctl's commands that run jobs and wait for them: call, communicate, submit and wait. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "procpool-api.h"
#include "ctl-errors.h"
#include "ctl-output.h"
#include "ctl-parse.h"
#include "ctl.h"

/* Waiting sends Wait with no call timeout: a job may run for days. */
#define NO_TIMEOUT UINT64_MAX

typedef struct Waiter Waiter;

typedef struct WaitJob {
        Waiter *waiter;
        uint64_t id;
        char *path;
        sd_bus_slot *slot;
        int exit;
        bool done;
} WaitJob;

struct Waiter {
        Ctl *ctl;
        sd_event *event;
        WaitJob *jobs;
        size_t n_jobs, n_done;
        bool progress;         /* show "3/5 done, 2 running" on stderr */
        bool cancel_on_signal; /* SIGINT and SIGTERM cancel the jobs */
        int signal;            /* the signal that asked us to cancel, or 0 */
        void (*before_end)(void *userdata); /* runs at each answer to Wait, before anything is printed */
        void *userdata;
};

static void waiter_done(Waiter *w) {
        for (size_t i = 0; i < w->n_jobs; i++) {
                sd_bus_slot_unref(w->jobs[i].slot);
                free(w->jobs[i].path);
        }
        free(w->jobs);
        if (w->ctl->bus)
                (void) sd_bus_detach_event(w->ctl->bus);
        w->event = sd_event_unref(w->event);
}

static int waiter_add(Waiter *w, uint64_t id, const char *path) {
        WaitJob *n = realloc(w->jobs, (w->n_jobs + 1) * sizeof(WaitJob));
        char *p = strdup(path);

        if (n)
                w->jobs = n;
        if (!n || !p) {
                free(p);
                return -ENOMEM;
        }
        w->jobs[w->n_jobs++] = (WaitJob) { .id = id ? id : job_path_to_id(path), .path = p };
        return 0;
}

static void show_progress(Waiter *w, bool last) {
        if (!w->progress)
                return;
        if (last)
                fputs("\r\x1b[K", stderr);
        else
                fprintf(stderr, "\r%zu/%zu done, %zu running\x1b[K", w->n_done, w->n_jobs, w->n_jobs - w->n_done);
        fflush(stderr);
}

static int waiter_result(Waiter *w) {
        if (w->n_jobs == 1)
                return w->jobs[0].exit;
        for (size_t i = 0; i < w->n_jobs; i++)
                if (w->jobs[i].exit != 0)
                        return EXIT_FAILED;
        return EXIT_SUCCESS;
}

static int on_wait_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        WaitJob *j = userdata;
        Waiter *w = j->waiter;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        int32_t rc;
        int r;

        j->slot = sd_bus_slot_unref(j->slot);
        if (w->before_end)
                w->before_end(w->userdata);
        if (e) {
                if (w->n_jobs > 1)
                        show_progress(w, true);
                switch (sd_bus_error_get_errno(e)) {
                case PROCPOOL_ERRNO_CANCELLED:
                        if (w->signal)
                                j->exit = 128 + w->signal;
                        else {
                                j->exit = EXIT_FAILED;
                                fprintf(stderr, "Job %" PRIu64 " was cancelled.\n", j->id);
                        }
                        break;
                case PROCPOOL_ERRNO_TIMED_OUT:
                        j->exit = EXIT_TIMED_OUT;
                        fprintf(stderr, "Job %" PRIu64 " timed out.\n", j->id);
                        break;
                case PROCPOOL_ERRNO_SPAWN_FAILED:
                        /* The daemon's message says it all: "Failed to execute 'foo': ...". */
                        j->exit = EXIT_FAILED;
                        fprintf(stderr, "%s\n", e->message ? e->message : "Failed to execute the command.");
                        break;
                default:
                        j->exit = ctl_log_error(w->ctl, e, -EIO, "Failed to wait for job %" PRIu64, j->id);
                }
        } else {
                r = sd_bus_message_read(m, "i", &rc);
                if (r < 0)
                        j->exit = ctl_log_error(w->ctl, NULL, r, "Failed to read the reply of Wait");
                else {
                        j->exit = returncode_to_exit(rc);
                        if (w->n_jobs > 1 && rc != 0 && !w->ctl->quiet) {
                                show_progress(w, true);
                                if (rc > 0)
                                        fprintf(stderr, "Job %" PRIu64 " exited with code %" PRIi32 ".\n",
                                                j->id, rc);
                                else
                                        fprintf(stderr, "Job %" PRIu64 " was ended by signal %s.\n", j->id,
                                                sigabbrev_np(-rc) ? sigabbrev_np(-rc) : "?");
                        }
                }
        }
        j->done = true;
        w->n_done++;
        if (w->n_done == w->n_jobs) {
                show_progress(w, true);
                return sd_event_exit(w->event, waiter_result(w));
        }
        show_progress(w, false);
        return 0;
}

static int on_cancel_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        WaitJob *j = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        /* A job that ended meanwhile answers NotRunning; its Wait reply tells how it ended. */
        if (e && sd_bus_error_get_errno(e) != PROCPOOL_ERRNO_NOT_RUNNING)
                (void) ctl_log_error(j->waiter->ctl, e, -EIO, "Failed to cancel job %" PRIu64, j->id);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Waiter *w = userdata;

        if (w->signal) /* asked twice: leave; the bus connection closing cancels the job anyway */
                return sd_event_exit(w->event, 128 + (int) si->ssi_signo);
        w->signal = (int) si->ssi_signo;
        for (size_t i = 0; i < w->n_jobs; i++) {
                if (w->jobs[i].done)
                        continue;
                /* The reply's slot floats: it lives as long as the bus does. */
                int r = sd_bus_call_method_async(w->ctl->bus, NULL, PROCPOOL_BUS_NAME, w->jobs[i].path,
                                                 PROCPOOL_JOB_INTERFACE, "Cancel", on_cancel_reply,
                                                 &w->jobs[i], NULL);
                if (r < 0)
                        return sd_event_exit(w->event, 128 + w->signal);
        }
        return 0;
}

/* Waits for every job in w; returns the exit code: one job's own, or 0 only if all exited 0. */
static int waiter_run(Waiter *w) {
        Ctl *c = w->ctl;
        int r;

        if (w->n_jobs == 0)
                return EXIT_SUCCESS;
        r = sd_event_default(&w->event);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to set up the event loop");
        r = sd_bus_attach_event(c->bus, w->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to attach the bus to the event loop");
        if (w->cancel_on_signal) {
                /* The signals were blocked before the job was submitted; see block_signals(). */
                r = sd_event_add_signal(w->event, NULL, SIGINT, on_signal, w);
                if (r < 0)
                        return ctl_log_error(c, NULL, r, "Failed to watch for signals");
                r = sd_event_add_signal(w->event, NULL, SIGTERM, on_signal, w);
                if (r < 0)
                        return ctl_log_error(c, NULL, r, "Failed to watch for signals");
        }
        for (size_t i = 0; i < w->n_jobs; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

                w->jobs[i].waiter = w;
                r = sd_bus_message_new_method_call(c->bus, &m, PROCPOOL_BUS_NAME, w->jobs[i].path,
                                                   PROCPOOL_JOB_INTERFACE, "Wait");
                if (r < 0)
                        return ctl_log_error(c, NULL, r, "Failed to wait for job %" PRIu64, w->jobs[i].id);
                r = sd_bus_call_async(c->bus, &w->jobs[i].slot, m, on_wait_reply, &w->jobs[i], NO_TIMEOUT);
                if (r < 0)
                        return ctl_log_error(c, NULL, r, "Failed to wait for job %" PRIu64, w->jobs[i].id);
        }
        show_progress(w, false);
        r = sd_event_loop(w->event);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to run the event loop");
        return r;
}

static int block_signals(void) {
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        return sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ? -errno : 0;
}

static bool fd_is_open(int fd) {
        return fcntl(fd, F_GETFD) >= 0;
}

/* Appends the {sv} entry of option name with the list of strings l as its value. */
static int append_strv_option(sd_bus_message *m, const char *name, char **l) {
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", name);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'v', "as");
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(m, l);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

/* Appends the a{sv} options of Submit, Call and Communicate from the command line. */
static int append_job_options(Ctl *c, sd_bus_message *m, bool pass_fds, int cancel_on_disconnect) {
        _cleanup_free_ char *cwd = NULL;
        int r;

        if (c->cwd && c->cwd[0] == '/')
                cwd = strdup(c->cwd);
        else {
                /* The default, as pueue and systemd-run --same-dir do: where procpoolctl runs. */
                _cleanup_free_ char *here = get_current_dir_name();
                if (!here)
                        return -errno;
                if (c->cwd && asprintf(&cwd, "%s/%s", here, c->cwd) < 0)
                        return -ENOMEM;
                if (!c->cwd)
                        cwd = TAKE_PTR(here);
        }
        if (!cwd)
                return -ENOMEM;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "{sv}", PROCPOOL_OPTION_CWD, "s", cwd);
        if (r < 0)
                return r;
        if (c->n_environment > 0) {
                r = append_strv_option(m, PROCPOOL_OPTION_ENVIRONMENT, c->environment);
                if (r < 0)
                        return r;
        }
        if (c->clear_env) {
                r = sd_bus_message_append(m, "{sv}", PROCPOOL_OPTION_CLEAR_ENVIRONMENT, "b", 1);
                if (r < 0)
                        return r;
        }
        if (c->timeout_set) {
                r = sd_bus_message_append(m, "{sv}", PROCPOOL_OPTION_TIMEOUT, "t", c->timeout_usec);
                if (r < 0)
                        return r;
        }
        if (c->stop_timeout_set) {
                r = sd_bus_message_append(m, "{sv}", PROCPOOL_OPTION_STOP_TIMEOUT, "t", c->stop_timeout_usec);
                if (r < 0)
                        return r;
        }
        if (c->output_limit_set) {
                r = sd_bus_message_append(m, "{sv}", PROCPOOL_OPTION_OUTPUT_LIMIT, "t", c->output_limit);
                if (r < 0)
                        return r;
        }
        if (c->priority_set) {
                r = sd_bus_message_append(m, "{sv}", PROCPOOL_OPTION_PRIORITY, "i", c->priority);
                if (r < 0)
                        return r;
        }
        if (c->label) {
                r = sd_bus_message_append(m, "{sv}", PROCPOOL_OPTION_LABEL, "s", c->label);
                if (r < 0)
                        return r;
        }
        if (pass_fds) {
                static const char *const names[] = { PROCPOOL_OPTION_STDIN, PROCPOOL_OPTION_STDOUT,
                                                     PROCPOOL_OPTION_STDERR };
                /* A stream procpoolctl does not have is left to the daemon's default. */
                for (int fd = 0; fd < 3; fd++) {
                        if (!fd_is_open(fd))
                                continue;
                        r = sd_bus_message_append(m, "{sv}", names[fd], "h", fd);
                        if (r < 0)
                                return r;
                }
        }
        if (cancel_on_disconnect >= 0) {
                r = sd_bus_message_append(m, "{sv}", PROCPOOL_OPTION_CANCEL_ON_DISCONNECT, "b",
                                          cancel_on_disconnect);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

static int new_job_call(Ctl *c, const char *member, sd_bus_message **ret) {
        return sd_bus_message_new_method_call(c->bus, ret, PROCPOOL_BUS_NAME, PROCPOOL_OBJECT_PATH,
                                              PROCPOOL_MANAGER_INTERFACE, member);
}

/* Builds the Submit call of argv with the command line's options. */
static int new_submit_call(Ctl *c, char **argv, bool pass_fds, int cancel_on_disconnect,
                           sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = new_job_call(c, "Submit", &m);
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(m, argv);
        if (r < 0)
                return r;
        r = append_job_options(c, m, pass_fds, cancel_on_disconnect);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

/* Submits argv (a NULL-terminated array); on success stores the job's path. Returns 0 or an exit code. */
static int submit_job(Ctl *c, char **argv, bool pass_fds, int cancel_on_disconnect, char **ret_path) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *path;
        char *p;
        int r;

        r = ctl_connect(c);
        if (r != 0)
                return r;
        if (pass_fds && sd_bus_can_send(c->bus, SD_BUS_TYPE_UNIX_FD) <= 0) {
                fprintf(stderr, "This bus connection cannot pass file descriptors, which '%s' needs; "
                        "use 'communicate' or 'submit' instead.\n", c->verb);
                return EXIT_FAILED;
        }
        r = new_submit_call(c, argv, pass_fds, cancel_on_disconnect, &m);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to build the Submit call");
        r = sd_bus_call(c->bus, m, 0, &error, &reply);
        if (r < 0)
                return ctl_log_error(c, &error, r, "Failed to submit '%s'", argv[0]);
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to read the reply of Submit");
        p = strdup(path);
        if (!p)
                return ctl_log_error(c, NULL, -ENOMEM, "Failed to submit '%s'", argv[0]);
        *ret_path = p;
        return 0;
}

int verb_call(Ctl *c, int argc, char **argv) {
        _cleanup_free_ char *path = NULL;
        Waiter w = { .ctl = c, .cancel_on_signal = true };
        int r;

        /* Blocked before submitting, so that a Ctrl-C at any moment from now on cancels the job. */
        r = block_signals();
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to block signals");
        r = submit_job(c, argv + 1, true, true, &path);
        if (r != 0)
                return r;
        r = waiter_add(&w, 0, path);
        if (r < 0)
                r = ctl_log_error(c, NULL, r, "Failed to wait for the job");
        else
                r = waiter_run(&w);
        waiter_done(&w);
        return r;
}

int verb_submit(Ctl *c, int argc, char **argv) {
        _cleanup_free_ char *path = NULL;
        uint64_t id;
        int r;

        r = submit_job(c, argv + 1, false, -1, &path);
        if (r != 0)
                return r;
        id = job_path_to_id(path);
        if (c->json) {
                printf("{\"id\":%" PRIu64 ",\"path\":", id);
                json_write_string(stdout, path);
                printf("}\n");
        } else
                printf("%" PRIu64 "\n", id);
        fflush(stdout);

        if (c->wait) {
                Waiter w = { .ctl = c };

                r = waiter_add(&w, id, path);
                if (r < 0)
                        r = ctl_log_error(c, NULL, r, "Failed to wait for job %" PRIu64, id);
                else
                        r = waiter_run(&w);
                waiter_done(&w);
                return r;
        }
        return EXIT_SUCCESS;
}

int ctl_wait_job(Ctl *c, uint64_t id, const char *path, void (*before_end)(void *userdata), void *userdata) {
        Waiter w = { .ctl = c, .before_end = before_end, .userdata = userdata };
        int r;

        r = waiter_add(&w, id, path);
        if (r < 0)
                r = ctl_log_error(c, NULL, r, "Failed to wait for job %" PRIu64, id);
        else
                r = waiter_run(&w);
        waiter_done(&w);
        return r;
}

static int add_own_unfinished_jobs(Ctl *c, Waiter *w) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uid_t uid = getuid();
        uint64_t id;
        const char *path, *state;
        int32_t rc;
        int r;

        r = sd_bus_call_method(c->bus, PROCPOOL_BUS_NAME, PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE,
                               "ListJobs", &error, &reply, NULL);
        if (r < 0)
                return ctl_log_error(c, &error, r, "Failed to list jobs");
        r = sd_bus_message_enter_container(reply, 'a', "(tosi)");
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to read the job list");
        for (;;) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                uint32_t owner;

                r = sd_bus_message_read(reply, "(tosi)", &id, &path, &state, &rc);
                if (r <= 0)
                        break;
                if (ctl_state_is_final(state))
                        continue;
                if (sd_bus_get_property_trivial(c->bus, PROCPOOL_BUS_NAME, path, PROCPOOL_JOB_INTERFACE,
                                                "Owner", &e, 'u', &owner) < 0)
                        continue; /* released meanwhile */
                if (owner != uid)
                        continue;
                r = waiter_add(w, id, path);
                if (r < 0)
                        break;
        }
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to read the job list");
        return 0;
}

int verb_wait(Ctl *c, int argc, char **argv) {
        Waiter w = { .ctl = c };
        int r;

        r = ctl_connect(c);
        if (r != 0)
                return r;
        if (argc <= 1)
                r = add_own_unfinished_jobs(c, &w);
        for (int i = 1; r == 0 && i < argc; i++) {
                _cleanup_free_ char *path = NULL;
                uint64_t id;

                r = ctl_parse_job_ids(i + 1, argv, i, &id);
                if (r != 0)
                        break;
                r = ctl_job_path(c, id, &path);
                if (r == 0 && waiter_add(&w, id, path) < 0)
                        r = ctl_log_error(c, NULL, -ENOMEM, "Failed to wait for job %" PRIu64, id);
        }
        if (r == 0) {
                w.progress = !c->quiet && isatty(STDERR_FILENO) && w.n_jobs > 1;
                r = waiter_run(&w);
        }
        waiter_done(&w);
        return r;
}

static int read_all(int fd, uint8_t **ret, size_t *ret_size) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t size = 0, allocated = 0;

        for (;;) {
                ssize_t n;

                if (allocated - size < 65536) {
                        uint8_t *b = realloc(buf, allocated * 2 + 65536);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                        allocated = allocated * 2 + 65536;
                }
                n = read(fd, buf + size, allocated - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

int ctl_write_all(int fd, const void *data, size_t size) {
        const uint8_t *p = data;

        while (size > 0) {
                ssize_t n = write(fd, p, size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                size -= (size_t) n;
        }
        return 0;
}

int ctl_write_byte_array(sd_bus_message *m, int fd) {
        const void *data;
        size_t size;
        int r = sd_bus_message_read_array(m, 'y', &data, &size);

        if (r < 0)
                return r;
        return ctl_write_all(fd, data, size);
}

/* Builds the Communicate call of argv with input and the command line's options. */
static int new_communicate_call(Ctl *c, char **argv, const uint8_t *input, size_t input_size,
                                sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = new_job_call(c, "Communicate", &m);
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(m, argv);
        if (r < 0)
                return r;
        r = sd_bus_message_append_array(m, 'y', input, input_size);
        if (r < 0)
                return r;
        r = append_job_options(c, m, false, -1);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

/* Reads the return code from Communicate's reply and writes the job's stdout and stderr to ours. */
static int write_communicate_reply(sd_bus_message *reply, int32_t *ret_rc) {
        int32_t rc;
        int r;

        r = sd_bus_message_read(reply, "i", &rc);
        if (r < 0)
                return r;
        r = ctl_write_byte_array(reply, STDOUT_FILENO);
        if (r < 0)
                return r;
        r = ctl_write_byte_array(reply, STDERR_FILENO);
        if (r < 0)
                return r;
        *ret_rc = rc;
        return 0;
}

int verb_communicate(Ctl *c, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ uint8_t *input = NULL;
        size_t input_size = 0;
        int32_t rc;
        int r;

        if (fd_is_open(STDIN_FILENO)) {
                r = read_all(STDIN_FILENO, &input, &input_size);
                if (r < 0)
                        return ctl_log_error(c, NULL, r, "Failed to read standard input");
        }
        r = ctl_connect(c);
        if (r != 0)
                return r;
        r = new_communicate_call(c, argv + 1, input ? input : (const uint8_t *) "", input_size, &m);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to build the Communicate call");

        /* A signal ends procpoolctl as it would any command; the daemon cancels the job when this
         * connection goes away (cancel-on-disconnect is the default for Communicate). */
        r = sd_bus_call(c->bus, m, NO_TIMEOUT, &error, &reply);
        if (r < 0) {
                switch (sd_bus_error_get_errno(&error)) {
                case PROCPOOL_ERRNO_SPAWN_FAILED:
                        /* As for Wait: the daemon's message names the program and why. */
                        fprintf(stderr, "%s\n",
                                error.message ? error.message : "Failed to execute the command.");
                        return EXIT_FAILED;
                case PROCPOOL_ERRNO_TIMED_OUT:
                        fprintf(stderr, "Job timed out.\n");
                        return EXIT_TIMED_OUT;
                default:
                        return ctl_log_error(c, &error, r, "Failed to run '%s'", argv[1]);
                }
        }
        r = write_communicate_reply(reply, &rc);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to write the job's output");
        return returncode_to_exit(rc);
}
