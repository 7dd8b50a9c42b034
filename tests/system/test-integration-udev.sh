#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The udev rules (udev/70-stm32ispd.rules):
#  - a strict parse of the syntax (keys, operators, quoting, GOTO targets), always;
#  - udev itself (systemd 252 has no `udevadm verify`): `udevadm test` in a private mount
#    namespace (tmpfs /run and /dev, so nothing reaches the host's udev database or /dev)
#    on the simulated USB-serial ttys of umockdev-sim: an FTDI and a CH340 adapter get
#    TAG systemd, SYSTEMD_WANTS=stm32ispd.service and ID_MM_DEVICE_IGNORE=1, a removal
#    and a non-USB tty (ttyS0) do not, and udev reports no error in the file.
. "$(dirname "$0")/../test-lib.sh"
export TMPDIR TOP_BUILDDIR

RULES="$TOP_SRCDIR/udev/70-stm32ispd.rules"
[ -r "$RULES" ] || fail "$RULES missing"

python3 - "$RULES" <<'PY' || fail "the rules do not parse"
import re, sys
path = sys.argv[1]
KEYS = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "NAME", "SYMLINK", "SUBSYSTEM", "SUBSYSTEMS",
        "DRIVER", "DRIVERS", "ATTR", "ATTRS", "SYSCTL", "ENV", "CONST", "TAG", "TAGS",
        "CURRENT_TAGS", "TEST", "PROGRAM", "RESULT", "OWNER", "GROUP", "MODE", "SECLABEL",
        "RUN", "IMPORT", "LABEL", "GOTO", "OPTIONS"}
pair = re.compile(r'\s*([A-Z_]+)(\{[^}]+\})?\s*(==|!=|\+=|-=|:=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
labels, gotos, assigned, errors = set(), [], {}, []
for n, line in enumerate(open(path), 1):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    pos, matches, kinds = 0, 0, []
    while pos < len(line):
        m = pair.match(line, pos)
        if not m:
            errors.append("%d: cannot parse at '%s'" % (n, line[pos:]))
            break
        key, attr, op, value = m.group(1), m.group(2), m.group(3), m.group(4)
        if key not in KEYS:
            errors.append("%d: unknown key %s" % (n, key))
        if key in ("ENV", "ATTR", "ATTRS") and not attr:
            errors.append("%d: %s without {name}" % (n, key))
        if key == "LABEL":
            labels.add(value)
        elif key == "GOTO":
            gotos.append((n, value))
        if op in ("==", "!="):
            kinds.append("match")
        else:
            kinds.append("assign")
            assigned[key + (attr or "")] = (op, value)
        pos = m.end()
        if m.group(5) == "" and pos < len(line):
            errors.append("%d: missing comma" % n)
            break
    if "assign" not in kinds and "match" in kinds:
        errors.append("%d: a rule that only matches does nothing" % n)
for n, target in gotos:
    if target not in labels:
        errors.append("%d: GOTO to unknown label %s" % (n, target))
want = {"TAG": ("+=", "systemd"), "ENV{SYSTEMD_WANTS}": ("+=", "stm32ispd.service"),
        "ENV{ID_MM_DEVICE_IGNORE}": ("=", "1")}
for k, v in want.items():
    if assigned.get(k) != v:
        errors.append("no %s%s\"%s\"" % (k, v[0], v[1]))
for e in errors:
    print("%s:%s" % (path, e))
sys.exit(1 if errors else 0)
PY

command -v udevadm >/dev/null || skip "the syntax is fine; udevadm missing for the rest (Debian: udev)"
[ "$(id -u)" = 0 ] || skip "the syntax is fine; udevadm test needs root (a private mount namespace)"
command -v unshare >/dev/null || skip "the syntax is fine; unshare missing"
[ -x "$TOP_BUILDDIR/tests/rig/umockdev-sim" ] || skip "umockdev-sim is not built"
[ -e /sys/class/tty/ttyS0 ] || skip "the syntax is fine; no /sys/class/tty/ttyS0 for the negative case"

cat >"$TMPDIR/ns.sh" <<'NS'
set -eu
T=$TMPDIR
# /dev: a tmpfs with the few nodes the tools need and a private devpts for the sim's ptys.
mkdir -p "$T/realdev"
mount --rbind /dev "$T/realdev"
mount -t tmpfs -o mode=0755 none /dev
for n in null zero full random urandom; do
        touch "/dev/$n"
        mount --bind "$T/realdev/$n" "/dev/$n"
done
umount -l "$T/realdev"
mkdir /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts /dev/pts
ln -s pts/ptmx /dev/ptmx
mount -t tmpfs none /dev/shm
mount -t tmpfs none /run
mkdir -p /run/udev/rules.d
cp "$RULES" /run/udev/rules.d/70-stm32ispd.rules
"$TOP_BUILDDIR/tests/rig/umockdev-sim" --board ttyUSB0=0x466 --board ttyUSB1=0x444,adapter=ch340 -- sh -c '
        # remove first: udev keeps what add sets in its database and reports it on remove.
        udevadm test --action=remove /sys/class/tty/ttyUSB1 >"$TMPDIR/remove.out" 2>"$TMPDIR/remove.err"
        udevadm test --action=add /sys/class/tty/ttyUSB0 >"$TMPDIR/ftdi.out" 2>"$TMPDIR/ftdi.err"
        udevadm test --action=add /sys/class/tty/ttyUSB1 >"$TMPDIR/ch340.out" 2>"$TMPDIR/ch340.err"'
udevadm test --action=add /sys/class/tty/ttyS0 >"$T/ttyS0.out" 2>"$T/ttyS0.err"
NS
RULES="$RULES" unshare -m --propagation private sh "$TMPDIR/ns.sh" >"$TMPDIR/ns.log" 2>&1 ||
        skip "the syntax is fine; no private mount namespace here: $(tail -n 3 "$TMPDIR/ns.log")"

for f in ftdi ch340 remove ttyS0; do
        grep -q '^Reading rules file: /run/udev/rules.d/70-stm32ispd.rules' "$TMPDIR/$f.err" ||
                fail "$f: udev did not read the rules: $(tail -n 5 "$TMPDIR/$f.err")"
        if grep '^/run/udev/rules.d/70-stm32ispd.rules:' "$TMPDIR/$f.err"; then
                fail "udev reports errors in the rules"
        fi
done
for f in ftdi ch340; do
        grep -qx 'DEVNAME=/dev/ttyUSB[01]' "$TMPDIR/$f.out" || fail "$f: not the simulated tty: $(cat "$TMPDIR/$f.out")"
        grep -qx 'SYSTEMD_WANTS=stm32ispd.service' "$TMPDIR/$f.out" || fail "$f: no SYSTEMD_WANTS"
        grep -qx 'ID_MM_DEVICE_IGNORE=1' "$TMPDIR/$f.out" || fail "$f: no ID_MM_DEVICE_IGNORE"
        grep -q '^CURRENT_TAGS=.*:systemd:' "$TMPDIR/$f.out" || fail "$f: not tagged systemd"
done
grep -q 'ID_USB_DRIVER=ch341' "$TMPDIR/ch340.out" || fail "ch340: not the CH340 adapter"
for f in remove ttyS0; do
        if grep -E '^(SYSTEMD_WANTS|ID_MM_DEVICE_IGNORE)=' "$TMPDIR/$f.out"; then
                fail "$f: marked for stm32ispd"
        fi
done
echo "PASS: udev accepts the rules and marks exactly the USB-serial ttys"
