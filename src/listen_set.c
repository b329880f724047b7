/*
 * listen_set.c: the inventory of listening sockets per worker, and the
 * listener lists built from it for a new generation.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/common.h"
#include "mqlb/config.h"
#include "mqlb/listen_set.h"
#include "mqlb/listener.h"
#include "mqlb/log.h"
#include "mqlb/pool.h"

/* One worker's listening socket, as the main thread knows it. */
struct listen_set_fd {
    struct config_addr  addr;
    int                 fd;
};

/* The socket <old> has open for <a> that <mine> has not taken yet, or -1. */
static int
listen_set_reuse(const struct listen_set_fd *old, size_t nold,
                 const struct listen_set_fd *mine, size_t nmine,
                 const struct config_addr *a)
{
    size_t k, m;
    bool taken;

    for (k = 0; k < nold; k++) {
        if (!config_addr_equal(&old[k].addr, a)) {
            continue;
        }
        taken = false;
        for (m = 0; m < nmine; m++) {
            taken = taken || mine[m].fd == old[k].fd;
        }
        if (!taken) {
            return old[k].fd;
        }
    }
    return -1;
}

/* The listener of <list> for address <a>, or NULL. */
static struct listener *
listen_set_find(struct listener *list, const struct config_addr *a)
{
    for (; list != NULL; list = list->next) {
        if (list->addr.len == a->len &&
            memcmp(&list->addr.ss, &a->ss, a->len) == 0) {
            return list;
        }
    }
    return NULL;
}

/* Is <fd> one of worker <w>'s sockets in <old>? */
static bool
listen_set_has(const struct listen_set *old, unsigned w, int fd)
{
    size_t k;

    for (k = 0; old != NULL && w < old->nworkers && k < old->nfds[w]; k++) {
        if (old->fds[w][k].fd == fd) {
            return true;
        }
    }
    return false;
}

/* Worker <w>'s list for <pools>; MQ_ERR only on no memory or <strict>. */
static int
listen_set_build_one(struct listen_set *out, const struct listen_set *old,
                     struct pool *const *pools, size_t npools,
                     struct admission *adm, unsigned w, int strict,
                     struct listener **list)
{
    const struct listen_set_fd *ofds = NULL;
    struct listen_set_fd *mine = out->fds[w];
    char err[MQ_ERR_LEN];
    struct listener *l, *shared;
    size_t i, j, nold = 0;
    int fd;

    if (old != NULL && w < old->nworkers) {
        ofds = old->fds[w];
        nold = old->nfds[w];
    }
    for (i = 0; i < npools; i++) {
        for (j = 0; j < pools[i]->cf->nlistens; j++) {
            const struct config_addr *a = &pools[i]->cf->listens[j];

            shared = listen_set_find(*list, a);
            if (shared != NULL) {
                /* Pools sharing an address (sni = ...): one socket, and
                 * the session picks the pool by the server name. */
                if (listener_add_route(shared, pools[i]) != MQ_OK) {
                    return MQ_ERR;
                }
                continue;
            }
            fd = listen_set_reuse(ofds, nold, mine, out->nfds[w], a);
            l = listener_create(a, pools[i], adm, fd, err);
            if (l == NULL) {
                log_error("pool %s: %s", pools[i]->cf->name, err);
                if (strict) {
                    return MQ_ERR;
                }
                continue;
            }
            l->next = *list;
            *list = l;
            mine[out->nfds[w]].addr = *a;
            mine[out->nfds[w]].fd = l->fd;
            out->nfds[w]++;
        }
    }
    return MQ_OK;
}

int
listen_set_build(struct listen_set *out, const struct listen_set *old,
                 struct pool *const *pools, size_t npools,
                 struct admission *adm, unsigned nworkers, int strict,
                 struct listener **lists)
{
    size_t i, total = 0;
    unsigned w;

    for (i = 0; i < npools; i++) {
        total += pools[i]->cf->nlistens;
    }
    memset(out, 0, sizeof(*out));
    out->nworkers = nworkers;
    out->fds = calloc(nworkers, sizeof(*out->fds));
    out->nfds = calloc(nworkers, sizeof(*out->nfds));
    if (out->fds == NULL || out->nfds == NULL) {
        listen_set_deinit(out);
        return MQ_ERR;
    }
    for (w = 0; w < nworkers; w++) {
        lists[w] = NULL;
    }
    for (w = 0; w < nworkers; w++) {
        out->fds[w] = calloc(total > 0 ? total : 1, sizeof(**out->fds));
        if (out->fds[w] == NULL ||
            listen_set_build_one(out, old, pools, npools, adm, w, strict,
                                 &lists[w]) != MQ_OK) {
            listen_set_discard(lists, nworkers, old);
            listen_set_deinit(out);
            return MQ_ERR;
        }
    }
    return MQ_OK;
}

void
listen_set_discard(struct listener **lists, unsigned nworkers,
                   const struct listen_set *old)
{
    struct listener *l, *next;
    unsigned w;

    for (w = 0; lists != NULL && w < nworkers; w++) {
        for (l = lists[w]; l != NULL; l = next) {
            next = l->next;
            listener_destroy(l, listen_set_has(old, w, l->fd));
        }
        lists[w] = NULL;
    }
}

int
listen_set_init(struct listen_set *s, unsigned nworkers, size_t cap)
{
    unsigned w;

    memset(s, 0, sizeof(*s));
    s->nworkers = nworkers;
    s->fds = calloc(nworkers, sizeof(*s->fds));
    s->nfds = calloc(nworkers, sizeof(*s->nfds));
    if (s->fds == NULL || s->nfds == NULL) {
        listen_set_deinit(s);
        return MQ_ERR;
    }
    for (w = 0; w < nworkers; w++) {
        s->fds[w] = calloc(cap > 0 ? cap : 1, sizeof(**s->fds));
        if (s->fds[w] == NULL) {
            listen_set_deinit(s);
            return MQ_ERR;
        }
    }
    return MQ_OK;
}

void
listen_set_add(struct listen_set *s, unsigned w, const struct config_addr *a,
               int fd)
{
    s->fds[w][s->nfds[w]].addr = *a;
    s->fds[w][s->nfds[w]].fd = fd;
    s->nfds[w]++;
}

size_t
listen_set_count(const struct listen_set *s, unsigned w)
{
    return w < s->nworkers ? s->nfds[w] : 0;
}

int
listen_set_get(const struct listen_set *s, unsigned w, size_t i,
               const struct config_addr **a)
{
    *a = &s->fds[w][i].addr;
    return s->fds[w][i].fd;
}

void
listen_set_deinit(struct listen_set *s)
{
    unsigned w;

    for (w = 0; s->fds != NULL && w < s->nworkers; w++) {
        free(s->fds[w]);
    }
    mq_free(s->fds);
    mq_free(s->nfds);
    s->nworkers = 0;
}
