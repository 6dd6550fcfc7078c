"""The disk spool of the reliability layer, against a real HTTP peer (the test receiver) that the
test takes down (503, hang) and brings back.

Expected values are computed here: the generator numbers its events ({{seq}}), so what must
arrive is range(COUNT); the receiver records only what it answered 2xx, so a number recorded twice
is a duplicate from a retry, and a number missing is a loss. Waits are conditions with deadlines:
on the receiver's own statistics, on the daemon's log, or on GetStatus over a private D-Bus.
"""

import glob
import json
import os
import re
import signal
import subprocess
import time
import unittest

import harness
from harness import Counters, HttpReceiver, q, wait_until

TEMPLATE = '{"seq":{{seq}},"pad":"{{hex 40}}"}'


class SpoolTestCase(harness.IntegrationTestCase):
    def setUp(self):
        super().setUp()
        self.receiver = HttpReceiver(self.dir)
        self.addCleanup(self.receiver.stop)

    def pipeline(self, count=0, rate=0, spool="{}", extra_sinks="", http_extra="",
                 max_events=100, keep_running=False, template=TEMPLATE, marker=True):
        # keep_running: a second source that waits for ever, so that the run is not a batch job
        # that ends with its generator; with marker, it emits one event (seq -1) into the sink
        # first.
        idle = ("  idle: { type: generator, rate: 0.001, count: 2, template: '{\"seq\":-1}' }\n"
                if keep_running else "")
        inputs = "[gen, idle]" if keep_running and marker else "[gen]"
        return f"""
data_dir: {q(self.dir)}
batch: {{ max_events: {max_events}, linger: 20ms }}
sources:
  gen: {{ type: generator, count: {count}, rate: {rate}, template: {q(template)} }}
{idle}sinks:
  web:
    type: http
    inputs: {inputs}
    workers: 1  # one writer: the spool's records keep the generator's order
    url: {q(self.receiver.url)}
    timeout: 500ms
    retry: {{ initial: 20ms, max: 200ms }}
    breaker: {{ failures: 3, open_for: 300ms }}
    spool: {spool}
{http_extra}{extra_sinks}"""

    def seqs(self):
        """The generator's numbers the receiver accepted (without the markers of keep_running)."""
        return [n for n in self.receiver.seqs() if n >= 0]

    def assert_all_delivered(self, count):
        seqs = self.seqs()
        missing = set(range(count)) - set(seqs)
        self.assertEqual(len(missing), 0, f"{len(missing)} missing, e.g. {sorted(missing)[:10]}")
        self.assertEqual(len(seqs), len(set(seqs)), "no duplicates from this peer")
        self.assertEqual(set(seqs), set(range(count)))

    def spool_files(self, sink="web"):
        return sorted(glob.glob(self.path("spool", sink, "*.seg")))

    def bus_status(self, bus):
        r = bus.busctl("--json=short", "call", harness.DBUS_NAME, harness.DBUS_PATH,
                       harness.DBUS_NAME, "GetStatus")
        if r.returncode != 0:
            return None
        status = json.loads(json.loads(r.stdout)["data"][0])
        return {c["name"]: c for c in status["components"]}


class OutageTest(SpoolTestCase):
    def test_503s_then_a_hang_are_spooled_and_replayed_at_replay_rate(self):
        count, rate, replay_rate = 12000, 3000, 2000
        self.receiver.control("503")
        # The run goes on after gen ends: gen ends about when the outage does, and a batch job whose
        # only sink is down when its input ends leaves the spool for its next run.
        d = self.start_daemon(self.pipeline(count=count, rate=rate,
                                            spool=f"{{ replay_rate: {replay_rate} }}",
                                            keep_running=True, marker=False))
        wait_until(lambda: "closed -> open" in d.stderr(), 20, "the breaker to open")
        # The outage lasts until most of the input has been generated (and spooled).
        wait_until(lambda: len(self.spool_files()) > 0, 20, "a spool segment")
        wait_until(lambda: self.receiver.stats()["requests"].get("503", 0) >= 6, 20,
                   "probes against the outage")
        # The peer then hangs: probes time out (timeout: 500ms) instead of being refused.
        self.receiver.control("hang")
        wait_until(lambda: self.receiver.stats()["requests"].get("hang", 0) >= 2, 20,
                   "probes against a hanging peer")
        self.receiver.control("ok")
        wait_until(lambda: set(range(count)) <= set(self.seqs()), 120, "every event delivered",
                   interval=0.2, explain=lambda: d.stderr_tail())
        rc, _ = d.stop()
        stderr = d.stderr()
        self.assertEqual(rc, 0, stderr[-3000:])
        self.assert_all_delivered(count)
        c = Counters(d.stats())
        self.assertGreater(c["web.spooled"], 0)
        self.assertEqual(c["web.replayed"], c["web.spooled"], "the spool drained")
        self.assertEqual(c["web.events_out"], count)
        self.assertEqual(c.get("web.failed"), 0)
        self.assertEqual(c.get("web.spool_dropped"), 0)
        for transition in ("closed -> open", "open -> half_open", "half_open -> closed"):
            self.assertIn(f"circuit breaker {transition}", stderr)
        self.assertGreaterEqual(c["web.breaker_closed"], 1)
        self.assertEqual(self.spool_files(), [], "delivered segments are deleted")
        # Pace: the accepted requests after the outage carried the replayed events at about
        # replay_rate (the bucket starts with a quarter second of tokens).
        ok = [a for a in self.receiver.stats()["arrivals"] if a[1] == "200"]
        events = sum(a[2] for a in ok)
        self.assertEqual(events, count)
        span = ok[-1][0] - ok[0][0]
        expected = (c["web.replayed"] - replay_rate / 4) / replay_rate
        self.assertGreater(span, expected * 0.9, f"replay too fast: {span:.2f}s, {expected:.2f}s")
        self.assertLess(span, expected * 1.1, f"replay too slow: {span:.2f}s, {expected:.2f}s")


class KillTest(SpoolTestCase):
    def test_kill_9_while_spooling_then_restart_delivers_everything_spooled(self):
        count = 5000
        self.receiver.control("503")
        bus = harness.PrivateBus(self.dir).start()
        self.addCleanup(bus.stop)
        config = self.pipeline(count=count, spool="{ fsync: always }", keep_running=True)
        d = self.start_daemon(config, extra_args=["--bus", bus.address])
        # Everything generated is in the spool, acknowledged there: then kill -9.
        wait_until(lambda: (self.bus_status(bus) or {}).get("web", {}).get("spool_events")
                   == count + 1, 30, "every event in the spool")
        d.kill()
        self.receiver.control("ok")
        d2 = self.start_daemon(self.pipeline(count=1, template='{"seq":-2}', keep_running=True),
                               name="second")
        wait_until(lambda: len(set(self.seqs())) >= count, 30,
                   "the spool to be delivered after the restart")
        d2.stop()
        self.assertIn(f"spool: {count + 1} events in", d2.stderr())
        self.assert_all_delivered(count)


class CorruptionTest(SpoolTestCase):
    def test_damaged_segments_keep_everything_before_the_damage(self):
        count = 3000
        self.receiver.control("503")
        d = self.start_daemon(self.pipeline(count=count, spool="{ fsync: always }", max_events=100))
        rc = d.wait(60)
        self.assertEqual(rc, 0, d.stderr_tail())
        c = Counters(d.stats())
        self.assertEqual(c["web.spooled"] + c.get("web.failed"), count)
        self.assertIn("events stay in the spool", d.stderr())
        segments = self.spool_files()
        self.assertEqual(len(segments), 1)
        with open(segments[0], "r+b") as f:
            data = bytearray(f.read())
            middle = len(data) // 2
            data[middle] ^= 0x40  # a bit flip inside one record
            f.seek(0)
            f.write(data[:-7])  # and a torn tail: the last record cut short
            f.truncate()
        self.receiver.control("ok")
        d2 = self.run_daemon(self.pipeline(count=1, template='{"seq":-2}'), name="second")
        stderr = d2.stderr()
        self.assertIn("spool: truncated a torn tail", stderr)
        self.assertIn("damaged spool records", stderr)
        c2 = Counters(d2.stats())
        self.assertEqual(c2["web.spool_corrupt"], 1)
        seqs = set(self.seqs())
        missing = sorted(set(range(count)) - seqs)
        # Two records lost (the flipped one and the torn last one), each a run of at most 100
        # events; everything else arrived.
        self.assertGreater(len(missing), 0)
        self.assertLessEqual(len(missing), 200, missing[:20])
        self.assertIn(count - 1, missing, "the torn record is the last one")


class FullSpoolTest(SpoolTestCase):
    def test_full_spool_blocks_logs_once_and_resumes(self):
        self.receiver.control("503")
        d = self.start_daemon(self.pipeline(
            rate=20000, spool="{ max_size: 256KiB, segment_size: 64KiB, when_full: block }"))
        wait_until(lambda: "spool full" in d.stderr(), 30, "the spool to fill")
        self.assertEqual(d.stderr().count("spool full"), 1, "logged once")
        self.assertTrue(d.running())
        size = sum(os.path.getsize(p) for p in self.spool_files())
        self.assertLessEqual(size, 256 * 1024 + 64 * 1024)
        self.receiver.control("ok")
        wait_until(lambda: "the spool takes batches again" in d.stderr(), 30, "room again")
        before = len(self.seqs())
        wait_until(lambda: len(self.seqs()) > before + 5000, 30, "progress")
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        c = Counters(d.stats())
        seqs = self.seqs()
        self.assertEqual(len(seqs), len(set(seqs)))
        # Every event generated was delivered, or is still spooled, or was in a queue at stop.
        pending = c["web.spooled"] - c["web.replayed"]
        self.assertEqual(c["gen.events_out"],
                         len(seqs) + pending + c.get("web.shutdown_dropped") + c.get("web.failed"))

    def test_a_full_disk_under_the_spool_blocks_and_resumes(self):
        spool_dir = self.path("spool")
        os.makedirs(spool_dir)
        if os.geteuid() != 0 or subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", spool_dir]).returncode != 0:
            self.skipTest("needs root to mount a small tmpfs")
        self.addCleanup(subprocess.run, ["umount", "-l", spool_dir])
        self.receiver.control("503")
        d = self.start_daemon(self.pipeline(rate=20000, spool="{ segment_size: 64KiB }"))
        wait_until(lambda: "cannot write to the spool" in d.stderr(), 30, "the disk to fill")
        self.assertIn("No space left on device", d.stderr())
        self.assertTrue(d.running())
        self.receiver.control("ok")
        wait_until(lambda: "the spool takes batches again" in d.stderr(), 30, "room again")
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        seqs = self.seqs()
        self.assertEqual(len(seqs), len(set(seqs)))
        c = Counters(d.stats())
        pending = c["web.spooled"] - c["web.replayed"]
        self.assertEqual(c["gen.events_out"],
                         len(seqs) + pending + c.get("web.shutdown_dropped") + c.get("web.failed"))


class ReloadDuringOutageTest(SpoolTestCase):
    def test_spool_and_breaker_survive_a_reload(self):
        count = 4000
        bus = harness.PrivateBus(self.dir).start()
        self.addCleanup(bus.stop)
        self.receiver.control("503")
        config = self.write_file("p.yaml", self.pipeline(count=count, rate=4000, keep_running=True))
        d = harness.Daemon(self.dir, config, extra_args=["--bus", bus.address]).start()
        self.addCleanup(d.kill)
        wait_until(lambda: (self.bus_status(bus) or {}).get("web", {}).get("spool_events", 0)
                   >= count + 1, 30, "the input spooled")
        before = self.bus_status(bus)["web"]
        self.assertIn(before["breaker"], ("open", "half_open"))
        # 1. Another component changes: the http sink is kept, with its breaker and spool.
        self.write_file("p.yaml", self.pipeline(count=count, rate=4000, keep_running=True,
                                                extra_sinks=f"""
  copy: {{ type: file, inputs: [gen], path: {q(self.path("copy.jsonl"))} }}
"""))
        d.send(signal.SIGHUP)
        wait_until(lambda: "reloaded" in d.stderr(), 20, "the first reload")
        after = self.bus_status(bus)["web"]
        self.assertIn(after["breaker"], ("open", "half_open"))
        self.assertEqual(after["spool_events"], before["spool_events"])
        self.assertNotIn("-> closed", d.stderr())
        # 2. The http sink itself changes: the new one takes over the spool.
        self.write_file("p.yaml", self.pipeline(count=count, rate=4000, keep_running=True,
                                                http_extra="    gzip: true\n"))
        d.send(signal.SIGHUP)
        wait_until(lambda: d.stderr().count("reloaded") >= 2, 20, "the second reload")
        self.assertIn("1 replaced", d.stderr())
        self.assertEqual(self.bus_status(bus)["web"]["spool_events"], before["spool_events"])
        self.receiver.control("ok")
        wait_until(lambda: len(set(self.seqs())) >= count, 30, "delivery")
        self.assert_all_delivered(count)


class FanOutTest(SpoolTestCase):
    def test_a_dead_sink_does_not_slow_the_others(self):
        count, rate = 15000, 5000
        self.receiver.control("hang")
        started = time.monotonic()
        d = self.start_daemon(self.pipeline(count=count, rate=rate, extra_sinks=f"""
  copy: {{ type: file, inputs: [gen], path: {q(self.path("copy.jsonl"))} }}
"""))
        wait_until(lambda: harness.count_lines(self.path("copy.jsonl")) >= count, 30,
                   "the file sink to get everything")
        took = time.monotonic() - started
        # The generator's own pace is count / rate = 3 s; the file sink kept up with it.
        self.assertLess(took, count / rate + 2.0, f"the file sink took {took:.1f}s")
        rc, _ = d.stop()
        c = Counters(d.stats())
        self.assertEqual(c["copy.events_out"], count)
        self.assertEqual(c["web.spooled"] + c.get("web.shutdown_dropped") + c["web.events_out"],
                         count)
        self.assertGreater(c["web.spooled"], count // 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
