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
#include <stdbool.h>
#include <stdint.h>

#include "mqlb/admission.h"
#include "mqlb/config.h"
#include "mqlb/history.h"
#include "mqlb/listen_set.h"
#include "mqlb/members.h"

struct admin;
struct ctlsock;
struct gen;
struct gen_keep;
struct health;
struct privsep;
struct worker;

/* What one reload did, for `mqlb -s reload` (the admin port). */
struct reload_result {
    bool                ok;
    struct config_errors errs;          /* FILE:LINE messages when refused */
    char                summary[160];   /* "3 pools: 1 added, ..." */
};

/* A request of the admin thread that the main loop carries out. */
enum core_ctl {
    CORE_CTL_NONE = 0,
    CORE_CTL_RELOAD,
    CORE_CTL_STOP,
};

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
    struct ctlsock     *ctlsock;        /* control_socket, or NULL */
    uint64_t           *handover_keep;  /* session ids a successor
                                           declined (read by workers) */
    struct privsep     *privsep;        /* owned: root's helper after
                                           `user =` dropped it, or NULL */
    struct admission    adm;            /* max_connections tickets */
    _Atomic uint64_t    next_id;        /* session ids */
    uint64_t            start_ms;       /* wall clock at start */
    ev_signal           sigterm, sigint, sighup;
    ev_async            ctl_async;      /* the admin thread's requests */
    pthread_mutex_t     ctl_lock;       /* guards ctl_*; one at a time */
    pthread_cond_t      ctl_cond;       /* signalled when ctl_done */
    enum core_ctl       ctl_req;        /* pending request */
    bool                ctl_done;       /* ctl_result is ready */
    struct reload_result ctl_result;    /* of the last CORE_CTL_RELOAD */
    ev_timer            watchdog;       /* WATCHDOG=1 for systemd */
    ev_timer            history_timer;  /* a sample for the charts */
    struct history      history;        /* the dashboard's last minutes */
    ev_timer            status_timer;   /* STATUS= when it changes */
    ev_timer            trim_timer;     /* memory back after a burst */
    unsigned            trim_peak;      /* most sessions since the last trim */
    bool                trim_tail;      /* trimmed mid-burst: again at 0 */
    char                status[128];    /* the last STATUS= sent */
    struct admin       *admin_old;      /* moved away by a reload; stopped
                                           a moment later, after it
                                           answered the reload request */
    ev_timer            admin_old_timer;
    _Atomic uint64_t    reloads_ok;
    _Atomic uint64_t    reloads_failed;
    _Atomic uint64_t    last_reload_ok_ms;  /* wall clock; the start too */
    _Atomic bool        last_reload_ok;
    ev_timer            shutdown_timer; /* shutdown_timeout */
    ev_timer            drain_poll;     /* sessions gone yet? */
    ev_timer            rebalance;      /* the pools' rebalancers' tick */
    unsigned            stopping:1;     /* first SIGTERM seen */
    int                 exit_code;
};

/* Build everything from <cf> (core takes it) and bind, or with
 * <takeover> receive the sockets, sessions and state of the instance on
 * cf->control_socket; MQ_ERR on failure with the reason logged. */
int core_init(struct core *c, struct config *cf, bool takeover);
/* Run until stopped; returns the exit code. */
int core_run(struct core *c);
void core_deinit(struct core *c);

/* The pools' on_down hook (any thread): with on_backend_down = close,
 * every worker closes the sessions of backends that are down. */
void core_backend_down(void *ctx, struct pool *pool);

/* A successor took over (takeover.c): no checks, no admin port, no new
 * sessions; leave once the sessions that stayed have ended, or at
 * shutdown_timeout. */
void core_retire(struct core *c);

/* (Re)open cf->control_socket; a warning if it cannot be. */
void core_control_socket_start(struct core *c);

/* Re-read the config file and switch to it, or keep the running one
 * (reload.c; SIGHUP, or the admin port, on the main loop). <res>, when
 * not NULL, receives the outcome (free its errs with
 * config_errors_deinit). */
void core_reload(struct core *c, struct reload_result *res);

/*
 * From the admin thread: have the main loop carry out <req> and, for a
 * reload, wait for its outcome in <res>. MQ_ERR when the main loop did
 * not answer within a minute, or is stopping.
 */
int core_control(struct core *c, enum core_ctl req,
                 struct reload_result *res);

/*
 * On the main loop: carry out <req> at once. The admin thread's requests
 * arrive here through core_control; the control socket (on the main
 * loop already) calls it directly. A reload's outcome goes to <res>
 * (free its errs with config_errors_deinit); while stopping, a reload is
 * refused with the summary "stopping", and a stop closes every session.
 */
void core_do_control(struct core *c, enum core_ctl req,
                     struct reload_result *res);

/* "2 pools, 5/6 backends up": the systemd STATUS= line. */
void core_status_line(struct core *c, char *out, size_t size);

#endif /* MQLB_CORE_H */
