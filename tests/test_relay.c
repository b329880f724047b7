/*
 * test_relay.c: relay_pump() over non-blocking AF_UNIX socketpairs:
 * bytes through unchanged, idle, EOF after the flush, a full peer
 * (backpressure) that keeps the pending bytes, the per-wake-up budget,
 * errors, and the buffer free list.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "mqlb/common.h"
#include "mqlb/relay.h"

/*
 * client[0] --- client[1] =relay=> server[0] --- server[1]
 * The test writes on client[0] and reads on server[1]; the direction
 * under test reads client[1] and writes server[0].
 */
struct relay_fx {
    int                 client[2];
    int                 server[2];
    struct relay_dir    d;
    struct relay_pool   rp;
};

static struct relay_fx rf;

static void
rf_setup(void)
{
    memset(&rf, 0, sizeof(rf));
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
                            rf.client), 0);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
                            rf.server), 0);
    rf.d.src = rf.client[1];
    rf.d.dst = rf.server[0];
    relay_pool_init(&rf.rp, 4);
}

static void
rf_teardown(void)
{
    relay_dir_close(&rf.d, &rf.rp);
    relay_pool_deinit(&rf.rp);
    close(rf.client[0]);
    close(rf.client[1]);
    close(rf.server[0]);
    close(rf.server[1]);
}

TestSuite(relay, .init = rf_setup, .fini = rf_teardown);

/* Byte <k> of the test stream: not periodic on any buffer boundary. */
static uint8_t
rf_byte(uint64_t k)
{
    return (uint8_t)(k % 251);
}

/* Write stream bytes from *sent up to <total> while fd takes them. */
static void
rf_write_pattern(int fd, uint64_t *sent, uint64_t total)
{
    uint8_t buf[8192];
    size_t i, n;
    ssize_t w;

    while (*sent < total) {
        n = (size_t)MQ_MIN(total - *sent, sizeof(buf));
        for (i = 0; i < n; i++) {
            buf[i] = rf_byte(*sent + i);
        }
        w = write(fd, buf, n);
        if (w < 0) {
            cr_assert(errno == EAGAIN || errno == EWOULDBLOCK,
                      "write: %s", strerror(errno));
            return;
        }
        *sent += (uint64_t)w;
    }
}

/* Read whatever is there, checking it continues the stream at *got. */
static void
rf_read_check(int fd, uint64_t *got)
{
    uint8_t buf[8192];
    ssize_t n, i;

    for (;;) {
        n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            cr_assert(errno == EAGAIN || errno == EWOULDBLOCK,
                      "read: %s", strerror(errno));
            return;
        }
        if (n == 0) {
            return;
        }
        for (i = 0; i < n; i++) {
            cr_assert_eq(buf[i], rf_byte(*got + (uint64_t)i),
                         "byte %llu out of order",
                         (unsigned long long)(*got + (uint64_t)i));
        }
        *got += (uint64_t)n;
    }
}

/* Shrink the server pair's buffers so that it fills up quickly. */
static void
rf_small_dst(void)
{
    int small = 4096;

    cr_assert_eq(setsockopt(rf.server[0], SOL_SOCKET, SO_SNDBUF, &small,
                            sizeof(small)), 0);
    cr_assert_eq(setsockopt(rf.server[1], SOL_SOCKET, SO_RCVBUF, &small,
                            sizeof(small)), 0);
}

Test(relay, bytes_go_through_unchanged)
{
    static const char msg[] = "PING\r\n\0\x01\xff binary and text";
    char out[64];
    ssize_t n;

    cr_assert_eq(write(rf.client[0], msg, sizeof(msg)), (ssize_t)sizeof(msg));
    cr_expect_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_IDLE);
    cr_expect_eq(rf.d.nbytes, sizeof(msg));
    n = read(rf.server[1], out, sizeof(out));
    cr_assert_eq(n, (ssize_t)sizeof(msg));
    cr_expect_eq(memcmp(out, msg, sizeof(msg)), 0);
}

Test(relay, large_stream_goes_through_in_order)
{
    const uint64_t total = 1 << 20;
    uint64_t sent = 0, got = 0;
    enum relay_status st;
    int rounds = 0;

    while (got < total) {
        cr_assert_lt(++rounds, 100000, "no progress");
        rf_write_pattern(rf.client[0], &sent, total);
        st = relay_pump(&rf.d, &rf.rp, RELAY_BUDGET);
        cr_assert(st == RELAY_IDLE || st == RELAY_BLOCKED ||
                  st == RELAY_YIELD, "status %d", st);
        rf_read_check(rf.server[1], &got);
    }
    cr_expect_eq(got, total);
    cr_expect_eq(rf.d.nbytes, total);
    cr_expect(rf.d.spliced, "past RELAY_SPLICE_MIN a direction splices");
    cr_expect_null(rf.d.buf, "a spliced direction holds no buffer");
}

/* Issue 13: with no pipes left in the descriptor budget, a bulk
 * direction copies instead of taking two descriptors. */
Test(relay, no_pipe_budget_keeps_copying)
{
    const uint64_t total = 1 << 20;
    uint64_t sent = 0, got = 0;
    int rounds = 0;

    relay_set_pipe_budget(0);
    while (got < total) {
        cr_assert_lt(++rounds, 100000, "no progress");
        rf_write_pattern(rf.client[0], &sent, total);
        relay_pump(&rf.d, &rf.rp, RELAY_BUDGET);
        rf_read_check(rf.server[1], &got);
    }
    cr_expect_eq(got, total);
    cr_expect_not(rf.d.spliced, "no pipe in the budget, yet spliced");
    relay_set_pipe_budget(LONG_MAX);
}

/* A copy kept for a replay grows with what was sent, up to tapmax. */
Test(relay, tap_is_sized_to_what_was_sent_and_bounded)
{
    char out[4096];
    ssize_t n;

    rf.d.tapmax = 2048;
    cr_assert_eq(write(rf.client[0], "CONNECT", 7), 7);
    relay_pump(&rf.d, &rf.rp, RELAY_BUDGET);
    cr_expect_eq(rf.d.taplen, 7);
    cr_expect_leq(rf.d.tapcap, 64, "a 7-byte request costs %u", rf.d.tapcap);
    cr_expect_eq(memcmp(rf.d.tap, "CONNECT", 7), 0);
    memset(out, 'x', sizeof(out));
    cr_assert_eq(write(rf.client[0], out, sizeof(out)), (ssize_t)sizeof(out));
    relay_pump(&rf.d, &rf.rp, RELAY_BUDGET);
    cr_expect(rf.d.tap_full, "past tapmax the copy is marked incomplete");
    cr_expect_leq(rf.d.tapcap, 2048);
    n = read(rf.server[1], out, sizeof(out));
    cr_expect_gt(n, 0);
    relay_tap_free(&rf.d);
    cr_expect_null(rf.d.tap);
}

Test(relay, spliced_direction_keeps_order_backpressure_and_eof)
{
    const uint64_t total = 3 << 20;
    uint64_t sent = 0, got = 0;
    enum relay_status st;
    int rounds = 0, blocked = 0;

    rf_small_dst();
    while (sent < total) {
        cr_assert_lt(++rounds, 200000, "no progress");
        rf_write_pattern(rf.client[0], &sent, total);
        st = relay_pump(&rf.d, &rf.rp, RELAY_BUDGET);
        cr_assert(st == RELAY_IDLE || st == RELAY_BLOCKED ||
                  st == RELAY_YIELD, "status %d", st);
        blocked += st == RELAY_BLOCKED;
        if (rounds % 3 == 0) {
            rf_read_check(rf.server[1], &got);  /* a slow reader */
        }
    }
    cr_expect(rf.d.spliced);
    cr_expect_gt(blocked, 0, "a full peer pauses the spliced direction");
    cr_assert_eq(shutdown(rf.client[0], SHUT_WR), 0);
    for (st = RELAY_IDLE; st != RELAY_EOF; ) {
        cr_assert_lt(++rounds, 400000, "no EOF");
        st = relay_pump(&rf.d, &rf.rp, RELAY_BUDGET);
        cr_assert_neq(st, RELAY_ERR_SRC);
        cr_assert_neq(st, RELAY_ERR_DST);
        rf_read_check(rf.server[1], &got);
    }
    rf_read_check(rf.server[1], &got);
    cr_expect_eq(got, total, "EOF only after every byte");
    cr_expect_eq(rf.d.nbytes, total);
}

Test(relay, idle_when_src_has_nothing_and_no_buffer_is_held)
{
    cr_expect_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_IDLE);
    cr_expect_null(rf.d.buf);
    cr_expect_eq(rf.d.nbytes, 0);
    cr_expect_eq(rf.rp.nused, 0);

    cr_assert_eq(write(rf.client[0], "abc", 3), 3);
    cr_expect_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_IDLE);
    cr_expect_null(rf.d.buf, "an idle direction holds no buffer");
    cr_expect_eq(rf.rp.nused, 0);
    cr_expect_eq(rf.rp.nfree, 1, "the buffer went back to the free list");
    cr_expect_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_IDLE);
    cr_expect_eq(rf.rp.nfree, 1, "and was taken from it again");
}

Test(relay, eof_after_every_byte_is_delivered)
{
    char out[16];

    cr_assert_eq(write(rf.client[0], "bye", 3), 3);
    cr_assert_eq(shutdown(rf.client[0], SHUT_WR), 0);
    /* A short read ends a pump (the loop will wake us again), so the FIN
     * behind "bye" is seen on the next call, as the event loop makes it. */
    cr_expect_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_IDLE);
    cr_expect_eq(rf.d.nbytes, 3);
    cr_expect_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_EOF);
    cr_expect(rf.d.eof);
    cr_expect_null(rf.d.buf);
    cr_expect_eq(rf.rp.nused, 0);
    cr_expect_eq(rf.d.nbytes, 3);
    cr_assert_eq(read(rf.server[1], out, sizeof(out)), 3);
    cr_expect_eq(memcmp(out, "bye", 3), 0);
    /* Once at EOF it stays there. */
    cr_expect_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_EOF);
}

Test(relay, eof_waits_for_the_pending_bytes)
{
    const uint64_t total = 256 * 1024;
    uint64_t sent = 0, got = 0;
    enum relay_status st;
    int rounds = 0;

    rf_small_dst();
    /* Everything the client will ever send, then its FIN. */
    while (sent < total) {
        rf_write_pattern(rf.client[0], &sent, total);
        st = relay_pump(&rf.d, &rf.rp, RELAY_BUDGET);
        cr_assert_neq(st, RELAY_EOF);
        if (sent < total) {
            rf_read_check(rf.server[1], &got);
        }
    }
    cr_assert_eq(shutdown(rf.client[0], SHUT_WR), 0);
    st = relay_pump(&rf.d, &rf.rp, RELAY_BUDGET);
    cr_expect_eq(st, RELAY_BLOCKED, "the reader is full: no EOF yet");
    for (;;) {
        cr_assert_lt(++rounds, 100000, "no progress");
        rf_read_check(rf.server[1], &got);
        st = relay_pump(&rf.d, &rf.rp, RELAY_BUDGET);
        if (st == RELAY_EOF) {
            break;
        }
        cr_assert(st == RELAY_BLOCKED || st == RELAY_YIELD, "status %d", st);
    }
    rf_read_check(rf.server[1], &got);
    cr_expect_eq(got, total, "EOF came with every byte delivered");
    cr_expect_eq(rf.d.nbytes, total);
    cr_expect_null(rf.d.buf);
}

Test(relay, full_dst_blocks_and_keeps_the_pending_bytes)
{
    const uint64_t total = 512 * 1024;
    uint64_t sent = 0, got = 0, delivered;
    enum relay_status st;
    char *held;
    uint32_t pending;
    int rounds = 0;

    rf_small_dst();
    rf_write_pattern(rf.client[0], &sent, total);
    cr_assert_gt(sent, RELAY_BUF_SIZE);
    st = relay_pump(&rf.d, &rf.rp, RELAY_BUDGET);
    cr_assert_eq(st, RELAY_BLOCKED);
    cr_assert_not_null(rf.d.buf, "pending bytes keep their buffer");
    cr_assert_lt(rf.d.off, rf.d.len);
    cr_expect_eq(rf.rp.nused, 1);

    /* Pumping again while nobody reads changes nothing. */
    held = rf.d.buf;
    pending = rf.d.len - rf.d.off;
    delivered = rf.d.nbytes;
    cr_expect_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_BLOCKED);
    cr_expect_eq(rf.d.buf, held);
    cr_expect_eq(rf.d.len - rf.d.off, pending);
    cr_expect_eq(rf.d.nbytes, delivered);

    /* The reader drains; the next pumps deliver in order. */
    while (got < total) {
        cr_assert_lt(++rounds, 100000, "no progress");
        rf_read_check(rf.server[1], &got);
        st = relay_pump(&rf.d, &rf.rp, RELAY_BUDGET);
        cr_assert(st == RELAY_IDLE || st == RELAY_BLOCKED ||
                  st == RELAY_YIELD, "status %d", st);
        rf_write_pattern(rf.client[0], &sent, total);
        if (st == RELAY_IDLE) {
            cr_expect_null(rf.d.buf);
        }
    }
    cr_expect_eq(got, total);
    cr_expect_eq(rf.d.nbytes, total);
    cr_expect_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_IDLE);
    cr_expect_null(rf.d.buf);
    cr_expect_eq(rf.rp.nused, 0);
    cr_expect_eq(rf.rp.free, (void *)held, "the same buffer went back");
}

Test(relay, budget_used_up_yields)
{
    uint64_t sent = 0, got = 0;
    const uint64_t total = 5 * RELAY_BUF_SIZE;
    enum relay_status st;

    rf_write_pattern(rf.client[0], &sent, total);
    cr_assert_eq(sent, total);
    st = relay_pump(&rf.d, &rf.rp, 2 * RELAY_BUF_SIZE);
    cr_expect_eq(st, RELAY_YIELD);
    cr_expect_geq(rf.d.nbytes, 2 * RELAY_BUF_SIZE);
    cr_expect_lt(rf.d.nbytes, total, "stopped before reading everything");
    cr_expect_null(rf.d.buf, "yield with nothing pending holds no buffer");
    cr_expect_eq(rf.rp.nused, 0);

    cr_expect_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_IDLE);
    rf_read_check(rf.server[1], &got);
    cr_expect_eq(got, total);
    cr_expect_eq(rf.d.nbytes, total);
}

Test(relay, closed_reader_is_a_dst_error)
{
    close(rf.server[1]);
    rf.server[1] = -1;
    cr_assert_eq(write(rf.client[0], "x", 1), 1);
    /* MSG_NOSIGNAL: EPIPE, not SIGPIPE. */
    cr_expect_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_ERR_DST);
    cr_expect_eq(errno, EPIPE);
}

Test(relay, bad_src_is_a_src_error)
{
    rf.d.src = -1;
    cr_expect_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_ERR_SRC);
    cr_expect_eq(errno, EBADF);
    cr_expect_null(rf.d.buf);
    cr_expect_eq(rf.rp.nused, 0);
}

Test(relay, other_direction_still_flows_after_a_half_close)
{
    struct relay_dir back = { .src = rf.server[0], .dst = rf.client[1] };
    char out[16];

    cr_assert_eq(shutdown(rf.client[0], SHUT_WR), 0);
    cr_expect_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_EOF);
    cr_assert_eq(shutdown(rf.server[0], SHUT_WR), 0);  /* pass the FIN on */
    cr_assert_eq(write(rf.server[1], "late answer", 11), 11);
    cr_expect_eq(relay_pump(&back, &rf.rp, RELAY_BUDGET), RELAY_IDLE);
    cr_assert_eq(read(rf.client[0], out, sizeof(out)), 11);
    cr_expect_eq(memcmp(out, "late answer", 11), 0);
    relay_dir_release(&back, &rf.rp);
}

Test(relay, pool_reuses_buffers_up_to_its_limit)
{
    struct relay_pool rp;
    char *b[6];
    size_t i;

    relay_pool_init(&rp, 2);
    for (i = 0; i < 3; i++) {
        b[i] = relay_buf_get(&rp);
        cr_assert_not_null(b[i]);
    }
    cr_expect_eq(rp.nused, 3);
    cr_expect_eq(rp.nfree, 0);
    relay_buf_put(&rp, b[0]);
    relay_buf_put(&rp, b[1]);
    relay_buf_put(&rp, b[2]);       /* past nfree_max: freed */
    cr_expect_eq(rp.nused, 0);
    cr_expect_eq(rp.nfree, 2);

    b[3] = relay_buf_get(&rp);
    b[4] = relay_buf_get(&rp);
    cr_expect_eq(b[3], b[1], "last put, first got");
    cr_expect_eq(b[4], b[0]);
    cr_expect_eq(rp.nfree, 0);
    cr_expect_eq(rp.nused, 2);
    /* The whole buffer is usable, link word included. */
    memset(b[3], 0xab, RELAY_BUF_SIZE);
    memset(b[4], 0xcd, RELAY_BUF_SIZE);
    b[5] = relay_buf_get(&rp);
    cr_assert_not_null(b[5]);
    cr_expect_eq(rp.nused, 3);
    relay_buf_put(&rp, b[3]);
    relay_buf_put(&rp, b[4]);
    relay_buf_put(&rp, b[5]);
    relay_pool_deinit(&rp);
    cr_expect_eq(rp.nfree, 0);
    cr_expect_null(rp.free);
}

Test(relay, dir_release_returns_a_held_buffer)
{
    uint64_t sent = 0;

    rf_small_dst();
    rf_write_pattern(rf.client[0], &sent, 256 * 1024);
    cr_assert_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_BLOCKED);
    cr_assert_not_null(rf.d.buf);
    relay_dir_release(&rf.d, &rf.rp);
    cr_expect_null(rf.d.buf);
    cr_expect_eq(rf.d.off, 0);
    cr_expect_eq(rf.d.len, 0);
    cr_expect_eq(rf.rp.nused, 0);
    cr_expect_eq(rf.rp.nfree, 1);
}

Test(relay, read_errors_survive_giving_the_buffer_back_to_malloc)
{
    struct relay_pool none;

    /* No free list: the released buffer goes to free() before errno is
     * looked at. */
    relay_pool_init(&none, 0);
    cr_expect_eq(relay_pump(&rf.d, &none, RELAY_BUDGET), RELAY_IDLE);
    cr_expect_eq(none.nused, 0);
    cr_expect_eq(none.nfree, 0);
    rf.d.src = -1;
    cr_expect_eq(relay_pump(&rf.d, &none, RELAY_BUDGET), RELAY_ERR_SRC);
    cr_expect_eq(errno, EBADF);
    relay_pool_deinit(&none);
}

/* An observer that checks it sees the stream, in order, once. */
struct rf_seen {
    uint64_t    n;
    unsigned    calls;
};

static void
rf_observe(void *arg, const char *p, size_t n)
{
    struct rf_seen *seen = arg;
    size_t i;

    for (i = 0; i < n; i++) {
        cr_assert_eq((uint8_t)p[i], rf_byte(seen->n + i), "observed byte %llu",
                     (unsigned long long)(seen->n + i));
    }
    seen->n += n;
    seen->calls++;
}

Test(relay, an_observer_sees_every_byte_in_order_and_keeps_it_copying)
{
    const uint64_t total = 1 << 20;
    struct rf_seen seen = { 0, 0 };
    uint64_t sent = 0, got = 0;
    int rounds = 0;

    rf.d.observe = rf_observe;
    rf.d.observe_arg = &seen;
    while (got < total) {
        cr_assert_lt(++rounds, 100000, "no progress");
        rf_write_pattern(rf.client[0], &sent, total);
        relay_pump(&rf.d, &rf.rp, RELAY_BUDGET);
        rf_read_check(rf.server[1], &got);
    }
    cr_expect_eq(seen.n, total, "every byte shown once");
    cr_expect_gt(seen.calls, 1);
    cr_expect_not(rf.d.spliced, "no splicing while observed");
    /* Taken away: the direction may splice again. */
    rf.d.observe = NULL;
    sent = got = 0;
    while (got < total) {
        cr_assert_lt(++rounds, 200000, "no progress");
        rf_write_pattern(rf.client[0], &sent, total);
        relay_pump(&rf.d, &rf.rp, RELAY_BUDGET);
        rf_read_check(rf.server[1], &got);
    }
    cr_expect(rf.d.spliced);
    cr_expect_eq(seen.n, total);
}

Test(relay, fill_reads_once_and_the_pump_sends_without_reading_again)
{
    char out[16];

    /* Nothing yet: no buffer held, and the pump that follows does not
     * read before the watcher says more came. */
    cr_expect_eq(relay_fill(&rf.d, &rf.rp), RELAY_IDLE);
    cr_expect_null(rf.d.buf);
    cr_expect(rf.d.drained);
    cr_assert_eq(write(rf.client[0], "late", 4), 4);
    cr_expect_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_IDLE);
    cr_expect_eq(rf.d.nbytes, 0, "the hint spared the read");
    cr_expect_eq(rf.d.wait, RELAY_WAIT_SRC_READ);
    cr_expect_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_IDLE);
    cr_expect_eq(rf.d.nbytes, 4, "the next pump reads as usual");
    cr_assert_eq(read(rf.server[1], out, sizeof(out)), 4);

    /* Bytes: they wait in the buffer (and the tap) until the pump. */
    rf.d.tapmax = 64;
    cr_assert_eq(write(rf.client[0], "PING", 4), 4);
    cr_expect_eq(relay_fill(&rf.d, &rf.rp), RELAY_BLOCKED);
    cr_expect_eq(rf.d.len - rf.d.off, 4);
    cr_expect_eq(rf.d.taplen, 4);
    cr_expect_eq(memcmp(rf.d.tap, "PING", 4), 0);
    cr_assert_eq(write(rf.client[0], "more", 4), 4);
    cr_expect_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_IDLE);
    cr_expect_eq(rf.d.nbytes, 8, "a short read: nothing read after the send");
    cr_expect_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_IDLE);
    cr_expect_eq(rf.d.nbytes, 12);
    cr_assert_eq(read(rf.server[1], out, sizeof(out)), 8);
    cr_expect_eq(memcmp(out, "PINGmore", 8), 0);
    relay_tap_free(&rf.d);
}

Test(relay, fill_sees_the_end_and_errors)
{
    cr_assert_eq(shutdown(rf.client[0], SHUT_WR), 0);
    cr_expect_eq(relay_fill(&rf.d, &rf.rp), RELAY_EOF);
    cr_expect(rf.d.eof);
    cr_expect_null(rf.d.buf);
    cr_expect_eq(relay_pump(&rf.d, &rf.rp, RELAY_BUDGET), RELAY_EOF);

    rf.d.eof = 0;
    rf.d.src = -1;
    cr_expect_eq(relay_fill(&rf.d, &rf.rp), RELAY_ERR_SRC);
    cr_expect_eq(rf.d.err, EBADF);
    cr_expect_null(rf.d.buf);
    cr_expect_eq(rf.rp.nused, 0);
}

/* One watcher a socket: what the two directions on it wait for. */
Test(relay, a_socket_is_watched_for_what_its_two_directions_wait_for)
{
    const unsigned R = RELAY_WANT_READ, W = RELAY_WANT_WRITE;

    /* Idle: read both ways, write nowhere. */
    cr_expect_eq(relay_socket_wants(RELAY_WAIT_SRC_READ,
                                    RELAY_WAIT_SRC_READ), R);
    /* Backpressure: the peer's reader stops, this socket is written. */
    cr_expect_eq(relay_socket_wants(RELAY_WAIT_SRC_READ,
                                    RELAY_WAIT_DST_WRITE), R | W);
    cr_expect_eq(relay_socket_wants(RELAY_WAIT_DST_WRITE,
                                    RELAY_WAIT_SRC_READ), 0,
                 "the reading direction waits for the other socket");
    /* TLS: a read that must write, a write that must read. */
    cr_expect_eq(relay_socket_wants(RELAY_WAIT_SRC_WRITE,
                                    RELAY_WAIT_NONE), W);
    cr_expect_eq(relay_socket_wants(RELAY_WAIT_NONE,
                                    RELAY_WAIT_DST_READ), R);
    cr_expect_eq(relay_socket_wants(RELAY_WAIT_SRC_WRITE,
                                    RELAY_WAIT_DST_READ), R | W);
    /* Both directions ended. */
    cr_expect_eq(relay_socket_wants(RELAY_WAIT_NONE, RELAY_WAIT_NONE), 0);
    cr_expect_eq(relay_socket_wants(RELAY_WAIT_DST_READ,
                                    RELAY_WAIT_SRC_WRITE), 0,
                 "waits on the other socket only");
}
