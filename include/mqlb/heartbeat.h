/*
 * heartbeat.h: the keepalive a client announces, read passively from the
 * bytes it sends to its broker, for idle_timeout = auto: MQTT's keep
 * alive in CONNECT (3.1, 3.1.1, 5) and AMQP 0-9-1's heartbeat in the
 * client's Connection.Tune-Ok. The reader is fed the stream in pieces
 * split anywhere; it keeps a few bytes of state and never holds, alters
 * or consumes a byte of the stream.
 */
#ifndef MQLB_HEARTBEAT_H
#define MQLB_HEARTBEAT_H

#include <stddef.h>
#include <stdint.h>

/* AMQP frames read before the reader gives up looking for Tune-Ok. */
#define HEARTBEAT_AMQP_MAX_FRAMES   16

enum heartbeat_proto {
    HEARTBEAT_UNKNOWN = 0,      /* not decided yet, or neither */
    HEARTBEAT_MQTT,
    HEARTBEAT_AMQP,
};

enum heartbeat_result {
    HEARTBEAT_MORE = 0,         /* feed more bytes */
    HEARTBEAT_FOUND,            /* <interval_s> is known */
    HEARTBEAT_NONE,             /* the stream will not say: stop feeding */
};

/* The reader's state; zeroed by heartbeat_init(). */
struct heartbeat_reader {
    enum heartbeat_proto proto;     /* set once the first bytes tell */
    enum heartbeat_result result;   /* sticky once not MORE */
    unsigned        step;           /* position in the protocol's grammar */
    uint8_t         acc[16];        /* a fixed-size piece being collected */
    unsigned        nacc;           /* bytes in <acc> */
    uint32_t        remaining;      /* MQTT remaining length; AMQP frame
                                       payload size */
    unsigned        shift;          /* MQTT: varint bit position */
    uint64_t        skip;           /* AMQP: bytes of a frame to pass over */
    unsigned        nframes;        /* AMQP: frames seen */
    uint32_t        interval_s;     /* keep alive / heartbeat, once FOUND */
};

void heartbeat_init(struct heartbeat_reader *r);

/*
 * Look at the next <n> bytes <p> the client sent. Returns MORE until the
 * keepalive is known (FOUND) or cannot be (NONE); after that it returns
 * the same answer and reads nothing.
 */
enum heartbeat_result heartbeat_feed(struct heartbeat_reader *r,
                                     const uint8_t *p, size_t n);

/*
 * The idle timeout the protocol implies, in ms, once FOUND: MQTT 1.5 x
 * keep alive + 1 s, AMQP 2 x heartbeat + 1 s; 0 (never) when the client
 * asked for no keepalive.
 */
uint64_t heartbeat_timeout_ms(const struct heartbeat_reader *r);

const char *heartbeat_proto_name(enum heartbeat_proto proto);

#endif /* MQLB_HEARTBEAT_H */
