#!/usr/bin/env python3
"""Redis client storm for the fleet benchmark (scripts/bench_fleet.sh).

    storm.py HOST PORT N [--concurrency C] [--timeout S] [--hold S]
             [--ready FILE] [--sample HOST:PORT,...] [--sample-out FILE]

Opens N connections (at most C connecting at a time; default all at once),
each sends PING and waits for +PONG. Source addresses rotate over
127.0.0.1, 127.0.0.2, ... every 20,000 connections so that the client side
does not run out of ports. Everything is bounded by --timeout (seconds).

Prints one JSON line: ok, errors (by kind), seconds until the last PONG
(t_all), p50/p99 of the per-client time to PONG. With --hold, the
connections stay open that many seconds after the last PONG (the JSON is
written to --ready as soon as they are all up, then the tool sleeps), so
that the caller can measure the proxy while they are idle.

--sample: a separate process polls `INFO stats` of each given redis every
100 ms for total_connections_received and reports the peak new-connection
rate each one saw (per second, over each 100 ms step, and over 1 s) while
the storm ran.
"""
import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import sys
import time

PER_SOURCE = 20000
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def info_conns(sock_file):
    sock, f = sock_file
    sock.sendall(b"INFO stats\r\n")
    hdr = f.readline()
    if not hdr.startswith(b"$"):
        raise OSError("bad INFO reply")
    body = f.read(int(hdr[1:]) + 2)
    for line in body.split(b"\r\n"):
        if line.startswith(b"total_connections_received:"):
            return int(line.split(b":")[1])
    raise OSError("no total_connections_received")


def sampler(addrs, out, stop_evt, deadline):
    conns = []
    for a in addrs:
        h, p = a.rsplit(":", 1)
        s = socket.create_connection((h, int(p)), timeout=5)
        conns.append((s, s.makefile("rb")))
    samples = []          # (t, [counts])
    while not stop_evt.is_set() and time.monotonic() < deadline:
        t = time.monotonic()
        samples.append((t, [info_conns(c) for c in conns]))
        time.sleep(max(0.0, 0.1 - (time.monotonic() - t)))
    t = time.monotonic()
    samples.append((t, [info_conns(c) for c in conns]))
    peaks = [0.0] * len(addrs)
    for (t0, c0), (t1, c1) in zip(samples, samples[1:]):
        dt = t1 - t0
        if dt <= 0:
            continue
        for i in range(len(addrs)):
            peaks[i] = max(peaks[i], (c1[i] - c0[i]) / dt)
    # the same over one second: the first sample at least 1 s later
    peaks1 = [0.0] * len(addrs)
    j = 0
    for t0, c0 in samples:
        while j < len(samples) and samples[j][0] - t0 < 1.0:
            j += 1
        if j == len(samples):
            break
        t1, c1 = samples[j]
        for i in range(len(addrs)):
            peaks1[i] = max(peaks1[i], (c1[i] - c0[i]) / (t1 - t0))
    total = [samples[-1][1][i] - samples[0][1][i] for i in range(len(addrs))]
    with open(out + ".tmp", "w") as f:
        json.dump({"peak_rate": [round(x) for x in peaks],
                   "peak_rate_1s": [round(x) for x in peaks1], "new": total,
                   "samples": len(samples)}, f)
    os.rename(out + ".tmp", out)


async def connect(host, port, src):
    """A connection from address <src>; the port is chosen at connect()
    (IP_BIND_ADDRESS_NO_PORT), so ports are shared across destinations."""
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((src, 0))
        s.setblocking(False)
        await asyncio.get_running_loop().sock_connect(s, (host, port))
    except BaseException:
        s.close()
        raise
    return await asyncio.open_connection(sock=s)


async def one(i, host, port, sem, t0, res, socks, deadline):
    src = "127.0.0.%d" % (1 + i // PER_SOURCE)
    async with sem:
        try:
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError()
            r, w = await asyncio.wait_for(connect(host, port, src), left)
        except asyncio.TimeoutError:
            res["errors"]["connect_timeout"] = res["errors"].get("connect_timeout", 0) + 1
            return
        except OSError as e:
            k = "connect_" + (os.strerror(e.errno).replace(" ", "_") if e.errno else "error")
            res["errors"][k] = res["errors"].get(k, 0) + 1
            return
    try:
        w.write(b"PING\r\n")
        left = deadline - time.monotonic()
        if left <= 0:
            raise asyncio.TimeoutError()
        line = await asyncio.wait_for(r.readline(), left)
        if line != b"+PONG\r\n":
            raise OSError("reply %r" % line[:20])
        res["lat"].append(time.monotonic() - t0)
        socks.append(w)
    except (OSError, asyncio.TimeoutError) as e:
        k = "ping_timeout" if isinstance(e, asyncio.TimeoutError) else "ping_failed"
        res["errors"][k] = res["errors"].get(k, 0) + 1
        w.close()


async def storm(a):
    sem = asyncio.Semaphore(a.concurrency or a.n)
    res = {"lat": [], "errors": {}}
    socks = []
    t0 = time.monotonic()
    deadline = t0 + a.timeout
    await asyncio.gather(*(one(i, a.host, a.port, sem, t0, res, socks, deadline)
                           for i in range(a.n)))
    lat = sorted(res["lat"])
    out = {
        "n": a.n, "ok": len(lat), "errors": res["errors"],
        "t_all": round(lat[-1], 3) if lat else None,
        "p50": round(lat[len(lat) // 2], 3) if lat else None,
        "p99": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3) if lat else None,
    }
    return out, socks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("--concurrency", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--hold", type=float, default=0)
    ap.add_argument("--ready")
    ap.add_argument("--sample", default="")
    ap.add_argument("--sample-out")
    a = ap.parse_args()
    if a.n < 1 or a.n > 1000000 or a.timeout <= 0 or a.timeout > 600:
        sys.exit("storm: N from 1 to 1000000, timeout up to 600 s")

    sp = None
    if a.sample:
        stop_evt = multiprocessing.Event()
        sp = multiprocessing.Process(
            target=sampler, args=(a.sample.split(","), a.sample_out, stop_evt,
                                  time.monotonic() + a.timeout + 5))
        sp.start()
        time.sleep(0.3)     # a first sample before the storm
    loop = asyncio.new_event_loop()
    out, socks = loop.run_until_complete(storm(a))
    if sp is not None:
        time.sleep(0.3)     # the last connections reach the counters
        stop_evt.set()
        sp.join(10)
        if sp.is_alive():
            sp.terminate()
    line = json.dumps(out)
    if a.ready:
        with open(a.ready + ".tmp", "w") as f:
            f.write(line + "\n")
        os.rename(a.ready + ".tmp", a.ready)
    print(line, flush=True)
    if a.hold > 0:
        time.sleep(a.hold)
    for w in socks:
        w.close()
    loop.close()


if __name__ == "__main__":
    main()
