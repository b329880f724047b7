/*
 * admin.h: the HTTP admin port (libmicrohttpd, its own thread). It knows
 * nothing of workers: it reads snapshots and calls actions through ops.
 */
#ifndef MQLB_ADMIN_H
#define MQLB_ADMIN_H

#include "mqlb/config.h"
#include "mqlb/stats.h"

enum admin_action {
    ADMIN_ACTION_DRAIN = 0,
    ADMIN_ACTION_DISABLE,
    ADMIN_ACTION_ENABLE,
    ADMIN_ACTION_WEIGHT,
};

/* Result of an action: MQ_OK, or one of these. */
#define ADMIN_NO_POOL       -10
#define ADMIN_NO_BACKEND    -11
#define ADMIN_BAD_VALUE     -12

struct admin_ops {
    void   *ctx;
    /* A new snapshot the admin port frees with stats_snapshot_free. */
    struct stats_snapshot *(*snapshot)(void *ctx);
    int   (*action)(void *ctx, const char *pool, const char *backend,
                    enum admin_action action, unsigned value);
};

struct admin;

/*
 * Start serving on <listen> with <token> (NULL = none). <ops> is copied.
 * Returns NULL with a message in <err> (MQ_ERR_LEN) on failure.
 */
struct admin *admin_start(const struct config_addr *listen, const char *token,
                          const struct admin_ops *ops, char *err);
void admin_stop(struct admin *a);

#endif /* MQLB_ADMIN_H */
