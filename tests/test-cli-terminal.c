/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* procpoolctl call on a real terminal: an interactive bash with job control on a pseudo-terminal the test
 * types into. Ctrl-Z pauses the job and stops procpoolctl, fg lets both go on; a job reads the terminal
 * procpoolctl passed it without SIGTTIN; a queued call says how many jobs are ahead of it. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "cli-common.h"

static const char *const pool_of_one[] = { "--pool-size=1", NULL };

typedef struct {
        int master;
        GPid pid;
        GString *screen; /* everything the terminal showed so far */
        gsize seen;      /* what shell_expect() matched up to */
} Shell;

static void become_session_leader(gpointer unused) {
        /* stdin is the pty's slave by now: it becomes the shell's controlling terminal */
        (void) setsid();
        (void) ioctl(STDIN_FILENO, TIOCSCTTY, 0);
}

/* bash -i on a new pty, with procpoolctl of the build first in its PATH. */
static void shell_start(Fixture *f, Shell *sh) {
        g_autofree char *bindir = g_path_get_dirname(ctl_path());
        g_autofree char *path_env = g_strdup_printf("PATH=%s:%s", bindir, g_getenv("PATH"));
        g_autofree char *address_env = g_strdup_printf("PROCPOOL_ADDRESS=%s", f->address);
        const char *envp[] = {
                path_env,         address_env, "TERM=dumb", "PS1=PROMPT> ", "HISTFILE=/dev/null",
                "LC_ALL=C.UTF-8", NULL
        };
        const char *argv[] = { "bash", "--norc", "--noprofile", "-i", NULL };
        g_autoptr(GError) error = NULL;
        int slave;

        sh->master = open_pty(200, &slave);
        sh->screen = g_string_new(NULL);
        sh->seen = 0;
        g_assert_true(g_spawn_async_with_fds(
                NULL, (char **) argv, (char **) envp, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                become_session_leader, NULL, &sh->pid, slave, slave, slave, &error));
        g_assert_no_error(error);
        close(slave);
}

/* Waits until the terminal shows needle after what was matched last. */
static void shell_expect(Shell *sh, const char *needle) {
        const char *at;

        while (!(at = strstr(sh->screen->str + sh->seen, needle))) {
                struct pollfd pfd = { .fd = sh->master, .events = POLLIN };
                char chunk[4096];
                ssize_t n;

                /* a guard against hanging the suite, not a timing requirement */
                if (poll(&pfd, 1, FIXTURE_WAIT_SEC * 1000) != 1) {
                        g_test_message("waited for '%s'; the terminal showed:\n%s", needle, sh->screen->str);
                        g_assert_not_reached();
                }
                n = read(sh->master, chunk, sizeof chunk);
                if (n < 0 && errno == EINTR)
                        continue;
                g_assert_cmpint(n, >, 0);
                g_string_append_len(sh->screen, chunk, n);
        }
        sh->seen = (gsize) (at - sh->screen->str) + strlen(needle);
}

static void shell_type(Shell *sh, const char *text) {
        g_assert_cmpint(write(sh->master, text, strlen(text)), ==, (ssize_t) strlen(text));
}

/* exit ends the shell; no SIGHUP goes with it: bash drops one that comes while readline reads the line,
 * the line with it, and waits for input for good. A shell that is still there after the guard is killed, so
 * that the test fails rather than hangs. */
static void shell_stop(Shell *sh) {
        gboolean exited;
        int status;

        shell_type(sh, "exit\n");
        exited = fixture_wait_pid_exit(sh->pid);
        if (!exited)
                (void) kill(sh->pid, SIGKILL);
        g_assert_cmpint(waitpid(sh->pid, &status, 0), ==, sh->pid);
        g_spawn_close_pid(sh->pid);
        if (!exited)
                g_test_message("the shell did not exit; the terminal showed:\n%s", sh->screen->str);
        g_assert_true(exited);
        close(sh->master);
        g_test_message("the terminal showed:\n%s", sh->screen->str);
        g_string_free(sh->screen, TRUE);
}

static gboolean on_tick(gpointer data) {
        return G_SOURCE_CONTINUE;
}

/* Every live process of the group (data: its id) is stopped. */
static gboolean group_stopped(gpointer data) {
        g_autoptr(GArray) now = fixture_proc_group(GPOINTER_TO_INT(data));
        char state;

        for (guint i = 0; i < now->len; i++)
                if (fixture_proc_stat(g_array_index(now, pid_t, i), &state, NULL, NULL) && state != 'T')
                        return FALSE;
        return now->len > 0;
}

typedef struct {
        Fixture *f;
        const char *path;
        gboolean paused;
} PausedWait;

static gboolean paused_is(gpointer data) {
        PausedWait *w = data;
        g_autoptr(GVariant) v = fixture_get_property(w->f, w->path, JOB_IFACE, "Paused");
        return g_variant_get_boolean(v) == w->paused;
}

static gboolean wait_paused(Fixture *f, const char *path, gboolean paused) {
        PausedWait w = { f, path, paused };
        guint tick = g_timeout_add(10, on_tick, NULL);
        gboolean met = fixture_iterate_until(paused_is, &w);

        g_source_remove(tick);
        return met;
}

/* ---- Ctrl-Z and fg ------------------------------------------------------------------------------------ */

static void test_ctrl_z(Fixture *f, gconstpointer data) {
        g_autofree char *started = fixture_gate_path(f, "started"), *go = fixture_gate_path(f, "go");
        /* One process that forks nothing: a shell polling the gate would vfork() its sleeps, and one
         * stopped between vfork() and exec() holds the shell in uninterruptible sleep ('D'), not 'T'. */
        g_autofree char *command = g_strdup_printf(
                "procpoolctl --address=\"$PROCPOOL_ADDRESS\" call -- python3 -c 'import os, sys, time; "
                "open(\"%s\", \"w\").close(); "
                "[time.sleep(0.01) for _ in iter(lambda: os.path.exists(\"%s\"), True)]; sys.exit(3)'\n",
                started, go);
        g_autofree char *path = NULL;
        Shell sh;

        shell_start(f, &sh);
        shell_expect(&sh, "PROMPT> ");
        shell_type(&sh, command);
        g_assert_true(fixture_wait_for_file(started));
        path = fixture_job_path(last_job(f));

        /* Ctrl-Z: the job is paused before the shell gets the terminal back */
        shell_type(&sh, "\x1a");
        shell_expect(&sh, "Stopped");
        shell_expect(&sh, "PROMPT> ");
        g_assert_true(wait_paused(f, path, TRUE));
        fixture_assert_state(f, path, "running");
        if (!fixture_per_job_cgroups(f)) {
                /* what lives of the job's group: the shell, and a sleep of its loop if one runs; SIGSTOP
                 * takes effect as each of them next runs */
                guint tick = g_timeout_add(10, on_tick, NULL);
                g_assert_true(
                        fixture_iterate_until(group_stopped, GINT_TO_POINTER(fixture_job_pid(f, path))));
                g_source_remove(tick);
        }

        /* fg: the job goes on, and call exits with its code */
        fixture_gate_open(go);
        shell_type(&sh, "fg\n");
        g_assert_true(fixture_wait_finished(f, path));
        fixture_assert_outcome(f, path, "exited", 3);
        shell_expect(&sh, "PROMPT> ");
        shell_type(&sh, "echo \"rc=$?\"\n");
        shell_expect(&sh, "rc=3");
        shell_stop(&sh);
}

/* ---- the job reads the terminal procpoolctl passed it --------------------------------------------------- */

/* It is not in the terminal's session, so no SIGTTIN stops it: it reads in the foreground as a local
 * command would, and also while procpoolctl is in the background, where a local command would stop. */
static void test_terminal_input(Fixture *f, gconstpointer data) {
        g_autofree char *started = fixture_gate_path(f, "started");
        g_autofree char *fg = g_strdup_printf(
                "procpoolctl --address=\"$PROCPOOL_ADDRESS\" call -- sh -c 'touch %s; read l; echo \"got:$l\"; "
                "exit 5'\n",
                started);
        g_autofree char *bg = g_strdup_printf(
                "procpoolctl --address=\"$PROCPOOL_ADDRESS\" call -- sh -c 'touch %s; read l; echo \"bg-got:$l\"; "
                "exit 6' & wait $!\n",
                started);
        Shell sh;

        shell_start(f, &sh);
        shell_expect(&sh, "PROMPT> ");
        shell_type(&sh, fg);
        g_assert_true(fixture_wait_for_file(started));
        shell_type(&sh, "hello\n");
        shell_expect(&sh, "got:hello");
        shell_expect(&sh, "PROMPT> ");
        shell_type(&sh, "echo \"rc=$?\"\n");
        shell_expect(&sh, "rc=5");

        /* in the background: the shell waits (and reads nothing), the job reads the line */
        (void) g_unlink(started);
        shell_type(&sh, bg);
        g_assert_true(fixture_wait_for_file(started));
        shell_type(&sh, "there\n");
        shell_expect(&sh, "bg-got:there");
        shell_expect(&sh, "PROMPT> ");
        shell_type(&sh, "echo \"rc=$?\"\n");
        shell_expect(&sh, "rc=6");
        shell_stop(&sh);
}

/* ---- a call that waits for a slot -------------------------------------------------------------------- */

/* A job that holds the pool's one slot until its gate opens. */
static char *hold_slot(Fixture *f, const char *gate) {
        g_autofree char *script = fixture_gate_wait_sh(gate);
        char *path = fixture_job_path(ctl_submit(f, script));

        g_assert_true(fixture_wait_state(f, path, "running"));
        return path;
}

static void test_queued(Fixture *f, gconstpointer data) {
        g_autofree char *go1 = fixture_gate_path(f, "go1"), *go2 = fixture_gate_path(f, "go2");
        g_autofree char *go3 = fixture_gate_path(f, "go3"), *out = fixture_gate_path(f, "stderr");
        g_autofree char *holder = hold_slot(f, go1), *ahead_id = NULL, *quiet_part = NULL;
        g_autofree char *not_tty = g_strdup_printf(
                "procpoolctl --address=\"$PROCPOOL_ADDRESS\" call -- true 2>%s; echo \"bytes=$(wc -c <%s)\"\n",
                out, out);
        guint64 ahead = ctl_submit(f, "exit 0");
        CtlResult r = {};
        gsize from;
        Shell sh;

        ahead_id = g_strdup_printf("%" G_GUINT64_FORMAT, ahead);
        shell_start(f, &sh);
        shell_expect(&sh, "PROMPT> ");
        shell_type(&sh, "procpoolctl --address=\"$PROCPOOL_ADDRESS\" call -- sh -c 'echo ran; exit 4'\n");
        shell_expect(&sh, "\rQueued behind 1 job...\x1b[K");
        /* the job ahead goes: it is next */
        g_assert_cmpint(ctl(f, &r, "cancel", ahead_id, NULL), ==, 0);
        shell_expect(&sh, "\rQueued, next to start...\x1b[K");
        /* the slot frees: the line goes, the job runs */
        fixture_gate_open(go1);
        shell_expect(&sh, "\r\x1b[K");
        shell_expect(&sh, "PROMPT> ");
        g_assert_nonnull(strstr(sh.screen->str, "ran\r\n"));
        shell_type(&sh, "echo \"rc=$?\"\n");
        shell_expect(&sh, "rc=4");
        shell_expect(&sh, "PROMPT> ");

        /* -q: nothing */
        g_free(holder);
        holder = hold_slot(f, go2);
        from = sh.screen->len;
        shell_type(&sh, "procpoolctl --address=\"$PROCPOOL_ADDRESS\" -q call -- true; echo \"rc=$?\"\n");
        g_assert_true(fixture_wait_counts(f, 1, 1));
        fixture_gate_open(go2);
        shell_expect(&sh, "rc=0");
        quiet_part = g_strdup(sh.screen->str + from);
        g_assert_null(strstr(quiet_part, "Queued"));

        /* stderr not a terminal: nothing */
        g_free(holder);
        holder = hold_slot(f, go3);
        shell_type(&sh, not_tty);
        g_assert_true(fixture_wait_counts(f, 1, 1));
        fixture_gate_open(go3);
        shell_expect(&sh, "bytes=0");
        shell_stop(&sh);
        ctl_result_clear(&r);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);

        FIXTURE_ADD("/procpool/cli/terminal/ctrl-z", fixture_setup, NULL, test_ctrl_z);
        FIXTURE_ADD("/procpool/cli/terminal/input", fixture_setup, NULL, test_terminal_input);
        FIXTURE_ADD("/procpool/cli/terminal/queued", fixture_setup, pool_of_one, test_queued);
        return g_test_run();
}
