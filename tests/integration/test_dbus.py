"""The D-Bus API and ingestctl, on a private dbus-daemon that runs with the project's real policy
file (systemd/org.ingestd.Daemon1.conf) under a system bus's default policy.

The daemon runs a generator at a steady rate into a file; "keeps running" means that file keeps
growing. Expected values come from the test's own files: the version from CMakeLists.txt, error
positions from where the test put the bad key.
"""

import json
import os
import re
import signal
import subprocess
import unittest

import harness
from harness import DBUS_NAME, DBUS_PATH, EX_UNAVAILABLE, ingestctl, q, wait_until

IFACE = DBUS_NAME


def project_version():
    with open(os.path.join(harness.SOURCE_DIR, "CMakeLists.txt")) as f:
        return re.search(r"project\(ingestd VERSION ([0-9.]+)", f.read()).group(1)


TEMPLATE = '{"seq":{{seq}}}'


def pipeline(out_path, data_dir):
    return f"""data_dir: {q(data_dir)}
sources:
  gen: {{ type: generator, rate: 200, template: {q(TEMPLATE)} }}
sinks:
  out: {{ type: file, inputs: [gen], path: {q(out_path)} }}
"""


# A pipeline whose sink has a misspelt option on line 5, column 38 (1-based).
BROKEN_LINE = 5


def broken_pipeline(out_path, data_dir):
    text = pipeline(out_path, data_dir).replace(" path: ", " pathh: ")
    line = text.split("\n")[BROKEN_LINE - 1]
    assert "pathh" in line, text
    return text, line.index("pathh") + 1


class DbusTestCase(harness.IntegrationTestCase):

    def setUp(self):
        super().setUp()
        self.bus = harness.PrivateBus(self.dir).start()
        self.addCleanup(self.bus.stop)
        self.out = self.path("out.jsonl")

    def start(self, extra_args=(), text=None):
        d = self.start_daemon(text or pipeline(self.out, self.path("data")),
                              extra_args=["--bus", self.bus.address] + list(extra_args))
        wait_until(lambda: self.bus.name_has_owner() or not d.running(), 20,
                   what="ingestd to own its D-Bus name")
        self.assertTrue(d.running(), d.stderr_tail())
        wait_until(lambda: harness.count_lines(self.out) > 0, 20, what="first output")
        return d

    def call(self, member, signature="", *args, user=None):
        """busctl call ... --json=short; the CompletedProcess and the parsed reply data (or None)."""
        r = self.bus.busctl("--json=short", "call", DBUS_NAME, DBUS_PATH, IFACE, member,
                            *([signature] + list(args) if signature else []), user=user)
        data = json.loads(r.stdout)["data"] if r.returncode == 0 and r.stdout.strip() else None
        return r, data

    def get_property(self, name, user=None):
        r = self.bus.busctl("--json=short", "get-property", DBUS_NAME, DBUS_PATH, IFACE, name,
                            user=user)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)["data"]

    def assert_keeps_running(self, d):
        before = harness.count_lines(self.out)
        wait_until(lambda: harness.count_lines(self.out) > before + 20, 20,
                   what="the pipeline to keep producing")
        self.assertTrue(d.running(), d.stderr_tail())


class ApiTest(DbusTestCase):

    def test_introspection_lists_the_api(self):
        self.start()
        r = self.bus.busctl("introspect", DBUS_NAME, DBUS_PATH, IFACE)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = {line.split()[0]: line.split()[1:3] for line in r.stdout.splitlines()[1:]
                if line.strip()}
        expected = {
            ".Reload": ["method", "-"], ".Validate": ["method", "s"],
            ".GetStatus": ["method", "-"], ".SetLogLevel": ["method", "s"],
            ".Version": ["property", "s"], ".ConfigPath": ["property", "s"],
            ".State": ["property", "s"], ".LastReload": ["property", "s"],
            ".Reloaded": ["signal", "bs"], ".BreakerChanged": ["signal", "ss"],
        }
        for member, (kind, signature) in expected.items():
            self.assertIn(member, rows, r.stdout)
            self.assertEqual(rows[member], [kind, signature], member)

    def test_status_and_properties(self):
        d = self.start()
        r, data = self.call("GetStatus")
        self.assertEqual(r.returncode, 0, r.stderr)
        status = json.loads(data[0])
        self.assertEqual(status["state"], "running")
        self.assertEqual(status["version"], project_version())
        self.assertEqual(status["config_path"], d.config_path)
        names = sorted(c["name"] if isinstance(c, dict) else c for c in status["components"])
        self.assertEqual(names, ["gen", "out"])

        self.assertEqual(self.get_property("Version"), project_version())
        self.assertEqual(self.get_property("ConfigPath"), d.config_path)
        self.assertEqual(self.get_property("State"), "running")
        self.assertIn("ok", json.loads(self.get_property("LastReload")))

    def test_breaker_changes_are_signalled_and_shown_in_status(self):
        # A second sink that always fails (/dev/full): its breaker opens after 2 failures and
        # turns half-open 300 ms later, again and again; the file sink's stays closed.
        text = pipeline(self.out, self.path("data")) + """  broken:
    type: file
    inputs: [gen]
    path: /dev/full
    retry: { initial: 10ms, max: 20ms }
    breaker: { failures: 2, open_for: 300ms }
"""
        self.start(text=text)
        seen = self.monitor()

        def changes():
            return [m["payload"]["data"] for m in seen("BreakerChanged") or []]
        wait_until(lambda: ["broken", "half_open"] in changes(), 20,
                   what="BreakerChanged to half_open")
        self.assertIn(["broken", "open"], changes())
        self.assertTrue(all(sink == "broken" for sink, _ in changes()), changes())
        self.assertEqual(seen("BreakerChanged")[0]["payload"]["type"], "ss")
        states = [state for _, state in changes()]
        for before, after in zip(states, states[1:]):  # never closed: every probe fails
            self.assertEqual({before, after}, {"open", "half_open"}, states)

        def breakers():
            status = json.loads(self.call("GetStatus")[1][0])
            return {c["name"]: c.get("breaker") for c in status["components"]}
        wait_until(lambda: breakers()["broken"] in ("open", "half_open"), 10,
                   what="GetStatus to show the open breaker")
        self.assertEqual(breakers()["out"], "closed")
        self.assertIsNone(breakers()["gen"])
        r = ingestctl("status", address=self.bus.address)
        self.assertRegex(r.stdout, r"broken.*\(breaker (open|half_open)\)")

    def test_set_log_level_changes_what_is_logged(self):
        d = self.start()
        r, _ = self.call("SetLogLevel", "s", "loud")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("unknown log level", r.stderr)
        # At info, the components' debug line at their end ("finished") is not logged; at debug
        # it is.
        r, _ = self.call("SetLogLevel", "s", "debug")
        self.assertEqual(r.returncode, 0, r.stderr)
        rc, _ = d.stop(signal.SIGTERM)
        self.assertEqual(rc, 0, d.stderr_tail())
        self.assertRegex(d.stderr(), r" debug +\[sources\.gen\] finished")

    def test_level_names_are_printed_in_full(self):
        d = self.start()
        d.send(signal.SIGHUP)  # a reload's result is logged
        wait_until(lambda: "SIGHUP" in d.stderr() or "reload" in d.stderr(), 10,
                   what="the reload's log line")
        rc, _ = d.stop(signal.SIGTERM)
        self.assertEqual(rc, 0, d.stderr_tail())
        levels = set(re.findall(r"^\S+ (\S+) ", d.stderr(), re.M))
        self.assertTrue(levels and levels <= {"trace", "debug", "info", "warning", "error"},
                        levels)

    def test_validate_good_and_bad_files(self):
        self.start()
        good = self.write_file("good.yaml", pipeline(self.path("o2.jsonl"), self.path("d2")))
        r, data = self.call("Validate", "s", good)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(data, [True, []])

        text, col = broken_pipeline(self.path("o3.jsonl"), self.path("d3"))
        bad = self.write_file("bad.yaml", text)
        r, data = self.call("Validate", "s", bad)
        self.assertEqual(r.returncode, 0, r.stderr)
        ok, errors = data
        self.assertFalse(ok)
        self.assertTrue(any(e.startswith(f"{bad}:{BROKEN_LINE}:{col}: ") for e in errors), errors)

        r, _ = self.call("Validate", "s", "relative.yaml")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("absolute path", r.stderr)

    def test_reload_of_a_broken_file_is_refused_and_the_pipeline_runs_on(self):
        d = self.start()
        text, col = broken_pipeline(self.out, self.path("data"))
        with open(d.config_path, "w") as f:
            f.write(text)
        r, data = self.call("Reload")
        self.assertEqual(r.returncode, 0, r.stderr)
        ok, message = data
        self.assertFalse(ok)
        # The first error (here: the required option is missing) and how many more.
        self.assertIn(f"{d.config_path}:{BROKEN_LINE}:", message)
        last = json.loads(self.get_property("LastReload"))
        self.assertFalse(last["ok"])
        self.assertTrue(any(e.startswith(f"{d.config_path}:{BROKEN_LINE}:{col}: ")
                            for e in last["errors"]), last)
        # ... and logged, every one with its position.
        self.assertIn(f"{d.config_path}:{BROKEN_LINE}:{col}: ", d.stderr())
        self.assert_keeps_running(d)

    def monitor(self):
        """Starts `busctl monitor` on the bus; returns seen(member): the messages so far."""
        monitor_log = self.path("monitor.jsonl")
        with open(monitor_log, "wb") as out:
            monitor = subprocess.Popen(
                ["busctl", f"--address={self.bus.address}", "--json=short", "monitor"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.addCleanup(lambda: (monitor.kill(), monitor.wait()))

        def seen(member):
            try:
                with open(monitor_log) as f:
                    msgs = [json.loads(l) for l in f if l.startswith("{")]
            except (FileNotFoundError, json.JSONDecodeError):
                return None
            return [m for m in msgs if m.get("member") == member] or None
        # The monitor is listening once it sees a call of ours.
        wait_until(lambda: self.call("GetStatus")[0].returncode == 0 and seen("GetStatus"), 10,
                   what="busctl monitor to listen")
        return seen

    def test_a_reload_is_signalled(self):
        d = self.start()
        seen = self.monitor()
        d.send(signal.SIGHUP)
        reloaded = wait_until(lambda: seen("Reloaded"), 20, what="the Reloaded signal")[0]
        self.assertEqual(reloaded["type"], "signal")
        self.assertEqual(reloaded["path"], DBUS_PATH)
        self.assertEqual(reloaded["payload"]["type"], "bs")
        ok, message = reloaded["payload"]["data"]
        last = json.loads(self.get_property("LastReload"))
        self.assertEqual((ok, message), (last["ok"], last["message"]))

        def last_reload_changed():
            return [m for m in seen("PropertiesChanged") or []
                    if "LastReload" in json.dumps(m["payload"])]
        wait_until(last_reload_changed, 10, what="PropertiesChanged for LastReload")

    def test_unreachable_bus_is_one_warning(self):
        d = self.start_daemon(pipeline(self.out, self.path("data")),
                              extra_args=["--bus", "unix:path=" + self.path("no-such-socket")])
        wait_until(lambda: harness.count_lines(self.out) > 0, 20, what="first output")
        rc, _ = d.stop(signal.SIGTERM)
        self.assertEqual(rc, 0, d.stderr_tail())
        dbus_lines = [l for l in d.stderr().splitlines() if "D-Bus" in l]
        self.assertEqual(len(dbus_lines), 1, dbus_lines)
        self.assertIn(" warning ", dbus_lines[0])
        self.assertIn("no-such-socket", dbus_lines[0])


class IngestctlTest(DbusTestCase):

    def test_status(self):
        d = self.start()
        r = ingestctl("status", address=self.bus.address)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"state: +running")
        self.assertIn(d.config_path, r.stdout)
        self.assertIn(project_version(), r.stdout)
        self.assertRegex(r.stdout, r"source +gen +generator")
        self.assertRegex(r.stdout, r"sink +out +file")
        self.assertRegex(r.stdout, r"last reload: +none")

        r = ingestctl("--json", "status", address=self.bus.address)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["state"], "running")

    def test_validate(self):
        self.start()
        good = self.write_file("good.yaml", pipeline(self.path("o2.jsonl"), self.path("d2")))
        r = ingestctl("validate", good, address=self.bus.address)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), f"{good}: ok")

        text, col = broken_pipeline(self.path("o3.jsonl"), self.path("d3"))
        self.write_file("bad.yaml", text)
        # A relative path is the caller's: ingestctl sends the full one.
        r = harness.run_as(["sh", "-c", f'cd "{self.dir}" && exec "$0" --bus "$1" validate bad.yaml',
                            harness.INGESTCTL, self.bus.address])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"{self.path('bad.yaml')}:{BROKEN_LINE}:{col}: ", r.stderr)

        r = ingestctl("--json", "validate", self.path("bad.yaml"), address=self.bus.address)
        self.assertEqual(r.returncode, 1, r.stderr)
        doc = json.loads(r.stdout)
        self.assertFalse(doc["ok"])
        self.assertTrue(doc["errors"])

    def test_reload_of_a_broken_file_exits_1_with_every_error(self):
        d = self.start()
        text, col = broken_pipeline(self.out, self.path("data"))
        with open(d.config_path, "w") as f:
            f.write(text)
        r = ingestctl("reload", address=self.bus.address)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"{d.config_path}:{BROKEN_LINE}:{col}: ", r.stderr)
        r = ingestctl("--json", "reload", address=self.bus.address)
        self.assertEqual(r.returncode, 1)
        self.assertFalse(json.loads(r.stdout)["ok"])
        self.assert_keeps_running(d)
        r = ingestctl("status", address=self.bus.address)
        self.assertRegex(r.stdout, r"last reload: +failed at ")

    def test_reload_applies_a_valid_file(self):
        d = self.start()
        out2 = self.path("out2.jsonl")
        with open(d.config_path, "a") as f:
            f.write(f"  out2: {{ type: file, inputs: [gen], path: {q(out2)} }}\n")
        r = ingestctl("reload", address=self.bus.address)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(r.stdout.startswith(f"reloaded {d.config_path}"), r.stdout)
        wait_until(lambda: harness.count_lines(out2) > 0, 20, what="the added sink's output")
        r = ingestctl("status", address=self.bus.address)
        self.assertRegex(r.stdout, r"sink +out2 +file")
        self.assertRegex(r.stdout, r"last reload: +ok at ")
        self.assert_keeps_running(d)

    def test_log_level(self):
        d = self.start()
        r = ingestctl("log-level", "debug", address=self.bus.address)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = ingestctl("--json", "status", address=self.bus.address)
        self.assertEqual(json.loads(r.stdout).get("log_level", "debug"), "debug")
        r = ingestctl("log-level", "loud", address=self.bus.address)
        self.assertEqual(r.returncode, 64, r.stdout + r.stderr)
        self.assertIn("unknown log level", r.stderr)
        rc, _ = d.stop(signal.SIGTERM)
        self.assertEqual(rc, 0)
        self.assertRegex(d.stderr(), r" debug +\[sources\.gen\] finished")

    def test_aggregates_shows_the_open_windows_of_a_running_window(self):
        text = f"""data_dir: {q(self.path("data"))}
sources:
  gen: {{ type: generator, rate: 200, template: '{{"seq":{{{{seq}}}},"kind":"a"}}' }}
parsers:
  events: {{ type: json, inputs: [gen] }}
aggregates:
  per_hour:
    type: window
    inputs: [events]
    window: {{ size: 1h }}
    group_by: [kind]
    metrics: {{ n: count, top: max(seq) }}
sinks:
  out: {{ type: file, inputs: [gen], path: {q(self.out)} }}
  windows: {{ type: file, inputs: [per_hour], path: {q(self.path("windows.jsonl"))} }}
"""
        self.start(text=text)

        def rows(*args):
            r = ingestctl("aggregates", "per_hour", *args, address=self.bus.address)
            self.assertEqual(r.returncode, 0, r.stderr)
            return [json.loads(line) for line in r.stdout.splitlines()]

        def live():
            got = rows()
            return got if got and got[-1]["state"] == "open" and got[-1]["n"] > 50 else None

        first = wait_until(live, 20, what="an open window with events")
        row = first[-1]
        self.assertEqual(row["kind"], "a")
        # Every event of the generator so far, in order: seq 0..n-1.
        self.assertEqual(row["top"], row["n"] - 1)
        # Live: a later look sees more, and the window is not written before it closes.
        wait_until(lambda: rows()[-1]["n"] > row["n"] + 50, 20, what="the window to grow")
        self.assertEqual(harness.count_lines(self.path("windows.jsonl")), 0)

        self.assertEqual(len(rows("--where", "kind=a")), len(first))
        self.assertEqual(rows("--where", "kind=b"), [])
        r = ingestctl("--json", "aggregates", "per_hour", address=self.bus.address)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)[-1]["kind"], "a")
        for name in ("nope", "gen"):  # no such component; not an aggregator
            r = ingestctl("aggregates", name, address=self.bus.address)
            self.assertEqual(r.returncode, 64, r.stdout + r.stderr)
            self.assertIn(f"'{name}'", r.stderr)
        r = ingestctl("aggregates", "per_hour", "--where", "kind", address=self.bus.address)
        self.assertEqual(r.returncode, 64, r.stdout + r.stderr)

    def test_no_daemon_on_the_bus_exits_69_naming_the_bus(self):
        r = ingestctl("status", address=self.bus.address)
        self.assertEqual(r.returncode, EX_UNAVAILABLE, r.stdout + r.stderr)
        self.assertIn(self.bus.address, r.stderr)
        missing = "unix:path=" + self.path("no-such-socket")
        r = ingestctl("reload", address=missing)
        self.assertEqual(r.returncode, EX_UNAVAILABLE, r.stdout + r.stderr)
        self.assertIn(missing, r.stderr)


@unittest.skipUnless(os.geteuid() == 0, "needs root to run callers as another user")
class PolicyTest(DbusTestCase):
    USER = "nobody"

    def test_unprivileged_caller_may_read_but_not_change(self):
        self.start()
        r, data = self.call("GetStatus", user=self.USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(data[0])["state"], "running")
        self.assertEqual(self.get_property("State", user=self.USER), "running")
        r = self.bus.busctl("introspect", DBUS_NAME, DBUS_PATH, user=self.USER)
        self.assertEqual(r.returncode, 0, r.stderr)

        for member, args in [("Reload", []), ("SetLogLevel", ["s", "debug"]),
                             ("Validate", ["s", "/etc/passwd"]),
                             ("GetAggregates", ["sa{ss}", "out", "0"])]:
            r, _ = self.call(member, *args, user=self.USER)
            self.assertNotEqual(r.returncode, 0, member)
            self.assertIn("Access denied", r.stderr, member)

        r = ingestctl("reload", address=self.bus.address, user=self.USER)
        self.assertEqual(r.returncode, 77, r.stdout + r.stderr)
        self.assertIn("permission denied", r.stderr)
        r = ingestctl("status", address=self.bus.address, user=self.USER)
        self.assertEqual(r.returncode, 0, r.stderr)

        # root, for contrast, is allowed
        r, _ = self.call("SetLogLevel", "s", "info")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_only_root_or_the_daemon_user_may_own_the_name(self):
        r = self.bus.busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                            "org.freedesktop.DBus", "RequestName", "su", DBUS_NAME, "0",
                            user=self.USER)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("Access denied", r.stderr)


if __name__ == "__main__":
    unittest.main()
