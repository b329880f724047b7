/*
 * mgmt.c: the admin port's callbacks. They run on libmicrohttpd's
 * thread and hold the core's generation lock while they read or change
 * the generation in force, so a reload cannot retire it under them.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "mqlb/admin.h"
#include "mqlb/admission.h"
#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/mgmt.h"
#include "mqlb/core.h"
#include "mqlb/gen.h"
#include "mqlb/log.h"
#include "mqlb/persist.h"
#include "mqlb/members.h"
#include "mqlb/pool.h"
#include "mqlb/procstat.h"
#include "mqlb/stats.h"

static const char *const mgmt_source_names[] = { "config", "dns", "api" };

/* The snapshot of one backend, read from its atomics. */
void
mgmt_backend(struct stats_backend *sb, struct backend *b)
{
    size_t i;
    const struct config_addr *next = backend_next_addr(b);

    mq_copy_str(sb->name, sizeof(sb->name), b->name);
    mq_copy_str(sb->address, sizeof(sb->address), backend_addr(b)->text);
    sb->state = backend_state(b);
    sb->down = !backend_is_up(b);
    mq_copy_str(sb->admin, sizeof(sb->admin), backend_admin_name(b));
    backend_reason(b, sb->reason, sizeof(sb->reason));
    sb->weight = atomic_load(&b->weight);
    sb->active = atomic_load(&b->nactive);
    sb->total = atomic_load(&b->ntotal);
    sb->failed = atomic_load(&b->nfailed);
    sb->bytes_in = atomic_load(&b->bytes_in);
    sb->bytes_out = atomic_load(&b->bytes_out);
    sb->checks_pass = atomic_load(&b->nchecks_pass);
    sb->checks_fail = atomic_load(&b->nchecks_fail);
    sb->since_ms = atomic_load(&b->since_ms);
    for (i = 0; i < BACKEND_NSTATES; i++) {
        sb->transitions[i] = atomic_load(&b->ntransitions[i]);
    }
    sb->downtime_ms = backend_downtime_ms(b, mq_now_ms());
    histo_copy(&b->connect_time, &sb->connect_time);
    histo_copy(&b->check_time, &sb->check_time);
    backend_get_check(b, &sb->check);
    sb->source = mgmt_source_names[b->source];
    mq_copy_str(sb->host, sizeof(sb->host), b->host);
    mq_copy_str(sb->next_address, sizeof(sb->next_address),
                next != NULL ? next->text : "");
    sb->leaving = atomic_load(&b->leaving);
}

/* The snapshot of pool <p>; MQ_ERR on no memory. */
int
mgmt_pool(struct core *c, struct stats_pool *sp, struct pool *p)
{
    struct discovery_status ds;
    unsigned r, queued, queued_max;
    size_t j;

    members_dns_status(&c->members, p->cf->name, &ds);
    sp->dns.active = ds.active;
    sp->dns.last_ok_ms = ds.last_ok_ms;
    sp->dns.last_error_ms = ds.last_error_ms;
    snprintf(sp->dns.last_error, sizeof(sp->dns.last_error), "%s",
             ds.last_error);
    sp->dns.rounds = ds.nrounds;
    sp->dns.failed_rounds = ds.nfailed;

    snprintf(sp->name, sizeof(sp->name), "%s", p->cf->name);
    sp->balance = config_balance_name(p->cf->balance);
    sp->check = config_check_name(p->cf->check);
    for (r = 0; r < REJECT_NREASONS; r++) {
        sp->rejected_by[r] = atomic_load(&p->nrejected[r]);
        sp->rejected += sp->rejected_by[r];
    }
    waitq_counts(&p->queue, &queued, &queued_max);
    sp->queued = queued;
    sp->queued_max = queued_max;
    sp->rebalanced = atomic_load(p->nrebalanced);
    if (p->ctr != NULL) {
        sp->sessions = atomic_load(&p->ctr->sessions);
        sp->retries = atomic_load(&p->ctr->retries);
        histo_copy(&p->ctr->duration, &sp->duration);
    } else {
        histo_init_copy(&sp->duration, HISTO_LONG);
    }
    sp->tls = p->cf->tls_server != NULL || p->cf->nsni > 0;
    for (j = 0; j < TLS_NRESULTS; j++) {
        sp->tls_results[j] = atomic_load_explicit(&p->ntls[j],
                                                  memory_order_relaxed);
    }
    sp->listen = calloc(p->cf->nlistens, sizeof(*sp->listen));
    sp->backends = calloc(p->nbackends, sizeof(*sp->backends));
    if (sp->listen == NULL || sp->backends == NULL) {
        return MQ_ERR;
    }
    for (j = 0; j < p->cf->nlistens; j++) {
        snprintf(sp->listen[j], sizeof(sp->listen[j]), "%s",
                 p->cf->listens[j].text);
    }
    sp->nlisten = p->cf->nlistens;
    for (j = 0; j < p->nbackends; j++) {
        mgmt_backend(&sp->backends[j], p->backends[j]);
    }
    sp->nbackends = p->nbackends;
    return MQ_OK;
}

static struct stats_snapshot *
mgmt_snapshot(void *ctx)
{
    struct core *c = ctx;
    struct stats_snapshot *snap;
    size_t i;

    snap = calloc(1, sizeof(*snap));
    if (snap == NULL) {
        return NULL;
    }
    snap->process.proc_ok = procstat_read(&snap->process.proc) == 0;
    snap->process.reloads_ok = atomic_load(&c->reloads_ok);
    snap->process.reloads_failed = atomic_load(&c->reloads_failed);
    snap->process.last_reload_ok_ms = atomic_load(&c->last_reload_ok_ms);
    snap->process.last_reload_ok = atomic_load(&c->last_reload_ok);
    snap->process.pid = (int64_t)getpid();
    snap->process.log_dropped = log_dropped();
    snap->process.max_conns = c->adm.max;
    snap->process.max_conns_reached = admission_nfull(&c->adm);
    pthread_mutex_lock(&c->gen_lock);
    snap->now_ms = mq_wall_ms();
    snap->uptime_s = (snap->now_ms - c->start_ms) / 1000;
    snap->pools = calloc(c->gen->npools, sizeof(*snap->pools));
    if (snap->pools == NULL) {
        goto fail;
    }
    for (i = 0; i < c->gen->npools; i++) {
        snap->npools++;
        if (mgmt_pool(c, &snap->pools[i], c->gen->pools[i]) != MQ_OK) {
            goto fail;
        }
    }
    pthread_mutex_unlock(&c->gen_lock);
    return snap;
fail:
    pthread_mutex_unlock(&c->gen_lock);
    stats_snapshot_free(snap);
    return NULL;
}

static int
mgmt_action(void *ctx, const char *pool, const char *backend,
            enum admin_action action, unsigned value, const char *who)
{
    struct core *c = ctx;
    struct backend *b;
    struct pool *p;
    int rc = MQ_OK;

    pthread_mutex_lock(&c->gen_lock);
    p = gen_find_pool(c->gen, pool);
    b = p != NULL ? pool_find_backend(p, backend) : NULL;
    if (p == NULL) {
        rc = ADMIN_NO_POOL;
    } else if (b == NULL) {
        rc = ADMIN_NO_BACKEND;
    } else if (action == ADMIN_ACTION_DRAIN) {
        backend_set_admin_by(b, BACKEND_ADMIN_DRAIN, who);
    } else if (action == ADMIN_ACTION_DISABLE) {
        backend_set_admin_by(b, BACKEND_ADMIN_DISABLE, who);
    } else if (action == ADMIN_ACTION_ENABLE) {
        backend_set_admin_by(b, BACKEND_ADMIN_NONE, who);
    } else if (value > ADMIN_WEIGHT_MAX) {
        rc = ADMIN_BAD_VALUE;
    } else {
        backend_set_weight(b, value);
    }
    if (rc == MQ_OK) {
        /* A restart keeps what the operator set (state_file). */
        (void)persist_save(c->gen, c->gen->cf->state_file);
    }
    pthread_mutex_unlock(&c->gen_lock);
    return rc;
}

/* The reply to POST /control/reload: the outcome, and its errors. */
static char *
mgmt_reload_reply(struct core *c, const struct reload_result *res,
                  unsigned *status)
{
    json_t *o, *errs;
    char *text;
    size_t i;

    o = json_object();
    errs = json_array();
    if (o == NULL || errs == NULL) {
        json_decref(o);
        json_decref(errs);
        return NULL;
    }
    for (i = 0; i < res->errs.nmsgs; i++) {
        json_array_append_new(errs, json_string(res->errs.msgs[i]));
    }
    json_object_set_new(o, "result", json_string(res->ok ? "ok" : "failed"));
    pthread_mutex_lock(&c->gen_lock);
    json_object_set_new(o, "path", json_string(c->gen->cf->path));
    pthread_mutex_unlock(&c->gen_lock);
    json_object_set_new(o, "summary", json_string(res->summary));
    json_object_set_new(o, "errors", errs);
    if (!res->ok) {
        json_object_set_new(o, "error", json_string(
            res->summary[0] != '\0' ? res->summary
            : "the running config stays"));
    }
    *status = res->ok ? 200 : 422;  /* the file could not be applied */
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

char *
mgmt_command(struct core *c, enum mgmt_cmd cmd, bool on_loop,
             unsigned *status)
{
    struct stats_snapshot *snap;
    struct reload_result res;
    char *text;

    switch (cmd) {
    case MGMT_CMD_STATUS:
        snap = mgmt_snapshot(c);
        text = snap != NULL ? stats_render_json(snap) : NULL;
        stats_snapshot_free(snap);
        *status = 200;
        return text;
    case MGMT_CMD_STOP:
        if (on_loop) {
            core_do_control(c, CORE_CTL_STOP, NULL);
        } else if (core_control(c, CORE_CTL_STOP, NULL) != MQ_OK) {
            *status = 503;
            return strdup("{\"error\":\"busy: try again\"}");
        }
        *status = 202;
        return strdup("{\"result\":\"stopping\"}");
    case MGMT_CMD_RELOAD:
        break;
    }
    memset(&res, 0, sizeof(res));
    if (on_loop) {
        core_do_control(c, CORE_CTL_RELOAD, &res);
    } else if (core_control(c, CORE_CTL_RELOAD, &res) != MQ_OK) {
        *status = 503;
        return strdup("{\"error\":\"the reload did not finish in time\"}");
    }
    text = mgmt_reload_reply(c, &res, status);
    config_errors_deinit(&res.errs);
    return text;
}

/* POST /control/{reload,stop}, on the admin thread. */
static char *
mgmt_control(void *ctx, int what, unsigned *status)
{
    return mgmt_command(ctx, what == ADMIN_CONTROL_STOP ? MGMT_CMD_STOP
                        : MGMT_CMD_RELOAD, false, status);
}

static char *
mgmt_history(void *ctx)
{
    struct core *c = ctx;

    return history_render_json(&c->history);
}

void
mgmt_ops(struct core *c, struct admin_ops *ops)
{
    ops->history = mgmt_history;
    ops->ctx = c;
    ops->snapshot = mgmt_snapshot;
    ops->action = mgmt_action;
    ops->control = mgmt_control;
    ops->api = mgmt_api;
}
