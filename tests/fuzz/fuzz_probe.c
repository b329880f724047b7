/*
 * fuzz_probe.c: every health-check reply judge, driven as health.c drives
 * it. Input: byte 0 picks the check kind (its top bit: with check_user,
 * check_password and check_vhost, so the login paths run), byte 1 the
 * chunk size (0 = the
 * whole reply in one call), the rest is what the broker sends. The judge
 * is called with the whole buffer received so far, growing by one chunk
 * each time, until it gives a verdict; whatever it queued in p->out is
 * taken (as the checker sends it) before the next call. Each call gets a
 * buffer of exactly that length so that ASan sees any read past it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum config_check fuzz_kinds[] = {
    CHECK_REDIS, CHECK_REDIS_MASTER, CHECK_AMQP, CHECK_MQTT, CHECK_NATS,
    CHECK_KAFKA, CHECK_HTTP, CHECK_SEND_EXPECT,
};

/* What a pool config would give: send-expect bytes, http path, host. */
static const struct probe_params fuzz_params = {
    .send = "ruok\r\n",
    .send_len = 6,
    .expect = "imok",
    .expect_len = 4,
    .path = "/health",
    .host = "127.0.0.1:8080",
    .client_id = "mqlb-check",
};

/* The same with credentials: AUTH, CONNECT fields, the AMQP login. */
static const struct probe_params fuzz_params_auth = {
    .send = "ruok\r\n",
    .send_len = 6,
    .expect = "imok",
    .expect_len = 4,
    .path = "/health",
    .host = "127.0.0.1:8080",
    .client_id = "mqlb-check",
    .user = "mqlb\"health",
    .password = "s3cr\\3t\n",
    .vhost = "/prod",
};

static void
fuzz_reason_ok(const struct probe *p)
{
    if (strnlen(p->reason, sizeof(p->reason)) == sizeof(p->reason)) {
        abort();        /* reason must stay NUL-terminated */
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct probe_ops *ops;
    enum probe_verdict v;
    struct probe p;
    size_t step, n, len;
    uint8_t *buf;
    int auth;

    if (size < 2) {
        return 0;
    }
    ops = probe_ops_for(fuzz_kinds[data[0] % (sizeof(fuzz_kinds) / sizeof(fuzz_kinds[0]))]);
    if (ops == NULL) {
        abort();
    }
    step = data[1];
    auth = (data[0] & 0x80) != 0;
    data += 2;
    n = size - 2;
    if (n > PROBE_IN_MAX) {
        n = PROBE_IN_MAX;       /* the checker keeps no more */
    }
    if (step == 0 || step > n) {
        step = n > 0 ? n : 1;
    }

    probe_init(&p, ops, auth ? &fuzz_params_auth : &fuzz_params);
    if (p.outlen > sizeof(p.out)) {
        abort();
    }
    p.outlen = 0;               /* sent */
    v = PROBE_MORE;
    for (len = step; v == PROBE_MORE; len += step) {
        if (len > n) {
            len = n;
        }
        buf = malloc(len > 0 ? len : 1);
        if (buf == NULL) {
            return 0;
        }
        memcpy(buf, data, len);
        v = ops->judge(&p, buf, len);
        if (v != PROBE_MORE && v != PROBE_PASS && v != PROBE_FAIL) {
            abort();
        }
        if (p.outlen > sizeof(p.out) || p.consumed > len) {
            abort();
        }
        fuzz_reason_ok(&p);
        p.outlen = 0;           /* queued for sending */
        if (v == PROBE_MORE && len == n) {
            /* the broker closed: what the checker reports then */
            probe_fail_unexpected(&p, buf, len);
            fuzz_reason_ok(&p);
            free(buf);
            break;
        }
        free(buf);
    }
    return 0;
}
