#!/usr/bin/env python3
"""HTTP source benchmark: wrk posting 10-line NDJSON bodies over keep-alive, against nginx and
against ingestd (http -> json -> file), same machine, same concurrency and duration, same run.

nginx (a private instance: its own prefix and config in the work directory, one worker, running
as the current user) answers 204 after reading each body; ingestd's http source (one io thread)
answers 202 once a request's 10 records are queued, and its pipeline parses them and writes them
to a file. Prints both rates and their ratio (target: ingestd >= 50 % of nginx), and checks that
every record was counted: the output file holds exactly 10 lines per 2xx answer wrk saw, and wrk
saw no other answer. Fails only on a wrong count or a step that breaks, not on a missed target.

Then ingestd-loadgen, the project's own client, against a fresh ingestd, same connections and
duration, posting the same records numbered (10 per NDJSON body): its records/s and latency
percentiles, and a check that the output holds exactly seqs 0..N-1 for the N records of the 2xx
answers. wrk against nginx stays the ratio of record: a comparison made with one tool on both
sides.
"""

import json
import os
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import common  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LINES_PER_BODY = 10
TARGET = 0.5


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def run_wrk(wrk, url, args, log_path):
    """Runs wrk with post.lua; returns its WRK_RESULT object."""
    # wrk runs a second longer than the script sends, so that every request is answered.
    cmd = [wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration + 1}s",
           "--timeout", "10s", "-s", os.path.join(HERE, "post.lua"), url, "--",
           str(args.duration)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60)
    with open(log_path, "w") as f:
        f.write(p.stdout + p.stderr)
    results = [line for line in p.stdout.splitlines() if line.startswith("WRK_RESULT ")]
    if p.returncode != 0 or not results:
        common.fail(f"wrk exited {p.returncode} without a result: {p.stdout[-1500:]}"
                    f"{p.stderr[-1500:]}")
    result = json.loads(results[-1][len("WRK_RESULT "):])
    result["statuses"] = {int(k): v for k, v in result["statuses"].items()}
    return result


def nginx_config(workdir, port):
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx.error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/client_body;
  proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi;
  uwsgi_temp_path {workdir}/uwsgi;
  scgi_temp_path {workdir}/scgi;
  keepalive_requests 1000000;
  client_body_buffer_size 64k;
  server {{
    listen 127.0.0.1:{port} reuseport;
    location / {{ return 204; }}
  }}
}}
"""


def ingestd_config(workdir, port, out):
    return f"""data_dir: {json.dumps(workdir)}
io_threads: 1
sources:
  web:
    type: http
    listen: 127.0.0.1:{port}
    routes:
      - {{path: /ingest, fields: {{stream: bench}}}}
    push_timeout: 5s
parsers:
  events:
    type: json
    inputs: [web]
sinks:
  out:
    type: file
    inputs: [events]
    path: {json.dumps(out)}
    encoding: raw
    fsync: never
"""


def bench_nginx(args, workdir):
    nginx_dir = os.path.join(workdir, "nginx")
    os.makedirs(nginx_dir, exist_ok=True)
    port = free_port()
    conf = os.path.join(nginx_dir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(nginx_config(nginx_dir, port))
    err = open(os.path.join(nginx_dir, "stderr"), "wb")
    proc = subprocess.Popen([args.nginx, "-p", nginx_dir, "-c", conf, "-e",
                             os.path.join(nginx_dir, "nginx.error.log")],
                            stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    try:
        common.poll(lambda: port_open(port) or proc.poll() is not None, 15, "nginx to listen")
        if proc.poll() is not None:
            common.fail(f"nginx exited {proc.returncode}: "
                        f"{common.tail(os.path.join(nginx_dir, 'stderr'))}"
                        f"{common.tail(os.path.join(nginx_dir, 'nginx.error.log'))}")
        return run_wrk(args.wrk, f"http://127.0.0.1:{port}/ingest", args,
                       os.path.join(workdir, "wrk-nginx.log"))
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err.close()


def run_loadgen(loadgen, url, args, log_path):
    """Runs ingestd-loadgen with the benchmark's records; returns its --json result."""
    cmd = [loadgen, "--url", url, "-c", str(args.connections), "-t", str(args.threads),
           "-d", str(args.duration), "-k", str(LINES_PER_BODY), "--format", "ndjson",
           "--template", os.path.join(HERE, "record.tmpl"), "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60)
    with open(log_path, "w") as f:
        f.write(p.stdout + p.stderr)
    if p.returncode != 0 or not p.stdout.strip():
        common.fail(f"ingestd-loadgen exited {p.returncode}: {p.stderr[-1500:]}")
    result = json.loads(p.stdout.strip().splitlines()[-1])
    result["statuses"] = {int(k): v for k, v in result["statuses"].items()}
    return result


def bench_ingestd(args, workdir, drive, name):
    """Runs ingestd (http -> json -> file) under drive(url, log_path); returns its result with
    the output file (`out`) and the daemon's counters."""
    port = free_port()
    out = os.path.join(workdir, f"records-{name}.jsonl")
    config = os.path.join(workdir, f"ingestd-{name}.yaml")
    with open(config, "w") as f:
        f.write(ingestd_config(workdir, port, out))
    daemon = common.Daemon(args.ingestd, args.plugin_dir, config,
                           os.path.join(workdir, f"ingestd-{name}.stats.json"),
                           os.path.join(workdir, f"ingestd-{name}.stderr"))
    try:
        common.poll(lambda: daemon.log_has("listening on") or daemon.proc.poll() is not None, 30,
                    "ingestd to listen")
        daemon.check_running()
        result = drive(f"http://127.0.0.1:{port}/ingest", os.path.join(workdir, f"{name}.log"))
        counters = daemon.stop()
    finally:
        daemon.kill()
    with open(out, "rb") as f:
        result["lines"] = f.read().count(b"\n")
    result["out"] = out
    result["counters"] = counters
    return result


def check_seqs(path, total):
    """Fails unless the file's records (raw, each starting {"seq":N,) are seqs 0..total-1, once
    each."""
    seen = bytearray(total)
    with open(path, "rb") as f:
        for line in f:
            seq = int(line[7:line.index(b",")])
            if not 0 <= seq < total or seen[seq]:
                common.fail(f"record seq {seq} is outside 0..{total - 1} or written twice")
            seen[seq] = 1
    if total and min(seen) == 0:
        common.fail(f"seq {seen.index(0)} is missing from the output")


def rate(result):
    return result["requests"] / result["seconds"] if result["seconds"] else 0.0


def main():
    parser = common.argument_parser(__doc__, workdir="bench-http-source")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    parser.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    parser.add_argument("--loadgen", default=common.build_path("ingestd-loadgen"))
    parser.add_argument("--duration", type=int, default=5, help="seconds of load per server")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    common.require_executables([args.ingestd, args.wrk, args.nginx, args.loadgen],
                               "bench_http_source")
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)

    ref = bench_nginx(args, args.workdir)
    ours = bench_ingestd(args, args.workdir,
                         lambda url, log: run_wrk(args.wrk, url, args, log), "wrk")
    own = bench_ingestd(args, args.workdir,
                        lambda url, log: run_loadgen(args.loadgen, url, args, log), "loadgen")

    ok_nginx = sum(n for s, n in ref["statuses"].items() if 200 <= s < 300)
    ok_ours = sum(n for s, n in ours["statuses"].items() if 200 <= s < 300)
    other = {s: n for s, n in ours["statuses"].items() if not 200 <= s < 300}
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, "
          f"{LINES_PER_BODY}-line NDJSON bodies of {len(body_sample())} bytes, keep-alive")
    print(f"nginx (1 worker, 204):          {rate(ref):10.0f} requests/s  ({ok_nginx} 2xx)")
    print(f"ingestd http -> json -> file:   {rate(ours):10.0f} requests/s  ({ok_ours} 2xx, "
          f"{ok_ours * LINES_PER_BODY / ours['seconds']:.0f} records/s)")
    ratio = rate(ours) / rate(ref) if rate(ref) else 0.0
    print(common.ratio_line("ingestd: ", ratio, "nginx", TARGET))
    print(f"records: {ours['lines']} written, {ok_ours * LINES_PER_BODY} expected "
          f"(10 x {ok_ours} 2xx answers); wrk errors: {ours['errors']}")
    if other:
        common.fail(f"ingestd answered {other} besides 2xx: every answer must be 2xx")
    if ours["lines"] != ok_ours * LINES_PER_BODY:
        common.fail(f"the output holds {ours['lines']} records, expected "
                    f"{ok_ours * LINES_PER_BODY}: records were lost or duplicated")
    if ours["counters"].get("web.records") != ours["lines"]:
        common.fail(f"web.records is {ours['counters'].get('web.records')}, the file holds "
                    f"{ours['lines']}")
    report_loadgen(args, own)
    return 0


def report_loadgen(args, own):
    """Prints ingestd-loadgen's figures and checks its records, seq by seq."""
    lat = own["latency_us"]
    other = {s: n for s, n in own["statuses"].items() if not 200 <= s < 300}
    print()
    print(f"ingestd-loadgen -t{args.threads} -c{args.connections} -d{args.duration}s, the same "
          f"records numbered, {LINES_PER_BODY} per NDJSON body, keep-alive")
    print(f"ingestd http -> json -> file:   {own['requests_per_s']:10.0f} requests/s  "
          f"({own['ok']} 2xx, {own['records_per_s']:.0f} records/s)")
    print(f"latency: p50 {lat['p50'] / 1e3:.2f} ms, p90 {lat['p90'] / 1e3:.2f} ms, "
          f"p99 {lat['p99'] / 1e3:.2f} ms, max {lat['max'] / 1e3:.2f} ms")
    print(f"records: {own['lines']} written, {own['records']} expected (seqs 0..N-1 once each); "
          f"loadgen errors: {own['errors']}")
    if other or sum(own["errors"].values()):
        common.fail(f"ingestd-loadgen saw {other} besides 2xx and errors {own['errors']}")
    if own["lines"] != own["records"]:
        common.fail(f"the output holds {own['lines']} records, ingestd-loadgen had "
                    f"{own['records']} answered 2xx: records were lost or duplicated")
    check_seqs(own["out"], own["records"])


def body_sample():
    lines = [f'{{"seq":{i},"device":"xbox_one","sev":"success","title":"narcos","country":"UK",'
             f'"time":1515445354624}}' for i in range(1, LINES_PER_BODY + 1)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    common.run("bench_http_source", main)
