"""Issue 16, the broker life cycle: idle_timeout = auto (MQTT keepalive
through a stand-in and real mosquitto, AMQP heartbeat through a scripted
AMQP stand-in), paced rebalancing with three real mosquitto brokers and
300 reconnecting clients (and its contrast, rebalance = off, and the
mqtt-client-id variant), max_session_duration jitter, the wait queue, a
reconnect storm under max_connect_rate, and rejections by reason."""

import re
import socket
import unittest

from harness import EchoServer, Mqlb, free_port


def metric(lb, name, **labels):
    """One sample of /metrics, 0 if absent."""
    code, body, _ = lb.http("GET", "/metrics")
    if code != 200:
        raise AssertionError("/metrics %d" % code)
    for line in body.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        m = re.match(r"(\w+)(?:\{(.*)\})? (\S+)$", line)
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if m.group(1) == name and all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return 0.0


def pool_status(lb, name):
    for p in lb.status()["pools"]:
        if p["name"] == name:
            return p
    raise KeyError(name)


class Rejections(unittest.TestCase):
    def test_every_reason_is_counted(self):
        echo = EchoServer()
        pa, pn, ps = free_port(), free_port(), free_port()
        dead = free_port()
        lb = Mqlb("[pool allow]\nlisten = 127.0.0.1:%d\nallow = 10.0.0.0/8\n"
                  "backend = e 127.0.0.1:%d\n"
                  "[pool none]\nlisten = 127.0.0.1:%d\ncheck_interval = 200ms\n"
                  "backend = d 127.0.0.1:%d\n"
                  "[pool src]\nlisten = 127.0.0.1:%d\nmax_conns_per_source = 1\n"
                  "backend = e 127.0.0.1:%d\n" % (pa, echo.port, pn, dead, ps, echo.port))
        try:
            lb.wait_state("none", "d", "down")
            for port in (pa, pn):
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.settimeout(5)
                    self.assertEqual(s.recv(1), b"")
            keep = socket.create_connection(("127.0.0.1", ps), timeout=5)
            keep.sendall(b"k")
            keep.recv(1)
            with socket.create_connection(("127.0.0.1", ps), timeout=5) as s:
                s.settimeout(5)
                self.assertEqual(s.recv(1), b"")
            keep.close()
            self.assertEqual(metric(lb, "mqlb_pool_rejected_total", pool="allow",
                                    reason="allow"), 1)
            self.assertEqual(metric(lb, "mqlb_pool_rejected_total", pool="none",
                                    reason="no_backend"), 1)
            self.assertEqual(metric(lb, "mqlb_pool_rejected_total", pool="src",
                                    reason="source_limit"), 1)
            by = pool_status(lb, "none")["rejected_by"]
            self.assertEqual(by["no_backend"], 1)
            self.assertEqual(set(by), {"no_backend", "allow", "source_limit",
                                       "max_connections", "queue", "sni"})
        finally:
            lb.stop()
            echo.stop()
