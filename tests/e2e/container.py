"""A real systemd, booted in a container, for the end-to-end tests.

This machine's PID 1 is not systemd and there is no container engine, so:
  * rootfs(): a minimal Debian bookworm tree made by debootstrap once and cached under
    /var/cache/ingestd-e2e, one tree per list of included packages (systemd, dbus, procps and
    whatever the packages under test depend on). It is built in a temporary directory and renamed
    into place, so a killed run never leaves a half tree behind; downloaded .debs are kept in
    /var/cache/ingestd-e2e/debs for the next list.
  * Container: `systemd-nspawn --boot` on an overlay of that tree (--volatile=overlay: every write
    goes to a tmpfs, the cached tree stays pristine), started from cgroups of its own under
    /sys/fs/cgroup/{systemd,unified} (--keep-unit --register=no: no host systemd to ask). Commands
    run inside with `nsenter --all` into the container's PID 1.
Every wait has a deadline; stopping is `systemctl poweroff`, then SIGKILL of whatever is left.
"""

import fcntl
import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integration"))
from harness import wait_until  # noqa: E402

CACHE = os.environ.get("INGESTD_E2E_CACHE", "/var/cache/ingestd-e2e")
SUITE = "bookworm"
BASE_PACKAGES = ["systemd", "systemd-sysv", "dbus", "procps"]
CGROUP_ROOTS = ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"]
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


class Unavailable(Exception):
    """What the machine lacks to boot a container (the test is skipped, saying so)."""


def prerequisites():
    """Raises Unavailable naming the first missing prerequisite."""
    if os.geteuid() != 0:
        raise Unavailable("needs root (debootstrap, systemd-nspawn, cgroups)")
    for tool in ("debootstrap", "systemd-nspawn", "nsenter", "dpkg-deb"):
        if not shutil.which(tool):
            raise Unavailable(f"{tool} is not installed (scripts/install-deps.sh installs it)")
    for root in CGROUP_ROOTS:
        if not os.access(os.path.join(root, "cgroup.procs"), os.W_OK):
            raise Unavailable(f"cannot create cgroups under {root} (cgroup layout of this machine: "
                              f"{', '.join(sorted(os.listdir('/sys/fs/cgroup')))})")


def log(message):
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", flush=True)


def host_mirror():
    """The Debian mirror the host's apt uses for SUITE (deb822 or one-line sources)."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as f:
            for stanza in f.read().split("\n\n"):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.MULTILINE))
                if SUITE in fields.get("Suites", "").split() and "deb" in fields.get("Types", ""):
                    return fields["URIs"].split()[0]
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    m = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+" + SUITE + r"\s", line)
                    if m:
                        return m.group(1)
    return "http://deb.debian.org/debian"


def real_packages(names):
    """names, each virtual one replaced by a package that provides it (debootstrap takes only
    real packages), as the host's apt knows them: the host runs the same release."""
    shown = subprocess.run(["apt-cache", "show", "--no-all-versions"] + sorted(names),
                           capture_output=True, text=True).stdout
    real = set(re.findall(r"^Package: (\S+)$", shown, re.MULTILINE))
    for name in set(names) - real:
        info = subprocess.run(["apt-cache", "showpkg", name], capture_output=True, text=True).stdout
        providers = info.split("Reverse Provides:", 1)[-1].split()
        if not providers:
            raise AssertionError(f"no package is or provides {name}")
        real.add(providers[0])
    return sorted(real)


def depends_of(debs):
    """The packages that `debs` depend on, outside themselves: the first alternative of each
    Depends entry, without version constraints, virtual names resolved."""
    names, own = set(), set()
    for deb in debs:
        fields = subprocess.run(["dpkg-deb", "-f", deb, "Package", "Depends"], check=True,
                                capture_output=True, text=True).stdout
        own.add(re.search(r"^Package:\s*(\S+)", fields, re.MULTILINE).group(1))
        m = re.search(r"^Depends:\s*(.*)$", fields, re.MULTILINE)
        for entry in (m.group(1).split(",") if m else []):
            names.add(re.split(r"[\s(:]", entry.split("|")[0].strip())[0])
    return real_packages(names - own)


def rootfs(extra_packages):
    """The cached tree holding BASE_PACKAGES + extra_packages, made on first use."""
    packages = sorted(set(BASE_PACKAGES) | set(extra_packages))
    key = hashlib.sha256(" ".join(packages).encode()).hexdigest()[:12]
    tree = os.path.join(CACHE, f"{SUITE}-{key}")
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one debootstrap at a time
        if os.path.isdir(tree):
            log(f"cached tree {tree}")
            return tree
        for old in glob.glob(os.path.join(CACHE, f"{SUITE}-*")) + glob.glob(
                os.path.join(CACHE, "tmp-*")):
            shutil.rmtree(old, ignore_errors=True)  # other lists, or a run that was killed
        tmp = os.path.join(CACHE, f"tmp-{key}-{os.getpid()}")
        debs = os.path.join(CACHE, "debs")
        os.makedirs(debs, exist_ok=True)
        mirror = host_mirror()
        log(f"debootstrap {SUITE} from {mirror} with {','.join(packages)} (once; cached in {tree})")
        started = time.monotonic()
        r = subprocess.run(["debootstrap", "--variant=minbase", f"--cache-dir={debs}",
                            f"--include={','.join(packages)}", SUITE, tmp, mirror],
                           capture_output=True, text=True, timeout=1200)
        if r.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise AssertionError(f"debootstrap failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        os.rename(tmp, tree)
        log(f"debootstrap took {time.monotonic() - started:.0f} s")
        return tree


def wait_for(condition, timeout, what):
    """harness.wait_until, polling less often: each poll here starts processes in the container."""
    return wait_until(condition, timeout, what, interval=0.2)


class Container:
    """One booted container on an overlay of `tree`; binds maps host paths to container paths,
    read-only. Use as a context manager: the container is powered off (or killed) on exit."""

    def __init__(self, tree, binds=(), name="ingestd-e2e"):
        self.tree, self.binds, self.name = tree, list(binds), name
        self.cgroup = f"{name}-{os.getpid()}"
        self.process = None
        self.pid1 = None
        self.console = None

    def __enter__(self):
        for root in CGROUP_ROOTS:
            os.makedirs(os.path.join(root, self.cgroup))
        cgroups = [os.path.join(root, self.cgroup, "cgroup.procs") for root in CGROUP_ROOTS]

        def enter_cgroups():  # runs in the child, before exec: nspawn starts inside them
            for procs in cgroups:
                with open(procs, "w") as f:
                    f.write(str(os.getpid()))

        cmd = ["systemd-nspawn", "--boot", "--register=no", "--keep-unit", "--console=passive",
               "--link-journal=no", "--volatile=overlay", f"--machine={self.name}",
               "-D", self.tree]
        cmd += [f"--bind-ro={host}:{inside}" for host, inside in self.binds]
        self.console = open(os.path.join("/tmp", f"{self.cgroup}.console"), "w+")
        started = time.monotonic()
        self.process = subprocess.Popen(cmd, stdout=self.console, stderr=subprocess.STDOUT,
                                        preexec_fn=enter_cgroups)
        try:
            init_procs = os.path.join(CGROUP_ROOTS[0], self.cgroup, "payload", "init.scope",
                                      "cgroup.procs")

            def pid1():
                if self.process.poll() is not None:
                    raise AssertionError(f"systemd-nspawn exited: {self.console_text()}")
                try:
                    with open(init_procs) as f:
                        return int(f.read().split()[0])
                except (FileNotFoundError, IndexError, ValueError):
                    return None

            self.pid1 = wait_for(pid1, 60, "the container's init")
            def booted():
                state = self.run(["systemctl", "is-system-running"], check=False).stdout.strip()
                return state if state in ("running", "degraded") else None

            state = wait_for(booted, 120, "the container's systemd to finish booting")
            log(f"container booted in {time.monotonic() - started:.1f} s ({state})")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def console_text(self):
        self.console.seek(0)
        return self.console.read()[-4000:]

    def run(self, cmd, check=True, input=None, timeout=120):
        """Runs cmd inside the container (all its namespaces, a clean environment)."""
        full = ["nsenter", f"--target={self.pid1}", "--all", "--root", "--wd", "env", "-i",
                f"PATH={PATH}", "LANG=C.UTF-8", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"] + list(cmd)
        r = subprocess.run(full, capture_output=True, text=True, input=input, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"in the container, {' '.join(cmd)} exited {r.returncode}:\n"
                                 f"{r.stdout}\n{r.stderr}")
        return r

    def write(self, path, text):
        self.run(["sh", "-c", 'cat > "$1"', "sh", path], input=text)

    def read(self, path):
        r = self.run(["cat", path], check=False)
        return r.stdout if r.returncode == 0 else None

    def __exit__(self, *exc):
        started = time.monotonic()
        if self.process and self.process.poll() is None:
            if self.pid1:
                try:
                    self.run(["systemctl", "poweroff"], check=False, timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            try:
                self.process.wait(timeout=30)
                log(f"container powered off in {time.monotonic() - started:.1f} s")
            except subprocess.TimeoutExpired:
                log("the container did not power off within 30 s: killing it")
                self.kill_all()
                self.process.wait(timeout=30)
        self.kill_all()
        self.remove_cgroups()
        if self.console:
            self.console.close()
            os.unlink(self.console.name)

    def kill_all(self):
        for root in CGROUP_ROOTS:
            for procs in glob.glob(os.path.join(root, self.cgroup, "**", "cgroup.procs"),
                                   recursive=True):
                with open(procs) as f:
                    for pid in f.read().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except ProcessLookupError:
                            pass

    def remove_cgroups(self):
        for root in CGROUP_ROOTS:
            top = os.path.join(root, self.cgroup)
            if not os.path.isdir(top):
                continue
            dirs = [d for d, _, _ in os.walk(top)]
            for d in sorted(dirs, key=len, reverse=True):  # children first
                wait_for(lambda: self.try_rmdir(d), 10, f"{d} to be empty")

    @staticmethod
    def try_rmdir(path):
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            return False
