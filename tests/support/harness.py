"""Test harness for mqlb integration tests: start the real ./mqlb and real
brokers on loopback, talk to them with real clients, and wait with polls
that have deadlines (never bare sleeps). Every process is started here and
stopped here, by PID."""

import collections
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

MQLB_BIN = os.environ.get("MQLB_BIN", os.path.abspath("mqlb"))
# The build under test: "" (plain), "1" (ASan+UBSan) or "thread" (TSan),
# as the Makefile's SAN. Bounds on CPU time and memory hold only for the
# plain build: a sanitizer multiplies both.
MQLB_SAN = os.environ.get("MQLB_SAN", "")
PLAIN = MQLB_SAN == ""
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rss_kib(pid):
    """Resident memory of process <pid>, KiB (VmRSS)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise ValueError("no VmRSS")


def cpu_ticks(pid):
    """utime + stime of process <pid>, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def nfds(pid):
    """Open descriptors of process <pid>."""
    return len(os.listdir("/proc/%d/fd" % pid))


def _below_ephemeral():
    """Ports the kernel never hands out by itself: those below its
    ephemeral range, where every connect(2) and bind to port 0 of every
    process takes its local port from."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(1024, low - 20000), low


def _port_range():
    """This process's share of the ports below the ephemeral range: the
    integration runner gives each test class running at the same time a
    slot of its own (MQLB_TEST_SLOT of MQLB_TEST_SLOTS), so that a port
    one class freed to restart a server on it (a broker killed and
    brought back) cannot be taken meanwhile by another class's server."""
    lo, hi = _below_ephemeral()
    try:
        slot = int(os.environ.get("MQLB_TEST_SLOT", ""))
        slots = int(os.environ.get("MQLB_TEST_SLOTS", ""))
    except ValueError:
        return lo, hi
    if slots > 1 and 0 <= slot < slots:
        width = (hi - lo) // slots
        lo += slot * width
        hi = lo + width
    return lo, hi


_PORTS = random.Random(os.urandom(16))     # tests may seed `random`
# Ports handed out lately, oldest first: free_port never gives one twice
# while it may still be about to be bound (a test takes a port for mqlb's
# admin, then one for a server, before either binds).
_GIVEN = collections.deque()


def free_port(host="127.0.0.1", udp=False):
    """A TCP port (with udp=True, free for UDP too) nothing is bound to
    right now, below the kernel's ephemeral range. A kernel-chosen port
    would be in that range, where any client socket of any process (other
    test files run at the same time) may take it: then a server restarted
    on its port (a broker brought back, DNS after an outage) finds it
    taken."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    lo, hi = _port_range()
    while len(_GIVEN) > (hi - lo) // 2:
        _GIVEN.popleft()
    for _ in range(2000):
        port = _PORTS.randrange(lo, hi)
        if port in _GIVEN:
            continue
        try:
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                s.bind((host, port))
            if udp:
                with socket.socket(fam, socket.SOCK_DGRAM) as u:
                    u.bind((host, port))
        except OSError:
            continue
        _GIVEN.append(port)
        return port
    raise OSError("no free port below %d" % hi)


def wait_until(pred, timeout=10.0, interval=0.02, what="condition"):
    """Poll pred() until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except (OSError, ValueError, KeyError, http.client.HTTPException):
            pass
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port(port, host="127.0.0.1", timeout=10.0):
    wait_until(lambda: port_open(port, host), timeout, what="port %d" % port)


class Proc:
    """A child process with its output in a log file."""

    def __init__(self, argv, name, env=None):
        self.argv = argv
        self.name = name
        self.logdir = tempfile.mkdtemp(prefix="mqlb-test-")
        self.logpath = os.path.join(self.logdir, name + ".log")
        self.env = env
        self.p = None
        self.start()

    def start(self):
        self.log = open(self.logpath, "ab")
        self.p = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=self.env)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.p.pid, sig)

    def kill9(self):
        if self.alive():
            self.p.kill()
            self.p.wait(10)
        self.log.close()

    def stop(self, timeout=10.0):
        if self.alive():
            self.p.terminate()
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(10)
        if not self.log.closed:
            self.log.close()

    def output(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")


class RedisServer:
    """A real redis-server on loopback, persistence off."""

    def __init__(self, port=None, extra=()):
        self.port = port or free_port()
        self.extra = list(extra)
        self.proc = None
        self.start()

    def start(self):
        self.proc = Proc(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no", "--protected-mode", "no"]
                         + self.extra, "redis-%d" % self.port)
        wait_port(self.port)

    def kill9(self):
        self.proc.kill9()

    def stop(self):
        self.proc.stop()

    def command(self, *args):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            return redis_command(s, *args)


class ThreeRedisCase(unittest.TestCase):
    """Tests of a class share three real redis-server brokers: cls.redis."""

    @classmethod
    def setUpClass(cls):
        cls.redis = [RedisServer() for _ in range(3)]

    @classmethod
    def tearDownClass(cls):
        for r in cls.redis:
            r.stop()


def redis_encode(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def redis_read(f):
    """Read one RESP reply from a file-like socket reader."""
    line = f.readline()
    if not line:
        raise ConnectionError("connection closed")
    t, rest = line[:1], line[1:-2]
    if t in (b"+", b"-"):
        return rest.decode()
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2].decode("utf-8", "replace")
    if t == b"*":
        return [redis_read(f) for _ in range(int(rest))]
    raise ValueError("bad reply %r" % line)


def redis_command(sock, *args):
    sock.sendall(redis_encode(*args))
    f = sock.makefile("rb")
    try:
        return redis_read(f)
    finally:
        f.close()


class RedisClient:
    """A persistent connection; command() sends one and reads one reply."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=5):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.f = self.sock.makefile("rb")

    def command(self, *args):
        self.sock.sendall(redis_encode(*args))
        return redis_read(self.f)

    def close(self):
        self.f.close()
        self.sock.close()


def redis_port_of(port, **kw):
    """Ask whoever answers on <port> which port it listens on (INFO)."""
    c = RedisClient(port, **kw)
    try:
        info = c.command("INFO", "server")
    finally:
        c.close()
    for line in info.splitlines():
        if line.startswith("tcp_port:"):
            return int(line.split(":")[1])
    raise ValueError("no tcp_port in INFO")


class EchoServer:
    """Echo every byte back; on EOF from the client, shut down the write side
    after echoing all. With reply_on_eof, answer only after the client's FIN
    (half-close test): send back the sha256 of everything received."""

    def __init__(self, reply_on_eof=False, port=None):
        self.reply_on_eof = reply_on_eof
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port or 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(512)
        self.conns = 0
        self.stopped = False
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    def _serve(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns += 1
            threading.Thread(target=self._handle, args=(c,), daemon=True).start()

    def _handle(self, c):
        h = hashlib.sha256()
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                if self.reply_on_eof:
                    h.update(data)
                else:
                    c.sendall(data)
            if self.reply_on_eof:
                c.sendall(h.hexdigest().encode())
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.stopped = True
        self.sock.close()


class EchoStream(threading.Thread):
    """One session through <port> to an echo server: random bytes sent
    <block> at a time, <pause> s apart, until <total> are sent or <stop>
    (an Event) is set; then its FIN, and the echo read to its end. sent
    and got are sha256 objects of each way, nsent/ngot their byte counts,
    error the first socket error."""

    def __init__(self, port, total, block, pause, stop=None):
        super().__init__(daemon=True)
        self.port, self.total, self.block, self.pause = port, total, block, pause
        self.stop_ev = stop or threading.Event()
        self.sent, self.got = hashlib.sha256(), hashlib.sha256()
        self.nsent = self.ngot = 0
        self.error = None

    def run(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            rd = threading.Thread(target=self._read, args=(s,), daemon=True)
            rd.start()
            while not self.stop_ev.is_set() and self.nsent < self.total:
                data = os.urandom(self.block)
                self.sent.update(data)
                s.sendall(data)
                self.nsent += len(data)
                self.stop_ev.wait(self.pause)       # pacing
            s.shutdown(socket.SHUT_WR)
            rd.join(60)
            s.close()
        except OSError as e:
            self.error = repr(e)

    def _read(self, s):
        try:
            while True:
                data = s.recv(262144)
                if not data:
                    return
                self.got.update(data)
                self.ngot += len(data)
        except OSError as e:
            self.error = repr(e)


class Mosquitto:
    """A real mosquitto broker on loopback, sessions in memory, every
    connection logged (so a test can see which broker a client reached);
    <extra> adds lines to its config."""

    def __init__(self, extra=""):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mqlb-mosq-")
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "log_dest stderr\nlog_type all\nconnection_messages true\n%s"
                    % (self.port, extra))
        self.proc = Proc(["mosquitto", "-c", conf], "mosquitto-%d" % self.port)
        wait_port(self.port)

    def clients_seen(self):
        """The client ids of every connection so far, in order."""
        return re.findall(r"New client connected from \S+ as (\S+) ", self.proc.output())

    def stop(self):
        self.proc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Mqlb:
    """The real mqlb binary with a config written for the test."""

    def __init__(self, pools, global_extra="", admin_extra="", workers=2, check=True, env=None,
                 wrap=()):
        """wrap: a command mqlb runs under (strace), which then is its parent."""
        self.admin_port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mqlb-cfg-")
        self.path = os.path.join(self.dir, "mqlb.ini")
        self.global_extra = global_extra
        self.admin_extra = admin_extra
        self.workers = workers
        self.write(pools)
        self.proc = Proc(list(wrap) + [MQLB_BIN, "-c", self.path], "mqlb", env=env)
        if check:
            self.wait_ready()

    def write(self, pools):
        text = "[global]\nworkers = %d\nshutdown_timeout = 10s\n%s\n" % (
            self.workers, self.global_extra)
        if "log_level" not in self.global_extra:
            text += "log_level = info\n"
        text += "[admin]\nlisten = 127.0.0.1:%d\n%s\n" % (self.admin_port, self.admin_extra)
        text += pools
        self.pools_text = pools
        with open(self.path, "w") as f:
            f.write(text)

    def wait_ready(self, timeout=10.0):
        wait_until(lambda: self.alive() and port_open(self.admin_port), timeout,
                   what="mqlb admin port")

    def alive(self):
        return self.proc.alive()

    def http(self, method, path, headers=None, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=5)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read().decode("utf-8", "replace"), dict(r.getheaders())
        finally:
            c.close()

    def status(self):
        code, body, _ = self.http("GET", "/status")
        if code != 200:
            raise ValueError("status %d" % code)
        return json.loads(body)

    def sessions(self, pool=None):
        """The sessions GET /sessions lists (of <pool> only, if given); an
        answer other than 200 fails the test, also inside wait_until."""
        code, body, _ = self.http("GET", "/sessions" + ("?pool=%s" % pool if pool else ""))
        if code != 200:
            raise AssertionError("GET /sessions: %d %s" % (code, body))
        return json.loads(body)["sessions"]

    def backend(self, pool, name):
        for p in self.status()["pools"]:
            if p["name"] == pool:
                for b in p["backends"]:
                    if b["name"] == name:
                        return b
        raise KeyError(name)

    def wait_state(self, pool, name, state, timeout=10.0):
        return wait_until(lambda: self.backend(pool, name)["state"] == state, timeout,
                          what="%s/%s %s" % (pool, name, state))

    def reload(self):
        self.proc.signal(signal.SIGHUP)

    def stop(self):
        self.proc.stop()
        check_sanitizers(self.output())

    def output(self):
        return self.proc.output()

    def wait_output(self, text, count=1, timeout=5.0):
        """mqlb's output once <text> is in it <count> times. mqlb writes
        its log from a thread of its own, so a line can follow the event
        it tells of (a client's EOF, a reload's answer) by a moment."""
        def enough():
            out = self.output()
            return out if out.count(text) >= count else None
        return wait_until(enough, timeout, what="%d x %r in mqlb's log" % (count, text))


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer")


def check_sanitizers(output):
    """Fail the test that ran mqlb if a sanitizer build reported anything."""
    for mark in SANITIZER_MARKS:
        i = output.find(mark)
        if i != -1:
            raise AssertionError("mqlb sanitizer report: %s" % output[max(0, i - 200):i + 1500])
