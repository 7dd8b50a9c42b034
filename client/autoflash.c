/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stm32ispctl autoflash: shows, arms and clears the daemon's auto-flash profile
 * (Manager.AutoFlash, SetAutoFlash, ClearAutoFlash). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoflash.h"
#include "commands.h"
#include "exit-codes.h"
#include "output.h"
#include "stm32isp-keys.h"
#include "stm32isp.h"
#include "util.h"

/* New profile keys: one row here (and the key's documentation in the Manager XML). */
const ProfileOption profile_options[] = {
        { "vid",         STM32ISP_KEY_VID,     'q', "VID",  "match: the adapter's USB vendor ID (0x0403)" },
        { "pid",         STM32ISP_KEY_PID,     'q', "PID",  "match: the adapter's USB product ID (with --vid)" },
        { "adapter-serial", STM32ISP_KEY_SERIAL, 's', "GLOB", "match: the adapter's USB serial number" },
        { "id-path",     STM32ISP_KEY_ID_PATH, 's', "GLOB", "match: the adapter's ID_PATH (where it is plugged in)" },
        { "port",        STM32ISP_KEY_PORT,    's', "GLOB", "match: the port's device or name; ports added by name\n"
          "                        (tcp://, rfc2217://) are flashed only when it names them" },
        { "detect",      STM32ISP_KEY_DETECT,  's', "plug|poll", "plug: a board is flashed when its port appears; poll:\n"
          "                        ports that stay are asked every --poll-ms (fixtures)" },
        { "poll-ms",     STM32ISP_KEY_POLL_MS, 'u', "MS",   "--detect=poll: the interval, 100..10000 (500)" },
        { "expect-chip", STM32ISP_KEY_EXPECT_CHIP, 'q', "PID",  "only flash this chip (its product ID, 0x466); others fail" },
};
const size_t profile_options_n = ELEMENTSOF(profile_options);
_Static_assert(ELEMENTSOF(profile_options) <= PROFILE_OPTIONS_MAX, "PROFILE_OPTIONS_MAX too small");

static int append_profile_option(sd_bus_message *m, const ProfileOption *o, const char *value) {
        uint64_t v = 0;

        if (o->type == 's')
                return client_append_option(m, o->key, "s", value);
        if (o->type == 'b')
                return client_append_option(m, o->key, "b", 1);
        if (parse_address(value, &v) < 0 || (o->type == 'q' && v > UINT16_MAX) || (o->type == 'u' && v > UINT32_MAX))
                return -EINVAL;
        if (o->type == 'q')
                return client_append_option(m, o->key, "q", (uint16_t) v);
        if (o->type == 'u')
                return client_append_option(m, o->key, "u", (uint32_t) v);
        return client_append_option(m, o->key, "t", v);
}

static int manager_call(ClientBus *c, const char *what, sd_bus_message *call) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call(c->bus, call, 0, &error, &reply);
        if (r < 0) {
                r = client_report_error(c, what, &error, r);
                sd_bus_error_free(&error);
                return r;
        }
        return 0;
}

static int autoflash_show(ClientBus *c, const Args *a) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_json_ json_object *profile = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_get_property(c->bus, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH, STM32ISP_MANAGER_INTERFACE,
                                "AutoFlash", &error, &reply, "a{sv}");
        if (r < 0) {
                r = client_report_error(c, "autoflash", &error, r);
                sd_bus_error_free(&error);
                return r;
        }
        r = json_from_bus_message(reply, &profile);
        if (r < 0 || !json_object_is_type(profile, json_type_object))
                return failure_printf(EXIT_FAILURE_GENERIC, "autoflash: cannot parse the profile");
        if (a->json) {
                _cleanup_json_ json_object *o = json_object_new_object();

                json_object_object_add(o, "operation", json_object_new_string("autoflash"));
                json_object_object_add(o, "auto_flash", json_object_get(profile));
                json_print(stdout, o, false);
                return EXIT_OK;
        }
        if (a->quiet)
                return EXIT_OK;
        json_object *armed = json_get(profile, "armed");
        if (!armed || !json_object_get_boolean(armed)) {
                printf("Auto-flash is not armed.\n");
                return EXIT_OK;
        }
        const char *name = json_get_string(profile, "image_name"), *source = json_get_string(profile, "source");
        printf("Auto-flash armed (%s): %s\n", source && streq(source, "config") ? "from the configuration file" :
                                              "over the bus", name && *name ? name : "(unnamed image)");
        json_object_object_del(profile, "armed");
        text_print_object(stdout, profile, 2, 0);
        return EXIT_OK;
}

static int autoflash_set(ClientBus *c, const Args *a) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_close_ int fd = a->image_fd;
        const char *file = a->pos[1];
        int r;

        if (sd_bus_message_new_method_call(c->bus, &call, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH,
                                           STM32ISP_MANAGER_INTERFACE, "SetAutoFlash") < 0 ||
            sd_bus_message_append(call, "h", fd) < 0 || sd_bus_message_open_container(call, 'a', "{sv}") < 0)
                return EXIT_FAILURE_GENERIC;
        r = flash_append_options(call, a, file);
        for (size_t i = 0; r >= 0 && i < profile_options_n; i++)
                if (a->profile[i]) {
                        r = append_profile_option(call, &profile_options[i], a->profile[i]);
                        if (r == -EINVAL)
                                return failure_printf(EXIT_USAGE, "autoflash: invalid --%s '%s'",
                                                      profile_options[i].option, a->profile[i]);
                }
        if (r < 0 || sd_bus_message_close_container(call) < 0)
                return EXIT_FAILURE_GENERIC;
        fd = safe_close(fd);    /* the message holds its own copy */

        r = manager_call(c, "autoflash set", call);
        if (r != 0)
                return r;
        /* What is armed now, as the daemon took it. */
        return autoflash_show(c, a);
}

static int autoflash_clear(ClientBus *c, const Args *a) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r;

        if (sd_bus_message_new_method_call(c->bus, &call, STM32ISP_BUS_NAME, STM32ISP_MANAGER_PATH,
                                           STM32ISP_MANAGER_INTERFACE, "ClearAutoFlash") < 0)
                return EXIT_FAILURE_GENERIC;
        r = manager_call(c, "autoflash clear", call);
        if (r != 0)
                return r;
        return autoflash_show(c, a);
}

int cmd_autoflash(ClientBus *c, const Args *a) {
        const char *verb = a->n_pos > 0 ? a->pos[0] : "show";

        if (streq(verb, "set"))
                return autoflash_set(c, a);
        if (streq(verb, "clear"))
                return autoflash_clear(c, a);
        return autoflash_show(c, a);
}
