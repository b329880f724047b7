/*
 * test_histo.c: histogram buckets, merging and the Prometheus text.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "mqlb/histo.h"

Test(histo, observations_land_in_their_bucket)
{
    struct histo h;
    struct histo_copy c;

    histo_init(&h, HISTO_FAST);
    histo_observe_us(&h, 500);          /* <= 1 ms */
    histo_observe_us(&h, 1000);         /* le is inclusive: 1 ms */
    histo_observe_us(&h, 1001);         /* 2.5 ms */
    histo_observe_us(&h, 20000000);     /* past 10 s: +Inf */
    histo_copy(&h, &c);
    cr_assert_eq(c.counts[0], 2);
    cr_assert_eq(c.counts[1], 1);
    cr_assert_eq(c.counts[HISTO_MAX_BUCKETS], 1);
    cr_assert_eq(histo_count(&c), 4);
    cr_assert_eq(c.sum_us, 500 + 1000 + 1001 + 20000000);
}

Test(histo, render_is_cumulative_with_sum_and_count)
{
    struct histo h;
    struct histo_copy c;
    char out[4096];
    size_t n;

    histo_init(&h, HISTO_FAST);
    histo_observe_us(&h, 2000);
    histo_observe_us(&h, 3000);
    histo_copy(&h, &c);
    n = histo_render(&c, "m", "pool=\"p\"", out, sizeof(out));
    cr_assert_lt(n, sizeof(out));
    cr_assert(strstr(out, "m_bucket{pool=\"p\",le=\"0.001\"} 0\n") != NULL);
    cr_assert(strstr(out, "m_bucket{pool=\"p\",le=\"0.0025\"} 1\n") != NULL);
    cr_assert(strstr(out, "m_bucket{pool=\"p\",le=\"0.005\"} 2\n") != NULL);
    cr_assert(strstr(out, "m_bucket{pool=\"p\",le=\"10\"} 2\n") != NULL);
    cr_assert(strstr(out, "m_bucket{pool=\"p\",le=\"+Inf\"} 2\n") != NULL);
    cr_assert(strstr(out, "m_sum{pool=\"p\"} 0.005\n") != NULL);
    cr_assert(strstr(out, "m_count{pool=\"p\"} 2\n") != NULL);
}

Test(histo, render_without_labels_and_too_small_buffer)
{
    struct histo h;
    struct histo_copy c;
    char out[4096], tiny[8];
    size_t need;

    histo_init(&h, HISTO_LONG);
    histo_observe_us(&h, 90000000);     /* 90 s */
    histo_copy(&h, &c);
    need = histo_render(&c, "s", "", out, sizeof(out));
    cr_assert(strstr(out, "s_bucket{le=\"60\"} 0\n") != NULL);
    cr_assert(strstr(out, "s_bucket{le=\"300\"} 1\n") != NULL);
    cr_assert(strstr(out, "s_sum 90\ns_count 1\n") != NULL);
    /* A short buffer reports the length needed and stays terminated. */
    cr_assert_eq(histo_render(&c, "s", "", tiny, sizeof(tiny)), need);
    cr_assert_eq(tiny[sizeof(tiny) - 1], '\0');
}

Test(histo, merge_adds_bucketwise)
{
    struct histo a, b;
    struct histo_copy ca, cb;

    histo_init(&a, HISTO_FAST);
    histo_init(&b, HISTO_FAST);
    histo_observe_us(&a, 100);
    histo_observe_us(&b, 100);
    histo_observe_us(&b, 60000);
    histo_copy(&a, &ca);
    histo_copy(&b, &cb);
    histo_merge(&ca, &cb);
    cr_assert_eq(ca.counts[0], 2);
    cr_assert_eq(histo_count(&ca), 3);
    cr_assert_eq(ca.sum_us, 60200);
}

/* Every buffer size gets the longest prefix that fits, terminated, and
 * the same length needed: what snprintf did for the renderer before. */
Test(histo, render_truncates_like_snprintf_at_every_size)
{
    struct histo h;
    struct histo_copy c;
    char full[4096], cut[4096];
    size_t need, cap;

    histo_init(&h, HISTO_FAST);
    histo_observe_us(&h, 2000);
    histo_observe_us(&h, 30000000);
    histo_copy(&h, &c);
    need = histo_render(&c, "m", "pool=\"p\"", full, sizeof(full));
    cr_assert_lt(need, sizeof(full));
    cr_assert_eq(strlen(full), need);
    for (cap = 1; cap <= need + 1; cap++) {
        memset(cut, 'x', sizeof(cut));
        cr_assert_eq(histo_render(&c, "m", "pool=\"p\"", cut, cap), need);
        cr_assert_eq(strlen(cut), cap - 1, "cap %zu", cap);
        cr_assert_eq(memcmp(cut, full, cap - 1), 0, "cap %zu", cap);
        cr_assert_eq(cut[cap], 'x', "wrote past cap %zu", cap);
    }
    cr_assert_eq(histo_render(&c, "m", "pool=\"p\"", NULL, 0), need);
}
