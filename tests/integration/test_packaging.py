"""Packaging: debian/control's Build-Depends agree with scripts/packages.txt, and a plugin built
out of tree against an ingestd-dev install (cmake --install --component dev) loads into the real
daemon, passing its ABI signature check and exporting only the entry symbol."""

import os
import subprocess
import sys
import unittest

import harness

sys.path.insert(0, os.path.join(harness.SOURCE_DIR, "tests", "packaging"))
import out_of_tree  # noqa: E402

# What cmake/ingestd-plugin.map exports besides the entry symbol (demangled).
ASIO_STATE = (r"^boost::asio::detail::(keyword_tss_ptr<.*>::value_|call_stack<.*>::top_|"
              r"service_base<.*>::id|execution_context_service_base<.*>::id)$")


class PackagingTest(harness.IntegrationTestCase):
    def test_build_depends_come_from_packages_txt(self):
        r = subprocess.run([os.path.join(harness.SOURCE_DIR, "scripts", "build_depends.py"),
                            "--check"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_core_plugins_export_only_the_entry_symbol(self):
        """Besides the entry symbol, only Boost.Asio's process-wide state, which the daemon's
        definitions must replace (cmake/ingestd-plugin.map), and only by a plugin that uses
        Asio."""
        for name in harness.CORE_PLUGIN_FILES:
            with self.subTest(plugin=name):
                symbols = out_of_tree.exported_symbols(os.path.join(harness.PLUGIN_DIR, name))
                self.assertIn("ingestd_plugin_v1", symbols)
                others = [s for s in symbols if s != "ingestd_plugin_v1"]
                if not others:
                    continue
                demangled = subprocess.run(["c++filt"], input="\n".join(others), text=True,
                                           capture_output=True, check=True).stdout.splitlines()
                for symbol in demangled:
                    self.assertRegex(symbol, ASIO_STATE)

    def test_out_of_tree_plugin_builds_against_the_sdk_and_loads(self):
        prefix = self.path("prefix")
        r = subprocess.run(["cmake", "--install", harness.BUILD_DIR, "--component", "dev",
                            "--prefix", prefix], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # ingestd-dev holds the SDK and nothing of the daemon's package.
        self.assertTrue(os.path.isfile(os.path.join(prefix, "include", "ingestd", "plugin.h")))
        self.assertFalse(os.path.exists(os.path.join(prefix, "bin")))

        plugin_dir = out_of_tree.build(prefix, self.dir)
        so = os.path.join(plugin_dir, out_of_tree.SO_NAME)
        self.assertEqual(out_of_tree.exported_symbols(so), ["ingestd_plugin_v1"])

        binary, _ = harness.private_install(self.dir)
        r = harness.run_cli(["plugins", "--plugin-dir", plugin_dir], binary=binary)
        self.assertEqual(r.returncode, 0, r.stderr)
        # The loader's "plugin <path>: refused: <why>" (the docs may say "refused" otherwise).
        self.assertNotIn(": refused:", r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"(?m)^\S.*\bcountdown\b")
        self.assertIn("The first number; the source counts down to 1.", r.stdout)

        # And it runs: the countdown reaches a file sink.
        out = self.path("out.jsonl")
        config = self.write_file("countdown.yaml", f"""
plugin_dirs: [{harness.q(plugin_dir)}]
data_dir: {harness.q(self.path("state"))}
sources:  {{ c: {{ type: countdown, from: 5 }} }}
sinks:    {{ f: {{ type: file, inputs: [c], path: {harness.q(out)} }} }}
""")
        r = harness.run_cli(["run", "-c", config], binary=binary)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(harness.read_lines(out), ["5", "4", "3", "2", "1"])


if __name__ == "__main__":
    unittest.main()
