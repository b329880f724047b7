/*
 * lb.h: balancing algorithms as ops tables (haproxy's lb_ops). The pool
 * calls them under its lock with the candidates it already filtered.
 */
#ifndef MQLB_LB_H
#define MQLB_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqlb/config.h"

struct backend;

/* A backend that may take this session, with its effective weight. */
struct lb_cand {
    struct backend *b;          /* eligible and not yet tried */
    unsigned        index;      /* its position in this pool */
    unsigned        weight;     /* >= 1, after slow start */
};

/* What one pick is about. */
struct lb_pick {
    const struct lb_cand *cands;    /* candidates, in pool order */
    size_t          ncands;         /* >= 1 */
    uint64_t        key;            /* hash of client address or client id */
    bool            has_key;        /* key is meaningful */
};

struct lb_ops {
    const char     *name;
    /* Private state for a pool of <nbackends>; NULL on no memory. */
    void         *(*create)(size_t nbackends);
    void          (*destroy)(void *st);
    /*
     * Optional (NULL: nothing to precompute). Membership, state or weight
     * changed: <all> is every backend of the pool (index order: all[i] is
     * at position i) and <usable> says which may be chosen now. Positions
     * are the pool's, never b->index: a backend kept across a reload may
     * sit elsewhere in the new pool.
     */
    void          (*rebuild)(void *st, struct backend *const *all,
                             const bool *usable, size_t n);
    /*
     * Set when rebuild is costly (a table of tens of thousands of slots):
     * the pool then rebuilds off the workers' path (pool.c).
     */
    unsigned        heavy:1;
    /* Index into <p->cands> of the chosen backend. */
    size_t        (*pick)(void *st, const struct lb_pick *p);
    /*
     * Optional (NULL: no key has a home). True when the backend at pool
     * position <index> is <key>'s home: where the key goes whenever that
     * backend can take it, rather than a stand-in while it is away.
     */
    bool          (*is_home)(const void *st, uint64_t key, size_t index);
};

extern const struct lb_ops lb_rr_ops;
extern const struct lb_ops lb_leastconn_ops;
extern const struct lb_ops lb_maglev_ops;
extern const struct lb_ops lb_random_ops;

/* The ops for <balance>. */
const struct lb_ops *lb_ops_for(enum config_balance balance);

/* 64-bit hash (FNV-1a then a mix) used for source and client-id keys. */
uint64_t lb_hash(const void *data, size_t len);

/* Active sessions of <c>'s backend; a transiently negative count is 0. */
uint64_t lb_cand_active(const struct lb_cand *c);

#endif /* MQLB_LB_H */
