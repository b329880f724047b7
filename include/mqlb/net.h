/*
 * net.h: a socket toolbox that knows nothing of sessions or pools (redis'
 * anet). Failures return MQ_ERR with errno set, or fill <err> on the
 * start-up paths; the caller decides what to log.
 */
#ifndef MQLB_NET_H
#define MQLB_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mqlb/config.h"

/* A listening socket on <a> with SO_REUSEPORT; the fd, or -1 and <err>. */
int net_listen(const struct config_addr *a, int backlog, char *err);

/* Who makes listening sockets instead of net_listen itself. */
typedef int (*net_listen_fn)(void *ctx, const struct config_addr *a,
                             int backlog, char *err);

/*
 * From now on net_listen() hands every listening socket to <fn> (with
 * <ctx>); NULL makes it bind by itself again. After the privilege drop
 * the core routes them to the privileged helper (privsep.h), so that a
 * reload can listen below port 1024. Listeners are only made on the main
 * thread; so is this call.
 */
void net_set_listen_hook(net_listen_fn fn, void *ctx);

/*
 * A client's address, IPv4 or IPv6, in the room those two take (28
 * bytes, where a sockaddr_storage takes 128): what an idle session
 * keeps of its client.
 */
union net_peer {
    struct sockaddr     sa;
    struct sockaddr_in  in4;
    struct sockaddr_in6 in6;
};

/* <sa> into <p> if it is IPv4 or IPv6; anything else leaves <p>
 * zeroed with the family AF_UNSPEC (net_format writes "?"). */
void net_peer_set(union net_peer *p, const struct sockaddr *sa);

/* accept4 non-blocking and close-on-exec; -1 with errno (EAGAIN too). */
int net_accept(int lfd, struct sockaddr_storage *ss, socklen_t *len);

/*
 * Start a non-blocking connect to <sa>. Returns the fd (connected or in
 * progress: *in_progress set) or -1 with errno.
 */
int net_connect(const struct sockaddr *sa, socklen_t len, int *in_progress);

/*
 * A check that only connects, as HAProxy's TCP check does, at about half
 * the kernel's work of a connect and close. net_probe_connect() starts a
 * non-blocking connect on <fd> (from net_probe_socket) with quick ACKs
 * off: the kernel holds back the last ACK of the handshake, so that
 * net_probe_reset() once the connect succeeded resets it before the
 * server's kernel has made a connection of it. The broker accepts
 * nothing (and logs nothing), no FIN is exchanged, neither side keeps a
 * socket in TIME_WAIT, and <fd> is ready for the next net_probe_connect
 * (to the same address family): no socket to make and close per check.
 * The reset must come within the delayed-ACK timeout (40 to 200 ms);
 * later, the broker sees a connection that is reset at once.
 *
 * net_probe_connect: MQ_OK (connected or in progress; the outcome with
 * net_socket_error once writable), or MQ_ERR with errno and <fd> reset.
 * net_probe_reset: MQ_ERR (with errno) if <fd> cannot be reused.
 */
int net_probe_socket(int family);
int net_probe_connect(int fd, const struct sockaddr *sa, socklen_t len);
int net_probe_reset(int fd);

/* The pending error of a non-blocking connect (0 = connected). */
int net_socket_error(int fd);

int net_set_nodelay(int fd);
/* ACK what has arrived now, not after the kernel's delayed-ACK wait. */
void net_ack_now(int fd);
int net_set_keepalive(int fd, const struct config_keepalive *ka);

/*
 * true if <err> says the process or the system is out of descriptors or
 * socket memory: our shortage, to wait out, not the peer's failure.
 */
bool net_is_shortage(int err);

/* IPv4 <in> as the v4-mapped IPv6 address ::ffff:a.b.c.d in <out>. */
void net_map_v4(const struct in_addr *in, uint8_t out[16]);

/*
 * The 128-bit form of <sa> in <out>, IPv4 v4-mapped, so that one form
 * serves v4, v6 and v4-mapped peers. false for other families.
 */
bool net_addr128(const struct sockaddr *sa, uint8_t out[16]);

/* Room for net_format's longest text, "[ffff:...:ffff]:65535". */
#define NET_ADDR_LEN    64

/* "1.2.3.4:56" or "[::1]:56" into <buf>. */
void net_format(const struct sockaddr *sa, char *buf, size_t size);

#endif /* MQLB_NET_H */
