/*
 * probe_mqtt.c: the mqtt check. Sends an MQTT 3.1.1 CONNECT with a clean
 * session and passes on CONNACK return code 0, leaving a DISCONNECT in
 * p->out so that the broker sees a clean goodbye rather than a reset.
 * check_user and check_password go into the CONNECT's user name and
 * password fields (MQTT 3.1.1 allows a password only with a user name).
 */
#include <stdio.h>
#include <string.h>

#include "mqlb/common.h"
#include "mqlb/probe.h"

#define PROBE_MQTT_CONNECT      0x10
#define PROBE_MQTT_CONNACK      0x20
#define PROBE_MQTT_LEVEL        4       /* MQTT 3.1.1 */
#define PROBE_MQTT_CLEAN        0x02    /* connect flags: clean session */
#define PROBE_MQTT_PASSWORD     0x40    /* connect flags: password follows */
#define PROBE_MQTT_USER         0x80    /* connect flags: user name follows */
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

/* Write the UTF-8 string <s> of <len> bytes (u16 length first) at <o>. */
static size_t
probe_mqtt_string(uint8_t *o, const char *s, size_t len)
{
    o[0] = (uint8_t)(len >> 8);
    o[1] = (uint8_t)(len & 0xff);
    memcpy(o + 2, s, len);
    return 2 + len;
}

static void
probe_mqtt_start(struct probe *p)
{
    const struct probe_params *pp = p->params;
    const char *id, *user = NULL, *pass = NULL;
    size_t      idlen, ulen = 0, plen = 0, rem, at;
    uint8_t    *o, flags = PROBE_MQTT_CLEAN;

    id = PROBE_MQTT_CLIENT_ID;
    if (pp != NULL && pp->client_id != NULL) {
        id = pp->client_id;
    }
    idlen = strlen(id);
    if (idlen > PROBE_MQTT_ID_MAX) {
        idlen = PROBE_MQTT_ID_MAX;
    }
    if (pp != NULL && pp->user != NULL) {
        user = pp->user;
        ulen = MQ_MIN(strlen(user), (size_t)PROBE_CRED_MAX);
        flags |= PROBE_MQTT_USER;
        if (pp->password != NULL) {
            pass = pp->password;
            plen = MQ_MIN(strlen(pass), (size_t)PROBE_CRED_MAX);
            flags |= PROBE_MQTT_PASSWORD;
        }
    }
    /* Variable header (10 bytes) then the client id, user, password. */
    rem = 10 + 2 + idlen + (user != NULL ? 2 + ulen : 0) +
          (pass != NULL ? 2 + plen : 0);
    o = p->out;
    at = 0;
    o[at++] = PROBE_MQTT_CONNECT;
    /* Remaining length: under 16384 here, so one or two 7-bit groups. */
    if (rem < 128) {
        o[at++] = (uint8_t)rem;
    } else {
        o[at++] = (uint8_t)((rem & 0x7f) | 0x80);
        o[at++] = (uint8_t)(rem >> 7);
    }
    memcpy(o + at, "\x00\x04MQTT", 6);
    at += 6;
    o[at++] = PROBE_MQTT_LEVEL;
    o[at++] = flags;
    o[at++] = 0;
    o[at++] = PROBE_MQTT_KEEPALIVE_S;
    at += probe_mqtt_string(o + at, id, idlen);
    if (user != NULL) {
        at += probe_mqtt_string(o + at, user, ulen);
    }
    if (pass != NULL) {
        at += probe_mqtt_string(o + at, pass, plen);
    }
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
    if ((rc == 4 || rc == 5) && probe_has_auth(p->params)) {
        return probe_fail(p, PROBE_AUTH_REFUSED ": connack %u (%s)", rc,
                          probe_mqtt_codes[rc]);
    }
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
