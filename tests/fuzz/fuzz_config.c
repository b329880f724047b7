/*
 * fuzz_config.c: INI text in, through the parser and the validator
 * (config_load_string), the effective-config printer and both destructors.
 * What loads must print as a file that loads again and prints the same
 * (`mqlb -t` output is a valid config).
 *
 * Addresses are resolved with getaddrinfo(), which for a host name would
 * ask the resolver on every input: the link wraps it (-Wl,--wrap) so that
 * only numeric hosts and "localhost" resolve, quickly and the same way
 * every run. Backend host names go through resolver_lookup_sync()
 * (c-ares), wrapped the same way.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/common.h"
#include "mqlb/config.h"
#include "mqlb/resolver.h"

int __real_getaddrinfo(const char *node, const char *service,
                       const struct addrinfo *hints, struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service,
                       const struct addrinfo *hints, struct addrinfo **res);
int __wrap_resolver_lookup_sync(const char *servers, const char *host,
                                unsigned port, unsigned timeout_ms,
                                struct resolver_addr *out, char *err);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Backend host names resolve through c-ares: only "localhost" here. */
int
__wrap_resolver_lookup_sync(const char *servers, const char *host,
                            unsigned port, unsigned timeout_ms,
                            struct resolver_addr *out, char *err)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;

    (void)servers;
    (void)timeout_ms;
    if (strcmp(host, "localhost") != 0) {
        snprintf(err, MQ_ERR_LEN, "NXDOMAIN (no such name)");
        return MQ_ERR;
    }
    memset(out, 0, sizeof(*out));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    out->len = sizeof(*sin);
    return MQ_OK;
}

int
__wrap_getaddrinfo(const char *node, const char *service,
                   const struct addrinfo *hints, struct addrinfo **res)
{
    struct addrinfo h;

    if (node != NULL && strcmp(node, "localhost") == 0) {
        node = "127.0.0.1";
    }
    memset(&h, 0, sizeof(h));
    if (hints != NULL) {
        h = *hints;
    }
    h.ai_flags |= AI_NUMERICHOST;
    return __real_getaddrinfo(node, service, &h, res);
}

/* config_dump of <cf> as a string (NULL on no memory), without its first
 * line, which names the file. */
static char *
fuzz_config_dump(const struct config *cf)
{
    char *buf = NULL, *nl;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (f == NULL) {
        return NULL;
    }
    config_dump(cf, f);
    fclose(f);
    nl = buf != NULL ? strchr(buf, '\n') : NULL;
    if (nl != NULL) {
        memmove(buf, nl + 1, strlen(nl + 1) + 1);
    }
    return buf;
}

/* The dump of <cf> loads, and its dump is the same text. */
static void
fuzz_config_round_trip(const struct config *cf)
{
    struct config_errors errs;
    struct config *again;
    char *dump, *dump2;

    dump = fuzz_config_dump(cf);
    if (dump == NULL) {
        return;
    }
    memset(&errs, 0, sizeof(errs));
    again = config_load_string(dump, "dump.ini", &errs);
    if (again == NULL) {
        fprintf(stderr, "-t output refused: %s\n%s\n",
                errs.nmsgs > 0 ? errs.msgs[0] : "?", dump);
        abort();
    }
    dump2 = fuzz_config_dump(again);
    if (dump2 != NULL && strcmp(dump, dump2) != 0) {
        fprintf(stderr, "-t output changed:\n%s\n---\n%s\n", dump, dump2);
        abort();
    }
    free(dump2);
    config_destroy(again);
    config_errors_deinit(&errs);
    free(dump);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config_errors errs;
    struct config *cf;
    char *text;

    /* config_load_string takes a C string; an embedded NUL ends it. */
    text = malloc(size + 1);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';

    memset(&errs, 0, sizeof(errs));
    cf = config_load_string(text, "fuzz.ini", &errs);
    if (cf != NULL) {
        if (errs.nmsgs != 0) {
            abort();    /* a config comes back only without errors */
        }
        fuzz_config_round_trip(cf);
        config_destroy(cf);
    } else if (errs.nmsgs == 0) {
        abort();        /* a refusal always says why */
    }
    config_errors_deinit(&errs);
    free(text);
    return 0;
}
