/*
 * config.h: the parsed and validated INI file. Plain, immutable data once
 * config_load() returns it; every string is owned by the config.
 */
#ifndef MQLB_CONFIG_H
#define MQLB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "mqlb/acl.h"
#include "mqlb/tls.h"

#define CONFIG_NAME_LEN     64      /* pool and backend names */
#define CONFIG_CRED_MAX     255     /* check_user, check_password, vhost */
#define CONFIG_MAX_BACKENDS 256     /* per pool: fits the session's tried map */
#define CONFIG_MAX_CONNECTIONS_AUTO 100000 /* max_connections = auto, at
                                              most (if descriptors allow) */
#define CONFIG_CHECK_TIMEOUT_MS 1000 /* check_timeout unless check_interval
                                        is shorter or the file says */

enum config_balance {
    BALANCE_ROUNDROBIN = 0,
    BALANCE_LEASTCONN,
    BALANCE_SOURCE,
    BALANCE_RANDOM,
    BALANCE_MQTT_CLIENT_ID,
};

enum config_check {
    CHECK_TCP = 0,
    CHECK_REDIS,
    CHECK_REDIS_MASTER,
    CHECK_AMQP,
    CHECK_MQTT,
    CHECK_NATS,
    CHECK_KAFKA,
    CHECK_HTTP,
    CHECK_SEND_EXPECT,
    CHECK_NONE,
};

enum config_proxy_protocol {
    PROXY_PROTOCOL_OFF = 0,
    PROXY_PROTOCOL_V1,
    PROXY_PROTOCOL_V2,
};

/* replay = off | on: may a client's first bytes go to a second broker? */
enum config_replay {
    REPLAY_OFF = 0,     /* never: a byte reaches at most one broker */
    REPLAY_ON,          /* before the broker's first byte, if it fails */
};

/* defer_accept = off | on | auto: TCP_DEFER_ACCEPT on the pool's listeners */
enum config_defer {
    DEFER_OFF = 0,      /* accept at the handshake (default) */
    DEFER_ON,           /* accept when the client's first bytes arrive */
    DEFER_AUTO,         /* on where the protocol lets the client speak first */
};

/* check_proxy_protocol: does a check send a PROXY header first? */
enum config_check_pp {
    CHECK_PP_AUTO = 0,          /* when the pool's proxy_protocol is on */
    CHECK_PP_ON,
    CHECK_PP_OFF,
    CHECK_PP_ADDRESSES,         /* the check connection's own addresses
                                   (PROXY command), not LOCAL/UNKNOWN */
};

/* idle_timeout = auto: each session's timeout comes from its protocol. */
#define CONFIG_IDLE_AUTO    UINT64_MAX

enum config_rebalance {
    REBALANCE_OFF = 0,
    REBALANCE_PACED,
};

enum config_log_format {
    LOG_FORMAT_TEXT = 0,
    LOG_FORMAT_JSON,
};

#define CONFIG_ADDR_TEXT_LEN    80      /* "host.name:port" as written */
#define CONFIG_WEIGHT_MAX       256     /* a backend's largest weight */

/* A socket address with its text form as written in the file. */
struct config_addr {
    struct sockaddr_storage ss;         /* resolved address */
    socklen_t               len;        /* length of <ss> */
    char                    text[CONFIG_ADDR_TEXT_LEN];
                                        /* "127.0.0.1:6379", "[::1]:5672" */
    int                     line;       /* line it was declared on */
    unsigned                tls:1;      /* listen = ADDR tls: terminate */
};

/* Do <a> and <b> name the same socket address? */
static inline bool
config_addr_equal(const struct config_addr *a, const struct config_addr *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

struct config_backend {
    char                name[CONFIG_NAME_LEN]; /* unique within the pool */
    struct config_addr  addr;           /* where the broker listens */
    char                host[256];      /* host as written, no port */
    unsigned            port;           /* port as written */
    unsigned            is_name:1;      /* host is a DNS name: re-resolved */
    unsigned            weight;         /* 0..256; 0 takes no new sessions */
    unsigned            max_conns;      /* 0 = unlimited */
    unsigned            max_connect_rate;   /* new sessions a second, 0 =
                                           unlimited; the pool's unless set */
    unsigned            connect_rate_set:1; /* max_connect_rate= on the line */
    unsigned            backup:1;       /* used only while no primary is up */
    int                 line;           /* line of the backend = entry */
};

enum config_discover_kind {
    DISCOVER_DNS = 0,                   /* discover = dns NAME:PORT */
    DISCOVER_DNS_SRV,                   /* discover = dns-srv _svc._proto.NAME */
};

/* One discover = line: backends made from DNS answers. */
struct config_discover {
    enum config_discover_kind kind;
    char                name[256];      /* the DNS name asked */
    unsigned            port;           /* DISCOVER_DNS only */
    int                 line;
};

struct config_keepalive {
    unsigned            on:1;           /* tcp_keepalive not off */
    unsigned            idle_s;         /* TCP_KEEPIDLE */
    unsigned            interval_s;     /* TCP_KEEPINTVL, 0 = kernel default */
    unsigned            count;          /* TCP_KEEPCNT, 0 = kernel default */
};

struct config_pool {
    char                name[CONFIG_NAME_LEN];
    int                 line;           /* line of the [pool NAME] header */
    struct config_addr *listens;        /* owned array */
    size_t              nlistens;
    enum config_balance balance;
    enum config_check   check;
    uint64_t            check_interval_ms;
    uint64_t            check_timeout_ms;
    unsigned            rise;
    unsigned            fall;
    char               *check_send;     /* unescaped bytes, owned */
    size_t              check_send_len;
    char               *check_expect;   /* unescaped bytes, owned */
    size_t              check_expect_len;
    char               *check_path;     /* owned, starts with '/' */
    enum config_check_pp check_proxy_protocol;
    int                 check_reset;    /* 0 off (default) | 1 on: a tcp
                                           check resets, the broker never
                                           sees it (net_probe_connect) */
    char               *check_user;     /* owned, NULL = none */
    char               *check_password; /* owned, NULL = none; a secret */
    char               *check_vhost;    /* owned, amqp; NULL = "/" */
    uint64_t            connect_timeout_ms;
    uint64_t            idle_timeout_ms;    /* 0 = never; CONFIG_IDLE_AUTO:
                                               from each client's keepalive */
    struct config_keepalive keepalive;
    unsigned            retries;
    unsigned            max_fails;      /* 0 = passive ejection off */
    uint64_t            slow_start_ms;
    unsigned            close_on_down:1;    /* on_backend_down = close */
    unsigned            max_conns_per_backend;
    unsigned            max_conns_per_source;
    enum config_proxy_protocol proxy_protocol;
    enum config_replay  replay;         /* off (default) | on */
    enum config_defer   defer_accept;   /* off (default) | on | auto */
    struct acl_cidr    *allow;          /* owned; NULL = everyone */
    size_t              nallow;
    struct config_backend *backends;    /* owned array */
    size_t              nbackends;
    enum config_rebalance rebalance;
    unsigned            rebalance_rate;     /* closes a second, >= 1 */
    unsigned            rebalance_tolerance_pct;
    uint64_t            rebalance_min_age_ms;
    uint64_t            max_session_duration_ms;    /* 0 = off */
    unsigned            max_queue;          /* 0 = no queue */
    uint64_t            queue_timeout_ms;
    unsigned            max_connect_rate;   /* backends' default, 0 = off */
    struct config_discover *discovers;  /* owned array */
    size_t              ndiscovers;
    struct tls_server_conf tls;         /* tls_* keys; strings owned */
    struct tls_server  *tls_server;     /* built from <tls> when a listen
                                           has 'tls'; owned */
    struct tls_client_conf backend_tls; /* backend_tls* keys */
    struct tls_client  *tls_client;     /* built when backend_tls = on */
    uint64_t            tls_handshake_timeout_ms;  /* also bounds the
                                           wait for a ClientHello (sni) */
    char              **sni;            /* sni = patterns, owned; NULL */
    size_t              nsni;
};

struct config {
    char               *path;           /* file it was read from, owned */
    unsigned            workers;        /* resolved: 0 becomes the CPU count */
    unsigned            max_connections; /* 0 = auto: sized from the
                                            descriptor limit at start */
    int                 log_level;      /* LOG_ERROR..LOG_DEBUG */
    enum config_log_format log_format;
    uint64_t            shutdown_timeout_ms;
    char               *user;           /* owned, NULL = keep the user */
    char               *resolvers;      /* owned; NULL = /etc/resolv.conf */
    uint64_t            resolve_interval_ms;
    unsigned            resolvers_bad:1;    /* while loading: unusable */
    char               *control_socket; /* owned, NULL = none (takeover,
                                           mqlb -s) */
    char               *state_file;     /* owned, NULL = runtime state
                                           is not kept across restarts */
    struct config_addr  admin_listen;
    char               *admin_token;    /* owned, NULL = no token */
    char               *admin_allowed_hosts;  /* owned, NULL = none: host
                                           names the admin port answers to
                                           besides its listen address */
    struct config_pool *pools;          /* owned array */
    size_t              npools;
};

/* Errors collected while loading, each "FILE:LINE: message". */
struct config_errors {
    char              **msgs;           /* owned array of owned strings */
    size_t              nmsgs;
};

/*
 * Read and validate <path>. Returns a config the caller owns (free it with
 * config_destroy), or NULL with every problem appended to <errs>.
 */
struct config *config_load(const char *path, struct config_errors *errs);

/* As config_load, from <text>; <name> stands for the file in messages. */
struct config *config_load_string(const char *text, const char *name,
                                  struct config_errors *errs);

/*
 * As config_load, from the <len> bytes of <text> (NUL-terminated) read
 * from <path> by someone else (the privileged helper at a reload).
 */
struct config *config_load_text(const char *text, size_t len,
                                const char *path,
                                struct config_errors *errs);

void config_destroy(struct config *cf);
void config_errors_deinit(struct config_errors *errs);

/*
 * Append to <out> a "FILE:LINE: warning: ..." for what <cf> allows but an
 * operator rarely wants (today: a pool reachable beyond the loopback
 * where one client address may take every session).
 */
void config_warnings(const struct config *cf, struct config_errors *out);

/* Print the effective configuration, as `mqlb -t` shows it. */
void config_dump(const struct config *cf, FILE *out);

/* Typed value parsers, exposed for the unit tests and the admin port. */
int config_parse_duration_ms(const char *text, uint64_t *ms);
int config_parse_size(const char *text, uint64_t *bytes);
int config_parse_uint(const char *text, unsigned min, unsigned max,
                      unsigned *out);
int config_parse_addr(const char *text, struct config_addr *out);
/*
 * Split "host:port" or "[v6]:port" into <host> (<hostlen> bytes) and
 * <*port> (1..65535), without resolving. MQ_ERR when it is not that form.
 */
int config_split_hostport(const char *text, char *host, size_t hostlen,
                          unsigned *port);
/* True when <host> is an IPv4 or IPv6 literal (not a name). */
bool config_host_is_ip(const char *host);
/* As config_parse_addr; on error <err> says why in the user's terms. */
int config_parse_addr_err(const char *text, struct config_addr *out,
                          char *err, size_t errlen);
/* C escapes \r \n \t \\ \xHH into newly allocated bytes at <*out>. */
int config_unescape(const char *text, char **out, size_t *len);

/*
 * A character of a pool or backend name: [A-Za-z0-9_.-]. ASCII on
 * purpose: names appear in URLs and metric labels. (Inline, so that the
 * admin routing needs nothing else of config.c.)
 */
static inline bool
config_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

/*
 * What a reload changes, from the key table. config_pool_changes() puts
 * the comma list of what differs between two pools of the same name
 * ("listen", "balance", "checks", "sessions"; backends aside) in <what>,
 * config_global_changes() the [global] and [admin] keys that differ; both
 * return true if anything does.
 */
bool config_pool_changes(const struct config_pool *a,
                         const struct config_pool *b, char *what,
                         size_t size);
bool config_global_changes(const struct config *a, const struct config *b,
                           char *what, size_t size);

/* What differs between two backends of the same name: a set of bits. */
enum config_backend_change {
    CONFIG_BACKEND_ADDRESS   = 1 << 0,
    CONFIG_BACKEND_WEIGHT    = 1 << 1,
    CONFIG_BACKEND_BACKUP    = 1 << 2,
    CONFIG_BACKEND_MAX_CONNS = 1 << 3,
    CONFIG_BACKEND_CONNECT_RATE = 1 << 4,
};
unsigned config_backend_changes(const struct config_backend *a,
                                const struct config_backend *b);
const char *config_backend_change_name(unsigned bit);

const char *config_balance_name(enum config_balance b);
const char *config_check_name(enum config_check c);

/*
 * The PROXY protocol version (0 = none, 1, 2) the checks of <p> send
 * first: the pool's own version unless check_proxy_protocol = off.
 */
int config_check_pp_version(const struct config_pool *p);

/*
 * Should the listeners of <p> accept a client only once its first bytes
 * arrive (TCP_DEFER_ACCEPT)? defer_accept = auto says yes for the
 * protocols whose client speaks first, known from the health check:
 * redis, redis-master, mqtt, amqp and kafka; not nats (the server speaks
 * first) and not where the protocol is unknown.
 */
bool config_pool_defer_accept(const struct config_pool *p);

#endif /* MQLB_CONFIG_H */
