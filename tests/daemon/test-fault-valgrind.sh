#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The daemon under valgrind memcheck: a probe and a flash through D-Bus, then SIGTERM;
# any definite leak or memory error makes the daemon exit 1, which fails the test.
set -eu
command -v valgrind >/dev/null || { echo "valgrind missing, skipping"; exit 77; }
builddir=${TOP_BUILDDIR:?}
# valgrind cannot run a sanitizer build
if ldd "$builddir/daemon/stm32ispd" | grep -qE 'lib(a|t|ub)san'; then
        echo "the daemon is built with sanitizers, skipping"
        exit 77
fi
# test-fault-daemon runs $TOP_BUILDDIR/daemon/stm32ispd: point it at a wrapper.
wrap="$TMPDIR/vg"
mkdir -p "$wrap/daemon"
cat >"$wrap/daemon/stm32ispd" <<EOS
#!/bin/sh
exec valgrind -q --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite \
        --error-exitcode=1 --log-file="$TMPDIR/valgrind.log" "$builddir/daemon/stm32ispd" "\$@"
EOS
chmod +x "$wrap/daemon/stm32ispd"
rc=0
TOP_BUILDDIR="$wrap" "$builddir/tests/daemon/test-fault-daemon" --smoke || rc=$?
cat "$TMPDIR/valgrind.log"
[ -s "$TMPDIR/valgrind.log" ] && { echo "valgrind reported errors"; exit 1; }
exit $rc
