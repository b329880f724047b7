/*
 * config_diff.c: compare two configs pool by pool and backend by backend.
 * Which settings differ comes from the key table (config_pool_changes,
 * config_backend_changes); this file only matches pools and backends by
 * name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/common.h"
#include "mqlb/config_diff.h"

static const char *const config_diff_names[] = {
    "kept", "added", "removed", "changed",
};

const char *
config_diff_kind_name(enum config_diff_kind k)
{
    return config_diff_names[k];
}

static int
config_diff_add(struct config_diff *d, enum config_diff_kind kind,
                const char *pool, const char *backend, const char *what,
                unsigned changes)
{
    struct config_diff_entry *e;

    e = realloc(d->entries, (d->nentries + 1) * sizeof(*e));
    if (e == NULL) {
        return MQ_ERR;
    }
    d->entries = e;
    e = &d->entries[d->nentries++];
    e->kind = kind;
    e->changes = changes;
    snprintf(e->pool, sizeof(e->pool), "%s", pool);
    snprintf(e->backend, sizeof(e->backend), "%s", backend);
    snprintf(e->what, sizeof(e->what), "%s", what);
    d->counts[kind]++;
    return MQ_OK;
}

static const struct config_pool *
config_diff_find_pool(const struct config *cf, const char *name)
{
    size_t i;

    for (i = 0; i < cf->npools; i++) {
        if (strcmp(cf->pools[i].name, name) == 0) {
            return &cf->pools[i];
        }
    }
    return NULL;
}

static const struct config_backend *
config_diff_find_backend(const struct config_pool *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->nbackends; i++) {
        if (strcmp(p->backends[i].name, name) == 0) {
            return &p->backends[i];
        }
    }
    return NULL;
}

/* The names of the bits of <changes>, comma-separated, into <what>. */
static void
config_diff_backend_what(unsigned changes, char *what, size_t size)
{
    unsigned bit;
    size_t n = 0;

    what[0] = '\0';
    for (bit = 1; bit <= CONFIG_BACKEND_CONNECT_RATE && n < size;
         bit <<= 1) {
        if (changes & bit) {
            n += (size_t)snprintf(what + n, size - n, "%s%s",
                                  n > 0 ? "," : "",
                                  config_backend_change_name(bit));
        }
    }
}

static int
config_diff_backends(const struct config_pool *op,
                     const struct config_pool *np, struct config_diff *d)
{
    const struct config_backend *ob, *nb;
    char what[96];
    unsigned changes;
    size_t i;

    for (i = 0; i < np->nbackends; i++) {
        nb = &np->backends[i];
        ob = config_diff_find_backend(op, nb->name);
        if (ob == NULL) {
            if (config_diff_add(d, DIFF_ADDED, np->name, nb->name, "", 0)
                != MQ_OK) {
                return MQ_ERR;
            }
            continue;
        }
        changes = config_backend_changes(ob, nb);
        config_diff_backend_what(changes, what, sizeof(what));
        if (config_diff_add(d, changes != 0 ? DIFF_CHANGED : DIFF_KEPT,
                            np->name, nb->name, what, changes) != MQ_OK) {
            return MQ_ERR;
        }
    }
    for (i = 0; i < op->nbackends; i++) {
        if (config_diff_find_backend(np, op->backends[i].name) == NULL &&
            config_diff_add(d, DIFF_REMOVED, op->name, op->backends[i].name,
                            "", 0) != MQ_OK) {
            return MQ_ERR;
        }
    }
    return MQ_OK;
}

int
config_diff(const struct config *old, const struct config *new,
            struct config_diff *d)
{
    const struct config_pool *op, *np;
    char what[96];
    size_t i;

    memset(d, 0, sizeof(*d));
    config_global_changes(old, new, d->global, sizeof(d->global));
    for (i = 0; i < new->npools; i++) {
        np = &new->pools[i];
        op = config_diff_find_pool(old, np->name);
        if (op == NULL) {
            if (config_diff_add(d, DIFF_ADDED, np->name, "", "", 0)
                != MQ_OK) {
                goto fail;
            }
            continue;
        }
        if (config_diff_add(d, config_pool_changes(op, np, what,
                                                   sizeof(what))
                            ? DIFF_CHANGED : DIFF_KEPT,
                            np->name, "", what, 0) != MQ_OK ||
            config_diff_backends(op, np, d) != MQ_OK) {
            goto fail;
        }
    }
    for (i = 0; i < old->npools; i++) {
        if (config_diff_find_pool(new, old->pools[i].name) == NULL &&
            config_diff_add(d, DIFF_REMOVED, old->pools[i].name, "", "", 0)
            != MQ_OK) {
            goto fail;
        }
    }
    return MQ_OK;
fail:
    config_diff_deinit(d);
    return MQ_ERR;
}

const struct config_diff_entry *
config_diff_find(const struct config_diff *d, const char *pool,
                 const char *backend)
{
    size_t i;

    for (i = 0; i < d->nentries; i++) {
        if (strcmp(d->entries[i].pool, pool) == 0 &&
            strcmp(d->entries[i].backend, backend) == 0) {
            return &d->entries[i];
        }
    }
    return NULL;
}

bool
config_diff_keeps_backend(const struct config_diff *d, const char *pool,
                          const char *backend)
{
    const struct config_diff_entry *e = config_diff_find(d, pool, backend);

    return e != NULL && (e->kind == DIFF_KEPT ||
                         (e->kind == DIFF_CHANGED &&
                          !(e->changes & CONFIG_DIFF_NEW_BACKEND)));
}

void
config_diff_deinit(struct config_diff *d)
{
    mq_free(d->entries);
    d->nentries = 0;
}
