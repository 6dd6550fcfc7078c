"""A server-sent-events server for the tests and benchmarks: a threaded HTTP/1.1 server on
127.0.0.1 (a free port) that streams a fixed list of events as text/event-stream.

Each event is a dict {"id": str, "data": str, "event": optional type}; the data may hold
newlines (sent as several `data:` lines). A connection resumes after the event whose id its
Last-Event-ID names (the whole list without one, or for an unknown id). What each connection
does is taken from `plans`, one per connection in order (then `default_plan`):

    {"status": 500}                        answer 500 (text/plain) and close
    {"content_type": "text/plain"}         answer 200 with that type and a body, and close
    {"cut_after": 10}                      send 10 events, then close abruptly: no last chunk
    {"cut_after": 10, "mid_event": True}   the same, but after the first half of the 11th event
    {"end": "finish"}                      all events, then the last chunk (a clean end)
    {"end": "hold"}                        all events, then keep the stream open until stop()

Every connection is recorded in `connections`, with the Last-Event-ID it sent. Bodies are
chunked (HTTP/1.1), so that an abrupt close is visibly a broken stream and not the end of it.
`prelude` is sent first on every stream (a BOM, `retry: 300`, comments); `raw` entries in the
events list (a dict {"raw": str}) are sent as they are, for framing the tests break on purpose.
"""

import http.server
import socket
import threading


def render(event, eol="\n"):
    """One event in the event-stream format, with its id."""
    if "raw" in event:
        return event["raw"]
    out = []
    if "event" in event:
        out.append(f"event: {event['event']}")
    if "id" in event:
        out.append(f"id: {event['id']}")
    for line in event["data"].split("\n"):
        out.append(f"data: {line}")
    return eol.join(out) + eol + eol


class SsePeer:
    def __init__(self, events, plans=(), default_plan=None, prelude="", chunk_size=64 << 10):
        self.events = events
        self.plans = list(plans)
        self.default_plan = default_plan or {"end": "finish"}
        self.prelude = prelude
        self.chunk_size = chunk_size
        self.connections = []  # {"last_event_id": str or None, "plan": dict, "sent": n}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.index = {e["id"]: i for i, e in enumerate(events) if "id" in e}
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                peer._serve(self)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def connection_count(self):
        with self.lock:
            return len(self.connections)

    def _serve(self, h):
        with self.lock:
            n = len(self.connections)
            plan = self.plans[n] if n < len(self.plans) else self.default_plan
            record = {"last_event_id": h.headers.get("Last-Event-ID"), "plan": plan, "sent": 0,
                      "accept": h.headers.get("Accept")}
            self.connections.append(record)
        status = plan.get("status", 200)
        content_type = plan.get("content_type", "text/event-stream")
        if status != 200 or content_type != "text/event-stream":
            body = b"not an event stream\n"
            h.send_response(status)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(body)))
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(body)
            h.close_connection = True
            return
        start = 0
        last = record["last_event_id"]
        if last is not None and last in self.index:
            start = self.index[last] + 1
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.close_connection = True
        pending = [self.prelude]
        size = len(self.prelude)

        def flush():
            nonlocal pending, size
            data = "".join(pending).encode("utf-8")
            pending, size = [], 0
            if data:
                h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

        events = self.events[start:]
        cut = plan.get("cut_after")
        try:
            for i, event in enumerate(events):
                text = render(event)
                if cut is not None and i == cut:
                    if plan.get("mid_event"):
                        pending.append(text[:max(1, len(text) // 2)])
                    flush()
                    h.wfile.flush()
                    h.connection.shutdown(socket.SHUT_RDWR)  # no last chunk: a broken stream
                    return
                pending.append(text)
                size += len(text)
                record["sent"] += 1
                if size >= self.chunk_size:
                    flush()
            flush()
            if plan.get("end", "finish") == "hold":
                h.wfile.flush()
                while not self.stopping.wait(0.05):
                    pass
                return
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
