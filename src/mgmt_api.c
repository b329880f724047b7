/*
 * mgmt_api.c: the runtime API's callbacks, on the admin port's thread.
 * Reads hold the generation lock; changes of membership and addresses
 * run on the main loop (members_call), which owns pools, checks and DNS;
 * sessions are listed and closed by their own workers (worker_call).
 * Names are resolved here, on the admin thread, through the configured
 * resolvers: never on a worker or on the loop that runs the checks.
 */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mqlb/admin_api.h"
#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/core.h"
#include "mqlb/gen.h"
#include "mqlb/log.h"
#include "mqlb/members.h"
#include "mqlb/mgmt.h"
#include "mqlb/persist.h"
#include "mqlb/pool.h"
#include "mqlb/resolver.h"
#include "mqlb/session.h"
#include "mqlb/stats.h"
#include "mqlb/worker.h"

#define MGMT_RESOLVE_MS     2500    /* an API address's host name */

static void
mgmt_api_fail(struct admin_api_reply *out, unsigned status, const char *fmt,
              ...) __attribute__((format(printf, 3, 4)));

static void
mgmt_api_fail(struct admin_api_reply *out, unsigned status, const char *fmt,
              ...)
{
    va_list ap;

    out->status = status;
    va_start(ap, fmt);
    vsnprintf(out->error, sizeof(out->error), fmt, ap);
    va_end(ap);
}

/* ---- reads --------------------------------------------------------------- */

static void
mgmt_api_get_pool(struct core *c, const struct admin_api_req *req,
                  struct admin_api_reply *out)
{
    struct stats_pool sp;
    struct pool *p;
    int rc;

    memset(&sp, 0, sizeof(sp));
    pthread_mutex_lock(&c->gen_lock);
    p = gen_find_pool(c->gen, req->pool);
    rc = p != NULL ? mgmt_pool(c, &sp, p) : MQ_OK;
    pthread_mutex_unlock(&c->gen_lock);
    if (p == NULL) {
        mgmt_api_fail(out, 404, "no such pool");
        return;
    }
    if (rc == MQ_OK) {
        out->body = stats_render_pool_json(&sp);
    }
    free(sp.listen);
    free(sp.backends);
    if (out->body == NULL) {
        mgmt_api_fail(out, 500, "out of memory");
        return;
    }
    out->status = 200;
}

static void
mgmt_api_get_backend(struct core *c, const struct admin_api_req *req,
                     struct admin_api_reply *out, unsigned status)
{
    struct stats_backend sb;
    struct backend *b = NULL;
    struct pool *p;

    memset(&sb, 0, sizeof(sb));
    pthread_mutex_lock(&c->gen_lock);
    p = gen_find_pool(c->gen, req->pool);
    if (p != NULL) {
        b = pool_find_backend(p, req->backend);
    }
    if (b != NULL) {
        mgmt_backend(&sb, b);
    }
    pthread_mutex_unlock(&c->gen_lock);
    if (p == NULL) {
        mgmt_api_fail(out, 404, "no such pool");
        return;
    }
    if (b == NULL) {
        mgmt_api_fail(out, 404, "no such backend");
        return;
    }
    out->body = stats_render_backend_json(&sb);
    if (out->body == NULL) {
        mgmt_api_fail(out, 500, "out of memory");
        return;
    }
    out->status = status;
}

/* ---- changes on the main loop -------------------------------------------- */

/* What one change asks of the main loop, and what came of it. */
struct mgmt_change {
    const struct admin_api_req *req;
    struct config_backend cb;       /* ADD: the backend; ADDRESS: addr */
    int             rc;             /* MQ_OK or MQ_ERR */
    int             err;            /* errno on MQ_ERR */
    unsigned        status;         /* when not 2xx: the answer */
    char            error[160];
};

/* On the main loop: the pool and backend the request names, or an error. */
static struct pool *
mgmt_change_find(struct core *c, struct mgmt_change *ch, struct backend **b)
{
    struct pool *p = gen_find_pool(c->gen, ch->req->pool);

    if (p == NULL) {
        ch->status = 404;
        snprintf(ch->error, sizeof(ch->error), "no such pool");
        return NULL;
    }
    if (b != NULL) {
        *b = pool_find_backend(p, ch->req->backend);
        if (*b == NULL) {
            ch->status = 404;
            snprintf(ch->error, sizeof(ch->error), "no such backend");
            return NULL;
        }
    }
    return p;
}

static void
mgmt_change_add(struct core *c, void *arg)
{
    struct mgmt_change *ch = arg;
    struct backend *b;
    struct pool *p;

    p = mgmt_change_find(c, ch, NULL);
    if (p == NULL) {
        return;
    }
    b = pool_find_backend(p, ch->cb.name);
    if (b != NULL) {
        ch->status = 409;
        snprintf(ch->error, sizeof(ch->error), "%s",
                 atomic_load(&b->leaving)
                 ? "a backend of that name is still draining"
                 : "a backend of that name exists");
        return;
    }
    if (ch->cb.max_conns == 0) {
        ch->cb.max_conns = p->cf->max_conns_per_backend;
    }
    if (members_add(&c->members, p, &ch->cb, BACKEND_SOURCE_API) != MQ_OK) {
        ch->status = errno == ENOSPC ? 409 : 500;
        snprintf(ch->error, sizeof(ch->error), "%s", errno == ENOSPC
                 ? "the pool is full (256 backends)" : "out of memory");
        return;
    }
    (void)persist_save(c->gen, c->gen->cf->state_file);
}

static void
mgmt_change_delete(struct core *c, void *arg)
{
    struct mgmt_change *ch = arg;
    struct backend *b;
    struct pool *p;

    p = mgmt_change_find(c, ch, &b);
    if (p != NULL) {
        members_remove(&c->members, p, b, ch->req->who[0] != '\0'
                       ? ch->req->who : "admin port");
        (void)persist_save(c->gen, c->gen->cf->state_file);
    }
}

static void
mgmt_change_address(struct core *c, void *arg)
{
    struct mgmt_change *ch = arg;
    struct backend *b;
    struct pool *p;

    p = mgmt_change_find(c, ch, &b);
    if (p == NULL) {
        return;
    }
    if (atomic_load(&b->leaving)) {
        ch->status = 409;
        snprintf(ch->error, sizeof(ch->error), "the backend is leaving");
        return;
    }
    /*
     * From now on the name given here (or none: an IP address) is the one
     * DNS re-resolves. Written under the lock the admin thread reads it
     * with.
     */
    pthread_mutex_lock(&c->gen_lock);
    snprintf(b->host, sizeof(b->host), "%s", ch->cb.is_name ? ch->cb.host
                                                            : "");
    b->port = ch->cb.is_name ? ch->cb.port : 0;
    pthread_mutex_unlock(&c->gen_lock);
    if (members_readdress(&c->members, p, b, &ch->cb.addr) != MQ_OK) {
        ch->status = 500;
        snprintf(ch->error, sizeof(ch->error), "out of memory");
    }
}

/* Run <fn> on the main loop; false (and <out> set) if it did not run. */
static bool
mgmt_api_change(struct core *c, members_call_fn fn, struct mgmt_change *ch,
                struct admin_api_reply *out)
{
    if (members_call(&c->members, fn, ch) != MQ_OK) {
        mgmt_api_fail(out, 503, "busy or shutting down, try again");
        return false;
    }
    if (ch->status != 0) {
        mgmt_api_fail(out, ch->status, "%s", ch->error);
        return false;
    }
    return true;
}

/*
 * <text> (HOST:PORT) into <a>, a name resolved through the configured
 * resolvers; false with <out> set (400) when it does not resolve.
 */
static bool
mgmt_api_resolve(struct core *c, const char *text, struct config_backend *cb,
                 struct admin_api_reply *out)
{
    struct resolver_addr ra;
    char err[MQ_ERR_LEN], resolvers[1024] = "";
    bool name;

    if (config_split_hostport(text, cb->host, sizeof(cb->host), &cb->port)
        != MQ_OK) {
        mgmt_api_fail(out, 400, "bad address: want HOST:PORT");
        return false;
    }
    name = text[0] != '[' && !config_host_is_ip(cb->host);
    if (!name) {
        if (config_parse_addr(text, &cb->addr) != MQ_OK) {
            mgmt_api_fail(out, 400, "bad address '%.80s'", text);
            return false;
        }
        cb->host[0] = '\0';
        cb->port = 0;
        return true;
    }
    pthread_mutex_lock(&c->gen_lock);
    if (c->gen->cf->resolvers != NULL) {
        snprintf(resolvers, sizeof(resolvers), "%s", c->gen->cf->resolvers);
    }
    pthread_mutex_unlock(&c->gen_lock);
    if (resolver_lookup_sync(resolvers[0] != '\0' ? resolvers : NULL,
                             cb->host, cb->port, MGMT_RESOLVE_MS, &ra, err)
        != MQ_OK) {
        mgmt_api_fail(out, 400, "address: host '%.80s' does not resolve: "
                      "%.60s", cb->host, err);
        return false;
    }
    memset(&cb->addr, 0, sizeof(cb->addr));
    memcpy(&cb->addr.ss, &ra.ss, ra.len);
    cb->addr.len = ra.len;
    snprintf(cb->addr.text, sizeof(cb->addr.text), "%s", text);
    cb->is_name = 1;
    return true;
}

static void
mgmt_api_add(struct core *c, const struct admin_api_req *req,
             struct admin_api_reply *out)
{
    struct mgmt_change ch;
    struct admin_api_req get;

    memset(&ch, 0, sizeof(ch));
    ch.req = req;
    snprintf(ch.cb.name, sizeof(ch.cb.name), "%s", req->spec.name);
    ch.cb.weight = req->spec.weight;
    ch.cb.max_conns = req->spec.max_conns;
    ch.cb.backup = req->spec.backup;
    if (strlen(req->spec.address) >= sizeof(ch.cb.addr.text)) {
        mgmt_api_fail(out, 400, "address: longer than %zu characters",
                      sizeof(ch.cb.addr.text) - 1);
        return;
    }
    if (!mgmt_api_resolve(c, req->spec.address, &ch.cb, out) ||
        !mgmt_api_change(c, mgmt_change_add, &ch, out)) {
        return;
    }
    log_notice("admin %s: added backend %s/%s at %s", req->who, req->pool,
               req->spec.name, req->spec.address);
    get = *req;
    snprintf(get.backend, sizeof(get.backend), "%s", req->spec.name);
    mgmt_api_get_backend(c, &get, out, 201);
}

static void
mgmt_api_delete(struct core *c, const struct admin_api_req *req,
                struct admin_api_reply *out)
{
    struct mgmt_change ch;

    memset(&ch, 0, sizeof(ch));
    ch.req = req;
    if (mgmt_api_change(c, mgmt_change_delete, &ch, out)) {
        mgmt_api_get_backend(c, req, out, 200);
    }
}

static void
mgmt_api_address(struct core *c, const struct admin_api_req *req,
                 struct admin_api_reply *out)
{
    struct mgmt_change ch;

    memset(&ch, 0, sizeof(ch));
    ch.req = req;
    if (!mgmt_api_resolve(c, req->address, &ch.cb, out) ||
        !mgmt_api_change(c, mgmt_change_address, &ch, out)) {
        return;
    }
    log_notice("admin %s: backend %s/%s to %s", req->who, req->pool,
               req->backend, req->address);
    mgmt_api_get_backend(c, req, out, 200);
}

/* ---- sessions ------------------------------------------------------------- */

/* A /sessions or close request as each worker sees it. */
struct mgmt_sessions {
    const char         *pool;
    const char         *backend;
    uint64_t            id;         /* close: 0 = any */
    struct session_info *infos;     /* list: room for <max> */
    size_t              n, max;
    size_t              nclosed;
    bool                truncated;
};

static void
mgmt_sessions_list_fn(struct worker *w, void *arg)
{
    struct mgmt_sessions *ms = arg;
    size_t got;

    got = session_list(&w->env, ms->pool, ms->backend, ms->infos + ms->n,
                       ms->max - ms->n);
    ms->n += got;
    if (ms->n == ms->max && w->env.nsessions > got) {
        ms->truncated = true;
    }
}

static void
mgmt_sessions_close_fn(struct worker *w, void *arg)
{
    struct mgmt_sessions *ms = arg;

    ms->nclosed += session_close_matching(&w->env, ms->pool, ms->backend,
                                          ms->id, ms->id != 0
                                          ? "closed by admin"
                                          : "shutdown-sessions by admin");
}

/* Run <fn> on every worker. */
static void
mgmt_each_worker(struct core *c, worker_call_fn fn, struct mgmt_sessions *ms)
{
    unsigned i;

    for (i = 0; i < c->nworkers; i++) {
        if (ms->max > 0 && ms->n == ms->max) {
            ms->truncated = true;
            break;
        }
        worker_call(c->workers[i], fn, ms);
    }
}

static void
mgmt_api_sessions(struct core *c, const struct admin_api_req *req,
                  struct admin_api_reply *out)
{
    struct mgmt_sessions ms;
    json_t *root, *arr, *o;
    size_t i;

    memset(&ms, 0, sizeof(ms));
    ms.pool = req->pool;
    ms.backend = req->backend;
    ms.max = req->limit;
    ms.infos = calloc(ms.max, sizeof(*ms.infos));
    if (ms.infos == NULL) {
        mgmt_api_fail(out, 500, "out of memory");
        return;
    }
    mgmt_each_worker(c, mgmt_sessions_list_fn, &ms);
    arr = json_array();
    for (i = 0; arr != NULL && i < ms.n; i++) {
        o = json_pack("{sIsssssssssfsIsIsfsf}",
                      "id", (json_int_t)ms.infos[i].id,
                      "client", ms.infos[i].client,
                      "pool", ms.infos[i].pool,
                      "backend", ms.infos[i].backend,
                      "state", ms.infos[i].state,
                      "age_s", (double)ms.infos[i].age_ms / 1000.0,
                      "bytes_in", (json_int_t)ms.infos[i].bytes_in,
                      "bytes_out", (json_int_t)ms.infos[i].bytes_out,
                      "idle_s", (double)ms.infos[i].idle_ms / 1000.0,
                      "idle_timeout_s",
                      (double)ms.infos[i].idle_timeout_ms / 1000.0);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    root = arr != NULL ? json_pack("{sosIsb}", "sessions", arr, "count",
                                   (json_int_t)ms.n, "truncated",
                                   ms.truncated) : NULL;
    free(ms.infos);
    out->body = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (out->body == NULL) {
        mgmt_api_fail(out, 500, "out of memory");
        return;
    }
    out->status = 200;
}

static void
mgmt_api_close(struct core *c, const struct admin_api_req *req,
               struct admin_api_reply *out)
{
    struct mgmt_sessions ms;
    struct pool *p;
    bool found = true;
    json_t *o;

    memset(&ms, 0, sizeof(ms));
    if (req->op == ADMIN_API_SHUTDOWN_SESSIONS) {
        pthread_mutex_lock(&c->gen_lock);
        p = gen_find_pool(c->gen, req->pool);
        found = p != NULL && pool_find_backend(p, req->backend) != NULL;
        pthread_mutex_unlock(&c->gen_lock);
        if (!found) {
            mgmt_api_fail(out, 404, p == NULL ? "no such pool"
                                              : "no such backend");
            return;
        }
        ms.pool = req->pool;
        ms.backend = req->backend;
    } else {
        ms.id = req->session_id;
    }
    mgmt_each_worker(c, mgmt_sessions_close_fn, &ms);
    if (req->op == ADMIN_API_SESSION_CLOSE && ms.nclosed == 0) {
        mgmt_api_fail(out, 404, "no such session");
        return;
    }
    log_notice("admin %s: closed %zu sessions (%s%s%s)", req->who,
               ms.nclosed, req->op == ADMIN_API_SESSION_CLOSE ? "session "
               : req->pool, req->op == ADMIN_API_SESSION_CLOSE ? "" : "/",
               req->op == ADMIN_API_SESSION_CLOSE ? "by id" : req->backend);
    o = json_pack("{sbsI}", "ok", 1, "closed", (json_int_t)ms.nclosed);
    out->body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (out->body == NULL) {
        mgmt_api_fail(out, 500, "out of memory");
        return;
    }
    out->status = 200;
}

void
mgmt_api(void *ctx, const struct admin_api_req *req,
         struct admin_api_reply *out)
{
    struct core *c = ctx;

    memset(out, 0, sizeof(*out));
    switch (req->op) {
    case ADMIN_API_GET_POOL:
        mgmt_api_get_pool(c, req, out);
        break;
    case ADMIN_API_GET_BACKEND:
        mgmt_api_get_backend(c, req, out, 200);
        break;
    case ADMIN_API_ADD_BACKEND:
        mgmt_api_add(c, req, out);
        break;
    case ADMIN_API_DEL_BACKEND:
        mgmt_api_delete(c, req, out);
        break;
    case ADMIN_API_ADDRESS:
        mgmt_api_address(c, req, out);
        break;
    case ADMIN_API_SHUTDOWN_SESSIONS:
    case ADMIN_API_SESSION_CLOSE:
        mgmt_api_close(c, req, out);
        break;
    case ADMIN_API_SESSIONS:
        mgmt_api_sessions(c, req, out);
        break;
    }
}
