"""Issue 3: the admin port of a running mqlb in front of real redis-server
brokers: every endpoint and status code, /metrics through a real Prometheus
text parser, drain/disable/enable/weight at runtime, /health 503, the token,
a battery of hostile requests, and the dashboard in a real headless
Chromium (driven by playwright-core, tests/browser/dashboard.js)."""

import datetime
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from collections import Counter

from harness import (MQLB_BIN, ROOT, Mqlb, Proc, RedisClient, RedisServer, free_port,
                     port_open, redis_encode, redis_port_of, redis_read, wait_until)

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # Debian's python3-prometheus-client is pure python: when python3 on
    # PATH is not Debian's own (pyenv, venv), use the package from there.
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        text_string_to_metric_families = None

# fast checks, but tolerant enough that a loaded machine does not flap them
CHECK = ("health_check = redis\ncheck_interval = 300ms\ncheck_timeout = 300ms\n"
         "rise = 1\nfall = 2\n")
STATES = {"up", "down", "drain", "disabled"}
BROWSER_DIR = os.path.join(ROOT, "tests", "browser")

REDIS = []      # three redis-server brokers shared by the module


def setUpModule():
    REDIS.extend(RedisServer() for _ in range(3))


def tearDownModule():
    for r in REDIS:
        r.stop()
    del REDIS[:]


def pool(name, listen, backends, extra=CHECK):
    """[pool NAME] with backends [(name, port, options)]."""
    text = "[pool %s]\nlisten = 127.0.0.1:%d\n%s" % (name, listen, extra)
    for bname, port, opts in backends:
        text += "backend = %s 127.0.0.1:%d %s\n" % (bname, port, opts)
    return text + "\n"


def wait_all_up(lb, timeout=10.0):
    """Every backend up with a passed check behind it."""
    def all_up():
        return all(b["state"] == "up" and b["check"]["result"] == "pass"
                   for p in lb.status()["pools"] for b in p["backends"])
    wait_until(all_up, timeout, what="every backend up and checked")


def json_error(test, code, body, headers, want):
    """An error answer: status <want>, a short JSON body {"error": "..."}."""
    test.assertEqual(code, want, body)
    test.assertTrue(headers.get("Content-Type", "").startswith("application/json"), headers)
    doc = json.loads(body)
    test.assertIsInstance(doc.get("error"), str)
    test.assertTrue(0 < len(doc["error"]) < 100, doc)
    test.assertLess(len(body), 200)
    return doc


def metrics(lb):
    """/metrics through prometheus_client's parser: (families by name,
    {sample name: {frozenset(labels): value}})."""
    if text_string_to_metric_families is None:
        raise AssertionError("python3-prometheus-client is missing: run make deps")
    code, body, headers = lb.http("GET", "/metrics")
    if code != 200:
        raise AssertionError("/metrics answered %d" % code)
    if not headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"):
        raise AssertionError("bad /metrics type %r" % headers.get("Content-Type"))
    families, samples = {}, {}
    for fam in text_string_to_metric_families(body):
        families[fam.name] = fam
        for s in fam.samples:
            samples.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return families, samples


def sample(samples, name, **labels):
    return samples[name][frozenset(labels.items())]


def rejected(samples, pool):
    """mqlb_pool_rejected_total of <pool> summed over its reasons."""
    return sum(v for labels, v in samples["mqlb_pool_rejected_total"].items()
               if ("pool", pool) in labels)


def is_time(v):
    """null or an ISO-8601 UTC time with milliseconds."""
    if v is None:
        return True
    datetime.datetime.strptime(v, "%Y-%m-%dT%H:%M:%S.%fZ")
    return True


class Endpoints(unittest.TestCase):
    """One mqlb, pools p (r1, r2) and solo (s1); nothing here changes state."""

    @classmethod
    def setUpClass(cls):
        cls.port, cls.solo_port = free_port(), free_port()
        a, b, c = REDIS
        cls.lb = Mqlb(pool("p", cls.port, [("r1", a.port, ""), ("r2", b.port, "")])
                      + pool("solo", cls.solo_port, [("s1", c.port, "")]))
        wait_all_up(cls.lb)

    @classmethod
    def tearDownClass(cls):
        cls.lb.stop()

    def test_health_200_ok_when_every_pool_has_an_up_backend(self):
        code, body, headers = self.lb.http("GET", "/health")
        self.assertEqual((code, body.strip()), (200, "ok"))
        self.assertTrue(headers["Content-Type"].startswith("text/plain"))
        code, body, _ = self.lb.http("HEAD", "/health")
        self.assertEqual((code, body), (200, ""))

    def test_half_closed_requests_are_answered_then_closed(self):
        # a client that sends its request and half-closes (nc -N, scripts) gets
        # the answer and the close at once; a partial one just the close
        for data, want in ((b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", b"HTTP/1.1 200 "),
                           (b"FOO /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", b"HTTP/1.1 405 "),
                           (b"GET /stat", b""), (b"!", b"")):
            for _ in range(3):
                t = time.monotonic()
                out = exchange(self.lb.admin_port, data, timeout=2)
                self.assertIsNotNone(out, data)
                self.assertTrue(out.startswith(want), (data, out[:100]))
                self.assertLess(time.monotonic() - t, 1.0)

    def test_status_has_every_spec_field_with_its_type(self):
        st = self.lb.status()
        self.assertIsInstance(st["version"], str)
        self.assertIs(type(st["uptime_s"]), int)
        self.assertGreaterEqual(st["uptime_s"], 0)
        self.assertEqual([p["name"] for p in st["pools"]], ["p", "solo"])
        want = {"p": {"r1": REDIS[0].port, "r2": REDIS[1].port}, "solo": {"s1": REDIS[2].port}}
        for p in st["pools"]:
            self.assertEqual(p["listen"], ["127.0.0.1:%d" % (self.port if p["name"] == "p"
                                                             else self.solo_port)])
            self.assertEqual(p["balance"], "roundrobin")
            self.assertEqual({b["name"]: b["address"] for b in p["backends"]},
                             {n: "127.0.0.1:%d" % port for n, port in want[p["name"]].items()})
            for b in p["backends"]:
                self.assertIn(b["state"], STATES)
                self.assertEqual(b["state"], "up")
                for k in ("weight", "active", "total", "failed", "bytes_in", "bytes_out"):
                    self.assertIs(type(b[k]), int, k)
                    self.assertGreaterEqual(b[k], 0, k)
                self.assertEqual(b["weight"], 1)
                c = b["check"]
                self.assertEqual(c["result"], "pass")
                self.assertIsInstance(c["reason"], str)
                self.assertIs(type(c["latency_ms"]), int)
                self.assertTrue(is_time(c["at"]) and c["at"] is not None)
                self.assertTrue(is_time(b["since"]))

    def test_status_bytes_in_counts_client_to_broker(self):
        before = self.lb.backend("solo", "s1")
        cmd = redis_encode("SET", "admin:bytes", "x" * 1000)
        c = RedisClient(self.solo_port)
        try:
            c.sock.sendall(cmd)
            self.assertEqual(redis_read(c.f), "OK")      # "+OK\r\n", 5 bytes back
        finally:
            c.close()
        want = (before["bytes_in"] + len(cmd), before["bytes_out"] + 5, before["total"] + 1, 0)
        got = wait_until(lambda: (lambda b: (b["bytes_in"], b["bytes_out"], b["total"],
                                             b["active"]) == want and b)(
            self.lb.backend("solo", "s1")), what="solo/s1 counters")
        self.assertEqual(got["bytes_in"] - before["bytes_in"], 1040)     # 4+9+18+7+1002

    def test_metrics_parse_with_every_name_and_agree_with_status(self):
        # one session through each backend so that counters are not all 0
        for _ in range(2):
            redis_port_of(self.port)
        redis_port_of(self.solo_port)
        wait_until(lambda: all(b["active"] == 0 for p in self.lb.status()["pools"]
                               for b in p["backends"]), what="sessions closed")
        s1 = self.lb.status()
        families, samples = metrics(self.lb)
        s2 = self.lb.status()

        kinds = {"mqlb_backend_up": "gauge", "mqlb_backend_active_sessions": "gauge",
                 "mqlb_backend_sessions": "counter", "mqlb_backend_failures": "counter",
                 "mqlb_backend_bytes": "counter", "mqlb_health_checks": "counter",
                 "mqlb_pool_rejected": "counter"}
        for fam, kind in kinds.items():
            self.assertEqual(families[fam].type, kind, fam)
            self.assertTrue(families[fam].documentation, fam)
        bkeys = {"pool", "backend"}
        label_keys = {"mqlb_backend_up": bkeys, "mqlb_backend_active_sessions": bkeys,
                      "mqlb_backend_sessions_total": bkeys,
                      "mqlb_backend_failures_total": bkeys,
                      "mqlb_backend_bytes_total": bkeys | {"direction"},
                      "mqlb_health_checks_total": bkeys | {"result"},
                      "mqlb_pool_rejected_total": {"pool", "reason"}}
        for name, keys in label_keys.items():
            self.assertIn(name, samples)
            for labels in samples[name]:
                self.assertEqual({k for k, _ in labels}, keys, name)

        for p1, p2 in zip(s1["pools"], s2["pools"]):
            pn = p1["name"]
            self.assertLessEqual(p1["rejected"], rejected(samples, pn))
            self.assertLessEqual(rejected(samples, pn), p2["rejected"])
            for b1, b2 in zip(p1["backends"], p2["backends"]):
                lb = dict(pool=pn, backend=b1["name"])
                self.assertEqual(b1["state"], b2["state"])
                self.assertEqual(sample(samples, "mqlb_backend_up", **lb),
                                 1 if b1["state"] == "up" else 0)
                self.assertEqual(sample(samples, "mqlb_backend_active_sessions", **lb), 0)
                self.assertGreaterEqual(b1["total"], 1)
                for name, key, extra in (
                        ("mqlb_backend_sessions_total", "total", {}),
                        ("mqlb_backend_failures_total", "failed", {}),
                        ("mqlb_backend_bytes_total", "bytes_in", {"direction": "in"}),
                        ("mqlb_backend_bytes_total", "bytes_out", {"direction": "out"}),
                        ("mqlb_health_checks_total", "checks_pass", {"result": "pass"}),
                        ("mqlb_health_checks_total", "checks_fail", {"result": "fail"})):
                    v = sample(samples, name, **lb, **extra)
                    self.assertTrue(b1[key] <= v <= b2[key], (name, extra, b1[key], v, b2[key]))
                self.assertGreater(sample(samples, "mqlb_health_checks_total", **lb,
                                          result="pass"), 0)

    def test_dashboard_is_self_contained_html(self):
        code, body, headers = self.lb.http("GET", "/")
        self.assertEqual(code, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.assertIn("<html", body)
        self.assertIn("default-src 'none'", headers.get("Content-Security-Policy", ""))
        ext = re.findall(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", body, re.I)
        self.assertEqual(ext, [])
        self.assertNotRegex(body, r"""(?:src|href)\s*=\s*["']?\s*https?:""")
        self.assertNotRegex(body, r"@import|url\(\s*['\"]?https?:")
        for attr in ("data", "dataset.pool", "dataset.backend", "dataset.state"):
            self.assertIn(attr, body)

    def test_unknown_paths_404(self):
        for method, path in (("GET", "/nope"), ("GET", "/status/"), ("GET", "/health/x"),
                             ("GET", "/index.html"), ("GET", "/pools"),
                             ("POST", "/pools/p/backends/r1/explode"),
                             ("POST", "/pools/p/backends/r1/drain/now"),
                             ("POST", "/pools/p/backends/r%201/drain"),
                             ("POST", "/pools//backends/r1/drain"),
                             ("POST", "/pools/p/servers/r1/drain"),
                             ("POST", "/pools/p/backends/r1/drain%00junk"),
                             ("POST", "/pools/p/backends/r1%00/drain"),
                             ("GET", "/status%00"), ("GET", "/%00")):
            code, body, headers = self.lb.http(method, path)
            json_error(self, code, body, headers, 404)
        self.assertEqual(self.lb.backend("p", "r1")["state"], "up")

    def test_wrong_methods_405_with_allow(self):
        for method, path, allow in (("POST", "/status", "GET"), ("POST", "/health", "GET"),
                                    ("POST", "/metrics", "GET"), ("POST", "/", "GET"),
                                    ("DELETE", "/status", "GET"), ("PUT", "/health", "GET"),
                                    ("GET", "/pools/p/backends/r1/drain", "POST"),
                                    ("GET", "/pools/p/backends/r1/disable", "POST"),
                                    ("PUT", "/pools/p/backends/r1/enable", "POST"),
                                    ("GET", "/pools/p/backends/r1/weight?value=3", "POST"),
                                    ("POST", "/pools/p", "GET"),
                                    ("POST", "/pools/p/backends/r1", "DELETE"),
                                    ("GET", "/pools/p/backends", "POST"),
                                    ("DELETE", "/sessions", "GET"),
                                    ("GET", "/sessions/1/close", "POST"),
                                    ("GET", "/pools/p/backends/r1/shutdown-sessions", "POST")):
            code, body, headers = self.lb.http(method, path)
            json_error(self, code, body, headers, 405)
            self.assertIn(allow, headers.get("Allow", ""), (method, path))
        b = self.lb.backend("p", "r1")
        self.assertEqual((b["state"], b["weight"]), ("up", 1))

    def test_bad_weight_values_400(self):
        for q in ("?value=abc", "?value=999", "?value=257", "?value=-1", "?value=",
                  "?value=1.5", "?value=0x10", "?value=%201", "?value=1e2", "",
                  "?weight=3", "?value=2222", "?value=3%00", "?value=%003"):
            code, body, headers = self.lb.http("POST", "/pools/p/backends/r1/weight" + q)
            json_error(self, code, body, headers, 400)
        self.assertEqual(self.lb.backend("p", "r1")["weight"], 1)

    def test_unknown_pool_or_backend_404_on_post(self):
        for path, msg in (("/pools/nope/backends/r1/drain", "pool"),
                          ("/pools/nope/backends/r1/weight?value=2", "pool"),
                          ("/pools/p/backends/nope/disable", "backend"),
                          ("/pools/p/backends/s1/enable", "backend"),
                          ("/pools/solo/backends/r1/weight?value=2", "backend")):
            code, body, headers = self.lb.http("POST", path)
            self.assertIn(msg, json_error(self, code, body, headers, 404)["error"])


class Actions(unittest.TestCase):
    """drain, disable, enable and weight on a fresh mqlb per test."""

    def setUp(self):
        self.port = free_port()
        self.a, self.b = REDIS[0], REDIS[1]
        self.lb = Mqlb(pool("p", self.port, [("r1", self.a.port, ""), ("r2", self.b.port, "")]))
        wait_all_up(self.lb)

    def tearDown(self):
        self.lb.stop()

    def post(self, path, want=200):
        code, body, headers = self.lb.http("POST", path)
        self.assertEqual(code, want, body)
        self.assertTrue(headers["Content-Type"].startswith("application/json"))
        return json.loads(body)

    def split(self, n):
        seen = Counter(redis_port_of(self.port) for _ in range(n))
        self.assertEqual(sum(seen.values()), n)
        return seen[self.a.port], seen[self.b.port]

    def test_drain_keeps_the_stream_new_sessions_go_elsewhere(self):
        sub = RedisClient(self.port)
        try:
            home = int(re.search(r"tcp_port:(\d+)", sub.command("INFO", "server")).group(1))
            name, broker, other = (("r1", self.a, self.b) if home == self.a.port
                                   else ("r2", self.b, self.a))
            self.assertEqual(sub.command("SUBSCRIBE", "admin-stream"),
                             ["subscribe", "admin-stream", 1])
            self.assertEqual(broker.command("PUBLISH", "admin-stream", "m0"), 1)
            self.assertEqual(redis_read(sub.f), ["message", "admin-stream", "m0"])

            doc = self.post("/pools/p/backends/%s/drain" % name)
            self.assertEqual((doc["ok"], doc["pool"], doc["backend"], doc["action"]),
                             (True, "p", name, "drain"))
            drained = self.lb.backend("p", name)        # shows at once
            self.assertEqual((drained["state"], drained["active"]), ("drain", 1))

            for i in range(1, 51):      # the open session keeps streaming
                msg = "m%d-%s" % (i, "y" * (i * 100))
                self.assertEqual(broker.command("PUBLISH", "admin-stream", msg), 1)
                self.assertEqual(redis_read(sub.f), ["message", "admin-stream", msg])

            ports = Counter(redis_port_of(self.port) for _ in range(30))
            self.assertEqual(ports, Counter({other.port: 30}))
            self.assertEqual(self.lb.http("GET", "/health")[0], 200)
            _, samples = metrics(self.lb)
            self.assertEqual(sample(samples, "mqlb_backend_up", pool="p", backend=name), 0)
            self.assertEqual(sample(samples, "mqlb_backend_active_sessions", pool="p",
                                    backend=name), 1)
            self.assertEqual(self.lb.backend("p", name)["state"], "drain")
        finally:
            sub.close()
        wait_until(lambda: self.lb.backend("p", name)["active"] == 0, what="drained session gone")
        self.post("/pools/p/backends/%s/enable" % name)
        self.lb.wait_state("p", name, "up")
        self.assertEqual(self.split(10), (5, 5))

    def test_disable_then_enable(self):
        # r1 on a broker of its own, so that it can die while disabled
        own = RedisServer()
        self.addCleanup(own.stop)
        self.lb.stop()
        self.a = own
        self.lb = Mqlb(pool("p", self.port, [("r1", own.port, ""), ("r2", self.b.port, "")]))
        wait_all_up(self.lb)

        doc = self.post("/pools/p/backends/r1/disable")
        self.assertEqual(doc["action"], "disable")
        self.assertEqual(self.lb.backend("p", "r1")["state"], "disabled")
        self.assertEqual(self.split(10), (0, 10))

        # checks still run and are shown, but they no longer decide the state
        fails = self.lb.backend("p", "r1")["checks_fail"]
        own.kill9()
        wait_until(lambda: self.lb.backend("p", "r1")["checks_fail"] >= fails + 3,
                   what="r1 failing its checks")
        b = self.lb.backend("p", "r1")
        self.assertEqual((b["state"], b["check"]["result"]), ("disabled", "fail"))
        self.assertEqual(self.lb.http("GET", "/health")[0], 200)      # r2 is up
        own.start()
        wait_until(lambda: self.lb.backend("p", "r1")["check"]["result"] == "pass",
                   what="r1 passing again")
        self.assertEqual(self.lb.backend("p", "r1")["state"], "disabled")
        self.assertEqual(self.split(10), (0, 10))

        doc = self.post("/pools/p/backends/r1/enable")
        self.assertEqual(doc["action"], "enable")
        self.lb.wait_state("p", "r1", "up")
        _, samples = metrics(self.lb)
        self.assertEqual(sample(samples, "mqlb_backend_up", pool="p", backend="r1"), 1)
        self.assertEqual(self.split(10), (5, 5))

    def test_weight_change_shifts_the_split(self):
        # smooth WRR: an even number of 1:1 picks leaves both current weights at 0,
        # from which every 4 picks at 3:1 go r1 r1 r2 r1
        self.assertEqual(self.split(100), (50, 50))
        doc = self.post("/pools/p/backends/r1/weight?value=3")
        self.assertEqual((doc["action"], doc["weight"]), ("weight", 3))
        self.assertEqual(self.lb.backend("p", "r1")["weight"], 3)
        _, samples = metrics(self.lb)
        self.assertEqual(sample(samples, "mqlb_backend_weight", pool="p", backend="r1"), 3)
        self.assertEqual(self.split(300), (225, 75))

        self.post("/pools/p/backends/r1/weight?value=0")
        self.assertEqual(self.lb.backend("p", "r1")["weight"], 0)
        self.assertEqual(self.split(10), (0, 10))
        self.post("/pools/p/backends/r1/weight?value=256")
        self.assertEqual(self.lb.backend("p", "r1")["weight"], 256)


class HealthDown(unittest.TestCase):
    def test_health_503_when_all_of_a_pools_backends_are_killed(self):
        d, e = RedisServer(), RedisServer()
        port, qport = free_port(), free_port()
        lb = Mqlb(pool("p", port, [("r1", d.port, ""), ("r2", e.port, "")])
                  + pool("q", qport, [("q1", REDIS[2].port, "")]))
        try:
            wait_all_up(lb)
            self.assertEqual(lb.http("GET", "/health")[0], 200)
            d.kill9()
            lb.wait_state("p", "r1", "down")
            self.assertEqual(lb.http("GET", "/health")[:2], (200, "ok\n"))
            e.kill9()
            code, body, _ = wait_until(lambda: (lambda r: r[0] == 503 and r)(
                lb.http("GET", "/health")), what="/health 503")
            self.assertNotIn("ok", body)
            lb.wait_state("p", "r2", "down")
            for name in ("r1", "r2"):
                b = lb.backend("p", name)
                self.assertEqual(b["check"]["result"], "fail")
                self.assertTrue(b["check"]["reason"])
                self.assertGreater(b["checks_fail"], 0)
            self.assertEqual(lb.backend("q", "q1")["state"], "up")

            # a client of the dead pool is turned away and counted
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                try:
                    self.assertEqual(s.recv(1), b"")
                except ConnectionResetError:
                    pass
            wait_until(lambda: lb.status()["pools"][0]["rejected"] >= 1, what="rejected")
            _, samples = metrics(lb)
            self.assertEqual(rejected(samples, "p"), lb.status()["pools"][0]["rejected"])
            self.assertEqual(sample(samples, "mqlb_pool_rejected_total", pool="p",
                                    reason="no_backend"), rejected(samples, "p"))
            self.assertEqual(rejected(samples, "q"), 0)
            for name in ("r1", "r2"):
                self.assertEqual(sample(samples, "mqlb_backend_up", pool="p", backend=name), 0)
                self.assertGreater(sample(samples, "mqlb_health_checks_total", pool="p",
                                          backend=name, result="fail"), 0)

            d = RedisServer(port=d.port)      # one comes back: 200 again
            wait_until(lambda: lb.http("GET", "/health")[0] == 200, what="/health 200")
        finally:
            lb.stop()
            d.stop()
            e.stop()


class Reasons(unittest.TestCase):
    """Issue 12 item 4: every backend in /status carries "health" (up |
    down), "admin" (ready | drain | disabled) and "reason", non-empty
    whenever it is not up and ready, and the log lines carry the same
    reason; "state" shows down over drain/disabled."""

    def sides(self, lb, pool_name, name):
        b = lb.backend(pool_name, name)
        return b["state"], b["health"], b["admin"], b["reason"]

    def test_passive_failures_give_their_count_and_cause(self):
        dead = free_port()      # nothing listens there
        port = free_port()
        lb = Mqlb(pool("p", port, [("gone", dead, "")],
                       "health_check = none\nmax_fails = 2\nretries = 0\n"))
        try:
            self.assertEqual(self.sides(lb, "p", "gone"), ("up", "up", "ready", ""))
            for _ in range(2):
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    try:
                        s.recv(1)
                    except ConnectionResetError:
                        pass
            lb.wait_state("p", "gone", "down")
            state, health, admin, reason = self.sides(lb, "p", "gone")
            self.assertEqual((state, health, admin), ("down", "down", "ready"))
            self.assertRegex(reason, r"^2 connect failures in a row: \S")
            # the check block says nothing ran; the reason says why it is down
            self.assertEqual(lb.backend("p", "gone")["check"]["result"], "none")
            wait_until(lambda: re.search(r"backend p/gone .* is down: 2 connect failures "
                                         r"in a row: \S", lb.output()), 5,
                       what="down logged with its reason")
        finally:
            lb.stop()

    def test_admin_states_name_who_and_a_drained_dead_backend_shows_both(self):
        r = RedisServer()
        port = free_port()
        lb = Mqlb(pool("p", port, [("r1", r.port, ""), ("r2", REDIS[1].port, "")]))
        try:
            wait_all_up(lb)
            self.assertEqual(self.sides(lb, "p", "r1"), ("up", "up", "ready", ""))
            self.assertEqual(lb.http("POST", "/pools/p/backends/r1/drain")[0], 200)
            self.assertEqual(self.sides(lb, "p", "r1"),
                             ("drain", "up", "drain", "drained by admin (127.0.0.1)"))
            wait_until(lambda: re.search(r"backend p/r1 .* drained by admin \(127\.0\.0\.1\)",
                                         lb.output()), 5, what="drain logged with who")
            # The broker dies while drained: down wins in state, both are told.
            r.kill9()
            wait_until(lambda: self.sides(lb, "p", "r1")[1] == "down", what="r1 down")
            state, health, admin, reason = self.sides(lb, "p", "r1")
            self.assertEqual((state, health, admin), ("down", "down", "drain"))
            self.assertRegex(reason, r"^check failed: \S.*; drained by admin \(127\.0\.0\.1\)$")
            wait_until(lambda: re.search(r"backend p/r1 .* is down: check failed: \S",
                                         lb.output()), 5, what="down logged with its reason")
            self.assertEqual(lb.http("POST", "/pools/p/backends/r2/disable")[0], 200)
            self.assertEqual(self.sides(lb, "p", "r2"),
                             ("disabled", "up", "disabled", "disabled by admin (127.0.0.1)"))
            self.assertEqual(lb.http("POST", "/pools/p/backends/r2/enable")[0], 200)
            self.assertEqual(self.sides(lb, "p", "r2"), ("up", "up", "ready", ""))
            # Every backend, every state: a reason whenever not up and ready.
            for p in lb.status()["pools"]:
                for b in p["backends"]:
                    self.assertIn(b["health"], ("up", "down"))
                    self.assertIn(b["admin"], ("ready", "drain", "disabled"))
                    self.assertEqual(b["reason"] == "",
                                     b["health"] == "up" and b["admin"] == "ready", b)
        finally:
            lb.stop()
            r.stop()


    def test_json_log_events_carry_the_reason(self):
        lb = Mqlb(pool("p", free_port(), [("r1", REDIS[0].port, "")]),
                  global_extra="log_format = json\n")
        try:
            wait_all_up(lb)
            self.assertEqual(lb.http("POST", "/pools/p/backends/r1/drain")[0], 200)

            def event():
                for line in lb.output().splitlines():
                    if line.startswith("{"):
                        e = json.loads(line)
                        if e.get("event") == "backend_admin":
                            return e
                return None
            e = wait_until(event, 5, what="backend_admin event")
            self.assertEqual((e["pool"], e["backend"], e["state"], e["reason"]),
                             ("p", "r1", "drain", "drained by admin (127.0.0.1)"))
            self.assertEqual(lb.backend("p", "r1")["reason"], e["reason"])
        finally:
            lb.stop()


class Token(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.lb = Mqlb(pool("p", cls.port, [("r1", REDIS[0].port, "")]),
                      admin_extra="token = s3cret\n")
        wait_until(lambda: cls.lb.http("GET", "/health",
                                       {"Authorization": "Bearer s3cret"})[0] == 200,
                   what="authorized /health 200")

    @classmethod
    def tearDownClass(cls):
        cls.lb.stop()

    def test_401_without_or_with_a_wrong_token(self):
        for hdrs in ({}, {"Authorization": "Bearer s3creT"}, {"Authorization": "Bearer s3cret2"},
                     {"Authorization": "Bearer s3cre"}, {"Authorization": "Bearer "},
                     {"Authorization": "Basic s3cret"}, {"Authorization": "s3cret"},
                     {"X-Token": "s3cret"}):
            for method, path in (("GET", "/status"), ("GET", "/health"), ("GET", "/metrics"),
                                 ("GET", "/nope"), ("POST", "/pools/p/backends/r1/drain")):
                code, body, headers = self.lb.http(method, path, hdrs)
                json_error(self, code, body, headers, 401)
                self.assertIn("Bearer", headers.get("WWW-Authenticate", ""))
        # the unauthorized POSTs changed nothing
        code, body, _ = self.lb.http("GET", "/status", {"Authorization": "Bearer s3cret"})
        self.assertEqual(json.loads(body)["pools"][0]["backends"][0]["state"], "up")

    def test_the_dashboard_page_is_served_without_the_token_and_asks_for_it(self):
        """Issue 12 item 8: with a token, GET / serves the page (it holds
        no data); the page asks for the token the API needs."""
        for hdrs in ({}, {"Authorization": "Bearer wrong"}):
            code, body, headers = self.lb.http("GET", "/", hdrs)
            self.assertEqual(code, 200)
            self.assertTrue(headers["Content-Type"].startswith("text/html"), headers)
            self.assertIn('id="tokenbox"', body)
        self.assertEqual(self.lb.http("GET", "/?token=wrong")[0], 200)
        self.assertEqual(self.lb.http("GET", "/status")[0], 401)

    def test_200_with_bearer_token(self):
        auth = {"Authorization": "Bearer s3cret"}
        for path in ("/status", "/health", "/metrics", "/"):
            self.assertEqual(self.lb.http("GET", path, auth)[0], 200, path)
        self.assertEqual(self.lb.http("GET", "/", {"Authorization": "bearer  s3cret "})[0], 200)
        self.assertEqual(self.lb.http("GET", "/?token=s3cret")[0], 200)     # the page only
        self.assertEqual(self.lb.http("GET", "/status?token=s3cret")[0], 401)
        self.assertEqual(self.lb.http("GET", "/nope", auth)[0], 404)
        self.assertEqual(self.lb.http("POST", "/pools/p/backends/r1/drain", auth)[0], 200)
        st = json.loads(self.lb.http("GET", "/status", auth)[1])
        self.assertEqual(st["pools"][0]["backends"][0]["state"], "drain")
        self.assertEqual(self.lb.http("POST", "/pools/p/backends/r1/enable", auth)[0], 200)

    def write(self, admin):
        d = tempfile.mkdtemp(prefix="mqlb-cfg-")
        path = os.path.join(d, "mqlb.ini")
        with open(path, "w") as f:
            f.write("[global]\nworkers = 1\n\n[admin]\n%s\n[pool p]\nlisten = 127.0.0.1:%d\n"
                    "backend = r1 127.0.0.1:%d\n" % (admin, free_port(), REDIS[0].port))
        self.addCleanup(shutil.rmtree, d, True)
        return path

    def check(self, path):
        return subprocess.run([MQLB_BIN, "-t", "-c", path], capture_output=True, text=True,
                              timeout=10)

    def test_non_loopback_listen_without_token_is_a_config_error(self):
        for addr in ("0.0.0.0:%d", "[::]:%d"):
            path = self.write("listen = %s\n" % (addr % free_port()))
            r = self.check(path)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("%s:5:" % path, r.stderr)     # line 5: the listen line
            self.assertIn("token", r.stderr)
        path = self.write("listen = 0.0.0.0:%d\ntoken = s3cret\n" % free_port())
        self.assertEqual(self.check(path).returncode, 0)
        path = self.write("listen = 127.0.0.1:%d\n" % free_port())
        self.assertEqual(self.check(path).returncode, 0)


class BrowserGuards(unittest.TestCase):
    """Issue 12 item 8: a web page in the operator's browser cannot use the
    admin port: a Host that is not the admin's (DNS rebinding) and a POST
    with another site's Origin are refused with 403, token or not."""

    def raw(self, lb, method, path, host, extra=""):
        with socket.create_connection(("127.0.0.1", lb.admin_port), timeout=5) as s:
            s.sendall(("%s %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n"
                       % (method, path, host, extra)).encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), body.decode()

    def test_rebinding_and_cross_site_posts_are_refused(self):
        lb = Mqlb(pool("p", free_port(), [("r1", REDIS[0].port, "")]),
                  admin_extra="allowed_hosts = mqlb.example.test\n")
        try:
            own = "127.0.0.1:%d" % lb.admin_port
            for path in ("/status", "/metrics", "/health", "/"):
                code, body = self.raw(lb, "GET", path, "rebind.example.test:%d" % lb.admin_port)
                self.assertEqual(code, 403, path)
                self.assertIn("allowed_hosts", json.loads(body)["error"])
            self.assertEqual(self.raw(lb, "GET", "/status", own)[0], 200)
            self.assertEqual(self.raw(lb, "GET", "/status", "localhost:%d" % lb.admin_port)[0],
                             200)
            self.assertEqual(self.raw(lb, "GET", "/status", "MQLB.example.test:%d" %
                                      lb.admin_port)[0], 200)
            # a cross-site POST (no token configured) drains nothing
            for origin in ("http://evil.example.test", "null", "http://127.0.0.1:1"):
                code, body = self.raw(lb, "POST", "/pools/p/backends/r1/drain", own,
                                      "Origin: %s\r\n" % origin)
                self.assertEqual(code, 403, origin)
                self.assertEqual(json.loads(body)["error"], "cross-site request refused")
            self.assertEqual(lb.backend("p", "r1")["admin"], "ready")
            # the page's own POST, and a script's without Origin, act
            self.assertEqual(self.raw(lb, "POST", "/pools/p/backends/r1/drain", own,
                                      "Origin: http://%s\r\n" % own)[0], 200)
            self.assertEqual(lb.backend("p", "r1")["admin"], "drain")
            self.assertEqual(lb.http("POST", "/pools/p/backends/r1/enable")[0], 200)
        finally:
            lb.stop()


def exchange(port, data, timeout=2.0):
    """Send <data>, half-close, read the answer until the server closes.
    Returns the bytes read (b"" when it just closed), or None when the
    server kept the half-closed connection open for <timeout> s."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:         # closed on us while sending: an answer too
            pass
        try:
            while len(out) < 1 << 20:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except ConnectionResetError:
            pass
        except socket.timeout:
            return None
    return out


def bad_requests():
    """The 200 requests of the battery, as (kind, bytes, how); how is
    "send" (send, half-close, read the answer), "hold" (send part, keep
    the connection open) or "trickle" (one byte at a time, then abandon)."""
    rnd = random.Random(3)
    host = b"Host: 127.0.0.1\r\n"
    reqs = []
    for n in (1, 2, 17, 300, 4096, 65536, 200000):
        for _ in range(4):
            reqs.append(("garbage", rnd.randbytes(n), "send"))
    for _ in range(4):
        reqs.append(("garbage-lines", b"\r\n".join(rnd.randbytes(40) for _ in range(50))
                     + b"\r\n\r\n", "send"))
    pad = b"X-Pad-%05d: " + b"p" * 1000 + b"\r\n"
    mib_headers = b"".join(pad % i for i in range((1 << 20) // len(pad) + 1))
    for _ in range(3):
        reqs.append(("1MiB-headers", b"GET /status HTTP/1.1\r\n" + host + mib_headers + b"\r\n",
                     "send"))
        reqs.append(("1MiB-header-line", b"GET /status HTTP/1.1\r\n" + host + b"X-Big: "
                     + b"b" * (1 << 20) + b"\r\n\r\n", "send"))
        reqs.append(("1MiB-cookie-unfinished", b"GET /status HTTP/1.1\r\nCookie: "
                     + b"c" * (1 << 20), "send"))
    for n in (2000, 10000, 100000, 1 << 20):
        reqs.append(("long-url", b"GET /" + b"u" * n + b" HTTP/1.1\r\n" + host + b"\r\n", "send"))
        reqs.append(("long-query", b"GET /status?" + b"q=1&" * (n // 4) + b" HTTP/1.1\r\n"
                     + host + b"\r\n", "send"))
        reqs.append(("long-action", b"POST /pools/" + b"p" * n + b"/backends/r1/drain HTTP/1.1\r\n"
                     + host + b"Content-Length: 0\r\n\r\n", "send"))
    methods = [b"FOO", b"get", b"G ET", b"\xff\xfe", b"CONNECT", b"TRACE", b"OPTIONS",
               b"PATCH", b"PRI", b"GET GET", b"M" * 5000, b"\x16\x03\x01\x02\x00\x01"]
    for m in methods:
        reqs.append(("method", m + b" /status HTTP/1.1\r\n" + host + b"\r\n", "send"))
    nul = [b"GET /sta\x00tus HTTP/1.1\r\n" + host + b"\r\n",
           b"GET /status HTTP/1.1\r\nHost: \x00\r\n\r\n",
           b"GET /status HTTP/1.1\r\n" + host + b"X-N\x00ul: 1\r\n\r\n",
           b"GET /status\x00 HTTP/1.1\r\n" + host + b"\r\n",
           b"\x00" * 1000,
           b"GET /status HTTP/1.1\x00\r\n" + host + b"\r\n",
           b"POST /pools/p/backends/r1\x00/drain HTTP/1.1\r\n" + host + b"\r\n",
           b"GET /%00 HTTP/1.1\r\n" + host + b"\r\n",
           b"POST /pools/p/backends/r1/disable%00 HTTP/1.1\r\n" + host + b"\r\n",
           b"POST /pools/p/backends/r1/weight?value=0%00 HTTP/1.1\r\n" + host + b"\r\n"]
    for r in nul:
        reqs.append(("nul", r, "send"))
    malformed = [b"GET / HTTP/9.9\r\n" + host + b"\r\n", b"GET / HTTP/1.1\r\n\r\n",
                 b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
                 b"GET /status HTTP/1.1\r\n folded: x\r\n" + host + b"\r\n",
                 b"GET /status HTTP/1.1\r\n" + host + b"Content-Length: -1\r\n\r\n",
                 b"GET /status HTTP/1.1\r\n" + host + b"Content-Length: 99999999999999999999\r\n\r\n",
                 b"GET /status HTTP/1.1\r\n" + host + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                 b"POST /nope HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
                 b"POST /nope HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\n"
                 + b"ffffffffffffffffff\r\n",
                 b"\r\n\r\n\r\n\r\n", b"GET\r\n\r\n", b"GET /status\r\n\r\n", b" / HTTP/1.1\r\n\r\n",
                 b"GET /%zz HTTP/1.1\r\n" + host + b"\r\n",
                 b"GET /../../etc/passwd HTTP/1.1\r\n" + host + b"\r\n",
                 b"GET http://example.invalid/status HTTP/1.1\r\n" + host + b"\r\n",
                 b"GET /status HTTP/1.1\n" + host + b"\n",
                 b"GET /status HTTP/1.1\r\n" + host + b"Authorization: Bearer " + b"t" * 5000
                 + b"\r\n\r\n",
                 b"GET /status HTTP/1.1\r\n" + host + b"Expect: 100-continue\r\n\r\n",
                 b"POST /pools/p/backends/r1/weight?value=%ff HTTP/1.1\r\n" + host + b"\r\n",
                 b"POST /pools/p/backends/r1/weight?value=1&value=x HTTP/1.1\r\n" + host + b"\r\n",
                 b"GET /status HTTP/1.1\r\n" + host + b"Upgrade: websocket\r\n"
                 b"Connection: Upgrade\r\n\r\n",
                 b"GET /status HTTP/1.0\r\n\r\n" + b"GET /nope HTTP/1.1\r\n" * 100,
                 b"HTTP/1.1 200 OK\r\n\r\n"]
    for r in malformed:
        reqs.append(("malformed", r, "send"))
    # the runtime API: bodies, ids, names and values that must all be refused
    add = b"POST /pools/p/backends HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\n"

    def body(b):
        return add + b"Content-Length: %d\r\n\r\n" % len(b) + b

    api = [body(b"{"), body(b"[]"), body(b"null"), body(b"\x00" * 64), body(rnd.randbytes(300)),
           body(b"[" * 100000 + b"]" * 100000), body(b'{"name":"' + b"n" * 5000 + b'"}'),
           body(b'{"name":"x\u0000y","address":"127.0.0.1:1"}'),
           body(b'{"name":"x","address":"127.0.0.1:99999"}'),
           body(b'{"name":"x","address":"127.0.0.1:1","weight":1e400}'),
           body(b'{"name":"x","address":"127.0.0.1:1","weight":18446744073709551617}'),
           body(b'{"name":"x","address":"a b:1"}'), body(b'{"name":"r1","address":"\xff:1"}'),
           body(b'{"name":"x","address":"127.0.0.1:1","backup":"yes"}'),
           body(b'{"name":"x","address":"127.0.0.1:1","x":' + b"1" * 3000 + b"}"),
           add + b"Content-Length: 1048576\r\n\r\n" + b"{" * (1 << 20),
           add + b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"nam\r\n0\r\n\r\n",
           add + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
           add + b"\r\n",
           b"POST /pools/nope/backends HTTP/1.1\r\n" + host
           + b'Content-Length: 40\r\n\r\n{"name":"x","address":"127.0.0.1:1"}    ',
           b"DELETE /pools/p/backends/nope HTTP/1.1\r\n" + host + b"\r\n",
           b"DELETE /pools/nope/backends/r1 HTTP/1.1\r\n" + host + b"\r\n",
           b"DELETE /pools/p/backends/r1%00 HTTP/1.1\r\n" + host + b"\r\n",
           b"GET /sessions?limit=abc HTTP/1.1\r\n" + host + b"\r\n",
           b"GET /sessions?limit=0 HTTP/1.1\r\n" + host + b"\r\n",
           b"GET /sessions?limit=99999999999999999999999 HTTP/1.1\r\n" + host + b"\r\n",
           b"GET /sessions?pool=%00&backend=../.. HTTP/1.1\r\n" + host + b"\r\n",
           b"POST /sessions/abc/close HTTP/1.1\r\n" + host + b"\r\n",
           b"POST /sessions/99999999999999999999999/close HTTP/1.1\r\n" + host + b"\r\n",
           b"POST /sessions/424242/close HTTP/1.1\r\n" + host + b"\r\n",
           b"POST /pools/p/backends/r1/address?value=garbage HTTP/1.1\r\n" + host + b"\r\n",
           b"POST /pools/p/backends/r1/address?value=%00 HTTP/1.1\r\n" + host + b"\r\n",
           b"POST /pools/p/backends/r1/address?value=h:0 HTTP/1.1\r\n" + host + b"\r\n",
           b"POST /pools/p/backends/r1/address?value=" + b"h" * 10000 + b":1 HTTP/1.1\r\n"
           + host + b"\r\n",
           b"POST /pools/p/backends/nope/shutdown-sessions HTTP/1.1\r\n" + host + b"\r\n"]
    for r in api:
        reqs.append(("runtime-api", r, "send"))
    for i in range(16):
        part = [b"GET /status HTTP/1.1\r\n" + host,
                b"GET /sta",
                b"POST /nope HTTP/1.1\r\n" + host + b"Content-Length: 1000\r\n\r\n" + b"x" * 10,
                b"G"][i % 4]
        reqs.append(("half-sent", part, "hold"))
    for _ in range(4):
        reqs.append(("trickle", b"GET /status HTTP/1.1\r\n" + host + b"\r\n", "trickle"))
    while len(reqs) < 200:
        reqs.append(("garbage", rnd.randbytes(rnd.randint(1, 2000)), "send"))
    return reqs[:200]


class Robustness(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.lb = Mqlb(pool("p", cls.port, [("r1", REDIS[0].port, ""), ("r2", REDIS[1].port, "")]))
        wait_all_up(cls.lb)

    @classmethod
    def tearDownClass(cls):
        cls.lb.stop()

    def relays_fast(self, n=20, limit=1.0):
        """n fresh sessions through the pool each answer PING within <limit> s."""
        worst = 0.0
        for _ in range(n):
            t = time.monotonic()
            c = RedisClient(self.port, timeout=limit + 1)
            try:
                self.assertEqual(c.command("PING"), "PONG")
            finally:
                c.close()
            worst = max(worst, time.monotonic() - t)
        self.assertLess(worst, limit)

    def status_fast(self, limit=1.0):
        t = time.monotonic()
        code, body, _ = self.lb.http("GET", "/status")
        self.assertEqual(code, 200)
        self.assertEqual(len(json.loads(body)["pools"]), 1)
        self.assertLess(time.monotonic() - t, limit)

    def trickle(self, data, deadline, result):
        """One byte at a time while the server stays silent; abandon at <deadline>."""
        s = socket.create_connection(("127.0.0.1", self.lb.admin_port), timeout=2)
        try:
            s.settimeout(0.05)
            sent = 0
            while time.monotonic() < deadline and sent < len(data) - 1:
                s.sendall(data[sent:sent + 1])
                sent += 1
                try:                    # the request is incomplete: no answer
                    result.append(("answered early", s.recv(100)))
                    return
                except socket.timeout:
                    pass
            result.append(("abandoned", sent))
        except OSError as e:
            result.append(("error", repr(e)))
        finally:
            s.close()

    def test_200_bad_requests_then_still_relays_and_answers(self):
        reqs = bad_requests()
        self.assertEqual(len(reqs), 200)
        names = [b["name"] for b in self.lb.status()["pools"][0]["backends"]]
        held, trickled, threads, answers = [], [], [], Counter()
        deadline = time.monotonic() + 1.5
        try:
            for kind, data, how in reqs:
                if how == "hold":
                    s = socket.create_connection(("127.0.0.1", self.lb.admin_port), timeout=2)
                    s.sendall(data)
                    held.append(s)
                elif how == "trickle":
                    t = threading.Thread(target=self.trickle, args=(data, deadline, trickled),
                                         daemon=True)
                    t.start()
                    threads.append(t)
                else:
                    out = exchange(self.lb.admin_port, data)
                    self.assertIsNotNone(out, "half-closed admin connection kept open: %s %r"
                                         % (kind, data[:80]))
                    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", out)
                    code = int(m.group(1)) if m else (0 if out == b"" else -1)
                    answers[(kind, code)] += 1
                    # MHD tolerates some oddities (no Host, bare LF...): those may get
                    # 100 or 200, or 403 for a Host that is not ours; nothing may
                    # get a 5xx other than 501 or 505
                    allowed = {0, 400, 403, 404, 405, 413, 414, 431, 501, 505}
                    if kind == "runtime-api":
                        allowed = {0, 400, 403, 404, 405, 413}
                    elif not kind.startswith("garbage"):
                        allowed |= {100, 200}
                    self.assertIn(code, allowed, (kind, data[:80], out[:200]))
            self.assertTrue(self.lb.alive())
            # relaying and the admin port are fine while the rest is still held open
            self.relays_fast()
            self.status_fast()
            for t in threads:
                t.join(10)
                self.assertFalse(t.is_alive())
            self.assertEqual([r[0] for r in trickled], ["abandoned"] * 4, trickled)
        finally:
            for s in held:
                s.close()
        self.assertTrue(self.lb.alive(), self.lb.output()[-2000:])
        self.relays_fast()
        self.status_fast()
        self.assertEqual(self.lb.http("GET", "/health")[0], 200)
        # nothing in the battery drained, disabled or re-weighted anything
        self.assertEqual({(b["state"], b["weight"])
                          for b in self.lb.status()["pools"][0]["backends"]}, {("up", 1)})
        # ... nor added, removed or moved one (the runtime API's requests)
        self.assertEqual([b["name"] for b in self.lb.status()["pools"][0]["backends"]], names)
        self.assertNotIn("leaving", str(self.lb.status()))
        self.assertNotIn("AddressSanitizer", self.lb.output())

    def test_relay_unaffected_while_80_idle_admin_connections_are_held(self):
        held = []
        try:
            for _ in range(80):
                try:
                    held.append(socket.create_connection(("127.0.0.1", self.lb.admin_port),
                                                         timeout=2))
                except OSError:
                    break
            self.assertGreaterEqual(len(held), 64)
            self.relays_fast(n=50, limit=0.5)
            self.assertTrue(self.lb.alive())
        finally:
            for s in held:
                s.close()
        wait_until(lambda: self.lb.http("GET", "/status")[0] == 200, what="/status again")
        self.status_fast()


def browser_ready():
    return (shutil.which("node") is not None and os.access("/usr/bin/chromium", os.X_OK)
            and os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")))


@unittest.skipUnless(browser_ready(), "needs node, /usr/bin/chromium and npm ci in "
                     "tests/browser (make deps)")
class Browser(unittest.TestCase):
    def test_dashboard_in_headless_chromium_shows_backends_and_drain_click(self):
        port, qport = free_port(), free_port()
        a, b, c = REDIS
        lb = Mqlb(pool("p", port, [("r1", a.port, ""), ("r2", b.port, "weight=2")])
                  + pool("q", qport, [("q1", c.port, "")]))
        try:
            wait_all_up(lb)
            lb.http("POST", "/pools/q/backends/q1/disable")
            lb.wait_state("q", "q1", "disabled")
            base = "http://127.0.0.1:%d" % lb.admin_port
            r = subprocess.run(["node", os.path.join(BROWSER_DIR, "dashboard.js"), base, "p", "r2"],
                               capture_output=True, text=True, timeout=90, cwd=BROWSER_DIR)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            page = json.loads(r.stdout)

            want = {("p", "r1"): "up", ("p", "r2"): "up", ("q", "q1"): "disabled"}
            rows = {(x["pool"], x["backend"]): x for x in page["rows"]}
            self.assertEqual({k: v["state"] for k, v in rows.items()}, want)
            for k, v in rows.items():
                self.assertEqual(v["badge"].strip().lower(), want[k])
            after = {(x["pool"], x["backend"]): x for x in page["after"]}
            want[("p", "r2")] = "drain"
            self.assertEqual({k: v["state"] for k, v in after.items()}, want)
            self.assertEqual(after[("p", "r2")]["badge"].strip().lower(), "drain")
            self.assertEqual(lb.backend("p", "r2")["state"], "drain")
            self.assertEqual(lb.backend("p", "r1")["state"], "up")

            self.assertEqual(page["errors"], [])
            self.assertIn(base + "/pools/p/backends/r2/drain", page["requests"])
            self.assertEqual([u for u in page["requests"] if not u.startswith(base + "/")], [])
            # issue 12 item 4: health and admin apart, and the reason
            self.assertEqual((rows[("q", "q1")]["health"], rows[("q", "q1")]["admin"],
                              rows[("q", "q1")]["reason"]),
                             ("up", "disabled", "disabled by admin (127.0.0.1)"))
            self.assertEqual((rows[("p", "r1")]["admin"], rows[("p", "r1")]["reason"]),
                             ("ready", ""))
            self.assertEqual(after[("p", "r2")]["admin"], "drain")
            # issue 12 item 8: no token configured, no token field
            self.assertFalse(page["asked_token"])
            self.assertFalse(page["token_visible"])
        finally:
            lb.stop()

    def test_with_a_token_the_page_asks_for_it_and_then_works(self):
        """Issue 12 item 8: with a token, GET / serves the dashboard, which
        asks for the token (the API needs it) and works once given."""
        port = free_port()
        lb = Mqlb(pool("p", port, [("r1", REDIS[0].port, ""), ("r2", REDIS[1].port, "")]),
                  admin_extra="token = s3cret\n")
        try:
            auth = {"Authorization": "Bearer s3cret"}
            wait_until(lambda: all(b["check"]["result"] == "pass" for b in json.loads(
                lb.http("GET", "/status", auth)[1])["pools"][0]["backends"]),
                what="every backend checked")
            base = "http://127.0.0.1:%d" % lb.admin_port
            r = subprocess.run(["node", os.path.join(BROWSER_DIR, "dashboard.js"), base, "p",
                                "r2", "s3cret"],
                               capture_output=True, text=True, timeout=90, cwd=BROWSER_DIR)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            page = json.loads(r.stdout)
            self.assertTrue(page["asked_token"], "the page asked before showing data")
            self.assertTrue(page["token_visible"])
            self.assertEqual({x["backend"] for x in page["rows"]}, {"r1", "r2"})
            self.assertEqual(page["errors"], [])
            st = json.loads(lb.http("GET", "/status", auth)[1])
            self.assertEqual(st["pools"][0]["backends"][1]["admin"], "drain")
        finally:
            lb.stop()

    def test_a_web_page_can_neither_rebind_nor_post_cross_site(self):
        """Issue 12 item 8, from a real browser: a page whose host name is
        rebound to 127.0.0.1 gets 403, and a cross-site fetch() POST from
        another origin drains nothing (no token configured)."""
        docroot = tempfile.mkdtemp(prefix="mqlb-evil-")
        self.addCleanup(shutil.rmtree, docroot, ignore_errors=True)
        with open(os.path.join(docroot, "index.html"), "w") as f:
            f.write("<!DOCTYPE html><title>elsewhere</title>\n")
        evil_port = free_port()
        evil = Proc([sys.executable, "-m", "http.server", str(evil_port), "--bind", "127.0.0.1",
                     "--directory", docroot], "evil-%d" % evil_port)
        self.addCleanup(evil.stop)
        lb = Mqlb(pool("p", free_port(), [("r1", REDIS[0].port, "")]))
        try:
            wait_all_up(lb)
            wait_until(lambda: port_open(evil_port), what="evil page server")
            r = subprocess.run(["node", os.path.join(BROWSER_DIR, "attack.js"),
                                str(lb.admin_port), "http://127.0.0.1:%d/" % evil_port, "p",
                                "r1"],
                               capture_output=True, text=True, timeout=90, cwd=BROWSER_DIR)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            out = json.loads(r.stdout)
            self.assertEqual(out["rebind_status"], 403, out)
            self.assertNotIn("pools", out["rebind_body"])
            self.assertEqual(out["post"], "sent")
            # the POST reached mqlb (it logs the 403 reason nowhere else): the
            # backend stays ready
            self.assertEqual(lb.backend("p", "r1")["admin"], "ready")
            self.assertEqual(lb.backend("p", "r1")["state"], "up")
        finally:
            lb.stop()


if __name__ == "__main__":
    unittest.main()
