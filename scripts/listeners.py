#!/usr/bin/env python3
"""K listening sockets for the check-cost benchmark (scripts/bench_fleet.sh).

    listeners.py K PORTFILE COUNTFILE LIFETIME

Binds K sockets on 127.0.0.1 (ports from the kernel), writes their ports
to PORTFILE (one a line), then accepts and closes every connection (a TCP
health check only connects) for at most LIFETIME seconds. The number of
connections accepted so far is written to COUNTFILE twice a second.
"""
import os
import selectors
import socket
import sys
import time


def main():
    k, portfile, countfile, lifetime = (int(sys.argv[1]), sys.argv[2],
                                        sys.argv[3], float(sys.argv[4]))
    if not 1 <= k <= 20000:
        sys.exit("listeners: K from 1 to 20000")
    sel = selectors.DefaultSelector()
    ports = []
    for _ in range(k):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        ports.append(s.getsockname()[1])
    with open(portfile + ".tmp", "w") as f:
        f.write("\n".join(map(str, ports)) + "\n")
    os.rename(portfile + ".tmp", portfile)
    n = 0
    end = time.monotonic() + lifetime
    next_write = 0.0
    while time.monotonic() < end:
        for key, _ in sel.select(0.5):
            while True:
                try:
                    c, _ = key.fileobj.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                c.close()
                n += 1
        now = time.monotonic()
        if now >= next_write:
            with open(countfile + ".tmp", "w") as f:
                f.write("%d\n" % n)
            os.rename(countfile + ".tmp", countfile)
            next_write = now + 0.5


if __name__ == "__main__":
    main()
