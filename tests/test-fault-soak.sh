#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The soak, not part of `make check` (minutes): CYCLES (1000) flash cycles on 4 ports,
# (the 10 000 Probes are in tests/test-fault-daemon, in `make check`); prints the daemon's fds, threads and RSS at start and
# end and fails if they grow. Run from a build directory: tests/test-fault-soak.sh [CYCLES]
set -eu
builddir=${TOP_BUILDDIR:-$PWD}
export TOP_BUILDDIR=$builddir
export TMPDIR=${TMPDIR:-$(mktemp -d)}
start=$(date +%s)
"$builddir/tests/test-fault-daemon" --soak "${1:-1000}"
echo "soak took $(( $(date +%s) - start )) s"
