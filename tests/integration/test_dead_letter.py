"""Dead letters that cannot vanish silently.

- Records with invalid UTF-8 and invalid JSON are set aside by the JSON parser: every line of the
  dead-letter file is valid JSON, and the original bytes come back exactly (from "raw", or from
  "raw_base64" when they are not UTF-8), checked against the input the test wrote.
- A dead-letter file that cannot be written (a read-only file system mounted over the
  dead_letter directory) loses the records: that is counted as dead_letter_lost, logged with the
  real cause (EROFS, not ENOENT), and makes the batch job exit non-zero.
- A second SIGINT while a sink is stuck inside a write (stdout into a FIFO nobody reads) stops
  the daemon at once, and the final counters account for the batch that was in its hands.
"""

import base64
import json
import os
import signal
import subprocess
import time
import unittest

import harness
from harness import Counters, q


class DeadLetterContentTest(harness.IntegrationTestCase):
    def test_every_line_is_json_and_keeps_the_original_bytes(self):
        good = [b'{"n":%d}' % i for i in range(50)]
        bad = [b'{"n": 1', b'\xff\xfe not utf-8 \xc3', b'[1,2,3]', b'caf\xc3\xa9 "quoted"',
               b'{"n": "\xff"}', b'\x00\x01 control']
        lines = []
        for i, g in enumerate(good):
            lines.append(g)
            if i < len(bad):
                lines.append(bad[i])
        with open(self.path("in.txt"), "wb") as f:
            f.write(b"\n".join(lines) + b"\n")
        d = self.run_daemon(f"""
data_dir: {q(self.dir)}
sources:
  in: {{ type: file, path: {q(self.path("in.txt"))} }}
parsers:
  parse: {{ type: json, inputs: [in], on_error: dead_letter }}
sinks:
  out: {{ type: file, inputs: [parse], path: {q(self.path("out.jsonl"))} }}
""")
        c = Counters(d.stats())
        self.assertEqual(c["out.events_out"], len(good))
        self.assertEqual(c["parse.dead_letters"], len(bad))
        self.assertEqual(c.get("parse.dead_letter_lost"), 0)
        with open(self.path("dead_letter", "parse.jsonl"), "rb") as f:
            records = [json.loads(line) for line in f.read().splitlines()]  # each one is JSON
        got = []
        for r in records:
            self.assertEqual(r["component"], "parse")
            self.assertTrue(r.get("reason") or r.get("reason_base64"), r)
            if "raw" in r:
                got.append(r["raw"].encode("utf-8"))
            else:
                got.append(base64.b64decode(r["raw_base64"]))
        self.assertEqual(got, bad)


def mount_read_only(path):
    """Mounts an empty read-only tmpfs on `path`; False where mounting is not allowed."""
    os.makedirs(path, exist_ok=True)
    if os.geteuid() != 0:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", path],
                       capture_output=True)
    return r.returncode == 0


class UnwritableDeadLetterTest(harness.IntegrationTestCase):
    def test_lost_records_are_counted_logged_and_fail_the_job(self):
        dead = self.path("dead_letter")
        if not mount_read_only(dead):
            self.skipTest("needs root to mount a read-only tmpfs")
        self.addCleanup(subprocess.run, ["umount", "-l", dead])
        count = 300
        d = self.start_daemon(f"""
data_dir: {q(self.dir)}
sources:
  gen: {{ type: generator, count: {count} }}
sinks:
  out:
    type: file
    inputs: [gen]
    path: /dev/full
    retry: {{ max_attempts: 1 }}
""")
        rc = d.wait(60)
        stderr = d.stderr()
        self.assertEqual(rc, 1, stderr[-3000:])
        c = Counters(d.stats())
        self.assertEqual(c["out.events_in"], count)
        self.assertEqual(c["out.failed"], count)
        self.assertEqual(c.get("out.dead_letters"), 0)
        self.assertEqual(c["out.dead_letter_lost"], count)
        # The real cause (EROFS), not the ENOENT of an open after a failed mkdir.
        self.assertRegex(stderr, r"a record is lost: cannot open dead-letter file \S+out\.jsonl: "
                                 r"Read-only file system")
        self.assertIn(f"{count} records meant for a dead-letter file could not be stored", stderr)


class SecondSignalTest(harness.IntegrationTestCase):
    def read_stderr(self):
        with open(self.path("stderr"), encoding="utf-8", errors="replace") as f:
            return f.read()

    def test_second_sigint_stops_at_once_and_counts_the_batch_in_hand(self):
        fifo = self.path("fifo")
        os.mkfifo(fifo)
        # Opened for reading (so the daemon's open does not block) and never read: the pipe
        # fills and the stdout sink's write blocks inside the kernel.
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, reader)
        config = self.write_file("p.yaml", f"""
data_dir: {q(self.dir)}
shutdown_timeout: 60s
sources:
  gen: {{ type: generator }}
sinks:
  console: {{ type: stdout, inputs: [gen], encoding: raw }}
""")
        stats = self.path("stats.json")
        with open(fifo, "wb") as out, open(self.path("stderr"), "wb") as err:
            proc = subprocess.Popen(
                [harness.BIN, "run", "-c", config, "--plugin-dir", harness.PLUGIN_DIR,
                 "--stats-file", stats],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=self.dir)
        try:
            harness.wait_until(lambda: "running" in self.read_stderr(), 30, "the daemon to run")
            # An unpaced generator fills the pipe (64 KiB) within its first batch.
            proc.send_signal(signal.SIGINT)
            harness.wait_until(lambda: "stopping (draining" in self.read_stderr(), 30,
                               "the first signal to be taken")
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(timeout=30)
            took = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        stderr = self.read_stderr()
        self.assertEqual(rc, 1, stderr[-3000:])
        self.assertLess(took, 2.0, f"the second SIGINT took {took:.2f}s")
        self.assertIn("second Interrupt: stopping now", stderr)
        with open(stats) as f:
            c = Counters(json.load(f)["counters"])
        self.assertGreater(c["console.shutdown_dropped"], 0, "the batch in the stuck write")
        self.assertEqual(
            c["gen.events_out"],
            c["console.events_out"] + c.get("console.failed") + c.get("console.queue_dropped")
            + c["console.shutdown_dropped"],
            "every generated event is written or counted as dropped")


if __name__ == "__main__":
    unittest.main(verbosity=2)
