/*
 * acl.c: CIDR allow lists. Every address is compared in its 128-bit form
 * (IPv4 as ::ffff:a.b.c.d), so one list serves v4, v6 and v4-mapped peers.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mqlb/acl.h"
#include "mqlb/common.h"
#include "mqlb/net.h"

int
acl_parse_cidr(const char *text, struct acl_cidr *out)
{
    char buf[64], *slash, *end;
    struct in_addr a4;
    struct in6_addr a6;
    unsigned long prefix;
    unsigned maxp, i;

    if (strlen(text) >= sizeof(buf)) {
        return MQ_ERR;
    }
    strcpy(buf, text);
    slash = strchr(buf, '/');
    if (slash != NULL) {
        *slash++ = '\0';
    }
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        net_map_v4(&a4, out->addr);
        maxp = 32;
    } else if (inet_pton(AF_INET6, buf, &a6) == 1) {
        memcpy(out->addr, &a6, 16);
        maxp = 128;
    } else {
        return MQ_ERR;
    }
    prefix = maxp;
    if (slash != NULL) {
        if (*slash < '0' || *slash > '9') {
            return MQ_ERR;
        }
        prefix = strtoul(slash, &end, 10);
        if (*end != '\0' || prefix > maxp) {
            return MQ_ERR;
        }
    }
    out->prefix = (unsigned)prefix + (maxp == 32 ? 96 : 0);
    /* Clear host bits so that matching is a plain masked compare. */
    for (i = out->prefix; i < 128; i++) {
        out->addr[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
    }
    return MQ_OK;
}

void
acl_format_cidr(const struct acl_cidr *c, char *buf, size_t len)
{
    static const uint8_t mapped[12] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
    };
    char text[INET6_ADDRSTRLEN];

    if (c->prefix >= 96 && memcmp(c->addr, mapped, 12) == 0) {
        inet_ntop(AF_INET, c->addr + 12, text, sizeof(text));
        snprintf(buf, len, "%s/%u", text, c->prefix - 96);
    } else {
        inet_ntop(AF_INET6, c->addr, text, sizeof(text));
        snprintf(buf, len, "%s/%u", text, c->prefix);
    }
}

static bool
acl_match_one(const struct acl_cidr *c, const uint8_t a[16])
{
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    uint8_t mask;

    if (memcmp(c->addr, a, full) != 0) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    mask = (uint8_t)(0xff00u >> rest);
    return (c->addr[full] & mask) == (a[full] & mask);
}

bool
acl_match(const struct acl_cidr *list, size_t n, const struct sockaddr *sa)
{
    uint8_t a[16];
    size_t i;

    if (!net_addr128(sa, a)) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if (acl_match_one(&list[i], a)) {
            return true;
        }
    }
    return false;
}
