/*
 * discovery.h: backends from DNS, on the main loop. Every pool with a
 * backend host name or a discover = line is re-resolved every
 * resolve_interval (sooner when a record's TTL runs out, never more than
 * once a second) through the resolver (c-ares, asynchronous). What the
 * answers mean for the pool is told to the owner through ops: add a
 * backend, let one go (drain, then gone), move one to a new address. A
 * DNS failure changes nothing: the last known set stays, and the error is
 * kept for /status.
 */
#ifndef MQLB_DISCOVERY_H
#define MQLB_DISCOVERY_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqlb/backend.h"
#include "mqlb/config.h"
#include "mqlb/resolver.h"

struct pool;
struct discovery;

/* What the owner does with the answers; all called on the main loop. */
struct discovery_ops {
    void   *ctx;
    /* A new backend <cb> for <p> (checked before use); MQ_ERR if not. */
    int   (*add)(void *ctx, struct pool *p, const struct config_backend *cb);
    /* <b> of <p> left the answer: drain it, then remove it. */
    void  (*remove)(void *ctx, struct pool *p, struct backend *b);
    /* <b> of <p> resolves to <a> now (check it, then move it). */
    void  (*readdress)(void *ctx, struct pool *p, struct backend *b,
                       const struct config_addr *a);
};

/* Per pool, for /status. */
struct discovery_status {
    bool        active;             /* the pool has names to resolve */
    uint64_t    last_ok_ms;         /* wall clock of the last full answer */
    uint64_t    last_error_ms;      /* wall clock of the last failure */
    char        last_error[200];    /* "" when the last round succeeded */
    uint64_t    nrounds;            /* rounds done */
    uint64_t    nfailed;            /* rounds with a failure */
};

/*
 * Discovery on <loop> through <resolvers> (as resolver_create) every
 * <interval_ms>. NULL with a message in <err> (MQ_ERR_LEN).
 */
struct discovery *discovery_create(struct ev_loop *loop,
                                   const char *resolvers,
                                   uint64_t interval_ms,
                                   const struct discovery_ops *ops,
                                   char *err);
/*
 * Resolve for these pools from now on (a reload's new set; queries in
 * flight for the old set are dropped). Takes pool references. Status
 * is kept by pool name. MQ_ERR on no memory (the old set runs on).
 */
int discovery_set_pools(struct discovery *d, struct pool *const *pools,
                        size_t npools);
/* Resolve pool <name> now (a runtime backend with a host name). */
void discovery_kick(struct discovery *d, const char *name);
/* Copy the status of pool <name> (any thread). */
void discovery_get_status(struct discovery *d, const char *name,
                          struct discovery_status *out);
void discovery_destroy(struct discovery *d);

/* ---- pure parts, for the unit tests ------------------------------------ */

/* One backend an answer asks for. */
struct discovery_want {
    char                name[CONFIG_NAME_LEN];
    struct resolver_addr addr;
    unsigned            weight;     /* 1..256 */
    bool                backup;
    bool                resolved;   /* <addr> is known */
    char                target[RESOLVER_NAME_LEN];  /* SRV: to resolve */
    unsigned            port;       /* SRV: with <target> */
};

/*
 * The backend name for address <a> of `discover = dns NAME:PORT`:
 * "NAME-ADDR" (IPv6 colons become '-'); when too long, NAME is cut to
 * its first label, then ADDR alone is used.
 */
void discovery_addr_name(const char *dns_name, const struct resolver_addr *a,
                         char *out);

/*
 * What the SRV records <srvs> (sorted, as resolver_parse_srv leaves them)
 * ask for: one backend per target:port, named by target (target-PORT when
 * one target has several ports; cut to fit); the lowest priority serves,
 * the others are backups; SRV weights become backend weights (scaled
 * into 1..256 keeping their ratios). Fills <out> (room for RESOLVER_MAX_SRV)
 * and returns how many; addresses are left unresolved.
 */
size_t discovery_srv_plan(const struct resolver_srv *srvs, size_t n,
                          struct discovery_want *out);

/*
 * When to ask again: <interval_ms>, or sooner when the smallest TTL
 * <ttl_s> runs out first, never sooner than a second.
 */
uint64_t discovery_next_ms(uint64_t interval_ms, uint32_t ttl_s);

#endif /* MQLB_DISCOVERY_H */
