/*
 * test_probe.c: the protocol probes as pure functions over bytes. For
 * every judge: a good reply, each way it can be wrong, the good reply
 * arriving one byte at a time and in two pieces split anywhere, random
 * garbage, and replies longer than PROBE_IN_MAX.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mqlb/probe.h"

#define TEST_RANDOM_RUNS    10000

/* Bytes sent by the probe since it started, as the checker would. */
struct test_wire {
    uint8_t     sent[4 * PROBE_OUT_MAX];    /* every p->out, in order */
    size_t      nsent;
    uint8_t     last[PROBE_OUT_MAX];        /* the latest p->out */
    size_t      nlast;
};

static struct test_wire test_wire;

static uint64_t test_rng_state;

static void
test_rng_seed(uint64_t seed)
{
    test_rng_state = seed;
}

/* xorshift64*: the same garbage on every run and every libc. */
static uint64_t
test_rng(void)
{
    test_rng_state ^= test_rng_state >> 12;
    test_rng_state ^= test_rng_state << 25;
    test_rng_state ^= test_rng_state >> 27;
    return test_rng_state * 0x2545f4914f6cdd1dull;
}

/* Take p->out as the checker does: record it and clear outlen. */
static void
test_take_out(struct probe *p)
{
    if (p->outlen == 0) {
        return;
    }
    cr_assert(p->outlen <= PROBE_OUT_MAX);
    cr_assert(test_wire.nsent + p->outlen <= sizeof(test_wire.sent));
    memcpy(test_wire.sent + test_wire.nsent, p->out, p->outlen);
    test_wire.nsent += p->outlen;
    memcpy(test_wire.last, p->out, p->outlen);
    test_wire.nlast = p->outlen;
    p->outlen = 0;
}

static void
test_start(struct probe *p, const struct probe_ops *ops,
           const struct probe_params *params)
{
    memset(&test_wire, 0, sizeof(test_wire));
    probe_init(p, ops, params);
    test_take_out(p);
}

/*
 * Judge the first <len> bytes of <buf> from an exact-size heap copy, so
 * that ASan catches a read past what was received.
 */
static enum probe_verdict
test_judge(struct probe *p, const void *buf, size_t len)
{
    enum probe_verdict v;
    uint8_t           *copy;

    copy = malloc(len > 0 ? len : 1);
    cr_assert(copy != NULL);
    if (len > 0) {
        memcpy(copy, buf, len);
    }
    test_wire.nlast = 0;
    v = p->ops->judge(p, copy, len);
    free(copy);
    if (v == PROBE_FAIL) {
        cr_assert(strlen(p->reason) > 0, "a failure must give a reason");
        cr_assert(strlen(p->reason) < PROBE_REASON_MAX);
    }
    test_take_out(p);
    return v;
}

/* Start a probe and judge all of <buf> at once. */
static enum probe_verdict
test_once(struct probe *p, const struct probe_ops *ops,
          const struct probe_params *params, const void *buf, size_t len)
{
    test_start(p, ops, params);
    return test_judge(p, buf, len);
}

/*
 * Feed <buf> one more byte at a time: PROBE_MORE for every prefix shorter
 * than <n>, then the verdict at <n>, which is returned. Then again in two
 * pieces split at every point, which must reach the same verdict.
 */
static enum probe_verdict
test_split(struct probe *p, const struct probe_ops *ops,
           const struct probe_params *params, const void *buf, size_t n)
{
    enum probe_verdict v, w;
    struct probe       q;
    size_t             k;

    test_start(&q, ops, params);
    v = test_judge(&q, buf, n);
    for (k = 1; k < n; k++) {
        test_start(&q, ops, params);
        cr_assert_eq(test_judge(&q, buf, k), PROBE_MORE,
                     "%s: early verdict after %zu of %zu bytes", ops->name,
                     k, n);
        w = test_judge(&q, buf, n);
        cr_assert_eq(w, v, "%s: split at %zu gives %d, not %d", ops->name,
                     k, (int)w, (int)v);
    }
    /* Last, so that <p> and test_wire show this run to the caller. */
    test_start(p, ops, params);
    for (k = 1; k < n; k++) {
        w = test_judge(p, buf, k);
        cr_assert_eq(w, PROBE_MORE, "%s: verdict %d after %zu of %zu bytes",
                     ops->name, (int)w, k, n);
    }
    w = test_judge(p, buf, n);
    cr_assert_eq(w, v, "%s: byte at a time gives %d, not %d", ops->name,
                 (int)w, (int)v);
    return v;
}

/*
 * <runs> random buffers, each after <prefix> (bytes that the probe has
 * accepted so far): none may pass, and none may crash.
 */
static void
test_garbage(const struct probe_ops *ops, const struct probe_params *params,
             const void *prefix, size_t plen, uint64_t seed)
{
    enum probe_verdict v;
    struct probe       p;
    uint8_t            buf[1024];
    size_t             len, i, run;

    cr_assert(plen < 500);
    test_rng_seed(seed);
    for (run = 0; run < TEST_RANDOM_RUNS; run++) {
        if (plen > 0) {
            memcpy(buf, prefix, plen);
        }
        len = plen + (size_t)(test_rng() % (run % 10 == 0 ? 500 : 40));
        for (i = plen; i < len; i++) {
            buf[i] = (uint8_t)test_rng();
        }
        v = test_once(&p, ops, params, buf, len);
        cr_assert(v == PROBE_MORE || v == PROBE_FAIL,
                  "%s: random buffer %zu (%zu bytes) passed", ops->name,
                  run, len);
    }
}

/*
 * Flip random bytes of a good <reply> many times: the verdict may be
 * anything, but the judge must stay inside the buffer (ASan, UBSan).
 */
static void
test_mutate(const struct probe_ops *ops, const struct probe_params *params,
            const void *reply, size_t n, uint64_t seed)
{
    struct probe p;
    uint8_t     *buf;
    size_t       run, k, cut;

    buf = malloc(n);
    cr_assert(buf != NULL);
    test_rng_seed(seed);
    for (run = 0; run < TEST_RANDOM_RUNS; run++) {
        memcpy(buf, reply, n);
        for (k = 0; k < 1 + run % 3; k++) {
            buf[test_rng() % n] = (uint8_t)test_rng();
        }
        cut = 1 + (size_t)(test_rng() % n);
        test_start(&p, ops, params);
        if (test_judge(&p, buf, cut / 2 + 1) == PROBE_MORE) {
            (void)test_judge(&p, buf, cut);
        }
    }
    free(buf);
}

/* A buffer of <len> copies of <c> after <prefix>, owned by the caller. */
static uint8_t *
test_filled(const char *prefix, size_t plen, uint8_t c, size_t len)
{
    uint8_t *buf;

    buf = malloc(len);
    cr_assert(buf != NULL);
    memset(buf, c, len);
    memcpy(buf, prefix, plen);
    return buf;
}

/* Feed <len> bytes of <buf> and expect a failure whose reason has <what>. */
static void
test_fails_with(const struct probe_ops *ops,
                const struct probe_params *params, const void *buf,
                size_t len, const char *what)
{
    struct probe p;

    cr_assert_eq(test_once(&p, ops, params, buf, len), PROBE_FAIL,
                 "%s: expected a failure", ops->name);
    cr_assert(strstr(p.reason, what) != NULL, "%s: reason \"%s\" lacks \"%s\"",
              ops->name, p.reason, what);
}

#define LIT(s)  (s), (sizeof(s) - 1)

/* ---- probe.c ---------------------------------------------------------- */

Test(probe, ops_for_maps_every_kind)
{
    cr_assert_null(probe_ops_for(CHECK_TCP));
    cr_assert_null(probe_ops_for(CHECK_NONE));
    cr_assert_str_eq(probe_ops_for(CHECK_REDIS)->name, "redis");
    cr_assert_str_eq(probe_ops_for(CHECK_REDIS_MASTER)->name,
                     "redis-master");
    cr_assert_str_eq(probe_ops_for(CHECK_AMQP)->name, "amqp");
    cr_assert_str_eq(probe_ops_for(CHECK_MQTT)->name, "mqtt");
    cr_assert_str_eq(probe_ops_for(CHECK_NATS)->name, "nats");
    cr_assert_str_eq(probe_ops_for(CHECK_KAFKA)->name, "kafka");
    cr_assert_str_eq(probe_ops_for(CHECK_HTTP)->name, "http");
    cr_assert_str_eq(probe_ops_for(CHECK_SEND_EXPECT)->name, "send-expect");
}

Test(probe, init_resets_and_starts)
{
    struct probe_params pp = { 0 };
    struct probe        p;

    memset(&p, 0xa5, sizeof(p));
    probe_init(&p, &probe_redis_ops, &pp);
    cr_assert_eq(p.ops, &probe_redis_ops);
    cr_assert_eq(p.params, &pp);
    cr_assert_eq(p.step, 0);
    cr_assert_eq(p.consumed, 0);
    cr_assert_eq(p.drain, false);
    cr_assert_str_eq(p.reason, "");
    cr_assert_eq(p.outlen, 6);
    cr_assert(memcmp(p.out, "PING\r\n", 6) == 0);
}

Test(probe, unexpected_escapes_bytes)
{
    struct probe p = { 0 };

    probe_fail_unexpected(&p, (const uint8_t *)"PING\r\n\x00\xff\\\t", 10);
    cr_assert_str_eq(p.reason,
                     "unexpected reply: PING\\r\\n\\x00\\xff\\\\\\t");
}

Test(probe, unexpected_shows_first_bytes_only)
{
    struct probe p = { 0 };
    uint8_t      buf[100];

    memset(buf, 'A', sizeof(buf));
    probe_fail_unexpected(&p, buf, sizeof(buf));
    cr_assert_str_eq(p.reason, "unexpected reply: "
                     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA...");
}

Test(probe, unexpected_binary_fits_the_reason)
{
    struct probe p = { 0 };
    uint8_t      buf[40];

    memset(buf, 0x80, sizeof(buf));
    probe_fail_unexpected(&p, buf, sizeof(buf));
    cr_assert(strlen(p.reason) < PROBE_REASON_MAX);
    cr_assert(strncmp(p.reason, "unexpected reply: \\x80\\x80", 26) == 0);
    cr_assert(strcmp(p.reason + strlen(p.reason) - 7, "\\x80...") == 0);
}

Test(probe, unexpected_empty_reply)
{
    struct probe p = { 0 };

    probe_fail_unexpected(&p, NULL, 0);
    cr_assert_str_eq(p.reason, "unexpected reply: (nothing)");
}

Test(probe, escape_never_splits_an_escape)
{
    char   dst[6];
    size_t n;

    n = probe_escape(dst, sizeof(dst), (const uint8_t *)"a\x01z", 3);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(dst, "a\\x01");
    n = probe_escape(dst, 3, (const uint8_t *)"a\x01z", 3);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(dst, "a");
}

Test(probe, more_fails_at_the_input_limit)
{
    struct probe p = { 0 };

    cr_assert_eq(probe_more(&p, PROBE_IN_MAX - 1), PROBE_MORE);
    cr_assert_eq(probe_more(&p, PROBE_IN_MAX), PROBE_FAIL);
    cr_assert(strstr(p.reason, "too long") != NULL);
}

Test(probe, match_and_line_helpers)
{
    size_t linelen, used;

    cr_assert_eq(probe_match((const uint8_t *)"+PO", 3, LIT("+PONG")),
                 PROBE_MORE);
    cr_assert_eq(probe_match((const uint8_t *)"+PONGx", 6, LIT("+PONG")),
                 PROBE_PASS);
    cr_assert_eq(probe_match((const uint8_t *)"+PA", 3, LIT("+PONG")),
                 PROBE_FAIL);
    cr_assert_eq(probe_match(NULL, 0, LIT("+PONG")), PROBE_MORE);
    cr_assert(!probe_line((const uint8_t *)"abc\r", 4, &linelen, &used));
    cr_assert(probe_line((const uint8_t *)"abc\r\nd", 6, &linelen, &used));
    cr_assert_eq(linelen, 3);
    cr_assert_eq(used, 5);
    cr_assert(probe_line((const uint8_t *)"ab\nd", 4, &linelen, &used));
    cr_assert_eq(linelen, 2);
    cr_assert_eq(used, 3);
}

Test(probe, every_judge_fails_on_a_flood)
{
    static const enum config_check kinds[] = {
        CHECK_REDIS, CHECK_REDIS_MASTER, CHECK_AMQP, CHECK_MQTT,
        CHECK_NATS, CHECK_KAFKA, CHECK_HTTP, CHECK_SEND_EXPECT,
    };
    struct probe_params pp = { .expect = "A", .expect_len = 1 };
    struct probe        p;
    uint8_t            *buf;
    size_t              i;

    /* Each flood is a plausible start that never completes. */
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        buf = test_filled("-", 1, 'x', PROBE_IN_MAX + 100);
        if (kinds[i] == CHECK_NATS) {
            memcpy(buf, "INFO {", 6);
        } else if (kinds[i] == CHECK_SEND_EXPECT) {
            pp.expect = (const char *)buf;
            pp.expect_len = PROBE_IN_MAX + 100;
        }
        cr_assert_eq(test_once(&p, probe_ops_for(kinds[i]), &pp, buf,
                               PROBE_IN_MAX + 50), PROBE_FAIL,
                     "%s", probe_ops_for(kinds[i])->name);
        free(buf);
    }
}

/* ---- redis ------------------------------------------------------------ */

Test(probe_redis, sends_ping)
{
    struct probe p;

    test_start(&p, &probe_redis_ops, NULL);
    cr_assert_eq(test_wire.nsent, 6);
    cr_assert(memcmp(test_wire.sent, "PING\r\n", 6) == 0);
}

Test(probe_redis, pong_passes)
{
    struct probe p;

    cr_assert_eq(test_once(&p, &probe_redis_ops, NULL, LIT("+PONG\r\n")),
                 PROBE_PASS);
}

Test(probe_redis, pong_split_at_every_byte)
{
    struct probe p;

    cr_assert_eq(test_split(&p, &probe_redis_ops, NULL, LIT("+PONG\r\n")),
                 PROBE_PASS);
}

Test(probe_redis, noauth_fails_with_its_text)
{
    struct probe p;

    cr_assert_eq(test_split(&p, &probe_redis_ops, NULL,
                            LIT("-NOAUTH Authentication required.\r\n")),
                 PROBE_FAIL);
    cr_assert_str_eq(p.reason, "redis error: NOAUTH Authentication required.");
}

Test(probe_redis, err_fails_with_its_text)
{
    test_fails_with(&probe_redis_ops, NULL,
                    LIT("-ERR unknown command 'PING'\r\n"),
                    "redis error: ERR unknown command 'PING'");
    test_fails_with(&probe_redis_ops, NULL,
                    LIT("-DENIED Redis is running in protected mode\r\n"),
                    "redis error: DENIED Redis is running");
}

Test(probe_redis, long_error_text_is_cut_to_the_reason)
{
    struct probe p;
    uint8_t     *buf;

    buf = test_filled("-ERR ", 5, 'e', 1000);
    buf[998] = '\r';
    buf[999] = '\n';
    cr_assert_eq(test_once(&p, &probe_redis_ops, NULL, buf, 1000),
                 PROBE_FAIL);
    cr_assert(strncmp(p.reason, "redis error: ERR eee", 20) == 0);
    free(buf);
}

Test(probe_redis, other_replies_are_unexpected)
{
    test_fails_with(&probe_redis_ops, NULL, LIT("+PANG\r\n"),
                    "unexpected reply: +PA");
    test_fails_with(&probe_redis_ops, NULL, LIT("+PONGX\r\n"),
                    "unexpected reply: +PONGX");
    test_fails_with(&probe_redis_ops, NULL, LIT("$4\r\nPONG\r\n"),
                    "unexpected reply: $4\\r\\nPONG\\r\\n");
    test_fails_with(&probe_redis_ops, NULL, LIT(":1\r\n"),
                    "unexpected reply: :1");
}

Test(probe_redis, echo_server_fails)
{
    test_fails_with(&probe_redis_ops, NULL, LIT("PING\r\n"),
                    "unexpected reply: PING\\r\\n");
}

Test(probe_redis, endless_error_line_fails)
{
    struct probe p;
    uint8_t     *buf;

    buf = test_filled("-ERR ", 5, 'x', PROBE_IN_MAX);
    test_start(&p, &probe_redis_ops, NULL);
    cr_assert_eq(test_judge(&p, buf, PROBE_IN_MAX - 1), PROBE_MORE);
    cr_assert_eq(test_judge(&p, buf, PROBE_IN_MAX), PROBE_FAIL);
    cr_assert(strstr(p.reason, "too long") != NULL);
    free(buf);
}

Test(probe_redis, garbage_never_passes)
{
    test_garbage(&probe_redis_ops, NULL, NULL, 0, 1);
    test_mutate(&probe_redis_ops, NULL, LIT("+PONG\r\n"), 2);
}

/* ---- redis-master ----------------------------------------------------- */

#define TEST_INFO_MASTER \
    "# Replication\r\nrole:master\r\nconnected_slaves:1\r\n" \
    "slave0:ip=127.0.0.1,port=6380,state=online,offset=42,lag=0\r\n" \
    "master_replid:8a2f\r\nmaster_repl_offset:42\r\n"
#define TEST_INFO_SLAVE \
    "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\n" \
    "master_port:6379\r\nmaster_link_status:up\r\n"

/* "+PONG\r\n" then <body> as a RESP bulk string, into <out>. */
static size_t
test_redis_bulk(char *out, size_t size, const char *body)
{
    int n;

    n = snprintf(out, size, "+PONG\r\n$%zu\r\n%s\r\n", strlen(body), body);
    cr_assert(n > 0 && (size_t)n < size);
    return (size_t)n;
}

Test(probe_redis_master, master_passes)
{
    struct probe p;
    char         buf[512];
    size_t       n;

    n = test_redis_bulk(buf, sizeof(buf), TEST_INFO_MASTER);
    test_start(&p, &probe_redis_master_ops, NULL);
    cr_assert_eq(test_judge(&p, buf, 7), PROBE_MORE);
    cr_assert_eq(test_wire.nlast, 18);
    cr_assert(memcmp(test_wire.last, "INFO replication\r\n", 18) == 0);
    cr_assert_eq(test_judge(&p, buf, n), PROBE_PASS);
    cr_assert_eq(test_wire.nsent, 6 + 18);
}

Test(probe_redis_master, master_split_at_every_byte)
{
    struct probe p;
    char         buf[512];
    size_t       n;

    n = test_redis_bulk(buf, sizeof(buf), TEST_INFO_MASTER);
    cr_assert_eq(test_split(&p, &probe_redis_master_ops, NULL, buf, n),
                 PROBE_PASS);
}

Test(probe_redis_master, slave_fails_naming_the_role)
{
    struct probe p;
    char         buf[512];
    size_t       n;

    n = test_redis_bulk(buf, sizeof(buf), TEST_INFO_SLAVE);
    cr_assert_eq(test_split(&p, &probe_redis_master_ops, NULL, buf, n),
                 PROBE_FAIL);
    cr_assert_str_eq(p.reason, "not the master: role:slave");
}

Test(probe_redis_master, role_must_be_a_whole_line)
{
    char buf[512];

    test_fails_with(&probe_redis_master_ops, NULL, buf,
                    test_redis_bulk(buf, sizeof(buf), "role:masterful\r\n"),
                    "not the master: role:masterful");
    test_fails_with(&probe_redis_master_ops, NULL, buf,
                    test_redis_bulk(buf, sizeof(buf), "xrole:master\r\n"),
                    "no role line");
    test_fails_with(&probe_redis_master_ops, NULL, buf,
                    test_redis_bulk(buf, sizeof(buf), ""),
                    "no role line");
}

Test(probe_redis_master, role_on_the_last_line_counts)
{
    struct probe p;
    char         buf[512];
    size_t       n;

    n = test_redis_bulk(buf, sizeof(buf), "# Replication\nrole:master");
    cr_assert_eq(test_once(&p, &probe_redis_master_ops, NULL, buf, n),
                 PROBE_PASS);
}

Test(probe_redis_master, errors_fail_with_their_text)
{
    test_fails_with(&probe_redis_master_ops, NULL,
                    LIT("-NOAUTH Authentication required.\r\n"),
                    "redis error: NOAUTH Authentication required.");
    test_fails_with(&probe_redis_master_ops, NULL,
                    LIT("+PONG\r\n-ERR unknown command 'INFO'\r\n"),
                    "redis error: ERR unknown command 'INFO'");
}

Test(probe_redis_master, malformed_bulk_is_unexpected)
{
    test_fails_with(&probe_redis_master_ops, NULL,
                    LIT("+PONG\r\n$-1\r\n"), "unexpected reply: $-1");
    test_fails_with(&probe_redis_master_ops, NULL,
                    LIT("+PONG\r\n$\r\n"), "unexpected reply: $\\r\\n");
    test_fails_with(&probe_redis_master_ops, NULL,
                    LIT("+PONG\r\n$5x\r\n"), "unexpected reply: $5x");
    test_fails_with(&probe_redis_master_ops, NULL,
                    LIT("+PONG\r\n$5\rx"), "unexpected reply: $5\\rx");
    test_fails_with(&probe_redis_master_ops, NULL,
                    LIT("+PONG\r\n$3\r\nabcde"), "unexpected reply: $3");
    test_fails_with(&probe_redis_master_ops, NULL,
                    LIT("+PONG\r\n+OK\r\n"), "unexpected reply: +OK");
}

Test(probe_redis_master, hostile_lengths_fail_at_once)
{
    struct probe p;

    test_fails_with(&probe_redis_master_ops, NULL,
                    LIT("+PONG\r\n$99999999999999999999999999\r\n"),
                    "too long");
    test_fails_with(&probe_redis_master_ops, NULL,
                    LIT("+PONG\r\n$16385\r\n"), "too long");
    /* Fits the bulk alone but not the input buffer with the PONG. */
    test_fails_with(&probe_redis_master_ops, NULL,
                    LIT("+PONG\r\n$16380\r\n"), "too long");
    cr_assert_eq(test_once(&p, &probe_redis_master_ops, NULL,
                           LIT("+PONG\r\n$16000\r\n")), PROBE_MORE);
}

Test(probe_redis_master, largest_bulk_that_fits_is_judged)
{
    struct probe p;
    uint8_t     *buf;
    size_t       n, body;

    /* "+PONG\r\n" + "$16368\r\n" + body + "\r\n" = PROBE_IN_MAX bytes. */
    body = PROBE_IN_MAX - 7 - 8 - 2;
    buf = test_filled("+PONG\r\n$16367\r\nrole:master\n", 7 + 8 + 12, 'x',
                      PROBE_IN_MAX);
    n = PROBE_IN_MAX;
    cr_assert_eq(body, 16367);
    buf[n - 2] = '\r';
    buf[n - 1] = '\n';
    cr_assert_eq(test_once(&p, &probe_redis_master_ops, NULL, buf, n),
                 PROBE_PASS);
    free(buf);
}

Test(probe_redis_master, garbage_never_passes)
{
    char   buf[512];
    size_t n;

    test_garbage(&probe_redis_master_ops, NULL, NULL, 0, 3);
    test_garbage(&probe_redis_master_ops, NULL, LIT("+PONG\r\n"), 4);
    test_garbage(&probe_redis_master_ops, NULL, LIT("+PONG\r\n$40\r\n"), 5);
    n = test_redis_bulk(buf, sizeof(buf), TEST_INFO_SLAVE);
    test_mutate(&probe_redis_master_ops, NULL, buf, n, 6);
}

/* ---- amqp ------------------------------------------------------------- */

/* A Connection.Start frame as RabbitMQ sends it (shortened), into <out>. */
static size_t
test_amqp_start(uint8_t *out, unsigned cls, unsigned method)
{
    static const uint8_t table[] = {
        7, 'p', 'r', 'o', 'd', 'u', 'c', 't',
        'S', 0, 0, 0, 8, 'R', 'a', 'b', 'b', 'i', 't', 'M', 'Q',
    };
    static const char mechs[] = "AMQPLAIN PLAIN";
    static const char locales[] = "en_US";
    size_t            at, size;

    at = 7;
    out[at++] = (uint8_t)(cls >> 8);
    out[at++] = (uint8_t)cls;
    out[at++] = (uint8_t)(method >> 8);
    out[at++] = (uint8_t)method;
    out[at++] = 0;
    out[at++] = 9;
    out[at++] = 0;
    out[at++] = 0;
    out[at++] = 0;
    out[at++] = sizeof(table);
    memcpy(out + at, table, sizeof(table));
    at += sizeof(table);
    out[at++] = 0;
    out[at++] = 0;
    out[at++] = 0;
    out[at++] = sizeof(mechs) - 1;
    memcpy(out + at, mechs, sizeof(mechs) - 1);
    at += sizeof(mechs) - 1;
    out[at++] = 0;
    out[at++] = 0;
    out[at++] = 0;
    out[at++] = sizeof(locales) - 1;
    memcpy(out + at, locales, sizeof(locales) - 1);
    at += sizeof(locales) - 1;
    size = at - 7;
    out[0] = 1;
    out[1] = 0;
    out[2] = 0;
    out[3] = (uint8_t)(size >> 24);
    out[4] = (uint8_t)(size >> 16);
    out[5] = (uint8_t)(size >> 8);
    out[6] = (uint8_t)size;
    out[at++] = 0xce;
    return at;
}

Test(probe_amqp, sends_the_protocol_header)
{
    struct probe p;

    test_start(&p, &probe_amqp_ops, NULL);
    cr_assert_eq(test_wire.nsent, 8);
    cr_assert(memcmp(test_wire.sent, "AMQP\x00\x00\x09\x01", 8) == 0);
}

Test(probe_amqp, connection_start_passes)
{
    struct probe p;
    uint8_t      buf[256];
    size_t       n;

    n = test_amqp_start(buf, 10, 10);
    cr_assert_eq(test_once(&p, &probe_amqp_ops, NULL, buf, n), PROBE_PASS);
}

Test(probe_amqp, connection_start_split_at_every_byte)
{
    struct probe p;
    uint8_t      buf[256];
    size_t       n;

    n = test_amqp_start(buf, 10, 10);
    cr_assert_eq(test_split(&p, &probe_amqp_ops, NULL, buf, n), PROBE_PASS);
}

Test(probe_amqp, protocol_header_reply_fails_naming_the_version)
{
    struct probe p;

    cr_assert_eq(test_split(&p, &probe_amqp_ops, NULL,
                            LIT("AMQP\x00\x01\x00\x00")), PROBE_FAIL);
    cr_assert_str_eq(p.reason, "amqp version mismatch: server offers "
                     "AMQP 1-0-0 (protocol id 0)");
    test_fails_with(&probe_amqp_ops, NULL, LIT("AMQP\x03\x01\x00\x00"),
                    "server offers AMQP 1-0-0 (protocol id 3)");
    test_fails_with(&probe_amqp_ops, NULL, LIT("AMQP\x01\x01\x08\x00"),
                    "server offers AMQP 1-8-0 (protocol id 1)");
    /* Our own header back: an echo, or a broker that wants it verbatim. */
    test_fails_with(&probe_amqp_ops, NULL, LIT("AMQP\x00\x00\x09\x01"),
                    "amqp protocol header sent back");
    test_fails_with(&probe_amqp_ops, NULL, LIT("AMQX\x00\x01\x00\x00"),
                    "unexpected reply: AMQX");
}

Test(probe_amqp, other_method_fails)
{
    uint8_t buf[256];
    size_t  n;

    n = test_amqp_start(buf, 10, 50);
    test_fails_with(&probe_amqp_ops, NULL, buf, n,
                    "amqp method 10.50 instead of Connection.Start");
    n = test_amqp_start(buf, 20, 10);
    test_fails_with(&probe_amqp_ops, NULL, buf, n, "amqp method 20.10");
}

Test(probe_amqp, missing_frame_end_fails)
{
    uint8_t buf[256];
    size_t  n;

    n = test_amqp_start(buf, 10, 10);
    buf[n - 1] = 0;
    test_fails_with(&probe_amqp_ops, NULL, buf, n, "frame-end");
}

Test(probe_amqp, wrong_frame_type_or_channel_is_unexpected)
{
    uint8_t buf[256];
    size_t  n;

    n = test_amqp_start(buf, 10, 10);
    buf[0] = 8;
    test_fails_with(&probe_amqp_ops, NULL, buf, n,
                    "unexpected reply: \\x08");
    n = test_amqp_start(buf, 10, 10);
    buf[2] = 1;
    test_fails_with(&probe_amqp_ops, NULL, buf, n,
                    "unexpected reply: \\x01\\x00\\x01");
}

Test(probe_amqp, short_or_malformed_payload_fails)
{
    uint8_t buf[256];
    size_t  n;

    test_fails_with(&probe_amqp_ops, NULL,
                    LIT("\x01\x00\x00\x00\x00\x00\x02\x00\x0a\xce"),
                    "unexpected reply");
    test_fails_with(&probe_amqp_ops, NULL,
                    LIT("\x01\x00\x00\x00\x00\x00\x04\x00\x0a\x00\x0a\xce"),
                    "malformed");
    /* The server-properties table claims more than the frame holds. */
    n = test_amqp_start(buf, 10, 10);
    buf[7 + 6] = 0x7f;
    test_fails_with(&probe_amqp_ops, NULL, buf, n, "malformed");
    n = test_amqp_start(buf, 10, 10);
    buf[7 + 6 + 3] = 0xff;
    test_fails_with(&probe_amqp_ops, NULL, buf, n, "malformed");
}

Test(probe_amqp, huge_frame_fails_at_once)
{
    test_fails_with(&probe_amqp_ops, NULL,
                    LIT("\x01\x00\x00\xff\xff\xff\xff"), "too large");
    test_fails_with(&probe_amqp_ops, NULL,
                    LIT("\x01\x00\x00\x00\x00\x40\x00"), "too large");
}

Test(probe_amqp, echo_server_fails)
{
    test_fails_with(&probe_amqp_ops, NULL, LIT("AMQP\x00\x00\x09\x01"),
                    "not an AMQP 0-9-1 broker");
}

Test(probe_amqp, garbage_never_passes)
{
    uint8_t buf[256];
    size_t  n;

    test_garbage(&probe_amqp_ops, NULL, NULL, 0, 7);
    test_garbage(&probe_amqp_ops, NULL, LIT("\x01\x00\x00\x00\x00\x00"), 8);
    n = test_amqp_start(buf, 10, 10);
    test_mutate(&probe_amqp_ops, NULL, buf, n, 9);
}

/* ---- mqtt ------------------------------------------------------------- */

Test(probe_mqtt, connect_is_mqtt_3_1_1_with_clean_session)
{
    static const uint8_t want[] = {
        0x10, 22, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 10,
        0, 10, 'm', 'q', 'l', 'b', '-', 'c', 'h', 'e', 'c', 'k',
    };
    struct probe p;

    test_start(&p, &probe_mqtt_ops, NULL);
    cr_assert_eq(test_wire.nsent, sizeof(want));
    cr_assert(memcmp(test_wire.sent, want, sizeof(want)) == 0);
}

Test(probe_mqtt, connect_carries_the_client_id)
{
    struct probe_params pp = { .client_id = "mqlb-check-4242" };
    struct probe        p;

    test_start(&p, &probe_mqtt_ops, &pp);
    cr_assert_eq(test_wire.nsent, 2 + 12 + 15);
    cr_assert_eq(test_wire.sent[1], 12 + 15);
    cr_assert_eq(test_wire.sent[13], 15);
    cr_assert(memcmp(test_wire.sent + 14, "mqlb-check-4242", 15) == 0);
}

Test(probe_mqtt, long_client_id_gets_a_two_byte_length)
{
    struct probe_params pp;
    struct probe        p;
    char                id[1000];
    size_t              rem;

    memset(id, 'c', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    pp = (struct probe_params){ .client_id = id };
    test_start(&p, &probe_mqtt_ops, &pp);
    cr_assert(test_wire.nsent <= PROBE_OUT_MAX);
    cr_assert(test_wire.sent[1] & 0x80);
    rem = (size_t)(test_wire.sent[1] & 0x7f) + (size_t)test_wire.sent[2] * 128;
    cr_assert_eq(rem + 3, test_wire.nsent);
    cr_assert_eq((size_t)test_wire.sent[13] << 8 | test_wire.sent[14],
                 test_wire.nsent - 15);
}

Test(probe_mqtt, connack_zero_passes_and_disconnects)
{
    struct probe p;

    cr_assert_eq(test_split(&p, &probe_mqtt_ops, NULL,
                            LIT("\x20\x02\x00\x00")), PROBE_PASS);
    cr_assert_eq(test_wire.nlast, 2);
    cr_assert(memcmp(test_wire.last, "\xe0\x00", 2) == 0);
}

Test(probe_mqtt, session_present_flag_is_accepted)
{
    struct probe p;

    cr_assert_eq(test_once(&p, &probe_mqtt_ops, NULL,
                           LIT("\x20\x02\x01\x00")), PROBE_PASS);
}

Test(probe_mqtt, refused_connack_names_the_code)
{
    static const char *const want[] = {
        NULL,
        "connack refused: 1 (unacceptable protocol version)",
        "connack refused: 2 (identifier rejected)",
        "connack refused: 3 (server unavailable)",
        "connack refused: 4 (bad user name or password)",
        "connack refused: 5 (not authorized)",
        "connack refused: 6 (unknown code)",
    };
    struct probe p;
    uint8_t      buf[4] = { 0x20, 0x02, 0x00, 0x00 };
    unsigned     rc;

    for (rc = 1; rc <= 6; rc++) {
        buf[3] = (uint8_t)rc;
        cr_assert_eq(test_split(&p, &probe_mqtt_ops, NULL, buf, 4),
                     PROBE_FAIL);
        cr_assert_str_eq(p.reason, want[rc]);
        cr_assert_eq(test_wire.nlast, 0, "no DISCONNECT after a refusal");
    }
    buf[3] = 0x87;
    test_fails_with(&probe_mqtt_ops, NULL, buf, 4,
                    "connack refused: 135 (unknown code)");
}

Test(probe_mqtt, malformed_connack_is_unexpected)
{
    test_fails_with(&probe_mqtt_ops, NULL, LIT("\x30\x02\x00\x00"),
                    "unexpected reply: 0");
    test_fails_with(&probe_mqtt_ops, NULL, LIT("\x20\x01\x00"),
                    "unexpected reply:  \\x01");
    test_fails_with(&probe_mqtt_ops, NULL, LIT("\x20\x02\x02\x00"),
                    "unexpected reply:  \\x02\\x02");
    /* An MQTT 5 CONNACK (properties length) is not 3.1.1. */
    test_fails_with(&probe_mqtt_ops, NULL, LIT("\x20\x03\x00\x00\x00"),
                    "unexpected reply:  \\x03");
}

Test(probe_mqtt, echo_server_fails)
{
    struct probe p;
    uint8_t      sent[PROBE_OUT_MAX];
    size_t       n;

    test_start(&p, &probe_mqtt_ops, NULL);
    n = test_wire.nsent;
    memcpy(sent, test_wire.sent, n);
    test_fails_with(&probe_mqtt_ops, NULL, sent, n,
                    "unexpected reply: \\x10");
}

Test(probe_mqtt, garbage_never_passes)
{
    test_garbage(&probe_mqtt_ops, NULL, NULL, 0, 10);
    /* No prefix: after 0x20 0x02, two random bytes may well pass. */
    test_mutate(&probe_mqtt_ops, NULL, LIT("\x20\x02\x00\x00"), 12);
}

/* ---- nats ------------------------------------------------------------- */

#define TEST_NATS_INFO \
    "INFO {\"server_id\":\"NCP5ZH5M\",\"version\":\"2.9.10\",\"proto\":1," \
    "\"host\":\"127.0.0.1\",\"port\":4222,\"headers\":true," \
    "\"max_payload\":1048576,\"client_id\":4} \r\n"
#define TEST_NATS_LDM \
    "INFO {\"server_id\":\"NCP5ZH5M\",\"ldm\":true,\"proto\":1} \r\n"

Test(probe_nats, waits_for_info_before_ping)
{
    struct probe p;

    test_start(&p, &probe_nats_ops, NULL);
    cr_assert_eq(test_wire.nsent, 0);
    cr_assert_eq(test_judge(&p, LIT(TEST_NATS_INFO)), PROBE_MORE);
    cr_assert_eq(test_wire.nlast, 6);
    cr_assert(memcmp(test_wire.last, "PING\r\n", 6) == 0);
    cr_assert_eq(test_judge(&p, LIT(TEST_NATS_INFO "PONG\r\n")), PROBE_PASS);
    cr_assert(!p.drain);
}

Test(probe_nats, info_pong_split_at_every_byte)
{
    struct probe p;

    cr_assert_eq(test_split(&p, &probe_nats_ops, NULL,
                            LIT(TEST_NATS_INFO "PONG\r\n")), PROBE_PASS);
    cr_assert(!p.drain);
}

Test(probe_nats, lame_duck_info_drains)
{
    struct probe p;

    cr_assert_eq(test_split(&p, &probe_nats_ops, NULL,
                            LIT(TEST_NATS_LDM "PONG\r\n")), PROBE_PASS);
    cr_assert(p.drain);
    cr_assert_eq(test_once(&p, &probe_nats_ops, NULL,
                           LIT("INFO {\"a\":1, \"ldm\" :\ttrue}\r\nPONG\r\n")),
                 PROBE_PASS);
    cr_assert(p.drain);
    cr_assert_eq(test_once(&p, &probe_nats_ops, NULL,
                           LIT("INFO {\"ldm\":false}\r\nPONG\r\n")),
                 PROBE_PASS);
    cr_assert(!p.drain);
    cr_assert_eq(test_once(&p, &probe_nats_ops, NULL,
                           LIT("INFO {\"name\":\"ldm\"}\r\nPONG\r\n")),
                 PROBE_PASS);
    cr_assert(!p.drain);
    cr_assert_eq(test_once(&p, &probe_nats_ops, NULL,
                           LIT("INFO {\"name\":\"ldm\",\"ldm\":true}\r\n"
                               "PONG\r\n")), PROBE_PASS);
    cr_assert(p.drain);
}

Test(probe_nats, lame_duck_update_after_ping_drains)
{
    struct probe p;

    cr_assert_eq(test_split(&p, &probe_nats_ops, NULL,
                            LIT(TEST_NATS_INFO "+OK\r\n" TEST_NATS_LDM
                                "PONG\r\n")), PROBE_PASS);
    cr_assert(p.drain);
}

/* The parser nats_watch.c reads pushed INFO lines with (no line end). */
static bool
test_info_line(const char *line, size_t len, bool *ldm)
{
    return probe_nats_info_line((const uint8_t *)line, len, ldm);
}

Test(probe_nats, info_line_says_ldm)
{
    bool ldm = true;

    cr_assert(test_info_line(LIT("INFO {\"proto\":1}"), &ldm));
    cr_assert(!ldm);
    cr_assert(test_info_line(LIT("INFO  {\"ldm\":true} "), &ldm));
    cr_assert(ldm);
    cr_assert(!test_info_line(LIT("INFO"), &ldm));
    cr_assert(!test_info_line(LIT("INFO {"), &ldm));
    cr_assert(!test_info_line(LIT("PING"), &ldm));
    cr_assert(!test_info_line(LIT("INFOX {\"ldm\":true}"), &ldm));
}

Test(probe_nats, server_ping_is_answered)
{
    struct probe p;

    test_start(&p, &probe_nats_ops, NULL);
    cr_assert_eq(test_judge(&p, LIT(TEST_NATS_INFO "PING\r\n")), PROBE_MORE);
    cr_assert_eq(test_wire.nsent, 12);
    cr_assert(memcmp(test_wire.sent, "PING\r\nPONG\r\n", 12) == 0);
    cr_assert_eq(test_judge(&p, LIT(TEST_NATS_INFO "PING\r\nPONG\r\n")),
                 PROBE_PASS);
}

Test(probe_nats, err_fails_with_its_text)
{
    struct probe p;

    cr_assert_eq(test_split(&p, &probe_nats_ops, NULL,
                            LIT(TEST_NATS_INFO
                                "-ERR 'Authorization Violation'\r\n")),
                 PROBE_FAIL);
    cr_assert_str_eq(p.reason, "nats error: ERR 'Authorization Violation'");
    test_fails_with(&probe_nats_ops, NULL,
                    LIT("-ERR 'maximum connections exceeded'\r\n"),
                    "nats error: ERR 'maximum connections exceeded'");
}

Test(probe_nats, other_first_lines_are_unexpected)
{
    test_fails_with(&probe_nats_ops, NULL, LIT("+PONG\r\n"),
                    "unexpected reply: +PONG");
    test_fails_with(&probe_nats_ops, NULL, LIT("INFX {}\r\n"),
                    "unexpected reply: INFX");
    test_fails_with(&probe_nats_ops, NULL, LIT("INFO\r\n"),
                    "unexpected reply: INFO\\r\\n");
    test_fails_with(&probe_nats_ops, NULL, LIT("INFO {\"a\":1\r\n"),
                    "unexpected reply: INFO {");
    test_fails_with(&probe_nats_ops, NULL, LIT("INFOS {}\r\n"),
                    "unexpected reply: INFOS");
}

Test(probe_nats, other_lines_after_ping_are_unexpected)
{
    test_fails_with(&probe_nats_ops, NULL,
                    LIT(TEST_NATS_INFO "PONGS\r\n"),
                    "unexpected reply: PONGS\\r\\n");
    test_fails_with(&probe_nats_ops, NULL,
                    LIT(TEST_NATS_INFO "MSG a 1 2\r\n"),
                    "unexpected reply: MSG a 1 2");
    test_fails_with(&probe_nats_ops, NULL,
                    LIT(TEST_NATS_INFO "\r\n"),
                    "unexpected reply: \\r\\n");
}

Test(probe_nats, echo_server_times_out_rather_than_passing)
{
    struct probe p;

    /* An echo server says nothing first; the checker's timeout ends it. */
    test_start(&p, &probe_nats_ops, NULL);
    cr_assert_eq(test_wire.nsent, 0);
}

Test(probe_nats, endless_info_fails)
{
    struct probe p;
    uint8_t     *buf;

    buf = test_filled("INFO {", 6, ' ', PROBE_IN_MAX);
    test_start(&p, &probe_nats_ops, NULL);
    cr_assert_eq(test_judge(&p, buf, PROBE_IN_MAX - 1), PROBE_MORE);
    cr_assert_eq(test_judge(&p, buf, PROBE_IN_MAX), PROBE_FAIL);
    cr_assert(strstr(p.reason, "too long") != NULL);
    free(buf);
}

Test(probe_nats, garbage_never_passes)
{
    test_garbage(&probe_nats_ops, NULL, NULL, 0, 13);
    test_garbage(&probe_nats_ops, NULL, LIT(TEST_NATS_INFO), 14);
    test_mutate(&probe_nats_ops, NULL, LIT(TEST_NATS_LDM "PONG\r\n"), 15);
}

/* ---- kafka ------------------------------------------------------------ */

/*
 * An ApiVersions v0 reply for the correlation id <corr> with <error> and
 * <count> entries, into <out>.
 */
static size_t
test_kafka_reply(uint8_t *out, uint32_t corr, uint16_t error, unsigned count)
{
    size_t   at, size;
    unsigned i;

    size = 10 + 6 * (size_t)count;
    out[0] = (uint8_t)(size >> 24);
    out[1] = (uint8_t)(size >> 16);
    out[2] = (uint8_t)(size >> 8);
    out[3] = (uint8_t)size;
    out[4] = (uint8_t)(corr >> 24);
    out[5] = (uint8_t)(corr >> 16);
    out[6] = (uint8_t)(corr >> 8);
    out[7] = (uint8_t)corr;
    out[8] = (uint8_t)(error >> 8);
    out[9] = (uint8_t)error;
    out[10] = 0;
    out[11] = 0;
    out[12] = (uint8_t)(count >> 8);
    out[13] = (uint8_t)count;
    at = 14;
    for (i = 0; i < count; i++) {
        out[at++] = 0;
        out[at++] = (uint8_t)i;
        out[at++] = 0;
        out[at++] = 0;
        out[at++] = 0;
        out[at++] = (uint8_t)(i % 4 + 1);
    }
    return at;
}

/* The correlation id the probe put in its request. */
static uint32_t
test_kafka_corr(void)
{
    struct probe p;

    test_start(&p, &probe_kafka_ops, NULL);
    cr_assert(p.corr_id != 0);
    return p.corr_id;
}

Test(probe_kafka, sends_api_versions_v0)
{
    static const uint8_t want[] = {
        0, 0, 0, 14, 0, 18, 0, 0, 0x6d, 0x71, 0x6c, 0x62,
        0, 4, 'm', 'q', 'l', 'b',
    };
    struct probe p;

    test_start(&p, &probe_kafka_ops, NULL);
    cr_assert_eq(test_wire.nsent, sizeof(want));
    cr_assert(memcmp(test_wire.sent, want, sizeof(want)) == 0);
    cr_assert_eq(p.corr_id, 0x6d716c62u);
}

Test(probe_kafka, good_reply_passes)
{
    struct probe p;
    uint8_t      buf[512];
    size_t       n;

    n = test_kafka_reply(buf, test_kafka_corr(), 0, 20);
    cr_assert_eq(test_once(&p, &probe_kafka_ops, NULL, buf, n), PROBE_PASS);
    n = test_kafka_reply(buf, test_kafka_corr(), 0, 0);
    cr_assert_eq(test_once(&p, &probe_kafka_ops, NULL, buf, n), PROBE_PASS);
}

Test(probe_kafka, good_reply_split_at_every_byte)
{
    struct probe p;
    uint8_t      buf[512];
    size_t       n;

    n = test_kafka_reply(buf, test_kafka_corr(), 0, 5);
    cr_assert_eq(test_split(&p, &probe_kafka_ops, NULL, buf, n), PROBE_PASS);
}

Test(probe_kafka, error_code_fails)
{
    struct probe p;
    uint8_t      buf[512];
    size_t       n;

    n = test_kafka_reply(buf, test_kafka_corr(), 35, 3);
    cr_assert_eq(test_split(&p, &probe_kafka_ops, NULL, buf, n), PROBE_FAIL);
    cr_assert_str_eq(p.reason, "kafka error code 35");
    n = test_kafka_reply(buf, test_kafka_corr(), 0xffff, 0);
    test_fails_with(&probe_kafka_ops, NULL, buf, n, "kafka error code -1");
}

Test(probe_kafka, wrong_correlation_id_fails_early)
{
    struct probe p;
    uint8_t      buf[512];

    (void)test_kafka_reply(buf, test_kafka_corr() + 1, 0, 3);
    test_start(&p, &probe_kafka_ops, NULL);
    cr_assert_eq(test_judge(&p, buf, 7), PROBE_MORE);
    cr_assert_eq(test_judge(&p, buf, 8), PROBE_FAIL);
    cr_assert(strstr(p.reason, "unexpected reply: \\x00\\x00\\x00\\x1c")
              != NULL, "%s", p.reason);
}

Test(probe_kafka, inconsistent_sizes_fail)
{
    uint8_t buf[512];
    size_t  n;

    /* Count says 4 entries, frame holds 3. */
    n = test_kafka_reply(buf, test_kafka_corr(), 0, 3);
    buf[13] = 4;
    test_fails_with(&probe_kafka_ops, NULL, buf, n, "malformed");
    /* Count says 2 entries, frame holds 3. */
    buf[13] = 2;
    test_fails_with(&probe_kafka_ops, NULL, buf, n, "malformed");
    /* A count that overflows any multiplication. */
    buf[10] = 0xff;
    buf[11] = 0xff;
    buf[12] = 0xff;
    buf[13] = 0xff;
    test_fails_with(&probe_kafka_ops, NULL, buf, n, "malformed");
    buf[10] = 0x2a;
    test_fails_with(&probe_kafka_ops, NULL, buf, n, "malformed");
    /* A frame too short to hold the count. */
    n = test_kafka_reply(buf, test_kafka_corr(), 0, 0);
    buf[3] = 8;
    test_fails_with(&probe_kafka_ops, NULL, buf, 12, "unexpected reply");
    buf[3] = 5;
    test_fails_with(&probe_kafka_ops, NULL, buf, 9, "unexpected reply");
}

Test(probe_kafka, hostile_size_fails_at_once)
{
    test_fails_with(&probe_kafka_ops, NULL, LIT("\xff\xff\xff\xff"),
                    "too large");
    test_fails_with(&probe_kafka_ops, NULL, LIT("\x00\x00\x40\x00"),
                    "too large");
    test_fails_with(&probe_kafka_ops, NULL, LIT("\x7f\x00\x00\x00"),
                    "too large");
}

Test(probe_kafka, largest_reply_that_fits_is_judged)
{
    struct probe p;
    uint8_t     *buf;
    size_t       n, count;

    count = (PROBE_IN_MAX - 14) / 6;
    buf = calloc(1, PROBE_IN_MAX);
    cr_assert(buf != NULL);
    n = 14 + 6 * count;
    test_kafka_reply(buf, test_kafka_corr(), 0, 0);
    buf[0] = (uint8_t)((n - 4) >> 24);
    buf[1] = (uint8_t)((n - 4) >> 16);
    buf[2] = (uint8_t)((n - 4) >> 8);
    buf[3] = (uint8_t)(n - 4);
    buf[12] = (uint8_t)(count >> 8);
    buf[13] = (uint8_t)count;
    cr_assert_eq(test_once(&p, &probe_kafka_ops, NULL, buf, n), PROBE_PASS);
    free(buf);
}

Test(probe_kafka, echo_server_fails)
{
    struct probe p;
    uint8_t      sent[PROBE_OUT_MAX];
    size_t       n;

    test_start(&p, &probe_kafka_ops, NULL);
    n = test_wire.nsent;
    memcpy(sent, test_wire.sent, n);
    test_fails_with(&probe_kafka_ops, NULL, sent, n, "unexpected reply: ");
}

Test(probe_kafka, garbage_never_passes)
{
    uint8_t buf[512];
    size_t  n;

    test_garbage(&probe_kafka_ops, NULL, NULL, 0, 16);
    n = test_kafka_reply(buf, test_kafka_corr(), 0, 0);
    /* Our correlation id after a plausible size: the rest is random. */
    buf[2] = 0;
    buf[3] = 40;
    test_garbage(&probe_kafka_ops, NULL, buf, 8, 17);
    n = test_kafka_reply(buf, test_kafka_corr(), 0, 7);
    test_mutate(&probe_kafka_ops, NULL, buf, n, 18);
}

/* ---- http ------------------------------------------------------------- */

Test(probe_http, sends_get_with_host)
{
    static const char want[] = "GET /healthz HTTP/1.1\r\n"
                               "Host: 127.0.0.1:8080\r\n"
                               "User-Agent: mqlb-check\r\n"
                               "Connection: close\r\n\r\n";
    struct probe_params pp = { .path = "/healthz", .host = "127.0.0.1:8080" };
    struct probe        p;

    test_start(&p, &probe_http_ops, &pp);
    cr_assert_eq(test_wire.nsent, sizeof(want) - 1);
    cr_assert(memcmp(test_wire.sent, want, sizeof(want) - 1) == 0);
}

Test(probe_http, defaults_and_encoding)
{
    static const char want[] = "GET / HTTP/1.1\r\nHost: localhost\r\n";
    static const char enc[] = "GET /a%20b%0D%0A HTTP/1.1\r\n";
    struct probe_params pp = { 0 };
    struct probe        p;

    test_start(&p, &probe_http_ops, NULL);
    cr_assert(memcmp(test_wire.sent, want, sizeof(want) - 1) == 0);
    pp.path = "/a b\r\n";
    test_start(&p, &probe_http_ops, &pp);
    cr_assert(memcmp(test_wire.sent, enc, sizeof(enc) - 1) == 0);
}

Test(probe_http, too_long_request_fails)
{
    struct probe_params pp = { 0 };
    struct probe        p;
    char                path[PROBE_OUT_MAX];

    memset(path, 'a', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    pp.path = path;
    test_start(&p, &probe_http_ops, &pp);
    cr_assert_eq(test_wire.nsent, 0);
    cr_assert_eq(test_judge(&p, LIT("HTTP/1.1 200 OK\r\n")), PROBE_FAIL);
    cr_assert(strstr(p.reason, "too long") != NULL);
}

Test(probe_http, success_statuses_pass)
{
    struct probe p;

    cr_assert_eq(test_once(&p, &probe_http_ops, NULL,
                           LIT("HTTP/1.1 200 OK\r\n\r\n")), PROBE_PASS);
    cr_assert_eq(test_once(&p, &probe_http_ops, NULL,
                           LIT("HTTP/1.1 204 No Content\r\n")), PROBE_PASS);
    cr_assert_eq(test_once(&p, &probe_http_ops, NULL,
                           LIT("HTTP/1.0 301 Moved\r\n")), PROBE_PASS);
    cr_assert_eq(test_once(&p, &probe_http_ops, NULL,
                           LIT("HTTP/1.1 399\r\n")), PROBE_PASS);
}

Test(probe_http, status_line_split_at_every_byte)
{
    struct probe p;

    /* The verdict needs the byte after the code, nothing more. */
    cr_assert_eq(test_split(&p, &probe_http_ops, NULL,
                            LIT("HTTP/1.1 200 ")), PROBE_PASS);
    cr_assert_eq(test_split(&p, &probe_http_ops, NULL,
                            LIT("HTTP/1.1 503 ")), PROBE_FAIL);
    cr_assert_str_eq(p.reason, "http status 503");
}

Test(probe_http, error_statuses_fail)
{
    test_fails_with(&probe_http_ops, NULL, LIT("HTTP/1.1 404 Not Found\r\n"),
                    "http status 404");
    test_fails_with(&probe_http_ops, NULL, LIT("HTTP/1.1 500 Oops\r\n"),
                    "http status 500");
    test_fails_with(&probe_http_ops, NULL, LIT("HTTP/1.1 100 Continue\r\n"),
                    "http status 100");
    test_fails_with(&probe_http_ops, NULL, LIT("HTTP/1.1 199\r\n"),
                    "http status 199");
    test_fails_with(&probe_http_ops, NULL, LIT("HTTP/1.1 400\r\n"),
                    "http status 400");
}

Test(probe_http, non_http_is_unexpected)
{
    test_fails_with(&probe_http_ops, NULL, LIT("SSH-2.0-OpenSSH_9.2\r\n"),
                    "unexpected reply: SSH-2.0");
    test_fails_with(&probe_http_ops, NULL, LIT("HTTP/2 200\r\n"),
                    "unexpected reply: HTTP/2");
    test_fails_with(&probe_http_ops, NULL, LIT("HTTP/1.1 2000\r\n"),
                    "unexpected reply");
    test_fails_with(&probe_http_ops, NULL, LIT("HTTP/1.1 20x\r\n"),
                    "unexpected reply");
    test_fails_with(&probe_http_ops, NULL, LIT("HTTP/1.x 200\r\n"),
                    "unexpected reply");
    test_fails_with(&probe_http_ops, NULL, LIT("HTTP/1.1  200\r\n"),
                    "unexpected reply");
}

Test(probe_http, echo_server_fails)
{
    test_fails_with(&probe_http_ops, NULL, LIT("GET / HTTP/1.1\r\n"),
                    "unexpected reply: GET / HTTP/1.1\\r\\n");
}

Test(probe_http, garbage_never_passes)
{
    test_garbage(&probe_http_ops, NULL, NULL, 0, 19);
    test_garbage(&probe_http_ops, NULL, LIT("HTTP/1.1 "), 20);
    test_mutate(&probe_http_ops, NULL, LIT("HTTP/1.1 200 OK\r\n"), 21);
}

/* ---- send-expect ------------------------------------------------------ */

Test(probe_send_expect, sends_the_bytes)
{
    struct probe_params pp = { .send = "ruok\x00\xff", .send_len = 6 };
    struct probe        p;

    test_start(&p, &probe_send_expect_ops, &pp);
    cr_assert_eq(test_wire.nsent, 6);
    cr_assert(memcmp(test_wire.sent, "ruok\x00\xff", 6) == 0);
}

Test(probe_send_expect, expected_prefix_passes)
{
    struct probe_params pp = { .send = "ruok", .send_len = 4,
                               .expect = "imok\x00", .expect_len = 5 };
    struct probe        p;

    cr_assert_eq(test_split(&p, &probe_send_expect_ops, &pp,
                            LIT("imok\x00")), PROBE_PASS);
    cr_assert_eq(test_once(&p, &probe_send_expect_ops, &pp,
                           LIT("imok\x00 and more")), PROBE_PASS);
}

Test(probe_send_expect, mismatch_is_unexpected)
{
    struct probe_params pp = { .expect = "imok", .expect_len = 4 };

    test_fails_with(&probe_send_expect_ops, &pp, LIT("imno"),
                    "unexpected reply: imno");
    test_fails_with(&probe_send_expect_ops, &pp, LIT("x"),
                    "unexpected reply: x");
}

Test(probe_send_expect, empty_expect_passes_on_any_reply)
{
    struct probe_params pp = { .send = "hi", .send_len = 2 };
    struct probe        p;

    cr_assert_eq(test_once(&p, &probe_send_expect_ops, &pp, LIT("x")),
                 PROBE_PASS);
    cr_assert_eq(test_once(&p, &probe_send_expect_ops, NULL, LIT("x")),
                 PROBE_PASS);
}

Test(probe_send_expect, too_long_send_fails)
{
    struct probe_params pp = { 0 };
    struct probe        p;
    char                big[PROBE_OUT_MAX + 1];

    memset(big, 'a', sizeof(big));
    pp.send = big;
    pp.send_len = sizeof(big);
    test_start(&p, &probe_send_expect_ops, &pp);
    cr_assert_eq(test_wire.nsent, 0);
    cr_assert_eq(test_judge(&p, LIT("a")), PROBE_FAIL);
    cr_assert(strstr(p.reason, "longer than") != NULL);
    pp.send_len = PROBE_OUT_MAX;
    test_start(&p, &probe_send_expect_ops, &pp);
    cr_assert_eq(test_wire.nsent, PROBE_OUT_MAX);
}

Test(probe_send_expect, garbage_never_passes)
{
    struct probe_params pp = { .send = "PING\r\n", .send_len = 6,
                               .expect = "+PONG ready\r\n",
                               .expect_len = 13 };

    test_garbage(&probe_send_expect_ops, &pp, NULL, 0, 22);
    test_garbage(&probe_send_expect_ops, &pp, LIT("+PONG"), 23);
    test_mutate(&probe_send_expect_ops, &pp, LIT("+PONG ready\r\n"), 24);
}

/* ---- credentials: check_user, check_password, check_vhost ------------- */

Test(probe_auth, has_auth_needs_a_user_or_a_password)
{
    struct probe_params none = { 0 }, user = { .user = "u" },
                        pass = { .password = "p" };

    cr_assert(!probe_has_auth(NULL));
    cr_assert(!probe_has_auth(&none));
    cr_assert(probe_has_auth(&user));
    cr_assert(probe_has_auth(&pass));
}

Test(probe_redis_auth, password_alone_sends_auth_then_ping)
{
    static const char want[] = "*2\r\n$4\r\nAUTH\r\n$6\r\ns3cr3t\r\nPING\r\n";
    struct probe_params pp = { .password = "s3cr3t" };
    struct probe        p;

    test_start(&p, &probe_redis_ops, &pp);
    cr_assert_eq(test_wire.nsent, sizeof(want) - 1);
    cr_assert(memcmp(test_wire.sent, want, sizeof(want) - 1) == 0);
    cr_assert_eq(test_split(&p, &probe_redis_ops, &pp,
                            LIT("+OK\r\n+PONG\r\n")), PROBE_PASS);
}

Test(probe_redis_auth, acl_user_sends_auth_user_password)
{
    static const char want[] =
        "*3\r\n$4\r\nAUTH\r\n$7\r\nchecker\r\n$4\r\na b\n\r\nPING\r\n";
    struct probe_params pp = { .user = "checker", .password = "a b\n" };
    struct probe        p;

    test_start(&p, &probe_redis_ops, &pp);
    cr_assert_eq(test_wire.nsent, sizeof(want) - 1);
    cr_assert(memcmp(test_wire.sent, want, sizeof(want) - 1) == 0);
}

Test(probe_redis_auth, wrong_password_is_a_refused_login)
{
    struct probe_params pp = { .user = "checker", .password = "nope" };
    struct probe        p;

    cr_assert_eq(test_split(&p, &probe_redis_ops, &pp,
                            LIT("-WRONGPASS invalid username-password pair "
                                "or user is disabled.\r\n")), PROBE_FAIL);
    cr_assert_str_eq(p.reason, "authentication refused: WRONGPASS invalid "
                     "username-password pair or user is disabled.");
    /* A server without requirepass refuses AUTH as well. */
    test_fails_with(&probe_redis_master_ops, &pp,
                    LIT("-ERR AUTH <password> called without any password "
                        "configured for the default user.\r\n"),
                    "authentication refused: ERR AUTH");
    test_fails_with(&probe_redis_ops, &pp, LIT("+PONG\r\n"),
                    "unexpected reply: +PONG");
    test_fails_with(&probe_redis_ops, &pp, LIT("$3\r\n"),
                    "unexpected reply");
}

Test(probe_redis_auth, master_logs_in_then_reads_the_role)
{
    static const char info[] = "# Replication\r\nrole:master\r\n";
    struct probe_params pp = { .password = "x" };
    struct probe        p;
    char                buf[256];
    int                 n;

    n = snprintf(buf, sizeof(buf), "+OK\r\n+PONG\r\n$%zu\r\n%s\r\n",
                 sizeof(info) - 1, info);
    cr_assert_eq(test_split(&p, &probe_redis_master_ops, &pp, buf,
                            (size_t)n), PROBE_PASS);
    cr_assert(memcmp(test_wire.sent, "*2\r\n$4\r\nAUTH\r\n", 14) == 0);
    test_garbage(&probe_redis_master_ops, &pp, LIT("+OK\r\n"), 31);
}

Test(probe_mqtt_auth, connect_carries_user_and_password)
{
    static const uint8_t want[] = {
        0x10, 10 + 12 + 7 + 4, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xc2, 0, 10,
        0, 10, 'm', 'q', 'l', 'b', '-', 'c', 'h', 'e', 'c', 'k',
        0, 5, 'a', 'l', 'i', 'c', 'e', 0, 2, 'p', 'w',
    };
    struct probe_params pp = { .user = "alice", .password = "pw" };
    struct probe        p;

    test_start(&p, &probe_mqtt_ops, &pp);
    cr_assert_eq(test_wire.nsent, sizeof(want));
    cr_assert(memcmp(test_wire.sent, want, sizeof(want)) == 0);
}

Test(probe_mqtt_auth, user_alone_sets_only_the_user_flag)
{
    struct probe_params pp = { .user = "bob" };
    struct probe        p;

    test_start(&p, &probe_mqtt_ops, &pp);
    cr_assert_eq(test_wire.sent[9], 0x82);
    cr_assert_eq(test_wire.nsent, 2 + 10 + 12 + 5);
    cr_assert(memcmp(test_wire.sent + 24, "\x00\x03" "bob", 5) == 0);
}

Test(probe_mqtt_auth, refused_login_says_so)
{
    struct probe_params pp = { .user = "alice", .password = "bad" };
    struct probe        p;

    cr_assert_eq(test_split(&p, &probe_mqtt_ops, &pp,
                            LIT("\x20\x02\x00\x05")), PROBE_FAIL);
    cr_assert_str_eq(p.reason, "authentication refused: connack 5 "
                     "(not authorized)");
    test_fails_with(&probe_mqtt_ops, &pp, LIT("\x20\x02\x00\x04"),
                    "authentication refused: connack 4 (bad user name or "
                    "password)");
    /* Other refusals keep their own words. */
    test_fails_with(&probe_mqtt_ops, &pp, LIT("\x20\x02\x00\x03"),
                    "connack refused: 3 (server unavailable)");
    cr_assert_eq(test_once(&p, &probe_mqtt_ops, &pp,
                           LIT("\x20\x02\x00\x00")), PROBE_PASS);
}

#define TEST_NATS_AUTH_INFO \
    "INFO {\"server_id\":\"X\",\"auth_required\":true} \r\n"

Test(probe_nats_auth, connect_with_user_and_pass_goes_before_ping)
{
    static const char want[] =
        "CONNECT {\"verbose\":false,\"pedantic\":false,\"user\":\"u\\\"1\","
        "\"pass\":\"p\\\\\\u000a\"}\r\nPING\r\n";
    struct probe_params pp = { .user = "u\"1", .password = "p\\\n" };
    struct probe        p;

    test_start(&p, &probe_nats_ops, &pp);
    cr_assert_eq(test_wire.nsent, 0);
    cr_assert_eq(test_judge(&p, LIT(TEST_NATS_AUTH_INFO)), PROBE_MORE);
    cr_assert_eq(test_wire.nlast, sizeof(want) - 1, "sent %.*s",
                 (int)test_wire.nlast, test_wire.last);
    cr_assert(memcmp(test_wire.last, want, sizeof(want) - 1) == 0);
    cr_assert_eq(test_split(&p, &probe_nats_ops, &pp,
                            LIT(TEST_NATS_AUTH_INFO "+OK\r\nPONG\r\n")),
                 PROBE_PASS);
}

Test(probe_nats_auth, password_alone_is_an_auth_token)
{
    static const char want[] =
        "CONNECT {\"verbose\":false,\"pedantic\":false,"
        "\"auth_token\":\"t0k\"}\r\nPING\r\n";
    struct probe_params pp = { .password = "t0k" };
    struct probe        p;

    test_start(&p, &probe_nats_ops, &pp);
    cr_assert_eq(test_judge(&p, LIT(TEST_NATS_AUTH_INFO)), PROBE_MORE);
    cr_assert_eq(test_wire.nlast, sizeof(want) - 1);
    cr_assert(memcmp(test_wire.last, want, sizeof(want) - 1) == 0);
}

Test(probe_nats_auth, authorization_violation_is_a_refused_login)
{
    struct probe_params pp = { .user = "u", .password = "bad" };

    test_fails_with(&probe_nats_ops, &pp,
                    LIT(TEST_NATS_AUTH_INFO
                        "-ERR 'Authorization Violation'\r\n"),
                    "authentication refused: nats error: ERR 'Authorization "
                    "Violation'");
    /* Without credentials the same line is only a nats error. */
    test_fails_with(&probe_nats_ops, NULL,
                    LIT(TEST_NATS_AUTH_INFO
                        "-ERR 'Authorization Violation'\r\n"),
                    "nats error: ERR 'Authorization Violation'");
}

Test(probe_nats_auth, huge_credentials_never_overflow)
{
    struct probe_params pp;
    struct probe        p;
    char                user[PROBE_CRED_MAX + 1], pass[PROBE_CRED_MAX + 1];

    /* Control characters take six bytes each in JSON. */
    memset(user, '\x01', sizeof(user) - 1);
    user[sizeof(user) - 1] = '\0';
    memset(pass, '"', sizeof(pass) - 1);
    pass[sizeof(pass) - 1] = '\0';
    pp = (struct probe_params){ .user = user, .password = pass };
    test_start(&p, &probe_nats_ops, &pp);
    cr_assert_eq(test_judge(&p, LIT(TEST_NATS_AUTH_INFO)), PROBE_MORE);
    cr_assert(test_wire.nlast <= PROBE_OUT_MAX);
}

Test(probe_http_auth, basic_authorization_is_sent)
{
    static const char want[] = "GET /api/health HTTP/1.1\r\n"
                               "Host: 127.0.0.1:15672\r\n"
                               "Authorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n"
                               "User-Agent: mqlb-check\r\n"
                               "Connection: close\r\n\r\n";
    struct probe_params pp = { .path = "/api/health",
                               .host = "127.0.0.1:15672",
                               .user = "guest", .password = "guest" };
    struct probe        p;

    test_start(&p, &probe_http_ops, &pp);
    cr_assert_eq(test_wire.nsent, sizeof(want) - 1, "sent %.*s",
                 (int)test_wire.nsent, test_wire.sent);
    cr_assert(memcmp(test_wire.sent, want, sizeof(want) - 1) == 0);
    /* Every padding length: "u:" "u:p" "u:pw" -> dTo= dTpw dTpwdw== */
    pp = (struct probe_params){ .user = "u" };
    test_start(&p, &probe_http_ops, &pp);
    cr_assert(memmem(test_wire.sent, test_wire.nsent, "Basic dTo=\r\n", 12));
    pp.password = "p";
    test_start(&p, &probe_http_ops, &pp);
    cr_assert(memmem(test_wire.sent, test_wire.nsent, "Basic dTpw\r\n", 12));
    pp.password = "pw";
    test_start(&p, &probe_http_ops, &pp);
    cr_assert(memmem(test_wire.sent, test_wire.nsent, "Basic dTpwdw==\r\n",
                     16));
}

Test(probe_http_auth, unauthorized_is_a_refused_login)
{
    struct probe_params pp = { .user = "u", .password = "bad" };
    struct probe        p;

    cr_assert_eq(test_split(&p, &probe_http_ops, &pp, LIT("HTTP/1.0 401 ")),
                 PROBE_FAIL);
    cr_assert_str_eq(p.reason, "authentication refused: http status 401");
    test_fails_with(&probe_http_ops, &pp, LIT("HTTP/1.1 403 Forbidden\r\n"),
                    "authentication refused: http status 403");
    test_fails_with(&probe_http_ops, NULL, LIT("HTTP/1.1 401 No\r\n"),
                    "http status 401");
    cr_assert_eq(test_once(&p, &probe_http_ops, &pp,
                           LIT("HTTP/1.1 200 OK\r\n")), PROBE_PASS);
}

/* ---- amqp login ------------------------------------------------------- */

/* A Connection method frame from the server: <args> after class/method. */
static size_t
test_amqp_method(uint8_t *out, unsigned method, const void *args,
                 size_t alen)
{
    size_t size = 4 + alen;

    out[0] = 1;
    out[1] = 0;
    out[2] = 0;
    out[3] = (uint8_t)(size >> 24);
    out[4] = (uint8_t)(size >> 16);
    out[5] = (uint8_t)(size >> 8);
    out[6] = (uint8_t)size;
    out[7] = 0;
    out[8] = 10;
    out[9] = (uint8_t)(method >> 8);
    out[10] = (uint8_t)method;
    if (alen > 0) {
        memcpy(out + 11, args, alen);
    }
    out[11 + alen] = 0xce;
    return 12 + alen;
}

/* Connection.Close with <code> and <text>, as RabbitMQ sends it. */
static size_t
test_amqp_close(uint8_t *out, unsigned code, const char *text)
{
    uint8_t args[300];
    size_t  n = strlen(text);

    args[0] = (uint8_t)(code >> 8);
    args[1] = (uint8_t)code;
    args[2] = (uint8_t)n;
    memcpy(args + 3, text, n);
    memset(args + 3 + n, 0, 4);     /* class-id, method-id */
    return test_amqp_method(out, 50, args, 3 + n + 4);
}

/* Tune: channel-max 2047, frame-max 131072, heartbeat 60. */
#define TEST_AMQP_TUNE_ARGS "\x07\xff\x00\x02\x00\x00\x00\x3c"

/* The server's side of a whole login: Start, Tune, Open-Ok, Close-Ok. */
static size_t
test_amqp_login(uint8_t *out)
{
    size_t at;

    at = test_amqp_start(out, 10, 10);
    at += test_amqp_method(out + at, 30, TEST_AMQP_TUNE_ARGS, 8);
    at += test_amqp_method(out + at, 41, "\x00", 1);
    at += test_amqp_method(out + at, 51, NULL, 0);
    return at;
}

Test(probe_amqp_login, start_ok_tune_ok_open_close_on_the_wire)
{
    static const uint8_t start_ok_args[] =
        "\x00\x00\x00\x42"
        "\x07" "product" "S" "\x00\x00\x00\x04" "mqlb"
        "\x0c" "capabilities" "F" "\x00\x00\x00\x1f"
        "\x1c" "authentication_failure_close" "t" "\x01"
        "\x05" "PLAIN"
        "\x00\x00\x00\x09" "\x00" "guest" "\x00" "pw"
        "\x05" "en_US";
    struct probe_params pp = { .user = "guest", .password = "pw",
                               .vhost = "/prod" };
    uint8_t      buf[1024], want[1024];
    struct probe p;
    size_t       n, w, at;

    test_start(&p, &probe_amqp_ops, &pp);
    cr_assert(memcmp(test_wire.sent, "AMQP\x00\x00\x09\x01", 8) == 0);
    /* Connection.Start -> Start-Ok */
    n = test_amqp_start(buf, 10, 10);
    cr_assert_eq(test_judge(&p, buf, n), PROBE_MORE);
    w = test_amqp_method(want, 11, start_ok_args, sizeof(start_ok_args) - 1);
    cr_assert_eq(test_wire.nlast, w);
    cr_assert(memcmp(test_wire.last, want, w) == 0);
    /* Tune -> Tune-Ok (the server's limits, no heartbeat), Open /prod */
    n += test_amqp_method(buf + n, 30, TEST_AMQP_TUNE_ARGS, 8);
    cr_assert_eq(test_judge(&p, buf, n), PROBE_MORE);
    w = test_amqp_method(want, 31, "\x07\xff\x00\x02\x00\x00\x00\x00", 8);
    at = w;
    w += test_amqp_method(want + at, 40, "\x05/prod\x00\x00", 8);
    cr_assert_eq(test_wire.nlast, w);
    cr_assert(memcmp(test_wire.last, want, w) == 0);
    /* Open-Ok -> Close 200 */
    n += test_amqp_method(buf + n, 41, "\x00", 1);
    cr_assert_eq(test_judge(&p, buf, n), PROBE_MORE);
    w = test_amqp_method(want, 50, "\x00\xc8\x11health check done"
                         "\x00\x00\x00\x00", 2 + 1 + 17 + 4);
    cr_assert_eq(test_wire.nlast, w);
    cr_assert(memcmp(test_wire.last, want, w) == 0);
    /* Close-Ok: done */
    n += test_amqp_method(buf + n, 51, NULL, 0);
    cr_assert_eq(test_judge(&p, buf, n), PROBE_PASS);
}

Test(probe_amqp_login, whole_login_split_at_every_byte)
{
    struct probe_params pp = { .user = "guest", .password = "guest" };
    uint8_t      buf[1024];
    struct probe p;
    size_t       n;

    n = test_amqp_login(buf);
    cr_assert_eq(test_split(&p, &probe_amqp_ops, &pp, buf, n), PROBE_PASS);
    /* Heartbeats between the methods are skipped. */
    n = test_amqp_start(buf, 10, 10);
    memcpy(buf + n, "\x08\x00\x00\x00\x00\x00\x00\xce", 8);
    n += 8;
    n += test_amqp_method(buf + n, 30, TEST_AMQP_TUNE_ARGS, 8);
    n += test_amqp_method(buf + n, 41, "\x00", 1);
    n += test_amqp_method(buf + n, 51, NULL, 0);
    cr_assert_eq(test_once(&p, &probe_amqp_ops, &pp, buf, n), PROBE_PASS);
}

Test(probe_amqp_login, refused_login_names_the_server_reply)
{
    struct probe_params pp = { .user = "guest", .password = "bad" };
    uint8_t      buf[1024];
    struct probe p;
    size_t       n;

    n = test_amqp_start(buf, 10, 10);
    n += test_amqp_close(buf + n, 403, "ACCESS_REFUSED - Login was refused "
                         "using authentication mechanism PLAIN.");
    cr_assert_eq(test_split(&p, &probe_amqp_ops, &pp, buf, n), PROBE_FAIL);
    cr_assert(strncmp(p.reason, "authentication refused: 403 ACCESS_REFUSED"
                      " - Login was refused", 62) == 0, "%s", p.reason);
}

Test(probe_amqp_login, refused_vhost_names_it)
{
    struct probe_params pp = { .user = "guest", .password = "guest",
                               .vhost = "/nope" };
    uint8_t      buf[1024];
    struct probe p;
    size_t       n;

    n = test_amqp_start(buf, 10, 10);
    n += test_amqp_method(buf + n, 30, TEST_AMQP_TUNE_ARGS, 8);
    n += test_amqp_close(buf + n, 530, "NOT_ALLOWED - vhost /nope not found");
    cr_assert_eq(test_once(&p, &probe_amqp_ops, &pp, buf, n), PROBE_FAIL);
    cr_assert_str_eq(p.reason, "vhost /nope refused: 530 NOT_ALLOWED - "
                     "vhost /nope not found");
}

Test(probe_amqp_login, other_replies_fail)
{
    struct probe_params pp = { .user = "guest", .password = "guest" };
    uint8_t buf[1024], *mech;
    size_t  n;

    /* A server that offers no PLAIN. */
    n = test_amqp_start(buf, 10, 10);
    mech = memmem(buf, n, "AMQPLAIN PLAIN", 14);
    cr_assert(mech != NULL);
    mech[13] = 'X';
    test_fails_with(&probe_amqp_ops, &pp, buf, n, "does not offer PLAIN");
    /* Secure instead of Tune; Open-Ok skipped. */
    n = test_amqp_start(buf, 10, 10);
    n += test_amqp_method(buf + n, 20, "\x00\x00\x00\x00", 4);
    test_fails_with(&probe_amqp_ops, &pp, buf, n, "SASL challenge");
    n = test_amqp_start(buf, 10, 10);
    n += test_amqp_method(buf + n, 30, TEST_AMQP_TUNE_ARGS, 8);
    n += test_amqp_method(buf + n, 51, NULL, 0);
    test_fails_with(&probe_amqp_ops, &pp, buf, n,
                    "amqp method 10.51 instead of Connection.Open-Ok");
    /* A short Tune, a malformed Close. */
    n = test_amqp_start(buf, 10, 10);
    n += test_amqp_method(buf + n, 30, "\x00\x00", 2);
    test_fails_with(&probe_amqp_ops, &pp, buf, n, "Tune is malformed");
    n = test_amqp_start(buf, 10, 10);
    n += test_amqp_method(buf + n, 50, "\x01\x93\x7f", 3);
    test_fails_with(&probe_amqp_ops, &pp, buf, n, "Close is malformed");
}

Test(probe_amqp_login, garbage_after_start_never_passes)
{
    struct probe_params pp = { .user = "guest", .password = "guest" };
    uint8_t buf[1024];
    size_t  n;

    n = test_amqp_start(buf, 10, 10);
    test_garbage(&probe_amqp_ops, &pp, buf, n, 41);
    n = test_amqp_login(buf);
    test_mutate(&probe_amqp_ops, &pp, buf, n, 42);
}
