"""/metrics as an operator's Prometheus sees it: every family the README
lists, with its type and labels, after traffic, a reload (good and bad), a
backend down and up, and rejections; `promtool check metrics`; and the
shipped Grafana dashboard and alert rules use only names mqlb exports."""

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import unittest

from harness import ROOT, Mqlb, RedisClient, RedisServer, free_port, wait_until
from test_admin import metrics, sample

CHECK = "health_check = redis\ncheck_interval = 200ms\nrise = 1\nfall = 1\n"

FAMILIES = {
    "mqlb_pool_sessions_total": "counter",
    "mqlb_pool_retries_total": "counter",
    "mqlb_pool_rejected_total": "counter",
    "mqlb_session_duration_seconds": "histogram",
    "mqlb_backend_connect_seconds": "histogram",
    "mqlb_backend_check_seconds": "histogram",
    "mqlb_backend_transitions_total": "counter",
    "mqlb_backend_downtime_seconds_total": "counter",
    "mqlb_backend_checks_total": "counter",
    "mqlb_reloads_total": "counter",
    "mqlb_config_last_reload_success_timestamp_seconds": "gauge",
    "mqlb_config_last_reload_successful": "gauge",
    "mqlb_log_dropped_lines_total": "counter",
    "mqlb_max_connections": "gauge",
    "mqlb_max_connections_reached_total": "counter",
    "process_start_time_seconds": "gauge",
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
}


def raw_metrics(lb):
    code, body, _ = lb.http("GET", "/metrics")
    assert code == 200, code
    return body


def exported_names(text):
    """Every sample name a scrape can hold (histograms: _bucket/_sum/_count)."""
    names = set()
    for m in re.finditer(r"(?m)^# TYPE (\S+) (\S+)$", text):
        name, typ = m.group(1), m.group(2)
        names.add(name)
        if typ == "histogram":
            names.update(name + s for s in ("_bucket", "_sum", "_count"))
    return names


def ping(port):
    c = RedisClient(port)
    try:
        assert c.command("PING") in ("PONG", b"PONG"), "no PONG"
    finally:
        c.close()


class Metrics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer()
        cls.port = free_port()
        cls.dead = free_port()          # nothing listens here
        cls.text = ("[pool r]\nlisten = 127.0.0.1:%d\n%sbackend = r1 127.0.0.1:%d\n"
                    % (cls.port, CHECK, cls.redis.port))
        cls.lb = Mqlb(cls.text)

    @classmethod
    def tearDownClass(cls):
        cls.lb.stop()
        cls.redis.stop()

    def test_families_types_and_values_after_traffic_reload_and_down(self):
        lb = self.lb
        wait_until(lambda: lb.backend("r", "r1")["state"] == "up", 10, what="r1 up")
        for _ in range(5):
            ping(self.port)
        # a good reload, then a bad one
        lb.reload()
        lb.wait_output("reload done", timeout=10)
        with open(lb.path, "a") as f:
            f.write("bogus_key = 1\n")
        lb.reload()
        lb.wait_output("reload failed", timeout=10)
        lb.write(self.text)
        # a backend down (stopped) and up again
        self.redis.stop()
        wait_until(lambda: lb.backend("r", "r1")["state"] == "down", 10, what="down")
        # a client while no backend is up is rejected
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.settimeout(5)
        self.assertEqual(s.recv(10), b"")
        s.close()
        self.redis.start()
        wait_until(lambda: lb.backend("r", "r1")["state"] == "up", 15, what="up again")
        ping(self.port)

        text = raw_metrics(lb)
        types = dict(re.findall(r"(?m)^# TYPE (\S+) (\S+)$", text))
        for name, typ in FAMILIES.items():
            self.assertEqual(types.get(name), typ, name)
        fams, samples = metrics(lb)     # prometheus_client parses it all
        self.assertEqual(sample(samples, "mqlb_pool_sessions_total", pool="r"), 7)
        # every session that ended is in the duration histogram
        wait_until(lambda: sample(metrics(lb)[1], "mqlb_session_duration_seconds_count",
                                  pool="r") >= 7, 5, what="durations")
        _, samples = metrics(lb)
        self.assertEqual(sample(samples, "mqlb_session_duration_seconds_count", pool="r"),
                         sample(samples, "mqlb_session_duration_seconds_bucket", pool="r",
                                le="+Inf"))
        # 6 sessions reached the broker: 6 connects timed
        self.assertEqual(sample(samples, "mqlb_backend_connect_seconds_count",
                                pool="r", backend="r1"), 6)
        # every check verdict is timed once
        checks = (sample(samples, "mqlb_backend_checks_total", pool="r", backend="r1",
                         result="pass") +
                  sample(samples, "mqlb_backend_checks_total", pool="r", backend="r1",
                         result="fail"))
        self.assertGreaterEqual(checks, 2)
        # (a check may land between the two reads of one scrape)
        self.assertIn(sample(samples, "mqlb_backend_check_seconds_count",
                             pool="r", backend="r1"), (checks, checks + 1))
        self.assertEqual(sample(samples, "mqlb_backend_transitions_total",
                                pool="r", backend="r1", to="down"), 1)
        self.assertEqual(sample(samples, "mqlb_backend_transitions_total",
                                pool="r", backend="r1", to="up"), 1)
        self.assertGreater(sample(samples, "mqlb_backend_downtime_seconds_total",
                                  pool="r", backend="r1"), 0)
        self.assertEqual(sample(samples, "mqlb_reloads_total", result="success"), 1)
        self.assertEqual(sample(samples, "mqlb_reloads_total", result="failure"), 1)
        self.assertEqual(sample(samples, "mqlb_config_last_reload_successful"), 0)
        rejected = sum(v for k, v in samples["mqlb_pool_rejected_total"].items()
                       if dict(k)["pool"] == "r")
        self.assertGreaterEqual(rejected, 1)
        self.assertGreater(sample(samples, "process_resident_memory_bytes"), 1 << 20)
        self.assertGreater(sample(samples, "process_open_fds"), 5)
        self.assertGreater(sample(samples, "process_start_time_seconds"), 1.6e9)

    @unittest.skipUnless(shutil.which("promtool"), "promtool (Debian prometheus) missing")
    def test_promtool_accepts_the_page(self):
        r = subprocess.run(["promtool", "check", "metrics"], input=raw_metrics(self.lb),
                           capture_output=True, text=True, timeout=60)
        # promtool exits 1 for lint warnings too: fail on any line it prints
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_grafana_and_rules_use_only_exported_names(self):
        names = exported_names(raw_metrics(self.lb))
        # TLS families appear on every page, samples or not
        exprs = []
        with open(os.path.join(ROOT, "etc", "grafana", "mqlb.json")) as f:
            dash = json.load(f)
        for p in dash["panels"]:
            exprs += [t["expr"] for t in p["targets"]]
        with open(os.path.join(ROOT, "etc", "prometheus", "mqlb-rules.yml")) as f:
            exprs += re.findall(r"(?m)^\s+expr: (.+)$", f.read())
        self.assertGreater(len(exprs), 10)
        used = set()
        for e in exprs:
            used.update(re.findall(r"\b((?:mqlb|process)_[a-z_]+)\b", e))
        self.assertFalse(used - names, "not exported: %s" % sorted(used - names))


@unittest.skipUnless(shutil.which("promtool"), "promtool (Debian prometheus) missing")
class AlertRules(unittest.TestCase):
    def test_promtool_check_rules(self):
        r = subprocess.run(["promtool", "check", "rules",
                            os.path.join(ROOT, "etc", "prometheus", "mqlb-rules.yml")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)


if __name__ == "__main__":
    unittest.main()


BROWSER_DIR = os.path.join(ROOT, "tests", "browser")


@unittest.skipUnless(shutil.which("node") and os.path.exists("/usr/bin/chromium"),
                     "node or chromium missing: run make deps")
class DashboardCharts(unittest.TestCase):
    def test_charts_draw_the_server_samples(self):
        redis = RedisServer()
        port = free_port()
        lb = Mqlb("[pool r]\nlisten = 127.0.0.1:%d\nbackend = r1 127.0.0.1:%d\n"
                  % (port, redis.port))
        stop = threading.Event()

        def traffic():
            # bounded: at most 2000 short sessions, at most 40 s
            deadline = time.monotonic() + 40
            for _ in range(2000):
                if stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    ping(port)
                except (OSError, AssertionError):
                    pass
                time.sleep(0.02)
        t = threading.Thread(target=traffic, daemon=True)
        t.start()
        try:
            base = "http://127.0.0.1:%d" % lb.admin_port
            r = subprocess.run(["node", os.path.join(BROWSER_DIR, "charts.js"), base, "r", "2"],
                               capture_output=True, text=True, timeout=90)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            page = json.loads(r.stdout)
            charts = {c["cls"].split()[1]: c for c in page["pool_charts"]}
            self.assertEqual(set(charts), {"sessions", "bytes", "active"})
            self.assertGreaterEqual(charts["active"]["points"], 2)
            self.assertGreaterEqual(charts["sessions"]["points"], 1)
            self.assertGreater(charts["sessions"]["max_y"], 0)
            self.assertGreater(charts["bytes"]["max_y"], 0)
            self.assertEqual(len(page["backend_trends"]["r1"]), 3)
            self.assertGreaterEqual(page["backend_trends"]["r1"][2], 2)
            self.assertEqual(page["generation"], "1")
            self.assertEqual(page["errors"], [])
            self.assertIn(base + "/history", page["requests"])
            self.assertEqual([u for u in page["requests"] if not u.startswith(base + "/")], [])
        finally:
            stop.set()
            t.join(10)
            lb.stop()
            redis.stop()
