/*
 * listener.h: one listening socket of one worker, for one pool address.
 * Admission happens here, before any session memory is taken (redis'
 * acceptCommonHandler): a ticket (admission.h) for the process-wide
 * limit and the client's address, and the allow list. An admitted client
 * goes to the accept hook its owner installed; the listener knows no
 * session.
 */
#ifndef MQLB_LISTENER_H
#define MQLB_LISTENER_H

#include <ev.h>

#include "mqlb/config.h"

struct admission;
struct admission_ticket;
struct pool;

/*
 * The owner's hooks. on_accept takes <fd> and the ticket <t> (and must
 * give both back if it cannot use them); on_full is called when the
 * process is at max_connections or out of descriptors, so the owner
 * stops accepting for a while.
 */
struct listener;
typedef void (*listener_accept_fn)(void *ctx, struct listener *l, int fd,
                                   struct admission_ticket *t);
typedef void (*listener_full_fn)(void *ctx);

struct listener {
    ev_io               io;             /* accept watcher; first member */
    struct listener    *next;           /* owner's list */
    struct ev_loop     *loop;           /* set by listener_attach */
    listener_accept_fn  on_accept;      /* set by listener_attach */
    listener_full_fn    on_full;
    void               *ctx;            /* for the hooks */
    struct admission   *adm;            /* tickets come from here */
    struct pool        *pool;           /* one reference; the first pool
                                           to declare the address */
    struct pool       **route;          /* every pool on the address, in
                                           file order ([0] is <pool>), one
                                           reference each */
    size_t              nroute;
    unsigned            sni:1;          /* pools chosen by TLS server name */
    struct config_addr  addr;           /* copy of the listen address */
    int                 fd;
};

/*
 * A listener for <addr> serving <pool> (takes a pool reference), taking
 * tickets from <adm>. With <fd> >= 0 that socket is reused (reload),
 * else a new one is bound. NULL with <err> on failure.
 */
struct listener *listener_create(const struct config_addr *addr,
                                 struct pool *pool, struct admission *adm,
                                 int fd, char *err);
/*
 * Another pool, <pool>, on <l>'s address (sni = ... routing): added to
 * <l>'s route (a reference taken). MQ_ERR on no memory.
 */
int listener_add_route(struct listener *l, struct pool *pool);

/* Give <l> to an owner: its loop and its hooks. Not started yet. */
void listener_attach(struct listener *l, struct ev_loop *loop,
                     listener_accept_fn on_accept, listener_full_fn on_full,
                     void *ctx);
/* Start or stop accepting (attached listeners only). */
void listener_start(struct listener *l);
void listener_stop(struct listener *l);
/* Stop, close the fd unless <keep_fd>, drop the pool, free. */
void listener_destroy(struct listener *l, int keep_fd);

#endif /* MQLB_LISTENER_H */
