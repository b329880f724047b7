/*
 * members.c: pools whose backends change while they run. Everything here
 * runs on the main loop, the only thread that changes a pool's members
 * (it also holds the core's generation lock then, so the admin thread,
 * which reads members under that lock, sees them whole). Workers reach
 * us through the pools' on_stale hook (an ev_async); the admin thread
 * through members_call().
 *
 * A backend that leaves is not removed at once: it drains (no new
 * sessions, "leaving" in /status) and the reap timer removes it from its
 * pool, and stops its checks, once its last session has ended.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/core.h"
#include "mqlb/gen.h"
#include "mqlb/health.h"
#include "mqlb/log.h"
#include "mqlb/members.h"
#include "mqlb/pool.h"

#define MEMBERS_REAP_S      0.25    /* leaving backends looked at */
#define MEMBERS_CALL_WAIT_S 5       /* the admin thread waits this long */

enum {
    MEMBERS_CALL_IDLE = 0,
    MEMBERS_CALL_PENDING,           /* posted, not started */
    MEMBERS_CALL_RUNNING,
    MEMBERS_CALL_DONE,
};

/* ---- balancer rebuilds asked for by workers ---------------------------- */

/* The pools' on_stale hook: any thread, pool lock held. */
static void
members_stale_hook(void *ctx, struct pool *p)
{
    struct members *m = ctx;

    (void)p;
    ev_async_send(m->core->loop, &m->stale);
}

static void
members_rebuild_all(struct members *m)
{
    struct gen *g = m->core->gen;
    size_t i;

    for (i = 0; i < g->npools; i++) {
        pool_rebuild(g->pools[i]);      /* no-op for unchanged pools */
    }
}

static void
members_stale_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop;
    (void)revents;
    members_rebuild_all(container_of(a, struct members, stale));
}

/*
 * Before the main loop waits: a check that moved a backend on this very
 * loop has its hash table rebuilt now, not at the next worker's pick, so
 * source and client-id mappings are stale only for a pick that races it.
 */
static void
members_fresh_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct members *m = container_of(w, struct members, fresh);

    (void)loop;
    (void)revents;
    /* every iteration of the loop: only when something changed */
    pool_rebuild_changed(m->core->gen->pools, m->core->gen->npools,
                         &m->fresh_seen);
}

/* ---- membership -------------------------------------------------------- */

/* Tell the owner the runtime API changed the membership. */
static void
members_changed(struct members *m)
{
    if (m->on_change != NULL) {
        m->on_change(m->on_change_ctx);
    }
}

int
members_add(struct members *m, struct pool *p,
            const struct config_backend *cb, enum backend_source source)
{
    struct core *c = m->core;
    struct backend *b;
    int rc;

    if (pool_find_backend(p, cb->name) != NULL) {
        errno = EEXIST;
        return MQ_ERR;
    }
    b = backend_create_unchecked(cb, p->cf->name,
                                 p->cf->check != CHECK_NONE);
    if (b == NULL) {
        errno = ENOMEM;
        return MQ_ERR;
    }
    b->source = source;
    pthread_mutex_lock(&c->gen_lock);
    rc = pool_add_backend(p, b);
    pthread_mutex_unlock(&c->gen_lock);
    if (rc != MQ_OK) {
        backend_release(b);
        return MQ_ERR;
    }
    if (health_add_backend(c->health, p, b) != MQ_OK) {
        log_warn("backend %s/%s: no memory for its checks", p->cf->name,
                 b->name);
    }
    log_notice("backend %s/%s (%s) added by %s%s", p->cf->name, b->name,
               backend_addr(b)->text,
               source == BACKEND_SOURCE_DNS ? "DNS" : "the admin port",
               p->cf->check != CHECK_NONE ? ": checked before it takes "
               "sessions" : "");
    if (b->host[0] != '\0' && source != BACKEND_SOURCE_DNS) {
        /* a host name to keep resolving: the pool gets a DNS job (not
         * for DNS's own backends: their job is the one adding them) */
        discovery_set_pools(m->dns, c->gen->pools, c->gen->npools);
    }
    backend_release(b);     /* the pool holds its own */
    if (source == BACKEND_SOURCE_API) {
        members_changed(m);
    }
    return MQ_OK;
}

void
members_remove(struct members *m, struct pool *p, struct backend *b,
               const char *why)
{
    if (atomic_exchange(&b->leaving, true)) {
        return;
    }
    backend_bump(b);
    if (b->source == BACKEND_SOURCE_API) {
        members_changed(m);
    }
    log_notice("backend %s/%s (%s) leaves (%s): no new sessions, gone after "
               "its %lld sessions end", p->cf->name, b->name,
               backend_addr(b)->text, why,
               (long long)atomic_load(&b->nactive));
}

int
members_readdress(struct members *m, struct pool *p, struct backend *b,
                  const struct config_addr *a)
{
    (void)m;
    return backend_readdress(b, a, p->cf->check != CHECK_NONE);
}

/*
 * Every MEMBERS_REAP_S: rebuild tables whose backends changed, and remove
 * the leaving backends of the pools in force whose sessions ended.
 */
static void
members_reap_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct members *m = container_of(t, struct members, reap);
    struct core *c = m->core;
    struct backend *b;
    struct pool *p;
    size_t i, j;
    int rc;

    (void)loop;
    (void)revents;
    for (i = 0; i < c->gen->npools; i++) {
        p = c->gen->pools[i];
        /* a state the checker changed: the table follows without a pick */
        pool_rebuild(p);
        for (j = 0; j < p->nbackends; j++) {
            b = p->backends[j];
            if (!atomic_load(&b->leaving) || atomic_load(&b->nactive) > 0) {
                continue;
            }
            backend_acquire(b);
            pthread_mutex_lock(&c->gen_lock);
            rc = pool_remove_backend(p, b, true);
            pthread_mutex_unlock(&c->gen_lock);
            if (rc == MQ_OK) {
                health_remove_backend(c->health, b);
                log_notice("backend %s/%s (%s) removed: its last session "
                           "ended", p->cf->name, b->name,
                           backend_addr(b)->text);
                j--;        /* the next one moved into this position */
            }
            backend_release(b);
        }
    }
}

/* ---- reloads ------------------------------------------------------------ */

void
members_carry(struct members *m, struct gen *old, struct gen *g)
{
    struct pool *op, *np;
    struct backend *b;
    size_t i, j;

    (void)m;
    for (i = 0; old != NULL && i < g->npools; i++) {
        np = g->pools[i];
        op = gen_find_pool(old, np->cf->name);
        if (op == NULL) {
            continue;
        }
        for (j = 0; j < op->nbackends; j++) {
            b = op->backends[j];
            if (b->source == BACKEND_SOURCE_CONFIG) {
                continue;
            }
            if (pool_find_backend(np, b->name) != NULL) {
                log_notice("reload: backend %s/%s added at runtime is "
                           "replaced by the file's backend of that name",
                           np->cf->name, b->name);
                continue;
            }
            if (b->source == BACKEND_SOURCE_DNS && np->cf->ndiscovers == 0) {
                continue;   /* the file no longer discovers for this pool */
            }
            /* not shared yet: no lock needed */
            if (pool_add_backend(np, b) != MQ_OK) {
                log_warn("reload: backend %s/%s added at runtime is lost: "
                         "%s", np->cf->name, b->name, strerror(errno));
            }
        }
    }
}

/* Same resolvers text (NULL = the default)? */
static bool
members_same_resolvers(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    return strcmp(a, b) == 0;
}

/*
 * A reload changed [global] resolvers or resolve_interval: a new
 * resolver for them (its rounds start with members_use). The old one's
 * queries are cancelled; on failure the old one goes on.
 */
static void
members_reconfigure(struct members *m, const struct config *cf)
{
    struct discovery *d;
    char err[MQ_ERR_LEN], *copy = NULL;

    if (members_same_resolvers(m->resolvers, cf->resolvers) &&
        m->interval_ms == cf->resolve_interval_ms) {
        return;
    }
    if (cf->resolvers != NULL && (copy = strdup(cf->resolvers)) == NULL) {
        log_warn("reload: DNS settings kept: out of memory");
        return;
    }
    d = discovery_create(m->core->loop, cf->resolvers,
                         cf->resolve_interval_ms, &m->dns_ops, err);
    if (d == NULL) {
        log_warn("reload: DNS settings kept: %s", err);
        free(copy);
        return;
    }
    discovery_destroy(m->dns);
    m->dns = d;
    free(m->resolvers);
    m->resolvers = copy;
    m->interval_ms = cf->resolve_interval_ms;
    log_notice("reload: DNS now asks %s every %llums (at most)",
               cf->resolvers != NULL ? cf->resolvers : "/etc/resolv.conf",
               (unsigned long long)cf->resolve_interval_ms);
}

void
members_use(struct members *m, struct gen *g)
{
    size_t i;

    members_reconfigure(m, g->cf);
    for (i = 0; i < g->npools; i++) {
        g->pools[i]->on_stale = members_stale_hook;
        g->pools[i]->on_stale_ctx = m;
        /* The first table now: the first clients must already map where
         * every later one (and every other instance) maps them. */
        pool_rebuild(g->pools[i]);
    }
    if (discovery_set_pools(m->dns, g->pools, g->npools) != MQ_OK) {
        log_warn("DNS: out of memory; names keep their addresses");
    }
}

/* ---- calls from the admin thread --------------------------------------- */

static void
members_call_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    struct members *m = container_of(a, struct members, call_async);
    members_call_fn fn;
    void *arg;

    (void)loop;
    (void)revents;
    pthread_mutex_lock(&m->call_lock);
    if (m->call_state != MEMBERS_CALL_PENDING) {
        pthread_mutex_unlock(&m->call_lock);
        return;
    }
    m->call_state = MEMBERS_CALL_RUNNING;
    fn = m->call_fn;
    arg = m->call_arg;
    pthread_mutex_unlock(&m->call_lock);
    fn(m->core, arg);
    pthread_mutex_lock(&m->call_lock);
    m->call_state = MEMBERS_CALL_DONE;
    pthread_cond_broadcast(&m->call_cond);
    pthread_mutex_unlock(&m->call_lock);
}

int
members_call(struct members *m, members_call_fn fn, void *arg)
{
    struct timespec until;
    int rc = MQ_OK;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += MEMBERS_CALL_WAIT_S;
    pthread_mutex_lock(&m->call_lock);
    while (m->call_state == MEMBERS_CALL_PENDING ||
           m->call_state == MEMBERS_CALL_RUNNING) {
        /* one call at a time (the admin port has one thread anyway) */
        if (pthread_cond_timedwait(&m->call_cond, &m->call_lock, &until)
            != 0) {
            pthread_mutex_unlock(&m->call_lock);
            return MQ_ERR;
        }
    }
    m->call_fn = fn;
    m->call_arg = arg;
    m->call_state = MEMBERS_CALL_PENDING;
    ev_async_send(m->core->loop, &m->call_async);
    while (m->call_state != MEMBERS_CALL_DONE) {
        if (pthread_cond_timedwait(&m->call_cond, &m->call_lock, &until)
            != 0 && m->call_state == MEMBERS_CALL_PENDING) {
            /* the loop is not taking calls: withdraw, <arg> dies with us */
            m->call_state = MEMBERS_CALL_IDLE;
            rc = MQ_ERR;
            break;
        }
    }
    if (rc == MQ_OK) {
        m->call_state = MEMBERS_CALL_IDLE;
        pthread_cond_broadcast(&m->call_cond);
    }
    pthread_mutex_unlock(&m->call_lock);
    return rc;
}

/* ---- discovery's ops ------------------------------------------------------ */

static int
members_dns_add(void *ctx, struct pool *p, const struct config_backend *cb)
{
    return members_add(ctx, p, cb, BACKEND_SOURCE_DNS);
}

static void
members_dns_remove(void *ctx, struct pool *p, struct backend *b)
{
    members_remove(ctx, p, b, "no longer in DNS");
}

static void
members_dns_readdress(void *ctx, struct pool *p, struct backend *b,
                      const struct config_addr *a)
{
    if (members_readdress(ctx, p, b, a) != MQ_OK) {
        log_warn("backend %s/%s: no memory to move it to %s", p->cf->name,
                 b->name, a->text);
    }
}

void
members_dns_status(struct members *m, const char *name,
                   struct discovery_status *out)
{
    discovery_get_status(m->dns, name, out);
}

int
members_init(struct members *m, struct core *c, const struct config *cf)
{
    struct discovery_ops ops;
    char err[MQ_ERR_LEN];

    memset(m, 0, sizeof(*m));
    m->core = c;
    ops.ctx = m;
    ops.add = members_dns_add;
    ops.remove = members_dns_remove;
    ops.readdress = members_dns_readdress;
    m->dns_ops = ops;
    m->dns = discovery_create(c->loop, cf->resolvers, cf->resolve_interval_ms,
                              &ops, err);
    if (m->dns == NULL) {
        log_error("DNS: %s", err);
        return MQ_ERR;
    }
    if (cf->resolvers != NULL) {
        m->resolvers = strdup(cf->resolvers);
        if (m->resolvers == NULL) {
            log_error("DNS: out of memory");
            discovery_destroy(m->dns);
            m->dns = NULL;
            return MQ_ERR;
        }
    }
    m->interval_ms = cf->resolve_interval_ms;
    pthread_mutex_init(&m->call_lock, NULL);
    pthread_cond_init(&m->call_cond, NULL);
    ev_async_init(&m->stale, members_stale_cb);
    ev_async_start(c->loop, &m->stale);
    ev_async_init(&m->call_async, members_call_cb);
    ev_async_start(c->loop, &m->call_async);
    ev_prepare_init(&m->fresh, members_fresh_cb);
    ev_prepare_start(c->loop, &m->fresh);
    ev_timer_init(&m->reap, members_reap_cb, MEMBERS_REAP_S, MEMBERS_REAP_S);
    ev_timer_start(c->loop, &m->reap);
    return MQ_OK;
}

void
members_deinit(struct members *m)
{
    if (m->dns == NULL) {
        return;
    }
    ev_async_stop(m->core->loop, &m->stale);
    ev_async_stop(m->core->loop, &m->call_async);
    ev_prepare_stop(m->core->loop, &m->fresh);
    ev_timer_stop(m->core->loop, &m->reap);
    discovery_destroy(m->dns);
    m->dns = NULL;
    mq_free(m->resolvers);
    pthread_mutex_destroy(&m->call_lock);
    pthread_cond_destroy(&m->call_cond);
}
