#!/usr/bin/env python3
"""Keeps debian/control's Build-Depends equal to scripts/packages.txt, the one list of packages.

Every package in packages.txt outside the block between the `# >>>` and `# <<<` comment lines is
a build dependency; debhelper comes in as `debhelper-compat (= 13)`.
  scripts/build_depends.py           print the Build-Depends field packages.txt implies
  scripts/build_depends.py --check   fail, showing both lists, when debian/control differs
  scripts/build_depends.py --write   rewrite the field in debian/control
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = os.path.join(ROOT, "scripts", "packages.txt")
CONTROL = os.path.join(ROOT, "debian", "control")
FIXED = ["debhelper-compat (= 13)"]
# The field and its continuation lines (which start with a space).
FIELD = re.compile(r"^Build-Depends:.*\n(?:[ \t].*\n)*", re.MULTILINE)


def wanted():
    packages, skipping = [], False
    with open(PACKAGES) as f:
        for line in f:
            line = line.strip()
            if line.startswith("# >>>"):
                skipping = True
            elif line.startswith("# <<<"):
                skipping = False
            elif line and not line.startswith("#") and not skipping:
                packages.append(line)
    return FIXED + packages


def field(packages):
    return "Build-Depends:\n" + "".join(f" {p},\n" for p in packages)


def current(control):
    m = FIELD.search(control)
    if not m:
        sys.exit(f"{CONTROL}: no Build-Depends field")
    return [p.strip() for p in m.group(0).split(":", 1)[1].split(",") if p.strip()], m


def main():
    packages = wanted()
    if len(sys.argv) == 1:
        sys.stdout.write(field(packages))
        return 0
    with open(CONTROL) as f:
        control = f.read()
    have, m = current(control)
    if sys.argv[1] == "--check":
        if have != packages:
            print(f"{CONTROL}: Build-Depends differ from {PACKAGES}:\n"
                  f"  control:      {', '.join(have)}\n  packages.txt: {', '.join(packages)}\n"
                  "run scripts/build_depends.py --write", file=sys.stderr)
            return 1
        print("build-depends: debian/control agrees with scripts/packages.txt")
        return 0
    if sys.argv[1] == "--write":
        with open(CONTROL, "w") as f:
            f.write(control[:m.start()] + field(packages) + control[m.end():])
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
