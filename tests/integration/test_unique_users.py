"""Job 5, unique users per minute: `{"uid": ..., "ts": <unix s>}` records -> parse/json (time_field
ts, seconds) -> window (1 min, event time, allowed_lateness 5s, distinct(uid)) -> file.

Most records arrive in order, some up to 5 s late (never dropped: within allowed_lateness), some
10-40 s late (dropped or not depending on whether their minute was already closed) and a handful
90-150 s late (always dropped). Objects nest other `uid`/`ts` keys that must not be confused with
the top-level ones, and keys come in varying order.

The test simulates the watermark over arrival order itself. The daemon advances its watermark per
batch, so a record's fate could depend on where batch boundaries fall; the generator avoids such
records: each record's verdict is the same whether the watermark includes the records just before
it or only those at least `batch.max_events` records earlier.
"""

import collections
import itertools
import json
import os
import random
import unittest

import harness
import kafka_peer
from harness import Counters, q, wait_until

WINDOW_S = 60
LATENESS_S = 5
BATCH_EVENTS = 8
BASE_S = 1515445200 + 17  # mid-minute start
SPAN_S = 600
RATE = 30  # records per second of event time
CONFIG = os.path.join(harness.SOURCE_DIR, "config", "unique-users.yaml")


class UserStream:
    def __init__(self, seed=5, users=2500):
        rng = random.Random(seed)
        uids = ["%016x" % rng.getrandbits(64) for _ in range(users)]
        cum_weights = list(itertools.accumulate(1.0 / (i + 1) ** 0.8 for i in range(users)))
        self.lines = []
        self.times = []  # event time of each record, arrival order
        self._prefix_max = []  # _prefix_max[i] = max(times[0..i])
        self.uids = []
        self.far_late = 0
        n = SPAN_S * RATE
        for i in range(n):
            nominal = BASE_S + i // RATE
            r = rng.random()
            if nominal % WINDOW_S in (LATENESS_S - 1, LATENESS_S) and r < 0.2:
                # The watermark is at (or one second before) a minute's end: a record of that
                # minute is dropped exactly when the watermark has reached the end.
                r = 0.98
            for _ in range(50):
                if r < 0.85:
                    t = nominal
                elif r < 0.97:
                    t = nominal - rng.randint(1, LATENESS_S)
                elif r < 0.999 or i < 200 * RATE:
                    t = nominal - rng.randint(6, 40)
                else:
                    t = nominal - rng.randint(90, 150)
                if self._robust(t):
                    break
                r = 0.0  # an in-order record is always robust
            if nominal - t >= 90:
                self.far_late += 1
            uid = rng.choices(uids, cum_weights=cum_weights)[0]
            self.times.append(t)
            self._prefix_max.append(max(t, self._prefix_max[-1]) if self._prefix_max else t)
            self.uids.append(uid)
            self.lines.append(self._render(rng, uid, t))
        assert self.far_late >= 5, self.far_late
        self.boundary = sum(1 for i, t in enumerate(self.times) if i and self._end(t)
                            == self._prefix_max[i - 1] - LATENESS_S)
        assert self.boundary >= 5, self.boundary

    @staticmethod
    def _end(t):
        return t - t % WINDOW_S + WINDOW_S

    def _verdict(self, t, watermark_time):
        """True when a record at t is late given the max event time seen so far."""
        if watermark_time is None:
            return False
        return self._end(t) <= watermark_time - LATENESS_S

    def _robust(self, t):
        n = len(self._prefix_max)
        seen_all = self._prefix_max[-1] if n else None
        seen_old = self._prefix_max[n - BATCH_EVENTS] if n >= BATCH_EVENTS else None
        return self._verdict(t, seen_all) == self._verdict(t, seen_old)

    @staticmethod
    def _render(rng, uid, t):
        fields = [("uid", uid), ("ts", t),
                  ("meta", {"uid": "other", "ts": 1}),
                  ("page", rng.choice(["/", "/watch", "/browse", "/search?q=a%20b"]))]
        if rng.random() < 0.3:
            fields.append(("session", {"id": "%08x" % rng.getrandbits(32),
                                       "user": {"uid": "nested-" + uid[:4], "ts": t + 999}}))
        if rng.random() < 0.2:
            fields.append(("tags", ["a", {"uid": "in-array"}]))
        rng.shuffle(fields)
        return json.dumps(dict(fields), separators=(",", ":"))

    def expected(self):
        """(distinct users per window start in epoch s, number of late records), simulating the
        per-record watermark over arrival order."""
        users = collections.defaultdict(set)
        late = 0
        max_seen = None
        for t, uid in zip(self.times, self.uids):
            if self._verdict(t, max_seen):
                late += 1
                continue
            users[t - t % WINDOW_S].add(uid)
            max_seen = t if max_seen is None else max(max_seen, t)
        return {start: len(s) for start, s in users.items()}, late


class UniqueUsersTest(harness.IntegrationTestCase):
    def test_distinct_users_per_minute_with_late_records(self):
        stream = UserStream()
        input_path = self.write_file("stream.jsonl", "\n".join(stream.lines) + "\n")
        out_path = self.path("users.jsonl")
        d = self.run_daemon(f"""
data_dir: {q(self.dir)}
batch: {{ max_events: {BATCH_EVENTS} }}
sources:
  stream: {{ type: file, path: {q(input_path)} }}
parsers:
  records: {{ type: json, inputs: [stream], time_field: ts, time_format: s }}
aggregates:
  users_per_minute:
    type: window
    inputs: [records]
    window: {{ size: 1m, time: event, allowed_lateness: {LATENESS_S}s }}
    metrics: {{ users: distinct(uid) }}
sinks:
  out: {{ type: file, inputs: [users_per_minute], path: {q(out_path)} }}
""")
        c = Counters(d.stats())
        expected, late = stream.expected()
        self.assertGreater(late, stream.far_late, "the data must also hold medium-late drops")

        rows = harness.read_jsonl(out_path, ordered_keys=True)
        got = {}
        for pairs in rows:
            self.assertEqual([k for k, _ in pairs], ["window_start", "window_end", "users"])
            row = dict(pairs)
            start = row["window_start"]
            self.assertNotIn(start, got, f"minute emitted twice: {start}")
            got[start] = row["users"]
        want = {harness.rfc3339_ms(s * 1000): n for s, n in expected.items()}
        self.assertEqual(got, want)
        self.assertEqual(list(got), sorted(got), "minutes must be emitted in order")

        self.assertEqual(c["users_per_minute.late"], late)
        self.assertEqual(c["users_per_minute.windows"], len(want))
        self.assertEqual(c["records.parsed"], len(stream.lines))
        self.assertEqual(c["records.time_missing"], 0)
        self.assertEqual(c["users_per_minute.events_in"], len(stream.lines))
        self.assertEqual(c["out.events_out"], len(want))
        self.assert_no_loss(c, [("stream", "records"), ("records", "users_per_minute"),
                                ("users_per_minute", "out")])


class UniqueUsersJobTest(kafka_peer.KafkaTestCase):
    def test_the_shipped_config_from_topic_to_topic(self):
        """config/unique-users.yaml as shipped, on the Kafka test peer: the same records from a
        topic (one partition, so arrival order is the stream's), minutes as {"ts", "cnt"} to
        another topic. A record two minutes after the last closes the last minute, as the next
        minute of a live stream would; its own minute stays open and is left to the next run."""
        stream = UserStream()
        peer = self.peer(topics={"users": 1, "unique-users-per-minute": 1})
        sentinel = json.dumps({"uid": "sentinel", "ts": max(stream.times) + 2 * WINDOW_S})
        kafka_peer.produce(peer.bootstrap, "users", stream.lines + [sentinel], partition=0)
        expected, late = stream.expected()
        env = dict(os.environ, INGESTD_DATA_DIR=self.dir, KAFKA_BROKERS=peer.bootstrap,
                   UU_BATCH_EVENTS=str(BATCH_EVENTS))
        with open(CONFIG) as f:
            d = self.start_daemon(f.read(), env=env)
        wait_until(lambda: sum(peer.watermarks("unique-users-per-minute").values())
                   >= len(expected), 60, "every minute in the output topic")
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())

        got = {}
        for line in kafka_peer.consume(peer.bootstrap, "unique-users-per-minute"):
            row = json.loads(line)
            self.assertEqual(sorted(row), ["cnt", "ts"], line)
            self.assertNotIn(row["ts"], got, f"minute emitted twice: {row['ts']}")
            got[row["ts"]] = row["cnt"]
        self.assertEqual(got, expected)
        c = Counters(d.stats())
        self.assertEqual(c["records_in.messages"], len(stream.lines) + 1)
        self.assertEqual(c["records.parsed"], len(stream.lines) + 1)
        self.assertEqual(c["users.late"], late)
        self.assertEqual(c["users.left_for_replay"], 1)  # the sentinel, read again next time
        self.assertEqual(c["out.events_out"], len(expected))


if __name__ == "__main__":
    unittest.main(verbosity=2)
