/*
 * tls_rec.h: the TLS 1.3 record layer of a connection whose handshake
 * OpenSSL did (RFC 8446: records 5.1-5.5, KeyUpdate 4.6.3, alerts 6,
 * key schedule 7.1-7.3). Once a TLS 1.3 handshake is over, a connection
 * needs two AEAD keys, two IVs, two sequence numbers and the two secrets
 * a KeyUpdate derives from: a few hundred bytes, where OpenSSL 3.0 keeps
 * about 14 KB per connection (its SSL object alone is 7.6 KB) for as
 * long as the connection lives. kTLS does the same job in the kernel;
 * this is it in the worker, for kernels without the TLS module.
 *
 * Cryptography stays OpenSSL's: the AEAD is an EVP_CIPHER_CTX, the key
 * schedule its TLS13-KDF. This module only frames, counts and parses.
 */
#ifndef MQLB_TLS_REC_H
#define MQLB_TLS_REC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The TLS 1.3 suites this layer carries (the others stay in OpenSSL). */
enum tls_rec_suite {
    TLS_REC_NONE = 0,
    TLS_REC_AES_128_GCM_SHA256,
    TLS_REC_AES_256_GCM_SHA384,
    TLS_REC_CHACHA20_POLY1305_SHA256,
};

#define TLS_REC_HDR         5       /* type, legacy version, length */
#define TLS_REC_TAG         16      /* every suite's AEAD tag */
#define TLS_REC_IV          12      /* every suite's nonce */
#define TLS_REC_SECRET_MAX  48      /* SHA-384 */
#define TLS_REC_PLAIN_MAX   16384   /* 2^14 bytes of content per record */
#define TLS_REC_BODY_MAX    (TLS_REC_PLAIN_MAX + 256)   /* 5.2 */
#define TLS_REC_MAX         (TLS_REC_HDR + TLS_REC_BODY_MAX)

/* Content types (5.1). */
#define TLS_REC_ALERT       21
#define TLS_REC_HANDSHAKE   22
#define TLS_REC_APPDATA     23

/* One direction's traffic protection. */
struct tls_rec_key {
    void               *ctx;        /* EVP_CIPHER_CTX with the key set */
    uint64_t            seq;        /* of the next record */
    uint8_t             iv[TLS_REC_IV];
    uint8_t             secret[TLS_REC_SECRET_MAX];
};

/* The suite of IANA cipher suite <id> (0x1301...), or TLS_REC_NONE. */
enum tls_rec_suite tls_rec_suite_of(uint16_t id);
/* The length of <suite>'s traffic secrets (its hash's output). */
size_t tls_rec_secret_len(enum tls_rec_suite suite);

/* HKDF-Expand-Label(<secret>, <label>, "", <outlen>) of 7.1. */
int tls_rec_expand_label(enum tls_rec_suite suite, const uint8_t *secret,
                         const char *label, uint8_t *out, size_t outlen);

/*
 * Set <k> up from a traffic secret, for sealing (<seal>) or opening,
 * with the next record's sequence number <seq>. MQ_ERR without memory.
 */
int tls_rec_key_init(struct tls_rec_key *k, enum tls_rec_suite suite,
                     const uint8_t *secret, uint64_t seq, int seal);
/* The next generation of <k>'s secret and key, sequence 0 (4.6.3). */
int tls_rec_key_update(struct tls_rec_key *k, enum tls_rec_suite suite,
                       int seal);
/* Free <k>'s context and wipe its secrets. */
void tls_rec_key_clear(struct tls_rec_key *k);

/*
 * Seal <len> (<= TLS_REC_PLAIN_MAX) bytes of content type <type> into
 * <out> (room for len + TLS_REC_HDR + 1 + TLS_REC_TAG); the record's
 * length, or 0 if the cipher failed. Uses up one sequence number.
 */
size_t tls_rec_seal(struct tls_rec_key *k, uint8_t type, const uint8_t *in,
                    size_t len, uint8_t *out);
/*
 * Open the whole record <rec> (<reclen> bytes, header included) into
 * <out> (room for reclen - TLS_REC_HDR - TLS_REC_TAG; may be
 * rec + TLS_REC_HDR): the content's length into <*outlen> and its type
 * into <*type>. MQ_ERR if it does not authenticate or has no type.
 */
int tls_rec_open(struct tls_rec_key *k, const uint8_t *rec, size_t reclen,
                 uint8_t *out, size_t *outlen, uint8_t *type);

/* A connection's record layer over socket <fd>. */
struct tls_rec;

/*
 * The record layer for the connection on <fd> after its handshake:
 * records are opened with <rsecret> from sequence <rseq> on and sealed
 * with <wsecret> from <wseq>. <client>: this end is the TLS client (it
 * may receive NewSessionTicket). NULL without memory.
 */
struct tls_rec *tls_rec_new(int fd, enum tls_rec_suite suite,
                            const uint8_t *rsecret, uint64_t rseq,
                            const uint8_t *wsecret, uint64_t wseq,
                            int client);
void tls_rec_free(struct tls_rec *r);

/* The relay's operations (relay.h's struct relay_io, conn = the record
 * layer). */
ssize_t tls_rec_recv(struct tls_rec *r, void *buf, size_t len, int *want);
ssize_t tls_rec_send(struct tls_rec *r, const void *buf, size_t len,
                     int *want);
void tls_rec_shutdown(struct tls_rec *r, int fd);
size_t tls_rec_pending(const struct tls_rec *r);

#endif /* MQLB_TLS_REC_H */
