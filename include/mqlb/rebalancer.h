/*
 * rebalancer.h: rebalance = paced for one pool, run on the main loop every
 * REBALANCE_TICK_MS. When a backend of the pool changes (comes up, is
 * added or enabled, a weight changes) it arms; while armed, each tick it
 * takes back the closes the workers did not make, and hands out new ones
 * (backend->shed) to the backends above their weighted share, within
 * the rate; it disarms once every backend is within the tolerance, or
 * when nothing could be moved for a while. The workers do the closing
 * (session_shed), idle sessions first. Under a hashed policy (source,
 * mqtt-client-id) shares do not decide: every session whose key now maps
 * to another backend moves, at the rate, out of one pool-wide allowance
 * (pool->shed_any), until none is left.
 */
#ifndef MQLB_REBALANCER_H
#define MQLB_REBALANCER_H

#include <stdbool.h>
#include <stdint.h>

#include "mqlb/rebalance.h"

struct pool;

/* Give up after this long without a close (nothing movable) beyond the
 * pool's rebalance_min_age. */
#define REBALANCER_PATIENCE_MS  5000

/* The controller's state for one pool; main thread only. */
struct rebalancer {
    struct rebalance_window window;     /* closes of the last ticks */
    uint64_t            version;        /* sum of backend versions seen */
    uint64_t            closed_seen;    /* *pool->nrebalanced last tick */
    unsigned            idle_ticks;     /* hashed: ticks since a scan */
    uint64_t            progress_ms;    /* last tick that saw a close */
    unsigned            armed:1;        /* moving sessions */
    unsigned            logged:1;       /* said so in the log */
};

void rebalancer_init(struct rebalancer *r);

/*
 * One tick for <p> at monotonic <now_ms>. Returns true when closes were
 * handed out and the workers must look for sessions to close.
 */
bool rebalancer_tick(struct rebalancer *r, struct pool *p, uint64_t now_ms);

/* Take back every close handed out and stop (the pool is retired). */
void rebalancer_stop(struct rebalancer *r, struct pool *p);

#endif /* MQLB_REBALANCER_H */
