/*
 * waitq.c: the FIFO of clients waiting for a backend slot. One mutex per
 * queue; entries are owned by their sessions, so an entry is unlinked
 * either by dispatch (granted) or by its owner (gave up), under the lock.
 */
#include "mqlb/common.h"
#include "mqlb/waitq.h"

void
waitq_init(struct waitq *q)
{
    q->head = NULL;
    q->tail = NULL;
    q->n = 0;
    q->max_seen = 0;
    pthread_mutex_init(&q->lock, NULL);
}

void
waitq_deinit(struct waitq *q)
{
    pthread_mutex_destroy(&q->lock);
}

static void
waitq_unlink(struct waitq *q, struct waitq_entry *e)
{
    if (e->prev != NULL) {
        e->prev->next = e->next;
    } else {
        q->head = e->next;
    }
    if (e->next != NULL) {
        e->next->prev = e->prev;
    } else {
        q->tail = e->prev;
    }
    e->prev = NULL;
    e->next = NULL;
    e->queued = 0;
    q->n--;
}

int
waitq_push(struct waitq *q, struct waitq_entry *e, unsigned limit,
           uint64_t now_ms)
{
    pthread_mutex_lock(&q->lock);
    if (q->n >= limit) {
        pthread_mutex_unlock(&q->lock);
        return MQ_ERR;
    }
    e->granted = NULL;
    e->since_ms = now_ms;
    e->next = NULL;
    e->prev = q->tail;
    if (q->tail != NULL) {
        q->tail->next = e;
    } else {
        q->head = e;
    }
    q->tail = e;
    e->queued = 1;
    q->n++;
    if (q->n > q->max_seen) {
        q->max_seen = q->n;
    }
    pthread_mutex_unlock(&q->lock);
    return MQ_OK;
}

struct backend *
waitq_take(struct waitq *q, struct waitq_entry *e)
{
    struct backend *b;

    pthread_mutex_lock(&q->lock);
    b = e->granted;
    e->granted = NULL;
    pthread_mutex_unlock(&q->lock);
    return b;
}

struct backend *
waitq_leave(struct waitq *q, struct waitq_entry *e)
{
    struct backend *b;

    pthread_mutex_lock(&q->lock);
    if (e->queued) {
        waitq_unlink(q, e);
    }
    b = e->granted;
    e->granted = NULL;
    pthread_mutex_unlock(&q->lock);
    return b;
}

unsigned
waitq_dispatch(struct waitq *q, waitq_pick_fn pick, void *arg)
{
    struct waitq_entry *e;
    struct backend *b;
    unsigned served = 0;

    pthread_mutex_lock(&q->lock);
    while (q->head != NULL) {
        e = q->head;
        b = pick(arg, e);
        if (b == NULL) {
            break;      /* the oldest cannot be served: nobody can */
        }
        waitq_unlink(q, e);
        e->granted = b;
        /* Under the lock, so the owner cannot leave and free <e> before
         * the wake-up is posted. */
        e->wake(e->wake_ctx);
        served++;
    }
    pthread_mutex_unlock(&q->lock);
    return served;
}

void
waitq_counts(struct waitq *q, unsigned *n, unsigned *max_seen)
{
    pthread_mutex_lock(&q->lock);
    *n = q->n;
    *max_seen = q->max_seen;
    pthread_mutex_unlock(&q->lock);
}
