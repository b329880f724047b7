/*
 * mgmt.h: what the admin port reads and changes in the running
 * process: the status snapshot of the generation in force, and the
 * backend actions (drain, disable, enable, weight).
 */
#ifndef MQLB_MGMT_H
#define MQLB_MGMT_H

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

/* The runtime API (mgmt_api.c): <req> answered in <out>. */
void mgmt_api(void *ctx, const struct admin_api_req *req,
              struct admin_api_reply *out);

#endif /* MQLB_MGMT_H */
