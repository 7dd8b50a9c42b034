#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The polkit files, offline (polkitd reads them in the system test): the policy defines
# exactly the actions include/stm32isp.h names, each with a description and a message,
# the defaults of the access model (active local sessions auth_admin_keep, others no) and
# the service user as owner (so polkit takes the daemon's details); its messages are
# translatable (xgettext finds them); the rule names the same action prefix, the group
# of include/stm32isp.h and the user of the sysusers file.
. "$(dirname "$0")/../test-lib.sh"

POLICY="$TOP_SRCDIR/dbus/io.github.stm32isp.policy"
RULES="$TOP_SRCDIR/dbus/60-stm32ispd.rules"
HEADER="$TOP_SRCDIR/include/stm32isp.h"
SYSUSERS="$TOP_SRCDIR/systemd/stm32ispd.conf"

python3 - "$POLICY" "$HEADER" <<'PY' || fail "the policy file"
import re, sys
import xml.etree.ElementTree as ET
policy, header = sys.argv[1], sys.argv[2]
text = open(header).read()
prefix = re.search(r'#define STM32ISP_ACTION_PREFIX\s+"([^"]+)"', text).group(1)
want = {prefix + m for m in re.findall(r'#define STM32ISP_ACTION_\w+\s+STM32ISP_ACTION_PREFIX\s+"([^"]+)"', text)}
root = ET.parse(policy).getroot()
assert root.tag == "policyconfig", root.tag
got = {a.get("id") for a in root.findall("action")}
assert got == want, "policy %s, header %s" % (sorted(got), sorted(want))
for a in root.findall("action"):
    for tag in ("description", "message"):
        assert (a.findtext(tag) or "").strip(), "%s: no %s" % (a.get("id"), tag)
    d = {c.tag: c.text for c in a.find("defaults")}
    assert d == {"allow_any": "no", "allow_inactive": "no", "allow_active": "auth_admin_keep"}, (a.get("id"), d)
    owner = [n.text for n in a.findall("annotate") if n.get("key") == "org.freedesktop.policykit.owner"]
    assert owner == ["unix-user:stm32ispd"], (a.get("id"), owner)
print("actions:", " ".join(sorted(got)))
PY

if command -v xgettext >/dev/null; then
        xgettext -o "$TMPDIR/policy.pot" "$POLICY" 2>"$TMPDIR/xgettext.err" || fail "xgettext: $(cat "$TMPDIR/xgettext.err")"
        # every msgid but the header's
        n=$(($(grep -c '^msgid ' "$TMPDIR/policy.pot") - 1))
        [ "$n" -ge 10 ] || fail "xgettext found $n strings, not the 5 descriptions and 5 messages"
fi

prefix=$(sed -n 's/^#define STM32ISP_ACTION_PREFIX *"\(.*\)"$/\1/p' "$HEADER")
grep -qF "action.id.indexOf(\"$prefix\") == 0" "$RULES" || fail "the rule does not name $prefix"
group=$(sed -n 's/^#define STM32ISP_GROUP *"\(.*\)"$/\1/p' "$HEADER")
[ -n "$group" ] || fail "no STM32ISP_GROUP in $HEADER"
grep -qF "subject.isInGroup(\"$group\")" "$RULES" || fail "the rule does not name $group"
user=$(sed -n 's/^u \([^ ]*\) .*/\1/p' "$SYSUSERS")
grep -qF "subject.user == \"$user\"" "$RULES" || fail "the rule does not name the service user $user"

echo "PASS: polkit policy and rule"
