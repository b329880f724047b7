/*
 * state_file.h: the runtime state operators set ([global] state_file):
 * drain, disable, runtime weights and backends added at runtime, one
 * line each, so that a restart keeps them. Written whole on every change
 * (write a temporary file, fsync, rename: a crash leaves the old or the
 * new file, never half of one). Text, so an operator can read it:
 *
 *   # mqlb runtime state ...
 *   backend mqtt m1 admin=drain weight=3 file_weight=1
 *   add mqtt m9 10.0.0.9:1883 weight=1 max_conns=0 backup=0
 *
 * This module only reads and writes lines; matching them against the
 * config (and warning about stale ones) is the caller's.
 */
#ifndef MQLB_STATE_FILE_H
#define MQLB_STATE_FILE_H

#include <stdbool.h>
#include <stddef.h>

#define STATE_NAME_LEN  64      /* = CONFIG_NAME_LEN */
#define STATE_ADDR_LEN  80

enum state_admin {
    STATE_ADMIN_READY = 0,
    STATE_ADMIN_DRAIN,
    STATE_ADMIN_DISABLE,
};

struct state_entry {
    char                pool[STATE_NAME_LEN];
    char                backend[STATE_NAME_LEN];
    enum state_admin    admin;
    bool                has_weight;     /* weight= was set at runtime */
    unsigned            weight;         /* the runtime weight */
    unsigned            file_weight;    /* the config's weight then */
    bool                added;          /* an "add" line */
    char                addr[STATE_ADDR_LEN];  /* added: HOST:PORT */
    unsigned            max_conns;      /* added */
    bool                backup;         /* added */
    int                 line;           /* where it was read */
};

/* Receives "NAME:LINE: what, ignored" for each line that does not parse. */
typedef void (*state_warn_fn)(void *ctx, const char *msg);

/*
 * Parse <text> (<name> names it in warnings). Lines that do not parse
 * are skipped with a warning. *<out> is malloc'd (the caller frees it);
 * MQ_ERR only on no memory.
 */
int state_file_parse(const char *text, const char *name,
                     struct state_entry **out, size_t *n,
                     state_warn_fn warn, void *ctx);

/* Read <path>: no such file is no state (MQ_OK, *n = 0). */
int state_file_read(const char *path, struct state_entry **out, size_t *n,
                    state_warn_fn warn, void *ctx, char *err);

/* The lines for <e> into <buf>; the bytes needed (snprintf-like). */
size_t state_file_format(const struct state_entry *e, size_t n, char *buf,
                         size_t size);

/* Replace <path> with the lines for <e>, atomically. MQ_ERR with <err>. */
int state_file_write(const char *path, const struct state_entry *e,
                     size_t n, char *err);

#endif /* MQLB_STATE_FILE_H */
