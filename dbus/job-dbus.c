/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Job objects /org/procpool/Supervisor1/job/<id>: org.procpool.Job1, and the callers waiting on them. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "procpool-api.h"
#include "job-dbus.h"
#include "macro.h"

typedef struct Waiter {
        sd_bus_message *message;
        WaiterKind kind;
        struct Waiter *next;
} Waiter;

char *job_path(const Job *j) {
        char *p;
        if (asprintf(&p, JOB_PATH_PREFIX "/%" PRIu64, j->id) < 0)
                return NULL;
        return p;
}

JobBus *job_bus_new(Client *client, bool cancel_on_disconnect) {
        JobBus *jb = calloc(1, sizeof(JobBus));
        if (!jb)
                return NULL;
        jb->client = client;
        jb->cancel_on_disconnect = cancel_on_disconnect;
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

int job_bus_add_waiter(Job *j, sd_bus_message *message, WaiterKind kind) {
        JobBus *jb = j->bus_data;
        Waiter *w;

        if (!jb)
                return -ENOMEM;
        w = malloc(sizeof(Waiter));
        if (!w)
                return -ENOMEM;
        *w = (Waiter) { .message = sd_bus_message_ref(message), .kind = kind, .next = jb->waiters };
        jb->waiters = w;
        return 0;
}

void job_bus_drop_waiters(Job *j, const char *sender) {
        JobBus *jb = j->bus_data;

        if (!jb)
                return;
        for (Waiter **w = &jb->waiters; *w;) {
                const char *s = sd_bus_message_get_sender((*w)->message);
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
        for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                int r = sd_bus_message_append_array(reply, 'y', j->output[s].data ?: "", j->output[s].size);
                if (r < 0)
                        return r;
        }
        return 0;
}

int job_bus_reply(Job *j, sd_bus_message *message, WaiterKind kind) {
        const char *error = j->error ?: "";

        switch (j->state) {
        case JOB_TIMED_OUT:
                return sd_bus_reply_method_errorf(message, PROCPOOL_ERROR_TIMED_OUT, "Job %" PRIu64 ": %s",
                                                  j->id, error);
        case JOB_CANCELLED:
                return sd_bus_reply_method_errorf(message, PROCPOOL_ERROR_CANCELLED, "Job %" PRIu64 ": %s",
                                                  j->id, error);
        case JOB_FAILED:
                return sd_bus_reply_method_errorf(message, PROCPOOL_ERROR_SPAWN_FAILED, "%s", error);
        case JOB_KILLED:
                if (j->stop_reason == JOB_STOP_OUTPUT_LIMIT)
                        return sd_bus_reply_method_errorf(message, PROCPOOL_ERROR_OUTPUT_LIMIT,
                                                          "Job %" PRIu64 ": %s", j->id, error);
                break;
        default:
                break;
        }

        if (kind == WAITER_RETURNCODE)
                return sd_bus_reply_method_return(message, "i", (int32_t) j->returncode);

        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "i", (int32_t) j->returncode);
        if (r < 0)
                return r;
        r = append_outputs(reply, j);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

void job_bus_reply_all(Manager *m, Job *j) {
        JobBus *jb = j->bus_data;

        if (!jb)
                return;
        while (jb->waiters) {
                Waiter *w = jb->waiters;
                jb->waiters = w->next;
                int r = job_bus_reply(j, w->message, w->kind);
                if (r < 0)
                        fprintf(stderr, "Failed to reply to the caller of job %" PRIu64 ": %s, ignoring\n",
                                j->id, strerror(-r));
                sd_bus_message_unref(w->message);
                free(w);
        }
}

/* ---- the object ------------------------------------------------------------------------------ */

static int job_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                           void **found, sd_bus_error *error) {
        Manager *m = userdata;
        const char *e;
        char *end;
        uint64_t id;
        Job *j;

        if (strncmp(path, JOB_PATH_PREFIX "/", strlen(JOB_PATH_PREFIX "/")) != 0)
                return 0;
        e = path + strlen(JOB_PATH_PREFIX "/");
        /* Only the canonical decimal form names a job. */
        if (e[0] < '1' || e[0] > '9')
                return 0;
        errno = 0;
        id = strtoull(e, &end, 10);
        if (errno != 0 || *end != '\0')
                return 0;
        j = pool_find(m->pool, id);
        if (!j)
                return 0;
        *found = j;
        return 1;
}

static int job_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes,
                               sd_bus_error *error) {
        Manager *m = userdata;
        char **l = calloc(m->pool->n_jobs + 1, sizeof(char *));
        size_t k = 0;

        if (!l)
                return -ENOMEM;
        for (uint64_t id = m->pool->first_id; m->pool->n_slots > 0 && id < m->pool->first_id + m->pool->n_slots;
             id++) {
                Job *j = pool_find(m->pool, id);
                if (!j)
                        continue;
                l[k] = job_path(j);
                if (!l[k]) {
                        strv_free(l);
                        return -ENOMEM;
                }
                k++;
        }
        *nodes = l;
        return 0;
}

static int property_get_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        return sd_bus_message_append(reply, "s", job_state_to_string(j->state));
}

static int property_get_argv(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        return sd_bus_message_append_strv(reply, j->spec.argv);
}

static int property_get_cpu_usage(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "t", job_cpu_usage(userdata));
}

static int property_get_memory_peak(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "t", job_memory_peak(userdata));
}

/* Cancel, Kill, GetOutput and Release: the submitter's uid, or root. */
static int check_owner(Job *j, sd_bus_message *message, sd_bus_error *error) {
        Manager *m = j->pool->userdata;
        Client *c;
        int r;

        r = manager_get_client(m, message, &c);
        if (r < 0)
                return r;
        if (client_uid(c) != 0 && client_uid(c) != j->spec.owner)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Job %" PRIu64 " belongs to uid %u; only it or root may do this",
                                         j->id, (unsigned) j->spec.owner);
        return 0;
}

static int method_job_wait(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        Client *c;
        int r;

        if (job_state_is_final(j->state))
                return job_bus_reply(j, message, WAITER_RETURNCODE);
        /* Known as a client, so that the waiter is dropped when its connection leaves the bus rather
         * than held until the job ends. */
        r = manager_get_client(j->pool->userdata, message, &c);
        if (r < 0)
                return r;
        r = job_bus_add_waiter(j, message, WAITER_RETURNCODE);
        return r < 0 ? r : 1;
}

static int method_job_cancel(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        int r;

        r = check_owner(j, message, error);
        if (r < 0)
                return r;
        r = job_cancel(j);
        if (r == JOB_ERROR_NOT_RUNNING)
                return sd_bus_error_setf(error, PROCPOOL_ERROR_NOT_RUNNING, "Job %" PRIu64 " has already ended (%s)",
                                         j->id, job_state_to_string(j->state));
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
        r = check_owner(j, message, error);
        if (r < 0)
                return r;
        r = job_kill(j, sig);
        if (r == -EINVAL)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "%" PRIi32 " is not a valid signal",
                                         sig);
        if (r == JOB_ERROR_NOT_RUNNING)
                return sd_bus_error_setf(error, PROCPOOL_ERROR_NOT_RUNNING, "Job %" PRIu64 " is not running (%s)",
                                         j->id, job_state_to_string(j->state));
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to send signal %" PRIi32 " to job %" PRIu64 ": %m",
                                               sig, j->id);
        return sd_bus_reply_method_return(message, NULL);
}

static int method_job_get_output(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Job *j = userdata;
        int r;

        r = check_owner(j, message, error);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = append_outputs(reply, j);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_job_release(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Job *j = userdata;
        uint64_t id = j->id;
        JobState state = j->state;
        int r;

        r = check_owner(j, message, error);
        if (r < 0)
                return r;
        r = job_release(j);
        if (r == JOB_ERROR_NOT_FINISHED)
                return sd_bus_error_setf(error, PROCPOOL_ERROR_NOT_FINISHED,
                                         "Job %" PRIu64 " has not ended yet (%s); cancel it first", id,
                                         job_state_to_string(state));
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(message, NULL);
}

const sd_bus_vtable job_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "t", NULL, offsetof(Job, id), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Argv", "as", property_get_argv, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ReturnCode", "i", NULL, offsetof(Job, returncode), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Pid", "u", NULL, offsetof(Job, pid), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Owner", "u", NULL, offsetof(Job, spec.owner), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Label", "s", NULL, offsetof(Job, spec.label), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("SubmittedAt", "t", NULL, offsetof(Job, submitted_at), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("StartedAt", "t", NULL, offsetof(Job, started_at), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("FinishedAt", "t", NULL, offsetof(Job, finished_at), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Error", "s", NULL, offsetof(Job, error), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        /* Read live from the job's cgroup while it runs: no change signals for them. */
        SD_BUS_PROPERTY("CPUUsageUSec", "t", property_get_cpu_usage, 0, 0),
        SD_BUS_PROPERTY("MemoryPeak", "t", property_get_memory_peak, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("Wait", SD_BUS_NO_ARGS, SD_BUS_RESULT("i", returncode), method_job_wait,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Cancel", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_job_cancel,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Kill", SD_BUS_ARGS("i", signal), SD_BUS_NO_RESULT, method_job_kill,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetOutput", SD_BUS_NO_ARGS, SD_BUS_RESULT("ay", stdout, "ay", stderr),
                                method_job_get_output, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Release", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_job_release,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int job_bus_add(Manager *m) {
        int r;

        r = sd_bus_add_fallback_vtable(m->bus, NULL, JOB_PATH_PREFIX, "org.procpool.Job1", job_vtable,
                                       job_object_find, m);
        if (r < 0)
                return r;
        return sd_bus_add_node_enumerator(m->bus, NULL, JOB_PATH_PREFIX, job_node_enumerator, m);
}

/* The signals below are built by hand, not through sd_bus_emit_object_added() and
 * sd_bus_emit_properties_changed(): those walk the object tree and call every getter through the
 * vtable, which made them most of the daemon's CPU time per job. */

static int append_entry(sd_bus_message *m, const char *name, char type, const void *value) {
        const char sig[2] = { type, 0 };
        int r;

        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(m, 's', name);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'v', sig);
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(m, type, value);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

/* Appends the a{sv} of org.procpool.Job1: every property, or those that what names. */
static int append_job_properties(sd_bus_message *m, Job *j, JobChange what, bool all) {
        const char *state = job_state_to_string(j->state), *label = j->spec.label ?: "", *error = j->error ?: "";
        uint32_t pid = j->pid, owner = j->spec.owner;
        int32_t rc = j->returncode;
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if (all) {
                uint64_t cpu = job_cpu_usage(j), mem = job_memory_peak(j);
                if ((r = append_entry(m, "Id", 't', &j->id)) < 0)
                        return r;
                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append_basic(m, 's', "Argv");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'v', "as");
                if (r >= 0)
                        r = sd_bus_message_append_strv(m, j->spec.argv);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r < 0)
                        return r;
                if ((r = append_entry(m, "Owner", 'u', &owner)) < 0 ||
                    (r = append_entry(m, "Label", 's', label)) < 0 ||
                    (r = append_entry(m, "SubmittedAt", 't', &j->submitted_at)) < 0 ||
                    (r = append_entry(m, "CPUUsageUSec", 't', &cpu)) < 0 ||
                    (r = append_entry(m, "MemoryPeak", 't', &mem)) < 0)
                        return r;
        }
        if ((all || (what & JOB_CHANGE_STATE)) && (r = append_entry(m, "State", 's', state)) < 0)
                return r;
        if ((all || (what & JOB_CHANGE_RETURNCODE)) && (r = append_entry(m, "ReturnCode", 'i', &rc)) < 0)
                return r;
        if ((all || (what & JOB_CHANGE_PID)) && (r = append_entry(m, "Pid", 'u', &pid)) < 0)
                return r;
        if ((all || (what & JOB_CHANGE_STARTED_AT)) && (r = append_entry(m, "StartedAt", 't', &j->started_at)) < 0)
                return r;
        if ((all || (what & JOB_CHANGE_FINISHED_AT)) &&
            (r = append_entry(m, "FinishedAt", 't', &j->finished_at)) < 0)
                return r;
        if ((all || (what & JOB_CHANGE_ERROR)) && (r = append_entry(m, "Error", 's', error)) < 0)
                return r;
        return sd_bus_message_close_container(m);
}

void job_bus_emit_changed(Manager *m, Job *j, JobChange what) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        _cleanup_free_ char *path = job_path(j);

        if (!path || what == 0)
                return;
        if (sd_bus_message_new_signal(m->bus, &s, path, "org.freedesktop.DBus.Properties", "PropertiesChanged") < 0 ||
            sd_bus_message_append_basic(s, 's', "org.procpool.Job1") < 0 ||
            append_job_properties(s, j, what, false) < 0 ||
            sd_bus_message_append_strv(s, NULL) < 0)
                return;
        (void) sd_bus_send(m->bus, s, NULL);
}

/* The interfaces GetManagedObjects lists for a job: sd-bus adds the standard ones to each object. */
static const char *const job_standard_interfaces[] = {
        "org.freedesktop.DBus.Peer",
        "org.freedesktop.DBus.Introspectable",
        "org.freedesktop.DBus.Properties",
};

/* An ObjectManager signal about j, its path appended. */
static int new_object_manager_signal(Manager *m, Job *j, const char *member, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        _cleanup_free_ char *path = job_path(j);
        int r;

        if (!path)
                return -ENOMEM;
        r = sd_bus_message_new_signal(m->bus, &s, PROCPOOL_OBJECT_PATH, "org.freedesktop.DBus.ObjectManager",
                                      member);
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(s, 'o', path);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

void job_bus_emit_added(Manager *m, Job *j) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        int r;

        r = new_object_manager_signal(m, j, "InterfacesAdded", &s);
        if (r >= 0)
                r = sd_bus_message_open_container(s, 'a', "{sa{sv}}");
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(job_standard_interfaces); i++)
                r = sd_bus_message_append(s, "{sa{sv}}", job_standard_interfaces[i], 0);
        if (r >= 0)
                r = sd_bus_message_open_container(s, 'e', "sa{sv}");
        if (r >= 0)
                r = sd_bus_message_append_basic(s, 's', "org.procpool.Job1");
        if (r >= 0)
                r = append_job_properties(s, j, 0, true);
        if (r >= 0)
                r = sd_bus_message_close_container(s);
        if (r >= 0)
                r = sd_bus_message_close_container(s);
        if (r >= 0)
                (void) sd_bus_send(m->bus, s, NULL);
}

void job_bus_emit_removed(Manager *m, Job *j) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        int r;

        r = new_object_manager_signal(m, j, "InterfacesRemoved", &s);
        if (r >= 0)
                r = sd_bus_message_open_container(s, 'a', "s");
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(job_standard_interfaces); i++)
                r = sd_bus_message_append_basic(s, 's', job_standard_interfaces[i]);
        if (r >= 0)
                r = sd_bus_message_append_basic(s, 's', "org.procpool.Job1");
        if (r >= 0)
                r = sd_bus_message_close_container(s);
        if (r >= 0)
                (void) sd_bus_send(m->bus, s, NULL);
}
