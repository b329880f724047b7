/*
 * pool.c: which backends may take a session, and asking the pool's
 * algorithm to choose one of them.
 *
 * Primaries serve while any of them is up; backups serve only while none
 * is (haproxy's rule). If every primary is up but tried or full, backups
 * are tried too: serving the client beats refusing it.
 */
#include <stdlib.h>
#include <string.h>

#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/lb.h"
#include "mqlb/pool.h"
#include "mqlb/rate.h"

struct pool *
pool_create(const struct config_pool *cf, struct backend *const *backends,
            _Atomic uint64_t *nrejected)
{
    struct pool *p;
    size_t i, n = cf->nbackends;

    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->cf = cf;
    p->nrejected = nrejected;
    p->lb = lb_ops_for(cf->balance);
    p->backends = calloc(n, sizeof(*p->backends));
    p->usable = calloc(n, sizeof(*p->usable));
    p->cands = calloc(n, sizeof(*p->cands));
    p->lb_state = p->lb->create(n);
    if (p->backends == NULL || p->usable == NULL || p->cands == NULL ||
        p->lb_state == NULL) {
        if (p->lb_state != NULL) {
            p->lb->destroy(p->lb_state);
        }
        free(p->backends);
        free(p->usable);
        free(p->cands);
        free(p);
        return NULL;
    }
    for (i = 0; i < n; i++) {
        p->backends[i] = backends[i];
        p->backends[i]->index = (unsigned)i;
        backend_acquire(backends[i]);
    }
    p->nbackends = n;
    p->lb_version = UINT64_MAX;     /* forces a first rebuild */
    pthread_mutex_init(&p->lock, NULL);
    atomic_init(&p->refcnt, 1);
    return p;
}

void
pool_acquire(struct pool *p)
{
    atomic_fetch_add_explicit(&p->refcnt, 1, memory_order_relaxed);
}

void
pool_release(struct pool *p)
{
    size_t i;

    if (p == NULL ||
        atomic_fetch_sub_explicit(&p->refcnt, 1, memory_order_acq_rel) != 1) {
        return;
    }
    for (i = 0; i < p->nbackends; i++) {
        backend_release(p->backends[i]);
    }
    p->lb->destroy(p->lb_state);
    pthread_mutex_destroy(&p->lock);
    free(p->backends);
    free(p->usable);
    free(p->cands);
    if (p->owner_release != NULL) {
        p->owner_release(p->owner);
    }
    free(p);
}

/* Up and not drained: may be in the algorithm's table. */
static bool
pool_backend_serves(const struct backend *b)
{
    return backend_state(b) == BACKEND_UP &&
           atomic_load_explicit(&b->weight, memory_order_relaxed) > 0;
}

/* Has <b> a connect token at <now_ms>? (Takes none.) */
static bool
pool_has_token(const struct backend *b, uint64_t now_ms)
{
    return rate_has_token(&b->connect_rate,
                          atomic_load_explicit(&b->max_connect_rate,
                                               memory_order_relaxed),
                          now_ms * 1000);
}

/*
 * Fill p->cands with group <backup> members that may take this session:
 * eligible, untried, and, with <room>, under their connect rate (without
 * <room>, capacity is ignored: where a key maps, full or not).
 */
static size_t
pool_collect(struct pool *p, const struct pool_tried *tried, bool backup,
             uint64_t now_ms, bool room)
{
    struct backend *b;
    size_t i, n = 0;

    for (i = 0; i < p->nbackends; i++) {
        b = p->backends[i];
        if (b->backup != backup || pool_tried_has(tried, (unsigned)i)) {
            continue;
        }
        if (room ? !backend_is_eligible(b) || !pool_has_token(b, now_ms)
                 : !pool_backend_serves(b)) {
            continue;
        }
        p->cands[n].b = b;
        p->cands[n].index = (unsigned)i;
        p->cands[n].weight = backend_eff_weight(b, now_ms,
                                                p->cf->slow_start_ms);
        n++;
    }
    return n;
}

/* Rebuild the lb table if a backend changed; true if a primary serves.
 * Called with the lock held. */
static bool
pool_refresh(struct pool *p)
{
    uint64_t version = 0;
    bool primary_up = false;
    size_t i;

    for (i = 0; i < p->nbackends; i++) {
        version += atomic_load_explicit(&p->backends[i]->version,
                                        memory_order_acquire);
        if (!p->backends[i]->backup && pool_backend_serves(p->backends[i])) {
            primary_up = true;
        }
    }
    if (version != p->lb_version) {
        /* Membership changed: the table holds the group now serving. */
        for (i = 0; i < p->nbackends; i++) {
            p->usable[i] = pool_backend_serves(p->backends[i]) &&
                           (bool)p->backends[i]->backup != primary_up;
        }
        if (p->lb->rebuild != NULL) {
            p->lb->rebuild(p->lb_state, p->backends, p->usable,
                           p->nbackends);
        }
        p->lb_version = version;
    }
    return primary_up;
}

static bool
pool_is_hashed(const struct pool *p)
{
    return p->cf->balance == BALANCE_SOURCE ||
           p->cf->balance == BALANCE_MQTT_CLIENT_ID;
}

/*
 * While a rebalance runs, the candidate furthest below its weighted
 * share (fewest sessions per weight), so that a client the rebalancer
 * closed lands where it is wanted and is not moved again.
 */
static size_t
pool_pick_emptiest(const struct lb_cand *c, size_t n)
{
    size_t i, best = 0;

    for (i = 1; i < n; i++) {
        /* a/wa < b/wb  <=>  a*wb < b*wa */
        if (lb_cand_active(&c[i]) * c[best].weight <
            lb_cand_active(&c[best]) * c[i].weight) {
            best = i;
        }
    }
    return best;
}

struct backend *
pool_pick(struct pool *p, const struct pool_tried *tried, uint64_t key,
          uint64_t now_ms)
{
    struct lb_pick pick;
    struct backend *b = NULL;
    bool primary_up;
    size_t n, i;

    pthread_mutex_lock(&p->lock);
    primary_up = pool_refresh(p);
    n = pool_collect(p, tried, !primary_up, now_ms, true);
    if (n == 0 && primary_up) {
        n = pool_collect(p, tried, true, now_ms, true);
    }
    while (n > 0) {
        pick.cands = p->cands;
        pick.ncands = n;
        pick.key = key;
        pick.has_key = pool_is_hashed(p);
        if (!pick.has_key &&
            atomic_load_explicit(&p->rebalancing, memory_order_relaxed)) {
            i = pool_pick_emptiest(p->cands, n);
        } else {
            i = p->lb->pick(p->lb_state, &pick) % n;
        }
        b = p->cands[i].b;
        if (rate_take(&b->connect_rate,
                      atomic_load_explicit(&b->max_connect_rate,
                                           memory_order_relaxed),
                      now_ms * 1000)) {
            backend_session_start(b);
            break;
        }
        /* Another pool generation took its last token: the next one. */
        p->cands[i] = p->cands[--n];
        b = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    return b;
}

bool
pool_is_saturated(struct pool *p, uint64_t now_ms)
{
    struct backend *b;
    bool saturated = false;
    size_t i;

    for (i = 0; i < p->nbackends && !saturated; i++) {
        b = p->backends[i];
        saturated = pool_backend_serves(b) &&
                    (!backend_is_eligible(b) || !pool_has_token(b, now_ms));
    }
    return saturated;
}

struct backend *
pool_key_owner(struct pool *p, uint64_t key, uint64_t now_ms)
{
    static const struct pool_tried none;
    struct lb_pick pick;
    struct backend *b = NULL;
    bool primary_up;
    size_t n;

    pthread_mutex_lock(&p->lock);
    primary_up = pool_refresh(p);
    n = pool_collect(p, &none, !primary_up, now_ms, false);
    if (n > 0 && pool_is_hashed(p)) {
        pick.cands = p->cands;
        pick.ncands = n;
        pick.key = key;
        pick.has_key = true;
        b = p->cands[p->lb->pick(p->lb_state, &pick) % n].b;
    }
    pthread_mutex_unlock(&p->lock);
    return b;
}

unsigned
pool_backend_index(const struct pool *p, const struct backend *b)
{
    size_t i;

    for (i = 0; i < p->nbackends; i++) {
        if (p->backends[i] == b) {
            return (unsigned)i;
        }
    }
    ASSERT(0);
    return 0;
}

struct backend *
pool_find_backend(struct pool *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->nbackends; i++) {
        if (strcmp(p->backends[i]->name, name) == 0) {
            return p->backends[i];
        }
    }
    return NULL;
}

bool
pool_has_up_backend(const struct pool *p)
{
    size_t i;

    for (i = 0; i < p->nbackends; i++) {
        if (atomic_load(&p->backends[i]->up)) {
            return true;
        }
    }
    return false;
}
