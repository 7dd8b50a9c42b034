/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host side of ST AN3155: exact bytes, checksums, ACK/NACK, bounded waits.
 * Every wait ends at a deadline: the step's timeout plus the wire time of what was
 * sent since the last read and of what is expected back. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "an3155.h"
#include "chips.h"

#define GET_MAX_CMDS 32u
/* Pages per Erase command: short enough that one command's timeout stays sane. */
#define ERASE_CHUNK 128u

struct An3155 {
        Link *link;
        An3155Timeouts timeouts;
        an3155_trace_t trace;
        void *trace_userdata;
        An3155Status status;

        /* Bytes written since the last read: their wire time is added to the next wait. */
        size_t unread_tx;
        /* A step failed: late replies may still arrive, drop them before the next command. */
        bool dirty;

        bool have_cmds;
        uint8_t version;
        uint8_t cmds[GET_MAX_CMDS];
        size_t n_cmds;
};

void an3155_default_timeouts(An3155Timeouts *ret) {
        *ret = (An3155Timeouts) {
                .reply_usec = 500 * USEC_PER_MSEC,
                .write_usec = 1 * USEC_PER_SEC,
                .page_erase_usec = 100 * USEC_PER_MSEC,
                .mass_erase_usec = 30 * USEC_PER_SEC,
                .option_usec = 2 * USEC_PER_SEC,
                .reset_usec = 100 * USEC_PER_MSEC,
        };
}

int an3155_new(Link *link, An3155 **ret) {
        An3155 *p;

        if (!link || !ret)
                return -EINVAL;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->link = link;
        an3155_default_timeouts(&p->timeouts);
        p->status = (An3155Status) { .command = 0xFF, .step = "sync", .reply = -1 };
        *ret = p;
        return 0;
}

An3155 *an3155_free(An3155 *p) {
        free(p);
        return NULL;
}

void an3155_set_timeouts(An3155 *p, const An3155Timeouts *t) {
        p->timeouts = *t;
}

void an3155_get_timeouts(const An3155 *p, An3155Timeouts *ret) {
        *ret = p->timeouts;
}

void an3155_set_trace(An3155 *p, an3155_trace_t cb, void *userdata) {
        p->trace = cb;
        p->trace_userdata = userdata;
}

const An3155Status *an3155_last_status(const An3155 *p) {
        return &p->status;
}

bool an3155_supports(const An3155 *p, uint8_t cmd) {
        if (!p->have_cmds)
                return true;
        return memchr(p->cmds, cmd, p->n_cmds);
}

static uint8_t xor8(const uint8_t *buf, size_t n) {
        uint8_t x = 0;

        for (size_t i = 0; i < n; i++)
                x ^= buf[i];
        return x;
}

static void set_status(An3155 *p, uint8_t command, const char *step) {
        p->status = (An3155Status) { .command = command, .step = step, .reply = -1 };
}

static int send_bytes(An3155 *p, const uint8_t *buf, size_t n) {
        int r;

        if (p->trace)
                p->trace(p->trace_userdata, true, buf, n);
        r = link_write(p->link, buf, n);
        if (r < 0) {
                p->dirty = true;
                return r;
        }
        p->unread_tx += n;
        return 0;
}

/* Reads exactly n bytes within timeout (plus the wire time still in flight). */
static int recv_bytes(An3155 *p, uint8_t *buf, size_t n, uint64_t timeout_usec) {
        uint64_t deadline;
        int r;

        if (n == 0)
                return 0;
        deadline = now_usec() + link_wire_usec(p->link, p->unread_tx + n) + timeout_usec;
        p->unread_tx = 0;

        r = link_read_exact(p->link, buf, n, deadline);
        if (r == -LINK_EPARITY) {
                /* a byte failed the parity check: the reply is garbage, never data; the
                 * caller retries as for any garbled reply */
                p->dirty = true;
                p->status.reply = -1;
                return -EPROTO;
        }
        if (r < 0) {
                p->dirty = true;
                return r;
        }
        if (p->trace)
                p->trace(p->trace_userdata, false, buf, n);
        p->status.reply = buf[n - 1];
        return 0;
}

static int ack_to_errno(An3155 *p, uint8_t b) {
        if (b == AN3155_ACK)
                return 0;
        p->dirty = true;
        return b == AN3155_NACK ? -EREMOTEIO : -EPROTO;
}

static int wait_ack(An3155 *p, const char *step, uint64_t timeout_usec) {
        uint8_t b;
        int r;

        p->status.step = step;
        r = recv_bytes(p, &b, 1, timeout_usec);
        if (r < 0)
                return r;
        return ack_to_errno(p, b);
}

/* Drops stale input; a backend that cannot flush is not an error. */
static int flush_input(An3155 *p) {
        int r;

        r = link_flush_input(p->link);
        if (r < 0 && r != -EOPNOTSUPP)
                return r;
        p->dirty = false;
        return 0;
}

/* Sends cmd and its complement and waits for the ACK. Drops stale input first when
 * an earlier step failed. */
static int send_command(An3155 *p, uint8_t cmd) {
        uint8_t buf[2] = { cmd, (uint8_t) (cmd ^ 0xFF) };
        int r;

        set_status(p, cmd, "command");
        if (p->dirty) {
                r = flush_input(p);
                if (r < 0)
                        return r;
        }
        p->unread_tx = 0;

        r = send_bytes(p, buf, sizeof(buf));
        if (r < 0)
                return r;
        return wait_ack(p, "command", p->timeouts.reply_usec);
}

static int send_address(An3155 *p, uint32_t address) {
        uint8_t buf[5] = {
                (uint8_t) (address >> 24), (uint8_t) (address >> 16),
                (uint8_t) (address >> 8), (uint8_t) address,
        };
        int r;

        buf[4] = xor8(buf, 4);
        p->status.step = "address";
        r = send_bytes(p, buf, sizeof(buf));
        if (r < 0)
                return r;
        return wait_ack(p, "address", p->timeouts.reply_usec);
}

/* -EOPNOTSUPP when the last Get did not offer cmd. */
static int check_supported(const An3155 *p, uint8_t cmd) {
        return an3155_supports(p, cmd) ? 0 : -EOPNOTSUPP;
}

/* A bootloader waiting for sync answers 0x7F within the adapter's latency. A chip that
 * an earlier session left synced takes a lone 0x7F as a command byte and says nothing
 * until the next 0x7F completes a bad pair (NACK): so the first attempt waits briefly
 * and the later ones a full reply timeout. */
#define SYNC_FIRST_WAIT_USEC (100 * USEC_PER_MSEC)
/* Silence that ends the rest of a failed exchange before syncing again. */
#define SYNC_QUIET_USEC (50 * USEC_PER_MSEC)
/* A line that never goes quiet (noise, a chip that chatters) ends a recovery drain. */
#define RECOVER_DRAIN_MAX_USEC (250 * USEC_PER_MSEC)

/* One 0x7F: 1 when ACK or NACK came back before wait_usec, 0 on silence. */
static int sync_once(An3155 *p, uint64_t wait_usec) {
        static const uint8_t sync = AN3155_SYNC;
        uint64_t deadline;
        int r;

        r = send_bytes(p, &sync, 1);
        if (r < 0)
                return r;
        deadline = now_usec() + link_wire_usec(p->link, p->unread_tx + 1) + wait_usec;
        p->unread_tx = 0;

        /* Stray bytes (line noise, a chip's boot chatter) before the answer are
         * skipped until the deadline. */
        for (;;) {
                uint8_t b;

                r = link_read(p->link, &b, 1, deadline);
                if (r == -ETIMEDOUT)
                        return 0;
                if (r == -LINK_EPARITY)
                        continue;       /* a garbled byte is no answer: skipped as noise */
                if (r < 0)
                        return r;
                if (r == 0) {
                        if (now_usec() >= deadline)
                                return 0;
                        continue;
                }
                if (p->trace)
                        p->trace(p->trace_userdata, false, &b, 1);
                p->status.reply = b;
                if (b == AN3155_ACK || b == AN3155_NACK)
                        return 1;
        }
}

/* Discards input until the line has been quiet for quiet_usec (at most max_usec):
 * the rest of an exchange that went wrong may still be on its way (over TCP it
 * arrives after any flush). */
static int drain_quiet(An3155 *p, uint64_t quiet_usec, uint64_t max_usec) {
        uint64_t end = now_usec() + max_usec;
        uint8_t buf[64];

        for (;;) {
                uint64_t now = now_usec();
                int r;

                if (now >= end)
                        return 0;
                r = link_read(p->link, buf, sizeof buf, MIN(now + quiet_usec, end));
                if (r == -ETIMEDOUT)
                        return 0;
                if (r < 0 && r != -LINK_EPARITY)
                        return r;
        }
}

int an3155_sync(An3155 *p, unsigned attempts) {
        int r, last = -EHOSTDOWN;

        if (!p)
                return -EINVAL;
        if (attempts == 0)
                attempts = 1;

        /* Each attempt waits at most one reply timeout (plus a Get), so the whole
         * loop stays bounded by attempts. */
        for (unsigned i = 0; i < attempts; i++) {
                set_status(p, 0xFF, "sync");
                r = flush_input(p);
                if (r < 0)
                        return r;
                p->unread_tx = 0;

                r = sync_once(p, i == 0 ? MIN(p->timeouts.reply_usec, SYNC_FIRST_WAIT_USEC) : p->timeouts.reply_usec);
                if (r < 0)
                        return r;
                if (r == 0)
                        continue;

                /* A late answer to an earlier 0x7F (or a stale byte) can pass for this
                 * one and leave the chip inside a command; Get then fails, and syncing
                 * again completes that command with a NACK and starts clean. */
                r = an3155_get(p, NULL, NULL, NULL);
                if (r >= 0 || !IN_SET(r, -EREMOTEIO, -EPROTO, -ETIMEDOUT))
                        return r;
                last = r;
                if (i + 1 < attempts) {
                        r = drain_quiet(p, SYNC_QUIET_USEC + link_wire_usec(p->link, 16), p->timeouts.reply_usec);
                        if (r < 0)
                                return r;
                }
        }
        return last;
}

int an3155_resync(An3155 *p, uint64_t delay_usec, unsigned attempts) {
        if (!p)
                return -EINVAL;
        sleep_usec(delay_usec);
        return an3155_sync(p, attempts);
}

/* After bytes that a chip answers with NACKs (filler, a refused erase list): waits
 * until those n_sent bytes are through (a NACK about every second byte) and the line is
 * quiet, then syncs. */
static int drain_and_sync(An3155 *p, size_t n_sent) {
        uint64_t quiet = SYNC_QUIET_USEC + link_wire_usec(p->link, 16 + n_sent + n_sent / 2);
        int r;

        r = drain_quiet(p, quiet, quiet + RECOVER_DRAIN_MAX_USEC);
        if (r < 0)
                return r;
        p->unread_tx = 0;

        return an3155_sync(p, 2);
}

/* Recovery from a reply lost in the middle of a command, or from a chip an earlier host
 * left inside one (flasher_probe() calls this when its sync got no answer at all).
 *
 * The host only sends a command's next part after the ACK of the previous one, and it
 * sends each part whole, so a lost or garbled reply leaves the chip waiting for a
 * command (the final ACK was lost), for its 5 address bytes (the command ACK), for the
 * count (Write: N; Read: N and ~N; the address ACK), or back in the bootloader's sync
 * wait (it reset). AN3155 has no timeout inside a command: only bytes get it out.
 *
 * First one 0x7F. A chip that reset measures its baud on it and answers ACK; one that
 * waits for a command's complement answers NACK (c ^ 0x7F is 0xFF only for c = 0x80,
 * no command). Any answer is checked by a Get. The other states say nothing: 0x7F is
 * an address byte, or the count N = 0x7F, or a command byte. A reset chip never sees
 * anything but 0x7F before it answers, so its baud is measured right.
 *
 * Then filler, in one write: e = AN3155_RECOVER_FILLER_LEAD (0x01), then b =
 * AN3155_RECOVER_FILLER (0x02), enough for the longest state (command pair 2, address
 * 5, count 1, 256 data, checksum 1). Before it the chip took m >= 2 bytes 0x7F (ours,
 * the one sent right before the filler, plus those of a sync that got no answer: m = 5
 * after a probe), and no state completes a frame that does anything, whatever m:
 * - a command: (7F, 7F), (7F, e), (e, b), (b, b), (b, 7F) are no complement pairs: NACK;
 * - the address: its XOR check fails: 7F e b b | b (7E), 7F 7F e b | b (03),
 *   7F 7F 7F e | b (7E), 7F 7F 7F 7F | e (00), 7F 7F 7F 7F | 7F (00): NACK; after a
 *   0x7F and a Get's 00 FF, 7F 00 FF e | b (81): NACK;
 * - a Read count: (7F, 7F) or (7F, e): NACK;
 * - a Write (or Write Protect) count taken as N = 7F: 128 data bytes, 7F x (m - 1), e,
 *   then b, and the checksum b; their XOR with N is 7F ^ e ^ b = 7C for an odd m and
 *   e for an even m, never b: NACK. (A filler of b alone would write for an even m:
 *   why the lead byte.) After a 0x7F that completed an address (ACK) and Get's 00 FF
 *   (N = 0, one data byte FF), the checksum, the second 0x7F, is not FF: NACK;
 * - the page list of an Extended Erase (44 BB): it takes 7F 7F (or 7F e) as its count,
 *   0x7F00 or more pages, and waits for 64 KiB: no erase, and the chip stays there (see
 *   flasher_probe(); this host's own erase does not leave a chip there after a lost
 *   ACK: see send_erase_command()).
 * What remains are pairs of b (NACK each), perhaps one b waiting for its complement;
 * the sync's 0x7F completes that one (NACK), or is a command byte that the next 0x7F
 * completes (NACK): an3155_sync() takes a NACK as synced.
 *
 * Not covered: a chip that lost host bytes inside a part (data, an address, a page
 * list: the earlier host stopped mid-write) holds an arbitrary XOR, which filler (or the
 * 0x7F) may complete into a valid frame, for one XOR value in 256. Such a frame writes
 * the block that host was writing: inside a flash the caller reads the block back
 * before writing it again (flasher.c does, and its verify reads everything); after a
 * probe, a flash erases the pages it writes first (erase auto or mass). */
static int recover(An3155 *p) {
        static const uint8_t sync_byte = AN3155_SYNC;
        uint8_t filler[AN3155_RECOVER_FILLER_LEN];
        uint64_t quiet = SYNC_QUIET_USEC + link_wire_usec(p->link, 16);
        int r;

        /* the rest of the broken exchange (the real ACK after a stray byte, a late reply) */
        set_status(p, 0xFF, "recovery");
        r = drain_quiet(p, quiet, RECOVER_DRAIN_MAX_USEC);
        if (r < 0)
                return r;
        p->dirty = false;
        p->unread_tx = 0;

        r = sync_once(p, MIN(p->timeouts.reply_usec, SYNC_FIRST_WAIT_USEC));
        if (r < 0)
                return r;
        if (r > 0) {
                r = an3155_get(p, NULL, NULL, NULL);
                if (r >= 0 || !IN_SET(r, -EREMOTEIO, -EPROTO, -ETIMEDOUT))
                        return r;
        }

        /* A chip that reset after that 0x7F (still booting when it came) now waits for
         * its sync, and the first byte it hears sets its baud: anything but a 0x7F would
         * leave it deaf until the next reset (a G031, ST's forum). So one more 0x7F goes
         * right before the filler: such a chip syncs on it and takes the filler as bad
         * command pairs, and for a chip inside a command it is one more unanswered 0x7F,
         * which the filler's analysis above allows for any count. */
        set_status(p, 0xFF, "recovery");
        r = send_bytes(p, &sync_byte, 1);
        if (r < 0)
                return r;
        memset(filler, AN3155_RECOVER_FILLER, sizeof filler);
        filler[0] = AN3155_RECOVER_FILLER_LEAD;
        r = send_bytes(p, filler, sizeof filler);
        if (r < 0)
                return r;
        return drain_and_sync(p, 1 + sizeof filler);
}

/* Caps every reply wait for a recovery: a chip that answers at all answers within an
 * adapter latency, so a recovery stays bounded whatever the caller's timeouts. Returns
 * the caller's timeouts, to put back afterwards. */
static An3155Timeouts cap_for_recovery(An3155 *p) {
        An3155Timeouts saved = p->timeouts;

        p->timeouts.reply_usec = MIN(saved.reply_usec, AN3155_RECOVER_REPLY_USEC);
        return saved;
}

int an3155_recover(An3155 *p) {
        An3155Timeouts saved;
        int r;

        if (!p)
                return -EINVAL;
        saved = cap_for_recovery(p);
        r = recover(p);
        p->timeouts = saved;
        return r;
}

int an3155_get(An3155 *p, uint8_t *ret_version, uint8_t *ret_cmds, size_t *ret_n_cmds) {
        uint8_t n, buf[GET_MAX_CMDS + 1];
        int r;

        if (!p)
                return -EINVAL;

        r = send_command(p, AN3155_CMD_GET);
        if (r < 0)
                return r;

        p->status.step = "data";
        r = recv_bytes(p, &n, 1, p->timeouts.reply_usec);
        if (r < 0)
                return r;
        if (n > GET_MAX_CMDS) {
                p->dirty = true;
                return -EPROTO;
        }
        r = recv_bytes(p, buf, (size_t) n + 1, p->timeouts.reply_usec);
        if (r < 0)
                return r;
        r = wait_ack(p, "data", p->timeouts.reply_usec);
        if (r < 0)
                return r;

        p->version = buf[0];
        memcpy(p->cmds, buf + 1, n);
        p->n_cmds = n;
        p->have_cmds = true;

        if (ret_version)
                *ret_version = p->version;
        if (ret_cmds)
                memcpy(ret_cmds, p->cmds, n);
        if (ret_n_cmds)
                *ret_n_cmds = n;
        return 0;
}

int an3155_get_version(An3155 *p, uint8_t *ret_version) {
        uint8_t buf[3];
        int r;

        if (!p)
                return -EINVAL;
        r = check_supported(p, AN3155_CMD_GET_VERSION);
        if (r < 0)
                return r;

        r = send_command(p, AN3155_CMD_GET_VERSION);
        if (r < 0)
                return r;
        p->status.step = "data";
        /* version, then two legacy option bytes that are always 0 */
        r = recv_bytes(p, buf, sizeof(buf), p->timeouts.reply_usec);
        if (r < 0)
                return r;
        r = wait_ack(p, "data", p->timeouts.reply_usec);
        if (r < 0)
                return r;

        if (ret_version)
                *ret_version = buf[0];
        return 0;
}

int an3155_get_id(An3155 *p, uint16_t *ret_pid) {
        uint8_t n, buf[GET_MAX_CMDS + 1];
        int r;

        if (!p)
                return -EINVAL;
        r = check_supported(p, AN3155_CMD_GET_ID);
        if (r < 0)
                return r;

        r = send_command(p, AN3155_CMD_GET_ID);
        if (r < 0)
                return r;

        p->status.step = "data";
        r = recv_bytes(p, &n, 1, p->timeouts.reply_usec);
        if (r < 0)
                return r;
        /* N is 1 (two PID bytes); longer IDs exist on other parts: the PID is the last two. */
        if (n < 1 || n > GET_MAX_CMDS) {
                p->dirty = true;
                return -EPROTO;
        }
        r = recv_bytes(p, buf, (size_t) n + 1, p->timeouts.reply_usec);
        if (r < 0)
                return r;
        r = wait_ack(p, "data", p->timeouts.reply_usec);
        if (r < 0)
                return r;

        if (ret_pid)
                *ret_pid = (uint16_t) (buf[n - 1] << 8 | buf[n]);
        return 0;
}

int an3155_read_memory(An3155 *p, uint32_t address, void *buf, size_t n) {
        uint8_t len[2];
        int r;

        if (!p || !buf || n < 1 || n > AN3155_MAX_BLOCK)
                return -EINVAL;
        r = check_supported(p, AN3155_CMD_READ_MEMORY);
        if (r < 0)
                return r;

        r = send_command(p, AN3155_CMD_READ_MEMORY);
        if (r < 0)
                return r;
        r = send_address(p, address);
        if (r < 0)
                return r;

        len[0] = (uint8_t) (n - 1);
        len[1] = (uint8_t) (len[0] ^ 0xFF);
        p->status.step = "length";
        r = send_bytes(p, len, sizeof(len));
        if (r < 0)
                return r;
        r = wait_ack(p, "length", p->timeouts.reply_usec);
        if (r < 0)
                return r;

        p->status.step = "data";
        return recv_bytes(p, buf, n, p->timeouts.reply_usec);
}

/* Sends N-1, the n bytes and one XOR over both, in one write (Write Memory data,
 * Write Protect sector list). n is 1..256. */
static int send_counted(An3155 *p, const void *data, size_t n) {
        uint8_t block[1 + 256 + 1];

        block[0] = (uint8_t) (n - 1);
        memcpy(block + 1, data, n);
        block[n + 1] = xor8(block, n + 1);
        p->status.step = "data";
        return send_bytes(p, block, n + 2);
}

int an3155_write_memory(An3155 *p, uint32_t address, const void *buf, size_t n) {
        int r;

        if (!p || !buf || n < 1 || n > AN3155_MAX_BLOCK || n % 4 != 0)
                return -EINVAL;
        /* Every Write Memory passes here: nothing but the proven C0/G0 OPTR form ever
         * reaches an option-byte area (chips.h). */
        r = chip_check_option_write(address, buf, n);
        if (r < 0)
                return r;
        r = check_supported(p, AN3155_CMD_WRITE_MEMORY);
        if (r < 0)
                return r;

        r = send_command(p, AN3155_CMD_WRITE_MEMORY);
        if (r < 0)
                return r;
        r = send_address(p, address);
        if (r < 0)
                return r;

        r = send_counted(p, buf, n);
        if (r < 0)
                return r;
        return wait_ack(p, "data", p->timeouts.write_usec);
}

int an3155_go(An3155 *p, uint32_t address) {
        int r;

        if (!p)
                return -EINVAL;
        r = check_supported(p, AN3155_CMD_GO);
        if (r < 0)
                return r;

        r = send_command(p, AN3155_CMD_GO);
        if (r < 0)
                return r;
        return send_address(p, address);
}

/* Legacy Erase 0x43 only when the device offers it and not Extended Erase. */
static bool use_legacy_erase(const An3155 *p) {
        return p->have_cmds &&
                memchr(p->cmds, AN3155_CMD_ERASE, p->n_cmds) &&
                !memchr(p->cmds, AN3155_CMD_EXTENDED_ERASE, p->n_cmds);
}

static int erase_command(const An3155 *p, uint8_t *ret) {
        if (use_legacy_erase(p))
                *ret = AN3155_CMD_ERASE;
        else if (an3155_supports(p, AN3155_CMD_EXTENDED_ERASE))
                *ret = AN3155_CMD_EXTENDED_ERASE;
        else
                return -EOPNOTSUPP;
        return 0;
}

/* A lost or garbled reply to an erase command pair "c ~c" (c = 0x44, or 0x43) leaves the
 * chip in one of two states, and a chip left waiting for the page count would take the
 * next job's 0x7F 0x7F as 0x7F7F pages and wait for 64 KiB more (the probe does not get
 * it out). So the host sends a page list the chip must refuse: count N = 0 (one page),
 * page 0, and the checksum K = ERASE_REFUSED_CHECKSUM instead of their XOR 0x00
 * (0x44: 00 00 00 00 K; 0x43: 00 00 K). What the chip does with it:
 * - it waits for the count (its ACK was lost or garbled): N = 0 is no special erase
 *   (0x44: N >= 0xFFF0; 0x43: N = 0xFF), so one page number follows, then K, which is
 *   not the list's XOR: NACK, nothing erased, and it waits for a command. The sync's
 *   first 0x7F is a command byte, the second completes a bad pair: NACK.
 * - it waits for a command (it never got the pair, or NACKed it and the NACK was lost):
 *   the bytes are command pairs, (00, 00) and (00, 00): no complement pairs, NACK each;
 *   K is left as a command byte that the sync's 0x7F completes (K ^ 0x7F is not 0xFF):
 *   NACK.
 * - it holds one byte x of the pair (the other was lost on the line): (x, 00) is a
 *   complement pair only for x = 0xFF, no command: NACK; then (00, 00), and (00, K)
 *   (K is not 0xFF: not Get): NACK.
 * No state takes a frame that erases or writes. Then the line is drained, a sync (and
 * Get) confirms the chip waits for a command, and the command goes out once more. Not
 * covered: a chip that reset in between (nothing here resets it) measures its baud on
 * 0x00 and does not answer the sync: the error stays what it was. */
#define ERASE_REFUSED_CHECKSUM 0x5A

static int refuse_erase_list(An3155 *p, uint8_t cmd) {
        static const uint8_t extended[] = { 0x00, 0x00, 0x00, 0x00, ERASE_REFUSED_CHECKSUM };
        static const uint8_t legacy[] = { 0x00, 0x00, ERASE_REFUSED_CHECKSUM };
        const uint8_t *list = cmd == AN3155_CMD_ERASE ? legacy : extended;
        size_t n = cmd == AN3155_CMD_ERASE ? sizeof legacy : sizeof extended;
        An3155Timeouts saved;
        int r;

        set_status(p, cmd, "recovery");
        p->unread_tx = 0;
        saved = cap_for_recovery(p);
        r = send_bytes(p, list, n);
        if (r >= 0)
                r = drain_and_sync(p, n);
        p->timeouts = saved;
        return r;
}

/* Sends an erase command pair and waits for its ACK; after a lost or garbled reply, gets
 * the chip out of the erase (see above) and sends the pair once more. When that fails
 * too, the chip is taken out again and the error is the retry's; when the recovery
 * fails, the error is the first one (a link error excepted). */
static int send_erase_command(An3155 *p, uint8_t cmd) {
        for (unsigned attempt = 0;; attempt++) {
                An3155Status failed;
                int r, k;

                r = send_command(p, cmd);
                if (!IN_SET(r, -ETIMEDOUT, -EPROTO))
                        return r;

                failed = p->status;
                k = refuse_erase_list(p, cmd);
                if (k < 0 && !IN_SET(k, -EHOSTDOWN, -ETIMEDOUT, -EPROTO, -EREMOTEIO))
                        return k;
                if (k < 0 || attempt > 0) {
                        p->status = failed;
                        return r;
                }
        }
}

int an3155_erase_mass(An3155 *p) {
        static const uint8_t legacy[] = { 0xFF, 0x00 };
        static const uint8_t extended[] = { 0xFF, 0xFF, 0x00 };
        uint8_t cmd;
        int r;

        if (!p)
                return -EINVAL;
        r = erase_command(p, &cmd);
        if (r < 0)
                return r;

        r = send_erase_command(p, cmd);
        if (r < 0)
                return r;
        p->status.step = "data";
        if (cmd == AN3155_CMD_ERASE)
                r = send_bytes(p, legacy, sizeof(legacy));
        else
                r = send_bytes(p, extended, sizeof(extended));
        if (r < 0)
                return r;
        return wait_ack(p, "data", p->timeouts.mass_erase_usec);
}

static int erase_chunk(An3155 *p, uint8_t cmd, const uint16_t *pages, size_t n) {
        uint8_t buf[2 + 2 * ERASE_CHUNK + 1];
        size_t k = 0;
        int r;

        r = send_erase_command(p, cmd);
        if (r < 0)
                return r;

        if (cmd == AN3155_CMD_ERASE) {
                buf[k++] = (uint8_t) (n - 1);
                for (size_t i = 0; i < n; i++)
                        buf[k++] = (uint8_t) pages[i];
        } else {
                buf[k++] = (uint8_t) ((n - 1) >> 8);
                buf[k++] = (uint8_t) (n - 1);
                for (size_t i = 0; i < n; i++) {
                        buf[k++] = (uint8_t) (pages[i] >> 8);
                        buf[k++] = (uint8_t) pages[i];
                }
        }
        buf[k] = xor8(buf, k);
        k++;

        p->status.step = "data";
        r = send_bytes(p, buf, k);
        if (r < 0)
                return r;
        return wait_ack(p, "data", p->timeouts.reply_usec + n * p->timeouts.page_erase_usec);
}

int an3155_erase_pages(An3155 *p, const uint16_t *pages, size_t n) {
        uint8_t cmd;
        int r;

        if (!p || (!pages && n > 0))
                return -EINVAL;
        if (n == 0)
                return 0;
        r = erase_command(p, &cmd);
        if (r < 0)
                return r;
        if (cmd == AN3155_CMD_ERASE)
                for (size_t i = 0; i < n; i++)
                        if (pages[i] > 0xFF)
                                return -EINVAL;

        for (size_t done = 0; done < n; ) {
                size_t chunk = MIN(n - done, (size_t) ERASE_CHUNK);

                r = erase_chunk(p, cmd, pages + done, chunk);
                if (r < 0)
                        return r;
                done += chunk;
        }
        return 0;
}

int an3155_write_protect(An3155 *p, const uint8_t *sectors, size_t n) {
        int r;

        if (!p || !sectors || n < 1 || n > 256)
                return -EINVAL;
        r = check_supported(p, AN3155_CMD_WRITE_PROTECT);
        if (r < 0)
                return r;

        r = send_command(p, AN3155_CMD_WRITE_PROTECT);
        if (r < 0)
                return r;

        r = send_counted(p, sectors, n);
        if (r < 0)
                return r;
        /* The option bytes are programmed before this ACK; a reset follows. */
        return wait_ack(p, "data", p->timeouts.option_usec);
}

/* The commands answered by ACK, the work, then a second ACK (and a reset). */
static int two_ack_command(An3155 *p, uint8_t cmd, uint64_t second_usec) {
        int r;

        if (!p)
                return -EINVAL;
        r = check_supported(p, cmd);
        if (r < 0)
                return r;

        r = send_command(p, cmd);
        if (r < 0)
                return r;
        return wait_ack(p, "second ACK", second_usec);
}

int an3155_write_unprotect(An3155 *p) {
        return two_ack_command(p, AN3155_CMD_WRITE_UNPROTECT, p ? p->timeouts.option_usec : 0);
}

int an3155_readout_protect(An3155 *p) {
        return two_ack_command(p, AN3155_CMD_READOUT_PROTECT, p ? p->timeouts.option_usec : 0);
}

int an3155_readout_unprotect(An3155 *p) {
        /* The second ACK comes after a mass erase. */
        return two_ack_command(p, AN3155_CMD_READOUT_UNPROTECT, p ? p->timeouts.mass_erase_usec : 0);
}

const char *an3155_command_name(uint8_t command) {
        /* AN3155 §3 (shared/facts/bootloader.md, the command table). */
        static const struct {
                uint8_t code;
                const char *name;
        } names[] = {
                { AN3155_CMD_GET,               "Get" },
                { AN3155_CMD_GET_VERSION,       "Get Version" },
                { AN3155_CMD_GET_ID,            "Get ID" },
                { AN3155_CMD_READ_MEMORY,       "Read Memory" },
                { AN3155_CMD_GO,                "Go" },
                { AN3155_CMD_WRITE_MEMORY,      "Write Memory" },
                { AN3155_CMD_ERASE,             "Erase" },
                { AN3155_CMD_EXTENDED_ERASE,    "Extended Erase" },
                { 0x50,                         "Special" },
                { 0x51,                         "Extended Special" },
                { AN3155_CMD_WRITE_PROTECT,     "Write Protect" },
                { AN3155_CMD_WRITE_UNPROTECT,   "Write Unprotect" },
                { AN3155_CMD_READOUT_PROTECT,   "Readout Protect" },
                { AN3155_CMD_READOUT_UNPROTECT, "Readout Unprotect" },
                { 0xA1,                         "Get Checksum" },
        };

        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
                if (names[i].code == command)
                        return names[i].name;
        return NULL;
}
