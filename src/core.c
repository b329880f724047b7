/*
 * core.c: the running process, and its start and stop order: build the
 * first generation, the workers and their listeners, the health checker
 * and the admin port; on SIGTERM stop accepting, let sessions finish
 * within shutdown_timeout, then stop the workers. The other jobs live
 * beside it: gen.c (generations), listen_set.c (listening sockets),
 * reload.c (SIGHUP), mgmt.c (the admin callbacks), ctlserve.c (the
 * control socket), proc.c (limits, privileges).
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mqlb/admin.h"
#include "mqlb/common.h"
#include "mqlb/core.h"
#include "mqlb/ctlserve.h"
#include "mqlb/ctlsock.h"
#include "mqlb/gen.h"
#include "mqlb/health.h"
#include "mqlb/listen_set.h"
#include "mqlb/log.h"
#include "mqlb/mgmt.h"
#include "mqlb/notify.h"
#include "mqlb/persist.h"
#include "mqlb/backend.h"
#include "mqlb/net.h"
#include "mqlb/pool.h"
#include "mqlb/privsep.h"
#include "mqlb/proc.h"
#include "mqlb/rebalancer.h"
#include "mqlb/session.h"
#include "mqlb/takeover.h"
#include "mqlb/relay.h"
#include "mqlb/stats.h"
#include "mqlb/worker.h"

#define CORE_DRAIN_POLL_S   0.05
#define CORE_STATUS_S       2.0     /* how often STATUS= is reconsidered */
#define CORE_TRIM_S         1.0     /* how often a finished burst is looked for */
#define CORE_TRIM_MIN       1000    /* sessions that make a burst */
#define CORE_CTL_WAIT_S     60      /* the admin thread waits this long */

/* ---- signals and shutdown -------------------------------------------- */

static void
core_post_all(struct core *c, unsigned cmd)
{
    unsigned i;

    for (i = 0; i < c->nworkers; i++) {
        worker_post(c->workers[i], cmd);
    }
}

void
core_backend_down(void *ctx, struct pool *pool)
{
    if (pool->cf->close_on_down) {
        core_post_all(ctx, WORKER_CMD_SWEEP);
    }
}

static void
core_drain_poll_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct core *c = container_of(t, struct core, drain_poll);

    (void)revents;
    if (admission_nlive(&c->adm) == 0) {
        ev_break(loop, EVBREAK_ALL);
    }
}

static void
core_shutdown_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct core *c = container_of(t, struct core, shutdown_timer);

    (void)revents;
    log_notice("shutdown_timeout reached: closing %u sessions",
               admission_nlive(&c->adm));
    core_post_all(c, WORKER_CMD_CLOSE_ALL | WORKER_CMD_EXIT);
    ev_break(loop, EVBREAK_ALL);
}

/* No new sessions; leave when the last one ends or at shutdown_timeout. */
static void
core_wind_down(struct core *c)
{
    double timeout = (double)c->gen->cf->shutdown_timeout_ms / 1000.0;

    c->stopping = 1;
    core_post_all(c, WORKER_CMD_STOP_ACCEPT);
    health_set_pools(c->health, NULL, 0);
    ev_timer_init(&c->shutdown_timer, core_shutdown_timer_cb, timeout, 0.);
    ev_timer_start(c->loop, &c->shutdown_timer);
    ev_timer_init(&c->drain_poll, core_drain_poll_cb, CORE_DRAIN_POLL_S,
                  CORE_DRAIN_POLL_S);
    ev_timer_start(c->loop, &c->drain_poll);
}

/* Stop accepting, let sessions finish (SIGTERM, or mqlb -s stop). */
static void
core_begin_stop(struct core *c)
{
    struct ev_loop *loop = c->loop;
    double timeout = mq_secs(c->gen->cf->shutdown_timeout_ms);

    if (c->stopping) {
        log_notice("second stop signal: closing every session now");
        core_post_all(c, WORKER_CMD_CLOSE_ALL | WORKER_CMD_EXIT);
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    notify_stopping();
    log_event(LOG_NOTICE, &(struct log_fields){ .event = "stop" },
              "stopping: no new sessions, %u in flight get up to %.1fs",
              admission_nlive(&c->adm), timeout);
    core_wind_down(c);
}

void
core_retire(struct core *c)
{
    if (c->admin != NULL) {
        /* The successor's admin port answers now (SO_REUSEPORT). */
        admin_stop(c->admin);
        c->admin = NULL;
    }
    core_wind_down(c);
}

void
core_control_socket_start(struct core *c)
{
    char err[MQ_ERR_LEN];

    if (c->ctlsock != NULL || c->gen->cf->control_socket == NULL) {
        return;
    }
    c->ctlsock = ctlsock_start(c->loop, c->gen->cf->control_socket,
                               ctlserve_conn, c, err);
    if (c->ctlsock == NULL) {
        log_warn("%s; no takeover possible", err);
    }
}

static void
core_stop_cb(struct ev_loop *loop, ev_signal *sig, int revents)
{
    (void)loop;
    (void)revents;
    core_begin_stop(sig->data);
}

static void
core_hup_cb(struct ev_loop *loop, ev_signal *sig, int revents)
{
    struct core *c = sig->data;

    (void)loop;
    (void)revents;
    if (!c->stopping) {
        core_reload(c, NULL);
    }
}

/* ---- the admin thread's requests, systemd ------------------------------ */

void
core_do_control(struct core *c, enum core_ctl req, struct reload_result *res)
{
    if (req == CORE_CTL_STOP) {
        core_begin_stop(c);
        return;
    }
    memset(res, 0, sizeof(*res));
    if (c->stopping) {
        snprintf(res->summary, sizeof(res->summary), "stopping");
    } else {
        core_reload(c, res);
    }
}

/* On the main loop: carry out what the admin thread asked for. */
static void
core_ctl_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    struct core *c = w->data;
    struct reload_result res;
    enum core_ctl req;

    (void)loop;
    (void)revents;
    pthread_mutex_lock(&c->ctl_lock);
    req = c->ctl_req;
    pthread_mutex_unlock(&c->ctl_lock);
    if (req == CORE_CTL_STOP) {
        pthread_mutex_lock(&c->ctl_lock);
        c->ctl_req = CORE_CTL_NONE;
        pthread_cond_broadcast(&c->ctl_cond);
        pthread_mutex_unlock(&c->ctl_lock);
        core_do_control(c, CORE_CTL_STOP, NULL);
        return;
    }
    if (req != CORE_CTL_RELOAD) {
        return;
    }
    core_do_control(c, CORE_CTL_RELOAD, &res);
    pthread_mutex_lock(&c->ctl_lock);
    config_errors_deinit(&c->ctl_result.errs);
    c->ctl_result = res;
    c->ctl_done = true;
    pthread_cond_broadcast(&c->ctl_cond);
    pthread_mutex_unlock(&c->ctl_lock);
}

int
core_control(struct core *c, enum core_ctl req, struct reload_result *res)
{
    struct timespec deadline;
    int rc = MQ_OK, e = 0;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += CORE_CTL_WAIT_S;
    pthread_mutex_lock(&c->ctl_lock);
    /* One request at a time: a second `mqlb -s` waits its turn. */
    while (c->ctl_req != CORE_CTL_NONE && e != ETIMEDOUT) {
        e = pthread_cond_timedwait(&c->ctl_cond, &c->ctl_lock, &deadline);
    }
    if (e == ETIMEDOUT) {
        pthread_mutex_unlock(&c->ctl_lock);
        return MQ_ERR;
    }
    c->ctl_req = req;
    c->ctl_done = false;
    ev_async_send(c->loop, &c->ctl_async);
    if (req == CORE_CTL_RELOAD) {
        while (!c->ctl_done && e != ETIMEDOUT) {
            e = pthread_cond_timedwait(&c->ctl_cond, &c->ctl_lock,
                                       &deadline);
        }
        if (c->ctl_done) {
            *res = c->ctl_result;       /* the caller frees its errors */
            memset(&c->ctl_result, 0, sizeof(c->ctl_result));
        } else {
            rc = MQ_ERR;
        }
        c->ctl_req = CORE_CTL_NONE;
        pthread_cond_broadcast(&c->ctl_cond);
    }
    pthread_mutex_unlock(&c->ctl_lock);
    return rc;
}

void
core_status_line(struct core *c, char *out, size_t size)
{
    size_t i, j, up = 0, total = 0;
    struct pool *p;

    for (i = 0; i < c->gen->npools; i++) {
        p = c->gen->pools[i];
        for (j = 0; j < p->nbackends; j++) {
            up += backend_state(p->backends[j]) == BACKEND_UP;
            total++;
        }
    }
    snprintf(out, size, "%zu pool%s, %zu/%zu backends up%s", c->gen->npools,
             c->gen->npools == 1 ? "" : "s", up, total,
             c->stopping ? ", stopping" : "");
}

static void
core_status_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct core *c = container_of(t, struct core, status_timer);
    char status[sizeof(c->status)];

    (void)loop;
    (void)revents;
    core_status_line(c, status, sizeof(status));
    if (strcmp(status, c->status) != 0) {
        snprintf(c->status, sizeof(c->status), "%s", status);
        notify_status(status);
    }
}

static void
core_watchdog_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)t;
    (void)revents;
    notify_watchdog();
}

/* A sample of every counter for the dashboard's charts. */
static void
core_history_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct core *c = container_of(t, struct core, history_timer);
    struct stats_snapshot *snap;
    struct admin_ops ops;

    (void)loop;
    (void)revents;
    mgmt_ops(c, &ops);
    snap = ops.snapshot(c);
    if (snap != NULL) {
        history_add(&c->history, snap);
        stats_snapshot_free(snap);
    }
}

/*
 * After a burst of sessions (at least CORE_TRIM_MIN, now less than half)
 * the memory their structures and buffers took sits free inside malloc's
 * arenas, and RSS stays at the peak: give the free pages back.
 */
static void
core_trim_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct core *c = container_of(t, struct core, trim_timer);
    unsigned peak = admission_peak_reset(&c->adm);
    unsigned n = admission_nlive(&c->adm);

    (void)loop;
    (void)revents;
    /* the high-water mark, not a sample: a burst that comes and goes
     * between two ticks counts too */
    if (peak > c->trim_peak) {
        c->trim_peak = peak;
    }
    if (c->trim_peak >= CORE_TRIM_MIN && n < c->trim_peak / 2) {
        log_info("a burst of %u sessions is over (%u now): free memory goes "
                 "back to the system", c->trim_peak, n);
        malloc_trim(0);
        c->trim_peak = n;
        /* the rest of the burst may end below the threshold: trim once
         * more when the last of it is gone */
        c->trim_tail = n > 0;
    } else if (c->trim_tail && n == 0) {
        malloc_trim(0);
        c->trim_tail = false;
    }
}

/* READY=1 with a STATUS=, and the timers that keep systemd informed. */
static void
core_notify_start(struct core *c)
{
    uint64_t wd = notify_watchdog_ms();

    /* The first sample now, so charts have a start point at once. */
    ev_timer_init(&c->history_timer, core_history_cb, 0.,
                  HISTORY_INTERVAL_S);
    ev_timer_start(c->loop, &c->history_timer);
    ev_timer_init(&c->trim_timer, core_trim_cb, CORE_TRIM_S, CORE_TRIM_S);
    ev_timer_start(c->loop, &c->trim_timer);
    core_status_line(c, c->status, sizeof(c->status));
    notify_ready(c->status);
    if (notify_enabled()) {
        ev_timer_init(&c->status_timer, core_status_cb, CORE_STATUS_S,
                      CORE_STATUS_S);
        ev_timer_start(c->loop, &c->status_timer);
    }
    if (wd > 0) {
        ev_timer_init(&c->watchdog, core_watchdog_cb, 0.,
                      (ev_tstamp)wd / 1000.0);
        ev_timer_start(c->loop, &c->watchdog);
    }
}

/* ---- rebalance = paced ------------------------------------------------ */

/* Every REBALANCE_TICK_MS: each pool's controller; workers close what it
 * hands out. */
static void
core_rebalance_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct core *c = t->data;
    uint64_t now_ms = mq_now_ms();
    bool wake = false;
    size_t i;

    (void)loop;
    (void)revents;
    if (c->stopping) {
        return;     /* sessions are ending anyway */
    }
    for (i = 0; i < c->gen->npools; i++) {
        if (rebalancer_tick(&c->gen->pools[i]->rebal, c->gen->pools[i],
                            now_ms)) {
            wake = true;
        }
    }
    if (wake) {
        core_post_all(c, WORKER_CMD_REBALANCE);
    }
}

/* ---- start and stop ---------------------------------------------------- */

/* net_listen's hook after the privilege drop: the helper binds. */
static int
core_privsep_listen(void *ctx, const struct config_addr *a, int backlog,
                    char *err)
{
    return privsep_listen(ctx, a, backlog, err);
}

int
core_init(struct core *c, struct config *cf, bool takeover)
{
    struct admin_ops ops;
    struct listener **lists = NULL;
    struct takeover_in *tin = NULL;
    struct listen_set inherited;
    char err[MQ_ERR_LEN];
    long npipes;
    unsigned w;
    int rc;

    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->gen_lock, NULL);
    pthread_mutex_init(&c->ctl_lock, NULL);
    pthread_cond_init(&c->ctl_cond, NULL);
    history_init(&c->history);
    c->start_ms = mq_wall_ms();
    atomic_init(&c->last_reload_ok_ms, c->start_ms);
    atomic_init(&c->last_reload_ok, true);
    log_init(cf->log_level, cf->log_format);
    /*
     * With `user =`, a reload must still read a root-only config and
     * listen below 1024: fork the helper that keeps those rights now,
     * while no thread runs yet (privsep.h).
     */
    if (cf->user != NULL && geteuid() == 0) {
        c->privsep = privsep_start(cf->path, err);
        if (c->privsep == NULL) {
            log_error("privileged helper: %s", err);
            config_destroy(cf);
            return MQ_ERR;
        }
    }
    if (log_start() != MQ_OK) {
        log_warn("no log writer thread: logging to stderr directly");
    }
    admission_init(&c->adm, proc_fit_fd_limit(cf, &npipes));
    relay_set_pipe_budget(npipes);
    signal(SIGPIPE, SIG_IGN);
    c->loop = ev_default_loop(EVFLAG_AUTO);
    if (c->loop == NULL) {
        log_error("cannot create the main event loop");
        config_destroy(cf);
        return MQ_ERR;
    }
    if (takeover) {
        /* Everything comes from the running instance, before anything
         * here is bound: its sockets are reused, not bound again. */
        if (cf->control_socket == NULL) {
            log_error("--takeover: %s sets no control_socket in [global]",
                      cf->path);
            config_destroy(cf);
            core_deinit(c);
            return MQ_ERR;
        }
        tin = takeover_receive(cf->control_socket, err);
        if (tin == NULL) {
            log_error("--takeover: %s", err);
            config_destroy(cf);
            core_deinit(c);
            return MQ_ERR;
        }
    }
    c->gen = gen_create(cf, NULL, NULL, &c->keep, core_backend_down, c);
    if (c->gen == NULL) {
        log_error("out of memory building the pools");
        config_destroy(cf);
        takeover_in_free(tin);
        core_deinit(c);
        return MQ_ERR;
    }
    if (tin != NULL) {
        atomic_store(&c->next_id, takeover_next_id(tin));
    }
    c->nworkers = cf->workers;
    c->workers = calloc(c->nworkers, sizeof(*c->workers));
    lists = calloc(c->nworkers, sizeof(*lists));
    if (c->workers == NULL || lists == NULL) {
        log_error("out of memory");
        goto fail;
    }
    for (w = 0; w < c->nworkers; w++) {
        c->workers[w] = worker_create(w, &c->next_id);
        if (c->workers[w] == NULL) {
            log_error("cannot create worker %u", w);
            goto fail;
        }
    }
    if (tin != NULL &&
        takeover_listen_set(tin, c->nworkers, &inherited) != MQ_OK) {
        log_error("out of memory");
        goto fail;
    }
    rc = listen_set_build(&c->sockets, tin != NULL ? &inherited : NULL,
                          c->gen->pools, c->gen->npools, &c->adm,
                          c->nworkers, 1, lists);
    if (tin != NULL) {
        if (rc == MQ_OK) {
            takeover_listeners_taken(tin, &c->sockets);
        }
        listen_set_deinit(&inherited);
    }
    if (rc != MQ_OK) {
        goto fail;
    }
    for (w = 0; w < c->nworkers; w++) {
        worker_add_listeners(c->workers[w], lists[w]);
        lists[w] = NULL;
    }
    c->health = health_create(c->loop);
    if (c->health == NULL ||
        health_set_pools(c->health, c->gen->pools, c->gen->npools)
        != MQ_OK) {
        log_error("cannot start the health checker");
        goto fail;
    }
    if (members_init(&c->members, c, cf) != MQ_OK) {
        goto fail;
    }
    members_use(&c->members, c->gen);
    if (tin != NULL) {
        /* The old process's state wins over the file's: it is newer. */
        takeover_apply_state(tin, c);
        takeover_adopt(tin, c);
    } else {
        persist_restore(c, cf->state_file);
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
    ev_timer_init(&c->rebalance, core_rebalance_cb,
                  REBALANCE_TICK_MS / 1000.0, REBALANCE_TICK_MS / 1000.0);
    c->rebalance.data = c;
    ev_timer_start(c->loop, &c->rebalance);
    ev_async_init(&c->ctl_async, core_ctl_cb);
    c->ctl_async.data = c;
    ev_async_start(c->loop, &c->ctl_async);
    mgmt_ops(c, &ops);
    /* The control socket too is there before the admin port answers
     * (with --takeover it is the old process's until the commit). */
    if (tin == NULL && cf->control_socket != NULL) {
        c->ctlsock = ctlsock_start(c->loop, cf->control_socket, ctlserve_conn,
                                   c, err);
        if (c->ctlsock == NULL) {
            log_error("%s", err);
            goto fail;
        }
    }
    c->admin = admin_start(&cf->admin_listen, cf->admin_token,
                           cf->admin_allowed_hosts, &ops, err);
    if (c->admin == NULL) {
        log_error("admin port: %s", err);
        goto fail;
    }
    if (tin != NULL) {
        /* The commit: from here on the sessions are ours alone. */
        if (takeover_commit(tin, err) != MQ_OK) {
            log_error("--takeover: %s; the running mqlb keeps serving", err);
            goto fail;
        }
        takeover_in_free(tin);
        tin = NULL;
        core_control_socket_start(c);
    }
    if (cf->user != NULL && proc_drop_privileges(cf->user) != MQ_OK) {
        goto fail;
    }
    if (c->privsep != NULL) {
        net_set_listen_hook(core_privsep_listen, c->privsep);
        log_notice("privileged helper (pid %ld) keeps reading %s and "
                   "binding listeners for reloads", (long)privsep_pid(
                   c->privsep), cf->path);
    }
    for (w = 0; w < c->nworkers; w++) {
        if (worker_start(c->workers[w]) != MQ_OK) {
            log_error("cannot start worker thread %u", w);
            c->nworkers = w;
            goto fail;
        }
    }
    free(lists);
    log_event(LOG_NOTICE, &(struct log_fields){ .event = "start" },
              "mqlb %s started: %u workers, %zu pools, admin on %s",
              MQLB_VERSION, c->nworkers, c->gen->npools,
              cf->admin_listen.text);
    core_notify_start(c);
    if (takeover) {
        notify_mainpid();   /* the service's main process now */
    }
    return MQ_OK;
fail:
    free(lists);
    if (tin != NULL) {
        /* Our copies only (no FIN): the old process keeps serving. */
        for (w = 0; c->workers != NULL && w < c->nworkers; w++) {
            if (c->workers[w] != NULL) {
                session_close_all(&c->workers[w]->env, "takeover failed");
            }
        }
        takeover_in_free(tin);
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
    unsigned w;

    ctlsock_stop(c->ctlsock);
    c->ctlsock = NULL;
    if (c->admin != NULL) {
        admin_stop(c->admin);
        c->admin = NULL;
    }
    if (c->admin_old != NULL) {
        admin_stop(c->admin_old);
        c->admin_old = NULL;
    }
    members_deinit(&c->members);
    if (c->health != NULL) {
        health_destroy(c->health);
        c->health = NULL;
    }
    for (w = 0; c->workers != NULL && w < c->nworkers; w++) {
        worker_destroy(c->workers[w]);
    }
    mq_free(c->workers);
    listen_set_deinit(&c->sockets);
    if (c->gen != NULL) {
        gen_retire(c->gen);
        c->gen = NULL;
    }
    gen_keep_free(c->keep);
    c->keep = NULL;
    mq_free(c->handover_keep);
    config_errors_deinit(&c->ctl_result.errs);
    history_deinit(&c->history);
    pthread_cond_destroy(&c->ctl_cond);
    pthread_mutex_destroy(&c->ctl_lock);
    if (c->privsep != NULL) {
        net_set_listen_hook(NULL, NULL);
        privsep_stop(c->privsep);
        c->privsep = NULL;
    }
    pthread_mutex_destroy(&c->gen_lock);
    log_stop();
}
