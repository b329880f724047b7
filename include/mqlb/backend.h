/*
 * backend.h: one broker of a pool. Its health state, admin state and
 * counters are atomics: workers, the checker and the admin server all read
 * them, and each field has a single kind of writer.
 */
#ifndef MQLB_BACKEND_H
#define MQLB_BACKEND_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mqlb/config.h"
#include "mqlb/rate.h"
#include "mqlb/histo.h"

enum backend_state {
    BACKEND_UP = 0,
    BACKEND_DOWN,
    BACKEND_DRAIN,
    BACKEND_DISABLED,
};

#define BACKEND_NSTATES 4       /* the values of enum backend_state */

enum backend_admin {
    BACKEND_ADMIN_NONE = 0,     /* health decides */
    BACKEND_ADMIN_DRAIN,        /* no new sessions, keep the existing */
    BACKEND_ADMIN_DISABLE,      /* like drain, and checks stop counting */
};

enum backend_check_result {
    BACKEND_CHECK_NONE = 0,     /* not checked yet */
    BACKEND_CHECK_PASS,
    BACKEND_CHECK_FAIL,
};

#define BACKEND_REASON_MAX  256     /* "why not up and ready", in words */
#define BACKEND_WHO_MAX     64      /* admin peer address text */

/* The last health check, shown by the admin port. Guarded by check_lock. */
struct backend_check {
    enum backend_check_result result;
    char        reason[160];    /* why it failed; "" on a pass */
    uint32_t    latency_ms;     /* connect to verdict */
    uint64_t    at_ms;          /* wall clock of the verdict */
};

/*
 * An address a backend has had. Immutable once published, and kept until
 * the backend is freed, so a reader on any thread may hold it as long as
 * it holds the backend (a re-address publishes a new one).
 */
struct backend_addr {
    struct backend_addr *prev;          /* older ones, freed with it */
    struct config_addr  a;
    char                name[256];      /* DNS name it was resolved from,
                                           for TLS (SNI, verification);
                                           "" for an IP address */
};

/* Where a backend came from: shown as "source" in /status. */
enum backend_source {
    BACKEND_SOURCE_CONFIG = 0,          /* a backend = line */
    BACKEND_SOURCE_DNS,                 /* a discover = line */
    BACKEND_SOURCE_API,                 /* POST /pools/P/backends */
};

struct backend {
    char                name[CONFIG_NAME_LEN];
    char                pool_name[CONFIG_NAME_LEN];  /* for log lines */
    _Atomic(struct backend_addr *) addr;    /* broker address now:
                                           backend_addr() */
    _Atomic(struct backend_addr *) next;    /* being checked before it
                                           replaces <addr>, or NULL */
    unsigned            next_passes;    /* checker only: passes of <next> */
    char                host[256];      /* DNS name to re-resolve, or "" */
    unsigned            port;           /* with <host> */
    enum backend_source source;         /* config, dns or api */
    _Atomic bool        leaving;        /* removed: drains, then goes */
    unsigned            index;          /* position in the newest pool
                                           holding it; only for tests:
                                           a reload may move it while
                                           workers pick from the old
                                           pool, so they use the pool's
                                           own positions (lb_cand) */
    _Atomic bool        backup;         /* only while no primary is up;
                                           DNS may change it (SRV priority) */
    _Atomic unsigned    weight;         /* configured, or set by admin */
    _Atomic unsigned    max_conns;      /* 0 = unlimited */
    _Atomic unsigned    max_connect_rate;   /* new sessions a second, 0 =
                                           unlimited */
    struct rate         connect_rate;   /* its token bucket, all workers */
    _Atomic int64_t     shed;           /* sessions the rebalancer asks the
                                           workers to close on it now */
    _Atomic bool        up;             /* health verdict (active+passive) */
    _Atomic int         admin;          /* enum backend_admin */
    _Atomic bool        proto_drain;    /* broker asked to drain (NATS ldm) */
    _Atomic uint64_t    since_ms;       /* wall clock of the last change */
    _Atomic uint64_t    up_at_ms;       /* monotonic time it came up */
    _Atomic int64_t     nactive;        /* sessions now */
    _Atomic uint64_t    ntotal;         /* sessions ever */
    _Atomic uint64_t    nfailed;        /* connect failures ever */
    _Atomic uint64_t    bytes_in;       /* client -> broker */
    _Atomic uint64_t    bytes_out;      /* broker -> client */
    _Atomic uint64_t    nchecks_pass;
    _Atomic uint64_t    nchecks_fail;
    _Atomic unsigned    nfails_row;     /* passive: connect failures in a row */
    _Atomic uint64_t    answered_ms;    /* monotonic: a session last heard
                                           its broker's first byte */
    _Atomic unsigned    refcnt;         /* pools and sessions holding it */
    _Atomic uint64_t    version;        /* bumped on every state/weight change */
    _Atomic int         last_state;     /* enum backend_state, for transitions */
    _Atomic uint64_t    ntransitions[BACKEND_NSTATES];  /* changes, by new state */
    _Atomic uint64_t    down_since_ms;  /* monotonic; 0 while not down */
    _Atomic uint64_t    downtime_ms;    /* finished down periods */
    struct histo        connect_time;   /* connect to a broker, per success */
    struct histo        check_time;     /* health check, connect to verdict */
    pthread_mutex_t     check_lock;     /* guards <check>, <down_reason>
                                           and <admin_by> */
    struct backend_check check;         /* last verdict */
    char                down_reason[BACKEND_REASON_MAX];  /* why it went
                                           down: "check failed: refused" */
    char                admin_by[BACKEND_WHO_MAX];  /* who drained or
                                           disabled it ("127.0.0.1") */
    int                 health;         /* checker only: 0..rise+fall-1 */
};

/* A new backend from <cb>, up, with one reference owned by the caller. */
struct backend *backend_create(const struct config_backend *cb,
                               const char *pool_name);

/*
 * As backend_create, but down until its first passing check (a backend
 * added at runtime is checked before it takes sessions); up at once when
 * <checked> is false (health_check = none).
 */
struct backend *backend_create_unchecked(const struct config_backend *cb,
                                         const char *pool_name,
                                         bool checked);

/* The address <b> connects to now (any thread; see struct backend_addr). */
static inline const struct config_addr *
backend_addr(const struct backend *b)
{
    struct backend *mb = (struct backend *)b;   /* atomics want non-const */

    return &atomic_load_explicit(&mb->addr, memory_order_acquire)->a;
}

/*
 * The address text TLS takes the server name from: "NAME:PORT" when the
 * address was resolved from NAME, else its own text. Into <out> (<len>).
 */
void backend_tls_addr(const struct backend *b, char *out, size_t len);

/* The address being checked before it replaces the current one, or NULL. */
static inline const struct config_addr *
backend_next_addr(const struct backend *b)
{
    struct backend *mb = (struct backend *)b;
    struct backend_addr *n = atomic_load_explicit(&mb->next,
                                                  memory_order_acquire);

    return n != NULL ? &n->a : NULL;
}

/*
 * Main thread: move <b> to <a>, resolved from <b>->host (or an IP address
 * if that is ""). With <checked>, <a> is checked first (the
 * checker probes it; backend_next_verdict() commits it after <rise>
 * passes) while sessions still go to the current address; else at once.
 * Asking for the current address cancels a pending change. MQ_ERR on no
 * memory.
 */
int backend_readdress(struct backend *b, const struct config_addr *a,
                      bool checked);

/*
 * Checker: a verdict on the pending address. After <rise> passes in a
 * row it becomes the address (logged); a failure is recorded as the last
 * check's reason without moving the backend's health. Returns true when
 * the address changed.
 */
bool backend_next_verdict(struct backend *b, bool pass, const char *reason,
                          uint32_t latency_ms, unsigned rise);
void backend_acquire(struct backend *b);
/* Drop a reference; frees <b> with the last one. */
void backend_release(struct backend *b);

enum backend_state backend_state(const struct backend *b);
const char *backend_state_name(enum backend_state st);
/* Up, not drained/disabled, weight > 0 and under <max_conns>. */
bool backend_is_eligible(const struct backend *b);
/* Weight after the slow-start ramp, at monotonic time <now_ms>. */
unsigned backend_eff_weight(const struct backend *b, uint64_t now_ms,
                            uint64_t slow_start_ms);

/* Seconds of downtime so far, the current down period included. */
uint64_t backend_downtime_ms(const struct backend *b, uint64_t now_ms);

/* Session accounting, called by the worker that owns the session. */
void backend_session_start(struct backend *b);
void backend_session_end(struct backend *b);

/* Passive health. Returns true when this failure took <b> down. */
bool backend_connect_fail(struct backend *b, unsigned max_fails,
                          const char *reason);
void backend_connect_ok(struct backend *b);

/*
 * Record a check verdict (result, <reason>, latency, counters) without
 * moving the rise/fall counter: a verdict that must not count (NATS lame
 * duck mode refuses the checker while it still serves its clients).
 */
void backend_check_record(struct backend *b, bool pass, const char *reason,
                          uint32_t latency_ms);

/*
 * Active health: record a check verdict and move the rise/fall counter.
 * Returns true when the up/down state changed (and logs it).
 */
bool backend_check_done(struct backend *b, bool pass, const char *reason,
                        uint32_t latency_ms, unsigned rise, unsigned fall);

/*
 * Admin actions. backend_set_admin_by: <who> names the admin client (its
 * address) for the reason and the log line; NULL when unknown.
 */
void backend_set_admin(struct backend *b, enum backend_admin a);
void backend_set_admin_by(struct backend *b, enum backend_admin a,
                          const char *who);
void backend_set_weight(struct backend *b, unsigned weight);
void backend_set_proto_drain(struct backend *b, bool drain);

/*
 * A change a balancer's table depends on (state, weight, address, group):
 * bumps <b>'s version and the count of all such changes. A change of a
 * pool's members (pool.c) bumps that count alone. While the count stands
 * still no table needs a look (pool_rebuild_changed), whatever the number
 * of backends.
 */
void backend_bump(struct backend *b);
void backend_bump_members(void);
uint64_t backend_changes(void);

/* Copy the last check under its lock. */
void backend_get_check(struct backend *b, struct backend_check *out);

/* The health verdict alone: "up" or "down" (admin state aside). */
bool backend_is_up(const struct backend *b);

/* The admin side: "ready", "drain" (by admin or the broker) or "disabled". */
const char *backend_admin_name(const struct backend *b);

/*
 * Why <b> is not up and ready, in words, into <out> (<size> bytes): the
 * health part ("check failed: refused", "3 connect failures in a row:
 * refused") and the admin part ("drained by admin (127.0.0.1)", "lame
 * duck mode"), joined by "; ". Empty when it is up and ready.
 */
void backend_reason(struct backend *b, char *out, size_t size);

/*
 * Pure rise/fall step (haproxy's health counter): <health> in
 * 0..rise+fall-1; up while >= rise. Returns the new value.
 */
int backend_health_step(int health, bool pass, unsigned rise, unsigned fall);

#endif /* MQLB_BACKEND_H */
