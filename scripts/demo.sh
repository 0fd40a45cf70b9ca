#!/usr/bin/env bash
# The README's first command: install, build, run the demo on the embedded
# broker with artificial data.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
exec ./build/pseudostream demo "$@"
