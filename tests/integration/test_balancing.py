"""Issue 5: balancing policies and the pool keys that shape sessions, with
real servers: redis-server for source hashing, leastconn, random and slow
start; mosquitto brokers for mqtt-client-id stickiness and queued QoS 1
delivery; nginx's stream module reading the PROXY protocol; a stopped
(SIGSTOP) redis for on_backend_down; and the allow list, the per-address
session limit and TCP keepalive checked from the outside (ss)."""

import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest
from collections import Counter

from harness import (EchoServer, Mosquitto, Mqlb, Proc, RedisClient, RedisServer,
                     ThreeRedisCase, free_port, redis_port_of, wait_port, wait_until)

# Linux routes all of 127/8 to lo: each of these is a distinct client.
SOURCES = ["127.0.0.%d" % i for i in range(2, 61)]


def pool(name, listen, backends, extra=""):
    """[pool NAME] text; <backends> are (port, options) pairs named b1, b2..."""
    text = "[pool %s]\nlisten = 127.0.0.1:%d\n%s" % (name, listen, extra)
    for i, (port, opts) in enumerate(backends):
        text += "backend = b%d 127.0.0.1:%d %s\n" % (i + 1, port, opts)
    return text


def pool_status(lb, name):
    for p in lb.status()["pools"]:
        if p["name"] == name:
            return p
    raise KeyError(name)


def closed_by_peer(sock, timeout):
    """True if <sock> sees EOF or a reset within <timeout> seconds, False if
    it stays open that long (any data read on the way is an error)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            return False
        try:
            data = sock.recv(4096)
        except ConnectionResetError:
            return True
        if not data:
            return True
        raise AssertionError("unexpected data %r" % data[:64])


def refused_without_data(port, source, timeout=5.0):
    """Connect from <source>, send a PING: mqlb must close without a byte."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0))
    try:
        try:
            s.sendall(b"PING\r\n")
        except OSError:
            return True         # reset before the PING went out
        return closed_by_peer(s, timeout)
    finally:
        s.close()


def ping(port, source="127.0.0.1", timeout=5.0):
    """One PING through <port> from <source>; True on +PONG."""
    c = RedisClient(port, source=source, timeout=timeout)
    try:
        return c.command("PING") == "PONG"
    finally:
        c.close()


class Held:
    """Sessions held open through mqlb; each knows its redis port."""

    def __init__(self):
        self.clients = []

    def open(self, port, source=None):
        c = RedisClient(port, source=source)
        info = c.command("INFO", "server")
        c.backend_port = int(re.search(r"tcp_port:(\d+)", info).group(1))
        self.clients.append(c)
        return c

    def close(self):
        for c in self.clients:
            try:
                c.close()
            except OSError:
                pass
        self.clients = []


# ---- source: Maglev over the client address ----------------------------

class SourceHashing(unittest.TestCase):
    def setUp(self):
        self.redis = [RedisServer() for _ in range(3)]
        self.port = free_port()
        self.text = pool("src", self.port, [(r.port, "") for r in self.redis],
                         "balance = source\nhealth_check = redis\n"
                         "check_interval = 200ms\ncheck_timeout = 200ms\n"
                         "rise = 1\nfall = 1\n")
        self.lb = Mqlb(self.text)
        self.addCleanup(self.lb.stop)
        for r in self.redis:
            self.addCleanup(r.stop)
        for b in ("b1", "b2", "b3"):
            self.lb.wait_state("src", b, "up")

    def mapping(self, port=None):
        return {src: redis_port_of(port or self.port, source=src) for src in SOURCES}

    def test_each_address_keeps_its_broker_and_only_a_dead_brokers_clients_move(self):
        first = self.mapping()
        for _ in range(2):
            self.assertEqual(self.mapping(), first, "an address changed broker")
        spread = Counter(first.values())
        self.assertEqual(set(spread), {r.port for r in self.redis})
        for r in self.redis:
            # 59 addresses over 3 equal brokers: about 20 each.
            self.assertGreaterEqual(spread[r.port], 8, spread)

        # A second mqlb with the same pool computes the same table.
        other_port = free_port()
        lb2 = Mqlb(self.text.replace(":%d\n" % self.port, ":%d\n" % other_port, 1))
        try:
            for b in ("b1", "b2", "b3"):
                lb2.wait_state("src", b, "up")
            self.assertEqual(self.mapping(other_port), first)
        finally:
            lb2.stop()

        dead = self.redis[2]
        dead_port = dead.port
        dead.kill9()
        self.lb.wait_state("src", "b3", "down", timeout=5)
        after = self.mapping()
        moved = [s for s in SOURCES if after[s] != first[s]]
        on_dead = [s for s in SOURCES if first[s] == dead_port]
        print("\nsource: %d of %d clients were on the killed backend; %d moved, "
              "%d of the others moved" % (len(on_dead), len(SOURCES), len(moved),
                                          len(set(moved) - set(on_dead))))
        self.assertEqual(sorted(moved), sorted(on_dead))
        self.assertNotIn(dead_port, after.values())

        # Back up on the same port: every client returns to its broker.
        self.redis[2] = RedisServer(port=dead_port)
        self.addCleanup(self.redis[2].stop)
        self.lb.wait_state("src", "b3", "up", timeout=5)
        self.assertEqual(self.mapping(), first)


# ---- leastconn and random (power of two choices) ------------------------

class LoadAware(ThreeRedisCase):

    def start(self, balance):
        port = free_port()
        lb = Mqlb(pool("p", port, [(r.port, "") for r in self.redis],
                       "balance = %s\nhealth_check = redis\n"
                       "check_interval = 200ms\ncheck_timeout = 200ms\n"
                       "rise = 1\nfall = 1\n" % balance))
        self.addCleanup(lb.stop)
        for b in ("b1", "b2", "b3"):
            lb.wait_state("p", b, "up")
        return lb, port

    def load_b1(self, lb, port, n):
        """Hold <n> sessions on b1 (the others drained meanwhile)."""
        held = Held()
        self.addCleanup(held.close)
        for b in ("b2", "b3"):
            self.assertEqual(lb.http("POST", "/pools/p/backends/%s/drain" % b)[0], 200)
        for _ in range(n):
            self.assertEqual(held.open(port).backend_port, self.redis[0].port)
        for b in ("b2", "b3"):
            self.assertEqual(lb.http("POST", "/pools/p/backends/%s/enable" % b)[0], 200)
        lb.wait_state("p", "b2", "up")
        lb.wait_state("p", "b3", "up")
        return held

    def active(self, lb):
        return [lb.backend("p", b)["active"] for b in ("b1", "b2", "b3")]

    def test_leastconn_sends_new_sessions_to_the_less_loaded(self):
        lb, port = self.start("leastconn")
        held = self.load_b1(lb, port, 4)
        wait_until(lambda: self.active(lb) == [4, 0, 0], 5, what="4/0/0 active")
        new = [held.open(port).backend_port for _ in range(8)]
        self.assertNotIn(self.redis[0].port, new)
        self.assertEqual(Counter(new), Counter({self.redis[1].port: 4,
                                                self.redis[2].port: 4}))
        self.assertEqual(self.active(lb), [4, 4, 4])
        # All level now: the next three go one to each (ties round-robin).
        more = [held.open(port).backend_port for _ in range(3)]
        self.assertEqual(sorted(more), sorted(r.port for r in self.redis))

    def test_random_prefers_the_less_loaded_and_never_picks_a_down_backend(self):
        lb, port = self.start("random")
        held = self.load_b1(lb, port, 6)
        # Two distinct candidates: b1 (6 sessions) loses to either other
        # while that one holds fewer than 6.
        new = [held.open(port).backend_port for _ in range(6)]
        self.assertNotIn(self.redis[0].port, new)
        held.close()
        wait_until(lambda: self.active(lb) == [0, 0, 0], 5, what="sessions closed")

        # b2 stops answering (its checks time out): never chosen again.
        self.redis[1].proc.signal(signal.SIGSTOP)
        try:
            lb.wait_state("p", "b2", "down", timeout=5)
            total = lb.backend("p", "b2")["total"]
            seen = Counter(redis_port_of(port) for _ in range(60))
            self.assertEqual(set(seen), {self.redis[0].port, self.redis[2].port})
            self.assertEqual(lb.backend("p", "b2")["total"], total)
        finally:
            self.redis[1].proc.signal(signal.SIGCONT)
        lb.wait_state("p", "b2", "up", timeout=5)


# ---- slow start ---------------------------------------------------------

class SlowStart(unittest.TestCase):
    def test_recovered_backend_share_ramps_up(self):
        r1 = RedisServer()
        self.addCleanup(r1.stop)
        late_port = free_port()
        port = free_port()
        lb = Mqlb(pool("p", port, [(r1.port, "weight=100"), (late_port, "weight=100")],
                       "health_check = redis\ncheck_interval = 200ms\n"
                       "check_timeout = 200ms\nrise = 1\nfall = 1\nslow_start = 4s\n"))
        self.addCleanup(lb.stop)
        lb.wait_state("p", "b1", "up")
        lb.wait_state("p", "b2", "down")
        r2 = RedisServer(port=late_port)
        self.addCleanup(r2.stop)
        lb.wait_state("p", "b2", "up", timeout=5)
        t0 = time.monotonic()
        early = Counter(redis_port_of(port) for _ in range(40))
        early_s = time.monotonic() - t0
        # Right after recovery its weight is a sliver of b1's 100: a few
        # sessions at most, where full weight would take 20 of 40.
        self.assertLessEqual(early[late_port], 10, early)

        shares = []

        def even():
            seen = Counter(redis_port_of(port) for _ in range(20))
            shares.append((round(time.monotonic() - t0, 1), seen[late_port]))
            return abs(seen[late_port] - seen[r1.port]) <= 2
        wait_until(even, 9, interval=0.2, what="an even split after the ramp")
        print("\nslow start: %d of 40 sessions to the recovered backend in the "
              "first %.2fs; then (s, of 20): %s" % (early[late_port], early_s, shares))
        # A ramp, not a step: some samples on the way were in between.
        self.assertTrue(any(2 <= n <= 8 for _, n in shares), shares)
        self.assertGreaterEqual(time.monotonic() - t0, 2.0, "even too soon: %s" % shares)


# ---- mqtt-client-id with real mosquitto brokers -------------------------

def mqtt_connect(port, client_id, source, clean=False, timeout=5.0):
    """A bare MQTT 3.1.1 CONNECT from <source>; returns CONNACK's
    (session_present, return_code), then disconnects politely."""
    cid = client_id.encode()
    var = b"\x00\x04MQTT\x04" + bytes([0x02 if clean else 0x00]) + struct.pack(">H", 60)
    body = var + struct.pack(">H", len(cid)) + cid
    with socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                  source_address=(source, 0)) as s:
        s.sendall(bytes([0x10, len(body)]) + body)
        ack = b""
        while len(ack) < 4:
            chunk = s.recv(4 - len(ack))
            if not chunk:
                raise ConnectionError("closed before CONNACK")
            ack += chunk
        s.sendall(b"\xe0\x00")
    if ack[0] != 0x20:
        raise ValueError("not a CONNACK: %r" % ack)
    return ack[2] & 1, ack[3]


def run_all(argvs, timeout):
    """Run the commands at once; return [(rc, stdout)] in order."""
    procs = [subprocess.Popen(a, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL) for a in argvs]
    out = []
    for p in procs:
        try:
            data, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            data, _ = p.communicate()
        out.append((p.returncode, data.decode("utf-8", "replace")))
    return out


class MqttClientId(unittest.TestCase):
    def setUp(self):
        self.brokers = [Mosquitto() for _ in range(3)]
        for m in self.brokers:
            self.addCleanup(m.stop)
        self.port = free_port()
        self.lb = Mqlb(pool("mqtt", self.port, [(m.port, "") for m in self.brokers],
                            "balance = mqtt-client-id\nhealth_check = mqtt\n"
                            "check_interval = 500ms\ncheck_timeout = 400ms\nconnect_timeout = 3s\n"))
        self.addCleanup(self.lb.stop)
        for b in ("b1", "b2", "b3"):
            self.lb.wait_state("mqtt", b, "up")

    def holder(self, cid):
        """The one broker that has seen <cid> connect (its log is
        unbuffered stderr, but give it a moment)."""
        wait_until(lambda: any(cid in m.clients_seen() for m in self.brokers), 5,
                   what="a broker logging %s" % cid)
        held = [m for m in self.brokers if cid in m.clients_seen()]
        self.assertEqual(len(held), 1, "%s seen by %d brokers" % (cid, len(held)))
        return held[0]

    def test_same_id_same_broker_from_any_address_and_queued_qos1_delivered(self):
        ids = ["sensor-%d" % i for i in range(9)]
        sub = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.port), "-c", "-q", "1"]
        # Persistent sessions with a QoS 1 subscription, then offline.
        for rc, out in run_all([sub + ["-i", cid, "-t", "t/" + cid, "-E", "-W", "10"]
                                for cid in ids], 15):
            self.assertEqual(rc, 0, out)
        holders = {cid: self.holder(cid) for cid in ids}
        self.assertGreaterEqual(len({m.port for m in holders.values()}), 2,
                                "9 ids should spread over the brokers")

        # Back through mqlb from other addresses: always the broker that
        # holds the session (CONNACK says "session present").
        for k, src in enumerate(("127.0.0.21", "127.0.0.22", "127.0.0.23")):
            for cid in ids:
                self.assertEqual(mqtt_connect(self.port, cid, src), (1, 0),
                                 "%s from %s" % (cid, src))
        for cid in ids:
            self.holder(cid)        # still no other broker saw it

        # QoS 1 messages published to the holding broker while offline...
        pubs = []
        for cid in ids:
            pubs.append(["mosquitto_pub", "-h", "127.0.0.1", "-p",
                         str(holders[cid].port), "-i", "pub-" + cid, "-q", "1",
                         "-t", "t/" + cid, "-m", "queued-1-" + cid])
            pubs.append(["mosquitto_pub", "-h", "127.0.0.1", "-p",
                         str(holders[cid].port), "-i", "pub2-" + cid, "-q", "1",
                         "-t", "t/" + cid, "-m", "queued-2-" + cid])
        for rc, out in run_all(pubs, 10):
            self.assertEqual(rc, 0, out)
        # ...are delivered on reconnect through mqlb, from a new address.
        got = run_all([sub + ["-A", "127.0.0.31", "-i", cid, "-t", "t/" + cid,
                              "-C", "2", "-W", "10"] for cid in ids], 15)
        for cid, (rc, out) in zip(ids, got):
            self.assertEqual(rc, 0, "%s: %s" % (cid, out))
            self.assertEqual(sorted(out.split()), ["queued-1-" + cid, "queued-2-" + cid])

    def test_not_mqtt_first_packet_is_closed_and_logged(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        try:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            self.assertTrue(closed_by_peer(s, 5))
        finally:
            s.close()
        self.lb.wait_output("not a valid MQTT CONNECT", timeout=5)


# ---- on_backend_down ----------------------------------------------------

class OnBackendDown(unittest.TestCase):
    INTERVAL, TIMEOUT, FALL = 0.2, 0.2, 2

    def run_case(self, mode):
        redis = [RedisServer() for _ in range(2)]
        for r in redis:
            self.addCleanup(r.stop)
        port = free_port()
        lb = Mqlb(pool("p", port, [(r.port, "") for r in redis],
                       "health_check = redis\ncheck_interval = 200ms\n"
                       "check_timeout = 200ms\nfall = %d\nrise = 1\n"
                       "on_backend_down = %s\n" % (self.FALL, mode)))
        self.addCleanup(lb.stop)
        lb.wait_state("p", "b1", "up")
        lb.wait_state("p", "b2", "up")
        held = Held()
        self.addCleanup(held.close)
        for _ in range(6):
            held.open(port)
        victims = [c for c in held.clients if c.backend_port == redis[0].port]
        others = [c for c in held.clients if c.backend_port == redis[1].port]
        self.assertEqual((len(victims), len(others)), (3, 3))

        # Stopped, not killed: its TCP connections stay open, only the
        # checks time out. mqlb alone can end those sessions.
        redis[0].proc.signal(signal.SIGSTOP)
        self.addCleanup(redis[0].proc.signal, signal.SIGCONT)
        t0 = time.monotonic()
        bound = self.FALL * self.INTERVAL + self.TIMEOUT + 1.5    # + jitter, margin
        return lb, redis, victims, others, t0, bound

    def test_close_ends_sessions_of_a_dead_broker_within_fall_interval_timeout(self):
        lb, redis, victims, others, t0, bound = self.run_case("close")
        for c in victims:
            self.assertTrue(closed_by_peer(c.sock, bound - (time.monotonic() - t0)),
                            "session on the stopped broker still open after %.1fs" % bound)
        took = time.monotonic() - t0
        print("\non_backend_down = close: sessions ended %.2fs after the broker "
              "stopped (bound %.1fs)" % (took, bound))
        self.assertEqual(lb.backend("p", "b1")["state"], "down")
        for c in others:
            self.assertEqual(c.command("PING"), "PONG")
        wait_until(lambda: lb.backend("p", "b1")["active"] == 0, 3, what="b1 active 0")

    def test_keep_leaves_sessions_of_a_dead_broker_open(self):
        lb, redis, victims, others, t0, bound = self.run_case("keep")
        lb.wait_state("p", "b1", "down", timeout=bound)
        # A close would come with the down state; give it a full second.
        deadline = time.monotonic() + 1.0
        for c in victims:
            self.assertFalse(closed_by_peer(c.sock, max(0.0, deadline - time.monotonic())))
        self.assertEqual(lb.backend("p", "b1")["active"], 3)
        redis[0].proc.signal(signal.SIGCONT)
        for c in victims + others:
            self.assertEqual(c.command("PING"), "PONG")


# ---- PROXY protocol, read by nginx ----------------------------------------

NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"


class Nginx:
    """nginx in the foreground, one process, its own prefix: a stream
    server that answers the PROXY header's source address and closes."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mqlb-nginx-")
        conf = os.path.join(self.dir, "nginx.conf")
        load = ("load_module %s;\n" % NGINX_STREAM_MODULE
                if os.path.exists(NGINX_STREAM_MODULE) else "")
        with open(conf, "w") as f:
            f.write(load + "daemon off;\nmaster_process off;\npid %s/nginx.pid;\n"
                    "error_log %s/error.log info;\nevents { worker_connections 64; }\n"
                    "stream { server { listen 127.0.0.1:%d proxy_protocol; "
                    "return \"$proxy_protocol_addr:$proxy_protocol_port\\n\"; } }\n"
                    % (self.dir, self.dir, self.port))
        self.proc = Proc(["nginx", "-p", self.dir, "-c", conf, "-e",
                          os.path.join(self.dir, "error.log")], "nginx-%d" % self.port)
        wait_port(self.port)

    def stop(self):
        self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@unittest.skipUnless(shutil.which("nginx"), "nginx not installed (scripts/deps.sh)")
class ProxyProtocol(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.nginx = Nginx()

    @classmethod
    def tearDownClass(cls):
        cls.nginx.stop()

    def through(self, version):
        port = free_port()
        lb = Mqlb(pool("pp", port, [(self.nginx.port, "")],
                       "health_check = none\nproxy_protocol = %s\n" % version))
        self.addCleanup(lb.stop)
        wait_port(port)
        s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                     source_address=("127.0.0.7", 0))
        try:
            client_port = s.getsockname()[1]
            f = s.makefile("rb")
            line = f.readline().decode().strip()
            f.close()
        finally:
            s.close()
        self.assertEqual(line, "127.0.0.7:%d" % client_port)

    def test_v1_header_read_by_nginx_shows_the_true_client(self):
        self.through("v1")

    def test_v2_header_read_by_nginx_shows_the_true_client(self):
        self.through("v2")


# ---- allow list, per-address limit, keepalive ------------------------------

class Admission(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer()

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()

    def start(self, extra):
        port = free_port()
        lb = Mqlb(pool("p", port, [(self.redis.port, "")],
                       "health_check = redis\ncheck_interval = 500ms\ncheck_timeout = 300ms\n" + extra))
        self.addCleanup(lb.stop)
        lb.wait_state("p", "b1", "up")
        return lb, port

    def test_allow_refuses_a_client_outside_the_list_and_counts_it(self):
        lb, port = self.start("allow = 127.0.0.1/32, ::1/128\n")
        self.assertTrue(refused_without_data(port, "127.0.0.9"))
        wait_until(lambda: pool_status(lb, "p")["rejected"] == 1, 5,
                   what="rejected = 1")
        self.assertTrue(ping(port, "127.0.0.1"))
        self.assertEqual(pool_status(lb, "p")["rejected"], 1)
        lb.wait_output("client 127.0.0.9")

    def test_max_conns_per_source(self):
        lb, port = self.start("max_conns_per_source = 3\n")
        held = Held()
        self.addCleanup(held.close)
        # Three sessions from one address (on whichever workers accept
        # them: the count is shared).
        for _ in range(3):
            self.assertEqual(held.open(port, source="127.0.0.11").command("PING"), "PONG")
        self.assertTrue(refused_without_data(port, "127.0.0.11"))
        self.assertEqual(pool_status(lb, "p")["rejected"], 1)
        # Another address has its own share.
        self.assertTrue(ping(port, "127.0.0.12"))
        # That session's slot comes back when mqlb has seen it end, which
        # may be after the client's close returned (a session leaves
        # GET /sessions, listed on its worker's thread, with its slot).
        wait_until(lambda: len(lb.sessions("p")) == 3, 5, what="3 sessions")
        for _ in range(3):
            held.open(port, source="127.0.0.12")
        self.assertTrue(refused_without_data(port, "127.0.0.12"))
        self.assertEqual(pool_status(lb, "p")["rejected"], 2)
        # One session ends: that address may hold a session again, and
        # is at its limit once more.
        held.clients.pop(0).close()

        def reopen():
            return held.open(port, source="127.0.0.11").command("PING") == "PONG"
        wait_until(reopen, 5, interval=0.05, what="a session after one closed")
        self.assertTrue(refused_without_data(port, "127.0.0.11"))
        lb.wait_output("max_conns_per_source reached")
        wait_until(lambda: lb.backend("p", "b1")["active"] == 6, 5, what="6 active")

    def test_tcp_keepalive_on_both_sockets(self):
        echo = EchoServer()
        self.addCleanup(echo.stop)
        for mode, want in (("5s:2s:3", True), ("off", False)):
            port = free_port()
            lb = Mqlb(pool("ka", port, [(echo.port, "")],
                           "health_check = none\ntcp_keepalive = %s\n" % mode))
            try:
                wait_port(port)
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(b"x")
                    self.assertEqual(s.recv(1), b"x")
                    # mqlb's accepted socket has the listen port as its local
                    # port; its backend socket has the echo port as its peer.
                    client = wait_until(lambda: ss_timers("sport = :%d" % port), 5,
                                        what="mqlb's client socket in ss")
                    backend = wait_until(lambda: ss_timers("dport = :%d" % echo.port), 5,
                                         what="mqlb's backend socket in ss")
                    self.assertEqual((len(client), len(backend)), (1, 1))
                    for kind, secs in client + backend:
                        if want:
                            self.assertEqual(kind, "keepalive")
                            self.assertLessEqual(secs, 5.0, "TCP_KEEPIDLE is 5s")
                        else:
                            self.assertNotEqual(kind, "keepalive")
            finally:
                lb.stop()


def ss_timers(filt):
    """[(timer kind or "", seconds)] for each established socket ss shows
    for the filter, e.g. ("keepalive", 4.9)."""
    out = subprocess.run(["ss", "-tnoH", "state", "established", "( %s )" % filt],
                         capture_output=True, text=True, timeout=5).stdout
    found = []
    for line in out.splitlines():
        if not line.strip():
            continue
        m = re.search(r"timer:\((\w+),(?:(\d+)min)?(?:([\d.]+)(sec|ms))?", line)
        if m is None:
            found.append(("", 0.0))
            continue
        secs = float(m.group(2) or 0) * 60
        if m.group(3):
            secs += float(m.group(3)) / (1000 if m.group(4) == "ms" else 1)
        found.append((m.group(1), secs))
    return found

if __name__ == "__main__":
    unittest.main()
