/*
 * probe_redis.c: the redis and redis-master checks. Both send PING and
 * want +PONG; redis-master then sends INFO replication and passes only if
 * the bulk reply has a "role:master" line, so that sessions go to the
 * master alone. With check_password (and check_user, for an ACL user),
 * "AUTH [user] password" goes first, in the same write as PING: redis
 * answers in order, so the first reply is AUTH's.
 */
#include <stdio.h>
#include <string.h>

#include "mqlb/probe.h"

#define PROBE_REDIS_PING    "PING\r\n"
#define PROBE_REDIS_PONG    "+PONG\r\n"
#define PROBE_REDIS_INFO    "INFO replication\r\n"
#define PROBE_REDIS_MASTER  "role:master"

/* Values of p->step. */
enum probe_redis_step {
    PROBE_REDIS_WANT_PONG = 0,  /* PING sent */
    PROBE_REDIS_WANT_INFO,      /* INFO replication sent */
    PROBE_REDIS_WANT_AUTH,      /* AUTH and PING sent */
};

/* Append one RESP bulk string "$<n>\r\n<s>\r\n" to p->out. */
static void
probe_redis_bulk(struct probe *p, const char *s)
{
    char head[16];
    int  n;

    n = snprintf(head, sizeof(head), "$%zu\r\n", strlen(s));
    probe_out_append(p, head, (size_t)n);
    probe_out_append(p, s, strlen(s));
    probe_out_append(p, "\r\n", 2);
}

static void
probe_redis_start(struct probe *p)
{
    const struct probe_params *pp = p->params;

    /* As an array of bulk strings: any byte of a password is safe. */
    if (pp != NULL && pp->password != NULL) {
        probe_out_append(p, pp->user != NULL ? "*3\r\n" : "*2\r\n", 4);
        probe_redis_bulk(p, "AUTH");
        if (pp->user != NULL) {
            probe_redis_bulk(p, pp->user);
        }
        probe_redis_bulk(p, pp->password);
        p->step = PROBE_REDIS_WANT_AUTH;
    }
    probe_out_append(p, PROBE_REDIS_PING, sizeof(PROBE_REDIS_PING) - 1);
}

/*
 * The reply to AUTH at the start of <buf>: on "+OK" move past it (into
 * p->consumed) and on to the PING reply; an error reply is a refused
 * login, named so.
 */
static enum probe_verdict
probe_redis_auth(struct probe *p, const uint8_t *buf, size_t len)
{
    char   text[PROBE_REASON_MAX];
    size_t linelen, used;

    if (len > 0 && buf[0] != '+' && buf[0] != '-') {
        probe_fail_unexpected(p, buf, len);
        return PROBE_FAIL;
    }
    if (!probe_line(buf, len, &linelen, &used)) {
        return probe_more(p, len);
    }
    if (buf[0] == '-') {
        probe_escape(text, sizeof(text), buf + 1, linelen - 1);
        return probe_fail(p, PROBE_AUTH_REFUSED ": %s", text);
    }
    if (linelen != 3 || memcmp(buf, "+OK", 3) != 0) {
        probe_fail_unexpected(p, buf, len);
        return PROBE_FAIL;
    }
    p->consumed = used;
    p->step = PROBE_REDIS_WANT_PONG;
    return PROBE_PASS;
}

/*
 * An error reply ("-NOAUTH Authentication required.") at <buf>: fail with
 * its text once the line is whole.
 */
static enum probe_verdict
probe_redis_error(struct probe *p, const uint8_t *buf, size_t len)
{
    char   text[PROBE_REASON_MAX];
    size_t linelen, used;

    if (!probe_line(buf, len, &linelen, &used)) {
        return PROBE_MORE;
    }
    probe_escape(text, sizeof(text), buf + 1, linelen - 1);
    return probe_fail(p, "redis error: %s", text);
}

/*
 * The reply to PING at <buf>: PROBE_PASS with <*used> set once "+PONG\r\n"
 * is whole.
 */
static enum probe_verdict
probe_redis_pong(struct probe *p, const uint8_t *buf, size_t len,
                 size_t *used)
{
    if (len > 0 && buf[0] == '-') {
        return probe_redis_error(p, buf, len);
    }
    switch (probe_match(buf, len, PROBE_REDIS_PONG,
                        sizeof(PROBE_REDIS_PONG) - 1)) {
    case PROBE_PASS:
        *used = sizeof(PROBE_REDIS_PONG) - 1;
        return PROBE_PASS;
    case PROBE_MORE:
        return PROBE_MORE;
    case PROBE_FAIL:
        break;
    }
    probe_fail_unexpected(p, buf, len);
    return PROBE_FAIL;
}

/*
 * The replies up to PING's in <buf>: AUTH's first when it was sent, then
 * "+PONG\r\n", which ends <*used> bytes past p->consumed on a pass.
 * PROBE_MORE (or a failure, once <len> is too long) while one is partial.
 */
static enum probe_verdict
probe_redis_ping_reply(struct probe *p, const uint8_t *buf, size_t len,
                       size_t *used)
{
    enum probe_verdict v;

    if (p->step == PROBE_REDIS_WANT_AUTH) {
        v = probe_redis_auth(p, buf, len);
        if (v != PROBE_PASS) {
            return v;
        }
    }
    v = probe_redis_pong(p, buf + p->consumed, len - p->consumed, used);
    return v == PROBE_MORE ? probe_more(p, len) : v;
}

static enum probe_verdict
probe_redis_judge(struct probe *p, const uint8_t *buf, size_t len)
{
    size_t used;

    return probe_redis_ping_reply(p, buf, len, &used);
}

/*
 * Look through the INFO replication <body> for the role line: pass on
 * "role:master", fail naming any other role.
 */
static enum probe_verdict
probe_redis_role(struct probe *p, const uint8_t *body, size_t len)
{
    static const char role[] = "role:";
    char              text[PROBE_REASON_MAX];
    size_t            linelen, used;

    while (len > 0) {
        if (!probe_line(body, len, &linelen, &used)) {
            linelen = len;
            used = len;
        }
        if (linelen == sizeof(PROBE_REDIS_MASTER) - 1
            && memcmp(body, PROBE_REDIS_MASTER, linelen) == 0)
        {
            return PROBE_PASS;
        }
        if (linelen >= sizeof(role) - 1
            && memcmp(body, role, sizeof(role) - 1) == 0)
        {
            probe_escape(text, sizeof(text), body, linelen);
            return probe_fail(p, "not the master: %s", text);
        }
        body += used;
        len -= used;
    }
    return probe_fail(p, "no role line in INFO replication");
}

/*
 * The reply to INFO replication at <buf>: a bulk string "$<n>\r\n<body>\r\n"
 * whose <n> is bounded before anything is waited for.
 */
static enum probe_verdict
probe_redis_info(struct probe *p, const uint8_t *buf, size_t len)
{
    size_t i, n, room;

    if (len == 0) {
        return PROBE_MORE;
    }
    if (buf[0] == '-') {
        return probe_redis_error(p, buf, len);
    }
    if (buf[0] != '$') {
        goto unexpected;
    }
    room = PROBE_IN_MAX - p->consumed;
    n = 0;
    for (i = 1; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
        n = n * 10 + (size_t)(buf[i] - '0');
        if (n > room) {
            return probe_fail(p, "redis INFO reply too long");
        }
    }
    if (i == len) {
        return PROBE_MORE;
    }
    if (i == 1 || buf[i] != '\r') {
        goto unexpected;
    }
    if (i + 1 == len) {
        return PROBE_MORE;
    }
    if (buf[i + 1] != '\n') {
        goto unexpected;
    }
    i += 2;
    if (i + n + 2 > room) {
        return probe_fail(p, "redis INFO reply too long");
    }
    if (len < i + n + 2) {
        return PROBE_MORE;
    }
    if (buf[i + n] != '\r' || buf[i + n + 1] != '\n') {
        goto unexpected;
    }
    return probe_redis_role(p, buf + i, n);

unexpected:
    probe_fail_unexpected(p, buf, len);
    return PROBE_FAIL;
}

static enum probe_verdict
probe_redis_master_judge(struct probe *p, const uint8_t *buf, size_t len)
{
    enum probe_verdict v;
    size_t             used;

    if (p->step != PROBE_REDIS_WANT_INFO) {
        v = probe_redis_ping_reply(p, buf, len, &used);
        if (v != PROBE_PASS) {
            return v;
        }
        p->consumed += used;
        p->step = PROBE_REDIS_WANT_INFO;
        probe_out_append(p, PROBE_REDIS_INFO, sizeof(PROBE_REDIS_INFO) - 1);
    }
    v = probe_redis_info(p, buf + p->consumed, len - p->consumed);
    return v == PROBE_MORE ? probe_more(p, len) : v;
}

const struct probe_ops probe_redis_ops = {
    .name = "redis",
    .start = probe_redis_start,
    .judge = probe_redis_judge,
};

const struct probe_ops probe_redis_master_ops = {
    .name = "redis-master",
    .start = probe_redis_start,
    .judge = probe_redis_master_judge,
};
