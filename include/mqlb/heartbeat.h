/*
 * heartbeat.h: the keepalive a client announces, read passively from the
 * bytes it sends to its broker, for idle_timeout = auto: MQTT's keep
 * alive in CONNECT (3.1, 3.1.1, 5) and AMQP 0-9-1's heartbeat in the
 * client's Connection.Tune-Ok; and, after an MQTT 5 CONNECT, the
 * broker's Server Keep Alive in its CONNACK, which the client must use
 * instead of its own. The reader is fed a stream in pieces split
 * anywhere; it keeps a few bytes of state and never holds, alters or
 * consumes a byte of the stream.
 */
#ifndef MQLB_HEARTBEAT_H
#define MQLB_HEARTBEAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* AMQP frames read before the reader gives up looking for Tune-Ok. */
#define HEARTBEAT_AMQP_MAX_FRAMES   16
/* MQTT 5 AUTH packets (enhanced authentication) read before the reader
 * gives up looking for CONNACK. */
#define HEARTBEAT_MQTT_MAX_AUTH     16

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
    uint64_t        skip;           /* AMQP: bytes of a frame to pass over;
                                       CONNACK: of an AUTH packet or a
                                       property's string */
    unsigned        nframes;        /* AMQP frames, or MQTT AUTH packets,
                                       seen */
    uint32_t        interval_s;     /* keep alive / heartbeat, once FOUND */
    uint32_t        props;          /* CONNACK: property bytes left */
    uint8_t         level;          /* MQTT: protocol level of the CONNECT
                                       (3: 3.1, 4: 3.1.1, 5: 5) */
    uint8_t         packet;         /* CONNACK: the packet's first byte */
    uint8_t         prop;           /* CONNACK: the property being read */
    uint8_t         nstr;           /* CONNACK: its strings still to pass */
    uint16_t        server_s;       /* CONNACK: Server Keep Alive, once
                                       <has_server> */
    unsigned        has_server:1;   /* CONNACK: Server Keep Alive read */
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

/*
 * After FOUND on a client's stream: true when its broker's answer may
 * still change the keepalive, i.e. the CONNECT was MQTT 5 (level 5),
 * whose CONNACK may carry a Server Keep Alive.
 */
bool heartbeat_connack_wanted(const struct heartbeat_reader *r);

/*
 * Ready <r>, FOUND on an MQTT 5 CONNECT, for the broker's stream: it keeps
 * the client's keep alive and reads MORE again.
 */
void heartbeat_connack_init(struct heartbeat_reader *r);

/*
 * Look at the next <n> bytes <p> the broker sent after an MQTT 5 CONNECT:
 * AUTH packets (enhanced authentication, passed over), then CONNACK,
 * whose properties are passed over by their types. FOUND when the
 * CONNACK accepts the client and carries a Server Keep Alive:
 * <interval_s> is now the broker's value and heartbeat_timeout_ms()
 * follows it. NONE when it carries none, refuses the client, or the bytes
 * are anything else or malformed: the client's keep alive stands. MORE
 * until then; sticky afterwards, as heartbeat_feed().
 */
enum heartbeat_result heartbeat_connack_feed(struct heartbeat_reader *r,
                                             const uint8_t *p, size_t n);

#endif /* MQLB_HEARTBEAT_H */
