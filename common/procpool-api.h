/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Every name of procpool's bus API, spelled once: the daemon, procpoolctl and the bench include this.
 * docs/dbus-api.md says what each one means; the tests spell the names out on purpose, as the
 * contract a client reads. */
#pragma once

/* ---- bus name, objects, interfaces ---------------------------------------------------------------- */

#define PROCPOOL_BUS_NAME "org.procpool.Supervisor1"
#define PROCPOOL_OBJECT_PATH "/org/procpool/Supervisor1"
#define PROCPOOL_MANAGER_INTERFACE "org.procpool.Supervisor1"
#define PROCPOOL_JOB_INTERFACE "org.procpool.Job1"
/* Job objects are PROCPOOL_JOB_PATH_PREFIX "/<id>", the id in decimal. */
#define PROCPOOL_JOB_PATH_PREFIX PROCPOOL_OBJECT_PATH "/job"
#define PROCPOOL_POOL_INTERFACE "org.procpool.Pool1"
/* Pool objects are PROCPOOL_POOL_PATH_PREFIX "/<name>", the name escaped as sd_bus_path_encode() does. */
#define PROCPOOL_POOL_PATH_PREFIX PROCPOOL_OBJECT_PATH "/pool"
/* The pool that always exists, which Supervisor1.PoolSize describes. */
#define PROCPOOL_DEFAULT_POOL "default"

/* ---- errors ---------------------------------------------------------------------------------------- */

#define PROCPOOL_ERROR_SPAWN_FAILED "org.procpool.Error.SpawnFailed"
#define PROCPOOL_ERROR_TIMED_OUT "org.procpool.Error.TimedOut"
#define PROCPOOL_ERROR_CANCELLED "org.procpool.Error.Cancelled"
#define PROCPOOL_ERROR_OUTPUT_LIMIT "org.procpool.Error.OutputLimit"
#define PROCPOOL_ERROR_QUEUE_FULL "org.procpool.Error.QueueFull"
#define PROCPOOL_ERROR_NOT_RUNNING "org.procpool.Error.NotRunning"
#define PROCPOOL_ERROR_NOT_FINISHED "org.procpool.Error.NotFinished"
#define PROCPOOL_ERROR_SHUTTING_DOWN "org.procpool.Error.ShuttingDown"
#define PROCPOOL_ERROR_INTERRUPTED "org.procpool.Error.Interrupted"
#define PROCPOOL_ERROR_DEPENDENCY_FAILED "org.procpool.Error.DependencyFailed"
#define PROCPOOL_ERROR_NO_SUCH_POOL "org.procpool.Error.NoSuchPool"
#define PROCPOOL_ERROR_POOL_EXISTS "org.procpool.Error.PoolExists"
#define PROCPOOL_ERROR_POOL_BUSY "org.procpool.Error.PoolBusy"
#define PROCPOOL_ERROR_OUTPUT_RELEASED "org.procpool.Error.OutputReleased"
/* CreatePool: the pool's executor could not be set up (a Slurm cluster whose CPUs sinfo cannot count). */
#define PROCPOOL_ERROR_EXECUTOR_UNAVAILABLE "org.procpool.Error.ExecutorUnavailable"

/* ---- options of Submit, Call and Communicate (a{sv}) ------------------------------------------------ */

#define PROCPOOL_OPTION_CWD "cwd"                                   /* s */
#define PROCPOOL_OPTION_ENVIRONMENT "environment"                   /* as */
#define PROCPOOL_OPTION_CLEAR_ENVIRONMENT "clear-environment"       /* b */
#define PROCPOOL_OPTION_TIMEOUT "timeout-usec"                      /* t */
#define PROCPOOL_OPTION_STOP_TIMEOUT "stop-timeout-usec"            /* t */
#define PROCPOOL_OPTION_STDIN "stdin"                               /* h */
#define PROCPOOL_OPTION_STDOUT "stdout"                             /* h */
#define PROCPOOL_OPTION_STDERR "stderr"                             /* h */
#define PROCPOOL_OPTION_OUTPUT_LIMIT "output-limit"                 /* t */
#define PROCPOOL_OPTION_PRIORITY "priority"                         /* i */
#define PROCPOOL_OPTION_LABEL "label"                               /* s */
#define PROCPOOL_OPTION_CANCEL_ON_DISCONNECT "cancel-on-disconnect" /* b */
#define PROCPOOL_OPTION_MEMORY_MAX "memory-max"                     /* t */
#define PROCPOOL_OPTION_POOL "pool"                                 /* s */
#define PROCPOOL_OPTION_AFTER "after"                               /* at */
#define PROCPOOL_OPTION_NOT_BEFORE "not-before-usec"                /* t */
#define PROCPOOL_OPTION_RETRY "retry"                               /* u */
#define PROCPOOL_OPTION_RETRY_DELAY "retry-delay-usec"              /* t */
#define PROCPOOL_OPTION_USER "user"                                 /* s: a user name or a decimal uid */
#define PROCPOOL_OPTION_KEEP_OUTPUT "keep-output"                   /* b, Communicate only */

/* ---- settings of CreatePool (a{sv}) ---------------------------------------------------------------- */

#define PROCPOOL_POOL_SETTING_SIZE "size"             /* u */
#define PROCPOOL_POOL_SETTING_EXECUTOR "executor"     /* s: PROCPOOL_EXECUTOR_* */
#define PROCPOOL_POOL_SETTING_SLURM_CONF "slurm-conf" /* s: an absolute path; slurm pools only */
#define PROCPOOL_POOL_SETTING_PARTITION "partition"   /* s: slurm pools only */

/* Executors a pool's jobs run on (Pool1.Executor). */
#define PROCPOOL_EXECUTOR_LOCAL "local" /* child processes of procpoold */
#define PROCPOOL_EXECUTOR_SLURM "slurm" /* srun steps on a Slurm cluster */

/* ---- polkit actions (data/org.procpool.policy), asked on the system instance --------------------- */

#define PROCPOOL_ACTION_RUN "org.procpool.run"
#define PROCPOOL_ACTION_RUN_AS "org.procpool.run-as"
#define PROCPOOL_ACTION_MANAGE "org.procpool.manage"

/* ---- job states (Job1.State, ListJobs, JobFinished) ------------------------------------------------- */

#define PROCPOOL_STATE_QUEUED "queued"
#define PROCPOOL_STATE_RUNNING "running"
#define PROCPOOL_STATE_EXITED "exited"
#define PROCPOOL_STATE_KILLED "killed"
#define PROCPOOL_STATE_TIMED_OUT "timed-out"
#define PROCPOOL_STATE_CANCELLED "cancelled"
#define PROCPOOL_STATE_FAILED "failed"
