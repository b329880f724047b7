/*
 * test_config_discover.c: the discovery keys of the INI file: [global]
 * resolvers and resolve_interval, [pool] discover =, and backend host
 * names resolved at load through the configured resolvers.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mqlb/common.h"
#include "mqlb/config.h"

static struct config *
load(const char *text, struct config_errors *errs)
{
    memset(errs, 0, sizeof(*errs));
    return config_load_string(text, "d.ini", errs);
}

/* True if an error starts with "d.ini:LINE: " and contains <phrase>. */
static bool
has(const struct config_errors *errs, int line, const char *phrase)
{
    char prefix[32];
    size_t i;

    snprintf(prefix, sizeof(prefix), "d.ini:%d: ", line);
    for (i = 0; i < errs->nmsgs; i++) {
        if (strncmp(errs->msgs[i], prefix, strlen(prefix)) == 0 &&
            strstr(errs->msgs[i], phrase) != NULL) {
            return true;
        }
    }
    return false;
}

static const char *
first(const struct config_errors *errs)
{
    return errs->nmsgs > 0 ? errs->msgs[0] : "(none)";
}

Test(config_discover, pool_of_discover_lines_only)
{
    struct config_errors errs;
    struct config *cf;
    char buf[4096];
    FILE *f;

    cf = load("[global]\nresolvers = 127.0.0.1:5353, [::1]:53\n"
              "resolve_interval = 3s\n"
              "[pool q]\nlisten = 127.0.0.1:7000\n"
              "discover = dns-srv _amqp._tcp.rabbit.svc\n"
              "discover = dns rabbit.svc:5672\n", &errs);
    cr_assert_not_null(cf, "%s", first(&errs));
    cr_assert_str_eq(cf->resolvers, "127.0.0.1:5353, [::1]:53");
    cr_assert_eq(cf->resolve_interval_ms, 3000);
    cr_assert_eq(cf->pools[0].nbackends, 0);
    cr_assert_eq(cf->pools[0].ndiscovers, 2);
    cr_assert_eq(cf->pools[0].discovers[0].kind, DISCOVER_DNS_SRV);
    cr_assert_str_eq(cf->pools[0].discovers[0].name, "_amqp._tcp.rabbit.svc");
    cr_assert_eq(cf->pools[0].discovers[1].kind, DISCOVER_DNS);
    cr_assert_str_eq(cf->pools[0].discovers[1].name, "rabbit.svc");
    cr_assert_eq(cf->pools[0].discovers[1].port, 5672);
    cr_assert_eq(cf->pools[0].discovers[1].line, 7);

    /* -t prints them back as keys the file accepts */
    f = fmemopen(buf, sizeof(buf), "w");
    config_dump(cf, f);
    fclose(f);
    cr_assert(strstr(buf, "resolvers = 127.0.0.1:5353, [::1]:53\n") != NULL);
    cr_assert(strstr(buf, "resolve_interval = 3s\n") != NULL);
    cr_assert(strstr(buf, "discover = dns-srv _amqp._tcp.rabbit.svc\n")
              != NULL, "%s", buf);
    cr_assert(strstr(buf, "discover = dns rabbit.svc:5672\n") != NULL);
    config_destroy(cf);
    config_errors_deinit(&errs);
}

Test(config_discover, defaults)
{
    struct config_errors errs;
    struct config *cf;

    cf = load("[pool q]\nlisten = 127.0.0.1:7000\n"
              "backend = a 127.0.0.1:1\n", &errs);
    cr_assert_not_null(cf, "%s", first(&errs));
    cr_assert_null(cf->resolvers);
    cr_assert_eq(cf->resolve_interval_ms, 10000);
    cr_assert(!cf->pools[0].backends[0].is_name);
    config_destroy(cf);
    config_errors_deinit(&errs);
}

Test(config_discover, bad_values_name_their_line)
{
    struct config_errors errs;
    struct config *cf;

    cf = load("[global]\nresolvers = dns.example.com\n"
              "resolve_interval = 500ms\n"
              "[pool q]\nlisten = 127.0.0.1:7000\n"
              "discover = dns rabbit.svc\n"
              "discover = dns-srv rabbit.svc\n"
              "discover = consul rabbit\n"
              "discover = dns bad..name:1\n", &errs);
    cr_assert_null(cf);
    cr_assert(has(&errs, 2, "resolvers = dns.example.com: resolver "
                  "'dns.example.com': expected an IP address"),
              "%s", first(&errs));
    cr_assert(has(&errs, 3, "resolve_interval = 500ms: at least 1s"));
    cr_assert(has(&errs, 6, "expected dns NAME:PORT"));
    cr_assert(has(&errs, 7, "expected dns-srv _service._proto.NAME"));
    cr_assert(has(&errs, 8, "expected dns NAME:PORT or dns-srv"));
    cr_assert(has(&errs, 9, "expected dns NAME:PORT"));
    config_errors_deinit(&errs);
}

Test(config_discover, pool_without_backend_or_discover)
{
    struct config_errors errs;
    struct config *cf;

    cf = load("[pool q]\nlisten = 127.0.0.1:7000\n", &errs);
    cr_assert_null(cf);
    cr_assert(has(&errs, 1, "no 'backend' (or 'discover')"), "%s",
              first(&errs));
    config_errors_deinit(&errs);
}

Test(config_discover, backend_name_resolved_through_resolvers)
{
    struct config_errors errs;
    struct config *cf;
    struct sockaddr_in *sin;

    /* nothing answers on port 1: only the hosts file can resolve */
    cf = load("[global]\nresolvers = 127.0.0.1:1\n"
              "[pool q]\nlisten = 127.0.0.1:7000\n"
              "backend = a localhost:6379\n"
              "backend = b nowhere.invalid:6379\n", &errs);
    cr_assert_null(cf);
    cr_assert(has(&errs, 6, "backend b: address 'nowhere.invalid:6379': "
                  "host 'nowhere.invalid' does not resolve"), "%s", first(&errs));
    cr_assert_eq(errs.nmsgs, 1, "localhost resolves: %s", first(&errs));
    config_errors_deinit(&errs);

    cf = load("[global]\nresolvers = 127.0.0.1:1\n"
              "[pool q]\nlisten = 127.0.0.1:7000\n"
              "backend = a localhost:6379\n", &errs);
    cr_assert_not_null(cf, "%s", first(&errs));
    cr_assert(cf->pools[0].backends[0].is_name);
    cr_assert_str_eq(cf->pools[0].backends[0].host, "localhost");
    cr_assert_str_eq(cf->pools[0].backends[0].addr.text, "localhost:6379");
    sin = (struct sockaddr_in *)&cf->pools[0].backends[0].addr.ss;
    cr_assert_eq(sin->sin_family, AF_INET);
    cr_assert_eq(ntohs(sin->sin_port), 6379);
    cr_assert_eq(sin->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    config_destroy(cf);
    config_errors_deinit(&errs);
}
