/*
 * test_gen.c: a reload's generation reuses exactly the backends its
 * config diff keeps, so what the log calls kept is what keeps its
 * health, counters and admin state.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <string.h>

#include "mqlb/backend.h"
#include "mqlb/config.h"
#include "mqlb/config_diff.h"
#include "mqlb/gen.h"
#include "mqlb/pool.h"

static struct config *
test_gen_load(const char *text)
{
    struct config_errors errs = { 0 };
    struct config *cf = config_load_string(text, "t.ini", &errs);

    cr_assert_not_null(cf, "config failed: %s",
                       errs.nmsgs > 0 ? errs.msgs[0] : "?");
    config_errors_deinit(&errs);
    return cf;
}

static struct backend *
test_gen_backend(struct gen *g, const char *name)
{
    struct pool *p = gen_find_pool(g, "a");

    cr_assert_not_null(p);
    return pool_find_backend(p, name);
}

Test(gen, reload_reuses_the_backends_the_diff_keeps)
{
    struct config *cf1, *cf2;
    struct gen_keep *keep = NULL;
    struct gen *g1, *g2;
    struct config_diff d;
    struct backend *kept, *weighted, *moved, *role, *runtime;
    struct config_addr moved_to;

    cf1 = test_gen_load("[pool a]\nlisten = 127.0.0.1:7001\n"
                        "backend = kept 127.0.0.1:8001\n"
                        "backend = weighted 127.0.0.1:8002\n"
                        "backend = moved 127.0.0.1:8003\n"
                        "backend = role 127.0.0.1:8004\n"
                        "backend = gone 127.0.0.1:8005\n"
                        "backend = runtime 127.0.0.1:8007\n");
    cf2 = test_gen_load("[pool a]\nlisten = 127.0.0.1:7001\n"
                        "allow = 127.0.0.0/8\n"
                        "backend = kept 127.0.0.1:8001\n"
                        "backend = weighted 127.0.0.1:8002 weight=7 "
                        "max_conns=9\n"
                        "backend = moved 127.0.0.1:9003\n"
                        "backend = role 127.0.0.1:8004 backup\n"
                        "backend = fresh 127.0.0.1:8006\n"
                        "backend = runtime 127.0.0.1:8007\n");
    g1 = gen_create(cf1, NULL, NULL, &keep, NULL, NULL);
    cr_assert_not_null(g1);
    kept = test_gen_backend(g1, "kept");
    weighted = test_gen_backend(g1, "weighted");
    moved = test_gen_backend(g1, "moved");
    role = test_gen_backend(g1, "role");
    backend_set_weight(kept, 3);        /* set at runtime: survives */
    /* Moved at runtime (admin API, discovery), the file unchanged: the
     * diff says kept, so it is the same backend, not a second verdict
     * from the running address. */
    runtime = test_gen_backend(g1, "runtime");
    cr_assert_eq(config_parse_addr("127.0.0.1:9007", &moved_to), 0);
    cr_assert_eq(backend_readdress(runtime, &moved_to, false), 0);

    cr_assert_eq(config_diff(cf1, cf2, &d), 0);
    g2 = gen_create(cf2, g1, &d, &keep, NULL, NULL);
    cr_assert_not_null(g2);
    cr_expect_eq(test_gen_backend(g2, "kept"), kept);
    cr_expect_eq(atomic_load(&kept->weight), 3, "runtime weight kept");
    cr_expect_eq(test_gen_backend(g2, "weighted"), weighted);
    cr_expect_eq(atomic_load(&weighted->weight), 7, "the file's new weight");
    cr_expect_eq(atomic_load(&weighted->max_conns), 9);
    cr_expect_neq(test_gen_backend(g2, "moved"), moved, "a new address");
    cr_expect_neq(test_gen_backend(g2, "role"), role, "a new role");
    cr_expect_not_null(test_gen_backend(g2, "fresh"));
    cr_expect_eq(test_gen_backend(g2, "runtime"), runtime);
    cr_expect_str_eq(backend_addr(runtime)->text, "127.0.0.1:9007");
    cr_expect_null(test_gen_backend(g2, "gone"));

    config_diff_deinit(&d);
    gen_retire(g1);
    gen_retire(g2);
    gen_keep_free(keep);
}
