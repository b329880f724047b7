/*
 * admin_api.h: the runtime API of the admin port (backends added, removed
 * and re-addressed at runtime, sessions listed and closed): its routes,
 * its query arguments and its JSON bodies (jansson). Pure: the admin
 * server calls these on a request and hands the result to ops->api.
 */
#ifndef MQLB_ADMIN_API_H
#define MQLB_ADMIN_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqlb/config.h"

#define ADMIN_API_ADDR_LEN      300     /* HOST:PORT as given */
#define ADMIN_API_BODY_MAX      4096    /* largest body accepted */
#define ADMIN_API_LIMIT_DEFAULT 1000    /* /sessions without ?limit= */
#define ADMIN_API_LIMIT_MAX     100000

enum admin_api_op {
    ADMIN_API_GET_POOL = 0,         /* GET /pools/P */
    ADMIN_API_GET_BACKEND,          /* GET /pools/P/backends/N */
    ADMIN_API_ADD_BACKEND,          /* POST /pools/P/backends + body */
    ADMIN_API_DEL_BACKEND,          /* DELETE /pools/P/backends/N */
    ADMIN_API_ADDRESS,              /* POST .../N/address?value=HOST:PORT */
    ADMIN_API_SHUTDOWN_SESSIONS,    /* POST .../N/shutdown-sessions */
    ADMIN_API_SESSIONS,             /* GET /sessions?pool=&backend=&limit= */
    ADMIN_API_SESSION_CLOSE,        /* POST /sessions/ID/close */
};

/* A backend asked for by POST /pools/P/backends. */
struct admin_backend_spec {
    char            name[CONFIG_NAME_LEN];
    char            address[ADMIN_API_ADDR_LEN];    /* HOST:PORT */
    unsigned        weight;         /* 0..256, default 1 */
    unsigned        max_conns;      /* 0 = the pool's default */
    bool            backup;
};

/* A routed runtime API request. */
struct admin_api_req {
    enum admin_api_op op;
    char            pool[CONFIG_NAME_LEN];      /* "" = any (/sessions) */
    char            backend[CONFIG_NAME_LEN];   /* "" = any (/sessions) */
    uint64_t        session_id;     /* SESSION_CLOSE */
    unsigned        limit;          /* SESSIONS */
    char            address[ADMIN_API_ADDR_LEN];    /* ADDRESS */
    struct admin_backend_spec spec; /* ADD_BACKEND */
    char            who[64];        /* the admin client, for log lines */
};

/* What the core answers: a status and an owned JSON body or an error. */
struct admin_api_reply {
    unsigned        status;         /* 200, 201, 400, 404, 409, 500 */
    char           *body;           /* owned JSON text when 2xx */
    char            error[200];     /* the reason when not 2xx */
};

/*
 * Route <method> <path> when it is a runtime API path: returns 0 when it
 * is not (the caller goes on routing), else 200 with <out> filled (the
 * body, ?value= and the /sessions arguments still to be taken), or 404,
 * or 405 with <*allow> set. <*error> is set on every non-200.
 */
int admin_api_route(const char *method, const char *path,
                    struct admin_api_req *out, const char **allow,
                    const char **error);

/*
 * The arguments of GET /sessions: <pool>, <backend> and <limit> are the
 * query values or NULL. MQ_ERR with a reason in <err> (<errlen>).
 */
int admin_api_sessions_args(const char *pool, const char *backend,
                            const char *limit, struct admin_api_req *out,
                            char *err, size_t errlen);

/*
 * ?value= of .../address: HOST:PORT, [IPV6]:PORT. MQ_ERR with a reason.
 * Only the form is checked: the core resolves the host.
 */
int admin_api_address_arg(const char *value, struct admin_api_req *out,
                          char *err, size_t errlen);

/*
 * The JSON body of POST /pools/P/backends (<len> bytes, not
 * NUL-terminated): {"name", "address", "weight", "backup", "max_conns"}.
 * name and address are required; unknown fields are errors. MQ_ERR with
 * the reason in <err> (<errlen>).
 */
int admin_api_parse_backend(const char *body, size_t len,
                            struct admin_backend_spec *out, char *err,
                            size_t errlen);

/* HOST:PORT or [IPV6]:PORT in form: host characters and a 1..65535 port. */
bool admin_api_address_ok(const char *text);

#endif /* MQLB_ADMIN_API_H */
