/*
 * session.h: one client connection and its broker connection. Sessions
 * live on their worker's list and are only touched by that worker.
 */
#ifndef MQLB_SESSION_H
#define MQLB_SESSION_H

#include <sys/socket.h>

struct pool;
struct worker;
struct session;

/*
 * Start a session for the accepted <fd> from <ss> on pool <pool>; the
 * session now owns <fd> and takes a pool reference. With <tls> (the
 * listen address has 'tls') it first runs the TLS handshake with the
 * pool's certificates. Runs on <w>'s thread. Returns MQ_ERR (and closes
 * <fd>) on no memory.
 */
int session_create(struct worker *w, struct pool *pool, int fd,
                   const struct sockaddr_storage *ss, int tls);

/* Close <s> with <reason>; releases everything it holds and frees it. */
void session_close(struct session *s, const char *reason);

/* Close every session of <w> with <reason>. */
void session_close_all(struct worker *w, const char *reason);

/* Close the sessions of <w> whose backend went down, in pools that ask
 * for it (on_backend_down = close). */
void session_sweep_down(struct worker *w);

#endif /* MQLB_SESSION_H */
