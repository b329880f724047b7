/*
 * admission.h: one ticket per session. A ticket holds one of the
 * process's max_connections slots and, where the pool limits it, one of
 * the client address's max_conns_per_source slots. Both are taken here
 * and given back here, once (nginx's peer get/free pairing): the listener
 * takes the ticket, the session that receives it gives it back at close.
 */
#ifndef MQLB_ADMISSION_H
#define MQLB_ADMISSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mqlb/net.h"

struct srclimit;

/* How often, at most, a full process says so in the log (ms). */
#define ADMISSION_FULL_LOG_MS   10000

/* The process-wide count of admitted sessions. */
struct admission {
    _Atomic unsigned    nlive;          /* tickets out now */
    _Atomic unsigned    peak;           /* most out at once since the
                                           last admission_peak_reset() */
    _Atomic uint64_t    nfull;          /* takes refused at max */
    _Atomic uint64_t    full_said_ms;   /* when the log last said so */
    unsigned            max;            /* max_connections that fit */
};

/* One session's right to exist. */
struct admission_ticket {
    struct admission   *adm;            /* NULL once returned */
    struct srclimit    *sources;        /* per-source slot held, or NULL */
    union net_peer      peer;           /* the client's address */
};

void admission_init(struct admission *a, unsigned max);

/*
 * Take one of <a>'s slots into <t> (peer unset, no source slot yet).
 * MQ_ERR if the process is at max: the caller leaves clients in the
 * backlog until a ticket comes back. Each refusal is counted, and a
 * warning says so at most every ADMISSION_FULL_LOG_MS.
 */
int admission_take(struct admission *a, struct admission_ticket *t);

/*
 * Add a slot of <t->peer> in <sources> (at most <max> per address) to
 * <t>. MQ_ERR if the address is at <max> or the table could not grow
 * (errno ENOMEM); <t> is unchanged then and still must be returned.
 */
int admission_take_source(struct admission_ticket *t,
                          struct srclimit *sources, unsigned max);

/* Give back everything <t> holds; a second call does nothing. */
void admission_return(struct admission_ticket *t);

/* Tickets out now (any thread). */
unsigned admission_nlive(struct admission *a);

/* Takes refused because the process was at max, since the start. */
uint64_t admission_nfull(struct admission *a);

/*
 * The most tickets out at once since the last call (or init), and start
 * a new period from the count now. A sampled nlive misses a burst that
 * comes and goes between two samples; this does not.
 */
unsigned admission_peak_reset(struct admission *a);

#endif /* MQLB_ADMISSION_H */
