/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Named diagnoses of links that fail for a reason outside the protocol, each a sentence
 * that names the cause and the fix: an adapter that drops parity (from what the wire
 * trace saw), a port another process holds (from /proc). No D-Bus, no printing. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "trace.h"

/* An adapter that sends 8N1 although 8E1 was asked (some CH340/CH341 drivers, CDC
 * bridges): the chip reads the stop bit (1) where the parity bit belongs, which is even
 * parity only for a byte with an odd number of ones. So the sync 0x7F (seven ones) is
 * answered and so are command pairs with an odd number (Get Version 0x01 0xFE, Get ID
 * 0x02 0xFD: c and c ^ 0xFF have the same parity), while those with an even number (Get
 * 0x00 0xFF, Read Memory 0x11 0xEE) never arrive or arrive garbled: a timeout or a NACK.
 * True when the trace shows exactly that: the sync answered, every even pair failed and
 * an odd one was ACKed. */
bool diagnose_parity_dropped(const TraceStats *s);
/* The sentence for it, into buf. */
void diagnose_parity_message(const char *device, char *buf, size_t size);
/* The sync was answered and no even pair was: worth diagnose_parity_probe(). */
bool diagnose_parity_suspect(const TraceStats *s);
/* Tells a parity-dropping adapter from a chip that went quiet after its sync, through
 * the link (whose trace then has the answer): 0x7F until ACK or NACK (a chip left
 * waiting for a complement NACKs it and waits for a command again), then Get Version
 * (0x01 0xFE, odd bytes; read-only, every AN3155 bootloader answers it), its reply read
 * to the end. Returns 0, or -ENODEV when the port went away. */
int diagnose_parity_probe(Link *l);

/* A USB-serial port that goes away this soon after it appeared, with brltty installed:
 * brltty's udev rules claim some USB-serial bridges (CH340/CH341, CP210x, some FTDI IDs)
 * as braille displays and its driver takes the interface from the tty driver. */
#define DIAGNOSE_VANISH_USEC (2 * USEC_PER_SEC)

/* True when brltty is installed under root ("/" on a live system): its program or its
 * udev rules. */
bool diagnose_brltty_installed(const char *root);
/* For a port name that left lifetime_usec after it appeared: the sentence naming brltty
 * and the fix when it fits (returns true), else false. */
bool diagnose_vanished_port(const char *name, uint64_t lifetime_usec, const char *root, char *buf, size_t size);

/* True when a process named ModemManager runs (one we may see in /proc). */
bool diagnose_modemmanager_running(void);
/* The warning for a port that ModemManager may probe (not tagged ID_MM_DEVICE_IGNORE). */
void diagnose_modemmanager_message(const char *name, char *buf, size_t size);

typedef struct PortHolder {
        pid_t pid;
        char comm[32];          /* /proc/PID/comm; "?" when unreadable */
} PortHolder;

#define DIAGNOSE_HOLDERS_MAX 4

/* The processes other than self that hold device: the owner of a lock on its node
 * (/proc/locks: flock(2), as stm32ispd, picocom or pyserial's exclusive ports take it),
 * else those with a descriptor open on it (/proc/PID/fd; others' processes only when we
 * may look). Returns how many were found (at most max), or a negative errno. */
int diagnose_port_holders(const char *device, pid_t self, PortHolder *ret, size_t max);
/* "/dev/ttyUSB0 is held by pid 1234 (minicom): close it ...", with ModemManager and
 * brltty named with their own fixes; n 0: a holder we may not see. */
void diagnose_port_holders_message(const char *device, const PortHolder *h, size_t n, char *buf, size_t size);
