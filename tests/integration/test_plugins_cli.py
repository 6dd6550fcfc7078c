"""`ingestd plugins` lists every component type found in the plugin directory with its kind, its
plugin's version and each option; `ingestd --version` prints the project version."""

import os
import re
import unittest

import harness


KIND_WORDS = {
    "source": ("source",),
    "parser": ("parser", "parse"),
    "aggregate": ("aggregate", "aggregator"),
    "sink": ("sink",),
}

# kind, type, options: what the seven core types must offer (their briefs' option tables).
EXPECTED = [
    ("source", "file", ["path", "mode", "poll_interval", "start_at", "max_line"]),
    ("source", "generator", ["template", "rate", "count", "seed"]),
    ("source", "kafka", ["brokers", "group", "topics", "topic_pattern", "start", "commit_interval",
                         "rebalance_timeout", "librdkafka"]),
    ("parser", "json", ["strip_prefix", "on_error", "time_field", "time_format", "max_depth"]),
    ("aggregate", "window", ["window", "where", "group_by", "metrics"]),
    ("sink", "file", ["path", "encoding", "rotate_size", "rotate_keep", "fsync", "fsync_interval"]),
    ("sink", "stdout", ["encoding"]),
    ("sink", "http", ["url", "format", "encoding", "gzip", "headers", "timeout", "max_body_size"]),
    ("sink", "kafka", ["brokers", "topic", "key", "encoding", "compression", "delivery_timeout",
                       "metadata_timeout", "create_topic", "librdkafka"]),
]


def project_version():
    with open(os.path.join(harness.SOURCE_DIR, "CMakeLists.txt")) as f:
        m = re.search(r"project\(\s*ingestd\s+VERSION\s+([0-9.]+)", f.read())
    assert m, "no project version in CMakeLists.txt"
    return m.group(1)


def header_pattern(kind, type_name):
    kinds = "|".join(KIND_WORDS[kind])
    # A header line is not indented and names the kind and the type, in either order.
    return re.compile(rf"^(?!\s).*\b({kinds})\b.*\b{type_name}\b"
                      rf"|^(?!\s).*\b{type_name}\b.*\b({kinds})\b", re.IGNORECASE)


class PluginsCliTest(harness.IntegrationTestCase):
    def setUp(self):
        super().setUp()
        self.binary, self.plugin_dir = harness.private_install(self.dir)

    def test_version(self):
        p = harness.run_cli(["--version"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(project_version(), p.stdout)

    def test_lists_every_type_with_its_options(self):
        p = harness.run_cli(["plugins", "--plugin-dir", self.plugin_dir], binary=self.binary)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        headers = []
        for kind, type_name, _ in EXPECTED:
            pattern = header_pattern(kind, type_name)
            found = [i for i, line in enumerate(lines) if pattern.search(line)]
            self.assertEqual(len(found), 1,
                             f"one header line for {kind} {type_name} expected:\n{p.stdout}")
            headers.append(found[0])
        ordered = sorted(headers)
        for (kind, type_name, options), start in zip(EXPECTED, headers):
            nxt = next((h for h in ordered if h > start), len(lines))
            section = "\n".join(lines[start:nxt])
            for option in options:
                self.assertRegex(section, rf"(^|\W){re.escape(option)}\W",
                                 f"{kind} {type_name} lacks option {option}:\n{section}")
            self.assertRegex(section, r"\d+\.\d+\.\d+", f"no plugin version for {type_name}")

    def test_empty_plugin_dir_lists_no_types(self):
        for name in os.listdir(self.plugin_dir):
            os.remove(os.path.join(self.plugin_dir, name))
        p = harness.run_cli(["plugins", "--plugin-dir", self.plugin_dir], binary=self.binary)
        self.assertEqual(p.returncode, 0, p.stderr)
        for kind, type_name, _ in EXPECTED:
            self.assertIsNone(header_pattern(kind, type_name).search(p.stdout), p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
