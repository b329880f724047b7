/*
 * core.h: the running process: the config generation in force, the
 * workers, the health checker and the admin port, and their start, stop
 * and reload order. main.c drives it; reload.c and mgmt.c (the admin
 * callbacks) read and change it.
 */
#ifndef MQLB_CORE_H
#define MQLB_CORE_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "mqlb/admission.h"
#include "mqlb/config.h"
#include "mqlb/listen_set.h"
#include "mqlb/members.h"

struct admin;
struct gen;
struct gen_keep;
struct health;
struct privsep;
struct worker;

struct core {
    struct ev_loop     *loop;           /* main thread: signals, checks */
    pthread_mutex_t     gen_lock;       /* guards <gen> against the admin
                                           thread while a reload swaps it */
    struct gen         *gen;            /* config generation in force */
    struct gen_keep    *keep;           /* per pool name, across reloads */
    struct worker     **workers;        /* owned, nworkers */
    unsigned            nworkers;
    struct listen_set   sockets;        /* listening sockets per worker */
    struct health      *health;         /* owned */
    struct members      members;        /* runtime membership, DNS */
    struct admin       *admin;          /* owned */
    struct privsep     *privsep;        /* owned: root's helper after
                                           `user =` dropped it, or NULL */
    struct admission    adm;            /* max_connections tickets */
    _Atomic uint64_t    next_id;        /* session ids */
    uint64_t            start_ms;       /* wall clock at start */
    ev_signal           sigterm, sigint, sighup;
    ev_timer            shutdown_timer; /* shutdown_timeout */
    ev_timer            drain_poll;     /* sessions gone yet? */
    ev_timer            rebalance;      /* the pools' rebalancers' tick */
    unsigned            stopping:1;     /* first SIGTERM seen */
    int                 exit_code;
};

/* Build everything from <cf> (core takes it) and bind; MQ_ERR on failure
 * with the reason logged. */
int core_init(struct core *c, struct config *cf);
/* Run until stopped; returns the exit code. */
int core_run(struct core *c);
void core_deinit(struct core *c);

/* The pools' on_down hook (any thread): with on_backend_down = close,
 * every worker closes the sessions of backends that are down. */
void core_backend_down(void *ctx, struct pool *pool);

/* Re-read the config file and switch to it, or keep the running one
 * (reload.c; SIGHUP on the main loop). */
void core_reload(struct core *c);

#endif /* MQLB_CORE_H */
