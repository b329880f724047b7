/*
 * gen.h: config generations. A generation owns a config and the pools
 * built from it; the core holds the one in force, each pool holds its
 * generation, so a reload's old generation is freed when its last
 * session ends. A backend the reload's diff keeps (same pool and name;
 * address and role unchanged) is reused, so its health, counters and
 * admin state survive.
 */
#ifndef MQLB_GEN_H
#define MQLB_GEN_H

#include <stdatomic.h>
#include <stddef.h>

#include "mqlb/pool.h"

struct config;
struct config_diff;
struct gen_keep;

struct gen {
    _Atomic unsigned    refcnt;         /* core + one per live pool */
    struct config      *cf;             /* owned */
    struct pool       **pools;          /* the generation's references */
    size_t              npools;
};

/*
 * Build the pools of <cf>, reusing the backends of <old> (may be NULL)
 * that <d>, the diff from <old>'s config to <cf>, keeps (config_diff:
 * one verdict for the log and the reuse; NULL with no <old>).
 * Counters kept per pool name across generations live in <*keep> (grown
 * as needed; free with gen_keep_free). Each pool reports a backend going
 * down to <on_down>(<ctx>, pool). Takes <cf> on success; NULL on no
 * memory (the caller still owns <cf>).
 */
struct gen *gen_create(struct config *cf, struct gen *old,
                       const struct config_diff *d, struct gen_keep **keep,
                       pool_down_fn on_down, void *ctx);

/* Give up the generation's own pool references and the core's one. */
void gen_retire(struct gen *g);

/* A pool of <g> by name, or NULL. */
struct pool *gen_find_pool(struct gen *g, const char *name);

/* Free the per-name counters; no pool may use them any more. */
void gen_keep_free(struct gen_keep *keep);

#endif /* MQLB_GEN_H */
