/*
 * test_admission.c: max_connections tickets: taken up to the limit and
 * given back once, and the high-water mark that the memory trim reads,
 * which must see a burst that came and went between two readings.
 */
#include <pthread.h>

#include <criterion/criterion.h>

#include "mqlb/admission.h"
#include "mqlb/common.h"

Test(admission, tickets_stop_at_max_and_come_back_once)
{
    struct admission a;
    struct admission_ticket t[3];

    admission_init(&a, 2);
    cr_assert_eq(admission_take(&a, &t[0]), MQ_OK);
    cr_assert_eq(admission_take(&a, &t[1]), MQ_OK);
    cr_expect_eq(admission_nfull(&a), 0);
    cr_expect_eq(admission_take(&a, &t[2]), MQ_ERR, "the third is over max");
    cr_expect_eq(admission_take(&a, &t[2]), MQ_ERR);
    cr_expect_eq(admission_nfull(&a), 2, "each refusal is counted");
    cr_expect_eq(admission_nlive(&a), 2);
    admission_return(&t[0]);
    admission_return(&t[0]);
    cr_expect_eq(admission_nlive(&a), 1, "a second return gives nothing back");
    admission_return(&t[1]);
    cr_expect_eq(admission_nlive(&a), 0);
}

Test(admission, peak_sees_a_burst_that_is_over_before_it_is_read)
{
    struct admission a;
    struct admission_ticket t[1000];
    unsigned i;

    admission_init(&a, 5000);
    cr_expect_eq(admission_peak_reset(&a), 0);
    for (i = 0; i < 1000; i++) {
        cr_assert_eq(admission_take(&a, &t[i]), MQ_OK);
    }
    for (i = 0; i < 1000; i++) {
        admission_return(&t[i]);
    }
    cr_expect_eq(admission_nlive(&a), 0);
    cr_expect_eq(admission_peak_reset(&a), 1000, "the burst is seen");
    cr_expect_eq(admission_peak_reset(&a), 0, "and read once");
    /* a new period starts from what is out at the reset */
    cr_assert_eq(admission_take(&a, &t[0]), MQ_OK);
    cr_assert_eq(admission_take(&a, &t[1]), MQ_OK);
    cr_expect_eq(admission_peak_reset(&a), 2);
    admission_return(&t[1]);
    cr_expect_eq(admission_peak_reset(&a), 2, "one was still out at the reset");
    cr_expect_eq(admission_peak_reset(&a), 1);
    admission_return(&t[0]);
    cr_expect_eq(admission_peak_reset(&a), 1);
}

Test(admission, refused_tickets_do_not_raise_the_peak)
{
    struct admission a;
    struct admission_ticket t[2];

    admission_init(&a, 1);
    cr_assert_eq(admission_take(&a, &t[0]), MQ_OK);
    cr_assert_eq(admission_take(&a, &t[1]), MQ_ERR);
    cr_expect_eq(admission_peak_reset(&a), 1);
    admission_return(&t[0]);
}

#define HAMMER_THREADS  4
#define HAMMER_HELD     250

static void *
admission_hammer(void *arg)
{
    struct admission *a = arg;
    struct admission_ticket t[HAMMER_HELD];
    unsigned round, i;

    for (round = 0; round < 20; round++) {
        for (i = 0; i < HAMMER_HELD; i++) {
            cr_assert_eq(admission_take(a, &t[i]), MQ_OK);
        }
        for (i = 0; i < HAMMER_HELD; i++) {
            admission_return(&t[i]);
        }
    }
    return NULL;
}

Test(admission, peak_from_many_threads_is_within_what_they_can_hold)
{
    struct admission a;
    pthread_t th[HAMMER_THREADS];
    unsigned i, peak;

    admission_init(&a, 100000);
    for (i = 0; i < HAMMER_THREADS; i++) {
        cr_assert_eq(pthread_create(&th[i], NULL, admission_hammer, &a), 0);
    }
    for (i = 0; i < HAMMER_THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    peak = admission_peak_reset(&a);
    cr_expect_eq(admission_nlive(&a), 0);
    cr_expect_geq(peak, HAMMER_HELD, "one thread alone held %u", HAMMER_HELD);
    cr_expect_leq(peak, HAMMER_THREADS * HAMMER_HELD);
}
