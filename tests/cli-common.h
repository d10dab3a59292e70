/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What procpoolctl's end-to-end suites share: running it and reading what it printed, JSON, ptys. */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "fixture.h"

typedef struct {
        int status; /* the exit code, or 128+N when signal N ended procpoolctl */
        GBytes *out;
        GBytes *err;
        char *out_str;
        char *err_str;
} CtlResult;

void ctl_result_clear(CtlResult *r);
/* The procpoolctl of the build. */
const char *ctl_path(void);
/* The exit code, or 128+N when signal N ended p. */
int wait_status_of(GSubprocess *p);
/* The argv of a procpoolctl run: the binary, --address= unless address is NULL, then args. */
GPtrArray *ctl_argv(const char *address, const char *const *args);
GSubprocessLauncher *ctl_launcher(GSubprocessFlags flags, const char *cwd, const char *session_address);
/* Runs procpoolctl to its end with input on stdin; address goes in --address= unless NULL, and env_address
 * becomes DBUS_SESSION_BUS_ADDRESS. What ret held (initialized, or an earlier result) is freed first. */
void ctl_run_full(const char *address, const char *env_address, const char *cwd, GBytes *input,
                  const char *const *args, CtlResult *ret);
/* Runs procpoolctl --address=<f's bus> with the NULL-terminated arguments; stdin is empty. */
int ctl(Fixture *f, CtlResult *ret, ...) G_GNUC_NULL_TERMINATED;
/* Runs procpoolctl --address=<f's bus> as OTHER_UID (from /) with the NULL-terminated args; stdin is
 * empty. Returns its exit code. */
int ctl_other(Fixture *f, CtlResult *ret, const char *const *args);
JsonNode *parse_json(const char *text);
guint64 parse_id(const char *text);
/* Submits "sh -c shell" through procpoolctl and returns the job's id. */
guint64 ctl_submit(Fixture *f, const char *shell);
char *job_state(Fixture *f, guint64 id);
gboolean job_wait_state(Fixture *f, guint64 id, const char *state);
/* The id of the newest job the daemon holds. */
guint64 last_job(Fixture *f);
/* A master/slave pseudo-terminal pair of cols columns. */
int open_pty(unsigned cols, int *ret_slave);
/* Reads from a pty master into buf until needle shows up (NULL: until the other side is closed). */
void pty_read_until(int master, GString *buf, const char *needle);
