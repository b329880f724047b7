/*
 * test_tls_rec.c: the TLS 1.3 record layer's pure parts: the key
 * schedule against RFC 8448's published trace, sealing and opening for
 * every suite, and what must not open (a flipped bit, a wrong sequence
 * number, a record of padding only). The same layer against OpenSSL as
 * the peer is in test_tls.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>

#include "mqlb/common.h"
#include "mqlb/tls_rec.h"

static void
hex(const char *s, uint8_t *out, size_t n)
{
    size_t i;
    unsigned v;

    for (i = 0; i < n; i++) {
        cr_assert_eq(sscanf(s + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/* The AES-128-GCM key and IV expanded from <secret> are <key> and <iv>. */
static void
expands_to(const char *secret_hex, const char *key_hex, const char *iv_hex)
{
    uint8_t secret[32], key[16], iv[12], want_key[16], want_iv[12];

    hex(secret_hex, secret, 32);
    hex(key_hex, want_key, 16);
    hex(iv_hex, want_iv, 12);
    cr_assert_eq(tls_rec_expand_label(TLS_REC_AES_128_GCM_SHA256, secret,
                                      "key", key, 16), MQ_OK);
    cr_assert_eq(tls_rec_expand_label(TLS_REC_AES_128_GCM_SHA256, secret,
                                      "iv", iv, 12), MQ_OK);
    cr_assert_arr_eq(key, want_key, 16);
    cr_assert_arr_eq(iv, want_iv, 12);
}

/* RFC 8448 section 3: the application traffic secrets of the simple
 * 1-RTT handshake and the keys and IVs derived from them. */
Test(tls_rec, key_schedule_matches_rfc8448)
{
    expands_to("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643",
               "9f02283b6c9c07efc26bb9f2ac92e356", "cf782b88dd83549aadf1e984");
    expands_to("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5",
               "17422dda596ed5d9acd890e3c63f5051", "5b78923dee08579033e523d9");
}

Test(tls_rec, knows_the_three_suites_it_carries)
{
    cr_assert_eq(tls_rec_suite_of(0x1301), TLS_REC_AES_128_GCM_SHA256);
    cr_assert_eq(tls_rec_suite_of(0x1302), TLS_REC_AES_256_GCM_SHA384);
    cr_assert_eq(tls_rec_suite_of(0x1303),
                 TLS_REC_CHACHA20_POLY1305_SHA256);
    cr_assert_eq(tls_rec_suite_of(0x1304), TLS_REC_NONE);    /* CCM */
    cr_assert_eq(tls_rec_suite_of(0xc02b), TLS_REC_NONE);    /* TLS 1.2 */
    cr_assert_eq(tls_rec_secret_len(TLS_REC_AES_256_GCM_SHA384), 48);
    cr_assert_eq(tls_rec_secret_len(TLS_REC_CHACHA20_POLY1305_SHA256), 32);
}

/* A sealing and an opening key from the same secret, at <seq>. */
static void
pair(enum tls_rec_suite suite, uint64_t seq, struct tls_rec_key *seal,
     struct tls_rec_key *open)
{
    uint8_t secret[TLS_REC_SECRET_MAX];
    size_t i;

    for (i = 0; i < sizeof(secret); i++) {
        secret[i] = (uint8_t)(i * 7 + suite);
    }
    memset(seal, 0, sizeof(*seal));
    memset(open, 0, sizeof(*open));
    cr_assert_eq(tls_rec_key_init(seal, suite, secret, seq, 1), MQ_OK);
    cr_assert_eq(tls_rec_key_init(open, suite, secret, seq, 0), MQ_OK);
}

Test(tls_rec, seals_and_opens_every_suite_in_place_and_not)
{
    static uint8_t msg[TLS_REC_PLAIN_MAX], rec[TLS_REC_MAX],
        out[TLS_REC_MAX];
    static const size_t lens[] = { 0, 1, 5, 100, TLS_REC_PLAIN_MAX };
    struct tls_rec_key s, o;
    enum tls_rec_suite suite;
    size_t i, j, rlen, n;
    uint8_t type;

    for (i = 0; i < sizeof(msg); i++) {
        msg[i] = (uint8_t)(i % 253);
    }
    for (suite = TLS_REC_AES_128_GCM_SHA256;
         suite <= TLS_REC_CHACHA20_POLY1305_SHA256; suite++) {
        pair(suite, 0, &s, &o);
        for (j = 0; j < sizeof(lens) / sizeof(lens[0]); j++) {
            rlen = tls_rec_seal(&s, TLS_REC_APPDATA, msg, lens[j], rec);
            cr_assert_eq(rlen, lens[j] + TLS_REC_HDR + 1 + TLS_REC_TAG);
            cr_assert_eq(rec[0], TLS_REC_APPDATA);
            cr_assert_eq((size_t)(rec[3] << 8 | rec[4]), rlen - TLS_REC_HDR);
            /* even records open in place, odd ones into another buffer */
            cr_assert_eq(tls_rec_open(&o, rec, rlen, j % 2 == 0
                                      ? rec + TLS_REC_HDR : out, &n, &type),
                         MQ_OK, "suite %d len %zu", suite, lens[j]);
            cr_assert_eq(n, lens[j]);
            cr_assert_eq(type, TLS_REC_APPDATA);
            cr_assert_arr_eq(j % 2 == 0 ? rec + TLS_REC_HDR : out, msg, n);
        }
        cr_assert_eq(s.seq, 5);
        cr_assert_eq(o.seq, 5);
        /* both ends move to the next generation alike */
        cr_assert_eq(tls_rec_key_update(&s, suite, 1), MQ_OK);
        cr_assert_eq(tls_rec_key_update(&o, suite, 0), MQ_OK);
        cr_assert_eq(s.seq, 0);
        rlen = tls_rec_seal(&s, TLS_REC_ALERT, (const uint8_t *)"\1\0", 2,
                            rec);
        cr_assert_eq(tls_rec_open(&o, rec, rlen, out, &n, &type), MQ_OK);
        cr_assert_eq(type, TLS_REC_ALERT);
        cr_assert_eq(n, 2);
        tls_rec_key_clear(&s);
        tls_rec_key_clear(&o);
    }
}

Test(tls_rec, what_was_altered_or_replayed_does_not_open)
{
    static uint8_t rec[256], copy[256], out[256];
    struct tls_rec_key s, o;
    size_t rlen, n, i;
    uint8_t type;

    pair(TLS_REC_AES_256_GCM_SHA384, 41, &s, &o);
    rlen = tls_rec_seal(&s, TLS_REC_APPDATA, (const uint8_t *)"hello", 5,
                        rec);
    /* every single flipped bit, header included, is caught */
    for (i = 0; i < rlen * 8; i++) {
        memcpy(copy, rec, rlen);
        copy[i / 8] ^= (uint8_t)(1u << (i % 8));
        cr_assert_eq(tls_rec_open(&o, copy, rlen, out, &n, &type), MQ_ERR,
                     "bit %zu", i);
    }
    cr_assert_eq(o.seq, 41);        /* a failure uses no number */
    cr_assert_eq(tls_rec_open(&o, rec, rlen, out, &n, &type), MQ_OK);
    /* the same record again is under the wrong sequence number */
    cr_assert_eq(tls_rec_open(&o, rec, rlen, out, &n, &type), MQ_ERR);
    /* too short to hold a tag and a type */
    cr_assert_eq(tls_rec_open(&o, rec, TLS_REC_HDR + TLS_REC_TAG, out, &n,
                              &type), MQ_ERR);
    tls_rec_key_clear(&s);
    tls_rec_key_clear(&o);
}

Test(tls_rec, strips_padding_and_refuses_a_record_without_a_type)
{
    static const uint8_t padded[] = { 'o', 'k', TLS_REC_APPDATA, 0, 0, 0 };
    static const uint8_t zeros[4] = { 0 };
    struct tls_rec_key s, o;
    uint8_t rec[64], out[64];
    size_t rlen, n;
    uint8_t type;

    /* Seal as content type 0 the bytes of a padded inner plaintext: the
     * record's inner plaintext is then <padded> with one more zero. */
    pair(TLS_REC_CHACHA20_POLY1305_SHA256, 0, &s, &o);
    rlen = tls_rec_seal(&s, 0, padded, sizeof(padded), rec);
    cr_assert_eq(tls_rec_open(&o, rec, rlen, out, &n, &type), MQ_OK);
    cr_assert_eq(type, TLS_REC_APPDATA);
    cr_assert_eq(n, 2);
    cr_assert_arr_eq(out, "ok", 2);
    rlen = tls_rec_seal(&s, 0, zeros, sizeof(zeros), rec);
    cr_assert_eq(tls_rec_open(&o, rec, rlen, out, &n, &type), MQ_ERR);
    tls_rec_key_clear(&s);
    tls_rec_key_clear(&o);
}

/* <n> records of <len> bytes of <p> sealed by <k> into <fd>. */
static void
send_records(int fd, struct tls_rec_key *k, size_t n, const char *p,
             size_t len)
{
    uint8_t rec[64];
    size_t i, rlen;

    for (i = 0; i < n; i++) {
        rlen = tls_rec_seal(k, TLS_REC_APPDATA, (const uint8_t *)p, len,
                            rec);
        cr_assert_eq(write(fd, rec, rlen), (ssize_t)rlen);
    }
}

Test(tls_rec, a_peer_sending_only_empty_records_is_cut_off)
{
    struct tls_rec_key peer, unused;
    struct tls_rec *r;
    uint8_t secret[TLS_REC_SECRET_MAX];
    char buf[16];
    int fd[2], want;
    size_t i;

    for (i = 0; i < sizeof(secret); i++) {
        secret[i] = (uint8_t)(i * 7 + TLS_REC_AES_128_GCM_SHA256);
    }
    pair(TLS_REC_AES_128_GCM_SHA256, 0, &peer, &unused);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd), 0);
    r = tls_rec_new(fd[0], TLS_REC_AES_128_GCM_SHA256, secret, 0, secret, 0,
                    0);
    cr_assert_not_null(r);
    /* 32 in a row are allowed (OpenSSL's limit too) */
    send_records(fd[1], &peer, 32, "", 0);
    send_records(fd[1], &peer, 1, "ok", 2);
    cr_assert_eq(tls_rec_recv(r, buf, sizeof(buf), &want), 2);
    cr_assert_arr_eq(buf, "ok", 2);
    /* the 33rd ends the stream */
    send_records(fd[1], &peer, 33, "", 0);
    send_records(fd[1], &peer, 1, "late", 4);
    cr_assert_eq(tls_rec_recv(r, buf, sizeof(buf), &want), -1);
    cr_assert_eq(errno, EPROTO);
    tls_rec_free(r);
    tls_rec_key_clear(&peer);
    tls_rec_key_clear(&unused);
    close(fd[0]);
    close(fd[1]);
}
