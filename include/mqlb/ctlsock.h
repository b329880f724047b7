/*
 * ctlsock.h: the control socket ([global] control_socket), a Unix
 * stream socket, mode 0600, on the main loop. Only a peer of the same
 * user (or root) gets past accept (SO_PEERCRED); what it says is the
 * business of the callback (ctlserve.h: a takeover or a `mqlb -s`
 * command). It speaks handover.h's frames; the helpers below send and
 * read those that carry no descriptor, on either side.
 */
#ifndef MQLB_CTLSOCK_H
#define MQLB_CTLSOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct ev_loop;
struct ctlsock;
struct handover_buf;
struct handover_header;

/* Seconds a peer may take to send its first byte, and then per read. */
#define CTLSOCK_FIRST_BYTE_S    5.0
#define CTLSOCK_IO_TIMEOUT_MS   5000

/*
 * A peer of ours has sent its first bytes. <fd> is blocking, with send
 * and receive timeouts of CTLSOCK_IO_TIMEOUT_MS; the callee owns it.
 */
typedef void (*ctlsock_conn_fn)(void *ctx, int fd, pid_t pid);

/*
 * Listen on <path> (a stale socket file is replaced; one a live process
 * still answers on is not). NULL with <err> on failure.
 */
struct ctlsock *ctlsock_start(struct ev_loop *loop, const char *path,
                              ctlsock_conn_fn fn, void *ctx, char *err);

/* Stop listening and remove the socket file if it is still ours. */
void ctlsock_stop(struct ctlsock *c);

/*
 * Connect to <path> as a client; the fd is blocking with timeouts of
 * <timeout_ms>. -1 with <err> ("nothing is listening on ...") on
 * failure, errno kept from the failing call (ECONNREFUSED, ENOENT:
 * nobody listens there).
 */
int ctlsock_connect(const char *path, unsigned timeout_ms, char *err);

/* Set send and receive timeouts of <fd>. */
int ctlsock_set_timeouts(int fd, unsigned timeout_ms);

/* May a peer running as <peer> talk to a process running as <self>? */
bool ctlsock_peer_allowed(uid_t peer, uid_t self);

/* ---- frames on a control connection (blocking, with its timeouts) -- */

/* Send the frames in <b> and empty it. MQ_OK, or MQ_ERR with errno
 * (ENOMEM when <b> failed to encode). */
int ctlsock_send_frame(int fd, struct handover_buf *b);

/*
 * Read one frame: its header into <h>, its payload into *<payload>
 * (malloc'd, freed by the caller; NULL on failure). MQ_OK, MQ_ERR with
 * errno (ECONNRESET: the peer hung up; EPROTO: descriptors came with
 * it, closed; EAGAIN: timed out) or a HANDOVER_E* verdict of the header
 * (<h> filled as far as it could be, to name the version).
 */
int ctlsock_read_frame(int fd, struct handover_header *h,
                       uint8_t **payload);

/* Tell the peer why in one ERROR frame, best effort. */
void ctlsock_send_error(int fd, const char *text);

/* Words for a failure <rc> of ctlsock_read_frame (errno for MQ_ERR). */
const char *ctlsock_frame_error(int rc);

#endif /* MQLB_CTLSOCK_H */
