#!/usr/bin/env bash
# Controlled re-identification end to end (issue 4): a risk-stratification
# destination whose policy names an authority's public key; the filter seals
# each pseudonymised NHS number once per patient to the escrow topic, in the
# batch transaction. The authority's secret key re-identifies the tokens on
# the destination topic to the right NHS numbers; another key opens nothing;
# destinations without escrow write nothing to the escrow topic.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
ps_setup "$1"

"$PS_BIN" keyring authority-new --public "$PS_TMP/authority.pub" --secret "$PS_TMP/authority.sec"
"$PS_BIN" keyring authority-new --public "$PS_TMP/other.pub" --secret "$PS_TMP/other.sec"

# The demo policy plus a case-finding destination for the direct care team.
sed "s|codesets/|$PS_SRC/policy/codesets/|" "$PS_SRC/policy/demo.yaml" > "$PS_TMP/policy.yaml"
cat >> "$PS_TMP/policy.yaml" <<POLICY

  - name: case-finding
    topic: case-finding.events
    purpose: risk_stratification
    legal_basis:
      article6: public_task
      article9: health_social_care
      common_law: s251_support
      reference: "CAG 0-00(c)/0000 (test placeholder)"
    pseudonym_domain: case-finding
    escrow:
      public_key: $PS_TMP/authority.pub
    default: drop
    rules:
      - tag: NHS_NUMBER
        action: pseudonymise
      - tag: BIRTH_DATE
        action: generalise
        to: age_band
      - tag: DIAGNOSIS_CODE
        action: keep
POLICY
ps_write_config "$PS_TMP/policy.yaml"

"$PS_BIN" generate -b "$PS_BOOTSTRAP" -t hospital.events -n 1500 --patients 120 --seed 11 \
    --manifest "$PS_TMP/manifest.jsonl"
python3 -c "
import json, sys
with open('$PS_TMP/optout.dat', 'w') as f:
    for l in open('$PS_TMP/manifest.jsonl'):
        f.write(json.loads(l)['nhs_number'] + ',\n')
"
"$PS_BIN" run -c "$PS_TMP/config.yaml" --exit-when-idle 3000 > "$PS_TMP/run.log"
for topic in hospital.events case-finding.events pseudostream.escrow; do
    "$PS_BIN" consume -b "$PS_BOOTSTRAP" -c "$PS_TMP/config.yaml" "$topic" > "$PS_TMP/$topic.jsonl"
done

# token -> expected NHS number, from the records and the input they came from
python3 - "$PS_TMP" > "$PS_TMP/expected.tsv" <<'PY'
import json, sys
tmp = sys.argv[1]
inputs = {}
for l in open(f"{tmp}/hospital.events.jsonl"):
    m = json.loads(l)
    if "value" in m:
        v = m["value"]
        nhs = v["pid"]["nhs_number"] if "pid" in v else v["patient"]["nhsNumber"]
        inputs[f"hospital.events/{m['partition']}/{m['offset']}"] = nhs
pairs = {}
for l in open(f"{tmp}/case-finding.events.jsonl"):
    m = json.loads(l)
    pairs[m["key"]] = inputs[m["source"]]
for token, nhs in sorted(pairs.items()):
    print(f"{token}\t{nhs}")
PY
cut -f1 "$PS_TMP/expected.tsv" > "$PS_TMP/tokens.txt"
passed=0; failed=0
check() { if eval "$2"; then passed=$((passed+1)); echo "PASS $1"; else failed=$((failed+1)); echo "FAIL $1"; fi; }

check "the destination received records" "[ \$(wc -l < '$PS_TMP/tokens.txt') -gt 50 ]"
"$PS_BIN" reidentify -b "$PS_BOOTSTRAP" --escrow-topic pseudostream.escrow \
    --secret-key "$PS_TMP/authority.sec" $(cat "$PS_TMP/tokens.txt") > "$PS_TMP/opened.tsv"
check "the authority's key re-identifies every token to the right NHS number" \
    "diff <(sort '$PS_TMP/expected.tsv') <(sort '$PS_TMP/opened.tsv') > /dev/null"
rc=0
"$PS_BIN" reidentify -b "$PS_BOOTSTRAP" --escrow-topic pseudostream.escrow \
    --secret-key "$PS_TMP/other.sec" $(head -5 "$PS_TMP/tokens.txt") > "$PS_TMP/other.tsv" \
    2> "$PS_TMP/other.err" || rc=$?
check "another key opens nothing" "[ $rc -ne 0 ] && [ ! -s '$PS_TMP/other.tsv' ]"
check "escrow records come only from the escrow destination" \
    "[ \$(grep -c '\"key\":\"case-finding/' '$PS_TMP/pseudostream.escrow.jsonl') -eq \$(wc -l < '$PS_TMP/pseudostream.escrow.jsonl') ]"
# Every pseudonymised NHS number is escrowed (record keys, and A40's prior numbers
# too), each (domain, token) once: the sealed box is paid once per patient.
python3 - "$PS_TMP" > "$PS_TMP/escrow-check.txt" <<'PY'
import json, sys
tmp = sys.argv[1]
keys = [json.loads(l)["key"] for l in open(f"{tmp}/pseudostream.escrow.jsonl")]
tokens = {l.strip() for l in open(f"{tmp}/tokens.txt")}
print("ok" if len(keys) == len(set(keys)) and {"case-finding/" + t for t in tokens} <= set(keys)
      else "bad")
PY
check "sealed once per patient and domain, every token covered" \
    "grep -qx ok '$PS_TMP/escrow-check.txt'"
check "no NHS number in clear on the escrow topic" \
    "! grep -q -F -f <(python3 -c \"import json;[print(json.loads(l)['nhs_number']) for l in open('$PS_TMP/manifest.jsonl')]\") '$PS_TMP/pseudostream.escrow.jsonl'"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
