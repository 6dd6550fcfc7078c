#!/usr/bin/env bash
# Fails when a C++ file tracked by git differs from what clang-format (.clang-format) makes of it.
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files -z '*.cc' '*.h' | xargs -0 clang-format --dry-run --Werror
echo "format: ok"
