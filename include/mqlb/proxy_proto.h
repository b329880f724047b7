/*
 * proxy_proto.h: the PROXY protocol header (HAProxy's proxy-protocol.txt,
 * versions 1 and 2) that tells a broker the real client address. Writing
 * is what a session does first on a backend connection; the parser is for
 * round-trip tests and fuzzing.
 */
#ifndef MQLB_PROXY_PROTO_H
#define MQLB_PROXY_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXY_PROTO_V1_MAX  107     /* longest v1 line, CRLF included */
#define PROXY_PROTO_V2_MAX  52      /* v2 header with two IPv6 addresses */

/*
 * Write the version <version> (1 or 2) header for a connection from <src>
 * to <dst> into <out> (<cap> bytes). Two IPv4 or IPv4-mapped IPv6
 * addresses are written as TCP4 (mapped down, as a dual-stack listener
 * sees IPv4 clients); an IPv6 address with an IPv4 one as TCP6 with the
 * IPv4 one mapped up; anything else (NULL, AF_UNIX, ...) as "PROXY
 * UNKNOWN" (v1) or PROXY/UNSPEC with no addresses (v2). Returns the
 * bytes written, or 0 if <cap> is too small or <version> unknown.
 */
size_t proxy_proto_write(int version, const struct sockaddr *src,
                         const struct sockaddr *dst, uint8_t *out,
                         size_t cap);

/* PROXY v2 TLV types (proxy-protocol.txt 2.2.x). */
#define PP2_TYPE_ALPN           0x01
#define PP2_TYPE_AUTHORITY      0x02
#define PP2_TYPE_SSL            0x20
#define PP2_SUBTYPE_SSL_VERSION 0x21
#define PP2_SUBTYPE_SSL_CN      0x22
#define PP2_SUBTYPE_SSL_CIPHER  0x23
#define PP2_CLIENT_SSL          0x01
#define PP2_CLIENT_CERT_CONN    0x02
#define PP2_CLIENT_CERT_SESS    0x04

/* Room for a v2 header with every TLS TLV at its longest. */
#define PROXY_PROTO_V2_TLS_MAX  (PROXY_PROTO_V2_MAX + 3 + 255 + 3 + 255 \
                                 + 8 + 3 + 32 + 3 + 256 + 3 + 64)

/*
 * What a TLS listener knows of a client, for the v2 TLVs. A NULL pointer
 * or zero length leaves its TLV out.
 */
struct proxy_proto_tls {
    const uint8_t      *alpn;       /* protocol agreed: PP2_TYPE_ALPN */
    size_t              alpnlen;
    const uint8_t      *sni;        /* server name: PP2_TYPE_AUTHORITY */
    size_t              snilen;
    const char         *version;    /* "TLSv1.3": SSL_VERSION */
    const uint8_t      *cn;         /* client certificate's CN: SSL_CN */
    size_t              cnlen;
    const char         *cipher;     /* OpenSSL's name: SSL_CIPHER */
    uint32_t            verify;     /* X509_V_OK (0) or the failure */
    unsigned            cert:1;     /* the client sent a certificate */
};

/*
 * The v2 header as proxy_proto_write(2, ...) writes it, followed by the
 * TLVs of <tls> in the order and layout of HAProxy's `send-proxy-v2-ssl-cn`
 * with `proxy-v2-options ssl-cipher,authority`: ALPN, AUTHORITY, then
 * SSL {client flags, verify, VERSION, CN, CIPHER}. As HAProxy does,
 * <verify> is sent only when the client sent a certificate (0 otherwise).
 * Returns the bytes written, or 0 if <cap> is too small.
 */
size_t proxy_proto_write_tls(const struct sockaddr *src,
                             const struct sockaddr *dst,
                             const struct proxy_proto_tls *tls,
                             uint8_t *out, size_t cap);

/*
 * The TLV <type> of the complete v2 header <hdr> (<len> bytes, as
 * proxy_proto_parse() measured it); for a sub-TLV of PP2_TYPE_SSL pass
 * its subtype. Returns its value in <*val>/<*vlen>, 1 if found, else 0.
 */
int proxy_proto_tlv_find(const uint8_t *hdr, size_t len, uint8_t type,
                         const uint8_t **val, size_t *vlen);

/*
 * Write the header of a connection that relays no client (a health
 * check): "PROXY UNKNOWN\r\n" for <version> 1, the LOCAL command with no
 * addresses for 2, which a receiver must accept and then use the real
 * connection's addresses. Returns the bytes written, 0 if <cap> is too
 * small or <version> unknown.
 */
size_t proxy_proto_write_local(int version, uint8_t *out, size_t cap);

/*
 * Parse a v1 or v2 header at the start of <buf> (<len> bytes). Returns 1
 * when complete, with the addresses in <src>/<dst> (ss_family AF_UNSPEC
 * for UNKNOWN, LOCAL and UNSPEC) and the header's length, TLVs included,
 * in <*hdrlen>; 0 when <buf> is a valid prefix that needs more bytes;
 * -1 when it is not a PROXY header or is malformed.
 */
int proxy_proto_parse(const uint8_t *buf, size_t len,
                      struct sockaddr_storage *src,
                      struct sockaddr_storage *dst, size_t *hdrlen);

#endif /* MQLB_PROXY_PROTO_H */
