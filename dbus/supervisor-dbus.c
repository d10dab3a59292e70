/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The manager object /org/procpool/Supervisor1: org.procpool.Supervisor1 and the ObjectManager. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "procpool-api.h"
#include "job-dbus.h"
#include "log.h"
#include "macro.h"
#include "options-dbus.h"
#include "pool-dbus.h"
#include "private.h"
#include "supervisor-dbus.h"

/* The error for a spec the pool's executor cannot honour. */
static int unsupported_error(Pool *p, const JobSpec *spec, sd_bus_error *error) {
        JobSpecField field = _JOB_SPEC_FIELD_MAX;

        (void) pool_validate(p, spec, &field);
        switch (field) {
        case JOB_SPEC_MEMORY_MAX:
                return sd_bus_error_set(
                        error, SD_BUS_ERROR_NOT_SUPPORTED,
                        "Option '" PROCPOOL_OPTION_MEMORY_MAX "' needs the cgroup memory controller, "
                        "which procpoold does not have here (no delegated cgroup v2 subtree with "
                        "the memory controller)");
        default:
                return sd_bus_error_set(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                        "The pool cannot run a job with these options");
        }
}

/* The error for what pool_submit() refused. */
static int submit_error(Manager *m, Pool *p, int r, uid_t uid, const JobSpec *spec, sd_bus_error *error) {
        const PoolConfig *pc = pool_get_config(p);

        switch (r) {
        case POOL_ERROR_USER_QUEUE_FULL:
                return sd_bus_error_setf(error, PROCPOOL_ERROR_QUEUE_FULL,
                                         "uid %u has %u jobs queued already (--max-queued-per-user)",
                                         (unsigned) uid, pc->per_user.max_queued);
        case POOL_ERROR_QUEUE_FULL:
                return sd_bus_error_setf(error, PROCPOOL_ERROR_QUEUE_FULL,
                                         "The queue is full: %u jobs are waiting (MaxQueued)",
                                         pc->max_queued);
        case POOL_ERROR_HELD_LIMIT:
                return sd_bus_error_setf(
                        error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                        "procpoold holds %" PRIu64 " bytes of jobs (argv, labels, %u bytes each "
                        "besides) and takes at most %" PRIu64 ", so that GetManagedObjects fits "
                        "in one bus message; wait for jobs to end or submit shorter commands",
                        registry_get_held_bytes(m->registry), REGISTRY_JOB_FIXED_COST,
                        registry_get_config(m->registry)->max_held_bytes);
        case POOL_ERROR_USER_HELD_LIMIT:
                return sd_bus_error_setf(
                        error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                        "uid %u holds %" PRIu64 " bytes of jobs (argv, labels, cwd, %u bytes each besides) "
                        "and may hold at most %" PRIu64 " (its share: three quarters of the %" PRIu64
                        " procpoold takes, so that GetManagedObjects fits in one bus message and other uids "
                        "keep room); wait for its jobs to end, release its finished ones or submit shorter "
                        "commands",
                        (unsigned) uid, registry_get_user_held_bytes(m->registry, uid),
                        REGISTRY_JOB_FIXED_COST, registry_get_config(m->registry)->max_held_bytes_per_user,
                        registry_get_config(m->registry)->max_held_bytes);
        case POOL_ERROR_USER_FDS:
                return sd_bus_error_setf(
                        error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                        "uid %u would hold more than %u fds passed with its queued jobs; wait "
                        "for them to start",
                        (unsigned) uid, pc->per_user.max_fds);
        case POOL_ERROR_FDS:
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "Queued jobs would hold more than %u fds passed with them; wait for "
                                         "them to start",
                                         pc->max_fds);
        case POOL_ERROR_NOT_SUPPORTED:
                return unsupported_error(p, spec, error);
        case POOL_ERROR_SHUTTING_DOWN:
                return sd_bus_error_set(error, PROCPOOL_ERROR_SHUTTING_DOWN,
                                        "procpoold is shutting down and takes no new jobs");
        default:
                return r;
        }
}

/* The jobs "after" names must exist: a job waits only for jobs submitted before it, so that waits never
 * form a cycle. */
static int check_after(Manager *m, const JobSpec *spec, sd_bus_error *error) {
        uint64_t next = registry_get_next_id(m->registry);

        for (size_t i = 0; i < spec->n_after; i++) {
                uint64_t id = spec->after[i];

                if (id == next)
                        return sd_bus_error_setf(
                                error, SD_BUS_ERROR_INVALID_ARGS,
                                "Option '" PROCPOOL_OPTION_AFTER "': %" PRIu64 " is this job's own id", id);
                if (id == 0 || id > next)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Option '" PROCPOOL_OPTION_AFTER
                                                 "': there is no job %" PRIu64
                                                 " yet; a job waits only for jobs submitted before it",
                                                 id);
                if (!registry_find(m->registry, id))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Option '" PROCPOOL_OPTION_AFTER "': job %" PRIu64
                                                 " is not known any more (released)",
                                                 id);
        }
        return 0;
}

/* What every request that makes jobs passes after it was parsed: whom they run as, the question to polkit
 * (once, however many jobs), the owner, the pool. 1: admitted, *ret_pool set; 0: polkit is asked, and the
 * request comes again. */
static int request_admit(Manager *m, sd_bus_message *message, Client *c, Request *req, Pool **ret_pool,
                         sd_bus_error *error) {
        AuthzAction action = AUTHZ_RUN;
        Pool *p;
        int r;

        if (!m->config.system_policy && req->user)
                return sd_bus_error_set(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                        "Option '" PROCPOOL_OPTION_USER "' needs the system instance "
                                        "(procpoold --system); this one runs every job as its own uid");
        /* On the system instance a job runs as its caller, or as the user option's user: resolved before
         * the question, which depends on it (a user option naming the caller asks for no more). */
        if (m->config.system_policy) {
                r = request_resolve_user(req, client_uid(c), error);
                if (r < 0)
                        return r;
                if (req->user && req->spec.user.uid != client_uid(c))
                        action = AUTHZ_RUN_AS;
        }
        r = authz_check(m->authz, message, action, error);
        if (r <= 0)
                return r;
        req->spec.owner = client_uid(c);
        if (req->spec.retry > 0 && (req->spec.passed_fds != 0 || req->spec.has_input))
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
                                        "Option '" PROCPOOL_OPTION_RETRY "' does not go with fds passed as "
                                        "stdin, stdout or stderr, nor with Communicate's input: the first "
                                        "attempt uses them up");
        p = req->spec.pool ? manager_find_pool(m, req->spec.pool) : m->pool;
        if (!p)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Option '" PROCPOOL_OPTION_POOL
                                         "': there is no pool '%s' (ListPools)",
                                         req->spec.pool);
        *ret_pool = p;
        return 1;
}

/* The client of a request for new jobs, unless the daemon is shutting down. */
static int request_client(Manager *m, sd_bus_message *message, Client **ret, sd_bus_error *error) {
        if (m->shutting_down)
                return sd_bus_error_set(error, PROCPOOL_ERROR_SHUTTING_DOWN,
                                        "procpoold is shutting down and takes no new jobs");
        return manager_get_client(m, message, ret);
}

/* Validates and queues a request; on success returns the job, its JobBus attached. While polkit is asked
 * returns 0 with *ret NULL: the handler sends nothing and returns 1, and the request comes again. */
static int submit_request(Manager *m, sd_bus_message *message, RequestKind kind, Job **ret,
                          sd_bus_error *error) {
        Request req;
        Client *c;
        Pool *p;
        int r;

        r = request_client(m, message, &c, error);
        if (r < 0)
                return r;

        r = request_parse(message, kind, &req, error);
        if (r < 0)
                return r;
        r = request_admit(m, message, c, &req, &p, error);
        if (r <= 0) {
                request_done(&req);
                if (r == 0)
                        *ret = NULL;
                return r;
        }

        /* Communicate replies with what it captured: one bus message must carry it. Submit and Call
         * capture into the spool, and OpenOutput reads any size. */
        if (kind == REQUEST_COMMUNICATE) {
                uint64_t cap = manager_stream_max(m->config.bus_kind);

                if (req.spec.output_limit == JOB_OUTPUT_LIMIT_UNSET)
                        req.spec.output_limit = MIN(pool_get_config(p)->output_limit ?: cap, cap);
                else if (req.spec.output_limit > cap) {
                        request_done(&req);
                        return sd_bus_error_setf(
                                error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                "Option '" PROCPOOL_OPTION_OUTPUT_LIMIT "' is above the %" PRIu64
                                " bytes one bus reply can carry per stream; pass an fd with the '" PROCPOOL_OPTION_STDOUT
                                "' or '" PROCPOOL_OPTION_STDERR
                                "' option, or Submit and read it with OpenOutput()",
                                cap);
                }
        }

        r = supervisor_submit_spec(m, c, p, &req.spec, ret, error);
        request_done(&req);
        return r;
}

int supervisor_submit_spec(Manager *m, Client *c, Pool *p, JobSpec *spec, Job **ret, sd_bus_error *error) {
        JobBus *jb;
        int r;

        r = check_after(m, spec, error);
        if (r < 0)
                return r;
        jb = job_bus_new(m, c);
        if (!jb)
                return -ENOMEM;
        r = pool_submit(p, spec, jb, ret);
        if (r < 0) {
                job_bus_free(jb);
                return submit_error(m, p, r, spec->owner, spec, error);
        }
        return 0;
}

/* Submit is answered once its job is stored: an acknowledged job survives a crash. */
static void on_submit_stored(Job *j, int error, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *message = userdata;
        _cleanup_free_ char *path = NULL;
        int r;

        manager_flush_signals_for(job_bus(j)->manager, sd_bus_message_get_bus(message));
        if (error < 0)
                r = sd_bus_reply_method_errnof(message, error,
                                               "Failed to store job %" PRIu64
                                               " in the state dir: %m; it was not "
                                               "queued",
                                               job_get_record(j)->id);
        else {
                path = job_path(j);
                r = path ? sd_bus_reply_method_return(message, "o", path) : -ENOMEM;
        }
        if (r < 0)
                log_debug_errno(r, "Failed to answer Submit of job %" PRIu64 ": %m, ignoring",
                                job_get_record(j)->id);
}

int supervisor_reply_when_stored(Manager *m, sd_bus_message *message, Job *j) {
        sd_bus_message *handle = NULL;
        int r;

        /* The job took copies of the fds it uses; the message's own are not kept until the commit. */
        r = job_bus_reply_handle(message, &handle);
        if (r >= 0)
                r = registry_await_stored(m->registry, j, on_submit_stored, handle);
        if (r < 0) {
                sd_bus_message_unref(handle);
                (void) job_cancel(j); /* nobody could hear that it was queued */
                return r;
        }
        return 1; /* the reply comes once the job is stored */
}

static int method_submit(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        Job *j;
        int r;

        r = submit_request(m, message, REQUEST_SUBMIT, &j, error);
        if (r < 0)
                return r;
        if (!j)
                return 1; /* polkit is asked; the request comes again */
        return supervisor_reply_when_stored(m, message, j);
}

/* A SubmitMany waiting for its jobs' commit: one reply, with every path, or one error. */
typedef struct Batch {
        Manager *m;
        sd_bus_message *handle; /* job_bus_reply_handle() of the call */
        uint64_t first_id;
        size_t n;
} Batch;

static void on_many_stored(int error, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Batch *b = userdata;
        int r;

        manager_flush_signals_for(b->m, sd_bus_message_get_bus(b->handle));
        if (error < 0) {
                r = sd_bus_reply_method_errnof(b->handle, error,
                                               "Failed to store jobs %" PRIu64 " to %" PRIu64
                                               " in the state dir: %m; none of them was queued",
                                               b->first_id, b->first_id + b->n - 1);
                goto finish;
        }
        r = sd_bus_message_new_method_return(b->handle, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "o");
        for (size_t i = 0; r >= 0 && i < b->n; i++) {
                char path[sizeof(JOB_PATH_PREFIX) + 24];

                (void) snprintf(path, sizeof(path), JOB_PATH_PREFIX "/%" PRIu64, b->first_id + i);
                r = sd_bus_message_append_basic(reply, 'o', path);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
finish:
        if (r < 0)
                log_debug_errno(
                        r, "Failed to answer SubmitMany of jobs %" PRIu64 " to %" PRIu64 ": %m, ignoring",
                        b->first_id, b->first_id + b->n - 1);
        sd_bus_message_unref(b->handle);
        free(b);
}

/* Cancels the first n jobs of a batch that could not be queued as a whole: nobody hears of them. */
static void batch_cancel(Manager *m, uint64_t first_id, size_t n) {
        for (size_t i = 0; i < n; i++) {
                Job *j = registry_find(m->registry, first_id + i);
                if (j)
                        (void) job_cancel(j);
        }
}

/* The error for a batch that does not fit as a whole: how many would. */
static int batch_room_error(Manager *m, Pool *p, int r, size_t n, size_t fit, uid_t uid, const JobSpec *spec,
                            sd_bus_error *error) {
        const PoolConfig *pc = pool_get_config(p);

        switch (r) {
        case POOL_ERROR_USER_QUEUE_FULL:
                return sd_bus_error_setf(
                        error, PROCPOOL_ERROR_QUEUE_FULL,
                        "%zu jobs do not fit: uid %u may queue %zu more (--max-queued-per-user "
                        "%u); none was queued",
                        n, (unsigned) uid, fit, pc->per_user.max_queued);
        case POOL_ERROR_QUEUE_FULL:
                return sd_bus_error_setf(
                        error, PROCPOOL_ERROR_QUEUE_FULL,
                        "%zu jobs do not fit: the queue takes %zu more (MaxQueued %u); none was "
                        "queued",
                        n, fit, pc->max_queued);
        default:
                return submit_error(m, p, r, uid, spec, error);
        }
}

static int method_submit_many(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ JobSpec *specs = NULL;
        Manager *m = userdata;
        char ***argvs = NULL;
        size_t n = 0, fit, done = 0;
        uint64_t first_id;
        Batch *b = NULL;
        Request req;
        Client *c;
        Pool *p;
        int r;

        r = request_client(m, message, &c, error);
        if (r < 0)
                return r;
        r = request_parse_many(message, &req, &argvs, &n, error);
        if (r < 0)
                return r;
        r = request_admit(m, message, c, &req, &p, error);
        if (r <= 0)
                goto out;
        /* Every job of the batch has the same "after": checked once, against the ids before the batch's. */
        r = check_after(m, &req.spec, error);
        if (r < 0)
                goto out;

        specs = calloc(n, sizeof(JobSpec));
        if (!specs) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                r = job_spec_copy(&req.spec, &specs[i]);
                if (r < 0) {
                        for (size_t k = 0; k < i; k++)
                                job_spec_done(&specs[k]);
                        goto out;
                }
                strv_free(specs[i].argv); /* the options' copy has an empty one */
                specs[i].argv = TAKE_PTR(argvs[i]);
        }
        r = pool_check_room(p, specs, n, &fit);
        if (r < 0) {
                r = batch_room_error(m, p, r, n, fit, req.spec.owner, &specs[0], error);
                goto out_specs;
        }
        b = calloc(1, sizeof(Batch));
        if (!b) {
                r = -ENOMEM;
                goto out_specs;
        }
        r = job_bus_reply_handle(message, &b->handle);
        if (r < 0)
                goto out_specs;

        first_id = registry_get_next_id(m->registry);
        for (; done < n; done++) {
                Job *j;

                r = supervisor_submit_spec(m, c, p, &specs[done], &j, error);
                if (r < 0)
                        break;
                assert(job_get_record(j)->id == first_id + done);
        }
        if (r < 0) {
                /* Only running out of memory gets here, past pool_check_room(): what was queued goes. */
                batch_cancel(m, first_id, done);
                goto out_specs;
        }
        b->m = m;
        b->first_id = first_id;
        b->n = n;
        r = registry_await_stored_many(m->registry, first_id, n, on_many_stored, b);
        if (r < 0) {
                batch_cancel(m, first_id, n);
                goto out_specs;
        }
        b = NULL;
        r = 1; /* the reply comes once the jobs are stored */
out_specs:
        for (size_t i = done; i < n; i++)
                job_spec_done(&specs[i]);
out:
        if (b) {
                sd_bus_message_unref(b->handle);
                free(b);
        }
        request_argvs_free(argvs, n);
        request_done(&req);
        return r == 0 ? 1 : r; /* 0: polkit is asked; the request comes again */
}

/* Call and Communicate whose job the store refused: their callers hear why, and the job is gone. */
static void on_call_stored(Job *j, int error, void *userdata) {
        if (error < 0)
                job_bus_fail_waiters(j, error);
}

static int submit_and_wait(sd_bus_message *message, Manager *m, RequestKind kind, WaiterKind wkind,
                           sd_bus_error *error) {
        Job *j;
        int r;

        /* The job's InterfacesAdded need not go out before its spawn: its caller's answer comes later,
         * after the signals queued for its connection (manager.h). */
        manager_reply_later(m, true);
        r = submit_request(m, message, kind, &j, error);
        if (r >= 0 && j) {
                r = job_bus_add_waiter(j, message, wkind);
                if (r >= 0)
                        r = registry_await_stored(m->registry, j, on_call_stored, NULL);
                if (r < 0)
                        (void) job_cancel(j); /* nobody could hear how it ends */
        }
        manager_reply_later(m, false);
        if (r < 0) {
                /* The error goes out when this returns: after what was said meanwhile. */
                manager_flush_signals(m);
                return r;
        }
        return 1; /* the reply comes when the job ends, or polkit is asked and the request comes again */
}

static int method_call(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return submit_and_wait(message, userdata, REQUEST_CALL, WAITER_RETURNCODE, error);
}

static int method_communicate(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return submit_and_wait(message, userdata, REQUEST_COMMUNICATE, WAITER_COMMUNICATE, error);
}

static int method_get_job(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *path = NULL;
        Manager *m = userdata;
        uint64_t id;
        Job *j;
        int r;

        r = sd_bus_message_read(message, "t", &id);
        if (r < 0)
                return r;
        j = registry_find(m->registry, id);
        if (!j)
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT, "No job %" PRIu64, id);
        path = job_path(j);
        if (!path)
                return -ENOMEM;
        return sd_bus_reply_method_return(message, "o", path);
}

typedef struct JobList {
        sd_bus_message *reply;
        uid_t uid;   /* the caller's */
        bool manage; /* it may read every job */
} JobList;

static int append_job(Job *j, void *userdata) {
        JobList *l = userdata;
        const JobRecord *r = job_get_record(j);
        _cleanup_free_ char *path = job_path(j);
        /* The return code is private on the system instance: 0 for a job the caller may not read. */
        bool readable = l->manage || job_bus_readable_by(j, l->uid);

        if (!path)
                return -ENOMEM;
        return sd_bus_message_append(l->reply, "(tosi)", r->id, path, job_state_to_string(r->state),
                                     (int32_t) (readable ? r->returncode : 0));
}

static int method_list_jobs(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        JobList l = { .manage = true };
        Client *c;
        int r;

        if (m->config.system_policy) {
                r = manager_get_client(m, message, &c);
                if (r < 0)
                        return r;
                l.uid = client_uid(c);
                l.manage = job_bus_all_readable_by(m, l.uid);
                if (!l.manage) {
                        r = authz_check_read(m->authz, message);
                        if (r == 0)
                                return 1; /* polkit is asked; the request comes again */
                        l.manage = r > 0;
                }
        }
        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        l.reply = reply;
        r = sd_bus_message_open_container(reply, 'a', "(tosi)");
        if (r < 0)
                return r;
        r = registry_foreach(m->registry, append_job, &l);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_reexecute(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(serializer_done) Serializer s = { .fd = -EBADF };
        Manager *m = userdata;
        int r;

        /* Root, the uid the daemon runs as (a user's own instance), or whom polkit allows to manage the
         * system instance. */
        r = authz_check(m->authz, message, AUTHZ_MANAGE, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (m->config.ephemeral)
                return sd_bus_error_set(
                        error, SD_BUS_ERROR_NOT_SUPPORTED,
                        "procpoold runs with --ephemeral: no job store carries its jobs across a "
                        "re-exec; restart it instead");
        if (m->shutting_down)
                return sd_bus_error_set(error, PROCPOOL_ERROR_SHUTTING_DOWN,
                                        "procpoold is shutting down and does not re-execute");
        /* The next image reads every record back from the store: it must hold every change. */
        r = registry_flush(m->registry);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r,
                                               "Failed to write the job store, so procpoold does not "
                                               "re-execute: %m");
        r = manager_serialize(m, &s);
        if (r == -EBUSY)
                return sd_bus_error_set(error, SD_BUS_ERROR_FAILED,
                                        "A job is being started; re-execute once it has started");
        if (r == -EOPNOTSUPP)
                return sd_bus_error_set(error, SD_BUS_ERROR_NOT_SUPPORTED,
                                        "The pool's executor cannot hand running jobs over to a re-executed "
                                        "procpoold");
        if (r < 0)
                return sd_bus_error_set_errnof(error, r,
                                               "Failed to write down the running jobs for the "
                                               "re-exec: %m");
        r = sd_bus_reply_method_return(message, NULL);
        if (r < 0)
                return r;
        /* Returns only if it could not execute the binary; the caller was told it would. */
        (void) manager_reexecute(m, &s);
        return 1;
}

/* Reads the value of pool setting key, of type s ('u' or 's'), into ret. */
static int read_pool_setting(sd_bus_message *message, const char *key, char type, void *ret,
                             sd_bus_error *error) {
        const char signature[2] = { type, 0 };
        int r;

        r = sd_bus_message_enter_container(message, 'v', signature);
        if (r == -ENXIO || r == -EBADMSG)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Pool setting '%s' must be of type '%c'", key, type);
        if (r < 0)
                return r;
        r = sd_bus_message_read_basic(message, type, ret);
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(message);
}

static int method_create_pool(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *path = NULL, *why = NULL;
        PoolExecutorSettings settings = { .kind = PROCPOOL_EXECUTOR_LOCAL };
        Manager *m = userdata;
        Executor *executor = NULL;
        const char *name;
        uint32_t size = 0;
        Pool *p;
        int r;

        r = sd_bus_message_read(message, "s", &name);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(message, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(message, 'e', "sv")) > 0) {
                const char *key;

                r = sd_bus_message_read(message, "s", &key);
                if (r < 0)
                        return r;
                if (strcmp(key, PROCPOOL_POOL_SETTING_SIZE) == 0) {
                        r = read_pool_setting(message, key, 'u', &size, error);
                        if (r < 0)
                                return r;
                        if (size == 0)
                                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
                                                        "Pool setting '" PROCPOOL_POOL_SETTING_SIZE
                                                        "' must be at least 1");
                } else if (strcmp(key, PROCPOOL_POOL_SETTING_EXECUTOR) == 0)
                        r = read_pool_setting(message, key, 's', &settings.kind, error);
                else if (strcmp(key, PROCPOOL_POOL_SETTING_SLURM_CONF) == 0)
                        r = read_pool_setting(message, key, 's', &settings.slurm_conf, error);
                else if (strcmp(key, PROCPOOL_POOL_SETTING_PARTITION) == 0)
                        r = read_pool_setting(message, key, 's', &settings.partition, error);
                else
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Unknown pool setting '%.64s%s'", key,
                                                 strlen(key) > 64 ? "..." : "");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(message);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(message);
        if (r < 0)
                return r;

        r = bus_check_manage(m, message, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* polkit is asked; the request comes again */
        if (!pool_name_is_valid(name))
                return sd_bus_error_setf(
                        error, SD_BUS_ERROR_INVALID_ARGS,
                        "'%.64s%s' is not a pool name (1 to %u of A-Z, a-z, 0-9, '_' and '-')", name,
                        strlen(name) > 64 ? "..." : "", POOL_NAME_MAX);
        r = manager_check_pool_settings(&settings, &why);
        if (r < 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, why ?: "Invalid pool settings");
        if (m->shutting_down)
                return sd_bus_error_set(error, PROCPOOL_ERROR_SHUTTING_DOWN,
                                        "procpoold is shutting down and creates no pools");
        if (manager_find_pool(m, name))
                return sd_bus_error_setf(error, PROCPOOL_ERROR_POOL_EXISTS, "Pool '%s' exists already", name);
        /* A Slurm pool of no given size asks the cluster (sinfo) here, for a few seconds at most. */
        r = manager_pool_executor_new(m, &settings, &size, &executor, &why);
        if (r < 0)
                return sd_bus_error_setf(error, PROCPOOL_ERROR_EXECUTOR_UNAVAILABLE, "Pool '%s': %s", name,
                                         why ?: strerror(-r));
        r = manager_add_pool(m, name, size, &settings, executor, &p);
        if (r == -EEXIST)
                return sd_bus_error_setf(error, PROCPOOL_ERROR_POOL_EXISTS, "Pool '%s' exists already", name);
        if (r == -E2BIG)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "procpoold holds %u pools already, the most it takes",
                                         MANAGER_POOLS_MAX);
        if (r < 0)
                return r;
        /* Stored before it is answered, as a Submit is. */
        pool_save(p);
        r = registry_flush(m->registry);
        if (r < 0) {
                manager_remove_pool(m, p);
                (void) registry_flush(m->registry);
                return sd_bus_error_set_errnof(error, r, "Failed to store pool '%s' in the state dir: %m",
                                               name);
        }
        pool_bus_emit_added(m, p);
        log_info("pool %s created with %u slots, executor %s", name, pool_get_size(p), settings.kind);
        path = pool_path(p);
        if (!path)
                return -ENOMEM;
        return sd_bus_reply_method_return(message, "o", path);
}

static int method_remove_pool(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *name;
        Pool *p;
        int r;

        r = sd_bus_message_read(message, "s", &name);
        if (r < 0)
                return r;
        r = bus_check_manage(m, message, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* polkit is asked; the request comes again */
        p = manager_find_pool(m, name);
        if (!p)
                return sd_bus_error_setf(error, PROCPOOL_ERROR_NO_SUCH_POOL, "There is no pool '%s'", name);
        if (p == m->pool)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
                                        "The pool '" PROCPOOL_DEFAULT_POOL "' always exists");
        if (pool_has_unfinished(p))
                return sd_bus_error_setf(error, PROCPOOL_ERROR_POOL_BUSY,
                                         "Pool '%s' has %u jobs running and %u queued; cancel them or wait "
                                         "for them to end",
                                         name, pool_get_running(p), pool_get_queued(p));
        pool_bus_emit_removed(m, p);
        log_info("pool %s removed", name);
        manager_remove_pool(m, p);
        r = registry_flush(m->registry);
        if (r < 0)
                log_warning_errno(r, "Failed to store the removal of pool %s: %m; it is tried again", name);
        return sd_bus_reply_method_return(message, NULL);
}

static int method_list_pools(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(so)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n_pools; i++) {
                _cleanup_free_ char *path = pool_path(m->pools[i].pool);
                if (!path)
                        return -ENOMEM;
                r = sd_bus_message_append(reply, "(so)", pool_get_name(m->pools[i].pool), path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int property_get_pool_size(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        return sd_bus_message_append(reply, "u", pool_get_size(m->pool));
}

static int send_pool_size_changed(sd_bus *bus, void *userdata) {
        return sd_bus_emit_properties_changed(bus, PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE,
                                              "PoolSize", NULL);
}

static int property_set_pool_size(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *value, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        uint32_t n;
        int r;

        r = sd_bus_message_read(value, "u", &n);
        if (r < 0)
                return r;
        r = bus_pool_set_size(m, m->pool, value, n, error);
        if (r < 0)
                return r;
        (void) manager_emit(m, send_pool_size_changed, NULL);
        return 1;
}

static int property_get_running(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        return sd_bus_message_append(reply, "u", manager_running(m));
}

static int property_get_queued(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        return sd_bus_message_append(reply, "u", manager_queued(m));
}

static int property_get_max_queued(sd_bus *bus, const char *path, const char *interface, const char *property,
                                   sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        return sd_bus_message_append(reply, "u", pool_get_config(m->pool)->max_queued);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PROCPOOL_VERSION);
}

static int property_get_job_cgroups(sd_bus *bus, const char *path, const char *interface,
                                    const char *property, sd_bus_message *reply, void *userdata,
                                    sd_bus_error *error) {
        Manager *m = userdata;
        return sd_bus_message_append(reply, "b", (int) m->job_cgroups);
}

/* Signals go to a direct connection only once it asked. On the bus they go to every match rule, unless
 * --bus-signals=subscribed: then only while a bus client is subscribed. */
static int method_subscribe(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        sd_bus *bus = sd_bus_message_get_bus(message);
        bool b = sd_bus_message_is_method_call(message, NULL, "Subscribe") > 0;
        int r;

        if (bus != m->bus)
                (void) private_socket_subscribe(m->private, bus, b);
        else {
                r = manager_subscribe(m, message, b);
                if (r < 0)
                        return r;
        }
        return sd_bus_reply_method_return(message, NULL);
}

const sd_bus_vtable supervisor_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_WRITABLE_PROPERTY("PoolSize", "u", property_get_pool_size, property_set_pool_size, 0,
                                 SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE | SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("Running", "u", property_get_running, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Queued", "u", property_get_queued, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("MaxQueued", "u", property_get_max_queued, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("JobCgroups", "b", property_get_job_cgroups, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("Submit", SD_BUS_ARGS("as", argv, "a{sv}", options), SD_BUS_RESULT("o", job),
                                method_submit, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SubmitMany", SD_BUS_ARGS("aas", argvs, "a{sv}", options),
                                SD_BUS_RESULT("ao", jobs), method_submit_many, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Call", SD_BUS_ARGS("as", argv, "a{sv}", options),
                                SD_BUS_RESULT("i", returncode), method_call, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Communicate", SD_BUS_ARGS("as", argv, "ay", input, "a{sv}", options),
                                SD_BUS_RESULT("i", returncode, "ay", stdout, "ay", stderr),
                                method_communicate, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetJob", SD_BUS_ARGS("t", id), SD_BUS_RESULT("o", job), method_get_job,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListJobs", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(tosi)", jobs), method_list_jobs,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reexecute", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_reexecute,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CreatePool", SD_BUS_ARGS("s", name, "a{sv}", settings),
                                SD_BUS_RESULT("o", pool), method_create_pool, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemovePool", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT, method_remove_pool,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListPools", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(so)", pools), method_list_pools,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Subscribe", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_subscribe,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Unsubscribe", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_subscribe,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("JobFinished", SD_BUS_ARGS("t", id, "o", job, "s", state, "i", returncode),
                                0),
        SD_BUS_VTABLE_END,
};

int supervisor_bus_add(Manager *m, sd_bus *bus) {
        int r;

        r = sd_bus_add_object_vtable(bus, NULL, PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE,
                                     supervisor_vtable, m);
        if (r < 0)
                return r;
        return sd_bus_add_object_manager(bus, NULL, PROCPOOL_OBJECT_PATH);
}

typedef struct JobFinishedSignal {
        Manager *m;
        const JobRecord *record;
        const char *path;
} JobFinishedSignal;

static int build_job_finished(sd_bus *bus, void *userdata, sd_bus_message **ret) {
        JobFinishedSignal *x = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        int r;

        r = sd_bus_message_new_signal(bus, &s, PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE,
                                      "JobFinished");
        if (r < 0)
                return r;
        /* Every listener hears it: on the system instance the return code is private, and reads 0. */
        r = sd_bus_message_append(s, "tosi", x->record->id, x->path, job_state_to_string(x->record->state),
                                  (int32_t) (x->m->config.system_policy ? 0 : x->record->returncode));
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

void supervisor_emit_job_finished(Manager *m, Job *j) {
        _cleanup_free_ char *path = job_path(j);
        JobFinishedSignal x = { .m = m, .record = job_get_record(j), .path = path };

        if (!path)
                return;
        (void) manager_queue_signal(m, build_job_finished, &x);
}

int supervisor_bus_filter(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        const char *interface, *property;
        int r;

        /* Only Set of PoolSize and of a pool's Size: the rest of the properties are read-only and
         * public. */
        if (!sd_bus_message_is_method_call(message, "org.freedesktop.DBus.Properties", "Set"))
                return 0;
        r = sd_bus_message_read(message, "ss", &interface, &property);
        (void) sd_bus_message_rewind(message, true);
        if (r < 0)
                return 0;
        if (!(strcmp(sd_bus_message_get_path(message) ?: "", PROCPOOL_OBJECT_PATH) == 0 &&
              strcmp(interface, PROCPOOL_MANAGER_INTERFACE) == 0 && strcmp(property, "PoolSize") == 0) &&
            !(strcmp(interface, PROCPOOL_POOL_INTERFACE) == 0 && strcmp(property, "Size") == 0))
                return 0;
        r = authz_check(m->authz, message, AUTHZ_MANAGE, error);
        if (r == 0)
                return 1; /* held until polkit answers */
        return r < 0 ? r : 0;
}

static int send_counts_changed(sd_bus *bus, void *userdata) {
        return sd_bus_emit_properties_changed_strv(bus, PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE,
                                                   userdata);
}

void supervisor_emit_counts_changed(Manager *m) {
        const char *names[3];
        size_t n = 0;

        unsigned running = manager_running(m), queued = manager_queued(m);

        if (running != m->last_running)
                names[n++] = "Running";
        if (queued != m->last_queued)
                names[n++] = "Queued";
        names[n] = NULL;
        m->last_running = running;
        m->last_queued = queued;
        if (n > 0)
                (void) manager_emit(m, send_counts_changed, names);
        pool_bus_emit_counts_changed(m);
}
