"""System calls per session, counted with strace on the real mqlb: the
end of a plain session costs one shutdown(2) (the first FIN passed on);
the last end is passed on by close(2) alone. A client whose bytes are
there when the broker connect starts is relayed at once: no SO_ERROR
query, and each socket is registered with epoll once, for reading."""

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


def echo_sessions(port, n):
    """<n> sessions one after the other: "y" there and back, then the
    client ends first and the echo server ends its side."""
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"y")
            assert c.recv(1) == b"y"
            c.shutdown(socket.SHUT_WR)
            assert c.recv(1) == b"", "the FIN is passed on"


@unittest.skipUnless(can_trace(), "strace missing or not permitted here")
class Syscalls(unittest.TestCase):

    def worker_calls(self, pool_extra, names):
        """Run N echo sessions through mqlb under strace; the calls named
        in <names> that its worker thread made, as a list of lines."""
        echo = EchoServer()
        port = free_port()
        out = os.path.join(tempfile.mkdtemp(prefix="mqlb-strace-"), "trace")
        lb = Mqlb("[pool p]\nlisten = 127.0.0.1:%d\nhealth_check = none\n%s"
                  "backend = e 127.0.0.1:%d\n" % (port, pool_extra, echo.port),
                  workers=1, wrap=["strace", "-f", "-qq", "-e",
                                   "trace=" + ",".join(names), "-o", out])
        try:
            echo_sessions(port, N)
            wait_until(lambda: all(b["active"] == 0 for p in lb.status()["pools"]
                                   for b in p["backends"]), 10, what="sessions closed")
            workers = worker_tids(traced_pids(lb)[0])
            self.assertEqual(len(workers), 1, "one worker thread")
            with open(out) as f:
                calls = [line for line in f if "resumed" not in line
                         and line.split()[0] in workers]
            # from the first accept on: the worker's own set-up (its
            # listener, its wake-up descriptor) is no session's
            first = [i for i, line in enumerate(calls) if " accept4(" in line]
            return calls[first[0]:] if first else calls
        finally:
            stop_traced(lb)
            echo.stop()

    def test_bytes_ready_at_connect_cost_no_error_query_and_one_registration(self):
        # defer_accept: the client's byte is there when mqlb accepts, so
        # it goes to the broker right after connect(); that send confirms
        # the connect. Per session epoll_ctl: ADD of each socket, and the
        # two that libev's epoll backend adds on its own (the lazy DEL of
        # the client socket once its reader is stopped at its FIN, and a
        # MOD when the broker socket reports its hang-up). Before: an ADD
        # for writability, a MOD to reading, and getsockopt(SO_ERROR).
        names = ["accept4", "epoll_ctl", "getsockopt", "setsockopt", "fcntl",
                 "getsockname", "getpeername", "recvfrom", "sendto"]
        calls = self.worker_calls("defer_accept = on\n", names)
        count = {n: sum(1 for line in calls if line.split()[1].startswith(n + "("))
                 for n in names}
        self.assertGreaterEqual(count["accept4"], N)
        show = "".join(line for line in calls if "epoll_ctl(" in line)[:2000]
        self.assertEqual(count["getsockopt"], 0, "no SO_ERROR query:\n%s" % show)
        self.assertLessEqual(count["epoll_ctl"], 4 * N, "epoll_ctl calls for %d "
                             "sessions:\n%s" % (N, show))
        self.assertEqual(count["setsockopt"], N, "TCP_NODELAY on the broker "
                         "socket only (the client's comes from the listener)")
        self.assertEqual(count["fcntl"] + count["getsockname"]
                         + count["getpeername"], 0)
        # one read of the byte, one of the FIN, on each side; one send each way
        self.assertEqual(count["recvfrom"], 4 * N)
        self.assertEqual(count["sendto"], 2 * N)

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
