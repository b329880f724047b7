/*
 * tls_hello.c: the ClientHello reader behind SNI passthrough (RFC 8446
 * 4.1.2, RFC 6066 3, RFC 7301 3.1):
 *
 *   record     0x16 | 0x03 0x0N | u16 length          (5 bytes)
 *   handshake  0x01 | u24 length                      (4 bytes)
 *   hello      u16 version | 32 random | u8 session id | u16 ciphers |
 *              u8 compression | [u16 extensions: {u16 type, u16 len}...]
 *
 * Every check that can be made on a prefix is made as soon as its bytes
 * are there, so garbage is refused after one byte, and a prefix only ever
 * answers MORE or what the whole input answers (the fuzz target holds
 * this to account).
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "mqlb/tls_hello.h"

#define TLS_HELLO_CONTENT_HANDSHAKE 0x16
#define TLS_HELLO_TYPE_CLIENT_HELLO 0x01
#define TLS_HELLO_EXT_SERVER_NAME   0
#define TLS_HELLO_EXT_ALPN          16
#define TLS_HELLO_NAME_HOST         0

/* A bounded reader over one length-delimited field. */
struct tls_hello_cur {
    const uint8_t      *p;          /* next byte */
    const uint8_t      *end;        /* one past the field */
};

static bool
tls_hello_take(struct tls_hello_cur *c, size_t n, const uint8_t **at)
{
    if ((size_t)(c->end - c->p) < n) {
        return false;
    }
    *at = c->p;
    c->p += n;
    return true;
}

static bool
tls_hello_u8(struct tls_hello_cur *c, size_t *v)
{
    const uint8_t *at;

    if (!tls_hello_take(c, 1, &at)) {
        return false;
    }
    *v = at[0];
    return true;
}

static bool
tls_hello_u16(struct tls_hello_cur *c, size_t *v)
{
    const uint8_t *at;

    if (!tls_hello_take(c, 2, &at)) {
        return false;
    }
    *v = (size_t)at[0] << 8 | at[1];
    return true;
}

/* A sub-cursor over the next <n> bytes of <c>. */
static bool
tls_hello_sub(struct tls_hello_cur *c, size_t n, struct tls_hello_cur *sub)
{
    const uint8_t *at;

    if (!tls_hello_take(c, n, &at)) {
        return false;
    }
    sub->p = at;
    sub->end = at + n;
    return true;
}

/* server_name: the first host_name entry, printable ASCII, 1..255. */
static bool
tls_hello_server_name(struct tls_hello_cur *ext, struct tls_hello *h)
{
    struct tls_hello_cur list, name;
    size_t n, type, i;

    if (!tls_hello_u16(ext, &n) || !tls_hello_sub(ext, n, &list)
        || ext->p != ext->end || n == 0)
    {
        return false;
    }
    while (list.p < list.end) {
        if (!tls_hello_u8(&list, &type) || !tls_hello_u16(&list, &n)
            || !tls_hello_sub(&list, n, &name))
        {
            return false;
        }
        if (type != TLS_HELLO_NAME_HOST || h->sni != NULL) {
            continue;
        }
        if (n == 0 || n > TLS_HELLO_NAME_MAX) {
            return false;
        }
        for (i = 0; i < n; i++) {
            if (name.p[i] <= 0x20 || name.p[i] >= 0x7f) {
                return false;
            }
        }
        h->sni = name.p;
        h->snilen = n;
    }
    return true;
}

/* application_layer_protocol_negotiation: the first protocol offered. */
static bool
tls_hello_alpn(struct tls_hello_cur *ext, struct tls_hello *h)
{
    struct tls_hello_cur list, proto;
    size_t n;

    if (!tls_hello_u16(ext, &n) || !tls_hello_sub(ext, n, &list)
        || ext->p != ext->end || n == 0)
    {
        return false;
    }
    while (list.p < list.end) {
        if (!tls_hello_u8(&list, &n) || n == 0
            || !tls_hello_sub(&list, n, &proto))
        {
            return false;
        }
        if (h->alpn == NULL) {
            h->alpn = proto.p;
            h->alpnlen = n;
        }
    }
    return true;
}

/* The ClientHello body in <c>; false if malformed. */
static bool
tls_hello_body(struct tls_hello_cur *c, struct tls_hello *h)
{
    struct tls_hello_cur exts, ext;
    const uint8_t *at;
    size_t n, type;

    if (!tls_hello_u16(c, &n)) {
        return false;
    }
    h->version = (uint16_t)n;
    if (!tls_hello_take(c, 32, &at)                     /* random */
        || !tls_hello_u8(c, &n) || n > 32 || !tls_hello_take(c, n, &at)
        || !tls_hello_u16(c, &n) || n < 2 || n % 2 != 0
        || !tls_hello_take(c, n, &at)
        || !tls_hello_u8(c, &n) || n < 1 || !tls_hello_take(c, n, &at))
    {
        return false;
    }
    if (c->p == c->end) {
        return true;            /* no extensions (SSL 3 style) */
    }
    if (!tls_hello_u16(c, &n) || !tls_hello_sub(c, n, &exts)) {
        return false;
    }
    while (exts.p < exts.end) {
        if (!tls_hello_u16(&exts, &type) || !tls_hello_u16(&exts, &n)
            || !tls_hello_sub(&exts, n, &ext))
        {
            return false;
        }
        if (type == TLS_HELLO_EXT_SERVER_NAME
            && !tls_hello_server_name(&ext, h))
        {
            return false;
        }
        if (type == TLS_HELLO_EXT_ALPN && !tls_hello_alpn(&ext, h)) {
            return false;
        }
    }
    return true;
}

int
tls_hello_parse(const uint8_t *buf, size_t len, struct tls_hello *h)
{
    struct tls_hello_cur c;
    size_t reclen, hslen;

    memset(h, 0, sizeof(*h));
    if (len >= 1 && buf[0] != TLS_HELLO_CONTENT_HANDSHAKE) {
        return TLS_HELLO_BAD;
    }
    if (len >= 2 && buf[1] != 0x03) {
        return TLS_HELLO_BAD;
    }
    if (len >= 3 && buf[2] > 0x04) {
        return TLS_HELLO_BAD;
    }
    if (len < 5) {
        return TLS_HELLO_MORE;
    }
    reclen = (size_t)buf[3] << 8 | buf[4];
    if (reclen < 4 || reclen > TLS_HELLO_RECORD_MAX) {
        return TLS_HELLO_BAD;
    }
    if (len >= 6 && buf[5] != TLS_HELLO_TYPE_CLIENT_HELLO) {
        return TLS_HELLO_BAD;
    }
    if (len < 9) {
        return TLS_HELLO_MORE;
    }
    hslen = (size_t)buf[6] << 16 | (size_t)buf[7] << 8 | buf[8];
    if (hslen + 4 > reclen) {
        /* Split over several records: not read (nor by HAProxy). */
        return TLS_HELLO_BAD;
    }
    if (len < 5 + reclen) {
        /* The whole record, so that it can be passed on in one piece. */
        return TLS_HELLO_MORE;
    }
    c.p = buf + 9;
    c.end = c.p + hslen;
    if (!tls_hello_body(&c, h) || c.p != c.end) {
        memset(h, 0, sizeof(*h));
        return TLS_HELLO_BAD;
    }
    h->len = 5 + reclen;
    return TLS_HELLO_OK;
}

int
tls_hello_sni_match(const char *pattern, const uint8_t *name, size_t len)
{
    size_t plen;

    if (strcmp(pattern, "*") == 0) {
        return 1;
    }
    if (name == NULL) {
        return 0;
    }
    if (len > 0 && name[len - 1] == '.') {
        len--;                  /* a fully qualified name's root dot */
    }
    plen = strlen(pattern);
    if (plen >= 2 && pattern[0] == '*' && pattern[1] == '.') {
        /* "*.example.com": the name ends in ".example.com", and has
         * something before it. */
        return len > plen - 1 && strncasecmp((const char *)name + len
                                             - (plen - 1), pattern + 1,
                                             plen - 1) == 0;
    }
    return len == plen && strncasecmp((const char *)name, pattern,
                                      len) == 0;
}
