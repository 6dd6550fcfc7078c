"""parse/json `sanitize` rules with the real daemon.

- The play-events job: file -> json (reject titles beginning "busted data", strip a token, replace
  a country name) -> window (count per title, event time) -> file, plus a raw file sink beside the
  window. The per-title counts, the raw output and the counters equal what the test computes from
  the input it wrote.
- on_reject: dead_letter sets the rejected records aside as read, with the rule's name.
- An invalid regular expression is a config error at the `match` value's line and column, an
  unknown key is reported at the key, and a repeated rule name at its value, all at once.
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
      - name: busted_title
        field: title
        prefix: busted data
        action: reject
      - {{name: token, field: auth.token, match: '^tok_[0-9]+$', action: strip}}
      - field: country
        equals: United Kingdom
        action: replace
        value: UK
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
        self.assertEqual(c["events.sanitize.2.replaced"],  # unnamed: named by its index
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
        # The parser's workers (one per core) write their dead letters as they parse: every
        # busted record once, in whatever order the workers reached them.
        self.assertEqual(sorted(r["raw"] for r in letters), sorted(busted))
        for r in letters:
            self.assertIn("sanitize rule 'busted_title'", r["reason"])
        self.assertEqual(len(harness.read_jsonl(self.path("raw.jsonl"))), len(kept))

    def validate(self, sanitize):
        """`ingestd validate` on a file whose parser has these sanitize lines (indented 4):
        returns (the file's lines, stderr), after checking that it exits with EX_CONFIG."""
        text = f"""sources:
  plays: {{ type: file, path: {q(self.path("plays.jsonl"))} }}
parsers:
  events:
    type: json
    inputs: [plays]
    sanitize:
{sanitize}sinks:
  out: {{ type: file, inputs: [events], path: {q(self.path("out.jsonl"))} }}
"""
        self.write_file("bad.yaml", text)
        p = harness.run_cli(["validate", "bad.yaml", "--plugin-dir", harness.PLUGIN_DIR],
                            cwd=self.dir)
        self.assertEqual(p.returncode, harness.EX_CONFIG, p.stderr)
        return text.splitlines(), p.stderr

    def test_invalid_rules_are_config_errors_with_positions(self):
        lines, stderr = self.validate("""\
      - name: ok
        field: title
        action: strip
      - name: busted
        field: title
        match: "^(busted"
        action: reject
      - {field: title, action: reject, patern: x}
      - {name: ok, field: other, action: strip}
""")

        def at(needle, column_of):
            """1-based line of the first line holding `needle`, column of `column_of` in it."""
            line = next(i for i, l in enumerate(lines) if needle in l)
            return f"{line + 1}:{lines[line].index(column_of) + 1}"

        # The schema's error (the core's) and the factories' come in the same run.
        regex_at = at("match:", '"^(busted')
        self.assertIn(f"bad.yaml:{regex_at}: parsers.events (json): "
                      f"sanitize.1.match: invalid regular expression", stderr)
        self.assertIn(f"bad.yaml:{at('patern', 'patern')}: parsers.events (json): "
                      f"unknown option 'sanitize.2.patern'", stderr)
        self.assertIn(f"bad.yaml:{at('name: ok, field: other', 'ok, field')}: parsers.events "
                      f"(json): sanitize.3.name: rule name 'ok' is already used by sanitize.0",
                      stderr)

    def test_the_old_mapping_form_is_refused_with_its_position(self):
        _, stderr = self.validate(
            """      busted_title: field=title prefix="busted data" action=reject\n""")
        self.assertIn("bad.yaml:8:7: parsers.events (json): sanitize: expected a list of "
                      "mappings, got a mapping", stderr)


if __name__ == "__main__":
    unittest.main()
