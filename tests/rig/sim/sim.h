/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A simulated STM32 ROM USART bootloader (AN3155), the project's test peer.
 *
 * It models each family from ST's documents and the tools that program these parts on
 * silicon with its own table (not
 * the daemon's chips.c: an oracle must not share the code it checks): memory map,
 * erased value, write unit and the G0/C0 4-but-not-8-aligned quirk, programming only
 * erased cells, option bytes and RDP, write protection (silent on program and erase,
 * NACK on mass erase), resets and the boot decision (C0/G0 empty-flash rule,
 * nBOOT_SEL/nBOOT0/BOOT0 pin; F0/L0 BOOT0 pin, an L0 empty check as an option), Go, no
 * mass erase on L0.
 *
 * At least as strict as the evidence (sim.c names the sources): the autobaud locks on
 * the first byte after a reset (anything but a 0x7F it can measure leaves the chip deaf
 * until the next reset: SIM_STATE_DEAF); a C0/G0 takes only the 8-byte OPTR + complement option-byte
 * write, and any other option-byte write, a complement mismatch, or a reset or power
 * loss while option bytes are being programmed locks it for good (SIM_STATE_LOCKED).
 *
 * It serves one file descriptor (socketpair end, pty master) from its own thread. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Sim Sim;

typedef struct SimTiming {
        bool enabled;                   /* off in unit tests, on in benchmarks */
        unsigned latency_usec;          /* adapter latency added before each reply burst (1000) */
        double speed;                   /* time scale: 1.0 real time */
} SimTiming;

typedef struct SimCounters {
        unsigned syncs;                 /* 0x7F answered while waiting for sync */
        unsigned commands;              /* command pairs received */
        unsigned nacks;                 /* NACKs sent */
        unsigned reads, writes;         /* Read/Write Memory commands completed */
        unsigned page_erases;           /* pages erased by page lists */
        unsigned mass_erases;
        unsigned resets;
        unsigned gos;
        unsigned ob_writes;
        unsigned misaligned_writes;     /* G0/C0 writes ACKed but dropped (4- not 8-aligned) */
        unsigned breaks;                /* breaks the host started on TX (added) */
        unsigned deafened;              /* first bytes after a reset that were not a
                                         * measurable 0x7F (added) */
        unsigned ob_interrupted;        /* resets or power losses during option-byte
                                         * programming (added) */
        uint64_t bytes_in, bytes_out;
} SimCounters;

typedef enum SimState {
        SIM_STATE_WAIT_SYNC,            /* in the bootloader, baud not yet measured */
        SIM_STATE_BOOTLOADER,           /* synced, waiting for a command */
        SIM_STATE_USER_CODE,            /* running the application: answers nothing */
        SIM_STATE_OFF,
        /* added: the first byte after the reset was not a 0x7F the autobaud could measure:
         * the chip hears nothing until the next reset or power cycle */
        SIM_STATE_DEAF,
        /* added, C0/G0: option bytes programmed in a form no source shows working,
         * with a complement mismatch, or interrupted by a reset or power loss (RM0444:
         * "might permanently lock the device"). Never left, power cycles included. */
        SIM_STATE_LOCKED,
} SimState;

/* pid: 0x443, 0x453, 0x444, 0x466, 0x457. flash_size: 0 = the family's largest. */
int sim_new(uint16_t pid, uint32_t flash_size, Sim **ret);
Sim *sim_free(Sim *s);              /* stops the thread first; accepts NULL */

/* Starts serving fd from a thread (fd stays owned by the caller, keep it open until
 * sim_stop). The chip powers up: with BOOT0 high (the default) it is in the bootloader. */
int sim_start(Sim *s, int fd);
void sim_stop(Sim *s);
/* Blocking variant for the CLI: serves until the fd hangs up or sim_stop(). */
int sim_run(Sim *s, int fd);

void sim_set_timing(Sim *s, const SimTiming *t);

/* Line settings the host configured (from the test shim). The simulator answers only
 * a host at 8E1 when line_known; bytes at a wrong parity/baud are garbled/ignored. */
void sim_set_line(Sim *s, unsigned baud, unsigned data_bits, char parity, unsigned stop_bits);
/* The host tty's input checks (added; from the shim's "INPCK=1 PARMRK=1 IGNPAR=0",
 * which keeps them from the pty): the simulator then delivers what such a tty would,
 * a data byte 0xFF doubled under PARMRK included. All off by default (a socketpair). */
void sim_set_input_checks(Sim *s, bool inpck, bool parmrk, bool ignpar);
/* The host's adapter ignores the parity it is asked for (some CH340/CH341 drivers, CDC
 * bridges) and sends 8N1 (added): with gaps between bytes the chip reads the stop bit as
 * the parity bit, so bytes with an odd number of ones (0x7F, Get ID 0x02 0xFD) arrive and
 * bytes with an even number (Get 0x00 0xFF, Read Memory 0x11 0xEE) fail the parity check
 * and are dropped (as the field reports say: "never arrive"). Back-to-back frames would
 * also put the next start bit where the stop bit belongs (a framing error): not modelled.
 * The chip's replies are untouched. */
void sim_set_adapter_drops_parity(Sim *s, bool on);
/* The highest baud the chip's autobaud measures (added; default SIM_MAX_BAUD_DEFAULT,
 * the highest rate AN3155 gives for its baud detection; 0 restores it; at most SIM_MAX_BAUD_LIMIT). A host
 * whose line report says more gets no answer to its 0x7F (the chip keeps waiting for a
 * sync), so it can fall back to a lower baud and sync there. */
#define SIM_MAX_BAUD_DEFAULT 115200
#define SIM_MAX_BAUD_LIMIT 3000000
void sim_set_max_baud(Sim *s, unsigned baud);
/* The baud measured at the sync (the host's line report then), 0 when not synced or the
 * host reported no line (added). */
unsigned sim_measured_baud(Sim *s);
/* Get ID answers pid instead of the device's (added; 0 restores it). Everything else
 * behaves as the device given to sim_new(): a chip the host does not know. */
void sim_set_id(Sim *s, uint16_t pid);
/* Modem lines from the host. Wiring decides what they do (see sim_set_wiring). */
void sim_set_modem(Sim *s, bool dtr, bool rts);
/* Feeds one datagram of the shim's protocol ("DTR=1 RTS=0", "CFG=115200-8E1", "BRK=1"). */
void sim_line_message(Sim *s, const char *msg);

/* How the host's modem lines reach the board (added). NONE: not connected (default).
 * DTR_NRST_RTS_BOOT0: the adapter's DTR# pin drives nRST directly (DTR=1 holds the chip
 * in reset, DTR=0 releases it: the boot decision is made on release), and RTS# drives
 * BOOT0 through an inverter (RTS=1 -> BOOT0 high). Entry: RTS=1, DTR=1, DTR=0. */
/* BRK_NRST (added): a break on TX holds nRST low (a transistor on the TX line), its end
 * releases it; BOOT0 is the pin (sim_set_boot0), DTR/RTS go nowhere. */
typedef enum SimWiring {
        SIM_WIRING_NONE,
        SIM_WIRING_DTR_NRST_RTS_BOOT0,
        SIM_WIRING_BRK_NRST,
        _SIM_WIRING_MAX,
} SimWiring;
void sim_set_wiring(Sim *s, SimWiring w);
/* "none", "dtr-nrst,rts-boot0" (or "dtr-nrst+rts-boot0"), "brk-nrst" -> SimWiring, or
 * -EINVAL (added). */
int sim_wiring_from_string(const char *name);
/* The host starts (on) or ends a break on TX (added; the shim's "BRK=1"/"BRK=0"). The
 * chip ignores it (one framing error; the protocol state stays) unless the wiring
 * connects it: counted in SimCounters.breaks. */
void sim_set_break(Sim *s, bool on);

/* Board: BOOT0 pin level (default high), power cycle, reset (nRST pulse). */
void sim_set_boot0(Sim *s, bool high);
void sim_power_cycle(Sim *s);
/* No power: the chip hears nothing and says nothing until sim_power_cycle(). */
void sim_power_off(Sim *s);
void sim_reset(Sim *s);

/* Memory and state for assertions and setup. Pointers stay valid for the Sim's life;
 * lock around access while the thread runs. */
void sim_lock(Sim *s);
void sim_unlock(Sim *s);
uint8_t *sim_flash(Sim *s, size_t *ret_size);
uint8_t *sim_option_bytes(Sim *s, size_t *ret_size);
uint32_t sim_flash_base(const Sim *s);
uint8_t sim_erased_value(const Sim *s);
/* Sets RDP level (0/1) in the option bytes as a programmer would, and reloads them. */
void sim_set_rdp(Sim *s, int level);
int sim_rdp_level(Sim *s);
SimState sim_state(Sim *s);
void sim_counters(Sim *s, SimCounters *ret);
/* The address Go jumped to, 0 if none. */
uint32_t sim_go_address(Sim *s);
/* Fills the UID with a value derived from seed (distinct boards, distinct UIDs). */
void sim_set_uid_seed(Sim *s, uint32_t seed);
/* Added: writes memory as a debugger would (flash, host RAM, option bytes, OTP, EEPROM;
 * no programming rules). -ERANGE when [address, address+size) is not in one region.
 * Option bytes and the EMPTY flag are latched at the next power-up (sim_start powers
 * up a Sim that is still off) or sim_power_cycle(). */
int sim_load(Sim *s, uint32_t address, const void *data, size_t size);
/* Added: the part's product ID and the RAM left to the host ([base, base+size), size 0 on L0). */
uint16_t sim_pid(const Sim *s);
uint32_t sim_host_ram(const Sim *s, uint32_t *ret_base);
/* Added: the G0/C0 EMPTY flag as last latched (false on F0/L0, unless the L0 empty
 * check is on). */
bool sim_empty_flag(Sim *s);
/* Added: whether the L0 has an empty check (sources disagree: ST's knowledge base
 * lists the L01x/L02x, CMSIS defines no flag): when on, an L0 whose first flash word
 * reads erased (0x00000000) at power-up or option-byte load starts the bootloader
 * whatever BOOT0 says. Default off; no effect on other families. Latched at the next
 * power-up or option-byte load, like the C0/G0 flag. */
void sim_set_l0_empty_check(Sim *s, bool on);
/* Added: write-protects pages [first, last] as a programmer would (the option bytes,
 * reloaded): C0/G0 WRP1AR = [first, last]; F0 and L0 every sector holding one of them.
 * first > last clears it. */
void sim_set_wrp(Sim *s, uint32_t first, uint32_t last);
/* Added: how long option-byte programming lasts in real time, also with the timing
 * model off, so that a reset arriving during it is seen (default
 * SIM_OB_PROGRAM_USEC_DEFAULT; with the timing model on, at least the modelled page
 * erase). 0 restores the default. */
#define SIM_OB_PROGRAM_USEC_DEFAULT 20000u
void sim_set_ob_program_usec(Sim *s, unsigned usec);
/* Added: true while option bytes are being programmed (a reset now locks a C0/G0). */
bool sim_ob_programming(Sim *s);

/* Fault injection. Each fault fires once unless stated. */
typedef enum SimFault {
        SIM_FAULT_STALE_BYTES,          /* bytes already waiting in the host's buffer at start */
        SIM_FAULT_NACK_WRITE,           /* NACK the arg-th Write Memory data block (1-based) */
        SIM_FAULT_NACK_ALL_WRITES,      /* NACK every Write Memory data block */
        SIM_FAULT_STRAY_BYTE,           /* a garbage byte before the arg-th ACK sent */
        SIM_FAULT_DROP_REPLY,           /* swallow the arg-th reply (host times out) */
        SIM_FAULT_RESET_AT_WRITE,       /* reset before answering the arg-th Write Memory */
        SIM_FAULT_HANGUP_AT_WRITE,      /* close the line before the arg-th Write Memory */
        SIM_FAULT_ALREADY_SYNCED,       /* start in SIM_STATE_BOOTLOADER (an earlier session synced) */
        SIM_FAULT_CORRUPT_READ,         /* flip a bit in the arg-th Read Memory reply, and in
                                         * every later reply holding that byte, erases and
                                         * power cycles included (changed: a cell that reads
                                         * wrong, a verify failure that reading again does
                                         * not cure) */
        /* added: the next option-byte programming (Write Memory to the option bytes,
         * Write/Readout Protect, Write Unprotect): */
        SIM_FAULT_DROP_OB_ACK,          /* its final ACK is lost (the chip programs and resets) */
        SIM_FAULT_GARBLE_OB_ACK,        /* its final ACK arrives as 0x7B */
        SIM_FAULT_RESET_DURING_OB,      /* an outside reset (a button, a brown-out) in the
                                         * middle of it: locks a C0/G0 */
        SIM_FAULT_HANGUP_DURING_OB,     /* the adapter goes away once it started; the board
                                         * keeps power and finishes */
        /* added: flip a bit in the arg-th Read Memory reply only (a glitch on the wire
         * that no parity check caught: a second read is right) */
        SIM_FAULT_GLITCH_READ,
        /* added: from the arg-th Read Memory reply on, every reply has a bit flipped, a
         * different one each time (a line too noisy to read; for good) */
        SIM_FAULT_GLITCH_READS,
        /* added: the last byte of the arg-th reply burst meets a glitch on the wire (a bit
         * flipped: a parity error). The host's tty, as it set its input checks
         * (sim_set_input_checks), marks it (INPCK+PARMRK: \377 \0 byte), drops it
         * (INPCK+IGNPAR), reads it as 0 (INPCK alone) or, not checking parity, reads the
         * flipped byte as data. */
        SIM_FAULT_PARITY_ERROR,
        _SIM_FAULT_MAX,
} SimFault;
void sim_inject(Sim *s, SimFault f, unsigned arg);
