#!/usr/bin/env python3
"""kafka_mock.py: a tiny Kafka stand-in for mqlb's `kafka` health check.

Kafka has no Debian package, so the integration tests cannot start a real
broker the way they start redis-server, mosquitto or nats-server. This
server speaks just enough of the Kafka wire protocol
(https://kafka.apache.org/protocol) to stand in for one: it answers
ApiVersions (api_key 18) requests, versions 0 to 3, with a well-formed
response that echoes the correlation id, and closes any connection that
sends something else.

    python3 tests/support/kafka_mock.py PORT [--error N] [--host ADDR]

--error N makes every ApiVersions response carry error code N (35 is
UNSUPPORTED_VERSION). A request for a version above 3 gets error 35 in the
version 0 layout, as a real broker does. Standard library only.
"""

import argparse
import signal
import socket
import socketserver
import struct
import sys

API_VERSIONS = 18
UNSUPPORTED_VERSION = 35
MAX_FRAME = 1 << 20         # larger requests are garbage
MAX_VERSION = 3

# (api_key, min_version, max_version): a few keys a 3.x broker advertises.
API_KEYS = (
    (0, 0, 9),      # Produce
    (1, 0, 13),     # Fetch
    (2, 0, 7),      # ListOffsets
    (3, 0, 12),     # Metadata
    (18, 0, 3),     # ApiVersions
)


def uvarint(n):
    """Unsigned varint, as compact arrays and tagged fields use."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def api_versions_body(version, error):
    """The ApiVersions response body for <version> with <error>."""
    if version >= 3:
        # Flexible version: compact array (N + 1), tagged fields per entry.
        body = struct.pack(">h", error) + uvarint(len(API_KEYS) + 1)
        for key, lo, hi in API_KEYS:
            body += struct.pack(">hhh", key, lo, hi) + uvarint(0)
        return body + struct.pack(">i", 0) + uvarint(0)
    body = struct.pack(">hi", error, len(API_KEYS))
    for key, lo, hi in API_KEYS:
        body += struct.pack(">hhh", key, lo, hi)
    if version >= 1:
        body += struct.pack(">i", 0)    # throttle_time_ms
    return body


def recv_exact(sock, n):
    """<n> bytes from <sock>, or None if the peer closed first."""
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


class Handler(socketserver.BaseRequestHandler):
    """One connection: answer ApiVersions requests until garbage or EOF."""

    def handle(self):
        sock = self.request
        sock.settimeout(30)
        try:
            while self.one_request(sock):
                pass
        except (OSError, struct.error):
            pass

    def one_request(self, sock):
        head = recv_exact(sock, 4)
        if head is None:
            return False
        (size,) = struct.unpack(">i", head)
        if size < 8 or size > MAX_FRAME:
            return False
        frame = recv_exact(sock, size)
        if frame is None:
            return False
        api_key, version, corr = struct.unpack(">hhi", frame[:8])
        if api_key != API_VERSIONS or version < 0:
            return False
        error = self.server.error
        if version > MAX_VERSION:
            error, version = UNSUPPORTED_VERSION, 0
        # ApiVersions responses always use response header v0: no tags.
        reply = struct.pack(">i", corr) + api_versions_body(version, error)
        sock.sendall(struct.pack(">i", len(reply)) + reply)
        return True


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    error = 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--error", type=int, default=0,
                    help="error code for every ApiVersions response")
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()

    server = Server((args.host, args.port), Handler)
    server.error = args.error
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
