/*
 * health.c: the checker. Each backend has one timer that fires
 * check_interval after its previous check ended (plus up to a tenth of it
 * at random, so checks of many backends do not fall on the same tick):
 * checks of one backend never overlap, even with a check_timeout longer
 * than check_interval. A check connects without
 * blocking, lets the probe say what to send and judge what comes back,
 * and ends in a verdict within check_timeout:
 *
 *   IDLE --timer--> CONNECTING --writable, SO_ERROR 0--> EXCHANGE
 *     ^                 |                                  | probe verdict,
 *     |                 | refused / timeout                | EOF, timeout
 *     +-----------------+----------------------------------+
 *
 * With check_reset = on, a bare check, one that only connects (tcp, no
 * PROXY header, no TLS), resets the connection once it is up, before the
 * broker's kernel has completed it, and keeps its socket for the next
 * check (net_probe_*): the broker never sees it, and the kernels do about
 * half the work of a connect and close.
 *
 * A nats backend also has a watch (nats_watch.c): one connection kept
 * open, because a server in lame duck mode refuses the checker and tells
 * only its connected clients. While the watch says lame duck mode, the
 * backend drains and failed checks are recorded but do not count: the
 * server still serves its sessions, it is not down until it is gone.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/health.h"
#include "mqlb/log.h"
#include "mqlb/nats_watch.h"
#include "mqlb/net.h"
#include "mqlb/pool.h"
#include "mqlb/probe.h"
#include "mqlb/proxy_proto.h"
#include "mqlb/relay.h"
#include "mqlb/tls.h"

enum check_state {
    CHECK_IDLE = 0,
    CHECK_CONNECTING,
    CHECK_TLS,              /* backend_tls: the handshake */
    CHECK_EXCHANGE,
};

/* One backend's checker. */
struct check {
    struct check       *next;           /* health's list */
    struct health      *h;
    struct pool        *pool;           /* one reference: the settings */
    struct backend     *b;              /* one reference */
    enum check_state    state;
    unsigned            on_next:1;      /* probing the backend's new
                                           address (backend_next_addr) */
    unsigned            bare:1;         /* connect only (net_probe_*) */
    int                 fd;             /* a bare check's stays between
                                           checks, reset (net_probe_*) */
    sa_family_t         family;         /* of a bare check's fd */
    ev_io               io;
    ev_timer            timer;          /* interval, then timeout */
    uint64_t            started_ms;
    const struct probe_ops *ops;        /* NULL: connect is the verdict */
    struct probe_params params;
    struct probe        probe;
    uint8_t             out[2 * PROBE_OUT_MAX];  /* request bytes */
    size_t              outoff;         /* first unsent byte in out */
    size_t              outlen;         /* unsent bytes from outoff */
    uint8_t             in[PROBE_IN_MAX];
    size_t              inlen;
    char                host[CONFIG_ADDR_TEXT_LEN]; /* http Host header */
    char                client_id[48];  /* mqtt client id */
    struct nats_watch  *watch;          /* nats: hears lame duck mode */
    uint8_t             pp[PROXY_PROTO_V1_MAX];  /* PROXY header, or none */
    size_t              pplen;
    struct tls_conn    *tls;            /* backend_tls: TLS, or NULL */
};

struct health {
    struct ev_loop     *loop;
    struct check       *checks;         /* owned list */
    uint64_t            rnd;            /* jitter PRNG state */
};

static void check_schedule(struct check *c, int first);
static int check_send(struct check *c);
static int check_queue_probe(struct check *c);
static void check_destroy(struct check *c);

static uint64_t
health_rand(struct health *h)
{
    /* xorshift64*: jitter needs no more. */
    h->rnd ^= h->rnd >> 12;
    h->rnd ^= h->rnd << 25;
    h->rnd ^= h->rnd >> 27;
    return h->rnd * 0x2545F4914F6CDD1DULL;
}

static void
check_close(struct check *c)
{
    ev_io_stop(c->h->loop, &c->io);
    ev_timer_stop(c->h->loop, &c->timer);
    if (c->tls != NULL) {
        tls_free(c->tls);
        c->tls = NULL;
    }
    if (c->fd != -1) {
        if (!c->bare || net_probe_reset(c->fd) != MQ_OK) {
            close(c->fd);
            c->fd = -1;
        }
        /* a bare check keeps its socket for the next check */
    }
    c->state = CHECK_IDLE;
}

/* The check ended: record the verdict and wait for the next one. */
static void
check_done(struct check *c, int pass, const char *reason)
{
    const struct config_pool *cf = c->pool->cf;
    uint32_t latency = (uint32_t)(mq_now_ms() - c->started_ms);
    bool ldm = c->watch != NULL && nats_watch_in_ldm(c->watch);

    if (pass && c->probe.outlen > 0 && check_queue_probe(c) == MQ_OK) {
        /* A parting message (MQTT DISCONNECT): best effort. */
        check_send(c);
    }
    check_close(c);
    if (c->on_next) {
        /* a new address on trial: its verdicts move only the trial */
        backend_next_verdict(c->b, pass, reason, latency, cf->rise);
        check_schedule(c, 0);
        return;
    }
    if (c->ops != NULL && pass) {
        backend_set_proto_drain(c->b, c->probe.drain || ldm);
    }
    if (!pass && ldm) {
        /* Lame duck mode refuses new connections, not its own: drain. */
        backend_check_record(c->b, false, reason, latency);
    } else if (backend_check_done(c->b, pass, reason, latency, cf->rise,
                                  cf->fall)
               && !pass) {
        pool_report_down(c->pool);
    }
    check_schedule(c, 0);
}

static void
check_fail_errno(struct check *c, int err)
{
    char reason[96];

    if (err == ECONNREFUSED) {
        check_done(c, 0, "refused");
        return;
    }
    if (err == ETIMEDOUT) {
        check_done(c, 0, "timeout");
        return;
    }
    snprintf(reason, sizeof(reason), "%s", strerror(err));
    check_done(c, 0, reason);
}

/* Send what waits in c->out; MQ_AGAIN if the socket is full. */
static int
check_send(struct check *c)
{
    ssize_t n;

    int want;

    while (c->outlen > 0) {
        if (c->tls != NULL) {
            n = tls_relay_io.send(c->tls, c->out + c->outoff, c->outlen,
                                  &want);
        } else {
            n = send(c->fd, c->out + c->outoff, c->outlen, MSG_NOSIGNAL);
        }
        if (n > 0) {
            c->outoff += (size_t)n;
            c->outlen -= (size_t)n;
            continue;
        }
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return MQ_AGAIN;
        }
        return MQ_ERR;
    }
    return MQ_OK;
}

/*
 * Move the probe's pending bytes behind those still unsent, so that a
 * judge may queue more (NATS PONG) while a send is partial.
 */
static int
check_queue_probe(struct check *c)
{
    if (c->outoff > 0) {
        memmove(c->out, c->out + c->outoff, c->outlen);
        c->outoff = 0;
    }
    if (c->probe.outlen > sizeof(c->out) - c->outlen) {
        errno = ENOBUFS;    /* the peer reads none of what we send */
        return MQ_ERR;
    }
    memcpy(c->out + c->outlen, c->probe.out, c->probe.outlen);
    c->outlen += c->probe.outlen;
    c->probe.outlen = 0;
    return MQ_OK;
}

/* Send the probe's pending bytes and set the watcher to match. */
static int
check_flush_probe(struct check *c)
{
    int rc;

    if (check_queue_probe(c) != MQ_OK) {
        return MQ_ERR;
    }
    rc = check_send(c);
    if (rc == MQ_ERR) {
        return MQ_ERR;
    }
    ev_io_stop(c->h->loop, &c->io);
    ev_io_set(&c->io, c->fd, rc == MQ_AGAIN ? EV_WRITE | EV_READ : EV_READ);
    ev_io_start(c->h->loop, &c->io);
    return MQ_OK;
}

static void
check_read(struct check *c)
{
    enum probe_verdict v;
    ssize_t n;
    int want;

    if (c->inlen == sizeof(c->in)) {
        check_done(c, 0, "reply too large");
        return;
    }
    if (c->tls != NULL) {
        n = tls_relay_io.recv(c->tls, c->in + c->inlen,
                              sizeof(c->in) - c->inlen, &want);
    } else {
        n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
    }
    if (n == -1) {
        if (errno != EAGAIN && errno != EINTR) {
            check_fail_errno(c, errno);
        }
        return;
    }
    if (n == 0) {
        if (c->inlen == 0) {
            check_done(c, 0, "closed by peer");
        } else {
            probe_fail_unexpected(&c->probe, c->in, c->inlen);
            check_done(c, 0, c->probe.reason);
        }
        return;
    }
    c->inlen += (size_t)n;
    v = c->ops->judge(&c->probe, c->in, c->inlen);
    if (v == PROBE_PASS) {
        check_done(c, 1, "");
        return;
    }
    if (v == PROBE_FAIL) {
        check_done(c, 0, c->probe.reason);
        return;
    }
    if (c->probe.outlen > 0 && check_flush_probe(c) != MQ_OK) {
        check_fail_errno(c, errno);
        return;
    }
    if (c->tls != NULL && tls_relay_io.pending(c->tls) > 0) {
        /* Decrypted bytes wait in the TLS layer: no readiness will say so. */
        check_read(c);
    }
}

/* The connect or TLS handshake is done: pass, or start the exchange. */
static void
check_connected(struct check *c)
{
    if (c->ops == NULL) {
        check_done(c, 1, "");
        return;
    }
    c->state = CHECK_EXCHANGE;
    probe_init(&c->probe, c->ops, &c->params);
    if (check_flush_probe(c) != MQ_OK) {
        check_fail_errno(c, errno);
    }
}

/* backend_tls: run the handshake; its failure is the check's verdict. */
static void
check_tls(struct check *c)
{
    enum tls_result why;
    char err[MQ_ERR_LEN], reason[MQ_ERR_LEN + 16];
    int want, rc;

    rc = tls_handshake(c->tls, &want, &why, err, sizeof(err));
    if (rc == MQ_AGAIN) {
        ev_io_stop(c->h->loop, &c->io);
        ev_io_set(&c->io, c->fd, want == RELAY_WANT_WRITE ? EV_WRITE
                                                           : EV_READ);
        ev_io_start(c->h->loop, &c->io);
        return;
    }
    if (rc == MQ_ERR) {
        snprintf(reason, sizeof(reason), "TLS: %s", err);
        check_done(c, 0, reason);
        return;
    }
    check_connected(c);
}

/*
 * Queue the PROXY header the pool's checks send first (check.pp):
 * LOCAL (v2) or UNKNOWN (v1), or with check_proxy_protocol = addresses
 * the check connection's own endpoints, for receivers that reject LOCAL
 * (RabbitMQ before 3.11.19 and 3.12.1 drops such connections).
 */
static void
check_proxy_header(struct check *c)
{
    const struct config_pool *cf = c->pool->cf;
    struct sockaddr_storage local;
    socklen_t len = sizeof(local);
    size_t n;

    c->outoff = 0;
    c->outlen = 0;
    if (c->pplen == 0) {
        return;
    }
    if (cf->check_proxy_protocol == CHECK_PP_ADDRESSES &&
        getsockname(c->fd, (struct sockaddr *)&local, &len) == 0) {
        n = proxy_proto_write(config_check_pp_version(cf),
                              (struct sockaddr *)&local,
                              (const struct sockaddr *)
                              &backend_addr(c->b)->ss, c->out,
                              sizeof(c->out));
        if (n > 0) {
            c->outlen = n;
            return;
        }
    }
    memcpy(c->out, c->pp, c->pplen);
    c->outlen = c->pplen;
}

static void
check_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    char tls_name[sizeof(((struct config_addr *)0)->text) + 256];
    struct check *c = container_of(io, struct check, io);
    int err;

    (void)loop;
    if (c->state == CHECK_CONNECTING) {
        err = net_socket_error(c->fd);
        if (err != 0) {
            check_fail_errno(c, err);
            return;
        }
        /*
         * A broker that requires PROXY drops a check without one. It goes
         * first, in the clear (before TLS too, as HAProxy sends it), into
         * an empty socket buffer: it is sent whole at once.
         */
        check_proxy_header(c);
        if (c->outlen > 0 && check_send(c) != MQ_OK) {
            check_done(c, 0, "cannot send the PROXY header");
            return;
        }
        c->outoff = 0;
        if (c->pool->cf->tls_client != NULL) {
            /* Checks of a backend_tls broker run over TLS. */
            backend_tls_addr(c->b, tls_name, sizeof(tls_name));
            c->tls = tls_client_conn(c->pool->cf->tls_client, c->fd,
                                     tls_name);
            if (c->tls == NULL) {
                check_fail_errno(c, ENOMEM);
                return;
            }
            c->state = CHECK_TLS;
            check_tls(c);
            return;
        }
        check_connected(c);
        return;
    }
    if (c->state == CHECK_TLS) {
        check_tls(c);
        return;
    }
    if ((revents & EV_WRITE) && c->outlen > 0) {
        if (check_flush_probe(c) != MQ_OK) {
            check_fail_errno(c, errno);
            return;
        }
    }
    if (revents & EV_READ) {
        check_read(c);
    }
}

/*
 * Start the connect to <addr>: MQ_ERR with errno if it failed at once. A
 * bare check reuses its socket (net_probe_connect), unless the backend
 * moved to the other address family.
 */
static int
check_connect(struct check *c, const struct config_addr *addr)
{
    int in_progress;

    if (!c->bare) {
        c->fd = net_connect((const struct sockaddr *)&addr->ss, addr->len,
                            &in_progress);
        return c->fd == -1 ? MQ_ERR : MQ_OK;
    }
    if (c->fd != -1 && c->family != addr->ss.ss_family) {
        close(c->fd);
        c->fd = -1;
    }
    if (c->fd == -1) {
        c->fd = net_probe_socket(addr->ss.ss_family);
        if (c->fd == -1) {
            return MQ_ERR;
        }
        c->family = addr->ss.ss_family;
    }
    return net_probe_connect(c->fd, (const struct sockaddr *)&addr->ss,
                             addr->len);
}

static void
check_start(struct check *c)
{
    const struct config_pool *cf = c->pool->cf;
    const struct config_addr *addr;

    c->started_ms = mq_now_ms();
    c->inlen = 0;
    c->outoff = 0;
    c->outlen = 0;
    if (c->watch != NULL) {
        nats_watch_start(c->watch);
    }
    /* a new address waiting to be checked is what this check probes */
    addr = backend_next_addr(c->b);
    c->on_next = addr != NULL;
    if (addr == NULL) {
        addr = backend_addr(c->b);
    }
    if (check_connect(c, addr) != MQ_OK) {
        if (net_is_shortage(errno)) {
            /* Our shortage, not the broker's: no verdict this round. */
            log_warn("check of %s/%s skipped: %s", c->pool->cf->name,
                     c->b->name, strerror(errno));
            check_schedule(c, 0);
            return;
        }
        check_fail_errno(c, errno);
        return;
    }
    c->state = CHECK_CONNECTING;
    ev_io_init(&c->io, check_io_cb, c->fd, EV_WRITE);
    ev_io_start(c->h->loop, &c->io);
    ev_timer_set(&c->timer, mq_secs(cf->check_timeout_ms), 0.);
    ev_timer_start(c->h->loop, &c->timer);
}

static void
check_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct check *c = container_of(t, struct check, timer);

    (void)loop;
    (void)revents;
    if (c->state == CHECK_IDLE) {
        check_start(c);
        return;
    }
    check_done(c, 0, "timeout");
}

static void
check_schedule(struct check *c, int first)
{
    const struct config_pool *cf = c->pool->cf;
    uint64_t ms, jitter = cf->check_interval_ms / 10;

    if (first) {
        /* Spread the first checks over a short window. */
        ms = health_rand(c->h) % (MQ_MIN(cf->check_interval_ms, 200) + 1);
    } else {
        ms = cf->check_interval_ms +
             (jitter > 0 ? health_rand(c->h) % jitter : 0);
    }
    ev_timer_set(&c->timer, mq_secs(ms), 0.);
    ev_timer_start(c->h->loop, &c->timer);
}

/*
 * The MQTT client id of a check: host name, a random part drawn once per
 * process and a sequence number, so that neither two instances (every
 * container is PID 1) nor two checks of one broker take over each
 * other's session. Fits 48 bytes.
 */
static void
health_client_id(char *out, size_t size)
{
    static _Atomic uint32_t seq, rnd_once;
    uint32_t rnd = atomic_load(&rnd_once);
    char host[64];
    size_t i;

    if (rnd == 0) {
        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK)
            != (ssize_t)sizeof(rnd)) {
            rnd = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 16;
        }
        rnd |= 1;   /* never 0, so drawn once */
        atomic_store(&rnd_once, rnd);
    }
    if (gethostname(host, sizeof(host)) == -1) {
        host[0] = '\0';
    }
    host[sizeof(host) - 1] = '\0';
    for (i = 0; host[i] != '\0'; i++) {
        if (!config_name_char((unsigned char)host[i])) {
            host[i] = '-';
        }
    }
    snprintf(out, size, "mqlb-check-%.18s-%08x-%u", host, (unsigned)rnd,
             (unsigned)atomic_fetch_add(&seq, 1) % 100000u);
}

/* The watch heard lame duck mode: no new sessions from now on. */
static void
check_ldm_cb(void *ctx)
{
    struct check *c = ctx;

    backend_set_proto_drain(c->b, true);
}

static struct check *
check_create(struct health *h, struct pool *p, struct backend *b)
{
    const struct config_pool *cf = p->cf;
    struct check *c;

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->h = h;
    c->pool = p;
    pool_acquire(p);
    c->b = b;
    backend_acquire(b);
    c->fd = -1;
    c->ops = probe_ops_for(cf->check);
    snprintf(c->host, sizeof(c->host), "%s", backend_addr(b)->text);
    health_client_id(c->client_id, sizeof(c->client_id));
    c->params.send = cf->check_send;
    c->params.send_len = cf->check_send_len;
    c->params.expect = cf->check_expect;
    c->params.expect_len = cf->check_expect_len;
    c->params.path = cf->check_path;
    c->params.host = c->host;
    c->params.client_id = c->client_id;
    c->params.user = cf->check_user;
    c->params.password = cf->check_password;
    c->params.vhost = cf->check_vhost;
    c->pplen = proxy_proto_write_local(config_check_pp_version(cf), c->pp,
                                       sizeof(c->pp));
    /* check_reset, nothing to send, no TLS: the connect is the check. */
    c->bare = cf->check_reset && c->ops == NULL && c->pplen == 0 &&
              cf->tls_client == NULL;
    ev_init(&c->io, check_io_cb);
    ev_init(&c->timer, check_timer_cb);
    if (cf->check == CHECK_NATS) {
        c->watch = nats_watch_create(h->loop,
                                     (struct sockaddr *)&backend_addr(b)->ss,
                                     backend_addr(b)->len, check_ldm_cb, c);
        /* It logs in as the checks do (PROXY header, credentials). */
        if (c->watch == NULL ||
            nats_watch_set_login(c->watch, c->pp, c->pplen, cf->check_user,
                                 cf->check_password) != MQ_OK) {
            check_destroy(c);
            return NULL;
        }
    }
    return c;
}

static void
check_destroy(struct check *c)
{
    check_close(c);
    if (c->fd != -1) {
        close(c->fd);       /* a bare check's socket */
        c->fd = -1;
    }
    nats_watch_destroy(c->watch);
    c->watch = NULL;
    backend_release(c->b);
    pool_release(c->pool);
    free(c);
}

struct health *
health_create(struct ev_loop *loop)
{
    struct health *h;

    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return NULL;
    }
    h->loop = loop;
    h->rnd = mq_now_ms() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
    return h;
}

static void
health_free_list(struct check *list)
{
    struct check *c, *next;

    for (c = list; c != NULL; c = next) {
        next = c->next;
        check_destroy(c);
    }
}

int
health_set_pools(struct health *h, struct pool *const *pools, size_t npools)
{
    struct check *list = NULL, *c;
    size_t i, j;

    for (i = 0; i < npools; i++) {
        if (pools[i]->cf->check == CHECK_NONE) {
            continue;
        }
        for (j = 0; j < pools[i]->nbackends; j++) {
            c = check_create(h, pools[i], pools[i]->backends[j]);
            if (c == NULL) {
                health_free_list(list);
                return MQ_ERR;
            }
            c->next = list;
            list = c;
        }
    }
    health_free_list(h->checks);
    h->checks = list;
    for (c = list; c != NULL; c = c->next) {
        check_schedule(c, 1);
    }
    return MQ_OK;
}

int
health_add_backend(struct health *h, struct pool *p, struct backend *b)
{
    struct check *c;

    if (p->cf->check == CHECK_NONE) {
        return MQ_OK;
    }
    c = check_create(h, p, b);
    if (c == NULL) {
        return MQ_ERR;
    }
    c->next = h->checks;
    h->checks = c;
    check_schedule(c, 1);
    return MQ_OK;
}

void
health_remove_backend(struct health *h, struct backend *b)
{
    struct check **pp, *c;

    for (pp = &h->checks; *pp != NULL;) {
        c = *pp;
        if (c->b == b) {
            *pp = c->next;
            check_destroy(c);
            continue;
        }
        pp = &c->next;
    }
}

void
health_destroy(struct health *h)
{
    if (h == NULL) {
        return;
    }
    health_free_list(h->checks);
    h->checks = NULL;
    free(h);
}
