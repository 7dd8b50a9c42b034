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
        echo "=== [$SECONDS s] $name: configure $flags"
        mkdir -p "$dir"
        cd "$dir"
        # A build configured with other flags (an older ci.sh) is configured again.
        # shellcheck disable=SC2086
        [ ! -f Makefile ] || [ "$(./config.status --config | tr -d "'")" = "$(echo $flags)" ] || rm Makefile
        # shellcheck disable=SC2086
        [ -f Makefile ] || "$src/configure" -q $flags
        make -j"$jobs" >/dev/null
        echo "=== [$SECONDS s] $name: make check"
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

# The werror build has the paths of a Debian station, so that tests/system/test-system.tap
# installs it into a container booted under systemd (it must run here, not skip).
export STM32ISP_REQUIRE_SYSTEM_TEST=1
build werror "--enable-werror --prefix=/usr --sysconfdir=/etc --localstatedir=/var"
grep -h '^# phase' "$src/build/werror/tests/system/test-system.log" 2>/dev/null | sed 's/^# /    system test /' || true
build asan "--enable-werror --enable-sanitizers"
# ThreadSanitizer: the multi-threaded tests (simulator thread + host, daemon workers).
# A fragment marks such a test with a line "# tsan: tests/LAYER/test-name".
tsan_tests=$(cd "$src" && find tests -name '*.am' -exec cat {} + | sed -n 's/^# tsan: //p' | tr '\n' ' ')
[ -z "${tsan_tests// }" ] || build tsan "--enable-werror --enable-tsan" TESTS="$tsan_tests"

# ---- fuzz (tests/fuzz/fuzz.am): libFuzzer targets tests/fuzz/fuzz-*.c with ASan+UBSan,
# about 60 s in all, from the seeds in tests/fuzz/corpus/<target>/ (new inputs go to a
# scratch copy). A crash, a leak or a sanitizer report fails CI.
if command -v clang >/dev/null; then
        fuzz_dir="$src/build/fuzz"
        mkdir -p "$fuzz_dir"
        fuzz_targets=$(cd "$src/tests/fuzz" && ls fuzz-*.c | sed 's/\.c$//')
        n_targets=$(echo "$fuzz_targets" | wc -w)
        per_target=$((60 / n_targets))
        for t in $fuzz_targets; do
                echo "=== [$SECONDS s] fuzz: $t (${per_target}s)"
                # what each target links: the image parsers, or the option walk with sd-bus
                case $t in
                fuzz-options) fuzz_src=("$src/daemon/service/options.c") fuzz_libs=(-lsystemd) ;;
                *) fuzz_src=("$src"/daemon/core/image/image*.c) fuzz_libs=(-lelf) ;;
                esac
                clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                        -include "$src/build/werror/config.h" -I"$src/include" -I"$src/include/shared" \
                        -I"$src/daemon/core/image" -I"$src/daemon/service" \
                        "$src/tests/fuzz/$t.c" "${fuzz_src[@]}" "${fuzz_libs[@]}" -o "$fuzz_dir/$t"
                rm -rf "$fuzz_dir/$t.corpus"
                cp -r "$src/tests/fuzz/corpus/$t" "$fuzz_dir/$t.corpus"
                if (cd "$fuzz_dir" && ASAN_OPTIONS=detect_leaks=1 "./$t" -max_total_time="$per_target" \
                        -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 "$t.corpus" >"$t.log" 2>&1); then
                        passed=$((passed + 1))
                        grep -E '^stat::number_of_executed_units' "$fuzz_dir/$t.log" || true
                else
                        tail -n 40 "$fuzz_dir/$t.log"
                        echo "fuzz target $t failed (crash input in $fuzz_dir)"
                        echo "$passed passed, $((failed + 1)) failed"
                        exit 1
                fi
        done
else
        echo "=== [$SECONDS s] fuzz: clang missing, skipped"
fi
# ---- end fuzz

echo "=== [$SECONDS s] distcheck"
cd "$src/build/werror"
make -j"$jobs" distcheck DISTCHECK_CONFIGURE_FLAGS="--enable-werror" >"$src/build/distcheck.out" 2>&1 || {
        tail -n 60 "$src/build/distcheck.out"
        echo "$passed passed, $((failed + 1)) failed"
        exit 1
}
tail -n 4 "$src/build/distcheck.out"
echo "=== [$SECONDS s] done"
echo "$passed passed, $failed failed"
