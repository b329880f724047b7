/*
 * tls_hello.h: read a TLS ClientHello without terminating TLS, for SNI
 * routing in passthrough (the bytes go to the broker unchanged), and
 * match a server name against a pool's `sni =` patterns. Pure functions
 * over bytes: no socket, no OpenSSL.
 */
#ifndef MQLB_TLS_HELLO_H
#define MQLB_TLS_HELLO_H

#include <stddef.h>
#include <stdint.h>

#define TLS_HELLO_RECORD_MAX    16384   /* largest plaintext record */
/*
 * The most bytes the reader ever needs: one record header and the
 * largest record. A caller that has buffered this many bytes always gets
 * OK or BAD, never MORE.
 */
#define TLS_HELLO_MAX           (5 + TLS_HELLO_RECORD_MAX)
#define TLS_HELLO_NAME_MAX      255     /* longest host name kept */

enum tls_hello_result {
    TLS_HELLO_OK = 0,       /* a whole ClientHello was read */
    TLS_HELLO_MORE,         /* a prefix of one: read more */
    TLS_HELLO_BAD,          /* not TLS, not a ClientHello, or malformed */
};

/* What a ClientHello says; pointers go into the caller's buffer. */
struct tls_hello {
    const uint8_t      *sni;        /* host_name of server_name, or NULL */
    size_t              snilen;
    const uint8_t      *alpn;       /* first protocol offered, or NULL */
    size_t              alpnlen;
    uint16_t            version;    /* legacy_version, e.g. 0x0303 */
    size_t              len;        /* bytes of the record read */
};

/*
 * Parse the first <len> bytes a client sent, <buf>. The ClientHello must
 * sit in the first record (as HAProxy's req.ssl_sni requires); that
 * record may arrive over any number of reads, up to its full length. On
 * TLS_HELLO_OK <*h> is filled in; nothing is consumed.
 */
int tls_hello_parse(const uint8_t *buf, size_t len, struct tls_hello *h);

/*
 * Does the server name <name> (<len> bytes, any case) match <pattern>:
 * an exact name, "*.example.com" (any name ending in ".example.com" with
 * something before it) or "*" (every name, and no name at all: <name>
 * NULL)? Names compare without case. Returns 1 or 0.
 */
int tls_hello_sni_match(const char *pattern, const uint8_t *name,
                        size_t len);

#endif /* MQLB_TLS_HELLO_H */
