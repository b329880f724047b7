/*
 * lb_leastconn.c: fewest active sessions relative to weight. Loads are
 * compared by cross-multiplication, so no division and no rounding; ties
 * go round-robin from a cursor that follows the last backend chosen.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/lb.h"

/* Per-pool state: only the tie-breaking cursor. */
struct lb_leastconn {
    unsigned        cursor;     /* pool index where tie search starts */
};

static void *
lb_leastconn_create(size_t nbackends)
{
    struct lb_leastconn *lc;

    (void)nbackends;
    lc = calloc(1, sizeof(*lc));
    return lc;
}

/*
 * The candidate of <p> with the lowest nactive/weight. Among equals, the
 * first at or after the cursor in pool order wins: the distance from the
 * cursor is computed in unsigned arithmetic, so indexes before the cursor
 * wrap around to the end of the rotation. The cursor then moves past the
 * chosen backend. Called under the pool lock.
 */
static size_t
lb_leastconn_pick(void *st, const struct lb_pick *p)
{
    struct lb_leastconn *lc = st;
    const struct lb_cand *c, *best;
    uint64_t active, best_active, lhs, rhs;
    unsigned dist, best_dist, weight, best_weight;
    size_t i, best_i;

    best_i = 0;
    best = &p->cands[0];
    best_active = lb_cand_active(best);
    best_weight = MQ_MAX(best->weight, 1u);
    best_dist = best->index - lc->cursor;

    for (i = 1; i < p->ncands; i++) {
        c = &p->cands[i];
        active = lb_cand_active(c);
        weight = MQ_MAX(c->weight, 1u);
        dist = c->index - lc->cursor;

        /* active/weight < best_active/best_weight, without division */
        lhs = active * best_weight;
        rhs = best_active * weight;
        if (lhs < rhs || (lhs == rhs && dist < best_dist)) {
            best_i = i;
            best = c;
            best_active = active;
            best_weight = weight;
            best_dist = dist;
        }
    }

    lc->cursor = best->index + 1;
    return best_i;
}

const struct lb_ops lb_leastconn_ops = {
    .name = "leastconn",
    .create = lb_leastconn_create,
    .destroy = free,
    .rebuild = NULL,            /* counts are read at pick time */
    .pick = lb_leastconn_pick,
};
