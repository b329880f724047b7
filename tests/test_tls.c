/*
 * test_tls.c: certificate sets (loading, and what mqlb -t reports: an
 * unreadable file, a key that does not match, an expired certificate,
 * bad cipher and ALPN lists, each at its key's line), certificate choice
 * by server name, and the relay over TLS on socketpairs: bytes both ways,
 * close_notify in both directions, handshake failure reasons.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mqlb/common.h"
#include "mqlb/proxy_proto.h"
#include "mqlb/relay.h"
#include "mqlb/tls.h"

static char tt_dir[64];

/*
 * A self-signed certificate for <cn> (also its DNS SAN) valid from
 * <from_days> to <to_days> (relative to now), into <dir>/<name>.pem with
 * its key, and the key alone into <dir>/<name>.key.
 */
static void
tt_make_cert(const char *name, const char *cn, long from_days, long to_days)
{
    char path[128], san[128];
    EVP_PKEY *pkey;
    X509 *x;
    X509_NAME *n;
    X509_EXTENSION *ext;
    X509V3_CTX v3;
    FILE *f;

    pkey = EVP_EC_gen("P-256");
    cr_assert_not_null(pkey);
    x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
    X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400);
    X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400);
    X509_set_pubkey(x, pkey);
    n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    snprintf(san, sizeof(san), "DNS:%s", cn);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    cr_assert_gt(X509_sign(x, pkey, EVP_sha256()), 0);
    snprintf(path, sizeof(path), "%s/%s.pem", tt_dir, name);
    f = fopen(path, "w");
    PEM_write_X509(f, x);
    PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    snprintf(path, sizeof(path), "%s/%s.key", tt_dir, name);
    f = fopen(path, "w");
    PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
}

static void
tt_setup(void)
{
    snprintf(tt_dir, sizeof(tt_dir), "/tmp/mqlb-test-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(tt_dir));
    tt_make_cert("a", "a.test", -1, 30);
    tt_make_cert("b", "b.test", -1, 30);
    tt_make_cert("old", "old.test", -30, -1);
}

static void
tt_teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", tt_dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(tls, .init = tt_setup, .fini = tt_teardown);

/* A conf with the certificates <names> ("a", "b"...), lines 10, 11, ... */
struct tt_conf {
    struct tls_server_conf cf;
    char               *certs[4];
    int                 lines[4];
    char                paths[4][128];
};

static void
tt_conf(struct tt_conf *c, const char *const *names, size_t n)
{
    size_t i;

    memset(c, 0, sizeof(*c));
    for (i = 0; i < n; i++) {
        snprintf(c->paths[i], sizeof(c->paths[i]), "%s/%s.pem", tt_dir,
                 names[i]);
        c->certs[i] = c->paths[i];
        c->lines[i] = 10 + (int)i;
    }
    c->cf.certs = c->certs;
    c->cf.cert_lines = c->lines;
    c->cf.ncerts = n;
    c->cf.min_version = TLS_MIN_12;
    c->cf.tickets = 1;
    c->cf.key_line = 20;
    c->cf.alpn_line = 21;
}

/* tls_server_create(<c>) fails at <line> with <text> in the message. */
static void
tt_expect_error(struct tt_conf *c, int line, const char *text)
{
    char err[MQ_ERR_LEN];
    int l = -1;

    cr_assert_null(tls_server_create(&c->cf, err, sizeof(err), &l));
    cr_assert_eq(l, line, "line %d, want %d (%s)", l, line, err);
    cr_assert_not_null(strstr(err, text), "\"%s\" lacks \"%s\"", err, text);
}

Test(tls, loads_a_certificate_set)
{
    static const char *const names[] = { "a", "b" };
    struct tls_server *ts;
    struct tt_conf c;
    char err[MQ_ERR_LEN];
    int line;

    tt_conf(&c, names, 2);
    ts = tls_server_create(&c.cf, err, sizeof(err), &line);
    cr_assert_not_null(ts, "%s", err);
    tls_server_destroy(ts);
}

Test(tls, reports_each_fault_at_its_line)
{
    static const char *const two[] = { "a", "missing" };
    static const char *const old[] = { "old" };
    static const char *const one[] = { "a" };
    char key[128];
    struct tt_conf c;

    tt_conf(&c, two, 2);
    tt_expect_error(&c, 11, "cannot read");

    tt_conf(&c, old, 1);
    tt_expect_error(&c, 10, "expired");

    tt_conf(&c, one, 1);
    snprintf(key, sizeof(key), "%s/b.key", tt_dir);
    c.cf.key = key;
    tt_expect_error(&c, 20, "does not match");

    snprintf(key, sizeof(key), "%s/nope.key", tt_dir);
    tt_expect_error(&c, 20, "tls_key");

    tt_conf(&c, one, 1);
    c.cf.alpn = "mqtt,,amqp";
    tt_expect_error(&c, 21, "tls_alpn");

    tt_conf(&c, one, 1);
    c.cf.ciphers = "NOT-A-CIPHER";
    tt_expect_error(&c, 10, "tls_ciphers");
}

/* ---- handshakes over a socketpair ----------------------------------- */

struct tt_pair {
    int                 fd[2];      /* [0] server side, [1] client side */
    struct tls_conn    *srv;
    SSL                *cli;
    SSL_CTX            *cctx;
};

/* A client SSL asking for <sni> (NULL: none), offering <alpn>. */
static void
tt_pair_open(struct tt_pair *p, struct tls_server *ts,
             struct tls_sni_hook *hook, const char *sni, const char *alpn)
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
                            p->fd), 0);
    p->srv = tls_server_conn(ts, p->fd[0], hook);
    cr_assert_not_null(p->srv);
    p->cctx = SSL_CTX_new(TLS_client_method());
    p->cli = SSL_new(p->cctx);
    SSL_set_fd(p->cli, p->fd[1]);
    if (sni != NULL) {
        SSL_set_tlsext_host_name(p->cli, sni);
    }
    if (alpn != NULL) {
        SSL_set_alpn_protos(p->cli, (const unsigned char *)alpn,
                            (unsigned)strlen(alpn));
    }
    SSL_set_connect_state(p->cli);
}

static void
tt_pair_close(struct tt_pair *p)
{
    tls_free(p->srv);
    SSL_free(p->cli);
    SSL_CTX_free(p->cctx);
    close(p->fd[0]);
    close(p->fd[1]);
}

/* Run both handshakes to their end; the server's outcome. */
static int
tt_handshake(struct tt_pair *p, enum tls_result *why)
{
    char err[MQ_ERR_LEN];
    int i, rc = MQ_AGAIN, want, crc;

    for (i = 0; i < 100 && rc == MQ_AGAIN; i++) {
        crc = SSL_do_handshake(p->cli);
        (void)crc;
        rc = tls_handshake(p->srv, &want, why, err, sizeof(err));
    }
    for (i = 0; i < 10; i++) {
        SSL_do_handshake(p->cli);   /* let the client read the Finished */
    }
    ERR_clear_error();
    return rc;
}

Test(tls, picks_the_certificate_by_server_name)
{
    static const char *const names[] = { "a", "b" };
    struct tls_server *ts;
    struct tt_conf c;
    struct tt_pair p;
    enum tls_result why;
    char err[MQ_ERR_LEN];
    X509_NAME *subj;
    char cn[64];
    int line;

    tt_conf(&c, names, 2);
    ts = tls_server_create(&c.cf, err, sizeof(err), &line);
    cr_assert_not_null(ts, "%s", err);

    tt_pair_open(&p, ts, NULL, "B.test", NULL);
    cr_assert_eq(tt_handshake(&p, &why), MQ_OK);
    subj = X509_get_subject_name(SSL_get0_peer_certificate(p.cli));
    X509_NAME_get_text_by_NID(subj, NID_commonName, cn, sizeof(cn));
    cr_assert_str_eq(cn, "b.test");
    tt_pair_close(&p);

    tt_pair_open(&p, ts, NULL, "unknown.test", NULL);
    cr_assert_eq(tt_handshake(&p, &why), MQ_OK);
    subj = X509_get_subject_name(SSL_get0_peer_certificate(p.cli));
    X509_NAME_get_text_by_NID(subj, NID_commonName, cn, sizeof(cn));
    cr_assert_str_eq(cn, "a.test");     /* the first is the default */
    tt_pair_close(&p);
    tls_server_destroy(ts);
}

static struct tls_server *
tt_refuse(void *arg, const char *name)
{
    (void)arg;
    (void)name;
    return NULL;
}

Test(tls, a_hook_that_finds_no_pool_fails_the_handshake_as_sni)
{
    static const char *const names[] = { "a" };
    struct tls_sni_hook hook = { .pick = tt_refuse };
    struct tls_server *ts;
    struct tt_conf c;
    struct tt_pair p;
    enum tls_result why = TLS_RESULT_OK;
    char err[MQ_ERR_LEN];
    int line;

    tt_conf(&c, names, 1);
    ts = tls_server_create(&c.cf, err, sizeof(err), &line);
    tt_pair_open(&p, ts, &hook, "x.test", NULL);
    cr_assert_eq(tt_handshake(&p, &why), MQ_ERR);
    cr_assert_eq(why, TLS_RESULT_SNI, "%s", tls_result_name(why));
    tt_pair_close(&p);
    tls_server_destroy(ts);
}

Test(tls, garbage_fails_as_not_tls)
{
    static const char *const names[] = { "a" };
    struct tls_server *ts;
    struct tt_conf c;
    enum tls_result why = TLS_RESULT_OK;
    char err[MQ_ERR_LEN];
    int fd[2], line, want;
    struct tls_conn *tls;

    tt_conf(&c, names, 1);
    ts = tls_server_create(&c.cf, err, sizeof(err), &line);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd), 0);
    tls = tls_server_conn(ts, fd[0], NULL);
    cr_assert_eq(write(fd[1], "GET / HTTP/1.1\r\n\r\n", 18), 18);
    cr_assert_eq(tls_handshake(tls, &want, &why, err, sizeof(err)), MQ_ERR);
    cr_assert_eq(why, TLS_RESULT_NOT_TLS, "%s: %s", tls_result_name(why),
                 err);
    tls_free(tls);
    close(fd[0]);
    close(fd[1]);
    tls_server_destroy(ts);
}

Test(tls, relays_both_ways_through_tls_with_close_notify)
{
    static const char *const names[] = { "a" };
    struct tls_server *ts;
    struct tt_conf c;
    struct tt_pair p;
    struct relay_pool rp;
    struct relay_dir up, down;
    struct proxy_proto_tls pt;
    enum tls_result why;
    char err[MQ_ERR_LEN], cn[64], buf[4096];
    static uint8_t big[200000];
    int plain[2], line, i, st;
    size_t got, sent, n;

    tt_conf(&c, names, 1);
    c.cf.alpn = "mqtt";
    ts = tls_server_create(&c.cf, err, sizeof(err), &line);
    cr_assert_not_null(ts, "%s", err);
    tt_pair_open(&p, ts, NULL, "a.test", "\x04mqtt");
    cr_assert_eq(tt_handshake(&p, &why), MQ_OK);
    tls_proxy_facts(p.srv, &pt, cn, sizeof(cn));
    cr_assert_eq(pt.alpnlen, 4);
    cr_assert_arr_eq(pt.alpn, "mqtt", 4);
    cr_assert_eq(pt.snilen, 6);
    cr_assert_not_null(pt.version);
    cr_assert_eq(pt.cert, 0);

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
                            plain), 0);
    relay_pool_init(&rp, 4);
    memset(&up, 0, sizeof(up));
    memset(&down, 0, sizeof(down));
    up.src = p.fd[0];
    up.src_io = &tls_relay_io;
    up.src_conn = p.srv;
    up.dst = plain[0];
    down.src = plain[0];
    down.dst = p.fd[0];
    down.dst_io = &tls_relay_io;
    down.dst_conn = p.srv;

    /* client -> TLS -> relay -> plain, more than one buffer's worth */
    for (i = 0; i < (int)sizeof(big); i++) {
        big[i] = (uint8_t)(i % 251);
    }
    sent = got = 0;
    for (i = 0; i < 10000 && got < sizeof(big); i++) {
        if (sent < sizeof(big)) {
            if (SSL_write_ex(p.cli, big + sent, MQ_MIN(sizeof(big) - sent,
                                                       16384), &n) == 1) {
                sent += n;
            }
            ERR_clear_error();
        }
        relay_pump(&up, &rp, RELAY_BUDGET);
        while (got < sizeof(big)) {
            ssize_t r = read(plain[1], buf, sizeof(buf));

            if (r <= 0) {
                break;
            }
            cr_assert_arr_eq(buf, big + got, (size_t)r);
            got += (size_t)r;
        }
    }
    cr_assert_eq(got, sizeof(big));
    cr_assert_eq(up.nbytes, sizeof(big));

    /* plain -> relay -> TLS -> client */
    cr_assert_eq(write(plain[1], "pong", 4), 4);
    relay_pump(&down, &rp, RELAY_BUDGET);
    n = 0;
    for (i = 0; i < 100 && n == 0; i++) {
        SSL_read_ex(p.cli, buf, sizeof(buf), &n);
        ERR_clear_error();
    }
    cr_assert_eq(n, 4);
    cr_assert_arr_eq(buf, "pong", 4);

    /* client's close_notify -> EOF on up; the broker's FIN -> close_notify */
    SSL_shutdown(p.cli);
    st = RELAY_IDLE;
    for (i = 0; i < 100 && st != RELAY_EOF; i++) {
        st = relay_pump(&up, &rp, RELAY_BUDGET);
    }
    cr_assert_eq(st, RELAY_EOF);
    cr_assert_eq(up.wait, RELAY_WAIT_NONE);
    relay_dir_shutdown(&up);
    cr_assert_eq(read(plain[1], buf, sizeof(buf)), 0);    /* FIN passed on */

    /* half-closed: the other direction still carries bytes */
    cr_assert_eq(write(plain[1], "late", 4), 4);
    shutdown(plain[1], SHUT_WR);
    st = RELAY_IDLE;
    for (i = 0; i < 100 && st != RELAY_EOF; i++) {
        st = relay_pump(&down, &rp, RELAY_BUDGET);
    }
    cr_assert_eq(st, RELAY_EOF);
    relay_dir_shutdown(&down);
    n = 0;
    for (i = 0; i < 100 && n == 0; i++) {
        SSL_read_ex(p.cli, buf, sizeof(buf), &n);
    }
    cr_assert_eq(n, 4);
    cr_assert_arr_eq(buf, "late", 4);
    cr_assert_eq(SSL_read_ex(p.cli, buf, sizeof(buf), &n), 0);
    cr_assert_eq(SSL_get_error(p.cli, 0), SSL_ERROR_ZERO_RETURN);
    ERR_clear_error();

    relay_dir_close(&up, &rp);
    relay_dir_close(&down, &rp);
    relay_pool_deinit(&rp);
    close(plain[0]);
    close(plain[1]);
    tt_pair_close(&p);
    tls_server_destroy(ts);
}

/* ---- mqlb's record layer after tls_slim, OpenSSL as the client ------- */

/* <p> opened, the client limited to <suites> (TLS 1.3 names) or to TLS
 * 1.2 (<tls12>), the handshake run and the server's end slimmed. */
static void
tt_slim_pair(struct tt_pair *p, struct tls_server *ts, const char *suites,
             int tls12, int expect)
{
    enum tls_result why;

    tt_pair_open(p, ts, NULL, "a.test", "\x04mqtt");
    if (suites != NULL) {
        cr_assert_eq(SSL_set_ciphersuites(p->cli, suites), 1);
    }
    if (tls12) {
        SSL_set_max_proto_version(p->cli, TLS1_2_VERSION);
    }
    cr_assert_eq(tt_handshake(p, &why), MQ_OK);
    cr_assert_eq(tls_slim(p->srv, 1), expect);
    cr_assert_eq(tls_is_slim(p->srv), expect == MQ_OK);
}

/* Everything the server end reads until <n> bytes came or the end. */
static size_t
tt_srv_read(struct tt_pair *p, uint8_t *buf, size_t n, size_t chunk)
{
    size_t got = 0;
    ssize_t r;
    int i, want;

    for (i = 0; i < 100000 && got < n; i++) {
        r = tls_relay_io.recv(p->srv, buf + got, MQ_MIN(chunk, n - got),
                              &want);
        if (r == 0) {
            break;
        }
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        cr_assert_eq(errno, EAGAIN, "%s", strerror(errno));
        break;
    }
    return got;
}

/* Client -> server <n> bytes, then server -> client <n> bytes with the
 * client reading only when the server's socket is full, all checked. */
static void
tt_both_ways(struct tt_pair *p, size_t n)
{
    static uint8_t out[300000], in[300000];
    size_t sent = 0, got = 0, k;
    ssize_t r;
    int i, want;

    cr_assert_leq(n, sizeof(out));
    for (k = 0; k < n; k++) {
        out[k] = (uint8_t)(k * 13 % 251);
    }
    for (i = 0; i < 100000 && got < n; i++) {
        if (sent < n && SSL_write_ex(p->cli, out + sent,
                                     MQ_MIN(n - sent, 5000), &k) == 1) {
            sent += k;
        }
        ERR_clear_error();
        /* small reads: records outlast a call and wait in the layer */
        got += tt_srv_read(p, in + got, n - got, 3000);
    }
    cr_assert_eq(got, n);
    cr_assert_arr_eq(in, out, n);

    sent = got = 0;
    for (i = 0; i < 100000 && got < n; i++) {
        while (sent < n) {
            r = tls_relay_io.send(p->srv, out + sent, n - sent, &want);
            if (r <= 0) {
                cr_assert_eq(errno, EAGAIN);
                break;
            }
            sent += (size_t)r;
        }
        if (SSL_read_ex(p->cli, in + got, n - got, &k) == 1) {
            got += k;
        }
        ERR_clear_error();
    }
    cr_assert_eq(got, n);
    cr_assert_arr_eq(in, out, n);
}

/* <msg> from the client, read by the server end. */
static void
tt_up(struct tt_pair *p, const char *msg)
{
    uint8_t buf[64];
    size_t n;

    cr_assert_eq(SSL_write_ex(p->cli, msg, strlen(msg), &n), 1);
    cr_assert_eq(tt_srv_read(p, buf, strlen(msg), sizeof(buf)),
                 strlen(msg));
    cr_assert_arr_eq(buf, msg, strlen(msg));
}

/* <msg> from the server end, read by the client. */
static void
tt_down(struct tt_pair *p, const char *msg)
{
    char buf[64];
    size_t n = 0;
    int i, want;

    cr_assert_eq(tls_relay_io.send(p->srv, msg, strlen(msg), &want),
                 (ssize_t)strlen(msg));
    for (i = 0; i < 100 && n == 0; i++) {
        SSL_read_ex(p->cli, buf, sizeof(buf), &n);
        ERR_clear_error();
    }
    cr_assert_eq(n, strlen(msg));
    cr_assert_arr_eq(buf, msg, n);
}

/* OpenSSL's close_notify is the end of the stream for mqlb's end (read
 * again: still the end), and mqlb's close_notify reaches OpenSSL. */
static void
tt_close_notify(struct tt_pair *p)
{
    char buf[16];
    size_t n;
    int i, want;

    SSL_shutdown(p->cli);
    cr_assert_eq(tt_srv_read(p, (uint8_t *)buf, sizeof(buf), sizeof(buf)),
                 0);
    cr_assert_eq(tls_relay_io.recv(p->srv, buf, sizeof(buf), &want), 0);
    tls_relay_io.shutdown(p->srv, p->fd[0]);
    for (i = 0; i < 10; i++) {
        if (SSL_read_ex(p->cli, buf, sizeof(buf), &n) == 0
            && SSL_get_error(p->cli, 0) == SSL_ERROR_ZERO_RETURN) {
            break;
        }
    }
    cr_assert_lt(i, 10, "no close_notify came");
    ERR_clear_error();
}

/* Both ways in turn, a KeyUpdate from OpenSSL's side that asks for
 * mqlb's, one that does not, <n> bytes each way, then close_notify from
 * OpenSSL's side and mqlb's answer. */
static void
tt_conversation(struct tt_pair *p, size_t n)
{
    tt_up(p, "first");
    tt_down(p, "one");
    cr_assert_eq(SSL_key_update(p->cli, SSL_KEY_UPDATE_REQUESTED), 1);
    tt_up(p, "second");
    tt_down(p, "two");
    cr_assert_eq(SSL_key_update(p->cli, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
    tt_up(p, "third");
    tt_down(p, "three");
    tt_both_ways(p, n);
    tt_close_notify(p);
}

Test(tls, slim_connections_talk_to_openssl_in_every_suite_with_key_updates)
{
    static const char *const names[] = { "a" };
    static const char *const suites[] = {
        "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
    };
    struct proxy_proto_tls pt;
    struct tls_server *ts;
    struct tt_conf c;
    struct tt_pair p;
    char err[MQ_ERR_LEN], cn[64];
    int line, tickets;
    size_t i;

    for (tickets = 0; tickets < 2; tickets++) {
        /* with tickets the server's first records are two tickets:
         * counted, its sequence numbers start at 2 */
        tt_conf(&c, names, 1);
        c.cf.tickets = tickets;
        c.cf.alpn = "mqtt";
        ts = tls_server_create(&c.cf, err, sizeof(err), &line);
        cr_assert_not_null(ts, "%s", err);
        for (i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
            tt_slim_pair(&p, ts, suites[i], 0, MQ_OK);
            tls_proxy_facts(p.srv, &pt, cn, sizeof(cn));
            cr_assert_eq(pt.snilen, 6);
            cr_assert_arr_eq(pt.sni, "a.test", 6);
            cr_assert_eq(pt.alpnlen, 4);
            cr_assert_str_eq(pt.version, "TLSv1.3");
            cr_assert_str_eq(pt.cipher, suites[i]);
            tt_conversation(&p, 300000);
            tt_pair_close(&p);
        }
        tls_server_destroy(ts);
    }
}

Test(tls, tls12_stays_with_openssl)
{
    static const char *const names[] = { "a" };
    struct tls_server *ts;
    struct tt_conf c;
    struct tt_pair p;
    char err[MQ_ERR_LEN];
    int line;

    tt_conf(&c, names, 1);
    ts = tls_server_create(&c.cf, err, sizeof(err), &line);
    tt_slim_pair(&p, ts, NULL, 1, MQ_ERR);
    cr_assert_eq(SSL_version(p.cli), TLS1_2_VERSION);
    tt_both_ways(&p, 100000);
    tt_pair_close(&p);
    tls_server_destroy(ts);
}

Test(tls, a_forged_record_ends_a_slim_stream)
{
    static const char *const names[] = { "a" };
    struct tls_server *ts;
    struct tt_conf c;
    struct tt_pair p;
    char err[MQ_ERR_LEN], buf[64];
    uint8_t forged[5 + 32] = { 23, 3, 3, 0, 32 };
    int line, want;

    tt_conf(&c, names, 1);
    ts = tls_server_create(&c.cf, err, sizeof(err), &line);
    tt_slim_pair(&p, ts, NULL, 0, MQ_OK);
    tt_up(&p, "fine");
    memset(forged + 5, 0x5a, 32);
    cr_assert_eq(write(p.fd[1], forged, sizeof(forged)),
                 (ssize_t)sizeof(forged));
    cr_assert_eq(tls_relay_io.recv(p.srv, buf, sizeof(buf), &want), -1);
    cr_assert_eq(errno, EBADMSG);
    /* and it stays broken, reported again */
    cr_assert_gt(tls_relay_io.pending(p.srv), 0);
    cr_assert_eq(tls_relay_io.recv(p.srv, buf, sizeof(buf), &want), -1);
    cr_assert_eq(errno, EBADMSG);
    tt_pair_close(&p);

    /* a header no TLS 1.3 record has: a plaintext handshake record */
    tt_slim_pair(&p, ts, NULL, 0, MQ_OK);
    forged[0] = 22;
    cr_assert_eq(write(p.fd[1], forged, sizeof(forged)),
                 (ssize_t)sizeof(forged));
    cr_assert_eq(tls_relay_io.recv(p.srv, buf, sizeof(buf), &want), -1);
    cr_assert_eq(errno, EPROTO);
    tt_pair_close(&p);
    tls_server_destroy(ts);
}

/* <p> with mqlb's side the TLS client (<tc>, in p->srv) and an OpenSSL
 * server (p->cli) answering with certificate "a", offering <suites>. */
static void
tt_client_pair(struct tt_pair *p, struct tls_client *tc, const char *suites)
{
    char path[128];

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
                            p->fd), 0);
    snprintf(path, sizeof(path), "%s/a.pem", tt_dir);
    p->cctx = SSL_CTX_new(TLS_server_method());
    cr_assert_eq(SSL_CTX_use_certificate_chain_file(p->cctx, path), 1);
    cr_assert_eq(SSL_CTX_use_PrivateKey_file(p->cctx, path,
                                             SSL_FILETYPE_PEM), 1);
    cr_assert_eq(SSL_CTX_set_ciphersuites(p->cctx, suites), 1);
    p->cli = SSL_new(p->cctx);
    SSL_set_fd(p->cli, p->fd[1]);
    SSL_set_accept_state(p->cli);
    p->srv = tls_client_conn(tc, p->fd[0], "a.test:8883");
    cr_assert_not_null(p->srv);
}

Test(tls, slim_broker_connections_skip_tickets_and_follow_key_updates)
{
    static const char *const suites[] = {
        "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
    };
    struct tls_client_conf cc = { .enabled = 1 };
    struct tls_client *tc;
    struct tt_pair p;
    enum tls_result why;
    char err[MQ_ERR_LEN];
    int line;
    size_t k;

    tc = tls_client_create(&cc, err, sizeof(err), &line);
    cr_assert_not_null(tc, "%s", err);
    for (k = 0; k < sizeof(suites) / sizeof(suites[0]); k++) {
        tt_client_pair(&p, tc, suites[k]);
        cr_assert_eq(tt_handshake(&p, &why), MQ_OK);
        cr_assert_eq(tls_slim(p.srv, 0), MQ_OK, "%s", suites[k]);
        cr_assert(tls_is_slim(p.srv));
        /* (the broker's two session tickets come first, passed over) */
        tt_conversation(&p, 300000);
        tt_pair_close(&p);
    }
    tls_client_destroy(tc);
}

/*
 * The relay over a slim connection as an event loop drives it: pumped
 * again only when the socket is readable (or the relay did not wait for
 * that). The layer reads ahead of the record it returns, so a relay that
 * yields after its budget while whole records wait in the layer would
 * wait on an empty socket for ever (a 64 KiB SET from redis-benchmark
 * did).
 */
Test(tls, a_slim_relay_never_waits_on_records_it_has_read)
{
    static const char *const names[] = { "a" };
    static uint8_t big[RELAY_BUDGET * 3 + 46], buf[65536];
    struct tls_server *ts;
    struct tt_conf c;
    struct tt_pair p;
    struct relay_pool rp;
    struct relay_dir up;
    struct pollfd pfd;
    char err[MQ_ERR_LEN];
    int plain[2], line, i, st = RELAY_YIELD;
    size_t sent = 0, got = 0, n;
    ssize_t r;

    tt_conf(&c, names, 1);
    ts = tls_server_create(&c.cf, err, sizeof(err), &line);
    tt_slim_pair(&p, ts, NULL, 0, MQ_OK);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
                            plain), 0);
    relay_pool_init(&rp, 4);
    memset(&up, 0, sizeof(up));
    up.src = p.fd[0];
    up.src_io = &tls_relay_io;
    up.src_conn = p.srv;
    up.dst = plain[0];
    for (n = 0; n < sizeof(big); n++) {
        big[n] = (uint8_t)(n % 241);
    }
    for (i = 0; i < 1000 && got < sizeof(big); i++) {
        if (sent < sizeof(big) && SSL_write_ex(p.cli, big + sent,
                                               sizeof(big) - sent, &n) == 1) {
            sent += n;
        }
        ERR_clear_error();
        pfd.fd = p.fd[0];
        pfd.events = POLLIN;
        if (st == RELAY_BLOCKED || poll(&pfd, 1, 0) == 1) {
            st = relay_pump(&up, &rp, RELAY_BUDGET);
        }
        while ((r = read(plain[1], buf, sizeof(buf))) > 0) {
            cr_assert_arr_eq(buf, big + got, (size_t)r);
            got += (size_t)r;
        }
    }
    cr_assert_eq(got, sizeof(big), "%zu of %zu bytes came", got,
                 sizeof(big));
    relay_dir_close(&up, &rp);
    relay_pool_deinit(&rp);
    close(plain[0]);
    close(plain[1]);
    tt_pair_close(&p);
    tls_server_destroy(ts);
}
