/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fault suite's stop cases: a stop (Cancel, a timeout, the daemon's SIGTERM, the caller leaving) ends
 * every process of the job, also one that ignores SIGTERM after the main process exited, and a main
 * process that moved itself into another process group. Without per-job cgroups, under the 1024-fd
 * limit, with clients of two uids. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

/* Long enough for any loaded machine to start the job's processes, short enough for a suite. */
#define STOP_TIMEOUT_USEC (1000ULL * 1000ULL)

/* The daemon as systemd would start it: 1024 fds, no per-job cgroup here (the fixture's daemon runs
 * without delegation), so the process group and the main process's pidfd are all it has. */
static void restart(Fixture *f) {
        fixture_restart_daemon_nofile(f, NULL, FIXTURE_SERVICE_NOFILE, FIXTURE_SERVICE_NOFILE);
        if (fixture_per_job_cgroups(f))
                g_test_message("procpoold runs per-job cgroups here: the cgroup path is tested");
}

/* sh -c: a child that ignores SIGTERM, its pid in pidfile, then the main process, which ends on SIGTERM. */
static char *survivor_script(const char *pidfile) {
        g_autofree char *q = g_shell_quote(pidfile);

        return g_strdup_printf(
                "trap '' TERM; sleep 1000 & p=$!; trap - TERM; echo $p > %s.tmp; mv %s.tmp %s; "
                "exec sleep 1000",
                q, q, q);
}

/* perl: the main process moves itself into the daemon's process group (it leads its own, so setsid() is
 * not open to it; setpgid() into another group of the session is), writes its pid and sleeps. With
 * ignore_term, SIGTERM does not end it. */
static char *moved_main_script(gboolean ignore_term) {
        return g_strdup_printf("%s setpgrp(0, getpgrp(getppid())) or die \"setpgrp: $!\"; "
                               "open(my $f, '>', \"$ARGV[0].tmp\") or die; print $f \"$$\\n\"; close $f; "
                               "rename(\"$ARGV[0].tmp\", $ARGV[0]) or die; sleep 1000;",
                               ignore_term ? "$SIG{TERM} = 'IGNORE';" : "");
}

static GVariant *stop_options(guint64 timeout_usec) {
        if (timeout_usec > 0)
                return fixture_options("stop-timeout-usec", g_variant_new_uint64(STOP_TIMEOUT_USEC),
                                       "timeout-usec", g_variant_new_uint64(timeout_usec), NULL);
        return fixture_options("stop-timeout-usec", g_variant_new_uint64(STOP_TIMEOUT_USEC), NULL);
}

/* Wait on a job that is being stopped: its reply comes once the stop is complete. Bounded, so that a job
 * that never ends fails the test; pid, the process under test, does not outlive a failure. */
static void wait_for_end(Fixture *f, const char *path, const char *error_name, pid_t pid) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r =
                g_dbus_connection_call_sync(f->conn, BUS_NAME, path, JOB_IFACE, "Wait", NULL, NULL,
                                            G_DBUS_CALL_FLAGS_NONE, FIXTURE_WAIT_SEC * 1000, NULL, &error);

        if (error && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
                (void) kill(pid, SIGKILL);
                g_error("job %s did not end within %d s of its stop", path, FIXTURE_WAIT_SEC);
        }
        if (error_name)
                fixture_assert_error(error, error_name, NULL);
        else
                g_assert_no_error(error);
}

/* What the issue was about: once the job is reported ended, nothing of it runs on. Then it is also gone. */
static void assert_stopped_for_good(pid_t pid) {
        if (!fixture_proc_killed(pid)) {
                (void) kill(pid, SIGKILL);
                g_error("process %d of a stopped job still runs after the job ended", pid);
        }
        g_assert_true(fixture_wait_pid_exit(pid));
}

/* ---- a child that ignores SIGTERM outlives its main process ----------------------------------------- */

/* Cancel stopped the main process, and the job ended with it: the child that ignores SIGTERM ran on, never
 * sent the SIGKILL that the stop timeout promises. */
static void test_cancel_group(Fixture *f, gconstpointer unused) {
        g_autofree char *pidfile = fixture_gate_path(f, "child"), *script = survivor_script(pidfile);
        const char *const argv[] = { "sh", "-c", script, NULL };
        g_autofree char *path = NULL;
        pid_t child;

        restart(f);
        path = fixture_submit(f, argv, stop_options(0));
        child = fixture_wait_pid_file(pidfile);
        fixture_job_call_ok(f, path, "Cancel", NULL);
        wait_for_end(f, path, "org.procpool.Error.Cancelled", child);
        assert_stopped_for_good(child);
        /* The main process ended on SIGTERM: its return code, the stop's state. */
        fixture_assert_outcome(f, path, "cancelled", -SIGTERM);
        fixture_assert_answers(f);
}

/* The same after timeout-usec. */
static void test_timeout_group(Fixture *f, gconstpointer unused) {
        g_autofree char *pidfile = fixture_gate_path(f, "child"), *script = survivor_script(pidfile);
        const char *const argv[] = { "sh", "-c", script, NULL };
        g_autofree char *path = NULL;
        pid_t child;

        restart(f);
        path = fixture_submit(f, argv, stop_options(STOP_TIMEOUT_USEC));
        child = fixture_wait_pid_file(pidfile);
        wait_for_end(f, path, "org.procpool.Error.TimedOut", child);
        assert_stopped_for_good(child);
        fixture_assert_state(f, path, "timed-out");
        fixture_assert_answers(f);
}

/* SIGTERM of the daemon: it stops every job and exits once they are stopped, children included. */
static void test_shutdown_group(Fixture *f, gconstpointer unused) {
        g_autofree char *pidfile = fixture_gate_path(f, "child"), *script = survivor_script(pidfile);
        const char *const argv[] = { "sh", "-c", script, NULL };
        g_autofree char *path = NULL;
        pid_t child;
        int status;

        restart(f);
        path = fixture_submit(f, argv, stop_options(0));
        child = fixture_wait_pid_file(pidfile);
        status = fixture_stop_daemon(f->daemon_pid);
        f->daemon_pid = 0;
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        assert_stopped_for_good(child);
}

/* Another uid's Call whose caller leaves the bus (cancel-on-disconnect): the same stop. */
static void test_disconnect_group(Fixture *f, gconstpointer unused) {
        g_autofree char *pidfile = fixture_gate_path(f, "child"), *script = survivor_script(pidfile);
        const char *const cmd[] = { "sh", "-c", script, NULL };
        g_auto(GStrv) argv = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) jobs = NULL;
        g_autofree char *path = NULL;
        guint64 id = 0;
        GPid client;
        pid_t child;
        int status;

        if (!fixture_have_root())
                return;
        restart(f);
        /* The helper's Call has no stop-timeout option: the default of 5 s applies. */
        argv = fixture_other_client_argv(f, "call", cmd);
        g_assert_true(g_spawn_async(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, fixture_become_other, NULL,
                                    &client, &error));
        g_assert_no_error(error);
        child = fixture_wait_pid_file(pidfile);
        jobs = fixture_call(f, "ListJobs", NULL, &error);
        g_assert_no_error(error);
        {
                g_autoptr(GVariant) list = g_variant_get_child_value(jobs, 0);
                for (gsize i = 0; i < g_variant_n_children(list); i++) {
                        g_autoptr(GVariant) e = g_variant_get_child_value(list, i);
                        const char *state;
                        guint64 jid;
                        g_variant_get(e, "(t&o&si)", &jid, NULL, &state, NULL);
                        if (g_str_equal(state, "running"))
                                id = jid;
                }
        }
        g_assert_cmpuint(id, >, 0);
        path = fixture_job_path(id);
        g_assert_cmpint(kill(client, SIGKILL), ==, 0);
        g_assert_cmpint(waitpid(client, &status, 0), ==, client);
        g_spawn_close_pid(client);
        /* Its owner is the other uid; root may wait on any job. */
        wait_for_end(f, path, "org.procpool.Error.Cancelled", child);
        assert_stopped_for_good(child);
        fixture_assert_answers(f);
}

/* ---- a main process that left its process group ------------------------------------------------------ */

/* Cancel sent SIGTERM to the job's process group only: a main process that had moved into another group
 * never got it, nor the SIGKILL after the stop timeout, and the job never ended. */
static void test_cancel_moved_main(Fixture *f, gconstpointer unused) {
        g_autofree char *pidfile = fixture_gate_path(f, "main"), *script = moved_main_script(FALSE);
        const char *const argv[] = { "perl", "-e", script, pidfile, NULL };
        g_autofree char *path = NULL;
        pid_t main_pid;

        restart(f);
        path = fixture_submit(f, argv, stop_options(0));
        main_pid = fixture_wait_pid_file(pidfile);
        g_assert_cmpuint(fixture_job_pid(f, path), ==, (guint32) main_pid);
        fixture_job_call_ok(f, path, "Cancel", NULL);
        wait_for_end(f, path, "org.procpool.Error.Cancelled", main_pid);
        assert_stopped_for_good(main_pid);
        /* SIGTERM reached it, not the SIGKILL after the stop timeout. */
        fixture_assert_outcome(f, path, "cancelled", -SIGTERM);
        fixture_assert_answers(f);
}

/* The same main process ignoring SIGTERM: the timeout's SIGKILL reaches it by its pidfd. */
static void test_timeout_moved_main(Fixture *f, gconstpointer unused) {
        g_autofree char *pidfile = fixture_gate_path(f, "main"), *script = moved_main_script(TRUE);
        const char *const argv[] = { "perl", "-e", script, pidfile, NULL };
        g_autofree char *path = NULL;
        pid_t main_pid;

        restart(f);
        path = fixture_submit(f, argv, stop_options(STOP_TIMEOUT_USEC));
        main_pid = fixture_wait_pid_file(pidfile);
        wait_for_end(f, path, "org.procpool.Error.TimedOut", main_pid);
        assert_stopped_for_good(main_pid);
        fixture_assert_outcome(f, path, "timed-out", -SIGKILL);
        fixture_assert_answers(f);
}

/* Kill() reaches it too. */
static void test_kill_moved_main(Fixture *f, gconstpointer unused) {
        g_autofree char *pidfile = fixture_gate_path(f, "main"), *script = moved_main_script(FALSE);
        const char *const argv[] = { "perl", "-e", script, pidfile, NULL };
        g_autofree char *path = NULL;
        pid_t main_pid;

        restart(f);
        path = fixture_submit(f, argv, NULL);
        main_pid = fixture_wait_pid_file(pidfile);
        fixture_job_call_ok(f, path, "Kill", g_variant_new("(i)", SIGUSR1));
        wait_for_end(f, path, NULL, main_pid);
        assert_stopped_for_good(main_pid);
        fixture_assert_outcome(f, path, "killed", -SIGUSR1);
        fixture_assert_answers(f);
}

/* The daemon's SIGTERM, with the moved main process ignoring SIGTERM: the daemon exits once it is killed. */
static void test_shutdown_moved_main(Fixture *f, gconstpointer unused) {
        g_autofree char *pidfile = fixture_gate_path(f, "main"), *script = moved_main_script(TRUE);
        const char *const argv[] = { "perl", "-e", script, pidfile, NULL };
        g_autofree char *path = NULL;
        pid_t main_pid;
        int status;

        restart(f);
        path = fixture_submit(f, argv, stop_options(0));
        main_pid = fixture_wait_pid_file(pidfile);
        status = fixture_stop_daemon(f->daemon_pid);
        f->daemon_pid = 0;
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        assert_stopped_for_good(main_pid);
}

/* ---- main ---------------------------------------------------------------------------------------------- */

#define ADD(name, setup, fn) g_test_add("/procpool/fault/" name, Fixture, NULL, setup, fn, fixture_teardown)

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        ADD("stop-cancel-group", fixture_setup, test_cancel_group);
        ADD("stop-timeout-group", fixture_setup, test_timeout_group);
        ADD("stop-shutdown-group", fixture_setup, test_shutdown_group);
        /* procpoold runs as OTHER_UID: root and that uid may both run jobs through it. */
        ADD("stop-disconnect-group", fixture_setup_open_bus_other_daemon, test_disconnect_group);
        ADD("stop-cancel-moved-main", fixture_setup, test_cancel_moved_main);
        ADD("stop-timeout-moved-main", fixture_setup, test_timeout_moved_main);
        ADD("stop-kill-moved-main", fixture_setup, test_kill_moved_main);
        ADD("stop-shutdown-moved-main", fixture_setup, test_shutdown_moved_main);
        return g_test_run();
}
