/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The manager object /org/procpool/Supervisor1: org.procpool.Supervisor1 and the ObjectManager. */
#pragma once

#include "manager.h"

extern const sd_bus_vtable supervisor_vtable[];

int supervisor_bus_add(Manager *m, sd_bus *bus);
/* Queues a job made from spec (taken over on success) in pool p for client c, who submitted it; what the
 * pool refuses becomes a D-Bus error in error. */
int supervisor_submit_spec(Manager *m, Client *c, Pool *p, JobSpec *spec, Job **ret, sd_bus_error *error);
/* Answers message with j's path once j is stored (Submit's reply); returns 1, or a negative errno after
 * which j is cancelled. */
int supervisor_reply_when_stored(Manager *m, sd_bus_message *message, Job *j);
/* JobFinished; on the system instance its returncode reads 0 (the return code is private). */
void supervisor_emit_job_finished(Manager *m, Job *j);
/* The bus filter's part for the manager object (system instance): holds a Set of PoolSize until polkit
 * has answered whether its sender may manage. 1: held; 0: dispatch it; negative: refused, error set. */
int supervisor_bus_filter(Manager *m, sd_bus_message *message, sd_bus_error *error);
/* Emits PropertiesChanged for Running and Queued if they changed since the last time. */
void supervisor_emit_counts_changed(Manager *m);
