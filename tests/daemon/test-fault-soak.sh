#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The soak, not part of `make check` (minutes): CYCLES (default 1000) flash cycles on 4
# ports (G0, C0, F0, L0 boards behind TCP serial servers), each flash checked against the
# simulator's memory. tests/daemon/test-fault-daemon --soak prints the daemon's fds, threads
# and RSS after 10 warm-up cycles and at the end, and fails (abort) if fds or threads
# grew or RSS grew by more than 512 KiB; this script checks those lines are there and
# repeats the verdict with the growth per cycle. (The 10 000 Probes in a row are in
# tests/daemon/test-fault-daemon, in `make check`.)
# Run from a build directory: tests/test-fault-soak.sh [CYCLES]
set -eu
cycles=${1:-1000}
builddir=${TOP_BUILDDIR:-$PWD}
export TOP_BUILDDIR=$builddir

# The start values are taken at cycle 10: fewer cycles measure nothing.
if ! [[ $cycles =~ ^[0-9]+$ ]] || [ "$cycles" -lt 20 ]; then
        echo "usage: $0 [CYCLES]   (CYCLES >= 20)" >&2
        exit 2
fi
for f in tests/daemon/test-fault-daemon daemon/stm32ispd; do
        if [ ! -x "$builddir/$f" ]; then
                echo "$builddir/$f is not built (make check builds it; or make $f)" >&2
                exit 2
        fi
done
if [ -z "${TMPDIR:-}" ]; then
        TMPDIR=$(mktemp -d /tmp/stm32isp-soak.XXXXXX)
        trap 'rm -rf "$TMPDIR"' EXIT
fi
export TMPDIR
out="$TMPDIR/soak.out"

start=$(date +%s)
rc=0
# The daemon logs every job on stderr: keep the test's verdict lines on stdout.
"$builddir/tests/daemon/test-fault-daemon" --soak "$cycles" >"$out" 2>"$TMPDIR/soak.err" || rc=$?
cat "$out"
echo "soak took $(($(date +%s) - start)) s"
if [ $rc != 0 ]; then
        tail -n 30 "$TMPDIR/soak.err" >&2
        echo "FAIL: test-fault-daemon --soak exited $rc" >&2
        exit 1
fi

# "soak: start fds 14 threads 5 RSS 4392 KiB" / "soak: end   fds ..."
read -r s_fds s_threads s_rss < <(sed -n 's/^soak: start fds \([0-9]*\) threads \([0-9]*\) RSS \([0-9]*\) KiB$/\1 \2 \3/p' "$out") || true
read -r e_fds e_threads e_rss < <(sed -n 's/^soak: end   fds \([0-9]*\) threads \([0-9]*\) RSS \([0-9]*\) KiB$/\1 \2 \3/p' "$out") || true
if [ -z "${s_rss:-}" ] || [ -z "${e_rss:-}" ]; then
        echo "FAIL: no start/end measurements in the soak's output" >&2
        exit 1
fi
growth=$((e_rss - s_rss))
echo "soak: fds $s_fds -> $e_fds, threads $s_threads -> $e_threads, RSS $s_rss -> $e_rss KiB" \
     "($growth KiB over $((cycles - 10)) cycles, $((growth * 1024 / (cycles - 10))) bytes/cycle)"
if [ "$e_fds" -gt "$s_fds" ] || [ "$e_threads" -gt "$s_threads" ] || [ "$growth" -gt 512 ]; then
        echo "FAIL: the daemon's resources grew" >&2
        exit 1
fi
echo "PASS"
