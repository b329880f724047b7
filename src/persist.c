/*
 * persist.c: runtime state <-> state_file (see persist.h).
 */
#include <stdlib.h>
#include <string.h>

#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/config.h"
#include "mqlb/core.h"
#include "mqlb/gen.h"
#include "mqlb/log.h"
#include "mqlb/persist.h"
#include "mqlb/pool.h"
#include "mqlb/state_file.h"

/* The file's weight for backend <name> of <p>, or -1. */
static int
persist_file_weight(const struct pool *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->cf->nbackends; i++) {
        if (strcmp(p->cf->backends[i].name, name) == 0) {
            return (int)p->cf->backends[i].weight;
        }
    }
    return -1;
}

int
persist_save(struct gen *g, const char *path)
{
    struct state_entry *e;
    struct backend *b;
    struct pool *p;
    char err[MQ_ERR_LEN];
    size_t i, j, n = 0, cap = 0;
    unsigned w;
    int admin, fw, rc;

    if (path == NULL) {
        return MQ_OK;
    }
    for (i = 0; i < g->npools; i++) {
        cap += g->pools[i]->nbackends;
    }
    e = calloc(cap > 0 ? cap : 1, sizeof(*e));
    if (e == NULL) {
        log_error("state_file %s: out of memory, not saved", path);
        return MQ_ERR;
    }
    for (i = 0; i < g->npools; i++) {
        p = g->pools[i];
        for (j = 0; j < p->nbackends; j++) {
            b = p->backends[j];
            admin = atomic_load(&b->admin);
            w = atomic_load(&b->weight);
            fw = persist_file_weight(p, b->name);
            if (atomic_load(&b->leaving) || b->source == BACKEND_SOURCE_DNS ||
                (b->source == BACKEND_SOURCE_CONFIG &&
                 admin == BACKEND_ADMIN_NONE &&
                 (fw < 0 || (unsigned)fw == w))) {
                continue;       /* DNS finds its own again */
            }
            snprintf(e[n].pool, sizeof(e[n].pool), "%s", p->cf->name);
            snprintf(e[n].backend, sizeof(e[n].backend), "%s", b->name);
            if (b->source == BACKEND_SOURCE_API) {
                e[n].added = true;
                snprintf(e[n].addr, sizeof(e[n].addr), "%s",
                         backend_addr(b)->text);
                e[n].weight = w;
                e[n].max_conns = atomic_load(&b->max_conns);
                e[n].backup = b->backup;
                fw = -1;
            }
            e[n].admin = admin == BACKEND_ADMIN_DRAIN ? STATE_ADMIN_DRAIN
                         : admin == BACKEND_ADMIN_DISABLE
                         ? STATE_ADMIN_DISABLE : STATE_ADMIN_READY;
            if (fw >= 0 && (unsigned)fw != w) {
                e[n].has_weight = true;
                e[n].weight = w;
                e[n].file_weight = (unsigned)fw;
            }
            n++;
        }
    }
    rc = state_file_write(path, e, n, err);
    free(e);
    if (rc != MQ_OK) {
        log_error("%s; the runtime state is not saved", err);
    }
    return rc;
}

static void
persist_warn(void *ctx, const char *msg)
{
    (void)ctx;
    log_warn("%s", msg);
}

/* An "add" line: the backend the API had added, checked before use. */
static struct backend *
persist_add(struct core *c, struct pool *p, const struct state_entry *e)
{
    struct config_backend cb;

    memset(&cb, 0, sizeof(cb));
    snprintf(cb.name, sizeof(cb.name), "%s", e->backend);
    if (config_parse_addr(e->addr, &cb.addr) != MQ_OK) {
        return NULL;
    }
    cb.weight = e->weight;
    cb.max_conns = e->max_conns;
    cb.backup = e->backup;
    if (members_add(&c->members, p, &cb, BACKEND_SOURCE_API) != MQ_OK) {
        return NULL;
    }
    return pool_find_backend(p, e->backend);
}

void
persist_restore(struct core *c, const char *path)
{
    struct gen *g = c->gen;
    struct state_entry *e;
    struct backend *b;
    struct pool *p;
    char err[MQ_ERR_LEN];
    size_t i, n, applied = 0;
    int fw;

    if (path == NULL) {
        return;
    }
    if (state_file_read(path, &e, &n, persist_warn, NULL, err) != MQ_OK) {
        log_warn("%s; starting without the saved runtime state", err);
        return;
    }
    for (i = 0; i < n; i++) {
        p = gen_find_pool(g, e[i].pool);
        b = p != NULL ? pool_find_backend(p, e[i].backend) : NULL;
        if (p == NULL) {
            log_warn("state_file %s:%d: no pool %s in the config, ignored",
                     path, e[i].line, e[i].pool);
            continue;
        }
        if (e[i].added && b == NULL) {
            b = persist_add(c, p, &e[i]);
            if (b == NULL) {
                log_warn("state_file %s:%d: backend %s/%s (%s) cannot be "
                         "added again, ignored", path, e[i].line, e[i].pool,
                         e[i].backend, e[i].addr);
                continue;
            }
        } else if (b == NULL || e[i].added) {
            log_warn("state_file %s:%d: pool %s has no backend %s%s, "
                     "ignored", path, e[i].line, e[i].pool, e[i].backend,
                     b != NULL ? " added at runtime (the file has it now)"
                     : "");
            continue;
        }
        atomic_store(&b->admin, e[i].admin == STATE_ADMIN_DRAIN
                     ? BACKEND_ADMIN_DRAIN : e[i].admin == STATE_ADMIN_DISABLE
                     ? BACKEND_ADMIN_DISABLE : BACKEND_ADMIN_NONE);
        fw = persist_file_weight(p, b->name);
        if (e[i].has_weight && fw >= 0 && (unsigned)fw == e[i].file_weight) {
            atomic_store(&b->weight, e[i].weight);
        } else if (e[i].has_weight) {
            log_warn("state_file %s:%d: %s/%s weight %u ignored: the "
                     "config's weight changed since", path, e[i].line,
                     e[i].pool, e[i].backend, e[i].weight);
        }
        backend_bump(b);
        applied++;
    }
    free(e);
    if (n > 0) {
        log_notice("state_file %s: runtime state of %zu backends restored",
                   path, applied);
    }
}
