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


def traced_pids(lb):
    """The processes strace started: mqlb's main thread."""
    pids = []
    tasks = "/proc/%d/task" % lb.proc.pid
    for t in os.listdir(tasks):
        with open(os.path.join(tasks, t, "children")) as f:
            pids += [int(pid) for pid in f.read().split()]
    return pids


def worker_tids(pid):
    tids = set()
    for t in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
            if f.read().startswith("mqlb-worker-"):
                tids.add(t)
    return tids


def stop_traced(lb):
    """SIGTERM mqlb itself (strace's child), then let strace exit."""
    try:
        for pid in traced_pids(lb):
            os.kill(pid, signal.SIGTERM)
    except OSError:
        pass
    lb.stop()


@unittest.skipUnless(can_trace(), "strace missing or not permitted here")
class Syscalls(unittest.TestCase):

    def test_one_shutdown_per_plain_session(self):
        # strace starts mqlb rather than attaching to it: attaching needs
        # ptrace rights over a process that is not one's child, which
        # containers (CI among them) often withhold
        echo = EchoServer()
        port = free_port()
        out = os.path.join(tempfile.mkdtemp(prefix="mqlb-strace-"), "trace")
        lb = Mqlb("[pool p]\nlisten = 127.0.0.1:%d\nhealth_check = none\n"
                  "backend = e 127.0.0.1:%d\n" % (port, echo.port), workers=1,
                  wrap=["strace", "-f", "-qq", "-e", "trace=shutdown", "-o", out])
        try:
            for _ in range(N):
                # the client ends first; the echo server then ends its side
                with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                    c.sendall(b"y")
                    self.assertEqual(c.recv(1), b"y")
                    c.shutdown(socket.SHUT_WR)
                    self.assertEqual(c.recv(1), b"", "the FIN is passed on")
            wait_until(lambda: all(b["active"] == 0 for p in lb.status()["pools"]
                                   for b in p["backends"]), 10, what="sessions closed")
            # strace writes each call as it returns. Sessions live on the
            # worker threads (named mqlb-worker-N); the other threads' calls
            # are the admin port's (libmicrohttpd) and the exit's
            workers = worker_tids(traced_pids(lb)[0])
            self.assertEqual(len(workers), 1, "one worker thread")
            with open(out) as f:
                calls = [line for line in f if "shutdown(" in line and "resumed" not in line
                         and line.split()[0] in workers]
        finally:
            stop_traced(lb)
            echo.stop()
        self.assertEqual(len(calls), N, "shutdown calls for %d sessions:\n%s"
                         % (N, "".join(calls[:6])))


if __name__ == "__main__":
    unittest.main()
