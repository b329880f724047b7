/*
 * rate.c: the connect-rate token bucket. Each take moves the theoretical
 * arrival time <tat> one emission interval T = 1 s / per_s on from
 * max(tat, now); a take is refused when that would put <tat> more than
 * the burst allowance ahead of now. In any window of w seconds at most
 * burst + w x per_s takes succeed.
 */
#include "mqlb/rate.h"

#define RATE_US_PER_S   1000000ULL

unsigned
rate_burst(unsigned per_s)
{
    return per_s >= 20 ? per_s / 10 : 1 + per_s / 10;
}

/* The new <tat> after one take at <now_us>, or 0 if none is left. */
static uint64_t
rate_next(uint64_t tat, unsigned per_s, uint64_t now_us)
{
    uint64_t interval = RATE_US_PER_S / per_s;
    uint64_t allowance = interval * rate_burst(per_s);
    uint64_t start = tat > now_us ? tat : now_us;

    if (start + interval > now_us + allowance) {
        return 0;
    }
    return start + interval;
}

bool
rate_take(struct rate *r, unsigned per_s, uint64_t now_us)
{
    uint64_t tat, next;

    if (per_s == 0) {
        return true;
    }
    tat = atomic_load_explicit(&r->tat_us, memory_order_relaxed);
    do {
        next = rate_next(tat, per_s, now_us);
        if (next == 0) {
            return false;
        }
    } while (!atomic_compare_exchange_weak_explicit(&r->tat_us, &tat, next,
                                                    memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

bool
rate_has_token(const struct rate *r, unsigned per_s, uint64_t now_us)
{
    if (per_s == 0) {
        return true;
    }
    return rate_next(atomic_load_explicit(&r->tat_us, memory_order_relaxed),
                     per_s, now_us) != 0;
}
