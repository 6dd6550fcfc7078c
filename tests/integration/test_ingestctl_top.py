"""`ingestctl top` against the real daemon on a private dbus-daemon (test_dbus.py's set-up).

The daemon runs generator (RATE events/s) -> json -> file. The expected rates come from the
generator's configured rate; the band is broad because the two samples are one interval apart on
a shared machine, and the check is that the numbers are sane, not that the clock is exact.
"""

import json
import os
import pty
import re
import select
import signal
import time
import unittest

import harness
from harness import EX_UNAVAILABLE, ingestctl, q
from test_dbus import DbusTestCase

RATE = 500
TEMPLATE = '{"seq":{{seq}},"device":"{{choice a,b}}"}'
ESC = "\x1b"


def pipeline(out_path, data_dir):
    return f"""data_dir: {q(data_dir)}
sources:
  gen: {{ type: generator, rate: {RATE}, template: {q(TEMPLATE)} }}
parsers:
  events: {{ type: json, inputs: [gen] }}
sinks:
  out: {{ type: file, inputs: [events], path: {q(out_path)} }}
"""


def number(text):
    """A number as top prints it: 12, 2.5, 12.3k, 4.6M."""
    scale = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    if text[-1] in scale:
        return float(text[:-1]) * scale[text[-1]]
    return float(text)


def rows(stdout):
    """{name: [kind, type, state, in/s, out/s, queue, drops, errors]} from the components' table."""
    lines = stdout.splitlines()
    header = next(i for i, l in enumerate(lines) if l.startswith("NAME "))
    out = {}
    for line in lines[header + 1:]:
        if not line.strip():
            break
        words = line.split()
        out[words[0]] = words[1:]
    return out


class TopTest(DbusTestCase):

    def start(self):
        return super().start(text=pipeline(self.out, self.path("data")))

    def test_once_prints_every_component_with_its_rates(self):
        d = self.start()
        started = time.monotonic()
        r = ingestctl("top", "--once", "--interval", "1", address=self.bus.address, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertGreaterEqual(time.monotonic() - started, 1.0, "two samples, one interval apart")
        self.assertNotIn(ESC, r.stdout, "no escapes when stdout is not a terminal")
        for line in r.stdout.splitlines():
            self.assertLessEqual(len(line), 80, line)
        self.assertRegex(r.stdout.splitlines()[0], r"^ingestd \S+  running  up \d+s  pid \d+")
        config = r.stdout.splitlines()[1]  # the path, cut to 80 columns ("~" at the end) if long
        self.assertTrue(f"config: {d.config_path}".startswith(config.rstrip("~")), config)
        self.assertIn("last reload: none", r.stdout)

        table = rows(r.stdout)
        self.assertEqual(list(table), ["gen", "events", "out"], r.stdout)  # pipeline order
        self.assertEqual(table["gen"][:3], ["src", "generator", "running"])
        self.assertEqual(table["events"][:3], ["parse", "json", "running"])
        self.assertEqual(table["out"][:3], ["sink", "file", "running"])
        self.assertEqual(table["gen"][3], "-", "a source has no input")
        self.assertEqual(table["gen"][5], "-", "a source has no queue")
        gen_out = number(table["gen"][4])
        self.assertTrue(RATE * 0.5 <= gen_out <= RATE * 1.5, f"generator {gen_out}/s\n{r.stdout}")
        for name in ("events", "out"):
            events_in, events_out = number(table[name][3]), number(table[name][4])
            self.assertTrue(RATE * 0.3 <= events_in <= RATE * 2, f"{name} in\n{r.stdout}")
            self.assertTrue(RATE * 0.3 <= events_out <= RATE * 2, f"{name} out\n{r.stdout}")
            fill = table[name][5]
            self.assertRegex(fill, r"^\d+%$")
            self.assertLessEqual(int(fill[:-1]), 100)
        for name in table:
            self.assertEqual(table[name][6:], ["0", "0"], f"{name}: no drops, no errors")

        sinks = r.stdout.split("\nSINK ")[1].splitlines()
        sink = sinks[1].split()
        self.assertEqual(sink[:3], ["out", "closed", "-"], r.stdout)
        self.assertRegex(sink[3], r"^(-|\d+(\.\d)?([KMG]i)?B)$", "spool bytes")

    def test_json_snapshot(self):
        self.start()
        r = ingestctl("--json", "top", "--once", "--interval", "1", address=self.bus.address,
                      timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        snap = json.loads(r.stdout)
        self.assertEqual(snap["state"], "running")
        self.assertEqual(snap["interval_seconds"], 1.0)
        by_name = {c["name"]: c for c in snap["components"]}
        gen = by_name["gen"]
        self.assertIsNone(gen["events_in_per_second"])
        self.assertIsNone(gen["queue_fill"])
        self.assertTrue(RATE * 0.5 <= gen["events_out_per_second"] <= RATE * 1.5, gen)
        self.assertGreater(by_name["out"]["events_in_per_second"], 0)
        self.assertEqual(by_name["out"]["breaker"], "closed")
        self.assertEqual((by_name["out"]["dropped"], by_name["out"]["errors"]), (0, 0))

    def test_status_carries_queues_states_and_counters(self):
        self.start()
        r = ingestctl("--json", "status", address=self.bus.address)
        self.assertEqual(r.returncode, 0, r.stderr)
        by_name = {c["name"]: c for c in json.loads(r.stdout)["components"]}
        self.assertNotIn("queue", by_name["gen"])
        self.assertIn("events", by_name["gen"]["counters"])  # the generator's own counter
        for name in ("events", "out"):
            queue = by_name[name]["queue"]
            self.assertGreater(queue["max_batches"], 0)
            self.assertGreater(queue["max_bytes"], 0)
            self.assertLessEqual(queue["batches"], queue["max_batches"])
            # Read a moment apart from events_in, so not necessarily equal to it.
            self.assertLessEqual(by_name[name]["counters"]["events_in"],
                                 by_name[name]["events_in"])
        for c in by_name.values():
            self.assertEqual(c["state"], "running")

    def live(self, end):
        """Runs `ingestctl top` on a pty until two screens are drawn, calls end(pid, fd), and
        returns its exit code and all it wrote once it has given the terminal back."""
        pid, fd = pty.fork()
        if pid == 0:  # the child: ingestctl on the pty
            try:
                os.execv(harness.INGESTCTL, [harness.INGESTCTL, "--bus", self.bus.address, "top",
                                             "--interval", "0.2"])
            finally:
                os._exit(127)
        output = b""

        def read_until(pattern, timeout=15):
            nonlocal output
            deadline = time.monotonic() + timeout
            while not re.search(pattern, output) and time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if ready:
                    try:
                        output += os.read(fd, 65536)
                    except OSError:  # the child has closed the pty
                        break
            return re.search(pattern, output)

        status = None
        try:
            # Two screens: the second has rates.
            self.assertTrue(read_until(rb"(?s)\x1b\[H.*\x1b\[H.*gen +src +generator"),
                            output[-2000:])
            end(pid, fd)
            self.assertTrue(read_until(rb"\x1b\[\?1049l"), output[-500:])
            read_until(rb"\n$", timeout=2)  # a message after the screen is given back
            _, status = os.waitpid(pid, 0)
        finally:
            if status is None:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            os.close(fd)
        self.assertTrue(output.startswith(b"\x1b[?1049h"), output[:100])
        self.assertIn(b"\x1b[?25h", output, "the cursor is shown again")
        return os.waitstatus_to_exitcode(status), output

    def test_live_view_gives_the_terminal_back_on_q_and_on_sigterm(self):
        self.start()
        rc, _ = self.live(lambda pid, fd: os.write(fd, b"q"))
        self.assertEqual(rc, 0)
        rc, _ = self.live(lambda pid, fd: os.kill(pid, signal.SIGTERM))
        self.assertEqual(rc, 0)

    def test_live_view_gives_the_terminal_back_when_the_daemon_goes(self):
        d = self.start()
        rc, output = self.live(lambda pid, fd: d.stop(signal.SIGTERM))
        self.assertEqual(rc, EX_UNAVAILABLE, output[-500:])
        message = output[output.rindex(b"\x1b[?1049l"):]
        self.assertIn(b"cannot reach ingestd", message)

    def test_no_daemon_fails_fast_naming_the_bus(self):
        d = self.start()
        rc, _ = d.stop(signal.SIGTERM)
        self.assertEqual(rc, 0, d.stderr_tail())
        started = time.monotonic()
        r = ingestctl("top", "--once", address=self.bus.address, timeout=30)
        self.assertEqual(r.returncode, EX_UNAVAILABLE, r.stdout + r.stderr)
        self.assertLess(time.monotonic() - started, 10)
        self.assertIn("cannot reach ingestd", r.stderr)
        self.assertIn(self.bus.address, r.stderr)
        self.assertEqual(r.stdout, "")
        missing = "unix:path=" + self.path("no-such-socket")
        r = ingestctl("top", address=missing, timeout=30)
        self.assertEqual(r.returncode, EX_UNAVAILABLE, r.stdout + r.stderr)
        self.assertIn(missing, r.stderr)


if __name__ == "__main__":
    unittest.main()
