/*
 * mgmt.h: what the admin port reads and changes in the running
 * process: the status snapshot of the generation in force, the backend
 * actions (drain, disable, enable, weight), and reload/stop/status for
 * `mqlb -s`, whether it comes by the admin port or the control socket.
 */
#ifndef MQLB_MGMT_H
#define MQLB_MGMT_H

#include <stdbool.h>

struct admin_api_reply;
struct admin_api_req;
struct admin_ops;
struct backend;
struct core;
struct pool;
struct stats_backend;
struct stats_pool;

/* Fill <ops> with the snapshot and action callbacks over <c>. */
void mgmt_ops(struct core *c, struct admin_ops *ops);

/* The snapshot of backend <b> / pool <p> (gen_lock held). */
void mgmt_backend(struct stats_backend *sb, struct backend *b);
int mgmt_pool(struct core *c, struct stats_pool *sp, struct pool *p);

/* The commands of `mqlb -s`. */
enum mgmt_cmd {
    MGMT_CMD_RELOAD = 1,        /* POST /control/reload */
    MGMT_CMD_STOP,              /* POST /control/stop */
    MGMT_CMD_STATUS,            /* GET /status */
};

/*
 * Carry out <cmd> and answer as the admin port does: the JSON body
 * (freed by the caller) and its HTTP status in <*status> (a reload: 200
 * with the summary, or 422 with the FILE:LINE errors; a stop: 202).
 * NULL on no memory. <on_loop>: the caller runs on the main loop (the
 * control socket) and the core acts at once; otherwise (the admin
 * thread) the main loop is asked and waited for.
 */
char *mgmt_command(struct core *c, enum mgmt_cmd cmd, bool on_loop,
                   unsigned *status);

/* The runtime API (mgmt_api.c): <req> answered in <out>. */
void mgmt_api(void *ctx, const struct admin_api_req *req,
              struct admin_api_reply *out);

#endif /* MQLB_MGMT_H */
