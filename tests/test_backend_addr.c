/*
 * test_backend_addr.c: a backend moved to a new address (DNS answer
 * changed, POST .../address): checked first while sessions still go to
 * the old one, committed after <rise> passes, old addresses kept alive
 * for readers that still hold them; and a backend added at runtime is
 * down until its first checks pass.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/config.h"

static struct backend *
mk(const char *text, bool unchecked)
{
    struct config_backend cb;

    memset(&cb, 0, sizeof(cb));
    snprintf(cb.name, sizeof(cb.name), "r1");
    cr_assert_eq(config_parse_addr(text, &cb.addr), MQ_OK);
    cb.weight = 1;
    return unchecked ? backend_create_unchecked(&cb, "p", true)
                     : backend_create(&cb, "p");
}

static struct config_addr
addr(const char *text)
{
    struct config_addr a;

    cr_assert_eq(config_parse_addr(text, &a), MQ_OK);
    return a;
}

Test(backend_addr, new_address_is_checked_before_it_is_used)
{
    struct backend *b = mk("127.0.0.1:7001", false);
    struct config_addr a2 = addr("127.0.0.2:7002");
    const struct config_addr *held = backend_addr(b);
    struct backend_check chk;
    uint64_t v0 = atomic_load(&b->version);

    cr_assert_eq(backend_readdress(b, &a2, true), MQ_OK);
    cr_assert_str_eq(backend_addr(b)->text, "127.0.0.1:7001",
                     "sessions still go to the old address");
    cr_assert_not_null(backend_next_addr(b));
    cr_assert_str_eq(backend_next_addr(b)->text, "127.0.0.2:7002");

    /* a failed trial: reason kept, health untouched, still the old */
    cr_assert(!backend_next_verdict(b, false, "refused", 1, 2));
    backend_get_check(b, &chk);
    cr_assert_str_eq(chk.reason, "new address 127.0.0.2:7002: refused");
    cr_assert(atomic_load(&b->up));
    cr_assert(!backend_next_verdict(b, true, "", 1, 2));
    cr_assert_str_eq(backend_addr(b)->text, "127.0.0.1:7001");
    cr_assert(backend_next_verdict(b, true, "", 1, 2), "rise = 2 passes");
    cr_assert_str_eq(backend_addr(b)->text, "127.0.0.2:7002");
    cr_assert_null(backend_next_addr(b));
    cr_assert_gt(atomic_load(&b->version), v0, "the balancer sees it");
    /* a reader that held the old address still reads it */
    cr_assert_str_eq(held->text, "127.0.0.1:7001");
    backend_release(b);
}

Test(backend_addr, back_to_the_current_address_cancels_the_trial)
{
    struct backend *b = mk("127.0.0.1:7001", false);
    struct config_addr a1 = addr("127.0.0.1:7001");
    struct config_addr a2 = addr("127.0.0.2:7002");
    struct config_addr a3 = addr("127.0.0.3:7003");

    cr_assert_eq(backend_readdress(b, &a2, true), MQ_OK);
    cr_assert_eq(backend_readdress(b, &a3, true), MQ_OK);
    cr_assert_str_eq(backend_next_addr(b)->text, "127.0.0.3:7003",
                     "the newest answer is the one on trial");
    cr_assert_eq(backend_readdress(b, &a1, true), MQ_OK);
    cr_assert_null(backend_next_addr(b));
    cr_assert(!backend_next_verdict(b, true, "", 1, 1));
    cr_assert_str_eq(backend_addr(b)->text, "127.0.0.1:7001");
    backend_release(b);
}

Test(backend_addr, unchecked_readdress_is_immediate)
{
    struct backend *b = mk("127.0.0.1:7001", false);
    struct config_addr a2 = addr("[::1]:7002");

    cr_assert_eq(backend_readdress(b, &a2, false), MQ_OK);
    cr_assert_str_eq(backend_addr(b)->text, "[::1]:7002");
    cr_assert_eq(backend_addr(b)->ss.ss_family, AF_INET6);
    backend_release(b);
}

Test(backend_addr, runtime_backend_is_down_until_checked)
{
    struct backend *b = mk("127.0.0.1:7001", true);

    cr_assert(!atomic_load(&b->up));
    cr_assert_eq(backend_state(b), BACKEND_DOWN);
    cr_assert(!backend_is_eligible(b));
    cr_assert(!backend_check_done(b, true, "", 1, 2, 3));
    cr_assert(backend_check_done(b, true, "", 1, 2, 3), "up after rise");
    cr_assert_eq(backend_state(b), BACKEND_UP);
    backend_release(b);
}

Test(backend_addr, tls_name_follows_the_dns_name_not_the_address)
{
    struct config_backend cb;
    struct config_addr a2 = addr("127.0.0.2:7001");
    struct backend *b;
    char out[400];

    memset(&cb, 0, sizeof(cb));
    snprintf(cb.name, sizeof(cb.name), "r1");
    cr_assert_eq(config_parse_addr("127.0.0.1:7001", &cb.addr), MQ_OK);
    snprintf(cb.addr.text, sizeof(cb.addr.text), "r1.mqlb.test:7001");
    snprintf(cb.host, sizeof(cb.host), "r1.mqlb.test");
    cb.port = 7001;
    cb.is_name = 1;
    cb.weight = 1;
    b = backend_create(&cb, "p");
    backend_tls_addr(b, out, sizeof(out));
    cr_assert_str_eq(out, "r1.mqlb.test:7001");
    /* DNS moved it: the address is numeric now, the server name is not */
    cr_assert_eq(backend_readdress(b, &a2, false), MQ_OK);
    cr_assert_str_eq(backend_addr(b)->text, "127.0.0.2:7001");
    backend_tls_addr(b, out, sizeof(out));
    cr_assert_str_eq(out, "r1.mqlb.test:7001");
    /* moved by hand to an IP address: no name any more */
    b->host[0] = '\0';
    a2 = addr("[::1]:7002");
    cr_assert_eq(backend_readdress(b, &a2, false), MQ_OK);
    backend_tls_addr(b, out, sizeof(out));
    cr_assert_str_eq(out, "[::1]:7002");
    backend_release(b);
}
