/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* stm32ispctl's exit codes: the contract's table (include/stm32isp-errors.h), and the
 * D-Bus errors that mean the same as one of its rows. */

#include <stdio.h>
#include <systemd/sd-bus.h>

#include "stm32isp-errors.h"

typedef Stm32IspError ExitCodeEntry;

/* The table, in code order (for --help and the tests). */
const ExitCodeEntry *exit_code_table(size_t *ret_n);

/* The exit code for a D-Bus error (never 0). */
int exit_code_from_bus_error(const sd_bus_error *e, int r);

/* True if the error says the daemon is not there (not running and not activatable). */
int bus_error_is_unavailable(const sd_bus_error *e, int r);

/* The failure a run ends with, for --json's error object: every message that ends a
 * run goes through failure_record() (the last one wins). error: the D-Bus error's name,
 * NULL for a failure the client found itself. */
void failure_record(int code, const char *error, const char *message);

/* Prints "stm32ispctl: MESSAGE" on stderr and records it; returns code. */
int failure_printf(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* {operation, port, error, message, exit_code} for a run that ends with code (not 0):
 * "error" is the D-Bus error's name, or the table's name of the code (FileError, Failed,
 * Interrupted, ...); operation and port may be NULL. Prints it as one line on f. */
void failure_print_json(FILE *f, const char *operation, const char *port, int code);
