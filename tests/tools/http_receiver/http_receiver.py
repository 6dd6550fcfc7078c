#!/usr/bin/env python3
"""ingestd-test-http-receiver: the HTTP peer of the http sink's integration tests.

    http_receiver.py RECORD_FILE [--port N]

Listens on 127.0.0.1 (port 0 by default: the kernel picks one) and prints the port as its first
line on stdout. It speaks HTTP/1.1 with keep-alive, one thread per connection.

Data requests (POST to any path but /_control and /_stats) are answered according to the current
mode. Only a request answered 2xx is recorded: its body, gunzipped when Content-Encoding is gzip,
is appended to RECORD_FILE one event per line (an NDJSON body line by line, a JSON array element by
element, re-encoded compactly) and flushed before the answer is sent, so that a client that has
seen the 200 finds its events in the file.

Modes, set with POST /_control and a JSON body {"mode": M, ...}:
    ok       200 (the default)
    503      503, with Retry-After: R when "retry_after": R is given
    429      429 with Retry-After: R ("retry_after", default "1")
    400      400 with a short text body
    hang     read the request and never answer (until the client gives up or the receiver stops)
"times": N makes the mode last for the next N data requests, then it goes back to ok.

GET /_stats answers JSON: {"mode", "requests": {status or "hang": count}, "accepted_events",
"connections", "arrivals": [[monotonic seconds, status or "hang", events accepted], ...],
"last_headers": {...}}.
The receiver runs until SIGTERM or SIGINT, or until its stdin is closed.
"""

import argparse
import gzip
import http.server
import json
import os
import select
import signal
import socket
import sys
import threading
import time

CONTROL_PATH = "/_control"
STATS_PATH = "/_stats"


class State:
    def __init__(self, record_path):
        self.lock = threading.Lock()
        self.record = open(record_path, "ab")
        self.mode = "ok"
        self.retry_after = None
        self.times = None  # data requests left in the current mode; None = until changed
        self.requests = {}
        self.accepted_events = 0
        self.connections = 0
        self.arrivals = []
        self.last_headers = {}
        self.stopping = threading.Event()

    def take_mode(self):
        """The mode for the next data request, counting it against `times`."""
        with self.lock:
            mode, retry_after = self.mode, self.retry_after
            if self.times is not None:
                self.times -= 1
                if self.times <= 0:
                    self.mode, self.retry_after, self.times = "ok", None, None
            return mode, retry_after

    def count(self, outcome, headers, events=0):
        with self.lock:
            key = str(outcome)
            self.requests[key] = self.requests.get(key, 0) + 1
            self.arrivals.append([time.monotonic(), key, events])
            self.last_headers = {k: v for k, v in headers.items()}

    def accept(self, lines):
        with self.lock:
            if lines:
                self.record.write(b"".join(line + b"\n" for line in lines))
                self.record.flush()
            self.accepted_events += len(lines)

    def stats(self):
        with self.lock:
            return {"mode": self.mode, "requests": dict(self.requests),
                    "accepted_events": self.accepted_events, "connections": self.connections,
                    "arrivals": list(self.arrivals), "last_headers": dict(self.last_headers)}


def events_of(body, content_type):
    """The events in a body: JSON array elements, else its non-empty lines."""
    if content_type.split(";")[0].strip() == "application/json":
        return [json.dumps(e, separators=(",", ":")).encode() for e in json.loads(body)]
    return [line for line in body.split(b"\n") if line]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client says otherwise

    def setup(self):
        super().setup()
        with self.server.state.lock:
            self.server.state.connections += 1

    def log_message(self, fmt, *args):  # quiet: the tests read /_stats, not a log
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        length = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        if self.path == STATS_PATH:
            self.reply(200, json.dumps(self.server.state.stats()).encode(),
                       [("Content-Type", "application/json")])
        else:
            self.reply(404, b"not found\n")

    def do_POST(self):
        state = self.server.state
        body = self.read_body()
        if self.path == CONTROL_PATH:
            return self.control(body)
        mode, retry_after = state.take_mode()
        if mode == "hang":
            state.count("hang", self.headers)
            # Never answer; wait until the client closes the connection or the receiver stops.
            while not state.stopping.is_set():
                if self.connection_closed():
                    break
            self.close_connection = True
            return
        if mode == "ok":
            try:
                if self.headers.get("Content-Encoding", "").lower() == "gzip":
                    body = gzip.decompress(body)
                lines = events_of(body, self.headers.get("Content-Type", ""))
            except (OSError, EOFError, ValueError) as e:
                state.count(400, self.headers)
                return self.reply(400, f"cannot decode the body: {e}\n".encode())
            state.accept(lines)
            state.count(200, self.headers, len(lines))
            return self.reply(200, b"")
        status = int(mode)
        headers = []
        if status == 429 or (status == 503 and retry_after is not None):
            headers.append(("Retry-After", str(retry_after if retry_after is not None else 1)))
        state.count(status, self.headers)
        self.reply(status, f"refused by the test receiver ({mode})\n".encode(), headers)

    def connection_closed(self):
        """Waits up to 0.1 s for the client to close the connection; True when it has."""
        readable, _, _ = select.select([self.connection], [], [], 0.1)
        if not readable:
            return False
        try:
            closed = self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True
        if not closed:
            time.sleep(0.1)  # a pipelined request: it is never read either
        return closed

    def control(self, body):
        try:
            cmd = json.loads(body or b"{}")
            mode = str(cmd["mode"])
            if mode not in ("ok", "503", "429", "400", "hang"):
                raise ValueError(f"unknown mode {mode!r}")
            times = cmd.get("times")
            retry_after = cmd.get("retry_after", "1" if mode == "429" else None)
        except (ValueError, KeyError, TypeError) as e:
            return self.reply(400, f"bad control command: {e}\n".encode())
        state = self.server.state
        with state.lock:
            state.mode, state.retry_after = mode, retry_after
            state.times = int(times) if times is not None else None
        self.reply(200, b"ok\n")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("record_file")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = Server(("127.0.0.1", args.port), Handler)
    server.state = State(args.record_file)
    print(server.server_address[1], flush=True)

    def stop(*_):
        server.state.stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except OSError:
            pass
        stop()

    if not sys.stdin.isatty():
        threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever(poll_interval=0.05)
    server.server_close()
    server.state.record.close()
    os._exit(0)  # hung handler threads are daemons; do not wait for them


if __name__ == "__main__":
    main()
