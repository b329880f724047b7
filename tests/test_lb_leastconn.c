/*
 * test_lb_leastconn.c: leastconn picks the backend with the fewest active
 * sessions relative to weight and rotates among equals.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "mqlb/backend.h"
#include "mqlb/lb.h"

#define LC_N    4       /* backends in the test pool */

/* A test pool: backends made by hand, candidates and the algorithm state. */
struct lc_pool {
    struct backend *b[LC_N];        /* owned */
    struct lb_cand  cands[LC_N];    /* one per backend, pool order */
    void           *st;             /* lb_leastconn_ops state */
};

static struct lc_pool lc;

static void
lc_setup(void)
{
    bool usable[LC_N];
    size_t i;

    for (i = 0; i < LC_N; i++) {
        lc.b[i] = calloc(1, sizeof(*lc.b[i]));
        cr_assert_not_null(lc.b[i]);
        snprintf(lc.b[i]->name, sizeof(lc.b[i]->name), "b%zu", i);
        lc.b[i]->index = (unsigned)i;
        atomic_store(&lc.b[i]->weight, 1);
        atomic_store(&lc.b[i]->nactive, 0);
        lc.cands[i].b = lc.b[i];
        lc.cands[i].index = (unsigned)i;
        lc.cands[i].weight = 1;
        usable[i] = true;
    }
    lc.st = lb_leastconn_ops.create(LC_N);
    cr_assert_not_null(lc.st);
    cr_assert_null(lb_leastconn_ops.rebuild, "nothing to precompute");
    (void)usable;
}

static void
lc_teardown(void)
{
    size_t i;

    lb_leastconn_ops.destroy(lc.st);
    for (i = 0; i < LC_N; i++) {
        free(lc.b[i]);
    }
}

/* Pick among the first <n> candidates; returns the pool index chosen. */
static unsigned
lc_pick(size_t n)
{
    struct lb_pick p = { .cands = lc.cands, .ncands = n };
    size_t i;

    i = lb_leastconn_ops.pick(lc.st, &p);
    cr_assert_lt(i, n);
    return lc.cands[i].b->index;
}

static void
lc_set(size_t i, int64_t nactive, unsigned weight)
{
    atomic_store(&lc.b[i]->nactive, nactive);
    lc.cands[i].weight = weight;
}

TestSuite(lb_leastconn, .init = lc_setup, .fini = lc_teardown);

Test(lb_leastconn, picks_fewest_active)
{
    lc_set(0, 5, 1);
    lc_set(1, 2, 1);
    lc_set(2, 7, 1);
    lc_set(3, 3, 1);
    cr_assert_eq(lc_pick(LC_N), 1);
}

Test(lb_leastconn, load_is_relative_to_weight)
{
    /* 4/1 = 4, 6/3 = 2, 5/2 = 2.5, 9/4 = 2.25: b1 */
    lc_set(0, 4, 1);
    lc_set(1, 6, 3);
    lc_set(2, 5, 2);
    lc_set(3, 9, 4);
    cr_assert_eq(lc_pick(LC_N), 1);

    /* 10 sessions on weight 10 beat 2 sessions on weight 1 */
    lc_set(0, 2, 1);
    lc_set(1, 10, 10);
    lc_set(2, 3, 1);
    lc_set(3, 3, 1);
    cr_assert_eq(lc_pick(LC_N), 1);
}

Test(lb_leastconn, equal_loads_rotate_round_robin)
{
    unsigned i;

    for (i = 0; i < 3 * LC_N; i++) {
        cr_assert_eq(lc_pick(LC_N), i % LC_N);
    }
}

Test(lb_leastconn, ties_rotate_among_the_least_loaded_only)
{
    unsigned got[6], want[6] = { 1, 3, 1, 3, 1, 3 };
    size_t i;

    lc_set(0, 2, 1);
    lc_set(1, 2, 2);        /* 1.0 */
    lc_set(2, 3, 1);
    lc_set(3, 1, 1);        /* 1.0 */
    for (i = 0; i < 6; i++) {
        got[i] = lc_pick(LC_N);
    }
    cr_assert_arr_eq(got, want, sizeof(got));
}

Test(lb_leastconn, equal_weighted_loads_tie)
{
    /* 2/1 == 4/2 == 6/3: the rotation decides */
    lc_set(0, 2, 1);
    lc_set(1, 4, 2);
    lc_set(2, 6, 3);
    lc_set(3, 9, 1);
    cr_assert_eq(lc_pick(LC_N), 0);
    cr_assert_eq(lc_pick(LC_N), 1);
    cr_assert_eq(lc_pick(LC_N), 2);
    cr_assert_eq(lc_pick(LC_N), 0);
}

Test(lb_leastconn, sessions_spread_in_proportion_to_weight)
{
    unsigned idx;
    size_t i;

    lc_set(0, 0, 1);
    lc_set(1, 0, 2);
    lc_set(2, 0, 3);
    lc_set(3, 0, 4);
    /* sessions never end here, so counts follow the weights exactly */
    for (i = 0; i < 100; i++) {
        idx = lc_pick(LC_N);
        atomic_fetch_add(&lc.b[idx]->nactive, 1);
    }
    cr_assert_eq(atomic_load(&lc.b[0]->nactive), 10);
    cr_assert_eq(atomic_load(&lc.b[1]->nactive), 20);
    cr_assert_eq(atomic_load(&lc.b[2]->nactive), 30);
    cr_assert_eq(atomic_load(&lc.b[3]->nactive), 40);
}

Test(lb_leastconn, only_candidates_are_picked)
{
    struct lb_cand sub[2];
    struct lb_pick p = { .cands = sub, .ncands = 2 };
    size_t i, k;

    /* b0 idle but not a candidate (down, full or tried) */
    lc_set(0, 0, 1);
    lc_set(1, 5, 1);
    lc_set(2, 9, 1);
    lc_set(3, 5, 1);
    sub[0] = lc.cands[1];
    sub[1] = lc.cands[3];
    for (k = 0; k < 4; k++) {
        i = lb_leastconn_ops.pick(lc.st, &p);
        cr_assert_lt(i, 2);
        cr_assert_eq(sub[i].b->index, k % 2 == 0 ? 1 : 3);
    }
}

Test(lb_leastconn, negative_count_reads_as_idle)
{
    lc_set(0, 1, 1);
    lc_set(1, -1, 1);
    lc_set(2, 1, 1);
    lc_set(3, 1, 1);
    cr_assert_eq(lc_pick(LC_N), 1);
}

Test(lb_leastconn, single_candidate)
{
    lc_set(2, 100, 1);
    cr_assert_eq(lc_pick(1), 0);
    cr_assert_eq(lc_pick(1), 0);
}
