"""A Kafka outage end to end: a generator numbers its events at a steady rate, ingestd writes them
to the Kafka test peer (librdkafka's mock cluster), every broker goes down for 20 s and comes
back. The real `kcat` then reads the topic back and the test checks, against range(COUNT)
computed here: nothing missing, duplicates only from retried batches; the spool took the data
during the outage and was replayed afterwards at replay_rate (measured from the partitions' high
watermarks); the breaker went closed -> open -> half_open -> closed."""

import collections
import json
import sys
import time
import unittest

import harness
import kafka_peer
from harness import Counters, q, wait_until
from kafka_peer import KafkaPeer

OUTAGE_S = 20
RATE = 1500  # events/s from the generator
COUNT = RATE * (OUTAGE_S + 2)  # the generator ends during the outage
REPLAY_RATE = 5000
BATCH = 500  # replay joins up to this many per write: not bound by the round trip
TEMPLATE = '{"seq":{{seq}},"pad":"{{hex 32}}"}'


def why_not(peer, daemon):
    """What a timed-out wait reports: the peer's last answers and the daemon's log."""
    return (f"peer: hwm {peer.command('hwm events')!r}, last error {peer.last_error!r}\n"
            f"peer stderr: {peer.stderr()[-1500:]}\n"
            f"ingestd stderr (tail): {daemon.stderr_tail(4000)}")


class KafkaOutageTest(kafka_peer.KafkaTestCase):
    def test_every_broker_down_for_20s_loses_nothing(self):
        peer = KafkaPeer(self.dir, brokers=3, topics={"events": 2})
        self.addCleanup(peer.close)
        d = self.start_daemon(f"""
data_dir: {q(self.dir)}
batch: {{ max_events: {BATCH}, linger: 20ms }}
sources:
  gen: {{ type: generator, count: {COUNT}, rate: {RATE}, template: {q(TEMPLATE)} }}
  {harness.KEEP_RUNNING_SOURCE}  # gen ends about when the outage does
sinks:
  out:
    type: kafka
    inputs: [gen]
    brokers: {q(peer.bootstrap)}
    topic: events
    delivery_timeout: 500ms
    librdkafka: {{ reconnect.backoff.max.ms: '200' }}
    retry: {{ initial: 50ms, max: 400ms }}
    breaker: {{ failures: 3, open_for: 1s }}
    spool: {{ replay_rate: {REPLAY_RATE} }}
""")

        def in_kafka():
            return peer.total("events") or 0

        def explain():
            return why_not(peer, d)
        wait_until(lambda: in_kafka() > 1000, 30, "the first events in Kafka", explain=explain)
        # (Asked while the brokers are up: an error is a failure here.)
        before = sum(peer.watermarks("events").values())
        self.assertEqual(peer.command("down all"), "ok")
        down_at = time.monotonic()
        wait_until(lambda: "closed -> open" in d.stderr(), 30, "the breaker to open")
        wait_until(lambda: time.monotonic() - down_at >= OUTAGE_S, OUTAGE_S + 5, "the outage",
                   interval=0.5)
        self.assertEqual(peer.command("up all"), "ok")

        # Replay pace: the high watermarks, sampled while the spool drains (the generator has
        # ended, so everything that arrives now comes from the spool).
        samples = []

        def drained():
            asked = time.monotonic()
            n = in_kafka()
            samples.append(((asked + time.monotonic()) / 2, n))  # the query takes time too
            return n >= COUNT
        wait_until(drained, 120, "the spool to drain into Kafka", interval=0.1, explain=explain)
        rc, _ = d.stop()
        stderr = d.stderr()
        self.assertEqual(rc, 0, stderr[-3000:])

        counts = collections.Counter(
            json.loads(line)["seq"] for line in kafka_peer.consume(peer.bootstrap, "events"))
        missing = [s for s in range(COUNT) if s not in counts]
        self.assertEqual(missing[:20], [], f"{len(missing)} sequence numbers missing")
        self.assertEqual(set(counts), set(range(COUNT)))
        duplicated = sum(n - 1 for n in counts.values() if n > 1)
        c = Counters(d.stats())
        # A duplicate comes only from a batch sent again after a failed attempt.
        self.assertLessEqual(duplicated, c["out.retries"] * BATCH)
        self.assertEqual(c["out.events_out"], COUNT)
        self.assertEqual(c.get("out.failed"), 0)
        # The spool took what the outage held up, and gave it all back.
        self.assertGreater(c["out.spooled"], (COUNT - before) * 0.7)
        self.assertEqual(c["out.replayed"], c["out.spooled"])
        for transition in ("closed -> open", "open -> half_open", "half_open -> closed"):
            self.assertIn(f"circuit breaker {transition}", stderr)
        # Replay at replay_rate over the middle of the drain.
        start_n = before + (COUNT - before) * 0.1
        end_n = before + (COUNT - before) * 0.9
        t0 = next(t for t, n in samples if n >= start_n)
        n0 = next(n for t, n in samples if n >= start_n)
        t1 = next(t for t, n in samples if n >= end_n)
        n1 = next(n for t, n in samples if n >= end_n)
        rate = (n1 - n0) / (t1 - t0)
        print(f"\noutage: {c['out.spooled']} spooled, replayed at {rate:.0f} events/s "
              f"(replay_rate {REPLAY_RATE}), {duplicated} duplicates, {c['out.retries']} retries",
              file=sys.stderr)
        # The limit is a ceiling: the replay must not pass it. Below it, the replay is paced by the
        # delivery of each batch too, which a loaded two-core machine slows (a CI run with another
        # test beside it measured 89.8 %); the floor only says the limit, not something far
        # slower, sets the pace.
        self.assertLess(rate, REPLAY_RATE * 1.1)
        self.assertGreater(rate, REPLAY_RATE * 0.7)

    def test_a_dead_kafka_does_not_slow_a_file_sink_beside_it(self):
        """Fan-out to a file sink and a Kafka sink whose brokers are all down from the start: the
        file sink keeps the generator's full rate while the Kafka sink's spool takes its share;
        once the brokers are back, Kafka gets every event too."""
        count, rate = 15000, 5000
        peer = KafkaPeer(self.dir, topics={"events": 2})
        self.addCleanup(peer.close)
        self.assertEqual(peer.command("down all"), "ok")
        copy = self.path("copy.jsonl")
        started = time.monotonic()
        d = self.start_daemon(f"""
data_dir: {q(self.dir)}
batch: {{ max_events: {BATCH}, linger: 20ms }}
sources:
  gen: {{ type: generator, count: {count}, rate: {rate}, template: {q(TEMPLATE)} }}
  {harness.KEEP_RUNNING_SOURCE}
sinks:
  copy: {{ type: file, inputs: [gen], path: {q(copy)} }}
  out:
    type: kafka
    inputs: [gen]
    brokers: {q(peer.bootstrap)}
    topic: events
    delivery_timeout: 500ms
    metadata_timeout: 500ms
    breaker: {{ failures: 2, open_for: 1s }}
    spool: {{ replay_rate: 20000 }}
""")
        wait_until(lambda: harness.count_lines(copy) >= count, 30, "the file sink's copy")
        took = time.monotonic() - started
        # The generator's own pace is count / rate = 3 s.
        self.assertLess(took, count / rate + 2.0, f"the file sink took {took:.1f}s")
        self.assertEqual(peer.command("up all"), "ok")
        wait_until(lambda: (peer.total("events") or 0) >= count, 60,
                   "Kafka to get every event once its brokers are back",
                   explain=lambda: why_not(peer, d))
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        c = Counters(d.stats())
        self.assertEqual(c["copy.events_out"], count)
        self.assertGreater(c["out.spooled"], count // 2)
        self.assertEqual(c["out.events_out"], count)
        seqs = {json.loads(line)["seq"]
                for line in kafka_peer.consume(peer.bootstrap, "events")}
        self.assertEqual(seqs, set(range(count)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
