/*
 * mqtt_connect.c: read the client identifier out of an MQTT CONNECT
 * (3.1 "MQIsdp" level 3, 3.1.1 "MQTT" level 4, 5 "MQTT" level 5). The
 * bytes are only looked at; the caller forwards them unchanged. Layout:
 *
 *   fixed header    0x10, remaining length (varint, 1..4 bytes)
 *   variable header protocol name (u16 length + bytes), level (u8),
 *                   connect flags (u8), keep alive (u16),
 *                   MQTT 5 only: properties length (varint) + properties
 *   payload         client identifier (u16 length + UTF-8), then will,
 *                   user name, password as the flags say (not read here)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mqlb/mqtt_connect.h"

#define MQTT_CONNECT_TYPE       0x10    /* packet type 1, flags 0 */
#define MQTT_CONNECT_VARINT_MAX 4       /* bytes of a variable byte integer */

#define MQTT_CONNECT_F_RESERVED 0x01    /* must be 0 (3.1.1, 5) */
#define MQTT_CONNECT_F_WILL     0x04    /* a will message follows */
#define MQTT_CONNECT_F_WILL_QOS 0x18    /* will QoS, 0..2 */
#define MQTT_CONNECT_F_RETAIN   0x20    /* will retain */

/* A cursor over the part of a CONNECT received so far. */
struct mqtt_connect_reader {
    const uint8_t  *buf;        /* what the client sent */
    size_t          len;        /* bytes of <buf> received */
    size_t          pos;        /* next byte to read */
    size_t          end;        /* end of the packet, as its header says */
};

/*
 * Make sure <n> more bytes are there. BAD if they would run past the end
 * the packet announced or past MQTT_CONNECT_MAX (so MORE is never asked
 * of a caller holding that many bytes); MORE if they are not received yet.
 */
static int
mqtt_connect_need(const struct mqtt_connect_reader *r, size_t n)
{
    if (n > r->end - r->pos || r->pos + n > MQTT_CONNECT_MAX) {
        return MQTT_CONNECT_BAD;
    }
    if (r->pos + n > r->len) {
        return MQTT_CONNECT_MORE;
    }
    return MQTT_CONNECT_OK;
}

/*
 * Decode a variable byte integer at <r->pos> into <*out> and move past
 * it. At most 4 bytes; a continuation bit on the 4th is malformed.
 */
static int
mqtt_connect_varint(struct mqtt_connect_reader *r, uint32_t *out)
{
    uint32_t value;
    unsigned i;
    uint8_t byte;
    int rc;

    value = 0;
    for (i = 0; i < MQTT_CONNECT_VARINT_MAX; i++) {
        rc = mqtt_connect_need(r, 1);
        if (rc != MQTT_CONNECT_OK) {
            return rc;
        }
        byte = r->buf[r->pos++];
        value |= (uint32_t)(byte & 0x7f) << (7 * i);
        if ((byte & 0x80) == 0) {
            *out = value;
            return MQTT_CONNECT_OK;
        }
    }
    return MQTT_CONNECT_BAD;
}

/* Read a big-endian u16 at <r->pos> into <*out> and move past it. */
static int
mqtt_connect_u16(struct mqtt_connect_reader *r, uint16_t *out)
{
    int rc;

    rc = mqtt_connect_need(r, 2);
    if (rc != MQTT_CONNECT_OK) {
        return rc;
    }
    *out = (uint16_t)((r->buf[r->pos] << 8) | r->buf[r->pos + 1]);
    r->pos += 2;
    return MQTT_CONNECT_OK;
}

/*
 * Is <s> (<n> bytes) well-formed UTF-8 without U+0000, as MQTT requires
 * of every string? Rejects overlong forms, surrogates and > U+10FFFF.
 */
static bool
mqtt_connect_utf8_ok(const uint8_t *s, size_t n)
{
    size_t i, k, more;
    uint32_t cp, min;

    for (i = 0; i < n; i += more + 1) {
        if (s[i] == 0x00) {
            return false;
        } else if (s[i] < 0x80) {
            more = 0;
            continue;
        } else if ((s[i] & 0xe0) == 0xc0) {
            more = 1;
            cp = s[i] & 0x1f;
            min = 0x80;
        } else if ((s[i] & 0xf0) == 0xe0) {
            more = 2;
            cp = s[i] & 0x0f;
            min = 0x800;
        } else if ((s[i] & 0xf8) == 0xf0) {
            more = 3;
            cp = s[i] & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (more > n - i - 1) {
            return false;
        }
        for (k = 1; k <= more; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
    }
    return true;
}

/*
 * Check the protocol name and level at <r->pos> and move past them.
 * <*level> is 3 (MQTT 3.1), 4 (3.1.1) or 5.
 */
static int
mqtt_connect_protocol(struct mqtt_connect_reader *r, uint8_t *level)
{
    const uint8_t *name;
    uint16_t namelen;
    int rc;

    rc = mqtt_connect_u16(r, &namelen);
    if (rc != MQTT_CONNECT_OK) {
        return rc;
    }
    if (namelen != 4 && namelen != 6) {
        return MQTT_CONNECT_BAD;
    }
    rc = mqtt_connect_need(r, namelen);
    if (rc != MQTT_CONNECT_OK) {
        return rc;
    }
    /* the name alone tells an MQTT client from anything else: say so early */
    name = &r->buf[r->pos];
    r->pos += namelen;
    if (memcmp(name, namelen == 4 ? "MQTT" : "MQIsdp", namelen) != 0) {
        return MQTT_CONNECT_BAD;
    }

    rc = mqtt_connect_need(r, 1);
    if (rc != MQTT_CONNECT_OK) {
        return rc;
    }
    *level = r->buf[r->pos++];
    if (namelen == 4 && (*level == 4 || *level == 5)) {
        return MQTT_CONNECT_OK;
    }
    if (namelen == 6 && *level == 3) {
        return MQTT_CONNECT_OK;
    }
    return MQTT_CONNECT_BAD;
}

/*
 * Check the connect flags at <r->pos> for protocol <level> and move past
 * them. Only what 3.1.1 and 5 say a server must reject is checked.
 */
static int
mqtt_connect_flags(struct mqtt_connect_reader *r, uint8_t level)
{
    uint8_t flags;
    int rc;

    rc = mqtt_connect_need(r, 1);
    if (rc != MQTT_CONNECT_OK) {
        return rc;
    }
    flags = r->buf[r->pos++];
    if (level < 4) {
        return MQTT_CONNECT_OK;
    }
    if ((flags & MQTT_CONNECT_F_RESERVED) != 0
        || (flags & MQTT_CONNECT_F_WILL_QOS) == MQTT_CONNECT_F_WILL_QOS)
    {
        return MQTT_CONNECT_BAD;
    }
    if ((flags & MQTT_CONNECT_F_WILL) == 0
        && (flags & (MQTT_CONNECT_F_WILL_QOS | MQTT_CONNECT_F_RETAIN)) != 0)
    {
        return MQTT_CONNECT_BAD;
    }
    return MQTT_CONNECT_OK;
}

int
mqtt_connect_client_id(const uint8_t *buf, size_t len,
                       const uint8_t **id, size_t *idlen)
{
    struct mqtt_connect_reader r;
    uint32_t remaining, proplen;
    uint16_t keepalive, n;
    uint8_t level;
    int rc;

    if (len == 0) {
        return MQTT_CONNECT_MORE;
    }
    if (buf[0] != MQTT_CONNECT_TYPE) {
        return MQTT_CONNECT_BAD;
    }

    r.buf = buf;
    r.len = len;
    r.pos = 1;
    r.end = MQTT_CONNECT_MAX;
    rc = mqtt_connect_varint(&r, &remaining);
    if (rc != MQTT_CONNECT_OK) {
        return rc;
    }
    /*
     * A remaining length past MQTT_CONNECT_MAX is fine (a large will or
     * password): only the bytes up to the client identifier must fit.
     */
    r.end = r.pos + remaining;

    rc = mqtt_connect_protocol(&r, &level);
    if (rc != MQTT_CONNECT_OK) {
        return rc;
    }
    rc = mqtt_connect_flags(&r, level);
    if (rc != MQTT_CONNECT_OK) {
        return rc;
    }
    rc = mqtt_connect_u16(&r, &keepalive);
    if (rc != MQTT_CONNECT_OK) {
        return rc;
    }
    if (level == 5) {
        rc = mqtt_connect_varint(&r, &proplen);
        if (rc != MQTT_CONNECT_OK) {
            return rc;
        }
        rc = mqtt_connect_need(&r, proplen);
        if (rc != MQTT_CONNECT_OK) {
            return rc;
        }
        r.pos += proplen;
    }

    rc = mqtt_connect_u16(&r, &n);
    if (rc != MQTT_CONNECT_OK) {
        return rc;
    }
    rc = mqtt_connect_need(&r, n);
    if (rc != MQTT_CONNECT_OK) {
        return rc;
    }
    if (!mqtt_connect_utf8_ok(&buf[r.pos], n)) {
        return MQTT_CONNECT_BAD;
    }
    *id = &buf[r.pos];
    *idlen = n;
    return MQTT_CONNECT_OK;
}
