/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the private socket. Each input is what one peer writes on a direct connection to a
 * real daemon (a Manager with no bus, BUS_NONE, made afresh for each input in this process), and the
 * daemon must come out of it whole: it closes the connection once the peer is done, answers a
 * well-formed peer after, holds no Client, no connection and no fd more than before, leaks nothing, and
 * leaves no file once freed. A daemon per input, not one for the run: its job ids start at 1, so that an
 * input can name its jobs (/org/procpool/Supervisor1/job/1) and does the same when replayed alone, and
 * nothing an input leaves (jobs, pools, a paused or resized pool) is the next one's start. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <systemd/sd-id128.h>

#include "log.h"
#include "manager.h"
#include "private.h"
#include "spawn.h"

/* The input:
 *   flags(1):  bit 0 AUTH: a valid SASL EXTERNAL handshake goes first ("\0AUTH EXTERNAL <hex uid>",
 *                     with bit 1 FDS also NEGOTIATE_UNIX_FD, then "BEGIN"), so that the fuzzed bytes
 *                     are the messages; without it they are the authentication too
 *              bit 2 SPLIT: split(2) follows; the stream is written in two parts at split % (length + 1),
 *                     with the daemon done with the first before the second comes (at 0, the peer waits
 *                     for the answer to its handshake, as clients do; without SPLIT it does not)
 *              bit 3 CLOSE: the peer closes its end at the end instead of shutdown(SHUT_WR), and reads
 *                     nothing more
 *              bit 4 NOREAD: the peer reads nothing until it has written everything
 *              bit 5 NOBODY: the peer is uid 65534, not the daemon's (only when the fuzzer runs as root)
 *              bit 6 CROWD: crowd(1) follows: (crowd & 7) idle peers connect first, the i-th of them as
 *                     uid 65534 if bit (3 + i) is set, so that the caps (FUZZ_CAP_*) refuse some
 *              bit 7 EXTRA: extra(1) follows:
 *                     bit 0 WATCHER: a well-formed peer has called Subscribe() and hears the signals
 *                            of what the fuzzed peer does, until it is done
 *                     bit 1 FDJOB: with AUTH, once the daemon answered the handshake, the peer first
 *                            submits a job of its own holding two fds it passes (/dev/null and a memfd)
 *                            as stdin and stdout: job 1, which the stream may act on
 *   [split(2)] [crowd(1)] [extra(1)] then the stream: every byte left.
 * The stream itself never carries fds: libsystemd leaks those of a message it drops as malformed
 * (bus_socket_make_message(), in 252 and in its source as of this writing; see docs/reliability.md),
 * which is not the daemon's to find here.
 * Seeds: tests/fuzz/corpus-private/, written by tests/fuzz/make-private-seeds. */
enum {
        FLAG_AUTH = 1 << 0,
        FLAG_FDS = 1 << 1,
        FLAG_SPLIT = 1 << 2,
        FLAG_CLOSE = 1 << 3,
        FLAG_NOREAD = 1 << 4,
        FLAG_NOBODY = 1 << 5,
        FLAG_CROWD = 1 << 6,
        FLAG_EXTRA = 1 << 7,
};

enum {
        EXTRA_WATCHER = 1 << 0,
        EXTRA_FDJOB = 1 << 1,
};

/* Small caps, so that an input reaches them with a few connections: the code is the same at 32 and 256. */
#define FUZZ_CAP_PER_USER 3U
#define FUZZ_CAP_TOTAL 5U
#define FUZZ_NOBODY ((uid_t) 65534)
/* How long the daemon may take to close a connection whose peer has finished, or to answer a well-formed
 * call, before the fuzzer calls it stuck: none of it waits for time, only for loop iterations. */
#define FUZZ_STUCK_USEC (5ULL * 1000000ULL)

static char *dir;         /* ours: the private socket and the ephemeral state dir below it */
static char *socket_path; /* dir/private */
static bool nobody_ok;    /* peers of uid 65534 can be made: the fuzzer runs as root, they reach the socket */
static uint8_t *fd_job;   /* FDJOB's Submit, as sd-bus writes it (serial 1, UNIX_FDS 2) */
static size_t fd_job_size;
static Manager *m;

/* No input may run a program. Jobs queue in a paused pool, but an input may resume it (Pool1.Resume,
 * PoolSize, CreatePool of a pool of its own, one of executor "slurm" whose srun is on this machine), so
 * the stop is below every executor: this binary's vfork() fails, and with it spawn_process(), the only
 * way the daemon starts a process; the job ends failed as when the system is out of processes. execve()
 * fails too, should a process be made some other way. LLVMFuzzerInitialize() checks that both took. */
pid_t vfork(void) {
        errno = EPERM;
        return -1;
}

int execve(const char *path, char *const argv[], char *const envp[]) {
        errno = EACCES;
        return -1;
}

static void fail(const char *what) {
        fprintf(stderr, "fuzz-private: %s\n", what);
        abort();
}

/* Open fds. libFuzzer opens some between inputs (the symbolizer's pipes, once it names a new function), so
 * they are counted at the start of each input and compared at its end, when its daemon is gone. */
static unsigned count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        unsigned n = 0;

        if (!d)
                abort();
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' && atoi(de->d_name) != dirfd(d))
                        n++;
        closedir(d);
        return n;
}

/* What is open, for the report of a leak. */
static void print_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                char path[64], target[256];
                ssize_t k;

                if (de->d_name[0] == '.')
                        continue;
                (void) snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
                k = readlink(path, target, sizeof(target) - 1);
                target[k > 0 ? k : 0] = '\0';
                fprintf(stderr, "fuzz-private: fd %s: %s\n", de->d_name, target);
        }
        closedir(d);
}

/* Whether the daemon left anything in dir: its socket and its ephemeral state dir go when it is freed. */
static bool dir_is_empty(void) {
        DIR *d = opendir(dir);
        struct dirent *de;
        bool empty = true;

        if (!d)
                abort();
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
                        fprintf(stderr, "fuzz-private: left in %s: %s\n", dir, de->d_name);
                        empty = false;
                }
        closedir(d);
        return empty;
}

static unsigned n_clients_seen; /* twalk() takes no userdata */

static void count_client_node(const void *node, VISIT which, int depth) {
        if (which == postorder || which == leaf)
                n_clients_seen++;
}

static unsigned count_clients(void) {
        n_clients_seen = 0;
        twalk(m->clients, count_client_node);
        return n_clients_seen;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* ---- driving the daemon ------------------------------------------------------------------------------- */

/* A raw peer of the daemon: its socket, and whether it has seen the daemon close. */
typedef struct Peer {
        int fd;
        bool eof;
} Peer;

static void peer_drain(Peer *p) {
        char buf[65536];

        while (p && p->fd >= 0 && !p->eof) {
                ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n > 0)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                p->eof = true; /* 0, or ECONNRESET: the daemon closed */
        }
}

/* One loop iteration of the daemon; true if it did something. */
static bool step(uint64_t timeout) {
        int r = sd_event_run(m->event, timeout);
        if (r < 0)
                fail("the event loop failed");
        return r > 0;
}

/* Runs the loop until it has nothing to do: what was written is processed, and what it wrote to p read. */
static void run_until_quiet(Peer *p) {
        for (unsigned i = 0;; i++) {
                bool busy = step(0);

                peer_drain(p);
                if (!busy)
                        return;
                if (i > 1000000)
                        fail("the daemon's loop never goes quiet");
        }
}

/* Runs the loop until done() holds and it is quiet; a daemon that takes longer than FUZZ_STUCK_USEC is
 * stuck, which is a bug. */
static void run_until(bool (*done)(void *userdata), void *userdata, Peer *p, const char *what) {
        uint64_t deadline = now_usec() + FUZZ_STUCK_USEC;

        for (;;) {
                run_until_quiet(p);
                if (done(userdata))
                        return;
                if (now_usec() > deadline) {
                        fprintf(stderr, "fuzz-private: %u direct connections open, peer %s\n",
                                private_socket_get_n_connections(m->private),
                                !p || p->fd < 0 ? "closed"
                                : p->eof        ? "saw the daemon close"
                                                : "open");
                        fail(what);
                }
                (void) step(1000);
                peer_drain(p);
        }
}

/* A peer's socket, connected as uid; a negative errno if it could not reach the socket. */
static int try_connect_as(uid_t uid) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        bool other = uid != geteuid();
        int fd, r;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                fail("socket() failed");
        strcpy(sa.sun_path, socket_path);
        /* SO_PEERCRED says the effective uid at connect(). */
        if (other && seteuid(uid) < 0)
                fail("seteuid() failed");
        r = connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ? -errno : 0;
        if (other && seteuid(0) < 0)
                fail("seteuid(0) failed");
        if (r < 0) {
                close(fd);
                return r;
        }
        return fd;
}

static int connect_as(uid_t uid) {
        int fd = try_connect_as(uid);
        if (fd < 0)
                /* The backlog is SOMAXCONN, and the daemon accepts everything within each input. */
                fail("connect() to the private socket failed");
        return fd;
}

/* Writes all of data, the daemon reading meanwhile (and the peer what it is sent, if reading). */
static void write_all(Peer *p, const uint8_t *data, size_t size, bool reading) {
        uint64_t deadline = now_usec() + FUZZ_STUCK_USEC;

        while (size > 0 && !p->eof) {
                ssize_t n;

                if (now_usec() > deadline)
                        fail("the daemon stopped reading a peer it keeps connected");
                n = send(p->fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n > 0) {
                        data += n;
                        size -= (size_t) n;
                        continue;
                }
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                        return; /* the daemon closed: what is left goes nowhere */
                if (!step(0))
                        (void) step(1000);
                if (reading)
                        peer_drain(p);
        }
}

static size_t handshake(uid_t uid, bool fds, char *buf, size_t size) {
        char digits[16];
        size_t n = 0;

        (void) snprintf(digits, sizeof(digits), "%u", (unsigned) uid);
        buf[n++] = '\0';
        n += (size_t) snprintf(buf + n, size - n, "AUTH EXTERNAL ");
        for (const char *d = digits; *d; d++)
                n += (size_t) snprintf(buf + n, size - n, "%02x", (unsigned char) *d);
        n += (size_t) snprintf(buf + n, size - n, "\r\n%sBEGIN\r\n", fds ? "NEGOTIATE_UNIX_FD\r\n" : "");
        return n;
}

/* FDJOB: the Submit, with two fresh fds that only the daemon holds once it is sent. */
static void send_fd_job(Peer *p) {
        char control[CMSG_SPACE(2 * sizeof(int))] = {};
        struct iovec iov = { .iov_base = fd_job, .iov_len = fd_job_size };
        struct msghdr mh = {
                .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control)
        };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        int fds[2] = { open("/dev/null", O_RDWR | O_CLOEXEC), memfd_create("procpool-fuzz", MFD_CLOEXEC) };

        if (fds[0] < 0 || fds[1] < 0)
                fail("the fds to pass could not be made");
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(fds));
        memcpy(CMSG_DATA(cm), fds, sizeof(fds));
        /* The socket is empty (the daemon read the handshake): the message fits whole, or the daemon has
         * closed. */
        (void) sendmsg(p->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(fds[0]);
        close(fds[1]);
}

/* ---- well-formed peers: the health check and the watcher --------------------------------------------- */

typedef struct Calls {
        unsigned sent, answered;
        bool failed;
} Calls;

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Calls *c = userdata;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                fprintf(stderr, "fuzz-private: a well-formed call was answered %s: %s\n",
                        sd_bus_message_get_error(reply)->name, sd_bus_message_get_error(reply)->message);
                c->failed = true;
        }
        c->answered++;
        return 0;
}

static bool calls_done(void *userdata) {
        Calls *c = userdata;
        return c->answered == c->sent;
}

static void call_async(sd_bus *bus, Calls *c, const char *path, const char *interface, const char *member,
                       const char *types, ...) {
        sd_bus_message *call = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &call, NULL, path, interface, member);
        if (r >= 0 && types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(call, types, ap);
                va_end(ap);
        }
        if (r >= 0)
                r = sd_bus_call_async(bus, NULL, call, on_reply, c, 0);
        sd_bus_message_unref(call);
        if (r < 0)
                fail("a well-formed call could not be sent");
        c->sent++;
}

/* A client of the daemon in this process, on its loop (the daemon's uid). */
static sd_bus *client_new(void) {
        sd_bus *bus = NULL;
        char *address = NULL;

        if (asprintf(&address, "unix:path=%s", socket_path) < 0)
                abort();
        if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, address) < 0 || sd_bus_start(bus) < 0 ||
            sd_bus_attach_event(bus, m->event, SD_EVENT_PRIORITY_NORMAL) < 0)
                fail("a well-formed peer could not connect");
        free(address);
        return bus;
}

static sd_bus *client_free(sd_bus *bus) {
        if (bus) {
                (void) sd_bus_detach_event(bus);
                sd_bus_close_unref(bus);
        }
        return NULL;
}

typedef struct Settled {
        Peer *peer;     /* closed, or seen the daemon close */
        unsigned n_max; /* direct connections left at most */
} Settled;

static bool settled(void *userdata) {
        Settled *s = userdata;

        return private_socket_get_n_connections(m->private) <= s->n_max &&
               (!s->peer || s->peer->fd < 0 || s->peer->eof);
}

/* The daemon answers a well-formed peer: Ping, which sd-bus answers, and a property of the daemon's own,
 * which goes through its filter and vtable; it closes the connection once the peer has. */
static void check_health(void) {
        sd_bus *bus = client_new();
        Calls c = {};

        call_async(bus, &c, "/", "org.freedesktop.DBus.Peer", "Ping", NULL);
        call_async(bus, &c, "/org/procpool/Supervisor1", "org.freedesktop.DBus.Properties", "Get", "ss",
                   "org.procpool.Supervisor1", "Version");
        run_until(calls_done, &c, NULL, "the daemon did not answer a well-formed peer");
        if (c.failed)
                fail("the daemon answered a well-formed peer with an error");
        client_free(bus);
        run_until(settled, &(Settled) {}, NULL, "the daemon kept the health check's connection");
}

/* ---- the daemon --------------------------------------------------------------------------------------- */

static void manager_start(void) {
        ManagerConfig cfg = {
                .bus_kind = BUS_NONE,
                .registry = {
                        .retain = REGISTRY_RETAIN_DEFAULT,
                        .retain_usec = REGISTRY_RETAIN_USEC_DEFAULT,
                        .max_held_bytes = manager_held_max(BUS_NONE),
                        .max_held_bytes_per_user = REGISTRY_HELD_PER_USER(manager_held_max(BUS_NONE)),
                },
                .pool = {
                        .max_queued = POOL_MAX_QUEUED_DEFAULT,
                        .output_limit = JOB_OUTPUT_LIMIT_DEFAULT,
                        .max_fds = 128,
                        .per_user = {
                                .max_queued = POOL_MAX_QUEUED_PER_USER_DEFAULT,
                                .max_output = POOL_MAX_OUTPUT_PER_USER_DEFAULT,
                                .max_fds = 64,
                        },
                },
                .ephemeral = true,
                .private_socket = socket_path,
                .private_max_connections = FUZZ_CAP_TOTAL,
                .private_max_connections_per_user = FUZZ_CAP_PER_USER,
                /* With no bus, signals go to the subscribed direct connections only. */
                .bus_signals = BUS_SIGNALS_SUBSCRIBED,
                .deserialize_fd = -EBADF,
        };
        sigset_t mask, old;

        /* sd-event takes SIGTERM and SIGINT only while they are blocked; they are unblocked again at once,
         * so that libFuzzer's own handlers get them and the daemon never starts a shutdown. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        (void) sigprocmask(SIG_BLOCK, &mask, &old);
        if (manager_new(&cfg, &m) < 0)
                fail("manager_new() failed");
        (void) sigprocmask(SIG_SETMASK, &old, NULL);
        if (manager_startup(m) < 0)
                fail("manager_startup() failed");
        /* Jobs stay queued: what an input submits is cancelled with the daemon when it is freed. */
        pool_set_paused(m->pool, true);
        /* Peers of uid 65534 may connect too. */
        if (chmod(socket_path, 0666) < 0)
                fail("chmod() of the private socket failed");
}

/* FDJOB's message, marshalled by sd-bus: written on a server connection whose peer is a raw socket here. */
static void make_fd_job(void) {
        sd_bus_message *call = NULL;
        sd_bus *bus = NULL;
        char auth[128], buf[4096];
        size_t n = 0, n_auth = handshake(geteuid(), true, auth, sizeof(auth));
        int sv[2], fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        sd_id128_t id;
        const char *end;

        if (fd < 0 || sd_id128_randomize(&id) < 0 ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
            write(sv[1], auth, n_auth) != (ssize_t) n_auth)
                fail("FDJOB's message could not be made");
        if (sd_bus_new(&bus) < 0 || sd_bus_set_fd(bus, sv[0], sv[0]) < 0 ||
            sd_bus_set_server(bus, 1, id) < 0 || sd_bus_negotiate_fds(bus, 1) < 0 || sd_bus_start(bus) < 0)
                fail("FDJOB's message could not be made");
        for (int i = 0; i < 100 && sd_bus_is_ready(bus) <= 0; i++)
                if (sd_bus_process(bus, NULL) < 0)
                        fail("FDJOB's message could not be made");
        if (sd_bus_message_new_method_call(bus, &call, NULL, "/org/procpool/Supervisor1",
                                           "org.procpool.Supervisor1", "Submit") < 0 ||
            sd_bus_message_append(call, "as", 1, "cat") < 0 ||
            sd_bus_message_append(call, "a{sv}", 2, "stdin", "h", fd, "stdout", "h", fd) < 0 ||
            sd_bus_send(bus, call, NULL) < 0 || sd_bus_flush(bus) < 0)
                fail("FDJOB's message could not be made");
        sd_bus_message_unref(call);
        close(fd);
        /* What the socket holds: the answers to the handshake, then the message (its fds are closed with the
         * socket). */
        for (ssize_t k; n < sizeof(buf) && (k = recv(sv[1], buf + n, sizeof(buf) - n, MSG_DONTWAIT)) > 0;)
                n += (size_t) k;
        end = memmem(buf, n, "AGREE_UNIX_FD\r\n", strlen("AGREE_UNIX_FD\r\n"));
        if (!end)
                fail("FDJOB's message could not be made");
        end += strlen("AGREE_UNIX_FD\r\n");
        fd_job_size = n - (size_t) (end - buf);
        fd_job = malloc(fd_job_size);
        if (fd_job_size < 16 || !fd_job)
                fail("FDJOB's message could not be made");
        memcpy(fd_job, end, fd_job_size);
        sd_bus_close_unref(bus);
        close(sv[1]);
}

/* At the end of a run; after a crash the dir stays, with what the input left (tests/fuzz/run puts it in its
 * own TMPDIR). */
static void remove_dir(void) {
        if (dir)
                (void) rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
        const char *level = getenv("PROCPOOL_FUZZ_LOG"), *tmp = getenv("TMPDIR");
        char *const nothing[] = { (char *) "x", NULL };
        SpawnRequest req = {
                .program = "/nonexistent/procpool-fuzz",
                .argv = nothing,
                .envp = nothing + 1,
                .fds = { 0, 1, 2 },
                .cgroup_procs_fd = -EBADF,
        };
        sigset_t mask;
        pid_t pid;

        /* The guard against running programs (above) is what this binary links: the real ones would fail
         * with ENOENT here, at the exec. */
        if (execve(req.program, nothing, nothing + 1) >= 0 || errno != EACCES)
                fail("execve() is not the fuzzer's own");
        if (spawn_process(&req, &pid, NULL, NULL) != -EPERM)
                fail("spawn_process() still forks");

        log_setup("procpoold-fuzz");
        /* Every input would log its connections' warnings: PROCPOOL_FUZZ_LOG=debug shows them all. */
        log_set_max_level(level && strcmp(level, "debug") == 0 ? LOG_DEBUG : LOG_ERR);
        /* As main() does: sd-event watches children through SIGCHLD, and a closed peer's EPIPE is no
         * signal. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) signal(SIGPIPE, SIG_IGN);
        /* Not the service manager's daemon, whatever the environment says. */
        (void) unsetenv("NOTIFY_SOCKET");
        (void) unsetenv("INVOCATION_ID");
        (void) unsetenv("JOURNAL_STREAM");
        (void) unsetenv("WATCHDOG_USEC");

        if (asprintf(&dir, "%s/procpool-fuzz-private-XXXXXX", tmp && tmp[0] == '/' ? tmp : "/tmp") < 0 ||
            !mkdtemp(dir))
                fail("mkdtemp() failed");
        (void) atexit(remove_dir);
        /* Peers of uid 65534 reach the socket; the ephemeral state dir goes below it too. */
        if (chmod(dir, 0711) < 0 || setenv("RUNTIME_DIRECTORY", dir, 1) < 0 ||
            asprintf(&socket_path, "%s/private", dir) < 0)
                fail("setting up the fuzzer's dir failed");
        make_fd_job();

        /* One daemon first, so that whatever libraries open once is open before the first input counts. */
        manager_start();
        if (geteuid() == 0) {
                Peer probe = { .fd = try_connect_as(FUZZ_NOBODY) };

                nobody_ok = probe.fd >= 0;
                if (!nobody_ok)
                        fprintf(stderr, "fuzz-private: uid %u cannot reach %s; every peer is uid %u\n",
                                (unsigned) FUZZ_NOBODY, socket_path, (unsigned) geteuid());
                else {
                        (void) shutdown(probe.fd, SHUT_WR);
                        run_until(settled, &(Settled) { .peer = &probe }, &probe,
                                  "the probe stays connected");
                        close(probe.fd);
                }
        }
        check_health();
        m = manager_free(m);
        if (!dir_is_empty())
                fail("the daemon left files behind");
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t flags = size > 0 ? data[0] : 0, crowd = 0, extra = 0;
        size_t at = size > 0 ? 1 : 0, split = 0, n_prefix = 0;
        Peer peer = { .fd = -EBADF }, crowds[7];
        bool reading = !(flags & FLAG_NOREAD);
        unsigned n_crowd, n_fds = count_fds();
        uid_t uid = geteuid();
        sd_bus *watcher = NULL;
        char prefix[128];

        if (flags & FLAG_SPLIT)
                for (int i = 0; i < 2; i++)
                        split = (split << 8) | (at < size ? data[at++] : 0);
        if (flags & FLAG_CROWD)
                crowd = at < size ? data[at++] : 0;
        if (flags & FLAG_EXTRA)
                extra = at < size ? data[at++] : 0;
        data += at;
        size -= at;
        if ((flags & FLAG_NOBODY) && nobody_ok)
                uid = FUZZ_NOBODY;
        if (flags & FLAG_AUTH)
                n_prefix =
                        handshake(uid, (flags & FLAG_FDS) || (extra & EXTRA_FDJOB), prefix, sizeof(prefix));

        manager_start();

        if (extra & EXTRA_WATCHER) {
                Calls c = {};

                watcher = client_new();
                call_async(watcher, &c, "/org/procpool/Supervisor1", "org.procpool.Supervisor1", "Subscribe",
                           NULL);
                run_until(calls_done, &c, NULL, "the daemon did not answer the watcher's Subscribe()");
                if (c.failed)
                        fail("the watcher could not subscribe");
        }
        /* The crowd is in when the peer comes: accepted, and authenticating. */
        n_crowd = crowd & 7;
        for (unsigned i = 0; i < n_crowd; i++)
                crowds[i] = (Peer) { .fd = connect_as((crowd >> (3 + i)) & 1 && nobody_ok ? FUZZ_NOBODY
                                                                                          : geteuid()) };
        if (n_crowd > 0)
                run_until_quiet(NULL);

        peer.fd = connect_as(uid);
        write_all(&peer, (const uint8_t *) prefix, n_prefix, reading);
        if ((extra & EXTRA_FDJOB) && n_prefix > 0) {
                /* Fds go once the daemon has agreed to them, as clients do. */
                run_until_quiet(reading ? &peer : NULL);
                if (!peer.eof)
                        send_fd_job(&peer);
        }
        if (flags & FLAG_SPLIT) {
                split %= size + 1;
                write_all(&peer, data, split, reading);
                run_until_quiet(reading ? &peer : NULL);
                data += split;
                size -= split;
        }
        write_all(&peer, data, size, reading);

        if (flags & FLAG_CLOSE) {
                close(peer.fd);
                peer.fd = -EBADF;
        } else
                (void) shutdown(peer.fd, SHUT_WR);
        for (unsigned i = 0; i < n_crowd; i++)
                close(crowds[i].fd);

        /* Whatever the daemon made of it, it closes a connection whose peer has finished; the watcher hears
         * what came of it until then. */
        run_until(settled, &(Settled) { .peer = &peer, .n_max = watcher ? 1 : 0 }, &peer,
                  "a direct connection stays open after its peer finished");
        watcher = client_free(watcher);
        run_until(settled, &(Settled) {}, &peer, "the watcher's connection stays open after it closed");
        if (peer.fd >= 0)
                close(peer.fd);
        if (count_clients() != 0)
                fail("a closed direct connection's Client is still there");

        check_health();
        log_debug("the input left %zu jobs, %u queued", registry_get_n_jobs(m->registry), manager_queued(m));
        m = manager_free(m);
        if (count_fds() != n_fds) {
                print_fds();
                fail("fds leaked");
        }
        if (!dir_is_empty())
                fail("the daemon left files behind");
        return 0;
}
