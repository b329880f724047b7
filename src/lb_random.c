/*
 * lb_random.c: power of two random choices (Mitzenmacher). Two distinct
 * candidates are drawn at random, each with probability proportional to
 * its weight, and the one with fewer active sessions relative to weight
 * takes the session. Nearly as even as leastconn, but a burst of new
 * sessions does not all land on the single least loaded backend.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/lb.h"

/* Per-pool state: the generator. pick() runs under the pool lock. */
struct lb_random {
    uint64_t        rng;        /* xorshift64* state, never 0 */
};

/* Next value of the xorshift64* generator of <r>. */
static uint64_t
lb_random_next(struct lb_random *r)
{
    uint64_t x = r->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/*
 * Seeded from the clock and the state's address, so pools and processes
 * draw different sequences; nothing here needs to be unpredictable.
 */
static void *
lb_random_create(size_t nbackends)
{
    struct lb_random *r;
    struct timespec ts;
    uint64_t seed;

    (void)nbackends;
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    seed = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    seed ^= (uint64_t)(uintptr_t)r;
    r->rng = mq_mix64(seed + 0x9e3779b97f4a7c15ULL);
    if (r->rng == 0) {
        r->rng = 0x9e3779b97f4a7c15ULL;
    }
    return r;
}

/* Weight of <c>, at least 1 (the pool promises it; do not divide by 0). */
static uint64_t
lb_random_weight(const struct lb_cand *c)
{
    return MQ_MAX(c->weight, 1u);
}

/*
 * A weighted draw among the candidates of <p>, leaving out <skip>
 * (p->ncands to leave none out); <total> is the sum of the weights drawn
 * from.
 */
static size_t
lb_random_draw(struct lb_random *r, const struct lb_pick *p, size_t skip,
               uint64_t total)
{
    uint64_t x;
    size_t i, last;

    x = lb_random_next(r) % total;
    last = skip;
    for (i = 0; i < p->ncands; i++) {
        if (i == skip) {
            continue;
        }
        last = i;
        if (x < lb_random_weight(&p->cands[i])) {
            return i;
        }
        x -= lb_random_weight(&p->cands[i]);
    }
    return last;
}

/*
 * Index into <p->cands> of the less loaded of two weighted random draws;
 * on equal load the first draw wins, which is itself random.
 */
static size_t
lb_random_pick(void *st, const struct lb_pick *p)
{
    struct lb_random *r = st;
    uint64_t total, la, lb;
    size_t i, a, b;

    if (p->ncands == 1) {
        return 0;
    }
    total = 0;
    for (i = 0; i < p->ncands; i++) {
        total += lb_random_weight(&p->cands[i]);
    }

    a = lb_random_draw(r, p, p->ncands, total);
    b = lb_random_draw(r, p, a, total - lb_random_weight(&p->cands[a]));

    /* active_a / weight_a <= active_b / weight_b, without division */
    la = lb_cand_active(&p->cands[a]) * lb_random_weight(&p->cands[b]);
    lb = lb_cand_active(&p->cands[b]) * lb_random_weight(&p->cands[a]);
    return lb < la ? b : a;
}

const struct lb_ops lb_random_ops = {
    .name = "random",
    .create = lb_random_create,
    .destroy = free,
    .rebuild = NULL,            /* candidates are read at pick time */
    .pick = lb_random_pick,
};
