"""Job 4, sensors (config/sensors.yaml as shipped, pointed at the test's peers by its variables):
procfs on the fixture tree in tests/fixtures/procfs (and, in a second test, on the live /proc,
watching this test's own child process) and a Prometheus endpoint served by the test, which
answers only with the right X-Algo-API-Token; both every second, to a file and to the Kafka test
peer. Every broker goes down for a while in the middle: the Kafka sink's breaker opens, its spool
keeps the samples and replays them once the brokers are back.

The independent list: the endpoint numbers every answer it gives (the `scrape_seq` gauge and a
`seq` label) and records it, so the test knows the three samples of each answer, with their
values. Every one must be in the file and in Kafka; each procfs sample is once in both (by its
time), with the fixture's values, one per second with no second missing.
"""

import collections
import json
import os
import subprocess
import sys
import threading
import time
import unittest

import harness
import kafka_peer
from harness import Counters, wait_until

CONFIG = os.path.join(harness.SOURCE_DIR, "config", "sensors.yaml")
FIXTURE = os.path.join(harness.SOURCE_DIR, "tests", "fixtures", "procfs")
TOKEN = "sensor-token-7"
TOPIC = "sensors"
OUTAGE_S = 6


def complete_lines(path):
    """The JSON lines written so far (a line still being written is left for later)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in data.split(b"\n")[:-1]]


def readings(seq):
    """The samples of answer `seq`: {(name, sensor or None): value}."""
    return {("sensor_reading", "temp"): 20 + 0.5 * seq, ("sensor_reading", "fan"): 1000.0 + seq,
            ("scrape_seq", None): float(seq)}


class MetricsEndpoint:
    """GET /metrics with the token: answer number n (n = 1, 2, ...) of readings(n); without it
    401. After close_answers() every request gets 503, so that no answer is in flight when the
    daemon stops."""

    def __init__(self):
        self.lock = threading.Lock()
        self.answered = []
        self.unauthorized = 0
        self.open = True
        self.server = harness.GetServer(self.answer)
        self.url = self.server.base + "/metrics"

    def answer(self, path, headers):
        with self.lock:
            if path != "/metrics":
                return 404, "not found\n", "text/plain"
            if headers.get("X-Algo-API-Token") != TOKEN:
                self.unauthorized += 1
                return 401, "unauthorized\n", "text/plain"
            if not self.open:
                return 503, "closing\n", "text/plain"
            seq = len(self.answered) + 1
            self.answered.append(seq)
        lines = ["# HELP sensor_reading A reading.", "# TYPE sensor_reading gauge"]
        for (name, sensor), value in readings(seq).items():
            labels = f'{{sensor="{sensor}",seq="{seq}"}}' if sensor else ""
            lines.append(f"{name}{labels} {value!r}")
        return 200, "\n".join(lines) + "\n", "text/plain; version=0.0.4"

    def close_answers(self):
        with self.lock:
            self.open = False
            return list(self.answered)

    def close(self):
        self.server.stop()


class SensorsJobTest(kafka_peer.KafkaTestCase):
    def run_job(self, proc_root, pid_file, outage):
        """Runs config/sensors.yaml until at least 8 answers are in the file (with an outage of
        every broker after the third when `outage`), then stops it; returns (file events, Kafka
        events, answered seqs, counters, daemon)."""
        peer = self.peer(topics={TOPIC: 1})
        endpoint = MetricsEndpoint()
        self.addCleanup(endpoint.close)
        out = self.path("sensors.jsonl")
        env = dict(os.environ, INGESTD_DATA_DIR=self.dir, SENSORS_PROC_ROOT=proc_root,
                   SENSORS_PID_FILE=pid_file, SENSORS_METRICS_URL=endpoint.url,
                   SENSORS_TOKEN=TOKEN, KAFKA_BROKERS=peer.bootstrap, SENSORS_TOPIC=TOPIC)
        with open(CONFIG) as f:
            d = self.start_daemon(f.read(), env=env)

        def answers_in_file(n):
            seqs = {e["value"] for e in complete_lines(out) if e.get("name") == "scrape_seq"}
            return len(seqs) >= n

        wait_until(lambda: answers_in_file(3), 30, "three answers in the file")
        if outage:
            self.assertEqual(peer.command("down all"), "ok")
            wait_until(lambda: "closed -> open" in d.stderr(), 30, "the Kafka sink's breaker to open")
            down = time.monotonic()
            # The file copy goes on meanwhile.
            wait_until(lambda: time.monotonic() - down >= OUTAGE_S, OUTAGE_S + 5, "the outage",
                       interval=0.5)
            self.assertEqual(peer.command("up all"), "ok")
        wait_until(lambda: answers_in_file(8 if not outage else 3 + OUTAGE_S + 2), 60,
                   "answers in the file")
        answered = endpoint.close_answers()
        self.assertEqual(endpoint.unauthorized, 0, "the config's token header was not sent")
        wait_until(lambda: answers_in_file(len(answered)), 10, "every answer in the file")
        so_far = len(complete_lines(out))
        wait_until(lambda: (peer.total(TOPIC) or 0) >= so_far, 60,
                   "Kafka to have every sample of the file so far",
                   explain=lambda: f"{peer.last_error}; {d.stderr_tail()}")
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        file_events = harness.read_jsonl(out)
        kafka_events = [json.loads(line) for line in kafka_peer.consume(peer.bootstrap, TOPIC)]
        return file_events, kafka_events, answered, Counters(d.stats()), d

    def check_scrapes(self, events, answered, where):
        got = collections.defaultdict(dict)
        for e in events:
            if e.get("url") is None:
                continue  # procfs
            seq = int(e["value"]) if e["name"] == "scrape_seq" else int(e["seq"])
            got[seq][(e["name"], e.get("sensor"))] = e["value"]
        self.assertEqual(sorted(got), answered, f"{where}: the answers")
        for seq in answered:
            self.assertEqual(got[seq], readings(seq), f"{where}: answer {seq}")

    def check_procfs_fixture(self, events, where):
        host = sorted((e for e in events if e.get("kind") == "host"), key=lambda e: e["time"])
        self.assertGreaterEqual(len(host), 5, where)
        times = [e["time"] for e in host]
        self.assertEqual(len(times), len(set(times)), f"{where}: a host sample twice")
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertLess(max(gaps), 1900, f"{where}: a second without a sample: {gaps}")
        with open(os.path.join(FIXTURE, "loadavg")) as f:
            load1 = float(f.read().split()[0])
        for e in host:
            self.assertEqual(e["load1"], load1, where)
        return [e["time"] for e in events if e.get("kind") in ("host", "process")]

    def test_fixture_and_endpoint_through_a_kafka_outage(self):
        file_events, kafka_events, answered, c, d = self.run_job(
            FIXTURE, os.path.join(self.dir, "no.pid"), outage=True)
        self.check_scrapes(file_events, answered, "file")
        self.check_scrapes(kafka_events, answered, "kafka")
        file_times = self.check_procfs_fixture(file_events, "file")
        kafka_times = self.check_procfs_fixture(kafka_events, "kafka")
        # Every sample once in each: the scrapes' by answer above, procfs' by its time.
        self.assertEqual(collections.Counter(kafka_times), collections.Counter(file_times))
        self.assertEqual(len(kafka_events), len(file_events))
        # The outage went through the spool: taken while the brokers were down, all given back.
        self.assertGreater(c["kafka.spooled"], 0)
        self.assertEqual(c["kafka.replayed"], c["kafka.spooled"])
        self.assertEqual(c["kafka.events_out"], len(file_events))
        self.assertEqual(c["archive.events_out"], len(file_events))
        self.assertEqual(c.get("samples.errors"), 0)
        for transition in ("closed -> open", "half_open -> closed"):
            self.assertIn(f"circuit breaker {transition}", d.stderr())
        print(f"\nsensors: {len(answered)} scrapes, {len(file_events)} samples, "
              f"{c['kafka.spooled']} spooled and replayed", file=sys.stderr)

    def test_live_proc_watches_a_process_by_pid_file(self):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        pid_file = self.write_file("child.pid", f"{child.pid}\n")
        file_events, kafka_events, answered, c, _ = self.run_job("/proc", pid_file, outage=False)
        self.check_scrapes(file_events, answered, "file")
        self.check_scrapes(kafka_events, answered, "kafka")
        procs = [e for e in file_events if e.get("kind") == "process"]
        self.assertGreaterEqual(len(procs), 5)
        for e in procs:
            self.assertEqual(e["pid"], child.pid)
            self.assertEqual(e["ppid"], os.getpid())
            self.assertGreater(e["rss_bytes"], 0)
        hosts = [e for e in file_events if e.get("kind") == "host"]
        with open("/proc/stat") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        self.assertTrue(all(e["boot_time"] == btime * 1000 for e in hosts),
                        {e.get("boot_time") for e in hosts})
        self.assertEqual(len(kafka_events), len(file_events))
        self.assertEqual(c.get("kafka.spooled"), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
