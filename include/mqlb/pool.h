/*
 * pool.h: the backends behind one [pool] and the choice among them.
 * Picking takes the pool lock, a few hundred nanoseconds per new session,
 * so that round-robin and least-connections are exact across workers.
 */
#ifndef MQLB_POOL_H
#define MQLB_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mqlb/config.h"
#include "mqlb/rebalancer.h"
#include "mqlb/histo.h"
#include "mqlb/reject.h"
#include "mqlb/waitq.h"
#include "mqlb/tls.h"

struct backend;
struct pool;
struct lb_ops;
struct lb_cand;
struct srclimit;

/* The owner's hook: a backend of <pool> went down (any thread). */
typedef void (*pool_down_fn)(void *ctx, struct pool *pool);

/* The owner's hook: the balancer of <pool> needs a rebuild (any thread,
 * called with the pool lock held: post, do not rebuild here). */
typedef void (*pool_stale_fn)(void *ctx, struct pool *pool);

/* Backends already tried by one session (bit = backend index). */
struct pool_tried {
    uint64_t            bits[CONFIG_MAX_BACKENDS / 64];
};

/*
 * Counters of a pool name that outlive reloads (kept by the owner beside
 * the rejections), for /metrics.
 */
struct pool_counters {
    _Atomic uint64_t    sessions;       /* sessions accepted */
    _Atomic uint64_t    retries;        /* another backend tried */
    struct histo        duration;       /* finished sessions' lifetimes */
};

struct pool {
    const struct config_pool *cf;       /* settings, owned by <owner> */
    void               *owner;          /* the config generation */
    void              (*owner_release)(void *owner);
    struct backend    **backends;       /* one reference each; room for
                                           CONFIG_MAX_BACKENDS; changed
                                           by the owner's thread only,
                                           under <lock> */
    size_t              nbackends;
    uint64_t            members_version;    /* bumped by every change */
    const struct lb_ops *lb;
    void               *lb_state;       /* guarded by <lock> */
    pthread_mutex_t     lock;           /* guards picking and lb state */
    uint64_t            lb_version;     /* backend versions seen by lb */
    uint64_t            lb_asked;       /* version on_stale was told of */
    pool_stale_fn       on_stale;       /* set by the owner before the */
    void               *on_stale_ctx;   /* pool is shared, or NULL */
    bool               *usable;         /* scratch, guarded by <lock> */
    struct lb_cand     *cands;          /* scratch, guarded by <lock> */
    _Atomic uint64_t   *nrejected;      /* REJECT_NREASONS counters, by
                                           reason, shared across reloads */
    struct pool_counters *ctr;          /* shared across reloads; set by
                                           the owner, may be NULL */
    struct srclimit    *sources;        /* sessions per client address,
                                           shared across reloads; NULL if
                                           max_conns_per_source = 0 */
    pool_down_fn        on_down;        /* set by the owner before the */
    void               *on_down_ctx;    /* pool is shared, or NULL */
    _Atomic unsigned    refcnt;         /* generation and sessions */
    _Atomic uint64_t   *ntls;           /* TLS_NRESULTS counters of TLS
                                           handshakes by result: kept
                                           across reloads by the owner,
                                           else <ntls_own> */
    _Atomic uint64_t    ntls_own[TLS_NRESULTS];
    _Atomic bool        rebalancing;    /* rebalance = paced is moving
                                           sessions: new ones go to the
                                           backend furthest below its share */
    _Atomic uint64_t   *nrebalanced;    /* sessions closed to rebalance;
                                           shared across reloads */
    _Atomic uint64_t    own_rebalanced; /* <nrebalanced> until the owner
                                           points it at its own */
    struct rebalancer   rebal;          /* the controller: owner's thread */
    _Atomic int64_t     shed_any;       /* hashed policies: closes the
                                           rebalancer allows on any backend
                                           (see backend->shed otherwise) */
    struct waitq        queue;          /* clients waiting for a slot */
};

/*
 * A pool for <cf> over <backends> (one per cf->backends entry; the pool
 * takes its own references). <nrejected> outlives the pool (kept by the
 * core across reloads). Returns NULL on no memory.
 */
struct pool *pool_create(const struct config_pool *cf,
                         struct backend *const *backends,
                         _Atomic uint64_t *nrejected);
void pool_acquire(struct pool *p);
void pool_release(struct pool *p);

/*
 * Choose a backend for a new session, skipping <tried>. <key> is the
 * client address or client-id hash for source/mqtt-client-id. The chosen
 * backend's session count is already raised (backend_session_start);
 * NULL if none can take it.
 */
struct backend *pool_pick(struct pool *p, const struct pool_tried *tried,
                          uint64_t key, uint64_t now_ms);

/*
 * True when some backend that is up and ready could take a session but
 * for its max_conns or its connect rate: a client may wait for it
 * (max_queue) rather than be turned away.
 */
bool pool_is_saturated(struct pool *p, uint64_t now_ms);

/*
 * The backend <key> maps to now under a hashed policy (source,
 * mqtt-client-id), whether or not it has room; NULL if none serves.
 * <home> (may be NULL) says whether that backend is the key's home
 * rather than a stand-in for a home that is away. Takes nothing.
 */
struct backend *pool_key_owner(struct pool *p, uint64_t key,
                               uint64_t now_ms, bool *home);

/*
 * The position of <b> in <p>, for <struct pool_tried>. Not b->index: a
 * backend kept across a reload may sit elsewhere in the newer pool.
 * CONFIG_MAX_BACKENDS when <b> has left the pool.
 */
unsigned pool_backend_index(const struct pool *p, const struct backend *b);

/* A backend by name, or NULL. */
struct backend *pool_find_backend(struct pool *p, const char *name);

bool pool_has_up_backend(const struct pool *p);

/*
 * A backend of <p> went down, as the health checker or a session's
 * failed connects found it: tell the owner through its on_down hook.
 */
void pool_report_down(struct pool *p);

/* Session accounting for /metrics (any worker). */
static inline void
pool_count_session(struct pool *p)
{
    if (p->ctr != NULL) {
        atomic_fetch_add_explicit(&p->ctr->sessions, 1, memory_order_relaxed);
    }
}

static inline void
pool_count_retry(struct pool *p)
{
    if (p->ctr != NULL) {
        atomic_fetch_add_explicit(&p->ctr->retries, 1, memory_order_relaxed);
    }
}

static inline void
pool_count_duration(struct pool *p, uint64_t ms)
{
    if (p->ctr != NULL) {
        histo_observe_us(&p->ctr->duration, ms * 1000);
    }
}

/* Count a client <p> turned away for <why>. */
static inline void
pool_reject(struct pool *p, enum reject_reason why)
{
    atomic_fetch_add_explicit(&p->nrejected[why], 1, memory_order_relaxed);
}

/*
 * Membership, on the owner's thread only. Add <b> (the pool takes a
 * reference) or remove it (the pool drops its reference): the balancer
 * is rebuilt for the new members before the lock is taken, then both are
 * swapped in at once. With <if_idle>, only while <b> has no session
 * (checked under the lock). MQ_ERR with errno ENOSPC (full), ENOENT (not
 * a member), EBUSY (a session) or ENOMEM; nothing changed then.
 */
int pool_add_backend(struct pool *p, struct backend *b);
int pool_remove_backend(struct pool *p, struct backend *b, bool if_idle);

/*
 * Rebuild a heavy balancer (lb_ops.heavy) from the backends' current
 * states (the owner's answer to on_stale), off the lock; no-op when
 * nothing changed, and for light balancers (the pick rebuilds those).
 */
void pool_rebuild(struct pool *p);

/*
 * pool_rebuild each of <pools> (n) if a backend or a pool's members
 * changed since *<seen> (backend_changes), which it then updates; what
 * the main loop does before every wait, so it costs nothing (whatever
 * the number of backends) while nothing changes. Returns the number of
 * pools looked at: 0 or n.
 */
size_t pool_rebuild_changed(struct pool *const *pools, size_t n,
                            uint64_t *seen);

/* Out-of-range positions (a backend that left the pool) are ignored. */
static inline void
pool_tried_set(struct pool_tried *t, unsigned idx)
{
    if (idx < CONFIG_MAX_BACKENDS) {
        t->bits[idx / 64] |= 1ULL << (idx % 64);
    }
}

static inline bool
pool_tried_has(const struct pool_tried *t, unsigned idx)
{
    return idx < CONFIG_MAX_BACKENDS && ((t->bits[idx / 64] >> (idx % 64)) & 1);
}

#endif /* MQLB_POOL_H */
