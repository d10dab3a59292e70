/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A C client on the gdbus-codegen binding of the installed XML: 1 MiB of random bytes through `cat`. */
#include <stdio.h>
#include <string.h>

#include <gio/gio.h>

#include "procpool-generated.h"

#define BUS_NAME "org.procpool.Supervisor1"
#define MANAGER_PATH "/org/procpool/Supervisor1"
#define INPUT_SIZE (1024 * 1024)

/* The job that ran "cat" last, from the ObjectManager client's cache (NULL if there is none). */
static ProcpoolJob1 *find_cat_job(GDBusObjectManager *om) {
        GList *objects = g_dbus_object_manager_get_objects(om);
        ProcpoolJob1 *found = NULL;

        for (GList *l = objects; l; l = l->next) {
                ProcpoolJob1 *job = procpool_object_get_job1(PROCPOOL_OBJECT(l->data));
                const char *const *argv = job ? procpool_job1_get_argv(job) : NULL;

                if (argv && argv[0] && g_str_equal(argv[0], "cat") &&
                    (!found || procpool_job1_get_id(job) > procpool_job1_get_id(found))) {
                        g_clear_object(&found);
                        found = g_steal_pointer(&job);
                }
                g_clear_object(&job);
        }
        g_list_free_full(objects, g_object_unref);
        return found;
}

int main(void) {
        const char *const argv[] = { "cat", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(ProcpoolSupervisor1) supervisor = NULL;
        g_autoptr(GDBusObjectManager) om = NULL;
        g_autoptr(ProcpoolJob1) job = NULL;
        g_autoptr(GVariant) out = NULL, err = NULL;
        g_autofree guint8 *input = g_malloc(INPUT_SIZE);
        GVariantDict options;
        const guint8 *got;
        gsize got_size;
        gint rc;

        /* Random bytes, with a NUL and bytes no UTF-8 has at the start: a binding that took 'ay' for a
         * string would cut them short or refuse them. */
        for (gsize i = 0; i < INPUT_SIZE; i += sizeof(guint32)) {
                guint32 r = g_random_int();
                memcpy(input + i, &r, sizeof(r));
        }
        input[0] = 0;
        input[1] = 0xff;
        input[2] = 0xc0;
        input[INPUT_SIZE - 1] = 0;

        supervisor = procpool_supervisor1_proxy_new_for_bus_sync(G_BUS_TYPE_SESSION, G_DBUS_PROXY_FLAGS_NONE,
                                                                 BUS_NAME, MANAGER_PATH, NULL, &error);
        if (!supervisor) {
                fprintf(stderr, "Failed to reach %s: %s\n", BUS_NAME, error->message);
                return 1;
        }
        /* Communicate answers when the job ends: GDBus's default of 25 s would cut off a long job. */
        g_dbus_proxy_set_default_timeout(G_DBUS_PROXY(supervisor), G_MAXINT);
        om = procpool_object_manager_client_new_for_bus_sync(G_BUS_TYPE_SESSION,
                                                             G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_NONE,
                                                             BUS_NAME, MANAGER_PATH, NULL, &error);
        if (!om) {
                fprintf(stderr, "Failed to list the jobs of %s: %s\n", BUS_NAME, error->message);
                return 1;
        }

        g_variant_dict_init(&options, NULL);
        g_variant_dict_insert(&options, "label", "s", "gdbus-codegen example");
        /* The fd lists (NULL here) carry the fds of the 'stdout'/'stderr' options ('h': an index into
         * the list), as with g_dbus_proxy_call_with_unix_fd_list(). */
        if (!procpool_supervisor1_call_communicate_sync(
                    supervisor, argv, g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, input, INPUT_SIZE, 1),
                    g_variant_dict_end(&options), NULL, &rc, &out, &err, NULL, NULL, &error)) {
                fprintf(stderr, "Communicate failed: %s\n", error->message);
                return 1;
        }

        got = g_variant_get_fixed_array(out, &got_size, 1);
        if (rc != 0 || got_size != INPUT_SIZE || memcmp(got, input, INPUT_SIZE) != 0) {
                fprintf(stderr, "cat gave back %zu bytes (rc %d), not the %d sent\n", got_size, rc,
                        INPUT_SIZE);
                return 1;
        }
        if (g_variant_n_children(err) != 0) {
                fprintf(stderr, "cat wrote %zu bytes to stderr\n", g_variant_n_children(err));
                return 1;
        }

        /* The signals that came before the answer update the cache once the main loop runs them: the
         * job's final PropertiesChanged precedes the reply, so the cache says "exited" now. */
        while (g_main_context_iteration(NULL, FALSE))
                ;
        job = find_cat_job(om);
        if (!job || !g_str_equal(procpool_job1_get_state(job), "exited") ||
            procpool_job1_get_return_code(job) != 0) {
                fprintf(stderr, "The job's cached state is %s, not exited\n",
                        job ? procpool_job1_get_state(job) : "(no job)");
                return 1;
        }
        printf("%d bytes came back unchanged from job %" G_GUINT64_FORMAT " (%s)\n", INPUT_SIZE,
               procpool_job1_get_id(job), procpool_job1_get_label(job));
        return 0;
}
