"""System calls per session, counted with strace on the real mqlb: the
end of a plain session costs one shutdown(2) (the first FIN passed on);
the last end is passed on by close(2) alone."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

from harness import EchoServer, Mqlb, free_port, wait_until

N = 20


def can_trace():
    if shutil.which("strace") is None:
        return False
    p = subprocess.run(["strace", "-q", "-e", "trace=none", "true"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p.returncode == 0


@unittest.skipUnless(can_trace(), "strace missing or not permitted here")
class Syscalls(unittest.TestCase):

    def test_one_shutdown_per_plain_session(self):
        echo = EchoServer()
        port = free_port()
        lb = Mqlb("[pool p]\nlisten = 127.0.0.1:%d\nhealth_check = none\n"
                  "backend = e 127.0.0.1:%d\n" % (port, echo.port), workers=1)
        out = os.path.join(tempfile.mkdtemp(prefix="mqlb-strace-"), "trace")
        tr = None
        try:
            # a first session, untraced: everything set up once is set up
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                c.sendall(b"x")
                self.assertEqual(c.recv(1), b"x")
            wait_until(lambda: all(b["active"] == 0 for p in lb.status()["pools"]
                                   for b in p["backends"]), 10, what="first session closed")
            err = open(out + ".err", "w")
            tr = subprocess.Popen(["strace", "-f", "-e", "trace=shutdown", "-o", out,
                                   "-p", str(lb.proc.pid)],
                                  stdout=subprocess.DEVNULL, stderr=err)
            err.close()

            def attached():
                with open(out + ".err") as f:
                    return "attached" in f.read() or tr.poll() is not None
            wait_until(attached, 10, what="strace attached")
            self.assertIsNone(tr.poll(), "strace could not attach")
            for _ in range(N):
                # the client ends first; the echo server then ends its side
                with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                    c.sendall(b"y")
                    self.assertEqual(c.recv(1), b"y")
                    c.shutdown(socket.SHUT_WR)
                    self.assertEqual(c.recv(1), b"", "the FIN is passed on")
            wait_until(lambda: all(b["active"] == 0 for p in lb.status()["pools"]
                                   for b in p["backends"]), 10, what="sessions closed")
            tr.send_signal(signal.SIGINT)
            tr.wait(10)
            with open(out) as f:
                calls = [line for line in f if "shutdown(" in line and "resumed" not in line]
            self.assertEqual(len(calls), N, "shutdown calls for %d sessions:\n%s"
                             % (N, "".join(calls[:6])))
        finally:
            if tr is not None and tr.poll() is None:
                tr.kill()
                tr.wait()
            lb.stop()
            echo.stop()


if __name__ == "__main__":
    unittest.main()
