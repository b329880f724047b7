/*
 * stats.c: render a stats snapshot for the admin port, as the SPEC's
 * /status JSON (jansson) and as Prometheus text exposition format 0.0.4.
 * Everything here is pure: a snapshot in, a newly allocated string out.
 *
 * Time fields in the JSON ("now", "since", "check.at") are ISO-8601 UTC
 * strings with milliseconds ("2024-05-01T12:00:00.123Z"), or null when the
 * moment is unknown (a backend never checked, a zero timestamp).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "mqlb/common.h"
#include "mqlb/numtext.h"
#include "mqlb/stats.h"

#define STATS_TIME_LEN      32      /* "2024-05-01T12:00:00.123Z" + NUL */

/* A growing text buffer for the metrics page. */
struct stats_buf {
    char               *data;           /* NUL-terminated text, owned */
    size_t              len;            /* bytes used, without the NUL */
    size_t              cap;            /* bytes allocated */
    bool                oom;            /* an append ran out of memory */
};

/* What a metric family is drawn over. */
enum stats_scope {
    STATS_SCOPE_POOL = 0,               /* one sample set per pool */
    STATS_SCOPE_BACKEND,                /* one sample set per backend */
};

/* The metric name and the label text of one pool or backend. */
struct stats_series {
    const char         *name;           /* metric name, as exposed */
    size_t              name_len;
    const char         *labels;         /* `pool="..."[,backend="..."]`,
                                           escaped, no braces, NUL-ended */
    size_t              labels_len;
};

/*
 * The label text of every pool and backend, escaped once per render and
 * reused by each of their samples: item k is pool i, then its backends,
 * then pool i + 1.
 */
struct stats_labels {
    struct stats_buf    text;           /* the items, each NUL-ended */
    size_t             *off;            /* start of item k in <text> */
    size_t              n;              /* items */
};

/* Writes the samples of one family for one pool or backend. */
typedef void (*stats_emit_t)(struct stats_buf *b, const struct stats_series *s,
                             const struct stats_pool *p,
                             const struct stats_backend *be);

/* One Prometheus metric family: its HELP/TYPE header and its samples. */
struct stats_family {
    const char         *name;           /* metric name, as exposed */
    const char         *type;           /* "counter" or "gauge" */
    const char         *help;           /* HELP text, no escapes needed */
    enum stats_scope    scope;          /* pools or backends */
    stats_emit_t        emit;           /* writes the samples; NULL: the
                                           one uint64_t at <field> */
    size_t              field;          /* offset in stats_pool or
                                           stats_backend (by <scope>) */
};

#define STATS_POOL_FIELD(f)     NULL, offsetof(struct stats_pool, f)
#define STATS_BACKEND_FIELD(f)  NULL, offsetof(struct stats_backend, f)

static const char *
stats_check_result_name(enum backend_check_result r)
{
    switch (r) {
    case BACKEND_CHECK_PASS:
        return "pass";
    case BACKEND_CHECK_FAIL:
        return "fail";
    case BACKEND_CHECK_NONE:
        break;
    }
    return "none";
}

void
stats_snapshot_free(struct stats_snapshot *snap)
{
    size_t i;

    if (snap == NULL) {
        return;
    }
    for (i = 0; i < snap->npools; i++) {
        mq_free(snap->pools[i].listen);
        mq_free(snap->pools[i].backends);
    }
    mq_free(snap->pools);
    free(snap);
}

/* ---- JSON ---------------------------------------------------------- */

/*
 * Format wall-clock <ms> into <out> (STATS_TIME_LEN) as ISO-8601 UTC with
 * milliseconds. Returns false when <ms> is 0 (unknown) or out of range.
 */
static bool
stats_format_time(uint64_t ms, char *out)
{
    struct tm tm;
    time_t t;
    size_t n;

    if (ms == 0) {
        return false;
    }
    t = (time_t)(ms / 1000);
    if (gmtime_r(&t, &tm) == NULL) {
        return false;
    }
    n = strftime(out, STATS_TIME_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0 || n + 6 > STATS_TIME_LEN) {
        return false;
    }
    snprintf(out + n, STATS_TIME_LEN - n, ".%03uZ", (unsigned)(ms % 1000));
    return true;
}

/* A JSON time string for <ms>, or null when it is unknown. */
static json_t *
stats_json_time(uint64_t ms)
{
    char text[STATS_TIME_LEN];

    if (!stats_format_time(ms, text)) {
        return json_null();
    }
    return json_string(text);
}

/*
 * A JSON string for <s>. Check reasons may quote raw broker bytes that
 * are not UTF-8, which jansson refuses: such bytes become '?'.
 */
static json_t *
stats_json_str(const char *s)
{
    json_t *j;
    char *copy;
    size_t i;

    j = json_string(s);
    if (j != NULL) {
        return j;
    }
    copy = strdup(s);
    if (copy == NULL) {
        return NULL;
    }
    for (i = 0; copy[i] != '\0'; i++) {
        if ((unsigned char)copy[i] >= 0x80) {
            copy[i] = '?';
        }
    }
    j = json_string(copy);
    free(copy);
    return j;
}

/* jansson integers are signed: clamp counters that would not fit. */
static json_t *
stats_json_u64(uint64_t v)
{
    if (v > (uint64_t)INT64_MAX) {
        v = (uint64_t)INT64_MAX;
    }
    return json_integer((json_int_t)v);
}

/*
 * Set <key> of <obj> to <val>, taking the reference; false on failure,
 * and <val> is dropped then too (json_object_set_new does so). Callers
 * write `ok = stats_json_set(...) && ok;` so that every value is consumed.
 */
static bool
stats_json_set(json_t *obj, const char *key, json_t *val)
{
    if (val == NULL) {
        return false;
    }
    return json_object_set_new(obj, key, val) == 0;
}

static json_t *
stats_json_check(const struct backend_check *c)
{
    json_t *o;
    bool ok;

    o = json_object();
    if (o == NULL) {
        return NULL;
    }
    ok = stats_json_set(o, "result",
                        json_string(stats_check_result_name(c->result)));
    ok = stats_json_set(o, "reason", stats_json_str(c->reason)) && ok;
    ok = stats_json_set(o, "latency_ms", json_integer(c->latency_ms)) && ok;
    ok = stats_json_set(o, "at", stats_json_time(c->at_ms)) && ok;
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *
stats_json_backend(const struct stats_backend *be)
{
    json_t *o;
    bool ok;

    o = json_object();
    if (o == NULL) {
        return NULL;
    }
    ok = stats_json_set(o, "name", stats_json_str(be->name));
    ok = stats_json_set(o, "address", stats_json_str(be->address)) && ok;
    ok = stats_json_set(o, "state",
                        json_string(backend_state_name(be->state))) && ok;
    ok = stats_json_set(o, "health",
                        json_string(be->down ? "down" : "up")) && ok;
    ok = stats_json_set(o, "admin", stats_json_str(be->admin[0] != '\0'
                                                   ? be->admin : "ready"))
         && ok;
    ok = stats_json_set(o, "reason", stats_json_str(be->reason)) && ok;
    ok = stats_json_set(o, "weight", json_integer(be->weight)) && ok;
    ok = stats_json_set(o, "active", json_integer(be->active)) && ok;
    ok = stats_json_set(o, "total", stats_json_u64(be->total)) && ok;
    ok = stats_json_set(o, "failed", stats_json_u64(be->failed)) && ok;
    ok = stats_json_set(o, "bytes_in", stats_json_u64(be->bytes_in)) && ok;
    ok = stats_json_set(o, "bytes_out", stats_json_u64(be->bytes_out)) && ok;
    ok = stats_json_set(o, "checks_pass",
                        stats_json_u64(be->checks_pass)) && ok;
    ok = stats_json_set(o, "checks_fail",
                        stats_json_u64(be->checks_fail)) && ok;
    ok = stats_json_set(o, "check", stats_json_check(&be->check)) && ok;
    ok = stats_json_set(o, "since", stats_json_time(be->since_ms)) && ok;
    ok = stats_json_set(o, "source", stats_json_str(be->source != NULL ?
                                                    be->source : "config"))
         && ok;
    if (be->host[0] != '\0') {
        ok = stats_json_set(o, "host", stats_json_str(be->host)) && ok;
    }
    if (be->next_address[0] != '\0') {
        ok = stats_json_set(o, "next_address",
                            stats_json_str(be->next_address)) && ok;
    }
    if (be->leaving) {
        ok = stats_json_set(o, "leaving", json_true()) && ok;
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* {"last_resolution","last_error","last_error_at","rounds",...} */
static json_t *
stats_json_dns(const struct stats_dns *d)
{
    json_t *o = json_object();
    bool ok;

    if (o == NULL) {
        return NULL;
    }
    ok = stats_json_set(o, "last_resolution",
                        d->last_ok_ms != 0 ? stats_json_time(d->last_ok_ms)
                                           : json_null());
    ok = stats_json_set(o, "last_error", d->last_error[0] != '\0'
                        ? stats_json_str(d->last_error) : json_null()) && ok;
    ok = stats_json_set(o, "last_error_at", d->last_error_ms != 0
                        ? stats_json_time(d->last_error_ms) : json_null())
         && ok;
    ok = stats_json_set(o, "rounds", stats_json_u64(d->rounds)) && ok;
    ok = stats_json_set(o, "failed_rounds",
                        stats_json_u64(d->failed_rounds)) && ok;
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* {"no_backend":N,"allow":N,...}: every reason, zero or not. */
static json_t *
stats_json_rejected(const struct stats_pool *p)
{
    json_t *o = json_object();
    unsigned r;

    for (r = 0; o != NULL && r < REJECT_NREASONS; r++) {
        if (json_object_set_new(o, reject_reason_name((enum reject_reason)r),
                                stats_json_u64(p->rejected_by[r])) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* {"handshakes": done, "failed": n, "failures": {"reason": n, ...}} */
static json_t *
stats_json_tls(const struct stats_pool *p)
{
    json_t *o = json_object(), *why = json_object();
    uint64_t failed = 0;
    bool ok = o != NULL && why != NULL;
    size_t r;

    if (!ok) {
        json_decref(o);
        json_decref(why);
        return NULL;
    }
    for (r = 0; r < TLS_NRESULTS; r++) {
        if (r == TLS_RESULT_OK) {
            continue;
        }
        failed += p->tls_results[r];
        ok = stats_json_set(why, tls_result_name((enum tls_result)r),
                            stats_json_u64(p->tls_results[r])) && ok;
    }
    ok = stats_json_set(o, "handshakes",
                        stats_json_u64(p->tls_results[TLS_RESULT_OK])) && ok;
    ok = stats_json_set(o, "failed", stats_json_u64(failed)) && ok;
    ok = stats_json_set(o, "failures", why) && ok;
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *
stats_json_pool(const struct stats_pool *p)
{
    json_t *o, *listen, *backends;
    size_t i;
    bool ok;

    o = json_object();
    listen = json_array();
    backends = json_array();
    ok = o != NULL && listen != NULL && backends != NULL;
    for (i = 0; ok && i < p->nlisten; i++) {
        ok = json_array_append_new(listen,
                                   stats_json_str(p->listen[i])) == 0;
    }
    for (i = 0; ok && i < p->nbackends; i++) {
        ok = json_array_append_new(backends,
                                   stats_json_backend(&p->backends[i])) == 0;
    }
    if (!ok) {
        json_decref(o);
        json_decref(listen);
        json_decref(backends);
        return NULL;
    }
    ok = stats_json_set(o, "name", stats_json_str(p->name));
    ok = stats_json_set(o, "listen", listen) && ok;
    ok = stats_json_set(o, "balance",
                        stats_json_str(p->balance != NULL ?
                                       p->balance : "")) && ok;
    ok = stats_json_set(o, "check_kind",
                        stats_json_str(p->check != NULL ?
                                       p->check : "")) && ok;
    ok = stats_json_set(o, "rejected", stats_json_u64(p->rejected)) && ok;
    if (p->tls) {
        ok = stats_json_set(o, "tls", stats_json_tls(p)) && ok;
    }
    ok = stats_json_set(o, "rejected_by", stats_json_rejected(p)) && ok;
    ok = stats_json_set(o, "queued", stats_json_u64(p->queued)) && ok;
    ok = stats_json_set(o, "queued_max", stats_json_u64(p->queued_max)) && ok;
    ok = stats_json_set(o, "rebalanced", stats_json_u64(p->rebalanced)) && ok;
    ok = stats_json_set(o, "backends", backends) && ok;
    if (p->dns.active) {
        ok = stats_json_set(o, "dns", stats_json_dns(&p->dns)) && ok;
    }
    if (!ok) {
        /* every stats_json_set call consumed its value, even on failure */
        json_decref(o);
        return NULL;
    }
    return o;
}

/* <o> as JSON text (jansson <flags>) with a trailing newline, for curl
 * users; NULL on no memory. <o> stays the caller's. */
static char *
stats_json_text(json_t *o, size_t flags)
{
    char *text, *nl;
    size_t len;

    text = json_dumps(o, flags);
    if (text == NULL) {
        return NULL;
    }
    len = strlen(text);
    nl = realloc(text, len + 2);
    if (nl == NULL) {
        free(text);
        return NULL;
    }
    nl[len] = '\n';
    nl[len + 1] = '\0';
    return nl;
}

/*
 * The /status document:
 *   {"version","uptime_s","now","pools":[{"name","listen":[...],"balance",
 *    "check_kind","rejected","rejected_by":{"no_backend",...},"queued",
 *    "queued_max","rebalanced","backends":[{"name","address","state",
 *    "health","admin","reason","weight","active","total","failed",
 *    "bytes_in","bytes_out",
 *    "checks_pass","checks_fail","check":{"result","reason","latency_ms",
 *    "at"},"since"}]}]}
 * with a trailing newline, for curl users.
 */
char *
stats_render_json(const struct stats_snapshot *snap)
{
    json_t *root, *pools;
    char *text;
    size_t i;
    bool ok;

    root = json_object();
    pools = json_array();
    ok = root != NULL && pools != NULL;
    for (i = 0; ok && i < snap->npools; i++) {
        ok = json_array_append_new(pools,
                                   stats_json_pool(&snap->pools[i])) == 0;
    }
    if (!ok) {
        json_decref(root);
        json_decref(pools);
        return NULL;
    }
    ok = stats_json_set(root, "version", json_string(MQLB_VERSION));
    ok = stats_json_set(root, "uptime_s",
                        stats_json_u64(snap->uptime_s)) && ok;
    ok = stats_json_set(root, "now", stats_json_time(snap->now_ms)) && ok;
    /* The generation in force: 1 at start, one more per good reload. */
    ok = stats_json_set(root, "pid", json_integer(snap->process.pid)) && ok;
    ok = stats_json_set(root, "generation",
                        stats_json_u64(snap->process.reloads_ok + 1)) && ok;
    ok = stats_json_set(root, "loaded", stats_json_time(
                        snap->process.last_reload_ok_ms)) && ok;
    ok = stats_json_set(root, "last_reload_ok",
                        json_boolean(snap->process.last_reload_ok)) && ok;
    ok = stats_json_set(root, "log_dropped_lines",
                        stats_json_u64(snap->process.log_dropped)) && ok;
    ok = stats_json_set(root, "max_connections",
                        stats_json_u64(snap->process.max_conns)) && ok;
    ok = stats_json_set(root, "max_connections_reached",
                        stats_json_u64(snap->process.max_conns_reached)) && ok;
    ok = stats_json_set(root, "pools", pools) && ok;
    text = ok ? stats_json_text(root, JSON_INDENT(2)) : NULL;
    json_decref(root);
    return text;
}

/* ---- Prometheus text ----------------------------------------------- */

static void
stats_buf_reserve(struct stats_buf *b, size_t more)
{
    size_t cap;
    char *data;

    if (b->oom || b->len + more + 1 <= b->cap) {
        return;
    }
    cap = b->cap == 0 ? 4096 : b->cap;
    while (cap < b->len + more + 1) {
        cap *= 2;
    }
    data = realloc(b->data, cap);
    if (data == NULL) {
        b->oom = true;
        return;
    }
    b->data = data;
    b->cap = cap;
}

static void
stats_buf_append(struct stats_buf *b, const char *s, size_t n)
{
    stats_buf_reserve(b, n);
    if (b->oom) {
        return;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void stats_buf_printf(struct stats_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
stats_buf_printf(struct stats_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    stats_buf_reserve(b, (size_t)n);
    if (b->oom) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/*
 * Append label value <s> escaped as the exposition format asks: backslash,
 * double quote and line feed are the only characters to escape.
 */
static void
stats_buf_label(struct stats_buf *b, const char *s)
{
    const char *run;

    for (run = s; *s != '\0'; s++) {
        const char *esc;

        switch (*s) {
        case '\\':
            esc = "\\\\";
            break;
        case '"':
            esc = "\\\"";
            break;
        case '\n':
            esc = "\\n";
            break;
        default:
            continue;
        }
        stats_buf_append(b, run, (size_t)(s - run));
        stats_buf_append(b, esc, 2);
        run = s + 1;
    }
    stats_buf_append(b, run, (size_t)(s - run));
}

/* Append the label text of <p> (and <be>) and its NUL, as one item. */
static void
stats_labels_add(struct stats_labels *l, const struct stats_pool *p,
                 const struct stats_backend *be)
{
    l->off[l->n++] = l->text.len;
    stats_buf_append(&l->text, "pool=\"", 6);
    stats_buf_label(&l->text, p->name);
    stats_buf_append(&l->text, "\"", 1);
    if (be != NULL) {
        stats_buf_append(&l->text, ",backend=\"", 10);
        stats_buf_label(&l->text, be->name);
        stats_buf_append(&l->text, "\"", 1);
    }
    stats_buf_append(&l->text, "", 1);
}

/* The labels of every pool and backend of <snap>; false on no memory. */
static bool
stats_labels_init(struct stats_labels *l, const struct stats_snapshot *snap)
{
    size_t i, j, n = 0;

    memset(l, 0, sizeof(*l));
    for (i = 0; i < snap->npools; i++) {
        n += 1 + snap->pools[i].nbackends;
    }
    l->off = calloc(n + 1, sizeof(*l->off));
    if (l->off == NULL) {
        return false;
    }
    for (i = 0; i < snap->npools; i++) {
        stats_labels_add(l, &snap->pools[i], NULL);
        for (j = 0; j < snap->pools[i].nbackends; j++) {
            stats_labels_add(l, &snap->pools[i], &snap->pools[i].backends[j]);
        }
    }
    l->off[l->n] = l->text.len;
    return !l->text.oom;
}

static void
stats_labels_free(struct stats_labels *l)
{
    mq_free(l->text.data);
    mq_free(l->off);
}

/* Point <s> at the labels of item <k>. */
static void
stats_labels_get(const struct stats_labels *l, size_t k,
                 struct stats_series *s)
{
    s->labels = l->text.data + l->off[k];
    s->labels_len = l->off[k + 1] - l->off[k] - 1;
}

/*
 * One sample line, `<name>{<labels>[,<key>="<val>"]} <value>\n`, with
 * <value> already text. Written with one reserve and memcpy, not printf:
 * a page at a thousand backends has tens of thousands of lines.
 */
static void
stats_buf_line(struct stats_buf *b, const struct stats_series *s,
               const char *key, const char *val, const char *value,
               size_t value_len)
{
    size_t key_len = key != NULL ? strlen(key) : 0;
    size_t val_len = val != NULL ? strlen(val) : 0;
    char *w;

    stats_buf_reserve(b, s->name_len + s->labels_len + key_len + val_len +
                      value_len + 8);
    if (b->oom) {
        return;
    }
    w = b->data + b->len;
    memcpy(w, s->name, s->name_len);
    w += s->name_len;
    *w++ = '{';
    memcpy(w, s->labels, s->labels_len);
    w += s->labels_len;
    if (key != NULL) {
        *w++ = ',';
        memcpy(w, key, key_len);
        w += key_len;
        *w++ = '=';
        *w++ = '"';
        memcpy(w, val, val_len);
        w += val_len;
        *w++ = '"';
    }
    *w++ = '}';
    *w++ = ' ';
    memcpy(w, value, value_len);
    w += value_len;
    *w++ = '\n';
    *w = '\0';
    b->len = (size_t)(w - b->data);
}

/* One sample with no extra label. */
static void
stats_buf_sample(struct stats_buf *b, const struct stats_series *s,
                 uint64_t value)
{
    char num[NUMTEXT_MAX];

    stats_buf_line(b, s, NULL, NULL, num, numtext_u64(num, value));
}

/* One sample with an extra label <key>="<val>" (<val> needs no escape). */
static void
stats_buf_sample_kv(struct stats_buf *b, const struct stats_series *s,
                    const char *key, const char *val, uint64_t value)
{
    char num[NUMTEXT_MAX];

    stats_buf_line(b, s, key, val, num, numtext_u64(num, value));
}

/* One sample per value of an enum: <v>[i] with <key>="<name>(i)". */
static void
stats_buf_samples_by(struct stats_buf *b, const struct stats_series *s,
                     const char *key, const char *(*name)(size_t),
                     const uint64_t *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        stats_buf_sample_kv(b, s, key, name(i), v[i]);
    }
}

static const char *
stats_reason_name(size_t i)
{
    return reject_reason_name((enum reject_reason)i);
}

static const char *
stats_state_name(size_t i)
{
    return backend_state_name((enum backend_state)i);
}

/* One sample of <ms> milliseconds as seconds ("61.500"). */
static void
stats_buf_sample_ms(struct stats_buf *b, const struct stats_series *s,
                    uint64_t ms)
{
    char num[NUMTEXT_MAX];

    stats_buf_line(b, s, NULL, NULL, num, numtext_milli(num, ms));
}

/* One sample per reason, every reason always present. */
static void
stats_emit_rejected(struct stats_buf *b, const struct stats_series *s,
                    const struct stats_pool *p,
                    const struct stats_backend *be)
{
    (void)be;
    stats_buf_samples_by(b, s, "reason", stats_reason_name, p->rejected_by,
                         REJECT_NREASONS);
}

/* TLS pools: handshakes by result (ok, and each failure reason). */
static void
stats_emit_tls(struct stats_buf *b, const struct stats_series *s,
               const struct stats_pool *p, const struct stats_backend *be)
{
    size_t r;

    (void)be;
    if (!p->tls) {
        return;
    }
    for (r = 0; r < TLS_NRESULTS; r++) {
        stats_buf_sample_kv(b, s, "result",
                            tls_result_name((enum tls_result)r),
                            p->tls_results[r]);
    }
}

static void
stats_emit_pool_up(struct stats_buf *b, const struct stats_series *s,
                   const struct stats_pool *p, const struct stats_backend *be)
{
    uint64_t nup;
    size_t i;

    (void)be;
    nup = 0;
    for (i = 0; i < p->nbackends; i++) {
        nup += p->backends[i].state == BACKEND_UP;
    }
    stats_buf_sample(b, s, nup);
}

static void
stats_emit_up(struct stats_buf *b, const struct stats_series *s,
              const struct stats_pool *p, const struct stats_backend *be)
{
    (void)p;
    stats_buf_sample(b, s, be->state == BACKEND_UP);
}

static void
stats_emit_state(struct stats_buf *b, const struct stats_series *s,
                 const struct stats_pool *p, const struct stats_backend *be)
{
    static const enum backend_state states[] = {
        BACKEND_UP, BACKEND_DOWN, BACKEND_DRAIN, BACKEND_DISABLED,
    };
    size_t i;

    (void)p;
    for (i = 0; i < MQ_NELEMS(states); i++) {
        stats_buf_sample_kv(b, s, "state", backend_state_name(states[i]),
                            be->state == states[i]);
    }
}

static void
stats_emit_weight(struct stats_buf *b, const struct stats_series *s,
                  const struct stats_pool *p, const struct stats_backend *be)
{
    (void)p;
    stats_buf_sample(b, s, be->weight);
}

static void
stats_emit_active(struct stats_buf *b, const struct stats_series *s,
                  const struct stats_pool *p, const struct stats_backend *be)
{
    (void)p;
    /* a gauge: a transient negative count would be a bug, show 0 */
    stats_buf_sample(b, s, be->active > 0 ? (uint64_t)be->active : 0);
}

static void
stats_emit_bytes(struct stats_buf *b, const struct stats_series *s,
                 const struct stats_pool *p, const struct stats_backend *be)
{
    (void)p;
    stats_buf_sample_kv(b, s, "direction", "in", be->bytes_in);
    stats_buf_sample_kv(b, s, "direction", "out", be->bytes_out);
}

static void
stats_emit_checks(struct stats_buf *b, const struct stats_series *s,
                  const struct stats_pool *p, const struct stats_backend *be)
{
    (void)p;
    stats_buf_sample_kv(b, s, "result", "pass", be->checks_pass);
    stats_buf_sample_kv(b, s, "result", "fail", be->checks_fail);
}

static void
stats_emit_latency(struct stats_buf *b, const struct stats_series *s,
                   const struct stats_pool *p, const struct stats_backend *be)
{
    (void)p;
    stats_buf_sample_ms(b, s, be->check.latency_ms);
}

static void
stats_emit_since(struct stats_buf *b, const struct stats_series *s,
                 const struct stats_pool *p, const struct stats_backend *be)
{
    (void)p;
    stats_buf_sample_ms(b, s, be->since_ms);
}

static void
stats_emit_transitions(struct stats_buf *b, const struct stats_series *s,
                       const struct stats_pool *p,
                       const struct stats_backend *be)
{
    (void)p;
    stats_buf_samples_by(b, s, "to", stats_state_name, be->transitions,
                         BACKEND_NSTATES);
}

static void
stats_emit_downtime(struct stats_buf *b, const struct stats_series *s,
                    const struct stats_pool *p,
                    const struct stats_backend *be)
{
    (void)p;
    stats_buf_sample_ms(b, s, be->downtime_ms);
}

/* The _bucket/_sum/_count samples of <h> under the labels of <s>. */
static void
stats_buf_histo(struct stats_buf *b, const struct stats_series *s,
                const struct histo_copy *h)
{
    size_t need, room;

    if (b->oom) {
        return;
    }
    /* Straight into the buffer; only when it does not fit, grow and redo. */
    room = b->cap - b->len;
    need = histo_render(h, s->name, s->labels, b->data + b->len, room);
    if (need >= room) {
        stats_buf_reserve(b, need);
        if (b->oom) {
            return;
        }
        histo_render(h, s->name, s->labels, b->data + b->len, need + 1);
    }
    b->len += need;
}

static void
stats_emit_connect_time(struct stats_buf *b, const struct stats_series *s,
                        const struct stats_pool *p,
                        const struct stats_backend *be)
{
    (void)p;
    stats_buf_histo(b, s, &be->connect_time);
}

static void
stats_emit_check_time(struct stats_buf *b, const struct stats_series *s,
                      const struct stats_pool *p,
                      const struct stats_backend *be)
{
    (void)p;
    stats_buf_histo(b, s, &be->check_time);
}

static void
stats_emit_duration(struct stats_buf *b, const struct stats_series *s,
                    const struct stats_pool *p,
                    const struct stats_backend *be)
{
    (void)be;
    stats_buf_histo(b, s, &p->duration);
}

/* The samples of family <f> for pool <p> (and backend <be>). */
static void
stats_emit(struct stats_buf *b, const struct stats_family *f,
           const struct stats_series *s, const struct stats_pool *p,
           const struct stats_backend *be)
{
    const char *base = be != NULL ? (const char *)be : (const char *)p;
    uint64_t v;

    if (f->emit != NULL) {
        f->emit(b, s, p, be);
        return;
    }
    memcpy(&v, base + f->field, sizeof(v));
    stats_buf_sample(b, s, v);
}

/* Every family after mqlb_info and mqlb_uptime_seconds, in output order. */
static const struct stats_family stats_families[] = {
    { "mqlb_pool_rejected_total", "counter",
      "Clients the pool turned away, by reason: no_backend, allow, "
      "source_limit, max_connections, queue, sni.",
      STATS_SCOPE_POOL, stats_emit_rejected, 0 },
    { "mqlb_pool_queued", "gauge",
      "Clients waiting in the pool's queue for a backend slot.",
      STATS_SCOPE_POOL, STATS_POOL_FIELD(queued) },
    { "mqlb_pool_queued_max", "gauge",
      "The most clients that waited in the pool's queue at once.",
      STATS_SCOPE_POOL, STATS_POOL_FIELD(queued_max) },
    { "mqlb_pool_rebalanced_total", "counter",
      "Sessions closed by rebalance = paced so that their clients "
      "reconnect to a backend under its share.",
      STATS_SCOPE_POOL, STATS_POOL_FIELD(rebalanced) },
    { "mqlb_tls_handshakes_total", "counter",
      "TLS handshakes with clients by result: ok, or why they failed "
      "(timeout, sni, no_shared_cipher, protocol_version, no_client_cert, "
      "bad_client_cert, not_tls, closed, error).",
      STATS_SCOPE_POOL, stats_emit_tls, 0 },
    { "mqlb_pool_backends_up", "gauge",
      "Backends of the pool in state up.",
      STATS_SCOPE_POOL, stats_emit_pool_up, 0 },
    { "mqlb_backend_up", "gauge",
      "1 when the backend is up and takes new sessions, else 0.",
      STATS_SCOPE_BACKEND, stats_emit_up, 0 },
    { "mqlb_backend_state", "gauge",
      "1 for the backend's current state (up, down, drain, disabled).",
      STATS_SCOPE_BACKEND, stats_emit_state, 0 },
    { "mqlb_backend_weight", "gauge",
      "Configured or admin-set weight of the backend (0..256).",
      STATS_SCOPE_BACKEND, stats_emit_weight, 0 },
    { "mqlb_backend_active_sessions", "gauge",
      "Sessions currently relayed to the backend.",
      STATS_SCOPE_BACKEND, stats_emit_active, 0 },
    { "mqlb_backend_sessions_total", "counter",
      "Sessions ever relayed to the backend.",
      STATS_SCOPE_BACKEND, STATS_BACKEND_FIELD(total) },
    { "mqlb_backend_failures_total", "counter",
      "Failed connects to the backend.",
      STATS_SCOPE_BACKEND, STATS_BACKEND_FIELD(failed) },
    { "mqlb_backend_bytes_total", "counter",
      "Bytes relayed; direction in is client to backend, out is backend "
      "to client.", STATS_SCOPE_BACKEND, stats_emit_bytes, 0 },
    { "mqlb_backend_checks_total", "counter",
      "Active health checks of the backend by result.",
      STATS_SCOPE_BACKEND, stats_emit_checks, 0 },
    { "mqlb_health_checks_total", "counter",
      "Deprecated: the same as mqlb_backend_checks_total; removed in a "
      "later release.", STATS_SCOPE_BACKEND, stats_emit_checks, 0 },
    { "mqlb_backend_check_latency_seconds", "gauge",
      "Latency of the last health check, connect to verdict.",
      STATS_SCOPE_BACKEND, stats_emit_latency, 0 },
    { "mqlb_backend_last_change_timestamp_seconds", "gauge",
      "Unix time of the backend's last state change.",
      STATS_SCOPE_BACKEND, stats_emit_since, 0 },
    { "mqlb_backend_transitions_total", "counter",
      "State changes of the backend, by the state it went to.",
      STATS_SCOPE_BACKEND, stats_emit_transitions, 0 },
    { "mqlb_backend_downtime_seconds_total", "counter",
      "Seconds the backend has been down (health), the current period "
      "included.", STATS_SCOPE_BACKEND, stats_emit_downtime, 0 },
    { "mqlb_backend_connect_seconds", "histogram",
      "Time to connect to the backend, for each successful connect.",
      STATS_SCOPE_BACKEND, stats_emit_connect_time, 0 },
    { "mqlb_backend_check_seconds", "histogram",
      "Duration of the backend's health checks, connect to verdict.",
      STATS_SCOPE_BACKEND, stats_emit_check_time, 0 },
    { "mqlb_pool_sessions_total", "counter",
      "Sessions the pool accepted.",
      STATS_SCOPE_POOL, STATS_POOL_FIELD(sessions) },
    { "mqlb_pool_retries_total", "counter",
      "Times a session of the pool tried another backend after a failed "
      "connect.", STATS_SCOPE_POOL, STATS_POOL_FIELD(retries) },
    { "mqlb_session_duration_seconds", "histogram",
      "Lifetime of the pool's finished sessions.",
      STATS_SCOPE_POOL, stats_emit_duration, 0 },
};

/* process_* and the reload families, after the pools. */
static void
stats_render_process(struct stats_buf *b, const struct stats_process *pr)
{
    stats_buf_printf(b,
        "# HELP mqlb_reloads_total Reloads (SIGHUP, mqlb -s reload) by "
        "result.\n# TYPE mqlb_reloads_total counter\n"
        "mqlb_reloads_total{result=\"success\"} %" PRIu64 "\n"
        "mqlb_reloads_total{result=\"failure\"} %" PRIu64 "\n",
        pr->reloads_ok, pr->reloads_failed);
    stats_buf_printf(b,
        "# HELP mqlb_config_last_reload_success_timestamp_seconds Unix "
        "time of the last successful configuration load (the start "
        "counts).\n"
        "# TYPE mqlb_config_last_reload_success_timestamp_seconds gauge\n"
        "mqlb_config_last_reload_success_timestamp_seconds %" PRIu64
        ".%03u\n", pr->last_reload_ok_ms / 1000,
        (unsigned)(pr->last_reload_ok_ms % 1000));
    stats_buf_printf(b,
        "# HELP mqlb_config_last_reload_successful 1 when the latest "
        "reload succeeded (or none was tried), else 0.\n"
        "# TYPE mqlb_config_last_reload_successful gauge\n"
        "mqlb_config_last_reload_successful %d\n", pr->last_reload_ok);
    stats_buf_printf(b,
        "# HELP mqlb_log_dropped_lines_total Log lines dropped because "
        "the reader of mqlb's log (stderr, the journal) fell behind.\n"
        "# TYPE mqlb_log_dropped_lines_total counter\n"
        "mqlb_log_dropped_lines_total %" PRIu64 "\n", pr->log_dropped);
    stats_buf_printf(b,
        "# HELP mqlb_max_connections Sessions the process admits at once "
        "(max_connections, or what auto chose).\n"
        "# TYPE mqlb_max_connections gauge\n"
        "mqlb_max_connections %" PRIu64 "\n"
        "# HELP mqlb_max_connections_reached_total Times accepting paused "
        "because the process was at max_connections (new clients wait in "
        "the kernel's backlog).\n"
        "# TYPE mqlb_max_connections_reached_total counter\n"
        "mqlb_max_connections_reached_total %" PRIu64 "\n",
        pr->max_conns, pr->max_conns_reached);
    if (!pr->proc_ok) {
        return;
    }
    stats_buf_printf(b,
        "# HELP process_cpu_seconds_total Total user and system CPU time "
        "spent in seconds.\n# TYPE process_cpu_seconds_total counter\n"
        "process_cpu_seconds_total %.2f\n"
        "# HELP process_start_time_seconds Start time of the process since "
        "unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\n"
        "process_start_time_seconds %.2f\n"
        "# HELP process_resident_memory_bytes Resident memory size in "
        "bytes.\n# TYPE process_resident_memory_bytes gauge\n"
        "process_resident_memory_bytes %" PRIu64 "\n"
        "# HELP process_virtual_memory_bytes Virtual memory size in "
        "bytes.\n# TYPE process_virtual_memory_bytes gauge\n"
        "process_virtual_memory_bytes %" PRIu64 "\n"
        "# HELP process_open_fds Number of open file descriptors.\n"
        "# TYPE process_open_fds gauge\nprocess_open_fds %" PRIu64 "\n"
        "# HELP process_max_fds Maximum number of open file descriptors."
        "\n# TYPE process_max_fds gauge\nprocess_max_fds %" PRIu64 "\n",
        pr->proc.cpu_s, pr->proc.start_time_s, pr->proc.rss_bytes,
        pr->proc.vsize_bytes, pr->proc.open_fds, pr->proc.max_fds);
}

/*
 * The /metrics page in text exposition format 0.0.4: each family's
 * # HELP and # TYPE lines, then all its samples, grouped as the format
 * requires. Label values are escaped; help texts are constants that need
 * no escaping.
 */
char *
stats_render_metrics(const struct stats_snapshot *snap)
{
    struct stats_buf b;
    struct stats_labels lab;
    struct stats_series s;
    const struct stats_family *f;
    size_t i, j, k, item;

    memset(&b, 0, sizeof(b));
    stats_buf_reserve(&b, 0);
    if (b.oom) {
        return NULL;
    }
    if (!stats_labels_init(&lab, snap)) {
        stats_labels_free(&lab);
        mq_free(b.data);
        return NULL;
    }
    b.data[0] = '\0';

    stats_buf_printf(&b, "# HELP mqlb_info mqlb build information.\n"
                     "# TYPE mqlb_info gauge\n"
                     "mqlb_info{version=\"%s\"} 1\n", MQLB_VERSION);
    stats_buf_printf(&b, "# HELP mqlb_uptime_seconds Seconds since mqlb "
                     "started.\n"
                     "# TYPE mqlb_uptime_seconds gauge\n"
                     "mqlb_uptime_seconds %" PRIu64 "\n", snap->uptime_s);

    for (k = 0; k < MQ_NELEMS(stats_families); k++) {
        f = &stats_families[k];
        stats_buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", f->name,
                         f->help, f->name, f->type);
        s.name = f->name;
        s.name_len = strlen(f->name);
        for (i = 0, item = 0; i < snap->npools; i++) {
            const struct stats_pool *p = &snap->pools[i];

            if (f->scope == STATS_SCOPE_POOL) {
                stats_labels_get(&lab, item, &s);
                stats_emit(&b, f, &s, p, NULL);
            }
            for (j = 0; f->scope == STATS_SCOPE_BACKEND &&
                        j < p->nbackends; j++) {
                stats_labels_get(&lab, item + 1 + j, &s);
                stats_emit(&b, f, &s, p, &p->backends[j]);
            }
            item += 1 + p->nbackends;
        }
    }
    stats_labels_free(&lab);

    stats_render_process(&b, &snap->process);
    if (b.oom) {
        mq_free(b.data);
        return NULL;
    }
    return b.data;
}

int
stats_all_pools_up(const struct stats_snapshot *snap)
{
    size_t i, j;
    bool up;

    if (snap == NULL) {
        return 0;
    }
    for (i = 0; i < snap->npools; i++) {
        up = false;
        for (j = 0; j < snap->pools[i].nbackends; j++) {
            if (snap->pools[i].backends[j].state == BACKEND_UP) {
                up = true;
                break;
            }
        }
        if (!up) {
            return 0;
        }
    }
    return 1;
}

/* <o> as compact JSON with a newline; consumes <o>. NULL on no memory. */
static char *
stats_dump_one(json_t *o)
{
    char *text;

    if (o == NULL) {
        return NULL;
    }
    text = stats_json_text(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

char *
stats_render_pool_json(const struct stats_pool *p)
{
    return stats_dump_one(stats_json_pool(p));
}

char *
stats_render_backend_json(const struct stats_backend *b)
{
    return stats_dump_one(stats_json_backend(b));
}
