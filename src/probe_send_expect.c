/*
 * probe_send_expect.c: the send-expect check. Sends check_send and passes
 * when the reply starts with check_expect. An empty check_expect asks
 * only that the service be there: judge passes on whatever it is given,
 * so the first reply byte passes, and a silent service times out.
 */
#include <stdio.h>
#include <string.h>

#include "mqlb/probe.h"

/* Values of p->step. */
enum probe_send_expect_step {
    PROBE_SEND_EXPECT_SENT = 0, /* check_send sent (or empty) */
    PROBE_SEND_EXPECT_TOO_LONG, /* check_send does not fit p->out */
};

static void
probe_send_expect_start(struct probe *p)
{
    const struct probe_params *pp;

    pp = p->params;
    if (pp == NULL || pp->send == NULL || pp->send_len == 0) {
        return;
    }
    if (pp->send_len > sizeof(p->out)) {
        p->step = PROBE_SEND_EXPECT_TOO_LONG;
        return;
    }
    probe_out_append(p, pp->send, pp->send_len);
}

static enum probe_verdict
probe_send_expect_judge(struct probe *p, const uint8_t *buf, size_t len)
{
    const struct probe_params *pp;

    pp = p->params;
    if (p->step == PROBE_SEND_EXPECT_TOO_LONG) {
        return probe_fail(p, "check_send longer than %d bytes",
                          PROBE_OUT_MAX);
    }
    if (pp == NULL || pp->expect == NULL || pp->expect_len == 0) {
        return PROBE_PASS;
    }
    switch (probe_match(buf, len, pp->expect, pp->expect_len)) {
    case PROBE_PASS:
        return PROBE_PASS;
    case PROBE_MORE:
        return probe_more(p, len);
    case PROBE_FAIL:
        break;
    }
    probe_fail_unexpected(p, buf, len);
    return PROBE_FAIL;
}

const struct probe_ops probe_send_expect_ops = {
    .name = "send-expect",
    .start = probe_send_expect_start,
    .judge = probe_send_expect_judge,
};
