/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* procpoold: parses the command line and runs the manager. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "procpool-api.h"
#include "macro.h"
#include "log.h"
#include "manager.h"
#include "parse-util.h"
#include "private.h"
#include "spawn.h"

static void help(void) {
        printf("%s [OPTIONS...]\n\n"
               "Runs commands for D-Bus clients in a bounded pool of worker processes.\n\n"
               "  -h --help                Show this help\n"
               "     --version             Show the version\n"
               "     --user                Serve on the session bus (the default)\n"
               "     --system              Serve on the system bus\n"
               "     --address=ADDRESS     Serve on the bus at ADDRESS (with --system, under the\n"
               "                           system bus's rules)\n"
               "     --pool-size=N         Run at most N jobs at once (default: online CPUs)\n"
               "     --max-queued=N        Queue at most N jobs (default: %u)\n"
               "     --output-limit=BYTES  Keep at most BYTES per captured stream (default: 1G;\n"
               "                           Communicate: at most what one bus reply carries)\n"
               "     --retain=N            Keep at most N finished jobs per uid, %u times N in all\n"
               "                           (default: %u)\n"
               "     --retain-time=TIME    Release finished jobs TIME after they end (default: 10min;\n"
               "                           0 keeps them until released)\n"
               "     --exit-on-idle=TIME   Exit after TIME with no job queued, running or retained\n"
               "     --max-queued-per-user=N\n"
               "                           Queue at most N jobs of one uid (default: %u; 0: no limit)\n"
               "     --max-running-per-user=N\n"
               "                           Run at most N jobs of one uid at once (default: no limit)\n"
               "     --max-output-per-user=BYTES\n"
               "                           Hold at most BYTES of captured output of one uid\n"
               "                           (default: 4G; 0: no limit)\n"
               "     --state-dir=DIR       Keep the job store and the captured output in DIR\n"
               "                           (default: $STATE_DIRECTORY, else /var/lib/procpool with\n"
               "                           --system, else $XDG_STATE_HOME/procpool)\n"
               "     --sync=normal|full    normal: a crash of procpoold loses no acknowledged job;\n"
               "                           full: neither does a power cut, at a cost per commit\n"
               "     --ephemeral           Keep no store: jobs and output end with the daemon\n"
               "     --private-socket=PATH Also serve direct connections on PATH (default:\n"
               "                           $RUNTIME_DIRECTORY/private, else /run/procpool/private\n"
               "                           with --system, else $XDG_RUNTIME_DIR/procpool/private;\n"
               "                           none with --address)\n"
               "     --no-private-socket   Serve on the bus only\n"
               "     --bus-signals=always|subscribed\n"
               "                           always: send signals on the bus to every match rule\n"
               "                           (default); subscribed: only while a bus client has\n"
               "                           called Subscribe()\n"
               "     --max-direct-connections=N\n"
               "                           Take at most N direct connections (default: %u)\n"
               "     --max-direct-connections-per-user=N\n"
               "                           Take at most N direct connections of one uid (default: %u)\n",
               program_invocation_short_name, POOL_MAX_QUEUED_DEFAULT, REGISTRY_RETAIN_UIDS,
               REGISTRY_RETAIN_DEFAULT, POOL_MAX_QUEUED_PER_USER_DEFAULT, PRIVATE_CONNECTIONS_MAX_DEFAULT,
               PRIVATE_CONNECTIONS_MAX_PER_USER_DEFAULT);
}

enum {
        ARG_VERSION = 0x100,
        ARG_USER,
        ARG_SYSTEM,
        ARG_ADDRESS,
        ARG_POOL_SIZE,
        ARG_MAX_QUEUED,
        ARG_OUTPUT_LIMIT,
        ARG_RETAIN,
        ARG_RETAIN_TIME,
        ARG_EXIT_ON_IDLE,
        ARG_MAX_QUEUED_PER_USER,
        ARG_MAX_RUNNING_PER_USER,
        ARG_MAX_OUTPUT_PER_USER,
        ARG_STATE_DIR,
        ARG_SYNC,
        ARG_EPHEMERAL,
        ARG_PRIVATE_SOCKET,
        ARG_NO_PRIVATE_SOCKET,
        ARG_MAX_DIRECT,
        ARG_MAX_DIRECT_PER_USER,
        ARG_BUS_SIGNALS,
        ARG_DESERIALIZE,
};

static int usage_error(const char *option, const char *expected) {
        log_error("--%s=%s: expected %s", option, optarg, expected);
        return -1;
}

/* Returns 1 to run, 0 to exit successfully (--help, --version), -1 on a usage error. */
static int parse_argv(int argc, char *argv[], ManagerConfig *cfg, bool *private_socket_set) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "user", no_argument, NULL, ARG_USER },
                { "system", no_argument, NULL, ARG_SYSTEM },
                { "address", required_argument, NULL, ARG_ADDRESS },
                { "pool-size", required_argument, NULL, ARG_POOL_SIZE },
                { "max-queued", required_argument, NULL, ARG_MAX_QUEUED },
                { "output-limit", required_argument, NULL, ARG_OUTPUT_LIMIT },
                { "retain", required_argument, NULL, ARG_RETAIN },
                { "retain-time", required_argument, NULL, ARG_RETAIN_TIME },
                { "exit-on-idle", required_argument, NULL, ARG_EXIT_ON_IDLE },
                { "max-queued-per-user", required_argument, NULL, ARG_MAX_QUEUED_PER_USER },
                { "max-running-per-user", required_argument, NULL, ARG_MAX_RUNNING_PER_USER },
                { "max-output-per-user", required_argument, NULL, ARG_MAX_OUTPUT_PER_USER },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "sync", required_argument, NULL, ARG_SYNC },
                { "ephemeral", no_argument, NULL, ARG_EPHEMERAL },
                { "private-socket", required_argument, NULL, ARG_PRIVATE_SOCKET },
                { "no-private-socket", no_argument, NULL, ARG_NO_PRIVATE_SOCKET },
                { "max-direct-connections", required_argument, NULL, ARG_MAX_DIRECT },
                { "max-direct-connections-per-user", required_argument, NULL, ARG_MAX_DIRECT_PER_USER },
                /* Internal, not in --help: the daemon passes it to itself when it re-executes. */
                { "bus-signals", required_argument, NULL, ARG_BUS_SIGNALS },
                { "deserialize", required_argument, NULL, ARG_DESERIALIZE },
                {}
        };
        uint64_t v;
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("procpoold %s\n", PROCPOOL_VERSION);
                        return 0;
                case ARG_USER:
                        if (cfg->bus_kind != BUS_ADDRESS)
                                cfg->bus_kind = BUS_USER;
                        cfg->system_policy = false;
                        break;
                case ARG_SYSTEM:
                        if (cfg->bus_kind != BUS_ADDRESS)
                                cfg->bus_kind = BUS_SYSTEM;
                        cfg->system_policy = true;
                        break;
                case ARG_ADDRESS:
                        cfg->bus_kind = BUS_ADDRESS;
                        cfg->address = optarg;
                        break;
                case ARG_POOL_SIZE:
                        if (parse_unsigned(optarg, 1, UINT32_MAX, &v) < 0)
                                return usage_error("pool-size", "a whole number from 1");
                        cfg->pool.pool_size = v;
                        break;
                case ARG_MAX_QUEUED:
                        if (parse_unsigned(optarg, 1, UINT32_MAX, &v) < 0)
                                return usage_error("max-queued", "a whole number from 1");
                        cfg->pool.max_queued = v;
                        break;
                case ARG_OUTPUT_LIMIT:
                        if (parse_size(optarg, &v) < 0)
                                return usage_error("output-limit", "a size such as 16M");
                        cfg->pool.output_limit = v;
                        break;
                case ARG_RETAIN:
                        if (parse_unsigned(optarg, 0, UINT32_MAX, &v) < 0)
                                return usage_error("retain", "a whole number");
                        cfg->registry.retain = v;
                        break;
                case ARG_RETAIN_TIME:
                        if (parse_timespan(optarg, &v) < 0)
                                return usage_error("retain-time", "a time span such as 10min");
                        cfg->registry.retain_usec = v;
                        break;
                case ARG_EXIT_ON_IDLE:
                        if (parse_timespan(optarg, &v) < 0 || v == 0)
                                return usage_error("exit-on-idle", "a time span such as 30s");
                        cfg->exit_on_idle_usec = v;
                        break;
                case ARG_MAX_QUEUED_PER_USER:
                        if (parse_unsigned(optarg, 0, UINT32_MAX, &v) < 0)
                                return usage_error("max-queued-per-user", "a whole number");
                        cfg->pool.per_user.max_queued = v;
                        break;
                case ARG_MAX_RUNNING_PER_USER:
                        if (parse_unsigned(optarg, 0, UINT32_MAX, &v) < 0)
                                return usage_error("max-running-per-user", "a whole number");
                        cfg->pool.per_user.max_running = v;
                        break;
                case ARG_MAX_OUTPUT_PER_USER:
                        if (parse_size(optarg, &v) < 0)
                                return usage_error("max-output-per-user", "a size such as 256M");
                        cfg->pool.per_user.max_output = v;
                        break;
                case ARG_STATE_DIR:
                        if (optarg[0] != '/')
                                return usage_error("state-dir", "an absolute path");
                        cfg->state_dir = optarg;
                        break;
                case ARG_SYNC:
                        if (strcmp(optarg, "normal") == 0)
                                cfg->sync = STORE_SYNC_NORMAL;
                        else if (strcmp(optarg, "full") == 0)
                                cfg->sync = STORE_SYNC_FULL;
                        else
                                return usage_error("sync", "normal or full");
                        break;
                case ARG_EPHEMERAL:
                        cfg->ephemeral = true;
                        break;
                case ARG_PRIVATE_SOCKET:
                        if (optarg[0] != '/')
                                return usage_error("private-socket", "an absolute path");
                        cfg->private_socket = optarg;
                        *private_socket_set = true;
                        break;
                case ARG_NO_PRIVATE_SOCKET:
                        cfg->private_socket = NULL;
                        *private_socket_set = true;
                        break;
                case ARG_MAX_DIRECT:
                        if (parse_unsigned(optarg, 1, UINT32_MAX, &v) < 0)
                                return usage_error("max-direct-connections", "a whole number from 1");
                        cfg->private_max_connections = v;
                        break;
                case ARG_MAX_DIRECT_PER_USER:
                        if (parse_unsigned(optarg, 1, UINT32_MAX, &v) < 0)
                                return usage_error("max-direct-connections-per-user",
                                                   "a whole number from 1");
                        cfg->private_max_connections_per_user = v;
                        break;
                case ARG_BUS_SIGNALS:
                        if (strcmp(optarg, "always") == 0)
                                cfg->bus_signals = BUS_SIGNALS_ALWAYS;
                        else if (strcmp(optarg, "subscribed") == 0)
                                cfg->bus_signals = BUS_SIGNALS_SUBSCRIBED;
                        else
                                return usage_error("bus-signals", "always or subscribed");
                        break;
                case ARG_DESERIALIZE:
                        if (parse_unsigned(optarg, 3, INT32_MAX, &v) < 0 || fcntl((int) v, F_GETFD) < 0)
                                return usage_error("deserialize", "an open fd (internal, for re-executing)");
                        cfg->deserialize_fd = (int) v;
                        break;
                default:
                        return -1;
                }
        }
        if (cfg->ephemeral && cfg->state_dir) {
                log_error("--ephemeral keeps no state dir; it does not go with --state-dir");
                return -1;
        }
        if (optind < argc) {
                log_error("unexpected argument '%s'", argv[optind]);
                return -1;
        }
        return 1;
}

/* Where the private socket is unless --private-socket or --no-private-socket says: systemd's
 * RuntimeDirectory=, else /run/procpool for the system instance and $XDG_RUNTIME_DIR/procpool for a user's.
 * A daemon on a bus given by --address has none: it is a test's or a private one, and two of them must not
 * take each other's socket. */
static int default_private_socket(const ManagerConfig *cfg, char **ret) {
        const char *e = getenv("RUNTIME_DIRECTORY");

        *ret = NULL;
        if (cfg->bus_kind == BUS_ADDRESS)
                return 0;
        if (e && e[0] == '/')
                return asprintf(ret, "%.*s/private", (int) strcspn(e, ":"), e) < 0 ? -ENOMEM : 0;
        if (cfg->bus_kind == BUS_SYSTEM) {
                *ret = strdup("/run/procpool/private");
                return *ret ? 0 : -ENOMEM;
        }
        e = getenv("XDG_RUNTIME_DIR");
        if (!e || e[0] != '/')
                return 0;
        return asprintf(ret, "%s/procpool/private", e) < 0 ? -ENOMEM : 0;
}

int main(int argc, char *argv[]) {
        ManagerConfig cfg = {
                .bus_kind = BUS_USER,
                .registry = {
                        .retain = REGISTRY_RETAIN_DEFAULT,
                        .retain_usec = REGISTRY_RETAIN_USEC_DEFAULT,
                },
                .private_max_connections = PRIVATE_CONNECTIONS_MAX_DEFAULT,
                .private_max_connections_per_user = PRIVATE_CONNECTIONS_MAX_PER_USER_DEFAULT,
                .pool = {
                        .max_queued = POOL_MAX_QUEUED_DEFAULT,
                        .output_limit = JOB_OUTPUT_LIMIT_DEFAULT,
                        .per_user = {
                                .max_queued = POOL_MAX_QUEUED_PER_USER_DEFAULT,
                                .max_output = POOL_MAX_OUTPUT_PER_USER_DEFAULT,
                        },
                },
        };
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_free_ char *private_socket = NULL;
        bool private_socket_set = false;
        rlim_t nofile;
        sigset_t mask;
        int r;

        cfg.argv = argv;
        cfg.deserialize_fd = -EBADF;
        log_setup(program_invocation_short_name);
        r = parse_argv(argc, argv, &cfg, &private_socket_set);
        if (r <= 0)
                return r == 0 ? EXIT_SUCCESS : 2;
        if (!private_socket_set) {
                r = default_private_socket(&cfg, &private_socket);
                if (r < 0) {
                        log_oom();
                        return EXIT_FAILURE;
                }
                cfg.private_socket = private_socket;
        }
        cfg.registry.max_held_bytes = manager_held_max(cfg.bus_kind);
        cfg.registry.max_held_bytes_per_user = REGISTRY_HELD_PER_USER(cfg.registry.max_held_bytes);
        /* As systemd advises a daemon that uses no select(); its jobs get the old soft limit back. */
        r = spawn_raise_nofile_limit(&nofile);
        if (r < 0)
                log_warning_errno(r,
                                  "Failed to raise the limit of open files to the hard limit: %m, ignoring");
        /* What queued jobs may hold of it in passed fds: the rest is for running jobs and the bus. */
        cfg.pool.max_fds = (unsigned) MIN(nofile / 8, (rlim_t) UINT_MAX);
        cfg.pool.per_user.max_fds = cfg.pool.max_fds / 2;

        /* sd-event takes these through signalfd and pidfds; they must be blocked, and a job's
         * closed stdin must not kill the daemon. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) signal(SIGPIPE, SIG_IGN);

        r = manager_new(&cfg, &m);
        if (r < 0) {
                log_error_errno(r, "Failed to set up: %m");
                return EXIT_FAILURE;
        }
        r = manager_startup(m);
        if (r < 0)
                return EXIT_FAILURE;
        r = manager_run(m);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
