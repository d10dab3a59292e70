/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The manager object /org/procpool/Supervisor1: org.procpool.Supervisor1 and the ObjectManager. */
#pragma once

#include "manager.h"

extern const sd_bus_vtable supervisor_vtable[];

int supervisor_bus_add(Manager *m);
/* JobFinished; on the system instance its returncode reads 0 (the return code is private). */
void supervisor_emit_job_finished(Manager *m, Job *j);
/* The bus filter's part for the manager object (system instance): holds a Set of PoolSize until polkit
 * has answered whether its sender may manage. 1: held; 0: dispatch it; negative: refused, error set. */
int supervisor_bus_filter(Manager *m, sd_bus_message *message, sd_bus_error *error);
/* Emits PropertiesChanged for Running and Queued if they changed since the last time. */
void supervisor_emit_counts_changed(Manager *m);
