/*
 * reject.h: why a client was turned away, as counted per pool and shown
 * in /status ("rejected_by") and /metrics (mqlb_pool_rejected_total's
 * reason label). A leaf: names only.
 */
#ifndef MQLB_REJECT_H
#define MQLB_REJECT_H

enum reject_reason {
    REJECT_NO_BACKEND = 0,      /* no backend could take it (after retries) */
    REJECT_ALLOW,               /* outside the pool's allow list */
    REJECT_SOURCE_LIMIT,        /* its address at max_conns_per_source */
    REJECT_MAX_CONNECTIONS,     /* the process at max_connections */
    REJECT_QUEUE,               /* queue full, or waited queue_timeout */
    REJECT_SNI,                 /* no pool for its TLS server name */
    REJECT_NREASONS,
};

/* "no_backend", "allow", ...: the metric label and JSON key. */
const char *reject_reason_name(enum reject_reason r);

#endif /* MQLB_REJECT_H */
