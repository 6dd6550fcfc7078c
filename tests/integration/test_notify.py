"""The service-manager protocol on a real NOTIFY_SOCKET: the test binds the datagram socket that
systemd would, starts ingestd with NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (its own pid,
through `sh -c 'WATCHDOG_PID=$$ exec ...'`, as systemd sets it), and reads what arrives:
READY=1 once the pipeline runs, STATUS= lines, WATCHDOG=1 at about half the interval, RELOADING=1
with MONOTONIC_USEC then READY=1 around a SIGHUP, STOPPING=1 on SIGTERM.
"""

import os
import signal
import statistics
import time
import unittest

import harness
from harness import NotifyListener, q, wait_until

WATCHDOG_USEC = 1_000_000
TEMPLATE = '{"seq":{{seq}}}'


class NotifyTest(harness.IntegrationTestCase):

    def setUp(self):
        super().setUp()
        self.listener = NotifyListener(self.dir)
        self.addCleanup(self.listener.close)
        self.out = self.path("out.jsonl")

    def start(self, sinks=None, stdout_path=None, rate=200):
        sinks = sinks or f"out: {{ type: file, inputs: [gen], path: {q(self.out)} }}"
        config = f"""data_dir: {q(self.path("data"))}
sources:
  gen: {{ type: generator, rate: {rate}, template: {q(TEMPLATE)} }}
sinks:
  {sinks}
"""
        env = dict(os.environ, NOTIFY_SOCKET=self.listener.path,
                   WATCHDOG_USEC=str(WATCHDOG_USEC))
        env.pop("JOURNAL_STREAM", None)
        d = harness.Daemon(self.dir, self.write_file("ingestd.yaml", config),
                           extra_args=["--bus", "none"], env=env, stdout_path=stdout_path)
        d.args = ["sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"'] + d.args
        self.daemons.append(d)
        return d.start()

    def test_lifecycle_and_watchdog(self):
        d = self.start()
        ready = self.listener.wait_for("READY", "1")
        # READY=1 comes once every component has started: the daemon said so before.
        self.assertIn("running 2 components", d.stderr())
        status = self.listener.wait_for("STATUS")
        self.assertRegex(self.listener.snapshot()[status][1]["STATUS"],
                         r"^running 2 components; in \d+ ev/s, out \d+ ev/s; last reload none$")

        def pings():
            return [t for t, f in self.listener.snapshot() if f.get("WATCHDOG") == "1"]
        wait_until(lambda: len(pings()) >= 5, 10, what="5 watchdog pings")
        gaps = [b - a for a, b in zip(pings(), pings()[1:])]
        half = WATCHDOG_USEC / 2 / 1e6
        self.assertTrue(0.8 * half <= statistics.median(gaps) <= 1.5 * half, gaps)
        self.assertLess(max(gaps), WATCHDOG_USEC / 1e6, gaps)  # never late enough to be killed

        rc, _ = d.stop(signal.SIGTERM)
        self.assertEqual(rc, 0, d.stderr_tail())
        stopping = self.listener.wait_for("STOPPING", "1", timeout=5)
        self.assertGreater(stopping, ready)

    def test_watchdog_stops_while_a_sink_is_wedged(self):
        # The stdout sink writes into a pipe that nobody reads: once the pipe is full its write()
        # blocks, the pipeline is wedged, and the pings must stop; reading the pipe unwedges it.
        fifo = self.path("stdout.fifo")
        os.mkfifo(fifo)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, reader)
        d = self.start(sinks="console: { type: stdout, inputs: [gen] }", stdout_path=fifo,
                       rate=50000)
        self.listener.wait_for("READY", "1")

        def pings():
            return [i for i, (_, f) in enumerate(self.listener.snapshot())
                    if f.get("WATCHDOG") == "1"]
        wait_until(lambda: "watchdog: console stuck" in d.stderr(), 30,
                   what="the watchdog to notice the wedged sink")
        stopped_at = len(self.listener.snapshot())
        self.assertEqual([i for i in pings() if i >= stopped_at], [])
        self.assertTrue(d.running())

        def drain():
            try:
                while os.read(reader, 1 << 16):
                    pass
            except BlockingIOError:
                pass
            return "makes progress again" in d.stderr()
        wait_until(drain, 30, what="the pipeline to make progress again")
        wait_until(lambda: any(i >= stopped_at for i in pings()), 10, what="pings to resume")

    def test_reload_is_bracketed_by_reloading_and_ready(self):
        d = self.start()
        ready = self.listener.wait_for("READY", "1")
        before = time.monotonic_ns() // 1000
        d.send(signal.SIGHUP)
        reloading = self.listener.wait_for("RELOADING", "1", after=ready + 1)
        after = time.monotonic_ns() // 1000
        fields = self.listener.snapshot()[reloading][1]
        # MONOTONIC_USEC is CLOCK_MONOTONIC, which is what time.monotonic_ns() reads on Linux.
        self.assertIn("MONOTONIC_USEC", fields)
        self.assertTrue(before <= int(fields["MONOTONIC_USEC"]) <= after, (before, fields, after))
        self.listener.wait_for("READY", "1", after=reloading + 1)
        self.assertTrue(d.running(), d.stderr_tail())
        rc, _ = d.stop(signal.SIGTERM)
        self.assertEqual(rc, 0, d.stderr_tail())


if __name__ == "__main__":
    unittest.main()
