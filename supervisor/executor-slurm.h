/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Slurm executor: each job is a local srun child of the daemon, one Slurm job (named procpool-<id>)
 * per procpool job, with the job's argv, environment, cwd and streams. The daemon's queue stays the only
 * queue: the pool starts no more steps than its size, and srun runs with --immediate. A job's outcome is
 * read back from Slurm once srun exits, and stops go through scancel. */
#pragma once

#include <systemd/sd-event.h>

#include "executor.h"

/* An executor on event that runs jobs on the cluster that slurm_conf describes (NULL: srun's default)
 * in partition (NULL: the cluster's default). Nothing is asked of the cluster here. */
int executor_slurm_new(sd_event *event, const char *slurm_conf, const char *partition, Executor **ret);

/* The CPUs of partition (NULL: every partition) as sinfo counts them, for a Slurm pool's default size;
 * a negative errno if sinfo cannot be run or does not answer in a few seconds. Blocks. */
int executor_slurm_cpus(const char *slurm_conf, const char *partition, unsigned *ret);
