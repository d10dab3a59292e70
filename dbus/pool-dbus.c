/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pool objects /org/procpool/Supervisor1/pool/<name>: org.procpool.Pool1. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authz.h"
#include "log.h"
#include "macro.h"
#include "pool-dbus.h"
#include "procpool-api.h"

char *pool_path(const Pool *p) {
        char *path = NULL;

        if (sd_bus_path_encode(PROCPOOL_POOL_PATH_PREFIX, pool_get_name(p), &path) < 0)
                return NULL;
        return path;
}

int bus_check_manage(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        return authz_check(m->authz, message, AUTHZ_MANAGE, error);
}

static int pool_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                            void **found, sd_bus_error *error) {
        _cleanup_free_ char *name = NULL;
        Manager *m = userdata;
        Pool *p;
        int r;

        r = sd_bus_path_decode(path, PROCPOOL_POOL_PATH_PREFIX, &name);
        if (r <= 0)
                return r;
        p = manager_find_pool(m, name);
        if (!p)
                return 0;
        *found = p;
        return 1;
}

static int pool_node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes,
                                sd_bus_error *error) {
        Manager *m = userdata;
        char **l = calloc(m->n_pools + 1, sizeof(char *));

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_pools; i++) {
                l[i] = pool_path(m->pools[i].pool);
                if (!l[i]) {
                        strv_free(l);
                        return -ENOMEM;
                }
        }
        *nodes = l;
        return 0;
}

static int property_get_name(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", pool_get_name(userdata));
}

static int property_get_size(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "u", pool_get_size(userdata));
}

static int property_get_running(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "u", pool_get_running(userdata));
}

static int property_get_queued(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "u", pool_get_queued(userdata));
}

static int property_get_paused(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "b", (int) pool_get_paused(userdata));
}

static int property_get_executor(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s",
                                     pool_get_executor_settings(userdata).kind ?: PROCPOOL_EXECUTOR_LOCAL);
}

static int property_get_slurm_conf(sd_bus *bus, const char *path, const char *interface, const char *property,
                                   sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", pool_get_executor_settings(userdata).slurm_conf ?: "");
}

static int property_get_partition(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", pool_get_executor_settings(userdata).partition ?: "");
}

int bus_pool_set_size(Manager *m, Pool *p, sd_bus_message *message, uint32_t n, sd_bus_error *error) {
        int r;

        /* On the system instance supervisor_bus_filter() asked polkit before a setter runs: here the
         * answer is known. */
        r = bus_check_manage(m, message, error);
        if (r == 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                        "Failed to authorize the change of a pool's size");
        if (r < 0)
                return r;
        if (n == 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "A pool's size must be at least 1");
        r = pool_set_size(p, n);
        if (r < 0)
                return r;
        pool_bus_emit_changed(m, p, "Size");
        return 0;
}

static int property_set_size(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *value, void *userdata, sd_bus_error *error) {
        Pool *p = userdata;
        uint32_t n;
        int r;

        r = sd_bus_message_read(value, "u", &n);
        if (r < 0)
                return r;
        r = bus_pool_set_size(pool_get_userdata(p), p, value, n, error);
        return r < 0 ? r : 1;
}

static int pause_resume(sd_bus_message *message, Pool *p, bool paused, sd_bus_error *error) {
        Manager *m = pool_get_userdata(p);
        int r;

        r = bus_check_manage(m, message, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* polkit is asked; the request comes again */
        if (pool_get_paused(p) != paused) {
                pool_set_paused(p, paused);
                pool_bus_emit_changed(m, p, "Paused");
                log_info("pool %s %s", pool_get_name(p), paused ? "paused" : "resumed");
        }
        return sd_bus_reply_method_return(message, NULL);
}

static int method_pause(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return pause_resume(message, userdata, true, error);
}

static int method_resume(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return pause_resume(message, userdata, false, error);
}

static const sd_bus_vtable pool_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_get_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_WRITABLE_PROPERTY("Size", "u", property_get_size, property_set_size, 0,
                                 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE | SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("Running", "u", property_get_running, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Queued", "u", property_get_queued, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Paused", "b", property_get_paused, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Executor", "s", property_get_executor, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("SlurmConf", "s", property_get_slurm_conf, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Partition", "s", property_get_partition, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("Pause", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_pause,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Resume", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_resume,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int pool_bus_add(Manager *m, sd_bus *bus) {
        int r;

        r = sd_bus_add_fallback_vtable(bus, NULL, PROCPOOL_POOL_PATH_PREFIX, PROCPOOL_POOL_INTERFACE,
                                       pool_vtable, pool_object_find, m);
        if (r < 0)
                return r;
        return sd_bus_add_node_enumerator(bus, NULL, PROCPOOL_POOL_PATH_PREFIX, pool_node_enumerator, m);
}

/* A pool's signal: its path, and the properties that changed (PropertiesChanged) or NULL. */
typedef struct PoolSignal {
        const char *path;
        char **properties;
        int kind; /* 0 changed, 1 added, 2 removed */
} PoolSignal;

static int send_pool_signal(sd_bus *bus, void *userdata) {
        PoolSignal *x = userdata;

        switch (x->kind) {
        case 0:
                return sd_bus_emit_properties_changed_strv(bus, x->path, PROCPOOL_POOL_INTERFACE,
                                                           x->properties);
        case 1:
                return sd_bus_emit_object_added(bus, x->path);
        default:
                return sd_bus_emit_object_removed(bus, x->path);
        }
}

static void emit_pool_signal(Manager *m, Pool *p, int kind, char **properties) {
        _cleanup_free_ char *path = pool_path(p);
        PoolSignal x = { .path = path, .properties = properties, .kind = kind };

        if (path)
                (void) manager_emit(m, send_pool_signal, &x);
}

void pool_bus_emit_changed(Manager *m, Pool *p, const char *property) {
        const char *names[] = { property, NULL };
        emit_pool_signal(m, p, 0, (char **) names);
}

void pool_bus_emit_added(Manager *m, Pool *p) {
        emit_pool_signal(m, p, 1, NULL);
}

void pool_bus_emit_removed(Manager *m, Pool *p) {
        emit_pool_signal(m, p, 2, NULL);
}

void pool_bus_emit_counts_changed(Manager *m) {
        for (size_t i = 0; i < m->n_pools; i++) {
                ManagerPool *mp = &m->pools[i];
                unsigned running = pool_get_running(mp->pool), queued = pool_get_queued(mp->pool);
                const char *names[3];
                size_t n = 0;

                if (running != mp->last_running)
                        names[n++] = "Running";
                if (queued != mp->last_queued)
                        names[n++] = "Queued";
                names[n] = NULL;
                mp->last_running = running;
                mp->last_queued = queued;
                if (n > 0)
                        emit_pool_signal(m, mp->pool, 0, (char **) names);
        }
}
