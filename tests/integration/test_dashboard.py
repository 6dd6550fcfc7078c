"""The dashboard (GET / on the admin listener) in a real browser: Debian's chromium, headless,
driven by playwright-core (tests/integration/dashboard/check.js) over a running pipeline
(generator -> json -> 1 s window per device -> file).

The page must load without a console error, draw rates, queue fill and the aggregator's windows
from the live daemon, with the generator's rate near the rate it was configured with and near
the one computed here from the daemon's own counters, and show a component that a reload
(SIGHUP) adds. The screenshot is kept in the test's directory and copied to
<build>/test-artifacts/dashboard.png.

node, npm and chromium are in scripts/packages.txt: when one is missing the test fails, saying
which, rather than skipping. playwright-core (the version in dashboard/package-lock.json) is
installed with `npm ci` into <build>/test-deps/dashboard, once; node_modules never enters the
source tree.
"""

import filecmp
import json
import os
import shutil
import signal
import subprocess
import threading
import unittest
import urllib.request

import harness
from harness import q

HERE = os.path.dirname(os.path.abspath(__file__))
RATE = 2000  # the generator's events per second
CHROMIUM = os.environ.get("INGESTD_CHROMIUM", "/usr/bin/chromium")
TEMPLATE = '{"device":"{{choice tv,phone,web}}","n":{{int 1 9}}}'


def node_modules():
    """<build>/test-deps/dashboard/node_modules with playwright-core, installed by npm ci from the
    committed lock file when it is missing or the lock file changed."""
    deps = os.path.join(harness.BUILD_DIR, "test-deps", "dashboard")
    os.makedirs(deps, exist_ok=True)
    lock = os.path.join(HERE, "dashboard", "package-lock.json")
    installed_lock = os.path.join(deps, "package-lock.json")
    marker = os.path.join(deps, "node_modules", "playwright-core", "package.json")
    if not (os.path.exists(marker) and os.path.exists(installed_lock)
            and filecmp.cmp(lock, installed_lock, shallow=False)):
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(os.path.join(HERE, "dashboard", name), os.path.join(deps, name))
        npm = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                             cwd=deps, capture_output=True, text=True, timeout=600)
        if npm.returncode != 0:
            raise AssertionError(f"npm ci in {deps} failed:\n{npm.stdout}\n{npm.stderr}")
    return os.path.join(deps, "node_modules")


def status(base):
    with urllib.request.urlopen(base + "/api/v1/status", timeout=10) as r:
        return json.loads(r.read())


def counter(st, name, key="events_out"):
    for c in st["components"]:
        if c["name"] == name:
            return c.get(key, 0), st["uptime_seconds"]
    raise AssertionError(f"no component {name} in the status")


class DashboardTest(harness.IntegrationTestCase):
    def setUp(self):
        super().setUp()
        missing = [what for what, ok in (
            ("node (Debian: nodejs)", shutil.which("node")),
            ("npm", shutil.which("npm")),
            (f"chromium at {CHROMIUM} (Debian: chromium; or set INGESTD_CHROMIUM)",
             os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK))) if not ok]
        if missing:
            self.fail("the dashboard test needs " + ", ".join(missing) +
                      ": they are in scripts/packages.txt (scripts/install-deps.sh)")

    def pipeline(self, extra_sink=""):
        return f"""
data_dir: {q(self.dir)}
sources:
  gen: {{ type: generator, rate: {RATE}, template: {q(TEMPLATE)} }}
parsers:
  events: {{ type: json, inputs: [gen] }}
aggregates:
  win:
    type: window
    inputs: [events]
    group_by: [device]
    window: {{ size: 1s, time: processing }}
    metrics: {{ plays: count, n: sum(n) }}
sinks:
  out: {{ type: file, inputs: [win], path: {q(self.path("out.jsonl"))} }}
{extra_sink}
"""

    def test_page_draws_the_live_pipeline_and_follows_a_reload(self):
        modules = node_modules()
        d = self.start_daemon(self.pipeline(),
                              extra_args=["--bus", "none", "--admin-listen", "127.0.0.1:0"])
        base = f"http://{d.admin_address()}"
        st = status(base)
        self.assertEqual({c["name"]: c["inputs"] for c in st["components"]},
                         {"gen": [], "events": ["gen"], "win": ["events"], "out": ["win"]})

        shot = self.path("dashboard.png")
        env = dict(os.environ, NODE_PATH=modules, CHROMIUM=CHROMIUM)
        node = subprocess.Popen(["node", os.path.join(HERE, "dashboard", "check.js"), base + "/",
                                 shot, "archive"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        # Ends node (it waits at most 45 s per step) should this test stop short.
        killer = threading.Timer(240, node.kill)
        killer.start()
        try:
            # The daemon's own rate over the seconds the page is drawing, for comparison.
            before = counter(status(base), "gen")
            drawn = self.read_phase(node, "drawn")
            after = counter(status(base), "gen")
            measured = (after[0] - before[0]) / (after[1] - before[1])

            drawn_gen = drawn["rates"]["gen"]
            self.assertGreater(measured, RATE * 0.5)
            for rate in (drawn_gen, drawn["table"]["gen"]):
                self.assertGreater(rate, RATE * 0.5, drawn)
                self.assertLess(rate, RATE * 1.5, drawn)
                self.assertLess(abs(rate - measured), RATE * 0.5, (rate, measured))
            self.assertEqual(sorted(drawn["rates"]), ["events", "gen", "out", "win"])
            self.assertEqual(sorted(map(tuple, drawn["edges"])),
                             [("events", "win"), ("gen", "events"), ("win", "out")])
            self.assertEqual(drawn["aggregator"], "win")
            self.assertIn(drawn["field"], ("n", "plays"))
            self.assertGreaterEqual(drawn["charts"]["aggchart"]["series"], 3)  # tv, phone, web
            self.assertGreaterEqual(drawn["paths"], 4)

            # A reload that adds a sink: the page must show it without being reloaded itself.
            with open(d.config_path, "w") as f:
                f.write(self.pipeline(
                    f"  archive: {{ type: file, inputs: [win], path: {q(self.path('a.jsonl'))} }}"))
            d.send(signal.SIGHUP)
            harness.wait_until(lambda: "archive" in [c["name"] for c in status(base)["components"]],
                               30, what="the reload to add archive")
            node.stdin.write("reloaded\n")
            node.stdin.flush()
            done = self.read_phase(node, "done")
            self.assertEqual(done["components"], 5)
            self.assertIn(["win", "archive"], done["edges"])
            errors = self.read_phase(node, "errors")
            node.stdin.close()
            rc = node.wait(60)
        finally:
            killer.cancel()
            if node.poll() is None:
                node.kill()
                node.wait()
            stderr = node.stderr.read()
            for pipe in (node.stdin, node.stdout, node.stderr):
                if not pipe.closed:
                    pipe.close()
        self.assertEqual(errors["errors"], [], "the page met errors")
        self.assertEqual(rc, 0, stderr)
        self.assertTrue(os.path.getsize(shot) > 10_000, "the screenshot is suspiciously small")
        artifacts = os.path.join(harness.BUILD_DIR, "test-artifacts")
        os.makedirs(artifacts, exist_ok=True)
        shutil.copyfile(shot, os.path.join(artifacts, "dashboard.png"))

    def read_phase(self, node, phase):
        """The next JSON line check.js prints, which must be `phase`; its errors line instead
        fails the test with everything check.js said."""
        line = node.stdout.readline()
        if not line:
            node.wait(30)
            self.fail(f"check.js ended before '{phase}' (exit {node.returncode}):\n"
                      f"{node.stderr.read()}")
        msg = json.loads(line)
        if msg["phase"] != phase:
            rest = node.stdout.read() if node.poll() is not None else ""
            self.fail(f"check.js said {msg} before '{phase}'\n{rest}\n{node.stderr.read()}")
        return msg


if __name__ == "__main__":
    unittest.main()
