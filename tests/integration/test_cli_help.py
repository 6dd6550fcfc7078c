"""What a new user meets first: `--help` and `run --help` list the options of a run, the signals,
the exit codes and the demo default; `validate` says "FILE: ok" on stdout and keeps errors on
stderr; a directory, a file in another encoding, a tab in the indentation and an integer out of
range each get an error that names the cause, with its position; `plugins` plain text carries no
Markdown."""

import os
import unittest

import harness

EX_CONFIG = harness.EX_CONFIG
GOOD = "sources:\n  gen: {type: generator, count: 10}\nsinks:\n  out: {type: stdout, inputs: [gen]}\ndata_dir: state\n"


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

    def expect_error(self, name, line):
        p = self.validate(name)
        self.assertEqual(p.returncode, EX_CONFIG, p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertIn(line, p.stderr.splitlines(), p.stderr)

    def test_a_directory_is_named_as_such(self):
        os.mkdir(self.path("conf.d"))
        self.expect_error("conf.d", "conf.d: cannot read: it is a directory, not a file")

    def test_encoding_errors_have_a_position(self):
        with open(self.path("utf16.yaml"), "wb") as f:
            f.write(GOOD.encode("utf-16"))  # with its byte order mark
        self.expect_error("utf16.yaml", "utf16.yaml:1:1: the file is UTF-16 (little-endian) text "
                                        "(it starts with that byte order mark); save it as UTF-8")
        with open(self.path("latin1.yaml"), "wb") as f:
            f.write(GOOD.replace("gen", "g\u00e9n").encode("latin-1"))
        self.expect_error("latin1.yaml", "latin1.yaml:2:4: invalid UTF-8 (byte 0xE9): the file "
                                         "must be UTF-8 text")

    def test_a_tab_in_the_indentation_is_named(self):
        self.write_file("tabs.yaml", GOOD.replace("  gen:", "\tgen:"))
        self.expect_error("tabs.yaml", "tabs.yaml:2:1: YAML syntax error: a tab character indents "
                                       "this line; YAML indents with spaces only")

    def test_an_integer_too_large_is_out_of_range(self):
        self.write_file("big.yaml", "io_threads: 99999999999999999999\n" + GOOD)
        self.expect_error("big.yaml", "big.yaml:1:13: io_threads: 99999999999999999999 is out of "
                                      "range: expected an integer from 1 to 1024")

    def test_plugins_plain_text_has_no_markdown(self):
        p = self.cli("plugins", "--plugin-dir", self.plugin_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("`", p.stdout)
        p = self.cli("plugins", "--markdown", "--plugin-dir", self.plugin_dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("`", p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
