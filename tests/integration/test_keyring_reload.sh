#!/usr/bin/env bash
# A running filter reloads its keyring on SIGHUP and when the file changes,
# between batches; a keyring that does not load leaves the running one in use;
# SIGTERM then stops it with exit 0.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
ps_setup "$1"
passed=0; failed=0
check() { if eval "$2"; then passed=$((passed+1)); echo "PASS $1"; else failed=$((failed+1)); echo "FAIL $1"; fi; }
wait_for() { for _ in $(seq 1 "$2"); do grep -q "$1" "$PS_TMP/run.log" && return 0; sleep 0.5; done; return 1; }

"$PS_BIN" generate -b "$PS_BOOTSTRAP" -t hospital.events -n 200 --seed 3 > /dev/null 2>&1
"$PS_BIN" run -c "$PS_TMP/config.yaml" > "$PS_TMP/run.log" &
run_pid=$!
wait_for '"code":"started"' 40 || true

"$PS_BIN" keyring add "$PS_TMP/keyring.yaml" --not-before 2031-01-01T00:00:00Z > /dev/null
kill -HUP "$run_pid"
"$PS_BIN" generate -b "$PS_BOOTSTRAP" -t hospital.events -n 50 --seed 4 > /dev/null 2>&1
check "SIGHUP reloads the keyring between batches" "wait_for keyring_reloaded 40"

cp "$PS_TMP/keyring.yaml" "$PS_TMP/keyring.good"
printf 'keys:\n  - id: 1\n    not_before: nonsense\n    secret: x\n' > "$PS_TMP/keyring.new"
chmod 600 "$PS_TMP/keyring.new" && mv "$PS_TMP/keyring.new" "$PS_TMP/keyring.yaml"
"$PS_BIN" generate -b "$PS_BOOTSTRAP" -t hospital.events -n 50 --seed 5 > /dev/null 2>&1
check "a broken keyring file is refused and the running one stays" \
    "wait_for keyring_reload_failed 40"
check "the error names the file, never a secret" \
    "! grep keyring_reload_failed '$PS_TMP/run.log' | grep -q -F '$PS_SECRET'"

kill -TERM "$run_pid"
rc=0; wait "$run_pid" || rc=$?
check "SIGTERM stops it with exit 0" "[ $rc -eq 0 ]"
check "no secret in any log line" "! grep -q -F '$PS_SECRET' '$PS_TMP/run.log'"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
