"""Event-time windows behind a parser with several workers: a file of records in time order ->
parse/json (`workers: 4`, small batches) -> window (1 min, event time, no allowed lateness) ->
file. The workers hand their batches on out of order between them; the window takes each worker
as a stream of its own, so no record in time order is late and every minute holds exactly the
records the test counts in the input."""

import collections
import json
import os
import random
import unittest

import harness
from harness import Counters, q

WINDOW_S = 60
BASE_S = 1515445200 + 17  # mid-minute start
RECORDS = 30000
BATCH_EVENTS = 16


class WindowWorkersTest(harness.IntegrationTestCase):
    def test_no_record_in_time_order_is_late_behind_parser_workers(self):
        rng = random.Random(11)
        lines, per_minute = [], collections.Counter()
        t = BASE_S
        for i in range(RECORDS):
            t += rng.choice((0, 0, 0, 1))  # in time order, several records a second
            lines.append(json.dumps({"seq": i, "ts": t, "user": "u%d" % rng.randrange(50),
                                     "pad": "x" * rng.randrange(200)}))
            per_minute[t - t % WINDOW_S] += 1
        input_path = self.write_file("events.jsonl", "\n".join(lines) + "\n")
        out_path = self.path("minutes.jsonl")
        d = self.run_daemon(f"""
data_dir: {q(self.dir)}
batch: {{ max_events: {BATCH_EVENTS} }}
sources:
  events: {{ type: file, path: {q(input_path)} }}
parsers:
  records: {{ type: json, inputs: [events], workers: 4, time_field: ts, time_format: s }}
aggregates:
  per_minute:
    type: window
    inputs: [records]
    window: {{ size: 1m, time: event }}
    metrics: {{ n: count }}
    output: {{ time_format: s }}
sinks:
  out: {{ type: file, inputs: [per_minute], path: {q(out_path)} }}
""")
        c = Counters(d.stats())
        got = {}
        for row in harness.read_jsonl(out_path):
            self.assertNotIn(row["window_start"], got, f"minute emitted twice: {row}")
            got[row["window_start"]] = row["n"]
        self.assertEqual(c["per_minute.late"], 0)
        self.assertEqual(got, dict(per_minute))
        self.assertEqual(sum(got.values()), RECORDS)
        self.assertEqual(c["records.parsed"], RECORDS)
        self.assertEqual(c["per_minute.events_in"], RECORDS)
        self.assertEqual(c["per_minute.filtered"], 0)
        self.assertEqual(c["out.events_out"], len(per_minute))
        self.assert_no_loss(c, [("events", "records"), ("records", "per_minute"),
                                ("per_minute", "out")])


if __name__ == "__main__":
    unittest.main()
