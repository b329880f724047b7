/*
 * test_pool_members.c: backends joining and leaving a running pool
 * (discovery, the runtime API), and Maglev rebuilt off the workers'
 * path: a pick that sees a change asks the owner once and goes on with
 * the table it has; the owner's rebuild swaps the new one in.
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

struct pm {
    struct config      *cf;
    struct pool        *p;
    _Atomic uint64_t    nrejected;
    int                 stale_calls;
};

static struct pm pm;

static void
pm_init(const char *balance, size_t nbackends)
{
    struct config_errors errs = { 0 };
    struct backend *bs[8];
    char text[2048];
    size_t i, n;

    memset(&pm, 0, sizeof(pm));
    n = (size_t)snprintf(text, sizeof(text), "[pool p]\nlisten = "
                         "127.0.0.1:7001\nbalance = %s\n", balance);
    for (i = 0; i < nbackends; i++) {
        n += (size_t)snprintf(text + n, sizeof(text) - n,
                              "backend = b%zu 127.0.0.1:%zu\n", i, 7100 + i);
    }
    if (nbackends == 0) {
        snprintf(text + n, sizeof(text) - n, "discover = dns x.test:1\n");
    }
    pm.cf = config_load_string(text, "pm.ini", &errs);
    cr_assert_not_null(pm.cf, "%s", errs.nmsgs ? errs.msgs[0] : "?");
    config_errors_deinit(&errs);
    for (i = 0; i < nbackends; i++) {
        bs[i] = backend_create(&pm.cf->pools[0].backends[i], "p");
    }
    pm.p = pool_create(&pm.cf->pools[0], bs, &pm.nrejected);
    cr_assert_not_null(pm.p);
    for (i = 0; i < nbackends; i++) {
        backend_release(bs[i]);
    }
}

static void
pm_fini(void)
{
    pool_release(pm.p);
    config_destroy(pm.cf);
}

TestSuite(pool_members, .fini = pm_fini);

/* A backend made at runtime, as the runtime API or discovery makes one. */
static struct backend *
pm_backend(const char *name, unsigned port)
{
    struct config_backend cb;
    char text[32];

    memset(&cb, 0, sizeof(cb));
    snprintf(cb.name, sizeof(cb.name), "%s", name);
    snprintf(text, sizeof(text), "127.0.0.1:%u", port);
    cr_assert_eq(config_parse_addr(text, &cb.addr), MQ_OK);
    cb.weight = 1;
    return backend_create(&cb, "p");
}

/* Names chosen by <n> picks, each session ended at once. */
static void
pm_picks(size_t n, uint64_t key0, const char **out)
{
    struct pool_tried none;
    struct backend *b;
    size_t i;

    memset(&none, 0, sizeof(none));
    for (i = 0; i < n; i++) {
        b = pool_pick(pm.p, &none, key0 + i * 0x9e3779b97f4a7c15ULL, 0);
        out[i] = b != NULL ? b->name : NULL;
        if (b != NULL) {
            backend_session_end(b);
        }
    }
}

static size_t
pm_count(const char **names, size_t n, const char *name)
{
    size_t i, c = 0;

    for (i = 0; i < n; i++) {
        c += names[i] != NULL && strcmp(names[i], name) == 0;
    }
    return c;
}

Test(pool_members, empty_pool_fills_and_empties)
{
    const char *names[8];
    struct backend *b;

    pm_init("roundrobin", 0);
    pm_picks(1, 0, names);
    cr_assert_null(names[0], "an empty pool picks nothing");
    b = pm_backend("r1", 7201);
    cr_assert_eq(pool_add_backend(pm.p, b), MQ_OK);
    cr_assert_eq(pm.p->nbackends, 1);
    cr_assert_eq(pool_find_backend(pm.p, "r1"), b);
    pm_picks(4, 0, names);
    cr_assert_eq(pm_count(names, 4, "r1"), 4);
    cr_assert_eq(pool_remove_backend(pm.p, b, false), MQ_OK);
    cr_assert_eq(pool_remove_backend(pm.p, b, false), MQ_ERR,
                 "not a member now");
    cr_assert_eq(pm.p->nbackends, 0);
    pm_picks(1, 0, names);
    cr_assert_null(names[0]);
    backend_release(b);
}

Test(pool_members, roundrobin_takes_in_a_newcomer_and_lets_a_leaver_go)
{
    const char *names[30];
    struct backend *b;

    pm_init("roundrobin", 2);
    b = pm_backend("new", 7300);
    cr_assert_eq(pool_add_backend(pm.p, b), MQ_OK);
    pm_picks(30, 0, names);
    cr_assert_eq(pm_count(names, 30, "b0"), 10);
    cr_assert_eq(pm_count(names, 30, "b1"), 10);
    cr_assert_eq(pm_count(names, 30, "new"), 10);
    cr_assert_eq(pool_remove_backend(pm.p, pool_find_backend(pm.p, "b0"), false),
                 MQ_OK);
    pm_picks(30, 0, names);
    cr_assert_eq(pm_count(names, 30, "b0"), 0);
    cr_assert_eq(pm_count(names, 30, "b1"), 15);
    cr_assert_eq(pm_count(names, 30, "new"), 15);
    /* positions stay dense: the tried map still fits */
    cr_assert_eq(pool_backend_index(pm.p, b), 1);
    cr_assert_eq(pool_backend_index(pm.p, NULL), CONFIG_MAX_BACKENDS);
    backend_release(b);
}

Test(pool_members, full_pool_refuses_another)
{
    struct backend *b[CONFIG_MAX_BACKENDS + 1];
    char name[16];
    size_t i;

    pm_init("leastconn", 0);
    for (i = 0; i <= CONFIG_MAX_BACKENDS; i++) {
        snprintf(name, sizeof(name), "n%zu", i);
        b[i] = pm_backend(name, 10000 + (unsigned)i);
        if (i < CONFIG_MAX_BACKENDS) {
            cr_assert_eq(pool_add_backend(pm.p, b[i]), MQ_OK);
        } else {
            cr_assert_eq(pool_add_backend(pm.p, b[i]), MQ_ERR);
        }
    }
    for (i = 0; i <= CONFIG_MAX_BACKENDS; i++) {
        backend_release(b[i]);
    }
}

static void
pm_stale_cb(void *ctx, struct pool *p)
{
    (void)p;
    ((struct pm *)ctx)->stale_calls++;
}

Test(pool_members, maglev_rebuilds_off_the_pick_path)
{
    struct backend *b0;
    const char *names[400];
    size_t before;

    pm_init("source", 3);
    pm.p->on_stale = pm_stale_cb;
    pm.p->on_stale_ctx = &pm;
    /* the pool is made with its table: nothing to ask */
    pm_picks(400, 7, names);
    cr_assert_eq(pm.stale_calls, 0);
    before = pm_count(names, 400, "b0");
    /* a change of weight: asked once, picks go on meanwhile */
    backend_set_weight(pool_find_backend(pm.p, "b1"), 2);
    pm_picks(1, 1, names);
    cr_assert_not_null(names[0]);
    cr_assert_eq(pm.stale_calls, 1);
    pm_picks(10, 1, names);
    cr_assert_eq(pm.stale_calls, 1, "asked once per change");
    backend_set_weight(pool_find_backend(pm.p, "b1"), 1);
    pool_rebuild(pm.p);
    pm_picks(400, 7, names);
    cr_assert_eq(pm.stale_calls, 1, "nothing changed since the rebuild");
    cr_assert_eq(pm_count(names, 400, "b0"), before, "same table again");
    cr_assert_gt(before, 80);

    /* b0 goes down: picks avoid it at once, the table waits for us */
    b0 = pool_find_backend(pm.p, "b0");
    atomic_store(&b0->up, false);
    atomic_fetch_add(&b0->version, 1);
    pm_picks(400, 7, names);
    cr_assert_eq(pm_count(names, 400, "b0"), 0);
    cr_assert_eq(pm.stale_calls, 2);
    pool_rebuild(pm.p);
    pm_picks(400, 7, names);
    cr_assert_eq(pm_count(names, 400, "b0"), 0);
    cr_assert_eq(pm.stale_calls, 2);

    /* back up: its own keys come back at once, before the rebuild */
    atomic_store(&b0->up, true);
    atomic_fetch_add(&b0->version, 1);
    pm_picks(400, 7, names);
    cr_assert_eq(pm.stale_calls, 3);
    cr_assert_eq(pm_count(names, 400, "b0"), before, "stale table");
    pool_rebuild(pm.p);
    pm_picks(400, 7, names);
    cr_assert_eq(pm_count(names, 400, "b0"), before);
}

/*
 * What the main loop runs before every wait: nothing while nothing
 * changed (it used to walk every backend of every Maglev pool on every
 * iteration, ~40,000 instructions a check at 1,000 backends), a rebuild
 * after a check moved a backend or the members changed.
 */
Test(pool_members, rebuild_changed_looks_only_after_a_change)
{
    struct pool *pools[1];
    const char *names[400];
    struct backend *b0, *b;
    uint64_t seen = 0;
    size_t before;

    pm_init("source", 3);
    pm.p->on_stale = pm_stale_cb;
    pm.p->on_stale_ctx = &pm;
    pools[0] = pm.p;
    pool_rebuild_changed(pools, 1, &seen);
    cr_assert_eq(pool_rebuild_changed(pools, 1, &seen), 0,
                 "nothing changed: no pool looked at");
    cr_assert_eq(pool_rebuild_changed(pools, 1, &seen), 0);
    pm_picks(400, 7, names);
    before = pm_count(names, 400, "b0");
    cr_assert_gt(before, 80);

    /* a check takes b0 down: one look, and the table has moved */
    b0 = pool_find_backend(pm.p, "b0");
    cr_assert(backend_check_done(b0, false, "refused", 1, 1, 1));
    cr_assert_eq(pool_rebuild_changed(pools, 1, &seen), 1);
    cr_assert_eq(pool_rebuild_changed(pools, 1, &seen), 0);
    pm_picks(400, 7, names);
    cr_assert_eq(pm_count(names, 400, "b0"), 0);
    cr_assert_eq(pm.stale_calls, 0, "the table was fresh: no pick asked");

    /* a weight, then a newcomer */
    backend_set_weight(pool_find_backend(pm.p, "b1"), 3);
    cr_assert_eq(pool_rebuild_changed(pools, 1, &seen), 1);
    cr_assert_eq(pool_rebuild_changed(pools, 1, &seen), 0);
    b = pm_backend("new", 7300);
    cr_assert_eq(pool_add_backend(pm.p, b), MQ_OK);
    backend_release(b);
    cr_assert_eq(pool_rebuild_changed(pools, 1, &seen), 1);
    cr_assert_eq(pool_rebuild_changed(pools, 1, &seen), 0);
    pm_picks(400, 7, names);
    cr_assert_gt(pm_count(names, 400, "new"), 0);
    cr_assert_eq(pm.stale_calls, 0);
}
