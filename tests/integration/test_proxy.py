"""The proxy at its core: the real mqlb in front of real redis-server
brokers and echo servers: balancing, ejection and recovery, relaying,
half-close, idle timeout, graceful stop and the command line."""

import hashlib
import os
import signal
import socket
import subprocess
import threading
import time
import unittest
from collections import Counter

from harness import (MQLB_BIN, EchoServer, Mqlb, RedisClient, RedisServer, ThreeRedisCase,
                     free_port, port_open, redis_port_of, wait_until)


def redis_pool(name, listen, backends, extra=""):
    text = "[pool %s]\nlisten = 127.0.0.1:%d\n" % (name, listen)
    text += extra
    for i, (port, opts) in enumerate(backends):
        text += "backend = r%d 127.0.0.1:%d %s\n" % (i + 1, port, opts)
    return text


class Balancing(ThreeRedisCase):

    def split(self, weights, n):
        port = free_port()
        lb = Mqlb(redis_pool("redis", port, [(r.port, "weight=%d" % w)
                                             for r, w in zip(self.redis, weights)],
                             "health_check = redis\ncheck_interval = 1s\n"))
        try:
            for r in ("r1", "r2", "r3"):
                lb.wait_state("redis", r, "up")
            seen = Counter(redis_port_of(port) for _ in range(n))
            return [seen[r.port] for r in self.redis], lb
        finally:
            lb.stop()

    def test_300_connections_split_exactly_100_each(self):
        counts, _ = self.split([1, 1, 1], 300)
        self.assertEqual(counts, [100, 100, 100])

    def test_weights_3_1_1_split_300_100_100(self):
        counts, _ = self.split([3, 1, 1], 500)
        self.assertEqual(counts, [300, 100, 100])

    def test_weight_zero_takes_no_sessions(self):
        counts, _ = self.split([1, 0, 1], 100)
        self.assertEqual(counts, [50, 0, 50])

    def test_backup_only_while_no_primary_is_up(self):
        port = free_port()
        dead = free_port()
        lb = Mqlb(redis_pool("p", port, [(dead, ""), (self.redis[1].port, "backup")],
                             "check_interval = 200ms\ncheck_timeout = 100ms\nfall = 1\n"))
        try:
            lb.wait_state("p", "r1", "down")
            self.assertEqual(redis_port_of(port), self.redis[1].port)
        finally:
            lb.stop()
        lb = Mqlb(redis_pool("p", port, [(self.redis[0].port, ""),
                                         (self.redis[1].port, "backup")]))
        try:
            lb.wait_state("p", "r1", "up")
            seen = Counter(redis_port_of(port) for _ in range(20))
            self.assertEqual(seen[self.redis[0].port], 20)
        finally:
            lb.stop()

    def test_no_live_backend_closes_client_at_once_and_counts(self):
        port = free_port()
        lb = Mqlb(redis_pool("p", port, [(free_port(), "")],
                             "check_interval = 200ms\ncheck_timeout = 100ms\nfall = 1\n"))
        try:
            lb.wait_state("p", "r1", "down")
            start = time.monotonic()
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                self.assertEqual(s.recv(10), b"")
            self.assertLess(time.monotonic() - start, 3.0)
            wait_until(lambda: lb.status()["pools"][0]["rejected"] >= 1, 5,
                       what="rejected counted")
        finally:
            lb.stop()

    def test_refused_backend_is_retried_invisibly(self):
        """A backend that refuses is retried elsewhere; the client never
        notices, and max_fails marks it down without the checker."""
        port = free_port()
        dead = free_port()
        lb = Mqlb(redis_pool("p", port, [(dead, ""), (self.redis[0].port, "")],
                             "health_check = none\nmax_fails = 2\nretries = 1\n"))
        try:
            for _ in range(30):
                self.assertEqual(redis_port_of(port), self.redis[0].port)
            b = lb.backend("p", "r1")
            self.assertEqual(b["state"], "down")
            self.assertGreaterEqual(b["failed"], 2)
        finally:
            lb.stop()


class Ejection(unittest.TestCase):
    def test_kill9_backend_no_failed_command_down_then_up(self):
        redis = [RedisServer() for _ in range(3)]
        port = free_port()
        interval, timeout, fall, rise = 0.5, 0.3, 2, 2
        lb = Mqlb(redis_pool("redis", port, [(r.port, "") for r in redis],
                             "health_check = redis\ncheck_interval = 500ms\n"
                             "check_timeout = 300ms\nfall = 2\nrise = 2\nretries = 2\n"
                             # a PING in flight to the killed broker is
                             # resent: PING is idempotent (replay = on)
                             "replay = on\n"))
        try:
            for n in ("r1", "r2", "r3"):
                lb.wait_state("redis", n, "up")
            errors, done = [], [0]
            stop = threading.Event()
            deadline = time.monotonic() + 60

            def load():
                # bounded in count and time, failures included
                while (not stop.is_set() and done[0] + len(errors) < 100000
                       and time.monotonic() < deadline):
                    try:
                        c = RedisClient(port)
                        self.assertEqual(c.command("PING"), "PONG")
                        c.close()
                        done[0] += 1
                    except Exception as e:  # noqa: BLE001 - count every failure
                        errors.append(repr(e))
            t = threading.Thread(target=load, daemon=True)
            t.start()
            self.addCleanup(t.join, 30)
            self.addCleanup(stop.set)
            wait_until(lambda: done[0] > 50, 10, what="traffic")
            redis[1].kill9()
            killed = time.monotonic()
            lb.wait_state("redis", "r2", "down", timeout=10)
            took = time.monotonic() - killed
            # fall x interval (plus its jitter) + timeout, and a margin for
            # a loaded machine
            self.assertLess(took, fall * interval * 1.1 + timeout + 1.5)
            before = done[0]
            wait_until(lambda: done[0] > before + 50, 10, what="traffic after kill")
            redis[1].start()
            lb.wait_state("redis", "r2", "up", timeout=rise * interval * 1.1 + 5)
            total = lb.backend("redis", "r2")["total"]
            wait_until(lambda: lb.backend("redis", "r2")["total"] > total + 10, 10,
                       what="traffic to the recovered backend")
            stop.set()
            t.join(30)
            self.assertEqual(errors, [])
            self.assertGreater(done[0], 100)
            lb.wait_output("is down")
            lb.wait_output("is up")
        finally:
            lb.stop()
            for r in redis:
                r.stop()


def stream_through(port, nbytes, chunk=65536, pace=None):
    """Send nbytes random bytes and read the echo; return both sha256s."""
    sent, got = hashlib.sha256(), hashlib.sha256()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    received = [0]

    def reader():
        while True:
            data = s.recv(262144)
            if not data:
                return
            got.update(data)
            received[0] += len(data)
    t = threading.Thread(target=reader)
    t.start()
    left = nbytes
    while left > 0:
        block = os.urandom(min(chunk, left))
        sent.update(block)
        s.sendall(block)
        left -= len(block)
        if pace:
            time.sleep(pace)  # pacing the sender, not waiting for a result
    s.shutdown(socket.SHUT_WR)
    t.join(60)
    s.close()
    return sent.hexdigest(), got.hexdigest(), received[0]


class Relay(unittest.TestCase):
    def test_32mib_each_way_unchanged(self):
        echo = EchoServer()
        port = free_port()
        lb = Mqlb("[pool echo]\nlisten = 127.0.0.1:%d\nbackend = e 127.0.0.1:%d\n"
                  % (port, echo.port))
        try:
            sent, got, n = stream_through(port, 32 << 20)
            self.assertEqual(n, 32 << 20)
            self.assertEqual(sent, got)
            # the counters are exact once the session has closed
            wait_until(lambda: (lambda b: b["bytes_in"] == b["bytes_out"] == 32 << 20)(
                lb.backend("echo", "e")), 5, what="byte counters")
        finally:
            lb.stop()
            echo.stop()

    def test_half_close_answer_after_client_fin(self):
        echo = EchoServer(reply_on_eof=True)
        port = free_port()
        lb = Mqlb("[pool echo]\nlisten = 127.0.0.1:%d\nbackend = e 127.0.0.1:%d\n"
                  % (port, echo.port))
        try:
            payload = os.urandom(300000)
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            answer = b""
            while True:
                data = s.recv(4096)
                if not data:
                    break
                answer += data
            s.close()
            self.assertEqual(answer.decode(), hashlib.sha256(payload).hexdigest())
        finally:
            lb.stop()
            echo.stop()

    def test_idle_timeout_closes_idle_session_only(self):
        echo = EchoServer()
        port = free_port()
        lb = Mqlb("[pool echo]\nlisten = 127.0.0.1:%d\nidle_timeout = 600ms\n"
                  "backend = e 127.0.0.1:%d\n" % (port, echo.port))
        try:
            busy = socket.create_connection(("127.0.0.1", port), timeout=5)
            idle = socket.create_connection(("127.0.0.1", port), timeout=5)
            idle.sendall(b"x")
            self.assertEqual(idle.recv(1), b"x")
            start = time.monotonic()
            # keep <busy> active past the timeout while <idle> stays quiet
            while time.monotonic() - start < 1.5:
                busy.sendall(b"ping")
                self.assertEqual(busy.recv(4), b"ping")
                time.sleep(0.1)  # traffic pacing, not a wait for a result
            idle.settimeout(5)
            self.assertEqual(idle.recv(1), b"")      # closed by mqlb
            busy.sendall(b"still")
            self.assertEqual(busy.recv(5), b"still")
            busy.close()
            idle.close()
            lb.wait_output("end=idle timeout")
        finally:
            lb.stop()
            echo.stop()


class Stop(unittest.TestCase):
    def test_sigterm_lets_transfer_finish_and_refuses_new(self):
        echo = EchoServer()
        port = free_port()
        lb = Mqlb("[pool echo]\nlisten = 127.0.0.1:%d\nbackend = e 127.0.0.1:%d\n"
                  % (port, echo.port))
        result = {}

        def transfer():
            result["r"] = stream_through(port, 4 << 20, chunk=65536, pace=0.02)
        t = threading.Thread(target=transfer)
        t.start()
        try:
            wait_until(lambda: lb.backend("echo", "e")["active"] == 1, 5, what="session")
            lb.proc.signal(signal.SIGTERM)
            wait_until(lambda: not port_open(port), 5, what="listener closed")
            t.join(60)
            sent, got, n = result["r"]
            self.assertEqual(n, 4 << 20)
            self.assertEqual(sent, got)
            self.assertEqual(lb.proc.p.wait(10), 0)
        finally:
            lb.stop()
            echo.stop()

    def test_second_sigterm_stops_at_once(self):
        echo = EchoServer()
        port = free_port()
        lb = Mqlb("[pool echo]\nlisten = 127.0.0.1:%d\nbackend = e 127.0.0.1:%d\n"
                  % (port, echo.port))
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"a")
            self.assertEqual(s.recv(1), b"a")
            lb.proc.signal(signal.SIGTERM)
            wait_until(lambda: not port_open(port), 5, what="listener closed")
            self.assertTrue(lb.alive())     # the open session holds it
            lb.proc.signal(signal.SIGTERM)
            self.assertEqual(lb.proc.p.wait(10), 0)
            s.settimeout(5)
            self.assertEqual(s.recv(1), b"")
            s.close()
        finally:
            lb.stop()
            echo.stop()


class CommandLine(unittest.TestCase):
    def run_mqlb(self, *args):
        return subprocess.run([MQLB_BIN] + list(args), capture_output=True, text=True,
                              timeout=30)

    def test_check_valid_example_config(self):
        from harness import ROOT
        r = self.run_mqlb("-t", "-c", os.path.join(ROOT, "etc", "mqlb.ini"))
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_check_reports_every_error_with_file_and_line(self):
        import tempfile
        d = tempfile.mkdtemp()
        path = os.path.join(d, "bad.ini")
        with open(path, "w") as f:
            f.write("[global]\nworkers = lots\n[pool a]\nlisten = 127.0.0.1:1\n"
                    "balance = fastest\nbackend = x 127.0.0.1:2 weight=999\n[nope]\n")
        r = self.run_mqlb("-t", "-c", path)
        self.assertEqual(r.returncode, 1)
        for line in (2, 5, 6, 7):
            self.assertIn("%s:%d: " % (path, line), r.stderr)

    def test_version_and_help(self):
        r = self.run_mqlb("-V")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^mqlb \d+\.\d+\.\d+")
        r = self.run_mqlb("-h")
        self.assertEqual(r.returncode, 0)
        self.assertIn("-t", r.stdout)

    def test_bad_config_does_not_start(self):
        r = self.run_mqlb("-c", "/nonexistent/mqlb.ini")
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/mqlb.ini:0: cannot open", r.stderr)


class Benchmark(unittest.TestCase):
    def test_redis_benchmark_through_mqlb_has_no_errors(self):
        redis = [RedisServer() for _ in range(3)]
        port = free_port()
        lb = Mqlb(redis_pool("redis", port, [(r.port, "") for r in redis],
                             "health_check = redis\n"), global_extra="log_level = warn\n")
        try:
            r = subprocess.run(["redis-benchmark", "-p", str(port), "-q", "-n", "20000",
                                "-c", "50", "-t", "ping,set,get", "--csv"],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            rows = [l.split(",") for l in r.stdout.splitlines()[1:] if l.startswith('"')]
            self.assertEqual([row[0] for row in rows],
                             ['"PING_INLINE"', '"PING_MBULK"', '"SET"', '"GET"'])
            for row in rows:
                self.assertGreater(float(row[1].strip('"')), 0)
            self.assertNotIn("rror", r.stdout + r.stderr)
        finally:
            lb.stop()
            for x in redis:
                x.stop()


if __name__ == "__main__":
    unittest.main()
