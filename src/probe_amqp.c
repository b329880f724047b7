/*
 * probe_amqp.c: the amqp check. Sends the AMQP 0-9-1 protocol header and
 * passes on a well-formed Connection.Start method frame on channel 0. A
 * server that does not speak 0-9-1 answers with the header it wants
 * instead, and the check fails naming that version.
 *
 * With check_user and check_password the check logs in, which proves the
 * node accepts logins, not only that its port is open:
 *
 *   -> header            <- Connection.Start  (PLAIN offered?)
 *   -> Start-Ok (PLAIN)  <- Connection.Tune   (or Close: login refused)
 *   -> Tune-Ok, Open     <- Connection.Open-Ok (or Close: vhost refused)
 *   -> Close             <- Connection.Close-Ok  => pass
 *
 * The client properties ask for "authentication_failure_close", so that
 * RabbitMQ answers a refused login with Connection.Close (403) and its
 * text rather than a bare close.
 */
#include <stdio.h>
#include <string.h>

#include "mqlb/probe.h"

#define PROBE_AMQP_HEADER       "AMQP\x00\x00\x09\x01"
#define PROBE_AMQP_HEADER_LEN   8
#define PROBE_AMQP_FRAME_HEAD   7       /* type, channel, size */
#define PROBE_AMQP_FRAME_METHOD 1
#define PROBE_AMQP_FRAME_HEARTBEAT 8
#define PROBE_AMQP_FRAME_END    0xce
#define PROBE_AMQP_CONNECTION   10      /* class id */
#define PROBE_AMQP_START        10      /* Connection method ids */
#define PROBE_AMQP_START_OK     11
#define PROBE_AMQP_SECURE       20
#define PROBE_AMQP_TUNE         30
#define PROBE_AMQP_TUNE_OK      31
#define PROBE_AMQP_OPEN         40
#define PROBE_AMQP_OPEN_OK      41
#define PROBE_AMQP_CLOSE        50
#define PROBE_AMQP_CLOSE_OK     51
#define PROBE_AMQP_REPLY_SUCCESS 200    /* Connection.Close reply-code */

/* Values of p->step. */
enum probe_amqp_step {
    PROBE_AMQP_WANT_START = 0,  /* header sent */
    PROBE_AMQP_WANT_TUNE,       /* Start-Ok sent */
    PROBE_AMQP_WANT_OPEN_OK,    /* Tune-Ok and Open sent */
    PROBE_AMQP_WANT_CLOSE_OK,   /* Close sent */
};

/* A method frame being written: type, channel 0, size, payload, end. */
struct probe_amqp_frame {
    uint8_t             buf[PROBE_OUT_MAX];
    size_t              len;
    bool                full;           /* something did not fit */
};

static void
probe_amqp_start(struct probe *p)
{
    probe_out_append(p, PROBE_AMQP_HEADER, PROBE_AMQP_HEADER_LEN);
}

static uint32_t
probe_amqp_u32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16
           | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/*
 * Skip a long string or table (uint32 length, then bytes) at <*at> in a
 * payload of <len> bytes; false if it runs past the end.
 */
static bool
probe_amqp_skip_long(const uint8_t *payload, size_t len, size_t *at)
{
    uint32_t n;

    if (len - *at < 4) {
        return false;
    }
    n = probe_amqp_u32(payload + *at);
    *at += 4;
    if (n > len - *at) {
        return false;
    }
    *at += n;
    return true;
}

/*
 * Connection.Start arguments: version-major, version-minor octets, then
 * server-properties (table), mechanisms and locales (long strings). All
 * of them must fit the frame. <*plain> says whether the space-separated
 * mechanisms include PLAIN.
 */
static bool
probe_amqp_start_args(const uint8_t *payload, size_t len, bool *plain)
{
    const uint8_t *mech;
    size_t at, mlen, i, j;

    at = 4 + 2;
    if (len < at || !probe_amqp_skip_long(payload, len, &at)) {
        return false;
    }
    mech = payload + at + 4;
    if (!probe_amqp_skip_long(payload, len, &at)) {
        return false;
    }
    mlen = (size_t)(payload + at - mech);
    *plain = false;
    for (i = 0; i < mlen; i = j + 1) {
        j = i;
        while (j < mlen && mech[j] != ' ') {
            j++;
        }
        if (j - i == 5 && memcmp(mech + i, "PLAIN", 5) == 0) {
            *plain = true;
        }
    }
    return probe_amqp_skip_long(payload, len, &at);
}

/* ---- writing method frames ------------------------------------------ */

static void
probe_amqp_put(struct probe_amqp_frame *f, const void *data, size_t len)
{
    if (len > sizeof(f->buf) - f->len) {
        f->full = true;
        return;
    }
    memcpy(f->buf + f->len, data, len);
    f->len += len;
}

static void
probe_amqp_put_u8(struct probe_amqp_frame *f, unsigned v)
{
    uint8_t b = (uint8_t)v;

    probe_amqp_put(f, &b, 1);
}

static void
probe_amqp_put_u16(struct probe_amqp_frame *f, unsigned v)
{
    uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

    probe_amqp_put(f, b, 2);
}

static void
probe_amqp_put_u32(struct probe_amqp_frame *f, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
                     (uint8_t)(v >> 8), (uint8_t)v };

    probe_amqp_put(f, b, 4);
}

/* A short string: octet length, then at most 255 bytes. */
static void
probe_amqp_put_short(struct probe_amqp_frame *f, const char *s)
{
    size_t n = strlen(s);

    if (n > 255) {
        f->full = true;
        return;
    }
    probe_amqp_put_u8(f, (unsigned)n);
    probe_amqp_put(f, s, n);
}

/* Start a method frame of <method> in class Connection. */
static void
probe_amqp_begin(struct probe_amqp_frame *f, unsigned method)
{
    f->len = 0;
    f->full = false;
    probe_amqp_put(f, "\x01\x00\x00\x00\x00\x00\x00", 7);
    probe_amqp_put_u16(f, PROBE_AMQP_CONNECTION);
    probe_amqp_put_u16(f, method);
}

/* Fill in the size, add the frame-end octet and queue the frame. */
static void
probe_amqp_end(struct probe *p, struct probe_amqp_frame *f)
{
    uint32_t size = (uint32_t)(f->len - PROBE_AMQP_FRAME_HEAD);

    probe_amqp_put_u8(f, PROBE_AMQP_FRAME_END);
    if (f->full) {
        return;     /* never a cut frame; the check times out instead */
    }
    f->buf[3] = (uint8_t)(size >> 24);
    f->buf[4] = (uint8_t)(size >> 16);
    f->buf[5] = (uint8_t)(size >> 8);
    f->buf[6] = (uint8_t)size;
    probe_out_append(p, f->buf, f->len);
}

/*
 * Connection.Start-Ok: client properties (product, and the capability
 * that makes a refused login a Connection.Close), PLAIN with
 * "\0user\0password", locale en_US.
 */
static void
probe_amqp_send_start_ok(struct probe *p)
{
    static const char props[] =
        "\x07" "product" "S" "\x00\x00\x00\x04" "mqlb"
        "\x0c" "capabilities" "F" "\x00\x00\x00\x1f"
        "\x1c" "authentication_failure_close" "t" "\x01";
    const char *user = p->params->user != NULL ? p->params->user : "";
    const char *pass = p->params->password != NULL ? p->params->password
                                                   : "";
    struct probe_amqp_frame f;
    size_t ulen = strlen(user), plen = strlen(pass);

    probe_amqp_begin(&f, PROBE_AMQP_START_OK);
    probe_amqp_put_u32(&f, (uint32_t)(sizeof(props) - 1));
    probe_amqp_put(&f, props, sizeof(props) - 1);
    probe_amqp_put_short(&f, "PLAIN");
    probe_amqp_put_u32(&f, (uint32_t)(2 + ulen + plen));
    probe_amqp_put(&f, "", 1);
    probe_amqp_put(&f, user, ulen);
    probe_amqp_put(&f, "", 1);
    probe_amqp_put(&f, pass, plen);
    probe_amqp_put_short(&f, "en_US");
    probe_amqp_end(p, &f);
}

/*
 * Connection.Tune-Ok with the server's channel-max and frame-max and no
 * heartbeat (a check lasts less than one), then Connection.Open of the
 * vhost.
 */
static void
probe_amqp_send_tune_ok_open(struct probe *p, unsigned channel_max,
                             uint32_t frame_max)
{
    const char *vhost = p->params->vhost != NULL ? p->params->vhost : "/";
    struct probe_amqp_frame f;

    probe_amqp_begin(&f, PROBE_AMQP_TUNE_OK);
    probe_amqp_put_u16(&f, channel_max);
    probe_amqp_put_u32(&f, frame_max);
    probe_amqp_put_u16(&f, 0);
    probe_amqp_end(p, &f);

    probe_amqp_begin(&f, PROBE_AMQP_OPEN);
    probe_amqp_put_short(&f, vhost);
    probe_amqp_put_short(&f, "");   /* reserved-1 (capabilities) */
    probe_amqp_put_u8(&f, 0);       /* reserved-2 (insist) */
    probe_amqp_end(p, &f);
}

static void
probe_amqp_send_close(struct probe *p)
{
    struct probe_amqp_frame f;

    probe_amqp_begin(&f, PROBE_AMQP_CLOSE);
    probe_amqp_put_u16(&f, PROBE_AMQP_REPLY_SUCCESS);
    probe_amqp_put_short(&f, "health check done");
    probe_amqp_put_u16(&f, 0);
    probe_amqp_put_u16(&f, 0);
    probe_amqp_end(p, &f);
}

/* ---- reading --------------------------------------------------------- */

/*
 * The frame at <buf> (<len> bytes): PROBE_PASS with a method frame's
 * payload and size in <*payload>/<*size> and its whole length in <*used>
 * (a heartbeat frame passes too, with <*payload> NULL); PROBE_MORE while
 * it is incomplete; PROBE_FAIL (reason set) when it cannot be a frame.
 */
static enum probe_verdict
probe_amqp_frame(struct probe *p, const uint8_t *buf, size_t len,
                 const uint8_t **payload, uint32_t *size, size_t *used)
{
    if (len == 0) {
        return PROBE_MORE;
    }
    if (buf[0] != PROBE_AMQP_FRAME_METHOD &&
        buf[0] != PROBE_AMQP_FRAME_HEARTBEAT) {
        goto unexpected;
    }
    if (len < PROBE_AMQP_FRAME_HEAD) {
        return PROBE_MORE;
    }
    if (buf[1] != 0 || buf[2] != 0) {
        goto unexpected;
    }
    *size = probe_amqp_u32(buf + 3);
    if (*size > PROBE_IN_MAX - PROBE_AMQP_FRAME_HEAD - 1) {
        return probe_fail(p, "amqp frame too large (%u bytes)",
                          (unsigned)*size);
    }
    if (len < PROBE_AMQP_FRAME_HEAD + (size_t)*size + 1) {
        return PROBE_MORE;
    }
    if (buf[PROBE_AMQP_FRAME_HEAD + *size] != PROBE_AMQP_FRAME_END) {
        return probe_fail(p, "amqp frame without its frame-end octet");
    }
    *used = PROBE_AMQP_FRAME_HEAD + (size_t)*size + 1;
    if (buf[0] == PROBE_AMQP_FRAME_HEARTBEAT) {
        *payload = NULL;
        return PROBE_PASS;
    }
    if (*size < 4) {
        goto unexpected;
    }
    *payload = buf + PROBE_AMQP_FRAME_HEAD;
    return PROBE_PASS;

unexpected:
    probe_fail_unexpected(p, buf, len);
    return PROBE_FAIL;
}

/*
 * Connection.Close from the server at <payload> (<size> bytes): fail,
 * saying what was refused (the login or the vhost) with the server's
 * reply code and text.
 */
static enum probe_verdict
probe_amqp_closed(struct probe *p, const uint8_t *payload, uint32_t size)
{
    char     text[PROBE_REASON_MAX];
    unsigned code, n;

    if (size < 7 || payload[6] > size - 7) {
        return probe_fail(p, "amqp Connection.Close is malformed");
    }
    n = payload[6];
    code = (unsigned)payload[4] << 8 | payload[5];
    probe_escape(text, sizeof(text), payload + 7, n);
    if (p->step == PROBE_AMQP_WANT_TUNE) {
        return probe_fail(p, PROBE_AUTH_REFUSED ": %u %s", code, text);
    }
    if (p->step == PROBE_AMQP_WANT_OPEN_OK) {
        return probe_fail(p, "vhost %s refused: %u %s",
                          p->params->vhost != NULL ? p->params->vhost : "/",
                          code, text);
    }
    return probe_fail(p, "amqp connection closed by the server: %u %s",
                      code, text);
}

/*
 * After Start-Ok: the frames of the login from p->consumed on, one step
 * at a time (see the top comment).
 */
static enum probe_verdict
probe_amqp_login(struct probe *p, const uint8_t *buf, size_t len)
{
    static const unsigned want[] = {
        [PROBE_AMQP_WANT_TUNE] = PROBE_AMQP_TUNE,
        [PROBE_AMQP_WANT_OPEN_OK] = PROBE_AMQP_OPEN_OK,
        [PROBE_AMQP_WANT_CLOSE_OK] = PROBE_AMQP_CLOSE_OK,
    };
    static const char *const names[] = {
        [PROBE_AMQP_WANT_TUNE] = "Connection.Tune",
        [PROBE_AMQP_WANT_OPEN_OK] = "Connection.Open-Ok",
        [PROBE_AMQP_WANT_CLOSE_OK] = "Connection.Close-Ok",
    };
    enum probe_verdict v;
    const uint8_t *payload;
    uint32_t size;
    size_t used;
    unsigned cls, method;

    while (p->consumed < len) {
        v = probe_amqp_frame(p, buf + p->consumed, len - p->consumed,
                             &payload, &size, &used);
        if (v == PROBE_MORE) {
            break;
        }
        if (v == PROBE_FAIL) {
            return v;
        }
        p->consumed += used;
        if (payload == NULL) {
            continue;   /* a heartbeat */
        }
        cls = (unsigned)payload[0] << 8 | payload[1];
        method = (unsigned)payload[2] << 8 | payload[3];
        if (cls == PROBE_AMQP_CONNECTION && method == PROBE_AMQP_CLOSE) {
            return probe_amqp_closed(p, payload, size);
        }
        if (cls == PROBE_AMQP_CONNECTION && method == PROBE_AMQP_SECURE) {
            return probe_fail(p, PROBE_AUTH_REFUSED ": the server sent a "
                              "SASL challenge after PLAIN");
        }
        if (cls != PROBE_AMQP_CONNECTION || method != want[p->step]) {
            return probe_fail(p, "amqp method %u.%u instead of %s", cls,
                              method, names[p->step]);
        }
        switch (p->step) {
        case PROBE_AMQP_WANT_TUNE:
            if (size < 4 + 8) {
                return probe_fail(p, "amqp Connection.Tune is malformed");
            }
            probe_amqp_send_tune_ok_open(p, (unsigned)payload[4] << 8 |
                                         payload[5],
                                         probe_amqp_u32(payload + 6));
            p->step = PROBE_AMQP_WANT_OPEN_OK;
            break;
        case PROBE_AMQP_WANT_OPEN_OK:
            probe_amqp_send_close(p);
            p->step = PROBE_AMQP_WANT_CLOSE_OK;
            break;
        default:
            return PROBE_PASS;
        }
    }
    return probe_more(p, len);
}

static enum probe_verdict
probe_amqp_judge(struct probe *p, const uint8_t *buf, size_t len)
{
    enum probe_verdict v;
    const uint8_t *payload;
    uint32_t       size;
    size_t         used;
    unsigned       cls, method;
    bool           plain;

    if (p->step != PROBE_AMQP_WANT_START) {
        return probe_amqp_login(p, buf, len);
    }
    if (len == 0) {
        return PROBE_MORE;
    }
    if (buf[0] == 'A') {
        /* Version mismatch: the server sent the header it speaks. */
        if (probe_match(buf, len, "AMQP", 4) == PROBE_FAIL) {
            goto unexpected;
        }
        if (len < PROBE_AMQP_HEADER_LEN) {
            return probe_more(p, len);
        }
        if (memcmp(buf, PROBE_AMQP_HEADER, PROBE_AMQP_HEADER_LEN) == 0) {
            return probe_fail(p, "amqp protocol header sent back: "
                              "not an AMQP 0-9-1 broker");
        }
        return probe_fail(p, "amqp version mismatch: server offers "
                          "AMQP %u-%u-%u (protocol id %u)",
                          (unsigned)buf[5], (unsigned)buf[6],
                          (unsigned)buf[7], (unsigned)buf[4]);
    }
    if (buf[0] != PROBE_AMQP_FRAME_METHOD) {
        goto unexpected;     /* not even a heartbeat may come first */
    }
    v = probe_amqp_frame(p, buf, len, &payload, &size, &used);
    if (v != PROBE_PASS) {
        return v == PROBE_MORE ? probe_more(p, len) : v;
    }
    cls = (unsigned)payload[0] << 8 | payload[1];
    method = (unsigned)payload[2] << 8 | payload[3];
    if (cls != PROBE_AMQP_CONNECTION || method != PROBE_AMQP_START) {
        return probe_fail(p, "amqp method %u.%u instead of Connection.Start",
                          cls, method);
    }
    if (!probe_amqp_start_args(payload, size, &plain)) {
        return probe_fail(p, "amqp Connection.Start is malformed");
    }
    if (!probe_has_auth(p->params)) {
        return PROBE_PASS;
    }
    if (!plain) {
        return probe_fail(p, "amqp: the server does not offer PLAIN, "
                          "so check_user cannot log in");
    }
    probe_amqp_send_start_ok(p);
    p->consumed = used;
    p->step = PROBE_AMQP_WANT_TUNE;
    return probe_amqp_login(p, buf, len);

unexpected:
    probe_fail_unexpected(p, buf, len);
    return PROBE_FAIL;
}

const struct probe_ops probe_amqp_ops = {
    .name = "amqp",
    .start = probe_amqp_start,
    .judge = probe_amqp_judge,
};
