/*
 * ctlsock.c: the control socket. Connections are taken one at a time:
 * a peer is checked (SO_PEERCRED) at accept, then given
 * CTLSOCK_FIRST_BYTE_S to say something, so a silent client never holds
 * the main loop; only then does the callback run (and may block, with
 * timeouts, for the short conversation it has).
 */
#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/ctlsock.h"
#include "mqlb/fdpass.h"
#include "mqlb/handover.h"
#include "mqlb/log.h"

struct ctlsock {
    struct ev_loop     *loop;           /* main loop, not owned */
    char               *path;           /* owned copy */
    int                 fd;             /* listening socket */
    ino_t               ino;            /* of the socket file we made */
    dev_t               dev;
    ev_io               accept_io;      /* listening socket readable */
    ev_io               peer_io;        /* pending peer readable */
    ev_timer            peer_timer;     /* first-byte deadline */
    int                 peer_fd;        /* -1 when none is pending */
    pid_t               peer_pid;
    ctlsock_conn_fn     fn;
    void               *ctx;
};

bool
ctlsock_peer_allowed(uid_t peer, uid_t self)
{
    return peer == self || peer == 0;
}

int
ctlsock_set_timeouts(int fd, unsigned timeout_ms)
{
    struct timeval tv;

    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1) {
        return MQ_ERR;
    }
    return MQ_OK;
}

/* <path> into <sun>; MQ_ERR with <err> if it does not fit. */
static int
ctlsock_addr(const char *path, struct sockaddr_un *sun, char *err)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun->sun_path)) {
        snprintf(err, MQ_ERR_LEN, "control socket path %s is longer than "
                 "%zu bytes", path, sizeof(sun->sun_path) - 1);
        errno = ENAMETOOLONG;
        return MQ_ERR;
    }
    memcpy(sun->sun_path, path, strlen(path));
    return MQ_OK;
}

int
ctlsock_connect(const char *path, unsigned timeout_ms, char *err)
{
    struct sockaddr_un sun;
    int fd;

    if (ctlsock_addr(path, &sun, err) != MQ_OK) {
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(err, MQ_ERR_LEN, "socket() failed: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
        int e = errno;

        snprintf(err, MQ_ERR_LEN, "nothing is listening on the control "
                 "socket %s (%s)", path, strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    if (ctlsock_set_timeouts(fd, timeout_ms) != MQ_OK) {
        snprintf(err, MQ_ERR_LEN, "setsockopt on %s failed: %s", path,
                 strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void
ctlsock_peer_done(struct ctlsock *c)
{
    ev_io_stop(c->loop, &c->peer_io);
    ev_timer_stop(c->loop, &c->peer_timer);
    c->peer_fd = -1;
    if (c->fd != -1) {
        ev_io_start(c->loop, &c->accept_io);
    }
}

static void
ctlsock_peer_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct ctlsock *c = container_of(io, struct ctlsock, peer_io);
    int fd = c->peer_fd;

    (void)loop;
    (void)revents;
    ctlsock_peer_done(c);
    /* The conversation is short and bounded by timeouts: the fd is
     * blocking (accepted without SOCK_NONBLOCK). */
    c->fn(c->ctx, fd, c->peer_pid);
}

static void
ctlsock_peer_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct ctlsock *c = container_of(t, struct ctlsock, peer_timer);
    int fd = c->peer_fd;

    (void)loop;
    (void)revents;
    log_warn("control socket: pid %d said nothing in %.0fs, closed",
             (int)c->peer_pid, CTLSOCK_FIRST_BYTE_S);
    ctlsock_peer_done(c);
    close(fd);
}

static void
ctlsock_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct ctlsock *c = container_of(io, struct ctlsock, accept_io);
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int fd;

    (void)revents;
    fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd == -1) {
        return;     /* EAGAIN, or the peer left: nothing to do */
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
        log_warn("control socket: SO_PEERCRED failed: %s, connection "
                 "closed", strerror(errno));
        close(fd);
        return;
    }
    if (!ctlsock_peer_allowed(cred.uid, geteuid())) {
        log_warn("control socket: refused pid %d of uid %u (mqlb runs as "
                 "uid %u)", (int)cred.pid, (unsigned)cred.uid,
                 (unsigned)geteuid());
        close(fd);
        return;
    }
    if (ctlsock_set_timeouts(fd, CTLSOCK_IO_TIMEOUT_MS) != MQ_OK) {
        close(fd);
        return;
    }
    /* One peer at a time: the next waits in the backlog. */
    ev_io_stop(loop, &c->accept_io);
    c->peer_fd = fd;
    c->peer_pid = cred.pid;
    ev_io_init(&c->peer_io, ctlsock_peer_cb, fd, EV_READ);
    ev_io_start(loop, &c->peer_io);
    ev_timer_init(&c->peer_timer, ctlsock_peer_timer_cb,
                  CTLSOCK_FIRST_BYTE_S, 0.);
    ev_timer_start(loop, &c->peer_timer);
}

struct ctlsock *
ctlsock_start(struct ev_loop *loop, const char *path, ctlsock_conn_fn fn,
              void *ctx, char *err)
{
    struct sockaddr_un sun;
    struct ctlsock *c;
    struct stat st;
    mode_t old_mask;
    int probe, rc;

    if (ctlsock_addr(path, &sun, err) != MQ_OK) {
        return NULL;
    }
    probe = ctlsock_connect(path, 1000, err);
    if (probe != -1) {
        close(probe);
        snprintf(err, MQ_ERR_LEN, "control socket %s: another process is "
                 "listening on it (use --takeover to replace it)", path);
        return NULL;
    }
    if (unlink(path) == -1 && errno != ENOENT) {
        snprintf(err, MQ_ERR_LEN, "control socket %s: cannot remove the "
                 "old file: %s", path, strerror(errno));
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, MQ_ERR_LEN, "out of memory");
        return NULL;
    }
    c->loop = loop;
    c->fn = fn;
    c->ctx = ctx;
    c->peer_fd = -1;
    c->path = strdup(path);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->path == NULL || c->fd == -1) {
        snprintf(err, MQ_ERR_LEN, "control socket %s: %s", path,
                 strerror(errno));
        goto fail;
    }
    /* 0600 from the first instant: no window where others may connect. */
    old_mask = umask(0177);
    rc = bind(c->fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old_mask);
    if (rc == -1 || chmod(path, 0600) == -1 || listen(c->fd, 16) == -1 ||
        stat(path, &st) == -1) {
        snprintf(err, MQ_ERR_LEN, "control socket %s: %s", path,
                 strerror(errno));
        goto fail;
    }
    c->ino = st.st_ino;
    c->dev = st.st_dev;
    ev_io_init(&c->accept_io, ctlsock_accept_cb, c->fd, EV_READ);
    ev_io_start(loop, &c->accept_io);
    return c;
fail:
    if (c->fd != -1) {
        close(c->fd);
    }
    free(c->path);
    free(c);
    return NULL;
}

void
ctlsock_stop(struct ctlsock *c)
{
    struct stat st;

    if (c == NULL) {
        return;
    }
    ev_io_stop(c->loop, &c->accept_io);
    if (c->peer_fd != -1) {
        ev_io_stop(c->loop, &c->peer_io);
        ev_timer_stop(c->loop, &c->peer_timer);
        close(c->peer_fd);
        c->peer_fd = -1;
    }
    close(c->fd);
    c->fd = -1;
    /* A successor may have put its own socket there already. */
    if (stat(c->path, &st) == 0 && st.st_ino == c->ino &&
        st.st_dev == c->dev) {
        unlink(c->path);
    }
    free(c->path);
    free(c);
}

/* ---- frames ------------------------------------------------------------ */

int
ctlsock_send_frame(int fd, struct handover_buf *b)
{
    int rc;

    if (b->failed) {
        errno = ENOMEM;
        return MQ_ERR;
    }
    rc = fdpass_send(fd, b->data, b->len, NULL, 0);
    handover_buf_reset(b);
    return rc;
}

int
ctlsock_read_frame(int fd, struct handover_header *h, uint8_t **payload)
{
    uint8_t hdr[HANDOVER_HEADER_LEN];
    size_t nfds = 0;
    int rc;

    *payload = NULL;
    if (fdpass_recv(fd, hdr, sizeof(hdr), NULL, 0, &nfds) != MQ_OK) {
        return MQ_ERR;
    }
    rc = handover_header_decode(hdr, h);
    if (rc != MQ_OK) {
        return rc;
    }
    *payload = malloc(h->length > 0 ? h->length : 1);
    if (*payload == NULL) {
        errno = ENOMEM;
        return MQ_ERR;
    }
    if (h->length > 0 &&
        fdpass_recv(fd, *payload, h->length, NULL, 0, &nfds) != MQ_OK) {
        mq_free(*payload);
        return MQ_ERR;
    }
    return MQ_OK;
}

void
ctlsock_send_error(int fd, const char *text)
{
    struct handover_buf b;

    handover_buf_init(&b);
    if (handover_encode_error(&b, text) == MQ_OK) {
        (void)ctlsock_send_frame(fd, &b);
    }
    handover_buf_deinit(&b);
}

const char *
ctlsock_frame_error(int rc)
{
    switch (rc) {
    case HANDOVER_EMAGIC:
        return "not a handover frame";
    case HANDOVER_EVERSION:
        return "unsupported handover version";
    case HANDOVER_ETOOBIG:
        return "frame too large";
    case HANDOVER_EMALFORMED:
        return "malformed frame";
    default:
        return errno == EPROTO ? "unexpected descriptors"
               : errno == ECONNRESET ? "hung up" : strerror(errno);
    }
}
