/*
 * test_waitq.c: the wait queue: arrival order, the limit, the most ever
 * waiting, leaving before and after being served, and dispatch that
 * serves the oldest first and stops at the first it cannot serve.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "mqlb/common.h"
#include "mqlb/waitq.h"

struct wq_client {
    struct waitq_entry  e;
    int                 id;
    int                 woken;
};

/* Stand-ins for backends: only their addresses matter. */
static char wq_backends[8];
static int wq_order[64];
static unsigned wq_norder;

static void
wq_wake(void *ctx)
{
    struct wq_client *c = ctx;

    c->woken++;
    wq_order[wq_norder++] = c->id;
}

/* Serve while <*slots> lasts. */
static struct backend *
wq_pick(void *arg, struct waitq_entry *e)
{
    unsigned *slots = arg;

    (void)e;
    if (*slots == 0) {
        return NULL;
    }
    (*slots)--;
    return (struct backend *)&wq_backends[*slots % 8];
}

/* A client as its owner's calloc leaves it, woken through wq_wake. */
static void
wq_client_init(struct wq_client *c, int id)
{
    memset(c, 0, sizeof(*c));
    c->id = id;
    c->e.wake = wq_wake;
    c->e.wake_ctx = c;
}

static void
wq_fill(struct waitq *q, struct wq_client *c, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        wq_client_init(&c[i], i);
        cr_assert_eq(waitq_push(q, &c[i].e, 20, 1000 + (uint64_t)i), MQ_OK);
    }
}

Test(waitq, served_in_arrival_order_as_slots_free)
{
    struct waitq q;
    struct wq_client c[10];
    unsigned slots = 3, n, max;
    int i;

    wq_norder = 0;
    waitq_init(&q);
    wq_fill(&q, c, 10);
    cr_assert_eq(waitq_dispatch(&q, wq_pick, &slots), 3);
    for (i = 0; i < 3; i++) {
        cr_assert_eq(wq_order[i], i);
        cr_assert_not_null(waitq_take(&q, &c[i].e));
        cr_assert_null(waitq_take(&q, &c[i].e), "taken once");
    }
    cr_assert_null(waitq_take(&q, &c[3].e), "still waiting");
    slots = 1;
    cr_assert_eq(waitq_dispatch(&q, wq_pick, &slots), 1);
    cr_assert_eq(wq_order[3], 3);
    waitq_counts(&q, &n, &max);
    cr_assert_eq(n, 6);
    cr_assert_eq(max, 10);
    cr_assert_eq(c[9].e.since_ms, 1009);
    waitq_deinit(&q);
}

Test(waitq, the_limit_refuses_more)
{
    struct waitq q;
    struct wq_client c[21];

    waitq_init(&q);
    wq_fill(&q, c, 20);
    wq_client_init(&c[20], 20);
    cr_assert_eq(waitq_push(&q, &c[20].e, 20, 5), MQ_ERR);
    cr_assert_not(c[20].e.queued);
    waitq_deinit(&q);
}

Test(waitq, leaving_keeps_the_order_of_the_rest)
{
    struct waitq q;
    struct wq_client c[5];
    unsigned slots = 10, n, max;

    wq_norder = 0;
    waitq_init(&q);
    wq_fill(&q, c, 5);
    cr_assert_null(waitq_leave(&q, &c[0].e));
    cr_assert_null(waitq_leave(&q, &c[2].e));
    cr_assert_null(waitq_leave(&q, &c[4].e));
    cr_assert_null(waitq_leave(&q, &c[4].e), "a second leave is harmless");
    cr_assert_eq(waitq_dispatch(&q, wq_pick, &slots), 2);
    cr_assert_eq(wq_order[0], 1);
    cr_assert_eq(wq_order[1], 3);
    waitq_counts(&q, &n, &max);
    cr_assert_eq(n, 0);
    cr_assert_eq(max, 5);
    cr_assert_null(q.head);
    cr_assert_null(q.tail);
    waitq_deinit(&q);
}

Test(waitq, leaving_after_being_served_gives_the_backend_back)
{
    struct waitq q;
    struct wq_client c[2];
    unsigned slots = 1;

    waitq_init(&q);
    wq_fill(&q, c, 2);
    cr_assert_eq(waitq_dispatch(&q, wq_pick, &slots), 1);
    cr_assert_eq(c[0].woken, 1);
    /* The client went away before its owner took the backend. */
    cr_assert_not_null(waitq_leave(&q, &c[0].e));
    cr_assert_null(waitq_take(&q, &c[0].e));
    cr_assert_eq(c[1].woken, 0);
    waitq_deinit(&q);
}

Test(waitq, dispatch_on_an_empty_queue_picks_nothing)
{
    struct waitq q;
    unsigned slots = 5;

    waitq_init(&q);
    cr_assert_eq(waitq_dispatch(&q, wq_pick, &slots), 0);
    cr_assert_eq(slots, 5, "no slot reserved for nobody");
    waitq_deinit(&q);
}
