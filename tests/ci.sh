#!/bin/bash
# The test command: installs what is missing, builds, and runs every test:
#   1. a -Werror build and `make check`
#   2. the same suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   3. the threaded parts under ThreadSanitizer
#   4. `make distcheck`
# Builds live in build/ (out of tree). Idempotent; run it from anywhere.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
"$src/tests/install-deps.sh"

if [ -e "$src/config.status" ]; then
        echo "The source tree is configured in place; run 'make distclean' there first." >&2
        exit 1
fi
[ -x "$src/configure" ] && [ "$src/configure" -nt "$src/configure.ac" ] || autoreconf -fi

jobs=$(nproc)
passed=0
failed=0
summary() {
        local log=$1
        local p f
        p=$(sed -n 's/^# PASS: *//p' "$log" | awk '{s+=$1} END {print s+0}')
        f=$(sed -n 's/^# \(FAIL\|ERROR\|XPASS\): *//p' "$log" | awk '{s+=$1} END {print s+0}')
        passed=$((passed + p))
        failed=$((failed + f))
}

# build NAME CONFIGURE-FLAGS [MAKE-CHECK-ARGS...]
build() {
        local name=$1 flags=$2
        shift 2
        local dir="$src/build/$name"
        echo "=== $name: configure $flags"
        mkdir -p "$dir"
        cd "$dir"
        # shellcheck disable=SC2086
        [ -f Makefile ] || "$src/configure" -q $flags
        make -j"$jobs" >/dev/null
        echo "=== $name: make check"
        local rc=0
        make -j"$jobs" check "$@" 2>&1 | tee "$dir/check.out" | grep -E '^(PASS|FAIL|SKIP|ERROR|XFAIL|XPASS|#)' || rc=1
        [ "${PIPESTATUS[0]}" = 0 ] || rc=1
        summary "$dir/check.out"
        if [ $rc != 0 ]; then
                find "$dir/tests" -name '*.log' ! -name test-suite.log -exec grep -l -E '^(FAIL|ERROR)' {} + 2>/dev/null |
                        while read -r l; do echo "--- $l"; tail -n 40 "$l"; done
                echo "$passed passed, $failed failed"
                exit 1
        fi
        cd "$src"
}

build werror "--enable-werror"
build asan "--enable-werror --enable-sanitizers"
# ThreadSanitizer: the multi-threaded tests (simulator thread + host, daemon workers).
# A fragment marks such a test with a line "# tsan: tests/test-name".
tsan_tests=$(cd "$src" && cat tests/*.am tests/sim/*.am | sed -n 's/^# tsan: //p' | tr '\n' ' ')
[ -z "${tsan_tests// }" ] || build tsan "--enable-werror --enable-tsan" TESTS="$tsan_tests"

echo "=== distcheck"
cd "$src/build/werror"
make -j"$jobs" distcheck DISTCHECK_CONFIGURE_FLAGS="--enable-werror" >"$src/build/distcheck.out" 2>&1 || {
        tail -n 60 "$src/build/distcheck.out"
        echo "$passed passed, $((failed + 1)) failed"
        exit 1
}
tail -n 4 "$src/build/distcheck.out"
echo "$passed passed, $failed failed"
