/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's context: the bus, the event loop, the registry, the pool and the clients. */
#include <assert.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <search.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "cgroup.h"
#include "config.h"
#include "executor-local.h"
#include "executor-slurm.h"
#include "executor-unavailable.h"
#include "job-dbus.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "pool-dbus.h"
#include "private.h"
#include "procpool-api.h"
#include "reply-bound.h"
#include "supervisor-dbus.h"

#define STATUS_INTERVAL_USEC (100ULL * USEC_PER_MSEC)
/* Running and Queued change at most this often on the bus. */
#define COUNTS_INTERVAL_USEC (20ULL * USEC_PER_MSEC)

struct Client {
        Manager *manager;
        char *name; /* unique bus name */
        uid_t uid;
};

uint64_t manager_stream_max(BusKind kind) {
        /* A bus given by address may be a dbus-daemon with its built-in 32 MiB message limit (as
         * GTestDBus's is); a reply above it gets the daemon disconnected, so only the session bus,
         * whose configuration allows more, gets the larger cap. */
        return kind == BUS_USER ? MANAGER_STREAM_MAX_SESSION : MANAGER_STREAM_MAX_SYSTEM;
}

uint64_t manager_held_max(BusKind kind) {
        /* As for streams: only the session bus is known to take messages above 32 MiB. */
        return kind == BUS_USER ? MANAGER_HELD_MAX_SESSION : MANAGER_HELD_MAX_SYSTEM;
}

uid_t client_uid(const Client *c) {
        return c->uid;
}

static int client_compare(const void *a, const void *b) {
        return strcmp(((const Client *) a)->name, ((const Client *) b)->name);
}

static Client *client_free(Client *c) {
        if (!c)
                return NULL;
        free(c->name);
        free(c);
        return NULL;
}

static int forget_client(Job *j, void *userdata) {
        Client *c = userdata;
        JobBus *jb = job_bus(j);

        job_bus_drop_waiters(j, c->name);
        if (jb->client != c)
                return 0;
        jb->client = NULL;
        if (job_get_record(j)->spec.cancel_on_disconnect && !job_state_is_final(job_get_record(j)->state))
                (void) job_cancel(j);
        return 0;
}

/* The connection left the bus: nobody hears replies on it any more, and its jobs that asked for it
 * are cancelled. */
static void client_gone(Client *c) {
        Manager *m = c->manager;

        (void) tdelete(c, &m->clients, client_compare);
        (void) registry_foreach(m->registry, forget_client, c);
        client_free(c);
}

void manager_client_left(Manager *m, const char *name) {
        Client key, **found;

        /* What it waits for polkit for is dropped first: nothing it asked for may start now. */
        authz_name_gone(m->authz, name);
        reply_bound_forget(m->reply_bound, name);
        key.name = (char *) name;
        found = tfind(&key, &m->clients, client_compare);
        if (found)
                client_gone(*found);
}

/* One match for every connection that leaves the bus: the bus sends NameOwnerChanged after
 * anything the connection sent, so a client is never missed, and no per-client rule is needed. */
static int match_name_owner_changed(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(message, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (name[0] != ':' || new_owner[0] != '\0')
                return 0;
        manager_client_left(m, name);
        return 0;
}

/* Runs before sd-bus dispatches any message. A request that comes again with polkit's answer is marked
 * (authz.c). On the system instance, the property reads and the property set whose answer depends on
 * polkit's are held until it answered: sd-bus answers those in one go, its getters and setters cannot
 * wait. */
static int filter_message(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        sd_bus *bus = sd_bus_message_get_bus(message);
        int r;

        /* Whatever this message brings is answered after the signals already made (manager.h). */
        if (m->dispatch_bus != bus) {
                sd_bus_unref(m->dispatch_bus);
                m->dispatch_bus = sd_bus_ref(bus);
        }
        m->queue_in_dispatch = false;
        if (m->n_signals > 0)
                manager_flush_signals_for(m, bus);
        authz_dispatching(m->authz, message);
        if (!m->config.system_policy || !sd_bus_message_is_method_call(message, NULL, NULL))
                return 0;
        r = supervisor_bus_filter(m, message, error);
        if (r != 0)
                return r;
        return job_bus_filter(m, message, error);
}

const char *manager_message_sender(sd_bus_message *message) {
        const char *sender = sd_bus_message_get_sender(message), *name = NULL;
        sd_bus *bus;

        if (sender)
                return sender;
        /* A direct connection's messages have no sender: the connection is the client. */
        bus = sd_bus_message_get_bus(message);
        if (bus && sd_bus_is_server(bus) > 0 && sd_bus_get_description(bus, &name) >= 0)
                return name;
        return NULL;
}

int manager_get_client(Manager *m, sd_bus_message *message, Client **ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const char *sender = manager_message_sender(message);
        Client key = { .name = (char *) sender }, *c, **found;
        uid_t uid;
        int r;

        if (!sender)
                return -EPERM;
        found = tfind(&key, &m->clients, client_compare);
        if (found) {
                *ret = *found;
                return 0;
        }
        /* A direct connection's client was made when it connected; one that is not there has left. */
        if (sender[0] != ':')
                return -EPERM;

        r = sd_bus_query_sender_creds(message, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return r;

        c = calloc(1, sizeof(Client));
        if (!c)
                return -ENOMEM;
        c->manager = m;
        c->uid = uid;
        c->name = strdup(sender);
        if (!c->name || !tsearch(c, &m->clients, client_compare)) {
                client_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

int manager_add_client(Manager *m, const char *name, uid_t uid) {
        Client key = { .name = (char *) name }, *c;

        if (tfind(&key, &m->clients, client_compare))
                return -EEXIST;
        c = calloc(1, sizeof(Client));
        if (!c)
                return -ENOMEM;
        c->manager = m;
        c->uid = uid;
        c->name = strdup(name);
        if (!c->name || !tsearch(c, &m->clients, client_compare)) {
                client_free(c);
                return -ENOMEM;
        }
        return 0;
}

/* A client the last image of the daemon knew, taken over by name after a re-exec; uid is its jobs' owner. */
static Client *client_adopt(Manager *m, const char *name, uid_t uid) {
        Client key = { .name = (char *) name }, *c, **found;

        found = tfind(&key, &m->clients, client_compare);
        if (found)
                return *found;
        c = calloc(1, sizeof(Client));
        if (!c)
                return NULL;
        c->manager = m;
        c->uid = uid;
        c->name = strdup(name);
        if (!c->name || !tsearch(c, &m->clients, client_compare))
                return client_free(c);
        return c;
}

typedef struct ClientList {
        Client **clients;
        size_t n;
} ClientList;

static int collect_client(Job *j, void *userdata) {
        ClientList *l = userdata;
        Client *c = job_bus(j)->client;

        if (!c)
                return 0;
        for (size_t i = 0; i < l->n; i++)
                if (l->clients[i] == c)
                        return 0;
        l->clients[l->n++] = c;
        return 0;
}

/* After a re-exec: a client that left the bus while no image of the daemon watched it is gone now, and
 * its jobs that asked for it are cancelled. The NameOwnerChanged match covers every later departure. */
static void check_clients(Manager *m) {
        ClientList l = { .clients = calloc(registry_get_n_jobs(m->registry) + 1, sizeof(Client *)) };

        if (!l.clients)
                return (void) log_oom();
        (void) registry_foreach(m->registry, collect_client, &l);
        for (size_t i = 0; i < l.n; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                int has = 1, r;

                r = sd_bus_call_method(m->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner", &error, &reply, "s",
                                       l.clients[i]->name);
                if (r >= 0)
                        r = sd_bus_message_read(reply, "b", &has);
                if (r < 0)
                        log_warning_errno(r, "Failed to ask whether %s is still on the bus: %m, ignoring",
                                          l.clients[i]->name);
                else if (!has)
                        client_gone(l.clients[i]);
        }
        free(l.clients);
}

static int track_subscriber(Manager *m, const char *name) {
        int r;

        if (!m->subscribed) {
                r = sd_bus_track_new(m->bus, &m->subscribed, NULL, NULL);
                if (r < 0)
                        return r;
                /* A client that subscribed twice is subscribed until it unsubscribed twice, as on systemd. */
                r = sd_bus_track_set_recursive(m->subscribed, true);
                if (r < 0)
                        return r;
        }
        return sd_bus_track_add_name(m->subscribed, name);
}

/* A subscriber a re-exec handed over may have left meanwhile, unseen: it is subscribed no more. */
static void check_subscribers(Manager *m) {
        _cleanup_strv_free_ char **names = NULL;
        size_t n = 0;

        if (sd_bus_track_count(m->subscribed) == 0)
                return;
        names = calloc(sd_bus_track_count(m->subscribed) + 1, sizeof(char *));
        if (!names)
                return (void) log_oom();
        for (const char *s = sd_bus_track_first(m->subscribed); s; s = sd_bus_track_next(m->subscribed)) {
                names[n] = strdup(s);
                if (!names[n])
                        return (void) log_oom();
                n++;
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                int has = 1, r;

                r = sd_bus_call_method(m->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner", &error, &reply, "s", names[i]);
                if (r >= 0)
                        r = sd_bus_message_read(reply, "b", &has);
                if (r < 0)
                        log_warning_errno(r, "Failed to ask whether %s is still on the bus: %m, ignoring",
                                          names[i]);
                else if (!has)
                        while (sd_bus_track_remove_name(m->subscribed, names[i]) > 0)
                                ;
        }
}

/* ---- logging --------------------------------------------------------------------------------- */

static char *argv_join(char **argv) {
        size_t len = 1;
        char *s, *p;

        for (char **a = argv; *a; a++)
                len += strlen(*a) + 1;
        s = p = malloc(len);
        if (!s)
                return NULL;
        for (char **a = argv; *a; a++)
                p = stpcpy(stpcpy(p, *a), a[1] ? " " : "");
        *p = '\0';
        return s;
}

static void log_job(Manager *m, Job *j, const char *what) {
        const JobRecord *r = job_get_record(j);
        _cleanup_free_ char *cmd = argv_join(r->spec.argv);
        const char *state = job_state_to_string(r->state);

        if (m->under_systemd)
                (void) sd_journal_send("MESSAGE=Job %" PRIu64 " %s: %s (%s, %d)", r->id, what, cmd ?: "",
                                       state, r->returncode, "PRIORITY=6", "PROCPOOL_JOB_ID=%" PRIu64, r->id,
                                       "PROCPOOL_PID=%d", (int) r->main_pid, "PROCPOOL_STATE=%s", state,
                                       "PROCPOOL_RETURNCODE=%d", r->returncode, "PROCPOOL_ARGV=%s", cmd ?: "",
                                       NULL);
        else
                log_info("job %" PRIu64 " %s: %s (%s, %d)", r->id, what, cmd ?: "", state, r->returncode);
}

/* ---- what the registry reports ------------------------------------------------------------------ */

static void on_job_added(Job *j, void *userdata) {
        job_bus_emit_added(userdata, j);
}

static void on_job_changed(Job *j, JobChange what, void *userdata) {
        Manager *m = userdata;

        job_bus_emit_changed(m, j, what);
        if ((what & JOB_CHANGE_STATE) && job_get_record(j)->state == JOB_RUNNING)
                log_job(m, j, "started");
        if (what & JOB_CHANGE_OUTPUT)
                /* The spool fills up (it leaves room for the store) or the disk fails: say where. */
                log_warning("Failed to write the output of job %" PRIu64 " to the spool in %s (full, or "
                            "failing); capture of that stream stopped, OutputIncomplete is set",
                            job_get_record(j)->id, m->state_dir);
}

static int interrupt_waiters(Job *j, void *userdata) {
        if (!job_state_is_final(job_get_record(j)->state))
                job_bus_interrupt_waiters(j);
        return 0;
}

/* The stop is done once nothing runs: whoever still waits on a job that stays queued for the next start
 * hears why no answer came, while the bus is still there (sd-bus closes it when the loop exits). */
static void manager_check_stopped(Manager *m) {
        if (!m->shutting_down)
                return;
        for (size_t i = 0; i < m->n_pools; i++)
                if (pool_is_active(m->pools[i].pool))
                        return;
        (void) registry_foreach(m->registry, interrupt_waiters, NULL);
        (void) sd_event_exit(m->event, 0);
}

static void on_job_finished(Job *j, void *userdata) {
        Manager *m = userdata;

        job_bus_reply_all(j);
        supervisor_emit_job_finished(m, j);
        log_job(m, j, "finished");
        manager_check_stopped(m);
}

static void on_job_removed(Job *j, void *userdata) {
        Manager *m = userdata;

        if (!m->freeing)
                job_bus_emit_removed(m, j);
        job_bus_free(job_bus(j));
}

static void on_counts_changed(Pool *p, void *userdata) {
        Manager *m = userdata;

        /* Coalesced in time, not per loop iteration: in bulk, every iteration changes them. */
        if (sd_event_source_get_enabled(m->counts_source, NULL) > 0)
                return;
        (void) sd_event_source_set_time_relative(m->counts_source, COUNTS_INTERVAL_USEC);
        (void) sd_event_source_set_enabled(m->counts_source, SD_EVENT_ONESHOT);
}

static void on_idle(void *userdata) {
        Manager *m = userdata;

        if (m->idle_source) {
                (void) sd_event_source_set_time_relative(m->idle_source, m->config.exit_on_idle_usec);
                (void) sd_event_source_set_enabled(m->idle_source, SD_EVENT_ONESHOT);
        }
}

static void on_store_failed(int error, const char *message, void *userdata) {
        Manager *m = userdata;
        log_error_errno(error, "Failed to write the job store in %s: %s; will try again", m->state_dir,
                        message);
}

static const RegistryCallbacks registry_callbacks = {
        .job_added = on_job_added,
        .job_changed = on_job_changed,
        .job_finished = on_job_finished,
        .job_removed = on_job_removed,
        .counts_changed = on_counts_changed,
        .idle = on_idle,
        .store_failed = on_store_failed,
};

/* ---- event sources ----------------------------------------------------------------------------- */

static int on_signals(sd_event_source *s, void *userdata);

static int on_counts(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        supervisor_emit_counts_changed(m);
        if (m->status_source && sd_event_source_get_enabled(m->status_source, NULL) == 0)
                (void) sd_event_source_set_enabled(m->status_source, SD_EVENT_ONESHOT);
        return 0;
}

/* Said in every STATUS= while it holds: the log line at start scrolls away, systemctl status stays. */
#define CGROUPS_UNUSABLE_NOTE "; Delegate=yes but per-job cgroups unusable (see the log)"

static void notify_status(Manager *m) {
        (void) sd_notifyf(0, "STATUS=%u running, %u queued, %" PRIu64 " finished, pool size %u%s%s",
                          manager_running(m), manager_queued(m), registry_get_n_finished_total(m->registry),
                          pool_get_size(m->pool), m->shutting_down ? ", stopping" : "",
                          m->cgroups_unusable ? CGROUPS_UNUSABLE_NOTE : "");
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        notify_status(m);
        /* The next update waits at least an interval: STATUS= is rate-limited. */
        (void) sd_event_source_set_time_relative(s, STATUS_INTERVAL_USEC);
        return 0;
}

static int on_idle_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        if (m->shutting_down || !registry_is_idle(m->registry, true))
                return 0;
        log_info("idle for %" PRIu64 " ms, exiting", m->config.exit_on_idle_usec / 1000);
        /* Give the name back first, so the next caller activates a new instance instead of
         * talking to one that is leaving. */
        (void) sd_bus_release_name(m->bus, PROCPOOL_BUS_NAME);
        (void) sd_notify(0, "STOPPING=1\nSTATUS=Idle, exiting");
        return sd_event_exit(m->event, 0);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        manager_begin_shutdown(userdata);
        return 0;
}

void manager_begin_shutdown(Manager *m) {
        if (m->shutting_down)
                return;
        m->shutting_down = true;
        (void) sd_notify(0, "STOPPING=1");
        /* With a store, queued jobs wait for the next start; without one they would be lost. */
        for (size_t i = 0; i < m->n_pools; i++)
                pool_shutdown(m->pools[i].pool, !m->config.ephemeral);
        notify_status(m);
        manager_check_stopped(m);
}

static void remove_private_dir(const char *path);

/* ---- re-executing --------------------------------------------------------------------------------- */

static int serialize_client(Job *j, void *userdata) {
        JobBus *jb = job_bus(j);

        if (!jb->client || job_state_is_final(job_get_record(j)->state))
                return 0;
        /* A direct connection ends with this image: its jobs are tied to no caller in the next. */
        if (jb->client->name[0] != ':')
                return 0;
        return serialize_itemf(userdata, "client", "%" PRIu64 " %s", job_get_record(j)->id, jb->client->name);
}

int manager_serialize(Manager *m, Serializer *s) {
        int fd, r;

        r = serializer_init(s);
        if (r < 0)
                return r;
        /* Who submitted what: a job that is cancelled when its caller leaves stays tied to it. */
        r = registry_foreach(m->registry, serialize_client, s);
        if (r < 0)
                return r;
        /* Who subscribed, once per Subscribe(): signals go on reaching them. */
        for (const char *n = sd_bus_track_first(m->subscribed); n; n = sd_bus_track_next(m->subscribed))
                for (unsigned i = sd_bus_track_count_name(m->subscribed, n); i > 0; i--) {
                        r = serialize_item(s, "subscriber", n);
                        if (r < 0)
                                return r;
                }
        /* The private socket goes on listening: a peer that connects meanwhile waits in its backlog. */
        if (m->private) {
                r = serialize_fd(s, "private-socket", private_socket_get_fd(m->private), false);
                if (r < 0)
                        return r;
        }
        r = registry_serialize(m->registry, s);
        if (r < 0)
                return r;
        return serializer_finish(s, &fd);
}

/* Reads back what manager_serialize() wrote of the bus layer; the registry reads the rest. */
static int deserialize_item(const SerializedItem *item, void *userdata) {
        Manager *m = userdata;
        const char *name;
        char *end;
        uint64_t id;
        Client *c;
        Job *j;

        if (strcmp(item->key, "private-socket") == 0) {
                closep(&m->private_inherited_fd);
                return deserializer_take_fd(m->deserializer, item->value, &m->private_inherited_fd);
        }
        if (strcmp(item->key, "subscriber") == 0) {
                if (item->value[0] != ':')
                        return -EBADMSG;
                if (m->config.bus_signals == BUS_SIGNALS_ALWAYS)
                        return 0;
                return track_subscriber(m, item->value);
        }
        if (strcmp(item->key, "client") != 0)
                return 0;
        errno = 0;
        id = strtoull(item->value, &end, 10);
        if (errno != 0 || *end != ' ' || end[1] != ':')
                return -EBADMSG;
        name = end + 1;
        j = registry_find(m->registry, id);
        if (!j || job_state_is_final(job_get_record(j)->state))
                return 0;
        c = client_adopt(m, name, job_get_record(j)->spec.owner);
        if (!c)
                return -ENOMEM;
        job_bus(j)->client = c;
        return 0;
}

/* Takes over what the last image handed over: running jobs run on, queued ones keep their fds and input,
 * and jobs stay tied to their callers. What cannot be taken over ends as after a restart. */
static void take_over(Manager *m) {
        Deserializer d;
        int r;

        r = deserializer_open(TAKE_FD(m->config.deserialize_fd), &d);
        if (r < 0) {
                log_warning_errno(r, "Failed to read what procpoold handed over when it re-executed: %m; the "
                                     "jobs it ran end failed");
                return;
        }
        m->deserializer = &d;
        r = registry_deserialize(m->registry, &d, deserialize_item, m);
        m->deserializer = NULL;
        if (r < 0)
                log_warning_errno(r, "Failed to take over every job procpoold ran before it re-executed: %m; "
                                     "those end failed");
        deserializer_done(&d);
        m->took_over = true;
        log_info("re-executed: %u jobs running, %u queued", manager_running(m), manager_queued(m));
}

/* The binary to run again: the one at the path the daemon was started from, which an upgrade may have
 * replaced (the running one then reads "... (deleted)"); else the running one. */
static char *reexec_path(void) {
        static const char deleted[] = " (deleted)";
        char buf[PATH_MAX];
        ssize_t k = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
        size_t n;

        if (k > 0) {
                buf[k] = '\0';
                n = (size_t) k;
                if (n > strlen(deleted) && strcmp(buf + n - strlen(deleted), deleted) == 0) {
                        buf[n - strlen(deleted)] = '\0';
                        if (buf[0] == '/' && access(buf, X_OK) == 0)
                                return strdup(buf);
                }
        }
        return strdup("/proc/self/exe");
}

/* The command line again, with --deserialize=FD in place of one the last re-exec added. */
static char **reexec_argv(Manager *m, int fd) {
        size_t n = 0, k = 0;
        char **argv;

        for (char **a = m->config.argv; a && *a; a++)
                n++;
        argv = calloc(n + 2, sizeof(char *));
        if (!argv)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (i > 0 && strncmp(m->config.argv[i], "--deserialize=", strlen("--deserialize=")) == 0)
                        continue;
                argv[k] = strdup(m->config.argv[i]);
                if (!argv[k++]) {
                        strv_free(argv);
                        return NULL;
                }
        }
        if (asprintf(&argv[k], "--deserialize=%d", fd) < 0) {
                argv[k] = NULL;
                strv_free(argv);
                return NULL;
        }
        return argv;
}

static int interrupt_waiters_reexec(Job *j, void *userdata) {
        if (!job_state_is_final(job_get_record(j)->state))
                job_bus_interrupt_waiters_reexec(j);
        return 0;
}

int manager_reexecute(Manager *m, Serializer *s) {
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *path = NULL;
        struct timespec ts;
        int r;

        assert(s->fd >= 0 && !m->config.ephemeral);

        path = reexec_path();
        argv = reexec_argv(m, s->fd);
        if (!path || !argv)
                return log_oom();

        /* Whoever waits hears that the job goes on, and waits again once the name is back. */
        (void) registry_foreach(m->registry, interrupt_waiters_reexec, NULL);
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        (void) sd_notifyf(0, "RELOADING=1\nSTATUS=Re-executing\nMONOTONIC_USEC=%" PRIu64,
                          (uint64_t) (ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / NSEC_PER_USEC));
        log_info("re-executing %s with %u jobs running", path, manager_running(m));
        (void) manager_flush(m);

        r = serializer_set_cloexec(s, false);
        if (r >= 0) {
                execv(path, argv);
                r = -errno;
        }
        /* Still here: nothing was handed over, and the daemon carries on. Waiters that went to wait for
         * the name to come back find it again. */
        (void) serializer_set_cloexec(s, true);
        log_error_errno(r, "Failed to re-execute %s: %m; carrying on as before", path);
        (void) sd_bus_release_name(m->bus, PROCPOOL_BUS_NAME);
        (void) sd_bus_request_name(m->bus, PROCPOOL_BUS_NAME, 0);
        (void) sd_notify(0, "READY=1");
        notify_status(m);
        return r;
}

/* ---- life cycle -------------------------------------------------------------------------------- */

int manager_new(const ManagerConfig *config, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof(Manager));
        if (!m)
                return -ENOMEM;
        m->state_lock_fd = -EBADF;
        m->private_inherited_fd = -EBADF;
        m->config = *config;
        /* Started by systemd, with a journal to take the structured job lines. */
        m->under_systemd = (getenv("INVOCATION_ID") || getenv("JOURNAL_STREAM")) &&
                           access("/run/systemd/journal/socket", F_OK) == 0;

        r = sd_event_new(&m->event);
        if (r < 0)
                return r;
        /* Fed from the loop while WATCHDOG_USEC is set: a stuck loop stops feeding it. */
        (void) sd_event_set_watchdog(m->event, true);
        r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
        if (r < 0)
                return r;
        r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(m);
        return 0;
}

static void free_client_node(void *c) {
        client_free(c);
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        m->freeing = true;
        /* Direct connections first, while what they refer to is there. */
        m->private = private_socket_free(m->private);
        closep(&m->private_inherited_fd);
        /* Jobs first, while their pools and executors still exist. */
        m->registry = registry_free(m->registry);
        for (size_t i = 0; i < m->n_pools; i++) {
                pool_free(m->pools[i].pool);
                executor_free(m->pools[i].executor);
        }
        m->pools = mfree(m->pools);
        m->n_pools = 0;
        m->pool = NULL;
        m->executor = executor_free(m->executor);
        m->authz = authz_free(m->authz);
        m->filter_slot = sd_bus_slot_unref(m->filter_slot);
        tdestroy(m->clients, free_client_node);
        sd_bus_track_unref(m->subscribed);
        for (size_t i = 0; i < m->n_signals; i++)
                sd_bus_message_unref(m->signals[i]);
        free(m->signals);
        sd_event_source_disable_unref(m->signal_source);
        sd_bus_unref(m->dispatch_bus);
        sd_event_source_disable_unref(m->counts_source);
        sd_event_source_disable_unref(m->status_source);
        sd_event_source_disable_unref(m->idle_source);
        /* What is still queued was given up by manager_flush(), or nothing was ever sent. */
        sd_bus_close_unref(m->bus);
        reply_bound_free(m->reply_bound);
        sd_event_unref(m->event);
        if (m->config.ephemeral && m->state_dir)
                remove_private_dir(m->state_dir);
        closep(&m->state_lock_fd);
        closep(&m->config.deserialize_fd);
        free(m->state_dir);
        free(m);
        return NULL;
}

/* ---- the state dir ------------------------------------------------------------------------------- */

int manager_default_state_dir(bool system, char **ret) {
        const char *e = getenv("STATE_DIRECTORY"), *home;

        /* systemd's StateDirectory=: the first of its colon-separated list is ours. */
        if (e && e[0] == '/') {
                *ret = strndup(e, strcspn(e, ":"));
                return *ret ? 0 : -ENOMEM;
        }
        if (system) {
                *ret = strdup("/var/lib/procpool");
                return *ret ? 0 : -ENOMEM;
        }
        e = getenv("XDG_STATE_HOME");
        if (e && e[0] == '/')
                return asprintf(ret, "%s/procpool", e) < 0 ? -ENOMEM : 0;
        home = getenv("HOME");
        if (!home || home[0] != '/')
                return -ENXIO;
        return asprintf(ret, "%s/.local/state/procpool", home) < 0 ? -ENOMEM : 0;
}

/* Makes path and its missing parents; the last one 0700, the parents 0755 as a home's dirs are. */
static int mkdir_parents(const char *path) {
        _cleanup_free_ char *p = strdup(path);
        char *slash;

        if (!p)
                return -ENOMEM;
        for (slash = strchr(p + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
                *slash = '\0';
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *slash = '/';
        }
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* Removes the private spool dir of an ephemeral daemon: flat, of the daemon's own making, its lock file
 * included (a dir of mkdtemp()'s making is nobody else's to lock). */
static void remove_private_dir(const char *path) {
        _cleanup_free_ char *output = NULL, *lock = NULL;

        if (asprintf(&output, "%s/output", path) >= 0) {
                DIR *d = opendir(output);
                if (d) {
                        struct dirent *de;
                        while ((de = readdir(d)))
                                if (de->d_name[0] != '.')
                                        (void) unlinkat(dirfd(d), de->d_name, 0);
                        closedir(d);
                }
                (void) rmdir(output);
        }
        if (asprintf(&lock, "%s/lock", path) >= 0)
                (void) unlink(lock);
        (void) rmdir(path);
}

/* The state dir: made if missing, locked so that two daemons never share it, and its spool. */
static int setup_state_dir(Manager *m, Spool **ret_spool) {
        _cleanup_free_ char *output = NULL;
        struct stat st;
        int r;

        if (m->config.ephemeral) {
                const char *base = getenv("RUNTIME_DIRECTORY") ?: getenv("XDG_RUNTIME_DIR") ?: "/tmp";
                if (asprintf(&m->state_dir, "%.*s/procpool-XXXXXX", (int) strcspn(base, ":"), base) < 0)
                        return log_oom();
                if (!mkdtemp(m->state_dir)) {
                        r = log_error_errno(errno, "Failed to make a private spool dir %s: %m", m->state_dir);
                        m->state_dir = mfree(m->state_dir);
                        return r;
                }
        } else {
                if (m->config.state_dir)
                        m->state_dir = strdup(m->config.state_dir);
                else {
                        r = manager_default_state_dir(m->config.system_policy, &m->state_dir);
                        if (r == -ENXIO)
                                return log_error_errno(r,
                                                       "No state dir: neither $STATE_DIRECTORY, "
                                                       "$XDG_STATE_HOME nor $HOME is set; pass --state-dir=");
                }
                if (!m->state_dir)
                        return log_oom();
                r = mkdir_parents(m->state_dir);
                if (r < 0)
                        return log_error_errno(r, "Failed to make the state dir %s: %m", m->state_dir);
        }
        if (stat(m->state_dir, &st) < 0)
                return log_error_errno(errno, "Failed to use the state dir %s: %m", m->state_dir);
        if (!S_ISDIR(st.st_mode))
                return log_error_errno(ENOTDIR, "Failed to use the state dir %s: %m", m->state_dir);
        if (access(m->state_dir, R_OK | W_OK | X_OK) < 0)
                return log_error_errno(errno, "Failed to use the state dir %s: %m", m->state_dir);

        {
                _cleanup_free_ char *lock = NULL;
                if (asprintf(&lock, "%s/lock", m->state_dir) < 0)
                        return log_oom();
                m->state_lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (m->state_lock_fd < 0)
                        return log_error_errno(errno, "Failed to use the state dir %s: %s: %m", m->state_dir,
                                               lock);
                if (flock(m->state_lock_fd, LOCK_EX | LOCK_NB) < 0)
                        return log_error_errno(errno, "Failed to lock the state dir %s: %s", m->state_dir,
                                               errno == EWOULDBLOCK ? "another procpoold uses it"
                                                                    : strerror(errno));
        }
        if (asprintf(&output, "%s/output", m->state_dir) < 0)
                return log_oom();
        if (mkdir(output, 0700) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Failed to make the spool dir %s: %m", output);
        r = spool_open(output, ret_spool);
        if (r < 0)
                return log_error_errno(r, "Failed to open the spool dir %s: %m", output);
        return 0;
}

Pool *manager_find_pool(Manager *m, const char *name) {
        for (size_t i = 0; i < m->n_pools; i++)
                if (strcmp(pool_get_name(m->pools[i].pool), name) == 0)
                        return m->pools[i].pool;
        return NULL;
}

static bool partition_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > MANAGER_PARTITION_MAX || s[0] == '-')
                return false;
        for (const char *c = s; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      *c == '_' || *c == '-' || *c == '.'))
                        return false;
        return true;
}

static int why(char **ret_why, const char *format, ...) _printf_(2, 3);
static int why(char **ret_why, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        if (vasprintf(ret_why, format, ap) < 0)
                *ret_why = NULL;
        va_end(ap);
        return -EINVAL;
}

int manager_check_pool_settings(const PoolExecutorSettings *s, char **ret_why) {
        const char *kind = s->kind ?: PROCPOOL_EXECUTOR_LOCAL;
        struct stat st;
        int fd;

        *ret_why = NULL;
        if (strcmp(kind, PROCPOOL_EXECUTOR_LOCAL) == 0) {
                if (s->slurm_conf)
                        return why(ret_why, "Pool setting '" PROCPOOL_POOL_SETTING_SLURM_CONF
                                            "' is for pools of executor '" PROCPOOL_EXECUTOR_SLURM "' only");
                if (s->partition)
                        return why(ret_why, "Pool setting '" PROCPOOL_POOL_SETTING_PARTITION
                                            "' is for pools of executor '" PROCPOOL_EXECUTOR_SLURM "' only");
                return 0;
        }
        if (strcmp(kind, PROCPOOL_EXECUTOR_SLURM) != 0)
                return why(ret_why,
                           "Unknown executor '%.64s%s' in pool setting '" PROCPOOL_POOL_SETTING_EXECUTOR
                           "' (" PROCPOOL_EXECUTOR_LOCAL " or " PROCPOOL_EXECUTOR_SLURM ")",
                           kind, strlen(kind) > 64 ? "..." : "");
        if (s->slurm_conf) {
                if (s->slurm_conf[0] != '/' || strlen(s->slurm_conf) >= PATH_MAX)
                        return why(ret_why,
                                   "Pool setting '" PROCPOOL_POOL_SETTING_SLURM_CONF
                                   "' must be an absolute path, not '%.64s%s'",
                                   s->slurm_conf, strlen(s->slurm_conf) > 64 ? "..." : "");
                fd = open(s->slurm_conf, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                if (fd < 0)
                        return why(ret_why, "Pool setting '" PROCPOOL_POOL_SETTING_SLURM_CONF "': %s: %s",
                                   s->slurm_conf, strerror(errno));
                if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                        (void) close(fd);
                        return why(ret_why,
                                   "Pool setting '" PROCPOOL_POOL_SETTING_SLURM_CONF
                                   "': %s is not a regular file",
                                   s->slurm_conf);
                }
                (void) close(fd);
        }
        if (s->partition && !partition_is_valid(s->partition))
                return why(ret_why,
                           "Pool setting '" PROCPOOL_POOL_SETTING_PARTITION
                           "' must be 1 to %u of A-Z, a-z, 0-9, '_', '-' and '.', not starting with '-'",
                           MANAGER_PARTITION_MAX);
        return 0;
}

int manager_pool_executor_new(Manager *m, const PoolExecutorSettings *s, unsigned *size, Executor **ret,
                              char **ret_why) {
        Executor *e = NULL;
        unsigned n;
        int r;

        *ret_why = NULL;
        if (!s || !s->kind || strcmp(s->kind, PROCPOOL_EXECUTOR_LOCAL) == 0) {
                *ret = NULL;
                return 0;
        }
        assert(strcmp(s->kind, PROCPOOL_EXECUTOR_SLURM) == 0);
        if (*size == 0) {
                r = executor_slurm_cpus(s->slurm_conf, s->partition, &n);
                if (r >= 0 && n == 0)
                        r = -ENODATA;
                if (r < 0) {
                        if (asprintf(
                                    ret_why,
                                    "Failed to count the CPUs of the Slurm cluster with sinfo, for the pool's "
                                    "size: %s; give it a '" PROCPOOL_POOL_SETTING_SIZE "'",
                                    strerror(-r)) < 0)
                                *ret_why = NULL;
                        return r;
                }
        }
        r = executor_slurm_new(m->event, s->slurm_conf, s->partition, &e);
        if (r < 0) {
                if (asprintf(ret_why, "Failed to set up the Slurm executor: %s", strerror(-r)) < 0)
                        *ret_why = NULL;
                return r;
        }
        if (*size == 0)
                *size = n;
        *ret = e;
        return 0;
}

int manager_add_pool(Manager *m, const char *name, unsigned size, const PoolExecutorSettings *settings,
                     Executor *executor, Pool **ret) {
        PoolConfig config = m->config.pool;
        ManagerPool *l;
        Pool *p;
        int r;

        if (manager_find_pool(m, name)) {
                executor_free(executor);
                return -EEXIST;
        }
        if (m->n_pools >= MANAGER_POOLS_MAX) {
                executor_free(executor);
                return -E2BIG;
        }
        l = realloc(m->pools, (m->n_pools + 1) * sizeof(ManagerPool));
        if (!l) {
                executor_free(executor);
                return -ENOMEM;
        }
        m->pools = l;
        if (size > 0)
                config.pool_size = size;
        r = pool_new(m->event, m->registry, name, &config, executor ?: m->executor, &p);
        if (r < 0) {
                executor_free(executor);
                return r;
        }
        r = pool_set_executor_settings(
                p, settings ?: &(PoolExecutorSettings) { .kind = PROCPOOL_EXECUTOR_LOCAL });
        if (r < 0) {
                pool_free(p);
                executor_free(executor);
                return r;
        }
        pool_set_userdata(p, m);
        m->pools[m->n_pools++] = (ManagerPool) { .pool = p, .executor = executor };
        if (ret)
                *ret = p;
        return 0;
}

void manager_remove_pool(Manager *m, Pool *p) {
        assert(p != m->pool);
        for (size_t i = 0; i < m->n_pools; i++)
                if (m->pools[i].pool == p) {
                        Executor *e = m->pools[i].executor;

                        pool_retire(p, m->pool);
                        pool_free(p);
                        /* After the pool: its finished jobs, now "default"'s, hold no runtime of it. */
                        executor_free(e);
                        memmove(m->pools + i, m->pools + i + 1, (m->n_pools - i - 1) * sizeof(ManagerPool));
                        m->n_pools--;
                        return;
                }
}

unsigned manager_running(const Manager *m) {
        unsigned n = 0;
        for (size_t i = 0; i < m->n_pools; i++)
                n += pool_get_running(m->pools[i].pool);
        return n;
}

unsigned manager_queued(const Manager *m) {
        unsigned n = 0;
        for (size_t i = 0; i < m->n_pools; i++)
                n += pool_get_queued(m->pools[i].pool);
        return n;
}

/* Jobs read back from the store go to their pool; a job of a pool removed since (it had ended: a pool
 * with unfinished jobs is never removed) to "default". */
static Pool *pool_for_name(const char *name, void *userdata) {
        Manager *m = userdata;
        Pool *p = name ? manager_find_pool(m, name) : NULL;
        return p ?: m->pool;
}

/* A pool read back from the store. One whose executor cannot be set up now (a slurm.conf gone since) is
 * kept, with its jobs, on an executor that fails each of them as it would start, saying why: the daemon
 * starts, and the pool can be removed once its queue is empty. */
static int load_pool(const StorePool *sp, void *userdata) {
        PoolExecutorSettings settings = { .kind = sp->executor,
                                          .slurm_conf = sp->slurm_conf,
                                          .partition = sp->partition };
        _cleanup_free_ char *why = NULL, *detail = NULL;
        Manager *m = userdata;
        Pool *p = manager_find_pool(m, sp->name);
        Executor *e = NULL;
        unsigned size = sp->size;
        int r;

        if (!pool_name_is_valid(sp->name))
                return -EBADMSG;
        if (p) {
                (void) pool_set_size(p, size);
                pool_set_paused(p, sp->paused);
                return 0;
        }
        r = manager_check_pool_settings(&settings, &why);
        if (r >= 0)
                r = manager_pool_executor_new(m, &settings, &size, &e, &why);
        if (r < 0) {
                log_warning("Pool %s cannot run jobs, its jobs fail as they start: %s", sp->name,
                            why ?: strerror(-r));
                if (asprintf(&detail, "Pool '%s' cannot run jobs: %s", sp->name, why ?: strerror(-r)) < 0)
                        return log_oom();
                r = executor_unavailable_new(r, detail, &e);
                if (r < 0)
                        return r;
        }
        r = manager_add_pool(m, sp->name, size, &settings, e, &p);
        if (r < 0)
                return r;
        pool_set_paused(p, sp->paused);
        return 0;
}

static int attach_job_bus(Job *j, void *userdata) {
        JobBus *jb = job_bus_new(userdata, NULL);
        if (!jb)
                return -ENOMEM;
        job_set_userdata(j, jb);
        return 0;
}

/* The job store in the state dir, read back into the registry. */
static int setup_store(Manager *m) {
        _cleanup_free_ char *path = NULL, *why = NULL;
        Store *store;
        int r;

        if (m->config.ephemeral)
                return 0;
        if (asprintf(&path, "%s/jobs.db", m->state_dir) < 0)
                return log_oom();
        r = store_open(path, m->config.sync, &store, &why);
        if (r < 0)
                return log_error_errno(r, "Failed to open the job store %s", why ?: path);
        registry_set_store(m->registry, store);
        r = store_load_pools(store, load_pool, m);
        if (r < 0)
                return log_error_errno(r, "Failed to read the pools back from %s: %m (%s)", path,
                                       store_last_error(store));
        r = registry_load(m->registry, pool_for_name, m);
        if (r < 0)
                return log_error_errno(r, "Failed to read the jobs back from %s: %m (%s)", path,
                                       store_last_error(store));
        /* Their callers, if any, are gone with the last run: nobody waits on them yet. */
        r = registry_foreach(m->registry, attach_job_bus, m);
        if (r < 0)
                return log_oom();
        return 0;
}

static const char *bus_kind_to_string(BusKind kind) {
        return kind == BUS_SYSTEM ? "system" : kind == BUS_USER ? "session" : "given";
}

static int open_bus(Manager *m) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        int r;

        switch (m->config.bus_kind) {
        case BUS_USER:
                r = sd_bus_open_user(&bus);
                break;
        case BUS_SYSTEM:
                r = sd_bus_open_system(&bus);
                break;
        default:
                r = sd_bus_new(&bus);
                if (r < 0)
                        break;
                r = sd_bus_set_address(bus, m->config.address);
                if (r < 0)
                        break;
                r = sd_bus_set_bus_client(bus, true);
                if (r < 0)
                        break;
                r = sd_bus_negotiate_fds(bus, true);
                if (r < 0)
                        break;
                r = sd_bus_start(bus);
        }
        if (r < 0)
                return r;
        m->bus = TAKE_PTR(bus);
        return 0;
}

/* Connects to the bus, on the loop, with the bound of what waits there for clients; nothing with BUS_NONE. */
static int connect_bus(Manager *m) {
        int r;

        if (m->config.bus_kind == BUS_NONE)
                return 0;
        r = open_bus(m);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the %s bus: %m",
                                       bus_kind_to_string(m->config.bus_kind));
        (void) sd_bus_set_exit_on_disconnect(m->bus, true);
        /* sd-bus would flush the connection when the loop exits, with no bound: manager_run() does. */
        (void) sd_bus_set_close_on_exit(m->bus, false);
        r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        r = reply_bound_new(m->bus, m->config.bus_kind, &m->reply_bound);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the bounds of replies: %m");
        r = sd_bus_add_filter(m->bus, NULL, reply_bound_filter, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the bus filter: %m");
        return 0;
}

/* Asks the service manager whether our unit has Delegate=yes: systemd does not always mark a
 * delegated cgroup with an xattr (not on hybrid hierarchies, for one). */
static bool systemd_says_delegated(Manager *m) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *unit;
        int delegate = 0, r;

        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;

        if (!getenv("INVOCATION_ID"))
                return false;
        /* Ask only a manager that is there: a bus must not try to activate one for this. */
        r = sd_bus_message_new_method_call(m->bus, &call, "org.freedesktop.systemd1",
                                           "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                                           "GetUnitByPID");
        if (r < 0)
                return false;
        r = sd_bus_message_set_auto_start(call, false);
        if (r < 0)
                return false;
        r = sd_bus_message_append(call, "u", (uint32_t) getpid());
        if (r < 0)
                return false;
        r = sd_bus_call(m->bus, call, 0, &error, &reply);
        if (r < 0)
                return false;
        r = sd_bus_message_read(reply, "o", &unit);
        if (r < 0)
                return false;
        r = sd_bus_get_property_trivial(m->bus, "org.freedesktop.systemd1", unit,
                                        "org.freedesktop.systemd1.Service", "Delegate", &error, 'b',
                                        &delegate);
        return r >= 0 && delegate;
}

/* The cgroup the local executor runs jobs under: the daemon's own where it is delegated to it; NULL
 * (process groups) otherwise. */
static CgroupRoot *setup_cgroups(Manager *m) {
        _cleanup_free_ char *path = NULL;
        CgroupRoot *root = NULL;
        const char *why;
        int r;

        bool asked = false; /* the unit has Delegate=yes */

        r = cgroup_own_path(&path);
        /* After a re-exec the daemon lives where its first start moved it, in <delegated>/supervisor: the
         * delegated cgroup is the parent, and no second supervisor/ goes below this one. */
        if (r >= 0 && m->config.deserialize_fd >= 0) {
                char *slash = strrchr(path, '/');
                if (slash && strcmp(slash, "/supervisor") == 0)
                        *slash = '\0';
        }
        if (r < 0) {
                why = "no cgroup v2 hierarchy";
                asked = systemd_says_delegated(m);
        } else if (!cgroup_marked_delegated(path) && !systemd_says_delegated(m))
                why = "its cgroup is not delegated to it (Delegate=yes)";
        else {
                asked = true;
                r = cgroup_root_setup(path, &root);
                if (r >= 0) {
                        log_info("each job runs in its own cgroup under %s%s", path,
                                 root->has_memory ? "" : " (no memory controller: memory-max is off)");
                        m->job_cgroups = true;
                        return root;
                }
                log_warning_errno(r, "Failed to take over cgroup %s: %m", path);
                why = "its cgroup could not be set up";
        }
        if (asked) {
                /* The unit's author expects whole trees stopped and measured: say loudly that they are
                 * not, in the log and in systemctl status. */
                log_error("The unit asks for Delegate=yes, but %s: per-job cgroups are OFF; jobs are tracked "
                          "by process group, a job's processes that leave its group are not stopped with it, "
                          "and CPUUsageUSec, MemoryPeak and memory-max do not work",
                          why);
                m->cgroups_unusable = true;
        } else
                log_notice(
                        "%s; jobs are tracked by process group, and a job's processes that leave its group "
                        "are not stopped with it",
                        why);
        return NULL;
}

int manager_startup(Manager *m) {
        Spool *spool;
        int r;

        assert(m->event && !m->registry && !m->bus);

        r = setup_state_dir(m, &spool);
        if (r < 0)
                return r;
        r = registry_new(m->event, &m->config.registry, spool, &registry_callbacks, m, &m->registry);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the registry: %m");

        r = connect_bus(m);
        if (r < 0)
                return r;

        r = executor_local_new(m->event, setup_cgroups(m), &m->executor);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the local executor: %m");
        r = manager_add_pool(m, POOL_DEFAULT_NAME, 0, NULL, NULL, &m->pool);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the pool: %m");
        r = setup_store(m);
        if (r < 0)
                return r;
        if (m->config.deserialize_fd >= 0)
                take_over(m);

        /* Job signals go out once the loop is idle: after the spawn of the job that is being started and
         * the answer to whoever waits for the one that ended. */
        r = sd_event_add_defer(m->event, &m->signal_source, on_signals, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add an event source: %m");
        (void) sd_event_source_set_priority(m->signal_source, SD_EVENT_PRIORITY_IDLE);
        (void) sd_event_source_set_enabled(m->signal_source, SD_EVENT_OFF);
        r = sd_event_add_time_relative(m->event, &m->counts_source, CLOCK_MONOTONIC, COUNTS_INTERVAL_USEC,
                                       USEC_PER_MSEC, on_counts, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add a timer: %m");
        (void) sd_event_source_set_enabled(m->counts_source, SD_EVENT_OFF);
        if (getenv("NOTIFY_SOCKET")) {
                r = sd_event_add_time_relative(m->event, &m->status_source, CLOCK_MONOTONIC, 0, 0,
                                               on_status_timer, m);
                if (r < 0)
                        return log_error_errno(r, "Failed to add a timer: %m");
        }
        if (m->config.exit_on_idle_usec > 0) {
                r = sd_event_add_time_relative(m->event, &m->idle_source, CLOCK_MONOTONIC,
                                               m->config.exit_on_idle_usec, 0, on_idle_timer, m);
                if (r < 0)
                        return log_error_errno(r, "Failed to add a timer: %m");
        }

        r = authz_new(m, &m->authz);
        if (r < 0)
                return log_error_errno(r, "Failed to set up authorization: %m");
        if (m->bus) {
                r = sd_bus_match_signal(m->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "NameOwnerChanged", match_name_owner_changed,
                                        m);
                if (r < 0)
                        return log_error_errno(r, "Failed to watch clients leaving the bus: %m");
                r = manager_serve_bus(m, m->bus);
                if (r < 0)
                        return log_error_errno(r, "Failed to serve the objects on the bus: %m");
        }
        if (m->config.private_socket) {
                r = private_socket_new(m, m->config.private_socket, TAKE_FD(m->private_inherited_fd),
                                       &m->private);
                if (r < 0)
                        return log_error_errno(r, "Failed to listen on the private socket %s: %m",
                                               m->config.private_socket);
        }

        r = m->bus ? sd_bus_request_name(m->bus, PROCPOOL_BUS_NAME, 0) : 0;
        if (r == -EEXIST || r == -EALREADY)
                return log_error_errno(r,
                                       "Failed to acquire bus name %s: another process owns it "
                                       "(is procpoold already running?)",
                                       PROCPOOL_BUS_NAME);
        if (r < 0)
                return log_error_errno(r, "Failed to acquire bus name %s: %m", PROCPOOL_BUS_NAME);
        /* What the last run left unfinished ends now, with the bus there to hear of it; what a re-exec
         * handed over is watched again. */
        registry_coldplug(m->registry);
        if (m->took_over) {
                check_clients(m);
                check_subscribers(m);
        }
        (void) registry_flush(m->registry);
        (void) sd_notifyf(0, "READY=1\nSTATUS=%u running, %u queued, %" PRIu64 " finished, pool size %u%s",
                          manager_running(m), manager_queued(m), registry_get_n_finished_total(m->registry),
                          pool_get_size(m->pool), m->cgroups_unusable ? CGROUPS_UNUSABLE_NOTE : "");
        return 0;
}

int manager_serve_bus(Manager *m, sd_bus *bus) {
        int r;

        r = sd_bus_add_filter(bus, bus == m->bus ? &m->filter_slot : NULL, filter_message, m);
        if (r < 0)
                return r;
        r = supervisor_bus_add(m, bus);
        if (r < 0)
                return r;
        r = job_bus_add(m, bus);
        if (r < 0)
                return r;
        return pool_bus_add(m, bus);
}

/* With --bus-signals=subscribed, a signal nobody asked for costs neither the daemon nor dbus-daemon: the
 * daemon cannot learn which match rules the bus holds, but it knows who subscribed. */
static bool bus_signals_wanted(Manager *m) {
        if (!m->bus) /* BUS_NONE: direct connections only */
                return false;
        return m->config.bus_signals == BUS_SIGNALS_ALWAYS || sd_bus_track_count(m->subscribed) > 0;
}

int manager_emit(Manager *m, int (*send)(sd_bus *bus, void *userdata), void *userdata) {
        int r = 0, k;

        manager_flush_signals(m);
        if (bus_signals_wanted(m))
                r = send(m->bus, userdata);
        k = private_socket_foreach_subscribed(m->private, send, userdata);
        return r < 0 ? r : k;
}

void manager_flush_signals_for(Manager *m, sd_bus *bus) {
        size_t kept = 0;

        /* In order; one that cannot be sent (its direct connection closed meanwhile) is dropped. */
        for (size_t i = 0; i < m->n_signals; i++) {
                sd_bus_message *s = m->signals[i];

                if (bus && sd_bus_message_get_bus(s) != bus) {
                        m->signals[kept++] = s;
                        continue;
                }
                (void) sd_bus_send(NULL, s, NULL);
                sd_bus_message_unref(s);
        }
        m->n_signals = kept;
        if (kept == 0 && m->signal_source)
                (void) sd_event_source_set_enabled(m->signal_source, SD_EVENT_OFF);
}

void manager_reply_later(Manager *m, bool b) {
        m->queue_in_dispatch = b;
}

/* A request is being handled, and its reply goes out when the handler returns. */
static bool replying_now(Manager *m) {
        return m->dispatch_bus && sd_bus_get_current_message(m->dispatch_bus) && !m->queue_in_dispatch;
}

static int on_signals(sd_event_source *s, void *userdata) {
        manager_flush_signals(userdata);
        return 0;
}

typedef struct QueuedBuild {
        Manager *m;
        int (*build)(sd_bus *bus, void *userdata, sd_bus_message **ret);
        void *userdata;
} QueuedBuild;

static int queue_one(sd_bus *bus, void *userdata) {
        QueuedBuild *q = userdata;
        Manager *m = q->m;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        int r;

        r = q->build(bus, q->userdata, &s);
        if (r < 0)
                return r;
        /* Before the loop runs (jobs read back at startup), before a reply, or when the queue is full: at
         * once. */
        if (!m->signal_source || m->n_signals >= MANAGER_SIGNALS_MAX || replying_now(m)) {
                manager_flush_signals(m);
                return sd_bus_send(NULL, s, NULL);
        }
        if (m->n_signals == m->n_signals_allocated) {
                size_t n = MAX(m->n_signals_allocated * 2, (size_t) 16);
                sd_bus_message **a = reallocarray(m->signals, n, sizeof(*a));

                if (!a) {
                        manager_flush_signals(m);
                        return sd_bus_send(NULL, s, NULL);
                }
                m->signals = a;
                m->n_signals_allocated = n;
        }
        m->signals[m->n_signals++] = TAKE_PTR(s);
        if (m->n_signals == 1)
                (void) sd_event_source_set_enabled(m->signal_source, SD_EVENT_ONESHOT);
        return 0;
}

int manager_queue_signal(Manager *m, int (*build)(sd_bus *bus, void *userdata, sd_bus_message **ret),
                         void *userdata) {
        QueuedBuild q = { .m = m, .build = build, .userdata = userdata };
        int r = 0, k;

        if (bus_signals_wanted(m))
                r = queue_one(m->bus, &q);
        k = private_socket_foreach_subscribed(m->private, queue_one, &q);
        return r < 0 ? r : k;
}

int manager_subscribe(Manager *m, sd_bus_message *message, bool b) {
        const char *sender = sd_bus_message_get_sender(message);

        assert(sd_bus_message_get_bus(message) == m->bus);

        /* Without the gate they change nothing, and cost the bus no match rule per client. */
        if (m->config.bus_signals == BUS_SIGNALS_ALWAYS || !sender)
                return 0;
        if (b)
                return track_subscriber(m, sender);
        /* Unsubscribe() of a client that is not subscribed succeeds, as it always did here. */
        (void) sd_bus_track_remove_name(m->subscribed, sender);
        return 0;
}

int manager_run(Manager *m) {
        int r;

        assert(m->bus && m->pool);

        r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to run the event loop: %m");
        /* Only sd-bus exits the loop with a code (sd_bus_set_exit_on_disconnect()): the daemon lost the
         * bus, and with it every caller. A failure, so that the service manager restarts it. */
        if (r > 0)
                return log_error_errno(-ECONNRESET, "Lost the connection to the %s bus, exiting",
                                       bus_kind_to_string(m->config.bus_kind));
        (void) manager_flush(m);
        return 0;
}

static void on_alarm(int sig) {
        /* Only there to interrupt the poll of sd_bus_flush(). */
}

int manager_flush(Manager *m) {
        struct sigaction sa = { .sa_handler = on_alarm }, old_sa;
        /* Past the deadline, again and again: one signal that comes between two polls is not enough. */
        struct itimerval deadline = {
                .it_value = { .tv_sec = MANAGER_FLUSH_USEC / USEC_PER_SEC },
                .it_interval = { .tv_usec = 10000 },
        };
        struct itimerval off = {};
        sigset_t alrm, old_mask;
        uint64_t queued = 0;
        int r;

        if (!m->bus)
                return 0;
        manager_flush_signals(m);
        if (sd_bus_get_n_queued_write(m->bus, &queued) < 0)
                queued = 0;
        /* Direct connections too: a caller there hears why its call ends (Interrupted, naming its job),
         * as one on the bus does. */
        if (queued == 0 && !private_socket_has_queued(m->private))
                return 0;
        /* sd_bus_flush() has no timeout: SIGALRM interrupts its poll, and it returns -EINTR. */
        sigemptyset(&alrm);
        sigaddset(&alrm, SIGALRM);
        (void) sigaction(SIGALRM, &sa, &old_sa);
        (void) sigprocmask(SIG_UNBLOCK, &alrm, &old_mask);
        (void) setitimer(ITIMER_REAL, &deadline, NULL);
        r = queued > 0 ? sd_bus_flush(m->bus) : 0;
        if (r != -EINTR && private_socket_flush(m->private) == -EINTR)
                r = -EINTR;
        (void) setitimer(ITIMER_REAL, &off, NULL);
        (void) sigprocmask(SIG_SETMASK, &old_mask, NULL);
        (void) sigaction(SIGALRM, &old_sa, NULL);
        if (r == -EINTR && (sd_bus_get_n_queued_write(m->bus, &queued) < 0 || queued == 0))
                log_warning("A direct connection did not take what procpoold wrote to it within %" PRIu64
                            " s; going on without it",
                            (uint64_t) (MANAGER_FLUSH_USEC / USEC_PER_SEC));
        else if (r == -EINTR)
                log_warning("The bus did not take %" PRIu64 " messages within %" PRIu64
                            " s (it holds too much of "
                            "procpoold's for clients that do not read them); going on without them",
                            queued, (uint64_t) (MANAGER_FLUSH_USEC / USEC_PER_SEC));
        return r;
}
