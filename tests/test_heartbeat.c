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

/* Which reader a stream goes to. */
enum hb_side {
    HB_CLIENT = 0,      /* heartbeat_feed, from a fresh reader */
    HB_BROKER,          /* heartbeat_connack_feed, after hb_mqtt5 */
};

/* A reader that read hb_mqtt5 (keep alive 30), ready for the CONNACK. */
static void
hb_ack_ready(struct heartbeat_reader *r)
{
    heartbeat_init(r);
    cr_assert_eq(heartbeat_feed(r, hb_mqtt5, sizeof(hb_mqtt5)),
                 HEARTBEAT_FOUND);
    cr_assert(heartbeat_connack_wanted(r));
    heartbeat_connack_init(r);
}

static void
hb_start(struct heartbeat_reader *r, enum hb_side side)
{
    if (side == HB_BROKER) {
        hb_ack_ready(r);
    } else {
        heartbeat_init(r);
    }
}

static enum heartbeat_result
hb_feed_side(struct heartbeat_reader *r, enum hb_side side, const uint8_t *p,
             size_t n)
{
    return side == HB_BROKER ? heartbeat_connack_feed(r, p, n)
                             : heartbeat_feed(r, p, n);
}

/* Feed <p> split at <cut1> <= <cut2>; each piece a fresh heap copy. */
static enum heartbeat_result
hb_feed_split(struct heartbeat_reader *r, enum hb_side side,
              const uint8_t *p, size_t n, size_t cut1, size_t cut2)
{
    size_t cuts[4] = { 0, cut1, cut2, n };
    enum heartbeat_result res = HEARTBEAT_MORE;
    uint8_t *copy;
    size_t k, len;

    hb_start(r, side);
    for (k = 0; k < 3; k++) {
        len = cuts[k + 1] - cuts[k];
        copy = malloc(len == 0 ? 1 : len);
        cr_assert_not_null(copy);
        memcpy(copy, p + cuts[k], len);
        res = hb_feed_side(r, side, copy, len);
        free(copy);
    }
    return res;
}

/*
 * Every split of <p> into up to three pieces, and one byte at a time,
 * gives <want>; then, if FOUND, <proto> and <secs>. The broker's side
 * always leaves <secs> in force (the client's 30 unless FOUND).
 */
static void
hb_expect_side(enum hb_side side, const uint8_t *p, size_t n,
               enum heartbeat_result want, enum heartbeat_proto proto,
               uint32_t secs)
{
    struct heartbeat_reader r;
    enum heartbeat_result res = HEARTBEAT_MORE;
    bool check = want == HEARTBEAT_FOUND || side == HB_BROKER;
    size_t i, j;

    for (i = 0; i <= n; i++) {
        for (j = i; j <= n; j++) {
            res = hb_feed_split(&r, side, p, n, i, j);
            cr_assert_eq(res, want, "split %zu/%zu: %d, want %d", i, j,
                         res, want);
            if (check) {
                cr_assert_eq(r.interval_s, secs, "split %zu/%zu", i, j);
                cr_assert_eq(r.proto, proto);
            }
        }
    }
    hb_start(&r, side);
    for (i = 0; i < n; i++) {
        res = hb_feed_side(&r, side, p + i, 1);
    }
    cr_assert_eq(res, want);
    if (check) {
        cr_assert_eq(r.interval_s, secs);
    }
}

static void
hb_expect(const uint8_t *p, size_t n, enum heartbeat_result want,
          enum heartbeat_proto proto, uint32_t secs)
{
    hb_expect_side(HB_CLIENT, p, n, want, proto, secs);
}

/* The broker's <p>, after hb_mqtt5: <want>, and <secs> in force. */
static void
hb_ack_expect(const uint8_t *p, size_t n, enum heartbeat_result want,
              uint32_t secs)
{
    hb_expect_side(HB_BROKER, p, n, want, HEARTBEAT_MQTT, secs);
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

/* ---- the broker's CONNACK after an MQTT 5 CONNECT ---------------------- */

/*
 * CONNACK, Success, with every kind of property: u32, u16, u8, strings,
 * a user property (string pair), binary authentication data holding the
 * bytes 0x13 0x00, and Server Keep Alive = 2 among them; then a PUBLISH.
 */
static const uint8_t hb_connack[] = {
    0x20, 0x4b, 0x00, 0x00, 0x48,
    0x11, 0x00, 0x00, 0x0e, 0x10,                   /* session expiry */
    0x21, 0x00, 0x14,                               /* receive maximum */
    0x24, 0x01,                                     /* maximum QoS */
    0x12, 0x00, 0x05, 'a', 'u', 't', 'o', '1',      /* assigned id */
    0x26, 0x00, 0x03, 'k', 'e', 'y', 0x00, 0x02, 'v', 'v',
    0x13, 0x00, 0x02,                               /* server keep alive */
    0x15, 0x00, 0x04, 'S', 'C', 'R', 'M',           /* auth method */
    0x16, 0x00, 0x03, 0x13, 0x00, 0xff,             /* auth data */
    0x1f, 0x00, 0x02, 'o', 'k',                     /* reason string */
    0x27, 0x00, 0x01, 0x00, 0x00,                   /* max packet size */
    0x28, 0x01, 0x29, 0x01, 0x2a, 0x00, 0x25, 0x01,
    0x22, 0x00, 0x0a,                               /* topic alias max */
    0x1a, 0x00, 0x00,                               /* response info */
    0x1c, 0x00, 0x01, 'x',                          /* server reference */
    0x30, 0x03, 0x00, 0x01, 't',                    /* a PUBLISH after */
};

Test(heartbeat, connack_server_keep_alive_among_properties_at_every_split)
{
    struct heartbeat_reader r;

    hb_ack_expect(hb_connack, sizeof(hb_connack), HEARTBEAT_FOUND, 2);
    hb_ack_ready(&r);
    cr_assert_eq(heartbeat_connack_feed(&r, hb_connack, sizeof(hb_connack)),
                 HEARTBEAT_FOUND);
    cr_assert_eq(r.proto, HEARTBEAT_MQTT);
    cr_assert_eq(heartbeat_timeout_ms(&r), 4000);    /* 1.5 x 2 s + 1 s */
}

Test(heartbeat, connack_every_strict_prefix_asks_for_more)
{
    struct heartbeat_reader r;
    size_t n;

    /* Every property is read to the end of the list before deciding. */
    for (n = 0; n < sizeof(hb_connack) - 5; n++) {
        hb_ack_ready(&r);
        cr_assert_eq(heartbeat_connack_feed(&r, hb_connack, n),
                     HEARTBEAT_MORE, "prefix %zu", n);
        cr_assert_eq(r.interval_s, 30);
    }
}

Test(heartbeat, connack_higher_or_zero_server_keep_alive)
{
    static const uint8_t high[] = {
        0x20, 0x06, 0x01, 0x00, 0x03, 0x13, 0x00, 0x78,     /* 120 s */
    };
    static const uint8_t zero[] = {
        0x20, 0x06, 0x00, 0x00, 0x03, 0x13, 0x00, 0x00,
    };
    struct heartbeat_reader r;

    hb_ack_expect(high, sizeof(high), HEARTBEAT_FOUND, 120);
    hb_ack_ready(&r);
    heartbeat_connack_feed(&r, high, sizeof(high));
    cr_assert_eq(heartbeat_timeout_ms(&r), 181000);
    hb_ack_expect(zero, sizeof(zero), HEARTBEAT_FOUND, 0);
    hb_ack_ready(&r);
    heartbeat_connack_feed(&r, zero, sizeof(zero));
    cr_assert_eq(heartbeat_timeout_ms(&r), 0, "0: never");
}

Test(heartbeat, connack_without_server_keep_alive_keeps_the_clients)
{
    static const uint8_t none[] = { 0x20, 0x03, 0x00, 0x00, 0x00 };
    static const uint8_t others[] = {
        0x20, 0x0b, 0x00, 0x00, 0x08,
        0x21, 0x00, 0x14, 0x1f, 0x00, 0x02, 'o', 'k',
    };

    hb_ack_expect(none, sizeof(none), HEARTBEAT_NONE, 30);
    hb_ack_expect(others, sizeof(others), HEARTBEAT_NONE, 30);
}

Test(heartbeat, connack_refusing_the_client_changes_nothing)
{
    /* Not authorized (0x87), with a Server Keep Alive all the same. */
    static const uint8_t refused[] = {
        0x20, 0x06, 0x00, 0x87, 0x03, 0x13, 0x00, 0x02,
    };
    /* 0x01..0x7f are no CONNACK reason codes. */
    static const uint8_t odd[] = {
        0x20, 0x06, 0x00, 0x10, 0x03, 0x13, 0x00, 0x02,
    };

    hb_ack_expect(refused, sizeof(refused), HEARTBEAT_NONE, 30);
    hb_ack_expect(odd, sizeof(odd), HEARTBEAT_NONE, 30);
}

Test(heartbeat, connack_after_auth_packets_at_every_split)
{
    struct hb_stream s;
    unsigned i;

    /* AUTH Continue authentication with method and data (the data holds
     * a CONNACK's bytes), an empty AUTH, then the CONNACK. */
    memset(&s, 0, sizeof(s));
    hb_put(&s, "\xf0\x12\x18\x10"
               "\x15\x00\x04SCRM"
               "\x16\x00\x06\x20\x03\x00\x00\x00\x13", 20);
    hb_put(&s, "\xf0\x00", 2);
    hb_put(&s, hb_connack, sizeof(hb_connack));
    hb_ack_expect(s.b, s.n, HEARTBEAT_FOUND, 2);

    /* Beyond HEARTBEAT_MQTT_MAX_AUTH AUTH packets: given up. */
    memset(&s, 0, sizeof(s));
    for (i = 0; i <= HEARTBEAT_MQTT_MAX_AUTH; i++) {
        hb_put(&s, "\xf0\x01\x18", 3);
    }
    hb_put(&s, hb_connack, sizeof(hb_connack));
    hb_ack_expect(s.b, s.n, HEARTBEAT_NONE, 30);
}

Test(heartbeat, connack_long_lengths_in_two_byte_varints)
{
    struct hb_stream s;
    uint8_t reason[300];

    /* A 300-byte reason string before the Server Keep Alive: remaining
     * length 310 and property length 306, both in two bytes. */
    memset(reason, 0x13, sizeof(reason));
    memset(&s, 0, sizeof(s));
    hb_put(&s, "\x20\xb6\x02\x00\x00\xb2\x02", 7);
    hb_put(&s, "\x1f", 1);
    hb_put16(&s, sizeof(reason));
    hb_put(&s, reason, sizeof(reason));
    hb_put(&s, "\x13\x00\x05", 3);
    cr_assert_eq(s.n, 7 + 306);
    hb_ack_expect(s.b, s.n, HEARTBEAT_FOUND, 5);
}

Test(heartbeat, connack_malformed_is_none)
{
    static const struct {
        const char *what;
        const char *b;
        size_t n;
    } bad[] = {
        { "property length beyond the packet",
          "\x20\x05\x00\x00\x05\x13\x00", 7 },
        { "bytes after the properties",
          "\x20\x07\x00\x00\x03\x13\x00\x02\x00", 9 },
        { "a value beyond the properties",
          "\x20\x05\x00\x00\x02\x13\x00", 7 },
        { "a string beyond the properties",
          "\x20\x09\x00\x00\x06\x1f\x00\x05okay\x13", 11 },
        { "a pair's second string beyond them",
          "\x20\x0b\x00\x00\x08\x26\x00\x01k\x00\x09v\x13\x00", 13 },
        { "a string length cut by the end",
          "\x20\x05\x00\x00\x02\x1f\x00", 7 },
        { "an unknown property",
          "\x20\x08\x00\x00\x05\x02\x00\x00\x00\x10", 10 },
        { "a property of PUBLISH, not CONNACK",
          "\x20\x05\x00\x00\x02\x01\x01", 7 },
        { "Server Keep Alive twice",
          "\x20\x09\x00\x00\x06\x13\x00\x02\x13\x00\x03", 11 },
        { "reserved ack flags",
          "\x20\x06\x02\x00\x03\x13\x00\x02", 8 },
        { "remaining length in five bytes",
          "\x20\xff\xff\xff\xff\x01", 6 },
        { "property length in five bytes",
          "\x20\x0a\x00\x00\xff\xff\xff\xff\x01", 9 },
        { "property length longer than the packet",
          "\x20\x04\x00\x00\x80\x80\x01", 7 },
        { "remaining length below two",
          "\x20\x01\x00", 3 },
        { "a PUBLISH first", "\x30\x03\x00\x01t", 5 },
        { "a PINGRESP first", "\xd0\x00", 2 },
        { "AUTH with flags", "\xf1\x00\x20\x03\x00\x00\x00", 7 },
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct heartbeat_reader r;

        cr_log_info("%s", bad[i].what);
        hb_ack_expect((const uint8_t *)bad[i].b, bad[i].n, HEARTBEAT_NONE,
                      30);
        hb_ack_ready(&r);
        cr_assert_eq(heartbeat_connack_feed(&r, (const uint8_t *)bad[i].b,
                                            bad[i].n),
                     HEARTBEAT_NONE, "%s", bad[i].what);
    }
}

Test(heartbeat, connack_huge_auth_is_passed_over_without_holding_it)
{
    struct heartbeat_reader r;
    static uint8_t zeros[65536];
    unsigned i;

    /* AUTH with the largest remaining length (268,435,455): the reader
     * skips it as it passes and waits on, with its few bytes of state. */
    hb_ack_ready(&r);
    cr_assert_eq(heartbeat_connack_feed(&r, (const uint8_t *)
                                        "\xf0\xff\xff\xff\x7f", 5),
                 HEARTBEAT_MORE);
    for (i = 0; i < 64; i++) {
        cr_assert_eq(heartbeat_connack_feed(&r, zeros, sizeof(zeros)),
                     HEARTBEAT_MORE);
    }
    cr_assert_eq(r.skip, 268435455ULL - 64 * sizeof(zeros));
}

Test(heartbeat, connack_311_answer_is_none_and_only_mqtt5_asks)
{
    static const uint8_t ack311[] = { 0x20, 0x02, 0x00, 0x00 };
    struct heartbeat_reader r;

    /* MQTT 3.1.1's CONNACK: no properties. */
    hb_ack_expect(ack311, sizeof(ack311), HEARTBEAT_NONE, 30);
    /* Only an MQTT 5 CONNECT waits for the broker's answer. */
    heartbeat_init(&r);
    heartbeat_feed(&r, hb_mqtt311, sizeof(hb_mqtt311));
    cr_assert_eq(r.level, 4);
    cr_assert_not(heartbeat_connack_wanted(&r));
    heartbeat_init(&r);
    heartbeat_feed(&r, hb_mqtt31, sizeof(hb_mqtt31));
    cr_assert_eq(r.level, 3);
    cr_assert_not(heartbeat_connack_wanted(&r));
    heartbeat_init(&r);
    heartbeat_feed(&r, hb_mqtt5, sizeof(hb_mqtt5));
    cr_assert_eq(r.level, 5);
    cr_assert(heartbeat_connack_wanted(&r));
    /* Not before the CONNECT is read. */
    heartbeat_init(&r);
    heartbeat_feed(&r, hb_mqtt5, 8);
    cr_assert_not(heartbeat_connack_wanted(&r));
}

Test(heartbeat, connack_decision_is_sticky)
{
    struct heartbeat_reader r;

    hb_ack_ready(&r);
    cr_assert_eq(heartbeat_connack_feed(&r, hb_connack, sizeof(hb_connack)),
                 HEARTBEAT_FOUND);
    cr_assert_eq(heartbeat_connack_feed(&r, (const uint8_t *)
                                        "\x20\x06\x00\x00\x03\x13\x00\x09",
                                        8), HEARTBEAT_FOUND);
    cr_assert_eq(r.interval_s, 2);
    hb_ack_ready(&r);
    cr_assert_eq(heartbeat_connack_feed(&r, (const uint8_t *)"\xd0\x00", 2),
                 HEARTBEAT_NONE);
    cr_assert_eq(heartbeat_connack_feed(&r, hb_connack, sizeof(hb_connack)),
                 HEARTBEAT_NONE);
    cr_assert_eq(r.interval_s, 30);
}
