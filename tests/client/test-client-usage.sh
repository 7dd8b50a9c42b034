#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# stm32ispctl without a daemon: usage errors (exit 2), the one-line message when the
# daemon is unavailable (exit 3), the exit codes documented in one table (header, --help
# and the man page agree), and the bash completion.
. "$(dirname "$0")/test-client-lib.sh"

[ -x "$CTL" ] || fail "$CTL not built"

# --help and --version
"$CTL" --help >"$TMPDIR/help" || fail "--help"
for c in list info diagnose flash erase read lock unlock go cancel remove autoflash monitor; do
        grep -q "^  $c" "$TMPDIR/help" || fail "--help lacks $c"
done
"$CTL" --version | grep -q '^stm32ispctl [0-9]' || fail "--version"

# Usage errors: exit 2 with a message, before any bus is touched.
for args in "" "frobnicate" "flash" "flash ttyUSB0 fw.bin --sn-first 7" "log --stats --sn-address 0" "info" "info a b" "list extra" \
            "flash ttyUSB0 fw.bin --format=zip" "flash ttyUSB0 fw.bin --erase=some" \
            "info ttyUSB0 --pages 1" "list --address 0x10" "read ttyUSB0 f --length 0" \
            "erase ttyUSB0 --mass --pages 1" "go ttyUSB0 0x08000000 --address 0x08000000" \
            "go ttyUSB0 nowhere" "flash ttyUSB0 fw.bin --baud 12" "--bogus list" "info --baud"; do
        rc=0
        # shellcheck disable=SC2086
        "$CTL" --bus-address=unix:path=/nonexistent $args >/dev/null 2>"$TMPDIR/err" || rc=$?
        [ $rc = 2 ] || fail "'$args' exited $rc, expected 2"
        [ -s "$TMPDIR/err" ] || fail "'$args' said nothing"
done

# --json: every failure, also those the client finds itself, is one error object on
# stdout (error, message, exit_code), wherever --json stands.
json_err() { # json_err ERROR CODE ARGS...: exit CODE and {"error": ERROR, "exit_code": CODE}
        local want=$1 code=$2 rc=0
        shift 2
        "$CTL" --bus-address=unix:path=/nonexistent "$@" >"$TMPDIR/out" 2>"$TMPDIR/err" || rc=$?
        [ $rc = "$code" ] || fail "'$*' exited $rc, expected $code"
        python3 - "$TMPDIR/out" "$want" "$code" <<'PY' || fail "'$*': no JSON error object: $(cat "$TMPDIR/out")"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
j = json.loads(lines[-1])
assert len(lines) == 1 and j["error"] == sys.argv[2] and j["exit_code"] == int(sys.argv[3]) and j["message"], j
PY
        [ -s "$TMPDIR/err" ] || fail "'$*' said nothing on stderr"
}
json_err org.freedesktop.DBus.Error.InvalidArgs 2 --json frobnicate
json_err org.freedesktop.DBus.Error.InvalidArgs 2 --bogus list --json
json_err org.freedesktop.DBus.Error.InvalidArgs 2 info --json
json_err org.freedesktop.DBus.Error.InvalidArgs 2 -j info ttyUSB0 --pages 1
json_err org.freedesktop.DBus.Error.ServiceUnknown 3 --json list
# File errors: one exit code, 6 (FileError), before any bus is touched.
json_err FileError 6 --json flash ttyUSB0 "$TMPDIR/no-such-image.bin"
grep -q "no-such-image.bin" "$TMPDIR/out" || fail "the file error does not name the file: $(cat "$TMPDIR/out")"
json_err FileError 6 --json flash ttyUSB0 "$TMPDIR"
if [ "$(id -u)" != 0 ]; then
        : >"$TMPDIR/unreadable.bin"; chmod 000 "$TMPDIR/unreadable.bin"
        json_err FileError 6 --json flash ttyUSB0 "$TMPDIR/unreadable.bin"
fi
rc=0; "$CTL" flash ttyUSB0 "$TMPDIR/no-such-image.bin" >"$TMPDIR/out" 2>/dev/null || rc=$?
[ $rc = 6 ] && [ ! -s "$TMPDIR/out" ] || fail "a missing image without --json: exit $rc, stdout '$(cat "$TMPDIR/out")'"

# go: an odd address is a function's Thumb address, not a vector table: refused, with a hint
rc=0; "$CTL" --bus-address=unix:path=/nonexistent go ttyUSB0 0x08000101 2>"$TMPDIR/err" || rc=$?
[ $rc = 2 ] && grep -q "odd.*vector table.*Thumb bit" "$TMPDIR/err" || fail "go to an odd address: $rc $(cat "$TMPDIR/err")"
expect_rc 2 "$CTL" --bus-address=unix:path=/nonexistent go ttyUSB0 --address 0x08000002 2>/dev/null

# The daemon unavailable: a bus without it, a bus that is not there, the system bus.
start_bus
for where in "--bus-address=$BUS_ADDR" "--bus-address=unix:path=$TMPDIR/none"; do
        for cmd in list "info ttyUSB0" "flash ttyUSB0 /dev/null" monitor; do
                rc=0
                # shellcheck disable=SC2086
                "$CTL" $cmd "$where" >"$TMPDIR/out" 2>"$TMPDIR/err" || rc=$?
                [ $rc = 3 ] || fail "$cmd $where: exit $rc, expected 3 ($(cat "$TMPDIR/err"))"
                [ "$(wc -l <"$TMPDIR/err")" = 1 ] || fail "$cmd: more than one line: $(cat "$TMPDIR/err")"
                grep -q "stm32ispd --bus-address=" "$TMPDIR/err" || fail "no hint how to start: $(cat "$TMPDIR/err")"
        done
done
rc=0
DBUS_SYSTEM_BUS_ADDRESS=unix:path=$TMPDIR/none "$CTL" list 2>"$TMPDIR/err" || rc=$?
[ $rc = 3 ] || fail "system bus: exit $rc"
grep -q "systemctl start stm32ispd" "$TMPDIR/err" || fail "no systemctl hint: $(cat "$TMPDIR/err")"
# Global options before the command and with the command's own: same result.
rc=0
"$CTL" --json --quiet --bus-address="$BUS_ADDR" info ttyUSB0 --baud 57600 2>/dev/null || rc=$?
[ $rc = 3 ] || fail "options before the command: exit $rc"

# One table: the exit codes in include/stm32isp-errors.h, --help and the man page agree.
TABLE="$TOP_SRCDIR/include/stm32isp-errors.h"
sed -n 's/^ *EXIT_[A-Z_]* *= *\([0-9]*\),.*/\1/p' "$TABLE" | sort -n >"$TMPDIR/codes.h"
sed -n '/^Exit codes:/,$p' "$TMPDIR/help" | sed -n 's/^ *\([0-9][0-9]*\)  .*/\1/p' | sort -n >"$TMPDIR/codes.help"
man_codes() {
        # ".TP / .B CODE / Meaning: \fBerror.name\fR." -> "CODE error.name"
        sed -n '/^\.SH EXIT STATUS/,/^\.SH ENVIRONMENT/p' "$TOP_SRCDIR/client/stm32ispctl.1" |
                awk '/^\.B [0-9]+$/ { code = $2; getline; name = "-"
                                       if (match($0, /\\fB[^\\]*\\fR/)) name = substr($0, RSTART + 3, RLENGTH - 6)
                                       print code "\t" name }'
}
man_codes | cut -f1 | sort -n >"$TMPDIR/codes.man"
[ "$(wc -l <"$TMPDIR/codes.h")" -ge 18 ] || fail "stm32isp-errors.h parsed badly"
diff "$TMPDIR/codes.h" "$TMPDIR/codes.help" || fail "--help and stm32isp-errors.h disagree"
diff "$TMPDIR/codes.h" "$TMPDIR/codes.man" || fail "stm32ispctl.1 and stm32isp-errors.h disagree"
# ... and the man page names the right D-Bus error for each code.
while IFS=$'\t' read -r code name _; do
        case $name in
        io.github.*)
                n=${name#io.github.Stm32Isp1.Error.}
                sym=$(sed -n "s/^ *EXIT_\([A-Z_]*\) *= *$code,.*/\1/p" "$TABLE")
                grep -q "{ EXIT_$sym, *STM32ISP_ERROR_$sym," "$TABLE" ||
                        fail "man: $code $n, but stm32isp-errors.h maps EXIT_$sym differently"
                grep -q "define STM32ISP_ERROR_$sym *STM32ISP_ERROR_PREFIX \"$n\"" "$TOP_SRCDIR/include/stm32isp.h" ||
                        fail "man: $code is $n, the header says otherwise"
                ;;
        esac
done < <(man_codes)

# The man pages format without warnings.
if command -v man >/dev/null; then
        for page in client/stm32ispctl.1 client/stm32ispd.8; do
                out=$(MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$TOP_SRCDIR/$page" 2>&1 >/dev/null) || true
                [ -z "$out" ] || fail "$page: $out"
        done
fi

# The completion parses, and completes commands, options and values.
bash -n "$TOP_SRCDIR/client/stm32ispctl.bash" || fail "completion syntax"
# Twice: in plain bash (no bash-completion: no _init_completion, no _filedir; nothing may
# be said on stderr), and with bash-completion when it is installed.
complete_all() { # complete_all WITH_BASH_COMPLETION
        bash --norc --noprofile -c '
        [ "$2" = yes ] && . /usr/share/bash-completion/bash_completion
        . "$1"
        comp() { COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
                 COMPREPLY=(); _stm32ispctl stm32ispctl "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"; echo "${COMPREPLY[*]}"; }
        comp stm32ispctl fl
        comp stm32ispctl flash /dev/ttyUSB0 fw.bin --no-v
        comp stm32ispctl flash --format ""
        comp stm32ispctl erase ttyUSB0 --ma
        comp stm32ispctl --js
        comp stm32ispctl --json info ttyUSB0 --ba
        comp stm32ispctl autoflash ""
        comp stm32ispctl autoflash set fw.bin --expect-c
        comp stm32ispctl re
        comp stm32ispctl diag
        comp stm32ispctl diagnose ttyUSB0 --rep' _ "$TOP_SRCDIR/client/stm32ispctl.bash" "$1" 2>"$TMPDIR/comp.err"
        [ ! -s "$TMPDIR/comp.err" ] || fail "completion (bash-completion: $1) said: $(cat "$TMPDIR/comp.err")"
}
out=$(complete_all no)
if [ -r /usr/share/bash-completion/bash_completion ]; then
        out2=$(complete_all yes)
        [ "$out" = "$out2" ] || fail "completion differs with bash-completion: $out2 / $out"
fi
[ "$(echo "$out" | sed -n 1p)" = "flash" ] || fail "completion of 'fl': $out"
[ "$(echo "$out" | sed -n 2p)" = "--no-verify" ] || fail "completion of '--no-v': $out"
[ "$(echo "$out" | sed -n 3p)" = "auto bin hex elf srec" ] || fail "completion of --format: $out"
[ "$(echo "$out" | sed -n 4p)" = "--mass" ] || fail "completion of --ma: $out"
[ "$(echo "$out" | sed -n 5p)" = "--json" ] || fail "completion of --js: $out"
[ "$(echo "$out" | sed -n 6p)" = "--baud=" ] || fail "completion of --ba: $out"
[ "$(echo "$out" | sed -n 7p)" = "show set clear" ] || fail "completion of autoflash: $out"
[ "$(echo "$out" | sed -n 8p)" = "--expect-chip=" ] || fail "completion of --expect-c: $out"
[ "$(echo "$out" | sed -n 9p)" = "read remove" ] || fail "completion of re: $out"
[ "$(echo "$out" | sed -n 10p)" = "diagnose" ] || fail "completion of 'diag': $out"
[ "$(echo "$out" | sed -n 11p)" = "--report=" ] || fail "completion of --rep: $out"
echo "PASS"
