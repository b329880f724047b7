/*
 * probe.h: the bytes of one protocol health check. A probe knows what to
 * send and how to judge what comes back; it never touches a socket. The
 * checker (health.c) owns the connection and drives the probe:
 *
 *   connect ok -> ops->start(p)            send p->out if p->outlen > 0
 *   bytes in   -> ops->judge(p, buf, len)  buf holds every byte received
 *                                          since connect; send p->out if set
 *   PROBE_PASS / PROBE_FAIL ends the check (p->out, if set, is sent
 *   best-effort before the close: MQTT's DISCONNECT).
 */
#ifndef MQLB_PROBE_H
#define MQLB_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqlb/config.h"

#define PROBE_OUT_MAX       1024    /* largest request a probe sends */
#define PROBE_CRED_MAX      CONFIG_CRED_MAX  /* longest check_user,
                                       check_password, check_vhost: all
                                       fit one request */
#define PROBE_IN_MAX        16384   /* bytes kept for judging; more fails */
#define PROBE_REASON_MAX    128

enum probe_verdict {
    PROBE_MORE = 0,     /* need more bytes */
    PROBE_PASS,
    PROBE_FAIL,         /* reason in p->reason */
};

/* Settings a probe reads; pointers are borrowed from the pool config. */
struct probe_params {
    const char         *send;           /* send-expect request */
    size_t              send_len;
    const char         *expect;         /* send-expect reply prefix */
    size_t              expect_len;
    const char         *path;           /* http path */
    const char         *host;           /* http Host header, "ip:port" */
    const char         *client_id;      /* mqtt client identifier */
    const char         *user;           /* check_user or NULL */
    const char         *password;       /* check_password or NULL */
    const char         *vhost;          /* amqp check_vhost; NULL = "/" */
};

/* The words that start the reason of a check whose login was refused. */
#define PROBE_AUTH_REFUSED  "authentication refused"

/* One check in progress; lives inside the checker's per-check state. */
struct probe {
    const struct probe_ops *ops;
    const struct probe_params *params;
    int                 step;           /* kind-specific progress */
    size_t              consumed;       /* bytes of input already judged */
    uint32_t            corr_id;        /* kafka correlation id */
    bool                drain;          /* broker asked to drain (NATS ldm) */
    uint8_t             out[PROBE_OUT_MAX];  /* bytes to send next */
    size_t              outlen;
    char                reason[PROBE_REASON_MAX];  /* why it failed */
};

struct probe_ops {
    const char         *name;
    /* Fill p->out with the opening request (may leave it empty). */
    void              (*start)(struct probe *p);
    /* Judge <len> bytes received so far (all of them, from the start). */
    enum probe_verdict (*judge)(struct probe *p, const uint8_t *buf,
                                size_t len);
};

/* The ops for <check>, or NULL for tcp/none (connect is the verdict). */
const struct probe_ops *probe_ops_for(enum config_check check);

/* Reset <p> for a new check with <ops> and <params>, then call start. */
void probe_init(struct probe *p, const struct probe_ops *ops,
                const struct probe_params *params);

/* True when <params> carry credentials (check_user or check_password). */
bool probe_has_auth(const struct probe_params *params);

/*
 * Write "unexpected reply: <first bytes, escaped>" into p->reason; shared
 * by every probe so that reasons look alike.
 */
void probe_fail_unexpected(struct probe *p, const uint8_t *buf, size_t len);

/* One ops table per probe_<kind>.c file. */
extern const struct probe_ops probe_redis_ops;
extern const struct probe_ops probe_redis_master_ops;
extern const struct probe_ops probe_amqp_ops;
extern const struct probe_ops probe_mqtt_ops;
extern const struct probe_ops probe_nats_ops;
extern const struct probe_ops probe_kafka_ops;
extern const struct probe_ops probe_http_ops;
extern const struct probe_ops probe_send_expect_ops;

/*
 * True if the <len> bytes at <line> (no line end) are a NATS "INFO {...}"
 * line; <*ldm> then says whether it announces lame duck mode. Also used
 * by nats_watch.c for the INFO updates a server pushes to its clients.
 */
bool probe_nats_info_line(const uint8_t *line, size_t len, bool *ldm);

/*
 * The NATS "CONNECT {<fields>...}\r\n" line into <out> (<cap> bytes):
 * <fields> ("\"verbose\":false,..."), then "user"/"pass" from <user> and
 * <password>, or "auth_token" for a password alone (NULL: none), as
 * JSON strings. Returns its length, 0 if it does not fit. Also used by
 * nats_watch.c, which logs in as the checks do.
 */
size_t probe_nats_connect_line(char *out, size_t cap, const char *fields,
                               const char *user, const char *password);

/*
 * Helpers shared by the probe_<kind>.c files.
 *
 * probe_fail: format the reason into p->reason; returns PROBE_FAIL.
 * probe_more: PROBE_MORE while <len> leaves room to receive more, else a
 * "reply too long" PROBE_FAIL (the checker keeps at most PROBE_IN_MAX).
 * probe_escape: write at most <len> bytes of <src> into <dst> (<size>
 * bytes, always NUL-terminated) with the escaping of probe_fail_unexpected,
 * never splitting an escape; returns how many bytes of <src> it wrote.
 * probe_out_append: add <len> bytes to p->out, or nothing if they do not
 * all fit; one judge call may queue several messages (NATS PING, PONG).
 * probe_match: PROBE_PASS if <buf> starts with <lit>, PROBE_MORE if <buf>
 * is a proper prefix of it, PROBE_FAIL (reason untouched) otherwise.
 * probe_line: true if <buf> holds a whole line; <*linelen> is its length
 * without the "\r\n" (or lone "\n") and <*used> includes it.
 */
enum probe_verdict probe_fail(struct probe *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
enum probe_verdict probe_more(struct probe *p, size_t len);
size_t probe_escape(char *dst, size_t size, const uint8_t *src, size_t len);
void probe_out_append(struct probe *p, const void *data, size_t len);
enum probe_verdict probe_match(const uint8_t *buf, size_t len,
                               const char *lit, size_t litlen);
bool probe_line(const uint8_t *buf, size_t len, size_t *linelen,
                size_t *used);

#endif /* MQLB_PROBE_H */
