/*
 * relay.h: moving bytes from one socket to another, for one direction of
 * a session. It knows nothing of libev: it reports what it could not do
 * and the session decides which watchers to switch (backpressure).
 *
 * A direction holds a buffer only while bytes wait in it; an idle session
 * holds none (haproxy's dynamic buffers). Buffers come from a per-worker
 * free list, so the relay path never calls malloc in steady state.
 */
#ifndef MQLB_RELAY_H
#define MQLB_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RELAY_BUF_SIZE      16384   /* bytes per buffer */
#define RELAY_BUDGET        65536   /* bytes per wake-up per direction */
#define RELAY_SPLICE_MIN    262144  /* bytes a direction moves by copying
                                       before it switches to splice(2) */
#define RELAY_SPLICE_CHUNK  65536   /* bytes per splice into the pipe */

#define RELAY_WANT_READ     1       /* the operation waits to read */
#define RELAY_WANT_WRITE    2       /* the operation waits to write */

/*
 * How one end of a direction is read or written when it is not a plain
 * socket (TLS). Each returns what recv(2)/send(2) would: bytes moved, 0
 * at the end of the stream (recv), or -1 with errno; EAGAIN comes with
 * <*want> saying which readiness of the socket lets it go on (TLS may
 * have to write to read, and read to write).
 */
struct relay_io {
    ssize_t           (*recv)(void *conn, void *buf, size_t len, int *want);
    ssize_t           (*send)(void *conn, const void *buf, size_t len,
                              int *want);
    /* Pass the end of the stream on (close_notify, then FIN on <fd>). */
    void              (*shutdown)(void *conn, int fd);
    /* Bytes already read from the socket and waiting to be returned. */
    size_t            (*pending)(void *conn);
};

/* What a direction waits for before relay_pump() can go on. */
enum relay_wait {
    RELAY_WAIT_NONE = 0,        /* nothing: ended, or not started */
    RELAY_WAIT_SRC_READ,        /* src readable (the usual case) */
    RELAY_WAIT_SRC_WRITE,       /* src writable (TLS read wants write) */
    RELAY_WAIT_DST_WRITE,       /* dst writable (backpressure) */
    RELAY_WAIT_DST_READ,        /* dst readable (TLS write wants read) */
};

/* A free list of RELAY_BUF_SIZE buffers, owned by one worker thread. */
struct relay_pool {
    void               *free;       /* singly linked through the buffers */
    size_t              nfree;      /* buffers on the list */
    size_t              nfree_max;  /* beyond this, buffers go to free() */
    size_t              nused;      /* buffers handed out */
};

/* One direction: src -> dst. Every session holds two: fields are
 * ordered so that the compiler leaves no holes. */
struct relay_dir {
    int                 src;        /* fd read from */
    int                 dst;        /* fd written to */
    char               *buf;        /* NULL while nothing waits */
    uint32_t            off;        /* first unsent byte in <buf> */
    uint32_t            len;        /* bytes in <buf> */
    unsigned            eof:1;      /* src sent FIN */
    unsigned            tap_full:1; /* more was read than <tap> holds */
    unsigned            spliced:1;  /* moving through <pipe>, zero-copy */
    unsigned            nosplice:1; /* splice failed once: keep copying */
    unsigned            drained:1;  /* src was just read empty (relay_fill):
                                       the next relay_pump sends what waits
                                       and reads only when src's watcher
                                       says more came */
    unsigned            wait:3;     /* enum relay_wait, set by every
                                       relay_pump() */
    int                 err;        /* errno of the last RELAY_ERR_* */
    int                 pipe[2];    /* valid while <spliced> */
    uint32_t            inpipe;     /* bytes waiting in the pipe */
    uint32_t            tapmax;     /* 0: keep no copy; else <tap> grows
                                       to at most this, then tap_full */
    uint64_t            nbytes;     /* bytes delivered to dst */
    char               *tap;        /* a copy of what src sent, or NULL */
    uint32_t            taplen;     /* bytes in <tap> */
    uint32_t            tapcap;     /* bytes <tap> can hold */
    const struct relay_io *src_io;  /* NULL: plain recv(2) on <src> */
    void               *src_conn;   /* <src_io>'s connection (an SSL) */
    const struct relay_io *dst_io;  /* NULL: plain send(2) on <dst> */
    void               *dst_conn;
    void              (*observe)(void *arg, const char *p, size_t n);
                                    /* if set, shown every byte read from
                                       src, in order (a passive protocol
                                       reader); no splicing meanwhile */
    void               *observe_arg;
};

enum relay_status {
    RELAY_IDLE = 0,     /* src has nothing more now, buffer flushed */
    RELAY_BLOCKED,      /* dst cannot take more: wait for it */
    RELAY_YIELD,        /* budget used up; more may be readable */
    RELAY_EOF,          /* src closed and every byte is delivered */
    RELAY_ERR_SRC,      /* reading src failed (d->err set) */
    RELAY_ERR_DST,      /* writing dst failed (d->err set) */
    RELAY_NOMEM,        /* no buffer could be had */
};

void relay_pool_init(struct relay_pool *rp, size_t nfree_max);
void relay_pool_deinit(struct relay_pool *rp);
char *relay_buf_get(struct relay_pool *rp);
void relay_buf_put(struct relay_pool *rp, char *buf);

/*
 * Move bytes from d->src to d->dst until one side would block, src ends,
 * or <budget> bytes were read. Adds the bytes delivered to d->nbytes and
 * says in d->wait what it waits for. Splice is used only when both ends
 * are plain sockets.
 */
enum relay_status relay_pump(struct relay_dir *d, struct relay_pool *rp,
                             size_t budget);

/*
 * Read once from d->src (a plain socket) into <d>'s empty buffer, before
 * d->dst is ready: RELAY_BLOCKED when bytes now wait in the buffer (and
 * went to the tap, as relay_pump's reads do; not to d->observe, which the
 * caller shows them), RELAY_IDLE when src has nothing yet, RELAY_EOF when
 * it ended, RELAY_ERR_SRC or RELAY_NOMEM. A short read sets d->drained.
 */
enum relay_status relay_fill(struct relay_dir *d, struct relay_pool *rp);

/*
 * Append <n> bytes at <p> to the copy of what <d>'s source sent (replay),
 * growing it as needed up to d->tapmax; past that, or without memory,
 * d->tap_full is set and the copy is no longer complete.
 */
void relay_tap_add(struct relay_dir *d, const char *p, size_t n);
/* Free the copy and keep no more (d->tapmax = 0). */
void relay_tap_free(struct relay_dir *d);

/*
 * How many splice pipes (two descriptors each) the whole process may hold
 * at once; past it bulk directions keep copying. Unlimited until set;
 * called by the main thread at start (descriptor budget).
 */
void relay_set_pipe_budget(long npipes);

/*
 * What one socket must be watched for (RELAY_WANT_READ, RELAY_WANT_WRITE,
 * both or neither) from the waits of the two directions on it: <reading>
 * reads from it (its src), <writing> writes to it (its dst). With TLS a
 * read may wait to write and a write to read.
 */
unsigned relay_socket_wants(enum relay_wait reading, enum relay_wait writing);

/* Give back the buffer of <d> (it holds none while idle). */
void relay_dir_release(struct relay_dir *d, struct relay_pool *rp);
/* At session end: the buffer and the splice pipe. */
void relay_dir_close(struct relay_dir *d, struct relay_pool *rp);

/* Pass the end of the stream on to d->dst (FIN, or close_notify + FIN). */
void relay_dir_shutdown(struct relay_dir *d);

#endif /* MQLB_RELAY_H */
