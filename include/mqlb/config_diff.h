/*
 * config_diff.h: what a reload changes. Pools are matched by name and
 * backends by pool and name; the core logs the result and keeps the
 * running state (health, counters, admin state) of what is kept.
 */
#ifndef MQLB_CONFIG_DIFF_H
#define MQLB_CONFIG_DIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "mqlb/config.h"

enum config_diff_kind {
    DIFF_KEPT = 0,      /* the same in both files */
    DIFF_ADDED,
    DIFF_REMOVED,
    DIFF_CHANGED,       /* same name, other settings */
};

struct config_diff_entry {
    enum config_diff_kind kind;
    char                pool[CONFIG_NAME_LEN];
    char                backend[CONFIG_NAME_LEN];  /* "" for the pool */
    char                what[96];       /* which settings changed */
    unsigned            changes;        /* backend: CONFIG_BACKEND_* bits */
};

/*
 * A backend whose address or backup flag changed is a new backend to the
 * running state (fresh health, counters and admin state); other changes
 * (weight, max_conns) apply to the running one.
 */
#define CONFIG_DIFF_NEW_BACKEND (CONFIG_BACKEND_ADDRESS | CONFIG_BACKEND_BACKUP)

struct config_diff {
    struct config_diff_entry *entries;  /* owned */
    size_t              nentries;
    size_t              counts[4];      /* by kind */
    char                global[96];     /* [global]/[admin] keys changed */
};

/* Compare <old> and <new>; MQ_ERR on no memory. Free with _deinit. */
int config_diff(const struct config *old, const struct config *new,
                struct config_diff *d);
void config_diff_deinit(struct config_diff *d);

/* The entry for <backend> ("" for the pool itself) of <pool>, or NULL. */
const struct config_diff_entry *config_diff_find(const struct config_diff *d,
                                                 const char *pool,
                                                 const char *backend);

/* Whether the running backend <pool>/<backend> carries over (its entry is
 * kept, or changed in what applies to a running backend). */
bool config_diff_keeps_backend(const struct config_diff *d, const char *pool,
                               const char *backend);
const char *config_diff_kind_name(enum config_diff_kind k);

#endif /* MQLB_CONFIG_DIFF_H */
