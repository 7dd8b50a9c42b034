#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The Python GDBus client against the daemon (test-daemon sets up bus, daemon and board).
# The system's python3 has python3-gi; a python3 earlier in PATH (pyenv) may not.
set -e
for p in /usr/bin/python3 python3; do
        if "$p" -c 'import gi' 2>/dev/null; then
                STM32ISP_TEST_PYTHON=$p
                break
        fi
done
[ -n "$STM32ISP_TEST_PYTHON" ] || { echo "no python3 with python3-gi: skipping"; exit 77; }
export STM32ISP_TEST_PYTHON
exec "${TOP_BUILDDIR:-.}/tests/daemon/test-daemon" --python "${TOP_SRCDIR:-$(dirname "$0")/../..}/tests/daemon/test-daemon-gdbus.py"
