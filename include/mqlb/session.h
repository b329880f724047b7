/*
 * session.h: one client connection and its broker connection. A session
 * knows no worker: its owner hands it a loop, a buffer pool, an id source
 * and two hooks (struct session_env), and keeps the list of its sessions
 * there. Sessions are only touched from the thread that runs that loop.
 */
#ifndef MQLB_SESSION_H
#define MQLB_SESSION_H

#include <ev.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "mqlb/handover.h"

struct admission_ticket;
struct backend;
struct pool;
struct relay_pool;
struct session;

/* What an owner (a worker) gives its sessions, and their list. */
struct session_env {
    struct ev_loop     *loop;           /* the owner's loop */
    struct relay_pool  *rp;             /* the owner's relay buffers */
    _Atomic uint64_t   *next_id;        /* session ids, process-wide */
    void              (*on_closed)(void *ctx);  /* a session was freed */
    void              (*on_shortage)(void *ctx);/* out of descriptors:
                                                   stop accepting a while */
    void              (*on_wake)(void *ctx);    /* any thread: ask the
                                                   owner to call
                                                   session_queue_run() */
    void               *ctx;            /* for the hooks */
    struct session     *sessions;       /* live sessions, doubly linked */
    size_t              nsessions;
    struct session     *queued;         /* sessions in a pool's queue */
    size_t              nqueued;
    ev_timer            queue_poll;     /* while any wait: rate tokens,
                                           and a look for resets */
    ev_tstamp           queue_probed;   /* when queue_poll last looked */
};

/* Where a client came in: the pools of its listen address. */
struct session_entry {
    struct pool *const *pools;          /* [0] counts refusals; several:
                                           chosen by TLS server name */
    size_t              npools;
    unsigned            tls:1;          /* terminate TLS (listen ... tls) */
    unsigned            sni:1;          /* route by server name (sni =) */
};

/*
 * Start a session for the accepted <fd> entering through <e>. The session
 * takes <fd>, the ticket <t> (the client's address is t->peer; <t> is left
 * empty) and a pool reference, and joins env->sessions. With e->tls it
 * first runs the TLS handshake; with e->sni it picks its pool by the
 * server name: from the handshake, or (plain address) from the
 * ClientHello, whose bytes then go to the broker unchanged. On no memory
 * it closes <fd>, returns the ticket and returns MQ_ERR.
 */
int session_create(struct session_env *env, const struct session_entry *e,
                   int fd, struct admission_ticket *t);

/* Close <s> with <reason>; releases everything it holds and frees it. */
void session_close(struct session *s, const char *reason);

/* Close every session of <env> with <reason>. */
void session_close_all(struct session_env *env, const char *reason);

/*
 * Connect the queued sessions of <env> that were granted a backend (the
 * owner's answer to on_wake).
 */
void session_queue_run(struct session_env *env);

/*
 * Close sessions the rebalancer asked for (backend->shed), idle ones
 * first, none younger than rebalance_min_age; under a hashed policy only
 * those whose key now maps elsewhere. They end with "rebalanced".
 */
void session_shed(struct session_env *env);

/* Close the sessions of <env> whose backend went down, in pools that ask
 * for it (on_backend_down = close). */
void session_sweep_down(struct session_env *env);

/* ---- takeover: moving established sessions to another process ------ */

/* A session frozen for a takeover: what it exposes to be moved. */
struct session_export {
    struct session     *s;              /* frozen, still on its list */
    struct handover_session m;          /* its description; m.up.data and
                                           m.down.data point into <bytes> */
    uint8_t            *bytes;          /* owned: the pending bytes */
    int                 cfd;            /* client socket (still s's) */
    int                 ufd;            /* broker socket (still s's) */
};

/*
 * Freeze every movable session of <env> (established, plain TCP): stop
 * its watchers and timers and copy out its pending bytes (a splice pipe
 * is emptied). *<out> is a malloc'd array of the frozen ones (NULL if
 * none); returns how many. The others go on untouched.
 */
size_t session_freeze_all(struct session_env *env,
                          struct session_export **out);

/* The takeover failed: <e>'s session resumes as it was. */
void session_thaw(struct session_export *e);

/* The takeover committed: <e>'s session lives in another process now.
 * Close our copies of its sockets (no FIN: the successor holds them),
 * give back its ticket and free it (no log line: the successor writes
 * the session's one when it ends). */
void session_handed(struct session_export *e);

/*
 * Adopt a session moved from another process: <m> and its sockets <cfd>
 * (client) and <ufd> (broker), on <pool> and its backend <b>, with the
 * ticket <t> (left empty). It resumes at once on <env>'s loop. MQ_ERR on
 * no memory (nothing taken: the caller still owns fds and ticket).
 */
int session_import(struct session_env *env, struct pool *pool,
                   struct backend *b, const struct handover_session *m,
                   int cfd, int ufd, struct admission_ticket *t);

/* One session as GET /sessions shows it. */
struct session_info {
    uint64_t            id;
    char                client[64];     /* "IP:PORT" */
    char                pool[64];
    char                backend[64];    /* "" while none is chosen */
    uint64_t            age_ms;
    uint64_t            bytes_in;       /* client -> broker */
    uint64_t            bytes_out;      /* broker -> client */
    uint64_t            idle_ms;        /* since the last byte either way */
    uint64_t            idle_timeout_ms;    /* 0 = never */
    const char         *state;      /* static: "relaying", "connecting",
                                       "queued"... (session_state_name) */
};

/*
 * The sessions of <env> in pool <pool> with backend <backend> (NULL or ""
 * = any), at most <max>, into <out>; returns how many. On the env's
 * thread.
 */
size_t session_list(struct session_env *env, const char *pool,
                    const char *backend, struct session_info *out,
                    size_t max);

/*
 * Close the sessions of <env> in <pool> with <backend> (NULL or "" =
 * any) and, if <id> is not 0, with that id, with <reason>; returns how
 * many. On the env's thread.
 */
size_t session_close_matching(struct session_env *env, const char *pool,
                              const char *backend, uint64_t id,
                              const char *reason);

#endif /* MQLB_SESSION_H */
