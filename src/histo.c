/*
 * histo.c: lock-free duration histograms with fixed buckets.
 *
 * Bounds follow the usual Prometheus ladders so that dashboards written
 * for HAProxy's or NGINX's exporters line up: connects and checks are
 * milliseconds to seconds, sessions of brokers live from milliseconds to
 * days.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mqlb/common.h"
#include "mqlb/histo.h"

static const uint64_t histo_fast_us[] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000,
};

static const uint64_t histo_long_us[] = {
    10000, 100000, 1000000, 10000000, 60000000, 300000000, 1800000000,
    3600000000ULL, 21600000000ULL, 86400000000ULL,
};

_Static_assert(MQ_NELEMS(histo_fast_us) <= HISTO_MAX_BUCKETS,
               "too many fast buckets");
_Static_assert(MQ_NELEMS(histo_long_us) <= HISTO_MAX_BUCKETS,
               "too many long buckets");

size_t
histo_bounds(enum histo_kind kind, const uint64_t **bounds)
{
    if (kind == HISTO_LONG) {
        *bounds = histo_long_us;
        return MQ_NELEMS(histo_long_us);
    }
    *bounds = histo_fast_us;
    return MQ_NELEMS(histo_fast_us);
}

void
histo_init(struct histo *h, enum histo_kind kind)
{
    size_t i;

    h->kind = kind;
    for (i = 0; i <= HISTO_MAX_BUCKETS; i++) {
        atomic_init(&h->counts[i], 0);
    }
    atomic_init(&h->sum_us, 0);
}

void
histo_observe_us(struct histo *h, uint64_t us)
{
    const uint64_t *b;
    size_t n, i;

    n = histo_bounds(h->kind, &b);
    for (i = 0; i < n && us > b[i]; i++) {
        continue;
    }
    /* i == n is the +Inf bucket, kept in the last slot. */
    if (i == n) {
        i = HISTO_MAX_BUCKETS;
    }
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

void
histo_copy(const struct histo *h, struct histo_copy *out)
{
    size_t i;

    out->kind = h->kind;
    for (i = 0; i <= HISTO_MAX_BUCKETS; i++) {
        out->counts[i] = atomic_load_explicit(&h->counts[i],
                                              memory_order_relaxed);
    }
    out->sum_us = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
}

void
histo_init_copy(struct histo_copy *c, enum histo_kind kind)
{
    memset(c, 0, sizeof(*c));
    c->kind = kind;
}

void
histo_merge(struct histo_copy *dst, const struct histo_copy *src)
{
    size_t i;

    for (i = 0; i <= HISTO_MAX_BUCKETS; i++) {
        dst->counts[i] += src->counts[i];
    }
    dst->sum_us += src->sum_us;
}

uint64_t
histo_count(const struct histo_copy *c)
{
    uint64_t n = 0;
    size_t i;

    for (i = 0; i <= HISTO_MAX_BUCKETS; i++) {
        n += c->counts[i];
    }
    return n;
}

/* Microseconds as seconds text, shortest exact form ("0.0025", "60"). */
static void
histo_seconds(uint64_t us, char *out, size_t cap)
{
    char frac[8];
    int n;

    if (us % 1000000 == 0) {
        snprintf(out, cap, "%" PRIu64, us / 1000000);
        return;
    }
    n = snprintf(frac, sizeof(frac), "%06u", (unsigned)(us % 1000000));
    while (n > 0 && frac[n - 1] == '0') {
        frac[--n] = '\0';
    }
    snprintf(out, cap, "%" PRIu64 ".%s", us / 1000000, frac);
}

size_t
histo_render(const struct histo_copy *c, const char *name,
             const char *labels, char *out, size_t cap)
{
    const uint64_t *b;
    const char *sep = labels[0] != '\0' ? "," : "";
    char le[32], sum[32];
    uint64_t cum = 0;
    size_t n, i, len = 0;
    int w;

#define HISTO_PUT(...)                                                  \
    do {                                                                \
        w = snprintf(len < cap ? out + len : NULL,                      \
                     len < cap ? cap - len : 0, __VA_ARGS__);           \
        len += (size_t)(w > 0 ? w : 0);                                 \
    } while (0)

    n = histo_bounds(c->kind, &b);
    for (i = 0; i < n; i++) {
        cum += c->counts[i];
        histo_seconds(b[i], le, sizeof(le));
        HISTO_PUT("%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, labels,
                  sep, le, cum);
    }
    cum += c->counts[HISTO_MAX_BUCKETS];
    histo_seconds(c->sum_us, sum, sizeof(sum));
    HISTO_PUT("%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep,
              cum);
    if (labels[0] != '\0') {
        HISTO_PUT("%s_sum{%s} %s\n%s_count{%s} %" PRIu64 "\n", name, labels,
                  sum, name, labels, cum);
    } else {
        HISTO_PUT("%s_sum %s\n%s_count %" PRIu64 "\n", name, sum, name, cum);
    }
#undef HISTO_PUT
    return len;
}
