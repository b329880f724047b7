"""Issue 12 item 7: reload after `user =` dropped root. mqlb runs as a real
unprivileged user (nobody), its config file is root's alone (0600, as it
should be when it holds the admin token) in a directory nobody cannot
enter, and a reload adds a pool listening below port 1024. The privileged
helper (src/privsep.c) reads the file and binds the socket for it; it keeps
uid 0 with two capabilities only and goes away with mqlb."""

import os
import pwd
import re
import signal
import socket
import unittest

from harness import Mqlb, RedisServer, free_port, redis_port_of, wait_until

CAP_DAC_READ_SEARCH = 2
CAP_NET_BIND_SERVICE = 10


def status_field(pid, name):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].split()
    raise KeyError(name)


def children(pid):
    """Processes whose parent is <pid>."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(status_field(int(entry), "PPid")[0]) == pid:
                    out.append(int(entry))
            except (OSError, KeyError, ValueError):
                pass
    return out


def free_low_port():
    """A port below 1024 nothing listens on, or None."""
    for port in range(1000, 600, -1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return None


@unittest.skipUnless(os.geteuid() == 0, "needs root to start as root and drop to nobody")
class ReloadAfterPrivilegeDrop(unittest.TestCase):
    def setUp(self):
        self.redis = RedisServer()
        self.addCleanup(self.redis.stop)
        self.nobody = pwd.getpwnam("nobody").pw_uid

    def pool(self, name, port):
        return ("[pool %s]\nlisten = 127.0.0.1:%d\nhealth_check = redis\n"
                "check_interval = 300ms\nbackend = r 127.0.0.1:%d\n\n"
                % (name, port, self.redis.port))

    def test_root_only_config_and_a_new_port_below_1024(self):
        low = free_low_port()
        self.assertIsNotNone(low, "no free port below 1024")
        high = free_port()
        lb = Mqlb(self.pool("a", high), global_extra="user = nobody\n",
                  admin_extra="token = s3cret\n", check=False)
        self.addCleanup(lb.stop)
        os.chmod(lb.path, 0o600)
        os.chmod(lb.dir, 0o700)
        lb.wait_ready()
        auth = {"Authorization": "Bearer s3cret"}
        pid = lb.proc.pid
        # mqlb itself runs as nobody (it drops root just after the admin
        # port opens) ...
        wait_until(lambda: int(status_field(pid, "Uid")[1]) == self.nobody, 5,
                   what="mqlb running as nobody")
        with self.assertRaises(PermissionError):
            os.seteuid(self.nobody)
            try:
                open(lb.path).close()
            finally:
                os.seteuid(0)
        self.assertEqual(redis_port_of(high), self.redis.port)

        # Reload: the root-only file, and a new pool below 1024.
        lb.write(self.pool("a", high) + self.pool("low", low))
        os.chmod(lb.path, 0o600)
        lb.reload()
        wait_until(lambda: re.search(r"reload done: 2 pools", lb.output()), 10,
                   what="reload done")
        self.assertEqual(redis_port_of(low), self.redis.port)
        self.assertEqual(redis_port_of(high), self.redis.port)
        self.assertNotIn("Permission denied", lb.output())
        code, body, _ = lb.http("GET", "/status", auth)
        self.assertEqual(code, 200)

        # A broken file: the errors with their lines, the running config stays.
        with open(lb.path, "a") as f:
            f.write("[pool broken]\nlisten = 127.0.0.1:%d\nbogus_key = 1\n" % free_port())
        lb.reload()
        wait_until(lambda: re.search(r"mqlb\.ini:\d+: .*bogus_key", lb.output()), 10,
                   what="the error of the broken file, with its line")
        lb.wait_output("reload failed", timeout=10)
        self.assertEqual(redis_port_of(low), self.redis.port)

        # The helper: root, with two capabilities and nothing else
        helpers = [p for p in children(pid)
                   if status_field(p, "Name")[0] == "mqlb-privsep"]
        self.assertEqual(len(helpers), 1, children(pid))
        helper = helpers[0]
        self.assertEqual(int(status_field(helper, "Uid")[1]), 0)
        caps = int(status_field(helper, "CapEff")[0], 16)
        self.assertEqual(caps, (1 << CAP_NET_BIND_SERVICE) | (1 << CAP_DAC_READ_SEARCH))
        self.assertEqual(int(status_field(helper, "NoNewPrivs")[0]), 1)
        # The helper goes with mqlb.
        lb.stop()
        wait_until(lambda: not os.path.exists("/proc/%d" % helper) or
                   status_field(helper, "State")[0] == "Z", 10, what="helper gone")


if __name__ == "__main__":
    unittest.main()
