"""Late events routed to a side output: a file of records, some of them late -> parse/json
(time_field ts, seconds) -> window (10 s, event time, allowed_lateness 2 s, `late: route`) -> a file
sink reading the window's output, and a second file sink reading `per_window.late`.

Every record is either counted in its window or written, unchanged, to the late file; which ones
are late the test computes itself, by running the watermark over the arrival order (one stream,
one parser worker: the daemon's watermark moves event by event exactly so). A reload that swaps
the late sink for another keeps the window running and moves its late output along."""

import collections
import json
import os
import random
import re
import signal
import unittest

import harness
from harness import Counters, count_lines, q, wait_until

WINDOW_S = 10
LATENESS_S = 2
BASE_S = 1515445200 + 3
RECORDS = 4000
BATCH_EVENTS = 16


def make_records(seed, records=RECORDS, base=BASE_S):
    """(lines, per_window counts of the records counted, seqs of the late ones)."""
    rng = random.Random(seed)
    lines, times = [], []
    t = base
    for i in range(records):
        t += rng.choice((0, 0, 0, 1))
        r = rng.random()
        ts = t - rng.randint(3, 30) if r < 0.06 else t - rng.randint(0, LATENESS_S) if r < 0.2 else t
        times.append(ts)
        lines.append(json.dumps({"seq": i, "ts": ts, "pad": "x" * rng.randrange(40)}))
    watermark = None
    per_window, late = collections.Counter(), set()
    for i, ts in enumerate(times):
        start = ts - ts % WINDOW_S
        if watermark is not None and start + WINDOW_S <= watermark:
            late.add(i)
            continue
        per_window[start] += 1
        mark = ts - LATENESS_S
        watermark = mark if watermark is None else max(watermark, mark)
    return lines, per_window, late


def config(workdir, input_path, out_path, late_name, late_path, mode="read"):
    return f"""
data_dir: {q(workdir)}
batch: {{ max_events: {BATCH_EVENTS} }}
sources:
  events: {{ type: file, path: {q(input_path)}, mode: {mode} }}
parsers:
  records: {{ type: json, inputs: [events], time_field: ts, time_format: s }}
aggregates:
  per_window:
    type: window
    inputs: [records]
    window: {{ size: {WINDOW_S}s, time: event, allowed_lateness: {LATENESS_S}s, late: route }}
    metrics: {{ n: count }}
    output: {{ time_format: s }}
sinks:
  out: {{ type: file, inputs: [per_window], path: {q(out_path)} }}
  {late_name}: {{ type: file, inputs: [per_window.late], path: {q(late_path)} }}
"""


class LateRouteTest(harness.IntegrationTestCase):
    def test_every_record_is_counted_or_in_the_late_file(self):
        lines, per_window, late = make_records(seed=7)
        self.assertGreater(len(late), 100)
        input_path = self.write_file("events.jsonl", "\n".join(lines) + "\n")
        out_path, late_path = self.path("windows.jsonl"), self.path("late.jsonl")
        d = self.run_daemon(config(self.dir, input_path, out_path, "late", late_path))
        c = Counters(d.stats())

        got = {}
        for row in harness.read_jsonl(out_path):
            self.assertNotIn(row["window_start"], got, f"window emitted twice: {row}")
            got[row["window_start"]] = row["n"]
        self.assertEqual(got, dict(per_window))
        late_lines = harness.read_lines(late_path)
        self.assertEqual(sorted(json.loads(line)["seq"] for line in late_lines), sorted(late))
        by_seq = {json.loads(line)["seq"]: line for line in lines}
        for line in late_lines:  # written as read
            self.assertEqual(line, by_seq[json.loads(line)["seq"]])

        self.assertEqual(sum(got.values()) + len(late_lines), RECORDS)
        self.assertEqual(c["per_window.events_in"], RECORDS)
        self.assertEqual(c["per_window.late"], len(late))
        self.assertEqual(c["per_window.late_routed"], len(late))
        self.assertEqual(c["per_window.late.events_out"], len(late))
        self.assertEqual(c["late.events_in"], len(late))
        self.assertEqual(c["late.events_out"], len(late))
        self.assertEqual(c["per_window.unconsumed"], 0)
        self.assertEqual(c["per_window.acks_unresolved"], 0)
        self.assertEqual(c["out.events_out"], len(per_window))
        self.assert_no_loss(c, [("events", "records"), ("records", "per_window"),
                                ("per_window", "out")])

    def test_a_reload_moves_the_late_output_to_a_new_sink(self):
        input_path = self.write_file("events.jsonl", "")
        out_path = self.path("windows.jsonl")
        first, second = self.path("late-a.jsonl"), self.path("late-b.jsonl")
        d = self.start_daemon(config(self.dir, input_path, out_path, "late_a", first,
                                     mode="follow"))  # written to ingestd.yaml

        def append(chunk):
            with open(input_path, "a") as f:
                f.write("\n".join(chunk) + "\n")

        lines, _, late = make_records(seed=8, records=2000)
        append(lines[:1000])
        late_before = sorted(i for i in late if i < 1000)
        wait_until(lambda: count_lines(first) >= len(late_before), 30, "the first late file")

        self.write_file("ingestd.yaml", config(self.dir, input_path, out_path, "late_b", second,
                                               mode="follow"))
        d.send(signal.SIGHUP)
        wait_until(lambda: re.search(r"reloaded .*: 4 kept \(1 rewired\), 0 replaced, 1 added, "
                                     r"1 removed", d.stderr()), 30, "the reload")
        append(lines[1000:])
        late_after = sorted(i for i in late if i >= 1000)
        self.assertGreater(len(late_after), 20)
        wait_until(lambda: count_lines(second) >= len(late_after), 30, "the second late file")
        d.stop()
        seqs = lambda p: sorted(json.loads(line)["seq"] for line in harness.read_lines(p))
        self.assertEqual(seqs(first), late_before)
        self.assertEqual(seqs(second), late_after)
        c = Counters(d.stats())
        self.assertEqual(c["per_window.late_routed"], len(late))
        self.assertEqual(c["per_window.unconsumed"], 0)


if __name__ == "__main__":
    unittest.main()
