#!/usr/bin/env bash
# Installs what is needed, builds, and runs ingestd in the foreground on the embedded demo
# pipeline (config/demo.yaml). Stop it with Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
exec "$root/build/ingestd" run --demo "$@"
