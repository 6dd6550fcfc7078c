"""Job 1, stream starts per second: SSE-style `data: {json}` lines -> parse/json -> window count of
successful starts per (device, title, country) per event-time window -> file.

The input is generated here (seeded), with disorder smaller than allowed_lateness so that no
record is late, plus malformed lines, blank lines and `event:` lines. The expected counts are
computed from the generated records in Python and compared exactly with the daemon's output.
"""

import collections
import datetime
import json
import random
import unittest

import harness
from harness import Counters, q

BASE_MS = 1515445354624  # 2018-01-08T21:02:34.624Z
SPAN_MS = 20_000
MAX_DISORDER_MS = 300
LATENESS = "500ms"
DEVICES = ["xbox_one", "ps4", "roku", "apple_tv", "android", "ios"]
TITLES = ["narcos", "dark", "ozark", "mindhunter", "busted data..."]
COUNTRIES = ["UK", "US", "BR", "DE", "FR", "IN"]
SEVS = ["success"] * 7 + ["error"] * 2 + ["warn"]


class SseInput:
    """The generated stream and everything the tests expect of it."""

    def __init__(self, seed=20180108, records=50_000):
        rng = random.Random(seed)
        self.lines = []
        self.records = []    # (time_ms, device, title, country, sev) of each valid data line
        self.malformed = []  # the malformed lines, as written
        self.blank = 0       # empty lines (the file source drops and counts these)
        self.prefixless = 0  # non-empty lines without "data: " (the parser skips these)
        for i in range(records):
            nominal = BASE_MS + i * SPAN_MS // records
            t = nominal - rng.randint(0, MAX_DISORDER_MS) if rng.random() < 0.3 else nominal
            rec = {"device": rng.choice(DEVICES), "sev": rng.choice(SEVS),
                   "title": rng.choice(TITLES), "country": rng.choice(COUNTRIES), "time": t}
            if rng.random() < 0.2:
                rec["extra"] = {"bitrate": rng.randint(100, 9000), "cdn": rng.choice("abc")}
            self.records.append((t, rec["device"], rec["title"], rec["country"], rec["sev"]))
            self.lines.append("data: " + json.dumps(rec, separators=(",", ":")))
            r = rng.random()
            if r < 0.010:
                text = json.dumps(rec, separators=(",", ":"))
                self._malformed("data: " + text[:rng.randint(1, len(text) - 2)])
            elif r < 0.013:
                self._malformed("data: busted data...")
            elif r < 0.014:
                self._malformed("data: " + rng.choice(['[1,2,3]', '"busted data..."', '42',
                                                       'null', '{"device":}']))
            elif r < 0.019:
                self.lines.append("")
                self.blank += 1
            elif r < 0.024:
                self.lines.append(rng.choice(["event: x", "event: play", ": heartbeat",
                                              "id: %d" % i, "   "]))
                self.prefixless += 1

    def _malformed(self, line):
        self.lines.append(line)
        self.malformed.append(line)

    def text(self, eol="\n"):
        return eol.join(self.lines) + eol

    def expected_counts(self, size_ms):
        counts = collections.Counter()
        for t, device, title, country, sev in self.records:
            if sev == "success":
                counts[(harness.rfc3339_ms(t - t % size_ms), device, title, country)] += 1
        return dict(counts)

    def filtered(self):
        return sum(1 for r in self.records if r[4] != "success")


def pipeline(workdir, input_path, out_path, size="1s", on_error="drop"):
    return f"""
data_dir: {q(workdir)}
shutdown_timeout: 10s
sources:
  in: {{ type: file, path: {q(input_path)}, mode: read }}
parsers:
  ev:
    type: json
    inputs: [in]
    strip_prefix: "data: "
    on_error: {on_error}
    time_field: time
    time_format: ms
aggregates:
  sps:
    type: window
    inputs: [ev]
    where: {{ sev: success }}
    group_by: [device, title, country]
    window: {{ size: {size}, time: event, allowed_lateness: {LATENESS} }}
    metrics: {{ sps: count }}
sinks:
  out: {{ type: file, inputs: [sps], path: {q(out_path)} }}
"""


class StartsPerSecondTest(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.input = SseInput()

    def run_pipeline(self, size, size_ms, on_error="drop", eol="\n"):
        input_path = self.path("sse.txt")
        with open(input_path, "w", newline="") as f:
            f.write(self.input.text(eol))
        out_path = self.path("sps.jsonl")
        d = self.run_daemon(pipeline(self.dir, input_path, out_path, size, on_error))
        c = Counters(d.stats())

        rows = harness.read_jsonl(out_path, ordered_keys=True)
        got = {}
        for pairs in rows:
            self.assertEqual([k for k, _ in pairs],
                             ["window_start", "window_end", "device", "title", "country", "sps"])
            row = dict(pairs)
            key = (row["window_start"], row["device"], row["title"], row["country"])
            self.assertNotIn(key, got, f"group emitted twice: {key}")
            got[key] = row["sps"]
            start_ms = _parse_rfc3339_ms(row["window_start"])
            self.assertEqual(start_ms % size_ms, 0, row)
            self.assertEqual(row["window_end"], harness.rfc3339_ms(start_ms + size_ms))
        expected = self.input.expected_counts(size_ms)
        self._assert_counts_equal(expected, got)
        starts = [dict(p)["window_start"] for p in rows]
        self.assertEqual(starts, sorted(starts), "windows must be emitted in order of start")

        inp = self.input
        self.assertEqual(c["in.events"], len(inp.lines) - inp.blank)
        self.assertEqual(c["in.empty"], inp.blank)
        self.assertEqual(c["in.oversized"], 0)
        self.assertEqual(c["in.bytes"], len(inp.text(eol).encode()))
        self.assertEqual(c["ev.errors"], len(inp.malformed))
        self.assertEqual(c["ev.skipped"], inp.prefixless)
        self.assertEqual(c["ev.parsed"], len(inp.records))
        self.assertEqual(c["ev.time_missing"], 0)
        self.assertEqual(c["sps.filtered"], inp.filtered())
        self.assertEqual(c["sps.late"], 0)
        self.assertEqual(c["sps.windows"], len(expected))
        self.assertEqual(c["out.events_out"], len(expected))
        self.assertEqual(c.get("out.failed"), 0)
        self.assert_no_loss(c, [("in", "ev"), ("ev", "sps"), ("sps", "out")])
        return d

    def _assert_counts_equal(self, expected, got):
        missing = {k: v for k, v in expected.items() if k not in got}
        extra = {k: v for k, v in got.items() if k not in expected}
        wrong = {k: (expected[k], got[k]) for k in expected if k in got and expected[k] != got[k]}
        self.assertFalse(
            missing or extra or wrong,
            f"{len(expected)} groups expected, {len(got)} written; "
            f"missing {len(missing)} e.g. {list(missing.items())[:3]}; "
            f"unexpected {len(extra)} e.g. {list(extra.items())[:3]}; "
            f"wrong {len(wrong)} (expected, got) e.g. {list(wrong.items())[:3]}")

    def test_one_second_windows(self):
        self.run_pipeline("1s", 1000)

    def test_five_second_windows(self):
        self.run_pipeline("5s", 5000)

    def test_crlf_line_endings(self):
        self.run_pipeline("1s", 1000, eol="\r\n")

    def test_dead_letter_holds_exactly_the_malformed_lines(self):
        self.run_pipeline("1s", 1000, on_error="dead_letter")
        records = harness.read_jsonl(self.path("dead_letter", "ev.jsonl"))
        raws = []
        for r in records:
            self.assertIsInstance(r, dict)
            self.assertTrue(r.get("reason"), f"dead letter without a reason: {r}")
            raws.append(r.get("raw"))
        # Exactly the malformed lines, each once; the parser's workers (one per core) write
        # them as they reach them, so not necessarily in input order.
        self.assertEqual(sorted(raws), sorted(self.input.malformed))


class CountersTest(harness.IntegrationTestCase):
    def test_documented_counters_exist_even_when_zero(self):
        input_path = self.write_file("sse.txt", 'data: {"sev":"success","time":1}\n')
        d = self.run_daemon(pipeline(self.dir, input_path, self.path("out.jsonl")))
        names = set(d.stats())
        expected = {"in.events_out", "in.events", "in.bytes", "in.oversized", "in.empty"}
        for c in ["ev", "sps", "out"]:
            expected |= {f"{c}.{n}" for n in
                         ["events_in", "events_out", "queue_dropped", "shutdown_dropped"]}
        expected |= {"ev.parsed", "ev.errors", "ev.skipped", "ev.time_missing",
                     "sps.filtered", "sps.late", "sps.non_numeric", "sps.windows",
                     "out.failed", "out.bytes", "out.rotations"}
        self.assertEqual(sorted(expected - names), [], "documented counters missing")


class MalformedEdgeCasesTest(harness.IntegrationTestCase):
    """Lines that a lazy JSON parser could wrongly accept: trailing garbage after the object,
    unterminated strings and objects cut short right before the closing brace."""

    def test_edge_cases_are_errors(self):
        bad = [
            'data: {"device":"roku","sev":"success","title":"dark","country":"UK","time":1} x',
            'data: {"device":"roku","sev":"success","title":"dark","country":"UK","time":1}}',
            'data: {"device":"roku","sev":"success","title":"dark","country":"UK","time":1',
            'data: {"device":"roku","sev":"success","title":"dark","country":"UK","time":',
            'data: {"device":"roku","sev":"success","title":"dark","country":"UK","time":1,}',
            'data: {"device":"roku","sev":"success","title":"dark","country":"UK","tim',
            'data: {"device":"roku" "sev":"success"}',
            'data: {device:"roku"}',
        ]
        good = [
            'data: {"device":"roku","sev":"success","title":"dark","country":"UK","time":1000}',
            'data: {"device":"ps4","sev":"success","title":"d\\"ark","country":"UK","time":1500}',
            'data: {"device":"ps4","sev":"error","title":"dark","country":"UK","time":1700}',
        ]
        input_path = self.write_file("sse.txt", "\n".join(good[:1] + bad + good[1:]) + "\n")
        out_path = self.path("sps.jsonl")
        d = self.run_daemon(pipeline(self.dir, input_path, out_path, on_error="dead_letter"))
        c = Counters(d.stats())
        self.assertEqual(c["ev.parsed"], len(good))
        self.assertEqual(c["ev.errors"], len(bad))
        self.assertEqual(c["ev.skipped"], 0)
        rows = harness.read_jsonl(out_path)
        got = sorted((r["device"], r["title"], r["sps"]) for r in rows)
        self.assertEqual(got, [("ps4", 'd"ark', 1), ("roku", "dark", 1)])
        dead = [r.get("raw") for r in harness.read_jsonl(self.path("dead_letter", "ev.jsonl"))]
        self.assertEqual(dead, bad)


def _parse_rfc3339_ms(text):
    dt = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    return int(dt.timestamp()) * 1000 + dt.microsecond // 1000


if __name__ == "__main__":
    unittest.main(verbosity=2)
