/*
 * admin.h: the HTTP admin port (libmicrohttpd, its own thread). It knows
 * nothing of workers: it reads snapshots and calls actions through ops.
 */
#ifndef MQLB_ADMIN_H
#define MQLB_ADMIN_H

#include <stdbool.h>

#include "mqlb/admin_api.h"
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
    /* <who>: the admin client's address, for the reason and the log. */
    int   (*action)(void *ctx, const char *pool, const char *backend,
                    enum admin_action action, unsigned value,
                    const char *who);
    /*
     * `mqlb -s`: carry out <what> (ADMIN_CONTROL_*) and answer with a
     * JSON body the admin port frees, and its HTTP status in <*status>.
     * NULL on no memory.
     */
    char *(*control)(void *ctx, int what, unsigned *status);
    /* The dashboard's chart samples as JSON (history.h), freed by the
     * admin port; NULL on no memory. */
    char *(*history)(void *ctx);
    /* The runtime API (admin_api.h); NULL: answered 404. */
    void  (*api)(void *ctx, const struct admin_api_req *req,
                 struct admin_api_reply *out);
};

/* What POST /control/{reload,stop} asks. */
#define ADMIN_CONTROL_RELOAD    1
#define ADMIN_CONTROL_STOP      2

struct admin;

#define ADMIN_WEIGHT_MAX    CONFIG_WEIGHT_MAX /* largest ?value= weight */

/* The endpoints a request can be routed to. */
enum admin_endpoint {
    ADMIN_EP_HEALTH = 0,        /* GET /health */
    ADMIN_EP_STATUS,            /* GET /status */
    ADMIN_EP_METRICS,           /* GET /metrics */
    ADMIN_EP_DASHBOARD,         /* GET / */
    ADMIN_EP_HISTORY,           /* GET /history */
    ADMIN_EP_ACTION,            /* POST /pools/P/backends/B/{verb} */
    ADMIN_EP_CONTROL,           /* POST /control/{reload,stop} */
    ADMIN_EP_API,               /* the runtime API: admin_api.h */
};

/* A routed request, filled by admin_route(). */
struct admin_req {
    enum admin_endpoint endpoint;       /* valid when routed (200) */
    enum admin_action   action;         /* ADMIN_EP_ACTION only */
    char                pool[CONFIG_NAME_LEN];      /* ADMIN_EP_ACTION */
    char                backend[CONFIG_NAME_LEN];   /* ADMIN_EP_ACTION */
    unsigned            value;          /* ADMIN_ACTION_WEIGHT: 0..256;
                                           ADMIN_EP_CONTROL: what */
    const char         *allow;          /* on 405: the Allow header value */
    const char         *error;          /* on 4xx: short static message */
    struct admin_api_req api;           /* ADMIN_EP_API: its arguments
                                           still to be taken (body, query) */
};

/*
 * Route <method> on <path> (no query string; MHD has already decoded it)
 * with <value>, the "value" query argument or NULL. Returns 200 with
 * <out> filled, or the HTTP error status: 404 (no such path), 405 (wrong
 * method, <out->allow> set) or 400 (bad weight value). Pool and backend
 * names are [A-Za-z0-9_.-]+ and shorter than CONFIG_NAME_LEN.
 */
int admin_route(const char *method, const char *path, const char *value,
                struct admin_req *out);

/*
 * True when <header>, an Authorization header value or NULL, carries
 * "Bearer <token>". Always true when <token> is NULL or empty. The
 * comparison takes the same time wherever the first difference lies.
 */
bool admin_token_ok(const char *header, const char *token);

/* Constant-time string equality, for a token given as ?token=. */
bool admin_token_equal(const char *given, const char *token);

/* The TCP port <a> listens on (useful when listen asked for port 0). */
unsigned admin_port(const struct admin *a);

/*
 * Start serving on <listen> with <token> (NULL = none) and the allowed
 * host names <hosts> (see admin_set_hosts), both in force from the first
 * request. <ops> is copied. Returns NULL with a message in <err>
 * (MQ_ERR_LEN) on failure.
 */
struct admin *admin_start(const struct config_addr *listen, const char *token,
                          const char *hosts, const struct admin_ops *ops,
                          char *err);
/*
 * Replace the token of a running server (reload): requests from now on
 * need <token> (NULL or "" = none). MQ_ERR on no memory, token kept.
 */
int admin_set_token(struct admin *a, const char *token);

/*
 * The host names, besides its listen address (and "localhost" on a
 * loopback listen), that requests may give as Host: [admin]
 * allowed_hosts, blank- or comma-separated; NULL for none. Copied.
 * MQ_ERR on no memory (the old list stays).
 */
int admin_set_hosts(struct admin *a, const char *names);
void admin_stop(struct admin *a);

#endif /* MQLB_ADMIN_H */
