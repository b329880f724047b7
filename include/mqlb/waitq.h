/*
 * waitq.h: a pool's queue of clients waiting for a backend slot
 * (max_queue, queue_timeout), shared by every worker. First in, first
 * served: whoever frees a slot, or a timer, calls waitq_dispatch(), which
 * hands backends to the oldest entries and wakes their owners. An entry
 * belongs to its session (allocated while it waits); the queue only links
 * it.
 */
#ifndef MQLB_WAITQ_H
#define MQLB_WAITQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct backend;
struct waitq_entry;

/*
 * Reserve a backend for <e> (with its session count already raised), or
 * NULL if none can take it now. Called with the queue locked.
 */
typedef struct backend *(*waitq_pick_fn)(void *arg, struct waitq_entry *e);

/* One waiting client, owned by its session. */
struct waitq_entry {
    struct waitq_entry *prev, *next;    /* queue order, oldest first */
    struct backend     *granted;        /* handed a backend, not yet taken
                                           by the owner; under the lock */
    void              (*wake)(void *ctx);   /* tell the owner (any thread) */
    void               *wake_ctx;
    uint64_t            since_ms;       /* when it joined */
    unsigned            queued:1;       /* linked in the queue */
};

struct waitq {
    pthread_mutex_t     lock;
    struct waitq_entry *head, *tail;
    _Atomic unsigned    n;              /* entries linked now (changed
                                           under <lock>, read anywhere) */
    unsigned            max_seen;       /* the most ever linked at once */
};

void waitq_init(struct waitq *q);
void waitq_deinit(struct waitq *q);

/*
 * Append <e> (its wake hook set) unless <limit> entries are there already:
 * MQ_ERR then. <now_ms> is kept in e->since_ms.
 */
int waitq_push(struct waitq *q, struct waitq_entry *e, unsigned limit,
               uint64_t now_ms);

/*
 * The owner takes what <e> was granted: the reserved backend (then <e> is
 * out of the queue), or NULL while it still waits.
 */
struct backend *waitq_take(struct waitq *q, struct waitq_entry *e);

/*
 * <e> gives up (timeout, client gone, session closing). Returns a backend
 * that was granted to it and not taken, which the caller must give back
 * (and then dispatch again); NULL otherwise.
 */
struct backend *waitq_leave(struct waitq *q, struct waitq_entry *e);

/*
 * Serve the oldest entries while <pick> finds them a backend: each is
 * unlinked, granted, and woken. Returns how many were served.
 */
unsigned waitq_dispatch(struct waitq *q, waitq_pick_fn pick, void *arg);

/* Entries now, without the lock: a hint (any thread). */
static inline unsigned
waitq_len(struct waitq *q)
{
    return atomic_load_explicit(&q->n, memory_order_relaxed);
}

/* Entries now and the most ever (any thread). */
void waitq_counts(struct waitq *q, unsigned *n, unsigned *max_seen);

#endif /* MQLB_WAITQ_H */
