#!/usr/bin/env python3
"""A small epoll echo server, run as its own process so tests can kill -9
it and so the GIL of the test process is not the bottleneck at 10k+
sockets. Standard library only.

    echo_server.py --port N [--mode echo|flood] [--stats FILE] [--greet]

echo:  every byte read is written back; a full peer stops our reading
       (backpressure, at most 256 KiB queued per connection); on the
       client's FIN, the rest is flushed and the write side shut.
flood: every connection is sent zero-filled blocks as fast as the peer
       takes them; input is read and dropped.

--greet: each connection first gets the line "echo PORT\n", so a client
behind a load balancer learns which backend it reached (the soak test).
--stats FILE: every 200 ms, FILE is rewritten with one JSON object
{"conns": open connections, "accepted": total, "sent": bytes written,
"received": bytes read}. SIGTERM stops it.
"""

import argparse
import errno
import json
import os
import resource
import select
import signal
import socket
import time

QUEUE_MAX = 256 * 1024
FLOOD_BLOCK = b"\0" * 65536


class Conn:
    __slots__ = ("sock", "out", "eof", "want")

    def __init__(self, sock):
        self.sock = sock
        self.out = bytearray()
        self.eof = False
        self.want = 0


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--mode", choices=("echo", "flood"), default="echo")
    ap.add_argument("--stats")
    ap.add_argument("--greet", action="store_true")
    args = ap.parse_args()
    raise_nofile()

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((args.host, args.port))
    ls.listen(4096)
    ls.setblocking(False)
    ep = select.epoll()
    ep.register(ls.fileno(), select.EPOLLIN)
    conns = {}
    stats = {"conns": 0, "accepted": 0, "sent": 0, "received": 0}
    flood = args.mode == "flood"
    next_stats = 0.0

    def set_mask(c):
        want = 0
        if not c.eof and (flood or len(c.out) < QUEUE_MAX):
            want |= select.EPOLLIN
        if c.out or (flood and not c.eof):
            want |= select.EPOLLOUT
        if want != c.want:
            ep.modify(c.sock.fileno(), want)
            c.want = want

    def close(c):
        fd = c.sock.fileno()
        ep.unregister(fd)
        del conns[fd]
        c.sock.close()

    def write_stats():
        if args.stats:
            stats["conns"] = len(conns)
            tmp = args.stats + ".tmp"
            with open(tmp, "w") as f:
                json.dump(stats, f)
            os.replace(tmp, args.stats)

    while not stopping:
        now = time.monotonic()
        if now >= next_stats:
            write_stats()
            next_stats = now + 0.2
        try:
            events = ep.poll(0.2, 1024)
        except InterruptedError:
            continue
        for fd, ev in events:
            if fd == ls.fileno():
                for _ in range(256):
                    try:
                        s, _addr = ls.accept()
                    except BlockingIOError:
                        break
                    except OSError as e:
                        if e.errno in (errno.EMFILE, errno.ENFILE):
                            break
                        raise
                    s.setblocking(False)
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    c = Conn(s)
                    conns[s.fileno()] = c
                    if args.greet:
                        c.out += b"echo %d\n" % args.port
                    c.want = select.EPOLLIN | (select.EPOLLOUT if flood or c.out else 0)
                    ep.register(s.fileno(), c.want)
                    stats["accepted"] += 1
                continue
            c = conns.get(fd)
            if c is None:
                continue
            try:
                if ev & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR) and not c.eof:
                    data = c.sock.recv(65536)
                    if not data:
                        c.eof = True
                    else:
                        stats["received"] += len(data)
                        if not flood:
                            c.out += data
                if flood and not c.eof:
                    n = c.sock.send(FLOOD_BLOCK)
                    stats["sent"] += n
                elif c.out:
                    n = c.sock.send(c.out)
                    stats["sent"] += n
                    del c.out[:n]
                if c.eof and not c.out:
                    try:
                        c.sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    close(c)
                    continue
                set_mask(c)
            except (BlockingIOError, InterruptedError):
                set_mask(c)
            except OSError:
                close(c)
    write_stats()


if __name__ == "__main__":
    main()
