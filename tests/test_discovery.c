/*
 * test_discovery.c: names of discovered backends, what SRV records ask
 * for (priority, weight, names), and when DNS is asked again.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mqlb/common.h"
#include "mqlb/discovery.h"

static struct resolver_addr
ra(int family, const char *ip, unsigned port)
{
    struct resolver_addr a;

    memset(&a, 0, sizeof(a));
    if (family == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)&a.ss;

        s->sin_family = AF_INET;
        s->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, ip, &s->sin_addr);
        a.len = sizeof(*s);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&a.ss;

        s->sin6_family = AF_INET6;
        s->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, ip, &s->sin6_addr);
        a.len = sizeof(*s);
    }
    return a;
}

Test(discovery, address_names)
{
    struct resolver_addr a4 = ra(AF_INET, "10.0.0.5", 5672);
    struct resolver_addr a6 = ra(AF_INET6, "fd00::5", 5672);
    char name[CONFIG_NAME_LEN];

    discovery_addr_name("rabbit.svc", &a4, name);
    cr_assert_str_eq(name, "rabbit.svc-10.0.0.5");
    discovery_addr_name("rabbit.svc.", &a6, name);
    cr_assert_str_eq(name, "rabbit.svc-fd00--5");
    discovery_addr_name("rabbitmq-headless.messaging-production.svc.cluster.local",
                        &a4, name);
    cr_assert_str_eq(name, "rabbitmq-headless-10.0.0.5", "first label");
    cr_assert_lt(strlen(name), CONFIG_NAME_LEN);
}

Test(discovery, srv_lowest_priority_serves_rest_are_backups)
{
    struct resolver_srv s[4];
    struct discovery_want w[RESOLVER_MAX_SRV];
    size_t n;

    memset(s, 0, sizeof(s));
    strcpy(s[0].target, "r1.mqlb.test");
    s[0].port = 6379; s[0].priority = 10; s[0].weight = 30;
    strcpy(s[1].target, "r2.mqlb.test");
    s[1].port = 6379; s[1].priority = 10; s[1].weight = 70;
    strcpy(s[2].target, "r3.mqlb.test");
    s[2].port = 6379; s[2].priority = 20; s[2].weight = 0;
    strcpy(s[3].target, "r1.mqlb.test");
    s[3].port = 6379; s[3].priority = 10; s[3].weight = 30;   /* twice */
    n = discovery_srv_plan(s, 4, w);
    cr_assert_eq(n, 3, "one backend per target:port");
    cr_assert_str_eq(w[0].name, "r1.mqlb.test");
    cr_assert_str_eq(w[0].target, "r1.mqlb.test");
    cr_assert_eq(w[0].port, 6379);
    cr_assert_eq(w[0].weight, 30);
    cr_assert(!w[0].backup);
    cr_assert_eq(w[1].weight, 70);
    cr_assert(!w[1].backup);
    cr_assert_str_eq(w[2].name, "r3.mqlb.test");
    cr_assert(w[2].backup, "priority 20 > 10: backup");
    cr_assert_eq(w[2].weight, 1, "weight 0 is the least, 1");
    cr_assert(!w[2].resolved);
}

Test(discovery, srv_weights_scaled_and_ports_named)
{
    struct resolver_srv s[3];
    struct discovery_want w[RESOLVER_MAX_SRV];
    size_t n;

    memset(s, 0, sizeof(s));
    strcpy(s[0].target, "kafka-0.k.svc");
    s[0].port = 9092; s[0].weight = 1000;
    strcpy(s[1].target, "kafka-0.k.svc");
    s[1].port = 9093; s[1].weight = 500;
    strcpy(s[2].target, "kafka-1.k.svc");
    s[2].port = 9092; s[2].weight = 1;
    n = discovery_srv_plan(s, 3, w);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(w[0].name, "kafka-0.k.svc-9092");
    cr_assert_str_eq(w[1].name, "kafka-0.k.svc-9093");
    cr_assert_str_eq(w[2].name, "kafka-1.k.svc");
    cr_assert_eq(w[0].weight, 256);
    cr_assert_eq(w[1].weight, 128);
    cr_assert_eq(w[2].weight, 1);
}

Test(discovery, next_round_bounded_by_ttl_and_a_second)
{
    cr_assert_eq(discovery_next_ms(10000, RESOLVER_TTL_NONE), 10000);
    cr_assert_eq(discovery_next_ms(10000, 30), 10000);
    cr_assert_eq(discovery_next_ms(10000, 3), 3000);
    cr_assert_eq(discovery_next_ms(10000, 0), 1000);
    cr_assert_eq(discovery_next_ms(500, 5), 1000);
}
