#!/usr/bin/env bash
# `pseudostream policy check | explain | preview` without a broker: the demo
# policy and every example pass check; a policy with several mistakes gets
# every one of them reported with its place, and exit code 2; explain writes a
# section per destination; preview shows each destination's decision for one
# event, withholding restricted codes and invalid NHS numbers from secondary use.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BIN=$1
SRC=${PS_SOURCE_DIR:-$(pwd)}
TMP=$(mktemp -d /tmp/pseudostream-policy-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "PASS $1"; }
ko() { failed=$((failed + 1)); echo "FAIL $1"; }

# 1. The demo and every example pass check.
for policy in "$SRC/policy/demo.yaml" "$SRC"/policy/examples/*.yaml; do
    rc=0
    out=$("$BIN" policy check "$policy" 2>&1) || rc=$?
    if [ "$rc" -eq 0 ] && [[ "$out" == *": ok, 0 errors"* ]]; then
        ok "check $(basename "$policy"): $out"
    else
        ko "check $(basename "$policy") (exit $rc): $out"
    fi
done
[ "$(ls "$SRC"/policy/examples/*.yaml | wc -l)" -ge 3 ] && ok "at least three examples" ||
    ko "at least three examples"

# 2. Every error, each with file:line:col, and exit 2.
cat > "$TMP/bad.yaml" <<'POLICY'
version: 1
destinations:
  - name: planners
    topic: planners.events
    purpose: planning
    legal_basis: {article6: public_task, article9: health_social_care, common_law: implied_consent}
    pseudonym_domain: planners
  - name: evaluators
    topic: evaluators.events
    purpose: service_evaluation
    legal_basis: {article6: public_task, article9: health_social_care, common_law: legal_obligation}
    pseudonym_domain: evaluators
    rules:
      - tag: PERSON_NAME
        action: keep
      - path: pid.date_of_brith
        action: drop
      - tag: FREE_TEXT
        action: keep
POLICY
rc=0
"$BIN" policy check "$TMP/bad.yaml" > "$TMP/check.out" 2> "$TMP/check.err" || rc=$?
errors=$(grep -c "^pseudostream: (config) $TMP/bad.yaml:[0-9]*:[0-9]*: " "$TMP/check.err" || true)
if [ "$rc" -eq 2 ] && [ "$errors" -ge 3 ] &&
   grep -q "bad.yaml:3:5: destination 'planners': implied consent covers direct care only" \
       "$TMP/check.err" &&
   grep -q "bad.yaml:14:9: destination 'evaluators': field 'pid.name\[\].family' (PERSON_NAME) would leave in clear" \
       "$TMP/check.err" &&
   grep -q "bad.yaml:14:9: destination 'evaluators': field 'patient.name\[\].family' (PERSON_NAME)" \
       "$TMP/check.err" &&
   grep -q "bad.yaml:16:9: destination 'evaluators': path 'pid.date_of_brith' names no field" \
       "$TMP/check.err" &&
   grep -q "REFUSED, $errors errors" "$TMP/check.out"; then
    ok "check reports every error with its place ($errors errors, exit 2)"
else
    ko "check of a bad policy (exit $rc, $errors errors)"; cat "$TMP/check.err" "$TMP/check.out"
fi
# Warnings are printed once, and do not fail the check.
sed -e 's/common_law: implied_consent/common_law: s251_support/' \
    -e '/tag: PERSON_NAME/,+3d' "$TMP/bad.yaml" > "$TMP/warn.yaml"
rc=0
"$BIN" policy check "$TMP/warn.yaml" > "$TMP/warn.out" 2> "$TMP/warn.err" || rc=$?
if [ "$rc" -eq 0 ] && [ "$(grep -c "warning: destination 'evaluators': free text" "$TMP/warn.err")" -ge 1 ] &&
   [ "$(sort "$TMP/warn.err" | uniq -d | wc -l)" -eq 0 ]; then
    ok "check prints warnings once each and exits 0"
else
    ko "check with warnings only (exit $rc)"; cat "$TMP/warn.err" "$TMP/warn.out"
fi

# 3. explain: one section per destination, with its table, and refuses a bad policy.
"$BIN" policy explain "$SRC/policy/demo.yaml" > "$TMP/explain.md"
sections=$(grep -c '^## Destination `' "$TMP/explain.md")
tables=$(grep -c '^### Fields of `' "$TMP/explain.md")
if [ "$sections" -eq 3 ] && [ "$tables" -eq 6 ] &&
   grep -q '^| `pid.date_of_birth` | BIRTH_DATE | generalised to age band | tag BIRTH_DATE, line [0-9]* |$' "$TMP/explain.md" &&
   grep -q '^| `pid.nhs_number` | NHS_NUMBER, PII | pseudonym (commissioning) | tag NHS_NUMBER, line [0-9]* |$' "$TMP/explain.md" &&
   grep -q 'code set `hiv`' "$TMP/explain.md" &&
   grep -q "Caldicott Guardian" "$TMP/explain.md"; then
    ok "explain: 3 destinations, 6 tables"
else
    ko "explain ($sections sections, $tables tables)"
fi
rc=0
"$BIN" policy explain "$TMP/bad.yaml" > /dev/null 2> "$TMP/explain.err" || rc=$?
[ "$rc" -eq 2 ] && ok "explain refuses a policy that check refuses" ||
    ko "explain of a bad policy exited $rc"

# 4. preview: one event through the demo policy.
event() { # NHS_NUMBER_JSON DIAGNOSIS_CODE
    cat <<JSON
{"msh":{"message_control_id":"MSG0000001","sending_application":"PAS","sending_facility":"RXX01",
 "message_type":"ADT^A01","event_time":"2026-03-01T10:00:00.000Z","version_id":"2.4"},
 "pid":{"nhs_number":$1,"nhs_number_status":"01","local_identifiers":[],
  "name":[{"family":"Quillondale","given":["Mabliss"],"prefix":null,"name_type":"L"}],
  "date_of_birth":"1970-03-15","sex":"F","ethnic_category":"A",
  "address":[{"lines":["7 Imaginary Close"],"city":"Elderholt","county":null,"postcode":"LS1 4AB","address_type":"H"}],
  "telecom":[],"date_of_death":null,"death_indicator":false},
 "pd1":{"gp_practice":"B86001","gp_code":"G7000001"},"pv1":null,"nk1":[],
 "dg1":[{"coding_system":"I10","code":"$2","description":"Artificial","diagnosis_type":"W",
  "diagnosis_time":"2026-03-01T10:00:00.000Z"}],"mrg":null,"obr":null,"obx":[]}
JSON
}
event '"9990000018"' "J18.9" > "$TMP/plain.json"
event '"9990000018"' "b20.1" > "$TMP/restricted.json"
event '"9990000019"' "J18.9" > "$TMP/invalid.json"
"$BIN" policy preview "$SRC/policy/demo.yaml" "$TMP/plain.json" > "$TMP/plain.out"
if grep -q "^## ward-dashboard -> ward.dashboard: disclosed" "$TMP/plain.out" &&
   grep -q "^## commissioning -> commissioning.events: disclosed" "$TMP/plain.out" &&
   grep -q "^## research -> research.events: disclosed" "$TMP/plain.out" &&
   grep -q "throw-away random key" "$TMP/plain.out" &&
   grep -q "treated as cleared" "$TMP/plain.out" &&
   grep -q '"date_of_birth":1970' "$TMP/plain.out" &&
   grep -q '"date_of_birth":"55-59"' "$TMP/plain.out" &&
   grep -Eq '"nhs_number":"1\.[a-z2-7]{32}"' "$TMP/plain.out" &&
   [ "$(grep -c Quillondale "$TMP/plain.out")" -eq 1 ]; then
    ok "preview: every destination disclosed, transformed as the policy says"
else
    ko "preview of a plain event"; cat "$TMP/plain.out"
fi
"$BIN" policy preview "$SRC/policy/demo.yaml" "$TMP/restricted.json" --schema Hl7v2Event \
    > "$TMP/restricted.out"
if grep -q "^## ward-dashboard -> ward.dashboard: disclosed" "$TMP/restricted.out" &&
   grep -q "^## commissioning -> commissioning.events: withheld (predicate): withhold_when\[1\] (codes_in: hiv)" "$TMP/restricted.out" &&
   grep -q "^## research -> research.events: withheld (predicate)" "$TMP/restricted.out"; then
    ok "preview: a restricted code is withheld from secondary use"
else
    ko "preview of a restricted code"; cat "$TMP/restricted.out"
fi
"$BIN" policy preview "$SRC/policy/demo.yaml" "$TMP/invalid.json" > "$TMP/invalid.out"
if grep -q "^## ward-dashboard -> ward.dashboard: disclosed" "$TMP/invalid.out" &&
   grep -q "^## commissioning -> commissioning.events: withheld (nhs_number_invalid)" "$TMP/invalid.out"; then
    ok "preview: an invalid NHS number is withheld from secondary use"
else
    ko "preview of an invalid NHS number"; cat "$TMP/invalid.out"
fi
rc=0
"$BIN" policy preview "$SRC/policy/demo.yaml" "$TMP/plain.json" --schema FhirEvent \
    > /dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] && ok "preview: an event that does not fit the named schema is refused" ||
    ko "preview with the wrong --schema exited 0"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
