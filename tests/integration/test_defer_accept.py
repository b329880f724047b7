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

    def silent_client_is_not_dialed(self):
        """A silent client for 1.5 s: the kernel keeps it from accept(),
        so no broker connection is made (with off mqlb makes one in
        milliseconds, the test above). Returns the client."""
        before = self.echo.conns
        c = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            self.assertEqual(self.echo.conns, before, "dialed before the client spoke")
            time.sleep(0.05)
        return c

    def test_on_waits_for_the_clients_first_bytes(self):
        lb = Mqlb(pool(self.port, self.echo.port, "on"))
        try:
            c = self.silent_client_is_not_dialed()
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

    def test_reload_turns_it_on(self):
        lb = Mqlb(pool(self.port, self.echo.port, "off"))
        try:
            c = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            wait_until(lambda: self.echo.conns == 1, 5, what="a broker connection")
            lb.write(pool(self.port, self.echo.port, "on"))
            lb.reload()
            lb.wait_output("reload done", timeout=10)
            # the listening socket is kept, and now defers
            c2 = self.silent_client_is_not_dialed()
            c2.sendall(b"x")
            self.assertEqual(c2.recv(1), b"x")
            # the session from before the reload still relays
            c.sendall(b"y")
            self.assertEqual(c.recv(1), b"y")
            c.close()
            c2.close()
        finally:
            lb.stop()


if __name__ == "__main__":
    unittest.main()
