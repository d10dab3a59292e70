/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The manager object /org/procpool/Supervisor1: org.procpool.Supervisor1 and the ObjectManager. */
#pragma once

#include "manager.h"

extern const sd_bus_vtable supervisor_vtable[];

int supervisor_bus_add(Manager *m);
void supervisor_emit_job_finished(Manager *m, Job *j);
/* Emits PropertiesChanged for Running and Queued if they changed since the last time. */
void supervisor_emit_counts_changed(Manager *m);
