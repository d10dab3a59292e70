/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* procpoolctl output end to end: output of any size through OpenOutput's fds, and --follow of running
 * jobs to their exit codes, against procpoold on a private bus. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "fixture.h"

#define MiB (1024ULL * 1024ULL)

/* A procpoolctl started with its stdout and stderr on pipes of ours, read while it runs. */
typedef struct Ctl {
        GPid pid;
        int out, err;
        GString *out_text, *err_text;
} Ctl;

static const char *ctl_path(void) {
        const char *p = g_getenv("PROCPOOLCTL");
        g_assert_nonnull(p); /* set by meson test */
        return p;
}

/* argv for procpoolctl --address=<f's bus> args... */
static GPtrArray *ctl_argv(Fixture *f, const char *const *args) {
        GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);

        g_ptr_array_add(argv, g_strdup(ctl_path()));
        g_ptr_array_add(argv, g_strdup_printf("--address=%s", f->address));
        for (const char *const *a = args; *a; a++)
                g_ptr_array_add(argv, g_strdup(*a));
        g_ptr_array_add(argv, NULL);
        return argv;
}

static void ctl_start(Fixture *f, gboolean as_other, const char *const *args, Ctl *ret) {
        g_autoptr(GPtrArray) argv = ctl_argv(f, args);
        g_autoptr(GError) error = NULL;

        *ret = (Ctl) { .out_text = g_string_new(NULL), .err_text = g_string_new(NULL) };
        g_assert_true(g_spawn_async_with_pipes(NULL, (char **) argv->pdata, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                               as_other ? fixture_become_other : NULL, NULL, &ret->pid, NULL,
                                               &ret->out, &ret->err, &error));
        g_assert_no_error(error);
}

/* Reads whatever is there on either pipe, waiting for it; FALSE once both are at EOF. */
static gboolean ctl_read_some(Ctl *c) {
        struct pollfd p[2] = { { .fd = c->out, .events = POLLIN }, { .fd = c->err, .events = POLLIN } };
        GString *texts[2] = { c->out_text, c->err_text };
        int *fds[2] = { &c->out, &c->err };

        if (c->out < 0 && c->err < 0)
                return FALSE;
        /* a guard against hanging the suite, not a timing requirement */
        g_assert_cmpint(poll(p, 2, 60000), >, 0);
        for (int i = 0; i < 2; i++) {
                char chunk[65536];
                ssize_t n;

                if (*fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                        continue;
                n = read(*fds[i], chunk, sizeof chunk);
                if (n < 0 && errno == EINTR)
                        continue;
                g_assert_cmpint(n, >=, 0);
                if (n == 0) {
                        close(*fds[i]);
                        *fds[i] = -1;
                } else
                        g_string_append_len(texts[i], chunk, n);
        }
        return TRUE;
}

/* Reads until text holds needle: what procpoolctl printed while the job still runs. */
static void ctl_read_until(Ctl *c, GString *text, const char *needle) {
        while (!strstr(text->str, needle))
                g_assert_true(ctl_read_some(c));
}

/* Reads to the end and returns procpoolctl's exit code (128+N for signal N). */
static int ctl_finish(Ctl *c) {
        int status;

        while (ctl_read_some(c))
                ;
        g_assert_cmpint(waitpid(c->pid, &status, 0), ==, c->pid);
        g_spawn_close_pid(c->pid);
        g_test_message("procpoolctl -> %d\nstdout: %.200s\nstderr: %.500s", status, c->out_text->str,
                       c->err_text->str);
        return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

static void ctl_clear(Ctl *c) {
        g_string_free(c->out_text, TRUE);
        g_string_free(c->err_text, TRUE);
}

/* Runs procpoolctl to its end; its stdout and stderr in ret_out and ret_err (free them). */
static int ctl_run(Fixture *f, gboolean as_other, const char *const *args, char **ret_out, char **ret_err) {
        Ctl c;
        int status;

        ctl_start(f, as_other, args, &c);
        status = ctl_finish(&c);
        *ret_out = g_strdup(c.out_text->str);
        *ret_err = g_strdup(c.err_text->str);
        ctl_clear(&c);
        return status;
}

/* Submits sh -c script through procpoolctl; returns the id as printed. */
static char *ctl_submit(Fixture *f, gboolean as_other, const char *script, const char *arg) {
        const char *const args[] = { "submit", "--", "sh", "-c", script, "sh", arg, NULL };
        g_autofree char *out = NULL, *err = NULL;

        g_assert_cmpint(ctl_run(f, as_other, args, &out, &err), ==, 0);
        return g_strstrip(g_steal_pointer(&out));
}

static char *make_tmp_dir(void) {
        g_autoptr(GError) error = NULL;
        char *dir = g_dir_make_tmp("procpool-cli-output-XXXXXX", &error);

        g_assert_no_error(error);
        return dir;
}

static char *checksum_file(const char *path, guint64 *ret_size) {
        g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
        g_autofree guchar *buf = g_malloc(MiB);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        guint64 size = 0;

        g_assert_cmpint(fd, >=, 0);
        for (;;) {
                ssize_t n = read(fd, buf, MiB);
                g_assert_cmpint(n, >=, 0);
                if (n == 0)
                        break;
                g_checksum_update(sum, buf, n);
                size += (guint64) n;
        }
        close(fd);
        *ret_size = size;
        return g_strdup(g_checksum_get_string(sum));
}

/* Whether procpoolctl is built with AddressSanitizer, whose shadow memory makes its RSS meaningless. */
static gboolean ctl_has_asan(void) {
        g_autofree char *binary = NULL;
        gsize size;

        g_assert_true(g_file_get_contents(ctl_path(), &binary, &size, NULL));
        return memmem(binary, size, "__asan_init", strlen("__asan_init")) != NULL;
}

/* ---- output of any size ---------------------------------------------------------------------------- */

static void test_large(Fixture *f, gconstpointer unused) {
        g_autofree char *dir = make_tmp_dir();
        g_autofree char *copy = g_build_filename(dir, "copy", NULL),
                        *got = g_build_filename(dir, "got", NULL);
        g_autofree char *got_err = g_build_filename(dir, "got-err", NULL);
        g_autofree char *id = NULL, *expected_sum = NULL, *got_sum = NULL, *err_text = NULL;
        const char *script = "head -c 48M /dev/urandom | tee \"$1\"; echo done >&2";
        g_autoptr(GPtrArray) argv = NULL;
        g_autoptr(GError) error = NULL;
        guint64 expected_size, got_size;
        struct rusage ru;
        int out_fd, err_fd, status;
        GPid pid;

        /* 48 MiB: far more than one bus message carries on this bus (GetOutput's 15 MiB a stream). */
        id = ctl_submit(f, FALSE, script, copy);
        {
                g_autofree char *out = NULL, *err = NULL;
                g_assert_cmpint(ctl_run(f, FALSE, (const char *const[]) { "wait", id, NULL }, &out, &err), ==,
                                0);
        }

        /* Into files, so that what procpoolctl itself holds can be measured: its peak RSS. */
        argv = ctl_argv(f, (const char *const[]) { "output", id, NULL });
        out_fd = open(got, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        err_fd = open(got_err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        g_assert_cmpint(out_fd, >=, 0);
        g_assert_cmpint(err_fd, >=, 0);
        g_assert_true(g_spawn_async_with_fds(NULL, (char **) argv->pdata, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                             NULL, NULL, &pid, -1, out_fd, err_fd, &error));
        g_assert_no_error(error);
        close(out_fd);
        close(err_fd);
        g_assert_cmpint(wait4(pid, &status, 0, &ru), ==, pid);
        g_spawn_close_pid(pid);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);

        expected_sum = checksum_file(copy, &expected_size);
        got_sum = checksum_file(got, &got_size);
        g_assert_cmpuint(expected_size, ==, 48 * MiB);
        g_assert_cmpuint(got_size, ==, expected_size);
        g_assert_cmpstr(got_sum, ==, expected_sum);
        g_assert_true(g_file_get_contents(got_err, &err_text, NULL, NULL));
        g_assert_cmpstr(err_text, ==, "done\n");
        g_test_message("procpoolctl output: peak RSS %ld KiB", ru.ru_maxrss);
        if (!ctl_has_asan())
                g_assert_cmpint(ru.ru_maxrss, <, 16 * 1024); /* chunks, never the whole */
        fixture_remove_tree(dir);
}

/* ---- --follow ---------------------------------------------------------------------------------------- */

static const char gated_script[] = "echo one; echo e1 >&2; while [ ! -e \"$1\" ]; do sleep 0.01; done; "
                                   "echo two; echo e2 >&2; exit 7";

/* Follows a gated job: what it writes before the gate shows while it runs, and procpoolctl ends with it,
 * with its code. */
static void follow_gated(Fixture *f, gboolean as_other) {
        g_autofree char *dir = make_tmp_dir();

        /* Another uid's job runs as that uid: it must see the gate. */
        g_assert_cmpint(chmod(dir, 0755), ==, 0);
        g_autofree char *gate = g_build_filename(dir, "gate", NULL);
        g_autofree char *id = ctl_submit(f, as_other, gated_script, gate);
        Ctl c;

        ctl_start(f, as_other, (const char *const[]) { "output", "--follow", id, NULL }, &c);
        ctl_read_until(&c, c.out_text, "one\n");
        ctl_read_until(&c, c.err_text, "e1\n");
        g_assert_cmpstr(c.out_text->str, ==, "one\n"); /* the job waits for the gate: nothing more yet */

        g_assert_true(g_file_set_contents(gate, "", 0, NULL));
        g_assert_cmpint(ctl_finish(&c), ==, 7);
        g_assert_cmpstr(c.out_text->str, ==, "one\ntwo\n");
        g_assert_cmpstr(c.err_text->str, ==, "e1\ne2\n");
        ctl_clear(&c);
        fixture_remove_tree(dir);
}

static void test_follow(Fixture *f, gconstpointer unused) {
        follow_gated(f, FALSE);
}

/* Another uid than the daemon's has fds on files it may not read by path, so inotify refuses them:
 * procpoolctl looks for new bytes on a timer instead, with the same result. */
static void test_follow_other_uid(Fixture *f, gconstpointer unused) {
        if (getuid() != 0) {
                g_test_skip("needs root to act as another uid");
                return;
        }
        follow_gated(f, TRUE);
}

static void test_follow_ends(Fixture *f, gconstpointer unused) {
        static const struct {
                const char *script;
                const char *option; /* of submit, or NULL */
                int code;
                const char *out, *err;
        } cases[] = {
                { "echo done; exit 3", NULL, 3, "done\n", "" },
                { "echo bye; kill -TERM $$", NULL, 128 + SIGTERM, "bye\n", "" },
                { "echo slow; exec sleep 600", "--timeout=100ms", 124, "slow\n", "timed out" },
        };

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GPtrArray) args = g_ptr_array_new();
                g_autofree char *id = NULL, *out = NULL, *err = NULL;

                g_ptr_array_add(args, "submit");
                if (cases[i].option)
                        g_ptr_array_add(args, (char *) cases[i].option);
                g_ptr_array_add(args, "--");
                g_ptr_array_add(args, "sh");
                g_ptr_array_add(args, "-c");
                g_ptr_array_add(args, (char *) cases[i].script);
                g_ptr_array_add(args, NULL);
                g_assert_cmpint(ctl_run(f, FALSE, (const char *const *) args->pdata, &id, &err), ==, 0);
                g_strstrip(id);
                g_clear_pointer(&err, g_free);

                /* Followed from wherever it is, to its end, with the code 'wait' gives. */
                g_assert_cmpint(
                        ctl_run(f, FALSE, (const char *const[]) { "output", "-f", id, NULL }, &out, &err), ==,
                        cases[i].code);
                g_assert_cmpstr(out, ==, cases[i].out);
                g_assert_true(strstr(err, cases[i].err) != NULL);
                g_clear_pointer(&out, g_free);
                g_clear_pointer(&err, g_free);

                /* Once it has ended, --follow prints it all and ends at once, the same way. */
                g_assert_cmpint(
                        ctl_run(f, FALSE, (const char *const[]) { "output", "-f", id, NULL }, &out, &err), ==,
                        cases[i].code);
                g_assert_cmpstr(out, ==, cases[i].out);
        }
}

static void test_follow_usage(Fixture *f, gconstpointer unused) {
        g_autofree char *out = NULL, *err = NULL;

        g_assert_cmpint(ctl_run(f, FALSE, (const char *const[]) { "output", "--follow", NULL }, &out, &err),
                        ==, 2);
        g_clear_pointer(&out, g_free);
        g_clear_pointer(&err, g_free);
        g_assert_cmpint(ctl_run(f, FALSE, (const char *const[]) { "list", "--follow", NULL }, &out, &err), ==,
                        2);
        g_assert_true(strstr(err, "--follow") != NULL);
        g_assert_cmpstr(out, ==, "");
        g_clear_pointer(&out, g_free);
        g_clear_pointer(&err, g_free);
        g_assert_cmpint(ctl_run(f, FALSE, (const char *const[]) { "output", "-f", "9999", NULL }, &out, &err),
                        ==, 1);
        g_assert_cmpstr(err, ==, "Job 9999 could not be found.\n");
}

/* ---- status of a job whose output did not fit ------------------------------------------------------- */

static void test_status_incomplete(Fixture *f, gconstpointer unused) {
        g_autofree char *mnt = NULL, *state_arg = NULL, *id = NULL, *out = NULL, *err = NULL;
        int status;

        if (getuid() != 0) {
                g_test_skip("needs root to mount a small tmpfs");
                return;
        }
        /* As in test-output.c: a 16 MiB state dir, in a mount namespace of the test's own. */
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                g_test_message("no mount namespace of our own (%s): mounting in the test's",
                               g_strerror(errno));
        mnt = make_tmp_dir();
        if (mount("tmpfs", mnt, "tmpfs", 0, "size=16m") < 0) {
                g_autofree char *why = g_strdup_printf("cannot mount a tmpfs: %s", g_strerror(errno));
                g_test_skip(why);
                g_rmdir(mnt);
                return;
        }
        state_arg = g_strdup_printf("--state-dir=%s/state", mnt);
        f->daemon_pid = fixture_start_daemon(f, (const char *const[]) { state_arg, NULL });

        id = ctl_submit(f, FALSE, "yes | head -c 64M", NULL);
        g_assert_cmpint(ctl_run(f, FALSE, (const char *const[]) { "wait", id, NULL }, &out, &err), ==, 0);
        g_clear_pointer(&out, g_free);
        g_clear_pointer(&err, g_free);
        g_assert_cmpint(ctl_run(f, FALSE, (const char *const[]) { "status", id, NULL }, &out, &err), ==, 0);
        g_assert_nonnull(strstr(out, "\n     Output: incomplete: "));
        g_clear_pointer(&out, g_free);
        g_clear_pointer(&err, g_free);
        g_assert_cmpint(ctl_run(f, FALSE, (const char *const[]) { "--json", "status", id, NULL }, &out, &err),
                        ==, 0);
        g_assert_nonnull(strstr(out, "\"output_incomplete\":true}"));
        g_clear_pointer(&out, g_free);
        g_clear_pointer(&err, g_free);

        /* A job whose output is whole says nothing of it. */
        g_assert_cmpint(ctl_run(f, FALSE, (const char *const[]) { "release", id, NULL }, &out, &err), ==, 0);
        g_clear_pointer(&out, g_free);
        g_clear_pointer(&err, g_free);
        g_assert_cmpint(ctl_run(f, FALSE, (const char *const[]) { "submit", "--wait", "--", "true", NULL },
                                &out, &err),
                        ==, 0);
        g_free(id);
        id = g_strstrip(g_steal_pointer(&out));
        g_clear_pointer(&err, g_free);
        g_assert_cmpint(ctl_run(f, FALSE, (const char *const[]) { "status", id, NULL }, &out, &err), ==, 0);
        g_assert_null(strstr(out, "Output:"));

        status = fixture_stop_daemon(f->daemon_pid);
        f->daemon_pid = 0;
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        g_assert_cmpint(umount(mnt), ==, 0);
        g_assert_cmpint(g_rmdir(mnt), ==, 0);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);

#define ADD(name, setup, fn) \
        g_test_add("/procpool/cli/output/" name, Fixture, NULL, setup, fn, fixture_teardown)
        ADD("large", fixture_setup, test_large);
        ADD("follow", fixture_setup, test_follow);
        /* The system instance: another uid runs jobs there, as itself. */
        ADD("follow/other-uid", fixture_setup_system, test_follow_other_uid);
        ADD("follow/ends", fixture_setup, test_follow_ends);
        ADD("follow/usage", fixture_setup, test_follow_usage);
        ADD("status/incomplete", fixture_setup_no_daemon, test_status_incomplete);
#undef ADD
        return g_test_run();
}
