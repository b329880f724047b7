/*
 * config_diff.c: compare two configs pool by pool and backend by backend.
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
                const char *pool, const char *backend, const char *what)
{
    struct config_diff_entry *e;

    e = realloc(d->entries, (d->nentries + 1) * sizeof(*e));
    if (e == NULL) {
        return MQ_ERR;
    }
    d->entries = e;
    e = &d->entries[d->nentries++];
    e->kind = kind;
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

static int
config_diff_addr_eq(const struct config_addr *a, const struct config_addr *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* Append <name> to the comma list in <buf>. */
static void
config_diff_note(char *buf, size_t size, const char *name)
{
    size_t n = strlen(buf);

    snprintf(buf + n, size - n, "%s%s", n > 0 ? "," : "", name);
}

/* Which pool-level settings differ, into <what>. */
static void
config_diff_pool_settings(const struct config_pool *a,
                          const struct config_pool *b, char *what,
                          size_t size)
{
    size_t i;

    what[0] = '\0';
    if (a->nlistens != b->nlistens) {
        config_diff_note(what, size, "listen");
    } else {
        for (i = 0; i < a->nlistens; i++) {
            if (!config_diff_addr_eq(&a->listens[i], &b->listens[i])) {
                config_diff_note(what, size, "listen");
                break;
            }
        }
    }
    if (a->balance != b->balance) {
        config_diff_note(what, size, "balance");
    }
    if (a->check != b->check || a->check_interval_ms != b->check_interval_ms
        || a->check_timeout_ms != b->check_timeout_ms || a->rise != b->rise
        || a->fall != b->fall) {
        config_diff_note(what, size, "checks");
    }
    if (a->connect_timeout_ms != b->connect_timeout_ms ||
        a->idle_timeout_ms != b->idle_timeout_ms ||
        a->retries != b->retries || a->max_fails != b->max_fails ||
        a->slow_start_ms != b->slow_start_ms ||
        a->close_on_down != b->close_on_down ||
        a->max_conns_per_source != b->max_conns_per_source ||
        a->proxy_protocol != b->proxy_protocol || a->nallow != b->nallow ||
        memcmp(&a->keepalive, &b->keepalive, sizeof(a->keepalive)) != 0) {
        config_diff_note(what, size, "sessions");
    }
}

static int
config_diff_backends(const struct config_pool *op,
                     const struct config_pool *np, struct config_diff *d)
{
    const struct config_backend *ob, *nb;
    char what[96];
    size_t i;

    for (i = 0; i < np->nbackends; i++) {
        nb = &np->backends[i];
        ob = config_diff_find_backend(op, nb->name);
        if (ob == NULL) {
            if (config_diff_add(d, DIFF_ADDED, np->name, nb->name, "")
                != MQ_OK) {
                return MQ_ERR;
            }
            continue;
        }
        what[0] = '\0';
        if (!config_diff_addr_eq(&ob->addr, &nb->addr)) {
            config_diff_note(what, sizeof(what), "address");
        }
        if (ob->weight != nb->weight) {
            config_diff_note(what, sizeof(what), "weight");
        }
        if (ob->backup != nb->backup) {
            config_diff_note(what, sizeof(what), "backup");
        }
        if (ob->max_conns != nb->max_conns) {
            config_diff_note(what, sizeof(what), "max_conns");
        }
        if (config_diff_add(d, what[0] != '\0' ? DIFF_CHANGED : DIFF_KEPT,
                            np->name, nb->name, what) != MQ_OK) {
            return MQ_ERR;
        }
    }
    for (i = 0; i < op->nbackends; i++) {
        if (config_diff_find_backend(np, op->backends[i].name) == NULL &&
            config_diff_add(d, DIFF_REMOVED, op->name, op->backends[i].name,
                            "") != MQ_OK) {
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
    for (i = 0; i < new->npools; i++) {
        np = &new->pools[i];
        op = config_diff_find_pool(old, np->name);
        if (op == NULL) {
            if (config_diff_add(d, DIFF_ADDED, np->name, "", "") != MQ_OK) {
                goto fail;
            }
            continue;
        }
        config_diff_pool_settings(op, np, what, sizeof(what));
        if (config_diff_add(d, what[0] != '\0' ? DIFF_CHANGED : DIFF_KEPT,
                            np->name, "", what) != MQ_OK ||
            config_diff_backends(op, np, d) != MQ_OK) {
            goto fail;
        }
    }
    for (i = 0; i < old->npools; i++) {
        if (config_diff_find_pool(new, old->pools[i].name) == NULL &&
            config_diff_add(d, DIFF_REMOVED, old->pools[i].name, "", "")
            != MQ_OK) {
            goto fail;
        }
    }
    return MQ_OK;
fail:
    config_diff_deinit(d);
    return MQ_ERR;
}

void
config_diff_deinit(struct config_diff *d)
{
    mq_free(d->entries);
    d->nentries = 0;
}
