/*
 * worker.h: one thread, one libev loop, its own SO_REUSEPORT listeners
 * and the sessions they accepted. A worker never touches another
 * worker's sessions; the main thread talks to it through an ev_async.
 */
#ifndef MQLB_WORKER_H
#define MQLB_WORKER_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqlb/relay.h"
#include "mqlb/session.h"

struct listener;

/* Commands from the main thread, as bits in worker->cmds. */
#define WORKER_CMD_STOP_ACCEPT  0x01    /* close listeners (shutdown) */
#define WORKER_CMD_CLOSE_ALL    0x02    /* close every session now */
#define WORKER_CMD_EXIT         0x04    /* leave the loop */
#define WORKER_CMD_SWEEP        0x08    /* a backend went down */
#define WORKER_CMD_LISTENERS    0x10    /* adopt <pending> listeners */
#define WORKER_CMD_CALL         0x20    /* run <call_fn> (worker_call) */
#define WORKER_CMD_FREEZE       0x40    /* takeover: stop accepting, freeze
                                           the movable sessions */
#define WORKER_CMD_THAW         0x80    /* takeover failed: resume all */
#define WORKER_CMD_QUEUE        0x200   /* queued sessions were granted */
#define WORKER_CMD_REBALANCE    0x400   /* close what the rebalancer asks */
#define WORKER_CMD_HANDED       0x100   /* takeover done: let the frozen
                                           sessions go (but <keep>) */

struct worker;

/* A function another thread runs on a worker's thread (worker_call). */
typedef void (*worker_call_fn)(struct worker *w, void *arg);

struct worker {
    unsigned            id;             /* 0..workers-1 */
    struct ev_loop     *loop;           /* owned */
    pthread_t           thread;
    ev_async            wake;           /* main thread -> worker */
    _Atomic unsigned    cmds;           /* WORKER_CMD_* bits pending */
    pthread_mutex_t     pending_lock;   /* guards <pending>, <retired> */
    struct listener    *pending;        /* new listener set (reload) */
    struct listener    *retired;        /* sets superseded before they
                                           were adopted; freed (and their
                                           sockets closed) by the worker */
    struct listener    *listeners;      /* owned list; this thread alone
                                           closes listener sockets */
    struct session_env  env;            /* owned sessions, and what they
                                           are given: loop, buffers, ids,
                                           the closed/shortage hooks */
    ev_timer            resume;         /* re-arm accept after a pause */
    struct relay_pool   rp;             /* buffers for this loop */
    pthread_mutex_t     call_lock;      /* guards the call_* fields */
    pthread_cond_t      call_cond;      /* a call finished */
    pthread_mutex_t     call_serial;    /* one caller at a time */
    worker_call_fn      call_fn;        /* pending call, or NULL */
    void               *call_arg;
    bool                call_done;      /* <call_fn> ran (or never will) */
    bool                call_ran;       /* ... and it did run */
    bool                exited;         /* the loop is over: no more calls */
                                        /* (whole bytes, not bit-fields:
                                           they change under call_lock,
                                           the bits below without it) */
    unsigned            paused:1;       /* listeners stopped for a while */
    unsigned            stopping:1;     /* no more accepts */
    unsigned            handing:1;      /* frozen for a takeover */
    struct session_export *exports;     /* the frozen sessions; read by
                                           the main thread between
                                           FREEZE and THAW/HANDED */
    size_t              nexports;
    const uint64_t     *keep;           /* HANDED: ids (sorted) the
                                           successor declined */
    size_t              nkeep;
    _Atomic unsigned    handover_seq;   /* bumped after each FREEZE,
                                           THAW, HANDED */
};

/* Worker <id>; its sessions take ids from <next_id>. NULL on failure. */
struct worker *worker_create(unsigned id, _Atomic uint64_t *next_id);
/* Give the first listener list (owned from now on), before the start. */
void worker_add_listeners(struct worker *w, struct listener *list);
/* Start the thread; listeners already added start with it. */
int worker_start(struct worker *w);
/* Post <cmd> bits and wake the loop (any thread). */
void worker_post(struct worker *w, unsigned cmd);
/* Hand over a new listener list (reload); the worker swaps it in. */
void worker_set_listeners(struct worker *w, struct listener *list);
/*
 * Run <fn>(<w>, <arg>) on <w>'s thread and wait for it (any other
 * thread; the admin port's /sessions). MQ_ERR when the worker has
 * stopped: <fn> did not run.
 */
int worker_call(struct worker *w, worker_call_fn fn, void *arg);
void worker_join(struct worker *w);

/* Takeover (main thread): how many FREEZE/THAW/HANDED <w> has finished,
 * to wait for the next; and the ids HANDED keeps (set before posting). */
unsigned worker_handover_seq(struct worker *w);
void worker_handover_keep(struct worker *w, const uint64_t *ids, size_t n);
void worker_destroy(struct worker *w);

#endif /* MQLB_WORKER_H */
