/*
 * test_pool.c: which backends pool_pick() may choose (down, weight 0,
 * drained, disabled, full, tried, backup) and the exact round-robin split
 * over real backends made by backend_create() from a parsed config.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/config.h"
#include "mqlb/pool.h"
#include "mqlb/rate.h"

#define TP_MAX  8       /* backends in a test pool */

/* A pool over real backends, its config and the references we hold. */
struct pool_fx {
    struct config      *cf;             /* owns the config_pool */
    struct backend     *b[TP_MAX];      /* one reference each */
    size_t              n;
    struct pool        *p;
    _Atomic uint64_t    nrejected[REJECT_NREASONS];
};

static struct pool_fx tp;

/* A pool "p" whose [pool] section ends with <lines> (the backends). */
static void
tp_init(const char *lines)
{
    struct config_errors errs = { 0 };
    char text[2048];
    size_t i;

    memset(&tp, 0, sizeof(tp));
    snprintf(text, sizeof(text), "[pool p]\nlisten = 127.0.0.1:7001\n%s",
             lines);
    tp.cf = config_load_string(text, "pool.ini", &errs);
    cr_assert_not_null(tp.cf, "config: %s",
                       errs.nmsgs > 0 ? errs.msgs[0] : "?");
    config_errors_deinit(&errs);
    tp.n = tp.cf->pools[0].nbackends;
    cr_assert_leq(tp.n, TP_MAX);
    for (i = 0; i < tp.n; i++) {
        tp.b[i] = backend_create(&tp.cf->pools[0].backends[i], "p");
        cr_assert_not_null(tp.b[i]);
    }
    tp.p = pool_create(&tp.cf->pools[0], tp.b, tp.nrejected);
    cr_assert_not_null(tp.p);
}

static void
tp_fini(void)
{
    size_t i;

    pool_release(tp.p);
    for (i = 0; i < tp.n; i++) {
        backend_release(tp.b[i]);
    }
    config_destroy(tp.cf);
}

TestSuite(pool, .fini = tp_fini);

/* Health verdict by hand, as the checker would leave it. */
static void
tp_set_up(size_t i, bool up)
{
    atomic_store(&tp.b[i]->up, up);
    atomic_fetch_add(&tp.b[i]->version, 1);
}

/* One pick with <tried> (NULL: none); the backend's index or -1. */
static int
tp_pick(const struct pool_tried *tried)
{
    static const struct pool_tried none;
    struct backend *b;

    b = pool_pick(tp.p, tried != NULL ? tried : &none, 0, mq_now_ms());
    return b == NULL ? -1 : (int)b->index;
}

/* <n> picks, each session ended at once; counts per backend index. */
static void
tp_count(size_t n, size_t count[TP_MAX])
{
    size_t i;
    int idx;

    memset(count, 0, TP_MAX * sizeof(count[0]));
    for (i = 0; i < n; i++) {
        idx = tp_pick(NULL);
        cr_assert_geq(idx, 0, "pick %zu found nothing", i);
        count[idx]++;
        backend_session_end(tp.b[idx]);
    }
}

static const char tp_three[] =
    "backend = a 127.0.0.1:7101\n"
    "backend = b 127.0.0.1:7102\n"
    "backend = c 127.0.0.1:7103\n";

Test(pool, weights_1_1_1_split_300_picks_100_each)
{
    size_t count[TP_MAX];

    tp_init(tp_three);
    tp_count(300, count);
    cr_expect_eq(count[0], 100);
    cr_expect_eq(count[1], 100);
    cr_expect_eq(count[2], 100);
}

Test(pool, weights_3_1_1_split_500_picks_300_100_100)
{
    size_t count[TP_MAX];

    tp_init("backend = a 127.0.0.1:7101 weight=3\n"
            "backend = b 127.0.0.1:7102 weight=1\n"
            "backend = c 127.0.0.1:7103 weight=1\n");
    tp_count(500, count);
    cr_expect_eq(count[0], 300);
    cr_expect_eq(count[1], 100);
    cr_expect_eq(count[2], 100);
}

Test(pool, pick_raises_nactive_and_ntotal)
{
    int idx;

    tp_init(tp_three);
    idx = tp_pick(NULL);
    cr_assert_eq(idx, 0);
    cr_expect_eq(atomic_load(&tp.b[0]->nactive), 1);
    cr_expect_eq(atomic_load(&tp.b[0]->ntotal), 1);
    cr_expect_eq(atomic_load(&tp.b[1]->nactive), 0);
    cr_expect_eq(tp_pick(NULL), 1);
    cr_expect_eq(tp_pick(NULL), 2);
    cr_expect_eq(tp_pick(NULL), 0);
    cr_expect_eq(atomic_load(&tp.b[0]->nactive), 2);
    backend_session_end(tp.b[0]);
    backend_session_end(tp.b[0]);
    backend_session_end(tp.b[1]);
    backend_session_end(tp.b[2]);
    cr_expect_eq(atomic_load(&tp.b[0]->nactive), 0);
    cr_expect_eq(atomic_load(&tp.b[0]->ntotal), 2);
}

Test(pool, down_backend_is_skipped)
{
    size_t count[TP_MAX];

    tp_init(tp_three);
    tp_set_up(1, false);
    tp_count(100, count);
    cr_expect_eq(count[1], 0);
    cr_expect_eq(count[0], 50);
    cr_expect_eq(count[2], 50);
    cr_expect(pool_has_up_backend(tp.p));

    tp_set_up(1, true);
    tp_count(99, count);
    cr_expect_eq(count[0], 33);
    cr_expect_eq(count[1], 33);
    cr_expect_eq(count[2], 33);
}

Test(pool, weight_0_backend_is_skipped)
{
    size_t count[TP_MAX];

    tp_init("backend = a 127.0.0.1:7101\n"
            "backend = b 127.0.0.1:7102 weight=0\n"
            "backend = c 127.0.0.1:7103\n");
    tp_count(100, count);
    cr_expect_eq(count[1], 0);
    cr_expect_eq(count[0] + count[2], 100);

    backend_set_weight(tp.b[0], 0);
    tp_count(10, count);
    cr_expect_eq(count[2], 10, "weight set to 0 by the admin port");
}

Test(pool, drained_and_disabled_backends_are_skipped)
{
    size_t count[TP_MAX];

    tp_init(tp_three);
    backend_set_admin(tp.b[0], BACKEND_ADMIN_DRAIN);
    backend_set_admin(tp.b[2], BACKEND_ADMIN_DISABLE);
    tp_count(30, count);
    cr_expect_eq(count[0], 0);
    cr_expect_eq(count[1], 30);
    cr_expect_eq(count[2], 0);

    backend_set_admin(tp.b[0], BACKEND_ADMIN_NONE);
    backend_set_admin(tp.b[2], BACKEND_ADMIN_NONE);
    tp_count(30, count);
    cr_expect_eq(count[0], 10);
    cr_expect_eq(count[1], 10);
    cr_expect_eq(count[2], 10);
}

Test(pool, protocol_drained_backend_is_skipped)
{
    size_t count[TP_MAX];

    tp_init(tp_three);
    backend_set_proto_drain(tp.b[1], true);
    tp_count(20, count);
    cr_expect_eq(count[1], 0);
    cr_expect_eq(count[0] + count[2], 20);
}

Test(pool, full_backend_is_skipped_until_a_session_ends)
{
    size_t i, held[TP_MAX] = { 0 };
    int idx;

    tp_init("backend = a 127.0.0.1:7101 max_conns=2\n"
            "backend = b 127.0.0.1:7102\n");
    /* Hold every session: a fills up after two, then only b is left. */
    for (i = 0; i < 10; i++) {
        idx = tp_pick(NULL);
        cr_assert_geq(idx, 0);
        held[idx]++;
    }
    cr_expect_eq(held[0], 2);
    cr_expect_eq(held[1], 8);
    cr_expect_eq(atomic_load(&tp.b[0]->nactive), 2);

    backend_session_end(tp.b[0]);
    held[0]--;
    for (i = 0; i < 3; i++) {
        idx = tp_pick(NULL);
        cr_assert_geq(idx, 0);
        held[idx]++;
        if (idx == 0) {
            break;
        }
    }
    cr_expect_eq(idx, 0, "a takes sessions again once one ended");
    for (i = 0; i < 4; i++) {
        cr_expect_eq(tp_pick(NULL), 1, "a is full again");
        held[1]++;
    }
    cr_expect_eq(atomic_load(&tp.b[0]->nactive), 2);
    for (i = 0; i < 2; i++) {
        while (held[i] > 0) {
            backend_session_end(tp.b[i]);
            held[i]--;
        }
    }
}

Test(pool, max_conns_per_backend_applies_to_every_backend)
{
    int idx;
    size_t i;

    tp_init("max_conns_per_backend = 1\n"
            "backend = a 127.0.0.1:7101\n"
            "backend = b 127.0.0.1:7102 max_conns=2\n");
    for (i = 0; i < 3; i++) {
        idx = tp_pick(NULL);
        cr_expect_geq(idx, 0, "pick %zu", i);
    }
    cr_expect_eq(atomic_load(&tp.b[0]->nactive), 1);
    cr_expect_eq(atomic_load(&tp.b[1]->nactive), 2);
    cr_expect_eq(tp_pick(NULL), -1, "both are full");
    backend_session_end(tp.b[0]);
    backend_session_end(tp.b[1]);
    backend_session_end(tp.b[1]);
}

Test(pool, tried_backends_are_skipped)
{
    struct pool_tried tried;
    int idx;
    size_t i;

    tp_init(tp_three);
    memset(&tried, 0, sizeof(tried));
    pool_tried_set(&tried, 0);
    pool_tried_set(&tried, 2);
    for (i = 0; i < 10; i++) {
        idx = tp_pick(&tried);
        cr_expect_eq(idx, 1);
        if (idx >= 0) {
            backend_session_end(tp.b[idx]);
        }
    }
    pool_tried_set(&tried, 1);
    cr_expect_eq(tp_pick(&tried), -1, "every backend was tried");
}

static const char tp_backup[] =
    "backend = a 127.0.0.1:7101\n"
    "backend = b 127.0.0.1:7102\n"
    "backend = s 127.0.0.1:7103 backup\n"
    "backend = t 127.0.0.1:7104 backup\n";

Test(pool, backup_is_used_only_when_no_primary_is_up)
{
    size_t count[TP_MAX];

    tp_init(tp_backup);
    tp_count(40, count);
    cr_expect_eq(count[0], 20);
    cr_expect_eq(count[1], 20);
    cr_expect_eq(count[2] + count[3], 0, "backups idle while a primary is up");

    tp_set_up(0, false);
    tp_count(40, count);
    cr_expect_eq(count[1], 40);
    cr_expect_eq(count[2] + count[3], 0, "one primary up is enough");

    tp_set_up(1, false);
    tp_count(40, count);
    cr_expect_eq(count[0] + count[1], 0);
    cr_expect_eq(count[2], 20, "backups share the load between them");
    cr_expect_eq(count[3], 20);

    tp_set_up(1, true);
    tp_count(40, count);
    cr_expect_eq(count[1], 40, "a primary back up takes over again");
}

Test(pool, drained_primaries_hand_over_to_backups)
{
    size_t count[TP_MAX];

    tp_init(tp_backup);
    backend_set_admin(tp.b[0], BACKEND_ADMIN_DRAIN);
    backend_set_admin(tp.b[1], BACKEND_ADMIN_DISABLE);
    tp_count(20, count);
    cr_expect_eq(count[0] + count[1], 0);
    cr_expect_eq(count[2] + count[3], 20);
}

Test(pool, backups_are_tried_when_every_primary_was_tried)
{
    struct pool_tried tried;
    int first, second;

    tp_init(tp_backup);
    memset(&tried, 0, sizeof(tried));
    pool_tried_set(&tried, 0);
    pool_tried_set(&tried, 1);
    first = tp_pick(&tried);
    cr_assert(first == 2 || first == 3, "got %d", first);
    backend_session_end(tp.b[first]);
    pool_tried_set(&tried, (unsigned)first);
    second = tp_pick(&tried);
    cr_assert_eq(second, 5 - first, "then the other backup, got %d", second);
    backend_session_end(tp.b[second]);
    pool_tried_set(&tried, (unsigned)second);
    cr_expect_eq(tp_pick(&tried), -1, "everything was tried");
}

Test(pool, backups_are_tried_when_every_primary_is_full)
{
    int i1, i2, i3;

    tp_init("backend = a 127.0.0.1:7101 max_conns=1\n"
            "backend = s 127.0.0.1:7103 backup max_conns=1\n");
    i1 = tp_pick(NULL);
    i2 = tp_pick(NULL);
    i3 = tp_pick(NULL);
    cr_expect_eq(i1, 0);
    cr_expect_eq(i2, 1, "a is full: the backup takes the client");
    cr_expect_eq(i3, -1, "both full");
    backend_session_end(tp.b[0]);
    backend_session_end(tp.b[1]);
}

Test(pool, nothing_eligible_gives_null)
{
    size_t i;

    tp_init(tp_three);
    for (i = 0; i < 3; i++) {
        tp_set_up(i, false);
    }
    cr_expect_eq(tp_pick(NULL), -1);
    cr_expect_not(pool_has_up_backend(tp.p));
    for (i = 0; i < 3; i++) {
        cr_expect_eq(atomic_load(&tp.b[i]->nactive), 0);
        cr_expect_eq(atomic_load(&tp.b[i]->ntotal), 0);
    }
    tp_set_up(2, true);
    cr_expect_eq(tp_pick(NULL), 2);
    backend_session_end(tp.b[2]);
}

Test(pool, all_down_with_down_backups_gives_null)
{
    size_t i;

    tp_init(tp_backup);
    for (i = 0; i < 4; i++) {
        tp_set_up(i, false);
    }
    cr_expect_eq(tp_pick(NULL), -1);
}

Test(pool, find_backend_by_name)
{
    tp_init(tp_three);
    cr_expect_eq(pool_find_backend(tp.p, "b"), tp.b[1]);
    cr_expect_eq(tp.b[1]->index, 1);
    cr_expect_null(pool_find_backend(tp.p, "z"));
}

Test(pool, pool_holds_its_own_backend_references)
{
    tp_init(tp_three);
    cr_expect_eq(atomic_load(&tp.b[0]->refcnt), 2, "ours and the pool's");
    pool_acquire(tp.p);
    pool_release(tp.p);
    cr_expect_eq(atomic_load(&tp.p->refcnt), 1);
}

/* ---- connect rate, saturation, rebalancing picks, key owners ----------- */

Test(pool, a_backend_over_its_connect_rate_is_passed_over)
{
    size_t count[TP_MAX] = { 0 };
    size_t i;
    int idx;

    tp_init("backend = a 127.0.0.1:7101 max_connect_rate=100\n"
            "backend = b 127.0.0.1:7102\n");
    /* At one instant: a's burst (a tenth of a second's worth), then b. */
    for (i = 0; i < 200; i++) {
        idx = tp_pick(NULL);
        cr_assert_geq(idx, 0);
        count[idx]++;
    }
    cr_expect_eq(count[0], rate_burst(100));
    cr_expect_eq(count[1], 200 - rate_burst(100));
}

Test(pool, all_at_their_rate_or_max_conns_is_saturated_not_down)
{
    tp_init("max_connect_rate = 10\n"
            "backend = a 127.0.0.1:7101\n"
            "backend = b 127.0.0.1:7102 max_conns=1\n");
    cr_expect_not(pool_is_saturated(tp.p, mq_now_ms()));
    while (tp_pick(NULL) >= 0) {
    }
    /* Nothing can be picked, yet both serve: a client may wait. */
    cr_expect(pool_is_saturated(tp.p, mq_now_ms()));
    tp_set_up(0, false);
    tp_set_up(1, false);
    cr_expect_not(pool_is_saturated(tp.p, mq_now_ms()),
                  "nothing up: nothing to wait for");
}

Test(pool, while_rebalancing_new_sessions_go_to_the_emptiest)
{
    size_t i;

    tp_init(tp_three);
    for (i = 0; i < 30; i++) {
        tp_pick(NULL);      /* 10 each, kept */
    }
    atomic_fetch_add(&tp.b[1]->nactive, 5);
    atomic_fetch_sub(&tp.b[2]->nactive, 7);
    atomic_store(&tp.p->rebalancing, true);
    for (i = 0; i < 7; i++) {
        cr_expect_eq(tp_pick(NULL), 2, "pick %zu", i);
    }
    /* 10/15/10 now: round-robin would give b its turn; not while
     * rebalancing. */
    cr_expect_neq(tp_pick(NULL), 1);
    cr_expect_neq(tp_pick(NULL), 1);
}

/* The rebalancer moves a client only to its key's home: while the home is
 * down the key has a stand-in, which is not a home. */
Test(pool, key_owner_says_whether_it_is_the_keys_home)
{
    struct backend *owner;
    uint64_t key;
    unsigned stand_ins = 0;
    bool home;

    tp_init("balance = source\n"
            "backend = a 127.0.0.1:7101\n"
            "backend = b 127.0.0.1:7102\n"
            "backend = c 127.0.0.1:7103\n");
    for (key = 1; key < 200; key++) {
        home = false;
        owner = pool_key_owner(tp.p, key * 7919, mq_now_ms(), &home);
        cr_assert_not_null(owner);
        cr_assert(home, "key %llu: every backend is up, every owner is home",
                  (unsigned long long)key);
    }
    tp_set_up(0, false);
    for (key = 1; key < 200; key++) {
        struct backend *was;

        tp_set_up(0, true);
        was = pool_key_owner(tp.p, key * 7919, mq_now_ms(), NULL);
        tp_set_up(0, false);
        home = true;
        owner = pool_key_owner(tp.p, key * 7919, mq_now_ms(), &home);
        cr_assert_not_null(owner);
        cr_assert_neq(owner, tp.b[0]);
        /* the keys of a stay theirs: elsewhere they are only stood in for */
        cr_assert_eq(home, was != tp.b[0], "key %llu", (unsigned long long)key);
        stand_ins += !home;
    }
    cr_assert_gt(stand_ins, 0, "some key's home is a");
}

Test(pool, key_owner_is_where_the_key_maps_full_or_not)
{
    struct backend *owner;
    int picked;
    uint64_t key;

    tp_init("balance = source\n"
            "backend = a 127.0.0.1:7101 max_conns=1\n"
            "backend = b 127.0.0.1:7102 max_conns=1\n"
            "backend = c 127.0.0.1:7103 max_conns=1\n");
    for (key = 1; key < 50; key++) {
        static const struct pool_tried none;
        struct backend *b;

        owner = pool_key_owner(tp.p, key * 7919, mq_now_ms(), NULL);
        cr_assert_not_null(owner);
        b = pool_pick(tp.p, &none, key * 7919, mq_now_ms());
        picked = b == NULL ? -1 : (int)b->index;
        cr_assert_eq(picked, (int)owner->index, "key %llu",
                     (unsigned long long)key);
        /* The owner is full now; it still owns the key. */
        cr_assert_eq(pool_key_owner(tp.p, key * 7919, mq_now_ms(), NULL), owner);
        backend_session_end(b);
    }
    tp_set_up(0, false);
    for (key = 1; key < 50; key++) {
        cr_assert_neq(pool_key_owner(tp.p, key * 7919, mq_now_ms(), NULL), tp.b[0]);
    }
}
