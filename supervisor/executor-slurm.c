/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Placeholder of the Slurm executor, replaced by the Slurm executor: until it is here, a Slurm pool
 * cannot be set up, and the pool settings, store columns and properties around it can be built. */
#include <errno.h>

#include "executor-slurm.h"

int executor_slurm_new(sd_event *event, const char *slurm_conf, const char *partition, Executor **ret) {
        return -EOPNOTSUPP;
}

int executor_slurm_cpus(const char *slurm_conf, const char *partition, unsigned *ret) {
        return -EOPNOTSUPP;
}
