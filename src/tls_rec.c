/*
 * tls_rec.c: TLS 1.3 records after the handshake (see tls_rec.h).
 *
 * Receiving: bytes are read into a per-thread scratch buffer and each
 * whole record is opened straight into the caller's buffer; only a
 * record cut by the read (or content the caller had no room for) is
 * kept, in a buffer of the connection's own that is freed as soon as it
 * empties. Sending: one record per call, sealed into the scratch buffer
 * and sent; what the socket does not take is kept and reported as
 * EAGAIN, and the caller's next call with the same bytes finishes it
 * (OpenSSL's SSL_write contract, so the relay needs no second path).
 * An idle connection holds no buffer at all.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "mqlb/common.h"
#include "mqlb/relay.h"
#include "mqlb/tls_rec.h"

#define TLS_REC_KEY_UPDATE  24      /* handshake types (4) */
#define TLS_REC_NEW_TICKET  4
#define TLS_REC_CLOSE_NOTIFY 0      /* alert descriptions (6) */
#define TLS_REC_USER_CANCELED 90
/* AES-GCM keys are good for 2^24.5 full records (5.5): renew far before. */
#define TLS_REC_REKEY_AFTER ((uint64_t)1 << 23)
/* Records in a row that carry no content (empty ones, KeyUpdates,
 * tickets): past this the peer only keeps the worker busy (OpenSSL's
 * limit too). */
#define TLS_REC_EMPTY_MAX   32

struct tls_rec {
    struct tls_rec_key  rd;         /* the peer's records */
    struct tls_rec_key  wr;         /* ours */
    uint8_t            *rx;         /* kept received bytes, or NULL */
    const uint8_t      *plain;      /* opened content not yet returned */
    uint8_t            *tx;         /* sealed bytes not yet sent, or NULL */
    uint32_t            rx_off;     /* first unopened byte in <rx> */
    uint32_t            rx_len;     /* unopened bytes */
    uint32_t            plain_len;
    uint32_t            tx_off;
    uint32_t            tx_len;
    uint32_t            tx_plain;   /* caller's bytes <tx> carries */
    uint32_t            hs_skip;    /* bytes of a message to pass over */
    int                 fd;
    int                 failed;     /* errno of a broken stream, or 0 */
    uint8_t             suite;      /* enum tls_rec_suite */
    uint8_t             hs_len;     /* bytes of a handshake message */
    uint8_t             empty;      /* records in a row without content */
    uint8_t             hs[5];      /* header and KeyUpdate's one byte */
    unsigned            client:1;   /* we are the TLS client */
    unsigned            eof:1;      /* close_notify or FIN came */
    unsigned            eof_told:1; /* and recv said so */
    unsigned            ku_owed:1;  /* the peer asked for our KeyUpdate */
};

/* Received bytes land here first; sealed records are built here. */
static _Thread_local uint8_t tls_rec_scratch[TLS_REC_MAX];

static pthread_once_t tls_rec_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *tls_rec_ciphers[4];
static EVP_KDF *tls_rec_kdf;

static void
tls_rec_fetch(void)
{
    tls_rec_ciphers[TLS_REC_AES_128_GCM_SHA256] =
        EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    tls_rec_ciphers[TLS_REC_AES_256_GCM_SHA384] =
        EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    tls_rec_ciphers[TLS_REC_CHACHA20_POLY1305_SHA256] =
        EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
    tls_rec_kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_TLS1_3_KDF, NULL);
}

enum tls_rec_suite
tls_rec_suite_of(uint16_t id)
{
    switch (id) {
    case 0x1301: return TLS_REC_AES_128_GCM_SHA256;
    case 0x1302: return TLS_REC_AES_256_GCM_SHA384;
    case 0x1303: return TLS_REC_CHACHA20_POLY1305_SHA256;
    default:     return TLS_REC_NONE;
    }
}

size_t
tls_rec_secret_len(enum tls_rec_suite suite)
{
    return suite == TLS_REC_AES_256_GCM_SHA384 ? 48 : 32;
}

static size_t
tls_rec_key_len(enum tls_rec_suite suite)
{
    return suite == TLS_REC_AES_128_GCM_SHA256 ? 16 : 32;
}

int
tls_rec_expand_label(enum tls_rec_suite suite, const uint8_t *secret,
                     const char *label, uint8_t *out, size_t outlen)
{
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, rc;
    OSSL_PARAM params[6], *p = params;
    EVP_KDF_CTX *kc;

    pthread_once(&tls_rec_once, tls_rec_fetch);
    if (tls_rec_kdf == NULL || (kc = EVP_KDF_CTX_new(tls_rec_kdf)) == NULL) {
        return MQ_ERR;
    }
    *p++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
               suite == TLS_REC_AES_256_GCM_SHA384 ? "SHA384" : "SHA256", 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
               (void *)secret, tls_rec_secret_len(suite));
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX,
               (void *)"tls13 ", 6);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL,
               (void *)label, strlen(label));
    *p = OSSL_PARAM_construct_end();
    rc = EVP_KDF_derive(kc, out, outlen, params);
    EVP_KDF_CTX_free(kc);
    return rc == 1 ? MQ_OK : MQ_ERR;
}

/* Key and IV from k->secret into the cipher context. */
static int
tls_rec_key_set(struct tls_rec_key *k, enum tls_rec_suite suite, int seal)
{
    uint8_t key[32];
    int rc = MQ_ERR;

    if (tls_rec_expand_label(suite, k->secret, "key", key,
                             tls_rec_key_len(suite)) != MQ_OK
        || tls_rec_expand_label(suite, k->secret, "iv", k->iv,
                                TLS_REC_IV) != MQ_OK) {
        goto out;
    }
    if (k->ctx == NULL && (k->ctx = EVP_CIPHER_CTX_new()) == NULL) {
        goto out;
    }
    if (EVP_CipherInit_ex(k->ctx, tls_rec_ciphers[suite], NULL, key, NULL,
                          seal) == 1) {
        rc = MQ_OK;
    }
out:
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

int
tls_rec_key_init(struct tls_rec_key *k, enum tls_rec_suite suite,
                 const uint8_t *secret, uint64_t seq, int seal)
{
    pthread_once(&tls_rec_once, tls_rec_fetch);
    if (suite == TLS_REC_NONE || tls_rec_ciphers[suite] == NULL) {
        return MQ_ERR;
    }
    memcpy(k->secret, secret, tls_rec_secret_len(suite));
    k->seq = seq;
    return tls_rec_key_set(k, suite, seal);
}

int
tls_rec_key_update(struct tls_rec_key *k, enum tls_rec_suite suite,
                   int seal)
{
    uint8_t next[TLS_REC_SECRET_MAX];
    size_t n = tls_rec_secret_len(suite);

    if (tls_rec_expand_label(suite, k->secret, "traffic upd", next, n)
        != MQ_OK) {
        return MQ_ERR;
    }
    memcpy(k->secret, next, n);
    OPENSSL_cleanse(next, sizeof(next));
    k->seq = 0;
    return tls_rec_key_set(k, suite, seal);
}

void
tls_rec_key_clear(struct tls_rec_key *k)
{
    EVP_CIPHER_CTX_free(k->ctx);
    k->ctx = NULL;
    OPENSSL_cleanse(k->secret, sizeof(k->secret));
    OPENSSL_cleanse(k->iv, sizeof(k->iv));
}

/* The per-record nonce: the IV with the sequence number XORed in (5.3). */
static void
tls_rec_nonce(const struct tls_rec_key *k, uint8_t *nonce)
{
    int i;

    memcpy(nonce, k->iv, TLS_REC_IV);
    for (i = 0; i < 8; i++) {
        nonce[TLS_REC_IV - 1 - i] ^= (uint8_t)(k->seq >> (8 * i));
    }
}

size_t
tls_rec_seal(struct tls_rec_key *k, uint8_t type, const uint8_t *in,
             size_t len, uint8_t *out)
{
    size_t body = len + 1 + TLS_REC_TAG;
    uint8_t nonce[TLS_REC_IV], *c = out + TLS_REC_HDR;
    int n, m, f;

    out[0] = TLS_REC_APPDATA;       /* every protected record says so */
    out[1] = 3;
    out[2] = 3;
    out[3] = (uint8_t)(body >> 8);
    out[4] = (uint8_t)body;
    tls_rec_nonce(k, nonce);
    if (EVP_EncryptInit_ex(k->ctx, NULL, NULL, NULL, nonce) != 1
        || EVP_EncryptUpdate(k->ctx, NULL, &n, out, TLS_REC_HDR) != 1
        || EVP_EncryptUpdate(k->ctx, c, &n, in, (int)len) != 1
        || EVP_EncryptUpdate(k->ctx, c + n, &m, &type, 1) != 1
        || EVP_EncryptFinal_ex(k->ctx, c + n + m, &f) != 1
        || (size_t)(n + m + f) != len + 1
        || EVP_CIPHER_CTX_ctrl(k->ctx, EVP_CTRL_AEAD_GET_TAG, TLS_REC_TAG,
                               c + len + 1) != 1) {
        return 0;
    }
    k->seq++;
    return TLS_REC_HDR + body;
}

int
tls_rec_open(struct tls_rec_key *k, const uint8_t *rec, size_t reclen,
             uint8_t *out, size_t *outlen, uint8_t *type)
{
    uint8_t nonce[TLS_REC_IV], tag[TLS_REC_TAG];
    size_t clen;
    int n, f;

    if (reclen < TLS_REC_HDR + TLS_REC_TAG + 1) {
        return MQ_ERR;
    }
    clen = reclen - TLS_REC_HDR - TLS_REC_TAG;
    /* Copied first: <out> may be the record's own bytes. */
    memcpy(tag, rec + TLS_REC_HDR + clen, TLS_REC_TAG);
    tls_rec_nonce(k, nonce);
    if (EVP_DecryptInit_ex(k->ctx, NULL, NULL, NULL, nonce) != 1
        || EVP_CIPHER_CTX_ctrl(k->ctx, EVP_CTRL_AEAD_SET_TAG, TLS_REC_TAG,
                               tag) != 1
        || EVP_DecryptUpdate(k->ctx, NULL, &n, rec, TLS_REC_HDR) != 1
        || EVP_DecryptUpdate(k->ctx, out, &n, rec + TLS_REC_HDR,
                             (int)clen) != 1
        || EVP_DecryptFinal_ex(k->ctx, out + n, &f) != 1) {
        return MQ_ERR;
    }
    k->seq++;
    /* The content type is the last byte that is not padding (5.4). */
    while (clen > 0 && out[clen - 1] == 0) {
        clen--;
    }
    if (clen == 0) {
        return MQ_ERR;
    }
    *type = out[clen - 1];
    *outlen = clen - 1;
    return MQ_OK;
}

/* ---- a connection ---------------------------------------------------- */

struct tls_rec *
tls_rec_new(int fd, enum tls_rec_suite suite, const uint8_t *rsecret,
            uint64_t rseq, const uint8_t *wsecret, uint64_t wseq, int client)
{
    struct tls_rec *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        return NULL;
    }
    r->fd = fd;
    r->suite = (uint8_t)suite;
    r->client = client != 0;
    if (tls_rec_key_init(&r->rd, suite, rsecret, rseq, 0) != MQ_OK
        || tls_rec_key_init(&r->wr, suite, wsecret, wseq, 1) != MQ_OK) {
        tls_rec_free(r);
        return NULL;
    }
    return r;
}

void
tls_rec_free(struct tls_rec *r)
{
    if (r == NULL) {
        return;
    }
    tls_rec_key_clear(&r->rd);
    tls_rec_key_clear(&r->wr);
    free(r->rx);
    free(r->tx);
    free(r);
}

/* A post-handshake message, in one or more pieces: KeyUpdate, or a
 * ticket a client passes over (4.6). */
static int
tls_rec_handshake(struct tls_rec *r, const uint8_t *p, size_t n)
{
    size_t k;

    if (n == 0) {
        return EPROTO;              /* no empty handshake fragments (5.1) */
    }
    while (n > 0) {
        if (r->hs_skip > 0) {
            k = MQ_MIN(n, (size_t)r->hs_skip);
            p += k;
            n -= k;
            r->hs_skip -= (uint32_t)k;
            continue;
        }
        if (r->hs_len < 4) {
            r->hs[r->hs_len++] = *p++;
            n--;
            if (r->hs_len < 4) {
                continue;
            }
            if (r->hs[0] == TLS_REC_NEW_TICKET && r->client) {
                r->hs_skip = (uint32_t)r->hs[1] << 16
                             | (uint32_t)r->hs[2] << 8 | r->hs[3];
                r->hs_len = 0;
                continue;
            }
            if (r->hs[0] != TLS_REC_KEY_UPDATE || r->hs[1] != 0
                || r->hs[2] != 0 || r->hs[3] != 1) {
                return EPROTO;      /* nothing else may come (4.6) */
            }
            continue;
        }
        r->hs[4] = *p++;
        n--;
        r->hs_len = 0;
        /* Update requested or not, and the record ends with it: the next
         * one comes under the new key. */
        if (r->hs[4] > 1 || n > 0) {
            return EPROTO;
        }
        if (tls_rec_key_update(&r->rd, (enum tls_rec_suite)r->suite, 0)
            != MQ_OK) {
            return ENOMEM;
        }
        if (r->hs[4] == 1) {
            r->ku_owed = 1;
        }
    }
    return 0;
}

/* A record that is not application data; 0 or an errno. */
static int
tls_rec_control(struct tls_rec *r, uint8_t type, const uint8_t *p,
                size_t n)
{
    switch (type) {
    case TLS_REC_ALERT:
        if (n != 2) {
            return EPROTO;
        }
        if (p[1] == TLS_REC_CLOSE_NOTIFY) {
            r->eof = 1;
            return 0;
        }
        if (p[1] == TLS_REC_USER_CANCELED) {
            return 0;               /* a close_notify follows */
        }
        return ECONNRESET;          /* a fatal alert: the peer gave up */
    case TLS_REC_HANDSHAKE:
        return tls_rec_handshake(r, p, n);
    default:
        return EPROTO;
    }
}

/* The length of the record at <h> (<avail> bytes there), 0 if it is not
 * all there yet, or -1 if its header is not a TLS 1.3 record's. */
static ssize_t
tls_rec_whole(const uint8_t *h, size_t avail)
{
    size_t body;

    if (avail < TLS_REC_HDR) {
        return 0;
    }
    body = (size_t)h[3] << 8 | h[4];
    if (h[0] != TLS_REC_APPDATA || body > TLS_REC_BODY_MAX
        || body < TLS_REC_TAG + 1) {
        return -1;
    }
    return avail >= TLS_REC_HDR + body ? (ssize_t)(TLS_REC_HDR + body) : 0;
}

/*
 * At the end of a receive in <w>: what is left (content, then raw
 * bytes) moves from the scratch buffer into a buffer of the
 * connection's own; an emptied own buffer is freed.
 */
static int
tls_rec_keep(struct tls_rec *r, uint8_t *w)
{
    if (r->eof) {
        r->rx_len = 0;              /* after close_notify: never read */
    }
    if (r->rx_len == 0 && r->plain_len == 0) {
        free(r->rx);
        r->rx = NULL;
        r->rx_off = 0;
        return MQ_OK;
    }
    if (w == r->rx) {
        return MQ_OK;
    }
    r->rx = malloc(TLS_REC_MAX);
    if (r->rx == NULL) {
        r->rx_len = r->plain_len = 0;
        return MQ_ERR;
    }
    if (r->plain_len > 0) {         /* (no content: <plain> may be NULL) */
        memcpy(r->rx, r->plain, r->plain_len);
    }
    memcpy(r->rx + r->plain_len, w + r->rx_off, r->rx_len);
    r->plain = r->rx;
    r->rx_off = r->plain_len;
    return MQ_OK;
}

ssize_t
tls_rec_recv(struct tls_rec *r, void *buf, size_t len, int *want)
{
    uint8_t *w = r->rx != NULL ? r->rx : tls_rec_scratch, *out = buf, *dst;
    size_t done = 0, n;
    ssize_t whole, got;
    uint8_t type;
    int err = r->failed;

    *want = RELAY_WANT_READ;
    while (err == 0) {
        if (r->plain_len > 0) {
            n = MQ_MIN(len - done, (size_t)r->plain_len);
            memcpy(out + done, r->plain, n);
            r->plain += n;
            r->plain_len -= (uint32_t)n;
            done += n;
            if (done == len) {
                break;
            }
            continue;
        }
        if (r->eof) {
            break;                  /* what follows close_notify is not read */
        }
        whole = tls_rec_whole(w + r->rx_off, r->rx_len);
        if (whole < 0) {
            err = EPROTO;
            break;
        }
        if (whole > 0) {
            n = (size_t)whole - TLS_REC_HDR - TLS_REC_TAG;
            if (n > len - done && done > 0) {
                break;              /* for the next call */
            }
            /* Straight into the caller's buffer when it fits; else in
             * place, returned from there. */
            dst = n <= len - done ? out + done : w + r->rx_off + TLS_REC_HDR;
            if (tls_rec_open(&r->rd, w + r->rx_off, (size_t)whole, dst, &n,
                             &type) != MQ_OK) {
                err = EBADMSG;
                break;
            }
            r->rx_off += (uint32_t)whole;
            r->rx_len -= (uint32_t)whole;
            r->empty = type == TLS_REC_APPDATA && n > 0 ? 0 : r->empty + 1;
            if (r->empty > TLS_REC_EMPTY_MAX) {
                err = EPROTO;
            } else if (type != TLS_REC_APPDATA) {
                err = tls_rec_control(r, type, dst, n);
            } else if (dst == out + done) {
                done += n;
            } else {
                r->plain = dst;
                r->plain_len = (uint32_t)n;
            }
            continue;
        }
        if (done > 0) {
            break;                  /* never wait with bytes in hand */
        }
        if (r->rx_off > 0) {
            memmove(w, w + r->rx_off, r->rx_len);
            r->rx_off = 0;
        }
        got = recv(r->fd, w + r->rx_len, TLS_REC_MAX - r->rx_len, 0);
        if (got > 0) {
            r->rx_len += (uint32_t)got;
        } else if (got == 0) {
            r->eof = 1;             /* FIN without close_notify: an end
                                       too, as OpenSSL is told to take it */
        } else if (errno != EINTR) {
            err = errno;
        }
    }
    if (err != 0 && err != EAGAIN && err != EWOULDBLOCK) {
        r->failed = err;
    }
    if (tls_rec_keep(r, w) != MQ_OK && r->failed == 0) {
        r->failed = err = ENOMEM;
    }
    if (done > 0) {
        return (ssize_t)done;
    }
    if (err != 0) {
        errno = err;
        return -1;
    }
    r->eof_told = 1;
    return 0;
}

/* Keep <n> sealed bytes that carry <plain> of the caller's for the next
 * call. */
static int
tls_rec_hold(struct tls_rec *r, const uint8_t *p, size_t n, size_t plain)
{
    r->tx = malloc(n);
    if (r->tx == NULL) {
        return MQ_ERR;
    }
    memcpy(r->tx, p, n);
    r->tx_off = 0;
    r->tx_len = (uint32_t)n;
    r->tx_plain = (uint32_t)plain;
    return MQ_OK;
}

/* Send what waits in r->tx: 0 when all is out, else -1 with errno. */
static int
tls_rec_flush(struct tls_rec *r)
{
    ssize_t n;

    while (r->tx_len > 0) {
        n = send(r->fd, r->tx + r->tx_off, r->tx_len, MSG_NOSIGNAL);
        if (n > 0) {
            r->tx_off += (uint32_t)n;
            r->tx_len -= (uint32_t)n;
        } else if (n == -1 && errno == EINTR) {
            continue;
        } else {
            return -1;
        }
    }
    free(r->tx);
    r->tx = NULL;
    r->tx_off = 0;
    return 0;
}

ssize_t
tls_rec_send(struct tls_rec *r, const void *buf, size_t len, int *want)
{
    static const uint8_t key_update[5] = { TLS_REC_KEY_UPDATE, 0, 0, 1, 0 };
    uint8_t *w = tls_rec_scratch;
    size_t n, rlen;
    ssize_t sent;

    *want = RELAY_WANT_WRITE;
    if (r->tx_len > 0) {
        if (tls_rec_flush(r) == -1) {
            return -1;
        }
        if (r->tx_plain > 0) {
            n = r->tx_plain;
            r->tx_plain = 0;
            return (ssize_t)n;
        }
    }
    if (r->ku_owed || r->wr.seq >= TLS_REC_REKEY_AFTER) {
        /* Ours goes out before our next data (4.6.3). */
        rlen = tls_rec_seal(&r->wr, TLS_REC_HANDSHAKE, key_update,
                            sizeof(key_update), w);
        if (rlen == 0 || tls_rec_key_update(&r->wr,
                             (enum tls_rec_suite)r->suite, 1) != MQ_OK
            || tls_rec_hold(r, w, rlen, 0) != MQ_OK) {
            errno = ENOMEM;
            return -1;
        }
        r->ku_owed = 0;
        if (tls_rec_flush(r) == -1) {
            return -1;
        }
    }
    n = MQ_MIN(len, (size_t)TLS_REC_PLAIN_MAX);
    rlen = tls_rec_seal(&r->wr, TLS_REC_APPDATA, buf, n, w);
    if (rlen == 0) {
        errno = EPROTO;
        return -1;
    }
    do {
        sent = send(r->fd, w, rlen, MSG_NOSIGNAL);
    } while (sent == -1 && errno == EINTR);
    if (sent == (ssize_t)rlen) {
        return (ssize_t)n;
    }
    if (sent == -1 && errno != EAGAIN && errno != EWOULDBLOCK) {
        return -1;
    }
    /* The record is sealed (its sequence number used): it goes out as
     * is, on the call that retries these bytes. */
    sent = MQ_MAX(sent, 0);
    if (tls_rec_hold(r, w + sent, rlen - (size_t)sent, n) != MQ_OK) {
        errno = ENOMEM;
        return -1;
    }
    errno = EAGAIN;
    return -1;
}

void
tls_rec_shutdown(struct tls_rec *r, int fd)
{
    static const uint8_t close_notify[2] = { 1, TLS_REC_CLOSE_NOTIFY };
    size_t rlen;

    /* One try, as for OpenSSL's: the FIN alone still ends the stream. */
    if (r->tx_len == 0) {
        rlen = tls_rec_seal(&r->wr, TLS_REC_ALERT, close_notify,
                            sizeof(close_notify), tls_rec_scratch);
        if (rlen > 0) {
            (void)!send(fd, tls_rec_scratch, rlen,
                        MSG_NOSIGNAL | MSG_DONTWAIT);
        }
    }
    shutdown(fd, SHUT_WR);
}

size_t
tls_rec_pending(const struct tls_rec *r)
{
    if (r->plain_len > 0) {
        return r->plain_len;
    }
    /* An end or an error not yet returned, or a whole record: the socket
     * may say nothing more, so the caller must ask again. */
    if ((r->eof && !r->eof_told) || r->failed != 0) {
        return 1;
    }
    return r->rx != NULL && tls_rec_whole(r->rx + r->rx_off, r->rx_len) != 0
           ? 1 : 0;
}
