"""DNS discovery against a real DNS server (dnsmasq, started here on a
loopback port, its records rewritten by the test) and real redis-servers:
SRV targets become backends and leave again, an A record that moves moves
its backend, and a DNS outage keeps the pool serving."""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "support"))

from dns_server import DnsServer  # noqa: E402
from harness import (Mqlb, Proc, RedisClient, RedisServer, free_port,  # noqa: E402
                     port_open, wait_port, wait_until)

SRV = "_redis._tcp.mqlb.test"


def pool_of(m, name):
    for p in m.status()["pools"]:
        if p["name"] == name:
            return p
    raise KeyError(name)


def backends_of(m, pool):
    return {b["name"]: b for b in pool_of(m, pool)["backends"]}


def who(port):
    """The redis-server that answers a new connection through <port>: the
    value of its 'who' key, set on each server by the test."""
    c = RedisClient(port)
    try:
        return c.command("GET", "who")
    finally:
        c.close()


class Timeline:
    """Seconds since the start of a test, with what happened."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.events = []

    def mark(self, what):
        self.events.append((time.monotonic() - self.t0, what))

    def report(self, title):
        lines = ["%s timeline:" % title]
        lines += ["  %6.2fs  %s" % (t, what) for t, what in self.events]
        text = "\n".join(lines)
        print(text)
        path = os.environ.get("MQLB_TIMELINE")
        if path:
            with open(path, "a") as f:
                f.write(text + "\n")


class SrvDiscoveryTest(unittest.TestCase):
    """discover = dns-srv: backends follow the SRV records."""

    def setUp(self):
        # cleanups as each process starts: a failed setUp leaves none behind.
        # fall = 3: a check late by its 200 ms timeout on a busy machine must
        # not turn a backend down under a test about discovery (a leaving t2
        # was once "down" instead of "drain").
        self.redis = []
        for i in range(5):
            r = RedisServer()
            self.addCleanup(r.stop)
            self.redis.append(r)
            r.command("SET", "who", "t%d" % (i + 1))
        self.hosts = {"t%d.mqlb.test" % (i + 1): "127.0.0.1" for i in range(5)}
        self.dns = DnsServer(hosts=self.hosts, srv=self.records([1, 2, 3], backup=5))
        self.addCleanup(self.dns.stop)
        self.port = free_port()
        self.m = Mqlb("""[pool q]
listen = 127.0.0.1:%d
balance = roundrobin
health_check = redis
check_interval = 200ms
rise = 1
fall = 3
discover = dns-srv %s
""" % (self.port, SRV), global_extra="resolvers = %s\nresolve_interval = 1s\n"
            % self.dns.resolvers)

    def tearDown(self):
        self.m.stop()

    def records(self, primaries, backup=None, weights=None):
        """SRV records: targets t<i> at priority 10 (weight from <weights>,
        default 1), and <backup> at priority 20."""
        weights = weights or {}
        recs = [(SRV, "t%d.mqlb.test" % i, self.redis[i - 1].port, 10, weights.get(i, 1))
                for i in primaries]
        if backup is not None:
            recs.append((SRV, "t%d.mqlb.test" % backup, self.redis[backup - 1].port, 20, 1))
        return recs

    def up_names(self):
        return sorted(n for n, b in backends_of(self.m, "q").items() if b["state"] == "up")

    def spread(self, n):
        """Which servers answer <n> new connections in a row."""
        got = {}
        for _ in range(n):
            w = who(self.port)
            got[w] = got.get(w, 0) + 1
        return got

    def test_srv_targets_come_and_go(self):
        tl = Timeline()
        tl.mark("mqlb started, SRV: t1 t2 t3 (priority 10, weights 2:1:1), t5 (priority 20)")
        self.dns.set_srv(self.records([1, 2, 3], backup=5, weights={1: 2}))
        want = ["t1.mqlb.test", "t2.mqlb.test", "t3.mqlb.test", "t5.mqlb.test"]
        wait_until(lambda: self.up_names() == want and
                   backends_of(self.m, "q")["t1.mqlb.test"]["weight"] == 2, 10,
                   what="4 discovered backends up, t1 of weight 2")
        tl.mark("t1 t2 t3 t5 up (checked), t1 weight 2")
        bs = backends_of(self.m, "q")
        for name in want:
            self.assertEqual(bs[name]["source"], "dns")
        self.assertEqual(bs["t1.mqlb.test"]["weight"], 2, "SRV weight -> backend weight")
        self.assertEqual(bs["t2.mqlb.test"]["weight"], 1)
        self.assertIsNotNone(pool_of(self.m, "q")["dns"]["last_resolution"])
        self.assertIsNone(pool_of(self.m, "q")["dns"]["last_error"])

        # Smooth weighted round-robin is exact over whole cycles: 2:1:1, and
        # the priority-20 target is a backup that takes nothing.
        got = self.spread(40)
        tl.mark("40 sessions: %s" % got)
        self.assertEqual(got, {"t1": 20, "t2": 10, "t3": 10})

        # A fourth primary: it appears, is checked, then takes sessions.
        self.dns.set_srv(self.records([1, 2, 3, 4], backup=5, weights={1: 2}))
        tl.mark("SRV record t4 added (dnsmasq restarted)")
        seen = wait_until(lambda: backends_of(self.m, "q").get("t4.mqlb.test"), 10,
                          what="t4 discovered")
        tl.mark("t4 in /status, state %s" % seen["state"])
        wait_until(lambda: backends_of(self.m, "q")["t4.mqlb.test"]["state"] == "up", 5,
                   what="t4 up")
        tl.mark("t4 up (passed its check)")
        got = self.spread(50)
        tl.mark("50 sessions: %s" % got)
        self.assertEqual(got, {"t1": 20, "t2": 10, "t3": 10, "t4": 10})

        # t2 leaves DNS while a client holds a session on it: it drains
        # (no new sessions) and goes once that session ends.
        held = []
        for _ in range(8):
            c = RedisClient(self.port)
            if c.command("GET", "who") == "t2":
                held.append(c)
                break
            c.close()
        self.assertTrue(held, "a session on t2")
        self.dns.set_srv(self.records([1, 3, 4], backup=5, weights={1: 2}))
        tl.mark("SRV record t2 removed, one session held on t2")
        wait_until(lambda: backends_of(self.m, "q")["t2.mqlb.test"].get("leaving"), 10,
                   what="t2 leaving")
        b2 = backends_of(self.m, "q")["t2.mqlb.test"]
        tl.mark("t2 leaving: state %s, %d active" % (b2["state"], b2["active"]))
        self.assertEqual(b2["state"], "drain")
        self.assertEqual(b2["active"], 1)
        got = self.spread(40)
        self.assertNotIn("t2", got)
        tl.mark("40 sessions, none on t2: %s" % got)
        self.assertEqual(held[0].command("GET", "who"), "t2", "the held session goes on")
        held[0].close()
        tl.mark("held session closed")
        wait_until(lambda: "t2.mqlb.test" not in backends_of(self.m, "q"), 5,
                   what="t2 gone")
        tl.mark("t2 gone from /status")
        # t5's priority drops to 10: the backup becomes a primary in place
        self.dns.set_srv(self.records([1, 3, 4, 5], weights={1: 2}))
        tl.mark("SRV record t5 moved to priority 10")
        self.m.wait_output("t5.mqlb.test is a primary now", timeout=10)
        tl.mark("t5 a primary")
        got = self.spread(50)
        tl.mark("50 sessions: %s" % got)
        self.assertEqual(got, {"t1": 20, "t3": 10, "t4": 10, "t5": 10})
        tl.report("SRV discovery")
        out = self.m.output()
        self.assertIn("added by DNS", out)
        self.assertIn("leaves (no longer in DNS)", out)
        self.assertIn("removed: its last session ended", out)

    def test_dns_outage_keeps_the_pool_serving(self):
        wait_until(lambda: len(self.up_names()) == 4, 10, what="4 backends up")
        self.dns.stop()
        wait_until(lambda: pool_of(self.m, "q")["dns"]["last_error"], 10,
                   what="the DNS error in /status")
        dns = pool_of(self.m, "q")["dns"]
        # a stopped server on loopback: ICMP refuses at once (else timeout)
        self.assertRegex(dns["last_error"], "^%s: (timeout|connection refused)" % SRV)
        self.assertIsNotNone(dns["last_error_at"])
        # Rounds keep failing; the set stays and serves.
        rounds = dns["failed_rounds"]
        wait_until(lambda: pool_of(self.m, "q")["dns"]["failed_rounds"] > rounds, 10,
                   what="another failed round")
        self.assertEqual(len(self.up_names()), 4)
        got = self.spread(12)
        self.assertEqual(sum(got.values()), 12)
        self.assertEqual(set(got), {"t1", "t2", "t3"})
        # DNS back with a change: updates resume.
        self.dns.srv = self.records([1, 2], backup=5)
        self.dns._write_conf()
        self.dns.start()
        wait_until(lambda: "t3.mqlb.test" not in backends_of(self.m, "q"), 10,
                   what="t3 gone after DNS came back")
        self.assertIsNone(pool_of(self.m, "q")["dns"]["last_error"])
        self.m.wait_output("keeping the last known backends")


class ARecordTest(unittest.TestCase):
    """backend = r1 NAME:PORT whose A record moves to another server."""

    def start_redis(self, ip, port, who_):
        p = Proc(["redis-server", "--port", str(port), "--bind", ip, "--save", "",
                  "--appendonly", "no", "--protected-mode", "no"], "redis-%s-%d" % (ip, port))
        wait_port(port, ip)
        with socket.create_connection((ip, port), timeout=5) as s:
            s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nwho\r\n$%d\r\n%s\r\n" % (len(who_), who_.encode()))
            self.assertEqual(s.recv(16), b"+OK\r\n")
        return p

    def test_a_record_change_moves_new_sessions(self):
        port = free_port()
        for _ in range(20):
            if not port_open(port, "127.0.0.2"):
                break
            port = free_port()
        old = self.start_redis("127.0.0.1", port, "old")
        self.addCleanup(old.stop)
        new = self.start_redis("127.0.0.2", port, "new")
        self.addCleanup(new.stop)
        dns = DnsServer(hosts={"r1.mqlb.test": "127.0.0.1"})
        self.addCleanup(dns.stop)
        lport = free_port()
        m = Mqlb("""[pool a]
listen = 127.0.0.1:%d
health_check = redis
check_interval = 200ms
rise = 1
backend = r1 r1.mqlb.test:%d
""" % (lport, port), global_extra="resolvers = %s\nresolve_interval = 1s\n" % dns.resolvers)
        try:
            self.assertEqual(who(lport), "old")
            b = m.backend("a", "r1")
            self.assertEqual(b["host"], "r1.mqlb.test")
            held = RedisClient(lport)
            self.assertEqual(held.command("GET", "who"), "old")
            t0 = time.monotonic()
            dns.set_hosts({"r1.mqlb.test": "127.0.0.2"})
            wait_until(lambda: who(lport) == "new", 10, what="new sessions on the new address")
            moved = time.monotonic() - t0
            # resolve_interval (1s) + one check (200ms), with room for load
            self.assertLess(moved, 1.0 + 0.2 + 2.0, "moved after %.2fs" % moved)
            print("A record change: new sessions on the new address after %.2fs" % moved)
            self.assertEqual(held.command("GET", "who"), "old", "existing session not cut")
            self.assertEqual(m.backend("a", "r1")["address"], "127.0.0.2:%d" % port)
            out = m.output()
            self.assertIn("checking new address 127.0.0.2:%d" % port, out)
            self.assertIn("-> 127.0.0.2:%d" % port, out)
            held.close()
        finally:
            m.stop()

    def test_unresolvable_backend_name_is_an_error_at_start(self):
        dns = DnsServer(hosts={})
        self.addCleanup(dns.stop)
        m = Mqlb("""[pool a]
listen = 127.0.0.1:%d
backend = r1 nowhere.mqlb.test:6379
""" % free_port(), global_extra="resolvers = %s\n" % dns.resolvers, check=False)
        try:
            wait_until(lambda: not m.alive(), 10, what="mqlb refusing to start")
            self.assertIn("host 'nowhere.mqlb.test' does not resolve: NXDOMAIN", m.output())
        finally:
            m.stop()

    def test_discover_only_pool_starts_empty(self):
        dns = DnsServer(hosts={})
        self.addCleanup(dns.stop)
        r = RedisServer()
        self.addCleanup(r.stop)
        lport = free_port()
        m = Mqlb("""[pool a]
listen = 127.0.0.1:%d
health_check = redis
check_interval = 200ms
rise = 1
discover = dns r.mqlb.test:%d
""" % (lport, r.port), global_extra="resolvers = %s\nresolve_interval = 1s\n"
            % dns.resolvers)
        try:
            wait_until(lambda: pool_of(m, "a")["dns"]["last_error"], 10, what="NXDOMAIN shown")
            self.assertEqual(pool_of(m, "a")["backends"], [])
            self.assertIn("NXDOMAIN", pool_of(m, "a")["dns"]["last_error"])
            dns.set_hosts({"r.mqlb.test": "127.0.0.1"})
            name = "r.mqlb.test-127.0.0.1"
            wait_until(lambda: backends_of(m, "a").get(name, {}).get("state") == "up", 10,
                       what="the pool filled")
            c = RedisClient(lport)
            self.assertEqual(c.command("PING"), "PONG")
            c.close()
        finally:
            m.stop()


class ReloadTest(unittest.TestCase):
    """A reload that points resolvers at another DNS server is followed."""

    def test_reload_changes_the_resolvers(self):
        r = RedisServer()
        self.addCleanup(r.stop)
        one = DnsServer(hosts={"r.mqlb.test": "127.0.0.1"})
        self.addCleanup(one.stop)
        two = DnsServer(hosts={"r.mqlb.test": ["127.0.0.1", "127.0.0.3"]})
        self.addCleanup(two.stop)
        lport = free_port()
        pools = """[pool a]
listen = 127.0.0.1:%d
health_check = redis
check_interval = 200ms
rise = 1
discover = dns r.mqlb.test:%d
""" % (lport, r.port)
        m = Mqlb(pools, global_extra="resolvers = %s\nresolve_interval = 1s\n" % one.resolvers)
        try:
            wait_until(lambda: [(n, b["state"]) for n, b in backends_of(m, "a").items()]
                       == [("r.mqlb.test-127.0.0.1", "up")], 10,
                       what="one backend from the first server, up")
            m.global_extra = "resolvers = %s\nresolve_interval = 2s\n" % two.resolvers
            m.write(pools)
            m.reload()
            wait_until(lambda: "r.mqlb.test-127.0.0.3" in backends_of(m, "a"), 10,
                       what="the second server's answer")
            m.wait_output("reload: DNS now asks %s" % two.resolvers)
            self.assertEqual(backends_of(m, "a")["r.mqlb.test-127.0.0.1"]["state"], "up",
                             "the backend both servers name is kept, health and all")
        finally:
            m.stop()


class KubernetesRecipeTest(unittest.TestCase):
    """etc/kubernetes/mqlb.yaml carries a config mqlb -t accepts, asking for
    the SRV records of the Service that etc/kubernetes/rabbitmq.yaml makes."""

    def test_recipe_config_is_valid_and_matches_the_service(self):
        import subprocess
        import tempfile
        from harness import MQLB_BIN, ROOT
        kdir = os.path.join(ROOT, "etc", "kubernetes")
        with open(os.path.join(kdir, "mqlb.yaml")) as f:
            lines = f.read().splitlines()
        start = lines.index("  mqlb.ini: |") + 1
        ini = []
        for line in lines[start:]:
            if line and not line.startswith("    "):
                break
            ini.append(line[4:])
        text = "\n".join(ini) + "\n"
        self.assertIn("discover = dns-srv _amqp._tcp.rabbitmq-headless.messaging.svc"
                      ".cluster.local", text)
        with open(os.path.join(kdir, "rabbitmq.yaml")) as f:
            svc = f.read()
        self.assertIn("name: rabbitmq-headless", svc)
        self.assertIn("namespace: messaging", svc)
        self.assertIn("clusterIP: None", svc)
        self.assertIn("- name: amqp", svc)
        with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as f:
            f.write(text)
        try:
            out = subprocess.run([MQLB_BIN, "-t", "-c", f.name], capture_output=True,
                                 text=True, timeout=30)
        finally:
            os.unlink(f.name)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertNotIn("warning", out.stderr)


if __name__ == "__main__":
    unittest.main()
