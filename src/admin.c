/*
 * admin.c: the HTTP admin port. libmicrohttpd runs it on one thread of its
 * own, so a slow or hostile admin client never touches the relay workers;
 * data comes from ops->snapshot() and changes go through ops->action().
 *
 * No endpoint takes a body, so a request that announces one is answered as
 * soon as its headers are in and its body is never read (MHD closes the
 * connection after the answer instead). Other requests are answered once
 * complete, which keeps the connection alive for the next one. MHD's
 * connection limit, idle timeout and per-connection memory limit bound
 * what a client can hold: oversized headers get an MHD error status and a
 * close.
 *
 * Slow clients: a request must complete its headers within
 * ADMIN_HEADER_TIMEOUT_MS of the connection opening (or of the previous
 * answer on a kept-alive one), one address holds at most
 * ADMIN_MAX_CONNS_PER_IP connections, and when the slots run low the
 * connection that has waited longest for its headers is cut to make
 * room. Nobody is refused at the door: the limits cut the oldest waiting
 * connection instead, so an attacker sharing keepalived's address (the
 * loopback) cannot lock it out either. A client that trickles header bytes (slowloris) therefore holds a
 * slot for seconds at most and never all of them: a GET /health sent in
 * one packet, as keepalived sends it, always finds a slot.
 *
 * Browser guards first (admin_guard.h): a Host that is not this admin
 * port's (DNS rebinding) and, on POST, an Origin of another site are
 * refused with 403, token or not.
 *
 * Auth: with a token, every request needs "Authorization: Bearer TOKEN",
 * except GET / : the dashboard page holds no data, asks for the token and
 * sends it as a header on its own requests.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#include "mqlb/admin.h"
#include "mqlb/admin_guard.h"
#include "mqlb/common.h"
#include "mqlb/log.h"

#define ADMIN_MAX_CONNS         64          /* concurrent admin clients */
#define ADMIN_TIMEOUT_S         10          /* idle admin connection */
#define ADMIN_CONN_MEMORY       (64 * 1024) /* per connection: headers */
#define ADMIN_MAX_CONNS_PER_IP  16          /* per client address, then
                                               its oldest waiting one is cut */
#define ADMIN_SPARE_CONNS       8           /* kept free for new requests */
#define ADMIN_HEADER_TIMEOUT_MS 5000        /* headers must be in by then */
#define ADMIN_SWEEP_MS          250         /* header deadline checks */

#define ADMIN_ALLOW_GET         "GET, HEAD"
#define ADMIN_ALLOW_POST        "POST"

#define ADMIN_CT_JSON           "application/json"
#define ADMIN_CT_TEXT           "text/plain; charset=utf-8"
#define ADMIN_CT_METRICS        "text/plain; version=0.0.4; charset=utf-8"
#define ADMIN_CT_HTML           "text/html; charset=utf-8"

/* The page may only talk to us; nothing else loads, nothing frames it. */
#define ADMIN_CSP \
    "default-src 'none'; style-src 'unsafe-inline'; " \
    "script-src 'unsafe-inline'; connect-src 'self'; img-src data:; " \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* src/dashboard.html, turned into hex bytes by the Makefile. */
static const char dashboard_html[] = {
#include "dashboard.inc"
    0
};

/* One client connection, for the header deadline (see the top). */
struct admin_conn {
    struct admin_conn  *prev, *next;    /* admin's list, oldest first */
    int                 fd;             /* MHD's socket: shut down, never
                                           closed, by us */
    struct sockaddr_storage peer;       /* client address (port zeroed) */
    uint64_t            since_ms;       /* opened, or last answer sent */
    bool                answering;      /* headers in, request handled */
    bool                cut;            /* shut down by us already */
};

/* A running admin server. */
struct admin {
    struct MHD_Daemon  *daemon;         /* NULL until started */
    struct admin_ops    ops;            /* copied from the caller */
    pthread_mutex_t     token_lock;     /* guards <token> and <hosts>
                                           (reload) */
    char               *token;          /* owned; NULL = no auth */
    char               *hosts;          /* owned [admin] allowed_hosts;
                                           NULL = none */
    struct config_addr  listen;         /* for the Host check */
    atomic_bool         starting;       /* MHD messages go to start_err */
    char                start_err[MQ_ERR_LEN];  /* last message at start */
    pthread_mutex_t     conns_lock;     /* guards the members below */
    pthread_cond_t      conns_cond;     /* wakes the sweeper to stop */
    struct admin_conn  *conns_head;     /* oldest connection */
    struct admin_conn  *conns_tail;     /* newest */
    unsigned            nconns;         /* connections not cut */
    bool                sweeping;       /* the sweeper thread runs */
    bool                stopping;       /* sweeper: leave */
    pthread_t           sweeper;        /* enforces the header deadline */
};

/* The verbs of POST /pools/P/backends/B/{verb}. */
struct admin_verb {
    const char         *name;           /* last path segment */
    enum admin_action   action;         /* what it asks of the core */
};

static const struct admin_verb admin_verbs[] = {
    { "drain",      ADMIN_ACTION_DRAIN },
    { "disable",    ADMIN_ACTION_DISABLE },
    { "enable",     ADMIN_ACTION_ENABLE },
    { "weight",     ADMIN_ACTION_WEIGHT },
};

/* ---- pure parts: tokens and routing --------------------------------- */

/*
 * Compare <glen> bytes of <given> with <token>: every byte up to the
 * longer length is looked at, so the time says nothing about where the
 * first difference is.
 */
static bool
admin_token_cmp(const char *given, size_t glen, const char *token)
{
    volatile unsigned char diff;
    size_t tlen, n, i;
    unsigned char g, t;

    tlen = strlen(token);
    n = MQ_MAX(glen, tlen);
    diff = glen != tlen;
    for (i = 0; i < n; i++) {
        g = i < glen ? (unsigned char)given[i] : 0;
        t = i < tlen ? (unsigned char)token[i] : 0;
        diff |= g ^ t;
    }
    return diff == 0;
}

bool
admin_token_equal(const char *given, const char *token)
{
    if (given == NULL || token == NULL) {
        return false;
    }
    return admin_token_cmp(given, strlen(given), token);
}

bool
admin_token_ok(const char *header, const char *token)
{
    size_t len;

    if (token == NULL || token[0] == '\0') {
        return true;
    }
    if (header == NULL) {
        return false;
    }
    while (*header == ' ' || *header == '\t') {
        header++;
    }
    /* the auth scheme is case-insensitive (RFC 9110 11.1) */
    if (strncasecmp(header, "Bearer", 6) != 0 ||
        (header[6] != ' ' && header[6] != '\t')) {
        return false;
    }
    header += 6;
    while (*header == ' ' || *header == '\t') {
        header++;
    }
    len = strlen(header);
    while (len > 0 && (header[len - 1] == ' ' || header[len - 1] == '\t')) {
        len--;
    }
    return admin_token_cmp(header, len, token);
}

static bool
admin_is_get(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

/*
 * Copy the name at <*p> up to the next '/' or the end into <out>
 * (CONFIG_NAME_LEN) and move <*p> past it. False when it is empty, too
 * long, or has a character outside [A-Za-z0-9_.-].
 */
static bool
admin_take_name(const char **p, char *out)
{
    const char *s;
    size_t n;

    s = *p;
    for (n = 0; s[n] != '\0' && s[n] != '/'; n++) {
        char c = s[n];

        if (n + 1 >= CONFIG_NAME_LEN) {
            return false;
        }
        if (!config_name_char((unsigned char)c)) {
            return false;
        }
        out[n] = c;
    }
    if (n == 0) {
        return false;
    }
    out[n] = '\0';
    *p = s + n;
    return true;
}

/* Skip the literal <lit> at <*p>; false when it is not there. */
static bool
admin_take_lit(const char **p, const char *lit)
{
    size_t n;

    n = strlen(lit);
    if (strncmp(*p, lit, n) != 0) {
        return false;
    }
    *p += n;
    return true;
}

/* Parse a weight: 1 to 3 decimal digits, at most ADMIN_WEIGHT_MAX. */
static bool
admin_parse_weight(const char *text, unsigned *out)
{
    unsigned v;
    size_t i;

    v = 0;
    for (i = 0; text[i] != '\0'; i++) {
        if (i == 3 || text[i] < '0' || text[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned)(text[i] - '0');
    }
    if (i == 0 || v > ADMIN_WEIGHT_MAX) {
        return false;
    }
    *out = v;
    return true;
}

/* Route the action paths: /pools/POOL/backends/NAME/VERB. */
static int
admin_route_action(const char *method, const char *path, const char *value,
                   struct admin_req *out)
{
    const struct admin_verb *verb;
    size_t i;

    if (!admin_take_lit(&path, "/pools/") ||
        !admin_take_name(&path, out->pool) ||
        !admin_take_lit(&path, "/backends/") ||
        !admin_take_name(&path, out->backend) ||
        !admin_take_lit(&path, "/")) {
        out->error = "not found";
        return MHD_HTTP_NOT_FOUND;
    }
    verb = NULL;
    for (i = 0; i < MQ_NELEMS(admin_verbs); i++) {
        if (strcmp(path, admin_verbs[i].name) == 0) {
            verb = &admin_verbs[i];
            break;
        }
    }
    if (verb == NULL) {
        out->error = "not found";
        return MHD_HTTP_NOT_FOUND;
    }
    if (strcmp(method, "POST") != 0) {
        out->allow = ADMIN_ALLOW_POST;
        out->error = "method not allowed";
        return MHD_HTTP_METHOD_NOT_ALLOWED;
    }
    out->endpoint = ADMIN_EP_ACTION;
    out->action = verb->action;
    if (verb->action != ADMIN_ACTION_WEIGHT) {
        return MHD_HTTP_OK;
    }
    if (value == NULL) {
        out->error = "missing value";
        return MHD_HTTP_BAD_REQUEST;
    }
    if (!admin_parse_weight(value, &out->value)) {
        out->error = "bad value: want an integer 0..256";
        return MHD_HTTP_BAD_REQUEST;
    }
    return MHD_HTTP_OK;
}

int
admin_route(const char *method, const char *path, const char *value,
            struct admin_req *out)
{
    static const struct {
        const char         *path;
        enum admin_endpoint endpoint;
    } gets[] = {
        { "/health",    ADMIN_EP_HEALTH },
        { "/status",    ADMIN_EP_STATUS },
        { "/metrics",   ADMIN_EP_METRICS },
        { "/history",   ADMIN_EP_HISTORY },
        { "/",          ADMIN_EP_DASHBOARD },
    };
    static const struct {
        const char         *path;
        unsigned            what;
    } controls[] = {
        { "/control/reload", ADMIN_CONTROL_RELOAD },
        { "/control/stop",   ADMIN_CONTROL_STOP },
    };
    size_t i;
    int status;

    memset(out, 0, sizeof(*out));
    if (method == NULL || path == NULL) {
        out->error = "bad request";
        return MHD_HTTP_BAD_REQUEST;
    }
    for (i = 0; i < MQ_NELEMS(controls); i++) {
        if (strcmp(path, controls[i].path) != 0) {
            continue;
        }
        if (strcmp(method, "POST") != 0) {
            out->allow = ADMIN_ALLOW_POST;
            out->error = "method not allowed";
            return MHD_HTTP_METHOD_NOT_ALLOWED;
        }
        out->endpoint = ADMIN_EP_CONTROL;
        out->value = controls[i].what;
        return MHD_HTTP_OK;
    }
    for (i = 0; i < MQ_NELEMS(gets); i++) {
        if (strcmp(path, gets[i].path) != 0) {
            continue;
        }
        if (!admin_is_get(method)) {
            out->allow = ADMIN_ALLOW_GET;
            out->error = "method not allowed";
            return MHD_HTTP_METHOD_NOT_ALLOWED;
        }
        out->endpoint = gets[i].endpoint;
        return MHD_HTTP_OK;
    }
    status = admin_api_route(method, path, &out->api, &out->allow,
                             &out->error);
    if (status != 0) {
        out->endpoint = ADMIN_EP_API;
        return status;
    }
    return admin_route_action(method, path, value, out);
}

/* ---- responses ------------------------------------------------------- */

/*
 * Queue <len> bytes of <body> with <status> and <type>. <mode> says who
 * owns <body>: MHD frees it (MUST_FREE), copies it, or keeps pointing at
 * it (PERSISTENT). <allow> and <auth> add the Allow and WWW-Authenticate
 * headers when not NULL.
 */
static enum MHD_Result
admin_send(struct MHD_Connection *conn, unsigned status, const char *type,
           const char *body, size_t len, enum MHD_ResponseMemoryMode mode,
           const char *allow, bool auth)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (resp == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE) {
            free((void *)body);
        }
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (allow != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    }
    if (auth) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"mqlb\"");
    }
    if (strcmp(type, ADMIN_CT_HTML) == 0) {
        MHD_add_response_header(resp, "Content-Security-Policy", ADMIN_CSP);
    }
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Send {"error":"<msg>"}; <msg> is one of our own static strings. */
static enum MHD_Result
admin_send_error(struct MHD_Connection *conn, unsigned status,
                 const char *msg, const char *allow, bool auth)
{
    char body[160];
    int n;

    n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", msg);
    if (n < 0 || (size_t)n >= sizeof(body)) {
        n = snprintf(body, sizeof(body), "{\"error\":\"error\"}\n");
    }
    return admin_send(conn, status, ADMIN_CT_JSON, body, (size_t)n,
                      MHD_RESPMEM_MUST_COPY, allow, auth);
}

/*
 * Send {"error":"<reason>"}: a reason in words, which may quote what the
 * client sent (a JSON parse error does), so it is escaped by jansson.
 */
static enum MHD_Result
admin_send_reason(struct MHD_Connection *conn, unsigned status,
                  const char *reason)
{
    json_t *o;
    char *text;
    size_t n;

    o = json_pack("{ss}", "error", reason);
    text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII)
                     : NULL;
    json_decref(o);
    if (text == NULL) {
        return admin_send_error(conn, status, "error", NULL, false);
    }
    n = strlen(text);
    return admin_send(conn, status, ADMIN_CT_JSON, text, n,
                      MHD_RESPMEM_MUST_FREE, NULL, false);
}

/* Send a string we allocated; NULL means we ran out of memory. */
static enum MHD_Result
admin_send_owned(struct MHD_Connection *conn, const char *type, char *text)
{
    if (text == NULL) {
        return admin_send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "out of memory", NULL, false);
    }
    return admin_send(conn, MHD_HTTP_OK, type, text, strlen(text),
                      MHD_RESPMEM_MUST_FREE, NULL, false);
}

static enum MHD_Result
admin_do_health(struct admin *a, struct MHD_Connection *conn)
{
    struct stats_snapshot *snap;
    int up;

    snap = a->ops.snapshot != NULL ? a->ops.snapshot(a->ops.ctx) : NULL;
    up = stats_all_pools_up(snap);
    stats_snapshot_free(snap);
    if (up) {
        return admin_send(conn, MHD_HTTP_OK, ADMIN_CT_TEXT, "ok\n", 3,
                          MHD_RESPMEM_PERSISTENT, NULL, false);
    }
    return admin_send(conn, MHD_HTTP_SERVICE_UNAVAILABLE, ADMIN_CT_TEXT,
                      "unavailable\n", 12, MHD_RESPMEM_PERSISTENT, NULL,
                      false);
}

/* /status or /metrics: render a fresh snapshot with <render>. */
static enum MHD_Result
admin_do_render(struct admin *a, struct MHD_Connection *conn,
                const char *type,
                char *(*render)(const struct stats_snapshot *))
{
    struct stats_snapshot *snap;
    char *text;

    snap = a->ops.snapshot != NULL ? a->ops.snapshot(a->ops.ctx) : NULL;
    if (snap == NULL) {
        return admin_send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "no snapshot", NULL, false);
    }
    text = render(snap);
    stats_snapshot_free(snap);
    return admin_send_owned(conn, type, text);
}

static const char *
admin_action_name(enum admin_action act)
{
    switch (act) {
    case ADMIN_ACTION_DRAIN:
        return "drain";
    case ADMIN_ACTION_DISABLE:
        return "disable";
    case ADMIN_ACTION_ENABLE:
        return "enable";
    case ADMIN_ACTION_WEIGHT:
        return "weight";
    }
    return "unknown";
}

/* The client's address as text ("127.0.0.1", "::1") into <out>. */
static void
admin_peer(struct MHD_Connection *conn, char *out, size_t size)
{
    const union MHD_ConnectionInfo *info;
    const struct sockaddr *sa;
    const void *ip;

    snprintf(out, size, "unknown");
    info = MHD_get_connection_info(conn,
                                   MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info == NULL || info->client_addr == NULL) {
        return;
    }
    sa = info->client_addr;
    if (sa->sa_family == AF_INET) {
        ip = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        ip = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    } else {
        return;
    }
    if (inet_ntop(sa->sa_family, ip, out, (socklen_t)size) == NULL) {
        snprintf(out, size, "unknown");
    }
}

static enum MHD_Result
admin_do_action(struct admin *a, struct MHD_Connection *conn,
                const struct admin_req *req)
{
    char who[INET6_ADDRSTRLEN];
    json_t *o;
    char *text;
    int rc;

    if (a->ops.action == NULL) {
        return admin_send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "actions unavailable", NULL, false);
    }
    admin_peer(conn, who, sizeof(who));
    rc = a->ops.action(a->ops.ctx, req->pool, req->backend, req->action,
                       req->value, who);
    switch (rc) {
    case MQ_OK:
        break;
    case ADMIN_NO_POOL:
        return admin_send_error(conn, MHD_HTTP_NOT_FOUND, "no such pool",
                                NULL, false);
    case ADMIN_NO_BACKEND:
        return admin_send_error(conn, MHD_HTTP_NOT_FOUND,
                                "no such backend", NULL, false);
    case ADMIN_BAD_VALUE:
        return admin_send_error(conn, MHD_HTTP_BAD_REQUEST, "bad value",
                                NULL, false);
    default:
        return admin_send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "action failed", NULL, false);
    }

    /* names passed admin_route, so they are plain ASCII */
    if (req->action == ADMIN_ACTION_WEIGHT) {
        o = json_pack("{sbsssssssI}", "ok", 1, "pool", req->pool,
                      "backend", req->backend, "action",
                      admin_action_name(req->action), "weight",
                      (json_int_t)req->value);
    } else {
        o = json_pack("{sbssssss}", "ok", 1, "pool", req->pool,
                      "backend", req->backend, "action",
                      admin_action_name(req->action));
    }
    text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL) {
        /* the action is done; say so even without memory for details */
        return admin_send(conn, MHD_HTTP_OK, ADMIN_CT_JSON,
                          "{\"ok\":true}", 11, MHD_RESPMEM_PERSISTENT,
                          NULL, false);
    }
    return admin_send_owned(conn, ADMIN_CT_JSON, text);
}

/* What <*req_cls> holds when it is not a body being gathered. */
static char admin_mark_wait;        /* headers seen, answer when complete */
static char admin_mark_done;        /* answered early */

static bool
admin_is_body(const void *req_cls)
{
    return req_cls != &admin_mark_wait && req_cls != &admin_mark_done;
}

/* The body of a POST /pools/P/backends, gathered across MHD's calls. */
struct admin_body {
    char                buf[ADMIN_API_BODY_MAX + 1];
    size_t              len;            /* bytes kept in <buf> */
    bool                too_large;      /* more came than ADMIN_API_BODY_MAX */
};

/* The admin client's address, for the log lines of changes. */
static void
admin_client_text(struct MHD_Connection *conn, char *out, size_t len)
{
    const union MHD_ConnectionInfo *info;
    char ip[64];
    const void *src;
    int family;

    snprintf(out, len, "?");
    info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info == NULL || info->client_addr == NULL) {
        return;
    }
    family = info->client_addr->sa_family;
    if (family == AF_INET) {
        src = &((const struct sockaddr_in *)info->client_addr)->sin_addr;
    } else if (family == AF_INET6) {
        src = &((const struct sockaddr_in6 *)info->client_addr)->sin6_addr;
    } else {
        return;
    }
    if (inet_ntop(family, src, ip, sizeof(ip)) != NULL) {
        snprintf(out, len, "%s", ip);
    }
}

/* The runtime API: take the query and body arguments, ask the core. */
static enum MHD_Result
admin_do_api(struct admin *a, struct MHD_Connection *conn,
             struct admin_req *req, const struct admin_body *body)
{
    struct admin_api_reply reply;
    char err[200];
    int rc = MQ_OK;

    if (a->ops.api == NULL) {
        return admin_send_error(conn, MHD_HTTP_NOT_FOUND, "not found", NULL,
                                false);
    }
    admin_client_text(conn, req->api.who, sizeof(req->api.who));
    err[0] = '\0';
    switch (req->api.op) {
    case ADMIN_API_SESSIONS:
        rc = admin_api_sessions_args(
            MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "pool"),
            MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                        "backend"),
            MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit"),
            &req->api, err, sizeof(err));
        break;
    case ADMIN_API_ADDRESS:
        rc = admin_api_address_arg(
            MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "value"),
            &req->api, err, sizeof(err));
        break;
    case ADMIN_API_ADD_BACKEND:
        if (body == NULL) {
            rc = admin_api_parse_backend("", 0, &req->api.spec, err,
                                         sizeof(err));
        } else if (body->too_large) {
            snprintf(err, sizeof(err), "body too large (at most %d bytes)",
                     ADMIN_API_BODY_MAX);
            rc = MQ_ERR;
        } else {
            rc = admin_api_parse_backend(body->buf, body->len,
                                         &req->api.spec, err, sizeof(err));
        }
        break;
    default:
        break;
    }
    if (rc != MQ_OK) {
        return admin_send_reason(conn, MHD_HTTP_BAD_REQUEST, err);
    }
    a->ops.api(a->ops.ctx, &req->api, &reply);
    if (reply.status < 200 || reply.status > 299 || reply.body == NULL) {
        free(reply.body);
        return admin_send_reason(conn, reply.status >= 400 ? reply.status
                                 : MHD_HTTP_INTERNAL_SERVER_ERROR,
                                 reply.error[0] != '\0' ? reply.error
                                                        : "failed");
    }
    return admin_send(conn, reply.status, ADMIN_CT_JSON, reply.body,
                      strlen(reply.body), MHD_RESPMEM_MUST_FREE, NULL, false);
}

/* True when the request may proceed: see the auth note at the top. */
static bool
admin_authorized(struct admin *a, struct MHD_Connection *conn)
{
    const char *hdr;
    bool ok;

    pthread_mutex_lock(&a->token_lock);
    if (a->token == NULL) {
        ok = true;
    } else {
        hdr = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                          MHD_HTTP_HEADER_AUTHORIZATION);
        ok = admin_token_ok(hdr, a->token);
    }
    pthread_mutex_unlock(&a->token_lock);
    return ok;
}

/* GET /history: the samples behind the dashboard's charts. */
static enum MHD_Result
admin_do_history(struct admin *a, struct MHD_Connection *conn)
{
    char *text;

    if (a->ops.history == NULL ||
        (text = a->ops.history(a->ops.ctx)) == NULL) {
        return admin_send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                                "no history", NULL, false);
    }
    return admin_send(conn, MHD_HTTP_OK, ADMIN_CT_JSON, text, strlen(text),
                      MHD_RESPMEM_MUST_FREE, NULL, false);
}

/* POST /control/...: the core answers, after the main loop did it. */
static enum MHD_Result
admin_do_control(struct admin *a, struct MHD_Connection *conn,
                 const struct admin_req *req)
{
    unsigned status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    char *text;

    if (a->ops.control == NULL) {
        return admin_send_error(conn, MHD_HTTP_NOT_FOUND, "not found", NULL,
                                false);
    }
    text = a->ops.control(a->ops.ctx, (int)req->value, &status);
    if (text == NULL) {
        return admin_send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "out of memory", NULL, false);
    }
    return admin_send(conn, status, ADMIN_CT_JSON, text, strlen(text),
                      MHD_RESPMEM_MUST_FREE, NULL, false);
}

/*
 * The browser guards (admin_guard.h): 0 when the request may go on, else
 * the 403 message. A Host that is not ours (DNS rebinding) is refused on
 * every request; an Origin that is not ours on every request that acts.
 */
static const char *
admin_guarded(struct admin *a, struct MHD_Connection *conn,
              const char *method)
{
    const char *host, *origin;
    bool ok;

    host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_HOST);
    pthread_mutex_lock(&a->token_lock);
    ok = admin_guard_host_ok(host, &a->listen, a->hosts);
    pthread_mutex_unlock(&a->token_lock);
    if (!ok) {
        return "host not allowed: add it to [admin] allowed_hosts";
    }
    if (admin_is_get(method)) {
        return NULL;
    }
    origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                         MHD_HTTP_HEADER_ORIGIN);
    if (!admin_guard_origin_ok(origin, host)) {
        return "cross-site request refused";
    }
    return NULL;
}

/*
 * Answer a complete request: the browser guards, auth, route, then the
 * endpoint. The dashboard page needs no token: it holds no data, and it
 * asks for the token the API wants.
 */
static enum MHD_Result
admin_answer(struct admin *a, struct MHD_Connection *conn, const char *url,
             const char *method, const struct admin_body *body)
{
    struct admin_req req;
    const char *value, *refused;
    int status;

    refused = admin_guarded(a, conn, method);
    if (refused != NULL) {
        return admin_send_error(conn, MHD_HTTP_FORBIDDEN, refused, NULL,
                                false);
    }
    if (!(strcmp(url, "/") == 0 && admin_is_get(method)) &&
        !admin_authorized(a, conn)) {
        return admin_send_error(conn, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                                NULL, true);
    }
    value = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                        "value");
    status = admin_route(method, url, value, &req);
    if (status != MHD_HTTP_OK) {
        return admin_send_error(conn, (unsigned)status, req.error,
                                req.allow, false);
    }
    switch (req.endpoint) {
    case ADMIN_EP_HEALTH:
        return admin_do_health(a, conn);
    case ADMIN_EP_STATUS:
        return admin_do_render(a, conn, ADMIN_CT_JSON, stats_render_json);
    case ADMIN_EP_METRICS:
        return admin_do_render(a, conn, ADMIN_CT_METRICS,
                               stats_render_metrics);
    case ADMIN_EP_DASHBOARD:
        return admin_send(conn, MHD_HTTP_OK, ADMIN_CT_HTML, dashboard_html,
                          sizeof(dashboard_html) - 1, MHD_RESPMEM_PERSISTENT,
                          NULL, false);
    case ADMIN_EP_ACTION:
        return admin_do_action(a, conn, &req);
    case ADMIN_EP_CONTROL:
        return admin_do_control(a, conn, &req);
    case ADMIN_EP_HISTORY:
        return admin_do_history(a, conn);
    case ADMIN_EP_API:
        return admin_do_api(a, conn, &req, body);
    }
    return admin_send_error(conn, MHD_HTTP_NOT_FOUND, "not found", NULL,
                            false);
}

/* ---- connections: the header deadline -------------------------------- */

static struct admin_conn *
admin_conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info;

    info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info != NULL ? info->socket_context : NULL;
}

/* Headers are in (<on>), or the answer went out: the deadline restarts. */
static void
admin_conn_answering(struct admin *a, struct MHD_Connection *conn, bool on)
{
    struct admin_conn *ac = admin_conn_of(conn);

    if (ac == NULL) {
        return;
    }
    pthread_mutex_lock(&a->conns_lock);
    ac->answering = on;
    ac->since_ms = mq_now_ms();
    pthread_mutex_unlock(&a->conns_lock);
}

/*
 * Cut <ac>: shutdown(2) makes MHD see the end at once and close the
 * socket itself, on its own thread. <ac> is still listed, so its socket
 * is still open and still this connection's. Locked.
 */
static void
admin_conn_cut(struct admin *a, struct admin_conn *ac)
{
    ac->cut = true;
    a->nconns--;
    shutdown(ac->fd, SHUT_RDWR);
}

static bool
admin_same_addr(const struct sockaddr_storage *x,
                const struct sockaddr_storage *y)
{
    return memcmp(x, y, sizeof(*x)) == 0;
}

/* Locked: cut the oldest connection before <ac> still waiting for its
 * headers, among those from <ac>'s address only if <same>. */
static void
admin_conn_cut_oldest(struct admin *a, struct admin_conn *ac, bool same)
{
    struct admin_conn *old;

    for (old = a->conns_head; old != ac; old = old->next) {
        if (!old->cut && !old->answering &&
            (!same || admin_same_addr(&old->peer, &ac->peer))) {
            admin_conn_cut(a, old);
            return;
        }
    }
}

static void
admin_notify_conn(void *cls, struct MHD_Connection *conn, void **ctx,
                  enum MHD_ConnectionNotificationCode toe)
{
    const union MHD_ConnectionInfo *info, *addr;
    struct admin *a = cls;
    struct admin_conn *ac, *old;
    unsigned nsame;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        info = MHD_get_connection_info(conn,
                                       MHD_CONNECTION_INFO_CONNECTION_FD);
        addr = MHD_get_connection_info(conn,
                                       MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        ac = calloc(1, sizeof(*ac));
        if (ac == NULL || info == NULL) {
            free(ac);
            return;
        }
        ac->fd = info->connect_fd;
        if (addr != NULL && addr->client_addr != NULL) {
            if (addr->client_addr->sa_family == AF_INET6) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ac->peer;

                s6->sin6_family = AF_INET6;
                s6->sin6_addr =
                    ((const struct sockaddr_in6 *)addr->client_addr)->sin6_addr;
            } else if (addr->client_addr->sa_family == AF_INET) {
                struct sockaddr_in *s4 = (struct sockaddr_in *)&ac->peer;

                s4->sin_family = AF_INET;
                s4->sin_addr =
                    ((const struct sockaddr_in *)addr->client_addr)->sin_addr;
            }
        }
        ac->since_ms = mq_now_ms();
        pthread_mutex_lock(&a->conns_lock);
        ac->prev = a->conns_tail;
        if (a->conns_tail != NULL) {
            a->conns_tail->next = ac;
        } else {
            a->conns_head = ac;
        }
        a->conns_tail = ac;
        a->nconns++;
        nsame = 0;
        for (old = a->conns_head; old != NULL; old = old->next) {
            nsame += !old->cut && admin_same_addr(&old->peer, &ac->peer);
        }
        /* One address holds at most its share, and spare slots stay
         * free: room is made at the cost of the client that has waited
         * longest for its own headers. */
        if (nsame > ADMIN_MAX_CONNS_PER_IP) {
            admin_conn_cut_oldest(a, ac, true);
        }
        if (a->nconns > ADMIN_MAX_CONNS - ADMIN_SPARE_CONNS) {
            admin_conn_cut_oldest(a, ac, false);
        }
        pthread_mutex_unlock(&a->conns_lock);
        *ctx = ac;
        return;
    }
    ac = *ctx;
    if (toe != MHD_CONNECTION_NOTIFY_CLOSED || ac == NULL) {
        return;
    }
    pthread_mutex_lock(&a->conns_lock);
    if (ac->prev != NULL) {
        ac->prev->next = ac->next;
    } else {
        a->conns_head = ac->next;
    }
    if (ac->next != NULL) {
        ac->next->prev = ac->prev;
    } else {
        a->conns_tail = ac->prev;
    }
    if (!ac->cut) {
        a->nconns--;
    }
    pthread_mutex_unlock(&a->conns_lock);
    free(ac);
    *ctx = NULL;
}

static void
admin_request_done(void *cls, struct MHD_Connection *conn, void **req_cls,
                   enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    admin_conn_answering(cls, conn, false);
    if (req_cls != NULL && *req_cls != NULL && admin_is_body(*req_cls)) {
        free(*req_cls);     /* ended before its answer (client gone) */
        *req_cls = NULL;
    }
}

/* The sweeper thread: cut connections past the header deadline. */
static void *
admin_sweeper_main(void *arg)
{
    struct admin *a = arg;
    struct admin_conn *ac;
    struct timespec ts;
    uint64_t now;

    pthread_mutex_lock(&a->conns_lock);
    while (!a->stopping) {
        now = mq_now_ms();
        for (ac = a->conns_head; ac != NULL; ac = ac->next) {
            if (!ac->cut && !ac->answering &&
                now - ac->since_ms >= ADMIN_HEADER_TIMEOUT_MS) {
                admin_conn_cut(a, ac);
            }
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)ADMIN_SWEEP_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&a->conns_cond, &a->conns_lock, &ts);
    }
    pthread_mutex_unlock(&a->conns_lock);
    return NULL;
}

/* True when the request announces a body (length > 0, or chunked). */
static bool
admin_has_body(struct MHD_Connection *conn)
{
    const char *len;

    if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                    MHD_HTTP_HEADER_TRANSFER_ENCODING)
        != NULL) {
        return true;
    }
    len = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                      MHD_HTTP_HEADER_CONTENT_LENGTH);
    return len != NULL && strspn(len, "0") != strlen(len);
}

/*
 * Does this request carry a body we read: an authorized POST
 * /pools/P/backends. Anything else with a body is answered at once.
 */
static bool
admin_wants_body(struct admin *a, struct MHD_Connection *conn,
                 const char *url, const char *method)
{
    struct admin_api_req api;
    const char *allow, *error;

    return admin_api_route(method, url, &api, &allow, &error) == 200 &&
           api.op == ADMIN_API_ADD_BACKEND &&
           admin_guarded(a, conn, method) == NULL &&
           admin_authorized(a, conn);
}

/*
 * MHD's access handler; <*req_cls> marks how far the request got: NULL
 * (new), a mark, or the body being gathered. See the top comment for why
 * other requests with a body are answered at once.
 */
static enum MHD_Result
admin_handler(void *cls, struct MHD_Connection *conn, const char *url,
              const char *method, const char *version,
              const char *upload_data, size_t *upload_data_size,
              void **req_cls)
{
    struct admin *a = cls;
    struct admin_body *body;
    enum MHD_Result ret;
    size_t n;

    (void)version;

    if (*req_cls == NULL) {
        admin_conn_answering(a, conn, true);
        if (admin_wants_body(a, conn, url, method)) {
            /* POST /pools/P/backends: gather the body (bounded) first */
            body = calloc(1, sizeof(*body));
            if (body == NULL) {
                *req_cls = &admin_mark_done;
                return admin_send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                        "out of memory", NULL, false);
            }
            *req_cls = body;
            return MHD_YES;
        }
        if (!admin_has_body(conn)) {
            /* answer on the next call: the connection can be kept alive */
            *req_cls = &admin_mark_wait;
            return MHD_YES;
        }
        *req_cls = &admin_mark_done;
        return admin_answer(a, conn, url, method, NULL);
    }
    if (admin_is_body(*req_cls)) {
        body = *req_cls;
        if (*upload_data_size != 0) {
            n = MQ_MIN(*upload_data_size, ADMIN_API_BODY_MAX - body->len);
            memcpy(body->buf + body->len, upload_data, n);
            body->len += n;
            if (n < *upload_data_size) {
                body->too_large = true;     /* the rest is dropped */
            }
            *upload_data_size = 0;
            return MHD_YES;
        }
        ret = admin_answer(a, conn, url, method, body);
        free(body);
        *req_cls = &admin_mark_done;
        return ret;
    }
    if (*upload_data_size != 0 || *req_cls == &admin_mark_done) {
        /* a body we never asked for: drop it */
        *upload_data_size = 0;
        return MHD_YES;
    }
    *req_cls = &admin_mark_done;
    return admin_answer(a, conn, url, method, NULL);
}

/*
 * Trim trailing line ends from <buf> (MHD's messages end with one; ours
 * get theirs from log.c).
 */
static void
admin_chomp(char *buf)
{
    size_t n;

    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        buf[--n] = '\0';
    }
}

/*
 * MHD's error log. While admin_start runs, the message is kept for its
 * error string. Afterwards MHD only reports on single client connections
 * (bad or oversized requests, early closes), so those lines are info: a
 * client sending garbage must not flood the log at the default level.
 */
static void
admin_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct admin *a = cls;
    char msg[256];

    if (atomic_load(&a->starting)) {
        vsnprintf(a->start_err, sizeof(a->start_err), fmt, ap);
        admin_chomp(a->start_err);
        return;
    }
    if (!log_enabled(LOG_INFO)) {
        return;
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    admin_chomp(msg);
    log_info("admin: %s", msg);
}

/*
 * MHD's unescaper for the path and the query arguments, which MHD hands
 * over as C strings: a "%00" decoded there would cut them short, so that
 * "/pools/p/backends/b/drain%00junk" acted as ".../drain". Such a string
 * is left escaped instead; its '%' then matches no route, name or value.
 */
static size_t
admin_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    if (strstr(s, "%00") != NULL) {
        return strlen(s);
    }
    return MHD_http_unescape(s);
}

struct admin *
admin_start(const struct config_addr *listen, const char *token,
            const char *hosts, const struct admin_ops *ops, char *err)
{
    struct admin *a;
    unsigned flags;
    int saved;

    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        snprintf(err, MQ_ERR_LEN, "admin: out of memory");
        return NULL;
    }
    a->ops = *ops;
    a->listen = *listen;
    pthread_mutex_init(&a->token_lock, NULL);
    pthread_mutex_init(&a->conns_lock, NULL);
    pthread_cond_init(&a->conns_cond, NULL);
    /* Before the daemon's thread serves a first request: a host name
     * set after it was refused until then. */
    if (admin_set_token(a, token) != MQ_OK ||
        admin_set_hosts(a, hosts) != MQ_OK) {
        admin_stop(a);
        snprintf(err, MQ_ERR_LEN, "admin: out of memory");
        return NULL;
    }
    atomic_init(&a->starting, true);

    /*
     * poll(), not MHD_USE_AUTO (epoll): with epoll, libmicrohttpd 0.9.75
     * misses the FIN of a client that half-closes after its request (or
     * after a partial one) and keeps the connection, a slot of
     * ADMIN_MAX_CONNS, until the idle timeout; poll() sees it at once.
     * With at most ADMIN_MAX_CONNS sockets, poll() costs nothing extra.
     */
    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
            MHD_USE_ERROR_LOG;
    if (listen->ss.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    errno = 0;
    a->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, admin_handler, a,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&listen->ss,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)ADMIN_MAX_CONNS,
        MHD_OPTION_NOTIFY_CONNECTION, admin_notify_conn, a,
        MHD_OPTION_NOTIFY_COMPLETED, admin_request_done, a,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)ADMIN_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)ADMIN_CONN_MEMORY,
        MHD_OPTION_EXTERNAL_LOGGER, admin_mhd_log, a,
        MHD_OPTION_UNESCAPE_CALLBACK, admin_unescape, NULL,
        MHD_OPTION_END);
    saved = errno;
    atomic_store(&a->starting, false);
    if (a->daemon == NULL) {
        if (a->start_err[0] != '\0') {
            snprintf(err, MQ_ERR_LEN,
                     "admin listen on %.80s failed: %.140s", listen->text,
                     a->start_err);
        } else {
            snprintf(err, MQ_ERR_LEN, "admin listen on %.80s failed: %s",
                     listen->text,
                     saved != 0 ? strerror(saved) : "unknown error");
        }
        admin_stop(a);
        return NULL;
    }
    if (pthread_create(&a->sweeper, NULL, admin_sweeper_main, a) != 0) {
        snprintf(err, MQ_ERR_LEN, "admin: cannot start a thread");
        admin_stop(a);
        return NULL;
    }
    (void)pthread_setname_np(a->sweeper, "mqlb-admin");
    a->sweeping = true;
    return a;
}

/* Replace the string <*field> (under token_lock) by a copy of <value>,
 * NULL for none or ""; MQ_ERR on no memory, <*field> unchanged. */
static int
admin_set_string(struct admin *a, char **field, const char *value)
{
    char *copy = NULL;

    if (value != NULL && value[0] != '\0') {
        copy = strdup(value);
        if (copy == NULL) {
            return MQ_ERR;
        }
    }
    pthread_mutex_lock(&a->token_lock);
    free(*field);
    *field = copy;
    pthread_mutex_unlock(&a->token_lock);
    return MQ_OK;
}

int
admin_set_hosts(struct admin *a, const char *names)
{
    return admin_set_string(a, &a->hosts, names);
}

int
admin_set_token(struct admin *a, const char *token)
{
    return admin_set_string(a, &a->token, token);
}

unsigned
admin_port(const struct admin *a)
{
    const union MHD_DaemonInfo *info;

    if (a == NULL || a->daemon == NULL) {
        return 0;
    }
    info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL) {
        return 0;
    }
    return info->port;
}

void
admin_stop(struct admin *a)
{
    if (a == NULL) {
        return;
    }
    if (a->sweeping) {
        pthread_mutex_lock(&a->conns_lock);
        a->stopping = true;
        pthread_cond_signal(&a->conns_cond);
        pthread_mutex_unlock(&a->conns_lock);
        pthread_join(a->sweeper, NULL);
        a->sweeping = false;
    }
    if (a->daemon != NULL) {
        MHD_stop_daemon(a->daemon);     /* CLOSED frees every conn */
        a->daemon = NULL;
    }
    mq_free(a->token);
    mq_free(a->hosts);
    pthread_mutex_destroy(&a->token_lock);
    pthread_mutex_destroy(&a->conns_lock);
    pthread_cond_destroy(&a->conns_cond);
    free(a);
}
