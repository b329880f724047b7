/*
 * gen.c: config generations and the backends a reload reuses, plus the
 * per-pool-name counters (rejected sessions, sessions per source address)
 * that outlive every generation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/config.h"
#include "mqlb/config_diff.h"
#include "mqlb/gen.h"
#include "mqlb/pool.h"
#include "mqlb/srclimit.h"

/* Counters that belong to a pool name and outlive reloads. */
struct gen_keep {
    struct gen_keep    *next;
    char                name[CONFIG_NAME_LEN];
    _Atomic uint64_t    rejected[REJECT_NREASONS];  /* by reason */
    _Atomic uint64_t    rebalanced;     /* sessions moved by rebalance */
    struct pool_counters ctr;           /* sessions, retries, durations */
    _Atomic uint64_t    tls[TLS_NRESULTS];  /* TLS handshakes by result */
    struct srclimit    *sources;        /* max_conns_per_source counts,
                                           made when first needed */
};

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

void
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

struct pool *
gen_find_pool(struct gen *g, const char *name)
{
    size_t i;

    for (i = 0; i < g->npools; i++) {
        if (strcmp(g->pools[i]->cf->name, name) == 0) {
            return g->pools[i];
        }
    }
    return NULL;
}

/* The counters of pool <name>, made on first use; NULL on no memory. */
static struct gen_keep *
gen_keep_get(struct gen_keep **list, const char *name)
{
    struct gen_keep *k;

    for (k = *list; k != NULL; k = k->next) {
        if (strcmp(k->name, name) == 0) {
            return k;
        }
    }
    k = calloc(1, sizeof(*k));
    if (k == NULL) {
        return NULL;
    }
    snprintf(k->name, sizeof(k->name), "%s", name);
    histo_init(&k->ctr.duration, HISTO_LONG);
    k->next = *list;
    *list = k;
    return k;
}

void
gen_keep_free(struct gen_keep *keep)
{
    struct gen_keep *next;

    for (; keep != NULL; keep = next) {
        next = keep->next;
        srclimit_destroy(keep->sources);
        free(keep);
    }
}

/*
 * The running backend of <old> to reuse for <cb> of pool <pool>, or NULL:
 * the reload's diff <d> says whether it carries over (kept, or changed
 * only in what applies to a running backend).
 */
static struct backend *
gen_find_backend(struct gen *old, const struct config_diff *d,
                 const char *pool, const struct config_backend *cb)
{
    struct pool *p;

    if (old == NULL || d == NULL ||
        !config_diff_keeps_backend(d, pool, cb->name) ||
        (p = gen_find_pool(old, pool)) == NULL) {
        return NULL;
    }
    return pool_find_backend(p, cb->name);
}

/*
 * The backends of <cp> into <bs>, one reference each: those <old> runs
 * are reused, the others made. MQ_ERR (and no reference held) on no
 * memory.
 */
static int
gen_backends(const struct config_pool *cp, struct gen *old,
             const struct config_diff *d, struct backend **bs)
{
    const struct config_diff_entry *e;
    size_t j;

    for (j = 0; j < cp->nbackends; j++) {
        bs[j] = gen_find_backend(old, d, cp->name, &cp->backends[j]);
        if (bs[j] != NULL) {
            backend_acquire(bs[j]);
            e = config_diff_find(d, cp->name, bs[j]->name);
            /* A weight the file changed wins over one set at runtime. */
            if (e != NULL && (e->changes & CONFIG_BACKEND_WEIGHT)) {
                backend_set_weight(bs[j], cp->backends[j].weight);
            }
            atomic_store(&bs[j]->max_conns, cp->backends[j].max_conns);
            atomic_store(&bs[j]->max_connect_rate,
                         cp->backends[j].max_connect_rate);
        } else {
            bs[j] = backend_create(&cp->backends[j], cp->name);
        }
        if (bs[j] == NULL) {
            while (j-- > 0) {
                backend_release(bs[j]);
            }
            return MQ_ERR;
        }
    }
    return MQ_OK;
}

/* The pool of <cp> for <g>, or NULL on no memory. */
static struct pool *
gen_pool(struct gen *g, const struct config_pool *cp, struct gen *old,
         const struct config_diff *d, struct gen_keep **keep)
{
    struct backend *bs[CONFIG_MAX_BACKENDS];
    struct gen_keep *k;
    struct pool *p;
    size_t j;

    if (gen_backends(cp, old, d, bs) != MQ_OK) {
        return NULL;
    }
    k = gen_keep_get(keep, cp->name);
    p = pool_create(cp, bs, k != NULL ? k->rejected : NULL);
    for (j = 0; j < cp->nbackends; j++) {
        backend_release(bs[j]);     /* the pool holds its own */
    }
    if (p == NULL) {
        return NULL;
    }
    if (k != NULL) {
        p->nrebalanced = &k->rebalanced;
    }
    if (k != NULL && cp->max_conns_per_source > 0) {
        if (k->sources == NULL) {
            k->sources = srclimit_create();
        }
        p->sources = k->sources;
    }
    if (k == NULL ||
        (cp->max_conns_per_source > 0 && p->sources == NULL)) {
        pool_release(p);            /* not yet the generation's */
        return NULL;
    }
    p->ctr = &k->ctr;
    p->ntls = k->tls;
    p->owner = g;
    p->owner_release = gen_release;
    return p;
}

struct gen *
gen_create(struct config *cf, struct gen *old, const struct config_diff *d,
           struct gen_keep **keep, pool_down_fn on_down, void *ctx)
{
    struct gen *g;
    size_t i;

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
        g->pools[i] = gen_pool(g, &cf->pools[i], old, d, keep);
        if (g->pools[i] == NULL) {
            g->cf = NULL;       /* the caller still owns <cf> */
            gen_retire(g);
            return NULL;
        }
        g->pools[i]->on_down = on_down;
        g->pools[i]->on_down_ctx = ctx;
        atomic_fetch_add(&g->refcnt, 1);
        g->npools++;
    }
    return g;
}
