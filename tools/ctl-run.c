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

static bool streq(const char *a, const char *b) {
        return strcmp(a ?: "", b ?: "") == 0;
}

static bool isempty(const char *s) {
        return !s || !*s;
}

/* Where waiting for one job stands. A wait that procpoold interrupts (org.procpool.Error.Interrupted: it
 * re-executes or stops, and the job goes on) is taken up again once procpoold owns its name again. */
typedef enum WaitPhase {
        WAIT_WAITING,  /* Wait, or Communicate, is out */
        WAIT_CHECKING, /* interrupted: the job's State is asked, to tell an end from a pause */
        WAIT_DETACHED, /* interrupted: waiting for procpoold to own its name again */
        WAIT_FETCHING, /* communicate: the job ended, GetOutput is out */
        WAIT_DONE,
} WaitPhase;

typedef struct WaitJob {
        Waiter *waiter;
        uint64_t id;
        char *path;           /* NULL while a Communicate call has not named its job */
        char **communicate;   /* communicate: its argv; Communicate goes first instead of Wait */
        const uint8_t *input; /* communicate: the job's standard input */
        size_t input_size;
        const char *command; /* communicate: the program, for messages */
        sd_bus_slot *slot;
        int exit;
        WaitPhase phase;
        int32_t returncode;        /* communicate: the job's, while its output is fetched */
        char *sent_to;             /* the name's owner when the last call went out ("" if none) */
        char *interrupted_by;      /* the daemon that interrupted the wait, or left without answering it */
        bool interrupter_left;     /* it left the bus since */
        sd_bus_error interruption; /* its answer, the job's end if that daemon says the job has ended */
        char *finished_by;         /* the daemon whose JobFinished named the job, if one did */
        char *json;                /* --json, communicate: its result object, as it is printed */
        bool fetch_output;         /* call --retry: write the job's captured output once it ended */
} WaitJob;

struct Waiter {
        Ctl *ctl;
        sd_event *event;
        WaitJob *jobs;
        size_t n_jobs, n_done;
        bool progress;         /* show "3/5 done, 2 running" on stderr */
        bool cancel_on_signal; /* SIGINT and SIGTERM cancel the jobs */
        bool pause_on_stop;    /* call: SIGTSTP (Ctrl-Z) pauses the job, then stops procpoolctl */
        bool json_array;       /* --json: the results as an array, also of one job (wait without IDs) */
        bool show_queue;       /* call: "Queued behind N jobs..." on stderr while the job waits */
        bool queue_shown;      /* that line is on the terminal now */
        uint32_t queue_ahead;
        sd_bus_slot *queue_job_match, *queue_pool_match, *queue_finished_match, *queue_added_match;
        sd_bus_slot *queue_slot;
        bool queue_refresh_again; /* something changed while the last look was out */
        int signal;               /* the signal that asked us to cancel, or 0 */
        char *owner;              /* the unique name owning PROCPOOL_BUS_NAME now, "" if none */
        sd_bus_slot *owner_match, *finished_match;
        void (*before_end)(void *userdata); /* runs at each answer to Wait, before anything is printed */
        void *userdata;
};

static void waiter_done(Waiter *w) {
        for (size_t i = 0; i < w->n_jobs; i++) {
                WaitJob *j = &w->jobs[i];
                sd_bus_slot_unref(j->slot);
                free(j->path);
                free(j->sent_to);
                free(j->interrupted_by);
                free(j->finished_by);
                free(j->json);
                sd_bus_error_free(&j->interruption);
        }
        free(w->jobs);
        free(w->owner);
        sd_bus_slot_unref(w->owner_match);
        sd_bus_slot_unref(w->finished_match);
        sd_bus_slot_unref(w->queue_job_match);
        sd_bus_slot_unref(w->queue_pool_match);
        sd_bus_slot_unref(w->queue_finished_match);
        sd_bus_slot_unref(w->queue_added_match);
        sd_bus_slot_unref(w->queue_slot);
        if (w->ctl->bus)
                (void) sd_bus_detach_event(w->ctl->bus);
        w->event = sd_event_unref(w->event);
}

static WaitJob *waiter_add_job(Waiter *w) {
        WaitJob *n = realloc(w->jobs, (w->n_jobs + 1) * sizeof(WaitJob));

        if (!n)
                return NULL;
        w->jobs = n;
        w->jobs[w->n_jobs] = (WaitJob) { .interruption = SD_BUS_ERROR_NULL };
        return &w->jobs[w->n_jobs++];
}

static int waiter_add(Waiter *w, uint64_t id, const char *path) {
        char *p = strdup(path);
        WaitJob *j;

        if (!p)
                return -ENOMEM;
        j = waiter_add_job(w);
        if (!j) {
                free(p);
                return -ENOMEM;
        }
        j->id = id ? id : job_path_to_id(path);
        j->path = p;
        return 0;
}

static void show_progress(Waiter *w, bool last) {
        if (!w->progress)
                return;
        if (last)
                fputs("\r\x1b[K", stderr);
        else
                fprintf(stderr, "\r%zu/%zu done, %zu running\x1b[K", w->n_done, w->n_jobs,
                        w->n_jobs - w->n_done);
        fflush(stderr);
}

static void queue_line_print(Waiter *w) {
        if (w->queue_ahead == 0)
                fputs("\rQueued, next to start...\x1b[K", stderr);
        else
                fprintf(stderr, "\rQueued behind %" PRIu32 " job%s...\x1b[K", w->queue_ahead,
                        w->queue_ahead == 1 ? "" : "s");
        fflush(stderr);
}

static void queue_line_clear(Waiter *w) {
        if (!w->queue_shown)
                return;
        fputs("\r\x1b[K", stderr);
        fflush(stderr);
        w->queue_shown = false;
}

/* The job left the queue: the line goes, and so does the watching. */
static void queue_watch_end(Waiter *w) {
        queue_line_clear(w);
        w->show_queue = false;
        w->queue_job_match = sd_bus_slot_unref(w->queue_job_match);
        w->queue_pool_match = sd_bus_slot_unref(w->queue_pool_match);
        w->queue_finished_match = sd_bus_slot_unref(w->queue_finished_match);
        w->queue_added_match = sd_bus_slot_unref(w->queue_added_match);
        w->queue_slot = sd_bus_slot_unref(w->queue_slot);
}

static int queue_refresh(Waiter *w);

static int on_queue_info(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Waiter *w = userdata;
        JobInfo info = {};

        w->queue_slot = sd_bus_slot_unref(w->queue_slot);
        if (!w->show_queue)
                return 0;
        if (sd_bus_message_is_method_error(m, NULL) || job_info_read_properties(m, &info) < 0 ||
            !streq(info.state, PROCPOOL_STATE_QUEUED)) {
                job_info_done(&info);
                queue_watch_end(w);
                return 0;
        }
        w->queue_ahead = info.queue_position;
        w->queue_shown = true;
        queue_line_print(w);
        job_info_done(&info);
        if (w->queue_refresh_again)
                return queue_refresh(w);
        return 0;
}

/* Asks the job's State and QueuePosition again, once the last answer is in. */
static int queue_refresh(Waiter *w) {
        int r;

        if (!w->show_queue)
                return 0;
        if (w->queue_slot) {
                w->queue_refresh_again = true;
                return 0;
        }
        w->queue_refresh_again = false;
        r = sd_bus_call_method_async(w->ctl->bus, &w->queue_slot, ctl_destination(w->ctl), w->jobs[0].path,
                                     "org.freedesktop.DBus.Properties", "GetAll", on_queue_info, w, "s",
                                     PROCPOOL_JOB_INTERFACE);
        if (r < 0)
                queue_watch_end(w);
        return 0;
}

static int match_queue_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        return queue_refresh(userdata);
}

/* While the job waits for a slot, says how many jobs are ahead of it: its QueuePosition, read again
 * whenever that may have changed: a job started (any job's State), one left the queue (JobFinished), one
 * of a higher priority came (InterfacesAdded). The manager's Queued alone would not do: it is coalesced in
 * time, and one job cancelled ahead while another is queued behind leaves it as it was. */
static int queue_watch(Waiter *w) {
        sd_bus *bus = w->ctl->bus;
        int r;

        r = sd_bus_add_match(
                bus, &w->queue_job_match,
                "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                "path_namespace='" PROCPOOL_JOB_PATH_PREFIX "',arg0='" PROCPOOL_JOB_INTERFACE "'",
                match_queue_changed, w);
        if (r < 0)
                return r;
        r = sd_bus_add_match(bus, &w->queue_pool_match,
                             "type='signal',interface='org.freedesktop.DBus.Properties',"
                             "member='PropertiesChanged',path='" PROCPOOL_OBJECT_PATH
                             "',arg0='" PROCPOOL_MANAGER_INTERFACE "'",
                             match_queue_changed, w);
        if (r < 0)
                return r;
        r = sd_bus_match_signal(bus, &w->queue_finished_match, NULL, PROCPOOL_OBJECT_PATH,
                                PROCPOOL_MANAGER_INTERFACE, "JobFinished", match_queue_changed, w);
        if (r < 0)
                return r;
        r = sd_bus_match_signal(bus, &w->queue_added_match, NULL, PROCPOOL_OBJECT_PATH,
                                "org.freedesktop.DBus.ObjectManager", "InterfacesAdded", match_queue_changed,
                                w);
        if (r < 0)
                return r;
        r = ctl_subscribe(w->ctl);
        if (r < 0)
                return r;
        return queue_refresh(w);
}

/* What procpoolctl shows on stderr while it waits goes while it is stopped, and comes back after. */
static void waiter_hide_status(Waiter *w) {
        if (w->queue_shown)
                fputs("\r\x1b[K", stderr);
        fflush(stderr);
}

static void waiter_show_status(Waiter *w) {
        if (w->queue_shown)
                queue_line_print(w);
}

static int waiter_result(Waiter *w) {
        if (w->n_jobs == 1)
                return w->jobs[0].exit;
        for (size_t i = 0; i < w->n_jobs; i++)
                if (w->jobs[i].exit != 0)
                        return EXIT_FAILED;
        return EXIT_SUCCESS;
}

static void waiter_print_json(Waiter *w);

/* The job's wait is over with exit; the loop ends with the last one. */
static int job_finish(WaitJob *j, int exit) {
        Waiter *w = j->waiter;

        j->slot = sd_bus_slot_unref(j->slot);
        j->exit = exit;
        j->phase = WAIT_DONE;
        w->n_done++;
        if (w->n_done == w->n_jobs) {
                show_progress(w, true);
                /* While the bus is open: the loop's end closes it. */
                if (w->ctl->json)
                        waiter_print_json(w);
                return sd_event_exit(w->event, waiter_result(w));
        }
        show_progress(w, false);
        return 0;
}

static int set_string(char **field, const char *value) {
        char *d = strdup(value ?: "");

        if (!d)
                return -ENOMEM;
        free(*field);
        *field = d;
        return 0;
}

static int on_wait_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

static int job_send_wait(WaitJob *j) {
        Waiter *w = j->waiter;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        j->phase = WAIT_WAITING;
        r = set_string(&j->sent_to, w->owner);
        if (r < 0)
                return r;
        /* Never starts procpoold: without an owner the wait goes on once the name is back. */
        r = ctl_new_call(w->ctl, j->path, PROCPOOL_JOB_INTERFACE, "Wait", false, &m);
        if (r < 0)
                return r;
        j->slot = sd_bus_slot_unref(j->slot);
        return sd_bus_call_async(w->ctl->bus, &j->slot, m, on_wait_reply, j, NO_TIMEOUT);
}

/* Procpoold is back under its name: the job is waited for again. */
static int job_reattach(WaitJob *j) {
        int r;

        j->interrupted_by = mfree(j->interrupted_by);
        j->interrupter_left = false;
        sd_bus_error_free(&j->interruption);
        r = job_send_wait(j);
        if (r < 0)
                return job_finish(
                        j, ctl_log_error(j->waiter->ctl, NULL, r, "Failed to wait for job %" PRIu64, j->id));
        return 0;
}

/* The daemon that interrupted the wait said the job has ended: its answer is the job's end. */
static int job_interruption_final(WaitJob *j) {
        return job_finish(j, ctl_log_error(j->waiter->ctl, &j->interruption, -PROCPOOL_ERRNO_INTERRUPTED,
                                           "Failed to wait for job %" PRIu64, j->id));
}

/* Waits for procpoold to own its name again, unless it does already. */
static int job_detach(WaitJob *j) {
        Waiter *w = j->waiter;

        j->phase = WAIT_DETACHED;
        j->slot = sd_bus_slot_unref(j->slot);
        if (!isempty(w->owner) && (!streq(w->owner, j->interrupted_by) || j->interrupter_left))
                return job_reattach(j);
        return 0;
}

static int on_state_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        WaitJob *j = userdata;
        const char *sender = sd_bus_message_get_sender(m), *state;
        int r;

        j->slot = sd_bus_slot_unref(j->slot);
        if (sd_bus_message_is_method_error(m, NULL))
                return job_detach(j); /* it left meanwhile */
        r = sd_bus_message_read(m, "v", "s", &state);
        if (r < 0)
                return job_detach(j);
        if (!streq(sender ?: "", j->interrupted_by))
                return job_reattach(j); /* a new procpoold answered: it tells how the job goes on */
        if (ctl_state_is_final(state))
                return job_interruption_final(j);
        return job_detach(j); /* the job goes on; procpoold is going away and comes back */
}

static bool error_is_interruption(const sd_bus_error *e) {
        return sd_bus_error_has_name(e, PROCPOOL_ERROR_INTERRUPTED);
}

/* "... job 7 (/org/procpool/Supervisor1/job/7) goes on ...": the path the message names, or NULL. */
static char *path_in_message(const char *message) {
        const char *p = message ? strstr(message, PROCPOOL_JOB_PATH_PREFIX "/") : NULL;
        size_t n;

        if (!p)
                return NULL;
        n = strlen(PROCPOOL_JOB_PATH_PREFIX "/");
        n += strspn(p + n, "0123456789");
        return strndup(p, n);
}

static int waiter_watch(Waiter *w);

/* A direct connection does not outlive a re-exec of procpoold, and has no bus name to follow it by: once
 * a wait on one is cut, every wait goes on over the bus, where the name tells when procpoold is back. */
static int waiter_to_bus(Waiter *w) {
        Ctl *c = w->ctl;
        int r;

        if (!c->direct)
                return 0;
        w->owner_match = sd_bus_slot_unref(w->owner_match);
        w->finished_match = sd_bus_slot_unref(w->finished_match);
        queue_watch_end(w);
        /* Other waits' calls on the direct connection end within its dispatch, as this one did. */
        r = ctl_leave_direct(c, w->event);
        if (r < 0)
                return r;
        return waiter_watch(w);
}

/* A wait ended without the job's end: procpoold interrupted it, or left. Finds out whether the job goes
 * on, and waits for it again once procpoold is back. */
static int job_interrupted(WaitJob *j, sd_bus_message *m, const sd_bus_error *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *get = NULL;
        Waiter *w = j->waiter;
        const char *sender = sd_bus_message_get_sender(m);
        bool departed = ctl_error_is_departure(e) || w->ctl->direct;
        int r;

        r = waiter_to_bus(w);
        if (r < 0)
                return job_finish(j, ctl_log_error(w->ctl, e, r, "Failed to wait for job %" PRIu64, j->id));

        /* A bus error comes from the bus; the daemon meant is the one the call went to. */
        r = set_string(&j->interrupted_by, departed || !sender ? j->sent_to : sender);
        /* It returns the error's errno, not whether it copied. */
        (void) sd_bus_error_copy(&j->interruption, e);
        if (r >= 0 && !sd_bus_error_is_set(&j->interruption))
                r = -ENOMEM;
        if (r < 0)
                return job_finish(j,
                                  ctl_log_error(w->ctl, NULL, r, "Failed to wait for job %" PRIu64, j->id));
        j->interrupter_left = false;
        if (!departed && j->finished_by && streq(j->finished_by, j->interrupted_by))
                return job_interruption_final(j);
        if (departed)
                return job_detach(j);

        j->phase = WAIT_CHECKING;
        j->slot = sd_bus_slot_unref(j->slot);
        r = ctl_new_call(w->ctl, j->path, "org.freedesktop.DBus.Properties", "Get", false, &get);
        if (r >= 0)
                r = sd_bus_message_append(get, "ss", PROCPOOL_JOB_INTERFACE, "State");
        if (r >= 0)
                r = sd_bus_call_async(w->ctl->bus, &j->slot, get, on_state_reply, j, 0);
        if (r < 0)
                return job_detach(j);
        return 0;
}

static int on_output_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        WaitJob *j = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        int r;

        if (e)
                return job_finish(j, ctl_log_error(j->waiter->ctl, e, -EIO,
                                                   "Failed to get the output of job %" PRIu64, j->id));
        r = ctl_write_byte_array(m, STDOUT_FILENO);
        if (r >= 0)
                r = ctl_write_byte_array(m, STDERR_FILENO);
        if (r < 0)
                return job_finish(j,
                                  ctl_log_error(j->waiter->ctl, NULL, r, "Failed to write the job's output"));
        return job_finish(j, returncode_to_exit(j->returncode));
}

/* Communicate, taken up again after an interruption: the job ended, its output is fetched as GetOutput
 * has it. */
static int job_fetch_output(WaitJob *j, int32_t rc) {
        int r;

        j->returncode = rc;
        j->phase = WAIT_FETCHING;
        j->slot = sd_bus_slot_unref(j->slot);
        r = sd_bus_call_method_async(j->waiter->ctl->bus, &j->slot, ctl_destination(j->waiter->ctl), j->path,
                                     PROCPOOL_JOB_INTERFACE, "GetOutput", on_output_reply, j, NULL);
        if (r < 0)
                return job_finish(j, ctl_log_error(j->waiter->ctl, NULL, r,
                                                   "Failed to get the output of job %" PRIu64, j->id));
        return 0;
}

static int on_wait_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        WaitJob *j = userdata;
        Waiter *w = j->waiter;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        int32_t rc;
        int r;

        j->slot = sd_bus_slot_unref(j->slot);
        if (e && (error_is_interruption(e) || ctl_error_is_departure(e)))
                return job_interrupted(j, m, e);
        queue_watch_end(w);
        if (w->before_end)
                w->before_end(w->userdata);
        if (e) {
                if (w->n_jobs > 1)
                        show_progress(w, true);
                /* With --json the job's object says how it ended: state and error. */
                bool quiet_end = w->ctl->json;

                switch (sd_bus_error_get_errno(e)) {
                case PROCPOOL_ERRNO_CANCELLED:
                        if (w->signal)
                                return job_finish(j, 128 + w->signal);
                        if (!quiet_end)
                                fprintf(stderr, "Job %" PRIu64 " was cancelled.\n", j->id);
                        return job_finish(j, EXIT_FAILED);
                case PROCPOOL_ERRNO_TIMED_OUT:
                        if (!quiet_end)
                                fprintf(stderr, "Job %" PRIu64 " timed out.\n", j->id);
                        return job_finish(j, EXIT_TIMED_OUT);
                case PROCPOOL_ERRNO_SPAWN_FAILED:
                        /* The daemon's message says it all: "Failed to execute 'foo': ...". */
                        if (!quiet_end)
                                ctl_print_error_message("", e->message ? e->message
                                                                       : "Failed to execute the command.");
                        return job_finish(j, EXIT_FAILED);
                default:
                        return job_finish(
                                j, ctl_log_error(w->ctl, e, -EIO, "Failed to wait for job %" PRIu64, j->id));
                }
        }
        r = sd_bus_message_read(m, "i", &rc);
        if (r < 0)
                return job_finish(j, ctl_log_error(w->ctl, NULL, r, "Failed to read the reply of Wait"));
        if (j->communicate || j->fetch_output)
                return job_fetch_output(j, rc);
        if (w->n_jobs > 1 && rc != 0 && !w->ctl->quiet && !w->ctl->json) {
                show_progress(w, true);
                if (rc > 0)
                        fprintf(stderr, "Job %" PRIu64 " exited with code %" PRIi32 ".\n", j->id, rc);
                else
                        fprintf(stderr, "Job %" PRIu64 " was ended by signal %s.\n", j->id,
                                sigabbrev_np(-rc) ? sigabbrev_np(-rc) : "?");
        }
        return job_finish(j, returncode_to_exit(rc));
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

/* --json: Communicate's reply as {"returncode", "exit", "stdout_base64", "stderr_base64"}: the streams are
 * bytes, not text. Communicate names no job, so there is no id. */
static int communicate_reply_json(sd_bus_message *reply, char **ret_json, int32_t *ret_rc) {
        _cleanup_free_ char *buf = NULL;
        const void *data[2];
        size_t size[2], n = 0;
        int32_t rc;
        FILE *f;
        int r;

        r = sd_bus_message_read(reply, "i", &rc);
        if (r < 0)
                return r;
        for (int i = 0; i < 2; i++) {
                r = sd_bus_message_read_array(reply, 'y', &data[i], &size[i]);
                if (r < 0)
                        return r;
        }
        f = open_memstream(&buf, &n);
        if (!f)
                return -ENOMEM;
        fprintf(f, "{\"returncode\":%" PRIi32 ",\"exit\":%d,\"stdout_base64\":", rc, returncode_to_exit(rc));
        json_write_base64(f, data[0], size[0]);
        fputs(",\"stderr_base64\":", f);
        json_write_base64(f, data[1], size[1]);
        fputc('}', f);
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret_json = TAKE_PTR(buf);
        *ret_rc = rc;
        return 0;
}

static int on_communicate_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        WaitJob *j = userdata;
        Ctl *c = j->waiter->ctl;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        int32_t rc;
        int r;

        j->slot = sd_bus_slot_unref(j->slot);
        if (e && error_is_interruption(e)) {
                /* The message names the job, which goes on: it is waited for as any other. */
                j->path = path_in_message(e->message);
                j->id = job_path_to_id(j->path);
                if (j->id > 0)
                        return job_interrupted(j, m, e);
        }
        if (e && c->json) {
                /* No job object to tell it: Communicate's error names how it ended. */
                ctl_json_error(e->name, e->message ? e->message : "");
                return job_finish(j, sd_bus_error_get_errno(e) == PROCPOOL_ERRNO_TIMED_OUT ? EXIT_TIMED_OUT
                                                                                           : EXIT_FAILED);
        }
        if (e)
                switch (sd_bus_error_get_errno(e)) {
                case PROCPOOL_ERRNO_SPAWN_FAILED:
                        /* As for Wait: the daemon's message names the program and why. */
                        ctl_print_error_message("",
                                                e->message ? e->message : "Failed to execute the command.");
                        return job_finish(j, EXIT_FAILED);
                case PROCPOOL_ERRNO_TIMED_OUT:
                        fprintf(stderr, "Job timed out.\n");
                        return job_finish(j, EXIT_TIMED_OUT);
                default:
                        return job_finish(j, ctl_log_error(c, e, -EIO, "Failed to run '%s'", j->command));
                }
        if (c->json) {
                r = communicate_reply_json(m, &j->json, &rc);
                if (r < 0)
                        return job_finish(
                                j, ctl_log_error(c, NULL, r, "Failed to read the reply of Communicate"));
                return job_finish(j, returncode_to_exit(rc));
        }
        r = write_communicate_reply(m, &rc);
        if (r < 0)
                return job_finish(j, ctl_log_error(c, NULL, r, "Failed to write the job's output"));
        return job_finish(j, returncode_to_exit(rc));
}

/* Follows who owns PROCPOOL_BUS_NAME, and takes interrupted waits up again when procpoold is back. */
static int match_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Waiter *w = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 ||
            !streq(name, PROCPOOL_BUS_NAME))
                return 0;
        if (set_string(&w->owner, new_owner) < 0)
                return sd_event_exit(w->event,
                                     ctl_log_error(w->ctl, NULL, -ENOMEM, "Failed to follow procpoold"));
        /* A new procpoold knows none of its predecessor's subscribers. */
        if (!isempty(new_owner))
                (void) ctl_subscribe_again(w->ctl);
        for (size_t i = 0; i < w->n_jobs; i++) {
                WaitJob *j = &w->jobs[i];

                if (!j->interrupted_by)
                        continue;
                if (streq(old_owner, j->interrupted_by) && isempty(new_owner))
                        j->interrupter_left = true;
                if (j->phase == WAIT_DETACHED && !isempty(new_owner) &&
                    (!streq(new_owner, j->interrupted_by) || j->interrupter_left))
                        (void) job_reattach(j);
        }
        return 0;
}

/* JobFinished after an interruption, from the daemon that interrupted: the job ended there, and that
 * interruption was its end (procpoold stopped while it ran). */
static int match_job_finished(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Waiter *w = userdata;
        const char *sender = sd_bus_message_get_sender(m);
        uint64_t id;

        if (!sender || sd_bus_message_read(m, "t", &id) < 0)
                return 0;
        for (size_t i = 0; i < w->n_jobs; i++) {
                WaitJob *j = &w->jobs[i];

                if (j->id != id || j->phase == WAIT_DONE)
                        continue;
                if (set_string(&j->finished_by, sender) < 0)
                        continue;
                if ((j->phase == WAIT_CHECKING || j->phase == WAIT_DETACHED) &&
                    streq(sender, j->interrupted_by))
                        (void) job_interruption_final(j);
        }
        return 0;
}

int ctl_list_jobs(Ctl *c, sd_bus_message **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(c->bus, ctl_destination(c), PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE,
                               "ListJobs", &error, &reply, NULL);
        if (r < 0)
                return ctl_log_error(c, &error, r, "Failed to list jobs");
        r = sd_bus_message_enter_container(reply, 'a', "(tosi)");
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to read the job list");
        *ret = TAKE_PTR(reply);
        return 0;
}

int ctl_watch_daemon(Ctl *c, sd_bus_slot **ret_owner_match, sd_bus_message_handler_t on_owner_changed,
                     sd_bus_slot **ret_finished_match, sd_bus_message_handler_t on_finished, void *userdata,
                     char **ret_owner) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *owner = "";
        int r;

        r = sd_bus_add_match(c->bus, ret_owner_match,
                             "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                             "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                             "arg0='" PROCPOOL_BUS_NAME "'",
                             on_owner_changed, userdata);
        if (r < 0)
                return r;
        r = sd_bus_match_signal(c->bus, ret_finished_match, NULL, PROCPOOL_OBJECT_PATH,
                                PROCPOOL_MANAGER_INTERFACE, "JobFinished", on_finished, userdata);
        if (r < 0)
                return r;
        /* Signals come to a direct connection once it asked, and on the bus too from a daemon that runs
         * with --bus-signals=subscribed. There they only tell an interruption's end sooner: the waits are
         * calls, and a failure to subscribe does not stop them. */
        if (ctl_subscribe(c) < 0 && c->direct)
                return -EIO;
        /* A direct connection has no bus names to follow. */
        if (c->direct)
                return set_string(ret_owner, "");
        r = sd_bus_call_method(c->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "GetNameOwner", &error, &reply, "s",
                               PROCPOOL_BUS_NAME);
        if (r >= 0 && sd_bus_message_read(reply, "s", &owner) < 0)
                owner = "";
        return set_string(ret_owner, owner);
}

/* Watches the name and the jobs' ends before the first call goes out, so that no change is missed. */
static int waiter_watch(Waiter *w) {
        return ctl_watch_daemon(w->ctl, &w->owner_match, match_name_owner_changed, &w->finished_match,
                                match_job_finished, w, &w->owner);
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
                if (w->jobs[i].phase == WAIT_DONE || !w->jobs[i].path)
                        continue;
                /* The reply's slot floats: it lives as long as the bus does. */
                int r = sd_bus_call_method_async(w->ctl->bus, NULL, ctl_destination(w->ctl), w->jobs[i].path,
                                                 PROCPOOL_JOB_INTERFACE, "Cancel", on_cancel_reply,
                                                 &w->jobs[i], NULL);
                if (r < 0)
                        return sd_event_exit(w->event, 128 + w->signal);
        }
        return 0;
}

/* Calls Pause or Resume on the job and waits for the answer; returns whether it succeeded. A job that is
 * not running (queued still, or ended meanwhile) answers NotRunning, which is no failure to report. */
static bool job_pause_or_resume(WaitJob *j, const char *method) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(j->waiter->ctl->bus, ctl_destination(j->waiter->ctl), j->path,
                               PROCPOOL_JOB_INTERFACE, method, &error, NULL, NULL);
        if (r >= 0)
                return true;
        if (sd_bus_error_get_errno(&error) != PROCPOOL_ERRNO_NOT_RUNNING && !j->waiter->ctl->quiet)
                fprintf(stderr, "Failed to %s job %" PRIu64 ": %s\n",
                        strcmp(method, "Pause") == 0 ? "pause" : "resume", j->id,
                        error.message ? error.message : strerror(-r));
        return false;
}

/* Ctrl-Z: as a local command would, the job stops too. It is paused first, so that it has stopped (and
 * cannot read the terminal the shell takes back) before the shell hears that procpoolctl did; on SIGCONT
 * (fg or bg) procpoolctl goes on from raise() and lets the job go on. */
static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Waiter *w = userdata;
        WaitJob *j = w->n_jobs == 1 ? &w->jobs[0] : NULL;
        bool paused = false;

        if (j && j->path && j->phase != WAIT_DONE)
                paused = job_pause_or_resume(j, "Pause");
        waiter_hide_status(w);
        (void) raise(SIGSTOP);
        if (paused)
                (void) job_pause_or_resume(j, "Resume");
        waiter_show_status(w);
        return 0;
}

/* --json: each job as it ended, one object or an array; communicate's own result object. */
static void waiter_print_json(Waiter *w) {
        JsonList l;

        json_list_begin(&l, w->json_array || w->n_jobs != 1);
        for (size_t i = 0; i < w->n_jobs; i++) {
                WaitJob *j = &w->jobs[i];

                if (j->phase != WAIT_DONE)
                        continue;
                if (j->json) {
                        json_list_next(&l);
                        fputs(j->json, stdout);
                } else if (j->path) {
                        json_list_next(&l);
                        ctl_json_job(w->ctl, stdout, j->id, j->path);
                }
        }
        json_list_end(&l);
}

static int new_communicate_call(Ctl *c, char **argv, const uint8_t *input, size_t input_size,
                                sd_bus_message **ret);

/* The first call about j: Communicate, which makes the job, or Wait for the job made already. */
static int job_send_first(WaitJob *j) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        Ctl *c = j->waiter->ctl;
        int r;

        if (!j->communicate)
                return job_send_wait(j);
        r = set_string(&j->sent_to, j->waiter->owner);
        if (r < 0)
                return r;
        r = new_communicate_call(c, j->communicate, j->input, j->input_size, &m);
        if (r < 0)
                return r;
        return sd_bus_call_async(c->bus, &j->slot, m, on_communicate_reply, j, NO_TIMEOUT);
}

/* The direct connection closed before the waits went out: procpoold re-executed (or stopped) since the
 * job was submitted. */
static bool waiter_lost_direct(Waiter *w) {
        return w->ctl->direct && sd_bus_is_open(w->ctl->bus) <= 0;
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
        if (w->pause_on_stop) {
                r = sd_event_add_signal(w->event, NULL, SIGTSTP, on_stop_signal, w);
                if (r < 0)
                        return ctl_log_error(c, NULL, r, "Failed to watch for signals");
        }
        r = waiter_watch(w);
        if (r < 0 && waiter_lost_direct(w))
                r = waiter_to_bus(w);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to watch procpoold on the bus");
        for (size_t i = 0; i < w->n_jobs; i++) {
                WaitJob *j = &w->jobs[i];

                j->waiter = w;
                r = job_send_first(j);
                /* Nothing went out: the call is made again on the bus. */
                if (r < 0 && waiter_lost_direct(w)) {
                        r = waiter_to_bus(w);
                        if (r >= 0)
                                r = job_send_first(j);
                }
                if (r < 0 && j->communicate)
                        return ctl_log_error(c, NULL, r, "Failed to run '%s'", j->command);
                if (r < 0)
                        return ctl_log_error(c, NULL, r, "Failed to wait for job %" PRIu64, j->id);
        }
        if (w->show_queue && w->n_jobs == 1 && w->jobs[0].path) {
                r = queue_watch(w);
                if (r < 0)
                        queue_watch_end(w); /* only a courtesy: the job is waited for all the same */
        }
        show_progress(w, false);
        r = sd_event_loop(w->event);
        queue_watch_end(w);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to run the event loop");
        return r;
}

static int block_signals(void) {
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGTSTP);
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
int append_job_options(Ctl *c, sd_bus_message *m, bool pass_fds, int cancel_on_disconnect) {
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
        if (c->run_as) {
                r = sd_bus_message_append(m, "{sv}", PROCPOOL_OPTION_USER, "s", c->run_as);
                if (r < 0)
                        return r;
        }
        if (c->pool) {
                r = sd_bus_message_append(m, "{sv}", PROCPOOL_OPTION_POOL, "s", c->pool);
                if (r < 0)
                        return r;
        }
        if (c->n_after > 0) {
                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", PROCPOOL_OPTION_AFTER);
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'v', "at");
                if (r >= 0)
                        r = sd_bus_message_append_array(m, 't', c->after, c->n_after * sizeof(uint64_t));
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r < 0)
                        return r;
        }
        if (c->not_before_set) {
                r = sd_bus_message_append(m, "{sv}", PROCPOOL_OPTION_NOT_BEFORE, "t", c->not_before_usec);
                if (r < 0)
                        return r;
        }
        if (c->retry_set) {
                r = sd_bus_message_append(m, "{sv}", PROCPOOL_OPTION_RETRY, "u", c->retry);
                if (r < 0)
                        return r;
        }
        if (c->retry_delay_set) {
                r = sd_bus_message_append(m, "{sv}", PROCPOOL_OPTION_RETRY_DELAY, "t", c->retry_delay_usec);
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
        return sd_bus_message_new_method_call(c->bus, ret, ctl_destination(c), PROCPOOL_OBJECT_PATH,
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

        r = pass_fds ? ctl_connect_fds(c) : ctl_connect(c);
        if (r != 0)
                return r;
        if (pass_fds && sd_bus_can_send(c->bus, SD_BUS_TYPE_UNIX_FD) <= 0) {
                fprintf(stderr,
                        "This bus connection cannot pass file descriptors, which '%s' needs; "
                        "use 'communicate' or 'submit' instead.\n",
                        c->verb);
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
        Waiter w = { .ctl = c, .cancel_on_signal = true, .pause_on_stop = true };
        bool retrying = c->retry_set && c->retry > 0;
        int r;

        /* Blocked before submitting, so that a Ctrl-C at any moment from now on cancels the job. */
        r = block_signals();
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to block signals");
        /* A job that may run again cannot have our streams: the first attempt would use them up. Its
         * stdin is then /dev/null, and the output of its last attempt is written once it ended. */
        r = submit_job(c, argv + 1, !retrying, true, &path);
        if (r != 0)
                return r;
        w.show_queue = !c->quiet && !c->json && isatty(STDERR_FILENO);
        r = waiter_add(&w, 0, path);
        if (r < 0)
                r = ctl_log_error(c, NULL, r, "Failed to wait for the job");
        else {
                w.jobs[0].fetch_output = retrying;
                r = waiter_run(&w);
        }
        waiter_done(&w);
        return r;
}

/* Submit's several commands, as GNU parallel takes them: CMD [ARG...] ::: INPUT... */
#define SUBMIT_INPUTS_SEPARATOR ":::"
/* Commands one SubmitMany carries: the daemon's bound. More go in several calls. */
#define SUBMIT_MANY_MAX 4096U

/* Submits command once per input with Submit, one call each: for a procpoold without SubmitMany. */
static int submit_each(Ctl *c, char **command, char **inputs, size_t n, char **paths) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_strv_free_ char **argv = ctl_command_argv(command, inputs[i]);
                int r;

                if (!argv)
                        return ctl_log_error(c, NULL, -ENOMEM, "Failed to submit '%s'", command[0]);
                r = submit_job(c, argv, false, -1, &paths[i]);
                if (r != 0)
                        return r;
        }
        return 0;
}

/* Submits command once per input, in chunks of one SubmitMany each (or with Submit, where the daemon
 * has no SubmitMany); on success paths[i] is the job of inputs[i]. Returns 0 or an exit code. */
static int submit_many(Ctl *c, char **command, char **inputs, size_t n, char **paths) {
        int r;

        r = ctl_connect(c);
        if (r != 0)
                return r;
        for (size_t done = 0; done < n;) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
                size_t k = MIN(n - done, (size_t) SUBMIT_MANY_MAX);

                r = new_job_call(c, "SubmitMany", &m);
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'a', "as");
                for (size_t i = done; r >= 0 && i < done + k; i++) {
                        _cleanup_strv_free_ char **argv = ctl_command_argv(command, inputs[i]);

                        r = argv ? sd_bus_message_append_strv(m, argv) : -ENOMEM;
                        if (r == -EINVAL) {
                                fprintf(stderr,
                                        "Argument %zu after '" SUBMIT_INPUTS_SEPARATOR
                                        "' is not UTF-8 text: nothing was submitted from it on.\n",
                                        i + 1);
                                return EXIT_FAILED;
                        }
                }
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = append_job_options(c, m, false, -1);
                if (r < 0)
                        return ctl_log_error(c, NULL, r, "Failed to build the SubmitMany call");
                r = sd_bus_call(c->bus, m, 0, &error, &reply);
                if (r < 0 && sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_METHOD))
                        /* An older procpoold: one Submit each, in order. */
                        return submit_each(c, command, inputs + done, n - done, paths + done);
                if (r < 0)
                        return ctl_log_error(c, &error, r, "Failed to submit '%s'", command[0]);
                r = sd_bus_message_enter_container(reply, 'a', "o");
                for (size_t i = done; r >= 0 && i < done + k; i++) {
                        const char *path;

                        r = sd_bus_message_read_basic(reply, 'o', &path);
                        if (r == 0)
                                r = -EBADMSG;
                        if (r > 0) {
                                paths[i] = strdup(path);
                                if (!paths[i])
                                        r = -ENOMEM;
                        }
                }
                if (r < 0)
                        return ctl_log_error(c, NULL, r, "Failed to read the reply of SubmitMany");
                done += k;
        }
        return 0;
}

static void print_submitted(Ctl *c, const char *path) {
        uint64_t id = job_path_to_id(path);

        if (c->json && c->wait) {
                /* One JSON value: the job as it ended, which has the id and the path too. */
        } else if (c->json) {
                printf("{\"id\":%" PRIu64 ",\"path\":", id);
                json_write_string(stdout, path);
                printf("}\n");
        } else
                printf("%" PRIu64 "\n", id);
}

int verb_submit(Ctl *c, int argc, char **argv) {
        char **command = argv + 1, **inputs = NULL, **paths = NULL;
        size_t n = 1;
        int r;

        for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], SUBMIT_INPUTS_SEPARATOR) == 0) {
                        if (i == 1) {
                                fprintf(stderr,
                                        "'submit' needs a command before '" SUBMIT_INPUTS_SEPARATOR
                                        "': procpoolctl submit -- CMD [ARG...] " SUBMIT_INPUTS_SEPARATOR
                                        " ARG...\n");
                                return EXIT_USAGE;
                        }
                        if (i == argc - 1) {
                                fprintf(stderr,
                                        "'submit' needs at least one argument after '" SUBMIT_INPUTS_SEPARATOR
                                        "': each makes one job\n");
                                return EXIT_USAGE;
                        }
                        argv[i] = NULL; /* ends the command */
                        inputs = argv + i + 1;
                        n = (size_t) (argc - i - 1);
                        break;
                }

        paths = calloc(n, sizeof(char *));
        if (!paths)
                return ctl_log_error(c, NULL, -ENOMEM, "Failed to submit '%s'", command[0]);
        if (inputs)
                r = submit_many(c, command, inputs, n, paths);
        else
                r = submit_job(c, command, false, -1, &paths[0]);
        /* What was queued is shown, also when a later chunk failed. */
        for (size_t i = 0; i < n && paths[i]; i++)
                print_submitted(c, paths[i]);
        fflush(stdout);

        if (r == 0 && c->wait) {
                Waiter w = { .ctl = c, .json_array = n > 1 };

                for (size_t i = 0; r == 0 && i < n; i++)
                        if (waiter_add(&w, job_path_to_id(paths[i]), paths[i]) < 0)
                                r = ctl_log_error(c, NULL, -ENOMEM, "Failed to wait for job %" PRIu64,
                                                  job_path_to_id(paths[i]));
                if (r == 0) {
                        w.progress = !c->quiet && !c->json && isatty(STDERR_FILENO) && w.n_jobs > 1;
                        r = waiter_run(&w);
                }
                waiter_done(&w);
        }
        for (size_t i = 0; i < n; i++)
                free(paths[i]);
        free(paths);
        return r == 0 ? EXIT_SUCCESS : r;
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
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uid_t uid = getuid();
        uint64_t id;
        const char *path, *state;
        int32_t rc;
        int r;

        r = ctl_list_jobs(c, &reply);
        if (r != 0)
                return r;
        for (;;) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                uint32_t owner;

                r = sd_bus_message_read(reply, "(tosi)", &id, &path, &state, &rc);
                if (r <= 0)
                        break;
                if (ctl_state_is_final(state))
                        continue;
                if (sd_bus_get_property_trivial(c->bus, ctl_destination(c), path, PROCPOOL_JOB_INTERFACE,
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
        Waiter w = { .ctl = c, .json_array = argc != 2 };
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
                w.progress = !c->quiet && !c->json && isatty(STDERR_FILENO) && w.n_jobs > 1;
                r = waiter_run(&w);
                if (c->json && w.n_jobs == 0)
                        puts("[]");
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

int verb_communicate(Ctl *c, int argc, char **argv) {
        _cleanup_free_ uint8_t *input = NULL;
        Waiter w = { .ctl = c };
        size_t input_size = 0;
        WaitJob *j;
        int r;

        if (c->retry_set && c->retry > 0) {
                fprintf(stderr,
                        "procpoolctl: Option --retry is not valid for 'communicate': the first attempt "
                        "uses its input up. Use 'call --retry' or 'submit --retry --wait'.\n");
                return EXIT_USAGE;
        }
        if (fd_is_open(STDIN_FILENO)) {
                r = read_all(STDIN_FILENO, &input, &input_size);
                if (r < 0)
                        return ctl_log_error(c, NULL, r, "Failed to read standard input");
        }
        r = ctl_connect(c);
        if (r != 0)
                return r;
        j = waiter_add_job(&w);
        if (!j)
                return ctl_log_error(c, NULL, -ENOMEM, "Failed to run '%s'", argv[1]);
        j->command = argv[1];
        j->communicate = argv + 1;
        j->input = input ? input : (const uint8_t *) "";
        j->input_size = input_size;
        /* A signal ends procpoolctl as it would any command; the daemon cancels the job when this
         * connection goes away (cancel-on-disconnect is the default for Communicate). */
        r = waiter_run(&w);
        waiter_done(&w);
        return r;
}
