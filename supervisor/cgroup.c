/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Per-job cgroups under the daemon's delegated cgroup v2 subtree: whole-tree kill and accounting. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cgroup.h"
#include "macro.h"

static void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Where the v2 hierarchy is mounted: /sys/fs/cgroup on unified systems, .../unified on hybrid ones. */
static int cgroup2_mount(char **ret) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        _cleanup_free_ char *line = NULL;
        size_t n = 0;

        if (!f)
                return -errno;
        while (getline(&line, &n, f) > 0) {
                /* ... mount-point ... - fstype source options */
                char mnt[4096], fstype[64];
                const char *sep = strstr(line, " - ");
                if (!sep || sscanf(sep, " - %63s", fstype) != 1 || strcmp(fstype, "cgroup2") != 0)
                        continue;
                if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
                        continue;
                *ret = strdup(mnt);
                return *ret ? 0 : -ENOMEM;
        }
        return -ENOENT;
}

int cgroup_pid_path(pid_t pid, char **ret) {
        _cleanup_free_ char *line = NULL, *mnt = NULL, *file = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t n = 0;
        int r;

        if (pid == 0)
                file = strdup("/proc/self/cgroup");
        else if (asprintf(&file, "/proc/%d/cgroup", (int) pid) < 0)
                file = NULL;
        if (!file)
                return -ENOMEM;
        f = fopen(file, "re");
        if (!f)
                return -errno;
        while (getline(&line, &n, f) > 0) {
                if (strncmp(line, "0::", 3) != 0)
                        continue;
                line[strcspn(line, "\n")] = '\0';
                r = cgroup2_mount(&mnt);
                if (r < 0)
                        return r;
                if (asprintf(ret, "%s%s", mnt, strcmp(line + 3, "/") == 0 ? "" : line + 3) < 0)
                        return -ENOMEM;
                return 0;
        }
        return -ENOENT;
}

int cgroup_own_path(char **ret) {
        return cgroup_pid_path(0, ret);
}

bool cgroup_marked_delegated(const char *path) {
        static const char *const names[] = { "trusted.delegate", "user.delegate" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                char v[8] = {};
                if (getxattr(path, names[i], v, sizeof(v) - 1) > 0 && v[0] == '1')
                        return true;
        }
        return false;
}

static int write_file(const char *dir, const char *file, const char *value) {
        _cleanup_free_ char *p = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t len = strlen(value);

        if (asprintf(&p, "%s/%s", dir, file) < 0)
                return -ENOMEM;
        fd = open(p, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, value, len) != (ssize_t) len)
                return -errno;
        return 0;
}

static int read_file(const char *dir, const char *file, char *buf, size_t size) {
        _cleanup_free_ char *p = NULL;
        _cleanup_close_ int fd = -EBADF;
        ssize_t k;

        if (asprintf(&p, "%s/%s", dir, file) < 0)
                return -ENOMEM;
        fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        k = read(fd, buf, size - 1);
        if (k < 0)
                return -errno;
        buf[k] = '\0';
        return 0;
}

int cgroup_root_setup(const char *path, CgroupRoot **ret) {
        _cleanup_free_ char *sup = NULL, *kill_path = NULL;
        char controllers[512];
        CgroupRoot *root;
        int r;

        if (asprintf(&sup, "%s/supervisor", path) < 0)
                return -ENOMEM;
        if (mkdir(sup, 0755) < 0 && errno != EEXIST)
                return -errno;
        /* Processes may only live in leaves once controllers are enabled: the daemon moves aside. */
        r = write_file(sup, "cgroup.procs", "0");
        if (r < 0)
                return r;

        root = calloc(1, sizeof(CgroupRoot));
        if (!root)
                return -ENOMEM;
        root->path = strdup(path);
        if (!root->path) {
                free(root);
                return -ENOMEM;
        }
        if (asprintf(&kill_path, "%s/cgroup.kill", path) >= 0)
                root->has_kill = access(kill_path, F_OK) == 0;
        if (read_file(path, "cgroup.controllers", controllers, sizeof(controllers)) >= 0) {
                if (strstr(controllers, "memory") &&
                    write_file(path, "cgroup.subtree_control", "+memory") >= 0)
                        root->has_memory = true;
                if (strstr(controllers, "cpu"))
                        (void) write_file(path, "cgroup.subtree_control", "+cpu"); /* optional, ignoring */
        }
        *ret = root;
        return 0;
}

CgroupRoot *cgroup_root_free(CgroupRoot *root) {
        if (!root)
                return NULL;
        free(root->path);
        free(root);
        return NULL;
}

int cgroup_job_create(CgroupRoot *root, uint64_t id, uint64_t memory_max, char **ret_path,
                      int *ret_procs_fd) {
        _cleanup_free_ char *p = NULL, *procs = NULL;
        int fd, r;

        if (asprintf(&p, "%s/job-%" PRIu64, root->path, id) < 0)
                return -ENOMEM;
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                return -errno;
        if (memory_max > 0) {
                char v[32];
                snprintf(v, sizeof(v), "%" PRIu64, memory_max);
                r = write_file(p, "memory.max", v);
                if (r < 0) {
                        (void) rmdir(p);
                        return r;
                }
        }
        if (asprintf(&procs, "%s/cgroup.procs", p) < 0)
                return -ENOMEM;
        fd = open(procs, O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                (void) rmdir(p);
                return r;
        }
        *ret_path = TAKE_PTR(p);
        *ret_procs_fd = fd;
        return 0;
}

int cgroup_signal(const char *path, int sig, bool has_kill) {
        _cleanup_free_ char *procs = NULL, *line = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t n = 0;

        if (sig == SIGKILL && has_kill)
                return write_file(path, "cgroup.kill", "1");
        if (asprintf(&procs, "%s/cgroup.procs", path) < 0)
                return -ENOMEM;
        f = fopen(procs, "re");
        if (!f)
                return -errno;
        while (getline(&line, &n, f) > 0) {
                pid_t pid = (pid_t) strtol(line, NULL, 10);
                if (pid > 0)
                        (void) kill(pid, sig); /* it may have exited meanwhile, ignoring */
        }
        return 0;
}

int cgroup_freeze(const char *path, bool freeze) {
        return write_file(path, "cgroup.freeze", freeze ? "1" : "0");
}

int cgroup_is_populated(const char *path) {
        char buf[256];
        const char *p;
        int r;

        r = read_file(path, "cgroup.events", buf, sizeof(buf));
        if (r < 0)
                return r;
        p = strstr(buf, "populated ");
        if (!p)
                return -EINVAL;
        return p[strlen("populated ")] == '1';
}

static int read_keyed(const char *path, const char *file, const char *key, uint64_t *ret) {
        char buf[4096];
        size_t klen = strlen(key);
        int r;

        r = read_file(path, file, buf, sizeof(buf));
        if (r < 0)
                return r;
        for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                if (strncmp(l, key, klen) == 0 && l[klen] == ' ') {
                        *ret = strtoull(l + klen + 1, NULL, 10);
                        return 0;
                }
        return -ENOENT;
}

int cgroup_read_cpu_usage(const char *path, uint64_t *ret_usec) {
        return read_keyed(path, "cpu.stat", "usage_usec", ret_usec);
}

int cgroup_read_memory_peak(const char *path, uint64_t *ret_bytes) {
        char buf[64];
        int r;

        r = read_file(path, "memory.peak", buf, sizeof(buf));
        if (r < 0)
                return r;
        *ret_bytes = strtoull(buf, NULL, 10);
        return 0;
}

int cgroup_remove(const char *path) {
        return rmdir(path) < 0 ? -errno : 0;
}
