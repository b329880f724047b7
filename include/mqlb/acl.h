/*
 * acl.h: CIDR allow lists for client addresses (IPv4 and IPv6).
 */
#ifndef MQLB_ACL_H
#define MQLB_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* One CIDR block; v4 blocks are stored as v4-mapped v6 (::ffff:a.b.c.d). */
struct acl_cidr {
    uint8_t     addr[16];   /* network address, v6 or v4-mapped */
    unsigned    prefix;     /* prefix length over the 128-bit form */
};

/* Parse "10.0.0.0/8", "::1/128" or a bare address into <out>. */
int acl_parse_cidr(const char *text, struct acl_cidr *out);

/* true if <sa> (AF_INET or AF_INET6) falls in any of <n> blocks. */
/*
 * Write <c> into <buf> (<len> >= ACL_CIDR_TEXT) as acl_parse_cidr reads
 * it back: an IPv4 block as "10.0.0.0/8", an IPv6 one as "2001:db8::/32".
 */
#define ACL_CIDR_TEXT   64
void acl_format_cidr(const struct acl_cidr *c, char *buf, size_t len);

bool acl_match(const struct acl_cidr *list, size_t n, const struct sockaddr *sa);

#endif /* MQLB_ACL_H */
