"""An HTTP proxy in front of moto_server with one listening port per test host.

usage: s3proxy.py UPSTREAM_PORT LOG CONTROL_DIR PORT [PORT...]

Every request is forwarded as it is (S3 signatures do not cover the port moto sees) and logged
in LOG as one line "PORT METHOD PATH STATUS BODY_BYTES", so that the test can tell which host
downloaded what. While the file CONTROL_DIR/stall-PORT exists, a GET of an archive (a key not
ending in .json) through PORT sends its headers and first chunk, creates CONTROL_DIR/stalled-PORT
and then waits: the host is in the middle of a download until the stall file goes away or the
host dies.
"""

import http.client
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 * 1024
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "expect"}


def make_handler(port, upstream, log, control, log_lock):
    stall_flag = os.path.join(control, "stall-%d" % port)
    stalled_mark = os.path.join(control, "stalled-%d" % port)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def read_body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return body
                    body += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def forward(self):
            body = self.read_body()
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            if body or self.command in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            connection = http.client.HTTPConnection("127.0.0.1", upstream, timeout=300)
            connection.request(self.command, self.path, body=body or None, headers=headers)
            response = connection.getresponse()
            self.send_response(response.status, response.reason)
            length = response.getheader("Content-Length")
            for key, value in response.getheaders():
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            if length is None and self.command != "HEAD":
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            sent = 0
            stall = (self.command == "GET" and response.status == 200
                     and not self.path.split("?")[0].endswith(".json") and os.path.exists(stall_flag))
            try:
                if self.command != "HEAD":
                    while True:
                        chunk = response.read(CHUNK)
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        sent += len(chunk)
                        if stall:
                            stall = False
                            with open(stalled_mark, "w"):
                                pass
                            deadline = time.monotonic() + 300
                            while os.path.exists(stall_flag) and time.monotonic() < deadline:
                                time.sleep(0.1)
            finally:
                connection.close()
                with log_lock, open(log, "a") as out:
                    out.write("%d %s %s %d %d\n" % (port, self.command, self.path.split("?")[0], response.status, sent))

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = forward

    return Handler


def main():
    upstream, log, control = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    log_lock = threading.Lock()
    servers = []
    for port in map(int, sys.argv[4:]):
        server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(port, upstream, log, control, log_lock))
        server.daemon_threads = True
        servers.append(server)
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    with open(os.path.join(control, "ready"), "w"):
        pass
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
