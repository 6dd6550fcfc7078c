"""Scale-out through Kafka (shared/DESIGN.md, "Beyond one machine"; docs/scaling.md): two
aggregating daemons in one consumer group each own a disjoint share of a topic keyed by the
grouping field, their window outputs added together equal the count computed here from what was
produced, and when one of them stops the other takes over all partitions and the totals still add
up.

The real `kcat -P` produces keyed records (key = device, kcat's default partitioner) into the test
peer (librdkafka's mock cluster, tests/tools/kafka_mock); each daemon runs kafka -> json (event
time from `time`) -> window (1 s event-time windows per device: count and sum) -> a file of its
own. Event times of a phase span 4 windows and allowed_lateness covers the whole span, so no
record is ever late; idle_timeout closes the last windows once the stream goes quiet, so that
every window of a phase is emitted (and its input acknowledged and committed) without a later
record.

The mock's group coordinator holds a rebalance for session.timeout.ms - 1 s whenever membership
changes: the daemons run with a 6 s session timeout (as in test_kafka_source.py).
Skipped (with the reason) only when kcat is not installed."""

import collections
import json
import random
import re
import signal
import sys
import time
import unittest
import zlib

import harness
import kafka_peer
from harness import Counters, q

GROUP = "rollup"
TOPIC = "readings"
PARTITIONS = 4
DEVICES = [f"dev-{i:02d}" for i in range(16)]
WINDOW_MS = 1000
PHASE_WINDOWS = 4  # event times of one phase span this many windows
T0 = 1_700_000_040_000  # epoch ms, a multiple of WINDOW_MS
PHASE2_T0 = T0 + 600_000  # far past phase 1's watermark, which idle_timeout moves on with the clock


def phase(first_id, count, t0, seed):
    """(records, keys): `count` readings with ids from first_id, random devices and values, event
    times rising evenly over PHASE_WINDOWS windows from t0."""
    rng = random.Random(seed)
    records, keys = [], []
    span = PHASE_WINDOWS * WINDOW_MS
    for n in range(count):
        device = rng.choice(DEVICES)
        records.append({"id": first_id + n, "device": device, "value": rng.randrange(1000),
                        "time": t0 + n * span // count})
        keys.append(device)
    return records, keys


def expected_windows(records):
    """{(window_start, device): [count, sum]} computed from the produced records."""
    out = collections.defaultdict(lambda: [0, 0])
    for r in records:
        start = harness.rfc3339_ms(r["time"] - r["time"] % WINDOW_MS)
        cell = out[(start, r["device"])]
        cell[0] += 1
        cell[1] += r["value"]
    return dict(out)


def kafka_partition(key):
    """librdkafka's default partitioner (consistent_random) for a non-empty key: CRC-32 of the key
    modulo the partition count. kcat -P uses it, and so does the Kafka sink unless configured
    otherwise (docs/scaling.md)."""
    return zlib.crc32(key.encode()) % PARTITIONS


def owned_partitions(stderr):
    """The partitions of TOPIC a daemon owns now, replayed from its "assigned/revoked/lost N
    partitions" log lines."""
    owned = set()
    for m in re.finditer(r"(assigned|revoked|lost) \d+ partitions[^:\n]*:([^\n]*)", stderr):
        parts = {int(p) for p in re.findall(re.escape(TOPIC) + r"\[(\d+)\]", m.group(2))}
        owned = owned | parts if m.group(1) == "assigned" else owned - parts
    return owned


class KafkaScaleOutTest(kafka_peer.KafkaTestCase):
    def config(self, peer, name):
        return f"""
data_dir: {q(self.path(name))}
batch: {{ max_events: 200, linger: 20ms }}
sources:
{kafka_peer.source_yaml(peer, GROUP, TOPIC)}parsers:
  readings: {{ type: json, inputs: [in], time_field: time, time_format: ms }}
aggregates:
  per_device:
    type: window
    inputs: [readings]
    group_by: [device]
    window: {{ size: {WINDOW_MS}ms, time: event, allowed_lateness: {PHASE_WINDOWS * WINDOW_MS}ms,
              idle_timeout: 300ms }}
    metrics: {{ n: count, total: sum(value) }}
sinks:
  out: {{ type: file, inputs: [per_device], path: {q(self.path(name + ".jsonl"))} }}
"""

    def rows(self, name):
        """{(window_start, device): [count, sum]} of one daemon's output, rows of a window and
        device added (a key split by a rebalance would have two)."""
        out = collections.defaultdict(lambda: [0, 0])
        path = self.path(name + ".jsonl")
        for row in harness.read_jsonl(path) if harness.count_lines(path) else []:
            cell = out[(row["window_start"], row["device"])]
            cell[0] += row["n"]
            cell[1] += row["total"]
        return dict(out)

    def union(self, names):
        total = collections.defaultdict(lambda: [0, 0])
        for name in names:
            for key, (n, s) in self.rows(name).items():
                total[key][0] += n
                total[key][1] += s
        return dict(total)

    def assert_windows(self, got, expected, what):
        """got == expected, else a failure listing the missing, extra and differing cells."""
        missing = sorted(k for k in expected if k not in got)
        extra = sorted(k for k in got if k not in expected)
        wrong = sorted((k, got[k], expected[k]) for k in expected
                       if k in got and got[k] != expected[k])
        if missing or extra or wrong:
            self.fail(f"{what}: {len(missing)} (window, device) missing {missing[:8]}, "
                      f"{len(extra)} extra {extra[:8]}, {len(wrong)} with other [count, sum] "
                      f"(got, expected) {wrong[:8]}")

    def wait_for_windows(self, names, expected, timeout=60):
        try:
            harness.wait_until(lambda: self.union(names) == expected, timeout,
                               f"{len(expected)} windows in {', '.join(names)}")
        except harness.Timeout:
            self.assert_windows(self.union(names), expected, "outputs at the deadline")
            raise

    def wait_for_commits(self, peer, timeout=30):
        hwm = peer.watermarks(TOPIC)
        try:
            harness.wait_until(lambda: peer.committed(GROUP, TOPIC) == hwm, timeout,
                               "committed offsets reaching the high watermarks")
        except harness.Timeout:
            self.fail(f"committed {peer.committed(GROUP, TOPIC)} != high watermarks {hwm}")
        return hwm

    def wait_for_partitions(self, d, count):
        harness.wait_until(lambda: len(owned_partitions(d.stderr())) == count, 60,
                           f"{d.stderr_path} owning {count} partitions: {d.stderr_tail()}")
        return owned_partitions(d.stderr())

    def stop(self, d):
        rc, _ = d.stop(signal.SIGTERM, timeout=60)
        self.assertEqual(rc, 0, d.stderr_tail())
        return Counters(d.stats())

    def test_two_daemons_share_the_keys_and_one_takes_over_when_the_other_stops(self):
        started = time.monotonic()
        peer = self.peer(topics={TOPIC: PARTITIONS})
        a = self.start_daemon(self.config(peer, "a"), name="a")
        self.wait_for_partitions(a, PARTITIONS)
        b = self.start_daemon(self.config(peer, "b"), name="b")
        owned_b = self.wait_for_partitions(b, PARTITIONS // 2)
        owned_a = self.wait_for_partitions(a, PARTITIONS // 2)
        self.assertEqual(owned_a & owned_b, set(), "a partition owned by both daemons")

        # Phase 1: both run. Each device's rows come from the daemon owning its partition only.
        records1, keys1 = phase(0, 6000, T0, seed=1)
        kafka_peer.produce(peer.bootstrap, TOPIC, [json.dumps(r) for r in records1], keys1)
        expected1 = expected_windows(records1)
        self.wait_for_windows(["a", "b"], expected1)
        rows_a, rows_b = self.rows("a"), self.rows("b")
        devices_a = {dev for _, dev in rows_a}
        devices_b = {dev for _, dev in rows_b}
        self.assertEqual(sorted(devices_a & devices_b), [], "devices with rows from both daemons")
        self.assertTrue(devices_a and devices_b, f"a daemon had no share: a {sorted(devices_a)}, "
                        f"b {sorted(devices_b)}")
        owner = {dev: "a" if kafka_partition(dev) in owned_a else "b" for dev in DEVICES}
        self.assertEqual({dev: "a" for dev in devices_a} | {dev: "b" for dev in devices_b},
                         {dev: owner[dev] for dev in devices_a | devices_b},
                         f"devices not on the daemon owning crc32(key) % {PARTITIONS} "
                         f"(a owns {sorted(owned_a)}, b {sorted(owned_b)})")
        self.assert_windows(self.union(["a", "b"]), expected1, "phase 1, a + b")
        hwm1 = self.wait_for_commits(peer)
        self.assertEqual(sum(hwm1.values()), len(records1))

        # b stops (its windows are all emitted and committed); a takes over all partitions.
        cb = self.stop(b)
        owned_a = self.wait_for_partitions(a, PARTITIONS)
        self.assertEqual(owned_a, set(range(PARTITIONS)))

        # Phase 2: everything goes to a; the totals over both outputs still add up.
        records2, keys2 = phase(len(records1), 4000, PHASE2_T0, seed=2)
        kafka_peer.produce(peer.bootstrap, TOPIC, [json.dumps(r) for r in records2], keys2)
        expected2 = expected_windows(records2)
        expected = expected1 | expected2
        self.wait_for_windows(["a", "b"], expected)
        hwm = self.wait_for_commits(peer)
        self.assertEqual(sum(hwm.values()), len(records1) + len(records2))
        ca = self.stop(a)

        self.assert_windows(self.union(["a", "b"]), expected, "phase 1 + 2, a + b")
        phase2_in_b = sorted(k for k in self.rows("b") if k in expected2)
        self.assertEqual(phase2_in_b, [], "phase 2 windows written by the stopped daemon")
        self.assert_windows({k: v for k, v in self.rows("a").items() if k in expected2},
                            expected2, "phase 2, a alone")
        # Nothing read twice, nothing late, every record parsed.
        self.assertEqual(ca["in.messages"] + cb["in.messages"], len(records1) + len(records2))
        for c, name in ((ca, "a"), (cb, "b")):
            self.assertEqual(c["per_device.late"], 0, f"{name}: late records")
            self.assertEqual(c["readings.errors"], 0, f"{name}: parse errors")
            self.assertEqual(c["readings.time_missing"], 0, f"{name}: records without a time")
            self.assertEqual(c["in.acks_failed"], 0, f"{name}: failed acks")
            self.assertEqual(c["in.abandoned"], 0, f"{name}: abandoned acks")
        self.assertEqual(peer.committed(GROUP, TOPIC), hwm, "committed offsets after a stopped")
        print(f"\nscale-out: phase 1 a {len(devices_a)} devices, b {len(devices_b)}; "
              f"{time.monotonic() - started:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
