"""The http sink against a real HTTP peer (tests/tools/http_receiver/http_receiver.py): a generator
numbers its events (`{{seq}}`), ingestd POSTs them, and the receiver records the events of every
request it answered 2xx. The expected numbers are range(COUNT), computed here.

The receiver answers with the mode the test sets: ok, 503 and 429 (with Retry-After), 400, or hang
(never answers). A mode set with `times` lasts for that many requests and then returns to ok, so a
test of an outage needs no timing. Non-2xx answers record nothing, so an event recorded twice could
only come from a batch the core retried after the server had taken it; these peers never do that,
so every test expects each number exactly once.
"""

import json
import re
import unittest

import harness
from harness import Counters, q

TEMPLATE = '{"seq":{{seq}},"pad":"{{hex 24}}"}'


class HttpSinkTest(harness.IntegrationTestCase):
    def setUp(self):
        super().setUp()
        self.receiver = harness.HttpReceiver(self.dir)
        self.addCleanup(self.receiver.stop)

    def config(self, count, sink_options, retry="{ initial: 10ms, max: 100ms }",
               breaker="{ open_for: 50ms }"):
        return f"""
data_dir: {q(self.dir)}
sources:
  gen: {{ type: generator, count: {count}, template: {q(TEMPLATE)} }}
sinks:
  out:
    type: http
    inputs: [gen]
    workers: 1  # one connection: the tests count its requests and retries
    url: {q(self.receiver.url)}
    retry: {retry}
    breaker: {breaker}
{sink_options}
"""

    def run_pipeline(self, count, sink_options="", **kwargs):
        d = self.run_daemon(self.config(count, sink_options, **kwargs), timeout=120)
        return d, Counters(d.stats())

    def assert_each_once(self, count):
        seqs = self.receiver.seqs()
        self.assertEqual(len(seqs), len(set(seqs)), "an event was recorded twice")
        self.assertEqual(sorted(seqs), list(range(count)))

    def test_every_event_arrives_once_gzipped_over_one_connection(self):
        count = 20_000
        d, c = self.run_pipeline(count, """
    gzip: true
    headers: { Authorization: "Bearer s3cret", X-Pipeline: test }
""")
        self.assert_each_once(count)
        self.assertEqual(c["out.events_out"], count)
        self.assertEqual(c["out.failed"], 0)
        self.assertEqual(c["out.retries"], 0)
        stats = self.receiver.stats()
        self.assertEqual(stats["requests"], {"200": c["out.requests"]})
        self.assertEqual(c["out.responses_2xx"], c["out.requests"])
        self.assertGreater(c["out.requests"], 1)
        # Keep-alive: one connection carried every batch.
        self.assertEqual(c["out.connections"], 1)
        headers = stats["last_headers"]
        self.assertEqual(headers["Content-Encoding"], "gzip")
        self.assertEqual(headers["Content-Type"], "application/x-ndjson")
        self.assertEqual(headers["Authorization"], "Bearer s3cret")
        self.assertEqual(headers["X-Pipeline"], "test")
        self.assertLess(c["out.bytes"], count * 40 / 2, "gzip should at least halve the bodies")

    def test_json_array_bodies(self):
        count = 5_000
        _, c = self.run_pipeline(count, "    format: json_array\n")
        self.assert_each_once(count)
        self.assertEqual(c["out.events_out"], count)
        self.assertEqual(self.receiver.stats()["last_headers"]["Content-Type"], "application/json")

    def test_400_dead_letters_every_batch_and_the_run_ends(self):
        count = 3_000
        self.receiver.control("400")
        d, c = self.run_pipeline(count)
        self.assertEqual(self.receiver.seqs(), [])
        self.assertEqual(c["out.events_out"], 0)
        self.assertEqual(c["out.failed"], count)
        self.assertEqual(c["out.dead_letters"], count)
        self.assertEqual(c["out.retries"], 0)  # permanent: never retried
        self.assertEqual(c["out.responses_4xx"], c["out.requests"])
        dead = harness.read_jsonl(self.path("dead_letter", "out.jsonl"))
        self.assertEqual(len(dead), count)
        self.assertTrue(all(r["reason"].startswith("HTTP 400 Bad Request: refused by the test "
                                                   "receiver (400)") for r in dead), dead[0])
        # The dead letters hold the events themselves.
        self.assertEqual(sorted(json.loads(r["raw"])["seq"] for r in dead), list(range(count)))
        self.assertIn("HTTP 400 Bad Request", d.stderr())

    def test_503_then_ok_delivers_everything_after_retries(self):
        count = 10_000
        self.receiver.control("503", times=3, retry_after="0")
        d, c = self.run_pipeline(count)
        self.assert_each_once(count)
        self.assertEqual(c["out.events_out"], count)
        self.assertEqual(c["out.failed"], 0)
        self.assertEqual(c["out.retries"], 3)
        self.assertEqual(c["out.responses_5xx"], 3)
        self.assertEqual(self.receiver.stats()["requests"]["503"], 3)
        self.assertIn("HTTP 503 Service Unavailable", d.stderr())

    def test_429_with_retry_after_then_ok_delivers_everything(self):
        count = 5_000
        self.receiver.control("429", times=2, retry_after="1")
        d, c = self.run_pipeline(count)
        self.assert_each_once(count)
        self.assertEqual(c["out.retries"], 2)
        self.assertEqual(self.receiver.stats()["requests"]["429"], 2)
        self.assertIn("HTTP 429 Too Many Requests (Retry-After: 1)", d.stderr())

    def test_retry_after_holds_the_next_attempt_back(self):
        """The sink passes Retry-After on as SinkResult::retry_after_ns; the core waits that long
        although its own backoff (10 ms) would retry sooner."""
        self.receiver.control("429", times=1, retry_after="1")
        self.run_pipeline(100)
        arrivals = self.receiver.stats()["arrivals"]
        self.assertEqual([a[1] for a in arrivals[:2]], ["429", "200"])
        self.assertGreaterEqual(arrivals[1][0] - arrivals[0][0], 1.0)

    def test_a_server_that_never_answers_times_out_and_the_batch_is_retried(self):
        count = 5_000
        self.receiver.control("hang", times=2)
        d, c = self.run_pipeline(count, "    timeout: 1s\n")
        self.assert_each_once(count)
        self.assertEqual(c["out.events_out"], count)
        self.assertEqual(c["out.timeouts"], 2)
        self.assertEqual(c["out.retries"], 2)
        # Each timeout drops its connection; the retry opens a new one.
        self.assertEqual(c["out.connections"], 3)
        self.assertEqual(self.receiver.stats()["requests"]["hang"], 2)
        self.assertRegex(d.stderr(), r"no answer from 127\.0\.0\.1:\d+: timed out after 1s")
        # Each hung request held the sink for the whole timeout, and not much longer.
        self.assertGreaterEqual(d.exited_at - d.started_at, 2.0)

    def test_a_refused_connection_is_retried_until_the_server_is_there(self):
        """Nothing listens at first: every write is refused (retryable) until the receiver is
        started on that port. Without a spool the batch waits in the sink meanwhile (with one,
        the batch job would end with its events spooled for the next run: test_spool.py)."""
        count = 2_000
        self.receiver.stop()
        d = self.start_daemon(self.config(count, "    spool: false\n"))
        harness.wait_until(lambda: "Connection refused" in d.stderr(), 30,
                           what="a refused connection in the log")
        restarted = harness.HttpReceiver(self.dir, port=self.receiver.port)
        try:
            self.assertEqual(d.wait(60), 0, d.stderr_tail())
        finally:
            restarted.stop()
        self.assert_each_once(count)
        c = Counters(d.stats())
        self.assertGreater(c["out.transport_errors"], 0)
        self.assertEqual(c["out.events_out"], count)

    def test_an_https_url_is_a_positioned_configuration_error(self):
        path = self.write_file("https.yaml", f"""
sources:
  gen: {{ type: generator, count: 1 }}
sinks:
  out: {{ type: http, inputs: [gen], url: "https://127.0.0.1/x" }}
""")
        r = harness.run_cli(["validate", path, "--plugin-dir", harness.PLUGIN_DIR])
        self.assertEqual(r.returncode, harness.EX_CONFIG, r.stdout + r.stderr)
        self.assertRegex(r.stderr, re.escape(path) + r":5:\d+: sinks\.out \(http\): "
                         r"url: https is not supported")


if __name__ == "__main__":
    unittest.main(verbosity=2)
