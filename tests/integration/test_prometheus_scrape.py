"""source/prometheus_scrape -> parse/prometheus -> file, against a /metrics endpoint served by the
test itself (http.server in a thread). The endpoint answers 401 unless the request carries the
right X-Algo-API-Token; every answer it gives with 200 is numbered (the `scrape_seq` gauge) and
rendered from a model of its samples, so the test knows, without parsing any exposition text,
which samples each scrape must produce: name, labels (escapes included), value, timestamp, type.

A second source scrapes the same endpoint with a wrong token: each of its scrapes must be counted
as a failure (failures_status) and produce nothing.

Then several sources scrape every 20 ms on the daemon's two shared io threads, where the plugin's
Asio code runs as the daemon's own: hundreds of connections, each answered and counted.
"""

import math
import threading
import unittest

import harness
from harness import Counters, q

TOKEN = "s3cret-token"
SCRAPES = 5


def escape(value):
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def samples_of(seq):
    """The samples of answer number `seq`: (name, {label: value}, value, timestamp_ms or None,
    type), in the order served."""
    out = [("scrape_seq", {}, float(seq), None, "gauge")]
    for method, code, n in (("get", "200", 1000 + 7 * seq), ("post", "500", 3 + seq)):
        out.append(("http_requests_total", {"method": method, "code": code}, float(n),
                    1_600_000_000_000 + seq, "counter"))
    out.append(("file_age_seconds",
                {"path": "C:\\dir\\f.txt", "msg": f"say \"hi\"\nbye {seq}"},
                1.5e9 + seq, None, "untyped"))
    buckets = [("0.1", 2 * seq), ("1", 3 * seq + 1), ("+Inf", 4 * seq + 2)]
    for le, n in buckets:
        out.append(("rpc_seconds_bucket", {"le": le}, float(n), None, "histogram"))
    out.append(("rpc_seconds_sum", {}, 0.25 * seq, None, "histogram"))
    out.append(("rpc_seconds_count", {}, float(4 * seq + 2), None, "histogram"))
    out.append(("latency", {"quantile": "0.5"}, float("nan") if seq % 2 else 0.125 * seq,
                None, "summary"))
    out.append(("latency", {"quantile": "0.99"}, float("inf"), None, "summary"))
    out.append(("latency_sum", {}, -1e-3 * seq, None, "summary"))
    out.append(("latency_count", {}, float(seq), None, "summary"))
    return out


def text_value(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def body_of(seq):
    """The exposition text of answer `seq`, with HELP and TYPE lines and a comment."""
    types = {}
    lines = ["# An exporter's comment"]
    for name, labels, value, ts, kind in samples_of(seq):
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if kind in ("histogram", "summary") and name.endswith(suffix):
                family = name[: -len(suffix)]
        if family not in types and kind != "untyped":
            types[family] = kind
            lines.append(f"# HELP {family} The {family} metric.")
            lines.append(f"# TYPE {family} {kind}")
        label_text = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())
        line = name + (f"{{{label_text}}}" if labels else "") + " " + text_value(value)
        if ts is not None:
            line += f" {ts}"
        lines.append(line)
    return "\n".join(lines) + "\n"


class MetricsEndpoint:
    """GET /metrics with the token gets body_of(next seq); without it 401."""

    def __init__(self):
        self.lock = threading.Lock()
        self.served = []  # seqs answered 200
        self.refused = 0  # requests answered 401
        self.server = harness.GetServer(self.answer)
        self.url = self.server.base + "/metrics"

    def answer(self, path, headers):
        if path != "/metrics":
            return 404, "not found\n", "text/plain"
        with self.lock:
            if headers.get("X-Algo-API-Token") != TOKEN:
                self.refused += 1
                return 401, "", "text/plain"
            seq = len(self.served)
            self.served.append(seq)
        return 200, body_of(seq), "text/plain; version=0.0.4"

    def snapshot(self):
        with self.lock:
            return list(self.served), self.refused

    def stop(self):
        self.server.stop()


def expected_record(seq, url):
    """What the file sink must hold for each sample of answer `seq`, as comparable tuples."""
    out = []
    for name, labels, value, ts, kind in samples_of(seq):
        out.append((name, tuple(sorted(labels.items())),
                    None if math.isnan(value) or math.isinf(value) else value, ts, kind, url))
    return out


class PrometheusScrapeTest(harness.IntegrationTestCase):
    def setUp(self):
        super().setUp()
        self.endpoint = MetricsEndpoint()
        self.addCleanup(self.endpoint.stop)
        self.out = self.path("samples.jsonl")

    def config(self):
        return f"""
data_dir: {q(self.dir)}
sources:
  node:
    type: prometheus_scrape
    url: {q(self.endpoint.url)}
    interval: 100ms
    timeout: 2s
    headers: {{ X-Algo-API-Token: {q(TOKEN)} }}
  intruder:
    type: prometheus_scrape
    url: {q(self.endpoint.url)}
    interval: 100ms
    headers: {{ X-Algo-API-Token: wrong }}
parsers:
  samples: {{ type: prometheus, inputs: [node, intruder], on_error: dead_letter }}
sinks:
  out: {{ type: file, inputs: [samples], path: {q(self.out)}, encoding: json }}
"""

    def scrapes_written(self):
        """The output grouped by scrape: {scrape_seq: [records]} (scrape_time tells scrapes
        apart: one scrape's samples share it)."""
        records = harness.read_jsonl(self.out) if harness.count_lines(self.out) else []
        by_time = {}
        for r in records:
            by_time.setdefault(r["scrape_time"], []).append(r)
        groups = {}
        for rs in by_time.values():
            seqs = [r["value"] for r in rs if r["name"] == "scrape_seq"]
            self.assertEqual(len(seqs), 1, f"one scrape_seq per scrape: {rs}")
            groups[int(seqs[0])] = rs
        return groups

    def test_every_sample_of_every_scrape_arrives_and_a_wrong_token_fails(self):
        per_scrape = len(samples_of(0))
        d = self.start_daemon(self.config())

        def enough():
            if not d.running():
                raise AssertionError(f"ingestd exited: {d.stderr_tail()}")
            written = harness.count_lines(self.out)
            return written >= SCRAPES * per_scrape and self.endpoint.snapshot()[1] >= 2
        harness.wait_until(enough, 60, what=f"{SCRAPES} scrapes written and 2 refused")
        rc, took = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        self.assertLess(took, 10, "the stop waited for a scrape interval or more")

        served, refused = self.endpoint.snapshot()
        groups = self.scrapes_written()
        self.assertGreaterEqual(len(groups), SCRAPES)
        # Every answer made it, except at most the one in flight when the daemon stopped.
        missing = set(served) - set(groups)
        self.assertLessEqual(missing, {max(served)}, f"scrapes lost: {sorted(missing)}")
        self.assertLessEqual(set(groups), set(served))
        for seq, records in groups.items():
            got = [(r["name"],
                    tuple(sorted((k, v) for k, v in r.items() if k not in (
                        "name", "value", "timestamp", "type", "url", "scrape_time",
                        "scrape_duration"))),
                    r["value"], r.get("timestamp"), r["type"], r["url"]) for r in records]
            self.assertEqual(got, expected_record(seq, self.endpoint.url), f"scrape {seq}")
            duration = records[0]["scrape_duration"]
            self.assertTrue(0 <= duration < 2, duration)

        c = Counters(d.stats())
        # A scrape cancelled by the stop is not counted; one answered and not yet pushed is.
        self.assertGreaterEqual(c["node.scrapes"], len(groups))
        self.assertLessEqual(c["node.scrapes"], len(served))
        self.assertEqual(c["node.failures_status"], 0)
        self.assertEqual(c["samples.errors"], 0)
        self.assertEqual(c["samples.samples"], len(groups) * per_scrape)
        self.assertEqual(c["out.events_in"], len(groups) * per_scrape)
        # The wrong token: every scrape refused, counted, nothing emitted.
        self.assertGreaterEqual(c["intruder.failures_status"], 2)
        self.assertEqual(c["intruder.failures_status"], c["intruder.scrapes"])
        self.assertEqual(c["intruder.bytes"], 0)
        self.assertLessEqual(c["intruder.failures_status"], refused)
        # Logged once, not per scrape.
        self.assertEqual(d.stderr().count("fails: HTTP 401"), 1, d.stderr_tail())

    def test_many_fast_sources_share_the_io_threads(self):
        sources = 6
        blocks = "".join(f"""
  s{i}:
    type: prometheus_scrape
    url: {q(self.endpoint.url)}
    interval: 20ms
    headers: {{ X-Algo-API-Token: {q(TOKEN)} }}""" for i in range(sources))
        d = self.start_daemon(f"""
data_dir: {q(self.dir)}
io_threads: 2
sources:{blocks}
sinks:
  out: {{ type: file, inputs: [{", ".join(f"s{i}" for i in range(sources))}], path: {q(self.out)} }}
""")

        def enough():
            if not d.running():
                raise AssertionError(f"ingestd exited: {d.stderr_tail()}")
            return len(self.endpoint.snapshot()[0]) >= 600
        harness.wait_until(enough, 60, what="600 scrapes answered")
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())

        served = len(self.endpoint.snapshot()[0])
        c = Counters(d.stats())
        reasons = ("connect", "read", "timeout", "status", "body_too_large")
        ok = 0
        for i in range(sources):
            failed = sum(c[f"s{i}.failures_{r}"] for r in reasons)
            # A 20 ms timeout (the interval) on two busy cores may cut a scrape; none is refused.
            self.assertEqual(c[f"s{i}.failures_status"], 0, f"s{i}")
            self.assertGreater(c[f"s{i}.scrapes"] - failed, 0, f"s{i}")
            ok += c[f"s{i}.scrapes"] - failed
        # One record per answered scrape, and never more than the endpoint answered.
        self.assertEqual(c["out.events_in"], ok)
        self.assertLessEqual(ok, served)
        self.assertGreaterEqual(ok, served // 2)

if __name__ == "__main__":
    unittest.main()
