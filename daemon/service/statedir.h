/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Where a user's own daemon (--session) keeps its results log when no --state-dir is
 * given: $XDG_STATE_HOME/stm32ispd, else ~/.local/state/stm32ispd (the XDG Base
 * Directory specification), so that `stm32ispctl --user log` finds it with no options. */

/* The folder, made (mode 0700, parents too) where it is missing; malloc'd. */
int statedir_session(char **ret);
