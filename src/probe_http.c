/*
 * probe_http.c: the http check. Sends "GET <path> HTTP/1.1" with a Host
 * header and Connection: close, and judges the status line alone: 2xx
 * and 3xx pass, anything else fails naming the status. With check_user
 * or check_password it sends "Authorization: Basic" (RFC 7617), and a 401
 * or 403 then fails as a refused login.
 */
#include <stdio.h>
#include <string.h>

#include "mqlb/probe.h"

#define PROBE_HTTP_STATUS_LEN   12      /* "HTTP/1.1 200" */

/* Values of p->step. */
enum probe_http_step {
    PROBE_HTTP_SENT = 0,        /* request sent */
    PROBE_HTTP_TOO_LONG,        /* path and host do not fit p->out */
};

/*
 * Append <len> bytes of <s> to p->out at <*at>, percent-encoding what may
 * not appear in a request line when <encode> is set; false if full.
 */
static bool
probe_http_put(struct probe *p, size_t *at, const char *s, size_t len,
               bool encode)
{
    static const char hex[] = "0123456789ABCDEF";
    uint8_t           c;
    size_t            i;

    for (i = 0; i < len; i++) {
        c = (uint8_t)s[i];
        if (encode && (c <= 0x20 || c >= 0x7f)) {
            if (*at + 3 > sizeof(p->out)) {
                return false;
            }
            p->out[(*at)++] = '%';
            p->out[(*at)++] = (uint8_t)hex[c >> 4];
            p->out[(*at)++] = (uint8_t)hex[c & 0x0f];
            continue;
        }
        if (*at + 1 > sizeof(p->out)) {
            return false;
        }
        p->out[(*at)++] = c;
    }
    return true;
}

/*
 * Base64 (RFC 4648, padded) of "<user>:<password>" into <out> (<cap>
 * bytes, NUL-terminated); false if it does not fit.
 */
static bool
probe_http_basic(const struct probe_params *pp, char *out, size_t cap)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char     plain[2 * PROBE_CRED_MAX + 2];
    uint32_t v;
    size_t   n, i, at = 0;
    int      len;

    len = snprintf(plain, sizeof(plain), "%s:%s",
                   pp->user != NULL ? pp->user : "",
                   pp->password != NULL ? pp->password : "");
    if (len < 0 || (size_t)len >= sizeof(plain)) {
        return false;
    }
    n = (size_t)len;
    if ((n + 2) / 3 * 4 + 1 > cap) {
        return false;
    }
    for (i = 0; i < n; i += 3) {
        v = (uint32_t)(uint8_t)plain[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t)(uint8_t)plain[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= (uint8_t)plain[i + 2];
        }
        out[at++] = b64[(v >> 18) & 63];
        out[at++] = b64[(v >> 12) & 63];
        out[at++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[at++] = i + 2 < n ? b64[v & 63] : '=';
    }
    out[at] = '\0';
    return true;
}

static void
probe_http_start(struct probe *p)
{
    static const char auth[] = "\r\nAuthorization: Basic ";
    static const char get[] = "GET ";
    static const char host[] = " HTTP/1.1\r\nHost: ";
    static const char tail[] = "\r\nUser-Agent: mqlb-check\r\n"
                               "Connection: close\r\n\r\n";
    const char       *path, *h;
    char              basic[(2 * PROBE_CRED_MAX + 4) / 3 * 4 + 1];
    size_t            at;
    bool              ok;

    path = "/";
    h = "localhost";
    if (p->params != NULL && p->params->path != NULL) {
        path = p->params->path;
    }
    if (p->params != NULL && p->params->host != NULL) {
        h = p->params->host;
    }
    at = 0;
    if (!probe_http_put(p, &at, get, sizeof(get) - 1, false)
        || !probe_http_put(p, &at, path, strlen(path), true)
        || !probe_http_put(p, &at, host, sizeof(host) - 1, false)
        || !probe_http_put(p, &at, h, strlen(h), true))
    {
        ok = false;
    } else if (probe_has_auth(p->params)) {
        ok = probe_http_basic(p->params, basic, sizeof(basic))
             && probe_http_put(p, &at, auth, sizeof(auth) - 1, false)
             && probe_http_put(p, &at, basic, strlen(basic), false);
    } else {
        ok = true;
    }
    if (!ok || !probe_http_put(p, &at, tail, sizeof(tail) - 1, false)) {
        /* Sending nothing; the first reply byte, if any, fails the check. */
        p->step = PROBE_HTTP_TOO_LONG;
        p->outlen = 0;
        return;
    }
    p->outlen = at;
}

static bool
probe_http_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static enum probe_verdict
probe_http_judge(struct probe *p, const uint8_t *buf, size_t len)
{
    unsigned status;

    if (p->step == PROBE_HTTP_TOO_LONG) {
        return probe_fail(p, "http request too long for %d bytes",
                          PROBE_OUT_MAX);
    }
    /* "HTTP/1." then the minor version, a space and three digits. */
    if (probe_match(buf, len, "HTTP/1.", 7) == PROBE_FAIL
        || (len > 7 && !probe_http_digit(buf[7]))
        || (len > 8 && buf[8] != ' ')
        || (len > 9 && !probe_http_digit(buf[9]))
        || (len > 10 && !probe_http_digit(buf[10]))
        || (len > 11 && !probe_http_digit(buf[11]))
        || (len > 12 && buf[12] != ' ' && buf[12] != '\r'))
    {
        probe_fail_unexpected(p, buf, len);
        return PROBE_FAIL;
    }
    /* The byte after the code tells a status line from a longer number. */
    if (len <= PROBE_HTTP_STATUS_LEN) {
        return probe_more(p, len);
    }
    status = (unsigned)(buf[9] - '0') * 100 + (unsigned)(buf[10] - '0') * 10
             + (unsigned)(buf[11] - '0');
    if ((status == 401 || status == 403) && probe_has_auth(p->params)) {
        return probe_fail(p, PROBE_AUTH_REFUSED ": http status %u", status);
    }
    if (status < 200 || status > 399) {
        return probe_fail(p, "http status %u", status);
    }
    return PROBE_PASS;
}

const struct probe_ops probe_http_ops = {
    .name = "http",
    .start = probe_http_start,
    .judge = probe_http_judge,
};
