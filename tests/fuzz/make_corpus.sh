#!/usr/bin/env bash
# Rebuilds the seed corpus of the fuzz targets (checked in under corpus/):
#   decode:  artificial events of both reference schemas in both framings,
#            taken from the embedded broker (generate, then consume --raw),
#            plus one message of each malformed kind the generator makes;
#   policy, keyring, config: the example and test files of the repository.
# Usage: tests/fuzz/make_corpus.sh BINARY
set -euo pipefail
BIN=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d /tmp/pseudostream-corpus-XXXXXX)
"$BIN" broker --topic seed:1 --bootstrap-file "$tmp/bootstrap" > /dev/null 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do [ -s "$tmp/bootstrap" ] && break; sleep 0.1; done
bs=$(cat "$tmp/bootstrap")
"$BIN" generate -b "$bs" -t seed -n 24 --patients 12 --seed 1 --malformed 1 > /dev/null 2>&1
"$BIN" generate -b "$bs" -t seed -n 8 --patients 4 --seed 2 --format single_object > /dev/null 2>&1
rm -rf "$here/corpus"
mkdir -p "$here/corpus/decode" "$here/corpus/policy" "$here/corpus/keyring" "$here/corpus/config"
"$BIN" consume -b "$bs" --raw seed | python3 -c '
import json, sys
for i, line in enumerate(sys.stdin):
    m = json.loads(line)
    open(f"{sys.argv[1]}/event-{i:03d}.bin", "wb").write(bytes.fromhex(m["value_hex"] or ""))
' "$here/corpus/decode"
cp "$src"/policy/*.yaml "$here/corpus/policy/"
cp "$src"/tests/unit/data/policy/*.yaml "$here/corpus/policy/"
cp "$src"/tests/unit/data/keyring/*.yaml "$here/corpus/keyring/"
cp "$src"/tests/unit/data/config/*.yaml "$here/corpus/config/"
for d in decode policy keyring config; do
    echo "$d: $(ls "$here/corpus/$d" | wc -l) seeds"
done
