"""File source checkpoints through restarts: a writer appends numbered lines to a file that ingestd
follows into a file sink; ingestd is stopped and started again while the writer goes on, once with
the file rotated (renamed to path.1, a new file at path) while it is stopped and once while it
runs. Expected values come from the writer's own list of what it wrote:
- clean stops (SIGTERM): every line exactly once in the output, in order;
- kill -9: every line present; lines written twice are only those acknowledged after the last
  checkpoint write, so at most what the writer wrote in about one checkpoint_interval.
"""

import json
import os
import signal
import threading
import time
import unittest

import harness
from harness import Counters, q

CHECKPOINT_INTERVAL_S = 0.3
POLL_S = 0.02


class Writer(threading.Thread):
    """Appends numbered lines in small chunks, keeping its own list (with the time of each chunk)
    of what it wrote; rotates the file by rename + new file when asked."""

    def __init__(self, path, lines_per_chunk=20):
        super().__init__(daemon=True)
        self.path = path
        self.lines_per_chunk = lines_per_chunk
        self.lines = []
        self.chunk_times = []  # (monotonic time, number of lines written by then)
        self.lock = threading.Lock()
        self.rotate = threading.Event()
        self.rotated = threading.Event()
        self.paused = threading.Event()
        self.stopped = threading.Event()
        self.error = None

    def count(self):
        with self.lock:
            return len(self.lines)

    def run(self):
        try:
            f = open(self.path, "ab", buffering=0)
            while not self.stopped.is_set():
                if self.rotate.is_set():
                    f.close()
                    os.rename(self.path, self.path + ".1")
                    f = open(self.path, "ab", buffering=0)
                    self.rotate.clear()
                    self.rotated.set()
                with self.lock:
                    first = len(self.lines)
                    chunk = [f"line-{i:08d}" for i in range(first, first + self.lines_per_chunk)]
                f.write("".join(line + "\n" for line in chunk).encode())
                with self.lock:
                    self.lines.extend(chunk)
                    self.chunk_times.append((time.monotonic(), len(self.lines)))
                # Producer pacing (a steady stream), not synchronisation.
                self.stopped.wait(0.005)
            f.close()
        except Exception as e:  # reported by the test
            self.error = e

    def do_rotate(self, timeout=10):
        self.rotated.clear()
        self.rotate.set()
        harness.wait_until(lambda: self.rotated.is_set() or self.error, timeout, "rotation")

    def stop(self):
        self.stopped.set()
        if self.is_alive():
            self.join(10)

    def most_in(self, seconds):
        """The most lines written within any window of `seconds`."""
        with self.lock:
            times = list(self.chunk_times)
        best, start = 0, 0
        for end in range(len(times)):
            while times[end][0] - times[start][0] > seconds:
                start += 1
            before = times[start - 1][1] if start > 0 else 0
            best = max(best, times[end][1] - before)
        return best


class FileCheckpointTest(harness.IntegrationTestCase):
    def config(self):
        return f"""
data_dir: {q(self.path("data"))}
shutdown_timeout: 10s
sources:
  in:
    type: file
    path: {q(self.input)}
    mode: follow
    poll_interval: {int(POLL_S * 1000)}ms
    checkpoint_interval: {int(CHECKPOINT_INTERVAL_S * 1000)}ms
sinks:
  out: {{ type: file, inputs: [in], path: {q(self.output)}, encoding: raw, fsync: never }}
"""

    def setUp(self):
        super().setUp()
        self.input = self.path("in.log")
        self.output = self.path("out.log")
        self.writer = Writer(self.input)
        self.runs = 0

    def tearDown(self):
        self.writer.stop()
        super().tearDown()

    def start(self):
        self.runs += 1
        d = self.start_daemon(self.config(), name=f"ingestd{self.runs}")
        return d

    def wait_output_grows(self, d, by=2000):
        want = harness.count_lines(self.output) + by
        harness.wait_until(lambda: harness.count_lines(self.output) >= want or not d.running(),
                           60, f"{by} more output lines")
        self.assertTrue(d.running(), f"ingestd exited early: {d.stderr_tail()}")

    def sigterm(self, d):
        rc, took = d.stop(signal.SIGTERM, timeout=30)
        self.assertEqual(rc, 0, f"exit {rc}; stderr:\n{d.stderr_tail()}")
        self.assertLess(took, 10)
        c = Counters(d.stats())
        self.assertEqual(c.get("in.acks_failed"), 0)
        self.assertEqual(c.get("in.checkpoint_errors"), 0)
        return c

    def finish(self, d):
        """Stops the writer, waits for ingestd to catch up, stops it; returns the output lines."""
        self.writer.stop()
        self.assertIsNone(self.writer.error)
        want = self.writer.lines
        last = want[-1]

        def caught_up():
            lines = harness.read_lines(self.output)
            return (lines and lines[-1] == last) or not d.running()

        harness.wait_until(caught_up, 60, "the output to reach the writer's last line")
        self.assertTrue(d.running(), f"ingestd exited early: {d.stderr_tail()}")
        self.sigterm(d)
        return harness.read_lines(self.output)

    def test_clean_restarts_and_rotation_deliver_every_line_exactly_once(self):
        self.writer.start()
        d = self.start()
        self.wait_output_grows(d)
        self.sigterm(d)

        # Restart: resumes at the checkpoint while the writer went on; the file is rotated while
        # ingestd runs.
        d = self.start()
        self.wait_output_grows(d)
        self.writer.do_rotate()
        self.wait_output_grows(d)
        self.sigterm(d)
        self.assertIn("resuming", d.stderr())

        # Rotated while stopped: the rest of in.log.1 first, then the new in.log.
        self.writer.do_rotate()
        harness.wait_until(lambda: os.path.getsize(self.input) > 0 or self.writer.error, 10,
                           "lines in the new file")
        d = self.start()
        got = self.finish(d)
        self.assertIn("rotated while stopped", d.stderr())

        want = self.writer.lines
        duplicates = len(got) - len(set(got))
        self.assertEqual(duplicates, 0, "no line read twice after clean stops")
        self.assertEqual(sorted(set(want) - set(got)), [], "no line lost")
        self.assertEqual(got, want, "every line once, in order")
        state = self.path("data", "state", "in", "checkpoint.json")
        self.assertTrue(os.path.exists(state), state)

    def test_kill_9_loses_nothing_and_repeats_at_most_a_checkpoint_interval(self):
        self.writer.start()
        d = self.start()
        # Several checkpoint intervals in, past a checkpoint write, so that the restart resumes
        # from one and the window a kill repeats is small beside what was written.
        state = self.path("data", "state", "in", "checkpoint.json")

        def checkpointed():
            try:
                with open(state) as f:
                    return json.load(f)["offset"] > 0
            except (OSError, ValueError):
                return False

        self.wait_output_grows(d, 6000)
        harness.wait_until(checkpointed, 10, "a checkpoint past the start")
        d.kill()

        d = self.start()
        self.wait_output_grows(d)
        got = self.finish(d)
        self.assertIn("resuming", d.stderr())
        want = self.writer.lines
        self.assertEqual(sorted(set(want) - set(got)), [], "no line lost")
        self.assertEqual(set(got), set(want))
        duplicates = len(got) - len(set(got))
        # What was acknowledged after the last checkpoint write: at most the lines written in a
        # checkpoint interval, plus the poll and the write's own delay.
        bound = self.writer.most_in(CHECKPOINT_INTERVAL_S + POLL_S + 0.5)
        self.assertLessEqual(duplicates, bound,
                             f"{duplicates} duplicates; at most {bound} expected")

    def test_a_data_dir_without_room_for_state_stops_start_up_with_the_reason(self):
        data_dir = self.write_file("not-a-dir", "x\n")
        self.write_file("in.log", "a\n")
        config = f"""
data_dir: {q(data_dir)}
sources:
  in: {{ type: file, path: {q(self.input)}{{}} }}
sinks:
  out: {{ type: file, inputs: [in], path: {q(self.output)}, spool: false }}
"""
        d = self.start_daemon(config.replace("{}", ""), name="refused")
        rc = d.wait(30)
        self.assertNotEqual(rc, 0)
        self.assertIn(f"cannot create its state directory {data_dir}/state/in", d.stderr())
        self.assertIn("or set checkpoint: false", d.stderr())

        d = self.run_daemon(config.replace("{}", ", checkpoint: false"), name="without")
        self.assertEqual(harness.read_lines(self.output), ["a"])


if __name__ == "__main__":
    unittest.main()
