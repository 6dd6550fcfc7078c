"""Job 4, host and process sensors: source/procfs -> file, on the fixture tree in
tests/fixtures/procfs and on the live /proc (a child process of the test, selected by pid file and
by pattern). The expected values are read from the fixture files and from /proc here, in Python.
"""

import collections
import os
import re
import signal
import subprocess
import sys
import unittest
import uuid

import harness
from harness import Counters, q

FIXTURE = os.path.join(harness.SOURCE_DIR, "tests", "fixtures", "procfs")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def key_values(path):
    """A "Key: value ..." file as {key: first number}."""
    out = {}
    with open(path) as f:
        for line in f:
            key, _, rest = line.partition(":")
            words = rest.split()
            if words and re.fullmatch(r"-?\d+", words[0]):
                out[key] = int(words[0])
    return out


def proc_stat(path):
    """/proc/stat as {first word: [numbers]}."""
    out = {}
    with open(path) as f:
        for line in f:
            words = line.split()
            out[words[0]] = [int(w) for w in words[1:]]
    return out


def net_table(path):
    """/proc/net/snmp or netstat as {(section, name): value}."""
    out = {}
    with open(path) as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[0::2], lines[1::2]):
        section = names.split(":")[0]
        for n, v in zip(names.split()[1:], values.split()[1:]):
            out[(section, n)] = int(v)
    return out


def pid_stat_fields(path):
    """The fields of /proc/<pid>/stat after the name, numbered as in proc(5) (3 = state)."""
    with open(path) as f:
        text = f.read()
    rest = text[text.rindex(")") + 2:].split()
    return {i + 3: w for i, w in enumerate(rest)}


def expected_fixture_host():
    stat = proc_stat(os.path.join(FIXTURE, "stat"))
    mem = key_values(os.path.join(FIXTURE, "meminfo"))
    net = net_table(os.path.join(FIXTURE, "net", "snmp"))
    net.update(net_table(os.path.join(FIXTURE, "net", "netstat")))
    cpu = stat["cpu"]
    expected = {
        "kind": "host", "host": "fixture-host", "boot_time": stat["btime"][0] * 1000,
        "cpus": sum(1 for k in stat if re.fullmatch(r"cpu\d+", k)),
        "cpu_user_seconds": cpu[0] / CLK_TCK, "cpu_idle_seconds": cpu[3] / CLK_TCK,
        "cpu_steal_seconds": cpu[7] / CLK_TCK, "context_switches": stat["ctxt"][0],
        "interrupts": stat["intr"][0], "forks": stat["processes"][0],
        "mem_total_bytes": mem["MemTotal"] * 1024, "mem_available_bytes": mem["MemAvailable"] * 1024,
        "swap_free_bytes": mem["SwapFree"] * 1024, "mem_shared_bytes": mem["Shmem"] * 1024,
        "tcp_established": net[("Tcp", "CurrEstab")], "tcp_out_resets": net[("Tcp", "OutRsts")],
        "udp_in_datagrams": net[("Udp", "InDatagrams")],
        "tcp_listen_overflows": net[("TcpExt", "ListenOverflows")],
        "ip_out_bytes": net[("IpExt", "OutOctets")],
    }
    with open(os.path.join(FIXTURE, "loadavg")) as f:
        expected["load1"], expected["load5"], expected["load15"] = map(float, f.read().split()[:3])
    for resource in ("cpu", "memory", "io"):
        with open(os.path.join(FIXTURE, "pressure", resource)) as f:
            for line in f:
                kind, *pairs = line.split()
                for name, value in (p.split("=") for p in pairs):
                    key = f"pressure_{resource}_{kind}_{name}"
                    if name == "total":
                        expected[key + "_seconds"] = int(value) / 1e6
                    else:
                        expected[key] = float(value)
    return expected


def by_time(events):
    groups = collections.defaultdict(list)
    for e in events:
        groups[e["time"]].append(e)
    return [groups[t] for t in sorted(groups)]


def subset(event, expected):
    return {k: event.get(k) for k in expected}


class ProcfsFixtureTest(harness.IntegrationTestCase):
    def test_fixture_tree_to_file(self):
        pid_file = self.write_file("job.pid", "4242\n")
        out = self.path("procfs.jsonl")
        d = self.start_daemon(f"""
data_dir: {q(self.dir)}
sources:
  procs:
    type: procfs
    root: {q(FIXTURE)}
    interval: 100ms
    pattern: "^(systemd|nginx|broken)$"
    pid_file: {q(pid_file)}
sinks:
  out: {{ type: file, inputs: [procs], path: {q(out)} }}
""")
        # Each sample: the host, 1, 777 and 4242 (999 "broken" has a cut stat line).
        harness.wait_until(lambda: harness.count_lines(out) >= 12, 30, what="three samples")
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        events = harness.read_jsonl(out)
        samples = by_time(events)
        self.assertGreaterEqual(len(samples), 3)
        host = expected_fixture_host()
        for sample in samples:
            kinds = collections.Counter(e["kind"] for e in sample)
            self.assertEqual(kinds, {"host": 1, "process": 3}, sample)
            for e in sample:
                if e["kind"] == "host":
                    self.assertEqual(subset(e, host), host)
            procs = {e["pid"]: e for e in sample if e["kind"] == "process"}
            self.assertEqual(sorted(procs), [1, 777, 4242])
            job = procs[4242]
            st = pid_stat_fields(os.path.join(FIXTURE, "4242", "stat"))
            status = key_values(os.path.join(FIXTURE, "4242", "status"))
            io = key_values(os.path.join(FIXTURE, "4242", "io"))
            with open(os.path.join(FIXTURE, "4242", "cmdline")) as f:
                cmdline = " ".join(f.read().rstrip("\0").split("\0"))
            self.assertEqual(subset(job, ["name", "cmdline", "state", "ppid"]), {
                "name": "my (odd) job)", "cmdline": cmdline, "state": st[3], "ppid": int(st[4])})
            self.assertEqual(job["cpu_user_seconds"], int(st[14]) / CLK_TCK)
            self.assertEqual(job["cpu_system_seconds"], int(st[15]) / CLK_TCK)
            self.assertEqual(job["start_time"], host["boot_time"] + int(st[22]) * 1000 // CLK_TCK)
            self.assertEqual(job["rss_bytes"], status["VmRSS"] * 1024)
            self.assertEqual(job["threads"], status["Threads"])
            self.assertEqual(job["fds"], len(os.listdir(os.path.join(FIXTURE, "4242", "fd"))))
            self.assertEqual(job["io_read_bytes"], io["read_bytes"])
            self.assertEqual(job["io_write_chars"], io["wchar"])
            self.assertNotIn("io_read_bytes", procs[777])

        c = Counters(d.stats())
        self.assertEqual(c["procs.events"], len(events))
        self.assertEqual(c["out.events_in"], len(events))
        self.assertEqual(c["procs.malformed"], len(samples))
        self.assertEqual(c["procs.vanished"] + c["procs.unreadable"] + c["procs.missing"], 0)
        # Logged once, however many samples saw it.
        self.assertEqual(d.stderr().count("cannot parse"), 1, d.stderr_tail())

    def test_a_long_interval_stops_promptly(self):
        out = self.path("host.jsonl")
        d = self.start_daemon(f"""
data_dir: {q(self.dir)}
sources:
  procs: {{ type: procfs, root: {q(FIXTURE)}, interval: 1h }}
sinks:
  out: {{ type: file, inputs: [procs], path: {q(out)} }}
""")
        harness.wait_until(lambda: harness.count_lines(out) >= 1, 30, what="the first sample")
        rc, took = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        self.assertLess(took, 5, "the source must not wait out its interval at stop")
        self.assertEqual(harness.count_lines(out), 1)

    def test_nothing_to_sample_and_bad_patterns_are_config_errors(self):
        text = """sources:
  procs:
    type: procfs
    host: false
  bad:
    type: procfs
    pattern: "ngin(x"
sinks:
  out: { type: stdout, inputs: [procs, bad] }
"""
        path = self.write_file("bad.yaml", text)
        r = harness.run_cli(["validate", path, "--plugin-dir", harness.PLUGIN_DIR])
        self.assertEqual(r.returncode, harness.EX_CONFIG, r.stderr)
        self.assertRegex(r.stderr, rf"{re.escape(path)}:4:\d+: sources\.procs \(procfs\): host: "
                                   r"nothing to sample")
        self.assertRegex(r.stderr, rf"{re.escape(path)}:7:\d+: sources\.bad \(procfs\): pattern: "
                                   r"is not a valid regular expression")


CHILD = """
import sys, threading, time
files = [open("/dev/null") for _ in range(4)]
for _ in range(3):
    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


class ProcfsLiveTest(harness.IntegrationTestCase):
    def setUp(self):
        super().setUp()
        self.marker = f"ingestd-procfs-{uuid.uuid4().hex}"
        # The marker is an argument: it is in the command line, not in the name (python3).
        self.child = subprocess.Popen([sys.executable, "-c", CHILD, self.marker],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.assertEqual(self.child.stdout.readline(), b"ready\n")

    def tearDown(self):
        if self.child.poll() is None:
            self.child.kill()
        self.child.wait()
        self.child.stdout.close()
        self.child.stdin.close()
        super().tearDown()

    def test_child_by_pid_file_and_by_pattern(self):
        pid = self.child.pid
        pid_file = self.write_file("child.pid", f"{pid}\n")
        outs = {name: self.path(f"{name}.jsonl") for name in ("by_file", "by_pattern", "host")}
        d = self.start_daemon(f"""
data_dir: {q(self.dir)}
sources:
  by_file: {{ type: procfs, host: false, pid_file: {q(pid_file)}, interval: 200ms }}
  by_pattern:
    type: procfs
    host: false
    pattern: {q(self.marker + "$")}
    match_on: cmdline
    interval: 200ms
  host: {{ type: procfs, interval: 200ms }}
sinks:
  by_file_out: {{ type: file, inputs: [by_file], path: {q(outs["by_file"])} }}
  by_pattern_out: {{ type: file, inputs: [by_pattern], path: {q(outs["by_pattern"])} }}
  host_out: {{ type: file, inputs: [host], path: {q(outs["host"])} }}
""")
        harness.wait_until(lambda: all(harness.count_lines(p) >= 3 for p in outs.values()), 30,
                           what="three samples of each source")

        # Read here, independently, while the child sleeps.
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        status = key_values(f"/proc/{pid}/status")
        st = pid_stat_fields(f"/proc/{pid}/stat")
        stat = proc_stat("/proc/stat")
        boot_ms = stat["btime"][0] * 1000
        for name in ("by_file", "by_pattern"):
            events = harness.read_jsonl(outs[name])
            self.assertGreaterEqual(len(events), 3)
            last_cpu = 0
            for e in events:
                self.assertEqual(e["kind"], "process")
                self.assertEqual(e["pid"], pid, f"{name} sampled another process: {e}")
                self.assertEqual(e["ppid"], os.getpid())
                self.assertEqual(e["name"], os.path.basename(sys.executable)[:15])
                self.assertTrue(e["cmdline"].endswith(" " + self.marker), e["cmdline"])
                self.assertEqual(e["uid"], os.getuid())
                self.assertEqual(e["threads"], 4)
                self.assertEqual(e["fds"], fds)
                self.assertEqual(e["start_time"], boot_ms + int(st[22]) * 1000 // CLK_TCK)
                self.assertGreater(e["rss_bytes"], 0)
                self.assertLess(abs(e["rss_bytes"] - status["VmRSS"] * 1024),
                                status["VmRSS"] * 1024 // 5)
                self.assertIn("io_read_chars", e)  # our own child: readable
                cpu = e["cpu_user_seconds"] + e["cpu_system_seconds"]
                self.assertGreaterEqual(cpu, last_cpu)
                last_cpu = cpu

        hosts = harness.read_jsonl(outs["host"])
        mem = key_values("/proc/meminfo")
        for h in hosts:
            self.assertEqual(h["kind"], "host")
            self.assertEqual(h["boot_time"], boot_ms)
            self.assertEqual(h["mem_total_bytes"], mem["MemTotal"] * 1024)
            self.assertEqual(h["cpus"], sum(1 for k in stat if re.fullmatch(r"cpu\d+", k)))
            self.assertGreater(h["cpu_idle_seconds"] + h["cpu_user_seconds"], 0)
            self.assertIn("load1", h)
        if os.path.exists("/proc/pressure/cpu"):
            self.assertIn("pressure_cpu_some_avg10", hosts[-1])

        # The child exits: no more samples of it; the pid file names a pid that does not run.
        self.child.stdin.close()
        self.child.wait(10)
        seen = {name: harness.count_lines(outs[name]) for name in ("by_file", "by_pattern")}
        host_lines = harness.count_lines(outs["host"])
        harness.wait_until(lambda: harness.count_lines(outs["host"]) >= host_lines + 4, 30,
                           what="four more host samples")
        rc, _ = d.stop()
        self.assertEqual(rc, 0, d.stderr_tail())
        for name, lines in seen.items():
            # At most a sample that was being taken when the child exited.
            self.assertLessEqual(harness.count_lines(outs[name]), lines + 1, name)
        c = Counters(d.stats())
        self.assertGreaterEqual(c["by_file.missing"], 2)
        self.assertEqual(c["by_pattern.missing"], 0)
        self.assertEqual(c["by_file.unreadable"] + c["by_pattern.unreadable"], 0)
        self.assertEqual(d.stderr().count(f"of pid file {pid_file} is not running"), 1,
                         d.stderr_tail())
        for name in ("by_file", "by_pattern", "host"):
            self.assertEqual(c[f"{name}.events"], harness.count_lines(outs[name]), name)


if __name__ == "__main__":
    unittest.main()
