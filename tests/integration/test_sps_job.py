"""Job 1 as shipped, config/sps.yaml, against a live server-sent-events stream (sse_peer.py):
Netflix-style play events, about 1 % with titles corrupted to "busted data...", some torn JSON
lines; the server breaks the stream twice (once between events, once in the middle of one) and
resumes after the Last-Event-ID of each reconnect, then ends it (SPS_STOP_AT_EOF=true ends the
run, which emits the last windows).

Both outputs must equal counts computed here from the generated records, exactly: every second,
every group, the last window included; `sps_all` with the busted titles, `sps` without them.
Every event is accounted for: torn lines as parse errors (dead-lettered), busted records as
rejected by the sanitize rule, the rest parsed, and non-success plays as filtered by the windows.
"""

import collections
import json
import os
import random
import unittest

import harness
from harness import Counters
from sse_peer import SsePeer

BASE_MS = 1515445354624  # 2018-01-08T21:02:34.624Z
SPAN_MS = 15_000
MAX_DISORDER_MS = 400    # below the config's allowed_lateness (2s): nothing is late
DEVICES = ["xbox_one", "ps4", "roku", "apple_tv", "android", "ios", "chromecast"]
TITLES = ["narcos", "dark", "ozark", "mindhunter", "the crown", "stranger things"]
COUNTRIES = ["UK", "US", "BR", "DE", "FR", "IN", "JP"]
SEVS = ["success"] * 8 + ["error", "warn"]


class Plays:
    """The generated stream and the counts expected of it."""

    def __init__(self, seed=1515445354, n=20_000):
        rng = random.Random(seed)
        self.events = []
        self.valid = []   # (time_ms, device, title, country, sev)
        self.torn = 0
        for i in range(n):
            t = BASE_MS + i * SPAN_MS // n
            if rng.random() < 0.3:
                t -= rng.randint(0, MAX_DISORDER_MS)
            title = rng.choice(TITLES)
            if rng.random() < 0.01:
                title = "busted data " + "".join(rng.choice("0123456789abcdef") for _ in range(8))
            rec = {"device": rng.choice(DEVICES), "sev": rng.choice(SEVS), "title": title,
                   "country": rng.choice(COUNTRIES), "time": t,
                   "bitrate": rng.randint(235, 16000), "session": f"s{rng.getrandbits(40):x}"}
            data = json.dumps(rec, separators=(",", ":"))
            if rng.random() < 0.005:
                data = data[:rng.randint(1, len(data) - 2)]  # torn: never a whole object
                self.torn += 1
            else:
                self.valid.append((t, rec["device"], title, rec["country"], rec["sev"]))
            self.events.append({"id": str(i), "data": data})

    def busted(self):
        return sum(1 for r in self.valid if r[2].startswith("busted data"))

    def counts(self, with_busted):
        counts = collections.Counter()
        for t, device, title, country, sev in self.valid:
            if sev != "success" or (not with_busted and title.startswith("busted data")):
                continue
            counts[(harness.rfc3339_ms(t - t % 1000), device, title, country)] += 1
        return dict(counts)


def output_counts(path):
    counts = {}
    for row in harness.read_jsonl(path):
        key = (row["window_start"], row["device"], row["title"], row["country"])
        if key in counts:
            raise AssertionError(f"group written twice: {key}")
        counts[key] = row["sps"]
    return counts


class SpsJobTest(harness.IntegrationTestCase):
    def test_sps_from_a_breaking_stream_counts_exactly(self):
        plays = Plays()
        n = len(plays.events)
        peer = SsePeer(plays.events, plans=[{"cut_after": 7000},
                                            {"cut_after": 6000, "mid_event": True}],
                       prelude=": plays\nretry: 50\n\n")
        env = dict(os.environ)
        env.update({"INGESTD_DATA_DIR": self.path("data"), "SPS_URL": peer.url,
                    "SPS_STOP_AT_EOF": "true", "SPS_ALL_OUTPUT": self.path("sps-all.jsonl"),
                    "SPS_OUTPUT": self.path("sps.jsonl")})
        os.makedirs(self.path("data"))
        config = os.path.join(harness.SOURCE_DIR, "config", "sps.yaml")
        d = harness.Daemon(self.dir, config, env=env)
        self.daemons.append(d.start())
        try:
            rc = d.wait(120)
        finally:
            peer.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        self.assertEqual([c["last_event_id"] for c in peer.connections], [None, "6999", "12999"])

        c = Counters(d.stats())
        self.assertEqual(c["plays.events"], n)
        self.assertEqual(c["plays.reconnects"], 2)
        self.assertEqual(c["plays.errors_read"], 2)
        self.assertEqual(c["plays.closed"], 1)
        busted = plays.busted()
        self.assertGreater(busted, 100)
        self.assertGreater(plays.torn, 50)
        for parser in ("all", "clean"):
            self.assertEqual(c[f"{parser}.errors"], plays.torn, parser)
            self.assertEqual(c[f"{parser}.dead_letters"], plays.torn, parser)
            self.assertEqual(
                harness.count_lines(os.path.join(self.path("data"), "dead_letter",
                                                 f"{parser}.jsonl")), plays.torn)
        self.assertEqual(c["all.parsed"], n - plays.torn)
        self.assertEqual(c["clean.rejected"], busted)
        self.assertEqual(c["clean.sanitize.busted_title.rejected"], busted)
        self.assertEqual(c["clean.parsed"], n - plays.torn - busted)
        self.assertEqual(c.get("sps_all.late"), 0)
        self.assertEqual(c.get("sps.late"), 0)

        expected_all = plays.counts(with_busted=True)
        expected = plays.counts(with_busted=False)
        got_all = output_counts(self.path("sps-all.jsonl"))
        got = output_counts(self.path("sps.jsonl"))
        self.assertEqual(got_all, expected_all)
        self.assertEqual(got, expected)
        # The last second is there, and every valid play is counted or filtered.
        last = max(k[0] for k in expected_all)
        self.assertTrue(any(k[0] == last for k in got_all))
        self.assertEqual(sum(got_all.values()) + c["sps_all.filtered"], n - plays.torn)
        self.assertEqual(sum(got.values()) + c["sps.filtered"], n - plays.torn - busted)


if __name__ == "__main__":
    unittest.main()
