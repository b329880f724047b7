/*
 * relay.c: one direction of a session's byte stream. Writes go straight
 * through after a read (no write watcher unless the peer is full), and
 * a buffer is held only while bytes are waiting for the peer.
 *
 * A direction that has moved RELAY_SPLICE_MIN bytes is a bulk transfer:
 * it switches to splice(2) through a pipe of its own, so the bytes never
 * reach user space (haproxy's splice-auto). Short request/response
 * exchanges never pay for the pipe's two descriptors.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/relay.h"

#define RELAY_POOL_SLACK    16      /* free buffers kept beyond those in use */

void
relay_pool_init(struct relay_pool *rp, size_t nfree_max)
{
    rp->free = NULL;
    rp->nfree = 0;
    rp->nfree_max = nfree_max;
    rp->nused = 0;
}

void
relay_pool_deinit(struct relay_pool *rp)
{
    void *next;

    while (rp->free != NULL) {
        next = *(void **)rp->free;
        free(rp->free);
        rp->free = next;
    }
    rp->nfree = 0;
}

char *
relay_buf_get(struct relay_pool *rp)
{
    char *buf;

    if (rp->free != NULL) {
        buf = rp->free;
        rp->free = *(void **)buf;
        rp->nfree--;
    } else {
        buf = malloc(RELAY_BUF_SIZE);
        if (buf == NULL) {
            return NULL;
        }
    }
    rp->nused++;
    return buf;
}

void
relay_buf_put(struct relay_pool *rp, char *buf)
{
    rp->nused--;
    /* Keep what the sessions now may soon need again, not what a burst
     * that is over needed: the rest goes back to malloc (and, after a
     * trim, to the system). */
    if (rp->nfree >= rp->nfree_max ||
        rp->nfree >= rp->nused + RELAY_POOL_SLACK) {
        free(buf);
        return;
    }
    *(void **)buf = rp->free;
    rp->free = buf;
    rp->nfree++;
}

/* Splice pipes the process may still open (relay_set_pipe_budget). */
static _Atomic long relay_pipes_left = LONG_MAX;

void
relay_set_pipe_budget(long npipes)
{
    static long set = LONG_MAX;     /* what the last call granted */

    /* Pipes open now stay counted: move the budget by the difference. */
    atomic_fetch_add(&relay_pipes_left, npipes - set);
    set = npipes;
}

void
relay_dir_close(struct relay_dir *d, struct relay_pool *rp)
{
    relay_dir_release(d, rp);
    if (d->spliced) {
        close(d->pipe[0]);
        close(d->pipe[1]);
        d->spliced = 0;
        atomic_fetch_add_explicit(&relay_pipes_left, 1, memory_order_relaxed);
    }
}

void
relay_tap_add(struct relay_dir *d, const char *p, size_t n)
{
    size_t need = (size_t)d->taplen + n, cap;
    char *t;

    if (need > d->tapmax) {
        d->tap_full = 1;
        return;
    }
    if (need > d->tapcap) {
        /* Sized to what was sent: a 20-byte handshake costs 20 bytes. */
        cap = MQ_MAX(need, MQ_MIN((size_t)d->tapcap * 2, (size_t)d->tapmax));
        t = realloc(d->tap, cap);
        if (t == NULL) {
            d->tap_full = 1;
            return;
        }
        d->tap = t;
        d->tapcap = (uint32_t)cap;
    }
    memcpy(d->tap + d->taplen, p, n);
    d->taplen += (uint32_t)n;
}

void
relay_tap_free(struct relay_dir *d)
{
    mq_free(d->tap);
    d->taplen = 0;
    d->tapcap = 0;
    d->tapmax = 0;
}

unsigned
relay_socket_wants(enum relay_wait reading, enum relay_wait writing)
{
    unsigned want = 0;

    if (reading == RELAY_WAIT_SRC_READ || writing == RELAY_WAIT_DST_READ) {
        want |= RELAY_WANT_READ;
    }
    if (writing == RELAY_WAIT_DST_WRITE || reading == RELAY_WAIT_SRC_WRITE) {
        want |= RELAY_WANT_WRITE;
    }
    return want;
}

void
relay_dir_release(struct relay_dir *d, struct relay_pool *rp)
{
    if (d->buf != NULL) {
        relay_buf_put(rp, d->buf);
        d->buf = NULL;
    }
    d->off = 0;
    d->len = 0;
}

/* <d>'s buffer, borrowed from <rp> if it has none, emptied for a read. */
static int
relay_dir_empty_buf(struct relay_dir *d, struct relay_pool *rp)
{
    if (d->buf == NULL) {
        d->buf = relay_buf_get(rp);
        if (d->buf == NULL) {
            return MQ_ERR;
        }
    }
    d->off = 0;
    d->len = 0;
    return MQ_OK;
}

void
relay_dir_shutdown(struct relay_dir *d)
{
    if (d->dst_io != NULL) {
        d->dst_io->shutdown(d->dst_conn, d->dst);
        return;
    }
    shutdown(d->dst, SHUT_WR);
}

/* Write what waits in <d>; RELAY_IDLE when all is out. */
static enum relay_status
relay_flush(struct relay_dir *d)
{
    ssize_t n;
    int want = RELAY_WANT_WRITE;

    while (d->off < d->len) {
        if (d->dst_io != NULL) {
            n = d->dst_io->send(d->dst_conn, d->buf + d->off,
                                d->len - d->off, &want);
        } else {
            n = send(d->dst, d->buf + d->off, d->len - d->off,
                     MSG_NOSIGNAL);
        }
        if (n > 0) {
            d->off += (uint32_t)n;
            d->nbytes += (uint64_t)n;
            continue;
        }
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            d->wait = want == RELAY_WANT_READ ? RELAY_WAIT_DST_READ
                                              : RELAY_WAIT_DST_WRITE;
            return RELAY_BLOCKED;
        }
        d->err = errno;
        return RELAY_ERR_DST;
    }
    return RELAY_IDLE;
}

/* Move <d> to splice mode; MQ_ERR (and copying for good) if no pipe. */
static int
relay_splice_start(struct relay_dir *d)
{
    /* Descriptors are for sessions first: past the budget, copy. */
    if (atomic_fetch_sub_explicit(&relay_pipes_left, 1,
                                  memory_order_relaxed) <= 0) {
        atomic_fetch_add_explicit(&relay_pipes_left, 1, memory_order_relaxed);
        d->nosplice = 1;
        return MQ_ERR;
    }
    if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
        atomic_fetch_add_explicit(&relay_pipes_left, 1, memory_order_relaxed);
        d->nosplice = 1;
        return MQ_ERR;
    }
    d->spliced = 1;
    d->inpipe = 0;
    return MQ_OK;
}

/* relay_pump for a direction in splice mode. */
static enum relay_status
relay_pump_splice(struct relay_dir *d, size_t budget)
{
    size_t nread = 0;
    ssize_t n;

    for (;;) {
        while (d->inpipe > 0) {
            n = splice(d->pipe[0], NULL, d->dst, NULL, d->inpipe,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                d->inpipe -= (uint32_t)n;
                d->nbytes += (uint64_t)n;
                continue;
            }
            if (n == -1 && errno == EINTR) {
                continue;
            }
            if (n == -1 && errno == EAGAIN) {
                d->wait = RELAY_WAIT_DST_WRITE;
                return RELAY_BLOCKED;
            }
            d->err = errno;
            return RELAY_ERR_DST;
        }
        if (d->eof) {
            d->wait = RELAY_WAIT_NONE;
            return RELAY_EOF;
        }
        if (nread >= budget) {
            d->wait = RELAY_WAIT_SRC_READ;
            return RELAY_YIELD;
        }
        /* The pipe is empty here, so EAGAIN can only mean "no data". */
        n = splice(d->src, NULL, d->pipe[1], NULL, RELAY_SPLICE_CHUNK,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            d->inpipe = (uint32_t)n;
            nread += (size_t)n;
            continue;
        }
        if (n == 0) {
            d->eof = 1;
            continue;
        }
        if (errno == EINTR) {
            continue;
        }
        d->wait = RELAY_WAIT_SRC_READ;
        d->err = errno;
        return d->err == EAGAIN ? RELAY_IDLE : RELAY_ERR_SRC;
    }
}

/* Read from d->src into <buf>: as recv(2), and <*want> as relay_io's. */
static ssize_t
relay_recv(struct relay_dir *d, void *buf, size_t len, int *want)
{
    *want = RELAY_WANT_READ;
    if (d->src_io != NULL) {
        return d->src_io->recv(d->src_conn, buf, len, want);
    }
    return recv(d->src, buf, len, 0);
}

enum relay_status
relay_pump(struct relay_dir *d, struct relay_pool *rp, size_t budget)
{
    enum relay_status st;
    size_t nread = 0;
    ssize_t n;
    int drained = d->drained, want;

    d->drained = 0;
    if (d->spliced) {
        return relay_pump_splice(d, budget);
    }
    for (;;) {
        if (d->buf != NULL && d->off < d->len) {
            st = relay_flush(d);
            if (st != RELAY_IDLE) {
                return st;
            }
        }
        if (drained) {
            /*
             * A short read emptied the socket; the loop is level-triggered
             * and will say when more comes, so spare the read that would
             * only return EAGAIN (haproxy does the same).
             */
            relay_dir_release(d, rp);
            d->wait = RELAY_WAIT_SRC_READ;
            return RELAY_IDLE;
        }
        if (d->eof) {
            relay_dir_release(d, rp);
            d->wait = RELAY_WAIT_NONE;
            return RELAY_EOF;
        }
        if (nread >= budget && (d->src_io == NULL
                                || d->src_io->pending(d->src_conn) == 0)) {
            /* Fairness: others on this loop get their turn first. (Not
             * while bytes wait read in src_io: the socket, already
             * emptied of them, would never wake this direction again.) */
            relay_dir_release(d, rp);
            d->wait = RELAY_WAIT_SRC_READ;
            return RELAY_YIELD;
        }
        if (d->nbytes >= RELAY_SPLICE_MIN && d->tapmax == 0 && !d->nosplice
            && d->src_io == NULL && d->dst_io == NULL && d->observe == NULL
            && relay_splice_start(d) == MQ_OK) {
            relay_dir_release(d, rp);   /* empty: everything was sent */
            return relay_pump_splice(d, budget - nread);
        }
        if (relay_dir_empty_buf(d, rp) != MQ_OK) {
            return RELAY_NOMEM;
        }
        n = relay_recv(d, d->buf, RELAY_BUF_SIZE, &want);
        if (n > 0) {
            d->len = (uint32_t)n;
            nread += (size_t)n;
            /* TLS returns one record at a time: a short read says the
             * socket is empty only when nothing waits decrypted. */
            drained = n < RELAY_BUF_SIZE && (d->src_io == NULL
                      || d->src_io->pending(d->src_conn) == 0);
            if (d->observe != NULL) {
                d->observe(d->observe_arg, d->buf, (size_t)n);
            }
            if (d->tapmax > 0 && !d->tap_full) {
                relay_tap_add(d, d->buf, (size_t)n);
            }
            continue;
        }
        if (n == 0) {
            d->eof = 1;
            continue;
        }
        if (errno == EINTR) {
            continue;
        }
        /* Kept before the release: free() may change errno. */
        d->err = errno;
        relay_dir_release(d, rp);
        if (d->err == EAGAIN || d->err == EWOULDBLOCK) {
            d->wait = want == RELAY_WANT_WRITE ? RELAY_WAIT_SRC_WRITE
                                               : RELAY_WAIT_SRC_READ;
            return RELAY_IDLE;
        }
        return RELAY_ERR_SRC;
    }
}

enum relay_status
relay_fill(struct relay_dir *d, struct relay_pool *rp)
{
    ssize_t n;
    int want;

    if (relay_dir_empty_buf(d, rp) != MQ_OK) {
        return RELAY_NOMEM;
    }
    do {
        n = relay_recv(d, d->buf, RELAY_BUF_SIZE, &want);
    } while (n == -1 && errno == EINTR);
    if (n > 0) {
        d->len = (uint32_t)n;
        d->drained = n < RELAY_BUF_SIZE;
        if (d->tapmax > 0 && !d->tap_full) {
            relay_tap_add(d, d->buf, (size_t)n);
        }
        return RELAY_BLOCKED;
    }
    d->err = n == 0 ? 0 : errno;
    relay_dir_release(d, rp);
    if (n == 0) {
        d->eof = 1;
        return RELAY_EOF;
    }
    if (d->err == EAGAIN || d->err == EWOULDBLOCK) {
        d->drained = 1;
        d->wait = RELAY_WAIT_SRC_READ;
        return RELAY_IDLE;
    }
    return RELAY_ERR_SRC;
}
