"""`ingestd ... | head`: the reader of stdout closes it early. The daemon ignores SIGPIPE, so it is
not killed: the stdout sink gets EPIPE, fails the batches that cannot be written permanently
(counted, dead-lettered, never retried forever), the pipeline runs to its end, and the process
exits 0 after printing its summary and writing its stats.
"""

import json
import subprocess
import unittest

import harness
from harness import Counters, q

LINES = 200_000  # far more than a pipe buffer holds, so writes are still pending at the close


class StdoutPipeTest(harness.IntegrationTestCase):
    def test_reader_closing_early_does_not_kill_the_daemon(self):
        with open(self.path("in.txt"), "w") as f:
            for i in range(LINES):
                f.write(f"line {i:07d} of a file read to its end\n")
        config = self.write_file("pipe.yaml", f"""
data_dir: {q(self.dir)}
sources:
  in: {{ type: file, path: {q(self.path("in.txt"))} }}
sinks:
  console: {{ type: stdout, inputs: [in], encoding: raw }}
""")
        stats = self.path("stats.json")
        with open(self.path("stderr"), "wb") as err:
            proc = subprocess.Popen(
                [harness.BIN, "run", "-c", config, "--plugin-dir", harness.PLUGIN_DIR,
                 "--stats-file", stats],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, cwd=self.dir)
            try:
                first = proc.stdout.readline()
                proc.stdout.close()  # like `head -1`
                rc = proc.wait(timeout=120)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        with open(self.path("stderr"), encoding="utf-8", errors="replace") as f:
            stderr = f.read()
        self.assertEqual(first, b"line 0000000 of a file read to its end\n")
        self.assertEqual(rc, 0, f"killed by a signal or failed; stderr:\n{stderr[-3000:]}")
        self.assertIn("reader has closed it", stderr)
        self.assertRegex(stderr, r"sinks\.console: in \d+ out \d+, .*failed \d+")
        with open(stats) as f:
            c = Counters(json.load(f)["counters"])
        self.assertEqual(c["console.events_in"], LINES)
        self.assertGreater(c["console.failed"], 0)
        self.assertEqual(c["console.events_out"] + c["console.failed"], LINES)
        self.assertEqual(c["console.dead_letters"], c["console.failed"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
