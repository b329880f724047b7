/*
 * mgmt.h: what the admin port reads and changes in the running
 * process: the status snapshot of the generation in force, and the
 * backend actions (drain, disable, enable, weight).
 */
#ifndef MQLB_MGMT_H
#define MQLB_MGMT_H

struct admin_ops;
struct core;

/* Fill <ops> with the snapshot and action callbacks over <c>. */
void mgmt_ops(struct core *c, struct admin_ops *ops);

#endif /* MQLB_MGMT_H */
