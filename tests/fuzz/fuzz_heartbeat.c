/*
 * fuzz_heartbeat.c: a stream into the keepalive readers, whole and cut
 * into pieces at positions taken from the input itself, each piece in a
 * buffer of exactly its length (ASan sees any read past it): as a
 * client's stream (heartbeat_feed), and as a broker's answer to an MQTT 5
 * CONNECT (heartbeat_connack_feed). The answer (result, protocol,
 * interval) must not depend on where the cuts fall, and a CONNACK that
 * gives no Server Keep Alive must leave the client's keep alive.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/heartbeat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* MQTT 5 CONNECT, keep alive 30 s, client id "f": what the broker's
 * stream answers. */
static const uint8_t fuzz_connect5[] = {
    0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x1e,
    0x00, 0x00, 0x01, 'f',
};

/* A fresh reader for the client's stream, or for the broker's. */
static void
fuzz_start(struct heartbeat_reader *r, int broker)
{
    heartbeat_init(r);
    if (!broker) {
        return;
    }
    if (heartbeat_feed(r, fuzz_connect5, sizeof(fuzz_connect5))
        != HEARTBEAT_FOUND || !heartbeat_connack_wanted(r)) {
        abort();
    }
    heartbeat_connack_init(r);
}

/* Feed <p> in pieces of the sizes <step> cycles through (0 = whole). */
static void
fuzz_feed(struct heartbeat_reader *r, int broker, const uint8_t *p, size_t n,
          const uint8_t *steps, size_t nsteps)
{
    enum heartbeat_result res = HEARTBEAT_MORE, again;
    size_t off = 0, len, k = 0;
    uint8_t *piece;

    fuzz_start(r, broker);
    while (off < n) {
        len = nsteps == 0 ? n - off : (size_t)steps[k++ % nsteps] + 1;
        if (len > n - off) {
            len = n - off;
        }
        piece = malloc(len);
        if (piece == NULL) {
            abort();
        }
        memcpy(piece, p + off, len);
        again = broker ? heartbeat_connack_feed(r, piece, len)
                       : heartbeat_feed(r, piece, len);
        free(piece);
        /* Once decided, the answer never changes. */
        if (res != HEARTBEAT_MORE && again != res) {
            abort();
        }
        res = again;
        off += len;
    }
    if (res == HEARTBEAT_FOUND && r->proto == HEARTBEAT_UNKNOWN) {
        abort();
    }
    if (broker && res != HEARTBEAT_FOUND && r->interval_s != 30) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct heartbeat_reader whole, cut, bytes;
    static const uint8_t one = 0;
    size_t nsteps;
    int broker;

    if (size == 0) {
        return 0;
    }
    /* The first byte says how many of the next bytes are piece sizes. */
    nsteps = data[0] % 8;
    if (nsteps + 1 > size) {
        nsteps = size - 1;
    }
    for (broker = 0; broker <= 1; broker++) {
        fuzz_feed(&whole, broker, data + 1 + nsteps, size - 1 - nsteps,
                  NULL, 0);
        fuzz_feed(&cut, broker, data + 1 + nsteps, size - 1 - nsteps,
                  data + 1, nsteps);
        fuzz_feed(&bytes, broker, data + 1 + nsteps, size - 1 - nsteps,
                  &one, 1);
        if (whole.result != cut.result || whole.result != bytes.result ||
            whole.proto != cut.proto || whole.proto != bytes.proto) {
            abort();
        }
        if ((whole.result == HEARTBEAT_FOUND || broker) &&
            (whole.interval_s != cut.interval_s ||
             whole.interval_s != bytes.interval_s ||
             heartbeat_timeout_ms(&whole) != heartbeat_timeout_ms(&cut))) {
            abort();
        }
    }
    return 0;
}
