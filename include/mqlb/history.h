/*
 * history.h: the last minutes of every pool's and backend's counters,
 * sampled at a fixed interval, for the dashboard's charts. The admin port
 * reads it while the main loop adds to it: a mutex guards the ring.
 */
#ifndef MQLB_HISTORY_H
#define MQLB_HISTORY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "mqlb/config.h"

struct stats_snapshot;

#define HISTORY_SAMPLES     60      /* 5 minutes at 5 s */
#define HISTORY_INTERVAL_S  5.0
#define HISTORY_MAX_SERIES  2048    /* pools + backends per sample */

/* One pool (backend "") or backend at one moment. */
struct history_point {
    char                pool[CONFIG_NAME_LEN];
    char                backend[CONFIG_NAME_LEN];
    uint64_t            sessions;       /* ever, a counter */
    uint64_t            bytes;          /* in + out, a counter */
    int64_t             active;         /* now */
};

struct history_sample {
    uint64_t            t_ms;           /* wall clock */
    struct history_point *points;       /* owned */
    size_t              npoints;
};

struct history {
    pthread_mutex_t     lock;
    struct history_sample ring[HISTORY_SAMPLES];
    size_t              head;           /* next slot to write */
    size_t              count;          /* samples held */
};

void history_init(struct history *h);
void history_deinit(struct history *h);

/* Add a sample made of <snap>; the oldest goes when the ring is full. */
int history_add(struct history *h, const struct stats_snapshot *snap);

/*
 * JSON for the dashboard, oldest sample first:
 *   {"interval_s":5,"t":[ms,...],
 *    "pools":[{"name","sessions":[...],"bytes":[...],"active":[...],
 *              "backends":[{"name","sessions":[...],...}]}]}
 * Series follow the newest sample's pools and backends; a sample that
 * did not have one holds null. The caller frees it; NULL on no memory.
 */
char *history_render_json(struct history *h);

#endif /* MQLB_HISTORY_H */
