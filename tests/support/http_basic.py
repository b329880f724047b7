#!/usr/bin/env python3
"""An HTTP server (Python's http.server) that answers 200 only to requests
carrying "Authorization: Basic" with the right user and password, and 401
otherwise; it logs each request's Authorization header to stderr.

    http_basic.py PORT USER PASSWORD"""

import base64
import http.server
import sys


def main():
    port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    want = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            got = self.headers.get("Authorization")
            sys.stderr.write("auth %r\n" % got)
            sys.stderr.flush()
            if got == want:
                self.send_response(200)
                body = b"ok\n"
            else:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="test"')
                body = b"no\n"
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
