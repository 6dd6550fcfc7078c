#!/usr/bin/env bash
# Builds the Debian packages (ingestd, ingestd-dev, ingestd-plugin-kafka) from a clean copy of the
# source tree and checks them with lintian:
#   scripts/build-debs.sh [OUT_DIR]      (default: build/debs)
# The copy holds the files git knows (committed or not, ignored ones left out), so build
# directories never leak into the package. It lives at a fixed path under OUT_DIR, so a compiler
# cache (CMAKE_CXX_COMPILER_LAUNCHER=ccache in the environment) hits across runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$root/build/debs}" && cd "${1:-$root/build/debs}" && pwd)
version=$(dpkg-parsechangelog -l "$root/debian/changelog" -S Version)
src="$out/src/ingestd-$version"
started=$SECONDS

"$root/scripts/build_depends.py" --check

rm -rf "$out/src" "$out"/*.deb "$out"/*.buildinfo "$out"/*.changes
mkdir -p "$src"
# Deleted but still tracked files are skipped (--ignore-failed-read).
git -C "$root" ls-files -z --cached --others --exclude-standard |
  tar -C "$root" --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$src" -xf -

echo "building the packages in $src"
# -J: one compiler per core (debhelper builds with one job unless asked).
(cd "$src" && dpkg-buildpackage -us -uc -b -J"$(nproc)") >"$out/build.log" 2>&1 || {
  tail -n 40 "$out/build.log"
  echo "dpkg-buildpackage failed; the whole log is $out/build.log" >&2
  exit 1
}
mv "$out"/src/*.deb "$out"/src/*.buildinfo "$out"/src/*.changes "$out"/
echo "packages built in $((SECONDS - started)) s:"
ls -1 "$out"/*.deb

# Errors fail; warnings are printed for whoever reads the log.
lintian --fail-on error --info "$out"/*.changes
echo "lintian: no errors"
