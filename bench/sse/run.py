#!/usr/bin/env python3
"""SSE source benchmark for ingestd (see bench/README.md).

1. Starts sse_server.py, which renders N play events (default 2,000,000; seeded; event times in
   order over 20 s) as one text/event-stream body in memory (`data: {json}` and a blank line
   each, about 110 bytes), counts the successful plays per (second, device, title, country)
   itself, and serves the body to each connection on a loopback socket: the header, the whole
   body in 1 MiB writes as fast as the socket takes them, then close (EOF: the body's clean end,
   as it has no length). It is a process of its own, so that neither its memory nor its CPU
   counts in the daemon's figures.
3. Runs `ingestd run` on sse (stop_at_eof) -> json (2 workers, time_field) -> window (event time,
   1 s, where sev: success, count by device, title, country) -> file, --runs times (default 3);
   the stream's end ends the source, which flushes the last window.
4. Prints, for the fastest run, events/s from the server's first byte to the daemon's exit (and
   from the daemon's start), the ratio to the target 2,750,000 events/s as PASS/MISS, peak RSS,
   and fails when the window counts differ from the generator's in any group of any second, the
   last one included.
5. Runs bench_raw_parse (bench/pipeline) on the same events' JSON: simdjson On Demand alone
   reading the five fields, best of 3 passes. The target is an absolute rate, so this same-run
   figure says how fast the machine was: the daemon's rate is also printed as a share of it
   (information, not a target).

Exit status: 0 when everything ran and counted right (whether the target was met or missed), 1
when a step failed.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import common  # noqa: E402  (bench/common.py)
from common import fail  # noqa: E402

TARGET_RATE = 2_750_000


class StreamServer:
    """sse_server.py as a child process: `url` to read from, expected counts, send times."""

    def __init__(self, args):
        counts_path = os.path.join(args.workdir, "expected.json")
        self.records_path = os.path.join(args.workdir, "records.ndjson")
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sse_server.py")
        start = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, script, "--events", str(args.events), "--seed", str(args.seed),
             "--counts", counts_path, "--records", self.records_path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            fail(f"sse_server.py printed {self.url!r} instead of its URL")
        with open(counts_path) as f:
            doc = json.load(f)
        self.bytes = doc["bytes"]
        self.expected = {(ts, d, t, c): n for ts, d, t, c, n in doc["counts"]}
        print(f"rendered {args.events} events ({self.bytes / 2**20:.1f} MiB, "
              f"{sum(self.expected.values())} successful in {len(self.expected)} groups) "
              f"in {time.monotonic() - start:.2f} s")

    def sent(self):
        """(first byte, last byte) of the connection just served."""
        words = self.proc.stdout.readline().split()
        if len(words) != 3 or words[0] != "sent":
            fail(f"the stream server failed: {' '.join(words)}")
        return float(words[1]), float(words[2])

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(30)


def pipeline(args, server, run):
    counts_path = os.path.join(args.workdir, "counts.jsonl")
    if os.path.exists(counts_path):
        os.remove(counts_path)
    config_path = os.path.join(args.workdir, "sse.yaml")
    with open(config_path, "w") as f:
        f.write(f"""
data_dir: {json.dumps(args.workdir)}
sources:
  plays: {{ type: sse, url: {json.dumps(server.url)}, stop_at_eof: true }}
parsers:
  events:
    type: json
    inputs: [plays]
    workers: {args.parse_workers}
    time_field: time
    time_format: ms
    fields: [device, title, country, sev]
aggregates:
  sps:
    type: window
    inputs: [events]
    where: {{ sev: success }}
    group_by: [device, title, country]
    window: {{ size: 1s, time: event, allowed_lateness: 1s }}
    metrics: {{ sps: count }}
    output: {{ start: ts, end: "", time_format: ms }}
sinks:
  out: {{ type: file, inputs: [sps], path: {json.dumps(counts_path)}, fsync: never }}
""")
    start = time.monotonic()
    wall, rss_kib, counters = common.run_ingestd(
        args.ingestd, args.plugin_dir, config_path,
        os.path.join(args.workdir, f"run{run}.stats.json"),
        os.path.join(args.workdir, f"run{run}.stderr"), what="ingestd")
    end = start + wall
    first, last = server.sent()
    expected = server.expected
    got = {}
    with open(counts_path) as f:
        for line in f:
            row = json.loads(line)
            key = (row["ts"], row["device"], row["title"], row["country"])
            if key in got:
                fail(f"group written twice: {key}")
            got[key] = row["sps"]
    if got != expected:
        missing = sorted(set(expected) - set(got))[:5]
        wrong = sorted(k for k in got if k in expected and got[k] != expected[k])[:5]
        extra = sorted(set(got) - set(expected))[:5]
        fail(f"window counts differ: {len(got)} groups vs {len(expected)} expected; missing "
             f"{missing}, wrong {[(k, got[k], expected[k]) for k in wrong]}, extra {extra}")
    if counters.get("plays.events") != args.events:
        fail(f"plays.events = {counters.get('plays.events')}, expected {args.events}")
    stream_s = end - first
    print(f"run {run}: {args.events / stream_s:,.0f} events/s from the first byte to the exit "
          f"({stream_s:.3f} s; the server's writes took {last - first:.3f} s), "
          f"{args.events / wall:,.0f} events/s with start-up ({wall:.3f} s), "
          f"peak RSS {rss_kib / 1024:.1f} MiB; counts exact ({len(got)} groups, last window "
          f"{max(k[0] for k in got)})")
    return stream_s, wall, rss_kib, counters


def main():
    parser = common.argument_parser(__doc__, workdir="bench/sse/work")
    parser.add_argument("--raw-parse",
                        default=common.build_path("bench", "pipeline", "bench_raw_parse"))
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--parse-workers", type=int, default=2,
                        help="json parser workers (the target machine has 2 cores)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    common.require_executables((args.ingestd, args.raw_parse), "bench_sse")
    os.makedirs(args.workdir, exist_ok=True)

    server = StreamServer(args)
    try:
        runs = [pipeline(args, server, r) for r in range(max(1, args.runs))]
    finally:
        server.close()
    raw = common.raw_parse(args.raw_parse, server.records_path, args.events)
    os.remove(server.records_path)
    stream_s, wall, _, counters = min(runs, key=lambda r: r[0])
    rate = args.events / stream_s
    print(common.ratio_line("sse -> json -> window -> file: ", rate / TARGET_RATE,
                            f"{TARGET_RATE:,} events/s", 1.0)
          + f"  ({rate:,.0f} events/s)")
    print(f"machine reference, this run: simdjson On Demand alone reads the same records at "
          f"{raw['events_per_sec']:,.0f} events/s (iterate_many, best of 3; kernel "
          f"{raw.get('kernel', '?')}); the daemon's best is {rate / raw['events_per_sec']:.1%} "
          f"of it (information)")
    print(f"peak RSS {max(r[2] for r in runs) / 1024:.1f} MiB; "
          f"plays.bytes {counters.get('plays.bytes')}, events.parsed "
          f"{counters.get('events.parsed')}, sps.filtered {counters.get('sps.filtered')}, "
          f"sps.windows {counters.get('sps.windows')}")
    return 0


if __name__ == "__main__":
    common.run("bench_sse", main)
