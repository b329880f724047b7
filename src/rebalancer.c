/*
 * rebalancer.c: the paced rebalance controller of one pool. It only
 * counts and hands out: backend->shed says how many sessions the workers
 * may close on that backend now, and what they did not use comes back at
 * the next tick, so the rate window counts closes that happened.
 */
#include <string.h>

#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/log.h"
#include "mqlb/pool.h"
#include "mqlb/rebalancer.h"

void
rebalancer_init(struct rebalancer *r)
{
    memset(r, 0, sizeof(*r));
}

/* Hashed pools scan their sessions this often while nothing moves. */
#define REBALANCER_HASHED_SCAN_TICKS   10

static bool
rebalancer_hashed(const struct pool *p)
{
    return p->cf->balance == BALANCE_SOURCE ||
           p->cf->balance == BALANCE_MQTT_CLIENT_ID;
}

/*
 * Take back the closes not made since the last tick, and return how many
 * were made: the pool's count of rebalanced sessions says it exactly,
 * whenever the workers got to them.
 */
static uint64_t
rebalancer_reclaim(struct rebalancer *r, struct pool *p)
{
    uint64_t total;
    size_t i;

    for (i = 0; i < p->nbackends; i++) {
        atomic_store_explicit(&p->backends[i]->shed, 0,
                              memory_order_release);
    }
    atomic_store_explicit(&p->shed_any, 0, memory_order_release);
    total = atomic_load_explicit(p->nrebalanced, memory_order_acquire);
    if (total < r->closed_seen) {
        r->closed_seen = total;     /* not ours to explain: start over */
    }
    total -= r->closed_seen;
    r->closed_seen += total;
    return total;
}

static void
rebalancer_disarm(struct rebalancer *r, struct pool *p, const char *why)
{
    if (r->logged) {
        log_notice("pool %s: rebalance done: %s", p->cf->name, why);
    }
    r->armed = 0;
    r->logged = 0;
    atomic_store_explicit(&p->rebalancing, false, memory_order_relaxed);
}

/* Say once that sessions are moving. */
static void
rebalancer_announce(struct rebalancer *r, const struct pool *p)
{
    if (!r->logged) {
        log_notice("pool %s: backends changed, moving sessions at %u/s",
                   p->cf->name, p->cf->rebalance_rate);
        r->logged = 1;
    }
}

bool
rebalancer_tick(struct rebalancer *r, struct pool *p, uint64_t now_ms)
{
    struct rebalance_share shares[CONFIG_MAX_BACKENDS];
    const struct config_pool *cf = p->cf;
    struct backend *b;
    uint64_t version, closed, budget, granted;
    bool primary_serves = false;
    size_t i;

    closed = rebalancer_reclaim(r, p);
    if (r->armed) {
        rebalance_window_push(&r->window, (uint32_t)closed);
    }
    if (closed > 0) {
        r->progress_ms = now_ms;
        rebalancer_announce(r, p);
    }
    if (cf->rebalance != REBALANCE_PACED) {
        rebalancer_disarm(r, p, "off");
        return false;
    }
    /* Membership and backends change on this (the owner's) thread or
     * through the backends' atomics: no lock needed to read them. */
    version = p->members_version * 0x9e3779b97f4a7c15ULL;
    for (i = 0; i < p->nbackends; i++) {
        b = p->backends[i];
        version += atomic_load_explicit(&b->version, memory_order_acquire);
        if (!b->backup && backend_state(b) == BACKEND_UP &&
            atomic_load_explicit(&b->weight, memory_order_relaxed) > 0) {
            primary_serves = true;
        }
    }
    if (version != r->version) {
        r->version = version;
        r->armed = 1;
        r->progress_ms = now_ms;
        r->idle_ticks = REBALANCER_HASHED_SCAN_TICKS;
    }
    if (!r->armed) {
        return false;
    }
    if (now_ms - r->progress_ms >
        cf->rebalance_min_age_ms + REBALANCER_PATIENCE_MS) {
        rebalancer_disarm(r, p, "nothing left to move");
        return false;
    }
    budget = rebalance_window_budget(&r->window, cf->rebalance_rate);
    if (rebalancer_hashed(p)) {
        /* Every misplaced session moves; while none did lately, look
         * once a second rather than every tick. */
        if (closed == 0 && ++r->idle_ticks < REBALANCER_HASHED_SCAN_TICKS) {
            return false;
        }
        r->idle_ticks = 0;
        if (budget > 0) {
            atomic_store_explicit(&p->shed_any, (int64_t)budget,
                                  memory_order_release);
        }
        return budget > 0;
    }
    /* Shares among the group that serves: primaries, or backups alone. */
    for (i = 0; i < p->nbackends; i++) {
        b = p->backends[i];
        shares[i].weight = 0;
        if ((bool)b->backup == !primary_serves &&
            backend_state(b) == BACKEND_UP) {
            shares[i].weight = backend_eff_weight(b, now_ms,
                                                  cf->slow_start_ms);
        }
        shares[i].active = (uint64_t)MQ_MAX(0, atomic_load_explicit(
            &b->nactive, memory_order_relaxed));
    }
    if (rebalance_balanced(shares, p->nbackends,
                           cf->rebalance_tolerance_pct)) {
        rebalancer_disarm(r, p, "every backend within its share");
        return false;
    }
    rebalancer_announce(r, p);
    atomic_store_explicit(&p->rebalancing, true, memory_order_relaxed);
    granted = rebalance_plan(shares, p->nbackends, budget);
    for (i = 0; i < p->nbackends; i++) {
        if (shares[i].shed > 0) {
            atomic_store_explicit(&p->backends[i]->shed,
                                  (int64_t)shares[i].shed,
                                  memory_order_release);
        }
    }
    return granted > 0;
}

void
rebalancer_stop(struct rebalancer *r, struct pool *p)
{
    rebalancer_reclaim(r, p);
    rebalancer_disarm(r, p, "pool retired");
}
