/*
 * histo.c: lock-free duration histograms with fixed buckets.
 *
 * Bounds follow the usual Prometheus ladders so that dashboards written
 * for HAProxy's or NGINX's exporters line up: connects and checks are
 * milliseconds to seconds, sessions of brokers live from milliseconds to
 * days.
 */
#include <string.h>

#include "mqlb/common.h"
#include "mqlb/histo.h"
#include "mqlb/numtext.h"

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

/* Where histo_render writes: what fits in <cap>, counting all of it. */
struct histo_out {
    char               *out;            /* the caller's buffer, or NULL */
    size_t              cap;            /* its size, the NUL included */
    size_t              len;            /* length of the whole text */
};

/* Append <n> bytes of <s>, or what still fits of them with the NUL. */
static inline void
histo_put(struct histo_out *o, const char *s, size_t n)
{
    if (o->len + n < o->cap) {
        memcpy(o->out + o->len, s, n);
    } else if (o->len + 1 < o->cap) {
        memcpy(o->out + o->len, s, o->cap - 1 - o->len);
    }
    o->len += n;
}

/*
 * Written with memcpy and numtext rather than snprintf: a /metrics page
 * at a thousand backends holds 30,000 bucket lines, and formatting them
 * was nearly all of its CPU.
 */
size_t
histo_render(const struct histo_copy *c, const char *name,
             const char *labels, char *out, size_t cap)
{
    struct histo_out o = { out, cap, 0 };
    const uint64_t *b;
    size_t name_len = strlen(name), labels_len = strlen(labels);
    size_t n, i;
    char num[NUMTEXT_MAX];
    uint64_t cum = 0;

    n = histo_bounds(c->kind, &b);
    for (i = 0; i <= n; i++) {
        histo_put(&o, name, name_len);
        histo_put(&o, "_bucket{", 8);
        if (labels_len > 0) {
            histo_put(&o, labels, labels_len);
            histo_put(&o, ",", 1);
        }
        if (i < n) {
            cum += c->counts[i];
            histo_put(&o, "le=\"", 4);
            histo_put(&o, num, numtext_micro(num, b[i]));
            histo_put(&o, "\"} ", 3);
        } else {
            /* the +Inf bucket, kept in the last slot */
            cum += c->counts[HISTO_MAX_BUCKETS];
            histo_put(&o, "le=\"+Inf\"} ", 11);
        }
        histo_put(&o, num, numtext_u64(num, cum));
        histo_put(&o, "\n", 1);
    }
    histo_put(&o, name, name_len);
    histo_put(&o, "_sum", 4);
    if (labels_len > 0) {
        histo_put(&o, "{", 1);
        histo_put(&o, labels, labels_len);
        histo_put(&o, "}", 1);
    }
    histo_put(&o, " ", 1);
    histo_put(&o, num, numtext_micro(num, c->sum_us));
    histo_put(&o, "\n", 1);
    histo_put(&o, name, name_len);
    histo_put(&o, "_count", 6);
    if (labels_len > 0) {
        histo_put(&o, "{", 1);
        histo_put(&o, labels, labels_len);
        histo_put(&o, "}", 1);
    }
    histo_put(&o, " ", 1);
    histo_put(&o, num, numtext_u64(num, cum));
    histo_put(&o, "\n", 1);
    if (cap > 0) {
        out[o.len < cap ? o.len : cap - 1] = '\0';
    }
    return o.len;
}
