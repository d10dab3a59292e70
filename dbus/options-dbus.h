/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Decoding and validating a request's argv, input and a{sv} options from a method call. */
#pragma once

#include <stdbool.h>

#include <systemd/sd-bus.h>

#include "job.h"

/* Bounds checked before anything is forked: argv and environment together, and the label. The
 * kernel takes 2 MiB of arguments and environment at most; a request stays well below. */
#define REQUEST_ARGS_MAX_BYTES (1024U * 1024U)
#define REQUEST_ARGS_MAX_ENTRIES 16384U
#define REQUEST_LABEL_MAX 4096U
/* The longest cwd taken, in bytes. Paths above PATH_MAX (4096) but within this fail the job at chdir(). */
#define REQUEST_CWD_MAX 16384U
/* The most jobs one job may wait for ("after"), and the most retries it may ask for. */
#define REQUEST_AFTER_MAX 1024U
#define REQUEST_RETRY_MAX 1000U

/* SubmitMany: the most jobs one call takes, and the most bytes their argvs take in all (each argv also
 * stays within REQUEST_ARGS_MAX_BYTES and REQUEST_ARGS_MAX_ENTRIES with the environment). */
#define REQUEST_MANY_MAX 4096U
#define REQUEST_MANY_MAX_BYTES (16U * 1024U * 1024U)

typedef enum RequestKind {
        REQUEST_SUBMIT,
        REQUEST_CALL,
        REQUEST_COMMUNICATE,
        REQUEST_SUBMIT_MANY, /* one set of options for many argvs: no fds */
} RequestKind;

typedef struct Request {
        JobSpec spec;
        char *user; /* the user option as given, or NULL */
} Request;

/* The longest user option taken, in bytes (a name or a decimal uid). */
#define REQUEST_USER_MAX 256U

/* Reads "as a{sv}" (or "as ay a{sv}" for REQUEST_COMMUNICATE) from message into ret. Bad input
 * fills error (InvalidArgs naming the problem) and returns a negative errno; ret is then untouched.
 * On success the caller owns ret->spec. */
int request_parse(sd_bus_message *message, RequestKind kind, Request *ret, sd_bus_error *error);
/* Reads SubmitMany's "aas a{sv}": the argvs into *ret_argvs (*ret_n of them, at least one), the options
 * into ret (whose spec.argv is NULL). Options that one job uses up (fds) are refused; an error about one
 * argv names its index ("argvs[3]: ..."). On success the caller owns both (request_argvs_free()). */
int request_parse_many(sd_bus_message *message, Request *ret, char ****ret_argvs, size_t *ret_n,
                       sd_bus_error *error);
/* Frees n argvs and the array. */
void request_argvs_free(char ***argvs, size_t n);
/* Frees what req holds. */
void request_done(Request *req);
/* Sets whom the job runs as: the user option's user, else uid, from the user database: its uid, primary
 * gid and supplementary groups (as login would), and HOME, USER, LOGNAME and SHELL in its environment
 * where the request does not set them. A user the database does not know fills error (InvalidArgs). */
int request_resolve_user(Request *req, uid_t uid, sd_bus_error *error);
