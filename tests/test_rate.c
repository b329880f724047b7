/*
 * test_rate.c: the connect-rate token bucket with an injected clock:
 * bursts, the steady rate, any one-second window, and threads sharing it.
 */
#include <criterion/criterion.h>
#include <pthread.h>

#include "mqlb/rate.h"

Test(rate, unlimited_always_takes)
{
    struct rate r = { 0 };
    unsigned i;

    for (i = 0; i < 100000; i++) {
        cr_assert(rate_take(&r, 0, 5));
    }
}

Test(rate, a_burst_of_a_tenth_of_a_second_then_one_per_interval)
{
    struct rate r = { 0 };
    uint64_t now = 10000000;
    unsigned n = 0;

    while (rate_take(&r, 100, now)) {
        n++;
    }
    cr_assert_eq(n, rate_burst(100));
    cr_assert_eq(n, 10);
    cr_assert_not(rate_has_token(&r, 100, now));
    cr_assert_not(rate_has_token(&r, 100, now + 9999));
    cr_assert(rate_has_token(&r, 100, now + 10000));
    cr_assert(rate_take(&r, 100, now + 10000));
    cr_assert_not(rate_take(&r, 100, now + 10000));
}

Test(rate, small_rates_still_burst_one)
{
    struct rate r = { 0 };

    cr_assert_eq(rate_burst(1), 1);
    cr_assert_eq(rate_burst(5), 1);
    cr_assert_eq(rate_burst(10), 2);
    cr_assert(rate_take(&r, 1, 1000000));
    cr_assert_not(rate_take(&r, 1, 1000000));
    cr_assert_not(rate_take(&r, 1, 1999999));
    cr_assert(rate_take(&r, 1, 2000000));
}

/* Hammered every 100 us for 10 s: every 1 s window holds <= rate + burst,
 * and the long-run rate is the configured one. */
Test(rate, any_one_second_window_holds_at_most_rate_plus_burst)
{
    static uint64_t at[2000];
    struct rate r = { 0 };
    uint64_t now, start = 5000000;
    size_t n = 0, i, j;

    for (now = start; now < start + 10000000; now += 100) {
        if (rate_take(&r, 100, now)) {
            cr_assert_lt(n, 2000);
            at[n++] = now;
        }
    }
    cr_assert_geq(n, 1000);
    cr_assert_leq(n, 1000 + rate_burst(100));
    for (i = 0, j = 0; i < n; i++) {
        while (at[i] - at[j] >= 1000000) {
            j++;
        }
        cr_assert_leq(i - j + 1, 100 + rate_burst(100), "window at %zu", j);
    }
}

Test(rate, idle_time_does_not_bank_more_than_the_burst)
{
    struct rate r = { 0 };
    unsigned n = 0;

    cr_assert(rate_take(&r, 50, 1000000));
    while (rate_take(&r, 50, 60000000)) {
        n++;
    }
    cr_assert_eq(n, rate_burst(50));
}

struct rate_thread {
    struct rate    *r;
    unsigned        taken;
};

static void *
rate_worker(void *arg)
{
    struct rate_thread *t = arg;
    unsigned i;

    for (i = 0; i < 100000; i++) {
        if (rate_take(t->r, 1000, 7000000)) {
            t->taken++;
        }
    }
    return NULL;
}

Test(rate, threads_share_one_bucket_exactly)
{
    struct rate r = { 0 };
    struct rate_thread t[4];
    pthread_t th[4];
    unsigned i, sum = 0;

    for (i = 0; i < 4; i++) {
        t[i].r = &r;
        t[i].taken = 0;
        cr_assert_eq(pthread_create(&th[i], NULL, rate_worker, &t[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        sum += t[i].taken;
    }
    /* At one instant only the burst is there, however many threads ask. */
    cr_assert_eq(sum, rate_burst(1000));
}
