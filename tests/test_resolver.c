/*
 * test_resolver.c: the resolvers list, DNS answer parsing (TTL, SRV) from
 * hand-built messages, and a lookup through the libev side (hosts file).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <string.h>

#include "mqlb/common.h"
#include "mqlb/resolver.h"

/* A DNS message under construction. */
struct msg {
    unsigned char   b[1024];
    size_t          n;
};

static void
put8(struct msg *m, unsigned v)
{
    m->b[m->n++] = (unsigned char)v;
}

static void
put16(struct msg *m, unsigned v)
{
    put8(m, v >> 8);
    put8(m, v & 0xff);
}

static void
put32(struct msg *m, uint32_t v)
{
    put16(m, v >> 16);
    put16(m, v & 0xffff);
}

static void
put_name(struct msg *m, const char *name)
{
    const char *dot;
    size_t len;

    while (*name != '\0') {
        dot = strchr(name, '.');
        len = dot != NULL ? (size_t)(dot - name) : strlen(name);
        put8(m, (unsigned)len);
        memcpy(m->b + m->n, name, len);
        m->n += len;
        name += len + (dot != NULL);
    }
    put8(m, 0);
}

/* A response header and question for <qname>/SRV with <an> answers. */
static void
begin(struct msg *m, const char *qname, unsigned an)
{
    m->n = 0;
    put16(m, 0x1234);
    put16(m, 0x8180);
    put16(m, 1);
    put16(m, an);
    put16(m, 0);
    put16(m, 0);
    put_name(m, qname);
    put16(m, 33);
    put16(m, 1);
}

/* An SRV answer whose owner is a pointer to the question name. */
static void
srv(struct msg *m, uint32_t ttl, unsigned prio, unsigned weight,
    unsigned port, const char *target)
{
    size_t rdlen_at;

    put16(m, 0xc00c);
    put16(m, 33);
    put16(m, 1);
    put32(m, ttl);
    rdlen_at = m->n;
    put16(m, 0);
    put16(m, prio);
    put16(m, weight);
    put16(m, port);
    put_name(m, target);
    m->b[rdlen_at] = (unsigned char)((m->n - rdlen_at - 2) >> 8);
    m->b[rdlen_at + 1] = (unsigned char)((m->n - rdlen_at - 2) & 0xff);
}

Test(resolver, servers_list_becomes_cares_csv)
{
    char out[256], err[MQ_ERR_LEN];

    cr_assert_eq(resolver_servers_csv("127.0.0.1:5353", out, sizeof(out),
                                      err), MQ_OK);
    cr_assert_str_eq(out, "127.0.0.1:5353");
    cr_assert_eq(resolver_servers_csv(" 10.0.0.1, [::1]:54 10.0.0.2:53",
                                      out, sizeof(out), err), MQ_OK);
    cr_assert_str_eq(out, "10.0.0.1:53,[::1]:54,10.0.0.2:53");
    cr_assert_eq(resolver_servers_csv("[fe80::1]", out, sizeof(out), err),
                 MQ_OK);
    cr_assert_str_eq(out, "[fe80::1]:53");
}

Test(resolver, bad_servers_say_why)
{
    char out[256], err[MQ_ERR_LEN];

    cr_assert_eq(resolver_servers_csv("dns.example.com", out, sizeof(out),
                                      err), MQ_ERR);
    cr_assert(strstr(err, "expected an IP address") != NULL, "%s", err);
    cr_assert_eq(resolver_servers_csv("127.0.0.1:0", out, sizeof(out), err),
                 MQ_ERR);
    cr_assert(strstr(err, "1..65535") != NULL, "%s", err);
    cr_assert_eq(resolver_servers_csv("127.0.0.1:99999", out, sizeof(out),
                                      err), MQ_ERR);
    cr_assert_eq(resolver_servers_csv("[::1", out, sizeof(out), err),
                 MQ_ERR);
    cr_assert_eq(resolver_servers_csv("1.2.3", out, sizeof(out), err),
                 MQ_ERR);
    cr_assert_eq(resolver_servers_csv(" , ", out, sizeof(out), err), MQ_ERR);
    cr_assert(strstr(err, "no address") != NULL, "%s", err);
}

Test(resolver, answer_ttl_is_the_smallest)
{
    struct msg m;
    uint32_t ttl;

    begin(&m, "_amqp._tcp.rabbit.svc", 3);
    srv(&m, 30, 10, 5, 5672, "rabbit-0.rabbit.svc");
    srv(&m, 7, 10, 5, 5672, "rabbit-1.rabbit.svc");
    srv(&m, 0x80000005u, 10, 5, 5672, "rabbit-2.rabbit.svc");
    cr_assert_eq(resolver_answer_ttl(m.b, m.n, &ttl), MQ_OK);
    cr_assert_eq(ttl, 0, "a negative TTL counts as 0, got %u", ttl);

    begin(&m, "_amqp._tcp.rabbit.svc", 2);
    srv(&m, 30, 10, 5, 5672, "rabbit-0.rabbit.svc");
    srv(&m, 7, 10, 5, 5672, "rabbit-1.rabbit.svc");
    cr_assert_eq(resolver_answer_ttl(m.b, m.n, &ttl), MQ_OK);
    cr_assert_eq(ttl, 7);

    begin(&m, "_amqp._tcp.rabbit.svc", 0);
    cr_assert_eq(resolver_answer_ttl(m.b, m.n, &ttl), MQ_OK);
    cr_assert_eq(ttl, RESOLVER_TTL_NONE);
}

Test(resolver, malformed_answers_are_refused)
{
    struct msg m;
    uint32_t ttl;
    size_t cut;

    begin(&m, "_amqp._tcp.rabbit.svc", 1);
    srv(&m, 30, 10, 5, 5672, "rabbit-0.rabbit.svc");
    for (cut = 0; cut < m.n; cut++) {
        cr_assert_eq(resolver_answer_ttl(m.b, cut, &ttl), MQ_ERR,
                     "truncated at %zu", cut);
    }
    /* a label type 0x40 (obsolete) in the question */
    begin(&m, "a", 0);
    m.b[12] = 0x41;
    cr_assert_eq(resolver_answer_ttl(m.b, m.n, &ttl), MQ_ERR);
    /* an answer count larger than what is there */
    begin(&m, "a", 5);
    cr_assert_eq(resolver_answer_ttl(m.b, m.n, &ttl), MQ_ERR);
}

Test(resolver, srv_records_sorted_by_priority_then_target)
{
    struct resolver_result res;
    struct msg m;

    begin(&m, "_redis._tcp.mqlb.test", 4);
    srv(&m, 60, 20, 1, 6381, "c.mqlb.test");
    srv(&m, 60, 10, 30, 6380, "b.mqlb.test");
    srv(&m, 5, 10, 70, 6379, "a.mqlb.test.");
    srv(&m, 60, 10, 1, 0, "zero-port.mqlb.test");
    memset(&res, 0, sizeof(res));
    cr_assert_eq(resolver_parse_srv(m.b, m.n, &res), MQ_OK, "%s",
                 res.error);
    cr_assert_eq(res.nsrvs, 3, "port 0 is skipped");
    cr_assert_str_eq(res.srvs[0].target, "a.mqlb.test");
    cr_assert_eq(res.srvs[0].port, 6379);
    cr_assert_eq(res.srvs[0].weight, 70);
    cr_assert_str_eq(res.srvs[1].target, "b.mqlb.test");
    cr_assert_eq(res.srvs[1].priority, 10);
    cr_assert_str_eq(res.srvs[2].target, "c.mqlb.test");
    cr_assert_eq(res.srvs[2].priority, 20);
    cr_assert_eq(res.ttl_s, 5);
}

Test(resolver, srv_dot_target_means_no_service)
{
    struct resolver_result res;
    struct msg m;

    begin(&m, "_redis._tcp.mqlb.test", 1);
    srv(&m, 60, 0, 0, 0, "");
    memset(&res, 0, sizeof(res));
    cr_assert_eq(resolver_parse_srv(m.b, m.n, &res), MQ_ERR);
    cr_assert_str_eq(res.error, "no records of that type");
}

/* ---- the libev side ---------------------------------------------------- */

struct got {
    int                     calls;
    struct resolver_result  res;
};

static void
got_cb(void *arg, const struct resolver_result *res)
{
    struct got *g = arg;

    g->calls++;
    g->res = *res;
}

static void
stop_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)t;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

Test(resolver, lookup_on_a_libev_loop_uses_the_hosts_file)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    char err[MQ_ERR_LEN], text[64];
    struct resolver *r;
    struct got g;
    struct sockaddr_in *sin;
    ev_timer guard;

    memset(&g, 0, sizeof(g));
    /* a server that does not exist: only the hosts file can answer */
    r = resolver_create(loop, "127.0.0.1:1", err);
    cr_assert_not_null(r, "%s", err);
    cr_assert_eq(resolver_lookup(r, "localhost", 6379, got_cb, &g), MQ_OK);
    ev_timer_init(&guard, stop_cb, 5., 0.);
    ev_timer_start(loop, &guard);
    while (g.calls == 0 && ev_is_active(&guard)) {
        ev_run(loop, EVRUN_ONCE);
    }
    cr_assert_eq(g.calls, 1);
    cr_assert_str_eq(g.res.error, "");
    cr_assert_geq(g.res.naddrs, 1);
    cr_assert_eq(g.res.addrs[0].ss.ss_family, AF_INET, "IPv4 comes first");
    sin = (struct sockaddr_in *)&g.res.addrs[0].ss;
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
    cr_assert_str_eq(text, "127.0.0.1");
    cr_assert_eq(ntohs(sin->sin_port), 6379);
    resolver_destroy(r);
    ev_timer_stop(loop, &guard);
    ev_loop_destroy(loop);
}

Test(resolver, destroy_cancels_queries_in_flight)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    char err[MQ_ERR_LEN];
    struct resolver *r;
    struct got g;

    memset(&g, 0, sizeof(g));
    r = resolver_create(loop, "127.0.0.1:1", err);
    cr_assert_not_null(r, "%s", err);
    cr_assert_eq(resolver_srv(r, "_x._tcp.nowhere.invalid", got_cb, &g),
                 MQ_OK);
    resolver_destroy(r);
    cr_assert_eq(g.calls, 1);
    cr_assert_str_eq(g.res.error, "cancelled");
    ev_loop_destroy(loop);
}

Test(resolver, blocking_lookup_reports_a_dead_server_in_time)
{
    struct resolver_addr a;
    char err[MQ_ERR_LEN];
    uint64_t t0 = mq_now_ms();

    cr_assert_eq(resolver_lookup_sync("127.0.0.1:1", "nowhere.invalid", 80,
                                      300, &a, err), MQ_ERR);
    cr_assert(mq_now_ms() - t0 < 3000, "bounded by the timeout");
    cr_assert_eq(resolver_lookup_sync("127.0.0.1:1", "localhost", 80, 2000,
                                      &a, err), MQ_OK, "%s", err);
    cr_assert_eq(a.ss.ss_family, AF_INET);
}
