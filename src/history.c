/*
 * history.c: a ring of counter samples and its JSON. Counters, not rates,
 * are kept: the page divides the differences by the time between samples,
 * so a missed sample never shows a false spike.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mqlb/common.h"
#include "mqlb/history.h"
#include "mqlb/stats.h"

void
history_init(struct history *h)
{
    memset(h, 0, sizeof(*h));
    pthread_mutex_init(&h->lock, NULL);
}

void
history_deinit(struct history *h)
{
    size_t i;

    for (i = 0; i < HISTORY_SAMPLES; i++) {
        mq_free(h->ring[i].points);
    }
    pthread_mutex_destroy(&h->lock);
}

static void
history_point_set(struct history_point *pt, const char *pool,
                  const char *backend, uint64_t sessions, uint64_t bytes,
                  int64_t active)
{
    mq_copy_str(pt->pool, sizeof(pt->pool), pool);
    mq_copy_str(pt->backend, sizeof(pt->backend), backend);
    pt->sessions = sessions;
    pt->bytes = bytes;
    pt->active = active;
}

int
history_add(struct history *h, const struct stats_snapshot *snap)
{
    struct history_point *pts;
    const struct stats_pool *p;
    const struct stats_backend *b;
    struct history_sample *slot;
    size_t i, j, n = 0, max = 0;
    uint64_t bytes;
    int64_t active;

    for (i = 0; i < snap->npools; i++) {
        max += 1 + snap->pools[i].nbackends;
    }
    max = MQ_MIN(max, (size_t)HISTORY_MAX_SERIES);
    pts = calloc(max > 0 ? max : 1, sizeof(*pts));
    if (pts == NULL) {
        return MQ_ERR;
    }
    for (i = 0; i < snap->npools && n < max; i++) {
        p = &snap->pools[i];
        bytes = 0;
        active = 0;
        for (j = 0; j < p->nbackends; j++) {
            bytes += p->backends[j].bytes_in + p->backends[j].bytes_out;
            active += p->backends[j].active;
        }
        history_point_set(&pts[n++], p->name, "", p->sessions, bytes,
                          active);
        for (j = 0; j < p->nbackends && n < max; j++) {
            b = &p->backends[j];
            history_point_set(&pts[n++], p->name, b->name, b->total,
                              b->bytes_in + b->bytes_out, b->active);
        }
    }
    pthread_mutex_lock(&h->lock);
    slot = &h->ring[h->head];
    free(slot->points);
    slot->points = pts;
    slot->npoints = n;
    slot->t_ms = snap->now_ms;
    h->head = (h->head + 1) % HISTORY_SAMPLES;
    if (h->count < HISTORY_SAMPLES) {
        h->count++;
    }
    pthread_mutex_unlock(&h->lock);
    return MQ_OK;
}

static const struct history_point *
history_find(const struct history_sample *s, const char *pool,
             const char *backend)
{
    size_t i;

    for (i = 0; i < s->npoints; i++) {
        if (strcmp(s->points[i].pool, pool) == 0 &&
            strcmp(s->points[i].backend, backend) == 0) {
            return &s->points[i];
        }
    }
    return NULL;
}

/* {"name", "sessions":[...], "bytes":[...], "active":[...]} over time. */
static json_t *
history_series(const struct history *h, const char *pool,
               const char *backend)
{
    const struct history_sample *s;
    const struct history_point *pt;
    json_t *o, *ses, *by, *ac;
    size_t k;

    o = json_object();
    ses = json_array();
    by = json_array();
    ac = json_array();
    if (o == NULL || ses == NULL || by == NULL || ac == NULL) {
        json_decref(o);
        json_decref(ses);
        json_decref(by);
        json_decref(ac);
        return NULL;
    }
    for (k = 0; k < h->count; k++) {
        s = &h->ring[(h->head + HISTORY_SAMPLES - h->count + k)
                     % HISTORY_SAMPLES];
        pt = history_find(s, pool, backend);
        json_array_append_new(ses, pt != NULL
                              ? json_integer((json_int_t)pt->sessions)
                              : json_null());
        json_array_append_new(by, pt != NULL
                              ? json_integer((json_int_t)pt->bytes)
                              : json_null());
        json_array_append_new(ac, pt != NULL
                              ? json_integer((json_int_t)pt->active)
                              : json_null());
    }
    json_object_set_new(o, "name", json_string(backend[0] != '\0'
                                               ? backend : pool));
    json_object_set_new(o, "sessions", ses);
    json_object_set_new(o, "bytes", by);
    json_object_set_new(o, "active", ac);
    return o;
}

char *
history_render_json(struct history *h)
{
    const struct history_sample *newest;
    const struct history_point *pt;
    json_t *root, *t, *pools, *pool = NULL, *bks = NULL, *ser;
    char *text = NULL;
    size_t k;

    root = json_object();
    t = json_array();
    pools = json_array();
    if (root == NULL || t == NULL || pools == NULL) {
        json_decref(root);
        json_decref(t);
        json_decref(pools);
        return NULL;
    }
    pthread_mutex_lock(&h->lock);
    for (k = 0; k < h->count; k++) {
        json_array_append_new(t, json_integer((json_int_t)h->ring[
            (h->head + HISTORY_SAMPLES - h->count + k) % HISTORY_SAMPLES]
            .t_ms));
    }
    if (h->count > 0) {
        newest = &h->ring[(h->head + HISTORY_SAMPLES - 1) % HISTORY_SAMPLES];
        for (k = 0; k < newest->npoints; k++) {
            pt = &newest->points[k];
            ser = history_series(h, pt->pool, pt->backend);
            if (ser == NULL) {
                goto out;
            }
            if (pt->backend[0] == '\0') {
                pool = ser;
                bks = json_array();
                json_object_set_new(pool, "backends", bks);
                json_array_append_new(pools, pool);
            } else if (bks != NULL) {
                json_array_append_new(bks, ser);
            } else {
                json_decref(ser);
            }
        }
    }
    json_object_set_new(root, "interval_s",
                        json_real(HISTORY_INTERVAL_S));
    json_object_set(root, "t", t);
    json_object_set(root, "pools", pools);
    text = json_dumps(root, JSON_COMPACT);
out:
    pthread_mutex_unlock(&h->lock);
    json_decref(t);
    json_decref(pools);
    json_decref(root);
    return text;
}
