/*
 * net.c: small socket helpers that know nothing of sessions. accept and
 * connect retry EINTR here; the relay retries its own reads and writes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/net.h"

/* net_set_listen_hook: the main thread's alone, like every listener. */
static net_listen_fn net_listen_hook;
static void *net_listen_hook_ctx;

void
net_set_listen_hook(net_listen_fn fn, void *ctx)
{
    net_listen_hook = fn;
    net_listen_hook_ctx = ctx;
}

int
net_listen(const struct config_addr *a, int backlog, char *err)
{
    int fd, on = 1;

    if (net_listen_hook != NULL) {
        return net_listen_hook(net_listen_hook_ctx, a, backlog, err);
    }
    fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd == -1) {
        snprintf(err, MQ_ERR_LEN, "socket() for %s failed: %s", a->text,
                 strerror(errno));
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1) {
        snprintf(err, MQ_ERR_LEN, "setsockopt on %s failed: %s", a->text,
                 strerror(errno));
        close(fd);
        return -1;
    }
    /* Accepted sockets inherit TCP_NODELAY: one call per listener, not
     * one per client. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (a->ss.ss_family == AF_INET6) {
        /* [::]:P is v6 only, so that 0.0.0.0:P may be listed beside it. */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    }
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1) {
        snprintf(err, MQ_ERR_LEN, "bind on %s failed: %s", a->text,
                 strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, backlog) == -1) {
        snprintf(err, MQ_ERR_LEN, "listen on %s failed: %s", a->text,
                 strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int
net_accept(int lfd, struct sockaddr_storage *ss, socklen_t *len)
{
    int fd;

    for (;;) {
        *len = sizeof(*ss);
        fd = accept4(lfd, (struct sockaddr *)ss, len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1 && errno == EINTR) {
            continue;
        }
        return fd;
    }
}

int
net_connect(const struct sockaddr *sa, socklen_t len, int *in_progress)
{
    int fd, rc;

    *in_progress = 0;
    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return -1;
    }
    do {
        rc = connect(fd, sa, len);
    } while (rc == -1 && errno == EINTR);
    if (rc == -1) {
        if (errno != EINPROGRESS) {
            int saved = errno;

            close(fd);
            errno = saved;
            return -1;
        }
        *in_progress = 1;
    }
    return fd;
}

int
net_probe_socket(int family)
{
    return socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

int
net_probe_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    int rc, off = 0, saved;

    /* Quick ACKs off (again: every reset clears it), so that the kernel
     * delays the ACK of the SYN-ACK. */
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &off, sizeof(off));
    do {
        rc = connect(fd, sa, len);
    } while (rc == -1 && errno == EINTR);
    if (rc == 0 || errno == EINPROGRESS) {
        return MQ_OK;
    }
    saved = errno;
    net_probe_reset(fd);
    errno = saved;
    return MQ_ERR;
}

int
net_probe_reset(int fd)
{
    struct sockaddr sa;

    /* connect() to AF_UNSPEC: tcp_disconnect(), a reset if connected. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_family = AF_UNSPEC;
    return connect(fd, &sa, sizeof(sa)) == 0 ? MQ_OK : MQ_ERR;
}

int
net_socket_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
        return errno;
    }
    return err;
}

int
net_set_nodelay(int fd)
{
    int on = 1;

    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1
           ? MQ_ERR : MQ_OK;
}

void
net_ack_now(int fd)
{
    int on = 1;

    (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof(on));
}

int
net_set_keepalive(int fd, const struct config_keepalive *ka)
{
    int on = 1, v;

    if (!ka->on) {
        return MQ_OK;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) == -1) {
        return MQ_ERR;
    }
    v = (int)ka->idle_s;
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof(v)) == -1) {
        return MQ_ERR;
    }
    if (ka->interval_s > 0) {
        v = (int)ka->interval_s;
        if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof(v))
            == -1) {
            return MQ_ERR;
        }
    }
    if (ka->count > 0) {
        v = (int)ka->count;
        if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof(v)) == -1) {
            return MQ_ERR;
        }
    }
    return MQ_OK;
}

/* Write <v> in decimal at <p>; returns the end. */
static char *
net_put_uint(char *p, unsigned v)
{
    char tmp[10];
    int n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (n > 0) {
        *p++ = tmp[--n];
    }
    return p;
}

/*
 * "a.b.c.d:port" by hand: every session formats its client's address, and
 * inet_ntop plus snprintf cost it more instructions than the rest of its
 * accept (they go through stdio's vfprintf twice).
 */
static void
net_format_v4(const struct sockaddr_in *s4, char *buf, size_t size)
{
    const uint8_t *a = (const uint8_t *)&s4->sin_addr;
    char text[sizeof("255.255.255.255:65535")], *p = text;
    size_t n;
    int i;

    for (i = 0; i < 4; i++) {
        p = net_put_uint(p, a[i]);
        *p++ = i < 3 ? '.' : ':';
    }
    p = net_put_uint(p, ntohs(s4->sin_port));
    n = MQ_MIN((size_t)(p - text), size - 1);   /* cut as snprintf does */
    memcpy(buf, text, n);
    buf[n] = '\0';
}

void
net_format(const struct sockaddr *sa, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN];

    if (size == 0) {
        return;
    }
    if (sa->sa_family == AF_INET) {
        net_format_v4((const struct sockaddr_in *)sa, buf, size);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        snprintf(buf, size, "[%s]:%u", host, ntohs(s6->sin6_port));
    } else {
        snprintf(buf, size, "?");
    }
}

void
net_peer_set(union net_peer *p, const struct sockaddr *sa)
{
    memset(p, 0, sizeof(*p));
    if (sa->sa_family == AF_INET) {
        p->in4 = *(const struct sockaddr_in *)sa;
    } else if (sa->sa_family == AF_INET6) {
        p->in6 = *(const struct sockaddr_in6 *)sa;
    } else {
        p->sa.sa_family = AF_UNSPEC;
    }
}

bool
net_is_shortage(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

void
net_map_v4(const struct in_addr *in, uint8_t out[16])
{
    memset(out, 0, 10);
    out[10] = 0xff;
    out[11] = 0xff;
    memcpy(out + 12, &in->s_addr, 4);
}

bool
net_addr128(const struct sockaddr *sa, uint8_t out[16])
{
    if (sa->sa_family == AF_INET) {
        net_map_v4(&((const struct sockaddr_in *)sa)->sin_addr, out);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}
