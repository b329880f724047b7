"""Issue 6 operations: privilege drop after binding, JSON log lines, the
systemd unit's ExecStartPre check."""

import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import unittest

from harness import MQLB_BIN, ROOT, Mqlb, RedisServer, free_port, redis_port_of, wait_until


def proc_uid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise ValueError("no Uid")


@unittest.skipUnless(os.geteuid() == 0, "privilege drop needs root")
class PrivilegeDrop(unittest.TestCase):
    def test_runs_as_user_and_reload_still_binds_a_low_port(self):
        redis = RedisServer()
        port = free_port()
        nobody = pwd.getpwnam("nobody")
        pool = "[pool r]\nlisten = 127.0.0.1:%d\nbackend = r 127.0.0.1:%d\n" % (
            port, redis.port)
        lb = Mqlb(pool, global_extra="user = nobody\n", check=False)
        os.chmod(lb.dir, 0o755)
        os.chmod(lb.path, 0o644)
        try:
            lb.wait_ready()
            wait_until(lambda: proc_uid(lb.proc.pid) == nobody.pw_uid, 10,
                       what="uid dropped")
            self.assertEqual(redis_port_of(port), redis.port)
            # a reload that needs a port below 1024 after the drop: the
            # privileged helper binds it (test_privileges.py covers the
            # root-only file too)
            low = 1000 + free_port() % 20
            lb.write(pool + "[pool low]\nlisten = 127.0.0.1:%d\n"
                     "backend = r 127.0.0.1:%d\n" % (low, redis.port))
            os.chmod(lb.path, 0o644)
            lb.reload()
            lb.wait_output("reload done", timeout=10)
            self.assertNotIn("Permission denied", lb.output())
            self.assertEqual(redis_port_of(low), redis.port)
            self.assertEqual(redis_port_of(port), redis.port)
            self.assertTrue(lb.alive())
        finally:
            lb.stop()
            redis.stop()


class JsonLogs(unittest.TestCase):
    def test_every_line_is_a_json_object_with_session_fields(self):
        redis = RedisServer()
        port = free_port()
        lb = Mqlb("[pool r]\nlisten = 127.0.0.1:%d\nbackend = r 127.0.0.1:%d\n"
                  % (port, redis.port), global_extra="log_format = json\n")
        try:
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"PING\r\n")
                self.assertEqual(s.recv(7), b"+PONG\r\n")
            lb.wait_output('"event":"session"', timeout=10)
        finally:
            lb.stop()
            redis.stop()
        sessions = []
        for line in lb.output().splitlines():
            obj = json.loads(line)          # every line parses
            self.assertIn("ts", obj)
            self.assertIn("level", obj)
            if obj.get("event") == "session":
                sessions.append(obj)
        self.assertEqual(len(sessions), 1)
        s = sessions[0]
        self.assertEqual((s["pool"], s["backend"], s["bytes_in"], s["bytes_out"]),
                         ("r", "r", 6, 7))
        self.assertRegex(s["client"], r"^127\.0\.0\.1:\d+$")
        self.assertIn("duration_ms", s)
        self.assertEqual(s["end"], "client closed")


class SystemdUnit(unittest.TestCase):
    def test_unit_checks_config_and_reloads_with_outcome(self):
        with open(os.path.join(ROOT, "etc", "mqlb.service")) as f:
            unit = f.read()
        self.assertRegex(unit, r"(?m)^ExecStartPre=\S*mqlb -t -c \S+$")
        # systemctl reload waits for the outcome and fails with the reload
        self.assertRegex(unit, r"(?m)^ExecReload=\S*/mqlb -s reload -c \S+$")
        self.assertRegex(unit, r"(?m)^Type=notify$")
        for opt in ("NoNewPrivileges=yes", "ProtectSystem=", "LimitNOFILE="):
            self.assertIn(opt, unit)
        exe = re.search(r"(?m)^ExecStart=(\S+)", unit).group(1)
        self.assertTrue(exe.endswith("/mqlb"))

    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze not installed")
    def test_unit_exposure_score_is_low(self):
        r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                            os.path.join(ROOT, "etc", "mqlb.service")],
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for mqlb.service: ([0-9.]+)", r.stdout)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), 3.0, r.stdout)


if __name__ == "__main__":
    unittest.main()
