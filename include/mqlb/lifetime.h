/*
 * lifetime.h: how long one session may live: its idle timeout under
 * idle_timeout = auto (from the keepalive its client announced) and its
 * max_session_duration deadline, spread by jitter. Pure functions.
 */
#ifndef MQLB_LIFETIME_H
#define MQLB_LIFETIME_H

#include <stdint.h>

struct heartbeat_reader;

/* idle_timeout = auto for a protocol that says nothing: one hour. */
#define LIFETIME_AUTO_DEFAULT_MS    3600000ULL

/* max_session_duration is stretched by up to this percentage at random. */
#define LIFETIME_JITTER_PCT         10

/*
 * The idle timeout in ms (0 = never) for a session whose client stream
 * was read by <r>: the protocol's rule once the reader found the
 * keepalive, LIFETIME_AUTO_DEFAULT_MS when it cannot.
 */
uint64_t lifetime_auto_idle_ms(const struct heartbeat_reader *r);

/*
 * The lifetime of a session under max_session_duration = <max_ms>: <max_ms>
 * plus a jitter of 0..10 % of it drawn from the session's <id> and
 * <start_ms> (so it is fixed for the session and moves with it on a
 * takeover); 0 if <max_ms> is 0 (off).
 */
uint64_t lifetime_max_ms(uint64_t max_ms, uint64_t id, uint64_t start_ms);

#endif /* MQLB_LIFETIME_H */
