/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The local executor: each job is a child process of the daemon, in a cgroup of its own where the
 * daemon has a delegated one, else in a process group of its own. */
#pragma once

#include <systemd/sd-event.h>

#include "cgroup.h"
#include "executor.h"

/* An executor on event; with cgroup (taken over, may be NULL) each job gets a cgroup of its own. */
int executor_local_new(sd_event *event, CgroupRoot *cgroup, Executor **ret);
