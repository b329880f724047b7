/*
 * resolver.c: c-ares on a libev loop. c-ares tells us which sockets it
 * wants watched (sock_state_cb); each gets an ev_io that hands readiness
 * back with ares_process_fd(). One ev_timer follows ares_timeout() so that
 * retries and timeouts happen without anything polling.
 *
 * Names are looked up with ares_getaddrinfo (hosts file first, then DNS,
 * with the search domains of resolv.conf), SRV records with ares_search.
 * Errors come back as words an operator knows: NXDOMAIN, SERVFAIL,
 * timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "mqlb/common.h"
#include "mqlb/resolver.h"

/*
 * c-ares' ARES_GETSOCK_WRITABLE shifts a signed 1 by up to 31 places
 * (undefined behaviour, which UBSan reports on every lookup): the same
 * tests on an unsigned bit.
 */
#define RESOLVER_SOCK_READABLE(bits, i)  (((unsigned)(bits) >> (i)) & 1u)
#define RESOLVER_SOCK_WRITABLE(bits, i)  \
    (((unsigned)(bits) >> ((i) + ARES_GETSOCK_MAXNUM)) & 1u)

#define RESOLVER_TIMEOUT_MS 1000    /* per try, per server */
#define RESOLVER_TRIES      2
#define RESOLVER_DNS_HEADER 12
#define RESOLVER_T_SRV      33
#define RESOLVER_C_IN       1

/* One socket c-ares asked us to watch. */
struct resolver_sock {
    struct resolver_sock *next;
    struct resolver    *r;
    ev_io               io;
};

struct resolver {
    struct ev_loop     *loop;
    ares_channel        channel;
    ev_timer            timer;          /* follows ares_timeout() */
    struct resolver_sock *socks;        /* watched sockets */
};

/* One query in flight: who to tell. */
struct resolver_query {
    struct resolver    *r;              /* NULL for the blocking lookup */
    resolver_fn         cb;
    void               *arg;
    unsigned            port;
    struct resolver_result res;
    int                 done;           /* blocking lookup: finished */
};

static pthread_once_t resolver_once = PTHREAD_ONCE_INIT;
static int resolver_lib_rc;

static void
resolver_lib_init(void)
{
    resolver_lib_rc = ares_library_init(ARES_LIB_INIT_ALL);
}

/* ---- pure parts ------------------------------------------------------- */

/* One "IP[:PORT]" or "[IPV6][:PORT]" entry of <len> bytes into <out>. */
static int
resolver_server_entry(const char *s, size_t len, char *out, size_t outlen,
                      char *err)
{
    char host[64], port[8];
    const char *close, *colon;
    unsigned char buf[sizeof(struct in6_addr)];
    size_t hlen, plen;
    unsigned long pn;
    char *end;
    int n;

    port[0] = '\0';
    if (s[0] == '[') {
        close = memchr(s, ']', len);
        if (close == NULL) {
            goto bad;
        }
        hlen = (size_t)(close - s - 1);
        if (hlen == 0 || hlen >= sizeof(host)) {
            goto bad;
        }
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET6, host, buf) != 1) {
            goto bad;
        }
        plen = len - (size_t)(close - s) - 1;
        if (plen > 0) {
            if (close[1] != ':' || plen < 2 || plen - 1 >= sizeof(port)) {
                goto bad;
            }
            memcpy(port, close + 2, plen - 1);
            port[plen - 1] = '\0';
        }
    } else {
        colon = memchr(s, ':', len);
        hlen = colon != NULL ? (size_t)(colon - s) : len;
        if (hlen == 0 || hlen >= sizeof(host)) {
            goto bad;
        }
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET, host, buf) != 1) {
            goto bad;
        }
        if (colon != NULL) {
            plen = len - hlen - 1;
            if (plen == 0 || plen >= sizeof(port)) {
                goto bad;
            }
            memcpy(port, colon + 1, plen);
            port[plen] = '\0';
        }
    }
    if (port[0] != '\0') {
        errno = 0;
        pn = strtoul(port, &end, 10);
        if (*end != '\0' || port[0] < '0' || port[0] > '9' || pn < 1 ||
            pn > 65535) {
            snprintf(err, MQ_ERR_LEN, "resolver '%.*s': port is 1..65535",
                     (int)MQ_MIN(len, 80), s);
            return MQ_ERR;
        }
    }
    if (strchr(host, ':') != NULL) {
        n = snprintf(out, outlen, "[%s]:%s", host, port[0] ? port : "53");
    } else {
        n = snprintf(out, outlen, "%s:%s", host, port[0] ? port : "53");
    }
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, MQ_ERR_LEN, "resolvers: list too long");
        return MQ_ERR;
    }
    return n;
bad:
    snprintf(err, MQ_ERR_LEN, "resolver '%.*s': expected an IP address "
             "with an optional port (IP:PORT or [IPV6]:PORT)",
             (int)MQ_MIN(len, 80), s);
    return MQ_ERR;
}

int
resolver_servers_csv(const char *text, char *out, size_t outlen, char *err)
{
    size_t used = 0, len;
    const char *p = text;
    int n;

    if (outlen == 0) {
        return MQ_ERR;
    }
    out[0] = '\0';
    for (;;) {
        p += strspn(p, ", \t");
        if (*p == '\0') {
            break;
        }
        len = strcspn(p, ", \t");
        if (used > 0) {
            if (used + 1 >= outlen) {
                snprintf(err, MQ_ERR_LEN, "resolvers: list too long");
                return MQ_ERR;
            }
            out[used++] = ',';
            out[used] = '\0';
        }
        n = resolver_server_entry(p, len, out + used, outlen - used, err);
        if (n < 0) {
            return MQ_ERR;
        }
        used += (size_t)n;
        p += len;
    }
    if (used == 0) {
        snprintf(err, MQ_ERR_LEN, "resolvers: no address given");
        return MQ_ERR;
    }
    return MQ_OK;
}

/*
 * Skip the (possibly compressed) name at <*off> of <buf>. A pointer ends
 * the name, so no loop can form here.
 */
static int
resolver_skip_name(const unsigned char *buf, size_t len, size_t *off)
{
    size_t o = *off;
    unsigned labels = 0;

    for (;;) {
        if (o >= len || ++labels > 128) {
            return MQ_ERR;
        }
        if ((buf[o] & 0xc0) == 0xc0) {
            if (o + 2 > len) {
                return MQ_ERR;
            }
            *off = o + 2;
            return MQ_OK;
        }
        if ((buf[o] & 0xc0) != 0) {
            return MQ_ERR;      /* the 0x40/0x80 label types are obsolete */
        }
        if (buf[o] == 0) {
            *off = o + 1;
            return MQ_OK;
        }
        o += 1 + buf[o];
    }
}

int
resolver_answer_ttl(const unsigned char *buf, size_t len, uint32_t *ttl)
{
    unsigned qd, an, i;
    uint32_t t, min = RESOLVER_TTL_NONE;
    size_t off, rdlen;

    if (len < RESOLVER_DNS_HEADER) {
        return MQ_ERR;
    }
    qd = (unsigned)buf[4] << 8 | buf[5];
    an = (unsigned)buf[6] << 8 | buf[7];
    off = RESOLVER_DNS_HEADER;
    for (i = 0; i < qd; i++) {
        if (resolver_skip_name(buf, len, &off) != MQ_OK || off + 4 > len) {
            return MQ_ERR;
        }
        off += 4;               /* type, class */
    }
    for (i = 0; i < an; i++) {
        if (resolver_skip_name(buf, len, &off) != MQ_OK || off + 10 > len) {
            return MQ_ERR;
        }
        t = (uint32_t)buf[off + 4] << 24 | (uint32_t)buf[off + 5] << 16 |
            (uint32_t)buf[off + 6] << 8 | buf[off + 7];
        rdlen = (size_t)buf[off + 8] << 8 | buf[off + 9];
        off += 10;
        if (off + rdlen > len) {
            return MQ_ERR;
        }
        off += rdlen;
        if (t & 0x80000000u) {
            t = 0;              /* RFC 2181 8: a negative TTL is zero */
        }
        min = MQ_MIN(min, t);
    }
    *ttl = min;
    return MQ_OK;
}

static int
resolver_srv_cmp(const void *a, const void *b)
{
    const struct resolver_srv *x = a, *y = b;
    int c;

    if (x->priority != y->priority) {
        return x->priority < y->priority ? -1 : 1;
    }
    c = strcmp(x->target, y->target);
    if (c != 0) {
        return c;
    }
    return x->port < y->port ? -1 : x->port > y->port;
}

/* An error status of c-ares in an operator's words. */
static void
resolver_set_error(struct resolver_result *res, int status)
{
    const char *msg;

    switch (status) {
    case ARES_ENOTFOUND:
        msg = "NXDOMAIN (no such name)";
        break;
    case ARES_ENODATA:
        msg = "no records of that type";
        break;
    case ARES_ESERVFAIL:
        msg = "SERVFAIL";
        break;
    case ARES_EREFUSED:
        msg = "REFUSED by the server";
        break;
    case ARES_ETIMEOUT:
        msg = "timeout";
        break;
    case ARES_ECONNREFUSED:
        msg = "connection refused by the server";
        break;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
        msg = "cancelled";
        break;
    case ARES_EBADRESP:
    case ARES_EFORMERR:
        msg = "malformed answer";
        break;
    default:
        msg = ares_strerror(status);
        break;
    }
    snprintf(res->error, sizeof(res->error), "%s", msg);
}

int
resolver_parse_srv(const unsigned char *buf, size_t len,
                   struct resolver_result *res)
{
    struct ares_srv_reply *list = NULL, *s;
    struct resolver_srv *o;
    size_t n;
    int rc;

    res->nsrvs = 0;
    res->error[0] = '\0';
    if (len > INT32_MAX) {
        resolver_set_error(res, ARES_EBADRESP);
        return MQ_ERR;
    }
    rc = ares_parse_srv_reply(buf, (int)len, &list);
    if (rc != ARES_SUCCESS) {
        resolver_set_error(res, rc);
        return MQ_ERR;
    }
    if (resolver_answer_ttl(buf, len, &res->ttl_s) != MQ_OK) {
        res->ttl_s = RESOLVER_TTL_NONE;
    }
    for (s = list; s != NULL && res->nsrvs < RESOLVER_MAX_SRV; s = s->next) {
        o = &res->srvs[res->nsrvs];
        n = strlen(s->host);
        while (n > 0 && s->host[n - 1] == '.') {
            n--;
        }
        if (n == 0 || n >= sizeof(o->target)) {
            continue;           /* "." means "no service here" (RFC 2782) */
        }
        memcpy(o->target, s->host, n);
        o->target[n] = '\0';
        o->port = s->port;
        o->priority = s->priority;
        o->weight = s->weight;
        if (o->port == 0) {
            continue;
        }
        res->nsrvs++;
    }
    ares_free_data(list);
    qsort(res->srvs, res->nsrvs, sizeof(res->srvs[0]), resolver_srv_cmp);
    if (res->nsrvs == 0) {
        resolver_set_error(res, ARES_ENODATA);
        return MQ_ERR;
    }
    return MQ_OK;
}

/* ---- channels ---------------------------------------------------------- */

static int
resolver_channel_init(ares_channel *ch, const char *servers,
                      ares_sock_state_cb sock_cb, void *data, char *err)
{
    struct ares_options opts;
    char csv[1024];
    int mask, rc;

    pthread_once(&resolver_once, resolver_lib_init);
    if (resolver_lib_rc != ARES_SUCCESS) {
        snprintf(err, MQ_ERR_LEN, "c-ares: %s",
                 ares_strerror(resolver_lib_rc));
        return MQ_ERR;
    }
    csv[0] = '\0';
    if (servers != NULL && servers[0] != '\0' && servers[0] != '/' &&
        resolver_servers_csv(servers, csv, sizeof(csv), err) != MQ_OK) {
        return MQ_ERR;
    }
    memset(&opts, 0, sizeof(opts));
    mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    opts.timeout = RESOLVER_TIMEOUT_MS;
    opts.tries = RESOLVER_TRIES;
    if (sock_cb != NULL) {
        mask |= ARES_OPT_SOCK_STATE_CB;
        opts.sock_state_cb = sock_cb;
        opts.sock_state_cb_data = data;
    }
    if (servers != NULL && servers[0] == '/') {
        mask |= ARES_OPT_RESOLVCONF;
        opts.resolvconf_path = (char *)servers;
    }
    rc = ares_init_options(ch, &opts, mask);
    if (rc != ARES_SUCCESS) {
        snprintf(err, MQ_ERR_LEN, "resolvers %.100s: %s",
                 servers != NULL ? servers : "/etc/resolv.conf",
                 ares_strerror(rc));
        return MQ_ERR;
    }
    if (csv[0] != '\0') {
        rc = ares_set_servers_ports_csv(*ch, csv);
        if (rc != ARES_SUCCESS) {
            snprintf(err, MQ_ERR_LEN, "resolvers %.100s: %s", servers,
                     ares_strerror(rc));
            ares_destroy(*ch);
            return MQ_ERR;
        }
    }
    return MQ_OK;
}

/* Copy the addresses of <ai> into <res>, IPv4 first, and the least TTL. */
static void
resolver_take_addrs(struct resolver_result *res, struct ares_addrinfo *ai)
{
    struct ares_addrinfo_node *n;
    struct resolver_addr *a;
    int pass;
    size_t i;

    res->naddrs = 0;
    res->ttl_s = RESOLVER_TTL_NONE;
    for (pass = 0; pass < 2; pass++) {
        for (n = ai->nodes; n != NULL; n = n->ai_next) {
            if ((pass == 0) != (n->ai_family == AF_INET) ||
                (n->ai_family != AF_INET && n->ai_family != AF_INET6) ||
                n->ai_addrlen > sizeof(a->ss) ||
                res->naddrs == RESOLVER_MAX_ADDRS) {
                continue;
            }
            a = &res->addrs[res->naddrs];
            memset(a, 0, sizeof(*a));
            memcpy(&a->ss, n->ai_addr, n->ai_addrlen);
            a->len = n->ai_addrlen;
            /* the same address once, whatever socktypes it came with */
            for (i = 0; i < res->naddrs; i++) {
                if (res->addrs[i].len == a->len &&
                    memcmp(&res->addrs[i].ss, &a->ss, a->len) == 0) {
                    break;
                }
            }
            if (i < res->naddrs) {
                continue;
            }
            res->naddrs++;
            /* a TTL of 0 (hosts file, or "do not cache") says nothing */
            if (n->ai_ttl > 0) {
                res->ttl_s = MQ_MIN(res->ttl_s, (uint32_t)n->ai_ttl);
            }
        }
    }
}

static void
resolver_addrinfo_cb(void *arg, int status, int timeouts,
                     struct ares_addrinfo *ai)
{
    struct resolver_query *q = arg;

    (void)timeouts;
    memset(&q->res, 0, sizeof(q->res));
    q->res.ttl_s = RESOLVER_TTL_NONE;
    if (status == ARES_SUCCESS && ai != NULL) {
        resolver_take_addrs(&q->res, ai);
        if (q->res.naddrs == 0) {
            resolver_set_error(&q->res, ARES_ENODATA);
        }
    } else {
        resolver_set_error(&q->res, status == ARES_SUCCESS ? ARES_ENODATA
                                                           : status);
    }
    if (ai != NULL) {
        ares_freeaddrinfo(ai);
    }
    q->done = 1;
    if (q->cb != NULL) {
        q->cb(q->arg, &q->res);
        free(q);
    }
}

static void
resolver_srv_cb(void *arg, int status, int timeouts, unsigned char *abuf,
                int alen)
{
    struct resolver_query *q = arg;

    (void)timeouts;
    memset(&q->res, 0, sizeof(q->res));
    q->res.ttl_s = RESOLVER_TTL_NONE;
    if (status != ARES_SUCCESS) {
        resolver_set_error(&q->res, status);
    } else if (abuf == NULL || alen <= 0) {
        resolver_set_error(&q->res, ARES_EBADRESP);
    } else {
        resolver_parse_srv(abuf, (size_t)alen, &q->res);
    }
    q->cb(q->arg, &q->res);
    free(q);
}

/* ---- the libev side ----------------------------------------------------- */

static void
resolver_rearm(struct resolver *r)
{
    struct timeval tv, *tvp;

    tvp = ares_timeout(r->channel, NULL, &tv);
    ev_timer_stop(r->loop, &r->timer);
    if (tvp != NULL) {
        ev_timer_set(&r->timer,
                     (ev_tstamp)tvp->tv_sec + (ev_tstamp)tvp->tv_usec / 1e6,
                     0.);
        ev_timer_start(r->loop, &r->timer);
    }
}

static void
resolver_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct resolver_sock *s = container_of(io, struct resolver_sock, io);
    struct resolver *r = s->r;
    int fd = io->fd;

    (void)loop;
    /* may free <s> through resolver_sock_cb */
    ares_process_fd(r->channel,
                    (revents & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    resolver_rearm(r);
}

static void
resolver_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct resolver *r = container_of(t, struct resolver, timer);

    (void)loop;
    (void)revents;
    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    resolver_rearm(r);
}

/* c-ares opens, changes or closes interest in a socket. */
static void
resolver_sock_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    struct resolver *r = data;
    struct resolver_sock **pp, *s;
    int events = (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);

    for (pp = &r->socks; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->io.fd == fd) {
            break;
        }
    }
    s = *pp;
    if (events == 0) {
        if (s != NULL) {
            ev_io_stop(r->loop, &s->io);
            *pp = s->next;
            free(s);
        }
        return;
    }
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL) {
            return;     /* the query times out instead */
        }
        s->r = r;
        s->next = r->socks;
        r->socks = s;
        ev_io_init(&s->io, resolver_io_cb, fd, events);
    } else {
        ev_io_stop(r->loop, &s->io);
        ev_io_set(&s->io, fd, events);
    }
    ev_io_start(r->loop, &s->io);
}

struct resolver *
resolver_create(struct ev_loop *loop, const char *servers, char *err)
{
    struct resolver *r;

    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(err, MQ_ERR_LEN, "resolver: out of memory");
        return NULL;
    }
    r->loop = loop;
    ev_init(&r->timer, resolver_timer_cb);
    if (resolver_channel_init(&r->channel, servers, resolver_sock_cb, r,
                              err) != MQ_OK) {
        free(r);
        return NULL;
    }
    return r;
}

void
resolver_destroy(struct resolver *r)
{
    struct resolver_sock *s, *next;

    if (r == NULL) {
        return;
    }
    ares_destroy(r->channel);   /* runs callbacks with "cancelled" */
    ev_timer_stop(r->loop, &r->timer);
    for (s = r->socks; s != NULL; s = next) {
        next = s->next;
        ev_io_stop(r->loop, &s->io);
        free(s);
    }
    free(r);
}

int
resolver_lookup(struct resolver *r, const char *host, unsigned port,
                resolver_fn cb, void *arg)
{
    struct ares_addrinfo_hints hints;
    struct resolver_query *q;
    char service[8];

    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return MQ_ERR;
    }
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    q->port = port;
    snprintf(service, sizeof(service), "%u", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = ARES_AI_NUMERICSERV | ARES_AI_NOSORT;
    ares_getaddrinfo(r->channel, host, service, &hints, resolver_addrinfo_cb,
                     q);
    resolver_rearm(r);
    return MQ_OK;
}

int
resolver_srv(struct resolver *r, const char *name, resolver_fn cb, void *arg)
{
    struct resolver_query *q;

    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return MQ_ERR;
    }
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    ares_search(r->channel, name, RESOLVER_C_IN, RESOLVER_T_SRV,
                resolver_srv_cb, q);
    resolver_rearm(r);
    return MQ_OK;
}

/* ---- the blocking lookup ------------------------------------------------ */

int
resolver_lookup_sync(const char *servers, const char *host, unsigned port,
                     unsigned timeout_ms, struct resolver_addr *out,
                     char *err)
{
    struct ares_addrinfo_hints hints;
    struct pollfd pfd[ARES_GETSOCK_MAXNUM];
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    struct resolver_query q;
    struct timeval tv, max, *tvp;
    ares_channel ch;
    uint64_t deadline, now;
    char service[8];
    int bits, i, n, wait_ms;

    if (resolver_channel_init(&ch, servers, NULL, NULL, err) != MQ_OK) {
        return MQ_ERR;
    }
    memset(&q, 0, sizeof(q));
    snprintf(service, sizeof(service), "%u", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = ARES_AI_NUMERICSERV | ARES_AI_NOSORT;
    ares_getaddrinfo(ch, host, service, &hints, resolver_addrinfo_cb, &q);
    deadline = mq_now_ms() + timeout_ms;
    while (!q.done) {
        now = mq_now_ms();
        if (now >= deadline) {
            ares_cancel(ch);    /* runs the callback: "cancelled" */
            snprintf(q.res.error, sizeof(q.res.error), "timeout");
            break;
        }
        bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
        for (i = 0, n = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            if (!RESOLVER_SOCK_READABLE(bits, i) &&
                !RESOLVER_SOCK_WRITABLE(bits, i)) {
                continue;
            }
            pfd[n].fd = socks[i];
            pfd[n].events = (short)((RESOLVER_SOCK_READABLE(bits, i)
                                     ? POLLIN : 0) |
                                    (RESOLVER_SOCK_WRITABLE(bits, i)
                                     ? POLLOUT : 0));
            pfd[n].revents = 0;
            n++;
        }
        max.tv_sec = (time_t)((deadline - now) / 1000);
        max.tv_usec = (suseconds_t)((deadline - now) % 1000 * 1000);
        tvp = ares_timeout(ch, &max, &tv);
        wait_ms = (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) + 1;
        if (poll(pfd, (nfds_t)n, wait_ms) == -1 && errno != EINTR) {
            ares_cancel(ch);
            snprintf(q.res.error, sizeof(q.res.error), "poll: %s",
                     strerror(errno));
            break;
        }
        if (n == 0) {
            ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
        }
        for (i = 0; i < n; i++) {
            ares_process_fd(ch,
                            (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
                            ? pfd[i].fd : ARES_SOCKET_BAD,
                            (pfd[i].revents & POLLOUT)
                            ? pfd[i].fd : ARES_SOCKET_BAD);
        }
    }
    ares_destroy(ch);
    if (q.res.error[0] != '\0' || q.res.naddrs == 0) {
        snprintf(err, MQ_ERR_LEN, "%s",
                 q.res.error[0] != '\0' ? q.res.error : "no address");
        return MQ_ERR;
    }
    *out = q.res.addrs[0];
    return MQ_OK;
}
