/*
 * fuzz_mqtt_connect.c: the first bytes of a client connection into
 * mqtt_connect_client_id(), whole and as every prefix a worker could have
 * buffered, each prefix in a buffer of exactly its length so that ASan
 * sees any read past it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqlb/mqtt_connect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
fuzz_one(const uint8_t *data, size_t len)
{
    const uint8_t *id = NULL;
    size_t idlen = 0;
    uint8_t *buf;
    int rc;

    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        return MQTT_CONNECT_BAD;
    }
    memcpy(buf, data, len);
    rc = mqtt_connect_client_id(buf, len, &id, &idlen);
    if (rc == MQTT_CONNECT_OK) {
        /* The identifier lies inside what was received. */
        if (id == NULL || id < buf || idlen > len
            || (size_t)(id - buf) > len - idlen) {
            abort();
        }
    } else if (rc != MQTT_CONNECT_MORE && rc != MQTT_CONNECT_BAD) {
        abort();
    }
    if (rc == MQTT_CONNECT_MORE && len >= MQTT_CONNECT_MAX) {
        abort();        /* the header promises OK or BAD by then */
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
    /*
     * A prefix may only say MORE or give the same answer as more bytes:
     * once a prefix is OK or BAD, every longer one must agree.
     */
    for (len = 0; len < size; len++) {
        rc = fuzz_one(data, len);
        if (rc != MQTT_CONNECT_MORE) {
            if (rc != whole) {
                abort();
            }
            break;
        }
    }
    return 0;
}
