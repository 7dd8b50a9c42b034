/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stm32ispctl: the command-line client of stm32ispd. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "autoflash.h"
#include "commands.h"
#include "exit-codes.h"
#include "stm32isp.h"
#include "util.h"

enum {
        OPT_ADDRESS   = 1 << 0,
        OPT_LENGTH    = 1 << 1,
        OPT_FORMAT    = 1 << 2,
        OPT_ERASE     = 1 << 3,
        OPT_VERIFY    = 1 << 4,
        OPT_UNPROTECT = 1 << 5,
        OPT_PROTECT   = 1 << 6,
        OPT_BOOT0     = 1 << 7,
        OPT_GO        = 1 << 8,
        OPT_BAUD      = 1 << 9,
        OPT_ENTRY     = 1 << 10,
        OPT_MASS      = 1 << 11,
        OPT_PAGES     = 1 << 12,
        OPT_RESULT    = 1 << 13,
        OPT_UID       = 1 << 14,
        OPT_SINCE     = 1 << 15,
        OPT_UNTIL     = 1 << 16,
        OPT_LIMIT     = 1 << 17,
        OPT_ONCE      = 1 << 18,
        OPT_FORCE     = 1 << 19,
        OPT_DETACH    = 1 << 20,
        OPT_TRACE     = 1 << 21,
        OPT_SN        = 1 << 22,        /* the --sn-* family */
        OPT_SERIAL    = 1 << 23,
        OPT_STATS     = 1 << 24,
        OPT_REPORT    = 1 << 25,
        OPT_PROFILE   = 1 << 26,        /* any of profile_options[] */
};
#define OPT_LAST OPT_PROFILE
#define OPT_LINE (OPT_BAUD | OPT_ENTRY | OPT_TRACE)
/* flash's options that a profile takes too (autoflash set: no trace, no detach) */
#define OPT_FLASH (OPT_ADDRESS | OPT_FORMAT | OPT_ERASE | OPT_VERIFY | OPT_UNPROTECT | OPT_PROTECT | OPT_BOOT0 | \
                   OPT_GO | OPT_FORCE | OPT_BAUD | OPT_ENTRY)

typedef struct Command {
        const char *name;
        int min_pos, max_pos;
        unsigned options;
        int (*run)(ClientBus *c, const Args *a);
        const char *usage;
        bool takes_port;        /* the first positional argument is a PORT */
} Command;

static const Command commands[] = {
        { "list",    0, 0, 0, cmd_list, "list" },
        { "info",    1, 1, OPT_LINE, cmd_info, "info PORT", true },
        { "diagnose", 1, 1, OPT_REPORT | OPT_LINE, cmd_diagnose, "diagnose PORT [--report FILE]", true },
        { "flash",   1, 2, OPT_FLASH | OPT_DETACH | OPT_TRACE | OPT_SN, cmd_flash,
          "flash [PORT] FILE [--address A] [--format auto|bin|hex|elf|srec] [--erase auto|mass|none]\n"
          "                    [--no-verify] [--unprotect] [--protect] [--no-boot0] [--go] [--force] [--baud B]\n"
          "                    [--entry SEQ] [--detach] [--sn-address A [--sn-first N] [--sn-step N]\n"
          "                    [--sn-format F] [--sn-counter NAME]]", true },
        { "erase",   1, 1, OPT_MASS | OPT_PAGES | OPT_ADDRESS | OPT_LENGTH | OPT_DETACH | OPT_LINE, cmd_erase,
          "erase PORT [--mass | --pages FIRST[-LAST] | --address A --length N] [--detach]", true },
        { "read",    2, 2, OPT_ADDRESS | OPT_LENGTH | OPT_LINE, cmd_read, "read PORT FILE [--address A] [--length N]", true },
        { "lock",    1, 1, OPT_FORCE | OPT_DETACH | OPT_LINE, cmd_lock, "lock PORT [--force] [--detach]", true },
        { "unlock",  1, 1, OPT_FORCE | OPT_DETACH | OPT_LINE, cmd_unlock, "unlock PORT [--force] [--detach]", true },
        { "go",      1, 2, OPT_ADDRESS, cmd_go, "go PORT [ADDRESS]", true },
        { "run",     1, 2, OPT_ADDRESS, cmd_go, NULL, true },
        { "cancel",  1, 1, 0, cmd_cancel, "cancel PORT", true },
        { "remove",  1, 1, 0, cmd_remove, "remove PORT", true },
        { "autoflash", 0, 2, OPT_FLASH | OPT_SN | OPT_PROFILE, cmd_autoflash,
          "autoflash [show | set IMAGE [FLASH OPTIONS] [PROFILE OPTIONS] | clear]" },
        { "monitor", 0, 1, OPT_SINCE | OPT_ONCE, cmd_monitor, "monitor [station [--once] [--since DATE]]" },
        { "log",     0, 1, OPT_RESULT | OPT_UID | OPT_SINCE | OPT_UNTIL | OPT_LIMIT | OPT_SERIAL | OPT_STATS, cmd_log,
          "log [PORT] [--result pass|fail] [--uid UID] [--serial N] [--since DATE] [--until DATE] [--limit N]\n"
          "                    [--stats]", true },
};

static void help(void) {
        size_t n;
        const ExitCodeEntry *t = exit_code_table(&n);

        printf("Usage: stm32ispctl [OPTIONS] COMMAND ...\n\n"
               "Flash STM32 microcontrollers through their ROM UART bootloader, via stm32ispd.\n\n"
               "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (commands[i].usage)
                        printf("  %s\n", commands[i].usage);
        printf("\nPORT: /dev/ttyUSB0, ttyUSB0, a /dev/serial/by-id or by-path link, a D-Bus object path,\n"
               "tcp://HOST:PORT (a raw TCP serial server) or rfc2217://HOST:PORT (an RFC 2217 serial\n"
               "server: the daemon sets 8E1, DTR/RTS and breaks there). FILE '-' is standard input/output.\n\n"
               "Options (before or after the command):\n"
               "      --system          talk to the daemon on the system bus (default)\n"
               "      --session, --user talk to the daemon on the session bus\n"
               "      --bus-address=ADDR  talk to the daemon on the bus at ADDR\n"
               "  -H, --host=[USER@]HOST  talk to the daemon on HOST's system bus, over ssh\n"
               "      --no-ask-password  never let polkit ask for a password (on a terminal\n"
               "                        stm32ispctl runs pkttyagent for it otherwise)\n"
               "  -j, --json            machine-readable output (one JSON object per line)\n"
               "  -q, --quiet           no progress and no result text\n"
               "  -a, --address=A       flash/read/erase/go address (default: the flash base)\n"
               "  -l, --length=N        read/erase length (K and M suffixes)\n"
               "  -f, --format=F        image format: auto, bin, hex, elf, srec\n"
               "  -e, --erase=MODE      auto (the pages written; the rest of them is kept),\n"
               "                        mass, none\n"
               "      --no-verify       do not read back what was written\n"
               "      --unprotect       remove read protection first (erases the flash), and write\n"
               "                        protection from pages the image needs (Write Unprotect)\n"
               "      --protect         set read protection level 1 after flashing\n"
               "      --no-boot0        C0/G0: leave nBOOT_SEL as it is (with the factory setting the\n"
               "                        BOOT0 pin is then ignored once the flash holds code: --force)\n"
               "      --go              start the code after flashing with the bootloader's Go; it\n"
               "                        leaves the ROM's context (vector table, F0: memory at 0), so\n"
               "                        code that does not set VTOR may hang: where the wiring allows,\n"
               "                        start it by a reset with BOOT0 low (the --entry exit sequence)\n"
               "      --force           flash, lock: accept an end state from which no BOOT0 level\n"
               "                        brings back the bootloader (only a debugger then reaches it);\n"
               "                        unlock: unlock (and erase) a chip that is not read-protected\n"
               "      --detach          flash, erase, lock, unlock: return once the job started; it\n"
               "                        runs on without this client (follow it: stm32ispctl monitor).\n"
               "                        Without it, a job whose client is gone is cancelled\n"
               "      --report=FILE     diagnose: also write the diagnosis to FILE (JSON), to attach to\n"
               "                        a bug report\n"
               "      --mass            erase the whole flash (erase's default)\n"
               "      --pages=F[-L]     erase pages F to L\n"
               "  -b, --baud=B          baud rate, 1200-3000000 (default 115200); above 115200 it is\n"
               "                        tried first, then 115200 if the chip does not answer\n"
               "      --entry=SEQ       DTR/RTS sequence that enters the bootloader\n"
               "      --trace=FILE      write the job's wire trace (every byte, decoded) to FILE, as\n"
               "                        text, or JSON with --json; a failed job's trace is also kept\n"
               "                        by the daemon (its message names the file)\n"
               "      --sn-address=A    flash: write a serial number at A (in the image or an area\n"
               "                        clear of it); the number is bound to the chip's UID\n"
               "      --sn-first=N      flash: the first number of a new counter (default 1)\n"
               "      --sn-step=N       flash: the step between numbers (default 1)\n"
               "      --sn-format=F     flash: le32 (default), le64, be32, be64 or text:FMT (one %%u)\n"
               "      --sn-counter=NAME flash: the counter (default 'default')\n"
               "      --result=pass|fail  log: only passed or failed operations\n"
               "      --uid=UID         log: only this chip (hex UID)\n"
               "      --serial=N        log: the board that got serial number N\n"
               "      --stats           log: per slot and in total, passed, failed, yield and the\n"
               "                        failure reasons by count\n"
               "      --since=DATE, --until=DATE  log: a time window (YYYY-MM-DD[ HH:MM[:SS]] local\n"
               "                        time, ...Z for UTC, or @SECONDS since the epoch)\n"
               "  -n, --limit=N         log: the newest N entries\n"
               "      --once            monitor station: print the table once and exit (counts\n"
               "                        since --since, default the start of the day)\n"
               "  -h, --help            this text\n"
               "      --version         the version\n\n"
               "Profile options (autoflash set; absent match options match any port):\n");
        for (size_t i = 0; i < profile_options_n; i++) {
                char o[64];

                snprintf(o, sizeof o, "--%s%s%s", profile_options[i].option, profile_options[i].arg ? "=" : "",
                         profile_options[i].arg ?: "");
                printf("      %-18s%s%s\n", o, strlen(o) > 17 ? "\n                        " : "",
                       profile_options[i].help);
        }
        printf("\nExit codes:\n");
        for (size_t i = 0; i < n; i++)
                printf("  %3d  %s\n", t[i].code, t[i].what);
}

_printf_(1, 2) static int usage_error(const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&m, fmt, ap);
        va_end(ap);
        fprintf(stderr, "stm32ispctl: %s\nTry 'stm32ispctl --help'.\n", r < 0 ? "usage error" : m);
        failure_record(EXIT_USAGE, NULL, r < 0 ? NULL : m);
        return EXIT_USAGE;
}

static const char *option_name(unsigned bit) {
        static const char *const names[] = {
                "--address", "--length", "--format", "--erase", "--no-verify", "--unprotect", "--protect",
                "--no-boot0", "--go", "--baud", "--entry", "--mass", "--pages", "--result", "--uid",
                "--since", "--until", "--limit", "--once", "--force", "--detach", "--trace", "--sn-*", "--serial",
                "--stats", "--report", "profile options (--vid, ...)",
        };
        for (unsigned i = 0; i < ELEMENTSOF(names); i++)
                if (bit == 1u << i)
                        return names[i];
        return "?";
}

static bool one_of(const char *v, const char *const *list) {
        for (; *list; list++)
                if (streq(v, *list))
                        return true;
        return false;
}

static int parse_args(int argc, char *argv[], Args *a, const Command **ret_cmd) {
        enum {
                ARG_VERSION = 0x100, ARG_SYSTEM, ARG_SESSION, ARG_BUS_ADDRESS, ARG_NO_VERIFY, ARG_VERIFY,
                ARG_UNPROTECT, ARG_PROTECT, ARG_NO_BOOT0, ARG_BOOT0, ARG_GO, ARG_ENTRY, ARG_MASS, ARG_PAGES,
                ARG_RESULT, ARG_UID, ARG_SINCE, ARG_UNTIL, ARG_ONCE, ARG_FORCE, ARG_DETACH, ARG_NO_ASK_PASSWORD,
                ARG_TRACE, ARG_SN_ADDRESS, ARG_SN_FIRST, ARG_SN_STEP, ARG_SN_FORMAT, ARG_SN_COUNTER, ARG_SERIAL,
                ARG_STATS, ARG_REPORT,
                ARG_PROFILE, /* + the index in profile_options[]: keep last */
        };
        static const struct option fixed[] = {
                { "help",        no_argument,       NULL, 'h' },
                { "version",     no_argument,       NULL, ARG_VERSION },
                { "system",      no_argument,       NULL, ARG_SYSTEM },
                { "session",     no_argument,       NULL, ARG_SESSION },
                { "user",        no_argument,       NULL, ARG_SESSION },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                { "no-ask-password", no_argument,   NULL, ARG_NO_ASK_PASSWORD },
                { "host",        required_argument, NULL, 'H' },
                { "json",        no_argument,       NULL, 'j' },
                { "quiet",       no_argument,       NULL, 'q' },
                { "address",     required_argument, NULL, 'a' },
                { "length",      required_argument, NULL, 'l' },
                { "format",      required_argument, NULL, 'f' },
                { "erase",       required_argument, NULL, 'e' },
                { "no-verify",   no_argument,       NULL, ARG_NO_VERIFY },
                { "verify",      no_argument,       NULL, ARG_VERIFY },
                { "unprotect",   no_argument,       NULL, ARG_UNPROTECT },
                { "protect",     no_argument,       NULL, ARG_PROTECT },
                { "no-boot0",    no_argument,       NULL, ARG_NO_BOOT0 },
                { "boot0",       no_argument,       NULL, ARG_BOOT0 },
                { "go",          no_argument,       NULL, ARG_GO },
                { "baud",        required_argument, NULL, 'b' },
                { "entry",       required_argument, NULL, ARG_ENTRY },
                { "mass",        no_argument,       NULL, ARG_MASS },
                { "pages",       required_argument, NULL, ARG_PAGES },
                { "result",      required_argument, NULL, ARG_RESULT },
                { "uid",         required_argument, NULL, ARG_UID },
                { "since",       required_argument, NULL, ARG_SINCE },
                { "until",       required_argument, NULL, ARG_UNTIL },
                { "limit",       required_argument, NULL, 'n' },
                { "once",        no_argument,       NULL, ARG_ONCE },
                { "force",       no_argument,       NULL, ARG_FORCE },
                { "detach",      no_argument,       NULL, ARG_DETACH },
                { "trace",       required_argument, NULL, ARG_TRACE },
                { "sn-address",  required_argument, NULL, ARG_SN_ADDRESS },
                { "sn-first",    required_argument, NULL, ARG_SN_FIRST },
                { "sn-step",     required_argument, NULL, ARG_SN_STEP },
                { "sn-format",   required_argument, NULL, ARG_SN_FORMAT },
                { "sn-counter",  required_argument, NULL, ARG_SN_COUNTER },
                { "serial",      required_argument, NULL, ARG_SERIAL },
                { "stats",       no_argument,       NULL, ARG_STATS },
                { "report",      required_argument, NULL, ARG_REPORT },
        };
        /* The fixed options, then one per profile option. */
        struct option options[ELEMENTSOF(fixed) + PROFILE_OPTIONS_MAX + 1] = {};
        memcpy(options, fixed, sizeof fixed);
        for (size_t i = 0; i < profile_options_n; i++)
                options[ELEMENTSOF(fixed) + i] = (struct option) {
                        profile_options[i].option, profile_options[i].arg ? required_argument : no_argument, NULL,
                        ARG_PROFILE + (int) i,
                };
        static const char *const formats[] = { "auto", "bin", "hex", "elf", "srec", NULL };
        unsigned given = 0;
        uint64_t v;
        int c;

        *a = (Args) { .image_fd = -1, .trace_fd = -1, .ask_password = true, .verify = -1, .unprotect = -1,
                      .protect = -1, .boot0 = -1, .go = -1 };
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hjqa:l:f:e:b:n:H:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        exit(EXIT_OK);
                case ARG_VERSION:
                        printf("stm32ispctl %s\n", PACKAGE_VERSION);
                        exit(EXIT_OK);
                case ARG_SYSTEM:
                        a->bus_kind = BUS_KIND_SYSTEM;
                        break;
                case ARG_SESSION:
                        a->bus_kind = BUS_KIND_USER;
                        break;
                case ARG_BUS_ADDRESS:
                        a->bus_kind = BUS_KIND_ADDRESS;
                        a->bus_address = optarg;
                        break;
                case 'H':
                        a->bus_kind = BUS_KIND_REMOTE;
                        a->bus_address = optarg;
                        break;
                case 'j':
                        a->json = true;
                        break;
                case 'q':
                        a->quiet = true;
                        break;
                case 'a':
                        if (parse_address(optarg, &a->address) < 0 || a->address > UINT32_MAX)
                                return usage_error("invalid address '%s'", optarg);
                        a->have_address = true;
                        given |= OPT_ADDRESS;
                        break;
                case 'l':
                        if (parse_size(optarg, &a->length) < 0 || a->length == 0 || a->length > UINT32_MAX)
                                return usage_error("invalid length '%s'", optarg);
                        a->have_length = true;
                        given |= OPT_LENGTH;
                        break;
                case 'f':
                        if (!one_of(optarg, formats))
                                return usage_error("invalid format '%s' (auto, bin, hex, elf, srec)", optarg);
                        a->format = optarg;
                        given |= OPT_FORMAT;
                        break;
                case 'e':
                        if (stm32isp_erase_mode_from_string(optarg) < 0)
                                return usage_error("invalid erase mode '%s' (auto, mass, none)", optarg);
                        a->erase = optarg;
                        given |= OPT_ERASE;
                        break;
                case ARG_NO_VERIFY:
                case ARG_VERIFY:
                        a->verify = c == ARG_VERIFY;
                        given |= OPT_VERIFY;
                        break;
                case ARG_UNPROTECT:
                        a->unprotect = 1;
                        given |= OPT_UNPROTECT;
                        break;
                case ARG_PROTECT:
                        a->protect = 1;
                        given |= OPT_PROTECT;
                        break;
                case ARG_NO_BOOT0:
                case ARG_BOOT0:
                        a->boot0 = c == ARG_BOOT0;
                        given |= OPT_BOOT0;
                        break;
                case ARG_GO:
                        a->go = 1;
                        given |= OPT_GO;
                        break;
                case 'b':
                        if (parse_address(optarg, &v) < 0 || v < STM32ISP_BAUDRATE_MIN || v > STM32ISP_BAUDRATE_MAX)
                                return usage_error("invalid baud rate '%s' (%u-%u)", optarg, STM32ISP_BAUDRATE_MIN,
                                                   STM32ISP_BAUDRATE_MAX);
                        a->baud = (uint32_t) v;
                        a->have_baud = true;
                        given |= OPT_BAUD;
                        break;
                case ARG_ENTRY:
                        a->entry = optarg;
                        given |= OPT_ENTRY;
                        break;
                case ARG_MASS:
                        a->mass = true;
                        given |= OPT_MASS;
                        break;
                case ARG_PAGES:
                        a->pages = optarg;
                        given |= OPT_PAGES;
                        break;
                case ARG_RESULT:
                        if (!streq(optarg, "pass") && !streq(optarg, "fail"))
                                return usage_error("invalid result '%s' (pass, fail)", optarg);
                        a->result = optarg;
                        given |= OPT_RESULT;
                        break;
                case ARG_UID:
                        if (!*optarg || strspn(optarg, "0123456789abcdefABCDEF") != strlen(optarg))
                                return usage_error("invalid UID '%s' (hex digits)", optarg);
                        a->uid = optarg;
                        given |= OPT_UID;
                        break;
                case ARG_SINCE:
                case ARG_UNTIL:
                        if (parse_timestamp(optarg, c == ARG_SINCE ? &a->since_usec : &a->until_usec) < 0)
                                return usage_error("invalid date '%s'", optarg);
                        given |= c == ARG_SINCE ? OPT_SINCE : OPT_UNTIL;
                        break;
                case 'n':
                        if (parse_address(optarg, &v) < 0 || v == 0 || v > UINT32_MAX)
                                return usage_error("invalid limit '%s'", optarg);
                        a->limit = (uint32_t) v;
                        given |= OPT_LIMIT;
                        break;
                case ARG_ONCE:
                        a->once = true;
                        given |= OPT_ONCE;
                        break;
                case ARG_FORCE:
                        a->force = true;
                        given |= OPT_FORCE;
                        break;
                case ARG_DETACH:
                        a->detach = true;
                        given |= OPT_DETACH;
                        break;
                case ARG_SN_ADDRESS:
                        if (parse_address(optarg, &a->sn_address) < 0 || a->sn_address > UINT32_MAX)
                                return usage_error("invalid serial-number address '%s'", optarg);
                        a->have_sn_address = true;
                        given |= OPT_SN;
                        break;
                case ARG_SN_FIRST:
                case ARG_SN_STEP:
                        if (parse_address(optarg, &v) < 0 || (c == ARG_SN_STEP && v == 0))
                                return usage_error("invalid %s '%s'", c == ARG_SN_FIRST ? "--sn-first" : "--sn-step",
                                                   optarg);
                        if (c == ARG_SN_FIRST) {
                                a->sn_first = v;
                                a->have_sn_first = true;
                        } else {
                                a->sn_step = v;
                                a->have_sn_step = true;
                        }
                        given |= OPT_SN;
                        break;
                case ARG_SN_FORMAT:
                        a->sn_format = optarg;  /* the daemon checks it (serialnum.c) */
                        given |= OPT_SN;
                        break;
                case ARG_SN_COUNTER:
                        a->sn_counter = optarg;
                        given |= OPT_SN;
                        break;
                case ARG_SERIAL:
                        if (parse_address(optarg, &a->serial) < 0)
                                return usage_error("invalid serial number '%s'", optarg);
                        a->have_serial = true;
                        given |= OPT_SERIAL;
                        break;
                case ARG_STATS:
                        a->stats = true;
                        given |= OPT_STATS;
                        break;
                case ARG_REPORT:
                        if (!*optarg)
                                return usage_error("%s", "--report needs a file name");
                        a->report = optarg;
                        given |= OPT_REPORT;
                        break;
                case ARG_NO_ASK_PASSWORD:
                        a->ask_password = false;
                        break;
                case ARG_TRACE:
                        if (!*optarg)
                                return usage_error("%s", "--trace needs a file name");
                        a->trace = optarg;
                        given |= OPT_TRACE;
                        break;
                case ':':
                        return usage_error("option '%s' needs an argument", argv[optind - 1]);
                default:
                        if (c >= ARG_PROFILE && c < ARG_PROFILE + (int) profile_options_n) {
                                a->profile[c - ARG_PROFILE] = optarg ?: "";
                                a->have_profile = true;
                                given |= OPT_PROFILE;
                                break;
                        }
                        return usage_error("unknown option '%s'", argv[optind - 1]);
                }
        }

        if (optind >= argc)
                return usage_error("%s", "no command given");
        a->command = argv[optind];
        a->pos = argv + optind + 1;
        a->n_pos = argc - optind - 1;

        const Command *cmd = NULL;
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, a->command))
                        cmd = &commands[i];
        if (!cmd) {
                if (streq(a->command, "help")) {
                        help();
                        exit(EXIT_OK);
                }
                return usage_error("unknown command '%s'", a->command);
        }
        if (a->n_pos < cmd->min_pos)
                return usage_error("%s: missing arguments", cmd->name);
        if (a->n_pos > cmd->max_pos)
                return usage_error("unexpected argument '%s'", a->pos[cmd->max_pos]);
        for (unsigned bit = 1; bit <= OPT_LAST; bit <<= 1)
                if ((given & bit) && !(cmd->options & bit))
                        return usage_error("%s does not take %s", cmd->name, option_name(bit));
        if (cmd->run == cmd_autoflash) {
                const char *verb = a->n_pos > 0 ? a->pos[0] : "show";

                if (!streq(verb, "show") && !streq(verb, "set") && !streq(verb, "clear"))
                        return usage_error("autoflash: unknown verb '%s' (show, set IMAGE, clear)", verb);
                if (streq(verb, "set") && a->n_pos < 2)
                        return usage_error("%s", "autoflash set: which IMAGE?");
                if (!streq(verb, "set") && a->n_pos > 1)
                        return usage_error("unexpected argument '%s'", a->pos[1]);
                if (!streq(verb, "set") && given)
                        return usage_error("autoflash %s takes no options", verb);
        }
        if ((given & OPT_SN) && !a->have_sn_address)
                return usage_error("%s", "the --sn-* options need --sn-address");
        if (a->mass + !!a->pages + (a->have_address || a->have_length) > 1 && streq(cmd->name, "erase"))
                return usage_error("%s", "erase: --mass, --pages and --address/--length exclude each other");
        if (cmd->run == cmd_go && a->n_pos == 2) {
                if (a->have_address)
                        return usage_error("%s", "go: the address given twice");
                if (parse_address(a->pos[1], &a->address) < 0 || a->address > UINT32_MAX)
                        return usage_error("invalid address '%s'", a->pos[1]);
                a->have_address = true;
        }
        /* Go loads the stack pointer from ADDRESS and jumps to [ADDRESS + 4] (AN3155): a
         * vector table's address. An odd one is a function's (Thumb) address. */
        if (cmd->run == cmd_go && a->have_address && (a->address & 3))
                return usage_error("go: 0x%08" PRIX64 " is %s: give the address of the vector table (the image's "
                                   "start, e.g. 0x%08X), not of a function%s", a->address,
                                   a->address & 1 ? "odd" : "not word-aligned", STM32ISP_FLASH_ADDRESS_DEFAULT,
                                   a->address & 1 ? " (the Thumb bit)" : "");
        if (a->bus_kind == BUS_KIND_ADDRESS && (!a->bus_address || !*a->bus_address))
                return usage_error("%s", "--bus-address needs an address");
        if (a->bus_kind == BUS_KIND_REMOTE && (!a->bus_address || !*a->bus_address))
                return usage_error("%s", "--host needs [USER@]HOST");
        *ret_cmd = cmd;
        return 0;
}

int main(int argc, char *argv[]) {
        const Command *cmd = NULL;
        pid_t agent = 0;
        ClientBus c;
        Args a;
        int r;

        r = parse_args(argc, argv, &a, &cmd);
        if (r != 0) {
                /* A usage error may come before getopt() reached --json. */
                for (int i = 1; i < argc && !streq(argv[i], "--"); i++)
                        if (streq(argv[i], "--json") || streq(argv[i], "-j"))
                                a.json = true;
                if (a.json)
                        failure_print_json(stdout, cmd ? cmd->name : NULL, NULL, r);
                return r;
        }

        /* The image is opened first: a file error comes before the bus. */
        const char *image = cmd->run == cmd_flash ? a.pos[a.n_pos - 1] :
                            cmd->run == cmd_autoflash && a.n_pos == 2 ? a.pos[1] : NULL;
        if (image) {
                r = client_open_image(&a, image);
                if (r != 0)
                        goto finish;
        }
        r = client_bus_open(&c, a.bus_kind, a.bus_address);
        if (r < 0) {
                r = client_report_error(&(ClientBus) { .kind = a.bus_kind, .address = a.bus_address }, cmd->name,
                                        NULL, r);
                goto finish;
        }
        /* A caller outside dialout may be asked to authenticate (polkit). */
        (void) sd_bus_set_allow_interactive_authorization(c.bus, a.ask_password);
        if (a.ask_password && a.bus_kind == BUS_KIND_SYSTEM && cmd->run != cmd_list && cmd->run != cmd_monitor)
                agent = agent_open();
        /* Images, outputs and traces travel as file descriptors, which an ssh pipe cannot carry. */
        if ((image || cmd->run == cmd_read || a.trace) && sd_bus_can_send(c.bus, SD_BUS_TYPE_UNIX_FD) <= 0)
                r = failure_printf(EXIT_USAGE, "%s cannot pass the %s file over %s: copy it there and run 'ssh %s "
                                               "stm32ispctl %s ...', or arm auto-flash in the station's configuration.",
                                   cmd->name, a.trace ? "trace" : image ? "image" : "output",
                                   a.bus_kind == BUS_KIND_REMOTE ? "ssh" : "this bus", a.bus_address ?: "HOST",
                                   cmd->name);
        else if (a.trace &&
                 (a.trace_fd = open(a.trace, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644)) < 0)
                r = failure_printf(EXIT_FILE_ERROR, "cannot open %s: %m", a.trace);
        else
                r = cmd->run(&c, &a);
        if (a.trace_fd >= 0)
                close(a.trace_fd);
        client_bus_close(&c);
        agent_close(agent);
finish:
        /* --json: every failure is an object on stdout too, for scripts. */
        if (r != 0 && a.json)
                failure_print_json(stdout, cmd->name,
                                   cmd->takes_port && a.n_pos > 0 ? a.pos[0] : NULL, r);
        fflush(stdout);
        return r;
}
