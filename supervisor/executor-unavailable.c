/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An executor that runs nothing: each start fails, saying why the pool has no executor. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "executor-unavailable.h"

typedef struct UnavailableExecutor {
        Executor e;
        int error;
        char *detail;
} UnavailableExecutor;

/* A job's runtime: nothing is kept, but the job holds one from start() until done(). */
static char unavailable_runtime;

static int unavailable_start(Executor *e, Job *j, uint64_t id, JobSpec *spec, void **runtime) {
        UnavailableExecutor *u = (UnavailableExecutor *) e;

        *runtime = &unavailable_runtime;
        e->events->failed(j, u->error, u->detail);
        return 0;
}

static int unavailable_signal(Executor *e, void *runtime, int sig) {
        return -ESRCH; /* nothing of its jobs ever runs */
}

static int unavailable_stop(Executor *e, void *runtime, ExecutorStop how) {
        return -ESRCH;
}

static void unavailable_done(Executor *e, void *runtime) {
        assert(runtime == &unavailable_runtime);
}

static void unavailable_free(Executor *e) {
        UnavailableExecutor *u = (UnavailableExecutor *) e;

        free(u->detail);
        free(u);
}

static const ExecutorVTable unavailable_vtable = {
        .name = "unavailable",
        .start = unavailable_start,
        .signal = unavailable_signal,
        .stop = unavailable_stop,
        .done = unavailable_done,
        .free = unavailable_free,
};

int executor_unavailable_new(int error, const char *detail, Executor **ret) {
        UnavailableExecutor *u;

        assert(error < 0 && ret);

        u = calloc(1, sizeof(UnavailableExecutor));
        if (!u)
                return -ENOMEM;
        u->e.vtable = &unavailable_vtable;
        u->error = error;
        if (detail) {
                u->detail = strdup(detail);
                if (!u->detail) {
                        free(u);
                        return -ENOMEM;
                }
        }
        *ret = &u->e;
        return 0;
}
