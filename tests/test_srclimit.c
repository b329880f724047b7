/*
 * test_srclimit.c: sessions per client address (max_conns_per_source):
 * the limit per address, v4 and v4-mapped v6 as one address, removal that
 * keeps every other address reachable (checked against a plain model
 * through thousands of random steps), and many threads at once.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <criterion/criterion.h>

#include "mqlb/common.h"
#include "mqlb/lb.h"
#include "mqlb/srclimit.h"

/* A peer address (v4 or v6 text) as accept() would give it. */
static const struct sockaddr *
peer(struct sockaddr_storage *ss, const char *text, unsigned port)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
    } else {
        cr_assert_eq(inet_pton(AF_INET6, text, &s6->sin6_addr), 1, "%s", text);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
    }
    return (const struct sockaddr *)ss;
}

/* Address number <i> of a synthetic v4 or v6 population. */
static const struct sockaddr *
peer_n(struct sockaddr_storage *ss, unsigned i)
{
    char text[64];

    if (i % 2 == 0) {
        snprintf(text, sizeof(text), "10.%u.%u.%u", (i >> 16) & 255,
                 (i >> 8) & 255, i & 255);
    } else {
        snprintf(text, sizeof(text), "2001:db8::%x:%x", i >> 16, i & 0xffff);
    }
    return peer(ss, text, 1000 + i % 50000);
}

Test(srclimit, limit_per_address_and_others_unaffected)
{
    struct srclimit *t = srclimit_create();
    struct sockaddr_storage a, b;
    int i;

    cr_assert_not_null(t);
    peer(&a, "192.0.2.1", 40000);
    peer(&b, "192.0.2.2", 40001);
    for (i = 0; i < 3; i++) {
        cr_expect_eq(srclimit_acquire(t, (struct sockaddr *)&a, 3), MQ_OK);
    }
    cr_expect_eq(srclimit_acquire(t, (struct sockaddr *)&a, 3), MQ_ERR);
    cr_expect_eq(srclimit_count(t, (struct sockaddr *)&a), 3);
    /* Another address has its own share. */
    cr_expect_eq(srclimit_acquire(t, (struct sockaddr *)&b, 3), MQ_OK);
    cr_expect_eq(srclimit_count(t, (struct sockaddr *)&b), 1);
    cr_expect_eq(srclimit_naddrs(t), 2);
    /* One session ends: the address may connect once more. */
    srclimit_release(t, (struct sockaddr *)&a);
    cr_expect_eq(srclimit_count(t, (struct sockaddr *)&a), 2);
    cr_expect_eq(srclimit_acquire(t, (struct sockaddr *)&a, 3), MQ_OK);
    cr_expect_eq(srclimit_acquire(t, (struct sockaddr *)&a, 3), MQ_ERR);
    srclimit_destroy(t);
}

Test(srclimit, port_does_not_matter_and_empty_address_is_forgotten)
{
    struct srclimit *t = srclimit_create();
    struct sockaddr_storage a1, a2;

    peer(&a1, "198.51.100.7", 1111);
    peer(&a2, "198.51.100.7", 2222);
    cr_expect_eq(srclimit_acquire(t, (struct sockaddr *)&a1, 1), MQ_OK);
    cr_expect_eq(srclimit_acquire(t, (struct sockaddr *)&a2, 1), MQ_ERR);
    srclimit_release(t, (struct sockaddr *)&a2);
    cr_expect_eq(srclimit_count(t, (struct sockaddr *)&a1), 0);
    cr_expect_eq(srclimit_naddrs(t), 0);
    cr_expect_eq(srclimit_acquire(t, (struct sockaddr *)&a2, 1), MQ_OK);
    srclimit_destroy(t);
}

Test(srclimit, v4_and_v4_mapped_v6_are_one_address)
{
    struct srclimit *t = srclimit_create();
    struct sockaddr_storage v4, mapped, v6;

    peer(&v4, "203.0.113.5", 1);
    peer(&mapped, "::ffff:203.0.113.5", 2);
    peer(&v6, "2001:db8::5", 3);
    cr_expect_eq(srclimit_acquire(t, (struct sockaddr *)&v4, 2), MQ_OK);
    cr_expect_eq(srclimit_acquire(t, (struct sockaddr *)&mapped, 2), MQ_OK);
    cr_expect_eq(srclimit_acquire(t, (struct sockaddr *)&v4, 2), MQ_ERR);
    cr_expect_eq(srclimit_acquire(t, (struct sockaddr *)&v6, 2), MQ_OK);
    cr_expect_eq(srclimit_count(t, (struct sockaddr *)&mapped), 2);
    srclimit_destroy(t);
}

Test(srclimit, other_families_always_pass_uncounted)
{
    struct srclimit *t = srclimit_create();
    struct sockaddr_un un;

    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    cr_expect_eq(srclimit_acquire(t, (struct sockaddr *)&un, 1), MQ_OK);
    cr_expect_eq(srclimit_acquire(t, (struct sockaddr *)&un, 1), MQ_OK);
    srclimit_release(t, (struct sockaddr *)&un);
    cr_expect_eq(srclimit_naddrs(t), 0);
    srclimit_destroy(t);
}

Test(srclimit, release_of_unknown_address_is_harmless)
{
    struct srclimit *t = srclimit_create();
    struct sockaddr_storage a, b;

    peer(&a, "192.0.2.1", 1);
    peer(&b, "192.0.2.2", 1);
    srclimit_release(t, (struct sockaddr *)&a);     /* empty table */
    cr_expect_eq(srclimit_acquire(t, (struct sockaddr *)&b, 1), MQ_OK);
    cr_expect_eq(srclimit_naddrs(t), 1);
    srclimit_destroy(t);
}

/*
 * Thousands of addresses in, random ones out: the table must agree with
 * a plain array after every step, which catches a removal that breaks
 * another address's probe run (it would read as 0 and admit too many).
 */
Test(srclimit, random_steps_agree_with_a_model)
{
    enum { NADDR = 3000, STEPS = 200000, MAX = 3 };
    static unsigned model[NADDR];
    struct srclimit *t = srclimit_create();
    struct sockaddr_storage ss;
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    unsigned i, k, naddrs = 0;
    int rc;

    memset(model, 0, sizeof(model));
    for (i = 0; i < STEPS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* Skewed: a few hundred hot addresses, a long tail of others. */
        k = (unsigned)((x >> 8) % ((x & 1) ? 300 : NADDR));
        peer_n(&ss, k);
        if ((x >> 40) % 100 < 55) {
            rc = srclimit_acquire(t, (struct sockaddr *)&ss, MAX);
            cr_assert_eq(rc, model[k] < MAX ? MQ_OK : MQ_ERR,
                         "step %u addr %u model %u", i, k, model[k]);
            if (rc == MQ_OK) {
                naddrs += model[k] == 0;
                model[k]++;
            }
        } else if (model[k] > 0) {
            srclimit_release(t, (struct sockaddr *)&ss);
            model[k]--;
            naddrs -= model[k] == 0;
        }
        if (i % 997 == 0) {
            cr_assert_eq(srclimit_naddrs(t), naddrs, "step %u", i);
        }
    }
    for (k = 0; k < NADDR; k++) {
        cr_assert_eq(srclimit_count(t, peer_n(&ss, k)), model[k], "addr %u",
                     k);
    }
    /* Everything out: the table is empty again. */
    for (k = 0; k < NADDR; k++) {
        while (model[k] > 0) {
            srclimit_release(t, peer_n(&ss, k));
            model[k]--;
        }
    }
    cr_expect_eq(srclimit_naddrs(t), 0);
    srclimit_destroy(t);
}

/* Workers accept and close at once: the counts must not drift. */
struct srclimit_hammer {
    struct srclimit    *t;
    unsigned            seed;
    unsigned            refused;
};

static void *
srclimit_hammer_run(void *arg)
{
    struct srclimit_hammer *h = arg;
    struct sockaddr_storage ss;
    unsigned i, k;

    for (i = 0; i < 50000; i++) {
        k = (h->seed + i * 7) % 64;
        peer_n(&ss, k);
        if (srclimit_acquire(h->t, (struct sockaddr *)&ss, 2) == MQ_OK) {
            srclimit_release(h->t, (struct sockaddr *)&ss);
        } else {
            h->refused++;
        }
    }
    return NULL;
}

Test(srclimit, threads_leave_no_count_behind)
{
    struct srclimit_hammer h[4];
    pthread_t th[4];
    struct sockaddr_storage ss;
    unsigned i;

    h[0].t = srclimit_create();
    for (i = 0; i < 4; i++) {
        h[i].t = h[0].t;
        h[i].seed = i * 16;
        h[i].refused = 0;
        cr_assert_eq(pthread_create(&th[i], NULL, srclimit_hammer_run, &h[i]),
                     0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    cr_expect_eq(srclimit_naddrs(h[0].t), 0);
    for (i = 0; i < 64; i++) {
        cr_expect_eq(srclimit_count(h[0].t, peer_n(&ss, i)), 0);
    }
    srclimit_destroy(h[0].t);
}

/*
 * Issue 13: the sources an attacker would pick. With the public,
 * unkeyed lb_hash, 64 IPv6 sources chosen to share shard and home slot
 * make one probe run of 64; the table's own random key scatters them.
 */
Test(srclimit, chosen_ipv6_sources_do_not_build_a_long_chain)
{
    struct srclimit *t = srclimit_create();
    struct sockaddr_storage ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    uint64_t h, want = 0;
    unsigned found = 0, i;

    cr_assert_not_null(t);
    for (i = 0; found < 64 && i < 10000000; i++) {
        memset(&ss, 0, sizeof(ss));
        s6->sin6_family = AF_INET6;
        s6->sin6_addr.s6_addr[0] = 0x20;
        s6->sin6_addr.s6_addr[1] = 0x01;
        memcpy(&s6->sin6_addr.s6_addr[12], &i, sizeof(i));
        h = lb_hash(&s6->sin6_addr, 16);
        /* shard: top 4 bits; home slot in a 128-slot shard: low 7 */
        if (found == 0) {
            want = h & 0xf00000000000007fULL;
        } else if ((h & 0xf00000000000007fULL) != want) {
            continue;
        }
        cr_assert_eq(srclimit_acquire(t, (struct sockaddr *)&ss, 5), MQ_OK);
        found++;
    }
    cr_assert_eq(found, 64);
    cr_assert_lt(srclimit_longest_probe(t), 16, "longest probe %u",
                 srclimit_longest_probe(t));
    srclimit_destroy(t);
}
