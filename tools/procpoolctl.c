/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* procpoolctl: the command line, the bus connection and the error reporting every command shares. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <langinfo.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "procpool-api.h"
#include "ctl-errors.h"
#include "ctl-output.h"
#include "ctl-parse.h"
#include "ctl.h"
#include "parse-util.h"

typedef struct Verb {
        const char *name;
        int (*run)(Ctl *c, int argc, char **argv);
        unsigned min_args, max_args; /* positional arguments after the name */
        bool job_options;            /* takes the options of call, communicate and submit */
        const char *synopsis;
        const char *short_help; /* one line for the overview */
        const char *summary;
        const char *options_help;
} Verb;

#define JOB_OPTIONS_HELP                                                                             \
        "      --timeout=TIME         Stop the job this long after it starts (e.g. 30s, 5min)\n"     \
        "      --stop-timeout=TIME    Grace between SIGTERM and SIGKILL when it is stopped\n"        \
        "  -E, --setenv=NAME[=VALUE]  Set an environment variable for the job (repeatable);\n"       \
        "                             NAME alone passes this one's value (empty if unset)\n"         \
        "      --clear-env            Start from an empty environment, not procpoold's\n"            \
        "      --cwd=DIR              Working directory (default: the current one)\n"                \
        "      --label=TEXT           Free text shown in list and status\n"                          \
        "      --priority=N           Higher starts first (default: 0)\n"                            \
        "      --output-limit=BYTES   Bytes kept per captured stream, with K, M, G suffixes\n"       \
        "      --user=USER            Run as USER, a name or uid (system instance; polkit asks\n"    \
        "                             an administrator unless USER is you)\n"                        \
        "      --pool=NAME            Run in pool NAME (default: default)\n"                         \
        "      --after=ID[,ID...]     Start only once these jobs exited 0 (repeatable)\n"            \
        "      --at=TIME              Do not start before TIME: @SECONDS, [+]TIMESPAN (from now),\n" \
        "                             YYYY-MM-DD HH:MM[:SS], or HH:MM[:SS] (today or tomorrow)\n"    \
        "      --retry=N              Run a failed attempt again, N times at most\n"                 \
        "      --retry-delay=TIME     Wait this long before each retry\n"

#define UINT_MAX_ARGS ((unsigned) -1)

static const Verb verbs[] = {
        { "call", verb_call, 1, UINT_MAX_ARGS, true, "call [OPTIONS...] -- CMD [ARG...]",
          "Run CMD with this terminal's streams, exit with its code",
          "Run CMD in the pool with this process's stdin, stdout and stderr, and exit with its code.\n"
          "Ctrl-C or SIGTERM cancels the job.",
          JOB_OPTIONS_HELP },
        { "communicate", verb_communicate, 1, UINT_MAX_ARGS, true, "communicate [OPTIONS...] -- CMD [ARG...]",
          "Run CMD with all of stdin as input, print its output",
          "Read all of stdin, run CMD in the pool with it as input, then write the job's stdout and\n"
          "stderr, and exit with its code.",
          JOB_OPTIONS_HELP },
        { "submit", verb_submit, 1, UINT_MAX_ARGS, true,
          "submit [OPTIONS...] [--wait] -- CMD [ARG...] [::: INPUT...]", "Queue CMD and print its job id",
          "Queue CMD as a job and print its id. Its output is kept for 'procpoolctl output'.\n"
          "With ::: INPUT..., queue one job per INPUT, as GNU parallel does: every {} in CMD and its\n"
          "arguments replaced by it, or it added as the last argument; all of them or none, one id a line.",
          JOB_OPTIONS_HELP "      --wait                 Wait for the job and exit with its code\n" },
        { "map", verb_map, 1, UINT_MAX_ARGS, true, "map [OPTIONS...] -- CMD [ARG...] < LINES",
          "Run CMD once per line of stdin, as GNU parallel does",
          "Run CMD once per line of stdin in the pool, every {} in CMD and its arguments replaced by the line\n"
          "(without {}, the line is the last argument). Each job's stdout is printed as one block, and its\n"
          "stderr, in the order the jobs end (--keep-order: the order of the lines); the jobs are released\n"
          "once printed. Exits 0 if every job exited 0, else with the number of failed jobs (at most 101),\n"
          "as GNU parallel; 255 when procpoolctl or procpoold failed. Ctrl-C or SIGTERM cancels the jobs.",
          JOB_OPTIONS_HELP
          "      --pool=NAME            Run the jobs in this pool (default: 'default')\n"
          "      --keep-order           Print the outputs in the order of the lines\n"
          "      --joblog=FILE          Write GNU parallel's job log: a line per job, tab-separated\n"
          "      --halt-on-error        After the first failed job, cancel the rest and exit with its\n"
          "                             code\n" },
        { "wait", verb_wait, 0, UINT_MAX_ARGS, false, "wait [ID...]",
          "Wait for jobs (all of yours without IDs)",
          "Wait until the jobs have ended; without IDs, all of your unfinished jobs. Exits 0 if\n"
          "every job exited 0; with one ID, with that job's code.",
          NULL },
        { "list", verb_list, 0, 0, false, "list [--pool=NAME]", "List unfinished jobs (all with --all)",
          "List the unfinished jobs, or all jobs with --all. A POOL column shows each job's pool when\n"
          "there is more than one pool, or with --pool.",
          "  -a, --all                  Also list finished jobs\n"
          "  -l, --full                 Do not cut the command line to the terminal's width\n"
          "      --pool=NAME            Only the jobs of pool NAME\n" },
        { "status", verb_status, 0, UINT_MAX_ARGS, false, "status [ID...]",
          "Show jobs' properties, or list jobs",
          "Show the properties of jobs; without an ID, list jobs as 'list' does.",
          "  -a, --all                  Without an ID, also list finished jobs\n"
          "  -l, --full                 Do not cut the command line to the terminal's width\n" },
        { "output", verb_output, 1, 1, false, "output [-f] ID", "Print a job's captured stdout and stderr",
          "Write the captured stdout of a job to stdout and its stderr to stderr. With --follow, go on\n"
          "printing what it writes until it ends, then exit with its code.",
          "  -f, --follow               Print the output as it is written until the job ends\n" },
        { "cancel", verb_cancel, 1, UINT_MAX_ARGS, false, "cancel ID...", "Cancel jobs",
          "Cancel jobs: a queued job never starts, a running one is stopped.", NULL },
        { "kill", verb_kill, 1, UINT_MAX_ARGS, false, "kill [-s SIGNAL] ID...", "Send a signal to jobs",
          "Send a signal to the process group of running jobs.",
          "  -s, --signal=SIGNAL        The signal: a name (TERM, SIGUSR1) or number (default: TERM)\n" },
        { "pause", verb_pause, 0, UINT_MAX_ARGS, false, "pause ID... | --pool=NAME",
          "Stop running jobs where they are, or a pool starting any",
          "Stop every process of running jobs where they are (a frozen cgroup, or SIGSTOP), keeping their\n"
          "slots in the pool; their timeouts stand still meanwhile. 'resume' lets them go on.\n"
          "With --pool=NAME, pause the pool instead: it starts no job until it is resumed; its running\n"
          "jobs go on, and jobs may still be queued in it.",
          "      --pool=NAME            Pause pool NAME, not jobs\n" },
        { "resume", verb_resume, 0, UINT_MAX_ARGS, false, "resume ID... | --pool=NAME",
          "Let paused jobs, or a paused pool, go on",
          "Let paused jobs go on, their timeouts with what was left of them. With --pool=NAME, let the\n"
          "pool start jobs again.",
          "      --pool=NAME            Resume pool NAME, not jobs\n" },
        { "restart", verb_restart, 1, UINT_MAX_ARGS, false, "restart ID...", "Submit jobs again",
          "Submit a new job with each job's command line, environment, options and pool, and print the\n"
          "new job's id, as submit does. The job may be finished or not; it is left as it is. A job that\n"
          "was given procpoolctl's streams (call) or input (communicate) cannot be restarted.",
          NULL },
        { "release", verb_release, 1, UINT_MAX_ARGS, false, "release ID...", "Forget finished jobs",
          "Forget finished jobs.", NULL },
        { "clean", verb_clean, 0, 0, false, "clean [--failed-only]", "Forget all of your finished jobs",
          "Release every finished job of yours (the jobs whose owner is the calling user), and print how\n"
          "many. Other users' jobs are never touched, also when root runs it.",
          "      --failed-only          Only the jobs that did not exit with code 0\n" },
        { "pool", verb_pool, 1, 3, false, "pool list|create|remove|size ...",
          "List, create, remove and resize pools",
          "pool list                    List the pools: size, running and queued jobs, paused, executor\n"
          "pool create NAME [--size=N]  Create pool NAME, N jobs at once (default: procpoold's, or the\n"
          "                             CPUs of a Slurm pool's cluster)\n"
          "pool remove NAME             Remove pool NAME; it must have no queued or running job\n"
          "pool size NAME [N]           Show how many jobs pool NAME runs at once, or set it to N\n"
          "\nSubmit to a pool with 'submit --pool=NAME'; pause it with 'pause --pool=NAME'.",
          "      --size=N               pool create: the pool's size\n"
          "      --executor=local|slurm pool create: where its jobs run: child processes of procpoold\n"
          "                             (local, the default) or srun steps on a Slurm cluster\n"
          "      --slurm-conf=PATH      pool create --executor=slurm: the cluster's slurm.conf\n"
          "                             (absolute; default: srun's own)\n"
          "      --partition=NAME       pool create --executor=slurm: the partition its jobs run in\n" },
        { "pool-size", verb_pool_size, 0, 1, false, "pool-size [N]", "Show or set how many jobs run at once",
          "Show how many jobs may run at once, or set it to N.", NULL },
        { "monitor", verb_monitor, 0, 0, false, "monitor", "Print job events as they happen",
          "Print job events (submitted, started, finished) as they happen, until interrupted.", NULL },
        { "daemon-reexec", verb_daemon_reexec, 0, 0, false, "daemon-reexec",
          "Re-execute procpoold; running jobs go on",
          "Make procpoold re-execute its binary (after an upgrade, say) without stopping its jobs: it hands\n"
          "them over to its new image, in the same process. Returns once procpoold owns its bus name again.\n"
          "Waiting 'call', 'communicate' and 'wait' commands wait on through it. Needs root, or the uid\n"
          "procpoold runs as.",
          NULL },
};

static const char global_options_help[] =
        "  -h, --help                 Show this help\n"
        "      --version              Show the version\n"
        "      --user                 Talk to procpoold on the user's session bus (default)\n"
        "      --system               Talk to procpoold on the system bus\n"
        "  -H, --host=[USER@]HOST     Talk to the system bus of a remote host over SSH\n"
        "  -M, --machine=NAME         Talk to the bus of a local container\n"
        "      --address=ADDRESS      Talk to the bus at this D-Bus address\n"
        "      --bus                  Talk over the bus, not procpoold's private socket\n"
        "      --json                 Print JSON: results, jobs and errors (see procpoolctl(1))\n"
        "      --no-legend            Do not print the header and footer of tables\n"
        "  -q, --quiet                Print no progress and no informational messages\n"
        "      --no-ask-password      Do not let polkit ask for a password: what needs one fails\n";

enum {
        ARG_VERSION = 0x100,
        ARG_USER,
        ARG_SYSTEM,
        ARG_ADDRESS,
        ARG_BUS,
        ARG_JSON,
        ARG_NO_LEGEND,
        ARG_TIMEOUT,
        ARG_STOP_TIMEOUT,
        ARG_CLEAR_ENV,
        ARG_CWD,
        ARG_LABEL,
        ARG_PRIORITY,
        ARG_OUTPUT_LIMIT,
        ARG_WAIT,
        ARG_NO_ASK_PASSWORD,
        /* map's own */
        ARG_KEEP_ORDER,
        ARG_JOBLOG,
        ARG_HALT_ON_ERROR,
        ARG_POOL,
        ARG_AFTER,
        ARG_AT,
        ARG_RETRY,
        ARG_RETRY_DELAY,
        ARG_SIZE,
        ARG_EXECUTOR,
        ARG_SLURM_CONF,
        ARG_PARTITION,
        ARG_FAILED_ONLY,
};

static const struct option options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, ARG_VERSION },
        /* --user alone: the session bus; --user=USER: a job option, whom the job runs as. */
        { "user", optional_argument, NULL, ARG_USER },
        { "system", no_argument, NULL, ARG_SYSTEM },
        { "host", required_argument, NULL, 'H' },
        { "machine", required_argument, NULL, 'M' },
        { "address", required_argument, NULL, ARG_ADDRESS },
        { "bus", no_argument, NULL, ARG_BUS },
        { "json", no_argument, NULL, ARG_JSON },
        { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
        { "quiet", no_argument, NULL, 'q' },
        { "all", no_argument, NULL, 'a' },
        { "full", no_argument, NULL, 'l' },
        { "timeout", required_argument, NULL, ARG_TIMEOUT },
        { "stop-timeout", required_argument, NULL, ARG_STOP_TIMEOUT },
        { "setenv", required_argument, NULL, 'E' },
        { "clear-env", no_argument, NULL, ARG_CLEAR_ENV },
        { "cwd", required_argument, NULL, ARG_CWD },
        { "label", required_argument, NULL, ARG_LABEL },
        { "priority", required_argument, NULL, ARG_PRIORITY },
        { "output-limit", required_argument, NULL, ARG_OUTPUT_LIMIT },
        { "wait", no_argument, NULL, ARG_WAIT },
        { "signal", required_argument, NULL, 's' },
        { "follow", no_argument, NULL, 'f' },
        { "no-ask-password", no_argument, NULL, ARG_NO_ASK_PASSWORD },
        { "keep-order", no_argument, NULL, ARG_KEEP_ORDER },
        { "joblog", required_argument, NULL, ARG_JOBLOG },
        { "halt-on-error", no_argument, NULL, ARG_HALT_ON_ERROR },
        { "pool", required_argument, NULL, ARG_POOL },
        { "after", required_argument, NULL, ARG_AFTER },
        { "at", required_argument, NULL, ARG_AT },
        { "retry", required_argument, NULL, ARG_RETRY },
        { "retry-delay", required_argument, NULL, ARG_RETRY_DELAY },
        { "size", required_argument, NULL, ARG_SIZE },
        { "executor", required_argument, NULL, ARG_EXECUTOR },
        { "slurm-conf", required_argument, NULL, ARG_SLURM_CONF },
        { "partition", required_argument, NULL, ARG_PARTITION },
        { "failed-only", no_argument, NULL, ARG_FAILED_ONLY },
        {},
};

static const Verb *find_verb(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strcmp(verbs[i].name, name) == 0)
                        return &verbs[i];
        return NULL;
}

static void help(void) {
        printf("procpoolctl [OPTIONS...] COMMAND ...\n\n"
               "Run commands through procpoold, a bounded pool of worker processes.\n\n"
               "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                printf("  %-40s %s\n", verbs[i].synopsis, verbs[i].short_help);
        printf("  %-40s %s\n", "help [COMMAND]", "Show this help, or a command's");
        printf("\nOptions:\n%s\nOptions of call, communicate and submit:\n%s\n"
               "See 'procpoolctl COMMAND --help' or procpoolctl(1) for more.\n",
               global_options_help, JOB_OPTIONS_HELP);
}

static void verb_help(const Verb *v) {
        printf("procpoolctl [OPTIONS...] %s\n\n%s\n", v->synopsis, v->summary);
        if (v->options_help)
                printf("\nOptions:\n%s", v->options_help);
        printf("\nGlobal options:\n%s", global_options_help);
}

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...) {
        va_list ap;

        fputs("procpoolctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\nSee 'procpoolctl --help'.\n", stderr);
        return EXIT_USAGE;
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

/* --after=ID[,ID...], added to those of earlier --after options. */
static int parse_after(Ctl *c, const char *value) {
        _cleanup_free_ char *copy = strdup(value);
        char *save = NULL;
        size_t n = 0;

        if (!copy) {
                fputs("Out of memory.\n", stderr);
                exit(EXIT_FAILED);
        }
        for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                uint64_t id, *l;

                if (parse_job_id(w, &id) < 0)
                        return usage_error("Invalid job id '%s' in --after=%s.", w, value);
                l = realloc(c->after, (c->n_after + 1) * sizeof(uint64_t));
                if (!l) {
                        fputs("Out of memory.\n", stderr);
                        exit(EXIT_FAILED);
                }
                c->after = l;
                c->after[c->n_after++] = id;
                n++;
        }
        if (n == 0)
                return usage_error("Invalid --after value '%s': expected job ids, separated by commas.",
                                   value);
        return 0;
}

/* Handles one option; returns 0, or EXIT_USAGE after printing why. Exits for --help and --version. */
static int handle_option(Ctl *c, int opt, const Verb *v, const char **job_option_seen, bool *wait_seen,
                         bool *signal_seen) {
        uint64_t u;
        long long n;

        switch (opt) {
        case 'h':
                if (v)
                        verb_help(v);
                else
                        help();
                exit(EXIT_SUCCESS);
        case ARG_VERSION:
                printf("procpoolctl %s\n", PROCPOOL_VERSION);
                exit(EXIT_SUCCESS);
        case ARG_USER:
                if (optarg) {
                        *job_option_seen = "--user=USER";
                        if (!optarg[0])
                                return usage_error("Invalid --user value '': expected a user name or uid.");
                        c->run_as = optarg;
                        return 0;
                }
                c->user = true;
                c->system = false;
                return 0;
        case ARG_NO_ASK_PASSWORD:
                c->no_ask_password = true;
                return 0;
        case ARG_SYSTEM:
                c->system = true;
                c->user = false;
                return 0;
        case 'H':
                c->host = optarg;
                return 0;
        case 'M':
                c->machine = optarg;
                return 0;
        case ARG_ADDRESS:
                c->address = optarg;
                return 0;
        case ARG_BUS:
                c->force_bus = true;
                return 0;
        case ARG_JSON:
                c->json = true;
                return 0;
        case ARG_NO_LEGEND:
                c->no_legend = true;
                return 0;
        case 'q':
                c->quiet = true;
                return 0;
        case 'a':
                c->all = true;
                return 0;
        case 'l':
                c->full = true;
                return 0;
        case ARG_TIMEOUT:
                *job_option_seen = "--timeout";
                /* "infinity", as systemd spells no timeout, is the daemon's 0 */
                if (strcmp(optarg, "infinity") == 0)
                        u = 0;
                else if (parse_timespan(optarg, &u) < 0)
                        return usage_error("Invalid time span for --timeout: '%s'.", optarg);
                c->timeout_usec = u;
                c->timeout_set = true;
                return 0;
        case ARG_STOP_TIMEOUT:
                *job_option_seen = "--stop-timeout";
                if (parse_timespan(optarg, &u) < 0)
                        return usage_error("Invalid time span for --stop-timeout: '%s'.", optarg);
                c->stop_timeout_usec = u;
                c->stop_timeout_set = true;
                return 0;
        case 'E': {
                const char *eq = strchr(optarg, '=');
                char **l, *entry;

                *job_option_seen = "--setenv";
                if (eq == optarg)
                        return usage_error("Invalid --setenv value '%s': expected NAME=VALUE or NAME.",
                                           optarg);
                if (!eq && !env_name_is_valid(optarg))
                        return usage_error(
                                "Invalid --setenv value '%s': '%s' is not a variable name (letters, "
                                "digits and '_', not starting with a digit).",
                                optarg, optarg);
                /* NAME alone passes procpoolctl's own value on, as systemd-run -E does: empty if unset. */
                if (eq)
                        entry = strdup(optarg);
                else if (asprintf(&entry, "%s=%s", optarg, getenv(optarg) ?: "") < 0)
                        entry = NULL;
                l = entry ? realloc(c->environment, (c->n_environment + 2) * sizeof(char *)) : NULL;
                if (!l) {
                        free(entry);
                        fputs("Out of memory.\n", stderr);
                        exit(EXIT_FAILED);
                }
                c->environment = l;
                l[c->n_environment++] = entry;
                l[c->n_environment] = NULL;
                return 0;
        }
        case ARG_CLEAR_ENV:
                *job_option_seen = "--clear-env";
                c->clear_env = true;
                return 0;
        case ARG_CWD:
                *job_option_seen = "--cwd";
                c->cwd = optarg;
                return 0;
        case ARG_LABEL:
                *job_option_seen = "--label";
                c->label = optarg;
                return 0;
        case ARG_PRIORITY:
                *job_option_seen = "--priority";
                if (parse_int_range(optarg, INT32_MIN, INT32_MAX, &n) < 0)
                        return usage_error("Invalid priority '%s': expected an integer.", optarg);
                c->priority = (int32_t) n;
                c->priority_set = true;
                return 0;
        case ARG_OUTPUT_LIMIT:
                *job_option_seen = "--output-limit";
                if (parse_size(optarg, &u) < 0)
                        return usage_error("Invalid size for --output-limit: '%s'.", optarg);
                c->output_limit = u;
                c->output_limit_set = true;
                return 0;
        case ARG_POOL:
                if (!optarg[0])
                        return usage_error("Invalid --pool value '': expected a pool's name.");
                c->pool = optarg;
                return 0;
        case ARG_AFTER:
                *job_option_seen = "--after";
                return parse_after(c, optarg);
        case ARG_AT:
                *job_option_seen = "--at";
                if (parse_timestamp(optarg, now_usec(), &u) < 0)
                        return usage_error("Invalid time for --at: '%s': expected @SECONDS, [+]TIMESPAN, "
                                           "YYYY-MM-DD HH:MM[:SS] or HH:MM[:SS].",
                                           optarg);
                c->not_before_usec = u;
                c->not_before_set = true;
                return 0;
        case ARG_RETRY:
                *job_option_seen = "--retry";
                if (parse_int_range(optarg, 0, UINT32_MAX, &n) < 0)
                        return usage_error("Invalid --retry value '%s': expected a number of retries.",
                                           optarg);
                c->retry = (uint32_t) n;
                c->retry_set = true;
                return 0;
        case ARG_RETRY_DELAY:
                *job_option_seen = "--retry-delay";
                if (parse_timespan(optarg, &u) < 0)
                        return usage_error("Invalid time span for --retry-delay: '%s'.", optarg);
                c->retry_delay_usec = u;
                c->retry_delay_set = true;
                return 0;
        case ARG_SIZE:
                if (parse_int_range(optarg, 1, UINT32_MAX, &n) < 0)
                        return usage_error("Invalid --size value '%s': expected a positive number.", optarg);
                c->pool_size = (uint32_t) n;
                c->pool_size_set = true;
                return 0;
        case ARG_EXECUTOR:
                c->executor = optarg;
                return 0;
        case ARG_SLURM_CONF:
                c->slurm_conf = optarg;
                return 0;
        case ARG_PARTITION:
                c->partition = optarg;
                return 0;
        case ARG_FAILED_ONLY:
                c->failed_only = true;
                return 0;
        case ARG_WAIT:
                *wait_seen = true;
                c->wait = true;
                return 0;
        case 'f':
                c->follow = true;
                return 0;
        case ARG_KEEP_ORDER:
                c->map_option_seen = "--keep-order";
                c->keep_order = true;
                return 0;
        case ARG_JOBLOG:
                c->map_option_seen = "--joblog";
                c->joblog = optarg;
                return 0;
        case ARG_HALT_ON_ERROR:
                c->map_option_seen = "--halt-on-error";
                c->halt_on_error = true;
                return 0;
        case 's':
                *signal_seen = true;
                if (parse_signal(optarg, &c->kill_signal) < 0)
                        return usage_error("Invalid signal '%s'.", optarg);
                return 0;
        default: /* getopt printed what was wrong */
                fputs("See 'procpoolctl --help'.\n", stderr);
                return EXIT_USAGE;
        }
}

static void ctl_done(Ctl *c) {
        strv_free(c->environment);
        free(c->after);
        c->bus = sd_bus_flush_close_unref(c->bus);
        if (c->old_bus)
                (void) sd_bus_detach_event(c->old_bus);
        c->old_bus = sd_bus_close_unref(c->old_bus);
}

static int run(Ctl *c, int argc, char **argv) {
        static const char short_options[] = "hH:M:qalE:s:f";
        const char *job_option_seen = NULL;
        bool wait_seen = false, signal_seen = false;
        const Verb *v;
        int opt, r, verb_argc;
        char **verb_argv;

        setlocale(LC_ALL, "");
        /* Every string on the bus is UTF-8: read it as such (display widths, what prints) also under the
         * C locale, where a CJK label would otherwise be escaped byte by byte. */
        if (strcmp(nl_langinfo(CODESET), "UTF-8") != 0)
                (void) setlocale(LC_CTYPE, "C.UTF-8");

        /* Options before the command, up to its name. */
        opterr = 1;
        while ((opt = getopt_long(argc, argv,
                                  "+"
                                  "hH:M:qalE:s:f",
                                  options, NULL)) >= 0) {
                r = handle_option(c, opt, NULL, &job_option_seen, &wait_seen, &signal_seen);
                if (r != 0)
                        return r;
        }
        if (optind >= argc)
                return usage_error("Missing command.");
        if (strcmp(argv[optind], "help") == 0) {
                const Verb *h = optind + 1 < argc ? find_verb(argv[optind + 1]) : NULL;
                if (h)
                        verb_help(h);
                else
                        help();
                return EXIT_SUCCESS;
        }
        v = find_verb(argv[optind]);
        if (!v)
                return usage_error("Unknown command '%s'.", argv[optind]);

        /* Options after the command's name. A command line to run starts at its first word, so
         * `procpoolctl call sh -c ...` leaves -c to sh; other commands take options anywhere. */
        verb_argc = argc - optind;
        verb_argv = argv + optind;
        optind = 0;
        while ((opt = getopt_long(verb_argc, verb_argv, v->job_options ? "+hH:M:qalE:s:f" : short_options,
                                  options, NULL)) >= 0) {
                r = handle_option(c, opt, v, &job_option_seen, &wait_seen, &signal_seen);
                if (r != 0)
                        return r;
        }

        if (job_option_seen && !v->job_options)
                return usage_error("Option %s is not valid for '%s'.", job_option_seen, v->name);
        if (wait_seen && v->run != verb_submit)
                return usage_error("Option --wait is not valid for '%s'.", v->name);
        if (c->map_option_seen && v->run != verb_map)
                return usage_error("Option %s is not valid for '%s'.", c->map_option_seen, v->name);
        if (c->pool && !v->job_options && v->run != verb_list && v->run != verb_pause &&
            v->run != verb_resume)
                return usage_error("Option --pool is not valid for '%s'.", v->name);
        if (c->pool_size_set && v->run != verb_pool)
                return usage_error("Option --size is not valid for '%s'.", v->name);
        if (v->run != verb_pool && (c->executor || c->slurm_conf || c->partition))
                return usage_error("Option %s is not valid for '%s'.",
                                   c->executor     ? "--executor"
                                   : c->slurm_conf ? "--slurm-conf"
                                                   : "--partition",
                                   v->name);
        if (c->failed_only && v->run != verb_clean)
                return usage_error("Option --failed-only is not valid for '%s'.", v->name);
        if (signal_seen && v->run != verb_kill)
                return usage_error("Option --signal is not valid for '%s'.", v->name);
        if (c->follow && v->run != verb_output)
                return usage_error("Option --follow is not valid for '%s'.", v->name);
        if (c->follow && c->json)
                return usage_error("Options --follow and --json cannot be combined: --json prints the output "
                                   "once, as one object.");
        if (c->host && c->machine)
                return usage_error("Options --host and --machine cannot be combined.");
        if (c->host && c->user)
                return usage_error(
                        "Option --host reaches the system bus only; --user cannot be combined with it.");
        if ((unsigned) (verb_argc - optind) < v->min_args) {
                if (v->job_options)
                        return usage_error("'%s' needs a command to run: procpoolctl %s", v->name,
                                           v->synopsis);
                return usage_error("'%s' needs an argument: procpoolctl %s", v->name, v->synopsis);
        }
        if ((unsigned) (verb_argc - optind) > v->max_args)
                return usage_error("Too many arguments for '%s': procpoolctl %s", v->name, v->synopsis);

        /* Hand the command its name and positional arguments. */
        verb_argv[optind - 1] = verb_argv[0];
        c->verb = v->name;
        return v->run(c, verb_argc - optind + 1, verb_argv + optind - 1);
}

int main(int argc, char **argv) {
        Ctl c = { .kill_signal = 15 /* SIGTERM */ };
        int r;

        /* Before any call, so that every error the daemon replies with reads as its errno. */
        r = procpool_error_map_register();
        if (r < 0) {
                fprintf(stderr, "Failed to register procpool's bus errors: %s\n", strerror(-r));
                return EXIT_FAILED;
        }
        r = run(&c, argc, argv);
        ctl_done(&c);
        return r;
}

static const char *bus_description(const Ctl *c) {
        if (c->address)
                return "the bus";
        if (c->host || c->machine)
                return c->user ? "the remote user bus" : "the remote system bus";
        return c->system ? "the system bus" : "the user bus";
}

/* Connects to the bus at address, as a client that can pass file descriptors. */
static int bus_open_address(const char *address, sd_bus **ret) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, address);
        if (r < 0)
                return r;
        r = sd_bus_set_bus_client(bus, true);
        if (r < 0)
                return r;
        r = sd_bus_negotiate_fds(bus, true);
        if (r < 0)
                return r;
        r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

/* How long a direct connection may take to be authenticated before procpoolctl takes the bus instead: a
 * daemon that re-executes takes the connection up from its socket's backlog within this. */
#define DIRECT_READY_USEC (5ULL * 1000000ULL)

/* procpoold's private socket for the instance the options name, or NULL (not for a remote bus or an
 * address, nor with --bus). */
static char *private_socket_path(const Ctl *c) {
        const char *e;
        char *p;

        if (c->force_bus || c->address || c->host || c->machine)
                return NULL;
        if (c->system)
                return strdup("/run/procpool/private");
        e = getenv("XDG_RUNTIME_DIR");
        if (!e || e[0] != '/')
                return NULL;
        return asprintf(&p, "%s/procpool/private", e) < 0 ? NULL : p;
}

static uint64_t monotonic_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

/* A direct connection to the private socket at path, authenticated; negative if there is none or
 * procpoold refused it (too many connections), so that the bus is taken instead. */
static int direct_open(const char *path, sd_bus **ret) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *address = NULL;
        uint64_t deadline;
        int r;

        if (access(path, F_OK) < 0)
                return -errno;
        /* A D-Bus address escapes every byte but these as %XX. */
        address = malloc(strlen("unix:path=") + 3 * strlen(path) + 1);
        if (!address)
                return -ENOMEM;
        char *a = stpcpy(address, "unix:path=");
        for (const char *p = path; *p; p++)
                if (strchr("-_/.\\*", *p) || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= 'A' && *p <= 'Z'))
                        *a++ = *p;
                else
                        a += sprintf(a, "%%%02x", (unsigned char) *p);
        *a = '\0';
        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_negotiate_fds(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return r;
        /* Authenticated, or refused: a refused connection must not be the one the commands use. */
        deadline = monotonic_usec() + DIRECT_READY_USEC;
        for (;;) {
                uint64_t now;

                r = sd_bus_is_ready(bus);
                if (r != 0)
                        break;
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        break;
                if (r > 0)
                        continue;
                now = monotonic_usec();
                if (now >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                r = sd_bus_wait(bus, deadline - now);
                if (r < 0)
                        break;
        }
        if (r < 0)
                return r;
        /* A round trip before anything else: it proves procpoold took the connection (one it refuses is
         * closed at once), and the first message that passes fds must not come with the end of the
         * authentication, which sd-bus refuses. */
        r = sd_bus_call_method(bus, NULL, PROCPOOL_OBJECT_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL,
                               NULL, NULL);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

int ctl_new_call(Ctl *c, const char *path, const char *interface, const char *member, bool auto_start,
                 sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(c->bus, &m, ctl_destination(c), path, interface, member);
        if (r < 0)
                return r;
        if (!auto_start) {
                r = sd_bus_message_set_auto_start(m, false);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(m);
        return 0;
}

/* Asking for signals does not start procpoold: one that starts later is asked again
 * (ctl_subscribe_again()). */
static int new_subscribe_call(Ctl *c, sd_bus_message **ret) {
        return ctl_new_call(c, PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE, "Subscribe", false, ret);
}

int ctl_subscribe(Ctl *c) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (c->subscribed)
                return 0;
        r = new_subscribe_call(c, &m);
        if (r < 0)
                return r;
        r = sd_bus_call(c->bus, m, 0, &error, NULL);
        /* A daemon older than Subscribe() sends every signal anyway; on the bus, one that is not running
         * has none to send. */
        if (r < 0 && sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_METHOD))
                return 0;
        if (r < 0 && !c->direct && ctl_error_is_departure(&error))
                return 0; /* or it left, re-executing say: subscribed again once back */
        if (r < 0)
                return r;
        c->subscribed = true;
        return 0;
}

int ctl_subscribe_again(Ctl *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (c->direct)
                return 0;
        r = new_subscribe_call(c, &m);
        if (r < 0)
                return r;
        /* No reply is waited for: this runs within a signal's dispatch, and an error changes nothing. */
        r = sd_bus_call_async(c->bus, NULL, m, NULL, NULL, 0);
        if (r < 0)
                return r;
        c->subscribed = true;
        return 0;
}

int ctl_leave_direct(Ctl *c, sd_event *event) {
        int r;

        if (!c->direct)
                return 0;
        if (c->old_bus) {
                (void) sd_bus_detach_event(c->old_bus);
                c->old_bus = sd_bus_close_unref(c->old_bus);
        }
        c->old_bus = TAKE_PTR(c->bus);
        c->direct = c->subscribed = false;
        c->force_bus = true;
        r = ctl_connect(c);
        if (r != 0)
                return -ENOTCONN;
        return sd_bus_attach_event(c->bus, event, SD_EVENT_PRIORITY_NORMAL);
}

bool ctl_error_is_departure(const sd_bus_error *e) {
        int k;

        if (sd_bus_error_has_names(e, SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_SERVICE_UNKNOWN,
                                   SD_BUS_ERROR_NAME_HAS_NO_OWNER, SD_BUS_ERROR_DISCONNECTED))
                return true;
        /* A call on a connection the peer reset (a direct one, closed by a re-exec while our last message
         * was unread) ends with the errno itself, System.Error.ECONNRESET. */
        if (!e || !e->name || strncmp(e->name, "System.Error.", strlen("System.Error.")) != 0)
                return false;
        k = sd_bus_error_get_errno(e);
        return k == ECONNRESET || k == EPIPE || k == ENOTCONN || k == ECONNABORTED || k == ESHUTDOWN;
}

int ctl_connect(Ctl *c) {
        _cleanup_free_ char *private_path = NULL;
        int r;

        if (c->bus)
                return 0;
        private_path = private_socket_path(c);
        if (private_path && direct_open(private_path, &c->bus) >= 0) {
                c->direct = true;
                r = sd_bus_set_allow_interactive_authorization(c->bus, !c->no_ask_password);
                if (r >= 0)
                        return 0;
                c->bus = sd_bus_unref(c->bus);
                c->direct = false;
        }
        if (c->address)
                r = bus_open_address(c->address, &c->bus);
        else if (c->host)
                r = sd_bus_open_system_remote(&c->bus, c->host);
        else if (c->machine)
                r = c->user ? sd_bus_open_user_machine(&c->bus, c->machine)
                            : sd_bus_open_system_machine(&c->bus, c->machine);
        else if (c->system)
                r = sd_bus_open_system(&c->bus);
        else
                r = sd_bus_open_user(&c->bus);
        /* polkit may ask for a password through the caller's authentication agent, as systemctl lets it. */
        if (r >= 0)
                r = sd_bus_set_allow_interactive_authorization(c->bus, !c->no_ask_password);
        if (r < 0) {
                c->bus = sd_bus_unref(c->bus);
                if (c->json)
                        return ctl_log_error(c, NULL, r, "Failed to connect to %s%s%s", bus_description(c),
                                             c->address ? " at " : "", c->address ? c->address : "");
                fprintf(stderr, "Failed to connect to %s%s%s: %s%s\n", bus_description(c),
                        c->address ? " at " : "", c->address ? c->address : "", strerror(-r),
                        !c->address && !c->host && !c->machine && !c->system
                                ? " (no session bus; set DBUS_SESSION_BUS_ADDRESS, or use --system)"
                                : "");
                return EXIT_FAILED;
        }
        return 0;
}

int ctl_connect_fds(Ctl *c) {
        bool force_bus = c->force_bus;
        int r;

        r = ctl_connect(c);
        if (r != 0 || !c->direct || sd_bus_can_send(c->bus, SD_BUS_TYPE_UNIX_FD) > 0)
                return r;
        c->bus = sd_bus_flush_close_unref(c->bus);
        c->direct = false;
        c->force_bus = true;
        r = ctl_connect(c);
        c->force_bus = force_bus;
        return r;
}

void ctl_print_error_message(const char *prefix, const char *message) {
        /* The daemon's words may quote what a client chose (a program's name, a directory). */
        _cleanup_free_ char *safe = escape_for_terminal(message);
        fprintf(stderr, "%s%s\n", prefix, safe ? safe : message);
}

bool ctl_error_is_absent(const sd_bus_error *error) {
        return sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER);
}

void ctl_json_error(const char *name, const char *message) {
        fputs("{\"error\":", stderr);
        json_write_string(stderr, name);
        fputs(",\"message\":", stderr);
        json_write_string(stderr, message);
        fputs("}\n", stderr);
}

/* With --json, what ctl_log_error() says goes out as {"error": NAME, "message": TEXT}: the D-Bus error's
 * name, or System.Error.EXXX for a failure of procpoolctl's own, as sd-bus names errnos. */
static int log_error_json(const sd_bus_error *error, int r, const char *what, va_list ap) {
        _cleanup_free_ char *text = NULL, *message = NULL, *name = NULL;
        const char *ename = strerrorname_np(r < 0 ? -r : r);

        if (vasprintf(&text, what, ap) < 0)
                text = NULL;
        if (asprintf(&message, "%s: %s", text ? text : "",
                     sd_bus_error_is_set(error) && error->message ? error->message
                                                                  : strerror(r < 0 ? -r : r)) < 0)
                message = NULL;
        if (sd_bus_error_is_set(error))
                name = strdup(error->name);
        else if (asprintf(&name, "System.Error.%s", ename ? ename : "EIO") < 0)
                name = NULL;
        ctl_json_error(name ? name : "System.Error.ENOMEM", message ? message : "Out of memory");
        return EXIT_FAILED;
}

int ctl_log_error(Ctl *c, const sd_bus_error *error, int r, const char *what, ...) {
        va_list ap;

        if (c->json && !ctl_error_is_absent(error)) {
                va_start(ap, what);
                r = log_error_json(error, r, what, ap);
                va_end(ap);
                return r;
        }

        if (ctl_error_is_absent(error)) {
                c->absent = true;
                if (c->json) {
                        _cleanup_free_ char *m = NULL;
                        if (asprintf(&m, "procpoold is not running on %s", bus_description(c)) < 0)
                                m = NULL;
                        ctl_json_error(error->name, m ? m : "procpoold is not running");
                        return EXIT_FAILED;
                }
                if (c->address)
                        fprintf(stderr,
                                "procpoold is not running on the bus at %s; start it with "
                                "'procpoold --address=%s'.\n",
                                c->address, c->address);
                else if (c->system || c->host || (c->machine && !c->user))
                        fprintf(stderr,
                                "procpoold is not running on %s; start it with 'systemctl start "
                                "procpoold', or run 'procpoold --system'.\n",
                                bus_description(c));
                else
                        fprintf(stderr,
                                "procpoold is not running on %s; start it with 'systemctl --user "
                                "start procpoold', or run 'procpoold'.\n",
                                bus_description(c));
                return EXIT_FAILED;
        }
        if (error && error->name && strncmp(error->name, "org.freedesktop.DBus.Error.Spawn.", 33) == 0) {
                /* Bus activation found the service but could not start it. */
                c->absent = true;
                fprintf(stderr, "procpoold is not running on %s, and starting it failed: %s\n",
                        bus_description(c), error->message ? error->message : error->name);
                return EXIT_FAILED;
        }
        va_start(ap, what);
        vfprintf(stderr, what, ap);
        va_end(ap);
        ctl_print_error_message(": ",
                                sd_bus_error_is_set(error) && error->message ? error->message : strerror(-r));
        return EXIT_FAILED;
}

uint64_t job_path_to_id(const char *path) {
        uint64_t id;

        if (!path || parse_job_id(path, &id) < 0)
                return 0;
        return id;
}

int ctl_parse_job_ids(int argc, char **argv, int from, uint64_t *ret_ids) {
        for (int i = from; i < argc; i++) {
                uint64_t id;
                if (parse_job_id(argv[i], &id) < 0) {
                        fprintf(stderr, "Invalid job id '%s'.\n", argv[i]);
                        return EXIT_USAGE;
                }
                if (ret_ids)
                        ret_ids[i - from] = id;
        }
        return 0;
}

int ctl_job_path(Ctl *c, uint64_t id, char **ret_path) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        char *p;
        int r;

        r = ctl_connect(c);
        if (r != 0)
                return r;
        r = sd_bus_call_method(c->bus, ctl_destination(c), PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE,
                               "GetJob", &error, &reply, "t", id);
        if (r < 0) {
                if (sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT)) {
                        _cleanup_free_ char *m = NULL;
                        if (asprintf(&m, "Job %" PRIu64 " could not be found.", id) < 0)
                                m = NULL;
                        if (c->json)
                                ctl_json_error(error.name, m ? m : "");
                        else
                                fprintf(stderr, "%s\n", m ? m : "");
                        return EXIT_FAILED;
                }
                return ctl_log_error(c, &error, r, "Failed to look up job %" PRIu64, id);
        }
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to read the reply of GetJob");
        p = strdup(path);
        if (!p)
                return ctl_log_error(c, NULL, -ENOMEM, "Failed to look up job %" PRIu64, id);
        *ret_path = p;
        return 0;
}

static int read_strv(sd_bus_message *m, char ***ret) {
        char **l = NULL;
        size_t n = 0;
        const char *s;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "s");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "s", &s)) > 0) {
                char **nl = realloc(l, (n + 2) * sizeof(char *));
                if (!nl) {
                        strv_free(l);
                        return -ENOMEM;
                }
                l = nl;
                l[n] = strdup(s);
                l[n + 1] = NULL;
                if (!l[n]) {
                        strv_free(l);
                        return -ENOMEM;
                }
                n++;
        }
        if (r < 0) {
                strv_free(l);
                return r;
        }
        if (!l) {
                l = calloc(1, sizeof(char *));
                if (!l)
                        return -ENOMEM;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0) {
                strv_free(l);
                return r;
        }
        strv_free(*ret);
        *ret = l;
        return 0;
}

static int read_string_variant(sd_bus_message *m, char **field) {
        const char *s;
        char *d;
        int r = sd_bus_message_read(m, "v", "s", &s);

        if (r < 0)
                return r;
        d = strdup(s);
        if (!d)
                return -ENOMEM;
        free(*field);
        *field = d;
        return 0;
}

static int read_strv_variant(sd_bus_message *m, char ***field) {
        int r;

        r = sd_bus_message_enter_container(m, 'v', "as");
        if (r < 0)
                return r;
        r = read_strv(m, field);
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* Reads a variant of an array of job ids ("at") into *field and *n. */
static int read_ids_variant(sd_bus_message *m, uint64_t **field, size_t *n) {
        const void *data;
        size_t size;
        uint64_t *d;
        int r;

        r = sd_bus_message_enter_container(m, 'v', "at");
        if (r < 0)
                return r;
        r = sd_bus_message_read_array(m, 't', &data, &size);
        if (r < 0)
                return r;
        d = malloc(size > 0 ? size : 1);
        if (!d)
                return -ENOMEM;
        memcpy(d, data, size);
        free(*field);
        *field = d;
        *n = size / sizeof(uint64_t);
        return sd_bus_message_exit_container(m);
}

int job_info_read_properties(sd_bus_message *m, JobInfo *info) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        for (;;) {
                const char *name;

                r = sd_bus_message_enter_container(m, 'e', "sv");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        return r;
                if (strcmp(name, "Id") == 0)
                        r = sd_bus_message_read(m, "v", "t", &info->id);
                else if (strcmp(name, "Argv") == 0)
                        r = read_strv_variant(m, &info->argv);
                else if (strcmp(name, "State") == 0)
                        r = read_string_variant(m, &info->state);
                else if (strcmp(name, "ReturnCode") == 0)
                        r = sd_bus_message_read(m, "v", "i", &info->returncode);
                else if (strcmp(name, "Pid") == 0)
                        r = sd_bus_message_read(m, "v", "u", &info->pid);
                else if (strcmp(name, "Owner") == 0)
                        r = sd_bus_message_read(m, "v", "u", &info->owner);
                else if (strcmp(name, "Label") == 0)
                        r = read_string_variant(m, &info->label);
                else if (strcmp(name, "SubmittedAt") == 0)
                        r = sd_bus_message_read(m, "v", "t", &info->submitted_at);
                else if (strcmp(name, "StartedAt") == 0)
                        r = sd_bus_message_read(m, "v", "t", &info->started_at);
                else if (strcmp(name, "FinishedAt") == 0)
                        r = sd_bus_message_read(m, "v", "t", &info->finished_at);
                else if (strcmp(name, "Error") == 0)
                        r = read_string_variant(m, &info->error);
                else if (strcmp(name, "OutputIncomplete") == 0 || strcmp(name, "Paused") == 0) {
                        int b;
                        r = sd_bus_message_read(m, "v", "b", &b);
                        *(name[0] == 'O' ? &info->output_incomplete : &info->paused) = b;
                } else if (strcmp(name, "QueuePosition") == 0)
                        r = sd_bus_message_read(m, "v", "u", &info->queue_position);
                else if (strcmp(name, "CPUUsageUSec") == 0)
                        r = sd_bus_message_read(m, "v", "t", &info->cpu_usage_usec);
                else if (strcmp(name, "MemoryPeak") == 0)
                        r = sd_bus_message_read(m, "v", "t", &info->memory_peak);
                else if (strcmp(name, "Pool") == 0)
                        r = read_string_variant(m, &info->pool);
                else if (strcmp(name, "After") == 0)
                        r = read_ids_variant(m, &info->after, &info->n_after);
                else if (strcmp(name, "WaitingFor") == 0)
                        r = read_ids_variant(m, &info->waiting_for, &info->n_waiting_for);
                else if (strcmp(name, "NotBeforeUSec") == 0)
                        r = sd_bus_message_read(m, "v", "t", &info->not_before_usec);
                else if (strcmp(name, "Retry") == 0)
                        r = sd_bus_message_read(m, "v", "u", &info->retry);
                else if (strcmp(name, "RetryDelayUSec") == 0)
                        r = sd_bus_message_read(m, "v", "t", &info->retry_delay_usec);
                else if (strcmp(name, "Attempt") == 0)
                        r = sd_bus_message_read(m, "v", "u", &info->attempt);
                else if (strcmp(name, "ExternalId") == 0)
                        r = read_string_variant(m, &info->external_id);
                else if (strcmp(name, "Node") == 0)
                        r = read_string_variant(m, &info->node);
                else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_exit_container(m);
}

int ctl_job_info(Ctl *c, const char *path, JobInfo *ret, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        JobInfo info = {};
        int r;

        r = sd_bus_call_method(c->bus, ctl_destination(c), path, "org.freedesktop.DBus.Properties", "GetAll",
                               error, &reply, "s", PROCPOOL_JOB_INTERFACE);
        if (r < 0)
                return r;
        info.path = strdup(path);
        if (!info.path)
                return -ENOMEM;
        r = job_info_read_properties(reply, &info);
        if (r < 0) {
                job_info_done(&info);
                return r;
        }
        *ret = info;
        return 0;
}

void job_info_done(JobInfo *info) {
        free(info->path);
        strv_free(info->argv);
        free(info->state);
        free(info->label);
        free(info->error);
        free(info->pool);
        free(info->after);
        free(info->waiting_for);
        free(info->external_id);
        free(info->node);
        *info = (JobInfo) {};
}

static void json_write_u64_or_null(FILE *f, const char *key, uint64_t v) {
        if (v > 0)
                fprintf(f, ",\"%s\":%" PRIu64, key, v);
        else
                fprintf(f, ",\"%s\":null", key);
}

static void json_write_ids(FILE *f, const uint64_t *ids, size_t n) {
        fputc('[', f);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s%" PRIu64, i > 0 ? "," : "", ids[i]);
        fputc(']', f);
}

void json_write_job(FILE *f, const JobInfo *j) {
        fprintf(f, "{\"id\":%" PRIu64 ",\"path\":", j->id);
        json_write_string(f, j->path);
        fputs(",\"state\":", f);
        json_write_string(f, j->state);
        fprintf(f, ",\"returncode\":%" PRIi32 ",\"pid\":%" PRIu32 ",\"owner\":%" PRIu32 ",\"label\":",
                j->returncode, j->pid, j->owner);
        json_write_string(f, j->label);
        fputs(",\"argv\":", f);
        json_write_strv(f, j->argv);
        fprintf(f,
                ",\"submitted_at\":%" PRIu64 ",\"started_at\":%" PRIu64 ",\"finished_at\":%" PRIu64
                ",\"runtime_usec\":%" PRIu64,
                j->submitted_at, j->started_at, j->finished_at, job_runtime(j));
        /* null where not measured (no per-job cgroups, no memory controller) */
        json_write_u64_or_null(f, "cpu_usage_usec", j->cpu_usage_usec);
        json_write_u64_or_null(f, "memory_peak", j->memory_peak);
        fprintf(f, ",\"paused\":%s,\"queue_position\":%" PRIu32 ",\"error\":", j->paused ? "true" : "false",
                j->queue_position);
        json_write_string(f, j->error);
        fputs(",\"pool\":", f);
        json_write_string(f, j->pool ? j->pool : PROCPOOL_DEFAULT_POOL);
        fputs(",\"after\":", f);
        json_write_ids(f, j->after, j->n_after);
        fputs(",\"waiting_for\":", f);
        json_write_ids(f, j->waiting_for, j->n_waiting_for);
        fprintf(f,
                ",\"attempt\":%" PRIu32 ",\"retry\":%" PRIu32 ",\"retry_delay_usec\":%" PRIu64
                ",\"not_before_usec\":%" PRIu64,
                j->attempt, j->retry, j->retry_delay_usec, j->not_before_usec);
        fputs(",\"external_id\":", f);
        json_write_string(f, j->external_id ? j->external_id : "");
        fputs(",\"node\":", f);
        json_write_string(f, j->node ? j->node : "");
        fprintf(f, ",\"output_incomplete\":%s}", j->output_incomplete ? "true" : "false");
}

void ctl_json_job_with(Ctl *c, FILE *f, uint64_t id, const char *path, const char *extra) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0;
        FILE *m = open_memstream(&buf, &n);
        JobInfo j = {};

        if (!m)
                return;
        if (ctl_job_info(c, path, &j, &error) < 0) {
                fprintf(m, "{\"id\":%" PRIu64 ",\"path\":", id);
                json_write_string(m, path);
                fputc('}', m);
        } else
                json_write_job(m, &j);
        job_info_done(&j);
        if (fclose(m) != 0 || n == 0)
                return;
        /* The extra members go in before the object's closing brace. */
        fprintf(f, "%.*s%s}", (int) n - 1, buf, extra ? extra : "");
}

void ctl_json_job(Ctl *c, FILE *f, uint64_t id, const char *path) {
        ctl_json_job_with(c, f, id, path, NULL);
}

void json_list_begin(JsonList *l, bool array) {
        *l = (JsonList) { .array = array };
        if (array)
                fputc('[', stdout);
}

void json_list_next(JsonList *l) {
        if (l->array && l->n > 0)
                fputc(',', stdout);
        l->n++;
}

void json_list_end(JsonList *l) {
        if (l->array)
                fputc(']', stdout);
        if (l->array || l->n > 0)
                fputc('\n', stdout);
        fflush(stdout);
}

int returncode_to_exit(int32_t rc) {
        if (rc < 0)
                return 128 + (-rc & 0x7f);
        return rc & 0xff;
}

bool ctl_state_is_final(const char *state) {
        return state && strcmp(state, PROCPOOL_STATE_QUEUED) != 0 &&
               strcmp(state, PROCPOOL_STATE_RUNNING) != 0;
}
