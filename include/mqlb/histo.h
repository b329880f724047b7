/*
 * histo.h: a Prometheus histogram of durations that any thread may add
 * to without a lock (one atomic add per bucket hit), and its rendering.
 * The bucket bounds are fixed per kind, so two histograms of one kind
 * can be summed bucket by bucket.
 */
#ifndef MQLB_HISTO_H
#define MQLB_HISTO_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define HISTO_MAX_BUCKETS   16      /* finite bounds; +Inf is implicit */

/* Which bucket bounds a histogram uses. */
enum histo_kind {
    HISTO_FAST = 0,     /* connects and checks: 1 ms .. 10 s */
    HISTO_LONG,         /* session lifetimes: 10 ms .. 1 day */
};

struct histo {
    enum histo_kind     kind;
    _Atomic uint64_t    counts[HISTO_MAX_BUCKETS + 1];  /* per bucket, last is +Inf */
    _Atomic uint64_t    sum_us;         /* sum of observations, microseconds */
};

/* A plain copy, for snapshots: counts are per bucket, not cumulative. */
struct histo_copy {
    enum histo_kind     kind;
    uint64_t            counts[HISTO_MAX_BUCKETS + 1];
    uint64_t            sum_us;
};

void histo_init(struct histo *h, enum histo_kind kind);
void histo_observe_us(struct histo *h, uint64_t us);
void histo_copy(const struct histo *h, struct histo_copy *out);
/* An empty copy of <kind> (nothing observed). */
void histo_init_copy(struct histo_copy *c, enum histo_kind kind);
/* Add <src> into <dst> (same kind). */
void histo_merge(struct histo_copy *dst, const struct histo_copy *src);
uint64_t histo_count(const struct histo_copy *c);

/* The finite upper bounds of <kind> in microseconds; returns how many. */
size_t histo_bounds(enum histo_kind kind, const uint64_t **bounds);

/*
 * Write the _bucket, _sum and _count samples of <name> with the label
 * text <labels> (without braces, may be "") into <out> of <cap> bytes.
 * Returns the length written, or the length needed if it did not fit.
 */
size_t histo_render(const struct histo_copy *c, const char *name,
                    const char *labels, char *out, size_t cap);

#endif /* MQLB_HISTO_H */
