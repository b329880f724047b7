/*
 * worker.c: an event-loop thread. It owns its listeners, its sessions
 * and its relay buffers; the main thread only posts command bits and
 * wakes it with an ev_async.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/common.h"
#include "mqlb/admission.h"
#include "mqlb/listener.h"
#include "mqlb/log.h"
#include "mqlb/session.h"
#include "mqlb/worker.h"

#define WORKER_PAUSE_S      0.1     /* accept retry after EMFILE/limit */
#define WORKER_BUFS_KEPT    1024    /* idle relay buffers kept for reuse
                                       (16 MiB); more go back to free() */

static void worker_accept(void *ctx, struct listener *l, int fd,
                          struct admission_ticket *t);
static void worker_pause_accept(void *ctx);

/* Make <w> the owner of every listener of <list>. */
static void
worker_attach(struct worker *w, struct listener *list)
{
    for (; list != NULL; list = list->next) {
        listener_attach(list, w->loop, worker_accept, worker_pause_accept,
                        w);
    }
}

static void
worker_listeners_start(struct worker *w)
{
    struct listener *l;

    if (w->handing) {
        return;     /* the sockets are being handed over */
    }
    for (l = w->listeners; l != NULL; l = l->next) {
        listener_start(l);
    }
}

static void
worker_listeners_stop(struct worker *w)
{
    struct listener *l;

    for (l = w->listeners; l != NULL; l = l->next) {
        listener_stop(l);
    }
}

/* <a> with <b> appended; either may be NULL. */
static struct listener *
worker_lists_join(struct listener *a, struct listener *b)
{
    struct listener *l;

    if (a == NULL) {
        return b;
    }
    for (l = a; l->next != NULL; l = l->next) {
    }
    l->next = b;
    return a;
}

static bool
worker_list_has_fd(const struct listener *list, int fd)
{
    for (; list != NULL; list = list->next) {
        if (list->fd == fd) {
            return true;
        }
    }
    return false;
}

/*
 * Free every listener of <doomed> and close each socket once, unless
 * <keep> (the list taking over) holds it. <doomed> may name one socket
 * several times (the running list and lists handed over but never
 * adopted): every socket in it is still open, because only this thread
 * closes listener sockets, so equal numbers are the same socket and the
 * last listener naming it closes it.
 */
static void
worker_listeners_destroy(struct listener *doomed, const struct listener *keep)
{
    struct listener *next;

    for (; doomed != NULL; doomed = next) {
        next = doomed->next;
        listener_destroy(doomed, worker_list_has_fd(keep, doomed->fd) ||
                                 worker_list_has_fd(next, doomed->fd));
    }
}

/* Everything this worker holds or was handed: running, pending, retired. */
static struct listener *
worker_take_all_listeners(struct worker *w)
{
    struct listener *all;

    pthread_mutex_lock(&w->pending_lock);
    all = worker_lists_join(w->pending, w->retired);
    w->pending = NULL;
    w->retired = NULL;
    pthread_mutex_unlock(&w->pending_lock);
    all = worker_lists_join(w->listeners, all);
    w->listeners = NULL;
    return all;
}

static void
worker_resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct worker *w = container_of(t, struct worker, resume);

    (void)loop;
    (void)revents;
    if (!w->paused || w->stopping) {
        return;
    }
    w->paused = 0;
    worker_listeners_start(w);
}

/* Stop accepting on every listener for a short while (EMFILE, limit). */
static void
worker_pause_accept(void *ctx)
{
    struct worker *w = ctx;

    if (w->paused) {
        return;
    }
    w->paused = 1;
    worker_listeners_stop(w);
    /* Sessions on other workers may free room: look again shortly. */
    ev_timer_set(&w->resume, WORKER_PAUSE_S, 0.);
    ev_timer_start(w->loop, &w->resume);
}

/* A session ended: resume accepting if paused for the limit. */
static void
worker_session_closed(void *ctx)
{
    struct worker *w = ctx;

    if (w->paused && !w->stopping) {
        ev_timer_stop(w->loop, &w->resume);
        w->paused = 0;
        worker_listeners_start(w);
    }
    if (w->stopping && w->env.nsessions == 0 && w->listeners == NULL) {
        ev_break(w->loop, EVBREAK_ALL);
    }
}

/* The listener admitted a client: it becomes a session of this worker. */
static void
worker_accept(void *ctx, struct listener *l, int fd,
              struct admission_ticket *t)
{
    struct worker *w = ctx;
    struct session_entry e = {
        .pools = l->route, .npools = l->nroute, .tls = l->addr.tls,
        .sni = l->sni,
    };

    if (session_create(&w->env, &e, fd, t) != MQ_OK) {
        log_error("session for a client of %s: out of memory",
                  l->addr.text);
    }
}

/*
 * Swap in a new listener list (reload). Sockets the new list reuses stay
 * open; the old listener objects, and those of lists handed over but
 * superseded before this thread took them, are freed here, each of their
 * other sockets closed once.
 */
static void
worker_adopt_listeners(struct worker *w)
{
    struct listener *old;

    pthread_mutex_lock(&w->pending_lock);
    if (w->pending == NULL) {
        pthread_mutex_unlock(&w->pending_lock);
        return;
    }
    old = worker_lists_join(w->listeners, w->retired);
    w->listeners = w->pending;
    w->pending = NULL;
    w->retired = NULL;
    pthread_mutex_unlock(&w->pending_lock);
    worker_attach(w, w->listeners);
    worker_listeners_destroy(old, w->listeners);
    if (!w->paused && !w->stopping) {
        worker_listeners_start(w);
    }
}

/* A queued session of this worker was granted a backend (any thread). */
static void
worker_queue_wake(void *ctx)
{
    worker_post(ctx, WORKER_CMD_QUEUE);
}

/* ---- takeover ---------------------------------------------------------- */

/*
 * Freeze every movable session between two events (we are in the loop,
 * not in a callback: no write is half done) and stop accepting; the
 * main thread reads <exports> once handover_seq moves.
 */
static void
worker_freeze(struct worker *w)
{
    w->handing = 1;
    worker_listeners_stop(w);
    w->nexports = session_freeze_all(&w->env, &w->exports);
}

static bool
worker_keeps(const struct worker *w, uint64_t id)
{
    size_t lo = 0, hi = w->nkeep, mid;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (w->keep[mid] == id) {
            return true;
        }
        if (w->keep[mid] < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return false;
}

/* The takeover failed (<handed> false) or committed: every frozen
 * session resumes here, or goes (all but those the successor kept out). */
static void
worker_unfreeze(struct worker *w, bool handed)
{
    struct session_export *e;
    size_t i;

    for (i = 0; i < w->nexports; i++) {
        e = &w->exports[i];
        if (handed && !worker_keeps(w, e->m.id)) {
            session_handed(e);
        } else {
            session_thaw(e);
        }
    }
    mq_free(w->exports);
    w->nexports = 0;
    w->keep = NULL;
    w->nkeep = 0;
    w->handing = 0;
    if (handed) {
        /* The successor accepts on these sockets now; ours are copies. */
        w->stopping = 1;
        ev_timer_stop(w->loop, &w->resume);
        worker_listeners_destroy(worker_take_all_listeners(w), NULL);
    } else if (!w->paused && !w->stopping) {
        worker_listeners_start(w);
    }
}

unsigned
worker_handover_seq(struct worker *w)
{
    return atomic_load_explicit(&w->handover_seq, memory_order_acquire);
}

void
worker_handover_keep(struct worker *w, const uint64_t *ids, size_t n)
{
    w->keep = ids;
    w->nkeep = n;
}

/* Run the pending call (or, when <run> is false, refuse it) and say so. */
static void
worker_run_call(struct worker *w, bool run)
{
    worker_call_fn fn;
    void *arg;

    pthread_mutex_lock(&w->call_lock);
    fn = w->call_fn;
    arg = w->call_arg;
    pthread_mutex_unlock(&w->call_lock);
    if (fn == NULL) {
        return;
    }
    if (run) {
        fn(w, arg);
    }
    pthread_mutex_lock(&w->call_lock);
    w->call_fn = NULL;
    w->call_ran = run;
    w->call_done = 1;
    pthread_cond_broadcast(&w->call_cond);
    pthread_mutex_unlock(&w->call_lock);
}

int
worker_call(struct worker *w, worker_call_fn fn, void *arg)
{
    int rc = MQ_OK;

    pthread_mutex_lock(&w->call_serial);
    pthread_mutex_lock(&w->call_lock);
    if (w->exited) {
        pthread_mutex_unlock(&w->call_lock);
        pthread_mutex_unlock(&w->call_serial);
        return MQ_ERR;
    }
    w->call_fn = fn;
    w->call_arg = arg;
    w->call_done = 0;
    pthread_mutex_unlock(&w->call_lock);
    worker_post(w, WORKER_CMD_CALL);
    pthread_mutex_lock(&w->call_lock);
    while (!w->call_done) {
        pthread_cond_wait(&w->call_cond, &w->call_lock);
    }
    if (!w->call_ran) {
        rc = MQ_ERR;
    }
    pthread_mutex_unlock(&w->call_lock);
    pthread_mutex_unlock(&w->call_serial);
    return rc;
}

static void
worker_wake_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    struct worker *w = container_of(a, struct worker, wake);
    unsigned cmds = atomic_exchange(&w->cmds, 0);

    (void)revents;
    if (cmds & WORKER_CMD_LISTENERS) {
        worker_adopt_listeners(w);
    }
    if (cmds & WORKER_CMD_SWEEP) {
        session_sweep_down(&w->env);
    }
    if (cmds & WORKER_CMD_QUEUE) {
        session_queue_run(&w->env);
    }
    if (cmds & WORKER_CMD_REBALANCE) {
        session_shed(&w->env);
    }
    if (cmds & (WORKER_CMD_FREEZE | WORKER_CMD_THAW | WORKER_CMD_HANDED)) {
        if (cmds & WORKER_CMD_FREEZE) {
            worker_freeze(w);
        } else {
            worker_unfreeze(w, (cmds & WORKER_CMD_HANDED) != 0);
        }
        atomic_fetch_add_explicit(&w->handover_seq, 1, memory_order_release);
    }
    if (cmds & WORKER_CMD_CALL) {
        worker_run_call(w, true);
    }
    if (cmds & WORKER_CMD_STOP_ACCEPT) {
        w->stopping = 1;
        ev_timer_stop(loop, &w->resume);
        worker_listeners_destroy(worker_take_all_listeners(w), NULL);
    }
    if (cmds & WORKER_CMD_CLOSE_ALL) {
        session_close_all(&w->env, "shutdown");
    }
    if ((cmds & WORKER_CMD_EXIT) ||
        (w->stopping && w->env.nsessions == 0)) {
        ev_break(loop, EVBREAK_ALL);
    }
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;

    worker_listeners_start(w);
    ev_run(w->loop, 0);
    /* Leaving: nothing may outlive the loop. */
    session_close_all(&w->env, "shutdown");
    pthread_mutex_lock(&w->call_lock);
    w->exited = 1;
    pthread_mutex_unlock(&w->call_lock);
    worker_run_call(w, false);      /* a caller waiting now gets no run */
    return NULL;
}

struct worker *
worker_create(unsigned id, _Atomic uint64_t *next_id)
{
    struct worker *w;

    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return NULL;
    }
    w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (w->loop == NULL) {
        free(w);
        return NULL;
    }
    w->id = id;
    pthread_mutex_init(&w->pending_lock, NULL);
    pthread_mutex_init(&w->call_lock, NULL);
    pthread_cond_init(&w->call_cond, NULL);
    pthread_mutex_init(&w->call_serial, NULL);
    relay_pool_init(&w->rp, WORKER_BUFS_KEPT);
    w->env.loop = w->loop;
    w->env.rp = &w->rp;
    w->env.next_id = next_id;
    w->env.on_closed = worker_session_closed;
    w->env.on_shortage = worker_pause_accept;
    w->env.on_wake = worker_queue_wake;
    w->env.ctx = w;
    ev_async_init(&w->wake, worker_wake_cb);
    ev_async_start(w->loop, &w->wake);
    ev_init(&w->resume, worker_resume_cb);
    return w;
}

void
worker_add_listeners(struct worker *w, struct listener *list)
{
    worker_attach(w, list);
    w->listeners = list;
}

int
worker_start(struct worker *w)
{
    char name[16];

    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        return MQ_ERR;
    }
    /* `top -H` and /proc/PID/task/TID/comm then tell the workers apart */
    snprintf(name, sizeof(name), "mqlb-worker-%u", w->id);
    (void)pthread_setname_np(w->thread, name);
    return MQ_OK;
}

void
worker_post(struct worker *w, unsigned cmd)
{
    atomic_fetch_or(&w->cmds, cmd);
    ev_async_send(w->loop, &w->wake);
}

/*
 * A list not adopted yet (two reloads in a row) is not freed here: its
 * sockets may also be in the list the worker is running, and only the
 * worker may close those. It is retired, and the worker frees it when it
 * adopts <list>.
 */
void
worker_set_listeners(struct worker *w, struct listener *list)
{
    pthread_mutex_lock(&w->pending_lock);
    w->retired = worker_lists_join(w->pending, w->retired);
    w->pending = list;
    pthread_mutex_unlock(&w->pending_lock);
    worker_post(w, WORKER_CMD_LISTENERS);
}

void
worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
}

void
worker_destroy(struct worker *w)
{
    if (w == NULL) {
        return;
    }
    /* A reload handed over just before exit: its list shares sockets
     * with the running one; each is closed once. */
    worker_listeners_destroy(worker_take_all_listeners(w), NULL);
    ev_loop_destroy(w->loop);
    relay_pool_deinit(&w->rp);
    pthread_mutex_destroy(&w->pending_lock);
    pthread_mutex_destroy(&w->call_lock);
    pthread_cond_destroy(&w->call_cond);
    pthread_mutex_destroy(&w->call_serial);
    free(w);
}
