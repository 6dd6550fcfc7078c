"""The Kafka test peer (tests/tools/kafka_mock: librdkafka's mock cluster on 127.0.0.1) and the
real `kcat` as an independent consumer, for the Kafka integration tests.

    with KafkaPeer(workdir, brokers=1, topics={"events": 4}) as peer:
        peer.bootstrap            # "127.0.0.1:port,..."
        peer.command("down all")  # one line in, one line out
        peer.watermarks("events") # {partition: high watermark}
        peer.total("events")      # their sum, None while the peer cannot tell
        peer.committed("g", "events")  # {partition: the group's committed offset, -1 if none}
        consume(peer.bootstrap, "events", "%p %k %s")  # every message, via kcat
        produce(peer.bootstrap, "events", lines, keys)  # via kcat -P
"""

import os
import re
import shutil
import subprocess
import sys
import unittest
import urllib.request

import harness

PEER = os.environ.get("INGESTD_TEST_KAFKA", os.path.join(
    harness.BUILD_DIR, "tests", "tools", "kafka_mock", "ingestd-test-kafka"))
KCAT = shutil.which("kcat") or shutil.which("kafkacat")


def missing_tools():
    """Why the Kafka tests cannot run here, or None. A missing peer is a build problem, not a
    reason to skip: KafkaPeer fails on it."""
    if not KCAT:
        return "kcat is not installed (scripts/packages.txt lists it)"
    return None


class KafkaTestCase(harness.IntegrationTestCase):
    """An integration test against the Kafka peer: skipped, with the reason, when kcat is
    missing; self.peer(...) starts a KafkaPeer that is closed after the test."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        why = missing_tools()
        if why:
            print(f"skipping {cls.__name__}: {why}", file=sys.stderr)
            raise unittest.SkipTest(why)

    def peer(self, **kwargs):
        peer = KafkaPeer(self.dir, **kwargs)
        self.addCleanup(peer.close)
        return peer


class KafkaPeer:
    def __init__(self, workdir, brokers=1, topics=None):
        if not os.access(PEER, os.X_OK):
            raise AssertionError(f"test peer not found at {PEER} (build ingestd-test-kafka)")
        args = [PEER, "--brokers", str(brokers)]
        for name, partitions in (topics or {}).items():
            args += ["--topic", f"{name}:{partitions}"]
        self.stderr_path = os.path.join(workdir, "kafka-peer.stderr")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, text=True, bufsize=1)
        self.bootstrap = self.proc.stdout.readline().strip()
        self.last_error = None
        if not self.bootstrap:
            raise AssertionError(f"the Kafka peer printed no bootstrap list: {self.stderr()}")

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if not answer:
            raise AssertionError(f"the Kafka peer did not answer {line!r}: {self.stderr()}")
        return answer

    def watermarks(self, topic):
        """{partition: high watermark}; raises when the peer answers with an error."""
        answer = self.command(f"hwm {topic}")
        if answer.startswith("error"):
            raise AssertionError(f"hwm {topic}: {answer}")
        return {int(p): int(h) for p, h in (item.split(":") for item in answer.split())}

    def total(self, topic):
        """The messages in the topic (the sum of its high watermarks) for polling with
        wait_until: None while the peer cannot tell (right after an outage its query client may
        still be reconnecting), with the answer kept in last_error."""
        try:
            return sum(self.watermarks(topic).values())
        except AssertionError as e:
            self.last_error = str(e)
            return None

    def committed(self, group, topic):
        """{partition: committed offset (-1: none)} of a consumer group; raises on an error."""
        answer = self.command(f"committed {group} {topic}")
        if answer.startswith("error"):
            raise AssertionError(f"committed {group} {topic}: {answer}")
        return {int(p): int(o) for p, o in (item.split(":") for item in answer.split())}

    def topics(self):
        return dict((name, int(n)) for name, n in
                    (item.rsplit(":", 1) for item in self.command("topics").split()))

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def lag_gauges(base, component, topic):
    """{family: {partition: value}} of the Kafka lag gauges that the admin API at `base`
    (http://host:port) shows in /metrics for a source and topic."""
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {"ingestd_kafka_consumer_lag": {}, "ingestd_kafka_consumer_read_lag": {}}
    for name, labels, value in re.findall(r"^(ingestd_kafka_consumer_\w+)\{([^}]*)\} (\S+)$",
                                          text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if name in out and labels.get("component") == component and labels.get("topic") == topic:
            out[name][int(labels["partition"])] = float(value)
    return out


def source_yaml(peer, group, topic, name="in", librdkafka=None, options=None):
    """A `sources:` entry (indented for it) of a Kafka source reading `topic` in `group` with a
    200 ms commit interval and the 6 s session timeout that keeps the mock coordinator's holds
    short; `librdkafka` adds or overrides client properties, `options` more source options."""
    props = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500", **(librdkafka or {})}
    return "\n".join([f"  {name}:", "    type: kafka", f"    brokers: {harness.q(peer.bootstrap)}",
                      f"    group: {group}", f"    topics: [{topic}]", "    commit_interval: 200ms"] +
                     [f"    {k}: {v}" for k, v in (options or {}).items()] +
                     ["    librdkafka:"] +
                     [f"      {k}: {harness.q(v)}" for k, v in props.items()]) + "\n"


def consume(bootstrap, topic, fmt="%s\\n", timeout=60):
    """Every message of the topic from the beginning, formatted by kcat (-f fmt), as lines."""
    r = subprocess.run([KCAT, "-C", "-b", bootstrap, "-t", topic, "-e", "-o", "beginning", "-q",
                        "-f", fmt], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"kcat -C {topic} exited {r.returncode}: {r.stderr}")
    return r.stdout.splitlines()


def produce(bootstrap, topic, lines, keys=None, timeout=60, partition=None):
    """Produces one message per line with kcat -P (acks=all), keyed by keys[i] when given (kcat's
    default partitioner: equal keys, same partition), all into one partition when given. Lines
    and keys must not contain newlines or, for keys, a tab (the key delimiter)."""
    args = [KCAT, "-P", "-b", bootstrap, "-t", topic, "-X", "acks=all"]
    if partition is not None:
        args += ["-p", str(partition)]
    if keys is not None:
        args += ["-K", "\t"]
        text = "".join(f"{k}\t{line}\n" for k, line in zip(keys, lines))
    else:
        text = "".join(f"{line}\n" for line in lines)
    r = subprocess.run(args, input=text, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"kcat -P {topic} exited {r.returncode}: {r.stderr}")


def metadata(bootstrap, timeout=30):
    """`kcat -L -J`: the cluster's metadata as a dict."""
    import json
    r = subprocess.run([KCAT, "-L", "-b", bootstrap, "-J"], capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"kcat -L exited {r.returncode}: {r.stderr}")
    return json.loads(r.stdout)
