"""Every pipeline in config/ validates, the embedded demo runs and accounts for every event, and
the components reference in docs/ matches the plugins' schemas."""

import glob
import json
import os
import signal
import unittest

import harness
from harness import Counters, IntegrationTestCase


class ConfigExamplesTest(IntegrationTestCase):
    def env(self):
        env = dict(os.environ)
        env["INGESTD_DATA_DIR"] = self.path("data")
        return env

    def test_every_example_validates(self):
        examples = sorted(glob.glob(os.path.join(harness.SOURCE_DIR, "config", "*.yaml")))
        self.assertIn("demo.yaml", [os.path.basename(p) for p in examples])
        for path in examples:
            with self.subTest(config=os.path.basename(path)):
                r = harness.run_cli(["validate", path, "--plugin-dir", harness.PLUGIN_DIR],
                                    env=self.env())
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn(f"{path}: ok", r.stdout)

    def test_components_reference_is_generated_from_the_schemas(self):
        binary, plugin_dir = harness.private_install(self.dir)
        r = harness.run_cli(["plugins", "--markdown", "--plugin-dir", plugin_dir], binary=binary)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(harness.SOURCE_DIR, "docs", "components.md")) as f:
            self.assertEqual(f.read(), r.stdout,
                             "docs/components.md is stale: regenerate it with "
                             "`build/ingestd plugins --markdown > docs/components.md`")

    def test_embedded_demo_runs_and_accounts_for_every_event(self):
        d = harness.Daemon(self.dir, config_path="", env=self.env())
        d.args = [harness.BIN, "run", "--demo", "--plugin-dir", harness.PLUGIN_DIR,
                  "--stats-file", d.stats_path]
        self.daemons.append(d.start())
        # The first 5 s window closes within at most 5 s of the start.
        harness.wait_until(lambda: harness.count_lines(d.stdout_path) > 0, 15,
                           what="the demo's first window on stdout")
        rc, _ = d.stop(signal.SIGINT)
        self.assertEqual(rc, 0, d.stderr_tail())
        self.assertIn("running the embedded demo pipeline", d.stderr())

        printed = harness.read_jsonl(d.stdout_path)
        archived = harness.read_jsonl(os.path.join(self.path("data"), "starts.jsonl"))
        self.assertEqual(printed, archived)
        c = Counters(d.stats())
        generated = c["plays.events"]
        self.assertGreater(generated, 0)
        self.assertEqual(c["events.parsed"], generated)
        # Every generated event is a counted start or was filtered out (sev != success).
        self.assertEqual(sum(row["starts"] for row in printed) + c["starts.filtered"], generated)
        for row in printed:
            self.assertEqual(set(row), {"window_start", "window_end", "device", "starts",
                                        "titles", "countries"})
            self.assertIn(row["device"], {"xbox_one", "ps4", "roku", "apple_tv"})


if __name__ == "__main__":
    unittest.main()
