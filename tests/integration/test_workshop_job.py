"""Job 2, the workshop: config/workshop.yaml (HTTP -> Kafka) and config/workshop-collector.yaml
(Kafka -> rotated files) as shipped, two daemons, the real Kafka test peer, the test's own HTTP
clients.

Four clients POST gzip-compressed JSON arrays of 12 records each to /api/visit/v1/ and
/api/activity/v1/, in two halves (the second once the collector has written the first); every
answer must be 200 (ack: durable: the records are in Kafka). The test
keeps its own list of every record it posted. Then each topic must hold exactly that route's
records, and the collector's record directory one file per topic (rotated at 16 KiB, so several
files for the ~70 KiB of each topic) holding every record of its topic exactly once, as posted,
and nothing else.
"""

import collections
import concurrent.futures
import glob
import gzip
import http.client
import json
import os
import random
import unittest

import harness
import kafka_peer
from harness import Counters, wait_until

CONFIGS = os.path.join(harness.SOURCE_DIR, "config")
ROUTES = {"visit": "/api/visit/v1/", "activity": "/api/activity/v1/"}
REQUESTS_PER_ROUTE = 60
RECORDS_PER_REQUEST = 12


def record_files(directory, topic):
    """The files of a topic in the record directory: the current one and its rotations."""
    return sorted(glob.glob(os.path.join(directory, f"{topic}.jsonl*")))


def complete_records(directory, topic):
    out = []
    for path in record_files(directory, topic):
        with open(path) as f:
            out += [json.loads(line) for line in f.read().split("\n")[:-1] if line]
    return out


class WorkshopJobTest(kafka_peer.KafkaTestCase):
    def test_every_record_once_in_its_topic_and_its_file(self):
        peer = self.peer(topics={"visit": 2, "activity": 2})
        port = harness.free_port()
        records_dir = self.path("records")
        env = dict(os.environ, KAFKA_BROKERS=peer.bootstrap, WORKSHOP_LISTEN=f"127.0.0.1:{port}",
                   WORKSHOP_RECORDS=records_dir, WORKSHOP_ROTATE_SIZE="16KiB",
                   WORKSHOP_GROUP="workshop-test")
        daemons = {}
        for name in ("workshop", "workshop-collector"):
            with open(os.path.join(CONFIGS, f"{name}.yaml")) as f:
                text = f.read()
            daemons[name] = self.start_daemon(
                text, name=name, env=dict(env, INGESTD_DATA_DIR=self.path(f"data-{name}")))
        front, collector = daemons["workshop"], daemons["workshop-collector"]
        wait_until(lambda: "listening on" in front.stderr() or not front.running(), 30,
                   "the http source to listen")
        self.assertTrue(front.running(), front.stderr_tail())

        # Two halves, the second posted once the collector has written the first: each file then
        # takes at least two batches, the first past rotate_size, however the consumer's
        # fetches happen to group the records (all of a topic in one batch would fill one file).
        rng = random.Random(11)
        posted = {topic: [] for topic in ROUTES}
        halves = [[], []]
        for topic in ROUTES:
            for r in range(REQUESTS_PER_ROUTE):
                batch = [{"id": f"{topic}-{r}-{i}", "user": f"u{rng.randrange(500)}",
                          "page": rng.choice(["/", "/watch", "/search?q=ä"]),
                          "n": rng.randrange(10**6), "nested": {"ok": rng.random() < 0.5}}
                         for i in range(RECORDS_PER_REQUEST)]
                posted[topic] += batch
                halves[r * 2 // REQUESTS_PER_ROUTE].append(
                    (topic, gzip.compress(json.dumps(batch).encode())))
        for half in halves:
            rng.shuffle(half)

        def client(share):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            statuses = collections.Counter()
            try:
                for topic, body in share:
                    conn.request("POST", ROUTES[topic], body=body,
                                 headers={"Content-Type": "application/json",
                                          "Content-Encoding": "gzip"})
                    res = conn.getresponse()
                    res.read()
                    statuses[res.status] += 1
            finally:
                conn.close()
            return statuses

        def post(jobs):
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                results = list(pool.map(client, [jobs[i::4] for i in range(4)]))
            statuses = sum(results, collections.Counter())
            self.assertEqual(statuses, {200: len(jobs)}, "every request answered 200 (durable)")

        post(halves[0])
        first = {topic: len(posted[topic]) // 2 for topic in ROUTES}
        wait_until(lambda: all(len(complete_records(records_dir, t)) >= first[t] for t in ROUTES),
                   60, "the first half in the record directory")
        post(halves[1])

        total = {topic: len(posted[topic]) for topic in ROUTES}
        # 200 means in Kafka already: the topics hold every record now.
        for topic in ROUTES:
            in_kafka = [json.loads(line) for line in kafka_peer.consume(peer.bootstrap, topic)]
            self.assertEqual(sorted(in_kafka, key=lambda r: r["id"]),
                             sorted(posted[topic], key=lambda r: r["id"]), topic)

        wait_until(lambda: all(len(complete_records(records_dir, t)) >= total[t] for t in ROUTES),
                   60, "every record in the record directory")
        for name, d in daemons.items():
            rc, _ = d.stop()
            self.assertEqual(rc, 0, f"{name}: {d.stderr_tail()}")
        for topic in ROUTES:
            files = record_files(records_dir, topic)
            self.assertGreater(len(files), 1, f"{topic}: rotated at 16 KiB")
            got = complete_records(records_dir, topic)
            ids = collections.Counter(r["id"] for r in got)
            self.assertEqual([i for i, n in ids.items() if n > 1], [], f"{topic}: duplicates")
            self.assertEqual(sorted(got, key=lambda r: r["id"]),
                             sorted(posted[topic], key=lambda r: r["id"]), topic)

        c = Counters(front.stats())
        self.assertEqual(c["collector.records"], sum(total.values()))
        self.assertEqual(c["collector.requests.visit.200"], REQUESTS_PER_ROUTE)
        self.assertEqual(c["collector.requests.activity.200"], REQUESTS_PER_ROUTE)
        self.assertEqual(c["kafka.events_out"], sum(total.values()))
        self.assertEqual(c.get("records.errors"), 0)
        a = Counters(collector.stats())
        for topic in ROUTES:
            self.assertEqual(a[f"{topic}.events_out"], total[topic])
            self.assertEqual(a[f"{topic}_file.events_out"], total[topic])


if __name__ == "__main__":
    unittest.main()
