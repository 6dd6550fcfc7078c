"""source/sse against a real event-stream server written here (sse_peer.py, threaded http.server):
every event arrives exactly once, in order, across connections the server breaks (between events
and in the middle of one), because each reconnect sends Last-Event-ID and the server resumes
after it; the server's `retry:` sets the reconnect wait; broken framing is counted where it
belongs (torn JSON by the parser, an oversized event by the source); 500s and a wrong
Content-Type are retried with backoff and counted; a stalled stream times out and reconnects;
SIGTERM ends a daemon whose stream is open promptly; a pipeline that cannot write stops the reading
of the socket (TCP pushes back on the server) instead of buffering the stream.

Runs end by themselves with `stop_at_eof: true`: the server ends its last stream cleanly.
"""

import json
import signal
import threading
import time
import unittest

import harness
from harness import Counters, q
from sse_peer import SsePeer


def play_events(n, start=0):
    return [{"id": str(1000 + i),
             "data": json.dumps({"seq": i, "device": "xbox_one", "title": f"t{i % 7}"},
                                separators=(",", ":"))}
            for i in range(start, start + n)]


class SseSourceTest(harness.IntegrationTestCase):

    def run_sse(self, peer, source_options="", parser=None, timeout=60):
        """Runs sse -> file (raw), or sse -> json -> file (the fields as JSON) with `parser`
        options; returns (daemon, counters, output lines)."""
        out = self.path("out.jsonl")
        parsers = ""
        sink_input = "in"
        encoding = "raw"
        if parser is not None:
            parsers = f"parsers:\n  parse: {{ type: json, inputs: [in], {parser} }}\n"
            sink_input = "parse"
            encoding = "json"
        config = f"""
data_dir: {q(self.dir)}
sources:
  in:
    type: sse
    url: {q(peer.url)}
    stop_at_eof: true
{source_options}
{parsers}
sinks:
  out: {{ type: file, inputs: [{sink_input}], path: {q(out)}, encoding: {encoding} }}
"""
        d = self.run_daemon(config, timeout=timeout)
        return d, Counters(d.stats()), harness.read_lines(out)

    def test_every_event_once_across_broken_connections(self):
        events = play_events(3000)
        peer = SsePeer(events, plans=[{"cut_after": 500}, {"cut_after": 700, "mid_event": True},
                                      {"cut_after": 1}])
        try:
            d, c, lines = self.run_sse(peer, """    headers: { X-Token: abc }
    reconnect: { initial: 10ms, max: 50ms }""")
        finally:
            peer.stop()
        self.assertEqual(lines, [e["data"] for e in events])
        sent = [conn["last_event_id"] for conn in peer.connections]
        self.assertEqual(sent, [None, "1499", "2199", "2200"])
        self.assertTrue(all(conn["accept"] == "text/event-stream" for conn in peer.connections))
        self.assertEqual(c["in.events"], 3000)
        self.assertEqual(c["in.connections"], 4)
        self.assertEqual(c["in.reconnects"], 3)
        self.assertEqual(c["in.errors_read"], 3)
        self.assertEqual(c["in.closed"], 1)
        self.assertEqual(c["in.dropped"], 0)
        self.assertGreater(c["in.bytes"], sum(len(e["data"]) for e in events))
        self.assertIn("reconnecting with Last-Event-ID '1499'", d.stderr())
        self.assertIn("stop_at_eof: ending at Last-Event-ID '3999'", d.stderr())

    def test_server_retry_sets_the_reconnect_wait(self):
        # Without the server's retry: 100 the source would wait its own initial 60 s.
        events = play_events(20)
        peer = SsePeer(events, plans=[{"cut_after": 5}], prelude=": hi\nretry: 100\n\n")
        try:
            d, c, lines = self.run_sse(peer, "    reconnect: { initial: 60s, max: 120s }",
                                       timeout=30)
        finally:
            peer.stop()
        self.assertEqual(lines, [e["data"] for e in events])
        self.assertEqual([conn["last_event_id"] for conn in peer.connections], [None, "1004"])
        self.assertEqual(c["in.reconnects"], 1)

    def test_broken_framing_is_counted_where_it_belongs(self):
        good = play_events(200)
        big = {"id": "big", "data": "x" * 5000}
        torn = [{"id": f"torn{i}", "data": e["data"][:len(e["data"]) // 2]}
                for i, e in enumerate(play_events(5, start=900))]
        events = list(good[:50]) + [torn[0], big] + good[50:100] + torn[1:3] + \
            [{"raw": "data: {\"seq\":-1,\r\ndata: \"two\":2}\r\n\r\n"},
             {"raw": ": comment\r\r\n\rid: 77\n\ndata\n\n"}] + good[100:] + torn[3:]
        peer = SsePeer(events, prelude="\ufeff")
        try:
            d, c, lines = self.run_sse(peer, "    max_event_size: 1KiB",
                                       parser="on_error: dead_letter")
        finally:
            peer.stop()
        expected = [json.loads(e["data"]) for e in good[:100]] + [{"seq": -1, "two": 2}] + \
            [json.loads(e["data"]) for e in good[100:]]
        self.assertEqual([json.loads(x) for x in lines], expected)
        self.assertEqual(c["in.dropped"], 1)
        self.assertEqual(c["in.events"], len(good) + len(torn) + 2)
        # The torn lines: errors, dead-lettered; the empty data of the bare `data` line: skipped.
        self.assertEqual(c["parse.errors"], len(torn))
        self.assertEqual(c["parse.dead_letters"], len(torn))
        self.assertEqual(c["parse.skipped"], 1)
        self.assertEqual(c["parse.parsed"], len(good) + 1)
        dead = harness.read_jsonl(self.path("dead_letter", "parse.jsonl"))
        self.assertEqual(len(dead), len(torn))

    def test_errors_are_retried_with_backoff_and_counted(self):
        events = play_events(50)
        peer = SsePeer(events, plans=[{"status": 500}, {"status": 503},
                                      {"content_type": "text/plain"}, {"status": 404}])
        stamps = []
        orig = peer._serve

        def serve(h):
            stamps.append(time.monotonic())
            orig(h)
        peer._serve = serve
        try:
            d, c, lines = self.run_sse(peer,
                                       "    reconnect: { initial: 40ms, max: 1s, jitter: 0 }")
        finally:
            peer.stop()
        self.assertEqual(lines, [e["data"] for e in events])
        self.assertEqual(c["in.errors_status"], 3)
        self.assertEqual(c["in.errors_content_type"], 1)
        self.assertEqual(c["in.reconnects"], 4)
        self.assertEqual(c["in.connections"], 1)
        # Failed attempts in a row double the wait: 40, 80, 160, 320 ms (at least).
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        for gap, wait in zip(gaps, (0.04, 0.08, 0.16, 0.32)):
            self.assertGreaterEqual(gap, wait * 0.95, gaps)
        self.assertIn("HTTP 503", d.stderr())
        self.assertIn("not text/event-stream", d.stderr())

    def test_stalled_stream_times_out_and_sigterm_ends_an_open_stream(self):
        events = play_events(30)
        peer = SsePeer(events, default_plan={"end": "hold"})
        out = self.path("out.jsonl")
        d = self.start_daemon(f"""
data_dir: {q(self.dir)}
sources:
  in:
    type: sse
    url: {q(peer.url)}
    read_timeout: 300ms
    reconnect: {{ initial: 10ms }}
sinks:
  out: {{ type: file, inputs: [in], path: {q(out)}, encoding: raw }}
""")
        try:
            harness.wait_until(lambda: peer.connection_count() >= 3, 20,
                               "reconnects after read timeouts")
            rc, took = d.stop(signal.SIGTERM, timeout=20)
        finally:
            peer.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        self.assertLess(took, 5)
        c = Counters(d.stats())
        self.assertGreaterEqual(c["in.errors_timeout"], 2)
        self.assertEqual(harness.read_lines(out), [e["data"] for e in events])
        self.assertEqual(peer.connections[1]["last_event_id"], "1029")

    def test_a_blocked_pipeline_stops_reading_the_socket(self):
        # stdout is a pipe the test does not read at first: the stdout sink blocks, the queues
        # fill, the source stops reading, and the server's writes stop well before the end.
        events = play_events(400_000)
        total = sum(len(e["data"]) for e in events)
        peer = SsePeer(events)
        d = self.start_daemon(f"""
data_dir: {q(self.dir)}
sources:
  in: {{ type: sse, url: {q(peer.url)}, stop_at_eof: true }}
sinks:
  out: {{ type: stdout, inputs: [in], encoding: raw }}
""", stdout_pipe=True)
        lines = []
        try:
            last = {"sent": -1, "since": time.monotonic()}

            def stalled():
                sent = peer.connections[0]["sent"] if peer.connections else -1
                now = time.monotonic()
                if sent != last["sent"]:
                    last.update(sent=sent, since=now)
                return sent > 0 and now - last["since"] > 0.5

            harness.wait_until(stalled, 30, "the server's writes to stall")
            sent = last["sent"]
            self.assertLess(sent, len(events) * 0.6, "the stream was read on regardless")
            self.assertLess(d.rss_kib(), 200 * 1024)
            # Reading the pipe lets everything through, exactly once.
            reader = threading.Thread(
                target=lambda: lines.extend(d.proc.stdout.read().decode().splitlines()))
            reader.start()
            self.assertEqual(d.wait(60), 0, d.stderr_tail())
            reader.join(30)
            d.proc.stdout.close()
        finally:
            peer.stop()
        self.assertEqual(len(lines), len(events))
        self.assertEqual(lines, [e["data"] for e in events])
        self.assertGreater(total, 15 << 20)  # far more than the queues and socket buffers


if __name__ == "__main__":
    unittest.main()
