/*
 * fuzz_handover.c: the control socket's frame decoders (takeover and
 * `mqlb -s`) on raw bytes. The input
 * goes to the header decoder and to every payload decoder as is; what a
 * decoder accepts must encode again and decode to the same fields (a
 * session's bytes included), so that nothing a peer sends is read past
 * its end or changed on the way.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/common.h"
#include "mqlb/handover.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_same_dir(const struct handover_dir *a, const struct handover_dir *b)
{
    if (a->len != b->len || a->nbytes != b->nbytes || a->eof != b->eof ||
        a->spliced != b->spliced || a->nosplice != b->nosplice ||
        (a->len > 0 && memcmp(a->data, b->data, a->len) != 0)) {
        abort();
    }
}

static void
fuzz_session(const uint8_t *p, size_t len)
{
    struct handover_session s, t;
    struct handover_buf b;

    if (handover_decode_session(p, len, &s) != MQ_OK) {
        return;
    }
    handover_buf_init(&b);
    if (handover_encode_session(&b, &s) != MQ_OK ||
        handover_decode_session(b.data + HANDOVER_HEADER_LEN,
                                b.len - HANDOVER_HEADER_LEN, &t) != MQ_OK) {
        abort();
    }
    if (s.id != t.id || s.worker != t.worker || strcmp(s.pool, t.pool) ||
        strcmp(s.backend, t.backend) || s.key != t.key ||
        s.age_ms != t.age_ms || s.idle_ms != t.idle_ms ||
        s.idle_timeout_ms != t.idle_timeout_ms ||
        s.first_fin != t.first_fin || s.idle_client != t.idle_client ||
        s.life_left_ms != t.life_left_ms ||
        s.client.ss_family != t.client.ss_family ||
        memcmp(&s.client, &t.client, sizeof(s.client)) != 0) {
        abort();
    }
    fuzz_same_dir(&s.up, &t.up);
    fuzz_same_dir(&s.down, &t.down);
    handover_buf_deinit(&b);
}

static void
fuzz_backend(const uint8_t *p, size_t len)
{
    struct handover_backend m, t;
    struct handover_buf b;

    memset(&m, 0, sizeof(m));       /* compared whole, padding too */
    memset(&t, 0, sizeof(t));
    if (handover_decode_backend(p, len, &m) != MQ_OK) {
        return;
    }
    handover_buf_init(&b);
    if (handover_encode_backend(&b, &m) != MQ_OK ||
        handover_decode_backend(b.data + HANDOVER_HEADER_LEN,
                                b.len - HANDOVER_HEADER_LEN, &t) != MQ_OK ||
        memcmp(&m, &t, sizeof(m)) != 0) {
        abort();
    }
    handover_buf_deinit(&b);
}

static void
fuzz_ack(const uint8_t *p, size_t len)
{
    struct handover_ack m;
    uint64_t sum = 0;
    uint32_t i;

    if (handover_decode_ack(p, len, &m) != MQ_OK) {
        return;
    }
    if ((size_t)m.ndeclined * 8 > len) {
        abort();
    }
    for (i = 0; i < m.ndeclined; i++) {
        sum += handover_ack_id(&m, i);
    }
    (void)sum;
}

/* A reply's body lies within the payload and comes back the same. */
static void
fuzz_reply(const uint8_t *p, size_t len)
{
    struct handover_reply m, t;
    struct handover_buf b;

    if (handover_decode_reply(p, len, &m) != MQ_OK) {
        return;
    }
    if ((size_t)m.len + 8 > len || (m.len > 0 && m.body < p)) {
        abort();
    }
    handover_buf_init(&b);
    if (handover_encode_reply(&b, m.status, (const char *)m.body, m.len)
        != MQ_OK ||
        handover_decode_reply(b.data + HANDOVER_HEADER_LEN,
                              b.len - HANDOVER_HEADER_LEN, &t) != MQ_OK ||
        t.status != m.status || t.len != m.len ||
        (m.len > 0 && memcmp(t.body, m.body, m.len) != 0)) {
        abort();
    }
    handover_buf_deinit(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct handover_header h;
    struct handover_hello hello;
    struct handover_error err;
    struct handover_begin begin;
    struct handover_listener li;
    struct handover_pool pool;
    struct handover_end end;
    struct handover_command cmd;
    uint8_t *copy;
    size_t len = size;

    /* An exact-size copy, so that any over-read trips ASan. */
    copy = malloc(size > 0 ? size : 1);
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data, size);
    if (size >= HANDOVER_HEADER_LEN &&
        handover_header_decode(copy, &h) == MQ_OK) {
        if (h.length > size - HANDOVER_HEADER_LEN) {
            h.length = (uint32_t)(size - HANDOVER_HEADER_LEN);
        }
        memmove(copy, copy + HANDOVER_HEADER_LEN, h.length);
        len = h.length;
    }
    (void)handover_decode_hello(copy, len, &hello);
    (void)handover_decode_error(copy, len, &err);
    (void)handover_decode_begin(copy, len, &begin);
    (void)handover_decode_listener(copy, len, &li);
    (void)handover_decode_pool(copy, len, &pool);
    (void)handover_decode_end(copy, len, &end);
    (void)handover_decode_command(copy, len, &cmd);
    fuzz_reply(copy, len);
    fuzz_session(copy, len);
    fuzz_backend(copy, len);
    fuzz_ack(copy, len);
    free(copy);
    return 0;
}
