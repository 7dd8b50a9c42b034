/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A text polkit agent on the terminal while the client runs, as systemctl does: when the
 * daemon's polkit check needs a password and no graphical agent of the session answers,
 * polkit asks this one (pkttyagent --fallback). */

#include <sys/types.h>

/* Starts pkttyagent for a caller other than root whose standard input is a terminal, and
 * waits until it registered.
 * Returns its pid, or 0 when none runs (not a terminal, no pkttyagent). */
pid_t agent_open(void);
void agent_close(pid_t pid);
