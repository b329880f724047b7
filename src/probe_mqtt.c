/*
 * probe_mqtt.c: the mqtt check. Sends an MQTT 3.1.1 CONNECT with a clean
 * session and passes on CONNACK return code 0, leaving a DISCONNECT in
 * p->out so that the broker sees a clean goodbye rather than a reset.
 */
#include <stdio.h>
#include <string.h>

#include "mqlb/common.h"
#include "mqlb/probe.h"

#define PROBE_MQTT_CONNECT      0x10
#define PROBE_MQTT_CONNACK      0x20
#define PROBE_MQTT_LEVEL        4       /* MQTT 3.1.1 */
#define PROBE_MQTT_CLEAN        0x02    /* connect flags: clean session */
#define PROBE_MQTT_KEEPALIVE_S  10
#define PROBE_MQTT_CLIENT_ID    "mqlb-check"
#define PROBE_MQTT_ID_MAX       256     /* longer ids are cut */

/* CONNACK return codes 0..5 (MQTT 3.1.1, 3.2.2.3). */
static const char *const probe_mqtt_codes[] = {
    "accepted",
    "unacceptable protocol version",
    "identifier rejected",
    "server unavailable",
    "bad user name or password",
    "not authorized",
};

static void
probe_mqtt_start(struct probe *p)
{
    const char *id;
    size_t      idlen, rem, at;
    uint8_t    *o;

    id = PROBE_MQTT_CLIENT_ID;
    if (p->params != NULL && p->params->client_id != NULL) {
        id = p->params->client_id;
    }
    idlen = strlen(id);
    if (idlen > PROBE_MQTT_ID_MAX) {
        idlen = PROBE_MQTT_ID_MAX;
    }
    /* Variable header (10 bytes) then the client id as a UTF-8 string. */
    rem = 10 + 2 + idlen;
    o = p->out;
    at = 0;
    o[at++] = PROBE_MQTT_CONNECT;
    /* Remaining length: at most 268 here, so one or two 7-bit groups. */
    if (rem < 128) {
        o[at++] = (uint8_t)rem;
    } else {
        o[at++] = (uint8_t)((rem & 0x7f) | 0x80);
        o[at++] = (uint8_t)(rem >> 7);
    }
    memcpy(o + at, "\x00\x04MQTT", 6);
    at += 6;
    o[at++] = PROBE_MQTT_LEVEL;
    o[at++] = PROBE_MQTT_CLEAN;
    o[at++] = 0;
    o[at++] = PROBE_MQTT_KEEPALIVE_S;
    o[at++] = (uint8_t)(idlen >> 8);
    o[at++] = (uint8_t)(idlen & 0xff);
    memcpy(o + at, id, idlen);
    at += idlen;
    p->outlen = at;
}

static enum probe_verdict
probe_mqtt_judge(struct probe *p, const uint8_t *buf, size_t len)
{
    unsigned rc;

    if (len == 0) {
        return PROBE_MORE;
    }
    if (buf[0] != PROBE_MQTT_CONNACK) {
        goto unexpected;
    }
    if (len < 2) {
        return probe_more(p, len);
    }
    if (buf[1] != 2) {
        goto unexpected;
    }
    if (len < 4) {
        return probe_more(p, len);
    }
    /* Only bit 0 (session present) of the acknowledge flags is defined. */
    if ((buf[2] & 0xfe) != 0) {
        goto unexpected;
    }
    rc = buf[3];
    if (rc != 0) {
        return probe_fail(p, "connack refused: %u (%s)", rc,
                          rc < MQ_NELEMS(probe_mqtt_codes)
                          ? probe_mqtt_codes[rc] : "unknown code");
    }
    probe_out_append(p, "\xe0\x00", 2);
    return PROBE_PASS;

unexpected:
    probe_fail_unexpected(p, buf, len);
    return PROBE_FAIL;
}

const struct probe_ops probe_mqtt_ops = {
    .name = "mqtt",
    .start = probe_mqtt_start,
    .judge = probe_mqtt_judge,
};
