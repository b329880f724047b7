/*
 * srclimit.h: live sessions per client address, for max_conns_per_source.
 * One table per pool name, shared by every worker and kept across
 * reloads; sharded so that workers accepting at once rarely meet on a lock.
 */
#ifndef MQLB_SRCLIMIT_H
#define MQLB_SRCLIMIT_H

struct sockaddr;
struct srclimit;

/* An empty table; NULL on no memory. */
struct srclimit *srclimit_create(void);

/* Free <t> and every entry; no session may still be counted in it. */
void srclimit_destroy(struct srclimit *t);

/*
 * Count one more session from <sa> if that address holds fewer than
 * <max> (max > 0). IPv4 and v4-mapped IPv6 peers are one address; other
 * families are not counted and always pass. Returns MQ_OK if counted (a
 * srclimit_release() must follow), MQ_ERR if the address is at <max> or
 * the table could not grow (errno ENOMEM).
 */
int srclimit_acquire(struct srclimit *t, const struct sockaddr *sa,
                     unsigned max);

/* Give back one session of <sa> counted by srclimit_acquire(). */
void srclimit_release(struct srclimit *t, const struct sockaddr *sa);

/* Sessions <sa> holds now (for tests and diagnostics). */
unsigned srclimit_count(struct srclimit *t, const struct sockaddr *sa);

/* Distinct addresses holding at least one session. */
unsigned srclimit_naddrs(struct srclimit *t);

/* Slots the longest lookup visits (for tests: chains stay short). */
unsigned srclimit_longest_probe(struct srclimit *t);

#endif /* MQLB_SRCLIMIT_H */
