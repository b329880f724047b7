/*
 * fdpass.h: whole messages over a blocking Unix stream socket, with
 * descriptors beside them (SCM_RIGHTS). The takeover moves listening
 * sockets and sessions this way; the kernel keeps every socket open
 * while its descriptor is in flight, so nothing is reset on the way.
 */
#ifndef MQLB_FDPASS_H
#define MQLB_FDPASS_H

#include <stddef.h>

#define FDPASS_MAX_FDS  250     /* descriptors per message, at most
                                   (the kernel takes 253) */

/*
 * Send all <len> bytes of <buf>, with the <nfds> descriptors of <fds>
 * attached to the first byte (the caller keeps its copies). MQ_OK, or
 * MQ_ERR with errno (EAGAIN: the socket's send timeout ran out).
 */
int fdpass_send(int sock, const void *buf, size_t len, const int *fds,
                size_t nfds);

/*
 * Receive exactly <len> bytes into <buf>. Descriptors that arrive with
 * them are appended to <fds> at *<nfds> (close-on-exec), up to <maxfds>;
 * the caller owns them, also when MQ_ERR is returned. MQ_ERR with errno:
 * ECONNRESET when the peer closed first, EPROTO when more descriptors
 * came than fit (the extra ones are closed), EAGAIN on a timeout.
 */
int fdpass_recv(int sock, void *buf, size_t len, int *fds, size_t maxfds,
                size_t *nfds);

/*
 * Receive what is there, up to <len> bytes (at least one; blocks until
 * then), with any descriptors that come appended as by fdpass_recv().
 * Returns the bytes read, 0 when the peer closed, -1 with errno (EPROTO:
 * more descriptors came than fit; the extra ones are closed).
 */
long fdpass_recv_some(int sock, void *buf, size_t len, int *fds,
                      size_t maxfds, size_t *nfds);

#endif /* MQLB_FDPASS_H */
