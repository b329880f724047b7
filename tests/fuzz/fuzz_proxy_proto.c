/*
 * fuzz_proxy_proto.c: the PROXY header writer round trip, and the reader
 * on raw bytes. From the input: two endpoints (family, address, port),
 * written as v1 and as v2 with proxy_proto_write(); proxy_proto_parse()
 * must then read back a complete header of exactly the written length
 * carrying the same addresses, normalised as the writer promises (both
 * IPv4 or mapped: TCP4; otherwise TCP6 with IPv4 mapped up). Every prefix
 * of a written header must parse as "needs more". The raw input also goes
 * to proxy_proto_parse() as is.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/proxy_proto.h"

#define FUZZ_EP_LEN     19      /* family byte, 16 address bytes, port */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One endpoint from FUZZ_EP_LEN bytes: v4, v6, mapped v6 or AF_UNIX. */
static void
fuzz_endpoint(const uint8_t *d, struct sockaddr_storage *ss)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)(void *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)ss;

    memset(ss, 0, sizeof(*ss));
    switch (d[0] % 4) {
    case 0:
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, d + 1, 4);
        memcpy(&sin->sin_port, d + 17, 2);
        break;
    case 1:
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, d + 1, 16);
        memcpy(&sin6->sin6_port, d + 17, 2);
        break;
    case 2:
        sin6->sin6_family = AF_INET6;
        memset(&sin6->sin6_addr.s6_addr[10], 0xff, 2);
        memcpy(&sin6->sin6_addr.s6_addr[12], d + 1, 4);
        memcpy(&sin6->sin6_port, d + 17, 2);
        break;
    default:
        ss->ss_family = AF_UNIX;
        break;
    }
}

/* <ss> as the header should carry it for <family>: 16 bytes + port. */
static void
fuzz_expect(const struct sockaddr_storage *ss, int family, uint8_t *ip,
            uint16_t *port)
{
    const struct sockaddr_in *sin = (const void *)ss;
    const struct sockaddr_in6 *sin6 = (const void *)ss;

    memset(ip, 0, 16);
    if (ss->ss_family == AF_INET) {
        *port = sin->sin_port;
        if (family == AF_INET) {
            memcpy(ip, &sin->sin_addr, 4);
        } else {
            ip[10] = ip[11] = 0xff;
            memcpy(ip + 12, &sin->sin_addr, 4);
        }
    } else {
        *port = sin6->sin6_port;
        if (family == AF_INET) {
            memcpy(ip, &sin6->sin6_addr.s6_addr[12], 4);
        } else {
            memcpy(ip, &sin6->sin6_addr, 16);
        }
    }
}

/* <got> holds the address <ip>/<port> of <family>. */
static bool
fuzz_same(const struct sockaddr_storage *got, int family, const uint8_t *ip,
          uint16_t port)
{
    const struct sockaddr_in *sin = (const void *)got;
    const struct sockaddr_in6 *sin6 = (const void *)got;

    if (got->ss_family != family) {
        return false;
    }
    if (family == AF_INET) {
        return memcmp(&sin->sin_addr, ip, 4) == 0 && sin->sin_port == port;
    }
    return memcmp(&sin6->sin6_addr, ip, 16) == 0 && sin6->sin6_port == port;
}

static bool
fuzz_v4able(const struct sockaddr_storage *ss)
{
    const struct sockaddr_in6 *sin6 = (const void *)ss;

    return ss->ss_family == AF_INET
        || (ss->ss_family == AF_INET6
            && IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr));
}

/* Parse <n> bytes from a buffer of exactly that size. */
static int
fuzz_parse(const uint8_t *data, size_t n, struct sockaddr_storage *src,
           struct sockaddr_storage *dst, size_t *hdrlen)
{
    uint8_t *buf;
    int rc;

    buf = malloc(n > 0 ? n : 1);
    if (buf == NULL) {
        abort();
    }
    memcpy(buf, data, n);
    *hdrlen = 0;
    rc = proxy_proto_parse(buf, n, src, dst, hdrlen);
    free(buf);
    if (rc != -1 && rc != 0 && rc != 1) {
        abort();
    }
    if (rc == 1 && (*hdrlen == 0 || *hdrlen > n)) {
        abort();
    }
    return rc;
}

static void
fuzz_round_trip(const struct sockaddr_storage *s,
                const struct sockaddr_storage *d, int version)
{
    struct sockaddr_storage ps, pd;
    uint8_t out[PROXY_PROTO_V1_MAX + PROXY_PROTO_V2_MAX];
    uint8_t sip[16], dip[16];
    uint16_t sport, dport;
    size_t len, k, hdrlen;
    bool unknown;
    int family;

    len = proxy_proto_write(version, (const struct sockaddr *)s,
                            (const struct sockaddr *)d, out, sizeof(out));
    if (len == 0 || len > (version == 1 ? PROXY_PROTO_V1_MAX
                                        : PROXY_PROTO_V2_MAX)) {
        abort();
    }
    /* too small a buffer writes nothing */
    if (proxy_proto_write(version, (const struct sockaddr *)s,
                          (const struct sockaddr *)d, out, len - 1) != 0) {
        abort();
    }
    len = proxy_proto_write(version, (const struct sockaddr *)s,
                            (const struct sockaddr *)d, out, len);
    for (k = 0; k < len; k++) {
        if (fuzz_parse(out, k, &ps, &pd, &hdrlen) != 0) {
            abort();
        }
    }
    if (fuzz_parse(out, len, &ps, &pd, &hdrlen) != 1 || hdrlen != len) {
        abort();
    }
    unknown = s->ss_family == AF_UNIX || d->ss_family == AF_UNIX;
    if (unknown) {
        if (ps.ss_family != AF_UNSPEC || pd.ss_family != AF_UNSPEC) {
            abort();
        }
        return;
    }
    family = fuzz_v4able(s) && fuzz_v4able(d) ? AF_INET : AF_INET6;
    fuzz_expect(s, family, sip, &sport);
    fuzz_expect(d, family, dip, &dport);
    if (!fuzz_same(&ps, family, sip, sport)
        || !fuzz_same(&pd, family, dip, dport)) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_storage s, d, ps, pd;
    size_t hdrlen;

    (void)fuzz_parse(data, size, &ps, &pd, &hdrlen);
    if (size >= 2 * FUZZ_EP_LEN) {
        fuzz_endpoint(data, &s);
        fuzz_endpoint(data + FUZZ_EP_LEN, &d);
        fuzz_round_trip(&s, &d, 1);
        fuzz_round_trip(&s, &d, 2);
    }
    return 0;
}
