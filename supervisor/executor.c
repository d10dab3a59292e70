/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What every executor shares. */
#include <stddef.h>

#include "executor.h"

Executor *executor_free(Executor *e) {
        if (e)
                e->vtable->free(e);
        return NULL;
}
