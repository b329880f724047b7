/*
 * test_lifetime.c: idle_timeout = auto per protocol, and the jitter of
 * max_session_duration.
 */
#include <criterion/criterion.h>

#include "mqlb/heartbeat.h"
#include "mqlb/lifetime.h"

static const uint8_t lt_mqtt_ka2[] = {
    0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x02,
    0x00, 0x00,
};

static const uint8_t lt_mqtt_ka0[] = {
    0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x00,
    0x00, 0x00,
};

Test(lifetime, auto_idle_follows_the_protocol)
{
    struct heartbeat_reader r;

    heartbeat_init(&r);
    heartbeat_feed(&r, lt_mqtt_ka2, sizeof(lt_mqtt_ka2));
    cr_assert_eq(lifetime_auto_idle_ms(&r), 4000);
    heartbeat_init(&r);
    heartbeat_feed(&r, lt_mqtt_ka0, sizeof(lt_mqtt_ka0));
    cr_assert_eq(lifetime_auto_idle_ms(&r), 0);
    heartbeat_init(&r);
    heartbeat_feed(&r, (const uint8_t *)"*1\r\n$4\r\nPING\r\n", 14);
    cr_assert_eq(lifetime_auto_idle_ms(&r), 3600000);
    /* Nothing read yet: the default until the protocol says otherwise. */
    heartbeat_init(&r);
    cr_assert_eq(lifetime_auto_idle_ms(&r), 3600000);
}

Test(lifetime, max_duration_off_is_zero)
{
    cr_assert_eq(lifetime_max_ms(0, 12345, 678), 0);
}

Test(lifetime, jitter_stays_within_ten_percent_and_spreads)
{
    unsigned buckets[10] = { 0 };
    uint64_t v, i;

    for (i = 0; i < 10000; i++) {
        v = lifetime_max_ms(3000, i, 1000000 + i / 3);
        cr_assert_geq(v, 3000);
        cr_assert_leq(v, 3300);
        buckets[v == 3300 ? 9 : (v - 3000) / 30]++;
    }
    /* Uniform-ish: each 30 ms tenth holds between 5 % and 15 %. */
    for (i = 0; i < 10; i++) {
        cr_assert_geq(buckets[i], 500, "bucket %lu", (unsigned long)i);
        cr_assert_leq(buckets[i], 1500, "bucket %lu", (unsigned long)i);
    }
}

/* A burst: ids count up and so does the clock. id ^ start_ms gave the
 * same jitter to pairs of sessions (the clumps a CI run failed on). */
Test(lifetime, a_burst_of_sessions_gets_distinct_jitters)
{
    uint64_t seen[30], v;
    unsigned i, j, dup = 0, per_ms;

    for (per_ms = 1; per_ms <= 4; per_ms++) {
        dup = 0;
        for (i = 0; i < 30; i++) {
            v = lifetime_max_ms(3000, 100 + i, 5000000 + i / per_ms);
            for (j = 0; j < i; j++) {
                dup += seen[j] == v;
            }
            seen[i] = v;
        }
        /* 30 draws from 301 values: about 1.4 equal pairs by chance */
        cr_assert_leq(dup, 5, "%u equal jitters at %u sessions/ms", dup, per_ms);
    }
}
