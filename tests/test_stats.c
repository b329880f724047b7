/*
 * test_stats.c: /status JSON and /metrics rendering from a fixed snapshot,
 * parsed back and checked field by field, and the /health verdict.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "mqlb/common.h"
#include "mqlb/stats.h"

#include "test_stats_golden.h"

/* 2024-05-01T12:00:00.123Z */
#define TEST_STATS_T0_MS    1714564800123ULL

/* A fixed snapshot on the stack: two pools, three backends. */
struct test_stats_fixture {
    struct stats_snapshot snap;         /* points into the arrays below */
    struct stats_pool   pools[2];       /* "mqtt" and "redis" */
    struct stats_backend backends[3];   /* two for mqtt, one for redis */
    char                listen[2][80];  /* the mqtt pool's listens */
};

static void
test_stats_fixture_init(struct test_stats_fixture *f)
{
    struct stats_backend *b;

    memset(f, 0, sizeof(*f));
    snprintf(f->listen[0], sizeof(f->listen[0]), "0.0.0.0:1883");
    snprintf(f->listen[1], sizeof(f->listen[1]), "[::]:1883");

    b = &f->backends[0];
    snprintf(b->name, sizeof(b->name), "m1");
    snprintf(b->address, sizeof(b->address), "10.0.0.1:1883");
    b->state = BACKEND_UP;
    b->weight = 100;
    b->active = 7;
    b->total = 1234;
    b->failed = 3;
    b->bytes_in = 1000;
    b->bytes_out = 2000;
    b->checks_pass = 50;
    b->checks_fail = 2;
    b->check.result = BACKEND_CHECK_PASS;
    b->check.latency_ms = 12;
    b->check.at_ms = TEST_STATS_T0_MS + 1000;
    b->since_ms = TEST_STATS_T0_MS;

    b = &f->backends[1];
    snprintf(b->name, sizeof(b->name), "m2");
    snprintf(b->address, sizeof(b->address), "[fd00::2]:1883");
    b->state = BACKEND_DOWN;
    b->down = 1;
    snprintf(b->reason, sizeof(b->reason), "check failed: refused");
    b->weight = 0;
    b->check.result = BACKEND_CHECK_FAIL;
    snprintf(b->check.reason, sizeof(b->check.reason),
             "connect: Connection refused");
    b->check.latency_ms = 1500;
    b->check.at_ms = TEST_STATS_T0_MS + 2000;
    b->since_ms = TEST_STATS_T0_MS + 500;

    b = &f->backends[2];
    snprintf(b->name, sizeof(b->name), "r1");
    snprintf(b->address, sizeof(b->address), "127.0.0.1:6379");
    b->state = BACKEND_DRAIN;
    snprintf(b->admin, sizeof(b->admin), "drain");
    snprintf(b->reason, sizeof(b->reason), "drained by admin (127.0.0.1)");
    b->weight = 256;
    b->check.result = BACKEND_CHECK_NONE;

    snprintf(f->pools[0].name, sizeof(f->pools[0].name), "mqtt");
    f->pools[0].listen = f->listen;
    f->pools[0].nlisten = 2;
    f->pools[0].balance = "leastconn";
    f->pools[0].check = "mqtt";
    f->pools[0].rejected = 9;
    f->pools[0].rejected_by[REJECT_NO_BACKEND] = 4;
    f->pools[0].rejected_by[REJECT_QUEUE] = 5;
    f->pools[0].queued = 3;
    f->pools[0].queued_max = 7;
    f->pools[0].rebalanced = 11;
    f->pools[0].backends = &f->backends[0];
    f->pools[0].nbackends = 2;

    snprintf(f->pools[1].name, sizeof(f->pools[1].name), "redis");
    f->pools[1].listen = NULL;
    f->pools[1].nlisten = 0;
    f->pools[1].balance = "roundrobin";
    f->pools[1].check = "redis";
    f->pools[1].backends = &f->backends[2];
    f->pools[1].nbackends = 1;

    f->snap.uptime_s = 3600;
    f->snap.now_ms = TEST_STATS_T0_MS + 60000;
    f->snap.pools = f->pools;
    f->snap.npools = 2;
}

static json_t *
test_stats_json(const struct stats_snapshot *snap)
{
    json_error_t jerr;
    json_t *root;
    char *text;

    text = stats_render_json(snap);
    cr_assert_not_null(text);
    cr_assert(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
    root = json_loads(text, 0, &jerr);
    cr_assert_not_null(root, "bad JSON: %s\n%s", jerr.text, text);
    free(text);
    return root;
}

static const char *
test_stats_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    cr_assert(json_is_string(v), "%s is not a string", key);
    return json_string_value(v);
}

static json_int_t
test_stats_int(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    cr_assert(json_is_integer(v), "%s is not an integer", key);
    return json_integer_value(v);
}

Test(stats, json_has_every_field_of_the_spec)
{
    static const char *const bkeys[] = {
        "name", "address", "state", "weight", "active", "total", "failed",
        "bytes_in", "bytes_out", "checks_pass", "checks_fail", "check",
        "since", "health", "admin", "reason", "source",
    };
    struct test_stats_fixture f;
    json_t *root, *pools, *p, *bs, *b, *c;
    size_t i;

    test_stats_fixture_init(&f);
    root = test_stats_json(&f.snap);

    cr_assert_str_eq(test_stats_str(root, "version"), MQLB_VERSION);
    cr_assert_eq(test_stats_int(root, "uptime_s"), 3600);
    cr_assert_str_eq(test_stats_str(root, "now"),
                     "2024-05-01T12:01:00.123Z");
    pools = json_object_get(root, "pools");
    cr_assert(json_is_array(pools));
    cr_assert_eq(json_array_size(pools), 2);

    p = json_array_get(pools, 0);
    cr_assert_str_eq(test_stats_str(p, "name"), "mqtt");
    cr_assert_str_eq(test_stats_str(p, "balance"), "leastconn");
    cr_assert_str_eq(test_stats_str(p, "check_kind"), "mqtt");
    cr_assert_eq(test_stats_int(p, "rejected"), 9);
    cr_assert_eq(test_stats_int(json_object_get(p, "rejected_by"),
                                "no_backend"), 4);
    cr_assert_eq(test_stats_int(json_object_get(p, "rejected_by"),
                                "queue"), 5);
    cr_assert_eq(test_stats_int(json_object_get(p, "rejected_by"), "sni"),
                 0);
    cr_assert_eq(json_object_size(json_object_get(p, "rejected_by")),
                 REJECT_NREASONS);
    cr_assert_eq(test_stats_int(p, "queued"), 3);
    cr_assert_eq(test_stats_int(p, "queued_max"), 7);
    cr_assert_eq(test_stats_int(p, "rebalanced"), 11);
    cr_assert_eq(json_array_size(json_object_get(p, "listen")), 2);
    cr_assert_str_eq(json_string_value(
        json_array_get(json_object_get(p, "listen"), 1)), "[::]:1883");

    bs = json_object_get(p, "backends");
    cr_assert_eq(json_array_size(bs), 2);
    b = json_array_get(bs, 0);
    for (i = 0; i < MQ_NELEMS(bkeys); i++) {
        cr_assert_not_null(json_object_get(b, bkeys[i]), "no %s", bkeys[i]);
    }
    cr_assert_eq(json_object_size(b), MQ_NELEMS(bkeys));
    cr_assert_str_eq(test_stats_str(b, "name"), "m1");
    cr_assert_str_eq(test_stats_str(b, "address"), "10.0.0.1:1883");
    cr_assert_str_eq(test_stats_str(b, "state"), "up");
    cr_assert_str_eq(test_stats_str(b, "health"), "up");
    cr_assert_str_eq(test_stats_str(b, "admin"), "ready");
    cr_assert_str_eq(test_stats_str(b, "reason"), "");
    cr_assert_eq(test_stats_int(b, "weight"), 100);
    cr_assert_eq(test_stats_int(b, "active"), 7);
    cr_assert_eq(test_stats_int(b, "total"), 1234);
    cr_assert_eq(test_stats_int(b, "failed"), 3);
    cr_assert_eq(test_stats_int(b, "bytes_in"), 1000);
    cr_assert_eq(test_stats_int(b, "bytes_out"), 2000);
    cr_assert_eq(test_stats_int(b, "checks_pass"), 50);
    cr_assert_eq(test_stats_int(b, "checks_fail"), 2);
    cr_assert_str_eq(test_stats_str(b, "since"), "2024-05-01T12:00:00.123Z");
    c = json_object_get(b, "check");
    cr_assert_eq(json_object_size(c), 4);
    cr_assert_str_eq(test_stats_str(c, "result"), "pass");
    cr_assert_str_eq(test_stats_str(c, "reason"), "");
    cr_assert_eq(test_stats_int(c, "latency_ms"), 12);
    cr_assert_str_eq(test_stats_str(c, "at"), "2024-05-01T12:00:01.123Z");

    b = json_array_get(bs, 1);
    cr_assert_str_eq(test_stats_str(b, "state"), "down");
    cr_assert_str_eq(test_stats_str(b, "health"), "down");
    cr_assert_str_eq(test_stats_str(b, "reason"), "check failed: refused");
    cr_assert_str_eq(test_stats_str(b, "address"), "[fd00::2]:1883");
    c = json_object_get(b, "check");
    cr_assert_str_eq(test_stats_str(c, "result"), "fail");
    cr_assert_str_eq(test_stats_str(c, "reason"),
                     "connect: Connection refused");
    cr_assert_eq(test_stats_int(c, "latency_ms"), 1500);

    p = json_array_get(pools, 1);
    cr_assert_str_eq(test_stats_str(p, "name"), "redis");
    cr_assert_eq(json_array_size(json_object_get(p, "listen")), 0);
    b = json_array_get(json_object_get(p, "backends"), 0);
    cr_assert_str_eq(test_stats_str(b, "state"), "drain");
    cr_assert_str_eq(test_stats_str(b, "health"), "up");
    cr_assert_str_eq(test_stats_str(b, "admin"), "drain");
    cr_assert_str_eq(test_stats_str(b, "reason"),
                     "drained by admin (127.0.0.1)");
    cr_assert_eq(test_stats_int(b, "weight"), 256);
    json_decref(root);
}

Test(stats, json_unknown_times_are_null_and_unchecked_is_none)
{
    struct test_stats_fixture f;
    json_t *root, *b, *c;

    test_stats_fixture_init(&f);
    root = test_stats_json(&f.snap);
    b = json_array_get(json_object_get(json_array_get(
        json_object_get(root, "pools"), 1), "backends"), 0);
    cr_assert(json_is_null(json_object_get(b, "since")));
    c = json_object_get(b, "check");
    cr_assert_str_eq(test_stats_str(c, "result"), "none");
    cr_assert(json_is_null(json_object_get(c, "at")));
    cr_assert_eq(test_stats_int(c, "latency_ms"), 0);
    json_decref(root);
}

Test(stats, json_states_disabled_and_large_counters)
{
    struct test_stats_fixture f;
    json_t *root, *b;

    test_stats_fixture_init(&f);
    f.backends[0].state = BACKEND_DISABLED;
    f.backends[0].total = UINT64_MAX;
    f.backends[0].bytes_in = (uint64_t)1 << 40;
    root = test_stats_json(&f.snap);
    b = json_array_get(json_object_get(json_array_get(
        json_object_get(root, "pools"), 0), "backends"), 0);
    cr_assert_str_eq(test_stats_str(b, "state"), "disabled");
    cr_assert_eq(test_stats_int(b, "total"), INT64_MAX);
    cr_assert_eq(test_stats_int(b, "bytes_in"), (json_int_t)1 << 40);
    json_decref(root);
}

Test(stats, json_odd_names_and_non_utf8_reasons_round_trip)
{
    struct test_stats_fixture f;
    json_t *root, *p, *b;

    test_stats_fixture_init(&f);
    snprintf(f.pools[0].name, sizeof(f.pools[0].name), "a\"b\\c\nd</x>");
    snprintf(f.backends[0].name, sizeof(f.backends[0].name), "\t\x01z");
    snprintf(f.backends[1].check.reason, sizeof(f.backends[1].check.reason),
             "unexpected reply: \xff\xfe-ERR");
    root = test_stats_json(&f.snap);
    p = json_array_get(json_object_get(root, "pools"), 0);
    cr_assert_str_eq(test_stats_str(p, "name"), "a\"b\\c\nd</x>");
    b = json_array_get(json_object_get(p, "backends"), 0);
    cr_assert_str_eq(test_stats_str(b, "name"), "\t\x01z");
    b = json_array_get(json_object_get(p, "backends"), 1);
    cr_assert_str_eq(test_stats_str(json_object_get(b, "check"), "reason"),
                     "unexpected reply: ??" "-ERR");
    json_decref(root);
}

Test(stats, json_with_no_pools)
{
    struct stats_snapshot snap;
    json_t *root;

    memset(&snap, 0, sizeof(snap));
    root = test_stats_json(&snap);
    cr_assert_eq(json_array_size(json_object_get(root, "pools")), 0);
    cr_assert(json_is_null(json_object_get(root, "now")));
    json_decref(root);
}

/* The line of <text> that starts with <prefix>, or NULL. */
static const char *
test_stats_line(const char *text, const char *prefix)
{
    const char *p;
    size_t n = strlen(prefix);

    for (p = text; p != NULL && *p != '\0'; ) {
        if (strncmp(p, prefix, n) == 0) {
            return p;
        }
        p = strchr(p, '\n');
        if (p != NULL) {
            p++;
        }
    }
    return NULL;
}

/* Assert <text> holds the exact line <line>. */
static void
test_stats_has_line(const char *text, const char *line)
{
    const char *p;
    size_t n = strlen(line);

    for (p = text; p != NULL && *p != '\0'; ) {
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0')) {
            return;
        }
        p = strchr(p, '\n');
        if (p != NULL) {
            p++;
        }
    }
    cr_assert_fail("no line \"%s\" in:\n%s", line, text);
}

Test(stats, metrics_every_family_has_help_and_type)
{
    static const char *const families[][2] = {
        { "mqlb_uptime_seconds", "gauge" },
        { "mqlb_pool_rejected_total", "counter" },
        { "mqlb_pool_queued", "gauge" },
        { "mqlb_pool_queued_max", "gauge" },
        { "mqlb_pool_rebalanced_total", "counter" },
        { "mqlb_backend_up", "gauge" },
        { "mqlb_backend_state", "gauge" },
        { "mqlb_backend_weight", "gauge" },
        { "mqlb_backend_active_sessions", "gauge" },
        { "mqlb_backend_sessions_total", "counter" },
        { "mqlb_backend_failures_total", "counter" },
        { "mqlb_backend_bytes_total", "counter" },
        { "mqlb_health_checks_total", "counter" },
    };
    struct test_stats_fixture f;
    char help[128], type[128];
    char *text;
    size_t i;

    test_stats_fixture_init(&f);
    text = stats_render_metrics(&f.snap);
    cr_assert_not_null(text);
    for (i = 0; i < MQ_NELEMS(families); i++) {
        snprintf(help, sizeof(help), "# HELP %s ", families[i][0]);
        snprintf(type, sizeof(type), "# TYPE %s %s", families[i][0],
                 families[i][1]);
        cr_assert_not_null(test_stats_line(text, help), "%s", help);
        test_stats_has_line(text, type);
    }
    free(text);
}

/*
 * Every sample line belongs to the family of the last # TYPE line, and no
 * family is declared twice: the grouping the exposition format requires.
 */
Test(stats, metrics_samples_are_grouped_under_their_family)
{
    struct test_stats_fixture f;
    char family[128], seen[64][128];
    char *text, *line, *save;
    size_t nseen, i, n;

    test_stats_fixture_init(&f);
    text = stats_render_metrics(&f.snap);
    cr_assert_not_null(text);
    cr_assert(text[strlen(text) - 1] == '\n');
    family[0] = '\0';
    nseen = 0;
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# HELP ", 7) == 0) {
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            n = strcspn(line + 7, " ");
            cr_assert(n < sizeof(family));
            memcpy(family, line + 7, n);
            family[n] = '\0';
            for (i = 0; i < nseen; i++) {
                cr_assert_str_neq(seen[i], family, "%s twice", family);
            }
            cr_assert(nseen < 64);
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", family);
            continue;
        }
        n = strcspn(line, "{ ");
        /* a histogram's samples carry _bucket, _sum and _count */
        if (n > strlen(family) && strncmp(line, family, strlen(family)) == 0 &&
            (strncmp(line + strlen(family), "_bucket", n - strlen(family)) == 0 ||
             strncmp(line + strlen(family), "_sum", n - strlen(family)) == 0 ||
             strncmp(line + strlen(family), "_count", n - strlen(family)) == 0)) {
            continue;
        }
        cr_assert(n == strlen(family) && strncmp(line, family, n) == 0,
                  "sample \"%s\" outside its family %s", line, family);
    }
    free(text);
}

Test(stats, metrics_sample_values)
{
    struct test_stats_fixture f;
    char *text;

    test_stats_fixture_init(&f);
    text = stats_render_metrics(&f.snap);
    cr_assert_not_null(text);
    test_stats_has_line(text, "mqlb_uptime_seconds 3600");
    test_stats_has_line(text, "mqlb_pool_rejected_total{pool=\"mqtt\","
                        "reason=\"no_backend\"} 4");
    test_stats_has_line(text, "mqlb_pool_rejected_total{pool=\"mqtt\","
                        "reason=\"queue\"} 5");
    test_stats_has_line(text, "mqlb_pool_rejected_total{pool=\"mqtt\","
                        "reason=\"allow\"} 0");
    test_stats_has_line(text, "mqlb_pool_rejected_total{pool=\"redis\","
                        "reason=\"sni\"} 0");
    test_stats_has_line(text, "mqlb_pool_queued{pool=\"mqtt\"} 3");
    test_stats_has_line(text, "mqlb_pool_queued_max{pool=\"mqtt\"} 7");
    test_stats_has_line(text, "mqlb_pool_rebalanced_total{pool=\"mqtt\"} 11");
    test_stats_has_line(text,
        "mqlb_backend_up{pool=\"mqtt\",backend=\"m1\"} 1");
    test_stats_has_line(text,
        "mqlb_backend_up{pool=\"mqtt\",backend=\"m2\"} 0");
    test_stats_has_line(text,
        "mqlb_backend_up{pool=\"redis\",backend=\"r1\"} 0");
    test_stats_has_line(text,
        "mqlb_backend_state{pool=\"redis\",backend=\"r1\",state=\"drain\"} 1");
    test_stats_has_line(text,
        "mqlb_backend_state{pool=\"redis\",backend=\"r1\",state=\"up\"} 0");
    test_stats_has_line(text,
        "mqlb_backend_weight{pool=\"redis\",backend=\"r1\"} 256");
    test_stats_has_line(text,
        "mqlb_backend_active_sessions{pool=\"mqtt\",backend=\"m1\"} 7");
    test_stats_has_line(text,
        "mqlb_backend_sessions_total{pool=\"mqtt\",backend=\"m1\"} 1234");
    test_stats_has_line(text,
        "mqlb_backend_failures_total{pool=\"mqtt\",backend=\"m1\"} 3");
    test_stats_has_line(text, "mqlb_backend_bytes_total{pool=\"mqtt\","
                        "backend=\"m1\",direction=\"in\"} 1000");
    test_stats_has_line(text, "mqlb_backend_bytes_total{pool=\"mqtt\","
                        "backend=\"m1\",direction=\"out\"} 2000");
    test_stats_has_line(text, "mqlb_health_checks_total{pool=\"mqtt\","
                        "backend=\"m1\",result=\"pass\"} 50");
    test_stats_has_line(text, "mqlb_health_checks_total{pool=\"mqtt\","
                        "backend=\"m1\",result=\"fail\"} 2");
    test_stats_has_line(text, "mqlb_backend_check_latency_seconds{"
                        "pool=\"mqtt\",backend=\"m2\"} 1.500");
    test_stats_has_line(text, "mqlb_backend_last_change_timestamp_seconds{"
                        "pool=\"mqtt\",backend=\"m1\"} 1714564800.123");
    test_stats_has_line(text, "mqlb_info{version=\"" MQLB_VERSION "\"} 1");
    free(text);
}

Test(stats, metrics_counters_print_full_uint64)
{
    struct test_stats_fixture f;
    char *text;

    test_stats_fixture_init(&f);
    f.backends[0].total = UINT64_MAX;
    text = stats_render_metrics(&f.snap);
    cr_assert_not_null(text);
    test_stats_has_line(text, "mqlb_backend_sessions_total{pool=\"mqtt\","
                        "backend=\"m1\"} 18446744073709551615");
    free(text);
}

Test(stats, metrics_label_values_are_escaped)
{
    struct test_stats_fixture f;
    char *text;

    test_stats_fixture_init(&f);
    snprintf(f.pools[0].name, sizeof(f.pools[0].name), "a\"b\\c\nd");
    snprintf(f.backends[0].name, sizeof(f.backends[0].name), "\\\"\n");
    text = stats_render_metrics(&f.snap);
    cr_assert_not_null(text);
    test_stats_has_line(text,
        "mqlb_pool_rejected_total{pool=\"a\\\"b\\\\c\\nd\","
        "reason=\"queue\"} 5");
    test_stats_has_line(text, "mqlb_backend_up{pool=\"a\\\"b\\\\c\\nd\","
                        "backend=\"\\\\\\\"\\n\"} 1");
    /* no raw newline sneaks in: every line still starts as expected */
    cr_assert_null(test_stats_line(text, "d\""));
    free(text);
}

Test(stats, metrics_with_no_pools)
{
    struct stats_snapshot snap;
    char *text;

    memset(&snap, 0, sizeof(snap));
    snap.uptime_s = 5;
    text = stats_render_metrics(&snap);
    cr_assert_not_null(text);
    test_stats_has_line(text, "mqlb_uptime_seconds 5");
    test_stats_has_line(text, "# TYPE mqlb_backend_up gauge");
    free(text);
}

Test(stats, all_pools_up)
{
    struct test_stats_fixture f;
    struct stats_snapshot empty;

    test_stats_fixture_init(&f);
    /* redis has only a drained backend: not up */
    cr_assert_eq(stats_all_pools_up(&f.snap), 0);
    f.backends[2].state = BACKEND_UP;
    cr_assert_eq(stats_all_pools_up(&f.snap), 1);
    /* one up backend is enough for mqtt */
    f.backends[0].state = BACKEND_DOWN;
    cr_assert_eq(stats_all_pools_up(&f.snap), 0);
    f.backends[1].state = BACKEND_UP;
    cr_assert_eq(stats_all_pools_up(&f.snap), 1);
    f.backends[1].state = BACKEND_DISABLED;
    cr_assert_eq(stats_all_pools_up(&f.snap), 0);
    /* a pool without backends is not up */
    f.backends[1].state = BACKEND_UP;
    f.pools[1].nbackends = 0;
    cr_assert_eq(stats_all_pools_up(&f.snap), 0);

    memset(&empty, 0, sizeof(empty));
    cr_assert_eq(stats_all_pools_up(&empty), 1);
    cr_assert_eq(stats_all_pools_up(NULL), 0);
}

Test(stats, snapshot_free_releases_everything)
{
    struct stats_snapshot *snap;

    stats_snapshot_free(NULL);
    snap = calloc(1, sizeof(*snap));
    cr_assert_not_null(snap);
    snap->npools = 2;
    snap->pools = calloc(2, sizeof(*snap->pools));
    snap->pools[0].nlisten = 1;
    snap->pools[0].listen = calloc(1, sizeof(*snap->pools[0].listen));
    snap->pools[0].nbackends = 3;
    snap->pools[0].backends = calloc(3, sizeof(*snap->pools[0].backends));
    snap->pools[0].balance = "roundrobin";
    /* ASan's leak check fails the test if anything is left */
    stats_snapshot_free(snap);
}

Test(stats, metrics_histograms_transitions_and_process)
{
    struct test_stats_fixture f;
    struct histo h;
    char *text;

    test_stats_fixture_init(&f);
    histo_init(&h, HISTO_FAST);
    histo_observe_us(&h, 3000);
    histo_copy(&h, &f.backends[0].connect_time);
    histo_init(&h, HISTO_LONG);
    histo_observe_us(&h, 90000000);
    histo_copy(&h, &f.pools[0].duration);
    f.pools[0].sessions = 11;
    f.pools[0].retries = 2;
    f.backends[1].transitions[BACKEND_DOWN] = 3;
    f.backends[1].downtime_ms = 61500;
    f.snap.process.proc_ok = true;
    f.snap.process.proc.rss_bytes = 4096000;
    f.snap.process.proc.open_fds = 17;
    f.snap.process.proc.max_fds = 1024;
    f.snap.process.reloads_ok = 4;
    f.snap.process.reloads_failed = 1;
    f.snap.process.last_reload_ok_ms = TEST_STATS_T0_MS;
    f.snap.process.log_dropped = 42;
    text = stats_render_metrics(&f.snap);
    cr_assert_not_null(text);
    cr_assert(strstr(text, "# TYPE mqlb_backend_connect_seconds histogram\n"));
    cr_assert(strstr(text, "mqlb_backend_connect_seconds_bucket{pool=\"mqtt\","
                           "backend=\"m1\",le=\"0.005\"} 1\n"), "%s", text);
    cr_assert(strstr(text, "mqlb_backend_connect_seconds_count{pool=\"mqtt\","
                           "backend=\"m1\"} 1\n"));
    cr_assert(strstr(text, "mqlb_session_duration_seconds_bucket{pool=\"mqtt\","
                           "le=\"300\"} 1\n"));
    cr_assert(strstr(text, "mqlb_pool_sessions_total{pool=\"mqtt\"} 11\n"));
    cr_assert(strstr(text, "mqlb_pool_retries_total{pool=\"mqtt\"} 2\n"));
    cr_assert(strstr(text, "mqlb_backend_transitions_total{pool=\"mqtt\","
                           "backend=\"m2\",to=\"down\"} 3\n"));
    cr_assert(strstr(text, "mqlb_backend_downtime_seconds_total{pool=\"mqtt\","
                           "backend=\"m2\"} 61.500\n"));
    cr_assert(strstr(text, "mqlb_reloads_total{result=\"failure\"} 1\n"));
    cr_assert(strstr(text, "# TYPE mqlb_log_dropped_lines_total counter\n"
                           "mqlb_log_dropped_lines_total 42\n"), "%s", text);
    cr_assert(strstr(text, "mqlb_config_last_reload_success_timestamp_seconds "
                           "1714564800.123\n"));
    cr_assert(strstr(text, "process_open_fds 17\n"));
    cr_assert(strstr(text, "process_resident_memory_bytes 4096000\n"));
    free(text);
}

/*
 * The fixture with edge values everywhere the page prints a number:
 * zero, powers of ten, UINT64_MAX, fixed-point milliseconds, histogram
 * sums with and without a fraction, and label values to escape.
 */
static void
test_stats_golden_init(struct test_stats_fixture *f)
{
    struct stats_backend *b;
    size_t i;

    test_stats_fixture_init(f);
    f->snap.uptime_s = UINT64_MAX;
    f->pools[0].tls = true;
    for (i = 0; i < TLS_NRESULTS; i++) {
        f->pools[0].tls_results[i] = (uint64_t)1 << (i * 7);
    }
    f->pools[0].rejected_by[REJECT_ALLOW] = UINT64_MAX;
    f->pools[0].queued = 10;
    f->pools[0].queued_max = 100000;
    f->pools[0].sessions = 10000000000000000000ULL;
    f->pools[0].retries = 9999999999999999999ULL;
    histo_init_copy(&f->pools[0].duration, HISTO_LONG);
    f->pools[0].duration.counts[0] = 1;
    f->pools[0].duration.counts[9] = 1000;
    f->pools[0].duration.counts[HISTO_MAX_BUCKETS] = 7;
    f->pools[0].duration.sum_us = 86400000001ULL;
    histo_init_copy(&f->pools[1].duration, HISTO_LONG);

    b = &f->backends[0];
    b->total = UINT64_MAX;
    b->failed = UINT64_MAX - 1;
    b->bytes_in = 1000000000000000000ULL;
    b->bytes_out = 4294967296ULL;
    b->checks_fail = 0;
    b->check.latency_ms = UINT32_MAX;
    b->since_ms = UINT64_MAX;
    b->downtime_ms = 1001;
    for (i = 0; i < BACKEND_NSTATES; i++) {
        b->transitions[i] = i * 99;
    }
    histo_init_copy(&b->connect_time, HISTO_FAST);
    for (i = 0; i <= HISTO_MAX_BUCKETS; i++) {
        b->connect_time.counts[i] = i * i;
    }
    b->connect_time.sum_us = 1;
    histo_init_copy(&b->check_time, HISTO_FAST);
    b->check_time.counts[3] = 5;
    b->check_time.sum_us = 999999;

    b = &f->backends[1];
    snprintf(b->name, sizeof(b->name), "m\"2\\\n");
    b->active = -5;                     /* shown as 0 */
    b->check.latency_ms = 0;
    b->since_ms = 999;
    b->downtime_ms = 60000;
    histo_init_copy(&b->connect_time, HISTO_FAST);
    histo_init_copy(&b->check_time, HISTO_FAST);
    b->check_time.counts[HISTO_MAX_BUCKETS] = UINT64_MAX;
    b->check_time.sum_us = UINT64_MAX;

    b = &f->backends[2];
    b->state = BACKEND_DISABLED;
    histo_init_copy(&b->connect_time, HISTO_FAST);
    histo_init_copy(&b->check_time, HISTO_FAST);
    b->check_time.sum_us = 1234567;

    f->snap.process.proc_ok = true;
    f->snap.process.proc.cpu_s = 12.345;
    f->snap.process.proc.start_time_s = 1714564800.126;
    f->snap.process.proc.rss_bytes = 4096000;
    f->snap.process.proc.vsize_bytes = UINT64_MAX;
    f->snap.process.proc.open_fds = 0;
    f->snap.process.proc.max_fds = 1048576;
    f->snap.process.reloads_ok = 1;
    f->snap.process.reloads_failed = 10;
    f->snap.process.last_reload_ok_ms = TEST_STATS_T0_MS;
    f->snap.process.last_reload_ok = true;
    f->snap.process.log_dropped = UINT64_MAX;
    f->snap.process.max_conns = 9966;
    f->snap.process.max_conns_reached = 3;
}

Test(stats, metrics_page_is_byte_for_byte_as_pinned)
{
    struct test_stats_fixture f;
    char *text;

    test_stats_golden_init(&f);
    text = stats_render_metrics(&f.snap);
    cr_assert_not_null(text);
    cr_assert_str_eq(text, test_stats_golden);
    free(text);
}
