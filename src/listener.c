/*
 * listener.c: accepting clients. Accept runs until EAGAIN (or a batch
 * limit, so one busy port cannot starve the loop); admission is checked
 * before a session is allocated. When the process is out of descriptors
 * or at max_connections the listeners pause and new clients wait in the
 * kernel backlog, instead of the loop spinning on a readable socket.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mqlb/admission.h"
#include "mqlb/common.h"
#include "mqlb/listener.h"
#include "mqlb/log.h"
#include "mqlb/net.h"
#include "mqlb/pool.h"

#define LISTENER_BACKLOG    4096
/* defer_accept: the kernel holds a silent client this long (seconds), then
 * hands it over anyway at its next ACK. */
#define LISTENER_DEFER_S    10
#define LISTENER_BATCH      64      /* accepts per wake-up */

/* Refusals are lines any client can cause: rate-limited, with a count. */
static struct log_ratelimit listener_allow_rl;
static struct log_ratelimit listener_source_rl;

static void
listener_log_refusal(struct log_ratelimit *rl, const char *addr,
                     const char *why, const char *pool)
{
    uint64_t nsup;

    if (!log_ratelimit_ok(rl, &nsup)) {
        return;
    }
    if (nsup > 0) {
        log_warn("client %s refused: %s in pool %s (%llu similar lines "
                 "suppressed)", addr, why, pool, (unsigned long long)nsup);
    } else {
        log_warn("client %s refused: %s in pool %s", addr, why, pool);
    }
}

/* Refuse the client on <fd> for <why>: a rate-limited line from <rl>,
 * one count under <reason>, and its ticket back. */
static void
listener_refuse(struct listener *l, int fd, struct admission_ticket *t,
                enum reject_reason reason, struct log_ratelimit *rl,
                const char *why)
{
    char addr[NET_ADDR_LEN];

    net_format(&t->peer.sa, addr, sizeof(addr));
    listener_log_refusal(rl, addr, why, l->pool->cf->name);
    pool_reject(l->pool, reason);
    close(fd);
    admission_return(t);
}

static void
listener_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct listener *l = (struct listener *)io;     /* io is first */
    const struct config_pool *cf = l->pool->cf;
    struct admission_ticket t;
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, i;

    (void)loop;
    (void)revents;
    for (i = 0; i < LISTENER_BATCH; i++) {
        if (admission_take(l->adm, &t) != MQ_OK) {
            /* Full: leave the rest in the backlog until a session ends. */
            l->on_full(l->ctx);
            return;
        }
        fd = net_accept(l->fd, &ss, &len);
        if (fd == -1) {
            admission_return(&t);
            if (errno == EAGAIN || errno == EWOULDBLOCK ||
                errno == ECONNABORTED) {
                return;
            }
            if (net_is_shortage(errno)) {
                log_warn("accept on %s failed: %s, pausing accepts",
                         l->addr.text, strerror(errno));
                l->on_full(l->ctx);
                return;
            }
            log_warn("accept on %s failed: %s, ignored", l->addr.text,
                     strerror(errno));
            return;
        }
        net_peer_set(&t.peer, (struct sockaddr *)&ss);
        if (cf->nallow > 0 &&
            !acl_match(cf->allow, cf->nallow, &t.peer.sa)) {
            listener_refuse(l, fd, &t, REJECT_ALLOW, &listener_allow_rl,
                            "not in the allow list");
            continue;
        }
        /* Counted before the session exists, as the allow list, so a
         * client over its share costs no allocation. */
        if (l->pool->sources != NULL &&
            admission_take_source(&t, l->pool->sources,
                                  cf->max_conns_per_source) != MQ_OK) {
            listener_refuse(l, fd, &t, REJECT_SOURCE_LIMIT,
                            &listener_source_rl, errno == ENOMEM
                            ? "out of memory"
                            : "max_conns_per_source reached");
            continue;
        }
        l->on_accept(l->ctx, l, fd, &t);
    }
}

/*
 * TCP_DEFER_ACCEPT per the pool's defer_accept, set (or cleared) on every
 * generation's listener, so that a reload that changes the key applies to
 * the socket it keeps. Accepted sockets need nothing: the kernel wakes
 * accept() only once the client's first bytes are there, which spares the
 * session a wake-up and a read that would block.
 */
static void
listener_set_defer(int fd, const struct config_pool *cf,
                   const struct config_addr *addr)
{
    int secs = config_pool_defer_accept(cf) ? LISTENER_DEFER_S : 0;

    if (addr->ss.ss_family != AF_INET && addr->ss.ss_family != AF_INET6) {
        return;
    }
    if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs,
                   sizeof(secs)) == -1) {
        log_warn("pool %s: TCP_DEFER_ACCEPT on %s: %s", cf->name, addr->text,
                 strerror(errno));
    }
}

struct listener *
listener_create(const struct config_addr *addr, struct pool *pool,
                struct admission *adm, int fd, char *err)
{
    struct listener *l;
    bool bound = false;

    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, MQ_ERR_LEN, "out of memory");
        return NULL;
    }
    if (fd < 0) {
        fd = net_listen(addr, LISTENER_BACKLOG, err);
        if (fd == -1) {
            free(l);
            return NULL;
        }
        bound = true;
    }
    listener_set_defer(fd, pool->cf, addr);
    l->fd = fd;
    l->addr = *addr;
    l->adm = adm;
    l->pool = pool;
    l->sni = pool->cf->nsni > 0;
    if (listener_add_route(l, pool) != MQ_OK) {
        if (bound) {
            close(fd);
        }
        free(l);
        snprintf(err, MQ_ERR_LEN, "out of memory");
        return NULL;
    }
    pool_acquire(pool);
    ev_io_init(&l->io, listener_accept_cb, fd, EV_READ);
    return l;
}

int
listener_add_route(struct listener *l, struct pool *pool)
{
    struct pool **route;

    route = realloc(l->route, (l->nroute + 1) * sizeof(*route));
    if (route == NULL) {
        return MQ_ERR;
    }
    l->route = route;
    route[l->nroute++] = pool;
    pool_acquire(pool);
    l->sni = l->sni || pool->cf->nsni > 0;
    return MQ_OK;
}

void
listener_attach(struct listener *l, struct ev_loop *loop,
                listener_accept_fn on_accept, listener_full_fn on_full,
                void *ctx)
{
    l->loop = loop;
    l->on_accept = on_accept;
    l->on_full = on_full;
    l->ctx = ctx;
}

void
listener_start(struct listener *l)
{
    ev_io_start(l->loop, &l->io);
}

void
listener_stop(struct listener *l)
{
    if (l->loop != NULL) {
        ev_io_stop(l->loop, &l->io);
    }
}

void
listener_destroy(struct listener *l, int keep_fd)
{
    if (l == NULL) {
        return;
    }
    listener_stop(l);
    if (!keep_fd && l->fd != -1) {
        close(l->fd);
    }
    while (l->nroute > 0) {
        pool_release(l->route[--l->nroute]);
    }
    mq_free(l->route);
    pool_release(l->pool);
    free(l);
}
