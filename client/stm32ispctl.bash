# bash completion for stm32ispctl                                -*- shell-script -*-
# SPDX-License-Identifier: LGPL-2.1-or-later
# Works with the bash-completion package and without it (plain bash: the words are
# taken from COMP_LINE, files completed by compgen).

# The ports: the serial devices here, and the ports the daemon knows (tcp:// and
# rfc2217:// ones too), asked on the bus the command line names ("$@": its bus options).
_stm32ispctl_ports() {
        local d
        for d in /dev/ttyUSB* /dev/ttyACM* /dev/ttyAMA* /dev/serial/by-id/* /dev/serial/by-path/*; do
                [ -e "$d" ] && printf '%s\n' "$d"
        done
        command -v stm32ispctl >/dev/null 2>&1 || return 0
        timeout 3 stm32ispctl "$@" --no-ask-password --json list 2>/dev/null |
                grep -o '"device":"[^"]*"' | sed 's/^"device":"\(.*\)"$/\1/'
}

_stm32ispctl_files() {
        if declare -F _filedir >/dev/null; then
                _filedir
        else
                local IFS=$'\n'
                compopt -o filenames 2>/dev/null
                COMPREPLY=($(compgen -f -- "$cur"))
        fi
}

_stm32ispctl() {
        local cur prev words cword
        if declare -F _init_completion >/dev/null; then
                _init_completion -n = || return
        else
                # Without bash-completion: split what is before the cursor on blanks
                # only, as _init_completion -n = would ("--format=hex" one word).
                local line=${COMP_LINE:0:COMP_POINT}
                read -ra words <<<"$line"
                [[ -z $line || $line == *[[:blank:]] ]] && words+=("")
                cword=$((${#words[@]} - 1))
                cur=${words[cword]}
                prev=${words[cword - 1]:-}
        fi

        local commands="list info diagnose flash erase read lock unlock go run cancel remove autoflash monitor log help"
        local global="--system --session --user --bus-address= --host= --no-ask-password --json --quiet --help --version"
        local line="--baud= --entry= --trace="
        local -A opts=(
                [list]=""
                [info]="$line"
                [diagnose]="--report= $line"
                [flash]="--address= --format= --erase= --no-verify --unprotect --protect --no-boot0 --go --force --detach $line
                         --sn-address= --sn-first= --sn-step= --sn-format= --sn-counter="
                [erase]="--mass --pages= --address= --length= --detach $line"
                [read]="--address= --length= $line"
                [lock]="--force --detach $line"
                [unlock]="--force --detach $line"
                [go]="--address="
                [run]="--address="
                [cancel]=""
                [remove]=""
                [autoflash]="--address= --format= --erase= --no-verify --unprotect --protect --no-boot0 --go --force $line
                             --vid= --pid= --adapter-serial= --id-path= --port= --expect-chip= --detect= --poll-ms= --sn-address= --sn-first= --sn-step= --sn-format= --sn-counter="
                [monitor]="--once --since="
                [log]="--result= --uid= --serial= --since= --until= --limit= --stats"
        )

        case $prev in
                --format|-f) COMPREPLY=($(compgen -W "auto bin hex elf srec" -- "$cur")); return ;;
                --erase|-e) COMPREPLY=($(compgen -W "auto mass none" -- "$cur")); return ;;
                --result) COMPREPLY=($(compgen -W "pass fail" -- "$cur")); return ;;
                --uid|--serial|--since|--until|--limit|-n) return ;;
                --sn-format) COMPREPLY=($(compgen -W "le32 le64 be32 be64 text:" -- "$cur")); return ;;
                --sn-address|--sn-first|--sn-step|--sn-counter) return ;;
                --baud|-b) COMPREPLY=($(compgen -W "115200 57600 38400 19200 9600" -- "$cur")); return ;;
                --bus-address|--host|-H|--address|-a|--length|-l|--pages|--entry) return ;;
                --vid|--pid|--adapter-serial|--id-path|--port|--expect-chip) return ;;
                --report|--trace) _stm32ispctl_files; return ;;
        esac
        case $cur in
                --format=*) COMPREPLY=($(compgen -W "auto bin hex elf srec" -- "${cur#*=}")); return ;;
                --erase=*) COMPREPLY=($(compgen -W "auto mass none" -- "${cur#*=}")); return ;;
                --result=*) COMPREPLY=($(compgen -W "pass fail" -- "${cur#*=}")); return ;;
                --baud=*) COMPREPLY=($(compgen -W "115200 57600 38400 19200 9600" -- "${cur#*=}")); return ;;
                --trace=*|--report=*) cur=${cur#*=}; _stm32ispctl_files; return ;;
                *=*) return ;;
        esac

        # The command and the positional arguments, skipping options and their values.
        local i cmd="" pos0="" npos=0 bus=()
        for ((i = 1; i < cword; i++)); do
                case ${words[i]} in
                        --system|--session|--user|--bus-address=*|--host=*) bus+=("${words[i]}") ;;
                        --bus-address|--host|-H) bus+=("${words[i]}" "${words[i + 1]}"); ((i++)) ;;
                        --address|--length|--format|--erase|--baud|--entry|--trace|--report|--pages|-a|-l|-f|-e|-b) ((i++)) ;;
                        --vid|--pid|--adapter-serial|--id-path|--port|--expect-chip) ((i++)) ;;
                        -*) ;;
                        *) if [ -z "$cmd" ]; then cmd=${words[i]}; else [ $npos = 0 ] && pos0=${words[i]}; ((npos++)); fi ;;
                esac
        done

        if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "$global ${cmd:+${opts[$cmd]}}" -- "$cur"))
                [[ ${COMPREPLY-} == *= ]] && { compopt -o nospace 2>/dev/null || true; }
                return
        fi
        if [ -z "$cmd" ]; then
                COMPREPLY=($(compgen -W "$commands" -- "$cur"))
                return
        fi
        case $cmd in
                info|diagnose|flash|erase|read|lock|unlock|go|run|cancel|remove|log)
                        if [ $npos = 0 ]; then
                                local IFS=$'\n'
                                COMPREPLY=($(compgen -W "$(_stm32ispctl_ports "${bus[@]}")" -- "$cur"))
                                # bash splits words at ':' too: reply with what follows the last one
                                [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]] && COMPREPLY=("${COMPREPLY[@]#"${cur%:*}":}")
                        elif [ $npos = 1 ] && [[ $cmd == flash || $cmd == read ]]; then
                                _stm32ispctl_files
                        fi
                        ;;
                autoflash)
                        if [ $npos = 0 ]; then
                                COMPREPLY=($(compgen -W "show set clear" -- "$cur"))
                        elif [ $npos = 1 ] && [ "$pos0" = set ]; then
                                _stm32ispctl_files
                        fi
                        ;;
                monitor)
                        [ $npos = 0 ] && COMPREPLY=($(compgen -W "station" -- "$cur"))
                        ;;
        esac
} && complete -F _stm32ispctl stm32ispctl
