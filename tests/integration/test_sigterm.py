"""Graceful shutdown mid-stream: a file source in follow mode reads a file that the test keeps
appending to; the test sends SIGTERM (or SIGINT) while lines are still arriving, with a half-written
line at the end of the file, and expects exit 0 within shutdown_timeout with nothing lost.

What "nothing lost" means here: the source's `bytes` counter says how far into the file it
consumed; the lines in those bytes (read back independently from the input file) are exactly what
reaches the output - every valid line (raw pipeline) or every valid success record counted in a
window (aggregate pipeline) - and every malformed one is counted as a parser error.

The window pipeline reads without a file checkpoint, so that its input is not read again by a next
run: the stop then emits the open windows as they are (with a checkpoint it would leave them to be
recomputed by the next run: test_window_restart.py).
"""

import json
import random
import signal
import threading
import time
import unittest

import harness
from harness import Counters, q

SHUTDOWN_TIMEOUT_S = 10
DEVICES = ["xbox_one", "ps4", "roku", "apple_tv"]


class Appender(threading.Thread):
    """Appends lines to the input file until stopped. When asked (split_next_line), it writes the
    first half of a valid line, reports that (half_written), and completes the line only later,
    so that the daemon is signalled while the file ends in an unterminated line."""

    def __init__(self, path, seed, lines_per_chunk=100):
        super().__init__(daemon=True)
        self.path = path
        self.rng = random.Random(seed)
        self.seq = 0
        self.lines_per_chunk = lines_per_chunk
        self.split_next_line = threading.Event()
        self.half_written = threading.Event()
        self.finish_line = threading.Event()
        self.stopped = threading.Event()
        self.error = None

    def line(self):
        self.seq += 1
        r = self.rng.random()
        if r < 0.01:
            return ""
        if r < 0.02:
            return "busted data..."
        rec = {"seq": self.seq, "device": self.rng.choice(DEVICES),
               "sev": self.rng.choice(["success", "success", "error"]),
               "msg": "x" * self.rng.randint(0, 80)}
        text = json.dumps(rec, separators=(",", ":"))
        if r < 0.03:
            return text[:self.rng.randint(1, len(text) - 2)]
        return text

    def chunk(self, n):
        return "".join(self.line() + "\n" for _ in range(n)).encode()

    def run(self):
        try:
            with open(self.path, "ab", buffering=0) as f:
                split_pending = None
                while not self.stopped.is_set():
                    f.write(self.chunk(self.lines_per_chunk))
                    if self.split_next_line.is_set() and not self.half_written.is_set():
                        full = json.dumps({"seq": -1, "device": "roku", "sev": "success",
                                           "msg": "written in two halves"}).encode() + b"\n"
                        f.write(full[:20])
                        split_pending = full[20:]
                        self.half_written.set()
                        self.finish_line.wait(5)
                        f.write(split_pending)
                    # Producer pacing (a steady stream), not synchronisation.
                    self.stopped.wait(0.005)
        except Exception as e:  # reported by the test
            self.error = e

    def stop(self):
        self.stopped.set()
        self.finish_line.set()
        self.join(10)


def consumed_lines(input_path, consumed_bytes):
    """The lines wholly inside the first consumed_bytes bytes of the file."""
    with open(input_path, "rb") as f:
        data = f.read()
    assert consumed_bytes <= len(data), (consumed_bytes, len(data))
    head = data[:consumed_bytes]
    assert not head or head.endswith(b"\n"), \
        f"in.bytes={consumed_bytes} is not at a line boundary: ...{head[-40:]!r}"
    return [line.decode() for line in head.split(b"\n")[:-1]]


def parse_valid(line):
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class SigtermTest(harness.IntegrationTestCase):
    def run_and_interrupt(self, pipeline_tail, out_path, sig=signal.SIGTERM, seed=1, source=""):
        input_path = self.path("in.jsonl")
        appender = Appender(input_path, seed)
        with open(input_path, "wb") as f:
            f.write(appender.chunk(500))
        d = self.start_daemon(f"""
data_dir: {q(self.dir)}
shutdown_timeout: {SHUTDOWN_TIMEOUT_S}s
sources:
  in: {{ type: file, path: {q(input_path)}, mode: follow, poll_interval: 20ms{source} }}
parsers:
  ev: {{ type: json, inputs: [in] }}
{pipeline_tail}""")
        appender.start()
        try:
            harness.wait_until(lambda: harness.count_lines(out_path) >= 3 or not d.running(),
                               60, "output to appear")
            self.assertTrue(d.running(), f"ingestd exited early: {d.stderr_tail()}")
            harness.wait_until(lambda: appender.seq >= 3000 or appender.error, 60,
                               "the appender to write 3000 lines")
            appender.split_next_line.set()
            harness.wait_until(lambda: appender.half_written.is_set() or appender.error, 30,
                               "a half-written line")
            sent = time.monotonic()
            d.send(sig)
            appender.finish_line.set()  # keep appending while the daemon shuts down
            rc = d.wait(SHUTDOWN_TIMEOUT_S + 20)
            took = d.exited_at - sent
        finally:
            appender.stop()
        self.assertIsNone(appender.error)
        self.assertEqual(rc, 0, f"exit {rc} after {sig!r}; stderr:\n{d.stderr_tail()}")
        self.assertLess(took, SHUTDOWN_TIMEOUT_S, f"shutdown took {took:.2f}s")

        c = Counters(d.stats())
        lines = consumed_lines(input_path, c["in.bytes"])
        self.assertGreater(len(lines), 500)
        self.assertEqual(c["in.events"] + c["in.empty"] + c["in.oversized"], len(lines))
        self.assertEqual(c["in.empty"], sum(1 for line in lines if line == ""))
        nonempty = [line for line in lines if line != ""]
        valid = [line for line in nonempty if parse_valid(line) is not None]
        self.assertEqual(c["ev.errors"], len(nonempty) - len(valid))
        self.assertEqual(c["ev.parsed"], len(valid))
        return c, valid

    def check_raw_pipeline(self, sig):
        out_path = self.path("out.jsonl")
        c, valid = self.run_and_interrupt(f"""
sinks:
  out: {{ type: file, inputs: [ev], path: {q(out_path)}, encoding: raw, fsync: never }}
""", out_path, sig)
        written = harness.read_lines(out_path)
        self.assertEqual(len(written), len(valid))
        self.assertEqual(written, valid, "output: exactly the valid consumed lines, in order")
        self.assertEqual(c["out.events_out"], len(written))
        self.assertEqual(c.get("out.failed"), 0)
        self.assert_no_loss(c, [("in", "ev"), ("ev", "out")])

    def test_sigterm_raw_pipeline_loses_nothing(self):
        self.check_raw_pipeline(signal.SIGTERM)

    def test_sigint_raw_pipeline_loses_nothing(self):
        self.check_raw_pipeline(signal.SIGINT)

    def test_sigterm_window_pipeline_flushes_open_windows(self):
        out_path = self.path("counts.jsonl")
        c, valid = self.run_and_interrupt(f"""
aggregates:
  starts:
    type: window
    inputs: [ev]
    where: {{ sev: success }}
    group_by: [device]
    window: {{ size: 1s, time: processing }}
    metrics: {{ n: count }}
sinks:
  out: {{ type: file, inputs: [starts], path: {q(out_path)} }}
""", out_path, seed=2, source=", checkpoint: false")
        records = [parse_valid(line) for line in valid]
        rows = harness.read_jsonl(out_path)
        per_device = {}
        for row in rows:
            per_device[row["device"]] = per_device.get(row["device"], 0) + row["n"]
        want = {}
        for r in records:
            if r["sev"] == "success":
                want[r["device"]] = want.get(r["device"], 0) + 1
        self.assertEqual(per_device, want)
        self.assertEqual(c["starts.filtered"], len(records) - sum(want.values()))
        self.assertEqual(c["starts.late"], 0)
        self.assertEqual(c["starts.left_for_replay"], 0)
        self.assertEqual(c["out.events_out"], len(rows))
        self.assert_no_loss(c, [("in", "ev"), ("ev", "starts"), ("starts", "out")])


class ShutdownTimeoutTest(harness.IntegrationTestCase):
    def test_stuck_sink_is_abandoned_at_the_deadline_and_counted(self):
        """A sink that can never write (/dev/full: ENOSPC, retried forever, no spool to take the
        batches) must not keep the daemon past shutdown_timeout; what it held is counted as
        shutdown_dropped. The daemon discards at 3/4 of the timeout (at most 5 s before it), so
        that even threads slow to give up end within it."""
        timeout_s = 2
        d = self.start_daemon(f"""
data_dir: {q(self.dir)}
shutdown_timeout: {timeout_s}s
sources:
  gen: {{ type: generator, rate: 5000 }}
sinks:
  out: {{ type: file, inputs: [gen], path: /dev/full, encoding: raw, fsync: never,
         spool: false }}
""")
        harness.wait_until(lambda: "No space left" in d.stderr() or not d.running(), 30,
                           "the sink's first failed write")
        self.assertTrue(d.running(), d.stderr_tail())
        rc, took = d.stop(signal.SIGTERM, timeout=timeout_s + 30)
        self.assertGreaterEqual(rc, 0, "killed by a signal")
        self.assertLess(took, timeout_s + 0.5, f"shutdown took {took:.2f}s")
        self.assertGreaterEqual(took, timeout_s * 0.7, "gave up long before shutdown_timeout")
        c = Counters(d.stats())
        self.assertGreater(c["gen.events_out"], 0)
        self.assertEqual(c["out.events_out"], 0)
        self.assertEqual(c.get("out.shutdown_dropped") + c.get("out.queue_dropped")
                         + c.get("out.failed"), c["gen.events_out"],
                         "every generated event is written or counted as dropped")


if __name__ == "__main__":
    unittest.main(verbosity=2)
