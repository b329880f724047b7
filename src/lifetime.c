/*
 * lifetime.c: per-session timing policy: the protocol-derived idle timeout
 * and the jittered maximum duration.
 */
#include "mqlb/common.h"
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
lifetime_max_ms(uint64_t max_ms, uint64_t id, uint64_t start_ms)
{
    uint64_t spread = max_ms * LIFETIME_JITTER_PCT / 100;

    if (max_ms == 0) {
        return 0;
    }
    /* Mix the id before it meets the start: ids and start times of a
     * burst both count up, and id ^ start_ms repeats across the burst. */
    return max_ms + mq_mix64(mq_mix64(id) ^ start_ms) % (spread + 1);
}
