"""Builds tests/packaging/sample_plugin/ out of the source tree against an installed ingestd-dev
(a prefix holding include/ingestd and the CMake package), as a plugin author would."""

import glob
import os
import subprocess

SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample_plugin")
SO_NAME = "source_countdown.so"


def build(prefix, workdir):
    """Configures and builds the sample against `prefix`; returns the directory holding only the
    built plugin, ready for `ingestd plugins --plugin-dir`. Raises with cmake's output on
    failure."""
    build_dir = os.path.join(workdir, "sample-build")
    out_dir = os.path.join(workdir, "sample-plugins")
    os.makedirs(out_dir, mode=0o755, exist_ok=True)
    steps = [
        ["cmake", "-S", SAMPLE, "-B", build_dir, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
         f"-DCMAKE_PREFIX_PATH={prefix}", f"-DINGESTD_PLUGIN_BUILD_DIR={out_dir}"],
        ["cmake", "--build", build_dir],
    ]
    for cmd in steps:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    built = glob.glob(os.path.join(out_dir, "*.so"))
    if [os.path.basename(p) for p in built] != [SO_NAME]:
        raise AssertionError(f"expected only {SO_NAME} in {out_dir}, found {built}")
    return out_dir


def exported_symbols(so_path):
    """The dynamic symbols a shared library defines (nm -D --defined-only)."""
    r = subprocess.run(["nm", "-D", "--defined-only", so_path], capture_output=True, text=True,
                       check=True)
    return sorted(line.split()[-1] for line in r.stdout.splitlines() if line.strip())
