/*
 * fuzz_tls_rec.c: a peer's byte stream into the TLS 1.3 record layer.
 * The input is a script for the peer: records sealed with the right key
 * (any content type, any content: handshake fragments, alerts, padding),
 * KeyUpdates that move the peer's key on, and raw bytes (forged or cut
 * records). The stream goes through a socketpair with the peer's FIN
 * after it, and is read back in reads of sizes the input also chooses.
 *
 * What must hold: no crash or overread (ASan); while the peer sent only
 * application data and KeyUpdates, exactly its bytes come out, in order,
 * up to the 33rd record in a row without content (there the reader gives
 * up); the reading ends (0 or an error), never waits with the whole
 * stream already in the socket.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mqlb/common.h"
#include "mqlb/relay.h"
#include "mqlb/tls_rec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WIRE_MAX 65536

static uint8_t wire[WIRE_MAX + TLS_REC_MAX];
static uint8_t expect[WIRE_MAX], got[WIRE_MAX + TLS_REC_MAX];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t secret[TLS_REC_SECRET_MAX] = { 7, 7, 7 };
    const uint8_t *p = data, *end = data + size;
    struct tls_rec_key peer = { 0 };
    struct tls_rec *r;
    size_t nwire = 0, nexpect = 0, ngot = 0, n, chunk;
    int fd[2], exact = 1, frozen = 0, empty = 0, want, i;
    int bufsize = (int)sizeof(wire);
    enum tls_rec_suite suite;
    uint8_t ku[5] = { 24, 0, 0, 1, 0 };
    ssize_t k;

    if (size < 1) {
        return 0;
    }
    suite = (enum tls_rec_suite)(1 + *p++ % 3);
    if (tls_rec_key_init(&peer, suite, secret, 0, 1) != MQ_OK) {
        abort();
    }
    while (p < end && nwire < WIRE_MAX) {
        uint8_t op = *p++;

        n = p < end ? *p++ : 0;
        n = MQ_MIN(n * ((op >> 4) + 1), (size_t)(end - p));
        switch (op & 3) {
        case 0:                 /* application data */
            nwire += tls_rec_seal(&peer, TLS_REC_APPDATA, p, n,
                                  wire + nwire);
            /* past 32 records in a row without content the reader
             * gives up: nothing after them comes out */
            empty = n > 0 ? 0 : empty + 1;
            frozen |= empty > 32;
            if (exact && !frozen) {
                memcpy(expect + nexpect, p, n);
                nexpect += n;
            }
            break;
        case 1:                 /* a record of the type its first byte says */
            if (n == 0) {
                break;
            }
            nwire += tls_rec_seal(&peer, p[0], p + 1, n - 1, wire + nwire);
            exact = 0;
            break;
        case 2:                 /* a KeyUpdate, the peer's key moves on */
            ku[4] = (uint8_t)(op >> 7);
            nwire += tls_rec_seal(&peer, TLS_REC_HANDSHAKE, ku, sizeof(ku),
                                  wire + nwire);
            if (tls_rec_key_update(&peer, suite, 1) != MQ_OK) {
                abort();
            }
            frozen |= ++empty > 32;
            n = 0;
            break;
        default:                /* raw bytes */
            memcpy(wire + nwire, p, n);
            nwire += n;
            exact = 0;
            break;
        }
        p += n;
    }
    tls_rec_key_clear(&peer);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd) != 0) {
        return 0;
    }
    setsockopt(fd[1], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
    setsockopt(fd[0], SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
    if (write(fd[1], wire, nwire) != (ssize_t)nwire) {
        close(fd[0]);
        close(fd[1]);
        return 0;           /* the socket took less: not this input's fault */
    }
    shutdown(fd[1], SHUT_WR);
    r = tls_rec_new(fd[0], suite, secret, 0, secret, 0, 0);
    if (r == NULL) {
        abort();
    }
    for (i = 0; i < 100000; i++) {
        chunk = 1 + (size > 1 ? data[1 + (size_t)i % (size - 1)] : 0) * 67;
        k = tls_rec_recv(r, got + ngot, MQ_MIN(chunk, sizeof(got) - ngot),
                         &want);
        if (k > 0) {
            ngot += (size_t)k;
            if (ngot >= nwire) {
                abort();    /* more content than the wire carried */
            }
            continue;
        }
        if (k == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            abort();        /* everything was there, and the end too */
        }
        break;
    }
    if (i == 100000) {
        abort();
    }
    if (exact && (ngot != nexpect || memcmp(got, expect, ngot) != 0)) {
        abort();
    }
    tls_rec_free(r);
    close(fd[0]);
    close(fd[1]);
    return 0;
}
