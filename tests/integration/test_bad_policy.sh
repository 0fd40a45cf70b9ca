#!/usr/bin/env bash
# A bad policy stops start-up of `pseudostream run` with exit code 2 and one
# line naming the file, the line and column, and what to change.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
ps_setup "$1"
fixtures="$PS_SRC/tests/unit/data/policy"
passed=0
failed=0

# expect FIXTURE LINE:COL TEXT: the one stderr line names the fixture, place and text.
expect() {
    local policy="$fixtures/$1" place=$2 text=$3 out rc=0
    ps_write_config "$policy"
    out=$("$PS_BIN" run -c "$PS_TMP/config.yaml" 2>&1 >/dev/null) || rc=$?
    if [ "$rc" -eq 2 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] &&
       [[ "$out" == *"$policy:$place"* ]] && [[ "$out" == *"$text"* ]]; then
        passed=$((passed + 1)); echo "PASS $1: $out"
    else
        failed=$((failed + 1)); echo "FAIL $1 (exit $rc): $out"
    fi
}

expect bad_unknown_key.yaml "" "unknown key"
expect bad_unknown_tag.yaml "" "unknown tag"
expect bad_action.yaml "" "unknown action"
expect missing_topic.yaml "" "topic"

# Meaning, checked against the schemas when plans compile.
cat > "$PS_TMP/clear_name.yaml" <<'POLICY'
version: 1
destinations:
  - name: planners
    topic: planners.events
    purpose: planning
    legal_basis: {article6: legal_obligation, article9: health_social_care, common_law: legal_obligation}
    pseudonym_domain: planners
    default: drop
    rules:
      - tag: PERSON_NAME
        action: keep
POLICY
fixtures=$PS_TMP expect clear_name.yaml "10:9" "would leave in clear"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
