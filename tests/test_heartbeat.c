/*
 * test_heartbeat.c: the keepalive readers for idle_timeout = auto. Every
 * stream is fed whole, one byte at a time, and split in two and in three
 * pieces at every position: the answer never depends on the split.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/heartbeat.h"

/* MQTT 3.1.1, keepalive 2 s, client id "abc". */
static const uint8_t hb_mqtt311[] = {
    0x10, 0x0f,
    0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x02,
    0x00, 0x03, 'a', 'b', 'c',
};

/* MQTT 3.1 (MQIsdp), keepalive 600 s (0x0258). */
static const uint8_t hb_mqtt31[] = {
    0x10, 0x17,
    0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x02, 0x02, 0x58,
    0x00, 0x09, 's', 'e', 'n', 's', 'o', 'r', '-', '1', '7',
};

/* MQTT 5, keepalive 30, with properties, and a PINGREQ after it. */
static const uint8_t hb_mqtt5[] = {
    0x10, 0x22,
    0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0xc2, 0x00, 0x1e,
    0x08, 0x11, 0x00, 0x00, 0x0e, 0x10, 0x21, 0x00, 0x14,
    0x00, 0x06, 'd', 'e', 'v', '/', '4', '2',
    0x00, 0x01, 'u',
    0x00, 0x02, 'p', 'w',
    0xc0, 0x00,
};

/* MQTT 3.1.1, keepalive 0 (never), remaining length in two bytes. */
static const uint8_t hb_mqtt_zero[] = {
    0x10, 0x8c, 0x01,
    0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x00,
};

/* An AMQP client's side of the handshake, built by hb_amqp(). */
struct hb_stream {
    uint8_t     b[1024];
    size_t      n;
};

static void
hb_put(struct hb_stream *s, const void *p, size_t n)
{
    cr_assert_leq(s->n + n, sizeof(s->b));
    if (n > 0) {
        memcpy(s->b + s->n, p, n);  /* p may be NULL with n == 0 */
    }
    s->n += n;
}

static void
hb_put16(struct hb_stream *s, unsigned v)
{
    uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

    hb_put(s, b, 2);
}

static void
hb_put32(struct hb_stream *s, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
                     (uint8_t)(v >> 8), (uint8_t)v };

    hb_put(s, b, 4);
}

/* One frame: <type>, <channel>, <payload>, frame end. */
static void
hb_frame(struct hb_stream *s, uint8_t type, unsigned channel,
         const uint8_t *payload, size_t len)
{
    hb_put(s, &type, 1);
    hb_put16(s, channel);
    hb_put32(s, (uint32_t)len);
    hb_put(s, payload, len);
    hb_put(s, "\xce", 1);
}

/*
 * "AMQP" 0 0 9 1, Start-Ok (with bytes that look like frame ends and
 * frame headers inside its table), a heartbeat frame, then Tune-Ok with
 * <heartbeat>, then Connection.Open.
 */
static void
hb_amqp(struct hb_stream *s, unsigned heartbeat, bool with_tune_ok)
{
    struct hb_stream m;
    size_t i;

    memset(s, 0, sizeof(*s));
    hb_put(s, "AMQP\x00\x00\x09\x01", 8);

    memset(&m, 0, sizeof(m));
    hb_put16(&m, 10);
    hb_put16(&m, 11);
    hb_put32(&m, 200);          /* client-properties table */
    for (i = 0; i < 200; i++) {
        uint8_t c = (uint8_t)(i % 3 == 0 ? 0xce : i % 3 == 1 ? 0x01 : i);

        hb_put(&m, &c, 1);
    }
    hb_put(&m, "\x05PLAIN", 6);
    hb_put32(&m, 12);
    hb_put(&m, "\0guest\0guest", 12);
    hb_put(&m, "\x05" "en_US", 6);
    hb_frame(s, 1, 0, m.b, m.n);

    hb_frame(s, 8, 0, NULL, 0);

    if (with_tune_ok) {
        memset(&m, 0, sizeof(m));
        hb_put16(&m, 10);
        hb_put16(&m, 31);
        hb_put16(&m, 2047);
        hb_put32(&m, 131072);
        hb_put16(&m, heartbeat);
        hb_frame(s, 1, 0, m.b, m.n);
    }

    memset(&m, 0, sizeof(m));
    hb_put16(&m, 10);
    hb_put16(&m, 40);
    hb_put(&m, "\x01/\x00\x00", 4);
    hb_frame(s, 1, 0, m.b, m.n);
}

/* Feed <p> split at <cut1> <= <cut2>; each piece a fresh heap copy. */
static enum heartbeat_result
hb_feed_split(struct heartbeat_reader *r, const uint8_t *p, size_t n,
              size_t cut1, size_t cut2)
{
    size_t cuts[4] = { 0, cut1, cut2, n };
    enum heartbeat_result res = HEARTBEAT_MORE;
    uint8_t *copy;
    size_t k, len;

    heartbeat_init(r);
    for (k = 0; k < 3; k++) {
        len = cuts[k + 1] - cuts[k];
        copy = malloc(len == 0 ? 1 : len);
        cr_assert_not_null(copy);
        memcpy(copy, p + cuts[k], len);
        res = heartbeat_feed(r, copy, len);
        free(copy);
    }
    return res;
}

/* Every split of <p> into up to three pieces gives <want> and <secs>. */
static void
hb_expect(const uint8_t *p, size_t n, enum heartbeat_result want,
          enum heartbeat_proto proto, uint32_t secs)
{
    struct heartbeat_reader r;
    enum heartbeat_result res = HEARTBEAT_MORE;
    size_t i, j;

    for (i = 0; i <= n; i++) {
        for (j = i; j <= n; j++) {
            res = hb_feed_split(&r, p, n, i, j);
            cr_assert_eq(res, want, "split %zu/%zu: %d, want %d", i, j,
                         res, want);
            if (want == HEARTBEAT_FOUND) {
                cr_assert_eq(r.interval_s, secs, "split %zu/%zu", i, j);
                cr_assert_eq(r.proto, proto);
            }
        }
    }
    heartbeat_init(&r);
    for (i = 0; i < n; i++) {
        res = heartbeat_feed(&r, p + i, 1);
    }
    cr_assert_eq(res, want);
}

Test(heartbeat, mqtt_311_keepalive_at_every_split)
{
    hb_expect(hb_mqtt311, sizeof(hb_mqtt311), HEARTBEAT_FOUND,
              HEARTBEAT_MQTT, 2);
}

Test(heartbeat, mqtt_31_mqisdp_at_every_split)
{
    hb_expect(hb_mqtt31, sizeof(hb_mqtt31), HEARTBEAT_FOUND,
              HEARTBEAT_MQTT, 600);
}

Test(heartbeat, mqtt_5_with_properties_at_every_split)
{
    hb_expect(hb_mqtt5, sizeof(hb_mqtt5), HEARTBEAT_FOUND,
              HEARTBEAT_MQTT, 30);
}

Test(heartbeat, mqtt_keepalive_zero_means_never)
{
    struct heartbeat_reader r;

    hb_expect(hb_mqtt_zero, sizeof(hb_mqtt_zero), HEARTBEAT_FOUND,
              HEARTBEAT_MQTT, 0);
    heartbeat_init(&r);
    heartbeat_feed(&r, hb_mqtt_zero, sizeof(hb_mqtt_zero));
    cr_assert_eq(heartbeat_timeout_ms(&r), 0);
}

Test(heartbeat, mqtt_timeout_is_one_and_a_half_keepalive_plus_a_second)
{
    struct heartbeat_reader r;

    heartbeat_init(&r);
    cr_assert_eq(heartbeat_feed(&r, hb_mqtt311, sizeof(hb_mqtt311)),
                 HEARTBEAT_FOUND);
    cr_assert_eq(heartbeat_timeout_ms(&r), 4000);
    heartbeat_init(&r);
    heartbeat_feed(&r, hb_mqtt31, sizeof(hb_mqtt31));
    cr_assert_eq(heartbeat_timeout_ms(&r), 901000);
}

Test(heartbeat, mqtt_every_strict_prefix_asks_for_more)
{
    struct heartbeat_reader r;
    size_t n;

    /* The keep alive is the 12th byte: up to there the reader waits. */
    for (n = 0; n < 12; n++) {
        heartbeat_init(&r);
        cr_assert_eq(heartbeat_feed(&r, hb_mqtt311, n), HEARTBEAT_MORE,
                     "prefix %zu", n);
    }
}

Test(heartbeat, mqtt_malformed_headers_are_none)
{
    uint8_t bad_name[sizeof(hb_mqtt311)];
    uint8_t bad_len[sizeof(hb_mqtt311)];
    uint8_t short_rl[sizeof(hb_mqtt311)];
    static const uint8_t long_varint[] = { 0x10, 0xff, 0xff, 0xff, 0xff, 1 };

    memcpy(bad_name, hb_mqtt311, sizeof(bad_name));
    bad_name[4] = 'X';
    hb_expect(bad_name, sizeof(bad_name), HEARTBEAT_NONE, 0, 0);
    memcpy(bad_len, hb_mqtt311, sizeof(bad_len));
    bad_len[3] = 5;
    hb_expect(bad_len, sizeof(bad_len), HEARTBEAT_NONE, 0, 0);
    memcpy(short_rl, hb_mqtt311, sizeof(short_rl));
    short_rl[1] = 0x04;     /* the packet ends before its keep alive */
    hb_expect(short_rl, sizeof(short_rl), HEARTBEAT_NONE, 0, 0);
    hb_expect(long_varint, sizeof(long_varint), HEARTBEAT_NONE, 0, 0);
}

Test(heartbeat, amqp_tune_ok_at_every_split)
{
    struct hb_stream s;

    hb_amqp(&s, 2, true);
    hb_expect(s.b, s.n, HEARTBEAT_FOUND, HEARTBEAT_AMQP, 2);
}

Test(heartbeat, amqp_timeout_is_two_heartbeats_plus_a_second)
{
    struct heartbeat_reader r;
    struct hb_stream s;

    hb_amqp(&s, 60, true);
    heartbeat_init(&r);
    cr_assert_eq(heartbeat_feed(&r, s.b, s.n), HEARTBEAT_FOUND);
    cr_assert_eq(r.proto, HEARTBEAT_AMQP);
    cr_assert_eq(heartbeat_timeout_ms(&r), 121000);
    hb_amqp(&s, 0, true);
    heartbeat_init(&r);
    cr_assert_eq(heartbeat_feed(&r, s.b, s.n), HEARTBEAT_FOUND);
    cr_assert_eq(heartbeat_timeout_ms(&r), 0);
}

Test(heartbeat, amqp_without_tune_ok_gives_up_at_the_next_class)
{
    struct hb_stream s;
    struct heartbeat_reader r;

    /* Start-Ok, heartbeat, Open: still MORE (Tune-Ok may come later). */
    hb_amqp(&s, 2, false);
    heartbeat_init(&r);
    cr_assert_eq(heartbeat_feed(&r, s.b, s.n), HEARTBEAT_MORE);
    /* A channel-class method on channel 0: the handshake is over. */
    cr_assert_eq(heartbeat_feed(&r, (const uint8_t *)
                                "\x01\x00\x00\x00\x00\x00\x04"
                                "\x00\x14\x00\x0a\xce", 12),
                 HEARTBEAT_NONE);
}

Test(heartbeat, amqp_bad_header_or_frame_end_is_none)
{
    struct hb_stream s;

    hb_amqp(&s, 2, true);
    s.b[7] = 0;         /* AMQP 0-9-0 */
    hb_expect(s.b, s.n, HEARTBEAT_NONE, 0, 0);
    hb_amqp(&s, 2, true);
    s.b[8 + 7 + 236] ^= 0xff;   /* Start-Ok payload is 236 bytes */
    hb_expect(s.b, s.n, HEARTBEAT_NONE, 0, 0);
    hb_expect((const uint8_t *)"AMQP\x00\x01\x00\x00", 8, HEARTBEAT_NONE,
              0, 0);
}

Test(heartbeat, amqp_gives_up_after_too_many_frames)
{
    struct heartbeat_reader r;
    static const uint8_t hbf[8] = { 8, 0, 0, 0, 0, 0, 0, 0xce };
    unsigned i;

    heartbeat_init(&r);
    cr_assert_eq(heartbeat_feed(&r, (const uint8_t *)"AMQP\x00\x00\x09\x01",
                                8), HEARTBEAT_MORE);
    for (i = 0; i < HEARTBEAT_AMQP_MAX_FRAMES; i++) {
        cr_assert_eq(heartbeat_feed(&r, hbf, sizeof(hbf)), HEARTBEAT_MORE);
    }
    cr_assert_eq(heartbeat_feed(&r, hbf, sizeof(hbf)), HEARTBEAT_NONE);
}

Test(heartbeat, other_protocols_are_none_at_once_and_stay_so)
{
    struct heartbeat_reader r;

    heartbeat_init(&r);
    cr_assert_eq(heartbeat_feed(&r, (const uint8_t *)"PING\r\n", 6),
                 HEARTBEAT_NONE);
    cr_assert_eq(r.proto, HEARTBEAT_UNKNOWN);
    cr_assert_eq(heartbeat_feed(&r, hb_mqtt311, sizeof(hb_mqtt311)),
                 HEARTBEAT_NONE);
    cr_assert_eq(heartbeat_timeout_ms(&r), 0);
    cr_assert_str_eq(heartbeat_proto_name(r.proto), "other");
    heartbeat_init(&r);
    cr_assert_eq(heartbeat_feed(&r, (const uint8_t *)"ABC", 3),
                 HEARTBEAT_NONE);
}

Test(heartbeat, found_is_sticky_and_reads_nothing_more)
{
    struct heartbeat_reader r;

    heartbeat_init(&r);
    cr_assert_eq(heartbeat_feed(&r, hb_mqtt311, sizeof(hb_mqtt311)),
                 HEARTBEAT_FOUND);
    cr_assert_eq(heartbeat_feed(&r, (const uint8_t *)"\x10\x0f\x00\x04", 4),
                 HEARTBEAT_FOUND);
    cr_assert_eq(r.interval_s, 2);
}
