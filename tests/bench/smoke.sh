#!/usr/bin/env bash
# Smoke run of both benchmarks (ctest label "bench"): they must complete and
# print their tables. No timing is asserted: a shared CI machine says nothing
# about speed; docs/PERFORMANCE.md has the measured figures and how to get them.
set -euo pipefail
bin=${1:?usage: smoke.sh PSEUDOSTREAM}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

"$bin" bench engine --events 2000 --rounds 1 --json "$out/engine.json" | tee "$out/engine.txt"
grep -q "events per CPU-second" "$out/engine.txt"
grep -q '"benchmark":"engine"' "$out/engine.json"

"$bin" bench pipeline --events 5000 --json "$out/pipeline.json" | tee "$out/pipeline.txt"
for row in "throughput (input events/s)" "CPU seconds per million events" \
           "peak resident memory (MB)" "latency p99 (ms)"; do
    grep -qF "$row" "$out/pipeline.txt" || { echo "missing row: $row" >&2; exit 1; }
done
grep -q '"benchmark":"pipeline"' "$out/pipeline.json"
echo "bench smoke: ok"
