/*
 * probe_amqp.c: the amqp check. Sends the AMQP 0-9-1 protocol header and
 * passes on a well-formed Connection.Start method frame on channel 0. A
 * server that does not speak 0-9-1 answers with the header it wants
 * instead, and the check fails naming that version.
 */
#include <stdio.h>
#include <string.h>

#include "mqlb/probe.h"

#define PROBE_AMQP_HEADER       "AMQP\x00\x00\x09\x01"
#define PROBE_AMQP_HEADER_LEN   8
#define PROBE_AMQP_FRAME_HEAD   7       /* type, channel, size */
#define PROBE_AMQP_FRAME_METHOD 1
#define PROBE_AMQP_FRAME_END    0xce
#define PROBE_AMQP_CONNECTION   10      /* class id */
#define PROBE_AMQP_START        10      /* Connection.Start method id */

static void
probe_amqp_start(struct probe *p)
{
    probe_out_append(p, PROBE_AMQP_HEADER, PROBE_AMQP_HEADER_LEN);
}

static uint32_t
probe_amqp_u32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16
           | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/*
 * Skip a long string or table (uint32 length, then bytes) at <*at> in a
 * payload of <len> bytes; false if it runs past the end.
 */
static bool
probe_amqp_skip_long(const uint8_t *payload, size_t len, size_t *at)
{
    uint32_t n;

    if (len - *at < 4) {
        return false;
    }
    n = probe_amqp_u32(payload + *at);
    *at += 4;
    if (n > len - *at) {
        return false;
    }
    *at += n;
    return true;
}

/*
 * Connection.Start arguments: version-major, version-minor octets, then
 * server-properties (table), mechanisms and locales (long strings). All
 * of them must fit the frame.
 */
static bool
probe_amqp_start_ok(const uint8_t *payload, size_t len)
{
    size_t at;

    at = 4 + 2;
    if (len < at) {
        return false;
    }
    return probe_amqp_skip_long(payload, len, &at)
           && probe_amqp_skip_long(payload, len, &at)
           && probe_amqp_skip_long(payload, len, &at);
}

static enum probe_verdict
probe_amqp_judge(struct probe *p, const uint8_t *buf, size_t len)
{
    const uint8_t *payload;
    uint32_t       size;
    unsigned       cls, method;

    if (len == 0) {
        return PROBE_MORE;
    }
    if (buf[0] == 'A') {
        /* Version mismatch: the server sent the header it speaks. */
        if (probe_match(buf, len, "AMQP", 4) == PROBE_FAIL) {
            goto unexpected;
        }
        if (len < PROBE_AMQP_HEADER_LEN) {
            return probe_more(p, len);
        }
        if (memcmp(buf, PROBE_AMQP_HEADER, PROBE_AMQP_HEADER_LEN) == 0) {
            return probe_fail(p, "amqp protocol header sent back: "
                              "not an AMQP 0-9-1 broker");
        }
        return probe_fail(p, "amqp version mismatch: server offers "
                          "AMQP %u-%u-%u (protocol id %u)",
                          (unsigned)buf[5], (unsigned)buf[6],
                          (unsigned)buf[7], (unsigned)buf[4]);
    }
    if (buf[0] != PROBE_AMQP_FRAME_METHOD) {
        goto unexpected;
    }
    if (len < PROBE_AMQP_FRAME_HEAD) {
        return probe_more(p, len);
    }
    if (buf[1] != 0 || buf[2] != 0) {
        goto unexpected;
    }
    size = probe_amqp_u32(buf + 3);
    if (size > PROBE_IN_MAX - PROBE_AMQP_FRAME_HEAD - 1) {
        return probe_fail(p, "amqp frame too large (%u bytes)",
                          (unsigned)size);
    }
    if (len < PROBE_AMQP_FRAME_HEAD + (size_t)size + 1) {
        return probe_more(p, len);
    }
    if (buf[PROBE_AMQP_FRAME_HEAD + size] != PROBE_AMQP_FRAME_END) {
        return probe_fail(p, "amqp frame without its frame-end octet");
    }
    if (size < 4) {
        goto unexpected;
    }
    payload = buf + PROBE_AMQP_FRAME_HEAD;
    cls = (unsigned)payload[0] << 8 | payload[1];
    method = (unsigned)payload[2] << 8 | payload[3];
    if (cls != PROBE_AMQP_CONNECTION || method != PROBE_AMQP_START) {
        return probe_fail(p, "amqp method %u.%u instead of Connection.Start",
                          cls, method);
    }
    if (!probe_amqp_start_ok(payload, size)) {
        return probe_fail(p, "amqp Connection.Start is malformed");
    }
    return PROBE_PASS;

unexpected:
    probe_fail_unexpected(p, buf, len);
    return PROBE_FAIL;
}

const struct probe_ops probe_amqp_ops = {
    .name = "amqp",
    .start = probe_amqp_start,
    .judge = probe_amqp_judge,
};
