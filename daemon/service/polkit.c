/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Asking polkit without blocking the event loop: the method handler starts a
 * CheckAuthorization call and returns; when polkit answers, the verdict is kept and the
 * original call is put back into the bus's read queue (sd_bus_enqueue_for_read), so the
 * handler runs again from the start and this time finds the verdict. */

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "polkit.h"

#define POLKIT_TIMEOUT_USEC (25 * USEC_PER_SEC)
/* An interactive check waits for a person to type a password. */
#define POLKIT_INTERACTIVE_TIMEOUT_USEC (300 * USEC_PER_SEC)
#define POLKIT_FLAG_ALLOW_USER_INTERACTION 1u

typedef struct PolkitQuery PolkitQuery;
struct PolkitQuery {
        Polkit *polkit;
        PolkitQuery *next;
        sd_bus_message *request;
        uid_t uid;                      /* the caller's */
        char **actions;                 /* asked in turn, NULL-terminated */
        size_t current;
        char *device;
        sd_bus_slot *slot;              /* the CheckAuthorization call under way */
        bool done;
        int verdict;                    /* done: 1 allowed, or a negative errno with error */
        sd_bus_error error;
};

struct Polkit {
        sd_bus *bus;
        PolkitQuery *queries;
        sd_event_source *sweep;         /* drops verdicts that no handler came back for */
        gid_t group;
        bool have_group;
};

static PolkitQuery *query_free(PolkitQuery *q) {
        if (!q)
                return NULL;
        sd_bus_slot_unref(q->slot);
        sd_bus_message_unref(q->request);
        sd_bus_error_free(&q->error);
        for (size_t i = 0; q->actions && q->actions[i]; i++)
                free(q->actions[i]);
        free(q->actions);
        free(q->device);
        free(q);
        return NULL;
}

static void query_unlink(PolkitQuery *q) {
        for (PolkitQuery **i = &q->polkit->queries; *i; i = &(*i)->next)
                if (*i == q) {
                        *i = q->next;
                        break;
                }
}

/* The fallback group's gid; its member list can be long. */
static int lookup_group(gid_t *ret) {
        for (size_t size = 4096; size <= 1024 * 1024; size *= 4) {
                _cleanup_free_ char *buf = malloc(size);
                struct group g, *found = NULL;
                int r;

                if (!buf)
                        return -ENOMEM;
                r = getgrnam_r(STM32ISP_GROUP, &g, buf, size, &found);
                if (r == ERANGE)
                        continue;
                if (r != 0 || !found)
                        return -ENOENT;
                *ret = found->gr_gid;
                return 0;
        }
        return -ERANGE;
}

int polkit_new(sd_bus *bus, Polkit **ret) {
        Polkit *pk = calloc(1, sizeof *pk);

        if (!pk)
                return -ENOMEM;
        pk->bus = sd_bus_ref(bus);
        pk->have_group = lookup_group(&pk->group) == 0;
        *ret = pk;
        return 0;
}

Polkit *polkit_free(Polkit *pk) {
        if (!pk)
                return NULL;
        while (pk->queries) {
                PolkitQuery *q = pk->queries;
                pk->queries = q->next;
                query_free(q);
        }
        sd_event_source_disable_unref(pk->sweep);
        sd_bus_unref(pk->bus);
        free(pk);
        return NULL;
}

/* The caller as the bus daemon saw it when it connected (never /proc, which a caller could
 * race and the unit hides): 1 if root or the daemon's own user. sd-bus asks the bus (a
 * short call to the bus driver, as systemd's daemons do). */
static int sender_is_trusted(sd_bus_message *m, uid_t *ret_uid) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uid_t uid;
        int r;

        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID, &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return r;
        if (ret_uid)
                *ret_uid = uid;
        return uid == 0 || uid == geteuid();
}

static bool gids_contain(const gid_t *gids, size_t n, gid_t gid) {
        for (size_t i = 0; i < n; i++)
                if (gids[i] == gid)
                        return true;
        return false;
}

/* Whether the caller is in the fallback group: its groups as the bus driver reports them
 * (UnixGroupIDs, dbus-daemon >= 1.14 and dbus-broker: what the process really holds; sd-bus
 * does not read them), else the user database's groups of its uid. */
static bool sender_in_group(Polkit *pk, sd_bus_message *m, uid_t uid) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        gid_t gids[256];
        int n = 0, r;

        if (!pk->have_group)
                return false;
        r = sd_bus_call_method(pk->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "GetConnectionCredentials", NULL, &reply, "s", sd_bus_message_get_sender(m));
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r > 0) {
                const char *key;

                r = sd_bus_message_enter_container(reply, 'e', "sv");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(reply, "s", &key);
                if (r >= 0 && strcmp(key, "UnixGroupIDs") == 0) {
                        const uint32_t *v;
                        size_t size;

                        r = sd_bus_message_enter_container(reply, 'v', "au");
                        if (r > 0)
                                r = sd_bus_message_read_array(reply, 'u', (const void **) &v, &size);
                        if (r < 0)
                                return false;
                        for (size_t i = 0; i < size / sizeof *v; i++)
                                if (v[i] == pk->group)
                                        return true;
                        return false;
                }
                if (r >= 0)
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }

        /* An older bus: the user database. */
        struct passwd pw, *found = NULL;
        char buf[4096];
        if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) != 0 || !found)
                return false;
        n = ELEMENTSOF(gids);
        if (getgrouplist(found->pw_name, found->pw_gid, gids, &n) < 0)
                return false;
        return gids_contain(gids, (size_t) n, pk->group);
}

static bool polkit_unavailable(const sd_bus_error *e) {
        return sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                      "org.freedesktop.DBus.Error.Spawn.ServiceNotFound",
                                      "org.freedesktop.systemd1.NoSuchUnit");
}

/* The verdict from polkit's reply, or from the credentials where polkit is missing. */
static int query_verdict(PolkitQuery *q, sd_bus_message *reply) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        const char *action = q->actions[q->current];
        int authorized, challenge, r;

        if (e) {
                if (!polkit_unavailable(e))
                        return sd_bus_error_setf(&q->error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "Cannot ask polkit about %s: %s", action,
                                                 e->message ?: e->name);
                if (sender_in_group(q->polkit, q->request, q->uid))
                        return 1;
                return sd_bus_error_setf(&q->error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Not authorized for %s: polkitd is not running, so only root and members of "
                                         "the group " STM32ISP_GROUP " may do this (ask the administrator to add "
                                         "you to it, or to install polkitd)", action);
        }

        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0)
                return sd_bus_error_setf(&q->error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "polkit's answer about %s cannot be read: %s", action, strerror(-r));
        if (authorized)
                return 1;
        if (challenge)
                return sd_bus_error_setf(&q->error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                         "Authentication is required for %s: call interactively (stm32ispctl on a "
                                         "terminal, or an application in a session with a polkit agent), or ask the "
                                         "administrator to add you to the group " STM32ISP_GROUP, action);
        return sd_bus_error_setf(&q->error, SD_BUS_ERROR_ACCESS_DENIED,
                                 "Not authorized for %s: ask the administrator to add you to the group "
                                 STM32ISP_GROUP ", or to grant the action in a polkit rule", action);
}

static int query_ask(PolkitQuery *q);

/* After the calls with a verdict ran again: a verdict still here was not asked for (the
 * handler refused the call earlier this time, e.g. the port went away). */
static int on_sweep(sd_event_source *s, void *userdata) {
        Polkit *pk = userdata;

        for (PolkitQuery **i = &pk->queries; *i;) {
                PolkitQuery *q = *i;

                if (q->done) {
                        *i = q->next;
                        query_free(q);
                } else
                        i = &q->next;
        }
        return 0;
}

static int schedule_sweep(Polkit *pk) {
        int r;

        if (!pk->sweep) {
                r = sd_event_add_defer(sd_bus_get_event(pk->bus), &pk->sweep, on_sweep, pk);
                if (r < 0)
                        return r;
                /* Idle: after the bus dispatched the calls put back in its queue. */
                r = sd_event_source_set_priority(pk->sweep, SD_EVENT_PRIORITY_IDLE);
                if (r < 0)
                        return r;
        }
        return sd_event_source_set_enabled(pk->sweep, SD_EVENT_ONESHOT);
}

static int on_check_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        int r;

        q->slot = sd_bus_slot_unref(q->slot);
        q->verdict = query_verdict(q, reply);
        if (q->verdict > 0 && q->actions[q->current + 1]) {
                q->current++;
                r = query_ask(q);
                if (r >= 0)
                        return 0;
                q->verdict = sd_bus_error_set_errnof(&q->error, -r, "Cannot ask polkit about %s: %m",
                                                     q->actions[q->current]);
        }
        q->done = true;

        /* The call runs again from its first argument. */
        r = schedule_sweep(q->polkit);
        if (r >= 0)
                r = sd_bus_message_rewind(q->request, true);
        if (r >= 0)
                r = sd_bus_enqueue_for_read(q->polkit->bus, q->request);
        if (r < 0) {
                (void) sd_bus_reply_method_errno(q->request, -r, NULL);
                query_unlink(q);
                query_free(q);
        }
        return 0;
}

/* Sends CheckAuthorization for the query's current action. */
static int query_ask(PolkitQuery *q) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        bool interactive = sd_bus_message_get_allow_interactive_authorization(q->request) > 0;
        const char *sender = sd_bus_message_get_sender(q->request);
        int r;

        if (!sender)
                return -EBADMSG;
        r = sd_bus_message_new_method_call(q->polkit->bus, &call, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r < 0)
                return r;
        /* The subject is the caller's bus name: polkit asks the bus who that is. */
        r = sd_bus_message_append(call, "(sa{sv})s", "system-bus-name", 1, "name", "s", sender,
                                  q->actions[q->current]);
        if (r < 0)
                return r;
        if (q->device)
                r = sd_bus_message_append(call, "a{ss}", 1, "device", q->device);
        else
                r = sd_bus_message_append(call, "a{ss}", 0);
        if (r >= 0)
                r = sd_bus_message_append(call, "us", interactive ? POLKIT_FLAG_ALLOW_USER_INTERACTION : 0u, "");
        if (r < 0)
                return r;
        return sd_bus_call_async(q->polkit->bus, &q->slot, call, on_check_reply, q,
                                 interactive ? POLKIT_INTERACTIVE_TIMEOUT_USEC : POLKIT_TIMEOUT_USEC);
}

static int query_start(Polkit *pk, sd_bus_message *m, uid_t uid, const char *const *actions, const char *device) {
        PolkitQuery *q;
        size_t n = 0;
        int r;

        q = calloc(1, sizeof *q);
        if (!q)
                return -ENOMEM;
        *q = (PolkitQuery) { .polkit = pk, .request = sd_bus_message_ref(m), .uid = uid, .error = SD_BUS_ERROR_NULL };
        while (actions[n])
                n++;
        q->actions = calloc(n + 1, sizeof *q->actions);
        if (!q->actions || (device && !(q->device = strdup(device)))) {
                query_free(q);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                if (!(q->actions[i] = strdup(actions[i]))) {
                        query_free(q);
                        return -ENOMEM;
                }
        r = query_ask(q);
        if (r < 0) {
                query_free(q);
                return r;
        }
        q->next = pk->queries;
        pk->queries = q;
        return 0;
}

int polkit_authorize(Polkit *pk, sd_bus_message *m, const char *const *actions, const char *device,
                     sd_bus_error *error) {
        uid_t uid;
        int r;

        for (PolkitQuery *q = pk->queries; q; q = q->next) {
                if (q->request != m)
                        continue;
                if (!q->done)
                        return 1;
                query_unlink(q);
                r = q->verdict;
                if (r < 0)
                        sd_bus_error_move(error, &q->error);
                query_free(q);
                return r < 0 ? r : 0;
        }

        /* Root and the daemon's own user gain nothing by asking. */
        r = sender_is_trusted(m, &uid);
        if (r < 0)
                return sd_bus_error_set_errnof(error, -r, "Cannot identify the caller: %m");
        if (r > 0)
                return 0;
        r = query_start(pk, m, uid, actions, device);
        if (r < 0)
                return sd_bus_error_set_errnof(error, -r, "Cannot ask polkit about %s: %m", actions[0]);
        return 1;
}
