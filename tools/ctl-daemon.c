/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* procpoolctl's commands on procpoold itself: daemon-reexec. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "procpool-api.h"
#include "ctl.h"

/* How long procpoold may take to own its name again after it re-executed. */
#define REEXEC_TIMEOUT_USEC (60ULL * 1000000ULL)

typedef struct Reexec {
        Ctl *ctl;
        sd_event *event;
        char *old_owner; /* the unique name of procpoold before it re-executed */
        bool left;       /* it left the bus since */
} Reexec;

/* procpoold is back once the name has an owner again: a new connection, or the old one that gave it up
 * and took it again (a re-exec that failed and carried on). */
static int match_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Reexec *x = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 ||
            strcmp(name, PROCPOOL_BUS_NAME) != 0)
                return 0;
        if (strcmp(old_owner, x->old_owner) == 0 && !*new_owner)
                x->left = true;
        if (*new_owner && (strcmp(new_owner, x->old_owner) != 0 || x->left))
                return sd_event_exit(x->event, EXIT_SUCCESS);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Reexec *x = userdata;

        fprintf(stderr, "procpoold did not own %s again within %llu s of re-executing.\n", PROCPOOL_BUS_NAME,
                REEXEC_TIMEOUT_USEC / 1000000ULL);
        return sd_event_exit(x->event, EXIT_FAILED);
}

int verb_daemon_reexec(Ctl *c, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL;
        Reexec x = { .ctl = c };
        const char *owner;
        int r;

        /* Its name is what says the new image is up: the bus, and a re-exec ends direct connections. */
        c->force_bus = true;
        r = ctl_connect(c);
        if (r != 0)
                return r;
        /* Watched before anything is asked, so that no change of owner is missed. */
        r = sd_bus_add_match(c->bus, &match,
                             "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                             "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                             "arg0='" PROCPOOL_BUS_NAME "'",
                             match_name_owner_changed, &x);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to watch procpoold on the bus");
        r = sd_bus_call_method(c->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "GetNameOwner", &error, &reply, "s",
                               PROCPOOL_BUS_NAME);
        if (r < 0)
                return ctl_log_error(c, &error, r, "Failed to find procpoold");
        r = sd_bus_message_read(reply, "s", &owner);
        if (r < 0)
                return ctl_log_error(c, NULL, r, "Failed to find procpoold");
        x.old_owner = strdup(owner);
        if (!x.old_owner)
                return ctl_log_error(c, NULL, -ENOMEM, "Failed to re-execute procpoold");

        r = sd_event_default(&x.event);
        if (r >= 0)
                r = sd_bus_attach_event(c->bus, x.event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_event_add_time_relative(x.event, NULL, CLOCK_MONOTONIC, REEXEC_TIMEOUT_USEC, 0,
                                               on_timeout, &x);
        if (r < 0) {
                r = ctl_log_error(c, NULL, r, "Failed to set up the event loop");
                goto finish;
        }
        r = sd_bus_call_method(c->bus, ctl_destination(c), PROCPOOL_OBJECT_PATH, PROCPOOL_MANAGER_INTERFACE,
                               "Reexecute", &error, NULL, NULL);
        if (r < 0) {
                r = ctl_log_error(c, &error, r, "Failed to re-execute procpoold");
                goto finish;
        }
        r = sd_event_loop(x.event);
        if (r < 0)
                r = ctl_log_error(c, NULL, r, "Failed to wait for procpoold");
finish:
        (void) sd_bus_detach_event(c->bus);
        sd_event_unref(x.event);
        free(x.old_owner);
        return r;
}
