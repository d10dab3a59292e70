/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What pools and jobs do to the registry: private to supervisor/. */
#pragma once

#include "job-internal.h"
#include "registry.h"

/* Makes room for a job of uid that holds cost bytes. In uid's share only uid's finished jobs make room,
 * oldest first: REGISTRY_ERROR_USER_HELD_LIMIT if there is none. In the whole bound uid's own go first,
 * then those of a uid that holds more than uid will, never of one that holds less:
 * REGISTRY_ERROR_HELD_LIMIT if there is none. */
int registry_make_room(Registry *r, uid_t uid, size_t cost);
/* Gives j the next id and takes it in; the caller made room for cost first. */
int registry_add(Registry *r, Job *j, size_t cost);
/* Takes back a job registry_add() took in, when the pool could not queue it. */
void registry_remove(Registry *r, Job *j);
/* The job reached a final state: it joins the finished jobs, and the observer hears of it. */
void registry_job_finished(Registry *r, Job *j, JobChange what);
/* Forgets a finished job and frees it. */
void registry_release(Registry *r, Job *j);
void registry_job_added(Registry *r, Job *j);
void registry_job_changed(Registry *r, Job *j, JobChange what);
void registry_counts_changed(Registry *r, Pool *p);
/* A pool's settings changed, or it was removed: written with the next batch. */
void registry_pool_changed(Registry *r, Pool *p);
void registry_pool_removed(Registry *r, const char *name);
/* j's record changed: it is written with the next batch. */
void registry_job_dirty(Registry *r, Job *j);
/* Calls the idle callback if nothing is held, after giving memory back. */
void registry_check_idle(Registry *r);
/* Queued jobs that may not start yet (registry_job_may_start() says no): the registry looks at them again
 * when a job ends and at the time they wait for, ends those whose dependency failed
 * (job_fail_dependency()) and hands those that may start to pool_job_ready(). */
void registry_wait_add(Registry *r, Job *j);
void registry_wait_remove(Registry *r, Job *j);
bool registry_job_may_start(Registry *r, Job *j);
