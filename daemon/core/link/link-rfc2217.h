/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* An RFC 2217 serial server (ser2net's "telnet(rfc2217)" accepter, pyserial's
 * PortManager, serial device servers): a Telnet connection whose data is the UART's and
 * whose COM-PORT-OPTION commands set the server's line. */

#include "link.h"

/* Connects to "rfc2217://HOST:PORT" (HOST may be [v6addr]), negotiates binary mode both
 * ways and the COM-PORT-OPTION, and sets baud, 8 data bits, even parity, 1 stop bit and
 * no flow control, each confirmed by the server. Then set_baud, set_lines (DTR, RTS),
 * set_break and flush_input (PURGE-DATA) are server commands; 0xFF is escaped both ways.
 * Notifications (NOTIFY-LINESTATE/MODEMSTATE) are ignored; a server that does not answer
 * a line command is tolerated, except for the framing:
 *   -LINK_ENOPARITY    the server refused or did not confirm 8 data bits, even parity,
 *                      1 stop bit;
 *   -EPROTONOSUPPORT   the server refused the COM-PORT-OPTION (a plain Telnet server);
 *   -EINVAL            not an rfc2217:// URL, or the server set another baud rate;
 * and the connection's errors (-ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT). The peer
 * closing the connection reads as -ENODEV. */
int link_open_rfc2217(const char *url, unsigned baud, Link **ret);
