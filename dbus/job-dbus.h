/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Job objects /org/procpool/Supervisor1/job/<id>: org.procpool.Job1, and the callers waiting on them. */
#pragma once

#include <stdbool.h>

#include <systemd/sd-bus.h>

#include "job.h"
#include "manager.h"
#include "procpool-api.h"

#define JOB_PATH_PREFIX PROCPOOL_JOB_PATH_PREFIX

typedef enum WaiterKind {
        WAITER_RETURNCODE,  /* Call and Wait: (i) */
        WAITER_COMMUNICATE, /* (iayay) */
} WaiterKind;

/* What the bus layer keeps per job (its job_get_userdata()): its manager, its submitter and the method
 * calls awaiting its end. */
typedef struct JobBus {
        Manager *manager;
        Client *client;
        struct Waiter *waiters;
} JobBus;

extern const sd_bus_vtable job_vtable[];

int job_bus_add(Manager *m, sd_bus *bus);
/* The job an object path names, or NULL. */
Job *job_bus_find(Manager *m, const char *path);
/* The job's object path; free it. */
char *job_path(const Job *j);
JobBus *job_bus_new(Manager *m, Client *client);
JobBus *job_bus_free(JobBus *jb);
static inline JobBus *job_bus(const Job *j) {
        return job_get_userdata(j);
}
/* The API's name of a state (PROCPOOL_STATE_*). */
const char *job_state_to_string(JobState s);
/* Job1.Error: why the job ended or is being stopped, in words, or "" (free it). */
char *job_error_text(const JobRecord *r);
/* A method call with call's cookie, sender, path and member and nothing else: what a later reply to call
 * needs, without the body and the fds the client sent. */
int job_bus_reply_handle(sd_bus_message *call, sd_bus_message **ret);
/* Holds (a handle of) message until the job ends, then replies to it as kind says. */
int job_bus_add_waiter(Job *j, sd_bus_message *message, WaiterKind kind);
/* Replies to every waiter of a finished job. */
void job_bus_reply_all(Job *j);
/* Answers every waiter with error: the store refused the job, which was never queued. */
void job_bus_fail_waiters(Job *j, int error);
/* Answers every waiter with org.procpool.Error.Interrupted: the daemon stops, the job stays. */
void job_bus_interrupt_waiters(Job *j);
/* As job_bus_interrupt_waiters(), for a re-exec: the job runs on, and the message names its path. */
void job_bus_interrupt_waiters_reexec(Job *j);
/* Forgets, without replying, the waiters that sender sent. */
void job_bus_drop_waiters(Job *j, const char *sender);
/* PropertiesChanged for what changed; InterfacesAdded and InterfacesRemoved of the ObjectManager. */
void job_bus_emit_changed(Manager *m, Job *j, JobChange what);
void job_bus_emit_added(Manager *m, Job *j);
void job_bus_emit_removed(Manager *m, Job *j);
/* On the system instance a job's private properties (its command line, label, cwd, environment, output,
 * return code, pid, error, usage) are for its readers only: its owner, the user it runs as, root and
 * whom polkit allows org.procpool.manage. Whether uid is one of the first three of j's. */
bool job_bus_readable_by(Job *j, uid_t uid);
/* Whether uid owns or runs as every job there is (or is root): it may read all of them. */
bool job_bus_all_readable_by(Manager *m, uid_t uid);
/* The bus filter's part for the job objects (system instance): holds a Get, GetAll or GetManagedObjects
 * that would show private properties to a caller who is no reader until polkit has answered whether it
 * may manage. 1: held; 0: dispatch it. */
int job_bus_filter(Manager *m, sd_bus_message *message, sd_bus_error *error);
/* Sends the end of the job to message as kind says. */
int job_bus_reply(Job *j, sd_bus_message *message, WaiterKind kind);
