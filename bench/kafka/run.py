#!/usr/bin/env python3
"""Kafka sink benchmark for ingestd (see bench/README.md).

Starts the Kafka test peer (librdkafka's mock cluster, tests/tools/kafka_mock) with two topics
of --partitions partitions each, then, --runs times in turn:

1. bench_rdkafka_producer: librdkafka's own producer writes N messages (~90 bytes of JSON with
   a sequence number) to topic `rdkafka`;
2. `ingestd run` on generator(count N, the same shape) -> kafka sink (encoding raw) writes N
   messages to topic `ingestd`;

both with the same client settings (acks=all, idempotence, lz4, linger.ms). Each side is timed by
wall clock around its process (start-up and shutdown included); the fastest run of each counts.
Delivery is counted from the peer's high watermarks (the mock keeps only a few MiB per
partition, so nothing is read back): each run must add exactly N to its topic. Prints both rates,
the ratio (target >= 80 %) as PASS or MISS, and ingestd's peak RSS.

Exit status: 0 when everything ran (whether the target was met or missed), 1 when a step failed
(a non-zero exit, a wrong message count).
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import common  # noqa: E402  (bench/common.py)
from common import fail  # noqa: E402

TARGET_RATIO = 0.80
# The client settings both sides run with (the sink sets acks, idempotence and compression from
# its options; linger.ms is librdkafka's default, written out so both sides agree).
COMPRESSION = "lz4"
LINGER_MS = "5"


def run_producer(args, peer):
    before = peer.delivered("rdkafka", strict=True)
    start = time.monotonic()
    p = subprocess.run([args.producer, peer.bootstrap, "rdkafka", str(args.events),
                        "acks=all", "enable.idempotence=true", f"compression.codec={COMPRESSION}",
                        f"linger.ms={LINGER_MS}"], capture_output=True, text=True)
    wall = time.monotonic() - start
    if p.returncode != 0:
        fail(f"bench_rdkafka_producer exited {p.returncode}: {p.stderr}")
    result = json.loads(p.stdout.strip().splitlines()[-1])
    added = peer.delivered("rdkafka", strict=True) - before
    if added != args.events or result["failed"] != 0:
        fail(f"the producer added {added} messages ({result['failed']} failed), "
             f"expected {args.events}")
    return wall


def run_ingestd(args, peer, run):
    before = peer.delivered("ingestd", strict=True)
    config = os.path.join(args.workdir, "kafka.yaml")
    stats = os.path.join(args.workdir, f"ingestd-{run}.stats.json")
    stderr_path = os.path.join(args.workdir, f"ingestd-{run}.stderr")
    template = json.dumps(common.EVENT_TEMPLATE)
    with open(config, "w") as f:
        f.write(f"""
data_dir: {json.dumps(args.workdir)}
batch: {{ max_events: {args.batch_events} }}
sources:
  gen: {{ type: generator, count: {args.events}, seed: 1, template: {template} }}
sinks:
  out:
    type: kafka
    inputs: [gen]
    workers: {args.sink_workers}
    brokers: {json.dumps(peer.bootstrap)}
    topic: ingestd
    encoding: raw
    compression: {COMPRESSION}
    librdkafka: {{ linger.ms: "{LINGER_MS}" }}
""")
    wall, rss_kib, counters = common.run_ingestd(args.ingestd, args.plugin_dir, config, stats,
                                                 stderr_path)
    added = peer.delivered("ingestd", strict=True) - before
    if added != args.events or counters.get("out.delivered") != args.events:
        fail(f"ingestd added {added} messages (out.delivered={counters.get('out.delivered')}), "
             f"expected {args.events}")
    return wall, rss_kib, counters


def main():
    parser = common.argument_parser(__doc__, workdir="bench/kafka/work")
    parser.add_argument("--peer", default=common.kafka_peer_path())
    parser.add_argument("--producer",
                        default=common.build_path("bench", "kafka", "bench_rdkafka_producer"))
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--partitions", type=int, default=16,
                        help="per topic; the mock keeps ~5 MiB of each")
    parser.add_argument("--batch-events", type=int, default=1024,
                        help="the core's batch.max_events")
    parser.add_argument("--sink-workers", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    common.require_executables((args.ingestd, args.peer, args.producer), "bench_kafka")
    os.makedirs(args.workdir, exist_ok=True)

    peer = common.KafkaPeer(args.peer, ["--topic", f"ingestd:{args.partitions}",
                                        "--topic", f"rdkafka:{args.partitions}"], args.workdir)
    try:
        producer_walls, ingestd_walls, rss = [], [], 0
        for run in range(max(1, args.runs)):
            producer_walls.append(run_producer(args, peer))
            wall, rss_kib, counters = run_ingestd(args, peer, run)
            ingestd_walls.append(wall)
            rss = max(rss, rss_kib)
            print(f"run {run + 1}: rdkafka {producer_walls[-1]:.3f} s, ingestd {wall:.3f} s "
                  f"(queue_full_waits {counters.get('out.queue_full_waits', 0)})")
    finally:
        peer.close()
    raw_rate = args.events / min(producer_walls)
    rate = args.events / min(ingestd_walls)
    ratio = rate / raw_rate
    print(f"rdkafka producer: {args.events} messages, best {min(producer_walls):.3f} s, "
          f"{raw_rate:,.0f} msgs/s")
    print(f"ingestd pipeline: {args.events} messages, best {min(ingestd_walls):.3f} s, "
          f"{rate:,.0f} msgs/s  (batch {args.batch_events} events, {args.sink_workers} sink "
          f"worker(s))")
    print(common.ratio_line("ratio:            ", ratio, "librdkafka", TARGET_RATIO))
    print(f"ingestd peak RSS: {rss / 1024:.1f} MiB")
    return 0


if __name__ == "__main__":
    common.run("bench_kafka", main)
