/*
 * nats_watch.h: one long-lived client connection to a NATS backend that
 * hears lame duck mode. nats-server (2.9) in lame duck mode refuses new
 * connections at once and announces it, with an INFO carrying
 * "ldm":true, only to the clients already connected whose CONNECT said
 * "protocol":1. A fresh check connection just sees "refused"; this one
 * connection hears the announcement. The checker (health.c) owns it.
 */
#ifndef MQLB_NATS_WATCH_H
#define MQLB_NATS_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>

struct nats_watch;

/* Called on the loop when the server announces lame duck mode. */
typedef void (*nats_watch_fn)(void *ctx);

/*
 * A watch of the server at <sa> (copied) on <loop>; idle until
 * nats_watch_start(). <on_ldm> is called with <ctx>. NULL on no memory.
 */
struct nats_watch *nats_watch_create(struct ev_loop *loop,
                                     const struct sockaddr *sa,
                                     socklen_t salen, nats_watch_fn on_ldm,
                                     void *ctx);

/*
 * Connect unless connected; the checker calls it before every check, so
 * a lost watch comes back within one check interval. A connect still in
 * progress from the last call is given up and tried again.
 */
void nats_watch_start(struct nats_watch *w);

/*
 * True while the connection is open and the server has said it is in
 * lame duck mode: it is shutting down but still serves its clients.
 */
bool nats_watch_in_ldm(const struct nats_watch *w);

/*
 * Log in as the pool's checks do: the PROXY header <pp> (<pplen> bytes,
 * 0 for none) first, and <user>/<password> (NULL: none) in the CONNECT.
 * Takes effect at the next connection. MQ_ERR if they do not fit.
 */
int nats_watch_set_login(struct nats_watch *w, const uint8_t *pp,
                         size_t pplen, const char *user,
                         const char *password);

/* Close the connection and free <w> (NULL is fine). */
void nats_watch_destroy(struct nats_watch *w);

#endif /* MQLB_NATS_WATCH_H */
