/*
 * pool.c: which backends may take a session, and asking the pool's
 * algorithm to choose one of them.
 *
 * Primaries serve while any of them is up; backups serve only while none
 * is (haproxy's rule). If every primary is up but tried or full, backups
 * are tried too: serving the client beats refusing it.
 *
 * Membership changes at runtime (DNS discovery, the runtime API). The
 * member array has room for CONFIG_MAX_BACKENDS from the start, so it is
 * changed in place; only the owner's thread (the main loop) changes it,
 * always under <lock>, and builds the balancer's new state for the new
 * members before it takes the lock, so a worker waits for a pointer swap,
 * never for a table. A heavy balancer (Maglev) is rebuilt the same way
 * when a backend's state or weight changes: a worker that notices asks
 * the owner through <on_stale> and goes on with the table it has (a
 * stale table only ever offers current candidates, see lb_maglev_pick).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/lb.h"
#include "mqlb/pool.h"
#include "mqlb/rate.h"

static void pool_build_first(struct pool *p);

struct pool *
pool_create(const struct config_pool *cf, struct backend *const *backends,
            _Atomic uint64_t *nrejected)
{
    struct pool *p;
    size_t i, n = MQ_MIN(cf->nbackends, CONFIG_MAX_BACKENDS);

    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->cf = cf;
    p->nrejected = nrejected;
    p->nrebalanced = &p->own_rebalanced;
    rebalancer_init(&p->rebal);
    p->ntls = p->ntls_own;
    p->lb = lb_ops_for(cf->balance);
    p->backends = calloc(CONFIG_MAX_BACKENDS, sizeof(*p->backends));
    p->usable = calloc(CONFIG_MAX_BACKENDS, sizeof(*p->usable));
    p->cands = calloc(CONFIG_MAX_BACKENDS, sizeof(*p->cands));
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
    p->lb_asked = UINT64_MAX;
    /* The first table now, on the owner's thread: no pick waits for it. */
    pool_build_first(p);
    pthread_mutex_init(&p->lock, NULL);
    waitq_init(&p->queue);
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
    waitq_deinit(&p->queue);
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

/*
 * What the balancer's table depends on: the backends' versions (state,
 * weight) and the membership. Sets <*primary_up>. Under the lock, or on
 * the owner's thread.
 */
static uint64_t
pool_version(struct pool *p, bool *primary_up)
{
    uint64_t version = p->members_version * 0x9e3779b97f4a7c15ULL;
    size_t i;

    *primary_up = false;
    for (i = 0; i < p->nbackends; i++) {
        version += atomic_load_explicit(&p->backends[i]->version,
                                        memory_order_acquire);
        if (!p->backends[i]->backup && pool_backend_serves(p->backends[i])) {
            *primary_up = true;
        }
    }
    return version;
}

/* Which of <all> (n) the table may hold now: the group serving. */
static void
pool_usable(struct pool *p, struct backend *const *all, size_t n,
            bool primary_up, bool *usable)
{
    size_t i;

    (void)p;
    for (i = 0; i < n; i++) {
        usable[i] = pool_backend_serves(all[i]) &&
                    (bool)all[i]->backup != primary_up;
    }
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

/* The balancer's first state, for the members the pool starts with. */
static void
pool_build_first(struct pool *p)
{
    bool primary_up;

    p->lb_version = pool_version(p, &primary_up);
    pool_usable(p, p->backends, p->nbackends, primary_up, p->usable);
    if (p->lb->rebuild != NULL) {
        p->lb->rebuild(p->lb_state, p->backends, p->usable, p->nbackends);
    }
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

/* Bring the balancer's table up to date (or ask for it); true if a
 * primary serves. Called with the lock held. */
static bool
pool_refresh(struct pool *p)
{
    uint64_t version;
    bool primary_up = false;

    version = pool_version(p, &primary_up);
    if (version != p->lb_version) {
        if (p->lb->heavy && p->on_stale != NULL) {
            /* Off the workers' path: ask once, pick from the table we have. */
            if (p->lb_asked != version) {
                p->lb_asked = version;
                p->on_stale(p->on_stale_ctx, p);
            }
        } else {
            /* Membership changed: the table holds the group now serving. */
            pool_usable(p, p->backends, p->nbackends, primary_up, p->usable);
            if (p->lb->rebuild != NULL) {
                p->lb->rebuild(p->lb_state, p->backends, p->usable,
                               p->nbackends);
            }
            p->lb_version = version;
        }
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

    pthread_mutex_lock(&p->lock);
    for (i = 0; i < p->nbackends && !saturated; i++) {
        b = p->backends[i];
        saturated = pool_backend_serves(b) &&
                    (!backend_is_eligible(b) || !pool_has_token(b, now_ms));
    }
    pthread_mutex_unlock(&p->lock);
    return saturated;
}

struct backend *
pool_key_owner(struct pool *p, uint64_t key, uint64_t now_ms, bool *home)
{
    static const struct pool_tried none;
    struct lb_pick pick;
    struct backend *b = NULL;
    bool primary_up, at_home = false;
    size_t n, i;

    pthread_mutex_lock(&p->lock);
    primary_up = pool_refresh(p);
    n = pool_collect(p, &none, !primary_up, now_ms, false);
    if (n > 0 && pool_is_hashed(p)) {
        pick.cands = p->cands;
        pick.ncands = n;
        pick.key = key;
        pick.has_key = true;
        i = p->lb->pick(p->lb_state, &pick) % n;
        b = p->cands[i].b;
        at_home = p->lb->is_home != NULL &&
                  p->lb->is_home(p->lb_state, key, p->cands[i].index);
    }
    pthread_mutex_unlock(&p->lock);
    if (home != NULL) {
        *home = at_home;
    }
    return b;
}

unsigned
pool_backend_index(const struct pool *p, const struct backend *b)
{
    struct pool *mp = (struct pool *)p;     /* the lock, not the pool */
    unsigned idx = CONFIG_MAX_BACKENDS;
    size_t i;

    /* workers call this: the members may change on the main thread */
    pthread_mutex_lock(&mp->lock);
    for (i = 0; i < p->nbackends; i++) {
        if (p->backends[i] == b) {
            idx = (unsigned)i;
            break;
        }
    }
    pthread_mutex_unlock(&mp->lock);
    return idx;
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

void
pool_report_down(struct pool *p)
{
    if (p->on_down != NULL) {
        p->on_down(p->on_down_ctx, p);
    }
}

/*
 * A balancer state for <all> (n backends) as they are now, built without
 * the lock. Also returns the version it matches in <*version> (computed
 * before the states were read, so a change during the build is seen as
 * a new version by the next pick). NULL on no memory.
 */
static void *
pool_build_state(struct pool *p, struct backend *const *all, size_t n,
                 uint64_t members_version, uint64_t *version)
{
    bool usable[CONFIG_MAX_BACKENDS], primary_up = false;
    uint64_t v = members_version * 0x9e3779b97f4a7c15ULL;
    void *st;
    size_t i;

    for (i = 0; i < n; i++) {
        v += atomic_load_explicit(&all[i]->version, memory_order_acquire);
        if (!all[i]->backup && pool_backend_serves(all[i])) {
            primary_up = true;
        }
    }
    st = p->lb->create(n);
    if (st == NULL) {
        return NULL;
    }
    pool_usable(p, all, n, primary_up, usable);
    if (p->lb->rebuild != NULL) {
        p->lb->rebuild(st, all, usable, n);
    }
    *version = v;
    return st;
}

/* Swap in <st> (matching <version>) and the members <all> (n). */
static void
pool_publish(struct pool *p, void *st, uint64_t version,
             struct backend *const *all, size_t n, uint64_t members_version)
{
    void *old;
    size_t i;

    pthread_mutex_lock(&p->lock);
    for (i = 0; i < n; i++) {
        p->backends[i] = all[i];
        p->backends[i]->index = (unsigned)i;
    }
    for (; i < p->nbackends; i++) {
        p->backends[i] = NULL;
    }
    p->nbackends = n;
    p->members_version = members_version;
    backend_bump_members();
    old = p->lb_state;
    p->lb_state = st;
    p->lb_version = version;
    p->lb_asked = UINT64_MAX;
    pthread_mutex_unlock(&p->lock);
    p->lb->destroy(old);
}

int
pool_add_backend(struct pool *p, struct backend *b)
{
    struct backend *all[CONFIG_MAX_BACKENDS];
    uint64_t version;
    void *st;
    size_t n = p->nbackends;

    if (n == CONFIG_MAX_BACKENDS) {
        errno = ENOSPC;
        return MQ_ERR;
    }
    memcpy(all, p->backends, n * sizeof(*all));
    all[n++] = b;
    st = pool_build_state(p, all, n, p->members_version + 1, &version);
    if (st == NULL) {
        errno = ENOMEM;
        return MQ_ERR;
    }
    backend_acquire(b);
    pool_publish(p, st, version, all, n, p->members_version + 1);
    return MQ_OK;
}

int
pool_remove_backend(struct pool *p, struct backend *b, bool if_idle)
{
    struct backend *all[CONFIG_MAX_BACKENDS];
    uint64_t version;
    size_t i, n = 0;
    void *st;

    for (i = 0; i < p->nbackends; i++) {
        if (p->backends[i] != b) {
            all[n++] = p->backends[i];
        }
    }
    if (n == p->nbackends) {
        errno = ENOENT;
        return MQ_ERR;
    }
    st = pool_build_state(p, all, n, p->members_version + 1, &version);
    if (st == NULL) {
        errno = ENOMEM;
        return MQ_ERR;
    }
    if (if_idle) {
        /* a worker may have picked it just now: look under the lock */
        pthread_mutex_lock(&p->lock);
        if (atomic_load(&b->nactive) > 0) {
            pthread_mutex_unlock(&p->lock);
            p->lb->destroy(st);
            errno = EBUSY;
            return MQ_ERR;
        }
        pthread_mutex_unlock(&p->lock);
    }
    pool_publish(p, st, version, all, n, p->members_version + 1);
    backend_release(b);     /* the pool's reference */
    return MQ_OK;
}

size_t
pool_rebuild_changed(struct pool *const *pools, size_t n, uint64_t *seen)
{
    uint64_t now = backend_changes();   /* before: a later change counts */
    size_t i;

    if (now == *seen) {
        return 0;
    }
    *seen = now;
    for (i = 0; i < n; i++) {
        pool_rebuild(pools[i]);
    }
    return n;
}

void
pool_rebuild(struct pool *p)
{
    uint64_t version;
    bool primary_up, same;
    void *st, *old;

    if (!p->lb->heavy) {
        return;     /* light balancers catch up on the next pick */
    }
    pthread_mutex_lock(&p->lock);   /* lb_version is the pick's too */
    same = pool_version(p, &primary_up) == p->lb_version;
    pthread_mutex_unlock(&p->lock);
    if (same) {
        return;     /* nothing changed since the last build */
    }
    st = pool_build_state(p, p->backends, p->nbackends, p->members_version,
                          &version);
    if (st == NULL) {
        return;     /* the next pick asks again */
    }
    pthread_mutex_lock(&p->lock);
    old = p->lb_state;
    p->lb_state = st;
    p->lb_version = version;
    p->lb_asked = UINT64_MAX;
    pthread_mutex_unlock(&p->lock);
    p->lb->destroy(old);
}
