/*
 * test_handover.c: takeover frames survive a round trip field by field;
 * the header refuses other magic, versions and sizes; every truncated
 * payload is refused; appended (newer) fields are ignored.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>

#include "mqlb/common.h"
#include "mqlb/handover.h"

/* The header of the one frame in <b>, checked, and its payload. */
static const uint8_t *
ho_frame(const struct handover_buf *b, uint16_t type, size_t *len)
{
    struct handover_header h;

    cr_assert_geq(b->len, HANDOVER_HEADER_LEN);
    cr_assert_eq(handover_header_decode(b->data, &h), MQ_OK);
    cr_assert_eq(h.version, HANDOVER_VERSION);
    cr_assert_eq(h.type, type);
    cr_assert_eq(h.length, b->len - HANDOVER_HEADER_LEN);
    *len = h.length;
    return b->data + HANDOVER_HEADER_LEN;
}

static void
ho_session_sample(struct handover_session *s, uint8_t *up, uint8_t *down)
{
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&s->client;

    memset(s, 0, sizeof(*s));
    s->id = 0x0102030405060708ULL;
    s->worker = 3;
    strcpy(s->pool, "mqtt");
    strcpy(s->backend, "m-2.example");
    s6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::7", &s6->sin6_addr);
    s6->sin6_port = htons(40001);
    s->key = 0xfeedfacecafebeefULL;
    s->age_ms = 123456;
    s->idle_ms = 789;
    s->idle_timeout_ms = 60000;
    s->first_fin = HANDOVER_FIN_CLIENT;
    memset(up, 'u', 100);
    memset(down, 'd', 70000);
    s->up.data = up;
    s->up.len = 100;
    s->up.nbytes = 1ULL << 40;
    s->up.eof = 1;
    s->down.data = down;
    s->down.len = 70000;
    s->down.nbytes = 5;
    s->down.spliced = 1;
    s->idle_client = 1;
    s->life_left_ms = 3600000;
}

Test(handover, session_round_trip)
{
    static uint8_t up[100], down[70000];
    struct handover_session s, t;
    struct handover_buf b;
    const uint8_t *p;
    size_t len;

    ho_session_sample(&s, up, down);
    handover_buf_init(&b);
    cr_assert_eq(handover_encode_session(&b, &s), MQ_OK);
    p = ho_frame(&b, HANDOVER_SESSION, &len);
    cr_assert_eq(handover_decode_session(p, len, &t), MQ_OK);
    cr_assert_eq(t.id, s.id);
    cr_assert_eq(t.worker, 3);
    cr_assert_str_eq(t.pool, "mqtt");
    cr_assert_str_eq(t.backend, "m-2.example");
    cr_assert_eq(t.client.ss_family, AF_INET6);
    cr_assert_eq(memcmp(&((struct sockaddr_in6 *)&t.client)->sin6_addr,
                        &((struct sockaddr_in6 *)&s.client)->sin6_addr, 16),
                 0);
    cr_assert_eq(((struct sockaddr_in6 *)&t.client)->sin6_port,
                 htons(40001));
    cr_assert_eq(t.key, s.key);
    cr_assert_eq(t.age_ms, 123456);
    cr_assert_eq(t.idle_ms, 789);
    cr_assert_eq(t.idle_timeout_ms, 60000);
    cr_assert_eq(t.first_fin, HANDOVER_FIN_CLIENT);
    cr_assert_eq(t.up.len, 100);
    cr_assert_eq(memcmp(t.up.data, up, 100), 0);
    cr_assert_eq(t.up.nbytes, 1ULL << 40);
    cr_assert(t.up.eof && !t.up.spliced && !t.up.nosplice);
    cr_assert_eq(t.down.len, 70000);
    cr_assert_eq(memcmp(t.down.data, down, 70000), 0);
    cr_assert(!t.down.eof && t.down.spliced);
    cr_assert_eq(t.idle_client, 1);
    cr_assert_eq(t.life_left_ms, 3600000);
    handover_buf_deinit(&b);
}

Test(handover, every_truncated_session_payload_is_refused)
{
    static uint8_t up[100], down[70000];
    struct handover_session s, t;
    struct handover_buf b;
    const uint8_t *p;
    size_t len, k;

    ho_session_sample(&s, up, down);
    s.down.len = 10;
    handover_buf_init(&b);
    cr_assert_eq(handover_encode_session(&b, &s), MQ_OK);
    p = ho_frame(&b, HANDOVER_SESSION, &len);
    for (k = 0; k < len; k++) {
        cr_assert_eq(handover_decode_session(p, k, &t), HANDOVER_EMALFORMED,
                     "prefix of %zu bytes", k);
    }
    handover_buf_deinit(&b);
}

Test(handover, appended_fields_of_a_newer_build_are_ignored)
{
    struct handover_pool m = { "redis", 2, { 42, 7 } }, t;
    struct handover_buf b;
    uint8_t payload[128];
    const uint8_t *p;
    size_t len;

    handover_buf_init(&b);
    cr_assert_eq(handover_encode_pool(&b, &m), MQ_OK);
    p = ho_frame(&b, HANDOVER_POOL, &len);
    memcpy(payload, p, len);
    memset(payload + len, 0xab, 9);
    cr_assert_eq(handover_decode_pool(payload, len + 9, &t), MQ_OK);
    cr_assert_str_eq(t.name, "redis");
    cr_assert_eq(t.nrejected, 2);
    cr_assert_eq(t.rejected[0], 42);
    cr_assert_eq(t.rejected[1], 7);
    handover_buf_deinit(&b);
}

Test(handover, header_refuses_magic_version_and_size)
{
    struct handover_header h;
    struct handover_buf b;

    handover_buf_init(&b);
    cr_assert_eq(handover_encode_raw(&b, 99, HANDOVER_HELLO, "abcd", 4),
                 MQ_OK);
    cr_assert_eq(handover_header_decode(b.data, &h), HANDOVER_EVERSION);
    cr_assert_eq(h.version, 99, "the version is reported for the error");
    b.data[0] = 'G';
    cr_assert_eq(handover_header_decode(b.data, &h), HANDOVER_EMAGIC);
    handover_buf_reset(&b);
    cr_assert_eq(handover_encode_done(&b), MQ_OK);
    b.data[8] = 0x7f;       /* length ~2 GiB */
    cr_assert_eq(handover_header_decode(b.data, &h), HANDOVER_ETOOBIG);
    handover_buf_deinit(&b);
}

Test(handover, backend_round_trip_and_bad_enums)
{
    struct handover_backend m, t;
    struct handover_buf b;
    const uint8_t *p;
    uint8_t copy[1024];
    size_t len;

    memset(&m, 0, sizeof(m));
    strcpy(m.pool, "p");
    strcpy(m.name, "b1");
    strcpy(m.addr, "127.0.0.1:6379");
    m.up = 0;
    m.admin = 1;
    m.weight = 7;
    m.config_weight = 1;
    m.max_conns = 10;
    m.nfails_row = 3;
    m.health = -1;
    m.since_ms = 1700000000000ULL;
    m.up_age_ms = HANDOVER_NO_AGE;
    m.ntotal = 11;
    m.nfailed = 4;
    m.bytes_in = 1000;
    m.bytes_out = 2000;
    m.nchecks_pass = 5;
    m.nchecks_fail = 6;
    m.check_result = 2;
    m.check_latency_ms = 12;
    m.check_at_ms = 99;
    strcpy(m.check_reason, "refused");
    handover_buf_init(&b);
    cr_assert_eq(handover_encode_backend(&b, &m), MQ_OK);
    p = ho_frame(&b, HANDOVER_BACKEND, &len);
    cr_assert_eq(handover_decode_backend(p, len, &t), MQ_OK);
    cr_assert_str_eq(t.addr, "127.0.0.1:6379");
    cr_assert_eq(t.up, 0);
    cr_assert_eq(t.admin, 1);
    cr_assert_eq(t.weight, 7);
    cr_assert_eq(t.config_weight, 1);
    cr_assert_eq(t.health, -1);
    cr_assert_eq(t.up_age_ms, HANDOVER_NO_AGE);
    cr_assert_eq(t.nchecks_fail, 6);
    cr_assert_str_eq(t.check_reason, "refused");
    /* admin = 3 does not exist */
    memcpy(copy, p, len);
    copy[2 + 1 + 2 + 2 + 2 + 14 + 1] = 3;
    cr_assert_eq(handover_decode_backend(copy, len, &t), HANDOVER_EMALFORMED);
    handover_buf_deinit(&b);
}

Test(handover, strings_with_nul_or_too_long_are_refused)
{
    struct handover_listener m, t;
    struct handover_buf b;
    uint8_t bad[] = { 0, 0, 0, 1, 0, 3, 'a', 0, 'b' };
    uint8_t longer[4 + 2 + HANDOVER_ADDR_LEN];

    cr_assert_eq(handover_decode_listener(bad, sizeof(bad), &t),
                 HANDOVER_EMALFORMED);
    memset(longer, 'x', sizeof(longer));
    longer[4] = 0;
    longer[5] = HANDOVER_ADDR_LEN;      /* no room for the NUL */
    cr_assert_eq(handover_decode_listener(longer, sizeof(longer), &t),
                 HANDOVER_EMALFORMED);
    memset(&m, 0, sizeof(m));
    m.worker = 1;
    strcpy(m.addr, "[::1]:1883");
    handover_buf_init(&b);
    cr_assert_eq(handover_encode_listener(&b, &m), MQ_OK);
    cr_assert_eq(handover_decode_listener(b.data + HANDOVER_HEADER_LEN,
                                          b.len - HANDOVER_HEADER_LEN, &t),
                 MQ_OK);
    cr_assert_str_eq(t.addr, "[::1]:1883");
    cr_assert_eq(t.worker, 1);
    handover_buf_deinit(&b);
}

Test(handover, ack_ids_and_a_count_larger_than_the_payload)
{
    uint64_t ids[3] = { 1, 0xffffffffffffffffULL, 77 };
    struct handover_ack t;
    struct handover_buf b;
    const uint8_t *p;
    uint8_t liar[] = { 0, 0, 0, 9, 1, 2, 3 };
    size_t len;

    handover_buf_init(&b);
    cr_assert_eq(handover_encode_ack(&b, ids, 3), MQ_OK);
    p = ho_frame(&b, HANDOVER_ACK, &len);
    cr_assert_eq(handover_decode_ack(p, len, &t), MQ_OK);
    cr_assert_eq(t.ndeclined, 3);
    cr_assert_eq(handover_ack_id(&t, 0), 1);
    cr_assert_eq(handover_ack_id(&t, 1), ids[1]);
    cr_assert_eq(handover_ack_id(&t, 2), 77);
    cr_assert_eq(handover_decode_ack(liar, sizeof(liar), &t),
                 HANDOVER_EMALFORMED);
    cr_assert_eq(t.ndeclined, 0);
    handover_buf_deinit(&b);
}

Test(handover, small_messages_round_trip_and_follow_each_other)
{
    struct handover_hello h = { 4242 }, h2;
    struct handover_begin bg = { 1000001, 4, 77 }, bg2;
    struct handover_end e = { 8, 1000, 2, 6 }, e2;
    struct handover_error er;
    struct handover_header hd;
    struct handover_buf b;
    size_t off = 0;

    handover_buf_init(&b);
    cr_assert_eq(handover_encode_hello(&b, &h), MQ_OK);
    cr_assert_eq(handover_encode_begin(&b, &bg), MQ_OK);
    cr_assert_eq(handover_encode_end(&b, &e), MQ_OK);
    cr_assert_eq(handover_encode_error(&b, "handover version 9 is not "
                                           "supported"), MQ_OK);
    cr_assert_eq(handover_header_decode(b.data + off, &hd), MQ_OK);
    cr_assert_eq(handover_decode_hello(b.data + off + 12, hd.length, &h2),
                 MQ_OK);
    cr_assert_eq(h2.pid, 4242);
    off += 12 + hd.length;
    cr_assert_eq(handover_header_decode(b.data + off, &hd), MQ_OK);
    cr_assert_eq(hd.type, HANDOVER_BEGIN);
    cr_assert_eq(handover_decode_begin(b.data + off + 12, hd.length, &bg2),
                 MQ_OK);
    cr_assert_eq(bg2.next_id, 1000001);
    cr_assert_eq(bg2.nworkers, 4);
    cr_assert_eq(bg2.pid, 77);
    off += 12 + hd.length;
    cr_assert_eq(handover_header_decode(b.data + off, &hd), MQ_OK);
    cr_assert_eq(handover_decode_end(b.data + off + 12, hd.length, &e2),
                 MQ_OK);
    cr_assert_eq(e2.nsessions, 1000);
    cr_assert_eq(e2.nbackends, 6);
    off += 12 + hd.length;
    cr_assert_eq(handover_header_decode(b.data + off, &hd), MQ_OK);
    cr_assert_eq(handover_decode_error(b.data + off + 12, hd.length, &er),
                 MQ_OK);
    cr_assert_str_eq(er.text, "handover version 9 is not supported");
    cr_assert_eq(off + 12 + hd.length, b.len);
    cr_assert_str_eq(handover_type_name(HANDOVER_ACK), "ACK");
    cr_assert_str_eq(handover_type_name(999), "unknown");
    handover_buf_deinit(&b);
}

Test(handover, unix_client_address_cannot_be_encoded)
{
    struct handover_session s;
    struct handover_buf b;

    memset(&s, 0, sizeof(s));
    s.client.ss_family = AF_UNIX;
    handover_buf_init(&b);
    cr_assert_eq(handover_encode_session(&b, &s), MQ_ERR);
    cr_assert_eq(b.len, 0, "a failed frame leaves nothing behind");
    handover_buf_deinit(&b);
}
