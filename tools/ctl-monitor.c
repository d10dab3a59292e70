/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* procpoolctl monitor: prints job events (submitted, started, finished) from the daemon's signals. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "procpool-api.h"
#include "ctl-output.h"
#include "ctl.h"

typedef struct Monitor {
        Ctl *ctl;
        sd_event *event;
        /* Jobs whose start was printed: a job that starts while it is added shows as running in
         * InterfacesAdded already, and its State change must not print it twice. */
        uint64_t *started;
        size_t n_started;
} Monitor;

static bool monitor_mark_started(Monitor *m, uint64_t id) {
        uint64_t *n;

        for (size_t i = 0; i < m->n_started; i++)
                if (m->started[i] == id)
                        return false;
        n = realloc(m->started, (m->n_started + 1) * sizeof(uint64_t));
        if (!n)
                return true; /* printing twice is better than not at all */
        m->started = n;
        m->started[m->n_started++] = id;
        return true;
}

static void monitor_forget(Monitor *m, uint64_t id) {
        for (size_t i = 0; i < m->n_started; i++)
                if (m->started[i] == id) {
                        m->started[i] = m->started[--m->n_started];
                        return;
                }
}

static void print_started(Monitor *m, uint64_t id, uint32_t pid) {
        if (!monitor_mark_started(m, id))
                return;
        if (m->ctl->json)
                printf("{\"event\":\"started\",\"id\":%" PRIu64 ",\"pid\":%" PRIu32 "}\n", id, pid);
        else if (pid)
                printf("Job %" PRIu64 " started, PID %" PRIu32 ".\n", id, pid);
        else
                printf("Job %" PRIu64 " started.\n", id);
        fflush(stdout);
}

static int match_interfaces_added(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Monitor *m = userdata;
        _cleanup_(job_info_donep) JobInfo *jp = NULL;
        JobInfo j = {};
        const char *path, *iface;
        bool found = false;
        int r;

        r = sd_bus_message_read(msg, "o", &path);
        if (r < 0)
                return 0;
        jp = &j;
        r = sd_bus_message_enter_container(msg, 'a', "{sa{sv}}");
        if (r <= 0)
                return 0;
        for (;;) {
                r = sd_bus_message_enter_container(msg, 'e', "sa{sv}");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(msg, "s", &iface);
                if (r < 0)
                        break;
                if (strcmp(iface, PROCPOOL_JOB_INTERFACE) == 0) {
                        r = job_info_read_properties(msg, &j);
                        found = r >= 0;
                } else
                        r = sd_bus_message_skip(msg, "a{sv}");
                if (r < 0)
                        break;
                r = sd_bus_message_exit_container(msg);
                if (r <= 0)
                        break;
        }
        if (!found)
                return 0;
        if (j.id == 0)
                j.id = job_path_to_id(path);

        if (m->ctl->json) {
                printf("{\"event\":\"submitted\",\"id\":%" PRIu64 ",\"path\":", j.id);
                json_write_string(stdout, path);
                fputs(",\"argv\":", stdout);
                json_write_strv(stdout, j.argv);
                fputs(",\"label\":", stdout);
                json_write_string(stdout, j.label);
                fputs("}\n", stdout);
        } else {
                /* Another user's command line: escaped, so that it cannot drive the terminal. */
                _cleanup_free_ char *cmd = format_command_line(j.argv);
                _cleanup_free_ char *safe = cmd ? escape_for_terminal(cmd) : NULL;
                printf("Job %" PRIu64 " submitted: %s\n", j.id, safe ? safe : "");
        }
        fflush(stdout);
        if (j.state && strcmp(j.state, PROCPOOL_STATE_RUNNING) == 0)
                print_started(m, j.id, j.pid);
        return 0;
}

static int match_properties_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Monitor *m = userdata;
        _cleanup_(job_info_donep) JobInfo *jp = NULL;
        JobInfo j = {};
        const char *iface;

        if (sd_bus_message_read(msg, "s", &iface) < 0 || strcmp(iface, PROCPOOL_JOB_INTERFACE) != 0)
                return 0;
        jp = &j;
        if (job_info_read_properties(msg, &j) < 0)
                return 0;
        if (j.state && strcmp(j.state, PROCPOOL_STATE_RUNNING) == 0)
                print_started(m, job_path_to_id(sd_bus_message_get_path(msg)), j.pid);
        return 0;
}

static int match_job_finished(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Monitor *m = userdata;
        const char *path, *state;
        uint64_t id;
        int32_t rc;

        _cleanup_free_ char *error = NULL;

        if (sd_bus_message_read(msg, "tosi", &id, &path, &state, &rc) < 0)
                return 0;
        monitor_forget(m, id);
        /* Why it ended as it did: the job's Error, empty if it exited by itself (or was released at once). */
        if (sd_bus_get_property_string(m->ctl->bus, ctl_destination(m->ctl), path, PROCPOOL_JOB_INTERFACE,
                                       "Error", NULL, &error) < 0)
                error = NULL;
        if (m->ctl->json) {
                printf("{\"event\":\"finished\",\"id\":%" PRIu64 ",\"state\":", id);
                json_write_string(stdout, state);
                printf(",\"returncode\":%" PRIi32 ",\"error\":", rc);
                json_write_string(stdout, error ? error : "");
                fputs("}\n", stdout);
        } else if (error && *error) {
                _cleanup_free_ char *safe = escape_for_terminal(error);
                printf("Job %" PRIu64 " finished: %s, return code %" PRIi32 ": %s\n", id, state, rc,
                       safe ? safe : "");
        } else
                printf("Job %" PRIu64 " finished: %s, return code %" PRIi32 ".\n", id, state, rc);
        fflush(stdout);
        return 0;
}

static int on_monitor_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), EXIT_SUCCESS);
}

/* procpoold took its name: one that started (or restarted) after the monitor did knows nothing of its
 * Subscribe(). */
static int match_name_owner_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Monitor *m = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(msg, "sss", &name, &old_owner, &new_owner) < 0 ||
            strcmp(name, PROCPOOL_BUS_NAME) != 0)
                return 0;
        if (new_owner[0])
                (void) ctl_subscribe_again(m->ctl);
        return 0;
}

static int monitor_subscribe(Monitor *m);

/* The direct connection closed: procpoold re-executed (which closes direct connections) or stopped. The
 * monitor goes on over the bus, where it follows procpoold through both, as if it had started there. */
static int match_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Monitor *m = userdata;
        int r;

        r = ctl_leave_direct(m->ctl, m->event);
        if (r >= 0)
                r = sd_bus_set_exit_on_disconnect(m->ctl->bus, true);
        if (r >= 0)
                r = monitor_subscribe(m);
        if (r < 0)
                return sd_event_exit(m->event,
                                     ctl_log_error(m->ctl, NULL, r, "Failed to follow procpoold on the bus"));
        if (!m->ctl->quiet)
                fprintf(stderr, "procpoold closed the direct connection (it re-executed or stopped); "
                                "monitoring over the bus.\n");
        return 0;
}

/* No sender in the rules: a well-known name in a match is resolved by the bus, not by sd-bus's own
 * filtering; the paths and interfaces are procpool's alone. */
static int monitor_subscribe(Monitor *m) {
        sd_bus *bus = m->ctl->bus;
        int r;

        if (m->ctl->direct) {
                r = sd_bus_match_signal(bus, NULL, NULL, "/org/freedesktop/DBus/Local",
                                        "org.freedesktop.DBus.Local", "Disconnected", match_disconnected, m);
                if (r < 0)
                        return r;
        } else {
                r = sd_bus_add_match(
                        bus, NULL,
                        "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                        "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                        "arg0='" PROCPOOL_BUS_NAME "'",
                        match_name_owner_changed, m);
                if (r < 0)
                        return r;
        }

        r = sd_bus_match_signal(bus, NULL, NULL, PROCPOOL_OBJECT_PATH, "org.freedesktop.DBus.ObjectManager",
                                "InterfacesAdded", match_interfaces_added, m);
        if (r < 0)
                return r;
        r = sd_bus_add_match(bus, NULL,
                             "type='signal',interface='org.freedesktop.DBus.Properties',"
                             "member='PropertiesChanged',"
                             "path_namespace='" PROCPOOL_JOB_PATH_PREFIX "',"
                             "arg0='" PROCPOOL_JOB_INTERFACE "'",
                             match_properties_changed, m);
        if (r < 0)
                return r;
        r = sd_bus_match_signal(bus, NULL, NULL, PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE,
                                "JobFinished", match_job_finished, m);
        if (r < 0)
                return r;
        return ctl_subscribe(m->ctl);
}

/* Makes event run the bus until SIGINT or SIGTERM comes or the bus goes away (a direct connection is
 * given up for the bus instead: see match_disconnected()). */
static int monitor_attach_event(sd_bus *bus, bool direct, sd_event *event) {
        int r;

        r = sd_event_add_signal(event, NULL, SIGINT, on_monitor_signal, NULL);
        if (r < 0)
                return r;
        r = sd_event_add_signal(event, NULL, SIGTERM, on_monitor_signal, NULL);
        if (r < 0)
                return r;
        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0 || direct)
                return r;
        return sd_bus_set_exit_on_disconnect(bus, true);
}

int verb_monitor(Ctl *c, int argc, char **argv) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        Monitor m = { .ctl = c };
        sigset_t mask;
        int r;

        r = ctl_connect(c);
        if (r != 0)
                return r;

        r = sd_event_default(&event);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to set up the event loop");
        m.event = event;
        r = monitor_subscribe(&m);
        if (r < 0 && c->direct && sd_bus_is_open(c->bus) <= 0) {
                /* procpoold re-executed meanwhile: as in match_disconnected(). */
                r = ctl_leave_direct(c, event);
                if (r >= 0)
                        r = monitor_subscribe(&m);
        }
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to subscribe to job events");

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return ctl_log_error(c, NULL, -errno, "Failed to block signals");
        r = monitor_attach_event(c->bus, c->direct, event);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to set up the event loop");

        if (!c->quiet)
                fprintf(stderr, "Monitoring procpool job events; press Ctrl-C to stop.\n");
        r = sd_event_loop(event);
        (void) sd_bus_detach_event(c->bus);
        free(m.started);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to run the event loop");
        return r;
}
