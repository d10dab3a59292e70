/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The sd-bus error map of procpool's own errors, so that clients decide on errnos, not on error names. */
#include "ctl-errors.h"
#include "procpool-api.h"

const sd_bus_error_map procpool_error_map[] = {
        SD_BUS_ERROR_MAP(PROCPOOL_ERROR_SPAWN_FAILED, PROCPOOL_ERRNO_SPAWN_FAILED),
        SD_BUS_ERROR_MAP(PROCPOOL_ERROR_TIMED_OUT, PROCPOOL_ERRNO_TIMED_OUT),
        SD_BUS_ERROR_MAP(PROCPOOL_ERROR_CANCELLED, PROCPOOL_ERRNO_CANCELLED),
        SD_BUS_ERROR_MAP(PROCPOOL_ERROR_OUTPUT_LIMIT, PROCPOOL_ERRNO_OUTPUT_LIMIT),
        SD_BUS_ERROR_MAP(PROCPOOL_ERROR_QUEUE_FULL, PROCPOOL_ERRNO_QUEUE_FULL),
        SD_BUS_ERROR_MAP(PROCPOOL_ERROR_NOT_RUNNING, PROCPOOL_ERRNO_NOT_RUNNING),
        SD_BUS_ERROR_MAP(PROCPOOL_ERROR_NOT_FINISHED, PROCPOOL_ERRNO_NOT_FINISHED),
        SD_BUS_ERROR_MAP(PROCPOOL_ERROR_SHUTTING_DOWN, PROCPOOL_ERRNO_SHUTTING_DOWN),
        SD_BUS_ERROR_MAP(PROCPOOL_ERROR_INTERRUPTED, PROCPOOL_ERRNO_INTERRUPTED),
        SD_BUS_ERROR_MAP_END,
};

int procpool_error_map_register(void) {
        int r = sd_bus_error_add_map(procpool_error_map);

        return r < 0 ? r : 0;
}
