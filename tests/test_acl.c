/*
 * test_acl.c: CIDR parsing and matching at the edges: /0, /32, /128,
 * v4-mapped v6 peers against v4 blocks, non-byte prefixes and bad input.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <criterion/criterion.h>

#include "mqlb/acl.h"
#include "mqlb/common.h"

/* A peer address (v4 or v6 text) as the accept() would give it. */
struct acl_peer {
    struct sockaddr_storage ss;
};

static const struct sockaddr *
acl_peer(struct acl_peer *p, const char *text)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)&p->ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&p->ss;

    memset(p, 0, sizeof(*p));
    if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(40000);
    } else {
        cr_assert_eq(inet_pton(AF_INET6, text, &s6->sin6_addr), 1,
                     "test address %s", text);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(40000);
    }
    return (const struct sockaddr *)&p->ss;
}

/* Does <peer> fall in the single block <cidr>? */
static bool
acl_in(const char *cidr, const char *peer)
{
    struct acl_cidr c;
    struct acl_peer p;

    cr_assert_eq(acl_parse_cidr(cidr, &c), MQ_OK, "parse %s", cidr);
    return acl_match(&c, 1, acl_peer(&p, peer));
}

Test(acl, v4_zero_prefix_matches_every_v4_peer)
{
    static const char *const peers[] = {
        "0.0.0.0", "1.2.3.4", "10.0.0.1", "127.0.0.1", "255.255.255.255",
        "::ffff:10.1.2.3", "::ffff:0.0.0.0",
    };
    size_t i;

    for (i = 0; i < MQ_NELEMS(peers); i++) {
        cr_expect(acl_in("0.0.0.0/0", peers[i]), "%s", peers[i]);
    }
    cr_expect_not(acl_in("0.0.0.0/0", "::1"), "not a v6 peer");
    cr_expect_not(acl_in("0.0.0.0/0", "2001:db8::1"));
    cr_expect_not(acl_in("0.0.0.0/0", "::"));
}

Test(acl, v6_zero_prefix_matches_everything)
{
    static const char *const peers[] = {
        "::", "::1", "2001:db8::1", "fe80::1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::ffff:10.1.2.3",
        "10.1.2.3", "255.255.255.255",
    };
    size_t i;

    for (i = 0; i < MQ_NELEMS(peers); i++) {
        cr_expect(acl_in("::/0", peers[i]), "%s", peers[i]);
    }
}

Test(acl, zero_prefix_ignores_the_address_bits)
{
    struct acl_cidr c;

    cr_assert_eq(acl_parse_cidr("10.20.30.40/0", &c), MQ_OK);
    cr_expect_eq(c.prefix, 96);
    cr_expect(acl_in("10.20.30.40/0", "192.168.0.1"));
    cr_expect(acl_in("2001:db8::1/0", "10.0.0.1"));
}

Test(acl, slash_32_matches_one_v4_address)
{
    struct acl_cidr c;

    cr_assert_eq(acl_parse_cidr("192.168.1.7/32", &c), MQ_OK);
    cr_expect_eq(c.prefix, 128);
    cr_expect(acl_in("192.168.1.7/32", "192.168.1.7"));
    cr_expect(acl_in("192.168.1.7/32", "::ffff:192.168.1.7"));
    cr_expect_not(acl_in("192.168.1.7/32", "192.168.1.6"));
    cr_expect_not(acl_in("192.168.1.7/32", "192.168.1.8"));
    cr_expect_not(acl_in("192.168.1.7/32", "193.168.1.7"));
}

Test(acl, bare_address_is_a_single_host)
{
    cr_expect(acl_in("10.1.2.3", "10.1.2.3"));
    cr_expect_not(acl_in("10.1.2.3", "10.1.2.4"));
    cr_expect(acl_in("::1", "::1"));
    cr_expect_not(acl_in("::1", "::2"));
}

Test(acl, slash_128_matches_one_v6_address)
{
    cr_expect(acl_in("2001:db8::5/128", "2001:db8::5"));
    cr_expect_not(acl_in("2001:db8::5/128", "2001:db8::4"));
    cr_expect_not(acl_in("2001:db8::5/128", "2001:db8::5:0"));
    cr_expect(acl_in("::1/128", "::1"));
    cr_expect_not(acl_in("::1/128", "127.0.0.1"));
}

Test(acl, v4_mapped_v6_peer_matches_a_v4_block)
{
    cr_expect(acl_in("10.0.0.0/8", "::ffff:10.1.2.3"));
    cr_expect(acl_in("10.0.0.0/8", "10.1.2.3"));
    cr_expect_not(acl_in("10.0.0.0/8", "::ffff:11.1.2.3"));
    /* A v4-compatible (not mapped) address is another thing. */
    cr_expect_not(acl_in("10.0.0.0/8", "::10.1.2.3"));
    /* And a v4-mapped block matches plain v4 peers. */
    cr_expect(acl_in("::ffff:10.0.0.0/104", "10.200.0.1"));
}

Test(acl, prefixes_off_byte_boundaries)
{
    cr_expect(acl_in("192.168.0.0/23", "192.168.1.255"));
    cr_expect_not(acl_in("192.168.0.0/23", "192.168.2.0"));
    cr_expect(acl_in("172.16.0.0/12", "172.31.255.255"));
    cr_expect_not(acl_in("172.16.0.0/12", "172.32.0.0"));
    cr_expect(acl_in("10.0.0.0/31", "10.0.0.1"));
    cr_expect_not(acl_in("10.0.0.0/31", "10.0.0.2"));
    cr_expect(acl_in("2001:db8::/33", "2001:db8:7fff::1"));
    cr_expect_not(acl_in("2001:db8::/33", "2001:db8:8000::1"));
    cr_expect(acl_in("fe80::/10", "febf::1"));
    cr_expect_not(acl_in("fe80::/10", "fec0::1"));
}

Test(acl, host_bits_of_the_block_are_cleared)
{
    struct acl_cidr c;

    cr_assert_eq(acl_parse_cidr("10.1.2.3/8", &c), MQ_OK);
    cr_expect_eq(c.prefix, 104);
    cr_expect_eq(c.addr[12], 10);
    cr_expect_eq(c.addr[13], 0);
    cr_expect_eq(c.addr[14], 0);
    cr_expect_eq(c.addr[15], 0);
    cr_expect(acl_in("10.1.2.3/8", "10.255.0.1"));
}

Test(acl, list_matches_if_any_block_does)
{
    struct acl_cidr list[3];
    struct acl_peer p;

    cr_assert_eq(acl_parse_cidr("127.0.0.0/8", &list[0]), MQ_OK);
    cr_assert_eq(acl_parse_cidr("::1", &list[1]), MQ_OK);
    cr_assert_eq(acl_parse_cidr("192.168.0.0/16", &list[2]), MQ_OK);
    cr_expect(acl_match(list, 3, acl_peer(&p, "127.9.9.9")));
    cr_expect(acl_match(list, 3, acl_peer(&p, "::1")));
    cr_expect(acl_match(list, 3, acl_peer(&p, "192.168.44.1")));
    cr_expect_not(acl_match(list, 3, acl_peer(&p, "8.8.8.8")));
    cr_expect_not(acl_match(list, 0, acl_peer(&p, "127.0.0.1")),
                  "an empty list matches nothing");
}

Test(acl, other_families_never_match)
{
    struct acl_cidr c;
    struct sockaddr_storage ss;

    cr_assert_eq(acl_parse_cidr("::/0", &c), MQ_OK);
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    cr_expect_not(acl_match(&c, 1, (const struct sockaddr *)&ss));
}

Test(acl, bad_input_is_rejected)
{
    static const char *const bad[] = {
        "10.0.0.0/33", "::1/129", "abc", "10.0.0.0/", "10.0.0.0/-1",
        "10.0.0.0/+8", "10.0.0.0/8x", "10.0.0.0/ 8", "10.0.0/8", "/8", "",
        "10.0.0.0/8/8", "1.2.3.4.5", "::1/", "::g/64", "10.0.0.0 /8",
        "10.0.0.0/99999999999999999999",
        "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc/64",
    };
    struct acl_cidr c;
    size_t i;

    for (i = 0; i < MQ_NELEMS(bad); i++) {
        cr_expect_eq(acl_parse_cidr(bad[i], &c), MQ_ERR, "'%s' accepted",
                     bad[i]);
    }
}

Test(acl, largest_prefixes_are_accepted)
{
    struct acl_cidr c;

    cr_expect_eq(acl_parse_cidr("10.0.0.0/32", &c), MQ_OK);
    cr_expect_eq(acl_parse_cidr("::/128", &c), MQ_OK);
    cr_expect_eq(acl_parse_cidr("::ffff:1.2.3.4/128", &c), MQ_OK);
    cr_expect_eq(acl_parse_cidr("0.0.0.0/00", &c), MQ_OK);
    cr_expect_eq(c.prefix, 96);
}
