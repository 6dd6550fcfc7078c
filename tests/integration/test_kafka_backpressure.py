"""Backpressure from a slow sink to the Kafka source (plugins/source/kafka/README.md,
"Backpressure"): a topic holding far more bytes than the pipeline's queues is read by a daemon
whose only sink is stdout, a pipe that this test reads not at all and then slowly, so the sink
blocks in write(), its queue fills and the source pauses its partitions instead of buffering the
topic. While it is held back the daemon's RSS stays under a bound far below the topic's size;
once the reader speeds up every record arrives exactly once and the group's committed offsets
reach the high watermarks. The consumer lag that the admin API's /metrics reports per partition
equals what the peer says (high watermark minus the group's committed offset) while the source is
held back, and falls to 0 once everything is read and committed.

The sink runs with `spool: false`: with its spool, the core would move a sink that fell behind
onto disk (docs/configuration.md, "Spool") and the source would never need to pause.
The mock keeps only the newest ~5 MiB of a partition and drops older records silently: each
partition gets PER_PARTITION records (~3 MiB), produced into it explicitly, and the high
watermarks are checked before the daemon starts reading.
Skipped (with the reason) only when kcat is not installed."""

import collections
import fcntl
import json
import sys
import termios
import threading
import time
import unittest

import harness
import kafka_peer
from harness import Counters, q

GROUP = "slow"
TOPIC = "bulk"
PARTITIONS = 12
PER_PARTITION = 3000
PAD = "x" * 1000  # ~1 KiB records: the topic holds ~35 MiB
TOPIC_BYTES_MIN = PARTITIONS * PER_PARTITION * len(PAD)
# While held back the daemon holds about: librdkafka's prefetch (queued.max.messages.kbytes, 1 MiB,
# overshot by up to one fetch of fetch.message.max.bytes per partition: 3 MiB), a batch being
# filled per partition (1.2 MiB), the sink's queue (16 x 128 KiB) and the batch in write(): ~7.5
# MiB. The bound leaves room for the allocator's slack and is a third of the topic.
RSS_GROWTH_BOUND_KIB = 12 * 1024
# librdkafka's prefetch, bounded: 1 MiB in all, at most 256 KiB per partition and fetch.
LIBRDKAFKA = {"queued.max.messages.kbytes": "1024", "fetch.message.max.bytes": "262144"}
SLOW_BYTES = 2 * 1024 * 1024  # read slowly first: ~5 s at 4 KiB per 10 ms
SLOW_CHUNK = 4096


def lag_gauges(base):
    """The Kafka lag gauges of source `in` and TOPIC (kafka_peer.lag_gauges)."""
    return kafka_peer.lag_gauges(base, "in", TOPIC)


class PipeReader(threading.Thread):
    """Reads the daemon's stdout: nothing until start() is called, then SLOW_BYTES in small chunks
    with a pause between them (sampling the daemon's RSS at each), then as fast as it can, until
    end of file. `data` is everything read so far."""

    def __init__(self, daemon):
        super().__init__(daemon=True)
        self.daemon_proc = daemon
        self.data = bytearray()
        self.newlines = 0
        self.lock = threading.Lock()
        self.rss_samples = []  # KiB, taken during the slow phase
        self.slow_done = threading.Event()

    def run(self):
        stream = self.daemon_proc.proc.stdout
        while True:
            slow = len(self.data) < SLOW_BYTES
            chunk = stream.read1(SLOW_CHUNK if slow else 1 << 16)
            if not chunk:
                break
            with self.lock:
                self.data += chunk
                self.newlines += chunk.count(b"\n")
            if slow:
                rss = self.daemon_proc.rss_kib()
                if rss is not None:
                    self.rss_samples.append(rss)
                time.sleep(0.01)  # the slow reader's pace, not a synchronisation
            else:
                self.slow_done.set()
        self.slow_done.set()

    def pipe_full(self):
        """Whether the pipe holds as many bytes as it can: the sink is blocked in write()."""
        stream = self.daemon_proc.proc.stdout
        size = fcntl.fcntl(stream.fileno(), fcntl.F_GETPIPE_SZ)
        available = fcntl.ioctl(stream.fileno(), termios.FIONREAD, b"\0" * 4)
        return int.from_bytes(available, sys.byteorder) >= size

    def lines(self):
        with self.lock:
            data = bytes(self.data)
        return data.split(b"\n")[:-1]


class KafkaBackpressureTest(kafka_peer.KafkaTestCase):
    def config(self, peer):
        return f"""
data_dir: {q(self.path("data"))}
batch: {{ max_events: 100, max_bytes: 128KiB, linger: 20ms }}
sources:
{kafka_peer.source_yaml(peer, GROUP, TOPIC, librdkafka=LIBRDKAFKA,
                        options={"lag_interval": "300ms"})}sinks:
  out:
    type: stdout
    inputs: [in]
    encoding: raw
    queue: {{ max_batches: 16 }}
    spool: false
"""

    def test_slow_sink_pauses_the_source_memory_stays_bounded_and_nothing_is_lost(self):
        started = time.monotonic()
        peer = self.peer(topics={TOPIC: PARTITIONS})
        # Debug logging: the source says when it pauses its partitions.
        d = self.start_daemon(self.config(peer), stdout_pipe=True,
                              extra_args=["--log-level", "debug", "--admin-listen", "127.0.0.1:0"])
        base = "http://" + d.admin_address()
        self.addCleanup(lambda: d.proc.stdout.close())
        harness.wait_until(lambda: f"assigned {PARTITIONS} partitions" in d.stderr(), 60,
                           f"the daemon owning every partition: {d.stderr_tail()}")
        baseline = d.rss_kib()

        expected = set()
        for p in range(PARTITIONS):
            ids = range(p * PER_PARTITION, (p + 1) * PER_PARTITION)
            kafka_peer.produce(peer.bootstrap, TOPIC,
                               [json.dumps({"id": i, "pad": PAD}) for i in ids], partition=p)
            expected.update(ids)
        hwm = peer.watermarks(TOPIC)
        self.assertEqual(hwm, {p: PER_PARTITION for p in range(PARTITIONS)}, "high watermarks")
        # The mock drops a partition's oldest records past ~5 MiB: all of them must still be there.
        self.assertEqual(len(kafka_peer.consume(peer.bootstrap, TOPIC)), len(expected),
                         "records the mock still holds")

        # The reader has read nothing yet: the sink is stuck in write() once the pipe is full, and
        # its queue and then the source fill up behind it.
        reader = PipeReader(d)
        harness.wait_until(reader.pipe_full, 30, f"a full pipe: {d.stderr_tail()}")
        # Full for a moment, the pipeline is waited for; full for a second, the partitions pause.
        harness.wait_until(lambda: "partitions paused" in d.stderr(), 30,
                           f"the source to pause its partitions: {d.stderr_tail()}")
        reader.rss_samples.append(d.rss_kib())

        # Held back: the lag per partition is what the peer's own offsets say it is.
        held = {}

        def lag_as_the_peer_says():
            committed = peer.committed(GROUP, TOPIC)
            expected_lag = {p: hwm[p] - max(committed.get(p, -1), 0) for p in range(PARTITIONS)}
            held.update(lag_gauges(base), expected=expected_lag)
            return held["ingestd_kafka_consumer_lag"] == expected_lag
        try:
            harness.wait_until(lag_as_the_peer_says, 30, what="the lag gauges")
        except harness.Timeout:
            self.fail(f"the lag gauges never matched the peer's offsets: {held}")
        self.assertGreater(sum(held["expected"].values()), 0, "no lag while held back")
        reads = held["ingestd_kafka_consumer_read_lag"]
        self.assertEqual(sorted(reads), list(range(PARTITIONS)), f"read lag: {reads}")
        for p in range(PARTITIONS):
            self.assertLessEqual(reads[p], held["expected"][p], f"partition {p}")
        reader.rss_samples.append(d.rss_kib())
        reader.start()
        harness.wait_until(reader.slow_done.is_set, 60, "the slow phase of the reader")
        self.assertTrue(d.running(), f"the daemon died while held back: exit {d.poll()} "
                        f"(-N: signal N); stderr: {d.stderr_tail()}")
        peak = max(reader.rss_samples)
        self.assertLess(peak - baseline, RSS_GROWTH_BOUND_KIB,
                        f"RSS grew from {baseline} KiB to {peak} KiB while held back "
                        f"(the topic holds {TOPIC_BYTES_MIN // 1024} KiB)")

        def complete():
            return reader.newlines >= len(expected) and \
                {json.loads(line)["id"] for line in reader.lines()} >= expected
        try:
            harness.wait_until(complete, 60, f"{len(expected)} ids on stdout")
        except harness.Timeout:
            pass  # reported below, with what is missing
        zero = {p: 0.0 for p in range(PARTITIONS)}
        harness.wait_until(lambda: lag_gauges(base) == {"ingestd_kafka_consumer_lag": zero,
                                                        "ingestd_kafka_consumer_read_lag": zero},
                           30, what="the lag gauges to fall to 0")
        # The stop commits synchronously what was acknowledged: everything, on a clean run.
        rc, _ = d.stop(timeout=60)
        reader.join(30)
        self.assertEqual(rc, 0, d.stderr_tail())
        c = Counters(d.stats())

        counts = collections.Counter(json.loads(line)["id"] for line in reader.lines())
        missing = sorted(expected - set(counts))
        extra = sorted(set(counts) - expected)
        duplicated = sum(n - 1 for n in counts.values() if n > 1)
        self.assertEqual((len(missing), missing[:20]), (0, []), "ids missing")
        self.assertEqual(extra[:20], [], "ids never produced")
        self.assertEqual(duplicated, 0, "ids written twice (at-least-once duplicates)")
        self.assertEqual(peer.committed(GROUP, TOPIC), hwm, "committed offsets after the stop")
        self.assertGreater(c["in.paused"], 0, "the source never paused")
        self.assertEqual(c["in.messages"], len(expected))
        self.assertEqual(c["out.events_out"], len(expected))
        self.assertEqual(c.get("out.queue_dropped"), 0)
        print(f"\nbackpressure: topic {TOPIC_BYTES_MIN // 1024} KiB, RSS {baseline} KiB at start, "
              f"peak {peak} KiB held back ({len(reader.rss_samples)} samples), paused "
              f"{c['in.paused']} times; {time.monotonic() - started:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
