/*
 * probe_kafka.c: the kafka check. Sends ApiVersions v0 (the request every
 * broker since 0.10 answers, whatever its version) and passes on a
 * well-formed reply with our correlation id and error code 0. Layout from
 * the Kafka protocol guide (https://kafka.apache.org/protocol):
 *
 *   request  int32 size, int16 api_key = 18, int16 api_version = 0,
 *            int32 correlation_id, int16 client_id length, client_id
 *   response int32 size, int32 correlation_id, int16 error_code,
 *            int32 count, count x (int16 api_key, min_version, max_version)
 */
#include <stdio.h>
#include <string.h>

#include "mqlb/probe.h"

#define PROBE_KAFKA_API_VERSIONS    18
#define PROBE_KAFKA_CORR_ID         0x6d716c62u     /* "mqlb" */
#define PROBE_KAFKA_CLIENT_ID       "mqlb"
#define PROBE_KAFKA_HEAD            10  /* corr id, error code, count */
#define PROBE_KAFKA_ENTRY           6   /* api_key, min, max */

static void
probe_kafka_put16(uint8_t *b, uint16_t v)
{
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}

static void
probe_kafka_put32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

static uint32_t
probe_kafka_get32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16
           | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static void
probe_kafka_start(struct probe *p)
{
    size_t idlen;

    /*
     * A fixed id is enough: one request per connection, and it cannot be
     * mistaken for an echo of our own bytes (those read 0x00120000).
     */
    p->corr_id = PROBE_KAFKA_CORR_ID;
    idlen = sizeof(PROBE_KAFKA_CLIENT_ID) - 1;
    probe_kafka_put32(p->out, (uint32_t)(2 + 2 + 4 + 2 + idlen));
    probe_kafka_put16(p->out + 4, PROBE_KAFKA_API_VERSIONS);
    probe_kafka_put16(p->out + 6, 0);
    probe_kafka_put32(p->out + 8, p->corr_id);
    probe_kafka_put16(p->out + 12, (uint16_t)idlen);
    memcpy(p->out + 14, PROBE_KAFKA_CLIENT_ID, idlen);
    p->outlen = 14 + idlen;
}

static enum probe_verdict
probe_kafka_judge(struct probe *p, const uint8_t *buf, size_t len)
{
    const uint8_t *body;
    uint32_t       size, count;
    int16_t        error;

    if (len < 4) {
        return PROBE_MORE;
    }
    size = probe_kafka_get32(buf);
    if (size > PROBE_IN_MAX - 4) {
        return probe_fail(p, "kafka reply too large (%u bytes)",
                          (unsigned)size);
    }
    if (size < PROBE_KAFKA_HEAD - 4) {
        goto unexpected;
    }
    /* The correlation id comes first: a stranger's reply fails early. */
    if (len >= 8 && probe_kafka_get32(buf + 4) != p->corr_id) {
        goto unexpected;
    }
    if (len < 4 + (size_t)size) {
        return probe_more(p, len);
    }
    body = buf + 4;
    error = (int16_t)((uint16_t)body[4] << 8 | body[5]);
    if (error != 0) {
        return probe_fail(p, "kafka error code %d", (int)error);
    }
    if (size < PROBE_KAFKA_HEAD) {
        goto unexpected;
    }
    count = probe_kafka_get32(body + 6);
    if (count > (size - PROBE_KAFKA_HEAD) / PROBE_KAFKA_ENTRY
        || PROBE_KAFKA_HEAD + count * PROBE_KAFKA_ENTRY != size)
    {
        return probe_fail(p, "kafka ApiVersions reply is malformed "
                          "(%u bytes, %u entries)", (unsigned)size,
                          (unsigned)count);
    }
    return PROBE_PASS;

unexpected:
    probe_fail_unexpected(p, buf, len);
    return PROBE_FAIL;
}

const struct probe_ops probe_kafka_ops = {
    .name = "kafka",
    .start = probe_kafka_start,
    .judge = probe_kafka_judge,
};
