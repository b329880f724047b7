/*
 * admin_api.c: routes, query arguments and JSON bodies of the runtime
 * API. Everything a client sends is checked here, in words it can act on
 * ("weight: want an integer 0..256"), before the core sees it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mqlb/admin_api.h"
#include "mqlb/common.h"

#define ADMIN_API_ALLOW_GET     "GET, HEAD"
#define ADMIN_API_ALLOW_POST    "POST"
#define ADMIN_API_ALLOW_BACKEND "GET, HEAD, DELETE"

static bool
admin_api_is_get(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

/* Copy the name at <*p> up to '/' or the end; see admin_take_name. */
static bool
admin_api_take_name(const char **p, char *out)
{
    const char *s = *p;
    size_t n;

    for (n = 0; s[n] != '\0' && s[n] != '/'; n++) {
        if (n + 1 >= CONFIG_NAME_LEN || !config_name_char((unsigned char)s[n])) {
            return false;
        }
        out[n] = s[n];
    }
    if (n == 0) {
        return false;
    }
    out[n] = '\0';
    *p = s + n;
    return true;
}

static bool
admin_api_take_lit(const char **p, const char *lit)
{
    size_t n = strlen(lit);

    if (strncmp(*p, lit, n) != 0) {
        return false;
    }
    *p += n;
    return true;
}

/* A decimal number of at most 19 digits, no sign, no leading spaces. */
static bool
admin_api_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i == 19 || s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (i == 0 || v > max) {
        return false;
    }
    *out = v;
    return true;
}

static int
admin_api_method(const char *method, bool want_get, const char *allow,
                 const char **allowp, const char **error)
{
    if (want_get ? admin_api_is_get(method) : strcmp(method, "POST") == 0) {
        return 200;
    }
    *allowp = allow;
    *error = "method not allowed";
    return 405;
}

/* /sessions and /sessions/ID/close. */
static int
admin_api_route_sessions(const char *method, const char *path,
                         struct admin_api_req *out, const char **allow,
                         const char **error)
{
    char id[24];
    const char *slash;
    size_t n;

    if (strcmp(path, "") == 0) {
        out->op = ADMIN_API_SESSIONS;
        out->limit = ADMIN_API_LIMIT_DEFAULT;
        return admin_api_method(method, true, ADMIN_API_ALLOW_GET, allow,
                                error);
    }
    if (path[0] != '/') {
        return 0;
    }
    path++;
    slash = strchr(path, '/');
    n = slash != NULL ? (size_t)(slash - path) : strlen(path);
    if (slash == NULL || n == 0 || n >= sizeof(id) ||
        strcmp(slash, "/close") != 0) {
        *error = "not found";
        return 404;
    }
    memcpy(id, path, n);
    id[n] = '\0';
    if (!admin_api_parse_u64(id, UINT64_MAX / 10, &out->session_id)) {
        *error = "not found: a session id is a number";
        return 404;
    }
    out->op = ADMIN_API_SESSION_CLOSE;
    return admin_api_method(method, false, ADMIN_API_ALLOW_POST, allow,
                            error);
}

int
admin_api_route(const char *method, const char *path,
                struct admin_api_req *out, const char **allow,
                const char **error)
{
    const char *p = path;

    memset(out, 0, sizeof(*out));
    if (admin_api_take_lit(&p, "/sessions")) {
        return admin_api_route_sessions(method, p, out, allow, error);
    }
    if (!admin_api_take_lit(&p, "/pools/")) {
        return 0;
    }
    if (!admin_api_take_name(&p, out->pool)) {
        return 0;
    }
    if (*p == '\0') {
        out->op = ADMIN_API_GET_POOL;
        return admin_api_method(method, true, ADMIN_API_ALLOW_GET, allow,
                                error);
    }
    if (strcmp(p, "/backends") == 0) {
        out->op = ADMIN_API_ADD_BACKEND;
        return admin_api_method(method, false, ADMIN_API_ALLOW_POST, allow,
                                error);
    }
    if (!admin_api_take_lit(&p, "/backends/") ||
        !admin_api_take_name(&p, out->backend)) {
        return 0;
    }
    if (*p == '\0') {
        if (admin_api_is_get(method)) {
            out->op = ADMIN_API_GET_BACKEND;
            return 200;
        }
        if (strcmp(method, "DELETE") == 0) {
            out->op = ADMIN_API_DEL_BACKEND;
            return 200;
        }
        *allow = ADMIN_API_ALLOW_BACKEND;
        *error = "method not allowed";
        return 405;
    }
    if (strcmp(p, "/address") == 0) {
        out->op = ADMIN_API_ADDRESS;
    } else if (strcmp(p, "/shutdown-sessions") == 0) {
        out->op = ADMIN_API_SHUTDOWN_SESSIONS;
    } else {
        return 0;       /* drain, weight, ...: the other verbs */
    }
    return admin_api_method(method, false, ADMIN_API_ALLOW_POST, allow,
                            error);
}

int
admin_api_sessions_args(const char *pool, const char *backend,
                        const char *limit, struct admin_api_req *out,
                        char *err, size_t errlen)
{
    const char *p;
    uint64_t v;

    if (pool != NULL) {
        p = pool;
        if (!admin_api_take_name(&p, out->pool) || *p != '\0') {
            snprintf(err, errlen, "pool: not a pool name");
            return MQ_ERR;
        }
    }
    if (backend != NULL) {
        p = backend;
        if (!admin_api_take_name(&p, out->backend) || *p != '\0') {
            snprintf(err, errlen, "backend: not a backend name");
            return MQ_ERR;
        }
    }
    out->limit = ADMIN_API_LIMIT_DEFAULT;
    if (limit != NULL) {
        if (!admin_api_parse_u64(limit, ADMIN_API_LIMIT_MAX, &v) || v == 0) {
            snprintf(err, errlen, "limit: want an integer 1..%u",
                     ADMIN_API_LIMIT_MAX);
            return MQ_ERR;
        }
        out->limit = (unsigned)v;
    }
    return MQ_OK;
}

bool
admin_api_address_ok(const char *text)
{
    const char *colon, *h, *end;
    uint64_t port;
    size_t n;

    n = strlen(text);
    if (n == 0 || n >= ADMIN_API_ADDR_LEN) {
        return false;
    }
    if (text[0] == '[') {
        end = strchr(text, ']');
        if (end == NULL || end == text + 1 || end[1] != ':') {
            return false;
        }
        for (h = text + 1; h < end; h++) {
            if (strchr("0123456789abcdefABCDEF:.", *h) == NULL) {
                return false;
            }
        }
        colon = end + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL || colon == text ||
            memchr(text, ':', (size_t)(colon - text)) != NULL) {
            return false;
        }
        for (h = text; h < colon; h++) {
            if (!(*h >= 'a' && *h <= 'z') && !(*h >= 'A' && *h <= 'Z') &&
                !(*h >= '0' && *h <= '9') && *h != '.' && *h != '-' &&
                *h != '_') {
                return false;
            }
        }
    }
    return admin_api_parse_u64(colon + 1, 65535, &port) && port >= 1 &&
           colon[1] != '0';
}

int
admin_api_address_arg(const char *value, struct admin_api_req *out,
                      char *err, size_t errlen)
{
    if (value == NULL || value[0] == '\0') {
        snprintf(err, errlen, "missing value: want ?value=HOST:PORT");
        return MQ_ERR;
    }
    if (!admin_api_address_ok(value)) {
        snprintf(err, errlen, "bad address: want HOST:PORT or "
                 "[IPV6]:PORT with a port 1..65535");
        return MQ_ERR;
    }
    snprintf(out->address, sizeof(out->address), "%s", value);
    return MQ_OK;
}

/* An integer field <key> of <o> within <lo>..<hi>, if present. */
static int
admin_api_int_field(json_t *o, const char *key, unsigned lo, unsigned hi,
                    unsigned *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);

    if (v == NULL) {
        return MQ_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo ||
        json_integer_value(v) > (json_int_t)hi) {
        snprintf(err, errlen, "%s: want an integer %u..%u", key, lo, hi);
        return MQ_ERR;
    }
    *out = (unsigned)json_integer_value(v);
    return MQ_OK;
}

int
admin_api_parse_backend(const char *body, size_t len,
                        struct admin_backend_spec *out, char *err,
                        size_t errlen)
{
    static const char *const known[] = {
        "name", "address", "weight", "backup", "max_conns",
    };
    json_error_t jerr;
    const char *key, *s, *p;
    json_t *o, *v;
    size_t i;
    int rc = MQ_ERR;

    memset(out, 0, sizeof(*out));
    out->weight = 1;
    if (len == 0) {
        snprintf(err, errlen, "missing body: want a JSON object "
                 "{\"name\", \"address\", ...}");
        return MQ_ERR;
    }
    if (len > ADMIN_API_BODY_MAX) {
        snprintf(err, errlen, "body too large (at most %d bytes)",
                 ADMIN_API_BODY_MAX);
        return MQ_ERR;
    }
    o = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                   &jerr);
    if (o == NULL) {
        snprintf(err, errlen, "bad JSON: %.120s (line %d, column %d)",
                 jerr.text, jerr.line, jerr.column);
        return MQ_ERR;
    }
    if (!json_is_object(o)) {
        snprintf(err, errlen, "the body must be a JSON object");
        goto out;
    }
    json_object_foreach(o, key, v) {
        for (i = 0; i < MQ_NELEMS(known); i++) {
            if (strcmp(key, known[i]) == 0) {
                break;
            }
        }
        if (i == MQ_NELEMS(known)) {
            /* only name characters are echoed: the key may be anything */
            for (p = key; *p != '\0' && config_name_char((unsigned char)*p);
                 p++) {
            }
            if (*p == '\0' && p - key < 40) {
                snprintf(err, errlen, "unknown field '%s' (name, address, "
                         "weight, backup, max_conns)", key);
            } else {
                snprintf(err, errlen, "unknown field (name, address, "
                         "weight, backup, max_conns)");
            }
            goto out;
        }
    }
    v = json_object_get(o, "name");
    s = json_string_value(v);
    if (v == NULL) {
        snprintf(err, errlen, "name: required");
        goto out;
    }
    p = s;
    if (s == NULL || json_string_length(v) != strlen(s) ||
        !admin_api_take_name(&p, out->name) || *p != '\0') {
        snprintf(err, errlen, "name: want 1-63 of [A-Za-z0-9_.-]");
        goto out;
    }
    v = json_object_get(o, "address");
    s = json_string_value(v);
    if (v == NULL) {
        snprintf(err, errlen, "address: required");
        goto out;
    }
    if (s == NULL || json_string_length(v) != strlen(s) ||
        !admin_api_address_ok(s)) {
        snprintf(err, errlen, "address: want HOST:PORT or [IPV6]:PORT with "
                 "a port 1..65535");
        goto out;
    }
    snprintf(out->address, sizeof(out->address), "%s", s);
    if (admin_api_int_field(o, "weight", 0, CONFIG_WEIGHT_MAX, &out->weight,
                            err, errlen)
        != MQ_OK ||
        admin_api_int_field(o, "max_conns", 0, 10000000, &out->max_conns,
                            err, errlen) != MQ_OK) {
        goto out;
    }
    v = json_object_get(o, "backup");
    if (v != NULL) {
        if (!json_is_boolean(v)) {
            snprintf(err, errlen, "backup: want true or false");
            goto out;
        }
        out->backup = json_is_true(v);
    }
    rc = MQ_OK;
out:
    json_decref(o);
    return rc;
}
