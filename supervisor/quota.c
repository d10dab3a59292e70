/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Per-uid use of the pool (jobs queued and running, captured bytes held), against per-uid limits. */
#include <search.h>
#include <stdlib.h>

#include "quota.h"

static int usage_compare(const void *a, const void *b) {
        uid_t x = ((const UserUsage *) a)->uid, y = ((const UserUsage *) b)->uid;
        return x < y ? -1 : x > y;
}

static void usage_free(void *p) {
        UserUsage *u = p;

        free(u->queue);
        free(u);
}

const UserUsage *quota_find(void *const *tree, uid_t uid) {
        UserUsage key = { .uid = uid }, **found;

        found = tfind(&key, tree, usage_compare);
        return found ? *found : NULL;
}

UserUsage *quota_ref(void **tree, uid_t uid) {
        UserUsage key = { .uid = uid }, **found, *u;

        found = tfind(&key, tree, usage_compare);
        if (found) {
                (*found)->n_jobs++;
                return *found;
        }
        u = calloc(1, sizeof(UserUsage));
        if (!u)
                return NULL;
        u->uid = uid;
        u->n_jobs = 1;
        if (!tsearch(u, tree, usage_compare)) {
                free(u);
                return NULL;
        }
        return u;
}

void quota_unref(void **tree, UserUsage *u) {
        if (!u || --u->n_jobs > 0)
                return;
        (void) tdelete(u, tree, usage_compare);
        usage_free(u);
}

void quota_free_all(void **tree) {
        tdestroy(*tree, usage_free);
        *tree = NULL;
}

uint64_t quota_output_room(const UserUsage *u, const QuotaLimits *limits) {
        if (limits->max_output == 0)
                return UINT64_MAX;
        return u->output_bytes >= limits->max_output ? 0 : limits->max_output - u->output_bytes;
}
