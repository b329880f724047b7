/*
 * test_config_diff.c: what a reload adds, removes, changes and keeps.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "mqlb/config.h"
#include "mqlb/config_diff.h"

static struct config *
load(const char *text)
{
    struct config_errors errs = { NULL, 0 };
    struct config *cf = config_load_string(text, "t.ini", &errs);

    cr_assert_not_null(cf, "config failed: %s",
                       errs.nmsgs > 0 ? errs.msgs[0] : "?");
    config_errors_deinit(&errs);
    return cf;
}

static const struct config_diff_entry *
find(const struct config_diff *d, const char *pool, const char *backend)
{
    size_t i;

    for (i = 0; i < d->nentries; i++) {
        if (strcmp(d->entries[i].pool, pool) == 0 &&
            strcmp(d->entries[i].backend, backend) == 0) {
            return &d->entries[i];
        }
    }
    return NULL;
}

#define BASE "[pool a]\nlisten = 127.0.0.1:7001\n" \
             "backend = x 127.0.0.1:8001\nbackend = y 127.0.0.1:8002\n"

Test(config_diff, identical_files_keep_everything)
{
    struct config *a = load(BASE), *b = load(BASE);
    struct config_diff d;

    cr_assert_eq(config_diff(a, b, &d), 0);
    cr_assert_eq(d.counts[DIFF_KEPT], 3);     /* the pool and 2 backends */
    cr_assert_eq(d.counts[DIFF_ADDED] + d.counts[DIFF_REMOVED] +
                 d.counts[DIFF_CHANGED], 0);
    config_diff_deinit(&d);
    config_destroy(a);
    config_destroy(b);
}

Test(config_diff, added_removed_and_changed_backends)
{
    struct config *a = load(BASE);
    struct config *b = load("[pool a]\nlisten = 127.0.0.1:7001\n"
                            "backend = x 127.0.0.1:8001 weight=5\n"
                            "backend = z 127.0.0.1:8003\n");
    const struct config_diff_entry *e;
    struct config_diff d;

    cr_assert_eq(config_diff(a, b, &d), 0);
    e = find(&d, "a", "x");
    cr_assert_eq(e->kind, DIFF_CHANGED);
    cr_assert_str_eq(e->what, "weight");
    cr_assert_eq(find(&d, "a", "z")->kind, DIFF_ADDED);
    cr_assert_eq(find(&d, "a", "y")->kind, DIFF_REMOVED);
    cr_assert_eq(find(&d, "a", "")->kind, DIFF_KEPT);
    config_diff_deinit(&d);
    config_destroy(a);
    config_destroy(b);
}

Test(config_diff, moved_backend_address_is_a_change)
{
    struct config *a = load(BASE);
    struct config *b = load("[pool a]\nlisten = 127.0.0.1:7001\n"
                            "backend = x 127.0.0.1:9001 backup\n"
                            "backend = y 127.0.0.1:8002\n");
    struct config_diff d;

    cr_assert_eq(config_diff(a, b, &d), 0);
    cr_assert_str_eq(find(&d, "a", "x")->what, "address,backup");
    cr_assert_eq(find(&d, "a", "y")->kind, DIFF_KEPT);
    config_diff_deinit(&d);
    config_destroy(a);
    config_destroy(b);
}

Test(config_diff, pools_added_removed_and_settings_changed)
{
    struct config *a = load(BASE "[pool gone]\nlisten = 127.0.0.1:7002\n"
                            "backend = g 127.0.0.1:8009\n");
    struct config *b = load("[pool a]\nlisten = 127.0.0.1:7001\n"
                            "listen = 127.0.0.1:7003\nbalance = leastconn\n"
                            "rise = 5\n"
                            "backend = x 127.0.0.1:8001\n"
                            "backend = y 127.0.0.1:8002\n"
                            "[pool fresh]\nlisten = 127.0.0.1:7004\n"
                            "backend = f 127.0.0.1:8010\n");
    struct config_diff d;

    cr_assert_eq(config_diff(a, b, &d), 0);
    cr_assert_eq(find(&d, "a", "")->kind, DIFF_CHANGED);
    cr_assert_str_eq(find(&d, "a", "")->what, "listen,balance,checks");
    cr_assert_eq(find(&d, "fresh", "")->kind, DIFF_ADDED);
    cr_assert_eq(find(&d, "gone", "")->kind, DIFF_REMOVED);
    cr_assert_null(find(&d, "fresh", "f"));  /* a new pool's backends are
                                               new with it */
    config_diff_deinit(&d);
    config_destroy(a);
    config_destroy(b);
}

/* Load BASE with <extra> keys in pool a (before its backends). */
static struct config *
load_pool(const char *extra)
{
    char text[1024];

    snprintf(text, sizeof(text), "[pool a]\nlisten = 127.0.0.1:7001\n%s"
             "backend = x 127.0.0.1:8001\nbackend = y 127.0.0.1:8002\n",
             extra);
    return load(text);
}

/* The pool entry's verdict between BASE+<before> and BASE+<after>. */
static void
expect_pool_change(const char *before, const char *after, const char *what)
{
    struct config *a = load_pool(before), *b = load_pool(after);
    const struct config_diff_entry *e;
    struct config_diff d;

    cr_assert_eq(config_diff(a, b, &d), 0);
    e = find(&d, "a", "");
    cr_expect_eq(e->kind, what[0] != '\0' ? DIFF_CHANGED : DIFF_KEPT,
                 "'%s' -> '%s': %s", before, after,
                 config_diff_kind_name(e->kind));
    cr_expect_str_eq(e->what, what, "'%s' -> '%s'", before, after);
    config_diff_deinit(&d);
    config_destroy(a);
    config_destroy(b);
}

Test(config_diff, changed_allow_list_is_a_change)
{
    /* Same number of blocks, other blocks: once logged as kept. */
    expect_pool_change("allow = 10.0.0.0/8\n", "allow = 192.168.0.0/16\n",
                       "sessions");
    expect_pool_change("allow = 10.0.0.0/8\n", "allow = 10.0.0.0/9\n",
                       "sessions");
    expect_pool_change("", "allow = 10.0.0.0/8\n", "sessions");
    expect_pool_change("allow = 10.0.0.0/8 ::1\n",
                       "allow = 10.0.0.0/8\nallow = ::1\n", "");
}

Test(config_diff, changed_check_bytes_and_path_are_a_change)
{
    expect_pool_change("health_check = send-expect\ncheck_send = A\n"
                       "check_expect = B\n",
                       "health_check = send-expect\ncheck_send = C\n"
                       "check_expect = B\n", "checks");
    expect_pool_change("health_check = send-expect\ncheck_expect = B\n",
                       "health_check = send-expect\ncheck_expect = BB\n",
                       "checks");
    expect_pool_change("check_path = /a\n", "check_path = /b\n", "checks");
    expect_pool_change("check_path = /a\n", "check_path = /a\n", "");
}

Test(config_diff, every_pool_key_is_compared)
{
    static const struct { const char *before, *after, *what; } cases[] = {
        { "", "listen = 127.0.0.1:7002\n", "listen" },
        { "", "balance = random\n", "balance" },
        { "", "health_check = redis\n", "checks" },
        { "", "check_interval = 3s\n", "checks" },
        { "", "check_timeout = 500ms\n", "checks" },
        { "", "rise = 9\n", "checks" },
        { "", "fall = 9\n", "checks" },
        { "", "connect_timeout = 1s\n", "sessions" },
        { "", "idle_timeout = 0\n", "sessions" },
        { "", "tcp_keepalive = 60s\n", "sessions" },
        { "tcp_keepalive = 60s\n", "tcp_keepalive = 60s:5s\n", "sessions" },
        { "", "retries = 0\n", "sessions" },
        { "", "max_fails = 0\n", "sessions" },
        { "", "slow_start = 1s\n", "sessions" },
        { "", "on_backend_down = close\n", "sessions" },
        { "", "max_conns_per_source = 4\n", "sessions" },
        { "", "proxy_protocol = v1\n", "sessions" },
        { "", "tcp_keepalive = off\n", "" },
        { "", "check_interval = 2s\n", "" },
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        expect_pool_change(cases[i].before, cases[i].after, cases[i].what);
    }
}

Test(config_diff, global_and_admin_changes_are_named)
{
    struct config *a = load("[global]\nlog_level = info\n" BASE);
    struct config *b = load("[global]\nlog_level = debug\n"
                            "[admin]\ntoken = t\n" BASE);
    struct config_diff d;

    cr_assert_eq(config_diff(a, b, &d), 0);
    cr_expect_str_eq(d.global, "log_level,admin token");
    cr_expect_eq(d.counts[DIFF_CHANGED], 0, "pools and backends kept");
    config_diff_deinit(&d);
    cr_assert_eq(config_diff(a, a, &d), 0);
    cr_expect_str_eq(d.global, "");
    config_diff_deinit(&d);
    config_destroy(a);
    config_destroy(b);
}

Test(config_diff, backend_verdict_says_whether_the_running_one_is_kept)
{
    struct config *a = load(BASE "backend = z 127.0.0.1:8003\n"
                            "backend = w 127.0.0.1:8004\n");
    struct config *b = load("[pool a]\nlisten = 127.0.0.1:7001\n"
                            "backend = x 127.0.0.1:8001 weight=3 "
                            "max_conns=5\n"
                            "backend = y 127.0.0.1:9002\n"
                            "backend = z 127.0.0.1:8003 backup\n"
                            "backend = w 127.0.0.1:8004\n"
                            "backend = v 127.0.0.1:8005\n");
    const struct config_diff_entry *e;
    struct config_diff d;

    cr_assert_eq(config_diff(a, b, &d), 0);
    e = config_diff_find(&d, "a", "x");
    cr_assert_not_null(e);
    cr_expect_eq(e->changes, CONFIG_BACKEND_WEIGHT | CONFIG_BACKEND_MAX_CONNS);
    cr_expect_str_eq(e->what, "weight,max_conns");
    cr_expect(config_diff_keeps_backend(&d, "a", "x"), "weight: same one");
    cr_expect_not(config_diff_keeps_backend(&d, "a", "y"), "moved: new one");
    cr_expect_not(config_diff_keeps_backend(&d, "a", "z"), "backup: new");
    cr_expect(config_diff_keeps_backend(&d, "a", "w"), "unchanged: kept");
    cr_expect_not(config_diff_keeps_backend(&d, "a", "v"), "added");
    cr_expect_not(config_diff_keeps_backend(&d, "b", "x"), "no such pool");
    config_diff_deinit(&d);
    config_destroy(a);
    config_destroy(b);
}
