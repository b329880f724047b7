/*
 * admission.c: the max_connections and max_conns_per_source slots a
 * session holds, taken and returned in one place.
 */
#include <stddef.h>

#include "mqlb/admission.h"
#include "mqlb/common.h"
#include "mqlb/log.h"
#include "mqlb/srclimit.h"

void
admission_init(struct admission *a, unsigned max)
{
    atomic_init(&a->nlive, 0);
    atomic_init(&a->peak, 0);
    atomic_init(&a->nfull, 0);
    atomic_init(&a->full_said_ms, 0);
    a->max = max;
}

/* peak = max(peak, n); the common case is one relaxed load. */
static void
admission_raise_peak(struct admission *a, unsigned n)
{
    unsigned p = atomic_load_explicit(&a->peak, memory_order_relaxed);

    while (n > p &&
           !atomic_compare_exchange_weak_explicit(&a->peak, &p, n,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

/*
 * The process is full: count it, and tell the operator, once per
 * ADMISSION_FULL_LOG_MS (a busy proxy at its limit refuses a take on
 * every session that ends), why new clients wait.
 */
static void
admission_full(struct admission *a)
{
    uint64_t n = atomic_fetch_add_explicit(&a->nfull, 1,
                                           memory_order_relaxed) + 1;
    uint64_t now = mq_now_ms();
    uint64_t said = atomic_load_explicit(&a->full_said_ms,
                                         memory_order_relaxed);

    if ((said != 0 && now - said < ADMISSION_FULL_LOG_MS) ||
        !atomic_compare_exchange_strong_explicit(&a->full_said_ms, &said,
                                                 now, memory_order_relaxed,
                                                 memory_order_relaxed)) {
        return;
    }
    log_warn("max_connections (%u) reached: new clients wait in the "
             "kernel's backlog until a session ends (%llu times since "
             "the start)", a->max, (unsigned long long)n);
}

int
admission_take(struct admission *a, struct admission_ticket *t)
{
    unsigned n = atomic_fetch_add_explicit(&a->nlive, 1,
                                           memory_order_relaxed);

    t->adm = NULL;
    t->sources = NULL;
    if (n >= a->max) {
        atomic_fetch_sub_explicit(&a->nlive, 1, memory_order_relaxed);
        admission_full(a);
        return MQ_ERR;
    }
    t->adm = a;
    admission_raise_peak(a, n + 1);
    return MQ_OK;
}

int
admission_take_source(struct admission_ticket *t, struct srclimit *sources,
                      unsigned max)
{
    if (srclimit_acquire(sources, &t->peer.sa, max)
        != MQ_OK) {
        return MQ_ERR;
    }
    t->sources = sources;
    return MQ_OK;
}

void
admission_return(struct admission_ticket *t)
{
    if (t->sources != NULL) {
        srclimit_release(t->sources, &t->peer.sa);
        t->sources = NULL;
    }
    if (t->adm != NULL) {
        atomic_fetch_sub_explicit(&t->adm->nlive, 1, memory_order_relaxed);
        t->adm = NULL;
    }
}

unsigned
admission_nlive(struct admission *a)
{
    return atomic_load_explicit(&a->nlive, memory_order_relaxed);
}

uint64_t
admission_nfull(struct admission *a)
{
    return atomic_load_explicit(&a->nfull, memory_order_relaxed);
}

unsigned
admission_peak_reset(struct admission *a)
{
    unsigned n = admission_nlive(a);
    unsigned p = atomic_exchange_explicit(&a->peak, n, memory_order_relaxed);

    return p > n ? p : n;
}
