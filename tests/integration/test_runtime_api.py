"""The runtime API through the real binary, in front of real redis-servers:
backends added (checked, then used), deleted under load with no client
failing, moved to another address, their sessions shut down; /sessions
against what ss(8) sees; bad requests refused with their reasons; the
changes kept across a reload. With and without an admin token."""

import json
import os
import re
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "support"))

from harness import Mqlb, RedisClient, RedisServer, free_port, wait_until  # noqa: E402

TOKEN = "s3cret-token"


def who(port):
    c = RedisClient(port)
    try:
        return c.command("GET", "who")
    finally:
        c.close()


class Load:
    """Clients that connect, ask, and disconnect in a loop (bounded in count
    and time), counting every failure."""

    def __init__(self, port, nthreads=4, max_each=4000, seconds=20):
        self.port = port
        self.stop_flag = threading.Event()
        self.failures = []
        self.done = 0
        self.by = {}
        self.lock = threading.Lock()
        self.deadline = time.monotonic() + seconds
        self.threads = [threading.Thread(target=self.run, args=(max_each,), daemon=True)
                        for _ in range(nthreads)]
        for t in self.threads:
            t.start()

    def run(self, max_each):
        for _ in range(max_each):
            if self.stop_flag.is_set() or time.monotonic() > self.deadline:
                return
            try:
                w = who(self.port)
                with self.lock:
                    self.done += 1
                    self.by[w] = self.by.get(w, 0) + 1
            except Exception as e:  # noqa: BLE001 - every failure counts
                with self.lock:
                    self.failures.append(repr(e))

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(30)


class RuntimeApi:
    """The tests, run with and without a token (subclasses)."""

    token = None

    @classmethod
    def setUpClass(cls):
        cls.redis = [RedisServer() for _ in range(3)]
        for i, r in enumerate(cls.redis):
            r.command("SET", "who", "r%d" % i)

    @classmethod
    def tearDownClass(cls):
        for r in cls.redis:
            r.stop()

    def setUp(self):
        self.port = free_port()
        self.m = Mqlb("""[pool p]
listen = 127.0.0.1:%d
health_check = redis
check_interval = 200ms
rise = 1
fall = 1
backend = r0 127.0.0.1:%d
""" % (self.port, self.redis[0].port),
            admin_extra="token = %s\n" % self.token if self.token else "")

    def tearDown(self):
        self.m.stop()

    def api(self, method, path, body=None, auth=True):
        headers = {}
        if self.token and auth:
            headers["Authorization"] = "Bearer " + self.token
        if body is not None:
            headers["Content-Type"] = "application/json"
            if not isinstance(body, (str, bytes)):
                body = json.dumps(body)
        code, text, _ = self.m.http(method, path, headers=headers, body=body)
        try:
            return code, json.loads(text)
        except ValueError:
            return code, text

    def backends(self):
        code, p = self.api("GET", "/pools/p")
        self.assertEqual(code, 200, p)
        return {b["name"]: b for b in p["backends"]}

    def add(self, name, i, **kw):
        spec = {"name": name, "address": "127.0.0.1:%d" % self.redis[i].port}
        spec.update(kw)
        return self.api("POST", "/pools/p/backends", spec)

    def test_add_is_checked_then_used(self):
        code, b = self.add("r1", 1, weight=1)
        self.assertEqual(code, 201, b)
        self.assertEqual((b["name"], b["source"]), ("r1", "api"))
        self.assertEqual(b["state"], "down", "checked before it takes sessions")
        wait_until(lambda: self.backends()["r1"]["state"] == "up", 5, what="r1 up")
        got = {who(self.port) for _ in range(10)}
        self.assertEqual(got, {"r0", "r1"})
        code, b = self.api("GET", "/pools/p/backends/r1")
        self.assertEqual((code, b["state"]), (200, "up"))

    def test_delete_under_load_fails_no_client(self):
        self.assertEqual(self.add("r1", 1)[0], 201)
        wait_until(lambda: self.backends()["r1"]["state"] == "up", 5, what="r1 up")
        held = RedisClient(self.port)
        while held.command("GET", "who") != "r1":
            held.close()
            held = RedisClient(self.port)
        load = Load(self.port)
        try:
            wait_until(lambda: load.by.get("r1", 0) > 50, 10, what="load on r1")
            code, b = self.api("DELETE", "/pools/p/backends/r1")
            self.assertEqual(code, 200, b)
            self.assertEqual((b["state"], b.get("leaving")), ("drain", True))
            at_delete = dict(load.by)
            wait_until(lambda: load.by.get("r0", 0) > at_delete.get("r0", 0) + 200, 10,
                       what="load going on after the delete")
            # one held session keeps it: it is still there, draining
            self.assertIn("r1", self.backends())
            self.assertEqual(held.command("GET", "who"), "r1")
        finally:
            load.stop()
        held.close()
        wait_until(lambda: "r1" not in self.backends(), 5, what="r1 gone")
        self.assertEqual(load.failures, [], "client failures under a delete")
        self.assertGreater(load.done, 250)
        self.assertEqual(self.api("GET", "/pools/p/backends/r1")[0], 404)

    def test_readdress(self):
        code, b = self.api("POST", "/pools/p/backends/r0/address?value=127.0.0.1:%d"
                           % self.redis[2].port)
        self.assertEqual(code, 200, b)
        wait_until(lambda: who(self.port) == "r2", 5, what="new sessions on the new address")
        self.assertEqual(self.backends()["r0"]["address"], "127.0.0.1:%d" % self.redis[2].port)
        # a new address that refuses stays on trial; sessions stay put
        dead = free_port()
        code, b = self.api("POST", "/pools/p/backends/r0/address?value=127.0.0.1:%d" % dead)
        self.assertEqual(code, 200)
        wait_until(lambda: "refused" in self.backends()["r0"]["check"]["reason"], 5,
                   what="the trial's failure shown")
        self.assertEqual(self.backends()["r0"]["next_address"], "127.0.0.1:%d" % dead)
        self.assertEqual(who(self.port), "r2")

    def test_shutdown_sessions_closes_exactly_that_backends(self):
        self.assertEqual(self.add("r1", 1)[0], 201)
        wait_until(lambda: self.backends()["r1"]["state"] == "up", 5, what="r1 up")
        on = {"r0": [], "r1": []}
        for _ in range(12):
            c = RedisClient(self.port)
            on[c.command("GET", "who")].append(c)
        self.assertTrue(on["r0"] and on["r1"])
        code, b = self.api("POST", "/pools/p/backends/r1/shutdown-sessions")
        self.assertEqual((code, b["closed"]), (200, len(on["r1"])))
        for c in on["r0"]:
            self.assertEqual(c.command("PING"), "PONG")
        for c in on["r1"]:
            with self.assertRaises((ConnectionError, OSError)):
                c.command("PING")
        for cs in on.values():
            for c in cs:
                c.close()

    def test_sessions_list_matches_ss_and_close_by_id(self):
        clients = [RedisClient(self.port) for _ in range(5)]
        for c in clients:
            self.assertEqual(c.command("PING"), "PONG")
        code, s = self.api("GET", "/sessions?pool=p")
        self.assertEqual(code, 200, s)
        listed = {x["client"] for x in s["sessions"]}
        out = subprocess.run(["ss", "-tnH", "state", "established", "( sport = :%d )"
                              % self.port], capture_output=True, text=True, check=True).stdout
        seen = {line.split()[-1] for line in out.splitlines() if line.strip()}
        self.assertEqual(listed, seen)
        self.assertEqual(s["count"], 5)
        one = s["sessions"][0]
        for k in ("id", "client", "backend", "age_s", "bytes_in", "bytes_out", "idle_timeout_s"):
            self.assertIn(k, one)
        self.assertEqual(one["backend"], "r0")
        self.assertEqual(one["state"], "relaying")
        self.assertEqual(one["idle_timeout_s"], 3600)
        self.assertEqual((one["bytes_in"], one["bytes_out"]), (14, 7))
        code, s2 = self.api("GET", "/sessions?backend=r0&limit=2")
        self.assertEqual((code, len(s2["sessions"]), s2["truncated"]), (200, 2, True))
        code, r = self.api("POST", "/sessions/%d/close" % one["id"])
        self.assertEqual((code, r["closed"]), (200, 1))
        victim = [c for c in clients
                  if "127.0.0.1:%d" % c.sock.getsockname()[1] == one["client"]][0]
        with self.assertRaises((ConnectionError, OSError)):
            victim.command("PING")
        self.assertEqual(self.api("POST", "/sessions/%d/close" % one["id"])[0], 404)
        for c in clients:
            c.close()

    def test_bad_requests_say_why(self):
        self.assertEqual(self.add("r1", 1)[0], 201)
        cases = [
            ("POST", "/pools/p/backends", "{bad", 400, "bad JSON"),
            ("POST", "/pools/p/backends", "", 400, "missing body"),
            ("POST", "/pools/p/backends", {"name": "x"}, 400, "address: required"),
            ("POST", "/pools/p/backends", {"name": "x", "address": "127.0.0.1:0"}, 400,
             "address: want"),
            ("POST", "/pools/p/backends", {"name": "x", "address": "nowhere.invalid:1"}, 400,
             "does not resolve"),
            ("POST", "/pools/p/backends", {"name": "x", "address": "127.0.0.1:1",
                                           "weight": 300}, 400, "weight: want"),
            ("POST", "/pools/p/backends", {"name": "x", "address": "127.0.0.1:1",
                                           "colour": 1}, 400, "unknown field 'colour'"),
            ("POST", "/pools/nope/backends", {"name": "x", "address": "127.0.0.1:1"}, 404,
             "no such pool"),
            ("POST", "/pools/p/backends", {"name": "r1", "address": "127.0.0.1:1"}, 409,
             "exists"),
            ("DELETE", "/pools/p/backends/nope", None, 404, "no such backend"),
            ("GET", "/pools/nope", None, 404, "no such pool"),
            ("POST", "/pools/p/backends/r0/address?value=nohost", None, 400, "bad address"),
            ("POST", "/pools/p/backends/r0/address", None, 400, "missing value"),
            ("POST", "/pools/p/backends/nope/shutdown-sessions", None, 404, "no such backend"),
            ("GET", "/sessions?limit=0", None, 400, "limit"),
            ("POST", "/sessions/999999/close", None, 404, "no such session"),
        ]
        for method, path, body, status, reason in cases:
            code, r = self.api(method, path, body)
            self.assertEqual(code, status, (method, path, body, r))
            self.assertIn(reason, r["error"], (method, path, body))
        # a name still draining cannot be added again yet
        held = RedisClient(self.port)
        while held.command("GET", "who") != "r1":
            held.close()
            held = RedisClient(self.port)
        self.assertEqual(self.api("DELETE", "/pools/p/backends/r1")[0], 200)
        code, r = self.add("r1", 1)
        self.assertEqual((code, r["error"]), (409, "a backend of that name is still draining"))
        held.close()
        if self.token:
            for method, path in (("GET", "/pools/p"), ("GET", "/sessions"),
                                 ("DELETE", "/pools/p/backends/r0"),
                                 ("POST", "/pools/p/backends")):
                code, r = self.api(method, path, {"name": "y", "address": "127.0.0.1:1"}
                                   if method == "POST" else None, auth=False)
                self.assertEqual(code, 401, (method, path))
        self.assertNotIn("y", self.backends())
        self.assertEqual(self.backends()["r0"]["state"], "up")

    def test_runtime_backends_survive_a_reload(self):
        self.assertEqual(self.add("r1", 1)[0], 201)
        self.assertEqual(self.add("r2", 2)[0], 201)
        wait_until(lambda: self.backends()["r1"]["state"] == "up", 5, what="r1 up")
        # the file now has its own r2: the file's wins
        self.m.write(self.m.pools_text + "backend = r2 127.0.0.1:%d weight=3\n"
                     % self.redis[0].port)
        self.m.reload()
        self.m.wait_output("reload done", timeout=10)
        bs = self.backends()
        self.assertEqual(bs["r1"]["source"], "api")
        self.assertEqual(bs["r1"]["state"], "up", "health kept across the reload")
        self.assertEqual((bs["r2"]["source"], bs["r2"]["weight"]), ("config", 3))
        self.assertIn("replaced by the file's backend of that name", self.m.output())
        got = {who(self.port) for _ in range(12)}
        self.assertIn("r1", got)


class RuntimeApiNoToken(RuntimeApi, unittest.TestCase):
    token = None


class RuntimeApiToken(RuntimeApi, unittest.TestCase):
    token = TOKEN


if __name__ == "__main__":
    unittest.main()
