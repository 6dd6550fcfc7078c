#!/usr/bin/env python3
"""End-to-end pipeline benchmark for ingestd (see bench/README.md).

1. Generates N events (default 2,000,000) into an NDJSON file with `ingestd run` on a
   generator(count N, seed 1) -> file(encoding raw, fsync never) pipeline.
2. Runs bench_raw_parse on that file: simdjson On Demand alone reading the five fields, as one
   document stream (the reference) and one document per line, best of 3 passes each.
3. Runs `ingestd run` on file(read) -> json -> window(sev: success; count by device, title,
   country; processing time, 1s) -> file, --runs times (default 3), taking the fastest wall
   clock (as step 2 takes its best pass) and the largest peak RSS of the daemon.
4. Prints the raw rate, the pipeline rate, their ratio and the peak RSS against the targets
   (ratio >= 40 %, peak RSS < 64 MiB) as PASS/MISS, and checks that the window counts add up to
   N minus the window's `filtered` counter.
5. Runs file(read) -> json -> file (encoding raw) with every other setting left at its default
   (parser workers, batch sizes, the file source's checkpoint, the sink's fsync), as an operator's
   plain config does, --runs times (the checkpoint is removed before each), checks that every line
   came out, and prints its rate beside the raw limit and its peak RSS.

Exit status: 0 when everything ran (whether targets were met or missed), 1 when a step failed.
"""

import json
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import common  # noqa: E402  (bench/common.py)
from common import fail  # noqa: E402

TARGET_RATIO = 0.40
TARGET_RSS_MIB = 64


def run_ingestd(args, workdir, name, config_text):
    """Runs `ingestd run` on config_text; returns (wall seconds, peak RSS KiB, counters)."""
    config = os.path.join(workdir, f"{name}.yaml")
    with open(config, "w") as f:
        f.write(config_text)
    return common.run_ingestd(args.ingestd, args.plugin_dir, config,
                              os.path.join(workdir, f"{name}.stats.json"),
                              os.path.join(workdir, f"{name}.stderr"), what=f"{name}: ingestd")


def generate(args, events_path):
    if os.path.exists(events_path):
        os.remove(events_path)
    config = f"""
data_dir: {json.dumps(args.workdir)}
sources:
  gen: {{ type: generator, count: {args.events}, seed: 1 }}
sinks:
  out: {{ type: file, inputs: [gen], path: {json.dumps(events_path)}, encoding: raw, fsync: never }}
"""
    wall, _, counters = run_ingestd(args, args.workdir, "generate", config)
    with open(events_path, "rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    if lines != args.events:
        fail(f"generator wrote {lines} lines, expected {args.events}")
    print(f"generated {lines} events ({os.path.getsize(events_path) / 2**20:.1f} MiB) "
          f"in {wall:.2f} s; gen.events_out={counters.get('gen.events_out')}")


def pipeline(args, events_path):
    counts_path = os.path.join(args.workdir, "counts.jsonl")
    if os.path.exists(counts_path):
        os.remove(counts_path)
    config = common.window_pipeline(args.workdir, events_path, counts_path, args.parse_workers)
    wall, rss_kib, counters = run_ingestd(args, args.workdir, "pipeline", config)
    total = 0
    with open(counts_path) as f:
        for line in f:
            total += json.loads(line)["sps"]
    filtered = counters.get("sps.filtered")
    if filtered is None:
        fail("the stats lack sps.filtered")
    if total != args.events - filtered:
        fail(f"window counts add up to {total}, expected {args.events} - {filtered} filtered "
             f"= {args.events - filtered}")
    print(f"sanity: window counts {total} + filtered {filtered} = {args.events}")
    return wall, rss_kib


def passthrough(args, events_path, sink_extra=""):
    """file -> json -> file (raw) with default settings (plus sink_extra, e.g. ", fsync: never");
    returns (wall seconds, peak RSS KiB)."""
    out_path = os.path.join(args.workdir, "passthrough.jsonl")
    data_dir = os.path.join(args.workdir, "passthrough-data")
    for path in (out_path,):
        if os.path.exists(path):
            os.remove(path)
    shutil.rmtree(data_dir, ignore_errors=True)  # the file source's checkpoint of the last run
    config = f"""
data_dir: {json.dumps(data_dir)}
sources:
  in: {{ type: file, path: {json.dumps(events_path)}, mode: read }}
parsers:
  ev: {{ type: json, inputs: [in] }}
sinks:
  out: {{ type: file, inputs: [ev], path: {json.dumps(out_path)}, encoding: raw{sink_extra} }}
"""
    wall, rss_kib, counters = run_ingestd(args, args.workdir, "passthrough", config)
    with open(out_path, "rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    if lines != args.events or counters.get("out.events_out") != args.events:
        fail(f"passthrough wrote {lines} lines (out.events_out "
             f"{counters.get('out.events_out')}), expected {args.events}")
    return wall, rss_kib


def main():
    parser = common.argument_parser(__doc__, workdir="bench/pipeline/work")
    parser.add_argument("--raw-parse",
                        default=common.build_path("bench", "pipeline", "bench_raw_parse"))
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--parse-workers", type=int, default=2,
                        help="json parser workers (the target machine has 2 cores)")
    parser.add_argument("--runs", type=int, default=3,
                        help="pipeline runs; the fastest counts, as the raw parse's best pass "
                             "does, and the largest peak RSS")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the generated events file when it has the right line count")
    args = parser.parse_args()
    common.require_executables((args.ingestd, args.raw_parse), "ingestd bench_raw_parse")
    os.makedirs(args.workdir, exist_ok=True)
    events_path = os.path.join(args.workdir, "events.jsonl")

    if not (args.reuse and os.path.exists(events_path)):
        generate(args, events_path)
    raw = common.raw_parse(args.raw_parse, events_path, args.events)
    raw_rate = raw["events_per_sec"]
    print(f"raw parse: {raw['events']} events as one document stream (iterate_many), best pass "
          f"{raw['seconds']:.3f} s, {raw_rate:,.0f} events/s; one document per line (iterate) "
          f"{raw['per_line_events_per_sec']:,.0f} events/s (simdjson kernel "
          f"{raw.get('kernel', '?')})")

    runs = [pipeline(args, events_path) for _ in range(max(1, args.runs))]
    wall = min(w for w, _ in runs)
    rss_kib = max(r for _, r in runs)
    rate = args.events / wall
    ratio = rate / raw_rate
    rss_mib = rss_kib / 1024
    print(f"pipeline:  {args.events} events, best of {len(runs)} runs {wall:.3f} s, "
          f"{rate:,.0f} events/s")
    print(common.ratio_line("ratio:     ", ratio, "raw parse (stream)", TARGET_RATIO))
    print(f"           ({rate / raw['per_line_events_per_sec']:.1%} of the per-line rate)")
    print(f"peak RSS:  {rss_mib:.1f} MiB  (target < {TARGET_RSS_MIB} MiB)  "
          f"{common.verdict(rss_mib < TARGET_RSS_MIB)}")

    plain = [passthrough(args, events_path) for _ in range(max(1, args.runs))]
    plain_wall = min(w for w, _ in plain)
    plain_rate = args.events / plain_wall
    print(f"file -> json -> file (raw), default settings: best of {len(plain)} runs "
          f"{plain_wall:.3f} s, {plain_rate:,.0f} events/s, {plain_rate / raw_rate:.1%} of the raw "
          f"parse (stream); peak RSS {max(r for _, r in plain) / 1024:.1f} MiB")
    # The default fsync (after every batch) is what keeps written data through a power loss;
    # this is what it costs here.
    unsynced = min(passthrough(args, events_path, ", fsync: never")[0]
                   for _ in range(max(1, args.runs)))
    print(f"           the same with the sink's fsync: never: {args.events / unsynced:,.0f} "
          f"events/s, {args.events / unsynced / raw_rate:.1%} of the raw parse (stream)")
    return 0


if __name__ == "__main__":
    common.run("bench", main)
