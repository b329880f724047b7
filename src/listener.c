/*
 * listener.c: accepting clients. Accept runs until EAGAIN (or a batch
 * limit, so one busy port cannot starve the loop); admission is checked
 * before a session is allocated. When the process is out of descriptors
 * or at max_connections the listeners pause and new clients wait in the
 * kernel backlog, instead of the loop spinning on a readable socket.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/core.h"
#include "mqlb/listener.h"
#include "mqlb/log.h"
#include "mqlb/net.h"
#include "mqlb/pool.h"
#include "mqlb/session.h"
#include "mqlb/srclimit.h"
#include "mqlb/worker.h"

#define LISTENER_BACKLOG    4096
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

static void
listener_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct listener *l = (struct listener *)io;     /* io is first */
    struct worker *w = l->worker;
    const struct config_pool *cf = l->pool->cf;
    struct sockaddr_storage ss;
    socklen_t len;
    char addr[64];
    int fd, i;

    (void)loop;
    (void)revents;
    for (i = 0; i < LISTENER_BATCH; i++) {
        if (!core_session_admit(w->core)) {
            /* Full: leave the rest in the backlog until a session ends. */
            worker_pause_accept(w);
            return;
        }
        fd = net_accept(l->fd, &ss, &len);
        if (fd == -1) {
            core_session_done(w->core);
            if (errno == EAGAIN || errno == EWOULDBLOCK ||
                errno == ECONNABORTED) {
                return;
            }
            if (net_is_shortage(errno)) {
                log_warn("accept on %s failed: %s, pausing accepts",
                         l->addr.text, strerror(errno));
                worker_pause_accept(w);
                return;
            }
            log_warn("accept on %s failed: %s, ignored", l->addr.text,
                     strerror(errno));
            return;
        }
        if (cf->nallow > 0 &&
            !acl_match(cf->allow, cf->nallow, (struct sockaddr *)&ss)) {
            net_format((struct sockaddr *)&ss, addr, sizeof(addr));
            listener_log_refusal(&listener_allow_rl, addr,
                                 "not in the allow list", cf->name);
            pool_reject(l->pool, REJECT_ALLOW);
            close(fd);
            core_session_done(w->core);
            continue;
        }
        /* Counted before the session exists, as the allow list, so a
         * client over its share costs no allocation. */
        if (l->pool->sources != NULL &&
            srclimit_acquire(l->pool->sources, (struct sockaddr *)&ss,
                             cf->max_conns_per_source) != MQ_OK) {
            net_format((struct sockaddr *)&ss, addr, sizeof(addr));
            listener_log_refusal(&listener_source_rl, addr,
                                 errno == ENOMEM ? "out of memory"
                                 : "max_conns_per_source reached", cf->name);
            pool_reject(l->pool, REJECT_SOURCE_LIMIT);
            close(fd);
            core_session_done(w->core);
            continue;
        }
        if (session_create(w, l->pool, fd, &ss, l->addr.tls) != MQ_OK) {
            if (l->pool->sources != NULL) {
                srclimit_release(l->pool->sources, (struct sockaddr *)&ss);
            }
            core_session_done(w->core);
            log_error("session for a client of %s: out of memory",
                      l->addr.text);
        }
    }
}

struct listener *
listener_create(const struct config_addr *addr, struct pool *pool, int fd,
                char *err)
{
    struct listener *l;

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
    }
    l->fd = fd;
    l->addr = *addr;
    l->pool = pool;
    pool_acquire(pool);
    ev_io_init(&l->io, listener_accept_cb, fd, EV_READ);
    return l;
}

void
listener_start(struct listener *l, struct worker *w)
{
    l->worker = w;
    ev_io_start(w->loop, &l->io);
}

void
listener_stop(struct listener *l)
{
    if (l->worker != NULL) {
        ev_io_stop(l->worker->loop, &l->io);
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
    pool_release(l->pool);
    free(l);
}
