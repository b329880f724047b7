/*
 * ctlserve.h: what a peer says on the control socket. Its first frame
 * (handover.h) tells: HELLO asks for a takeover (takeover.h), COMMAND is
 * `mqlb -s reload|stop|status`, answered with one REPLY holding the same
 * status and JSON the admin port gives for that request (mgmt.h). No
 * token is asked: the socket serves only our own user (ctlsock.h).
 */
#ifndef MQLB_CTLSERVE_H
#define MQLB_CTLSERVE_H

#include <sys/types.h>

/*
 * The control socket's callback (ctlsock_conn_fn), on the main loop:
 * <ctx> is the core, <fd> the peer's connection (closed before this
 * returns, or by the takeover), <pid> the peer's process.
 */
void ctlserve_conn(void *ctx, int fd, pid_t pid);

#endif /* MQLB_CTLSERVE_H */
