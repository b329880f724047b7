/*
 * probe.c: picks the probe for a check kind and holds the helpers every
 * probe_<kind>.c shares, so that all reasons look alike.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mqlb/probe.h"

#define PROBE_SHOW_MAX  32      /* reply bytes shown in "unexpected reply" */

const struct probe_ops *
probe_ops_for(enum config_check check)
{
    switch (check) {
    case CHECK_REDIS:
        return &probe_redis_ops;
    case CHECK_REDIS_MASTER:
        return &probe_redis_master_ops;
    case CHECK_AMQP:
        return &probe_amqp_ops;
    case CHECK_MQTT:
        return &probe_mqtt_ops;
    case CHECK_NATS:
        return &probe_nats_ops;
    case CHECK_KAFKA:
        return &probe_kafka_ops;
    case CHECK_HTTP:
        return &probe_http_ops;
    case CHECK_SEND_EXPECT:
        return &probe_send_expect_ops;
    case CHECK_TCP:
    case CHECK_NONE:
        break;
    }
    return NULL;
}

void
probe_init(struct probe *p, const struct probe_ops *ops,
           const struct probe_params *params)
{
    memset(p, 0, sizeof(*p));
    p->ops = ops;
    p->params = params;
    if (ops != NULL && ops->start != NULL) {
        ops->start(p);
    }
}

bool
probe_has_auth(const struct probe_params *params)
{
    return params != NULL &&
           (params->user != NULL || params->password != NULL);
}

enum probe_verdict
probe_fail(struct probe *p, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
    va_end(ap);
    return PROBE_FAIL;
}

enum probe_verdict
probe_more(struct probe *p, size_t len)
{
    if (len >= PROBE_IN_MAX) {
        return probe_fail(p, "reply too long (%zu bytes without a verdict)",
                          len);
    }
    return PROBE_MORE;
}

/*
 * Escape one byte <c> into <tmp> (4 bytes at least): printable ASCII as
 * is, "\\" for a backslash, \r \n \t, and \xHH for the rest.
 */
static size_t
probe_escape_byte(char *tmp, uint8_t c)
{
    static const char hex[] = "0123456789abcdef";

    switch (c) {
    case '\r':
        memcpy(tmp, "\\r", 2);
        return 2;
    case '\n':
        memcpy(tmp, "\\n", 2);
        return 2;
    case '\t':
        memcpy(tmp, "\\t", 2);
        return 2;
    case '\\':
        memcpy(tmp, "\\\\", 2);
        return 2;
    default:
        break;
    }
    if (c >= 0x20 && c < 0x7f) {
        tmp[0] = (char)c;
        return 1;
    }
    tmp[0] = '\\';
    tmp[1] = 'x';
    tmp[2] = hex[c >> 4];
    tmp[3] = hex[c & 0x0f];
    return 4;
}

size_t
probe_escape(char *dst, size_t size, const uint8_t *src, size_t len)
{
    char   tmp[4];
    size_t i, n, at;

    if (size == 0) {
        return 0;
    }
    at = 0;
    for (i = 0; i < len; i++) {
        n = probe_escape_byte(tmp, src[i]);
        if (at + n + 1 > size) {
            break;
        }
        memcpy(dst + at, tmp, n);
        at += n;
    }
    dst[at] = '\0';
    return i;
}

void
probe_fail_unexpected(struct probe *p, const uint8_t *buf, size_t len)
{
    static const char prefix[] = "unexpected reply: ";
    size_t at, room, shown;

    memcpy(p->reason, prefix, sizeof(prefix));
    at = sizeof(prefix) - 1;
    if (len == 0) {
        snprintf(p->reason + at, sizeof(p->reason) - at, "(nothing)");
        return;
    }
    /* Keep room for "..." so that a cut reply says it was cut. */
    room = sizeof(p->reason) - at - 3;
    shown = probe_escape(p->reason + at, room, buf,
                         len < PROBE_SHOW_MAX ? len : PROBE_SHOW_MAX);
    if (shown < len) {
        strcat(p->reason, "...");
    }
}

void
probe_out_append(struct probe *p, const void *data, size_t len)
{
    /* Whole messages only: a cut one would confuse the server more. */
    if (len > sizeof(p->out) - p->outlen) {
        return;
    }
    memcpy(p->out + p->outlen, data, len);
    p->outlen += len;
}

enum probe_verdict
probe_match(const uint8_t *buf, size_t len, const char *lit, size_t litlen)
{
    if (len == 0) {
        return litlen == 0 ? PROBE_PASS : PROBE_MORE;
    }
    if (len >= litlen) {
        return memcmp(buf, lit, litlen) == 0 ? PROBE_PASS : PROBE_FAIL;
    }
    return memcmp(buf, lit, len) == 0 ? PROBE_MORE : PROBE_FAIL;
}

bool
probe_line(const uint8_t *buf, size_t len, size_t *linelen, size_t *used)
{
    const uint8_t *nl;
    size_t         n;

    if (len == 0) {
        return false;
    }
    nl = memchr(buf, '\n', len);
    if (nl == NULL) {
        return false;
    }
    n = (size_t)(nl - buf);
    *used = n + 1;
    if (n > 0 && buf[n - 1] == '\r') {
        n--;
    }
    *linelen = n;
    return true;
}
