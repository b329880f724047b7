/*
 * core.c: builds the running objects from a validated config and tears
 * them down in order. A config generation (struct gen) owns the config
 * and its pools; sessions hold their pool, pools hold their generation,
 * so an old generation is freed when its last session ends (reload).
 * Backends are shared between generations when a reload keeps them, so
 * health state, counters and admin state survive a reload.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mqlb/admin.h"
#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/config_diff.h"
#include "mqlb/core.h"
#include "mqlb/health.h"
#include "mqlb/listener.h"
#include "mqlb/log.h"
#include "mqlb/pool.h"
#include "mqlb/srclimit.h"
#include "mqlb/stats.h"
#include "mqlb/worker.h"

#define CORE_DRAIN_POLL_S   0.05
#define CORE_FD_RESERVE     64      /* listeners, checks, admin, logs */

/* A config and the pools built from it. */
struct gen {
    _Atomic unsigned    refcnt;         /* core + one per live pool */
    struct config      *cf;             /* owned */
    struct pool       **pools;          /* the generation's references */
    size_t              npools;
};

/* Counters that belong to a pool name and outlive reloads. */
struct core_pool_stats {
    struct core_pool_stats *next;
    char                name[CONFIG_NAME_LEN];
    _Atomic uint64_t    rejected[REJECT_NREASONS];  /* by reason */
    struct srclimit    *sources;        /* max_conns_per_source counts,
                                           made when first needed */
};

/* One worker's listening socket, as the main thread knows it. */
struct core_lfd {
    struct config_addr  addr;
    int                 fd;
};

static pthread_mutex_t core_gen_lock = PTHREAD_MUTEX_INITIALIZER;

static void
gen_release(void *arg)
{
    struct gen *g = arg;

    if (atomic_fetch_sub_explicit(&g->refcnt, 1, memory_order_acq_rel)
        != 1) {
        return;
    }
    config_destroy(g->cf);
    free(g->pools);
    free(g);
}

/* Give up the generation's own pool references and its core reference. */
static void
gen_retire(struct gen *g)
{
    size_t i;

    for (i = 0; i < g->npools; i++) {
        pool_release(g->pools[i]);
        g->pools[i] = NULL;
    }
    g->npools = 0;
    gen_release(g);
}

static _Atomic uint64_t *
core_rejected_counter(struct core *c, const char *name)
{
    struct core_pool_stats *s;

    for (s = c->stats; s != NULL; s = s->next) {
        if (strcmp(s->name, name) == 0) {
            return s->rejected;
        }
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->next = c->stats;
    c->stats = s;
    return s->rejected;
}

/*
 * The sessions-per-address table of pool <name> (made on first use),
 * kept across reloads like the rejected counter, so that one address
 * cannot hold max_conns_per_source sessions in each generation. NULL on
 * no memory or before core_rejected_counter() made the pool's entry.
 */
static struct srclimit *
core_source_table(struct core *c, const char *name)
{
    struct core_pool_stats *s;

    for (s = c->stats; s != NULL; s = s->next) {
        if (strcmp(s->name, name) == 0) {
            if (s->sources == NULL) {
                s->sources = srclimit_create();
            }
            return s->sources;
        }
    }
    return NULL;
}

/* The running backend to reuse for <cb> of pool <pool>, or NULL. */
static struct backend *
core_find_backend(struct gen *old, const char *pool,
                  const struct config_backend *cb)
{
    struct backend *b;
    size_t i;

    if (old == NULL) {
        return NULL;
    }
    for (i = 0; i < old->npools; i++) {
        if (strcmp(old->pools[i]->cf->name, pool) != 0) {
            continue;
        }
        b = pool_find_backend(old->pools[i], cb->name);
        if (b != NULL && backend_addr(b)->len == cb->addr.len &&
            memcmp(&backend_addr(b)->ss, &cb->addr.ss, cb->addr.len) == 0 &&
            (bool)b->backup == (bool)cb->backup) {
            return b;
        }
    }
    return NULL;
}

/* The config backend <b> came from in <old>, for weight changes. */
static const struct config_backend *
core_old_config_backend(struct gen *old, const char *pool, const char *name)
{
    const struct config_pool *p;
    size_t i, j;

    for (i = 0; old != NULL && i < old->cf->npools; i++) {
        p = &old->cf->pools[i];
        if (strcmp(p->name, pool) != 0) {
            continue;
        }
        for (j = 0; j < p->nbackends; j++) {
            if (strcmp(p->backends[j].name, name) == 0) {
                return &p->backends[j];
            }
        }
    }
    return NULL;
}

/* Build pools for <cf>, reusing backends of <old>. NULL on no memory. */
static struct gen *
gen_create(struct core *c, struct config *cf, struct gen *old)
{
    struct backend *bs[CONFIG_MAX_BACKENDS];
    const struct config_backend *ocb;
    const struct config_pool *cp;
    struct gen *g;
    size_t i, j;

    g = calloc(1, sizeof(*g));
    if (g == NULL) {
        return NULL;
    }
    g->cf = cf;
    atomic_init(&g->refcnt, 1);
    g->pools = calloc(cf->npools, sizeof(*g->pools));
    if (g->pools == NULL) {
        free(g);
        return NULL;
    }
    for (i = 0; i < cf->npools; i++) {
        cp = &cf->pools[i];
        for (j = 0; j < cp->nbackends; j++) {
            bs[j] = core_find_backend(old, cp->name, &cp->backends[j]);
            if (bs[j] != NULL) {
                backend_acquire(bs[j]);
                ocb = core_old_config_backend(old, cp->name, bs[j]->name);
                /* A weight the file changed wins over one set at runtime. */
                if (ocb != NULL && ocb->weight != cp->backends[j].weight) {
                    backend_set_weight(bs[j], cp->backends[j].weight);
                }
                atomic_store(&bs[j]->max_conns, cp->backends[j].max_conns);
            } else {
                bs[j] = backend_create(&cp->backends[j], cp->name);
            }
            if (bs[j] == NULL) {
                goto fail_pool;
            }
        }
        g->pools[i] = pool_create(cp, bs, core_rejected_counter(c,
                                                                cp->name));
        for (j = 0; j < cp->nbackends; j++) {
            backend_release(bs[j]);     /* the pool holds its own */
        }
        if (g->pools[i] == NULL) {
            goto fail;
        }
        if (cp->max_conns_per_source > 0) {
            g->pools[i]->sources = core_source_table(c, cp->name);
        }
        if (g->pools[i]->nrejected == NULL ||
            (cp->max_conns_per_source > 0 && g->pools[i]->sources == NULL)) {
            pool_release(g->pools[i]);      /* not yet the generation's */
            g->pools[i] = NULL;
            goto fail;
        }
        g->pools[i]->owner = g;
        g->pools[i]->owner_release = gen_release;
        atomic_fetch_add(&g->refcnt, 1);
        g->npools++;
        continue;
fail_pool:
        while (j-- > 0) {
            backend_release(bs[j]);
        }
        goto fail;
    }
    return g;
fail:
    g->cf = NULL;       /* the caller still owns <cf> */
    gen_retire(g);
    return NULL;
}

/* ---- listeners ------------------------------------------------------- */

/*
 * Build each worker's listener list for <g>. A socket already open for
 * the same address (in <c->lfds>) is reused, so a reload refuses no
 * connect. Errors bind-ing a new address are logged and that address is
 * skipped; MQ_ERR only if <strict> (start-up).
 */
static int
core_build_listeners(struct core *c, struct gen *g,
                     struct listener **lists, struct core_lfd **lfds,
                     size_t *nlfds, int strict)
{
    char err[MQ_ERR_LEN];
    struct listener *l;
    struct core_lfd *old, *mine;
    size_t i, j, k, n, total = 0;
    unsigned w;
    int fd;

    for (i = 0; i < g->npools; i++) {
        total += g->pools[i]->cf->nlistens;
    }
    for (w = 0; w < c->nworkers; w++) {
        lists[w] = NULL;
        lfds[w] = calloc(total > 0 ? total : 1, sizeof(**lfds));
        nlfds[w] = 0;
        if (lfds[w] == NULL) {
            return MQ_ERR;
        }
    }
    for (w = 0; w < c->nworkers; w++) {
        old = c->lfds != NULL ? c->lfds[w] : NULL;
        n = c->lfds != NULL ? c->nlfds[w] : 0;
        mine = lfds[w];
        for (i = 0; i < g->npools; i++) {
            for (j = 0; j < g->pools[i]->cf->nlistens; j++) {
                const struct config_addr *a = &g->pools[i]->cf->listens[j];

                fd = -1;
                for (k = 0; k < n; k++) {
                    if (old[k].fd != -1 && old[k].addr.len == a->len &&
                        memcmp(&old[k].addr.ss, &a->ss, a->len) == 0) {
                        fd = old[k].fd;
                        old[k].fd = -1;     /* taken over */
                    }
                }
                l = listener_create(a, g->pools[i], fd, err);
                if (l == NULL) {
                    log_error("pool %s: %s", g->pools[i]->cf->name, err);
                    if (strict) {
                        return MQ_ERR;
                    }
                    continue;
                }
                l->next = lists[w];
                lists[w] = l;
                mine[nlfds[w]].addr = *a;
                mine[nlfds[w]].fd = l->fd;
                nlfds[w]++;
            }
        }
    }
    return MQ_OK;
}

/* ---- admin callbacks -------------------------------------------------- */

static struct stats_snapshot *
core_snapshot(void *ctx)
{
    struct core *c = ctx;
    struct stats_snapshot *snap;
    struct stats_pool *sp;
    struct stats_backend *sb;
    struct backend *b;
    struct pool *p;
    size_t i, j;
    unsigned r;

    snap = calloc(1, sizeof(*snap));
    if (snap == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&core_gen_lock);
    snap->now_ms = mq_wall_ms();
    snap->uptime_s = (snap->now_ms - c->start_ms) / 1000;
    snap->pools = calloc(c->gen->npools, sizeof(*snap->pools));
    if (snap->pools == NULL) {
        goto fail;
    }
    for (i = 0; i < c->gen->npools; i++) {
        p = c->gen->pools[i];
        sp = &snap->pools[i];
        snap->npools++;
        snprintf(sp->name, sizeof(sp->name), "%s", p->cf->name);
        sp->balance = config_balance_name(p->cf->balance);
        sp->check = config_check_name(p->cf->check);
        for (r = 0; r < REJECT_NREASONS; r++) {
            sp->rejected_by[r] = atomic_load(&p->nrejected[r]);
            sp->rejected += sp->rejected_by[r];
        }
        sp->listen = calloc(p->cf->nlistens, sizeof(*sp->listen));
        sp->backends = calloc(p->nbackends, sizeof(*sp->backends));
        if (sp->listen == NULL || sp->backends == NULL) {
            goto fail;
        }
        for (j = 0; j < p->cf->nlistens; j++) {
            snprintf(sp->listen[j], sizeof(sp->listen[j]), "%s",
                     p->cf->listens[j].text);
        }
        sp->nlisten = p->cf->nlistens;
        for (j = 0; j < p->nbackends; j++) {
            b = p->backends[j];
            sb = &sp->backends[j];
            snprintf(sb->name, sizeof(sb->name), "%s", b->name);
            snprintf(sb->address, sizeof(sb->address), "%s", backend_addr(b)->text);
            sb->state = backend_state(b);
            sb->weight = atomic_load(&b->weight);
            sb->active = atomic_load(&b->nactive);
            sb->total = atomic_load(&b->ntotal);
            sb->failed = atomic_load(&b->nfailed);
            sb->bytes_in = atomic_load(&b->bytes_in);
            sb->bytes_out = atomic_load(&b->bytes_out);
            sb->checks_pass = atomic_load(&b->nchecks_pass);
            sb->checks_fail = atomic_load(&b->nchecks_fail);
            sb->since_ms = atomic_load(&b->since_ms);
            backend_get_check(b, &sb->check);
        }
        sp->nbackends = p->nbackends;
    }
    pthread_mutex_unlock(&core_gen_lock);
    return snap;
fail:
    pthread_mutex_unlock(&core_gen_lock);
    stats_snapshot_free(snap);
    return NULL;
}

static int
core_action(void *ctx, const char *pool, const char *backend,
            enum admin_action action, unsigned value)
{
    struct core *c = ctx;
    struct backend *b = NULL;
    struct pool *p = NULL;
    int rc = MQ_OK;
    size_t i;

    pthread_mutex_lock(&core_gen_lock);
    for (i = 0; i < c->gen->npools; i++) {
        if (strcmp(c->gen->pools[i]->cf->name, pool) == 0) {
            p = c->gen->pools[i];
        }
    }
    if (p == NULL) {
        rc = ADMIN_NO_POOL;
        goto out;
    }
    b = pool_find_backend(p, backend);
    if (b == NULL) {
        rc = ADMIN_NO_BACKEND;
        goto out;
    }
    switch (action) {
    case ADMIN_ACTION_DRAIN:
        backend_set_admin(b, BACKEND_ADMIN_DRAIN);
        break;
    case ADMIN_ACTION_DISABLE:
        backend_set_admin(b, BACKEND_ADMIN_DISABLE);
        break;
    case ADMIN_ACTION_ENABLE:
        backend_set_admin(b, BACKEND_ADMIN_NONE);
        break;
    case ADMIN_ACTION_WEIGHT:
        if (value > 256) {
            rc = ADMIN_BAD_VALUE;
            goto out;
        }
        backend_set_weight(b, value);
        break;
    }
out:
    pthread_mutex_unlock(&core_gen_lock);
    return rc;
}

static void
core_admin_ops(struct core *c, struct admin_ops *ops)
{
    ops->ctx = c;
    ops->snapshot = core_snapshot;
    ops->action = core_action;
}

/* ---- signals, shutdown, reload ---------------------------------------- */

static void
core_post_all(struct core *c, unsigned cmd)
{
    unsigned i;

    for (i = 0; i < c->nworkers; i++) {
        worker_post(c->workers[i], cmd);
    }
}

static void
core_on_down(void *ctx, struct pool *pool)
{
    core_backend_down(ctx, pool);
}

void
core_backend_down(struct core *c, const struct pool *pool)
{
    if (pool->cf->close_on_down) {
        core_post_all(c, WORKER_CMD_SWEEP);
    }
}

static void
core_drain_poll_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct core *c = container_of(t, struct core, drain_poll);

    (void)revents;
    if (atomic_load(&c->nlive) == 0) {
        ev_break(loop, EVBREAK_ALL);
    }
}

static void
core_shutdown_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct core *c = container_of(t, struct core, shutdown_timer);

    (void)revents;
    log_notice("shutdown_timeout reached: closing %u sessions",
               atomic_load(&c->nlive));
    core_post_all(c, WORKER_CMD_CLOSE_ALL | WORKER_CMD_EXIT);
    ev_break(loop, EVBREAK_ALL);
}

static void
core_stop_cb(struct ev_loop *loop, ev_signal *sig, int revents)
{
    struct core *c = sig->data;
    double timeout = (double)c->gen->cf->shutdown_timeout_ms / 1000.0;

    (void)revents;
    if (c->stopping) {
        log_notice("second stop signal: closing every session now");
        core_post_all(c, WORKER_CMD_CLOSE_ALL | WORKER_CMD_EXIT);
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    c->stopping = 1;
    log_notice("stopping: no new sessions, %u in flight get up to %.1fs",
               atomic_load(&c->nlive), timeout);
    core_post_all(c, WORKER_CMD_STOP_ACCEPT);
    health_set_pools(c->health, NULL, 0);
    ev_timer_init(&c->shutdown_timer, core_shutdown_timer_cb, timeout, 0.);
    ev_timer_start(loop, &c->shutdown_timer);
    ev_timer_init(&c->drain_poll, core_drain_poll_cb, CORE_DRAIN_POLL_S,
                  CORE_DRAIN_POLL_S);
    ev_timer_start(loop, &c->drain_poll);
}

static void
core_lfds_free(struct core_lfd **lfds, size_t *nlfds, unsigned n)
{
    unsigned w;

    for (w = 0; lfds != NULL && w < n; w++) {
        free(lfds[w]);
    }
    free(lfds);
    free(nlfds);
}

/* One notice per pool or backend a reload adds, removes or changes. */
static void
core_log_diff(const struct config *old, const struct config *new)
{
    struct config_diff d;
    const struct config_diff_entry *e;
    size_t i;

    if (config_diff(old, new, &d) != MQ_OK) {
        return;
    }
    for (i = 0; i < d.nentries; i++) {
        e = &d.entries[i];
        if (e->kind == DIFF_KEPT) {
            continue;
        }
        log_notice("reload: %s %s%s%s %s%s%s%s", e->backend[0] != '\0'
                   ? "backend" : "pool", e->pool, e->backend[0] != '\0'
                   ? "/" : "", e->backend, config_diff_kind_name(e->kind),
                   e->what[0] != '\0' ? " (" : "", e->what,
                   e->what[0] != '\0' ? ")" : "");
    }
    if (d.global[0] != '\0') {
        log_notice("reload: [global]/[admin] changed (%s)", d.global);
    }
    log_notice("reload: %zu added, %zu removed, %zu changed, %zu kept",
               d.counts[DIFF_ADDED], d.counts[DIFF_REMOVED],
               d.counts[DIFF_CHANGED], d.counts[DIFF_KEPT]);
    config_diff_deinit(&d);
}

static bool
core_token_same(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    return strcmp(a, b) == 0;
}

/*
 * Apply the [admin] section of <cf> (reload): a new listen address gets a
 * new server (started before the old one stops, so the port never goes
 * dark), a new token replaces the old one at once. MQ_ERR, logged as
 * FILE:LINE, when the new address cannot be served: the reload is then
 * refused as a whole.
 */
static int
core_reload_admin(struct core *c, const struct config *cf)
{
    const struct config *old = c->gen->cf;
    struct admin_ops ops;
    struct admin *a;
    char err[MQ_ERR_LEN];

    if (old->admin_listen.len != cf->admin_listen.len ||
        memcmp(&old->admin_listen.ss, &cf->admin_listen.ss,
               cf->admin_listen.len) != 0) {
        core_admin_ops(c, &ops);
        a = admin_start(&cf->admin_listen, cf->admin_token, &ops, err);
        if (a == NULL) {
            log_error("%s:%d: [admin] listen = %s cannot be applied: %s",
                      cf->path, cf->admin_listen.line, cf->admin_listen.text,
                      err);
            return MQ_ERR;
        }
        admin_stop(c->admin);
        c->admin = a;
        log_notice("reload: admin port moved from %s to %s",
                   old->admin_listen.text, cf->admin_listen.text);
        if (!core_token_same(old->admin_token, cf->admin_token)) {
            log_notice("reload: admin token changed");
        }
        return MQ_OK;
    }
    if (!core_token_same(old->admin_token, cf->admin_token)) {
        if (admin_set_token(c->admin, cf->admin_token) != MQ_OK) {
            log_error("%s: [admin] token cannot be applied: out of memory",
                      cf->path);
            return MQ_ERR;
        }
        log_notice("reload: admin token %s", cf->admin_token == NULL
                   ? "removed" : old->admin_token == NULL ? "set"
                   : "changed");
    }
    return MQ_OK;
}

static void
core_reload(struct core *c)
{
    struct config_errors errs = { NULL, 0 };
    struct listener **lists;
    struct core_lfd **lfds;
    struct config *cf;
    struct gen *g, *old;
    size_t *nlfds, i;
    unsigned w;

    log_notice("SIGHUP: reloading %s", c->gen->cf->path);
    cf = config_load(c->gen->cf->path, &errs);
    if (cf == NULL) {
        for (i = 0; i < errs.nmsgs; i++) {
            log_error("%s", errs.msgs[i]);
        }
        log_error("reload failed: %zu errors, the running config stays",
                  errs.nmsgs);
        config_errors_deinit(&errs);
        return;
    }
    if (cf->workers != c->nworkers) {
        log_warn("reload: workers = %u needs a restart; keeping %u",
                 cf->workers, c->nworkers);
    }
    if (core_reload_admin(c, cf) != MQ_OK) {
        log_error("reload failed: the running config stays");
        config_destroy(cf);
        return;
    }
    g = gen_create(c, cf, c->gen);
    lists = calloc(c->nworkers, sizeof(*lists));
    lfds = calloc(c->nworkers, sizeof(*lfds));
    nlfds = calloc(c->nworkers, sizeof(*nlfds));
    if (g == NULL || lists == NULL || lfds == NULL || nlfds == NULL ||
        core_build_listeners(c, g, lists, lfds, nlfds, 0) != MQ_OK) {
        log_error("reload failed: out of memory, the running config stays");
        if (g == NULL) {
            config_destroy(cf);
        } else {
            gen_retire(g);
        }
        free(lists);
        core_lfds_free(lfds, nlfds, c->nworkers);
        return;
    }
    log_init(cf->log_level, cf->log_format);
    core_log_diff(c->gen->cf, cf);
    /* Workers adopt the new listeners; unused old sockets close there. */
    for (w = 0; w < c->nworkers; w++) {
        worker_set_listeners(c->workers[w], lists[w]);
    }
    free(lists);
    core_lfds_free(c->lfds, c->nlfds, c->nworkers);
    c->lfds = lfds;
    c->nlfds = nlfds;

    pthread_mutex_lock(&core_gen_lock);
    old = c->gen;
    c->gen = g;
    pthread_mutex_unlock(&core_gen_lock);
    health_set_pools(c->health, g->pools, g->npools);
    gen_retire(old);
    log_notice("reload done: %zu pools", g->npools);
}

static void
core_hup_cb(struct ev_loop *loop, ev_signal *sig, int revents)
{
    struct core *c = sig->data;

    (void)loop;
    (void)revents;
    if (!c->stopping) {
        core_reload(c);
    }
}

/* ---- start and stop ---------------------------------------------------- */

static int
core_drop_privileges(const char *user)
{
    struct passwd *pw;

    pw = getpwnam(user);
    if (pw == NULL) {
        log_error("user %s: no such user", user);
        return MQ_ERR;
    }
    if (setgroups(0, NULL) == -1 || setgid(pw->pw_gid) == -1 ||
        setuid(pw->pw_uid) == -1) {
        log_error("dropping privileges to %s failed: %s", user,
                  strerror(errno));
        return MQ_ERR;
    }
    log_notice("running as user %s (uid %u)", user, (unsigned)pw->pw_uid);
    return MQ_OK;
}

/*
 * Each session takes two descriptors. Raise the soft limit as far as the
 * hard one allows and, if <want> sessions still do not fit, admit fewer
 * (haproxy does the same), so that accepting pauses at the limit instead
 * of running into EMFILE. <want> 0 is max_connections = auto: up to
 * CONFIG_MAX_CONNECTIONS_AUTO, as many as fit, quietly; only a number
 * the user wrote is worth a warning when it does not fit.
 */
static unsigned
core_fit_fd_limit(unsigned want)
{
    bool chosen = want != 0;
    struct rlimit rl;
    rlim_t need;
    unsigned fit;

    if (!chosen) {
        want = CONFIG_MAX_CONNECTIONS_AUTO;
    }
    need = (rlim_t)want * 2 + CORE_FD_RESERVE;

    if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
        return want;
    }
    if (rl.rlim_cur < need && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur >= need) {
        return want;
    }
    fit = rl.rlim_cur > CORE_FD_RESERVE * 2
          ? (unsigned)((rl.rlim_cur - CORE_FD_RESERVE) / 2) : 1;
    if (chosen) {
        log_warn("max_connections = %u needs %llu descriptors but the "
                 "limit is %llu: admitting at most %u sessions", want,
                 (unsigned long long)need, (unsigned long long)rl.rlim_cur,
                 fit);
    } else {
        log_notice("max_connections = auto: %u sessions fit the "
                   "descriptor limit of %llu", fit,
                   (unsigned long long)rl.rlim_cur);
    }
    return fit;
}

bool
core_session_admit(struct core *c)
{
    unsigned n = atomic_fetch_add_explicit(&c->nlive, 1,
                                           memory_order_relaxed);

    if (n >= c->max_connections) {
        atomic_fetch_sub_explicit(&c->nlive, 1, memory_order_relaxed);
        return false;
    }
    return true;
}

void
core_session_done(struct core *c)
{
    atomic_fetch_sub_explicit(&c->nlive, 1, memory_order_relaxed);
}

int
core_init(struct core *c, struct config *cf)
{
    struct admin_ops ops;
    struct listener **lists = NULL;
    char err[MQ_ERR_LEN];
    unsigned w;

    memset(c, 0, sizeof(*c));
    c->start_ms = mq_wall_ms();
    log_init(cf->log_level, cf->log_format);
    if (log_start() != MQ_OK) {
        log_warn("no log writer thread: logging to stderr directly");
    }
    c->max_connections = core_fit_fd_limit(cf->max_connections);
    signal(SIGPIPE, SIG_IGN);
    c->loop = ev_default_loop(EVFLAG_AUTO);
    if (c->loop == NULL) {
        log_error("cannot create the main event loop");
        config_destroy(cf);
        return MQ_ERR;
    }
    c->gen = gen_create(c, cf, NULL);
    if (c->gen == NULL) {
        log_error("out of memory building the pools");
        config_destroy(cf);
        return MQ_ERR;
    }
    c->nworkers = cf->workers;
    c->workers = calloc(c->nworkers, sizeof(*c->workers));
    lists = calloc(c->nworkers, sizeof(*lists));
    c->lfds = calloc(c->nworkers, sizeof(*c->lfds));
    c->nlfds = calloc(c->nworkers, sizeof(*c->nlfds));
    if (c->workers == NULL || lists == NULL || c->lfds == NULL ||
        c->nlfds == NULL) {
        log_error("out of memory");
        goto fail;
    }
    for (w = 0; w < c->nworkers; w++) {
        c->workers[w] = worker_create(c, w);
        if (c->workers[w] == NULL) {
            log_error("cannot create worker %u", w);
            goto fail;
        }
    }
    if (core_build_listeners(c, c->gen, lists, c->lfds, c->nlfds, 1)
        != MQ_OK) {
        goto fail;
    }
    for (w = 0; w < c->nworkers; w++) {
        c->workers[w]->listeners = lists[w];
        lists[w] = NULL;
    }
    c->health = health_create(c->loop, core_on_down, c);
    if (c->health == NULL ||
        health_set_pools(c->health, c->gen->pools, c->gen->npools)
        != MQ_OK) {
        log_error("cannot start the health checker");
        goto fail;
    }
    /*
     * Catch the signals before the admin port opens: callers take an open
     * admin port as "ready", and a SIGHUP sent then must reload, not kill
     * us with its default action. They are handled once the loop runs.
     */
    ev_signal_init(&c->sigterm, core_stop_cb, SIGTERM);
    ev_signal_init(&c->sigint, core_stop_cb, SIGINT);
    ev_signal_init(&c->sighup, core_hup_cb, SIGHUP);
    c->sigterm.data = c->sigint.data = c->sighup.data = c;
    ev_signal_start(c->loop, &c->sigterm);
    ev_signal_start(c->loop, &c->sigint);
    ev_signal_start(c->loop, &c->sighup);
    core_admin_ops(c, &ops);
    c->admin = admin_start(&cf->admin_listen, cf->admin_token, &ops, err);
    if (c->admin == NULL) {
        log_error("admin port: %s", err);
        goto fail;
    }
    if (cf->user != NULL && core_drop_privileges(cf->user) != MQ_OK) {
        goto fail;
    }
    for (w = 0; w < c->nworkers; w++) {
        if (worker_start(c->workers[w]) != MQ_OK) {
            log_error("cannot start worker thread %u", w);
            c->nworkers = w;
            goto fail;
        }
    }
    free(lists);
    log_notice("mqlb %s started: %u workers, %zu pools, admin on %s",
               MQLB_VERSION, c->nworkers, c->gen->npools,
               cf->admin_listen.text);
    return MQ_OK;
fail:
    if (lists != NULL) {
        for (w = 0; w < c->nworkers; w++) {
            while (lists[w] != NULL) {
                struct listener *next = lists[w]->next;

                listener_destroy(lists[w], 0);
                lists[w] = next;
            }
        }
        free(lists);
    }
    core_deinit(c);
    return MQ_ERR;
}

int
core_run(struct core *c)
{
    unsigned w;

    ev_run(c->loop, 0);
    core_post_all(c, WORKER_CMD_EXIT);
    for (w = 0; w < c->nworkers; w++) {
        worker_join(c->workers[w]);
    }
    log_notice("stopped");
    return c->exit_code;
}

void
core_deinit(struct core *c)
{
    struct core_pool_stats *s, *next;
    unsigned w;

    if (c->admin != NULL) {
        admin_stop(c->admin);
        c->admin = NULL;
    }
    if (c->health != NULL) {
        health_destroy(c->health);
        c->health = NULL;
    }
    for (w = 0; c->workers != NULL && w < c->nworkers; w++) {
        worker_destroy(c->workers[w]);
    }
    mq_free(c->workers);
    core_lfds_free(c->lfds, c->nlfds, c->nworkers);
    c->lfds = NULL;
    c->nlfds = NULL;
    if (c->gen != NULL) {
        gen_retire(c->gen);
        c->gen = NULL;
    }
    for (s = c->stats; s != NULL; s = next) {
        next = s->next;
        srclimit_destroy(s->sources);
        free(s);
    }
    c->stats = NULL;
    log_stop();
}
