"""Issue 4: the `amqp` check against a real RabbitMQ. RabbitMQ runs on
Erlang and takes about 10 s to start, so these tests are skipped unless
MQLB_TEST_BROKERS=1: run them with `make test-brokers` (which installs
rabbitmq-server through `scripts/deps.sh brokers`)."""

import os
import shutil
import socket
import subprocess
import tempfile
import unittest

from harness import Mqlb, Proc, free_port, wait_port, wait_until

ENABLED = os.environ.get("MQLB_TEST_BROKERS") == "1"
RABBITMQ = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


class RabbitMQ:
    """A real RabbitMQ node on loopback, with its own epmd, data and logs in
    a temporary directory; no plugins."""

    def __init__(self):
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


if __name__ == "__main__":
    unittest.main()
