#!/usr/bin/env python3
"""Takeover benchmark (`make bench`, or alone): how long `mqlb --takeover`
takes and how long a client waits across it.

  (g) idle: N established sessions through mqlb to redis-server, one probe
      client sending PING back to back; takeover; then every idle session
      must still answer. Reports the probe's worst request latency across
      the takeover, and the takeover's time (successor started -> old
      process gone) and the old process's own freeze-to-commit time.
  (h) busy: M sessions each sending PING back to back (pipeline 1);
      the same figures, and that no request failed.

Usage: scripts/bench_takeover.py [--idle N] [--busy M] [--workers W]
Environment: MQLB_BIN (default ./mqlb). Prints markdown rows.
"""

import argparse
import os
import re
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

MQLB = os.path.abspath(os.environ.get("MQLB_BIN", "mqlb"))
PING = b"*1\r\n$4\r\nPING\r\n"
PONG = b"+PONG\r\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("port %d never opened" % port)


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.005)
    raise RuntimeError("timed out waiting for " + what)


class Setup:
    def __init__(self, workers, maxclients):
        self.dir = tempfile.mkdtemp(prefix="mqlb-bench-takeover-")
        self.rport, self.port, self.admin = free_port(), free_port(), free_port()
        self.ctl = os.path.join(self.dir, "mqlb.sock")
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.rport), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--maxclients", str(maxclients)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.rport)
        self.conf = os.path.join(self.dir, "mqlb.ini")
        with open(self.conf, "w") as f:
            f.write("[global]\nworkers = %d\nlog_level = notice\ncontrol_socket = %s\n"
                    "[admin]\nlisten = 127.0.0.1:%d\n"
                    "[pool redis]\nlisten = 127.0.0.1:%d\nhealth_check = redis\n"
                    "backend = r1 127.0.0.1:%d\n"
                    % (workers, self.ctl, self.admin, self.port, self.rport))
        self.procs = []
        self.lb = self.start([])
        wait_for(lambda: os.path.exists(self.ctl), 10, "control socket")
        wait_port(self.port)

    def start(self, extra):
        log = open(os.path.join(self.dir, "mqlb-%d.log" % len(self.procs)), "wb")
        p = subprocess.Popen([MQLB, "-c", self.conf] + extra, stdout=log,
                             stderr=subprocess.STDOUT)
        p.logpath = log.name
        self.procs.append(p)
        return p

    def takeover(self):
        """Start a successor; returns (seconds until the old one is gone,
        the old process's own ms from freeze to commit)."""
        old = self.lb
        t0 = time.monotonic()
        self.lb = self.start(["--takeover"])
        wait_for(lambda: old.poll() is not None or self.lb.poll() is not None, 60,
                 "the old process to leave")
        took = time.monotonic() - t0
        if self.lb.poll() is not None:
            raise RuntimeError("successor died: " + open(self.lb.logpath).read())
        text = open(old.logpath).read()
        m = re.search(r"takeover: (\d+) sessions moved to pid \d+ in (\d+) ms", text)
        return took, int(m.group(2)) if m else -1, int(m.group(1)) if m else -1

    def stop(self):
        for p in self.procs + [self.redis]:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Pingers(threading.Thread):
    """<n> sessions, each with one PING in flight at a time, on one
    selector loop; records every request's latency with its end time."""

    def __init__(self, port, n):
        super().__init__(daemon=True)
        self.sel = selectors.DefaultSelector()
        self.stop_ev = threading.Event()
        self.samples = []          # (end time, latency)
        self.failed = 0
        self.socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setblocking(False)
            self.socks.append(s)
            self.sel.register(s, selectors.EVENT_READ, [b"", 0.0])

    def run(self):
        for s in self.socks:
            key = self.sel.get_key(s)
            key.data[1] = time.monotonic()
            s.send(PING)
        while not self.stop_ev.is_set():
            for key, _ in self.sel.select(0.1):
                s, st = key.fileobj, key.data
                try:
                    data = s.recv(64)
                except BlockingIOError:
                    continue
                except OSError:
                    self.failed += 1
                    self.sel.unregister(s)
                    continue
                if not data:
                    self.failed += 1
                    self.sel.unregister(s)
                    continue
                st[0] += data
                if len(st[0]) >= len(PONG):
                    now = time.monotonic()
                    if st[0] != PONG:
                        self.failed += 1
                    self.samples.append((now, now - st[1]))
                    st[0] = b""
                    st[1] = now
                    s.send(PING)

    def worst_between(self, t0, t1):
        lat = [l for (t, l) in self.samples if t0 <= t <= t1 + 0.5]
        return max(lat) if lat else float("nan"), len(lat)


def idle_case(setup, n):
    idle = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", setup.port), timeout=10)
        s.sendall(PING)
        idle.append(s)
    for s in idle:
        if s.recv(16) != PONG:
            raise RuntimeError("no PONG before")
    probe = Pingers(setup.port, 1)
    probe.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    took, freeze_ms, moved = setup.takeover()
    t1 = time.monotonic()
    time.sleep(0.5)
    probe.stop_ev.set()
    probe.join(5)
    worst, nreq = probe.worst_between(t0, t1)
    bad = 0
    for s in idle:
        s.sendall(PING)
    for s in idle:
        try:
            if s.recv(16) != PONG:
                bad += 1
        except OSError:
            bad += 1
        s.close()
    for s in probe.socks:
        s.close()
    return moved, took, freeze_ms, worst, bad + probe.failed


def busy_case(setup, n):
    p = Pingers(setup.port, n)
    p.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    took, freeze_ms, moved = setup.takeover()
    t1 = time.monotonic()
    time.sleep(0.5)
    p.stop_ev.set()
    p.join(5)
    worst, nreq = p.worst_between(t0, t1)
    steady = [l for (t, l) in p.samples if t < t0 - 0.2]
    steady.sort()
    p99 = steady[int(len(steady) * 0.99)] if steady else float("nan")
    for s in p.socks:
        s.close()
    return moved, took, freeze_ms, worst, p.failed, p99


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=int, default=9000)
    ap.add_argument("--busy", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    fit = (hard - 200) // 2
    if a.idle > fit:
        print("(idle sessions lowered from %d to %d: descriptor limit %d)"
              % (a.idle, fit, hard), file=sys.stderr)
        a.idle = fit
    setup = Setup(a.workers, a.idle + 100)
    try:
        moved, took, freeze_ms, worst, bad = idle_case(setup, a.idle)
        print("| (g) takeover, %d idle sessions: moved | %d |" % (a.idle, moved))
        print("| (g) takeover time, successor start -> old gone, ms | %.0f |" % (took * 1000))
        print("| (g) old process: freeze -> commit, ms | %d |" % freeze_ms)
        print("| (g) worst PING latency across it, ms | %.1f |" % (worst * 1000))
        print("| (g) sessions lost or failed | %d |" % bad)
    finally:
        setup.stop()
    setup = Setup(a.workers, a.busy + 100)
    try:
        moved, took, freeze_ms, worst, bad, p99 = busy_case(setup, a.busy)
        print("| (h) takeover, %d busy sessions (P1 PING loop): moved | %d |" % (a.busy, moved))
        print("| (h) takeover time, successor start -> old gone, ms | %.0f |" % (took * 1000))
        print("| (h) old process: freeze -> commit, ms | %d |" % freeze_ms)
        print("| (h) worst request latency across it, ms (steady p99 %.1f ms) | %.1f |"
              % (p99 * 1000, worst * 1000))
        print("| (h) requests failed | %d |" % bad)
    finally:
        setup.stop()


if __name__ == "__main__":
    main()
