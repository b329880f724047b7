"""Issue 17: upgrades without a disconnect. `mqlb --takeover` receives the
listening sockets, every established plain session and the backends'
runtime state from the running instance over its control socket; no
client or broker sees a disconnect, a refused connect or a changed byte.
Also: state_file across a full restart, a successor killed halfway, bad
input on the control socket.

Scaled down to keep each test in seconds on a shared 2-core machine: 200
redis sessions (100 SUBSCRIBE, 100 request/response), 20 MQTT QoS 1
subscribers, 4 parallel 32 MiB streams (the issue says 1,000 sessions and
8 streams; `make bench` moves 10,000)."""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from certs import CA
from harness import (MQLB_BIN, EchoServer, EchoStream, Mosquitto, Mqlb, Proc, RedisClient,
                     RedisServer, check_sanitizers, free_port, redis_encode, redis_read,
                     wait_until)

HANDOVER_MAGIC = 0x4D51484F
HANDOVER_HELLO, HANDOVER_ERROR = 1, 2


def control_path():
    d = tempfile.mkdtemp(prefix="mqlb-ctl-")
    return os.path.join(d, "mqlb.sock")


class ConnectLoop(threading.Thread):
    """New sessions at ~20/s, each a PING through mqlb; counts failures."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop_ev = threading.Event()
        self.ok = 0
        self.failed = []

    def run(self):
        deadline = time.monotonic() + 60
        while not self.stop_ev.is_set() and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    s.sendall(redis_encode("PING"))
                    f = s.makefile("rb")
                    if redis_read(f) != "PONG":
                        raise ValueError("no PONG")
                    f.close()
                self.ok += 1
            except (OSError, ValueError) as e:
                self.failed.append(repr(e))
            self.stop_ev.wait(0.05)


def mqtt_publish_qos1(port, cid, topic, payloads):
    """A bare MQTT 3.1.1 client: CONNECT, PUBLISH each payload at QoS 1
    waiting for its PUBACK, DISCONNECT."""
    def read_packet(s):
        head = s.recv(2)
        if len(head) < 2:
            raise ConnectionError("closed")
        n = head[1]
        body = b""
        while len(body) < n:
            chunk = s.recv(n - len(body))
            if not chunk:
                raise ConnectionError("closed")
            body += chunk
        return head[0], body

    c = cid.encode()
    var = b"\x00\x04MQTT\x04\x02" + struct.pack(">H", 60)
    body = var + struct.pack(">H", len(c)) + c
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(bytes([0x10, len(body)]) + body)
        t, b = read_packet(s)
        if t != 0x20 or b[1] != 0:
            raise ValueError("CONNACK %r" % b)
        for i, p in enumerate(payloads, 1):
            tp = topic.encode()
            pkt = struct.pack(">H", len(tp)) + tp + struct.pack(">H", i) + p.encode()
            s.sendall(bytes([0x32, len(pkt)]) + pkt)
            t, b = read_packet(s)
            if t != 0x40 or struct.unpack(">H", b)[0] != i:
                raise ValueError("no PUBACK for %d" % i)
        s.sendall(b"\xe0\x00")


class TakeoverCase(unittest.TestCase):
    """Helpers: an mqlb with a control socket, and a takeover of it."""

    def start_lb(self, pools, extra="", workers=2):
        self.ctl = control_path()
        lb = Mqlb(pools, global_extra="control_socket = %s\n%s" % (self.ctl, extra),
                  workers=workers, check=False)
        self.addCleanup(self.stop_lb, lb)
        try:
            lb.wait_ready(timeout=20)     # a loaded machine can be slow
        except AssertionError:
            raise AssertionError("mqlb did not start: %s" % lb.output())
        wait_until(lambda: os.path.exists(self.ctl), 5, what="control socket")
        return lb

    def stop_lb(self, lb):
        lb.stop()
        for p in getattr(lb, "old_procs", []):
            p.stop()
            check_sanitizers(p.output())

    def takeover(self, lb, env=None, wait=True):
        """Start a successor on lb's config; the lb object then drives the
        new process (the old one is kept in lb.old_procs)."""
        old = lb.proc
        new = Proc([MQLB_BIN, "-c", lb.path, "--takeover"], "mqlb-new",
                   env=dict(os.environ, **(env or {})))
        if not wait:
            return new
        wait_until(lambda: "takeover: " in new.output() and " adopted" in new.output()
                   or not new.alive(), 30, what="the successor to commit")
        self.assertTrue(new.alive(), new.output())
        lb.old_procs = getattr(lb, "old_procs", []) + [old]
        lb.proc = new
        return old


class Takeover(TakeoverCase):
    def test_sessions_streams_and_mqtt_survive_with_zero_disconnects(self):
        redis = [RedisServer() for _ in range(2)]
        echo = EchoServer()
        mosq = Mosquitto()
        for r in redis:
            self.addCleanup(r.stop)
        self.addCleanup(echo.stop)
        self.addCleanup(mosq.stop)
        rport, eport, mport = free_port(), free_port(), free_port()
        pools = ("[pool redis]\nlisten = 127.0.0.1:%d\nhealth_check = redis\n"
                 "check_interval = 500ms\nbackend = r1 127.0.0.1:%d\nbackend = r2 127.0.0.1:%d\n"
                 "[pool echo]\nlisten = 127.0.0.1:%d\nbackend = e1 127.0.0.1:%d\n"
                 "[pool mqtt]\nlisten = 127.0.0.1:%d\nbackend = m1 127.0.0.1:%d\n"
                 % (rport, redis[0].port, redis[1].port, eport, echo.port, mport, mosq.port))
        lb = self.start_lb(pools)

        # 100 subscribers and 100 request/response clients, named, so that
        # the brokers can tell us they never saw them go.
        subs, reqs = [], []
        for i in range(100):
            c = RedisClient(rport, timeout=15)
            self.assertEqual(c.command("CLIENT", "SETNAME", "sub-%d" % i), "OK")
            self.assertEqual(c.command("SUBSCRIBE", "news"), ["subscribe", "news", 1])
            subs.append(c)
            c = RedisClient(rport, timeout=15)
            self.assertEqual(c.command("CLIENT", "SETNAME", "req-%d" % i), "OK")
            self.assertEqual(c.command("SET", "k%d" % i, "v%d" % i), "OK")
            reqs.append(c)
        for c in subs + reqs:
            self.addCleanup(c.close)

        def client_ids():
            ids = {}
            for r in redis:
                for line in r.command("CLIENT", "LIST").splitlines():
                    f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                    if f.get("name", "").startswith(("sub-", "req-")):
                        ids[f["name"]] = f["id"]
            return ids
        ids_before = client_ids()
        self.assertEqual(len(ids_before), 200)

        # MQTT QoS 1 subscribers through mqlb, each to read 10 messages.
        sub_argv = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mport), "-q", "1",
                    "-t", "t/all", "-C", "10", "-W", "60"]
        msubs = [subprocess.Popen(sub_argv + ["-i", "msub-%d" % i], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                 for i in range(20)]
        for p in msubs:
            self.addCleanup(p.kill)
        wait_until(lambda: all(mosq.clients_seen().count("msub-%d" % i) == 1 for i in range(20)), 15,
                   what="20 MQTT subscribers")
        # mosquitto logs the CONNECT before it has the subscription: make
        # sure every subscriber has subscribed before the first publish.
        wait_until(lambda: len(re.findall(r"msub-\d+ 1 t/all", mosq.proc.output())) >= 20,
                   15, what="20 SUBSCRIBEs")

        # Traffic in flight across the takeover: 4 streams of 32 MiB, and
        # messages published but not yet read by anyone.
        # 32 MiB each, 256 KiB blocks paced over about 4 s
        streams = [EchoStream(eport, 32 << 20, 256 * 1024, 4.0 / 128) for _ in range(4)]
        for s in streams:
            s.start()
        mqtt_publish_qos1(mport, "pub-1", "t/all", ["m%d" % i for i in range(5)])
        pub = RedisClient(rport)
        self.addCleanup(pub.close)
        for i in range(5):
            self.assertEqual(pub.command("PUBLISH", "news", "before-%d" % i), 100)
        wait_until(lambda: sum(s.nsent for s in streams) > (16 << 20), 20,
                   what="streams under way")
        before = lb.status()

        t0 = time.monotonic()
        old = self.takeover(lb)
        wait_until(lambda: not old.alive(), 2.0, what="the old process to exit")
        took = time.monotonic() - t0
        self.assertEqual(old.p.returncode, 0, old.output())
        out = lb.output()
        m = re.search(r"takeover: (\d+) sessions adopted \((\d+) declined\)", out)
        self.assertIsNotNone(m, out)
        moved = int(m.group(1))
        self.assertEqual(m.group(2), "0", out)
        per = re.search(r"frozen per worker: ([\d ]+)\)", old.output())
        self.assertIsNotNone(per, old.output())
        self.assertTrue(all(int(n) > 0 for n in per.group(1).split()),
                        "sessions on every worker: %s" % per.group(1))
        self.assertGreaterEqual(moved, 200 + 20)

        for i in range(5):
            self.assertEqual(pub.command("PUBLISH", "news", "after-%d" % i), 100)
        mqtt_publish_qos1(mport, "pub-2", "t/all", ["m%d" % i for i in range(5, 10)])
        for i, c in enumerate(subs):
            got = [redis_read(c.f) for _ in range(10)]
            self.assertEqual([g[2] for g in got],
                             ["before-%d" % k for k in range(5)] + ["after-%d" % k for k in range(5)],
                             "subscriber %d" % i)
        for i, c in enumerate(reqs):
            self.assertEqual(c.command("GET", "k%d" % i), "v%d" % i)
        for s in streams:
            s.join(60)
        for s in streams:
            self.assertIsNone(s.error)
            self.assertEqual(s.ngot, 32 << 20)
            self.assertEqual(s.sent.hexdigest(), s.got.hexdigest())
        for i, p in enumerate(msubs):
            out_i, _ = p.communicate(timeout=30)
            self.assertEqual(p.returncode, 0, out_i)
            self.assertEqual(out_i.decode().split(), ["m%d" % k for k in range(10)],
                             "msub-%d: every message once, in order" % i)
            self.assertEqual(mosq.clients_seen().count("msub-%d" % i), 1, "msub-%d reconnected" % i)
        self.assertEqual(client_ids(), ids_before, "a broker saw a client go")

        # Counters go on in the new process.
        after = lb.status()
        for pb, pa in zip(before["pools"], after["pools"]):
            for bb, ba in zip(pb["backends"], pa["backends"]):
                self.assertGreaterEqual(ba["total"], bb["total"], ba["name"])
                self.assertGreaterEqual(ba["bytes_in"], bb["bytes_in"], ba["name"])
        print("\ntakeover: %d sessions moved, old process gone %.2fs after the start; "
              "4 x 32 MiB verified" % (moved, took))

    def test_connect_loop_sees_no_refused_or_failed_connect(self):
        r = RedisServer()
        self.addCleanup(r.stop)
        port = free_port()
        lb = self.start_lb("[pool redis]\nlisten = 127.0.0.1:%d\nbackend = r1 127.0.0.1:%d\n"
                           % (port, r.port))
        loop = ConnectLoop(port)
        loop.start()
        wait_until(lambda: loop.ok >= 10, 10, what="connects before")
        old = self.takeover(lb)
        wait_until(lambda: not old.alive(), 5, what="old exit")
        n = loop.ok
        wait_until(lambda: loop.ok >= n + 10, 10, what="connects after")
        loop.stop_ev.set()
        loop.join(10)
        self.assertEqual(loop.failed, [])

    def test_runtime_state_survives_takeover(self):
        echoes = [EchoServer() for _ in range(3)]
        for e in echoes:
            self.addCleanup(e.stop)
        port, dead = free_port(), free_port()
        pools = ("[pool p]\nlisten = 127.0.0.1:%d\nhealth_check = none\nmax_fails = 1\n"
                 "retries = 3\n"
                 % port + "".join("backend = b%d 127.0.0.1:%d\n" % (i + 1, e.port)
                                  for i, e in enumerate(echoes))
                 + "backend = b4 127.0.0.1:%d\n" % dead)
        lb = self.start_lb(pools, workers=1)
        for path in ("/pools/p/backends/b1/drain", "/pools/p/backends/b2/disable",
                     "/pools/p/backends/b3/weight?value=7"):
            self.assertEqual(lb.http("POST", path)[0], 200, path)
        # a backend added at runtime goes across too
        code, body, _ = lb.http("POST", "/pools/p/backends", body=json.dumps(
            {"name": "b5", "address": "127.0.0.1:%d" % echoes[0].port, "weight": 3}))
        self.assertEqual(code, 201, body)
        # b4 refuses: passive failures take it down (no checks bring it up).
        for _ in range(8):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"x")
                s.recv(1)
            if lb.backend("p", "b4")["state"] == "down":
                break
        names = ("b1", "b2", "b3", "b4", "b5")
        want = {n: (lb.backend("p", n)["state"], lb.backend("p", n)["weight"])
                for n in names}
        self.assertEqual(want, {"b1": ("drain", 1), "b2": ("disabled", 1),
                                "b3": ("up", 7), "b4": ("down", 1), "b5": ("up", 3)})
        old = self.takeover(lb)
        wait_until(lambda: not old.alive(), 5, what="old exit")
        got = {n: (lb.backend("p", n)["state"], lb.backend("p", n)["weight"])
               for n in names}
        self.assertEqual(got, want)
        # `mqlb -s` on the same control socket now reaches the successor
        r = subprocess.run([MQLB_BIN, "-s", "status", "-c", lb.path], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("mqlb running, pid %d," % lb.proc.pid, r.stdout)

    def test_state_file_keeps_admin_changes_across_a_restart(self):
        echoes = [EchoServer() for _ in range(3)]
        for e in echoes:
            self.addCleanup(e.stop)
        port = free_port()
        state = os.path.join(tempfile.mkdtemp(prefix="mqlb-state-"), "state")
        with open(state, "w") as f:
            f.write("backend p gone admin=drain\nbackend nopool b1 admin=drain\n")
        pools = ("[pool p]\nlisten = 127.0.0.1:%d\nhealth_check = none\n" % port
                 + "".join("backend = b%d 127.0.0.1:%d\n" % (i + 1, e.port)
                           for i, e in enumerate(echoes)))
        lb = self.start_lb(pools, extra="state_file = %s\n" % state)
        lb.wait_output("has no backend gone")
        lb.wait_output("no pool nopool")
        for path in ("/pools/p/backends/b1/drain", "/pools/p/backends/b2/disable",
                     "/pools/p/backends/b3/weight?value=7"):
            self.assertEqual(lb.http("POST", path)[0], 200, path)
        code, body, _ = lb.http("POST", "/pools/p/backends", body=json.dumps(
            {"name": "b9", "address": "127.0.0.1:%d" % echoes[1].port, "weight": 2}))
        self.assertEqual(code, 201, body)
        with open(state) as f:
            text = f.read()
        self.assertIn("add p b9 127.0.0.1:%d weight=2" % echoes[1].port, text)
        self.assertIn("backend p b1 admin=drain", text)
        self.assertIn("backend p b3 weight=7 file_weight=1 admin=ready", text)
        lb.proc.stop()
        self.assertFalse(os.path.exists(self.ctl), "the control socket goes at exit")
        lb.proc.start()
        lb.wait_ready()
        got = {n: (lb.backend("p", n)["state"], lb.backend("p", n)["weight"])
               for n in ("b1", "b2", "b3", "b9")}
        self.assertEqual(got, {"b1": ("drain", 1), "b2": ("disabled", 1), "b3": ("up", 7),
                               "b9": ("up", 2)})
        # enable goes into the file too
        self.assertEqual(lb.http("POST", "/pools/p/backends/b1/enable")[0], 200)
        with open(state) as f:
            self.assertNotIn("b1", f.read())


class TakeoverFailures(TakeoverCase):
    def echo_setup(self, n):
        echo = EchoServer()
        self.addCleanup(echo.stop)
        port = free_port()
        lb = self.start_lb("[pool e]\nlisten = 127.0.0.1:%d\nbackend = e1 127.0.0.1:%d\n"
                           % (port, echo.port))
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            self.addCleanup(s.close)
            socks.append(s)
        for s in socks:
            s.sendall(b"hi")
            self.assertEqual(s.recv(2), b"hi")
        return lb, port, socks

    def assert_all_echo(self, socks, what):
        for i, s in enumerate(socks):
            s.sendall(what)
            got = b""
            while len(got) < len(what):
                chunk = s.recv(len(what) - len(got))
                self.assertTrue(chunk, "session %d closed" % i)
                got += chunk
            self.assertEqual(got, what)

    def test_successor_killed_halfway_leaves_the_old_serving(self):
        lb, port, socks = self.echo_setup(20)
        new = self.takeover(lb, env={"MQLB_TEST_TAKEOVER_DIE_AFTER": "5"}, wait=False)
        wait_until(lambda: not new.alive(), 15, what="the successor to die")
        self.assertEqual(new.p.returncode, -signal.SIGKILL, new.output())
        lb.wait_output("still serving every session", timeout=10)
        self.assertTrue(lb.alive())
        self.assert_all_echo(socks, b"still here")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"new")
            self.assertEqual(s.recv(3), b"new")
        # and a takeover after that goes through
        old = self.takeover(lb)
        wait_until(lambda: not old.alive(), 5, what="old exit")
        self.assert_all_echo(socks, b"moved after all")

    def raw_exchange(self, payload, as_user=None):
        """Send <payload> on the control socket; what comes back."""
        code = ("import socket,sys\n"
                "s=socket.socket(socket.AF_UNIX)\ns.settimeout(8)\n"
                "s.connect(sys.argv[1])\n"
                "out=b''\n"
                "try:\n"
                "    s.sendall(bytes.fromhex(sys.argv[2]))\n"
                "    while True:\n"
                "        d=s.recv(4096)\n"
                "        if not d: break\n"
                "        out+=d\n"
                "except OSError as e: out+=b'ERR'+str(e).encode()\n"
                "sys.stdout.write(out.hex())\n")
        pre = None
        if as_user is not None:
            def pre():
                os.setgid(as_user)
                os.setuid(as_user)
        r = subprocess.run(["python3", "-c", code, self.ctl, payload.hex()],
                           capture_output=True, timeout=20, preexec_fn=pre)
        self.assertEqual(r.returncode, 0, r.stderr)
        return bytes.fromhex(r.stdout.decode())

    def test_bad_control_input_is_refused_and_the_old_keeps_serving(self):
        lb, port, socks = self.echo_setup(3)
        # a version this build does not speak
        reply = self.raw_exchange(struct.pack(">IHHII", HANDOVER_MAGIC, 99, HANDOVER_HELLO,
                                              4, 1234))
        self.assertGreaterEqual(len(reply), 12, reply)
        magic, version, typ, length = struct.unpack(">IHHI", reply[:12])
        self.assertEqual((magic, typ), (HANDOVER_MAGIC, HANDOVER_ERROR))
        self.assertIn(b"handover version 99 is not supported", reply[12:])
        # garbage
        reply = self.raw_exchange(b"GET / HTTP/1.0\r\n\r\n")
        self.assertIn(b"not a handover frame", reply)
        # a frame that is not HELLO
        reply = self.raw_exchange(struct.pack(">IHHI", HANDOVER_MAGIC, 1, 9, 0))
        self.assertIn(b"expected HELLO", reply)
        # another user: refused at accept, nothing said
        os.chmod(os.path.dirname(self.ctl), 0o755)
        os.chmod(self.ctl, 0o666)
        reply = self.raw_exchange(struct.pack(">IHHII", HANDOVER_MAGIC, 1, HANDOVER_HELLO,
                                              4, 1), as_user=65534)
        self.assertFalse(reply.startswith(struct.pack(">I", HANDOVER_MAGIC)), reply)
        lb.wait_output("of uid 65534", timeout=5)
        self.assertTrue(lb.alive())
        self.assert_all_echo(socks, b"unaffected")
        self.assertNotIn("freezing", lb.output())

    def test_takeover_with_nobody_on_the_socket_exits_1(self):
        echo = EchoServer()
        self.addCleanup(echo.stop)
        d = tempfile.mkdtemp(prefix="mqlb-cfg-")
        path = os.path.join(d, "mqlb.ini")
        ctl = os.path.join(d, "mqlb.sock")
        with open(path, "w") as f:
            f.write("[global]\ncontrol_socket = %s\n[admin]\nlisten = 127.0.0.1:%d\n"
                    "[pool e]\nlisten = 127.0.0.1:%d\nbackend = e1 127.0.0.1:%d\n"
                    % (ctl, free_port(), free_port(), echo.port))
        r = subprocess.run([MQLB_BIN, "-c", path, "--takeover"], capture_output=True,
                           timeout=20)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"nothing is listening on the control socket " + ctl.encode(), r.stderr)
        with open(path, "w") as f:
            f.write("[admin]\nlisten = 127.0.0.1:%d\n[pool e]\nlisten = 127.0.0.1:%d\n"
                    "backend = e1 127.0.0.1:%d\n" % (free_port(), free_port(), echo.port))
        r = subprocess.run([MQLB_BIN, "-c", path, "--takeover"], capture_output=True,
                           timeout=20)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"control_socket", r.stderr)

    def test_a_session_that_cannot_move_stays_with_the_old_until_it_ends(self):
        mosq = Mosquitto()
        self.addCleanup(mosq.stop)
        echo = EchoServer()
        self.addCleanup(echo.stop)
        mport, eport = free_port(), free_port()
        lb = self.start_lb("[pool mqtt]\nlisten = 127.0.0.1:%d\nbalance = mqtt-client-id\n"
                           "connect_timeout = 30s\nbackend = m1 127.0.0.1:%d\n"
                           "[pool e]\nlisten = 127.0.0.1:%d\nbackend = e1 127.0.0.1:%d\n"
                           % (mport, mosq.port, eport, echo.port))
        moving = socket.create_connection(("127.0.0.1", eport), timeout=10)
        self.addCleanup(moving.close)
        moving.sendall(b"a")
        self.assertEqual(moving.recv(1), b"a")
        # connected, CONNECT not sent yet: mqlb is still reading it
        peeking = socket.create_connection(("127.0.0.1", mport), timeout=10)
        self.addCleanup(peeking.close)
        time.sleep(0.2)     # (no event to wait for: the accept is silent)
        old = self.takeover(lb)
        wait_until(lambda: "stay here until they end" in old.output(), 5, what="old log")
        self.assertIn(" 1 stay here", old.output())
        self.assertTrue(old.alive(), "the old process keeps its unmovable session")
        moving.sendall(b"b")
        self.assertEqual(moving.recv(1), b"b")
        # the peeking session finishes its CONNECT with the old process
        cid = b"stay-1"
        body = b"\x00\x04MQTT\x04\x02" + struct.pack(">H", 60) + struct.pack(">H", len(cid)) + cid
        peeking.sendall(bytes([0x10, len(body)]) + body)
        self.assertEqual(peeking.recv(4)[:1], b"\x20")
        peeking.sendall(b"\xe0\x00")
        peeking.close()
        wait_until(lambda: not old.alive(), 5, what="the old process to leave after it")
        self.assertEqual(old.p.returncode, 0)

    def test_a_tls_session_stays_with_the_old_and_keeps_working(self):
        d = tempfile.mkdtemp(prefix="mqlb-tls-")
        self.addCleanup(shutil.rmtree, d, True)
        ca = CA(d)
        pem, _ = ca.issue("a", "a.test", dns=["a.test"])
        echo = EchoServer()
        self.addCleanup(echo.stop)
        tport, eport = free_port(), free_port()
        lb = self.start_lb("[pool t]\nlisten = 127.0.0.1:%d tls\ntls_cert = %s\n"
                           "backend = t1 127.0.0.1:%d\n"
                           "[pool e]\nlisten = 127.0.0.1:%d\nbackend = e1 127.0.0.1:%d\n"
                           % (tport, pem, echo.port, eport, echo.port))
        ctx = ssl.create_default_context(cafile=ca.cert)

        def tls_client():
            raw = socket.create_connection(("127.0.0.1", tport), timeout=10)
            return ctx.wrap_socket(raw, server_hostname="a.test")

        def echo_once(s, data):
            s.sendall(data)
            got = b""
            while len(got) < len(data):
                chunk = s.recv(len(data) - len(got))
                self.assertTrue(chunk, "closed")
                got += chunk
            self.assertEqual(got, data)

        t = tls_client()
        self.addCleanup(t.close)
        echo_once(t, b"tls before")
        plain = socket.create_connection(("127.0.0.1", eport), timeout=10)
        self.addCleanup(plain.close)
        echo_once(plain, b"plain before")
        old = self.takeover(lb)
        wait_until(lambda: "stay here until they end" in old.output(), 5, what="old log")
        self.assertIn(" 1 stay here", old.output())
        self.assertTrue(old.alive(), "the TLS session keeps the old process")
        echo_once(t, b"tls still served by the old process")
        echo_once(plain, b"plain moved")
        t2 = tls_client()      # the listener is the new process's now
        echo_once(t2, b"new tls session")
        t2.close()
        self.assertTrue(old.alive())
        t.close()
        wait_until(lambda: not old.alive(), 5, what="the old process to leave after it")
        self.assertEqual(old.p.returncode, 0)
        echo_once(plain, b"plain after")

    def test_session_facts_go_across_ids_key_idle_timeout_and_age(self):
        mosq = Mosquitto()
        self.addCleanup(mosq.stop)
        mport = free_port()
        lb = self.start_lb("[pool mqtt]\nlisten = 127.0.0.1:%d\nidle_timeout = auto\n"
                           "max_session_duration = 1h\nbackend = m1 127.0.0.1:%d\n"
                           % (mport, mosq.port))
        s = socket.create_connection(("127.0.0.1", mport), timeout=10)
        self.addCleanup(s.close)
        cid = b"facts-1"
        body = b"\x00\x04MQTT\x04\x02" + struct.pack(">H", 40) + struct.pack(">H", len(cid)) + cid
        s.sendall(bytes([0x10, len(body)]) + body)
        self.assertEqual(s.recv(4)[:1], b"\x20")
        # keepalive 40 s: idle timeout 1.5 x 40 + 1 = 61 s, read from CONNECT
        before = wait_until(lambda: [x for x in lb.sessions("mqtt")
                                     if x["idle_timeout_s"] == 61.0],
                            5, what="the keepalive read")
        old = self.takeover(lb)
        wait_until(lambda: not old.alive(), 5, what="old exit")
        after = lb.sessions("mqtt")
        self.assertEqual([(x["id"], x["client"], x["backend"], x["idle_timeout_s"])
                          for x in after],
                         [(x["id"], x["client"], x["backend"], x["idle_timeout_s"])
                          for x in before])
        self.assertGreaterEqual(after[0]["age_s"], before[0]["age_s"])
        self.assertEqual(after[0]["bytes_in"], before[0]["bytes_in"])
        s.sendall(b"\xc0\x00")                  # PINGREQ, through the new process
        self.assertEqual(s.recv(2), b"\xd0\x00")  # PINGRESP
        # a new session gets the next id, not one of the old process's
        s2 = socket.create_connection(("127.0.0.1", mport), timeout=10)
        self.addCleanup(s2.close)
        cid = b"facts-2"
        body = b"\x00\x04MQTT\x04\x02" + struct.pack(">H", 40) + struct.pack(">H", len(cid)) + cid
        s2.sendall(bytes([0x10, len(body)]) + body)
        self.assertEqual(s2.recv(4)[:1], b"\x20")
        def two_ids():
            listed = lb.sessions("mqtt")
            return sorted(x["id"] for x in listed) if len(listed) == 2 else None
        ids = wait_until(two_ids, 5, what="two sessions")
        self.assertGreater(ids[1], ids[0])


if __name__ == "__main__":
    unittest.main()
