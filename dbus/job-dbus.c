/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Job objects /org/procpool/Supervisor1/job/<id>: org.procpool.Job1, and the callers waiting on them. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "job-dbus.h"
#include "private.h"
#include "log.h"
#include "macro.h"
#include "procpool-api.h"
#include "reply-bound.h"
#include "supervisor-dbus.h"

typedef struct Waiter {
        sd_bus_message *message;
        WaiterKind kind;
        struct Waiter *next;
} Waiter;

static const char *const job_state_table[_JOB_STATE_MAX] = {
        [JOB_QUEUED] = PROCPOOL_STATE_QUEUED,       [JOB_RUNNING] = PROCPOOL_STATE_RUNNING,
        [JOB_EXITED] = PROCPOOL_STATE_EXITED,       [JOB_KILLED] = PROCPOOL_STATE_KILLED,
        [JOB_TIMED_OUT] = PROCPOOL_STATE_TIMED_OUT, [JOB_CANCELLED] = PROCPOOL_STATE_CANCELLED,
        [JOB_FAILED] = PROCPOOL_STATE_FAILED,
};

const char *job_state_to_string(JobState s) {
        return s >= 0 && s < _JOB_STATE_MAX ? job_state_table[s] : NULL;
}

static const char *stream_option(JobStream s) {
        return s == JOB_STDOUT ? PROCPOOL_OPTION_STDOUT : PROCPOOL_OPTION_STDERR;
}

/* Error texts name argv[0] or the cwd, which a client chooses: they are cut to this many bytes, so that
 * a job's properties stay what job_spec_cost() counted. */
#define JOB_ERROR_TEXT_MAX 1024U

static char *error_text_bounded(char *e) {
        size_t len = e ? strlen(e) : 0, head = JOB_ERROR_TEXT_MAX / 2 - 2, tail;

        if (len <= JOB_ERROR_TEXT_MAX)
                return e;
        /* The middle goes: the start says what failed, the end why (the errno text). Never inside a
         * UTF-8 character. */
        tail = len - (JOB_ERROR_TEXT_MAX / 2 - 2);
        while (head > 0 && ((unsigned char) e[head] & 0xC0) == 0x80)
                head--;
        while (tail < len && ((unsigned char) e[tail] & 0xC0) == 0x80)
                tail++;
        memcpy(e + head, "...", 3);
        memmove(e + head + 3, e + tail, len - tail + 1);
        return e;
}

static char *job_error_text_full(const JobRecord *r);

char *job_error_text(const JobRecord *r) {
        return error_text_bounded(job_error_text_full(r));
}

static char *job_error_text_full(const JobRecord *r) {
        const JobReason *why = &r->reason;
        char *e = NULL;
        int k;

        switch (why->kind) {
        case JOB_REASON_NONE:
                return strdup("");
        case JOB_REASON_TIMEOUT:
                k = asprintf(&e, "Timed out after %" PRIu64 " ms",
                             (uint64_t) (r->spec.timeout_usec / USEC_PER_MSEC));
                break;
        case JOB_REASON_CANCEL:
                return strdup("Cancelled");
        case JOB_REASON_CANCEL_QUEUED:
                return strdup("Cancelled before it started");
        case JOB_REASON_OUTPUT_LIMIT:
                k = asprintf(&e,
                             "%s passed the output limit of %" PRIu64
                             " bytes (option '" PROCPOOL_OPTION_OUTPUT_LIMIT
                             "'); raise it, or pass an fd with the '%s' option to take more",
                             stream_option(why->stream), why->limit, stream_option(why->stream));
                break;
        case JOB_REASON_USER_OUTPUT_LIMIT:
                k = asprintf(
                        &e,
                        "%s passed the per-user limit of %" PRIu64 " captured bytes held "
                        "(--max-output-per-user); release finished jobs, or pass an fd with the '%s' option",
                        stream_option(why->stream), why->limit, stream_option(why->stream));
                break;
        case JOB_REASON_START_FAILED:
                if (why->detail)
                        return strdup(why->detail);
                k = asprintf(&e, "Failed to start '%s': %s", r->spec.argv[0], strerror(why->error));
                break;
        case JOB_REASON_LOST:
                return strdup("Failed to watch the started process");
        case JOB_REASON_RUN_FAILED:
                if (why->detail)
                        return strdup(why->detail);
                k = asprintf(&e, "Failed while it ran: %s", strerror(why->error));
                break;
        case JOB_REASON_DAEMON_STOPPED:
                return strdup("procpoold stopped while it ran");
        case JOB_REASON_CALLER_GONE:
                return strdup("Cancelled: its caller left while procpoold was stopped");
        case JOB_REASON_INPUT_LOST:
                return strdup("The fds or input it was given did not outlive procpoold's restart");
        case JOB_REASON_DEPENDENCY:
                if (why->dependency_state == _JOB_STATE_MAX)
                        k = asprintf(&e,
                                     "Job %" PRIu64
                                     ", which it was to run after, was released before this job "
                                     "saw how it ended",
                                     why->dependency);
                else if (why->dependency_state == JOB_EXITED)
                        k = asprintf(&e, "Job %" PRIu64 ", which it was to run after, exited with code %d",
                                     why->dependency, why->dependency_returncode);
                else
                        k = asprintf(&e, "Job %" PRIu64 ", which it was to run after, ended %s",
                                     why->dependency, job_state_to_string(why->dependency_state));
                break;
        default:
                return strdup("");
        }
        return k < 0 ? NULL : e;
}

char *job_path(const Job *j) {
        char *p;
        if (asprintf(&p, JOB_PATH_PREFIX "/%" PRIu64, job_get_record(j)->id) < 0)
                return NULL;
        return p;
}

JobBus *job_bus_new(Manager *m, Client *client) {
        JobBus *jb = calloc(1, sizeof(JobBus));
        if (!jb)
                return NULL;
        jb->manager = m;
        jb->client = client;
        return jb;
}

JobBus *job_bus_free(JobBus *jb) {
        if (!jb)
                return NULL;
        while (jb->waiters) {
                Waiter *w = jb->waiters;
                jb->waiters = w->next;
                sd_bus_message_unref(w->message);
                free(w);
        }
        free(jb);
        return NULL;
}

int job_bus_reply_handle(sd_bus_message *call, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *h = NULL;
        uint64_t cookie;
        int r;

        r = sd_bus_message_get_cookie(call, &cookie);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_call(sd_bus_message_get_bus(call), &h, NULL,
                                           sd_bus_message_get_path(call), sd_bus_message_get_interface(call),
                                           sd_bus_message_get_member(call));
        if (r < 0)
                return r;
        if (sd_bus_message_get_sender(call)) {
                r = sd_bus_message_set_sender(h, sd_bus_message_get_sender(call));
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_set_expect_reply(h, sd_bus_message_get_expect_reply(call));
        if (r < 0)
                return r;
        r = sd_bus_message_seal(h, cookie, 0);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(h);
        return 0;
}

int job_bus_add_waiter(Job *j, sd_bus_message *message, WaiterKind kind) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *h = NULL;
        JobBus *jb = job_bus(j);
        Waiter *w;
        int r;

        /* Held until the job ends: the call's fds and body must not be held that long. */
        r = job_bus_reply_handle(message, &h);
        if (r < 0)
                return r;
        w = malloc(sizeof(Waiter));
        if (!w)
                return -ENOMEM;
        *w = (Waiter) { .message = TAKE_PTR(h), .kind = kind, .next = jb->waiters };
        jb->waiters = w;
        return 0;
}

void job_bus_fail_waiters(Job *j, int error) {
        JobBus *jb = job_bus(j);

        manager_flush_signals(jb->manager);
        while (jb->waiters) {
                Waiter *w = jb->waiters;
                int r;

                jb->waiters = w->next;
                r = sd_bus_reply_method_errnof(w->message, error,
                                               "Failed to store job %" PRIu64 " in the state dir: %m; it was "
                                               "not queued",
                                               job_get_record(j)->id);
                if (r < 0)
                        log_debug_errno(r, "Failed to answer a caller: %m, ignoring");
                sd_bus_message_unref(w->message);
                free(w);
        }
}

static void interrupt_waiters(Job *j, bool reexecuting) {
        JobBus *jb = job_bus(j);
        uint64_t id = job_get_record(j)->id;

        manager_flush_signals(jb->manager);
        while (jb->waiters) {
                Waiter *w = jb->waiters;
                int r;

                jb->waiters = w->next;
                /* On a re-exec the message names the job's path: a Communicate caller learns from it which
                 * job to wait for again (docs/dbus-api.md). */
                if (reexecuting)
                        r = sd_bus_reply_method_errorf(w->message, PROCPOOL_ERROR_INTERRUPTED,
                                                       "procpoold is re-executing; job %" PRIu64
                                                       " (" JOB_PATH_PREFIX "/%" PRIu64
                                                       ") goes on: wait for it again",
                                                       id, id);
                else
                        r = sd_bus_reply_method_errorf(w->message, PROCPOOL_ERROR_INTERRUPTED,
                                                       "procpoold stopped; job %" PRIu64
                                                       " stays %s and goes on when procpoold starts again",
                                                       id, job_state_to_string(job_get_record(j)->state));
                if (r < 0)
                        log_debug_errno(r, "Failed to answer a caller of job %" PRIu64 ": %m, ignoring", id);
                sd_bus_message_unref(w->message);
                free(w);
        }
}

void job_bus_interrupt_waiters(Job *j) {
        interrupt_waiters(j, false);
}

void job_bus_interrupt_waiters_reexec(Job *j) {
        interrupt_waiters(j, true);
}

void job_bus_drop_waiters(Job *j, const char *sender) {
        JobBus *jb = job_bus(j);

        for (Waiter **w = &jb->waiters; *w;) {
                const char *s = manager_message_sender((*w)->message);
                if (s && strcmp(s, sender) == 0) {
                        Waiter *dead = *w;
                        *w = dead->next;
                        sd_bus_message_unref(dead->message);
                        free(dead);
                } else
                        w = &(*w)->next;
        }
}

/* The captured stdout and stderr, as two byte arrays. */
static int append_outputs(sd_bus_message *reply, Job *j) {
        const JobRecord *r = job_get_record(j);

        for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                size_t size = r->output[s].size, n = 0;
                void *p;
                int k;

                /* Straight from the spool file into the message. */
                k = sd_bus_message_append_array_space(reply, 'y', size, &p);
                if (k < 0)
                        return k;
                k = job_read_output(j, s, p, size, &n);
                if (k < 0)
                        return k;
                if (n < size) /* the file lost bytes under the daemon: what is missing reads as zeros */
                        memset((char *) p + n, 0, size - n);
        }
        return 0;
}

/* Whether a job that ended so is answered with an error, not its return code (and its output). */
static bool ends_in_error(const JobRecord *r) {
        switch (r->state) {
        case JOB_TIMED_OUT:
        case JOB_CANCELLED:
        case JOB_FAILED:
                return true;
        case JOB_KILLED:
                return r->reason.kind == JOB_REASON_OUTPUT_LIMIT ||
                       r->reason.kind == JOB_REASON_USER_OUTPUT_LIMIT;
        default:
                return false;
        }
}

/* Replies to message; *ret_handed_over says whether the reply carried the output. */
static int reply_one(Job *j, sd_bus_message *message, WaiterKind kind, bool *ret_handed_over) {
        Manager *m = job_bus(j)->manager;
        /* A direct connection has its own bound (private.h), charged below. */
        bool direct = sd_bus_message_get_bus(message) != m->bus;
        ReplyBound *bound = direct ? NULL : m->reply_bound;
        const char *sender = sd_bus_message_get_sender(message);
        const JobRecord *r = job_get_record(j);
        _cleanup_free_ char *error = NULL;
        uint64_t size;
        int k;

        *ret_handed_over = false;
        /* The caller's connection hears the job's signals before the answer (manager.h). */
        manager_flush_signals_for(m, sd_bus_message_get_bus(message));

        if (ends_in_error(r)) {
                error = job_error_text(r);
                if (!error)
                        return -ENOMEM;
                if (r->reason.kind == JOB_REASON_DAEMON_STOPPED)
                        return sd_bus_reply_method_errorf(message, PROCPOOL_ERROR_INTERRUPTED,
                                                          "Job %" PRIu64 ": %s", r->id, error);
                if (r->reason.kind == JOB_REASON_DEPENDENCY)
                        return sd_bus_reply_method_errorf(message, PROCPOOL_ERROR_DEPENDENCY_FAILED,
                                                          "Job %" PRIu64 ": %s", r->id, error);
                if (r->state == JOB_FAILED)
                        return sd_bus_reply_method_errorf(message, PROCPOOL_ERROR_SPAWN_FAILED, "%s", error);
                return sd_bus_reply_method_errorf(message,
                                                  r->state == JOB_TIMED_OUT   ? PROCPOOL_ERROR_TIMED_OUT
                                                  : r->state == JOB_CANCELLED ? PROCPOOL_ERROR_CANCELLED
                                                                              : PROCPOOL_ERROR_OUTPUT_LIMIT,
                                                  "Job %" PRIu64 ": %s", r->id, error);
        }

        if (kind == WAITER_RETURNCODE)
                return sd_bus_reply_method_return(message, "i", (int32_t) r->returncode);

        /* The output goes only to a client that reads what it is sent (reply-bound.h); else it stays with
         * the job, and the caller hears where. */
        size = 512 + r->output[JOB_STDOUT].size + r->output[JOB_STDERR].size;
        if (direct)
                private_socket_charge(m->private, sd_bus_message_get_bus(message), size);
        switch (reply_bound_admit(bound, sender, size)) {
        case REPLY_DROP:
                return 0;
        case REPLY_REFUSE: {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                (void) reply_bound_refuse(bound, sender, &e);
                return sd_bus_reply_method_errorf(message, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                                  "Job %" PRIu64 " ended with %d; its output stays with it, "
                                                  "read it with OpenOutput() or GetOutput(): %s",
                                                  r->id, r->returncode, e.message);
        }
        case REPLY_SEND:
                break;
        }

        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        k = sd_bus_message_new_method_return(message, &reply);
        if (k < 0)
                return k;
        k = sd_bus_message_append(reply, "i", (int32_t) r->returncode);
        if (k < 0)
                return k;
        k = append_outputs(reply, j);
        if (k < 0)
                return k;
        k = sd_bus_send(NULL, reply, NULL);
        *ret_handed_over = k >= 0;
        return k;
}

int job_bus_reply(Job *j, sd_bus_message *message, WaiterKind kind) {
        bool handed_over;
        return reply_one(j, message, kind, &handed_over);
}

void job_bus_reply_all(Job *j) {
        const JobRecord *rec = job_get_record(j);
        JobBus *jb = job_bus(j);
        bool handed_over = false;

        while (jb->waiters) {
                Waiter *w = jb->waiters;
                bool sent = false;
                jb->waiters = w->next;
                int r = reply_one(j, w->message, w->kind, &sent);
                if (r < 0)
                        log_warning_errno(r, "Failed to reply to the caller of job %" PRIu64 ": %m, ignoring",
                                          rec->id);
                handed_over = handed_over || sent;
                sd_bus_message_unref(w->message);
                free(w);
        }
        /* Communicate's caller has the output now: it is not held for it, nor counted for its uid,
         * unless it asked to keep it. After an error reply the output stays, to look at. */
        if (handed_over && !rec->spec.keep_output) {
                int r = job_release_output(j);
                if (r < 0)
                        log_warning_errno(r, "Failed to give up the output of job %" PRIu64 ": %m, ignoring",
                                          rec->id);
        }
}

/* The error for output given up once its Communicate caller had it. */
static int output_released_error(Job *j, sd_bus_error *error) {
        return sd_bus_error_setf(error, PROCPOOL_ERROR_OUTPUT_RELEASED,
                                 "The output of job %" PRIu64 " went to its Communicate caller and was not "
                                 "kept; pass the '" PROCPOOL_OPTION_KEEP_OUTPUT
                                 "' option to Communicate to keep it",
                                 job_get_record(j)->id);
}

/* ---- the object ------------------------------------------------------------------------------------- */

Job *job_bus_find(Manager *m, const char *path) {
        const char *e;
        char *end;
        uint64_t id;

        if (!path || strncmp(path, JOB_PATH_PREFIX "/", strlen(JOB_PATH_PREFIX "/")) != 0)
                return NULL;
        e = path + strlen(JOB_PATH_PREFIX "/");
        /* Only the canonical decimal form names a job. */
        if (e[0] < '1' || e[0] > '9')
                return NULL;
        errno = 0;
        id = strtoull(e, &end, 10);
        if (errno != 0 || *end != '\0')
                return NULL;
        return registry_find(m->registry, id);
}

static int job_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                           sd_bus_error *error) {
        Job *j = job_bus_find(userdata, path);

        if (!j)
                return 0;
        *found = j;
        return 1;
}

typedef struct NodeList {
        char **nodes;
        size_t n;
} NodeList;

static int append_node(Job *j, void *userdata) {
        NodeList *l = userdata;

        l->nodes[l->n] = job_path(j);
        if (!l->nodes[l->n])
                return -ENOMEM;
        l->n++;
        return 0;
}

static int job_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes,
                               sd_bus_error *error) {
        Manager *m = userdata;
        NodeList l = { .nodes = calloc(registry_get_n_jobs(m->registry) + 1, sizeof(char *)) };
        int r;

        if (!l.nodes)
                return -ENOMEM;
        r = registry_foreach(m->registry, append_node, &l);
        if (r < 0) {
                strv_free(l.nodes);
                return r;
        }
        *nodes = l.nodes;
        return 0;
}

/* ---- the properties: one list feeds the vtable and the hand-built signals ----------------------------- */

static int append_id(sd_bus_message *m, Job *j) {
        return sd_bus_message_append_basic(m, 't', &job_get_record(j)->id);
}

static int append_argv(sd_bus_message *m, Job *j) {
        return sd_bus_message_append_strv(m, job_get_record(j)->spec.argv);
}

static int append_state(sd_bus_message *m, Job *j) {
        return sd_bus_message_append_basic(m, 's', job_state_to_string(job_get_record(j)->state));
}

static int append_returncode(sd_bus_message *m, Job *j) {
        int32_t rc = job_get_record(j)->returncode;
        return sd_bus_message_append_basic(m, 'i', &rc);
}

static int append_pid(sd_bus_message *m, Job *j) {
        uint32_t pid = job_get_record(j)->pid;
        return sd_bus_message_append_basic(m, 'u', &pid);
}

static int append_owner(sd_bus_message *m, Job *j) {
        uint32_t owner = job_get_record(j)->spec.owner;
        return sd_bus_message_append_basic(m, 'u', &owner);
}

static int append_label(sd_bus_message *m, Job *j) {
        return sd_bus_message_append_basic(m, 's', job_get_record(j)->spec.label ?: "");
}

static int append_submitted_at(sd_bus_message *m, Job *j) {
        return sd_bus_message_append_basic(m, 't', &job_get_record(j)->submitted_at);
}

static int append_started_at(sd_bus_message *m, Job *j) {
        return sd_bus_message_append_basic(m, 't', &job_get_record(j)->started_at);
}

static int append_finished_at(sd_bus_message *m, Job *j) {
        return sd_bus_message_append_basic(m, 't', &job_get_record(j)->finished_at);
}

static int append_error(sd_bus_message *m, Job *j) {
        _cleanup_free_ char *e = job_error_text(job_get_record(j));
        if (!e)
                return -ENOMEM;
        return sd_bus_message_append_basic(m, 's', e);
}

static int append_output_incomplete(sd_bus_message *m, Job *j) {
        const JobRecord *r = job_get_record(j);
        int b = r->output[JOB_STDOUT].incomplete || r->output[JOB_STDERR].incomplete;
        return sd_bus_message_append_basic(m, 'b', &b);
}

static int append_paused(sd_bus_message *m, Job *j) {
        int b = job_get_record(j)->paused;
        return sd_bus_message_append_basic(m, 'b', &b);
}

static int append_cpu_usage(sd_bus_message *m, Job *j) {
        uint64_t v = job_cpu_usage(j);
        return sd_bus_message_append_basic(m, 't', &v);
}

static int append_memory_peak(sd_bus_message *m, Job *j) {
        uint64_t v = job_memory_peak(j);
        return sd_bus_message_append_basic(m, 't', &v);
}

static int append_cwd(sd_bus_message *m, Job *j) {
        return sd_bus_message_append_basic(m, 's', job_get_record(j)->spec.cwd ?: "");
}

static int append_environment(sd_bus_message *m, Job *j) {
        return sd_bus_message_append_strv(m, job_get_record(j)->spec.environment);
}

static int append_clear_environment(sd_bus_message *m, Job *j) {
        int b = job_get_record(j)->spec.clear_environment;
        return sd_bus_message_append_basic(m, 'b', &b);
}

static int append_timeout(sd_bus_message *m, Job *j) {
        return sd_bus_message_append_basic(m, 't', &job_get_record(j)->spec.timeout_usec);
}

static int append_stop_timeout(sd_bus_message *m, Job *j) {
        return sd_bus_message_append_basic(m, 't', &job_get_record(j)->spec.stop_timeout_usec);
}

static int append_output_limit(sd_bus_message *m, Job *j) {
        return sd_bus_message_append_basic(m, 't', &job_get_record(j)->spec.output_limit);
}

static int append_priority(sd_bus_message *m, Job *j) {
        int32_t p = job_get_record(j)->spec.priority;
        return sd_bus_message_append_basic(m, 'i', &p);
}

static int append_memory_max(sd_bus_message *m, Job *j) {
        return sd_bus_message_append_basic(m, 't', &job_get_record(j)->spec.memory_max);
}

static int append_cancel_on_disconnect(sd_bus_message *m, Job *j) {
        int b = job_get_record(j)->spec.cancel_on_disconnect;
        return sd_bus_message_append_basic(m, 'b', &b);
}

/* Which of stdin, stdout and stderr the caller passed as fds, and whether stdin was Communicate's
 * input: what Restart() cannot give a new job. */
static int append_passed_fds(sd_bus_message *m, Job *j) {
        const JobSpec *spec = &job_get_record(j)->spec;
        static const char *const names[] = { PROCPOOL_OPTION_STDIN, PROCPOOL_OPTION_STDOUT,
                                             PROCPOOL_OPTION_STDERR };
        const char *l[5];
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (spec->passed_fds & (1U << i))
                        l[n++] = names[i];
        if (spec->has_input)
                l[n++] = "input";
        l[n] = NULL;
        return sd_bus_message_append_strv(m, (char **) l);
}

static int append_pool(sd_bus_message *m, Job *j) {
        return sd_bus_message_append_basic(m, 's', job_get_record(j)->spec.pool ?: PROCPOOL_DEFAULT_POOL);
}

static int append_after(sd_bus_message *m, Job *j) {
        const JobSpec *spec = &job_get_record(j)->spec;
        return sd_bus_message_append_array(m, 't', spec->after, spec->n_after * sizeof(uint64_t));
}

static int append_waiting_for(sd_bus_message *m, Job *j) {
        const JobSpec *spec = &job_get_record(j)->spec;
        _cleanup_free_ uint64_t *ids = NULL;
        unsigned n = 0;

        if (spec->n_after > 0) {
                ids = calloc(spec->n_after, sizeof(uint64_t));
                if (!ids)
                        return -ENOMEM;
                n = registry_waiting_for(job_bus(j)->manager->registry, j, ids);
        }
        return sd_bus_message_append_array(m, 't', ids, n * sizeof(uint64_t));
}

static int append_not_before(sd_bus_message *m, Job *j) {
        return sd_bus_message_append_basic(m, 't', &job_get_record(j)->spec.not_before_usec);
}

static int append_retry(sd_bus_message *m, Job *j) {
        uint32_t n = job_get_record(j)->spec.retry;
        return sd_bus_message_append_basic(m, 'u', &n);
}

static int append_retry_delay(sd_bus_message *m, Job *j) {
        return sd_bus_message_append_basic(m, 't', &job_get_record(j)->spec.retry_delay_usec);
}

static int append_attempt(sd_bus_message *m, Job *j) {
        uint32_t n = job_get_record(j)->attempt;
        return sd_bus_message_append_basic(m, 'u', &n);
}

/* Where the job's current attempt runs or ran, as its executor said: "" for the local executor's jobs. */
static int append_external_id(sd_bus_message *m, Job *j) {
        return sd_bus_message_append_basic(m, 's', job_get_record(j)->external_id ?: "");
}

static int append_node_name(sd_bus_message *m, Job *j) {
        return sd_bus_message_append_basic(m, 's', job_get_record(j)->node ?: "");
}

/* X(name, signature, vtable flags, the JobChange that carries it, the function that appends it, whether
 * it is private). CPUUsageUSec and MemoryPeak are read live while the job runs: no change signals for
 * them then (EmitsChangedSignal false), but the PropertiesChanged of the job's end carries their final
 * values, so that a client's cache ends right. On the system instance a private property is its
 * readers' only (job_bus_readable_by()): the public ones say that a job exists, whose it is, its state
 * and its times, and nothing more. */
#define JOB_PROPERTIES(X)                                                                                   \
        X("Id", "t", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_id, false)                                     \
        X("Argv", "as", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_argv, true)                                 \
        X("State", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE, JOB_CHANGE_STATE, append_state, false)         \
        X("ReturnCode", "i", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE, JOB_CHANGE_RETURNCODE, append_returncode, \
          true)                                                                                             \
        X("Pid", "u", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE, JOB_CHANGE_PID, append_pid, true)                \
        X("Owner", "u", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_owner, false)                               \
        X("Label", "s", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_label, true)                                \
        X("SubmittedAt", "t", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_submitted_at, false)                  \
        X("StartedAt", "t", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE, JOB_CHANGE_STARTED_AT, append_started_at,  \
          false)                                                                                            \
        X("FinishedAt", "t", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE, JOB_CHANGE_FINISHED_AT,                   \
          append_finished_at, false)                                                                        \
        X("Error", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE, JOB_CHANGE_ERROR, append_error, true)          \
        X("OutputIncomplete", "b", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE, JOB_CHANGE_OUTPUT,                  \
          append_output_incomplete, true)                                                                   \
        X("Paused", "b", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE, JOB_CHANGE_PAUSED, append_paused, false)      \
        X("CPUUsageUSec", "t", 0, JOB_CHANGE_USAGE, append_cpu_usage, true)                                 \
        X("MemoryPeak", "t", 0, JOB_CHANGE_USAGE, append_memory_peak, true)                                 \
        X("Cwd", "s", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_cwd, true)                                    \
        X("Environment", "as", SD_BUS_VTABLE_PROPERTY_CONST | SD_BUS_VTABLE_PROPERTY_EXPLICIT, 0,           \
          append_environment, true)                                                                         \
        X("ClearEnvironment", "b", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_clear_environment, true)         \
        X("TimeoutUSec", "t", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_timeout, true)                        \
        X("StopTimeoutUSec", "t", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_stop_timeout, true)               \
        X("OutputLimit", "t", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_output_limit, true)                   \
        X("Priority", "i", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_priority, true)                          \
        X("MemoryMax", "t", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_memory_max, true)                       \
        X("CancelOnDisconnect", "b", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_cancel_on_disconnect, true)    \
        X("PassedFds", "as", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_passed_fds, true)                      \
        X("Pool", "s", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_pool, true)                                  \
        X("After", "at", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_after, true)                               \
        X("WaitingFor", "at", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE, JOB_CHANGE_WAITING | JOB_CHANGE_STATE,   \
          append_waiting_for, true)                                                                         \
        X("NotBeforeUSec", "t", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_not_before, true)                   \
        X("Retry", "u", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_retry, true)                                \
        X("RetryDelayUSec", "t", SD_BUS_VTABLE_PROPERTY_CONST, 0, append_retry_delay, true)                 \
        X("Attempt", "u", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE, JOB_CHANGE_ATTEMPT, append_attempt, true)    \
        X("ExternalId", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE, JOB_CHANGE_PLACED, append_external_id,    \
          true)                                                                                             \
        X("Node", "s", SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE, JOB_CHANGE_PLACED, append_node_name, true)

typedef struct JobProperty {
        const char *name;
        const char *signature;
        uint64_t flags;
        JobChange change;
        int (*append)(sd_bus_message *m, Job *j);
        bool private;
} JobProperty;

#define JOB_PROPERTY_ENTRY(name, signature, flags, change, append, private) \
        { name, signature, flags, change, append, private },
static const JobProperty job_properties[] = { JOB_PROPERTIES(JOB_PROPERTY_ENTRY) };
#undef JOB_PROPERTY_ENTRY

bool job_bus_readable_by(Job *j, uid_t uid) {
        const JobSpec *spec = &job_get_record(j)->spec;

        if (!job_bus(j)->manager->config.system_policy)
                return true;
        return uid == 0 || uid == spec->owner || (spec->user.set && uid == spec->user.uid);
}

typedef struct ReadableCheck {
        uid_t uid;
        bool all;
} ReadableCheck;

static int check_readable(Job *j, void *userdata) {
        ReadableCheck *c = userdata;

        if (!job_bus_readable_by(j, c->uid)) {
                c->all = false;
                return 1; /* stops the walk */
        }
        return 0;
}

bool job_bus_all_readable_by(Manager *m, uid_t uid) {
        ReadableCheck c = { .uid = uid, .all = true };

        if (!m->config.system_policy || uid == 0)
                return true;
        (void) registry_foreach(m->registry, check_readable, &c);
        return c.all;
}

/* Whether request's sender reads j's private properties: one of its readers, or allowed to manage
 * (polkit answered while the filter held the request). */
static bool job_readable(Job *j, sd_bus_message *request) {
        Manager *m = job_bus(j)->manager;
        Client *c;

        if (!m->config.system_policy)
                return true;
        if (!request || manager_get_client(m, request, &c) < 0)
                return false;
        return job_bus_readable_by(j, client_uid(c)) || authz_allowed(m->authz, request, AUTHZ_MANAGE);
}

static const JobProperty *job_property_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(job_properties); i++)
                if (strcmp(job_properties[i].name, name) == 0)
                        return &job_properties[i];
        return NULL;
}

/* What a private property reads as for a caller who may not read it, in GetAll and GetManagedObjects:
 * the empty value of its type, which says nothing. */
static int append_empty(sd_bus_message *m, const char *signature) {
        static const uint64_t zero = 0;

        switch (signature[0]) {
        case 'a': {
                int r = sd_bus_message_open_container(m, 'a', signature + 1);
                return r < 0 ? r : sd_bus_message_close_container(m);
        }
        case 's':
                return sd_bus_message_append_basic(m, 's', "");
        default:
                return sd_bus_message_append_basic(m, signature[0], &zero);
        }
}

/* The vtable's one getter: the property by name, from the list. A private one the caller may not read
 * is refused to Get, and reads empty in GetAll and GetManagedObjects. */
static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const JobProperty *p = job_property_find(property);
        sd_bus_message *request = sd_bus_get_current_message(bus);
        Job *j = userdata;

        if (!p)
                return -ENOENT;
        /* A property only Get names (SD_BUS_VTABLE_PROPERTY_EXPLICIT: never in GetAll, GetManagedObjects
         * or a signal) may hold secrets on any bus: its job's owner's, the user's it runs as, and root's. */
        if (p->flags & SD_BUS_VTABLE_PROPERTY_EXPLICIT) {
                const JobSpec *spec = &job_get_record(j)->spec;
                Client *c;
                uid_t uid;

                if (!request || manager_get_client(job_bus(j)->manager, request, &c) < 0)
                        return -EACCES;
                uid = client_uid(c);
                if (uid != 0 && uid != spec->owner && !(spec->user.set && uid == spec->user.uid))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "%s of job %" PRIu64
                                                 " is its owner's (uid %u) and root's to read",
                                                 property, job_get_record(j)->id, (unsigned) spec->owner);
                return p->append(reply, j);
        }
        if (!p->private || job_readable(j, request))
                return p->append(reply, j);
        if (request && sd_bus_message_is_method_call(request, "org.freedesktop.DBus.Properties", "Get"))
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "%s of job %" PRIu64
                                         " is private: only its owner (uid %u), the user "
                                         "it runs as, root and whom polkit allows %s may read it",
                                         property, job_get_record(j)->id,
                                         (unsigned) job_get_record(j)->spec.owner, PROCPOOL_ACTION_MANAGE);
        return append_empty(reply, p->signature);
}

/* Cancel, Kill and Release: the submitter's uid or root; on the system instance also whom polkit allows
 * org.procpool.manage. 1: allowed; 0: polkit is asked (send nothing, return 1: the call comes again);
 * negative: refused, error set. */
static int check_control(Job *j, sd_bus_message *message, sd_bus_error *error) {
        Manager *m = job_bus(j)->manager;
        const JobRecord *rec = job_get_record(j);
        Client *c;
        int r;

        r = manager_get_client(m, message, &c);
        if (r < 0)
                return r;
        if (client_uid(c) == 0 || client_uid(c) == rec->spec.owner)
                return 1;
        if (m->config.system_policy)
                return authz_check(m->authz, message, AUTHZ_MANAGE, error);
        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                 "Job %" PRIu64 " belongs to uid %u; only it or root may do this", rec->id,
                                 (unsigned) rec->spec.owner);
}

/* Wait, GetOutput and OpenOutput, which show what the job did: on the system instance its readers, or
 * whom polkit allows org.procpool.manage; elsewhere Wait is open and the rest as check_control(). Returns
 * as check_control(). */
static int check_reader(Job *j, sd_bus_message *message, bool open_elsewhere, sd_bus_error *error) {
        Manager *m = job_bus(j)->manager;
        const JobRecord *rec = job_get_record(j);
        Client *c;
        int r;

        if (!m->config.system_policy)
                return open_elsewhere ? 1 : check_control(j, message, error);
        r = manager_get_client(m, message, &c);
        if (r < 0)
                return r;
        if (job_bus_readable_by(j, client_uid(c)))
                return 1;
        r = authz_check(m->authz, message, AUTHZ_MANAGE, error);
        if (r < 0 && sd_bus_error_has_name(error, SD_BUS_ERROR_ACCESS_DENIED)) {
                /* Say whose job it is, and why polkit said no. */
                _cleanup_free_ char *why = strdup(error->message ?: "");
                sd_bus_error_free(error);
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Job %" PRIu64 " is private to uid %u and the user it runs as: %s",
                                         rec->id, (unsigned) rec->spec.owner, why ?: "");
        }
        return r;
}

static int method_job_wait(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        Client *c;
        int r;

        r = check_reader(j, message, true, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (job_state_is_final(job_get_record(j)->state))
                return job_bus_reply(j, message, WAITER_RETURNCODE);
        /* Known as a client, so that the waiter is dropped when its connection leaves the bus rather
         * than held until the job ends. */
        r = manager_get_client(job_bus(j)->manager, message, &c);
        if (r < 0)
                return r;
        r = job_bus_add_waiter(j, message, WAITER_RETURNCODE);
        return r < 0 ? r : 1;
}

static int method_job_cancel(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        int r;

        r = check_control(j, message, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = job_cancel(j);
        if (r == JOB_ERROR_NOT_RUNNING)
                return sd_bus_error_setf(error, PROCPOOL_ERROR_NOT_RUNNING,
                                         "Job %" PRIu64 " has already ended (%s)", job_get_record(j)->id,
                                         job_state_to_string(job_get_record(j)->state));
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(message, NULL);
}

static int method_job_kill(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        int32_t sig;
        int r;

        r = sd_bus_message_read(message, "i", &sig);
        if (r < 0)
                return r;
        r = check_control(j, message, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = job_kill(j, sig);
        if (r == -EINVAL)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "%" PRIi32 " is not a valid signal", sig);
        if (r == JOB_ERROR_NOT_RUNNING)
                return sd_bus_error_setf(error, PROCPOOL_ERROR_NOT_RUNNING,
                                         "Job %" PRIu64 " is not running (%s)", job_get_record(j)->id,
                                         job_state_to_string(job_get_record(j)->state));
        if (r < 0)
                return sd_bus_error_set_errnof(error, r,
                                               "Failed to send signal %" PRIi32 " to job %" PRIu64 ": %m",
                                               sig, job_get_record(j)->id);
        return sd_bus_reply_method_return(message, NULL);
}

/* Pause and Resume. */
static int pause_or_resume(sd_bus_message *message, Job *j, bool pause, sd_bus_error *error) {
        const JobRecord *rec = job_get_record(j);
        int r;

        r = check_control(j, message, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* polkit is asked; the request comes again */
        r = pause ? job_pause(j) : job_resume(j);
        if (r == JOB_ERROR_NOT_RUNNING)
                return sd_bus_error_setf(error, PROCPOOL_ERROR_NOT_RUNNING,
                                         "Job %" PRIu64 " is not running (%s)", rec->id,
                                         job_state_to_string(rec->state));
        if (r == JOB_ERROR_STOPPING)
                return sd_bus_error_setf(error, PROCPOOL_ERROR_NOT_RUNNING,
                                         "Job %" PRIu64 " is being stopped (running, ending)", rec->id);
        if (r == -EOPNOTSUPP)
                return sd_bus_error_setf(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                         "Job %" PRIu64 "'s executor cannot pause jobs", rec->id);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to %s job %" PRIu64 ": %m",
                                               pause ? "pause" : "resume", rec->id);
        return sd_bus_reply_method_return(message, NULL);
}

static int method_job_pause(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return pause_or_resume(message, userdata, true, error);
}

static int method_job_resume(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return pause_or_resume(message, userdata, false, error);
}

static int method_job_get_output(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Job *j = userdata;
        const JobRecord *rec = job_get_record(j);
        /* Per stream, as for Communicate: two of them and the message's own bytes fit what the bus carries,
         * and each stays below the 64 MiB a D-Bus array may hold (a bus disconnects a sender past that). */
        uint64_t max = manager_stream_max(job_bus(j)->manager->config.bus_kind);
        int r;

        r = check_reader(j, message, false, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (rec->output[JOB_STDOUT].released)
                return output_released_error(j, error);
        for (int s = 0; s < _JOB_STREAM_MAX; s++)
                if (rec->output[s].size > max)
                        return sd_bus_error_setf(
                                error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                "Job %" PRIu64 " holds %" PRIu64 " bytes of %s, more than the %" PRIu64
                                " bytes per stream one bus message carries; read it with "
                                "OpenOutput()",
                                rec->id, rec->output[s].size, s == JOB_STDOUT ? "stdout" : "stderr", max);
        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = append_outputs(reply, j);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_job_open_output(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_close_ int out = -EBADF, err = -EBADF;
        Job *j = userdata;
        int r;

        r = check_reader(j, message, false, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        out = job_open_output(j, JOB_STDOUT);
        if (out == JOB_ERROR_OUTPUT_RELEASED)
                return output_released_error(j, error);
        if (out < 0)
                return sd_bus_error_set_errnof(error, out, "Failed to open the stdout of job %" PRIu64 ": %m",
                                               job_get_record(j)->id);
        err = job_open_output(j, JOB_STDERR);
        if (err < 0)
                return sd_bus_error_set_errnof(error, err, "Failed to open the stderr of job %" PRIu64 ": %m",
                                               job_get_record(j)->id);
        return sd_bus_reply_method_return(message, "hh", out, err);
}

static int method_job_release(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        uint64_t id = job_get_record(j)->id;
        JobState state = job_get_record(j)->state;
        int r;

        r = check_control(j, message, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = job_release(j);
        if (r == JOB_ERROR_NOT_FINISHED)
                return sd_bus_error_setf(error, PROCPOOL_ERROR_NOT_FINISHED,
                                         "Job %" PRIu64 " has not ended yet (%s); cancel it first", id,
                                         job_state_to_string(state));
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(message, NULL);
}

static int method_job_restart(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Job *j = userdata, *n;
        const JobRecord *rec = job_get_record(j);
        Manager *m = job_bus(j)->manager;
        JobSpec spec;
        Client *c;
        int r;

        r = check_control(j, message, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* polkit is asked; the request comes again */
        if (m->shutting_down)
                return sd_bus_error_set(error, PROCPOOL_ERROR_SHUTTING_DOWN,
                                        "procpoold is shutting down and takes no new jobs");
        if (rec->spec.passed_fds != 0 || rec->spec.has_input)
                return sd_bus_error_setf(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                         "Job %" PRIu64 " was given %s, which procpoold does not keep; "
                                         "submit the command again with them",
                                         rec->id, rec->spec.has_input ? "input" : "fds");
        r = manager_get_client(m, message, &c);
        if (r < 0)
                return r;
        r = job_spec_copy(&rec->spec, &spec);
        if (r < 0)
                return r;
        /* The new job is the old one's owner's, whoever restarts it. */
        r = supervisor_submit_spec(m, c, job_get_pool(j), &spec, &n, error);
        job_spec_done(&spec);
        if (r < 0)
                return r;
        return supervisor_reply_when_stored(m, message, n);
}

/* QueuePosition is not in the list: it changes whenever a job ahead leaves the queue, so it sends no
 * signal, and the ObjectManager's signals leave it out rather than sort the queue for each job added. */
static int property_get_queue_position(sd_bus *bus, const char *path, const char *interface,
                                       const char *property, sd_bus_message *reply, void *userdata,
                                       sd_bus_error *error) {
        Job *j = userdata;
        uint32_t n = pool_queue_position(job_get_pool(j), j);
        return sd_bus_message_append_basic(reply, 'u', &n);
}

#define JOB_QUEUE_POSITION SD_BUS_PROPERTY("QueuePosition", "u", property_get_queue_position, 0, 0),

#define JOB_METHODS                                                                                          \
        SD_BUS_METHOD_WITH_ARGS("Wait", SD_BUS_NO_ARGS, SD_BUS_RESULT("i", returncode), method_job_wait,     \
                                SD_BUS_VTABLE_UNPRIVILEGED),                                                 \
                SD_BUS_METHOD_WITH_ARGS("Cancel", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_job_cancel,       \
                                        SD_BUS_VTABLE_UNPRIVILEGED),                                         \
                SD_BUS_METHOD_WITH_ARGS("Kill", SD_BUS_ARGS("i", signal), SD_BUS_NO_RESULT, method_job_kill, \
                                        SD_BUS_VTABLE_UNPRIVILEGED),                                         \
                SD_BUS_METHOD_WITH_ARGS("Pause", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_job_pause,         \
                                        SD_BUS_VTABLE_UNPRIVILEGED),                                         \
                SD_BUS_METHOD_WITH_ARGS("Resume", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_job_resume,       \
                                        SD_BUS_VTABLE_UNPRIVILEGED),                                         \
                SD_BUS_METHOD_WITH_ARGS("GetOutput", SD_BUS_NO_ARGS,                                         \
                                        SD_BUS_RESULT("ay", stdout, "ay", stderr), method_job_get_output,    \
                                        SD_BUS_VTABLE_UNPRIVILEGED),                                         \
                SD_BUS_METHOD_WITH_ARGS("OpenOutput", SD_BUS_NO_ARGS,                                        \
                                        SD_BUS_RESULT("h", stdout, "h", stderr), method_job_open_output,     \
                                        SD_BUS_VTABLE_UNPRIVILEGED),                                         \
                SD_BUS_METHOD_WITH_ARGS("Release", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_job_release,     \
                                        SD_BUS_VTABLE_UNPRIVILEGED),                                         \
                SD_BUS_METHOD_WITH_ARGS("Restart", SD_BUS_NO_ARGS, SD_BUS_RESULT("o", job),                  \
                                        method_job_restart, SD_BUS_VTABLE_UNPRIVILEGED)

#define JOB_PROPERTY_VTABLE(name, signature, flags, change, append, private) \
        SD_BUS_PROPERTY(name, signature, property_get, 0, flags),
const sd_bus_vtable job_vtable[] = {
        SD_BUS_VTABLE_START(0),
        JOB_PROPERTIES(JOB_PROPERTY_VTABLE) JOB_QUEUE_POSITION JOB_METHODS,
        SD_BUS_VTABLE_END,
};
#undef JOB_PROPERTY_VTABLE

/* On the system instance a private property that changes is only invalidated: its value goes to its
 * readers alone, who Get it. The introspection data says so ("invalidates"). */
#define JOB_PROPERTY_VTABLE_SYSTEM(name, signature, flags, change, append, private) \
        SD_BUS_PROPERTY(name, signature, property_get, 0,                           \
                        (private) && (flags) == SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE \
                                ? SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION         \
                                : (flags)),
static const sd_bus_vtable job_vtable_system[] = {
        SD_BUS_VTABLE_START(0),
        JOB_PROPERTIES(JOB_PROPERTY_VTABLE_SYSTEM) JOB_QUEUE_POSITION JOB_METHODS,
        SD_BUS_VTABLE_END,
};
#undef JOB_PROPERTY_VTABLE_SYSTEM

/* Whether message reads a private property of some job its sender may not read by who it is. */
static bool read_wants_manage(Manager *m, sd_bus_message *message, uid_t uid) {
        const char *path = sd_bus_message_get_path(message) ?: "", *interface = "", *property = "";
        const JobProperty *p;
        void *found = NULL;
        int r;

        if (sd_bus_message_is_method_call(message, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"))
                return !job_bus_all_readable_by(m, uid);
        if (!sd_bus_message_is_method_call(message, "org.freedesktop.DBus.Properties", NULL))
                return false;
        if (job_object_find(m->bus, path, NULL, m, &found, NULL) <= 0 || job_bus_readable_by(found, uid))
                return false;
        if (sd_bus_message_is_method_call(message, NULL, "GetAll"))
                r = sd_bus_message_read(message, "s", &interface);
        else if (sd_bus_message_is_method_call(message, NULL, "Get"))
                r = sd_bus_message_read(message, "ss", &interface, &property);
        else
                return false;
        (void) sd_bus_message_rewind(message, true);
        if (r < 0 || (interface[0] && strcmp(interface, PROCPOOL_JOB_INTERFACE) != 0))
                return false;
        if (sd_bus_message_is_method_call(message, NULL, "GetAll"))
                return true;
        p = job_property_find(property);
        return p && p->private;
}

int job_bus_filter(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        Client *c;

        if (strncmp(sd_bus_message_get_path(message) ?: "", PROCPOOL_OBJECT_PATH,
                    strlen(PROCPOOL_OBJECT_PATH)) != 0)
                return 0;
        if (!sd_bus_message_is_method_call(message, "org.freedesktop.DBus.Properties", NULL) &&
            !sd_bus_message_is_method_call(message, "org.freedesktop.DBus.ObjectManager", NULL))
                return 0;
        if (manager_get_client(m, message, &c) < 0)
                return 0; /* the getters show it nothing private */
        if (!read_wants_manage(m, message, client_uid(c)))
                return 0;
        /* Never interactive: a read does not ask for a password. A no shows the public part. */
        return authz_check_read(m->authz, message) == 0 ? 1 : 0;
}

int job_bus_add(Manager *m, sd_bus *bus) {
        int r;

        r = sd_bus_add_fallback_vtable(bus, NULL, JOB_PATH_PREFIX, PROCPOOL_JOB_INTERFACE,
                                       m->config.system_policy ? job_vtable_system : job_vtable,
                                       job_object_find, m);
        if (r < 0)
                return r;
        return sd_bus_add_node_enumerator(bus, NULL, JOB_PATH_PREFIX, job_node_enumerator, m);
}

/* The signals below are built by hand, not through sd_bus_emit_object_added() and
 * sd_bus_emit_properties_changed(): those walk the object tree and call every getter through the
 * vtable, which made them most of the daemon's CPU time per job. */

/* Appends the a{sv} of org.procpool.Job1: every property, or those that what names; with public_only,
 * none of the private ones. */
static int append_job_properties(sd_bus_message *m, Job *j, JobChange what, bool all, bool public_only) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(job_properties); i++) {
                const JobProperty *p = &job_properties[i];

                if (p->flags & SD_BUS_VTABLE_PROPERTY_EXPLICIT)
                        continue;
                if (!all && !(what & p->change))
                        continue;
                if (public_only && p->private)
                        continue;
                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r < 0)
                        return r;
                r = sd_bus_message_append_basic(m, 's', p->name);
                if (r < 0)
                        return r;
                r = sd_bus_message_open_container(m, 'v', p->signature);
                if (r < 0)
                        return r;
                r = p->append(m, j);
                if (r < 0)
                        return r;
                r = sd_bus_message_close_container(m);
                if (r < 0)
                        return r;
                r = sd_bus_message_close_container(m);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

/* What the builders below are given for one bus: manager_emit() calls them per connection. */
typedef struct JobSignal {
        Manager *m;
        Job *j;
        JobChange what;
} JobSignal;

static int build_changed(sd_bus *bus, Manager *m, Job *j, JobChange what, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        _cleanup_free_ char *path = job_path(j);
        int r;

        if (!path)
                return -ENOMEM;
        r = sd_bus_message_new_signal(bus, &s, path, "org.freedesktop.DBus.Properties", "PropertiesChanged");
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(s, 's', PROCPOOL_JOB_INTERFACE);
        if (r < 0)
                return r;
        /* Every listener hears it: on the system instance the private properties that changed are only
         * named, as invalidated. */
        r = append_job_properties(s, j, what, false, m->config.system_policy);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(s, 'a', "s");
        if (r < 0)
                return r;
        for (size_t i = 0; m->config.system_policy && i < ELEMENTSOF(job_properties); i++) {
                const JobProperty *p = &job_properties[i];

                if (!p->private || !(what & p->change))
                        continue;
                r = sd_bus_message_append_basic(s, 's', p->name);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

static int send_changed(sd_bus *bus, void *userdata, sd_bus_message **ret) {
        JobSignal *x = userdata;
        return build_changed(bus, x->m, x->j, x->what, ret);
}

void job_bus_emit_changed(Manager *m, Job *j, JobChange what) {
        JobSignal x = { .m = m, .j = j, .what = what };
        int r;

        if (what == 0)
                return;
        r = manager_queue_signal(m, send_changed, &x);
        if (r < 0)
                log_debug_errno(r, "Failed to send PropertiesChanged for job %" PRIu64 ": %m, ignoring",
                                job_get_record(j)->id);
}

/* The interfaces GetManagedObjects lists for a job: sd-bus adds the standard ones to each object. */
static const char *const job_standard_interfaces[] = {
        "org.freedesktop.DBus.Peer",
        "org.freedesktop.DBus.Introspectable",
        "org.freedesktop.DBus.Properties",
};

/* An ObjectManager signal about j, its path appended. */
static int new_object_manager_signal(sd_bus *bus, Job *j, const char *member, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        _cleanup_free_ char *path = job_path(j);
        int r;

        if (!path)
                return -ENOMEM;
        r = sd_bus_message_new_signal(bus, &s, PROCPOOL_OBJECT_PATH, "org.freedesktop.DBus.ObjectManager",
                                      member);
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(s, 'o', path);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

static int build_added(sd_bus *bus, Manager *m, Job *j, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        int r;

        r = new_object_manager_signal(bus, j, "InterfacesAdded", &s);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(s, 'a', "{sa{sv}}");
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(job_standard_interfaces); i++) {
                r = sd_bus_message_append(s, "{sa{sv}}", job_standard_interfaces[i], 0);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_open_container(s, 'e', "sa{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(s, 's', PROCPOOL_JOB_INTERFACE);
        if (r < 0)
                return r;
        /* Every listener hears it: on the system instance only the public properties. */
        r = append_job_properties(s, j, 0, true, m->config.system_policy);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(s);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

static int build_removed(sd_bus *bus, Manager *m, Job *j, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        int r;

        r = new_object_manager_signal(bus, j, "InterfacesRemoved", &s);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(s, 'a', "s");
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(job_standard_interfaces); i++) {
                r = sd_bus_message_append_basic(s, 's', job_standard_interfaces[i]);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_append_basic(s, 's', PROCPOOL_JOB_INTERFACE);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

/* A signal that cannot be sent (out of memory, a full outgoing queue) is lost for every listener alike;
 * the daemon goes on. */
static int send_added(sd_bus *bus, void *userdata, sd_bus_message **ret) {
        JobSignal *x = userdata;
        return build_added(bus, x->m, x->j, ret);
}

static int send_removed(sd_bus *bus, void *userdata, sd_bus_message **ret) {
        JobSignal *x = userdata;
        return build_removed(bus, x->m, x->j, ret);
}

void job_bus_emit_added(Manager *m, Job *j) {
        JobSignal x = { .m = m, .j = j };
        int r = manager_queue_signal(m, send_added, &x);
        if (r < 0)
                log_debug_errno(r, "Failed to send InterfacesAdded for job %" PRIu64 ": %m, ignoring",
                                job_get_record(j)->id);
}

void job_bus_emit_removed(Manager *m, Job *j) {
        JobSignal x = { .m = m, .j = j };
        int r = manager_queue_signal(m, send_removed, &x);
        if (r < 0)
                log_debug_errno(r, "Failed to send InterfacesRemoved for job %" PRIu64 ": %m, ignoring",
                                job_get_record(j)->id);
}
