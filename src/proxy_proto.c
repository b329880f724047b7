/*
 * proxy_proto.c: PROXY protocol headers, versions 1 (text) and 2
 * (binary), as HAProxy's doc/proxy-protocol.txt specifies them:
 *
 *   v1  "PROXY TCP4 <src> <dst> <sport> <dport>\r\n"  (TCP6 alike;
 *       "PROXY UNKNOWN\r\n" when the addresses cannot be given)
 *   v2  12-byte signature, ver_cmd 0x21 (v2, PROXY), family 0x11 (TCP4)
 *       or 0x21 (TCP6) or 0x00 (UNSPEC), u16 length of what follows,
 *       then src addr, dst addr, src port, dst port in network order
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "mqlb/common.h"
#include "mqlb/proxy_proto.h"

#define PROXY_PROTO_SIG_LEN     12      /* v2 signature */
#define PROXY_PROTO_V2_HDR      16      /* signature, ver_cmd, fam, len */
#define PROXY_PROTO_V2_LOCAL    0x20    /* v2, LOCAL: no relayed client */
#define PROXY_PROTO_V2_PROXY    0x21    /* v2, PROXY: addresses follow */
#define PROXY_PROTO_FAM_UNSPEC  0x00
#define PROXY_PROTO_FAM_TCP4    0x11
#define PROXY_PROTO_FAM_TCP6    0x21
#define PROXY_PROTO_LEN_INET    12      /* 2 x 4 address + 2 x 2 port */
#define PROXY_PROTO_LEN_INET6   36      /* 2 x 16 address + 2 x 2 port */
#define PROXY_PROTO_LEN_UNIX    216     /* 2 x 108 path */

static const uint8_t proxy_proto_sig[PROXY_PROTO_SIG_LEN] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};

/* One endpoint, normalised for writing. */
struct proxy_proto_addr {
    int             family;     /* AF_INET, AF_INET6 or AF_UNSPEC */
    bool            mapped;     /* AF_INET6 holding ::ffff:a.b.c.d */
    uint8_t         ip[16];     /* network order; 4 bytes used for v4 */
    uint16_t        port;       /* network order */
};

/* Normalise <sa> (may be NULL) into <a>. */
static void
proxy_proto_addr_get(const struct sockaddr *sa, struct proxy_proto_addr *a)
{
    const struct sockaddr_in *sin;
    const struct sockaddr_in6 *sin6;

    memset(a, 0, sizeof(*a));
    a->family = AF_UNSPEC;
    if (sa == NULL) {
        return;
    }
    if (sa->sa_family == AF_INET) {
        sin = (const struct sockaddr_in *)(const void *)sa;
        a->family = AF_INET;
        memcpy(a->ip, &sin->sin_addr, 4);
        a->port = sin->sin_port;
    } else if (sa->sa_family == AF_INET6) {
        sin6 = (const struct sockaddr_in6 *)(const void *)sa;
        a->family = AF_INET6;
        a->mapped = IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr);
        memcpy(a->ip, &sin6->sin6_addr, 16);
        a->port = sin6->sin6_port;
    }
}

/* Rewrite <a> as AF_INET (it is AF_INET or mapped). */
static void
proxy_proto_addr_down(struct proxy_proto_addr *a)
{
    if (a->family == AF_INET6) {
        memmove(a->ip, &a->ip[12], 4);
        memset(&a->ip[4], 0, 12);
        a->family = AF_INET;
        a->mapped = false;
    }
}

/* Rewrite <a> as AF_INET6, mapping an IPv4 address up. */
static void
proxy_proto_addr_up(struct proxy_proto_addr *a)
{
    if (a->family == AF_INET) {
        memmove(&a->ip[12], a->ip, 4);
        memset(a->ip, 0, 10);
        a->ip[10] = 0xff;
        a->ip[11] = 0xff;
        a->family = AF_INET6;
        a->mapped = true;
    }
}

/*
 * Bring <s> and <d> to one family: AF_INET when both can be IPv4,
 * AF_INET6 otherwise, AF_UNSPEC when either is not an IP address.
 */
static int
proxy_proto_family(struct proxy_proto_addr *s, struct proxy_proto_addr *d)
{
    if (s->family == AF_UNSPEC || d->family == AF_UNSPEC) {
        return AF_UNSPEC;
    }
    if ((s->family == AF_INET || s->mapped)
        && (d->family == AF_INET || d->mapped))
    {
        proxy_proto_addr_down(s);
        proxy_proto_addr_down(d);
        return AF_INET;
    }
    proxy_proto_addr_up(s);
    proxy_proto_addr_up(d);
    return AF_INET6;
}

/* The v1 line for <s>/<d> of <family> into <out>: length, 0 if no room. */
static size_t
proxy_proto_write_v1(int family, const struct proxy_proto_addr *s,
                     const struct proxy_proto_addr *d, uint8_t *out,
                     size_t cap)
{
    char line[PROXY_PROTO_V1_MAX + 1];
    char sip[INET6_ADDRSTRLEN], dip[INET6_ADDRSTRLEN];
    int n;

    if (family == AF_UNSPEC) {
        n = snprintf(line, sizeof(line), "PROXY UNKNOWN\r\n");
    } else {
        if (inet_ntop(family, s->ip, sip, sizeof(sip)) == NULL
            || inet_ntop(family, d->ip, dip, sizeof(dip)) == NULL)
        {
            return 0;
        }
        n = snprintf(line, sizeof(line), "PROXY %s %s %s %u %u\r\n",
                     family == AF_INET ? "TCP4" : "TCP6", sip, dip,
                     (unsigned)ntohs(s->port), (unsigned)ntohs(d->port));
    }
    if (n < 0 || (size_t)n >= sizeof(line) || (size_t)n > cap) {
        return 0;
    }
    memcpy(out, line, (size_t)n);
    return (size_t)n;
}

/* The v2 header for <s>/<d> of <family> into <out>: length, 0 if no room. */
static size_t
proxy_proto_write_v2(int family, const struct proxy_proto_addr *s,
                     const struct proxy_proto_addr *d, uint8_t *out,
                     size_t cap)
{
    size_t alen, addrlen;
    uint8_t fam;
    uint8_t *p;

    if (family == AF_INET) {
        fam = PROXY_PROTO_FAM_TCP4;
        alen = 4;
    } else if (family == AF_INET6) {
        fam = PROXY_PROTO_FAM_TCP6;
        alen = 16;
    } else {
        fam = PROXY_PROTO_FAM_UNSPEC;
        alen = 0;
    }
    addrlen = alen == 0 ? 0 : 2 * alen + 4;
    if (cap < PROXY_PROTO_V2_HDR + addrlen) {
        return 0;
    }

    p = out;
    memcpy(p, proxy_proto_sig, PROXY_PROTO_SIG_LEN);
    p += PROXY_PROTO_SIG_LEN;
    *p++ = PROXY_PROTO_V2_PROXY;
    *p++ = fam;
    *p++ = (uint8_t)(addrlen >> 8);
    *p++ = (uint8_t)(addrlen & 0xff);
    if (alen != 0) {
        memcpy(p, s->ip, alen);
        p += alen;
        memcpy(p, d->ip, alen);
        p += alen;
        /* ports are kept in network order already */
        memcpy(p, &s->port, 2);
        p += 2;
        memcpy(p, &d->port, 2);
        p += 2;
    }
    return (size_t)(p - out);
}

size_t
proxy_proto_write(int version, const struct sockaddr *src,
                  const struct sockaddr *dst, uint8_t *out, size_t cap)
{
    struct proxy_proto_addr s, d;
    int family;

    proxy_proto_addr_get(src, &s);
    proxy_proto_addr_get(dst, &d);
    family = proxy_proto_family(&s, &d);

    if (version == 1) {
        return proxy_proto_write_v1(family, &s, &d, out, cap);
    }
    if (version == 2) {
        return proxy_proto_write_v2(family, &s, &d, out, cap);
    }
    return 0;
}

size_t
proxy_proto_write_local(int version, uint8_t *out, size_t cap)
{
    static const char v1[] = "PROXY UNKNOWN\r\n";

    if (version == 1) {
        if (cap < sizeof(v1) - 1) {
            return 0;
        }
        memcpy(out, v1, sizeof(v1) - 1);
        return sizeof(v1) - 1;
    }
    if (version != 2 || cap < PROXY_PROTO_V2_HDR) {
        return 0;
    }
    memcpy(out, proxy_proto_sig, PROXY_PROTO_SIG_LEN);
    out[12] = PROXY_PROTO_V2_LOCAL;
    out[13] = PROXY_PROTO_FAM_UNSPEC;
    out[14] = 0;
    out[15] = 0;
    return PROXY_PROTO_V2_HDR;
}

/* Append TLV <type> of <n> bytes <v> at <*p>, if it fits before <end>. */
static bool
proxy_proto_tlv_put(uint8_t **p, const uint8_t *end, uint8_t type,
                    const void *v, size_t n)
{
    if (n > 0xffff || (size_t)(end - *p) < 3 + n) {
        return false;
    }
    (*p)[0] = type;
    (*p)[1] = (uint8_t)(n >> 8);
    (*p)[2] = (uint8_t)(n & 0xff);
    memcpy(*p + 3, v, n);
    *p += 3 + n;
    return true;
}

size_t
proxy_proto_write_tls(const struct sockaddr *src, const struct sockaddr *dst,
                      const struct proxy_proto_tls *tls, uint8_t *out,
                      size_t cap)
{
    const uint8_t *end = out + cap;
    uint8_t *p, *ssl;
    size_t n, body;
    uint32_t verify;

    n = proxy_proto_write(2, src, dst, out, cap);
    if (n == 0) {
        return 0;
    }
    p = out + n;
    if (tls->alpn != NULL && tls->alpnlen > 0
        && !proxy_proto_tlv_put(&p, end, PP2_TYPE_ALPN, tls->alpn,
                                tls->alpnlen))
    {
        return 0;
    }
    if (tls->sni != NULL && tls->snilen > 0
        && !proxy_proto_tlv_put(&p, end, PP2_TYPE_AUTHORITY, tls->sni,
                                tls->snilen))
    {
        return 0;
    }
    /* PP2_TYPE_SSL: u8 client, u32 verify, then the sub-TLVs. */
    if (end - p < 8) {
        return 0;
    }
    ssl = p;
    ssl[0] = PP2_TYPE_SSL;
    ssl[3] = PP2_CLIENT_SSL;
    verify = 0;
    if (tls->cert) {
        ssl[3] |= PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS;
        verify = htonl(tls->verify);
    }
    memcpy(ssl + 4, &verify, 4);
    p += 8;
    if ((tls->version != NULL
         && !proxy_proto_tlv_put(&p, end, PP2_SUBTYPE_SSL_VERSION,
                                 tls->version, strlen(tls->version)))
        || (tls->cn != NULL && tls->cnlen > 0
            && !proxy_proto_tlv_put(&p, end, PP2_SUBTYPE_SSL_CN, tls->cn,
                                    tls->cnlen))
        || (tls->cipher != NULL
            && !proxy_proto_tlv_put(&p, end, PP2_SUBTYPE_SSL_CIPHER,
                                    tls->cipher, strlen(tls->cipher))))
    {
        return 0;
    }
    body = (size_t)(p - ssl) - 3;
    ssl[1] = (uint8_t)(body >> 8);
    ssl[2] = (uint8_t)(body & 0xff);
    body = (size_t)(p - out) - PROXY_PROTO_V2_HDR;
    if (body > 0xffff) {
        return 0;
    }
    out[14] = (uint8_t)(body >> 8);
    out[15] = (uint8_t)(body & 0xff);
    return (size_t)(p - out);
}

/* Find <type> among the TLVs in [<p>, <end>), looking into PP2_TYPE_SSL. */
static int
proxy_proto_tlv_scan(const uint8_t *p, const uint8_t *end, uint8_t type,
                     const uint8_t **val, size_t *vlen, bool top)
{
    size_t n;

    while (end - p >= 3) {
        n = (size_t)p[1] << 8 | p[2];
        if ((size_t)(end - p - 3) < n) {
            return 0;
        }
        if (p[0] == type) {
            *val = p + 3;
            *vlen = n;
            return 1;
        }
        if (top && p[0] == PP2_TYPE_SSL && n >= 5
            && proxy_proto_tlv_scan(p + 8, p + 3 + n, type, val, vlen,
                                    false))
        {
            return 1;
        }
        p += 3 + n;
    }
    return 0;
}

int
proxy_proto_tlv_find(const uint8_t *hdr, size_t len, uint8_t type,
                     const uint8_t **val, size_t *vlen)
{
    size_t addrlen;

    if (len < PROXY_PROTO_V2_HDR) {
        return 0;
    }
    switch (hdr[13]) {
    case PROXY_PROTO_FAM_TCP4:
        addrlen = PROXY_PROTO_LEN_INET;
        break;
    case PROXY_PROTO_FAM_TCP6:
        addrlen = PROXY_PROTO_LEN_INET6;
        break;
    case 0x31:                  /* UNIX stream, UNIX datagram */
    case 0x32:
        addrlen = PROXY_PROTO_LEN_UNIX;
        break;
    default:
        addrlen = 0;
        break;
    }
    if (len < PROXY_PROTO_V2_HDR + addrlen) {
        return 0;
    }
    return proxy_proto_tlv_scan(hdr + PROXY_PROTO_V2_HDR + addrlen,
                                hdr + len, type, val, vlen, true);
}

/* Set <ss> to <family> with address <ip> and port <port> (network order). */
static void
proxy_proto_ss_set(struct sockaddr_storage *ss, int family, const void *ip,
                   uint16_t port)
{
    struct sockaddr_in *sin;
    struct sockaddr_in6 *sin6;

    memset(ss, 0, sizeof(*ss));
    ss->ss_family = (sa_family_t)family;
    if (family == AF_INET) {
        sin = (struct sockaddr_in *)(void *)ss;
        memcpy(&sin->sin_addr, ip, 4);
        sin->sin_port = port;
    } else if (family == AF_INET6) {
        sin6 = (struct sockaddr_in6 *)(void *)ss;
        memcpy(&sin6->sin6_addr, ip, 16);
        sin6->sin6_port = port;
    }
}

/* A v1 port: 1 to 5 digits, no leading zero, at most 65535. */
static int
proxy_proto_port_parse(const char *s, uint16_t *port)
{
    unsigned long v;
    size_t i, n;

    n = strlen(s);
    if (n == 0 || n > 5 || (s[0] == '0' && n > 1)) {
        return -1;
    }
    v = 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535) {
        return -1;
    }
    *port = htons((uint16_t)v);
    return 0;
}

/*
 * Parse the v1 line at <buf> (<len> bytes, "PROXY " already seen in
 * what there is of it).
 */
static int
proxy_proto_parse_v1(const uint8_t *buf, size_t len,
                     struct sockaddr_storage *src,
                     struct sockaddr_storage *dst, size_t *hdrlen)
{
    char line[PROXY_PROTO_V1_MAX + 1];
    char *tok[7], *p;
    uint8_t sip[16], dip[16];
    uint16_t sport, dport;
    size_t i, n, ntok;
    int family;

    /* The line ends at the first LF, which must follow a CR. */
    n = len < PROXY_PROTO_V1_MAX ? len : PROXY_PROTO_V1_MAX;
    for (i = 0; i < n && buf[i] != '\n'; i++) {
        if (buf[i] < 0x20 && buf[i] != '\r') {
            return -1;
        }
    }
    if (i == n) {
        return len < PROXY_PROTO_V1_MAX ? 0 : -1;
    }
    if (i < 1 || buf[i - 1] != '\r') {
        return -1;
    }
    memcpy(line, buf, i - 1);
    line[i - 1] = '\0';
    *hdrlen = i + 1;

    /* Fields are separated by exactly one space. */
    ntok = 0;
    p = line;
    for (;;) {
        if (ntok == MQ_NELEMS(tok)) {
            break;
        }
        tok[ntok++] = p;
        p = strchr(p, ' ');
        if (p == NULL) {
            break;
        }
        *p++ = '\0';
    }
    if (ntok < 2 || strcmp(tok[0], "PROXY") != 0) {
        return -1;
    }
    if (strcmp(tok[1], "UNKNOWN") == 0) {
        /* "the receiver must ignore anything presented before the CRLF" */
        proxy_proto_ss_set(src, AF_UNSPEC, NULL, 0);
        proxy_proto_ss_set(dst, AF_UNSPEC, NULL, 0);
        return 1;
    }
    if (strcmp(tok[1], "TCP4") == 0) {
        family = AF_INET;
    } else if (strcmp(tok[1], "TCP6") == 0) {
        family = AF_INET6;
    } else {
        return -1;
    }
    if (ntok != 6 || p != NULL) {
        return -1;
    }
    if (inet_pton(family, tok[2], sip) != 1
        || inet_pton(family, tok[3], dip) != 1
        || proxy_proto_port_parse(tok[4], &sport) != 0
        || proxy_proto_port_parse(tok[5], &dport) != 0)
    {
        return -1;
    }
    proxy_proto_ss_set(src, family, sip, sport);
    proxy_proto_ss_set(dst, family, dip, dport);
    return 1;
}

/* Parse the v2 header at <buf> (<len> bytes, signature checked so far). */
static int
proxy_proto_parse_v2(const uint8_t *buf, size_t len,
                     struct sockaddr_storage *src,
                     struct sockaddr_storage *dst, size_t *hdrlen)
{
    size_t addrlen, need, alen;
    const uint8_t *a;
    uint16_t sport, dport;
    int family;

    if (len < PROXY_PROTO_V2_HDR) {
        return 0;
    }
    if (buf[12] != PROXY_PROTO_V2_LOCAL && buf[12] != PROXY_PROTO_V2_PROXY) {
        return -1;
    }
    addrlen = ((size_t)buf[14] << 8) | buf[15];
    if (len < PROXY_PROTO_V2_HDR + addrlen) {
        return 0;
    }

    family = AF_UNSPEC;
    need = 0;
    alen = 0;
    if (buf[12] == PROXY_PROTO_V2_PROXY) {
        /* transport: 0 UNSPEC, 1 STREAM, 2 DGRAM */
        if ((buf[13] & 0x0f) > 2) {
            return -1;
        }
        switch (buf[13] >> 4) {
        case 0:
            break;
        case 1:
            family = AF_INET;
            alen = 4;
            need = PROXY_PROTO_LEN_INET;
            break;
        case 2:
            family = AF_INET6;
            alen = 16;
            need = PROXY_PROTO_LEN_INET6;
            break;
        case 3:
            /* AF_UNIX: the paths are of no use to a TCP balancer */
            need = PROXY_PROTO_LEN_UNIX;
            break;
        default:
            return -1;
        }
    }
    if (addrlen < need) {
        return -1;
    }

    if (family == AF_UNSPEC) {
        proxy_proto_ss_set(src, AF_UNSPEC, NULL, 0);
        proxy_proto_ss_set(dst, AF_UNSPEC, NULL, 0);
    } else {
        a = &buf[PROXY_PROTO_V2_HDR];
        memcpy(&sport, &a[2 * alen], 2);
        memcpy(&dport, &a[2 * alen + 2], 2);
        proxy_proto_ss_set(src, family, a, sport);
        proxy_proto_ss_set(dst, family, &a[alen], dport);
    }
    /* TLVs after the addresses are skipped with the rest of the header */
    *hdrlen = PROXY_PROTO_V2_HDR + addrlen;
    return 1;
}

int
proxy_proto_parse(const uint8_t *buf, size_t len,
                  struct sockaddr_storage *src,
                  struct sockaddr_storage *dst, size_t *hdrlen)
{
    static const char v1[] = "PROXY ";
    size_t n;

    if (len == 0) {
        return 0;
    }
    if (buf[0] == proxy_proto_sig[0]) {
        n = len < PROXY_PROTO_SIG_LEN ? len : PROXY_PROTO_SIG_LEN;
        if (memcmp(buf, proxy_proto_sig, n) != 0) {
            return -1;
        }
        return proxy_proto_parse_v2(buf, len, src, dst, hdrlen);
    }
    n = len < sizeof(v1) - 1 ? len : sizeof(v1) - 1;
    if (memcmp(buf, v1, n) != 0) {
        return -1;
    }
    if (len < sizeof(v1) - 1) {
        return 0;
    }
    return proxy_proto_parse_v1(buf, len, src, dst, hdrlen);
}
