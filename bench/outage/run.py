#!/usr/bin/env python3
"""Broker outage benchmark for ingestd's disk spool (see bench/README.md).

Starts the Kafka test peer (librdkafka's mock cluster, --brokers brokers, one topic of
--partitions partitions) and `ingestd run` on generator (--rate events/s, numbered with {{seq}},
about 90 bytes each, count = rate * (outage + --tail-s)) -> kafka sink with delivery_timeout
500ms, breaker {failures: 3, open_for: 1s} and spool {replay_rate: --replay-rate}, its data_dir in
a temporary directory. Once a second of events has arrived, every broker goes down for --outage-s
seconds (default 60, or $OUTAGE_S), then comes back; the daemon replays its spool and exits when
the generator's count is delivered.

Measures and prints:
- the daemon's peak RSS (wait4's ru_maxrss; VmRSS is also sampled every 100 ms) against 150 MiB;
- the spool at the end of the outage: its bytes on disk (du of data_dir/spool) and the events in
  its segment files (read here from the record headers: nothing is delivered from the spool while
  every broker is down);
- the time from the brokers' return to the first event delivered;
- the replay rate: the topic's high watermarks (summed), sampled every 0.2 s, between 10 % and
  90 % of what was left to deliver when the brokers returned, against replay_rate;
- the final counters (out.spooled, out.replayed, out.events_out, out.retries).

Exit status: 0 when everything ran (whatever the figures), 1 when a step failed: ingestd exiting
non-zero, the high watermarks summing to less than count at the end (an event lost; duplicates
are allowed), a deadline passed.
"""

import glob
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import common  # noqa: E402  (bench/common.py)
from common import fail, percent, tail  # noqa: E402

RSS_LIMIT_MIB = 150
# The spool's on-disk format (daemon/src/reliability/spool.h): a 12-byte segment header, then
# records of a 20-byte header (u32 payload length, u32 event count, checksums) and the payload.
SEGMENT_HEADER = 12
RECORD_HEADER = 20


class Daemon:
    """`ingestd run` with its RSS sampled every 100 ms; reaped with wait4 for its peak RSS."""

    def __init__(self, cmd, stderr_path):
        self.stderr_path = stderr_path
        with open(stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)
        self.samples = []  # (monotonic time, VmRSS KiB)
        self.exit_code = None
        self.maxrss_kib = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self):
        path = f"/proc/{self.proc.pid}/status"
        while not self._stop.is_set():
            try:
                with open(path) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            self.samples.append((time.monotonic(), int(line.split()[1])))
                            break
            except OSError:
                return
            self._stop.wait(0.1)

    def running(self):
        if self.exit_code is None:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid != 0:
                self._reaped(status, usage)
        return self.exit_code is None

    def _reaped(self, status, usage):
        self._stop.set()
        self.exit_code = os.waitstatus_to_exitcode(status)
        self.maxrss_kib = usage.ru_maxrss
        self.proc.returncode = self.exit_code  # reaped here, not by Popen

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)
        self._sampler.join()
        return self.exit_code

    def kill(self):
        if self.running():
            self.proc.kill()
            self.wait(10)

    def peak_sampled_kib(self, since=0.0, until=float("inf")):
        return max((kib for t, kib in self.samples if since <= t <= until), default=0)


def spool_on_disk(spool_dir):
    """(bytes allocated as du counts them, bytes of the files, records, events in them)."""
    allocated = size = records = events = 0
    for root, _, files in os.walk(spool_dir):
        for name in files:
            try:
                st = os.stat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            allocated += st.st_blocks * 512
            size += st.st_size
    for path in sorted(glob.glob(os.path.join(spool_dir, "*.seg"))):
        with open(path, "rb") as f:
            data = f.read()
        pos = SEGMENT_HEADER
        while pos + RECORD_HEADER <= len(data):
            length, count = struct.unpack_from("<II", data, pos)
            if pos + RECORD_HEADER + length > len(data):
                break  # an append in progress
            records += 1
            events += count
            pos += RECORD_HEADER + length
    return allocated, size, records, events


def wait_for(what, condition, timeout, daemon, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if not daemon.running():
            fail(f"ingestd exited {daemon.exit_code} while waiting for {what}:\n"
                 f"{tail(daemon.stderr_path)}")
        if time.monotonic() > deadline:
            fail(f"no {what} within {timeout:.0f} s:\n{tail(daemon.stderr_path)}")
        time.sleep(interval)


def write_config(args, path, data_dir, bootstrap, count):
    with open(path, "w") as f:
        f.write(f"""
data_dir: {json.dumps(data_dir)}
sources:
  gen: {{ type: generator, count: {count}, rate: {args.rate}, seed: 1,
         template: {json.dumps(common.EVENT_TEMPLATE)} }}
  idle: {{ type: generator, count: 2, rate: 0.001, template: '{{"seq":-1}}' }}
sinks:
  out:
    type: kafka
    inputs: [gen, idle]
    brokers: {json.dumps(bootstrap)}
    topic: events
    encoding: raw
    delivery_timeout: 500ms
    breaker: {{ failures: 3, open_for: 1s }}
    spool: {{ replay_rate: {args.replay_rate} }}
""")


def main():
    parser = common.argument_parser(
        __doc__, workdir="bench/outage/work",
        workdir_help="config, logs and counters; the data_dir is a temporary directory")
    parser.add_argument("--peer", default=common.kafka_peer_path())
    parser.add_argument("--outage-s", type=float, default=float(os.environ.get("OUTAGE_S", 60)),
                        help="how long every broker is down (default: $OUTAGE_S or 60)")
    parser.add_argument("--tail-s", type=float, default=5,
                        help="the generator's count covers the outage and this many seconds more")
    parser.add_argument("--rate", type=int, default=20_000, help="the generator's events/s")
    parser.add_argument("--replay-rate", type=int, default=50_000, help="spool.replay_rate")
    parser.add_argument("--brokers", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=16,
                        help="the mock keeps only ~5 MiB of each")
    args = parser.parse_args()
    common.require_executables((args.ingestd, args.peer), "bench_outage")
    if args.replay_rate <= args.rate:
        fail(f"--replay-rate {args.replay_rate} must exceed --rate {args.rate}, else the spool "
             "never drains")
    os.makedirs(args.workdir, exist_ok=True)
    count = int(args.rate * (args.outage_s + args.tail_s))

    data_dir = tempfile.mkdtemp(prefix="ingestd-bench-outage-")
    peer = daemon = None
    try:
        peer = common.KafkaPeer(args.peer, ["--brokers", str(args.brokers),
                                            "--topic", f"events:{args.partitions}"],
                                args.workdir)
        config = os.path.join(args.workdir, "outage.yaml")
        stats = os.path.join(args.workdir, "ingestd.stats.json")
        write_config(args, config, data_dir, peer.bootstrap, count)
        daemon = Daemon([args.ingestd, "run", "-c", config, "--plugin-dir", args.plugin_dir,
                         "--stats-file", stats], os.path.join(args.workdir, "ingestd.stderr"))
        started = time.monotonic()

        # 1. A second of events through the sink, then every broker down.
        before = wait_for(
            "second of events in Kafka",
            lambda: (n := peer.delivered("events")) is not None and n >= args.rate and n,
            30, daemon)
        if peer.command("down all") != "ok":
            fail("the peer refused `down all`")
        down_at = time.monotonic()
        print(f"brokers down at {down_at - started:.1f} s ({before:,} events delivered), "
              f"for {args.outage_s:g} s")
        wait_for("end of the outage", lambda: time.monotonic() - down_at >= args.outage_s,
                 args.outage_s + 10, daemon, interval=0.5)
        spool_alloc, spool_size, spool_records, spool_events = spool_on_disk(os.path.join(data_dir, "spool",
                                                                           "out"))
        rss_outage = daemon.peak_sampled_kib(since=down_at)
        if peer.command("up all") != "ok":
            fail("the peer refused `up all`")
        up_at = time.monotonic()
        print(f"brokers up at {up_at - started:.1f} s: {spool_events:,} events, "
              f"{spool_size / 1e6:.1f} MB in the spool")

        # 2. The drain: the watermarks, sampled until everything is in Kafka. The deadline
        # allows a drain far below replay_rate (a figure to report, not a failure).
        samples = []

        def drained():
            t0 = time.monotonic()
            n = peer.delivered("events")
            if n is not None:
                samples.append(((t0 + time.monotonic()) / 2, n))
            return n is not None and n >= count
        wait_for("complete delivery", drained, 60 + 20 * count / args.replay_rate, daemon,
                 interval=0.2)
        daemon.proc.send_signal(signal.SIGTERM)
        rc = daemon.wait(60)
        if rc is None:
            fail(f"ingestd did not stop within 60 s of SIGTERM:\n{tail(daemon.stderr_path)}")
        if rc != 0:
            fail(f"ingestd exited {rc}:\n{tail(daemon.stderr_path)}")
        counters = common.read_counters(stats)
        # Every event generated (the idle source's marker too) must be in the topic.
        expected = counters.get("gen.events_out", 0) + counters.get("idle.events_out", 0)
        if counters.get("gen.events_out") != count:
            fail(f"the generator made {counters.get('gen.events_out')} events, not {count}")
        delivered = peer.delivered("events")
        if delivered is None or delivered < expected:
            fail(f"the topic holds {delivered} events, expected at least {expected}")
    finally:
        if daemon:
            daemon.kill()
        if peer:
            peer.close()
        shutil.rmtree(data_dir, ignore_errors=True)

    n_up = samples[0][1]
    first_delivery = next((t for t, n in samples if n > n_up), None)
    start_n = n_up + (count - n_up) * 0.1
    end_n = n_up + (count - n_up) * 0.9
    t0, n0 = next((t, n) for t, n in samples if n >= start_n)
    t1, n1 = next((t, n) for t, n in samples if n >= end_n)
    replay = (n1 - n0) / (t1 - t0) if t1 > t0 else float("nan")
    peak_mib = daemon.maxrss_kib / 1024

    print()
    print(f"| measure | result | limit / target |")
    print(f"|---|---|---|")
    print(f"| outage | {args.outage_s:g} s, {args.brokers} brokers down, input {args.rate:,} "
          f"events/s | |")
    print(f"| peak RSS (whole run) | {peak_mib:.1f} MiB ({percent(peak_mib, RSS_LIMIT_MIB)} of "
          f"the limit) | < {RSS_LIMIT_MIB} MiB |")
    print(f"| peak RSS during the outage (sampled) | {rss_outage / 1024:.1f} MiB | |")
    print(f"| spool at the end of the outage | {spool_events:,} events, {spool_size / 1e6:.1f} MB "
          f"({spool_alloc / 1e6:.1f} MB allocated), {spool_size / max(spool_events, 1):.0f} "
          f"bytes/event, {spool_records:,} batches | |")
    print(f"| first delivery after the brokers returned | "
          + (f"{first_delivery - up_at:.1f} s" if first_delivery else "-") + " | |")
    print(f"| replay rate, 10-90 % of the drain | {replay:,.0f} events/s "
          f"({percent(replay, args.replay_rate)} of replay_rate) | "
          f"{args.replay_rate:,} events/s |")
    print(f"| delivered (high watermarks) | {delivered:,} of {expected:,} "
          f"({delivered - expected:,} duplicates) | >= {expected:,} |")
    print(f"| counters | spooled {counters.get('out.spooled', 0):,}, replayed "
          f"{counters.get('out.replayed', 0):,}, events_out {counters.get('out.events_out', 0):,}, "
          f"retries {counters.get('out.retries', 0):,} | |")
    return 0


if __name__ == "__main__":
    common.run("bench_outage", main)
