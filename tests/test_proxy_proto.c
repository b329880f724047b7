/*
 * test_proxy_proto.c: PROXY protocol v1 and v2 headers, byte for byte
 * against HAProxy's proxy-protocol.txt, and back through the parser.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "mqlb/proxy_proto.h"

/* The v2 signature, section 2.2. */
#define PP_SIG "\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A"

/* An IPv4 <ip>:<port> into <ss>. */
static const struct sockaddr *
pp_v4(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)(void *)ss;

    memset(ss, 0, sizeof(*ss));
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    cr_assert_eq(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
    return (const struct sockaddr *)ss;
}

/* An IPv6 [<ip>]:<port> into <ss>. */
static const struct sockaddr *
pp_v6(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)ss;

    memset(ss, 0, sizeof(*ss));
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    cr_assert_eq(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
    return (const struct sockaddr *)ss;
}

/* Write version <v> for <s>/<d> and compare with <want> (<n> bytes). */
static void
pp_expect(int v, const struct sockaddr *s, const struct sockaddr *d,
          const void *want, size_t n)
{
    uint8_t out[256];
    size_t got;

    memset(out, 0xaa, sizeof(out));
    got = proxy_proto_write(v, s, d, out, sizeof(out));
    cr_assert_eq(got, n, "wrote %zu bytes, want %zu: %.*s", got, n,
                 (int)got, (const char *)out);
    cr_assert(memcmp(out, want, n) == 0, "got %.*s", (int)got,
              (const char *)out);
    cr_assert_eq(out[n], 0xaa, "wrote past the header");

    /* exactly enough room works, one byte less writes nothing */
    cr_assert_eq(proxy_proto_write(v, s, d, out, n), n);
    cr_assert_eq(proxy_proto_write(v, s, d, out, n - 1), 0);
}

Test(proxy_proto, v1_tcp4_specification_example)
{
    struct sockaddr_storage s, d;
    const char want[] = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";

    pp_expect(1, pp_v4(&s, "192.168.0.1", 56324),
              pp_v4(&d, "192.168.0.11", 443), want, sizeof(want) - 1);
}

Test(proxy_proto, v1_tcp4_worst_case_is_56_bytes)
{
    struct sockaddr_storage s, d;
    const char want[] =
        "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";

    cr_assert_eq(sizeof(want) - 1, 56);
    pp_expect(1, pp_v4(&s, "255.255.255.255", 65535),
              pp_v4(&d, "255.255.255.255", 65535), want, sizeof(want) - 1);
}

Test(proxy_proto, v1_tcp6_worst_case_is_104_bytes)
{
    struct sockaddr_storage s, d;
    const char *ff = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    const char want[] = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
                        " ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
                        " 65535 65535\r\n";

    cr_assert_eq(sizeof(want) - 1, 104);
    pp_expect(1, pp_v6(&s, ff, 65535), pp_v6(&d, ff, 65535), want,
              sizeof(want) - 1);
}

Test(proxy_proto, v1_tcp6_compressed)
{
    struct sockaddr_storage s, d;
    const char want[] = "PROXY TCP6 2001:db8::1 2001:db8::ff 40000 5672\r\n";

    pp_expect(1, pp_v6(&s, "2001:db8::1", 40000),
              pp_v6(&d, "2001:db8:0::ff", 5672), want, sizeof(want) - 1);
}

Test(proxy_proto, v1_unknown_for_other_families)
{
    struct sockaddr_storage d;
    struct sockaddr_un un;
    const char want[] = "PROXY UNKNOWN\r\n";

    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    pp_expect(1, (const struct sockaddr *)&un, pp_v4(&d, "10.0.0.1", 1),
              want, sizeof(want) - 1);
    pp_expect(1, NULL, NULL, want, sizeof(want) - 1);
}

Test(proxy_proto, v4_mapped_addresses_are_written_as_tcp4)
{
    struct sockaddr_storage s, d;
    const char want4[] = "PROXY TCP4 10.0.0.1 10.0.0.2 1234 1883\r\n";
    const char want6[] = "PROXY TCP6 ::ffff:10.0.0.1 2001:db8::2 1234 1883"
                         "\r\n";

    /* a dual-stack listener sees both ends mapped */
    pp_expect(1, pp_v6(&s, "::ffff:10.0.0.1", 1234),
              pp_v6(&d, "::ffff:10.0.0.2", 1883), want4, sizeof(want4) - 1);
    /* mapped source, plain IPv4 destination */
    pp_expect(1, pp_v6(&s, "::ffff:10.0.0.1", 1234),
              pp_v4(&d, "10.0.0.2", 1883), want4, sizeof(want4) - 1);
    /* IPv4 source with a real IPv6 destination: mapped up */
    pp_expect(1, pp_v4(&s, "10.0.0.1", 1234),
              pp_v6(&d, "2001:db8::2", 1883), want6, sizeof(want6) - 1);
}

Test(proxy_proto, v2_tcp4_bytes)
{
    struct sockaddr_storage s, d;
    const uint8_t want[] = PP_SIG
        "\x21"                      /* version 2, PROXY */
        "\x11"                      /* AF_INET, STREAM */
        "\x00\x0c"                  /* 12 address bytes */
        "\xc0\xa8\x00\x01"          /* 192.168.0.1 */
        "\xc0\xa8\x00\x0b"          /* 192.168.0.11 */
        "\xdc\x04"                  /* 56324 */
        "\x01\xbb";                 /* 443 */

    cr_assert_eq(sizeof(want) - 1, 28);
    pp_expect(2, pp_v4(&s, "192.168.0.1", 56324),
              pp_v4(&d, "192.168.0.11", 443), want, sizeof(want) - 1);
}

Test(proxy_proto, v2_tcp6_bytes)
{
    struct sockaddr_storage s, d;
    const uint8_t want[] = PP_SIG
        "\x21"                      /* version 2, PROXY */
        "\x21"                      /* AF_INET6, STREAM */
        "\x00\x24"                  /* 36 address bytes */
        "\x20\x01\x0d\xb8\x00\x00\x00\x00"
        "\x00\x00\x00\x00\x00\x00\x00\x01"  /* 2001:db8::1 */
        "\x20\x01\x0d\xb8\x00\x00\x00\x00"
        "\x00\x00\x00\x00\x00\x00\x00\xff"  /* 2001:db8::ff */
        "\x9c\x40"                  /* 40000 */
        "\x16\x28";                 /* 5672 */

    cr_assert_eq(sizeof(want) - 1, 52);
    pp_expect(2, pp_v6(&s, "2001:db8::1", 40000),
              pp_v6(&d, "2001:db8::ff", 5672), want, sizeof(want) - 1);
}

Test(proxy_proto, v2_mapped_and_unspec)
{
    struct sockaddr_storage s, d;
    const uint8_t want4[] = PP_SIG "\x21\x11\x00\x0c"
        "\x0a\x00\x00\x01\x0a\x00\x00\x02\x04\xd2\x07\x5b";
    const uint8_t want0[] = PP_SIG "\x21\x00\x00\x00";

    pp_expect(2, pp_v6(&s, "::ffff:10.0.0.1", 1234),
              pp_v6(&d, "::ffff:10.0.0.2", 1883), want4, sizeof(want4) - 1);
    pp_expect(2, NULL, pp_v4(&d, "10.0.0.2", 1883), want0,
              sizeof(want0) - 1);
}

Test(proxy_proto, unknown_version_writes_nothing)
{
    struct sockaddr_storage s, d;
    uint8_t out[128];

    pp_v4(&s, "1.2.3.4", 1);
    pp_v4(&d, "5.6.7.8", 2);
    cr_assert_eq(proxy_proto_write(0, (struct sockaddr *)&s,
                                   (struct sockaddr *)&d, out, sizeof(out)),
                 0);
    cr_assert_eq(proxy_proto_write(3, (struct sockaddr *)&s,
                                   (struct sockaddr *)&d, out, sizeof(out)),
                 0);
}

/* Write, then parse every prefix (0) and the whole (1) with a payload. */
static void
pp_round_trip(int v, const struct sockaddr *s, const struct sockaddr *d,
              int family)
{
    struct sockaddr_storage ps, pd;
    uint8_t buf[256];
    size_t n, k, hdrlen;
    socklen_t alen;

    n = proxy_proto_write(v, s, d, buf, sizeof(buf));
    cr_assert_gt(n, 0);
    memcpy(buf + n, "\x10\x0c\x00\x04MQTT", 8);      /* the client's bytes */
    for (k = 0; k < n; k++) {
        cr_assert_eq(proxy_proto_parse(buf, k, &ps, &pd, &hdrlen), 0,
                     "v%d prefix %zu", v, k);
    }
    hdrlen = 0;
    cr_assert_eq(proxy_proto_parse(buf, n + 8, &ps, &pd, &hdrlen), 1);
    cr_assert_eq(hdrlen, n);
    cr_assert_eq(ps.ss_family, family);
    cr_assert_eq(pd.ss_family, family);
    alen = family == AF_INET ? sizeof(struct sockaddr_in)
                             : sizeof(struct sockaddr_in6);
    cr_assert(memcmp(&ps, s, alen) == 0);
    cr_assert(memcmp(&pd, d, alen) == 0);
}

Test(proxy_proto, round_trip_through_the_parser)
{
    struct sockaddr_storage s, d;
    int v;

    for (v = 1; v <= 2; v++) {
        pp_round_trip(v, pp_v4(&s, "192.168.0.1", 56324),
                      pp_v4(&d, "192.168.0.11", 443), AF_INET);
        pp_round_trip(v, pp_v4(&s, "0.0.0.0", 0),
                      pp_v4(&d, "255.255.255.255", 65535), AF_INET);
        pp_round_trip(v, pp_v6(&s, "2001:db8::1", 40000),
                      pp_v6(&d, "fe80::1:2:3:4", 5672), AF_INET6);
        pp_round_trip(v, pp_v6(&s, "::", 1),
                      pp_v6(&d, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                            65535), AF_INET6);
    }
}

Test(proxy_proto, parse_unknown_local_and_unspec)
{
    struct sockaddr_storage s, d;
    const uint8_t local[] = PP_SIG "\x20\x00\x00\x00";
    const uint8_t unix2[] = PP_SIG "\x21\x31\x00\xd8";
    uint8_t buf[16 + 216];
    const char *u1 = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nDATA";
    size_t hdrlen;

    cr_assert_eq(proxy_proto_parse((const uint8_t *)"PROXY UNKNOWN\r\n", 15,
                                   &s, &d, &hdrlen), 1);
    cr_assert_eq(hdrlen, 15);
    cr_assert_eq(s.ss_family, AF_UNSPEC);
    cr_assert_eq(proxy_proto_parse((const uint8_t *)u1, strlen(u1), &s, &d,
                                   &hdrlen), 1);
    cr_assert_eq(hdrlen, strlen(u1) - 4);

    cr_assert_eq(proxy_proto_parse(local, 16, &s, &d, &hdrlen), 1);
    cr_assert_eq(hdrlen, 16);
    cr_assert_eq(d.ss_family, AF_UNSPEC);

    memset(buf, 0, sizeof(buf));
    memcpy(buf, unix2, 16);
    cr_assert_eq(proxy_proto_parse(buf, sizeof(buf) - 1, &s, &d, &hdrlen),
                 0);
    cr_assert_eq(proxy_proto_parse(buf, sizeof(buf), &s, &d, &hdrlen), 1);
    cr_assert_eq(hdrlen, sizeof(buf));
    cr_assert_eq(s.ss_family, AF_UNSPEC);
}

Test(proxy_proto, parse_v2_skips_tlvs)
{
    struct sockaddr_storage s, d;
    const uint8_t hdr[] = PP_SIG "\x21\x11\x00\x13"
        "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x6f\x00\xde"
        "\x04\x00\x04" "abcd";      /* PP2_TYPE_NOOP, 4 bytes */
    struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&s;
    size_t hdrlen;

    cr_assert_eq(proxy_proto_parse(hdr, sizeof(hdr) - 1, &s, &d, &hdrlen), 1);
    cr_assert_eq(hdrlen, 16 + 19);
    cr_assert_eq(s.ss_family, AF_INET);
    cr_assert_eq(ntohs(sin->sin_port), 111);
    cr_assert_eq(ntohl(sin->sin_addr.s_addr), 0x01020304);
}

Test(proxy_proto, parse_rejects_malformed)
{
    const char *bad1[] = {
        "GET / HTTP/1.1\r\n",
        "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
        "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
        "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
        "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY\r\n",
    };
    const uint8_t ver1[] = PP_SIG "\x11\x11\x00\x0c";
    const uint8_t cmd2[] = PP_SIG "\x22\x11\x00\x0c";
    const uint8_t short4[] = PP_SIG "\x21\x11\x00\x08"
        "\x01\x02\x03\x04\x05\x06\x07\x08";
    const uint8_t fam4[] = PP_SIG "\x21\x41\x00\x00";
    const uint8_t proto3[] = PP_SIG "\x21\x13\x00\x0c"
        "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02";
    const uint8_t badsig[] = "\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0B";
    struct sockaddr_storage s, d;
    uint8_t longline[200];
    size_t i, hdrlen;

    for (i = 0; i < sizeof(bad1) / sizeof(bad1[0]); i++) {
        cr_assert_eq(proxy_proto_parse((const uint8_t *)bad1[i],
                                       strlen(bad1[i]), &s, &d, &hdrlen),
                     -1, "accepted %s", bad1[i]);
    }
    cr_assert_eq(proxy_proto_parse(ver1, 16, &s, &d, &hdrlen), -1);
    cr_assert_eq(proxy_proto_parse(cmd2, 16, &s, &d, &hdrlen), -1);
    cr_assert_eq(proxy_proto_parse(short4, sizeof(short4) - 1, &s, &d,
                                   &hdrlen), -1);
    cr_assert_eq(proxy_proto_parse(fam4, 16, &s, &d, &hdrlen), -1);
    cr_assert_eq(proxy_proto_parse(proto3, sizeof(proto3) - 1, &s, &d,
                                   &hdrlen), -1);
    cr_assert_eq(proxy_proto_parse(badsig, 12, &s, &d, &hdrlen), -1);
    cr_assert_eq(proxy_proto_parse(badsig, 11, &s, &d, &hdrlen), 0);

    /* no CRLF within 107 bytes */
    memset(longline, 'x', sizeof(longline));
    memcpy(longline, "PROXY TCP6 ", 11);
    cr_assert_eq(proxy_proto_parse(longline, 106, &s, &d, &hdrlen), 0);
    cr_assert_eq(proxy_proto_parse(longline, 107, &s, &d, &hdrlen), -1);
    cr_assert_eq(proxy_proto_parse(longline, sizeof(longline), &s, &d,
                                   &hdrlen), -1);
}

Test(proxy_proto, parse_needs_more_on_prefixes)
{
    struct sockaddr_storage s, d;
    size_t hdrlen;

    cr_assert_eq(proxy_proto_parse((const uint8_t *)"", 0, &s, &d, &hdrlen),
                 0);
    cr_assert_eq(proxy_proto_parse((const uint8_t *)"PRO", 3, &s, &d,
                                   &hdrlen), 0);
    cr_assert_eq(proxy_proto_parse((const uint8_t *)"PROXY TCP4 1.2", 14,
                                   &s, &d, &hdrlen), 0);
    cr_assert_eq(proxy_proto_parse((const uint8_t *)"PRX", 3, &s, &d,
                                   &hdrlen), -1);
    cr_assert_eq(proxy_proto_parse((const uint8_t *)PP_SIG, 5, &s, &d,
                                   &hdrlen), 0);
}

Test(proxy_proto, local_header_of_a_health_check)
{
    static const uint8_t v2[] = {
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
        0x20, 0x00, 0x00, 0x00,
    };
    struct sockaddr_storage ps, pd;
    uint8_t out[PROXY_PROTO_V1_MAX];
    size_t n, hdrlen;

    n = proxy_proto_write_local(1, out, sizeof(out));
    cr_assert_eq(n, 15);
    cr_assert(memcmp(out, "PROXY UNKNOWN\r\n", 15) == 0);
    cr_assert_eq(proxy_proto_parse(out, n, &ps, &pd, &hdrlen), 1);
    cr_assert_eq(hdrlen, n);
    cr_assert_eq(ps.ss_family, AF_UNSPEC);

    n = proxy_proto_write_local(2, out, sizeof(out));
    cr_assert_eq(n, sizeof(v2));
    cr_assert(memcmp(out, v2, sizeof(v2)) == 0);
    cr_assert_eq(proxy_proto_parse(out, n, &ps, &pd, &hdrlen), 1);
    cr_assert_eq(hdrlen, n);
    cr_assert_eq(pd.ss_family, AF_UNSPEC);

    cr_assert_eq(proxy_proto_write_local(0, out, sizeof(out)), 0);
    cr_assert_eq(proxy_proto_write_local(2, out, 15), 0);
    cr_assert_eq(proxy_proto_write_local(1, out, 14), 0);
}

/* ---- TLS TLVs, in the layout of HAProxy's send-proxy-v2-ssl-cn ------ */

Test(proxy_proto, v2_tls_tlvs_byte_for_byte_as_haproxy_writes_them)
{
    static const uint8_t want[] =
        PP_SIG "\x21\x11\x00\x52"
        "\x7f\x00\x00\x01" "\x7f\x00\x00\x02" "\x30\x39" "\x22\xb3"
        "\x01\x00\x04" "mqtt"                           /* ALPN */
        "\x02\x00\x06" "a.test"                         /* AUTHORITY */
        "\x20\x00\x33"                                  /* SSL, 51 bytes */
        "\x07" "\x00\x00\x00\x00"                       /* SSL|CONN|SESS, ok */
        "\x21\x00\x07" "TLSv1.3"                        /* VERSION */
        "\x22\x00\x08" "device-7"                       /* CN */
        "\x23\x00\x16" "TLS_AES_256_GCM_SHA384";        /* CIPHER */
    struct sockaddr_storage s, d;
    struct proxy_proto_tls tls = {
        .alpn = (const uint8_t *)"mqtt", .alpnlen = 4,
        .sni = (const uint8_t *)"a.test", .snilen = 6,
        .version = "TLSv1.3",
        .cn = (const uint8_t *)"device-7", .cnlen = 8,
        .cipher = "TLS_AES_256_GCM_SHA384",
        .cert = 1, .verify = 0,
    };
    uint8_t out[PROXY_PROTO_V2_TLS_MAX];
    size_t n;

    n = proxy_proto_write_tls(pp_v4(&s, "127.0.0.1", 12345),
                              pp_v4(&d, "127.0.0.2", 8883), &tls, out,
                              sizeof(out));
    cr_assert_eq(n, sizeof(want) - 1);
    cr_assert_arr_eq(out, want, n);
}

Test(proxy_proto, v2_tls_without_a_client_certificate_sends_verify_zero)
{
    struct sockaddr_storage s, d, ps, pd;
    struct proxy_proto_tls tls = {
        .version = "TLSv1.2", .cipher = "ECDHE-RSA-AES128-GCM-SHA256",
        .cert = 0, .verify = 20,    /* not sent without a certificate */
    };
    uint8_t out[PROXY_PROTO_V2_TLS_MAX];
    const uint8_t *v;
    size_t n, hdrlen, vlen;

    n = proxy_proto_write_tls(pp_v4(&s, "10.0.0.1", 1000),
                              pp_v4(&d, "10.0.0.2", 2000), &tls, out,
                              sizeof(out));
    cr_assert_gt(n, 28);
    /* The address parser still reads it, TLVs included in the length. */
    cr_assert_eq(proxy_proto_parse(out, n, &ps, &pd, &hdrlen), 1);
    cr_assert_eq(hdrlen, n);
    cr_assert_eq(proxy_proto_tlv_find(out, n, PP2_TYPE_SSL, &v, &vlen), 1);
    cr_assert_eq(v[0], PP2_CLIENT_SSL);
    cr_assert_arr_eq(v + 1, "\0\0\0\0", 4);
    cr_assert_eq(proxy_proto_tlv_find(out, n, PP2_SUBTYPE_SSL_VERSION, &v,
                                      &vlen), 1);
    cr_assert_eq(vlen, 7);
    cr_assert_arr_eq(v, "TLSv1.2", 7);
    cr_assert_eq(proxy_proto_tlv_find(out, n, PP2_SUBTYPE_SSL_CN, &v, &vlen),
                 0);
    cr_assert_eq(proxy_proto_tlv_find(out, n, PP2_TYPE_AUTHORITY, &v,
                                      &vlen), 0);
}

Test(proxy_proto, v2_tls_failed_verification_is_sent_in_network_order)
{
    struct sockaddr_storage s, d;
    struct proxy_proto_tls tls = { .cert = 1, .verify = 0x0102 };
    uint8_t out[PROXY_PROTO_V2_TLS_MAX];
    const uint8_t *v;
    size_t n, vlen;

    n = proxy_proto_write_tls(pp_v6(&s, "2001:db8::1", 1),
                              pp_v6(&d, "2001:db8::2", 2), &tls, out,
                              sizeof(out));
    cr_assert_eq(n, 16 + 36 + 8);
    cr_assert_eq(proxy_proto_tlv_find(out, n, PP2_TYPE_SSL, &v, &vlen), 1);
    cr_assert_eq(vlen, 5);
    cr_assert_arr_eq(v, "\x07\x00\x00\x01\x02", 5);
}

Test(proxy_proto, v2_tls_too_small_a_buffer_writes_nothing)
{
    struct sockaddr_storage s, d;
    struct proxy_proto_tls tls = { .version = "TLSv1.3" };
    uint8_t out[PROXY_PROTO_V2_TLS_MAX];
    size_t full, cap;

    full = proxy_proto_write_tls(pp_v4(&s, "127.0.0.1", 1),
                                 pp_v4(&d, "127.0.0.1", 2), &tls, out,
                                 sizeof(out));
    for (cap = 0; cap < full; cap++) {
        cr_assert_eq(proxy_proto_write_tls((struct sockaddr *)&s,
                                           (struct sockaddr *)&d, &tls, out,
                                           cap), 0, "cap %zu", cap);
    }
}
