/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The environment and the streams of a job run as a child process: shared by the local and the Slurm
 * executors. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "job-io.h"
#include "macro.h"

extern char **environ;

/* Variables that belong to the daemon's own service manager and must never reach a job. */
static bool env_is_private(const char *e, const char *const *drop_prefixes) {
        static const char *const names[] = { "NOTIFY_SOCKET=", "LISTEN_FDS=", "LISTEN_PID=",
                                             "LISTEN_FDNAMES=", "WATCHDOG_" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strncmp(e, names[i], strlen(names[i])) == 0)
                        return true;
        for (const char *const *p = drop_prefixes; p && *p; p++)
                if (strncmp(e, *p, strlen(*p)) == 0)
                        return true;
        return false;
}

char **job_io_base_environment_new(const char *const *drop_prefixes) {
        size_t n = 0, k = 0;
        char **l;

        for (char **e = environ; e && *e; e++)
                n++;
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return NULL;
        for (char **e = environ; e && *e; e++) {
                if (env_is_private(*e, drop_prefixes) || !strchr(*e, '='))
                        continue;
                l[k] = strdup(*e);
                if (!l[k]) {
                        strv_free(l);
                        return NULL;
                }
                k++;
        }
        return l;
}

const char *job_io_env_lookup(char *const *env, const char *name) {
        size_t len = strlen(name);
        for (char *const *e = env; e && *e; e++)
                if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
                        return *e + len + 1;
        return NULL;
}

char **job_io_build_env(char *const *base_environment, const JobSpec *spec) {
        char *const *base = spec->clear_environment ? NULL : base_environment;
        size_t nb = 0, no = 0, n = 0;
        char **env;

        for (char *const *e = base; e && *e; e++)
                nb++;
        for (char **e = spec->environment; e && *e; e++)
                no++;
        env = calloc(nb + no + 1, sizeof(char *));
        if (!env)
                return NULL;
        for (size_t i = 0; i < nb; i++) {
                const char *eq = strchr(base[i], '=');
                size_t len = eq ? (size_t) (eq - base[i] + 1) : strlen(base[i]);
                bool overridden = false;
                for (size_t k = 0; k < no; k++)
                        if (strncmp(spec->environment[k], base[i], len) == 0) {
                                overridden = true;
                                break;
                        }
                if (!overridden)
                        env[n++] = base[i];
        }
        for (size_t k = 0; k < no; k++)
                env[n++] = spec->environment[k];
        return env;
}

int job_io_open_pipe(int ret_fds[2], bool parent_reads) {
        if (pipe2(ret_fds, O_CLOEXEC) < 0)
                return -errno;
        /* Only the daemon's end is non-blocking: the child gets an ordinary pipe. */
        if (fcntl(ret_fds[parent_reads ? 0 : 1], F_SETFL, O_NONBLOCK) < 0) {
                int e = errno;
                closep(&ret_fds[0]);
                closep(&ret_fds[1]);
                return -e;
        }
        return 0;
}

bool job_io_read(int fd, bool *pipe_grown, JobStream s, JobIoSink sink, void *userdata) {
        static char buffer[JOB_IO_READ_CHUNK];

        for (int n = 0; n < JOB_IO_READS_PER_WAKEUP; n++) {
                ssize_t k = read(fd, buffer, sizeof(buffer));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN;
                }
                if (k == 0)
                        return false;
                /* A full pipe means a stream in bulk: a larger pipe takes it in fewer wakeups. */
                if ((size_t) k >= JOB_IO_READ_CHUNK && !*pipe_grown) {
                        (void) fcntl(fd, F_SETPIPE_SZ, JOB_IO_BULK_PIPE_SIZE); /* best effort */
                        *pipe_grown = true;
                }
                sink(userdata, s, buffer, (size_t) k);
        }
        return true;
}

bool job_io_write_input(int fd, const JobSpec *spec, size_t *written) {
        while (*written < spec->input_size) {
                ssize_t k = write(fd, (const char *) spec->input + *written, spec->input_size - *written);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        /* EPIPE: the child closed its stdin; what it did not read is dropped */
                        return errno == EAGAIN;
                }
                *written += (size_t) k;
        }
        return false;
}
