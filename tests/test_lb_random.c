/*
 * test_lb_random.c: power of two random choices, weighted: only candidates
 * are picked, the less loaded of the pair wins, and draws follow weights.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "mqlb/backend.h"
#include "mqlb/lb.h"

#define RND_N       8       /* backends in the test pool */
#define RND_PICKS   20000   /* picks per statistical test */

/* A test pool: backends made by hand, candidates and the algorithm state. */
struct rnd_pool {
    struct backend *b[RND_N];       /* owned */
    struct lb_cand  cands[RND_N];   /* one per backend, pool order */
    void           *st;             /* lb_random_ops state */
};

static struct rnd_pool rnd;

static void
rnd_setup(void)
{
    bool usable[RND_N];
    size_t i;

    for (i = 0; i < RND_N; i++) {
        rnd.b[i] = calloc(1, sizeof(*rnd.b[i]));
        cr_assert_not_null(rnd.b[i]);
        snprintf(rnd.b[i]->name, sizeof(rnd.b[i]->name), "b%zu", i);
        rnd.b[i]->index = (unsigned)i;
        atomic_store(&rnd.b[i]->weight, 1);
        rnd.cands[i].b = rnd.b[i];
        rnd.cands[i].index = (unsigned)i;
        rnd.cands[i].weight = 1;
        usable[i] = true;
    }
    rnd.st = lb_random_ops.create(RND_N);
    cr_assert_not_null(rnd.st);
    cr_assert_null(lb_random_ops.rebuild, "nothing to precompute");
    (void)usable;
}

static void
rnd_teardown(void)
{
    size_t i;

    lb_random_ops.destroy(rnd.st);
    for (i = 0; i < RND_N; i++) {
        free(rnd.b[i]);
    }
}

TestSuite(lb_random, .init = rnd_setup, .fini = rnd_teardown);

Test(lb_random, never_picks_a_non_candidate)
{
    struct lb_cand sub[3];
    struct lb_pick p = { .cands = sub, .ncands = 3 };
    unsigned seen[RND_N] = { 0 };
    size_t i, k;

    /* b0, b2, b4, b6, b7 are down/full/tried: not offered */
    sub[0] = rnd.cands[1];
    sub[1] = rnd.cands[3];
    sub[2] = rnd.cands[5];
    for (k = 0; k < RND_PICKS; k++) {
        i = lb_random_ops.pick(rnd.st, &p);
        cr_assert_lt(i, 3);
        seen[sub[i].b->index]++;
    }
    cr_assert_eq(seen[0] + seen[2] + seen[4] + seen[6] + seen[7], 0);
    cr_assert_gt(seen[1], 0);
    cr_assert_gt(seen[3], 0);
    cr_assert_gt(seen[5], 0);
}

Test(lb_random, prefers_the_less_loaded_of_two)
{
    struct lb_pick p = { .cands = rnd.cands, .ncands = 2 };
    size_t k;

    /* with two candidates both are always drawn: the idle one wins */
    atomic_store(&rnd.b[0]->nactive, 10);
    atomic_store(&rnd.b[1]->nactive, 3);
    for (k = 0; k < 1000; k++) {
        cr_assert_eq(lb_random_ops.pick(rnd.st, &p), 1);
    }
}

Test(lb_random, load_is_relative_to_weight)
{
    struct lb_pick p = { .cands = rnd.cands, .ncands = 2 };
    size_t k;

    /* 10/4 = 2.5 beats 3/1 */
    atomic_store(&rnd.b[0]->nactive, 10);
    rnd.cands[0].weight = 4;
    atomic_store(&rnd.b[1]->nactive, 3);
    for (k = 0; k < 1000; k++) {
        cr_assert_eq(lb_random_ops.pick(rnd.st, &p), 0);
    }
}

Test(lb_random, most_loaded_is_never_picked)
{
    struct lb_pick p = { .cands = rnd.cands, .ncands = RND_N };
    size_t k;

    /* any pair has a less loaded member, so b5 can never win */
    atomic_store(&rnd.b[5]->nactive, 1000);
    for (k = 0; k < RND_PICKS; k++) {
        cr_assert_neq(lb_random_ops.pick(rnd.st, &p), 5);
    }
}

Test(lb_random, draws_follow_weights)
{
    struct lb_pick p = { .cands = rnd.cands, .ncands = RND_N };
    unsigned counts[RND_N] = { 0 };
    double share;
    size_t i, k;

    /*
     * All idle: the first draw wins every tie, so its weight share shows:
     * b0 has 8 of 15 weight units, the others 1 each.
     */
    rnd.cands[0].weight = 8;
    for (k = 0; k < RND_PICKS; k++) {
        counts[lb_random_ops.pick(rnd.st, &p)]++;
    }
    share = (double)counts[0] / RND_PICKS;
    cr_log_info("lb_random: weight 8 of 15 got %.3f of the picks", share);
    cr_assert(share > 8.0 / 15 - 0.03 && share < 8.0 / 15 + 0.03,
              "share %f", share);
    for (i = 1; i < RND_N; i++) {
        cr_assert_gt(counts[i], RND_PICKS / 15 / 2);
    }
}

Test(lb_random, keeps_loads_balanced)
{
    struct lb_pick p = { .cands = rnd.cands, .ncands = RND_N };
    int64_t n, min, max;
    size_t i, k;

    for (k = 0; k < 8000; k++) {
        i = lb_random_ops.pick(rnd.st, &p);
        atomic_fetch_add(&rnd.b[i]->nactive, 1);
    }
    min = INT64_MAX;
    max = 0;
    for (i = 0; i < RND_N; i++) {
        n = atomic_load(&rnd.b[i]->nactive);
        min = n < min ? n : min;
        max = n > max ? n : max;
    }
    /* two choices keep the spread tiny (one choice: about +-3 sigma=95) */
    cr_assert_leq(max - min, 20, "min %ld max %ld", (long)min, (long)max);
}

Test(lb_random, single_candidate)
{
    struct lb_pick p = { .cands = &rnd.cands[4], .ncands = 1 };

    cr_assert_eq(lb_random_ops.pick(rnd.st, &p), 0);
}
