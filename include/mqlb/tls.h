/*
 * tls.h: TLS with OpenSSL 3, for client-facing listeners (termination)
 * and broker connections (backend_tls). A tls_server is one pool's
 * certificate set: one SSL_CTX per certificate, built when a config is
 * loaded and shared read-only by every worker. A connection (struct
 * tls_conn) holds an SSL for its handshake (and, through it, a reference
 * to its context, so a reload never pulls a certificate from under a
 * handshake); after a TLS 1.3 handshake a connection trades it for
 * mqlb's own record layer (tls_slim, tls_rec.h): some 3 KB instead of
 * OpenSSL's 14 KB for as long as the connection lives.
 */
#ifndef MQLB_TLS_H
#define MQLB_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct proxy_proto_tls;
struct relay_io;
struct tls_conn;                    /* one connection's TLS */

enum tls_verify {
    TLS_VERIFY_OFF = 0,             /* no client certificate asked */
    TLS_VERIFY_OPTIONAL,            /* asked; if sent, it must verify */
    TLS_VERIFY_REQUIRED,            /* asked and required */
};

enum tls_min {
    TLS_MIN_12 = 0,                 /* tls_min_version = 1.2 */
    TLS_MIN_13,                     /* tls_min_version = 1.3 */
};

/* A pool's termination settings, as the config file gives them. */
struct tls_server_conf {
    char              **certs;      /* tls_cert files (PEM chain [+ key]) */
    int                *cert_lines; /* the line of each, for errors */
    size_t              ncerts;
    char               *key;        /* tls_key, or NULL: key in the PEM */
    int                 key_line;
    int                 min_version;/* TLS_MIN_12 or TLS_MIN_13 */
    char               *ciphers;    /* TLS 1.2 cipher list, or NULL */
    char               *ciphersuites; /* TLS 1.3 suites, or NULL */
    char               *alpn;       /* "mqtt,amqp", or NULL */
    int                 alpn_line;
    char               *client_ca;  /* CA file for client certificates */
    int                 client_ca_line;
    int                 verify_client;  /* enum tls_verify */
    int                 tickets;    /* tls_session_tickets: resumption */
    int                 verify_line;
};

/* TLS towards a pool's brokers. */
struct tls_client_conf {
    int                 enabled;    /* backend_tls = on */
    int                 verify;     /* backend_tls_verify */
    char               *ca;         /* backend_tls_ca, or NULL: system */
    int                 ca_line;
    char               *sni;        /* backend_tls_sni, or NULL: host */
};

/* Why a handshake ended; the label of mqlb_tls_handshakes_total. */
#define TLS_RESULT_LIST(X)                                              \
    X(OK,           "ok")                                               \
    X(TIMEOUT,      "timeout")          /* tls_handshake_timeout */     \
    X(SNI,          "sni")              /* no pool for the name */      \
    X(NO_CIPHER,    "no_shared_cipher")                                 \
    X(VERSION,      "protocol_version")                                 \
    X(NO_CERT,      "no_client_cert")   /* required, none sent */       \
    X(BAD_CERT,     "bad_client_cert")  /* did not verify */            \
    X(NOT_TLS,      "not_tls")          /* garbage, plain text */       \
    X(CLOSED,       "closed")           /* client left halfway */       \
    X(ERROR,        "error")

#define TLS_RESULT_ENUM(name, label) TLS_RESULT_##name,
enum tls_result {
    TLS_RESULT_LIST(TLS_RESULT_ENUM)
    TLS_NRESULTS
};
#undef TLS_RESULT_ENUM

const char *tls_result_name(enum tls_result r);

struct tls_server;
struct tls_client;

/*
 * A hook the owner of a terminating SSL installs: given the server name
 * the client asked for (NULL if none), return the certificate set to
 * answer with, or NULL to refuse the client (SNI routing).
 */
struct tls_sni_hook {
    struct tls_server *(*pick)(void *arg, const char *name);
    void               *arg;
};

/*
 * Build the contexts for <cf>. Loads every certificate and key, checks
 * that they match and that no certificate has expired, and that the CA
 * file reads. On failure returns NULL with a message in <err> and the
 * config line at fault in <*line>.
 */
struct tls_server *tls_server_create(const struct tls_server_conf *cf,
                                     char *err, size_t errlen, int *line);
/* Drop the set; live sessions keep their contexts until they end. */
void tls_server_destroy(struct tls_server *ts);

/*
 * A new connection in accept state on <fd> with <ts>'s first
 * certificate; the servername callback then asks <hook> (may be NULL:
 * choose among <ts>'s certificates by name). <hook> must outlive the
 * handshake. NULL if out of memory.
 */
struct tls_conn *tls_server_conn(struct tls_server *ts, int fd,
                                 struct tls_sni_hook *hook);

/* TLS to brokers: one client context per pool. */
struct tls_client *tls_client_create(const struct tls_client_conf *cf,
                                     char *err, size_t errlen, int *line);
void tls_client_destroy(struct tls_client *tc);
/*
 * A new connection in connect state on <fd> to the broker at <addr>
 * ("host:port" as written in the config): sends backend_tls_sni, or the
 * host, as SNI (not an IP address) and, with backend_tls_verify, checks
 * the broker's certificate for that name.
 */
struct tls_conn *tls_client_conn(struct tls_client *tc, int fd,
                                 const char *addr);

/*
 * Drive a handshake. MQ_OK when done; MQ_AGAIN when the socket must
 * become readable (<*want> = RELAY_WANT_READ) or writable
 * (RELAY_WANT_WRITE); MQ_ERR when it failed, with <*why> set and a
 * short description of OpenSSL's reason in <err>.
 */
int tls_handshake(struct tls_conn *c, int *want, enum tls_result *why,
                  char *err, size_t errlen);

/*
 * After a finished handshake (either side), before any byte was relayed:
 * a TLS 1.3 connection with an AES-GCM or ChaCha20-Poly1305 suite goes
 * on with mqlb's record layer and its SSL is freed (MQ_OK); any other
 * stays with OpenSSL (MQ_ERR, nothing lost). <keep_facts>:
 * tls_proxy_facts must still answer afterwards (the pool sends PROXY v2).
 */
int tls_slim(struct tls_conn *c, int keep_facts);
/* Is <c> on mqlb's record layer (tls_slim succeeded)? */
int tls_is_slim(const struct tls_conn *c);

/* Free <c> (the caller closes the socket). */
void tls_free(struct tls_conn *c);

/*
 * The TLS facts of a finished server handshake for a PROXY v2 header;
 * pointers go into <c> or into <cn> (<cnlen> bytes), valid while both
 * live.
 */
void tls_proxy_facts(struct tls_conn *c, struct proxy_proto_tls *pt,
                     char *cn, size_t cnlen);

/* The relay's I/O operations over a struct tls_conn (the conn argument). */
extern const struct relay_io tls_relay_io;

#endif /* MQLB_TLS_H */
