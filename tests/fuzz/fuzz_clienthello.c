/*
 * fuzz_clienthello.c: the first bytes of a passthrough connection into
 * tls_hello_parse(), whole and as every prefix a worker could have
 * buffered, each in a buffer of exactly its length so that ASan sees any
 * read past it; and what it found into tls_hello_sni_match().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/tls_hello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
fuzz_one(const uint8_t *data, size_t len)
{
    struct tls_hello h;
    uint8_t *buf;
    int rc;

    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        return TLS_HELLO_BAD;
    }
    memcpy(buf, data, len);
    rc = tls_hello_parse(buf, len, &h);
    if (rc == TLS_HELLO_OK) {
        /* What it points at lies inside the record it read. */
        if (h.len > len || h.len < 9
            || (h.sni != NULL && (h.sni < buf || h.snilen == 0
                                  || h.snilen > TLS_HELLO_NAME_MAX
                                  || (size_t)(h.sni - buf) + h.snilen
                                     > h.len))
            || (h.alpn != NULL && (h.alpn < buf || h.alpnlen == 0
                                   || (size_t)(h.alpn - buf) + h.alpnlen
                                      > h.len)))
        {
            abort();
        }
        (void)tls_hello_sni_match("*.example.com", h.sni, h.snilen);
        (void)tls_hello_sni_match("a.test", h.sni, h.snilen);
    } else if (rc != TLS_HELLO_MORE && rc != TLS_HELLO_BAD) {
        abort();
    }
    if (rc == TLS_HELLO_MORE && len >= TLS_HELLO_MAX) {
        abort();        /* by then the answer is OK or BAD */
    }
    free(buf);
    return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len;
    int whole, rc;

    whole = fuzz_one(data, size);
    /* Once a prefix answers OK or BAD, every longer one agrees. */
    for (len = 0; len < size; len++) {
        rc = fuzz_one(data, len);
        if (rc != TLS_HELLO_MORE) {
            if (rc != whole) {
                abort();
            }
            break;
        }
    }
    return 0;
}
