/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The errnos procpool's own bus errors (org.procpool.Error.*) stand for in a client such as procpoolctl. */
#pragma once

#include <errno.h>
#include <systemd/sd-bus.h>

/* Once procpool_error_map is registered, sd_bus_call() and its kin return these negated for procpool's
 * errors, and sd_bus_error_get_errno() returns them. They are distinct, and none is the errno sd-bus gives
 * an org.freedesktop.DBus.Error that procpool's methods return, so that a client can tell them apart:
 * TimedOut is ETIME, as ETIMEDOUT is a call that got no reply; OutputLimit is EFBIG, as ENOBUFS is
 * LimitsExceeded; ShuttingDown is ESHUTDOWN, not ECANCELED as systemd's own, which is Cancelled here. */
#define PROCPOOL_ERRNO_SPAWN_FAILED ENOEXEC      /* the command could not be executed */
#define PROCPOOL_ERRNO_TIMED_OUT ETIME           /* the job's timer ran out */
#define PROCPOOL_ERRNO_CANCELLED ECANCELED       /* Cancel, or the caller went away */
#define PROCPOOL_ERRNO_OUTPUT_LIMIT EFBIG        /* a captured stream grew too large */
#define PROCPOOL_ERRNO_QUEUE_FULL EXFULL         /* not EBUSY, which is NotFinished */
#define PROCPOOL_ERRNO_NOT_RUNNING ESRCH         /* the job has no process any more */
#define PROCPOOL_ERRNO_NOT_FINISHED EBUSY        /* the job is still queued or running */
#define PROCPOOL_ERRNO_SHUTTING_DOWN ESHUTDOWN   /* the daemon takes no new jobs */
#define PROCPOOL_ERRNO_INTERRUPTED EINTR         /* the daemon stopped or re-executes; the job may go on */
#define PROCPOOL_ERRNO_DEPENDENCY_FAILED ENOLINK /* a job it was to run after did not exit 0 */
#define PROCPOOL_ERRNO_NO_SUCH_POOL ENOENT       /* no org.freedesktop error procpool returns maps to it */
#define PROCPOOL_ERRNO_POOL_EXISTS EEXIST
#define PROCPOOL_ERRNO_POOL_BUSY ENOTEMPTY     /* the pool has unfinished jobs */
#define PROCPOOL_ERRNO_OUTPUT_RELEASED ENODATA /* Communicate's caller had the output; none was kept */

/* SD_BUS_ERROR_MAP entries of every org.procpool.Error, ending with SD_BUS_ERROR_MAP_END. */
extern const sd_bus_error_map procpool_error_map[];

/* Registers procpool_error_map with sd-bus for the whole process; call it before the first call to the
 * daemon. Registering again does nothing. Returns 0 or a negative errno. */
int procpool_error_map_register(void);
