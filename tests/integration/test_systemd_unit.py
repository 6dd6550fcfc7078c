"""systemd/: the unit passes `systemd-analyze verify` (pointed at the built daemon) and its
`systemd-analyze security` exposure is at most 2.0; the sysusers.d and tmpfiles.d snippets create
the service's user and data directory in a scratch root, as the package's postinst does."""

import os
import re
import shutil
import subprocess
import unittest

import harness

SYSTEMD_DIR = os.path.join(harness.SOURCE_DIR, "systemd")
UNIT = os.path.join(SYSTEMD_DIR, "ingestd.service")
MAX_EXPOSURE = 2.0


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)


class SystemdUnitTest(harness.IntegrationTestCase):
    def unit_for_this_build(self):
        """The unit with the installed paths replaced by this build's, and man pages where
        Documentation= looks for them: verify then checks every command and page exists."""
        with open(UNIT) as f:
            text = f.read()
        for installed in ("/usr/bin/ingestd", "/etc/ingestd/pipeline.yaml"):
            self.assertIn(installed, text)
        text = text.replace("/usr/bin/ingestd", harness.BIN).replace(
            "/etc/ingestd/pipeline.yaml",
            os.path.join(harness.SOURCE_DIR, "config", "pipeline.yaml"))
        unit_dir = self.path("units")
        os.makedirs(unit_dir)
        path = os.path.join(unit_dir, "ingestd.service")
        with open(path, "w") as f:
            f.write(text)
        for page, section in (("ingestd.8", "man8"), ("ingestctl.1", "man1")):
            os.makedirs(self.path("man", section), exist_ok=True)
            shutil.copy(os.path.join(harness.SOURCE_DIR, "docs", "man", page),
                        self.path("man", section, page))
        return path

    def test_verify(self):
        path = self.unit_for_this_build()
        env = dict(os.environ, MANPATH=self.path("man"))
        r = run(["systemd-analyze", "verify", path], env=env)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    def test_verify_fails_on_a_missing_binary(self):
        # The check above could pass by not looking: a unit pointing at nothing must fail.
        path = self.unit_for_this_build()
        with open(path) as f:
            text = f.read().replace(harness.BIN, self.path("no-such-ingestd"))
        with open(path, "w") as f:
            f.write(text)
        r = run(["systemd-analyze", "verify", path], env=dict(os.environ, MANPATH=self.path("man")))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no-such-ingestd", r.stderr)

    def test_security_exposure(self):
        r = run(["systemd-analyze", "security", "--offline=true", "--no-pager", UNIT])
        m = re.search(r"Overall exposure level for ingestd\.service: ([0-9.]+)", r.stdout)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        exposure = float(m.group(1))
        print(f"systemd-analyze security: overall exposure {exposure}")
        self.assertLessEqual(exposure, MAX_EXPOSURE, r.stdout)
        # The settings the daemon's design leans on are all in force.
        for setting in ("NoNewPrivileges=", "ProtectSystem=", "User=/DynamicUser=",
                        "CapabilityBoundingSet=~CAP_SYS_ADMIN", "SystemCallFilter=~@privileged"):
            line = next((l for l in r.stdout.splitlines() if setting in l), "")
            self.assertTrue(line.lstrip().startswith("✓"), f"{setting}: {line!r}")

    def test_sysusers_and_tmpfiles_create_user_and_data_dir(self):
        root = self.path("root")
        os.makedirs(os.path.join(root, "etc"))
        r = run(["systemd-sysusers", f"--root={root}",
                 os.path.join(SYSTEMD_DIR, "ingestd.sysusers")])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(root, "etc", "passwd")) as f:
            entry = next((l.split(":") for l in f if l.startswith("ingestd:")), None)
        self.assertIsNotNone(entry, "no ingestd user in the scratch root's /etc/passwd")
        uid, home, shell = int(entry[2]), entry[5], entry[6].strip()
        self.assertLess(uid, 1000)  # a system user
        self.assertEqual(home, "/var/lib/ingestd")
        self.assertTrue(shell.endswith("nologin"), shell)

        r = run(["systemd-tmpfiles", f"--root={root}", "--create",
                 os.path.join(SYSTEMD_DIR, "ingestd.tmpfiles")])
        self.assertEqual(r.returncode, 0, r.stderr)
        st = os.stat(os.path.join(root, "var", "lib", "ingestd"))
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (uid, 0o750))


if __name__ == "__main__":
    unittest.main()
