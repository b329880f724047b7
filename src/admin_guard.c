/*
 * admin_guard.c: the Host and Origin rules of the admin port (see
 * admin_guard.h for the attacks they stop).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mqlb/admin_guard.h"
#include "mqlb/common.h"

#define ADMIN_GUARD_NAME_MAX    253     /* a DNS name, dots included */

/*
 * The host part of a Host header or of an address text ("name:port",
 * "1.2.3.4:port", "[::1]:port", "name") into <out> (<size> bytes), with
 * IPv6 brackets and one trailing dot removed. False when it is empty,
 * too long or malformed.
 */
static bool
admin_guard_host_part(const char *text, char *out, size_t size)
{
    const char *end, *colon;
    size_t n;

    if (text[0] == '[') {
        end = strchr(text, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
            return false;
        }
        text++;
    } else {
        colon = strchr(text, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            return false;       /* a bare IPv6 address is not a Host */
        }
        end = colon != NULL ? colon : text + strlen(text);
    }
    n = (size_t)(end - text);
    if (n > 0 && text[n - 1] == '.') {
        n--;
    }
    if (n == 0 || n >= size) {
        return false;
    }
    memcpy(out, text, n);
    out[n] = '\0';
    return true;
}

/* <host> as an address of <family> into <ip>; false if it is not one. */
static bool
admin_guard_ip(const char *host, int family, void *ip)
{
    return inet_pton(family, host, ip) == 1;
}

/* True when the IP literal <host> is (or may reach) <listen>. */
static bool
admin_guard_ip_ok(const char *host, const struct config_addr *listen)
{
    const struct sockaddr_in *s4 = (const void *)&listen->ss;
    const struct sockaddr_in6 *s6 = (const void *)&listen->ss;
    struct in6_addr ip6;
    struct in_addr ip4;

    if (admin_guard_ip(host, AF_INET, &ip4)) {
        if (listen->ss.ss_family == AF_INET) {
            return s4->sin_addr.s_addr == htonl(INADDR_ANY) ||
                   s4->sin_addr.s_addr == ip4.s_addr;
        }
        /* A dual-stack [::] listen takes IPv4 clients too. */
        return listen->ss.ss_family == AF_INET6 &&
               IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
    }
    if (!admin_guard_ip(host, AF_INET6, &ip6) ||
        listen->ss.ss_family != AF_INET6) {
        return false;
    }
    return IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) ||
           memcmp(&s6->sin6_addr, &ip6, sizeof(ip6)) == 0;
}

static bool
admin_guard_is_loopback(const struct config_addr *a)
{
    const struct sockaddr_in *s4 = (const void *)&a->ss;
    const struct sockaddr_in6 *s6 = (const void *)&a->ss;

    if (a->ss.ss_family == AF_INET) {
        return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    }
    return a->ss.ss_family == AF_INET6 &&
           IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
}

/* True when <host> is one of the separated <names>, without case. */
static bool
admin_guard_in_names(const char *host, const char *names)
{
    size_t n, hlen = strlen(host);

    while (names != NULL && *names != '\0') {
        names += strspn(names, " \t,");
        n = strcspn(names, " \t,");
        if (n > 0 && names[n - 1] == '.') {
            if (n - 1 == hlen && strncasecmp(names, host, hlen) == 0) {
                return true;
            }
        } else if (n == hlen && n > 0 && strncasecmp(names, host, n) == 0) {
            return true;
        }
        names += n;
    }
    return false;
}

bool
admin_guard_host_ok(const char *host, const struct config_addr *listen,
                    const char *names)
{
    char h[ADMIN_GUARD_NAME_MAX + 2], own[ADMIN_GUARD_NAME_MAX + 2];

    if (host == NULL) {
        return true;    /* HTTP/1.0: browsers always send Host */
    }
    if (!admin_guard_host_part(host, h, sizeof(h))) {
        return false;
    }
    if (admin_guard_ip_ok(h, listen)) {
        return true;
    }
    if (strcasecmp(h, "localhost") == 0 && admin_guard_is_loopback(listen)) {
        return true;
    }
    /* listen = admin.internal:9000: its own name */
    if (admin_guard_host_part(listen->text, own, sizeof(own)) &&
        strcasecmp(h, own) == 0) {
        return true;
    }
    return admin_guard_in_names(h, names);
}

bool
admin_guard_origin_ok(const char *origin, const char *host)
{
    static const char *const schemes[] = { "http://", "https://" };
    size_t i, n;

    if (origin == NULL) {
        return true;
    }
    if (host == NULL) {
        return false;   /* nothing to be the same origin as */
    }
    for (i = 0; i < MQ_NELEMS(schemes); i++) {
        n = strlen(schemes[i]);
        if (strncasecmp(origin, schemes[i], n) == 0 &&
            strcasecmp(origin + n, host) == 0) {
            return true;
        }
    }
    return false;
}
