"""Config errors: `ingestd validate` and `ingestd run` exit 78 and print every error, exactly, as
`FILE:LINE:COL: message` (FILE as given on the command line), in file order, and never start the
pipeline. Positions are computed from the config text by the test (where the offending key or
value is), not copied from the daemon's output. Also: a good config validates and runs with
${VAR} and ${VAR:-default} substituted, and a generator pipeline with a rate stops cleanly on
SIGTERM.
"""

import os
import re
import signal
import unittest

import harness
from harness import Counters, q

EX_CONFIG = harness.EX_CONFIG
UNSET = "INGESTD_IT_SURELY_UNSET_VAR"
ERROR_LINE = re.compile(r"^(\S+):(\d+):(\d+): ")
# What the window aggregator says it takes, after "unknown metric '...': expected ".
METRICS = ("count, sum(f), min(f), max(f), avg(f), distinct(f), approx_distinct(f), p50(f), "
           "p90(f), p95(f), p99(f), p999(f), percentile(f, q) with 0 < q <= 100, first_seen, "
           "last_seen, first(f) or last(f)")


def at(text, needle, nth=1):
    """1-based "line:col" of the nth occurrence of needle in text."""
    index = -1
    for _ in range(nth):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"{line}:{col}"


def key_of(text, name, nth=1):
    """Position of a block-style mapping key `name:` (the key itself)."""
    return _shift(at(text, f" {name}:", nth), 1)


def _shift(pos, cols):
    line, col = pos.split(":")
    return f"{line}:{int(col) + cols}"


SOURCE = """sources:
  in:
    type: file
    path: ${DIR}/in.txt
"""
PARSER = """parsers:
  events:
    type: json
    inputs: [in]
"""
WINDOW = """aggregates:
  sps:
    type: window
    inputs: [events]
    group_by: [device]
    window: { size: 1s, time: processing }
    metrics: { sps: count }
"""
SINK = """sinks:
  out:
    type: file
    inputs: [sps]
    path: ${DIR}/out.jsonl
"""


def config(*parts):
    return "data_dir: ${DIR}\n" + "".join(parts)


class Case:
    def __init__(self, name, text, expected):
        """expected: [(needle_position "L:C", message)], in the order the daemon must print."""
        self.name = name
        self.text = text
        self.expected = expected


def cases():
    out = []

    text = config(SOURCE, PARSER, """sinks:
  out:
    type: file
    inputs: [events]
    pathh: ${DIR}/out.jsonl
""")
    out.append(Case("unknown_option_and_missing_required", text, [
        (key_of(text, "out"), "sinks.out (file): missing required option 'path'"),
        (key_of(text, "pathh"), "sinks.out (file): unknown option 'pathh' (did you mean 'path'?)"),
    ]))

    text = config(SOURCE, PARSER, WINDOW.replace("size: 1s", "size: fast"), SINK)
    out.append(Case("bad_duration", text, [
        (at(text, "fast"), "aggregates.sps (window): window.size: expected a duration such as "
                           "1s or 250ms, got 'fast'"),
    ]))

    # A schema error in one component does not hide what another's factory reports.
    text = config(SOURCE.replace("type: file", "type: file\n    mode: folow"), PARSER,
                  WINDOW.replace("metrics: { sps: count }", "metrics: { sps: count, top: mode(x) }"),
                  SINK)
    out.append(Case("schema_and_factory_errors_together", text, [
        (at(text, "folow"), "sources.in (file): mode: expected one of read, follow, got "
                            "'folow' (did you mean 'follow'?)"),
        (at(text, "mode(x)"), "aggregates.sps (window): metrics.top: unknown metric 'mode(x)': "
                              f"expected {METRICS}"),
    ]))

    # A schema error in one option does not hide what the factory says about another.
    text = config(SOURCE, PARSER, SINK.replace("[sps]", "[events]")
                  .replace("path: ${DIR}/out.jsonl",
                           "path: ${DIR}/out.jsonl\n    rotate_size: 100\n    rotate_keep: 0"))
    out.append(Case("schema_and_factory_errors_in_one_component", text, [
        (_shift(at(text, "rotate_size: 100"), len("rotate_size: ")),
         "sinks.out (file): rotate_size: must be 0 (no rotation) or at least 4KiB"),
        (_shift(at(text, "rotate_keep: 0"), len("rotate_keep: ")),
         "sinks.out (file): rotate_keep must be >= 1"),
    ]))

    text = config(SOURCE, PARSER, SINK.replace("inputs: [sps]", "inputs: [evnts]"))
    out.append(Case("dangling_input", text, [
        (at(text, "evnts"), "sinks.out (file): input 'evnts' does not exist "
                            "(did you mean 'events'?)"),
    ]))

    text = config("""sources:
  gen:
    type: generatr
    rate: 10
""", PARSER.replace("[in]", "[gen]"), SINK.replace("[sps]", "[events]"))
    out.append(Case("unknown_type", text, [
        (at(text, "generatr"), "sources.gen: unknown source type 'generatr' "
                              "(did you mean 'generator'?); known: file, generator, "
                              "http, kafka, procfs, prometheus_scrape, sse"),
    ]))

    text = config(SOURCE, PARSER, SINK.replace("inputs: [sps]", "inputs: [events]")
                  .replace("${DIR}/out.jsonl", "${" + UNSET + "}/out.jsonl"))
    out.append(Case("unset_variable", text, [
        (at(text, "${" + UNSET), f"sinks.out (file): path: environment variable '{UNSET}' "
                                 f"is not set (write ${{{UNSET}:-default}} to give a default)"),
    ]))

    text = config(SOURCE, """parsers:
  a:
    type: json
    inputs: [in, c]
  b:
    type: json
    inputs: [a]
  c:
    type: json
    inputs: [b]
""", SINK.replace("[sps]", "[c]"))
    out.append(Case("cycle", text, [
        (_shift(at(text, "inputs: [a]"), len("inputs: [")),
         "parsers.b (json): cycle: a -> b -> c -> a"),
    ]))

    text = config(SOURCE, PARSER, SINK.replace("[sps]", "[events]"), """  copy:
    type: file
    inputs: [out]
    path: ${DIR}/copy.jsonl
""")
    out.append(Case("sink_as_input", text, [
        (_shift(at(text, "[out]"), 1),
         "sinks.copy (file): input 'out' is a sink; a sink cannot be an input"),
    ]))

    text = config(SOURCE, PARSER, WINDOW.replace("metrics: { sps: count }",
                                                 "metrics: { sps: median(x) }"), SINK)
    out.append(Case("bad_metric", text, [
        (at(text, "median(x)"), "aggregates.sps (window): metrics.sps: unknown metric "
                                f"'median(x)': expected {METRICS}"),
    ]))

    text = config(SOURCE.replace("    path:", "    mode: tail\n    path:"),
                  PARSER.replace("inputs: [in]", "inputs: [in]\n    max_depth: 100"),
                  SINK.replace("[sps]", "[events]")
                  .replace("type: file", "type: file\n    workers: 2"))
    out.append(Case("bad_enum_range_and_workers", text, [
        (at(text, "tail"), "sources.in (file): mode: expected one of read, follow, got 'tail'"),
        (at(text, "100"), "parsers.events (json): max_depth must be <= 64"),
        (at(text, "2\n"),
         "sinks.out (file): workers must be 1: a file sink runs a single instance"),
    ]))

    text = ("data_dir: ${DIR}\nshutdown_timout: 5s\n"
            + SOURCE
            + PARSER.replace("inputs: [in]", "inputs: [in]\n    strip_prefx: \"data: \"")
            + WINDOW.replace("size: 1s", "size: 10").replace("[events]", "[events, nope]")
            + SINK.replace("[sps]", "[sps, events]")
            .replace("path: ${DIR}/out.jsonl", "path: ${DIR}/out.jsonl\n    fsync: often"))
    out.append(Case("several_errors_in_order", text, [
        (at(text, "shutdown_timout"), "unknown key 'shutdown_timout' (did you mean "
                                      "'shutdown_timeout'?)"),
        (at(text, "strip_prefx"), "parsers.events (json): unknown option 'strip_prefx' "
                                  "(did you mean 'strip_prefix'?)"),
        (at(text, "nope"), "aggregates.sps (window): input 'nope' does not exist"),
        (at(text, "10"), "aggregates.sps (window): window.size: expected a duration such as "
                         "1s or 250ms, got '10' (a unit is required)"),
        (at(text, "often"), "sinks.out (file): fsync: expected one of never, batch, interval, "
                            "got 'often'"),
    ]))

    text = config(SOURCE, PARSER, """sinks:
  out: { type: file, inputs: [events], path: "${DIR}/out.jsonl }
""")
    out.append(Case("yaml_syntax_error", text, None))

    text = config(SOURCE, PARSER.replace("events:", "out:"), SINK.replace("[sps]", "[in]"))
    out.append(Case("duplicate_name", text, [
        (key_of(text, "out", 2), "sinks.out (file): name 'out' is already used by parsers.out"),
    ]))
    return out


class BadConfigTest(harness.IntegrationTestCase):
    def setUp(self):
        super().setUp()
        self.binary, self.plugin_dir = harness.private_install(self.dir)
        self.env = dict(os.environ)
        self.env.pop(UNSET, None)

    def error_lines(self, stderr, file_name):
        return [line for line in stderr.splitlines() if line.startswith(file_name + ":")
                and ERROR_LINE.match(line)]

    def check(self, case, file_arg):
        text = case.text.replace("${DIR}", self.dir)
        expected = [f"{file_arg}:{pos}: {msg}" for pos, msg in case.expected or []]
        self.write_file(f"{case.name}.yaml", text)
        commands = {
            "validate": ["validate", file_arg, "--plugin-dir", self.plugin_dir],
            "run": ["run", "-c", file_arg, "--plugin-dir", self.plugin_dir],
        }
        for command, args in commands.items():
            with self.subTest(case=case.name, command=command):
                p = harness.run_cli(args, cwd=self.dir, env=self.env, timeout=30,
                                    binary=self.binary)
                self.assertEqual(p.returncode, EX_CONFIG, f"stderr:\n{p.stderr}")
                got = self.error_lines(p.stderr, file_arg)
                if case.expected is None:
                    self.assertEqual(len(got), 1, p.stderr)
                    # yaml-cpp marks the line of the unterminated string or the end of input
                    # just after it.
                    last = text.count("\n")
                    self.assertRegex(got[0], rf"^{re.escape(file_arg)}:({last}|{last + 1}):\d+: "
                                             r"YAML syntax error: \S")
                else:
                    self.assertEqual(got, expected, f"full stderr:\n{p.stderr}")
                self.assertFalse(os.path.exists(self.path("out.jsonl")),
                                 "a config with errors must not start the pipeline")

    def test_each_error_class(self):
        for case in cases():
            self.check(case, f"{case.name}.yaml")

    def test_file_named_as_given_absolute(self):
        case = cases()[0]
        self.check(case, self.path(f"{case.name}.yaml"))

    def test_missing_file(self):
        p = harness.run_cli(["validate", "no-such.yaml", "--plugin-dir", self.plugin_dir],
                            cwd=self.dir, timeout=30, binary=self.binary)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no-such.yaml", p.stderr)

    def test_good_config_validates_and_runs_with_substitution(self):
        with open(self.path("in.txt"), "w") as f:
            f.write('{"device":"roku"}\n{"device":"ps4"}\n{"device":"roku"}\n')
        text = config(
            SOURCE, PARSER, WINDOW,
            """sinks:
  out:
    type: file
    inputs: [sps]
    path: ${INGESTD_IT_OUT_DIR}/${INGESTD_IT_SURELY_UNSET_NAME:-counts}.jsonl
""").replace("${DIR}", self.dir)
        self.write_file("good.yaml", text)
        env = dict(self.env, INGESTD_IT_OUT_DIR=self.path("outdir"))
        env.pop("INGESTD_IT_SURELY_UNSET_NAME", None)
        p = harness.run_cli(["validate", "good.yaml", "--plugin-dir", self.plugin_dir],
                            cwd=self.dir, env=env, binary=self.binary)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.error_lines(p.stderr, "good.yaml"), [])
        self.assertFalse(os.path.exists(self.path("outdir")), "validate must not do I/O")
        d = self.run_daemon(text, plugin_dir=self.plugin_dir, env=env, binary=self.binary)
        rows = harness.read_jsonl(self.path("outdir", "counts.jsonl"))
        self.assertEqual(sorted((r["device"], r["sps"]) for r in rows), [("ps4", 1), ("roku", 2)])
        self.assertEqual(Counters(d.stats())["out.events_out"], 2)

    def test_generator_with_rate_stops_on_sigterm(self):
        out_path = self.path("gen.jsonl")
        d = self.start_daemon(f"""
data_dir: {q(self.dir)}
shutdown_timeout: 5s
sources:
  gen: {{ type: generator, rate: 2000, seed: 7 }}
sinks:
  out: {{ type: file, inputs: [gen], path: {q(out_path)} }}
""", plugin_dir=self.plugin_dir, binary=self.binary)
        harness.wait_until(lambda: harness.count_lines(out_path) >= 200 or not d.running(), 30,
                           "generated lines in the output")
        self.assertTrue(d.running(), d.stderr_tail())
        rc, took = d.stop(signal.SIGTERM, timeout=30)
        self.assertEqual(rc, 0, d.stderr_tail())
        self.assertLess(took, 5)
        c = Counters(d.stats())
        lines = harness.read_jsonl(out_path)
        self.assertEqual(c["out.events_out"], len(lines))
        self.assertEqual(c["gen.events"], len(lines))
        self.assert_no_loss(c, [("gen", "out")])
        for rec in lines[:50]:
            self.assertEqual(sorted(rec), ["country", "device", "sev", "time", "title"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
