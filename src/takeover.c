/*
 * takeover.c: both ends of a takeover (see takeover.h). The
 * conversation is short and synchronous, bounded by socket timeouts; on
 * the old side it runs on the main loop while the workers hold their
 * sessions frozen, so nothing else changes under it.
 *
 *   old (main thread)                       new (core_init)
 *   ────────────────                        ───────────────
 *                              <── HELLO
 *   freeze workers (safe point)
 *   BEGIN, LISTENER*, SESSION*,  ──>        collect; die here if the
 *   POOL*, BACKEND*, END                    test knob says so
 *                                           build pools, apply state,
 *                                           adopt sessions into workers
 *                              <── ACK (declined ids)
 *   stop the control socket
 *   DONE                         ──>        start workers, control socket
 *   release moved sessions, keep the rest, retire
 *
 * Until DONE is sent, every failure thaws the workers: the old process
 * serves every session and accepts again.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mqlb/admission.h"
#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/config.h"
#include "mqlb/core.h"
#include "mqlb/ctlsock.h"
#include "mqlb/fdpass.h"
#include "mqlb/gen.h"
#include "mqlb/handover.h"
#include "mqlb/listen_set.h"
#include "mqlb/log.h"
#include "mqlb/members.h"
#include "mqlb/net.h"
#include "mqlb/pool.h"
#include "mqlb/reject.h"
#include "mqlb/session.h"
#include "mqlb/srclimit.h"
#include "mqlb/takeover.h"
#include "mqlb/worker.h"

#define TAKEOVER_FREEZE_TIMEOUT_MS  3000    /* workers reach a safe point */
#define TAKEOVER_DONE_TIMEOUT_MS    10000   /* the old one commits */

/* A received listening socket. */
struct takeover_lfd {
    uint32_t            worker;         /* the old process's worker */
    struct config_addr  addr;           /* from getsockname() */
    int                 fd;             /* -1 once taken */
};

/* A received session; <m>'s byte pointers point into <payload>. */
struct takeover_sess {
    struct handover_session m;
    uint8_t            *payload;        /* owned */
    int                 cfd, ufd;       /* -1 once adopted */
};

/*
 * The successor's reader: bytes come in bulk (many frames a recvmsg) and
 * the descriptors with them, in the order of their frames; each frame
 * takes its own from the queue.
 */
struct takeover_rd {
    uint8_t            *buf;
    size_t              cap;
    size_t              start;          /* first unread byte */
    size_t              end;            /* one past the last byte read */
    int                *fdq;            /* descriptors not yet taken */
    size_t              fq_cap;
    size_t              fq_head;
    size_t              fq_len;
};

struct takeover_in {
    int                 sock;           /* to the old process */
    struct takeover_rd  rd;
    struct handover_begin begin;
    struct takeover_lfd *lfds;
    size_t              nlfds;
    struct takeover_sess *sess;
    size_t              nsess;
    struct handover_pool *pools;
    size_t              npools;
    struct handover_backend *backends;
    size_t              nbackends;
    uint64_t           *declined;       /* ids the old process keeps */
    size_t              ndeclined;
    uint64_t            started_ms;
};

/* ---- frames on the socket --------------------------------------------- */

static void
takeover_close_fds(int *fds, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        close(fds[i]);
        fds[i] = -1;
    }
}

/* ---- the old side ----------------------------------------------------- */

/* Ask every worker to run <cmd> and wait until all have; MQ_ERR on time
 * out (a worker stuck: the handover is called off). */
static int
takeover_workers_run(struct core *c, unsigned cmd)
{
    unsigned w, seq[c->nworkers > 0 ? c->nworkers : 1];
    struct timespec ts = { 0, 1000000 };       /* 1 ms */
    uint64_t deadline = mq_now_ms() + TAKEOVER_FREEZE_TIMEOUT_MS;
    bool all;

    for (w = 0; w < c->nworkers; w++) {
        seq[w] = worker_handover_seq(c->workers[w]);
        worker_post(c->workers[w], cmd);
    }
    for (;;) {
        all = true;
        for (w = 0; w < c->nworkers; w++) {
            all = all && worker_handover_seq(c->workers[w]) != seq[w];
        }
        if (all) {
            return MQ_OK;
        }
        if (mq_now_ms() > deadline) {
            return MQ_ERR;
        }
        nanosleep(&ts, NULL);
    }
}

static void
takeover_backend_msg(const struct pool *p, const struct backend *b,
                     struct handover_backend *m)
{
    struct backend_check chk;
    uint64_t up_at, now = mq_now_ms();
    size_t i;

    memset(m, 0, sizeof(*m));
    snprintf(m->pool, sizeof(m->pool), "%s", p->cf->name);
    snprintf(m->name, sizeof(m->name), "%s", b->name);
    snprintf(m->addr, sizeof(m->addr), "%s", backend_addr(b)->text);
    m->source = (uint8_t)b->source;
    m->max_connect_rate = atomic_load(&b->max_connect_rate);
    m->up = atomic_load(&b->up) ? 1 : 0;
    m->admin = (uint8_t)atomic_load(&b->admin);
    m->proto_drain = atomic_load(&b->proto_drain) ? 1 : 0;
    m->backup = b->backup ? 1 : 0;
    m->weight = atomic_load(&b->weight);
    m->config_weight = m->weight;
    for (i = 0; i < p->cf->nbackends; i++) {
        if (strcmp(p->cf->backends[i].name, b->name) == 0) {
            m->config_weight = p->cf->backends[i].weight;
        }
    }
    m->max_conns = atomic_load(&b->max_conns);
    m->nfails_row = atomic_load(&b->nfails_row);
    m->health = b->health;      /* the checker's: this (main) thread */
    m->since_ms = atomic_load(&b->since_ms);
    up_at = atomic_load(&b->up_at_ms);
    m->up_age_ms = up_at != 0 && up_at <= now ? now - up_at
                   : HANDOVER_NO_AGE;
    m->ntotal = atomic_load(&b->ntotal);
    m->nfailed = atomic_load(&b->nfailed);
    m->bytes_in = atomic_load(&b->bytes_in);
    m->bytes_out = atomic_load(&b->bytes_out);
    m->nchecks_pass = atomic_load(&b->nchecks_pass);
    m->nchecks_fail = atomic_load(&b->nchecks_fail);
    backend_get_check((struct backend *)b, &chk);
    m->check_result = (uint8_t)chk.result;
    m->check_latency_ms = chk.latency_ms;
    m->check_at_ms = chk.at_ms;
    snprintf(m->check_reason, sizeof(m->check_reason), "%s", chk.reason);
    pthread_mutex_lock((pthread_mutex_t *)&b->check_lock);
    snprintf(m->down_reason, sizeof(m->down_reason), "%s", b->down_reason);
    snprintf(m->admin_by, sizeof(m->admin_by), "%s", b->admin_by);
    pthread_mutex_unlock((pthread_mutex_t *)&b->check_lock);
}

/*
 * Frames on their way out, with their descriptors: sent together, one
 * sendmsg for up to FDPASS_MAX_FDS descriptors or TAKEOVER_BATCH_BYTES
 * (the successor reads them in bulk too, see takeover_rd), so that
 * 10,000 sessions cost a few hundred system calls, not 30,000.
 */
#define TAKEOVER_BATCH_BYTES    (256 * 1024)

struct takeover_batch {
    int                 sock;
    struct handover_buf b;
    int                 fds[FDPASS_MAX_FDS];
    size_t              nfds;
};

static int
takeover_batch_flush(struct takeover_batch *bt)
{
    int rc = MQ_OK;

    if (bt->b.failed) {
        errno = ENOMEM;
        return MQ_ERR;
    }
    if (bt->b.len > 0) {
        rc = fdpass_send(bt->sock, bt->b.data, bt->b.len, bt->fds, bt->nfds);
    }
    handover_buf_reset(&bt->b);
    bt->nfds = 0;
    return rc;
}

/* Make room for a frame carrying <n> descriptors. */
static int
takeover_batch_room(struct takeover_batch *bt, size_t n)
{
    if (bt->nfds + n > FDPASS_MAX_FDS || bt->b.len >= TAKEOVER_BATCH_BYTES) {
        return takeover_batch_flush(bt);
    }
    return MQ_OK;
}

/* The frame just encoded into bt->b carries <fds>. */
static void
takeover_batch_fds(struct takeover_batch *bt, const int *fds, size_t n)
{
    memcpy(bt->fds + bt->nfds, fds, n * sizeof(*fds));
    bt->nfds += n;
}

/* Everything after HELLO up to END. <*nsent> counts sessions. */
static int
takeover_send_all(struct core *c, int sock, size_t *nsent, char *err)
{
    struct handover_begin begin;
    struct handover_listener li;
    struct handover_pool hp;
    struct handover_backend hb;
    struct handover_end end;
    const struct config_addr *a;
    struct session_export *e;
    struct takeover_batch bt;
    struct worker *w;
    struct pool *p;
    size_t i, j, n;
    unsigned k;
    int fds[2], fd;

    memset(&end, 0, sizeof(end));
    bt.sock = sock;
    bt.nfds = 0;
    handover_buf_init(&bt.b);
    begin.next_id = atomic_load(&c->next_id);
    begin.nworkers = c->nworkers;
    begin.pid = (uint32_t)getpid();
    if (handover_encode_begin(&bt.b, &begin) != MQ_OK) {
        goto io;
    }
    for (k = 0; k < c->nworkers; k++) {
        n = listen_set_count(&c->sockets, k);
        for (i = 0; i < n; i++) {
            fd = listen_set_get(&c->sockets, k, i, &a);
            memset(&li, 0, sizeof(li));
            li.worker = k;
            snprintf(li.addr, sizeof(li.addr), "%s", a->text);
            if (takeover_batch_room(&bt, 1) != MQ_OK ||
                handover_encode_listener(&bt.b, &li) != MQ_OK) {
                goto io;
            }
            takeover_batch_fds(&bt, &fd, 1);
            end.nlisteners++;
        }
    }
    for (k = 0; k < c->nworkers; k++) {
        w = c->workers[k];
        for (i = 0; i < w->nexports; i++) {
            e = &w->exports[i];
            e->m.worker = k;
            fds[0] = e->cfd;
            fds[1] = e->ufd;
            if (takeover_batch_room(&bt, 2) != MQ_OK ||
                handover_encode_session(&bt.b, &e->m) != MQ_OK) {
                goto io;
            }
            takeover_batch_fds(&bt, fds, 2);
            end.nsessions++;
        }
    }
    *nsent = end.nsessions;
    for (i = 0; i < c->gen->npools; i++) {
        p = c->gen->pools[i];
        memset(&hp, 0, sizeof(hp));
        snprintf(hp.name, sizeof(hp.name), "%s", p->cf->name);
        hp.nrejected = REJECT_NREASONS;
        for (j = 0; p->nrejected != NULL && j < REJECT_NREASONS; j++) {
            hp.rejected[j] = atomic_load(&p->nrejected[j]);
        }
        if (takeover_batch_room(&bt, 0) != MQ_OK ||
            handover_encode_pool(&bt.b, &hp) != MQ_OK) {
            goto io;
        }
        end.npools++;
        for (j = 0; j < p->nbackends; j++) {
            if (atomic_load(&p->backends[j]->leaving)) {
                /* Removed, draining: not the successor's. Its sessions
                 * are declined there and end here. */
                continue;
            }
            takeover_backend_msg(p, p->backends[j], &hb);
            if (takeover_batch_room(&bt, 0) != MQ_OK ||
                handover_encode_backend(&bt.b, &hb) != MQ_OK) {
                goto io;
            }
            end.nbackends++;
        }
    }
    if (handover_encode_end(&bt.b, &end) != MQ_OK ||
        takeover_batch_flush(&bt) != MQ_OK) {
        goto io;
    }
    handover_buf_deinit(&bt.b);
    return MQ_OK;
io:
    snprintf(err, MQ_ERR_LEN, "sending to the successor failed: %s",
             bt.b.failed ? "out of memory" : strerror(errno));
    handover_buf_deinit(&bt.b);
    return MQ_ERR;
}

static int
takeover_cmp_id(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Wait for the successor's ACK; the declined ids, sorted, into <c>. */
static int
takeover_wait_ack(struct core *c, int sock, size_t *ndeclined, char *err)
{
    struct handover_header h;
    struct handover_ack ack;
    struct handover_error he;
    uint8_t *payload;
    uint64_t *ids = NULL;
    uint32_t i;
    int rc;

    ctlsock_set_timeouts(sock, TAKEOVER_ACK_TIMEOUT_MS);
    rc = ctlsock_read_frame(sock, &h, &payload);
    if (rc != MQ_OK) {
        snprintf(err, MQ_ERR_LEN, "no acknowledgement from the successor: "
                 "%s", rc == MQ_ERR && errno == ECONNRESET
                 ? "it hung up" : ctlsock_frame_error(rc));
        return MQ_ERR;
    }
    if (h.type == HANDOVER_ERROR &&
        handover_decode_error(payload, h.length, &he) == MQ_OK) {
        snprintf(err, MQ_ERR_LEN, "the successor gave up: %.200s", he.text);
        free(payload);
        return MQ_ERR;
    }
    if (h.type != HANDOVER_ACK ||
        handover_decode_ack(payload, h.length, &ack) != MQ_OK) {
        snprintf(err, MQ_ERR_LEN, "the successor sent %s instead of ACK",
                 handover_type_name(h.type));
        free(payload);
        return MQ_ERR;
    }
    if (ack.ndeclined > 0) {
        ids = malloc(ack.ndeclined * sizeof(*ids));
        if (ids == NULL) {
            snprintf(err, MQ_ERR_LEN, "out of memory");
            free(payload);
            return MQ_ERR;
        }
        for (i = 0; i < ack.ndeclined; i++) {
            ids[i] = handover_ack_id(&ack, i);
        }
        qsort(ids, ack.ndeclined, sizeof(*ids), takeover_cmp_id);
    }
    free(payload);
    for (i = 0; i < c->nworkers; i++) {
        worker_handover_keep(c->workers[i], ids, ack.ndeclined);
    }
    mq_free(c->handover_keep);
    c->handover_keep = ids;     /* freed at exit; the workers read it */
    *ndeclined = ack.ndeclined;
    return MQ_OK;
}

void
takeover_serve(struct core *c, int fd, pid_t pid)
{
    char err[MQ_ERR_LEN];
    uint64_t t0 = mq_now_ms();
    size_t nsent = 0, nkept = 0, used;
    char per[128];
    unsigned k;
    int rc;

    if (c->stopping) {
        ctlsock_send_error(fd, "this mqlb is stopping");
        goto out;
    }
    log_notice("takeover: pid %d takes over; freezing sessions", (int)pid);
    if (takeover_workers_run(c, WORKER_CMD_FREEZE) != MQ_OK) {
        snprintf(err, MQ_ERR_LEN, "workers did not reach a safe point in "
                 "time");
        goto thaw;
    }
    if (takeover_send_all(c, fd, &nsent, err) != MQ_OK ||
        takeover_wait_ack(c, fd, &nkept, err) != MQ_OK) {
        goto thaw;
    }
    /* The commit. The path is free before the successor hears DONE. */
    ctlsock_stop(c->ctlsock);
    c->ctlsock = NULL;
    {
        struct handover_buf b;

        handover_buf_init(&b);
        rc = handover_encode_done(&b) == MQ_OK
             ? ctlsock_send_frame(fd, &b) : MQ_ERR;
        handover_buf_deinit(&b);
    }
    if (rc != MQ_OK) {
        snprintf(err, MQ_ERR_LEN, "sending DONE failed: %s",
                 strerror(errno));
        core_control_socket_start(c);
        goto thaw;
    }
    t0 = mq_now_ms() - t0;      /* the pause: frozen until committed */
    for (k = 0, used = 0; k < c->nworkers && used < sizeof(per); k++) {
        used += (size_t)snprintf(per + used, sizeof(per) - used, "%s%zu",
                                 k > 0 ? " " : "", c->workers[k]->nexports);
    }
    (void)takeover_workers_run(c, WORKER_CMD_HANDED);
    log_notice("takeover: %zu sessions moved to pid %d in %llu ms (frozen "
               "per worker: %s), %zu declined by it; %u stay here until "
               "they end", nsent - nkept, (int)pid,
               (unsigned long long)t0, per, nkept,
               admission_nlive(&c->adm));
    core_retire(c);
    goto out;
thaw:
    if (takeover_workers_run(c, WORKER_CMD_THAW) != MQ_OK) {
        log_error("takeover: a worker did not thaw in time");
    }
    log_warn("takeover by pid %d failed: %s; still serving every session",
             (int)pid, err);
out:
    close(fd);
}

/* ---- the new side ----------------------------------------------------- */

/* Queue descriptors that arrived; closes them if there is no room. */
static int
takeover_rd_queue(struct takeover_rd *r, const int *fds, size_t n)
{
    size_t i, cap;
    int *grown;

    if (r->fq_head > 0 && r->fq_head + r->fq_len + n > r->fq_cap) {
        memmove(r->fdq, r->fdq + r->fq_head, r->fq_len * sizeof(*r->fdq));
        r->fq_head = 0;
    }
    if (r->fq_len + n > r->fq_cap) {
        cap = (r->fq_len + n) * 2;
        grown = realloc(r->fdq, cap * sizeof(*grown));
        if (grown == NULL) {
            for (i = 0; i < n; i++) {
                close(fds[i]);
            }
            errno = ENOMEM;
            return MQ_ERR;
        }
        r->fdq = grown;
        r->fq_cap = cap;
    }
    memcpy(r->fdq + r->fq_head + r->fq_len, fds, n * sizeof(*fds));
    r->fq_len += n;
    return MQ_OK;
}

/* Have at least <need> unread bytes. MQ_ERR with errno. */
static int
takeover_rd_fill(struct takeover_rd *r, int sock, size_t need)
{
    int fds[FDPASS_MAX_FDS];
    size_t nfds, cap;
    uint8_t *grown;
    long n;

    while (r->end - r->start < need) {
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        if (r->cap - r->end < 65536 || r->cap < need) {
            cap = MQ_MAX(r->cap * 2, need + 65536);
            grown = realloc(r->buf, cap);
            if (grown == NULL) {
                errno = ENOMEM;
                return MQ_ERR;
            }
            r->buf = grown;
            r->cap = cap;
        }
        nfds = 0;
        n = fdpass_recv_some(sock, r->buf + r->end, r->cap - r->end, fds,
                             FDPASS_MAX_FDS, &nfds);
        if (takeover_rd_queue(r, fds, nfds) != MQ_OK) {
            return MQ_ERR;
        }
        if (n == -1) {
            return MQ_ERR;
        }
        if (n == 0) {
            errno = ECONNRESET;
            return MQ_ERR;
        }
        r->end += (size_t)n;
    }
    return MQ_OK;
}

/* The next frame; <*payload> is valid until the next call. MQ_OK,
 * MQ_ERR (errno) or a header verdict. */
static int
takeover_rd_frame(struct takeover_rd *r, int sock, struct handover_header *h,
                  const uint8_t **payload)
{
    int rc;

    if (takeover_rd_fill(r, sock, HANDOVER_HEADER_LEN) != MQ_OK) {
        return MQ_ERR;
    }
    rc = handover_header_decode(r->buf + r->start, h);
    if (rc != MQ_OK) {
        return rc;
    }
    if (takeover_rd_fill(r, sock, HANDOVER_HEADER_LEN + h->length)
        != MQ_OK) {
        return MQ_ERR;
    }
    *payload = r->buf + r->start + HANDOVER_HEADER_LEN;
    r->start += HANDOVER_HEADER_LEN + h->length;
    return MQ_OK;
}

/* Take <n> queued descriptors for the frame just read. */
static int
takeover_rd_fds(struct takeover_rd *r, int *fds, size_t n)
{
    if (r->fq_len < n) {
        return MQ_ERR;
    }
    memcpy(fds, r->fdq + r->fq_head, n * sizeof(*fds));
    r->fq_head += n;
    r->fq_len -= n;
    return MQ_OK;
}

static void
takeover_rd_free(struct takeover_rd *r)
{
    size_t i;

    for (i = 0; i < r->fq_len; i++) {
        close(r->fdq[r->fq_head + i]);
    }
    mq_free(r->fdq);
    mq_free(r->buf);
}

static void *
takeover_grow(void *arr, size_t n, size_t size)
{
    /* Doubling at powers of two, so that n items always fit. */
    if (n == 0 || (n & (n - 1)) == 0) {
        return realloc(arr, (n == 0 ? 1 : n * 2) * size);
    }
    return arr;
}

static int
takeover_die_after(void)
{
    const char *v = getenv(TAKEOVER_TEST_DIE_AFTER);

    return v != NULL ? atoi(v) : -1;
}

/* One frame after HELLO; MQ_OK, MQ_AGAIN after END, MQ_ERR with <err>. */
static int
takeover_take(struct takeover_in *in, const struct handover_header *h,
              uint8_t *payload, int *fds, size_t nfds, char *err)
{
    struct handover_error he;
    struct handover_end end;
    struct takeover_lfd *lf;
    struct takeover_sess *ts;
    struct handover_listener li;
    size_t want = h->type == HANDOVER_SESSION ? 2
                  : h->type == HANDOVER_LISTENER ? 1 : 0;
    int die = takeover_die_after();
    void *grown;

    if (nfds != want) {
        snprintf(err, MQ_ERR_LEN, "%s came with %zu descriptors, not %zu",
                 handover_type_name(h->type), nfds, want);
        return MQ_ERR;
    }
    switch (h->type) {
    case HANDOVER_ERROR:
        if (handover_decode_error(payload, h->length, &he) != MQ_OK) {
            snprintf(he.text, sizeof(he.text), "(unreadable)");
        }
        snprintf(err, MQ_ERR_LEN, "the running mqlb refused: %.200s",
                 he.text);
        return MQ_ERR;
    case HANDOVER_BEGIN:
        if (handover_decode_begin(payload, h->length, &in->begin) != MQ_OK) {
            break;
        }
        return MQ_OK;
    case HANDOVER_LISTENER:
        if (handover_decode_listener(payload, h->length, &li) != MQ_OK) {
            break;
        }
        grown = takeover_grow(in->lfds, in->nlfds, sizeof(*in->lfds));
        if (grown == NULL) {
            goto nomem;
        }
        in->lfds = grown;
        lf = &in->lfds[in->nlfds];
        memset(lf, 0, sizeof(*lf));
        lf->worker = li.worker;
        lf->addr.len = sizeof(lf->addr.ss);
        if (getsockname(fds[0], (struct sockaddr *)&lf->addr.ss,
                        &lf->addr.len) == -1) {
            snprintf(err, MQ_ERR_LEN, "a listening socket for %s: %s",
                     li.addr, strerror(errno));
            return MQ_ERR;
        }
        snprintf(lf->addr.text, sizeof(lf->addr.text), "%s", li.addr);
        lf->fd = fds[0];
        fds[0] = -1;
        in->nlfds++;
        return MQ_OK;
    case HANDOVER_SESSION:
        grown = takeover_grow(in->sess, in->nsess, sizeof(*in->sess));
        if (grown == NULL) {
            goto nomem;
        }
        in->sess = grown;
        ts = &in->sess[in->nsess];
        if (handover_decode_session(payload, h->length, &ts->m) != MQ_OK) {
            break;
        }
        ts->payload = payload;      /* the session's bytes point into it */
        ts->cfd = fds[0];
        ts->ufd = fds[1];
        fds[0] = fds[1] = -1;
        in->nsess++;
        if (die >= 0 && in->nsess >= (size_t)die) {
            log_warn("takeover: %s=%d: dying now, as asked",
                     TAKEOVER_TEST_DIE_AFTER, die);
            kill(getpid(), SIGKILL);
        }
        return MQ_OK;
    case HANDOVER_POOL:
        grown = takeover_grow(in->pools, in->npools, sizeof(*in->pools));
        if (grown == NULL) {
            goto nomem;
        }
        in->pools = grown;
        if (handover_decode_pool(payload, h->length,
                                 &in->pools[in->npools]) != MQ_OK) {
            break;
        }
        in->npools++;
        return MQ_OK;
    case HANDOVER_BACKEND:
        grown = takeover_grow(in->backends, in->nbackends,
                              sizeof(*in->backends));
        if (grown == NULL) {
            goto nomem;
        }
        in->backends = grown;
        memset(&in->backends[in->nbackends], 0, sizeof(*in->backends));
        if (handover_decode_backend(payload, h->length,
                                    &in->backends[in->nbackends])
            != MQ_OK) {
            break;
        }
        in->nbackends++;
        return MQ_OK;
    case HANDOVER_END:
        if (handover_decode_end(payload, h->length, &end) != MQ_OK) {
            break;
        }
        if (end.nlisteners != in->nlfds || end.nsessions != in->nsess ||
            end.npools != in->npools || end.nbackends != in->nbackends) {
            snprintf(err, MQ_ERR_LEN, "the running mqlb announced %u "
                     "listeners and %u sessions, %zu and %zu arrived",
                     end.nlisteners, end.nsessions, in->nlfds, in->nsess);
            return MQ_ERR;
        }
        return MQ_AGAIN;
    default:
        snprintf(err, MQ_ERR_LEN, "unexpected %s frame",
                 handover_type_name(h->type));
        return MQ_ERR;
    }
    snprintf(err, MQ_ERR_LEN, "malformed %s frame",
             handover_type_name(h->type));
    return MQ_ERR;
nomem:
    snprintf(err, MQ_ERR_LEN, "out of memory");
    return MQ_ERR;
}

struct takeover_in *
takeover_receive(const char *path, char *err)
{
    struct takeover_in *in;
    struct handover_header h;
    struct handover_hello hello;
    struct handover_buf b;
    const uint8_t *frame;
    uint8_t *payload;
    size_t nfds;
    int rc, fds[HANDOVER_MAX_FDS];

    in = calloc(1, sizeof(*in));
    if (in == NULL) {
        snprintf(err, MQ_ERR_LEN, "out of memory");
        return NULL;
    }
    in->started_ms = mq_now_ms();
    in->sock = ctlsock_connect(path, CTLSOCK_IO_TIMEOUT_MS, err);
    if (in->sock == -1) {
        free(in);
        return NULL;
    }
    handover_buf_init(&b);
    hello.pid = (uint32_t)getpid();
    rc = handover_encode_hello(&b, &hello) == MQ_OK
         ? ctlsock_send_frame(in->sock, &b) : MQ_ERR;
    handover_buf_deinit(&b);
    if (rc != MQ_OK) {
        snprintf(err, MQ_ERR_LEN, "sending to %s failed: %s", path,
                 strerror(errno));
        takeover_in_free(in);
        return NULL;
    }
    for (;;) {
        rc = takeover_rd_frame(&in->rd, in->sock, &h, &frame);
        if (rc != MQ_OK) {
            snprintf(err, MQ_ERR_LEN, "reading from the running mqlb "
                     "failed: %s", rc == MQ_ERR && errno == ECONNRESET
                     ? "it hung up" : ctlsock_frame_error(rc));
            takeover_in_free(in);
            return NULL;
        }
        nfds = h.type == HANDOVER_SESSION ? 2
               : h.type == HANDOVER_LISTENER ? 1 : 0;
        if (takeover_rd_fds(&in->rd, fds, nfds) != MQ_OK) {
            snprintf(err, MQ_ERR_LEN, "%s came without its descriptors",
                     handover_type_name(h.type));
            takeover_in_free(in);
            return NULL;
        }
        /* A session keeps its frame: its bytes point into it. */
        payload = malloc(h.length > 0 ? h.length : 1);
        if (payload == NULL) {
            takeover_close_fds(fds, nfds);
            snprintf(err, MQ_ERR_LEN, "out of memory");
            takeover_in_free(in);
            return NULL;
        }
        memcpy(payload, frame, h.length);
        rc = takeover_take(in, &h, payload, fds, nfds, err);
        takeover_close_fds(fds, nfds);  /* any that were not taken */
        if (h.type != HANDOVER_SESSION || rc != MQ_OK) {
            free(payload);
        }
        if (rc == MQ_AGAIN) {
            return in;
        }
        if (rc != MQ_OK) {
            takeover_in_free(in);
            return NULL;
        }
    }
}

int
takeover_listen_set(struct takeover_in *in, unsigned nworkers,
                    struct listen_set *out)
{
    size_t i;

    if (listen_set_init(out, nworkers, in->nlfds) != MQ_OK) {
        return MQ_ERR;
    }
    for (i = 0; i < in->nlfds; i++) {
        listen_set_add(out, in->lfds[i].worker % nworkers, &in->lfds[i].addr,
                       in->lfds[i].fd);
    }
    return MQ_OK;
}

void
takeover_listeners_taken(struct takeover_in *in,
                         const struct listen_set *built)
{
    const struct config_addr *a;
    size_t i, k, n;
    unsigned w;

    for (i = 0; i < in->nlfds; i++) {
        for (w = 0; w < built->nworkers && in->lfds[i].fd != -1; w++) {
            n = listen_set_count(built, w);
            for (k = 0; k < n; k++) {
                if (listen_set_get(built, w, k, &a) == in->lfds[i].fd) {
                    in->lfds[i].fd = -1;
                    break;
                }
            }
        }
        if (in->lfds[i].fd != -1) {
            log_warn("takeover: listening socket %s of old worker %u has "
                     "no place here (fewer workers, or the address left "
                     "the config), closed", in->lfds[i].addr.text,
                     in->lfds[i].worker);
        }
    }
}

uint64_t
takeover_next_id(const struct takeover_in *in)
{
    return in->begin.next_id;
}

/*
 * A backend the old process had added at runtime (DNS, the API): add it
 * here too, so that its sessions and state have a place. NULL if it
 * cannot be.
 */
static struct backend *
takeover_add_backend(const struct handover_backend *m, struct core *c,
                     struct pool *p)
{
    struct config_backend cb;

    memset(&cb, 0, sizeof(cb));
    snprintf(cb.name, sizeof(cb.name), "%s", m->name);
    if (config_parse_addr(m->addr, &cb.addr) != MQ_OK) {
        return NULL;
    }
    cb.weight = m->weight;
    cb.max_conns = m->max_conns;
    cb.max_connect_rate = m->max_connect_rate;
    cb.backup = m->backup != 0;
    if (members_add(&c->members, p, &cb, (enum backend_source)m->source)
        != MQ_OK) {
        return NULL;
    }
    return pool_find_backend(p, m->name);
}

/* Apply one backend's state; false if the config no longer has it. */
static bool
takeover_apply_backend(const struct handover_backend *m, struct core *c)
{
    struct pool *p = gen_find_pool(c->gen, m->pool);
    struct backend *b = p != NULL ? pool_find_backend(p, m->name) : NULL;
    unsigned file_weight = m->config_weight;
    uint64_t now = mq_now_ms();
    size_t i;

    if (b == NULL && p != NULL && m->source != BACKEND_SOURCE_CONFIG) {
        b = takeover_add_backend(m, c, p);
    }
    if (b == NULL || strcmp(backend_addr(b)->text, m->addr) != 0) {
        return false;
    }
    for (i = 0; i < p->cf->nbackends; i++) {
        if (strcmp(p->cf->backends[i].name, b->name) == 0) {
            file_weight = p->cf->backends[i].weight;
        }
    }
    /* As on reload: a weight the file changed wins over a runtime one. */
    if (file_weight == m->config_weight) {
        atomic_store(&b->weight, m->weight);
    }
    atomic_store(&b->up, m->up != 0);
    atomic_store(&b->last_state, m->up != 0 ? BACKEND_UP : BACKEND_DOWN);
    atomic_store(&b->admin, (int)m->admin);
    atomic_store(&b->proto_drain, m->proto_drain != 0);
    atomic_store(&b->nfails_row, m->nfails_row);
    atomic_store(&b->since_ms, m->since_ms);
    atomic_store(&b->up_at_ms, m->up_age_ms == HANDOVER_NO_AGE ||
                 m->up_age_ms > now ? 0 : now - m->up_age_ms);
    atomic_store(&b->ntotal, m->ntotal);
    atomic_store(&b->nfailed, m->nfailed);
    atomic_store(&b->bytes_in, m->bytes_in);
    atomic_store(&b->bytes_out, m->bytes_out);
    atomic_store(&b->nchecks_pass, m->nchecks_pass);
    atomic_store(&b->nchecks_fail, m->nchecks_fail);
    backend_bump(b);
    b->health = m->health;
    pthread_mutex_lock(&b->check_lock);
    b->check.result = (enum backend_check_result)m->check_result;
    b->check.latency_ms = m->check_latency_ms;
    b->check.at_ms = m->check_at_ms;
    snprintf(b->check.reason, sizeof(b->check.reason), "%s",
             m->check_reason);
    snprintf(b->down_reason, sizeof(b->down_reason), "%s", m->down_reason);
    snprintf(b->admin_by, sizeof(b->admin_by), "%s", m->admin_by);
    pthread_mutex_unlock(&b->check_lock);
    return true;
}

void
takeover_apply_state(struct takeover_in *in, struct core *c)
{
    struct pool *p;
    size_t i, j;

    for (i = 0; i < in->npools; i++) {
        p = gen_find_pool(c->gen, in->pools[i].name);
        for (j = 0; p != NULL && p->nrejected != NULL &&
             j < in->pools[i].nrejected && j < REJECT_NREASONS; j++) {
            atomic_store(&p->nrejected[j], in->pools[i].rejected[j]);
        }
    }
    for (i = 0; i < in->nbackends; i++) {
        if (!takeover_apply_backend(&in->backends[i], c)) {
            log_warn("takeover: backend %s/%s (%s) is not in this config, "
                     "its runtime state is dropped", in->backends[i].pool,
                     in->backends[i].name, in->backends[i].addr);
        }
    }
}

/* Adopt one session, or MQ_ERR (declined: the old process keeps it). */
static int
takeover_adopt_one(struct takeover_sess *ts, struct core *c)
{
    struct admission_ticket t;
    struct pool *p = gen_find_pool(c->gen, ts->m.pool);
    struct backend *b = p != NULL ? pool_find_backend(p, ts->m.backend)
                        : NULL;
    struct worker *w = c->workers[ts->m.worker % c->nworkers];

    if (b == NULL || admission_take(&c->adm, &t) != MQ_OK) {
        return MQ_ERR;
    }
    net_peer_set(&t.peer, (struct sockaddr *)&ts->m.client);
    if (p->sources != NULL &&
        admission_take_source(&t, p->sources, UINT32_MAX) != MQ_OK) {
        admission_return(&t);
        return MQ_ERR;
    }
    if (session_import(&w->env, p, b, &ts->m, ts->cfd, ts->ufd, &t)
        != MQ_OK) {
        admission_return(&t);
        return MQ_ERR;
    }
    ts->cfd = ts->ufd = -1;     /* the session's now */
    return MQ_OK;
}

void
takeover_adopt(struct takeover_in *in, struct core *c)
{
    struct takeover_sess *ts;
    size_t i;

    in->declined = calloc(in->nsess > 0 ? in->nsess : 1,
                          sizeof(*in->declined));
    for (i = 0; i < in->nsess; i++) {
        ts = &in->sess[i];
        if (takeover_adopt_one(ts, c) == MQ_OK) {
            continue;
        }
        log_warn("takeover: session #%llu (pool %s, backend %s) declined: "
                 "%s; it stays with the old process",
                 (unsigned long long)ts->m.id, ts->m.pool, ts->m.backend,
                 gen_find_pool(c->gen, ts->m.pool) == NULL
                 ? "no such pool here" : "no such backend here, or full");
        if (in->declined != NULL) {
            in->declined[in->ndeclined++] = ts->m.id;
        }
        /* Our copies only: the old process's keep the connections up. */
        close(ts->cfd);
        close(ts->ufd);
        ts->cfd = ts->ufd = -1;
    }
}

int
takeover_commit(struct takeover_in *in, char *err)
{
    struct handover_header h;
    struct handover_buf b;
    const uint8_t *frame;
    int rc;

    handover_buf_init(&b);
    rc = handover_encode_ack(&b, in->declined, (uint32_t)in->ndeclined)
         == MQ_OK ? ctlsock_send_frame(in->sock, &b) : MQ_ERR;
    handover_buf_deinit(&b);
    if (rc != MQ_OK) {
        snprintf(err, MQ_ERR_LEN, "sending ACK failed: %s", strerror(errno));
        return MQ_ERR;
    }
    ctlsock_set_timeouts(in->sock, TAKEOVER_DONE_TIMEOUT_MS);
    rc = takeover_rd_frame(&in->rd, in->sock, &h, &frame);
    if (rc != MQ_OK || h.type != HANDOVER_DONE || in->rd.fq_len > 0) {
        snprintf(err, MQ_ERR_LEN, "the running mqlb did not commit: %s",
                 rc == MQ_OK ? handover_type_name(h.type)
                 : rc == MQ_ERR && errno == ECONNRESET ? "it hung up"
                 : ctlsock_frame_error(rc));
        return MQ_ERR;
    }
    log_notice("takeover: %zu sessions adopted (%zu declined), %zu "
               "listening sockets, %zu backends from pid %u in %llu ms",
               in->nsess - in->ndeclined, in->ndeclined, in->nlfds,
               in->nbackends, in->begin.pid,
               (unsigned long long)(mq_now_ms() - in->started_ms));
    return MQ_OK;
}

void
takeover_in_free(struct takeover_in *in)
{
    size_t i;

    if (in == NULL) {
        return;
    }
    if (in->sock != -1) {
        close(in->sock);
    }
    takeover_rd_free(&in->rd);
    for (i = 0; i < in->nlfds; i++) {
        if (in->lfds[i].fd != -1) {
            close(in->lfds[i].fd);
        }
    }
    for (i = 0; i < in->nsess; i++) {
        if (in->sess[i].cfd != -1) {
            close(in->sess[i].cfd);
        }
        if (in->sess[i].ufd != -1) {
            close(in->sess[i].ufd);
        }
        free(in->sess[i].payload);
    }
    free(in->lfds);
    free(in->sess);
    free(in->pools);
    free(in->backends);
    free(in->declined);
    free(in);
}
