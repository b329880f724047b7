#!/usr/bin/env python3
"""Chaos soak for mqlb (issue 8), started by scripts/soak.sh.

Three real redis-server backends and three checksummed echo backends
(tests/support/echo_server.py --greet, separate processes so kill -9 is
real) behind one mqlb with two pools. Constant load:

  - redis-benchmark, a bounded -n per run, looped;
  - stream sessions that send random bytes and check the echo with sha256,
    plain and through a TLS listener of the echo pool (mqlb's TLS 1.3
    record layer under the same faults);
  - redis sessions that SET and GET their own keys and check every value;
  - loops of short connects to both pools.

Random faults, one at a time, their kinds dealt from a shuffled deck (so a
short run meets each): kill -9 and restart of a redis or an echo
backend, SIGHUP reloads of a rewritten config (a changed weight), drain
and enable through the admin port, and now and then every echo backend
down at once. The hostile ones (issue 13): a burst of bad clients (HTTP
requests to the redis pool, which redis answers by closing) that must
not take a redis down; a burst of 50 SIGHUPs 2 ms apart; and a stalled
reader of mqlb's stderr (a pipe nobody reads for 3 s) that must not
stall the relay.

Asserts: mqlb never dies; a session whose backend stayed alive loses or
changes no byte (a session may fail only if its backend was killed while
it ran); every connect is served, or refused at once (under a second)
while no backend of the pool is alive; RSS after the run within 10% of
RSS after warm-up; mqlb's open descriptors back to baseline once the
load stops. Prints a summary; exits 1 on any failed assertion.

Loopback only, every wait bounded, and only its own PIDs are signalled.
"""

import argparse
import hashlib
import os
import random
import resource
import select
import shutil
import socket
import ssl
import subprocess
import tempfile
import sys
import threading
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402
from certs import CA  # noqa: E402
from harness import (Mqlb, Proc, RedisServer, free_port, nfds, redis_encode,  # noqa: E402
                     redis_read, rss_kib, wait_port, wait_until)

ECHO = os.path.join(HERE, "echo_server.py")
REFUSE_AT_ONCE_S = 1.0






class EchoBackend:
    def __init__(self):
        self.port = free_port()
        self.proc = Proc([sys.executable, ECHO, "--port", str(self.port), "--greet"],
                         "echo-%d" % self.port)
        wait_port(self.port)

    def kill9(self):
        self.proc.kill9()

    def start(self):
        self.proc.start()
        wait_port(self.port)

    def stop(self):
        self.proc.stop()


class Ledger:
    """What happened, shared by every thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.kills = []             # (port, t_killed, t_back or None)
        self.all_down = []          # [t_start, t_end or None] of echo pool
        self.faults = Counter()
        self.sessions = Counter()
        self.bytes_verified = 0
        self.ended_by_kill = 0
        self.refused_ok = 0
        self.errors = []

    def error(self, msg):
        with self.lock:
            if len(self.errors) < 200:
                self.errors.append("%.1fs %s" % (time.monotonic() - T0, msg))

    def killed_during(self, port, t0, t1):
        with self.lock:
            for p, tk, tb in self.kills:
                if p == port and tk <= t1 + 0.5 and (tb is None or tb >= t0):
                    return True
        return False

    def pool_down_during(self, t0, t1):
        with self.lock:
            for a, b in self.all_down:
                if a <= t1 and (b is None or b + 1.0 >= t0):
                    return True
        return False


T0 = time.monotonic()


class PipedProc(harness.Proc):
    """A Proc whose output goes through a pipe that a thread copies to
    the log file; pause() stops the copying (a stalled log reader)."""

    def start(self):
        self.log = open(self.logpath, "ab")
        self.reading = threading.Event()
        self.reading.set()
        self.p = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  env=self.env)
        self.pump = threading.Thread(target=self._pump, args=(self.p.stdout, self.log),
                                     daemon=True)
        self.pump.start()

    def _pump(self, src, dst):
        while True:
            self.reading.wait()
            data = os.read(src.fileno(), 65536)
            if not data:
                return
            try:
                dst.write(data)
                dst.flush()
            except ValueError:      # log closed
                return

    def stop(self, timeout=10.0):
        self.reading.set()
        super().stop(timeout)


def refused(led, pool, t0, why):
    """A connect that was not served: fine only at once while the pool
    had no live backend."""
    took = time.monotonic() - t0
    time.sleep(0.05)                # no tight loop while the pool is down
    if pool == "echo" and led.pool_down_during(t0, time.monotonic()) and took < REFUSE_AT_ONCE_S:
        with led.lock:
            led.refused_ok += 1
        return
    led.error("%s connect not served (%s) after %.2fs" % (pool, why, took))


def read_line(sock, limit=64):
    line = b""
    while not line.endswith(b"\n"):
        d = sock.recv(1)
        if not d:
            raise ConnectionError("closed before the greeting")
        line += d
        if len(line) > limit:
            raise ValueError("bad greeting %r" % line)
    return line


def echo_session(led, port, stop, rng, kind, pump, ctx=None):
    """The frame of a stream session on the echo pool: connect (through
    TLS with <ctx>), read the backend's greeting, then <pump>(s, stop,
    rng) moves and checks the bytes and returns how many it verified. A
    failure counts against mqlb unless its backend was killed meanwhile."""
    t0 = time.monotonic()
    s = bport = None
    try:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            if ctx is not None:
                s = ctx.wrap_socket(s, server_hostname="soak.test")
            s.settimeout(10)
            bport = int(read_line(s).split()[1])
        except (OSError, ValueError) as e:
            refused(led, "echo", t0, repr(e))
            return
        with led.lock:
            led.sessions[kind] += 1
        n = pump(s, stop, rng)
        with led.lock:
            led.bytes_verified += n
    except (OSError, ValueError) as e:
        if led.killed_during(bport, t0, time.monotonic()):
            with led.lock:
                led.ended_by_kill += 1
        else:
            led.error("%s via backend %s: %r" % (kind, bport, e))
    finally:
        if s is not None:
            s.close()


def echo_pump(s, stop, rng):
    """Random bytes out, every byte back, sha256 compared; the end of what
    is sent is a half-close."""
    total = rng.randint(64 << 10, 8 << 20)
    sent_h, got_h = hashlib.sha256(), hashlib.sha256()
    nsent = ngot = 0
    s.setblocking(False)
    deadline = time.monotonic() + 60
    wr_done = False
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("stream stalled at %d/%d sent, %d back" % (nsent, total, ngot))
        want_w = [s] if not wr_done else []
        r, w, _ = select.select([s], want_w, [], 1.0)
        if w and not wr_done:
            block = rng.randbytes(min(16384, total - nsent))
            n = s.send(block)
            sent_h.update(block[:n])
            nsent += n
            if nsent >= total:
                s.shutdown(socket.SHUT_WR)
                wr_done = True
        if r:
            try:
                d = s.recv(65536)
            except BlockingIOError:
                continue
            if not d:
                break
            got_h.update(d)
            ngot += len(d)
        if stop.is_set() and not wr_done:
            s.shutdown(socket.SHUT_WR)
            wr_done = True
            total = nsent
    if ngot != nsent or got_h.digest() != sent_h.digest():
        raise ValueError("echo mismatch: sent %d bytes, got %d back%s" % (
            nsent, ngot, ", different bytes" if ngot == nsent else ""))
    return nsent + ngot


def echo_stream(led, port, stop, rng):
    echo_session(led, port, stop, rng, "echo stream", echo_pump)


def tls_echo_pump(s, stop, rng):
    """echo_pump through TLS, without the half-close (Python's ssl has no
    close_notify that leaves the socket readable); a retried TLS write
    offers the same bytes."""
    total = rng.randint(64 << 10, 4 << 20)
    data = rng.randbytes(total)
    got_h = hashlib.sha256()
    nsent = ngot = 0
    s.setblocking(False)
    deadline = time.monotonic() + 60
    while ngot < nsent or nsent < total:
        if time.monotonic() > deadline:
            raise TimeoutError("TLS stream stalled at %d/%d sent, %d back" % (nsent, total, ngot))
        if s.pending() == 0:
            select.select([s], [s] if nsent < total else [], [], 1.0)
        while True:
            try:
                d = s.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            if not d:
                raise ValueError("TLS echo ended at %d of %d back" % (ngot, nsent))
            got_h.update(d)
            ngot += len(d)
        if nsent < total:
            try:
                nsent += s.send(data[nsent:nsent + 16384])
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
        if stop.is_set() and nsent < total:
            total = nsent
    if ngot != nsent or got_h.digest() != hashlib.sha256(data[:nsent]).digest():
        raise ValueError("TLS echo mismatch: sent %d bytes, got %d back%s" % (
            nsent, ngot, ", different bytes" if ngot == nsent else ""))
    return nsent + ngot


def tls_echo_stream(led, port, ctx, stop, rng):
    echo_session(led, port, stop, rng, "tls echo stream", tls_echo_pump, ctx)


def redis_session(led, port, stop, rng):
    """One session of SET/GET on its own keys; every value checked."""
    t0 = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError as e:
        refused(led, "redis", t0, repr(e))
        return
    f = s.makefile("rb")
    bport = None
    try:
        try:
            s.sendall(redis_encode("INFO", "server"))
            info = redis_read(f)
        except (OSError, ConnectionError) as e:
            refused(led, "redis", t0, repr(e))
            return
        for line in info.splitlines():
            if line.startswith("tcp_port:"):
                bport = int(line.split(":")[1])
        with led.lock:
            led.sessions["redis"] += 1
        n = 0
        for k in range(rng.randint(50, 400)):
            if stop.is_set():
                break
            key = "soak:%d:%d" % (threading.get_ident(), k)
            val = rng.randbytes(rng.randint(1, 2048)).hex()
            s.sendall(redis_encode("SET", key, val) + redis_encode("GET", key))
            r1, r2 = redis_read(f), redis_read(f)
            if r1 != "OK" or r2 != val:
                raise ValueError("redis reply mismatch at %d: %r" % (k, r1))
            n += len(val) * 2
        with led.lock:
            led.bytes_verified += n
    except (OSError, ValueError, ConnectionError) as e:
        if led.killed_during(bport, t0, time.monotonic()):
            with led.lock:
                led.ended_by_kill += 1
        else:
            led.error("redis session via backend %s: %r" % (bport, e))
    finally:
        f.close()
        s.close()


def short_connect(led, eport, rport, stop, rng):
    """A connect, one exchange, a close."""
    pool = rng.choice(("echo", "redis"))
    port = eport if pool == "echo" else rport
    t0 = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError as e:
        refused(led, pool, t0, repr(e))
        return
    bport = None
    try:
        s.settimeout(10)
        try:
            if pool == "echo":
                bport = int(read_line(s).split()[1])
            else:
                s.sendall(b"PING\r\n")
                if s.recv(16) != b"+PONG\r\n":
                    raise ConnectionError("no PONG")
        except (OSError, ValueError) as e:
            refused(led, pool, t0, repr(e))
            return
        with led.lock:
            led.sessions["short " + pool] += 1
        if pool == "echo":
            msg = rng.randbytes(32)
            s.sendall(msg)
            got = b""
            while len(got) < 32:
                d = s.recv(64)
                if not d:
                    break
                got += d
            if got != msg:
                raise ValueError("short echo mismatch")
            with led.lock:
                led.bytes_verified += 64
    except (OSError, ValueError) as e:
        if not led.killed_during(bport, t0, time.monotonic()):
            led.error("short %s via backend %s: %r" % (pool, bport, e))
    finally:
        s.close()


def loop(target, seed, stop, *args):
    """Run one kind of session again and again until the load stops; its
    random choices come from <seed>, drawn from the run's seed."""
    rng = random.Random(seed)
    while not stop.is_set():
        target(*args, stop, rng)


class Bench(threading.Thread):
    """redis-benchmark in a loop, each run bounded by -n and a timeout."""

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port, self.stop_ev = port, stop
        self.runs = self.failed = self.requests = 0
        self.p = None

    def run(self):
        while not self.stop_ev.is_set():
            self.p = subprocess.Popen(
                ["redis-benchmark", "-h", "127.0.0.1", "-p", str(self.port), "-c", "10",
                 "-n", "5000", "-t", "ping_mbulk,set,get", "-q"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                rc = self.p.wait(60)
            except subprocess.TimeoutExpired:
                self.p.kill()
                rc = self.p.wait(10)
            self.runs += 1
            if rc == 0:
                self.requests += 15000
            else:
                self.failed += 1

    def halt(self):
        p = self.p
        if p is not None and p.poll() is None:
            p.kill()


def bad_clients(port, n):
    """<n> clients in bursts of 10 that send an HTTP request (redis closes
    the connection on it): the brokers' doing is fine, the client's is
    not a broker failure."""
    def one():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                s.recv(100)
        except OSError:
            pass
    for _ in range(n // 10):
        ts = [threading.Thread(target=one, daemon=True) for _ in range(10)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(3)


def pools_text(eport, tport, cert, rport, echoes, redises, weights):
    t = ("[pool echo]\nlisten = 127.0.0.1:%d\nlisten = 127.0.0.1:%d tls\ntls_cert = %s\n"
         "health_check = tcp\ncheck_interval = 300ms\n"
         "check_timeout = 250ms\nrise = 1\nfall = 1\nretries = 2\nmax_fails = 1\n"
         "connect_timeout = 2s\n" % (eport, tport, cert))
    for i, e in enumerate(echoes):
        t += "backend = e%d 127.0.0.1:%d weight=%d\n" % (i + 1, e.port, weights["e%d" % (i + 1)])
    # replay = on: a PING or a first SET sent to a redis killed before it
    # answered is safe to send to the next one, so every connect is served
    # (the soak keeps the replay path under fire).
    t += ("[pool redis]\nlisten = 127.0.0.1:%d\nhealth_check = redis\ncheck_interval = 300ms\n"
          "check_timeout = 250ms\nrise = 1\nfall = 1\nretries = 2\nmax_fails = 1\n"
          "connect_timeout = 2s\nreplay = on\n" % rport)
    for i, r in enumerate(redises):
        t += "backend = r%d 127.0.0.1:%d weight=%d\n" % (i + 1, r.port, weights["r%d" % (i + 1)])
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--tls-streams", type=int, default=2)
    ap.add_argument("--redis-sessions", type=int, default=4)
    ap.add_argument("--short", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if not os.access(harness.MQLB_BIN, os.X_OK):
        print("soak: no mqlb binary at %s (run make)" % harness.MQLB_BIN)
        return 2

    led = Ledger()
    redises = [RedisServer() for _ in range(3)]
    echoes = [EchoBackend() for _ in range(3)]
    eport, tport, rport = free_port(), free_port(), free_port()
    certdir = tempfile.mkdtemp(prefix="mqlb-soak-")
    ca = CA(certdir)
    cert, _ = ca.issue("soak", "soak.test", dns=["soak.test"])
    tls_ctx = ssl.create_default_context(cafile=ca.cert)
    weights = {n: 1 for n in ("e1", "e2", "e3", "r1", "r2", "r3")}
    # info: a line per session, so that a stalled stderr fills its pipe
    harness.Proc = PipedProc
    try:
        lb = Mqlb(pools_text(eport, tport, cert, rport, echoes, redises, weights),
                  global_extra="log_level = info\n", workers=args.workers)
    finally:
        harness.Proc = Proc
    pid = lb.proc.pid
    wait_until(lambda: all(b["state"] == "up" for p in lb.status()["pools"]
                           for b in p["backends"]), 10, what="backends up")
    # Warm the reload path too: with certificates to load, the first
    # hundred reloads grow the heap by about 0.4 MiB (OpenSSL contexts
    # built and freed), reused after that (plain: 0.2 MiB); the RSS bound
    # below is for what keeps growing.
    for _ in range(100):
        lb.reload()
        time.sleep(0.01)
    wait_until(lambda: all(b["state"] == "up" for p in lb.status()["pools"]
                           for b in p["backends"]), 10, what="backends up after reloads")
    fd_base = nfds(pid)
    print("soak: %.0fs, seed %d, mqlb pid %d, echo :%d, redis :%d, %d fds at start"
          % (args.seconds, seed, pid, eport, rport, fd_base), flush=True)

    stop = threading.Event()
    threads = []
    for _ in range(args.streams):
        threads.append(threading.Thread(target=loop, args=(echo_stream, rng.randrange(1 << 30),
                                                         stop, led, eport),
                                        daemon=True))
    for _ in range(args.tls_streams):
        threads.append(threading.Thread(target=loop, args=(tls_echo_stream, rng.randrange(1 << 30),
                                                         stop, led, tport, tls_ctx),
                                        daemon=True))
    for _ in range(args.redis_sessions):
        threads.append(threading.Thread(target=loop, args=(redis_session, rng.randrange(1 << 30),
                                                         stop, led, rport),
                                        daemon=True))
    for _ in range(args.short):
        threads.append(threading.Thread(target=loop, args=(short_connect, rng.randrange(1 << 30),
                                                         stop, led, eport, rport),
                                        daemon=True))
    bench = Bench(rport, stop)
    threads.append(bench)
    start = time.monotonic()
    for t in threads:
        t.start()

    end = start + args.seconds
    warm_at = start + min(10.0, args.seconds / 6)
    rss_warm = None
    died = False

    def alive_or_note():
        nonlocal died
        if not lb.alive():
            died = True
        return not died

    def sleep_checked(secs):
        until = min(time.monotonic() + secs, end + 5)
        while time.monotonic() < until and alive_or_note():
            if rss_warm is None and time.monotonic() >= warm_at:
                take_warm()
            time.sleep(0.05)

    def take_warm():
        nonlocal rss_warm
        rss_warm = rss_kib(pid)
        print("soak: warm-up done, mqlb RSS %d KiB" % rss_warm, flush=True)

    def kill_and_restart(kind, b, port):
        with led.lock:
            led.kills.append([port, time.monotonic(), None])
            idx = len(led.kills) - 1
            led.faults["kill -9 " + kind] += 1
        b.kill9()
        sleep_checked(rng.uniform(0.5, 3.0))
        b.start()
        with led.lock:
            led.kills[idx][2] = time.monotonic()

    next_all_down = start + min(30.0, args.seconds / 2)
    deck = []
    # 1-3 s between faults; closer in a run under a minute, so that
    # make test's 30 s meet every kind of fault.
    gap = min(1.0, args.seconds / 60)
    while time.monotonic() < end and alive_or_note():
        sleep_checked(rng.uniform(1.0, 3.0) * gap)
        if time.monotonic() >= end or died:
            break
        if time.monotonic() >= next_all_down:
            next_all_down = time.monotonic() + 90
            with led.lock:
                led.all_down.append([time.monotonic(), None])
                t_k = time.monotonic()
                for e in echoes:
                    led.kills.append([e.port, t_k, None])
                led.faults["all echo backends down"] += 1
            for e in echoes:
                e.kill9()
            sleep_checked(3.0)
            for e in echoes:
                e.start()
            with led.lock:
                now = time.monotonic()
                led.all_down[-1][1] = now
                for k in led.kills:
                    if k[2] is None:
                        k[2] = now
            continue
        if not deck:
            # Dealt from a shuffled deck, not drawn: a short run (make
            # test's 30 s) still meets every kind.
            deck = ["kill redis", "kill echo", "reload", "drain", "bad clients",
                    "reload burst", "stalled stderr"]
            rng.shuffle(deck)
        kind = deck.pop()
        if kind == "kill redis":
            r = rng.choice(redises)
            kill_and_restart("redis", r, r.port)
        elif kind == "kill echo":
            e = rng.choice(echoes)
            kill_and_restart("echo", e, e.port)
        elif kind == "bad clients":
            t0 = time.monotonic()
            bad_clients(rport, 100)
            with led.lock:
                led.faults["bad-client burst"] += 1
            sleep_checked(0.5)
            for b in lb.status()["pools"][1]["backends"]:
                port = next(r.port for i, r in enumerate(redises)
                            if "r%d" % (i + 1) == b["name"])
                if b["state"] == "down" and not led.killed_during(port, t0 - 5,
                                                                    time.monotonic()):
                    led.error("bad clients took redis %s down: %s" % (b["name"],
                                                                      b.get("reason")))
        elif kind == "reload burst":
            name = rng.choice(sorted(weights))
            for _ in range(50):
                weights[name] = rng.randint(1, 5)
                lb.write(pools_text(eport, tport, cert, rport, echoes, redises, weights))
                lb.reload()
                time.sleep(0.002)
            with led.lock:
                led.faults["SIGHUP burst (50)"] += 1
        elif kind == "stalled stderr":
            lb.proc.reading.clear()
            sleep_checked(3.0)
            lb.proc.reading.set()
            with led.lock:
                led.faults["stalled stderr 3s"] += 1
        elif kind == "reload":
            name = rng.choice(sorted(weights))
            weights[name] = rng.randint(1, 5)
            lb.write(pools_text(eport, tport, cert, rport, echoes, redises, weights))
            lb.reload()
            with led.lock:
                led.faults["SIGHUP reload"] += 1
        else:
            pool, name = rng.choice((("echo", "e1"), ("echo", "e2"), ("echo", "e3"),
                                     ("redis", "r1"), ("redis", "r2"), ("redis", "r3")))
            code, body, _ = lb.http("POST", "/pools/%s/backends/%s/drain" % (pool, name))
            if code != 200:
                led.error("drain %s/%s: %d %s" % (pool, name, code, body))
            sleep_checked(rng.uniform(0.5, 2.0))
            code, body, _ = lb.http("POST", "/pools/%s/backends/%s/enable" % (pool, name))
            if code != 200:
                led.error("enable %s/%s: %d %s" % (pool, name, code, body))
            with led.lock:
                led.faults["drain/enable"] += 1

    # Stop the load: every loop finishes its session (bounded).
    stop.set()
    bench.halt()
    deadline = time.monotonic() + 90
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    stuck = sum(t.is_alive() for t in threads)
    if stuck:
        led.error("%d load threads did not finish" % stuck)
    duration = time.monotonic() - start

    failures = list(led.errors)
    if died or not lb.alive():
        failures.append("mqlb died (exit %s)" % lb.proc.p.poll())
    rss_end = fds_end = None
    totals = 0
    if not died and lb.alive():
        try:
            wait_until(lambda: sum(b["active"] for p in lb.status()["pools"]
                                   for b in p["backends"]) == 0, 30, 0.1, "sessions closed")
        except AssertionError as e:
            failures.append(str(e))
        totals = sum(b["total"] for p in lb.status()["pools"] for b in p["backends"])
        rss_end = rss_kib(pid)
        if rss_warm is not None and rss_end > rss_warm * 1.10:
            failures.append("RSS grew: %d KiB after warm-up, %d KiB after the run"
                            % (rss_warm, rss_end))
        try:
            wait_until(lambda: nfds(pid) <= fd_base, 15, 0.01, "descriptors back to baseline")
            fds_end = nfds(pid)
        except AssertionError:
            fds_end = nfds(pid)
            failures.append("descriptors: %d at start, %d after the run" % (fd_base, fds_end))
    if bench.runs and bench.failed == bench.runs:
        failures.append("every redis-benchmark run failed")

    print("\n==== mqlb soak summary ====")
    print("duration:          %.0fs (seed %d)" % (duration, seed))
    print("sessions (ours):   %d  (%s)" % (sum(led.sessions.values()),
                                            ", ".join("%s %d" % kv for kv in sorted(led.sessions.items()))))
    print("sessions (mqlb):   %d in all, redis-benchmark included" % totals)
    print("redis-benchmark:   %d runs, %d requests, %d runs cut by faults"
          % (bench.runs, bench.requests, bench.failed))
    print("bytes verified:    %d (%.1f MiB)" % (led.bytes_verified, led.bytes_verified / 1048576.0))
    print("faults injected:   %d  (%s)" % (sum(led.faults.values()),
                                            ", ".join("%s %d" % kv for kv in sorted(led.faults.items()))))
    print("sessions ended by a backend kill: %d; connects refused at once with no backend: %d"
          % (led.ended_by_kill, led.refused_ok))
    print("mqlb RSS:          %s KiB after warm-up, %s KiB after the run" % (rss_warm, rss_end))
    print("mqlb descriptors:  %d at start, %s after the run" % (fd_base, fds_end))
    print("errors:            %d" % len(failures))
    for f in failures[:50]:
        print("  " + f)

    lb.stop()
    for r in redises:
        r.stop()
    for e in echoes:
        e.stop()
    shutil.rmtree(certdir, ignore_errors=True)
    if failures:
        print("soak: FAILED; mqlb log: %s" % lb.proc.logpath)
        return 1
    print("soak: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
