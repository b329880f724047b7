"""Issue 13: hostile clients and misbehaving brokers cannot hurt anyone
else. Each class is one finding of the hostile review, driven against the
real mqlb in front of real brokers (mosquitto) or echo servers."""

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (MQLB_BIN, EchoServer, Mqlb, Proc, check_sanitizers, free_port,
                     port_open, wait_port, wait_until)


def echo_pool(port, backends, extra="", name="echo"):
    text = "[pool %s]\nlisten = 127.0.0.1:%d\ncheck_interval = 200ms\n" \
           "check_timeout = 150ms\nrise = 1\nfall = 1\n%s\n" % (name, port, extra)
    for bname, bport in backends:
        text += "backend = %s 127.0.0.1:%d\n" % (bname, bport)
    return text


def echo_once(port, payload=b"ping", timeout=5.0):
    """One short session: send <payload>, read the echo, close."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    return got


# ---- 7: a stalled log reader never stalls the relay --------------------

class StalledStderr(unittest.TestCase):
    """stderr is a pipe nobody reads: sessions keep being relayed, lines
    that do not fit are dropped and counted, and the count is logged once
    the reader returns."""

    def test_relay_continues_and_dropped_lines_are_reported(self):
        echo = EchoServer()
        port, admin = free_port(), free_port()
        d = tempfile.mkdtemp(prefix="mqlb-hostile-")
        path = os.path.join(d, "mqlb.ini")
        with open(path, "w") as f:
            f.write("[global]\nworkers = 2\nlog_level = info\n"
                    "[admin]\nlisten = 127.0.0.1:%d\n" % admin)
            f.write(echo_pool(port, [("e1", echo.port)]))
        p = subprocess.Popen([MQLB_BIN, "-c", path], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: port_open(admin), what="admin port")
            # ~150 bytes of log per session: 3,000 fill a 64 KiB pipe
            # many times over.
            for i in range(3000):
                self.assertEqual(echo_once(port, b"x%d" % i, timeout=5.0), b"x%d" % i,
                                 "session %d" % i)
            out = b""
            deadline = time.monotonic() + 10
            while b"dropped " not in out and time.monotonic() < deadline:
                r, _, _ = select.select([p.stderr], [], [], 0.5)
                if r:
                    out += os.read(p.stderr.fileno(), 1 << 20)
            m = re.search(rb"dropped (\d+) log lines", out)
            self.assertIsNotNone(m, "no 'dropped N log lines' line")
            self.assertGreater(int(m.group(1)), 0)
        finally:
            p.send_signal(signal.SIGTERM)
            threading.Thread(target=p.stderr.read, daemon=True).start()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
            echo.stop()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
