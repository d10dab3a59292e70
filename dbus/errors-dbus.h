/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The org.procpool.Error.* names; see docs/dbus-api.md for when each is sent. */
#pragma once

#define PROCPOOL_ERROR_SPAWN_FAILED "org.procpool.Error.SpawnFailed"
#define PROCPOOL_ERROR_TIMED_OUT "org.procpool.Error.TimedOut"
#define PROCPOOL_ERROR_CANCELLED "org.procpool.Error.Cancelled"
#define PROCPOOL_ERROR_OUTPUT_LIMIT "org.procpool.Error.OutputLimit"
#define PROCPOOL_ERROR_QUEUE_FULL "org.procpool.Error.QueueFull"
#define PROCPOOL_ERROR_NOT_RUNNING "org.procpool.Error.NotRunning"
#define PROCPOOL_ERROR_NOT_FINISHED "org.procpool.Error.NotFinished"
#define PROCPOOL_ERROR_SHUTTING_DOWN "org.procpool.Error.ShuttingDown"
