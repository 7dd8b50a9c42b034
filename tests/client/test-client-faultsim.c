/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A simulated board with injected faults, serving one inherited fd (a TCP connection
 * from the client tests' serial server) until it hangs up. It provokes the error
 * classes the plain simulators do not: NACK, verify failure, timeout.
 *
 *   test-client-faultsim --pid PID [--boot0 0|1] [--fault NAME[:ARG]]... --fd N
 *
 * NAME: nack-all-writes, nack-write, corrupt-read, drop-reply, reset-at-write,
 * already-synced, stray-byte. */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static const struct {
        const char *name;
        SimFault fault;
} faults[] = {
        { "nack-all-writes", SIM_FAULT_NACK_ALL_WRITES },
        { "nack-write",      SIM_FAULT_NACK_WRITE },
        { "corrupt-read",    SIM_FAULT_CORRUPT_READ },
        { "drop-reply",      SIM_FAULT_DROP_REPLY },
        { "reset-at-write",  SIM_FAULT_RESET_AT_WRITE },
        { "already-synced",  SIM_FAULT_ALREADY_SYNCED },
        { "stray-byte",      SIM_FAULT_STRAY_BYTE },
};

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "pid",   required_argument, NULL, 'p' },
                { "boot0", required_argument, NULL, 'b' },
                { "fault", required_argument, NULL, 'f' },
                { "fd",    required_argument, NULL, 'd' },
                {}
        };
        struct { SimFault fault; unsigned arg; } inject[8];
        size_t n_inject = 0;
        unsigned long pid = 0;
        int boot0 = -1, fd = -1, c, r;
        Sim *s;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case 'p':
                        pid = strtoul(optarg, NULL, 0);
                        break;
                case 'b':
                        boot0 = atoi(optarg);
                        break;
                case 'd':
                        fd = atoi(optarg);
                        break;
                case 'f': {
                        char *colon = strchr(optarg, ':');
                        size_t len = colon ? (size_t) (colon - optarg) : strlen(optarg);
                        size_t i;

                        for (i = 0; i < sizeof faults / sizeof faults[0]; i++)
                                if (strlen(faults[i].name) == len && strncmp(faults[i].name, optarg, len) == 0)
                                        break;
                        if (i == sizeof faults / sizeof faults[0] || n_inject == sizeof inject / sizeof inject[0]) {
                                fprintf(stderr, "test-client-faultsim: unknown fault %s\n", optarg);
                                return EXIT_FAILURE;
                        }
                        inject[n_inject].fault = faults[i].fault;
                        inject[n_inject++].arg = colon ? (unsigned) strtoul(colon + 1, NULL, 0) : 1;
                        break;
                }
                default:
                        return EXIT_FAILURE;
                }
        }
        if (pid == 0 || fd < 0) {
                fprintf(stderr, "usage: test-client-faultsim --pid PID [--boot0 0|1] [--fault NAME[:ARG]]... --fd N\n");
                return EXIT_FAILURE;
        }

        r = sim_new((uint16_t) pid, 0, &s);
        if (r < 0) {
                fprintf(stderr, "test-client-faultsim: sim_new(0x%lx): %s\n", pid, strerror(-r));
                return EXIT_FAILURE;
        }
        if (boot0 >= 0)
                sim_set_boot0(s, boot0 == 1);
        for (size_t i = 0; i < n_inject; i++)
                sim_inject(s, inject[i].fault, inject[i].arg);
        r = sim_run(s, fd);
        sim_free(s);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
