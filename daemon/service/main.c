/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stm32ispd: options, the bus connection, the event loop, signals and sd_notify. */

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "log.h"
#include "manager.h"
#include "statedir.h"
#include "stm32isp.h"

typedef enum BusChoice {
        BUS_SYSTEM,
        BUS_SESSION,
        BUS_ADDRESS,
} BusChoice;

static BusChoice arg_bus = BUS_SYSTEM;
static const char *arg_address;
static const char *arg_config;
static const char *arg_state_dir;
static bool arg_verbose;

static void help(void) {
        printf("Usage: stm32ispd [OPTIONS]\n\n"
               "Programs STM32 microcontrollers through their ROM UART bootloader, on D-Bus\n"
               "as " STM32ISP_BUS_NAME ".\n\n"
               "  -h --help               Show this help\n"
               "     --version            Show the version\n"
               "     --session            Use the user's session bus\n"
               "     --bus-address=ADDR   Connect to the bus at ADDR\n"
               "     --config=FILE        Read the configuration from FILE (system bus default:\n"
               "                          " SYSCONFDIR "/stm32ispd.conf, if it exists)\n"
               "     --state-dir=DIR      Keep the results log in DIR (default: $STATE_DIRECTORY;\n"
               "                          with --session $XDG_STATE_HOME/stm32ispd)\n"
               "  -v --verbose            Log protocol traces\n");
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_SESSION,
                ARG_BUS_ADDRESS,
                ARG_CONFIG,
                ARG_STATE_DIR,
        };
        static const struct option options[] = {
                { "help",        no_argument,       NULL, 'h' },
                { "version",     no_argument,       NULL, ARG_VERSION },
                { "session",     no_argument,       NULL, ARG_SESSION },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                { "config",      required_argument, NULL, ARG_CONFIG },
                { "state-dir",   required_argument, NULL, ARG_STATE_DIR },
                { "verbose",     no_argument,       NULL, 'v' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "hv", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("stm32ispd %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_SESSION:
                        arg_bus = BUS_SESSION;
                        break;
                case ARG_BUS_ADDRESS:
                        arg_bus = BUS_ADDRESS;
                        arg_address = optarg;
                        break;
                case ARG_CONFIG:
                        arg_config = optarg;
                        break;
                case ARG_STATE_DIR:
                        arg_state_dir = optarg;
                        break;
                case 'v':
                        arg_verbose = true;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "stm32ispd: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static int open_bus(sd_bus **ret) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        int r;

        switch (arg_bus) {
        case BUS_SESSION:
                return sd_bus_open_user(ret);
        case BUS_SYSTEM:
                return sd_bus_open_system(ret);
        default:
                break;
        }
        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, arg_address);
        if (r < 0)
                return r;
        r = sd_bus_set_bus_client(bus, true);
        if (r < 0)
                return r;
        r = sd_bus_negotiate_fds(bus, true);
        if (r < 0)
                return r;
        r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

/* --state-dir, else the first of systemd's StateDirectory= list, else for --session the
 * user's XDG state folder; none: no results file, results go to the log only. */
static int setup_state_dir(Manager *m) {
        _cleanup_free_ char *dir = NULL;
        const char *e = getenv("STATE_DIRECTORY");
        int r;

        if (arg_state_dir)
                dir = strdup(arg_state_dir);
        else if (e && *e)
                dir = strndup(e, strcspn(e, ":"));
        else if (arg_bus == BUS_SESSION) {
                r = statedir_session(&dir);
                if (r < 0) {
                        /* A user's daemon still flashes; it only keeps no file. */
                        log_warning(NULL, "No state directory under $XDG_STATE_HOME or ~/.local/state (%s): "
                                    "results go to the log only", strerror(-r));
                        return 0;
                }
        } else {
                log_info(NULL, "No state directory: results go to the log only");
                return 0;
        }
        if (!dir)
                return -ENOMEM;
        r = manager_set_state_dir(m, dir, 0);
        if (r < 0) {
                log_error(NULL, "Cannot use the state directory %s: %s", dir, strerror(-r));
                return r;
        }
        log_debug(NULL, "Results log in %s", dir);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        log_info(NULL, "Received %s, shutting down", strsignal((int) si->ssi_signo));
        manager_shutdown(m);
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        Manager *m = NULL;
        sigset_t mask;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        log_setup(arg_verbose);

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        /* Worker threads inherit the mask: signals go to the event loop only. */
        if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0)
                return EXIT_FAILURE;
        /* A reader that goes away must not kill us while we write a Read result. */
        signal(SIGPIPE, SIG_IGN);

        r = sd_event_default(&event);
        if (r < 0) {
                log_error(NULL, "Cannot create the event loop: %s", strerror(-r));
                return EXIT_FAILURE;
        }
        (void) sd_event_set_watchdog(event, true);

        r = open_bus(&bus);
        if (r < 0) {
                log_error(NULL, "Cannot connect to the bus: %s", strerror(-r));
                return EXIT_FAILURE;
        }
        (void) sd_bus_set_exit_on_disconnect(bus, true);
        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                goto fail;

        r = manager_new(event, bus, arg_verbose, &m);
        if (r < 0)
                goto fail;
        if (arg_config) {
                r = manager_load_config(m, arg_config);
                if (r < 0) {
                        log_error(NULL, "Cannot load %s: %s", arg_config, strerror(-r));
                        goto fail;
                }
        } else if (arg_bus == BUS_SYSTEM) {
                /* The system instance reads the station's configuration when there is
                 * one; other buses (a user's, tests) only read what --config names. */
                r = manager_load_config(m, SYSCONFDIR "/stm32ispd.conf");
                if (r < 0 && r != -ENOENT) {
                        log_error(NULL, "Cannot load %s: %s", SYSCONFDIR "/stm32ispd.conf", strerror(-r));
                        goto fail;
                }
        }
        r = setup_state_dir(m);
        if (r < 0)
                goto fail;
        r = sd_event_add_signal(event, NULL, SIGTERM, on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, on_signal, m);
        if (r < 0)
                goto fail;

        r = manager_start(m);
        if (r < 0) {
                log_error(NULL, "Cannot start: %s", strerror(-r));
                goto fail;
        }
        r = sd_bus_request_name(bus, STM32ISP_BUS_NAME, 0);
        if (r < 0) {
                log_error(NULL, "Cannot own %s: %s", STM32ISP_BUS_NAME, strerror(-r));
                goto fail;
        }
        (void) sd_notify(0, "READY=1");
        log_info(NULL, "Ready on %s", STM32ISP_BUS_NAME);

        r = sd_event_loop(event);
        if (r < 0)
                log_error(NULL, "Event loop failed: %s", strerror(-r));

        (void) sd_notify(0, "STOPPING=1");
        if (manager_abandoned(m)) {
                /* Threads stuck in a long wait: do not join them, just leave. */
                (void) sd_bus_release_name(bus, STM32ISP_BUS_NAME);
                (void) sd_bus_flush(bus);
                _exit(EXIT_SUCCESS);
        }
        m = manager_free(m);
        (void) sd_bus_release_name(bus, STM32ISP_BUS_NAME);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

fail:
        if (r < 0)
                log_error(NULL, "Failed: %s", strerror(-r));
        manager_free(m);
        return EXIT_FAILURE;
}
