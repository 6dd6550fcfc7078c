"""Native journal entries: ingestd runs with JOURNAL_STREAM naming its stderr, as under systemd,
against a stand-in for journald's socket (tests/tools/fake_journald.py, in a private mount
namespace); every message must arrive as an entry with the fields operators filter on, and none
on stderr. The real journal is checked by the end-to-end test under systemd.
"""

import json
import os
import shutil
import subprocess
import sys
import unittest

import harness
from harness import q

FAKE_JOURNALD = os.path.join(harness.SOURCE_DIR, "tests", "tools", "fake_journald.py")
COUNT = 500


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare"),
                     "needs root for a private mount namespace")
class JournaldTest(harness.IntegrationTestCase):

    def test_entries_carry_component_kind_and_priority(self):
        out = self.path("out.jsonl")
        config = self.write_file("p.yaml", f"""data_dir: {q(self.path("data"))}
sources:
  gen: {{ type: generator, count: {COUNT}, template: {q('{"seq":{{seq}}}')} }}
sinks:
  out: {{ type: file, inputs: [gen], path: {q(out)} }}
""")
        entries_path, stderr_path = self.path("entries.jsonl"), self.path("stderr")
        cmd = ["unshare", "--mount", "--propagation", "private", "--", sys.executable,
               FAKE_JOURNALD, entries_path, stderr_path, "--", harness.BIN, "run", "-c", config,
               "--plugin-dir", harness.PLUGIN_DIR, "--bus", "none", "--log-level", "debug"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        with open(stderr_path) as f:
            stderr = f.read()
        self.assertEqual(r.returncode, 0, r.stderr + stderr)
        self.assertEqual(harness.count_lines(out), COUNT)
        self.assertEqual(stderr, "", "messages fell back to stderr")

        entries = harness.read_jsonl(entries_path)
        self.assertTrue(entries)
        for e in entries:
            self.assertEqual(e["SYSLOG_IDENTIFIER"], "ingestd", e)
            if "PIPELINE" in e:
                self.assertEqual(e["PIPELINE"], config, e)
            self.assertIn(e["PRIORITY"], {"3", "4", "6", "7"}, e)

        def find(text):
            found = [e for e in entries if text in e["MESSAGE"]]
            self.assertTrue(found, f"no entry with {text!r}: {json.dumps(entries)[:2000]}")
            return found[0]
        sink = find(f"[sinks.out] writing to {out}")
        self.assertEqual((sink["COMPONENT"], sink["KIND"], sink["PRIORITY"]), ("out", "sink", "6"))
        self.assertEqual(sink["PIPELINE"], config)
        source = find("[sources.gen] finished")  # a debug message
        self.assertEqual((source["COMPONENT"], source["KIND"], source["PRIORITY"]),
                         ("gen", "source", "7"))
        daemon = find("running 2 components")
        self.assertNotIn("COMPONENT", daemon)
        self.assertNotIn("KIND", daemon)


if __name__ == "__main__":
    unittest.main()
