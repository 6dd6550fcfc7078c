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

import argparse
import json
import os
import subprocess
import sys
import time

TARGET_RATIO = 0.80
TEMPLATE = ('{"seq":{{seq}},"device":"{{choice xbox_one,ps4,roku,apple_tv}}",'
            '"sev":"{{choice success,success,success,error}}",'
            '"title":"{{choice narcos,dark,ozark,mindhunter}}","country":"{{choice UK,US,BR,DE}}",'
            '"n":{{int 0 99999}}}')
# The client settings both sides run with (the sink sets acks, idempotence and compression from
# its options; linger.ms is librdkafka's default, written out so both sides agree).
COMPRESSION = "lz4"
LINGER_MS = "5"


def fail(message):
    print(f"bench_kafka: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def tail(path, n=3000):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode("utf-8", "replace")
    except OSError:
        return ""


class Peer:
    def __init__(self, path, partitions, workdir):
        self.stderr_path = os.path.join(workdir, "peer.stderr")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [path, "--topic", f"ingestd:{partitions}", "--topic", f"rdkafka:{partitions}"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
        self.bootstrap = self.proc.stdout.readline().strip()
        if not self.bootstrap:
            fail(f"the Kafka peer printed no bootstrap list: {tail(self.stderr_path)}")

    def delivered(self, topic):
        self.proc.stdin.write(f"hwm {topic}\n")
        answer = self.proc.stdout.readline().strip()
        if not answer or answer.startswith("error"):
            fail(f"hwm {topic}: {answer!r} {tail(self.stderr_path)}")
        return sum(int(item.split(":")[1]) for item in answer.split())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(30)


def run_producer(args, peer):
    before = peer.delivered("rdkafka")
    start = time.monotonic()
    p = subprocess.run([args.producer, peer.bootstrap, "rdkafka", str(args.events),
                        "acks=all", "enable.idempotence=true", f"compression.codec={COMPRESSION}",
                        f"linger.ms={LINGER_MS}"], capture_output=True, text=True)
    wall = time.monotonic() - start
    if p.returncode != 0:
        fail(f"bench_rdkafka_producer exited {p.returncode}: {p.stderr}")
    result = json.loads(p.stdout.strip().splitlines()[-1])
    added = peer.delivered("rdkafka") - before
    if added != args.events or result["failed"] != 0:
        fail(f"the producer added {added} messages ({result['failed']} failed), "
             f"expected {args.events}")
    return wall


def run_ingestd(args, peer, run):
    before = peer.delivered("ingestd")
    config = os.path.join(args.workdir, "kafka.yaml")
    stats = os.path.join(args.workdir, f"ingestd-{run}.stats.json")
    stderr_path = os.path.join(args.workdir, f"ingestd-{run}.stderr")
    with open(config, "w") as f:
        f.write(f"""
data_dir: {json.dumps(args.workdir)}
batch: {{ max_events: {args.batch_events} }}
sources:
  gen: {{ type: generator, count: {args.events}, seed: 1, template: {json.dumps(TEMPLATE)} }}
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
    cmd = [args.ingestd, "run", "-c", config, "--plugin-dir", args.plugin_dir,
           "--stats-file", stats]
    with open(stderr_path, "wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        fail(f"ingestd exited {rc}; stderr:\n{tail(stderr_path)}")
    with open(stats) as f:
        counters = json.load(f)["counters"]
    added = peer.delivered("ingestd") - before
    if added != args.events or counters.get("out.delivered") != args.events:
        fail(f"ingestd added {added} messages (out.delivered={counters.get('out.delivered')}), "
             f"expected {args.events}")
    return wall, usage.ru_maxrss, counters


def verdict(ok):
    return "PASS" if ok else "MISS"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    build = os.environ.get("INGESTD_BUILD_DIR", os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "build"))
    parser.add_argument("--ingestd", default=os.path.join(build, "ingestd"))
    parser.add_argument("--plugin-dir", default=os.path.join(build, "plugins"))
    parser.add_argument("--peer", default=os.path.join(build, "tests", "tools", "kafka_mock",
                                                       "ingestd-test-kafka"))
    parser.add_argument("--producer", default=os.path.join(build, "bench", "kafka",
                                                           "bench_rdkafka_producer"))
    parser.add_argument("--workdir", default=os.path.join(build, "bench", "kafka", "work"))
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--partitions", type=int, default=16,
                        help="per topic; the mock keeps ~5 MiB of each")
    parser.add_argument("--batch-events", type=int, default=1024,
                        help="the core's batch.max_events")
    parser.add_argument("--sink-workers", type=int, default=1)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    for tool in (args.ingestd, args.peer, args.producer):
        if not os.access(tool, os.X_OK):
            fail(f"{tool} is not an executable (build it first: ninja bench_kafka)")
    os.makedirs(args.workdir, exist_ok=True)

    peer = Peer(args.peer, args.partitions, args.workdir)
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
    print(f"ratio:            {ratio:.1%} of librdkafka  (target >= {TARGET_RATIO:.0%})  "
          f"{verdict(ratio >= TARGET_RATIO)}")
    print(f"ingestd peak RSS: {rss / 1024:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
