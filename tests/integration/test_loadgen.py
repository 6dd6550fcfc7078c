"""ingestd-loadgen against the real daemon: source/http -> parse/json -> file (encoding: json).

The tool promises that request k of a run carries the records seq = k*K .. k*K+K-1. Each test runs
it with --requests N --records K --json and checks, against values computed here: the output file
holds exactly N*K records whose seqs are exactly 0..N*K-1, each once; the tool's JSON reports N
answers, all 2xx (202), N*K records and no error; the daemon's own counters agree. Then with gzip
and NDJSON, with a rate (the run cannot be faster than its schedule), with a template file, and
with answers that are not 2xx and a refused connection (counted, the run goes on, exit 0). Last,
against a slow peer of the test's own: with a rate it cannot keep up with, latency counts from when
each request was due, so the wait for the one busy connection shows in the percentiles.
"""

import collections
import http.server
import json
import os
import subprocess
import threading
import time
import unittest

import harness
from harness import Counters, q

LOADGEN = os.environ.get("INGESTD_LOADGEN_BIN", os.path.join(harness.BUILD_DIR, "ingestd-loadgen"))


class LoadgenTest(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.access(LOADGEN, os.X_OK):
            raise AssertionError(
                f"ingestd-loadgen not found at {LOADGEN} (set INGESTD_LOADGEN_BIN)")

    def setUp(self):
        super().setUp()
        self.port = harness.free_port()
        self.out = self.path("events.jsonl")
        self.url = f"http://127.0.0.1:{self.port}/api/visit/v1/"

    def start(self, source_extra=""):
        d = self.start_daemon(f"""
data_dir: {q(self.dir)}
shutdown_timeout: 5s
sources:
  web:
    type: http
    listen: 127.0.0.1:{self.port}
    routes:
      - {{path: /api/visit/v1/, name: visit}}
{source_extra}parsers:
  events:
    type: json
    inputs: [web]
sinks:
  out:
    type: file
    inputs: [events]
    path: {q(self.out)}
    encoding: json
""")
        harness.wait_until(lambda: "listening on" in d.stderr() or not d.running(), 30,
                           "the http source to listen")
        self.assertTrue(d.running(), d.stderr_tail())
        return d

    def loadgen(self, *args, url=None, timeout=120):
        """Runs the tool with --json; returns its JSON result (asserting exit 0)."""
        cmd = [LOADGEN, "--url", url or self.url, "--json"] + [str(a) for a in args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, f"{cmd} exited {p.returncode}: {p.stderr}")
        lines = p.stdout.strip().splitlines()
        self.assertEqual(len(lines), 1, f"expected one JSON line, got {p.stdout!r}")
        return json.loads(lines[0])

    def assert_clean_run(self, result, requests, records):
        self.assertEqual(result["requests"], requests, result)
        self.assertEqual(result["ok"], requests, result)
        self.assertEqual(result["statuses"], {"202": requests}, result)
        self.assertEqual(result["records"], requests * records, result)
        self.assertEqual(result["errors"], {"connect": 0, "io": 0, "timeout": 0, "protocol": 0})
        lat = result["latency_us"]
        self.assertTrue(0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"], lat)

    def assert_output(self, d, total, check=None):
        """The file holds exactly seqs 0..total-1, once each; the daemon counted as many."""
        harness.wait_until(lambda: harness.count_lines(self.out) >= total, 30,
                           f"{total} records in the output")
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        records = harness.read_jsonl(self.out)
        seqs = collections.Counter(r["seq"] for r in records)
        self.assertEqual(len(records), total)
        self.assertEqual(set(seqs), set(range(total)))
        self.assertEqual(max(seqs.values()), 1, "a seq written twice")
        c = Counters(d.stats())
        self.assertEqual(c["web.records"], total)
        for r in records:
            if check:
                check(r)
        return records

    def test_requests_and_records_arrive_exactly(self):
        d = self.start()
        n, k = 200, 5
        result = self.loadgen("--requests", n, "--records", k, "--connections", 4, "--threads", 2)
        self.assert_clean_run(result, n, k)
        self.assertEqual(result["connections_opened"], 4)

        def visit(r):
            self.assertTrue(r["user"].startswith("u"), r)
            self.assertIn(r["page"], ["/home", "/search", "/item", "/cart", "/checkout"])
        self.assert_output(d, n * k, visit)

    def test_gzip_ndjson_metric_events(self):
        d = self.start()
        n, k = 150, 20
        result = self.loadgen("--requests", n, "--records", k, "--gzip", "--format", "ndjson",
                              "--shape", "metric", "--connections", 3)
        self.assert_clean_run(result, n, k)
        self.assertLess(result["bytes"], result["raw_bytes"], "gzip made the bodies no smaller")

        def metric(r):
            self.assertIsInstance(r["count"], int)
            self.assertTrue(r["username"].startswith("user"), r)
        self.assert_output(d, n * k, metric)

    def test_rate_paces_the_run(self):
        d = self.start()
        n, rate = 60, 100
        result = self.loadgen("--requests", n, "--records", 2, "--rate", rate, "--connections", 4)
        self.assert_clean_run(result, n, 2)
        # Request k is due k/rate s after the start: the last one no earlier than (n-1)/rate.
        self.assertGreaterEqual(result["seconds"], (n - 1) / rate, result)
        self.assertLessEqual(result["requests_per_s"], rate * n / (n - 1) + 0.5, result)
        self.assert_output(d, n * 2)

    def test_interval_and_an_authorization_header(self):
        d = self.start(source_extra="    token: s3cret\n")
        # No token: every answer 401, counted, none fatal.
        refused = self.loadgen("--requests", 5, "--connections", 1)
        self.assertEqual(refused["statuses"], {"401": 5}, refused)
        # 4 connections, one request each per 0.1 s: 40 requests/s, so 20 take at least 19/40 s.
        n = 20
        result = self.loadgen("--requests", n, "--records", 4, "--connections", 4,
                              "--interval", "0.1", "--header", "Authorization: Bearer s3cret")
        self.assert_clean_run(result, n, 4)
        self.assertGreaterEqual(result["seconds"], (n - 1) / 40, result)
        self.assert_output(d, n * 4)

    def test_template_file(self):
        d = self.start()
        tmpl = self.write_file(
            "record.tmpl", '{"seq":{{seq}},"device":"{{choice xbox_one,ps4}}","n":{{int 1 3}}}\n')
        n, k = 40, 3
        result = self.loadgen("--requests", n, "--records", k, "--template", tmpl, "--seed", 9)
        self.assert_clean_run(result, n, k)

        def shaped(r):
            self.assertEqual(set(r), {"seq", "device", "n"})
            self.assertIn(r["device"], ["xbox_one", "ps4"])
            self.assertIn(r["n"], [1, 2, 3])
        self.assert_output(d, n * k, shaped)

    def test_non_2xx_and_refused_connections_are_counted_not_fatal(self):
        d = self.start()
        result = self.loadgen("--requests", 30, "--connections", 2,
                              url=f"http://127.0.0.1:{self.port}/nowhere")
        self.assertEqual(result["statuses"], {"404": 30}, result)
        self.assertEqual(result["ok"], 0)
        self.assertEqual(result["records"], 0)
        self.assertEqual(sum(result["errors"].values()), 0, result)
        # Nothing listens there: each connection is refused, counted, and tried again until the
        # duration is over.
        result = self.loadgen("--duration", "0.5", "--connections", 2,
                              url=f"http://127.0.0.1:{harness.free_port()}/")
        self.assertEqual(result["requests"], 0, result)
        self.assertGreaterEqual(result["errors"]["connect"], 2, result)
        rc, _ = d.stop()
        self.assertEqual(rc, 0)
        self.assertEqual(Counters(d.stats())["web.requests.unrouted.404"], 30)

    def test_rate_latency_counts_the_wait_for_a_busy_connection(self):
        delay = 0.05

        class Slow(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)  # the peer's answer time, not a wait of the test
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        n = 20
        # Unpaced, one connection: each request's latency is about the peer's delay.
        free = self.loadgen("--requests", n, "--connections", 1, url=url)
        self.assertEqual(free["statuses"], {"204": n}, free)
        self.assertGreaterEqual(free["latency_us"]["min"], delay * 1e6)
        # 100 requests/s on one connection that takes 50 ms each: request k is due at k * 10 ms
        # but cannot go before k * 50 ms, so the last one waits at least (n-1) * 40 ms + 50 ms.
        paced = self.loadgen("--requests", n, "--connections", 1, "--rate", 100, url=url)
        self.assertEqual(paced["statuses"], {"204": n}, paced)
        least_last = ((n - 1) * (delay - 0.01) + delay) * 1e6
        self.assertGreaterEqual(paced["latency_us"]["max"], least_last * (1 - 1 / 256), paced)
        self.assertGreater(paced["latency_us"]["p50"], 4 * free["latency_us"]["p50"], paced)


if __name__ == "__main__":
    unittest.main()
