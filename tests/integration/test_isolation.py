"""Isolation: hostile clients and misbehaving brokers cannot hurt anyone
else. Each class is one finding of the hostile review, driven against the
real mqlb in front of real brokers (mosquitto) or echo servers."""

import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

import harness  # noqa: E402
from harness import (MQLB_BIN, EchoServer, Mosquitto, Mqlb, check_sanitizers, free_port,
                     nfds, port_open, rss_kib, wait_until)


def echo_pool(port, backends, extra="", name="echo"):
    text = "[pool %s]\nlisten = 127.0.0.1:%d\ncheck_interval = 200ms\n" \
           "check_timeout = 150ms\nrise = 1\nfall = 1\n%s\n" % (name, port, extra)
    for bname, bport in backends:
        text += "backend = %s 127.0.0.1:%d\n" % (bname, bport)
    return text


def echo_once(port, payload=b"ping", timeout=5.0):
    """One short session: send <payload>, read the echo, close."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    return got


# ---- 2: a descriptor has one owner at every moment ---------------------

HERE = os.path.dirname(os.path.abspath(__file__))
SUPPORT = os.path.join(os.path.dirname(HERE), "support")


def closecheck_env():
    """Environment that preloads tests/support/closecheck.c: mqlb aborts
    on a close() of a descriptor that is not open."""
    out = os.path.join(tempfile.mkdtemp(prefix="mqlb-closecheck-"), "closecheck.so")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", out,
                    os.path.join(SUPPORT, "closecheck.c"), "-ldl"], check=True)
    env = dict(os.environ)
    env["LD_PRELOAD"] = out
    # ASan wants to come first; the shim only wraps close().
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    return env


class Bulk(threading.Thread):
    """One session streaming paced random bytes to an echo server and
    checking every byte that comes back."""

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port, self.stop_ev = port, stop
        self.sent, self.got = bytearray(), bytearray()
        self.error = None

    def run(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
            rd = threading.Thread(target=self.reader, args=(s,), daemon=True)
            rd.start()
            while not self.stop_ev.is_set() and len(self.sent) < (8 << 20):
                block = os.urandom(4096)
                self.sent += block
                s.sendall(block)
                self.stop_ev.wait(0.002)
            s.shutdown(socket.SHUT_WR)
            rd.join(30)
            s.close()
        except OSError as e:
            self.error = repr(e)

    def reader(self, s):
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    return
                self.got += data
        except OSError as e:
            self.error = repr(e)


class ReloadStorm(unittest.TestCase):
    """SIGHUP every 2 ms while the file flips a second listen address on
    and off (so the main thread often hands over a new listener list
    before a busy worker took the previous one): no descriptor is closed
    twice, no session sees EBADF, every byte comes back."""
    RUN_ALONE = True    # 40 bulk sessions and a SIGHUP every 2 ms load both cores

    def test_sighup_storm_with_bulk_sessions(self):
        echo = EchoServer()
        port, port2 = free_port(), free_port()
        one = echo_pool(port, [("e1", echo.port)])
        two = one.replace("listen = 127.0.0.1:%d\n" % port,
                          "listen = 127.0.0.1:%d\nlisten = 127.0.0.1:%d\n" % (port, port2))
        lb = Mqlb(two, workers=2, env=closecheck_env())
        try:
            stop = threading.Event()
            bulks = [Bulk(port, stop) for _ in range(40)]
            for b in bulks:
                b.start()
            deadline = time.monotonic() + 4.0
            n = 0
            while time.monotonic() < deadline and lb.alive():
                if n % 3 == 0:
                    lb.write(two if (n // 3) % 2 == 0 else one)
                lb.reload()
                n += 1
                time.sleep(0.002)
            stop.set()
            for b in bulks:
                b.join(40)
            out = lb.output()
            self.assertFalse("closecheck" in out, out[out.find("closecheck"):][:200])
            self.assertTrue(lb.alive(), "mqlb died: %s" % out[-2000:])
            for b in bulks:
                self.assertIsNone(b.error, b.error)
                self.assertEqual(len(b.got), len(b.sent))
                self.assertTrue(b.got == b.sent, "bytes differ")
            out = lb.output()
            self.assertNotIn("Bad file descriptor", out)
            self.assertEqual(echo_once(port), b"ping")
        finally:
            lb.stop()
            echo.stop()
        out = lb.output()
        self.assertFalse("closecheck" in out, out[out.find("closecheck"):][:200])


# ---- 3: [admin] changes are applied by a reload, or the reload is refused

def admin_get(port, path, token=None, timeout=2.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers={"Authorization": "Bearer " + token} if token else {})
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


class AdminReload(unittest.TestCase):
    def setUp(self):
        self.echo = EchoServer()
        self.port = free_port()
        self.pools = echo_pool(self.port, [("e1", self.echo.port)])

    def tearDown(self):
        self.lb.stop()
        self.echo.stop()

    def reload_and_wait(self, nth):
        self.lb.reload()
        wait_until(lambda: self.lb.output().count("SIGHUP: reloading") >= nth and
                   ("reload done" in self.lb.output().split("SIGHUP: reloading")[nth] or
                    "reload failed" in self.lb.output().split("SIGHUP: reloading")[nth]),
                   what="reload %d finished" % nth)
        return self.lb.output().split("SIGHUP: reloading")[nth]

    def test_new_token_and_listen_are_applied_old_token_stops_at_once(self):
        self.lb = Mqlb(self.pools, admin_extra="token = old-secret")
        self.assertEqual(admin_get(self.lb.admin_port, "/status", "old-secret"), 200)
        self.lb.admin_extra = "token = new-secret"
        self.lb.write(self.pools)
        self.reload_and_wait(1)
        self.assertEqual(admin_get(self.lb.admin_port, "/status", "old-secret"), 401)
        self.assertEqual(admin_get(self.lb.admin_port, "/status", "new-secret"), 200)
        # a new admin listen address: served at once, the old one closes
        old = self.lb.admin_port
        self.lb.admin_port = free_port()
        self.lb.write(self.pools)
        part = self.reload_and_wait(2)
        self.assertIn("reload done", part)
        self.assertEqual(admin_get(self.lb.admin_port, "/status", "new-secret"), 200)
        wait_until(lambda: not port_open(old), what="old admin port closed")
        self.assertEqual(echo_once(self.port), b"ping")

    def test_admin_listen_that_cannot_be_bound_refuses_the_reload(self):
        self.lb = Mqlb(self.pools)
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        old = self.lb.admin_port
        try:
            self.lb.admin_port = taken.getsockname()[1]
            self.lb.write(self.pools.replace("e1 ", "e2 "))
            part = self.reload_and_wait(1)
        finally:
            self.lb.admin_port = old
        taken.close()
        self.assertRegex(part, r"%s:\d+: \[admin\] listen = 127.0.0.1:\d+ cannot be applied"
                         % re.escape(self.lb.path))
        self.assertIn("reload failed", part)
        # the running config stays, whole: old admin port, old backend name
        self.assertEqual(admin_get(old, "/health"), 200)
        self.assertEqual(self.lb.status()["pools"][0]["backends"][0]["name"], "e1")


# ---- 4: admin slowloris: /health stays answerable -----------------------

class AdminSlowloris(unittest.TestCase):
    """100 connections from the loopback (keepalived's own address) that
    trickle one header byte at a time: GET /health still answers within
    1 s every time it is asked."""

    def test_health_answers_within_1s_through_100_trickling_connections(self):
        echo = EchoServer()
        lb = Mqlb(echo_pool(free_port(), [("e1", echo.port)]))
        stop = threading.Event()
        opened = [0]

        def attacker():
            socks = []
            while not stop.is_set():
                while len(socks) < 100:
                    try:
                        socks.append(socket.create_connection(("127.0.0.1", lb.admin_port),
                                                              timeout=1))
                        opened[0] += 1
                    except OSError:
                        break
                for s in list(socks):
                    try:
                        s.send(b"G")
                    except OSError:
                        s.close()
                        socks.remove(s)
                stop.wait(0.5)
            for s in socks:
                s.close()

        t = threading.Thread(target=attacker, daemon=True)
        t.start()
        try:
            wait_until(lambda: opened[0] >= 100, what="100 slow connections")
            worst = 0.0
            deadline = time.monotonic() + 7.0
            while time.monotonic() < deadline:
                t0 = time.monotonic()
                self.assertEqual(admin_get(lb.admin_port, "/health", timeout=1.0), 200)
                worst = max(worst, time.monotonic() - t0)
                time.sleep(0.2)
            print("slowloris: worst /health %.3fs, %d slow connections opened"
                  % (worst, opened[0]))
        finally:
            stop.set()
            t.join(5)
            lb.stop()
            echo.stop()


# ---- 9: the MQTT check's client id is unique per instance ---------------

class MqttCheckClientId(unittest.TestCase):
    """Two instances checking one broker (as two containers, both PID 1,
    would): each check id carries the host name and a random part, so
    neither takes over the other's check session."""

    def test_two_instances_use_distinct_host_and_random_ids(self):
        mq = Mosquitto("max_connections -1\n")
        pool = "[pool m]\nlisten = 127.0.0.1:%%d\nhealth_check = mqtt\n" \
               "check_interval = 200ms\ncheck_timeout = 150ms\n" \
               "backend = m1 127.0.0.1:%d\n" % mq.port
        lbs = [Mqlb(pool % free_port()) for _ in range(2)]
        try:
            for lb in lbs:
                lb.wait_state("m", "m1", "up")
            ids = wait_until(lambda: set(i for i in mq.clients_seen()
                                         if i.startswith("mqlb-check")) if
                             len(set(mq.clients_seen())) >= 2 else None,
                             what="two check ids")
            host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:18]
            for cid in ids:
                self.assertRegex(cid, r"^mqlb-check-%s-[0-9a-f]{8}-\d+$" % re.escape(host))
            self.assertEqual(len(ids), 2, ids)
            self.assertNotIn("already connected, closing old connection", mq.proc.output())
        finally:
            for lb in lbs:
                lb.stop()
            mq.stop()


# ---- 1: passive ejection only counts the broker's own failures ----------

def mqtt_connect_packet(client_id):
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02" + struct.pack(">H", 30) + struct.pack(">H", len(cid)) + cid
    return bytes([0x10, len(body)]) + body


GOOD_FAILURES = []


def mqtt_good_client(port, client_id, timeout=5.0):
    """CONNECT, expect CONNACK 0, DISCONNECT. True when served; the
    reason of a failure goes to GOOD_FAILURES."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(mqtt_connect_packet(client_id))
            ack = b""
            while len(ack) < 4:
                chunk = s.recv(4 - len(ack))
                if not chunk:
                    GOOD_FAILURES.append("closed after %r" % ack)
                    return False
                ack += chunk
            s.sendall(b"\xe0\x00")
            return ack[0] == 0x20 and ack[3] == 0
    except OSError as e:
        GOOD_FAILURES.append(repr(e))
        return False


# What the review sent: an HTTP request, and a CONNECT with the password
# flag but no user name flag; mosquitto closes on both.
BAD_CLIENT_BYTES = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x10\x12\x00\x04MQTT\x04\x42\x00\x1e\x00\x06badbad",
]


class PassiveEjection(unittest.TestCase):
    def test_bad_clients_cannot_mark_brokers_down_a_dead_broker_still_goes(self):
        brokers = [Mosquitto("max_connections -1\n"), Mosquitto("max_connections -1\n")]
        port = free_port()
        pool = ("[pool m]\nlisten = 127.0.0.1:%d\nhealth_check = tcp\n"
                "check_interval = 30s\non_backend_down = close\n" % port +
                "".join("backend = m%d 127.0.0.1:%d\n" % (i + 1, b.port)
                        for i, b in enumerate(brokers)))
        lb = Mqlb(pool)
        stop = threading.Event()
        nbad = [0]

        def one_bad(i):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    s.sendall(BAD_CLIENT_BYTES[i % 2])
                    s.recv(100)
            except OSError:
                pass
            nbad[0] += 1

        def bad():
            # bursts of 10 at once, 5 bursts a second: ~50 a second
            i = 0
            while not stop.is_set():
                burst = [threading.Thread(target=one_bad, args=(i + k,), daemon=True)
                         for k in range(10)]
                for t in burst:
                    t.start()
                for t in burst:
                    t.join(3)
                i += 10
                stop.wait(0.2)

        try:
            for b in ("m1", "m2"):
                lb.wait_state("m", b, "up")
            t = threading.Thread(target=bad, daemon=True)
            t.start()
            served = failed = 0
            deadline = time.monotonic() + 5.0
            states = set()
            while time.monotonic() < deadline:
                if mqtt_good_client(port, "good-%d" % served):
                    served += 1
                else:
                    failed += 1
                states |= {b["state"] for b in lb.status()["pools"][0]["backends"]}
                time.sleep(0.05)
            stop.set()
            t.join(5)
            print("passive: %d bad clients, good served %d failed %d, states %s"
                  % (nbad[0], served, failed, sorted(states)))
            self.assertGreater(nbad[0], 100)
            self.assertEqual(states, {"up"})
            self.assertEqual(failed, 0, GOOD_FAILURES)
            self.assertEqual(admin_get(lb.admin_port, "/health"), 200)
            # a broker really gone is still taken out by client traffic
            # (the checker runs every 30 s: it cannot be the one)
            brokers[0].proc.kill9()
            wait_until(lambda: [mqtt_good_client(port, "after") for _ in range(3)] and
                       lb.backend("m", "m1")["state"] == "down", timeout=5,
                       what="m1 down by passive failures")
            self.assertTrue(mqtt_good_client(port, "still-served"))
        finally:
            stop.set()
            lb.stop()
            for b in brokers:
                b.stop()


# ---- 5, 6: replay is off by default, bounded when on --------------------

class FakeBroker:
    """A broker that accepts, records what it reads, and then either
    answers "OK\n" (answer=True), closes without a word, or stays silent
    without reading (silent=True)."""

    def __init__(self, answer=False, silent=False):
        self.answer, self.silent = answer, silent
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.port = self.sock.getsockname()[1]
        self.got = []
        self.held = []
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.silent:
                self.held.append(c)
                continue
            threading.Thread(target=self.handle, args=(c,), daemon=True).start()

    def handle(self, c):
        try:
            c.settimeout(5)
            data = c.recv(65536)
            self.got.append(data)
            if self.answer and data:
                c.sendall(b"OK\n")
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.sock.close()
        for c in self.held:
            c.close()


class Replay(unittest.TestCase):
    """Broker A reads the request and closes without answering; B answers."""

    def run_sessions(self, replay):
        a, b = FakeBroker(answer=False), FakeBroker(answer=True)
        port = free_port()
        pool = ("[pool r]\nlisten = 127.0.0.1:%d\ncheck_interval = 30s\n"
                "health_check = none\n%sbackend = a 127.0.0.1:%d\n"
                "backend = b 127.0.0.1:%d\n"
                % (port, "replay = %s\n" % replay if replay else "", a.port, b.port))
        lb = Mqlb(pool)
        replies = []
        try:
            for i in range(6):
                msg = b"PUBLISH orders %d {\"qty\": 1}\n" % i
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(msg)
                    got = b""
                    while True:
                        chunk = s.recv(100)
                        if not chunk:
                            break
                        got += chunk
                    replies.append(got)
            wait_until(lambda: len(a.got) + len(b.got) >= 6, what="brokers read")
            lb.wait_output(" end=", 6)
            return a, b, replies, lb.output()
        finally:
            lb.stop()
            a.stop()
            b.stop()

    def test_off_by_default_no_byte_reaches_two_brokers(self):
        a, b, replies, out = self.run_sessions(None)
        self.assertEqual(len(set(a.got) & set(b.got)), 0, "bytes sent twice")
        self.assertEqual(len(a.got) + len(b.got), 6)
        self.assertEqual(replies.count(b"OK\n"), len(b.got))
        self.assertEqual(replies.count(b""), len(a.got))
        self.assertGreater(len(a.got), 0)
        # a clean close is not logged as a reset, and is not a failure
        self.assertNotIn("Connection reset by peer", out)
        self.assertIn("backend closed", out)

    def test_on_replays_to_the_next_broker(self):
        a, b, replies, out = self.run_sessions("on")
        self.assertGreater(len(a.got), 0)
        self.assertEqual(replies, [b"OK\n"] * 6)
        self.assertTrue(set(a.got) <= set(b.got))
        self.assertNotIn("Connection reset by peer", out)


def sockets_of(pid, *ports):
    """What the kernel says of <pid>'s sockets on <ports> (ss, one line
    each, with mqlb's descriptor) and which of those descriptors its epoll
    sets watch, with which events: for a session that missed its
    sockets' news."""
    out = subprocess.run(["ss", "-tanpeH"], capture_output=True, text=True,
                         timeout=10).stdout
    mine = [l for l in out.splitlines() if "pid=%d," % pid in l and any(
        ":%d " % p in l for p in ports) and "LISTEN" not in l]
    fds = set(re.findall(r"pid=%d,fd=(\d+)" % pid, "\n".join(mine)))
    watched = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) != "anon_inode:[eventpoll]":
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                for line in f:
                    m = re.match(r"tfd:\s*(\d+) events:\s*(\S+)", line)
                    if m and m.group(1) in fds:
                        watched.append("epoll %s: fd %s events %s" % (fd, m.group(1),
                                                                    m.group(2)))
        except OSError:
            continue
    return "sockets: %s; epoll: %s" % (mine[:10], watched or "none of them")


class ReplayMemory(unittest.TestCase):
    """5,000 sessions whose broker never answers, with replay on: each
    keeps a copy of its first request only, small; once they are gone,
    so is the memory (RSS back below half of what the burst took)."""
    RUN_ALONE = "plain"     # RSS of 5,000 sessions (skipped under sanitizers)

    def test_5000_quiet_sessions_stay_under_2_kib_each(self):
        import resource
        if "TSAN_OPTIONS" in os.environ or not harness.PLAIN:
            self.skipTest("a sanitizer's shadow memory swamps RSS")
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard < 12000:
            self.skipTest("needs 12000 descriptors")
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        silent = FakeBroker(silent=True)
        port = free_port()
        lb = Mqlb("[pool q]\nlisten = 127.0.0.1:%d\nhealth_check = none\nreplay = on\n"
                  "backend = s 127.0.0.1:%d\n" % (port, silent.port), workers=2)
        clients = []
        try:
            echo_probe = socket.create_connection(("127.0.0.1", port))
            echo_probe.sendall(b"warm-up\n")
            # closed with the others: once its copy is dropped (after 5 s,
            # a slow burst), the broker's close leaves it half-open, as any
            # session whose client has not closed
            clients.append(echo_probe)
            wait_until(lambda: lb.backend("q", "s")["active"] == 1, what="warm-up session")
            base = rss_kib(lb.proc.pid)
            for i in range(5000):
                c = socket.create_connection(("127.0.0.1", port))
                c.sendall(b"SUB orders %d\r\n" % i)
                clients.append(c)
                if i % 500 == 499:
                    # let the broker's accept loop keep up: past its
                    # listen backlog the kernel drops connects, and a
                    # session whose broker never accepts it waits on
                    wait_until(lambda: len(silent.held) >= i + 1, timeout=30,
                               what="broker accepts %d" % (i + 1))
            wait_until(lambda: lb.backend("q", "s")["active"] >= 5001, timeout=30,
                       what="5000 sessions")
            wait_until(lambda: len(silent.held) >= 5001, timeout=30, what="broker holds all")
            time.sleep(0.5)     # let the last reads land (RSS is what we measure)
            grown = rss_kib(lb.proc.pid) - base
            per = grown * 1024 / 5000
            print("replay memory: +%d KiB for 5000 quiet sessions, %.0f bytes each"
                  % (grown, per))
            self.assertLess(per, 2048)
            for c in clients:
                c.close()
            clients = []
            # The broker ends them too: every connection it holds, also
            # one it would accept late.
            ended = [0]

            def broker_ends_all():
                held = silent.held
                while ended[0] < len(held):
                    held[ended[0]].close()
                    ended[0] += 1
                return lb.backend("q", "s")["active"] == 0
            try:
                wait_until(broker_ends_all, timeout=30, what="sessions closed")
            except AssertionError as e:
                code, body, _ = lb.http("GET", "/sessions")
                ids = re.findall(r'"id":\s*(\d+)', body)[:5]
                lines = [l for l in lb.proc.output().splitlines()
                         if any("session #%s " % i in l for i in ids)]
                raise AssertionError("%s: broker ended %d connections, %s still active;"
                                     " /sessions: %s; their log lines: %s; %s"
                                     % (e, ended[0], lb.backend("q", "s")["active"],
                                        body[:1500], lines[:20],
                                        sockets_of(lb.proc.pid, port, silent.port)))
            # and the memory goes back to the system after the burst
            samples = []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                samples.append(rss_kib(lb.proc.pid) - base)
                if samples[-1] < grown / 2:
                    break
                time.sleep(0.5)
            self.assertLess(samples[-1], grown / 2, "RSS growth (KiB): %s" % samples)
            print("replay memory: +%d KiB once they closed"
                  % (rss_kib(lb.proc.pid) - base))
        finally:
            for c in clients:
                c.close()
            lb.stop()
            silent.stop()


# ---- 8: a client that vanishes is noticed while its broker is not reading

class VanishedClients(unittest.TestCase):
    def test_20_reset_clients_end_within_a_second_while_broker_reads_nothing(self):
        silent = FakeBroker(silent=True)
        port = free_port()
        lb = Mqlb("[pool v]\nlisten = 127.0.0.1:%d\nhealth_check = none\n"
                  "backend = s 127.0.0.1:%d\n" % (port, silent.port))
        try:
            clients = []
            for _ in range(20):
                c = socket.create_connection(("127.0.0.1", port))
                c.setblocking(False)
                clients.append(c)
            wait_until(lambda: len(silent.held) >= 20, what="20 sessions at the broker")
            # fill the client -> broker path until mqlb stops reading us
            block = b"x" * 65536
            for c in clients:
                stalled_since = None
                while True:
                    try:
                        c.send(block)
                        stalled_since = None
                    except BlockingIOError:
                        stalled_since = stalled_since or time.monotonic()
                        if time.monotonic() - stalled_since > 0.3:
                            break
                        time.sleep(0.02)
            for c in clients:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
            t0 = time.monotonic()
            wait_until(lambda: lb.backend("v", "s")["active"] == 0, timeout=3,
                       what="sessions of reset clients closed")
            print("vanished clients: all 20 sessions ended %.2fs after the resets"
                  % (time.monotonic() - t0))
        finally:
            lb.stop()
            silent.stop()


# ---- 9: refusal lines are rate-limited, with a count --------------------

class RefusalLogRate(unittest.TestCase):
    def test_300_refused_clients_log_a_few_lines_and_the_count(self):
        echo = EchoServer()
        port = free_port()
        lb = Mqlb(echo_pool(port, [("e1", echo.port)], "allow = 10.0.0.0/8"))
        try:
            for _ in range(300):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                        s.recv(1)
                except OSError:
                    pass
            # one more after the window, to carry the count
            wait_until(lambda: (socket.create_connection(("127.0.0.1", port)).close() or
                                "similar lines suppressed" in lb.output()),
                       timeout=5, interval=0.3, what="suppressed count")
            lines = re.findall(r"client \S+ refused", lb.output())
            print("refusal lines for 301+ refused clients: %d" % len(lines))
            self.assertLess(len(lines), 60)
            n = sum(int(x) for x in re.findall(r"\((\d+) similar lines suppressed\)",
                                              lb.output()))
            self.assertGreater(n, 100)
        finally:
            lb.stop()
            echo.stop()


# ---- 9: the descriptor budget counts listeners, checks and splice pipes -

class DescriptorBudget(unittest.TestCase):
    """Under a 200-descriptor limit and max_connections = 60: 30 bulk
    sessions (past the splice threshold both ways) stay open, then 30
    more clients come. Every one is served at once: splice pipes do not
    take the descriptors the sessions were admitted for."""

    def test_bulk_sessions_leave_room_for_the_admitted_ones(self):
        import harness
        d = tempfile.mkdtemp(prefix="mqlb-fdlimit-")
        wrapper = os.path.join(d, "mqlb")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec prlimit --nofile=200:200 %s \"$@\"\n" % MQLB_BIN)
        os.chmod(wrapper, 0o755)
        echo = EchoServer()
        port = free_port()
        real, harness.MQLB_BIN = harness.MQLB_BIN, wrapper
        try:
            lb = Mqlb(echo_pool(port, [("e1", echo.port)]), global_extra="max_connections = 60")
        finally:
            harness.MQLB_BIN = real
        held = []
        try:
            payload = os.urandom(600 << 10)     # past the 256 KiB splice threshold
            for _ in range(30):
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                t = threading.Thread(target=s.sendall, args=(payload,), daemon=True)
                t.start()
                got = 0
                while got < len(payload):
                    chunk = s.recv(1 << 16)
                    self.assertTrue(chunk, "bulk session closed")
                    got += len(chunk)
                t.join(10)
                held.append(s)      # open: its pipes (if any) stay open too
            print("descriptors: mqlb holds %d with 30 bulk sessions open" % nfds(lb.proc.pid))
            for i in range(30):     # 30 more at once, each answered at once
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                held.append(s)
                s.sendall(b"late %d" % i)
                self.assertEqual(s.recv(100), b"late %d" % i)
            out = lb.output()
            self.assertNotIn("Too many open files", out)
            self.assertNotIn("no socket for the broker", out)
        finally:
            for s in held:
                s.close()
            lb.stop()
            echo.stop()
            shutil.rmtree(d, ignore_errors=True)


# ---- 10: one greedy source ------------------------------------------------

class GreedySource(unittest.TestCase):
    def check(self, pool):
        d = tempfile.mkdtemp(prefix="mqlb-greedy-")
        path = os.path.join(d, "mqlb.ini")
        with open(path, "w") as f:
            f.write(pool)
        r = subprocess.run([MQLB_BIN, "-t", "-c", path], capture_output=True, text=True,
                           timeout=10)
        shutil.rmtree(d, ignore_errors=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stderr

    def test_public_pool_without_a_per_source_limit_is_warned_about(self):
        pool = "[pool p]\nlisten = 0.0.0.0:%d\nbackend = a 127.0.0.1:1\n" % free_port()
        self.assertRegex(self.check(pool), r":1: warning: \[pool p\] listens on 0.0.0.0:\d+ "
                         r"with max_conns_per_source = 0")
        self.assertNotIn("warning", self.check(pool + "max_conns_per_source = 100\n"))
        self.assertNotIn("warning", self.check(pool.replace("0.0.0.0", "127.0.0.1")))

    def test_with_the_recipe_one_address_cannot_take_every_slot(self):
        echo = EchoServer()
        port = free_port()
        lb = Mqlb(echo_pool(port, [("e1", echo.port)], "max_conns_per_source = 10"),
                  global_extra="max_connections = 20")
        greedy = []
        try:
            for _ in range(20):
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                greedy.append(s)
            wait_until(lambda: lb.backend("echo", "e1")["active"] == 10,
                       what="10 greedy sessions")
            with socket.create_connection(("127.0.0.1", port), timeout=2,
                                          source_address=("127.0.0.2", 0)) as s:
                s.sendall(b"other")
                self.assertEqual(s.recv(10), b"other")
        finally:
            for s in greedy:
                s.close()
            lb.stop()
            echo.stop()


# ---- 7: a stalled log reader never stalls the relay --------------------

class StalledStderr(unittest.TestCase):
    """stderr is a pipe nobody reads: sessions keep being relayed, lines
    that do not fit are dropped and counted, and the count is logged once
    the reader returns."""

    def test_relay_continues_and_dropped_lines_are_reported(self):
        echo = EchoServer()
        port, admin = free_port(), free_port()
        d = tempfile.mkdtemp(prefix="mqlb-hostile-")
        path = os.path.join(d, "mqlb.ini")
        with open(path, "w") as f:
            f.write("[global]\nworkers = 2\nlog_level = info\n"
                    "[admin]\nlisten = 127.0.0.1:%d\n" % admin)
            f.write(echo_pool(port, [("e1", echo.port)]))
        p = subprocess.Popen([MQLB_BIN, "-c", path], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: port_open(admin), what="admin port")
            # ~150 bytes of log per session: 3,000 fill a 64 KiB pipe
            # many times over.
            for i in range(3000):
                self.assertEqual(echo_once(port, b"x%d" % i, timeout=5.0), b"x%d" % i,
                                 "session %d" % i)
            out = b""
            deadline = time.monotonic() + 10
            while b"dropped " not in out and time.monotonic() < deadline:
                r, _, _ = select.select([p.stderr], [], [], 0.5)
                if r:
                    out += os.read(p.stderr.fileno(), 1 << 20)
            m = re.search(rb"dropped (\d+) log lines", out)
            self.assertIsNotNone(m, "no 'dropped N log lines' line")
            self.assertGreater(int(m.group(1)), 0)
            # and the count is there for monitoring too
            body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin,
                                          timeout=5).read().decode()
            m2 = re.search(r"^mqlb_log_dropped_lines_total (\d+)$", body, re.M)
            self.assertIsNotNone(m2, "no mqlb_log_dropped_lines_total in /metrics")
            self.assertGreaterEqual(int(m2.group(1)), int(m.group(1)))
            status = json.loads(urllib.request.urlopen(
                "http://127.0.0.1:%d/status" % admin, timeout=5).read())
            self.assertGreaterEqual(status["log_dropped_lines"], int(m.group(1)))
        finally:
            p.send_signal(signal.SIGTERM)
            threading.Thread(target=p.stderr.read, daemon=True).start()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
            echo.stop()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
