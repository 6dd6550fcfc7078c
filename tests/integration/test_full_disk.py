"""A file sink on a full disk (/dev/full): every write fails with ENOSPC, a retryable error. With
`retry: {max_attempts: 3}` each batch is retried, then given up: dead-lettered, counted as failed,
its acks failed. So the batch job ends (exit 0, as for any batch whose events were counted as
failed), and every event the generator made is accounted for as written or failed.

The breaker's `open_for` is short so that the batches that find it open wait milliseconds, not the
default 10 s.
"""

import re
import unittest

import harness
from harness import Counters, q

COUNT = 2500


class FullDiskTest(harness.IntegrationTestCase):
    def test_retries_end_and_every_event_is_counted(self):
        config = f"""
data_dir: {q(self.dir)}
sources:
  gen: {{ type: generator, count: {COUNT} }}
sinks:
  out:
    type: file
    inputs: [gen]
    path: /dev/full
    retry: {{ max_attempts: 3, initial: 10ms }}
    breaker: {{ open_for: 20ms }}
"""
        d = self.start_daemon(config)
        rc = d.wait(60)
        stderr = d.stderr()
        self.assertEqual(rc, 0, stderr[-3000:])
        c = Counters(d.stats())
        self.assertEqual(c["gen.events_out"], COUNT)
        self.assertEqual(c["out.events_in"], COUNT)
        self.assertEqual(c["out.events_out"], 0)
        self.assertEqual(c["out.events_out"] + c["out.failed"], COUNT)
        self.assertEqual(c["out.dead_letters"], COUNT)
        self.assertEqual(c["out.shutdown_dropped"], 0)
        self.assertGreater(c["out.retries"], 0)
        self.assertGreaterEqual(c["out.breaker_opened"], 1)
        self.assertIn("gave up after 3 attempts (retry.max_attempts): cannot write /dev/full",
                      stderr)
        self.assertRegex(stderr, r"circuit breaker closed -> open: 5 consecutive failures")
        # Every dead letter names the limit as its reason.
        with open(self.path("dead_letter", "out.jsonl")) as f:
            reasons = [re.search(r'"reason":"([^"]*)"', line).group(1) for line in f]
        self.assertEqual(len(reasons), COUNT)
        self.assertTrue(all(r.startswith("gave up after 3 attempts") for r in reasons))


if __name__ == "__main__":
    unittest.main(verbosity=2)
