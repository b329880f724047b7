/*
 * fuzz_admin.c: the part of the admin request path that is ours, not
 * libmicrohttpd's: admin_route() for method, path and ?value=, and the
 * token checks admin_token_ok() (Authorization header) and
 * admin_token_equal() (?token=). The input is split at NUL bytes into
 * method, path, value, header and token; missing fields are NULL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/admin.h"

#define FUZZ_FIELDS 5

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_route(const char *method, const char *path, const char *value)
{
    struct admin_req req;
    int status;

    status = admin_route(method, path, value, &req);
    switch (status) {
    case 200:
        if (req.endpoint == ADMIN_EP_ACTION
            && (strnlen(req.pool, sizeof(req.pool)) == sizeof(req.pool)
                || strnlen(req.backend, sizeof(req.backend))
                   == sizeof(req.backend)
                || req.value > ADMIN_WEIGHT_MAX)) {
            abort();
        }
        break;
    case 405:
        if (req.allow == NULL) {
            abort();
        }
        /* fall through */
    case 400:
    case 404:
        if (req.error == NULL) {
            abort();
        }
        break;
    default:
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text, *f[FUZZ_FIELDS], *p, *end;
    char bearer[256];
    size_t i;
    bool ok;

    text = malloc(size + 1);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    end = text + size;

    p = text;
    for (i = 0; i < FUZZ_FIELDS; i++) {
        f[i] = p <= end ? p : NULL;
        if (p <= end) {
            p += strlen(p) + 1;
        }
    }

    fuzz_route(f[0], f[1], f[2]);
    fuzz_route(f[0] != NULL ? f[0] : "GET", f[1] != NULL ? f[1] : "/", NULL);

    /* no token configured: everyone is let in */
    if (!admin_token_ok(f[3], NULL) || !admin_token_ok(f[3], "")) {
        abort();
    }
    ok = admin_token_ok(f[3], f[4]);
    if (f[4] != NULL && f[4][0] != '\0' && f[3] == NULL && ok) {
        abort();
    }
    (void)admin_token_equal(f[3], f[4]);
    if (f[4] != NULL) {
        /* a token always matches itself, in both forms */
        if (!admin_token_equal(f[4], f[4])) {
            abort();
        }
        if (strlen(f[4]) + 8 < sizeof(bearer)
            && strchr(f[4], ' ') == NULL && strchr(f[4], '\t') == NULL) {
            strcpy(bearer, "Bearer ");
            strcat(bearer, f[4]);
            if (!admin_token_ok(bearer, f[4])) {
                abort();
            }
        }
    }
    free(text);
    return 0;
}
