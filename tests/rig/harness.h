/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The C tests' side of the umockdev-sim harness (tests/rig/umockdev-sim.c): running a
 * test again under it, and its control socket (one command line, one answer line;
 * the commands are listed at the top of umockdev-sim.c). A failed call aborts, as a
 * test assertion does. */

#include "macro.h"

/* True when this program runs under the harness (it names its control socket). */
int harness_active(void);

/* Runs this program again under tests/rig/umockdev-sim (TOP_BUILDDIR's, or the one in
 * the build tree next to the executable's folder) with harness_args (NULL-terminated,
 * e.g. "--board", "ttyUSB0=0x466") and a control socket TMPDIR/NAME.PID.ctl; returns
 * only on failure: EXIT_FAILURE, or 77 (skip) when the harness is not built. */
int harness_reexec(const char *name, const char *const *harness_args);

/* Sends one command; its answer is read with harness_answer(). */
void harness_send(const char *fmt, ...) _printf_(1, 2);
/* The next answer line (a static buffer, valid until the next answer). */
const char *harness_answer(void);
/* One command, its answer line. */
const char *harness_control(const char *fmt, ...) _printf_(1, 2);
/* One command that must answer "ok". */
void harness_control_ok(const char *fmt, ...) _printf_(1, 2);
