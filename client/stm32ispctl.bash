# bash completion for stm32ispctl                                -*- shell-script -*-
# SPDX-License-Identifier: LGPL-2.1-or-later

_stm32ispctl_ports() {
        local d
        for d in /dev/ttyUSB* /dev/ttyACM* /dev/ttyAMA* /dev/serial/by-id/* /dev/serial/by-path/*; do
                [ -e "$d" ] && printf '%s\n' "$d"
        done
}

_stm32ispctl() {
        local cur prev words cword
        _init_completion -n = || return

        local commands="list info diagnose flash erase read lock unlock go run cancel monitor log help"
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
                --report|--trace) _filedir; return ;;
        esac
        case $cur in
                --format=*) COMPREPLY=($(compgen -W "auto bin hex elf srec" -- "${cur#*=}")); return ;;
                --erase=*) COMPREPLY=($(compgen -W "auto mass none" -- "${cur#*=}")); return ;;
                --result=*) COMPREPLY=($(compgen -W "pass fail" -- "${cur#*=}")); return ;;
                --baud=*) COMPREPLY=($(compgen -W "115200 57600 38400 19200 9600" -- "${cur#*=}")); return ;;
                --trace=*) cur=${cur#*=}; _filedir; return ;;
                *=*) return ;;
        esac

        # The command and the positional arguments, skipping options and their values.
        local i cmd="" npos=0
        for ((i = 1; i < cword; i++)); do
                case ${words[i]} in
                        --bus-address|--host|--address|--length|--format|--erase|--baud|--entry|--trace|--report|--pages|-H|-a|-l|-f|-e|-b) ((i++)) ;;
                        -*) ;;
                        *) if [ -z "$cmd" ]; then cmd=${words[i]}; else ((npos++)); fi ;;
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
                info|diagnose|flash|erase|read|lock|unlock|go|run|cancel)
                        if [ $npos = 0 ]; then
                                COMPREPLY=($(compgen -W "$(_stm32ispctl_ports)" -- "$cur"))
                        elif [ $npos = 1 ] && [[ $cmd == flash || $cmd == read ]]; then
                                _filedir
                        fi
                        ;;
                monitor)
                        [ $npos = 0 ] && COMPREPLY=($(compgen -W "station" -- "$cur"))
                        ;;
        esac
} && complete -F _stm32ispctl stm32ispctl
