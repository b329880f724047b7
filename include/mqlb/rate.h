/*
 * rate.h: a token bucket shared by every worker without a lock, for
 * max_connect_rate: on average at most <per_s> takes a second, in bursts
 * of at most <burst>. Kept in the GCRA form (the "virtual scheduling"
 * algorithm of ATM's cell rate): one atomic theoretical arrival time.
 */
#ifndef MQLB_RATE_H
#define MQLB_RATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct rate {
    _Atomic uint64_t    tat_us;     /* when the bucket is full again */
};

/* The burst mqlb uses for <per_s>: a tenth of a second's worth, >= 1. */
unsigned rate_burst(unsigned per_s);

/*
 * Take one token at monotonic time <now_us> if there is one; false if
 * <per_s> (0 = unlimited: always true) is used up. Any thread.
 */
bool rate_take(struct rate *r, unsigned per_s, uint64_t now_us);

/* Whether rate_take() would succeed now, taking nothing. */
bool rate_has_token(const struct rate *r, unsigned per_s, uint64_t now_us);

#endif /* MQLB_RATE_H */
