#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The systemd unit as built (systemd/stm32ispd.service): `systemd-analyze verify` is clean,
# `systemd-analyze security` scores it 2.0 or lower, the keys the issue asks for are there
# and agree with the D-Bus activation file; the sysusers.d file puts the user in dialout.
. "$(dirname "$0")/../test-lib.sh"

UNIT="$TOP_BUILDDIR/systemd/stm32ispd.service"
ACTIVATION="$TOP_BUILDDIR/dbus/io.github.Stm32Isp1.service"
SYSUSERS="$TOP_SRCDIR/systemd/stm32ispd.conf"
[ -r "$UNIT" ] || fail "$UNIT not built"
[ -r "$ACTIVATION" ] || fail "$ACTIVATION not built"
command -v systemd-analyze >/dev/null || skip "systemd-analyze missing"

# key FILE KEY: the values of KEY (one per line).
key() { sed -n "s/^$2=//p" "$1"; }

# The keys, as the issue lists them.
[ "$(key "$UNIT" Type)" = dbus ] || fail "Type"
[ "$(key "$UNIT" BusName)" = io.github.Stm32Isp1 ] || fail "BusName"
[ "$(key "$UNIT" Restart)" = on-failure ] || fail "Restart"
[ -n "$(key "$UNIT" WatchdogSec)" ] || fail "WatchdogSec"
[ "$(key "$UNIT" StateDirectory)" = stm32ispd ] || fail "StateDirectory"
[ "$(key "$UNIT" User)" = stm32ispd ] || fail "User"
[ "$(key "$UNIT" SupplementaryGroups)" = dialout ] || fail "SupplementaryGroups"
[ "$(key "$UNIT" DevicePolicy)" = closed ] || fail "DevicePolicy"
[ "$(key "$UNIT" DeviceAllow | sort | tr '\n' ' ')" = "char-ttyACM rw char-ttyAMA rw char-ttyS rw char-ttyUSB rw " ] ||
        fail "DeviceAllow: $(key "$UNIT" DeviceAllow)"
[ "$(key "$UNIT" RestrictAddressFamilies)" = "AF_UNIX AF_NETLINK AF_INET AF_INET6" ] || fail "RestrictAddressFamilies"
[ "$(grep -c '^CapabilityBoundingSet=' "$UNIT")" = 1 ] || fail "CapabilityBoundingSet: more than one"
grep -qx 'CapabilityBoundingSet=' "$UNIT" || fail "CapabilityBoundingSet: not empty"
for kv in ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes \
          SystemCallFilter=@system-service MemoryDenyWriteExecute=yes LockPersonality=yes \
          RestrictRealtime=yes ProtectKernelTunables=yes ProtectKernelModules=yes \
          ProtectKernelLogs=yes ProtectControlGroups=yes; do
        grep -qx "$kv" "$UNIT" || fail "no $kv"
done
exec_start=$(key "$UNIT" ExecStart)
case "$exec_start" in /*/stm32ispd) ;; *) fail "ExecStart=$exec_start" ;; esac

# The activation file starts this unit for this name.
grep -qx '\[D-BUS Service\]' "$ACTIVATION" || fail "activation: no [D-BUS Service]"
[ "$(key "$ACTIVATION" Name)" = "$(key "$UNIT" BusName)" ] || fail "activation: Name"
[ "$(key "$ACTIVATION" SystemdService)" = stm32ispd.service ] || fail "activation: SystemdService"
[ "$(key "$ACTIVATION" Exec)" = "$exec_start" ] || fail "activation: Exec"

# verify wants ExecStart to exist: check a copy that runs the daemon just built.
mkdir -p "$TMPDIR/units"
sed "s|^ExecStart=.*|ExecStart=$TOP_BUILDDIR/daemon/stm32ispd|" "$UNIT" >"$TMPDIR/units/stm32ispd.service"
[ -x "$TOP_BUILDDIR/daemon/stm32ispd" ] || skip "the daemon is not built"
rc=0
(cd "$TMPDIR/units" && systemd-analyze verify --man=no ./stm32ispd.service) >"$TMPDIR/verify.out" 2>&1 || rc=$?
cat "$TMPDIR/verify.out"
[ $rc = 0 ] || fail "systemd-analyze verify exited $rc"
# Unknown keys and bad values only warn: any word about our unit is a failure.
if grep -i 'stm32ispd' "$TMPDIR/verify.out"; then
        fail "systemd-analyze verify complained"
fi

rc=0
(cd "$TMPDIR/units" && systemd-analyze security --offline=yes --threshold=20 ./stm32ispd.service) \
        >"$TMPDIR/security.out" 2>&1 || rc=$?
grep 'Overall exposure level' "$TMPDIR/security.out" || { cat "$TMPDIR/security.out"; fail "no score"; }
[ $rc = 0 ] || { grep '✗' "$TMPDIR/security.out" || true; fail "systemd-analyze security: above 2.0"; }
score=$(sed -n 's/.*Overall exposure level for stm32ispd.service: \([0-9.]*\) .*/\1/p' "$TMPDIR/security.out")
awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }' || fail "score '$score'"

# The threshold does fail a unit without the hardening (so the check above can fail).
grep -v -e '^Protect' -e '^Private' -e '^Restrict' -e '^SystemCall' -e '^Capability' -e '^User=' \
        -e '^NoNewPrivileges' -e '^DevicePolicy' -e '^MemoryDeny' -e '^Lock' -e '^UMask' \
        "$TMPDIR/units/stm32ispd.service" >"$TMPDIR/units/bare.service"
rc=0
(cd "$TMPDIR/units" && systemd-analyze security --offline=yes --threshold=20 ./bare.service) >/dev/null 2>&1 || rc=$?
[ $rc != 0 ] || fail "an unhardened unit passed the threshold"

# sysusers.d: the user, in dialout. Dry-run against an empty root that has the group.
grep -qE '^u stm32ispd ' "$SYSUSERS" || fail "sysusers: no user stm32ispd"
grep -qE '^m stm32ispd dialout$' "$SYSUSERS" || fail "sysusers: stm32ispd not in dialout"
if command -v systemd-sysusers >/dev/null; then
        mkdir -p "$TMPDIR/root/etc"
        printf 'root:x:0:0:root:/root:/bin/sh\n' >"$TMPDIR/root/etc/passwd"
        printf 'root:x:0:\ndialout:x:20:\n' >"$TMPDIR/root/etc/group"
        systemd-sysusers --root="$TMPDIR/root" "$SYSUSERS" >"$TMPDIR/sysusers.out" 2>&1 ||
                fail "systemd-sysusers: $(cat "$TMPDIR/sysusers.out")"
        grep -q '^stm32ispd:x:[0-9]*:[0-9]*:STM32 ISP daemon:/var/lib/stm32ispd:' "$TMPDIR/root/etc/passwd" ||
                fail "sysusers: $(cat "$TMPDIR/root/etc/passwd")"
        grep -qx 'dialout:x:20:stm32ispd' "$TMPDIR/root/etc/group" || fail "sysusers: $(cat "$TMPDIR/root/etc/group")"
fi
echo "PASS: unit verified, exposure $score"
