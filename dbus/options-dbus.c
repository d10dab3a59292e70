/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Decoding and validating a request's argv, input and a{sv} options from a method call. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"
#include "pool.h"
#include "options-dbus.h"
#include "procpool-api.h"

#define INVALID_ARGS SD_BUS_ERROR_INVALID_ARGS

typedef enum OptionKey {
        OPT_CWD,
        OPT_ENVIRONMENT,
        OPT_CLEAR_ENVIRONMENT,
        OPT_TIMEOUT,
        OPT_STOP_TIMEOUT,
        OPT_STDIN,
        OPT_STDOUT,
        OPT_STDERR,
        OPT_OUTPUT_LIMIT,
        OPT_PRIORITY,
        OPT_LABEL,
        OPT_CANCEL_ON_DISCONNECT,
        OPT_MEMORY_MAX,
        OPT_POOL,
        OPT_AFTER,
        OPT_NOT_BEFORE,
        OPT_RETRY,
        OPT_RETRY_DELAY,
        OPT_USER,
        OPT_KEEP_OUTPUT,
        _OPT_MAX,
} OptionKey;

static const struct {
        const char *name;
        const char *signature;
} options[_OPT_MAX] = {
        [OPT_CWD] = { PROCPOOL_OPTION_CWD, "s" },
        [OPT_ENVIRONMENT] = { PROCPOOL_OPTION_ENVIRONMENT, "as" },
        [OPT_CLEAR_ENVIRONMENT] = { PROCPOOL_OPTION_CLEAR_ENVIRONMENT, "b" },
        [OPT_TIMEOUT] = { PROCPOOL_OPTION_TIMEOUT, "t" },
        [OPT_STOP_TIMEOUT] = { PROCPOOL_OPTION_STOP_TIMEOUT, "t" },
        [OPT_STDIN] = { PROCPOOL_OPTION_STDIN, "h" },
        [OPT_STDOUT] = { PROCPOOL_OPTION_STDOUT, "h" },
        [OPT_STDERR] = { PROCPOOL_OPTION_STDERR, "h" },
        [OPT_OUTPUT_LIMIT] = { PROCPOOL_OPTION_OUTPUT_LIMIT, "t" },
        [OPT_PRIORITY] = { PROCPOOL_OPTION_PRIORITY, "i" },
        [OPT_LABEL] = { PROCPOOL_OPTION_LABEL, "s" },
        [OPT_CANCEL_ON_DISCONNECT] = { PROCPOOL_OPTION_CANCEL_ON_DISCONNECT, "b" },
        [OPT_MEMORY_MAX] = { PROCPOOL_OPTION_MEMORY_MAX, "t" },
        [OPT_POOL] = { PROCPOOL_OPTION_POOL, "s" },
        [OPT_AFTER] = { PROCPOOL_OPTION_AFTER, "at" },
        [OPT_NOT_BEFORE] = { PROCPOOL_OPTION_NOT_BEFORE, "t" },
        [OPT_RETRY] = { PROCPOOL_OPTION_RETRY, "u" },
        [OPT_RETRY_DELAY] = { PROCPOOL_OPTION_RETRY_DELAY, "t" },
        [OPT_USER] = { PROCPOOL_OPTION_USER, "s" },
        [OPT_KEEP_OUTPUT] = { PROCPOOL_OPTION_KEEP_OUTPUT, "b" },
};

static int option_lookup(const char *name) {
        for (int i = 0; i < _OPT_MAX; i++)
                if (strcmp(options[i].name, name) == 0)
                        return i;
        return -1;
}

/* Orders NAME=value entries by name, so that a name given twice sits next to itself. */
static int env_name_compare(const void *a, const void *b) {
        const char *x = *(const char *const *) a, *y = *(const char *const *) b;
        size_t lx = strcspn(x, "="), ly = strcspn(y, "=");
        int c = memcmp(x, y, lx < ly ? lx : ly);
        return c != 0 ? c : (lx > ly) - (lx < ly);
}

/* Reads an "as" into *ret (NULL if empty), refusing more than REQUEST_ARGS_MAX_ENTRIES entries as it
 * goes: a message may carry millions of tiny strings, and sd_bus_message_read_strv() would take them
 * all, growing its array one entry at a time. */
static int read_strv_bounded(sd_bus_message *m, const char *what, char ***ret, sd_bus_error *error) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0, allocated = 0;
        const char *s;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "s");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read_basic(m, 's', &s)) > 0) {
                if (n >= REQUEST_ARGS_MAX_ENTRIES)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                                 "%s has more than %u entries; at most %u are taken", what,
                                                 REQUEST_ARGS_MAX_ENTRIES, REQUEST_ARGS_MAX_ENTRIES);
                if (n + 2 > allocated) {
                        size_t a = allocated ? allocated * 2 : 16;
                        char **k = realloc(l, a * sizeof(char *));
                        if (!k)
                                return -ENOMEM;
                        l = k;
                        allocated = a;
                }
                l[n] = strdup(s);
                l[n + 1] = NULL;
                if (!l[n])
                        return -ENOMEM;
                n++;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

static int validate_environment(char **env, sd_bus_error *error) {
        _cleanup_free_ char **sorted = NULL;
        size_t n = 0;

        for (char **e = env; e && *e; e++, n++) {
                const char *eq = strchr(*e, '=');
                if (!eq)
                        return sd_bus_error_setf(error, INVALID_ARGS,
                                                 "Option 'environment': entry '%s' has no '='", *e);
                if (eq == *e)
                        return sd_bus_error_setf(error, INVALID_ARGS,
                                                 "Option 'environment': entry '%s' has an empty name", *e);
        }
        if (n < 2)
                return 0;
        /* Sorted, not compared pairwise: 16384 entries would take the daemon seconds otherwise. */
        sorted = malloc(n * sizeof(char *));
        if (!sorted)
                return -ENOMEM;
        memcpy(sorted, env, n * sizeof(char *));
        qsort(sorted, n, sizeof(char *), env_name_compare);
        for (size_t i = 1; i < n; i++)
                if (env_name_compare(&sorted[i - 1], &sorted[i]) == 0)
                        return sd_bus_error_setf(error, INVALID_ARGS,
                                                 "Option 'environment': '%.*s' is set twice",
                                                 (int) strcspn(sorted[i], "="), sorted[i]);
        return 0;
}

static int read_fd_option(sd_bus_message *m, const char *name, int *fd, sd_bus_error *error) {
        struct stat st;
        int r, in;

        r = sd_bus_message_read_basic(m, 'h', &in);
        if (r == -EBADMSG) /* the handle names no fd the message carries */
                return sd_bus_error_setf(error, INVALID_ARGS, "Option '%s': no fd was sent with the message",
                                         name);
        if (r < 0)
                return r;
        if (fstat(in, &st) < 0)
                return sd_bus_error_setf(error, INVALID_ARGS, "Option '%s': fd is not usable: %s", name,
                                         strerror(errno));
        if (S_ISDIR(st.st_mode))
                return sd_bus_error_setf(error, INVALID_ARGS, "Option '%s': fd refers to a directory", name);
        /* The message owns its fds; the job keeps its own copy, above the standard fds. */
        *fd = fcntl(in, F_DUPFD_CLOEXEC, 3);
        if (*fd < 0)
                return -errno;
        return 0;
}

static int id_compare(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return (x > y) - (x < y);
}

/* The ids of "after", sorted, each once. Whether they name jobs is the submitter's to check. */
static int read_after(sd_bus_message *m, JobSpec *spec, sd_bus_error *error) {
        const uint64_t *ids;
        size_t size, n = 0;
        int r;

        r = sd_bus_message_read_array(m, 't', (const void **) &ids, &size);
        if (r < 0)
                return r;
        if (size / sizeof(uint64_t) > REQUEST_AFTER_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "Option '" PROCPOOL_OPTION_AFTER "' names more than %u jobs",
                                         REQUEST_AFTER_MAX);
        if (size == 0)
                return 0;
        spec->after = memdup(ids, size);
        if (!spec->after)
                return -ENOMEM;
        qsort(spec->after, size / sizeof(uint64_t), sizeof(uint64_t), id_compare);
        for (size_t i = 0; i < size / sizeof(uint64_t); i++)
                if (n == 0 || spec->after[n - 1] != spec->after[i])
                        spec->after[n++] = spec->after[i];
        spec->n_after = n;
        return 0;
}

static int read_option(sd_bus_message *m, int key, RequestKind kind, Request *req, sd_bus_error *error) {
        JobSpec *spec = &req->spec;
        const char *s;
        uint64_t t;
        int b, r;

        switch (key) {
        case OPT_CWD:
                r = sd_bus_message_read_basic(m, 's', &s);
                if (r < 0)
                        return r;
                if (strlen(s) > REQUEST_CWD_MAX)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                                 "Option 'cwd' is longer than %u bytes", REQUEST_CWD_MAX);
                if (s[0] != '/')
                        return sd_bus_error_setf(error, INVALID_ARGS,
                                                 "Option 'cwd': '%s' is not an absolute path", s);
                spec->cwd = strdup(s);
                return spec->cwd ? 0 : -ENOMEM;
        case OPT_ENVIRONMENT:
                r = read_strv_bounded(m, "Option 'environment'", &spec->environment, error);
                if (r < 0)
                        return r;
                return validate_environment(spec->environment, error);
        case OPT_CLEAR_ENVIRONMENT:
                r = sd_bus_message_read_basic(m, 'b', &b);
                spec->clear_environment = b;
                return r < 0 ? r : 0;
        case OPT_TIMEOUT:
                return sd_bus_message_read_basic(m, 't', &spec->timeout_usec);
        case OPT_STOP_TIMEOUT:
                return sd_bus_message_read_basic(m, 't', &spec->stop_timeout_usec);
        case OPT_STDIN:
        case OPT_STDOUT:
        case OPT_STDERR:
                if (kind == REQUEST_SUBMIT_MANY)
                        return sd_bus_error_setf(
                                error, INVALID_ARGS,
                                "Option '%s' passes an fd, which the one job it goes to uses "
                                "up: SubmitMany's options are every job's, and take no fds; "
                                "Submit a job that needs one on its own",
                                options[key].name);
                break;
        default:
                break;
        }

        switch (key) {
        case OPT_STDIN:
                if (kind == REQUEST_COMMUNICATE)
                        return sd_bus_error_setf(error, INVALID_ARGS,
                                                 "Option 'stdin' does not go with Communicate: its input "
                                                 "argument is the job's stdin");
                spec->passed_fds |= 1U << 0;
                return read_fd_option(m, PROCPOOL_OPTION_STDIN, &spec->fds[0], error);
        case OPT_STDOUT:
                spec->passed_fds |= 1U << 1;
                return read_fd_option(m, PROCPOOL_OPTION_STDOUT, &spec->fds[1], error);
        case OPT_STDERR:
                spec->passed_fds |= 1U << 2;
                return read_fd_option(m, PROCPOOL_OPTION_STDERR, &spec->fds[2], error);
        case OPT_OUTPUT_LIMIT:
                r = sd_bus_message_read_basic(m, 't', &t);
                if (r < 0)
                        return r;
                /* UINT64_MAX marks "unset"; asked for, it is as much above the cap as it looks. */
                spec->output_limit = t == JOB_OUTPUT_LIMIT_UNSET ? t - 1 : t;
                return 0;
        case OPT_PRIORITY:
                return sd_bus_message_read_basic(m, 'i', &spec->priority);
        case OPT_LABEL:
                r = sd_bus_message_read_basic(m, 's', &s);
                if (r < 0)
                        return r;
                if (strlen(s) > REQUEST_LABEL_MAX)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                                 "Option 'label' is longer than %u bytes", REQUEST_LABEL_MAX);
                spec->label = strdup(s);
                return spec->label ? 0 : -ENOMEM;
        case OPT_CANCEL_ON_DISCONNECT:
                r = sd_bus_message_read_basic(m, 'b', &b);
                spec->cancel_on_disconnect = b;
                return r < 0 ? r : 0;
        case OPT_MEMORY_MAX:
                r = sd_bus_message_read_basic(m, 't', &spec->memory_max);
                if (r < 0)
                        return r;
                if (spec->memory_max == 0)
                        return sd_bus_error_setf(error, INVALID_ARGS, "Option 'memory-max' must be above 0");
                return 0;
        case OPT_POOL:
                r = sd_bus_message_read_basic(m, 's', &s);
                if (r < 0)
                        return r;
                if (!pool_name_is_valid(s))
                        return sd_bus_error_setf(error, INVALID_ARGS,
                                                 "Option '" PROCPOOL_OPTION_POOL
                                                 "': '%.64s%s' is not a pool name "
                                                 "(1 to %u of A-Z, a-z, 0-9, '_' and '-')",
                                                 s, strlen(s) > 64 ? "..." : "", POOL_NAME_MAX);
                spec->pool = strdup(s);
                return spec->pool ? 0 : -ENOMEM;
        case OPT_AFTER:
                return read_after(m, spec, error);
        case OPT_NOT_BEFORE:
                return sd_bus_message_read_basic(m, 't', &spec->not_before_usec);
        case OPT_RETRY:
                r = sd_bus_message_read_basic(m, 'u', &spec->retry);
                if (r < 0)
                        return r;
                if (spec->retry > REQUEST_RETRY_MAX)
                        return sd_bus_error_setf(error, INVALID_ARGS,
                                                 "Option '" PROCPOOL_OPTION_RETRY "' is above %u",
                                                 REQUEST_RETRY_MAX);
                return 0;
        case OPT_RETRY_DELAY:
                return sd_bus_message_read_basic(m, 't', &spec->retry_delay_usec);
        case OPT_USER:
                r = sd_bus_message_read_basic(m, 's', &s);
                if (r < 0)
                        return r;
                if (strlen(s) > REQUEST_USER_MAX)
                        return sd_bus_error_setf(error, INVALID_ARGS, "Option 'user' is longer than %u bytes",
                                                 REQUEST_USER_MAX);
                if (s[0] == '\0')
                        return sd_bus_error_set(error, INVALID_ARGS,
                                                "Option 'user' is empty: name a user or a uid");
                req->user = strdup(s);
                return req->user ? 0 : -ENOMEM;
        case OPT_KEEP_OUTPUT:
                if (kind != REQUEST_COMMUNICATE)
                        return sd_bus_error_setf(error, INVALID_ARGS,
                                                 "Option '" PROCPOOL_OPTION_KEEP_OUTPUT
                                                 "' is for Communicate only: Submit and Call keep the "
                                                 "output until the job is released");
                r = sd_bus_message_read_basic(m, 'b', &b);
                spec->keep_output = b;
                return r < 0 ? r : 0;
        }
        return -EINVAL;
}

static int read_options(sd_bus_message *m, RequestKind kind, Request *req, sd_bus_error *error) {
        bool seen[_OPT_MAX] = {};
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        for (;;) {
                const char *name, *contents;
                char type;
                int key;

                r = sd_bus_message_enter_container(m, 'e', "sv");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                r = sd_bus_message_read_basic(m, 's', &name);
                if (r < 0)
                        return r;
                key = option_lookup(name);
                if (key < 0)
                        return sd_bus_error_setf(error, INVALID_ARGS, "Unknown option '%s'", name);
                if (seen[key])
                        return sd_bus_error_setf(error, INVALID_ARGS, "Option '%s' is given twice", name);
                seen[key] = true;

                r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        return r;
                if (type != 'v' || strcmp(contents, options[key].signature) != 0)
                        return sd_bus_error_setf(error, INVALID_ARGS,
                                                 "Option '%s' takes a value of type '%s', not '%s'", name,
                                                 options[key].signature, contents);
                r = sd_bus_message_enter_container(m, 'v', contents);
                if (r < 0)
                        return r;
                r = read_option(m, key, kind, req, error);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_exit_container(m);
}

static int check_size(char **argv, char **env, sd_bus_error *error) {
        size_t bytes = 0, entries = 0;

        for (char **a = argv; a && *a; a++, entries++)
                bytes += strlen(*a) + 1;
        for (char **e = env; e && *e; e++, entries++)
                bytes += strlen(*e) + 1;
        if (entries > REQUEST_ARGS_MAX_ENTRIES)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "argv and environment have %zu entries; at most %u are taken",
                                         entries, REQUEST_ARGS_MAX_ENTRIES);
        if (bytes > REQUEST_ARGS_MAX_BYTES)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "argv and environment take %zu bytes; at most %u are taken", bytes,
                                         REQUEST_ARGS_MAX_BYTES);
        return 0;
}

void request_done(Request *req) {
        job_spec_done(&req->spec);
        req->user = mfree(req->user);
}

int request_parse(sd_bus_message *m, RequestKind kind, Request *ret, sd_bus_error *error) {
        Request req = {};
        int r;

        job_spec_init(&req.spec);
        req.spec.cancel_on_disconnect = kind != REQUEST_SUBMIT;
        assert(kind != REQUEST_SUBMIT_MANY);

        r = read_strv_bounded(m, "argv", &req.spec.argv, error);
        if (r < 0)
                goto fail;
        if (!req.spec.argv || !req.spec.argv[0]) {
                r = sd_bus_error_setf(error, INVALID_ARGS, "argv is empty: name a program to run");
                goto fail;
        }
        if (req.spec.argv[0][0] == '\0') {
                r = sd_bus_error_setf(error, INVALID_ARGS, "argv[0] is empty: name a program to run");
                goto fail;
        }

        if (kind == REQUEST_COMMUNICATE) {
                const void *p;
                size_t n;
                r = sd_bus_message_read_array(m, 'y', &p, &n);
                if (r < 0)
                        goto fail;
                /* A copy: the message, and the fds it may carry, are not held until the input is written. */
                req.spec.has_input = true;
                req.spec.kill_on_output_limit = true;
                if (n > 0) {
                        req.spec.input_userdata = malloc(n);
                        if (!req.spec.input_userdata) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        memcpy(req.spec.input_userdata, p, n);
                        req.spec.input = req.spec.input_userdata;
                        req.spec.input_free = free;
                }
                req.spec.input_size = n;
        }

        r = read_options(m, kind, &req, error);
        if (r < 0)
                goto fail;
        r = check_size(req.spec.argv, req.spec.environment, error);
        if (r < 0)
                goto fail;

        *ret = req;
        return 0;
fail:
        request_done(&req);
        return r;
}

void request_argvs_free(char ***argvs, size_t n) {
        for (size_t i = 0; i < n; i++)
                strv_free(argvs[i]);
        free(argvs);
}

/* error, with "argvs[i]: " before its message. */
static int error_at(sd_bus_error *error, size_t i, const sd_bus_error *e) {
        return sd_bus_error_setf(error, e->name, "argvs[%zu]: %s", i, e->message ?: "invalid");
}

int request_parse_many(sd_bus_message *m, Request *ret, char ****ret_argvs, size_t *ret_n,
                       sd_bus_error *error) {
        char ***argvs = NULL;
        size_t n = 0, allocated = 0, bytes = 0;
        Request req = {};
        int r;

        job_spec_init(&req.spec);
        r = sd_bus_message_enter_container(m, 'a', "as");
        if (r < 0)
                goto fail;
        for (;;) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                char **argv = NULL;

                r = sd_bus_message_at_end(m, false);
                if (r < 0)
                        goto fail;
                if (r > 0)
                        break;
                if (n >= REQUEST_MANY_MAX) {
                        r = sd_bus_error_setf(
                                error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                "argvs has more than %u entries; one SubmitMany takes at most %u "
                                "jobs",
                                REQUEST_MANY_MAX, REQUEST_MANY_MAX);
                        goto fail;
                }
                if (n + 1 > allocated) {
                        size_t a = allocated ? allocated * 2 : 16;
                        char ***k = realloc(argvs, a * sizeof(char **));
                        if (!k) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        argvs = k;
                        allocated = a;
                }
                r = read_strv_bounded(m, "argv", &argv, &e);
                if (r < 0) {
                        if (sd_bus_error_is_set(&e))
                                r = error_at(error, n, &e);
                        goto fail;
                }
                argvs[n++] = argv;
                if (!argv || !argv[0]) {
                        r = sd_bus_error_setf(error, INVALID_ARGS,
                                              "argvs[%zu]: empty argv, name a program to run", n - 1);
                        goto fail;
                }
                if (argv[0][0] == '\0') {
                        r = sd_bus_error_setf(error, INVALID_ARGS,
                                              "argvs[%zu]: argv[0] is empty, name a program to run", n - 1);
                        goto fail;
                }
                for (char **a = argv; *a; a++)
                        bytes += strlen(*a) + 1;
                if (bytes > REQUEST_MANY_MAX_BYTES) {
                        r = sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                              "argvs[%zu]: the argvs up to here take more than %u bytes, the "
                                              "most one SubmitMany takes",
                                              n - 1, REQUEST_MANY_MAX_BYTES);
                        goto fail;
                }
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                goto fail;
        if (n == 0) {
                r = sd_bus_error_set(error, INVALID_ARGS, "argvs is empty: name at least one command");
                goto fail;
        }

        r = read_options(m, REQUEST_SUBMIT_MANY, &req, error);
        if (r < 0)
                goto fail;
        for (size_t i = 0; i < n; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

                r = check_size(argvs[i], req.spec.environment, &e);
                if (r < 0) {
                        r = error_at(error, i, &e);
                        goto fail;
                }
        }

        *ret = req;
        *ret_argvs = argvs;
        *ret_n = n;
        return 0;
fail:
        request_done(&req);
        request_argvs_free(argvs, n);
        return r;
}

/* ---- whom the job runs as --------------------------------------------------------------------------- */

/* The user database's entry of name (or, with name NULL, of uid), its strings in *ret_buffer. */
static int lookup_passwd(const char *name, uid_t uid, struct passwd *ret, char **ret_buffer) {
        long max = sysconf(_SC_GETPW_R_SIZE_MAX);
        size_t size = max > 0 ? (size_t) max : 1024;

        for (;;) {
                _cleanup_free_ char *buffer = malloc(size);
                struct passwd *found = NULL;
                int k;

                if (!buffer)
                        return -ENOMEM;
                k = name ? getpwnam_r(name, ret, buffer, size, &found)
                         : getpwuid_r(uid, ret, buffer, size, &found);
                if (k == ERANGE && size < 1024 * 1024) {
                        size *= 2;
                        continue;
                }
                if (k != 0)
                        return -k;
                if (!found)
                        return -ESRCH;
                *ret_buffer = TAKE_PTR(buffer);
                return 0;
        }
}

/* The supplementary groups of user, its primary gid among them, as initgroups() would set them. */
static int lookup_groups(const char *user, gid_t gid, gid_t **ret, size_t *ret_n) {
        int n = 64;

        for (;;) {
                _cleanup_free_ gid_t *groups = calloc((size_t) n, sizeof(gid_t));
                int k = n;

                if (!groups)
                        return -ENOMEM;
                if (getgrouplist(user, gid, groups, &k) >= 0) {
                        *ret = TAKE_PTR(groups);
                        *ret_n = (size_t) k;
                        return 0;
                }
                /* Too small: k says how many there are. */
                if (k <= n || (unsigned) k > JOB_USER_GROUPS_MAX)
                        return -E2BIG;
                n = k;
        }
}

static bool env_names(char **env, const char *name) {
        size_t len = strlen(name);

        for (char **e = env; e && *e; e++)
                if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
                        return true;
        return false;
}

/* Adds NAME=value to env unless it names NAME already. */
static int env_add_default(char ***env, const char *name, const char *value) {
        size_t n = 0;
        char **l, *e;

        if (env_names(*env, name))
                return 0;
        if (asprintf(&e, "%s=%s", name, value) < 0)
                return -ENOMEM;
        for (char **i = *env; i && *i; i++)
                n++;
        l = realloc(*env, (n + 2) * sizeof(char *));
        if (!l) {
                free(e);
                return -ENOMEM;
        }
        l[n] = e;
        l[n + 1] = NULL;
        *env = l;
        return 0;
}

/* A decimal uid, as the user option may give one. */
static bool parse_uid(const char *s, uid_t *ret) {
        unsigned long v;
        char *end;

        if (s[0] < '0' || s[0] > '9')
                return false;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end != '\0' || v >= (unsigned long) (uid_t) -1)
                return false;
        *ret = (uid_t) v;
        return true;
}

int request_resolve_user(Request *req, uid_t uid, sd_bus_error *error) {
        _cleanup_free_ char *buffer = NULL;
        JobSpec *spec = &req->spec;
        const char *name = req->user;
        struct passwd pw;
        gid_t *groups;
        size_t n;
        int r;

        if (name && parse_uid(name, &uid))
                name = NULL;
        r = lookup_passwd(name, uid, &pw, &buffer);
        if (r == -ESRCH && req->user)
                return sd_bus_error_setf(error, INVALID_ARGS,
                                         "Option 'user': no user '%s' in the user database", req->user);
        if (r == -ESRCH)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "uid %u has no entry in the user database, so procpoold cannot tell "
                                         "its groups and home to run a job as it",
                                         (unsigned) uid);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to look up %s%s in the user database: %m",
                                               req->user ? "user " : "uid ", req->user ?: "");
        r = lookup_groups(pw.pw_name, pw.pw_gid, &groups, &n);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to look up the groups of user %s: %m",
                                               pw.pw_name);
        free(spec->user.groups);
        spec->user = (JobUser) {
                .set = true,
                .uid = pw.pw_uid,
                .gid = pw.pw_gid,
                .groups = groups,
                .n_groups = n,
        };
        /* As login and systemd's User= set them; the request's own environment wins. */
        r = env_add_default(&spec->environment, "HOME", pw.pw_dir && pw.pw_dir[0] ? pw.pw_dir : "/");
        if (r >= 0)
                r = env_add_default(&spec->environment, "USER", pw.pw_name);
        if (r >= 0)
                r = env_add_default(&spec->environment, "LOGNAME", pw.pw_name);
        if (r >= 0)
                r = env_add_default(&spec->environment, "SHELL",
                                    pw.pw_shell && pw.pw_shell[0] ? pw.pw_shell : "/bin/sh");
        return r;
}
