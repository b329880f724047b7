/*
 * members.h: runtime membership of the running pools, on the main loop:
 * backends added (DNS discovery, the runtime API), let go (drain, then
 * removed after their last session), moved to a new address; the
 * balancers' rebuilds asked for by workers; and a way for the admin
 * thread to have a change made on the main loop and wait for it.
 */
#ifndef MQLB_MEMBERS_H
#define MQLB_MEMBERS_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "mqlb/backend.h"
#include "mqlb/config.h"
#include "mqlb/discovery.h"

struct core;
struct gen;
struct pool;

/* A function the admin thread has run on the main loop. */
typedef void (*members_call_fn)(struct core *c, void *arg);

struct members {
    struct core        *core;
    struct discovery   *dns;            /* owned; resolves every name */
    struct discovery_ops dns_ops;       /* what answers do (to us) */
    char               *resolvers;      /* owned: what <dns> asks, or NULL */
    uint64_t            interval_ms;    /* and how often */
    ev_async            stale;          /* a worker asks for rebuilds */
    ev_prepare          fresh;          /* rebuild after the main loop's own
                                           changes (checks), before it waits */
    uint64_t            fresh_seen;     /* backend_changes() it rebuilt for */
    ev_async            call_async;     /* the admin thread has a call */
    ev_timer            reap;           /* leaving backends: gone yet? */
    pthread_mutex_t     call_lock;      /* guards the call_* fields */
    pthread_cond_t      call_cond;
    members_call_fn     call_fn;        /* pending call, or NULL */
    void               *call_arg;
    int                 call_state;     /* MEMBERS_CALL_* */
    /*
     * Set by the owner, or NULL: the runtime API added, removed or moved a
     * backend (main loop), e.g. to save the state_file. The pools' members
     * of source BACKEND_SOURCE_API are what a restart should add again
     * (members_add with that source).
     */
    void              (*on_change)(void *ctx);
    void               *on_change_ctx;
};

/*
 * Start on <c>'s main loop (resolvers and resolve_interval of <cf>).
 * MQ_ERR with the reason logged.
 */
int members_init(struct members *m, struct core *c, const struct config *cf);
void members_deinit(struct members *m);

/* The pools of generation <g> are the ones in force now (start, reload):
 * hooks installed, discovery told. */
void members_use(struct members *m, struct gen *g);

/*
 * A reload built <g> from the file: carry the backends added at runtime
 * (API, DNS) of <old>'s pools into <g>'s pools of the same name, unless
 * the file now has a backend of that name (the file wins, logged).
 */
void members_carry(struct members *m, struct gen *old, struct gen *g);

/*
 * Main loop. Add a backend <cb> from <source> to <p>: checked before it
 * takes sessions. MQ_ERR with errno EEXIST (name taken), ENOSPC (pool
 * full) or ENOMEM.
 */
int members_add(struct members *m, struct pool *p,
                const struct config_backend *cb, enum backend_source source);
/* Main loop. <b> drains and leaves <p> after its last session. */
void members_remove(struct members *m, struct pool *p, struct backend *b,
                    const char *why);
/* Main loop. Move <b> to <a>, checked first. */
int members_readdress(struct members *m, struct pool *p, struct backend *b,
                      const struct config_addr *a);

/*
 * Any thread but the main one: run <fn>(core, <arg>) on the main loop
 * and wait for it. MQ_ERR when the main loop did not take it within a
 * few seconds (shutting down): <fn> did not run.
 */
int members_call(struct members *m, members_call_fn fn, void *arg);

/* The DNS status of pool <name> for /status (any thread). */
void members_dns_status(struct members *m, const char *name,
                        struct discovery_status *out);

#endif /* MQLB_MEMBERS_H */
