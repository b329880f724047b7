/*
 * core.h: the running process: the config generation in force, the
 * workers, the health checker and the admin port, and their start, stop
 * and reload order. Only main.c drives it.
 */
#ifndef MQLB_CORE_H
#define MQLB_CORE_H

#include <ev.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mqlb/config.h"

struct admin;
struct health;
struct worker;
struct gen;
struct pool;
struct core_lfd;
struct core_pool_stats;

struct core {
    struct ev_loop     *loop;           /* main thread: signals, checks */
    struct gen         *gen;            /* config generation in force */
    struct worker     **workers;        /* owned, nworkers */
    unsigned            nworkers;
    struct health      *health;         /* owned */
    struct admin       *admin;          /* owned */
    struct core_pool_stats *stats;      /* per pool name, across reloads */
    struct core_lfd   **lfds;           /* per worker: listening sockets */
    size_t             *nlfds;          /* per worker: how many */
    _Atomic unsigned    nlive;          /* sessions in the whole process */
    unsigned            max_connections;
    _Atomic uint64_t    next_id;        /* session ids */
    uint64_t            start_ms;       /* wall clock at start */
    ev_signal           sigterm, sigint, sighup;
    ev_timer            shutdown_timer; /* shutdown_timeout */
    ev_timer            drain_poll;     /* sessions gone yet? */
    unsigned            stopping:1;     /* first SIGTERM seen */
    int                 exit_code;
};

/* Build everything from <cf> (core takes it) and bind; MQ_ERR on failure
 * with the reason logged. */
int core_init(struct core *c, struct config *cf);
/* Run until stopped; returns the exit code. */
int core_run(struct core *c);
void core_deinit(struct core *c);

/* Admission: claim one of max_connections; false if the process is full. */
bool core_session_admit(struct core *c);
void core_session_done(struct core *c);

/* A backend of <pool> went down (checks or passive failures, any thread):
 * with on_backend_down = close, every worker closes its sessions. */
void core_backend_down(struct core *c, const struct pool *pool);

#endif /* MQLB_CORE_H */
