/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pool objects /org/procpool/Supervisor1/pool/<name>: org.procpool.Pool1. */
#pragma once

#include <stdint.h>

#include <systemd/sd-bus.h>

#include "manager.h"

int pool_bus_add(Manager *m, sd_bus *bus);
/* The pool's object path (its name encoded as sd_bus_path_encode() does); free it. */
char *pool_path(const Pool *p);
/* Whether the sender of message may change pools (create, resize, pause, remove): org.procpool.manage, as
 * authz_check() answers it: 1 yes, 0 polkit is asked (the request comes again), or a negative errno with
 * error set. */
int bus_check_manage(Manager *m, sd_bus_message *message, sd_bus_error *error);
/* Sets a pool's size for the sender of message, if allowed, and says so on the bus. */
int bus_pool_set_size(Manager *m, Pool *p, sd_bus_message *message, uint32_t n, sd_bus_error *error);
void pool_bus_emit_changed(Manager *m, Pool *p, const char *property);
void pool_bus_emit_added(Manager *m, Pool *p);
void pool_bus_emit_removed(Manager *m, Pool *p);
/* PropertiesChanged of Running and Queued for every pool whose counts changed since the last time. */
void pool_bus_emit_counts_changed(Manager *m);
