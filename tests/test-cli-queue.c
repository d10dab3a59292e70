/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Queue control through procpoolctl: pools (pool list/create/remove/size, submit --pool, list --pool,
 * pause and resume --pool), dependencies (--after), delayed starts (--at), retries, restart and clean. */
#include <sys/wait.h>
#include <unistd.h>

#include "cli-common.h"

static const char *const pool_of_four[] = { "--pool-size=4", NULL };

static char *id_text(guint64 id) {
        return g_strdup_printf("%" G_GUINT64_FORMAT, id);
}

static JsonObject *json_object_of(JsonNode *n) {
        g_assert_true(JSON_NODE_HOLDS_OBJECT(n));
        return json_node_get_object(n);
}

/* stderr under --json: {"error": NAME, "message": TEXT}. */
static void assert_json_error(const CtlResult *r, const char *name, const char *text) {
        g_autoptr(JsonNode) n = parse_json(r->err_str);
        JsonObject *o = json_object_of(n);

        g_assert_cmpint(r->status, ==, 1);
        g_assert_cmpstr(json_object_get_string_member(o, "error"), ==, name);
        g_assert_nonnull(strstr(json_object_get_string_member(o, "message"), text));
}

/* The object of pool name in 'pool list --json', or NULL if it is not listed; *ret_n: how many are. */
static JsonObject *pool_listed(Fixture *f, JsonNode **ret_root, const char *name, guint *ret_n) {
        CtlResult r = {};
        JsonArray *a;
        JsonObject *found = NULL;

        g_assert_cmpint(ctl(f, &r, "--json", "pool", "list", NULL), ==, 0);
        *ret_root = parse_json(r.out_str);
        a = json_node_get_array(*ret_root);
        for (guint i = 0; i < json_array_get_length(a); i++) {
                JsonObject *o = json_array_get_object_element(a, i);
                if (g_str_equal(json_object_get_string_member(o, "name"), name))
                        found = o;
        }
        if (ret_n)
                *ret_n = json_array_get_length(a);
        ctl_result_clear(&r);
        return found;
}

/* Submits "sh -c shell" with options before the "--"; returns the job's id. */
static guint64 submit_with(Fixture *f, const char *const *options, const char *shell) {
        g_autoptr(GPtrArray) args = g_ptr_array_new();
        CtlResult r = {};
        guint64 id;

        g_ptr_array_add(args, (char *) "submit");
        for (const char *const *o = options; *o; o++)
                g_ptr_array_add(args, (char *) *o);
        g_ptr_array_add(args, (char *) "--");
        g_ptr_array_add(args, (char *) "sh");
        g_ptr_array_add(args, (char *) "-c");
        g_ptr_array_add(args, (char *) shell);
        g_ptr_array_add(args, NULL);
        ctl_run_full(f->address, NULL, NULL, NULL, (const char *const *) args->pdata, &r);
        g_assert_cmpint(r.status, ==, 0);
        id = parse_id(r.out_str);
        ctl_result_clear(&r);
        return id;
}

/* ---- pool list, create, size, remove ------------------------------------------------------------------ */

static void test_pool_manage(Fixture *f, gconstpointer data) {
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *gate = fixture_gate_path(f, "go");
        g_autofree char *wait_gate = fixture_gate_wait_sh(gate);
        g_autofree char *busy = NULL;
        JsonObject *o;
        CtlResult r = {};
        guint n;

        /* only default at first */
        g_assert_cmpint(ctl(f, &r, "pool", "list", NULL), ==, 0);
        g_assert_true(g_str_has_prefix(r.out_str, "NAME"));
        g_assert_nonnull(strstr(r.out_str, "SIZE"));
        g_assert_nonnull(strstr(r.out_str, "PAUSED"));
        g_assert_nonnull(strstr(r.out_str, "\ndefault"));
        g_assert_nonnull(strstr(r.out_str, "1 pool listed."));
        o = pool_listed(f, &root, "default", &n);
        g_assert_nonnull(o);
        g_assert_cmpuint(n, ==, 1);
        g_assert_cmpint(json_object_get_int_member(o, "size"), ==, 4);
        g_clear_pointer(&root, json_node_unref);

        /* create, with a size; --json prints the new pool */
        g_assert_cmpint(ctl(f, &r, "pool", "create", "build", "--size=1", NULL), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "");
        g_assert_cmpint(ctl(f, &r, "--json", "pool", "create", "other", NULL), ==, 0);
        {
                g_autoptr(JsonNode) c = parse_json(r.out_str);
                JsonObject *co = json_object_of(c);
                g_assert_cmpstr(json_object_get_string_member(co, "name"), ==, "other");
                g_assert_cmpint(json_object_get_int_member(co, "size"), ==, 4); /* the daemon's default */
                g_assert_cmpstr(json_object_get_string_member(co, "path"), ==, MANAGER_PATH "/pool/other");
        }
        o = pool_listed(f, &root, "build", &n);
        g_assert_cmpuint(n, ==, 3);
        g_assert_nonnull(o);
        g_assert_cmpint(json_object_get_int_member(o, "size"), ==, 1);
        g_assert_cmpint(json_object_get_int_member(o, "running"), ==, 0);
        g_assert_cmpint(json_object_get_int_member(o, "queued"), ==, 0);
        g_assert_false(json_object_get_boolean_member(o, "paused"));
        g_assert_cmpstr(json_object_get_string_member(o, "path"), ==, MANAGER_PATH "/pool/build");
        g_clear_pointer(&root, json_node_unref);
        g_assert_cmpint(ctl(f, &r, "pool", "list", NULL), ==, 0);
        g_assert_nonnull(strstr(r.out_str, "\nbuild "));
        g_assert_nonnull(strstr(r.out_str, "3 pools listed."));

        /* a name taken */
        g_assert_cmpint(ctl(f, &r, "pool", "create", "build", NULL), ==, 1);
        g_assert_cmpstr(r.err_str, ==, "Failed to create pool build: Pool 'build' exists already\n");
        g_assert_cmpint(ctl(f, &r, "--json", "pool", "create", "build", NULL), ==, 1);
        assert_json_error(&r, "org.procpool.Error.PoolExists", "Pool 'build' exists already");
        /* a bad name, the daemon's words */
        g_assert_cmpint(ctl(f, &r, "pool", "create", "a/b", NULL), ==, 1);
        g_assert_nonnull(strstr(r.err_str, "is not a pool name"));

        /* size: shown, set, shown */
        g_assert_cmpint(ctl(f, &r, "pool", "size", "build", NULL), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "1\n");
        g_assert_cmpint(ctl(f, &r, "pool", "size", "build", "3", NULL), ==, 0);
        g_assert_cmpint(ctl(f, &r, "pool", "size", "build", NULL), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "3\n");
        g_assert_cmpint(ctl(f, &r, "--json", "pool", "size", "build", "2", NULL), ==, 0);
        {
                g_autoptr(JsonNode) c = parse_json(r.out_str);
                g_assert_cmpint(json_object_get_int_member(json_object_of(c), "size"), ==, 2);
        }
        g_assert_cmpint(ctl(f, &r, "pool", "size", "nosuch", NULL), ==, 1);
        g_assert_cmpstr(r.err_str, ==, "Failed to find pool nosuch: There is no pool 'nosuch'\n");
        g_assert_cmpint(ctl(f, &r, "--json", "pool", "size", "nosuch", "2", NULL), ==, 1);
        assert_json_error(&r, "org.procpool.Error.NoSuchPool", "There is no pool 'nosuch'");

        /* remove: no such pool; busy while a job of it runs; then gone */
        g_assert_cmpint(ctl(f, &r, "--json", "pool", "remove", "nosuch", NULL), ==, 1);
        assert_json_error(&r, "org.procpool.Error.NoSuchPool", "There is no pool 'nosuch'");
        g_assert_cmpint(ctl(f, &r, "pool", "remove", "nosuch", NULL), ==, 1);
        g_assert_cmpstr(r.err_str, ==, "Failed to remove pool nosuch: There is no pool 'nosuch'\n");
        busy = id_text(submit_with(f, (const char *const[]) { "--pool=build", NULL }, wait_gate));
        g_assert_true(job_wait_state(f, parse_id(busy), "running"));
        g_assert_cmpint(ctl(f, &r, "pool", "remove", "build", NULL), ==, 1);
        g_assert_nonnull(strstr(r.err_str, "Pool 'build' has 1 jobs running and 0 queued"));
        g_assert_cmpint(ctl(f, &r, "--json", "pool", "remove", "build", NULL), ==, 1);
        assert_json_error(&r, "org.procpool.Error.PoolBusy", "has 1 jobs running");
        fixture_gate_open(gate);
        g_assert_true(job_wait_state(f, parse_id(busy), "exited"));
        g_assert_cmpint(ctl(f, &r, "--json", "pool", "remove", "build", NULL), ==, 0);
        {
                g_autoptr(JsonNode) c = parse_json(r.out_str);
                g_assert_cmpstr(json_object_get_string_member(json_object_of(c), "name"), ==, "build");
                g_assert_true(json_object_get_boolean_member(json_object_of(c), "removed"));
        }
        g_assert_cmpint(ctl(f, &r, "pool", "remove", "other", NULL), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "");
        g_assert_null(pool_listed(f, &root, "build", &n));
        g_assert_cmpuint(n, ==, 1);
        g_clear_pointer(&root, json_node_unref);
        /* default always stays */
        g_assert_cmpint(ctl(f, &r, "pool", "remove", "default", NULL), ==, 1);
        g_assert_nonnull(strstr(r.err_str, "always exists"));

        /* usage */
        g_assert_cmpint(ctl(f, &r, "pool", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "pool", "create", NULL), ==, 2);
        g_assert_nonnull(strstr(r.err_str, "'pool create' needs a pool's name"));
        g_assert_cmpint(ctl(f, &r, "pool", "frob", NULL), ==, 2);
        g_assert_nonnull(strstr(r.err_str, "Unknown pool command 'frob'"));
        g_assert_cmpint(ctl(f, &r, "pool", "size", "default", "0", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "pool", "create", "x", "--size=0", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "pool", "size", "default", "--size=2", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "list", "--size=2", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "cancel", "--pool=default", "1", NULL), ==, 2);
        g_assert_nonnull(strstr(r.err_str, "Option --pool is not valid for 'cancel'"));
        ctl_result_clear(&r);
}

/* Another uid than root and the daemon's may not manage pools. */
static void test_pool_access(Fixture *f, gconstpointer data) {
        CtlResult r = {};

        if (!fixture_have_root())
                return;
        g_assert_cmpint(ctl_other(f, &r, (const char *const[]) { "pool", "create", "mine", NULL }), ==, 1);
        g_assert_nonnull(strstr(r.err_str, "Failed to create pool mine: "));
        g_assert_cmpint(ctl_other(f, &r, (const char *const[]) { "--json", "pool", "create", "mine", NULL }),
                        ==, 1);
        assert_json_error(&r, "org.freedesktop.DBus.Error.AccessDenied", "");
        g_assert_cmpint(ctl(f, &r, "pool", "create", "p", NULL), ==, 0);
        g_assert_cmpint(ctl_other(f, &r, (const char *const[]) { "--json", "pool", "size", "p", "1", NULL }),
                        ==, 1);
        assert_json_error(&r, "org.freedesktop.DBus.Error.AccessDenied", "");
        g_assert_cmpint(ctl_other(f, &r, (const char *const[]) { "--json", "pause", "--pool=p", NULL }), ==,
                        1);
        assert_json_error(&r, "org.freedesktop.DBus.Error.AccessDenied", "");
        g_assert_cmpint(ctl_other(f, &r, (const char *const[]) { "--json", "pool", "remove", "p", NULL }), ==,
                        1);
        assert_json_error(&r, "org.freedesktop.DBus.Error.AccessDenied", "");
        /* reading is for everyone */
        g_assert_cmpint(ctl_other(f, &r, (const char *const[]) { "pool", "size", "p", NULL }), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "4\n");
        ctl_result_clear(&r);
}

/* ---- submit --pool: a pool of one beside default; list --pool ---------------------------------------- */

static void test_pool_submit(Fixture *f, gconstpointer data) {
        g_autofree char *gate = fixture_gate_path(f, "go");
        g_autofree char *wait_gate = fixture_gate_wait_sh(gate);
        g_autofree char *a = NULL, *b = NULL, *c = NULL;
        CtlResult r = {};

        g_assert_cmpint(ctl(f, &r, "pool", "create", "serial", "--size=1", NULL), ==, 0);
        /* before there is a second pool's job to show, list has no POOL column */
        g_assert_cmpint(ctl(f, &r, "pool", "remove", "serial", NULL), ==, 0);
        c = id_text(ctl_submit(f, wait_gate));
        g_assert_true(job_wait_state(f, parse_id(c), "running"));
        g_assert_cmpint(ctl(f, &r, "list", NULL), ==, 0);
        g_assert_null(strstr(r.out_str, "POOL"));
        g_assert_cmpint(ctl(f, &r, "pool", "create", "serial", "--size=1", NULL), ==, 0);

        a = id_text(submit_with(f, (const char *const[]) { "--pool=serial", NULL }, wait_gate));
        b = id_text(submit_with(f, (const char *const[]) { "--pool", "serial", NULL }, wait_gate));
        /* serial runs one at a time; default, of four, runs c beside it */
        g_assert_true(job_wait_state(f, parse_id(a), "running"));
        {
                g_autofree char *state_b = job_state(f, parse_id(b)), *state_c = job_state(f, parse_id(c));
                g_assert_cmpstr(state_b, ==, "queued");
                g_assert_cmpstr(state_c, ==, "running");
        }

        /* list --pool: the pool's jobs only, with the POOL column */
        g_assert_cmpint(ctl(f, &r, "--no-legend", "list", "--pool=serial", NULL), ==, 0);
        {
                g_auto(GStrv) lines = g_strsplit(g_strstrip(r.out_str), "\n", -1);
                g_auto(GStrv) first = NULL, second = NULL;
                g_assert_cmpuint(g_strv_length(lines), ==, 2);
                first = g_regex_split_simple("\\s+", lines[0], 0, 0);
                second = g_regex_split_simple("\\s+", lines[1], 0, 0);
                g_assert_cmpstr(first[0], ==, a);
                g_assert_cmpstr(first[1], ==, "running");
                g_assert_cmpstr(first[2], ==, "serial");
                g_assert_cmpstr(second[0], ==, b);
                g_assert_cmpstr(second[1], ==, "queued");
                g_assert_cmpstr(second[2], ==, "serial");
        }
        /* with two pools, list shows the column for all */
        g_assert_cmpint(ctl(f, &r, "list", NULL), ==, 0);
        g_assert_nonnull(strstr(r.out_str, "POOL"));
        g_assert_nonnull(strstr(r.out_str, " default "));
        g_assert_cmpint(ctl(f, &r, "--json", "list", "--pool=default", NULL), ==, 0);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                JsonArray *arr = json_node_get_array(n);
                g_assert_cmpuint(json_array_get_length(arr), ==, 1);
                g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(arr, 0), "pool"),
                                ==, "default");
        }
        g_assert_cmpint(ctl(f, &r, "--json", "status", b, NULL), ==, 0);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                g_assert_cmpstr(json_object_get_string_member(json_object_of(n), "pool"), ==, "serial");
        }
        g_assert_cmpint(ctl(f, &r, "status", a, NULL), ==, 0);
        g_assert_nonnull(strstr(r.out_str, "\n       Pool: serial\n"));
        g_assert_cmpint(ctl(f, &r, "--json", "list", "--pool=nosuch", NULL), ==, 1);
        assert_json_error(&r, "org.procpool.Error.NoSuchPool", "There is no pool 'nosuch'");
        /* a pool that does not exist: the daemon's error */
        g_assert_cmpint(ctl(f, &r, "submit", "--pool=nosuch", "--", "true", NULL), ==, 1);
        g_assert_nonnull(strstr(r.err_str, "there is no pool 'nosuch'"));

        fixture_gate_open(gate);
        g_assert_true(job_wait_state(f, parse_id(b), "exited"));
        g_assert_true(job_wait_state(f, parse_id(a), "exited"));
        g_assert_true(job_wait_state(f, parse_id(c), "exited"));
        ctl_result_clear(&r);
}

/* ---- pause --pool and resume --pool ------------------------------------------------------------------- */

static void test_pool_pause(Fixture *f, gconstpointer data) {
        g_autofree char *gate = fixture_gate_path(f, "go");
        g_autofree char *wait_gate = fixture_gate_wait_sh(gate);
        g_autofree char *running = NULL, *queued = NULL, *path = NULL;
        g_autoptr(JsonNode) root = NULL;
        CtlResult r = {};

        g_assert_cmpint(ctl(f, &r, "pool", "create", "p", "--size=1", NULL), ==, 0);
        running = id_text(submit_with(f, (const char *const[]) { "--pool=p", NULL }, wait_gate));
        g_assert_true(job_wait_state(f, parse_id(running), "running"));
        queued = id_text(submit_with(f, (const char *const[]) { "--pool=p", NULL }, "exit 0"));

        g_assert_cmpint(ctl(f, &r, "pause", "--pool=p", NULL), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "");
        g_assert_true(json_object_get_boolean_member(pool_listed(f, &root, "p", NULL), "paused"));
        g_clear_pointer(&root, json_node_unref);
        g_assert_cmpint(ctl(f, &r, "pool", "list", NULL), ==, 0);
        g_assert_nonnull(strstr(r.out_str, " yes"));
        /* the running job goes on, not paused itself, and ends; the queued one stays */
        path = fixture_job_path(parse_id(running));
        {
                g_autoptr(GVariant) v = fixture_get_property(f, path, JOB_IFACE, "Paused");
                g_assert_false(g_variant_get_boolean(v));
        }
        fixture_gate_open(gate);
        g_assert_true(job_wait_state(f, parse_id(running), "exited"));
        fixture_sync_with_daemon(f->conn);
        {
                g_autofree char *state = job_state(f, parse_id(queued));
                g_assert_cmpstr(state, ==, "queued");
        }
        /* pausing again is no error; --json: the pool */
        g_assert_cmpint(ctl(f, &r, "--json", "pause", "--pool=p", NULL), ==, 0);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                g_assert_true(json_object_get_boolean_member(json_object_of(n), "paused"));
                g_assert_cmpint(json_object_get_int_member(json_object_of(n), "queued"), ==, 1);
        }

        g_assert_cmpint(ctl(f, &r, "resume", "--pool=p", NULL), ==, 0);
        g_assert_true(job_wait_state(f, parse_id(queued), "exited"));
        g_assert_false(json_object_get_boolean_member(pool_listed(f, &root, "p", NULL), "paused"));

        /* usage and errors */
        g_assert_cmpint(ctl(f, &r, "pause", "--pool=p", running, NULL), ==, 2);
        g_assert_nonnull(strstr(r.err_str, "takes job IDs or --pool=NAME, not both"));
        g_assert_cmpint(ctl(f, &r, "resume", NULL), ==, 2);
        g_assert_nonnull(strstr(r.err_str, "needs job IDs or --pool=NAME"));
        g_assert_cmpint(ctl(f, &r, "pause", "--pool=nosuch", NULL), ==, 1);
        g_assert_cmpstr(r.err_str, ==, "Failed to find pool nosuch: There is no pool 'nosuch'\n");
        g_assert_cmpint(ctl(f, &r, "--json", "resume", "--pool=nosuch", NULL), ==, 1);
        assert_json_error(&r, "org.procpool.Error.NoSuchPool", "There is no pool 'nosuch'");
        ctl_result_clear(&r);
}

/* ---- --after: a chain whose middle job fails ------------------------------------------------------------ */

static void test_after(Fixture *f, gconstpointer data) {
        g_autofree char *gate = fixture_gate_path(f, "go");
        g_autofree char *wait_gate = fixture_gate_wait_sh(gate);
        g_autofree char *a = NULL, *b = NULL, *c = NULL, *d = NULL, *after_ok = NULL, *after_ab = NULL,
                        *ok = NULL;
        g_autofree char *after_a = NULL, *waiting = NULL, *path = NULL;
        CtlResult r = {};

        a = id_text(ctl_submit(f, wait_gate));
        after_a = g_strdup_printf("--after=%s", a);
        b = id_text(submit_with(f, (const char *const[]) { after_a, NULL }, "exit 3"));
        after_ab = g_strdup_printf("%s,%s", a, b);
        /* a comma-separated list, and the option repeated */
        c = id_text(submit_with(f, (const char *const[]) { "--after", after_ab, NULL }, "echo never"));
        ok = id_text(submit_with(f, (const char *const[]) { after_a, NULL }, "exit 0"));
        after_ok = g_strdup_printf("--after=%s", ok);
        d = id_text(submit_with(f, (const char *const[]) { "--after", a, after_ok, NULL }, "exit 0"));

        /* all wait for a */
        g_assert_cmpint(ctl(f, &r, "status", c, NULL), ==, 0);
        waiting = g_strdup_printf("\n      After: %s %s\nWaiting for: %s %s\n", a, b, a, b);
        g_assert_nonnull(strstr(r.out_str, waiting));
        g_assert_cmpint(ctl(f, &r, "--json", "status", c, NULL), ==, 0);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                JsonObject *o = json_object_of(n);
                JsonArray *after = json_object_get_array_member(o, "after");
                JsonArray *waiting_for = json_object_get_array_member(o, "waiting_for");
                g_assert_cmpstr(json_object_get_string_member(o, "state"), ==, "queued");
                g_assert_cmpuint(json_array_get_length(after), ==, 2);
                g_assert_cmpint(json_array_get_int_element(after, 0), ==, (gint64) parse_id(a));
                g_assert_cmpint(json_array_get_int_element(after, 1), ==, (gint64) parse_id(b));
                g_assert_cmpuint(json_array_get_length(waiting_for), ==, 2);
        }

        fixture_gate_open(gate);
        g_assert_true(job_wait_state(f, parse_id(c), "failed"));
        g_assert_true(job_wait_state(f, parse_id(d), "exited"));
        path = fixture_job_path(parse_id(d));
        fixture_assert_outcome(f, path, "exited", 0);
        g_assert_cmpint(ctl(f, &r, "--json", "status", d, NULL), ==, 0);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                JsonArray *after = json_object_get_array_member(json_object_of(n), "after");
                g_assert_cmpuint(json_array_get_length(after), ==, 2);
                g_assert_cmpint(json_array_get_int_element(after, 1), ==, (gint64) parse_id(ok));
                g_assert_cmpuint(
                        json_array_get_length(json_object_get_array_member(json_object_of(n), "waiting_for")),
                        ==, 0);
        }
        g_free(path);
        path = fixture_job_path(parse_id(b));
        fixture_assert_outcome(f, path, "exited", 3);
        /* c never ran, and status says why */
        g_assert_cmpint(ctl(f, &r, "status", c, NULL), ==, 0);
        {
                g_autofree char *why =
                        g_strdup_printf("      Error: Job %s, which it was to run after, exited "
                                        "with code 3\n",
                                        b);
                g_assert_nonnull(strstr(r.out_str, "      State: failed\n"));
                g_assert_nonnull(strstr(r.out_str, why));
                g_assert_null(strstr(r.out_str, "Waiting for:"));
        }
        g_assert_cmpint(ctl(f, &r, "output", c, NULL), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "");
        /* waiting for it fails with the dependency's failure */
        g_assert_cmpint(ctl(f, &r, "wait", c, NULL), ==, 1);
        g_assert_nonnull(strstr(r.err_str, "which it was to run after"));

        /* bad ids */
        g_assert_cmpint(ctl(f, &r, "submit", "--after=1,x", "--", "true", NULL), ==, 2);
        g_assert_nonnull(strstr(r.err_str, "Invalid job id 'x' in --after=1,x"));
        g_assert_cmpint(ctl(f, &r, "submit", "--after=,", "--", "true", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "submit", "--after=9999", "--", "true", NULL), ==, 1);
        g_assert_cmpint(ctl(f, &r, "list", "--after=1", NULL), ==, 2);
        ctl_result_clear(&r);
}

/* ---- --at: a time past starts at once, an hour ahead waits -------------------------------------------- */

static void test_at(Fixture *f, gconstpointer data) {
        g_autofree char *later = NULL, *past = NULL, *path = NULL;
        guint64 before, not_before;
        CtlResult r = {};

        g_assert_cmpint(ctl(f, &r, "submit", "--at=@1", "--wait", "--", "true", NULL), ==, 0);
        g_assert_cmpint(ctl(f, &r, "call", "--at=2000-01-01 00:00", "--", "sh", "-c", "echo past", NULL), ==,
                        0);
        g_assert_cmpstr(r.out_str, ==, "past\n");

        before = (guint64) g_get_real_time();
        g_assert_cmpint(ctl(f, &r, "submit", "--at=+1h", "--", "sh", "-c", "exit 0", NULL), ==, 0);
        later = g_strstrip(g_strdup(r.out_str));
        path = fixture_job_path(parse_id(later));
        fixture_sync_with_daemon(f->conn);
        fixture_assert_state(f, path, "queued");
        g_assert_cmpint(ctl(f, &r, "--json", "status", later, NULL), ==, 0);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                not_before = (guint64) json_object_get_int_member(json_object_of(n), "not_before_usec");
                g_assert_cmpuint(not_before, >=, before + 3600ULL * G_USEC_PER_SEC);
                g_assert_cmpuint(not_before, <=, (guint64) g_get_real_time() + 3600ULL * G_USEC_PER_SEC);
        }
        g_assert_cmpint(ctl(f, &r, "status", later, NULL), ==, 0);
        g_assert_nonnull(strstr(r.out_str, "\n Not before: "));
        g_assert_cmpint(ctl(f, &r, "cancel", later, NULL), ==, 0);
        g_assert_true(job_wait_state(f, parse_id(later), "cancelled"));
        /* it never started */
        {
                g_autoptr(GVariant) v = fixture_get_property(f, path, JOB_IFACE, "StartedAt");
                g_assert_cmpuint(g_variant_get_uint64(v), ==, 0);
        }

        g_assert_cmpint(ctl(f, &r, "submit", "--at=soon", "--", "true", NULL), ==, 2);
        g_assert_nonnull(strstr(r.err_str, "Invalid time for --at: 'soon'"));
        g_assert_cmpint(ctl(f, &r, "submit", "--at=25:00", "--", "true", NULL), ==, 2);
        (void) past;
        ctl_result_clear(&r);
}

/* ---- --retry: a job that succeeds on its third attempt -------------------------------------------------- */

static void test_retry(Fixture *f, gconstpointer data) {
        g_autofree char *counter = fixture_gate_path(f, "counter");
        g_autofree char *quoted = g_shell_quote(counter);
        g_autofree char *script = g_strdup_printf("n=$(cat %s 2>/dev/null || echo 0); n=$((n + 1)); "
                                                  "echo $n > %s; echo attempt $n; echo err $n >&2; "
                                                  "[ $n -ge 3 ]",
                                                  quoted, quoted);
        g_autofree char *id = NULL, *contents = NULL, *delayed = NULL;
        CtlResult r = {};

        /* call waits through the retries; the output is the last attempt's */
        g_assert_cmpint(ctl(f, &r, "call", "--retry=3", "--", "sh", "-c", script, NULL), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "attempt 3\n");
        g_assert_cmpstr(r.err_str, ==, "err 3\n");
        g_assert_true(g_file_get_contents(counter, &contents, NULL, NULL));
        g_assert_cmpstr(contents, ==, "3\n");
        id = id_text(last_job(f));
        g_assert_cmpint(ctl(f, &r, "status", id, NULL), ==, 0);
        g_assert_nonnull(strstr(r.out_str, "\n    Attempt: 3 of at most 4 (--retry=3)\n"));
        g_assert_cmpint(ctl(f, &r, "--json", "status", id, NULL), ==, 0);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                JsonObject *o = json_object_of(n);
                g_assert_cmpint(json_object_get_int_member(o, "attempt"), ==, 3);
                g_assert_cmpint(json_object_get_int_member(o, "retry"), ==, 3);
        }

        /* too few retries: the last attempt's code */
        (void) unlink(counter);
        g_assert_cmpint(ctl(f, &r, "call", "--retry=1", "--retry-delay=10ms", "--", "sh", "-c", script, NULL),
                        ==, 1);
        g_assert_cmpstr(r.out_str, ==, "attempt 2\n");
        delayed = id_text(last_job(f));
        g_assert_cmpint(ctl(f, &r, "--json", "status", delayed, NULL), ==, 0);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                JsonObject *o = json_object_of(n);
                g_assert_cmpint(json_object_get_int_member(o, "attempt"), ==, 2);
                g_assert_cmpint(json_object_get_int_member(o, "retry_delay_usec"), ==, 10000);
        }
        g_assert_cmpint(ctl(f, &r, "status", delayed, NULL), ==, 0);
        g_assert_nonnull(
                strstr(r.out_str, "\n    Attempt: 2 of at most 2 (--retry=1, --retry-delay=10ms)\n"));

        g_assert_cmpint(ctl(f, &r, "communicate", "--retry=2", "--", "true", NULL), ==, 2);
        g_assert_nonnull(strstr(r.err_str, "Option --retry is not valid for 'communicate'"));
        g_assert_cmpint(ctl(f, &r, "submit", "--retry=x", "--", "true", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "submit", "--retry-delay=x", "--", "true", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "submit", "--retry=1001", "--", "true", NULL), ==, 1);
        g_assert_nonnull(strstr(r.err_str, "'retry' is above 1000"));
        ctl_result_clear(&r);
}

/* ---- restart ------------------------------------------------------------------------------------------- */

static void test_restart(Fixture *f, gconstpointer data) {
        g_autofree char *first = NULL, *again = NULL, *other = NULL, *call_id = NULL;
        CtlResult r = {};

        g_assert_cmpint(ctl(f, &r, "submit", "--label=twice", "--", "sh", "-c", "echo hi; exit 4", NULL), ==,
                        0);
        first = g_strstrip(g_strdup(r.out_str));
        g_assert_cmpint(ctl(f, &r, "wait", first, NULL), ==, 4);

        g_assert_cmpint(ctl(f, &r, "restart", first, NULL), ==, 0);
        again = g_strstrip(g_strdup(r.out_str));
        g_assert_cmpuint(parse_id(again), >, parse_id(first));
        g_assert_cmpint(ctl(f, &r, "wait", again, NULL), ==, 4);
        g_assert_cmpint(ctl(f, &r, "output", again, NULL), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "hi\n");
        g_assert_cmpint(ctl(f, &r, "--json", "status", again, NULL), ==, 0);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                g_assert_cmpstr(json_object_get_string_member(json_object_of(n), "label"), ==, "twice");
        }
        /* the first one is left as it was */
        {
                g_autofree char *path = fixture_job_path(parse_id(first));
                fixture_assert_outcome(f, path, "exited", 4);
        }

        /* --json as submit prints it: an object, an array for several */
        g_assert_cmpint(ctl(f, &r, "--json", "restart", first, NULL), ==, 0);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                JsonObject *o = json_object_of(n);
                g_autofree char *path = fixture_job_path((guint64) json_object_get_int_member(o, "id"));
                g_assert_cmpstr(json_object_get_string_member(o, "path"), ==, path);
                g_assert_true(fixture_wait_finished(f, path));
        }
        g_assert_cmpint(ctl(f, &r, "--json", "restart", first, again, NULL), ==, 0);
        {
                g_autoptr(JsonNode) n = parse_json(r.out_str);
                JsonArray *a = json_node_get_array(n);
                g_assert_cmpuint(json_array_get_length(a), ==, 2);
                for (guint i = 0; i < 2; i++) {
                        g_autofree char *path = fixture_job_path((guint64) json_object_get_int_member(
                                json_array_get_object_element(a, i), "id"));
                        g_assert_true(fixture_wait_finished(f, path));
                }
        }

        /* a job that had procpoolctl's streams cannot be */
        g_assert_cmpint(ctl(f, &r, "call", "--", "true", NULL), ==, 0);
        call_id = id_text(last_job(f));
        g_assert_cmpint(ctl(f, &r, "--json", "restart", call_id, NULL), ==, 1);
        assert_json_error(&r, "org.freedesktop.DBus.Error.NotSupported", "");
        g_assert_cmpint(ctl(f, &r, "restart", "9999", NULL), ==, 1);
        g_assert_nonnull(strstr(r.err_str, "Job 9999 could not be found."));
        g_assert_cmpint(ctl(f, &r, "restart", NULL), ==, 2);
        (void) other;
        ctl_result_clear(&r);
}

/* ---- clean: the caller's finished jobs, never another uid's --------------------------------------------- */

static gboolean job_exists(Fixture *f, const char *id) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) v = fixture_call(f, "GetJob", g_variant_new("(t)", parse_id(id)), &error);
        return v != NULL;
}

static char *submit_as_other(Fixture *f, const char *shell) {
        CtlResult r = {};
        char *id;

        g_assert_cmpint(ctl_other(f, &r, (const char *const[]) { "submit", "--", "sh", "-c", shell, NULL }),
                        ==, 0);
        id = g_strstrip(g_strdup(r.out_str));
        ctl_result_clear(&r);
        return id;
}

static void test_clean(Fixture *f, gconstpointer data) {
        g_autofree char *ok = NULL, *failed = NULL, *killed = NULL, *running = NULL, *other_ok = NULL,
                        *other_failed = NULL, *expected = NULL;
        CtlResult r = {};

        if (!fixture_have_root())
                return;
        ok = id_text(ctl_submit(f, "exit 0"));
        failed = id_text(ctl_submit(f, "exit 2"));
        killed = id_text(ctl_submit(f, "kill -KILL $$"));
        running = id_text(ctl_submit(f, "exec sleep 600"));
        other_ok = submit_as_other(f, "exit 0");
        other_failed = submit_as_other(f, "exit 5");
        g_assert_true(job_wait_state(f, parse_id(ok), "exited"));
        g_assert_true(job_wait_state(f, parse_id(failed), "exited"));
        g_assert_true(job_wait_state(f, parse_id(killed), "killed"));
        g_assert_true(job_wait_state(f, parse_id(running), "running"));
        g_assert_true(job_wait_state(f, parse_id(other_ok), "exited"));
        g_assert_true(job_wait_state(f, parse_id(other_failed), "exited"));

        /* --failed-only: not the one that exited 0, nor the running one, nor the other uid's */
        g_assert_cmpint(ctl(f, &r, "--json", "clean", "--failed-only", NULL), ==, 0);
        expected = g_strdup_printf("{\"released\":[%s,%s]}\n", failed, killed);
        g_assert_cmpstr(r.out_str, ==, expected);
        g_assert_true(job_exists(f, ok));
        g_assert_false(job_exists(f, failed));
        g_assert_false(job_exists(f, killed));
        g_assert_true(job_exists(f, running));
        g_assert_true(job_exists(f, other_ok));
        g_assert_true(job_exists(f, other_failed));

        /* all of root's finished jobs; still none of the other uid's */
        g_assert_cmpint(ctl(f, &r, "clean", NULL), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "Released 1 job.\n");
        g_assert_false(job_exists(f, ok));
        g_assert_true(job_exists(f, running));
        g_assert_true(job_exists(f, other_ok));
        g_assert_true(job_exists(f, other_failed));
        g_assert_cmpint(ctl(f, &r, "clean", NULL), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "Released 0 jobs.\n");

        /* the other uid cleans its own */
        g_assert_cmpint(ctl_other(f, &r, (const char *const[]) { "clean", "--failed-only", NULL }), ==, 0);
        g_assert_cmpstr(r.out_str, ==, "Released 1 job.\n");
        g_assert_true(job_exists(f, other_ok));
        g_assert_false(job_exists(f, other_failed));
        g_assert_cmpint(ctl_other(f, &r, (const char *const[]) { "clean", NULL }), ==, 0);
        g_assert_false(job_exists(f, other_ok));
        g_assert_true(job_exists(f, running));

        g_assert_cmpint(ctl(f, &r, "clean", "extra", NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "release", "--failed-only", running, NULL), ==, 2);
        g_assert_cmpint(ctl(f, &r, "cancel", running, NULL), ==, 0);
        g_assert_true(job_wait_state(f, parse_id(running), "cancelled"));
        ctl_result_clear(&r);
}

/* ---- completions: pool names, the pool subcommands, the new options -------------------------------------- */

static const char bash_script[] =
        "source /usr/share/bash-completion/bash_completion\n"
        "source \"$1\"\n"
        "comp() {\n"
        "        COMP_WORDS=(\"$@\"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
        "        COMP_LINE=\"$*\"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()\n"
        "        _procpoolctl procpoolctl \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD-1]}\"\n"
        "        echo \"${COMPREPLY[*]}\"\n"
        "}\n"
        "comp procpoolctl pool ''\n"
        "comp procpoolctl \"--address=$2\" pool remove ''\n"
        "comp procpoolctl \"--address=$2\" submit --pool ''\n"
        "comp procpoolctl submit --ret\n"
        "comp procpoolctl clean --f\n"
        "comp procpoolctl pause --p\n"
        "comp procpoolctl res\n"
        "comp procpoolctl cl\n"
        "comp procpoolctl pool create cluster --ex\n"
        "comp procpoolctl pool create cluster --executor ''\n";

static void test_completion(Fixture *f, gconstpointer data) {
        g_autofree char *file = g_build_filename(g_getenv("PROCPOOL_SOURCE_ROOT"), "tools",
                                                 "procpoolctl.bash-completion", NULL);
        g_autofree char *fish_file =
                g_build_filename(g_getenv("PROCPOOL_SOURCE_ROOT"), "tools", "procpoolctl.fish", NULL);
        g_autofree char *bindir = g_path_get_dirname(ctl_path());
        g_autofree char *path = g_strdup_printf("%s:%s", bindir, g_getenv("PATH"));
        g_autofree char *out = NULL, *fish = g_find_program_in_path("fish");
        g_autoptr(GSubprocessLauncher) l = NULL;
        g_autoptr(GSubprocess) p = NULL;
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) lines = NULL;
        CtlResult r = {};

        g_assert_cmpint(ctl(f, &r, "pool", "create", "build", NULL), ==, 0);
        l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
        g_subprocess_launcher_setenv(l, "PATH", path, TRUE);
        g_subprocess_launcher_unsetenv(l, "DBUS_SESSION_BUS_ADDRESS");
        if (g_file_test("/usr/share/bash-completion/bash_completion", G_FILE_TEST_EXISTS)) {
                p = g_subprocess_launcher_spawn(l, &error, "bash", "-c", bash_script, "bash", file,
                                                f->address, NULL);
                g_assert_no_error(error);
                g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, &out, NULL, &error));
                g_assert_no_error(error);
                g_test_message("%s", out);
                lines = g_strsplit(out, "\n", -1);
                g_assert_cmpuint(g_strv_length(lines), >=, 10);
                g_assert_cmpstr(lines[0], ==, "list create remove size");
                g_assert_cmpstr(lines[1], ==, "default build");
                g_assert_cmpstr(lines[2], ==, "default build");
                g_assert_cmpstr(lines[3], ==, "--retry= --retry-delay=");
                g_assert_cmpstr(lines[4], ==, "--failed-only");
                g_assert_cmpstr(lines[5], ==, "--pool=");
                g_assert_cmpstr(lines[6], ==, "resume restart");
                g_assert_cmpstr(lines[7], ==, "clean");
                g_assert_cmpstr(lines[8], ==, "--executor=");
                g_assert_cmpstr(lines[9], ==, "local slurm");
        }
        if (fish) {
                g_autofree char *script = g_strdup_printf(
                        "set -x PATH %s; source %s; complete -C 'procpoolctl --address=%s pool remove '; "
                        "complete -C 'procpoolctl pool '; complete -C 'procpoolctl submit --retry'",
                        path, fish_file, f->address);
                g_autofree char *fish_out = NULL;
                int status;

                g_assert_true(g_spawn_sync(
                        NULL, (char *[]) { fish, (char *) "--no-config", (char *) "-c", script, NULL }, NULL,
                        G_SPAWN_DEFAULT, NULL, NULL, &fish_out, NULL, &status, &error));
                g_assert_no_error(error);
                g_test_message("fish: %s", fish_out);
                /* fish sorts what it offers */
                g_assert_true(g_str_has_prefix(fish_out, "build\ndefault\n"));
                g_assert_nonnull(strstr(fish_out, "\ncreate\n"));
                g_assert_nonnull(strstr(fish_out, "--retry-delay\t"));
        }
        ctl_result_clear(&r);
}

/* ---- pools of an executor ---------------------------------------------------------------------------- */

static void test_pool_executor(Fixture *f, gconstpointer data) {
        g_autofree char *conf = g_build_filename(f->state_dir, "slurm.conf", NULL);
        g_autofree char *conf_arg = g_strdup_printf("--slurm-conf=%s", conf);
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *id = NULL;
        JsonObject *o;
        CtlResult r = {};

        /* pool list has an EXECUTOR column; --json says executor, slurm_conf and partition */
        g_assert_cmpint(ctl(f, &r, "pool", "create", "here", "--executor=local", "--size=2", NULL), ==, 0);
        g_assert_cmpint(ctl(f, &r, "pool", "list", NULL), ==, 0);
        g_assert_nonnull(strstr(r.out_str, "PAUSED EXECUTOR\n"));
        g_assert_nonnull(strstr(r.out_str, "no     local\n"));
        o = pool_listed(f, &root, "here", NULL);
        g_assert_nonnull(o);
        g_assert_cmpstr(json_object_get_string_member(o, "executor"), ==, "local");
        g_assert_cmpstr(json_object_get_string_member(o, "slurm_conf"), ==, "");
        g_assert_cmpstr(json_object_get_string_member(o, "partition"), ==, "");
        g_clear_pointer(&root, json_node_unref);

        /* the daemon's words for settings it refuses */
        g_assert_cmpint(ctl(f, &r, "pool", "create", "x", "--executor=ssh", NULL), ==, 1);
        g_assert_cmpstr(
                r.err_str, ==,
                "Failed to create pool x: Unknown executor 'ssh' in pool setting 'executor' (local or "
                "slurm)\n");
        g_assert_cmpint(ctl(f, &r, "pool", "create", "x", "--partition=debug", NULL), ==, 1);
        g_assert_cmpstr(r.err_str, ==,
                        "Failed to create pool x: Pool setting 'partition' is for pools of executor 'slurm' "
                        "only\n");
        g_assert_cmpint(ctl(f, &r, "--json", "pool", "create", "x", "--executor=slurm",
                            "--slurm-conf=slurm.conf", NULL),
                        ==, 1);
        assert_json_error(&r, "org.freedesktop.DBus.Error.InvalidArgs", "must be an absolute path");
        /* a cluster that cannot be asked for its CPUs, and no --size */
        g_assert_true(g_file_set_contents(conf, "# no cluster here\n", -1, NULL));
        g_assert_cmpint(ctl(f, &r, "--json", "pool", "create", "cluster", "--executor=slurm", conf_arg,
                            "--partition=debug", NULL),
                        ==, 1);
        assert_json_error(&r, "org.procpool.Error.ExecutorUnavailable", "Pool 'cluster': ");
        g_assert_null(pool_listed(f, &root, "cluster", NULL));
        g_clear_pointer(&root, json_node_unref);

        /* the options are pool create's only */
        g_assert_cmpint(ctl(f, &r, "pool", "list", "--executor=slurm", NULL), ==, 2);
        g_assert_nonnull(strstr(r.err_str, "Option --executor is only valid for 'pool create'"));
        g_assert_cmpint(ctl(f, &r, "list", "--partition=debug", NULL), ==, 2);
        g_assert_nonnull(strstr(r.err_str, "Option --partition is not valid for 'list'"));

        /* a local job has no place elsewhere: status says none, --json says "" */
        id = id_text(submit_with(f, (const char *const[]) { "--pool=here", NULL }, "true"));
        g_assert_true(job_wait_state(f, parse_id(id), "exited"));
        g_assert_cmpint(ctl(f, &r, "status", id, NULL), ==, 0);
        g_assert_null(strstr(r.out_str, "External id:"));
        g_assert_null(strstr(r.out_str, "Node:"));
        g_assert_cmpint(ctl(f, &r, "--json", "status", id, NULL), ==, 0);
        {
                g_autoptr(JsonNode) c = parse_json(r.out_str);
                g_assert_cmpstr(json_object_get_string_member(json_object_of(c), "external_id"), ==, "");
                g_assert_cmpstr(json_object_get_string_member(json_object_of(c), "node"), ==, "");
        }
        ctl_result_clear(&r);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);

        FIXTURE_ADD("/procpool/cli/queue/pool/manage", fixture_setup, pool_of_four, test_pool_manage);
        /* an open bus: another uid's procpoolctl reaches the daemon, which runs as root */
        FIXTURE_ADD("/procpool/cli/queue/pool/access", fixture_setup_open_bus, pool_of_four,
                    test_pool_access);
        FIXTURE_ADD("/procpool/cli/queue/pool/submit", fixture_setup, pool_of_four, test_pool_submit);
        FIXTURE_ADD("/procpool/cli/queue/pool/executor", fixture_setup, pool_of_four, test_pool_executor);
        FIXTURE_ADD("/procpool/cli/queue/pool/pause", fixture_setup, pool_of_four, test_pool_pause);
        FIXTURE_ADD("/procpool/cli/queue/after", fixture_setup, pool_of_four, test_after);
        FIXTURE_ADD("/procpool/cli/queue/at", fixture_setup, pool_of_four, test_at);
        FIXTURE_ADD("/procpool/cli/queue/retry", fixture_setup, pool_of_four, test_retry);
        FIXTURE_ADD("/procpool/cli/queue/restart", fixture_setup, pool_of_four, test_restart);
        /* procpoold runs as OTHER_UID: root and that uid both have jobs in it */
        FIXTURE_ADD("/procpool/cli/queue/clean", fixture_setup_open_bus_other_daemon, pool_of_four,
                    test_clean);
        FIXTURE_ADD("/procpool/cli/queue/completion", fixture_setup, pool_of_four, test_completion);
        return g_test_run();
}
