/*
 * fuzz_heartbeat.c: a client stream into the keepalive reader, whole and
 * cut into pieces at positions taken from the input itself, each piece in
 * a buffer of exactly its length (ASan sees any read past it). The answer
 * (result, protocol, interval) must not depend on where the cuts fall.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/heartbeat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feed <p> in pieces of the sizes <step> cycles through (0 = whole). */
static void
fuzz_feed(struct heartbeat_reader *r, const uint8_t *p, size_t n,
          const uint8_t *steps, size_t nsteps)
{
    enum heartbeat_result res = HEARTBEAT_MORE, again;
    size_t off = 0, len, k = 0;
    uint8_t *piece;

    heartbeat_init(r);
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
        again = heartbeat_feed(r, piece, len);
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
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct heartbeat_reader whole, cut, bytes;
    static const uint8_t one = 0;
    size_t nsteps;

    if (size == 0) {
        return 0;
    }
    /* The first byte says how many of the next bytes are piece sizes. */
    nsteps = data[0] % 8;
    if (nsteps + 1 > size) {
        nsteps = size - 1;
    }
    fuzz_feed(&whole, data + 1 + nsteps, size - 1 - nsteps, NULL, 0);
    fuzz_feed(&cut, data + 1 + nsteps, size - 1 - nsteps, data + 1, nsteps);
    fuzz_feed(&bytes, data + 1 + nsteps, size - 1 - nsteps, &one, 1);
    if (whole.result != cut.result || whole.result != bytes.result ||
        whole.proto != cut.proto || whole.proto != bytes.proto) {
        abort();
    }
    if (whole.result == HEARTBEAT_FOUND &&
        (whole.interval_s != cut.interval_s ||
         whole.interval_s != bytes.interval_s ||
         heartbeat_timeout_ms(&whole) != heartbeat_timeout_ms(&cut))) {
        abort();
    }
    return 0;
}
