#!/usr/bin/env python3
"""Reload pause benchmark for ingestd (see bench/README.md).

Runs `ingestd run` on generator(RATE/s, {"seq":N}) -> json -> stdout(raw) and reads its stdout
through a pipe, stamping each line's arrival with the monotonic clock. It first records a steady
stretch, then sends SIGHUP --reloads times, each with a file that replaces the parser (an option
changes) and adds or removes a file sink, waiting for each reload's "reloaded" log line. It prints:

- the longest gap between consecutive arrivals in the second around each reload, against the
  longest gap of the steady stretch (batching and linger alone), and the target (< 100 ms);
- events lost (a sequence number never seen) and duplicated, against the target (0 and 0), from
  the sequence numbers read back, compared with the generator's own count at exit.

Exit status: 0 when everything ran (whether targets were met or missed), 1 when a step failed.
"""

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import common  # noqa: E402  (bench/common.py)
from common import fail, tail, verdict  # noqa: E402

TARGET_PAUSE_MS = 100.0


def config(workdir, rate, variant):
    on_error = "drop" if variant % 2 else "dead_letter"
    extra = ""
    if variant % 2:
        extra = f"""  copy:
    type: file
    inputs: [json]
    path: {json.dumps(os.path.join(workdir, "copy.jsonl"))}
"""
    return f"""data_dir: {json.dumps(workdir)}
batch: {{ max_events: 256, linger: 5ms }}
sources:
  gen:
    type: generator
    rate: {rate}
    template: '{{"seq":{{{{seq}}}}}}'
parsers:
  json: {{ type: json, inputs: [gen], on_error: {on_error} }}
sinks:
  out: {{ type: stdout, inputs: [json], encoding: raw }}
{extra}"""


class Reader:
    """Reads the daemon's stdout without blocking; records (arrival, seq) per line."""

    def __init__(self, stream):
        self.stream = stream
        os.set_blocking(stream.fileno(), False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(stream, selectors.EVENT_READ)
        self.partial = b""
        self.arrivals = []  # monotonic seconds, one per line
        self.seqs = []
        self.eof = False

    def pump(self, until):
        """Reads until the monotonic time `until` or EOF."""
        while not self.eof:
            left = until - time.monotonic()
            if left <= 0:
                return
            for _ in self.selector.select(timeout=left):
                chunk = os.read(self.stream.fileno(), 1 << 20)
                now = time.monotonic()
                if not chunk:
                    self.eof = True
                    return
                data = self.partial + chunk
                lines = data.split(b"\n")
                self.partial = lines.pop()
                for line in lines:
                    self.arrivals.append(now)
                    self.seqs.append(json.loads(line)["seq"])


def longest_gap(arrivals, start, end):
    window = [t for t in arrivals if start <= t <= end]
    return max((b - a for a, b in zip(window, window[1:])), default=float("inf"))


def main():
    parser = common.argument_parser(__doc__, workdir="bench/reload/work")
    parser.add_argument("--rate", type=int, default=20000)
    parser.add_argument("--reloads", type=int, default=5)
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    path = os.path.join(args.workdir, "reload.yaml")
    stats = os.path.join(args.workdir, "reload.stats.json")
    stderr_path = os.path.join(args.workdir, "reload.stderr")
    with open(path, "w") as f:
        f.write(config(args.workdir, args.rate, 0))
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen([args.ingestd, "run", "-c", path, "--plugin-dir", args.plugin_dir,
                                 "--stats-file", stats], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=err)
    reader = Reader(proc.stdout)

    def log():
        with open(stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    try:
        reader.pump(time.monotonic() + 1.0)  # warm up
        steady_start = time.monotonic()
        reader.pump(steady_start + 2.0)
        steady = longest_gap(reader.arrivals, steady_start, time.monotonic())
        pauses = []
        for i in range(1, args.reloads + 1):
            with open(path, "w") as f:
                f.write(config(args.workdir, args.rate, i))
            sent = time.monotonic()
            done_before = len(re.findall(r"reloaded ", log()))
            proc.send_signal(signal.SIGHUP)
            deadline = sent + 30
            while len(re.findall(r"reloaded ", log())) <= done_before:
                if time.monotonic() > deadline or proc.poll() is not None:
                    fail(f"reload {i} did not complete; stderr:\n{tail(stderr_path)}")
                reader.pump(time.monotonic() + 0.01)
            reader.pump(sent + 1.0)
            pauses.append(longest_gap(reader.arrivals, sent - 0.5, sent + 1.0))
        proc.send_signal(signal.SIGTERM)
        reader.pump(time.monotonic() + 30)
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    if rc != 0:
        fail(f"ingestd exited {rc}; stderr:\n{tail(stderr_path)}")
    generated = common.read_counters(stats)["gen.events_out"]
    seen = set(reader.seqs)
    lost = generated - len(seen & set(range(generated)))
    duplicated = len(reader.seqs) - len(seen)
    worst = max(pauses) * 1000
    print(f"reload under load: {args.rate} events/s, {args.reloads} reloads "
          f"(parser replaced, a sink added or removed each time)")
    print(f"  longest gap between outputs around a reload: {worst:.1f} ms "
          f"(each: {', '.join(f'{p * 1000:.1f}' for p in pauses)}; "
          f"steady state: {steady * 1000:.1f} ms); target < {TARGET_PAUSE_MS:.0f} ms: "
          f"{verdict(worst < TARGET_PAUSE_MS)}")
    print(f"  events: {generated} generated, {len(seen)} delivered, {lost} lost, "
          f"{duplicated} duplicated; target 0 lost, 0 duplicated: "
          f"{verdict(lost == 0 and duplicated == 0)}")
    if len(seen) > generated or not reader.eof:
        fail("more sequence numbers than the generator emitted, or stdout not closed")


if __name__ == "__main__":
    common.run("bench-reload", main)
