/*
 * test_handover.c: takeover frames survive a round trip field by field;
 * the header refuses other magic, versions and sizes; every truncated
 * payload is refused; appended (newer) fields are ignored.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdlib.h>
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

/*
 * Every message, with every field set to a distinct non-zero value (as far
 * as a field's range allows), decodes to what was encoded, field by field;
 * and every shorter prefix of its payload is refused. Catches a field the
 * decoder reads in another order, width or sign than the encoder wrote.
 */
#define HO_PREFIXES_REFUSED(decode, p, len, out)                             \
    do {                                                                     \
        size_t k_;                                                           \
                                                                             \
        for (k_ = 0; k_ < (len); k_++) {                                     \
            cr_assert_eq(decode((p), k_, (out)), HANDOVER_EMALFORMED,        \
                         #decode ": prefix of %zu bytes", k_);               \
        }                                                                    \
    } while (0)

static void
ho_same_dir(const struct handover_dir *a, const struct handover_dir *b)
{
    cr_assert_eq(a->len, b->len);
    cr_assert_eq(memcmp(a->data, b->data, a->len), 0);
    cr_assert_eq(a->nbytes, b->nbytes);
    cr_assert_eq(a->eof, b->eof);
    cr_assert_eq(a->spliced, b->spliced);
    cr_assert_eq(a->nosplice, b->nosplice);
}

Test(handover, every_message_round_trips_field_by_field)
{
    struct handover_hello hello = { 0x01020304 }, hello2;
    struct handover_error err2;
    struct handover_begin begin = { 0x1112131415161718ULL, 0x21, 0x22 },
                          begin2;
    struct handover_listener li, li2;
    struct handover_session s, s2;
    struct handover_pool pool, pool2;
    struct handover_backend be, be2;
    struct handover_end end = { 0x31, 0x32, 0x33, 0x34 }, end2;
    struct handover_ack ack2;
    uint64_t ids[3] = { 0x41, 0x4200000000000042ULL, 0x43 };
    struct sockaddr_in *s4 = (struct sockaddr_in *)&s.client;
    const struct sockaddr_in *t4 = (const struct sockaddr_in *)&s2.client;
    uint8_t up[] = "upward", down[] = "downward";
    struct handover_header hd;
    struct handover_buf b;
    const uint8_t *p;
    size_t len;
    uint32_t i;

    handover_buf_init(&b);

    cr_assert_eq(handover_encode_hello(&b, &hello), MQ_OK);
    p = ho_frame(&b, HANDOVER_HELLO, &len);
    cr_assert_eq(handover_decode_hello(p, len, &hello2), MQ_OK);
    cr_assert_eq(hello2.pid, hello.pid);
    HO_PREFIXES_REFUSED(handover_decode_hello, p, len, &hello2);

    handover_buf_reset(&b);
    cr_assert_eq(handover_encode_error(&b, "no room for 3 sessions"), MQ_OK);
    p = ho_frame(&b, HANDOVER_ERROR, &len);
    cr_assert_eq(handover_decode_error(p, len, &err2), MQ_OK);
    cr_assert_str_eq(err2.text, "no room for 3 sessions");
    HO_PREFIXES_REFUSED(handover_decode_error, p, len, &err2);

    handover_buf_reset(&b);
    cr_assert_eq(handover_encode_begin(&b, &begin), MQ_OK);
    p = ho_frame(&b, HANDOVER_BEGIN, &len);
    cr_assert_eq(handover_decode_begin(p, len, &begin2), MQ_OK);
    cr_assert_eq(begin2.next_id, begin.next_id);
    cr_assert_eq(begin2.nworkers, begin.nworkers);
    cr_assert_eq(begin2.pid, begin.pid);
    HO_PREFIXES_REFUSED(handover_decode_begin, p, len, &begin2);

    memset(&li, 0, sizeof(li));
    li.worker = 0x51;
    strcpy(li.addr, "0.0.0.0:1883");
    handover_buf_reset(&b);
    cr_assert_eq(handover_encode_listener(&b, &li), MQ_OK);
    p = ho_frame(&b, HANDOVER_LISTENER, &len);
    cr_assert_eq(handover_decode_listener(p, len, &li2), MQ_OK);
    cr_assert_eq(li2.worker, li.worker);
    cr_assert_str_eq(li2.addr, li.addr);
    HO_PREFIXES_REFUSED(handover_decode_listener, p, len, &li2);

    memset(&s, 0, sizeof(s));
    s.id = 0x6162636465666768ULL;
    s.worker = 0x69;
    strcpy(s.pool, "pool-6a");
    strcpy(s.backend, "backend-6b");
    s4->sin_family = AF_INET;
    s4->sin_addr.s_addr = htonl(0x0a00006c);
    s4->sin_port = htons(0x6d6e);
    s.key = 0x6f00000000000070ULL;
    s.age_ms = 0x71;
    s.idle_ms = 0x72;
    s.idle_timeout_ms = 0x73;
    s.first_fin = HANDOVER_FIN_BACKEND;
    s.up.data = up;
    s.up.len = sizeof(up);
    s.up.nbytes = 0x74;
    s.up.eof = 1;
    s.up.nosplice = 1;
    s.down.data = down;
    s.down.len = sizeof(down);
    s.down.nbytes = 0x75;
    s.down.spliced = 1;
    s.idle_client = 1;
    s.life_left_ms = 0x76;
    handover_buf_reset(&b);
    cr_assert_eq(handover_encode_session(&b, &s), MQ_OK);
    p = ho_frame(&b, HANDOVER_SESSION, &len);
    cr_assert_eq(handover_decode_session(p, len, &s2), MQ_OK);
    cr_assert_eq(s2.id, s.id);
    cr_assert_eq(s2.worker, s.worker);
    cr_assert_str_eq(s2.pool, s.pool);
    cr_assert_str_eq(s2.backend, s.backend);
    cr_assert_eq(s2.client.ss_family, AF_INET);
    cr_assert_eq(t4->sin_addr.s_addr, s4->sin_addr.s_addr);
    cr_assert_eq(t4->sin_port, s4->sin_port);
    cr_assert_eq(s2.key, s.key);
    cr_assert_eq(s2.age_ms, s.age_ms);
    cr_assert_eq(s2.idle_ms, s.idle_ms);
    cr_assert_eq(s2.idle_timeout_ms, s.idle_timeout_ms);
    cr_assert_eq(s2.first_fin, s.first_fin);
    ho_same_dir(&s2.up, &s.up);
    ho_same_dir(&s2.down, &s.down);
    cr_assert_eq(s2.idle_client, s.idle_client);
    cr_assert_eq(s2.life_left_ms, s.life_left_ms);
    HO_PREFIXES_REFUSED(handover_decode_session, p, len, &s2);

    memset(&pool, 0, sizeof(pool));
    strcpy(pool.name, "pool-81");
    pool.nrejected = HANDOVER_MAX_REASONS;
    for (i = 0; i < HANDOVER_MAX_REASONS; i++) {
        pool.rejected[i] = 0x8200000000000000ULL + i;
    }
    handover_buf_reset(&b);
    cr_assert_eq(handover_encode_pool(&b, &pool), MQ_OK);
    p = ho_frame(&b, HANDOVER_POOL, &len);
    cr_assert_eq(handover_decode_pool(p, len, &pool2), MQ_OK);
    cr_assert_str_eq(pool2.name, pool.name);
    cr_assert_eq(pool2.nrejected, pool.nrejected);
    for (i = 0; i < HANDOVER_MAX_REASONS; i++) {
        cr_assert_eq(pool2.rejected[i], pool.rejected[i], "reason %u", i);
    }
    HO_PREFIXES_REFUSED(handover_decode_pool, p, len, &pool2);

    memset(&be, 0, sizeof(be));
    strcpy(be.pool, "pool-91");
    strcpy(be.name, "backend-92");
    strcpy(be.addr, "10.0.0.93:6379");
    be.up = 1;              /* the flags and enums: their largest values */
    be.admin = 2;
    be.proto_drain = 1;
    be.backup = 1;
    be.weight = 0x94;
    be.config_weight = 0x95;
    be.max_conns = 0x96;
    be.nfails_row = 0x97;
    be.health = 0x98;
    be.since_ms = 0x99;
    be.up_age_ms = 0x9a;
    be.ntotal = 0x9b;
    be.nfailed = 0x9c;
    be.bytes_in = 0x9d;
    be.bytes_out = 0x9e;
    be.nchecks_pass = 0x9f;
    be.nchecks_fail = 0xa0;
    be.check_result = 2;
    be.check_latency_ms = 0xa1;
    be.check_at_ms = 0xa2;
    strcpy(be.check_reason, "reason-a3");
    be.source = 2;
    be.max_connect_rate = 0xa4;
    strcpy(be.down_reason, "down-a5");
    strcpy(be.admin_by, "admin-a6");
    handover_buf_reset(&b);
    cr_assert_eq(handover_encode_backend(&b, &be), MQ_OK);
    p = ho_frame(&b, HANDOVER_BACKEND, &len);
    cr_assert_eq(handover_decode_backend(p, len, &be2), MQ_OK);
    cr_assert_str_eq(be2.pool, be.pool);
    cr_assert_str_eq(be2.name, be.name);
    cr_assert_str_eq(be2.addr, be.addr);
    cr_assert_eq(be2.up, be.up);
    cr_assert_eq(be2.admin, be.admin);
    cr_assert_eq(be2.proto_drain, be.proto_drain);
    cr_assert_eq(be2.backup, be.backup);
    cr_assert_eq(be2.weight, be.weight);
    cr_assert_eq(be2.config_weight, be.config_weight);
    cr_assert_eq(be2.max_conns, be.max_conns);
    cr_assert_eq(be2.nfails_row, be.nfails_row);
    cr_assert_eq(be2.health, be.health);
    cr_assert_eq(be2.since_ms, be.since_ms);
    cr_assert_eq(be2.up_age_ms, be.up_age_ms);
    cr_assert_eq(be2.ntotal, be.ntotal);
    cr_assert_eq(be2.nfailed, be.nfailed);
    cr_assert_eq(be2.bytes_in, be.bytes_in);
    cr_assert_eq(be2.bytes_out, be.bytes_out);
    cr_assert_eq(be2.nchecks_pass, be.nchecks_pass);
    cr_assert_eq(be2.nchecks_fail, be.nchecks_fail);
    cr_assert_eq(be2.check_result, be.check_result);
    cr_assert_eq(be2.check_latency_ms, be.check_latency_ms);
    cr_assert_eq(be2.check_at_ms, be.check_at_ms);
    cr_assert_str_eq(be2.check_reason, be.check_reason);
    cr_assert_eq(be2.source, be.source);
    cr_assert_eq(be2.max_connect_rate, be.max_connect_rate);
    cr_assert_str_eq(be2.down_reason, be.down_reason);
    cr_assert_str_eq(be2.admin_by, be.admin_by);
    HO_PREFIXES_REFUSED(handover_decode_backend, p, len, &be2);

    handover_buf_reset(&b);
    cr_assert_eq(handover_encode_end(&b, &end), MQ_OK);
    p = ho_frame(&b, HANDOVER_END, &len);
    cr_assert_eq(handover_decode_end(p, len, &end2), MQ_OK);
    cr_assert_eq(end2.nlisteners, end.nlisteners);
    cr_assert_eq(end2.nsessions, end.nsessions);
    cr_assert_eq(end2.npools, end.npools);
    cr_assert_eq(end2.nbackends, end.nbackends);
    HO_PREFIXES_REFUSED(handover_decode_end, p, len, &end2);

    handover_buf_reset(&b);
    cr_assert_eq(handover_encode_ack(&b, ids, 3), MQ_OK);
    p = ho_frame(&b, HANDOVER_ACK, &len);
    cr_assert_eq(handover_decode_ack(p, len, &ack2), MQ_OK);
    cr_assert_eq(ack2.ndeclined, 3);
    for (i = 0; i < 3; i++) {
        cr_assert_eq(handover_ack_id(&ack2, i), ids[i], "id %u", i);
    }
    HO_PREFIXES_REFUSED(handover_decode_ack, p, len, &ack2);

    handover_buf_reset(&b);
    cr_assert_eq(handover_encode_done(&b), MQ_OK);
    cr_assert_eq(handover_header_decode(b.data, &hd), MQ_OK);
    cr_assert_eq(hd.type, HANDOVER_DONE);
    cr_assert_eq(hd.length, 0);
    cr_assert_eq(b.len, HANDOVER_HEADER_LEN);

    handover_buf_deinit(&b);
}

/* <b> holds exactly the <n> bytes <want>; the first difference is named. */
static void
ho_same_bytes(const struct handover_buf *b, const uint8_t *want, size_t n)
{
    size_t i;

    for (i = 0; i < n && i < b->len; i++) {
        cr_assert_eq(b->data[i], want[i], "byte %zu: 0x%02x, want 0x%02x",
                     i, b->data[i], want[i]);
    }
    cr_assert_eq(b->len, n);
}

/*
 * The wire format, pinned: a session (every kind of field but the signed
 * one) and a backend (the signed health among the rest) encode to exactly
 * these bytes. A change here is a change of HANDOVER_VERSION's layout,
 * which a running older mqlb would misread: append, or bump the version.
 */
Test(handover, wire_bytes_are_pinned)
{
    static const uint8_t want_session[] = {
        'M', 'Q', 'H', 'O', 0, 1, 0, 5, 0, 0, 0, 96,    /* header */
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, /* id */
        0, 0, 0, 2,                                     /* worker */
        0, 1, 'p',                                      /* pool */
        0, 2, 'b', '1',                                 /* backend */
        4, 10, 0, 0, 1, 0x07, 0x5b,             /* client 10.0.0.1:1883 */
        1, 2, 3, 4, 5, 6, 7, 8,                         /* key */
        0, 0, 0, 0, 0, 0, 0, 0x10,                      /* age_ms */
        0, 0, 0, 0, 0, 0, 0, 0x20,                      /* idle_ms */
        0, 0, 0, 0, 0, 0, 0, 0x30,                      /* idle_timeout_ms */
        2,                                              /* first_fin */
        1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 2, 'a', 'b',/* up: eof */
        6, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0,  /* down: splice flags */
        1,                                              /* idle_client */
        0, 0, 0, 0, 0, 0, 0, 0x40,                      /* life_left_ms */
    };
    static const uint8_t want_backend[] = {
        'M', 'Q', 'H', 'O', 0, 1, 0, 7, 0, 0, 0, 126,   /* header */
        0, 1, 'p',                                      /* pool */
        0, 1, 'b',                                      /* name */
        0, 3, 'a', ':', '1',                            /* addr */
        1, 2, 1, 1,             /* up, admin, proto_drain, backup */
        0, 0, 0, 3,                                     /* weight */
        0, 0, 0, 4,                                     /* config_weight */
        0, 0, 0, 5,                                     /* max_conns */
        0, 0, 0, 6,                                     /* nfails_row */
        0xff, 0xff, 0xff, 0xff,                         /* health -1 */
        0, 0, 0, 0, 0, 0, 0, 7,                         /* since_ms */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* up_age_ms */
        0, 0, 0, 0, 0, 0, 0, 8,                         /* ntotal */
        0, 0, 0, 0, 0, 0, 0, 9,                         /* nfailed */
        0, 0, 0, 0, 0, 0, 0, 10,                        /* bytes_in */
        0, 0, 0, 0, 0, 0, 0, 11,                        /* bytes_out */
        0, 0, 0, 0, 0, 0, 0, 12,                        /* nchecks_pass */
        0, 0, 0, 0, 0, 0, 0, 13,                        /* nchecks_fail */
        2,                                              /* check_result */
        0, 0, 0, 14,                                /* check_latency_ms */
        0, 0, 0, 0, 0, 0, 0, 15,                        /* check_at_ms */
        0, 1, 'r',                                      /* check_reason */
        1,                                              /* source */
        0, 0, 0, 16,                                /* max_connect_rate */
        0, 1, 'd',                                      /* down_reason */
        0, 1, 'o',                                      /* admin_by */
    };
    struct handover_session s;
    struct handover_backend m;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&s.client;
    struct handover_buf b;

    memset(&s, 0, sizeof(s));
    s.id = 0x1122334455667788ULL;
    s.worker = 2;
    strcpy(s.pool, "p");
    strcpy(s.backend, "b1");
    s4->sin_family = AF_INET;
    s4->sin_addr.s_addr = htonl(0x0a000001);
    s4->sin_port = htons(1883);
    s.key = 0x0102030405060708ULL;
    s.age_ms = 0x10;
    s.idle_ms = 0x20;
    s.idle_timeout_ms = 0x30;
    s.first_fin = HANDOVER_FIN_BACKEND;
    s.up.data = (const uint8_t *)"ab";
    s.up.len = 2;
    s.up.nbytes = 5;
    s.up.eof = 1;
    s.down.nbytes = 0x100;
    s.down.spliced = 1;
    s.down.nosplice = 1;
    s.idle_client = 1;
    s.life_left_ms = 0x40;
    handover_buf_init(&b);
    cr_assert_eq(handover_encode_session(&b, &s), MQ_OK);
    ho_same_bytes(&b, want_session, sizeof(want_session));

    memset(&m, 0, sizeof(m));
    strcpy(m.pool, "p");
    strcpy(m.name, "b");
    strcpy(m.addr, "a:1");
    m.up = 1;
    m.admin = 2;
    m.proto_drain = 1;
    m.backup = 1;
    m.weight = 3;
    m.config_weight = 4;
    m.max_conns = 5;
    m.nfails_row = 6;
    m.health = -1;
    m.since_ms = 7;
    m.up_age_ms = HANDOVER_NO_AGE;
    m.ntotal = 8;
    m.nfailed = 9;
    m.bytes_in = 10;
    m.bytes_out = 11;
    m.nchecks_pass = 12;
    m.nchecks_fail = 13;
    m.check_result = 2;
    m.check_latency_ms = 14;
    m.check_at_ms = 15;
    strcpy(m.check_reason, "r");
    m.source = 1;
    m.max_connect_rate = 16;
    strcpy(m.down_reason, "d");
    strcpy(m.admin_by, "o");
    handover_buf_reset(&b);
    cr_assert_eq(handover_encode_backend(&b, &m), MQ_OK);
    ho_same_bytes(&b, want_backend, sizeof(want_backend));
    handover_buf_deinit(&b);
}

/*
 * `mqlb -s`'s frames: a COMMAND is one byte after the header, a REPLY
 * the status, the length and the JSON text; both pinned, both survive a
 * round trip, and a reply whose body is cut short is refused.
 */
Test(handover, command_and_reply_round_trip_and_are_pinned)
{
    static const uint8_t want_command[] = {
        'M', 'Q', 'H', 'O', 0, 1, 0, 11, 0, 0, 0, 1,    /* header */
        2,                                              /* cmd: stop */
    };
    static const uint8_t want_reply[] = {
        'M', 'Q', 'H', 'O', 0, 1, 0, 12, 0, 0, 0, 10,   /* header */
        0, 0, 1, 0xa6,                                  /* status 422 */
        0, 0, 0, 2,                                     /* length */
        '{', '}',                                       /* body */
    };
    struct handover_command cmd = { HANDOVER_CMD_STOP }, cmd2;
    struct handover_reply r;
    struct handover_buf b;
    const char *json = "{\"result\":\"failed\",\"errors\":[\"f.ini:3: x\"]}";
    const uint8_t *p;
    size_t len, cut;

    handover_buf_init(&b);
    cr_assert_eq(handover_encode_command(&b, &cmd), MQ_OK);
    cr_assert_eq(b.len, sizeof(want_command));
    cr_assert_eq(memcmp(b.data, want_command, b.len), 0);
    p = ho_frame(&b, HANDOVER_COMMAND, &len);
    cr_assert_eq(handover_decode_command(p, len, &cmd2), MQ_OK);
    cr_assert_eq(cmd2.cmd, HANDOVER_CMD_STOP);
    cr_assert_eq(handover_decode_command(p, 0, &cmd2), HANDOVER_EMALFORMED);
    /* an unknown command decodes: the server names it in its refusal */
    handover_buf_reset(&b);
    cmd.cmd = 200;
    cr_assert_eq(handover_encode_command(&b, &cmd), MQ_OK);
    p = ho_frame(&b, HANDOVER_COMMAND, &len);
    cr_assert_eq(handover_decode_command(p, len, &cmd2), MQ_OK);
    cr_assert_eq(cmd2.cmd, 200);

    handover_buf_reset(&b);
    cr_assert_eq(handover_encode_reply(&b, 422, "{}", 2), MQ_OK);
    cr_assert_eq(b.len, sizeof(want_reply));
    cr_assert_eq(memcmp(b.data, want_reply, b.len), 0);
    handover_buf_reset(&b);
    cr_assert_eq(handover_encode_reply(&b, 422, json, strlen(json)), MQ_OK);
    p = ho_frame(&b, HANDOVER_REPLY, &len);
    cr_assert_eq(handover_decode_reply(p, len, &r), MQ_OK);
    cr_assert_eq(r.status, 422);
    cr_assert_eq(r.len, strlen(json));
    cr_assert_eq(memcmp(r.body, json, r.len), 0);
    for (cut = 0; cut < len; cut++) {
        cr_assert_eq(handover_decode_reply(p, cut, &r), HANDOVER_EMALFORMED,
                     "a reply cut to %zu of %zu bytes was accepted", cut,
                     len);
        cr_assert_eq(r.len, 0);
    }
    cr_assert_str_eq(handover_type_name(HANDOVER_COMMAND), "COMMAND");
    cr_assert_str_eq(handover_type_name(HANDOVER_REPLY), "REPLY");
    handover_buf_deinit(&b);
}

Test(handover, a_reply_larger_than_a_frame_is_not_encoded)
{
    size_t n = HANDOVER_MAX_PAYLOAD;
    struct handover_buf b;
    char *big = malloc(n);

    cr_assert_not_null(big);
    memset(big, ' ', n);
    handover_buf_init(&b);
    /* the status and the length come on top: one byte too many */
    cr_assert_eq(handover_encode_reply(&b, 200, big, n - 8 + 1), MQ_ERR);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(handover_encode_reply(&b, 200, big, n - 8), MQ_OK);
    cr_assert_eq(b.len, HANDOVER_HEADER_LEN + n);
    handover_buf_deinit(&b);
    free(big);
}
