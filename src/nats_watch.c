/*
 * nats_watch.c: a NATS client connection that only listens for lame duck
 * mode (see nats_watch.h for why a check connection cannot hear it).
 *
 *   IDLE --start--> CONNECTING --writable, SO_ERROR 0--> OPEN
 *     ^                 |                                 | INFO: CONNECT+PING
 *     |                 | refused / next start             | PING: PONG
 *     +-----------------+---------------------------------+ INFO ldm: on_ldm
 *                                   EOF, -ERR, error, line too long
 *
 * It subscribes to nothing, so the server sends it only INFO updates,
 * PINGs (every ping_interval, answered with PONG or the server drops us)
 * and the PONG to our own PING. Everything is best effort: any trouble
 * closes the connection and the next check opens a new one.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/nats_watch.h"
#include "mqlb/net.h"
#include "mqlb/probe.h"
#include "mqlb/proxy_proto.h"

/*
 * "protocol":1 asks for async INFO updates, lame duck mode among them;
 * verbose off spares us an +OK per message.
 */
#define NATS_WATCH_FIELDS \
    "\"verbose\":false,\"pedantic\":false,\"protocol\":1," \
    "\"name\":\"mqlb-watch\",\"lang\":\"c\",\"version\":\"" MQLB_VERSION "\""
#define NATS_WATCH_PING     "PING\r\n"
#define NATS_WATCH_PONG     "PONG\r\n"
#define NATS_WATCH_IN_MAX   8192    /* nats-server's max_control_line: 4096 */

enum nats_watch_state {
    NATS_WATCH_IDLE = 0,
    NATS_WATCH_CONNECTING,
    NATS_WATCH_OPEN,
};

/* One backend's watch connection. */
struct nats_watch {
    struct ev_loop         *loop;
    struct sockaddr_storage addr;       /* the server */
    socklen_t               addrlen;
    enum nats_watch_state   state;
    int                     fd;
    ev_io                   io;
    unsigned                connected:1;  /* CONNECT sent */
    unsigned                ldm:1;        /* server said lame duck mode */
    nats_watch_fn           on_ldm;
    void                   *ctx;
    uint8_t                 in[NATS_WATCH_IN_MAX];  /* partial line */
    size_t                  inlen;
    char                    hello[PROBE_OUT_MAX];   /* CONNECT + PING */
    size_t                  hellolen;
    uint8_t                 pp[PROXY_PROTO_V1_MAX]; /* PROXY header, or
                                                       none: sent first */
    size_t                  pplen;
};

static void
nats_watch_close(struct nats_watch *w)
{
    ev_io_stop(w->loop, &w->io);
    if (w->fd != -1) {
        close(w->fd);
        w->fd = -1;
    }
    w->state = NATS_WATCH_IDLE;
    w->connected = 0;
    w->ldm = 0;
    w->inlen = 0;
}

/*
 * Send <len> bytes whole or not at all: they are a few dozen bytes on a
 * socket that holds nothing else, so a short send means trouble.
 */
static int
nats_watch_send(struct nats_watch *w, const char *data, size_t len)
{
    ssize_t n;

    do {
        n = send(w->fd, data, len, MSG_NOSIGNAL);
    } while (n == -1 && errno == EINTR);
    return n == (ssize_t)len ? MQ_OK : MQ_ERR;
}

/* One line from the server, without its line end. */
static int
nats_watch_line(struct nats_watch *w, const uint8_t *line, size_t len)
{
    bool ldm;

    if (probe_nats_info_line(line, len, &ldm)) {
        if (!w->connected) {
            if (nats_watch_send(w, w->hello, w->hellolen) != MQ_OK) {
                return MQ_ERR;
            }
            w->connected = 1;
        }
        if (ldm && !w->ldm) {
            w->ldm = 1;
            w->on_ldm(w->ctx);
        }
        return MQ_OK;
    }
    if (len == 4 && memcmp(line, "PING", 4) == 0) {
        return nats_watch_send(w, NATS_WATCH_PONG,
                               sizeof(NATS_WATCH_PONG) - 1);
    }
    if (len > 0 && line[0] == '-') {
        return MQ_ERR;      /* -ERR: the server closes us anyway */
    }
    return w->connected ? MQ_OK : MQ_ERR;   /* PONG, +OK; first is INFO */
}

static void
nats_watch_read(struct nats_watch *w)
{
    uint8_t *nl;
    size_t   len, used;
    ssize_t  n;

    n = recv(w->fd, w->in + w->inlen, sizeof(w->in) - w->inlen, 0);
    if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        nats_watch_close(w);
        return;
    }
    w->inlen += (size_t)n;
    used = 0;
    for (;;) {
        nl = memchr(w->in + used, '\n', w->inlen - used);
        if (nl == NULL) {
            break;
        }
        len = (size_t)(nl - (w->in + used));
        if (len > 0 && w->in[used + len - 1] == '\r') {
            len--;
        }
        if (nats_watch_line(w, w->in + used, len) != MQ_OK) {
            nats_watch_close(w);
            return;
        }
        used = (size_t)(nl - w->in) + 1;
    }
    if (used == 0 && w->inlen == sizeof(w->in)) {
        nats_watch_close(w);    /* a line longer than any the server sends */
        return;
    }
    memmove(w->in, w->in + used, w->inlen - used);
    w->inlen -= used;
}

static void
nats_watch_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct nats_watch *w = container_of(io, struct nats_watch, io);

    (void)revents;
    if (w->state == NATS_WATCH_CONNECTING) {
        if (net_socket_error(w->fd) != 0) {
            nats_watch_close(w);
            return;
        }
        w->state = NATS_WATCH_OPEN;
        if (w->pplen > 0 &&
            nats_watch_send(w, (const char *)w->pp, w->pplen) != MQ_OK) {
            nats_watch_close(w);
            return;
        }
        ev_io_stop(loop, &w->io);
        ev_io_set(&w->io, w->fd, EV_READ);
        ev_io_start(loop, &w->io);
        return;
    }
    nats_watch_read(w);
}

struct nats_watch *
nats_watch_create(struct ev_loop *loop, const struct sockaddr *sa,
                  socklen_t salen, nats_watch_fn on_ldm, void *ctx)
{
    struct nats_watch *w;

    if (salen > sizeof(w->addr)) {
        return NULL;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return NULL;
    }
    w->loop = loop;
    memcpy(&w->addr, sa, salen);
    w->addrlen = salen;
    w->fd = -1;
    w->on_ldm = on_ldm;
    w->ctx = ctx;
    ev_init(&w->io, nats_watch_io_cb);
    if (nats_watch_set_login(w, NULL, 0, NULL, NULL) != MQ_OK) {
        free(w);
        return NULL;
    }
    return w;
}

int
nats_watch_set_login(struct nats_watch *w, const uint8_t *pp, size_t pplen,
                     const char *user, const char *password)
{
    size_t n;

    if (pplen > sizeof(w->pp)) {
        return MQ_ERR;
    }
    n = probe_nats_connect_line(w->hello, sizeof(w->hello) -
                                (sizeof(NATS_WATCH_PING) - 1),
                                NATS_WATCH_FIELDS, user, password);
    if (n == 0) {
        return MQ_ERR;
    }
    memcpy(w->hello + n, NATS_WATCH_PING, sizeof(NATS_WATCH_PING) - 1);
    w->hellolen = n + sizeof(NATS_WATCH_PING) - 1;
    if (pplen > 0) {
        memcpy(w->pp, pp, pplen);
    }
    w->pplen = pplen;
    return MQ_OK;
}

void
nats_watch_start(struct nats_watch *w)
{
    int in_progress;

    if (w->state == NATS_WATCH_OPEN) {
        return;
    }
    nats_watch_close(w);
    w->fd = net_connect((struct sockaddr *)&w->addr, w->addrlen,
                        &in_progress);
    if (w->fd == -1) {
        return;
    }
    w->state = NATS_WATCH_CONNECTING;
    ev_io_set(&w->io, w->fd, EV_WRITE);
    ev_io_start(w->loop, &w->io);
}

bool
nats_watch_in_ldm(const struct nats_watch *w)
{
    return w->state == NATS_WATCH_OPEN && w->ldm;
}

void
nats_watch_destroy(struct nats_watch *w)
{
    if (w == NULL) {
        return;
    }
    nats_watch_close(w);
    free(w);
}
