/*
 * lb.c: the table from `balance =` to an algorithm, and the key hash.
 */
#include <stdatomic.h>

#include "mqlb/backend.h"
#include "mqlb/lb.h"

const struct lb_ops *
lb_ops_for(enum config_balance balance)
{
    switch (balance) {
    case BALANCE_LEASTCONN:
        return &lb_leastconn_ops;
    case BALANCE_SOURCE:
    case BALANCE_MQTT_CLIENT_ID:
        return &lb_maglev_ops;
    case BALANCE_RANDOM:
        return &lb_random_ops;
    case BALANCE_ROUNDROBIN:
    default:
        return &lb_rr_ops;
    }
}

uint64_t
lb_hash(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    /* FNV alone clusters on near-equal inputs; finish with a mix. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t
lb_cand_active(const struct lb_cand *c)
{
    int64_t nactive;

    nactive = atomic_load_explicit(&c->b->nactive, memory_order_relaxed);
    return nactive < 0 ? 0 : (uint64_t)nactive;
}
