#!/usr/bin/env python3
"""Spool throughput benchmark for ingestd (see bench/README.md).

--runs times in turn, in one fresh temporary directory under --workdir:

1. bench_spool_io appends --batches batches of 1024 events (~100 bytes each) to the core's Spool
   (`fsync: interval`, 1 s), syncs, then claims and releases every record (the replay read);
2. `dd if=/dev/zero of=<the same directory>/dd.bin bs=1M count=<the spool's size in MiB>
   conv=fdatasync` writes as many bytes to the same file system and syncs them.

The best run of each counts. Prints the spool's write rate (appends and the final sync; MB are
10^6 bytes, as dd counts them), dd's rate, the ratio, and the read rate. The read runs right
after the write, so it is served from the page cache: it measures decoding and checksums, not
the disk. The temporary directory is removed at the end.

Exit status: 0 when everything ran, 1 when a step failed (a spool error, a wrong count read
back, dd failing). There is no target: the figures are for reading.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import common  # noqa: E402  (bench/common.py)
from common import fail  # noqa: E402

MIB = 1 << 20


def run_spool(args, tmp):
    p = subprocess.run([args.spool_io, tmp, str(args.batches), str(args.events_per_batch)],
                       capture_output=True, text=True)
    shutil.rmtree(os.path.join(tmp, "spool"), ignore_errors=True)
    if p.returncode != 0:
        fail(f"bench_spool_io exited {p.returncode}: {p.stderr.strip()}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_dd(tmp, mib):
    target = os.path.join(tmp, "dd.bin")
    start = time.monotonic()
    p = subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={mib}",
                        "conv=fdatasync"], capture_output=True, text=True,
                       env={**os.environ, "LC_ALL": "C"})
    wall = time.monotonic() - start
    try:
        os.unlink(target)
    except FileNotFoundError:
        pass
    if p.returncode != 0:
        fail(f"dd exited {p.returncode}: {p.stderr.strip()}")
    # "268435456 bytes (268 MB, 256 MiB) copied, 1.23456 s, 217 MB/s": dd's own timing of its
    # copy and fdatasync, without process start-up.
    m = re.search(r"^(\d+) bytes .* copied, ([0-9.]+) s", p.stderr, re.M)
    if not m:
        return mib * MIB, wall
    return int(m.group(1)), float(m.group(2))


def main():
    parser = common.argument_parser(
        __doc__, workdir="bench/spool/work", ingestd=False,
        workdir_help="the temporary directory (spool and dd.bin) is made in here")
    parser.add_argument("--spool-io", default=common.build_path("bench", "spool",
                                                                "bench_spool_io"))
    parser.add_argument("--batches", type=int, default=2048,
                        help="batches appended per run (2048 of 1024 events: about 230 MB)")
    parser.add_argument("--events-per-batch", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    common.require_executables((args.spool_io,), "bench_spool")
    os.makedirs(args.workdir, exist_ok=True)

    tmp = tempfile.mkdtemp(prefix="spool-", dir=args.workdir)
    try:
        spool_runs, dd_runs = [], []
        for run in range(max(1, args.runs)):
            s = run_spool(args, tmp)
            mib = -(-s["bytes"] // MIB)
            dd_bytes, dd_s = run_dd(tmp, mib)
            spool_runs.append(s)
            dd_runs.append((dd_bytes, dd_s))
            print(f"run {run + 1}: spool {s['bytes'] / 1e6:.0f} MB in {s['append_s']:.3f} s "
                  f"+ sync {s['sync_s']:.3f} s ({s['segments']} segments), read "
                  f"{s['read_s']:.3f} s; dd {dd_bytes / 1e6:.0f} MB in {dd_s:.3f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    best = min(spool_runs, key=lambda s: s["append_s"] + s["sync_s"])
    write_s = best["append_s"] + best["sync_s"]
    write_mbps = best["bytes"] / write_s / 1e6
    events = best["events"]
    dd_bytes, dd_s = min(dd_runs, key=lambda d: d[1] / d[0])
    dd_mbps = dd_bytes / dd_s / 1e6
    fastest_read = min(spool_runs, key=lambda s: s["read_s"])
    read_mbps = fastest_read["bytes"] / fastest_read["read_s"] / 1e6
    record = best["bytes"] / events
    print(f"spool write (fsync: interval 1 s, appends + final sync): {write_mbps:,.0f} MB/s, "
          f"{events / write_s / 1e6:.2f} M events/s  ({events:,} events of "
          f"{args.events_per_batch}-event batches, {record:.0f} bytes each on disk)")
    print(f"  of which appends alone:                      "
          f"{best['bytes'] / best['append_s'] / 1e6:,.0f} MB/s")
    print(f"dd bs=1M conv=fdatasync, same file system:     {dd_mbps:,.0f} MB/s")
    print(f"ratio spool / dd:                              {common.percent(write_mbps, dd_mbps)}")
    print(f"spool read (claim + release, page cache):      {read_mbps:,.0f} MB/s, "
          f"{fastest_read['events'] / fastest_read['read_s'] / 1e6:.2f} M events/s")
    return 0


if __name__ == "__main__":
    common.run("bench_spool", main)
