/*
 * test_history.c: the dashboard's sample ring: order, wrap-around, series
 * that appear later (null before), and the JSON shape.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "mqlb/history.h"
#include "mqlb/stats.h"

struct test_history_snap {
    struct stats_snapshot snap;
    struct stats_pool   pool;
    struct stats_backend backends[2];
};

static void
test_history_snap(struct test_history_snap *s, uint64_t t, uint64_t n,
                  size_t nbackends)
{
    size_t i;

    memset(s, 0, sizeof(*s));
    s->snap.now_ms = t;
    s->snap.pools = &s->pool;
    s->snap.npools = 1;
    snprintf(s->pool.name, sizeof(s->pool.name), "p");
    s->pool.sessions = n * 2;
    s->pool.backends = s->backends;
    s->pool.nbackends = nbackends;
    for (i = 0; i < nbackends; i++) {
        snprintf(s->backends[i].name, sizeof(s->backends[i].name), "b%zu", i);
        s->backends[i].total = n;
        s->backends[i].bytes_in = 10 * n;
        s->backends[i].bytes_out = 5 * n;
        s->backends[i].active = (int64_t)i + 1;
    }
}

static json_t *
test_history_json(struct history *h)
{
    json_error_t err;
    char *text = history_render_json(h);
    json_t *j;

    cr_assert_not_null(text);
    j = json_loads(text, 0, &err);
    free(text);
    cr_assert_not_null(j, "%s", err.text);
    return j;
}

Test(history, series_follow_the_newest_sample)
{
    struct test_history_snap s;
    struct history h;
    json_t *j, *pool, *b1;

    history_init(&h);
    test_history_snap(&s, 1000, 1, 1);      /* b1 not there yet */
    cr_assert_eq(history_add(&h, &s.snap), 0);
    test_history_snap(&s, 6000, 3, 2);
    cr_assert_eq(history_add(&h, &s.snap), 0);
    j = test_history_json(&h);
    cr_assert_eq(json_array_size(json_object_get(j, "t")), 2);
    cr_assert_eq(json_integer_value(json_array_get(json_object_get(j, "t"),
                                                   1)), 6000);
    pool = json_array_get(json_object_get(j, "pools"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(pool, "name")), "p");
    cr_assert_eq(json_integer_value(json_array_get(
        json_object_get(pool, "sessions"), 1)), 6);
    /* the pool's bytes and active sum its backends */
    cr_assert_eq(json_integer_value(json_array_get(
        json_object_get(pool, "bytes"), 1)), 90);
    cr_assert_eq(json_integer_value(json_array_get(
        json_object_get(pool, "active"), 1)), 3);
    b1 = json_array_get(json_object_get(pool, "backends"), 1);
    cr_assert_str_eq(json_string_value(json_object_get(b1, "name")), "b1");
    cr_assert(json_is_null(json_array_get(json_object_get(b1, "bytes"), 0)));
    cr_assert_eq(json_integer_value(json_array_get(
        json_object_get(b1, "bytes"), 1)), 45);
    json_decref(j);
    history_deinit(&h);
}

Test(history, ring_keeps_the_last_samples_in_order)
{
    struct test_history_snap s;
    struct history h;
    json_t *j, *t;
    size_t i;

    history_init(&h);
    for (i = 0; i < HISTORY_SAMPLES + 7; i++) {
        test_history_snap(&s, 1000 * (i + 1), i, 2);
        cr_assert_eq(history_add(&h, &s.snap), 0);
    }
    j = test_history_json(&h);
    t = json_object_get(j, "t");
    cr_assert_eq(json_array_size(t), HISTORY_SAMPLES);
    cr_assert_eq(json_integer_value(json_array_get(t, 0)), 8000);
    cr_assert_eq(json_integer_value(json_array_get(t, HISTORY_SAMPLES - 1)),
                 1000 * (HISTORY_SAMPLES + 7));
    json_decref(j);
    history_deinit(&h);
}

Test(history, empty_ring_renders)
{
    struct history h;
    json_t *j;

    history_init(&h);
    j = test_history_json(&h);
    cr_assert_eq(json_array_size(json_object_get(j, "t")), 0);
    cr_assert_eq(json_array_size(json_object_get(j, "pools")), 0);
    json_decref(j);
    history_deinit(&h);
}
