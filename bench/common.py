"""What the benchmarks under bench/*/run.py share: where the built tools are, failing a step,
running `ingestd run` to its end with its peak RSS, the Kafka test peer, and the PASS/MISS and
percentage figures they print.

A run.py imports this module with bench/ put on sys.path and hands its main() to run(), which
turns a Failure (raised by fail(), here or in the run.py) into "<name>: FAILED: <message>" on
stderr and exit status 1. Every `finally` of the run.py runs before that, as it would for
sys.exit(); nothing here catches a Failure itself.
"""

import argparse
import json
import os
import subprocess
import sys
import time

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD_DIR = os.environ.get("INGESTD_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
# Benchmarks' daemons leave the default admin port (8686) alone unless they ask for it.
os.environ.setdefault("INGESTD_ADMIN_LISTEN", "off")

# The generator template of the Kafka benchmarks: a numbered event of about 90 bytes of JSON.
EVENT_TEMPLATE = ('{"seq":{{seq}},"device":"{{choice xbox_one,ps4,roku,apple_tv}}",'
                  '"sev":"{{choice success,success,success,error}}",'
                  '"title":"{{choice narcos,dark,ozark,mindhunter}}",'
                  '"country":"{{choice UK,US,BR,DE}}","n":{{int 0 99999}}}')


class Failure(Exception):
    """A step of a benchmark failed (not a missed target): the run ends with exit status 1."""


def fail(message):
    raise Failure(message)


def run(name, main):
    """Runs main() and exits with what it returns (None: 0), or with 1 after printing a
    Failure as "<name>: FAILED: <message>"."""
    try:
        status = main()
    except Failure as e:
        print(f"{name}: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    sys.exit(status)


def rdkafka_consumer(consumer, bootstrap, topic, group, messages, timeout):
    """Runs bench_rdkafka_consumer (librdkafka's high-level consumer, a fresh group) until it has
    read `messages`; returns (wall seconds, seconds from its first message to its last)."""
    start = time.monotonic()
    p = subprocess.run([consumer, bootstrap, topic, group, str(messages)],
                       capture_output=True, text=True, timeout=timeout)
    wall = time.monotonic() - start
    lines = p.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    if p.returncode != 0 or result.get("messages") != messages:
        fail(f"bench_rdkafka_consumer exited {p.returncode} after {result.get('messages')} "
             f"messages, expected {messages} (did the mock drop data? more partitions): "
             f"{p.stderr[-2000:]}")
    return wall, result["seconds"] - result["first_seconds"]


def raw_parse(raw_parse_path, events_path, events, passes=3):
    """bench_raw_parse's result on an NDJSON file (best of `passes`), checked to have read all
    `events` without an error."""
    p = subprocess.run([raw_parse_path, events_path, str(passes)], capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"bench_raw_parse exited {p.returncode}: {p.stderr}")
    result = json.loads(p.stdout.strip().splitlines()[-1])
    if result["events"] != events or result["errors"] != 0:
        fail(f"bench_raw_parse parsed {result['events']} events with {result['errors']} errors")
    return result


def build_path(*parts):
    """A path in the build tree ($INGESTD_BUILD_DIR, default build/ of this checkout)."""
    return os.path.join(BUILD_DIR, *parts)


def argument_parser(doc, workdir=None, workdir_help=None, ingestd=True):
    """An ArgumentParser described by the first line of doc, with --ingestd and --plugin-dir
    (when ingestd) and --workdir (default build/<workdir>) already added."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if ingestd:
        parser.add_argument("--ingestd", default=build_path("ingestd"))
        parser.add_argument("--plugin-dir", default=build_path("plugins"))
    if workdir:
        parser.add_argument("--workdir", default=build_path(workdir), help=workdir_help)
    return parser


def kafka_peer_path():
    """Where the build puts the Kafka test peer (tests/tools/kafka_mock)."""
    return build_path("tests", "tools", "kafka_mock", "ingestd-test-kafka")


def require_executables(tools, target):
    """Fails unless each of tools is an executable, naming the ninja target that builds them."""
    for tool in tools:
        if not os.access(tool, os.X_OK):
            fail(f"{tool} is not an executable (build it first: ninja {target})")


def tail(path, n=3000):
    """The last n bytes of a log file as text ("" when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode("utf-8", "replace")
    except OSError:
        return ""


def read_counters(stats_path):
    """The counters of an `ingestd run --stats-file` file: {"<component>.<counter>": N}."""
    with open(stats_path) as f:
        return json.load(f)["counters"]


def run_ingestd(ingestd, plugin_dir, config, stats, stderr_path, what="ingestd", extra_args=()):
    """Runs `ingestd run -c config` to its end, stdout discarded and stderr to stderr_path.

    Returns (wall seconds from start to exit, the daemon's peak RSS in KiB, its counters). The
    RSS is wait4's ru_maxrss of this one child: RUSAGE_CHILDREN would be the maximum over every
    child waited for so far (a generator run, a raw parser holding the whole file). Fails, as
    "<what> exited N", on a non-zero exit or an unreadable stats file."""
    cmd = [ingestd, "run", "-c", config, "--plugin-dir", plugin_dir, "--stats-file", stats]
    cmd += list(extra_args)
    with open(stderr_path, "wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if proc.returncode != 0:
        fail(f"{what} exited {proc.returncode}; stderr:\n{tail(stderr_path)}")
    try:
        counters = read_counters(stats)
    except (OSError, ValueError, KeyError) as e:
        fail(f"{what}: no usable stats file {stats}: {e}")
    return wall, usage.ru_maxrss, counters


class KafkaPeer:
    """The Kafka test peer (librdkafka's mock cluster, tests/tools/kafka_mock) as a child process.

    Started with the peer's own arguments (--brokers, --topic NAME:PARTITIONS); `bootstrap` is
    the bootstrap list it prints first. command() sends one line of its stdin protocol ("hwm
    TOPIC", "down all", "up all") and returns the answer line; the peer not answering is a
    Failure. Its stderr goes to workdir/peer.stderr. close() closes its stdin (the peer exits),
    kills it after 30 s, and may be called more than once."""

    def __init__(self, path, peer_args, workdir):
        self.stderr_path = os.path.join(workdir, "peer.stderr")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [path] + list(peer_args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=err, text=True, bufsize=1)
        self.bootstrap = self.proc.stdout.readline().strip()
        if not self.bootstrap:
            fail(f"the Kafka peer printed no bootstrap list: {tail(self.stderr_path)}")

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        answer = self.proc.stdout.readline().strip()
        if not answer:
            fail(f"the Kafka peer did not answer {line!r}: {tail(self.stderr_path)}")
        return answer

    def delivered(self, topic, strict=False):
        """The topic's high watermarks summed. An error answer gives None, or with strict a
        Failure."""
        answer = self.command(f"hwm {topic}")
        if answer.startswith("error"):
            if strict:
                fail(f"hwm {topic}: {answer!r} {tail(self.stderr_path)}")
            return None
        return sum(int(item.split(":")[1]) for item in answer.split())

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def verdict(ok):
    return "PASS" if ok else "MISS"


def percent(value, reference):
    """value as a whole percentage of reference ("-" when reference is 0)."""
    return f"{value / reference:.0%}" if reference else "-"


def ratio_line(label, ratio, of, target):
    """The line `<label>12.3% of <of>  (target >= 40%)  PASS` (MISS below the target)."""
    return f"{label}{ratio:.1%} of {of}  (target >= {target:.0%})  {verdict(ratio >= target)}"


def poll(check, timeout, what, interval=0.02):
    """Calls check() every interval seconds until it returns a true value, and returns that
    value; fails, as "timed out after N s waiting for <what>", when timeout seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class JsonLines:
    """Follows a JSON-lines file that another process appends to (a file sink's output).
    read() returns the objects of the complete lines added since the last call ([] while the
    file does not exist); a partial last line waits for its newline."""

    def __init__(self, path):
        self.path = path
        self.offset = 0

    def read(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        return [json.loads(line) for line in data[:end].splitlines()]


class Daemon:
    """`ingestd run -c config` as a child process that runs until stop(): stdout discarded,
    stderr to stderr_path, counters to stats (--stats-file). `started` is time.monotonic() just
    before the process was started."""

    def __init__(self, ingestd, plugin_dir, config, stats, stderr_path, what="ingestd"):
        self.stats, self.stderr_path, self.what = stats, stderr_path, what
        cmd = [ingestd, "run", "-c", config, "--plugin-dir", plugin_dir, "--stats-file", stats]
        with open(stderr_path, "wb") as err:
            self.started = time.monotonic()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)

    def check_running(self):
        """Fails when the daemon has exited (on its own, before stop())."""
        if self.proc.poll() is not None:
            fail(f"{self.what} exited {self.proc.returncode} before it was stopped; stderr:\n"
                 f"{tail(self.stderr_path)}")

    def stop(self, timeout=30):
        """SIGTERM, then waits up to timeout s for the exit (a kill after that is a failure).
        Returns the daemon's counters; fails on a non-zero exit or an unreadable stats file."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail(f"{self.what} did not exit within {timeout} s of SIGTERM; stderr:\n"
                     f"{tail(self.stderr_path)}")
        if self.proc.returncode != 0:
            fail(f"{self.what} exited {self.proc.returncode}; stderr:\n{tail(self.stderr_path)}")
        try:
            return read_counters(self.stats)
        except (OSError, ValueError, KeyError) as e:
            fail(f"{self.what}: no usable stats file {self.stats}: {e}")

    def kill(self):
        """Ends the daemon if it still runs (for a `finally` after a failed step)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_has(self, text):
        """True once the daemon's stderr holds text."""
        return text in tail(self.stderr_path, 1 << 20)


def window_pipeline(workdir, events_path, counts_path, parse_workers, output=None):
    """The config of the end-to-end pipeline benchmarks: file (read) -> json -> window (where
    sev: success; count by device, title, country; 1 s processing-time windows) -> file. With
    events_path None the source is a generator (seed 1, as fast as the pipeline takes events)
    and the parser's workers are left at their default; `output` is the window's `output`
    mapping, as YAML flow text."""
    if events_path is None:
        source = "in: { type: generator, seed: 1 }"
        parser = "ev: { type: json, inputs: [in] }"
    else:
        source = (f"in: {{ type: file, path: {json.dumps(events_path)}, mode: read, "
                  f"checkpoint: false }}")
        parser = f"ev: {{ type: json, inputs: [in], workers: {parse_workers} }}"
    output_line = f"\n    output: {output}" if output else ""
    return f"""
data_dir: {json.dumps(workdir)}
sources:
  {source}
parsers:
  {parser}
aggregates:
  sps:
    type: window
    inputs: [ev]
    where: {{ sev: success }}
    group_by: [device, title, country]
    window: {{ size: 1s, time: processing }}{output_line}
    metrics: {{ sps: count }}
sinks:
  out: {{ type: file, inputs: [sps], path: {json.dumps(counts_path)}, fsync: never }}
"""
