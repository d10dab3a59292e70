/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The job store: every job's record, the settings changed at run time and the next job id, in one SQLite
 * database (WAL mode, a schema version, migrations). The registry writes through it in batches. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "macro.h"
#include "store.h"

struct Store {
        sqlite3 *db;
        char *path;
        sqlite3_stmt *put_job, *delete_job, *put_setting, *get_setting, *put_pool, *delete_pool;
        sqlite3_stmt *begin, *commit, *rollback;
};

/* Each migration takes the schema from its index to the next. Append only. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
        /* 0 -> 1 */
        "CREATE TABLE settings (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);"
        "CREATE TABLE jobs ("
        " id INTEGER PRIMARY KEY NOT NULL,"
        " owner INTEGER NOT NULL,"
        " pool TEXT NOT NULL DEFAULT 'default',"
        " argv BLOB NOT NULL," /* NUL-terminated strings, one after the other */
        " environment BLOB,"
        " clear_environment INTEGER NOT NULL,"
        " cwd TEXT,"
        " timeout_usec INTEGER NOT NULL,"
        " stop_timeout_usec INTEGER NOT NULL,"
        " output_limit INTEGER NOT NULL,"
        " kill_on_output_limit INTEGER NOT NULL,"
        " has_input INTEGER NOT NULL,"
        " passed_fds INTEGER NOT NULL,"
        " cancel_on_disconnect INTEGER NOT NULL,"
        " priority INTEGER NOT NULL,"
        " label TEXT,"
        " memory_max INTEGER NOT NULL,"
        " state INTEGER NOT NULL,"       /* JobState: append only */
        " reason_kind INTEGER NOT NULL," /* JobReasonKind: append only */
        " reason_stream INTEGER NOT NULL,"
        " reason_limit INTEGER NOT NULL,"
        " reason_error INTEGER NOT NULL,"
        " reason_detail TEXT,"
        " returncode INTEGER NOT NULL,"
        " main_pid INTEGER NOT NULL,"
        " submitted_at INTEGER NOT NULL,"
        " started_at INTEGER NOT NULL,"
        " finished_at INTEGER NOT NULL,"
        " cpu_usage_usec INTEGER NOT NULL,"
        " memory_peak INTEGER NOT NULL,"
        " stdout_size INTEGER NOT NULL,"
        " stdout_flags INTEGER NOT NULL," /* 1: truncated, 2: incomplete, 4: released */
        " stderr_size INTEGER NOT NULL,"
        " stderr_flags INTEGER NOT NULL"
        ");",
        /* 1 -> 2: whom a job runs as. A job of a schema 1 store has NULL there and runs as the daemon,
         * as it did when it was submitted. */
        "ALTER TABLE jobs ADD COLUMN user_uid INTEGER;" /* NULL: the daemon's credentials */
        "ALTER TABLE jobs ADD COLUMN user_gid INTEGER;"
        "ALTER TABLE jobs ADD COLUMN user_groups TEXT;", /* decimal gids, space-separated */
        /* 2 -> 3: named pools, dependencies, delayed starts, retries */
        "ALTER TABLE jobs ADD COLUMN after_ids TEXT;" /* ids in decimal, separated by ',' */
        "ALTER TABLE jobs ADD COLUMN not_before_usec INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE jobs ADD COLUMN retry INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE jobs ADD COLUMN retry_delay_usec INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;"
        "ALTER TABLE jobs ADD COLUMN wait_until_usec INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE jobs ADD COLUMN reason_dependency INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE jobs ADD COLUMN reason_dependency_state INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE jobs ADD COLUMN reason_dependency_returncode INTEGER NOT NULL DEFAULT 0;"
        "CREATE TABLE pools (name TEXT PRIMARY KEY NOT NULL, size INTEGER NOT NULL, paused INTEGER NOT NULL);"
        "INSERT INTO pools (name, size, paused) SELECT 'default', value, 0 FROM settings WHERE key = 'pool-size';"
        "DELETE FROM settings WHERE key = 'pool-size';",
        /* 3 -> 4: executors per pool (a Slurm cluster), and where a job ran */
        "ALTER TABLE pools ADD COLUMN executor TEXT NOT NULL DEFAULT 'local';"
        "ALTER TABLE pools ADD COLUMN slurm_conf TEXT;" /* NULL: srun's default */
        "ALTER TABLE pools ADD COLUMN partition TEXT;"  /* NULL: the cluster's default */
        "ALTER TABLE jobs ADD COLUMN external_id TEXT;"
        "ALTER TABLE jobs ADD COLUMN node TEXT;",
};

#define JOB_COLUMNS                                                                                             \
        "id, owner, argv, environment, clear_environment, cwd, timeout_usec, stop_timeout_usec, output_limit, " \
        "kill_on_output_limit, has_input, passed_fds, cancel_on_disconnect, priority, label, memory_max, "      \
        "state, reason_kind, reason_stream, reason_limit, reason_error, reason_detail, returncode, main_pid, "  \
        "submitted_at, started_at, finished_at, cpu_usage_usec, memory_peak, stdout_size, stdout_flags, "       \
        "stderr_size, stderr_flags, user_uid, user_gid, user_groups, pool, after_ids, not_before_usec, retry, " \
        "retry_delay_usec, attempt, wait_until_usec, reason_dependency, reason_dependency_state, "              \
        "reason_dependency_returncode, external_id, node"
#define N_JOB_COLUMNS 48

void store_release_memory(Store *s) {
        (void) sqlite3_db_release_memory(s->db);
}

const char *store_last_error(Store *s) {
        return sqlite3_errmsg(s->db);
}

/* SQLite's result as a negative errno, close enough for a caller to tell full from broken. */
static int sqlite_errno(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_DONE:
        case SQLITE_ROW:
                return 0;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_READONLY:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        default:
                return -EIO;
        }
}

static int exec(Store *s, const char *sql) {
        return sqlite_errno(sqlite3_exec(s->db, sql, NULL, NULL, NULL));
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *t) {
        if (t)
                sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, i);
}

static int prepare(Store *s, const char *sql, sqlite3_stmt **ret) {
        return sqlite_errno(sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, ret, NULL));
}

static int fail(Store *s, int r, char **ret_error, const char *why) {
        if (ret_error && asprintf(ret_error, "%s: %s (%s)", s->path, why, sqlite3_errmsg(s->db)) < 0)
                *ret_error = NULL;
        return r < 0 ? r : -EIO;
}

static int user_version(Store *s, int *ret) {
        sqlite3_stmt *st;
        int rc;

        rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        return rc == SQLITE_ROW ? 0 : sqlite_errno(rc);
}

/* Finds damage before anything is read: a store that is not whole is refused, never repaired. */
static int check_integrity(Store *s, char **ret_error) {
        sqlite3_stmt *st;
        const char *what;
        int rc, r;

        rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return fail(s, sqlite_errno(rc), ret_error, "cannot be read as a job store");
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                sqlite3_finalize(st);
                return fail(s, sqlite_errno(rc), ret_error, "cannot be read as a job store");
        }
        what = (const char *) sqlite3_column_text(st, 0);
        if (what && strcmp(what, "ok") == 0) {
                sqlite3_finalize(st);
                return 0;
        }
        r = -EBADMSG;
        if (ret_error && asprintf(ret_error, "%s: is damaged (%s); move it away to start afresh", s->path,
                                  what ?: "?") < 0)
                *ret_error = NULL;
        sqlite3_finalize(st);
        return r;
}

static int migrate(Store *s, char **ret_error) {
        int version = 0, r;

        r = user_version(s, &version);
        if (r < 0)
                return fail(s, r, ret_error, "cannot be read as a job store");
        if (version > STORE_SCHEMA_VERSION) {
                if (ret_error &&
                    asprintf(ret_error,
                             "%s: was written by a newer procpool (schema %d, this one knows up to "
                             "%d); run that version, or move the file away",
                             s->path, version, STORE_SCHEMA_VERSION) < 0)
                        *ret_error = NULL;
                return -EPROTONOSUPPORT;
        }
        for (; version < STORE_SCHEMA_VERSION; version++) {
                char pragma[64];

                r = exec(s, "BEGIN IMMEDIATE");
                if (r < 0)
                        return fail(s, r, ret_error, "cannot be written");
                r = exec(s, migrations[version]);
                if (r < 0) {
                        (void) exec(s, "ROLLBACK");
                        return fail(s, r, ret_error, "cannot be brought to the current schema");
                }
                snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version + 1);
                r = exec(s, pragma);
                if (r >= 0)
                        r = exec(s, "COMMIT");
                if (r < 0) {
                        (void) exec(s, "ROLLBACK");
                        return fail(s, r, ret_error, "cannot be brought to the current schema");
                }
        }
        return 0;
}

int store_open(const char *path, StoreSync sync, Store **ret, char **ret_error) {
        _cleanup_(store_freep) Store *s = NULL;
        int rc, r;

        *ret_error = NULL;
        s = calloc(1, sizeof(Store));
        if (!s)
                return -ENOMEM;
        s->path = strdup(path);
        if (!s->path)
                return -ENOMEM;

        /* Made 0600 before SQLite sees it: SQLite would follow the umask. */
        {
                int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0) {
                        r = -errno;
                        if (asprintf(ret_error, "%s: cannot be opened: %s", path, strerror(-r)) < 0)
                                *ret_error = NULL;
                        return r;
                }
                (void) close(fd);
        }
        rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK)
                return fail(s, sqlite_errno(rc), ret_error, "cannot be opened as a job store");
        (void) sqlite3_extended_result_codes(s->db, 1);

        r = check_integrity(s, ret_error);
        if (r < 0)
                return r;
        r = exec(s, "PRAGMA journal_mode = WAL");
        if (r < 0)
                return fail(s, r, ret_error, "cannot be switched to WAL mode");
        r = exec(s, sync == STORE_SYNC_FULL ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
        if (r < 0)
                return fail(s, r, ret_error, "cannot be set up");
        /* Only this daemon opens it (the state dir's lock says so): holding SQLite's lock for good saves
         * the fcntl() locking of every transaction, and keeps the WAL index in memory. */
        r = exec(s, "PRAGMA locking_mode = EXCLUSIVE");
        if (r < 0)
                return fail(s, r, ret_error, "cannot be set up");
        r = migrate(s, ret_error);
        if (r < 0)
                return r;

        r = prepare(
                s,
                "INSERT OR REPLACE INTO jobs (" JOB_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?)",
                &s->put_job);
        if (r >= 0)
                r = prepare(
                        s,
                        "INSERT OR REPLACE INTO pools (name, size, paused, executor, slurm_conf, partition) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        &s->put_pool);
        if (r >= 0)
                r = prepare(s, "DELETE FROM pools WHERE name = ?", &s->delete_pool);
        if (r >= 0)
                r = prepare(s, "DELETE FROM jobs WHERE id = ?", &s->delete_job);
        if (r >= 0)
                r = prepare(s, "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", &s->put_setting);
        if (r >= 0)
                r = prepare(s, "SELECT value FROM settings WHERE key = ?", &s->get_setting);
        if (r >= 0)
                r = prepare(s, "BEGIN IMMEDIATE", &s->begin);
        if (r >= 0)
                r = prepare(s, "COMMIT", &s->commit);
        if (r >= 0)
                r = prepare(s, "ROLLBACK", &s->rollback);
        if (r < 0)
                return fail(s, r, ret_error, "does not have the tables of a job store");

        *ret = TAKE_PTR(s);
        return 0;
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        sqlite3_finalize(s->put_job);
        sqlite3_finalize(s->delete_job);
        sqlite3_finalize(s->put_setting);
        sqlite3_finalize(s->get_setting);
        sqlite3_finalize(s->put_pool);
        sqlite3_finalize(s->delete_pool);
        sqlite3_finalize(s->begin);
        sqlite3_finalize(s->commit);
        sqlite3_finalize(s->rollback);
        sqlite3_close_v2(s->db);
        free(s->path);
        free(s);
        return NULL;
}

static int step_done(sqlite3_stmt *st);

int store_begin(Store *s) {
        return step_done(s->begin);
}

int store_commit(Store *s) {
        int r = step_done(s->commit);
        if (r < 0)
                store_rollback(s);
        return r;
}

void store_rollback(Store *s) {
        if (!sqlite3_get_autocommit(s->db))
                (void) step_done(s->rollback);
}

static int step_done(sqlite3_stmt *st) {
        int rc = sqlite3_step(st);
        (void) sqlite3_reset(st);
        (void) sqlite3_clear_bindings(st);
        return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

/* A string list as one blob of NUL-terminated strings. */
static char *strv_pack(char **l, size_t *ret_size) {
        size_t n = 0;
        char *b, *p;

        for (char **i = l; i && *i; i++)
                n += strlen(*i) + 1;
        b = p = malloc(n ?: 1);
        if (!b)
                return NULL;
        for (char **i = l; i && *i; i++)
                p = stpcpy(p, *i) + 1;
        *ret_size = n;
        return b;
}

static char **strv_unpack(const char *b, size_t size) {
        size_t n = 0, k = 0;
        char **l;

        for (size_t i = 0; i < size; i++)
                if (b[i] == '\0')
                        n++;
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return NULL;
        for (size_t i = 0; i < size && k < n; k++) {
                l[k] = strdup(b + i);
                if (!l[k]) {
                        strv_free(l);
                        return NULL;
                }
                i += strlen(b + i) + 1;
        }
        return l;
}

/* A job user's supplementary groups as text: "27 100 1001". */
static char *groups_format(const JobUser *u) {
        size_t size = u->n_groups * 11 + 1;
        char *t = malloc(size), *p = t;

        if (!t)
                return NULL;
        *p = '\0';
        for (size_t i = 0; i < u->n_groups; i++)
                p += snprintf(p, size - (size_t) (p - t), "%s%u", i > 0 ? " " : "", (unsigned) u->groups[i]);
        return t;
}

static int groups_parse(const char *t, JobUser *u) {
        size_t n = 0;

        for (const char *p = t; *p; p++)
                n += *p == ' ';
        n += *t != '\0';
        if (n > JOB_USER_GROUPS_MAX)
                return -EBADMSG;
        u->groups = calloc(n ?: 1, sizeof(gid_t));
        if (!u->groups)
                return -ENOMEM;
        for (const char *p = t; *p;) {
                char *end;
                unsigned long g;

                errno = 0;
                g = strtoul(p, &end, 10);
                if (errno != 0 || end == p || g >= (gid_t) -1 || (*end != ' ' && *end != '\0'))
                        return -EBADMSG;
                u->groups[u->n_groups++] = (gid_t) g;
                p = *end ? end + 1 : end;
        }
        return 0;
}

static int output_flags(const JobOutput *o) {
        return (o->truncated ? 1 : 0) | (o->incomplete ? 2 : 0) | (o->released ? 4 : 0);
}

/* Job ids as text: "1,2,3". */
static char *ids_pack(const uint64_t *ids, size_t n) {
        char *b = malloc(n * 21 + 1), *p;

        if (!b)
                return NULL;
        p = b;
        *p = '\0';
        for (size_t i = 0; i < n; i++)
                p += sprintf(p, "%s%" PRIu64, i > 0 ? "," : "", ids[i]);
        return b;
}

static int ids_unpack(const char *t, uint64_t **ret, size_t *ret_n) {
        size_t n = 0;
        uint64_t *ids;

        for (const char *c = t; *c; c++)
                n += *c == ',';
        ids = calloc(n + 1, sizeof(uint64_t));
        if (!ids)
                return -ENOMEM;
        n = 0;
        while (*t) {
                char *end;

                errno = 0;
                ids[n++] = strtoull(t, &end, 10);
                if (errno != 0 || end == t || (*end != ',' && *end != '\0')) {
                        free(ids);
                        return -EBADMSG;
                }
                t = *end ? end + 1 : end;
        }
        *ret = ids;
        *ret_n = n;
        return 0;
}

int store_put_job(Store *s, const JobRecord *r) {
        _cleanup_free_ char *argv = NULL, *env = NULL, *groups = NULL, *after = NULL;
        sqlite3_stmt *st = s->put_job;
        size_t argv_size, env_size = 0;
        int i = 1;

        argv = strv_pack(r->spec.argv, &argv_size);
        if (!argv)
                return -ENOMEM;
        if (r->spec.environment) {
                env = strv_pack(r->spec.environment, &env_size);
                if (!env)
                        return -ENOMEM;
        }
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->id);
        sqlite3_bind_int64(st, i++, r->spec.owner);
        sqlite3_bind_blob(st, i++, argv, (int) argv_size, SQLITE_STATIC);
        if (env)
                sqlite3_bind_blob(st, i++, env, (int) env_size, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, i++);
        sqlite3_bind_int(st, i++, r->spec.clear_environment);
        if (r->spec.cwd)
                sqlite3_bind_text(st, i++, r->spec.cwd, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, i++);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->spec.timeout_usec);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->spec.stop_timeout_usec);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->spec.output_limit);
        sqlite3_bind_int(st, i++, r->spec.kill_on_output_limit);
        sqlite3_bind_int(st, i++, r->spec.has_input);
        sqlite3_bind_int(st, i++, (int) r->spec.passed_fds);
        sqlite3_bind_int(st, i++, r->spec.cancel_on_disconnect);
        sqlite3_bind_int(st, i++, r->spec.priority);
        if (r->spec.label)
                sqlite3_bind_text(st, i++, r->spec.label, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, i++);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->spec.memory_max);
        sqlite3_bind_int(st, i++, r->state);
        sqlite3_bind_int(st, i++, r->reason.kind);
        sqlite3_bind_int(st, i++, r->reason.stream);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->reason.limit);
        sqlite3_bind_int(st, i++, r->reason.error);
        if (r->reason.detail)
                sqlite3_bind_text(st, i++, r->reason.detail, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, i++);
        sqlite3_bind_int(st, i++, r->returncode);
        sqlite3_bind_int(st, i++, r->main_pid);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->submitted_at);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->started_at);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->finished_at);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->cpu_usage_usec);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->memory_peak);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->output[JOB_STDOUT].size);
        sqlite3_bind_int(st, i++, output_flags(&r->output[JOB_STDOUT]));
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->output[JOB_STDERR].size);
        sqlite3_bind_int(st, i++, output_flags(&r->output[JOB_STDERR]));
        if (r->spec.user.set) {
                groups = groups_format(&r->spec.user);
                if (!groups) {
                        (void) sqlite3_clear_bindings(st);
                        return -ENOMEM;
                }
                sqlite3_bind_int64(st, i++, r->spec.user.uid);
                sqlite3_bind_int64(st, i++, r->spec.user.gid);
                sqlite3_bind_text(st, i++, groups, -1, SQLITE_STATIC);
        } else {
                sqlite3_bind_null(st, i++);
                sqlite3_bind_null(st, i++);
                sqlite3_bind_null(st, i++);
        }
        sqlite3_bind_text(st, i++, r->spec.pool ?: "default", -1, SQLITE_STATIC);
        if (r->spec.n_after > 0) {
                after = ids_pack(r->spec.after, r->spec.n_after);
                if (!after)
                        return -ENOMEM;
                sqlite3_bind_text(st, i++, after, -1, SQLITE_STATIC);
        } else
                sqlite3_bind_null(st, i++);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->spec.not_before_usec);
        sqlite3_bind_int64(st, i++, r->spec.retry);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->spec.retry_delay_usec);
        sqlite3_bind_int64(st, i++, r->attempt);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->wait_until_usec);
        sqlite3_bind_int64(st, i++, (sqlite3_int64) r->reason.dependency);
        sqlite3_bind_int(st, i++, r->reason.dependency_state);
        sqlite3_bind_int(st, i++, r->reason.dependency_returncode);
        bind_text_or_null(st, i++, r->external_id);
        bind_text_or_null(st, i++, r->node);
        return step_done(st);
}

int store_put_pool(Store *s, const StorePool *p) {
        sqlite3_bind_text(s->put_pool, 1, p->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->put_pool, 2, p->size);
        sqlite3_bind_int(s->put_pool, 3, p->paused);
        sqlite3_bind_text(s->put_pool, 4, p->executor ?: "local", -1, SQLITE_STATIC);
        bind_text_or_null(s->put_pool, 5, p->slurm_conf);
        bind_text_or_null(s->put_pool, 6, p->partition);
        return step_done(s->put_pool);
}

int store_delete_pool(Store *s, const char *name) {
        sqlite3_bind_text(s->delete_pool, 1, name, -1, SQLITE_STATIC);
        return step_done(s->delete_pool);
}

int store_load_pools(Store *s, int (*f)(const StorePool *p, void *userdata), void *userdata) {
        sqlite3_stmt *st;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(
                s->db,
                "SELECT name, size, paused, executor, slurm_conf, partition FROM pools ORDER BY "
                "name",
                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                sqlite3_int64 size = sqlite3_column_int64(st, 1);
                StorePool p = {
                        .name = (const char *) sqlite3_column_text(st, 0),
                        .size = (unsigned) size,
                        .paused = sqlite3_column_int(st, 2) != 0,
                        .executor = (const char *) sqlite3_column_text(st, 3),
                        .slurm_conf = (const char *) sqlite3_column_text(st, 4),
                        .partition = (const char *) sqlite3_column_text(st, 5),
                };

                if (!p.name || !p.executor || size <= 0 || size > UINT32_MAX) {
                        r = -EBADMSG;
                        break;
                }
                r = f(&p, userdata);
                if (r < 0)
                        break;
        }
        sqlite3_finalize(st);
        if (r < 0)
                return r;
        return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

int store_delete_job(Store *s, uint64_t id) {
        sqlite3_bind_int64(s->delete_job, 1, (sqlite3_int64) id);
        return step_done(s->delete_job);
}

int store_put_setting(Store *s, const char *key, uint64_t value) {
        sqlite3_bind_text(s->put_setting, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s->put_setting, 2, (sqlite3_int64) value);
        return step_done(s->put_setting);
}

int store_get_setting(Store *s, const char *key, uint64_t *ret) {
        sqlite3_stmt *st = s->get_setting;
        int rc;

        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = (uint64_t) sqlite3_column_int64(st, 0);
        (void) sqlite3_reset(st);
        (void) sqlite3_clear_bindings(st);
        if (rc == SQLITE_ROW)
                return 0;
        return rc == SQLITE_DONE ? -ENOENT : sqlite_errno(rc);
}

static char *column_strdup(sqlite3_stmt *st, int i) {
        const unsigned char *t = sqlite3_column_text(st, i);
        return t ? strdup((const char *) t) : NULL;
}

static int read_job(sqlite3_stmt *st, JobRecord *r) {
        const void *blob;
        int i = 0, flags;

        *r = (JobRecord) {};
        job_spec_init(&r->spec);
        r->id = (uint64_t) sqlite3_column_int64(st, i++);
        r->spec.owner = (uid_t) sqlite3_column_int64(st, i++);
        blob = sqlite3_column_blob(st, i);
        r->spec.argv = strv_unpack(blob ?: "", (size_t) sqlite3_column_bytes(st, i));
        i++;
        if (!r->spec.argv)
                return -ENOMEM;
        if (!r->spec.argv[0])
                return -EBADMSG; /* argv is never empty */
        if (sqlite3_column_type(st, i) != SQLITE_NULL) {
                blob = sqlite3_column_blob(st, i);
                r->spec.environment = strv_unpack(blob ?: "", (size_t) sqlite3_column_bytes(st, i));
                if (!r->spec.environment)
                        return -ENOMEM;
        }
        i++;
        r->spec.clear_environment = sqlite3_column_int(st, i++);
        r->spec.cwd = column_strdup(st, i++);
        r->spec.timeout_usec = (uint64_t) sqlite3_column_int64(st, i++);
        r->spec.stop_timeout_usec = (uint64_t) sqlite3_column_int64(st, i++);
        r->spec.output_limit = (uint64_t) sqlite3_column_int64(st, i++);
        r->spec.kill_on_output_limit = sqlite3_column_int(st, i++);
        r->spec.has_input = sqlite3_column_int(st, i++);
        r->spec.passed_fds = (unsigned) sqlite3_column_int(st, i++);
        r->spec.cancel_on_disconnect = sqlite3_column_int(st, i++);
        r->spec.priority = sqlite3_column_int(st, i++);
        r->spec.label = column_strdup(st, i++);
        r->spec.memory_max = (uint64_t) sqlite3_column_int64(st, i++);
        r->state = sqlite3_column_int(st, i++);
        r->reason.kind = sqlite3_column_int(st, i++);
        r->reason.stream = sqlite3_column_int(st, i++);
        r->reason.limit = (uint64_t) sqlite3_column_int64(st, i++);
        r->reason.error = sqlite3_column_int(st, i++);
        r->reason.detail = column_strdup(st, i++);
        r->returncode = sqlite3_column_int(st, i++);
        r->main_pid = sqlite3_column_int(st, i++);
        r->submitted_at = (uint64_t) sqlite3_column_int64(st, i++);
        r->started_at = (uint64_t) sqlite3_column_int64(st, i++);
        r->finished_at = (uint64_t) sqlite3_column_int64(st, i++);
        r->cpu_usage_usec = (uint64_t) sqlite3_column_int64(st, i++);
        r->memory_peak = (uint64_t) sqlite3_column_int64(st, i++);
        for (int s = 0; s < _JOB_STREAM_MAX; s++) {
                r->output[s].size = (uint64_t) sqlite3_column_int64(st, i++);
                flags = sqlite3_column_int(st, i++);
                r->output[s].truncated = flags & 1;
                r->output[s].incomplete = flags & 2;
                r->output[s].released = flags & 4;
        }
        if (sqlite3_column_type(st, i) != SQLITE_NULL) {
                sqlite3_int64 uid = sqlite3_column_int64(st, i), gid = sqlite3_column_int64(st, i + 1);
                const unsigned char *groups = sqlite3_column_text(st, i + 2);
                int k;

                if (uid < 0 || uid >= (uid_t) -1 || gid < 0 || gid >= (gid_t) -1 || !groups)
                        return -EBADMSG;
                r->spec.user.set = true;
                r->spec.user.uid = (uid_t) uid;
                r->spec.user.gid = (gid_t) gid;
                k = groups_parse((const char *) groups, &r->spec.user);
                if (k < 0)
                        return k;
        }
        i += 3;
        r->spec.pool = column_strdup(st, i++);
        if (!r->spec.pool)
                return -ENOMEM;
        if (sqlite3_column_type(st, i) != SQLITE_NULL) {
                int k = ids_unpack((const char *) sqlite3_column_text(st, i), &r->spec.after,
                                   &r->spec.n_after);
                if (k < 0)
                        return k;
        }
        i++;
        r->spec.not_before_usec = (uint64_t) sqlite3_column_int64(st, i++);
        r->spec.retry = (unsigned) sqlite3_column_int64(st, i++);
        r->spec.retry_delay_usec = (uint64_t) sqlite3_column_int64(st, i++);
        r->attempt = (unsigned) sqlite3_column_int64(st, i++);
        r->wait_until_usec = (uint64_t) sqlite3_column_int64(st, i++);
        r->reason.dependency = (uint64_t) sqlite3_column_int64(st, i++);
        r->reason.dependency_state = sqlite3_column_int(st, i++);
        r->reason.dependency_returncode = sqlite3_column_int(st, i++);
        r->external_id = column_strdup(st, i++);
        r->node = column_strdup(st, i++);
        if (r->state < 0 || r->state >= _JOB_STATE_MAX || r->reason.kind < 0 ||
            r->reason.kind >= _JOB_REASON_MAX || r->reason.stream < 0 ||
            r->reason.stream >= _JOB_STREAM_MAX || r->reason.dependency_state < 0 ||
            r->reason.dependency_state > _JOB_STATE_MAX)
                return -EBADMSG;
        return 0;
}

int store_load_jobs(Store *s, int (*f)(JobRecord *r, void *userdata), void *userdata) {
        sqlite3_stmt *st;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(s->db, "SELECT " JOB_COLUMNS " FROM jobs ORDER BY id", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return sqlite_errno(rc);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                JobRecord rec;

                r = read_job(st, &rec);
                if (r >= 0)
                        r = f(&rec, userdata);
                job_spec_done(&rec.spec);
                free(rec.reason.detail);
                free(rec.external_id);
                free(rec.node);
                if (r < 0)
                        break;
        }
        sqlite3_finalize(st);
        if (r < 0)
                return r;
        return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}
