/*
 * resolver.h: asynchronous DNS (c-ares) on a libev loop, and a bounded
 * blocking lookup for the config load. The asynchronous side never blocks
 * its loop: c-ares' sockets are watched with ev_io, its timeouts with one
 * ev_timer. A leaf: it knows nothing of pools or backends.
 */
#ifndef MQLB_RESOLVER_H
#define MQLB_RESOLVER_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define RESOLVER_MAX_ADDRS  64      /* addresses kept from one answer */
#define RESOLVER_MAX_SRV    64      /* SRV records kept from one answer */
#define RESOLVER_NAME_LEN   256     /* a DNS name, with its NUL */
#define RESOLVER_TTL_NONE   UINT32_MAX  /* the answer gave no TTL */

/* One address of an answer. */
struct resolver_addr {
    struct sockaddr_storage ss;     /* family, address and the asked port */
    socklen_t       len;
};

/* One SRV record. */
struct resolver_srv {
    char            target[RESOLVER_NAME_LEN];  /* no trailing dot */
    unsigned        port;
    unsigned        priority;       /* lower is preferred */
    unsigned        weight;         /* share within a priority */
};

/* The outcome of one query. <error> is "" on success. */
struct resolver_result {
    char            error[128];     /* "NXDOMAIN", "timeout", ... */
    uint32_t        ttl_s;          /* smallest TTL; RESOLVER_TTL_NONE */
    struct resolver_addr addrs[RESOLVER_MAX_ADDRS];
    size_t          naddrs;
    struct resolver_srv srvs[RESOLVER_MAX_SRV];
    size_t          nsrvs;
};

struct resolver;

/*
 * Called on the loop when a query ends (also when the resolver is
 * destroyed with queries in flight: <res->error> is then "cancelled").
 * <res> is valid during the call only.
 */
typedef void (*resolver_fn)(void *arg, const struct resolver_result *res);

/*
 * A resolver on <loop> asking <servers>: NULL or "" for /etc/resolv.conf,
 * a path (starts with '/') to a resolv.conf-style file, or a list of
 * addresses "IP[:PORT]" or "[IPV6][:PORT]" separated by commas or spaces.
 * NULL with a message in <err> (MQ_ERR_LEN) on failure.
 */
struct resolver *resolver_create(struct ev_loop *loop, const char *servers,
                                 char *err);
/* Cancel what is in flight (callbacks run with "cancelled") and free. */
void resolver_destroy(struct resolver *r);

/*
 * Ask for the A and AAAA records of <host>; the addresses come back with
 * <port>. IPv4 addresses come first. MQ_OK, or MQ_ERR on no memory.
 */
int resolver_lookup(struct resolver *r, const char *host, unsigned port,
                    resolver_fn cb, void *arg);

/* Ask for the SRV records of <name> (targets are not resolved). */
int resolver_srv(struct resolver *r, const char *name, resolver_fn cb,
                 void *arg);

/*
 * Blocking: the first address of <host> (IPv4 preferred) with <port>,
 * asking <servers> (as resolver_create), for at most about <timeout_ms>.
 * For the config load and `mqlb -t` only, never on a running loop's
 * path. MQ_ERR with the reason in <err> (MQ_ERR_LEN).
 */
int resolver_lookup_sync(const char *servers, const char *host,
                         unsigned port, unsigned timeout_ms,
                         struct resolver_addr *out, char *err);

/* ---- pure parts, for the unit tests ------------------------------------ */

/*
 * <text> as resolver_create takes it, turned into c-ares' "host:port,..."
 * list in <out> (<outlen> bytes). MQ_ERR with a reason in <err>
 * (MQ_ERR_LEN) when an entry is not an IP address with an optional port.
 */
int resolver_servers_csv(const char *text, char *out, size_t outlen,
                         char *err);

/*
 * The smallest TTL of the answer section of the DNS message <buf> (<len>
 * bytes) in <*ttl>, RESOLVER_TTL_NONE when it has no answers. MQ_ERR when
 * the message is malformed.
 */
int resolver_answer_ttl(const unsigned char *buf, size_t len, uint32_t *ttl);

/*
 * Fill <res> from the raw SRV answer <buf> (<len> bytes): the records in
 * <res->srvs>, sorted by priority, then target, then port, and the TTL.
 * MQ_ERR with <res->error> set when it does not parse.
 */
int resolver_parse_srv(const unsigned char *buf, size_t len,
                       struct resolver_result *res);

#endif /* MQLB_RESOLVER_H */
