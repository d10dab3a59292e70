/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Hostile and slow peers of the private socket: the caps on connections per uid and in all, a peer that
 * never reads, one that never authenticates, one that sends garbage before or after authenticating, one
 * that authenticates and leaves in one go, and a crowd of silent ones against the fd limit. The daemon
 * goes on serving everyone else. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

static char *runtime_dir;
static char *socket_path;
static char *socket_address;

static void setup_with(Fixture *f, const char *const *more) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);

        runtime_dir = g_dir_make_tmp("procpool-fault-direct-XXXXXX", &error);
        g_assert_no_error(error);
        g_assert_cmpint(chmod(runtime_dir, 0755), ==, 0);
        socket_path = g_build_filename(runtime_dir, "private", NULL);
        socket_address = g_strdup_printf("unix:path=%s", socket_path);
        fixture_setup_no_daemon(f, NULL);
        g_ptr_array_add(args, g_strdup_printf("--private-socket=%s", socket_path));
        for (const char *const *a = more; a && *a; a++)
                g_ptr_array_add(args, g_strdup(*a));
        g_ptr_array_add(args, NULL);
        f->daemon_pid = fixture_start_daemon(f, (const char *const *) args->pdata);
}

static void setup(Fixture *f, gconstpointer data) {
        setup_with(f, data);
}

static void teardown(Fixture *f, gconstpointer unused) {
        fixture_teardown(f, NULL);
        fixture_remove_tree(runtime_dir);
        g_clear_pointer(&runtime_dir, g_free);
        g_clear_pointer(&socket_path, g_free);
        g_clear_pointer(&socket_address, g_free);
}

/* A connected socket to the private socket, made by uid (the test's own, or another through a child that
 * connects as it and hands the fd back: SO_PEERCRED is who called connect()). */
static int raw_connect_as(uid_t uid) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int pair[2], fd = -1, status;
        char byte;
        pid_t pid;

        g_strlcpy(sa.sun_path, socket_path, sizeof(sa.sun_path));
        if (uid == getuid()) {
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                g_assert_cmpint(fd, >=, 0);
                g_assert_cmpint(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), ==, 0);
                return fd;
        }
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), ==, 0);
        pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                /* Only system calls between fork() and _exit(). */
                char cbuf[CMSG_SPACE(sizeof(int))] = {};
                struct iovec iov = { .iov_base = (char *) "x", .iov_len = 1 };
                struct msghdr mh = {
                        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)
                };
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                int s;

                if (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
                        _exit(99);
                s = socket(AF_UNIX, SOCK_STREAM, 0);
                if (s < 0 || connect(s, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                        _exit(98);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &s, sizeof(int));
                _exit(sendmsg(pair[1], &mh, 0) == 1 ? 0 : 97);
        }
        close(pair[1]);
        {
                char cbuf[CMSG_SPACE(sizeof(int))] = {};
                struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
                struct msghdr mh = {
                        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)
                };
                g_assert_cmpint(recvmsg(pair[0], &mh, MSG_CMSG_CLOEXEC), ==, 1);
                memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
        }
        close(pair[0]);
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        return fd;
}

/* What a client says to authenticate as uid (EXTERNAL), up to and with its first line's end. */
static GString *auth_start(uid_t uid) {
        g_autofree char *digits = g_strdup_printf("%u", (unsigned) uid);
        GString *auth = g_string_new("");

        g_string_append_c(auth, '\0');
        g_string_append(auth, "AUTH EXTERNAL ");
        for (size_t i = 0; digits[i]; i++)
                g_string_append_printf(auth, "%02x", (unsigned char) digits[i]);
        g_string_append(auth, "\r\n");
        return auth;
}

/* Authenticates as uid (EXTERNAL); TRUE if the daemon said OK, FALSE if it closed the connection. */
static gboolean raw_auth(int fd, uid_t uid) {
        g_autoptr(GString) auth = auth_start(uid);
        char line[256];
        size_t n = 0;

        if (send(fd, auth->str, auth->len, MSG_NOSIGNAL) != (ssize_t) auth->len)
                return FALSE;
        while (n < sizeof(line) - 1) {
                ssize_t k = recv(fd, line + n, 1, 0);
                if (k <= 0)
                        return FALSE;
                if (line[n++] == '\n')
                        break;
        }
        line[n] = '\0';
        if (!g_str_has_prefix(line, "OK "))
                return FALSE;
        return send(fd, "BEGIN\r\n", 7, MSG_NOSIGNAL) == 7;
}

/* Writes message m (serial) on fd. */
static void raw_send(int fd, GDBusMessage *m, guint32 serial) {
        g_autoptr(GError) error = NULL;
        g_autofree guchar *blob = NULL;
        gsize size;

        g_dbus_message_set_serial(m, serial);
        blob = g_dbus_message_to_blob(m, &size, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
        g_assert_no_error(error);
        g_assert_cmpint(send(fd, blob, size, MSG_NOSIGNAL), ==, (gssize) size);
}

/* Pings over fd and reads the reply: the connection is served. */
static gboolean raw_ping(int fd) {
        g_autoptr(GDBusMessage) m =
                g_dbus_message_new_method_call(NULL, MANAGER_PATH, "org.freedesktop.DBus.Peer", "Ping");
        guchar header[16];
        ssize_t k;

        raw_send(fd, m, 1);
        k = recv(fd, header, sizeof(header), MSG_WAITALL);
        return k == (ssize_t) sizeof(header) && header[1] == G_DBUS_MESSAGE_TYPE_METHOD_RETURN;
}

/* Waits (at most the fixture's bound) until the daemon has closed its end of fd; TRUE if it did. */
static gboolean wait_closed(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLRDHUP };

        return poll(&p, 1, FIXTURE_WAIT_SEC * 1000) == 1 && (p.revents & (POLLRDHUP | POLLHUP));
}

/* Whether the daemon has closed fd already (no wait). */
static gboolean is_closed(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLRDHUP };

        return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP));
}

/* ---- caps ---------------------------------------------------------------------------------------- */

/* Two per uid, three in all: a third of root's is closed, one of another uid is taken, a second of it
 * is not (all are taken); once one closes, there is room again. */
static void test_caps(Fixture *f, gconstpointer unused) {
        int a1, a2, a3, b1, b2;

        if (!fixture_have_root())
                return;
        a1 = raw_connect_as(0);
        g_assert_true(raw_auth(a1, 0));
        g_assert_true(raw_ping(a1));
        a2 = raw_connect_as(0);
        g_assert_true(raw_auth(a2, 0));
        g_assert_true(raw_ping(a2));
        a3 = raw_connect_as(0);
        g_assert_false(raw_auth(a3, 0));
        close(a3);

        b1 = raw_connect_as(OTHER_UID);
        g_assert_true(raw_auth(b1, OTHER_UID));
        g_assert_true(raw_ping(b1));
        b2 = raw_connect_as(OTHER_UID);
        g_assert_false(raw_auth(b2, OTHER_UID));
        close(b2);

        /* The bus is served all along. */
        fixture_assert_answers(f);

        /* One closes: the daemon frees its place once it has seen it go, and the next peer gets it. */
        close(a1);
        for (int i = 0;; i++) {
                int fd = raw_connect_as(OTHER_UID);
                gboolean ok = raw_auth(fd, OTHER_UID) && raw_ping(fd);

                close(fd);
                if (ok)
                        break;
                g_assert_cmpint(i, <, 1000); /* each try is a round trip to the daemon */
        }
        close(a2);
        close(b1);
}

/* ---- fds from peers that are not trusted ----------------------------------------------------------- */

/* Authenticates as uid asking for fd passing; TRUE if the daemon agreed. The connection goes on either
 * way (BEGIN is sent). */
static gboolean raw_auth_fds(int fd, uid_t uid) {
        g_autoptr(GString) auth = auth_start(uid);
        char line[256];
        size_t n = 0;

        g_string_append(auth, "NEGOTIATE_UNIX_FD\r\n");
        g_assert_cmpint(send(fd, auth->str, auth->len, MSG_NOSIGNAL), ==, (gssize) auth->len);
        /* Two lines: OK, then AGREE_UNIX_FD or ERROR. */
        for (int lines = 0; lines < 2 && n < sizeof(line) - 1;) {
                ssize_t k = recv(fd, line + n, 1, 0);
                g_assert_cmpint(k, ==, 1);
                if (line[n++] == '\n')
                        lines++;
        }
        line[n] = '\0';
        g_assert_true(g_str_has_prefix(line, "OK "));
        g_assert_cmpint(send(fd, "BEGIN\r\n", 7, MSG_NOSIGNAL), ==, 7);
        return strstr(line, "\nAGREE_UNIX_FD\r\n") != NULL;
}

/* Sends a method call with a path and no member, which sd-bus drops as malformed, with n_fds copies of
 * /dev/null attached. */
static void raw_send_malformed_with_fds(int fd, int n_fds) {
        /* Header: little endian, method call, no flags, version 1, no body, serial 1; fields: PATH "/x",
         * UNIX_FDS n_fds. */
        uint8_t blob[40] = { 'l',
                             1,
                             0,
                             1,
                             0,
                             0,
                             0,
                             0,
                             1,
                             0,
                             0,
                             0,
                             24,
                             0,
                             0,
                             0,
                             1,
                             1,
                             'o',
                             0,
                             2,
                             0,
                             0,
                             0,
                             '/',
                             'x',
                             0,
                             0,
                             0,
                             0,
                             0,
                             0,
                             9,
                             1,
                             'u',
                             0,
                             (uint8_t) n_fds,
                             0,
                             0,
                             0 };
        int fds[64];
        char cbuf[CMSG_SPACE(sizeof(fds))];
        struct iovec iov = { .iov_base = blob, .iov_len = sizeof(blob) };
        struct msghdr mh = { .msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = cbuf,
                             .msg_controllen = CMSG_SPACE(n_fds * sizeof(int)) };
        struct cmsghdr *cm;

        g_assert_cmpint(n_fds, <=, (int) G_N_ELEMENTS(fds));
        memset(cbuf, 0, sizeof(cbuf));
        for (int i = 0; i < n_fds; i++)
                g_assert_cmpint(fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC), >=, 0);
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, n_fds * sizeof(int));
        /* The daemon may have closed the connection already: that is one of the right answers. */
        (void) sendmsg(fd, &mh, MSG_NOSIGNAL);
        for (int i = 0; i < n_fds; i++)
                close(fds[i]);
}

/* On the system instance a direct connection of a uid other than root passes no fds: sd-bus keeps the
 * fds of a message it drops as malformed open for good, so such a peer could fill the daemon's fd table.
 * Ten connections of another uid each send 50 fds with malformed messages: the daemon holds none of
 * them afterwards, and serves that uid and everyone else. Root's direct connections pass fds. */
static void test_untrusted_fds(Fixture *f, gconstpointer unused) {
        guint before;
        int fd;

        if (!fixture_have_root()) {
                g_test_skip("needs root, to connect as another uid");
                return;
        }
        fd = raw_connect_as(0);
        g_assert_true(raw_auth_fds(fd, 0));
        g_assert_true(raw_ping(fd));
        close(fd);

        before = fixture_proc_fd_count(f->daemon_pid);
        for (int i = 0; i < 10; i++) {
                fd = raw_connect_as(OTHER_UID);
                g_assert_false(raw_auth_fds(fd, OTHER_UID));
                raw_send_malformed_with_fds(fd, 50);
                g_assert_true(wait_closed(fd) || raw_ping(fd));
                close(fd);
        }
        /* As in fd-crowd: the daemon frees a closed connection one loop iteration after its peer sees it. */
        for (int i = 0; fixture_proc_fd_count(f->daemon_pid) > before; i++) {
                g_assert_cmpint(i, <, FIXTURE_WAIT_SEC * 1000);
                g_usleep(1000);
        }
        fd = raw_connect_as(OTHER_UID);
        g_assert_true(raw_auth(fd, OTHER_UID));
        g_assert_true(raw_ping(fd));
        close(fd);
        fixture_assert_answers(f);
}

/* ---- a peer that does not read ---------------------------------------------------------------------- */

/* A peer asks for replies of 8 MB each and never reads them: it is disconnected once what waits for it
 * passes the bound, and meanwhile and after everyone else is served. */
static void test_no_reader(Fixture *f, gconstpointer unused) {
        const char *const argv[] = { "head", "-c", "8000000", "/dev/zero", NULL };
        int fd = raw_connect_as(getuid());
        guint64 rss_before;

        g_assert_true(raw_auth(fd, getuid()));
        g_assert_true(raw_ping(fd));
        rss_before = fixture_proc_status_kib(f->daemon_pid, "VmRSS:");
        for (guint32 i = 0; i < 6; i++) {
                g_autoptr(GDBusMessage) m =
                        g_dbus_message_new_method_call(NULL, MANAGER_PATH, MANAGER_IFACE, "Communicate");
                g_dbus_message_set_body(
                        m, g_variant_new("(^as@ay@a{sv})", argv, fixture_bytes("", 0), FIXTURE_NO_OPTIONS));
                raw_send(fd, m, 10 + i);
        }
        g_assert_true(wait_closed(fd));
        close(fd);
        g_test_message("RSS %" G_GUINT64_FORMAT " KiB before, %" G_GUINT64_FORMAT " KiB after", rss_before,
                       fixture_proc_status_kib(f->daemon_pid, "VmRSS:"));
        fixture_assert_answers(f);
        {
                int other = raw_connect_as(getuid());
                g_assert_true(raw_auth(other, getuid()));
                g_assert_true(raw_ping(other));
                close(other);
        }
}

/* ---- peers that do not speak D-Bus ------------------------------------------------------------------ */

/* A peer that connects and says nothing is disconnected after the authentication timeout, with the
 * daemon serving others meanwhile. */
static void test_no_auth(Fixture *f, gconstpointer unused) {
        int fd = raw_connect_as(getuid());

        fixture_assert_answers(f);
        g_assert_false(is_closed(fd));
        g_assert_true(wait_closed(fd));
        close(fd);
        fixture_assert_answers(f);
}

/* Garbage instead of the authentication, and garbage after it: both disconnected. */
static void test_garbage(Fixture *f, gconstpointer unused) {
        static const char junk[] = "\0GARBAGE GARBAGE\r\nMORE\r\n\xff\xfe\r\n";
        guchar noise[256];
        int a, b;

        a = raw_connect_as(getuid());
        g_assert_cmpint(send(a, junk, sizeof(junk), MSG_NOSIGNAL), ==, sizeof(junk));
        g_assert_true(wait_closed(a));
        close(a);

        b = raw_connect_as(getuid());
        g_assert_true(raw_auth(b, getuid()));
        for (size_t i = 0; i < sizeof(noise); i++)
                noise[i] = (guchar) (i * 37 + 11);
        noise[0] = 'X'; /* no endianness D-Bus knows */
        g_assert_cmpint(send(b, noise, sizeof(noise), MSG_NOSIGNAL), ==, sizeof(noise));
        g_assert_true(wait_closed(b));
        close(b);
        fixture_assert_answers(f);
}

/* Silent peers by the dozen: past the per-uid cap they are closed at once, the others at the timeout,
 * and the daemon's fds come back to what they were. */
static void test_fd_crowd(Fixture *f, gconstpointer unused) {
        int fds[40];
        guint before = fixture_proc_fd_count(f->daemon_pid);

        for (size_t i = 0; i < G_N_ELEMENTS(fds); i++)
                fds[i] = raw_connect_as(getuid());
        fixture_assert_answers(f);
        for (size_t i = 0; i < G_N_ELEMENTS(fds); i++) {
                g_assert_true(wait_closed(fds[i]));
                close(fds[i]);
        }
        fixture_assert_answers(f);
        /* A peer sees its connection closed before the daemon has freed it (after that loop iteration), and
         * nothing signals the free: /proc is looked at again every millisecond, within the fixture's bound. */
        for (int i = 0; fixture_proc_fd_count(f->daemon_pid) > before; i++) {
                g_assert_cmpint(i, <, FIXTURE_WAIT_SEC * 1000);
                g_usleep(1000);
        }
}

/* A peer whose whole stream, its authentication and its end, waits in the socket when the daemon first
 * looks (here: the daemon is stopped meanwhile) is done with in one pass of the loop, and its place is
 * free at once: with one connection allowed in all, the next peer is served, though nothing else woke the
 * loop. (Found by tests/fuzz/fuzz-private.) */
static void test_auth_and_leave(Fixture *f, gconstpointer unused) {
        g_autofree char *digits = g_strdup_printf("%u", (unsigned) getuid());
        g_autoptr(GString) stream = g_string_new("");
        int a, b;

        g_string_append_c(stream, '\0');
        g_string_append(stream, "AUTH EXTERNAL ");
        for (size_t i = 0; digits[i]; i++)
                g_string_append_printf(stream, "%02x", (unsigned char) digits[i]);
        g_string_append(stream, "\r\nBEGIN\r\n");

        g_assert_cmpint(kill(f->daemon_pid, SIGSTOP), ==, 0);
        a = raw_connect_as(getuid());
        g_assert_cmpint(send(a, stream->str, stream->len, MSG_NOSIGNAL), ==, (gssize) stream->len);
        g_assert_cmpint(shutdown(a, SHUT_WR), ==, 0);
        g_assert_cmpint(kill(f->daemon_pid, SIGCONT), ==, 0);
        g_assert_true(wait_closed(a));
        close(a);

        b = raw_connect_as(getuid());
        g_assert_true(raw_auth(b, getuid()));
        g_assert_true(raw_ping(b));
        close(b);
}

/* The daemon's stderr, for the test that reads its log. */
static char *log_path;

static void setup_logged(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        int saved = dup(STDERR_FILENO), fd;

        fd = g_file_open_tmp("procpool-fault-direct-log-XXXXXX", &log_path, &error);
        g_assert_no_error(error);
        g_assert_cmpint(saved, >=, 0);
        g_assert_cmpint(dup2(fd, STDERR_FILENO), ==, STDERR_FILENO);
        setup_with(f, data);
        g_assert_cmpint(dup2(saved, STDERR_FILENO), ==, STDERR_FILENO);
        close(saved);
        close(fd);
}

static void teardown_logged(Fixture *f, gconstpointer data) {
        teardown(f, data);
        (void) unlink(log_path);
        g_clear_pointer(&log_path, g_free);
}

/* Peers that connect and close before the daemon accepts them (it is stopped meanwhile) are let go
 * quietly: any local user could otherwise fill the log with warnings. The daemon serves the next peer. */
static void test_leave_before_accept(Fixture *f, gconstpointer unused) {
        g_autofree char *log = NULL;
        int fd;

        g_assert_cmpint(kill(f->daemon_pid, SIGSTOP), ==, 0);
        for (int i = 0; i < 20; i++) {
                fd = raw_connect_as(getuid());
                /* A reset rather than an orderly end: data left unread makes close() send RST. */
                g_assert_cmpint(setsockopt(fd, SOL_SOCKET, SO_LINGER, &(struct linger) { 1, 0 },
                                           sizeof(struct linger)),
                                ==, 0);
                close(fd);
        }
        g_assert_cmpint(kill(f->daemon_pid, SIGCONT), ==, 0);
        fd = raw_connect_as(getuid());
        g_assert_true(raw_auth(fd, getuid()));
        g_assert_true(raw_ping(fd));
        close(fd);
        g_assert_true(g_file_get_contents(log_path, &log, NULL, NULL));
        g_assert_null(strstr(log, "direct connection"));
}

/* A fuzz case, in the daemon as it runs: streams that are a valid authentication and a few valid calls,
 * with a few bytes changed at random (the seed is printed, and PROCPOOL_FUZZ_SEED replays one), sent on
 * many connections at once and then closed for writing. Whatever each makes of it, the daemon answers or
 * closes, goes on serving, and holds no fd more than before. */
static void test_mutations(Fixture *f, gconstpointer unused) {
        const char *const argv[] = { "true", NULL };
        const char *const bad[] = { "/nonexistent", NULL };
        const char *seed_text = g_getenv("PROCPOOL_FUZZ_SEED");
        guint32 seed = seed_text ? (guint32) g_ascii_strtoull(seed_text, NULL, 10) : g_random_int();
        g_autoptr(GRand) rand = g_rand_new_with_seed(seed);
        g_autoptr(GByteArray) stream = g_byte_array_new();
        g_autofree char *digits = g_strdup_printf("%u", (unsigned) getuid());
        guint before = fixture_proc_fd_count(f->daemon_pid);
        int fds[120];

        g_test_message("seed %u", seed);
        {
                g_autoptr(GString) auth = g_string_new("");
                g_string_append_c(auth, '\0');
                g_string_append(auth, "AUTH EXTERNAL ");
                for (size_t i = 0; digits[i]; i++)
                        g_string_append_printf(auth, "%02x", (unsigned char) digits[i]);
                g_string_append(auth, "\r\nBEGIN\r\n");
                g_byte_array_append(stream, (const guint8 *) auth->str, auth->len);
        }
        for (guint32 serial = 1; serial <= 4; serial++) {
                g_autoptr(GDBusMessage) m = g_dbus_message_new_method_call(
                        NULL, serial == 3 ? MANAGER_PATH "/job/1" : MANAGER_PATH,
                        serial == 3 ? JOB_IFACE : MANAGER_IFACE, serial == 3 ? "Cancel" : "Call");
                g_autoptr(GError) error = NULL;
                g_autofree guchar *blob = NULL;
                gsize size;

                if (serial != 3)
                        g_dbus_message_set_body(m, g_variant_new("(^as@a{sv})", serial == 2 ? bad : argv,
                                                                 FIXTURE_NO_OPTIONS));
                g_dbus_message_set_serial(m, serial);
                blob = g_dbus_message_to_blob(m, &size, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
                g_assert_no_error(error);
                g_byte_array_append(stream, blob, size);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(fds); i++) {
                g_autoptr(GByteArray) s = g_byte_array_sized_new(stream->len);
                guint changes = g_rand_int_range(rand, 1, 9);

                g_byte_array_append(s, stream->data, stream->len);
                for (guint k = 0; k < changes; k++) {
                        guint at = g_rand_int_range(rand, 0, (gint32) s->len);
                        s->data[at] = (guint8) g_rand_int_range(rand, 0, 256);
                }
                if (g_rand_boolean(rand))
                        g_byte_array_set_size(s, g_rand_int_range(rand, 1, (gint32) s->len + 1));
                fds[i] = raw_connect_as(getuid());
                (void) send(fds[i], s->data, s->len, MSG_NOSIGNAL);
                (void) shutdown(fds[i], SHUT_WR);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(fds); i++) {
                g_assert_true(wait_closed(fds[i]));
                close(fds[i]);
        }
        g_assert_true(kill(f->daemon_pid, 0) == 0);
        fixture_assert_answers(f);
        /* A peer sees its connection closed before the daemon has freed it (after that loop iteration), and
         * nothing signals the free: /proc is looked at again every millisecond, within the fixture's bound. */
        for (int i = 0; fixture_proc_fd_count(f->daemon_pid) > before; i++) {
                g_assert_cmpint(i, <, FIXTURE_WAIT_SEC * 1000);
                g_usleep(1000);
        }
}

int main(int argc, char *argv[]) {
        static const char *const caps[] = { "--max-direct-connections-per-user=2",
                                            "--max-direct-connections=3", "--system", NULL };
        static const char *const plain[] = { NULL };
        static const char *const system[] = { "--system", NULL };
        static const char *const crowd[] = { "--max-direct-connections-per-user=32", NULL };
        static const char *const many[] = { "--max-direct-connections-per-user=256", NULL };
        static const char *const one[] = { "--max-direct-connections=1", NULL };

        g_test_init(&argc, &argv, NULL);
        g_test_add("/procpool/fault-direct/caps", Fixture, caps, setup, test_caps, teardown);
        g_test_add("/procpool/fault-direct/no-reader", Fixture, plain, setup, test_no_reader, teardown);
        g_test_add("/procpool/fault-direct/no-auth", Fixture, plain, setup, test_no_auth, teardown);
        g_test_add("/procpool/fault-direct/garbage", Fixture, plain, setup, test_garbage, teardown);
        g_test_add("/procpool/fault-direct/fd-crowd", Fixture, crowd, setup, test_fd_crowd, teardown);
        g_test_add("/procpool/fault-direct/auth-and-leave", Fixture, one, setup, test_auth_and_leave,
                   teardown);
        g_test_add("/procpool/fault-direct/mutations", Fixture, many, setup, test_mutations, teardown);
        g_test_add("/procpool/fault-direct/untrusted-fds", Fixture, system, setup, test_untrusted_fds,
                   teardown);
        g_test_add("/procpool/fault-direct/leave-before-accept", Fixture, plain, setup_logged,
                   test_leave_before_accept, teardown_logged);
        return g_test_run();
}
