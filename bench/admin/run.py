#!/usr/bin/env python3
"""What being scraped costs the pipeline (see bench/README.md).

One daemon runs generator (as fast as the pipeline takes events) -> json -> window (sev:
success; count by device, title, country; 1 s processing-time windows) -> file, with the admin
API on a free loopback port, for --blocks blocks of --block seconds (default 15 blocks of 3 s),
aligned to whole seconds: idle, scraped, idle, scraped, ..., idle. In a scraped block a client
GETs /metrics (or --path) every second, in the middle of each second, as Prometheus would; in an
idle block nobody asks. The pipeline's own output measures it: each 1 s window counts the events
of its second that passed the filter, so a block's rate is the sum of its seconds' counts.

It prints each block's rate and the daemon's CPU time per million events in it, each scraped
block's rate over the mean of the idle blocks on either side of it (which cancels a steady drift
of the machine's speed), and judges by their median: PASS when the scraped pipeline keeps within
1 % of the idle one (MISS otherwise: reported, not an error). Blocks of one kind spread by 5-15 %
on a shared 2-core VM, so one run's median is good to about 2 %.

It also prints what a scrape costs the daemon directly, for comparison: its CPU time for 200
scrapes in a row during the run, per scrape, as a share of the CPU the daemon spends per second
in the idle blocks. A cost of the rates well above that share is not CPU spent on scrapes.

Checks: every scrape answered 200 with the metrics, and the window counts of every whole second
add up with the `filtered` counter to the events the json parser handed on, at exit.

Exit status: 0 when everything ran (whether the target was met or missed), 1 when a step failed.
"""

import collections
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import common  # noqa: E402  (bench/common.py)
from common import fail  # noqa: E402

TARGET = 0.99  # scraped rate / idle rate


def cpu_seconds(pid):
    """User + system CPU time of the process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(address, path="/metrics"):
    with urllib.request.urlopen(f"http://{address}{path}", timeout=5) as r:
        body = r.read()
        if r.status != 200 or (path == "/metrics" and b"ingestd_" not in body):
            fail(f"{path} answered {r.status} with {len(body)} bytes")
        return len(body)


def spread(values):
    """The largest distance of a value from the median, relative to the median."""
    m = statistics.median(values)
    return max(abs(v - m) for v in values) / m


def sleep_until(t):
    while (left := t - time.time()) > 0:
        time.sleep(min(left, 0.5))


def main():
    parser = common.argument_parser(__doc__, workdir="bench/admin/work")
    parser.add_argument("--blocks", type=int, default=15,
                        help="blocks, odd: idle first and last, scraped in between")
    parser.add_argument("--block", type=int, default=3, help="seconds per block")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before the first block")
    parser.add_argument("--path", default="/metrics",
                        help="what the scraped blocks fetch (e.g. /health, to compare)")
    args = parser.parse_args()
    if args.blocks < 3 or args.blocks % 2 == 0:
        fail("--blocks must be odd and at least 3")
    common.require_executables((args.ingestd,), "ingestd")
    os.makedirs(args.workdir, exist_ok=True)
    counts_path = os.path.join(args.workdir, "counts.jsonl")
    if os.path.exists(counts_path):
        os.remove(counts_path)
    config_path = os.path.join(args.workdir, "pipeline.yaml")
    with open(config_path, "w") as f:
        f.write(common.window_pipeline(os.path.join(args.workdir, "data"), None, counts_path, None,
                                       output='{ time_format: s, end: "" }'))
    stats_path = os.path.join(args.workdir, "stats.json")
    stderr_path = os.path.join(args.workdir, "ingestd.stderr")

    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [args.ingestd, "run", "-c", config_path, "--plugin-dir", args.plugin_dir,
             "--stats-file", stats_path, "--admin-listen", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        def admin_address():
            if proc.poll() is not None:
                fail(f"ingestd exited {proc.returncode}:\n{common.tail(stderr_path)}")
            m = re.search(r"admin API listening on http://(\S+)",
                          common.tail(stderr_path, 1 << 16))
            return m and m.group(1)

        address = common.poll(admin_address, 30, "the admin API to listen")
        first = int(time.time()) + args.warmup
        blocks = []  # (first second, scraped, cpu seconds, scrapes)
        scrape_bytes = 0
        for b in range(args.blocks):
            start = first + b * args.block
            scraped = b % 2 == 1
            sleep_until(start)
            cpu_before = cpu_seconds(proc.pid)
            scrapes = 0
            for s in range(args.block):
                if scraped:
                    sleep_until(start + s + 0.5)
                    scrape_bytes = scrape(address, args.path)
                    scrapes += 1
            sleep_until(start + args.block)
            blocks.append((start, scraped, cpu_seconds(proc.pid) - cpu_before, scrapes))
        # What one scrape costs the daemon, 200 in a row while the pipeline runs.
        cpu_before = cpu_seconds(proc.pid)
        wall_before = time.monotonic()
        for _ in range(200):
            scrape(address, args.path)
        burst_wall = time.monotonic() - wall_before
        burst_cpu = cpu_seconds(proc.pid) - cpu_before
        # The last block's windows close a second after it ends.
        sleep_until(first + args.blocks * args.block + 1.5)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
    if rc != 0:
        fail(f"ingestd exited {rc}:\n{common.tail(stderr_path)}")
    counters = common.read_counters(stats_path)

    per_second = collections.Counter()
    total = 0
    with open(counts_path) as f:
        for line in f:
            row = json.loads(line)
            per_second[int(row["window_start"])] += row["sps"]
            total += row["sps"]
    passed = counters["ev.events_out"] - counters.get("sps.filtered", 0)
    if total != passed:
        fail(f"window counts add up to {total}, expected {passed} (json out "
             f"{counters['ev.events_out']} minus {counters.get('sps.filtered')} filtered)")

    rates = []
    for start, scraped, cpu, scrapes in blocks:
        seconds = [per_second.get(start + s, 0) for s in range(args.block)]
        if min(seconds) == 0:
            fail(f"no window counts for a second of the block at {start}: {seconds}")
        # Counted events are those that passed the filter; scale to all events.
        rate = sum(seconds) / args.block * counters["ev.events_out"] / passed
        rates.append(rate)
        kind = f"scraped ({scrapes} scrapes)" if scraped else "idle"
        print(f"  block at +{start - first:3d} s  {kind:20s} {rate:12,.0f} events/s  "
              f"{cpu / (rate * args.block) * 1e6:.3f} CPU s per million events")
    ratios = [rates[b] / ((rates[b - 1] + rates[b + 1]) / 2) for b in range(1, len(blocks), 2)]
    print("  scraped / mean of the idle neighbours: " + ", ".join(f"{r:.3f}" for r in ratios))
    idle = [r for (_, s, _, _), r in zip(blocks, rates) if not s]
    scraped = [r for (_, s, _, _), r in zip(blocks, rates) if s]
    cpu_idle = sum(c for _, s, c, _ in blocks if not s) / (sum(idle) * args.block)
    cpu_scraped = sum(c for _, s, c, _ in blocks if s) / (sum(scraped) * args.block)
    print(f"idle blocks:    median {statistics.median(idle):,.0f} events/s, "
          f"{cpu_idle * 1e6:.3f} CPU s per million events")
    print(f"scraped blocks: median {statistics.median(scraped):,.0f} events/s, "
          f"{cpu_scraped * 1e6:.3f} CPU s per million events ({args.path} every second, "
          f"{scrape_bytes} bytes)")
    print(f"one scrape: {burst_cpu / 200 * 1e3:.2f} ms of the daemon's CPU, "
          f"{burst_wall / 200 * 1e3:.2f} ms to answer (200 in a row during the run)")
    # The share of the daemon's CPU that one scrape a second takes.
    idle_cpu_per_second = sum(c for _, s, c, _ in blocks if not s) / (len(idle) * args.block)
    share = burst_cpu / 200 / idle_cpu_per_second
    print(f"one scrape a second takes {share:.2%} of the daemon's CPU "
          f"({idle_cpu_per_second:.2f} CPU s per second in the idle blocks)")
    print(f"blocks of one kind spread by {spread(idle):.1%} around their median here")
    print(common.ratio_line("scraped / idle, median of the blocks: ", statistics.median(ratios),
                            "idle", TARGET))
    return 0


if __name__ == "__main__":
    common.run("bench_admin", main)
