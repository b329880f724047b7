/*
 * test_admin_api.c: routes, query arguments and JSON bodies of the
 * runtime API.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "mqlb/admin_api.h"
#include "mqlb/common.h"

struct route_row {
    const char         *method;
    const char         *path;
    int                 status;     /* 0 = not an API path */
    enum admin_api_op   op;
    const char         *allow;
};

static const struct route_row rows[] = {
    { "GET", "/pools/p1", 200, ADMIN_API_GET_POOL, NULL },
    { "HEAD", "/pools/p1", 200, ADMIN_API_GET_POOL, NULL },
    { "POST", "/pools/p1", 405, 0, "GET, HEAD" },
    { "GET", "/pools/p1/backends/b1", 200, ADMIN_API_GET_BACKEND, NULL },
    { "DELETE", "/pools/p1/backends/b1", 200, ADMIN_API_DEL_BACKEND, NULL },
    { "POST", "/pools/p1/backends/b1", 405, 0, "GET, HEAD, DELETE" },
    { "PUT", "/pools/p1/backends/b1", 405, 0, "GET, HEAD, DELETE" },
    { "POST", "/pools/p1/backends", 200, ADMIN_API_ADD_BACKEND, NULL },
    { "GET", "/pools/p1/backends", 405, 0, "POST" },
    { "POST", "/pools/p1/backends/b1/address", 200, ADMIN_API_ADDRESS,
      NULL },
    { "GET", "/pools/p1/backends/b1/address", 405, 0, "POST" },
    { "POST", "/pools/p1/backends/b1/shutdown-sessions", 200,
      ADMIN_API_SHUTDOWN_SESSIONS, NULL },
    { "GET", "/sessions", 200, ADMIN_API_SESSIONS, NULL },
    { "DELETE", "/sessions", 405, 0, "GET, HEAD" },
    { "POST", "/sessions/42/close", 200, ADMIN_API_SESSION_CLOSE, NULL },
    { "GET", "/sessions/42/close", 405, 0, "POST" },
    { "POST", "/sessions/x1/close", 404, 0, NULL },
    { "POST", "/sessions/-1/close", 404, 0, NULL },
    { "POST", "/sessions//close", 404, 0, NULL },
    { "POST", "/sessions/42", 404, 0, NULL },
    { "POST", "/sessions/42/close/", 404, 0, NULL },
    { "POST", "/sessions/99999999999999999999999/close", 404, 0, NULL },
    { "GET", "/sessionsx", 0, 0, NULL },
    { "POST", "/pools/p1/backends/b1/drain", 0, 0, NULL },
    { "POST", "/pools/p1/backends/b1/weight", 0, 0, NULL },
    { "GET", "/pools/p 1", 0, 0, NULL },
    { "GET", "/pools/", 0, 0, NULL },
    { "GET", "/status", 0, 0, NULL },
};

Test(admin_api, routes)
{
    struct admin_api_req req;
    const char *allow, *error;
    size_t i;
    int st;

    for (i = 0; i < MQ_NELEMS(rows); i++) {
        allow = error = NULL;
        st = admin_api_route(rows[i].method, rows[i].path, &req, &allow,
                             &error);
        cr_assert_eq(st, rows[i].status, "%s %s: got %d", rows[i].method,
                     rows[i].path, st);
        if (st == 200) {
            cr_assert_eq(req.op, rows[i].op, "%s %s", rows[i].method,
                         rows[i].path);
        } else if (st != 0) {
            cr_assert_not_null(error);
        }
        if (rows[i].allow != NULL) {
            cr_assert_str_eq(allow, rows[i].allow);
        }
    }
    admin_api_route("DELETE", "/pools/My-Pool.1/backends/b_2", &req, &allow,
                    &error);
    cr_assert_str_eq(req.pool, "My-Pool.1");
    cr_assert_str_eq(req.backend, "b_2");
    admin_api_route("POST", "/sessions/18446744073709551/close", &req,
                    &allow, &error);
    cr_assert_eq(req.session_id, 18446744073709551ULL);
}

Test(admin_api, sessions_arguments)
{
    struct admin_api_req req;
    char err[200];

    memset(&req, 0, sizeof(req));
    cr_assert_eq(admin_api_sessions_args(NULL, NULL, NULL, &req, err,
                                         sizeof(err)), MQ_OK);
    cr_assert_eq(req.limit, ADMIN_API_LIMIT_DEFAULT);
    cr_assert_eq(admin_api_sessions_args("p1", "b1", "5", &req, err,
                                         sizeof(err)), MQ_OK);
    cr_assert_str_eq(req.pool, "p1");
    cr_assert_str_eq(req.backend, "b1");
    cr_assert_eq(req.limit, 5);
    cr_assert_eq(admin_api_sessions_args(NULL, NULL, "0", &req, err,
                                         sizeof(err)), MQ_ERR);
    cr_assert(strstr(err, "limit") != NULL);
    cr_assert_eq(admin_api_sessions_args(NULL, NULL, "1e3", &req, err,
                                         sizeof(err)), MQ_ERR);
    cr_assert_eq(admin_api_sessions_args(NULL, NULL, "100001", &req, err,
                                         sizeof(err)), MQ_ERR);
    cr_assert_eq(admin_api_sessions_args("p/1", NULL, NULL, &req, err,
                                         sizeof(err)), MQ_ERR);
    cr_assert(strstr(err, "pool") != NULL);
    cr_assert_eq(admin_api_sessions_args(NULL, "", NULL, &req, err,
                                         sizeof(err)), MQ_ERR);
}

Test(admin_api, address_forms)
{
    static const char *const good[] = {
        "127.0.0.1:6379", "redis-0.redis.svc:6379", "[::1]:5672",
        "[fe80::1]:1", "host_name:65535",
    };
    static const char *const bad[] = {
        "", "127.0.0.1", ":6379", "host:", "host:0", "host:65536",
        "host:06379", "[::1]", "[::1]6379", "[]:1", "ho st:1", "a:b:1",
        "host:1x", "[::g]:1", "host:-1", "h\"ost:1",
    };
    size_t i;

    for (i = 0; i < MQ_NELEMS(good); i++) {
        cr_assert(admin_api_address_ok(good[i]), "%s", good[i]);
    }
    for (i = 0; i < MQ_NELEMS(bad); i++) {
        cr_assert(!admin_api_address_ok(bad[i]), "%s", bad[i]);
    }
}

static int
parse(const char *body, struct admin_backend_spec *s, char *err)
{
    return admin_api_parse_backend(body, strlen(body), s, err, 200);
}

Test(admin_api, backend_body_fields_and_defaults)
{
    struct admin_backend_spec s;
    char err[200];

    cr_assert_eq(parse("{\"name\":\"r4\",\"address\":\"127.0.0.1:6379\"}",
                       &s, err), MQ_OK, "%s", err);
    cr_assert_str_eq(s.name, "r4");
    cr_assert_str_eq(s.address, "127.0.0.1:6379");
    cr_assert_eq(s.weight, 1);
    cr_assert_eq(s.max_conns, 0);
    cr_assert(!s.backup);
    cr_assert_eq(parse("{\"name\":\"r5\",\"address\":\"[::1]:1\",\"weight\":"
                       "7,\"backup\":true,\"max_conns\":100}", &s, err),
                 MQ_OK, "%s", err);
    cr_assert_eq(s.weight, 7);
    cr_assert_eq(s.max_conns, 100);
    cr_assert(s.backup);
}

Test(admin_api, bad_bodies_say_why)
{
    static const struct {
        const char *body;
        const char *reason;
    } bad[] = {
        { "", "missing body" },
        { "{", "bad JSON" },
        { "[1,2]", "must be a JSON object" },
        { "\"r4\"", "must be a JSON object" },
        { "{\"address\":\"127.0.0.1:1\"}", "name: required" },
        { "{\"name\":\"r4\"}", "address: required" },
        { "{\"name\":7,\"address\":\"127.0.0.1:1\"}", "name: want" },
        { "{\"name\":\"\",\"address\":\"127.0.0.1:1\"}", "name: want" },
        { "{\"name\":\"a/b\",\"address\":\"127.0.0.1:1\"}", "name: want" },
        { "{\"name\":\"a\\u0000b\",\"address\":\"127.0.0.1:1\"}",
          "bad JSON" },
        { "{\"name\":\"r4\",\"address\":\"127.0.0.1\"}", "address: want" },
        { "{\"name\":\"r4\",\"address\":\"127.0.0.1:0\"}", "address: want" },
        { "{\"name\":\"r4\",\"address\":[]}", "address: want" },
        { "{\"name\":\"r4\",\"address\":\"h:1\",\"weight\":257}",
          "weight: want an integer 0..256" },
        { "{\"name\":\"r4\",\"address\":\"h:1\",\"weight\":-1}",
          "weight: want" },
        { "{\"name\":\"r4\",\"address\":\"h:1\",\"weight\":\"5\"}",
          "weight: want" },
        { "{\"name\":\"r4\",\"address\":\"h:1\",\"weight\":1.5}",
          "weight: want" },
        { "{\"name\":\"r4\",\"address\":\"h:1\",\"backup\":1}",
          "backup: want true or false" },
        { "{\"name\":\"r4\",\"address\":\"h:1\",\"max_conns\":10000001}",
          "max_conns: want" },
        { "{\"name\":\"r4\",\"address\":\"h:1\",\"colour\":\"red\"}",
          "unknown field 'colour'" },
        { "{\"name\":\"r4\",\"address\":\"h:1\",\"<script>\":1}",
          "unknown field (name" },
        { "{\"name\":\"r4\",\"name\":\"r5\",\"address\":\"h:1\"}",
          "bad JSON: duplicate" },
    };
    struct admin_backend_spec s;
    char err[200];
    size_t i;

    for (i = 0; i < MQ_NELEMS(bad); i++) {
        err[0] = '\0';
        cr_assert_eq(parse(bad[i].body, &s, err), MQ_ERR, "%s", bad[i].body);
        cr_assert(strstr(err, bad[i].reason) != NULL, "%s: got '%s'",
                  bad[i].body, err);
    }
    /* a body over the limit is refused before parsing */
    {
        char big[ADMIN_API_BODY_MAX + 2];

        memset(big, ' ', sizeof(big));
        cr_assert_eq(admin_api_parse_backend(big, sizeof(big), &s, err,
                                             sizeof(err)), MQ_ERR);
        cr_assert(strstr(err, "too large") != NULL);
    }
}
