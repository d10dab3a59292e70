/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: builds a method call from the input and decodes it with request_parse(), or a
 * SubmitMany with request_parse_many(). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "options-dbus.h"

/* The input, read front to back; past its end every read is 0, so any input is a valid program:
 *   flags(1): bit 0 set: an 'ay' input follows argv (the shape of Communicate); bit 1 set: argvs
 *   instead of argv, the shape of SubmitMany: n_argvs(1) % 9, then each argv as below
 *   argc(1) % 9, then each argument as a string
 *   [input: length(2) % 4097, bytes]
 *   n_options(1) % 16, then each option: key selector(1), type selector(1), value
 * A string is a tag byte: below 0x20 a word from the dictionary, else (tag - 0x20) bytes kept to
 * ASCII without NUL, as the bus only carries valid UTF-8 without NULs. */
typedef struct Reader {
        const uint8_t *p;
        size_t n;
} Reader;

static uint8_t next_byte(Reader *r) {
        if (r->n == 0)
                return 0;
        r->n--;
        return *r->p++;
}

static uint64_t next_u64(Reader *r, int bytes) {
        uint64_t v = 0;
        for (int i = 0; i < bytes; i++)
                v = (v << 8) | next_byte(r);
        return v;
}

static const char *const dictionary[] = {
        "",
        "true",
        "/bin/true",
        "sh",
        "-c",
        "/",
        "/tmp",
        "tmp",
        "..",
        "=",
        "A=",
        "=x",
        "A=1",
        "A=2",
        "PATH=/bin",
        "AB=1",
        "A",
        "label",
        "cwd",
        "environment",
        "stdin",
        "output-limit",
        "NOTIFY_SOCKET=x",
        "/nonexistent",
        "./x",
        "a b",
        "%s%n",
        "\x01\x7f",
        "A=B=C",
        "*",
        "$HOME",
        "--",
};

static const struct {
        const char *name;
        char type;
} keys[] = {
        { "cwd", 's' },
        { "environment", 'a' },
        { "clear-environment", 'b' },
        { "timeout-usec", 't' },
        { "stop-timeout-usec", 't' },
        { "stdin", 'h' },
        { "stdout", 'h' },
        { "stderr", 'h' },
        { "output-limit", 't' },
        { "priority", 'i' },
        { "label", 's' },
        { "cancel-on-disconnect", 'b' },
        { "memory-max", 't' },
};

static const char types[] = "sabtihuydAe"; /* 'a': as, 'A': ay, 'e': an empty a{sv} */

static sd_bus *bus;
static int fd_pool[4]; /* a memfd, a directory, the two ends of a pipe */
static struct stat pool_stat[4];
static unsigned n_pool_copies; /* open fds that refer to one of them while nothing leaked */
static uint64_t cookie;

static char *next_string(Reader *r) {
        uint8_t tag = next_byte(r);
        char *s;

        if (tag < 0x20)
                return strdup(dictionary[tag % (sizeof(dictionary) / sizeof(dictionary[0]))]);
        size_t len = tag - 0x20;
        s = malloc(len + 1);
        if (!s)
                abort();
        for (size_t i = 0; i < len; i++) {
                uint8_t c = next_byte(r) & 0x7f;
                s[i] = c ? (char) c : 'x';
        }
        s[len] = '\0';
        return s;
}

static int append_string(sd_bus_message *m, Reader *r) {
        char *s = next_string(r);
        int q = sd_bus_message_append_basic(m, 's', s);
        free(s);
        return q;
}

static int append_strv(sd_bus_message *m, Reader *r, unsigned n) {
        int q = sd_bus_message_open_container(m, 'a', "s");
        for (unsigned i = 0; q >= 0 && i < n; i++)
                q = append_string(m, r);
        return q < 0 ? q : sd_bus_message_close_container(m);
}

static int append_value(sd_bus_message *m, Reader *r, char type) {
        uint8_t buf[64];
        unsigned n;
        int q;

        switch (type) {
        case 's': {
                char *s = next_string(r);
                q = sd_bus_message_append(m, "v", "s", s);
                free(s);
                return q;
        }
        case 'a':
                q = sd_bus_message_open_container(m, 'v', "as");
                if (q >= 0)
                        q = append_strv(m, r, next_byte(r) % 8);
                return q < 0 ? q : sd_bus_message_close_container(m);
        case 'b':
                return sd_bus_message_append(m, "v", "b", next_byte(r) & 1);
        case 't':
                return sd_bus_message_append(m, "v", "t", next_u64(r, 8));
        case 'i':
                return sd_bus_message_append(m, "v", "i", (int32_t) next_u64(r, 4));
        case 'u':
                return sd_bus_message_append(m, "v", "u", (uint32_t) next_u64(r, 4));
        case 'h':
                return sd_bus_message_append(m, "v", "h", fd_pool[next_byte(r) % 4]);
        case 'y':
                return sd_bus_message_append(m, "v", "y", next_byte(r));
        case 'd': {
                uint64_t bits = next_u64(r, 8);
                double d;
                memcpy(&d, &bits, sizeof(d));
                return sd_bus_message_append(m, "v", "d", d);
        }
        case 'A':
                n = next_byte(r) % sizeof(buf);
                for (unsigned i = 0; i < n; i++)
                        buf[i] = next_byte(r);
                q = sd_bus_message_open_container(m, 'v', "ay");
                if (q >= 0)
                        q = sd_bus_message_append_array(m, 'y', buf, n);
                return q < 0 ? q : sd_bus_message_close_container(m);
        default:
                return sd_bus_message_append(m, "v", "a{sv}", 0);
        }
}

static int build(sd_bus_message *m, Reader *r) {
        uint8_t flags = next_byte(r);
        int q;

        if (flags & 2) {
                unsigned n = next_byte(r) % 9;

                q = sd_bus_message_open_container(m, 'a', "as");
                for (unsigned i = 0; q >= 0 && i < n; i++)
                        q = append_strv(m, r, next_byte(r) % 9);
                if (q >= 0)
                        q = sd_bus_message_close_container(m);
        } else
                q = append_strv(m, r, next_byte(r) % 9);
        if (q < 0)
                return q;
        if (flags & 1 && !(flags & 2)) {
                static uint8_t input[4096];
                size_t n = next_u64(r, 2) % (sizeof(input) + 1);
                for (size_t i = 0; i < n; i++)
                        input[i] = next_byte(r);
                q = sd_bus_message_append_array(m, 'y', input, n);
                if (q < 0)
                        return q;
        }

        unsigned n_options = next_byte(r) % 16;
        q = sd_bus_message_open_container(m, 'a', "{sv}");
        for (unsigned i = 0; q >= 0 && i < n_options; i++) {
                uint8_t key = next_byte(r), type = next_byte(r);
                char *name;
                char t;

                if (key < sizeof(keys) / sizeof(keys[0]))
                        name = strdup(keys[key].name);
                else
                        name = next_string(r);
                if (!name)
                        abort();
                /* Half the time the right type for a known key, so that values get checked too. */
                if (key < sizeof(keys) / sizeof(keys[0]) && type < 0x80)
                        t = keys[key].type;
                else
                        t = types[type % (sizeof(types) - 1)];
                q = sd_bus_message_open_container(m, 'e', "sv");
                if (q >= 0)
                        q = sd_bus_message_append_basic(m, 's', name);
                if (q >= 0)
                        q = append_value(m, r, t);
                if (q >= 0)
                        q = sd_bus_message_close_container(m);
                free(name);
        }
        return q < 0 ? q : sd_bus_message_close_container(m);
}

/* What request_parse() promises of a request it accepts. */
static void check_spec(const Request *req, RequestKind kind) {
        const JobSpec *s = &req->spec;
        size_t n = 0, bytes = 0;

        if (!s->argv || !s->argv[0] || s->argv[0][0] == '\0')
                abort();
        if (s->cwd && s->cwd[0] != '/')
                abort();
        if (s->label && strlen(s->label) > REQUEST_LABEL_MAX)
                abort();
        if (kind == REQUEST_COMMUNICATE && (!s->has_input || s->fds[0] >= 0))
                abort();
        for (int i = 0; i < 3; i++)
                if (s->fds[i] >= 0 && s->fds[i] < 3)
                        abort();
        for (char **a = s->argv; *a; a++, n++)
                bytes += strlen(*a) + 1;
        for (char **e = s->environment; e && *e; e++, n++) {
                const char *eq = strchr(*e, '=');
                if (!eq || eq == *e)
                        abort();
                for (char **o = s->environment; o < e; o++)
                        if (strncmp(*o, *e, eq - *e + 1) == 0)
                                abort();
                bytes += strlen(*e) + 1;
        }
        if (n > REQUEST_ARGS_MAX_ENTRIES || bytes > REQUEST_ARGS_MAX_BYTES)
                abort();
}

/* What request_parse_many() promises of a SubmitMany it accepts: at least one argv, each as Submit's,
 * options that hold no fd. */
static void check_many(sd_bus_message *m) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char ***argvs;
        size_t n;
        Request req;

        if (request_parse_many(m, &req, &argvs, &n, &error) >= 0) {
                if (n == 0 || n > REQUEST_MANY_MAX || req.spec.argv || job_spec_count_fds(&req.spec) != 0)
                        abort();
                for (size_t i = 0; i < n; i++) {
                        req.spec.argv = argvs[i];
                        check_spec(&req, REQUEST_SUBMIT);
                }
                req.spec.argv = NULL;
                request_done(&req);
                request_argvs_free(argvs, n);
        } else if (sd_bus_error_is_set(&error) && !error.message)
                abort();
        sd_bus_error_free(&error);
}

/* Open fds referring to a file of fd_pool: a copy a request took and did not close adds one. Other
 * fds come and go (libFuzzer's symbolizer pipes), so only these are counted. */
static unsigned count_pool_copies(void) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        unsigned n = 0;

        if (!d)
                abort();
        while ((de = readdir(d))) {
                struct stat st;
                int fd = atoi(de->d_name);
                if (de->d_name[0] == '.' || fd == dirfd(d) || fstat(fd, &st) < 0)
                        continue;
                for (int i = 0; i < 4; i++)
                        if (st.st_dev == pool_stat[i].st_dev && st.st_ino == pool_stat[i].st_ino)
                                n++;
        }
        closedir(d);
        return n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
        int sv[2], p[2];

        /* A bus object that never connects anywhere: messages need one, and one that has started. */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || sd_bus_new(&bus) < 0 ||
            sd_bus_set_fd(bus, sv[0], sv[0]) < 0 || sd_bus_start(bus) < 0)
                abort();
        if (pipe2(p, O_CLOEXEC) < 0)
                abort();
        char dir[] = "/tmp/procpool-fuzz-dir-XXXXXX";
        if (!mkdtemp(dir))
                abort();
        fd_pool[0] = memfd_create("procpool-fuzz", MFD_CLOEXEC);
        fd_pool[1] = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        (void) rmdir(dir);
        fd_pool[2] = p[0];
        fd_pool[3] = p[1];
        for (int i = 0; i < 4; i++)
                if (fd_pool[i] < 0 || fstat(fd_pool[i], &pool_stat[i]) < 0)
                        abort();
        n_pool_copies = count_pool_copies();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Reader r = { data, size };
        sd_bus_message *m = NULL;

        if (sd_bus_message_new_method_call(bus, &m, "org.procpool.Supervisor1", "/org/procpool/Supervisor1",
                                           "org.procpool.Supervisor1", "Submit") < 0)
                abort();
        if (size > 0 && (data[0] & 2)) {
                if (build(m, &r) >= 0 && sd_bus_message_seal(m, ++cookie, 0) >= 0)
                        check_many(m);
        } else if (build(m, &r) >= 0 && sd_bus_message_seal(m, ++cookie, 0) >= 0)
                for (RequestKind kind = REQUEST_SUBMIT; kind <= REQUEST_COMMUNICATE; kind++) {
                        sd_bus_error error = SD_BUS_ERROR_NULL;
                        Request req;

                        if (sd_bus_message_rewind(m, 1) < 0)
                                abort();
                        if (request_parse(m, kind, &req, &error) >= 0) {
                                check_spec(&req, kind);
                                job_spec_done(&req.spec);
                        } else if (sd_bus_error_is_set(&error) && !error.message)
                                abort(); /* an error says what was wrong */
                        sd_bus_error_free(&error);
                }
        sd_bus_message_unref(m);

        /* Every fd a request took is closed again. */
        if (count_pool_copies() != n_pool_copies)
                abort();
        return 0;
}
