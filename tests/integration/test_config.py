"""The config file as the real binary reads it: `mqlb -t` output is a
valid file that means the same (every shipped file, through the binary),
-t checks the user exists, messages in the user's terms, check_timeout
defaults and longer-than-interval checks that never overlap, and
max_connections sized from the descriptor limit without a warning unless
the user chose the number."""

import glob
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from test_examples import with_test_certs
from harness import (MQLB_BIN, ROOT, EchoServer, Mqlb, check_sanitizers, free_port,
                     port_open, wait_until)


def run_t(path):
    return subprocess.run([MQLB_BIN, "-t", "-c", path], capture_output=True, text=True,
                          timeout=30)


def write(text):
    fd, path = tempfile.mkstemp(prefix="mqlb-t-", suffix=".ini")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def body(dump):
    """-t output without its first line, which names the file."""
    return dump.split("\n", 1)[1]


class CheckCommand(unittest.TestCase):
    def test_output_of_every_shipped_file_is_accepted_and_means_the_same(self):
        files = sorted(glob.glob(os.path.join(ROOT, "etc", "examples", "*.ini")))
        files.append(os.path.join(ROOT, "etc", "mqlb.ini"))
        self.assertGreaterEqual(len(files), 6)
        for path in files:
            with self.subTest(path=os.path.relpath(path, ROOT)):
                # certificates made for the test where the file names some
                first = run_t(with_test_certs(path))
                self.assertEqual(first.returncode, 0, first.stderr)
                again_path = write(first.stdout)
                try:
                    again = run_t(again_path)
                finally:
                    os.unlink(again_path)
                self.assertEqual(again.returncode, 0,
                                 "-t output refused:\n%s\n%s" % (again.stderr, first.stdout))
                self.assertEqual(body(again.stdout), body(first.stdout))
                for bad in ("(set)", "blocks)", "s:0s:"):
                    self.assertNotIn(bad, first.stdout)

    def test_output_prints_secrets_as_set_and_allow_as_cidrs(self):
        port = free_port()
        path = write("[admin]\nlisten = 127.0.0.1:%d\ntoken = hunter2\n"
                     "[pool p]\nlisten = :%d\nallow = 10.0.0.0/8, ::1\n"
                     "tcp_keepalive = 60s\n"
                     "backend = a 127.0.0.1:%d\n" % (free_port(), port, free_port()))
        try:
            r = run_t(path)
        finally:
            os.unlink(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("\ntoken = <set>\n", r.stdout)
        self.assertNotIn("hunter2", r.stdout)
        self.assertIn("\nallow = 10.0.0.0/8\nallow = ::1/128\n", r.stdout)
        self.assertIn("\ntcp_keepalive = 1m\n", r.stdout)
        self.assertIn("\nlisten = :%d\n" % port, r.stdout)

    def test_unknown_user_is_an_error_at_its_line(self):
        path = write("[global]\nworkers = 1\nuser = no-such-user-mqlb\n"
                     "[pool p]\nlisten = 127.0.0.1:%d\nbackend = a 127.0.0.1:%d\n"
                     % (free_port(), free_port()))
        try:
            r = run_t(path)
        finally:
            os.unlink(path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:3: user = no-such-user-mqlb: no such user" % path, r.stderr)

    def test_errors_are_in_line_order_in_the_users_terms(self):
        path = write("[pool p]\n"                                       # 1
                     "listen = 127.0.0.1:%d\n"                          # 2
                     "health_check = send-expect\n"                     # 3
                     "healthcheck = redis\n"                            # 4
                     "backend = a 127.0.0.1:70000\n"                    # 5
                     "backend = b no-such-host.invalid:6379\n"          # 6
                     "backend = c 127.0.0.1:6379\n"                     # 7
                     % free_port())
        try:
            r = run_t(path)
        finally:
            os.unlink(path)
        self.assertEqual(r.returncode, 1)
        lines = [l for l in r.stderr.splitlines() if l.startswith(path + ":")]
        self.assertEqual(len(lines), 4, r.stderr)
        self.assertIn(":3: [pool p]: health_check = send-expect needs check_expect", lines[0])
        self.assertIn(":4: unknown key 'healthcheck' in [pool], did you mean "
                      "'health_check'?", lines[1])
        self.assertIn(":5: backend a: address '127.0.0.1:70000': port 70000 is out "
                      "of range (1-65535)", lines[2])
        self.assertIn(":6: backend b: address 'no-such-host.invalid:6379': host "
                      "'no-such-host.invalid' does not resolve", lines[3])


class SilentServer:
    """Accepts connections and never answers. At each accept it looks at the
    connections still held: one whose peer has not closed it (no EOF
    queued; on loopback the FIN is queued before the next SYN is sent)
    overlaps the new one."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.held = []
        self.accepted = 0
        self.closed = 0
        self.overlaps = 0
        self.stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    @staticmethod
    def _peer_closed(c):
        try:
            while True:
                if c.recv(4096, socket.MSG_DONTWAIT) == b"":
                    return True
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _serve(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.overlaps += sum(1 for h in self.held if not self._peer_closed(h))
                self.held.append(c)
            threading.Thread(target=self._hold, args=(c,), daemon=True).start()

    def _hold(self, c):
        try:
            while c.recv(4096):
                pass
        except OSError:
            pass
        finally:
            with self.lock:
                self.held.remove(c)
                self.closed += 1
            c.close()

    def stop(self):
        self.stopped = True
        self.sock.close()


class CheckTimeout(unittest.TestCase):
    def test_only_check_interval_written_starts_and_checks(self):
        # Refused before: the default check_timeout (1s) was longer.
        echo = SilentServer()
        self.addCleanup(echo.stop)
        lb = Mqlb("[pool p]\nlisten = 127.0.0.1:%d\nhealth_check = tcp\n"
                  "check_interval = 300ms\nrise = 1\nfall = 1\n"
                  "backend = a 127.0.0.1:%d\n" % (free_port(), echo.port))
        self.addCleanup(lb.stop)
        wait_until(lambda: echo.accepted >= 2, 10, what="two checks")
        self.assertEqual(lb.backend("p", "a")["state"], "up")

    def test_longer_explicit_timeout_is_allowed_and_checks_never_overlap(self):
        silent = SilentServer()
        self.addCleanup(silent.stop)
        lb = Mqlb("[pool p]\nlisten = 127.0.0.1:%d\nhealth_check = redis\n"
                  "check_interval = 100ms\ncheck_timeout = 400ms\nrise = 1\nfall = 1\n"
                  "backend = a 127.0.0.1:%d\n" % (free_port(), silent.port))
        self.addCleanup(lb.stop)
        wait_until(lambda: silent.closed >= 4, 15, what="four timed-out checks")
        b = lb.backend("p", "a")
        self.assertEqual(b["state"], "down")
        self.assertEqual(b["check"]["reason"], "timeout")
        # The next check starts check_interval after the previous ended:
        # with a 400ms timeout and a 100ms interval, one at a time.
        self.assertEqual(silent.overlaps, 0)


@unittest.skipUnless(shutil.which("dnsmasq"), "dnsmasq not installed")
class SeveralAddresses(unittest.TestCase):
    def test_backend_name_with_v6_and_v4_addresses_uses_the_v4_one(self):
        from dns_server import DnsServer, ZONE
        echo = EchoServer()             # 127.0.0.1 only: ::1 would refuse
        self.addCleanup(echo.stop)
        dns = DnsServer(hosts={"multi." + ZONE: ["::1", "127.0.0.1"]})
        self.addCleanup(dns.stop)
        listen = free_port()
        lb = Mqlb("[pool p]\nlisten = 127.0.0.1:%d\nhealth_check = none\n"
                  "retries = 0\nbackend = a multi.%s:%d\n" % (listen, ZONE, echo.port),
                  global_extra="resolvers = %s\n" % dns.resolvers)
        self.addCleanup(lb.stop)
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", listen), timeout=5) as c:
                c.sendall(b"which one")
                c.shutdown(socket.SHUT_WR)
                got = b""
                while True:
                    data = c.recv(4096)
                    if not data:
                        break
                    got += data
            self.assertEqual(got, b"which one")
        self.assertGreaterEqual(echo.conns, 3)


class ReloadDiff(unittest.TestCase):
    def test_reload_names_what_changed_allow_and_check_keys_included(self):
        echo = EchoServer()
        self.addCleanup(echo.stop)
        listen = free_port()

        def pool(allow, path):
            return ("[pool p]\nlisten = 127.0.0.1:%d\nhealth_check = http\n"
                    "check_path = %s\nallow = %s\nbackend = a 127.0.0.1:%d\n"
                    % (listen, path, allow, echo.port))

        lb = Mqlb(pool("10.0.0.0/8 127.0.0.1", "/a"))
        self.addCleanup(lb.stop)
        # Same number of blocks, other blocks: once logged as "kept".
        lb.write(pool("10.0.0.0/9 127.0.0.1", "/a"))
        lb.reload()
        lb.wait_output("reload: 0 added", 1, timeout=10)
        lb.wait_output("reload: pool p changed (sessions)")
        # check_path once ignored
        lb.global_extra = "log_level = notice\n"
        lb.write(pool("10.0.0.0/9 127.0.0.1", "/b"))
        lb.reload()
        lb.wait_output("reload: 0 added", 2, timeout=10)
        self.assertIn("reload: pool p changed (checks)", lb.output())
        self.assertIn("reload: [global]/[admin] changed (log_level)", lb.output())
        self.assertIn("reload: 0 added, 0 removed, 1 changed, 1 kept", lb.output())


class MaxConnections(unittest.TestCase):
    def start(self, global_extra):
        """mqlb under a 1024-descriptor limit; returns its log once it is up
        and stopped."""
        admin = free_port()
        path = write("[global]\nworkers = 1\n%s\n[admin]\nlisten = 127.0.0.1:%d\n"
                     "[pool p]\nlisten = 127.0.0.1:%d\nhealth_check = none\n"
                     "backend = a 127.0.0.1:%d\n"
                     % (global_extra, admin, free_port(), free_port()))
        log = tempfile.TemporaryFile()
        p = subprocess.Popen([MQLB_BIN, "-c", path], stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL,
                             preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                                                   (1024, 1024)))
        try:
            wait_until(lambda: p.poll() is None and port_open(admin), 10, what="mqlb up")
        finally:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            p.wait(15)
            os.unlink(path)
        log.seek(0)
        out = log.read().decode("utf-8", "replace")
        log.close()
        check_sanitizers(out)
        return out

    def test_default_fits_the_descriptor_limit_quietly(self):
        out = self.start("")
        self.assertNotIn(" warn ", out)     # no check runs: nothing else warns
        # 64 reserved, a listener for the one worker, a check and a watch
        # for the one backend: (1024 - 67) / 2
        self.assertIn("max_connections = auto: 478 sessions fit the descriptor limit "
                      "of 1024", out)

    def test_a_chosen_value_that_does_not_fit_is_warned(self):
        out = self.start("max_connections = 100000")
        self.assertIn("max_connections = 100000 needs 200067 descriptors but the limit "
                      "is 1024", out)


if __name__ == "__main__":
    unittest.main()
