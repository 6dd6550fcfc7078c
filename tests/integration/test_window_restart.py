"""Unique users per minute from a Kafka topic across a restart in the middle of a minute.

The records are those of test_unique_users.py (nested uid/ts keys, records up to 150 s late),
produced with the real `kcat -P` into the test peer (librdkafka's mock cluster). The daemon runs
kafka -> json (time_field ts) -> window (1 min, event time, allowed_lateness 5 s,
distinct(uid)) -> file. It is stopped once the minute before the one in progress has been written,
then started again on the same data_dir and fed the rest of the stream. The expected distinct
counts per minute are computed here, independently, by simulating the watermark over the records'
order.

- SIGTERM without `checkpoint`: the open minute is not emitted at the stop (its input stays
  uncommitted and is read again), and the saved watermark makes replayed records of closed
  minutes late again: every minute exactly once, each count exact.
- SIGTERM with `checkpoint: true`: the open minute is saved and restored: every minute exactly
  once, each count exact, nothing read twice.
- kill -9 with `checkpoint: true`: the last checkpoint is restored and the input after it read
  again: every minute present with its exact count; a minute written before the kill but not yet
  acknowledged to the checkpoint may be written again, identically.

The stream ends with a sentinel record two minutes after the last one: it closes every minute
of the stream, and its own minute stays open (and out of the comparison).
"""

import collections
import json
import os
import signal
import unittest

import harness
import kafka_peer
from harness import Counters, q
from test_unique_users import BASE_S, LATENESS_S, RATE, UserStream

GROUP = "users"
TOPIC = "clicks"
# Part 1 ends 334 s into the stream's minutes: 34 s into a minute.
SPLIT = (300 + 17) * RATE
STOPPED_MINUTE = BASE_S - BASE_S % 60 + 300  # the minute in progress at the stop
BEFORE_STOP = STOPPED_MINUTE - 60


class WindowRestartTest(kafka_peer.KafkaTestCase):
    def config(self, peer, checkpoint):
        return f"""
data_dir: {q(self.path("data"))}
batch: {{ max_events: 8, linger: 20ms }}
sources:
  clicks:
    type: kafka
    brokers: {q(peer.bootstrap)}
    group: {GROUP}
    topics: [{TOPIC}]
    commit_interval: 200ms
    librdkafka: {{ session.timeout.ms: "6000", heartbeat.interval.ms: "500" }}
parsers:
  records: {{ type: json, inputs: [clicks], time_field: ts, time_format: s }}
aggregates:
  users_per_minute:
    type: window
    inputs: [records]
    window: {{ size: 1m, time: event, allowed_lateness: {LATENESS_S}s }}
    metrics: {{ users: distinct(uid) }}
    checkpoint: {"true" if checkpoint else "false"}
sinks:
  out: {{ type: file, inputs: [users_per_minute], path: {q(self.path("users.jsonl"))} }}
"""

    def rows(self):
        """[(window_start, users)] in output order."""
        path = self.path("users.jsonl")
        if not os.path.exists(path):
            return []
        return [(r["window_start"], r["users"]) for r in harness.read_jsonl(path)]

    def run_across_restart(self, checkpoint, kill):
        stream = UserStream()
        expected, late = stream.expected()
        want = {harness.rfc3339_ms(s * 1000): n for s, n in expected.items()}
        peer = self.peer(topics={TOPIC: 1})
        kafka_peer.produce(peer.bootstrap, TOPIC, stream.lines[:SPLIT])

        first = self.start_daemon(self.config(peer, checkpoint), name="first")
        before = harness.rfc3339_ms(BEFORE_STOP * 1000)
        harness.wait_until(lambda: before in dict(self.rows()), 60,
                           f"the minute {before} written by the first run")
        if kill:
            first.kill()
        else:
            rc, _ = first.stop(signal.SIGTERM)
            self.assertEqual(rc, 0, first.stderr_tail())
        first_rows = self.rows()
        stopped = harness.rfc3339_ms(STOPPED_MINUTE * 1000)
        self.assertNotIn(stopped, dict(first_rows), "the minute in progress was cut short")

        sentinel = json.dumps({"uid": "sentinel", "ts": max(stream.times) + 120})
        kafka_peer.produce(peer.bootstrap, TOPIC, stream.lines[SPLIT:] + [sentinel])
        second = self.start_daemon(self.config(peer, checkpoint), name="second")
        harness.wait_until(lambda: set(want) <= set(dict(self.rows())), 90,
                           f"all {len(want)} minutes written")
        rc, _ = second.stop(signal.SIGTERM)
        self.assertEqual(rc, 0, second.stderr_tail())

        rows = self.rows()
        wrong = [(m, n, want.get(m)) for m, n in rows if want.get(m) != n]
        self.assertEqual(wrong[:10], [], f"{len(wrong)} rows differ from the independent count")
        times = collections.Counter(m for m, _ in rows)
        twice = sorted(m for m, k in times.items() if k > 1)
        if not kill:
            self.assertEqual(twice, [], "minutes written more than once")
        hwm = peer.watermarks(TOPIC)
        self.assertEqual(hwm, {0: len(stream.lines) + 1})
        committed = peer.committed(GROUP, TOPIC)[0]
        if checkpoint:
            self.assertEqual(committed, hwm[0], "everything committed at the end")
        else:
            # The sentinel's open minute is left to be read again, with its batch (up to 8).
            self.assertIn(committed, range(hwm[0] - 8, hwm[0]))
        return (None if kill else Counters(first.stats())), Counters(second.stats()), late, twice

    def test_sigterm_without_checkpoint_recomputes_the_open_minute_once(self):
        c1, c2, late, _ = self.run_across_restart(checkpoint=False, kill=False)
        self.assertGreater(c1["users_per_minute.left_for_replay"], 0)
        self.assertEqual(c2["users_per_minute.left_for_replay"], 1)  # the sentinel's minute
        # Records read again that were late before the stop are late again, never counted.
        self.assertGreaterEqual(c1["users_per_minute.late"] + c2["users_per_minute.late"], late)

    def test_sigterm_with_checkpoint_restores_the_open_minute(self):
        c1, c2, late, _ = self.run_across_restart(checkpoint=True, kill=False)
        self.assertGreaterEqual(c1["users_per_minute.checkpoints"], 1)
        self.assertEqual(c1["users_per_minute.left_for_replay"], 0)
        self.assertEqual(c1["users_per_minute.checkpoint_errors"], 0)
        # Committed once the checkpoint was durable: nothing is read twice.
        self.assertEqual(c1["clicks.messages"] + c2["clicks.messages"],
                         len(UserStream().lines) + 1)
        self.assertEqual(c1["users_per_minute.late"] + c2["users_per_minute.late"], late)
        self.assertIn("restored 1 open windows", self.stderr_of("second"))

    def test_kill_with_checkpoint_loses_nothing_and_counts_nothing_twice(self):
        _, c2, _, twice = self.run_across_restart(checkpoint=True, kill=True)
        self.assertIn("restored", self.stderr_of("second"))
        print(f"kill -9: {c2['users_per_minute.replay_skipped']} records read again and skipped, "
              f"{len(twice)} minutes written again (identically)")

    def stderr_of(self, name):
        with open(self.path(f"{name}.stderr"), "rb") as f:
            return f.read().decode("utf-8", "replace")


if __name__ == "__main__":
    unittest.main(verbosity=2)
