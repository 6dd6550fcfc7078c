"""parse/json `sanitize` rules with the real daemon.

- The play-events job: file -> json (reject titles beginning "busted data", strip a token, replace
  a country name) -> window (count per title, event time) -> file, plus a raw file sink beside the
  window. The per-title counts, the raw output and the counters equal what the test computes from
  the input it wrote.
- on_reject: dead_letter sets the rejected records aside as read, with the rule's name.
- An invalid regular expression is a config error at the rule's line and column, and an unknown
  setting is reported there too, both at once.
"""

import collections
import json
import random
import unittest

import harness
from harness import Counters, q

TITLES = ["narcos", "stranger things", "the crown", "dark", "ozark"]
COUNTRIES = ["UK", "United Kingdom", "US", "FR"]
BASE_MS = 1_515_445_354_000


def make_events(n, seed):
    """Play events: about 1% with a busted title, some titles holding numbers, some with a token."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        e = {"device": rng.choice(["xbox_one", "ps4", "web"]), "sev": "success",
             "title": rng.choice(TITLES), "country": rng.choice(COUNTRIES),
             "time": BASE_MS + i * 7}
        roll = rng.random()
        if roll < 0.01:
            e["title"] = f"busted data {rng.randrange(10000)}"
        elif roll < 0.02:
            e["title"] = rng.randrange(1000)  # a number never matches a string pattern
        elif roll < 0.025:
            e["title"] = f"not busted data {i}"  # the prefix is anchored
        if rng.random() < 0.3:
            e["auth"] = {"token": f"tok_{i}", "user": f"u{i % 17}"}
        events.append(e)
    return events


def expected(events):
    """What the pipeline should leave: (per-title counts, kept events after strip/replace)."""
    kept = []
    for e in events:
        if isinstance(e["title"], str) and e["title"].startswith("busted data"):
            continue
        out = dict(e)
        if "auth" in e:
            out = {k: v for k, v in e.items() if k != "auth"}
            out["auth.user"] = e["auth"]["user"]  # token stripped; the event is re-encoded flat
            if e["country"] == "United Kingdom":
                out["country"] = "UK"
        elif e["country"] == "United Kingdom":
            out["country"] = "UK"
        kept.append(out)
    counts = collections.Counter(str(e["title"]) for e in kept)
    return counts, kept


class JsonSanitizeTest(harness.IntegrationTestCase):
    def config(self, on_reject="drop"):
        return f"""
data_dir: {q(self.dir)}
sources:
  plays: {{ type: file, path: {q(self.path("plays.jsonl"))} }}
parsers:
  events:
    type: json
    inputs: [plays]
    time_field: time
    on_reject: {on_reject}
    sanitize:
      busted_title: field=title prefix="busted data" action=reject
      token: [field=auth.token, "match=^tok_[0-9]+$", action=strip]
      uk: 'field=country equals="United Kingdom" action=replace value=UK'
aggregates:
  per_title:
    type: window
    inputs: [events]
    group_by: [title]
    window: {{ size: 1h, time: event }}
    metrics: {{ plays: count }}
sinks:
  counts: {{ type: file, inputs: [per_title], path: {q(self.path("counts.jsonl"))} }}
  raw: {{ type: file, inputs: [events], path: {q(self.path("raw.jsonl"))} }}
"""

    def write_events(self, events):
        with open(self.path("plays.jsonl"), "w") as f:
            for e in events:
                f.write(json.dumps(e, separators=(",", ":")) + "\n")

    def test_busted_titles_are_excluded_from_per_title_counts(self):
        events = make_events(20_000, seed=7)
        self.write_events(events)
        counts, kept = expected(events)
        rejected = len(events) - len(kept)
        self.assertGreater(rejected, 100)  # the input does hold busted titles

        d = self.run_daemon(self.config())
        # A numeric title is grouped by its text form: compare titles as text.
        got = collections.Counter()
        for r in harness.read_jsonl(self.path("counts.jsonl")):
            got[str(r["title"])] += r["plays"]
        self.assertEqual(dict(got), dict(counts))
        self.assertFalse(any(t.startswith("busted data") for t in got))

        self.assertEqual(harness.read_jsonl(self.path("raw.jsonl")), kept)

        c = Counters(d.stats())
        self.assertEqual(c["events.rejected"], rejected)
        self.assertEqual(c["events.sanitize.busted_title.rejected"], rejected)
        self.assertEqual(c["events.parsed"], len(kept))
        self.assertEqual(c["events.sanitize.token.stripped"],
                         sum(1 for e in kept if "auth.user" in e))
        self.assertEqual(c["events.sanitize.uk.replaced"],
                         sum(1 for e in events if e["country"] == "United Kingdom" and
                             not (isinstance(e["title"], str) and
                                  e["title"].startswith("busted data"))))
        self.assertEqual(c.get("events.dead_letters"), 0)

    def test_rejected_records_can_be_dead_lettered(self):
        events = make_events(3_000, seed=11)
        self.write_events(events)
        _, kept = expected(events)
        busted = [json.dumps(e, separators=(",", ":")) for e in events
                  if isinstance(e["title"], str) and e["title"].startswith("busted data")]
        d = self.run_daemon(self.config(on_reject="dead_letter"))
        c = Counters(d.stats())
        self.assertEqual(c["events.rejected"], len(busted))
        self.assertEqual(c["events.dead_letters"], len(busted))
        letters = harness.read_jsonl(self.path("dead_letter", "events.jsonl"))
        self.assertEqual([r["raw"] for r in letters], busted)
        for r in letters:
            self.assertIn("sanitize rule 'busted_title'", r["reason"])
        self.assertEqual(len(harness.read_jsonl(self.path("raw.jsonl"))), len(kept))

    def test_invalid_rules_are_config_errors_with_positions(self):
        text = f"""sources:
  plays: {{ type: file, path: {q(self.path("plays.jsonl"))} }}
parsers:
  events:
    type: json
    inputs: [plays]
    sanitize:
      ok: field=title action=strip
      busted: field=title match="^(busted" action=reject
      typo: field=title action=reject patern=x
sinks:
  out: {{ type: file, inputs: [events], path: {q(self.path("out.jsonl"))} }}
"""
        self.write_file("bad.yaml", text)
        p = harness.run_cli(["validate", "bad.yaml", "--plugin-dir", harness.PLUGIN_DIR],
                            cwd=self.dir)
        self.assertEqual(p.returncode, harness.EX_CONFIG, p.stderr)
        lines = text.splitlines()
        busted_line = next(i for i, l in enumerate(lines) if "busted:" in l) + 1
        busted_col = lines[busted_line - 1].index("field=") + 1
        typo_line = next(i for i, l in enumerate(lines) if "typo:" in l) + 1
        typo_col = lines[typo_line - 1].index("field=") + 1
        self.assertIn(f"bad.yaml:{busted_line}:{busted_col}: parsers.events (json): "
                      f"sanitize.busted: match: invalid regular expression", p.stderr)
        self.assertIn(f"bad.yaml:{typo_line}:{typo_col}: parsers.events (json): "
                      f"sanitize.typo: unknown setting 'patern'", p.stderr)


if __name__ == "__main__":
    unittest.main()
