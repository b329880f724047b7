"""Issue 4: the `amqp` check against a real RabbitMQ. RabbitMQ runs on
Erlang and takes about 10 s to start, so these tests are skipped unless
MQLB_TEST_BROKERS=1: run them with `make test-brokers` (which installs
rabbitmq-server through `scripts/deps.sh brokers`)."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

from harness import Mqlb, Proc, free_port, wait_port, wait_until

try:
    import pika     # noqa: F401 (python3-pika, `scripts/deps.sh brokers`)
except ImportError:
    # Debian's python3-pika, when python3 on PATH is not Debian's own
    # (pyenv, venv): the tests import it from there.
    sys.path.append("/usr/lib/python3/dist-packages")

ENABLED = os.environ.get("MQLB_TEST_BROKERS") == "1"
RABBITMQ = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


class RabbitMQ:
    """A real RabbitMQ node on loopback, with its own epmd, data and logs in
    a temporary directory; no plugins."""

    def __init__(self, proxy_protocol=False):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mqlb-rabbitmq-")
        epmd_port = free_port()
        self.env = env = dict(os.environ, HOME=self.dir,
                   RABBITMQ_NODENAME="mqlb%d@localhost" % self.port,
                   RABBITMQ_NODE_IP_ADDRESS="127.0.0.1", RABBITMQ_NODE_PORT=str(self.port),
                   RABBITMQ_DIST_PORT=str(free_port()),
                   RABBITMQ_CONFIG_FILE=os.path.join(self.dir, "rabbitmq"),
                   RABBITMQ_ADVANCED_CONFIG_FILE=os.path.join(self.dir, "advanced.config"),
                   RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(self.dir, "enabled_plugins"),
                   RABBITMQ_MNESIA_BASE=os.path.join(self.dir, "mnesia"),
                   RABBITMQ_LOG_BASE=os.path.join(self.dir, "log"), RABBITMQ_LOGS="-",
                   RABBITMQ_PID_FILE=os.path.join(self.dir, "pid"),
                   ERL_EPMD_PORT=str(epmd_port), ERL_EPMD_ADDRESS="127.0.0.1")
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            f.write("listeners.tcp.default = 127.0.0.1:%d\n" % self.port)
            if proxy_protocol:
                # Every AMQP connection must start with a PROXY header.
                f.write("proxy_protocol = true\n")
        # Our own epmd in the foreground, so that Erlang starts no daemon
        # that would outlive the test.
        self.epmd = Proc(["epmd", "-port", str(epmd_port), "-address", "127.0.0.1"], "epmd",
                         env=env)
        wait_port(epmd_port)
        self.proc = Proc([RABBITMQ], "rabbitmq-%d" % self.port, env=env)
        wait_port(self.port, timeout=60)

    def ctl(self, *args):
        """rabbitmqctl against this node (it shares the node's cookie)."""
        subprocess.run([RABBITMQCTL, "-n", self.env["RABBITMQ_NODENAME"]] + list(args),
                       env=self.env, check=True, timeout=60, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def stop(self):
        self.proc.stop(timeout=30)
        self.epmd.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@unittest.skipUnless(ENABLED, "RabbitMQ is slow to start: run `make test-brokers`")
class Amqp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(RABBITMQ):
            raise unittest.SkipTest("rabbitmq-server is not installed")
        cls.rabbit = RabbitMQ()

    @classmethod
    def tearDownClass(cls):
        cls.rabbit.stop()

    def test_connection_start_passes_and_sessions_reach_rabbitmq(self):
        port = free_port()
        lb = Mqlb("[pool amqp]\nlisten = 127.0.0.1:%d\nhealth_check = amqp\n"
                  "check_interval = 500ms\ncheck_timeout = 400ms\nrise = 1\nfall = 1\n"
                  "backend = rabbit 127.0.0.1:%d\n" % (port, self.rabbit.port))
        try:
            def passed():
                b = lb.backend("amqp", "rabbit")
                return b["state"] == "up" and b["check"]["result"] == "pass"
            wait_until(passed, 10, what="amqp check passes")
            # A client through mqlb gets RabbitMQ's Connection.Start.
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(AMQP_HEADER)
                frame = b""
                while len(frame) < 11:
                    chunk = s.recv(4096)
                    self.assertTrue(chunk)
                    frame += chunk
            # method frame, channel 0, class 10 method 10
            self.assertEqual(frame[0], 1)
            self.assertEqual(frame[1:3], b"\x00\x00")
            self.assertEqual(frame[7:11], b"\x00\x0a\x00\x0a")
        finally:
            lb.stop()

    def test_amqps_through_a_tls_listener_to_a_plain_node(self):
        """AMQPS (5671-style): mqlb terminates TLS, RabbitMQ speaks plain
        AMQP behind it; the client gets Connection.Start over TLS."""
        import shutil
        import ssl
        import tempfile
        from certs import CA
        d = tempfile.mkdtemp(prefix="mqlb-amqps-")
        try:
            ca = CA(d)
            pem, _ = ca.issue("rabbit", "rabbit.test", dns=["rabbit.test"])
            port = free_port()
            lb = Mqlb("[pool amqps]\nlisten = 127.0.0.1:%d tls\ntls_cert = %s\n"
                      "tls_alpn = amqp\nhealth_check = amqp\ncheck_interval = 500ms\n"
                      "backend = rabbit 127.0.0.1:%d\n" % (port, pem, self.rabbit.port))
            try:
                wait_until(lambda: lb.backend("amqps", "rabbit")["state"] == "up", 10,
                           what="amqp check passes")
                ctx = ssl.create_default_context(cafile=ca.cert)
                raw = socket.create_connection(("127.0.0.1", port), timeout=5)
                with ctx.wrap_socket(raw, server_hostname="rabbit.test") as s:
                    s.sendall(AMQP_HEADER)
                    frame = b""
                    while len(frame) < 11:
                        chunk = s.recv(4096)
                        self.assertTrue(chunk)
                        frame += chunk
                self.assertEqual(frame[0], 1)
                self.assertEqual(frame[7:11], b"\x00\x0a\x00\x0a")   # Connection.Start
            finally:
                lb.stop()
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_stopped_app_is_down_refused_and_back_up_when_started(self):
        port = free_port()
        lb = Mqlb("[pool amqp]\nlisten = 127.0.0.1:%d\nhealth_check = amqp\n"
                  "check_interval = 500ms\ncheck_timeout = 400ms\nrise = 1\nfall = 1\n"
                  "backend = rabbit 127.0.0.1:%d\n" % (port, self.rabbit.port))
        try:
            def state(st, reason):
                b = lb.backend("amqp", "rabbit")
                return b["state"] == st and b["check"]["reason"] == reason
            wait_until(lambda: state("up", "") and
                       lb.backend("amqp", "rabbit")["check"]["result"] == "pass",
                       10, what="amqp check passes")
            # The Erlang node lives on, the AMQP listener is gone.
            self.rabbit.ctl("stop_app")
            wait_until(lambda: state("down", "refused"), 10, what="down, refused")
            self.rabbit.ctl("start_app")
            wait_until(lambda: state("up", ""), 30, what="up again")
        finally:
            lb.stop()

    def test_idle_timeout_auto_reads_the_heartbeat_pika_negotiates(self):
        """pika with heartbeat 2 s through idle_timeout = auto: mqlb reads
        2 s from Tune-Ok (timeout 2 x 2 + 1 = 5 s); a connection that keeps
        its heartbeats lives on, one whose client falls silent is closed."""
        import pika
        import re
        import time
        port = free_port()
        lb = Mqlb("[pool amqp]\nlisten = 127.0.0.1:%d\nhealth_check = amqp\n"
                  "check_interval = 500ms\nidle_timeout = auto\n"
                  "backend = rabbit 127.0.0.1:%d\n" % (port, self.rabbit.port))
        try:
            lb.wait_state("amqp", "rabbit", "up", 20)
            params = pika.ConnectionParameters(host="127.0.0.1", port=port, heartbeat=2)
            beating = pika.BlockingConnection(params)
            silent = pika.BlockingConnection(params)
            t0 = time.monotonic()
            # pika only sends heartbeats while its loop runs: <silent>'s
            # never does again.
            while time.monotonic() - t0 < 10:
                beating.process_data_events(time_limit=0.2)
            self.assertTrue(beating.is_open)
            ends = re.findall(r"idle=(\S+) end=([a-z ]+)", lb.output())
            self.assertEqual(len(ends), 1, ends)
            # Closed after 5 s of silence: by mqlb, or by RabbitMQ's own
            # heartbeat check if it came first (the log says which).
            self.assertEqual(ends[0][0], "5000ms")
            self.assertIn(ends[0][1], ("idle timeout", "backend closed"))
            print("\nsilent pika connection: end=%s" % ends[0][1], end=" ")
            with self.assertRaises(pika.exceptions.AMQPError):
                silent.process_data_events(time_limit=0.5)
                silent.channel()
            beating.close()
            wait_until(lambda: len(re.findall(r"idle=5000ms end=", lb.output())) == 2, 10,
                       what="the beating session's line")
        finally:
            lb.stop()


def amqp_pool(name, port, rabbit_port, extra=""):
    return ("[pool %s]\nlisten = 127.0.0.1:%d\nhealth_check = amqp\n"
            "check_interval = 500ms\ncheck_timeout = 400ms\nrise = 1\nfall = 1\n%s"
            "backend = rabbit 127.0.0.1:%d\n\n" % (name, port, extra, rabbit_port))


def wait_check(lb, pool, state, reason_re, timeout=15):
    import re

    def ok():
        b = lb.backend(pool, "rabbit")
        return b["state"] == state and re.search(reason_re, b["check"]["reason"]) and b
    try:
        return wait_until(ok, timeout, what="%s %s %s" % (pool, state, reason_re))
    except AssertionError as e:
        raise AssertionError("%s; last: %r" % (e, lb.backend(pool, "rabbit"))) from None


def pika_round_trip(port, user="guest", password="guest", vhost="/"):
    """A real AMQP client (pika) through mqlb: declare a queue, publish one
    message and get it back."""
    import pika

    params = pika.ConnectionParameters("127.0.0.1", port, vhost,
                                       pika.PlainCredentials(user, password),
                                       connection_attempts=1, socket_timeout=5,
                                       blocked_connection_timeout=5)
    conn = pika.BlockingConnection(params)
    try:
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"through mqlb")
        for _ in range(50):
            method, _, body = ch.basic_get(q, auto_ack=True)
            if method is not None:
                return body
            conn.sleep(0.05)
        return None
    finally:
        conn.close()


@unittest.skipUnless(ENABLED, "RabbitMQ is slow to start: run `make test-brokers`")
class AmqpLogin(unittest.TestCase):
    """Issue 12 item 3: the amqp check logs in with PLAIN, opens
    check_vhost and closes, against a real RabbitMQ."""

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(RABBITMQ):
            raise unittest.SkipTest("rabbitmq-server is not installed")
        cls.rabbit = RabbitMQ()
        cls.rabbit.ctl("await_startup")
        cls.rabbit.ctl("add_vhost", "prod")
        cls.rabbit.ctl("add_user", "mqlb", "s3cr3t")
        cls.rabbit.ctl("set_permissions", "-p", "prod", "mqlb", ".*", ".*", ".*")

    @classmethod
    def tearDownClass(cls):
        cls.rabbit.stop()

    def test_login_passes_wrong_password_and_vhost_fail_saying_why(self):
        good, port = free_port(), self.rabbit.port
        text = amqp_pool("good", good, port,
                         "check_user = mqlb\ncheck_password = s3cr3t\ncheck_vhost = prod\n")
        text += amqp_pool("bad", free_port(), port,
                          "check_user = mqlb\ncheck_password = wrong\ncheck_vhost = prod\n")
        # mqlb may log in, but has no permission on vhost "/".
        text += amqp_pool("novhost", free_port(), port,
                          "check_user = mqlb\ncheck_password = s3cr3t\n")
        lb = Mqlb(text)
        try:
            wait_until(lambda: lb.backend("good", "rabbit")["check"]["result"] == "pass",
                       15, what="login check passes")
            wait_check(lb, "bad", "down", r"^authentication refused: 403 ACCESS_REFUSED")
            wait_check(lb, "novhost", "down", r"^vhost / refused: (530|403) ")
            # A real client through the checked pool.
            self.assertEqual(pika_round_trip(good, "mqlb", "s3cr3t", "prod"), b"through mqlb")
            # Each check closed its connection cleanly (Connection.Close).
            self.assertNotRegex(self.rabbit.proc.output(),
                                r"(?s)user 'mqlb'.{0,400}closed abruptly|"
                                r"client unexpectedly closed TCP connection")
        finally:
            lb.stop()


def rabbitmq_version():
    """The installed RabbitMQ's version as a tuple, (0,) if unknown."""
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "rabbitmq-server"],
                       capture_output=True, text=True, timeout=10)
    digits = r.stdout.split("-")[0].split(".")
    try:
        return tuple(int(d) for d in digits)
    except ValueError:
        return (0,)


def rabbitmq_takes_local(version):
    """RabbitMQ crashed the reader of a connection whose PROXY header is v2
    LOCAL or v1 UNKNOWN (rabbitmq-server issue 8654) until the fix of June
    2023 (pull request 8664: 3.11.19, 3.12.1). Debian 12 ships 3.10.8."""
    return version >= (3, 12, 1) or (3, 11, 19) <= version < (3, 12)


@unittest.skipUnless(ENABLED, "RabbitMQ is slow to start: run `make test-brokers`")
class AmqpProxyProtocol(unittest.TestCase):
    """Issue 12 item 2: a real broker that requires the PROXY header
    (RabbitMQ with proxy_protocol = true) accepts mqlb's checks, which send
    the pool's header first; without it the pool goes down. The header of
    a check is v2 LOCAL / v1 UNKNOWN (the PROXY protocol's own words for a
    connection that relays no client); RabbitMQ before 3.11.19 drops those,
    and check_proxy_protocol = addresses sends the check connection's own
    addresses instead."""

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(RABBITMQ):
            raise unittest.SkipTest("rabbitmq-server is not installed")
        cls.rabbit = RabbitMQ(proxy_protocol=True)

    @classmethod
    def tearDownClass(cls):
        cls.rabbit.stop()

    def test_checks_send_the_header_and_without_it_the_pool_goes_down(self):
        port = self.rabbit.port
        v1, v2 = free_port(), free_port()
        text = amqp_pool("v1", v1, port, "proxy_protocol = v1\ncheck_proxy_protocol = addresses\n")
        text += amqp_pool("v2", v2, port, "proxy_protocol = v2\ncheck_proxy_protocol = addresses\n"
                          "check_user = guest\ncheck_password = guest\n")
        text += amqp_pool("local", free_port(), port, "proxy_protocol = v2\n")
        text += amqp_pool("unknown", free_port(), port, "proxy_protocol = v1\n")
        text += amqp_pool("off", free_port(), port,
                          "proxy_protocol = v2\ncheck_proxy_protocol = off\n")
        lb = Mqlb(text)
        try:
            for name in ("v1", "v2"):
                wait_until(lambda: lb.backend(name, "rabbit")["check"]["result"] == "pass",
                           20, what="%s check passes" % name)
            wait_check(lb, "off", "down", r".")
            version = rabbitmq_version()
            for name in ("local", "unknown"):
                if rabbitmq_takes_local(version):
                    wait_until(lambda: lb.backend(name, "rabbit")["check"]["result"] == "pass",
                               20, what="%s check passes" % name)
                else:
                    wait_check(lb, name, "down", r".")
            self.assertEqual(lb.backend("v1", "rabbit")["state"], "up")
            # A real client through a PROXY pool reaches the strict broker.
            self.assertEqual(pika_round_trip(v2), b"through mqlb")
            # A client straight to the broker, without a header, is dropped.
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(AMQP_HEADER)
                s.settimeout(10)
                try:
                    self.assertEqual(s.recv(64), b"")
                except ConnectionResetError:
                    pass
        finally:
            lb.stop()


if __name__ == "__main__":
    unittest.main()
