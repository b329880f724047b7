/*
 * discovery.c: DNS answers turned into pool membership, on the main loop.
 *
 * Each pool with something to resolve has a job and a timer. A round asks
 * every question of the pool at once (backend host names, discover = dns
 * names, discover = dns-srv names and then their targets) and, when the
 * last answer is in, applies them together:
 *
 *   timer ──> round: queries in flight (pending) ──> last answer ──> apply
 *     ^                                                               |
 *     +──── min(resolve_interval, smallest TTL), at least 1s <────────+
 *
 * Applying never empties a pool on a DNS failure: if any discover
 * question of the round failed, no discovered backend is let go; a name
 * that does not resolve keeps its address. What changes goes to the owner
 * through ops (add, remove, readdress), which knows locks and checks.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/discovery.h"
#include "mqlb/log.h"
#include "mqlb/pool.h"

#define DISC_MIN_MS     1000u       /* never ask more than once a second */

/* Status kept by pool name, across reloads. */
struct disc_status {
    struct disc_status *next;
    char            name[CONFIG_NAME_LEN];
    struct discovery_status st;
};

/* One pool's questions. */
struct disc_job {
    struct disc_job *next;
    struct discovery *d;
    struct pool     *pool;          /* one reference */
    ev_timer        timer;
    unsigned        pending;        /* answers still to come */
    unsigned        dead:1;         /* replaced: free when pending is 0 */
    unsigned        discover_failed:1;  /* keep every discovered one */
    unsigned        failed:1;       /* some question failed this round */
    char            error[200];     /* the last failure of the round */
    uint32_t        ttl_s;          /* smallest TTL of the round */
    struct discovery_want *wants;        /* discovered backends asked for */
    size_t          nwants, capwants;
};

/* One question in flight. */
struct disc_q {
    struct disc_job *job;
    int             kind;           /* DISC_Q_* */
    size_t          idx;            /* TARGET: index into wants */
    struct backend *b;              /* NAMED: one reference */
    unsigned        port;
    char            what[RESOLVER_NAME_LEN + 16];   /* for messages */
};

enum {
    DISC_Q_DNS = 0,                 /* discover = dns NAME:PORT */
    DISC_Q_SRV,                     /* discover = dns-srv NAME */
    DISC_Q_TARGET,                  /* an SRV target's address */
    DISC_Q_NAMED,                   /* a backend's host name */
};

struct discovery {
    struct ev_loop *loop;
    struct resolver *r;
    uint64_t        interval_ms;
    struct discovery_ops ops;
    struct disc_job *jobs;
    pthread_mutex_t status_lock;    /* guards <status> */
    struct disc_status *status;
};

static void disc_round(struct disc_job *j);

/* ---- pure parts -------------------------------------------------------- */

/* The numeric text of <a> without port: "10.0.0.5", "fd00::5". */
static void
disc_ip_text(const struct resolver_addr *a, char *out, size_t len)
{
    const void *src;

    if (a->ss.ss_family == AF_INET6) {
        src = &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
    } else {
        src = &((const struct sockaddr_in *)&a->ss)->sin_addr;
    }
    if (inet_ntop(a->ss.ss_family, src, out, (socklen_t)len) == NULL) {
        snprintf(out, len, "?");
    }
}

static unsigned
disc_port_of(const struct resolver_addr *a)
{
    if (a->ss.ss_family == AF_INET6) {
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    }
    return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

void
discovery_addr_name(const char *dns_name, const struct resolver_addr *a,
                    char *out)
{
    char ip[INET6_ADDRSTRLEN], *p;
    size_t n, ilen, label;

    disc_ip_text(a, ip, sizeof(ip));
    for (p = ip; *p != '\0'; p++) {
        if (*p == ':' || *p == '%') {
            *p = '-';
        }
    }
    ilen = strlen(ip);
    n = strlen(dns_name);
    while (n > 0 && dns_name[n - 1] == '.') {
        n--;
    }
    if (n + 1 + ilen >= CONFIG_NAME_LEN) {
        label = strcspn(dns_name, ".");
        n = label + 1 + ilen < CONFIG_NAME_LEN ? label : 0;
    }
    if (n == 0) {
        snprintf(out, CONFIG_NAME_LEN, "%s", ip);
    } else {
        snprintf(out, CONFIG_NAME_LEN, "%.*s-%s", (int)n, dns_name, ip);
    }
}

/* A name for SRV target <t> (with <port> when <with_port>). */
static void
disc_target_name(const char *t, unsigned port, bool with_port, char *out)
{
    char suffix[8] = "";
    size_t n = strlen(t), room;

    if (with_port) {
        snprintf(suffix, sizeof(suffix), "-%u", port);
    }
    room = CONFIG_NAME_LEN - 1 - strlen(suffix);
    if (n > room) {
        n = strcspn(t, ".");        /* the first label, as Kubernetes pods */
        if (n > room) {
            n = room;
        }
    }
    snprintf(out, CONFIG_NAME_LEN, "%.*s%s", (int)n, t, suffix);
}

size_t
discovery_srv_plan(const struct resolver_srv *srvs, size_t n,
                   struct discovery_want *out)
{
    unsigned wmax = 0, best;
    bool with_port;
    size_t i, j, k = 0;

    if (n == 0) {
        return 0;
    }
    best = srvs[0].priority;
    for (i = 0; i < n; i++) {
        best = MQ_MIN(best, srvs[i].priority);
        wmax = MQ_MAX(wmax, srvs[i].weight);
    }
    for (i = 0; i < n && k < RESOLVER_MAX_SRV; i++) {
        /* the same target:port twice: once */
        for (j = 0; j < i; j++) {
            if (srvs[j].port == srvs[i].port &&
                strcmp(srvs[j].target, srvs[i].target) == 0) {
                break;
            }
        }
        if (j < i) {
            continue;
        }
        with_port = false;
        for (j = 0; j < n; j++) {
            if (j != i && srvs[j].port != srvs[i].port &&
                strcmp(srvs[j].target, srvs[i].target) == 0) {
                with_port = true;
            }
        }
        memset(&out[k], 0, sizeof(out[k]));
        disc_target_name(srvs[i].target, srvs[i].port, with_port,
                         out[k].name);
        snprintf(out[k].target, sizeof(out[k].target), "%s",
                 srvs[i].target);
        out[k].port = srvs[i].port;
        out[k].backup = srvs[i].priority != best;
        /* weight 0 is "very rarely" in RFC 2782: the least we have, 1 */
        if (wmax <= 256) {
            out[k].weight = MQ_MAX(srvs[i].weight, 1u);
        } else {
            out[k].weight = MQ_MAX((unsigned)(((uint64_t)srvs[i].weight *
                                               256 + wmax / 2) / wmax), 1u);
        }
        k++;
    }
    return k;
}

uint64_t
discovery_next_ms(uint64_t interval_ms, uint32_t ttl_s)
{
    uint64_t ms = interval_ms;

    if (ttl_s != RESOLVER_TTL_NONE && (uint64_t)ttl_s * 1000 < ms) {
        ms = (uint64_t)ttl_s * 1000;
    }
    return MQ_MAX(ms, DISC_MIN_MS);
}

/* ---- status ------------------------------------------------------------ */

/* The status entry of <name>, made on first use; under status_lock. */
static struct disc_status *
disc_status_of(struct discovery *d, const char *name)
{
    struct disc_status *s;

    for (s = d->status; s != NULL; s = s->next) {
        if (strcmp(s->name, name) == 0) {
            return s;
        }
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->next = d->status;
    d->status = s;
    return s;
}

void
discovery_get_status(struct discovery *d, const char *name,
                     struct discovery_status *out)
{
    struct disc_status *s;

    memset(out, 0, sizeof(*out));
    if (d == NULL) {
        return;
    }
    pthread_mutex_lock(&d->status_lock);
    for (s = d->status; s != NULL; s = s->next) {
        if (strcmp(s->name, name) == 0) {
            *out = s->st;
            break;
        }
    }
    pthread_mutex_unlock(&d->status_lock);
}

/* ---- rounds ------------------------------------------------------------ */

static void
disc_job_free(struct disc_job *j)
{
    ev_timer_stop(j->d->loop, &j->timer);
    pool_release(j->pool);
    free(j->wants);
    free(j);
}

static void
disc_fail(struct disc_job *j, const char *what, const char *error)
{
    j->failed = 1;
    snprintf(j->error, sizeof(j->error), "%.120s: %.70s", what, error);
}

static struct discovery_want *
disc_want_add(struct disc_job *j)
{
    struct discovery_want *w;
    size_t cap;

    if (j->nwants == j->capwants) {
        cap = j->capwants == 0 ? 8 : j->capwants * 2;
        w = realloc(j->wants, cap * sizeof(*w));
        if (w == NULL) {
            return NULL;
        }
        j->wants = w;
        j->capwants = cap;
    }
    w = &j->wants[j->nwants++];
    memset(w, 0, sizeof(*w));
    return w;
}

/* A config_addr for <a>, its text numeric. */
static void
disc_config_addr(const struct resolver_addr *a, struct config_addr *out)
{
    char ip[INET6_ADDRSTRLEN];

    memset(out, 0, sizeof(*out));
    memcpy(&out->ss, &a->ss, a->len);
    out->len = a->len;
    disc_ip_text(a, ip, sizeof(ip));
    snprintf(out->text, sizeof(out->text),
             a->ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip,
             disc_port_of(a));
}

static bool
disc_same_addr(const struct config_addr *x, const struct resolver_addr *a)
{
    return x->len == a->len && memcmp(&x->ss, &a->ss, a->len) == 0;
}

/* Apply the discovered set of the round to the pool. */
static void
disc_apply_discovered(struct disc_job *j)
{
    struct discovery *d = j->d;
    struct pool *p = j->pool;
    struct config_backend cb;
    const struct config_addr *cur;
    struct config_addr ca;
    struct backend *b, *gone[CONFIG_MAX_BACKENDS];
    struct discovery_want *w;
    size_t i, k, ngone = 0;

    for (i = 0; i < j->nwants; i++) {
        w = &j->wants[i];
        if (!w->resolved) {
            continue;
        }
        b = pool_find_backend(p, w->name);
        if (b != NULL && b->source != BACKEND_SOURCE_DNS) {
            continue;       /* a configured or API backend owns the name */
        }
        if (b != NULL && !atomic_load(&b->leaving)) {
            cur = backend_next_addr(b);
            if (cur == NULL) {
                cur = backend_addr(b);
            }
            if (!disc_same_addr(cur, &w->addr)) {
                disc_config_addr(&w->addr, &ca);
                d->ops.readdress(d->ops.ctx, p, b, &ca);
            }
            if (atomic_load(&b->weight) != w->weight) {
                backend_set_weight(b, w->weight);
            }
            if (atomic_load(&b->backup) != w->backup) {
                /* an SRV priority moved it in or out of the serving group */
                atomic_store(&b->backup, w->backup);
                backend_bump(b);
                log_notice("backend %s/%s is %s now (SRV priority)",
                           p->cf->name, b->name,
                           w->backup ? "a backup" : "a primary");
            }
            continue;
        }
        if (b != NULL) {
            continue;       /* still draining from an earlier answer */
        }
        memset(&cb, 0, sizeof(cb));
        snprintf(cb.name, sizeof(cb.name), "%s", w->name);
        disc_config_addr(&w->addr, &cb.addr);
        cb.weight = w->weight;
        cb.backup = w->backup;
        if (w->target[0] != '\0') {
            /* the name it came from: TLS's server name, shown as "host" */
            snprintf(cb.host, sizeof(cb.host), "%s", w->target);
            cb.port = w->port;
            cb.is_name = 1;
        }
        cb.max_conns = p->cf->max_conns_per_backend;
        if (d->ops.add(d->ops.ctx, p, &cb) != MQ_OK) {
            disc_fail(j, cb.name, "cannot add (pool full or no memory)");
        }
    }
    if (j->discover_failed) {
        return;             /* never let a backend go on a DNS failure */
    }
    for (i = 0; i < p->nbackends; i++) {
        b = p->backends[i];
        if (b->source != BACKEND_SOURCE_DNS || atomic_load(&b->leaving)) {
            continue;
        }
        for (k = 0; k < j->nwants; k++) {
            if (strcmp(j->wants[k].name, b->name) == 0) {
                break;
            }
        }
        if (k == j->nwants) {
            gone[ngone++] = b;
        }
    }
    /* outside the walk: removing may change p->backends */
    for (i = 0; i < ngone; i++) {
        d->ops.remove(d->ops.ctx, p, gone[i]);
    }
}

static void
disc_round_done(struct disc_job *j)
{
    struct discovery *d = j->d;
    struct disc_status *s;
    uint64_t next;

    if (j->pool->cf->ndiscovers > 0) {
        disc_apply_discovered(j);
    }
    pthread_mutex_lock(&d->status_lock);
    s = disc_status_of(d, j->pool->cf->name);
    if (s != NULL) {
        s->st.active = true;
        s->st.nrounds++;
        if (j->failed) {
            s->st.nfailed++;
            s->st.last_error_ms = mq_wall_ms();
            snprintf(s->st.last_error, sizeof(s->st.last_error), "%s",
                     j->error);
        } else {
            s->st.last_ok_ms = mq_wall_ms();
            s->st.last_error[0] = '\0';
        }
    }
    pthread_mutex_unlock(&d->status_lock);
    if (j->failed) {
        log_warn("pool %s: DNS: %s (keeping the last known backends)",
                 j->pool->cf->name, j->error);
    }
    next = discovery_next_ms(d->interval_ms, j->ttl_s);
    ev_timer_set(&j->timer, (ev_tstamp)next / 1000.0, 0.);
    ev_timer_start(d->loop, &j->timer);
}

/* One answer less to wait for; the round ends with the last. */
static void
disc_answered(struct disc_job *j)
{
    if (--j->pending > 0) {
        return;
    }
    if (j->dead) {
        disc_job_free(j);
        return;
    }
    disc_round_done(j);
}

static void disc_answer_cb(void *arg, const struct resolver_result *res);

/* Ask <kind> about <name>; the job waits for it. */
static void
disc_ask(struct disc_job *j, int kind, const char *name, unsigned port,
         size_t idx, struct backend *b)
{
    struct disc_q *q;
    int rc;

    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        disc_fail(j, name, "out of memory");
        if (kind == DISC_Q_DNS || kind == DISC_Q_SRV) {
            j->discover_failed = 1;
        }
        return;
    }
    q->job = j;
    q->kind = kind;
    q->idx = idx;
    q->port = port;
    q->b = b;
    if (b != NULL) {
        backend_acquire(b);
    }
    snprintf(q->what, sizeof(q->what), "%s", name);
    j->pending++;
    if (kind == DISC_Q_SRV) {
        rc = resolver_srv(j->d->r, name, disc_answer_cb, q);
    } else {
        rc = resolver_lookup(j->d->r, name, port, disc_answer_cb, q);
    }
    if (rc != MQ_OK) {
        /* not asked: answer it ourselves */
        struct resolver_result res;

        memset(&res, 0, sizeof(res));
        snprintf(res.error, sizeof(res.error), "out of memory");
        disc_answer_cb(q, &res);
    }
}

static void
disc_answer_cb(void *arg, const struct resolver_result *res)
{
    struct disc_q *q = arg;
    struct disc_job *j = q->job;
    struct discovery_want plan[RESOLVER_MAX_SRV];
    struct discovery_want *w;
    size_t i, n, base;

    if (j->dead || strcmp(res->error, "cancelled") == 0) {
        goto out;
    }
    if (res->error[0] != '\0') {
        disc_fail(j, q->what, res->error);
        if (q->kind == DISC_Q_DNS || q->kind == DISC_Q_SRV) {
            j->discover_failed = 1;
        } else if (q->kind == DISC_Q_TARGET) {
            /* keep a backend of that name, if any, as it is */
            j->wants[q->idx].resolved = false;
        }
        goto out;
    }
    j->ttl_s = MQ_MIN(j->ttl_s, res->ttl_s);
    switch (q->kind) {
    case DISC_Q_DNS:
        for (i = 0; i < res->naddrs; i++) {
            w = disc_want_add(j);
            if (w == NULL) {
                disc_fail(j, q->what, "out of memory");
                j->discover_failed = 1;
                break;
            }
            w->addr = res->addrs[i];
            w->weight = 1;
            w->resolved = true;
            snprintf(w->target, sizeof(w->target), "%.255s", q->what);
            w->port = q->port;
            discovery_addr_name(q->what, &res->addrs[i], w->name);
        }
        break;
    case DISC_Q_SRV:
        n = discovery_srv_plan(res->srvs, res->nsrvs, plan);
        base = j->nwants;
        for (i = 0; i < n; i++) {
            w = disc_want_add(j);
            if (w == NULL) {
                disc_fail(j, q->what, "out of memory");
                j->discover_failed = 1;
                goto out;
            }
            *w = plan[i];
        }
        for (i = 0; i < n; i++) {
            disc_ask(j, DISC_Q_TARGET, j->wants[base + i].target,
                     j->wants[base + i].port, base + i, NULL);
        }
        break;
    case DISC_Q_TARGET:
        w = &j->wants[q->idx];
        w->addr = res->addrs[0];
        w->resolved = true;
        break;
    case DISC_Q_NAMED:
        if (!atomic_load(&q->b->leaving)) {
            struct config_addr ca;
            const struct config_addr *cur = backend_next_addr(q->b);

            if (cur == NULL) {
                cur = backend_addr(q->b);
            }
            if (!disc_same_addr(cur, &res->addrs[0]) ||
                backend_next_addr(q->b) != NULL) {
                disc_config_addr(&res->addrs[0], &ca);
                j->d->ops.readdress(j->d->ops.ctx, j->pool, q->b, &ca);
            }
        }
        break;
    }
out:
    backend_release(q->b);
    free(q);
    disc_answered(j);
}

/* Ask every question of the pool. */
static void
disc_round(struct disc_job *j)
{
    const struct config_pool *cf = j->pool->cf;
    struct backend *b;
    size_t i;

    j->nwants = 0;
    j->failed = 0;
    j->discover_failed = 0;
    j->error[0] = '\0';
    j->ttl_s = RESOLVER_TTL_NONE;
    j->pending++;       /* held while asking: answers may come at once */
    for (i = 0; i < cf->ndiscovers; i++) {
        disc_ask(j, cf->discovers[i].kind == DISCOVER_DNS ? DISC_Q_DNS
                                                          : DISC_Q_SRV,
                 cf->discovers[i].name, cf->discovers[i].port, 0, NULL);
    }
    for (i = 0; i < j->pool->nbackends; i++) {
        b = j->pool->backends[i];
        if (b->host[0] != '\0' && b->source != BACKEND_SOURCE_DNS &&
            !atomic_load(&b->leaving)) {
            disc_ask(j, DISC_Q_NAMED, b->host, b->port, 0, b);
        }
    }
    disc_answered(j);
}

static void
disc_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct disc_job *j = container_of(t, struct disc_job, timer);

    (void)loop;
    (void)revents;
    if (j->pending == 0) {
        disc_round(j);
    }
}

/* Does pool <p> have anything to resolve? */
static bool
disc_pool_needs(const struct pool *p)
{
    size_t i;

    if (p->cf->ndiscovers > 0) {
        return true;
    }
    for (i = 0; i < p->nbackends; i++) {
        if (p->backends[i]->host[0] != '\0') {
            return true;
        }
    }
    return false;
}

struct discovery *
discovery_create(struct ev_loop *loop, const char *resolvers,
                 uint64_t interval_ms, const struct discovery_ops *ops,
                 char *err)
{
    struct discovery *d;

    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        snprintf(err, MQ_ERR_LEN, "discovery: out of memory");
        return NULL;
    }
    d->r = resolver_create(loop, resolvers, err);
    if (d->r == NULL) {
        free(d);
        return NULL;
    }
    d->loop = loop;
    d->interval_ms = MQ_MAX(interval_ms, DISC_MIN_MS);
    d->ops = *ops;
    pthread_mutex_init(&d->status_lock, NULL);
    return d;
}

/* Retire the jobs of the earlier set (freed once their answers are in). */
static void
disc_clear(struct discovery *d)
{
    struct disc_job *j, *next;

    for (j = d->jobs; j != NULL; j = next) {
        next = j->next;
        ev_timer_stop(d->loop, &j->timer);
        if (j->pending > 0) {
            j->dead = 1;
        } else {
            disc_job_free(j);
        }
    }
    d->jobs = NULL;
}

int
discovery_set_pools(struct discovery *d, struct pool *const *pools,
                    size_t npools)
{
    struct disc_job *j, *jobs = NULL;
    size_t i;

    for (i = 0; i < npools; i++) {
        if (!disc_pool_needs(pools[i])) {
            continue;
        }
        j = calloc(1, sizeof(*j));
        if (j == NULL) {
            while (jobs != NULL) {
                j = jobs->next;
                pool_release(jobs->pool);
                free(jobs);
                jobs = j;
            }
            return MQ_ERR;
        }
        j->d = d;
        j->pool = pools[i];
        pool_acquire(pools[i]);
        ev_timer_init(&j->timer, disc_timer_cb, 0., 0.);
        j->next = jobs;
        jobs = j;
    }
    disc_clear(d);
    d->jobs = jobs;
    for (j = jobs; j != NULL; j = j->next) {
        disc_round(j);      /* at once: a discover-only pool starts empty */
    }
    return MQ_OK;
}

void
discovery_kick(struct discovery *d, const char *name)
{
    struct disc_job *j;

    for (j = d->jobs; j != NULL; j = j->next) {
        if (strcmp(j->pool->cf->name, name) == 0 && j->pending == 0) {
            ev_timer_stop(d->loop, &j->timer);
            disc_round(j);
        }
    }
}

void
discovery_destroy(struct discovery *d)
{
    struct disc_status *s, *next;

    if (d == NULL) {
        return;
    }
    disc_clear(d);
    resolver_destroy(d->r);     /* cancels: dead jobs free themselves */
    for (s = d->status; s != NULL; s = next) {
        next = s->next;
        free(s);
    }
    pthread_mutex_destroy(&d->status_lock);
    free(d);
}
