/*
 * defer_accept = off | on | auto: the key's parsing and which pools auto
 * defers (the protocols whose client speaks first).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "mqlb/config.h"

/* A pool with <extra> lines; NULL when the file does not load. */
static struct config *
test_defer_load(const char *extra, struct config_errors *errs)
{
    char text[512];

    snprintf(text, sizeof(text), "[pool p]\nlisten = 127.0.0.1:7001\n%s"
             "backend = a 127.0.0.1:7002\n", extra);
    memset(errs, 0, sizeof(*errs));
    return config_load_string(text, "t.ini", errs);
}

/* Does pool p of a file with <extra> defer accept? */
static bool
test_defer_of(const char *extra)
{
    struct config_errors errs;
    struct config *cf;
    bool on;

    cf = test_defer_load(extra, &errs);
    cr_assert_not_null(cf, "did not load: %s", errs.nmsgs ? errs.msgs[0] : "");
    on = config_pool_defer_accept(&cf->pools[0]);
    config_destroy(cf);
    config_errors_deinit(&errs);
    return on;
}

Test(config_defer, off_by_default)
{
    cr_expect_not(test_defer_of(""));
    cr_expect_not(test_defer_of("health_check = redis\n"),
                  "auto is not the default");
}

Test(config_defer, on_and_off_are_explicit)
{
    cr_expect(test_defer_of("defer_accept = on\n"));
    cr_expect(test_defer_of("defer_accept = on\nhealth_check = nats\n"),
              "on means on, whatever the protocol");
    cr_expect_not(test_defer_of("defer_accept = off\nhealth_check = mqtt\n"));
}

Test(config_defer, auto_defers_where_the_client_speaks_first)
{
    cr_expect(test_defer_of("defer_accept = auto\nhealth_check = redis\n"));
    cr_expect(test_defer_of("defer_accept = auto\nhealth_check = redis-master\n"));
    cr_expect(test_defer_of("defer_accept = auto\nhealth_check = mqtt\n"));
    cr_expect(test_defer_of("defer_accept = auto\nhealth_check = amqp\n"));
    cr_expect(test_defer_of("defer_accept = auto\nhealth_check = kafka\n"));
    cr_expect_not(test_defer_of("defer_accept = auto\nhealth_check = nats\n"),
                  "NATS servers speak first");
    cr_expect_not(test_defer_of("defer_accept = auto\nhealth_check = tcp\n"),
                  "unknown protocol");
    cr_expect_not(test_defer_of("defer_accept = auto\nhealth_check = none\n"));
}

Test(config_defer, bad_value_is_reported_at_its_line)
{
    struct config_errors errs;
    struct config *cf;

    cf = test_defer_load("defer_accept = maybe\n", &errs);
    cr_expect_null(cf);
    config_destroy(cf);
    cr_assert_eq(errs.nmsgs, 1);
    cr_expect(strncmp(errs.msgs[0], "t.ini:3: ", 9) == 0, "%s", errs.msgs[0]);
    cr_expect(strstr(errs.msgs[0], "defer_accept") != NULL, "%s", errs.msgs[0]);
    config_errors_deinit(&errs);
}
