/*
 * config_diff.h: what a reload changes. Pools are matched by name and
 * backends by pool and name; the core logs the result and keeps the
 * running state (health, counters, admin state) of what is kept.
 */
#ifndef MQLB_CONFIG_DIFF_H
#define MQLB_CONFIG_DIFF_H

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
};

struct config_diff {
    struct config_diff_entry *entries;  /* owned */
    size_t              nentries;
    size_t              counts[4];      /* by kind */
};

/* Compare <old> and <new>; MQ_ERR on no memory. Free with _deinit. */
int config_diff(const struct config *old, const struct config *new,
                struct config_diff *d);
void config_diff_deinit(struct config_diff *d);
const char *config_diff_kind_name(enum config_diff_kind k);

#endif /* MQLB_CONFIG_DIFF_H */
