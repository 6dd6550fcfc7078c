"""Shared helpers for the integration tests: run the real `ingestd` binary on a temporary data
directory and config, wait on conditions with a deadline, stop it with a signal, and collect its
exit code, stderr and final counters (--stats-file); and the peers the tests talk to (the HTTP
receiver, a private D-Bus, a NOTIFY_SOCKET listener).

Paths come from the environment that ctest sets (INGESTD_BIN, INGESTD_PLUGIN_DIR,
INGESTD_SOURCE_DIR, INGESTD_BUILD_DIR); run by hand, they default to the build/ tree of this checkout.
Set INGESTD_KEEP_TMP=1 to keep each test's temporary directory for inspection.

Synchronisation is always a condition polled every POLL_INTERVAL seconds until a deadline, never a
fixed sleep. Every daemon a test starts is killed in tearDown, whatever happened.
"""

import datetime
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

SOURCE_DIR = os.environ.get(
    "INGESTD_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.environ.get("INGESTD_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
BIN = os.environ.get("INGESTD_BIN", os.path.join(BUILD_DIR, "ingestd"))
PLUGIN_DIR = os.environ.get("INGESTD_PLUGIN_DIR", os.path.join(BUILD_DIR, "plugins"))
# Tests run many daemons at once: none of them binds the default admin port (8686). Every
# process started from here inherits this; a test that wants the admin API passes
# --admin-listen 127.0.0.1:0 (any free port) and reads Daemon.admin_address().
os.environ.setdefault("INGESTD_ADMIN_LISTEN", "off")

EX_CONFIG = 78
POLL_INTERVAL = 0.03

# The plugins the integration tests use, as built: <kind>_<type>.so in the plugin directory
# (sink_kafka.so ships apart, in ingestd-plugin-kafka, but is built and documented with the rest).
CORE_PLUGIN_FILES = [
    "source_file.so", "source_generator.so", "parse_json.so", "aggregate_window.so",
    "sink_file.so", "sink_stdout.so", "sink_http.so", "sink_kafka.so", "source_kafka.so",
    "source_procfs.so", "source_prometheus_scrape.so", "parse_prometheus.so",
    "source_http.so", "source_sse.so",
]


# A `sources:` entry (indent it) that outlives the test: with it the run is not a batch job. A
# batch job whose only sink's breaker is open when its input ends leaves the spool for its next
# run and exits, so a test that waits for a replay after an outage needs the run to go on.
KEEP_RUNNING_SOURCE = "idle: { type: generator, rate: 0.001, count: 2 }"


class Timeout(AssertionError):
    pass


def wait_until(condition, timeout, what="condition", interval=POLL_INTERVAL, explain=None):
    """Polls condition() until it returns a truthy value (returned) or the deadline passes; then
    the Timeout's message ends with explain(), when given (the state that tells why)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f"\n{explain()}" if explain else ""
            raise Timeout(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(interval)


def count_lines(path):
    """Complete lines in a file (0 when it does not exist yet)."""
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def read_lines(path, writer_running=False):
    """The file's complete lines as str, without newlines. A trailing partial line is an error,
    unless writer_running says a live writer may be in the middle of it (then it is left out)."""
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n") and not writer_running:
        raise AssertionError(f"{path} ends with an unterminated line: {data[-80:]!r}")
    return [line.decode("utf-8") for line in data.split(b"\n")[:-1]] if data else []


def read_jsonl(path, ordered_keys=False):
    """Parses every line of a JSON-lines file. With ordered_keys each record is a list of
    (key, value) pairs in the order written."""
    hook = (lambda pairs: pairs) if ordered_keys else None
    return [json.loads(line, object_pairs_hook=hook) for line in read_lines(path)]


def rfc3339_ms(ms):
    """Epoch milliseconds -> "2018-01-08T21:02:34.000Z" (UTC, milliseconds)."""
    dt = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def parse_rfc3339(text):
    """Seconds since the epoch of "2018-01-08T21:02:34.000Z" (UTC, milliseconds)."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def q(text):
    """A YAML double-quoted scalar (JSON strings are valid YAML double-quoted scalars)."""
    return json.dumps(str(text))


def run_cli(args, timeout=60, cwd=None, env=None, binary=None):
    """Runs `ingestd ARGS...` to completion; returns the CompletedProcess (text mode)."""
    return subprocess.run([binary or BIN] + list(args), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def private_install(parent):
    """A copy of the daemon with exactly the core plugins beside it, as (binary, plugin_dir).

    The daemon always also scans the `plugins` folder next to its executable (and the install
    directory), so a test that depends on which types exist (lists of known types, an empty
    catalog) runs a copy whose neighbourhood it controls. Copies, not links: the loader refuses
    files it does not trust."""
    bindir = os.path.join(parent, "install")
    plugin_dir = os.path.join(bindir, "plugins")
    os.makedirs(plugin_dir, mode=0o755)
    binary = os.path.join(bindir, "ingestd")
    shutil.copyfile(BIN, binary)
    os.chmod(binary, 0o755)
    for name in CORE_PLUGIN_FILES:
        dst = os.path.join(plugin_dir, name)
        shutil.copyfile(os.path.join(PLUGIN_DIR, name), dst)
        os.chmod(dst, 0o755)
    return binary, plugin_dir


class Daemon:
    """One `ingestd run` process with its config, stderr file and stats file."""

    def __init__(self, workdir, config_path, name="ingestd", plugin_dir=None, extra_args=(),
                 env=None, stats=True, stdout_path=None, binary=None, stdout_pipe=False):
        self.workdir = workdir
        self.stdout_pipe = stdout_pipe  # start(): stdout is a pipe, read from self.proc.stdout
        self.config_path = config_path
        self.stderr_path = os.path.join(workdir, f"{name}.stderr")
        self.stdout_path = stdout_path or os.path.join(workdir, f"{name}.stdout")
        self.stats_path = os.path.join(workdir, f"{name}.stats.json") if stats else None
        self.args = [binary or BIN, "run", "-c", config_path,
                     "--plugin-dir", plugin_dir or PLUGIN_DIR]
        if self.stats_path:
            self.args += ["--stats-file", self.stats_path]
        # Many daemons run at once: none binds the default admin port 8686 unless a test says
        # so (--admin-listen 127.0.0.1:0 for any free port; see admin_address()).
        if "--admin-listen" not in extra_args:
            self.args += ["--admin-listen", "off"]
        self.args += list(extra_args)
        self.env = env
        self.proc = None
        self.returncode = None
        self.started_at = None
        self.exited_at = None

    def start(self):
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE if self.stdout_pipe else out,
                                         stderr=err, env=self.env, cwd=self.workdir)
        self.started_at = time.monotonic()
        return self

    def running(self):
        return self.proc is not None and self.poll() is None

    def poll(self):
        if self.returncode is None and self.proc is not None:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                self.exited_at = time.monotonic()
        return self.returncode

    def send(self, sig):
        if self.running():
            self.proc.send_signal(sig)

    def wait(self, timeout):
        """Waits for exit; returns the exit code. Raises Timeout (the daemon keeps running)."""
        wait_until(lambda: self.poll() is not None, timeout,
                   what=f"ingestd to exit (stderr tail: {self.stderr_tail()!r})")
        return self.returncode

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Sends sig and waits for exit; returns (exit code, seconds from signal to exit)."""
        sent = time.monotonic()
        self.send(sig)
        rc = self.wait(timeout)
        return rc, self.exited_at - sent

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.wait()
            self.poll()

    def rss_kib(self):
        """The process's resident set size (VmRSS) in KiB, None once it has exited."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
        return None

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stderr_tail(self, n=2000):
        return self.stderr()[-n:]

    def admin_address(self, timeout=30, nth=1):
        """The admin server's "host:port" from the nth line the daemon logs when it listens (a
        reload that changes admin: binds again and logs another)."""
        found = []

        def listening():
            lines = re.findall(r"admin API listening on http://(\S+)", self.stderr())
            if len(lines) >= nth:
                found.append(lines[nth - 1])
            elif self.poll() is not None:
                raise AssertionError(f"ingestd exited: {self.stderr_tail()}")
            return bool(found)

        wait_until(listening, timeout, what="the admin API to listen")
        return found[0]

    def stats(self):
        """The counters written at exit: {"<component>.<counter>": N}."""
        if not self.stats_path or not os.path.exists(self.stats_path):
            raise AssertionError(
                f"no stats file at {self.stats_path}; stderr: {self.stderr_tail()}")
        with open(self.stats_path) as f:
            doc = json.load(f)
        if not isinstance(doc, dict) or not isinstance(doc.get("counters"), dict):
            raise AssertionError(f"stats file lacks a 'counters' object: {doc!r}"[:2000])
        return doc["counters"]


class Counters:
    """Read access to a stats dict that fails with the whole dict when a counter is missing."""

    def __init__(self, counters):
        self.counters = counters

    def __getitem__(self, name):
        if name not in self.counters:
            raise AssertionError(f"counter {name!r} missing; have: {sorted(self.counters)}")
        return self.counters[name]

    def get(self, name, default=0):
        return self.counters.get(name, default)


class GetServer:
    """An HTTP server on 127.0.0.1 (a free port) in a thread of its own, a peer for the sources
    that fetch: every GET is answered with what answer(path, headers) returns, (status, body as
    str, content type). `base` is http://127.0.0.1:<port>."""

    def __init__(self, answer):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                status, body, content_type = answer(self.path, self.headers)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class IntegrationTestCase(unittest.TestCase):
    """Gives each test a temporary directory and kills every daemon it started in tearDown."""

    @classmethod
    def setUpClass(cls):
        if not os.access(BIN, os.X_OK):
            raise AssertionError(f"ingestd binary not found at {BIN} (set INGESTD_BIN)")

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix=f"ingestd-it-{self._testMethodName}-")
        os.chmod(self.dir, 0o755)
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.kill()
        if os.environ.get("INGESTD_KEEP_TMP"):
            print(f"\nkept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write_file(self, name, text):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def start_daemon(self, config_text, name="ingestd", **kwargs):
        config_path = self.write_file(f"{name}.yaml", config_text)
        d = Daemon(self.dir, config_path, name=name, **kwargs)
        self.daemons.append(d)
        return d.start()

    def run_daemon(self, config_text, timeout=120, name="ingestd", **kwargs):
        """Runs a batch pipeline to its end; asserts exit 0; returns the Daemon."""
        d = self.start_daemon(config_text, name=name, **kwargs)
        try:
            rc = d.wait(timeout)
        except Timeout:
            d.kill()
            self.fail(f"{name} did not finish within {timeout}s; stderr:\n{d.stderr_tail()}")
        self.assertEqual(rc, 0, f"{name} exited {rc}; stderr:\n{d.stderr_tail()}")
        return d

    def assert_no_loss(self, c, edges):
        """For each (upstream, downstream) edge: what upstream passed on reached downstream, and
        downstream either passed each event on or counted it as dropped."""
        for up, down in edges:
            self.assertEqual(c[f"{up}.events_out"], c[f"{down}.events_in"], f"edge {up} -> {down}")
            self.assertEqual(c.get(f"{down}.queue_dropped"), 0, f"{down}.queue_dropped")
            self.assertEqual(c.get(f"{down}.shutdown_dropped"), 0, f"{down}.shutdown_dropped")


# --- The http sink's peer: tests/tools/http_receiver/http_receiver.py -----------------------

HTTP_RECEIVER = os.path.join(SOURCE_DIR, "tests", "tools", "http_receiver", "http_receiver.py")


class HttpReceiver:
    """The test HTTP receiver as a child process; `url` is where to POST data.

    It records the events of every request it answered 2xx in `record_path` (seqs() reads their
    "seq" fields back) and answers in the mode that control() sets (ok, 503, 429, 400, hang; see
    http_receiver.py). Its stderr is appended to `stderr_path`. With `port` it listens on that
    port, so that a receiver stopped by the test can be brought back at the same address; the new
    one appends to the same record file. Starting raises AssertionError when the process prints no
    port (or another one than asked for); stop() closes its stdin, kills it after 10 s, and may be
    called more than once."""

    def __init__(self, workdir, port=None):
        self.record_path = os.path.join(workdir, "received.jsonl")
        self.stderr_path = os.path.join(workdir, "receiver.stderr")
        args = [sys.executable, HTTP_RECEIVER, self.record_path]
        if port is not None:
            args += ["--port", str(port)]
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err)
        line = self.proc.stdout.readline().decode().strip()  # the port, its first output
        if not line.isdigit() or (port is not None and line != str(port)):
            self.stop()
            raise AssertionError(f"the receiver printed {line!r}, not a port"
                                 f"{'' if port is None else f' ({port})'}: {self.stderr()}")
        self.port = int(line)
        self.base = f"http://127.0.0.1:{line}"
        self.url = self.base + "/ingest"

    def stderr(self):
        with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def control(self, mode, **options):
        body = json.dumps(dict(options, mode=mode)).encode()
        with urllib.request.urlopen(self.base + "/_control", data=body, timeout=10) as r:
            assert r.status == 200, r.read()

    def stats(self):
        with urllib.request.urlopen(self.base + "/_stats", timeout=10) as r:
            return json.load(r)

    def seqs(self):
        """The seqs recorded so far; while the receiver runs, a request it is still writing
        is left out."""
        if not os.path.exists(self.record_path):
            return []
        running = self.proc.poll() is None
        return [json.loads(line)["seq"]
                for line in read_lines(self.record_path, writer_running=running)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()  # the receiver exits when its stdin closes
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


# --- Control-plane peers: a private D-Bus and a NOTIFY_SOCKET listener ------------------------

POLICY_FILE = os.path.join(SOURCE_DIR, "systemd", "org.ingestd.Daemon1.conf")
INGESTCTL = os.environ.get("INGESTCTL_BIN", os.path.join(BUILD_DIR, "ingestctl"))
DBUS_NAME = "org.ingestd.Daemon1"
DBUS_PATH = "/org/ingestd/Daemon1"
EX_UNAVAILABLE = 69

# A system bus's default policy (as Debian's /usr/share/dbus-1/system.conf has it: method calls
# and names denied unless a policy file allows them), listening on a private socket, with the
# project's real policy file included.
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <include>{policy}</include>
</busconfig>
"""


class PrivateBus:
    """A `dbus-daemon` of the test's own with the real policy file; `address` is its address."""

    def __init__(self, workdir):
        # A socket path has at most 107 bytes: the bus lives in a short directory of its own.
        self.dir = tempfile.mkdtemp(prefix="ingestd-bus-")
        os.chmod(self.dir, 0o755)
        self.config_path = os.path.join(self.dir, "bus.conf")
        socket_path = os.path.join(self.dir, "socket")
        with open(self.config_path, "w") as f:
            f.write(BUS_CONFIG.format(socket=socket_path, policy=POLICY_FILE))
        self.address = None
        self.log_path = os.path.join(workdir, "dbus-daemon.log")
        self.proc = None

    def start(self, timeout=10):
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["dbus-daemon", f"--config-file={self.config_path}", "--print-address", "--nofork"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
        log.close()
        line = self.proc.stdout.readline().decode().strip()  # the first thing it prints
        if not line:
            raise AssertionError(f"dbus-daemon printed no address: {self.log()}")
        self.address = line
        return self

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def busctl(self, *args, user=None, timeout=30):
        """`busctl --address=... ARGS` (as `user` when given); the CompletedProcess."""
        cmd = ["busctl", f"--address={self.address}"] + list(args)
        return run_as(cmd, user, timeout)

    def name_has_owner(self):
        r = self.busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                        "org.freedesktop.DBus", "NameHasOwner", "s", DBUS_NAME)
        return r.returncode == 0 and r.stdout.strip() == "b true"


def run_as(cmd, user=None, timeout=30):
    """Runs cmd to completion (as `user` via setpriv when given); the CompletedProcess (text)."""
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user_group(user)}", "--clear-groups",
               "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def user_group(user):
    import pwd
    return pwd.getpwnam(user).pw_gid


def ingestctl(*args, address=None, user=None, timeout=60, binary=None):
    """`ingestctl --bus ADDRESS ARGS`; the CompletedProcess (text)."""
    cmd = [binary or INGESTCTL] + (["--bus", address] if address else []) + list(args)
    return run_as(cmd, user, timeout)


class NotifyListener:
    """An AF_UNIX datagram socket that plays the service manager's side of sd_notify: every
    datagram is kept with its arrival time (time.monotonic()) as (time, {KEY: value})."""

    def __init__(self, workdir):
        import socket
        import threading
        self.path = os.path.join(workdir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped.is_set():
            try:
                data = self.sock.recv(65536)
            except OSError:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            with self.lock:
                self.messages.append((time.monotonic(), fields))

    def snapshot(self):
        with self.lock:
            return list(self.messages)

    def wait_for(self, key, value=None, timeout=20, after=0):
        """Waits for the first message (index >= after) holding key (= value); returns its index."""
        def find():
            for i, (_, fields) in enumerate(self.snapshot()):
                if i >= after and key in fields and (value is None or fields[key] == value):
                    return i + 1
            return None
        return wait_until(find, timeout, what=f"{key}={value} on NOTIFY_SOCKET") - 1

    def close(self):
        self.stopped.set()
        self.thread.join(5)
        self.sock.close()
