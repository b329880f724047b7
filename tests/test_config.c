/*
 * test_config.c: the INI file from strings. A full file with every key,
 * each class of error with its FILE:LINE, every error reported at once,
 * and the typed value parsers (durations, sizes, integers, addresses,
 * escapes).
 */
#include <arpa/inet.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <glob.h>

#include "mqlb/common.h"
#include "mqlb/config.h"
#include "mqlb/config_diff.h"
#include "mqlb/log.h"

/* Every error of the last load, one per line, for failure messages. */
static char test_config_all[8192];

static void
test_config_join(const struct config_errors *errs)
{
    size_t i, n = 0;

    test_config_all[0] = '\0';
    for (i = 0; i < errs->nmsgs && n < sizeof(test_config_all); i++) {
        n += (size_t)snprintf(test_config_all + n,
                              sizeof(test_config_all) - n, "\n  %s",
                              errs->msgs[i]);
    }
}

/* Load <text> as "t.ini"; the caller owns the result and <errs>. */
static struct config *
test_config_load(const char *text, struct config_errors *errs)
{
    struct config *cf;

    memset(errs, 0, sizeof(*errs));
    cf = config_load_string(text, "t.ini", errs);
    test_config_join(errs);
    return cf;
}

/* true if some error starts with "t.ini:LINE: " and contains <phrase>. */
static bool
test_config_has(const struct config_errors *errs, int line,
                const char *phrase)
{
    char prefix[32];
    size_t i;

    snprintf(prefix, sizeof(prefix), "t.ini:%d: ", line);
    for (i = 0; i < errs->nmsgs; i++) {
        if (strncmp(errs->msgs[i], prefix, strlen(prefix)) == 0 &&
            strstr(errs->msgs[i], phrase) != NULL) {
            return true;
        }
    }
    return false;
}

/* Load <text>, expect it to fail with exactly one error at <line>. */
static void
test_config_expect_one(const char *text, int line, const char *phrase)
{
    struct config_errors errs;
    struct config *cf;

    cf = test_config_load(text, &errs);
    cr_expect_null(cf, "loaded although it should fail:\n%s", text);
    config_destroy(cf);
    cr_expect_eq(errs.nmsgs, 1, "expected 1 error, got %zu:%s\nfor:\n%s",
                 errs.nmsgs, test_config_all, text);
    cr_expect(test_config_has(&errs, line, phrase),
              "no error 't.ini:%d: ...%s...' in:%s\nfor:\n%s", line, phrase,
              test_config_all, text);
    config_errors_deinit(&errs);
}

static const struct sockaddr_in *
test_config_v4(const struct config_addr *a)
{
    cr_assert_eq(a->ss.ss_family, AF_INET, "%s is not IPv4", a->text);
    cr_assert_eq(a->len, sizeof(struct sockaddr_in));
    return (const struct sockaddr_in *)&a->ss;
}

static const struct sockaddr_in6 *
test_config_v6(const struct config_addr *a)
{
    cr_assert_eq(a->ss.ss_family, AF_INET6, "%s is not IPv6", a->text);
    cr_assert_eq(a->len, sizeof(struct sockaddr_in6));
    return (const struct sockaddr_in6 *)&a->ss;
}

/* ---- a valid file ------------------------------------------------------ */

/* Every key of etc/mqlb.ini, each set away from its default. */
static const char test_config_full[] =
    "; a full file\n"                                   /*  1 */
    "[global]\n"                                        /*  2 */
    "workers = 4\n"                                     /*  3 */
    "max_connections = 5000\n"                          /*  4 */
    "log_level = debug\n"                               /*  5 */
    "log_format = json\n"                               /*  6 */
    "shutdown_timeout = 250ms\n"                        /*  7 */
    "user = nobody\n"                                   /*  8 */
    "\n"                                                /*  9 */
    "[admin]\n"                                         /* 10 */
    "listen = [::1]:9100\n"                             /* 11 */
    "token = s3cret\n"                                  /* 12 */
    "\n"                                                /* 13 */
    "[pool redis]\n"                                    /* 14 */
    "listen = 127.0.0.1:6400\n"                         /* 15 */
    "listen = [::1]:6400\n"                             /* 16 */
    "balance = leastconn\n"                             /* 17 */
    "health_check = send-expect\n"                      /* 18 */
    "check_interval = 5m\n"                             /* 19 */
    "check_timeout = 2s\n"                              /* 20 */
    "rise = 4\n"                                        /* 21 */
    "fall = 5\n"                                        /* 22 */
    "check_send = PING\\r\\n\n"                         /* 23 */
    "check_expect = +PONG\\x0d\n"                       /* 24 */
    "check_path = /healthz\n"                           /* 25 */
    "connect_timeout = 1500ms\n"                        /* 26 */
    "idle_timeout = 1h\n"                               /* 27 */
    "tcp_keepalive = 60s:10s:5\n"                       /* 28 */
    "retries = 1\n"                                     /* 29 */
    "max_fails = 7\n"                                   /* 30 */
    "slow_start = 30s\n"                                /* 31 */
    "on_backend_down = close\n"                         /* 32 */
    "max_conns_per_backend = 50\n"                      /* 33 */
    "max_conns_per_source = 9\n"                        /* 34 */
    "proxy_protocol = v2\n"                             /* 35 */
    "allow = 127.0.0.0/8 ::1\n"                         /* 36 */
    "allow = 10.0.0.0/8,192.168.1.0/24\n"               /* 37 */
    "backend = r1 127.0.0.1:6401 weight=3\n"            /* 38 */
    "backend = r2 127.0.0.1:6402 weight=1 max_conns=1000\n" /* 39 */
    "backend = spare [::1]:6404 backup weight=0\n"      /* 40 */
    /* Keys added since: at the end, so that the lines above stay. */
    "discover = dns brokers.example:5672\n"             /* 41 */
    "max_session_duration = 12h\n"
    "max_queue = 500\n"
    "queue_timeout = 1500ms\n"
    "max_connect_rate = 100\n"
    "rebalance = paced\n"
    "rebalance_rate = 50/s\n"
    "rebalance_tolerance = 5%\n"
    "rebalance_min_age = 1m\n"
    "sni = a.test *.b.test\n"
    "tls_key = /etc/mqlb/key.pem\n"
    "tls_min_version = 1.3\n"
    "tls_ciphers = ECDHE+AESGCM\n"
    "tls_ciphersuites = TLS_AES_128_GCM_SHA256\n"
    "tls_alpn = mqtt,amqp\n"
    "tls_handshake_timeout = 2s\n"
    "tls_session_tickets = off\n"
    "tls_client_ca = /etc/mqlb/clients-ca.pem\n"
    "tls_verify_client = optional\n"
    "backend_tls = on\n"
    "backend_tls_ca = /etc/mqlb/brokers-ca.pem\n"
    "backend_tls_verify = off\n"
    "backend_tls_sni = broker.example.com\n"
    "replay = on\n"
    "defer_accept = auto\n"
    "check_proxy_protocol = addresses\n"
    "check_reset = on\n"
    "check_user = checker\n"
    "check_password = pa55\n"
    "check_vhost = /prod\n"
    "[admin]\n"
    "allowed_hosts = mqlb.example.com lb1\n"
    "[global]\n"
    "resolvers = 127.0.0.1:53\n"
    "resolve_interval = 30s\n"
    "control_socket = /run/mqlb/test.sock\n"
    "state_file = /var/lib/mqlb/state\n";

Test(config, full_file_sets_every_key)
{
    struct config_errors errs;
    struct config *cf;
    const struct config_pool *p;
    const struct sockaddr_in6 *s6;
    const struct sockaddr_in *s4;

    cf = test_config_load(test_config_full, &errs);
    cr_assert_not_null(cf, "errors:%s", test_config_all);
    cr_expect_eq(errs.nmsgs, 0);

    cr_expect_str_eq(cf->path, "t.ini");
    cr_expect_eq(cf->workers, 4);
    cr_expect_eq(cf->max_connections, 5000);
    cr_expect_eq(cf->log_level, LOG_DEBUG);
    cr_expect_eq(cf->log_format, LOG_FORMAT_JSON);
    cr_expect_eq(cf->shutdown_timeout_ms, 250);
    cr_expect_str_eq(cf->user, "nobody");
    s6 = test_config_v6(&cf->admin_listen);
    cr_expect(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
    cr_expect_eq(ntohs(s6->sin6_port), 9100);
    cr_expect_eq(cf->admin_listen.line, 11);
    cr_expect_str_eq(cf->admin_token, "s3cret");

    cr_assert_eq(cf->npools, 1);
    p = &cf->pools[0];
    cr_expect_str_eq(p->name, "redis");
    cr_expect_eq(p->line, 14);

    cr_assert_eq(p->nlistens, 2);
    s4 = test_config_v4(&p->listens[0]);
    cr_expect_eq(ntohl(s4->sin_addr.s_addr), INADDR_LOOPBACK);
    cr_expect_eq(ntohs(s4->sin_port), 6400);
    cr_expect_str_eq(p->listens[0].text, "127.0.0.1:6400");
    cr_expect_eq(p->listens[0].line, 15);
    s6 = test_config_v6(&p->listens[1]);
    cr_expect(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
    cr_expect_eq(ntohs(s6->sin6_port), 6400);
    cr_expect_str_eq(p->listens[1].text, "[::1]:6400");
    cr_expect_eq(p->listens[1].line, 16);

    cr_expect_eq(p->balance, BALANCE_LEASTCONN);
    cr_expect_eq(p->check, CHECK_SEND_EXPECT);
    cr_expect_eq(p->check_interval_ms, 5 * 60 * 1000);
    cr_expect_eq(p->check_timeout_ms, 2000);
    cr_expect_eq(p->rise, 4);
    cr_expect_eq(p->fall, 5);
    cr_assert_eq(p->check_send_len, 6);
    cr_expect_eq(memcmp(p->check_send, "PING\r\n", 6), 0);
    cr_assert_eq(p->check_expect_len, 6);
    cr_expect_eq(memcmp(p->check_expect, "+PONG\r", 6), 0);
    cr_expect_str_eq(p->check_path, "/healthz");
    cr_expect_eq(p->check_reset, 1);
    cr_expect_eq(p->connect_timeout_ms, 1500);
    cr_expect_eq(p->idle_timeout_ms, 3600 * 1000);
    cr_expect(p->keepalive.on);
    cr_expect_eq(p->keepalive.idle_s, 60);
    cr_expect_eq(p->keepalive.interval_s, 10);
    cr_expect_eq(p->keepalive.count, 5);
    cr_expect_eq(p->retries, 1);
    cr_expect_eq(p->max_fails, 7);
    cr_expect_eq(p->slow_start_ms, 30000);
    cr_expect(p->close_on_down);
    cr_expect_eq(p->max_conns_per_backend, 50);
    cr_expect_eq(p->max_conns_per_source, 9);
    cr_expect_eq(p->proxy_protocol, PROXY_PROTOCOL_V2);
    cr_expect_eq(p->replay, REPLAY_ON);
    cr_expect_eq(p->defer_accept, DEFER_AUTO);
    cr_expect_eq(p->nallow, 4, "allow blocks: %zu", p->nallow);
    if (p->nallow == 4) {
        /* 127.0.0.0/8 as v4-mapped: 96 + 8 bits. */
        cr_expect_eq(p->allow[0].prefix, 104);
        cr_expect_eq(p->allow[0].addr[10], 0xff);
        cr_expect_eq(p->allow[0].addr[12], 127);
        cr_expect_eq(p->allow[1].prefix, 128);
        cr_expect_eq(p->allow[1].addr[15], 1);
        cr_expect_eq(p->allow[2].prefix, 104);
        cr_expect_eq(p->allow[3].prefix, 120);
        cr_expect_eq(p->allow[3].addr[14], 1);
    }

    cr_assert_eq(p->nbackends, 3);
    cr_expect_str_eq(p->backends[0].name, "r1");
    cr_expect_str_eq(p->backends[0].addr.text, "127.0.0.1:6401");
    cr_expect_eq(ntohs(test_config_v4(&p->backends[0].addr)->sin_port),
                 6401);
    cr_expect_eq(p->backends[0].weight, 3);
    cr_expect_eq(p->backends[0].max_conns, 50,
                 "max_conns=0 takes max_conns_per_backend");
    cr_expect_not(p->backends[0].backup);
    cr_expect_eq(p->backends[0].line, 38);
    cr_expect_str_eq(p->backends[1].name, "r2");
    cr_expect_eq(p->backends[1].weight, 1);
    cr_expect_eq(p->backends[1].max_conns, 1000);
    cr_expect_not(p->backends[1].backup);
    cr_expect_str_eq(p->backends[2].name, "spare");
    cr_expect_eq(ntohs(test_config_v6(&p->backends[2].addr)->sin6_port),
                 6404);
    cr_expect_eq(p->backends[2].weight, 0);
    cr_expect(p->backends[2].backup);
    cr_expect_eq(p->backends[2].line, 40);

    config_destroy(cf);
    config_errors_deinit(&errs);
}

Test(config, defaults_apply_when_keys_are_absent)
{
    struct config_errors errs;
    struct config *cf;
    const struct config_pool *p;

    cf = test_config_load("[pool p]\nlisten = 127.0.0.1:7001\n"
                          "backend = a 127.0.0.1:7002\n", &errs);
    cr_assert_not_null(cf, "errors:%s", test_config_all);
    cr_expect_gt(cf->workers, 0, "workers = 0 resolves to the CPU count");
    cr_expect_eq(cf->max_connections, 0, "auto: sized at start");
    cr_expect_eq(cf->log_level, LOG_INFO);
    cr_expect_eq(cf->shutdown_timeout_ms, 30000);
    cr_expect_null(cf->user);
    cr_expect_null(cf->admin_token);
    cr_expect_str_eq(cf->admin_listen.text, "127.0.0.1:9000");
    p = &cf->pools[0];
    cr_expect_eq(p->balance, BALANCE_ROUNDROBIN);
    cr_expect_eq(p->check, CHECK_TCP);
    cr_expect_eq(p->check_interval_ms, 2000);
    cr_expect_eq(p->check_timeout_ms, 1000);
    cr_expect_eq(p->rise, 2);
    cr_expect_eq(p->fall, 3);
    cr_expect_eq(p->check_send_len, 0);
    cr_expect_str_eq(p->check_path, "/");
    cr_expect_eq(p->connect_timeout_ms, 3000);
    cr_expect_eq(p->idle_timeout_ms, 3600 * 1000);
    cr_expect_not(p->keepalive.on);
    cr_expect_eq(p->retries, 2);
    cr_expect_eq(p->max_fails, 3);
    cr_expect_eq(p->slow_start_ms, 0);
    cr_expect_not(p->close_on_down);
    cr_expect_eq(p->proxy_protocol, PROXY_PROTOCOL_OFF);
    cr_expect_eq(p->replay, REPLAY_OFF, "replay is off by default");
    cr_expect_null(p->allow);
    cr_expect_eq(p->nallow, 0);
    cr_expect_eq(p->backends[0].weight, 1);
    cr_expect_eq(p->backends[0].max_conns, 0);
    config_destroy(cf);
    config_errors_deinit(&errs);
}

Test(config, shipped_example_file_loads)
{
    struct config_errors errs = { 0 };
    struct config *cf;

    cf = config_load("etc/mqlb.ini", &errs);
    test_config_join(&errs);
    cr_assert_not_null(cf, "etc/mqlb.ini (run from the repository root):%s",
                       test_config_all);
    cr_expect_eq(cf->npools, 1);
    cr_expect_eq(cf->pools[0].nbackends, 3);
    cr_expect_eq(cf->pools[0].backends[2].max_conns, 1000);
    config_destroy(cf);
    config_errors_deinit(&errs);
}

Test(config, missing_file_is_reported)
{
    struct config_errors errs = { 0 };

    cr_expect_null(config_load("/nonexistent/mqlb.ini", &errs));
    cr_assert_eq(errs.nmsgs, 1);
    cr_expect(strstr(errs.msgs[0], "/nonexistent/mqlb.ini:0: cannot open")
              == errs.msgs[0], "got %s", errs.msgs[0]);
    config_errors_deinit(&errs);
}

Test(config, indented_lines_work_normally)
{
    struct config_errors errs;
    struct config *cf;

    cf = test_config_load("  [global]\n"
                          "\tworkers = 3\n"
                          "    ; an indented comment\n"
                          "   [pool p]\n"
                          "      listen = 127.0.0.1:7001\n"
                          "\t  backend = a 127.0.0.1:7002\n"
                          "      backend = b 127.0.0.1:7003\n", &errs);
    cr_assert_not_null(cf, "errors:%s", test_config_all);
    cr_expect_eq(cf->workers, 3);
    cr_assert_eq(cf->npools, 1);
    cr_expect_eq(cf->pools[0].nlistens, 1);
    cr_assert_eq(cf->pools[0].nbackends, 2,
                 "an indented line is not a continuation of the one above");
    cr_expect_str_eq(cf->pools[0].backends[0].addr.text, "127.0.0.1:7002");
    cr_expect_str_eq(cf->pools[0].backends[1].name, "b");
    config_destroy(cf);
    config_errors_deinit(&errs);
}

Test(config, inline_comment_is_stripped)
{
    struct config_errors errs;
    struct config *cf;
    const struct config_pool *p;

    cf = test_config_load("[pool p] ; the only pool\n"
                          "listen = 127.0.0.1:7001   ; v4\n"
                          "balance = leastconn ; comment\n"
                          "idle_timeout = 5m\t; tab before the comment\n"
                          "health_check = send-expect\n"
                          "check_expect = +OK;x\n"
                          "backend = a 127.0.0.1:7002 weight=2 ; first\n",
                          &errs);
    cr_assert_not_null(cf, "errors:%s", test_config_all);
    p = &cf->pools[0];
    cr_expect_str_eq(p->name, "p");
    cr_expect_str_eq(p->listens[0].text, "127.0.0.1:7001");
    cr_expect_eq(p->balance, BALANCE_LEASTCONN);
    cr_expect_eq(p->idle_timeout_ms, 5 * 60 * 1000);
    /* Only " ;" starts a comment: a ';' inside a value stays. */
    cr_expect_eq(p->check_expect_len, 5);
    cr_expect_eq(memcmp(p->check_expect, "+OK;x", 5), 0);
    cr_expect_eq(p->backends[0].weight, 2);
    config_destroy(cf);
    config_errors_deinit(&errs);
}

Test(config, crlf_line_endings_work)
{
    struct config_errors errs;
    struct config *cf;

    cf = test_config_load("[pool p]\r\nlisten = 127.0.0.1:7001\r\n"
                          "check_send = A\r\n"
                          "backend = a 127.0.0.1:7002\r\n", &errs);
    cr_assert_not_null(cf, "errors:%s", test_config_all);
    cr_expect_eq(cf->pools[0].check_send_len, 1);
    cr_expect_str_eq(cf->pools[0].backends[0].addr.text, "127.0.0.1:7002");
    config_destroy(cf);
    config_errors_deinit(&errs);
}

Test(config, non_loopback_admin_with_token_is_accepted)
{
    struct config_errors errs;
    struct config *cf;

    cf = test_config_load("[admin]\nlisten = *:9100\ntoken = t\n"
                          "[pool p]\nlisten = 127.0.0.1:7001\n"
                          "backend = a 127.0.0.1:7002\n", &errs);
    cr_assert_not_null(cf, "errors:%s", test_config_all);
    cr_expect_eq(test_config_v4(&cf->admin_listen)->sin_addr.s_addr,
                 htonl(INADDR_ANY));
    config_destroy(cf);
    config_errors_deinit(&errs);
}

Test(config, line_of_198_characters_is_accepted)
{
    char text[512];
    struct config_errors errs;
    struct config *cf;

    /* "check_path = /" is 14 characters; inih's buffer holds 198 plus
     * "\n\0". */
    snprintf(text, sizeof(text), "[pool p]\ncheck_path = /%0184d\n"
             "listen = 127.0.0.1:7001\n"
             "backend = a 127.0.0.1:7002\n", 0);
    cf = test_config_load(text, &errs);
    cr_assert_not_null(cf, "errors:%s", test_config_all);
    cr_expect_eq(strlen(cf->pools[0].check_path), 185);
    config_destroy(cf);
    config_errors_deinit(&errs);
}

/* ---- one error each, at its line --------------------------------------- */

/*
 * A valid file with three slots: line 2 in [global], line 4 in [admin],
 * line 8 in [pool p]. Each case fills one slot with a bad line.
 */
#define TEST_CONFIG_TEMPLATE                                            \
    "[global]\n%s\n[admin]\n%s\n[pool p]\nlisten = 127.0.0.1:7001\n"    \
    "backend = a 127.0.0.1:7002\n%s\n"

struct test_config_case {
    char        slot;       /* 'g', 'a' or 'p' */
    const char *line;       /* the bad line */
    const char *phrase;     /* expected in the message */
};

static void
test_config_run_case(const struct test_config_case *c)
{
    char text[1024];
    int line;

    snprintf(text, sizeof(text), TEST_CONFIG_TEMPLATE,
             c->slot == 'g' ? c->line : "", c->slot == 'a' ? c->line : "",
             c->slot == 'p' ? c->line : "");
    line = c->slot == 'g' ? 2 : c->slot == 'a' ? 4 : 8;
    test_config_expect_one(text, line, c->phrase);
}

Test(config, template_without_bad_line_is_valid)
{
    char text[1024];
    struct config_errors errs;
    struct config *cf;

    snprintf(text, sizeof(text), TEST_CONFIG_TEMPLATE, "", "", "");
    cf = test_config_load(text, &errs);
    cr_expect_not_null(cf, "errors:%s", test_config_all);
    config_destroy(cf);
    config_errors_deinit(&errs);
}

Test(config, bad_value_of_each_typed_key_is_reported_with_its_line)
{
    static const struct test_config_case cases[] = {
        { 'g', "workers = many",
          "workers = many: expected a whole number from 0 to 256" },
        { 'g', "workers = 257", "expected a whole number from 0 to 256" },
        { 'g', "workers = -1", "expected a whole number" },
        { 'g', "max_connections = 0",
          "max_connections = 0: expected auto or a whole number from 1 to "
          "10000000" },
        { 'g', "log_level = loud",
          "log_level = loud: expected error | warn | notice | info | "
          "debug" },
        { 'g', "user = no-such-user-here",
          "user = no-such-user-here: no such user on this system" },
        { 'g', "log_format = xml", "log_format = xml: expected text | json" },
        { 'g', "shutdown_timeout = 30",
          "shutdown_timeout = 30: expected a duration" },
        { 'a', "listen = nowhere",
          "listen = nowhere: expected HOST:PORT, :PORT or [IPV6]:PORT" },
        { 'a', "listen = 127.0.0.1:0",
          "listen = 127.0.0.1:0: port 0 is out of range (1-65535)" },
        { 'a', "listen = no-such-host.invalid:9000",
          "listen = no-such-host.invalid:9000: host 'no-such-host.invalid' "
          "does not resolve" },
        { 'p', "listen = 1.2.3:7009",
          "listen = 1.2.3:7009: '1.2.3' is not an IPv4 address" },
        { 'p', "listen = [::1]7009",
          "listen = [::1]7009: expected [IPV6]:PORT" },
        { 'p', "listen = ::1:7009", "an IPv6 address goes in brackets" },
        { 'p', "listen = 127.0.0.1:http", "port 'http' is not a number" },
        { 'p', "listen = [nope]:7009", "'nope' is not an IPv6 address" },
        { 'p', "balance = weighted",
          "balance = weighted: expected roundrobin | leastconn | source" },
        { 'p', "health_check = ping", "health_check = ping: expected tcp" },
        { 'p', "check_interval = 0",
          "check_interval = 0: must be greater than 0" },
        { 'p', "check_timeout = 2x",
          "check_timeout = 2x: expected a duration" },
        { 'p', "connect_timeout = -1s", "connect_timeout = -1s: expected" },
        { 'p', "idle_timeout = forever", "idle_timeout = forever: expected" },
        { 'p', "slow_start = 1d", "slow_start = 1d: expected a duration" },
        { 'p', "rise = 0", "rise = 0: expected a whole number from 1 to 1000" },
        { 'p', "fall = 1001", "fall = 1001: expected a whole number" },
        { 'p', "retries = 257", "retries = 257: expected a whole number "
          "from 0 to 256" },
        { 'p', "max_fails = x", "max_fails = x: expected a whole number" },
        { 'p', "max_conns_per_backend = -1",
          "max_conns_per_backend = -1: expected" },
        { 'p', "max_conns_per_source = 10000001",
          "max_conns_per_source = 10000001: expected" },
        { 'p', "check_send = \\q", "check_send = \\q: bad escape" },
        { 'p', "check_expect = \\xZZ", "check_expect = \\xZZ: bad escape" },
        { 'p', "check_path = health",
          "check_path = health: expected a path starting with '/'" },
        { 'p', "tcp_keepalive = 500ms",
          "tcp_keepalive = 500ms: expected off or IDLE" },
        { 'p', "tcp_keepalive = 60s:10s:5:1", "expected off or IDLE" },
        { 'p', "tcp_keepalive = 60s:10s:200", "expected off or IDLE" },
        { 'p', "tcp_keepalive = on", "expected off or IDLE" },
        { 'p', "on_backend_down = drop",
          "on_backend_down = drop: expected keep | close" },
        { 'p', "proxy_protocol = v3",
          "proxy_protocol = v3: expected off | v1 | v2" },
        { 'p', "allow = 10.0.0.0/33",
          "allow: '10.0.0.0/33' is not an address or CIDR block" },
        { 'p', "allow = ::1 nowhere", "allow: 'nowhere' is not an address" },
        { 'p', "backend = b 127.0.0.1:7003 weight=257",
          "backend b: weight=257: weight is 0..256" },
        { 'p', "backend = b 127.0.0.1:7003 max_conns=x",
          "backend b: max_conns=x: max_conns is 0..10000000" },
        { 'p', "backend = b 127.0.0.1:7003 primary",
          "backend b: unknown option 'primary' (weight=N" },
        { 'p', "backend = b 127.0.0.1:7003 weigth=3",
          "backend b: unknown option 'weigth=3', did you mean 'weight'?" },
        { 'p', "backend = b", "backend = b: expected NAME HOST:PORT" },
        { 'p', "backend = b/c 127.0.0.1:7003", "backend name 'b/c'" },
        { 'p', "backend = b 1.2.3:7003",
          "backend b: address '1.2.3:7003': '1.2.3' is not an IPv4 "
          "address" },
        { 'p', "backend = b 127.0.0.1:70000",
          "address '127.0.0.1:70000': port 70000 is out of range "
          "(1-65535)" },
        { 'p', "backend = b no-such-host.invalid:7003",
          "backend b: address 'no-such-host.invalid:7003': host "
          "'no-such-host.invalid' does not resolve" },
    };
    size_t i;

    for (i = 0; i < MQ_NELEMS(cases); i++) {
        test_config_run_case(&cases[i]);
    }
}

Test(config, unknown_section_is_reported_with_its_line)
{
    test_config_expect_one("[pool p]\nlisten = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n"
                           "\n"
                           "[pools q]\n"
                           "colour = red\n", 5,
                           "unknown section [pools q] (expected [global], "
                           "[admin] or [pool NAME])");
}

Test(config, misspelt_section_suggests_the_nearest)
{
    test_config_expect_one("[pool p]\nlisten = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n"
                           "[pools q]\n", 4,
                           "did you mean [pool q]?");
    test_config_expect_one("[globl]\n"
                           "[pool p]\nlisten = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n", 1,
                           "unknown section [globl] (expected [global], "
                           "[admin] or [pool NAME]), did you mean [global]?");
}

Test(config, bad_pool_name_is_reported_with_its_line)
{
    test_config_expect_one("[pool p]\nlisten = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n"
                           "[pool a/b]\n", 4,
                           "[pool a/b]: a pool name is 1-63 of");
}

Test(config, section_header_without_bracket_is_reported)
{
    test_config_expect_one("[pool p]\nlisten = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n"
                           "[global\n", 4, "section header without ']'");
}

Test(config, unknown_key_is_reported_with_its_line)
{
    test_config_expect_one("[global]\nworkers = 1\n"
                           "[pool p]\nlisten = 127.0.0.1:7001\n"
                           "colour = red\n"
                           "backend = a 127.0.0.1:7002\n", 5,
                           "unknown key 'colour' in [pool]");
    test_config_expect_one("[global]\nbalance = leastconn\n"
                           "[pool p]\nlisten = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n", 2,
                           "unknown key 'balance' in [global]");
    test_config_expect_one("[admin]\nworkers = 1\n"
                           "[pool p]\nlisten = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n", 2,
                           "unknown key 'workers' in [admin]");
}

Test(config, key_outside_a_section_is_reported)
{
    test_config_expect_one("\n; header comment\nworkers = 2\n"
                           "[pool p]\nlisten = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n", 3,
                           "'workers' outside any section");
}

Test(config, line_without_equals_is_reported)
{
    test_config_expect_one("[pool p]\nlisten = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n"
                           "round robin please\n", 4,
                           "expected 'key = value'");
}

Test(config, key_set_twice_is_reported_at_the_second)
{
    test_config_expect_one("[pool p]\nlisten = 127.0.0.1:7001\n"
                           "balance = leastconn\n"
                           "backend = a 127.0.0.1:7002\n"
                           "balance = random\n", 5,
                           "'balance' is set twice in this section");
    test_config_expect_one("[global]\nworkers = 1\nworkers = 1\n"
                           "[pool p]\nlisten = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n", 3,
                           "'workers' is set twice");
}

Test(config, same_key_in_two_pools_is_not_twice)
{
    struct config_errors errs;
    struct config *cf;

    cf = test_config_load("[pool p]\nlisten = 127.0.0.1:7001\n"
                          "balance = leastconn\n"
                          "backend = a 127.0.0.1:7002\n"
                          "[pool q]\nlisten = 127.0.0.1:7011\n"
                          "balance = random\n"
                          "backend = a 127.0.0.1:7012\n", &errs);
    cr_assert_not_null(cf, "errors:%s", test_config_all);
    cr_expect_eq(cf->npools, 2);
    cr_expect_eq(cf->pools[1].balance, BALANCE_RANDOM);
    config_destroy(cf);
    config_errors_deinit(&errs);
}

Test(config, line_too_long_is_an_error_not_a_silent_cut)
{
    char text[1024];

    /*
     * 250 characters: inih would cut it at 199 and read the rest as a
     * line of its own. The key would then take a truncated value.
     */
    snprintf(text, sizeof(text), "[global]\nuser = %0243d\n"
             "[pool p]\nlisten = 127.0.0.1:7001\n"
             "backend = a 127.0.0.1:7002\n", 0);
    test_config_expect_one(text, 2, "line too long (250 characters");
    snprintf(text, sizeof(text), "[global]\nuser = %0192d\n"
             "[pool p]\nlisten = 127.0.0.1:7001\n"
             "backend = a 127.0.0.1:7002\n", 0);
    test_config_expect_one(text, 2, "line too long (199 characters; "
                           "at most 198)");
}

Test(config, bad_address_is_reported_with_its_line)
{
    test_config_expect_one("[pool p]\nlisten = 127.0.0.1\n"
                           "listen = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n", 2,
                           "listen = 127.0.0.1: expected HOST:PORT");
}

Test(config, duplicate_pool_is_reported_at_the_second)
{
    test_config_expect_one("[pool p]\nlisten = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n"
                           "\n"
                           "[pool p]\nlisten = 127.0.0.1:7011\n"
                           "backend = a 127.0.0.1:7012\n", 5,
                           "duplicate pool name 'p' (first on line 1)");
}

Test(config, duplicate_backend_name_is_reported_at_the_second)
{
    test_config_expect_one("[pool p]\nlisten = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n"
                           "backend = b 127.0.0.1:7003\n"
                           "backend = a 127.0.0.1:7004\n", 5,
                           "[pool p]: duplicate backend name 'a' (first on "
                           "line 3)");
}

Test(config, listen_used_twice_is_reported)
{
    test_config_expect_one("[pool p]\nlisten = 127.0.0.1:7001\n"
                           "listen = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n", 3,
                           "listen 127.0.0.1:7001 is given twice");
    test_config_expect_one("[pool p]\nlisten = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n"
                           "[pool q]\nlisten = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n", 5,
                           "listen 127.0.0.1:7001 is already used by pool "
                           "'p'");
}

Test(config, pool_without_listen_is_reported_at_its_header)
{
    test_config_expect_one("[global]\nworkers = 1\n\n[pool p]\n"
                           "backend = a 127.0.0.1:7002\n", 4,
                           "[pool p]: no 'listen' address");
}

Test(config, pool_without_backend_is_reported_at_its_header)
{
    test_config_expect_one("[global]\nworkers = 1\n\n[pool p]\n"
                           "listen = 127.0.0.1:7001\n", 4,
                           "[pool p]: no 'backend'");
}

Test(config, file_without_pool_is_reported)
{
    test_config_expect_one("[global]\nworkers = 1\n", 2,
                           "no [pool NAME] section");
}

Test(config, non_loopback_admin_without_token_is_reported)
{
    test_config_expect_one("[global]\nworkers = 1\n"
                           "[admin]\nlisten = 0.0.0.0:9100\n"
                           "[pool p]\nlisten = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n", 4,
                           "[admin] listen 0.0.0.0:9100 is not loopback: "
                           "set a token");
    test_config_expect_one("[admin]\nlisten = [::]:9100\n"
                           "[pool p]\nlisten = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n", 2,
                           "is not loopback");
}

Test(config, send_expect_without_check_expect_is_reported)
{
    /* At the health_check line, not at the [pool] header. */
    test_config_expect_one("[global]\n"
                           "[pool p]\nlisten = 127.0.0.1:7001\n"
                           "health_check = send-expect\n"
                           "check_send = PING\\r\\n\n"
                           "backend = a 127.0.0.1:7002\n", 4,
                           "[pool p]: health_check = send-expect needs "
                           "check_expect");
}

/* ---- check_timeout: min(1s, check_interval) unless written ----------- */

static uint64_t
test_config_check_timeout(const char *keys)
{
    char text[512];
    struct config_errors errs;
    struct config *cf;
    uint64_t ms;

    snprintf(text, sizeof(text), "[pool p]\nlisten = 127.0.0.1:7001\n%s"
             "backend = a 127.0.0.1:7002\n", keys);
    cf = test_config_load(text, &errs);
    cr_assert_not_null(cf, "refused:%s\nfor:\n%s", test_config_all, text);
    ms = cf->pools[0].check_timeout_ms;
    config_destroy(cf);
    config_errors_deinit(&errs);
    return ms;
}

Test(config, check_timeout_defaults_to_the_smaller_of_1s_and_the_interval)
{
    /* Only check_interval written: a default the user never wrote is
     * never an error. */
    cr_expect_eq(test_config_check_timeout("check_interval = 500ms\n"), 500);
    cr_expect_eq(test_config_check_timeout("check_interval = 1ms\n"), 1);
    cr_expect_eq(test_config_check_timeout("check_interval = 5s\n"), 1000);
    cr_expect_eq(test_config_check_timeout(""), 1000);
    /* After check_timeout in the file, too. */
    cr_expect_eq(test_config_check_timeout("check_timeout = 300ms\n"
                                           "check_interval = 200ms\n"), 300);
}

Test(config, explicit_check_timeout_longer_than_the_interval_is_allowed)
{
    cr_expect_eq(test_config_check_timeout("check_interval = 1s\n"
                                           "check_timeout = 1001ms\n"),
                 1001);
    cr_expect_eq(test_config_check_timeout("check_interval = 100ms\n"
                                           "check_timeout = 5s\n"), 5000);
}

Test(config, check_timeout_default_is_per_pool)
{
    struct config_errors errs;
    struct config *cf;

    cf = test_config_load("[pool p]\nlisten = 127.0.0.1:7001\n"
                          "check_interval = 300ms\n"
                          "backend = a 127.0.0.1:7002\n"
                          "[pool q]\nlisten = 127.0.0.1:7011\n"
                          "check_timeout = 2s\n"
                          "backend = a 127.0.0.1:7012\n"
                          "[pool r]\nlisten = 127.0.0.1:7021\n"
                          "backend = a 127.0.0.1:7022\n", &errs);
    cr_assert_not_null(cf, "errors:%s", test_config_all);
    cr_expect_eq(cf->pools[0].check_timeout_ms, 300);
    cr_expect_eq(cf->pools[1].check_timeout_ms, 2000);
    cr_expect_eq(cf->pools[2].check_timeout_ms, 1000);
    config_destroy(cf);
    config_errors_deinit(&errs);
}

/* ---- messages in the user's terms --------------------------------------- */

Test(config, unknown_key_suggests_the_nearest_known_key)
{
    test_config_expect_one("[pool p]\nlisten = 127.0.0.1:7001\n"
                           "healthcheck = redis\n"
                           "backend = a 127.0.0.1:7002\n", 3,
                           "unknown key 'healthcheck' in [pool], did you "
                           "mean 'health_check'?");
    test_config_expect_one("[pool p]\nlisten = 127.0.0.1:7001\n"
                           "check_intervall = 1s\n"
                           "backend = a 127.0.0.1:7002\n", 3,
                           "did you mean 'check_interval'?");
    test_config_expect_one("[global]\nworker = 2\n"
                           "[pool p]\nlisten = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n", 2,
                           "did you mean 'workers'?");
}

Test(config, misspelt_keyword_suggests_the_nearest)
{
    test_config_expect_one("[pool p]\nlisten = 127.0.0.1:7001\n"
                           "balance = leastconns\n"
                           "backend = a 127.0.0.1:7002\n", 3,
                           "balance = leastconns: expected roundrobin | "
                           "leastconn | source | random | mqtt-client-id, "
                           "did you mean 'leastconn'?");
    test_config_expect_one("[pool p]\nlisten = 127.0.0.1:7001\n"
                           "health_check = rediss\n"
                           "backend = a 127.0.0.1:7002\n", 3,
                           "did you mean 'redis'?");
}

Test(config, unknown_key_far_from_any_suggests_nothing)
{
    struct config_errors errs;
    struct config *cf;

    cf = test_config_load("[pool p]\nlisten = 127.0.0.1:7001\n"
                          "colour = red\n"
                          "backend = a 127.0.0.1:7002\n", &errs);
    cr_expect_null(cf);
    cr_assert_eq(errs.nmsgs, 1, "%s", test_config_all);
    cr_expect_null(strstr(errs.msgs[0], "did you mean"), "%s",
                   errs.msgs[0]);
    config_errors_deinit(&errs);
}

Test(config, key_of_another_section_says_where_it_belongs)
{
    test_config_expect_one("[global]\ntoken = s3cret\n"
                           "[pool p]\nlisten = 127.0.0.1:7001\n"
                           "backend = a 127.0.0.1:7002\n", 2,
                           "unknown key 'token' in [global]: 'token' "
                           "belongs in [admin]");
    test_config_expect_one("[pool p]\nlisten = 127.0.0.1:7001\n"
                           "workers = 2\n"
                           "backend = a 127.0.0.1:7002\n", 3,
                           "'workers' belongs in [global]");
}

Test(config, listen_without_host_means_every_ipv4_address)
{
    struct config_errors errs;
    struct config *cf;
    const struct sockaddr_in *s4;
    const struct sockaddr_in6 *s6;

    cf = test_config_load("[admin]\nlisten = 127.0.0.1:9100\n"
                          "[pool p]\nlisten = :7001\nlisten = *:7002\n"
                          "listen = [::]:7003\n"
                          "backend = a 127.0.0.1:7002\n", &errs);
    cr_assert_not_null(cf, "errors:%s", test_config_all);
    s4 = test_config_v4(&cf->pools[0].listens[0]);
    cr_expect_eq(s4->sin_addr.s_addr, htonl(INADDR_ANY));
    cr_expect_eq(ntohs(s4->sin_port), 7001);
    s4 = test_config_v4(&cf->pools[0].listens[1]);
    cr_expect_eq(s4->sin_addr.s_addr, htonl(INADDR_ANY));
    cr_expect_eq(ntohs(s4->sin_port), 7002);
    s6 = test_config_v6(&cf->pools[0].listens[2]);
    cr_expect(IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr));
    cr_expect_eq(ntohs(s6->sin6_port), 7003);
    cr_expect_str_eq(cf->pools[0].listens[0].text, ":7001");
    config_destroy(cf);
    config_errors_deinit(&errs);
}

Test(config, log_level_takes_every_documented_level)
{
    static const struct { const char *name; int level; } levels[] = {
        { "error", LOG_ERROR }, { "warn", LOG_WARN },
        { "notice", LOG_NOTICE }, { "info", LOG_INFO },
        { "debug", LOG_DEBUG },
    };
    char text[256];
    struct config_errors errs;
    struct config *cf;
    size_t i;

    for (i = 0; i < MQ_NELEMS(levels); i++) {
        snprintf(text, sizeof(text), "[global]\nlog_level = %s\n"
                 "[pool p]\nlisten = 127.0.0.1:7001\n"
                 "backend = a 127.0.0.1:7002\n", levels[i].name);
        cf = test_config_load(text, &errs);
        cr_assert_not_null(cf, "log_level = %s:%s", levels[i].name,
                           test_config_all);
        cr_expect_eq(cf->log_level, levels[i].level);
        config_destroy(cf);
        config_errors_deinit(&errs);
    }
}

Test(config, errors_sort_by_line_when_the_file_name_has_a_colon)
{
    struct config_errors errs = { 0 };
    struct config *cf;

    /* "a:9" must not be read as line 9. */
    cf = config_load_string("[pool p]\nlisten = 127.0.0.1:7001\n"
                            "health_check = send-expect\n"
                            "balance = wat\n"
                            "backend = a 127.0.0.1:7002\n", "a:9/t.ini",
                            &errs);
    cr_expect_null(cf);
    cr_assert_eq(errs.nmsgs, 2);
    cr_expect(strncmp(errs.msgs[0], "a:9/t.ini:3: ", 13) == 0, "%s",
              errs.msgs[0]);
    cr_expect(strncmp(errs.msgs[1], "a:9/t.ini:4: ", 13) == 0, "%s",
              errs.msgs[1]);
    config_errors_deinit(&errs);
}

Test(config, max_connections_auto_is_the_default_and_can_be_written)
{
    struct config_errors errs;
    struct config *cf;

    cf = test_config_load("[global]\nmax_connections = auto\n"
                          "[pool p]\nlisten = 127.0.0.1:7001\n"
                          "backend = a 127.0.0.1:7002\n", &errs);
    cr_assert_not_null(cf, "errors:%s", test_config_all);
    cr_expect_eq(cf->max_connections, 0);
    config_destroy(cf);
    config_errors_deinit(&errs);
}

Test(config, listen_name_takes_the_first_address_the_resolver_gives)
{
    struct addrinfo hints, *res;
    struct config_addr a;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    cr_assert_eq(getaddrinfo("localhost", "7002", &hints, &res), 0);
    cr_assert_eq(config_parse_addr("localhost:7002", &a), MQ_OK);
    cr_expect_eq(a.len, res->ai_addrlen);
    cr_expect_eq(memcmp(&a.ss, res->ai_addr, res->ai_addrlen), 0);
    freeaddrinfo(res);
}

Test(config, every_error_is_reported_at_once_in_line_order)
{
    static const char text[] =
        "[global]\n"                            /*  1 */
        "workers = lots\n"                      /*  2 bad uint */
        "colour = red\n"                        /*  3 unknown key */
        "[admin]\n"                             /*  4 */
        "listen = 0.0.0.0:9100\n"               /*  5 no token */
        "[pool p]\n"                            /*  6 */
        "listen = 127.0.0.1:7001\n"             /*  7 */
        "health_check = send-expect\n"          /*  8 no check_expect */
        "balance = leastconn\n"                 /*  9 */
        "balance = random\n"                    /* 10 twice */
        "check_interval = 2\n"                  /* 11 bad duration */
        "backend = a 127.0.0.1:7002\n"          /* 12 */
        "backend = a 127.0.0.1:7003\n"          /* 13 duplicate */
        "no equals sign here\n"                 /* 14 */
        "[wat]\n"                               /* 15 unknown section */
        "[pool q]\n"                            /* 16 no listen, backend */
        "allow = 1.2.3.4/40\n";                 /* 17 bad CIDR */
    static const struct { int line; const char *phrase; } want[] = {
        { 2, "workers = lots" },
        { 3, "unknown key 'colour'" },
        { 5, "is not loopback" },
        { 8, "needs check_expect" },
        { 10, "'balance' is set twice" },
        { 11, "check_interval = 2: expected a duration" },
        { 13, "duplicate backend name 'a'" },
        { 14, "expected 'key = value'" },
        { 15, "unknown section [wat]" },
        { 16, "[pool q]: no 'listen'" },
        { 16, "[pool q]: no 'backend'" },
        { 17, "allow: '1.2.3.4/40'" },
    };
    struct config_errors errs;
    struct config *cf;
    size_t i;

    cf = test_config_load(text, &errs);
    cr_expect_null(cf);
    config_destroy(cf);
    cr_expect_eq(errs.nmsgs, MQ_NELEMS(want), "expected %zu errors, got "
                 "%zu:%s", MQ_NELEMS(want), errs.nmsgs, test_config_all);
    for (i = 0; i < MQ_NELEMS(want); i++) {
        cr_expect(test_config_has(&errs, want[i].line, want[i].phrase),
                  "missing t.ini:%d: ...%s... in:%s", want[i].line,
                  want[i].phrase, test_config_all);
    }
    for (i = 0; i < errs.nmsgs && i < MQ_NELEMS(want); i++) {
        char prefix[32];

        snprintf(prefix, sizeof(prefix), "t.ini:%d: ", want[i].line);
        cr_expect(strncmp(errs.msgs[i], prefix, strlen(prefix)) == 0,
                  "error %zu out of line order:%s", i, test_config_all);
    }
    config_errors_deinit(&errs);
}

/* ---- typed value parsers ------------------------------------------------ */

Test(config, parse_duration_ms_takes_ms_s_m_h)
{
    static const struct { const char *text; uint64_t ms; } ok[] = {
        { "250ms", 250 }, { "2s", 2000 }, { "5m", 300000 },
        { "1h", 3600000 }, { "0", 0 }, { "0s", 0 }, { "0ms", 0 },
        { "1500ms", 1500 }, { "90s", 90000 },
    };
    uint64_t ms;
    size_t i;

    for (i = 0; i < MQ_NELEMS(ok); i++) {
        ms = 12345;
        cr_expect_eq(config_parse_duration_ms(ok[i].text, &ms), MQ_OK,
                     "'%s' rejected", ok[i].text);
        cr_expect_eq(ms, ok[i].ms, "'%s' gave %llu", ok[i].text,
                     (unsigned long long)ms);
    }
}

Test(config, parse_duration_ms_rejects_bad_text)
{
    static const char *const bad[] = {
        "", "5", "2x", "-1s", "+1s", " 1s", "1 s", "1s ", "s", "ms",
        "1.5s", "2S", "1sm", "1d",
        "18446744073709551615ms",       /* UINT64_MAX: no room for math */
        "99999999999999999999s",        /* strtoull overflow */
        "5124095577h",                  /* past UINT64_MAX / 1000 in ms */
    };
    uint64_t ms = 777;
    size_t i;

    for (i = 0; i < MQ_NELEMS(bad); i++) {
        cr_expect_eq(config_parse_duration_ms(bad[i], &ms), MQ_ERR,
                     "'%s' accepted as %llu", bad[i],
                     (unsigned long long)ms);
    }
    cr_expect_eq(ms, 777, "a rejected value is not stored");
}

Test(config, parse_size_takes_k_and_m)
{
    uint64_t n = 0;

    cr_expect_eq(config_parse_size("10k", &n), MQ_OK);
    cr_expect_eq(n, 10240);
    cr_expect_eq(config_parse_size("2m", &n), MQ_OK);
    cr_expect_eq(n, 2 * 1024 * 1024);
    cr_expect_eq(config_parse_size("7", &n), MQ_OK);
    cr_expect_eq(n, 7);
    cr_expect_eq(config_parse_size("3K", &n), MQ_OK);
    cr_expect_eq(n, 3072);
    cr_expect_eq(config_parse_size("1M", &n), MQ_OK);
    cr_expect_eq(n, 1048576);
    cr_expect_eq(config_parse_size("0", &n), MQ_OK);
    cr_expect_eq(n, 0);
}

Test(config, parse_size_rejects_bad_text)
{
    static const char *const bad[] = {
        "", "k", "10g", "-1", "10kb", "10 k", "1.5k",
        "18446744073709551615k", "99999999999999999999",
    };
    uint64_t n = 5;
    size_t i;

    for (i = 0; i < MQ_NELEMS(bad); i++) {
        cr_expect_eq(config_parse_size(bad[i], &n), MQ_ERR, "'%s' accepted",
                     bad[i]);
    }
    cr_expect_eq(n, 5);
}

Test(config, parse_uint_checks_its_bounds)
{
    unsigned v = 99;

    cr_expect_eq(config_parse_uint("0", 0, 10, &v), MQ_OK);
    cr_expect_eq(v, 0);
    cr_expect_eq(config_parse_uint("10", 0, 10, &v), MQ_OK);
    cr_expect_eq(v, 10);
    cr_expect_eq(config_parse_uint("1", 1, 5, &v), MQ_OK);
    cr_expect_eq(v, 1);
    cr_expect_eq(config_parse_uint("4294967295", 0, UINT_MAX, &v), MQ_OK);
    cr_expect_eq(v, UINT_MAX);

    v = 99;
    cr_expect_eq(config_parse_uint("0", 1, 5, &v), MQ_ERR);
    cr_expect_eq(config_parse_uint("6", 1, 5, &v), MQ_ERR);
    cr_expect_eq(config_parse_uint("4294967296", 0, UINT_MAX, &v), MQ_ERR);
    cr_expect_eq(config_parse_uint("99999999999999999999", 0, UINT_MAX, &v),
                 MQ_ERR);
    cr_expect_eq(config_parse_uint("", 0, 10, &v), MQ_ERR);
    cr_expect_eq(config_parse_uint("-1", 0, 10, &v), MQ_ERR);
    cr_expect_eq(config_parse_uint("+1", 0, 10, &v), MQ_ERR);
    cr_expect_eq(config_parse_uint(" 1", 0, 10, &v), MQ_ERR);
    cr_expect_eq(config_parse_uint("1 ", 0, 10, &v), MQ_ERR);
    cr_expect_eq(config_parse_uint("3x", 0, 10, &v), MQ_ERR);
    cr_expect_eq(config_parse_uint("0x3", 0, 10, &v), MQ_ERR);
    cr_expect_eq(v, 99, "a rejected value is not stored");
}

Test(config, parse_addr_takes_v4_v6_wildcard_and_names)
{
    struct config_addr a;
    const struct sockaddr_in *s4;
    const struct sockaddr_in6 *s6;
    struct in6_addr v6;

    cr_assert_eq(config_parse_addr("127.0.0.1:80", &a), MQ_OK);
    s4 = test_config_v4(&a);
    cr_expect_eq(ntohl(s4->sin_addr.s_addr), INADDR_LOOPBACK);
    cr_expect_eq(ntohs(s4->sin_port), 80);
    cr_expect_str_eq(a.text, "127.0.0.1:80");

    cr_assert_eq(config_parse_addr("[::1]:5672", &a), MQ_OK);
    s6 = test_config_v6(&a);
    cr_expect(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
    cr_expect_eq(ntohs(s6->sin6_port), 5672);
    cr_expect_str_eq(a.text, "[::1]:5672");

    cr_assert_eq(config_parse_addr("[2001:db8::7]:65535", &a), MQ_OK);
    s6 = test_config_v6(&a);
    inet_pton(AF_INET6, "2001:db8::7", &v6);
    cr_expect_eq(memcmp(&s6->sin6_addr, &v6, 16), 0);
    cr_expect_eq(ntohs(s6->sin6_port), 65535);

    cr_assert_eq(config_parse_addr("*:80", &a), MQ_OK);
    s4 = test_config_v4(&a);
    cr_expect_eq(s4->sin_addr.s_addr, htonl(INADDR_ANY));
    cr_expect_eq(ntohs(s4->sin_port), 80);
    cr_expect_str_eq(a.text, "*:80");

    cr_assert_eq(config_parse_addr("localhost:80", &a), MQ_OK);
    if (a.ss.ss_family == AF_INET) {
        s4 = (const struct sockaddr_in *)&a.ss;
        cr_expect_eq(ntohl(s4->sin_addr.s_addr) >> 24, 127);
        cr_expect_eq(ntohs(s4->sin_port), 80);
    } else {
        s6 = test_config_v6(&a);
        cr_expect(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
        cr_expect_eq(ntohs(s6->sin6_port), 80);
    }
}

Test(config, parse_addr_rejects_bad_text)
{
    static const char *const bad[] = {
        "1.2.3:80",         /* getaddrinfo would read it as 1.2.0.3 */
        "256.1.1.1:80",
        "host",
        "1.2.3.4:0",
        "1.2.3.4:70000",
        "1.2.3.4:99999999999999999999999",
        "1.2.3.4:",
        "1.2.3.4:http",
        "1.2.3.4:-80",
        "[::1]80",
        "[::1]",
        "[::1]:",
        "[]:80",
        "[::1:80",
        "::1:80",           /* v6 needs brackets */
        "[not-v6]:80",
        "",
    };
    struct config_addr a;
    size_t i;

    for (i = 0; i < MQ_NELEMS(bad); i++) {
        cr_expect_eq(config_parse_addr(bad[i], &a), MQ_ERR, "'%s' accepted",
                     bad[i]);
    }
}

Test(config, unescape_turns_escapes_into_bytes)
{
    char *out = NULL;
    size_t len = 0;

    cr_assert_eq(config_unescape("\\r\\n", &out, &len), MQ_OK);
    cr_expect_eq(len, 2);
    cr_expect_eq(memcmp(out, "\r\n", 2), 0);
    free(out);

    cr_assert_eq(config_unescape("\\x41", &out, &len), MQ_OK);
    cr_expect_eq(len, 1);
    cr_expect_str_eq(out, "A");
    free(out);

    cr_assert_eq(config_unescape("a\\0b\\t\\\\\\xfF", &out, &len), MQ_OK);
    cr_expect_eq(len, 6);
    cr_expect_eq(memcmp(out, "a\0b\t\\\xff", 6), 0);
    free(out);

    cr_assert_eq(config_unescape("", &out, &len), MQ_OK);
    cr_expect_eq(len, 0);
    cr_expect_str_eq(out, "");
    free(out);
}

Test(config, unescape_rejects_bad_escapes)
{
    static const char *const bad[] = {
        "\\xZZ", "\\x4", "\\x", "\\xG1", "\\q", "abc\\", "\\R",
    };
    char *out = (char *)"untouched";
    size_t len = 42, i;

    for (i = 0; i < MQ_NELEMS(bad); i++) {
        cr_expect_eq(config_unescape(bad[i], &out, &len), MQ_ERR,
                     "'%s' accepted", bad[i]);
    }
    cr_expect_str_eq(out, "untouched");
    cr_expect_eq(len, 42);
}

/* ---- health checks behind PROXY and with credentials ------------------ */

#define TEST_POOL_HEAD  "[pool p]\nlisten = 127.0.0.1:7001\n"
#define TEST_POOL_TAIL  "backend = a 127.0.0.1:7002\n"

Test(config, check_reset_is_off_unless_asked)
{
    struct config_errors errs;
    struct config *cf;

    cf = test_config_load(TEST_POOL_HEAD "check_reset = on\n" TEST_POOL_TAIL
                          "[pool q]\nlisten = 127.0.0.1:7003\n"
                          TEST_POOL_TAIL, &errs);
    cr_assert_not_null(cf, "%s", test_config_all);
    cr_expect_eq(cf->pools[0].check_reset, 1);
    cr_expect_eq(cf->pools[1].check_reset, 0, "off by default");
    config_destroy(cf);
    config_errors_deinit(&errs);
    test_config_expect_one(TEST_POOL_HEAD "check_reset = yes\n"
                           TEST_POOL_TAIL, 3,
                           "check_reset = yes: expected off | on");
}

Test(config, check_proxy_protocol_follows_the_pool)
{
    struct config_errors errs;
    struct config *cf;

    cf = test_config_load(TEST_POOL_HEAD "proxy_protocol = v2\n"
                          TEST_POOL_TAIL
                          "[pool q]\nlisten = 127.0.0.1:7003\n"
                          "proxy_protocol = v1\ncheck_proxy_protocol = off\n"
                          TEST_POOL_TAIL
                          "[pool r]\nlisten = 127.0.0.1:7004\n"
                          "proxy_protocol = v1\ncheck_proxy_protocol = on\n"
                          TEST_POOL_TAIL
                          "[pool s]\nlisten = 127.0.0.1:7005\n"
                          TEST_POOL_TAIL, &errs);
    cr_assert_not_null(cf, "%s", test_config_all);
    cr_assert_eq(cf->pools[0].check_proxy_protocol, CHECK_PP_AUTO);
    cr_assert_eq(config_check_pp_version(&cf->pools[0]), 2);
    cr_assert_eq(config_check_pp_version(&cf->pools[1]), 0);
    cr_assert_eq(config_check_pp_version(&cf->pools[2]), 1);
    cr_assert_eq(config_check_pp_version(&cf->pools[3]), 0);
    config_destroy(cf);
    config_errors_deinit(&errs);
    test_config_expect_one(TEST_POOL_HEAD "check_proxy_protocol = on\n"
                           TEST_POOL_TAIL, 3,
                           "check_proxy_protocol = on needs proxy_protocol "
                           "= v1 or v2");
    test_config_expect_one(TEST_POOL_HEAD "check_proxy_protocol = v2\n"
                           TEST_POOL_TAIL, 3,
                           "check_proxy_protocol = v2: expected auto | on "
                           "| off | addresses");
    test_config_expect_one(TEST_POOL_HEAD "check_proxy_protocol = addresses\n"
                           TEST_POOL_TAIL, 3,
                           "check_proxy_protocol = addresses needs "
                           "proxy_protocol");
}

Test(config, check_credentials_are_kept_and_checked_per_kind)
{
    struct config_errors errs;
    struct config *cf;

    cf = test_config_load(TEST_POOL_HEAD "health_check = amqp\n"
                          "check_user = mqlb\ncheck_password = s3cr3t\n"
                          "check_vhost = /prod\n" TEST_POOL_TAIL, &errs);
    cr_assert_not_null(cf, "%s", test_config_all);
    cr_assert_str_eq(cf->pools[0].check_user, "mqlb");
    cr_assert_str_eq(cf->pools[0].check_password, "s3cr3t");
    cr_assert_str_eq(cf->pools[0].check_vhost, "/prod");
    config_destroy(cf);
    config_errors_deinit(&errs);

    /* Every kind that logs in, with what it needs. */
    cf = test_config_load(TEST_POOL_HEAD "health_check = redis\n"
                          "check_password = x\n" TEST_POOL_TAIL, &errs);
    cr_assert_not_null(cf, "%s", test_config_all);
    cr_assert_null(cf->pools[0].check_user);
    cr_assert_null(cf->pools[0].check_vhost);
    config_destroy(cf);
    config_errors_deinit(&errs);

    test_config_expect_one(TEST_POOL_HEAD "health_check = redis\n"
                           "check_user = u\n" TEST_POOL_TAIL, 4,
                           "check_user needs check_password");
    test_config_expect_one(TEST_POOL_HEAD "health_check = mqtt\n"
                           "check_password = p\n" TEST_POOL_TAIL, 4,
                           "check_password needs check_user");
    test_config_expect_one(TEST_POOL_HEAD "health_check = amqp\n"
                           "check_user = u\n" TEST_POOL_TAIL, 4,
                           "logs in with both check_user and "
                           "check_password");
    test_config_expect_one(TEST_POOL_HEAD "health_check = amqp\n"
                           "check_vhost = /\n" TEST_POOL_TAIL, 4,
                           "check_vhost needs check_user and "
                           "check_password");
    test_config_expect_one(TEST_POOL_HEAD "health_check = http\n"
                           "check_user = a:b\n" TEST_POOL_TAIL, 4,
                           "may not contain ':'");
}

Test(config, dump_shows_check_login_but_never_the_password)
{
    struct config_errors errs;
    struct config *cf;
    char *text = NULL;
    size_t len = 0;
    FILE *out;

    cf = test_config_load(TEST_POOL_HEAD "health_check = nats\n"
                          "proxy_protocol = v1\n"
                          "check_user = mqlb\ncheck_password = s3cr3t\n"
                          TEST_POOL_TAIL, &errs);
    cr_assert_not_null(cf, "%s", test_config_all);
    out = open_memstream(&text, &len);
    config_dump(cf, out);
    fclose(out);
    cr_assert(strstr(text, "check_proxy_protocol = auto\n") != NULL, "%s",
              text);
    cr_assert(strstr(text, "check_user = mqlb\n") != NULL, "%s", text);
    cr_assert(strstr(text, "check_password = <set>\n") != NULL, "%s", text);
    cr_assert(strstr(text, "s3cr3t") == NULL, "%s", text);
    free(text);
    config_destroy(cf);
    config_errors_deinit(&errs);
}

/* ---- -t output: a valid file that means the same ---------------------- */

/* config_dump of <cf> as a string the caller frees. */
static char *
test_config_dump(const struct config *cf)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    cr_assert_not_null(f);
    config_dump(cf, f);
    fclose(f);
    return buf;
}

/* The dump without its first line (a comment naming the file). */
static const char *
test_config_body(const char *dump)
{
    const char *nl = strchr(dump, '\n');

    return nl != NULL ? nl + 1 : dump;
}

/*
 * Load <cf>'s dump back: it must load, dump the same text, and mean the
 * same (no pool or backend changed; of [global] and [admin], only the
 * token differs, which prints as <set>).
 */
static void
test_config_round_trip(const struct config *cf, const char *what)
{
    struct config_errors errs;
    struct config *again;
    struct config_diff d;
    char *dump, *dump2;
    char global[96];
    size_t i;

    dump = test_config_dump(cf);
    again = test_config_load(dump, &errs);
    cr_assert_not_null(again, "%s: -t output refused:%s\n%s", what,
                       test_config_all, dump);
    dump2 = test_config_dump(again);
    cr_expect_str_eq(test_config_body(dump2), test_config_body(dump),
                     "%s: printed differently the second time", what);
    /* Secrets print as <set>, the one exception: put them back. */
    for (i = 0; i < again->npools && i < cf->npools; i++) {
        if (cf->pools[i].check_password != NULL) {
            cr_expect_str_eq(again->pools[i].check_password, "<set>");
            free(again->pools[i].check_password);
            again->pools[i].check_password =
                strdup(cf->pools[i].check_password);
        }
    }
    cr_assert_eq(config_diff(cf, again, &d), MQ_OK);
    for (i = 0; i < d.nentries; i++) {
        cr_expect_eq(d.entries[i].kind, DIFF_KEPT, "%s: %s/%s %s (%s)",
                     what, d.entries[i].pool, d.entries[i].backend,
                     config_diff_kind_name(d.entries[i].kind),
                     d.entries[i].what);
    }
    config_global_changes(cf, again, global, sizeof(global));
    cr_expect_str_eq(global, cf->admin_token != NULL ? "admin token" : "",
                     "%s", what);
    config_diff_deinit(&d);
    config_destroy(again);
    config_errors_deinit(&errs);
    free(dump);
    free(dump2);
}

Test(config, dump_of_every_key_loads_back_to_the_same_config)
{
    struct config_errors errs;
    struct config *cf;

    cf = test_config_load(test_config_full, &errs);
    cr_assert_not_null(cf, "errors:%s", test_config_all);
    config_errors_deinit(&errs);
    test_config_round_trip(cf, "the full file");
    config_destroy(cf);
}

Test(config, dump_prints_values_in_the_syntax_the_parser_takes)
{
    struct config_errors errs;
    struct config *cf;
    char *dump;

    cf = test_config_load(test_config_full, &errs);
    cr_assert_not_null(cf, "errors:%s", test_config_all);
    dump = test_config_dump(cf);
    cr_expect_not_null(strstr(dump, "\nallow = 127.0.0.0/8\n"
                                    "allow = ::1/128\n"
                                    "allow = 10.0.0.0/8\n"
                                    "allow = 192.168.1.0/24\n"), "%s", dump);
    cr_expect_not_null(strstr(dump, "\ntcp_keepalive = 1m:10s:5\n"), "%s",
                       dump);
    cr_expect_not_null(strstr(dump, "\ntoken = <set>\n"), "%s", dump);
    cr_expect_null(strstr(dump, "s3cret"), "the token is a secret");
    cr_expect_not_null(strstr(dump, "\ncheck_send = PING\\r\\n\n"), "%s",
                       dump);
    cr_expect_not_null(strstr(dump, "\ncheck_expect = +PONG\\r\n"), "%s",
                       dump);
    cr_expect_not_null(strstr(dump, "\ncheck_interval = 5m\n"
                                    "check_timeout = 2s\n"), "%s", dump);
    cr_expect_not_null(strstr(dump, "\nconnect_timeout = 1500ms\n"), "%s",
                       dump);
    cr_expect_not_null(strstr(dump, "\nbackend = spare [::1]:6404 weight=0 "
                                    "backup max_conns=50\n"), "%s", dump);
    free(dump);
    config_destroy(cf);
}

Test(config, dump_round_trips_awkward_values)
{
    static const char *const pools[] = {
        /* bytes inih would strip, cut at a comment, or cannot carry */
        "health_check = send-expect\ncheck_send = \\x20a;b #c\\\\\\x00\\x20\n"
        "check_expect = \\xff\\x7f\\t\n",
        "tcp_keepalive = 60s\n",
        "tcp_keepalive = 1m:5s\n",
        "tcp_keepalive = 2h:1s:127\n",
        "allow = ::/0 0.0.0.0/0 ::ffff:10.0.0.0/104 2001:db8::/33\n",
        "check_interval = 90s\nidle_timeout = 0\nslow_start = 1001ms\n",
        "listen = :7005\nlisten = *:7006\nlisten = [::]:7007\n",
        "max_conns_per_backend = 7\non_backend_down = close\n",
    };
    char text[1024];
    struct config_errors errs;
    struct config *cf;
    size_t i;

    for (i = 0; i < MQ_NELEMS(pools); i++) {
        snprintf(text, sizeof(text), "[global]\nmax_connections = 12\n"
                 "log_level = notice\nuser = root\n"
                 "[pool p]\nlisten = 127.0.0.1:7001\n%s"
                 "backend = a localhost:7002 max_conns=3\n", pools[i]);
        cf = test_config_load(text, &errs);
        cr_assert_not_null(cf, "errors:%s\nfor:\n%s", test_config_all, text);
        config_errors_deinit(&errs);
        test_config_round_trip(cf, pools[i]);
        config_destroy(cf);
    }
}

/* Does the file at <path> name certificate files (tls_cert)? */
static bool
test_config_needs_certs(const char *path)
{
    char line[512];
    bool found = false;
    FILE *f = fopen(path, "r");

    cr_assert_not_null(f, "%s", path);
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        found = strncmp(line, "tls_cert", 8) == 0;
    }
    fclose(f);
    return found;
}

/* Every file the project ships (run from the repository root). */
Test(config, dump_of_every_shipped_file_loads_back_to_the_same_config)
{
    struct config_errors errs = { 0 };
    struct config *cf;
    glob_t g;
    size_t i;

    cr_assert_eq(glob("etc/examples/*.ini", 0, NULL, &g), 0);
    cr_assert_geq(g.gl_pathc, 5);
    for (i = 0; i <= g.gl_pathc; i++) {
        const char *path = i < g.gl_pathc ? g.gl_pathv[i] : "etc/mqlb.ini";

        if (test_config_needs_certs(path)) {
            /* Its certificates are made, and -t run on it, by
             * test_examples.py; the TLS keys' round trip is the full
             * file's. */
            continue;
        }
        cf = config_load(path, &errs);
        test_config_join(&errs);
        cr_assert_not_null(cf, "%s:%s", path, test_config_all);
        config_errors_deinit(&errs);
        test_config_round_trip(cf, path);
        config_destroy(cf);
    }
    globfree(&g);
}

/*
 * A new key is one row of the key table; this makes it one line of
 * test_config_full too, so that the full file (set away from every
 * default) keeps covering the -t round trip of every key.
 */
Test(config, full_test_file_sets_every_key_that_dump_prints)
{
    struct config_errors errs;
    struct config *cf;
    char *dump, *line, *save = NULL, key[64], want[80];

    cf = test_config_load(test_config_full, &errs);
    cr_assert_not_null(cf, "errors:%s", test_config_all);
    dump = test_config_dump(cf);
    for (line = strtok_r(dump, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == ';' || line[0] == '[' ||
            sscanf(line, "%63[a-z_] =", key) != 1) {
            continue;
        }
        snprintf(want, sizeof(want), "\n%s = ", key);
        cr_expect_not_null(strstr(test_config_full, want),
                           "key '%s' is not in test_config_full: add it, "
                           "set away from its default", key);
    }
    free(dump);
    config_destroy(cf);
    config_errors_deinit(&errs);
}

/* ---- the broker life cycle keys ---------------------------------------- */

Test(config, life_cycle_keys_default_to_off)
{
    struct config_errors errs;
    struct config *cf;
    const struct config_pool *p;

    cf = test_config_load("[pool p]\nlisten = 127.0.0.1:7001\n"
                          "backend = a 127.0.0.1:7002\n", &errs);
    cr_assert_not_null(cf, "errors:%s", test_config_all);
    p = &cf->pools[0];
    cr_expect_eq(p->idle_timeout_ms, 3600000);
    cr_expect_eq(p->rebalance, REBALANCE_OFF);
    cr_expect_eq(p->rebalance_rate, 20);
    cr_expect_eq(p->rebalance_tolerance_pct, 10);
    cr_expect_eq(p->rebalance_min_age_ms, 30000);
    cr_expect_eq(p->max_session_duration_ms, 0);
    cr_expect_eq(p->max_queue, 0);
    cr_expect_eq(p->queue_timeout_ms, 5000);
    cr_expect_eq(p->max_connect_rate, 0);
    cr_expect_eq(p->backends[0].max_connect_rate, 0);
    config_destroy(cf);
    config_errors_deinit(&errs);
}

Test(config, life_cycle_keys_parse_print_and_round_trip)
{
    struct config_errors errs;
    struct config *cf;
    const struct config_pool *p;
    char *dump;

    cf = test_config_load("[pool p]\nlisten = 127.0.0.1:7001\n"
                          "idle_timeout = auto\nrebalance = paced\n"
                          "rebalance_rate = 50/s\nrebalance_tolerance = 5%\n"
                          "rebalance_min_age = 1m\n"
                          "max_session_duration = 12h\nmax_queue = 500\n"
                          "queue_timeout = 1500ms\nmax_connect_rate = 100\n"
                          "backend = a 127.0.0.1:7002\n"
                          "backend = b 127.0.0.1:7003 max_connect_rate=20/s\n"
                          "backend = c 127.0.0.1:7004 max_connect_rate=0\n",
                          &errs);
    cr_assert_not_null(cf, "errors:%s", test_config_all);
    p = &cf->pools[0];
    cr_expect_eq(p->idle_timeout_ms, CONFIG_IDLE_AUTO);
    cr_expect_eq(p->rebalance, REBALANCE_PACED);
    cr_expect_eq(p->rebalance_rate, 50);
    cr_expect_eq(p->rebalance_tolerance_pct, 5);
    cr_expect_eq(p->rebalance_min_age_ms, 60000);
    cr_expect_eq(p->max_session_duration_ms, 12 * 3600000ULL);
    cr_expect_eq(p->max_queue, 500);
    cr_expect_eq(p->queue_timeout_ms, 1500);
    cr_expect_eq(p->max_connect_rate, 100);
    /* The pool's rate is each backend's default; a line may set its own,
     * 0 included (unlimited). */
    cr_expect_eq(p->backends[0].max_connect_rate, 100);
    cr_expect_eq(p->backends[1].max_connect_rate, 20);
    cr_expect_eq(p->backends[2].max_connect_rate, 0);
    dump = test_config_dump(cf);
    cr_expect_not_null(strstr(dump, "\nidle_timeout = auto\n"), "%s", dump);
    cr_expect_not_null(strstr(dump, "\nrebalance = paced\n"
                                    "rebalance_rate = 50/s\n"
                                    "rebalance_tolerance = 5%\n"
                                    "rebalance_min_age = 1m\n"), "%s", dump);
    cr_expect_not_null(strstr(dump, " max_connect_rate=20\n"), "%s", dump);
    free(dump);
    test_config_round_trip(cf, "life cycle keys");
    config_destroy(cf);
    config_errors_deinit(&errs);
}

Test(config, life_cycle_bad_values_say_what_is_expected)
{
    static const struct {
        const char *line;
        const char *want;
    } bad[] = {
        { "idle_timeout = sometimes", "expected auto or a duration" },
        { "rebalance = eager", "rebalance" },
        { "rebalance_rate = 0/s", "expected a rate such as 20/s" },
        { "rebalance_rate = 20/m", "expected a rate such as 20/s" },
        { "rebalance_tolerance = 150%", "percentage from 0% to 100%" },
        { "queue_timeout = 0", "must be greater than 0" },
        { "max_queue = -1", "max_queue" },
        { "backend = z 127.0.0.1:7009 max_connect_rate=fast",
          "max_connect_rate is a number" },
    };
    struct config_errors errs;
    struct config *cf;
    char text[256];
    size_t i;

    for (i = 0; i < MQ_NELEMS(bad); i++) {
        snprintf(text, sizeof(text), "[pool p]\nlisten = 127.0.0.1:7001\n"
                 "backend = a 127.0.0.1:7002\n%s\n", bad[i].line);
        cf = test_config_load(text, &errs);
        cr_expect_null(cf, "%s accepted", bad[i].line);
        cr_expect_eq(errs.nmsgs, 1, "%s", bad[i].line);
        if (errs.nmsgs > 0) {
            cr_expect_not_null(strstr(errs.msgs[0], ":4: "), "%s",
                               errs.msgs[0]);
            cr_expect_not_null(strstr(errs.msgs[0], bad[i].want), "%s",
                               errs.msgs[0]);
        }
        config_destroy(cf);
        config_errors_deinit(&errs);
    }
}

Test(config, control_socket_and_state_file_are_absolute_paths)
{
    struct config_errors errs;
    struct config *cf;

    cf = test_config_load("[global]\ncontrol_socket = /run/mqlb/mqlb.sock\n"
                          "state_file = /var/lib/mqlb/state\n"
                          "[pool p]\nlisten = 127.0.0.1:7000\n"
                          "backend = a 127.0.0.1:1\n", &errs);
    cr_assert_not_null(cf, "%s", test_config_all);
    cr_assert_str_eq(cf->control_socket, "/run/mqlb/mqlb.sock");
    cr_assert_str_eq(cf->state_file, "/var/lib/mqlb/state");
    config_destroy(cf);
    config_errors_deinit(&errs);
    cf = test_config_load("[pool p]\nlisten = 127.0.0.1:7000\n"
                          "backend = a 127.0.0.1:1\n", &errs);
    cr_assert_not_null(cf, "%s", test_config_all);
    cr_assert_null(cf->control_socket, "none unless set");
    cr_assert_null(cf->state_file);
    config_destroy(cf);
    config_errors_deinit(&errs);
    test_config_expect_one("[global]\ncontrol_socket = mqlb.sock\n"
                           "[pool p]\nlisten = 127.0.0.1:7000\n"
                           "backend = a 127.0.0.1:1\n", 2,
                           "control_socket = mqlb.sock: expected an absolute");
}
/* ---- TLS keys (issue 15) -------------------------------------------- */

Test(config, tls_keys_parse_and_sni_pools_may_share_an_address)
{
    struct config_errors errs;
    struct config *cf;

    cf = test_config_load(
        "[pool a]\n"
        "listen = 127.0.0.1:8883\n"
        "sni = a.test *.a.test\n"
        "backend_tls = on\n"
        "backend_tls_verify = off\n"
        "backend_tls_sni = broker.a.test\n"
        "tls_handshake_timeout = 2s\n"
        "backend = b 127.0.0.1:1\n"
        "[pool b]\n"
        "listen = 127.0.0.1:8883\n"
        "sni = *\n"
        "backend = b 127.0.0.1:2\n", &errs);
    cr_assert_not_null(cf, "%s", test_config_all);
    cr_assert_eq(cf->pools[0].nsni, 2);
    cr_assert_str_eq(cf->pools[0].sni[1], "*.a.test");
    cr_assert_eq(cf->pools[0].backend_tls.enabled, 1);
    cr_assert_eq(cf->pools[0].backend_tls.verify, 0);
    cr_assert_not_null(cf->pools[0].tls_client);
    cr_assert_eq(cf->pools[0].tls_handshake_timeout_ms, 2000);
    cr_assert_eq(cf->pools[0].listens[0].tls, 0);
    cr_assert_eq(cf->pools[1].tls_handshake_timeout_ms, 5000);
    config_destroy(cf);
    config_errors_deinit(&errs);
}

Test(config, tls_errors_name_the_key_and_line)
{
    struct config_errors errs;
    struct config *cf;

    cf = test_config_load(
        "[pool a]\n"
        "listen = 127.0.0.1:8883 tls\n"             /* 2: no tls_cert */
        "tls_verify_client = maybe\n"               /* 3 */
        "tls_min_version = 1.1\n"                   /* 4 */
        "backend = b 127.0.0.1:1\n"
        "[pool b]\n"
        "listen = 127.0.0.1:8884 tlss\n"            /* 7 */
        "sni = a..b/c\n"                            /* 8 */
        "tls_cert = /nonexistent/b.pem\n"           /* 9: no tls listen */
        "backend = b 127.0.0.1:1\n"
        "[pool c]\n"
        "listen = 127.0.0.1:8883\n"                 /* 12: shared, no sni */
        "backend = b 127.0.0.1:1\n"
        "[pool d]\n"
        "listen = 127.0.0.1:9883 tls\n"
        "tls_cert = /nonexistent/d.pem\n"           /* 16: unreadable */
        "backend = b 127.0.0.1:1\n", &errs);
    cr_assert_null(cf);
    cr_assert(test_config_has(&errs, 2, "needs a certificate"), "%s",
              test_config_all);
    cr_assert(test_config_has(&errs, 3, "maybe"), "%s", test_config_all);
    cr_assert(test_config_has(&errs, 4, "1.2 | 1.3"), "%s", test_config_all);
    cr_assert(test_config_has(&errs, 7, "tlss"), "%s", test_config_all);
    cr_assert(test_config_has(&errs, 8, "not a host name"), "%s",
              test_config_all);
    cr_assert(test_config_has(&errs, 9, "no listen has 'tls'"), "%s",
              test_config_all);
    cr_assert(test_config_has(&errs, 12, "sni"), "%s", test_config_all);
    cr_assert(test_config_has(&errs, 16, "cannot read"), "%s",
              test_config_all);
    config_errors_deinit(&errs);
}
