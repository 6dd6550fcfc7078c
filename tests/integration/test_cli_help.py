"""What a new user meets first: `--help` and `run --help` list the options of a run, the signals,
the exit codes and the demo default; `validate` says "FILE: ok" on stdout and keeps errors on
stderr; `plugins` plain text carries no Markdown."""

import unittest

import harness

GOOD = "sources:\n  gen: {type: generator, count: 10}\nsinks:\n  out: {type: stdout, inputs: [gen]}\n"


class CliHelpTest(harness.IntegrationTestCase):
    def setUp(self):
        super().setUp()
        self.binary, self.plugin_dir = harness.private_install(self.dir)

    def cli(self, *args):
        return harness.run_cli(list(args), cwd=self.dir, timeout=60, binary=self.binary)

    def validate(self, name):
        return self.cli("validate", name, "--plugin-dir", self.plugin_dir)

    def test_help_lists_run_options_signals_exit_codes_and_the_demo(self):
        for args in (["--help"], ["run", "--help"]):
            with self.subTest(args=args):
                p = self.cli(*args)
                self.assertEqual(p.returncode, 0, p.stderr)
                for option in ("-c", "--config", "--demo", "--stats-file", "--plugin-dir",
                               "--log-level"):
                    self.assertRegex(p.stdout, rf"(^|[\s,]){option}\b", p.stdout)
                for word in ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "second one"):
                    self.assertIn(word, p.stdout)
                for code in ("0", "1", "64", "78"):
                    self.assertRegex(p.stdout, rf"(?m)^\s+{code}\s+\S", p.stdout)
                self.assertIn("demo", p.stdout)

    def test_options_work_with_and_without_the_run_subcommand(self):
        self.write_file("good.yaml", GOOD)
        for args in (["-c", "good.yaml"], ["run", "-c", "good.yaml"]):
            with self.subTest(args=args):
                p = self.cli(*args, "--plugin-dir", self.plugin_dir)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(len(p.stdout.splitlines()), 10, p.stdout)

    def test_validate_says_ok_on_stdout(self):
        self.write_file("good.yaml", GOOD)
        p = self.validate("good.yaml")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"^good\.yaml: ok\b.*\n$")
        self.assertNotIn("good.yaml: ok", p.stderr)

    def test_plugins_plain_text_has_no_markdown(self):
        p = self.cli("plugins", "--plugin-dir", self.plugin_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("`", p.stdout)
        p = self.cli("plugins", "--markdown", "--plugin-dir", self.plugin_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("`", p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
