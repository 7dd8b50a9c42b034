#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The introspection XML documents every key the daemon takes (the a{sv} option tables)
# and gives out (the Chip, LastResult and AutoFlash dictionaries, the results log) and
# every progress stage; keys passed in are kebab-case, keys given out snake_case. The
# keys are read from the code's tables, so a new key without its line in the XML fails.
set -euo pipefail
top=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
PORT_XML=$top/dbus/io.github.Stm32Isp1.Port.xml
MANAGER_XML=$top/dbus/io.github.Stm32Isp1.Manager.xml
errors=0
fail() { echo "FAIL: $*" >&2; errors=$((errors + 1)); }

# specs NAME: the keys (and aliases) of options.c's table NAME, its STM32ISP_KEY_* macros
# resolved through include/stm32isp-keys.h.
specs() {
        local m
        for m in $(sed -n "/^static const OptionSpec $1\\[\\] = {/,/^};/p" "$top/daemon/service/options.c" |
                   grep -o 'STM32ISP_KEY_[A-Z0-9_]*'); do
                sed -n "s/^#define $m  *\"\\([^\"]*\\)\".*/\\1/p" "$top/include/stm32isp-keys.h"
        done
}
# dict_keys FILE [FUNCTION]: the keys appended as {sv} entries (or json_add'ed).
dict_keys() {
        local text
        if [ -n "${2:-}" ]; then
                text=$(sed -n "/^static int $2(/,/^}/p" "$1")
        else
                text=$(cat "$1")
        fi
        { grep -o '"[a-z0-9_-]*", "[a-z{}()]*",' <<<"$text" | sed 's/^"\([^"]*\)".*/\1/'
          grep -o '\(append_array_entry\|bus_open_entry\)([a-z]*, "[a-z0-9_]*"' <<<"$text" | sed 's/.*"\([^"]*\)"$/\1/'
          grep -o 'json_add(o, "[a-z0-9_]*"' <<<"$text" | sed 's/.*"\([^"]*\)"$/\1/'
        } | grep -vx 'v' | sort -u
}
documented() { # documented XML KEY
        # no grep -q at the end of a pipe: under pipefail the writer's SIGPIPE would fail it
        grep -v '^ *<' "$1" | grep -- "\\(^\\|[^a-z0-9_-]\\)$2\\([^a-z0-9_-]\\|\$\\)" >/dev/null ||
                grep -q -- "[ (\"]$2[ ,).\"]" "$1"
}

n=0
for k in $(specs port_specs); do
        n=$((n + 1))
        [[ $k =~ ^[a-z0-9]+(-[a-z0-9]+)*$ ]] || fail "Port option '$k' is not kebab-case"
        documented "$PORT_XML" "$k" || fail "Port option '$k' is not documented in $(basename "$PORT_XML")"
done
for k in $(specs autoflash_specs) $(specs results_filter_specs); do
        n=$((n + 1))
        [[ $k =~ ^[a-z0-9]+(-[a-z0-9]+)*$ ]] || fail "Manager option '$k' is not kebab-case"
        documented "$MANAGER_XML" "$k" || fail "Manager option '$k' is not documented in $(basename "$MANAGER_XML")"
done
for k in $(dict_keys "$top/daemon/service/bus-dict.c"); do
        n=$((n + 1))
        [[ $k =~ ^[a-z0-9]+(_[a-z0-9]+)*$ ]] || fail "Port dictionary key '$k' is not snake_case"
        documented "$PORT_XML" "$k" || fail "Port dictionary key '$k' is not documented in $(basename "$PORT_XML")"
done
for k in $(dict_keys "$top/daemon/service/manager.c" prop_auto_flash) $(dict_keys "$top/daemon/service/results.c"); do
        n=$((n + 1))
        [[ $k =~ ^[a-z0-9]+(_[a-z0-9]+)*$ ]] || fail "Manager dictionary key '$k' is not snake_case"
        documented "$MANAGER_XML" "$k" || fail "Manager dictionary key '$k' is not documented in $(basename "$MANAGER_XML")"
done
for k in $(sed -n '/^static const char \*const stage_names/,/^};/p' "$top/daemon/core/flasher.c" | grep -o '= "[a-z]*"' |
           sed 's/= "\(.*\)"/\1/'); do
        n=$((n + 1))
        documented "$PORT_XML" "$k" || fail "progress stage '$k' is not documented in $(basename "$PORT_XML")"
done
# Erase without options erases the whole flash: said next to the method.
grep -B4 '<method name="Erase">' "$PORT_XML" | grep -q 'Erase({}) erases the whole' ||
        fail "Erase does not say that Erase({}) erases the whole flash"
[ $n -ge 80 ] || fail "only $n keys found: the extraction no longer matches the code"
[ $errors = 0 ] || exit 1
echo "PASS: $n keys and stages documented"
