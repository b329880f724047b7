/*
 * test_admin.c: the admin port's pure parts (routing, token check) and a
 * live server on a loopback port 0 with fake ops, spoken to over a plain
 * socket so that malformed and oversized requests can be sent as well.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "mqlb/admin.h"
#include "mqlb/common.h"

/* ---- routing --------------------------------------------------------- */

/* One row of the dispatch table. */
struct test_admin_route {
    const char         *method;
    const char         *path;
    const char         *value;          /* ?value= or NULL */
    int                 status;         /* what admin_route returns */
    enum admin_endpoint endpoint;       /* when 200 */
    enum admin_action   action;         /* when 200 and ADMIN_EP_ACTION */
    unsigned            weight;         /* when ADMIN_ACTION_WEIGHT */
    const char         *allow;          /* when 405 */
};

static const struct test_admin_route test_admin_routes[] = {
    { "GET", "/health", NULL, 200, ADMIN_EP_HEALTH, 0, 0, NULL },
    { "HEAD", "/health", NULL, 200, ADMIN_EP_HEALTH, 0, 0, NULL },
    { "GET", "/status", NULL, 200, ADMIN_EP_STATUS, 0, 0, NULL },
    { "GET", "/metrics", NULL, 200, ADMIN_EP_METRICS, 0, 0, NULL },
    { "GET", "/", NULL, 200, ADMIN_EP_DASHBOARD, 0, 0, NULL },
    { "GET", "/status", "7", 200, ADMIN_EP_STATUS, 0, 0, NULL },
    { "POST", "/health", NULL, 405, 0, 0, 0, "GET, HEAD" },
    { "PUT", "/status", NULL, 405, 0, 0, 0, "GET, HEAD" },
    { "DELETE", "/metrics", NULL, 405, 0, 0, 0, "GET, HEAD" },
    { "POST", "/", NULL, 405, 0, 0, 0, "GET, HEAD" },
    { "get", "/health", NULL, 405, 0, 0, 0, "GET, HEAD" },
    { "GET", "/nope", NULL, 404, 0, 0, 0, NULL },
    { "GET", "/health/", NULL, 404, 0, 0, 0, NULL },
    { "GET", "/healthz", NULL, 404, 0, 0, 0, NULL },
    { "GET", "", NULL, 404, 0, 0, 0, NULL },
    { "GET", "//", NULL, 404, 0, 0, 0, NULL },
    { "POST", "/pools/p1/backends/b1/drain", NULL, 200, ADMIN_EP_ACTION,
      ADMIN_ACTION_DRAIN, 0, NULL },
    { "POST", "/pools/p1/backends/b1/disable", NULL, 200, ADMIN_EP_ACTION,
      ADMIN_ACTION_DISABLE, 0, NULL },
    { "POST", "/pools/p1/backends/b1/enable", NULL, 200, ADMIN_EP_ACTION,
      ADMIN_ACTION_ENABLE, 0, NULL },
    { "POST", "/pools/p1/backends/b1/weight", "0", 200, ADMIN_EP_ACTION,
      ADMIN_ACTION_WEIGHT, 0, NULL },
    { "POST", "/pools/p1/backends/b1/weight", "256", 200, ADMIN_EP_ACTION,
      ADMIN_ACTION_WEIGHT, 256, NULL },
    { "POST", "/pools/p1/backends/b1/weight", "042", 200, ADMIN_EP_ACTION,
      ADMIN_ACTION_WEIGHT, 42, NULL },
    { "POST", "/pools/p1/backends/b1/weight", NULL, 400, 0, 0, 0, NULL },
    { "POST", "/pools/p1/backends/b1/weight", "", 400, 0, 0, 0, NULL },
    { "POST", "/pools/p1/backends/b1/weight", "257", 400, 0, 0, 0, NULL },
    { "POST", "/pools/p1/backends/b1/weight", "-1", 400, 0, 0, 0, NULL },
    { "POST", "/pools/p1/backends/b1/weight", "1x", 400, 0, 0, 0, NULL },
    { "POST", "/pools/p1/backends/b1/weight", " 5", 400, 0, 0, 0, NULL },
    { "POST", "/pools/p1/backends/b1/weight", "0005", 400, 0, 0, 0, NULL },
    { "POST", "/pools/p1/backends/b1/weight", "99999999999", 400, 0, 0, 0,
      NULL },
    { "GET", "/pools/p1/backends/b1/drain", NULL, 405, 0, 0, 0, "POST" },
    { "PUT", "/pools/p1/backends/b1/weight", "5", 405, 0, 0, 0, "POST" },
    { "HEAD", "/pools/p1/backends/b1/enable", NULL, 405, 0, 0, 0, "POST" },
    { "POST", "/pools/p1/backends/b1/explode", NULL, 404, 0, 0, 0, NULL },
    { "POST", "/pools/p1/backends/b1/drain/", NULL, 404, 0, 0, 0, NULL },
    { "POST", "/pools/p1/backends/b1", NULL, 405, 0, 0, 0,
      "GET, HEAD, DELETE" },
    { "GET", "/pools/p1/backends/b1", NULL, 200, ADMIN_EP_API, 0, 0, NULL },
    { "POST", "/pools/p1/backends", NULL, 200, ADMIN_EP_API, 0, 0, NULL },
    { "GET", "/sessions", NULL, 200, ADMIN_EP_API, 0, 0, NULL },
    { "POST", "/pools/p1/backends//drain", NULL, 404, 0, 0, 0, NULL },
    { "POST", "/pools//backends/b1/drain", NULL, 404, 0, 0, 0, NULL },
    { "POST", "/pools/p 1/backends/b1/drain", NULL, 404, 0, 0, 0, NULL },
    { "POST", "/pools/p1/backends/b\"1/drain", NULL, 404, 0, 0, 0, NULL },
    { "POST", "/pools/p1/servers/b1/drain", NULL, 404, 0, 0, 0, NULL },
    { "POST", "/pool/p1/backends/b1/drain", NULL, 404, 0, 0, 0, NULL },
    { "GET", "/pools/p1/backends/b1/explode", NULL, 404, 0, 0, 0, NULL },
    { "POST", "/pools/../backends/b1/drain", NULL, 200, ADMIN_EP_ACTION,
      ADMIN_ACTION_DRAIN, 0, NULL },
    { "POST", "/pools/My_Pool-1.x/backends/B-2_z.9/enable", NULL, 200,
      ADMIN_EP_ACTION, ADMIN_ACTION_ENABLE, 0, NULL },
};

Test(admin, route_dispatch_table)
{
    const struct test_admin_route *t;
    struct admin_req req;
    size_t i;
    int st;

    for (i = 0; i < MQ_NELEMS(test_admin_routes); i++) {
        t = &test_admin_routes[i];
        st = admin_route(t->method, t->path, t->value, &req);
        cr_assert_eq(st, t->status, "%s %s ?value=%s: got %d, want %d",
                     t->method, t->path, t->value ? t->value : "(none)", st,
                     t->status);
        if (st != 200) {
            cr_assert_not_null(req.error, "%s %s", t->method, t->path);
            if (t->allow != NULL) {
                cr_assert_str_eq(req.allow, t->allow);
            } else {
                cr_assert_null(req.allow);
            }
            continue;
        }
        cr_assert_eq(req.endpoint, t->endpoint, "%s %s", t->method, t->path);
        if (t->endpoint == ADMIN_EP_ACTION) {
            cr_assert_eq(req.action, t->action, "%s %s", t->method,
                         t->path);
            if (t->action == ADMIN_ACTION_WEIGHT) {
                cr_assert_eq(req.value, t->weight);
            }
        }
    }
}

Test(admin, route_fills_pool_and_backend_names)
{
    struct admin_req req;

    cr_assert_eq(admin_route("POST",
                             "/pools/My_Pool-1.x/backends/B-2_z.9/drain",
                             NULL, &req), 200);
    cr_assert_str_eq(req.pool, "My_Pool-1.x");
    cr_assert_str_eq(req.backend, "B-2_z.9");
}

Test(admin, route_rejects_names_too_long)
{
    char path[512], name[CONFIG_NAME_LEN + 1];
    struct admin_req req;

    memset(name, 'a', sizeof(name) - 1);
    name[CONFIG_NAME_LEN - 1] = '\0';   /* 63 chars: fits */
    snprintf(path, sizeof(path), "/pools/%s/backends/%s/drain", name, name);
    cr_assert_eq(admin_route("POST", path, NULL, &req), 200);
    cr_assert_str_eq(req.pool, name);
    name[CONFIG_NAME_LEN - 1] = 'a';    /* 64 chars: too long */
    name[CONFIG_NAME_LEN] = '\0';
    snprintf(path, sizeof(path), "/pools/%s/backends/b/drain", name);
    cr_assert_eq(admin_route("POST", path, NULL, &req), 404);
    snprintf(path, sizeof(path), "/pools/p/backends/%s/drain", name);
    cr_assert_eq(admin_route("POST", path, NULL, &req), 404);
}

Test(admin, route_null_input)
{
    struct admin_req req;

    cr_assert_eq(admin_route(NULL, "/health", NULL, &req), 400);
    cr_assert_eq(admin_route("GET", NULL, NULL, &req), 400);
}

Test(admin, token_check)
{
    cr_assert(admin_token_ok(NULL, NULL));
    cr_assert(admin_token_ok("anything", NULL));
    cr_assert(admin_token_ok(NULL, ""));
    cr_assert(admin_token_ok("Bearer s3cret", "s3cret"));
    cr_assert(admin_token_ok("bearer s3cret", "s3cret"));
    cr_assert(admin_token_ok("BEARER   s3cret  ", "s3cret"));
    cr_assert(admin_token_ok("Bearer\ts3cret", "s3cret"));
    cr_assert_not(admin_token_ok(NULL, "s3cret"));
    cr_assert_not(admin_token_ok("", "s3cret"));
    cr_assert_not(admin_token_ok("s3cret", "s3cret"));
    cr_assert_not(admin_token_ok("Bearer", "s3cret"));
    cr_assert_not(admin_token_ok("Bearer ", "s3cret"));
    cr_assert_not(admin_token_ok("Bearers3cret", "s3cret"));
    cr_assert_not(admin_token_ok("Basic s3cret", "s3cret"));
    cr_assert_not(admin_token_ok("Bearer s3cre", "s3cret"));
    cr_assert_not(admin_token_ok("Bearer s3cret1", "s3cret"));
    cr_assert_not(admin_token_ok("Bearer S3cret", "s3cret"));
    cr_assert_not(admin_token_ok("Bearer s3cret s3cret", "s3cret"));
    cr_assert_not(admin_token_ok("Bearer x", "s3cret"));

    cr_assert(admin_token_equal("abc", "abc"));
    cr_assert_not(admin_token_equal("abd", "abc"));
    cr_assert_not(admin_token_equal("ab", "abc"));
    cr_assert_not(admin_token_equal("abcd", "abc"));
    cr_assert_not(admin_token_equal("", "abc"));
    cr_assert_not(admin_token_equal(NULL, "abc"));
}

/* ---- a live server --------------------------------------------------- */

/* What the fake core saw and how it answers; the MHD thread writes it. */
struct test_admin_fake {
    pthread_mutex_t     lock;           /* guards everything below */
    bool                up;             /* backend state in snapshots */
    unsigned            nsnapshots;     /* snapshot calls */
    unsigned            nactions;       /* action calls */
    char                pool[CONFIG_NAME_LEN];     /* last action's */
    char                backend[CONFIG_NAME_LEN];  /* last action's */
    enum admin_action   action;         /* last action */
    unsigned            value;          /* last action's value */
    char                who[64];        /* last action's client address */
};

static struct test_admin_fake test_admin_fake = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .up = true,
};

static struct admin *test_admin_server;
static unsigned test_admin_port;

/* A snapshot like core.c will return: heap-allocated, freed by admin. */
static struct stats_snapshot *
test_admin_snapshot(void *ctx)
{
    struct test_admin_fake *f = ctx;
    struct stats_snapshot *snap;
    struct stats_pool *p;
    struct stats_backend *b;

    snap = calloc(1, sizeof(*snap));
    p = calloc(1, sizeof(*p));
    b = calloc(1, sizeof(*b));
    cr_assert(snap != NULL && p != NULL && b != NULL);
    p->listen = calloc(1, sizeof(*p->listen));
    cr_assert_not_null(p->listen);
    snprintf(p->listen[0], sizeof(p->listen[0]), "127.0.0.1:1883");
    p->nlisten = 1;
    snprintf(p->name, sizeof(p->name), "p1");
    p->balance = "roundrobin";
    p->check = "tcp";
    snprintf(b->name, sizeof(b->name), "b1");
    snprintf(b->address, sizeof(b->address), "127.0.0.1:1884");
    pthread_mutex_lock(&f->lock);
    b->state = f->up ? BACKEND_UP : BACKEND_DOWN;
    f->nsnapshots++;
    pthread_mutex_unlock(&f->lock);
    b->weight = 10;
    p->backends = b;
    p->nbackends = 1;
    snap->pools = p;
    snap->npools = 1;
    snap->uptime_s = 42;
    return snap;
}

static int
test_admin_action(void *ctx, const char *pool, const char *backend,
                  enum admin_action action, unsigned value, const char *who)
{
    struct test_admin_fake *f = ctx;

    if (strcmp(pool, "p1") != 0) {
        return ADMIN_NO_POOL;
    }
    if (strcmp(backend, "b1") != 0) {
        return ADMIN_NO_BACKEND;
    }
    pthread_mutex_lock(&f->lock);
    f->nactions++;
    snprintf(f->pool, sizeof(f->pool), "%s", pool);
    snprintf(f->backend, sizeof(f->backend), "%s", backend);
    f->action = action;
    f->value = value;
    snprintf(f->who, sizeof(f->who), "%s", who);
    pthread_mutex_unlock(&f->lock);
    return MQ_OK;
}

static void
test_admin_start_hosts(const char *token, const char *hosts)
{
    struct admin_ops ops;
    struct config_addr addr;
    struct sockaddr_in *sin;
    char err[MQ_ERR_LEN];

    memset(&addr, 0, sizeof(addr));
    sin = (struct sockaddr_in *)&addr.ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(0);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.len = sizeof(*sin);
    snprintf(addr.text, sizeof(addr.text), "127.0.0.1:0");

    memset(&ops, 0, sizeof(ops));
    ops.ctx = &test_admin_fake;
    ops.snapshot = test_admin_snapshot;
    ops.action = test_admin_action;
    err[0] = '\0';
    test_admin_server = admin_start(&addr, token, hosts, &ops, err);
    cr_assert_not_null(test_admin_server, "admin_start: %s", err);
    test_admin_port = admin_port(test_admin_server);
    cr_assert_neq(test_admin_port, 0);
}

static void
test_admin_start(const char *token)
{
    test_admin_start_hosts(token, NULL);
}

static void
test_admin_start_open(void)
{
    test_admin_start(NULL);
}

static void
test_admin_start_named(void)
{
    test_admin_start_hosts(NULL, "lb.example mqlb.example.test");
}

static void
test_admin_start_token(void)
{
    test_admin_start("s3cret");
}

static void
test_admin_stop(void)
{
    admin_stop(test_admin_server);
    test_admin_server = NULL;
}

/* A connected client socket with 5 s send and receive timeouts. */
static int
test_admin_connect(void)
{
    struct sockaddr_in sin;
    struct timeval tv = { .tv_sec = 5, .tv_usec = 0 };
    int fd;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_neq(fd, -1);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)test_admin_port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_neq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), -1,
                  "connect: %s", strerror(errno));
    return fd;
}

/* Send <len> bytes, ignoring failures: the server may close early. */
static void
test_admin_send(int fd, const char *buf, size_t len)
{
    ssize_t n;

    while (len > 0) {
        n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n == -1) {
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* Read until EOF, reset or timeout; a NUL-terminated string to free. */
static char *
test_admin_read_all(int fd)
{
    size_t len = 0, cap = 8192;
    char *buf;
    ssize_t n;

    buf = malloc(cap);
    cr_assert_not_null(buf);
    for (;;) {
        if (cap - len < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        n = recv(fd, buf + len, cap - len - 1, 0);
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

/* A parsed response. */
struct test_admin_resp {
    int                 status;         /* 0 when nothing came back */
    char               *raw;            /* whole response, owned */
    const char         *body;           /* into <raw> */
};

/* Send the raw request <req> on a new connection and read the answer. */
static struct test_admin_resp
test_admin_raw(const char *req, size_t len)
{
    struct test_admin_resp r;
    const char *sep;
    int fd;

    memset(&r, 0, sizeof(r));
    fd = test_admin_connect();
    test_admin_send(fd, req, len);
    r.raw = test_admin_read_all(fd);
    close(fd);
    if (sscanf(r.raw, "HTTP/1.%*c %d", &r.status) != 1) {
        r.status = 0;
    }
    sep = strstr(r.raw, "\r\n\r\n");
    r.body = sep != NULL ? sep + 4 : "";
    return r;
}

/* <method> <target> with an optional extra header line (no CRLF). */
static struct test_admin_resp
test_admin_req(const char *method, const char *target, const char *header)
{
    char req[1024];
    int n;

    n = snprintf(req, sizeof(req),
                 "%s %s HTTP/1.1\r\nHost: localhost\r\n%s%s"
                 "Connection: close\r\n\r\n", method, target,
                 header != NULL ? header : "", header != NULL ? "\r\n" : "");
    cr_assert(n > 0 && (size_t)n < sizeof(req));
    return test_admin_raw(req, (size_t)n);
}

/* Case-insensitive: does the head of <r> have the line "<hdr>"? */
static bool
test_admin_has_header(const struct test_admin_resp *r, const char *hdr)
{
    const char *p;
    size_t n = strlen(hdr);

    for (p = strstr(r->raw, "\r\n"); p != NULL && p < r->body;
         p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, hdr, n) == 0 &&
            (p[2 + n] == '\r' || p[2 + n] == '\0')) {
            return true;
        }
    }
    return false;
}

/* The body is {"error":"..."} and nothing else. */
static void
test_admin_assert_error_body(const struct test_admin_resp *r)
{
    json_error_t jerr;
    json_t *j;

    j = json_loads(r->body, 0, &jerr);
    cr_assert_not_null(j, "not JSON: %s", r->body);
    cr_assert(json_is_string(json_object_get(j, "error")));
    cr_assert_eq(json_object_size(j), 1);
    json_decref(j);
}

static void
test_admin_resp_free(struct test_admin_resp *r)
{
    mq_free(r->raw);
}

/* The status of GET /health naming <host> in its Host header. */
static int
test_admin_health_status(const char *host)
{
    struct test_admin_resp r;
    char req[512];
    int status;

    snprintf(req, sizeof(req), "GET /health HTTP/1.1\r\nHost: %s\r\n"
             "Connection: close\r\n\r\n", host);
    r = test_admin_raw(req, strlen(req));
    status = r.status;
    test_admin_resp_free(&r);
    return status;
}

TestSuite(admin_http, .init = test_admin_start_open,
          .fini = test_admin_stop, .timeout = 60);

Test(admin_http, health_follows_the_snapshot)
{
    struct test_admin_resp r;

    r = test_admin_req("GET", "/health", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_str_eq(r.body, "ok\n");
    cr_assert(test_admin_has_header(&r,
              "Content-Type: text/plain; charset=utf-8"));
    test_admin_resp_free(&r);

    pthread_mutex_lock(&test_admin_fake.lock);
    test_admin_fake.up = false;
    pthread_mutex_unlock(&test_admin_fake.lock);
    r = test_admin_req("GET", "/health", NULL);
    cr_assert_eq(r.status, 503, "%s", r.raw);
    cr_assert_str_eq(r.body, "unavailable\n");
    test_admin_resp_free(&r);

    r = test_admin_req("HEAD", "/health", NULL);
    cr_assert_eq(r.status, 503, "%s", r.raw);
    cr_assert_str_eq(r.body, "");
    test_admin_resp_free(&r);
}

Test(admin_http, status_is_json)
{
    struct test_admin_resp r;
    json_error_t jerr;
    json_t *j, *b;

    r = test_admin_req("GET", "/status", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert(test_admin_has_header(&r, "Content-Type: application/json"));
    cr_assert(test_admin_has_header(&r, "Cache-Control: no-store"));
    j = json_loads(r.body, 0, &jerr);
    cr_assert_not_null(j, "%s: %s", jerr.text, r.body);
    cr_assert_eq(json_integer_value(json_object_get(j, "uptime_s")), 42);
    b = json_array_get(json_object_get(json_array_get(
        json_object_get(j, "pools"), 0), "backends"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(b, "name")), "b1");
    cr_assert_str_eq(json_string_value(json_object_get(b, "state")), "up");
    json_decref(j);
    test_admin_resp_free(&r);
}

Test(admin_http, metrics_is_prometheus_text)
{
    struct test_admin_resp r;

    r = test_admin_req("GET", "/metrics", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert(test_admin_has_header(&r,
              "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
    cr_assert_not_null(strstr(r.body,
        "mqlb_backend_up{pool=\"p1\",backend=\"b1\"} 1\n"));
    test_admin_resp_free(&r);
}

Test(admin_http, dashboard_is_html)
{
    struct test_admin_resp r;

    r = test_admin_req("GET", "/", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert(test_admin_has_header(&r,
              "Content-Type: text/html; charset=utf-8"));
    cr_assert_not_null(strstr(r.body, "<!DOCTYPE html>"));
    cr_assert_not_null(strstr(r.body, "</html>"));
    cr_assert_not_null(strstr(r.body, "fetch(\"status\""));
    test_admin_resp_free(&r);
}

Test(admin_http, errors_have_status_and_json_body)
{
    struct test_admin_resp r;

    r = test_admin_req("GET", "/nope", NULL);
    cr_assert_eq(r.status, 404, "%s", r.raw);
    test_admin_assert_error_body(&r);
    cr_assert(test_admin_has_header(&r, "Content-Type: application/json"));
    test_admin_resp_free(&r);

    r = test_admin_req("POST", "/status", NULL);
    cr_assert_eq(r.status, 405, "%s", r.raw);
    cr_assert(test_admin_has_header(&r, "Allow: GET, HEAD"));
    test_admin_assert_error_body(&r);
    test_admin_resp_free(&r);

    r = test_admin_req("GET", "/pools/p1/backends/b1/drain", NULL);
    cr_assert_eq(r.status, 405, "%s", r.raw);
    cr_assert(test_admin_has_header(&r, "Allow: POST"));
    test_admin_resp_free(&r);

    r = test_admin_req("POST", "/pools/p1/backends/b1/weight?value=300",
                       NULL);
    cr_assert_eq(r.status, 400, "%s", r.raw);
    test_admin_assert_error_body(&r);
    test_admin_resp_free(&r);

    r = test_admin_req("POST", "/pools/p1/backends/b1/weight", NULL);
    cr_assert_eq(r.status, 400, "%s", r.raw);
    test_admin_resp_free(&r);

    r = test_admin_req("POST", "/pools/zz/backends/b1/drain", NULL);
    cr_assert_eq(r.status, 404, "%s", r.raw);
    test_admin_assert_error_body(&r);
    test_admin_resp_free(&r);

    r = test_admin_req("POST", "/pools/p1/backends/zz/drain", NULL);
    cr_assert_eq(r.status, 404, "%s", r.raw);
    test_admin_resp_free(&r);

    cr_assert_eq(test_admin_fake.nactions, 0);
}

Test(admin_http, post_actions_reach_the_core)
{
    static const char with_body[] =
        "POST /pools/p1/backends/b1/enable HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    struct test_admin_resp r;
    json_t *j;

    r = test_admin_req("POST", "/pools/p1/backends/b1/drain", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    j = json_loads(r.body, 0, NULL);
    cr_assert_not_null(j, "%s", r.body);
    cr_assert(json_is_true(json_object_get(j, "ok")));
    cr_assert_str_eq(json_string_value(json_object_get(j, "action")),
                     "drain");
    json_decref(j);
    test_admin_resp_free(&r);
    pthread_mutex_lock(&test_admin_fake.lock);
    cr_assert_eq(test_admin_fake.nactions, 1);
    cr_assert_str_eq(test_admin_fake.pool, "p1");
    cr_assert_str_eq(test_admin_fake.backend, "b1");
    cr_assert_eq(test_admin_fake.action, ADMIN_ACTION_DRAIN);
    cr_assert_str_eq(test_admin_fake.who, "127.0.0.1", "the client's address");
    pthread_mutex_unlock(&test_admin_fake.lock);

    r = test_admin_req("POST", "/pools/p1/backends/b1/weight?value=17",
                       NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_not_null(strstr(r.body, "\"weight\":17"), "%s", r.body);
    test_admin_resp_free(&r);
    pthread_mutex_lock(&test_admin_fake.lock);
    cr_assert_eq(test_admin_fake.nactions, 2);
    cr_assert_eq(test_admin_fake.action, ADMIN_ACTION_WEIGHT);
    cr_assert_eq(test_admin_fake.value, 17);
    pthread_mutex_unlock(&test_admin_fake.lock);

    /* a body is not needed and does no harm */
    r = test_admin_raw(with_body, sizeof(with_body) - 1);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    test_admin_resp_free(&r);
    pthread_mutex_lock(&test_admin_fake.lock);
    cr_assert_eq(test_admin_fake.nactions, 3);
    cr_assert_eq(test_admin_fake.action, ADMIN_ACTION_ENABLE);
    pthread_mutex_unlock(&test_admin_fake.lock);
}

Test(admin_http, keep_alive_serves_several_requests)
{
    static const char two[] =
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        "GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    struct test_admin_resp r;

    r = test_admin_raw(two, sizeof(two) - 1);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_not_null(strstr(r.body, "HTTP/1.1 404"), "%s", r.raw);
    test_admin_resp_free(&r);
}

Test(admin_http, huge_headers_are_refused_and_server_lives)
{
    static const char head[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    struct test_admin_resp r;
    size_t big = 1024 * 1024, len;
    char *req;

    req = malloc(big + 256);
    cr_assert_not_null(req);
    memcpy(req, head, sizeof(head) - 1);
    len = sizeof(head) - 1;
    memcpy(req + len, "X-Big: ", 7);
    len += 7;
    memset(req + len, 'a', big);
    len += big;
    memcpy(req + len, "\r\n\r\n", 4);
    len += 4;
    r = test_admin_raw(req, len);
    free(req);
    /* an error status or a plain close are both fine; a 200 is not */
    cr_assert(r.status == 0 || r.status >= 400, "status %d", r.status);
    test_admin_resp_free(&r);

    r = test_admin_req("GET", "/health", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    test_admin_resp_free(&r);
}

Test(admin_http, garbage_and_half_requests_do_not_stall_it)
{
    static const char *const bad[] = {
        "\x16\x03\x01\x02\xfc\x01\x01\xfc\x03\x03\r\n\r\n",
        "GARBAGE\r\n\r\n",
        "GET\r\n\r\n",
        "GET /health HTTP/9.9\r\n\r\n",
        "GET /%zz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    };
    struct test_admin_resp r;
    int held[8];
    size_t i;

    /* half-sent requests held open while others are served */
    for (i = 0; i < MQ_NELEMS(held); i++) {
        held[i] = test_admin_connect();
        test_admin_send(held[i], "GET /sta", 8);
    }
    for (i = 0; i < MQ_NELEMS(bad); i++) {
        r = test_admin_raw(bad[i], strlen(bad[i]));
        cr_assert_neq(r.status, 200, "%s -> %s", bad[i], r.raw);
        test_admin_resp_free(&r);
    }
    r = test_admin_req("GET", "/status", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    test_admin_resp_free(&r);
    for (i = 0; i < MQ_NELEMS(held); i++) {
        close(held[i]);
    }
}

Test(admin_http, connection_flood_is_capped_and_recovers)
{
    struct test_admin_resp r;
    int fds[100];
    size_t i;

    for (i = 0; i < MQ_NELEMS(fds); i++) {
        fds[i] = test_admin_connect();
    }
    for (i = 0; i < MQ_NELEMS(fds); i++) {
        close(fds[i]);
    }
    /* MHD notices the closes on its next poll round */
    for (i = 0; i < 50; i++) {
        r = test_admin_req("GET", "/health", NULL);
        if (r.status == 200) {
            break;
        }
        test_admin_resp_free(&r);
        usleep(100 * 1000);
    }
    cr_assert_eq(r.status, 200, "%s", r.raw);
    test_admin_resp_free(&r);
}

Test(admin_auth, token_is_required_everywhere, .init = test_admin_start_token,
     .fini = test_admin_stop, .timeout = 60)
{
    static const char *const gets[] = { "/health", "/status", "/metrics",
                                        "/nope" };
    struct test_admin_resp r;
    size_t i;

    for (i = 0; i < MQ_NELEMS(gets); i++) {
        r = test_admin_req("GET", gets[i], NULL);
        cr_assert_eq(r.status, 401, "%s: %s", gets[i], r.raw);
        cr_assert(test_admin_has_header(&r,
                  "WWW-Authenticate: Bearer realm=\"mqlb\""));
        test_admin_assert_error_body(&r);
        test_admin_resp_free(&r);
    }
    r = test_admin_req("GET", "/status", "Authorization: Bearer wrong");
    cr_assert_eq(r.status, 401, "%s", r.raw);
    test_admin_resp_free(&r);
    r = test_admin_req("POST", "/pools/p1/backends/b1/drain",
                       "Authorization: Bearer s3cre");
    cr_assert_eq(r.status, 401, "%s", r.raw);
    test_admin_resp_free(&r);
    cr_assert_eq(test_admin_fake.nactions, 0);

    r = test_admin_req("GET", "/status", "Authorization: Bearer s3cret");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    test_admin_resp_free(&r);
    r = test_admin_req("GET", "/nope", "Authorization: Bearer s3cret");
    cr_assert_eq(r.status, 404, "%s", r.raw);
    test_admin_resp_free(&r);
    r = test_admin_req("POST", "/pools/p1/backends/b1/drain",
                       "Authorization: Bearer s3cret");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    test_admin_resp_free(&r);
    cr_assert_eq(test_admin_fake.nactions, 1);

    /* The dashboard page holds no data: it is served without the token
     * and asks for it (issue 12 item 8); a token in the query opens
     * nothing. */
    r = test_admin_req("GET", "/", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert(test_admin_has_header(&r, "Content-Type: text/html; "
                                    "charset=utf-8"), "%s", r.raw);
    cr_assert_not_null(strstr(r.body, "id=\"tokenbox\""));
    test_admin_resp_free(&r);
    r = test_admin_req("GET", "/status?token=s3cret", NULL);
    cr_assert_eq(r.status, 401, "%s", r.raw);
    test_admin_resp_free(&r);
}

/* The allowed names hold from the first request: they were set after the
 * server started, and a request that came first was refused. */
Test(admin_guard_http, allowed_hosts_given_at_start_hold_for_the_first_request,
     .init = test_admin_start_named, .fini = test_admin_stop, .timeout = 60)
{
    char host[64];

    snprintf(host, sizeof(host), "MQLB.example.test:%u", test_admin_port);
    cr_assert_eq(test_admin_health_status(host), 200);
    cr_assert_eq(test_admin_health_status("other.example"), 403);
}

Test(admin_guard_http, foreign_host_and_cross_site_post_are_refused,
     .init = test_admin_start_open, .fini = test_admin_stop, .timeout = 60)
{
    static const char rebound[] =
        "GET /status HTTP/1.1\r\nHost: evil.example:9000\r\n"
        "Connection: close\r\n\r\n";
    struct test_admin_resp r;
    char req[256];

    /* DNS rebinding: a page of evil.example reads /status no more. */
    r = test_admin_raw(rebound, sizeof(rebound) - 1);
    cr_assert_eq(r.status, 403, "%s", r.raw);
    cr_assert_not_null(strstr(r.body, "allowed_hosts"), "%s", r.body);
    test_admin_resp_free(&r);
    /* Our own address (the port aside) and localhost are fine. */
    snprintf(req, sizeof(req), "127.0.0.1:%u", test_admin_port);
    cr_assert_eq(test_admin_health_status(req), 200);
    /* A cross-site POST: refused, and nothing happened. */
    r = test_admin_req("POST", "/pools/p1/backends/b1/drain",
                       "Origin: https://evil.example");
    cr_assert_eq(r.status, 403, "%s", r.raw);
    test_admin_resp_free(&r);
    r = test_admin_req("POST", "/pools/p1/backends/b1/drain",
                       "Origin: null");
    cr_assert_eq(r.status, 403, "%s", r.raw);
    test_admin_resp_free(&r);
    pthread_mutex_lock(&test_admin_fake.lock);
    cr_assert_eq(test_admin_fake.nactions, 0);
    pthread_mutex_unlock(&test_admin_fake.lock);
    /* The page's own POST (same origin) and a script's (no Origin) act. */
    r = test_admin_req("POST", "/pools/p1/backends/b1/drain",
                       "Origin: http://localhost");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    test_admin_resp_free(&r);
    r = test_admin_req("POST", "/pools/p1/backends/b1/enable", NULL);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    test_admin_resp_free(&r);
    /* allowed_hosts: a name the operator gave it. */
    cr_assert_eq(admin_set_hosts(test_admin_server, "lb.example, mqlb"),
                 MQ_OK);
    snprintf(req, sizeof(req), "MQLB:%u", test_admin_port);
    cr_assert_eq(test_admin_health_status(req), 200);
}

Test(admin_listen, bad_address_fails_with_a_message)
{
    struct admin_ops ops;
    struct config_addr addr;
    struct sockaddr_in *sin;
    char err[MQ_ERR_LEN];
    struct admin *a;

    memset(&addr, 0, sizeof(addr));
    sin = (struct sockaddr_in *)&addr.ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(1);
    /* TEST-NET-1: not an address of this host */
    inet_pton(AF_INET, "192.0.2.1", &sin->sin_addr);
    addr.len = sizeof(*sin);
    snprintf(addr.text, sizeof(addr.text), "192.0.2.1:1");
    memset(&ops, 0, sizeof(ops));
    err[0] = '\0';
    a = admin_start(&addr, NULL, NULL, &ops, err);
    cr_assert_null(a);
    cr_assert_not_null(strstr(err, "192.0.2.1:1"), "%s", err);
}

Test(admin_listen, ipv6_loopback_works)
{
    struct admin_ops ops;
    struct config_addr addr;
    struct sockaddr_in6 *sin6;
    char err[MQ_ERR_LEN];
    struct admin *a;

    memset(&addr, 0, sizeof(addr));
    sin6 = (struct sockaddr_in6 *)&addr.ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_loopback;
    addr.len = sizeof(*sin6);
    snprintf(addr.text, sizeof(addr.text), "[::1]:0");
    memset(&ops, 0, sizeof(ops));
    err[0] = '\0';
    a = admin_start(&addr, NULL, NULL, &ops, err);
    if (a == NULL && strstr(err, "ddress family") != NULL) {
        cr_skip_test("no IPv6 here: %s", err);
    }
    cr_assert_not_null(a, "%s", err);
    cr_assert_neq(admin_port(a), 0);
    admin_stop(a);
}
