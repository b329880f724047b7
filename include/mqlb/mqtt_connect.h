/*
 * mqtt_connect.h: find the client identifier in the first packet of an
 * MQTT connection (a CONNECT, MQTT 3.1, 3.1.1 or 5) without consuming it,
 * for the mqtt-client-id balancing policy.
 */
#ifndef MQLB_MQTT_CONNECT_H
#define MQLB_MQTT_CONNECT_H

#include <stddef.h>
#include <stdint.h>

/*
 * The most bytes the parser ever needs to see: fixed header, variable
 * header with up to 4 KiB of MQTT 5 properties, and the longest client
 * identifier. A caller that has buffered this many bytes always gets OK
 * or BAD, never MORE.
 */
#define MQTT_CONNECT_MAX    (5 + 10 + 4 + 4096 + 2 + 65535)

enum mqtt_connect_result {
    MQTT_CONNECT_OK = 0,        /* client identifier found */
    MQTT_CONNECT_MORE,          /* a prefix of a CONNECT: read more */
    MQTT_CONNECT_BAD,           /* not a CONNECT, malformed or too large */
};

/*
 * Parse the first <len> bytes a client sent, <buf>. On MQTT_CONNECT_OK,
 * <*id> points into <buf> at the client identifier and <*idlen> is its
 * length (0 for an empty identifier; the broker then assigns one). Only
 * the bytes up to the end of the client identifier are needed: the will,
 * user name and password that may follow are not read.
 */
int mqtt_connect_client_id(const uint8_t *buf, size_t len,
                           const uint8_t **id, size_t *idlen);

#endif /* MQLB_MQTT_CONNECT_H */
