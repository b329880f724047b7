/*
 * rebalance.h: the arithmetic of rebalance = paced, kept pure: each
 * backend's weighted share of a pool's sessions, which backends sit above
 * it and by how many, and how many closes the rate still allows in the
 * current one-second window. The controller that acts on it runs on the
 * main loop.
 */
#ifndef MQLB_REBALANCE_H
#define MQLB_REBALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REBALANCE_TICK_MS       100     /* the controller's period */
#define REBALANCE_WINDOW_TICKS  13      /* closes of this many ticks, the
                                           current one included, stay
                                           within the rate: a 1 s window
                                           of close times spans at most
                                           11 ticks, 13 with the slack of
                                           timers and busy workers */

/* One backend as the share computation sees it. */
struct rebalance_share {
    unsigned    weight;         /* effective weight; 0 = takes no share */
    uint64_t    active;         /* its sessions now */
    uint64_t    shed;           /* out: sessions to close on it */
};

/*
 * True when every backend with a weight holds its share of the sessions
 * on weighted backends, within <tolerance_pct> percent of that share.
 */
bool rebalance_balanced(const struct rebalance_share *bs, size_t n,
                        unsigned tolerance_pct);

/*
 * Spread up to <budget> closes over the backends above their share, one
 * at a time to the one furthest above it, never taking a backend below
 * its share. Sets every bs[i].shed and returns their sum (0: nothing to
 * move).
 */
uint64_t rebalance_plan(struct rebalance_share *bs, size_t n,
                        uint64_t budget);

/* Closes made in the last REBALANCE_WINDOW_TICKS - 1 ticks. */
struct rebalance_window {
    uint32_t    closed[REBALANCE_WINDOW_TICKS - 1];
    unsigned    pos;            /* next slot to overwrite */
};

/*
 * Closes allowed in this tick at <rate_per_s>: at most a tick's share of
 * the rate (rounded up), and never past the rate over the window.
 */
uint64_t rebalance_window_budget(const struct rebalance_window *w,
                                 unsigned rate_per_s);

/* The tick is over and <closed> sessions were closed in it. */
void rebalance_window_push(struct rebalance_window *w, uint32_t closed);

#endif /* MQLB_REBALANCE_H */
