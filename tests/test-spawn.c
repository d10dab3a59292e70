/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How a job is started: its process group, signals, fds and environment, PATH lookup without a shell
 * fallback, exec failures as SpawnFailed, and no zombie left behind. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "fixture.h"

/* Field n (1-based, after the command name) of /proc/<pid>/stat text. */
static long long stat_field(const char *stat, int n) {
        const char *p = strrchr(stat, ')');
        g_auto(GStrv) fields = NULL;

        g_assert_nonnull(p);
        fields = g_strsplit(p + 2, " ", -1);
        /* fields[0] is the state, field 3. */
        g_assert_cmpuint(g_strv_length(fields), >, (guint) (n - 3));
        return g_ascii_strtoll(fields[n - 3], NULL, 10);
}

static void test_process_group(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "cat", "/proc/self/stat", NULL };
        g_autofree char *stat = fixture_run_output(f, argv, NULL, 0);
        g_autofree char *daemon_stat_path = g_strdup_printf("/proc/%d/stat", f->daemon_pid);
        g_autofree char *daemon_stat = NULL;
        long long pid = g_ascii_strtoll(stat, NULL, 10);

        g_assert_true(g_file_get_contents(daemon_stat_path, &daemon_stat, NULL, NULL));
        /* Its own group, led by itself, not the daemon's. */
        g_assert_cmpint(stat_field(stat, 5), ==, pid);
        g_assert_cmpint(stat_field(stat, 5), !=, stat_field(daemon_stat, 5));
        g_assert_cmpint(stat_field(stat, 4), ==, f->daemon_pid); /* the daemon's child */
}

static char *status_line(const char *status, const char *key) {
        g_auto(GStrv) lines = g_strsplit(status, "\n", -1);
        for (char **l = lines; *l; l++)
                if (g_str_has_prefix(*l, key) && (*l)[strlen(key)] == ':')
                        return g_strdup(g_strstrip(*l + strlen(key) + 1));
        g_error("no %s in status", key);
}

static void test_signals(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "cat", "/proc/self/status", NULL };
        g_autofree char *status = fixture_run_output(f, argv, NULL, 0);
        g_autofree char *daemon_status_path = g_strdup_printf("/proc/%d/status", f->daemon_pid);
        g_autofree char *daemon_status = NULL;
        g_autofree char *d_blk = NULL, *d_ign = NULL;
        static const char *const keys[] = { "SigBlk", "SigIgn", "SigCgt" };

        /* The daemon blocks and ignores signals of its own; none of that reaches a job. */
        g_assert_true(g_file_get_contents(daemon_status_path, &daemon_status, NULL, NULL));
        d_blk = status_line(daemon_status, "SigBlk");
        d_ign = status_line(daemon_status, "SigIgn");
        g_assert_cmpstr(d_blk, !=, "0000000000000000");
        g_assert_cmpstr(d_ign, !=, "0000000000000000");
        for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
                g_autofree char *v = status_line(status, keys[i]);
                g_test_message("%s: %s", keys[i], v);
                g_assert_cmpstr(v, ==, "0000000000000000");
        }
}

static gint compare_int(gconstpointer a, gconstpointer b) {
        return *(const int *) a - *(const int *) b;
}

/* Helper mode: prints the fds open in this process, "0 1 2". */
static int print_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        GString *s = g_string_new(NULL);
        g_autoptr(GArray) fds = g_array_new(FALSE, FALSE, sizeof(int));
        struct dirent *de;

        if (!d)
                return 1;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                int fd = atoi(de->d_name);
                if (fd != dirfd(d))
                        g_array_append_val(fds, fd);
        }
        closedir(d);
        g_array_sort(fds, compare_int);
        for (guint i = 0; i < fds->len; i++)
                g_string_append_printf(s, "%s%d", i ? " " : "", g_array_index(fds, int, i));
        fputs(s->str, stdout);
        g_string_free(s, TRUE);
        return 0;
}

static void test_fds(Fixture *f, gconstpointer unused) {
        g_autofree char *self = fixture_self();
        const char *sleeper[] = { "sleep", "30", NULL };
        const char *argv[] = { self, "--print-fds", NULL };
        g_autofree char *busy = fixture_submit(f, sleeper, NULL);
        g_autofree char *fds = NULL;

        /* With the bus connection and another job's pipes open in the daemon. */
        g_assert_true(fixture_wait_state(f, busy, "running"));
        fds = fixture_run_output(f, argv, NULL, 0);
        g_assert_cmpstr(fds, ==, "0 1 2");
        fixture_job_call_ok(f, busy, "Cancel", NULL);
}

static void test_private_environment(Fixture *f, gconstpointer unused) {
        g_auto(GStrv) env = g_get_environ();
        const char *argv[] = { "env", NULL };
        g_autofree char *out = NULL;

        /* As under systemd with socket activation and a watchdog (for another pid, so that the daemon
         * itself does not act on it). */
        env = g_environ_setenv(env, "NOTIFY_SOCKET", "/nonexistent/procpool-notify", TRUE);
        env = g_environ_setenv(env, "LISTEN_FDS", "0", TRUE);
        env = g_environ_setenv(env, "LISTEN_PID", "1", TRUE);
        env = g_environ_setenv(env, "LISTEN_FDNAMES", "procpool", TRUE);
        env = g_environ_setenv(env, "WATCHDOG_USEC", "600000000", TRUE);
        env = g_environ_setenv(env, "WATCHDOG_PID", "1", TRUE);
        env = g_environ_setenv(env, "PROCPOOL_KEEP", "kept", TRUE);
        f->daemon_pid = fixture_start_daemon_env(f, NULL, (const char *const *) env);

        out = fixture_run_output(f, argv, NULL, 0);
        g_assert_nonnull(strstr(out, "\nPROCPOOL_KEEP=kept\n"));
        g_assert_null(strstr(out, "NOTIFY_SOCKET"));
        g_assert_null(strstr(out, "LISTEN_"));
        g_assert_null(strstr(out, "WATCHDOG_"));
}

/* A directory with executables for PATH lookups; removed by the caller. */
static char *make_bin_dir(void) {
        g_autoptr(GError) error = NULL;
        char *dir = g_dir_make_tmp("procpool-bin-XXXXXX", &error);

        g_assert_no_error(error);
        g_assert_no_errno(chmod(dir, 0755));
        return dir;
}

static void write_file(const char *dir, const char *name, const char *contents, mode_t mode) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autoptr(GError) error = NULL;

        g_assert_true(g_file_set_contents(path, contents, -1, &error));
        g_assert_no_error(error);
        g_assert_no_errno(chmod(path, mode));
}

static void remove_dir(const char *dir) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
        g_autofree char *out = fixture_shell(cmd);
}

static void test_path_lookup(Fixture *f, gconstpointer unused) {
        g_autofree char *d1 = make_bin_dir(), *d2 = make_bin_dir();
        g_autofree char *path = g_strdup_printf("PATH=%s:%s:/usr/bin:/bin", d1, d2);
        const char *env[] = { path, NULL };
        const char *probe[] = { "procpool-probe", "arg", NULL };
        const char *denied_first[] = { "procpool-second", NULL };
        g_autofree char *a = NULL, *b = NULL;

        write_file(d2, "procpool-probe", "#!/bin/sh\necho \"probe $1\"\n", 0755);
        /* Not executable in the first directory: as execvp, the next one is tried. */
        write_file(d1, "procpool-second", "#!/bin/sh\necho first\n", 0644);
        write_file(d2, "procpool-second", "#!/bin/sh\necho second\n", 0755);

        /* The job's own PATH is searched. */
        a = fixture_run_output(f, probe, fixture_options("environment", g_variant_new_strv(env, -1), NULL),
                               0);
        g_assert_cmpstr(a, ==, "probe arg\n");
        b = fixture_run_output(f, denied_first,
                               fixture_options("environment", g_variant_new_strv(env, -1), NULL), 0);
        g_assert_cmpstr(b, ==, "second\n");
        remove_dir(d1);
        remove_dir(d2);
}

static void test_relative_slash(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "./printf", "%s", "relative", NULL };
        g_autofree char *out = fixture_run_output(
                f, argv, fixture_options("cwd", g_variant_new_string("/usr/bin"), NULL), 0);

        /* With a slash it is not looked up in PATH but taken as given, from the job's cwd. */
        g_assert_cmpstr(out, ==, "relative");
}

static void test_no_shell_fallback(Fixture *f, gconstpointer unused) {
        g_autofree char *d = make_bin_dir();
        g_autofree char *marker = g_build_filename(d, "ran", NULL);
        g_autofree char *script = g_strdup_printf("touch '%s'\necho ran\n", marker);
        g_autofree char *path = g_strdup_printf("PATH=%s:/usr/bin:/bin", d);
        g_autofree char *abs = g_build_filename(d, "procpool-noshebang", NULL);
        const char *env[] = { path, NULL };
        const char *by_name[] = { "procpool-noshebang", NULL };
        const char *by_path[] = { abs, NULL };
        g_autoptr(GError) e1 = NULL, e2 = NULL;
        g_autofree char *state = NULL, *message = NULL;
        int rc;

        write_file(d, "procpool-noshebang", script, 0755);
        /* execvp would hand it to /bin/sh; procpool refuses with ENOEXEC. */
        g_assert_cmpint(fixture_call_argv(f, by_name,
                                          fixture_options("environment", g_variant_new_strv(env, -1), NULL),
                                          &e1),
                        ==, -1000);
        fixture_assert_error(e1, "org.procpool.Error.SpawnFailed",
                             "Failed to execute 'procpool-noshebang': Exec format error");
        g_assert_cmpint(fixture_call_argv(f, by_path, NULL, &e2), ==, -1000);
        g_autofree char *expected = g_strdup_printf("Failed to execute '%s': Exec format error", abs);
        fixture_assert_error(e2, "org.procpool.Error.SpawnFailed", expected);
        g_assert_false(g_file_test(marker, G_FILE_TEST_EXISTS));
        fixture_job_outcome(f, MANAGER_PATH "/job/2", &state, &rc, &message);
        g_assert_cmpstr(state, ==, "failed");
        g_assert_cmpint(rc, ==, 0);
        g_assert_cmpstr(message, ==, expected);
        remove_dir(d);
}

static void test_exec_errors(Fixture *f, gconstpointer unused) {
        g_autofree char *d = make_bin_dir();
        g_autofree char *plain = g_build_filename(d, "procpool-plain", NULL);
        const char *missing[] = { "procpool-no-such-program", NULL };
        const char *denied[] = { plain, NULL };
        const char *dir[] = { "/tmp", NULL };
        g_autofree char *p1 = fixture_submit(f, missing, NULL);
        g_autofree char *p2 = NULL, *p3 = NULL;
        g_autofree char *m1 = NULL, *m2 = NULL, *m3 = NULL, *s1 = NULL, *s2 = NULL, *s3 = NULL;
        int rc1 = -1, rc2 = -1, rc3 = -1;

        write_file(d, "procpool-plain", "#!/bin/sh\nexit 0\n", 0644);
        p2 = fixture_submit(f, denied, NULL);
        p3 = fixture_submit(f, dir, NULL);
        /* Submit'd jobs record the failure: state failed, ReturnCode 0 (never 127), Error says why. */
        g_assert_true(fixture_wait_state(f, p1, "failed"));
        g_assert_true(fixture_wait_state(f, p2, "failed"));
        g_assert_true(fixture_wait_state(f, p3, "failed"));
        fixture_job_outcome(f, p1, &s1, &rc1, &m1);
        fixture_job_outcome(f, p2, &s2, &rc2, &m2);
        fixture_job_outcome(f, p3, &s3, &rc3, &m3);
        g_assert_cmpint(rc1, ==, 0);
        g_assert_cmpint(rc2, ==, 0);
        g_assert_cmpint(rc3, ==, 0);
        g_assert_cmpstr(m1, ==, "Failed to execute 'procpool-no-such-program': No such file or directory");
        g_autofree char *e2 = g_strdup_printf("Failed to execute '%s': Permission denied", plain);
        g_assert_cmpstr(m2, ==, e2);
        g_assert_cmpstr(m3, ==, "Failed to execute '/tmp': Permission denied");
        g_autoptr(GVariant) started = fixture_get_property(f, p1, JOB_IFACE, "StartedAt");
        g_assert_cmpuint(g_variant_get_uint64(started), ==, 0);
        remove_dir(d);
}

static void test_stdin_devnull(Fixture *f, gconstpointer unused) {
        const char *argv[] = { "sh", "-c", "readlink /proc/self/fd/0; cat", NULL };
        g_autofree char *path = fixture_submit(f, argv, NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = NULL, o = NULL, e = NULL;

        /* Without an fd or input, stdin reads /dev/null: cat ends at once. */
        g_assert_true(fixture_wait_state(f, path, "exited"));
        r = fixture_job_call(f, path, "GetOutput", NULL, &error);
        g_assert_no_error(error);
        g_variant_get(r, "(@ay@ay)", &o, &e);
        g_assert_cmpmem(g_variant_get_data(o), g_variant_get_size(o), "/dev/null\n", 10);
}

static void test_no_zombies(Fixture *f, gconstpointer unused) {
        const char *quick[] = { "true", NULL };
        const char *fail[] = { "procpool-no-such-program", NULL };
        const char *sig[] = { "sh", "-c", "kill -KILL $$", NULL };
        const char *bg[] = { "sh", "-c", "sleep 0.2 & exit 0", NULL };
        const char *slow[] = { "sleep", "30", NULL };
        g_autofree char *running = fixture_submit(f, slow, NULL);
        guint zombies = 0, children;

        for (int i = 0; i < 5; i++) {
                g_free(fixture_submit(f, quick, NULL));
                g_free(fixture_submit(f, fail, NULL));
                g_free(fixture_submit(f, sig, NULL));
                g_free(fixture_submit(f, bg, NULL));
        }
        for (int i = 2; i <= 21; i++) {
                g_autofree char *p = fixture_job_path(i);
                g_assert_true(fixture_wait_finished(f, p));
        }
        g_assert_true(fixture_wait_state(f, running, "running"));
        fixture_job_call_ok(f, running, "Kill", g_variant_new("(i)", SIGKILL));
        g_assert_true(fixture_wait_state(f, running, "killed"));

        /* Every finished job's process has been reaped: the daemon has no child left at all. */
        fixture_proc_children(f->daemon_pid, &children, &zombies);
        g_assert_cmpuint(zombies, ==, 0);
        g_assert_cmpuint(children, ==, 0);
}

int main(int argc, char *argv[]) {
        if (argc == 2 && g_str_equal(argv[1], "--print-fds"))
                return print_fds();

        g_test_init(&argc, &argv, NULL);
        FIXTURE_ADD("/procpool/spawn/process-group", fixture_setup, NULL, test_process_group);
        FIXTURE_ADD("/procpool/spawn/signals", fixture_setup, NULL, test_signals);
        FIXTURE_ADD("/procpool/spawn/fds", fixture_setup, NULL, test_fds);
        FIXTURE_ADD("/procpool/spawn/private-environment", fixture_setup_no_daemon, NULL,
                    test_private_environment);
        FIXTURE_ADD("/procpool/spawn/path-lookup", fixture_setup, NULL, test_path_lookup);
        FIXTURE_ADD("/procpool/spawn/relative-slash", fixture_setup, NULL, test_relative_slash);
        FIXTURE_ADD("/procpool/spawn/no-shell-fallback", fixture_setup, NULL, test_no_shell_fallback);
        FIXTURE_ADD("/procpool/spawn/exec-errors", fixture_setup, NULL, test_exec_errors);
        FIXTURE_ADD("/procpool/spawn/stdin-devnull", fixture_setup, NULL, test_stdin_devnull);
        FIXTURE_ADD("/procpool/spawn/no-zombies", fixture_setup, NULL, test_no_zombies);
        return g_test_run();
}
