"""Issue 6: SIGHUP reloads without dropping a session or refusing a connect;
what a reload adds, removes and keeps; a bad file keeps the old config."""

import socket
import threading
import unittest
from collections import Counter

from harness import EchoServer, EchoStream, Mqlb, RedisServer, free_port, redis_port_of, wait_until


def echo_pool(port, backends, extra=""):
    text = "[pool echo]\nlisten = 127.0.0.1:%d\ncheck_interval = 200ms\n" \
           "check_timeout = 150ms\nrise = 1\nfall = 1\n%s" % (port, extra)
    for name, bport, opts in backends:
        text += "backend = %s 127.0.0.1:%d %s\n" % (name, bport, opts)
    return text


class Reload(unittest.TestCase):
    def test_20_reloads_under_load_lose_nothing(self):
        echoes = [EchoServer() for _ in range(3)]
        port = free_port()
        configs = [
            [("e1", echoes[0].port, ""), ("e2", echoes[1].port, "")],
            [("e1", echoes[0].port, ""), ("e2", echoes[1].port, ""),
             ("e3", echoes[2].port, "")],
            [("e1", echoes[0].port, "weight=3"), ("e2", echoes[1].port, ""),
             ("e3", echoes[2].port, "weight=2")],
            [("e1", echoes[0].port, ""), ("e3", echoes[2].port, "")],
        ]
        lb = Mqlb(echo_pool(port, configs[0]))
        stop = threading.Event()
        streams = [EchoStream(port, 64 << 20, 8192, 0.005, stop) for _ in range(50)]
        for s in streams:
            s.start()
        refused, connects = [], [0]

        def connector():
            while not stop.is_set() and connects[0] + len(refused) < 100000:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                        c.sendall(b"hi")
                        if c.recv(2) != b"hi":
                            refused.append("bad echo")
                    connects[0] += 1
                except OSError as e:
                    refused.append(repr(e))
        ct = threading.Thread(target=connector, daemon=True)
        ct.start()
        try:
            wait_until(lambda: all(s.nsent > 0 for s in streams), 20, what="streams running")
            for i in range(20):
                lb.write(echo_pool(port, configs[(i + 1) % len(configs)]))
                lb.reload()
                n = i + 1
                lb.wait_output("reload done", n, timeout=10)
                before = connects[0]
                wait_until(lambda: connects[0] > before + 5, 10, what="connects after reload")
            self.assertTrue(lb.alive())
        finally:
            stop.set()
            for s in streams:
                s.join(60)
            ct.join(30)
            lb.stop()
            for e in echoes:
                e.stop()
        self.assertEqual(refused, [])
        self.assertGreater(connects[0], 100)
        for s in streams:
            self.assertIsNone(s.error)
            self.assertEqual(s.nsent, s.ngot)
            self.assertEqual(s.sent.hexdigest(), s.got.hexdigest())
        self.assertNotIn("reload failed", lb.output())

    def test_added_backend_serves_removed_one_finishes_its_sessions(self):
        redis = [RedisServer() for _ in range(2)]
        echo = EchoServer()
        port = free_port()
        lb = Mqlb(echo_pool(port, [("old", echo.port, "")]))
        try:
            live = socket.create_connection(("127.0.0.1", port), timeout=5)
            live.sendall(b"before")
            self.assertEqual(live.recv(6), b"before")
            lb.write(echo_pool(port, [("new", redis[0].port, "")]))
            lb.reload()
            lb.wait_output("reload done", timeout=10)
            # new sessions go to the added backend only
            seen = Counter(redis_port_of(port) for _ in range(10))
            self.assertEqual(seen[redis[0].port], 10)
            # the removed backend's session still works
            live.sendall(b"after")
            self.assertEqual(live.recv(5), b"after")
            live.close()
            names = [b["name"] for b in lb.status()["pools"][0]["backends"]]
            self.assertEqual(names, ["new"])
        finally:
            lb.stop()
            echo.stop()
            for r in redis:
                r.stop()

    def test_invalid_file_is_reported_and_old_config_keeps_serving(self):
        redis = RedisServer()
        port = free_port()
        lb = Mqlb(echo_pool(port, [("r", redis.port, "")]))
        try:
            lb.write(echo_pool(port, [("r", redis.port, "weight=nine")]) + "bogus = 1\n")
            lb.reload()
            lb.wait_output("reload failed", timeout=10)
            out = lb.output()
            lines = open(lb.path).read().splitlines()
            for needle in ("weight=nine", "bogus"):
                lineno = next(i + 1 for i, l in enumerate(lines) if needle in l)
                self.assertIn("%s:%d:" % (lb.path, lineno), out)
            self.assertTrue(lb.alive())
            self.assertEqual(redis_port_of(port), redis.port)
            self.assertEqual(lb.backend("echo", "r")["weight"], 1)
        finally:
            lb.stop()
            redis.stop()

    def test_down_backend_stays_down_and_drain_survives_reload(self):
        redis = [RedisServer() for _ in range(2)]
        dead = free_port()
        port = free_port()
        backends = [("a", redis[0].port, ""), ("b", redis[1].port, ""),
                    ("dead", dead, "")]
        # rise = 3 at 1s: a reload must not shortcut the way back up
        checks = "check_interval = 1s\ncheck_timeout = 300ms\nrise = 3\nfall = 1\n"

        def pool(bs):
            return "[pool echo]\nlisten = 127.0.0.1:%d\n%s" % (port, checks) + "".join(
                "backend = %s 127.0.0.1:%d %s\n" % b for b in bs)
        lb = Mqlb(pool(backends))
        try:
            lb.wait_state("echo", "dead", "down")
            code, _, _ = lb.http("POST", "/pools/echo/backends/b/drain")
            self.assertEqual(code, 200)
            lb.write(pool(backends + [("c", redis[0].port, "")]))
            lb.reload()
            lb.wait_output("reload done", timeout=10)
            self.assertEqual(lb.backend("echo", "dead")["state"], "down")
            self.assertEqual(lb.backend("echo", "b")["state"], "drain")
            seen = Counter(redis_port_of(port) for _ in range(12))
            self.assertEqual(seen[redis[1].port], 0)
        finally:
            lb.stop()
            for r in redis:
                r.stop()


if __name__ == "__main__":
    unittest.main()
