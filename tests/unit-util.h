/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the unit tests of the model share: a spool directory of their own. */
#pragma once

#include <glib.h>
#include <glib/gstdio.h>

/* A fresh directory for a test's spool. */
static inline char *spool_dir_new(void) {
        g_autoptr(GError) error = NULL;
        char *dir = g_dir_make_tmp("procpool-spool-XXXXXX", &error);

        g_assert_no_error(error);
        return dir;
}

/* Removes the spool directory and what the test left in it. */
static inline void spool_dir_free(char *dir) {
        GDir *d = g_dir_open(dir, 0, NULL);
        const char *name;

        if (d) {
                while ((name = g_dir_read_name(d))) {
                        g_autofree char *path = g_build_filename(dir, name, NULL);
                        g_assert_cmpint(g_unlink(path), ==, 0);
                }
                g_dir_close(d);
        }
        g_assert_cmpint(g_rmdir(dir), ==, 0);
        g_free(dir);
}
