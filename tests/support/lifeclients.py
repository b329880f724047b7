"""Clients and a stand-in server for the broker life-cycle tests.

- mqtt_connect_packet, mqtt_read_packet, connack5_properties: MQTT 3.1.1
  and 5 packets for a raw socket.
- MqttClient: a minimal asyncio MQTT 3.1.1 client (CONNECT with a keep
  alive, PINGREQ on schedule or not at all, sees when the other side
  closes). Hundreds of them run in one event loop.
- MqttFleet: N long-lived MQTT clients that reconnect when closed, as a
  real fleet does, recording every close the server made.
- MqttStandIn: NOT a broker; a scripted MQTT server that answers CONNECT
  and PINGREQ and never closes a silent client itself, so that a test
  sees mqlb's own idle rule (real mosquitto is tested too).
- AmqpClient: the client side of the AMQP 0-9-1 connection handshake
  (protocol header, Start-Ok, Tune-Ok with a heartbeat, Open), then
  heartbeats on schedule or silence.
- AmqpStandIn: NOT a broker. A scripted AMQP 0-9-1 stand-in server that
  performs the Start/Tune/Open handshake and then sends heartbeat frames
  on its own, as RabbitMQ does; used in `make test` where RabbitMQ is too
  slow to start (the real RabbitMQ runs in `make test-brokers`).
- Mosquitto: a real mosquitto on loopback that logs its connections, and
  established(): broker-side connection counts read from /proc/net/tcp.
"""

import asyncio
import os
import re
import shutil
import struct
import tempfile
import time

from harness import Proc, free_port, wait_port

# ---- MQTT ---------------------------------------------------------------


def mqtt_connect_packet(client_id, keepalive, clean=True, version=4):
    """CONNECT: MQTT 3.1.1 (version 4) or MQTT 5 (version 5, no
    properties)."""
    cid = client_id.encode()
    var = b"\x00\x04MQTT" + bytes([version, 0x02 if clean else 0x00]) + \
        struct.pack(">H", keepalive) + (b"\x00" if version == 5 else b"")
    body = var + struct.pack(">H", len(cid)) + cid
    return bytes([0x10, len(body)]) + body


def _varint(buf, i):
    """MQTT's variable byte integer at <buf>[i]: (value, next index)."""
    value, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def mqtt_read_packet(sock):
    """One whole MQTT packet from the blocking socket <sock> (plain or
    TLS), its fixed header included."""
    def take(n):
        got = b""
        while len(got) < n:
            d = sock.recv(n - len(got))
            if not d:
                raise ConnectionError("closed after %d of %d bytes" % (len(got), n))
            got += d
        return got

    head = take(2)
    while head[-1] & 0x80:
        head += take(1)
    length, _ = _varint(head, 1)
    return head + take(length)


# CONNACK properties of MQTT 5 by identifier: a value's size in bytes, or
# "s" for a string (binary data alike), "ss" for a string pair.
_CONNACK5_PROPS = {0x11: 4, 0x12: "s", 0x13: 2, 0x15: "s", 0x16: "s", 0x1a: "s",
                   0x1c: "s", 0x1f: "s", 0x21: 2, 0x22: 2, 0x24: 1, 0x25: 1,
                   0x26: "ss", 0x27: 4, 0x28: 1, 0x29: 1, 0x2a: 1}


def connack5_properties(packet):
    """{identifier: value} of an MQTT 5 CONNACK: integers, or the bytes
    of strings (the last user property only)."""
    _, i = _varint(packet, 1)
    end, i = _varint(packet, i + 2)
    end += i
    props = {}
    while i < end:
        pid, kind = packet[i], _CONNACK5_PROPS[packet[i]]
        i += 1
        if isinstance(kind, int):
            props[pid] = int.from_bytes(packet[i:i + kind], "big")
            i += kind
            continue
        for _ in kind:
            n = struct.unpack(">H", packet[i:i + 2])[0]
            props[pid] = packet[i + 2:i + 2 + n]
            i += 2 + n
    return props


class MqttClient:
    """One MQTT connection. <ping>: send PINGREQ every keepalive/2 s;
    False keeps the socket open and silent."""

    def __init__(self, port, client_id, keepalive, ping=True, host="127.0.0.1"):
        self.port = port
        self.host = host
        self.client_id = client_id
        self.keepalive = keepalive
        self.ping = ping
        self.reader = self.writer = None
        self.connected_at = None
        self.closed_at = None       # monotonic time the peer closed
        self.pongs = 0
        self._tasks = []

    async def connect(self, timeout=5.0):
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout)
        self.writer.write(mqtt_connect_packet(self.client_id, self.keepalive))
        ack = await asyncio.wait_for(self.reader.readexactly(4), timeout)
        if ack[0] != 0x20 or ack[3] != 0:
            raise ConnectionError("CONNACK refused: %r" % ack)
        self.connected_at = time.monotonic()
        self.local = self.writer.get_extra_info("sockname")
        self._tasks.append(asyncio.ensure_future(self._read()))
        if self.ping and self.keepalive > 0:
            self._tasks.append(asyncio.ensure_future(self._pinger()))
        return self

    async def _read(self):
        try:
            while True:
                hdr = await self.reader.readexactly(2)
                if hdr[0] == 0xd0:
                    self.pongs += 1
                if hdr[1]:
                    await self.reader.readexactly(hdr[1])
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        self.closed_at = time.monotonic()
        for t in self._tasks:
            if t is not asyncio.current_task():
                t.cancel()

    async def _pinger(self):
        try:
            while True:
                await asyncio.sleep(self.keepalive / 2)
                self.writer.write(b"\xc0\x00")
                await self.writer.drain()
        except (ConnectionError, OSError):
            pass

    async def wait_closed(self, timeout):
        """Seconds from connect until the other side closed, or None."""
        deadline = time.monotonic() + timeout
        while self.closed_at is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return None if self.closed_at is None else self.closed_at - self.connected_at

    def close(self):
        for t in self._tasks:
            t.cancel()
        if self.writer is not None:
            self.writer.close()


class MqttFleet:
    """<n> MQTT clients "c0".."c<n-1>" that reconnect 50-150 ms after the
    server closes them. closes[id] lists the monotonic times the server
    closed that client; failures counts connects that failed."""

    def __init__(self, port, n, keepalive=60, prefix="c"):
        self.port = port
        self.ids = ["%s%d" % (prefix, i) for i in range(n)]
        self.keepalive = keepalive
        self.closes = {cid: [] for cid in self.ids}
        self.connects = {cid: 0 for cid in self.ids}
        self.failures = 0
        self.live = {}
        self._stop = False
        self._tasks = []

    def start(self):
        for i, cid in enumerate(self.ids):
            self._tasks.append(asyncio.ensure_future(self._run(cid, i)))

    async def _run(self, cid, i):
        await asyncio.sleep((i % 50) * 0.002)
        while not self._stop:
            c = MqttClient(self.port, cid, self.keepalive, ping=False)
            try:
                await c.connect()
            except (OSError, ConnectionError, asyncio.TimeoutError,
                    asyncio.IncompleteReadError):
                self.failures += 1
                await asyncio.sleep(0.1 + (i % 10) * 0.01)
                continue
            self.connects[cid] += 1
            self.live[cid] = c
            while c.closed_at is None and not self._stop:
                await asyncio.sleep(0.02)
            self.live.pop(cid, None)
            if self._stop:
                c.close()
                break
            self.closes[cid].append(c.closed_at)
            c.close()
            await asyncio.sleep(0.05 + (i % 11) * 0.01)

    def nlive(self):
        return len(self.live)

    async def stop(self):
        self._stop = True
        for c in list(self.live.values()):
            c.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def max_in_window(times, window=1.0):
    """The most entries of sorted <times> in any half-open window."""
    times = sorted(times)
    best = j = 0
    for i, t in enumerate(times):
        while t - times[j] >= window:
            j += 1
        best = max(best, i - j + 1)
    return best


class MqttStandIn:
    """NOT a broker: a scripted MQTT stand-in server that answers CONNECT
    with CONNACK and PINGREQ with PINGRESP and never enforces a keep alive
    itself, so that only mqlb can close a silent client. Runs in its own
    thread's event loop."""

    def __init__(self):
        import threading
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()
        self._ready.wait(10)
        wait_port(self.port)

    def _main(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self._ready.set()
        self.loop.run_forever()

    async def _serve(self, reader, writer):
        try:
            while True:
                hdr = await reader.readexactly(2)
                rl, shift, b = hdr[1] & 0x7f, 7, hdr[1]
                while b & 0x80:
                    b = (await reader.readexactly(1))[0]
                    rl |= (b & 0x7f) << shift
                    shift += 7
                if rl:
                    await reader.readexactly(rl)
                if hdr[0] == 0x10:
                    writer.write(b"\x20\x02\x00\x00")
                elif hdr[0] == 0xc0:
                    writer.write(b"\xd0\x00")
                elif hdr[0] == 0xe0:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        writer.close()

    def stop(self):
        async def close():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


# ---- AMQP 0-9-1 ---------------------------------------------------------

AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = b"\xce"


def amqp_frame(ftype, channel, payload):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + FRAME_END


def amqp_method(cls, meth, args=b""):
    return amqp_frame(1, 0, struct.pack(">HH", cls, meth) + args)


def shortstr(s):
    return bytes([len(s)]) + s


def longstr(s):
    return struct.pack(">I", len(s)) + s


HEARTBEAT_FRAME = amqp_frame(8, 0, b"")


async def amqp_read_frame(reader):
    hdr = await reader.readexactly(7)
    ftype, channel, size = struct.unpack(">BHI", hdr)
    payload = await reader.readexactly(size)
    end = await reader.readexactly(1)
    if end != FRAME_END:
        raise ValueError("bad frame end")
    return ftype, channel, payload


async def amqp_read_method(reader, want):
    """Skip heartbeats; the next method must be class/method <want>."""
    while True:
        ftype, _, payload = await amqp_read_frame(reader)
        if ftype == 8:
            continue
        got = struct.unpack(">HH", payload[:4])
        if ftype != 1 or got != want:
            raise ValueError("expected method %r, got type %d %r" % (want, ftype, got))
        return payload[4:]


class AmqpClient:
    """The client side of an AMQP connection up to Open-Ok, with
    <heartbeat> s in Tune-Ok; then heartbeats every heartbeat/2 s if
    <beat>, else silence with the socket open."""

    def __init__(self, port, heartbeat, beat=True, host="127.0.0.1"):
        self.port = port
        self.host = host
        self.heartbeat = heartbeat
        self.beat = beat
        self.opened_at = None
        self.closed_at = None
        self._tasks = []

    async def connect(self, timeout=5.0):
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout)
        w = self.writer
        w.write(AMQP_HEADER)
        await asyncio.wait_for(amqp_read_method(self.reader, (10, 10)), timeout)
        props = b""     # an empty client-properties table
        w.write(amqp_method(10, 11, longstr(props) + shortstr(b"PLAIN") +
                            longstr(b"\x00guest\x00guest") + shortstr(b"en_US")))
        tune = await asyncio.wait_for(amqp_read_method(self.reader, (10, 30)), timeout)
        channel_max, frame_max, _ = struct.unpack(">HIH", tune[:8])
        w.write(amqp_method(10, 31, struct.pack(">HIH", channel_max, frame_max,
                                                 self.heartbeat)))
        w.write(amqp_method(10, 40, shortstr(b"/") + shortstr(b"") + b"\x00"))
        await asyncio.wait_for(amqp_read_method(self.reader, (10, 41)), timeout)
        self.opened_at = time.monotonic()
        self._tasks.append(asyncio.ensure_future(self._read()))
        if self.beat and self.heartbeat > 0:
            self._tasks.append(asyncio.ensure_future(self._beater()))
        return self

    async def _read(self):
        try:
            while True:
                await amqp_read_frame(self.reader)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError):
            pass
        self.closed_at = time.monotonic()
        for t in self._tasks:
            if t is not asyncio.current_task():
                t.cancel()

    async def _beater(self):
        try:
            while True:
                await asyncio.sleep(self.heartbeat / 2)
                self.writer.write(HEARTBEAT_FRAME)
                await self.writer.drain()
        except (ConnectionError, OSError):
            pass

    async def wait_closed(self, timeout):
        deadline = time.monotonic() + timeout
        while self.closed_at is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return None if self.closed_at is None else self.closed_at - self.opened_at

    def close(self):
        for t in self._tasks:
            t.cancel()
        self.writer.close()


class AmqpStandIn:
    """A scripted AMQP 0-9-1 stand-in server (not a broker): Start, Tune
    proposing <heartbeat>, Open-Ok, then a heartbeat frame every
    heartbeat/2 s whatever the client does (RabbitMQ's behaviour); it never
    closes a silent client itself. Runs in its own thread's event loop."""

    def __init__(self, heartbeat=2):
        import threading
        self.heartbeat = heartbeat
        self.port = free_port()
        self.tune_oks = []          # heartbeat values clients sent
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()
        self._ready.wait(10)
        wait_port(self.port)

    def _main(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self._ready.set()
        self.loop.run_forever()

    async def _serve(self, reader, writer):
        beats = None
        try:
            if await reader.readexactly(8) != AMQP_HEADER:
                writer.write(AMQP_HEADER)
                return
            table = b""
            writer.write(amqp_method(10, 10, b"\x00\x09" + longstr(table) +
                                     longstr(b"PLAIN") + longstr(b"en_US")))
            await amqp_read_method(reader, (10, 11))
            writer.write(amqp_method(10, 30, struct.pack(">HIH", 2047, 131072,
                                                          self.heartbeat)))
            tune_ok = await amqp_read_method(reader, (10, 31))
            self.tune_oks.append(struct.unpack(">HIH", tune_ok[:8])[2])
            await amqp_read_method(reader, (10, 40))
            writer.write(amqp_method(10, 41, shortstr(b"")))
            beats = asyncio.ensure_future(self._beat(writer))
            while True:
                await amqp_read_frame(reader)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError):
            pass
        finally:
            if beats is not None:
                beats.cancel()
            writer.close()

    async def _beat(self, writer):
        try:
            while True:
                await asyncio.sleep(self.heartbeat / 2)
                writer.write(HEARTBEAT_FRAME)
                await writer.drain()
        except (ConnectionError, OSError):
            pass

    def stop(self):
        async def close():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


# ---- brokers ------------------------------------------------------------


class Mosquitto:
    """A real mosquitto on loopback (in-memory sessions) that logs every
    connection and disconnection. <port> may be given to restart one on
    the same address."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="mqlb-mosq-")
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "log_dest stderr\nlog_type all\nconnection_messages true\n"
                    "max_keepalive 65535\n" % self.port)
        self.proc = None
        self.start()

    def start(self):
        self.proc = Proc(["mosquitto", "-c", self.conf], "mosquitto-%d" % self.port)
        wait_port(self.port)

    def connected_ids(self):
        """Client ids connected now, from this run's log in order; none
        while the broker is not running."""
        live = set()
        if not self.proc.alive():
            return live
        for line in self.proc.output().splitlines():
            m = re.search(r"New client connected from \S+ as (\S+) \(", line)
            if m:
                live.add(m.group(1))
                continue
            m = re.search(r"Client (\S+) (closed its connection|disconnected|has exceeded"
                          r"|already connected)", line) or \
                re.search(r"Socket error on client (\S+),", line)
            if m:
                live.discard(m.group(1))
        return live

    def kill(self):
        """Gone at once, as a crash: every connection closes now."""
        self.proc.kill9()

    def established(self):
        return established(self.port)

    def stop(self):
        self.proc.stop()

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def established_many(ports):
    """Established TCP connections whose local port is each of <ports>
    (the server side of them), from /proc/net/tcp and tcp6 in one pass."""
    want = {"%04X" % p: p for p in ports}
    n = {p: 0 for p in ports}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    fields = line.split(None, 4)
                    if fields[3] == "01":
                        port = want.get(fields[1][-4:])
                        if port is not None:
                            n[port] += 1
        except FileNotFoundError:
            pass
    return n


def established(port):
    return established_many([port])[port]


class CountWatcher:
    """Broker-side connection counts of <ports>, refreshed by a thread of
    its own every <interval> s (reading /proc/net/tcp on a busy machine
    takes long enough to stall an event loop of clients)."""

    def __init__(self, ports, interval=0.2):
        import threading
        self.ports = list(ports)
        self.interval = interval
        self.latest = [0] * len(self.ports)
        self.fresh = 0          # refreshes so far
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            n = established_many(self.ports)
            self.latest = [n[p] for p in self.ports]
            self.fresh += 1
            self._stop.wait(self.interval)

    def counts(self):
        return list(self.latest)

    def stop(self):
        self._stop.set()
        self.thread.join(10)
