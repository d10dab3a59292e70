/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* procpool-bench: one measurement per subcommand, procpool over sd-bus, systemd's transient units and the
 * C spawn floors they are compared with; each prints one line of JSON for bench/run to collect. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "config.h"
#include "macro.h"
#include "procpool-api.h"

extern char **environ;

/* Exit status when procpoold refuses a request by its limits (InvalidArgs, LimitsExceeded): it cannot be
 * measured on this daemon, which the runner reports as such, not as a broken harness. */
#define EXIT_REFUSED 3
static bool refused = false;
/* --direct: the address is procpoold's private socket, a peer-to-peer connection on which messages carry
 * no destination and signals come only after Subscribe(). */
static bool direct = false;
#define DEST (direct ? NULL : PROCPOOL_BUS_NAME)
/* --no-subscribe: the client never calls Subscribe(), so that a daemon with --bus-signals=subscribed sends
 * it nothing; submit then learns the jobs' end from Running and Queued instead of JobFinished. */
static bool no_subscribe = false;
/* Only the commands that wait for JobFinished subscribe: a client that only calls asks for no signals,
 * which on a direct connection it then is not sent. */
static bool needs_signals = false;

#define SYSTEMD_NAME "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER_IFACE "org.freedesktop.systemd1.Manager"
/* Calls into a busy daemon may wait behind thousands of others; never let sd-bus's 25 s default cut in. */
#define CALL_TIMEOUT_USEC (600 * USEC_PER_SEC)

typedef struct {
        const char *address;
        unsigned count;
        unsigned parallel;
        unsigned window;
        unsigned batch;
        size_t size;
        pid_t pid;
} Args;

static uint64_t now_nsec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

static double percentile(const double *sorted, unsigned n, double p) {
        double idx = p * (n - 1);
        unsigned lo = (unsigned) idx;
        double frac = idx - lo;

        if (lo + 1 >= n)
                return sorted[n - 1];
        return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

/* Prints one sample set of per-operation times in microseconds; `extra` is more JSON members or "". */
static void print_latencies(const char *bench, const char *impl, double *usec, unsigned n,
                            const char *extra) {
        double sum = 0;

        qsort(usec, n, sizeof(double), cmp_double);
        for (unsigned i = 0; i < n; i++)
                sum += usec[i];
        printf("{\"bench\":\"%s\",\"impl\":\"%s\",\"count\":%u,\"min_us\":%.1f,\"p50_us\":%.1f,"
               "\"p90_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f%s}\n",
               bench, impl, n, usec[0], percentile(usec, n, 0.5), percentile(usec, n, 0.9),
               percentile(usec, n, 0.99), sum / n, extra);
        fflush(stdout);
}

static int bus_open(const char *address, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (!address) {
                fprintf(stderr, "--address= is required\n");
                return -EINVAL;
        }
        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, address);
        if (r < 0)
                return r;
        r = sd_bus_set_bus_client(bus, !direct);
        if (r < 0)
                return r;
        r = sd_bus_negotiate_fds(bus, 1);
        if (r < 0)
                return r;
        r = sd_bus_start(bus);
        if (r < 0) {
                fprintf(stderr, "Failed to connect to %s: %s\n", address, strerror(-r));
                return r;
        }
        if (!no_subscribe && needs_signals) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                /* A direct connection hears signals only once it asks, as a systemctl client of PID 1 does;
                 * so does the bus from a daemon with --bus-signals=subscribed. One older than Subscribe()
                 * sends them anyway. */
                r = sd_bus_call_method(bus, DEST, PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE,
                                       "Subscribe", &error, NULL, NULL);
                /* ready asks before the daemon is there, for the name alone. */
                if (r < 0 &&
                    !sd_bus_error_has_names(&error, SD_BUS_ERROR_UNKNOWN_METHOD, SD_BUS_ERROR_SERVICE_UNKNOWN,
                                            SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                        fprintf(stderr, "Subscribe on %s failed: %s\n", address,
                                error.message ?: strerror(-r));
                        return r;
                }
        }
        *ret = TAKE_PTR(bus);
        return 0;
}

/* Runs the bus until *done is set. */
static int bus_run_until(sd_bus *bus, const bool *done) {
        int r;

        while (!*done) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0 && r != -EINTR)
                        return r;
        }
        return 0;
}

/* Appends (as argv, a{sv} options) with the options empty, or an output-limit when limit > 0. */
static int append_argv_options(sd_bus_message *m, char **argv, uint64_t limit) {
        int r;

        r = sd_bus_message_append_strv(m, argv);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if (limit > 0) {
                r = sd_bus_message_append(m, "{sv}", PROCPOOL_OPTION_OUTPUT_LIMIT, "t", limit);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

static int set_pool_size(sd_bus *bus, unsigned size) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_set_property(bus, DEST, PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE, "PoolSize",
                                &error, "u", (uint32_t) size);
        if (r < 0)
                fprintf(stderr, "Failed to set PoolSize to %u: %s\n", size, error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        return r;
}

static int spawn_argv(char **argv, posix_spawn_file_actions_t *fa, pid_t *ret_pid) {
        int r = posix_spawn(ret_pid, argv[0], fa, NULL, argv, environ);

        if (r != 0) {
                fprintf(stderr, "Failed to execute '%s': %s\n", argv[0], strerror(r));
                return -r;
        }
        return 0;
}

static int wait_ok(pid_t pid) {
        int status;

        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "Child %d did not exit 0 (status 0x%x)\n", (int) pid, status);
                return -EIO;
        }
        return 0;
}

/* ---- 1. call latency ---------------------------------------------------------------------------- */

static char *true_argv[] = { (char *) "/bin/true", NULL };
static char *cat_argv[] = { (char *) "/bin/cat", NULL };

/* The floor: posix_spawn + waitpid, one at a time. */
static int cmd_floor_call(const Args *a) {
        _cleanup_free_ double *usec = calloc(a->count, sizeof(double));
        int r;

        if (!usec)
                return -ENOMEM;
        for (unsigned i = 0; i < a->count; i++) {
                uint64_t t0 = now_nsec();
                pid_t pid;

                r = spawn_argv(true_argv, NULL, &pid);
                if (r < 0)
                        return r;
                r = wait_ok(pid);
                if (r < 0)
                        return r;
                usec[i] = (now_nsec() - t0) / 1e3;
        }
        print_latencies("call", "floor", usec, a->count, "");
        return 0;
}

static int cmd_call(const Args *a) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ double *usec = calloc(a->count, sizeof(double));
        int r;

        if (!usec)
                return -ENOMEM;
        r = bus_open(a->address, &bus);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < a->count; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
                sd_bus_error error = SD_BUS_ERROR_NULL;
                uint64_t t0 = now_nsec();
                int32_t rc;

                r = sd_bus_message_new_method_call(bus, &m, DEST, PROCPOOL_OBJECT_PATH,
                                                   PROCPOOL_MANAGER_INTERFACE, "Call");
                if (r < 0)
                        return r;
                r = append_argv_options(m, true_argv, 0);
                if (r < 0)
                        return r;
                r = sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &error, &reply);
                if (r < 0) {
                        fprintf(stderr, "Call failed: %s\n", error.message ?: strerror(-r));
                        sd_bus_error_free(&error);
                        return r;
                }
                r = sd_bus_message_read(reply, "i", &rc);
                if (r < 0)
                        return r;
                if (rc != 0) {
                        fprintf(stderr, "Call of /bin/true returned %" PRIi32 "\n", rc);
                        return -EIO;
                }
                usec[i] = (now_nsec() - t0) / 1e3;
        }
        print_latencies("call", "procpool", usec, a->count, "");
        return 0;
}

/* The bus alone: a Peer.Ping round trip to procpoold through the bus daemon, spawning nothing. */
static int cmd_ping(const Args *a) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ double *usec = calloc(a->count, sizeof(double));
        int r;

        if (!usec)
                return -ENOMEM;
        r = bus_open(a->address, &bus);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < a->count; i++) {
                sd_bus_error error = SD_BUS_ERROR_NULL;
                uint64_t t0 = now_nsec();

                r = sd_bus_call_method(bus, DEST, PROCPOOL_OBJECT_PATH, "org.freedesktop.DBus.Peer", "Ping",
                                       &error, NULL, NULL);
                if (r < 0) {
                        fprintf(stderr, "Ping failed: %s\n", error.message ?: strerror(-r));
                        sd_bus_error_free(&error);
                        return r;
                }
                usec[i] = (now_nsec() - t0) / 1e3;
        }
        print_latencies("call", "ping", usec, a->count, "");
        return 0;
}

/* systemd's own way, as `systemd-run --wait` does it: StartTransientUnit with AddRef, wait for the start
 * job's JobRemoved, then follow the unit's properties (GetAll, again on each PropertiesChanged) until it
 * is inactive, and read its result. Unref afterwards stands in for systemd-run's exit and is not timed. */
typedef struct {
        sd_bus *bus;
        char *job_path;    /* the start job we wait for */
        char *removed_job; /* the last JobRemoved path, in case it beats the reply */
        const char *unit_path;
        bool job_done;
        bool unit_done;
        bool failed;
        int pending_getall;
} SystemdRun;

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SystemdRun *c = userdata;
        const char *path, *unit, *result;
        uint32_t id;

        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (c->job_path && strcmp(path, c->job_path) == 0) {
                c->job_done = true;
                if (strcmp(result, "done") != 0) {
                        fprintf(stderr, "Start job of %s ended with '%s'\n", unit, result);
                        c->failed = true;
                }
        } else {
                free(c->removed_job);
                c->removed_job = strdup(path);
        }
        return 0;
}

static int on_unit_getall(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SystemdRun *c = userdata;
        const char *active = NULL, *result = NULL;
        int32_t status = 0;
        int r;

        c->pending_getall--;
        if (sd_bus_message_is_method_error(m, NULL)) {
                fprintf(stderr, "GetAll failed: %s\n", sd_bus_message_get_error(m)->message);
                c->failed = c->unit_done = true;
                return 0;
        }
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                goto fail;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name;

                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        goto fail;
                if (strcmp(name, "ActiveState") == 0)
                        r = sd_bus_message_read(m, "v", "s", &active);
                else if (strcmp(name, "Result") == 0)
                        r = sd_bus_message_read(m, "v", "s", &result);
                else if (strcmp(name, "ExecMainStatus") == 0)
                        r = sd_bus_message_read(m, "v", "i", &status);
                else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0)
                        goto fail;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        goto fail;
        }
        if (r < 0)
                goto fail;
        if (active && (strcmp(active, "inactive") == 0 || strcmp(active, "failed") == 0)) {
                c->unit_done = true;
                if (strcmp(active, "failed") == 0 || (result && strcmp(result, "success") != 0) ||
                    status != 0) {
                        fprintf(stderr, "Transient unit ended %s/%s with status %" PRIi32 "\n", active,
                                result ?: "?", status);
                        c->failed = true;
                }
        }
        return 0;
fail:
        fprintf(stderr, "Failed to parse unit properties: %s\n", strerror(-r));
        c->failed = c->unit_done = true;
        return 0;
}

static int unit_getall(SystemdRun *c) {
        int r = sd_bus_call_method_async(c->bus, NULL, SYSTEMD_NAME, c->unit_path,
                                         "org.freedesktop.DBus.Properties", "GetAll", on_unit_getall, c, "s",
                                         "");
        if (r < 0)
                return r;
        c->pending_getall++;
        return r;
}

static int on_unit_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SystemdRun *c = userdata;

        if (!c->unit_done)
                (void) unit_getall(c);
        return 0;
}

static int systemd_run_one(SystemdRun *c, const char *unit) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *job;
        int r;

        r = sd_bus_message_new_method_call(c->bus, &m, SYSTEMD_NAME, SYSTEMD_PATH, SYSTEMD_MANAGER_IFACE,
                                           "StartTransientUnit");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "ss", unit, "fail");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "a(sv)", 3, "Description", "s", "procpool benchmark", "AddRef", "b", 1,
                                  "ExecStart", "a(sasb)", 1, "/bin/true", 1, "/bin/true", 0);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r < 0)
                return r;
        r = sd_bus_call(c->bus, m, CALL_TIMEOUT_USEC, &error, &reply);
        if (r < 0) {
                fprintf(stderr, "StartTransientUnit failed: %s\n", error.message ?: strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        r = sd_bus_message_read(reply, "o", &job);
        if (r < 0)
                return r;
        c->job_path = strdup(job);
        if (!c->job_path)
                return -ENOMEM;
        if (c->removed_job && strcmp(c->removed_job, job) == 0)
                c->job_done = true;
        r = bus_run_until(c->bus, &c->job_done);
        if (r < 0)
                return r;

        /* AddMatch reaches the bus before GetAll reaches systemd, so no change can slip between them. */
        r = sd_bus_match_signal_async(c->bus, &match, SYSTEMD_NAME, c->unit_path,
                                      "org.freedesktop.DBus.Properties", "PropertiesChanged", on_unit_changed,
                                      NULL, c);
        if (r < 0)
                return r;
        r = unit_getall(c);
        if (r < 0)
                return r;
        r = bus_run_until(c->bus, &c->unit_done);
        if (r < 0)
                return r;
        return c->failed ? -EIO : 0;
}

/* Late GetAll replies must not land on a dead SystemdRun: runs the bus until none is pending. */
static int systemd_run_drain(SystemdRun *c) {
        int r;

        while (c->pending_getall > 0) {
                r = sd_bus_process(c->bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                r = sd_bus_wait(c->bus, UINT64_MAX);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int cmd_systemd_call(const Args *a) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *removed = NULL;
        _cleanup_free_ double *usec = calloc(a->count, sizeof(double));
        sd_bus_error error = SD_BUS_ERROR_NULL;
        char *removed_job = NULL;
        int r;

        if (!usec)
                return -ENOMEM;
        r = bus_open(a->address, &bus);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, SYSTEMD_NAME, SYSTEMD_PATH, SYSTEMD_MANAGER_IFACE, "Subscribe", &error,
                               NULL, NULL);
        if (r < 0) {
                fprintf(stderr, "Subscribe failed: %s\n", error.message ?: strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }

        for (unsigned i = 0; i < a->count; i++) {
                _cleanup_free_ char *unit = NULL, *unit_path = NULL;
                SystemdRun c = { .bus = bus, .removed_job = removed_job };
                uint64_t t0;

                if (asprintf(&unit, "procpool-bench-%d-%u.service", (int) getpid(), i) < 0)
                        return -ENOMEM;
                r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit, &unit_path);
                if (r < 0)
                        return r;
                c.unit_path = unit_path;

                sd_bus_slot_unref(removed);
                r = sd_bus_match_signal(bus, &removed, SYSTEMD_NAME, SYSTEMD_PATH, SYSTEMD_MANAGER_IFACE,
                                        "JobRemoved", on_job_removed, &c);
                if (r < 0)
                        return r;

                t0 = now_nsec();
                r = systemd_run_one(&c, unit);
                usec[i] = (now_nsec() - t0) / 1e3;
                removed = sd_bus_slot_unref(removed);
                removed_job = c.removed_job;
                free(c.job_path);
                if (r < 0) {
                        free(removed_job);
                        return r;
                }
                r = systemd_run_drain(&c);
                if (r < 0) {
                        free(removed_job);
                        return r;
                }
                r = sd_bus_call_method(bus, SYSTEMD_NAME, unit_path, "org.freedesktop.systemd1.Unit", "Unref",
                                       &error, NULL, NULL);
                if (r < 0) {
                        fprintf(stderr, "Unref of %s failed: %s, ignoring\n", unit,
                                error.message ?: strerror(-r));
                        sd_bus_error_free(&error);
                }
        }
        free(removed_job);
        print_latencies("call", "systemd", usec, a->count, "");
        return 0;
}

/* ---- 2. throughput ------------------------------------------------------------------------------- */

static void print_throughput(const char *impl, const Args *a, uint64_t nsec) {
        double s = nsec / 1e9;

        printf("{\"bench\":\"throughput\",\"impl\":\"%s\",\"count\":%u,\"parallel\":%u,\"seconds\":%.4f,"
               "\"jobs_per_s\":%.1f}\n",
               impl, a->count, a->parallel, s, a->count / s);
        fflush(stdout);
}

/* The floor at the same parallelism: keep `parallel` children of /bin/true alive until `count` have run. */
static int cmd_floor_throughput(const Args *a) {
        unsigned started = 0, finished = 0, running = 0;
        uint64_t t0 = now_nsec();
        int r;

        while (finished < a->count) {
                int status;
                pid_t pid;

                while (running < a->parallel && started < a->count) {
                        r = spawn_argv(true_argv, NULL, &pid);
                        if (r < 0)
                                return r;
                        started++;
                        running++;
                }
                pid = waitpid(-1, &status, 0);
                if (pid < 0)
                        return -errno;
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        return -EIO;
                running--;
                finished++;
        }
        print_throughput("floor", a, now_nsec() - t0);
        return 0;
}

typedef struct {
        unsigned to_send;     /* Submits not yet sent */
        unsigned in_flight;   /* Submits sent, no reply yet */
        unsigned finished;    /* JobFinished seen */
        unsigned bad;         /* jobs that did not exit 0, or Submit errors */
        unsigned want;        /* JobFinished to wait for */
        bool allow_cancelled; /* a cancelled job is expected, not a failure */
        char **paths;         /* job paths in submit order, when kept */
        unsigned n_paths;
        bool done;
        bool replies_done;
} SubmitRun;

static int on_submit_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SubmitRun *s = userdata;
        const char *path;

        s->in_flight--;
        if (sd_bus_message_is_method_error(m, NULL)) {
                if (s->bad++ == 0)
                        fprintf(stderr, "Submit failed: %s\n", sd_bus_message_get_error(m)->message);
                if (s->want > 0)
                        s->want--;
        } else if (s->paths && sd_bus_message_read(m, "o", &path) >= 0)
                s->paths[s->n_paths++] = strdup(path);
        if (s->to_send == 0 && s->in_flight == 0)
                s->replies_done = true;
        if (s->finished >= s->want && s->replies_done)
                s->done = true;
        return 0;
}

static int on_job_finished(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SubmitRun *s = userdata;
        const char *path, *state;
        uint64_t id;
        int32_t rc;

        if (sd_bus_message_read(m, "tosi", &id, &path, &state, &rc) < 0)
                return 0;
        s->finished++;
        if ((strcmp(state, PROCPOOL_STATE_EXITED) != 0 || rc != 0) &&
            !(s->allow_cancelled && strcmp(state, PROCPOOL_STATE_CANCELLED) == 0)) {
                if (s->bad++ == 0)
                        fprintf(stderr, "Job %" PRIu64 " ended %s with %" PRIi32 "\n", id, state, rc);
        }
        if (s->finished >= s->want && s->replies_done)
                s->done = true;
        return 0;
}

static int on_submit_many_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SubmitRun *s = userdata;

        s->in_flight--;
        if (sd_bus_message_is_method_error(m, NULL)) {
                /* A batch is all or nothing, and its size is not in the reply: the run is void. */
                if (s->bad++ == 0)
                        fprintf(stderr, "SubmitMany failed: %s\n", sd_bus_message_get_error(m)->message);
                s->done = true;
                return 0;
        }
        if (s->to_send == 0 && s->in_flight == 0)
                s->replies_done = true;
        if (s->finished >= s->want && s->replies_done)
                s->done = true;
        return 0;
}

static int append_batch(sd_bus_message *m, char **argv, unsigned n) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "as");
        if (r < 0)
                return r;
        for (unsigned i = 0; i < n; i++) {
                r = sd_bus_message_append_strv(m, argv);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_append(m, "a{sv}", 0);
}

/* Sends SubmitMany calls of `batch` jobs of argv each, at most `window` waiting for their reply at once,
 * until s->to_send jobs are sent. */
static int submit_many_pipelined(sd_bus *bus, SubmitRun *s, char **argv, unsigned batch, unsigned window) {
        int r;

        while (!s->done) {
                while (s->to_send > 0 && s->in_flight < window) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                        unsigned n = MIN(batch, s->to_send);

                        r = sd_bus_message_new_method_call(bus, &m, DEST, PROCPOOL_OBJECT_PATH,
                                                           PROCPOOL_MANAGER_INTERFACE, "SubmitMany");
                        if (r < 0)
                                return r;
                        r = append_batch(m, argv, n);
                        if (r < 0)
                                return r;
                        r = sd_bus_call_async(bus, NULL, m, on_submit_many_reply, s, CALL_TIMEOUT_USEC);
                        if (r < 0)
                                return r;
                        s->to_send -= n;
                        s->in_flight++;
                }
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                if (s->done)
                        break;
                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0 && r != -EINTR)
                        return r;
        }
        return 0;
}

/* Sends Submits of argv, at most `window` waiting for their reply at once, until `count` are sent. */
static int submit_pipelined(sd_bus *bus, SubmitRun *s, char **argv, unsigned window) {
        int r;

        while (!s->done && !(s->replies_done && s->paths)) {
                while (s->to_send > 0 && s->in_flight < window) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

                        r = sd_bus_message_new_method_call(bus, &m, DEST, PROCPOOL_OBJECT_PATH,
                                                           PROCPOOL_MANAGER_INTERFACE, "Submit");
                        if (r < 0)
                                return r;
                        r = append_argv_options(m, argv, 0);
                        if (r < 0)
                                return r;
                        r = sd_bus_call_async(bus, NULL, m, on_submit_reply, s, CALL_TIMEOUT_USEC);
                        if (r < 0)
                                return r;
                        s->to_send--;
                        s->in_flight++;
                }
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                if (s->done || (s->replies_done && s->paths))
                        break;
                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0 && r != -EINTR)
                        return r;
        }
        return 0;
}

/* Without signals: waits until the daemon runs and queues nothing, asking every 20 ms (two calls each
 * time: a cost per job next to nothing at thousands of jobs a second). */
static int wait_idle(sd_bus *bus) {
        for (;;) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                uint32_t running, queued;
                int r;

                r = sd_bus_get_property_trivial(bus, DEST, PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE,
                                                "Running", &error, 'u', &running);
                if (r >= 0)
                        r = sd_bus_get_property_trivial(bus, DEST, PROCPOOL_OBJECT_PATH,
                                                        PROCPOOL_MANAGER_INTERFACE, "Queued", &error, 'u',
                                                        &queued);
                if (r < 0) {
                        fprintf(stderr, "Failed to read Running and Queued: %s\n",
                                error.message ?: strerror(-r));
                        return r;
                }
                if (running == 0 && queued == 0)
                        return 0;
                (void) usleep(20000);
        }
}

/* Throughput: --count jobs of /bin/true at PoolSize --parallel, one Submit each, or (batch > 0) in
 * SubmitMany calls of batch jobs; timed until every JobFinished (or, with --no-subscribe, until the daemon
 * is idle). */
static int submit_throughput(const Args *a, unsigned batch) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL;
        SubmitRun s = { .to_send = a->count, .want = no_subscribe ? 0 : a->count };
        uint64_t t0;
        int r;

        r = bus_open(a->address, &bus);
        if (r < 0)
                return r;
        r = set_pool_size(bus, a->parallel);
        if (r < 0)
                return r;
        if (!no_subscribe) {
                r = sd_bus_match_signal(bus, &match, DEST, PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE,
                                        "JobFinished", on_job_finished, &s);
                if (r < 0)
                        return r;
        }

        t0 = now_nsec();
        /* A few batches in flight keep the daemon busy while the next one is on its way. */
        r = batch > 0 ? submit_many_pipelined(bus, &s, true_argv, batch, 4)
                      : submit_pipelined(bus, &s, true_argv, a->window);
        if (r < 0)
                return r;
        /* No JobFinished counted their ends, nor whether they failed. */
        if (no_subscribe) {
                r = wait_idle(bus);
                if (r < 0)
                        return r;
        }
        if (s.bad > 0) {
                fprintf(stderr, "%u of %u jobs failed\n", s.bad, a->count);
                return -EIO;
        }
        print_throughput(batch > 0 ? "procpool-many" : "procpool", a, now_nsec() - t0);
        return 0;
}

static int cmd_submit(const Args *a) {
        return submit_throughput(a, 0);
}

static int cmd_submit_many(const Args *a) {
        return submit_throughput(a, a->batch);
}

/* ---- 3. communicate through cat ------------------------------------------------------------------- */

static void fill_input(uint8_t *buf, size_t size) {
        uint32_t x = 2463534242u;

        for (size_t i = 0; i < size; i++) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                buf[i] = (uint8_t) x;
        }
}

static void print_communicate(const char *impl, const Args *a, double *usec) {
        char extra[128];

        qsort(usec, a->count, sizeof(double), cmp_double);
        (void) snprintf(extra, sizeof(extra), ",\"size\":%zu,\"mib_per_s\":%.1f", a->size,
                        a->size / (1024.0 * 1024.0) / (percentile(usec, a->count, 0.5) / 1e6));
        print_latencies("communicate", impl, usec, a->count, extra);
}

/* Moves input into `in` and output out of `out` (both non-blocking) until input is written and out is at
 * EOF; returns the bytes read. Closes `in` in any case. */
static int pump_pipes(int in, int out, const uint8_t *input, size_t size, uint8_t *output, size_t cap,
                      size_t *ret_read) {
        size_t written = 0, got = 0;
        bool eof = false;
        int r = 0;

        if (size == 0) {
                (void) close(in);
                in = -EBADF;
        }
        while (!eof) {
                struct pollfd p[2] = { { .fd = out, .events = POLLIN }, { .fd = in, .events = POLLOUT } };

                if (poll(p, in >= 0 ? 2 : 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto finish;
                }
                if (in >= 0 && p[1].revents) {
                        ssize_t n = write(in, input + written, size - written);
                        if (n < 0 && errno != EAGAIN) {
                                r = -errno;
                                goto finish;
                        }
                        if (n > 0)
                                written += n;
                        if (written == size) {
                                (void) close(in);
                                in = -EBADF;
                        }
                }
                if (p[0].revents) {
                        ssize_t n = read(out, output + got, cap - got);
                        if (n < 0 && errno != EAGAIN) {
                                r = -errno;
                                goto finish;
                        }
                        if (n == 0)
                                eof = true;
                        if (n > 0)
                                got += n;
                        if (got == cap) {
                                r = -EFBIG;
                                goto finish;
                        }
                }
        }
        *ret_read = got;
finish:
        if (in >= 0)
                (void) close(in);
        return r;
}

static int check_output(const uint8_t *input, const uint8_t *output, size_t size, size_t got) {
        if (got != size || memcmp(input, output, size) != 0) {
                fprintf(stderr, "cat returned %zu bytes, not the %zu given, or other bytes\n", got, size);
                return -EIO;
        }
        return 0;
}

/* The floor: our own pipes to and from a spawned cat. */
static int cmd_floor_cat(const Args *a) {
        _cleanup_free_ uint8_t *input = malloc(a->size + 1), *output = malloc(a->size + 1);
        _cleanup_free_ double *usec = calloc(a->count, sizeof(double));
        int r;

        if (!input || !output || !usec)
                return -ENOMEM;
        fill_input(input, a->size);
        for (unsigned i = 0; i < a->count; i++) {
                posix_spawn_file_actions_t fa;
                int in[2], out[2];
                uint64_t t0 = now_nsec();
                size_t got = 0;
                pid_t pid;

                if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
                        return -errno;
                posix_spawn_file_actions_init(&fa);
                posix_spawn_file_actions_adddup2(&fa, in[0], 0);
                posix_spawn_file_actions_adddup2(&fa, out[1], 1);
                r = spawn_argv(cat_argv, &fa, &pid);
                posix_spawn_file_actions_destroy(&fa);
                (void) close(in[0]);
                (void) close(out[1]);
                if (r < 0)
                        return r;
                (void) fcntl(in[1], F_SETFL, O_NONBLOCK);
                (void) fcntl(out[0], F_SETFL, O_NONBLOCK);
                r = pump_pipes(in[1], out[0], input, a->size, output, a->size + 1, &got);
                (void) close(out[0]);
                if (r < 0)
                        return r;
                r = wait_ok(pid);
                if (r < 0)
                        return r;
                usec[i] = (now_nsec() - t0) / 1e3;
                r = check_output(input, output, a->size, got);
                if (r < 0)
                        return r;
        }
        print_communicate("floor", a, usec);
        return 0;
}

/* Communicate with the input and output as byte arrays in the messages. */
static int cmd_communicate(const Args *a) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ uint8_t *input = malloc(a->size + 1);
        _cleanup_free_ double *usec = calloc(a->count, sizeof(double));
        int r;

        if (!input || !usec)
                return -ENOMEM;
        fill_input(input, a->size);
        r = bus_open(a->address, &bus);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < a->count; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
                sd_bus_error error = SD_BUS_ERROR_NULL;
                uint64_t t0 = now_nsec();
                const void *out, *err;
                size_t out_size, err_size;
                int32_t rc;

                r = sd_bus_message_new_method_call(bus, &m, DEST, PROCPOOL_OBJECT_PATH,
                                                   PROCPOOL_MANAGER_INTERFACE, "Communicate");
                if (r < 0)
                        return r;
                r = sd_bus_message_append_strv(m, cat_argv);
                if (r < 0)
                        return r;
                r = sd_bus_message_append_array(m, 'y', input, a->size);
                if (r < 0)
                        return r;
                r = sd_bus_message_append(m, "a{sv}", 1, PROCPOOL_OPTION_OUTPUT_LIMIT, "t",
                                          (uint64_t) a->size + 1);
                if (r < 0)
                        return r;
                r = sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &error, &reply);
                if (r < 0) {
                        refused = sd_bus_error_has_name(&error, SD_BUS_ERROR_INVALID_ARGS) ||
                                  sd_bus_error_has_name(&error, SD_BUS_ERROR_LIMITS_EXCEEDED);
                        fprintf(stderr, "Communicate failed: %s\n", error.message ?: strerror(-r));
                        sd_bus_error_free(&error);
                        return r;
                }
                r = sd_bus_message_read(reply, "i", &rc);
                if (r < 0)
                        return r;
                r = sd_bus_message_read_array(reply, 'y', &out, &out_size);
                if (r < 0)
                        return r;
                r = sd_bus_message_read_array(reply, 'y', &err, &err_size);
                if (r < 0)
                        return r;
                usec[i] = (now_nsec() - t0) / 1e3;
                if (rc != 0) {
                        fprintf(stderr, "Communicate with cat returned %" PRIi32 "\n", rc);
                        return -EIO;
                }
                r = check_output(input, out, a->size, out_size);
                if (r < 0)
                        return r;
        }
        print_communicate("procpool-bytes", a, usec);
        return 0;
}

typedef struct {
        bool replied;
        int error;
} FdCall;

static int on_fd_call_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        FdCall *c = userdata;
        int32_t rc = -1;

        c->replied = true;
        if (sd_bus_message_is_method_error(m, NULL)) {
                fprintf(stderr, "Call failed: %s\n", sd_bus_message_get_error(m)->message);
                c->error = -EIO;
        } else if (sd_bus_message_read(m, "i", &rc) < 0 || rc != 0) {
                fprintf(stderr, "Call of cat returned %" PRIi32 "\n", rc);
                c->error = -EIO;
        }
        return 0;
}

/* Builds Call of cat with stdin_fd and stdout_fd as its stdin and stdout. */
static int new_cat_call(sd_bus *bus, int stdin_fd, int stdout_fd, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, DEST, PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE,
                                           "Call");
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(m, cat_argv);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "a{sv}", 2, PROCPOOL_OPTION_STDIN, "h", stdin_fd, PROCPOOL_OPTION_STDOUT,
                                  "h", stdout_fd);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

/* The fd options: Call of cat with our pipes as its stdin and stdout (Communicate refuses a `stdin` fd,
 * its input being the `input` argument, so Call is the fd-passing form of it). The bytes are moved by
 * the same loop as the raw pipe's, so the two differ only by what procpool does. */
static int fd_call_once(sd_bus *bus, const uint8_t *input, size_t size, uint8_t *output, size_t cap,
                        size_t *ret_got) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_close_ int out_read = -EBADF;
        FdCall c = {};
        int in[2], out[2], r;

        if (pipe2(in, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(out, O_CLOEXEC) < 0) {
                (void) close(in[0]);
                (void) close(in[1]);
                return -errno;
        }
        out_read = out[0];
        r = new_cat_call(bus, in[0], out[1], &m);
        /* The message holds its own duplicates; ours must go so that EOF comes when cat exits. */
        (void) close(in[0]);
        (void) close(out[1]);
        if (r < 0)
                goto fail;
        r = sd_bus_call_async(bus, &slot, m, on_fd_call_reply, &c, CALL_TIMEOUT_USEC);
        if (r < 0)
                goto fail;
        r = sd_bus_flush(bus);
        if (r < 0)
                goto fail;
        m = sd_bus_message_unref(m);

        /* Only our ends are non-blocking: cat gets ordinary blocking pipes, as from a shell. If procpool
         * refuses the call, its copies close and the pump ends with EOF or EPIPE. */
        (void) fcntl(in[1], F_SETFL, O_NONBLOCK);
        (void) fcntl(out_read, F_SETFL, O_NONBLOCK);
        r = pump_pipes(in[1], out_read, input, size, output, cap, ret_got);
        if (r < 0 && r != -EPIPE)
                return r;
        r = bus_run_until(bus, &c.replied);
        if (r < 0)
                return r;
        return c.error;
fail:
        (void) close(in[1]);
        return r;
}

static int cmd_call_fds(const Args *a) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ uint8_t *input = malloc(a->size + 1), *output = malloc(a->size + 1);
        _cleanup_free_ double *usec = calloc(a->count, sizeof(double));
        int r;

        if (!input || !output || !usec)
                return -ENOMEM;
        fill_input(input, a->size);
        r = bus_open(a->address, &bus);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < a->count; i++) {
                uint64_t t0 = now_nsec();
                size_t got = 0;

                r = fd_call_once(bus, input, a->size, output, a->size + 1, &got);
                if (r < 0) {
                        fprintf(stderr, "Call of cat with fds failed: %s\n", strerror(-r));
                        return r;
                }
                usec[i] = (now_nsec() - t0) / 1e3;
                r = check_output(input, output, a->size, got);
                if (r < 0)
                        return r;
        }
        print_communicate("procpool-fds", a, usec);
        return 0;
}

/* ---- 4. memory ------------------------------------------------------------------------------------ */

typedef struct {
        long rss_kb, anon_kb, file_kb, hwm_kb;
} Rss;

static int read_rss(pid_t pid, Rss *ret) {
        _cleanup_free_ char *path = NULL, *line = NULL;
        size_t n = 0;
        Rss rss = { -1, -1, -1, -1 };
        FILE *f;

        if (asprintf(&path, "/proc/%d/status", (int) pid) < 0)
                return -ENOMEM;
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (getline(&line, &n, f) > 0) {
                (void) sscanf(line, "VmRSS: %ld", &rss.rss_kb);
                (void) sscanf(line, "RssAnon: %ld", &rss.anon_kb);
                (void) sscanf(line, "RssFile: %ld", &rss.file_kb);
                (void) sscanf(line, "VmHWM: %ld", &rss.hwm_kb);
        }
        fclose(f);
        if (rss.rss_kb < 0)
                return -EIO;
        *ret = rss;
        return 0;
}

static void print_rss(const char *name, const Rss *r, bool comma) {
        printf("\"%s\":{\"rss_kb\":%ld,\"anon_kb\":%ld,\"file_kb\":%ld,\"hwm_kb\":%ld}%s", name, r->rss_kb,
               r->anon_kb, r->file_kb, r->hwm_kb, comma ? "," : "");
}

static int get_u32(sd_bus *bus, const char *name, uint32_t *ret) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r = sd_bus_get_property_trivial(bus, DEST, PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE, name,
                                            &error, 'u', ret);
        if (r < 0)
                fprintf(stderr, "Failed to read %s: %s\n", name, error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        return r;
}

typedef struct {
        unsigned in_flight;
        unsigned failed;
        bool done;
} ReleaseRun;

static int on_release_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        ReleaseRun *rr = userdata;

        if (sd_bus_message_is_method_error(m, NULL) && rr->failed++ == 0)
                fprintf(stderr, "Release failed: %s\n", sd_bus_message_get_error(m)->message);
        if (--rr->in_flight == 0)
                rr->done = true;
        return 0;
}

/* RSS of the daemon idle, with `count` /bin/true jobs queued behind a blocker at PoolSize 1, after all
 * have run, and after every one is released. The daemon must retain at least count + 1 finished jobs. */
static int cmd_memory(const Args *a) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL;
        _cleanup_strv_free_ char **paths = calloc(a->count + 2, sizeof(char *));
        char *blocker_argv[] = { (char *) "/bin/sleep", (char *) "1000", NULL };
        SubmitRun s = { .want = a->count + 1, .allow_cancelled = true };
        ReleaseRun rr = {};
        sd_bus_error error = SD_BUS_ERROR_NULL;
        Rss idle, queued, finished, released, settled;
        uint32_t n_queued;
        size_t argv_bytes = 0;
        int r;

        if (!paths)
                return -ENOMEM;
        s.paths = paths;
        for (char **p = true_argv; *p; p++)
                argv_bytes += strlen(*p) + 1;

        r = read_rss(a->pid, &idle);
        if (r < 0)
                return r;
        r = bus_open(a->address, &bus);
        if (r < 0)
                return r;
        r = sd_bus_match_signal(bus, &match, DEST, PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE,
                                "JobFinished", on_job_finished, &s);
        if (r < 0)
                return r;
        r = set_pool_size(bus, 1);
        if (r < 0)
                return r;

        s.to_send = 1;
        r = submit_pipelined(bus, &s, blocker_argv, 1);
        if (r < 0)
                return r;
        s.replies_done = false;
        s.to_send = a->count;
        r = submit_pipelined(bus, &s, true_argv, a->window);
        if (r < 0)
                return r;
        if (s.bad > 0 || s.n_paths != a->count + 1)
                return -EIO;
        r = get_u32(bus, "Queued", &n_queued);
        if (r < 0)
                return r;
        if (n_queued != a->count) {
                fprintf(stderr, "Queued is %" PRIu32 ", not %u\n", n_queued, a->count);
                return -EIO;
        }
        r = read_rss(a->pid, &queued);
        if (r < 0)
                return r;

        /* Let them all run once the blocker is cancelled. */
        r = set_pool_size(bus, a->parallel);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, DEST, paths[0], PROCPOOL_JOB_INTERFACE, "Cancel", &error, NULL, NULL);
        if (r < 0) {
                fprintf(stderr, "Cancel of the blocker failed: %s\n", error.message ?: strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        r = bus_run_until(bus, &s.done);
        if (r < 0)
                return r;
        if (s.bad > 0) {
                fprintf(stderr, "%u jobs did not exit 0\n", s.bad);
                return -EIO;
        }
        r = read_rss(a->pid, &finished);
        if (r < 0)
                return r;

        for (unsigned i = 0; i < s.n_paths; i++) {
                r = sd_bus_call_method_async(bus, NULL, DEST, paths[i], PROCPOOL_JOB_INTERFACE, "Release",
                                             on_release_reply, &rr, NULL);
                if (r < 0)
                        return r;
                rr.in_flight++;
                /* Keep the outgoing queue and the bus's pending replies bounded. */
                if (rr.in_flight >= a->window) {
                        while (rr.in_flight > a->window / 2) {
                                r = sd_bus_process(bus, NULL);
                                if (r < 0)
                                        return r;
                                if (r == 0)
                                        (void) sd_bus_wait(bus, UINT64_MAX);
                        }
                }
        }
        if (rr.in_flight > 0) {
                r = bus_run_until(bus, &rr.done);
                if (r < 0)
                        return r;
        }
        if (rr.failed > 0)
                return -EIO;
        r = read_rss(a->pid, &released);
        if (r < 0)
                return r;
        (void) usleep(1000 * 1000);
        r = read_rss(a->pid, &settled);
        if (r < 0)
                return r;

        printf("{\"bench\":\"memory\",\"impl\":\"procpool\",\"count\":%u,\"argv_bytes\":%zu,", a->count,
               argv_bytes);
        print_rss("idle", &idle, true);
        print_rss("queued", &queued, true);
        print_rss("finished", &finished, true);
        print_rss("released", &released, true);
        print_rss("settled", &settled, true);
        printf("\"per_job_bytes\":%.1f}\n", (queued.rss_kb - idle.rss_kb) * 1024.0 / a->count);
        fflush(stdout);
        return 0;
}

/* ---- plumbing --------------------------------------------------------------------------------------- */

/* Waits until procpool owns its bus name, so the runner knows the daemon is ready. */
static int cmd_ready(const Args *a) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (direct) {
                /* The socket is there once the daemon serves it; connecting (and Subscribe) is the test. */
                for (unsigned i = 0; i < 1000; i++) {
                        r = bus_open(a->address, &bus);
                        if (r >= 0)
                                return 0;
                        if (r != -ENOENT && r != -ECONNREFUSED)
                                return r;
                        (void) usleep(10 * 1000);
                }
                fprintf(stderr, "nothing listened on %s within 10 s\n", a->address);
                return -ETIMEDOUT;
        }
        r = bus_open(a->address, &bus);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < 1000; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                int has = 0;

                r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner", NULL, &reply, "s",
                                       PROCPOOL_BUS_NAME);
                if (r < 0)
                        return r;
                r = sd_bus_message_read(reply, "b", &has);
                if (r < 0)
                        return r;
                if (has)
                        return 0;
                (void) usleep(10 * 1000);
        }
        fprintf(stderr, "%s did not appear on %s within 10 s\n", PROCPOOL_BUS_NAME, a->address);
        return -ETIMEDOUT;
}

static const struct {
        const char *name;
        int (*run)(const Args *a);
        const char *help;
} commands[] = {
        { "ready", cmd_ready, "wait until procpool owns its name" },
        { "floor-call", cmd_floor_call, "posix_spawn + waitpid of /bin/true, --count times" },
        { "call", cmd_call, "procpool Call of /bin/true, --count times" },
        { "ping", cmd_ping, "Peer.Ping to procpoold, --count times: the bus round trip alone" },
        { "systemd-call", cmd_systemd_call, "transient unit of /bin/true, as systemd-run --wait" },
        { "floor-throughput", cmd_floor_throughput, "--count /bin/true, --parallel at once, in C" },
        { "submit", cmd_submit, "--count Submits of /bin/true at PoolSize --parallel" },
        { "submit-many", cmd_submit_many, "--count jobs of /bin/true in SubmitMany calls of --batch each" },
        { "floor-cat", cmd_floor_cat, "--size bytes through cat on our own pipes" },
        { "communicate", cmd_communicate, "--size bytes through cat with Communicate" },
        { "call-fds", cmd_call_fds, "--size bytes through cat, Call with stdin/stdout fds" },
        { "memory", cmd_memory, "the RSS of --pid idle, with --count queued, finished, released" },
};

static void help(void) {
        printf("procpool-bench COMMAND [--address=BUS] [--direct] [--no-subscribe] [--count=N] [--batch=N] [--parallel=N] [--window=N] [--size=BYTES] "
               "[--pid=PID]\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                printf("  %-18s %s\n", commands[i].name, commands[i].help);
}

static int parse_unsigned(const char *s, unsigned long long *ret) {
        char *end;

        errno = 0;
        *ret = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end || s[0] == '-') {
                fprintf(stderr, "Not a number: %s\n", s);
                return -EINVAL;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "address", required_argument, NULL, 'a' },
                { "count", required_argument, NULL, 'n' },
                { "parallel", required_argument, NULL, 'p' },
                { "window", required_argument, NULL, 'w' },
                { "size", required_argument, NULL, 's' },
                { "pid", required_argument, NULL, 'P' },
                { "batch", required_argument, NULL, 'b' },
                { "direct", no_argument, NULL, 'd' },
                { "no-subscribe", no_argument, NULL, 'S' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        Args a = { .count = 100,
                   .parallel = ncpu > 0 ? (unsigned) ncpu : 1,
                   .window = 1024,
                   .batch = 1000,
                   .size = 65536 };
        unsigned long long v;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c == 'h') {
                        help();
                        return 0;
                }
                if (c == '?')
                        return 2;
                if (c == 'a') {
                        a.address = optarg;
                        continue;
                }
                if (c == 'd') {
                        direct = true;
                        continue;
                }
                if (c == 'S') {
                        no_subscribe = true;
                        continue;
                }
                if (parse_unsigned(optarg, &v) < 0)
                        return 2;
                if (c == 'n')
                        a.count = v;
                else if (c == 'p')
                        a.parallel = v;
                else if (c == 'w')
                        a.window = v;
                else if (c == 's')
                        a.size = v;
                else if (c == 'P')
                        a.pid = v;
                else if (c == 'b')
                        a.batch = v;
        }
        if (optind != argc - 1) {
                help();
                return 2;
        }
        if (a.count == 0 || a.parallel == 0 || a.window == 0 || a.batch == 0) {
                fprintf(stderr, "--count, --parallel, --window and --batch must be positive\n");
                return 2;
        }
        /* A job's pipe closing under us must be an error return, not a signal. */
        (void) signal(SIGPIPE, SIG_IGN);

        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(argv[optind], commands[i].name) == 0) {
                        needs_signals = strcmp(commands[i].name, "submit") == 0 ||
                                        strcmp(commands[i].name, "submit-many") == 0 ||
                                        strcmp(commands[i].name, "memory") == 0;
                        r = commands[i].run(&a);
                        if (r < 0) {
                                if (refused)
                                        return EXIT_REFUSED;
                                fprintf(stderr, "%s failed: %s\n", commands[i].name, strerror(-r));
                                return 1;
                        }
                        return 0;
                }
        fprintf(stderr, "Unknown command: %s\n", argv[optind]);
        return 2;
}
