/*
 * test_admin_guard.c: the admin port's Host rule (DNS rebinding) and
 * Origin rule (cross-site POST), as pure functions.
 */
#include <criterion/criterion.h>

#include "mqlb/admin_guard.h"
#include "mqlb/common.h"
#include "mqlb/config.h"

static struct config_addr
tg_addr(const char *text)
{
    struct config_addr a;

    cr_assert_eq(config_parse_addr(text, &a), MQ_OK, "%s", text);
    return a;
}

Test(admin_guard, loopback_listen_takes_its_ip_and_localhost_only)
{
    struct config_addr a = tg_addr("127.0.0.1:9000");

    cr_expect(admin_guard_host_ok(NULL, &a, NULL), "HTTP/1.0, no Host");
    cr_expect(admin_guard_host_ok("127.0.0.1:9000", &a, NULL));
    cr_expect(admin_guard_host_ok("127.0.0.1", &a, NULL));
    cr_expect(admin_guard_host_ok("localhost:9000", &a, NULL));
    cr_expect(admin_guard_host_ok("LocalHost.:9000", &a, NULL));
    /* DNS rebinding: any name pointed at 127.0.0.1 */
    cr_expect_not(admin_guard_host_ok("evil.example:9000", &a, NULL));
    cr_expect_not(admin_guard_host_ok("localhost.evil.example", &a, NULL));
    cr_expect_not(admin_guard_host_ok("127.0.0.2:9000", &a, NULL));
    cr_expect_not(admin_guard_host_ok("[::1]:9000", &a, NULL));
    cr_expect_not(admin_guard_host_ok("", &a, NULL));
    cr_expect_not(admin_guard_host_ok(":9000", &a, NULL));
    cr_expect_not(admin_guard_host_ok("::1", &a, NULL));
    cr_expect_not(admin_guard_host_ok("[::1", &a, NULL));
}

Test(admin_guard, allowed_hosts_add_names_without_case)
{
    struct config_addr a = tg_addr("127.0.0.1:9000");
    const char *names = "mqlb.example.com, lb1  Other.Example.";

    cr_expect(admin_guard_host_ok("mqlb.example.com:9000", &a, names));
    cr_expect(admin_guard_host_ok("MQLB.example.com", &a, names));
    cr_expect(admin_guard_host_ok("lb1:9000", &a, names));
    cr_expect(admin_guard_host_ok("other.example:9000", &a, names));
    cr_expect_not(admin_guard_host_ok("lb", &a, names));
    cr_expect_not(admin_guard_host_ok("example.com", &a, names));
    cr_expect_not(admin_guard_host_ok("x.mqlb.example.com", &a, names));
}

Test(admin_guard, wildcard_and_v6_and_named_listens)
{
    struct config_addr any4 = tg_addr("0.0.0.0:9000");
    struct config_addr any6 = tg_addr("[::]:9000");
    struct config_addr one6 = tg_addr("[::1]:9000");
    struct config_addr named = tg_addr("localhost:9000");

    /* An IP literal cannot be rebound: any of ours is fine. */
    cr_expect(admin_guard_host_ok("10.1.2.3:9000", &any4, NULL));
    cr_expect_not(admin_guard_host_ok("[fd00::1]:9000", &any4, NULL));
    cr_expect_not(admin_guard_host_ok("box.example:9000", &any4, NULL));
    cr_expect(admin_guard_host_ok("[fd00::1]:9000", &any6, NULL));
    cr_expect(admin_guard_host_ok("10.1.2.3:9000", &any6, NULL));
    cr_expect(admin_guard_host_ok("[::1]:9000", &one6, NULL));
    cr_expect(admin_guard_host_ok("localhost", &one6, NULL));
    cr_expect_not(admin_guard_host_ok("[::2]:9000", &one6, NULL));
    cr_expect(admin_guard_host_ok("localhost:9000", &named, NULL));
}

Test(admin_guard, origin_must_be_the_admin_port_itself)
{
    cr_expect(admin_guard_origin_ok(NULL, "127.0.0.1:9000"), "curl");
    cr_expect(admin_guard_origin_ok("http://127.0.0.1:9000",
                                    "127.0.0.1:9000"));
    cr_expect(admin_guard_origin_ok("HTTPS://LB.example", "lb.example"));
    cr_expect_not(admin_guard_origin_ok("http://evil.example",
                                        "127.0.0.1:9000"));
    cr_expect_not(admin_guard_origin_ok("http://127.0.0.1:9001",
                                        "127.0.0.1:9000"));
    cr_expect_not(admin_guard_origin_ok("http://127.0.0.1:9000.evil",
                                        "127.0.0.1:9000"));
    cr_expect_not(admin_guard_origin_ok("null", "127.0.0.1:9000"));
    cr_expect_not(admin_guard_origin_ok("127.0.0.1:9000", "127.0.0.1:9000"));
    cr_expect_not(admin_guard_origin_ok("http://127.0.0.1:9000", NULL));
}
