"""The Kafka sink against a Kafka-protocol cluster: the real daemon produces to the test peer
(librdkafka's mock cluster, tests/tools/kafka_mock) and the real `kcat` reads everything back.

Events carry unique sequence numbers from the generator; the expected set is computed here, and
every check counts what is missing and what is duplicated. Skipped (with the reason) only when
kcat is not installed."""

import collections
import json
import os
import sys
import unittest

import harness
import kafka_peer
from harness import Counters, q

TEMPLATE = '{"seq":{{seq}},"user":"u{{int 0 19}}","service":"{{choice api,db,web}}"}'


def seqs_of(lines):
    return [json.loads(line)["seq"] for line in lines]


class KafkaSinkTest(kafka_peer.KafkaTestCase):
    def config(self, peer, sink, count, parsers=True, extra="", rate=0, batch=500,
               keep_running=False):
        """keep_running adds harness.KEEP_RUNNING_SOURCE: the run goes on after gen ends."""
        inputs = "ev" if parsers else "gen"
        parser = "parsers:\n  ev: { type: json, inputs: [gen] }\n" if parsers else ""
        idle = f"  {harness.KEEP_RUNNING_SOURCE}\n" if keep_running else ""
        return f"""
data_dir: {q(self.dir)}
batch: {{ max_events: {batch}, linger: 20ms }}
sources:
  gen: {{ type: generator, count: {count}, rate: {rate}, template: {q(TEMPLATE)} }}
{idle}{parser}sinks:
  out:
    type: kafka
    inputs: [{inputs}]
    brokers: {q(peer.bootstrap)}
{sink}{extra}"""

    def assert_exactly(self, seqs, count, duplicates_allowed=False):
        counts = collections.Counter(seqs)
        missing = [s for s in range(count) if s not in counts]
        extra = sorted(set(counts) - set(range(count)))
        duplicated = sum(n - 1 for n in counts.values() if n > 1)
        self.assertEqual(missing[:20], [], f"{len(missing)} sequence numbers missing")
        self.assertEqual(extra, [], "sequence numbers never generated")
        if not duplicates_allowed:
            self.assertEqual(duplicated, 0, "duplicated messages")
        return duplicated

    def test_every_event_arrives_once_in_its_original_bytes(self):
        count = 30000
        peer = self.peer(topics={"events": 4})
        d = self.run_daemon(self.config(peer, "    topic: events\n", count, parsers=False))
        lines = kafka_peer.consume(peer.bootstrap, "events")
        self.assert_exactly(seqs_of(lines), count)
        self.assertTrue(lines[0].startswith('{"seq":'), lines[0])
        self.assertEqual(sum(peer.watermarks("events").values()), count)
        c = Counters(d.stats())
        self.assertEqual(c["out.delivered"], count)
        self.assertEqual(c["out.events_out"], count)
        self.assertEqual(c["out.delivery_failed"], 0)
        self.assertEqual(c["out.retries"], 0)

    def test_same_key_same_partition(self):
        count = 5000
        peer = self.peer(topics={"events": 4})
        d = self.run_daemon(self.config(peer, "    topic: events\n    key: 'user-{user}'\n",
                                        count))
        rows = kafka_peer.consume(peer.bootstrap, "events", "%p %k %s\\n")
        partition_of = {}
        seqs = []
        for row in rows:
            partition, key, value = row.split(" ", 2)
            event = json.loads(value)
            self.assertEqual(key, f"user-{event['user']}")
            seqs.append(event["seq"])
            self.assertEqual(partition_of.setdefault(key, partition), partition,
                             f"key {key} in two partitions")
        self.assert_exactly(seqs, count)
        self.assertEqual(len(partition_of), 20)
        self.assertGreater(len(set(partition_of.values())), 1, "every key in one partition")
        self.assertEqual(Counters(d.stats())["out.delivered"], count)

    def test_topic_template_routes_by_field_and_dead_letters_events_without_it(self):
        count = 3000
        peer = self.peer(topics={"svc-api": 2, "svc-db": 2, "svc-web": 2})
        # Every 7th event lacks `service`: the generator cannot leave a field out, so a second
        # generator with another template feeds the same sink.
        config = self.config(peer, "    topic: 'svc-{service}'\n    encoding: json\n", count)
        config = config.replace(
            "  gen: {", "  bare: { type: generator, count: 40, template: '{\"seq\":-1}' }\n"
            "  gen: {").replace("inputs: [gen] }", "inputs: [gen, bare] }")
        d = self.run_daemon(config)
        seqs = []
        for service in ("api", "db", "web"):
            lines = kafka_peer.consume(peer.bootstrap, f"svc-{service}")
            self.assertTrue(lines, f"svc-{service} is empty")
            for line in lines:
                self.assertEqual(json.loads(line)["service"], service)
            seqs += seqs_of(lines)
        self.assert_exactly(seqs, count)
        c = Counters(d.stats())
        self.assertEqual(c["out.missing_field"], 40)
        self.assertEqual(c["out.dead_letters"], 40)
        self.assertEqual(c["out.events_out"], count, "dead-lettered events are not counted out")
        self.assertEqual(c["out.events_in"], count + 40)
        dead = harness.read_jsonl(self.path("dead_letter", "out.jsonl"))
        self.assertEqual(len(dead), 40)
        self.assertEqual(dead[0]["raw"], '{"seq":-1}')
        self.assertEqual(dead[0]["reason"], "the event has no field 'service' for the topic "
                                            "template")

    def test_missing_topic_fails_start_naming_topic_and_brokers(self):
        peer = self.peer(topics={"events": 1})
        d = self.start_daemon(self.config(peer, "    topic: nosuch\n", 10, parsers=False))
        rc = d.wait(60)
        self.assertNotEqual(rc, 0)
        self.assertIn(f"topic nosuch does not exist at {peer.bootstrap}", d.stderr())
        self.assertNotIn("nosuch", peer.topics(), "the check must not create the topic")

    def test_create_topic_that_the_cluster_cannot_create_fails_start_and_says_why(self):
        # librdkafka's mock cluster has no controller for the Admin API and does not implement
        # CreateTopics (rdkafka_mock.h says so), so creation fails here: the start must fail,
        # naming the topic, the partitions asked for, the brokers and librdkafka's answer, and
        # nothing may be left half-made.
        peer = self.peer(topics={"events": 1})
        d = self.start_daemon(self.config(
            peer, "    topic: fresh\n    create_topic: { partitions: 3 }\n", 100, parsers=False))
        rc = d.wait(60)
        self.assertNotEqual(rc, 0)
        self.assertIn(f"cannot create topic fresh (3 partitions) at {peer.bootstrap}: ",
                      d.stderr())
        self.assertNotIn("fresh", peer.topics())

    def test_create_topic_leaves_an_existing_topic_alone(self):
        peer = self.peer(topics={"events": 2})
        self.run_daemon(self.config(
            peer, "    topic: events\n    create_topic: { partitions: 5 }\n", 100,
            parsers=False))
        self.assertEqual(peer.topics()["events"], 2)
        self.assertEqual(len(kafka_peer.consume(peer.bootstrap, "events")), 100)

    def test_invalid_librdkafka_property_is_a_config_error_at_its_position(self):
        peer = self.peer()
        text = self.config(peer, "    topic: events\n    librdkafka:\n"
                                 "      linger.ms: \"5\"\n      linger.msec: \"5\"\n", 10)
        path = self.write_file("bad.yaml", text)
        lines = text.splitlines()
        line = next(i for i, l in enumerate(lines) if "linger.msec" in l) + 1
        col = lines[line - 1].index('"5"') + 1
        r = harness.run_cli(["validate", path, "--plugin-dir", harness.PLUGIN_DIR])
        self.assertEqual(r.returncode, harness.EX_CONFIG, r.stderr)
        self.assertIn(f"{path}:{line}:{col}: sinks.out (kafka): librdkafka.linger.msec: "
                      "unknown librdkafka property 'linger.msec'", r.stderr)
        self.assertEqual(r.stderr.count("librdkafka."), 1, r.stderr)

    def test_brokers_down_then_up_loses_nothing(self):
        """All brokers go down mid-stream: batches time out inside librdkafka, the core retries
        them and opens its breaker; once the brokers are back every event arrives (duplicates
        are allowed: a failed batch is resent whole)."""
        count = 8000
        peer = self.peer(topics={"events": 2})
        d = self.start_daemon(self.config(
            peer, "    topic: events\n    delivery_timeout: 500ms\n"
                  "    librdkafka: { reconnect.backoff.max.ms: '200' }\n"
                  "    retry: { initial: 50ms, max: 400ms }\n"
                  "    breaker: { failures: 3, open_for: 500ms }\n", count, parsers=False,
            rate=2000, batch=100, keep_running=True))
        harness.wait_until(lambda: (peer.total("events") or 0) > 1000, 30,
                           "the first events in Kafka")
        self.assertEqual(peer.command("down all"), "ok")
        harness.wait_until(lambda: "write failed, retrying" in d.stderr(), 30,
                           "a failed write retried by the core")
        harness.wait_until(lambda: "-> open" in d.stderr(), 30, "the breaker opening")
        self.assertEqual(peer.command("up all"), "ok")
        harness.wait_until(lambda: (peer.total("events") or 0) >= count, 120,
                           "every event in Kafka once the brokers are back",
                           explain=lambda: f"{peer.last_error}; {d.stderr_tail()}")
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        duplicated = self.assert_exactly(seqs_of(kafka_peer.consume(peer.bootstrap, "events")),
                                         count, duplicates_allowed=True)
        c = Counters(d.stats())
        self.assertGreater(c["out.retries"], 0)
        self.assertGreater(c["out.breaker_opened"], 0)
        self.assertGreater(c["out.delivery_failed"], 0)
        self.assertEqual(c["out.failed"], 0)
        self.assertEqual(c["out.events_out"], count)
        print(f"\nbrokers down: {c['out.retries']} retries, {duplicated} duplicates, "
              f"{c['out.delivery_failed']} failed deliveries", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
