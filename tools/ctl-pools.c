/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* procpoolctl pool list|create|remove|size, and pause and resume of a whole pool (--pool). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procpool-api.h"
#include "ctl-output.h"
#include "ctl-parse.h"
#include "ctl.h"

/* One pool's properties, as org.procpool.Pool1 has them. */
typedef struct PoolInfo {
        char *name;
        char *path;
        uint32_t size, running, queued;
        bool paused;
        char *executor, *slurm_conf, *partition; /* NULL: not said (a daemon from before executors) */
} PoolInfo;

static void pool_info_done(PoolInfo *p) {
        free(p->name);
        free(p->path);
        free(p->executor);
        free(p->slurm_conf);
        free(p->partition);
        *p = (PoolInfo) {};
}

typedef struct PoolList {
        PoolInfo *pools;
        size_t n;
} PoolList;

static void pool_list_done(PoolList *l) {
        for (size_t i = 0; i < l->n; i++)
                pool_info_done(&l->pools[i]);
        free(l->pools);
        *l = (PoolList) {};
}

/* Reads ListPools into ret: names and paths only. Returns 0 or a negative errno with error set. */
static int list_pools(Ctl *c, PoolList *ret, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        PoolList l = {};
        const char *name, *path;
        int r;

        r = sd_bus_call_method(c->bus, ctl_destination(c), PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE,
                               "ListPools", error, &reply, NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(so)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "(so)", &name, &path)) > 0) {
                PoolInfo *n = realloc(l.pools, (l.n + 1) * sizeof(PoolInfo));

                if (!n) {
                        r = -ENOMEM;
                        break;
                }
                l.pools = n;
                l.pools[l.n] = (PoolInfo) { .name = strdup(name), .path = strdup(path) };
                l.n++;
                if (!l.pools[l.n - 1].name || !l.pools[l.n - 1].path) {
                        r = -ENOMEM;
                        break;
                }
        }
        if (r < 0) {
                pool_list_done(&l);
                return r;
        }
        *ret = l;
        return 0;
}

/* Reads a string property's variant into *ret. */
static int read_string(sd_bus_message *reply, char **ret) {
        const char *s;
        char *c;
        int r;

        r = sd_bus_message_read(reply, "v", "s", &s);
        if (r < 0)
                return r;
        c = strdup(s);
        if (!c)
                return -ENOMEM;
        free(*ret);
        *ret = c;
        return 0;
}

/* Reads the pool's Size, Running, Queued, Paused, Executor, SlurmConf and Partition into p. */
static int pool_read(Ctl *c, PoolInfo *p, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(c->bus, ctl_destination(c), p->path, "org.freedesktop.DBus.Properties",
                               "GetAll", error, &reply, "s", PROCPOOL_POOL_INTERFACE);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *name;

                r = sd_bus_message_read(reply, "s", &name);
                if (r < 0)
                        return r;
                if (strcmp(name, "Size") == 0)
                        r = sd_bus_message_read(reply, "v", "u", &p->size);
                else if (strcmp(name, "Running") == 0)
                        r = sd_bus_message_read(reply, "v", "u", &p->running);
                else if (strcmp(name, "Queued") == 0)
                        r = sd_bus_message_read(reply, "v", "u", &p->queued);
                else if (strcmp(name, "Paused") == 0) {
                        int b;
                        r = sd_bus_message_read(reply, "v", "b", &b);
                        p->paused = b;
                } else if (strcmp(name, "Executor") == 0)
                        r = read_string(reply, &p->executor);
                else if (strcmp(name, "SlurmConf") == 0)
                        r = read_string(reply, &p->slurm_conf);
                else if (strcmp(name, "Partition") == 0)
                        r = read_string(reply, &p->partition);
                else
                        r = sd_bus_message_skip(reply, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(reply);
}

/* Prints that there is no pool name, as the daemon's NoSuchPool says it. */
static int no_such_pool(Ctl *c, const char *name) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        (void) sd_bus_error_setf(&e, PROCPOOL_ERROR_NO_SUCH_POOL, "There is no pool '%s'", name);
        return ctl_log_error(c, &e, -ENOENT, "Failed to find pool %s", name);
}

int ctl_pool_path(Ctl *c, const char *name, char **ret_path) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        PoolList l = {};
        int r;

        r = ctl_connect(c);
        if (r != 0)
                return r;
        r = list_pools(c, &l, &error);
        if (r < 0)
                return ctl_log_error(c, &error, r, "Failed to list pools");
        for (size_t i = 0; i < l.n; i++)
                if (strcmp(l.pools[i].name, name) == 0) {
                        *ret_path = TAKE_PTR(l.pools[i].path);
                        pool_list_done(&l);
                        return 0;
                }
        pool_list_done(&l);
        return no_such_pool(c, name);
}

static void json_write_pool(FILE *f, const PoolInfo *p) {
        fputs("{\"name\":", f);
        json_write_string(f, p->name);
        fprintf(f,
                ",\"size\":%" PRIu32 ",\"running\":%" PRIu32 ",\"queued\":%" PRIu32
                ",\"paused\":%s,\"path\":",
                p->size, p->running, p->queued, p->paused ? "true" : "false");
        json_write_string(f, p->path);
        fputs(",\"executor\":", f);
        json_write_string(f, p->executor ?: PROCPOOL_EXECUTOR_LOCAL);
        fputs(",\"slurm_conf\":", f);
        json_write_string(f, p->slurm_conf ?: "");
        fputs(",\"partition\":", f);
        json_write_string(f, p->partition ?: "");
        fputc('}', f);
}

/* Prints pool name (at path) as its JSON object, its properties read now. */
static int print_pool_json(Ctl *c, const char *name, const char *path) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        PoolInfo p = { .name = strdup(name), .path = strdup(path) };
        int r;

        if (!p.name || !p.path) {
                pool_info_done(&p);
                return ctl_log_error(c, NULL, -ENOMEM, "Failed to read pool %s", name);
        }
        r = pool_read(c, &p, &error);
        if (r < 0) {
                pool_info_done(&p);
                return ctl_log_error(c, &error, r, "Failed to read the properties of pool %s", name);
        }
        json_write_pool(stdout, &p);
        fputc('\n', stdout);
        pool_info_done(&p);
        return EXIT_SUCCESS;
}

static int pool_list(Ctl *c) {
        static const char *const headers[] = { "NAME", "SIZE", "RUNNING", "QUEUED", "PAUSED", "EXECUTOR" };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        PoolList l = {};
        Table *t = NULL;
        int r;

        r = ctl_connect(c);
        if (r != 0)
                return r;
        r = list_pools(c, &l, &error);
        if (r < 0)
                return ctl_log_error(c, &error, r, "Failed to list pools");
        for (size_t i = 0; i < l.n; i++) {
                r = pool_read(c, &l.pools[i], &error);
                if (r < 0) {
                        r = ctl_log_error(c, &error, r, "Failed to read the properties of pool %s",
                                          l.pools[i].name);
                        pool_list_done(&l);
                        return r;
                }
        }
        if (c->json) {
                fputc('[', stdout);
                for (size_t i = 0; i < l.n; i++) {
                        if (i > 0)
                                fputc(',', stdout);
                        json_write_pool(stdout, &l.pools[i]);
                }
                fputs("]\n", stdout);
                pool_list_done(&l);
                return EXIT_SUCCESS;
        }
        t = table_new(ELEMENTSOF(headers), headers);
        for (size_t i = 0; t && i < l.n; i++) {
                const PoolInfo *p = &l.pools[i];
                char size[16], running[16], queued[16];

                snprintf(size, sizeof size, "%" PRIu32, p->size);
                snprintf(running, sizeof running, "%" PRIu32, p->running);
                snprintf(queued, sizeof queued, "%" PRIu32, p->queued);
                const char *const row[] = { p->name,
                                            size,
                                            running,
                                            queued,
                                            p->paused ? "yes" : "no",
                                            p->executor ?: PROCPOOL_EXECUTOR_LOCAL };
                if (table_add_row(t, row) < 0)
                        t = table_free(t);
        }
        pool_list_done(&l);
        if (!t)
                return ctl_log_error(c, NULL, -ENOMEM, "Failed to list pools");
        table_print(t, stdout, !c->no_legend && !c->quiet, false);
        if (!c->no_legend && !c->quiet)
                printf("\n%zu pool%s listed.\n", table_rows(t), table_rows(t) == 1 ? "" : "s");
        table_free(t);
        return EXIT_SUCCESS;
}

static int pool_create(Ctl *c, const char *name) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *path;
        int r;

        r = ctl_connect(c);
        if (r != 0)
                return r;
        r = sd_bus_message_new_method_call(c->bus, &m, ctl_destination(c), PROCPOOL_OBJECT_PATH,
                                           PROCPOOL_MANAGER_INTERFACE, "CreatePool");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", name);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && c->pool_size_set)
                r = sd_bus_message_append(m, "{sv}", PROCPOOL_POOL_SETTING_SIZE, "u", c->pool_size);
        if (r >= 0 && c->executor)
                r = sd_bus_message_append(m, "{sv}", PROCPOOL_POOL_SETTING_EXECUTOR, "s", c->executor);
        if (r >= 0 && c->slurm_conf)
                r = sd_bus_message_append(m, "{sv}", PROCPOOL_POOL_SETTING_SLURM_CONF, "s", c->slurm_conf);
        if (r >= 0 && c->partition)
                r = sd_bus_message_append(m, "{sv}", PROCPOOL_POOL_SETTING_PARTITION, "s", c->partition);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to build the CreatePool call");
        r = sd_bus_call(c->bus, m, 0, &error, &reply);
        if (r < 0)
                return ctl_log_error(c, &error, r, "Failed to create pool %s", name);
        if (!c->json)
                return EXIT_SUCCESS;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to read the reply of CreatePool");
        return print_pool_json(c, name, path);
}

static int pool_remove(Ctl *c, const char *name) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = ctl_connect(c);
        if (r != 0)
                return r;
        r = sd_bus_call_method(c->bus, ctl_destination(c), PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE,
                               "RemovePool", &error, NULL, "s", name);
        if (r < 0)
                return ctl_log_error(c, &error, r, "Failed to remove pool %s", name);
        if (c->json) {
                fputs("{\"name\":", stdout);
                json_write_string(stdout, name);
                fputs(",\"removed\":true}\n", stdout);
        }
        return EXIT_SUCCESS;
}

static int pool_size(Ctl *c, const char *name, const char *value) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        long long n = 0;
        uint32_t size;
        int r;

        if (value && parse_int_range(value, 1, UINT32_MAX, &n) < 0) {
                fprintf(stderr, "Invalid pool size '%s': expected a positive number.\n", value);
                return EXIT_USAGE;
        }
        r = ctl_pool_path(c, name, &path);
        if (r != 0)
                return r;
        if (value) {
                r = sd_bus_set_property(c->bus, ctl_destination(c), path, PROCPOOL_POOL_INTERFACE, "Size",
                                        &error, "u", (uint32_t) n);
                if (r < 0)
                        return ctl_log_error(c, &error, r, "Failed to set the size of pool %s to %lld", name,
                                             n);
                return c->json ? print_pool_json(c, name, path) : EXIT_SUCCESS;
        }
        if (c->json)
                return print_pool_json(c, name, path);
        r = sd_bus_get_property_trivial(c->bus, ctl_destination(c), path, PROCPOOL_POOL_INTERFACE, "Size",
                                        &error, 'u', &size);
        if (r < 0)
                return ctl_log_error(c, &error, r, "Failed to read the size of pool %s", name);
        printf("%" PRIu32 "\n", size);
        return EXIT_SUCCESS;
}

static int pool_usage(const char *fmt, ...) _printf_(1, 2);
static int pool_usage(const char *fmt, ...) {
        va_list ap;

        fputs("procpoolctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\nSee 'procpoolctl pool --help'.\n", stderr);
        return EXIT_USAGE;
}

int verb_pool(Ctl *c, int argc, char **argv) {
        const char *sub = argv[1];

        if (c->pool_size_set && strcmp(sub, "create") != 0)
                return pool_usage("Option --size is only valid for 'pool create'; use 'pool size %s N'.",
                                  argc > 2 ? argv[2] : "NAME");
        if ((c->executor || c->slurm_conf || c->partition) && strcmp(sub, "create") != 0)
                return pool_usage("Option %s is only valid for 'pool create'.", c->executor ? "--executor"
                                                                                : c->slurm_conf
                                                                                        ? "--slurm-conf"
                                                                                        : "--partition");
        if (strcmp(sub, "list") == 0) {
                if (argc > 2)
                        return pool_usage("Too many arguments for 'pool list'.");
                return pool_list(c);
        }
        if (strcmp(sub, "create") == 0 || strcmp(sub, "remove") == 0 || strcmp(sub, "size") == 0) {
                if (argc < 3)
                        return pool_usage("'pool %s' needs a pool's name.", sub);
                if (argc > 3 && strcmp(sub, "size") != 0)
                        return pool_usage("Too many arguments for 'pool %s'.", sub);
                if (strcmp(sub, "create") == 0)
                        return pool_create(c, argv[2]);
                if (strcmp(sub, "remove") == 0)
                        return pool_remove(c, argv[2]);
                return pool_size(c, argv[2], argc > 3 ? argv[3] : NULL);
        }
        return pool_usage("Unknown pool command '%s': expected list, create, remove or size.", sub);
}

/* pause --pool and resume --pool: Pool1.Pause or Resume, then the pool as it is under --json. */
int ctl_pool_pause_or_resume(Ctl *c, const char *name, bool pause) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        r = ctl_pool_path(c, name, &path);
        if (r != 0)
                return r;
        r = sd_bus_call_method(c->bus, ctl_destination(c), path, PROCPOOL_POOL_INTERFACE,
                               pause ? "Pause" : "Resume", &error, NULL, NULL);
        if (r < 0)
                return ctl_log_error(c, &error, r, "Failed to %s pool %s", pause ? "pause" : "resume", name);
        return c->json ? print_pool_json(c, name, path) : EXIT_SUCCESS;
}

bool ctl_has_pools(Ctl *c) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        PoolList l = {};
        bool more;

        if (list_pools(c, &l, &error) < 0)
                return false;
        more = l.n > 1;
        pool_list_done(&l);
        return more;
}
