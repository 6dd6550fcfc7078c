"""The admin HTTP API of the real daemon, with real peers: `promtool check metrics` on what it
serves, a real Prometheus server scraping it every second and queried back over its HTTP API,
/health against a sink whose breaker stays open, /api/v1/aggregates against the generator's known
count, and the bearer token.

Expected values come from the test itself (the generator's count) or from the daemon's own status
(its counters), never from /metrics alone.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import unittest
import urllib.error
import urllib.parse
import urllib.request

import harness
from harness import q

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
COUNT = 30_000
TEMPLATE = '{"device":"{{choice tv,phone,web}}","kind":"play","n":1}'


def http_get(url, headers=None, timeout=10):
    """(status, body as str, headers) of a GET; HTTP errors are answers, not exceptions."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


class AdminTest(harness.IntegrationTestCase):
    def pipeline(self, admin="", sinks=None):
        """generator (COUNT events) -> json -> 1 h window per device -> file, plus an endless
        idle generator into the same parser, so that the pipeline (and its open window) lives on
        after the count is reached; the window's `where` leaves the idle events out."""
        out = self.path("out.jsonl")
        return f"""
data_dir: {q(self.dir)}
{admin}
sources:
  gen:  {{ type: generator, count: {COUNT}, rate: 20000, template: {q(TEMPLATE)} }}
  idle: {{ type: generator, rate: 1, template: "{{}}" }}
parsers:
  events: {{ type: json, inputs: [gen, idle] }}
aggregates:
  win:
    type: window
    inputs: [events]
    where: {{ kind: play }}
    group_by: [device]
    window: {{ size: 1h, time: processing }}
    metrics: {{ n: count, total: sum(n) }}
sinks:
  out: {{ type: file, inputs: [win], path: {q(out)} }}
{sinks or ""}
"""

    def start(self, config, listen="127.0.0.1:0", name="ingestd"):
        d = self.start_daemon(config, name=name, extra_args=["--bus", "none", "--admin-listen",
                                                              listen])
        return d, f"http://{d.admin_address()}"

    def status(self, base, headers=None):
        code, body, _ = http_get(base + "/api/v1/status", headers)
        self.assertEqual(code, 200, body)
        return json.loads(body)

    def component(self, status, name):
        for c in status["components"]:
            if c["name"] == name:
                return c
        raise AssertionError(f"no component {name} in {status}")

    def wait_counted(self, base, name, key, value, timeout=60):
        harness.wait_until(
            lambda: self.component(self.status(base), name).get(key) == value, timeout,
            what=f"{name}.{key} == {value} in /api/v1/status")

    def test_promtool_passes_and_prometheus_scrapes_the_known_count(self):
        # The real peers or a failure: a skip would pass unseen (scripts/packages.txt has them).
        self.assertTrue(PROMTOOL and PROMETHEUS,
                        "prometheus and promtool are missing (Debian package: prometheus)")
        d, base = self.start(self.pipeline())
        self.wait_counted(base, "gen", "events_out", COUNT)

        code, text, headers = http_get(base + "/metrics")
        self.assertEqual(code, 200)
        self.assertEqual(headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
        check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                               text=True, timeout=60)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertIn(f'ingestd_component_events_out_total{{component="gen"}} {COUNT}\n', text)
        self.assertIn('ingestd_component_batch_duration_seconds_bucket{component="events",'
                      'le="+Inf"}', text)
        self.assertIn('ingestd_component_info{component="win",kind="aggregate",type="window"} 1',
                      text)
        self.assertIn('ingestd_queue_max_batches{component="events"}', text)
        self.assertIn("process_resident_memory_bytes ", text)

        code, om, headers = http_get(base + "/metrics", {
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"})
        self.assertEqual(code, 200)
        self.assertTrue(headers["Content-Type"].startswith("application/openmetrics-text"))
        self.assertTrue(om.endswith("# EOF\n"), om[-200:])
        self.assertIn("# TYPE ingestd_component_events_out counter\n", om)

        # A real Prometheus, scraping every second, asked over its own HTTP API.
        prom_port = harness.free_port()
        target = base[len("http://"):]
        prom_dir = self.path("prometheus")
        os.makedirs(prom_dir)
        config = self.write_file("prometheus.yml", f"""
global: {{ scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }}
scrape_configs:
  - job_name: ingestd
    static_configs: [{{ targets: [{q(target)}] }}]
""")
        with open(self.path("prometheus.log"), "wb") as log:
            prom = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={prom_dir}",
                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: (prom.kill(), prom.wait()))
        query = urllib.parse.quote('ingestd_component_events_out_total{component="gen"}')
        url = f"http://127.0.0.1:{prom_port}/api/v1/query?query={query}"

        def seen():
            if prom.poll() is not None:
                with open(self.path("prometheus.log")) as f:
                    raise AssertionError("prometheus exited: " + f.read()[-2000:])
            try:
                code, body, _ = http_get(url, timeout=5)
            except OSError:
                return None  # not listening yet
            if code != 200:
                return None
            result = json.loads(body)["data"]["result"]
            return result and float(result[0]["value"][1]) == COUNT

        harness.wait_until(seen, 60, what="Prometheus to hold gen's events_out == COUNT")
        # And it judged the target healthy.
        code, body, _ = http_get(f"http://127.0.0.1:{prom_port}/api/v1/query?query=up")
        self.assertEqual(json.loads(body)["data"]["result"][0]["value"][1], "1")

    def test_health_fails_once_a_sink_breaker_stays_open(self):
        dead = harness.free_port()
        config = self.pipeline(admin="admin: { unhealthy_after: 3s }", sinks=f"""
  dead:
    type: http
    inputs: [events]
    url: "http://127.0.0.1:{dead}/in"
    timeout: 500ms
    retry: {{ initial: 10ms, max: 50ms }}
    breaker: {{ failures: 1, open_for: 100ms }}
""")
        d, base = self.start(config)
        # 503 "starting" until the pipeline runs, then 200 until the breaker has been open 3 s.
        harness.wait_until(lambda: http_get(base + "/health")[:2] == (200, "ok: running\n"), 10,
                           what="/health 200")
        harness.wait_until(lambda: http_get(base + "/health")[0] == 503, 30,
                           what="/health to turn 503")
        code, body, _ = http_get(base + "/health")
        self.assertEqual(code, 503)
        self.assertRegex(body, r"^unhealthy: sink dead: circuit breaker (open|half_open) for "
                               r"\d+\.\ds \(unhealthy after 3\.0s\)\n$")
        sink = self.component(self.status(base), "dead")
        self.assertIn(sink["breaker"], ("open", "half_open"))
        self.assertGreater(sink["breaker_not_closed_seconds"], 3.0)
        _, text, _ = http_get(base + "/metrics")
        self.assertRegex(text, r'ingestd_sink_breaker_transitions_total\{sink="dead",to="open"\} '
                               r'[1-9]')

    def test_aggregates_return_the_open_windows(self):
        d, base = self.start(self.pipeline())
        self.wait_counted(base, "gen", "events_out", COUNT)

        def aggregated():
            code, body, _ = http_get(base + "/api/v1/aggregates/win")
            self.assertEqual(code, 200, body)
            rows = json.loads(body)
            return rows if sum(r["n"] for r in rows) == COUNT else None

        # Every event of the count reaches the open window (the idle ones are filtered out).
        rows = harness.wait_until(aggregated, 30, what="the open window to count COUNT events")
        self.assertEqual({r["state"] for r in rows}, {"open"})
        self.assertLessEqual({r["device"] for r in rows}, {"tv", "phone", "web"})
        self.assertEqual(sum(r["n"] for r in rows), COUNT)
        self.assertEqual(sum(r["total"] for r in rows), COUNT)

        code, body, _ = http_get(base + "/api/v1/aggregates/win?where=device=tv")
        self.assertEqual(code, 200, body)
        tv = json.loads(body)
        self.assertEqual({r["device"] for r in tv}, {"tv"})
        self.assertEqual(sum(r["n"] for r in tv),
                         sum(r["n"] for r in rows if r["device"] == "tv"))

        code, body, _ = http_get(base + "/api/v1/aggregates/win/total")
        self.assertEqual(code, 200, body)
        total = json.loads(body)
        self.assertEqual(len(total), 1, total)  # one open window
        self.assertEqual(total[0]["groups"], len(rows))
        self.assertEqual(total[0]["n"], COUNT)

        self.assertEqual(http_get(base + "/api/v1/aggregates/nope")[0], 404)
        self.assertEqual(http_get(base + "/api/v1/aggregates/events")[0], 404)  # a parser
        self.assertEqual(http_get(base + "/api/v1/aggregates/win?from=soon")[0], 400)
        self.assertEqual(http_get(base + "/nothing/here")[0], 404)
        req = urllib.request.Request(base + "/metrics", data=b"x", method="POST")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        self.assertEqual(e.exception.code, 405)

    def test_token_off_loopback_is_required_and_enforced(self):
        config = self.write_file("open.yaml", self.pipeline(admin="admin: { listen: 0.0.0.0:8686 }"))
        r = harness.run_cli(["validate", config, "--plugin-dir", harness.PLUGIN_DIR])
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertRegex(r.stderr, r"open\.yaml:3:18: admin: listen '0\.0\.0\.0:8686' is not a "
                                   r"loopback address: give token_file")

        token_file = self.write_file("token", "s3cret-token\n")
        config = self.pipeline(admin=f"admin: {{ token_file: {q(token_file)} }}")
        for listen in ("127.0.0.1:0", "0.0.0.0:0"):
            with self.subTest(listen=listen):
                d, base = self.start(config, listen=listen, name=f"ingestd-{listen[0]}")
                base = "http://127.0.0.1:" + base.rsplit(":", 1)[1]
                code, body, headers = http_get(base + "/api/v1/status")
                self.assertEqual(code, 401, body)
                self.assertEqual(headers["WWW-Authenticate"], 'Bearer realm="ingestd"')
                self.assertEqual(http_get(base + "/metrics",
                                          {"Authorization": "Bearer wrong"})[0], 401)
                good = {"Authorization": "Bearer s3cret-token"}
                # The admin API answers from "starting" on; the pipeline runs soon after.
                harness.wait_until(lambda: self.status(base, good)["state"] == "running", 30,
                                   what="the state to be running")
                self.assertEqual(http_get(base + "/health", good)[0], 200)
                d.stop()

    def test_a_port_in_use_is_a_start_error(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            d = self.start_daemon(self.pipeline(), extra_args=[
                "--bus", "none", "--admin-listen", f"127.0.0.1:{port}"])
            rc = d.wait(30)
        self.assertEqual(rc, 1)
        self.assertIn(f"admin: cannot listen on 127.0.0.1:{port}: Address already in use",
                      d.stderr())

    def test_the_server_survives_reloads_and_rebinds_when_admin_changes(self):
        token_a = self.write_file("a", "token-a")
        token_b = self.write_file("b", "token-b")
        d, base = self.start(self.pipeline(admin=f"admin: {{ token_file: {q(token_a)} }}"))
        a = {"Authorization": "Bearer token-a"}
        b = {"Authorization": "Bearer token-b"}
        harness.wait_until(lambda: http_get(base + "/health", a)[0] == 200, 10, what="/health 200")
        # A pipeline change: the server stays where it is.
        with open(d.config_path, "w") as f:
            f.write(self.pipeline(admin=f"admin: {{ token_file: {q(token_a)} }}",
                                  sinks=f"  more: {{ type: file, inputs: [win], "
                                        f"path: {q(self.path('more.jsonl'))} }}"))
        d.send(signal.SIGHUP)
        harness.wait_until(lambda: self.status(base, a)["last_reload"]["ok"], 30,
                           what="the pipeline reload")
        self.assertIn("more", [c["name"] for c in self.status(base, a)["components"]])
        # An admin change: it binds again, with the new token.
        with open(d.config_path, "w") as f:
            f.write(self.pipeline(admin=f"admin: {{ token_file: {q(token_b)} }}"))
        d.send(signal.SIGHUP)
        base2 = "http://" + d.admin_address(nth=2)
        self.assertEqual(http_get(base2 + "/health", a)[0], 401)
        self.assertEqual(http_get(base2 + "/health", b)[0], 200)
        self.assertEqual(self.status(base2, b)["admin"]["listen"], base2[len("http://"):])
        # A config that does not load: the reload fails and the pipeline runs on.
        with open(d.config_path, "w") as f:
            f.write("sources: [")
        d.send(signal.SIGHUP)
        harness.wait_until(lambda: self.status(base2, b)["last_reload"]["ok"] is False, 30,
                           what="the failed reload")
        # Two reloads went through and one failed; the process families are there.
        code, text, _ = http_get(base2 + "/metrics", b)
        self.assertEqual(code, 200)
        self.assertIn('ingestd_reloads_total{result="ok"} 2\n', text)
        self.assertIn('ingestd_reloads_total{result="failed"} 1\n', text)
        for family in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                       "process_threads", "process_open_fds", "ingestd_uptime_seconds"):
            self.assertRegex(text, rf"(?m)^{family} [0-9.e+]+$")


if __name__ == "__main__":
    unittest.main()
