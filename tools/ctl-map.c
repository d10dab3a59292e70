/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* procpoolctl map: a command run once per line of stdin through the pool, as GNU parallel and Python's
 * Pool.map run it, with the Submits pipelined and each job's output printed as one block. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <systemd/sd-event.h>

#include "procpool-api.h"
#include "ctl-output.h"
#include "ctl.h"

/* Jobs submitted and not yet printed, at most: enough to keep any pool busy while Submits are answered,
 * few enough that the fds of the jobs --keep-order holds (two each) stay under the usual 1024, and far
 * below what the daemon retains of a uid's finished jobs (--retain, 1000) before it releases them itself. */
#define MAP_WINDOW 256
/* After QueueFull, the next Submit goes out when a job ends, or after this long if none does (the queue
 * also drains when a pool grows or is resumed, which sends no JobFinished). */
#define QUEUE_FULL_RETRY_USEC (1 * USEC_PER_SEC)
/* As GNU parallel: the exit status counts failed jobs up to here. */
#define MAP_FAILED_MAX 101
/* procpoolctl or the daemon failed (unreachable, a Submit refused): GNU parallel's status for its own
 * errors, above any count of failed jobs. */
#define EXIT_MAP_ERROR 255
/* Lines one SubmitMany carries at most: a few calls fill the window, and the daemon's bound (4096) is far. */
#define MAP_BATCH_MAX 128
/* Calls out at once, answers awaited: the system bus's dbus-daemon lets a connection await 128
 * (max_replies_per_connection) and fails the calls past that. */
#define MAP_CALLS_MAX 100
#define READ_CHUNK (64U * 1024U)
#define COPY_CHUNK (128U * 1024U)

typedef enum MapPhase {
        MAP_PENDING,    /* read, not submitted yet (or again, after QueueFull) */
        MAP_SUBMITTING, /* Submit is out */
        MAP_CHECKING,   /* it may have ended before Submit's answer came: its properties are asked */
        MAP_RUNNING,    /* waiting for its JobFinished */
        MAP_ENDED,      /* it ended: its properties and output are asked once there is room for the calls */
        MAP_FETCHING,   /* it ended: its properties and output are asked */
        MAP_READY,      /* its output is in hand (and the job released): waiting for its turn to print */
} MapPhase;

typedef struct Map Map;
typedef struct MapBatch MapBatch;

typedef struct MapJob {
        Map *map;
        size_t seq;  /* the line's number, from 1 */
        char *input; /* the line, without its newline */
        MapPhase phase;
        size_t active_index; /* where it is in map->active, from MAP_SUBMITTING on */
        uint64_t id;
        char *path;
        uint64_t unknown_at_send; /* map->n_unknown_finished when its Submit went out */
        bool end_seen;            /* JobFinished named it while its properties were being asked */
        bool cancelled;           /* map cancelled it: --halt-on-error, or a signal */
        bool fetch_failed;        /* its properties or output could not be read: counts as failed */
        bool lost;                /* procpoold left before it answered about the job: asked again when back */
        sd_bus_slot *slot;        /* Submit, or the properties */
        sd_bus_slot *output_slot; /* OpenOutput or GetOutput */
        JobInfo info;
        int fds[2];             /* OpenOutput's, on the job's spool files: readable after Release */
        sd_bus_message *output; /* GetOutput's reply, where the bus cannot pass fds */
} MapJob;

struct Map {
        Ctl *ctl;
        sd_event *event;
        char **command;           /* CMD ARG... as given */
        sd_bus_message *options;  /* the a{sv} every Submit carries, built once */
        bool no_many;             /* the daemon has no SubmitMany: one Submit per line */
        struct MapBatch *batches; /* SubmitMany calls out */
        bool fds_ok;              /* the bus passes fds: OpenOutput, else GetOutput */

        MapJob **jobs; /* by line, from 0; NULL once printed (or dropped) and freed */
        size_t n_jobs, n_allocated;
        size_t n_pending;
        size_t next_submit; /* no pending line before it */
        size_t next_print;  /* --keep-order: the line printed next */
        MapJob *active[MAP_WINDOW];
        size_t n_active;
        size_t n_submitting, submit_limit;
        size_t n_calls; /* answers awaited, at most MAP_CALLS_MAX */
        size_t n_ended; /* jobs in MAP_ENDED */
        bool queue_full;
        sd_event_source *retry_timer;
        uint64_t n_unknown_finished; /* JobFinished of ids no job of ours had when it came */

        int input_fd;
        sd_event_source *input_source; /* NULL where stdin cannot be polled (a file): read as needed */
        char *buf;
        size_t buf_size, buf_allocated;
        bool eof;

        FILE *joblog;
        size_t n_failed;
        bool stopping; /* no more Submits: halted, interrupted or failed; the jobs out are cancelled */
        int halt_exit; /* --halt-on-error: the first failed job's exit code */
        int signal;
        int error_exit;
        sd_bus_slot *finished_match, *owner_match, *disconnected_match;
        char *owner;
        bool away;       /* procpoold left (a re-exec, a restart): nothing is sent until it is back */
        bool seen_leave; /* it left once: calls no longer start it by bus activation */
};

/* A SubmitMany out: its jobs, in the order of its argvs. */
struct MapBatch {
        Map *map;
        sd_bus_slot *slot;
        MapJob *jobs[MAP_BATCH_MAX];
        size_t n;
        MapBatch *next;
};

static bool streq(const char *a, const char *b) {
        return strcmp(a ?: "", b ?: "") == 0;
}

static void map_fill(Map *m);
static MapJob *map_next_pending(Map *m);

/* ---- the command line of one line ------------------------------------------------------------------- */

/* Returns s with every {} replaced by input, malloc'd. */
static char *replace_braces(const char *s, const char *input) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        for (const char *p = s; *p;) {
                const char *b = strstr(p, "{}");
                if (!b) {
                        fputs(p, f);
                        break;
                }
                fwrite(p, 1, (size_t) (b - p), f);
                fputs(input, f);
                p = b + 2;
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* Whether s is UTF-8 text, as D-Bus takes a string: no overlong forms, surrogates or code points past
 * U+10FFFF. */
static bool utf8_is_valid(const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        while (*p) {
                unsigned c = *p, n;
                uint32_t cp;

                if (c < 0x80) {
                        p++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        n = 1, cp = c & 0x1f;
                else if (c >= 0xe0 && c <= 0xef)
                        n = 2, cp = c & 0x0f;
                else if (c >= 0xf0 && c <= 0xf4)
                        n = 3, cp = c & 0x07;
                else
                        return false;
                for (unsigned i = 1; i <= n; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i] & 0x3f);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                p += n + 1;
        }
        return true;
}

char **ctl_command_argv(char *const *command, const char *input) {
        size_t n = 0;
        bool substitute = false;
        char **argv;

        while (command[n]) {
                if (strstr(command[n], "{}"))
                        substitute = true;
                n++;
        }
        argv = calloc(n + 2, sizeof(char *));
        if (!argv)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                argv[i] = substitute ? replace_braces(command[i], input) : strdup(command[i]);
                if (!argv[i]) {
                        strv_free(argv);
                        return NULL;
                }
        }
        if (!substitute) {
                argv[n] = strdup(input);
                if (!argv[n]) {
                        strv_free(argv);
                        return NULL;
                }
        }
        return argv;
}

/* The argv of a line: {} replaced in every word, or the line appended when no word has one. */
static char **map_argv(Map *m, const char *input) {
        return ctl_command_argv(m->command, input);
}

/* ---- calls ------------------------------------------------------------------------------------------- */

/* A new call to procpoold: once it has been seen to leave, one that does not start it by bus activation
 * (see ctl_new_call()), and map waits for its name. */
static int map_new_call(Map *m, const char *path, const char *interface, const char *member,
                        sd_bus_message **ret) {
        return ctl_new_call(m->ctl, path, interface, member, !m->seen_leave, ret);
}

/* A call about the job at path, as sd_bus_call_method_async() makes one; no reply is wanted when
 * callback is NULL. */
static int map_call_job(Map *m, sd_bus_slot **slot, const char *path, const char *interface,
                        const char *member, sd_bus_message_handler_t callback, void *userdata,
                        const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        va_list ap;
        int r;

        r = map_new_call(m, path, interface, member, &msg);
        if (r < 0)
                return r;
        if (types && types[0]) {
                va_start(ap, types);
                r = sd_bus_message_appendv(msg, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }
        if (!callback) {
                r = sd_bus_message_set_expect_reply(msg, false);
                if (r < 0)
                        return r;
                return sd_bus_send(m->ctl->bus, msg, NULL);
        }
        return sd_bus_call_async(m->ctl->bus, slot, msg, callback, userdata, 0);
}

/* ---- jobs ------------------------------------------------------------------------------------------ */

static MapJob *map_job_free(MapJob *j) {
        if (!j)
                return NULL;
        sd_bus_slot_unref(j->slot);
        sd_bus_slot_unref(j->output_slot);
        closep(&j->fds[0]);
        closep(&j->fds[1]);
        sd_bus_message_unref(j->output);
        job_info_done(&j->info);
        free(j->path);
        free(j->input);
        free(j);
        return NULL;
}

/* An answer came: its call no longer counts. */
static void map_call_answered(Map *m, sd_bus_slot **slot) {
        assert(*slot && m->n_calls > 0);
        *slot = sd_bus_slot_unref(*slot);
        m->n_calls--;
}

static void active_add(Map *m, MapJob *j) {
        assert(m->n_active < MAP_WINDOW);
        j->active_index = m->n_active;
        m->active[m->n_active++] = j;
}

static void active_remove(Map *m, MapJob *j) {
        assert(j->active_index < m->n_active && m->active[j->active_index] == j);
        m->active[j->active_index] = m->active[--m->n_active];
        m->active[j->active_index]->active_index = j->active_index;
}

/* The job is over for map: printed, or dropped. */
static void map_job_done(MapJob *j) {
        Map *m = j->map;

        if (j->phase != MAP_PENDING)
                active_remove(m, j);
        else
                m->n_pending--;
        m->jobs[j->seq - 1] = NULL;
        map_job_free(j);
}

static int map_add_line(Map *m, const char *line, size_t size) {
        MapJob *j;

        if (m->n_jobs == m->n_allocated) {
                size_t n = m->n_allocated ? m->n_allocated * 2 : 1024;
                MapJob **l = realloc(m->jobs, n * sizeof(MapJob *));
                if (!l)
                        return -ENOMEM;
                m->jobs = l;
                m->n_allocated = n;
        }
        j = calloc(1, sizeof(MapJob));
        if (!j)
                return -ENOMEM;
        *j = (MapJob) { .map = m, .seq = m->n_jobs + 1, .phase = MAP_PENDING, .fds = { -EBADF, -EBADF } };
        /* A NUL cuts the line here; such a line is refused when it is submitted (see map_submit). */
        j->input = memchr(line, 0, size) ? NULL : strndup(line, size);
        if (!j->input && !memchr(line, 0, size)) {
                free(j);
                return -ENOMEM;
        }
        m->jobs[m->n_jobs++] = j;
        m->n_pending++;
        return 0;
}

/* Reads what stdin has now (one read) and adds its whole lines; a last line without a newline counts. */
static int map_read_input(Map *m) {
        size_t start = 0;
        ssize_t n;
        int r;

        if (m->buf_allocated - m->buf_size < READ_CHUNK) {
                size_t a = m->buf_allocated * 2 + READ_CHUNK;
                char *b = realloc(m->buf, a);
                if (!b)
                        return -ENOMEM;
                m->buf = b;
                m->buf_allocated = a;
        }
        n = read(m->input_fd, m->buf + m->buf_size, m->buf_allocated - m->buf_size);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return 0;
        if (n < 0 && errno != EBADF) /* no stdin at all reads as empty input */
                return -errno;
        if (n <= 0) {
                m->eof = true;
                m->input_source = sd_event_source_disable_unref(m->input_source);
                if (m->buf_size > 0) {
                        r = map_add_line(m, m->buf, m->buf_size);
                        if (r < 0)
                                return r;
                }
                m->buf_size = 0;
                return 0;
        }
        for (size_t i = m->buf_size; i < m->buf_size + (size_t) n; i++) {
                if (m->buf[i] != '\n')
                        continue;
                r = map_add_line(m, m->buf + start, i - start);
                if (r < 0)
                        return r;
                start = i + 1;
        }
        m->buf_size += (size_t) n - start;
        memmove(m->buf, m->buf + start, m->buf_size);
        return 0;
}

/* ---- ending ----------------------------------------------------------------------------------------- */

static int map_result(Map *m) {
        if (m->signal)
                return 128 + m->signal;
        if (m->error_exit)
                return m->error_exit;
        if (m->halt_exit)
                return m->halt_exit;
        return (int) (m->n_failed < MAP_FAILED_MAX ? m->n_failed : MAP_FAILED_MAX);
}

/* The loop ends once every line is in and printed, or, when stopping, once every job out has ended. */
static void map_check_done(Map *m) {
        if (m->n_active > 0)
                return;
        if (!m->stopping && (!m->eof || m->n_pending > 0))
                return;
        (void) sd_event_exit(m->event, map_result(m));
}

/* No more Submits; the jobs out are cancelled, and still released once they have ended. */
static void map_stop(Map *m) {
        if (m->stopping)
                return;
        m->stopping = true;
        m->input_source = sd_event_source_disable_unref(m->input_source);
        for (size_t i = 0; i < m->n_active; i++) {
                MapJob *j = m->active[i];

                if (j->phase == MAP_SUBMITTING)
                        j->cancelled = true; /* once its Submit is answered */
                else if (j->phase == MAP_RUNNING || j->phase == MAP_CHECKING) {
                        j->cancelled = true;
                        /* No reply wanted: a job that ended meanwhile answers NotRunning, which changes
                         * nothing. */
                        (void) map_call_job(m, NULL, j->path, PROCPOOL_JOB_INTERFACE, "Cancel", NULL, NULL,
                                            NULL);
                }
        }
}

/* procpoolctl itself failed: the error is printed, the jobs out are cancelled. */
static void map_fail(Map *m, int exit) {
        if (!m->error_exit)
                m->error_exit = exit ?: EXIT_MAP_ERROR;
        map_stop(m);
}

/* ---- printing ---------------------------------------------------------------------------------------- */

static int copy_fd(int from, int to, uint64_t *ret_copied) {
        static uint8_t buf[COPY_CHUNK];
        uint64_t copied = 0;

        for (;;) {
                ssize_t n = read(from, buf, sizeof buf);
                int r;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                r = ctl_write_all(to, buf, (size_t) n);
                if (r < 0)
                        return r;
                copied += (uint64_t) n;
        }
        if (ret_copied)
                *ret_copied = copied;
        return 0;
}

static int read_fd_all(int fd, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, allocated = 0;

        for (;;) {
                ssize_t n;

                if (allocated - size < READ_CHUNK) {
                        char *b = realloc(buf, allocated * 2 + READ_CHUNK);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                        allocated = allocated * 2 + READ_CHUNK;
                }
                n = read(fd, buf + size, allocated - size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

/* The job's two streams, read whole: from OpenOutput's fds, or GetOutput's reply. */
static int map_job_read_output(MapJob *j, char *ret_data[2], size_t ret_size[2]) {
        int r;

        for (int i = 0; i < 2; i++) {
                if (j->output) {
                        const void *d;
                        size_t n;

                        r = sd_bus_message_read_array(j->output, 'y', &d, &n);
                        if (r < 0)
                                return r;
                        ret_data[i] = n > 0 ? memdup(d, n) : NULL;
                        if (n > 0 && !ret_data[i])
                                return -ENOMEM;
                        ret_size[i] = n;
                } else if (j->fds[i] >= 0) {
                        r = read_fd_all(j->fds[i], &ret_data[i], &ret_size[i]);
                        if (r < 0)
                                return r;
                } else
                        ret_data[i] = NULL, ret_size[i] = 0;
        }
        return 0;
}

/* --json: one object a line. The streams are text with each byte that is not UTF-8 as \udcXX, as Python's
 * surrogateescape reads it back. */
static int map_job_print_json(MapJob *j) {
        char *data[2] = {};
        size_t size[2] = {};
        int r;

        r = map_job_read_output(j, data, size);
        if (r >= 0) {
                printf("{\"seq\":%zu,\"id\":%" PRIu64 ",\"input\":", j->seq, j->id);
                json_write_string(stdout, j->input);
                fputs(",\"state\":", stdout);
                json_write_string(stdout, j->info.state);
                printf(",\"returncode\":%" PRIi32 ",\"stdout\":", j->info.returncode);
                json_write_text(stdout, data[0], size[0]);
                fputs(",\"stderr\":", stdout);
                json_write_text(stdout, data[1], size[1]);
                fputs(",\"error\":", stdout);
                json_write_string(stdout, j->info.error);
                fputs("}\n", stdout);
                if (fflush(stdout) != 0)
                        r = -errno;
        }
        free(data[0]);
        free(data[1]);
        return r;
}

/* Its stdout as one block on ours, then its stderr on ours. */
static int map_job_print(MapJob *j) {
        int r;

        if (j->map->ctl->json)
                return map_job_print_json(j);
        for (int i = 0; i < 2; i++) {
                int out = i == 0 ? STDOUT_FILENO : STDERR_FILENO;

                if (j->output)
                        r = ctl_write_byte_array(j->output, out);
                else if (j->fds[i] >= 0)
                        r = copy_fd(j->fds[i], out, NULL);
                else
                        r = 0;
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Whether the job's output is printed: not for a job map cancelled itself, unless it ended otherwise. */
static bool map_job_printable(MapJob *j) {
        return !j->fetch_failed && !(j->cancelled && streq(j->info.state, PROCPOOL_STATE_CANCELLED));
}

static void map_print_one(MapJob *j) {
        Map *m = j->map;
        int r;

        if (map_job_printable(j) && !m->error_exit) {
                r = map_job_print(j);
                if (r < 0) {
                        (void) ctl_log_error(m->ctl, NULL, r, "Failed to write the output of line %zu",
                                             j->seq);
                        map_fail(m, EXIT_MAP_ERROR);
                }
        }
        map_job_done(j);
}

/* --keep-order: prints the ready jobs at the head of the input, in order. */
static void map_print_in_order(Map *m) {
        while (m->next_print < m->n_jobs) {
                MapJob *j = m->jobs[m->next_print];

                if (j && j->phase == MAP_PENDING && m->stopping)
                        map_job_done(j); /* never to be submitted */
                else if (j && j->phase != MAP_READY)
                        return;
                else if (j)
                        map_print_one(j);
                m->next_print++;
        }
}

/* ---- the job log --------------------------------------------------------------------------------------- */

static void joblog_write(Map *m, MapJob *j) {
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *command = NULL, *safe = NULL;
        uint64_t received = 0, runtime = 0, started = j->info.started_at;
        int32_t rc = j->info.returncode;
        int exitval, sig;
        struct stat st;

        if (!m->joblog)
                return;
        if (j->output) {
                const void *d;
                size_t n;
                if (sd_bus_message_read_array(j->output, 'y', &d, &n) >= 0)
                        received = n;
                (void) sd_bus_message_rewind(j->output, true);
        } else if (j->fds[0] >= 0 && fstat(j->fds[0], &st) >= 0)
                received = (uint64_t) st.st_size;
        if (j->info.started_at > 0 && j->info.finished_at > j->info.started_at)
                runtime = j->info.finished_at - j->info.started_at;
        /* As GNU parallel: the exit code, or the signal that ended it; -1 for a job that never ran. */
        if (j->info.started_at == 0)
                exitval = -1, sig = 0;
        else if (rc < 0)
                exitval = 0, sig = -rc;
        else
                exitval = rc, sig = 0;
        argv = map_argv(m, j->input);
        command = argv ? format_command_line(argv) : NULL;
        /* One line per job, whatever the command holds: a tab or newline in it would make more. */
        safe = command ? escape_for_terminal(command) : NULL;
        fprintf(m->joblog,
                "%zu\tprocpool\t%" PRIu64 ".%03" PRIu64 "\t%" PRIu64 ".%03" PRIu64 "\t0\t%" PRIu64
                "\t%d\t%d\t%s\n",
                j->seq, started / 1000000, started % 1000000 / 1000, runtime / 1000000,
                runtime % 1000000 / 1000, received, exitval, sig, safe ? safe : "");
        (void) fflush(m->joblog);
}

/* ---- a job's end ----------------------------------------------------------------------------------------- */

static bool map_job_failed(MapJob *j) {
        return j->fetch_failed || !streq(j->info.state, PROCPOOL_STATE_EXITED) || j->info.returncode != 0;
}

static int map_job_check(MapJob *j);

/* A call got no answer because procpoolctl's connection to procpoold ended or procpoold left the bus.
 * On a direct connection, its Disconnected comes after every such answer and takes map to the bus. On
 * the bus, with no owner of the name (as the error or NameOwnerChanged said) map waits for the next
 * one; else the name has a new owner already, or will have by the time a call reaches it (the bus let
 * the old one go with its calls at once). */
static void map_daemon_left(Map *m, const sd_bus_error *e) {
        m->seen_leave = true;
        if (m->ctl->direct) {
                m->away = true;
                return;
        }
        if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                free(m->owner);
                m->owner = NULL;
        }
        m->away = !m->owner || !m->owner[0];
}

/* Whether a call could not be sent because the direct connection closed (procpoold re-executed or
 * stopped): it is sent again once procpoold is back, as one it did not answer. */
static bool map_send_lost(Map *m) {
        /* A write that found the peer gone has closed the connection (sd-bus). */
        if (!m->ctl->direct || sd_bus_is_open(m->ctl->bus) > 0)
                return false;
        m->away = m->seen_leave = true;
        return true;
}

/* procpoold left before it answered what the job's state or output is: the answers in hand are dropped,
 * and the job is asked about again once procpoold is back, as one that may have ended meanwhile. */
static void map_job_lost(MapJob *j) {
        Map *m = j->map;

        if (j->slot || j->output_slot)
                return;
        j->lost = false;
        closep(&j->fds[0]);
        closep(&j->fds[1]);
        j->output = sd_bus_message_unref(j->output);
        job_info_done(&j->info);
        j->info = (JobInfo) {};
        j->phase = MAP_RUNNING;
        if (!m->away)
                (void) map_job_check(j);
}

/* Both answers are in: the job is released (its output is in hand), logged, counted and printed. */
static void map_job_ready(MapJob *j) {
        Map *m = j->map;

        if (j->slot || j->output_slot)
                return;
        if (j->lost)
                return map_job_lost(j);
        j->phase = MAP_READY;
        /* No reply wanted: the job is forgotten whatever comes of it (released meanwhile by retention). */
        (void) map_call_job(m, NULL, j->path, PROCPOOL_JOB_INTERFACE, "Release", NULL, NULL, NULL);
        if (!j->fetch_failed)
                joblog_write(m, j);
        if (map_job_failed(j) && !(j->cancelled && streq(j->info.state, PROCPOOL_STATE_CANCELLED))) {
                m->n_failed++;
                if (m->ctl->halt_on_error && !m->stopping) {
                        int code = returncode_to_exit(j->info.returncode);
                        /* A job that failed without a code of its own (never ran, say): 1. */
                        m->halt_exit = code > 0 ? code : EXIT_FAILED;
                        map_stop(m);
                }
        }
        if (m->ctl->keep_order)
                map_print_in_order(m);
        else
                map_print_one(j);
}

static void map_job_fetch_failed(MapJob *j, const sd_bus_error *e, int r, const char *what) {
        if (!j->fetch_failed)
                (void) ctl_log_error(j->map->ctl, e, r, "Failed to get the %s of job %" PRIu64 " (line %zu)",
                                     what, j->id, j->seq);
        j->fetch_failed = true;
}

static int on_props_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        MapJob *j = userdata;
        Map *m = j->map; /* the job may be printed and freed below */
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        bool left = e && ctl_error_is_departure(e);
        int r = 0;

        map_call_answered(m, &j->slot);
        if (left) {
                map_daemon_left(m, e);
                j->lost = true;
        } else if (!e)
                r = job_info_read_properties(reply, &j->info);
        if ((e && !left) || r < 0)
                map_job_fetch_failed(j, e, r < 0 ? r : -EIO, "state");
        map_job_ready(j);
        map_fill(m);
        return 0;
}

static int on_returncode_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        MapJob *j = userdata;
        Map *m = j->map; /* the job may be printed and freed below */
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        bool left = e && ctl_error_is_departure(e);
        int r = 0;

        map_call_answered(m, &j->slot);
        if (left) {
                map_daemon_left(m, e);
                j->lost = true;
        } else if (!e)
                r = sd_bus_message_read(reply, "v", "i", &j->info.returncode);
        if ((e && !left) || r < 0)
                map_job_fetch_failed(j, e, r < 0 ? r : -EIO, "return code");
        map_job_ready(j);
        map_fill(m);
        return 0;
}

static int on_output_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        MapJob *j = userdata;
        Map *m = j->map; /* the job may be printed and freed below */
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        int r = 0;

        map_call_answered(m, &j->output_slot);
        if (e && ctl_error_is_departure(e)) {
                map_daemon_left(m, e);
                j->lost = true;
                e = NULL;
        } else if (!e && m->fds_ok)
                for (int i = 0; i < 2 && r >= 0; i++) {
                        int fd;

                        r = sd_bus_message_read_basic(reply, 'h', &fd);
                        /* The message owns the fds it carries: the job keeps copies of its own. */
                        if (r >= 0) {
                                j->fds[i] = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                                if (j->fds[i] < 0)
                                        r = -errno;
                        }
                }
        else if (!e)
                j->output = sd_bus_message_ref(reply);
        if (e || r < 0)
                map_job_fetch_failed(j, e, r < 0 ? r : -EIO, "output");
        map_job_ready(j);
        map_fill(m);
        return 0;
}

/* The job has ended: its properties (state, return code, times) and its output are asked together. With
 * the state JobFinished said and neither --joblog nor --json, the return code alone is asked: JobFinished
 * has it too, but as 0 on the system instance, where it is private. */
static void map_job_fetch(MapJob *j) {
        Map *m = j->map;
        int r;

        if (j->phase == MAP_ENDED)
                m->n_ended--;
        j->phase = MAP_FETCHING;
        if (j->info.state && !m->ctl->joblog && !m->ctl->json) {
                r = map_call_job(m, &j->slot, j->path, "org.freedesktop.DBus.Properties", "Get",
                                 on_returncode_reply, j, "ss", PROCPOOL_JOB_INTERFACE, "ReturnCode");
        } else
                r = map_call_job(m, &j->slot, j->path, "org.freedesktop.DBus.Properties", "GetAll",
                                 on_props_reply, j, "s", PROCPOOL_JOB_INTERFACE);
        if (r < 0 && map_send_lost(m))
                j->lost = true;
        else if (r < 0)
                map_job_fetch_failed(j, NULL, r, "state");
        else
                m->n_calls++;
        r = map_call_job(m, &j->output_slot, j->path, PROCPOOL_JOB_INTERFACE,
                         m->fds_ok ? "OpenOutput" : "GetOutput", on_output_reply, j, NULL);
        if (r < 0 && map_send_lost(m))
                j->lost = true;
        else if (r < 0)
                map_job_fetch_failed(j, NULL, r, "output");
        else
                m->n_calls++;
        map_job_ready(j);
}

static int on_check_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        MapJob *j = userdata;
        Map *m = j->map; /* the job may be printed and freed below */
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        JobInfo info = {};

        map_call_answered(m, &j->slot);
        if (e && ctl_error_is_departure(e)) {
                /* Asked again once procpoold is back. */
                map_daemon_left(m, e);
                j->phase = MAP_RUNNING;
                if (!m->away)
                        (void) map_job_check(j);
                map_fill(m);
                return 0;
        }
        if (e || job_info_read_properties(reply, &info) < 0) {
                job_info_done(&info);
                /* Gone already: released by someone else. What is left to know is asked once more. */
                map_job_fetch(j);
                map_fill(m);
                return 0;
        }
        if (ctl_state_is_final(info.state))
                map_job_fetch(j);
        else if (j->end_seen)
                (void) map_job_check(j);
        else
                j->phase = MAP_RUNNING;
        job_info_done(&info);
        map_fill(m);
        return 0;
}

/* Asks the job's state: for a job whose JobFinished may have come before Submit's answer named it, and
 * after procpoold came back on the bus. Its end, if it has not come, comes after the answer. */
static int map_job_check(MapJob *j) {
        int r;

        assert(!j->slot);
        if (j->map->away) {
                j->phase = MAP_RUNNING; /* asked once procpoold is back */
                return 0;
        }
        j->phase = MAP_CHECKING;
        j->end_seen = false;
        r = map_call_job(j->map, &j->slot, j->path, "org.freedesktop.DBus.Properties", "GetAll",
                         on_check_reply, j, "s", PROCPOOL_JOB_INTERFACE);
        if (r < 0 && map_send_lost(j->map))
                j->phase = MAP_RUNNING; /* asked once procpoold is back */
        else if (r < 0)
                map_job_fetch(j);
        else
                j->map->n_calls++;
        return 0;
}

static int match_job_finished(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Map *m = userdata;
        const char *path, *state;
        int32_t rc;
        uint64_t id;

        if (sd_bus_message_read(msg, "tosi", &id, &path, &state, &rc) < 0)
                return 0;
        /* A job ended: there may be room in the queue again. */
        if (m->queue_full) {
                m->queue_full = false;
                (void) sd_event_source_set_enabled(m->retry_timer, SD_EVENT_OFF);
        }
        for (size_t i = 0; i < m->n_active; i++) {
                MapJob *j = m->active[i];

                if (j->id != id)
                        continue;
                if (j->phase == MAP_RUNNING) {
                        /* The state is public; the return code is asked (see map_job_fetch()). */
                        j->info.state = strdup(state);
                        j->phase = MAP_ENDED;
                        m->n_ended++;
                } else if (j->phase == MAP_CHECKING)
                        j->end_seen = true;
                map_fill(m);
                return 0;
        }
        m->n_unknown_finished++;
        map_fill(m);
        return 0;
}

static int map_watch(Map *m);

/* procpoold is back: jobs that ended while it was away are asked about, and lines are sent again. */
static void map_back(Map *m) {
        m->away = false;
        for (size_t i = 0; i < m->n_active; i++) {
                MapJob *j = m->active[i];

                if (j->phase != MAP_RUNNING)
                        continue;
                /* A Cancel sent while procpoold was away went nowhere. */
                if (j->cancelled)
                        (void) map_call_job(m, NULL, j->path, PROCPOOL_JOB_INTERFACE, "Cancel", NULL, NULL,
                                            NULL);
                (void) map_job_check(j);
        }
}

/* procpoold took its name on the bus (it re-executed, or started again). */
static int match_name_owner_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Map *m = userdata;
        const char *name, *old_owner, *new_owner;
        char *o;

        if (sd_bus_message_read(msg, "sss", &name, &old_owner, &new_owner) < 0 ||
            !streq(name, PROCPOOL_BUS_NAME))
                return 0;
        /* A new procpoold knows none of its predecessor's subscribers. */
        if (new_owner[0])
                (void) ctl_subscribe_again(m->ctl);
        bool back = new_owner[0] && !streq(new_owner, m->owner);
        o = strdup(new_owner);
        if (o) {
                free(m->owner);
                m->owner = o;
        }
        m->away = !new_owner[0];
        m->seen_leave = m->seen_leave || !new_owner[0];
        if (back)
                map_back(m);
        map_fill(m);
        return 0;
}

/* map goes on over the bus, where the name tells when procpoold is back. */
static int on_follow_to_bus(sd_event_source *s, void *userdata) {
        Map *m = userdata;
        int r;

        m->owner_match = sd_bus_slot_unref(m->owner_match);
        m->finished_match = sd_bus_slot_unref(m->finished_match);
        m->disconnected_match = sd_bus_slot_unref(m->disconnected_match);
        r = ctl_leave_direct(m->ctl, m->event);
        if (r >= 0) {
                m->fds_ok = sd_bus_can_send(m->ctl->bus, SD_BUS_TYPE_UNIX_FD) > 0;
                r = map_watch(m);
        }
        if (r < 0) {
                (void) ctl_log_error(m->ctl, NULL, r, "Failed to follow procpoold on the bus");
                return sd_event_exit(m->event, EXIT_MAP_ERROR);
        }
        if (m->owner && m->owner[0])
                map_back(m);
        map_fill(m);
        return 0;
}

/* The direct connection closed: procpoold re-executed (it closes direct connections, and keeps its jobs)
 * or stopped. The calls out on it have had their answers already (no reply): sd-bus sends Disconnected
 * last. Its matches are dropped once sd-bus is done running them: on_follow_to_bus() runs next. */
static int match_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Map *m = userdata;
        int r;

        m->away = m->seen_leave = true;
        r = sd_event_add_defer(m->event, NULL, on_follow_to_bus, m);
        if (r < 0) {
                (void) ctl_log_error(m->ctl, NULL, r, "Failed to follow procpoold on the bus");
                return sd_event_exit(m->event, EXIT_MAP_ERROR);
        }
        return 0;
}

/* ---- submitting ----------------------------------------------------------------------------------------- */

/* The line was not taken: it is pending again, and is sent again. */
static void map_job_unsubmit(Map *m, MapJob *j) {
        active_remove(m, j);
        j->phase = MAP_PENDING;
        m->n_pending++;
        if (j->seq - 1 < m->next_submit)
                m->next_submit = j->seq - 1;
}

/* QueueFull: the job is back in line, sent again once a job ended; one at a time until one is taken. */
static void map_job_requeue(Map *m, MapJob *j) {
        map_job_unsubmit(m, j);
        m->submit_limit = 1;
        if (!m->queue_full) {
                m->queue_full = true;
                (void) sd_event_source_set_time_relative(m->retry_timer, QUEUE_FULL_RETRY_USEC);
                (void) sd_event_source_set_enabled(m->retry_timer, SD_EVENT_ONESHOT);
        }
}

/* The daemon took the job as path: it is cancelled if map is stopping, and its end is watched. */
static int map_job_submitted(Map *m, MapJob *j, const char *path) {
        j->path = strdup(path);
        if (!j->path)
                return -ENOMEM;
        j->id = job_path_to_id(j->path);
        if (m->stopping) {
                j->cancelled = true;
                (void) map_call_job(m, NULL, j->path, PROCPOOL_JOB_INTERFACE, "Cancel", NULL, NULL, NULL);
        }
        /* A job of an id not known yet ended while this Submit was out: it may have been this one. */
        if (m->n_unknown_finished != j->unknown_at_send)
                (void) map_job_check(j);
        else
                j->phase = MAP_RUNNING;
        return 0;
}

static void map_grow_submit_limit(Map *m) {
        if (m->submit_limit < MAP_WINDOW)
                m->submit_limit = m->submit_limit * 2 < MAP_WINDOW ? m->submit_limit * 2 : MAP_WINDOW;
}

static int on_submit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        MapJob *j = userdata;
        Map *m = j->map;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        const char *path;
        int r;

        map_call_answered(m, &j->slot);
        m->n_submitting--;
        if (e && sd_bus_error_has_name(e, PROCPOOL_ERROR_QUEUE_FULL) && !m->stopping) {
                map_job_requeue(m, j);
                map_fill(m);
                return 0;
        }
        if (e && ctl_error_is_departure(e) && !m->stopping) {
                /* As for SubmitMany: not read, so not taken; sent again once procpoold is back. */
                map_daemon_left(m, e);
                map_job_unsubmit(m, j);
                map_fill(m);
                return 0;
        }
        if (e) {
                /* No job: nothing to cancel or release. */
                if (!m->stopping) {
                        (void) ctl_log_error(m->ctl, e, -EIO, "Failed to submit line %zu", j->seq);
                        map_fail(m, EXIT_MAP_ERROR);
                }
                map_job_done(j);
                map_fill(m);
                return 0;
        }
        r = sd_bus_message_read(reply, "o", &path);
        if (r >= 0)
                r = map_job_submitted(m, j, path);
        if (r < 0) {
                (void) ctl_log_error(m->ctl, NULL, r, "Failed to read the reply of Submit");
                map_fail(m, EXIT_MAP_ERROR);
                map_job_done(j);
                map_fill(m);
                return 0;
        }
        map_grow_submit_limit(m);
        map_fill(m);
        return 0;
}

/* The argv of a line, or NULL with -EINVAL for a line D-Bus cannot carry: not UTF-8, or holding a NUL. */
static int map_job_argv(Map *m, MapJob *j, char ***ret) {
        _cleanup_strv_free_ char **argv = NULL;

        if (!j->input)
                return -EINVAL;
        argv = map_argv(m, j->input);
        if (!argv)
                return -ENOMEM;
        for (char **a = argv; *a; a++)
                if (!utf8_is_valid(*a))
                        return -EINVAL;
        *ret = TAKE_PTR(argv);
        return 0;
}

/* Appends --pool's option and the options every job shares. */
static int map_append_options(Map *m, sd_bus_message *msg) {
        int r;

        r = sd_bus_message_open_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_rewind(m->options, true);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m->options, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_copy(msg, m->options, true);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(msg);
}

/* Builds the Submit of a line: its argv, then the options. */
static int map_new_submit(Map *m, MapJob *j, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        int r;

        r = map_job_argv(m, j, &argv);
        if (r < 0)
                return r;
        r = map_new_call(m, PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE, "Submit", &msg);
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(msg, argv);
        if (r < 0)
                return r;
        r = map_append_options(m, msg);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(msg);
        return 0;
}

/* A line D-Bus cannot carry is not run, and counts as failed. */
static void map_job_unsendable(Map *m, MapJob *j) {
        if (m->ctl->json)
                ctl_json_error("org.freedesktop.DBus.Error.InvalidArgs",
                               "Line is not UTF-8 text, or holds a NUL byte: not run");
        else
                fprintf(stderr, "Line %zu is not UTF-8 text, or holds a NUL byte: not run.\n", j->seq);
        m->n_failed++;
        if (m->ctl->halt_on_error) {
                m->halt_exit = EXIT_FAILED;
                map_stop(m);
        }
        map_job_done(j);
}

/* The job's call went out: it is active, and counts as submitting. */
static void map_job_sent(Map *m, MapJob *j) {
        j->phase = MAP_SUBMITTING;
        j->unknown_at_send = m->n_unknown_finished;
        m->n_pending--;
        m->n_submitting++;
        active_add(m, j);
}

static void map_submit(Map *m, MapJob *j) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        int r;

        r = map_new_submit(m, j, &msg);
        if (r == -EINVAL) {
                map_job_unsendable(m, j);
                return;
        }
        if (r >= 0) {
                r = sd_bus_call_async(m->ctl->bus, &j->slot, msg, on_submit_reply, j, UINT64_MAX);
                if (r >= 0) {
                        m->n_calls++;
                        map_job_sent(m, j);
                        return;
                }
                if (map_send_lost(m))
                        return; /* pending still */
        }
        (void) ctl_log_error(m->ctl, NULL, r, "Failed to submit line %zu", j->seq);
        map_fail(m, EXIT_MAP_ERROR);
}

/* ---- SubmitMany: the lines of a chunk in one call ------------------------------------------------------ */

static MapBatch *map_batch_free(MapBatch *b) {
        if (!b)
                return NULL;
        sd_bus_slot_unref(b->slot);
        free(b);
        return NULL;
}

static void map_batch_unlink(Map *m, MapBatch *b) {
        for (MapBatch **p = &m->batches; *p; p = &(*p)->next)
                if (*p == b) {
                        *p = b->next;
                        break;
                }
}

/* The line an error of SubmitMany names ("argvs[3]: ..."), or the batch's first. */
static size_t map_batch_error_line(MapBatch *b, const sd_bus_error *e) {
        unsigned long i;

        if (e->message && sscanf(e->message, "argvs[%lu]", &i) == 1 && i < b->n)
                return b->jobs[i]->seq;
        return b->jobs[0]->seq;
}

static int on_submit_many_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        MapBatch *b = userdata;
        Map *m = b->map;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        const char *path;
        int r;

        map_call_answered(m, &b->slot);
        map_batch_unlink(m, b);
        m->n_submitting -= b->n;
        if (e && sd_bus_error_has_name(e, SD_BUS_ERROR_UNKNOWN_METHOD) && !m->stopping) {
                /* An older procpoold: these lines and every next one go with Submit. */
                m->no_many = true;
                for (size_t i = 0; i < b->n; i++)
                        map_job_unsubmit(m, b->jobs[i]);
                goto finish;
        }
        if (e && ctl_error_is_departure(e) && !m->stopping) {
                /* procpoold left before it read the call (it answers what it read before it goes): no
                 * job was made, and the lines go again once it is back. */
                map_daemon_left(m, e);
                for (size_t i = 0; i < b->n; i++)
                        map_job_unsubmit(m, b->jobs[i]);
                goto finish;
        }
        if (e && sd_bus_error_has_name(e, PROCPOOL_ERROR_QUEUE_FULL) && !m->stopping) {
                /* None of them was queued. */
                for (size_t i = 0; i < b->n; i++)
                        map_job_requeue(m, b->jobs[i]);
                goto finish;
        }
        if (e) {
                /* No job: nothing to cancel or release. */
                if (!m->stopping) {
                        (void) ctl_log_error(m->ctl, e, -EIO, "Failed to submit line %zu",
                                             map_batch_error_line(b, e));
                        map_fail(m, EXIT_MAP_ERROR);
                }
                for (size_t i = 0; i < b->n; i++)
                        map_job_done(b->jobs[i]);
                goto finish;
        }
        r = sd_bus_message_enter_container(reply, 'a', "o");
        for (size_t i = 0; i < b->n; i++) {
                MapJob *j = b->jobs[i];

                if (r >= 0) {
                        r = sd_bus_message_read_basic(reply, 'o', &path);
                        if (r == 0)
                                r = -EBADMSG; /* fewer paths than lines */
                }
                if (r >= 0)
                        r = map_job_submitted(m, j, path);
                if (r < 0)
                        map_job_done(j);
        }
        if (r < 0) {
                (void) ctl_log_error(m->ctl, NULL, r, "Failed to read the reply of SubmitMany");
                map_fail(m, EXIT_MAP_ERROR);
        } else
                map_grow_submit_limit(m);
finish:
        map_batch_free(b);
        map_fill(m);
        return 0;
}

/* Sends up to max pending lines in one SubmitMany; returns how many lines it took (sent, or not run
 * because D-Bus cannot carry them), 0 when none is pending. */
static size_t map_submit_batch(Map *m, size_t max) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        MapBatch *b;
        size_t taken = 0;
        int r;

        b = calloc(1, sizeof(MapBatch));
        if (!b) {
                r = -ENOMEM;
                goto fail;
        }
        b->map = m;
        r = map_new_call(m, PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE, "SubmitMany", &msg);
        if (r >= 0)
                r = sd_bus_message_open_container(msg, 'a', "as");
        while (r >= 0 && b->n < max && !m->stopping) {
                _cleanup_strv_free_ char **argv = NULL;
                MapJob *j = map_next_pending(m);

                if (!j)
                        break;
                taken++;
                r = map_job_argv(m, j, &argv);
                if (r == -EINVAL) {
                        map_job_unsendable(m, j);
                        r = 0;
                        continue;
                }
                if (r >= 0)
                        r = sd_bus_message_append_strv(msg, argv);
                if (r >= 0) {
                        /* Out of the pending lines, so that the next one is found; sent below. */
                        j->phase = MAP_SUBMITTING;
                        b->jobs[b->n++] = j;
                }
        }
        if (r >= 0 && (b->n == 0 || m->stopping)) {
                /* None, or a line not run halted map: nothing more goes out. */
                for (size_t i = 0; i < b->n; i++)
                        b->jobs[i]->phase = MAP_PENDING;
                free(b);
                return taken;
        }
        if (r >= 0)
                r = sd_bus_message_close_container(msg);
        if (r >= 0)
                r = map_append_options(m, msg);
        if (r >= 0)
                r = sd_bus_call_async(m->ctl->bus, &b->slot, msg, on_submit_many_reply, b, UINT64_MAX);
        if (r < 0)
                goto fail;
        m->n_calls++;
        for (size_t i = 0; i < b->n; i++)
                map_job_sent(m, b->jobs[i]);
        b->next = m->batches;
        m->batches = b;
        return taken;
fail:
        /* Pending again, and found again: map_next_pending() went past them. */
        if (b)
                for (size_t i = 0; i < b->n; i++) {
                        b->jobs[i]->phase = MAP_PENDING;
                        if (b->jobs[i]->seq - 1 < m->next_submit)
                                m->next_submit = b->jobs[i]->seq - 1;
                }
        free(b);
        if (map_send_lost(m))
                return taken; /* pending still */
        (void) ctl_log_error(m->ctl, NULL, r, "Failed to submit line %zu",
                             taken > 0 && m->next_submit < m->n_jobs ? m->next_submit + 1 : m->n_jobs);
        map_fail(m, EXIT_MAP_ERROR);
        return taken;
}

static MapJob *map_next_pending(Map *m) {
        for (size_t i = m->next_submit; i < m->n_jobs; i++) {
                MapJob *j = m->jobs[i];

                if (j && j->phase == MAP_PENDING)
                        return j;
                if (i == m->next_submit)
                        m->next_submit++;
        }
        return NULL;
}

/* Sends what the window has room for, reads more input when it is needed, and ends the loop when all is
 * done. Runs after every event. */
static void map_fill(Map *m) {
        int r;

        /* Ended jobs first: they make room in the window. */
        for (size_t i = m->n_active; i > 0 && m->n_ended > 0 && !m->away && m->n_calls + 2 <= MAP_CALLS_MAX;
             i--)
                if (i - 1 < m->n_active && m->active[i - 1]->phase == MAP_ENDED)
                        map_job_fetch(m->active[i - 1]);

        while (!m->stopping) {
                MapJob *j;

                if (m->n_active >= MAP_WINDOW || m->queue_full || m->away ||
                    m->n_submitting >= m->submit_limit || m->n_calls >= MAP_CALLS_MAX)
                        break;
                if (!m->no_many) {
                        size_t room = MIN(MAP_WINDOW - m->n_active, m->submit_limit - m->n_submitting);

                        if (map_submit_batch(m, MIN(room, (size_t) MAP_BATCH_MAX)) > 0)
                                continue;
                } else {
                        j = map_next_pending(m);
                        if (j) {
                                map_submit(m, j);
                                continue;
                        }
                }
                if (m->eof || m->input_source)
                        break;
                /* stdin cannot be polled (a file): it never blocks, read it as needed */
                r = map_read_input(m);
                if (r < 0) {
                        (void) ctl_log_error(m->ctl, NULL, r, "Failed to read standard input");
                        map_fail(m, EXIT_MAP_ERROR);
                }
        }
        /* A pollable stdin is read while fewer lines than a window wait. */
        if (m->input_source)
                (void) sd_event_source_set_enabled(m->input_source, !m->stopping && m->n_pending < MAP_WINDOW
                                                                            ? SD_EVENT_ON
                                                                            : SD_EVENT_OFF);
        if (m->ctl->keep_order && m->stopping)
                map_print_in_order(m);
        map_check_done(m);
}

static int on_input(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Map *m = userdata;
        int r;

        r = map_read_input(m);
        if (r < 0) {
                (void) ctl_log_error(m->ctl, NULL, r, "Failed to read standard input");
                map_fail(m, EXIT_MAP_ERROR);
        }
        map_fill(m);
        return 0;
}

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Map *m = userdata;

        m->queue_full = false;
        map_fill(m);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Map *m = userdata;

        if (m->signal) /* asked twice: leave; the jobs go with the connection (cancel-on-disconnect) */
                return sd_event_exit(m->event, 128 + (int) si->ssi_signo);
        m->signal = (int) si->ssi_signo;
        map_stop(m);
        map_fill(m);
        return 0;
}

/* ---- setting up --------------------------------------------------------------------------------------------- */

/* The options every job gets, built once (append_job_options() reads the working directory) and copied
 * into each Submit. Jobs are tied to this connection: a map that dies takes its jobs with it. */
static int map_build_options(Map *m) {
        int r;

        r = sd_bus_message_new_method_call(m->ctl->bus, &m->options, ctl_destination(m->ctl),
                                           PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE, "Submit");
        if (r < 0)
                return r;
        r = append_job_options(m->ctl, m->options, false, true);
        if (r < 0)
                return r;
        return sd_bus_message_seal(m->options, 1, 0);
}

/* Before the first Submit, so that no job's end can pass unheard. */
static int map_watch(Map *m) {
        int r;

        if (m->ctl->direct) {
                r = sd_bus_match_signal(m->ctl->bus, &m->disconnected_match, NULL,
                                        "/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local",
                                        "Disconnected", match_disconnected, m);
                if (r < 0)
                        return r;
        }
        return ctl_watch_daemon(m->ctl, &m->owner_match, match_name_owner_changed, &m->finished_match,
                                match_job_finished, m, &m->owner);
}

static void map_done(Map *m) {
        while (m->batches) {
                MapBatch *b = m->batches;
                m->batches = b->next;
                map_batch_free(b);
        }
        for (size_t i = 0; i < m->n_jobs; i++)
                map_job_free(m->jobs[i]);
        free(m->jobs);
        free(m->buf);
        free(m->owner);
        sd_bus_message_unref(m->options);
        sd_bus_slot_unref(m->finished_match);
        sd_bus_slot_unref(m->owner_match);
        sd_bus_slot_unref(m->disconnected_match);
        sd_event_source_disable_unref(m->input_source);
        sd_event_source_disable_unref(m->retry_timer);
        if (m->joblog)
                (void) fclose(m->joblog);
        if (m->ctl->bus)
                (void) sd_bus_detach_event(m->ctl->bus);
        sd_event_unref(m->event);
}

/* Prints what failed and returns map's exit code for procpoolctl's own failures. */
static int map_error(Ctl *c, int r, const char *what) {
        (void) ctl_log_error(c, NULL, r, "%s", what);
        return EXIT_MAP_ERROR;
}

static int map_run(Map *m) {
        Ctl *c = m->ctl;
        sigset_t mask;
        int r;

        /* Blocked before the first Submit, so that a Ctrl-C at any moment cancels what was submitted. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return map_error(c, -errno, "Failed to block signals");
        r = ctl_connect(c);
        if (r != 0)
                return EXIT_MAP_ERROR;
        m->fds_ok = sd_bus_can_send(c->bus, SD_BUS_TYPE_UNIX_FD) > 0;
        r = map_build_options(m);
        if (r < 0)
                return map_error(c, r, "Failed to build the Submit call");
        r = sd_event_default(&m->event);
        if (r >= 0)
                r = sd_bus_attach_event(c->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &m->retry_timer, CLOCK_MONOTONIC,
                                               QUEUE_FULL_RETRY_USEC, 0, on_retry_timer, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->retry_timer, SD_EVENT_OFF);
        if (r < 0)
                return map_error(c, r, "Failed to set up the event loop");
        r = map_watch(m);
        if (r < 0)
                return map_error(c, r, "Failed to watch procpoold on the bus");
        m->input_fd = STDIN_FILENO;
        r = sd_event_add_io(m->event, &m->input_source, m->input_fd, EPOLLIN, on_input, m);
        if (r == -EPERM || r == -EBADF)
                m->input_source = NULL; /* a regular file, /dev/null, or none: read as needed */
        else if (r < 0)
                return map_error(c, r, "Failed to watch standard input");

        map_fill(m);
        r = sd_event_loop(m->event);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to run the event loop"), EXIT_MAP_ERROR;
        return r;
}

int verb_map(Ctl *c, int argc, char **argv) {
        Map m = { .ctl = c, .command = argv + 1, .submit_limit = MAP_WINDOW };
        int r;

        if (c->joblog) {
                m.joblog = fopen(c->joblog, "we");
                if (!m.joblog) {
                        r = -errno;
                        (void) ctl_log_error(c, NULL, r, "Failed to open the job log '%s'", c->joblog);
                        return EXIT_MAP_ERROR;
                }
                fputs("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n",
                      m.joblog);
                (void) fflush(m.joblog);
        }
        r = map_run(&m);
        if (m.joblog && (fflush(m.joblog) != 0 || ferror(m.joblog)) && r == 0) {
                (void) ctl_log_error(c, NULL, -errno, "Failed to write the job log '%s'", c->joblog);
                r = EXIT_MAP_ERROR;
        }
        map_done(&m);
        return r;
}
