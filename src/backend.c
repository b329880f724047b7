/*
 * backend.c: a broker's health, admin state and counters. Health moves
 * on one counter (haproxy's check->health): 0..rise-1 is down,
 * rise..rise+fall-1 is up; a pass adds one, a fail takes one away, and the
 * clamp gives the hysteresis. Passive failures from real traffic can take
 * a backend down at once (nginx's max_fails, twemproxy's auto-eject).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/log.h"

#define BACKEND_REASON_TEXT 256     /* a state change's reason, in words */

static const char *const backend_state_names[] = {
    "up", "down", "drain", "disabled",
};

struct backend *
backend_create(const struct config_backend *cb, const char *pool_name)
{
    struct backend_addr *ba;
    struct backend *b;

    b = calloc(1, sizeof(*b));
    ba = calloc(1, sizeof(*ba));
    if (b == NULL || ba == NULL) {
        free(b);
        free(ba);
        return NULL;
    }
    memcpy(b->name, cb->name, sizeof(b->name));
    snprintf(b->pool_name, sizeof(b->pool_name), "%s", pool_name);
    ba->a = cb->addr;
    if (cb->is_name) {
        snprintf(ba->name, sizeof(ba->name), "%s", cb->host);
    }
    atomic_init(&b->addr, ba);
    atomic_init(&b->next, NULL);
    if (cb->is_name) {
        snprintf(b->host, sizeof(b->host), "%s", cb->host);
        b->port = cb->port;
    }
    atomic_init(&b->backup, cb->backup);
    atomic_init(&b->weight, cb->weight);
    atomic_init(&b->max_conns, cb->max_conns);
    atomic_init(&b->max_connect_rate, cb->max_connect_rate);
    /*
     * Up from the start, as haproxy does: health sits at <rise>, the
     * lowest "up" value, so the first failed check takes it down.
     */
    atomic_init(&b->up, true);
    atomic_init(&b->since_ms, mq_wall_ms());
    atomic_init(&b->refcnt, 1);
    atomic_init(&b->last_state, BACKEND_UP);
    histo_init(&b->connect_time, HISTO_FAST);
    histo_init(&b->check_time, HISTO_FAST);
    pthread_mutex_init(&b->check_lock, NULL);
    b->health = -1;     /* set to <rise> by the first check */
    return b;
}

struct backend *
backend_create_unchecked(const struct config_backend *cb,
                         const char *pool_name, bool checked)
{
    struct backend *b = backend_create(cb, pool_name);

    if (b != NULL && checked) {
        /* health 0: <rise> passes bring it up, like any down backend */
        atomic_store(&b->up, false);
        atomic_store(&b->last_state, BACKEND_DOWN);
        atomic_store(&b->down_since_ms, 0);
        b->health = 0;
    }
    return b;
}

int
backend_readdress(struct backend *b, const struct config_addr *a,
                  bool checked)
{
    struct backend_addr *cur, *n;

    cur = atomic_load(&b->addr);
    if (cur->a.len == a->len && memcmp(&cur->a.ss, &a->ss, a->len) == 0) {
        if (atomic_load(&b->next) != NULL) {
            log_notice("backend %s/%s: address stays %s", b->pool_name,
                       b->name, cur->a.text);
            atomic_store(&b->next, NULL);
        }
        return MQ_OK;
    }
    n = atomic_load(&b->next);
    if (checked && n != NULL && n->a.len == a->len &&
        memcmp(&n->a.ss, &a->ss, a->len) == 0) {
        return MQ_OK;       /* already being checked */
    }
    n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return MQ_ERR;
    }
    n->a = *a;
    snprintf(n->name, sizeof(n->name), "%s", b->host);
    /* Every address stays reachable from <addr> until the backend goes:
     * the new head has cur behind it; one on trial hangs behind cur. */
    b->next_passes = 0;
    if (!checked) {
        n->prev = cur;
        atomic_store(&b->next, NULL);
        atomic_store_explicit(&b->addr, n, memory_order_release);
        backend_bump(b);
        log_notice("backend %s/%s: address %s -> %s", b->pool_name, b->name,
                   cur->a.text, n->a.text);
        return MQ_OK;
    }
    n->prev = cur->prev;
    cur->prev = n;
    atomic_store_explicit(&b->next, n, memory_order_release);
    log_notice("backend %s/%s: checking new address %s (sessions go to %s "
               "until it passes)", b->pool_name, b->name, n->a.text,
               cur->a.text);
    return MQ_OK;
}

void
backend_tls_addr(const struct backend *b, char *out, size_t len)
{
    struct backend *mb = (struct backend *)b;
    const struct backend_addr *ba = atomic_load_explicit(&mb->addr,
                                                         memory_order_acquire);
    const char *colon;

    if (ba->name[0] == '\0') {
        snprintf(out, len, "%s", ba->a.text);
        return;
    }
    colon = strrchr(ba->a.text, ':');
    snprintf(out, len, "%s%s", ba->name, colon != NULL ? colon : "");
}

bool
backend_next_verdict(struct backend *b, bool pass, const char *reason,
                     uint32_t latency_ms, unsigned rise)
{
    struct backend_addr *n = atomic_load(&b->next), *cur;
    char why[200];

    if (n == NULL) {
        return false;
    }
    if (!pass) {
        b->next_passes = 0;
        snprintf(why, sizeof(why), "new address %s: %s", n->a.text, reason);
        backend_check_record(b, false, why, latency_ms);
        return false;
    }
    backend_check_record(b, true, "", latency_ms);
    if (++b->next_passes < rise) {
        return false;
    }
    cur = atomic_load(&b->addr);
    /* <n> already hangs on cur's chain; make it the head, cur behind */
    for (struct backend_addr **pp = &cur->prev; *pp != NULL;
         pp = &(*pp)->prev) {
        if (*pp == n) {
            *pp = n->prev;
            break;
        }
    }
    n->prev = cur;
    atomic_store(&b->next, NULL);
    atomic_store_explicit(&b->addr, n, memory_order_release);
    b->next_passes = 0;
    atomic_store(&b->nfails_row, 0);
    backend_bump(b);
    log_notice("backend %s/%s: address %s -> %s (%u checks passed; sessions "
               "on the old address go on)", b->pool_name, b->name,
               cur->a.text, n->a.text, rise);
    return true;
}

void
backend_acquire(struct backend *b)
{
    atomic_fetch_add_explicit(&b->refcnt, 1, memory_order_relaxed);
}

void
backend_release(struct backend *b)
{
    if (b == NULL) {
        return;
    }
    if (atomic_fetch_sub_explicit(&b->refcnt, 1, memory_order_acq_rel)
        == 1) {
        struct backend_addr *a, *prev;

        for (a = atomic_load(&b->addr); a != NULL; a = prev) {
            prev = a->prev;
            free(a);
        }
        pthread_mutex_destroy(&b->check_lock);
        free(b);
    }
}

/*
 * The one-word state: down wins over the admin states (a drained dead
 * broker is shown down; "admin" and "reason" say it is drained too),
 * then disabled, drain, the broker's own drain, up.
 */
enum backend_state
backend_state(const struct backend *b)
{
    int admin = atomic_load_explicit(&b->admin, memory_order_relaxed);

    if (!atomic_load_explicit(&b->up, memory_order_relaxed)) {
        return BACKEND_DOWN;
    }
    if (admin == BACKEND_ADMIN_DISABLE) {
        return BACKEND_DISABLED;
    }
    if (admin == BACKEND_ADMIN_DRAIN ||
        atomic_load_explicit(&b->leaving, memory_order_relaxed)) {
        return BACKEND_DRAIN;
    }
    if (atomic_load_explicit(&b->proto_drain, memory_order_relaxed)) {
        return BACKEND_DRAIN;
    }
    return BACKEND_UP;
}

const char *
backend_state_name(enum backend_state st)
{
    if ((unsigned)st >= MQ_NELEMS(backend_state_names)) {
        return "down";      /* never reached: states come from backend_state */
    }
    return backend_state_names[st];
}

bool
backend_is_eligible(const struct backend *b)
{
    unsigned max;

    if (backend_state(b) != BACKEND_UP ||
        atomic_load_explicit(&b->weight, memory_order_relaxed) == 0) {
        return false;
    }
    max = atomic_load_explicit(&b->max_conns, memory_order_relaxed);
    return max == 0 ||
           atomic_load_explicit(&b->nactive, memory_order_relaxed)
           < (int64_t)max;
}

unsigned
backend_eff_weight(const struct backend *b, uint64_t now_ms,
                   uint64_t slow_start_ms)
{
    unsigned w = atomic_load_explicit(&b->weight, memory_order_relaxed);
    uint64_t up_at = atomic_load_explicit(&b->up_at_ms,
                                          memory_order_relaxed);
    uint64_t eff;

    if (w == 0 || slow_start_ms == 0 || up_at == 0 ||
        now_ms >= up_at + slow_start_ms) {
        return w;
    }
    /* Ramp linearly from almost nothing, never to zero (haproxy too). */
    eff = (uint64_t)w * (now_ms - up_at) / slow_start_ms;
    return eff == 0 ? 1 : (unsigned)eff;
}

void
backend_session_start(struct backend *b)
{
    atomic_fetch_add_explicit(&b->nactive, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->ntotal, 1, memory_order_relaxed);
}

void
backend_session_end(struct backend *b)
{
    ASSERT(atomic_load(&b->nactive) > 0);
    atomic_fetch_sub_explicit(&b->nactive, 1, memory_order_relaxed);
}

/*
 * Count a transition when the visible state moved. Writers are several
 * threads (checker, workers, admin); the exchange gives each move to one
 * of them, so none is counted twice.
 */
static void
backend_count_transition(struct backend *b)
{
    enum backend_state now = backend_state(b);
    int was = atomic_exchange(&b->last_state, (int)now);
    uint64_t t = mq_now_ms(), since;

    if (was == (int)now) {
        return;
    }
    atomic_fetch_add_explicit(&b->ntransitions[now], 1, memory_order_relaxed);
    if (now == BACKEND_DOWN) {
        atomic_store(&b->down_since_ms, t);
    } else if (was == BACKEND_DOWN) {
        since = atomic_exchange(&b->down_since_ms, 0);
        if (since != 0 && t > since) {
            atomic_fetch_add_explicit(&b->downtime_ms, t - since,
                                      memory_order_relaxed);
        }
    }
}

uint64_t
backend_downtime_ms(const struct backend *b, uint64_t now_ms)
{
    uint64_t total = atomic_load(&b->downtime_ms);
    uint64_t since = atomic_load(&b->down_since_ms);

    if (since != 0 && now_ms > since) {
        total += now_ms - since;
    }
    return total;
}

/* backend_changes: every change a balancer's table depends on. */
static _Atomic uint64_t backend_nchanges;

void
backend_bump(struct backend *b)
{
    atomic_fetch_add_explicit(&b->version, 1, memory_order_release);
    atomic_fetch_add_explicit(&backend_nchanges, 1, memory_order_release);
}

void
backend_bump_members(void)
{
    atomic_fetch_add_explicit(&backend_nchanges, 1, memory_order_release);
}

uint64_t
backend_changes(void)
{
    return atomic_load_explicit(&backend_nchanges, memory_order_acquire);
}

static void
backend_changed(struct backend *b)
{
    atomic_store(&b->since_ms, mq_wall_ms());
    backend_bump(b);
    backend_count_transition(b);
}

/*
 * Move <b> to up or down; true if that was a change. Going down records
 * <why> (printf-style) as the down reason, under the lock.
 */
static bool
backend_set_up(struct backend *b, bool up, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool
backend_set_up(struct backend *b, bool up, const char *fmt, ...)
{
    va_list ap;
    bool was;

    pthread_mutex_lock(&b->check_lock);
    was = atomic_exchange(&b->up, up);
    if (was != up && !up) {
        va_start(ap, fmt);
        vsnprintf(b->down_reason, sizeof(b->down_reason), fmt, ap);
        va_end(ap);
    } else if (was != up) {
        b->down_reason[0] = '\0';
    }
    pthread_mutex_unlock(&b->check_lock);
    if (was == up) {
        return false;
    }
    if (up) {
        atomic_store(&b->up_at_ms, mq_now_ms());
    }
    backend_changed(b);
    return true;
}

/*
 * "backend P/B (ADDR) is up|down: WHY", with the event's fields for JSON
 * logs (journald takes the priority from <level>).
 */
static void
backend_log_state(struct backend *b, int level, const char *from,
                  const char *to, const char *why)
{
    log_event(level, &(struct log_fields){
                  .event = "backend_state", .pool = b->pool_name,
                  .backend = b->name, .state = to, .from = from, .to = to,
                  .reason = why },
              "backend %s/%s (%s) is %s: %s", b->pool_name, b->name,
              backend_addr(b)->text, to, why);
}

bool
backend_connect_fail(struct backend *b, unsigned max_fails,
                     const char *reason)
{
    unsigned row;

    atomic_fetch_add_explicit(&b->nfailed, 1, memory_order_relaxed);
    row = atomic_fetch_add(&b->nfails_row, 1) + 1;
    if (max_fails == 0 || row < max_fails) {
        return false;
    }
    if (!backend_set_up(b, false, "%u connect failures in a row: %s", row,
                        reason)) {
        return false;
    }
    {
        char why[BACKEND_REASON_TEXT];

        snprintf(why, sizeof(why), "%u connect failures in a row: %s", row,
                 reason);
        backend_log_state(b, LOG_WARN, "up", "down", why);
    }
    return true;
}

void
backend_connect_ok(struct backend *b)
{
    if (atomic_load_explicit(&b->nfails_row, memory_order_relaxed) != 0) {
        atomic_store_explicit(&b->nfails_row, 0, memory_order_relaxed);
    }
}

int
backend_health_step(int health, bool pass, unsigned rise, unsigned fall)
{
    int top = (int)(rise + fall) - 1;

    if (pass) {
        return health < top ? health + 1 : top;
    }
    /* A failure below <rise> resets, so <rise> passes in a row are needed. */
    if (health >= (int)rise) {
        return health - 1 >= (int)rise ? health - 1 : 0;
    }
    return 0;
}

void
backend_check_record(struct backend *b, bool pass, const char *reason,
                     uint32_t latency_ms)
{
    pthread_mutex_lock(&b->check_lock);
    b->check.result = pass ? BACKEND_CHECK_PASS : BACKEND_CHECK_FAIL;
    snprintf(b->check.reason, sizeof(b->check.reason), "%s",
             pass ? "" : reason);
    b->check.latency_ms = latency_ms;
    b->check.at_ms = mq_wall_ms();
    pthread_mutex_unlock(&b->check_lock);
    histo_observe_us(&b->check_time, (uint64_t)latency_ms * 1000);
    atomic_fetch_add_explicit(pass ? &b->nchecks_pass : &b->nchecks_fail, 1,
                              memory_order_relaxed);
}

bool
backend_check_done(struct backend *b, bool pass, const char *reason,
                   uint32_t latency_ms, unsigned rise, unsigned fall)
{
    bool up, changed = false;
    int h;

    backend_check_record(b, pass, reason, latency_ms);
    if (atomic_load(&b->admin) == BACKEND_ADMIN_DISABLE) {
        return false;   /* a disabled backend's checks do not count */
    }
    up = atomic_load(&b->up);
    h = b->health;
    if (h < 0 || h > (int)(rise + fall) - 1) {
        h = up ? (int)rise : 0;     /* first check, or rise/fall changed */
    } else if (!up && h >= (int)rise) {
        h = 0;                      /* taken down by passive failures */
    }
    h = backend_health_step(h, pass, rise, fall);
    b->health = h;

    if (h >= (int)rise && !up) {
        changed = backend_set_up(b, true, "%s", "");
        if (changed) {
            char why[BACKEND_REASON_TEXT];

            atomic_store(&b->nfails_row, 0);
            snprintf(why, sizeof(why), "%u checks passed", rise);
            backend_log_state(b, LOG_NOTICE, "down", "up", why);
        }
    } else if (h < (int)rise && up) {
        changed = backend_set_up(b, false, "check failed: %s", reason);
        if (changed) {
            char why[BACKEND_REASON_TEXT];

            snprintf(why, sizeof(why), "check failed: %s", reason);
            backend_log_state(b, LOG_WARN, "up", "down", why);
        }
    }
    return changed;
}

void
backend_set_admin(struct backend *b, enum backend_admin a)
{
    backend_set_admin_by(b, a, NULL);
}

void
backend_set_admin_by(struct backend *b, enum backend_admin a,
                     const char *who)
{
    static const char *const names[] = { "enabled", "drained", "disabled" };
    static const char *const admin_names[] = { "ready", "drain", "disabled" };
    bool changed;

    pthread_mutex_lock(&b->check_lock);
    changed = atomic_exchange(&b->admin, (int)a) != (int)a;
    if (changed) {
        snprintf(b->admin_by, sizeof(b->admin_by), "%s",
                 who != NULL ? who : "");
    }
    pthread_mutex_unlock(&b->check_lock);
    if (changed) {
        char why[BACKEND_WHO_MAX + 32];

        backend_changed(b);
        /* The words /status gives as the reason: "drained by admin (IP)". */
        snprintf(why, sizeof(why), "%s by admin%s%s%s", names[a],
                 who != NULL ? " (" : "", who != NULL ? who : "",
                 who != NULL ? ")" : "");
        log_event(LOG_NOTICE, &(struct log_fields){
                      .event = "backend_admin", .pool = b->pool_name,
                      .backend = b->name, .state = admin_names[a],
                      .client = who, .reason = why },
                  "backend %s/%s (%s) %s", b->pool_name, b->name,
                  backend_addr(b)->text, why);
    }
}

void
backend_set_weight(struct backend *b, unsigned weight)
{
    if (atomic_exchange(&b->weight, weight) != weight) {
        backend_bump(b);
        log_event(LOG_NOTICE, &(struct log_fields){
                      .event = "backend_weight", .pool = b->pool_name,
                      .backend = b->name },
                  "backend %s/%s weight set to %u", b->pool_name, b->name,
                  weight);
    }
}

void
backend_set_proto_drain(struct backend *b, bool drain)
{
    if (atomic_exchange(&b->proto_drain, drain) != drain) {
        backend_changed(b);
        log_event(LOG_NOTICE, &(struct log_fields){
                      .event = "backend_state", .pool = b->pool_name,
                      .backend = b->name, .state = drain ? "drain" : "up",
                      .reason = drain ? "lame duck mode" : NULL },
                  "backend %s/%s (%s) %s", b->pool_name, b->name,
                  backend_addr(b)->text, drain
                  ? "asks to drain (lame duck mode)" : "no longer drains");
    }
}

void
backend_get_check(struct backend *b, struct backend_check *out)
{
    pthread_mutex_lock(&b->check_lock);
    *out = b->check;
    pthread_mutex_unlock(&b->check_lock);
}

bool
backend_is_up(const struct backend *b)
{
    return atomic_load_explicit(&b->up, memory_order_relaxed);
}

const char *
backend_admin_name(const struct backend *b)
{
    int admin = atomic_load_explicit(&b->admin, memory_order_relaxed);

    if (admin == BACKEND_ADMIN_DISABLE) {
        return "disabled";
    }
    if (admin == BACKEND_ADMIN_DRAIN ||
        atomic_load_explicit(&b->proto_drain, memory_order_relaxed)) {
        return "drain";
    }
    return "ready";
}

void
backend_reason(struct backend *b, char *out, size_t size)
{
    static const char *const verbs[] = { "", "drained", "disabled" };
    const char *sep;
    size_t n = 0;
    int admin;

    if (size == 0) {
        return;
    }
    out[0] = '\0';
    pthread_mutex_lock(&b->check_lock);
    if (!atomic_load(&b->up)) {
        n = (size_t)snprintf(out, size, "%s", b->down_reason[0] != '\0'
                             ? b->down_reason : "down");
    }
    sep = n > 0 ? "; " : "";
    n = MQ_MIN(n, size - 1);
    admin = atomic_load(&b->admin);
    if (admin == BACKEND_ADMIN_DRAIN || admin == BACKEND_ADMIN_DISABLE) {
        if (b->admin_by[0] != '\0') {
            snprintf(out + n, size - n, "%s%s by admin (%s)", sep,
                     verbs[admin], b->admin_by);
        } else {
            snprintf(out + n, size - n, "%s%s by admin", sep, verbs[admin]);
        }
    } else if (atomic_load(&b->proto_drain)) {
        snprintf(out + n, size - n, "%slame duck mode", sep);
    }
    pthread_mutex_unlock(&b->check_lock);
}
