/*
 * lb_maglev.c: consistent hashing with Maglev lookup tables (Eisenbud et
 * al., "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI
 * 2016, section 3.4), weighted, for the source and mqtt-client-id policies.
 *
 * Every backend gets a permutation of the M table slots from two hashes of
 * its name: offset = h1 % M, skip = h2 % (M - 1) + 1, slot j = (offset +
 * j * skip) % M. Backends take turns claiming their next free preferred
 * slot until the table is full; a backend of weight w takes a turn only
 * while its claims stay proportional to w / max weight (Envoy's weighted
 * variant). M is prime, so every permutation visits every slot. Nothing
 * depends on memory addresses, pool order or randomness: two processes
 * with the same backend names and weights build the same table.
 *
 * Plain Maglev rebuilt over the usable backends moves a few of the other
 * backends' keys when one leaves (the paper's "minimal disruption" is
 * approximate). To move ONLY the keys of the backend that left, the
 * table is built in two layers:
 *
 *   home  = Maglev over every primary backend with weight > 0, up or not
 *   spare = Maglev over the usable backends only
 *   table[s] = home[s] if home[s] is usable, else spare[s]
 *
 * A usable backend keeps every home slot it owns whatever happens to the
 * others; only the slots of unusable backends are spread (by weight, via
 * the spare layer) over the rest, and they return when it comes back.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/lb.h"

#define LB_MAGLEV_MIN_SIZE  65537u      /* the paper's small table, prime */
#define LB_MAGLEV_PER_BACK  100u        /* at least this many slots each */
#define LB_MAGLEV_EMPTY     UINT32_MAX  /* slot not (yet) claimed */

/* One backend while a layer is populated. */
struct lb_maglev_entry {
    const char     *name;       /* the backend's name: orders entries */
    uint32_t        index;      /* the backend's position in its pool */
    uint32_t        weight;     /* > 0, read once per rebuild */
    uint32_t        next;       /* next slot of its permutation to try */
    uint32_t        skip;       /* step of its permutation, 1..M-1 */
    uint64_t        target;     /* weighted turns: claim when due */
};

/* Per-pool state. Rebuilt from scratch by every rebuild(). */
struct lb_maglev {
    uint32_t       *table;      /* M slots of pool indexes; NULL if empty */
    uint32_t       *spare;      /* scratch layer, M slots */
    uint32_t       *home;       /* the home layer, M slots; kept for picks
                                   between a state change and the rebuild
                                   (NULL: no primary) */
    uint32_t        size;       /* M, prime; 0 when no backend is usable */
    size_t          ncap;       /* entries of <entries>, <stamp>, <pos> */
    struct lb_maglev_entry *entries;    /* scratch for populating */
    uint32_t       *stamp;      /* by pool index: <gen> if a candidate */
    uint32_t       *pos;        /* by pool index: its position in cands */
    uint32_t        gen;        /* generation of the current pick */
    bool            has_home;   /* <home> holds a layer */
    unsigned        cursor;     /* rotation for picks without a key */
};

/* FNV-1a 64 of the NUL-terminated <s>, from offset basis <basis>. */
static uint64_t
lb_maglev_fnv1a(const char *s, uint64_t basis)
{
    uint64_t h = basis;

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The two independent hashes of a backend name (offset and skip). */
static uint64_t
lb_maglev_h1(const char *name)
{
    return mq_mix64(lb_maglev_fnv1a(name, 0xcbf29ce484222325ULL));
}

static uint64_t
lb_maglev_h2(const char *name)
{
    return mq_mix64(lb_maglev_fnv1a(name, 0x84222325cbf29ce4ULL) ^
                         0x9e3779b97f4a7c15ULL);
}

static bool
lb_maglev_is_prime(uint32_t n)
{
    uint32_t d;

    if (n < 2) {
        return false;
    }
    for (d = 2; (uint64_t)d * d <= n; d++) {
        if (n % d == 0) {
            return false;
        }
    }
    return true;
}

/* The table size for <n> backends: the smallest prime >= max(65537, 100n). */
static uint32_t
lb_maglev_size(size_t n)
{
    uint32_t m;

    m = LB_MAGLEV_MIN_SIZE;
    if (n > m / LB_MAGLEV_PER_BACK) {
        m = (uint32_t)(n * LB_MAGLEV_PER_BACK);
    }
    while (!lb_maglev_is_prime(m)) {
        m++;
    }
    return m;
}

/* qsort order of entries: by name, so pool order does not matter. */
static int
lb_maglev_entry_cmp(const void *a, const void *b)
{
    const struct lb_maglev_entry *ea = a, *eb = b;

    return strcmp(ea->name, eb->name);
}

/*
 * Fill the <m> slots of <table> from the <n> <entries> (sorted, weights
 * > 0). Every slot is claimed when this returns (n >= 1).
 */
static void
lb_maglev_populate(uint32_t *table, uint32_t m, struct lb_maglev_entry *e,
                   size_t n)
{
    uint64_t round, wmax;
    uint32_t filled, slot;
    size_t i;

    wmax = 0;
    for (i = 0; i < n; i++) {
        e[i].next = (uint32_t)(lb_maglev_h1(e[i].name) % m);
        e[i].skip = (uint32_t)(lb_maglev_h2(e[i].name) % (m - 1)) + 1;
        e[i].target = 0;
        wmax = MQ_MAX(wmax, e[i].weight);
    }
    for (slot = 0; slot < m; slot++) {
        table[slot] = LB_MAGLEV_EMPTY;
    }

    filled = 0;
    for (round = 1; filled < m; round++) {
        for (i = 0; i < n && filled < m; i++) {
            /*
             * The heaviest backends claim every round; one of half their
             * weight every other round, and so on.
             */
            if (round * e[i].weight < e[i].target) {
                continue;
            }
            e[i].target += wmax;

            slot = e[i].next;
            while (table[slot] != LB_MAGLEV_EMPTY) {
                slot += e[i].skip;
                if (slot >= m) {
                    slot -= m;
                }
            }
            table[slot] = e[i].index;
            filled++;

            slot += e[i].skip;
            if (slot >= m) {
                slot -= m;
            }
            e[i].next = slot;
        }
    }
}

/* Grow the per-backend arrays of <mg> to <n> entries. */
static int
lb_maglev_reserve(struct lb_maglev *mg, size_t n)
{
    struct lb_maglev_entry *entries;
    uint32_t *stamp, *pos;

    if (n <= mg->ncap) {
        return MQ_OK;
    }
    entries = calloc(n, sizeof(*entries));
    stamp = calloc(n, sizeof(*stamp));
    pos = calloc(n, sizeof(*pos));
    if (entries == NULL || stamp == NULL || pos == NULL) {
        free(entries);
        free(stamp);
        free(pos);
        return MQ_ERR;
    }
    mq_free(mg->entries);
    mq_free(mg->stamp);
    mq_free(mg->pos);
    mg->entries = entries;
    mg->stamp = stamp;
    mg->pos = pos;
    mg->ncap = n;
    mg->gen = 0;
    return MQ_OK;
}

/* Drop the tables of <mg>: picks fall back to key % ncands. */
static void
lb_maglev_clear(struct lb_maglev *mg)
{
    mq_free(mg->table);
    mq_free(mg->spare);
    mq_free(mg->home);
    mg->size = 0;
}

static void *
lb_maglev_create(size_t nbackends)
{
    struct lb_maglev *mg;

    mg = calloc(1, sizeof(*mg));
    if (mg == NULL) {
        return NULL;
    }
    if (lb_maglev_reserve(mg, MQ_MAX(nbackends, 1)) != MQ_OK) {
        free(mg);
        return NULL;
    }
    return mg;
}

static void
lb_maglev_destroy(void *st)
{
    struct lb_maglev *mg = st;

    if (mg == NULL) {
        return;
    }
    lb_maglev_clear(mg);
    mq_free(mg->entries);
    mq_free(mg->stamp);
    mq_free(mg->pos);
    free(mg);
}

/*
 * Collect into <mg->entries> the backends of <all> (n of them) that have
 * a weight and, if <usable> is not NULL, are usable. With <primary_only>,
 * backup backends are left out. Returns how many, sorted by name.
 */
static size_t
lb_maglev_collect(struct lb_maglev *mg, struct backend *const *all,
                  const bool *usable, size_t n, bool primary_only)
{
    struct lb_maglev_entry *e;
    unsigned weight;
    size_t i, k;

    k = 0;
    for (i = 0; i < n; i++) {
        if (all[i] == NULL || (usable != NULL && !usable[i])) {
            continue;
        }
        if (primary_only && all[i]->backup) {
            continue;
        }
        if (atomic_load_explicit(&all[i]->leaving, memory_order_relaxed)) {
            continue;   /* removed, draining: its home slots go now */
        }
        weight = atomic_load_explicit(&all[i]->weight, memory_order_relaxed);
        if (weight == 0) {
            continue;
        }
        e = &mg->entries[k++];
        e->name = all[i]->name;
        e->index = (uint32_t)i;
        e->weight = weight;
    }
    qsort(mg->entries, k, sizeof(*mg->entries), lb_maglev_entry_cmp);
    return k;
}

/*
 * Rebuild the lookup table of <st> from <all> (n backends, pool order) and
 * <usable>. Deterministic: the result depends only on the names, weights,
 * backup flags and usable flags. On no memory the table is dropped and
 * picks fall back to key % ncands until the next rebuild succeeds.
 */
static void
lb_maglev_rebuild(void *st, struct backend *const *all, const bool *usable,
                  size_t n)
{
    struct lb_maglev *mg = st;
    uint32_t m, s, owner;
    size_t i, nhome, nspare, nidx;
    bool any_primary;

    /* Arrays by pool index, which is the position in <all>. */
    nidx = MQ_MAX(n, 1);
    if (lb_maglev_reserve(mg, nidx) != MQ_OK) {
        lb_maglev_clear(mg);
        return;
    }

    m = lb_maglev_size(n);
    if (mg->size != m || mg->table == NULL) {
        lb_maglev_clear(mg);
        mg->table = malloc(m * sizeof(*mg->table));
        mg->spare = malloc(m * sizeof(*mg->spare));
        mg->home = malloc(m * sizeof(*mg->home));
        if (mg->table == NULL || mg->spare == NULL || mg->home == NULL) {
            lb_maglev_clear(mg);
            return;
        }
        mg->size = m;
    }

    /* The spare layer: only usable backends. None: no table at all. */
    nspare = lb_maglev_collect(mg, all, usable, n, false);
    if (nspare == 0) {
        lb_maglev_clear(mg);
        return;
    }
    lb_maglev_populate(mg->spare, m, mg->entries, nspare);

    /*
     * The home layer: every primary whatever its state, so a usable
     * backend's slots never depend on the others' states. A pool of
     * backups only uses them all.
     */
    any_primary = false;
    for (i = 0; i < n; i++) {
        if (all[i] != NULL && !all[i]->backup) {
            any_primary = true;
            break;
        }
    }
    nhome = lb_maglev_collect(mg, all, NULL, n, any_primary);
    if (nhome == 0) {
        memcpy(mg->table, mg->spare, m * sizeof(*mg->table));
        mg->has_home = false;
        return;
    }
    lb_maglev_populate(mg->table, m, mg->entries, nhome);
    memcpy(mg->home, mg->table, m * sizeof(*mg->home));
    mg->has_home = true;

    /* Which pool indexes are usable: reuse <stamp> as a flag array. */
    for (i = 0; i < mg->ncap; i++) {
        mg->stamp[i] = 0;
    }
    for (i = 0; i < n; i++) {
        if (all[i] != NULL && usable[i]) {
            mg->stamp[i] = 1;
        }
    }
    for (s = 0; s < m; s++) {
        owner = mg->table[s];
        if (mg->stamp[owner] == 0) {
            mg->table[s] = mg->spare[s];
        }
    }
    /* <stamp> is pick's again: restart its generations. */
    for (i = 0; i < mg->ncap; i++) {
        mg->stamp[i] = 0;
    }
    mg->gen = 0;
}

/*
 * Slow start: a backend whose weight is still ramping up takes back only
 * the share of its keys that its ramp allows, chosen by the key itself so
 * that a key, once back, stays back. The others walk on to their next
 * table entry, as if the backend were still away.
 */
static bool
lb_maglev_admits(const struct lb_cand *c, uint64_t key)
{
    unsigned full = atomic_load_explicit(&c->b->weight, memory_order_relaxed);

    if (c->weight >= full || full == 0) {
        return true;
    }
    return ((key * 0x9e3779b97f4a7c15ULL) >> 40) % full < c->weight;
}

/*
 * The candidate of <p> for slot <key> % M. When that backend is not a
 * candidate (full, tried, or its state changed since the last rebuild),
 * the following slots are tried in order, so the keys of a full backend
 * spread over the others as its home slots' neighbours say; at most M
 * slots, then key % ncands. Called under the pool lock.
 */
static size_t
lb_maglev_pick(void *st, const struct lb_pick *p)
{
    struct lb_maglev *mg = st;
    uint32_t s, k, idx;
    uint64_t key;
    size_t i;

    key = p->key;
    if (!p->has_key) {
        /* Not hashed: spread by rotation rather than pile on one slot. */
        key = mg->cursor++;
    }
    if (mg->size == 0) {
        return (size_t)(key % p->ncands);
    }

    /* Mark the candidates by pool index: O(ncands), no clearing needed. */
    mg->gen++;
    if (mg->gen == 0) {
        memset(mg->stamp, 0, mg->ncap * sizeof(*mg->stamp));
        mg->gen = 1;
    }
    for (i = 0; i < p->ncands; i++) {
        idx = p->cands[i].index;
        if (idx < mg->ncap && lb_maglev_admits(&p->cands[i], key)) {
            mg->stamp[idx] = mg->gen;
            mg->pos[idx] = (uint32_t)i;
        }
    }

    s = (uint32_t)(key % mg->size);
    /*
     * The slot's home owner first: when it may take the key it is what
     * the table says (or will say once rebuilt: a backend that just came
     * back has its keys back at once, before the rebuild the pool asked
     * for off the workers' path has run).
     */
    if (mg->has_home) {
        idx = mg->home[s];
        if (idx < mg->ncap && mg->stamp[idx] == mg->gen) {
            return mg->pos[idx];
        }
    }
    for (k = 0; k < mg->size; k++) {
        idx = mg->table[s];
        if (idx < mg->ncap && mg->stamp[idx] == mg->gen) {
            return mg->pos[idx];
        }
        if (++s == mg->size) {
            s = 0;
        }
    }
    return (size_t)(key % p->ncands);
}

/* The home layer's owner of <key>'s slot, up or not. */
static bool
lb_maglev_is_home(const void *st, uint64_t key, size_t index)
{
    const struct lb_maglev *mg = st;

    return mg->size > 0 && mg->has_home && mg->home[key % mg->size] == index;
}

const struct lb_ops lb_maglev_ops = {
    .name = "maglev",
    .create = lb_maglev_create,
    .destroy = lb_maglev_destroy,
    .rebuild = lb_maglev_rebuild,
    .heavy = 1,
    .pick = lb_maglev_pick,
    .is_home = lb_maglev_is_home,
};
