"""A real DNS server for the discovery tests: Debian's dnsmasq on a loopback
port, answering only for the zone it is given, from files the test rewrites.

A and AAAA records live in an --addn-hosts file, which dnsmasq re-reads on
SIGHUP. SRV records are --srv-host lines of the conf file, which it reads
only at start, so changing them restarts dnsmasq (by PID) on the same port.
Every answer carries a TTL of `ttl` seconds (--local-ttl)."""

import os
import signal
import socket
import struct
import subprocess
import tempfile
import time

from harness import Proc, free_port, wait_until

ZONE = "mqlb.test"


def dns_query(port, name, qtype, timeout=1.0):
    """Ask 127.0.0.1:<port> for <name>/<qtype> (1 = A, 33 = SRV). Returns
    (rcode, number of answers)."""
    qid = os.getpid() & 0xFFFF
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, ("127.0.0.1", port))
        data, _ = s.recvfrom(4096)
    flags, _, an = struct.unpack(">HHH", data[2:8])
    return flags & 0xF, an


class DnsServer:
    """dnsmasq serving <ZONE> on 127.0.0.1:<port>.

    hosts: {"r1.mqlb.test": "127.0.0.1", ...} (a value may be a list)
    srv:   [("_redis._tcp.mqlb.test", "t1.mqlb.test", port, prio, weight)]"""

    def __init__(self, hosts=None, srv=None, ttl=1, port=None):
        self.port = port or free_port(udp=True)
        self.ttl = ttl
        self.dir = tempfile.mkdtemp(prefix="mqlb-dns-")
        self.hosts_path = os.path.join(self.dir, "hosts")
        self.conf_path = os.path.join(self.dir, "dnsmasq.conf")
        self.hosts = dict(hosts or {})
        self.srv = list(srv or [])
        self.proc = None
        self._write_hosts()
        self._write_conf()
        self.start()

    @property
    def resolvers(self):
        """The value of mqlb's [global] resolvers for this server."""
        return "127.0.0.1:%d" % self.port

    def _write_hosts(self):
        tmp = self.hosts_path + ".tmp"
        with open(tmp, "w") as f:
            for name, addrs in self.hosts.items():
                for a in ([addrs] if isinstance(addrs, str) else addrs):
                    f.write("%s %s\n" % (a, name))
        os.rename(tmp, self.hosts_path)

    def _write_conf(self):
        lines = [
            "port=%d" % self.port,
            "listen-address=127.0.0.1",
            "bind-interfaces",
            "no-resolv",
            "no-hosts",
            "no-negcache",
            "addn-hosts=%s" % self.hosts_path,
            "local=/%s/" % ZONE,
            "local-ttl=%d" % self.ttl,
            "auth-ttl=%d" % self.ttl,
            "pid-file=",
            "user=",
            "log-facility=-",
        ]
        for name, target, port, prio, weight in self.srv:
            lines.append("srv-host=%s,%s,%d,%d,%d" % (name, target, port, prio, weight))
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        self.proc = Proc(["dnsmasq", "--keep-in-foreground", "--conf-file=" + self.conf_path],
                         "dnsmasq-%d" % self.port)
        wait_until(self._answers, 10, what="dnsmasq on port %d" % self.port)

    def _answers(self):
        if not self.proc.alive():
            raise AssertionError("dnsmasq exited:\n" + self.proc.output())
        try:
            dns_query(self.port, "probe." + ZONE, 1, timeout=0.2)
            return True
        except OSError:
            return False

    def set_hosts(self, hosts):
        """Replace the A/AAAA records; dnsmasq re-reads them on SIGHUP."""
        self.hosts = dict(hosts)
        self._write_hosts()
        self.proc.signal(signal.SIGHUP)

    def set_srv(self, srv):
        """Replace the SRV records: a restart on the same port."""
        self.srv = list(srv)
        self._write_conf()
        self.stop()
        self.start()

    def stop(self):
        """Stop serving (a DNS outage): queries time out."""
        if self.proc is not None:
            self.proc.stop()

    def answers_srv(self, name):
        return dns_query(self.port, name, 33)
