#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The layers as README.md draws them, checked on the sources:
#   - the protocol core (daemon/core/) and the shared helpers (include/shared/) include no
#     D-Bus, sd-event or udev header, and nothing above them;
#   - the client includes nothing from daemon/;
#   - the Port object reports up through its hooks: port.c names no manager_* function.
set -euo pipefail

top=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top"
failed=0
fail() { echo "FAIL: $*"; failed=1; }

# allowed_includes FOLDER... -- FILE...: every "quoted" include of the files is a file in
# one of the folders (or next to the including file).
allowed_includes() {
        local dirs=() f inc d found
        while [ "$1" != -- ]; do dirs+=("$1"); shift; done
        shift
        for f in "$@"; do
                while read -r inc; do
                        found=0
                        for d in "$(dirname "$f")" "${dirs[@]}"; do
                                [ -e "$d/$inc" ] && found=1
                        done
                        [ $found = 1 ] || fail "$f includes \"$inc\", which is not in ${dirs[*]}"
                done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
        done
}

core=$(find daemon/core include/shared -name '*.[ch]' | sort)
[ -n "$core" ] || fail "no core sources found under $top"
# shellcheck disable=SC2086
if grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<(systemd/|libudev\.h)' $core; then
        fail "the core includes a bus, event-loop or udev header (above)"
fi
# shellcheck disable=SC2086
allowed_includes daemon/core daemon/core/link daemon/core/image include/shared -- $core

# shellcheck disable=SC2046
allowed_includes client include include/shared -- $(find client -name '*.[ch]' | sort)

if grep -n 'manager_[a-z_]*(' daemon/service/port.c daemon/service/port.h; then
        fail "port.c calls the manager (above): it reports through its hooks"
fi

[ $failed = 0 ] || exit 1
echo "PASS: the layers hold"
