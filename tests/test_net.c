/*
 * test_net.c: address formatting, a listener on 127.0.0.1 port 0, a
 * non-blocking connect to it, accept, and a refused connect.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "mqlb/common.h"
#include "mqlb/config.h"
#include "mqlb/net.h"

/* 127.0.0.1:0 (or [::1]:0) as a config address. */
static void
tn_addr(struct config_addr *a, int family)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;

    memset(a, 0, sizeof(*a));
    if (family == AF_INET) {
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a->len = sizeof(*s4);
        snprintf(a->text, sizeof(a->text), "127.0.0.1:0");
    } else {
        s6->sin6_family = AF_INET6;
        s6->sin6_addr = in6addr_loopback;
        a->len = sizeof(*s6);
        snprintf(a->text, sizeof(a->text), "[::1]:0");
    }
}

/* Wait until <fd> is writable: the end of a non-blocking connect. */
static void
tn_wait_writable(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };

    cr_assert_eq(poll(&pfd, 1, 5000), 1, "connect did not finish in 5 s");
}

Test(net, format_v4)
{
    struct sockaddr_in s4;
    char buf[64];

    memset(&s4, 0, sizeof(s4));
    s4.sin_family = AF_INET;
    s4.sin_port = htons(6379);
    inet_pton(AF_INET, "10.1.2.3", &s4.sin_addr);
    net_format((const struct sockaddr *)&s4, buf, sizeof(buf));
    cr_expect_str_eq(buf, "10.1.2.3:6379");

    s4.sin_port = htons(65535);
    s4.sin_addr.s_addr = htonl(0xffffffff);
    net_format((const struct sockaddr *)&s4, buf, sizeof(buf));
    cr_expect_str_eq(buf, "255.255.255.255:65535");
}

Test(net, format_v4_matches_inet_ntop)
{
    struct sockaddr_in s4;
    char buf[64], host[INET_ADDRSTRLEN], want[64];
    uint32_t i, x = 12345;

    memset(&s4, 0, sizeof(s4));
    s4.sin_family = AF_INET;
    /* Every digit count of every octet and of the port, 0 included. */
    for (i = 0; i < 4096; i++) {
        x = x * 1103515245u + 12345u;
        s4.sin_addr.s_addr = i < 256 ? htonl(i * 0x01010101u) : x;
        s4.sin_port = htons((uint16_t)(i < 256 ? i * 257 : x >> 16));
        inet_ntop(AF_INET, &s4.sin_addr, host, sizeof(host));
        snprintf(want, sizeof(want), "%s:%u", host, ntohs(s4.sin_port));
        net_format((const struct sockaddr *)&s4, buf, sizeof(buf));
        cr_assert_str_eq(buf, want);
    }
    s4.sin_addr.s_addr = 0;
    s4.sin_port = 0;
    net_format((const struct sockaddr *)&s4, buf, sizeof(buf));
    cr_expect_str_eq(buf, "0.0.0.0:0");
    net_format((const struct sockaddr *)&s4, buf, 1);
    cr_expect_str_eq(buf, "");
}

Test(net, format_v6_in_brackets)
{
    struct sockaddr_in6 s6;
    char buf[80];

    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(5672);
    s6.sin6_addr = in6addr_loopback;
    net_format((const struct sockaddr *)&s6, buf, sizeof(buf));
    cr_expect_str_eq(buf, "[::1]:5672");

    inet_pton(AF_INET6, "2001:db8::a:b", &s6.sin6_addr);
    s6.sin6_port = htons(1);
    net_format((const struct sockaddr *)&s6, buf, sizeof(buf));
    cr_expect_str_eq(buf, "[2001:db8::a:b]:1");

    inet_pton(AF_INET6, "::ffff:10.0.0.1", &s6.sin6_addr);
    net_format((const struct sockaddr *)&s6, buf, sizeof(buf));
    cr_expect_str_eq(buf, "[::ffff:10.0.0.1]:1");

    /* The longest form fits the config's 80-byte text fields. */
    inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
              &s6.sin6_addr);
    s6.sin6_port = htons(65535);
    net_format((const struct sockaddr *)&s6, buf, sizeof(buf));
    cr_expect_lt(strlen(buf), 80);
    cr_expect_eq(buf[0], '[');
}

Test(net, format_other_family_and_short_buffer)
{
    struct sockaddr_storage ss;
    struct sockaddr_in s4;
    char buf[8];

    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    net_format((const struct sockaddr *)&ss, buf, sizeof(buf));
    cr_expect_str_eq(buf, "?");

    memset(&s4, 0, sizeof(s4));
    s4.sin_family = AF_INET;
    s4.sin_port = htons(80);
    inet_pton(AF_INET, "10.1.2.3", &s4.sin_addr);
    net_format((const struct sockaddr *)&s4, buf, sizeof(buf));
    cr_expect_str_eq(buf, "10.1.2.", "cut, and still a string");
}

/* What a session keeps of its client: both families whole, in the room
 * of an IPv6 address; anything else comes out as no address at all. */
Test(net, peer_keeps_v4_and_v6_whole_and_nothing_else)
{
    struct sockaddr_storage ss;
    struct sockaddr_in6 s6;
    struct sockaddr_in s4;
    union net_peer p;
    char buf[NET_ADDR_LEN];

    cr_expect_leq(sizeof(p), sizeof(struct sockaddr_in6));
    memset(&s4, 0, sizeof(s4));
    s4.sin_family = AF_INET;
    s4.sin_port = htons(1883);
    inet_pton(AF_INET, "10.1.2.3", &s4.sin_addr);
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, &s4, sizeof(s4));
    memset(&p, 0xa5, sizeof(p));
    net_peer_set(&p, (const struct sockaddr *)&ss);
    cr_expect_eq(p.sa.sa_family, AF_INET);
    cr_expect_eq(memcmp(&p.in4, &s4, sizeof(s4)), 0);
    net_format(&p.sa, buf, sizeof(buf));
    cr_expect_str_eq(buf, "10.1.2.3:1883");

    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(8883);
    s6.sin6_scope_id = 7;
    inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
    net_peer_set(&p, (const struct sockaddr *)&s6);
    cr_expect_eq(memcmp(&p.in6, &s6, sizeof(s6)), 0, "scope id too");
    net_format(&p.sa, buf, sizeof(buf));
    cr_expect_str_eq(buf, "[2001:db8::1]:8883");

    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    memset(&p, 0xa5, sizeof(p));
    net_peer_set(&p, (const struct sockaddr *)&ss);
    cr_expect_eq(p.sa.sa_family, AF_UNSPEC);
    cr_expect_eq(p.in6.sin6_port, 0, "zeroed, not left over");
    net_format(&p.sa, buf, sizeof(buf));
    cr_expect_str_eq(buf, "?");
}

Test(net, listen_connect_accept_on_loopback)
{
    struct config_addr a;
    struct sockaddr_storage bound, peer;
    socklen_t blen = sizeof(bound), plen;
    char err[MQ_ERR_LEN] = "";
    char name[80];
    int lfd, cfd, afd = -1, in_progress, i;

    tn_addr(&a, AF_INET);
    lfd = net_listen(&a, 16, err);
    cr_assert_geq(lfd, 0, "net_listen: %s", err);
    cr_expect(fcntl(lfd, F_GETFL) & O_NONBLOCK, "listener is non-blocking");
    cr_expect(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&bound, &blen), 0);
    cr_assert_neq(((struct sockaddr_in *)&bound)->sin_port, 0,
                  "port 0 got a real port");

    cfd = net_connect((const struct sockaddr *)&bound, blen, &in_progress);
    cr_assert_geq(cfd, 0, "net_connect: %s", strerror(errno));
    cr_expect(fcntl(cfd, F_GETFL) & O_NONBLOCK);
    if (in_progress) {
        tn_wait_writable(cfd);
    }
    cr_expect_eq(net_socket_error(cfd), 0);
    cr_expect_eq(net_set_nodelay(cfd), MQ_OK);

    /* The listener is non-blocking: accept may need a moment. */
    for (i = 0; i < 500 && afd < 0; i++) {
        afd = net_accept(lfd, &peer, &plen);
        if (afd < 0) {
            cr_assert(errno == EAGAIN || errno == EWOULDBLOCK,
                      "accept: %s", strerror(errno));
            poll(NULL, 0, 10);
        }
    }
    cr_assert_geq(afd, 0, "nothing to accept");
    cr_expect(fcntl(afd, F_GETFL) & O_NONBLOCK);
    cr_expect(fcntl(afd, F_GETFD) & FD_CLOEXEC);
    cr_expect_eq(plen, sizeof(struct sockaddr_in));
    net_format((const struct sockaddr *)&peer, name, sizeof(name));
    cr_expect_eq(strncmp(name, "127.0.0.1:", 10), 0, "peer %s", name);

    cr_expect_eq(write(cfd, "hi", 2), 2);
    close(cfd);
    close(afd);
    close(lfd);
}

Test(net, accept_with_nothing_pending_is_eagain)
{
    struct sockaddr_storage peer;
    struct config_addr a;
    socklen_t plen;
    char err[MQ_ERR_LEN];
    int lfd;

    tn_addr(&a, AF_INET);
    lfd = net_listen(&a, 16, err);
    cr_assert_geq(lfd, 0, "net_listen: %s", err);
    cr_expect_eq(net_accept(lfd, &peer, &plen), -1);
    cr_expect(errno == EAGAIN || errno == EWOULDBLOCK);
    close(lfd);
}

Test(net, listen_on_v6_loopback)
{
    struct config_addr a;
    char err[MQ_ERR_LEN] = "";
    int lfd, on = 0;
    socklen_t len = sizeof(on);

    tn_addr(&a, AF_INET6);
    lfd = net_listen(&a, 16, err);
    if (lfd < 0 && strstr(err, "Cannot assign") != NULL) {
        cr_skip_test("no IPv6 loopback here: %s", err);
    }
    cr_assert_geq(lfd, 0, "net_listen: %s", err);
    cr_expect_eq(getsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &on, &len), 0);
    cr_expect_eq(on, 1, "[::]:P leaves 0.0.0.0:P free");
    close(lfd);
}

Test(net, two_listeners_share_a_port_with_reuseport)
{
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    struct config_addr a;
    char err[MQ_ERR_LEN] = "";
    int l1, l2;

    tn_addr(&a, AF_INET);
    l1 = net_listen(&a, 16, err);
    cr_assert_geq(l1, 0, "net_listen: %s", err);
    cr_assert_eq(getsockname(l1, (struct sockaddr *)&bound, &blen), 0);
    memcpy(&a.ss, &bound, blen);
    l2 = net_listen(&a, 16, err);
    cr_expect_geq(l2, 0, "second listener (one per worker): %s", err);
    close(l1);
    if (l2 >= 0) {
        close(l2);
    }
}

Test(net, listen_on_an_unavailable_address_fills_err)
{
    struct config_addr a;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
    char err[MQ_ERR_LEN] = "";

    tn_addr(&a, AF_INET);
    inet_pton(AF_INET, "192.0.2.1", &s4->sin_addr);    /* TEST-NET-1 */
    snprintf(a.text, sizeof(a.text), "192.0.2.1:0");
    cr_expect_eq(net_listen(&a, 16, err), -1);
    cr_expect_neq(strstr(err, "bind on 192.0.2.1:0 failed"), NULL,
                  "err: %s", err);
}

Test(net, connect_to_a_closed_port_is_refused)
{
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    struct config_addr a;
    char err[MQ_ERR_LEN] = "";
    int lfd, cfd, in_progress, e;

    /* A port that was just ours and is closed now. */
    tn_addr(&a, AF_INET);
    lfd = net_listen(&a, 16, err);
    cr_assert_geq(lfd, 0, "net_listen: %s", err);
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&bound, &blen), 0);
    close(lfd);

    cfd = net_connect((const struct sockaddr *)&bound, blen, &in_progress);
    if (cfd < 0) {
        cr_expect_eq(errno, ECONNREFUSED, "errno %s", strerror(errno));
        return;
    }
    cr_expect(in_progress);
    tn_wait_writable(cfd);
    e = net_socket_error(cfd);
    cr_expect_eq(e, ECONNREFUSED, "SO_ERROR %s", strerror(e));
    close(cfd);
}

Test(net, socket_error_of_a_bad_fd_is_its_errno)
{
    cr_expect_eq(net_socket_error(-1), EBADF);
}

Test(net, keepalive_settings_reach_the_socket)
{
    struct config_keepalive ka = { .on = 1, .idle_s = 60, .interval_s = 10,
                                   .count = 5 };
    struct config_keepalive off = { 0 };
    socklen_t len = sizeof(int);
    int fd, v = 0;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    cr_expect_eq(net_set_keepalive(fd, &off), MQ_OK);
    cr_expect_eq(getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &len), 0);
    cr_expect_eq(v, 0, "off leaves the socket alone");
    cr_expect_eq(net_set_keepalive(fd, &ka), MQ_OK);
    cr_expect_eq(getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &len), 0);
    cr_expect_neq(v, 0);
    cr_expect_eq(getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, &len), 0);
    cr_expect_eq(v, 60);
    cr_expect_eq(getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, &len), 0);
    cr_expect_eq(v, 10);
    cr_expect_eq(getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, &len), 0);
    cr_expect_eq(v, 5);
    close(fd);
}

Test(net, accepted_sockets_inherit_nodelay_from_the_listener)
{
    struct config_addr a;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char err[MQ_ERR_LEN];
    int lfd, cfd, afd, in_progress, on = 0;
    socklen_t olen = sizeof(on);

    cr_assert_eq(config_parse_addr("127.0.0.1:1", &a), MQ_OK);
    ((struct sockaddr_in *)&a.ss)->sin_port = 0;
    lfd = net_listen(&a, 16, err);
    cr_assert_neq(lfd, -1, "%s", err);
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
    cfd = net_connect((struct sockaddr *)&ss, len, &in_progress);
    cr_assert_neq(cfd, -1);
    for (afd = -1; afd == -1; ) {
        afd = net_accept(lfd, &ss, &len);
        cr_assert(afd != -1 || errno == EAGAIN);
    }
    cr_assert_eq(getsockopt(afd, IPPROTO_TCP, TCP_NODELAY, &on, &olen), 0);
    cr_expect_eq(on, 1, "TCP_NODELAY on the accepted client socket");
    close(afd);
    close(cfd);
    close(lfd);
}

/* accept on <lfd> after a moment: the fd, or -1 with errno EAGAIN. */
static int
tn_accept_late(int lfd)
{
    struct sockaddr_storage peer;
    socklen_t plen;

    /* loopback delivers in the sender's call: 20 ms is plenty */
    poll(NULL, 0, 20);
    return net_accept(lfd, &peer, &plen);
}

Test(net, probe_is_reset_before_the_server_has_a_connection)
{
    struct sockaddr_storage bound, closed;
    socklen_t blen = sizeof(bound), clen = sizeof(closed);
    struct config_addr a;
    char err[MQ_ERR_LEN] = "";
    int lfd, gone, fd, i, afd;

    tn_addr(&a, AF_INET);
    lfd = net_listen(&a, 16, err);
    cr_assert_geq(lfd, 0, "net_listen: %s", err);
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&bound, &blen), 0);
    gone = net_listen(&a, 16, err);     /* a port that is closed below */
    cr_assert_geq(gone, 0, "net_listen: %s", err);
    cr_assert_eq(getsockname(gone, (struct sockaddr *)&closed, &clen), 0);
    close(gone);

    fd = net_probe_socket(AF_INET);
    cr_assert_geq(fd, 0, "net_probe_socket: %s", strerror(errno));
    cr_expect(fcntl(fd, F_GETFL) & O_NONBLOCK);
    cr_expect(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    /* one socket, three checks that pass around one that is refused */
    for (i = 0; i < 4; i++) {
        const struct sockaddr_storage *to = i == 2 ? &closed : &bound;
        int e;

        cr_assert_eq(net_probe_connect(fd, (const struct sockaddr *)to,
                                       blen), MQ_OK,
                     "check %d: %s", i, strerror(errno));
        tn_wait_writable(fd);
        e = net_socket_error(fd);
        cr_expect_eq(e, i == 2 ? ECONNREFUSED : 0, "check %d: SO_ERROR %s",
                     i, strerror(e));
        cr_assert_eq(net_probe_reset(fd), MQ_OK, "check %d: %s", i,
                     strerror(errno));
        /* The server's kernel never completed the handshake (its last
         * ACK was held back, then reset): nothing to accept. */
        afd = tn_accept_late(lfd);
        cr_expect_eq(afd, -1, "check %d: the server got a connection", i);
        if (afd >= 0) {
            close(afd);
        }
    }
    close(fd);
    close(lfd);
}

/* A check that times out (SYN unanswered) is reset; its socket works on. */
Test(net, probe_reset_while_connecting_leaves_a_usable_socket)
{
    struct sockaddr_storage full, open_;
    socklen_t flen = sizeof(full), olen = sizeof(open_);
    struct pollfd pfd;
    struct config_addr a;
    char err[MQ_ERR_LEN] = "";
    int lfull, lopen, filler, fd, in_progress, afd;

    tn_addr(&a, AF_INET);
    /* A listener whose accept queue is full drops SYNs: connects to it
     * stay in SYN_SENT. */
    lfull = net_listen(&a, 0, err);
    cr_assert_geq(lfull, 0, "net_listen: %s", err);
    cr_assert_eq(getsockname(lfull, (struct sockaddr *)&full, &flen), 0);
    lopen = net_listen(&a, 16, err);
    cr_assert_geq(lopen, 0, "net_listen: %s", err);
    cr_assert_eq(getsockname(lopen, (struct sockaddr *)&open_, &olen), 0);
    filler = net_connect((const struct sockaddr *)&full, flen, &in_progress);
    cr_assert_geq(filler, 0);
    tn_wait_writable(filler);
    cr_assert_eq(net_socket_error(filler), 0);

    fd = net_probe_socket(AF_INET);
    cr_assert_geq(fd, 0);
    cr_assert_eq(net_probe_connect(fd, (const struct sockaddr *)&full, flen),
                 MQ_OK, "%s", strerror(errno));
    pfd.fd = fd;
    pfd.events = POLLOUT;
    cr_assert_eq(poll(&pfd, 1, 100), 0, "the SYN was answered");
    cr_assert_eq(net_probe_reset(fd), MQ_OK, "%s", strerror(errno));

    cr_assert_eq(net_probe_connect(fd, (const struct sockaddr *)&open_, olen),
                 MQ_OK, "%s", strerror(errno));
    tn_wait_writable(fd);
    cr_expect_eq(net_socket_error(fd), 0);
    cr_assert_eq(net_probe_reset(fd), MQ_OK);
    afd = tn_accept_late(lopen);
    cr_expect_eq(afd, -1, "the server got a connection");
    if (afd >= 0) {
        close(afd);
    }
    close(fd);
    close(filler);
    close(lfull);
    close(lopen);
}
