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
 */
#include <stdbool.h>
#include <string.h>

#include "mqlb/heartbeat.h"

#define HEARTBEAT_MQTT_CONNECT  0x10
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
};

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
            r->remaining |= (uint32_t)(byte & 0x7f) << r->shift;
            r->shift += 7;
            if ((byte & 0x80) == 0) {
                heartbeat_goto(r, HB_MQTT_VARHDR);
            } else if (r->shift >= 28) {
                res = HEARTBEAT_NONE;
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
