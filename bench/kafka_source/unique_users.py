#!/usr/bin/env python3
"""Unique users per minute from a Kafka topic, timed, with exact counts (see bench/README.md).

Generates --records records shaped like tests/integration/test_unique_users.py's ("Doodle"
records: top-level `uid` and `ts` in varying key order, other objects nesting `uid`/`ts` keys that
must not be confused with them, 15 % late by 1-40 s, a few by 90-150 s), produces them with kcat
(lz4) into a topic of --partitions partitions on the Kafka test peer, then times `ingestd run` on
kafka source -> json (time_field ts) -> window (event time, 1 min, allowed_lateness 5s,
distinct(uid)) -> file: the pipeline of the integration test.

Which records are late depends on the window's watermark: the lowest, over the partitions it has
seen, of the newest event time of each, minus the lateness. A partition not seen yet does not hold
it back, so it depends a little on how the consumer interleaves the partitions at the start
(librdkafka delivers them in large runs, one partition after another). The expected counts must
not depend on that interleaving, so the records are built so that they cannot:

- each minute has its set of users, and every partition's in-order records of the minute's first
  COVER_S seconds go through all of them. Take the first partition to deliver a record at or past
  the minute's end + lateness: until then nobody closed the minute, so everything it delivered
  before was counted, and that holds all the minute's users (with REORDER records to spare for
  batches that overtake each other in the parser's two workers);
- every other record has a user of its minute (of its own event time), so whether it is kept or
  late cannot change a count;
- the far-late frames (90-150 s late, 0.1 %) too: whether one is late depends on how far behind
  the slowest partition is when it comes (tests/integration/test_unique_users.py checks the late
  rule exactly, on one ordered input).

The expected distinct users per minute are computed from the records produced; every minute of
the output must match. How many records were dropped as late is printed.

Timing: the daemon is timed from the "assigned N partitions" line of its log (a fresh group's
first join waits ~3 s in the mock, as on a Kafka broker; printed separately). The watermark
closes every minute but the last while the daemon runs. A second window on the parser's output
(count per 100 ms of processing time, its own file) shows when every record has been read and
parsed. Both files are polled every 20 ms until all but the last minute are present and the
counts add up to every record; then a sentinel record two minutes later is produced into every
partition (as the next minute of a live stream would), whose watermark closes the last minute.
The sentinels' kcat is started and connected before the daemon, so that its start-up is not
timed, and the source fetches with fetch.wait.max.ms 50 (librdkafka waits up to 500 ms by
default for a partition with no new data, which would be timed here as the sentinels' latency).
End to end is from the assignment to the last minute in the file (the sentinel's production
included). A stop does not emit an open minute of a Kafka topic (it is recomputed from the
uncommitted input by the next run), so the sentinels' own minute is never written. Target: < 2 s.
Then librdkafka's own consumer reads the same topic in a fresh group; its time from first to last
message is printed as the floor no pipeline on this consumer can beat.

Exit status: 0 when everything ran and every count is right (whether the time target was met or
missed), 1 when a step failed or a count is wrong.
"""

import collections
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import common  # noqa: E402  (bench/common.py)
from common import fail  # noqa: E402

sys.path.insert(0, os.path.join(common.SOURCE_DIR, "tests", "integration"))
# The integration test's record shape, used as it is: nested uid/ts keys, varying key order.
from test_unique_users import UserStream  # noqa: E402

render = UserStream._render

TARGET_S = 2.0
TOPIC = "users"
WINDOW_S = 60
LATENESS_S = 5
COVER_S = 30  # each minute's users all appear in every partition within its first COVER_S s
REORDER = 2048  # records of one partition that may overtake another: 2 parser workers' batches
BASE_S = 1515445200 + 17  # mid-minute start, as in the integration test
TIMEOUT_S = 120


def window_end(t):
    return t - t % WINDOW_S + WINDOW_S


class Stream:
    """The records, one list per partition (each partition is produced in its list's order,
    under a key that librdkafka's `consistent` partitioner, CRC-32 of the key modulo the
    partition count, sends there), and how many distinct users each minute must count."""

    def __init__(self, records, rate, partitions, users, seed=7):
        rng = random.Random(seed)
        pool = ["%016x" % rng.getrandbits(64) for _ in range(users)]
        cum_weights = list(itertools.accumulate(1.0 / (i + 1) ** 0.8 for i in range(users)))
        per_partition = records // partitions
        per_second = rate / partitions  # records of each partition per second of event time
        last_s = BASE_S + int((per_partition - 1) / per_second)
        # Each minute's users: the in-order records of the minute's first COVER_S seconds go
        # through every one of them in every partition.
        room = int(COVER_S * per_second)
        minute_users = {}
        for start in range(BASE_S - BASE_S % WINDOW_S, last_s + 1, WINDOW_S):
            want = rng.randint(room // 2, room)
            chosen = set()
            while len(chosen) < want:
                chosen.update(rng.choices(pool, cum_weights=cum_weights, k=want - len(chosen)))
            minute_users[start] = sorted(chosen)
        self.keys = [partition_key(p, partitions) for p in range(partitions)]
        self.partitions = []  # per partition: [(uid, ts)]
        self.far_late = 0
        seen_users = collections.defaultdict(set)
        for p in range(partitions):
            rows, covering, history = [], {}, []
            for j in range(per_partition):
                nominal = BASE_S + int(j / per_second)
                minute = nominal - nominal % WINDOW_S
                if minute not in covering:
                    covering[minute] = rng.sample(minute_users[minute], len(minute_users[minute]))
                if covering[minute]:  # in order, through the minute's users
                    t, uid = nominal, covering[minute].pop()
                    if not covering[minute] and nominal - max(minute, BASE_S) > COVER_S:
                        fail("generator: a minute's users did not fit in its first COVER_S s")
                else:
                    r = rng.random()
                    if r < 0.85:
                        t = nominal
                    elif r < 0.97:
                        t = nominal - rng.randint(1, LATENESS_S)
                    elif r < 0.999 or len(history) <= REORDER:
                        t = nominal - rng.randint(6, 40)
                    else:
                        t = nominal - rng.randint(90, 150)
                    t = max(t, BASE_S)
                    if nominal - t >= 90:
                        self.far_late += 1
                    start = t - t % WINDOW_S
                    uid = rng.choice(minute_users[start])
                rows.append((uid, t))
                history.append(max(t, history[-1]) if history else t)
                seen_users[t - t % WINDOW_S].add(uid)
            self.partitions.append(rows)
        # What each minute must count, from the records themselves.
        self.expected = {start: len(users) for start, users in seen_users.items()}
        self.records = per_partition * partitions
        self.last_ts = max(t for rows in self.partitions for _, t in rows)
        self.rng = rng

    def lines(self):
        """(key, JSON line) of every record, partitions interleaved record by record."""
        for row in itertools.zip_longest(*self.partitions):
            for p, record in enumerate(row):
                if record is not None:
                    yield self.keys[p], render(self.rng, *record)


def partition_key(partition, partitions):
    """A message key that librdkafka's `consistent` partitioner sends to partition."""
    for n in itertools.count():
        key = f"p{partition}-{n}"
        if zlib.crc32(key.encode()) % partitions == partition:
            return key


def rfc3339(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(seconds))


def produce(args, peer, stream):
    path = os.path.join(args.workdir, "records.tsv")
    with open(path, "w") as f:
        f.writelines(f"{key}\t{line}\n" for key, line in stream.lines())
    with open(path, "rb") as f:
        p = subprocess.run([args.kcat, "-P", "-b", peer.bootstrap, "-t", TOPIC, "-K", "\t",
                            "-z", "lz4", "-X", "partitioner=consistent", "-X", "acks=all"],
                           stdin=f, capture_output=True, timeout=TIMEOUT_S)
    if p.returncode != 0:
        fail(f"kcat -P exited {p.returncode}: {p.stderr[-2000:].decode('utf-8', 'replace')}")
    # Every partition holds its list (the partitioner as assumed), and the mock kept them whole:
    # the consumer must read as many (checked after the run).
    answer = peer.command(f"hwm {TOPIC}")
    want = " ".join(f"{p}:{len(rows)}" for p, rows in enumerate(stream.partitions))
    if answer != want:
        fail(f"the topic's high watermarks are {answer!r}, expected {want!r}")


def run_ingestd(args, peer, stream):
    out_path = os.path.join(args.workdir, "users.jsonl")
    progress_path = os.path.join(args.workdir, "progress.jsonl")
    for path in (out_path, progress_path):
        if os.path.exists(path):
            os.remove(path)  # a previous invocation's
    # and its saved watermark, which would make every record late
    shutil.rmtree(os.path.join(args.workdir, "state"), ignore_errors=True)
    config = os.path.join(args.workdir, "users.yaml")
    with open(config, "w") as f:
        f.write(f"""
data_dir: {json.dumps(args.workdir)}
sources:
  users: {{ type: kafka, brokers: {json.dumps(peer.bootstrap)}, group: unique-users,
           topics: [{TOPIC}], start: earliest, rebalance_timeout: 1s,
           librdkafka: {{ fetch.wait.max.ms: "50" }} }}
parsers:
  records: {{ type: json, inputs: [users], workers: {args.parse_workers}, time_field: ts,
             time_format: s, fields: [uid] }}
aggregates:
  users_per_minute:
    type: window
    inputs: [records]
    window: {{ size: 1m, time: event, allowed_lateness: {LATENESS_S}s }}
    metrics: {{ users: distinct(uid) }}
  progress:
    type: window
    inputs: [records]
    window: {{ size: 100ms, time: processing }}
    metrics: {{ count: count }}
sinks:
  out: {{ type: file, inputs: [users_per_minute], path: {json.dumps(out_path)}, fsync: never }}
  progress_out:
    {{ type: file, inputs: [progress], path: {json.dumps(progress_path)}, fsync: never }}
""")
    # The sentinels' producer is connected before the clock starts: what is timed is the
    # pipeline, not kcat's start-up and metadata request.
    sentinel = SentinelProducer(args, peer, stream)
    daemon = common.Daemon(args.ingestd, args.plugin_dir, config,
                           os.path.join(args.workdir, "users.stats.json"),
                           os.path.join(args.workdir, "users.stderr"))
    output, progress = common.JsonLines(out_path), common.JsonLines(progress_path)
    rows = []
    assigned = []
    parsed = [0]
    closed = len(stream.expected) - 1  # every minute but the last: the watermark closes them
    records = stream.records

    def all_read():
        daemon.check_running()
        if not assigned and daemon.log_has("assigned "):
            assigned.append(time.monotonic())
        rows.extend(output.read())
        parsed[0] += sum(row["count"] for row in progress.read())
        return len(rows) >= closed and parsed[0] >= records

    def all_written():
        daemon.check_running()
        rows.extend(output.read())
        return len(rows) >= len(stream.expected)

    try:
        common.poll(all_read, TIMEOUT_S, f"{closed} minutes in {out_path} and {records} records "
                    f"counted in {progress_path}")
        t_closed = time.monotonic()
        sentinel.send()
        common.poll(all_written, TIMEOUT_S, f"the last minute in {out_path}")
        t_last = time.monotonic()
        sentinel.finish()
        counters = daemon.stop()
    finally:
        daemon.kill()
        if sentinel.proc.poll() is None:
            sentinel.proc.kill()
    rows.extend(output.read())
    start = assigned[0] if assigned else daemon.started
    return rows, counters, {"join": start - daemon.started, "closed": t_closed - start,
                            "last": t_last - start}


class SentinelProducer:
    """One record two minutes after the last into every partition (the watermark is the lowest of
    the partitions'): they close the last minute. kcat runs from the start, waiting on its input,
    and produces each line as it comes (no linger)."""

    def __init__(self, args, peer, stream):
        line = json.dumps({"uid": "sentinel", "ts": stream.last_ts + 120})
        self.text = "".join(f"{key}\t{line}\n" for key in stream.keys).encode()
        self.proc = subprocess.Popen(
            [args.kcat, "-P", "-b", peer.bootstrap, "-t", TOPIC, "-K", "\t",
             "-X", "partitioner=consistent", "-X", "linger.ms=0"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def send(self):
        self.proc.stdin.write(self.text)
        self.proc.stdin.close()  # kcat produces what it read, waits for delivery and exits

    def finish(self):
        try:
            err = self.proc.stderr.read()
            code = self.proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("kcat -P (sentinels) did not finish")
        if code != 0:
            fail(f"kcat -P (sentinels) exited {code}: {err[-2000:].decode()}")


def check(stream, rows, counters):
    got = {}
    for row in rows:
        if row["window_start"] in got:
            fail(f"minute {row['window_start']} emitted twice")
        got[row["window_start"]] = row["users"]
    want = {rfc3339(start): n for start, n in stream.expected.items()}
    wrong = [f"{m}: {got.get(m)} (expected {want.get(m)})"
             for m in sorted(set(got) | set(want)) if got.get(m) != want.get(m)]
    if wrong:
        fail(f"{len(wrong)} of {len(want)} minutes counted wrong: " + "; ".join(wrong[:10]))
    if list(got) != sorted(got):
        fail("the minutes were not emitted in order")
    sentinels = len(stream.keys)
    records = stream.records + sentinels
    if counters.get("users.messages") != records or counters.get("records.parsed") != records:
        fail(f"read {counters.get('users.messages')} and parsed {counters.get('records.parsed')}"
             f" records, expected {records}")
    if counters.get("users_per_minute.left_for_replay") != sentinels:
        fail(f"left_for_replay={counters.get('users_per_minute.left_for_replay')}: expected the "
             f"sentinels' open minute ({sentinels} records), and only it, to be left to the next "
             "run")
    return counters.get("users_per_minute.late", 0)


def main():
    parser = common.argument_parser(__doc__, workdir="bench/kafka_source/work-users")
    parser.add_argument("--peer", default=common.kafka_peer_path())
    parser.add_argument("--kcat", default=shutil.which("kcat") or shutil.which("kafkacat"))
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=4000, help="records per second of event time")
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--partitions", type=int, default=32,
                        help="the mock keeps ~5 MiB of each")
    parser.add_argument("--parse-workers", type=int, default=2)
    parser.add_argument("--consumer", default=common.build_path("bench", "kafka_source",
                                                                "bench_rdkafka_consumer"))
    args = parser.parse_args()
    if not args.kcat:
        fail("kcat is not installed (scripts/packages.txt lists it)")
    common.require_executables((args.ingestd, args.peer, args.kcat, args.consumer),
                               "bench_kafka_source")
    os.makedirs(args.workdir, exist_ok=True)

    stream = Stream(args.records, args.rate, args.partitions, args.users)
    peer = common.KafkaPeer(args.peer, ["--topic", f"{TOPIC}:{args.partitions}"], args.workdir)
    try:
        produce(args, peer, stream)
        rows, counters, times = run_ingestd(args, peer, stream)
        # The floor: librdkafka's own consumer reading the same records (sentinels included).
        _, floor = common.rdkafka_consumer(args.consumer, peer.bootstrap, TOPIC, "floor",
                                           stream.records + len(stream.keys), TIMEOUT_S)
    finally:
        peer.close()
    late = check(stream, rows, counters)
    print(f"records: {stream.records:,} in {args.partitions} partitions, "
          f"{len(stream.expected)} minutes, {stream.far_late} far late (90-150 s)")
    users = ", ".join(str(n) for _, n in sorted(stream.expected.items()))
    print(f"counts: every minute exact ({users} users); late={late:,} (far late: "
          f"{stream.far_late})")
    print(f"group join: {times['join']:.3f} s (not counted)")
    print(f"partitions assigned -> every minute the watermark closes in the file: "
          f"{times['closed']:.3f} s ({stream.records / times['closed']:,.0f} records/s)")
    print(f"librdkafka consumer alone, same topic, first to last message: {floor:.3f} s "
          f"(the floor; information)")
    print(f"end to end (every minute in the file, the sentinel's production included): "
          f"{times['last']:.3f} s  (target < {TARGET_S:.0f} s)  "
          f"{common.verdict(times['last'] < TARGET_S)}")
    return 0


if __name__ == "__main__":
    common.run("bench_kafka_source (unique users)", main)
