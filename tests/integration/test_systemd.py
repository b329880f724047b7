"""Operations under a service manager: sd_notify (READY, RELOADING, STATUS,
STOPPING, WATCHDOG) on a NOTIFY_SOCKET the test owns, journald priority
prefixes when JOURNAL_STREAM names stderr, and `mqlb -s reload|stop|status`
waiting for the outcome, by the admin port or by the control socket."""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from harness import MQLB_BIN, Mqlb, RedisClient, RedisServer, free_port, wait_until


class NotifySocket:
    """The datagram socket systemd would listen on."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mqlb-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.seen = []

    def wait_for(self, key, timeout=10.0):
        """Collect messages until one holds the line <key>; return it."""
        deadline = time.monotonic() + timeout
        for msg in self.seen:
            if key in msg.split("\n"):
                self.seen.remove(msg)
                return msg
        while time.monotonic() < deadline:
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            if key in msg.split("\n"):
                return msg
            self.seen.append(msg)
        raise AssertionError("no %r from mqlb; got %r" % (key, self.seen))

    def close(self):
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


def pool_text(port, redis):
    return "[pool r]\nlisten = 127.0.0.1:%d\nbackend = r1 127.0.0.1:%d\n" % (port, redis.port)


class SdNotify(unittest.TestCase):
    def setUp(self):
        self.redis = RedisServer()
        self.ns = NotifySocket()

    def tearDown(self):
        self.redis.stop()
        self.ns.close()

    def test_ready_reloading_status_stopping(self):
        env = dict(os.environ, NOTIFY_SOCKET=self.ns.path)
        lb = Mqlb(pool_text(free_port(), self.redis), env=env)
        try:
            ready = self.ns.wait_for("READY=1")
            status = [l for l in ready.split("\n") if l.startswith("STATUS=")]
            self.assertTrue(status, ready)
            self.assertIn("1 pool", status[0])
            lb.reload()
            rel = self.ns.wait_for("RELOADING=1")
            self.assertRegex(rel, r"MONOTONIC_USEC=\d+")
            again = self.ns.wait_for("READY=1")
            self.assertTrue(any(l.startswith("STATUS=") for l in again.split("\n")), again)
            lb.proc.signal(signal.SIGTERM)
            self.ns.wait_for("STOPPING=1")
            wait_until(lambda: not lb.alive(), 10, what="mqlb exit")
        finally:
            lb.stop()

    def test_watchdog_pings_from_the_main_loop(self):
        env = dict(os.environ, NOTIFY_SOCKET=self.ns.path, WATCHDOG_USEC="400000")
        lb = Mqlb(pool_text(free_port(), self.redis), env=env)
        try:
            self.ns.wait_for("READY=1")
            self.ns.wait_for("WATCHDOG=1", timeout=5)
            self.ns.wait_for("WATCHDOG=1", timeout=5)
        finally:
            lb.stop()

    def test_no_notify_socket_changes_nothing(self):
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        lb = Mqlb(pool_text(free_port(), self.redis), env=env)
        try:
            self.assertTrue(lb.alive())
            with self.assertRaises(socket.timeout):
                self.ns.sock.settimeout(0.5)
                self.ns.sock.recv(4096)
        finally:
            lb.stop()


class Journald(unittest.TestCase):
    def run_mqlb(self, match):
        redis = RedisServer()
        port = free_port()
        d = tempfile.mkdtemp(prefix="mqlb-journal-")
        cfg = os.path.join(d, "mqlb.ini")
        admin = free_port()
        with open(cfg, "w") as f:
            f.write("[global]\nworkers = 1\nlog_level = info\n[admin]\nlisten = 127.0.0.1:%d\n%s"
                    % (admin, pool_text(port, redis)))
        logpath = os.path.join(d, "stderr")
        log = open(logpath, "wb")
        st = os.fstat(log.fileno())
        env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino + (0 if match else 1)))
        p = subprocess.Popen([MQLB_BIN, "-c", cfg], stdout=log, stderr=log,
                             stdin=subprocess.DEVNULL, env=env)
        try:
            wait_until(lambda: "started" in open(logpath).read(), 10, what="start line")
            redis.stop()        # the backend goes down: a warning
            wait_until(lambda: "is down" in open(logpath).read(), 15, what="down line")
        finally:
            p.terminate()
            p.wait(10)
            log.close()
        return open(logpath).read()

    def test_priorities_when_stream_is_stderr(self):
        out = self.run_mqlb(True)
        lines = [l for l in out.splitlines() if l]
        start = [l for l in lines if "started" in l][0]
        down = [l for l in lines if "is down" in l][0]
        self.assertRegex(start, r"^<5>notice mqlb ")
        self.assertRegex(down, r"^<4>warn backend r/r1 ")
        # journald stamps the time itself
        self.assertNotRegex(start, r"\d{4}-\d\d-\d\dT")

    def test_no_prefix_otherwise(self):
        out = self.run_mqlb(False)
        for l in out.splitlines():
            if l:
                self.assertFalse(l.startswith("<"), l)
                self.assertRegex(l, r"^\d{4}-\d\d-\d\dT")


class SignalCommand(unittest.TestCase):
    def ctl(self, lb, cmd):
        return subprocess.run([MQLB_BIN, "-s", cmd, "-c", lb.path], capture_output=True,
                              text=True, timeout=60)

    @staticmethod
    def pools(lb):
        code, body, _ = lb.http("GET", "/status",
                                headers={"Authorization": "Bearer t0ken-for-ctl"})
        assert code == 200, code
        return [p["name"] for p in json.loads(body)["pools"]]

    def test_reload_good_bad_then_stop(self):
        redis = RedisServer()
        port = free_port()
        lb = Mqlb(pool_text(port, redis), admin_extra="token = t0ken-for-ctl\n")
        try:
            r = self.ctl(lb, "status")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("pool r", r.stdout)
            # a good file: exit 0 once the new generation runs
            lb.write(pool_text(port, redis) + "[pool r2]\nlisten = 127.0.0.1:%d\n"
                     "backend = x 127.0.0.1:%d\n" % (free_port(), redis.port))
            r = self.ctl(lb, "reload")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("r2", self.pools(lb))
            # a bad file: exit 1, the errors as FILE:LINE, the old config stays
            lb.write(pool_text(port, redis) + "[pool r3]\nlisten = 127.0.0.1:%d\n"
                     "backend = x 127.0.0.1:99999\nbalanse = rr\n" % free_port())
            r = self.ctl(lb, "reload")
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertRegex(r.stderr, r"%s:\d+: " % lb.path)
            self.assertIn("balanse", r.stderr)
            self.assertIn("r2", self.pools(lb))
            self.assertTrue(lb.alive())
            # stop waits for the exit
            r = self.ctl(lb, "stop")
            self.assertEqual(r.returncode, 0, r.stderr)
            # the admin port is closed at the very end of the exit
            wait_until(lambda: not lb.alive(), 5, what="mqlb exit")
            r = self.ctl(lb, "status")
            self.assertEqual(r.returncode, 3)
        finally:
            lb.stop()
            redis.stop()

    def test_wrong_token_is_refused(self):
        redis = RedisServer()
        lb = Mqlb(pool_text(free_port(), redis), admin_extra="token = right-token-1\n")
        try:
            good = lb.path
            with open(good) as f:
                text = f.read()
            other = os.path.join(lb.dir, "other.ini")
            with open(other, "w") as f:
                f.write(text.replace("right-token-1", "wrong-token-2"))
            r = subprocess.run([MQLB_BIN, "-s", "reload", "-c", other], capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(r.returncode, 1)
            self.assertIn("refused", r.stderr)
        finally:
            lb.stop()
            redis.stop()


def ping(port):
    c = RedisClient(port)
    try:
        return c.command("PING")
    finally:
        c.close()


def pidfd_works():
    """Can this kernel tell a process's exit through a pidfd (what
    `mqlb -s stop` waits on when it can)?"""
    try:
        os.close(os.pidfd_open(os.getpid()))
        return True
    except (AttributeError, OSError):
        return False


class SignalCommandControlSocket(unittest.TestCase):
    """With [global] control_socket set, `mqlb -s` talks there: no token,
    the same user only. The file given to -s names the socket, an admin
    address that answers and a token that is wrong, so any use of the
    admin port would fail (exit 1, refused)."""

    TOKEN = "t0ken-only-the-running-file-has"

    def setUp(self):
        self.redis = RedisServer()
        self.addCleanup(self.redis.stop)
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mqlb-ctlsock-")
        self.addCleanup(shutil.rmtree, self.dir, True)     # last: after mqlb stopped
        self.sock = os.path.join(self.dir, "mqlb.sock")
        self.lb = Mqlb(pool_text(self.port, self.redis),
                       global_extra="control_socket = %s\n" % self.sock,
                       admin_extra="token = %s\n" % self.TOKEN)
        self.addCleanup(self.lb.stop)
        self.ctl_file = os.path.join(self.dir, "ctl.ini")
        with open(self.ctl_file, "w") as f:
            f.write("[global]\ncontrol_socket = %s\n[admin]\nlisten = 127.0.0.1:%d\n"
                    "token = wrong-token\n" % (self.sock, self.lb.admin_port))

    def ctl(self, cmd, path=None):
        return subprocess.run([MQLB_BIN, "-s", cmd, "-c", path or self.ctl_file],
                              capture_output=True, text=True, timeout=60)

    def pools(self):
        code, body, _ = self.lb.http("GET", "/status",
                                     headers={"Authorization": "Bearer " + self.TOKEN})
        self.assertEqual(code, 200)
        return [p["name"] for p in json.loads(body)["pools"]]

    def test_status_reload_good_and_bad_then_stop(self):
        lb = self.lb
        # the file given to -s would be refused on the admin port
        code, _, _ = lb.http("GET", "/status", headers={"Authorization": "Bearer wrong-token"})
        self.assertEqual(code, 401)
        r = self.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("mqlb running, pid %d," % lb.proc.pid, r.stdout)
        self.assertIn("pool r: ", r.stdout)
        # a good change: applied, exit 0
        r2 = free_port()
        lb.write(pool_text(self.port, self.redis) + "[pool r2]\nlisten = 127.0.0.1:%d\n"
                 "backend = x 127.0.0.1:%d\n" % (r2, self.redis.port))
        r = self.ctl("reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("reloaded %s: " % lb.path, r.stdout)
        self.assertIn("r2", self.pools())
        self.assertEqual(ping(r2), "PONG")
        # a broken file: exit 1 with its FILE:LINE errors, the old config serves on
        lb.write(pool_text(self.port, self.redis) + "[pool r3]\nlisten = 127.0.0.1:%d\n"
                 "backend = x 127.0.0.1:99999\nbalanse = rr\n" % free_port())
        r = self.ctl("reload")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertRegex(r.stderr, r"%s:\d+: .*balanse" % lb.path)
        self.assertRegex(r.stderr, r"%s:\d+: .*99999" % lb.path)
        self.assertIn("reload failed", r.stderr)
        self.assertEqual(self.pools(), ["r", "r2"])
        self.assertEqual(ping(self.port), "PONG")
        self.assertEqual(ping(r2), "PONG")
        # who asked, in the log
        self.assertRegex(lb.output(), r"control socket: pid \d+ asks for a reload")
        # stop: returns once the process is gone
        r = self.ctl("stop")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("stopped", r.stdout)
        if pidfd_works():
            # it waited on the process itself: gone already
            self.assertIsNotNone(lb.proc.p.poll(), "mqlb still runs after -s stop")
        else:
            wait_until(lambda: not lb.alive(), 5, what="mqlb exit")
        self.assertEqual(lb.proc.p.wait(5), 0)
        self.assertFalse(os.path.exists(self.sock))
        r = self.ctl("status")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn(self.sock, r.stderr)

    def test_unknown_command_is_refused_and_mqlb_serves_on(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(self.sock)
        # MQHO, version 1, COMMAND (11), one byte: command 9
        s.sendall(struct.pack(">IHHIB", 0x4d51484f, 1, 11, 1, 9))
        reply = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        s.close()
        magic, version, typ, length = struct.unpack(">IHHI", reply[:12])
        self.assertEqual((magic, typ), (0x4d51484f, 2))     # ERROR
        self.assertIn(b"unknown command 9", reply[12:])
        r = self.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(self.lb.alive())

    @unittest.skipUnless(os.geteuid() == 0, "needs root to run -s as another user")
    def test_another_user_is_refused_even_with_the_socket_open_to_all(self):
        # the file mode would let anyone connect; the peer check still refuses
        os.chmod(self.dir, 0o755)
        os.chmod(self.sock, 0o666)
        os.chmod(self.ctl_file, 0o644)

        # (a copy nobody can run wherever the build tree lives)
        binary = os.path.join(self.dir, "mqlb")
        shutil.copy(MQLB_BIN, binary)
        os.chmod(binary, 0o755)

        def nobody():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        r = subprocess.run([binary, "-s", "stop", "-c", self.ctl_file], capture_output=True,
                           text=True, timeout=30, preexec_fn=nobody)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("another user", r.stderr)
        self.lb.wait_output("of uid 65534", timeout=5)
        self.assertTrue(self.lb.alive())
        self.assertNotIn("asks for a stop", self.lb.output())


class SignalCommandNobodyOnTheSocket(unittest.TestCase):
    """A control_socket nobody listens on: exit 3 naming it, whether the
    file is missing or a stale socket file is left behind; the admin port
    in the same file is not tried instead."""

    def test_exit_3_naming_the_path(self):
        d = tempfile.mkdtemp(prefix="mqlb-ctlsock-")
        self.addCleanup(shutil.rmtree, d, True)
        admin = socket.socket()
        admin.bind(("127.0.0.1", 0))
        admin.listen(1)
        self.addCleanup(admin.close)
        for stale in (False, True):
            path = os.path.join(d, "stale.sock" if stale else "none.sock")
            if stale:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.bind(path)        # a file, nobody listening
                self.addCleanup(s.close)
            ini = os.path.join(d, "mqlb.ini")
            with open(ini, "w") as f:
                f.write("[global]\ncontrol_socket = %s\n[admin]\nlisten = 127.0.0.1:%d\n"
                        % (path, admin.getsockname()[1]))
            for cmd in ("status", "reload", "stop"):
                r = subprocess.run([MQLB_BIN, "-s", cmd, "-c", ini], capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual(r.returncode, 3, (cmd, r.stderr))
                self.assertIn("nothing is listening on the control socket %s" % path,
                              r.stderr)


if __name__ == "__main__":
    unittest.main()


class JsonEvents(unittest.TestCase):
    def test_state_change_and_admin_action_carry_fields(self):
        redis = RedisServer()
        port = free_port()
        lb = Mqlb("[pool r]\nlisten = 127.0.0.1:%d\nhealth_check = redis\n"
                  "check_interval = 200ms\nfall = 1\nbackend = r1 127.0.0.1:%d\n"
                  % (port, redis.port), global_extra="log_format = json\n")
        try:
            code, _, _ = lb.http("POST", "/pools/r/backends/r1/drain")
            self.assertEqual(code, 200)
            redis.stop()

            def events():
                out = []
                for line in lb.output().splitlines():
                    obj = json.loads(line)
                    if obj.get("event") in ("backend_state", "backend_admin"):
                        out.append(obj)
                return out
            wait_until(lambda: any(e.get("to") == "down" for e in events()), 10,
                       what="down event")
            down = [e for e in events() if e.get("to") == "down"][0]
            self.assertEqual((down["pool"], down["backend"], down["from"], down["state"]),
                             ("r", "r1", "up", "down"))
            self.assertTrue(down["reason"].startswith("check failed: "), down)
            self.assertEqual(down["level"], "warn")
            admin = [e for e in events() if e["event"] == "backend_admin"][0]
            self.assertEqual((admin["state"], admin["client"]), ("drain", "127.0.0.1"))
        finally:
            lb.stop()
