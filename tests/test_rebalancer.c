/*
 * test_rebalancer.c: the paced rebalance controller over a real pool and
 * real backends, with the workers' part played by the test: it arms on a
 * change, hands out closes to the backends above their share at the rate,
 * takes back what was not used, and stops within the tolerance.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/config.h"
#include "mqlb/pool.h"
#include "mqlb/rebalancer.h"

struct rb_fx {
    struct config      *cf;
    struct backend     *b[4];
    size_t              n;
    struct pool        *p;
    _Atomic uint64_t    nrejected[REJECT_NREASONS];
    struct rebalancer   r;
};

static struct rb_fx rb;

static void
rb_init(const char *lines)
{
    struct config_errors errs = { 0 };
    char text[1024];
    size_t i;

    memset(&rb, 0, sizeof(rb));
    snprintf(text, sizeof(text), "[pool p]\nlisten = 127.0.0.1:7001\n%s",
             lines);
    rb.cf = config_load_string(text, "rb.ini", &errs);
    cr_assert_not_null(rb.cf, "config: %s",
                       errs.nmsgs > 0 ? errs.msgs[0] : "?");
    config_errors_deinit(&errs);
    rb.n = rb.cf->pools[0].nbackends;
    for (i = 0; i < rb.n; i++) {
        rb.b[i] = backend_create(&rb.cf->pools[0].backends[i], "p");
    }
    rb.p = pool_create(&rb.cf->pools[0], rb.b, rb.nrejected);
    cr_assert_not_null(rb.p);
    rebalancer_init(&rb.r);
}

static void
rb_fini(void)
{
    size_t i;

    if (rb.p == NULL) {
        return;
    }
    pool_release(rb.p);
    for (i = 0; i < rb.n; i++) {
        backend_release(rb.b[i]);
    }
    config_destroy(rb.cf);
}

TestSuite(rebalancer, .fini = rb_fini);

static const char rb_paced[] =
    "rebalance = paced\nrebalance_rate = 20/s\nrebalance_min_age = 0s\n"
    "backend = a 127.0.0.1:7101\nbackend = b 127.0.0.1:7102\n"
    "backend = c 127.0.0.1:7103\n";

static void
rb_set(int64_t a, int64_t b, int64_t c)
{
    atomic_store(&rb.b[0]->nactive, a);
    atomic_store(&rb.b[1]->nactive, b);
    atomic_store(&rb.b[2]->nactive, c);
}

/* The workers: close what was handed out (up to <max> in all), each
 * client reconnecting to the emptiest backend. Returns closes made. */
static unsigned
rb_workers(unsigned max)
{
    unsigned made = 0;
    size_t i, j, dst;

    for (i = 0; i < rb.n; i++) {
        while (made < max && atomic_load(&rb.b[i]->shed) > 0) {
            atomic_fetch_sub(&rb.b[i]->shed, 1);
            atomic_fetch_add(rb.p->nrebalanced, 1);
            atomic_fetch_sub(&rb.b[i]->nactive, 1);
            for (dst = 0, j = 1; j < rb.n; j++) {
                if (atomic_load(&rb.b[j]->nactive) <
                    atomic_load(&rb.b[dst]->nactive)) {
                    dst = j;
                }
            }
            atomic_fetch_add(&rb.b[dst]->nactive, 1);
            made++;
        }
    }
    return made;
}

Test(rebalancer, a_returning_backend_gets_its_share_at_the_rate)
{
    unsigned hist[400] = { 0 }, tick, i, j, sum;
    uint64_t now = 1000000;
    bool armed_seen = false;

    rb_init(rb_paced);
    rb_set(150, 150, 0);
    atomic_fetch_add(&rb.b[2]->version, 1);     /* c came back */
    for (tick = 0; tick < 400; tick++, now += REBALANCE_TICK_MS) {
        rebalancer_tick(&rb.r, rb.p, now);
        if (!rb.r.armed) {
            break;
        }
        armed_seen = true;
        cr_assert(atomic_load(&rb.p->rebalancing));
        cr_assert_eq(atomic_load(&rb.b[2]->shed), 0, "c is under share");
        hist[tick] = rb_workers(1000);
    }
    cr_assert(armed_seen);
    cr_assert_not(atomic_load(&rb.p->rebalancing));
    for (i = 0; i < 3; i++) {
        cr_assert_geq(atomic_load(&rb.b[i]->nactive), 90);
        cr_assert_leq(atomic_load(&rb.b[i]->nactive), 110);
    }
    cr_assert_leq(tick * REBALANCE_TICK_MS, (300 / 20 + 10) * 1000);
    for (i = 0; i + REBALANCE_WINDOW_TICKS <= tick; i++) {
        for (j = i, sum = 0; j < i + REBALANCE_WINDOW_TICKS; j++) {
            sum += hist[j];
        }
        cr_assert_leq(sum, 20, "ticks %u..: %u closes", i, sum);
    }
}

Test(rebalancer, closes_not_made_come_back_and_do_not_use_the_rate)
{
    uint64_t now = 5000000;
    unsigned tick;

    rb_init(rb_paced);
    rb_set(150, 150, 0);
    atomic_fetch_add(&rb.b[2]->version, 1);
    /* Workers that find nothing to close (all too young, say). */
    for (tick = 0; tick < 30; tick++, now += REBALANCE_TICK_MS) {
        cr_assert(rebalancer_tick(&rb.r, rb.p, now), "tick %u", tick);
    }
    /* The window is still empty: a full tick's worth is handed out. */
    cr_assert_eq(atomic_load(&rb.b[0]->shed) + atomic_load(&rb.b[1]->shed),
                 2);
    rebalancer_stop(&rb.r, rb.p);
    cr_assert_eq(atomic_load(&rb.b[0]->shed), 0);
    cr_assert_eq(atomic_load(&rb.b[1]->shed), 0);
}

Test(rebalancer, gives_up_when_nothing_moves_past_min_age)
{
    uint64_t now = 5000000, start = now;

    rb_init("rebalance = paced\nrebalance_min_age = 2s\n"
            "backend = a 127.0.0.1:7101\nbackend = b 127.0.0.1:7102\n");
    atomic_store(&rb.b[0]->nactive, 10);
    atomic_fetch_add(&rb.b[1]->version, 1);
    while (rebalancer_tick(&rb.r, rb.p, now) || rb.r.armed) {
        now += REBALANCE_TICK_MS;
        cr_assert_lt(now - start, 60000);
    }
    cr_assert_geq(now - start, 2000 + REBALANCER_PATIENCE_MS);
    cr_assert_leq(now - start, 2000 + REBALANCER_PATIENCE_MS + 200);
    cr_assert_not(atomic_load(&rb.p->rebalancing));
}

Test(rebalancer, off_and_balanced_pools_hand_out_nothing)
{
    rb_init("backend = a 127.0.0.1:7101\nbackend = b 127.0.0.1:7102\n");
    atomic_store(&rb.b[0]->nactive, 100);
    atomic_fetch_add(&rb.b[1]->version, 1);
    cr_assert_not(rebalancer_tick(&rb.r, rb.p, 1000));
    cr_assert_eq(atomic_load(&rb.b[0]->shed), 0);
    rb_fini();

    rb_init(rb_paced);
    rb_set(100, 105, 95);
    atomic_fetch_add(&rb.b[2]->version, 1);
    cr_assert_not(rebalancer_tick(&rb.r, rb.p, 1000));
    cr_assert_not(rb.r.armed, "within 10%%: nothing to do");
    (void)0;
}
