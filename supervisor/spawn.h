/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Starting one child process: its own process group, clean signals, fds 0-2 only, no shell fallback. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

typedef enum SpawnStage {
        SPAWN_STAGE_NONE,
        SPAWN_STAGE_SETUP,  /* process group, signals, fds */
        SPAWN_STAGE_CGROUP, /* entering the job's cgroup */
        SPAWN_STAGE_USER,   /* taking on the job's groups, gid and uid */
        SPAWN_STAGE_CHDIR,
        SPAWN_STAGE_EXEC,
} SpawnStage;

typedef struct SpawnRequest {
        const char *program; /* argv[0] as given: with a slash it is used as is, else looked up in PATH */
        char *const *argv;
        char *const *envp;
        const char *path_env; /* the PATH to search; NULL for the default */
        const char *cwd;      /* NULL: stay in the daemon's */
        int fds[3];           /* become the child's 0, 1, 2 */
        int cgroup_procs_fd;  /* an open cgroup.procs the child enters before exec, or -EBADF */
        bool set_user;        /* take on uid, gid and groups before chdir() and exec (needs root) */
        uid_t uid;
        gid_t gid;
        const gid_t *groups; /* the supplementary groups, n_groups of them */
        size_t n_groups;
        pid_t parent_pid; /* filled in by spawn_process() */
        sigset_t ignored; /* filled in by spawn_process() */
} SpawnRequest;

/* Starts the process. On success returns 0 with its pid and, if ret_pidfd is not NULL, a pidfd
 * (O_CLOEXEC). On failure returns
 * a negative errno and the stage that failed; the failed child has been reaped. */
int spawn_process(const SpawnRequest *r, pid_t *ret_pid, int *ret_pidfd, SpawnStage *ret_stage);

/* Raises the soft RLIMIT_NOFILE to the hard limit; children spawned afterwards get the old soft limit
 * back (programs that use select() expect at most 1024). Returns the soft limit in force in *ret_soft,
 * also on failure (then a negative errno). */
int spawn_raise_nofile_limit(rlim_t *ret_soft);

#define SPAWN_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
