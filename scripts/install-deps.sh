#!/usr/bin/env bash
# Installs the Debian packages in scripts/packages.txt (as root), skipping apt when all are there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mapfile -t packages < <(grep -v '^\s*#' "$here/packages.txt" | grep -v '^\s*$')
# Also what installed packages provide: a machine whose nodejs comes from NodeSource has npm in it
# (that nodejs provides and conflicts with Debian's npm, so apt could not install it anyway).
declare -A provided=()
while read -r name; do
  [ -n "$name" ] && provided["$name"]=1
done < <(dpkg-query -W -f='${db:Status-Abbrev}|${Provides}\n' 2>/dev/null |
  awk -F'|' '$1 ~ /^ii/ { print $2 }' | tr ',' '\n' | sed 's/(.*//; s/[[:space:]]//g')
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' && continue
  [ -n "${provided[$p]:-}" ] && continue
  missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
