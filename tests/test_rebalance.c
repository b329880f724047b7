/*
 * test_rebalance.c: weighted shares, who sheds how many, the close budget
 * per one-second window, and a simulated return of a broker that must
 * converge at the paced rate.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "mqlb/rebalance.h"

Test(rebalance, equal_split_within_tolerance_is_balanced)
{
    struct rebalance_share ok[3] = { {1, 105, 0}, {1, 100, 0}, {1, 95, 0} };
    struct rebalance_share edge[3] = { {1, 110, 0}, {1, 100, 0}, {1, 90, 0} };
    struct rebalance_share out[3] = { {1, 111, 0}, {1, 100, 0}, {1, 89, 0} };

    cr_assert(rebalance_balanced(ok, 3, 10));
    cr_assert(rebalance_balanced(edge, 3, 10));
    cr_assert_not(rebalance_balanced(out, 3, 10));
    cr_assert(rebalance_balanced(out, 3, 15));
}

Test(rebalance, shares_follow_weights_and_skip_weightless_backends)
{
    struct rebalance_share w[3] = { {2, 200, 0}, {1, 100, 0}, {1, 100, 0} };
    struct rebalance_share drained[3] = { {1, 50, 0}, {1, 50, 0},
                                          {0, 500, 0} };
    struct rebalance_share empty[2] = { {1, 0, 0}, {1, 0, 0} };

    cr_assert(rebalance_balanced(w, 3, 1));
    cr_assert_eq(rebalance_plan(w, 3, 100), 0);
    /* A backend that takes no share keeps its sessions out of it. */
    cr_assert(rebalance_balanced(drained, 3, 1));
    cr_assert_eq(rebalance_plan(drained, 3, 100), 0);
    cr_assert_eq(drained[2].shed, 0);
    cr_assert(rebalance_balanced(empty, 2, 10));
}

Test(rebalance, a_returning_backend_takes_its_share_from_the_others)
{
    /* nats-server #1556: 24/24/24 became 45/27/0. */
    struct rebalance_share bs[3] = { {1, 45, 0}, {1, 27, 0}, {1, 0, 0} };

    cr_assert_not(rebalance_balanced(bs, 3, 10));
    cr_assert_eq(rebalance_plan(bs, 3, 1000), 24);
    cr_assert_eq(bs[0].shed, 21);
    cr_assert_eq(bs[1].shed, 3);
    cr_assert_eq(bs[2].shed, 0);
}

Test(rebalance, a_small_budget_goes_to_the_furthest_above_first)
{
    struct rebalance_share bs[3] = { {1, 145, 0}, {1, 155, 0}, {1, 0, 0} };

    cr_assert_eq(rebalance_plan(bs, 3, 20), 20);
    cr_assert_eq(bs[1].shed, 15);
    cr_assert_eq(bs[0].shed, 5);
    cr_assert_eq(rebalance_plan(bs, 3, 1000), 100);
    cr_assert_eq(bs[0].shed, 45);
    cr_assert_eq(bs[1].shed, 55);
}

Test(rebalance, never_sheds_below_the_share_nor_a_fraction)
{
    /* 4 sessions on 3 backends: 2/1/1, share 1.33: nobody is a whole
     * session above it. */
    struct rebalance_share bs[3] = { {1, 2, 0}, {1, 1, 0}, {1, 1, 0} };
    struct rebalance_share heavy[2] = { {3, 10, 0}, {1, 10, 0} };

    cr_assert_eq(rebalance_plan(bs, 3, 10), 0);
    /* 3:1 over 20: shares 15 and 5; the second sheds 5, the first none. */
    cr_assert_eq(rebalance_plan(heavy, 2, 100), 5);
    cr_assert_eq(heavy[0].shed, 0);
    cr_assert_eq(heavy[1].shed, 5);
}

Test(rebalance, the_window_keeps_any_second_within_the_rate)
{
    struct rebalance_window w = { {0}, 0 };
    unsigned i;

    cr_assert_eq(rebalance_window_budget(&w, 20), 2);
    for (i = 0; i < 10; i++) {
        rebalance_window_push(&w, 2);
    }
    cr_assert_eq(rebalance_window_budget(&w, 20), 0);
    /* The 20 stay in the window for REBALANCE_WINDOW_TICKS - 1 ticks. */
    for (i = 10; i < REBALANCE_WINDOW_TICKS - 1; i++) {
        rebalance_window_push(&w, 0);
        cr_assert_eq(rebalance_window_budget(&w, 20), 0, "tick %u", i);
    }
    rebalance_window_push(&w, 0);
    cr_assert_eq(rebalance_window_budget(&w, 20), 2);
    /* Below 10/s a tick still gets one close, the window the rest. */
    memset(&w, 0, sizeof(w));
    cr_assert_eq(rebalance_window_budget(&w, 5), 1);
    for (i = 0; i < 5; i++) {
        rebalance_window_push(&w, 1);
    }
    cr_assert_eq(rebalance_window_budget(&w, 5), 0);
}

/*
 * 300 clients on 150/150/0 after broker 3 returns; each tick the plan
 * closes what the window allows and every closed client reconnects to
 * the backend least above its share (what the pool's pick does while a
 * rebalance runs). Converges within 10 % by 300/20 + 10 s, no 12-tick
 * window over the rate, and no backend that received a client ever
 * sheds one.
 */
Test(rebalance, simulated_return_converges_at_the_paced_rate)
{
    struct rebalance_share bs[3] = { {1, 150, 0}, {1, 150, 0}, {1, 0, 0} };
    struct rebalance_window w = { {0}, 0 };
    uint32_t hist[400] = { 0 };
    bool received[3] = { false, false, false };
    uint64_t budget, moved, k;
    unsigned tick, i, j, sum, dst;

    for (tick = 0; tick < 400; tick++) {
        if (rebalance_balanced(bs, 3, 10)) {
            break;
        }
        budget = rebalance_window_budget(&w, 20);
        moved = rebalance_plan(bs, 3, budget);
        for (i = 0; i < 3; i++) {
            cr_assert(bs[i].shed == 0 || !received[i]);
            for (k = 0; k < bs[i].shed; k++) {
                bs[i].active--;
                dst = 0;
                for (j = 1; j < 3; j++) {
                    if (bs[j].active < bs[dst].active) {
                        dst = j;
                    }
                }
                bs[dst].active++;
                received[dst] = true;
            }
        }
        hist[tick] = (uint32_t)moved;
        rebalance_window_push(&w, (uint32_t)moved);
    }
    cr_assert(rebalance_balanced(bs, 3, 10));
    cr_assert_leq(tick * REBALANCE_TICK_MS, (300 / 20 + 10) * 1000);
    for (i = 0; i + REBALANCE_WINDOW_TICKS <= tick; i++) {
        for (j = i, sum = 0; j < i + REBALANCE_WINDOW_TICKS; j++) {
            sum += hist[j];
        }
        cr_assert_leq(sum, 20);
    }
}
