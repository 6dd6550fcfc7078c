#!/usr/bin/env python3
"""How `ingestd validate` scales with the size of one mapping: generates a pipeline with N
components (N/2 generator sources, each feeding its own stdout sink) and prints the wall time
and peak memory of validating it. Usage: validate_scale.py [N ...] (default 16384 65536).
Environment: INGESTD_BIN, INGESTD_PLUGIN_DIR (default: build/ of this checkout)."""

import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("INGESTD_BIN", os.path.join(ROOT, "build", "ingestd"))
PLUGIN_DIR = os.environ.get("INGESTD_PLUGIN_DIR", os.path.join(ROOT, "build", "plugins"))


def pipeline(n):
    """YAML text of a valid pipeline with n components (n even)."""
    half = n // 2
    lines = ["sources:"]
    lines += [f"  s{i}: {{type: generator}}" for i in range(half)]
    lines.append("sinks:")
    lines += [f"  k{i}: {{type: stdout, inputs: [s{i}]}}" for i in range(half)]
    return "\n".join(lines) + "\n"


def measure(n, directory):
    """(seconds, peak RSS in MiB) of `ingestd validate` on n components; raises on failure."""
    path = os.path.join(directory, f"scale-{n}.yaml")
    with open(path, "w") as f:
        f.write(pipeline(n))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.monotonic()
    p = subprocess.run([BIN, "validate", path, "--plugin-dir", PLUGIN_DIR], capture_output=True,
                       text=True)
    took = time.monotonic() - start
    if p.returncode != 0:
        raise RuntimeError(f"validate failed ({p.returncode}): {p.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return took, max(peak, before) / 1024


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [16384, 65536]
    with tempfile.TemporaryDirectory() as d:
        for n in sizes:
            took, mib = measure(n, d)
            print(f"validate {n} components: {took:.2f} s, peak RSS {mib:.0f} MiB")


if __name__ == "__main__":
    main()
