/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* logind hands each inhibitor out as a file descriptor: the lock lasts while we keep it
 * open. A reply that arrives after the job ended is dropped with its slot, which closes
 * the descriptor in it. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include "inhibit.h"

#define INHIBIT_WHO "stm32ispd"

typedef struct InhibitLock {
        Inhibitor *owner;
        sd_bus_slot *slot;
        int fd;
} InhibitLock;

struct Inhibitor {
        InhibitLock locks[2];           /* sleep (block), shutdown (delay) */
};

static int on_inhibit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        InhibitLock *l = userdata;
        int fd;

        l->slot = sd_bus_slot_unref(l->slot);
        /* No logind, or it refused: carry on without the lock. */
        if (sd_bus_message_is_method_error(reply, NULL))
                return 0;
        if (sd_bus_message_read(reply, "h", &fd) < 0)
                return 0;
        l->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        return 0;
}

int inhibitor_new(sd_bus *bus, const char *operation, const char *device, Inhibitor **ret) {
        static const char *const what[] = { "sleep", "shutdown" };
        static const char *const mode[] = { "block", "delay" };
        _cleanup_(inhibitor_freep) Inhibitor *i = NULL;
        _cleanup_free_ char *why = NULL;
        int r;

        if (asprintf(&why, "%s on %s", operation, device) < 0)
                return -ENOMEM;
        i = calloc(1, sizeof *i);
        if (!i)
                return -ENOMEM;
        for (size_t k = 0; k < ELEMENTSOF(i->locks); k++)
                i->locks[k] = (InhibitLock) { .owner = i, .fd = -1 };
        for (size_t k = 0; k < ELEMENTSOF(i->locks); k++) {
                r = sd_bus_call_method_async(bus, &i->locks[k].slot, "org.freedesktop.login1",
                                             "/org/freedesktop/login1", "org.freedesktop.login1.Manager",
                                             "Inhibit", on_inhibit_reply, &i->locks[k], "ssss",
                                             what[k], INHIBIT_WHO, why, mode[k]);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(i);
        return 0;
}

Inhibitor *inhibitor_free(Inhibitor *i) {
        if (!i)
                return NULL;
        for (size_t k = 0; k < ELEMENTSOF(i->locks); k++) {
                sd_bus_slot_unref(i->locks[k].slot);
                if (i->locks[k].fd >= 0)
                        close(i->locks[k].fd);
        }
        free(i);
        return NULL;
}
