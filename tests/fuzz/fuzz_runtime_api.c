/*
 * fuzz_runtime_api.c: what the runtime API and DNS read from outside:
 * the JSON body of POST /pools/P/backends (admin_api_parse_backend), the
 * /sessions and ?value= arguments, and raw DNS answers (resolver_answer_ttl,
 * resolver_parse_srv through c-ares' parser). The first input byte picks
 * the target; the rest is the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/admin_api.h"
#include "mqlb/common.h"
#include "mqlb/resolver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_body(const char *text, size_t len)
{
    struct admin_backend_spec spec;
    char err[200];

    if (admin_api_parse_backend(text, len, &spec, err, sizeof(err))
        == MQ_OK) {
        /* what it accepts is what the core may trust */
        if (strnlen(spec.name, sizeof(spec.name)) == sizeof(spec.name) ||
            spec.name[0] == '\0' || spec.weight > 256 ||
            spec.max_conns > 10000000 ||
            !admin_api_address_ok(spec.address)) {
            abort();
        }
    } else if (strnlen(err, sizeof(err)) == 0) {
        abort();            /* every refusal says why */
    }
}

static void
fuzz_args(const char *s)
{
    struct admin_api_req req;
    char err[200];

    memset(&req, 0, sizeof(req));
    if (admin_api_sessions_args(s, s, s, &req, err, sizeof(err)) == MQ_OK &&
        (req.limit == 0 || req.limit > ADMIN_API_LIMIT_MAX)) {
        abort();
    }
    (void)admin_api_address_arg(s, &req, err, sizeof(err));
    (void)admin_api_route("POST", s, &req, &(const char *){ NULL },
                          &(const char *){ NULL });
}

static void
fuzz_dns(const uint8_t *buf, size_t len)
{
    struct resolver_result *res;
    uint32_t ttl;
    size_t i;

    (void)resolver_answer_ttl(buf, len, &ttl);
    res = calloc(1, sizeof(*res));
    if (res == NULL) {
        return;
    }
    if (resolver_parse_srv(buf, len, res) == MQ_OK) {
        for (i = 0; i < res->nsrvs; i++) {
            if (res->srvs[i].port == 0 ||
                strnlen(res->srvs[i].target, sizeof(res->srvs[i].target))
                == sizeof(res->srvs[i].target)) {
                abort();
            }
        }
    }
    free(res);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (size == 0) {
        return 0;
    }
    text = malloc(size);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    switch (data[0] % 3) {
    case 0:
        fuzz_body(text, size - 1);
        break;
    case 1:
        fuzz_args(text);
        break;
    default:
        fuzz_dns(data + 1, size - 1);
        break;
    }
    free(text);
    return 0;
}
