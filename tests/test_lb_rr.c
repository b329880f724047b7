/*
 * test_lb_rr.c: smooth weighted round-robin (nginx's), driven through
 * lb_rr_ops directly: exact pick sequences, spread over many picks, a
 * subset of candidates, and a backend that leaves and comes back.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/lb.h"

#define RR_N    3       /* backends a, b, c */

/* Three hand-made backends, their candidates and the algorithm state. */
struct rr_fixture {
    struct backend *b[RR_N];        /* owned */
    struct lb_cand  cands[RR_N];    /* pool order */
    bool            usable[RR_N];
    void           *st;             /* lb_rr_ops state */
};

static struct rr_fixture rr;

static void
rr_setup(void)
{
    size_t i;

    memset(&rr, 0, sizeof(rr));
    for (i = 0; i < RR_N; i++) {
        rr.b[i] = calloc(1, sizeof(*rr.b[i]));
        cr_assert_not_null(rr.b[i]);
        snprintf(rr.b[i]->name, sizeof(rr.b[i]->name), "%c", (char)('a' + i));
        rr.b[i]->index = (unsigned)i;
        atomic_store(&rr.b[i]->weight, 1);
        rr.usable[i] = true;
    }
    rr.st = lb_rr_ops.create(RR_N);
    cr_assert_not_null(rr.st);
    lb_rr_ops.rebuild(rr.st, rr.b, rr.usable, RR_N);
}

static void
rr_teardown(void)
{
    size_t i;

    lb_rr_ops.destroy(rr.st);
    for (i = 0; i < RR_N; i++) {
        free(rr.b[i]);
    }
}

TestSuite(lb_rr, .init = rr_setup, .fini = rr_teardown);

/* Candidates a, b, c with these weights, all usable. */
static void
rr_weights(unsigned wa, unsigned wb, unsigned wc)
{
    unsigned w[RR_N] = { wa, wb, wc };
    size_t i;

    for (i = 0; i < RR_N; i++) {
        atomic_store(&rr.b[i]->weight, w[i]);
        rr.cands[i].b = rr.b[i];
        rr.cands[i].index = (unsigned)i;
        rr.cands[i].weight = w[i];
    }
}

/* One pick among <cands>; the chosen backend's name letter. */
static char
rr_pick_from(const struct lb_cand *cands, size_t n)
{
    struct lb_pick p = { .cands = cands, .ncands = n };
    size_t i;

    i = lb_rr_ops.pick(rr.st, &p);
    cr_assert_lt(i, n);
    return cands[i].b->name[0];
}

/* <n> picks among all three into <seq> (NUL-terminated). */
static void
rr_sequence(char *seq, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        seq[i] = rr_pick_from(rr.cands, RR_N);
    }
    seq[n] = '\0';
}

Test(lb_rr, has_its_name)
{
    cr_expect_str_eq(lb_rr_ops.name, "roundrobin");
    cr_expect_eq(lb_ops_for(BALANCE_ROUNDROBIN), &lb_rr_ops);
}

Test(lb_rr, weights_5_1_1_come_out_as_a_a_b_a_c_a_a)
{
    char seq[64];

    rr_weights(5, 1, 1);
    rr_sequence(seq, 7);
    cr_expect_str_eq(seq, "aabacaa");
    /* The state is back at zero after a full cycle: it repeats. */
    rr_sequence(seq, 14);
    cr_expect_str_eq(seq, "aabacaaaabacaa");
}

Test(lb_rr, weights_1_1_1_rotate_in_pool_order)
{
    char seq[64];

    rr_weights(1, 1, 1);
    rr_sequence(seq, 9);
    cr_expect_str_eq(seq, "abcabcabc");
}

Test(lb_rr, weights_3_2_1_interleave)
{
    char seq[64];

    rr_weights(3, 2, 1);
    rr_sequence(seq, 12);
    cr_expect_str_eq(seq, "abacbaabacba");
}

Test(lb_rr, weights_5_1_1_never_give_five_in_a_row)
{
    char seq[701];
    size_t i, run = 0, longest = 0, count[RR_N] = { 0 };

    rr_weights(5, 1, 1);
    rr_sequence(seq, 700);
    for (i = 0; i < 700; i++) {
        run = i > 0 && seq[i] == seq[i - 1] ? run + 1 : 1;
        longest = MQ_MAX(longest, run);
        count[seq[i] - 'a']++;
    }
    /* "aa" ends one cycle and "aab" starts the next: four at most. */
    cr_expect_eq(longest, 4, "longest run %zu", longest);
    cr_expect_eq(count[0], 500);
    cr_expect_eq(count[1], 100);
    cr_expect_eq(count[2], 100);
}

Test(lb_rr, every_window_of_one_cycle_holds_the_exact_shares)
{
    char seq[71];
    size_t start, i, count[RR_N];

    rr_weights(4, 2, 1);
    rr_sequence(seq, 70);
    for (start = 0; start + 7 <= 70; start++) {
        memset(count, 0, sizeof(count));
        for (i = start; i < start + 7; i++) {
            count[seq[i] - 'a']++;
        }
        cr_expect(count[0] == 4 && count[1] == 2 && count[2] == 1,
                  "window at %zu of %s: %zu/%zu/%zu", start, seq, count[0],
                  count[1], count[2]);
    }
}

Test(lb_rr, single_candidate_is_always_chosen)
{
    size_t i;

    rr_weights(7, 1, 1);
    for (i = 0; i < 10; i++) {
        cr_expect_eq(rr_pick_from(&rr.cands[1], 1), 'b');
    }
}

Test(lb_rr, subset_of_candidates_shares_by_their_weights)
{
    struct lb_cand sub[2];
    char seq[13];
    size_t i;

    /* a was tried: only b and c are offered, 2:1. */
    rr_weights(5, 2, 1);
    sub[0] = rr.cands[1];
    sub[1] = rr.cands[2];
    for (i = 0; i < 12; i++) {
        seq[i] = rr_pick_from(sub, 2);
    }
    seq[12] = '\0';
    cr_expect_str_eq(seq, "bcbbcbbcbbcb");
}

Test(lb_rr, a_backend_leaving_the_rotation_restarts_from_zero)
{
    char seq[16];

    rr_weights(5, 1, 1);
    rr_sequence(seq, 3);
    cr_assert_str_eq(seq, "aab");
    /* b leaves (its current weight, -4 now, is dropped) and comes back. */
    rr.usable[1] = false;
    lb_rr_ops.rebuild(rr.st, rr.b, rr.usable, RR_N);
    rr.usable[1] = true;
    lb_rr_ops.rebuild(rr.st, rr.b, rr.usable, RR_N);
    rr_sequence(seq, 7);
    /* Without the reset the sequence would be "acaaaab". */
    cr_expect_str_eq(seq, "acaaaba");
}

Test(lb_rr, rebuild_with_all_usable_keeps_the_cycle)
{
    char seq[16];

    rr_weights(5, 1, 1);
    rr_sequence(seq, 3);
    lb_rr_ops.rebuild(rr.st, rr.b, rr.usable, RR_N);
    rr_sequence(seq + 3, 4);
    cr_expect_str_eq(seq, "aabacaa");
}
