/*
 * reload.c: SIGHUP. Build the new generation beside the running one
 * (backends and listening sockets it keeps are reused), check it all
 * came together, then swap: workers adopt the new listeners, the checker
 * the new pools, and the old generation lives on in its sessions.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/admin.h"
#include "mqlb/common.h"
#include "mqlb/config.h"
#include "mqlb/config_diff.h"
#include "mqlb/core.h"
#include "mqlb/gen.h"
#include "mqlb/health.h"
#include "mqlb/listen_set.h"
#include "mqlb/log.h"
#include "mqlb/members.h"
#include "mqlb/mgmt.h"
#include "mqlb/privsep.h"
#include "mqlb/worker.h"

/* One notice per pool or backend the reload's diff <d> adds, removes or
 * changes. */
static void
reload_log_diff(const struct config_diff *d)
{
    const struct config_diff_entry *e;
    size_t i;

    for (i = 0; i < d->nentries; i++) {
        e = &d->entries[i];
        if (e->kind == DIFF_KEPT) {
            continue;
        }
        log_notice("reload: %s %s%s%s %s%s%s%s", e->backend[0] != '\0'
                   ? "backend" : "pool", e->pool, e->backend[0] != '\0'
                   ? "/" : "", e->backend, config_diff_kind_name(e->kind),
                   e->what[0] != '\0' ? " (" : "", e->what,
                   e->what[0] != '\0' ? ")" : "");
    }
    if (d->global[0] != '\0') {
        log_notice("reload: [global]/[admin] changed (%s)", d->global);
    }
    log_notice("reload: %zu added, %zu removed, %zu changed, %zu kept",
               d->counts[DIFF_ADDED], d->counts[DIFF_REMOVED],
               d->counts[DIFF_CHANGED], d->counts[DIFF_KEPT]);
}

static bool
reload_token_same(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    return strcmp(a, b) == 0;
}

/*
 * Apply the [admin] section of <cf>: a new listen address gets a new
 * server (started before the old one stops, so the port never goes
 * dark), a new token replaces the old one at once. MQ_ERR, logged as
 * FILE:LINE, when the new address cannot be served: the reload is then
 * refused as a whole.
 */
static int
reload_admin(struct core *c, const struct config *cf)
{
    const struct config *old = c->gen->cf;
    struct admin_ops ops;
    struct admin *a;
    char err[MQ_ERR_LEN];

    if (!config_addr_equal(&old->admin_listen, &cf->admin_listen)) {
        mgmt_ops(c, &ops);
        a = admin_start(&cf->admin_listen, cf->admin_token, &ops, err);
        if (a == NULL) {
            log_error("%s:%d: [admin] listen = %s cannot be applied: %s",
                      cf->path, cf->admin_listen.line, cf->admin_listen.text,
                      err);
            return MQ_ERR;
        }
        if (admin_set_hosts(a, cf->admin_allowed_hosts) != MQ_OK) {
            admin_stop(a);
            log_error("%s: [admin] allowed_hosts cannot be applied: out of "
                      "memory", cf->path);
            return MQ_ERR;
        }
        admin_stop(c->admin);
        c->admin = a;
        log_notice("reload: admin port moved from %s to %s",
                   old->admin_listen.text, cf->admin_listen.text);
        if (!reload_token_same(old->admin_token, cf->admin_token)) {
            log_notice("reload: admin token changed");
        }
        return MQ_OK;
    }
    if (admin_set_hosts(c->admin, cf->admin_allowed_hosts) != MQ_OK) {
        log_error("%s: [admin] allowed_hosts cannot be applied: out of "
                  "memory", cf->path);
        return MQ_ERR;
    }
    if (!reload_token_same(old->admin_token, cf->admin_token)) {
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

/*
 * The new config, or NULL with its errors logged. After the privilege
 * drop the privileged helper reads the file (it may be root's alone).
 */
static struct config *
reload_load(struct core *c, const char *path)
{
    struct config_errors errs = { NULL, 0 };
    char err[MQ_ERR_LEN], *text;
    struct config *cf;
    size_t i, len;

    if (c->privsep == NULL) {
        cf = config_load(path, &errs);
    } else if ((text = privsep_read_config(c->privsep, &len, err)) == NULL) {
        log_error("%s:0: %s", path, err);
        log_error("reload failed: the running config stays");
        return NULL;
    } else {
        cf = config_load_text(text, len, path, &errs);
        free(text);
    }
    if (cf == NULL) {
        for (i = 0; i < errs.nmsgs; i++) {
            log_error("%s", errs.msgs[i]);
        }
        log_error("reload failed: %zu errors, the running config stays",
                  errs.nmsgs);
        config_errors_deinit(&errs);
    }
    return cf;
}

void
core_reload(struct core *c)
{
    struct listener **lists;
    struct listen_set sockets;
    struct config_diff d;
    struct config *cf;
    struct gen *g, *old;
    unsigned w;

    log_notice("SIGHUP: reloading %s", c->gen->cf->path);
    cf = reload_load(c, c->gen->cf->path);
    if (cf == NULL) {
        return;
    }
    if (cf->workers != c->nworkers) {
        log_warn("reload: workers = %u needs a restart; keeping %u",
                 cf->workers, c->nworkers);
    }
    if (reload_admin(c, cf) != MQ_OK) {
        log_error("reload failed: the running config stays");
        config_destroy(cf);
        return;
    }
    /* One verdict: what the log says is kept is what gen_create reuses. */
    if (config_diff(c->gen->cf, cf, &d) != MQ_OK) {
        log_error("reload failed: out of memory, the running config stays");
        config_destroy(cf);
        return;
    }
    g = gen_create(cf, c->gen, &d, &c->keep, core_backend_down, c);
    if (g != NULL) {
        members_carry(&c->members, c->gen, g);
    }
    lists = calloc(c->nworkers, sizeof(*lists));
    if (g == NULL || lists == NULL ||
        listen_set_build(&sockets, &c->sockets, g->pools, g->npools,
                         &c->adm, c->nworkers, 0, lists) != MQ_OK) {
        goto fail;
    }
    /* All or nothing: on failure the checker keeps the running pools. */
    if (health_set_pools(c->health, g->pools, g->npools) != MQ_OK) {
        listen_set_discard(lists, c->nworkers, &c->sockets);
        listen_set_deinit(&sockets);
        goto fail;
    }
    log_init(cf->log_level, cf->log_format);
    reload_log_diff(&d);
    config_diff_deinit(&d);
    /* Workers adopt the new listeners; unused old sockets close there. */
    for (w = 0; w < c->nworkers; w++) {
        worker_set_listeners(c->workers[w], lists[w]);
    }
    free(lists);
    listen_set_deinit(&c->sockets);
    c->sockets = sockets;

    pthread_mutex_lock(&c->gen_lock);
    old = c->gen;
    c->gen = g;
    pthread_mutex_unlock(&c->gen_lock);
    members_use(&c->members, g);
    gen_retire(old);
    log_notice("reload done: %zu pools", g->npools);
    return;
fail:
    config_diff_deinit(&d);
    log_error("reload failed: out of memory, the running config stays");
    if (g == NULL) {
        config_destroy(cf);
    } else {
        gen_retire(g);
    }
    free(lists);
}
