"""A file sink on a full disk (/dev/full): every write fails with ENOSPC, a retryable error. With
`retry: {max_attempts: 3}` each batch is retried, then given up: dead-lettered, counted as failed,
its acks failed. Once the breaker opens, batches go to the sink's disk spool instead (it is on
data_dir, another disk), where they wait for the next run. So the batch job ends (exit 0), and
every event the generator made is accounted for as written, failed or spooled. With `spool: false`
every batch ends in the dead-letter file.

The breaker's `open_for` is short so that the batches that find it open wait milliseconds, not the
default 10 s.
"""

import re
import unittest

import harness
from harness import Counters, q

COUNT = 2500


class FullDiskTest(harness.IntegrationTestCase):
    def config(self, spool):
        return f"""
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
    spool: {spool}
"""

    def test_with_a_spool_the_job_ends_and_the_rest_waits_on_disk(self):
        d = self.start_daemon(self.config("{ fsync: never }"))
        rc = d.wait(60)
        stderr = d.stderr()
        self.assertEqual(rc, 0, stderr[-3000:])
        c = Counters(d.stats())
        self.assertEqual(c["out.events_in"], COUNT)
        self.assertEqual(c["out.events_out"], 0)
        self.assertGreater(c["out.failed"], 0, "the batches before the breaker opened")
        self.assertGreater(c["out.spooled"], 0)
        self.assertEqual(c["out.failed"] + c["out.spooled"], COUNT)
        self.assertEqual(c["out.dead_letters"], c["out.failed"])
        self.assertIn(f"{c['out.spooled']} events stay in the spool", stderr)

    def test_without_a_spool_retries_end_and_every_event_is_counted(self):
        d = self.start_daemon(self.config("false"))
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
