#!/usr/bin/env python3
"""Kafka source throughput benchmark for ingestd (see bench/README.md).

Starts the Kafka test peer (librdkafka's mock cluster, tests/tools/kafka_mock) with one topic of
--partitions partitions and fills it once with bench_rdkafka_producer (N messages of ~90 bytes of
JSON, lz4). The mock keeps only ~5 MiB of each partition and drops older data silently, so the
high watermarks must add up to N and every consumer below must read exactly N. Then, --runs times
in turn, each in a fresh consumer group (or none) on the same topic:

1. bench_rdkafka_consumer: librdkafka's high-level consumer reads until it has seen N messages;
2. `kcat -C -e -o beginning` reads every partition to its end (no group: assign());
3. `ingestd run` on kafka source (start: earliest) -> window (count, processing time, 100 ms) ->
   file (with --parse-workers N, a json parser of N workers before the window): timed from the start of the process until the `count`s in the output file
   (polled every 20 ms) add up to N; then SIGTERM, and the exit must be clean.

Each side is timed by wall clock around its process, start-up (and the group join) included; the
best run of each counts. Prints the rates, ingestd / librdkafka consumer (target >= 80 %) and
ingestd / kcat (for information), and the same rates counted from the first message (consumer)
and the partition assignment (ingestd's log), which leaves the group join out.

Exit status: 0 when everything ran (whether the target was met or missed), 1 when a step failed
(a non-zero exit, a wrong message count).
"""

import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import common  # noqa: E402  (bench/common.py)
from common import fail  # noqa: E402

TARGET_RATIO = 0.80
TOPIC = "events"
WINDOW = "100ms"
TIMEOUT_S = 120


def fill_topic(args, peer):
    p = subprocess.run([args.producer, peer.bootstrap, TOPIC, str(args.events), "acks=all",
                        "compression.codec=lz4", "linger.ms=5"], capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"bench_rdkafka_producer exited {p.returncode}: {p.stderr}")
    stored = peer.delivered(TOPIC, strict=True)
    if stored != args.events:
        fail(f"the topic's high watermarks add up to {stored}, expected {args.events}")


def run_consumer(args, peer, run):
    return common.rdkafka_consumer(args.consumer, peer.bootstrap, TOPIC, f"rdkafka-{run}",
                                   args.events, TIMEOUT_S)


def run_kcat(args, peer):
    start = time.monotonic()
    p = subprocess.run([args.kcat, "-C", "-b", peer.bootstrap, "-t", TOPIC, "-e", "-o",
                        "beginning", "-q", "-f", "\\n"], capture_output=True, timeout=TIMEOUT_S)
    wall = time.monotonic() - start
    messages = p.stdout.count(b"\n")
    if p.returncode != 0 or messages != args.events:
        fail(f"kcat exited {p.returncode} after {messages} messages, expected {args.events}: "
             f"{p.stderr[-2000:].decode('utf-8', 'replace')}")
    return wall


def run_ingestd(args, peer, run):
    out_path = os.path.join(args.workdir, f"counts-{run}.jsonl")
    config = os.path.join(args.workdir, f"ingestd-{run}.yaml")
    if os.path.exists(out_path):
        os.remove(out_path)  # a previous invocation's
    parsers = (f"parsers:\n  ev: {{ type: json, inputs: [in], workers: {args.parse_workers} }}\n"
               if args.parse_workers else "")
    with open(config, "w") as f:
        f.write(f"""
data_dir: {json.dumps(args.workdir)}
sources:
  in: {{ type: kafka, brokers: {json.dumps(peer.bootstrap)}, group: ingestd-{run},
        topics: [{TOPIC}], start: earliest }}
{parsers}aggregates:
  counts:
    type: window
    inputs: [{"ev" if args.parse_workers else "in"}]
    window: {{ size: {WINDOW}, time: processing }}
    metrics: {{ count: count }}
sinks:
  out: {{ type: file, inputs: [counts], path: {json.dumps(out_path)}, fsync: never }}
""")
    daemon = common.Daemon(args.ingestd, args.plugin_dir, config,
                           os.path.join(args.workdir, f"ingestd-{run}.stats.json"),
                           os.path.join(args.workdir, f"ingestd-{run}.stderr"))
    output = common.JsonLines(out_path)
    seen = {"count": 0, "assigned": None}

    def all_counted():
        daemon.check_running()
        if seen["assigned"] is None and daemon.log_has("assigned "):
            seen["assigned"] = time.monotonic()
        seen["count"] += sum(row["count"] for row in output.read())
        return seen["count"] >= args.events

    try:
        common.poll(all_counted, TIMEOUT_S, f"ingestd to count {args.events} messages")
        wall = time.monotonic() - daemon.started
        assigned = seen["assigned"] or daemon.started
        after_assign = time.monotonic() - assigned
        counters = daemon.stop()
    finally:
        daemon.kill()
    seen["count"] += sum(row["count"] for row in output.read())
    if seen["count"] != args.events or counters.get("in.messages") != args.events:
        fail(f"ingestd counted {seen['count']} messages (in.messages="
             f"{counters.get('in.messages')}), expected {args.events}")
    return wall, after_assign


def main():
    parser = common.argument_parser(__doc__, workdir="bench/kafka_source/work")
    parser.add_argument("--peer", default=common.kafka_peer_path())
    parser.add_argument("--producer",
                        default=common.build_path("bench", "kafka", "bench_rdkafka_producer"))
    parser.add_argument("--consumer", default=common.build_path("bench", "kafka_source",
                                                                "bench_rdkafka_consumer"))
    parser.add_argument("--kcat", default=shutil.which("kcat") or shutil.which("kafkacat"))
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--partitions", type=int, default=32,
                        help="the mock keeps ~5 MiB of each")
    parser.add_argument("--parse-workers", type=int, default=0,
                        help="a json parser of this many workers before the window (0: none)")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    if not args.kcat:
        fail("kcat is not installed (scripts/packages.txt lists it)")
    common.require_executables((args.ingestd, args.peer, args.producer, args.consumer, args.kcat),
                               "bench_kafka_source")
    os.makedirs(args.workdir, exist_ok=True)

    peer = common.KafkaPeer(args.peer, ["--topic", f"{TOPIC}:{args.partitions}"], args.workdir)
    try:
        fill_topic(args, peer)
        consumer, consumer_read, kcat, ingestd, ingestd_read = [], [], [], [], []
        for run in range(max(1, args.runs)):
            wall, read = run_consumer(args, peer, run)
            consumer.append(wall)
            consumer_read.append(read)
            kcat.append(run_kcat(args, peer))
            wall, read = run_ingestd(args, peer, run)
            ingestd.append(wall)
            ingestd_read.append(read)
            print(f"run {run + 1}: rdkafka consumer {consumer[-1]:.3f} s, kcat {kcat[-1]:.3f} s, "
                  f"ingestd {ingestd[-1]:.3f} s (after the group join: consumer "
                  f"{consumer_read[-1]:.3f} s, ingestd {ingestd_read[-1]:.3f} s)")
    finally:
        peer.close()

    def rate(walls):
        return args.events / min(walls)

    print(f"topic: {args.events} messages in {args.partitions} partitions, lz4; "
          f"best of {len(ingestd)} runs each, start-up included")
    print(f"librdkafka consumer: {rate(consumer):,.0f} msgs/s  (best {min(consumer):.3f} s)")
    print(f"kcat -C -e:          {rate(kcat):,.0f} msgs/s  (best {min(kcat):.3f} s)")
    print(f"ingestd pipeline:    {rate(ingestd):,.0f} msgs/s  (best {min(ingestd):.3f} s; "
          f"kafka -> {f'json ({args.parse_workers} workers) -> ' if args.parse_workers else ''}"
          f"window {WINDOW} count -> file)")
    print(common.ratio_line("ratio:               ", rate(ingestd) / rate(consumer),
                            "librdkafka consumer", TARGET_RATIO))
    print(f"ratio vs kcat:       {rate(ingestd) / rate(kcat):.1%} (information)")
    print(f"without the group join (consumer: first to last message; ingestd: partitions "
          f"assigned to the last count): consumer {rate(consumer_read):,.0f} msgs/s, ingestd "
          f"{rate(ingestd_read):,.0f} msgs/s, {rate(ingestd_read) / rate(consumer_read):.1%}")
    return 0


if __name__ == "__main__":
    common.run("bench_kafka_source", main)
