/*
 * handover.h: the messages spoken on the control socket: those a running
 * mqlb and its successor exchange during a takeover (--takeover), and
 * the commands of `mqlb -s` (reload, stop, status). Pure encoding and
 * decoding over byte buffers: no sockets, no descriptors (those travel
 * beside a frame as SCM_RIGHTS, see fdpass.h), no knowledge of sessions.
 *
 * A frame is a 12-byte header and a payload:
 *
 *   0      4        6       8          12
 *   | MQHO | version | type | length    | payload (length bytes) ...
 *
 * all integers big-endian. The version says how the payload is laid out;
 * a peer that does not speak it answers HANDOVER_ERROR and hangs up.
 * Within one version new fields are only ever appended, and a decoder
 * ignores bytes after the fields it knows.
 *
 * The conversation (N = the new process, O = the old one):
 *
 *   N -> O  HELLO
 *   O -> N  BEGIN, LISTENER*, SESSION*, POOL*, BACKEND*, END
 *   N -> O  ACK (the ids of sessions N declines: O keeps them)
 *   O -> N  DONE (the commit: O closes its copies and leaves)
 *
 * Either side may send ERROR instead of its next frame; until DONE, any
 * error or hang-up leaves O serving everything.
 *
 * `mqlb -s` (C = the command line) asks instead, and the first frame of a
 * connection tells the two apart:
 *
 *   C -> O  COMMAND (reload, stop or status)
 *   O -> C  REPLY (the admin port's HTTP status and JSON body for the
 *           same request), or ERROR (an unknown command; an older mqlb
 *           answers "expected HELLO")
 */
#ifndef MQLB_HANDOVER_H
#define MQLB_HANDOVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define HANDOVER_MAGIC          0x4d51484fu     /* "MQHO" */
#define HANDOVER_VERSION        1
#define HANDOVER_HEADER_LEN     12
#define HANDOVER_MAX_PAYLOAD    (4u << 20)      /* 4 MiB */
#define HANDOVER_MAX_FDS        2               /* per frame */
#define HANDOVER_NAME_LEN       64              /* = CONFIG_NAME_LEN */
#define HANDOVER_ADDR_LEN       80              /* listen/backend text */
#define HANDOVER_TEXT_LEN       256             /* error text */
#define HANDOVER_REASON_LEN     160             /* last check reason */
#define HANDOVER_NO_AGE         UINT64_MAX      /* up_age_ms: never up */

enum handover_type {
    HANDOVER_HELLO = 1,     /* N -> O: take over, please */
    HANDOVER_ERROR,         /* either: refused or failed, with a text */
    HANDOVER_BEGIN,         /* O -> N: what follows */
    HANDOVER_LISTENER,      /* O -> N: one listening socket (1 fd) */
    HANDOVER_SESSION,       /* O -> N: one established session (2 fds) */
    HANDOVER_POOL,          /* O -> N: a pool's counters */
    HANDOVER_BACKEND,       /* O -> N: a backend's runtime state */
    HANDOVER_END,           /* O -> N: counts, to check nothing was lost */
    HANDOVER_ACK,           /* N -> O: all adopted, but for these ids */
    HANDOVER_DONE,          /* O -> N: committed */
    HANDOVER_COMMAND,       /* C -> O: `mqlb -s` asks */
    HANDOVER_REPLY,         /* O -> C: the outcome, as JSON */
};

/* What a COMMAND asks (the values are on the wire). */
enum handover_cmd {
    HANDOVER_CMD_RELOAD = 1,    /* POST /control/reload */
    HANDOVER_CMD_STOP,          /* POST /control/stop */
    HANDOVER_CMD_STATUS,        /* GET /status */
};

/* Decoder verdicts beyond MQ_OK. */
#define HANDOVER_EMAGIC     -10     /* not a handover frame at all */
#define HANDOVER_EVERSION   -11     /* a version this build does not speak */
#define HANDOVER_ETOOBIG    -12     /* payload over HANDOVER_MAX_PAYLOAD */
#define HANDOVER_EMALFORMED -13     /* payload short or a field invalid */

struct handover_header {
    uint16_t            version;
    uint16_t            type;       /* enum handover_type */
    uint32_t            length;     /* payload bytes */
};

struct handover_hello {
    uint32_t            pid;        /* of the new process */
};

struct handover_error {
    char                text[HANDOVER_TEXT_LEN];
};

struct handover_begin {
    uint64_t            next_id;    /* session ids go on from here */
    uint32_t            nworkers;   /* O's workers (listener indexes) */
    uint32_t            pid;        /* of the old process */
};

struct handover_listener {
    uint32_t            worker;     /* O's worker that owned it */
    char                addr[HANDOVER_ADDR_LEN];   /* as in the config */
};

/* One direction of a session. <data> points into the decoded payload. */
struct handover_dir {
    const uint8_t      *data;       /* bytes read, not yet delivered */
    uint32_t            len;
    uint64_t            nbytes;     /* bytes delivered so far */
    unsigned            eof:1;      /* the source sent its FIN */
    unsigned            spliced:1;  /* was moving through a pipe */
    unsigned            nosplice:1; /* splice failed once: keep copying */
};

/* Who ended a direction first (for the session's log line). */
enum handover_fin {
    HANDOVER_FIN_NONE = 0,
    HANDOVER_FIN_CLIENT,
    HANDOVER_FIN_BACKEND,
};

/* An established plain-TCP session; fds: client, then broker. */
struct handover_session {
    uint64_t            id;
    uint32_t            worker;     /* O's worker, to spread them alike */
    char                pool[HANDOVER_NAME_LEN];
    char                backend[HANDOVER_NAME_LEN];
    struct sockaddr_storage client; /* AF_INET or AF_INET6 */
    uint64_t            key;        /* source / client-id hash */
    uint64_t            age_ms;     /* since accept */
    uint64_t            idle_ms;    /* since the last byte moved */
    uint64_t            idle_timeout_ms;   /* 0 = none */
    uint8_t             first_fin;  /* enum handover_fin */
    struct handover_dir up;         /* client -> broker */
    struct handover_dir down;       /* broker -> client */
    uint8_t             idle_client;    /* <idle_ms> counts the client's
                                           silence only (idle_timeout =
                                           auto, keepalive known) */
    uint64_t            life_left_ms;   /* max_session_duration left, or
                                           HANDOVER_NO_AGE */
};

#define HANDOVER_MAX_REASONS 16     /* rejection counters per pool */

struct handover_pool {
    char                name[HANDOVER_NAME_LEN];
    uint32_t            nrejected;  /* counters in <rejected> */
    uint64_t            rejected[HANDOVER_MAX_REASONS];  /* by reason */
};

/* A backend's runtime state and counters. */
struct handover_backend {
    char                pool[HANDOVER_NAME_LEN];
    char                name[HANDOVER_NAME_LEN];
    char                addr[HANDOVER_ADDR_LEN];
    uint8_t             up;         /* health verdict */
    uint8_t             admin;      /* enum backend_admin */
    uint8_t             proto_drain;
    uint8_t             backup;
    uint32_t            weight;     /* runtime weight */
    uint32_t            config_weight;  /* the file's, when it was set */
    uint32_t            max_conns;
    uint32_t            nfails_row;
    int32_t             health;     /* rise/fall counter, -1 = unchecked */
    uint64_t            since_ms;   /* wall clock of the last change */
    uint64_t            up_age_ms;  /* since it came up (slow start), or
                                       HANDOVER_NO_AGE */
    uint64_t            ntotal;
    uint64_t            nfailed;
    uint64_t            bytes_in;
    uint64_t            bytes_out;
    uint64_t            nchecks_pass;
    uint64_t            nchecks_fail;
    uint8_t             check_result;   /* enum backend_check_result */
    uint32_t            check_latency_ms;
    uint64_t            check_at_ms;
    char                check_reason[HANDOVER_REASON_LEN];
    uint8_t             source;     /* enum backend_source: config, DNS,
                                       the runtime API */
    uint32_t            max_connect_rate;
    char                down_reason[HANDOVER_TEXT_LEN];  /* why down */
    char                admin_by[HANDOVER_NAME_LEN];     /* who drained */
};

struct handover_end {
    uint32_t            nlisteners;
    uint32_t            nsessions;
    uint32_t            npools;
    uint32_t            nbackends;
};

/* The ids are big-endian u64s in the payload: handover_ack_id(). */
struct handover_ack {
    uint32_t            ndeclined;
    const uint8_t      *ids;
};

struct handover_command {
    uint8_t             cmd;        /* enum handover_cmd; any value
                                       decodes, the server names the
                                       ones it does not know */
};

/* The body is the JSON text, not NUL-terminated, pointing into the
 * decoded payload. */
struct handover_reply {
    uint32_t            status;     /* HTTP status of the same request on
                                       the admin port: 200, 202, 422... */
    uint32_t            len;        /* bytes of <body> */
    const uint8_t      *body;
};

/* A growing output buffer; <failed> once an allocation failed. */
struct handover_buf {
    uint8_t            *data;
    size_t              len;
    size_t              cap;
    int                 failed;
};

void handover_buf_init(struct handover_buf *b);
void handover_buf_deinit(struct handover_buf *b);
/* Forget the contents, keep the memory. */
void handover_buf_reset(struct handover_buf *b);

/*
 * Read a frame header from <in> (HANDOVER_HEADER_LEN bytes). MQ_OK, or
 * HANDOVER_EMAGIC / _EVERSION / _ETOOBIG; <h> is filled in every case
 * where the magic matched, so that the version can be named in an error.
 */
int handover_header_decode(const uint8_t *in, struct handover_header *h);

/*
 * Append one whole frame (header and payload) to <b>. MQ_ERR only when
 * memory ran out, or a field cannot be encoded (an address family other
 * than IPv4/IPv6, a string too long).
 */
int handover_encode_hello(struct handover_buf *b,
                          const struct handover_hello *m);
int handover_encode_error(struct handover_buf *b, const char *text);
int handover_encode_begin(struct handover_buf *b,
                          const struct handover_begin *m);
int handover_encode_listener(struct handover_buf *b,
                             const struct handover_listener *m);
int handover_encode_session(struct handover_buf *b,
                            const struct handover_session *m);
int handover_encode_pool(struct handover_buf *b,
                         const struct handover_pool *m);
int handover_encode_backend(struct handover_buf *b,
                            const struct handover_backend *m);
int handover_encode_end(struct handover_buf *b,
                        const struct handover_end *m);
int handover_encode_ack(struct handover_buf *b, const uint64_t *ids,
                        uint32_t n);
int handover_encode_done(struct handover_buf *b);
int handover_encode_command(struct handover_buf *b,
                            const struct handover_command *m);
/* <len> bytes of <body>: too many for one frame is MQ_ERR. */
int handover_encode_reply(struct handover_buf *b, uint32_t status,
                          const char *body, size_t len);
/* A frame with an arbitrary version and type: for tests of refusals. */
int handover_encode_raw(struct handover_buf *b, uint16_t version,
                        uint16_t type, const void *payload, uint32_t len);

/*
 * Decode the payload <p> of <len> bytes of a frame of that type. MQ_OK or
 * HANDOVER_EMALFORMED. Strings come out NUL-terminated; pointers in the
 * result (session bytes, ack ids) point into <p>.
 */
int handover_decode_hello(const uint8_t *p, size_t len,
                          struct handover_hello *m);
int handover_decode_error(const uint8_t *p, size_t len,
                          struct handover_error *m);
int handover_decode_begin(const uint8_t *p, size_t len,
                          struct handover_begin *m);
int handover_decode_listener(const uint8_t *p, size_t len,
                             struct handover_listener *m);
int handover_decode_session(const uint8_t *p, size_t len,
                            struct handover_session *m);
int handover_decode_pool(const uint8_t *p, size_t len,
                         struct handover_pool *m);
int handover_decode_backend(const uint8_t *p, size_t len,
                            struct handover_backend *m);
int handover_decode_end(const uint8_t *p, size_t len,
                        struct handover_end *m);
int handover_decode_ack(const uint8_t *p, size_t len,
                        struct handover_ack *m);
int handover_decode_command(const uint8_t *p, size_t len,
                            struct handover_command *m);
int handover_decode_reply(const uint8_t *p, size_t len,
                          struct handover_reply *m);

/* The <i>th declined id of <m>. */
uint64_t handover_ack_id(const struct handover_ack *m, uint32_t i);

/* "SESSION", "ACK", ... or "unknown". */
const char *handover_type_name(uint16_t type);

#endif /* MQLB_HANDOVER_H */
