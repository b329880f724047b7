/*
 * session.c: a client connection and its broker connection, from accept
 * to close. Everything a session holds is released by session_close(),
 * the one way out (nginx's ngx_stream_proxy_finalize); callbacks return
 * right after calling it.
 *
 *  accept ─┬─> [HANDSHAKE] ─┬─> [PEEK] ─┐    [X]: only with a tls listener,
 *          ├────────────────┘           │    mqtt-client-id, sni on a plain
 *          └─> [HELLO] ─────────────┐   │    address, backend_tls
 *                                   v   v
 *           ┌─ next backend ──> CONNECTING <─── retry, 0.1 s ───┐
 *           │  (refused or        │ │    │                       │
 *           │   timed out,        │ │    └─ no socket ─> WAIT_FD ─┘
 *           │   within retries) ──┘ │
 *           │                       │ connected
 *           │                       v
 *           │               [UP_HANDSHAKE]
 *           │                       │
 *           │                       v
 *           └── replay ────── RELAYING ──────> closed
 *        (the broker failed before its first byte:
 *         the client's bytes go to the next backend;
 *         once the client spoke, only with replay = on)
 *
 * Every state ends in session_close(): both directions ended, an error,
 * the idle timeout, the down sweep, shutdown, no live backend, the
 * retries used up, a timeout while peeking or handshaking, or no
 * descriptor for connect_timeout.
 *
 * With max_queue, a CONNECTING session whose pool has every backend at
 * max_conns or its connect rate waits QUEUED in the pool's queue (oldest
 * served first) until a slot is granted (CONNECTING again) or
 * queue_timeout. A relaying session may also end at max_session_duration
 * or be closed by the rebalancer (rebalance = paced).
 *
 * While relaying, each direction runs relay_pump() through the plain or
 * TLS I/O ops of its ends, and says what it waits for; session_watch()
 * turns the two directions' waits into what each socket's one watcher
 * asks for: a full receiver stops its sender's reader and starts its own
 * writer (backpressure), and TLS that must write to read (or read to
 * write) gets the other readiness of the same socket. An end of stream is passed on
 * once every byte before it is delivered (half-close): FIN, or
 * close_notify then FIN towards a TLS peer. A socket whose reader is
 * stopped is still looked at for a reset or hang-up by the session timer
 * (SESSION_PROBE_S), so a vanished peer never waits for idle_timeout.
 *
 * A broker that goes away before its first byte (session_broker_gone):
 *   client said nothing yet      -> another backend; a failure of this
 *                                   broker only right after the connect
 *                                   and if it answered nobody since
 *   client spoke, replay = on    -> its bytes (a bounded copy) go to
 *                                   another backend; never a failure
 *   client spoke, replay = off   -> the session ends as any other
 * so a client cannot get a broker marked down by what it sends.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mqlb/admission.h"
#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/config.h"
#include "mqlb/heartbeat.h"
#include "mqlb/lb.h"
#include "mqlb/lifetime.h"
#include "mqlb/log.h"
#include "mqlb/mqtt_connect.h"
#include "mqlb/net.h"
#include "mqlb/pool.h"
#include "mqlb/proxy_proto.h"
#include "mqlb/relay.h"
#include "mqlb/session.h"
#include "mqlb/tls.h"
#include "mqlb/waitq.h"
#include "mqlb/tls_hello.h"

/* A broker that drops a silent session this soon after the connect is
 * taken for dead, and the session moves on to another one. */
#define SESSION_REPLAY_WINDOW_S 1.0

/* replay = on keeps a copy of what the client sent before the broker's
 * first byte: at most this much (a first request, a handshake) ... */
#define SESSION_REPLAY_MAX      2048
/* ... and for at most this long after the connect. */
#define SESSION_REPLAY_HOLD_S   5.0

/* A reader stopped for backpressure: look for a reset this often. */
#define SESSION_PROBE_S         0.25
/* A half-closed side (its FIN seen): look for a reset this often. */
#define SESSION_PROBE_HALF_S    2.0

/* Bytes relayed between two updates of the backend's byte counters (and
 * at close), so that /status moves during a long transfer. */
#define SESSION_ACCOUNT_BYTES   65536

/* Out of descriptors for the broker socket: try again this often, for up
 * to connect_timeout, while the client waits. */
#define SESSION_FD_RETRY_S      0.1

enum session_state {
    SESSION_PEEK = 0,       /* reading the MQTT CONNECT for its client id */
    SESSION_CONNECTING,     /* non-blocking connect in flight */
    SESSION_RELAYING,
    SESSION_WAIT_FD,        /* no descriptor for the broker socket yet */
    SESSION_HANDSHAKE,      /* TLS handshake with the client */
    SESSION_HELLO,          /* reading a ClientHello: SNI passthrough */
    SESSION_UP_HANDSHAKE,   /* TLS handshake with the broker */
    SESSION_QUEUED,         /* waiting in the pool's queue for a slot */
};

/* A session idle this long counts as idle for rebalancing (closed first). */
#define SESSION_SHED_IDLE_S     1.0

/* While clients wait, look for freed connect-rate tokens this often. */
#define SESSION_QUEUE_POLL_S    0.02
/* Queued clients one poll() looks at for resets (every SESSION_PROBE_S). */
#define SESSION_QUEUE_PROBE_BATCH   256

/* What a session holds only while it waits in its pool's queue. */
struct session_wait {
    struct waitq_entry  qe;             /* in the pool's queue */
    struct session     *s;              /* whose entry this is */
    struct session     *prev, *next;    /* env->queued */
};

/*
 * What a session needs until its broker answers (while <replayable>, so
 * also while a copy for a replay is kept): which backends to pick no more
 * (a failed connect, a replay), and the connect's times.
 */
struct session_dial {
    struct pool_tried   tried;          /* backends that failed us */
    uint64_t            connect_at_us;  /* monotonic, of the connect */
    ev_tstamp           fd_wait_since;  /* 0, or when WAIT_FD began */
    ev_tstamp           connected_at;   /* when the broker connect ended */
    uint64_t            connected_ms;   /* <connected_at>, mq_now_ms() */
};

/* SNI routing (sni = on the address): the candidate pools until the
 * server name picks one, and the hook the TLS handshake asks. */
struct session_route {
    struct tls_sni_hook hook;           /* asks session_sni_pick; kept as
                                           long as the session's TLS */
    struct pool        *picked;         /* the candidate SNI chose */
    unsigned            refused:1;      /* no pool for the name */
    size_t              n;              /* candidates still held */
    struct pool        *pools[];        /* one reference each */
};

/*
 * A session. An idle one costs this struct and nothing else (no relay
 * buffer, no text): what only some sessions need (a queue entry, SNI
 * candidates, max_session_duration's timer, the keepalive reader of
 * idle_timeout = auto) is allocated on its own while it is needed.
 * Fields are ordered so that the compiler leaves no holes.
 */
struct session {
    struct session     *prev, *next;    /* env->sessions */
    struct session_env *env;            /* the owner's loop, buffers */
    struct pool        *pool;           /* one reference */
    struct backend     *b;              /* chosen backend, counted */
    uint64_t            id;
    uint64_t            key;            /* hash for source/client-id */
    int                 cfd;            /* client socket */
    int                 ufd;            /* upstream socket, -1 if none */
    unsigned            ntries;         /* connect attempts made */
    unsigned            state:4;        /* enum session_state */
    unsigned            first_fin:2;    /* enum handover_fin: who ended
                                           first, for the log */
    unsigned            replayable:1;   /* broker has not answered yet */
    unsigned            tentative:1;    /* relaying while the connect may
                                           still be in flight (session_dial):
                                           the first byte through the broker
                                           socket confirms it, an error
                                           there fails it */
    unsigned            frozen:1;       /* exported for a takeover */
    unsigned            idle_client:1;  /* only the client's silence counts
                                           (idle_timeout = auto, known) */
    ev_io               cio;            /* the client socket's watcher */
    ev_io               uio;            /* the upstream socket's watcher */
    ev_timer            timer;          /* connect, peek or idle timeout */
    struct relay_dir    up;             /* client -> broker */
    struct relay_dir    down;           /* broker -> client */
    ev_tstamp           last_active;    /* for the idle timeout */
    ev_tstamp           last_client;    /* client -> broker bytes last */
    uint64_t            start_ms;
    uint64_t            idle_ms;        /* this session's idle timeout,
                                           0 = never */
    uint32_t            bytes_in_acct;  /* up.nbytes when last added to the
                                           backend, its low 32 bits (less
                                           than 4 GiB come between two) */
    uint32_t            bytes_out_acct; /* the same, of down.nbytes */
    struct admission_ticket ticket;     /* slots held; the client address */
    struct tls_conn    *ctls;           /* TLS with the client, or NULL */
    struct tls_conn    *utls;           /* TLS with the broker, or NULL */
    ev_timer           *life;           /* max_session_duration, or NULL */
    struct heartbeat_reader *hb;        /* idle_timeout = auto, until the
                                           keepalive is known (after an
                                           MQTT 5 CONNECT, until the
                                           broker's CONNACK); or NULL */
    struct session_dial *dial;          /* from the first connect until the
                                           broker answers, else NULL */
    struct session_wait *wait;          /* while QUEUED, else NULL */
    struct session_route *route;        /* sni = on the address, or NULL */
};

static void session_connect(struct session *s);
static void session_connect_failed(struct session *s, const char *what,
                                   int err);
static bool session_broker_gone(struct session *s, int err);
static int session_pump(struct session *s, int from_upstream);
static void session_begin(struct session *s);
static bool session_dial(struct session *s);
static bool session_tentative_done(struct session *s, int from_upstream,
                                   enum relay_status st, uint64_t before);
static void session_dequeue(struct session *s);
static void session_queue_kick(struct pool *pool);
static void session_idle_arm(struct session *s);
static ev_tstamp session_idle_since(const struct session *s);
static void session_observe(void *arg, const char *p, size_t n);
static void session_observe_broker(void *arg, const char *p, size_t n);
static void session_route_drop(struct session *s);

/* ---- bookkeeping ----------------------------------------------------- */

/*
 * The client's "IP:PORT", written when a line or a listing needs it: an
 * idle session keeps the address, not its text. Valid until the next
 * call on this thread (one per log line).
 */
static const char *
session_client(const struct session *s)
{
    static _Thread_local char text[NET_ADDR_LEN];

    net_format(&s->ticket.peer.sa, text, sizeof(text));
    return text;
}

/* Free <s> and what it allocated on the side (its references, sockets
 * and ticket are given back already). */
static void
session_free(struct session *s)
{
    free(s->dial);
    free(s->life);
    free(s->hb);
    free(s->wait);
    free(s->route);
    free(s);
}

static void
session_link(struct session_env *env, struct session *s)
{
    s->prev = NULL;
    s->next = env->sessions;
    if (env->sessions != NULL) {
        env->sessions->prev = s;
    }
    env->sessions = s;
    env->nsessions++;
}

static void
session_unlink(struct session_env *env, struct session *s)
{
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        env->sessions = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    env->nsessions--;
}

/* Move the bytes relayed since last time into the backend's counters. */
static void
session_account(struct session *s)
{
    if (s->b == NULL) {
        return;
    }
    uint32_t in = (uint32_t)s->up.nbytes - s->bytes_in_acct;
    uint32_t out = (uint32_t)s->down.nbytes - s->bytes_out_acct;

    if (in != 0) {
        atomic_fetch_add_explicit(&s->b->bytes_in, in, memory_order_relaxed);
        s->bytes_in_acct = (uint32_t)s->up.nbytes;
    }
    if (out != 0) {
        atomic_fetch_add_explicit(&s->b->bytes_out, out,
                                  memory_order_relaxed);
        s->bytes_out_acct = (uint32_t)s->down.nbytes;
    }
}

static void
session_stop_watchers(struct session *s)
{
    struct ev_loop *loop = s->env->loop;

    ev_io_stop(loop, &s->cio);
    ev_io_stop(loop, &s->uio);
    ev_timer_stop(loop, &s->timer);
    if (s->life != NULL) {
        ev_timer_stop(loop, s->life);
    }
}

/* (Re)start the session's one timer to fire once, <secs> from now. */
static void
session_timer_arm(struct session *s, ev_tstamp secs)
{
    ev_timer_stop(s->env->loop, &s->timer);
    ev_timer_set(&s->timer, secs, 0.);
    ev_timer_start(s->env->loop, &s->timer);
}

/* Drop the upstream connection (before a retry, or at close). */
static void
session_drop_upstream(struct session *s)
{
    struct ev_loop *loop = s->env->loop;

    ev_io_stop(loop, &s->uio);
    if (s->utls != NULL) {
        tls_free(s->utls);
        s->utls = NULL;
        s->up.dst_io = NULL;
        s->up.dst_conn = NULL;
        s->down.src_io = NULL;
        s->down.src_conn = NULL;
    }
    if (s->ufd != -1) {
        close(s->ufd);
        s->ufd = -1;
    }
}

/* Lines a client can cause at will: rate-limited (log_ratelimit_ok). */
static struct log_ratelimit session_gone_rl;
static struct log_ratelimit session_peek_rl;

/* The broker answered, or the copy is too old or incomplete: drop it. */
static void
session_tap_release(struct session *s)
{
    relay_tap_free(&s->up);
}

void
session_close(struct session *s, const char *reason)
{
    struct session_env *env = s->env;
    struct log_session ls;

    session_stop_watchers(s);
    session_account(s);
    session_drop_upstream(s);
    if (s->ctls != NULL) {
        tls_free(s->ctls);
        s->ctls = NULL;
    }
    session_route_drop(s);
    close(s->cfd);
    relay_dir_close(&s->up, env->rp);
    relay_dir_close(&s->down, env->rp);
    session_tap_release(s);

    ls.id = s->id;
    ls.client = session_client(s);
    ls.pool = s->pool->cf->name;
    ls.backend = s->b != NULL ? s->b->name : "-";
    ls.bytes_in = s->up.nbytes;
    ls.bytes_out = s->down.nbytes;
    ls.duration_ms = mq_now_ms() - s->start_ms;
    ls.idle_ms = s->idle_ms;
    pool_count_duration(s->pool, ls.duration_ms);
    ls.end = reason;
    if (s->state != SESSION_HANDSHAKE && s->state != SESSION_HELLO) {
        /* A client that never finished its TLS handshake or ClientHello
         * (scanners, bad certificates) is counted by reason, not logged:
         * no flood. */
        log_session_end(&ls);
    }

    if (s->state == SESSION_QUEUED) {
        session_dequeue(s);
    }
    if (s->b != NULL) {
        backend_session_end(s->b);
        s->b = NULL;
        /* A slot is free: the oldest waiting client may take it. */
        session_queue_kick(s->pool);
    }
    session_unlink(env, s);
    admission_return(&s->ticket);
    pool_release(s->pool);
    session_free(s);
    env->on_closed(env->ctx);
}

void
session_close_all(struct session_env *env, const char *reason)
{
    while (env->sessions != NULL) {
        session_close(env->sessions, reason);
    }
}

void
session_sweep_down(struct session_env *env)
{
    struct session *s, *next;

    for (s = env->sessions; s != NULL; s = next) {
        next = s->next;
        if (s->pool->cf->close_on_down && s->b != NULL &&
            s->state == SESSION_RELAYING && !s->frozen &&
            !atomic_load_explicit(&s->b->up, memory_order_relaxed)) {
            session_close(s, "backend down");
        }
    }
}

/* True when <s> is in <pool> with <backend> (NULL or "" = any) and <id>. */
static bool
session_matches(const struct session *s, const char *pool,
                const char *backend, uint64_t id)
{
    if (id != 0 && s->id != id) {
        return false;
    }
    if (pool != NULL && pool[0] != '\0' &&
        strcmp(s->pool->cf->name, pool) != 0) {
        return false;
    }
    if (backend != NULL && backend[0] != '\0' &&
        (s->b == NULL || strcmp(s->b->name, backend) != 0)) {
        return false;
    }
    return true;
}

/* What GET /sessions calls the state of <s>. */
static const char *
session_state_name(const struct session *s)
{
    switch ((enum session_state)s->state) {
    case SESSION_PEEK:          return "reading_connect";
    case SESSION_CONNECTING:    return "connecting";
    case SESSION_RELAYING:      return s->tentative ? "connecting" : "relaying";
    case SESSION_WAIT_FD:       return "waiting_descriptor";
    case SESSION_HANDSHAKE:     return "tls_handshake";
    case SESSION_HELLO:         return "reading_client_hello";
    case SESSION_UP_HANDSHAKE:  return "backend_tls_handshake";
    case SESSION_QUEUED:        return "queued";
    }
    return "unknown";
}

size_t
session_list(struct session_env *env, const char *pool, const char *backend,
             struct session_info *out, size_t max)
{
    struct session *s;
    ev_tstamp now = ev_now(env->loop);
    uint64_t now_ms = mq_now_ms();
    size_t n = 0;

    for (s = env->sessions; s != NULL && n < max; s = s->next) {
        if (!session_matches(s, pool, backend, 0)) {
            continue;
        }
        memset(&out[n], 0, sizeof(out[n]));
        out[n].id = s->id;
        snprintf(out[n].client, sizeof(out[n].client), "%s",
                 session_client(s));
        snprintf(out[n].pool, sizeof(out[n].pool), "%s", s->pool->cf->name);
        if (s->b != NULL) {
            snprintf(out[n].backend, sizeof(out[n].backend), "%s",
                     s->b->name);
        }
        out[n].age_ms = now_ms > s->start_ms ? now_ms - s->start_ms : 0;
        out[n].bytes_in = s->up.nbytes;
        out[n].bytes_out = s->down.nbytes;
        out[n].idle_ms = now > s->last_active && s->last_active > 0
                         ? (uint64_t)((now - s->last_active) * 1000.0) : 0;
        out[n].idle_timeout_ms = s->idle_ms;  /* auto: the one in force */
        out[n].state = session_state_name(s);
        n++;
    }
    return n;
}

size_t
session_close_matching(struct session_env *env, const char *pool,
                       const char *backend, uint64_t id, const char *reason)
{
    struct session *s, *next;
    size_t n = 0;

    for (s = env->sessions; s != NULL; s = next) {
        next = s->next;
        /* A session frozen for a takeover is being handed over: it is
         * the successor's to close, or ours again after a thaw. */
        if (!s->frozen && session_matches(s, pool, backend, id)) {
            session_close(s, reason);
            n++;
        }
    }
    return n;
}

/* ---- relaying -------------------------------------------------------- */

/*
 * One step of the TLS handshake on <tls>, watched by <w> on <fd>. On
 * MQ_AGAIN <w> waits for what OpenSSL wants next; otherwise <w> is
 * stopped and MQ_OK or MQ_ERR (with <why> and <err>) returned.
 */
static int
session_tls_step(struct session *s, struct tls_conn *tls, ev_io *w, int fd,
                 enum tls_result *why, char *err, size_t errlen)
{
    struct ev_loop *loop = s->env->loop;
    int want, rc;

    rc = tls_handshake(tls, &want, why, err, errlen);
    ev_io_stop(loop, w);
    if (rc == MQ_AGAIN) {
        ev_io_set(w, fd, want == RELAY_WANT_WRITE ? EV_WRITE : EV_READ);
        ev_io_start(loop, w);
    }
    return rc;
}

/* Relay through <tls> on the client's side (<client>) or the broker's. */
static void
session_use_tls(struct session *s, struct tls_conn *tls, int client)
{
    struct relay_dir *from = client ? &s->up : &s->down;
    struct relay_dir *to = client ? &s->down : &s->up;

    from->src_io = to->dst_io = &tls_relay_io;
    from->src_conn = to->dst_conn = tls;
}

/* Is <w> watching its socket for <events> (EV_READ, EV_WRITE)? */
static bool
session_watching(const ev_io *w, int events)
{
    return ev_is_active(w) && (w->events & events) != 0;
}

/*
 * One readiness (<write> or not) of one socket (<client>'s or the
 * broker's) serves the direction that waits for exactly that, first the
 * one whose wait is the unusual kind (with TLS a write may need to read,
 * a read to write): client readable runs the downstream direction if its
 * write waits to read, then the upstream direction if it waits to read;
 * and so on for the other three. MQ_ERR if the session is gone.
 */
static int
session_io_ready(struct session *s, int client, int write)
{
    int first = client != write;                /* 1: the downstream */
    struct relay_dir *d = first ? &s->down : &s->up;
    struct relay_dir *other = first ? &s->up : &s->down;

    if (d->wait == (write ? RELAY_WAIT_SRC_WRITE : RELAY_WAIT_DST_READ) &&
        session_pump(s, first) != MQ_OK) {
        return MQ_ERR;
    }
    if (other->wait == (write ? RELAY_WAIT_DST_WRITE : RELAY_WAIT_SRC_READ)) {
        return session_pump(s, !first);
    }
    return MQ_OK;
}

/*
 * A socket's relay watcher fired (w->data is the session; one watcher a
 * socket, for what the two directions wait for on it): its readiness to
 * read first, then to write, while the session lives and the watcher
 * still asks for it (as a stopped watcher's pending event is dropped).
 */
static void
session_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct session *s = w->data;
    int client = w == &s->cio;

    (void)loop;
    if ((revents & EV_READ) && session_io_ready(s, client, 0) != MQ_OK) {
        return;
    }
    if ((revents & EV_WRITE) && session_watching(w, EV_WRITE)) {
        session_io_ready(s, client, 1);
    }
}

/* Watch <w>'s socket for <want> (RELAY_WANT_* bits; 0 stops it). A
 * watcher already watching for that is left alone. */
static void
session_watch_one(struct ev_loop *loop, ev_io *w, unsigned want)
{
    int events = ((want & RELAY_WANT_READ) ? EV_READ : 0) |
                 ((want & RELAY_WANT_WRITE) ? EV_WRITE : 0);

    if (ev_is_active(w) && (w->events & (EV_READ | EV_WRITE)) == events) {
        return;
    }
    ev_io_stop(loop, w);
    if (events != 0) {
        ev_io_modify(w, events);
        ev_io_start(loop, w);
    }
}

/* The two sockets' watchers from what the two directions wait for. */
static void
session_watch(struct session *s)
{
    struct ev_loop *loop = s->env->loop;

    session_watch_one(loop, &s->cio,
                      relay_socket_wants(s->up.wait, s->down.wait));
    session_watch_one(loop, &s->uio,
                      relay_socket_wants(s->down.wait, s->up.wait));
}

/* Did the broker go away (reset, closed, refused a write) before its
 * first byte? */
static bool
session_broker_failed(struct session *s, int from_upstream,
                      enum relay_status st)
{
    bool failed = (from_upstream && (st == RELAY_ERR_SRC ||
                                     (st == RELAY_EOF && !s->up.eof))) ||
                  (!from_upstream && st == RELAY_ERR_DST);

    return failed && s->down.nbytes == 0;
}

/* How soon to look for hang-ups: a stopped reader of a side that has not
 * ended soon, one whose FIN came less often; 0 when both readers run. */
static ev_tstamp
session_probe_period(const struct session *s)
{
    bool c_off = !session_watching(&s->cio, EV_READ);
    bool u_off = !session_watching(&s->uio, EV_READ);

    if ((c_off && !s->up.eof) || (u_off && !s->down.eof)) {
        return SESSION_PROBE_S;
    }
    return c_off || u_off ? SESSION_PROBE_HALF_S : 0;
}

/*
 * A reader may have been stopped (backpressure, its side's FIN, TLS
 * waiting to write): make sure the timer looks at the sockets soon, or a
 * reset there would go unseen.
 */
static void
session_watch_hangup(struct session *s)
{
    struct ev_loop *loop = s->env->loop;
    ev_tstamp period = session_probe_period(s);

    if (period > 0 && (!ev_is_active(&s->timer) ||
                       ev_timer_remaining(loop, &s->timer) > period)) {
        s->timer.repeat = period;
        ev_timer_again(loop, &s->timer);
    }
}

/*
 * The close reason for <who>'s socket <fd>, which poll() said is hung up
 * or in error, into <reason>: "client reset", "backend error: ...".
 * False for a clean hang-up (no error on the socket).
 */
static bool
session_hangup_reason(int fd, const char *who, char *reason, size_t len)
{
    int err = net_socket_error(fd);

    if (err == 0) {
        return false;
    }
    if (err == ECONNRESET || err == EPIPE) {
        snprintf(reason, len, "%s reset", who);
    } else {
        snprintf(reason, len, "%s error: %s", who, strerror(err));
    }
    return true;
}

/*
 * Look for a reset or hang-up on the sockets whose readers are stopped;
 * close the session if one is found (true: <s> is gone).
 */
static bool
session_hung_up(struct session *s)
{
    struct pollfd pfd[2];
    const char *who[2];
    char reason[96];
    int n = 0, i;

    if (!session_watching(&s->cio, EV_READ)) {
        pfd[n].fd = s->cfd;
        who[n++] = "client";
    }
    if (!session_watching(&s->uio, EV_READ) && s->ufd != -1) {
        pfd[n].fd = s->ufd;
        who[n++] = "backend";
    }
    for (i = 0; i < n; i++) {
        pfd[i].events = 0;      /* POLLERR and POLLHUP come regardless */
        pfd[i].revents = 0;
    }
    if (n == 0 || poll(pfd, (nfds_t)n, 0) <= 0) {
        return false;
    }
    for (i = 0; i < n; i++) {
        if ((pfd[i].revents & (POLLERR | POLLHUP)) == 0) {
            continue;
        }
        if (!session_hangup_reason(pfd[i].fd, who[i], reason,
                                   sizeof(reason))) {
            /*
             * A clean hang-up (its FIN after ours) is the end of a normal
             * exchange, and bytes it sent may still wait in the socket
             * for a reader stopped by backpressure: the relay finishes
             * it. Only a reset or an error ends the session early.
             */
            continue;
        }
        session_close(s, reason);
        return true;
    }
    return false;
}

/* Arm the relaying timer for the nearest of: idle timeout, the end of
 * the replay copy's life, the next look for hang-ups. */
static void
session_relay_timer(struct session *s)
{
    struct ev_loop *loop = s->env->loop;
    ev_tstamp now = ev_now(loop), next = -1, t;

    if (s->idle_ms > 0) {
        next = session_idle_since(s) + mq_secs(s->idle_ms) - now;
    }
    if (s->up.tap != NULL) {
        t = s->dial->connected_at + SESSION_REPLAY_HOLD_S - now;
        next = next < 0 || t < next ? t : next;
    }
    t = session_probe_period(s);
    if (t > 0) {
        next = next < 0 || t < next ? t : next;
    }
    if (s->idle_ms == 0 && s->up.tap == NULL && t == 0) {
        ev_timer_stop(loop, &s->timer);
        return;
    }
    s->timer.repeat = next > 0.001 ? next : 0.001;
    ev_timer_again(loop, &s->timer);
}

/*
 * Run one direction and set the watchers from the outcome. The direction
 * (and its names) comes from one flag, as nginx's
 * ngx_stream_proxy_process(s, from_upstream) does. MQ_ERR if the session
 * is gone (closed, or handed to a replay).
 */
static int
session_pump(struct session *s, int from_upstream)
{
    struct ev_loop *loop = s->env->loop;
    struct relay_dir *d = from_upstream ? &s->down : &s->up;
    const char *src = from_upstream ? "backend" : "client";
    const char *dst = from_upstream ? "client" : "backend";
    uint64_t before = d->nbytes;
    enum relay_status st;
    char reason[96];

    st = relay_pump(d, s->env->rp, RELAY_BUDGET);
    if (s->tentative && session_tentative_done(s, from_upstream, st, before)) {
        return MQ_ERR;
    }
    if (d->nbytes != before) {
        s->last_active = ev_now(loop);
        if (!from_upstream) {
            s->last_client = s->last_active;
        }
    }
    if (s->replayable && s->down.nbytes > 0) {
        /* The broker answered: it is alive, nothing is replayed and no
         * other backend is picked: the session keeps none of that. */
        s->replayable = 0;
        session_tap_release(s);
        mq_free(s->dial);
        atomic_store_explicit(&s->b->answered_ms, mq_now_ms(),
                              memory_order_relaxed);
    } else if (s->up.tap_full && s->up.tap != NULL) {
        session_tap_release(s);     /* incomplete: no use for a replay */
    }
    if (s->replayable && session_broker_failed(s, from_upstream, st) &&
        session_broker_gone(s, st == RELAY_EOF ? 0 : d->err)) {
        return MQ_ERR;
    }
    switch (st) {
    case RELAY_IDLE:
    case RELAY_YIELD:
    case RELAY_BLOCKED:
        session_watch(s);
        if (!s->tentative) {
            /* (A tentative session's timer is its connect timeout.) */
            session_watch_hangup(s);
        }
        break;
    case RELAY_EOF:
        /* Pass the end on; the other direction may still run. When this
         * end was the last one, the close just below sends the FIN (the
         * socket has nothing left unread: its own direction ended), so a
         * plain socket needs no shutdown() first; TLS still says
         * close_notify. */
        if (!(s->up.eof && s->down.eof) || d->dst_io != NULL) {
            relay_dir_shutdown(d);
        }
        if (s->first_fin == HANDOVER_FIN_NONE) {
            s->first_fin = from_upstream ? HANDOVER_FIN_BACKEND
                                         : HANDOVER_FIN_CLIENT;
        }
        if (s->up.eof && s->down.eof) {
            session_close(s, s->first_fin == HANDOVER_FIN_BACKEND
                          ? "backend closed" : "client closed");
            return MQ_ERR;
        }
        session_watch(s);
        session_watch_hangup(s);
        return MQ_OK;
    case RELAY_ERR_SRC:
    case RELAY_ERR_DST:
        if (d->err == ECONNRESET || d->err == EPIPE) {
            snprintf(reason, sizeof(reason), "%s %s", st == RELAY_ERR_SRC
                     ? src : dst, d->err == EPIPE ? "closed" : "reset");
        } else {
            snprintf(reason, sizeof(reason), "%s error: %s",
                     st == RELAY_ERR_SRC ? src : dst, strerror(d->err));
        }
        session_close(s, reason);
        return MQ_ERR;
    case RELAY_NOMEM:
        session_close(s, "out of memory");
        return MQ_ERR;
    }
    if (s->b != NULL && (uint32_t)((uint32_t)d->nbytes
                                   - (from_upstream ? s->bytes_out_acct
                                                    : s->bytes_in_acct))
        >= SESSION_ACCOUNT_BYTES) {
        session_account(s);
    }
    return MQ_OK;
}

static void
session_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct session *s = container_of(w, struct session, timer);
    ev_tstamp idle, left;

    (void)revents;
    switch ((enum session_state)s->state) {
    case SESSION_PEEK:
        session_close(s, "no MQTT CONNECT in time");
        return;
    case SESSION_HANDSHAKE:
    case SESSION_HELLO:
        atomic_fetch_add_explicit(&s->pool->ntls[TLS_RESULT_TIMEOUT], 1,
                                  memory_order_relaxed);
        session_close(s, s->state == SESSION_HELLO ? "no TLS ClientHello in "
                      "time" : "TLS handshake timeout");
        return;
    case SESSION_UP_HANDSHAKE:
    case SESSION_CONNECTING:
        session_connect_failed(s, s->state == SESSION_UP_HANDSHAKE
                               ? "TLS handshake" : "connect", ETIMEDOUT);
        session_connect(s);
        return;
    case SESSION_WAIT_FD:
        session_connect(s);
        return;
    case SESSION_QUEUED:
        session_dequeue(s);
        pool_reject(s->pool, REJECT_QUEUE);
        session_close(s, "queue timeout");
        return;
    case SESSION_RELAYING:
        if (session_hung_up(s)) {
            return;
        }
        if (s->up.tap != NULL &&
            ev_now(loop) - s->dial->connected_at
            >= SESSION_REPLAY_HOLD_S - 0.001) {
            session_tap_release(s);     /* kept long enough */
        }
        idle = mq_secs(s->idle_ms);
        left = session_idle_since(s) + idle - ev_now(loop);
        if (idle > 0 && left <= 0.001) {
            session_close(s, "idle timeout");
            return;
        }
        /* Traffic since, a look for hang-ups, or the copy: sleep on. */
        (void)w;
        session_relay_timer(s);
        return;
    }
}

/*
 * The broker went away before its first byte (<err>: 0 for a clean
 * close, else errno): move the session to another backend if no byte can
 * be duplicated by it, or replay = on allows it; see the table at the
 * top. True when the session moved or closed (then <s> may be gone),
 * false to end it as any other session ends.
 */
static bool
session_broker_gone(struct session *s, int err)
{
    struct ev_loop *loop = s->env->loop;
    bool spoke = s->up.nbytes > 0;      /* the broker got client bytes */
    bool early = ev_now(loop) - s->dial->connected_at
                 < SESSION_REPLAY_WINDOW_S;
    const char *how = err == 0 ? "closed the connection"
                      : err == ECONNRESET ? "reset the connection"
                      : "failed";
    char what[96];
    uint64_t nsup;

    if (spoke ? s->up.tap == NULL || s->up.tap_full
              : !early && s->up.len == s->up.off) {
        /* The client spoke and replay is off (or the copy is gone), or
         * the broker ended a quiet session after a while: as any end. */
        return false;
    }
    snprintf(what, sizeof(what), "broker %s before answering", how);
    session_account(s);
    if (!spoke && early &&
        atomic_load_explicit(&s->b->answered_ms, memory_order_relaxed)
        <= s->dial->connected_ms) {
        /* Silent client, broker gone at once, and nobody else heard it
         * since: a dead broker's backlog. Its failure. */
        session_connect_failed(s, what, err == ECONNRESET ? 0 : err);
    } else {
        if (log_ratelimit_ok(&session_gone_rl, &nsup)) {
            log_warn("%s/%s (%s): %s, session #%llu client=%s %s to another "
                     "backend%s", s->pool->cf->name, s->b->name,
                     backend_addr(s->b)->text, what, (unsigned long long)s->id,
                     session_client(s), spoke ? "replayed" : "moved",
                     nsup > 0 ? " (and similar lines suppressed)" : "");
        }
        pool_tried_set(&s->dial->tried, pool_backend_index(s->pool, s->b));
        backend_session_end(s->b);
        s->b = NULL;
        session_drop_upstream(s);
    }
    ev_io_stop(loop, &s->cio);
    ev_timer_stop(loop, &s->timer);
    relay_dir_release(&s->down, s->env->rp);
    if (spoke) {
        /* Everything read from the client is in the copy. */
        relay_dir_release(&s->up, s->env->rp);
        if (s->up.taplen > 0) {
            s->up.buf = relay_buf_get(s->env->rp);
            if (s->up.buf == NULL) {
                session_close(s, "out of memory");
                return true;
            }
            memcpy(s->up.buf, s->up.tap, s->up.taplen);
            s->up.len = s->up.taplen;
        }
    }
    /* (Not spoken: what waits in s->up never reached the broker and goes
     * to the next one as it is.) */
    s->up.nbytes = 0;
    s->bytes_in_acct = 0;
    s->down.eof = 0;
    s->first_fin = HANDOVER_FIN_NONE;
    session_connect(s);
    return true;
}

/* ---- lifetime: idle timeout, max duration --------------------------- */

/* When the session's silence counts from: the client's alone once its
 * protocol's keepalive is known, else either direction's. */
static ev_tstamp
session_idle_since(const struct session *s)
{
    return s->idle_client ? s->last_client : s->last_active;
}

/* The idle timeout changed: the relay timer follows it. */
static void
session_idle_arm(struct session *s)
{
    session_relay_timer(s);
}

/*
 * The keepalive reader showed the bytes of <d> decided <res>: once it is
 * not MORE, <d> shows it no more bytes, and a keepalive FOUND (<what>:
 * "keepalive", ...) becomes the session's idle timeout by the
 * protocol's rule. False while it reads on.
 */
static bool
session_keepalive_decided(struct session *s, struct relay_dir *d,
                          enum heartbeat_result res, const char *what)
{
    (void)what;                 /* log_debug may compile away */
    if (res == HEARTBEAT_MORE) {
        return false;
    }
    d->observe = NULL;          /* decided: the relay may splice again */
    if (res == HEARTBEAT_FOUND) {
        s->idle_ms = lifetime_auto_idle_ms(s->hb);
        log_debug("session #%llu client=%s: %s %s %us, idle timeout %llums",
                  (unsigned long long)s->id, session_client(s),
                  heartbeat_proto_name(s->hb->proto), what,
                  s->hb->interval_s, (unsigned long long)s->idle_ms);
        session_idle_arm(s);
    }
    return true;
}

/*
 * The relay read <n> bytes <p> from the client (idle_timeout = auto):
 * once the protocol says its keepalive, the session's idle timeout is
 * that rule, counted on the client's silence alone (a broker sends
 * heartbeats to a dead client too).
 */
static void
session_observe(void *arg, const char *p, size_t n)
{
    struct session *s = arg;
    enum heartbeat_result res;

    res = heartbeat_feed(s->hb, (const uint8_t *)p, n);
    if (res == HEARTBEAT_FOUND) {
        s->idle_client = 1;
        s->last_client = ev_now(s->env->loop);
    }
    if (!session_keepalive_decided(s, &s->up, res, "keepalive")) {
        return;
    }
    if (heartbeat_connack_wanted(s->hb) && s->down.nbytes == 0 &&
        s->down.len == s->down.off) {
        /* MQTT 5: the broker's CONNACK may give the client another
         * keepalive, which it must use. The broker has not said a byte
         * yet (it answers the CONNECT being read), so its stream is seen
         * from the start. */
        heartbeat_connack_init(s->hb);
        s->down.observe = session_observe_broker;
        s->down.observe_arg = s;
        return;
    }
    mq_free(s->hb);             /* read to its end: the idle session
                                   keeps only the rule */
}

/*
 * The relay read <n> bytes <p> from the broker after an MQTT 5 CONNECT
 * (idle_timeout = auto): a Server Keep Alive in its CONNACK replaces the
 * client's keepalive in the rule; anything else leaves it.
 */
static void
session_observe_broker(void *arg, const char *p, size_t n)
{
    struct session *s = arg;
    enum heartbeat_result res;

    res = heartbeat_connack_feed(s->hb, (const uint8_t *)p, n);
    if (session_keepalive_decided(s, &s->down, res,
                                  "broker's Server Keep Alive")) {
        mq_free(s->hb);
    }
}

static void
session_life_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    session_close(w->data, "max duration");
}

/* The max_session_duration timer, allocated for the sessions of pools
 * that have one. MQ_ERR on no memory. */
static int
session_life_alloc(struct session *s)
{
    if (s->life == NULL) {
        s->life = malloc(sizeof(*s->life));
        if (s->life == NULL) {
            return MQ_ERR;
        }
        ev_init(s->life, session_life_cb);
        s->life->data = s;
    }
    return MQ_OK;
}

/* Start the (allocated, stopped) max_session_duration timer. */
static void
session_life_set(struct session *s, ev_tstamp secs)
{
    ev_timer_set(s->life, secs, 0.);
    ev_timer_start(s->env->loop, s->life);
}

/*
 * Arm max_session_duration for what is left of it: the pool's maximum
 * plus this session's jitter (fixed by its id and start), less its age.
 * Jitter spreads the reconnects of clients that came together.
 */
static int
session_life_start(struct session *s)
{
    const struct config_pool *cf = s->pool->cf;
    uint64_t deadline, age = mq_now_ms() - s->start_ms;

    if (cf->max_session_duration_ms == 0) {
        return MQ_OK;
    }
    if (session_life_alloc(s) != MQ_OK) {
        return MQ_ERR;
    }
    deadline = lifetime_max_ms(cf->max_session_duration_ms, s->id,
                               s->start_ms);
    session_life_set(s, mq_secs(deadline > age ? deadline - age : 1));
    return MQ_OK;
}

/* ---- the wait queue (max_queue) --------------------------------------- */

/* Reserve a backend for the queued session of <e> (under the queue lock,
 * on any thread: it reads only what the session fixed before queueing). */
static struct backend *
session_queue_pick(void *arg, struct waitq_entry *e)
{
    struct session *s = container_of(e, struct session_wait, qe)->s;

    (void)arg;
    return pool_pick(s->pool, &s->dial->tried, s->key, mq_now_ms());
}

/* Serve the oldest clients waiting in <pool>'s queue while there is room. */
static void
session_queue_kick(struct pool *pool)
{
    if (pool->cf->max_queue > 0 && waitq_len(&pool->queue) > 0) {
        waitq_dispatch(&pool->queue, session_queue_pick, NULL);
    }
}

/*
 * Close the queued sessions whose client reset while it waited: one
 * poll() for up to SESSION_QUEUE_PROBE_BATCH of them, not a timer and a
 * call each (a storm can queue thousands). A client that only
 * half-closed may still want its answer: it keeps its place.
 */
static void
session_queue_probe(struct session_env *env)
{
    struct pollfd pfd[SESSION_QUEUE_PROBE_BATCH];
    struct session *batch[SESSION_QUEUE_PROBE_BATCH];
    struct session *s = env->queued;
    char reason[96];
    int n, i;

    while (s != NULL) {
        for (n = 0; s != NULL && n < SESSION_QUEUE_PROBE_BATCH;
             s = s->wait->next) {
            pfd[n].fd = s->cfd;
            pfd[n].events = 0;  /* POLLERR and POLLHUP come regardless */
            pfd[n].revents = 0;
            batch[n++] = s;
        }
        /* <s> is the next batch's first: only this batch's sessions
         * close below (a freed slot's wake-up is posted, not run). */
        if (poll(pfd, (nfds_t)n, 0) <= 0) {
            continue;
        }
        for (i = 0; i < n; i++) {
            if ((pfd[i].revents & (POLLERR | POLLHUP)) == 0) {
                continue;
            }
            if (session_hangup_reason(pfd[i].fd, "client", reason,
                                      sizeof(reason))) {
                session_close(batch[i], reason);
            }
        }
    }
}

static void
session_queue_poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct session_env *env = container_of(w, struct session_env,
                                           queue_poll);
    struct session *s;
    struct pool *last = NULL;

    (void)revents;
    /* Connect-rate tokens come back with time, not with a close. */
    for (s = env->queued; s != NULL; s = s->wait->next) {
        if (s->pool != last) {
            session_queue_kick(s->pool);
            last = s->pool;
        }
    }
    if (ev_now(loop) - env->queue_probed >= SESSION_PROBE_S) {
        env->queue_probed = ev_now(loop);
        session_queue_probe(env);
    }
}

/* Out of the queue and env->queued; a slot granted meanwhile goes back. */
static void
session_dequeue(struct session *s)
{
    struct session_env *env = s->env;
    struct session_wait *w = s->wait;
    struct backend *b;

    b = waitq_leave(&s->pool->queue, &w->qe);
    if (w->prev != NULL) {
        w->prev->wait->next = w->next;
    } else {
        env->queued = w->next;
    }
    if (w->next != NULL) {
        w->next->wait->prev = w->prev;
    }
    mq_free(s->wait);           /* out of the queue: nobody sees it now */
    if (--env->nqueued == 0) {
        ev_timer_stop(env->loop, &env->queue_poll);
    }
    s->state = SESSION_CONNECTING;
    if (b != NULL) {
        backend_session_end(b);
        session_queue_kick(s->pool);
    }
}

/*
 * No backend has room now: wait in the pool's queue, behind the clients
 * already there, for up to queue_timeout. A full queue turns the client
 * away (reason queue).
 */
static void
session_enqueue(struct session *s)
{
    struct session_env *env = s->env;
    const struct config_pool *cf = s->pool->cf;
    struct session_wait *w;

    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        session_close(s, "out of memory");
        return;
    }
    w->s = s;
    w->qe.wake = env->on_wake;
    w->qe.wake_ctx = env->ctx;
    if (waitq_push(&s->pool->queue, &w->qe, cf->max_queue, mq_now_ms())
        != MQ_OK) {
        free(w);
        pool_reject(s->pool, REJECT_QUEUE);
        log_warn("pool %s: queue full (%u), session #%llu client=%s "
                 "closed", cf->name, cf->max_queue,
                 (unsigned long long)s->id, session_client(s));
        session_close(s, "queue full");
        return;
    }
    s->wait = w;
    s->state = SESSION_QUEUED;
    w->prev = NULL;
    w->next = env->queued;
    if (env->queued != NULL) {
        env->queued->wait->prev = s;
    }
    env->queued = s;
    if (env->nqueued++ == 0) {
        ev_timer_init(&env->queue_poll, session_queue_poll_cb,
                      SESSION_QUEUE_POLL_S, SESSION_QUEUE_POLL_S);
        ev_timer_start(env->loop, &env->queue_poll);
        env->queue_probed = ev_now(env->loop);
    }
    session_timer_arm(s, mq_secs(cf->queue_timeout_ms));
    /* Room may have come back since the pick: serve the oldest. */
    session_queue_kick(s->pool);
}

void
session_queue_run(struct session_env *env)
{
    struct session *s, *next;
    struct backend *b;

    for (s = env->queued; s != NULL; s = next) {
        next = s->wait->next;
        b = waitq_take(&s->pool->queue, &s->wait->qe);
        if (b == NULL) {
            continue;
        }
        session_dequeue(s);
        ev_timer_stop(env->loop, &s->timer);
        s->b = b;
        s->ntries++;
        if (session_dial(s)) {
            session_connect(s);     /* refused at once: the next one */
        }
    }
}

/* ---- rebalancing ----------------------------------------------------- */

/*
 * The closes the rebalancer allows for <s>: its backend's (share above
 * its weight) or, under a hashed policy, the pool's (any misplaced key).
 */
static _Atomic int64_t *
session_shed_allowance(struct session *s)
{
    const struct config_pool *cf = s->pool->cf;

    return cf->balance == BALANCE_SOURCE ||
           cf->balance == BALANCE_MQTT_CLIENT_ID ? &s->pool->shed_any
                                                 : &s->b->shed;
}

/* May the rebalancer close <s> now (<idle_only>: only if idle)? */
static bool
session_sheddable(struct session *s, ev_tstamp now, uint64_t now_ms,
                  bool idle_only)
{
    const struct config_pool *cf = s->pool->cf;

    if (s->state != SESSION_RELAYING || s->b == NULL || s->frozen ||
        cf->rebalance != REBALANCE_PACED ||
        atomic_load_explicit(session_shed_allowance(s),
                             memory_order_acquire) <= 0 ||
        now_ms - s->start_ms < cf->rebalance_min_age_ms ||
        (idle_only && now - s->last_active < SESSION_SHED_IDLE_S)) {
        return false;
    }
    if (&s->pool->shed_any == session_shed_allowance(s)) {
        /* Hashed: only a client away from its key's home moves, once that
         * home serves again, and never off a drained or disabled backend
         * (they keep theirs). While the home is away the key's stand-in
         * need not be where the client landed (a retry walks on from the
         * backend that refused it): moving it there would move it twice. */
        bool home;
        struct backend *owner;

        if (backend_state(s->b) != BACKEND_UP) {
            return false;
        }
        owner = pool_key_owner(s->pool, s->key, now_ms, &home);
        return owner != NULL && home && owner != s->b;
    }
    return true;
}

/* Take one of the closes the rebalancer allows from <left>. */
static bool
session_take_shed(_Atomic int64_t *allowance)
{
    int64_t left = atomic_load_explicit(allowance, memory_order_acquire);

    while (left > 0) {
        if (atomic_compare_exchange_weak_explicit(allowance, &left, left - 1,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire)) {
            return true;
        }
    }
    return false;
}

void
session_shed(struct session_env *env)
{
    struct session *s, *next;
    ev_tstamp now = ev_now(env->loop);
    uint64_t now_ms = mq_now_ms();
    int pass;

    /* Idle sessions first: their clients are not in the middle of
     * anything. */
    for (pass = 0; pass < 2; pass++) {
        for (s = env->sessions; s != NULL; s = next) {
            next = s->next;
            if (session_sheddable(s, now, now_ms, pass == 0) &&
                session_take_shed(session_shed_allowance(s))) {
                atomic_fetch_add_explicit(s->pool->nrebalanced, 1,
                                          memory_order_relaxed);
                session_close(s, "rebalanced");
            }
        }
    }
}

/* ---- connecting ------------------------------------------------------ */

static void
session_start_relay(struct session *s)
{
    struct ev_loop *loop = s->env->loop;
    const struct config_pool *cf = s->pool->cf;

    if (!s->tentative) {
        s->state = SESSION_RELAYING;
        s->dial->connected_at = ev_now(loop);
        s->dial->connected_ms = mq_now_ms();
        ev_timer_stop(loop, &s->timer);
    }
    ev_io_stop(loop, &s->uio);
    ev_io_init(&s->uio, session_io_cb, s->ufd, EV_READ);
    s->up.src = s->cfd;
    s->up.dst = s->ufd;
    s->down.src = s->ufd;
    s->down.dst = s->cfd;
    s->down.wait = RELAY_WAIT_SRC_READ;
    s->last_active = ev_now(loop);
    s->last_client = s->last_active;
    s->idle_client = 0;
    s->idle_ms = cf->idle_timeout_ms;
    if (cf->idle_timeout_ms == CONFIG_IDLE_AUTO) {
        /* The protocol's keepalive, read from the client's bytes as they
         * pass; the default until it is known. */
        s->idle_ms = LIFETIME_AUTO_DEFAULT_MS;
        s->down.observe = NULL;     /* a new broker: read from its start */
        if (s->hb == NULL) {
            s->hb = malloc(sizeof(*s->hb));
        }
        /* (Without memory for the reader, the default stays the rule.) */
        if (s->hb != NULL) {
            heartbeat_init(s->hb);
            s->up.observe = session_observe;
            s->up.observe_arg = s;
        }
    }
    if (s->up.observe != NULL && s->up.len > s->up.off) {
        /* Bytes read while peeking were not seen by the relay. */
        session_observe(s, s->up.buf + s->up.off, s->up.len - s->up.off);
    }
    ev_io_start(loop, &s->uio);
    /* Bytes read while peeking (or kept for the next backend) go out
     * first; pump starts the reader. A tentative session keeps its
     * connect timer until the broker is confirmed. */
    if (session_pump(s, 0) == MQ_OK && !s->tentative) {
        session_relay_timer(s);
    }
}

/* The broker socket of a tentative session moved a byte: it is
 * connected. From here on the session is relaying as any other. */
static void
session_confirm(struct session *s)
{
    struct ev_loop *loop = s->env->loop;

    s->tentative = 0;
    backend_connect_ok(s->b);
    histo_observe_us(&s->b->connect_time,
                     mq_now_us() - s->dial->connect_at_us);
    s->state = SESSION_RELAYING;
    s->dial->connected_at = ev_now(loop);
    s->dial->connected_ms = mq_now_ms();
    ev_timer_stop(loop, &s->timer);
    session_relay_timer(s);
}

/*
 * After relay_pump on a tentative session: the outcome of the connect, if
 * the pump showed it. A send to the broker or a read from it that worked
 * confirms it; an error there is a connect failure (nothing reached the
 * broker: the bytes wait in s->up for the next one). True when the
 * session moved on to another backend (or closed).
 */
static bool
session_tentative_done(struct session *s, int from_upstream,
                       enum relay_status st, uint64_t before)
{
    struct relay_dir *d = from_upstream ? &s->down : &s->up;
    bool failed = from_upstream ? st == RELAY_ERR_SRC
                                : st == RELAY_ERR_DST && d->nbytes == before;
    bool moved = d->nbytes != before || (from_upstream &&
                 (st == RELAY_EOF || st == RELAY_BLOCKED ||
                  st == RELAY_YIELD || st == RELAY_ERR_DST));

    if (failed) {
        session_connect_failed(s, "connect", d->err);
        session_connect(s);
        return true;
    }
    if (moved) {
        session_confirm(s);
    }
    return false;
}

/* The broker's TLS handshake, until done (then relay) or failed. */
static void
session_up_handshake(struct session *s)
{
    enum tls_result why;
    char err[MQ_ERR_LEN], what[MQ_ERR_LEN + 32];
    int rc;

    rc = session_tls_step(s, s->utls, &s->uio, s->ufd, &why, err,
                          sizeof(err));
    if (rc == MQ_AGAIN) {
        return;
    }
    if (rc == MQ_ERR) {
        snprintf(what, sizeof(what), "TLS handshake failed (%s)", err);
        session_connect_failed(s, what, EPROTO);
        session_connect(s);
        return;
    }
    (void)tls_slim(s->utls, 0);     /* TLS 1.3: mqlb's record layer */
    session_use_tls(s, s->utls, 0);
    session_start_relay(s);
}

static void
session_up_handshake_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    session_up_handshake(w->data);
}


/* Send the PROXY protocol header; MQ_ERR if the socket would not take it. */
static int
session_send_proxy_header(struct session *s)
{
    struct sockaddr_storage local;
    socklen_t len = sizeof(local);
    uint8_t hdr[PROXY_PROTO_V2_TLS_MAX];
    struct proxy_proto_tls pt;
    char cn[256];
    size_t n;
    ssize_t w;

    if (getsockname(s->cfd, (struct sockaddr *)&local, &len) == -1) {
        return MQ_ERR;
    }
    if (s->ctls != NULL
        && s->pool->cf->proxy_protocol == PROXY_PROTOCOL_V2)
    {
        /* What HAProxy's send-proxy-v2-ssl-cn tells a broker. */
        tls_proxy_facts(s->ctls, &pt, cn, sizeof(cn));
        n = proxy_proto_write_tls(&s->ticket.peer.sa,
                                  (struct sockaddr *)&local, &pt, hdr,
                                  sizeof(hdr));
    } else {
        n = proxy_proto_write(s->pool->cf->proxy_protocol
                              == PROXY_PROTOCOL_V1 ? 1 : 2,
                              &s->ticket.peer.sa,
                              (struct sockaddr *)&local, hdr, sizeof(hdr));
    }
    if (n == 0) {
        return MQ_ERR;
    }
    /* A fresh socket's send buffer always has room for ~100 bytes. */
    w = send(s->ufd, hdr, n, MSG_NOSIGNAL);
    return w == (ssize_t)n ? MQ_OK : MQ_ERR;
}

static void
session_connected(struct session *s)
{
    char tls_name[sizeof(((struct config_addr *)0)->text) + 256];
    const struct config_pool *cf = s->pool->cf;

    backend_connect_ok(s->b);
    histo_observe_us(&s->b->connect_time,
                     mq_now_us() - s->dial->connect_at_us);
    net_set_nodelay(s->ufd);
    net_set_keepalive(s->ufd, &cf->keepalive);
    if (cf->proxy_protocol != PROXY_PROTOCOL_OFF &&
        session_send_proxy_header(s) != MQ_OK) {
        session_close(s, "PROXY header send failed");
        return;
    }
    if (cf->tls_client != NULL) {
        /* The PROXY header goes first, in the clear, as HAProxy does. */
        backend_tls_addr(s->b, tls_name, sizeof(tls_name));
        s->utls = tls_client_conn(cf->tls_client, s->ufd, tls_name);
        if (s->utls == NULL) {
            session_close(s, "out of memory");
            return;
        }
        s->state = SESSION_UP_HANDSHAKE;
        ev_io_stop(s->env->loop, &s->uio);
        ev_io_init(&s->uio, session_up_handshake_cb, s->ufd, EV_WRITE);
        if (!ev_is_active(&s->timer)) {
            /* connect_timeout bounds the connect and the handshake */
            session_timer_arm(s, mq_secs(cf->connect_timeout_ms));
        }
        session_up_handshake(s);
        return;
    }
    session_start_relay(s);
}

/* A connect attempt failed: count it and forget the backend. */
static void
session_connect_failed(struct session *s, const char *what, int err)
{
    char reason[128];

    /* <err> 0: a clean close, which is no "Connection reset by peer". */
    if (err != 0) {
        snprintf(reason, sizeof(reason), "%s: %s", what, strerror(err));
    } else {
        snprintf(reason, sizeof(reason), "%s", what);
    }
    if (backend_connect_fail(s->b, s->pool->cf->max_fails, reason)) {
        pool_report_down(s->pool);
    }
    if (err != 0) {
        log_warn("%s/%s (%s): %s (%d: %s), session #%llu client=%s",
                 s->pool->cf->name, s->b->name, backend_addr(s->b)->text,
                 what, err, strerror(err), (unsigned long long)s->id,
                 session_client(s));
    } else {
        log_warn("%s/%s (%s): %s, session #%llu client=%s",
                 s->pool->cf->name, s->b->name, backend_addr(s->b)->text,
                 what, (unsigned long long)s->id, session_client(s));
    }
    pool_tried_set(&s->dial->tried, pool_backend_index(s->pool, s->b));
    backend_session_end(s->b);
    s->b = NULL;
    session_drop_upstream(s);
    if (s->tentative) {
        /* The client waits again until the next broker is there; what it
         * sent and the broker did not take stays in s->up for it. */
        s->tentative = 0;
        ev_io_stop(s->env->loop, &s->cio);
    }
}

static void
session_connect_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct session *s = w->data;
    int err;

    (void)revents;
    ev_io_stop(loop, w);
    err = net_socket_error(s->ufd);
    if (err != 0) {
        session_connect_failed(s, "connect", err);
        session_connect(s);
        return;
    }
    session_connected(s);
}

/*
 * No socket for the broker (EMFILE and kin): our shortage, not the
 * broker's failure, so it is not counted against it. Give the pick back,
 * stop accepting (new clients wait in the backlog) and try again shortly;
 * this client waits up to connect_timeout, then is closed.
 */
static void
session_wait_fd(struct session *s, int err)
{
    struct ev_loop *loop = s->env->loop;
    ev_tstamp now = ev_now(loop);

    backend_session_end(s->b);
    s->b = NULL;
    s->ntries--;
    s->env->on_shortage(s->env->ctx);
    if (s->dial->fd_wait_since == 0) {
        s->dial->fd_wait_since = now;
        log_warn("session #%llu client=%s: no socket for the broker (%s), "
                 "waiting", (unsigned long long)s->id, session_client(s),
                 strerror(err));
    } else if (now - s->dial->fd_wait_since >
               mq_secs(s->pool->cf->connect_timeout_ms)) {
        session_close(s, "no descriptor for the broker connection");
        return;
    }
    s->state = SESSION_WAIT_FD;
    session_timer_arm(s, SESSION_FD_RETRY_S);
}

/*
 * The connect to the broker is in flight (s->ufd). On a plain session
 * whose client has bytes for it (read now, or kept from peeking or a
 * previous backend), relay at once instead of waiting for the socket to
 * say it is writable and asking it for its error: over loopback or a fast
 * network the connect is done by now, the first send confirms it and the
 * broker socket is registered once, for reading (session_confirm);
 * otherwise the send waits for writability as any blocked send, and an
 * error there is the connect's (session_tentative_done). False when the
 * session waits for the connect as usual (nothing to send yet: the read
 * made here leaves a hint so that the relay does not repeat it); true
 * when it went on (relaying, retrying or closed).
 */
static bool
session_dial_early(struct session *s)
{
    const struct config_pool *cf = s->pool->cf;
    struct relay_dir *up = &s->up;
    char reason[96];

    if (cf->tls_client != NULL || cf->proxy_protocol != PROXY_PROTOCOL_OFF
        || up->src_io != NULL || up->spliced) {
        return false;
    }
    if ((up->buf == NULL || up->off == up->len) && !up->eof) {
        switch (relay_fill(up, s->env->rp)) {
        case RELAY_BLOCKED:
            break;
        case RELAY_NOMEM:
            session_close(s, "out of memory");
            return true;
        case RELAY_ERR_SRC:
            if (up->err == ECONNRESET || up->err == EPIPE) {
                snprintf(reason, sizeof(reason), "client reset");
            } else {
                snprintf(reason, sizeof(reason), "client error: %s",
                         strerror(up->err));
            }
            session_close(s, reason);
            return true;
        default:
            return false;       /* nothing yet, or the client ended */
        }
    }
    if (up->buf == NULL || up->off == up->len) {
        return false;
    }
    s->tentative = 1;
    net_set_nodelay(s->ufd);
    net_set_keepalive(s->ufd, &cf->keepalive);
    session_start_relay(s);
    return true;
}

/*
 * Connect to s->b (picked and counted). Returns true when it was refused
 * at once and the caller must pick another; otherwise the session is
 * connecting, connected, waiting for a descriptor or closed.
 */
static bool
session_dial(struct session *s)
{
    struct ev_loop *loop = s->env->loop;
    const struct config_pool *cf = s->pool->cf;
    const struct config_addr *addr;
    int fd, in_progress;

    s->state = SESSION_CONNECTING;
    addr = backend_addr(s->b);  /* one read: it may be re-addressed */
    s->dial->connect_at_us = mq_now_us();
    fd = net_connect((const struct sockaddr *)&addr->ss, addr->len,
                     &in_progress);
    if (fd == -1) {
        if (net_is_shortage(errno)) {
            session_wait_fd(s, errno);
            return false;
        }
        session_connect_failed(s, "connect", errno);
        return true;
    }
    s->ufd = fd;
    if (!in_progress) {
        session_connected(s);
        return false;
    }
    session_timer_arm(s, mq_secs(cf->connect_timeout_ms));
    if (session_dial_early(s)) {
        return false;
    }
    ev_io_init(&s->uio, session_connect_cb, fd, EV_WRITE);
    ev_io_start(loop, &s->uio);
    return false;
}

/* Pick a backend not yet tried and connect to it, within the retries. */
static void
session_connect(struct session *s)
{
    const struct config_pool *cf = s->pool->cf;

    if (s->dial == NULL) {
        s->dial = calloc(1, sizeof(*s->dial));
        if (s->dial == NULL) {
            session_close(s, "out of memory");
            return;
        }
    }
    s->state = SESSION_CONNECTING;
    if (s->ntries == 0 && cf->max_queue > 0 &&
        waitq_len(&s->pool->queue) > 0) {
        /* Others wait already: in line behind them. */
        session_enqueue(s);
        return;
    }
    for (;;) {
        if (s->ntries > cf->retries) {
            pool_reject(s->pool, REJECT_NO_BACKEND);
            session_close(s, "connect failed on every try");
            return;
        }
        s->b = pool_pick(s->pool, &s->dial->tried, s->key, mq_now_ms());
        if (s->b == NULL) {
            if (cf->max_queue > 0 &&
                pool_is_saturated(s->pool, mq_now_ms())) {
                session_enqueue(s);
                return;
            }
            pool_reject(s->pool, REJECT_NO_BACKEND);
            log_warn("no live backends in pool %s, session #%llu "
                     "client=%s closed", cf->name,
                     (unsigned long long)s->id, session_client(s));
            session_close(s, "no live backends");
            return;
        }
        if (s->ntries > 0) {
            pool_count_retry(s->pool);
        }
        s->ntries++;
        if (!session_dial(s)) {
            return;
        }
    }
}

/* ---- MQTT CONNECT peek ----------------------------------------------- */

/* Read what the client sent, decrypted if it speaks TLS: as recv(2). */
static ssize_t
session_client_recv(struct session *s, void *buf, size_t len)
{
    int want;

    if (s->ctls != NULL) {
        return tls_relay_io.recv(s->ctls, buf, len, &want);
    }
    return recv(s->cfd, buf, len, 0);
}

static void
session_peek_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct session *s = w->data;
    struct relay_dir *d = &s->up;
    const uint8_t *id;
    size_t idlen;
    ssize_t n;
    int rc;

    (void)revents;
    if (d->buf == NULL) {
        d->buf = relay_buf_get(s->env->rp);
        if (d->buf == NULL) {
            session_close(s, "out of memory");
            return;
        }
    }
    n = session_client_recv(s, d->buf + d->len, RELAY_BUF_SIZE - d->len);
    if (n == 0) {
        session_close(s, "client closed before MQTT CONNECT");
        return;
    }
    if (n == -1) {
        if (errno == EAGAIN || errno == EINTR) {
            return;
        }
        session_close(s, "client error before MQTT CONNECT");
        return;
    }
    d->len += (uint32_t)n;
    rc = mqtt_connect_client_id((const uint8_t *)d->buf, d->len, &id,
                                &idlen);
    if (rc == MQTT_CONNECT_MORE) {
        if (d->len < RELAY_BUF_SIZE && s->ctls != NULL
            && tls_relay_io.pending(s->ctls) > 0) {
            /* Decrypted bytes wait in the TLS layer, not in the socket:
             * the watcher would not fire for them. */
            session_peek_cb(loop, w, revents);
            return;
        }
        if (d->len == RELAY_BUF_SIZE) {
            log_warn("session #%llu client=%s: MQTT CONNECT larger than %d "
                     "bytes", (unsigned long long)s->id, session_client(s),
                     RELAY_BUF_SIZE);
            session_close(s, "MQTT CONNECT too large");
        }
        return;
    }
    if (rc != MQTT_CONNECT_OK) {
        uint64_t nsup;

        if (log_ratelimit_ok(&session_peek_rl, &nsup)) {
            log_warn("session #%llu client=%s: first packet is not a valid "
                     "MQTT CONNECT%s", (unsigned long long)s->id,
                     session_client(s), nsup > 0
                     ? " (and similar lines suppressed)" : "");
        }
        session_close(s, "not an MQTT CONNECT");
        return;
    }
    if (s->up.tapmax > 0) {
        /* Read before any broker: the copy for a replay starts here. */
        relay_tap_add(&s->up, d->buf, d->len);
    }
    if (idlen > 0) {
        s->key = lb_hash(id, idlen);
    }
    ev_io_stop(loop, w);
    ev_io_init(&s->cio, session_io_cb, s->cfd, EV_READ);
    ev_timer_stop(loop, &s->timer);
    /* The bytes stay in s->up and go to the broker unchanged. */
    session_connect(s);
}

/* ---- SNI routing ---------------------------------------------------- */

/* Give back the candidates' references (after the pick, or at close).
 * The hook stays while the client's TLS may still call it. */
static void
session_route_drop(struct session *s)
{
    if (s->route == NULL) {
        return;
    }
    while (s->route->n > 0) {
        pool_release(s->route->pools[--s->route->n]);
    }
    if (s->ctls == NULL) {
        mq_free(s->route);
    }
}

/* Candidates are still held: the server name has not picked yet. */
static bool
session_routing(const struct session *s)
{
    return s->route != NULL && s->route->n > 0;
}

/*
 * The candidate for server name <name> (<len> bytes; NULL if the client
 * sent none): an exact name wins over "*.domain" (the longest first),
 * which wins over "*"; ties go to the pool first in the file. NULL if
 * none matches.
 */
static struct pool *
session_sni_choose(struct session *s, const uint8_t *name, size_t len)
{
    struct pool *best = NULL;
    size_t i, j, score, best_score = 0;
    const char *pat;

    for (i = 0; i < s->route->n; i++) {
        for (j = 0; j < s->route->pools[i]->cf->nsni; j++) {
            pat = s->route->pools[i]->cf->sni[j];
            if (!tls_hello_sni_match(pat, name, len)) {
                continue;
            }
            score = strcmp(pat, "*") == 0 ? 1
                    : pat[0] == '*' ? 2 + strlen(pat) : 1000;
            if (score > best_score) {
                best = s->route->pools[i];
                best_score = score;
            }
        }
    }
    return best;
}

/* Move <s> to the pool SNI chose (it was on the address's first). */
static void
session_route_switch(struct session *s, struct pool *p)
{
    if (p != s->pool) {
        pool_acquire(p);
        pool_release(s->pool);
        s->pool = p;
    }
    session_route_drop(s);
}

/* No pool for the name: counted on the address's first pool. */
static void
session_sni_refuse(struct session *s, const char *why)
{
    pool_reject(s->pool, REJECT_SNI);
    atomic_fetch_add_explicit(&s->pool->ntls[TLS_RESULT_SNI], 1,
                              memory_order_relaxed);
    session_close(s, why);
}

/* The servername callback's hook: the certificate set to answer with. */
static struct tls_server *
session_sni_pick(void *arg, const char *name)
{
    struct session *s = arg;
    struct pool *p;

    p = session_sni_choose(s, (const uint8_t *)name, name != NULL
                           ? strlen(name) : 0);
    if (p == NULL || p->cf->tls_server == NULL) {
        s->route->refused = 1;
        return NULL;
    }
    s->route->picked = p;
    return p->cf->tls_server;
}

/* Passthrough: read the ClientHello (left in s->up for the broker). */
static void
session_hello_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct session *s = w->data;
    struct relay_dir *d = &s->up;
    struct tls_hello h;
    struct pool *p;
    ssize_t n;
    int rc;

    (void)revents;
    if (d->buf == NULL) {
        d->buf = relay_buf_get(s->env->rp);
        if (d->buf == NULL) {
            session_close(s, "out of memory");
            return;
        }
    }
    n = recv(s->cfd, d->buf + d->len, RELAY_BUF_SIZE - d->len, 0);
    if (n == 0) {
        atomic_fetch_add_explicit(&s->pool->ntls[TLS_RESULT_CLOSED], 1,
                                  memory_order_relaxed);
        session_close(s, "client closed before its ClientHello");
        return;
    }
    if (n == -1) {
        if (errno == EAGAIN || errno == EINTR) {
            return;
        }
        session_close(s, "client error before its ClientHello");
        return;
    }
    d->len += (uint32_t)n;
    rc = tls_hello_parse((const uint8_t *)d->buf, d->len, &h);
    if (rc == TLS_HELLO_MORE && d->len < RELAY_BUF_SIZE) {
        return;
    }
    if (rc != TLS_HELLO_OK) {
        atomic_fetch_add_explicit(&s->pool->ntls[TLS_RESULT_NOT_TLS], 1,
                                  memory_order_relaxed);
        session_close(s, rc == TLS_HELLO_MORE ? "ClientHello too large"
                      : "not a TLS ClientHello");
        return;
    }
    p = session_sni_choose(s, h.sni, h.snilen);
    if (p == NULL) {
        session_sni_refuse(s, "no pool for the TLS server name");
        return;
    }
    session_route_switch(s, p);
    ev_io_stop(loop, w);
    ev_io_init(&s->cio, session_io_cb, s->cfd, EV_READ);
    ev_timer_stop(loop, &s->timer);
    /* The bytes stay in s->up and go to the broker unchanged; the MQTT
     * CONNECT is inside TLS, so the key stays the client's address. */
    session_connect(s);
}

/* ---- TLS with the client --------------------------------------------- */

/* What the session does once the client is known (and decrypted). */
static void
session_begin(struct session *s)
{
    struct ev_loop *loop = s->env->loop;
    const struct config_pool *cf = s->pool->cf;

    ev_io_init(&s->cio, session_io_cb, s->cfd, EV_READ);
    if (cf->balance == BALANCE_MQTT_CLIENT_ID) {
        s->state = SESSION_PEEK;
        ev_io_init(&s->cio, session_peek_cb, s->cfd, EV_READ);
        ev_io_start(loop, &s->cio);
        session_timer_arm(s, mq_secs(cf->connect_timeout_ms));
        return;
    }
    session_connect(s);
}

static void
session_handshake(struct session *s)
{
    struct ev_loop *loop = s->env->loop;
    enum tls_result why;
    char err[MQ_ERR_LEN], reason[MQ_ERR_LEN + 32];
    int rc;

    rc = session_tls_step(s, s->ctls, &s->cio, s->cfd, &why, err,
                          sizeof(err));
    if (rc == MQ_AGAIN) {
        return;
    }
    if (rc == MQ_ERR && s->route != NULL && s->route->refused) {
        session_sni_refuse(s, "TLS handshake failed: sni");
        return;
    }
    if (rc == MQ_OK && session_routing(s)) {
        /* The servername callback chose (or the client sent no name and
         * the first pool's certificate answered). */
        session_route_switch(s, s->route->picked != NULL
                             ? s->route->picked : s->pool);
    }
    atomic_fetch_add_explicit(&s->pool->ntls[why], 1, memory_order_relaxed);
    if (rc == MQ_ERR) {
        /* Scanners and broken clients make these common: debug only, the
         * counters by reason say how many. */
        log_debug("session #%llu client=%s: TLS handshake failed: %s (%s)",
                  (unsigned long long)s->id, session_client(s), err,
                  tls_result_name(why));
        snprintf(reason, sizeof(reason), "TLS handshake failed: %s",
                 tls_result_name(why));
        session_close(s, reason);
        return;
    }
    ev_io_stop(loop, &s->cio);
    ev_timer_stop(loop, &s->timer);
    /* TLS 1.3 goes on with mqlb's record layer: OpenSSL's 14 KB per
     * connection are freed (the PROXY v2 facts kept if this pool sends
     * them: a retry to another broker sends them again). */
    (void)tls_slim(s->ctls, s->pool->cf->proxy_protocol
                            == PROXY_PROTOCOL_V2);
    session_use_tls(s, s->ctls, 1);
    session_begin(s);
}

static void
session_handshake_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    session_handshake(w->data);
}

/* ---- creation -------------------------------------------------------- */

static uint64_t
session_addr_hash(const union net_peer *p)
{
    if (p->sa.sa_family == AF_INET) {
        return lb_hash(&p->in4.sin_addr, sizeof(p->in4.sin_addr));
    }
    if (p->sa.sa_family == AF_INET6) {
        return lb_hash(&p->in6.sin6_addr, sizeof(p->in6.sin6_addr));
    }
    return 0;
}

int
session_create(struct session_env *env, const struct session_entry *e,
               int fd, struct admission_ticket *t)
{
    struct pool *pool = e->pools[0];
    const struct config_pool *cf = pool->cf;
    struct session *s;
    size_t i;

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        close(fd);
        admission_return(t);
        return MQ_ERR;
    }
    s->env = env;
    s->ticket = *t;
    t->adm = NULL;          /* the session holds the slots now */
    t->sources = NULL;
    s->pool = pool;
    pool_acquire(pool);
    s->id = atomic_fetch_add_explicit(env->next_id, 1,
                                      memory_order_relaxed) + 1;
    s->cfd = fd;
    s->ufd = -1;
    s->start_ms = mq_now_ms();
    pool_count_session(pool);
    s->key = session_addr_hash(&s->ticket.peer);
    s->replayable = 1;
    if (cf->replay == REPLAY_ON) {
        s->up.tapmax = SESSION_REPLAY_MAX;
    }
    s->up.src = fd;
    s->down.dst = fd;
    ev_io_init(&s->cio, session_io_cb, fd, EV_READ);
    ev_init(&s->uio, session_io_cb);
    s->cio.data = s->uio.data = s;
    ev_init(&s->timer, session_timer_cb);
    s->idle_ms = cf->idle_timeout_ms == CONFIG_IDLE_AUTO
                 ? LIFETIME_AUTO_DEFAULT_MS : cf->idle_timeout_ms;
    session_link(env, s);
    if (session_life_start(s) != MQ_OK) {
        session_close(s, "out of memory");
        return MQ_OK;
    }

    /* TCP_NODELAY comes from the listening socket (net_listen). */
    net_set_keepalive(fd, &cf->keepalive);
    if (e->sni) {
        /* Until the name picks one, every pool of the address may be the
         * one: each is held. */
        s->route = calloc(1, sizeof(*s->route)
                          + e->npools * sizeof(s->route->pools[0]));
        if (s->route == NULL) {
            session_close(s, "out of memory");
            return MQ_OK;
        }
        for (i = 0; i < e->npools; i++) {
            s->route->pools[i] = e->pools[i];
            pool_acquire(e->pools[i]);
        }
        s->route->n = e->npools;
        s->route->hook.pick = session_sni_pick;
        s->route->hook.arg = s;
    }
    if (e->sni && !e->tls) {
        s->state = SESSION_HELLO;
        ev_io_init(&s->cio, session_hello_cb, fd, EV_READ);
        ev_io_start(env->loop, &s->cio);
        session_timer_arm(s, mq_secs(cf->tls_handshake_timeout_ms));
        return MQ_OK;
    }
    if (e->tls && cf->tls_server != NULL) {
        s->ctls = tls_server_conn(cf->tls_server, fd,
                                 e->sni ? &s->route->hook : NULL);
        if (s->ctls == NULL) {
            session_close(s, "out of memory");
            return MQ_OK;
        }
        s->state = SESSION_HANDSHAKE;
        ev_io_init(&s->cio, session_handshake_cb, fd, EV_READ);
        session_timer_arm(s, mq_secs(cf->tls_handshake_timeout_ms));
        session_handshake(s);
        return MQ_OK;
    }
    session_begin(s);
    return MQ_OK;
}

/* ---- moving to another process (takeover) ----------------------------- */

/* Bytes read from one side and not yet delivered to the other. */
static uint32_t
session_dir_pending(const struct relay_dir *d)
{
    if (d->spliced) {
        return d->inpipe;
    }
    return d->buf != NULL ? d->len - d->off : 0;
}

/* Copy the pending bytes of <d> to <out>; a pipe is emptied (and refilled
 * by session_thaw if the takeover fails). MQ_ERR if the pipe would not
 * give them all. */
static int
session_dir_take(struct relay_dir *d, uint8_t *out)
{
    uint32_t n = session_dir_pending(d), got = 0;
    ssize_t r;

    if (!d->spliced) {
        if (n > 0) {
            memcpy(out, d->buf + d->off, n);
        }
        return MQ_OK;
    }
    while (got < n) {
        r = read(d->pipe[0], out + got, n - got);
        if (r == -1 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        got += (uint32_t)r;
    }
    if (got == n) {
        return MQ_OK;
    }
    if (got > 0 && write(d->pipe[1], out, got) != (ssize_t)got) {
        log_error("takeover: %u bytes of a session's pipe were lost", got);
    }
    return MQ_ERR;
}

/* Put bytes taken by session_dir_take back into the pipe they came from. */
static void
session_dir_untake(struct relay_dir *d, const uint8_t *bytes)
{
    uint32_t n = d->spliced ? d->inpipe : 0, put = 0;
    ssize_t w;

    while (put < n) {
        w = write(d->pipe[1], bytes + put, n - put);
        if (w == -1 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            log_error("takeover: refilling a session's pipe failed: %s",
                      strerror(errno));
            return;
        }
        put += (uint32_t)w;
    }
}

/* What a direction imported with these bytes waits for: its writer
 * while bytes wait, else its reader until its source has ended. */
static void
session_dir_rewait(struct relay_dir *d)
{
    d->wait = session_dir_pending(d) > 0 ? RELAY_WAIT_DST_WRITE
              : d->eof ? RELAY_WAIT_NONE : RELAY_WAIT_SRC_READ;
}

/* Arm the relaying timer (the rest of the idle timeout, the probes) and
 * what is left of max_session_duration (<life_left_ms>; its timer is
 * allocated already). */
static void
session_idle_resume(struct session *s, uint64_t life_left_ms)
{
    session_relay_timer(s);
    if (life_left_ms != HANDOVER_NO_AGE) {
        session_life_set(s, mq_secs(life_left_ms));
    }
}

static void
session_export_dir(const struct relay_dir *d, const uint8_t *bytes,
                   struct handover_dir *hd)
{
    hd->data = bytes;
    hd->len = session_dir_pending(d);
    hd->nbytes = d->nbytes;
    hd->eof = d->eof;
    hd->spliced = d->spliced;
    hd->nosplice = d->nosplice;
}

static int
session_export(struct session *s, struct session_export *e)
{
    struct handover_session *m = &e->m;
    uint32_t nup, ndown;
    uint8_t *bytes;

    /* Plain TCP, relaying: the sockets and a few bytes say it all. TLS
     * sessions stay (the handover format carries no keys); the other
     * states wait on an event of their own (a connect, a CONNECT, a free
     * descriptor). */
    if (s->state != SESSION_RELAYING || s->frozen || session_routing(s) ||
        s->up.observe != NULL ||    /* still reading the keepalive */
        s->down.observe != NULL ||
        s->ctls != NULL || s->utls != NULL || s->up.src_io != NULL ||
        s->up.dst_io != NULL ||
        s->down.src_io != NULL || s->down.dst_io != NULL) {
        return MQ_AGAIN;
    }
    nup = session_dir_pending(&s->up);
    ndown = session_dir_pending(&s->down);
    bytes = malloc(nup + ndown > 0 ? nup + ndown : 1);
    if (bytes == NULL) {
        return MQ_ERR;
    }
    if (session_dir_take(&s->up, bytes) != MQ_OK) {
        free(bytes);
        return MQ_AGAIN;
    }
    if (session_dir_take(&s->down, bytes + nup) != MQ_OK) {
        session_dir_untake(&s->up, bytes);
        free(bytes);
        return MQ_AGAIN;
    }
    memset(m, 0, sizeof(*m));
    m->life_left_ms = HANDOVER_NO_AGE;
    if (s->life != NULL && ev_is_active(s->life)) {
        m->life_left_ms = (uint64_t)(ev_timer_remaining(s->env->loop,
                                                         s->life) * 1000);
    }
    session_stop_watchers(s);
    session_account(s);
    s->frozen = 1;
    m->id = s->id;
    snprintf(m->pool, sizeof(m->pool), "%s", s->pool->cf->name);
    snprintf(m->backend, sizeof(m->backend), "%s", s->b->name);
    memcpy(&m->client, &s->ticket.peer, sizeof(s->ticket.peer));
    m->key = s->key;
    m->age_ms = mq_now_ms() - s->start_ms;
    m->idle_ms = (uint64_t)((ev_now(s->env->loop) - session_idle_since(s))
                            * 1000);
    m->idle_timeout_ms = s->idle_ms;
    m->idle_client = s->idle_client;
    m->first_fin = s->first_fin;
    session_export_dir(&s->up, bytes, &m->up);
    session_export_dir(&s->down, bytes + nup, &m->down);
    e->s = s;
    e->bytes = bytes;
    e->cfd = s->cfd;
    e->ufd = s->ufd;
    return MQ_OK;
}

void
session_thaw(struct session_export *e)
{
    struct session *s = e->s;

    session_dir_untake(&s->up, e->bytes);
    session_dir_untake(&s->down, e->bytes + e->m.up.len);
    mq_free(e->bytes);
    s->frozen = 0;
    session_watch(s);       /* the waits are as the freeze left them */
    session_idle_resume(s, e->m.life_left_ms);
    e->s = NULL;
}

void
session_handed(struct session_export *e)
{
    struct session *s = e->s;
    struct session_env *env = s->env;

    mq_free(e->bytes);
    e->s = NULL;
    /* Our copies only: the successor holds the connections open. Its
     * log line comes from the successor, when it ends. */
    close(s->cfd);
    close(s->ufd);
    s->ufd = -1;
    relay_dir_close(&s->up, env->rp);
    relay_dir_close(&s->down, env->rp);
    session_tap_release(s);
    backend_session_end(s->b);
    s->b = NULL;
    session_unlink(env, s);
    admission_return(&s->ticket);
    pool_release(s->pool);
    session_free(s);
    env->on_closed(env->ctx);
}

/* Put the bytes of <hd> where <d> will send them from: its buffer, or a
 * pipe of its own when they do not fit one (or came from a pipe). */
static int
session_import_dir(struct session *s, struct relay_dir *d,
                   const struct handover_dir *hd)
{
    uint32_t put = 0;
    ssize_t w;

    d->nbytes = hd->nbytes;
    d->eof = hd->eof;
    d->nosplice = hd->nosplice;
    if (hd->len == 0) {
        return MQ_OK;
    }
    if (!hd->spliced && hd->len <= RELAY_BUF_SIZE) {
        d->buf = relay_buf_get(s->env->rp);
        if (d->buf == NULL) {
            return MQ_ERR;
        }
        memcpy(d->buf, hd->data, hd->len);
        d->off = 0;
        d->len = hd->len;
        return MQ_OK;
    }
    if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
        return MQ_ERR;
    }
    d->spliced = 1;
    if (hd->len > RELAY_SPLICE_CHUNK) {
        (void)fcntl(d->pipe[1], F_SETPIPE_SZ, (int)hd->len);
    }
    while (put < hd->len) {
        w = write(d->pipe[1], hd->data + put, hd->len - put);
        if (w == -1 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return MQ_ERR;
        }
        put += (uint32_t)w;
    }
    d->inpipe = hd->len;
    return MQ_OK;
}

int
session_import(struct session_env *env, struct pool *pool,
               struct backend *b, const struct handover_session *m,
               int cfd, int ufd, struct admission_ticket *t)
{
    struct ev_loop *loop = env->loop;
    struct session *s;

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return MQ_ERR;
    }
    s->env = env;
    s->pool = pool;
    s->b = b;
    s->id = m->id;
    s->state = SESSION_RELAYING;
    s->cfd = cfd;
    s->ufd = ufd;
    s->up.src = s->down.dst = cfd;
    s->up.dst = s->down.src = ufd;
    if ((m->life_left_ms != HANDOVER_NO_AGE &&
         session_life_alloc(s) != MQ_OK) ||
        session_import_dir(s, &s->up, &m->up) != MQ_OK ||
        session_import_dir(s, &s->down, &m->down) != MQ_OK) {
        relay_dir_close(&s->up, env->rp);
        relay_dir_close(&s->down, env->rp);
        session_free(s);
        return MQ_ERR;
    }
    pool_acquire(pool);
    /* Counted in <b>'s totals already (the old process's counters came
     * over): only the live count grows. */
    atomic_fetch_add_explicit(&b->nactive, 1, memory_order_relaxed);
    s->bytes_in_acct = (uint32_t)s->up.nbytes;
    s->bytes_out_acct = (uint32_t)s->down.nbytes;
    s->ticket = *t;
    t->adm = NULL;
    t->sources = NULL;
    s->key = m->key;
    s->start_ms = mq_now_ms() - MQ_MIN(m->age_ms, mq_now_ms());
    s->first_fin = m->first_fin == HANDOVER_FIN_CLIENT ? HANDOVER_FIN_CLIENT
                   : m->first_fin == HANDOVER_FIN_BACKEND
                   ? HANDOVER_FIN_BACKEND : HANDOVER_FIN_NONE;
    ev_now_update(loop);
    s->last_active = ev_now(loop) - (ev_tstamp)m->idle_ms / 1000.0;
    s->last_client = s->last_active;
    s->idle_client = m->idle_client != 0;
    s->idle_ms = m->idle_timeout_ms;
    ev_io_init(&s->cio, session_io_cb, cfd, EV_READ);
    ev_io_init(&s->uio, session_io_cb, ufd, EV_READ);
    s->cio.data = s->uio.data = s;
    ev_init(&s->timer, session_timer_cb);
    session_link(env, s);
    session_dir_rewait(&s->up);
    session_dir_rewait(&s->down);
    session_watch(s);
    session_idle_resume(s, m->life_left_ms);
    return MQ_OK;
}

size_t
session_freeze_all(struct session_env *env, struct session_export **out)
{
    struct session_export *list = NULL, *grown;
    struct session *s;
    size_t n = 0, cap = 0;

    for (s = env->sessions; s != NULL; s = s->next) {
        if (n == cap) {
            cap = cap > 0 ? cap * 2 : 64;
            grown = realloc(list, cap * sizeof(*list));
            if (grown == NULL) {
                break;      /* the rest stay here */
            }
            list = grown;
        }
        if (session_export(s, &list[n]) == MQ_OK) {
            n++;
        }
    }
    if (n == 0) {
        mq_free(list);
    }
    *out = list;
    return n;
}
