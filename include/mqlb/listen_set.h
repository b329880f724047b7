/*
 * listen_set.h: the listening sockets each worker has open, by address,
 * kept from one generation to the next so that a reload reuses a socket
 * for an address it keeps and refuses no connect.
 */
#ifndef MQLB_LISTEN_SET_H
#define MQLB_LISTEN_SET_H

#include <stddef.h>

struct admission;
struct config_addr;
struct listen_set_fd;
struct listener;
struct pool;

struct listen_set {
    unsigned            nworkers;
    struct listen_set_fd **fds;         /* per worker: address and fd */
    size_t             *nfds;           /* per worker: how many */
};

/*
 * Make <nworkers> listener lists (<lists>, one per worker) for the
 * listen addresses of <pools>, taking tickets from <adm>, and describe
 * their sockets in <out>. A socket of <old> (may be NULL) with the same
 * address is reused. An address that cannot be bound is logged and
 * skipped, or fails the whole set if <strict> (start-up). MQ_ERR on
 * failure, with nothing left to free.
 */
int listen_set_build(struct listen_set *out, const struct listen_set *old,
                     struct pool *const *pools, size_t npools,
                     struct admission *adm, unsigned nworkers, int strict,
                     struct listener **lists);

/* Destroy lists made by listen_set_build that no worker took, closing
 * only the sockets that were not <old>'s. */
void listen_set_discard(struct listener **lists, unsigned nworkers,
                        const struct listen_set *old);

/* An empty set of <nworkers> workers with room for <cap> sockets each
 * (a takeover's inherited sockets). MQ_ERR on no memory. */
int listen_set_init(struct listen_set *s, unsigned nworkers, size_t cap);

/* Add socket <fd> for <a> to worker <w>'s list (within the room made by
 * listen_set_init). */
void listen_set_add(struct listen_set *s, unsigned w,
                    const struct config_addr *a, int fd);

/* Worker <w>'s sockets: how many, and the <i>th (its address in *<a>). */
size_t listen_set_count(const struct listen_set *s, unsigned w);
int listen_set_get(const struct listen_set *s, unsigned w, size_t i,
                   const struct config_addr **a);

/* Forget the inventory (the sockets belong to the listeners). */
void listen_set_deinit(struct listen_set *s);

#endif /* MQLB_LISTEN_SET_H */
