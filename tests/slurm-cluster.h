/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A throw-away Slurm cluster for a test binary: tests/slurm/cluster started in a directory of its own,
 * and what the tests ask of it (squeue, scontrol, a daemon killed). Needs root and the packages of
 * tools/install-deps. */
#pragma once

#include <stdbool.h>

typedef struct SlurmCluster {
        char *dir;     /* everything of the cluster is under it */
        char *conf;    /* its slurm.conf: SLURM_CONF for clients */
        int guard_pid; /* stops the cluster when the test process is gone, aborted or not */
        int guard_fd;
} SlurmCluster;

/* Starts a cluster, its nodes idle; NULL if it could not be started (the reason is logged). */
SlurmCluster *slurm_cluster_new(void);
/* Starts again what of it does not run (a killed node or controller), and waits for the nodes. */
void slurm_cluster_start(SlurmCluster *c);
/* SIGKILLs one of its daemons: "munged", "slurmctld", or a node, "n1".."n3". */
void slurm_cluster_kill(SlurmCluster *c, const char *daemon);
/* The ids of the Slurm jobs named name, in any state, one a line; "" for none. */
char *slurm_cluster_squeue(SlurmCluster *c, const char *name);
/* Whether Slurm job id reaches a final state (not running, not completing) within timeout_s. */
bool slurm_cluster_wait_job_final(SlurmCluster *c, const char *id, unsigned timeout_s);
/* Whether Slurm job id started the second it was submitted: Slurm did not queue it. */
bool slurm_cluster_job_started_at_once(SlurmCluster *c, const char *id);
/* Runs scontrol or scancel with args (NULL-terminated) as an administrator of the cluster would; asserts
 * that it succeeds. */
void slurm_cluster_run(SlurmCluster *c, const char *program, ...);
/* Cancels what runs on it, stops every daemon it started and removes its directory. */
void slurm_cluster_free(SlurmCluster *c);
