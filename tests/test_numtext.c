/*
 * test_numtext.c: every numtext writer against what snprintf writes for
 * the same value: edges (0, each power of ten and its neighbours, each
 * power of two and its neighbours, UINT64_MAX) and a fixed pseudo-random
 * sweep.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mqlb/numtext.h"

/* The values to try, near every digit-count and bit-width boundary. */
static size_t
test_numtext_edges(uint64_t *v, size_t max)
{
    uint64_t p;
    size_t n = 0;
    int k;

    for (p = 1, k = 0; k < 20; k++, p *= 10) {
        v[n++] = p - 1;
        v[n++] = p;
        v[n++] = p + 1;
    }
    for (k = 0; k < 64; k++) {
        v[n++] = ((uint64_t)1 << k) - 1;
        v[n++] = (uint64_t)1 << k;
        v[n++] = ((uint64_t)1 << k) + 1;
    }
    v[n++] = UINT64_MAX;
    v[n++] = UINT64_MAX - 1;
    v[n++] = 999999;                    /* one microsecond short of 1 s */
    v[n++] = 1000001;
    v[n++] = 86400000000ULL;            /* a day in microseconds */
    cr_assert(n <= max);
    return n;
}

/* xorshift64: the same sequence on every run. */
static uint64_t
test_numtext_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* What the renderers printed before numtext: the reference. */
static void
test_numtext_ref_micro(uint64_t us, char *out, size_t cap)
{
    char frac[8];
    int n;

    if (us % 1000000 == 0) {
        snprintf(out, cap, "%" PRIu64, us / 1000000);
        return;
    }
    n = snprintf(frac, sizeof(frac), "%06u", (unsigned)(us % 1000000));
    while (n > 0 && frac[n - 1] == '0') {
        frac[--n] = '\0';
    }
    snprintf(out, cap, "%" PRIu64 ".%s", us / 1000000, frac);
}

/* Each writer's text for <v> equals snprintf's, within NUMTEXT_MAX. */
static void
test_numtext_check(uint64_t v)
{
    char got[NUMTEXT_MAX + 1], want[64];
    size_t n;

    memset(got, 'x', sizeof(got));
    n = numtext_u64(got, v);
    snprintf(want, sizeof(want), "%" PRIu64, v);
    cr_assert_eq(n, strlen(want), "u64 %" PRIu64, v);
    cr_assert_eq(memcmp(got, want, n), 0, "u64 %" PRIu64, v);
    cr_assert_eq(got[NUMTEXT_MAX], 'x');

    memset(got, 'x', sizeof(got));
    n = numtext_milli(got, v);
    snprintf(want, sizeof(want), "%" PRIu64 ".%03u", v / 1000,
             (unsigned)(v % 1000));
    cr_assert_eq(n, strlen(want), "milli %" PRIu64, v);
    cr_assert_eq(memcmp(got, want, n), 0, "milli %" PRIu64, v);
    cr_assert_eq(got[NUMTEXT_MAX], 'x');

    memset(got, 'x', sizeof(got));
    n = numtext_micro(got, v);
    test_numtext_ref_micro(v, want, sizeof(want));
    cr_assert_eq(n, strlen(want), "micro %" PRIu64, v);
    cr_assert_eq(memcmp(got, want, n), 0, "micro %" PRIu64 ": %.*s", v,
                 (int)n, got);
    cr_assert_eq(got[NUMTEXT_MAX], 'x');
}

Test(numtext, edges_match_snprintf)
{
    uint64_t v[300];
    size_t n, i;

    n = test_numtext_edges(v, sizeof(v) / sizeof(v[0]));
    for (i = 0; i < n; i++) {
        test_numtext_check(v[i]);
    }
}

Test(numtext, pseudo_random_values_match_snprintf)
{
    uint64_t s = 0x9e3779b97f4a7c15ULL, r;
    int i;

    for (i = 0; i < 20000; i++) {
        r = test_numtext_next(&s);
        test_numtext_check(r);
        test_numtext_check(r >> (r % 64));   /* every length */
        test_numtext_check(r % 100000000);   /* short fractions */
    }
}
