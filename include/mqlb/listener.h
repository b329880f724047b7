/*
 * listener.h: one listening socket of one worker, for one pool address.
 * Admission happens here, before any session memory is taken (redis'
 * acceptCommonHandler): the process-wide limit and the allow list.
 */
#ifndef MQLB_LISTENER_H
#define MQLB_LISTENER_H

#include <ev.h>

#include "mqlb/config.h"

struct pool;
struct worker;

struct listener {
    ev_io               io;             /* accept watcher; first member */
    struct listener    *next;           /* worker's list */
    struct worker      *worker;         /* set when adopted */
    struct pool        *pool;           /* one reference */
    struct config_addr  addr;           /* copy of the listen address */
    int                 fd;
};

/*
 * A listener for <addr> serving <pool> (takes a pool reference). With
 * <fd> >= 0 that socket is reused (reload), else a new one is bound.
 * NULL with <err> on failure.
 */
struct listener *listener_create(const struct config_addr *addr,
                                 struct pool *pool, int fd, char *err);
void listener_start(struct listener *l, struct worker *w);
void listener_stop(struct listener *l);
/* Stop, close the fd unless <keep_fd>, drop the pool, free. */
void listener_destroy(struct listener *l, int keep_fd);

#endif /* MQLB_LISTENER_H */
