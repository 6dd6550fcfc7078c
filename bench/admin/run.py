#!/usr/bin/env python3
"""What being scraped costs the pipeline (see bench/README.md).

1. Generates N events (default 3,000,000) into an NDJSON file with `ingestd run` on a
   generator(count N, seed 1) -> file(encoding raw) pipeline.
2. Runs `ingestd run` on file(read) -> json -> window(sev: success; count by device, title,
   country; 1 s processing-time windows) -> file, with the admin API on a free loopback port,
   --pairs times (default 4) each way, alternating: "scraped" (a client GETs /metrics every
   --interval seconds, default 1, for the whole run, as Prometheus would) and "idle" (nobody
   asks). Alternating spreads the machine's drift over both.
3. Prints each side's best and median rate (events / wall clock, start-up and shutdown
   included), the ratio of the best rates, and PASS when the scraped pipeline keeps within 1 %
   of the idle one (MISS otherwise: reported, not an error). Checks that every scraped run was
   scraped at least once and that the window counts add up to N minus `filtered`.

Exit status: 0 when everything ran (whether the target was met or missed), 1 when a step failed.
"""

import json
import os
import re
import statistics
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import common  # noqa: E402  (bench/common.py)
from common import fail  # noqa: E402

TARGET = 0.99  # scraped rate / idle rate


class Scraper(threading.Thread):
    """GETs /metrics every `interval` s from the daemon whose stderr is at `stderr_path`, once it
    logs its admin address, until stop()."""

    def __init__(self, stderr_path, interval):
        super().__init__(daemon=True)
        self.stderr_path = stderr_path
        self.interval = interval
        self.scrapes = 0
        self.bytes = 0
        self.errors = []
        self.done = threading.Event()

    def address(self):
        while not self.done.is_set():
            m = re.search(r"admin API listening on http://(\S+)", common.tail(self.stderr_path,
                                                                              1 << 16))
            if m:
                return m.group(1)
            time.sleep(0.005)
        return None

    def run(self):
        address = self.address()
        if not address:
            return
        while not self.done.is_set():
            try:
                with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as r:
                    self.bytes += len(r.read())
                    self.scrapes += 1
            except OSError as e:
                if not self.done.is_set():
                    self.errors.append(str(e))
            self.done.wait(self.interval)

    def stop(self):
        self.done.set()
        self.join(10)


def generate(args, events_path):
    config = os.path.join(args.workdir, "generate.yaml")
    with open(config, "w") as f:
        f.write(f"""
data_dir: {json.dumps(args.workdir)}
sources:
  gen: {{ type: generator, count: {args.events}, seed: 1 }}
sinks:
  out: {{ type: file, inputs: [gen], path: {json.dumps(events_path)}, encoding: raw, fsync: never }}
""")
    if os.path.exists(events_path):
        os.remove(events_path)
    wall, _, _ = common.run_ingestd(args.ingestd, args.plugin_dir, config,
                                    os.path.join(args.workdir, "generate.stats.json"),
                                    os.path.join(args.workdir, "generate.stderr"),
                                    what="generate: ingestd")
    print(f"generated {args.events} events ({os.path.getsize(events_path) / 2**20:.0f} MiB) "
          f"in {wall:.1f} s")


def pipeline(args, events_path, scraped, run):
    name = f"{'scraped' if scraped else 'idle'}-{run}"
    counts_path = os.path.join(args.workdir, f"{name}.jsonl")
    if os.path.exists(counts_path):
        os.remove(counts_path)
    config = os.path.join(args.workdir, f"{name}.yaml")
    with open(config, "w") as f:
        f.write(common.window_pipeline(args.workdir, events_path, counts_path, 2))
    stderr_path = os.path.join(args.workdir, f"{name}.stderr")
    if os.path.exists(stderr_path):
        os.remove(stderr_path)
    scraper = Scraper(stderr_path, args.interval) if scraped else None
    if scraper:
        scraper.start()
    try:
        wall, _, counters = common.run_ingestd(
            args.ingestd, args.plugin_dir, config, os.path.join(args.workdir, f"{name}.stats.json"),
            stderr_path, what=f"{name}: ingestd", extra_args=["--admin-listen", "127.0.0.1:0"])
    finally:
        if scraper:
            scraper.stop()
    if scraper and (scraper.scrapes == 0 or scraper.errors):
        fail(f"{name}: {scraper.scrapes} scrapes, errors: {scraper.errors[:3]}")
    total = 0
    with open(counts_path) as f:
        for line in f:
            total += json.loads(line)["sps"]
    if total != args.events - counters.get("sps.filtered", 0):
        fail(f"{name}: window counts add up to {total}, expected {args.events} minus "
             f"{counters.get('sps.filtered')} filtered")
    rate = args.events / wall
    extra = f", {scraper.scrapes} scrapes of {scraper.bytes // scraper.scrapes} bytes" \
        if scraper else ""
    print(f"  {name:10s} {wall:6.3f} s  {rate:12,.0f} events/s{extra}")
    return rate


def main():
    parser = common.argument_parser(__doc__, workdir="bench/admin/work")
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--pairs", type=int, default=4, help="runs of each kind, alternated")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between scrapes")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the generated events file when it exists")
    args = parser.parse_args()
    common.require_executables((args.ingestd,), "ingestd")
    os.makedirs(args.workdir, exist_ok=True)
    events_path = os.path.join(args.workdir, "events.jsonl")
    if not (args.reuse and os.path.exists(events_path)):
        generate(args, events_path)

    idle, scraped = [], []
    for run in range(max(1, args.pairs)):
        # Which goes first alternates too, so that neither always follows the other.
        order = (False, True) if run % 2 == 0 else (True, False)
        for s in order:
            (scraped if s else idle).append(pipeline(args, events_path, s, run))
    best_idle, best_scraped = max(idle), max(scraped)
    print(f"idle:    best {best_idle:,.0f} events/s, median {statistics.median(idle):,.0f}")
    print(f"scraped: best {best_scraped:,.0f} events/s, median {statistics.median(scraped):,.0f} "
          f"(/metrics every {args.interval:g} s)")
    print(common.ratio_line("ratio:   ", best_scraped / best_idle, "idle", TARGET))
    print(f"median ratio: {statistics.median(scraped) / statistics.median(idle):.3f}")
    return 0


if __name__ == "__main__":
    common.run("bench_admin", main)
