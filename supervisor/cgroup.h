/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Per-job cgroups under the daemon's delegated cgroup v2 subtree: whole-tree kill and accounting. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct CgroupRoot {
        char *path;      /* the delegated cgroup's directory */
        bool has_memory; /* the memory controller is enabled for job cgroups */
        bool has_kill;   /* cgroup.kill exists (Linux 5.14) */
} CgroupRoot;

/* The directory of the calling process's cgroup in the v2 hierarchy (unified or hybrid). */
int cgroup_own_path(char **ret);
/* The same for process pid (0: the calling process). */
int cgroup_pid_path(pid_t pid, char **ret);
/* True if systemd marked the cgroup as delegated (the trusted.delegate or user.delegate xattr). */
bool cgroup_marked_delegated(const char *path);
/* Takes over the delegated cgroup at path: moves the daemon into path/supervisor, so job cgroups
 * can live beside it, and enables the controllers it can for them. */
int cgroup_root_setup(const char *path, CgroupRoot **ret);
CgroupRoot *cgroup_root_free(CgroupRoot *root);

/* Makes path/job-<id> and opens its cgroup.procs for the child to enter before exec. */
int cgroup_job_create(CgroupRoot *root, uint64_t id, uint64_t memory_max, char **ret_path, int *ret_procs_fd);
/* Sends sig to every process in the cgroup; SIGKILL goes through cgroup.kill where there is one. */
int cgroup_signal(const char *path, int sig, bool has_kill);
int cgroup_is_populated(const char *path);
/* Freezes (cgroup.freeze 1) or thaws the cgroup's whole tree. */
int cgroup_freeze(const char *path, bool freeze);
int cgroup_read_cpu_usage(const char *path, uint64_t *ret_usec);
int cgroup_read_memory_peak(const char *path, uint64_t *ret_bytes);
int cgroup_remove(const char *path);
