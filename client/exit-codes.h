/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* stm32ispctl's exit codes: the contract's table (include/stm32isp-errors.h), and the
 * D-Bus errors that mean the same as one of its rows. */

#include <systemd/sd-bus.h>

#include "stm32isp-errors.h"

typedef Stm32IspError ExitCodeEntry;

/* The table, in code order (for --help and the tests). */
const ExitCodeEntry *exit_code_table(size_t *ret_n);

/* The exit code for a D-Bus error (never 0). */
int exit_code_from_bus_error(const sd_bus_error *e, int r);

/* True if the error says the daemon is not there (not running and not activatable). */
int bus_error_is_unavailable(const sd_bus_error *e, int r);
