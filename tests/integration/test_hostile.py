"""Issue 13: hostile clients and misbehaving brokers cannot hurt anyone
else. Each class is one finding of the hostile review, driven against the
real mqlb in front of real brokers (mosquitto) or echo servers."""

import http.client
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (MQLB_BIN, EchoServer, Mqlb, Proc, check_sanitizers, free_port,
                     port_open, wait_port, wait_until)


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

class Mosquitto:
    """A real mosquitto on loopback that logs every connection."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mqlb-mosq-")
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "log_dest stderr\nlog_type all\nconnection_messages true\n"
                    "max_connections -1\n" % self.port)
        self.proc = Proc(["mosquitto", "-c", conf], "mosquitto-%d" % self.port)
        wait_port(self.port)

    def client_ids(self):
        return re.findall(r"New client connected from \S+ as (\S+) ", self.proc.output())

    def stop(self):
        self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class MqttCheckClientId(unittest.TestCase):
    """Two instances checking one broker (as two containers, both PID 1,
    would): each check id carries the host name and a random part, so
    neither takes over the other's check session."""

    def test_two_instances_use_distinct_host_and_random_ids(self):
        mq = Mosquitto()
        pool = "[pool m]\nlisten = 127.0.0.1:%%d\nhealth_check = mqtt\n" \
               "check_interval = 200ms\ncheck_timeout = 150ms\n" \
               "backend = m1 127.0.0.1:%d\n" % mq.port
        lbs = [Mqlb(pool % free_port()) for _ in range(2)]
        try:
            for lb in lbs:
                lb.wait_state("m", "m1", "up")
            ids = wait_until(lambda: set(i for i in mq.client_ids()
                                         if i.startswith("mqlb-check")) if
                             len(set(mq.client_ids())) >= 2 else None,
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
