/*
 * test_config_diff.c: what a reload adds, removes, changes and keeps.
 */
#include <criterion/criterion.h>
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
