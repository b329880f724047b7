/*
 * stats.h: a point-in-time copy of every pool and backend counter, taken
 * by core.c and rendered by the admin port as JSON or Prometheus text.
 */
#ifndef MQLB_STATS_H
#define MQLB_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqlb/backend.h"
#include "mqlb/config.h"
#include "mqlb/histo.h"
#include "mqlb/procstat.h"
#include "mqlb/reject.h"

struct stats_backend {
    char                name[CONFIG_NAME_LEN];
    char                address[CONFIG_ADDR_TEXT_LEN];
    enum backend_state  state;
    unsigned            down:1;         /* health verdict: down */
    char                admin[16];      /* "ready" ("" too), "drain",
                                           "disabled" */
    char                reason[BACKEND_REASON_MAX];  /* why not up and
                                           ready; "" when it is */
    unsigned            weight;
    int64_t             active;
    uint64_t            total;
    uint64_t            failed;         /* connect failures */
    uint64_t            bytes_in;       /* client -> broker */
    uint64_t            bytes_out;      /* broker -> client */
    uint64_t            checks_pass;
    uint64_t            checks_fail;
    struct backend_check check;         /* last check */
    uint64_t            since_ms;       /* wall clock of last state change */
    uint64_t            transitions[BACKEND_NSTATES];   /* by new state */
    uint64_t            downtime_ms;    /* down so far, current period too */
    struct histo_copy   connect_time;
    struct histo_copy   check_time;
    const char         *source;         /* "config", "dns", "api"; static */
    char                host[256];      /* DNS name re-resolved, or "" */
    char                next_address[80];   /* on trial, or "" */
    bool                leaving;        /* removed: drains, then goes */
};

/* A pool's DNS resolution, for /status (discovery.c keeps it). */
struct stats_dns {
    bool                active;         /* the pool resolves names */
    uint64_t            last_ok_ms;     /* wall clock of the last answer */
    uint64_t            last_error_ms;  /* wall clock of the last failure */
    char                last_error[200];    /* "" if the last round was ok */
    uint64_t            rounds;
    uint64_t            failed_rounds;
};

struct stats_pool {
    char                name[CONFIG_NAME_LEN];
    char              (*listen)[CONFIG_ADDR_TEXT_LEN]; /* owned array of
                                           listen addresses */
    size_t              nlisten;
    const char         *balance;        /* static string */
    const char         *check;          /* static string */
    uint64_t            rejected;       /* clients turned away, all reasons */
    uint64_t            rejected_by[REJECT_NREASONS];   /* by reason */
    uint64_t            queued;         /* clients waiting for a slot now */
    uint64_t            queued_max;     /* most that ever waited at once */
    uint64_t            rebalanced;     /* sessions closed to rebalance */
    uint64_t            sessions;       /* sessions accepted, ever */
    uint64_t            retries;        /* another backend tried for one */
    struct histo_copy   duration;       /* finished sessions' lifetimes */
    bool                tls;            /* terminates TLS or routes by SNI */
    uint64_t            tls_results[TLS_NRESULTS]; /* handshakes by result */
    struct stats_backend *backends;     /* owned array */
    size_t              nbackends;
    struct stats_dns    dns;            /* DNS resolution of the pool */
};

/* Facts of the process and its reloads, for /metrics. */
struct stats_process {
    struct procstat     proc;           /* process_* */
    bool                proc_ok;        /* <proc> could be read */
    uint64_t            reloads_ok;
    uint64_t            reloads_failed;
    uint64_t            last_reload_ok_ms;  /* wall clock; start counts */
    bool                last_reload_ok; /* the latest reload succeeded */
    int64_t             pid;            /* 0: unknown */
    uint64_t            log_dropped;    /* log lines the full ring dropped */
    uint64_t            max_conns;      /* max_connections in force */
    uint64_t            max_conns_reached;  /* accepts paused at it */
};

struct stats_snapshot {
    struct stats_process process;
    uint64_t            uptime_s;
    uint64_t            now_ms;         /* wall clock when taken */
    struct stats_pool  *pools;          /* owned array */
    size_t              npools;
};

void stats_snapshot_free(struct stats_snapshot *snap);

/* Render <snap>; the caller frees the returned string. NULL on no memory. */
char *stats_render_json(const struct stats_snapshot *snap);
/* One pool, or one backend, as they appear in /status (GET /pools/...). */
char *stats_render_pool_json(const struct stats_pool *p);
char *stats_render_backend_json(const struct stats_backend *b);
char *stats_render_metrics(const struct stats_snapshot *snap);
/* 1 when every pool has at least one backend up, else 0. */
int stats_all_pools_up(const struct stats_snapshot *snap);

#endif /* MQLB_STATS_H */
