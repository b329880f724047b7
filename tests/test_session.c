/*
 * test_session.c: the session on a bench. A real libev loop runs the
 * session; the client is one end of a socketpair, the brokers are
 * listening sockets on loopback that the test accepts from, reads and
 * answers by hand. Every transition of the state diagram in session.c
 * (and the README) is driven from the outside and seen from the outside:
 * bytes that arrive, ends of stream, the backend's counters, the pool's
 * rejections, the owner's hooks and the admission ticket coming back.
 * The TLS certificates come from openssl(1), made for each test.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mqlb/admission.h"
#include "mqlb/backend.h"
#include "mqlb/common.h"
#include "mqlb/config.h"
#include "mqlb/gen.h"
#include "mqlb/pool.h"
#include "mqlb/relay.h"
#include "mqlb/session.h"
#include "mqlb/tls.h"

#define BENCH_MAX_BACKENDS  3
#define BENCH_WAIT_MS       3000    /* bound on every wait */

/* What stands behind a backend address. */
enum bench_kind {
    BENCH_LISTEN = 0,   /* a listening socket the test accepts from */
    BENCH_REFUSE,       /* a closed port: connect is refused at once */
    BENCH_STALL,        /* a full backlog: connect hangs until timeout */
};

/* The owner of the sessions under test, and its brokers. */
struct bench {
    struct ev_loop     *loop;
    ev_timer            tick;           /* keeps EVRUN_ONCE short */
    struct relay_pool   rp;
    _Atomic uint64_t    next_id;
    struct session_env  env;
    struct admission    adm;
    struct gen_keep    *keep;
    struct gen         *gen;
    struct pool        *pool;
    int                 lfd[BENCH_MAX_BACKENDS];
    int                 stallfd[2];     /* fill a BENCH_STALL backlog */
    unsigned            nbackends;
    int                 nclosed;        /* on_closed hook calls */
    int                 nshortage;      /* on_shortage hook calls */
    int                 ndown;          /* pool on_down hook calls */
};

static struct bench B;

static void
bench_closed(void *ctx)
{
    ((struct bench *)ctx)->nclosed++;
}

static void
bench_shortage(void *ctx)
{
    ((struct bench *)ctx)->nshortage++;
}

static void
bench_down(void *ctx, struct pool *pool)
{
    (void)pool;
    ((struct bench *)ctx)->ndown++;
}

static void
bench_tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)t;
    (void)revents;
}

/* A loopback socket bound to a port of the kernel's choosing. */
static int
bench_bind(unsigned short *port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_neq(fd, -1);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

/* A non-blocking connect to 127.0.0.1:<port>, left in flight. */
static int
bench_connect_nb(unsigned short port)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    cr_assert_neq(fd, -1);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(port);
    connect(fd, (struct sockaddr *)&sin, sizeof(sin));
    return fd;
}

/*
 * The bench: one pool "p" whose backends are <kinds>, with <extra> pool
 * lines ("retries = 1\n"...) and "weight=2" on the first backend so that
 * the first pick is deterministic.
 */
static void
bench_start(const enum bench_kind *kinds, unsigned n, const char *extra)
{
    struct config_errors errs = { 0 };
    struct config *cf;
    char text[2048], line[128];
    unsigned short port;
    unsigned i;

    memset(&B, 0, sizeof(B));
    /* As mqlb's core does: TLS writes with write(2), no MSG_NOSIGNAL. */
    signal(SIGPIPE, SIG_IGN);
    B.loop = ev_loop_new(EVFLAG_AUTO);
    cr_assert_not_null(B.loop);
    ev_timer_init(&B.tick, bench_tick_cb, 0.002, 0.002);
    ev_timer_start(B.loop, &B.tick);
    relay_pool_init(&B.rp, 16);
    B.env.loop = B.loop;
    B.env.rp = &B.rp;
    B.env.next_id = &B.next_id;
    B.env.on_closed = bench_closed;
    B.env.on_shortage = bench_shortage;
    B.env.ctx = &B;
    admission_init(&B.adm, 100);
    B.stallfd[0] = B.stallfd[1] = -1;
    /* A certificate makes the listen address a TLS one. */
    snprintf(text, sizeof(text), "[pool p]\nlisten = 127.0.0.1:1%s\n"
             "health_check = none\n%s",
             strstr(extra, "tls_cert") != NULL ? " tls" : "", extra);
    for (i = 0; i < n; i++) {
        B.lfd[i] = bench_bind(&port);
        if (kinds[i] == BENCH_REFUSE) {
            close(B.lfd[i]);
            B.lfd[i] = -1;
        } else {
            /* A backlog of 0 holds one connection; two more stall. */
            cr_assert_eq(listen(B.lfd[i], kinds[i] == BENCH_STALL ? 0
                                                                  : 16), 0);
            fcntl(B.lfd[i], F_SETFL, O_NONBLOCK);
        }
        if (kinds[i] == BENCH_STALL) {
            B.stallfd[0] = bench_connect_nb(port);
            B.stallfd[1] = bench_connect_nb(port);
        }
        snprintf(line, sizeof(line), "backend = %c 127.0.0.1:%u%s\n",
                 'a' + i, port, i == 0 ? " weight=2" : "");
        strncat(text, line, sizeof(text) - strlen(text) - 1);
    }
    B.nbackends = n;
    cf = config_load_string(text, "bench.ini", &errs);
    cr_assert_not_null(cf, "config: %s", errs.nmsgs > 0 ? errs.msgs[0]
                                                        : "?");
    config_errors_deinit(&errs);
    B.gen = gen_create(cf, NULL, NULL, &B.keep, bench_down, &B);
    cr_assert_not_null(B.gen);
    B.pool = gen_find_pool(B.gen, "p");
    cr_assert_not_null(B.pool);
}

static void
bench_stop(void)
{
    unsigned i;

    session_close_all(&B.env, "bench over");
    for (i = 0; i < B.nbackends; i++) {
        if (B.lfd[i] != -1) {
            close(B.lfd[i]);
        }
    }
    if (B.stallfd[0] != -1) {
        close(B.stallfd[0]);
        close(B.stallfd[1]);
    }
    gen_retire(B.gen);
    gen_keep_free(B.keep);
    relay_pool_deinit(&B.rp);
    ev_loop_destroy(B.loop);
}

static struct backend *
bench_backend(unsigned i)
{
    char name[2] = { (char)('a' + i), '\0' };

    return pool_find_backend(B.pool, name);
}

/* A client: a session on one end of a socketpair; returns the other. */
static int
bench_client_entry(const struct session_entry *e)
{
    struct admission_ticket t;
    struct sockaddr_in *sin = &t.peer.in4;
    int sv[2];

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK
                            | SOCK_CLOEXEC, 0, sv), 0);
    cr_assert_eq(admission_take(&B.adm, &t), MQ_OK);
    memset(&t.peer, 0, sizeof(t.peer));
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(0x7f000001);
    sin->sin_port = htons(40000);
    cr_assert_eq(session_create(&B.env, e, sv[0], &t), MQ_OK);
    cr_assert_null(t.adm, "the session holds the ticket");
    return sv[1];
}

/* A client that sent <first> (and its FIN, with <fin>) before mqlb took
 * it, as a client of a defer_accept listener has. */
static int
bench_client_early(const char *first, bool fin)
{
    struct session_entry e = { .pools = &B.pool, .npools = 1 };
    struct admission_ticket t;
    struct sockaddr_in *sin = &t.peer.in4;
    int sv[2];

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK
                            | SOCK_CLOEXEC, 0, sv), 0);
    if (first[0] != '\0') {
        cr_assert_eq(send(sv[1], first, strlen(first), MSG_NOSIGNAL),
                     (ssize_t)strlen(first));
    }
    if (fin) {
        cr_assert_eq(shutdown(sv[1], SHUT_WR), 0);
    }
    cr_assert_eq(admission_take(&B.adm, &t), MQ_OK);
    memset(&t.peer, 0, sizeof(t.peer));
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(0x7f000001);
    sin->sin_port = htons(40000);
    cr_assert_eq(session_create(&B.env, &e, sv[0], &t), MQ_OK);
    return sv[1];
}

/* Successful connects backend <i> has timed. */
static uint64_t
bench_connects_ok(unsigned i)
{
    const struct histo *h = &bench_backend(i)->connect_time;
    uint64_t n = 0;
    unsigned k;

    for (k = 0; k <= HISTO_MAX_BUCKETS; k++) {
        n += atomic_load(&h->counts[k]);
    }
    return n;
}

static int
bench_client(void)
{
    struct session_entry e = { .pools = &B.pool, .npools = 1 };

    return bench_client_entry(&e);
}

/* One turn of the loop (at most a tick long). */
static void
bench_step(void)
{
    ev_run(B.loop, EVRUN_ONCE);
}

/* Accept a connection on backend <i> within the bound, or fail. */
static int
bench_accept(unsigned i)
{
    uint64_t end = mq_now_ms() + BENCH_WAIT_MS;
    int fd;

    while (mq_now_ms() < end) {
        bench_step();
        fd = accept4(B.lfd[i], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd != -1) {
            return fd;
        }
    }
    cr_assert_fail("no connection reached backend %c", 'a' + i);
    return -1;
}

/* Nothing reaches backend <i> while the loop runs for <ms>. */
static void
bench_no_accept(unsigned i, unsigned ms)
{
    uint64_t end = mq_now_ms() + ms;
    int fd;

    while (mq_now_ms() < end) {
        bench_step();
        fd = accept4(B.lfd[i], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        cr_assert_eq(fd, -1, "backend %c got a connection", 'a' + i);
    }
}

static void
bench_send_bytes(int fd, const void *p, size_t n)
{
    cr_assert_eq(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void
bench_send(int fd, const char *s)
{
    bench_send_bytes(fd, s, strlen(s));
}

/* Read exactly the <n> bytes <want> from <fd> while the loop runs; fail
 * otherwise. */
static void
bench_expect_bytes(int fd, const void *want, size_t n)
{
    uint64_t end = mq_now_ms() + BENCH_WAIT_MS;
    char buf[256];
    size_t got = 0;
    ssize_t r;

    cr_assert_lt(n, sizeof(buf));
    while (got < n && mq_now_ms() < end) {
        bench_step();
        r = recv(fd, buf + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
        } else {
            cr_assert(r == -1 && errno == EAGAIN, "stream ended after %zu "
                      "of %zu bytes", got, n);
        }
    }
    cr_assert_eq(got, n, "%zu of %zu bytes in time", got, n);
    cr_assert_arr_eq(buf, want, n);
}

static void
bench_expect(int fd, const char *want)
{
    bench_expect_bytes(fd, want, strlen(want));
}

/* <fd> sees the end of the stream (FIN, or a reset) within the bound,
 * and no byte before it. */
static void
bench_expect_eof(int fd)
{
    uint64_t end = mq_now_ms() + BENCH_WAIT_MS;
    char c;
    ssize_t r;

    while (mq_now_ms() < end) {
        bench_step();
        r = recv(fd, &c, 1, 0);
        if (r == 0 || (r == -1 && errno == ECONNRESET)) {
            return;
        }
        cr_assert(r == -1 && errno == EAGAIN, "a byte came before the end");
    }
    cr_assert_fail("the stream did not end in time");
}

/* Run the loop until <*n> reaches <want>, within the bound. */
static void
bench_until(const int *n, int want)
{
    uint64_t end = mq_now_ms() + BENCH_WAIT_MS;

    while (*n < want && mq_now_ms() < end) {
        bench_step();
    }
    cr_assert_eq(*n, want);
}

/* The session is gone and gave everything back. */
static void
bench_expect_gone(int nclosed)
{
    bench_until(&B.nclosed, nclosed);
    cr_expect_eq(B.env.nsessions, 0);
    cr_expect_eq(admission_nlive(&B.adm), 0, "the ticket came back");
}

static uint64_t
bench_rejected(enum reject_reason why)
{
    return atomic_load(&B.pool->nrejected[why]);
}

/* ---- CONNECTING -> RELAYING -> closed -------------------------------- */

Test(session, relays_both_ways_and_passes_each_half_close_on)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    int c, b;

    bench_start(k, 1, "");
    c = bench_client();
    b = bench_accept(0);
    bench_send(c, "ping");
    bench_expect(b, "ping");
    bench_send(b, "pong");
    bench_expect(c, "pong");
    cr_expect_eq(atomic_load(&bench_backend(0)->nactive), 1);

    /* The client ends its side: the broker sees the FIN and can still
     * answer; the session ends when the broker ends too. */
    shutdown(c, SHUT_WR);
    bench_expect_eof(b);
    bench_send(b, "late");
    bench_expect(c, "late");
    cr_expect_eq(B.nclosed, 0, "half-closed is still open");
    close(b);
    bench_expect_eof(c);
    bench_expect_gone(1);
    cr_expect_eq(atomic_load(&bench_backend(0)->nactive), 0);
    cr_expect_eq(atomic_load(&bench_backend(0)->ntotal), 1);
    cr_expect_eq(atomic_load(&bench_backend(0)->bytes_in), 4);
    cr_expect_eq(atomic_load(&bench_backend(0)->bytes_out), 8);
    close(c);
    bench_stop();
}

/*
 * Both ends said FIN (the broker first), but the client's last bytes
 * still wait in its socket behind a broker that reads slowly: the
 * hang-up look (which sees POLLHUP on the client) must leave them to the
 * relay, not end the session. (The soak once caught this losing bytes.)
 */
Test(session, a_clean_hang_up_behind_backpressure_loses_no_byte)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    static uint8_t chunk[65536], got[65536];
    size_t sent = 0, recvd = 0, i;
    uint64_t quiet_since, end;
    ssize_t r;
    int c, b;

    for (i = 0; i < sizeof(chunk); i++) {
        chunk[i] = (uint8_t)(i % 251);
    }
    bench_start(k, 1, "");
    c = bench_client();
    b = bench_accept(0);
    bench_send(b, "bye");
    shutdown(b, SHUT_WR);
    bench_expect(c, "bye");
    bench_expect_eof(c);
    /* The broker does not read: write until mqlb stops taking bytes. */
    quiet_since = mq_now_ms();
    end = quiet_since + BENCH_WAIT_MS;
    while (mq_now_ms() - quiet_since < 200 && mq_now_ms() < end) {
        bench_step();
        r = send(c, chunk + sent % sizeof(chunk),
                 sizeof(chunk) - sent % sizeof(chunk), MSG_NOSIGNAL);
        if (r > 0) {
            sent += (size_t)r;
            quiet_since = mq_now_ms();
        }
    }
    cr_assert_gt(sent, 0);
    cr_assert_lt(mq_now_ms(), end, "mqlb never pushed back");
    shutdown(c, SHUT_WR);
    /* Longer than a half-closed session's hang-up period (2 s). */
    end = mq_now_ms() + 2500;
    while (mq_now_ms() < end) {
        bench_step();
    }
    cr_expect_eq(B.nclosed, 0, "the session ended with bytes in flight");
    /* The broker reads at last: every byte, in order, then the end. */
    end = mq_now_ms() + 2 * BENCH_WAIT_MS;
    while (mq_now_ms() < end) {
        bench_step();
        r = recv(b, got, sizeof(got), 0);
        if (r == 0) {
            break;
        }
        if (r > 0) {
            for (i = 0; i < (size_t)r; i++) {
                cr_assert_eq(got[i], (uint8_t)((recvd + i) % sizeof(chunk) % 251),
                             "byte %zu altered", recvd + i);
            }
            recvd += (size_t)r;
        }
    }
    cr_expect_eq(recvd, sent, "%zu of %zu bytes reached the broker", recvd, sent);
    close(b);
    bench_expect_gone(1);
    close(c);
    bench_stop();
}

Test(session, an_error_on_one_side_closes_both)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    struct linger lg = { 1, 0 };
    int c, b;

    bench_start(k, 1, "");
    c = bench_client();
    b = bench_accept(0);
    bench_send(c, "x");
    bench_expect(b, "x");
    /* The broker resets the connection after it answered: no replay. */
    bench_send(b, "y");
    bench_expect(c, "y");
    setsockopt(b, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(b);
    bench_expect_eof(c);
    bench_expect_gone(1);
    close(c);
    bench_stop();
}

/* ---- CONNECTING: refused, timed out, retries, no backend ------------- */

Test(session, a_refused_connect_moves_to_the_next_backend)
{
    enum bench_kind k[] = { BENCH_REFUSE, BENCH_LISTEN };
    int c, b;

    bench_start(k, 2, "retries = 1\n");
    c = bench_client();
    b = bench_accept(1);
    cr_expect_eq(atomic_load(&bench_backend(0)->nfailed), 1);
    bench_send(c, "to b");
    bench_expect(b, "to b");
    close(b);
    close(c);
    bench_expect_gone(1);
    bench_stop();
}

Test(session, a_connect_timeout_moves_to_the_next_backend)
{
    enum bench_kind k[] = { BENCH_STALL, BENCH_LISTEN };
    int c, b;

    bench_start(k, 2, "retries = 1\nconnect_timeout = 200ms\n");
    c = bench_client();
    b = bench_accept(1);
    cr_expect_eq(atomic_load(&bench_backend(0)->nfailed), 1,
                 "the stalled backend is charged with the timeout");
    bench_send(c, "late but there");
    bench_expect(b, "late but there");
    close(b);
    close(c);
    bench_expect_gone(1);
    bench_stop();
}

/* ---- bytes there at connect time: relayed before the loop runs ------ */

Test(session, bytes_there_at_connect_go_to_the_broker_at_once)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    char buf[16];
    int c, b;

    bench_start(k, 1, "");
    c = bench_client_early("hello", false);
    /* No turn of the loop yet: the connect confirmed itself by the send. */
    b = accept4(B.lfd[0], NULL, NULL, SOCK_CLOEXEC);
    cr_assert_neq(b, -1);
    cr_expect_eq(recv(b, buf, sizeof(buf), MSG_DONTWAIT), 5);
    cr_expect_arr_eq(buf, "hello", 5);
    cr_expect_eq(bench_connects_ok(0), 1, "the connect is counted once");
    cr_expect_eq(atomic_load(&bench_backend(0)->nfailed), 0);
    fcntl(b, F_SETFL, O_NONBLOCK);
    bench_send(b, "world");
    bench_expect(c, "world");
    bench_send(c, "again");
    bench_expect(b, "again");
    shutdown(c, SHUT_WR);
    bench_expect_eof(b);
    close(b);
    bench_expect_eof(c);
    bench_expect_gone(1);
    cr_expect_eq(atomic_load(&bench_backend(0)->bytes_in), 10);
    cr_expect_eq(atomic_load(&bench_backend(0)->bytes_out), 5);
    close(c);
    bench_stop();
}

Test(session, bytes_there_at_a_refused_connect_go_to_the_next_backend)
{
    enum bench_kind k[] = { BENCH_REFUSE, BENCH_LISTEN };
    int c, b;

    bench_start(k, 2, "retries = 1\n");
    c = bench_client_early("to b", false);
    b = bench_accept(1);
    bench_expect(b, "to b");
    cr_expect_eq(atomic_load(&bench_backend(0)->nfailed), 1);
    cr_expect_eq(bench_connects_ok(0), 0);
    cr_expect_eq(bench_connects_ok(1), 1);
    bench_send(b, "from b");
    bench_expect(c, "from b");
    close(b);
    close(c);
    bench_expect_gone(1);
    bench_stop();
}

Test(session, bytes_there_at_a_stalled_connect_wait_for_its_timeout)
{
    enum bench_kind k[] = { BENCH_STALL, BENCH_LISTEN };
    int c, b;

    /* The send would block: the bytes wait, and the connect timeout (not
     * the quicker look for hang-ups of a relaying session) decides. */
    bench_start(k, 2, "retries = 1\nconnect_timeout = 1s\n");
    c = bench_client_early("late but there", false);
    bench_no_accept(1, 500);
    cr_expect_eq(atomic_load(&bench_backend(0)->nfailed), 0,
                 "not failed before connect_timeout");
    b = bench_accept(1);
    cr_expect_eq(atomic_load(&bench_backend(0)->nfailed), 1,
                 "the stalled backend is charged with the timeout");
    bench_expect(b, "late but there");
    bench_send(b, "ok");
    bench_expect(c, "ok");
    close(b);
    close(c);
    bench_expect_gone(1);
    bench_stop();
}

Test(session, a_fin_before_any_byte_is_passed_on_once_connected)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    int c, b;

    bench_start(k, 1, "");
    c = bench_client_early("", true);
    b = bench_accept(0);
    bench_expect_eof(b);
    bench_send(b, "bye");
    bench_expect(c, "bye");
    close(b);
    bench_expect_eof(c);
    bench_expect_gone(1);
    cr_expect_eq(bench_connects_ok(0), 1);
    close(c);
    bench_stop();
}

Test(session, bytes_and_fin_there_at_connect_are_both_delivered)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    int c, b;

    bench_start(k, 1, "");
    c = bench_client_early("last words", true);
    b = bench_accept(0);
    bench_expect(b, "last words");
    bench_expect_eof(b);
    bench_send(b, "noted");
    bench_expect(c, "noted");
    close(b);
    bench_expect_eof(c);
    bench_expect_gone(1);
    close(c);
    bench_stop();
}

Test(session, every_try_failing_closes_the_client_and_counts_it)
{
    enum bench_kind k[] = { BENCH_REFUSE, BENCH_REFUSE };
    int c;

    bench_start(k, 2, "retries = 1\nmax_fails = 1\n");
    c = bench_client();
    bench_expect_eof(c);
    bench_expect_gone(1);
    cr_expect_eq(bench_rejected(REJECT_NO_BACKEND), 1);
    cr_expect_eq(atomic_load(&bench_backend(0)->nfailed), 1);
    cr_expect_eq(atomic_load(&bench_backend(1)->nfailed), 1);
    cr_expect_eq(B.ndown, 2, "each passive failure that took a backend "
                 "down reached the owner's on_down hook");
    close(c);
    bench_stop();
}

Test(session, retries_bound_the_tries)
{
    enum bench_kind k[] = { BENCH_REFUSE, BENCH_REFUSE, BENCH_LISTEN };
    int c;

    /* retries = 1: two tries, both refused; the third backend is never
     * tried. */
    bench_start(k, 3, "retries = 1\n");
    c = bench_client();
    bench_expect_eof(c);
    bench_expect_gone(1);
    bench_no_accept(2, 50);
    cr_expect_eq(bench_rejected(REJECT_NO_BACKEND), 1);
    close(c);
    bench_stop();
}

Test(session, no_live_backend_closes_the_client_at_once)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    int c;

    bench_start(k, 1, "");
    backend_set_admin(bench_backend(0), BACKEND_ADMIN_DISABLE);
    c = bench_client();
    bench_expect_eof(c);
    bench_expect_gone(1);
    bench_no_accept(0, 50);
    cr_expect_eq(bench_rejected(REJECT_NO_BACKEND), 1);
    close(c);
    bench_stop();
}

/* ---- RELAYING -> replay -> CONNECTING -> RELAYING --------------------- */

Test(session, a_broker_dying_before_its_first_byte_is_replaced_unseen)
{
    enum bench_kind k[] = { BENCH_LISTEN, BENCH_LISTEN };
    int c, a, b;

    bench_start(k, 2, "retries = 1\nreplay = on\n");
    c = bench_client();
    a = bench_accept(0);
    bench_send(c, "SET k v\r\n");
    bench_expect(a, "SET k v\r\n");
    close(a);                       /* dies without a word */
    /* The session replays what the client sent to the next backend. */
    b = bench_accept(1);
    bench_expect(b, "SET k v\r\n");
    bench_send(b, "+OK\r\n");
    bench_expect(c, "+OK\r\n");
    cr_expect_eq(atomic_load(&bench_backend(0)->nfailed), 0,
                 "a close after the client spoke is never the broker's "
                 "failure: clients cannot take a broker down");
    cr_expect_eq(B.nclosed, 0, "the client never noticed");
    /* After the replay the session relays as any other. */
    bench_send(c, "GET k\r\n");
    bench_expect(b, "GET k\r\n");
    close(b);
    bench_expect_eof(c);
    cr_expect_eq(B.nclosed, 0, "half-closed: the client may still talk");
    close(c);
    bench_expect_gone(1);
    cr_expect_eq(atomic_load(&bench_backend(1)->bytes_in), 16,
                 "bytes counted once, on the backend that took them");
    bench_stop();
}

Test(session, without_replay_a_broker_dying_after_the_client_spoke_ends_it)
{
    enum bench_kind k[] = { BENCH_LISTEN, BENCH_LISTEN };
    int c, a;

    bench_start(k, 2, "retries = 1\n");
    c = bench_client();
    a = bench_accept(0);
    bench_send(c, "INCR n\r\n");
    bench_expect(a, "INCR n\r\n");
    close(a);
    bench_expect_eof(c);
    close(c);
    bench_expect_gone(1);
    bench_no_accept(1, 50);
    cr_expect_eq(atomic_load(&bench_backend(0)->nfailed), 0);
    bench_stop();
}

Test(session, a_broker_leaving_right_after_the_connect_is_replaced)
{
    enum bench_kind k[] = { BENCH_LISTEN, BENCH_LISTEN };
    int c, a, b;

    bench_start(k, 2, "retries = 1\n");
    c = bench_client();
    a = bench_accept(0);
    close(a);                       /* a dying broker's backlog */
    b = bench_accept(1);
    bench_send(c, "hello");
    bench_expect(b, "hello");
    cr_expect_eq(B.nclosed, 0);
    close(b);
    close(c);
    bench_expect_gone(1);
    bench_stop();
}

Test(session, a_broker_that_answered_is_not_replayed)
{
    enum bench_kind k[] = { BENCH_LISTEN, BENCH_LISTEN };
    int c, a;

    bench_start(k, 2, "retries = 1\n");
    c = bench_client();
    a = bench_accept(0);
    bench_send(c, "q");
    bench_expect(a, "q");
    bench_send(a, "r");
    bench_expect(c, "r");
    close(a);
    bench_expect_eof(c);
    close(c);
    bench_expect_gone(1);
    bench_no_accept(1, 50);
    bench_stop();
}

/* ---- PEEK (mqtt-client-id) -------------------------------------------- */

/* An MQTT 3.1.1 CONNECT with client id "abc". */
static const char bench_connect[] = {
    0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 3, 'a', 'b', 'c'
};

Test(session, peek_reads_the_connect_then_forwards_it_unchanged)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    char got[sizeof(bench_connect)];
    uint64_t end;
    size_t n = 0;
    ssize_t r;
    int c, b;

    bench_start(k, 1, "balance = mqtt-client-id\n");
    c = bench_client();
    /* No broker connection before the CONNECT is in. */
    bench_no_accept(0, 50);
    cr_assert_eq(send(c, bench_connect, 5, 0), 5);
    bench_no_accept(0, 50);
    cr_assert_eq(send(c, bench_connect + 5, sizeof(bench_connect) - 5, 0),
                 (ssize_t)(sizeof(bench_connect) - 5));
    b = bench_accept(0);
    end = mq_now_ms() + BENCH_WAIT_MS;
    while (n < sizeof(got) && mq_now_ms() < end) {
        bench_step();
        r = recv(b, got + n, sizeof(got) - n, 0);
        n += r > 0 ? (size_t)r : 0;
    }
    cr_assert_eq(n, sizeof(got));
    cr_assert_arr_eq(got, bench_connect, sizeof(got));
    close(b);
    close(c);
    bench_expect_gone(1);
    bench_stop();
}

Test(session, peek_closes_on_what_is_not_an_mqtt_connect)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    int c;

    bench_start(k, 1, "balance = mqtt-client-id\n");
    c = bench_client();
    bench_send(c, "GET / HTTP/1.0\r\n\r\n");
    bench_expect_eof(c);
    bench_expect_gone(1);
    bench_no_accept(0, 20);
    close(c);
    bench_stop();
}

Test(session, peek_closes_when_the_client_leaves_first)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    int c;

    bench_start(k, 1, "balance = mqtt-client-id\n");
    c = bench_client();
    cr_assert_eq(send(c, bench_connect, 3, 0), 3);
    close(c);
    bench_expect_gone(1);
    bench_no_accept(0, 20);
    bench_stop();
}

Test(session, peek_times_out_without_a_connect)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    int c;

    bench_start(k, 1, "balance = mqtt-client-id\nconnect_timeout = 100ms\n");
    c = bench_client();
    bench_expect_eof(c);
    bench_expect_gone(1);
    close(c);
    bench_stop();
}

/* ---- RELAYING -> idle timeout, down sweep, shutdown ------------------- */

Test(session, idle_timeout_closes_a_silent_session)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    int c, b;

    bench_start(k, 1, "idle_timeout = 150ms\n");
    c = bench_client();
    b = bench_accept(0);
    bench_send(c, "hi");
    bench_expect(b, "hi");
    bench_send(b, "ho");
    bench_expect(c, "ho");
    bench_expect_eof(c);
    bench_expect_eof(b);
    bench_expect_gone(1);
    close(b);
    close(c);
    bench_stop();
}

/* ---- what an idle session holds ----------------------------------- */

#define BENCH_IDLE_N        64      /* idle sessions measured at once */
/*
 * Heap bytes one idle session may hold (608 now). It is most of mqlb's
 * memory per idle session (scripts/bench_fleet.sh row (h)), whose target
 * is 0.3x HAProxy's (about 1,000 of its 3,300 bytes); the rest, about 120
 * bytes, is libev's per-descriptor and per-timer arrays, which this does
 * not count. Before the parts an idle session does not use went on the
 * side, a session held 1,184 bytes here.
 */
#define BENCH_IDLE_BUDGET   672

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BENCH_MALLOC_SEEN   0       /* the sanitizer allocates: mallinfo2()
                                       does not see it */
#else
#define BENCH_MALLOC_SEEN   1
#endif

/* Bytes malloc hands out now, in every arena. */
static size_t
bench_heap_used(void)
{
    struct mallinfo2 mi = mallinfo2();

    return mi.uordblks + mi.hblkhd;
}

/*
 * <n> clients each send a PING through its own session and get a PONG
 * back; their sockets are left in <c> (client ends) and <b> (broker ends).
 */
static void
bench_ping_pong(int *c, int *b, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        c[i] = bench_client();
        b[i] = bench_accept(0);
        bench_send(c[i], "PING\r\n");
        bench_expect(b[i], "PING\r\n");
        bench_send(b[i], "+PONG\r\n");
        bench_expect(c[i], "+PONG\r\n");
    }
}

/*
 * After its first exchange an idle session holds no relay buffer, and no
 * more heap than its budget: the second of two rounds is counted, once
 * the loop's arrays and the buffer free list have grown in the first.
 */
Test(session, an_idle_session_holds_no_buffer_and_little_heap)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    int c[BENCH_IDLE_N], b[BENCH_IDLE_N];
    size_t before = 0, held = 0;
    int round, i;

    bench_start(k, 1, "idle_timeout = 1h\n");
    for (round = 0; round < 2; round++) {
        before = bench_heap_used();
        bench_ping_pong(c, b, BENCH_IDLE_N);
        held = bench_heap_used() - before;
        cr_expect_eq(B.env.nsessions, BENCH_IDLE_N);
        cr_expect_eq(B.rp.nused, 0, "idle sessions hold %zu relay buffers",
                     B.rp.nused);
        for (i = 0; i < BENCH_IDLE_N; i++) {
            close(c[i]);
            close(b[i]);
        }
        bench_expect_gone((round + 1) * BENCH_IDLE_N);
    }
    if (BENCH_MALLOC_SEEN) {
        cr_expect_leq(held / BENCH_IDLE_N, BENCH_IDLE_BUDGET,
                      "an idle session holds %zu heap bytes",
                      held / BENCH_IDLE_N);
        cr_expect_gt(held, 0, "sessions are counted at all");
    }
    bench_stop();
}

/* ---- idle_timeout = auto: the broker's MQTT 5 Server Keep Alive ------ */

/* MQTT 5 CONNECT, keep alive 60 s (91 s of silence), client id "m5". */
static const uint8_t bench_connect5[] = {
    0x10, 0x0f, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3c,
    0x00, 0x00, 0x02, 'm', '5',
};

/* The same in MQTT 3.1.1 (no properties). */
static const uint8_t bench_connect311[] = {
    0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c,
    0x00, 0x02, 'm', '4',
};

/* CONNACK, Success: a reason string, Server Keep Alive 2 s, a user
 * property. */
static const uint8_t bench_connack5[] = {
    0x20, 0x15, 0x00, 0x00, 0x12,
    0x1f, 0x00, 0x02, 'o', 'k',
    0x13, 0x00, 0x02,
    0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v',
    0x22, 0x00, 0x0a,
};

/* The idle timeout of the newest live session. */
static uint64_t
bench_idle_timeout_ms(void)
{
    struct session_info info[1];

    cr_assert_eq(session_list(&B.env, NULL, NULL, info, 1), 1);
    return info[0].idle_timeout_ms;
}

/* A client connects with <connect>, the broker answers <connack>: both
 * pass unchanged. */
static void
bench_mqtt_exchange(int c, int b, const uint8_t *connect, size_t nconnect,
                    const uint8_t *connack, size_t nconnack)
{
    bench_send_bytes(c, connect, nconnect);
    bench_expect_bytes(b, connect, nconnect);
    bench_send_bytes(b, connack, nconnack);
    bench_expect_bytes(c, connack, nconnack);
}

Test(session, auto_idle_takes_an_mqtt5_brokers_server_keep_alive)
{
    static const uint8_t publish[] = { 0x30, 0x03, 0x00, 0x01, 't' };
    enum bench_kind k[] = { BENCH_LISTEN };
    int c, b;

    bench_start(k, 1, "idle_timeout = auto\n");
    c = bench_client();
    b = bench_accept(0);
    bench_send_bytes(c, bench_connect5, sizeof(bench_connect5));
    bench_expect_bytes(b, bench_connect5, sizeof(bench_connect5));
    cr_expect_eq(bench_idle_timeout_ms(), 91000, "the client's 60 s");
    /* The CONNACK in two pieces, the second with a PUBLISH behind it. */
    bench_send_bytes(b, bench_connack5, 7);
    bench_expect_bytes(c, bench_connack5, 7);
    cr_expect_eq(bench_idle_timeout_ms(), 91000, "not decided yet");
    bench_send_bytes(b, bench_connack5 + 7, sizeof(bench_connack5) - 7);
    bench_send_bytes(b, publish, sizeof(publish));
    bench_expect_bytes(c, bench_connack5 + 7, sizeof(bench_connack5) - 7);
    bench_expect_bytes(c, publish, sizeof(publish));
    cr_expect_eq(bench_idle_timeout_ms(), 4000, "the broker's 2 s");
    close(c);
    close(b);
    bench_expect_gone(1);
    bench_stop();
}

Test(session, auto_idle_reads_no_connack_after_an_mqtt311_connect)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    int c, b;

    bench_start(k, 1, "idle_timeout = auto\n");
    c = bench_client();
    b = bench_accept(0);
    /* (A broker would not answer 3.1.1 with properties: only MQTT 5's
     * CONNACK is read, whatever comes.) */
    bench_mqtt_exchange(c, b, bench_connect311, sizeof(bench_connect311),
                        bench_connack5, sizeof(bench_connack5));
    cr_expect_eq(bench_idle_timeout_ms(), 91000);
    close(c);
    close(b);
    bench_expect_gone(1);
    bench_stop();
}

Test(session, auto_idle_reads_the_connack_after_a_peeked_mqtt5_connect)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    int c, b;

    /* mqtt-client-id reads the CONNECT before the broker is chosen: the
     * relay starts with it already read, and still watches the CONNACK. */
    bench_start(k, 1, "balance = mqtt-client-id\nidle_timeout = auto\n");
    c = bench_client();
    bench_send_bytes(c, bench_connect5, sizeof(bench_connect5));
    b = bench_accept(0);
    bench_expect_bytes(b, bench_connect5, sizeof(bench_connect5));
    bench_send_bytes(b, bench_connack5, sizeof(bench_connack5));
    bench_expect_bytes(c, bench_connack5, sizeof(bench_connack5));
    cr_expect_eq(bench_idle_timeout_ms(), 4000);
    close(c);
    close(b);
    bench_expect_gone(1);
    bench_stop();
}

/*
 * Under idle_timeout = auto, after an MQTT 5 CONNECT and its CONNACK, an
 * idle session keeps no keepalive reader: it holds no more heap than any
 * idle session (the reader alone would take it over the budget).
 */
Test(session, an_idle_mqtt5_session_under_auto_holds_no_reader)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    int c[BENCH_IDLE_N], b[BENCH_IDLE_N];
    uint8_t ack[sizeof(bench_connack5)];
    size_t before = 0, held = 0;
    int round, i;

    /* Server Keep Alive 600 s: no session times out during the test. */
    memcpy(ack, bench_connack5, sizeof(ack));
    ack[11] = 0x02;
    ack[12] = 0x58;
    bench_start(k, 1, "idle_timeout = auto\n");
    for (round = 0; round < 2; round++) {
        before = bench_heap_used();
        for (i = 0; i < BENCH_IDLE_N; i++) {
            c[i] = bench_client();
            b[i] = bench_accept(0);
            bench_mqtt_exchange(c[i], b[i],
                                bench_connect5, sizeof(bench_connect5),
                                ack, sizeof(ack));
        }
        held = bench_heap_used() - before;
        cr_expect_eq(bench_idle_timeout_ms(), 901000);
        cr_expect_eq(B.env.nsessions, BENCH_IDLE_N);
        cr_expect_eq(B.rp.nused, 0);
        for (i = 0; i < BENCH_IDLE_N; i++) {
            close(c[i]);
            close(b[i]);
        }
        bench_expect_gone((round + 1) * BENCH_IDLE_N);
    }
    if (BENCH_MALLOC_SEEN) {
        cr_expect_leq(held / BENCH_IDLE_N, BENCH_IDLE_BUDGET,
                      "an idle session holds %zu heap bytes",
                      held / BENCH_IDLE_N);
    }
    bench_stop();
}

Test(session, the_down_sweep_closes_sessions_of_a_down_backend)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    int c, b;

    bench_start(k, 1, "on_backend_down = close\n");
    c = bench_client();
    b = bench_accept(0);
    bench_send(c, "1");
    bench_expect(b, "1");
    session_sweep_down(&B.env);
    cr_expect_eq(B.nclosed, 0, "the backend is up: nothing to sweep");
    backend_check_done(bench_backend(0), false, "test", 0, 1, 1);
    session_sweep_down(&B.env);
    bench_expect_eof(c);
    bench_expect_eof(b);
    bench_expect_gone(1);
    close(b);
    close(c);
    bench_stop();
}

Test(session, the_down_sweep_leaves_pools_that_do_not_ask_for_it)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    int c, b;

    bench_start(k, 1, "");
    c = bench_client();
    b = bench_accept(0);
    backend_check_done(bench_backend(0), false, "test", 0, 1, 1);
    session_sweep_down(&B.env);
    bench_send(c, "still");
    bench_expect(b, "still");
    cr_expect_eq(B.nclosed, 0);
    close(b);
    close(c);
    bench_stop();
}

Test(session, close_all_ends_every_session_and_returns_every_ticket)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    int c1, c2, b1, b2;

    bench_start(k, 1, "");
    c1 = bench_client();
    b1 = bench_accept(0);
    c2 = bench_client();
    b2 = bench_accept(0);
    cr_expect_eq(B.env.nsessions, 2);
    cr_expect_eq(admission_nlive(&B.adm), 2);
    session_close_all(&B.env, "shutdown");
    bench_expect_eof(c1);
    bench_expect_eof(c2);
    bench_expect_gone(2);
    close(b1);
    close(b2);
    close(c1);
    close(c2);
    bench_stop();
}

/* ---- WAIT_FD: out of descriptors for the broker socket ---------------- */

/* Lower the descriptor limit so that the next socket() fails. */
static rlim_t
bench_fd_squeeze(void)
{
    struct rlimit rl;
    rlim_t old;
    int lowest = dup(0);

    cr_assert_neq(lowest, -1);
    close(lowest);
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    old = rl.rlim_cur;
    rl.rlim_cur = (rlim_t)lowest;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    return old;
}

static void
bench_fd_release(rlim_t old)
{
    struct rlimit rl;

    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = old;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

Test(session, no_descriptor_waits_pauses_accepts_and_connects_later)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    struct session_entry e = { .npools = 1 };
    struct admission_ticket t;
    rlim_t old;
    int sv[2], b;

    bench_start(k, 1, "connect_timeout = 2s\n");
    e.pools = &B.pool;
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                 0);
    cr_assert_eq(admission_take(&B.adm, &t), MQ_OK);
    memset(&t.peer, 0, sizeof(t.peer));
    t.peer.sa.sa_family = AF_INET;
    old = bench_fd_squeeze();
    cr_assert_eq(session_create(&B.env, &e, sv[0], &t), MQ_OK);
    cr_expect_eq(B.nshortage, 1, "the owner was told to stop accepting");
    cr_expect_eq(atomic_load(&bench_backend(0)->nfailed), 0,
                 "our shortage is not the broker's failure");
    bench_fd_release(old);
    b = bench_accept(0);
    bench_send(sv[1], "after the wait");
    bench_expect(b, "after the wait");
    close(b);
    close(sv[1]);
    bench_expect_gone(1);
    bench_stop();
}

Test(session, no_descriptor_for_connect_timeout_closes_the_client)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    struct session_entry e = { .npools = 1 };
    struct admission_ticket t;
    rlim_t old;
    int sv[2];

    bench_start(k, 1, "connect_timeout = 150ms\n");
    e.pools = &B.pool;
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                 0);
    cr_assert_eq(admission_take(&B.adm, &t), MQ_OK);
    memset(&t.peer, 0, sizeof(t.peer));
    t.peer.sa.sa_family = AF_INET;
    old = bench_fd_squeeze();
    cr_assert_eq(session_create(&B.env, &e, sv[0], &t), MQ_OK);
    bench_expect_eof(sv[1]);
    bench_fd_release(old);
    bench_expect_gone(1);
    cr_expect_geq(B.nshortage, 1);
    bench_no_accept(0, 20);
    close(sv[1]);
    bench_stop();
}

/* ---- HELLO (sni on a plain address) ----------------------------------- */

Test(session, hello_closes_on_what_is_not_a_tls_client_hello)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    struct session_entry e = { .npools = 1, .sni = 1 };
    int c;

    bench_start(k, 1, "");
    e.pools = &B.pool;
    c = bench_client_entry(&e);
    bench_send(c, "GET / HTTP/1.0\r\n\r\n");
    bench_expect_eof(c);
    bench_expect_gone(1);
    bench_no_accept(0, 20);
    cr_expect_eq(atomic_load(&B.pool->ntls[TLS_RESULT_NOT_TLS]), 1);
    close(c);
    bench_stop();
}

/* ---- HANDSHAKE and UP_HANDSHAKE (TLS) ---------------------------------- */

/* A self-signed certificate and key for "localhost", made by openssl(1)
 * in a fresh directory <dir> (PATH_MAX bytes). */
static void
bench_cert(char *dir)
{
    char cmd[1024];

    snprintf(dir, 64, "/tmp/mqlb-session-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey ec -pkeyopt "
             "ec_paramgen_curve:prime256v1 -nodes -keyout %s/k.pem -out "
             "%s/c.pem -subj /CN=localhost -days 2 >/dev/null 2>&1",
             dir, dir);
    cr_assert_eq(system(cmd), 0, "openssl req failed");
}

static void
bench_cert_remove(const char *dir)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/k.pem", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/c.pem", dir);
    unlink(path);
    rmdir(dir);
}

/* Drive <ssl>'s handshake (<connect>: as the client) while the loop runs. */
static void
bench_tls_handshake(SSL *ssl, bool connect)
{
    uint64_t end = mq_now_ms() + BENCH_WAIT_MS;
    int rc, e;

    while (mq_now_ms() < end) {
        bench_step();
        rc = connect ? SSL_connect(ssl) : SSL_accept(ssl);
        if (rc == 1) {
            return;
        }
        e = SSL_get_error(ssl, rc);
        cr_assert(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE,
                  "TLS handshake failed (%d)", e);
    }
    cr_assert_fail("TLS handshake not done in time");
}

/* Read exactly <want> through <ssl> while the loop runs. */
static void
bench_tls_expect(SSL *ssl, const char *want)
{
    size_t n = strlen(want), got = 0;
    uint64_t end = mq_now_ms() + BENCH_WAIT_MS;
    char buf[256];
    int r;

    while (got < n && mq_now_ms() < end) {
        bench_step();
        r = SSL_read(ssl, buf + got, (int)(n - got));
        if (r > 0) {
            got += (size_t)r;
        } else {
            r = SSL_get_error(ssl, r);
            cr_assert(r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE,
                      "TLS stream ended after %zu bytes", got);
        }
    }
    cr_assert_eq(got, n);
    cr_assert_arr_eq(buf, want, n);
}

static void
bench_tls_send(SSL *ssl, const char *s)
{
    cr_assert_eq(SSL_write(ssl, s, (int)strlen(s)), (int)strlen(s));
}

/* The pool lines of a TLS listener with the certificate in <dir>. */
static void
bench_tls_lines(char *out, size_t size, const char *dir, const char *more)
{
    snprintf(out, size, "tls_cert = %s/c.pem\ntls_key = %s/k.pem\n%s", dir,
             dir, more);
}

Test(session, handshake_then_relay_in_the_clear_to_the_broker)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    struct session_entry e = { .npools = 1, .tls = 1 };
    char dir[64], extra[512];
    SSL_CTX *ctx;
    SSL *ssl;
    int c, b;

    bench_cert(dir);
    bench_tls_lines(extra, sizeof(extra), dir, "");
    bench_start(k, 1, extra);
    e.pools = &B.pool;
    c = bench_client_entry(&e);
    bench_no_accept(0, 20);         /* no broker before the handshake */
    ctx = SSL_CTX_new(TLS_client_method());
    cr_assert_not_null(ctx);
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, c);
    bench_tls_handshake(ssl, true);
    b = bench_accept(0);
    bench_tls_send(ssl, "ping");
    bench_expect(b, "ping");
    bench_send(b, "pong");
    bench_tls_expect(ssl, "pong");
    cr_expect_eq(atomic_load(&B.pool->ntls[TLS_RESULT_OK]), 1);
    close(b);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(c);
    bench_expect_gone(1);
    bench_stop();
    bench_cert_remove(dir);
}

Test(session, handshake_closes_on_what_is_not_tls)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    struct session_entry e = { .npools = 1, .tls = 1 };
    char dir[64], extra[512];
    int c;

    bench_cert(dir);
    bench_tls_lines(extra, sizeof(extra), dir, "");
    bench_start(k, 1, extra);
    e.pools = &B.pool;
    c = bench_client_entry(&e);
    bench_send(c, "GET / HTTP/1.0\r\n\r\n");
    bench_expect_gone(1);
    bench_no_accept(0, 20);
    cr_expect_eq(atomic_load(&B.pool->ntls[TLS_RESULT_OK]), 0);
    cr_expect_eq(atomic_load(&B.pool->ntls[TLS_RESULT_TIMEOUT]), 0);
    close(c);
    bench_stop();
    bench_cert_remove(dir);
}

Test(session, handshake_times_out_on_a_silent_client)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    struct session_entry e = { .npools = 1, .tls = 1 };
    char dir[64], extra[512];
    int c;

    bench_cert(dir);
    bench_tls_lines(extra, sizeof(extra), dir,
                    "tls_handshake_timeout = 100ms\n");
    bench_start(k, 1, extra);
    e.pools = &B.pool;
    c = bench_client_entry(&e);
    bench_expect_eof(c);
    bench_expect_gone(1);
    bench_no_accept(0, 20);
    cr_expect_eq(atomic_load(&B.pool->ntls[TLS_RESULT_TIMEOUT]), 1);
    close(c);
    bench_stop();
    bench_cert_remove(dir);
}

Test(session, up_handshake_then_relay_over_tls_to_the_broker)
{
    enum bench_kind k[] = { BENCH_LISTEN };
    char dir[64], cert[128], key[128];
    SSL_CTX *ctx;
    SSL *ssl;
    int c, b;

    bench_cert(dir);
    bench_start(k, 1, "backend_tls = on\nbackend_tls_verify = off\n");
    snprintf(cert, sizeof(cert), "%s/c.pem", dir);
    snprintf(key, sizeof(key), "%s/k.pem", dir);
    ctx = SSL_CTX_new(TLS_server_method());
    cr_assert_not_null(ctx);
    cr_assert_eq(SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM),
                 1);
    cr_assert_eq(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
    c = bench_client();
    b = bench_accept(0);
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, b);
    bench_tls_handshake(ssl, false);
    bench_send(c, "over tls");
    bench_tls_expect(ssl, "over tls");
    bench_tls_send(ssl, "back");
    bench_expect(c, "back");
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(b);
    close(c);
    bench_expect_gone(1);
    bench_stop();
    bench_cert_remove(dir);
}

Test(session, a_failed_up_handshake_is_the_brokers_failure)
{
    enum bench_kind k[] = { BENCH_LISTEN, BENCH_LISTEN };
    char dir[64], cert[128], key[128];
    SSL_CTX *ctx;
    SSL *ssl;
    int c, a, b;

    bench_cert(dir);
    bench_start(k, 2, "backend_tls = on\nbackend_tls_verify = off\n"
                "retries = 1\n");
    snprintf(cert, sizeof(cert), "%s/c.pem", dir);
    snprintf(key, sizeof(key), "%s/k.pem", dir);
    ctx = SSL_CTX_new(TLS_server_method());
    cr_assert_not_null(ctx);
    cr_assert_eq(SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM),
                 1);
    cr_assert_eq(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
    c = bench_client();
    a = bench_accept(0);
    /* A plain server where TLS was expected: answers the ClientHello
     * with text. The session moves on to the next backend. */
    bench_send(a, "-ERR not TLS\r\n");
    b = bench_accept(1);
    cr_expect_eq(atomic_load(&bench_backend(0)->nfailed), 1);
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, b);
    bench_tls_handshake(ssl, false);
    bench_send(c, "x");
    bench_tls_expect(ssl, "x");
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(a);
    close(b);
    close(c);
    bench_expect_gone(1);
    bench_stop();
    bench_cert_remove(dir);
}
