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
