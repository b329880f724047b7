/*
 * health.h: active health checks. One timer per backend on the main
 * loop; each check is a fresh non-blocking connection driven through the
 * pool's probe (probe.h) and turned into backend_check_done() verdicts.
 */
#ifndef MQLB_HEALTH_H
#define MQLB_HEALTH_H

#include <ev.h>
#include <stddef.h>

struct backend;
struct pool;
struct health;

/* A checker on <loop>. A backend it takes down is reported through
 * pool_report_down(). NULL on no memory. */
struct health *health_create(struct ev_loop *loop);
/*
 * Check the backends of these <npools> pools from now on, replacing the
 * earlier set (checks in flight are cancelled). Takes pool references.
 * All or nothing: on MQ_ERR (no memory) the earlier set runs on.
 */
int health_set_pools(struct health *h, struct pool *const *pools,
                     size_t npools);
/*
 * Start checking <b> of <p>, a backend added at runtime (first check
 * within 200 ms). Takes references. MQ_ERR on no memory.
 */
int health_add_backend(struct health *h, struct pool *p, struct backend *b);
/* Stop checking <b> (it left its pool); in-flight checks are cancelled. */
void health_remove_backend(struct health *h, struct backend *b);
void health_destroy(struct health *h);

#endif /* MQLB_HEALTH_H */
