"""defer_accept: with it on, mqlb takes a client (and dials a broker for
it) only once the client's first bytes arrive; with it off, at the
handshake. The real mqlb in front of an echo server."""

import socket
import time
import unittest

from harness import EchoServer, Mqlb, free_port, wait_until


def pool(listen, backend, value):
    return ("[pool p]\nlisten = 127.0.0.1:%d\nhealth_check = none\n"
            "defer_accept = %s\nbackend = e 127.0.0.1:%d\n" % (listen, value, backend))


class DeferAccept(unittest.TestCase):

    def setUp(self):
        self.echo = EchoServer()
        self.port = free_port()

    def tearDown(self):
        self.echo.stop()

    def test_off_dials_the_broker_at_the_handshake(self):
        lb = Mqlb(pool(self.port, self.echo.port, "off"))
        try:
            c = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            # a silent client: mqlb accepts and dials at once
            wait_until(lambda: self.echo.conns == 1, 5, what="a broker connection")
            c.close()
        finally:
            lb.stop()

    def test_on_waits_for_the_clients_first_bytes(self):
        lb = Mqlb(pool(self.port, self.echo.port, "on"))
        try:
            c = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            # Silent for 1.5 s: the kernel keeps the client from accept(),
            # so no broker connection is made (off makes one in
            # milliseconds, the test above).
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                self.assertEqual(self.echo.conns, 0, "dialed before the client spoke")
                time.sleep(0.05)
            c.sendall(b"hello")
            got = b""
            while len(got) < 5:
                d = c.recv(16)
                if not d:
                    break
                got += d
            self.assertEqual(got, b"hello", "the first bytes pass unchanged")
            self.assertEqual(self.echo.conns, 1)
            c.close()
        finally:
            lb.stop()


if __name__ == "__main__":
    unittest.main()
