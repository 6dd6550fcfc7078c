"""source/http -> parse/json -> file (encoding: json), driven by the test's own clients.

Every record the test posts carries a unique id; the test keeps its own list of what each answer
accepted and checks the output file against it: each accepted record exactly once, with its route's
fields, and nothing else. Each refusal path is exercised and its status checked, and the counters
the daemon writes at exit (requests.<route>.<status>, records, connections...) must equal the
test's own tally.

Other tests: ack: durable (200 only once the record is in the file), a blocked sink (504 when the
acknowledgement does not come, then 503 with Retry-After once the queues are full), a bearer
token taken from the environment (401 with WWW-Authenticate), and a slowloris client closed after
header_timeout while others are served, then 10,000 idle keep-alive connections held with bounded
memory while a normal request still succeeds.
"""

import collections
import gzip
import http.client
import json
import os
import re
import resource
import signal
import socket
import threading
import time
import unittest

import harness
from harness import Counters, q


class Client:
    """A keep-alive HTTP/1.1 client (http.client) that tallies every answer per (route, status)."""

    def __init__(self, port, tally):
        self.port = port
        self.tally = tally
        self.connections = 0
        self.conn = None

    def request(self, method, path, body=b"", headers=None, route="unrouted"):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.connections += 1
        self.conn.request(method, path, body=body, headers=headers or {})
        res = self.conn.getresponse()
        data = res.read()
        self.tally[(route, res.status)] += 1
        if res.getheader("Connection", "").lower() == "close":
            self.close()
        return res, data

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def raw_exchange(port, data, timeout=10):
    """Sends raw bytes on a new connection; returns everything read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def status_of(raw):
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else None


class HttpSourceTest(harness.IntegrationTestCase):
    def setUp(self):
        super().setUp()
        self.port = harness.free_port()
        self.out = self.path("events.jsonl")
        self.tally = collections.Counter()
        self.next_id = 0

    def config(self, source_extra="", sink=None, parser_extra="", routes_extra=""):
        sink = sink or f"""
  out:
    type: file
    inputs: [events]
    path: {q(self.out)}
    encoding: json
"""
        return f"""
data_dir: {q(self.dir)}
shutdown_timeout: 5s
sources:
  web:
    type: http
    listen: 127.0.0.1:{self.port}
    routes:
      - {{path: /api/visit/v1/, name: visit, fields: {{stream: visit}}}}
      - {{path: /api/activity/v1/, name: activity, methods: [POST, PUT],
          fields: {{stream: activity, tier: edge}}}}
{routes_extra}{source_extra}
parsers:
  events:
    type: json
    inputs: [web]
{parser_extra}
sinks:
{sink}
"""

    def start(self, **kwargs):
        d = self.start_daemon(self.config(**kwargs))
        harness.wait_until(lambda: "listening on" in d.stderr() or not d.running(), 30,
                           "the http source to listen")
        self.assertTrue(d.running(), d.stderr_tail())
        return d

    def client(self):
        c = Client(self.port, self.tally)
        self.addCleanup(c.close)
        return c

    def records(self, n):
        out = []
        for _ in range(n):
            out.append({"id": self.next_id, "v": f"x{self.next_id}"})
            self.next_id += 1
        return out

    def assert_counters(self, c, connections=None):
        """requests.<route>.<status> in the stats equal the test's tally, route by route."""
        for (route, status), n in self.tally.items():
            self.assertEqual(c[f"web.requests.{route}.{status}"], n, f"{route} {status}")
        for name, value in c.counters.items():
            if name.startswith("web.requests.") and value:
                _, _, route, status = name.split(".")
                self.assertEqual(value, self.tally[(route, int(status))], name)
        rejected = sum(n for (_, status), n in self.tally.items() if status >= 300)
        self.assertEqual(c["web.rejected"], rejected)
        if connections is not None:
            self.assertEqual(c["web.connections_opened"], connections)
            self.assertEqual(c["web.connections_closed"], connections)

    def test_records_exactly_once_with_route_fields_and_every_refusal(self):
        d = self.start(source_extra="""
    max_body_size: 64KiB
    max_decompressed_size: 256KiB
    max_header_size: 4KiB
""")
        client = self.client()
        expected = []  # (id, stream, tier or None)

        def post(path, body, content_type, route, stream, tier=None, encoding=None,
                 method="POST", records=()):
            headers = {"Content-Type": content_type}
            if encoding:
                headers["Content-Encoding"] = encoding
            res, data = client.request(method, path, body, headers, route)
            self.assertEqual(res.status, 202, data)
            self.assertEqual(json.loads(data), {"records": len(records)})
            expected.extend((r["id"], stream, tier) for r in records)

        # One object; an array; NDJSON with blank lines and spaces; a pretty-printed object;
        # a gzip array over PUT; objects one after another under application/json.
        recs = self.records(1)
        post("/api/visit/v1/", json.dumps(recs[0]), "application/json", "visit", "visit",
             records=recs)
        recs = self.records(50)
        post("/api/visit/v1", json.dumps(recs), "application/json; charset=utf-8", "visit",
             "visit", records=recs)
        recs = self.records(20)
        body = "\n\n".join("  " + json.dumps(r) + " \r" for r in recs) + "\n\n"
        post("/api/activity/v1/?src=app", body, "application/x-ndjson", "activity", "activity",
             "edge", records=recs)
        recs = self.records(1)
        post("/api/visit/v1/", json.dumps(recs[0], indent=2), "application/json", "visit",
             "visit", records=recs)
        recs = self.records(300)
        post("/api/activity/v1/", gzip.compress(json.dumps(recs).encode()), "application/json",
             "activity", "activity", "edge", encoding="gzip", method="PUT", records=recs)
        recs = self.records(5)
        post("/api/visit/v1/", "".join(json.dumps(r) for r in recs), "application/json",
             "visit", "visit", records=recs)
        # A record that is no JSON still goes to the parser, which counts it as an error.
        recs = self.records(2)
        res, data = client.request("POST", "/api/visit/v1/",
                                   json.dumps(recs[0]) + "\n{\"broken\": tru}\n" +
                                   json.dumps(recs[1]),
                                   {"Content-Type": "application/jsonl"}, "visit")
        self.assertEqual((res.status, json.loads(data)), (202, {"records": 3}))
        expected.extend((r["id"], "visit", None) for r in recs)
        self.assertEqual(client.connections, 1, "keep-alive: one connection so far")

        def refused(method, path, body, headers, route, status, text):
            res, data = client.request(method, path, body, headers, route)
            self.assertEqual(res.status, status, data)
            self.assertIn(text, json.loads(data)["error"])
            return res

        js = {"Content-Type": "application/json"}
        # 404, 405, 415 (type and encoding), 400 (framing, broken gzip): keep-alive goes on.
        refused("POST", "/nowhere", "{}", js, "unrouted", 404, "no route")
        res = refused("GET", "/api/visit/v1/", None, {}, "visit", 405, "method not allowed")
        self.assertEqual(res.getheader("Allow"), "POST")
        refused("PUT", "/api/visit/v1/", "{}", js, "visit", 405, "method not allowed")
        refused("POST", "/api/visit/v1/", "a,b", {"Content-Type": "text/csv"}, "visit", 415,
                "Content-Type")
        refused("POST", "/api/visit/v1/", "{}", {**js, "Content-Encoding": "br"}, "visit", 415,
                "Content-Encoding")
        refused("POST", "/api/visit/v1/", '[{"id": -1}, {"id": -2}', js, "visit", 400,
                "does not close")
        refused("POST", "/api/visit/v1/", '[{"id": -1} {"id": -2}]', js, "visit", 400,
                "',' or ']' is missing")
        whole = gzip.compress(json.dumps(self.records(1)).encode())
        refused("POST", "/api/visit/v1/", whole[:-6], {**js, "Content-Encoding": "gzip"},
                "visit", 400, "truncated")
        # 413: a gzip bomb (the request was read whole: keep-alive goes on) ...
        bomb = gzip.compress(b" " * (8 << 20))
        self.assertLess(len(bomb), 64 << 10)
        refused("POST", "/api/visit/v1/", bomb, {**js, "Content-Encoding": "gzip"}, "visit", 413,
                "decompresses to more than 262144 bytes")
        self.assertEqual(client.connections, 1, "keep-alive through the refusals")
        # ... and a body over max_body_size: answered (not reset), then the connection closes.
        res = refused("POST", "/api/visit/v1/", b"[" + b" " * (1 << 20) + b"]", js, "visit", 413,
                      "larger than max_body_size (65536 bytes)")
        self.assertEqual(res.getheader("Connection"), "close")
        # 431: a header over max_header_size.
        res = refused("POST", "/api/visit/v1/", "{}", {**js, "X-Big": "y" * 8192}, "unrouted",
                      431, "header is larger than 4096 bytes")
        client.close()

        # Malformed HTTP on raw connections: 400 and close, the daemon unharmed.
        for raw in (b"GARBAGE\x01 / HTTP/1.1\r\n\r\n",
                    b"POST /api/visit/v1/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                    b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"):
            answer = raw_exchange(self.port, raw)
            self.assertEqual(status_of(answer), 400, answer)
        self.tally[("unrouted", 400)] += 1
        self.tally[("visit", 400)] += 1

        # The connection in use still works after all that.
        recs = self.records(3)
        post("/api/visit/v1/", json.dumps(recs), "application/json", "visit", "visit",
             records=recs)
        self.assertEqual(client.connections, 3, "one more after each closing refusal")

        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        got = [(e["id"], e["stream"], e.get("tier")) for e in harness.read_jsonl(self.out)]
        self.assertEqual(sorted(got), sorted(expected))
        self.assertEqual(len(set(got)), len(got), "a record was written twice")
        c = Counters(d.stats())
        self.assert_counters(c, connections=client.connections + 2)
        self.assertEqual(c["web.records"], len(expected) + 1)
        self.assertEqual(c["events.parsed"], len(expected))
        self.assertEqual(c["events.errors"], 1)
        self.assertEqual(c["web.connections_refused"], 0)

    def test_durable_ack_answers_200_once_the_record_is_written(self):
        d = self.start(source_extra="    ack: durable\n")
        client = self.client()
        written = []
        for n in (1, 7, 40):
            recs = self.records(n)
            res, data = client.request("POST", "/api/visit/v1/", json.dumps(recs),
                                       {"Content-Type": "application/json"}, "visit")
            self.assertEqual(res.status, 200, data)
            written.extend(r["id"] for r in recs)
            # Durable: the file holds the records by the time the answer comes.
            ids = [e["id"] for e in harness.read_jsonl(self.out)]
            self.assertEqual(sorted(ids), written)
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        self.assert_counters(Counters(d.stats()), connections=1)

    def blackhole_sink(self, extra):
        """An http sink (its yaml) whose peer, the returned listening socket, takes connections
        (the kernel's backlog) and never answers."""
        blackhole = socket.socket()
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(64)
        self.addCleanup(blackhole.close)
        return f"""
  out:
    type: http
    inputs: [events]
    workers: 1  # one connection held by the blackhole: what fills the queues is counted on it
    url: http://127.0.0.1:{blackhole.getsockname()[1]}/in
    {extra}
""", blackhole

    def test_blocked_sink_gives_504_then_503_with_retry_after(self):
        sink, _ = self.blackhole_sink("timeout: 1s\n    queue: {max_batches: 1}")
        d = self.start(source_extra="""
    ack: durable
    ack_timeout: 300ms
    push_timeout: 50ms
    retry_after: 7s
""", sink=sink, parser_extra="    queue: {max_batches: 1}\n    workers: 1\n")
        client = self.client()
        res, data = client.request("POST", "/api/visit/v1/", json.dumps(self.records(1)),
                                   {"Content-Type": "application/json"}, "visit")
        self.assertEqual(res.status, 504, data)
        self.assertIn("not acknowledged within 300 ms", json.loads(data)["error"])

        def full():
            res, data = client.request("POST", "/api/visit/v1/", json.dumps(self.records(1)),
                                       {"Content-Type": "application/json"}, "visit")
            self.assertIn(res.status, (503, 504), data)
            return res if res.status == 503 else None

        res = harness.wait_until(full, 30, "a 503 once the queues are full")
        self.assertEqual(res.getheader("Retry-After"), "7")
        client.close()
        # The sink never answers: what it holds is discarded at the shutdown deadline (exit 1),
        # but the source stops in time and its counters are written.
        rc, took = d.stop()
        self.assertIn(rc, (0, 1), d.stderr_tail())
        self.assertLess(took, 10)
        self.assert_counters(Counters(d.stats()))

    def test_reload_replaces_the_source_on_its_port(self):
        d = self.start()
        js = {"Content-Type": "application/json"}
        old = self.client()
        first = self.records(5)
        res, data = old.request("POST", "/api/visit/v1/", json.dumps(first), js, "visit")
        self.assertEqual(res.status, 202, data)

        # A new route changes the source: its replacement listens on the same port while the
        # old one still runs, then takes over.
        self.write_file("ingestd.yaml", self.config(
            routes_extra="      - {path: /event, name: event, fields: {stream: event}}\n"))
        d.send(signal.SIGHUP)
        harness.wait_until(lambda: re.search(r"reloaded .*1 replaced", d.stderr()), 30,
                           "the reload that replaces the source")
        new = self.client()
        second, third = self.records(3), self.records(2)
        res, data = new.request("POST", "/event", json.dumps(second), js, "event")
        self.assertEqual(res.status, 202, data)
        res, data = new.request("POST", "/api/visit/v1/", json.dumps(third), js, "visit")
        self.assertEqual(res.status, 202, data)
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        got = sorted((e["id"], e["stream"]) for e in harness.read_jsonl(self.out))
        want = sorted([(r["id"], "visit") for r in first + third] +
                      [(r["id"], "event") for r in second])
        self.assertEqual(got, want)

    def test_stop_answers_503_to_a_request_waiting_for_its_ack(self):
        sink, blackhole = self.blackhole_sink("timeout: 60s")
        d = self.start(source_extra="    ack: durable\n    ack_timeout: 60s\n", sink=sink)
        client = self.client()
        answers = []

        def post():
            res, data = client.request("POST", "/api/visit/v1/", json.dumps(self.records(3)),
                                       {"Content-Type": "application/json"}, "visit")
            answers.append((res.status, res.getheader("Retry-After"), json.loads(data)))

        t = threading.Thread(target=post)
        t.start()
        # The sink has sent the batch to a peer that never answers: the request waits.
        peer, _ = blackhole.accept()
        self.addCleanup(peer.close)
        peer.settimeout(30)
        self.assertTrue(peer.recv(65536))
        d.send(signal.SIGTERM)
        t.join(30)
        self.assertEqual(len(answers), 1)
        status, retry_after, body = answers[0]
        self.assertEqual((status, retry_after), (503, "1"))
        self.assertIn("stopping", body["error"])
        d.wait(30)
        self.assert_counters(Counters(d.stats()), connections=1)

    def test_connections_beyond_max_connections_are_closed_and_counted(self):
        d = self.start(source_extra="    max_connections: 2\n")
        held = [self.client(), self.client()]
        for c in held:
            res, data = c.request("POST", "/api/visit/v1/", json.dumps(self.records(1)),
                                  {"Content-Type": "application/json"}, "visit")
            self.assertEqual(res.status, 202, data)
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as extra:
            try:
                self.assertEqual(extra.recv(1), b"", "the third connection is closed at once")
            except ConnectionResetError:
                pass
        # The held connections are still served.
        for c in held:
            res, data = c.request("POST", "/api/visit/v1/", json.dumps(self.records(1)),
                                  {"Content-Type": "application/json"}, "visit")
            self.assertEqual(res.status, 202, data)
            c.close()
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        c = Counters(d.stats())
        self.assertEqual(c["web.connections_refused"], 1)
        self.assertEqual(c["web.connections_opened"], 2)
        self.assert_counters(c)

    def test_bearer_token_from_the_environment(self):
        env = dict(os.environ, WEB_TOKEN="t0k-en")
        d = self.start_daemon(self.config(source_extra="    token: ${WEB_TOKEN}\n"), env=env)
        harness.wait_until(lambda: "listening on" in d.stderr(), 30, "the http source to listen")
        client = self.client()
        js = {"Content-Type": "application/json"}
        for auth in (None, "Bearer wrong", "Basic t0k-en"):
            headers = dict(js, Authorization=auth) if auth else js
            res, data = client.request("POST", "/api/visit/v1/", "{}", headers, "visit")
            self.assertEqual(res.status, 401, data)
            self.assertEqual(res.getheader("WWW-Authenticate"), 'Bearer realm="ingestd"')
        res, data = client.request("POST", "/api/visit/v1/", json.dumps(self.records(2)),
                                   dict(js, Authorization="Bearer t0k-en"), "visit")
        self.assertEqual(res.status, 202, data)
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        self.assertEqual(len(harness.read_jsonl(self.out)), 2)
        self.assert_counters(Counters(d.stats()), connections=1)

    def test_slowloris_and_ten_thousand_idle_connections(self):
        idle_count = 10_000
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        needed = idle_count + 1000  # each side holds one end of each; the daemon inherits it
        if hard != resource.RLIM_INFINITY and hard < needed:
            self.skipTest(f"the open file limit's hard cap ({hard}) is below {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        d = self.start(source_extra="""
    header_timeout: 1s
    max_connections: 10500
""")
        self.assertNotIn("open file limit", d.stderr(), "the limit was raised enough")
        client = self.client()

        # Slowloris: a header trickled a few bytes at a time never completes.
        slow = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.addCleanup(slow.close)
        began = time.monotonic()
        closed = threading.Event()

        def trickle():
            try:
                slow.sendall(b"POST /api/visit/v1/ HTTP/1.1\r\n")
                while not closed.is_set():
                    slow.sendall(b"X-a: b\r\n")
                    if closed.wait(0.1):
                        break
            except OSError:
                pass
            closed.set()

        def reader():
            try:
                while slow.recv(4096):
                    pass
            except OSError:
                pass
            closed.set()

        threads = [threading.Thread(target=trickle), threading.Thread(target=reader)]
        for t in threads:
            t.start()
        # Others are served meanwhile.
        served_during = 0
        while not closed.is_set() and time.monotonic() - began < 10:
            res, data = client.request("POST", "/api/visit/v1/", json.dumps(self.records(1)),
                                       {"Content-Type": "application/json"}, "visit")
            self.assertEqual(res.status, 202, data)
            served_during += 1
        harness.wait_until(closed.is_set, 10, "the slowloris connection to be closed")
        elapsed = time.monotonic() - began
        for t in threads:
            t.join(10)
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 5)
        self.assertGreater(served_during, 0)

        # 10,000 idle keep-alive connections.
        base_rss = d.rss_kib()
        idle = []
        self.addCleanup(lambda: [s.close() for s in idle])
        for _ in range(idle_count):
            idle.append(socket.create_connection(("127.0.0.1", self.port), timeout=10))

        def daemon_fds():
            return len(os.listdir(f"/proc/{d.proc.pid}/fd"))

        harness.wait_until(lambda: daemon_fds() >= idle_count, 60,
                           "the daemon to accept every idle connection")
        fresh = self.client()
        recs = self.records(10)
        res, data = fresh.request("POST", "/api/visit/v1/", json.dumps(recs),
                                  {"Content-Type": "application/json"}, "visit")
        self.assertEqual(res.status, 202, data)
        rss = d.rss_kib()
        self.assertLess(rss, 200 * 1024, f"RSS {rss} KiB with {idle_count} idle connections "
                                         f"(before: {base_rss} KiB)")
        fresh.close()
        client.close()
        # Stopping closes the idle connections too, within the deadline.
        rc, took = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        self.assertLess(took, 10)
        for s in idle[:100]:
            s.settimeout(10)
            self.assertEqual(s.recv(1), b"", "an idle connection left open after the stop")
        c = Counters(d.stats())
        self.assertEqual(c["web.timeouts"], 1)
        self.assertEqual(c["web.connections_opened"], idle_count + 3)
        self.assertEqual(c["web.connections_closed"], idle_count + 3)
        self.assert_counters(c)


if __name__ == "__main__":
    unittest.main()
