/*
 * lb_rr.c: smooth weighted round-robin, as nginx's
 * ngx_http_upstream_get_peer(): every pick adds each candidate's weight to
 * its current value, takes the largest and subtracts the total from it.
 * Weights 5:1:1 come out as a a b a c a a, never five in a row.
 */
#include <stdlib.h>

#include "mqlb/backend.h"
#include "mqlb/lb.h"

struct lb_rr {
    size_t      n;          /* backends in the pool */
    int64_t    *current;    /* current weight, by backend index */
};

static void *
lb_rr_create(size_t nbackends)
{
    struct lb_rr *rr;

    rr = calloc(1, sizeof(*rr));
    if (rr == NULL) {
        return NULL;
    }
    rr->n = nbackends;
    rr->current = calloc(nbackends > 0 ? nbackends : 1,
                         sizeof(*rr->current));
    if (rr->current == NULL) {
        free(rr);
        return NULL;
    }
    return rr;
}

static void
lb_rr_destroy(void *st)
{
    struct lb_rr *rr = st;

    if (rr != NULL) {
        free(rr->current);
        free(rr);
    }
}

static void
lb_rr_rebuild(void *st, struct backend *const *all, const bool *usable,
              size_t n)
{
    struct lb_rr *rr = st;
    size_t i;

    (void)all;
    /* A backend that left the rotation starts again from zero. */
    for (i = 0; i < n && i < rr->n; i++) {
        if (!usable[i]) {
            rr->current[i] = 0;
        }
    }
}

static size_t
lb_rr_pick(void *st, const struct lb_pick *p)
{
    struct lb_rr *rr = st;
    int64_t total = 0, *cur, best_cur = 0;
    size_t i, best = 0;
    unsigned idx;

    for (i = 0; i < p->ncands; i++) {
        idx = p->cands[i].index;
        cur = &rr->current[idx < rr->n ? idx : 0];
        *cur += p->cands[i].weight;
        total += p->cands[i].weight;
        if (i == 0 || *cur > best_cur) {
            best = i;
            best_cur = *cur;
        }
    }
    idx = p->cands[best].index;
    rr->current[idx < rr->n ? idx : 0] -= total;
    return best;
}

const struct lb_ops lb_rr_ops = {
    .name = "roundrobin",
    .create = lb_rr_create,
    .destroy = lb_rr_destroy,
    .rebuild = lb_rr_rebuild,
    .pick = lb_rr_pick,
};
