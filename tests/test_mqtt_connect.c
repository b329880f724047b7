/*
 * test_mqtt_connect.c: client identifier extraction from MQTT 3.1, 3.1.1
 * and 5 CONNECT packets, whole, split at every byte, truncated, malformed
 * and oversized.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/mqtt_connect.h"

/* MQTT 3.1.1, clean session, keepalive 60, client id "abc". */
static const uint8_t mc_v311[] = {
    0x10, 0x0f,
    0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c,
    0x00, 0x03, 'a', 'b', 'c',
};

/* MQTT 3.1 (MQIsdp, level 3), client id "sensor-17". */
static const uint8_t mc_v31[] = {
    0x10, 0x17,
    0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x02, 0x00, 0x0a,
    0x00, 0x09, 's', 'e', 'n', 's', 'o', 'r', '-', '1', '7',
};

/*
 * MQTT 5, clean start, keepalive 30, properties: session expiry interval
 * 3600 (0x11) and receive maximum 20 (0x21); client id "dev/42"; user
 * name "u" and password "pw" after it.
 */
static const uint8_t mc_v5[] = {
    0x10, 0x22,
    0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0xc2, 0x00, 0x1e,
    0x08, 0x11, 0x00, 0x00, 0x0e, 0x10, 0x21, 0x00, 0x14,
    0x00, 0x06, 'd', 'e', 'v', '/', '4', '2',
    0x00, 0x01, 'u',
    0x00, 0x02, 'p', 'w',
};

/* MQTT 3.1.1 with an empty client id (the broker assigns one). */
static const uint8_t mc_empty[] = {
    0x10, 0x0c,
    0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c,
    0x00, 0x00,
};

/* Parse <len> bytes of a copy of <pkt> (ASan then sees any overread). */
static int
mc_parse(const uint8_t *pkt, size_t len, const uint8_t **id, size_t *idlen,
         uint8_t **copy)
{
    *copy = malloc(len == 0 ? 1 : len);
    cr_assert_not_null(*copy);
    memcpy(*copy, pkt, len);
    return mqtt_connect_client_id(*copy, len, id, idlen);
}

/* <pkt> gives client id <want>, and every strict prefix of it MORE. */
static void
mc_expect_id(const uint8_t *pkt, size_t len, const char *want)
{
    const uint8_t *id;
    uint8_t *copy;
    size_t idlen, k;
    int rc;

    for (k = 0; k < len; k++) {
        rc = mc_parse(pkt, k, &id, &idlen, &copy);
        free(copy);
        if (rc == MQTT_CONNECT_OK) {
            /* the id may be complete before the packet is */
            break;
        }
        cr_assert_eq(rc, MQTT_CONNECT_MORE, "prefix of %zu bytes: %d", k,
                     rc);
    }
    rc = mc_parse(pkt, len, &id, &idlen, &copy);
    cr_assert_eq(rc, MQTT_CONNECT_OK);
    cr_assert_eq(idlen, strlen(want));
    cr_assert(memcmp(id, want, idlen) == 0);
    cr_assert(id >= copy && id + idlen <= copy + len);
    free(copy);
}

/* The first <len> bytes of <pkt> are BAD. */
static void
mc_expect_bad(const uint8_t *pkt, size_t len)
{
    const uint8_t *id;
    uint8_t *copy;
    size_t idlen;
    int rc;

    rc = mc_parse(pkt, len, &id, &idlen, &copy);
    free(copy);
    cr_assert_eq(rc, MQTT_CONNECT_BAD, "got %d", rc);
}

/* The offset just past the client id of <pkt>: OK from there on. */
static size_t
mc_id_end(const uint8_t *pkt, size_t len)
{
    const uint8_t *id;
    uint8_t *copy;
    size_t idlen, end;

    cr_assert_eq(mc_parse(pkt, len, &id, &idlen, &copy), MQTT_CONNECT_OK);
    end = (size_t)(id - copy) + idlen;
    free(copy);
    return end;
}

Test(mqtt_connect, mqtt_311_client_id)
{
    mc_expect_id(mc_v311, sizeof(mc_v311), "abc");
}

Test(mqtt_connect, mqtt_31_client_id)
{
    mc_expect_id(mc_v31, sizeof(mc_v31), "sensor-17");
}

Test(mqtt_connect, mqtt_5_skips_properties)
{
    mc_expect_id(mc_v5, sizeof(mc_v5), "dev/42");
}

Test(mqtt_connect, empty_client_id_is_ok_with_length_0)
{
    mc_expect_id(mc_empty, sizeof(mc_empty), "");
}

Test(mqtt_connect, every_prefix_before_the_id_needs_more)
{
    const uint8_t *pkts[] = { mc_v311, mc_v31, mc_v5, mc_empty };
    size_t lens[] = { sizeof(mc_v311), sizeof(mc_v31), sizeof(mc_v5),
                      sizeof(mc_empty) };
    const uint8_t *id;
    uint8_t *copy;
    size_t i, k, end, idlen;
    int rc;

    for (i = 0; i < 4; i++) {
        end = mc_id_end(pkts[i], lens[i]);
        for (k = 0; k <= lens[i]; k++) {
            rc = mc_parse(pkts[i], k, &id, &idlen, &copy);
            free(copy);
            cr_assert_eq(rc, k < end ? MQTT_CONNECT_MORE : MQTT_CONNECT_OK,
                         "packet %zu, %zu bytes: %d", i, k, rc);
        }
    }
}

Test(mqtt_connect, split_delivery_finds_the_id_once_complete)
{
    uint8_t buf[sizeof(mc_v5)];
    const uint8_t *id;
    size_t have, idlen, chunk;
    int rc;

    /* bytes arrive 3 at a time into one growing buffer */
    have = 0;
    rc = MQTT_CONNECT_MORE;
    while (rc == MQTT_CONNECT_MORE) {
        cr_assert_lt(have, sizeof(buf));
        chunk = sizeof(buf) - have < 3 ? sizeof(buf) - have : 3;
        memcpy(buf + have, mc_v5 + have, chunk);
        have += chunk;
        rc = mqtt_connect_client_id(buf, have, &id, &idlen);
    }
    cr_assert_eq(rc, MQTT_CONNECT_OK);
    cr_assert_eq(idlen, 6);
    cr_assert(memcmp(id, "dev/42", 6) == 0);
    /* the packet was not touched: it is forwarded as it is */
    cr_assert(memcmp(buf, mc_v5, have) == 0);
}

Test(mqtt_connect, not_a_connect_is_bad)
{
    uint8_t pkt[sizeof(mc_v311)];

    memcpy(pkt, mc_v311, sizeof(pkt));
    pkt[0] = 0x20;                          /* CONNACK */
    mc_expect_bad(pkt, sizeof(pkt));
    mc_expect_bad(pkt, 1);
    pkt[0] = 0x30;                          /* PUBLISH */
    mc_expect_bad(pkt, sizeof(pkt));
    pkt[0] = 0x11;                          /* CONNECT with flags */
    mc_expect_bad(pkt, sizeof(pkt));
    mc_expect_bad((const uint8_t *)"GET / HTTP/1.1\r\n", 16);
    mc_expect_bad((const uint8_t *)"\x16\x03\x01\x02\x00", 5);  /* TLS */
}

Test(mqtt_connect, bad_protocol_name_or_level)
{
    uint8_t pkt[sizeof(mc_v311)];
    uint8_t pkt31[sizeof(mc_v31)];

    memcpy(pkt, mc_v311, sizeof(pkt));
    pkt[7] = 'X';                           /* "MQTX" */
    mc_expect_bad(pkt, sizeof(pkt));
    mc_expect_bad(pkt, 8);                  /* known bad before the end */

    memcpy(pkt, mc_v311, sizeof(pkt));
    pkt[8] = 3;                             /* "MQTT" level 3 */
    mc_expect_bad(pkt, sizeof(pkt));
    pkt[8] = 6;
    mc_expect_bad(pkt, sizeof(pkt));

    memcpy(pkt, mc_v311, sizeof(pkt));
    pkt[3] = 5;                             /* name length 5 */
    mc_expect_bad(pkt, sizeof(pkt));

    memcpy(pkt31, mc_v31, sizeof(pkt31));
    pkt31[10] = 4;                          /* "MQIsdp" level 4 */
    mc_expect_bad(pkt31, sizeof(pkt31));
}

Test(mqtt_connect, bad_connect_flags)
{
    uint8_t pkt[sizeof(mc_v311)];

    memcpy(pkt, mc_v311, sizeof(pkt));
    pkt[9] = 0x03;                          /* reserved bit */
    mc_expect_bad(pkt, sizeof(pkt));
    pkt[9] = 0x1e;                          /* will QoS 3 */
    mc_expect_bad(pkt, sizeof(pkt));
    pkt[9] = 0x22;                          /* will retain, no will */
    mc_expect_bad(pkt, sizeof(pkt));
}

Test(mqtt_connect, truncated_packet_is_bad)
{
    uint8_t pkt[sizeof(mc_v311)];

    /* remaining length ends inside the client id */
    memcpy(pkt, mc_v311, sizeof(pkt));
    pkt[1] = 0x0e;
    mc_expect_bad(pkt, sizeof(pkt));
    mc_expect_bad(pkt, sizeof(pkt) - 1);    /* known before the bytes */

    /* remaining length ends inside the variable header */
    memcpy(pkt, mc_v311, sizeof(pkt));
    pkt[1] = 0x04;
    mc_expect_bad(pkt, sizeof(pkt));

    /* MQTT 5 properties run past the packet */
    {
        uint8_t p5[sizeof(mc_v5)];

        memcpy(p5, mc_v5, sizeof(p5));
        p5[12] = 0x7f;
        mc_expect_bad(p5, sizeof(p5));
    }
}

Test(mqtt_connect, remaining_length_varint)
{
    const uint8_t five[] = { 0x10, 0xff, 0xff, 0xff, 0xff, 0x01 };
    const uint8_t part[] = { 0x10, 0xff, 0xff };
    const uint8_t *id;
    size_t idlen;

    mc_expect_bad(five, sizeof(five));      /* more than 4 bytes */
    cr_assert_eq(mqtt_connect_client_id(part, sizeof(part), &id, &idlen),
                 MQTT_CONNECT_MORE);
    cr_assert_eq(mqtt_connect_client_id(part, 1, &id, &idlen),
                 MQTT_CONNECT_MORE);
    cr_assert_eq(mqtt_connect_client_id(part, 0, &id, &idlen),
                 MQTT_CONNECT_MORE);
}

Test(mqtt_connect, multi_byte_remaining_length_with_large_will)
{
    uint8_t *pkt;
    size_t rl, len, i;
    const uint8_t *id;
    size_t idlen;

    /*
     * 3.1.1 with a will of 200000 bytes: the packet is larger than
     * MQTT_CONNECT_MAX, but the id comes first and is all that is read.
     */
    rl = 10 + 2 + 3 + 2 + 5 + 2 + 200000;
    len = 4 + rl;
    pkt = calloc(1, len);
    cr_assert_not_null(pkt);
    pkt[0] = 0x10;
    pkt[1] = (uint8_t)(0x80 | (rl & 0x7f));
    pkt[2] = (uint8_t)(0x80 | ((rl >> 7) & 0x7f));
    pkt[3] = (uint8_t)(rl >> 14);
    i = 4;
    memcpy(pkt + i, "\x00\x04MQTT\x04\x06\x00\x3c", 10);   /* will QoS 0 */
    i += 10;
    memcpy(pkt + i, "\x00\x03xyz\x00\x05topic", 12);
    i += 12;
    pkt[i] = (uint8_t)(200000 >> 8 & 0xff);
    cr_assert_eq(mqtt_connect_client_id(pkt, 19, &id, &idlen),
                 MQTT_CONNECT_OK);
    cr_assert_eq(idlen, 3);
    cr_assert(memcmp(id, "xyz", 3) == 0);
    cr_assert_eq(mqtt_connect_client_id(pkt, 18, &id, &idlen),
                 MQTT_CONNECT_MORE);
    cr_assert_eq(mqtt_connect_client_id(pkt, len, &id, &idlen),
                 MQTT_CONNECT_OK);
    free(pkt);
}

Test(mqtt_connect, longest_client_id)
{
    size_t rl = 10 + 2 + 65535, len = 4 + rl;
    const uint8_t *id;
    uint8_t *pkt;
    size_t idlen;

    pkt = malloc(len);
    cr_assert_not_null(pkt);
    pkt[0] = 0x10;
    pkt[1] = (uint8_t)(0x80 | (rl & 0x7f));
    pkt[2] = (uint8_t)(0x80 | ((rl >> 7) & 0x7f));
    pkt[3] = (uint8_t)(rl >> 14);
    memcpy(pkt + 4, "\x00\x04MQTT\x04\x02\x00\x3c\xff\xff", 12);
    memset(pkt + 16, 'i', 65535);
    cr_assert_eq(mqtt_connect_client_id(pkt, len, &id, &idlen),
                 MQTT_CONNECT_OK);
    cr_assert_eq(idlen, 65535);
    cr_assert_eq(mqtt_connect_client_id(pkt, len - 1, &id, &idlen),
                 MQTT_CONNECT_MORE);
    cr_assert_leq(len, MQTT_CONNECT_MAX);
    free(pkt);
}

Test(mqtt_connect, oversized_properties_are_bad_not_more)
{
    uint8_t *pkt;
    size_t proplen = 100000, rl = 10 + 3 + proplen + 2 + 1;
    size_t len = MQTT_CONNECT_MAX;
    const uint8_t *id;
    size_t idlen;

    /* the id would end past MQTT_CONNECT_MAX: refuse, do not wait */
    pkt = calloc(1, len);
    cr_assert_not_null(pkt);
    pkt[0] = 0x10;
    pkt[1] = (uint8_t)(0x80 | (rl & 0x7f));
    pkt[2] = (uint8_t)(0x80 | ((rl >> 7) & 0x7f));
    pkt[3] = (uint8_t)(rl >> 14);
    memcpy(pkt + 4, "\x00\x04MQTT\x05\x02\x00\x3c", 10);
    pkt[14] = (uint8_t)(0x80 | (proplen & 0x7f));
    pkt[15] = (uint8_t)(0x80 | ((proplen >> 7) & 0x7f));
    pkt[16] = (uint8_t)(proplen >> 14);
    cr_assert_eq(mqtt_connect_client_id(pkt, len, &id, &idlen),
                 MQTT_CONNECT_BAD);
    cr_assert_eq(mqtt_connect_client_id(pkt, 17, &id, &idlen),
                 MQTT_CONNECT_BAD);
    free(pkt);
}

Test(mqtt_connect, client_id_must_be_utf8)
{
    uint8_t pkt[sizeof(mc_v311)];

    memcpy(pkt, mc_v311, sizeof(pkt));
    pkt[15] = 0x00;                         /* U+0000 */
    mc_expect_bad(pkt, sizeof(pkt));
    pkt[15] = 0xff;                         /* never in UTF-8 */
    mc_expect_bad(pkt, sizeof(pkt));
    pkt[14] = 0xc0;                         /* overlong "/" */
    pkt[15] = 0xaf;
    mc_expect_bad(pkt, sizeof(pkt));
    pkt[14] = 0xed;                         /* surrogate D800 */
    pkt[15] = 0xa0;
    pkt[16] = 0x80;
    mc_expect_bad(pkt, sizeof(pkt));
    pkt[14] = 0xe2;                         /* U+20AC euro sign */
    pkt[15] = 0x82;
    pkt[16] = 0xac;
    mc_expect_id(pkt, sizeof(pkt), "\xe2\x82\xac");
}

Test(mqtt_connect, random_bytes_never_overread_or_wait_forever)
{
    static uint8_t buf[MQTT_CONNECT_MAX];
    const uint8_t *id;
    uint64_t x = 0x12345678;
    size_t idlen, k, i, len;
    int rc;

    for (k = 0; k < 2000; k++) {
        len = 1 + k % 64;
        for (i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = (uint8_t)x;
        }
        /* keep most of them CONNECT-shaped to go deep */
        if (k % 4 != 0) {
            memcpy(buf, mc_v5, len < 12 ? len : 12);
        }
        rc = mqtt_connect_client_id(buf, len, &id, &idlen);
        cr_assert(rc == MQTT_CONNECT_OK || rc == MQTT_CONNECT_MORE
                  || rc == MQTT_CONNECT_BAD);
        if (rc == MQTT_CONNECT_OK) {
            cr_assert(id >= buf && id + idlen <= buf + len);
        }
    }
    /* a full buffer is never MORE */
    memcpy(buf, "\x10\xff\xff\xff\x7f\x00\x04MQTT\x05\x02\x00\x3c", 15);
    memset(buf + 15, 0xff, sizeof(buf) - 15);
    rc = mqtt_connect_client_id(buf, sizeof(buf), &id, &idlen);
    cr_assert_eq(rc, MQTT_CONNECT_BAD);
}
