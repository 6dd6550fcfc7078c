"""Live reload (SIGHUP) on the real binary under steady generated load.

Every test feeds numbered events ({{seq}}) at a fixed rate and compares what the sinks wrote with
the independent list 0..N-1, where N is the number of events the generator reports having emitted:
nothing lost, nothing twice, and the generator never restarted (a restart would repeat 0, 1, ...).
"""

import datetime
import json
import re
import signal
import time
import unittest

from harness import IntegrationTestCase, Counters, count_lines, q, read_jsonl, wait_until

RATE = 4000


def pipeline(data_dir, sinks, aggregates="", parsers=""):
    """A generator of {"seq":N,"k":"a|b"} at RATE/s feeding the given sections."""
    return f"""data_dir: {q(data_dir)}
shutdown_timeout: 10s
batch: {{ max_events: 64, linger: 20ms }}
sources:
  gen:
    type: generator
    rate: {RATE}
    template: '{{"seq":{{{{seq}}}},"k":"{{{{choice a,b}}}}"}}'
{parsers}{aggregates}sinks:
{sinks}"""


def file_sink(name, path, inputs="gen"):
    return f"""  {name}:
    type: file
    inputs: [{inputs}]
    path: {q(path)}
"""


def span_seconds(window):
    parse = lambda t: datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ")
    return round((parse(window["window_end"]) - parse(window["window_start"])).total_seconds())


def seqs(path):
    with open(path, "rb") as f:
        return [json.loads(line)["seq"] for line in f.read().splitlines()]


class ReloadTest(IntegrationTestCase):
    def reload_and_wait(self, d, pattern, before=None, timeout=30):
        """Sends SIGHUP and waits for the reload's result line (after the count `before` of it)."""
        before = len(re.findall(pattern, d.stderr())) if before is None else before
        d.send(signal.SIGHUP)
        wait_until(lambda: len(re.findall(pattern, d.stderr())) > before, timeout,
                   what=f"a log line matching {pattern!r}")

    def stop_cleanly(self, d):
        rc, _ = d.stop(signal.SIGTERM, timeout=30)
        self.assertEqual(rc, 0, d.stderr_tail())
        return Counters(d.stats())

    def test_added_sink_keeps_the_running_source_and_sink(self):
        a, b = self.path("a.jsonl"), self.path("b.jsonl")
        config = pipeline(self.dir, file_sink("a", a))
        d = self.start_daemon(config)
        wait_until(lambda: count_lines(a) >= 1000, 30, "a to fill")

        self.write_file("ingestd.yaml", pipeline(self.dir, file_sink("a", a) + file_sink("b", b)))
        self.reload_and_wait(d, r"reloaded .*: 2 kept \(1 rewired\), 0 replaced, 1 added, 0 removed")
        at_reload = count_lines(a)
        wait_until(lambda: count_lines(b) >= 1000 and count_lines(a) >= at_reload + 1000, 30,
                   "both sinks to fill after the reload")
        c = self.stop_cleanly(d)

        n = c["gen.events_out"]
        self.assertEqual(seqs(a), list(range(n)), "sink a: every number once, in order")
        tail = seqs(b)
        self.assertGreater(tail[0], 0)
        self.assertEqual(tail, list(range(tail[0], n)), "sink b: the tail from its start")
        self.assertEqual(c["a.events_out"], n)
        self.assertEqual(c["b.events_out"], n - tail[0])

    def test_broken_file_leaves_the_pipeline_running(self):
        a = self.path("a.jsonl")
        d = self.start_daemon(pipeline(self.dir, file_sink("a", a)))
        wait_until(lambda: count_lines(a) >= 500, 30, "a to fill")

        broken = self.write_file(
            "ingestd.yaml",
            pipeline(self.dir, file_sink("a", a)).replace("rate: 4000", "rate: fast")
            + "  b: {type: file, inputs: [nowhere], path: /x}\n")
        self.reload_and_wait(d, r"reload of .* refused")
        err = d.stderr()
        self.assertRegex(err, re.escape(broken) + r":\d+:\d+: sources\.gen.*rate")
        self.assertRegex(err, re.escape(broken) + r":\d+:\d+: .*nowhere")
        self.assertTrue(d.running())
        at_refusal = count_lines(a)
        wait_until(lambda: count_lines(a) >= at_refusal + 1000, 30, "a to go on filling")
        c = self.stop_cleanly(d)
        self.assertEqual(seqs(a), list(range(c["gen.events_out"])))

    def test_window_size_change_flushes_the_old_windows(self):
        out = self.path("counts.jsonl")
        parsers = """parsers:
  json: { type: json, inputs: [gen] }
"""

        def aggregates(size):
            return f"""aggregates:
  counts:
    type: window
    inputs: [json]
    group_by: [k]
    window: {{ size: {size}, time: processing }}
    metrics: {{ n: count, last: max(seq) }}
"""

        sinks = file_sink("out", out, inputs="counts")
        d = self.start_daemon(pipeline(self.dir, sinks, aggregates("1s"), parsers))
        wait_until(lambda: count_lines(out) >= 2, 30, "a first window")

        self.write_file("ingestd.yaml", pipeline(self.dir, sinks, aggregates("2s"), parsers))
        self.reload_and_wait(d, r"reloaded .*: 3 kept, 1 replaced, 0 added, 0 removed")
        def complete_windows():
            with open(out, "rb") as f:
                return [json.loads(line) for line in f.read().split(b"\n")[:-1]]

        wait_until(lambda: any(span_seconds(w) == 2 for w in complete_windows()), 30,
                   "a window of the new size")
        c = self.stop_cleanly(d)

        n = c["gen.events_out"]
        windows = read_jsonl(out)
        self.assertEqual(sum(w["n"] for w in windows), n, "window counts add up to the events")
        self.assertEqual(max(w["last"] for w in windows), n - 1)
        self.assertEqual(c["json.events_out"], n)
        self.assertEqual(c["counts.events_in"], n)
        self.assertEqual(c.get("counts.shutdown_dropped"), 0)
        spans = {span_seconds(w) for w in windows}
        self.assertTrue({1, 2} <= spans, f"window spans seen: {spans}")

    def test_a_burst_of_sighups_loses_nothing(self):
        a, b = self.path("a.jsonl"), self.path("b.jsonl")
        d = self.start_daemon(pipeline(self.dir, file_sink("a", a)))
        wait_until(lambda: count_lines(a) >= 500, 30, "a to fill")

        # 50 signals within a second while the file alternates between two valid graphs.
        one = pipeline(self.dir, file_sink("a", a))
        two = pipeline(self.dir, file_sink("a", a) + file_sink("b", b))
        started = time.monotonic()
        for i in range(50):
            self.write_file("ingestd.yaml", two if i % 2 == 0 else one)
            d.send(signal.SIGHUP)
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertTrue(d.running(), d.stderr_tail())
        # The last file has one sink; the daemon settles on it.
        self.write_file("ingestd.yaml", one)
        self.reload_and_wait(d, r"reloaded .*")
        at_burst_end = count_lines(a)
        wait_until(lambda: count_lines(a) >= at_burst_end + 1000, 30, "a to go on filling")
        c = self.stop_cleanly(d)

        # Signals that come while a reload runs are coalesced into one more: on a busy machine
        # the whole burst can be a single reload, and the file then already holds the final
        # graph. At most one reload per signal.
        reloads = len(re.findall(r"reloaded ", d.stderr()))
        self.assertGreaterEqual(reloads, 1)
        self.assertLessEqual(reloads, 51)
        n = c["gen.events_out"]
        self.assertEqual(seqs(a), list(range(n)), "sink a: every number once, in order")
        # Sink b came and went; what it wrote is a set of runs of the sequence, each once.
        if count_lines(b):
            got = seqs(b)
            self.assertEqual(len(got), len(set(got)))
            self.assertEqual(c["b.events_out"], len(got))


if __name__ == "__main__":
    unittest.main()
