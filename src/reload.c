/*
 * reload.c: SIGHUP. Build the new generation beside the running one
 * (backends and listening sockets it keeps are reused), check it all
 * came together, then swap: workers adopt the new listeners, the checker
 * the new pools, and the old generation lives on in its sessions.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
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
#include "mqlb/notify.h"
#include "mqlb/privsep.h"
#include "mqlb/worker.h"

/* How long a moved admin server keeps answering (the reload's reply). */
#define RELOAD_ADMIN_LINGER_S   1.0

/* One notice per pool or backend the reload's diff <d> adds, removes or
 * changes; the counts also go to <summary>. */
static void
reload_log_diff(const struct config_diff *d, char *summary, size_t size)
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
    snprintf(summary, size, "%zu added, %zu removed, %zu changed, %zu kept",
             d->counts[DIFF_ADDED], d->counts[DIFF_REMOVED],
             d->counts[DIFF_CHANGED], d->counts[DIFF_KEPT]);
}

/* Log <fmt> as an error and, when asked, keep it for the reply. */
static void
reload_error(struct reload_result *res, const char *fmt, ...)
{
    char msg[1024], **msgs;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_error("%s", msg);
    if (res == NULL) {
        return;
    }
    msgs = realloc(res->errs.msgs, (res->errs.nmsgs + 1) * sizeof(*msgs));
    if (msgs == NULL) {
        return;
    }
    res->errs.msgs = msgs;
    msgs[res->errs.nmsgs] = strdup(msg);
    if (msgs[res->errs.nmsgs] != NULL) {
        res->errs.nmsgs++;
    }
}

/* The old admin server answered the reload that moved it: stop it now. */
static void
reload_admin_old_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct core *c = container_of(t, struct core, admin_old_timer);

    (void)loop;
    (void)revents;
    admin_stop(c->admin_old);
    c->admin_old = NULL;
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
reload_admin(struct core *c, const struct config *cf,
             struct reload_result *res)
{
    const struct config *old = c->gen->cf;
    struct admin_ops ops;
    struct admin *a;
    char err[MQ_ERR_LEN];

    if (!config_addr_equal(&old->admin_listen, &cf->admin_listen)) {
        mgmt_ops(c, &ops);
        a = admin_start(&cf->admin_listen, cf->admin_token,
                        cf->admin_allowed_hosts, &ops, err);
        if (a == NULL) {
            reload_error(res, "%s:%d: [admin] listen = %s cannot be "
                         "applied: %s", cf->path, cf->admin_listen.line,
                         cf->admin_listen.text, err);
            return MQ_ERR;
        }
        /*
         * The old server may be the one waiting for this reload's
         * outcome (mqlb -s reload): stopping it here would join its
         * thread from under it. Stop it once it has answered.
         */
        if (c->admin_old != NULL) {
            ev_timer_stop(c->loop, &c->admin_old_timer);
            admin_stop(c->admin_old);
        }
        c->admin_old = c->admin;
        ev_timer_init(&c->admin_old_timer, reload_admin_old_cb,
                      RELOAD_ADMIN_LINGER_S, 0.);
        ev_timer_start(c->loop, &c->admin_old_timer);
        c->admin = a;
        log_notice("reload: admin port moved from %s to %s",
                   old->admin_listen.text, cf->admin_listen.text);
        if (!reload_token_same(old->admin_token, cf->admin_token)) {
            log_notice("reload: admin token changed");
        }
        return MQ_OK;
    }
    if (admin_set_hosts(c->admin, cf->admin_allowed_hosts) != MQ_OK) {
        reload_error(res, "%s: [admin] allowed_hosts cannot be applied: out "
                     "of memory", cf->path);
        return MQ_ERR;
    }
    if (!reload_token_same(old->admin_token, cf->admin_token)) {
        if (admin_set_token(c->admin, cf->admin_token) != MQ_OK) {
            reload_error(res, "%s: [admin] token cannot be applied: out of "
                         "memory", cf->path);
            return MQ_ERR;
        }
        log_notice("reload: admin token %s", cf->admin_token == NULL
                   ? "removed" : old->admin_token == NULL ? "set"
                   : "changed");
    }
    return MQ_OK;
}

/*
 * The new config, or NULL with its errors logged (and kept in <res>).
 * After the privilege drop the privileged helper reads the file (it may
 * be root's alone).
 */
static struct config *
reload_load(struct core *c, const char *path, struct reload_result *res)
{
    struct config_errors errs = { NULL, 0 };
    char err[MQ_ERR_LEN], *text;
    struct config *cf;
    size_t i, len;

    if (c->privsep == NULL) {
        cf = config_load(path, &errs);
    } else if ((text = privsep_read_config(c->privsep, &len, err)) == NULL) {
        reload_error(res, "%s:0: %s", path, err);
        log_error("reload failed: the running config stays");
        return NULL;
    } else {
        cf = config_load_text(text, len, path, &errs);
        free(text);
    }
    if (cf == NULL) {
        for (i = 0; i < errs.nmsgs; i++) {
            reload_error(res, "%s", errs.msgs[i]);
        }
        log_error("reload failed: %zu errors, the running config stays",
                  errs.nmsgs);
        config_errors_deinit(&errs);
    }
    return cf;
}

/* Count the outcome, tell systemd we are ready again. */
static void
reload_finish(struct core *c, struct reload_result *res, bool ok)
{
    char status[sizeof(c->status)];

    if (ok) {
        atomic_fetch_add(&c->reloads_ok, 1);
        atomic_store(&c->last_reload_ok_ms, mq_wall_ms());
    } else {
        atomic_fetch_add(&c->reloads_failed, 1);
    }
    atomic_store(&c->last_reload_ok, ok);
    if (res != NULL) {
        res->ok = ok;
    }
    core_status_line(c, status, sizeof(status));
    snprintf(c->status, sizeof(c->status), "%s", status);
    notify_ready(ok ? status : "reload failed; the running config stays");
}

void
core_reload(struct core *c, struct reload_result *res)
{
    struct listener **lists = NULL;
    struct listen_set sockets;
    struct config_diff d;
    struct config *cf;
    struct gen *g = NULL, *old;
    char summary[sizeof(res->summary) - 32] = "";   /* room for "N pools: " */
    unsigned w;

    notify_reloading();
    log_event(LOG_NOTICE, &(struct log_fields){ .event = "reload",
              .state = "started" }, "SIGHUP: reloading %s", c->gen->cf->path);
    cf = reload_load(c, c->gen->cf->path, res);
    if (cf == NULL) {
        reload_finish(c, res, false);
        return;
    }
    if (cf->workers != c->nworkers) {
        log_warn("reload: workers = %u needs a restart; keeping %u",
                 cf->workers, c->nworkers);
    }
    if (reload_admin(c, cf, res) != MQ_OK) {
        log_error("reload failed: the running config stays");
        config_destroy(cf);
        reload_finish(c, res, false);
        return;
    }
    /* One verdict: what the log says is kept is what gen_create reuses. */
    if (config_diff(c->gen->cf, cf, &d) != MQ_OK) {
        reload_error(res, "reload failed: out of memory, the running config "
                     "stays");
        config_destroy(cf);
        reload_finish(c, res, false);
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
    reload_log_diff(&d, summary, sizeof(summary));
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
    log_event(LOG_NOTICE, &(struct log_fields){ .event = "reload",
              .state = "done" }, "reload done: %zu pools", g->npools);
    if (res != NULL) {
        /* "%.120s": the counts fit; a longer text is cut, knowingly. */
        snprintf(res->summary, sizeof(res->summary), "%zu pool%s: %.120s",
                 g->npools, g->npools == 1 ? "" : "s", summary);
    }
    reload_finish(c, res, true);
    return;
fail:
    config_diff_deinit(&d);
    reload_error(res, "reload failed: out of memory, the running config "
                 "stays");
    if (g == NULL) {
        config_destroy(cf);
    } else {
        gen_retire(g);
    }
    free(lists);
    reload_finish(c, res, false);
}
