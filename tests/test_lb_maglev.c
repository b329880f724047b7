/*
 * test_lb_maglev.c: the Maglev table spreads keys evenly and by weight,
 * is the same wherever it is built, and a backend leaving moves only its
 * own keys. Keys 0..M-1 hit every table slot once (M = 65537 for up to
 * 655 backends), so counts over them are the table's own shares.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/backend.h"
#include "mqlb/lb.h"

#define MG_M        65537u  /* table size for small pools */
#define MG_MAX      16      /* backends per test pool at most */
#define MG_NKEYS    200000  /* hashed client keys for disruption figures */

/* A test pool: backends made by hand, their state and the lb state. */
struct mg_pool {
    struct backend *b[MG_MAX];      /* owned */
    bool            usable[MG_MAX]; /* what rebuild() is told */
    size_t          n;              /* backends */
    void           *st;             /* lb_maglev_ops state */
};

/* A local 64-bit hash for client keys (the pool uses lb_hash()). */
static uint64_t
mg_key(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* A pool of <n> backends named by <names> (or "b<i>") with <weights>. */
static void
mg_init(struct mg_pool *mp, size_t n, const char *const *names,
        const unsigned *weights)
{
    size_t i;

    cr_assert_leq(n, MG_MAX);
    memset(mp, 0, sizeof(*mp));
    mp->n = n;
    for (i = 0; i < n; i++) {
        mp->b[i] = calloc(1, sizeof(*mp->b[i]));
        cr_assert_not_null(mp->b[i]);
        if (names != NULL) {
            snprintf(mp->b[i]->name, sizeof(mp->b[i]->name), "%s", names[i]);
        } else {
            snprintf(mp->b[i]->name, sizeof(mp->b[i]->name), "b%zu", i);
        }
        mp->b[i]->index = (unsigned)i;
        atomic_store(&mp->b[i]->weight, weights != NULL ? weights[i] : 1);
        mp->usable[i] = true;
    }
    mp->st = lb_maglev_ops.create(n);
    cr_assert_not_null(mp->st);
    lb_maglev_ops.rebuild(mp->st, mp->b, mp->usable, n);
}

static void
mg_deinit(struct mg_pool *mp)
{
    size_t i;

    lb_maglev_ops.destroy(mp->st);
    for (i = 0; i < mp->n; i++) {
        free(mp->b[i]);
    }
}

/* Tell the state which backends are usable now, as the pool would. */
static void
mg_set_usable(struct mg_pool *mp, size_t i, bool usable)
{
    mp->usable[i] = usable;
    lb_maglev_ops.rebuild(mp->st, mp->b, mp->usable, mp->n);
}

/*
 * The pool index chosen for <key> with the usable backends as candidates,
 * minus <skip> (a full or tried one; -1 for none).
 */
static unsigned
mg_pick_skip(struct mg_pool *mp, uint64_t key, int skip)
{
    struct lb_cand cands[MG_MAX];
    struct lb_pick p;
    size_t i, n;

    n = 0;
    for (i = 0; i < mp->n; i++) {
        if (mp->usable[i] && (int)i != skip) {
            cands[n].b = mp->b[i];
            cands[n].index = (unsigned)i;
            /* what the pool offers outside slow start: the full weight */
            cands[n].weight = atomic_load(&mp->b[i]->weight);
            n++;
        }
    }
    cr_assert_gt(n, 0);
    p.cands = cands;
    p.ncands = n;
    p.key = key;
    p.has_key = true;
    i = lb_maglev_ops.pick(mp->st, &p);
    cr_assert_lt(i, n);
    return cands[i].b->index;
}

static unsigned
mg_pick(struct mg_pool *mp, uint64_t key)
{
    return mg_pick_skip(mp, key, -1);
}

/* Slot counts per backend: keys 0..M-1. */
static void
mg_counts(struct mg_pool *mp, unsigned *counts)
{
    uint64_t s;

    memset(counts, 0, MG_MAX * sizeof(*counts));
    for (s = 0; s < MG_M; s++) {
        counts[mg_pick(mp, s)]++;
    }
}

Test(lb_maglev, equal_weights_spread_within_one_percent)
{
    size_t sizes[] = { 2, 3, 5, 7, 10, 16 };
    unsigned counts[MG_MAX];
    struct mg_pool mp;
    double even;
    size_t k, i;

    for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        mg_init(&mp, sizes[k], NULL, NULL);
        mg_counts(&mp, counts);
        even = (double)MG_M / (double)sizes[k];
        for (i = 0; i < sizes[k]; i++) {
            cr_assert(counts[i] >= even * 0.99 && counts[i] <= even * 1.01,
                      "n=%zu b%zu has %u slots, even is %.1f", sizes[k], i,
                      counts[i], even);
        }
        mg_deinit(&mp);
    }
}

Test(lb_maglev, removing_one_backend_moves_only_its_keys)
{
    static unsigned before[MG_NKEYS];
    struct mg_pool mp;
    size_t n = 10, gone = 3, moved, own, k;
    unsigned after;
    double frac;

    mg_init(&mp, n, NULL, NULL);
    for (k = 0; k < MG_NKEYS; k++) {
        before[k] = mg_pick(&mp, mg_key(k));
    }

    mg_set_usable(&mp, gone, false);
    moved = 0;
    own = 0;
    for (k = 0; k < MG_NKEYS; k++) {
        after = mg_pick(&mp, mg_key(k));
        cr_assert_neq(after, gone);
        if (before[k] == gone) {
            own++;
        }
        if (after != before[k]) {
            moved++;
            cr_assert_eq(before[k], gone,
                         "key %zu moved from b%u to b%u", k, before[k],
                         after);
        }
    }
    frac = (double)moved / MG_NKEYS;
    cr_log_info("lb_maglev: removing 1 of %zu backends moved %zu of %d "
                "keys (%.2f%%, ideal %.2f%%), 0 of other backends' keys",
                n, moved, MG_NKEYS, 100.0 * frac, 100.0 / (double)n);
    printf("lb_maglev disruption: 1 of %zu backends removed: %.2f%% of "
           "keys moved (ideal %.2f%%), other backends' keys moved: 0\n",
           n, 100.0 * frac, 100.0 / (double)n);
    cr_assert_eq(moved, own);
    cr_assert(frac > 0.9 / (double)n && frac < 1.1 / (double)n,
              "moved fraction %f", frac);
    mg_deinit(&mp);
}

Test(lb_maglev, displaced_keys_spread_over_the_rest)
{
    unsigned counts[MG_MAX] = { 0 };
    struct mg_pool full, less;
    size_t n = 5, i;
    uint64_t s;

    mg_init(&full, n, NULL, NULL);
    mg_init(&less, n, NULL, NULL);
    mg_set_usable(&less, 0, false);
    for (s = 0; s < MG_M; s++) {
        if (mg_pick(&full, s) == 0) {
            counts[mg_pick(&less, s)]++;
        }
    }
    /* b0's slots go to the others in about equal parts */
    for (i = 1; i < n; i++) {
        cr_assert(counts[i] > MG_M / n / (n - 1) * 0.9
                  && counts[i] < MG_M / n / (n - 1) * 1.1,
                  "b%zu got %u of b0's slots", i, counts[i]);
    }
    mg_deinit(&full);
    mg_deinit(&less);
}

Test(lb_maglev, second_removal_and_return_keep_others_in_place)
{
    static unsigned all[MG_NKEYS];
    struct mg_pool mp;
    size_t n = 8, k;
    unsigned now;

    mg_init(&mp, n, NULL, NULL);
    for (k = 0; k < MG_NKEYS; k++) {
        all[k] = mg_pick(&mp, mg_key(k));
    }
    mg_set_usable(&mp, 2, false);
    mg_set_usable(&mp, 6, false);
    for (k = 0; k < MG_NKEYS; k++) {
        now = mg_pick(&mp, mg_key(k));
        if (all[k] != 2 && all[k] != 6) {
            cr_assert_eq(now, all[k]);
        }
    }
    /* both come back: the table is the original again */
    mg_set_usable(&mp, 2, true);
    mg_set_usable(&mp, 6, true);
    for (k = 0; k < MG_NKEYS; k++) {
        cr_assert_eq(mg_pick(&mp, mg_key(k)), all[k]);
    }
    mg_deinit(&mp);
}

Test(lb_maglev, full_backend_moves_only_its_keys)
{
    struct mg_pool mp;
    size_t n = 6, k, moved;
    unsigned was, now;

    /* b4 is full: it stays in the table but is not a candidate */
    mg_init(&mp, n, NULL, NULL);
    moved = 0;
    for (k = 0; k < 50000; k++) {
        was = mg_pick(&mp, mg_key(k));
        now = mg_pick_skip(&mp, mg_key(k), 4);
        cr_assert_neq(now, 4);
        if (was != now) {
            cr_assert_eq(was, 4);
            moved++;
        }
    }
    cr_assert_gt(moved, 0);
    mg_deinit(&mp);
}

Test(lb_maglev, identical_tables_from_identical_inputs)
{
    const char *names[] = { "rabbit-a", "rabbit-b", "rabbit-c", "rabbit-d",
                            "rabbit-e" };
    unsigned weights[] = { 1, 2, 1, 3, 1 };
    struct mg_pool p1, p2;
    uint64_t s;

    mg_init(&p1, 5, names, weights);
    mg_init(&p2, 5, names, weights);
    mg_set_usable(&p1, 3, false);
    mg_set_usable(&p2, 3, false);
    for (s = 0; s < MG_M; s++) {
        cr_assert_eq(mg_pick(&p1, s), mg_pick(&p2, s), "slot %lu differs",
                     (unsigned long)s);
    }
    mg_deinit(&p1);
    mg_deinit(&p2);
}

Test(lb_maglev, table_depends_on_names_not_pool_order)
{
    const char *names1[] = { "n1", "n2", "n3", "n4" };
    const char *names2[] = { "n3", "n1", "n4", "n2" };
    struct mg_pool p1, p2;
    uint64_t s;

    mg_init(&p1, 4, names1, NULL);
    mg_init(&p2, 4, names2, NULL);
    for (s = 0; s < MG_M; s++) {
        cr_assert_str_eq(p1.b[mg_pick(&p1, s)]->name,
                         p2.b[mg_pick(&p2, s)]->name);
    }
    mg_deinit(&p1);
    mg_deinit(&p2);
}

Test(lb_maglev, weights_are_honoured)
{
    unsigned w21[] = { 2, 1 };
    unsigned w4211[] = { 4, 2, 1, 1 };
    unsigned counts[MG_MAX];
    struct mg_pool mp;
    double ratio, share;
    size_t i;

    mg_init(&mp, 2, NULL, w21);
    mg_counts(&mp, counts);
    ratio = (double)counts[0] / counts[1];
    cr_log_info("lb_maglev: weights 2:1 got %u:%u slots (%.3f)", counts[0],
                counts[1], ratio);
    cr_assert(ratio > 1.98 && ratio < 2.02, "ratio %f", ratio);
    mg_deinit(&mp);

    mg_init(&mp, 4, NULL, w4211);
    mg_counts(&mp, counts);
    for (i = 0; i < 4; i++) {
        share = (double)counts[i] / MG_M;
        cr_assert(share > w4211[i] / 8.0 * 0.98
                  && share < w4211[i] / 8.0 * 1.02,
                  "b%zu share %f", i, share);
    }
    mg_deinit(&mp);
}

Test(lb_maglev, zero_weight_gets_no_keys)
{
    unsigned w[] = { 1, 0, 1 };
    unsigned counts[MG_MAX];
    struct mg_pool mp;

    mg_init(&mp, 3, NULL, w);
    /* the pool would not offer it; check the table has no slot for it */
    mp.usable[1] = false;
    mg_counts(&mp, counts);
    cr_assert_eq(counts[1], 0);
    cr_assert_eq(counts[0] + counts[2], MG_M);
    mg_deinit(&mp);
}

Test(lb_maglev, stale_table_never_picks_a_non_candidate)
{
    struct lb_cand cands[2];
    struct lb_pick p;
    struct mg_pool mp;
    size_t k, i;

    /* table says all 6 are usable, but only b1 and b5 are offered */
    mg_init(&mp, 6, NULL, NULL);
    cands[0].b = mp.b[1];
    cands[0].index = 1;
    cands[0].weight = 1;
    cands[1].b = mp.b[5];
    cands[1].index = 5;
    cands[1].weight = 1;
    p.cands = cands;
    p.ncands = 2;
    p.has_key = true;
    for (k = 0; k < 10000; k++) {
        p.key = mg_key(k);
        i = lb_maglev_ops.pick(mp.st, &p);
        cr_assert_lt(i, 2);
        /* and stays stable */
        cr_assert_eq(lb_maglev_ops.pick(mp.st, &p), i);
    }
    mg_deinit(&mp);
}

Test(lb_maglev, empty_table_falls_back_to_key_modulo)
{
    struct lb_cand cands[3];
    struct lb_pick p;
    struct mg_pool mp;
    size_t i;

    mg_init(&mp, 3, NULL, NULL);
    for (i = 0; i < 3; i++) {
        mp.usable[i] = false;
        cands[i].b = mp.b[i];
        cands[i].index = (unsigned)i;
        cands[i].weight = 1;
    }
    lb_maglev_ops.rebuild(mp.st, mp.b, mp.usable, 3);
    p.cands = cands;
    p.ncands = 3;
    p.has_key = true;
    for (i = 0; i < 30; i++) {
        p.key = mg_key(i);
        cr_assert_eq(lb_maglev_ops.pick(mp.st, &p), p.key % 3);
    }
    mg_deinit(&mp);
}

Test(lb_maglev, backups_take_over_when_no_primary_is_usable)
{
    unsigned counts[MG_MAX];
    struct mg_pool mp;

    mg_init(&mp, 4, NULL, NULL);
    mp.b[2]->backup = 1;
    mp.b[3]->backup = 1;
    mp.usable[2] = false;
    mp.usable[3] = false;
    lb_maglev_ops.rebuild(mp.st, mp.b, mp.usable, 4);
    mg_counts(&mp, counts);
    cr_assert_eq(counts[0] + counts[1], MG_M);

    mp.usable[0] = false;
    mp.usable[1] = false;
    mp.usable[2] = true;
    mp.usable[3] = true;
    lb_maglev_ops.rebuild(mp.st, mp.b, mp.usable, 4);
    mg_counts(&mp, counts);
    cr_assert_eq(counts[2] + counts[3], MG_M);
    cr_assert(counts[2] > MG_M / 2 * 0.99 && counts[2] < MG_M / 2 * 1.01);
    mg_deinit(&mp);
}

/* A pick over all usable backends where backend <ramp> is ramping at
 * <eff> of its weight (slow start), as pool_pick offers it. */
static unsigned
mg_pick_ramp(struct mg_pool *mp, uint64_t key, size_t ramp, unsigned eff)
{
    struct lb_cand cands[MG_MAX];
    struct lb_pick p;
    size_t i, n = 0;

    for (i = 0; i < mp->n; i++) {
        if (mp->usable[i]) {
            cands[n].b = mp->b[i];
            cands[n].index = (unsigned)i;
            cands[n].weight = i == ramp ? eff
                              : atomic_load(&mp->b[i]->weight);
            n++;
        }
    }
    p.cands = cands;
    p.ncands = n;
    p.key = key;
    p.has_key = true;
    return cands[lb_maglev_ops.pick(mp->st, &p)].b->index;
}

Test(lb_maglev, slow_start_returns_keys_in_step_with_the_ramp)
{
    unsigned w[] = { 8, 8, 8 };
    unsigned owner[4000], share[9] = { 0 };
    unsigned eff, at;
    struct mg_pool mp;
    size_t k, mine = 0;

    mg_init(&mp, 3, NULL, w);
    for (k = 0; k < 4000; k++) {
        owner[k] = mg_pick(&mp, mg_key(k));
        mine += owner[k] == 1;
    }
    for (eff = 1; eff <= 8; eff++) {
        for (k = 0; k < 4000; k++) {
            at = mg_pick_ramp(&mp, mg_key(k), 1, eff);
            if (owner[k] != 1) {
                /* other backends' keys never move */
                cr_assert_eq(at, owner[k], "key %zu moved", k);
            } else if (at == 1) {
                share[eff]++;
            }
        }
        /* a key that came back stays back as the ramp rises */
        cr_assert_geq(share[eff], share[eff - 1]);
    }
    cr_assert_eq(share[8], mine, "at full weight every key is back");
    cr_assert(share[2] > mine / 8 && share[2] < mine * 3 / 8,
              "a quarter of the ramp takes back about a quarter: %u of %zu",
              share[2], mine);
    mg_deinit(&mp);
}

/*
 * Membership changes (a discovered backend joins or leaves the pool, not
 * just goes down): the pool builds a fresh state over the new member
 * list. Keys are compared by backend name, since positions may differ.
 * Maglev's disruption is close to the ideal 1/N: measured here over
 * MG_NKEYS hashed keys, with every moved key accounted for.
 */
static void
mg_names_of(struct mg_pool *mp, unsigned *out)
{
    size_t k;

    /* test pools are built from one name list: the position is the name */
    for (k = 0; k < MG_NKEYS; k++) {
        out[k] = mg_pick(mp, mg_key(k));
    }
}

Test(lb_maglev, membership_change_moves_about_one_nth_of_keys)
{
    static unsigned before[MG_NKEYS], after[MG_NKEYS];
    static const char *const names[] = {
        "redis-0", "redis-1", "redis-2", "redis-3", "redis-4", "redis-5",
        "redis-6", "redis-7", "redis-8", "redis-9", "redis-10",
    };
    struct mg_pool mp;
    size_t k, moved, to_new, from_gone, n = 10;
    double ideal;

    /* join: 10 -> 11 members */
    mg_init(&mp, n, names, NULL);
    mg_names_of(&mp, before);
    mg_deinit(&mp);
    mg_init(&mp, n + 1, names, NULL);
    mg_names_of(&mp, after);
    moved = to_new = 0;
    for (k = 0; k < MG_NKEYS; k++) {
        if (before[k] != after[k]) {
            moved++;
            to_new += after[k] == n;
        }
    }
    ideal = (double)MG_NKEYS / (double)(n + 1);
    cr_log_info("join: %zu of %d keys moved (ideal %.0f), %zu to the "
                "newcomer", moved, MG_NKEYS, ideal, to_new);
    cr_assert(moved >= ideal * 0.9 && moved <= ideal * 1.1,
              "join moved %zu keys, ideal %.0f", moved, ideal);
    cr_assert_geq(to_new, moved * 95 / 100,
                  "moved keys go to the newcomer: %zu of %zu", to_new, moved);

    /* leave: 11 -> 10 members (the last one leaves the member list) */
    memcpy(before, after, sizeof(before));
    mg_deinit(&mp);
    mg_init(&mp, n, names, NULL);
    mg_names_of(&mp, after);
    moved = from_gone = 0;
    for (k = 0; k < MG_NKEYS; k++) {
        if (before[k] != after[k]) {
            moved++;
            from_gone += before[k] == n;
        }
    }
    cr_log_info("leave: %zu of %d keys moved (ideal %.0f), %zu were the "
                "leaver's", moved, MG_NKEYS, ideal, from_gone);
    cr_assert(moved >= ideal * 0.9 && moved <= ideal * 1.1,
              "leave moved %zu keys, ideal %.0f", moved, ideal);
    cr_assert_geq(from_gone, moved * 95 / 100);
    mg_deinit(&mp);
}
