/*
 * persist.h: the runtime state operators set through the admin port
 * (drain, disable, runtime weights), kept in [global] state_file across
 * full restarts: saved on every change, restored at start. The file's
 * format and its atomic replacement are state_file.h's; this module maps
 * it onto a generation's backends.
 */
#ifndef MQLB_PERSIST_H
#define MQLB_PERSIST_H

struct core;
struct gen;

/*
 * Write the runtime state of <g>'s backends to <path> (nothing to do if
 * <path> is NULL): drain/disable, runtime weights, and the backends the
 * admin API added. Logs and returns MQ_ERR if it could not be written;
 * the running state is unaffected. Callers hold the core's gen_lock or
 * run on the main loop.
 */
int persist_save(struct gen *g, const char *path);

/*
 * Main loop, at start (after members_use): add the backends <path> says
 * the API added, and apply the rest to <c>'s backends. Lines naming a
 * pool or backend the config does not have are skipped with a warning;
 * a weight is skipped when the file's weight for that backend changed
 * since it was saved. A missing file is no state.
 */
void persist_restore(struct core *c, const char *path);

#endif /* MQLB_PERSIST_H */
