"""Job 3, metric events: config/metric-events.yaml as shipped, on the test's own HTTP traffic.

Clients POST {"username", "count", "metric"} events to /event (one object, arrays, NDJSON), some
with gzip; the test keeps its own list of every event an answer accepted. Requests without a JSON
content type must get 415 and bodies that are not such objects 400, and deliver nothing. At the
stop every open window is written; each output is then compared with the test's own computation
from its list: per user and per metric the events, sum, average, minimum and maximum of count;
the distinct metric names; one row per user with the time it was first seen (between the test
sending that user's first event and hearing the answer).

The windows are in processing time. If the run crosses an hour (or day) boundary, a group is
split over two windows: the test then merges them (events and sums add up, extremes combine) and
checks the distinct counts as bounds, so the check holds at any time of day.
"""

import collections
import gzip
import http.client
import json
import os
import random
import time
import unittest

import harness
from harness import Counters

CONFIG = os.path.join(harness.SOURCE_DIR, "config", "metric-events.yaml")


class MetricEventsJobTest(harness.IntegrationTestCase):
    def setUp(self):
        super().setUp()
        self.port = harness.free_port()
        self.out = self.path("out")
        self.accepted = []  # every event an answer accepted
        self.first_seen = {}  # username -> (sent, answered) of its first accepted event, epoch s
        self.statuses = collections.Counter()

    def post(self, conn, body, content_type="application/json", gzipped=False, events=()):
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if gzipped:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        sent = time.time()
        conn.request("POST", "/event", body=body, headers=headers)
        res = conn.getresponse()
        data = res.read()
        answered = time.time()
        self.statuses[res.status] += 1
        if res.status == 202:
            self.accepted.extend(events)
            for e in events:
                self.first_seen.setdefault(e["username"], (sent, answered))
        return res.status, data

    def test_hourly_and_daily_aggregates_equal_an_independent_count(self):
        env = dict(os.environ, INGESTD_DATA_DIR=self.path("data"), METRIC_EVENTS_DIR=self.out,
                   METRIC_EVENTS_LISTEN=f"127.0.0.1:{self.port}")
        with open(CONFIG) as f:
            d = self.start_daemon(f.read(), env=env)
        harness.wait_until(lambda: "listening on" in d.stderr() or not d.running(), 30,
                           "the http source to listen")
        self.assertTrue(d.running(), d.stderr_tail())

        rng = random.Random(3)
        users = [f"user{i:03}" for i in range(40)]
        metrics = ["clicks", "views", "errors", "latency_ms", "signups", "ünïcode \"quoted\""]

        def event():
            count = rng.choice([rng.randint(-5, 1000), round(rng.uniform(0, 50), 3)])
            return {"username": rng.choice(users), "count": count, "metric": rng.choice(metrics)}

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.addCleanup(conn.close)
        for i in range(300):
            shape = i % 4
            if shape == 0:  # one object
                events = [event()]
                body = json.dumps(events[0]).encode()
            elif shape == 1:  # an array
                events = [event() for _ in range(rng.randint(1, 12))]
                body = json.dumps(events).encode()
            elif shape == 2:  # NDJSON
                events = [event() for _ in range(rng.randint(1, 12))]
                body = "".join(json.dumps(e) + "\n" for e in events).encode()
            else:  # a gzip array
                events = [event() for _ in range(12)]
                body = json.dumps(events).encode()
            ctype = "application/x-ndjson" if shape == 2 else "application/json"
            status, data = self.post(conn, body, ctype, gzipped=shape == 3, events=events)
            self.assertEqual(status, 202, data)

        # Refused whole, with the reason: no JSON content type, and bodies that are not events.
        good = json.dumps(event()).encode()
        for ctype in (None, "text/plain", "application/x-www-form-urlencoded"):
            status, data = self.post(conn, good, ctype)
            self.assertEqual(status, 415, (ctype, data))
        bad_bodies = [
            b'{"username": "a", "count": 1',  # torn
            b'{"username": "a", "count": "7", "metric": "m"}',  # count not a number
            b'{"username": 7, "count": 1, "metric": "m"}',  # username not a string
            b'{"count": 1, "metric": "m"}',  # no username
            b'[{"username": "a", "count": 1, "metric": "m"}, {"username": "b"}]',  # one bad of two
            b'[1, 2]',
            b'"just a string"',
        ]
        for body in bad_bodies:
            status, data = self.post(conn, body)
            self.assertEqual(status, 400, (body, data))
            self.assertIn(b"error", data)
        conn.close()

        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        c = Counters(d.stats())
        self.assertGreater(len(self.accepted), 1000)
        self.assertEqual(c["metric_events.records"], len(self.accepted))
        self.assertEqual(c["events.events_out"], len(self.accepted))
        for agg in ("per_user_hourly", "per_metric_hourly", "metric_names_daily", "users_daily"):
            self.assertEqual(c[f"{agg}.events_in"], len(self.accepted), agg)
        self.assertEqual(self.statuses[415], 3)
        self.assertEqual(self.statuses[400], len(bad_bodies))

        self.check_per_key("per-user-hourly.jsonl", "username")
        self.check_per_key("per-metric-hourly.jsonl", "metric")
        names = harness.read_jsonl(os.path.join(self.out, "metric-names-daily.jsonl"))
        want_names = len({e["metric"] for e in self.accepted})
        if len(names) == 1:
            self.assertEqual(names[0]["metrics"], want_names)
        else:  # a day boundary: each day saw some of them, together all
            self.assertTrue(all(row["metrics"] <= want_names for row in names))
            self.assertGreaterEqual(sum(row["metrics"] for row in names), want_names)
        users = collections.defaultdict(list)
        for row in harness.read_jsonl(os.path.join(self.out, "users-daily.jsonl")):
            users[row["username"]].append(row)
        self.assertEqual(set(users), {e["username"] for e in self.accepted})
        per_user = collections.Counter(e["username"] for e in self.accepted)
        for name, rows in users.items():
            self.assertEqual(sum(r["events"] for r in rows), per_user[name], name)
            first = min(harness.parse_rfc3339(r["first_seen"]) for r in rows)
            sent, answered = self.first_seen[name]
            # Stamped when the aggregator took it: after the send, soon after the answer.
            self.assertGreaterEqual(first, sent - 0.001, name)
            self.assertLessEqual(first, answered + 5, name)

    def check_per_key(self, file, key):
        rows = harness.read_jsonl(os.path.join(self.out, file))
        got = {}
        for row in rows:
            self.assertAlmostEqual(row["avg"], row["sum"] / row["events"], places=6)
            g = got.setdefault(row[key], {"events": 0, "sum": 0, "min": row["min"],
                                          "max": row["max"]})
            g["events"] += row["events"]
            g["sum"] += row["sum"]
            g["min"] = min(g["min"], row["min"])
            g["max"] = max(g["max"], row["max"])
        want = {}
        for e in self.accepted:
            w = want.setdefault(e[key], {"events": 0, "sum": 0, "min": e["count"],
                                         "max": e["count"]})
            w["events"] += 1
            w["sum"] += e["count"]
            w["min"] = min(w["min"], e["count"])
            w["max"] = max(w["max"], e["count"])
        self.assertEqual(set(got), set(want), file)
        for k, w in want.items():
            g = got[k]
            self.assertEqual(g["events"], w["events"], (file, k))
            self.assertAlmostEqual(g["sum"], w["sum"], places=6, msg=(file, k))
            self.assertEqual(g["min"], w["min"], (file, k))
            self.assertEqual(g["max"], w["max"], (file, k))


if __name__ == "__main__":
    unittest.main()
