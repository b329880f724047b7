/*
 * lifetime.c: per-session timing policy: the protocol-derived idle timeout
 * and the jittered maximum duration.
 */
#include "mqlb/heartbeat.h"
#include "mqlb/lifetime.h"

uint64_t
lifetime_auto_idle_ms(const struct heartbeat_reader *r)
{
    if (r->result == HEARTBEAT_FOUND) {
        return heartbeat_timeout_ms(r);
    }
    return LIFETIME_AUTO_DEFAULT_MS;
}

uint64_t
lifetime_max_ms(uint64_t max_ms, uint64_t rnd)
{
    uint64_t spread = max_ms * LIFETIME_JITTER_PCT / 100;

    if (max_ms == 0) {
        return 0;
    }
    return max_ms + rnd % (spread + 1);
}
