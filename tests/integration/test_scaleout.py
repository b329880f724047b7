"""Issue 9: scale-out. Several mqlb instances run side by side with the same
config behind DNS, ECMP or a VRRP address; `balance = source` must give
every instance the same client -> broker mapping, so a client keeps its
broker whichever instance it reaches, and one instance stopping leaves the
others serving everyone.

Here two real mqlb processes share one host, so their listen and admin ports
must differ; on separate machines they would use the very same file. The
pool sections are otherwise identical: same pool, same backend names,
addresses and weights (the consistent-hash table depends on those only).
Clients come from 200 distinct addresses, 127.0.1.1 ... 127.0.1.200 (Linux
routes all of 127/8 to lo), and each asks the redis-server that answers for
its tcp_port (INFO), which names the broker."""

import signal
import unittest
from collections import Counter

from harness import Mqlb, RedisServer, free_port, redis_port_of, wait_until

SOURCES = ["127.0.1.%d" % i for i in range(1, 201)]


def pool_text(listen, redis, extra=""):
    """The same [pool] for every instance; only the listen port differs."""
    text = ("[pool redis]\nlisten = 127.0.0.1:%d\nbalance = source\nhealth_check = redis\n"
            "check_interval = 200ms\ncheck_timeout = 200ms\nrise = 1\nfall = 1\n%s"
            % (listen, extra))
    for i, r in enumerate(redis):
        text += "backend = r%d 127.0.0.1:%d\n" % (i + 1, r.port)
    return text


def mapping(port):
    """{source address: broker port} through the mqlb listening on <port>."""
    return {src: redis_port_of(port, source=src) for src in SOURCES}


def states(lb):
    return {b["name"]: b["state"] for b in lb.status()["pools"][0]["backends"]}


class ScaleOut(unittest.TestCase):
    def setUp(self):
        self.redis = [RedisServer() for _ in range(3)]
        self.ports = [free_port(), free_port()]
        self.lbs = []
        for port in self.ports:
            self.lbs.append(Mqlb(pool_text(port, self.redis)))
        for lb in self.lbs:
            wait_until(lambda lb=lb: all(b["check"]["result"] == "pass" and b["state"] == "up"
                                         for b in lb.status()["pools"][0]["backends"]),
                       10, what="every backend checked and up")

    def tearDown(self):
        for lb in self.lbs:
            lb.stop()
        for r in self.redis:
            r.stop()

    def test_two_instances_same_mapping_and_one_survives_the_other(self):
        first = mapping(self.ports[0])
        second = mapping(self.ports[1])
        self.assertEqual(len(first), 200)
        differ = [s for s in SOURCES if first[s] != second[s]]
        self.assertEqual(differ, [], "instances disagree for %d clients" % len(differ))
        # the hash spreads the clients: every broker has a fair share
        spread = Counter(first.values())
        self.assertEqual(set(spread), {r.port for r in self.redis})
        self.assertGreaterEqual(min(spread.values()), 30, spread)
        print("\nscale-out: 200 clients, same broker on both instances; spread %s"
              % sorted(spread.values()))

        # stop the first instance (SIGTERM to its PID): the address it
        # served would move to the second, which serves every client, each
        # on the broker it had before
        stopped = self.lbs[0]
        stopped.proc.signal(signal.SIGTERM)
        wait_until(lambda: not stopped.alive(), 15, what="first instance exits")
        self.assertEqual(stopped.proc.p.returncode, 0)
        with self.assertRaises(OSError):
            redis_port_of(self.ports[0], source=SOURCES[0], timeout=2)
        after = mapping(self.ports[1])
        self.assertEqual(after, first)

    def test_a_broker_down_moves_the_same_clients_on_every_instance(self):
        before = mapping(self.ports[0])
        self.assertEqual(mapping(self.ports[1]), before)
        gone = self.redis[1]
        gone.stop()
        for lb in self.lbs:
            wait_until(lambda lb=lb: states(lb)["r2"] == "down", 10, what="r2 down")
        # Each instance rebuilds its table off the workers' path once it
        # saw r2 go: until then a pick walks on from r2's slot instead.
        both = []

        def agree():
            both[:] = [mapping(p) for p in self.ports]
            return both[0] == both[1]
        wait_until(agree, 10, interval=0.2, what="the same mapping on both instances")
        first = both[0]
        for src in SOURCES:
            if before[src] == gone.port:
                self.assertNotEqual(first[src], gone.port)
            else:
                # only the clients of the broker that left move
                self.assertEqual(first[src], before[src], src)


if __name__ == "__main__":
    unittest.main()
