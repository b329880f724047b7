/*
 * test_tls_hello.c: the ClientHello reader over a real OpenSSL hello and
 * built ones: whole, split at every byte, truncated, garbage, a hello
 * split over records, and the sni pattern matcher.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/tls_hello.h"

/* `openssl s_client -servername mqtt.example.com -alpn mqtt,amqp`. */
static const uint8_t th_openssl[] = {
  0x16, 0x03, 0x01, 0x01, 0x4d, 0x01, 0x00, 0x01, 0x49, 0x03, 0x03, 0x9d,
  0xbf, 0x36, 0x99, 0x33, 0x23, 0xae, 0x87, 0xc1, 0x44, 0x8a, 0x46, 0x80,
  0xc7, 0x07, 0xd0, 0xdd, 0x95, 0x21, 0xd0, 0xb0, 0x18, 0x84, 0x3f, 0x5a,
  0xf4, 0x2f, 0xa2, 0x8d, 0xbd, 0x36, 0x0f, 0x20, 0x16, 0x55, 0x78, 0x35,
  0x7d, 0xfa, 0xd1, 0xa7, 0x0d, 0x03, 0x1f, 0x7d, 0xb5, 0x05, 0x08, 0x25,
  0x14, 0x02, 0xb9, 0x93, 0x1b, 0x66, 0x02, 0xb4, 0xae, 0x47, 0x29, 0x1c,
  0xa8, 0x35, 0x69, 0x04, 0x00, 0x3e, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01,
  0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
  0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b,
  0xc0, 0x23, 0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39,
  0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d,
  0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0xc2,
  0x00, 0x00, 0x00, 0x15, 0x00, 0x13, 0x00, 0x00, 0x10, 0x6d, 0x71, 0x74,
  0x74, 0x2e, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f,
  0x6d, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00,
  0x16, 0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00,
  0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00,
  0x23, 0x00, 0x00, 0x00, 0x10, 0x00, 0x0c, 0x00, 0x0a, 0x04, 0x6d, 0x71,
  0x74, 0x74, 0x04, 0x61, 0x6d, 0x71, 0x70, 0x00, 0x16, 0x00, 0x00, 0x00,
  0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05,
  0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08,
  0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06,
  0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06,
  0x02, 0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02,
  0x03, 0x01, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26,
  0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0x9b, 0x64, 0xe1, 0xea, 0xa5, 0x90,
  0x8a, 0x34, 0xa4, 0xb0, 0x7a, 0x4d, 0xfa, 0x77, 0x4d, 0x0e, 0x9b, 0xaf,
  0x8f, 0xc7, 0x0a, 0x56, 0xf4, 0x54, 0x74, 0x1b, 0xbc, 0xb8, 0x64, 0x71,
  0x14, 0x36
};

/* Parse <len> bytes of a copy of <pkt> (ASan then sees any overread). */
static int
th_parse(const uint8_t *pkt, size_t len, struct tls_hello *h, uint8_t **copy)
{
    *copy = malloc(len == 0 ? 1 : len);
    cr_assert_not_null(*copy);
    memcpy(*copy, pkt, len);
    return tls_hello_parse(*copy, len, h);
}

/*
 * Build a ClientHello record into <out> with server name <sni> (NULL:
 * none) and ALPN list <alpn> (NULL: none). Returns its length.
 */
static size_t
th_build(uint8_t *out, const char *sni, const char *alpn)
{
    uint8_t ext[600];
    size_t e = 0, n, b, i;

    if (sni != NULL) {
        n = strlen(sni);
        ext[e++] = 0; ext[e++] = 0;                         /* type */
        ext[e++] = (uint8_t)((n + 5) >> 8); ext[e++] = (uint8_t)(n + 5);
        ext[e++] = (uint8_t)((n + 3) >> 8); ext[e++] = (uint8_t)(n + 3);
        ext[e++] = 0;                                       /* host_name */
        ext[e++] = (uint8_t)(n >> 8); ext[e++] = (uint8_t)n;
        memcpy(ext + e, sni, n);
        e += n;
    }
    if (alpn != NULL) {
        n = strlen(alpn);
        ext[e++] = 0; ext[e++] = 16;
        ext[e++] = (uint8_t)((n + 3) >> 8); ext[e++] = (uint8_t)(n + 3);
        ext[e++] = (uint8_t)((n + 1) >> 8); ext[e++] = (uint8_t)(n + 1);
        ext[e++] = (uint8_t)n;
        memcpy(ext + e, alpn, n);
        e += n;
    }
    b = 9;
    out[b++] = 0x03; out[b++] = 0x03;
    memset(out + b, 0x5a, 32);                              /* random */
    b += 32;
    out[b++] = 0;                                           /* session id */
    out[b++] = 0; out[b++] = 2; out[b++] = 0x13; out[b++] = 0x01;
    out[b++] = 1; out[b++] = 0;                             /* null comp. */
    out[b++] = (uint8_t)(e >> 8); out[b++] = (uint8_t)e;
    memcpy(out + b, ext, e);
    b += e;
    out[0] = 0x16; out[1] = 0x03; out[2] = 0x01;
    out[3] = (uint8_t)((b - 5) >> 8); out[4] = (uint8_t)(b - 5);
    out[5] = 0x01;
    i = b - 9;
    out[6] = (uint8_t)(i >> 16); out[7] = (uint8_t)(i >> 8);
    out[8] = (uint8_t)i;
    return b;
}

/* <pkt> parses OK with <sni> and <alpn>, and every prefix says MORE. */
static void
th_expect(const uint8_t *pkt, size_t len, const char *sni, const char *alpn)
{
    struct tls_hello h;
    uint8_t *copy;
    size_t i;

    for (i = 0; i < len; i++) {
        cr_assert_eq(th_parse(pkt, i, &h, &copy), TLS_HELLO_MORE,
                     "prefix of %zu bytes", i);
        free(copy);
    }
    cr_assert_eq(th_parse(pkt, len, &h, &copy), TLS_HELLO_OK);
    cr_assert_eq(h.len, len);
    if (sni == NULL) {
        cr_assert_null(h.sni);
    } else {
        cr_assert_eq(h.snilen, strlen(sni));
        cr_assert_arr_eq(h.sni, sni, h.snilen);
    }
    if (alpn == NULL) {
        cr_assert_null(h.alpn);
    } else {
        cr_assert_eq(h.alpnlen, strlen(alpn));
        cr_assert_arr_eq(h.alpn, alpn, h.alpnlen);
    }
    free(copy);
}

Test(tls_hello, reads_the_sni_and_alpn_of_an_openssl_hello)
{
    th_expect(th_openssl, sizeof(th_openssl), "mqtt.example.com", "mqtt");
}

Test(tls_hello, reads_built_hellos_with_and_without_extensions)
{
    uint8_t pkt[700];

    th_expect(pkt, th_build(pkt, "a.test", "amqp"), "a.test", "amqp");
    th_expect(pkt, th_build(pkt, "b.test", NULL), "b.test", NULL);
    th_expect(pkt, th_build(pkt, NULL, NULL), NULL, NULL);
}

Test(tls_hello, bytes_after_the_record_are_left_alone)
{
    uint8_t pkt[800];
    struct tls_hello h;
    size_t n;

    n = th_build(pkt, "a.test", NULL);
    memset(pkt + n, 0x17, 40);          /* the next record, whatever it is */
    cr_assert_eq(tls_hello_parse(pkt, n + 40, &h), TLS_HELLO_OK);
    cr_assert_eq(h.len, n);
}

Test(tls_hello, refuses_garbage_at_the_first_byte_that_shows_it)
{
    struct tls_hello h;

    cr_assert_eq(tls_hello_parse((const uint8_t *)"G", 1, &h),
                 TLS_HELLO_BAD);
    cr_assert_eq(tls_hello_parse((const uint8_t *)"\x16\x02", 2, &h),
                 TLS_HELLO_BAD);
    /* an MQTT CONNECT */
    cr_assert_eq(tls_hello_parse((const uint8_t *)"\x10\x0f\x00\x04MQTT",
                                 8, &h), TLS_HELLO_BAD);
    /* a handshake record that is not a ClientHello (ServerHello) */
    cr_assert_eq(tls_hello_parse((const uint8_t *)"\x16\x03\x03\x00\x30\x02",
                                 6, &h), TLS_HELLO_BAD);
    /* an empty record and an oversized one */
    cr_assert_eq(tls_hello_parse((const uint8_t *)"\x16\x03\x01\x00\x00", 5,
                                 &h), TLS_HELLO_BAD);
    cr_assert_eq(tls_hello_parse((const uint8_t *)"\x16\x03\x01\x40\x01", 5,
                                 &h), TLS_HELLO_BAD);
    cr_assert_eq(tls_hello_parse(NULL, 0, &h), TLS_HELLO_MORE);
}

Test(tls_hello, refuses_a_hello_split_over_records)
{
    uint8_t pkt[700];
    struct tls_hello h;
    size_t n;

    n = th_build(pkt, "a.test", NULL);
    /* The handshake says it is longer than the record that carries it. */
    pkt[3] = (uint8_t)((n - 5 - 10) >> 8);
    pkt[4] = (uint8_t)(n - 5 - 10);
    cr_assert_eq(tls_hello_parse(pkt, n, &h), TLS_HELLO_BAD);
}

Test(tls_hello, refuses_every_truncated_length_field)
{
    uint8_t pkt[700], *copy;
    struct tls_hello h;
    size_t n, i;
    int rc;

    n = th_build(pkt, "a.test", "mqtt");    /* extensions: 15 + 11 */
    /*
     * Shrink the handshake (and record) length by one at every offset:
     * the body no longer fits its declared fields, so each answer is
     * BAD, never OK with something read past the end.
     */
    for (i = 1; i < n - 9; i++) {
        pkt[3] = (uint8_t)((n - 5 - i) >> 8);
        pkt[4] = (uint8_t)(n - 5 - i);
        pkt[6] = 0;
        pkt[7] = (uint8_t)((n - 9 - i) >> 8);
        pkt[8] = (uint8_t)(n - 9 - i);
        rc = th_parse(pkt, n - i, &h, &copy);
        free(copy);
        if (i == 2 + 15 + 11) {
            /* Cut right after the compression methods: a valid hello
             * without extensions. */
            cr_assert_eq(rc, TLS_HELLO_OK);
            cr_assert_null(h.sni);
            continue;
        }
        cr_assert_eq(rc, TLS_HELLO_BAD, "cut by %zu", i);
    }
}

Test(tls_hello, refuses_a_server_name_with_control_bytes)
{
    uint8_t pkt[700];
    struct tls_hello h;

    th_build(pkt, "a\x01test", NULL);
    cr_assert_eq(tls_hello_parse(pkt, sizeof(pkt), &h), TLS_HELLO_BAD);
}

Test(tls_hello, sni_patterns_exact_wildcard_and_catch_all)
{
    const uint8_t *a = (const uint8_t *)"A.Test";
    const uint8_t *sub = (const uint8_t *)"x.y.example.com";

    cr_assert(tls_hello_sni_match("a.test", a, 6));
    cr_assert(tls_hello_sni_match("a.test", (const uint8_t *)"a.test.", 7));
    cr_assert_not(tls_hello_sni_match("a.test", a, 5));
    cr_assert_not(tls_hello_sni_match("b.test", a, 6));
    cr_assert(tls_hello_sni_match("*.example.com", sub, 15));
    cr_assert_not(tls_hello_sni_match("*.example.com",
                                      (const uint8_t *)"example.com", 11));
    cr_assert_not(tls_hello_sni_match("*.example.com",
                                      (const uint8_t *)".example.com", 12));
    cr_assert_not(tls_hello_sni_match("*.example.com",
                                      (const uint8_t *)"xexample.com", 12));
    cr_assert(tls_hello_sni_match("*", a, 6));
    cr_assert(tls_hello_sni_match("*", NULL, 0));
    cr_assert_not(tls_hello_sni_match("a.test", NULL, 0));
}
