/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fault suite's resources: a child that leaves its input unread, the daemon killed, and no fds
 * or processes left to start jobs with; the daemon goes on or is replaced. */
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

/* The daemon of the EAGAIN case runs as a user of its own, so that no other test's processes count
 * against its RLIMIT_NPROC; the bus wants the uid to have an entry in the user database. */
#define NPROC_USER "games"

#define MiB (1024U * 1024U)

static const char *const argv_true[] = { "true", NULL };
static const char *const argv_sleep[] = { "sleep", "1000", NULL };

static void test_stdin_unread(Fixture *f, gconstpointer unused) {
        const char *const exit3[] = { "sh", "-c", "head -c 1 >/dev/null; exit 3", NULL };
        gsize size = 8 * MiB;
        g_autofree char *input = g_malloc0(size);
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) out = NULL, err = NULL, out2 = NULL, err2 = NULL;
        int rc;

        /* The child is gone before the input is written: EPIPE for the daemon, never SIGPIPE, and the
         * child's own exit code in the reply. */
        g_assert_true(fixture_communicate(f, (const char *const *) argv_true, input, size, NULL, &rc, &out,
                                          &err, &error));
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 0);
        g_assert_true(fixture_communicate(f, exit3, input, size, NULL, &rc, &out2, &err2, &error));
        g_assert_no_error(error);
        g_assert_cmpint(rc, ==, 3);
        fixture_assert_answers(f);
}

/* Gone, or a zombie nobody reaps (its parent died): either way not running. */
static gboolean process_dead(pid_t pid) {
        char state;

        return !fixture_proc_stat(pid, &state, NULL, NULL) || state == 'Z' || state == 'X';
}

static void test_sigkill_daemon(Fixture *f, gconstpointer unused) {
        g_autofree char *pidfile = fixture_gate_path(f, "pid");
        g_autofree char *script = g_strdup_printf("sleep 1000 & echo $! > %s.tmp; mv %s.tmp %s; wait",
                                                  pidfile, pidfile, pidfile);
        const char *const tree[] = { "sh", "-c", script, NULL };
        g_autofree char *p1 = fixture_submit_sleeper(f, NULL), *p2 = NULL, *text = NULL;
        guint32 pid1, pid2;
        pid_t grandchild;
        int status;

        p2 = fixture_submit(f, tree, NULL);
        g_assert_true(fixture_wait_state(f, p2, "running"));
        g_assert_true(fixture_wait_for_file(pidfile));
        g_assert_true(g_file_get_contents(pidfile, &text, NULL, NULL));
        grandchild = atoi(text);
        pid1 = fixture_job_pid(f, p1);
        pid2 = fixture_job_pid(f, p2);
        g_assert_cmpuint(pid1, >, 0);
        g_assert_cmpuint(pid2, >, 0);

        g_assert_cmpint(kill(f->daemon_pid, SIGKILL), ==, 0);
        g_assert_cmpint(waitpid(f->daemon_pid, &status, 0), ==, f->daemon_pid);
        f->daemon_pid = 0;

        /* Each job's main process dies with the daemon (PR_SET_PDEATHSIG). */
        g_assert_true(fixture_wait_pid_exit(pid1));
        g_assert_true(fixture_wait_pid_exit(pid2));
        /* A descendant is not the daemon's child: without per-job cgroups it is left to itself (see
         * docs/reliability.md); the test stops it. */
        g_test_message("descendant %d after SIGKILL of the daemon: %s", grandchild,
                       process_dead(grandchild) ? "gone" : "still running, as documented");
        (void) kill(grandchild, SIGKILL);

        /* A new daemon takes over the bus name and answers. */
        f->daemon_pid = fixture_start_daemon(f, NULL);
        fixture_assert_answers(f);
}

static const char *const args_emfile[] = { "--pool-size=64", NULL };

/* Runs sleepers until starting one fails; returns how many run and checks the failure. */
static guint fill_until_failure(Fixture *f, guint n, const char *errno_text) {
        guint running = 0, failed = 0;

        for (guint i = 0; i < n; i++)
                g_free(fixture_submit(f, (const char *const *) argv_sleep, NULL));
        for (guint id = 1; id <= n; id++) {
                g_autofree char *p = fixture_job_path(id);
                g_assert_true(fixture_wait_started(f, p));
        }
        for (guint id = 1; id <= n; id++) {
                g_autofree char *p = fixture_job_path(id), *state = NULL, *error = NULL;
                fixture_job_outcome(f, p, &state, NULL, &error);
                if (g_str_equal(state, "running"))
                        running++;
                else {
                        g_assert_cmpstr(state, ==, "failed");
                        if (!strstr(error, errno_text))
                                g_error("job %u failed with \"%s\", expected \"%s\"", id, error, errno_text);
                        failed++;
                }
        }
        g_test_message("%u running, %u failed with %s", running, failed, errno_text);
        g_assert_cmpuint(running, >, 0);
        g_assert_cmpuint(failed, >, 0);
        return running;
}

static void cancel_all(Fixture *f, guint n) {
        for (guint id = 1; id <= n; id++) {
                g_autofree char *p = fixture_job_path(id), *state = fixture_job_state(f, p);
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) r = NULL;
                if (!g_str_equal(state, "running"))
                        continue;
                r = fixture_job_call(f, p, "Cancel", NULL, &error);
                g_assert_no_error(error);
                g_assert_true(fixture_wait_state(f, p, "cancelled"));
        }
}

static void test_emfile(Fixture *f, gconstpointer unused) {
        struct rlimit low, old;
        guint base = fixture_proc_fd_count(f->daemon_pid);
        g_autoptr(GError) error = NULL;

        /* Room for a few jobs' pipes and pidfds, not for 12. */
        g_assert_cmpint(prlimit(f->daemon_pid, RLIMIT_NOFILE, NULL, &old), ==, 0);
        low = (struct rlimit) { .rlim_cur = base + 12, .rlim_max = old.rlim_max };
        g_assert_cmpint(prlimit(f->daemon_pid, RLIMIT_NOFILE, &low, NULL), ==, 0);

        fill_until_failure(f, 12, "Too many open files");
        /* A Call now fails the same way, as a job; the daemon itself goes on. */
        fixture_expect_call_error(f, (const char *const *) argv_true, NULL, "org.procpool.Error.SpawnFailed",
                                  "Too many open files");

        /* The running jobs were not harmed; once they go, jobs start again under the same limit. */
        cancel_all(f, 12);
        fixture_assert_answers(f);
        fixture_assert_answers(f);
        g_assert_cmpint(prlimit(f->daemon_pid, RLIMIT_NOFILE, &old, NULL), ==, 0);
        fixture_assert_answers(f);
}

static guint processes_of_uid(uid_t uid) {
        g_autoptr(GArray) pids = fixture_proc_pids();
        guint n = 0;

        for (guint i = 0; i < pids->len; i++) {
                g_autofree char *file = g_strdup_printf("/proc/%d/status", g_array_index(pids, pid_t, i));
                g_autofree char *text = NULL;
                const char *p;
                if (!g_file_get_contents(file, &text, NULL, NULL) || !(p = strstr(text, "\nUid:")))
                        continue;
                if ((uid_t) g_ascii_strtoull(p + 5, NULL, 10) == uid)
                        n++;
        }
        return n;
}

static uid_t nproc_uid;

static void become_nproc_user(gpointer data) {
        struct rlimit l = { .rlim_cur = GPOINTER_TO_UINT(data), .rlim_max = GPOINTER_TO_UINT(data) };

        if (setrlimit(RLIMIT_NPROC, &l) < 0 || setgroups(0, NULL) < 0 || setgid(nproc_uid) < 0 ||
            setuid(nproc_uid) < 0)
                _exit(99);
}

static void test_eagain(Fixture *f, gconstpointer unused) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
        struct passwd *pw = getpwnam(NPROC_USER);
        g_autofree char *state_dir = NULL;

        if (!fixture_have_root())
                return;
        if (!pw) {
                g_test_skip("no user " NPROC_USER " to run the daemon as");
                return;
        }
        nproc_uid = pw->pw_uid;
        if (processes_of_uid(nproc_uid) > 0) {
                g_test_skip("processes of user " NPROC_USER " exist already");
                return;
        }
        /* The daemon as a plain uid with room for itself and two jobs: the third fork gets EAGAIN. */
        g_assert_cmpint(fixture_stop_daemon(f->daemon_pid), ==, 0);
        f->daemon_pid = 0;
        /* It keeps its store, as every daemon of the suite does, where that uid may write. */
        state_dir = g_dir_make_tmp("procpool-state-XXXXXX", &error);
        g_assert_no_error(error);
        g_assert_no_errno(chown(state_dir, nproc_uid, pw->pw_gid));
        g_ptr_array_add(argv, g_strdup(g_getenv("PROCPOOLD")));
        g_ptr_array_add(argv, g_strdup_printf("--address=%s", f->address));
        g_ptr_array_add(argv, g_strdup("--pool-size=8"));
        g_ptr_array_add(argv, g_strdup_printf("--state-dir=%s", state_dir));
        g_ptr_array_add(argv, NULL);
        g_assert_true(g_spawn_async("/", (char **) argv->pdata, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                    become_nproc_user, GUINT_TO_POINTER(3), &f->daemon_pid, &error));
        g_assert_no_error(error);
        fixture_wait_for_name(f, f->daemon_pid);

        g_assert_cmpuint(fill_until_failure(f, 4, "Resource temporarily unavailable"), ==, 2);
        fixture_expect_call_error(f, (const char *const *) argv_true, NULL, "org.procpool.Error.SpawnFailed",
                                  "Resource temporarily unavailable");
        cancel_all(f, 4);
        fixture_assert_answers(f);
        fixture_assert_answers(f);
        /* The daemon holds its state dir until it stops. */
        g_assert_cmpint(fixture_stop_daemon(f->daemon_pid), ==, 0);
        f->daemon_pid = 0;
        fixture_remove_tree(state_dir);
}

/* ---- main ---------------------------------------------------------------------------------------- */

#define ADD(name, setup, args, fn) FIXTURE_ADD("/procpool/fault/" name, setup, args, fn)

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        ADD("stdin-unread", fixture_setup, NULL, test_stdin_unread);
        ADD("sigkill-daemon", fixture_setup, NULL, test_sigkill_daemon);
        ADD("emfile", fixture_setup, args_emfile, test_emfile);
        ADD("eagain", fixture_setup_open_bus, NULL, test_eagain);
        return g_test_run();
}
