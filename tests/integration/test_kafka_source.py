"""The Kafka source against a Kafka-protocol cluster: the real `kcat -P` produces records with
unique ids into the test peer (librdkafka's mock cluster, tests/tools/kafka_mock), the real daemon
consumes them in a consumer group into a file, and the group's committed offsets are read back
from the peer.

The mock's group coordinator holds a rebalance for session.timeout.ms - 1 s whenever the group's
membership changes (a member joining a group that had one, or one that was just left): the
daemons run with a 6 s session timeout so that a restart or a second member waits ~5 s, not 44 s.

The expected ids are computed here; every check counts what is missing and what is duplicated.
Skipped (with the reason) only when kcat is not installed."""

import collections
import json
import os
import re
import signal
import sys
import unittest

import harness
import kafka_peer
from harness import Counters, q

GROUP = "archive"


def records(first, count):
    """(lines, keys): JSON records with ids first..first+count-1, keyed over 16 keys."""
    ids = range(first, first + count)
    return [json.dumps({"id": i, "user": f"u{i % 16}"}) for i in ids], [f"u{i % 16}" for i in ids]


class KafkaSourceTest(kafka_peer.KafkaTestCase):
    def produce(self, peer, first, count, topic="events"):
        lines, keys = records(first, count)
        kafka_peer.produce(peer.bootstrap, topic, lines, keys)

    def config(self, peer, out="out.jsonl", source="", batch=200, data="data"):
        return f"""
data_dir: {q(self.path(data))}
batch: {{ max_events: {batch}, linger: 20ms }}
sources:
  in:
    type: kafka
    brokers: {q(peer.bootstrap)}
    group: {GROUP}
{source or "    topics: [events]"}
    commit_interval: 200ms
    librdkafka: {{ session.timeout.ms: "6000", heartbeat.interval.ms: "500" }}
sinks:
  out: {{ type: file, inputs: [in], path: {q(self.path(out))} }}
"""

    def ids(self, out="out.jsonl", torn_tail=False, writer_running=False):
        """The ids in an output file; with torn_tail, a last line that a kill -9 cut short is left
        out (its record was never acknowledged, so it is not committed either); with
        writer_running, a last line the daemon is still writing is left out."""
        path = self.path(out)
        if not os.path.exists(path):
            return []
        if not torn_tail:
            return [json.loads(line)["id"]
                    for line in harness.read_lines(path, writer_running=writer_running)]
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")
        return [json.loads(line)["id"] for line in lines[:-1]]

    def wait_for_ids(self, expected, outs=("out.jsonl",), timeout=60):
        def complete():
            seen = set()
            for out in outs:
                seen.update(self.ids(out, writer_running=True))
            return expected <= seen
        harness.wait_until(complete, timeout, f"{len(expected)} ids in {', '.join(outs)}")

    def assert_ids(self, ids, expected, duplicates_allowed=0):
        """Every expected id present, nothing else; returns the number of duplicates."""
        counts = collections.Counter(ids)
        missing = sorted(expected - set(counts))
        self.assertEqual(missing[:20], [], f"{len(missing)} ids missing")
        self.assertEqual(sorted(set(counts) - expected)[:20], [], "ids never produced")
        duplicated = sum(n - 1 for n in counts.values() if n > 1)
        self.assertLessEqual(duplicated, duplicates_allowed, "duplicated records")
        return duplicated

    def assert_committed_everything(self, peer, topic="events"):
        hwm = peer.watermarks(topic)
        self.assertEqual(peer.committed(GROUP, topic), hwm, "committed offsets != high watermarks")
        return hwm

    def stop(self, d):
        rc, _ = d.stop(signal.SIGTERM, timeout=60)
        self.assertEqual(rc, 0, d.stderr_tail())
        return Counters(d.stats())

    def test_every_record_once_committed_at_stop_and_nothing_twice_after_a_restart(self):
        first, second = 12000, 3000
        peer = self.peer(topics={"events": 4})
        self.produce(peer, 0, first)
        d = self.start_daemon(self.config(peer))
        self.wait_for_ids(set(range(first)))
        c = self.stop(d)
        self.assert_ids(self.ids(), set(range(first)))
        hwm = self.assert_committed_everything(peer)
        self.assertEqual(sum(hwm.values()), first)
        self.assertTrue(all(h > 0 for h in hwm.values()), f"a partition got nothing: {hwm}")
        self.assertEqual(c["in.messages"], first)
        self.assertEqual(c["in.events_out"], first)
        self.assertEqual(c["out.events_out"], first)
        self.assertGreater(c["in.commits"], 0)
        self.assertEqual(c["in.commit_failed"], 0)
        self.assertEqual(c["in.acks_failed"], 0)
        self.assertEqual(c["in.abandoned"], 0)
        self.assertEqual(c["in.assigned"], 4)
        self.assertIn("assigned 4 partitions", d.stderr())

        # A restart in the same group goes on from the commits: only the new records arrive.
        self.produce(peer, first, second)
        d2 = self.start_daemon(self.config(peer), name="ingestd2")
        self.wait_for_ids(set(range(first + second)))
        c2 = self.stop(d2)
        self.assert_ids(self.ids(), set(range(first + second)))
        self.assertEqual(c2["in.messages"], second)
        self.assert_committed_everything(peer)

    def test_a_reload_keeps_the_unchanged_source_in_the_group(self):
        peer = self.peer(topics={"events": 4})
        self.produce(peer, 0, 2000)
        d = self.start_daemon(self.config(peer))
        self.wait_for_ids(set(range(2000)))

        # A second sink: the source is unchanged, so it keeps its membership and assignment.
        self.write_file("ingestd.yaml", self.config(peer) + f"""  copy: {{ type: file, inputs: [in], path: {q(self.path("copy.jsonl"))} }}
""")
        d.send(signal.SIGHUP)
        harness.wait_until(lambda: re.search(r"reloaded .*: 2 kept \(1 rewired\), 0 replaced, "
                                             r"1 added, 0 removed", d.stderr()), 30,
                           "the reload's result line")
        self.produce(peer, 2000, 2000)
        self.wait_for_ids(set(range(4000)))
        self.wait_for_ids(set(range(2000, 4000)), outs=("copy.jsonl",))
        c = self.stop(d)
        self.assert_ids(self.ids(), set(range(4000)))
        self.assertEqual(d.stderr().count("assigned 4 partitions"), 1, d.stderr_tail())
        self.assertEqual(c["in.assigned"], 4)
        self.assertEqual(c["in.revoked"], 4)  # only at the stop
        self.assertEqual(c["in.messages"], 4000)
        self.assert_committed_everything(peer)

    def test_kill_9_mid_stream_then_restart_repeats_only_what_was_not_committed(self):
        count = 40000
        peer = self.peer(topics={"events": 4})
        self.produce(peer, 0, count)
        d = self.start_daemon(self.config(peer, batch=100))
        harness.wait_until(lambda: sum(max(o, 0) for o in peer.committed(GROUP, "events")
                                       .values()) > 0, 60, "a first commit")
        d.kill()
        committed = sum(max(o, 0) for o in peer.committed(GROUP, "events").values())
        before = self.ids(torn_tail=True)
        self.assertGreater(len(before), 0)

        # The restart writes to a file of its own: the first one may end in a torn line.
        # The first run may have written everything before the kill: the restart is done when it
        # has committed everything, not when the ids are all there.
        d2 = self.start_daemon(self.config(peer, out="out2.jsonl", batch=100), name="ingestd2")
        harness.wait_until(lambda: set(before) | set(self.ids("out2.jsonl", writer_running=True))
                           >= set(range(count)),
                           90, f"{count} ids in out.jsonl and out2.jsonl")
        harness.wait_until(lambda: peer.committed(GROUP, "events") == peer.watermarks("events"),
                           90, "the restart to commit everything")
        c2 = self.stop(d2)
        # Whatever was written before the kill but not committed comes again; nothing else.
        written = len(before)
        duplicated = self.assert_ids(before + self.ids("out2.jsonl"), set(range(count)),
                                     duplicates_allowed=max(written - committed, 0))
        # The restart reads from the commits: everything after them, nothing before.
        self.assertLessEqual(c2["in.messages"], count - committed)
        self.assertGreaterEqual(c2["in.messages"], count - written)
        self.assert_committed_everything(peer)
        print(f"\nkill -9: {written} written, {committed} committed, {duplicated} duplicated",
              file=sys.stderr)

    def test_two_daemons_in_one_group_share_the_partitions(self):
        count = 8000
        peer = self.peer(topics={"events": 4})
        a = self.start_daemon(self.config(peer, out="a.jsonl", data="a"), name="a")
        harness.wait_until(lambda: "assigned 4 partitions" in a.stderr(), 60,
                           "a owning every partition")
        b = self.start_daemon(self.config(peer, out="b.jsonl", data="b"), name="b")
        harness.wait_until(lambda: "assigned 2 partitions" in b.stderr(), 60,
                           f"b taking half of the partitions; a: {a.stderr_tail()}")
        self.produce(peer, 0, count)
        self.wait_for_ids(set(range(count)), outs=("a.jsonl", "b.jsonl"))
        # Everything is committed before the group changes again: the mock coordinator can answer
        # a rebalance with ILLEGAL_GENERATION, and librdkafka then counts a's partitions as lost,
        # so that what a had not committed yet would be read again (at-least-once, not a loss).
        hwm = peer.watermarks("events")
        harness.wait_until(lambda: peer.committed(GROUP, "events") == hwm, 30,
                           "both members committing everything they wrote")
        # b leaves first and a takes its partitions back; a stops only once that rebalance is
        # over, since a group that is rebalancing refuses commits (they would be repeated later).
        cb = self.stop(b)
        # a takes b's two partitions back, or (when a periodic commit of a's meets the rebalance
        # and librdkafka counts a's own partitions as lost) all four at once.
        harness.wait_until(lambda: a.stderr().count("assigned 2 partitions") >= 1
                           or a.stderr().count("assigned 4 partitions") >= 2, 60,
                           f"a taking b's partitions back: {a.stderr_tail()}")
        ca = self.stop(a)
        self.assertGreater(len(self.ids("a.jsonl")), 0)
        self.assertGreater(len(self.ids("b.jsonl")), 0)
        # Partitions moved before any record was produced: every record exactly once.
        self.assert_ids(self.ids("a.jsonl") + self.ids("b.jsonl"), set(range(count)))
        self.assertEqual(ca["in.messages"] + cb["in.messages"], count)
        self.assertIn("revoked 2 partitions", a.stderr())
        self.assert_committed_everything(peer)

    def test_brokers_down_at_start_warns_and_consumes_once_they_are_up(self):
        # (A subscribed topic that does not exist cannot be tested here: the mock cluster creates
        # every topic a client asks about.)
        peer = self.peer(topics={"events": 2})
        self.produce(peer, 0, 1000)
        self.assertEqual(peer.command("down all"), "ok")
        d = self.start_daemon(self.config(peer))
        harness.wait_until(lambda: "warning [sources.in] librdkafka" in d.stderr(), 30,
                           "a warning about the brokers")
        self.assertTrue(d.running(), d.stderr_tail())
        self.assertEqual(self.ids(), [])
        self.assertEqual(peer.command("up all"), "ok")
        self.wait_for_ids(set(range(1000)))
        self.stop(d)
        self.assert_ids(self.ids(), set(range(1000)))
        self.assert_committed_everything(peer)

    def test_a_new_group_starting_at_latest_shows_no_backlog_it_will_never_read(self):
        """start: latest and no committed offsets: the records already in the topic are not read,
        so they are no lag either (the gauges count from where the group starts, not from the log
        start); the lag gauges show both partitions at 0 while the topic holds 1000 records."""
        peer = self.peer(topics={"events": 2})
        self.produce(peer, 0, 1000)
        d = self.start_daemon(
            self.config(peer, source="    topics: [events]\n    start: latest\n"
                                     "    lag_interval: 200ms"),
            extra_args=("--admin-listen", "127.0.0.1:0"))
        base = f"http://{d.admin_address()}"
        self.assertEqual(sum(peer.watermarks("events").values()), 1000)
        zero = {0: 0.0, 1: 0.0}
        seen = []

        def both_partitions_sampled():
            seen.append(kafka_peer.lag_gauges(base, "in", "events"))
            return all(len(partitions) == 2 for partitions in seen[-1].values())
        harness.wait_until(both_partitions_sampled, 30, "lag gauges for both partitions")
        # Two samples later still nothing: no backlog appears once the consumer has settled.
        harness.wait_until(lambda: len(seen) >= 3 and both_partitions_sampled(), 30,
                           "two more samples", interval=0.25)
        self.assertEqual(seen[-1], {"ingestd_kafka_consumer_lag": zero,
                                    "ingestd_kafka_consumer_read_lag": zero}, seen)
        c = self.stop(d)
        self.assertEqual(self.ids(), [], "records from before the group were read")
        self.assertEqual(c.get("in.messages"), 0)

    def test_topic_pattern_subscribes_to_matching_topics(self):
        peer = self.peer(topics={"logs-api": 2, "logs-db": 1, "other": 1})
        self.produce(peer, 0, 300, topic="logs-api")
        self.produce(peer, 300, 200, topic="logs-db")
        self.produce(peer, 1000, 50, topic="other")
        d = self.start_daemon(self.config(peer, source="    topic_pattern: 'logs-.*'"))
        self.wait_for_ids(set(range(500)))
        self.stop(d)
        self.assert_ids(self.ids(), set(range(500)))
        self.assert_committed_everything(peer, "logs-api")
        self.assert_committed_everything(peer, "logs-db")
        self.assertEqual(peer.committed(GROUP, "other"), {0: -1})

    def test_bad_options_are_config_errors_at_their_positions(self):
        text = f"""
sources:
  in:
    type: kafka
    brokers: 127.0.0.1:9
    group: g
    topics: [events]
    topic_pattern: "e.*"
    librdkafka:
      fetch.max.bytez: "5"
      enable.auto.commit: "true"
sinks:
  out: {{ type: file, inputs: [in], path: {q(self.path("out.jsonl"))} }}
"""
        path = self.write_file("bad.yaml", text)
        lines = text.splitlines()

        def at(needle, value):
            line = next(i for i, l in enumerate(lines) if needle in l) + 1
            return f"{path}:{line}:{lines[line - 1].index(value) + 1}: sources.in (kafka): "

        r = harness.run_cli(["validate", path, "--plugin-dir", harness.PLUGIN_DIR])
        self.assertEqual(r.returncode, harness.EX_CONFIG, r.stderr)
        self.assertIn(at("topic_pattern", '"e.*"') + "topic_pattern: set either `topics` or "
                      "`topic_pattern`, not both", r.stderr)
        self.assertIn(at("fetch.max.bytez", '"5"') + "librdkafka.fetch.max.bytez: unknown "
                      "librdkafka property 'fetch.max.bytez'", r.stderr)
        self.assertIn(at("enable.auto.commit", '"true"') + "librdkafka.enable.auto.commit: "
                      "'enable.auto.commit' must stay false", r.stderr)


if __name__ == "__main__":
    unittest.main()
