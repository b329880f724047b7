/*
 * heartbeat.c: read the keepalive a client announces, one byte at a time,
 * so that the stream may be split anywhere. The bytes are only looked at.
 *
 * MQTT (first byte 0x10, a CONNECT):
 *   0x10, remaining length (varint), protocol name (u16 length 4 "MQTT"
 *   or 6 "MQIsdp"), level (u8), flags (u8), keep alive (u16 seconds)
 * AMQP 0-9-1 (first bytes "AMQP" 0 0 9 1), then frames:
 *   type (u8), channel (u16), size (u32), payload, frame end 0xCE;
 *   a method frame (type 1) on channel 0 starts with class (u16) and
 *   method (u16); Connection.Tune-Ok is 10/31: channel-max (u16),
 *   frame-max (u32), heartbeat (u16 seconds).
 * Anything else: NONE, and the caller keeps its default.
 *
 * The broker's answer to an MQTT 5 CONNECT (heartbeat_connack_feed):
 *   AUTH packets (0xf0, remaining length, passed over), then
 *   0x20, remaining length, ack flags (u8), reason code (u8),
 *   property length (varint), properties: identifier (u8), value by the
 *   identifier's type (u8, u16, u32, string or binary: u16 length and
 *   bytes, string pair); Server Keep Alive is 0x13 (u16 seconds).
 */
#include <stdbool.h>
#include <string.h>

#include "mqlb/heartbeat.h"

#define HEARTBEAT_MQTT_CONNECT  0x10
#define HEARTBEAT_MQTT_CONNACK  0x20
#define HEARTBEAT_MQTT_AUTH     0xf0
#define HEARTBEAT_MQTT_V5       5       /* protocol level of MQTT 5 */
#define HEARTBEAT_MQTT_SERVER_KA 0x13   /* CONNACK: Server Keep Alive */
#define HEARTBEAT_AMQP_FRAME_END 0xce
#define HEARTBEAT_AMQP_METHOD   1
#define HEARTBEAT_AMQP_CONN     10      /* the connection class */
#define HEARTBEAT_AMQP_TUNE_OK  31

/* Positions in the grammar above. */
enum heartbeat_step {
    HB_DETECT = 0,
    HB_MQTT_REMLEN,
    HB_MQTT_VARHDR,
    HB_AMQP_PROTO,
    HB_AMQP_FRAME,
    HB_AMQP_METHOD,
    HB_AMQP_TUNE_OK,
    HB_AMQP_SKIP,
    HB_AMQP_END,
    HB_ACK_PACKET,      /* the broker's stream: a packet's first byte */
    HB_ACK_REMLEN,
    HB_ACK_AUTH,        /* passing over an AUTH packet */
    HB_ACK_HEAD,        /* CONNACK ack flags and reason code */
    HB_ACK_PROPLEN,
    HB_ACK_PROPID,
    HB_ACK_VALUE,       /* a fixed-size property value */
    HB_ACK_STRLEN,      /* the length of a string or binary value */
    HB_ACK_STRING,      /* passing over its bytes */
};

/* Property values that are not of a fixed size (heartbeat_prop_size). */
#define HB_PROP_STRING  (-1)    /* a string or binary data: u16 length */
#define HB_PROP_PAIR    (-2)    /* a string pair (user property) */

static const uint8_t heartbeat_amqp_header[8] = {
    'A', 'M', 'Q', 'P', 0, 0, 9, 1
};

void
heartbeat_init(struct heartbeat_reader *r)
{
    memset(r, 0, sizeof(*r));
}

static uint32_t
heartbeat_be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t
heartbeat_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

/* Start collecting a new fixed-size piece at <step>. */
static void
heartbeat_goto(struct heartbeat_reader *r, enum heartbeat_step step)
{
    r->step = step;
    r->nacc = 0;
}

static enum heartbeat_result
heartbeat_end(struct heartbeat_reader *r, enum heartbeat_result res)
{
    r->result = res;
    return res;
}

/*
 * MQTT variable header so far in r->acc: name length, name, level, flags,
 * keep alive. Returns MORE until the keep alive is in.
 */
static enum heartbeat_result
heartbeat_mqtt_varhdr(struct heartbeat_reader *r)
{
    uint32_t namelen;

    if (r->nacc < 2) {
        return HEARTBEAT_MORE;
    }
    namelen = heartbeat_be16(r->acc);
    if (namelen != 4 && namelen != 6) {
        return HEARTBEAT_NONE;
    }
    if (r->nacc < 2 + namelen + 4) {
        return HEARTBEAT_MORE;
    }
    if (r->remaining < 2 + namelen + 4 ||
        (namelen == 4 && memcmp(r->acc + 2, "MQTT", 4) != 0) ||
        (namelen == 6 && memcmp(r->acc + 2, "MQIsdp", 6) != 0)) {
        return HEARTBEAT_NONE;
    }
    r->level = r->acc[2 + namelen];
    r->interval_s = heartbeat_be16(r->acc + 2 + namelen + 2);
    return HEARTBEAT_FOUND;
}

/* A whole AMQP frame header is in r->acc: decide what to read of it. */
static enum heartbeat_result
heartbeat_amqp_frame(struct heartbeat_reader *r)
{
    uint8_t type = r->acc[0];
    uint32_t channel = heartbeat_be16(r->acc + 1);

    r->remaining = heartbeat_be32(r->acc + 3);
    if (++r->nframes > HEARTBEAT_AMQP_MAX_FRAMES) {
        return HEARTBEAT_NONE;
    }
    if (type == HEARTBEAT_AMQP_METHOD && channel == 0 && r->remaining >= 4) {
        heartbeat_goto(r, HB_AMQP_METHOD);
    } else {
        r->skip = r->remaining;
        heartbeat_goto(r, HB_AMQP_SKIP);
    }
    return HEARTBEAT_MORE;
}

/* Class and method of a channel-0 method frame are in r->acc. */
static enum heartbeat_result
heartbeat_amqp_method(struct heartbeat_reader *r)
{
    uint32_t cls = heartbeat_be16(r->acc);
    uint32_t method = heartbeat_be16(r->acc + 2);

    if (cls != HEARTBEAT_AMQP_CONN) {
        /* Past the connection handshake: Tune-Ok will not come. */
        return HEARTBEAT_NONE;
    }
    if (method == HEARTBEAT_AMQP_TUNE_OK) {
        if (r->remaining < 4 + 8) {
            return HEARTBEAT_NONE;
        }
        heartbeat_goto(r, HB_AMQP_TUNE_OK);
        return HEARTBEAT_MORE;
    }
    r->skip = r->remaining - 4;
    heartbeat_goto(r, HB_AMQP_SKIP);
    return HEARTBEAT_MORE;
}

/* Collect up to <want> bytes into r->acc; true once it holds them. */
static bool
heartbeat_collect(struct heartbeat_reader *r, uint8_t byte, unsigned want)
{
    if (r->nacc < sizeof(r->acc)) {
        r->acc[r->nacc++] = byte;
    }
    return r->nacc >= want;
}

/*
 * One byte of an MQTT variable byte integer into <*value> (r->shift
 * counts its bits so far): FOUND when it is whole, MORE while bytes
 * follow, NONE past its four bytes.
 */
static enum heartbeat_result
heartbeat_varint(struct heartbeat_reader *r, uint32_t *value, uint8_t byte)
{
    *value |= (uint32_t)(byte & 0x7f) << r->shift;
    r->shift += 7;
    if ((byte & 0x80) == 0) {
        return HEARTBEAT_FOUND;
    }
    return r->shift >= 28 ? HEARTBEAT_NONE : HEARTBEAT_MORE;
}

enum heartbeat_result
heartbeat_feed(struct heartbeat_reader *r, const uint8_t *p, size_t n)
{
    enum heartbeat_result res = HEARTBEAT_MORE;
    size_t i = 0, take;
    uint8_t byte;

    while (r->result == HEARTBEAT_MORE && i < n) {
        if (r->step == HB_AMQP_SKIP) {
            /* Pass over a frame's payload without looking at it. */
            take = n - i < r->skip ? n - i : (size_t)r->skip;
            r->skip -= take;
            i += take;
            if (r->skip == 0) {
                heartbeat_goto(r, HB_AMQP_END);
            }
            continue;
        }
        byte = p[i];
        switch (r->step) {
        case HB_DETECT:
            if (byte == HEARTBEAT_MQTT_CONNECT) {
                r->proto = HEARTBEAT_MQTT;
                heartbeat_goto(r, HB_MQTT_REMLEN);
                i++;
            } else if (byte == 'A') {
                r->proto = HEARTBEAT_AMQP;
                heartbeat_goto(r, HB_AMQP_PROTO);   /* 'A' read there */
            } else {
                res = HEARTBEAT_NONE;
            }
            break;
        case HB_MQTT_REMLEN:
            i++;
            res = heartbeat_varint(r, &r->remaining, byte);
            if (res == HEARTBEAT_FOUND) {
                heartbeat_goto(r, HB_MQTT_VARHDR);
                res = HEARTBEAT_MORE;
            }
            break;
        case HB_MQTT_VARHDR:
            i++;
            heartbeat_collect(r, byte, 0);
            res = heartbeat_mqtt_varhdr(r);
            break;
        case HB_AMQP_PROTO:
            i++;
            if (heartbeat_collect(r, byte, sizeof(heartbeat_amqp_header))) {
                if (memcmp(r->acc, heartbeat_amqp_header,
                           sizeof(heartbeat_amqp_header)) != 0) {
                    res = HEARTBEAT_NONE;
                } else {
                    heartbeat_goto(r, HB_AMQP_FRAME);
                }
            } else if (r->acc[r->nacc - 1] !=
                       heartbeat_amqp_header[r->nacc - 1]) {
                res = HEARTBEAT_NONE;
            }
            break;
        case HB_AMQP_FRAME:
            i++;
            if (heartbeat_collect(r, byte, 7)) {
                res = heartbeat_amqp_frame(r);
            }
            break;
        case HB_AMQP_METHOD:
            i++;
            if (heartbeat_collect(r, byte, 4)) {
                res = heartbeat_amqp_method(r);
            }
            break;
        case HB_AMQP_TUNE_OK:
            i++;
            if (heartbeat_collect(r, byte, 8)) {
                r->interval_s = heartbeat_be16(r->acc + 6);
                res = HEARTBEAT_FOUND;
            }
            break;
        case HB_AMQP_END:
            i++;
            if (byte != HEARTBEAT_AMQP_FRAME_END) {
                res = HEARTBEAT_NONE;
            } else {
                heartbeat_goto(r, HB_AMQP_FRAME);
            }
            break;
        default:
            res = HEARTBEAT_NONE;
            break;
        }
        if (res != HEARTBEAT_MORE) {
            return heartbeat_end(r, res);
        }
    }
    return r->result;
}

uint64_t
heartbeat_timeout_ms(const struct heartbeat_reader *r)
{
    if (r->result != HEARTBEAT_FOUND || r->interval_s == 0) {
        return 0;
    }
    if (r->proto == HEARTBEAT_MQTT) {
        return (uint64_t)r->interval_s * 1500 + 1000;
    }
    return (uint64_t)r->interval_s * 2000 + 1000;
}

const char *
heartbeat_proto_name(enum heartbeat_proto proto)
{
    switch (proto) {
    case HEARTBEAT_MQTT:
        return "mqtt";
    case HEARTBEAT_AMQP:
        return "amqp";
    case HEARTBEAT_UNKNOWN:
        break;
    }
    return "other";
}

/* ---- the broker's answer to an MQTT 5 CONNECT ------------------------ */

bool
heartbeat_connack_wanted(const struct heartbeat_reader *r)
{
    return r->result == HEARTBEAT_FOUND && r->proto == HEARTBEAT_MQTT &&
           r->level == HEARTBEAT_MQTT_V5;
}

void
heartbeat_connack_init(struct heartbeat_reader *r)
{
    enum heartbeat_proto proto = r->proto;
    uint32_t interval_s = r->interval_s;
    uint8_t level = r->level;

    memset(r, 0, sizeof(*r));
    r->proto = proto;
    r->level = level;
    r->interval_s = interval_s;
    r->step = HB_ACK_PACKET;
}

/*
 * The layout of the value of CONNACK property <id> (MQTT 5, 3.2.2.3):
 * its size in bytes, HB_PROP_STRING or HB_PROP_PAIR; 0 for an identifier
 * a CONNACK does not carry.
 */
static int
heartbeat_prop_size(uint8_t id)
{
    switch (id) {
    case 0x24:      /* Maximum QoS */
    case 0x25:      /* Retain Available */
    case 0x28:      /* Wildcard Subscription Available */
    case 0x29:      /* Subscription Identifiers Available */
    case 0x2a:      /* Shared Subscription Available */
        return 1;
    case 0x13:      /* Server Keep Alive */
    case 0x21:      /* Receive Maximum */
    case 0x22:      /* Topic Alias Maximum */
        return 2;
    case 0x11:      /* Session Expiry Interval */
    case 0x27:      /* Maximum Packet Size */
        return 4;
    case 0x12:      /* Assigned Client Identifier */
    case 0x15:      /* Authentication Method */
    case 0x16:      /* Authentication Data (binary, laid out alike) */
    case 0x1a:      /* Response Information */
    case 0x1c:      /* Server Reference */
    case 0x1f:      /* Reason String */
        return HB_PROP_STRING;
    case 0x26:      /* User Property */
        return HB_PROP_PAIR;
    default:
        return 0;
    }
}

/* The properties end here or the next one starts. */
static enum heartbeat_result
heartbeat_connack_next(struct heartbeat_reader *r)
{
    if (r->props > 0) {
        heartbeat_goto(r, HB_ACK_PROPID);
        return HEARTBEAT_MORE;
    }
    if (!r->has_server) {
        return HEARTBEAT_NONE;
    }
    r->interval_s = r->server_s;
    return HEARTBEAT_FOUND;
}

/* Read the u16 length of the next string of a property, if it fits. */
static enum heartbeat_result
heartbeat_connack_strlen(struct heartbeat_reader *r)
{
    if (r->props < 2) {
        return HEARTBEAT_NONE;
    }
    r->props -= 2;
    heartbeat_goto(r, HB_ACK_STRLEN);
    return HEARTBEAT_MORE;
}

/* A string of a property was passed over: the next one, or the next
 * property. */
static enum heartbeat_result
heartbeat_connack_string_done(struct heartbeat_reader *r)
{
    if (--r->nstr > 0) {
        return heartbeat_connack_strlen(r);
    }
    return heartbeat_connack_next(r);
}

/* A string's length is in r->acc: pass over its bytes, if they fit. */
static enum heartbeat_result
heartbeat_connack_string(struct heartbeat_reader *r)
{
    uint32_t len = heartbeat_be16(r->acc);

    if (len > r->props) {
        return HEARTBEAT_NONE;
    }
    r->props -= len;
    if (len == 0) {
        return heartbeat_connack_string_done(r);
    }
    r->skip = len;
    heartbeat_goto(r, HB_ACK_STRING);
    return HEARTBEAT_MORE;
}

/* A property identifier: how to read its value, if it fits. */
static enum heartbeat_result
heartbeat_connack_propid(struct heartbeat_reader *r, uint8_t id)
{
    int size = heartbeat_prop_size(id);

    r->props--;
    r->prop = id;
    if (size == 0 || (id == HEARTBEAT_MQTT_SERVER_KA && r->has_server)) {
        /* Unknown, or given twice (a protocol error): trust nothing. */
        return HEARTBEAT_NONE;
    }
    if (size > 0) {
        if (r->props < (uint32_t)size) {
            return HEARTBEAT_NONE;
        }
        r->props -= (uint32_t)size;
        heartbeat_goto(r, HB_ACK_VALUE);
        return HEARTBEAT_MORE;
    }
    r->nstr = size == HB_PROP_PAIR ? 2 : 1;
    return heartbeat_connack_strlen(r);
}

/* The remaining length of a packet is in: what follows of it. */
static enum heartbeat_result
heartbeat_connack_packet(struct heartbeat_reader *r)
{
    if (r->packet == HEARTBEAT_MQTT_AUTH) {
        if (r->remaining == 0) {
            heartbeat_goto(r, HB_ACK_PACKET);
        } else {
            r->skip = r->remaining;
            heartbeat_goto(r, HB_ACK_AUTH);
        }
        return HEARTBEAT_MORE;
    }
    /* Flags and reason code, then at least a property length: a CONNACK
     * of two bytes (MQTT 3.1.1's, or one without properties) says
     * nothing. */
    if (r->remaining < 3) {
        return HEARTBEAT_NONE;
    }
    heartbeat_goto(r, HB_ACK_HEAD);
    return HEARTBEAT_MORE;
}

/* One byte of the broker's stream, outside the passages skipped. */
static enum heartbeat_result
heartbeat_connack_byte(struct heartbeat_reader *r, uint8_t byte)
{
    enum heartbeat_result res;
    int size;

    switch (r->step) {
    case HB_ACK_PACKET:
        if (byte == HEARTBEAT_MQTT_AUTH) {
            if (++r->nframes > HEARTBEAT_MQTT_MAX_AUTH) {
                return HEARTBEAT_NONE;
            }
        } else if (byte != HEARTBEAT_MQTT_CONNACK) {
            return HEARTBEAT_NONE;
        }
        r->packet = byte;
        r->remaining = 0;
        r->shift = 0;
        heartbeat_goto(r, HB_ACK_REMLEN);
        return HEARTBEAT_MORE;
    case HB_ACK_REMLEN:
        res = heartbeat_varint(r, &r->remaining, byte);
        return res == HEARTBEAT_FOUND ? heartbeat_connack_packet(r) : res;
    case HB_ACK_HEAD:
        if (!heartbeat_collect(r, byte, 2)) {
            return HEARTBEAT_MORE;
        }
        /* Reserved flag bits set, or a reason code other than Success
         * (a refusal: the broker closes the connection). */
        if ((r->acc[0] & 0xfe) != 0 || r->acc[1] != 0) {
            return HEARTBEAT_NONE;
        }
        r->remaining -= 2;
        r->props = 0;
        r->shift = 0;
        heartbeat_goto(r, HB_ACK_PROPLEN);
        return HEARTBEAT_MORE;
    case HB_ACK_PROPLEN:
        if (r->remaining == 0) {
            return HEARTBEAT_NONE;
        }
        r->remaining--;
        res = heartbeat_varint(r, &r->props, byte);
        if (res != HEARTBEAT_FOUND) {
            return res;
        }
        /* A CONNACK has no payload: its properties fill the rest. */
        if (r->props != r->remaining) {
            return HEARTBEAT_NONE;
        }
        return heartbeat_connack_next(r);
    case HB_ACK_PROPID:
        return heartbeat_connack_propid(r, byte);
    case HB_ACK_VALUE:
        size = heartbeat_prop_size(r->prop);
        if (!heartbeat_collect(r, byte, (unsigned)size)) {
            return HEARTBEAT_MORE;
        }
        if (r->prop == HEARTBEAT_MQTT_SERVER_KA) {
            r->server_s = (uint16_t)heartbeat_be16(r->acc);
            r->has_server = 1;
        }
        return heartbeat_connack_next(r);
    case HB_ACK_STRLEN:
        if (!heartbeat_collect(r, byte, 2)) {
            return HEARTBEAT_MORE;
        }
        return heartbeat_connack_string(r);
    default:
        return HEARTBEAT_NONE;
    }
}

enum heartbeat_result
heartbeat_connack_feed(struct heartbeat_reader *r, const uint8_t *p, size_t n)
{
    enum heartbeat_result res;
    size_t i = 0, take;

    while (r->result == HEARTBEAT_MORE && i < n) {
        if (r->step == HB_ACK_AUTH || r->step == HB_ACK_STRING) {
            /* Pass over an AUTH packet or a string without looking. */
            take = n - i < r->skip ? n - i : (size_t)r->skip;
            r->skip -= take;
            i += take;
            if (r->skip > 0) {
                continue;
            }
            if (r->step == HB_ACK_AUTH) {
                heartbeat_goto(r, HB_ACK_PACKET);
                continue;
            }
            res = heartbeat_connack_string_done(r);
        } else {
            res = heartbeat_connack_byte(r, p[i++]);
        }
        if (res != HEARTBEAT_MORE) {
            return heartbeat_end(r, res);
        }
    }
    return r->result;
}
