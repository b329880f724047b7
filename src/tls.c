/*
 * tls.c: OpenSSL 3 contexts and connections. A tls_server holds one
 * SSL_CTX per certificate of a pool, all with the pool's settings; the
 * servername callback picks the certificate (and, through the owner's
 * hook, the pool) for the name a client asks for. Contexts are built in
 * the thread that loads the config and only read afterwards; OpenSSL's
 * reference counts keep a context alive while any SSL made from it does.
 *
 * SSL_MODE_RELEASE_BUFFERS lets an idle connection hold no record
 * buffers; SSL_OP_IGNORE_UNEXPECTED_EOF makes a client that closes TCP
 * without close_notify (most MQTT clients) a plain end of stream.
 *
 * After a TLS 1.3 handshake a connection leaves OpenSSL (tls_slim): the
 * traffic secrets come from the key log callback, the sequence numbers
 * from counting the records OpenSSL wrote and read under them (its
 * message callback: a server's session tickets), and tls_rec.c carries
 * on with them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mqlb/common.h"
#include "mqlb/net.h"
#include "mqlb/proxy_proto.h"
#include "mqlb/relay.h"
#include "mqlb/tls.h"
#include "mqlb/tls_rec.h"

/* One certificate of a set and the names it answers for. */
struct tls_cert {
    SSL_CTX            *ctx;        /* one reference */
    char              **names;      /* DNS SANs, else the CN; lower case */
    size_t              nnames;
};

struct tls_server {
    struct tls_cert    *certs;      /* in file order; [0] is the default */
    size_t              ncerts;
};

struct tls_client {
    SSL_CTX            *ctx;
    unsigned            verify:1;
    char               *sni;        /* backend_tls_sni, or NULL */
};

/* What PROXY v2 says of a connection, kept when its SSL goes. */
struct tls_facts {
    struct proxy_proto_tls pt;      /* pointers into <text> */
    uint8_t             text[];     /* ALPN, server name, CN */
};

/* One connection: its SSL (app data: this), then maybe its records. */
struct tls_conn {
    SSL                *ssl;        /* NULL once slim */
    struct tls_rec     *rec;        /* after tls_slim, else NULL */
    struct tls_facts   *facts;      /* kept over tls_slim, or NULL */
    struct tls_sni_hook *hook;      /* server: asked by the name */
    /* Until tls_slim: the application traffic secrets (key log order:
     * the client's, the server's) and the records under them so far. */
    uint8_t             secret[2][TLS_REC_SECRET_MAX];
    uint8_t             secret_len;
    uint8_t             have;       /* bit i: secret[i] came */
    unsigned            fin_w:1;    /* our Finished is written */
    unsigned            fin_r:1;    /* the peer's Finished was read */
    unsigned            moved:1;    /* a post-handshake message other
                                       than a ticket: OpenSSL's keys or
                                       state moved on, so stay */
    uint32_t            nread;      /* records read after the peer's
                                       Finished */
    uint32_t            nwritten;   /* written after ours (a server's
                                       tickets) */
};

#define TLS_RESULT_NAME(name, label) label,
static const char *const tls_result_names[] = {
    TLS_RESULT_LIST(TLS_RESULT_NAME)
};
#undef TLS_RESULT_NAME

const char *
tls_result_name(enum tls_result r)
{
    return (unsigned)r < TLS_NRESULTS ? tls_result_names[r] : "error";
}

/* OpenSSL's last error as text into <err>, or <dflt> if it has none. */
static void
tls_errstr(char *err, size_t errlen, const char *dflt)
{
    unsigned long e = ERR_peek_last_error();
    const char *r;

    r = e != 0 ? ERR_reason_error_string(e) : NULL;
    snprintf(err, errlen, "%s", r != NULL ? r : dflt);
    ERR_clear_error();
}

/* ---- certificates ---------------------------------------------------- */

/* Can <path> be read? If not, "<key> <path>: cannot read: why" in <err>. */
static int
tls_readable(const char *key, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        snprintf(err, errlen, "%s %s: cannot read: %s", key, path,
                 strerror(errno));
        return MQ_ERR;
    }
    fclose(f);
    return MQ_OK;
}

/* Add <name> (lower-cased) to <c>'s names. */
static int
tls_cert_add_name(struct tls_cert *c, const char *name, size_t len)
{
    char **names, *copy;
    size_t i;

    names = realloc(c->names, (c->nnames + 1) * sizeof(*names));
    if (names == NULL) {
        return MQ_ERR;
    }
    c->names = names;
    copy = strndup(name, len);
    if (copy == NULL) {
        return MQ_ERR;
    }
    for (i = 0; copy[i] != '\0'; i++) {
        if (copy[i] >= 'A' && copy[i] <= 'Z') {
            copy[i] = (char)(copy[i] - 'A' + 'a');
        }
    }
    c->names[c->nnames++] = copy;
    return MQ_OK;
}

/* The DNS names <x> is for: its DNS SANs, or its CN when it has none. */
static int
tls_cert_names(struct tls_cert *c, X509 *x)
{
    GENERAL_NAMES *gens;
    const GENERAL_NAME *g;
    X509_NAME *subj;
    char cn[256];
    int i, n, rc = MQ_OK;

    gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    if (gens != NULL) {
        for (i = 0; i < sk_GENERAL_NAME_num(gens) && rc == MQ_OK; i++) {
            g = sk_GENERAL_NAME_value(gens, i);
            if (g->type == GEN_DNS) {
                rc = tls_cert_add_name(c, (const char *)
                                       ASN1_STRING_get0_data(g->d.dNSName),
                                       (size_t)ASN1_STRING_length(
                                           g->d.dNSName));
            }
        }
        GENERAL_NAMES_free(gens);
    }
    if (c->nnames == 0 && rc == MQ_OK) {
        subj = X509_get_subject_name(x);
        n = X509_NAME_get_text_by_NID(subj, NID_commonName, cn, sizeof(cn));
        if (n > 0) {
            rc = tls_cert_add_name(c, cn, (size_t)n);
        }
    }
    return rc;
}

/* Does certificate name <pat> ("*.x.y" or exact) cover <name>? */
static int
tls_name_covers(const char *pat, const char *name)
{
    const char *dot;

    if (pat[0] == '*' && pat[1] == '.') {
        /* A certificate wildcard covers exactly one label. */
        dot = strchr(name, '.');
        return dot != NULL && dot != name && strcasecmp(dot, pat + 1) == 0;
    }
    return strcasecmp(pat, name) == 0;
}

/* The context of <ts> whose certificate covers <name>; else the first. */
static SSL_CTX *
tls_server_ctx_for(const struct tls_server *ts, const char *name)
{
    size_t i, j;

    if (name != NULL) {
        for (i = 0; i < ts->ncerts; i++) {
            for (j = 0; j < ts->certs[i].nnames; j++) {
                if (tls_name_covers(ts->certs[i].names[j], name)) {
                    return ts->certs[i].ctx;
                }
            }
        }
    }
    return ts->certs[0].ctx;
}

static int
tls_servername_cb(SSL *ssl, int *al, void *arg)
{
    struct tls_server *ts = arg;
    struct tls_sni_hook *hook;
    const char *name;
    SSL_CTX *ctx;

    name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    hook = ((struct tls_conn *)SSL_get_app_data(ssl))->hook;
    if (hook != NULL && hook->pick != NULL) {
        ts = hook->pick(hook->arg, name);
        if (ts == NULL) {
            *al = SSL_AD_UNRECOGNIZED_NAME;
            return SSL_TLSEXT_ERR_ALERT_FATAL;
        }
    }
    ctx = tls_server_ctx_for(ts, name);
    if (ctx != SSL_get_SSL_CTX(ssl)) {
        SSL_set_SSL_CTX(ssl, ctx);
        /* SSL_set_SSL_CTX takes the certificate, not what SSL_new copied
         * from the first context: the client-certificate policy. */
        SSL_set_verify(ssl, SSL_CTX_get_verify_mode(ctx), NULL);
        SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(ctx));
    }
    return SSL_TLSEXT_ERR_OK;
}

/* ALPN: the first of our protocols the client offers; none: go on. */
static int
tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
            const unsigned char *in, unsigned int inlen, void *arg)
{
    const unsigned char *ours = arg;
    unsigned char *sel;

    (void)ssl;
    if (SSL_select_next_proto(&sel, outlen, ours + 1, ours[0], in, inlen)
        != OPENSSL_NPN_NEGOTIATED)
    {
        return SSL_TLSEXT_ERR_NOACK;
    }
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/*
 * "mqtt,amqp" in ALPN wire format (u8 length, name, ...), after one byte
 * holding the wire length. Owned by the context (ex_data, freed with it).
 */
static unsigned char *
tls_alpn_wire(const char *list)
{
    unsigned char *w;
    size_t len = strlen(list), i, start, n, o = 2;

    if (len == 0 || len > 250) {
        return NULL;
    }
    w = calloc(1, len + 3);
    if (w == NULL) {
        return NULL;
    }
    start = 0;
    for (i = 0; i <= len; i++) {
        if (list[i] != ',' && list[i] != '\0') {
            continue;
        }
        n = i - start;
        while (n > 0 && list[start] == ' ') {
            start++;
            n--;
        }
        while (n > 0 && list[start + n - 1] == ' ') {
            n--;
        }
        if (n == 0) {
            free(w);
            return NULL;
        }
        w[o - 1] = (unsigned char)n;
        memcpy(w + o, list + start, n);
        o += n + 1;
        start = i + 1;
    }
    w[0] = (unsigned char)(o - 2);  /* wire length, after this byte */
    return w;
}

static void
tls_alpn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
              long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    free(ptr);
}

static int tls_alpn_index = -1;     /* SSL_CTX ex_data: ALPN wire list */

/*
 * OpenSSL's key log (the NSS format: "LABEL <client random> <secret>"):
 * the two application traffic secrets tls_slim needs.
 */
static void
tls_keylog_cb(const SSL *ssl, const char *line)
{
    static const char *const labels[2] = {
        "CLIENT_TRAFFIC_SECRET_0 ", "SERVER_TRAFFIC_SECRET_0 ",
    };
    struct tls_conn *c = SSL_get_app_data(ssl);
    const char *hex;
    size_t i, j, n;
    int hi, lo;

    for (i = 0; c != NULL && i < 2; i++) {
        if (strncmp(line, labels[i], strlen(labels[i])) != 0) {
            continue;
        }
        hex = strrchr(line, ' ') + 1;
        n = strlen(hex) / 2;
        if (n > TLS_REC_SECRET_MAX || (c->secret_len != 0
                                       && c->secret_len != n)) {
            return;
        }
        for (j = 0; j < n; j++) {
            hi = OPENSSL_hexchar2int((unsigned char)hex[2 * j]);
            lo = OPENSSL_hexchar2int((unsigned char)hex[2 * j + 1]);
            if (hi < 0 || lo < 0) {
                return;
            }
            c->secret[i][j] = (uint8_t)(hi << 4 | lo);
        }
        c->secret_len = (uint8_t)n;
        c->have |= (uint8_t)(1u << i);
    }
}

/*
 * OpenSSL's message callback, until tls_slim. In TLS 1.3 each side
 * writes under its application key from its own Finished on, and reads
 * under the peer's from the peer's Finished on (RFC 8446 7.1), so the
 * records counted from there are the sequence numbers tls_rec starts
 * from. (A record's header is reported before the message it carries.)
 */
static void
tls_msg_cb(int write_p, int version, int type, const void *buf, size_t len,
           SSL *ssl, void *arg)
{
    struct tls_conn *c = arg;
    const uint8_t *p = buf;

    (void)version;
    (void)ssl;
    if (type == SSL3_RT_HEADER) {
        if (write_p && c->fin_w) {
            c->nwritten++;
        } else if (!write_p && c->fin_r) {
            c->nread++;
        }
        return;
    }
    if (type != SSL3_RT_HANDSHAKE || len == 0) {
        return;
    }
    if (c->fin_w && c->fin_r && p[0] != SSL3_MT_NEWSESSION_TICKET) {
        c->moved = 1;
    } else if (p[0] == SSL3_MT_FINISHED) {
        if (write_p) {
            c->fin_w = 1;
        } else {
            c->fin_r = 1;
        }
    }
}

/* One context for certificate <i> of <cf>; NULL with <err>/<*line>. */
static SSL_CTX *
tls_server_ctx_new(const struct tls_server_conf *cf, size_t i,
                   struct tls_server *ts, char *err, size_t errlen,
                   int *line)
{
    const char *cert = cf->certs[i];
    const char *key = cf->key != NULL ? cf->key : cert;
    STACK_OF(X509_NAME) *cas;
    unsigned char *alpn;
    SSL_CTX *ctx;
    X509 *x;
    char msg[160];

    *line = cf->cert_lines[i];
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, cf->min_version == TLS_MIN_13
                                  ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION
                        | SSL_OP_CIPHER_SERVER_PREFERENCE
                        | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS
                     | SSL_MODE_ENABLE_PARTIAL_WRITE
                     | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"mqlb", 4);
    if (!cf->tickets) {
        /* No resumption (a policy choice: it saves no memory). */
        SSL_CTX_set_num_tickets(ctx, 0);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    if (tls_readable("tls_cert", cert, err, errlen) != MQ_OK) {
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        tls_errstr(msg, sizeof(msg), "unreadable");
        snprintf(err, errlen, "tls_cert %s: cannot load a certificate: %s",
                 cert, msg);
        goto fail;
    }
    if (cf->key != NULL) {
        *line = cf->key_line;
        if (tls_readable("tls_key", key, err, errlen) != MQ_OK) {
            goto fail;
        }
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error())
            == X509_R_KEY_VALUES_MISMATCH)
        {
            ERR_clear_error();
            snprintf(err, errlen, "%s %s: the private key does not match "
                     "the certificate %s", cf->key != NULL ? "tls_key"
                     : "tls_cert", key, cert);
            goto fail;
        }
        tls_errstr(msg, sizeof(msg), "unreadable");
        snprintf(err, errlen, "%s %s: cannot load the private key: %s",
                 cf->key != NULL ? "tls_key" : "tls_cert", key, msg);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "tls_cert %s: the private key does not match "
                 "the certificate", cert);
        goto fail;
    }
    *line = cf->cert_lines[i];
    x = SSL_CTX_get0_certificate(ctx);
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
        snprintf(err, errlen, "tls_cert %s: the certificate has expired",
                 cert);
        goto fail;
    }
    if (tls_cert_names(&ts->certs[i], x) != MQ_OK) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (cf->ciphers != NULL && SSL_CTX_set_cipher_list(ctx, cf->ciphers)
        != 1)
    {
        ERR_clear_error();
        snprintf(err, errlen, "tls_ciphers: no cipher in \"%s\" is known "
                 "to OpenSSL", cf->ciphers);
        goto fail;
    }
    if (cf->ciphersuites != NULL
        && SSL_CTX_set_ciphersuites(ctx, cf->ciphersuites) != 1)
    {
        ERR_clear_error();
        snprintf(err, errlen, "tls_ciphersuites: \"%s\" is not a valid TLS "
                 "1.3 suite list", cf->ciphersuites);
        goto fail;
    }
    if (cf->alpn != NULL) {
        alpn = tls_alpn_wire(cf->alpn);
        if (alpn == NULL) {
            *line = cf->alpn_line;
            snprintf(err, errlen, "tls_alpn: expected protocol names "
                     "separated by commas, like mqtt,amqp");
            goto fail;
        }
        SSL_CTX_set_ex_data(ctx, tls_alpn_index, alpn);
        SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_cb, alpn);
    }
    if (cf->client_ca != NULL) {
        *line = cf->client_ca_line;
        if (tls_readable("tls_client_ca", cf->client_ca, err, errlen)
            != MQ_OK)
        {
            goto fail;
        }
        if (SSL_CTX_load_verify_locations(ctx, cf->client_ca, NULL) != 1) {
            tls_errstr(msg, sizeof(msg), "unreadable");
            snprintf(err, errlen, "tls_client_ca %s: cannot load: %s",
                     cf->client_ca, msg);
            goto fail;
        }
        cas = SSL_load_client_CA_file(cf->client_ca);
        if (cas != NULL) {
            SSL_CTX_set_client_CA_list(ctx, cas);
        }
        ERR_clear_error();
    }
    switch (cf->verify_client) {
    case TLS_VERIFY_OFF:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        break;
    case TLS_VERIFY_OPTIONAL:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        break;
    case TLS_VERIFY_REQUIRED:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER
                           | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        break;
    }
    SSL_CTX_set_tlsext_servername_callback(ctx, tls_servername_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, ts);
    SSL_CTX_set_keylog_callback(ctx, tls_keylog_cb);
    return ctx;

fail:
    SSL_CTX_free(ctx);
    return NULL;
}

struct tls_server *
tls_server_create(const struct tls_server_conf *cf, char *err,
                  size_t errlen, int *line)
{
    struct tls_server *ts;
    size_t i;

    if (tls_alpn_index == -1) {
        tls_alpn_index = SSL_CTX_get_ex_new_index(0, "mqlb alpn", NULL,
                                                  NULL, tls_alpn_free);
    }
    *line = 0;
    if (cf->ncerts == 0) {
        snprintf(err, errlen, "a tls listener needs tls_cert");
        return NULL;
    }
    ts = calloc(1, sizeof(*ts));
    if (ts == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ts->certs = calloc(cf->ncerts, sizeof(*ts->certs));
    if (ts->certs == NULL) {
        free(ts);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ts->ncerts = cf->ncerts;
    for (i = 0; i < cf->ncerts; i++) {
        ts->certs[i].ctx = tls_server_ctx_new(cf, i, ts, err, errlen, line);
        if (ts->certs[i].ctx == NULL) {
            tls_server_destroy(ts);
            return NULL;
        }
    }
    return ts;
}

void
tls_server_destroy(struct tls_server *ts)
{
    size_t i, j;

    if (ts == NULL) {
        return;
    }
    for (i = 0; i < ts->ncerts; i++) {
        SSL_CTX_free(ts->certs[i].ctx);
        for (j = 0; j < ts->certs[i].nnames; j++) {
            free(ts->certs[i].names[j]);
        }
        free(ts->certs[i].names);
    }
    free(ts->certs);
    free(ts);
}

/* A connection around a new SSL of <ctx> on <fd>; NULL without memory. */
static struct tls_conn *
tls_conn_new(SSL_CTX *ctx, int fd)
{
    struct tls_conn *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        return NULL;
    }
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
        ERR_clear_error();
        SSL_free(c->ssl);
        free(c);
        return NULL;
    }
    SSL_set_app_data(c->ssl, c);
    SSL_set_msg_callback(c->ssl, tls_msg_cb);
    SSL_set_msg_callback_arg(c->ssl, c);
    return c;
}

struct tls_conn *
tls_server_conn(struct tls_server *ts, int fd, struct tls_sni_hook *hook)
{
    struct tls_conn *c = tls_conn_new(ts->certs[0].ctx, fd);

    if (c == NULL) {
        return NULL;
    }
    c->hook = hook;
    SSL_set_accept_state(c->ssl);
    return c;
}

/* ---- TLS to brokers ------------------------------------------------- */

struct tls_client *
tls_client_create(const struct tls_client_conf *cf, char *err,
                  size_t errlen, int *line)
{
    struct tls_client *tc;
    char msg[160];

    *line = cf->ca_line;
    tc = calloc(1, sizeof(*tc));
    if (tc == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    tc->ctx = SSL_CTX_new(TLS_client_method());
    if (tc->ctx == NULL) {
        free(tc);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    tc->verify = cf->verify;
    if (cf->sni != NULL) {
        tc->sni = strdup(cf->sni);
    }
    SSL_CTX_set_min_proto_version(tc->ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(tc->ctx, SSL_OP_NO_RENEGOTIATION
                        | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(tc->ctx, SSL_MODE_RELEASE_BUFFERS
                     | SSL_MODE_ENABLE_PARTIAL_WRITE
                     | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (cf->ca != NULL && cf->verify) {
        /* (Without verification the CA file is not used, nor read.) */
        if (tls_readable("backend_tls_ca", cf->ca, err, errlen) != MQ_OK) {
            tls_client_destroy(tc);
            return NULL;
        }
        if (SSL_CTX_load_verify_locations(tc->ctx, cf->ca, NULL) != 1) {
            tls_errstr(msg, sizeof(msg), "unreadable");
            snprintf(err, errlen, "backend_tls_ca %s: cannot load: %s",
                     cf->ca, msg);
            tls_client_destroy(tc);
            return NULL;
        }
    } else if (SSL_CTX_set_default_verify_paths(tc->ctx) != 1) {
        ERR_clear_error();
    }
    SSL_CTX_set_verify(tc->ctx, cf->verify ? SSL_VERIFY_PEER
                                           : SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_keylog_callback(tc->ctx, tls_keylog_cb);
    return tc;
}

void
tls_client_destroy(struct tls_client *tc)
{
    if (tc == NULL) {
        return;
    }
    SSL_CTX_free(tc->ctx);
    free(tc->sni);
    free(tc);
}

/* The host part of "host:port" or "[v6]:port" into <out>. */
static void
tls_host_of(const char *text, char *out, size_t outlen)
{
    const char *end;

    if (text[0] == '[') {
        end = strchr(text, ']');
        text++;
    } else {
        end = strrchr(text, ':');
    }
    if (end == NULL) {
        end = text + strlen(text);
    }
    snprintf(out, outlen, "%.*s", (int)(end - text), text);
}

struct tls_conn *
tls_client_conn(struct tls_client *tc, int fd, const char *addr)
{
    const char *name;
    char host[256];
    struct in6_addr ip;
    struct tls_conn *c;
    SSL *ssl;

    tls_host_of(addr, host, sizeof(host));
    name = tc->sni != NULL ? tc->sni : host;

    c = tls_conn_new(tc->ctx, fd);
    if (c == NULL) {
        return NULL;
    }
    ssl = c->ssl;
    if (name != NULL && name[0] != '\0') {
        /* An IP address is no server name (RFC 6066); it is checked
         * against the certificate's IP SANs instead. */
        if (inet_pton(AF_INET, name, &ip) == 1
            || inet_pton(AF_INET6, name, &ip) == 1)
        {
            if (tc->verify
                && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name)
                   != 1)
            {
                goto fail;
            }
        } else {
            if (SSL_set_tlsext_host_name(ssl, name) != 1) {
                goto fail;
            }
            if (tc->verify && SSL_set1_host(ssl, name) != 1) {
                goto fail;
            }
        }
    }
    SSL_set_connect_state(ssl);
    return c;

fail:
    ERR_clear_error();
    tls_free(c);
    return NULL;
}

/* ---- handshakes and I/O --------------------------------------------- */

/* Classify a failed handshake from OpenSSL's error queue. */
static enum tls_result
tls_classify(SSL *ssl, int err, char *msg, size_t msglen)
{
    unsigned long e = ERR_peek_last_error();
    int reason = ERR_GET_REASON(e);
    long vr;

    if (err == SSL_ERROR_SYSCALL || (err == SSL_ERROR_ZERO_RETURN)
        || (e == 0 && err != SSL_ERROR_SSL))
    {
        snprintf(msg, msglen, "%s", errno != 0 && err == SSL_ERROR_SYSCALL
                 ? strerror(errno) : "connection closed");
        ERR_clear_error();
        return TLS_RESULT_CLOSED;
    }
    tls_errstr(msg, msglen, "handshake failed");
    switch (reason) {
    case SSL_R_NO_SHARED_CIPHER:
        return TLS_RESULT_NO_CIPHER;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        return TLS_RESULT_VERSION;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        return TLS_RESULT_NO_CERT;
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
        vr = SSL_get_verify_result(ssl);
        if (vr != X509_V_OK) {
            snprintf(msg, msglen, "certificate verify failed: %s",
                     X509_verify_cert_error_string(vr));
        }
        return TLS_RESULT_BAD_CERT;
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
    case SSL_R_UNEXPECTED_MESSAGE:
    case SSL_R_UNEXPECTED_RECORD:
        return TLS_RESULT_NOT_TLS;
    case SSL_R_CALLBACK_FAILED:
        return TLS_RESULT_SNI;
    default:
        return TLS_RESULT_ERROR;
    }
}

/*
 * A TLS 1.3 server that sends no session ticket has nothing to say after
 * the client's Finished, so the kernel delays its ACK (40 ms), and a
 * client with Nagle on holds its first request until that ACK comes.
 * Send it now. (A ticket, or TLS 1.2's last flight, carries it anyway.)
 */
static void
tls_ack_finished(SSL *ssl)
{
    if (SSL_is_server(ssl) && SSL_version(ssl) == TLS1_3_VERSION
        && SSL_get_num_tickets(ssl) == 0) {
        net_ack_now(SSL_get_fd(ssl));
    }
}

int
tls_handshake(struct tls_conn *c, int *want, enum tls_result *why,
              char *err, size_t errlen)
{
    SSL *ssl = c->ssl;
    int rc, e;

    ERR_clear_error();
    errno = 0;
    rc = SSL_do_handshake(ssl);
    if (rc == 1) {
        tls_ack_finished(ssl);
        *why = TLS_RESULT_OK;
        return MQ_OK;
    }
    e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ) {
        *want = RELAY_WANT_READ;
        return MQ_AGAIN;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        *want = RELAY_WANT_WRITE;
        return MQ_AGAIN;
    }
    *why = tls_classify(ssl, e, err, errlen);
    return MQ_ERR;
}

void
tls_free(struct tls_conn *c)
{
    if (c == NULL) {
        return;
    }
    SSL_free(c->ssl);
    tls_rec_free(c->rec);
    free(c->facts);
    OPENSSL_cleanse(c->secret, sizeof(c->secret));
    free(c);
}

/* <n> bytes of <p> (NULL when none) to <*t>, which moves past them;
 * where they went, or NULL. */
static const uint8_t *
tls_facts_copy(uint8_t **t, const uint8_t *p, size_t n)
{
    uint8_t *at = *t;

    if (n == 0) {
        return NULL;
    }
    memcpy(at, p, n);
    *t += n;
    return at;
}

/* Copy what tls_proxy_facts says of <c> into c->facts. */
static int
tls_facts_keep(struct tls_conn *c)
{
    struct proxy_proto_tls pt;
    struct tls_facts *f;
    char cn[256];
    uint8_t *t;

    tls_proxy_facts(c, &pt, cn, sizeof(cn));
    f = malloc(sizeof(*f) + pt.alpnlen + pt.snilen + pt.cnlen);
    if (f == NULL) {
        return MQ_ERR;
    }
    f->pt = pt;
    t = f->text;
    f->pt.alpn = tls_facts_copy(&t, pt.alpn, pt.alpnlen);
    f->pt.sni = tls_facts_copy(&t, pt.sni, pt.snilen);
    f->pt.cn = tls_facts_copy(&t, pt.cn, pt.cnlen);
    c->facts = f;
    return MQ_OK;
}

int
tls_slim(struct tls_conn *c, int keep_facts)
{
    SSL *ssl = c->ssl;
    enum tls_rec_suite suite = TLS_REC_NONE;
    int rc = MQ_ERR, client;

    if (ssl == NULL) {
        return MQ_OK;
    }
    if (SSL_version(ssl) == TLS1_3_VERSION) {
        suite = tls_rec_suite_of(SSL_CIPHER_get_protocol_id(
                                     SSL_get_current_cipher(ssl)));
    }
    /* Only at a record boundary with nothing held: no bytes read and not
     * yet returned, no alert sent or received. */
    if (suite == TLS_REC_NONE || c->have != 3 || !c->fin_w || !c->fin_r
        || c->moved
        || c->secret_len != tls_rec_secret_len(suite)
        || SSL_has_pending(ssl) || SSL_get_shutdown(ssl) != 0
        || !SSL_is_init_finished(ssl)) {
        goto out;
    }
    if (keep_facts && tls_facts_keep(c) != MQ_OK) {
        goto out;
    }
    /* secret[0] is the client's, secret[1] the server's. */
    client = !SSL_is_server(ssl);
    c->rec = tls_rec_new(SSL_get_fd(ssl), suite, c->secret[client],
                         c->nread, c->secret[!client], c->nwritten, client);
    if (c->rec == NULL) {
        mq_free(c->facts);
        goto out;
    }
    SSL_free(ssl);
    c->ssl = NULL;
    rc = MQ_OK;
out:
    OPENSSL_cleanse(c->secret, sizeof(c->secret));
    c->have = 0;
    if (c->ssl != NULL) {
        SSL_set_msg_callback(c->ssl, NULL);
    }
    return rc;
}

int
tls_is_slim(const struct tls_conn *c)
{
    return c->rec != NULL;
}

/* An SSL_read/SSL_write outcome <rc> as recv/send would give it. */
static ssize_t
tls_io_result(SSL *ssl, int rc, int *want)
{
    int e = SSL_get_error(ssl, rc);

    switch (e) {
    case SSL_ERROR_WANT_READ:
        *want = RELAY_WANT_READ;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        *want = RELAY_WANT_WRITE;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        return 0;                   /* close_notify, or FIN */
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (errno == 0 || errno == EAGAIN) {
            errno = ECONNRESET;
        }
        return -1;
    default:
        ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
}

static ssize_t
tls_io_recv(void *conn, void *buf, size_t len, int *want)
{
    struct tls_conn *c = conn;
    SSL *ssl = c->ssl;
    size_t n = 0;
    int rc;

    if (c->rec != NULL) {
        return tls_rec_recv(c->rec, buf, len, want);
    }
    ERR_clear_error();
    errno = 0;
    rc = SSL_read_ex(ssl, buf, len, &n);
    if (rc == 1) {
        return (ssize_t)n;
    }
    return tls_io_result(ssl, rc, want);
}

static ssize_t
tls_io_send(void *conn, const void *buf, size_t len, int *want)
{
    struct tls_conn *c = conn;
    SSL *ssl = c->ssl;
    size_t n = 0;
    int rc;

    if (c->rec != NULL) {
        return tls_rec_send(c->rec, buf, len, want);
    }
    ERR_clear_error();
    errno = 0;
    rc = SSL_write_ex(ssl, buf, len, &n);
    if (rc == 1) {
        return (ssize_t)n;
    }
    if (SSL_get_error(ssl, rc) == SSL_ERROR_SYSCALL && errno == EPIPE) {
        ERR_clear_error();
        return -1;
    }
    return tls_io_result(ssl, rc, want);
}

/*
 * The peer's direction ended: send close_notify, then FIN. One try: the
 * alert is a few dozen bytes into a socket whose buffer was just
 * flushed; if it does not fit, the FIN alone still ends the stream.
 */
static void
tls_io_shutdown(void *conn, int fd)
{
    struct tls_conn *c = conn;
    SSL *ssl = c->ssl;

    if (c->rec != NULL) {
        tls_rec_shutdown(c->rec, fd);
        return;
    }
    ERR_clear_error();
    if (SSL_shutdown(ssl) < 0) {
        ERR_clear_error();
    }
    shutdown(fd, SHUT_WR);
}

static size_t
tls_io_pending(void *conn)
{
    struct tls_conn *c = conn;

    if (c->rec != NULL) {
        return tls_rec_pending(c->rec);
    }
    return (size_t)SSL_pending(c->ssl);
}

const struct relay_io tls_relay_io = {
    .recv = tls_io_recv,
    .send = tls_io_send,
    .shutdown = tls_io_shutdown,
    .pending = tls_io_pending,
};

/* ---- facts ---------------------------------------------------------- */

void
tls_proxy_facts(struct tls_conn *c, struct proxy_proto_tls *pt, char *cn,
                size_t cnlen)
{
    const unsigned char *alpn = NULL;
    unsigned int alpnlen = 0;
    SSL *ssl = c->ssl;
    const char *sni;
    X509 *peer;
    int n;

    memset(pt, 0, sizeof(*pt));
    if (ssl == NULL) {
        if (c->facts != NULL) {
            *pt = c->facts->pt;
        }
        return;
    }
    SSL_get0_alpn_selected(ssl, &alpn, &alpnlen);
    if (alpn != NULL && alpnlen > 0) {
        pt->alpn = alpn;
        pt->alpnlen = alpnlen;
    }
    sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (sni != NULL) {
        pt->sni = (const uint8_t *)sni;
        pt->snilen = strlen(sni);
    }
    pt->version = SSL_get_version(ssl);
    pt->cipher = SSL_get_cipher_name(ssl);
    peer = SSL_get0_peer_certificate(ssl);
    if (peer != NULL) {
        pt->cert = 1;
        pt->verify = (uint32_t)SSL_get_verify_result(ssl);
        n = X509_NAME_get_text_by_NID(X509_get_subject_name(peer),
                                      NID_commonName, cn, (int)cnlen);
        if (n > 0) {
            pt->cn = (const uint8_t *)cn;
            pt->cnlen = (size_t)n;
        }
    }
}
