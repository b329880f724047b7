/*
 * srclimit.c: live sessions per client address (max_conns_per_source).
 *
 * The address hash picks one of SRCLIMIT_NSHARDS shards, each a small
 * open-addressing table (linear probing) under its own mutex: an accept
 * and a close touch one shard for a few dozen nanoseconds. An address
 * whose count drops to zero is removed at once with backward-shift
 * deletion (no tombstones), so a table holds only addresses with live
 * sessions and its size is bounded by max_connections.
 *
 * Addresses are hashed with SipHash-2-4 under a random key drawn when
 * the table is made, as SipHash-keyed tables in Python, Rust and Redis
 * do: a client cannot choose IPv6 sources that land in one probe run and
 * turn every accept into a long scan under the shard lock.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/net.h"
#include "mqlb/srclimit.h"

#define SRCLIMIT_NSHARDS    16      /* power of two */
#define SRCLIMIT_MIN_SLOTS  16      /* first allocation of a shard */

/* One address and its live sessions; count 0 marks a free slot. */
struct srclimit_entry {
    uint64_t            hash;           /* srclimit_hash of <addr> */
    uint32_t            count;          /* live sessions, 0 = free slot */
    uint8_t             addr[16];       /* v6, or v4-mapped v6 */
};

struct srclimit_shard {
    pthread_mutex_t     lock;           /* guards the members below */
    struct srclimit_entry *slots;       /* nslots entries, or NULL */
    size_t              nslots;         /* 0 or a power of two */
    size_t              nused;          /* slots with count > 0 */
};

struct srclimit {
    uint64_t            key[2];         /* SipHash key, random per table */
    struct srclimit_shard shards[SRCLIMIT_NSHARDS];
};

#define SRCLIMIT_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SRCLIMIT_SIPROUND(v0, v1, v2, v3)                                   \
    do {                                                                    \
        v0 += v1; v1 = SRCLIMIT_ROTL(v1, 13); v1 ^= v0;                     \
        v0 = SRCLIMIT_ROTL(v0, 32);                                         \
        v2 += v3; v3 = SRCLIMIT_ROTL(v3, 16); v3 ^= v2;                     \
        v0 += v3; v3 = SRCLIMIT_ROTL(v3, 21); v3 ^= v0;                     \
        v2 += v1; v1 = SRCLIMIT_ROTL(v1, 17); v1 ^= v2;                     \
        v2 = SRCLIMIT_ROTL(v2, 32);                                         \
    } while (0)

static uint64_t
srclimit_le64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

/* SipHash-2-4 of the 16-byte address <addr> under <t>'s key. */
static uint64_t
srclimit_hash(const struct srclimit *t, const uint8_t addr[16])
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ t->key[0];
    uint64_t v1 = 0x646f72616e646f6dULL ^ t->key[1];
    uint64_t v2 = 0x6c7967656e657261ULL ^ t->key[0];
    uint64_t v3 = 0x7465646279746573ULL ^ t->key[1];
    uint64_t m, b = (uint64_t)16 << 56;
    int i;

    for (i = 0; i < 2; i++) {
        m = srclimit_le64(addr + 8 * i);
        v3 ^= m;
        SRCLIMIT_SIPROUND(v0, v1, v2, v3);
        SRCLIMIT_SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    v3 ^= b;
    SRCLIMIT_SIPROUND(v0, v1, v2, v3);
    SRCLIMIT_SIPROUND(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    for (i = 0; i < 4; i++) {
        SRCLIMIT_SIPROUND(v0, v1, v2, v3);
    }
    return v0 ^ v1 ^ v2 ^ v3;
}

struct srclimit *
srclimit_create(void)
{
    struct srclimit *t;
    size_t i;

    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    if (getrandom(t->key, sizeof(t->key), GRND_NONBLOCK) !=
        (ssize_t)sizeof(t->key)) {
        /* No entropy yet (early boot): still unknown to a remote client. */
        t->key[0] = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)t;
        t->key[1] = (uint64_t)getpid() ^ (uint64_t)clock();
    }
    for (i = 0; i < SRCLIMIT_NSHARDS; i++) {
        pthread_mutex_init(&t->shards[i].lock, NULL);
    }
    return t;
}

void
srclimit_destroy(struct srclimit *t)
{
    size_t i;

    if (t == NULL) {
        return;
    }
    for (i = 0; i < SRCLIMIT_NSHARDS; i++) {
        pthread_mutex_destroy(&t->shards[i].lock);
        mq_free(t->shards[i].slots);
    }
    free(t);
}

static struct srclimit_shard *
srclimit_shard_of(struct srclimit *t, uint64_t hash)
{
    /* The top bits choose the shard, the low bits the slot. */
    return &t->shards[hash >> 60 & (SRCLIMIT_NSHARDS - 1)];
}

/* The slot holding <addr>, or the free slot where it would go. */
static struct srclimit_entry *
srclimit_find(struct srclimit_shard *sh, uint64_t hash, const uint8_t *addr)
{
    size_t mask = sh->nslots - 1, i;
    struct srclimit_entry *e;

    for (i = hash & mask;; i = (i + 1) & mask) {
        e = &sh->slots[i];
        if (e->count == 0 ||
            (e->hash == hash && memcmp(e->addr, addr, 16) == 0)) {
            return e;
        }
    }
}

/* Double <sh> (or make its first slots); MQ_ERR on no memory. */
static int
srclimit_grow(struct srclimit_shard *sh)
{
    struct srclimit_entry *old = sh->slots, *e;
    size_t oldn = sh->nslots, i;
    size_t n = oldn == 0 ? SRCLIMIT_MIN_SLOTS : oldn * 2;

    sh->slots = calloc(n, sizeof(*sh->slots));
    if (sh->slots == NULL) {
        sh->slots = old;
        errno = ENOMEM;
        return MQ_ERR;
    }
    sh->nslots = n;
    for (i = 0; i < oldn; i++) {
        if (old[i].count > 0) {
            e = srclimit_find(sh, old[i].hash, old[i].addr);
            *e = old[i];
        }
    }
    free(old);
    return MQ_OK;
}

/*
 * Empty slot <i> and pull later members of its probe run back into the
 * hole, so every entry stays reachable from its home slot without
 * tombstones (Knuth's algorithm R for linear probing).
 */
static void
srclimit_remove(struct srclimit_shard *sh, size_t i)
{
    size_t mask = sh->nslots - 1, j = i, home;

    for (;;) {
        j = (j + 1) & mask;
        if (sh->slots[j].count == 0) {
            break;
        }
        home = sh->slots[j].hash & mask;
        /* Move j into the hole unless its home lies cyclically in (i, j]. */
        if ((i <= j) ? (i < home && home <= j) : (i < home || home <= j)) {
            continue;
        }
        sh->slots[i] = sh->slots[j];
        i = j;
    }
    sh->slots[i].count = 0;
    sh->nused--;
}

int
srclimit_acquire(struct srclimit *t, const struct sockaddr *sa, unsigned max)
{
    struct srclimit_shard *sh;
    struct srclimit_entry *e;
    uint8_t addr[16];
    uint64_t hash;
    int rc = MQ_OK;

    if (!net_addr128(sa, addr)) {
        return MQ_OK;
    }
    hash = srclimit_hash(t, addr);
    sh = srclimit_shard_of(t, hash);
    pthread_mutex_lock(&sh->lock);
    e = sh->nslots > 0 ? srclimit_find(sh, hash, addr) : NULL;
    if ((e == NULL || e->count == 0) && (sh->nused + 1) * 2 > sh->nslots) {
        /* A new address: keep the load at most one half, so probe runs
         * stay short. */
        if (srclimit_grow(sh) != MQ_OK) {
            pthread_mutex_unlock(&sh->lock);
            return MQ_ERR;
        }
        e = srclimit_find(sh, hash, addr);
    }
    if (e->count == 0) {
        e->hash = hash;
        memcpy(e->addr, addr, sizeof(addr));
        e->count = 1;
        sh->nused++;
    } else if (e->count < max) {
        e->count++;
    } else {
        rc = MQ_ERR;
        errno = EBUSY;
    }
    pthread_mutex_unlock(&sh->lock);
    return rc;
}

void
srclimit_release(struct srclimit *t, const struct sockaddr *sa)
{
    struct srclimit_shard *sh;
    struct srclimit_entry *e;
    uint8_t addr[16];
    uint64_t hash;

    if (!net_addr128(sa, addr)) {
        return;
    }
    hash = srclimit_hash(t, addr);
    sh = srclimit_shard_of(t, hash);
    pthread_mutex_lock(&sh->lock);
    if (sh->nslots > 0) {
        e = srclimit_find(sh, hash, addr);
        ASSERT(e->count > 0);
        if (e->count > 1) {
            e->count--;
        } else if (e->count == 1) {
            srclimit_remove(sh, (size_t)(e - sh->slots));
        }
    }
    pthread_mutex_unlock(&sh->lock);
}

unsigned
srclimit_count(struct srclimit *t, const struct sockaddr *sa)
{
    struct srclimit_shard *sh;
    uint8_t addr[16];
    uint64_t hash;
    unsigned n = 0;

    if (!net_addr128(sa, addr)) {
        return 0;
    }
    hash = srclimit_hash(t, addr);
    sh = srclimit_shard_of(t, hash);
    pthread_mutex_lock(&sh->lock);
    if (sh->nslots > 0) {
        n = srclimit_find(sh, hash, addr)->count;
    }
    pthread_mutex_unlock(&sh->lock);
    return n;
}

unsigned
srclimit_naddrs(struct srclimit *t)
{
    unsigned n = 0;
    size_t i;

    for (i = 0; i < SRCLIMIT_NSHARDS; i++) {
        pthread_mutex_lock(&t->shards[i].lock);
        n += (unsigned)t->shards[i].nused;
        pthread_mutex_unlock(&t->shards[i].lock);
    }
    return n;
}

unsigned
srclimit_longest_probe(struct srclimit *t)
{
    struct srclimit_shard *sh;
    size_t i, j, dist, mask;
    unsigned worst = 0;

    for (i = 0; i < SRCLIMIT_NSHARDS; i++) {
        sh = &t->shards[i];
        pthread_mutex_lock(&sh->lock);
        mask = sh->nslots - 1;
        for (j = 0; j < sh->nslots; j++) {
            if (sh->slots[j].count == 0) {
                continue;
            }
            dist = (j - (sh->slots[j].hash & mask)) & mask;
            if (dist + 1 > worst) {
                worst = (unsigned)dist + 1;
            }
        }
        pthread_mutex_unlock(&sh->lock);
    }
    return worst;
}
