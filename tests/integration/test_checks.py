"""Issue 4: protocol-aware health checks against real brokers started here
(redis-server, mosquitto, nats-server, python3 -m http.server) on
loopback. Kafka has no Debian package, so the `kafka` check runs against
tests/support/kafka_mock.py, a small server that answers ApiVersions as
the Kafka protocol guide specifies. RabbitMQ (`amqp`) is slow to start
(Erlang), so it is in test_brokers.py behind `make test-brokers`; here the
`amqp` check meets only an echo server.

Every check that speaks a broker's protocol must fail against a plain TCP
echo server, with a precise reason in /status backends[].check.reason."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

from harness import (ROOT, EchoServer, Mqlb, Proc, RedisServer, free_port, redis_port_of,
                     wait_port, wait_until)

# Short enough that the whole file runs in well under a minute.
FAST = {"check_interval": "300ms", "check_timeout": "250ms", "rise": "1", "fall": "1"}


def pool(name, listen, backends, check, extra=""):
    """A [pool] section: <backends> is a list of (name, port); <extra> lines
    "key = value" add to or override FAST."""
    keys = dict(FAST)
    for line in extra.splitlines():
        k, v = line.split("=", 1)
        keys[k.strip()] = v.strip()
    text = "[pool %s]\nlisten = 127.0.0.1:%d\nhealth_check = %s\n" % (name, listen, check)
    text += "".join("%s = %s\n" % kv for kv in keys.items())
    for bname, port in backends:
        text += "backend = %s 127.0.0.1:%d\n" % (bname, port)
    return text + "\n"


def wait_check(lb, pool_name, name, state, reason, timeout=5.0):
    """Wait for <state> with a check reason matching the regex <reason>;
    return the backend's /status entry."""
    def ok():
        b = lb.backend(pool_name, name)
        if b["state"] == state and re.search(reason, b["check"]["reason"]):
            return b
        return None
    try:
        return wait_until(ok, timeout, what="%s/%s %s (%s)" % (pool_name, name, state, reason))
    except AssertionError as e:
        raise AssertionError("%s; last: %r" % (e, lb.backend(pool_name, name))) from None


def wait_passes(lb, pool_name, name, n=1, timeout=5.0):
    """Wait for <n> more passing checks (a backend is up before its first
    check, as in HAProxy, so state "up" alone proves nothing)."""
    seen = []

    def ok():
        b = lb.backend(pool_name, name)
        if b["state"] == "up" and b["check"]["result"] == "pass" and b["check"]["at"] not in seen:
            seen.append(b["check"]["at"])
        return len(seen) >= n
    wait_until(ok, timeout, what="%s/%s passing %d checks" % (pool_name, name, n))
    return lb.backend(pool_name, name)


class Mosquitto:
    """A real mosquitto on loopback with a conf file of our own; <users>
    ({name: password}) go into a password_file made by mosquitto_passwd."""

    def __init__(self, anonymous=True, users=None):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mqlb-mosquitto-")
        conf = os.path.join(self.dir, "mosquitto.conf")
        extra = ""
        if users:
            pwfile = os.path.join(self.dir, "passwd")
            for i, (name, password) in enumerate(users.items()):
                subprocess.run(["mosquitto_passwd", "-b"] + (["-c"] if i == 0 else []) +
                               [pwfile, name, password], check=True, timeout=10,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # mosquitto started as root reads it as user mosquitto
            os.chmod(self.dir, 0o755)
            os.chmod(pwfile, 0o644)
            extra = "password_file %s\n" % pwfile
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous %s\npersistence false\n%s"
                    % (self.port, "true" if anonymous else "false", extra))
        self.proc = Proc(["mosquitto", "-c", conf], "mosquitto-%d" % self.port)
        wait_port(self.port)

    def stop(self):
        self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class NatsServer:
    """A real nats-server on loopback. Lame duck mode lasts at least 30s
    (nats-server's minimum); the grace period before it closes its clients
    is kept short."""

    def __init__(self, grace="3s", user=None, password=None, monitor=False):
        self.port = free_port()
        self.monitor = free_port() if monitor else None
        self.dir = tempfile.mkdtemp(prefix="mqlb-nats-")
        conf = os.path.join(self.dir, "nats.conf")
        with open(conf, "w") as f:
            f.write('lame_duck_duration: "30s"\nlame_duck_grace_period: "%s"\n' % grace)
            if user is not None:
                f.write('authorization {\n  user: "%s"\n  password: "%s"\n}\n'
                        % (user, password))
        self.proc = Proc(["nats-server", "-c", conf, "-a", "127.0.0.1", "-p", str(self.port)]
                         + (["-m", str(self.monitor)] if monitor else []),
                         "nats-%d" % self.port)
        wait_port(self.port)

    def lame_duck(self):
        subprocess.run(["nats-server", "--signal", "ldm=%d" % self.proc.pid], check=True,
                       timeout=10, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class NatsClient:
    """A plain NATS client: reads the server's INFO, says CONNECT."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.f = self.sock.makefile("rb")
        line = self.f.readline()
        if not line.startswith(b"INFO "):
            raise ValueError("no INFO: %r" % line)
        self.info = json.loads(line[5:])
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\n')

    def ping(self):
        self.sock.sendall(b"PING\r\n")
        while True:
            line = self.f.readline()
            if line == b"PONG\r\n":
                return True
            if not line:
                raise ConnectionError("closed")

    def read_until_eof(self):
        while self.f.readline():
            pass

    def close(self):
        self.f.close()
        self.sock.close()


def nats_port_of(port):
    c = NatsClient(port)
    try:
        return c.info["port"]
    finally:
        c.close()


class Case(unittest.TestCase):
    """Everything a test starts is stopped by cleanups, last first, even
    when the test fails halfway."""

    def start(self, thing):
        self.addCleanup(thing.stop)
        return thing

    def mqlb(self, text):
        return self.start(Mqlb(text))


class Redis(Case):
    def test_redis_passes_and_requirepass_fails_with_noauth(self):
        ok = self.start(RedisServer())
        auth = self.start(RedisServer(extra=["--requirepass", "x"]))
        lb = self.mqlb(pool("p", free_port(), [("ok", ok.port), ("auth", auth.port)], "redis"))
        wait_passes(lb, "p", "ok")
        b = wait_check(lb, "p", "auth", "down", r"^redis error: NOAUTH")
        self.assertEqual(b["check"]["result"], "fail")

    def test_send_expect_pong_passes_nope_fails(self):
        redis = self.start(RedisServer())
        text = pool("good", free_port(), [("r", redis.port)], "send-expect",
                    "check_send = PING\\r\\n\ncheck_expect = +PONG\n")
        text += pool("bad", free_port(), [("r", redis.port)], "send-expect",
                     "check_send = PING\\r\\n\ncheck_expect = +NOPE\n")
        lb = self.mqlb(text)
        wait_passes(lb, "good", "r")
        wait_check(lb, "bad", "r", "down", r"^unexpected reply: \+PONG\\r\\n")


class RedisMaster(Case):
    def test_only_the_master_gets_sessions_and_they_follow_a_failover(self):
        interval, timeout, rise = 0.3, 0.25, 2
        # A full sync writes an RDB file: keep it out of the work tree.
        rdb = tempfile.mkdtemp(prefix="mqlb-redis-")
        self.addCleanup(shutil.rmtree, rdb, ignore_errors=True)
        a = self.start(RedisServer(extra=["--dir", rdb, "--dbfilename", "a.rdb"]))
        b = self.start(RedisServer(extra=["--dir", rdb, "--dbfilename", "b.rdb",
                                          "--replicaof", "127.0.0.1", str(a.port)]))
        port = free_port()
        lb = self.mqlb(pool("r", port, [("a", a.port), ("b", b.port)], "redis-master",
                            "rise = %d\n" % rise))
        wait_passes(lb, "r", "a")
        b_status = wait_check(lb, "r", "b", "down", r"^not the master: role:slave")
        self.assertEqual((b_status["health"], b_status["admin"], b_status["reason"]),
                         ("down", "ready", "check failed: not the master: role:slave"))
        self.assertEqual({redis_port_of(port) for _ in range(20)}, {a.port})

        # Promote the replica, then make the old master its replica.
        self.assertEqual(b.command("REPLICAOF", "NO", "ONE"), "OK")
        self.assertEqual(a.command("REPLICAOF", "127.0.0.1", b.port), "OK")
        switched = time.monotonic()
        wait_passes(lb, "r", "b", timeout=10)
        wait_check(lb, "r", "a", "down", r"^not the master: role:slave")
        took = time.monotonic() - switched
        # rise x interval (plus a tenth of jitter) + timeout, and margin
        self.assertLess(took, rise * interval * 1.1 + timeout + 1.5)
        self.assertEqual({redis_port_of(port) for _ in range(20)}, {b.port})
        # The state change is logged with its reason.
        wait_until(lambda: re.search(r"backend r/a .* is down: check failed: "
                                     r"not the master: role:slave", lb.output()),
                   5, what="down logged with its reason")
        self.assertRegex(lb.output(), r"backend r/b .* is up")


class Mqtt(Case):
    def test_anonymous_passes_refused_names_the_connack_code(self):
        ok = self.start(Mosquitto())
        closed = self.start(Mosquitto(anonymous=False))
        lb = self.mqlb(pool("m", free_port(), [("ok", ok.port), ("closed", closed.port)],
                            "mqtt"))
        wait_passes(lb, "m", "ok")
        wait_check(lb, "m", "closed", "down", r"^connack refused: 5 \(not authori[sz]ed\)")
        lb.stop()
        # Every check ends with DISCONNECT: mosquitto saw no lost connection.
        log = ok.proc.output()
        self.assertRegex(log, r"Client mqlb-check-\S+ disconnected")
        self.assertNotRegex(log, r"Client mqlb-check-\S+ closed its connection")


class Nats(Case):
    def test_nats_passes(self):
        n = self.start(NatsServer())
        lb = self.mqlb(pool("n", free_port(), [("n1", n.port)], "nats"))
        wait_passes(lb, "n", "n1")

    def test_lame_duck_mode_drains_and_keeps_sessions_until_the_server_closes_them(self):
        """nats-server 2.9 in lame duck mode refuses new connections at once
        and tells only connected clients (INFO "ldm":true); mqlb hears it on
        a watch connection it keeps per nats backend. The backend drains:
        no new sessions, refused checks do not take it down, and even with
        on_backend_down = close its sessions stay until the server closes
        them at the end of its grace period."""
        grace = 3.0
        n1 = self.start(NatsServer(grace="%ds" % grace))
        n2 = self.start(NatsServer())
        port = free_port()
        lb = self.mqlb(pool("n", port, [("n1", n1.port), ("n2", n2.port)], "nats",
                            "on_backend_down = close\n"))
        # The watch connection opens with the first check.
        wait_passes(lb, "n", "n1", 2)
        wait_passes(lb, "n", "n2")
        # A session on n1 through mqlb.
        held = []
        while not held or held[-1].info["port"] != n1.port:
            held.append(NatsClient(port))
            self.addCleanup(held[-1].close)
            self.assertLess(len(held), 10)
        old = held[-1]
        self.assertTrue(old.ping())

        n1.lame_duck()
        ldm_at = time.monotonic()
        lb.wait_state("n", "n1", "drain", timeout=grace - 1)
        b = lb.backend("n", "n1")
        self.assertEqual((b["health"], b["admin"], b["reason"]), ("up", "drain", "lame duck mode"))
        wait_until(lambda: re.search(r"backend n/n1 .* asks to drain \(lame duck mode\)",
                                     lb.output()), 5, what="drain logged")
        # No new sessions on n1.
        self.assertEqual({nats_port_of(port) for _ in range(10)}, {n2.port})
        # Its checks are refused now, yet it stays in drain, not down.
        b = wait_check(lb, "n", "n1", "drain", r"^refused$", timeout=grace - 1)
        self.assertEqual(b["check"]["result"], "fail")
        self.assertTrue(old.ping())
        # The server, not mqlb, ends the session after its grace period.
        old.read_until_eof()
        self.assertGreater(time.monotonic() - ldm_at, grace - 0.5)
        # Gone: down at the next check.
        wait_check(lb, "n", "n1", "down", r"^refused$", timeout=grace + 5)
        self.assertEqual(lb.backend("n", "n2")["state"], "up")


class Http(Case):
    def test_existing_path_passes_missing_path_fails_404(self):
        docroot = tempfile.mkdtemp(prefix="mqlb-http-")
        self.addCleanup(shutil.rmtree, docroot, ignore_errors=True)
        port = free_port()
        self.start(Proc([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                         "--directory", docroot], "http-%d" % port))
        wait_port(port)
        text = pool("good", free_port(), [("h", port)], "http", "check_path = /\n")
        text += pool("bad", free_port(), [("h", port)], "http", "check_path = /missing\n")
        lb = self.mqlb(text)
        wait_passes(lb, "good", "h")
        wait_check(lb, "bad", "h", "down", r"^http status 404$")


class Kafka(Case):
    """Kafka has no Debian package: tests/support/kafka_mock.py stands in for
    a broker and answers ApiVersions as the Kafka protocol guide says."""

    def test_apiversions_passes_error_35_fails(self):
        mock = os.path.join(ROOT, "tests", "support", "kafka_mock.py")
        ok_port, bad_port = free_port(), free_port()
        self.start(Proc([sys.executable, mock, str(ok_port)], "kafka-%d" % ok_port))
        self.start(Proc([sys.executable, mock, str(bad_port), "--error", "35"],
                        "kafka-%d" % bad_port))
        wait_port(ok_port)
        wait_port(bad_port)
        lb = self.mqlb(pool("k", free_port(), [("ok", ok_port), ("bad", bad_port)], "kafka"))
        wait_passes(lb, "k", "ok")
        wait_check(lb, "k", "bad", "down", r"^kafka error code 35$")


class HAProxyAcceptProxy:
    """A strict PROXY-requiring front: HAProxy with `accept-proxy` before a
    real broker. It takes v1 and v2 headers (v2 LOCAL included) and drops a
    connection whose first bytes are not a valid header. (Debian 12's
    redis-server, mosquitto 2.0 and nats-server 2.9 cannot require the
    header; RabbitMQ can, see test_brokers.py.)"""

    def __init__(self, target_port):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mqlb-haproxy-")
        conf = os.path.join(self.dir, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write("defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 10s\n"
                    "  timeout server 10s\n"
                    "frontend strict\n  bind 127.0.0.1:%d accept-proxy\n"
                    "  default_backend broker\n"
                    "backend broker\n  server b 127.0.0.1:%d\n" % (self.port, target_port))
        self.proc = Proc(["haproxy", "-db", "-f", conf], "haproxy-%d" % self.port)
        wait_port(self.port)

    def stop(self):
        self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class CheckProxyProtocol(Case):
    """Item 2 of issue 12: checks send the pool's PROXY header first (v1
    "PROXY UNKNOWN", v2 LOCAL), so a broker that requires the header takes
    them; without it (check_proxy_protocol = off) the pool goes down."""

    def test_checks_pass_a_broker_that_requires_proxy_and_fail_without_the_header(self):
        redis = self.start(RedisServer())
        strict = self.start(HAProxyAcceptProxy(redis.port))
        # Nothing gets through without a header: the front is strict.
        with self.assertRaises((ConnectionError, OSError, ValueError)):
            redis_port_of(strict.port)
        v1, v2 = free_port(), free_port()
        text = pool("v1", v1, [("r", strict.port)], "redis", "proxy_protocol = v1\n")
        text += pool("v2", v2, [("r", strict.port)], "redis", "proxy_protocol = v2\n")
        text += pool("on", free_port(), [("r", strict.port)], "redis",
                     "proxy_protocol = v2\ncheck_proxy_protocol = on\n")
        text += pool("off", free_port(), [("r", strict.port)], "redis",
                     "proxy_protocol = v2\ncheck_proxy_protocol = off\n")
        lb = self.mqlb(text)
        for name in ("v1", "v2", "on"):
            wait_passes(lb, name, "r", 2)
        b = wait_check(lb, "off", "r", "down", r"closed by peer|timeout|reset")
        self.assertEqual(b["check"]["result"], "fail")
        # Clients through the checked pools reach redis through the front.
        self.assertEqual(redis_port_of(v1), redis.port)
        self.assertEqual(redis_port_of(v2), redis.port)


class CheckLogin(Case):
    """Item 3 of issue 12: check_user / check_password (and check_vhost for
    amqp, in test_brokers.py) against real servers that require a login;
    wrong credentials fail with a reason that says the login was refused."""

    def test_redis_requirepass_and_acl_user(self):
        rp = self.start(RedisServer(extra=["--requirepass", "s3cr3t"]))
        acl = self.start(RedisServer(extra=["--user", "checker", "on", ">pw2", "+ping",
                                            "+info", "--user", "default", "off"]))
        text = pool("good", free_port(), [("r", rp.port)], "redis", "check_password = s3cr3t\n")
        text += pool("bad", free_port(), [("r", rp.port)], "redis", "check_password = nope\n")
        text += pool("aclgood", free_port(), [("r", acl.port)], "redis-master",
                     "check_user = checker\ncheck_password = pw2\n")
        text += pool("aclbad", free_port(), [("r", acl.port)], "redis-master",
                     "check_user = checker\ncheck_password = wrong\n")
        lb = self.mqlb(text)
        wait_passes(lb, "good", "r", 2)
        wait_passes(lb, "aclgood", "r", 2)
        wait_check(lb, "bad", "r", "down", r"^authentication refused: WRONGPASS")
        wait_check(lb, "aclbad", "r", "down", r"^authentication refused: WRONGPASS")

    def test_mosquitto_password_file(self):
        m = self.start(Mosquitto(anonymous=False, users={"mqlb": "pw", "other": "x"}))
        text = pool("good", free_port(), [("m", m.port)], "mqtt",
                    "check_user = mqlb\ncheck_password = pw\n")
        text += pool("bad", free_port(), [("m", m.port)], "mqtt",
                     "check_user = mqlb\ncheck_password = wrong\n")
        lb = self.mqlb(text)
        wait_passes(lb, "good", "m", 2)
        wait_check(lb, "bad", "m", "down",
                   r"^authentication refused: connack [45] \((not authori[sz]ed|bad user)")

    def test_nats_authorization(self):
        n = self.start(NatsServer(user="mqlb", password="pw", monitor=True))
        text = pool("good", free_port(), [("n", n.port)], "nats",
                    "check_user = mqlb\ncheck_password = pw\n")
        text += pool("bad", free_port(), [("n", n.port)], "nats",
                     "check_user = mqlb\ncheck_password = wrong\n")
        lb = self.mqlb(text)
        wait_passes(lb, "good", "n", 2)

        # The lame duck watch logs in too: the server holds it, by name.
        def watch_connected():
            with urllib.request.urlopen("http://127.0.0.1:%d/connz" % n.monitor,
                                        timeout=2) as r:
                conns = json.loads(r.read())["connections"] or []
            return any(c.get("name") == "mqlb-watch" for c in conns)
        wait_until(watch_connected, 5, what="the watch connection logged in")
        wait_check(lb, "bad", "n", "down",
                   r"^authentication refused: nats error: ERR 'Authorization Violation'")

    def test_http_basic(self):
        port = free_port()
        server = self.start(Proc([sys.executable, os.path.join(ROOT, "tests", "support",
                                                               "http_basic.py"),
                                  str(port), "mqlb", "pw"], "http-basic-%d" % port))
        wait_port(port)
        text = pool("good", free_port(), [("h", port)], "http",
                    "check_user = mqlb\ncheck_password = pw\n")
        text += pool("bad", free_port(), [("h", port)], "http",
                     "check_user = mqlb\ncheck_password = wrong\n")
        text += pool("none", free_port(), [("h", port)], "http")
        lb = self.mqlb(text)
        wait_passes(lb, "good", "h", 2)
        wait_check(lb, "bad", "h", "down", r"^authentication refused: http status 401$")
        wait_check(lb, "none", "h", "down", r"^http status 401$")
        self.assertIn("auth 'Basic bXFsYjpwdw=='", server.output())


class CheckReset(Case):
    """check_reset = on: a tcp check resets its connection before the
    broker's kernel completes the handshake (as HAProxy's does), so the
    broker never accepts one; off (the default) connects and closes."""

    def test_the_broker_never_sees_a_check_that_resets(self):
        on, off = self.start(EchoServer()), self.start(EchoServer())
        gone = free_port()      # nothing listens there
        lb = self.mqlb(pool("on", free_port(), [("b", on.port)], "tcp", "check_reset = on")
                       + pool("gone", free_port(), [("b", gone)], "tcp", "check_reset = on")
                       + pool("off", free_port(), [("b", off.port)], "tcp"))
        wait_passes(lb, "on", "b", 3)
        wait_passes(lb, "off", "b", 3)
        wait_until(lambda: off.conns >= 3, 5, what="the default's checks accepted")
        self.assertEqual(on.conns, 0, "a check that resets was accepted")
        self.assertGreaterEqual(lb.backend("on", "b")["checks_pass"], 3)
        # refused as before; the socket that saw it checks on once a
        # broker listens there
        wait_check(lb, "gone", "b", "down", r"^refused$")
        wait_until(lambda: lb.backend("gone", "b")["checks_fail"] >= 2, 5,
                   what="two refused checks")
        late = self.start(EchoServer(port=gone))
        wait_passes(lb, "gone", "b", 2)
        self.assertEqual(late.conns, 0)


class EchoFails(Case):
    """An echo server speaks no broker's protocol: every check fails on it,
    and says why."""

    # check kind -> extra settings, regex for its reason
    KINDS = {
        "redis": ("", r"^unexpected reply: PING\\r\\n$"),
        "redis-master": ("", r"^unexpected reply: PING\\r\\n$"),
        "amqp": ("", r"^amqp protocol header sent back"),
        # the CONNECT echoed back; its length byte follows the client id
        "mqtt": ("", r"^unexpected reply: \\x10(\\x[0-9a-f]{2}|.)\\x00\\x04MQTT\\x04\\x02"),
        "nats": ("", r"^timeout$"),
        "kafka": ("", r"^unexpected reply: \\x00\\x00\\x00\\x0e\\x00\\x12\\x00\\x00"),
        "http": ("check_path = /\n", r"^unexpected reply: GET / HTTP/1\.[01]\\r\\n"),
        "send-expect": ("check_send = PING\\r\\n\ncheck_expect = +PONG\n",
                        r"^unexpected reply: PING\\r\\n$"),
    }

    def test_every_protocol_check_fails_on_an_echo_server(self):
        echo = self.start(EchoServer())
        text = ""
        # Time enough for the echo to come back on a busy machine (nine
        # checks on one Python echo server every 300 ms): the reason a
        # check went down with is its reply, not a timeout.
        slow = "check_timeout = 2s\n"
        for kind, (extra, _) in self.KINDS.items():
            text += pool(kind, free_port(), [("echo", echo.port)], kind, extra + slow)
        text += pool("tcp", free_port(), [("echo", echo.port)], "tcp")
        lb = self.mqlb(text)
        # A plain connect passes: the echo server is there.
        wait_passes(lb, "tcp", "echo")
        for kind, (_, reason) in self.KINDS.items():
            with self.subTest(kind=kind):
                b = wait_check(lb, kind, "echo", "down", reason)
                self.assertEqual(b["check"]["result"], "fail")
                # The state change is logged once, with the same reason.
                down = r"backend %s/echo \(.*\) is down: check failed: (.*)" % re.escape(kind)
                wait_until(lambda: re.search(down, lb.output()), 5, what="the down line")
                logged = re.findall(down, lb.output())
                self.assertEqual(len(logged), 1)
                self.assertRegex(logged[0], reason)

if __name__ == "__main__":
    unittest.main()
