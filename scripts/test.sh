#!/usr/bin/env bash
# The README's second command: install, build, run every test (unit and
# integration, on the embedded broker).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
cd build
ctest --output-on-failure -j2 "$@"
