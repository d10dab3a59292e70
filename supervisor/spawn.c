/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Starting one child process: its own process group, clean signals, fds 0-2 only, no shell fallback. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include "macro.h"
#include "spawn.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static int pidfd_open_fd(pid_t pid) {
        return (int) syscall(SYS_pidfd_open, pid, 0);
}

/* The candidate paths for a program without a slash, as execvp walks PATH. Allocated before vfork,
 * since the child must not allocate. */
static char **path_candidates(const char *program, const char *path_env) {
        const char *path = path_env && *path_env ? path_env : SPAWN_DEFAULT_PATH;
        size_t n = 1, len = strlen(program);
        char **l;

        for (const char *c = path; *c; c++)
                if (*c == ':')
                        n++;
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return NULL;

        size_t i = 0;
        for (const char *p = path;;) {
                const char *end = strchrnul(p, ':');
                size_t dlen = end - p;
                /* An empty entry means the current directory, as for execvp. */
                char *s = malloc(dlen + 1 + len + 1);
                if (!s) {
                        strv_free(l);
                        return NULL;
                }
                if (dlen == 0)
                        memcpy(s, ".", (dlen = 1));
                else
                        memcpy(s, p, dlen);
                s[dlen] = '/';
                memcpy(s + dlen + 1, program, len + 1);
                l[i++] = s;
                if (!*end)
                        break;
                p = end + 1;
        }
        return l;
}

/* The signals this process ignores, asked once: the daemon sets its dispositions at start and never
 * again. The child then resets only those, not every signal, while the parent waits for its exec. */
static void ignored_signals(sigset_t *ret) {
        static sigset_t ignored;
        static bool known = false;

        if (!known) {
                sigemptyset(&ignored);
                for (int sig = 1; sig < _NSIG; sig++) {
                        struct sigaction sa;
                        if (sig != SIGKILL && sig != SIGSTOP && sigaction(sig, NULL, &sa) == 0 &&
                            sa.sa_handler == SIG_IGN)
                                sigaddset(&ignored, sig);
                }
                known = true;
        }
        *ret = ignored;
}

/* The soft RLIMIT_NOFILE the daemon was started with, given back to its children. */
static struct rlimit nofile_saved;
static bool nofile_raised;

int spawn_raise_nofile_limit(rlim_t *ret_soft) {
        struct rlimit rl, raised;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
                *ret_soft = 1024;
                return -errno;
        }
        *ret_soft = rl.rlim_cur;
        if (rl.rlim_cur >= rl.rlim_max)
                return 0;
        raised = (struct rlimit) { .rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max };
        if (setrlimit(RLIMIT_NOFILE, &raised) < 0)
                return -errno;
        nofile_saved = rl;
        nofile_raised = true;
        *ret_soft = rl.rlim_max;
        return 0;
}

/* The credential system calls, raw: glibc's wrappers would have the vfork()ed child signal the
 * parent's threads to change theirs too (its setxid broadcast). The 32-bit ids where an architecture
 * has both. */
#ifdef SYS_setresuid32
#define SYS_SETGROUPS SYS_setgroups32
#define SYS_SETRESGID SYS_setresgid32
#define SYS_SETRESUID SYS_setresuid32
#define SYS_GETGROUPS SYS_getgroups32
#define SYS_GETRESGID SYS_getresgid32
#define SYS_GETRESUID SYS_getresuid32
#else
#define SYS_SETGROUPS SYS_setgroups
#define SYS_SETRESGID SYS_setresgid
#define SYS_SETRESUID SYS_setresuid
#define SYS_GETGROUPS SYS_getgroups
#define SYS_GETRESGID SYS_getresgid
#define SYS_GETRESUID SYS_getresuid
#endif

/* Takes on r's groups, gid and uid, in that order (each one needs the privilege the next one drops),
 * then checks that every id and group is what was asked and that no capability is left to a uid other
 * than root: a job never runs with more than it asked for. check has room for n_groups + 1 entries. */
static int child_set_user(const SpawnRequest *r, gid_t *check) {
        struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3] = {};
        uid_t ruid, euid, suid;
        gid_t rgid, egid, sgid;
        long n;

        if (syscall(SYS_SETGROUPS, r->n_groups, r->groups) < 0)
                return -errno;
        if (syscall(SYS_SETRESGID, r->gid, r->gid, r->gid) < 0)
                return -errno;
        if (syscall(SYS_SETRESUID, r->uid, r->uid, r->uid) < 0)
                return -errno;

        if (syscall(SYS_GETRESUID, &ruid, &euid, &suid) < 0 ||
            syscall(SYS_GETRESGID, &rgid, &egid, &sgid) < 0)
                return -errno;
        if (ruid != r->uid || euid != r->uid || suid != r->uid || rgid != r->gid || egid != r->gid ||
            sgid != r->gid)
                return -EPERM;
        n = syscall(SYS_GETGROUPS, r->n_groups + 1, check);
        if (n < 0)
                return -errno;
        if ((size_t) n != r->n_groups)
                return -EPERM;
        for (size_t i = 0; i < r->n_groups; i++)
                if (check[i] != r->groups[i])
                        return -EPERM;
        if (r->uid != 0) {
                if (syscall(SYS_capget, &header, caps) < 0)
                        return -errno;
                for (size_t i = 0; i < ELEMENTSOF(caps); i++)
                        if (caps[i].effective || caps[i].permitted || caps[i].inheritable)
                                return -EPERM;
        }
        return 0;
}

/* Runs in the vfork()ed child: it shares the parent's memory, so it only makes system calls and
 * writes its failure into *err. */
static _Noreturn void child_run(const SpawnRequest *r, char *const *candidates, gid_t *check_groups,
                                volatile int *err, volatile SpawnStage *stage) {
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigset_t empty;
        int fds[3];

        *stage = SPAWN_STAGE_SETUP;
        if (setpgid(0, 0) < 0)
                goto fail;

        /* execve() resets handled signals by itself; only ignored ones would stay ignored. */
        for (int sig = 1; sig < _NSIG; sig++)
                if (sigismember(&r->ignored, sig) == 1)
                        (void) sigaction(sig, &dfl, NULL);
        sigemptyset(&empty);
        if (sigprocmask(SIG_SETMASK, &empty, NULL) < 0)
                goto fail;

        if (r->cgroup_procs_fd >= 0) {
                *stage = SPAWN_STAGE_CGROUP;
                if (write(r->cgroup_procs_fd, "0", 1) != 1)
                        goto fail;
                *stage = SPAWN_STAGE_SETUP;
        }

        /* Move the sources above 2 first, so that one source's dup2() cannot overwrite another. */
        for (int i = 0; i < 3; i++) {
                fds[i] = fcntl(r->fds[i], F_DUPFD_CLOEXEC, 3);
                if (fds[i] < 0)
                        goto fail;
        }
        for (int i = 0; i < 3; i++)
                if (dup2(fds[i], i) < 0)
                        goto fail;
        if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
                for (int fd = 3; fd < 65536; fd++) /* kernels before 5.9 */
                        (void) close(fd);
        if (nofile_raised)
                (void) setrlimit(RLIMIT_NOFILE, &nofile_saved);

        /* The job's user before the cwd and the program: it enters and runs only what it may. */
        if (r->set_user) {
                int k;

                *stage = SPAWN_STAGE_USER;
                k = child_set_user(r, check_groups);
                if (k < 0) {
                        errno = -k;
                        goto fail;
                }
                *stage = SPAWN_STAGE_SETUP;
        }
        /* A job never outlives a daemon killed outright: the kernel kills it along. Set after the
         * credentials change, which clears it; the parent may have died before this took effect, hence
         * the check. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != r->parent_pid)
                goto fail;

        if (r->cwd) {
                *stage = SPAWN_STAGE_CHDIR;
                if (chdir(r->cwd) < 0)
                        goto fail;
        }

        *stage = SPAWN_STAGE_EXEC;
        if (!candidates) {
                execve(r->program, r->argv, r->envp);
                goto fail;
        }

        /* As execvp: a missing file tries the next directory, a denied one is remembered. Unlike
         * execvp, ENOEXEC is final: a file without an interpreter line is not run with /bin/sh. */
        bool denied = false;
        for (char *const *c = candidates; *c; c++) {
                execve(*c, r->argv, r->envp);
                if (errno == EACCES)
                        denied = true;
                else if (errno != ENOENT && errno != ENOTDIR && errno != ENAMETOOLONG && errno != ELOOP)
                        goto fail;
        }
        errno = denied ? EACCES : ENOENT;
fail:
        *err = errno;
        _exit(127);
}

/* vfork() lives in a function of its own with nothing on its frame that the child could clobber. */
static __attribute__((noinline)) pid_t vfork_child(const SpawnRequest *r, char *const *candidates,
                                                   gid_t *check_groups, volatile int *err,
                                                   volatile SpawnStage *stage) {
        pid_t pid = vfork();
        if (pid == 0)
                child_run(r, candidates, check_groups, err, stage);
        return pid;
}

int spawn_process(const SpawnRequest *r, pid_t *ret_pid, int *ret_pidfd, SpawnStage *ret_stage) {
        _cleanup_strv_free_ char **candidates = NULL;
        _cleanup_free_ gid_t *check_groups = NULL;
        volatile int err = 0;
        volatile SpawnStage stage = SPAWN_STAGE_NONE;
        SpawnRequest req = *r;
        pid_t pid;
        int pidfd;

        req.parent_pid = getpid();
        ignored_signals(&req.ignored);
        r = &req;

        if (!strchr(r->program, '/')) {
                candidates = path_candidates(r->program, r->path_env);
                if (!candidates)
                        return -ENOMEM;
        }

        /* Where the child reads its groups back: it must not allocate. */
        if (r->set_user) {
                check_groups = calloc(r->n_groups + 1, sizeof(gid_t));
                if (!check_groups)
                        return -ENOMEM;
        }

        /* vfork(): the parent waits until the child has exec'd or failed, and no page tables are
         * copied, so a daemon holding many jobs spawns as fast as a small one. */
        pid = vfork_child(r, candidates, check_groups, &err, &stage);
        if (pid < 0) {
                if (ret_stage)
                        *ret_stage = SPAWN_STAGE_NONE;
                return -errno;
        }

        if (err != 0) {
                (void) waitpid(pid, NULL, 0);
                if (ret_stage)
                        *ret_stage = stage;
                return -err;
        }

        if (!ret_pidfd) {
                *ret_pid = pid;
                return 0;
        }

        /* The child is ours and not yet reaped, so its pid cannot have been reused. */
        pidfd = pidfd_open_fd(pid);
        if (pidfd < 0) {
                int e = errno;
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                if (ret_stage)
                        *ret_stage = SPAWN_STAGE_NONE;
                return -e;
        }

        *ret_pid = pid;
        *ret_pidfd = pidfd;
        return 0;
}
