/*
 * rebalance.c: shares, excess and the close budget for rebalance = paced.
 * Shares are compared in integers scaled by the total weight W: backend
 * i holds active_i x W against its share total x w_i, so no rounding
 * decides who is over.
 */
#include "mqlb/rebalance.h"

/* Sessions and weight over the backends that take a share. */
static void
rebalance_totals(const struct rebalance_share *bs, size_t n,
                 uint64_t *total, uint64_t *wsum)
{
    size_t i;

    *total = 0;
    *wsum = 0;
    for (i = 0; i < n; i++) {
        if (bs[i].weight > 0) {
            *total += bs[i].active;
            *wsum += bs[i].weight;
        }
    }
}

bool
rebalance_balanced(const struct rebalance_share *bs, size_t n,
                   unsigned tolerance_pct)
{
    uint64_t total, wsum, have, share, diff;
    size_t i;

    rebalance_totals(bs, n, &total, &wsum);
    if (total == 0) {
        return true;
    }
    for (i = 0; i < n; i++) {
        if (bs[i].weight == 0) {
            continue;
        }
        have = bs[i].active * wsum;
        share = total * bs[i].weight;
        diff = have > share ? have - share : share - have;
        if (diff * 100 > share * tolerance_pct) {
            return false;
        }
    }
    return true;
}

uint64_t
rebalance_plan(struct rebalance_share *bs, size_t n, uint64_t budget)
{
    uint64_t total, wsum, nshed = 0;
    int64_t excess, best_excess;
    size_t i, best;

    rebalance_totals(bs, n, &total, &wsum);
    for (i = 0; i < n; i++) {
        bs[i].shed = 0;
    }
    while (nshed < budget) {
        best = n;
        best_excess = 0;
        for (i = 0; i < n; i++) {
            if (bs[i].weight == 0) {
                continue;
            }
            /* Above the share by this many sessions, times W. */
            excess = (int64_t)((bs[i].active - bs[i].shed) * wsum) -
                     (int64_t)(total * bs[i].weight);
            if (excess >= (int64_t)wsum && excess > best_excess) {
                best = i;
                best_excess = excess;
            }
        }
        if (best == n) {
            break;      /* nobody is a whole session above its share */
        }
        bs[best].shed++;
        nshed++;
    }
    return nshed;
}

uint64_t
rebalance_window_budget(const struct rebalance_window *w,
                        unsigned rate_per_s)
{
    uint64_t recent = 0, per_tick;
    size_t i;

    for (i = 0; i < REBALANCE_WINDOW_TICKS - 1; i++) {
        recent += w->closed[i];
    }
    if (recent >= rate_per_s) {
        return 0;
    }
    per_tick = ((uint64_t)rate_per_s * REBALANCE_TICK_MS + 999) / 1000;
    return per_tick < rate_per_s - recent ? per_tick : rate_per_s - recent;
}

void
rebalance_window_push(struct rebalance_window *w, uint32_t closed)
{
    w->closed[w->pos] = closed;
    w->pos = (w->pos + 1) % (REBALANCE_WINDOW_TICKS - 1);
}
