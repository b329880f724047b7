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

#define PF_MAX  8       /* backends in a test pool */

/* A pool over real backends, its config and the references we hold. */
struct pool_fx {
    struct config      *cf;             /* owns the config_pool */
    struct backend     *b[PF_MAX];      /* one reference each */
    size_t              n;
    struct pool        *p;
    _Atomic uint64_t    nrejected;
};

static struct pool_fx pf;

/* A pool "p" whose [pool] section ends with <lines> (the backends). */
static void
pf_init(const char *lines)
{
    struct config_errors errs = { 0 };
    char text[2048];
    size_t i;

    memset(&pf, 0, sizeof(pf));
    snprintf(text, sizeof(text), "[pool p]\nlisten = 127.0.0.1:7001\n%s",
             lines);
    pf.cf = config_load_string(text, "pool.ini", &errs);
    cr_assert_not_null(pf.cf, "config: %s",
                       errs.nmsgs > 0 ? errs.msgs[0] : "?");
    config_errors_deinit(&errs);
    pf.n = pf.cf->pools[0].nbackends;
    cr_assert_leq(pf.n, PF_MAX);
    for (i = 0; i < pf.n; i++) {
        pf.b[i] = backend_create(&pf.cf->pools[0].backends[i], "p");
        cr_assert_not_null(pf.b[i]);
    }
    pf.p = pool_create(&pf.cf->pools[0], pf.b, &pf.nrejected);
    cr_assert_not_null(pf.p);
}

static void
pf_fini(void)
{
    size_t i;

    pool_release(pf.p);
    for (i = 0; i < pf.n; i++) {
        backend_release(pf.b[i]);
    }
    config_destroy(pf.cf);
}

TestSuite(pool, .fini = pf_fini);

/* Health verdict by hand, as the checker would leave it. */
static void
pf_set_up(size_t i, bool up)
{
    atomic_store(&pf.b[i]->up, up);
    atomic_fetch_add(&pf.b[i]->version, 1);
}

/* One pick with <tried> (NULL: none); the backend's index or -1. */
static int
pf_pick(const struct pool_tried *tried)
{
    static const struct pool_tried none;
    struct backend *b;

    b = pool_pick(pf.p, tried != NULL ? tried : &none, 0, mq_now_ms());
    return b == NULL ? -1 : (int)b->index;
}

/* <n> picks, each session ended at once; counts per backend index. */
static void
pf_count(size_t n, size_t count[PF_MAX])
{
    size_t i;
    int idx;

    memset(count, 0, PF_MAX * sizeof(count[0]));
    for (i = 0; i < n; i++) {
        idx = pf_pick(NULL);
        cr_assert_geq(idx, 0, "pick %zu found nothing", i);
        count[idx]++;
        backend_session_end(pf.b[idx]);
    }
}

static const char pf_three[] =
    "backend = a 127.0.0.1:7101\n"
    "backend = b 127.0.0.1:7102\n"
    "backend = c 127.0.0.1:7103\n";

Test(pool, weights_1_1_1_split_300_picks_100_each)
{
    size_t count[PF_MAX];

    pf_init(pf_three);
    pf_count(300, count);
    cr_expect_eq(count[0], 100);
    cr_expect_eq(count[1], 100);
    cr_expect_eq(count[2], 100);
}

Test(pool, weights_3_1_1_split_500_picks_300_100_100)
{
    size_t count[PF_MAX];

    pf_init("backend = a 127.0.0.1:7101 weight=3\n"
            "backend = b 127.0.0.1:7102 weight=1\n"
            "backend = c 127.0.0.1:7103 weight=1\n");
    pf_count(500, count);
    cr_expect_eq(count[0], 300);
    cr_expect_eq(count[1], 100);
    cr_expect_eq(count[2], 100);
}

Test(pool, pick_raises_nactive_and_ntotal)
{
    int idx;

    pf_init(pf_three);
    idx = pf_pick(NULL);
    cr_assert_eq(idx, 0);
    cr_expect_eq(atomic_load(&pf.b[0]->nactive), 1);
    cr_expect_eq(atomic_load(&pf.b[0]->ntotal), 1);
    cr_expect_eq(atomic_load(&pf.b[1]->nactive), 0);
    cr_expect_eq(pf_pick(NULL), 1);
    cr_expect_eq(pf_pick(NULL), 2);
    cr_expect_eq(pf_pick(NULL), 0);
    cr_expect_eq(atomic_load(&pf.b[0]->nactive), 2);
    backend_session_end(pf.b[0]);
    backend_session_end(pf.b[0]);
    backend_session_end(pf.b[1]);
    backend_session_end(pf.b[2]);
    cr_expect_eq(atomic_load(&pf.b[0]->nactive), 0);
    cr_expect_eq(atomic_load(&pf.b[0]->ntotal), 2);
}

Test(pool, down_backend_is_skipped)
{
    size_t count[PF_MAX];

    pf_init(pf_three);
    pf_set_up(1, false);
    pf_count(100, count);
    cr_expect_eq(count[1], 0);
    cr_expect_eq(count[0], 50);
    cr_expect_eq(count[2], 50);
    cr_expect(pool_has_up_backend(pf.p));

    pf_set_up(1, true);
    pf_count(99, count);
    cr_expect_eq(count[0], 33);
    cr_expect_eq(count[1], 33);
    cr_expect_eq(count[2], 33);
}

Test(pool, weight_0_backend_is_skipped)
{
    size_t count[PF_MAX];

    pf_init("backend = a 127.0.0.1:7101\n"
            "backend = b 127.0.0.1:7102 weight=0\n"
            "backend = c 127.0.0.1:7103\n");
    pf_count(100, count);
    cr_expect_eq(count[1], 0);
    cr_expect_eq(count[0] + count[2], 100);

    backend_set_weight(pf.b[0], 0);
    pf_count(10, count);
    cr_expect_eq(count[2], 10, "weight set to 0 by the admin port");
}

Test(pool, drained_and_disabled_backends_are_skipped)
{
    size_t count[PF_MAX];

    pf_init(pf_three);
    backend_set_admin(pf.b[0], BACKEND_ADMIN_DRAIN);
    backend_set_admin(pf.b[2], BACKEND_ADMIN_DISABLE);
    pf_count(30, count);
    cr_expect_eq(count[0], 0);
    cr_expect_eq(count[1], 30);
    cr_expect_eq(count[2], 0);

    backend_set_admin(pf.b[0], BACKEND_ADMIN_NONE);
    backend_set_admin(pf.b[2], BACKEND_ADMIN_NONE);
    pf_count(30, count);
    cr_expect_eq(count[0], 10);
    cr_expect_eq(count[1], 10);
    cr_expect_eq(count[2], 10);
}

Test(pool, protocol_drained_backend_is_skipped)
{
    size_t count[PF_MAX];

    pf_init(pf_three);
    backend_set_proto_drain(pf.b[1], true);
    pf_count(20, count);
    cr_expect_eq(count[1], 0);
    cr_expect_eq(count[0] + count[2], 20);
}

Test(pool, full_backend_is_skipped_until_a_session_ends)
{
    size_t i, held[PF_MAX] = { 0 };
    int idx;

    pf_init("backend = a 127.0.0.1:7101 max_conns=2\n"
            "backend = b 127.0.0.1:7102\n");
    /* Hold every session: a fills up after two, then only b is left. */
    for (i = 0; i < 10; i++) {
        idx = pf_pick(NULL);
        cr_assert_geq(idx, 0);
        held[idx]++;
    }
    cr_expect_eq(held[0], 2);
    cr_expect_eq(held[1], 8);
    cr_expect_eq(atomic_load(&pf.b[0]->nactive), 2);

    backend_session_end(pf.b[0]);
    held[0]--;
    for (i = 0; i < 3; i++) {
        idx = pf_pick(NULL);
        cr_assert_geq(idx, 0);
        held[idx]++;
        if (idx == 0) {
            break;
        }
    }
    cr_expect_eq(idx, 0, "a takes sessions again once one ended");
    for (i = 0; i < 4; i++) {
        cr_expect_eq(pf_pick(NULL), 1, "a is full again");
        held[1]++;
    }
    cr_expect_eq(atomic_load(&pf.b[0]->nactive), 2);
    for (i = 0; i < 2; i++) {
        while (held[i] > 0) {
            backend_session_end(pf.b[i]);
            held[i]--;
        }
    }
}

Test(pool, max_conns_per_backend_applies_to_every_backend)
{
    int idx;
    size_t i;

    pf_init("max_conns_per_backend = 1\n"
            "backend = a 127.0.0.1:7101\n"
            "backend = b 127.0.0.1:7102 max_conns=2\n");
    for (i = 0; i < 3; i++) {
        idx = pf_pick(NULL);
        cr_expect_geq(idx, 0, "pick %zu", i);
    }
    cr_expect_eq(atomic_load(&pf.b[0]->nactive), 1);
    cr_expect_eq(atomic_load(&pf.b[1]->nactive), 2);
    cr_expect_eq(pf_pick(NULL), -1, "both are full");
    backend_session_end(pf.b[0]);
    backend_session_end(pf.b[1]);
    backend_session_end(pf.b[1]);
}

Test(pool, tried_backends_are_skipped)
{
    struct pool_tried tried;
    int idx;
    size_t i;

    pf_init(pf_three);
    memset(&tried, 0, sizeof(tried));
    pool_tried_set(&tried, 0);
    pool_tried_set(&tried, 2);
    for (i = 0; i < 10; i++) {
        idx = pf_pick(&tried);
        cr_expect_eq(idx, 1);
        if (idx >= 0) {
            backend_session_end(pf.b[idx]);
        }
    }
    pool_tried_set(&tried, 1);
    cr_expect_eq(pf_pick(&tried), -1, "every backend was tried");
}

static const char pf_backup[] =
    "backend = a 127.0.0.1:7101\n"
    "backend = b 127.0.0.1:7102\n"
    "backend = s 127.0.0.1:7103 backup\n"
    "backend = t 127.0.0.1:7104 backup\n";

Test(pool, backup_is_used_only_when_no_primary_is_up)
{
    size_t count[PF_MAX];

    pf_init(pf_backup);
    pf_count(40, count);
    cr_expect_eq(count[0], 20);
    cr_expect_eq(count[1], 20);
    cr_expect_eq(count[2] + count[3], 0, "backups idle while a primary is up");

    pf_set_up(0, false);
    pf_count(40, count);
    cr_expect_eq(count[1], 40);
    cr_expect_eq(count[2] + count[3], 0, "one primary up is enough");

    pf_set_up(1, false);
    pf_count(40, count);
    cr_expect_eq(count[0] + count[1], 0);
    cr_expect_eq(count[2], 20, "backups share the load between them");
    cr_expect_eq(count[3], 20);

    pf_set_up(1, true);
    pf_count(40, count);
    cr_expect_eq(count[1], 40, "a primary back up takes over again");
}

Test(pool, drained_primaries_hand_over_to_backups)
{
    size_t count[PF_MAX];

    pf_init(pf_backup);
    backend_set_admin(pf.b[0], BACKEND_ADMIN_DRAIN);
    backend_set_admin(pf.b[1], BACKEND_ADMIN_DISABLE);
    pf_count(20, count);
    cr_expect_eq(count[0] + count[1], 0);
    cr_expect_eq(count[2] + count[3], 20);
}

Test(pool, backups_are_tried_when_every_primary_was_tried)
{
    struct pool_tried tried;
    int first, second;

    pf_init(pf_backup);
    memset(&tried, 0, sizeof(tried));
    pool_tried_set(&tried, 0);
    pool_tried_set(&tried, 1);
    first = pf_pick(&tried);
    cr_assert(first == 2 || first == 3, "got %d", first);
    backend_session_end(pf.b[first]);
    pool_tried_set(&tried, (unsigned)first);
    second = pf_pick(&tried);
    cr_assert_eq(second, 5 - first, "then the other backup, got %d", second);
    backend_session_end(pf.b[second]);
    pool_tried_set(&tried, (unsigned)second);
    cr_expect_eq(pf_pick(&tried), -1, "everything was tried");
}

Test(pool, backups_are_tried_when_every_primary_is_full)
{
    int i1, i2, i3;

    pf_init("backend = a 127.0.0.1:7101 max_conns=1\n"
            "backend = s 127.0.0.1:7103 backup max_conns=1\n");
    i1 = pf_pick(NULL);
    i2 = pf_pick(NULL);
    i3 = pf_pick(NULL);
    cr_expect_eq(i1, 0);
    cr_expect_eq(i2, 1, "a is full: the backup takes the client");
    cr_expect_eq(i3, -1, "both full");
    backend_session_end(pf.b[0]);
    backend_session_end(pf.b[1]);
}

Test(pool, nothing_eligible_gives_null)
{
    size_t i;

    pf_init(pf_three);
    for (i = 0; i < 3; i++) {
        pf_set_up(i, false);
    }
    cr_expect_eq(pf_pick(NULL), -1);
    cr_expect_not(pool_has_up_backend(pf.p));
    for (i = 0; i < 3; i++) {
        cr_expect_eq(atomic_load(&pf.b[i]->nactive), 0);
        cr_expect_eq(atomic_load(&pf.b[i]->ntotal), 0);
    }
    pf_set_up(2, true);
    cr_expect_eq(pf_pick(NULL), 2);
    backend_session_end(pf.b[2]);
}

Test(pool, all_down_with_down_backups_gives_null)
{
    size_t i;

    pf_init(pf_backup);
    for (i = 0; i < 4; i++) {
        pf_set_up(i, false);
    }
    cr_expect_eq(pf_pick(NULL), -1);
}

Test(pool, find_backend_by_name)
{
    pf_init(pf_three);
    cr_expect_eq(pool_find_backend(pf.p, "b"), pf.b[1]);
    cr_expect_eq(pf.b[1]->index, 1);
    cr_expect_null(pool_find_backend(pf.p, "z"));
}

Test(pool, pool_holds_its_own_backend_references)
{
    pf_init(pf_three);
    cr_expect_eq(atomic_load(&pf.b[0]->refcnt), 2, "ours and the pool's");
    pool_acquire(pf.p);
    pool_release(pf.p);
    cr_expect_eq(atomic_load(&pf.p->refcnt), 1);
}
