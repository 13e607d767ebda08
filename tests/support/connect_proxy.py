#!/usr/bin/env python3
"""A forward proxy on loopback for the proxy tests: HTTP CONNECT tunnels (and
plain absolute-URI requests answered 502), every target it is asked for
appended to a log file, names resolved by --map NAME=IP (so that a test can
use names that are not loopback's while everything stays on this machine).

    connect_proxy.py --listen 127.0.0.1:0 --port-file F --log L [--map sink.test=127.0.0.1]...
"""

import argparse
import select
import socket
import socketserver
import threading

LOCK = threading.Lock()


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline(65536).decode("latin-1").strip()
        while True:
            header = self.rfile.readline(65536)
            if header in (b"\r\n", b"\n", b""):
                break
        parts = line.split()
        if len(parts) < 2:
            return
        method, target = parts[0], parts[1]
        with LOCK, open(self.server.log, "a") as log:
            log.write(f"{method} {target}\n")
        if method != "CONNECT":
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        host, _, port = target.rpartition(":")
        host = self.server.names.get(host.strip("[]"), host)
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
        except OSError:
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        self.wfile.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        self.wfile.flush()
        client = self.connection
        sockets = [client, upstream]
        try:
            while True:
                ready, _, _ = select.select(sockets, [], [], 30)
                if not ready:
                    break
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (upstream if s is client else client).sendall(data)
        finally:
            upstream.close()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--map", action="append", default=[])
    args = p.parse_args()
    host, port = args.listen.rsplit(":", 1)
    server = Server((host, int(port)), Handler)
    server.log = args.log
    server.names = dict(m.split("=", 1) for m in args.map)
    open(args.log, "a").close()
    with open(args.port_file, "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
