/*
 * handover.c: takeover frames to and from bytes (see handover.h for the
 * layout and the conversation). Every read is bounds-checked: the
 * decoder meets bytes from another process, and is fuzzed.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/common.h"
#include "mqlb/handover.h"

/* Session direction flags on the wire. */
#define HO_DIR_EOF          0x01
#define HO_DIR_SPLICED      0x02
#define HO_DIR_NOSPLICE     0x04

/* Client address families on the wire. */
#define HO_AF_INET          4
#define HO_AF_INET6         6

/* ---- output ---------------------------------------------------------- */

void
handover_buf_init(struct handover_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = 0;
}

void
handover_buf_deinit(struct handover_buf *b)
{
    mq_free(b->data);
    b->len = 0;
    b->cap = 0;
    b->failed = 0;
}

void
handover_buf_reset(struct handover_buf *b)
{
    b->len = 0;
    b->failed = 0;
}

static void
ho_put(struct handover_buf *b, const void *p, size_t n)
{
    uint8_t *grown;
    size_t cap;

    if (b->failed) {
        return;
    }
    if (b->len + n > b->cap) {
        cap = b->cap > 0 ? b->cap : 256;
        while (cap < b->len + n) {
            cap *= 2;
        }
        grown = realloc(b->data, cap);
        if (grown == NULL) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
}

static void
ho_u8(struct handover_buf *b, uint8_t v)
{
    ho_put(b, &v, 1);
}

static void
ho_u16(struct handover_buf *b, uint16_t v)
{
    uint8_t o[2] = { (uint8_t)(v >> 8), (uint8_t)v };

    ho_put(b, o, sizeof(o));
}

static void
ho_u32(struct handover_buf *b, uint32_t v)
{
    uint8_t o[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
                     (uint8_t)(v >> 8), (uint8_t)v };

    ho_put(b, o, sizeof(o));
}

static void
ho_u64(struct handover_buf *b, uint64_t v)
{
    ho_u32(b, (uint32_t)(v >> 32));
    ho_u32(b, (uint32_t)v);
}

/* A string as u16 length and bytes (no NUL); <max> bounds it. */
static void
ho_str(struct handover_buf *b, const char *s, size_t max)
{
    size_t n = strnlen(s, max);

    if (n >= max) {
        b->failed = 1;      /* the decoder would refuse it */
        return;
    }
    ho_u16(b, (uint16_t)n);
    ho_put(b, s, n);
}

/* Start a frame of <type>; returns where its header starts. */
static size_t
ho_frame_begin(struct handover_buf *b, uint16_t version, uint16_t type)
{
    size_t start = b->len;

    ho_u32(b, HANDOVER_MAGIC);
    ho_u16(b, version);
    ho_u16(b, type);
    ho_u32(b, 0);           /* length, patched by ho_frame_end */
    return start;
}

static int
ho_frame_end(struct handover_buf *b, size_t start)
{
    size_t n;

    if (b->failed) {
        b->len = start;
        return MQ_ERR;
    }
    n = b->len - start - HANDOVER_HEADER_LEN;
    if (n > HANDOVER_MAX_PAYLOAD) {
        b->len = start;
        return MQ_ERR;
    }
    b->data[start + 8] = (uint8_t)(n >> 24);
    b->data[start + 9] = (uint8_t)(n >> 16);
    b->data[start + 10] = (uint8_t)(n >> 8);
    b->data[start + 11] = (uint8_t)n;
    return MQ_OK;
}

/* ---- input ----------------------------------------------------------- */

/* A bounds-checked reader; <bad> sticks once a read went past the end. */
struct ho_in {
    const uint8_t      *p;
    size_t              len;
    size_t              off;
    int                 bad;
};

static const uint8_t *
ho_get(struct ho_in *in, size_t n)
{
    const uint8_t *p;

    if (in->bad || in->len - in->off < n) {
        in->bad = 1;
        return NULL;
    }
    p = in->p + in->off;
    in->off += n;
    return p;
}

static uint8_t
ho_get_u8(struct ho_in *in)
{
    const uint8_t *p = ho_get(in, 1);

    return p != NULL ? p[0] : 0;
}

static uint16_t
ho_get_u16(struct ho_in *in)
{
    const uint8_t *p = ho_get(in, 2);

    return p != NULL ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

static uint32_t
ho_get_u32(struct ho_in *in)
{
    const uint8_t *p = ho_get(in, 4);

    if (p == NULL) {
        return 0;
    }
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t
ho_get_u64(struct ho_in *in)
{
    uint64_t hi = ho_get_u32(in);

    return (hi << 32) | ho_get_u32(in);
}

/* A string into <out> of <cap> bytes: shorter than <cap>, no NUL in it. */
static void
ho_get_str(struct ho_in *in, char *out, size_t cap)
{
    uint16_t n = ho_get_u16(in);
    const uint8_t *p;

    out[0] = '\0';
    if (n >= cap) {
        in->bad = 1;
        return;
    }
    p = ho_get(in, n);
    if (p == NULL || memchr(p, '\0', n) != NULL) {
        in->bad = 1;
        return;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

static void
ho_in_init(struct ho_in *in, const uint8_t *p, size_t len)
{
    in->p = p;
    in->len = len;
    in->off = 0;
    in->bad = 0;
}

/* Trailing bytes are fields of a newer build of the same version. */
static int
ho_in_done(const struct ho_in *in)
{
    return in->bad ? HANDOVER_EMALFORMED : MQ_OK;
}

int
handover_header_decode(const uint8_t *in, struct handover_header *h)
{
    struct ho_in r;

    ho_in_init(&r, in, HANDOVER_HEADER_LEN);
    if (ho_get_u32(&r) != HANDOVER_MAGIC) {
        return HANDOVER_EMAGIC;
    }
    h->version = ho_get_u16(&r);
    h->type = ho_get_u16(&r);
    h->length = ho_get_u32(&r);
    if (h->version != HANDOVER_VERSION) {
        return HANDOVER_EVERSION;
    }
    if (h->length > HANDOVER_MAX_PAYLOAD) {
        return HANDOVER_ETOOBIG;
    }
    return MQ_OK;
}


static void
ho_dir(struct handover_buf *b, const struct handover_dir *d)
{
    ho_u8(b, (uint8_t)((d->eof ? HO_DIR_EOF : 0) |
                       (d->spliced ? HO_DIR_SPLICED : 0) |
                       (d->nosplice ? HO_DIR_NOSPLICE : 0)));
    ho_u64(b, d->nbytes);
    ho_u32(b, d->len);
    ho_put(b, d->data, d->len);
}

static void
ho_get_dir(struct ho_in *in, struct handover_dir *d)
{
    uint8_t flags = ho_get_u8(in);

    d->eof = (flags & HO_DIR_EOF) != 0;
    d->spliced = (flags & HO_DIR_SPLICED) != 0;
    d->nosplice = (flags & HO_DIR_NOSPLICE) != 0;
    d->nbytes = ho_get_u64(in);
    d->len = ho_get_u32(in);
    d->data = ho_get(in, d->len);
    if (d->data == NULL) {
        d->len = 0;
    }
}

/* An IPv4 or IPv6 address and port; anything else fails the frame. */
static void
ho_sockaddr(struct handover_buf *b, const struct sockaddr_storage *ss)
{
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

    if (ss->ss_family == AF_INET) {
        ho_u8(b, HO_AF_INET);
        ho_put(b, &s4->sin_addr, 4);
        ho_put(b, &s4->sin_port, 2);    /* already network order */
    } else if (ss->ss_family == AF_INET6) {
        ho_u8(b, HO_AF_INET6);
        ho_put(b, &s6->sin6_addr, 16);
        ho_put(b, &s6->sin6_port, 2);
    } else {
        b->failed = 1;
    }
}

static void
ho_get_sockaddr(struct ho_in *in, struct sockaddr_storage *ss)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    uint8_t family = ho_get_u8(in);
    const uint8_t *a, *port;

    memset(ss, 0, sizeof(*ss));
    if (family == HO_AF_INET) {
        a = ho_get(in, 4);
        port = ho_get(in, 2);
        if (a != NULL && port != NULL) {
            s4->sin_family = AF_INET;
            memcpy(&s4->sin_addr, a, 4);
            memcpy(&s4->sin_port, port, 2);
        }
    } else if (family == HO_AF_INET6) {
        a = ho_get(in, 16);
        port = ho_get(in, 2);
        if (a != NULL && port != NULL) {
            s6->sin6_family = AF_INET6;
            memcpy(&s6->sin6_addr, a, 16);
            memcpy(&s6->sin6_port, port, 2);
        }
    } else {
        in->bad = 1;
    }
}

/* ---- fields by kind ---------------------------------------------------- */

/* Readers into a field's address, so that a field of another type does
   not compile (see HO_GET below). */
static void
ho_get_u8_to(struct ho_in *in, uint8_t *v)
{
    *v = ho_get_u8(in);
}

static void
ho_get_u32_to(struct ho_in *in, uint32_t *v)
{
    *v = ho_get_u32(in);
}

static void
ho_get_i32_to(struct ho_in *in, int32_t *v)
{
    *v = (int32_t)ho_get_u32(in);   /* two's complement on the wire */
}

static void
ho_get_u64_to(struct ho_in *in, uint64_t *v)
{
    *v = ho_get_u64(in);
}

/*
 * How each kind of field goes to bytes (HO_PUT) and back (HO_GET): field
 * <f> of <m>, written to <b> or read from <in>, the names the generated
 * functions below give them. A string is a u16 length and its bytes,
 * bounded by its array (sizeof(m->f)) on both sides.
 */
#define HO_PUT_u8(f)        ho_u8(b, m->f);
#define HO_PUT_u32(f)       ho_u32(b, m->f);
#define HO_PUT_i32(f)       ho_u32(b, (uint32_t)m->f);
#define HO_PUT_u64(f)       ho_u64(b, m->f);
#define HO_PUT_str(f)       ho_str(b, m->f, sizeof(m->f));
#define HO_PUT_addr(f)      ho_sockaddr(b, &m->f);
#define HO_PUT_dir(f)       ho_dir(b, &m->f);
#define HO_PUT(kind, f)     HO_PUT_##kind(f)

#define HO_GET_u8(f)        ho_get_u8_to(&in, &m->f);
#define HO_GET_u32(f)       ho_get_u32_to(&in, &m->f);
#define HO_GET_i32(f)       ho_get_i32_to(&in, &m->f);
#define HO_GET_u64(f)       ho_get_u64_to(&in, &m->f);
#define HO_GET_str(f)       ho_get_str(&in, m->f, sizeof(m->f));
#define HO_GET_addr(f)      ho_get_sockaddr(&in, &m->f);
#define HO_GET_dir(f)       ho_get_dir(&in, &m->f);
#define HO_GET(kind, f)     HO_GET_##kind(f)

/*
 * The encoder <fn> of struct handover_<name> as a frame of <type>, and
 * the decoder <fn> that refuses what <valid> does not accept, both walks
 * over the one list <FIELDS>.
 */
#define HO_ENCODER(fn, name, type, FIELDS)                                  \
int                                                                         \
fn(struct handover_buf *b, const struct handover_##name *m)                 \
{                                                                           \
    size_t start = ho_frame_begin(b, HANDOVER_VERSION, (type));             \
                                                                            \
    FIELDS(HO_PUT)                                                          \
    return ho_frame_end(b, start);                                          \
}

#define HO_DECODER(fn, name, FIELDS, valid)                                 \
int                                                                         \
fn(const uint8_t *p, size_t len, struct handover_##name *m)                 \
{                                                                           \
    struct ho_in in;                                                        \
                                                                            \
    ho_in_init(&in, p, len);                                                \
    FIELDS(HO_GET)                                                          \
    if (!valid(m)) {                                                        \
        in.bad = 1;                                                         \
    }                                                                       \
    return ho_in_done(&in);                                                 \
}

/* handover_encode_<name> and handover_decode_<name>. */
#define HO_MESSAGE(name, type, FIELDS, valid)                               \
    HO_ENCODER(handover_encode_##name, name, type, FIELDS)                  \
    HO_DECODER(handover_decode_##name, name, FIELDS, valid)

/* ---- the messages ------------------------------------------------------ */

/*
 * Each message's fields in wire order, listed once: its encoder and its
 * decoder are both generated from the list, so the two cannot drift apart
 * (a field added, moved or resized changes both). New fields go at the
 * end (see handover.h). POOL and ACK, whose arrays are counted, are
 * written out by hand below.
 */
#define HO_HELLO_FIELDS(X)                                                  \
    X(u32, pid)

#define HO_ERROR_FIELDS(X)                                                  \
    X(str, text)

#define HO_BEGIN_FIELDS(X)                                                  \
    X(u64, next_id) X(u32, nworkers) X(u32, pid)

#define HO_LISTENER_FIELDS(X)                                               \
    X(u32, worker) X(str, addr)

#define HO_SESSION_FIELDS(X)                                                \
    X(u64, id) X(u32, worker) X(str, pool) X(str, backend)                  \
    X(addr, client) X(u64, key) X(u64, age_ms) X(u64, idle_ms)              \
    X(u64, idle_timeout_ms) X(u8, first_fin) X(dir, up) X(dir, down)        \
    X(u8, idle_client) X(u64, life_left_ms)

#define HO_BACKEND_FIELDS(X)                                                \
    X(str, pool) X(str, name) X(str, addr)                                  \
    X(u8, up) X(u8, admin) X(u8, proto_drain) X(u8, backup)                 \
    X(u32, weight) X(u32, config_weight) X(u32, max_conns)                  \
    X(u32, nfails_row) X(i32, health)                                       \
    X(u64, since_ms) X(u64, up_age_ms) X(u64, ntotal) X(u64, nfailed)       \
    X(u64, bytes_in) X(u64, bytes_out) X(u64, nchecks_pass)                 \
    X(u64, nchecks_fail) X(u8, check_result) X(u32, check_latency_ms)       \
    X(u64, check_at_ms) X(str, check_reason) X(u8, source)                  \
    X(u32, max_connect_rate) X(str, down_reason) X(str, admin_by)

#define HO_END_FIELDS(X)                                                    \
    X(u32, nlisteners) X(u32, nsessions) X(u32, npools) X(u32, nbackends)

#define HO_COMMAND_FIELDS(X)                                                \
    X(u8, cmd)

/* Any values of the fields will do. */
static int
ho_valid_any(const void *m)
{
    (void)m;
    return 1;
}

/* Only the enum handover_fin values, a flag 0 or 1. */
static int
ho_valid_session(const struct handover_session *m)
{
    return m->first_fin <= HANDOVER_FIN_BACKEND && m->idle_client <= 1;
}

/* The enums' ranges (backend.h: source, admin, check result), flags 0 or
   1, and a rise/fall counter of -1 (unchecked) or more. */
static int
ho_valid_backend(const struct handover_backend *m)
{
    return m->source <= 2 && m->up <= 1 && m->admin <= 2 &&
           m->proto_drain <= 1 && m->backup <= 1 && m->check_result <= 2 &&
           m->health >= -1;
}

HO_MESSAGE(hello, HANDOVER_HELLO, HO_HELLO_FIELDS, ho_valid_any)
HO_MESSAGE(begin, HANDOVER_BEGIN, HO_BEGIN_FIELDS, ho_valid_any)
HO_MESSAGE(listener, HANDOVER_LISTENER, HO_LISTENER_FIELDS, ho_valid_any)
HO_MESSAGE(session, HANDOVER_SESSION, HO_SESSION_FIELDS, ho_valid_session)
HO_MESSAGE(backend, HANDOVER_BACKEND, HO_BACKEND_FIELDS, ho_valid_backend)
HO_MESSAGE(end, HANDOVER_END, HO_END_FIELDS, ho_valid_any)
HO_MESSAGE(command, HANDOVER_COMMAND, HO_COMMAND_FIELDS, ho_valid_any)

/* ERROR is encoded from a plain text. */
static HO_ENCODER(ho_encode_error, error, HANDOVER_ERROR, HO_ERROR_FIELDS)
HO_DECODER(handover_decode_error, error, HO_ERROR_FIELDS, ho_valid_any)

int
handover_encode_error(struct handover_buf *b, const char *text)
{
    struct handover_error m;

    snprintf(m.text, sizeof(m.text), "%s", text);   /* long texts are cut */
    return ho_encode_error(b, &m);
}

int
handover_encode_raw(struct handover_buf *b, uint16_t version, uint16_t type,
                    const void *payload, uint32_t len)
{
    size_t start = ho_frame_begin(b, version, type);

    ho_put(b, payload, len);
    return ho_frame_end(b, start);
}

int
handover_encode_pool(struct handover_buf *b, const struct handover_pool *m)
{
    size_t start = ho_frame_begin(b, HANDOVER_VERSION, HANDOVER_POOL);
    uint32_t i;

    if (m->nrejected > HANDOVER_MAX_REASONS) {
        b->failed = 1;
    }
    ho_str(b, m->name, sizeof(m->name));
    ho_u32(b, m->nrejected);
    for (i = 0; i < m->nrejected && i < HANDOVER_MAX_REASONS; i++) {
        ho_u64(b, m->rejected[i]);
    }
    return ho_frame_end(b, start);
}

int
handover_decode_pool(const uint8_t *p, size_t len, struct handover_pool *m)
{
    struct ho_in in;
    uint32_t i;

    ho_in_init(&in, p, len);
    ho_get_str(&in, m->name, sizeof(m->name));
    m->nrejected = ho_get_u32(&in);
    if (m->nrejected > HANDOVER_MAX_REASONS) {
        in.bad = 1;
        m->nrejected = 0;
    }
    for (i = 0; i < m->nrejected; i++) {
        m->rejected[i] = ho_get_u64(&in);
    }
    return ho_in_done(&in);
}

int
handover_encode_ack(struct handover_buf *b, const uint64_t *ids, uint32_t n)
{
    size_t start = ho_frame_begin(b, HANDOVER_VERSION, HANDOVER_ACK);
    uint32_t i;

    ho_u32(b, n);
    for (i = 0; i < n; i++) {
        ho_u64(b, ids[i]);
    }
    return ho_frame_end(b, start);
}

int
handover_decode_ack(const uint8_t *p, size_t len, struct handover_ack *m)
{
    struct ho_in in;

    ho_in_init(&in, p, len);
    m->ndeclined = ho_get_u32(&in);
    if (m->ndeclined > HANDOVER_MAX_PAYLOAD / 8) {
        in.bad = 1;
    }
    m->ids = in.bad ? NULL : ho_get(&in, (size_t)m->ndeclined * 8);
    if (m->ids == NULL) {
        m->ndeclined = 0;
    }
    return ho_in_done(&in);
}

uint64_t
handover_ack_id(const struct handover_ack *m, uint32_t i)
{
    const uint8_t *p = m->ids + (size_t)i * 8;
    uint64_t v = 0;
    int k;

    for (k = 0; k < 8; k++) {
        v = (v << 8) | p[k];
    }
    return v;
}

int
handover_encode_done(struct handover_buf *b)
{
    size_t start = ho_frame_begin(b, HANDOVER_VERSION, HANDOVER_DONE);

    return ho_frame_end(b, start);
}

/* REPLY: u32 status, u32 length, the body's bytes. */
int
handover_encode_reply(struct handover_buf *b, uint32_t status,
                      const char *body, size_t len)
{
    size_t start = ho_frame_begin(b, HANDOVER_VERSION, HANDOVER_REPLY);

    if (len > HANDOVER_MAX_PAYLOAD) {
        b->failed = 1;      /* ho_frame_end refuses it anyway */
    } else {
        ho_u32(b, status);
        ho_u32(b, (uint32_t)len);
        ho_put(b, body, len);
    }
    return ho_frame_end(b, start);
}

int
handover_decode_reply(const uint8_t *p, size_t len, struct handover_reply *m)
{
    struct ho_in in;

    ho_in_init(&in, p, len);
    m->status = ho_get_u32(&in);
    m->len = ho_get_u32(&in);
    m->body = ho_get(&in, m->len);
    if (m->body == NULL) {
        m->len = 0;
    }
    return ho_in_done(&in);
}

const char *
handover_type_name(uint16_t type)
{
    static const char *const names[] = {
        "?", "HELLO", "ERROR", "BEGIN", "LISTENER", "SESSION", "POOL",
        "BACKEND", "END", "ACK", "DONE", "COMMAND", "REPLY",
    };

    if (type == 0 || type >= MQ_NELEMS(names)) {
        return "unknown";
    }
    return names[type];
}
