/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* procpoolctl's commands that look at and act on jobs: list, status, cancel, kill, pause, resume, restart,
 * release, clean, pool-size. */
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "procpool-api.h"
#include "ctl-output.h"
#include "ctl-parse.h"
#include "ctl.h"

/* How long a job ran, or has run so far; 0 if it never started. */
static uint64_t now_realtime_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

uint64_t job_runtime(const JobInfo *j) {
        uint64_t end;

        if (j->started_at == 0)
                return 0;
        end = j->finished_at ? j->finished_at : now_realtime_usec();
        return end > j->started_at ? end - j->started_at : 0;
}

typedef struct JobList {
        JobInfo *jobs;
        size_t n;
} JobList;

static void job_list_done(JobList *l) {
        for (size_t i = 0; i < l->n; i++)
                job_info_done(&l->jobs[i]);
        free(l->jobs);
        *l = (JobList) {};
}

/* Reads every job ListJobs names (only unfinished ones unless all) with its properties. */
static int collect_jobs(Ctl *c, bool all, JobList *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        JobList l = {};
        uint64_t id;
        const char *path, *state;
        int32_t rc;
        int r;

        r = ctl_connect(c);
        if (r != 0)
                return r;
        r = ctl_list_jobs(c, &reply);
        if (r != 0)
                return r;
        for (;;) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                JobInfo *n;

                r = sd_bus_message_read(reply, "(tosi)", &id, &path, &state, &rc);
                if (r <= 0)
                        break;
                if (!all && ctl_state_is_final(state))
                        continue;
                n = realloc(l.jobs, (l.n + 1) * sizeof(JobInfo));
                if (!n) {
                        r = -ENOMEM;
                        break;
                }
                l.jobs = n;
                r = ctl_job_info(c, path, &l.jobs[l.n], &e);
                if (r < 0) {
                        if (sd_bus_error_has_names(&e, SD_BUS_ERROR_UNKNOWN_OBJECT,
                                                   SD_BUS_ERROR_UNKNOWN_METHOD,
                                                   SD_BUS_ERROR_UNKNOWN_INTERFACE))
                                continue; /* released between ListJobs and GetAll */
                        job_list_done(&l);
                        return ctl_log_error(c, &e, r, "Failed to read the properties of job %" PRIu64, id);
                }
                l.n++;
        }
        if (r < 0) {
                job_list_done(&l);
                return ctl_log_error(c, NULL, r, "Failed to read the job list");
        }
        *ret = l;
        return 0;
}

static char *format_returncode(const JobInfo *j) {
        char *s = NULL;

        /* Only a process that ran and ended has a return code. */
        if (!ctl_state_is_final(j->state) || j->started_at == 0)
                return strdup("-");
        if (asprintf(&s, "%" PRIi32, j->returncode) < 0)
                return NULL;
        return s;
}

static const char *job_pool(const JobInfo *j) {
        return j->pool && *j->pool ? j->pool : PROCPOOL_DEFAULT_POOL;
}

/* list --pool: keeps the jobs of pool name only. A name that is no pool is an error, unless a job still
 * names it (finished jobs outlive their pool). */
static int filter_pool(Ctl *c, JobList *l, const char *name) {
        _cleanup_free_ char *path = NULL;
        size_t kept = 0;

        for (size_t i = 0; i < l->n; i++) {
                if (strcmp(job_pool(&l->jobs[i]), name) == 0)
                        l->jobs[kept++] = l->jobs[i];
                else
                        job_info_done(&l->jobs[i]);
        }
        l->n = kept;
        if (kept > 0)
                return 0;
        return ctl_pool_path(c, name, &path);
}

static int list_jobs(Ctl *c) {
        static const char *const headers[] = { "ID", "STATE", "RC", "PID", "RUNTIME", "LABEL", "COMMAND" };
        static const char *const headers_pool[] = { "ID",  "STATE",   "POOL",  "RC",
                                                    "PID", "RUNTIME", "LABEL", "COMMAND" };
        JobList l = {};
        bool show_pool;
        Table *t;
        int r;

        r = collect_jobs(c, c->all, &l);
        if (r != 0)
                return r;
        if (c->pool) {
                r = filter_pool(c, &l, c->pool);
                if (r != 0) {
                        job_list_done(&l);
                        return r;
                }
        }
        if (c->json) {
                fputc('[', stdout);
                for (size_t i = 0; i < l.n; i++) {
                        if (i > 0)
                                fputc(',', stdout);
                        json_write_job(stdout, &l.jobs[i]);
                }
                fputs("]\n", stdout);
                job_list_done(&l);
                return EXIT_SUCCESS;
        }

        /* The pool only where there is a choice of them. */
        show_pool = c->pool || ctl_has_pools(c);
        t = show_pool ? table_new(ELEMENTSOF(headers_pool), headers_pool)
                      : table_new(ELEMENTSOF(headers), headers);
        for (size_t i = 0; t && i < l.n; i++) {
                const JobInfo *j = &l.jobs[i];
                char id[32], pid[32];
                _cleanup_free_ char *rc = format_returncode(j);
                _cleanup_free_ char *runtime = j->started_at ? format_timespan(job_runtime(j)) : strdup("-");
                _cleanup_free_ char *cmd = format_command_line(j->argv);

                snprintf(id, sizeof id, "%" PRIu64, j->id);
                snprintf(pid, sizeof pid, j->pid ? "%" PRIu32 : "-", j->pid);
                const char *label = j->label && *j->label ? j->label : "-";
                const char *const row[] = { id, j->state, rc, pid, runtime, label, cmd };
                const char *const row_pool[] = { id, j->state, job_pool(j), rc, pid, runtime, label, cmd };
                if (table_add_row(t, show_pool ? row_pool : row) < 0)
                        t = table_free(t);
        }
        if (!t) {
                job_list_done(&l);
                return ctl_log_error(c, NULL, -ENOMEM, "Failed to list jobs");
        }
        table_print(t, stdout, !c->no_legend && !c->quiet, !c->full);
        if (!c->no_legend && !c->quiet) {
                if (table_rows(t) > 0)
                        printf("\nSTATE   = " PROCPOOL_STATE_QUEUED ", " PROCPOOL_STATE_RUNNING
                               ", or how the job ended: " PROCPOOL_STATE_EXITED ", " PROCPOOL_STATE_KILLED
                               ", " PROCPOOL_STATE_TIMED_OUT ",\n          " PROCPOOL_STATE_CANCELLED
                               ", " PROCPOOL_STATE_FAILED ".\n"
                               "RC      = The exit code, or minus the signal that ended the job.\n"
                               "RUNTIME = How long the job has run.\n\n");
                printf("%zu job%s listed.", table_rows(t), table_rows(t) == 1 ? "" : "s");
                if (!c->all)
                        printf(" Pass --all to see finished jobs, too.");
                putchar('\n');
        }
        table_free(t);
        job_list_done(&l);
        return EXIT_SUCCESS;
}

int verb_list(Ctl *c, int argc, char **argv) {
        return list_jobs(c);
}

static const char *signal_name(int sig) {
        const char *n = sig > 0 ? sigabbrev_np(sig) : NULL;
        return n ? n : "?";
}

/* The command line, quoted for a shell and escaped for the terminal. */
static char *format_command_safe(char *const *argv) {
        _cleanup_free_ char *cmd = format_command_line(argv);
        return cmd ? escape_for_terminal(cmd) : NULL;
}

static void print_job_status(const JobInfo *j) {
        /* Labels, command lines and errors are what another user chose: never raw on the terminal. */
        _cleanup_free_ char *cmd = format_command_safe(j->argv);
        _cleanup_free_ char *label = escape_for_terminal(j->label);
        _cleanup_free_ char *error = escape_for_terminal(j->error);
        /* What a cluster's controller said: not procpoold's words either. */
        _cleanup_free_ char *external_id = escape_for_terminal(j->external_id);
        _cleanup_free_ char *node = escape_for_terminal(j->node);
        struct passwd *pw = getpwuid(j->owner);

        printf("Job %" PRIu64 " - %s\n", j->id, label && *label ? label : cmd ? cmd : "");
        printf("      State: %s", j->state);
        if (j->pid)
                printf(" (PID %" PRIu32 ")", j->pid);
        else if (ctl_state_is_final(j->state) && j->started_at != 0) {
                if (j->returncode >= 0)
                        printf(" (code %" PRIi32 ")", j->returncode);
                else
                        printf(" (signal %s)", signal_name(-j->returncode));
        }
        putchar('\n');
        printf("    Command: %s\n", cmd ? cmd : "");
        if (label && *label)
                printf("      Label: %s\n", label);
        if (ctl_state_is_final(j->state) && j->started_at != 0)
                printf(" ReturnCode: %" PRIi32 "\n", j->returncode);
        printf("      Owner: %" PRIu32 "%s%s%s\n", j->owner, pw ? " (" : "", pw ? pw->pw_name : "",
               pw ? ")" : "");
        if (j->submitted_at) {
                _cleanup_free_ char *t = format_timestamp(j->submitted_at);
                printf("  Submitted: %s\n", t ? t : "");
        }
        if (j->started_at) {
                _cleanup_free_ char *t = format_timestamp(j->started_at);
                _cleanup_free_ char *rt = format_timespan(job_runtime(j));
                printf("    Started: %s\n", t ? t : "");
                if (j->finished_at) {
                        _cleanup_free_ char *f = format_timestamp(j->finished_at);
                        printf("   Finished: %s\n", f ? f : "");
                }
                printf("    Runtime: %s\n", rt ? rt : "");
        } else if (j->finished_at) {
                _cleanup_free_ char *f = format_timestamp(j->finished_at);
                printf("   Finished: %s\n", f ? f : "");
        }
        if (j->pool && *j->pool)
                printf("       Pool: %s\n", j->pool);
        if (external_id && *external_id)
                printf("External id: %s\n", external_id);
        if (node && *node)
                printf("       Node: %s\n", node);
        if (j->n_after > 0) {
                printf("      After:");
                for (size_t i = 0; i < j->n_after; i++)
                        printf(" %" PRIu64, j->after[i]);
                putchar('\n');
        }
        if (j->n_waiting_for > 0) {
                printf("Waiting for:");
                for (size_t i = 0; i < j->n_waiting_for; i++)
                        printf(" %" PRIu64, j->waiting_for[i]);
                putchar('\n');
        }
        if (j->not_before_usec > 0) {
                _cleanup_free_ char *t = format_timestamp(j->not_before_usec);
                printf(" Not before: %s\n", t ? t : "");
        }
        if (j->retry > 0 || j->attempt > 1) {
                printf("    Attempt: %" PRIu32 " of at most %" PRIu64 " (--retry=%" PRIu32, j->attempt,
                       (uint64_t) j->retry + 1, j->retry);
                if (j->retry_delay_usec > 0) {
                        _cleanup_free_ char *d = format_timespan(j->retry_delay_usec);
                        printf(", --retry-delay=%s", d ? d : "");
                }
                printf(")\n");
        }
        if (j->paused)
                printf("     Paused: yes\n");
        if (j->queue_position > 0 || (j->state && strcmp(j->state, PROCPOOL_STATE_QUEUED) == 0))
                printf("      Queue: %" PRIu32 " job%s ahead\n", j->queue_position,
                       j->queue_position == 1 ? "" : "s");
        if (j->cpu_usage_usec > 0) {
                _cleanup_free_ char *t = format_timespan(j->cpu_usage_usec);
                printf("        CPU: %s\n", t ? t : "");
        }
        if (j->memory_peak > 0) {
                _cleanup_free_ char *m = format_bytes(j->memory_peak);
                printf("     Memory: %s (peak)\n", m ? m : "");
        }
        if (error && *error)
                printf("      Error: %s\n", error);
        if (j->output_incomplete)
                printf("     Output: incomplete: the state dir had no room for more (see procpoold's log)\n");
        printf("       Path: %s\n", j->path);
}

int verb_status(Ctl *c, int argc, char **argv) {
        int ret = EXIT_SUCCESS;

        JsonList json = {};

        if (argc <= 1)
                return list_jobs(c);
        if (ctl_parse_job_ids(argc, argv, 1, NULL) != 0)
                return EXIT_USAGE;
        if (c->json)
                json_list_begin(&json, argc > 2);
        for (int i = 1; i < argc; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_free_ char *path = NULL;
                JobInfo j = {};
                uint64_t id;
                int r;

                (void) parse_job_id(argv[i], &id);
                r = ctl_job_path(c, id, &path);
                if (r != 0) {
                        ret = r;
                        if (c->absent)
                                break;
                        continue;
                }
                r = ctl_job_info(c, path, &j, &error);
                if (r < 0) {
                        ret = ctl_log_error(c, &error, r, "Failed to read the properties of job %" PRIu64,
                                            id);
                        continue;
                }
                if (c->json) {
                        json_list_next(&json);
                        json_write_job(stdout, &j);
                } else {
                        if (i > 1)
                                putchar('\n');
                        print_job_status(&j);
                }
                job_info_done(&j);
        }
        if (c->json)
                json_list_end(&json);
        return ret;
}

/* Calls a method on each job named in argv[1..]; returns 0 if every call succeeded. */
static int for_each_job(Ctl *c, int argc, char **argv, const char *method, const char *what,
                        const char *types, int arg) {
        int ret = EXIT_SUCCESS;
        JsonList json = {};

        if (ctl_parse_job_ids(argc, argv, 1, NULL) != 0)
                return EXIT_USAGE;
        /* With --json: the job as it is afterwards, one object, or an array of them for several IDs. */
        if (c->json)
                json_list_begin(&json, argc > 2);
        for (int i = 1; i < argc; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_free_ char *path = NULL;
                uint64_t id;
                int r;

                (void) parse_job_id(argv[i], &id);
                r = ctl_job_path(c, id, &path);
                if (r != 0) {
                        ret = r;
                        if (c->absent)
                                break;
                        continue;
                }
                if (types)
                        r = sd_bus_call_method(c->bus, ctl_destination(c), path, PROCPOOL_JOB_INTERFACE,
                                               method, &error, NULL, types, arg);
                else
                        r = sd_bus_call_method(c->bus, ctl_destination(c), path, PROCPOOL_JOB_INTERFACE,
                                               method, &error, NULL, NULL);
                if (r < 0) {
                        ret = ctl_log_error(c, &error, r, "Failed to %s job %" PRIu64, what, id);
                        continue;
                }
                if (c->json) {
                        json_list_next(&json);
                        if (strcmp(method, "Release") == 0)
                                printf("{\"id\":%" PRIu64 ",\"released\":true}", id);
                        else
                                ctl_json_job(c, stdout, id, path);
                }
        }
        if (c->json)
                json_list_end(&json);
        return ret;
}

int verb_cancel(Ctl *c, int argc, char **argv) {
        return for_each_job(c, argc, argv, "Cancel", "cancel", NULL, 0);
}

int verb_kill(Ctl *c, int argc, char **argv) {
        return for_each_job(c, argc, argv, "Kill", "kill", "i", c->kill_signal);
}

/* pause and resume: jobs, or with --pool a pool, not both. */
static int pause_or_resume(Ctl *c, int argc, char **argv, bool pause) {
        if (c->pool && argc > 1) {
                fprintf(stderr, "procpoolctl: '%s' takes job IDs or --pool=NAME, not both.\n", argv[0]);
                return EXIT_USAGE;
        }
        if (c->pool)
                return ctl_pool_pause_or_resume(c, c->pool, pause);
        if (argc <= 1) {
                fprintf(stderr,
                        "procpoolctl: '%s' needs job IDs or --pool=NAME.\nSee 'procpoolctl --help'.\n",
                        argv[0]);
                return EXIT_USAGE;
        }
        return pause ? for_each_job(c, argc, argv, "Pause", "pause", NULL, 0)
                     : for_each_job(c, argc, argv, "Resume", "resume", NULL, 0);
}

int verb_pause(Ctl *c, int argc, char **argv) {
        return pause_or_resume(c, argc, argv, true);
}

int verb_resume(Ctl *c, int argc, char **argv) {
        return pause_or_resume(c, argc, argv, false);
}

int verb_restart(Ctl *c, int argc, char **argv) {
        int ret = EXIT_SUCCESS;
        JsonList json = {};

        if (ctl_parse_job_ids(argc, argv, 1, NULL) != 0)
                return EXIT_USAGE;
        /* As submit prints it: the new job's id, or {"id", "path"}; an array of them for several IDs. */
        if (c->json)
                json_list_begin(&json, argc > 2);
        for (int i = 1; i < argc; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                _cleanup_free_ char *path = NULL;
                const char *new_path;
                uint64_t id;
                int r;

                (void) parse_job_id(argv[i], &id);
                r = ctl_job_path(c, id, &path);
                if (r != 0) {
                        ret = r;
                        if (c->absent)
                                break;
                        continue;
                }
                r = sd_bus_call_method(c->bus, ctl_destination(c), path, PROCPOOL_JOB_INTERFACE, "Restart",
                                       &error, &reply, NULL);
                if (r >= 0)
                        r = sd_bus_message_read(reply, "o", &new_path);
                if (r < 0) {
                        ret = ctl_log_error(c, &error, r, "Failed to restart job %" PRIu64, id);
                        continue;
                }
                if (c->json) {
                        json_list_next(&json);
                        printf("{\"id\":%" PRIu64 ",\"path\":", job_path_to_id(new_path));
                        json_write_string(stdout, new_path);
                        putchar('}');
                } else
                        printf("%" PRIu64 "\n", job_path_to_id(new_path));
                fflush(stdout);
        }
        if (c->json)
                json_list_end(&json);
        return ret;
}

int verb_clean(Ctl *c, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ uint64_t *released = NULL;
        size_t n_released = 0;
        uid_t uid = getuid();
        int ret = EXIT_SUCCESS, r;

        r = ctl_connect(c);
        if (r != 0)
                return r;
        r = ctl_list_jobs(c, &reply);
        if (r != 0)
                return r;
        for (;;) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                const char *path, *state;
                uint64_t id, *l;
                uint32_t owner;
                int32_t rc;

                r = sd_bus_message_read(reply, "(tosi)", &id, &path, &state, &rc);
                if (r < 0)
                        return ctl_log_error(c, NULL, r, "Failed to read the job list");
                if (r == 0)
                        break;
                if (!ctl_state_is_final(state))
                        continue;
                /* Only the caller's own jobs, whoever the caller is: root's clean leaves others' alone. */
                if (sd_bus_get_property_trivial(c->bus, ctl_destination(c), path, PROCPOOL_JOB_INTERFACE,
                                                "Owner", &e, 'u', &owner) < 0)
                        continue; /* released meanwhile */
                if (owner != uid)
                        continue;
                if (c->failed_only) {
                        /* Read again: ListJobs says 0 for a return code the caller may not read, and
                         * the caller reads its own. */
                        if (sd_bus_get_property_trivial(c->bus, ctl_destination(c), path,
                                                        PROCPOOL_JOB_INTERFACE, "ReturnCode", &e, 'i',
                                                        &rc) < 0)
                                continue;
                        if (strcmp(state, PROCPOOL_STATE_EXITED) == 0 && rc == 0)
                                continue;
                }
                r = sd_bus_call_method(c->bus, ctl_destination(c), path, PROCPOOL_JOB_INTERFACE, "Release",
                                       &e, NULL, NULL);
                if (r < 0) {
                        if (sd_bus_error_has_name(&e, SD_BUS_ERROR_UNKNOWN_OBJECT))
                                continue; /* released meanwhile */
                        ret = ctl_log_error(c, &e, r, "Failed to release job %" PRIu64, id);
                        if (c->absent)
                                break;
                        continue;
                }
                l = realloc(released, (n_released + 1) * sizeof(uint64_t));
                if (!l)
                        return ctl_log_error(c, NULL, -ENOMEM, "Failed to release jobs");
                released = l;
                released[n_released++] = id;
        }
        if (c->json) {
                fputs("{\"released\":[", stdout);
                for (size_t i = 0; i < n_released; i++)
                        printf("%s%" PRIu64, i > 0 ? "," : "", released[i]);
                fputs("]}\n", stdout);
        } else if (!c->quiet)
                printf("Released %zu job%s.\n", n_released, n_released == 1 ? "" : "s");
        return ret;
}

int verb_release(Ctl *c, int argc, char **argv) {
        return for_each_job(c, argc, argv, "Release", "release", NULL, 0);
}

/* Reads the Manager's Running, Queued and MaxQueued; returns 0 or a negative errno with error set. */
static int read_pool_counts(Ctl *c, sd_bus_error *error, uint32_t *ret_running, uint32_t *ret_queued,
                            uint32_t *ret_max_queued) {
        uint32_t running, queued, max_queued;
        int r;

        r = sd_bus_get_property_trivial(c->bus, ctl_destination(c), PROCPOOL_OBJECT_PATH,
                                        PROCPOOL_MANAGER_INTERFACE, "Running", error, 'u', &running);
        if (r < 0)
                return r;
        r = sd_bus_get_property_trivial(c->bus, ctl_destination(c), PROCPOOL_OBJECT_PATH,
                                        PROCPOOL_MANAGER_INTERFACE, "Queued", error, 'u', &queued);
        if (r < 0)
                return r;
        r = sd_bus_get_property_trivial(c->bus, ctl_destination(c), PROCPOOL_OBJECT_PATH,
                                        PROCPOOL_MANAGER_INTERFACE, "MaxQueued", error, 'u', &max_queued);
        if (r < 0)
                return r;
        *ret_running = running;
        *ret_queued = queued;
        *ret_max_queued = max_queued;
        return 0;
}

int verb_pool_size(Ctl *c, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        uint32_t size, running = 0, queued = 0, max_queued = 0;
        int r;

        if (argc > 1) {
                long long n;

                if (parse_int_range(argv[1], 0, UINT32_MAX, &n) < 0) {
                        fprintf(stderr, "Invalid pool size '%s': expected a positive number.\n", argv[1]);
                        return EXIT_USAGE;
                }
                r = ctl_connect(c);
                if (r != 0)
                        return r;
                r = sd_bus_set_property(c->bus, ctl_destination(c), PROCPOOL_OBJECT_PATH,
                                        PROCPOOL_MANAGER_INTERFACE, "PoolSize", &error, "u", (uint32_t) n);
                if (r < 0)
                        return ctl_log_error(c, &error, r, "Failed to set the pool size to %lld", n);
                return EXIT_SUCCESS;
        }

        r = ctl_connect(c);
        if (r != 0)
                return r;
        r = sd_bus_get_property_trivial(c->bus, ctl_destination(c), PROCPOOL_OBJECT_PATH,
                                        PROCPOOL_MANAGER_INTERFACE, "PoolSize", &error, 'u', &size);
        if (r < 0)
                return ctl_log_error(c, &error, r, "Failed to read the pool size");
        if (!c->json) {
                printf("%" PRIu32 "\n", size);
                return EXIT_SUCCESS;
        }
        r = read_pool_counts(c, &error, &running, &queued, &max_queued);
        if (r < 0)
                return ctl_log_error(c, &error, r, "Failed to read the pool's properties");
        printf("{\"pool_size\":%" PRIu32 ",\"running\":%" PRIu32 ",\"queued\":%" PRIu32
               ",\"max_queued\":%" PRIu32 "}\n",
               size, running, queued, max_queued);
        return EXIT_SUCCESS;
}
