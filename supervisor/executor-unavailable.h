/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The executor of a pool whose own could not be set up when the daemon started (a Slurm pool whose
 * slurm.conf is gone): the pool and its jobs are kept, and each job fails as it would start, with the
 * account its maker gave. */
#pragma once

#include "executor.h"

/* An executor whose every start fails with error (a negative errno) and detail (copied). */
int executor_unavailable_new(int error, const char *detail, Executor **ret);
