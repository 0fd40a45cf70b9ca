#!/usr/bin/env bash
# The keyring commands, pseudonymise and reidentify as an operator uses them:
#  - keyring new/add/list/encrypt/authority-new: modes, refusals, and no secret
#    in any output;
#  - `run` refuses a keyring that others may read (exit 2, "chmod 600");
#  - pseudonymise reproduces docs/pseudonym-vectors.json and, for generated
#    patients, exactly the keys the stream put on commissioning.events;
#  - a passphrase-protected keyring gives the same tokens, and a wrong
#    passphrase is one clear message;
#  - reidentify on a topic with no escrow record for a token says so.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
ps_setup "$1"
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "PASS $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

# no_secret_in FILE KEYRING: FILE holds none of KEYRING's secrets.
no_secret_in() {
    local out=$1 keyring=$2 secret
    for secret in $(sed -n 's/^ *secret: "\(.*\)"$/\1/p' "$keyring"); do
        if grep -qF -- "$secret" "$out"; then
            return 1
        fi
    done
    return 0
}

kr="$PS_TMP/kr"
mkdir "$kr"

# ---------------------------------------------------------------- keyring
out="$PS_TMP/keyring.out"
"$PS_BIN" keyring new "$kr/k.yaml" --not-before 2024-01-01T00:00:00Z > "$out" 2>&1
check "keyring new: mode 0600" [ "$(stat -c %a "$kr/k.yaml")" = 600 ]
check "keyring new: one key of 32 bytes" \
    [ "$(sed -n 's/^ *secret: "\(.*\)"$/\1/p' "$kr/k.yaml" | base64 -d | wc -c)" = 32 ]
rc=0; "$PS_BIN" keyring new "$kr/k.yaml" >> "$out" 2>&1 || rc=$?
check "keyring new: refuses to overwrite" [ "$rc" -ne 0 ]
rc=0; "$PS_BIN" keyring add "$kr/k.yaml" --not-before 2023-06-01 >> "$out" 2>&1 || rc=$?
check "keyring add: not_before before the last key's is refused (exit 2)" [ "$rc" -eq 2 ]
"$PS_BIN" keyring add "$kr/k.yaml" --not-before 2030-01-01T00:00:00Z >> "$out" 2>&1
check "keyring add: two keys, mode still 0600" \
    [ "$(grep -c 'secret:' "$kr/k.yaml")" = 2 -a "$(stat -c %a "$kr/k.yaml")" = 600 ]
check "keyring add: no temporary file left" [ "$(ls "$kr" | wc -l)" = 1 ]
"$PS_BIN" keyring list "$kr/k.yaml" > "$PS_TMP/list.out" 2>&1
cat "$PS_TMP/list.out" >> "$out"
check "keyring list: ids and dates" grep -q '^2  *2030-01-01T00:00:00Z  *no' "$PS_TMP/list.out"
check "keyring list: the key in use now is 1" grep -q '^1  .*yes$' "$PS_TMP/list.out"
check "keyring list: says it is not passphrase-protected" \
    grep -q '^passphrase-protected: no' "$PS_TMP/list.out"
check "keyring new/add/list: no secret in any output" no_secret_in "$out" "$kr/k.yaml"
cp "$kr/k.yaml" "$kr/plain-copy.yaml"

printf 'artificial passphrase for tests\n' > "$kr/pass"
chmod 600 "$kr/pass"
"$PS_BIN" keyring encrypt "$kr/k.yaml" --passphrase-file "$kr/pass" > "$out" 2>&1
check "keyring encrypt: the file holds no secret any more" no_secret_in "$kr/k.yaml" \
    "$kr/plain-copy.yaml"
check "keyring encrypt: Argon2id form" grep -q 'kdf: argon2id13' "$kr/k.yaml"
PSEUDOSTREAM_KEYRING_PASSPHRASE='artificial passphrase for tests' \
    "$PS_BIN" keyring list "$kr/k.yaml" > "$PS_TMP/list.out" 2>&1
check "keyring list (protected): passphrase from the environment" \
    grep -q '^passphrase-protected: yes' "$PS_TMP/list.out"
check "keyring list (protected): no secret" no_secret_in "$PS_TMP/list.out" "$kr/plain-copy.yaml"
printf 'not the passphrase\n' > "$kr/wrong"
chmod 600 "$kr/wrong"
rc=0; "$PS_BIN" keyring list "$kr/k.yaml" --passphrase-file "$kr/wrong" > "$PS_TMP/list.out" 2>&1 \
    || rc=$?
check "keyring list: wrong passphrase is exit 2, one clear line" \
    [ "$rc" -eq 2 -a "$(wc -l < "$PS_TMP/list.out")" -eq 1 ]
check "keyring list: wrong passphrase message" grep -q 'wrong passphrase or damaged file' \
    "$PS_TMP/list.out"
check "keyring list: wrong passphrase shows no secret and no passphrase" \
    sh -c "! grep -q 'passphrase for tests' '$PS_TMP/list.out'"

"$PS_BIN" keyring authority-new --public "$kr/authority.pub" --secret "$kr/authority.key" \
    > "$out" 2>&1
check "authority-new: secret key mode 0600" [ "$(stat -c %a "$kr/authority.key")" = 600 ]
check "authority-new: public key is base64 of 32 bytes" \
    [ "$(base64 -d < "$kr/authority.pub" | wc -c)" = 32 ]
check "authority-new: the secret key is not printed" \
    sh -c "! grep -qF '$(cat "$kr/authority.key")' '$out'"

# ------------------------------------------------- run refuses mode 0644
chmod 644 "$PS_TMP/keyring.yaml"
rc=0; "$PS_BIN" run -c "$PS_TMP/config.yaml" > /dev/null 2> "$PS_TMP/run.err" || rc=$?
chmod 600 "$PS_TMP/keyring.yaml"
check "run: a 0644 keyring is refused with exit 2" [ "$rc" -eq 2 ]
check "run: the message names chmod 600" grep -q 'chmod 600' "$PS_TMP/run.err"
check "run: the message shows no secret" no_secret_in "$PS_TMP/run.err" "$PS_TMP/keyring.yaml"

# ------------------------------------------- pseudonymise: known answers
# The lib keyring holds secret S1 of docs/PSEUDONYMS.md as key 1.
python3 - "$PS_SRC/docs/pseudonym-vectors.json" "$PS_SECRET" "$PS_TMP" <<'PY'
import json, sys
vectors, secret, tmp = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
groups = {}
for v in vectors:
    if v["secret_b64"] == secret and v["key_id"] == 1:
        groups.setdefault((v["domain"], v["kind"]), []).append(v)
with open(f"{tmp}/kat.groups", "w") as g:
    for i, ((domain, kind), vs) in enumerate(sorted(groups.items())):
        g.write(f"{i} {domain} {kind}\n")
        with open(f"{tmp}/kat.{i}.in", "wb") as f:
            f.write(b"".join(v["value"].encode() + b"\n" for v in vs))
        with open(f"{tmp}/kat.{i}.expected", "w") as f:
            f.write("".join(v["token"] + "\n" for v in vs))
PY
kat_ok=1
while read -r i domain kind; do
    "$PS_BIN" pseudonymise -c "$PS_TMP/config.yaml" --domain "$domain" --kind "$kind" \
        < "$PS_TMP/kat.$i.in" > "$PS_TMP/kat.$i.out"
    if ! cmp -s "$PS_TMP/kat.$i.out" "$PS_TMP/kat.$i.expected"; then
        kat_ok=0
        echo "  $domain/$kind: got $(tr '\n' ' ' < "$PS_TMP/kat.$i.out")"
    fi
done < "$PS_TMP/kat.groups"
check "pseudonymise: every S1 vector of docs/pseudonym-vectors.json" [ "$kat_ok" = 1 ]

# Invalid NHS numbers: reported by line on stderr, never by value; empty line out.
printf '9990000018\n9990000019\n999 000 0018\n' > "$PS_TMP/mixed.in"
rc=0
"$PS_BIN" pseudonymise -c "$PS_TMP/config.yaml" --domain commissioning < "$PS_TMP/mixed.in" \
    > "$PS_TMP/mixed.out" 2> "$PS_TMP/mixed.err" || rc=$?
check "pseudonymise: an invalid number makes exit 1" [ "$rc" -eq 1 ]
check "pseudonymise: output keeps one line per input line" \
    [ "$(sed -n 2p "$PS_TMP/mixed.out")" = "" -a \
      "$(sed -n 3p "$PS_TMP/mixed.out")" = "1.azmjrzwnzcbxkehom6whk6y2u2tfu7ic" ]
check "pseudonymise: the invalid line is named by number" grep -q 'line 2: not a valid NHS' \
    "$PS_TMP/mixed.err"
check "pseudonymise: the invalid value is not repeated" \
    sh -c "! grep -q 9990000019 '$PS_TMP/mixed.err'"

# CSV: the column by name, quoted fields kept, header renamed.
printf 'name,nhs_number,note\n"Test, Patient",999 000 0018,"said ""hi"""\nB,123,x\n' \
    > "$PS_TMP/extract.csv"
rc=0
"$PS_BIN" pseudonymise -c "$PS_TMP/config.yaml" --domain commissioning --csv \
    --column nhs_number < "$PS_TMP/extract.csv" > "$PS_TMP/extract.out" 2> "$PS_TMP/extract.err" \
    || rc=$?
expected_csv='name,nhs_number_token,note
"Test, Patient",1.azmjrzwnzcbxkehom6whk6y2u2tfu7ic,"said ""hi"""
B,,x'
check "pseudonymise --csv: column replaced, header renamed, other fields as they were" \
    [ "$(cat "$PS_TMP/extract.out")" = "$expected_csv" -a "$rc" -eq 1 ]
check "pseudonymise --csv: the bad row is named by line" grep -q 'line 3:' "$PS_TMP/extract.err"

# The key in force at the events' time: before the keyring there is none.
rc=0
echo 9990000018 | "$PS_BIN" pseudonymise -c "$PS_TMP/config.yaml" --domain commissioning \
    --event-time 2019-12-31 > /dev/null 2> "$PS_TMP/nokey.err" || rc=$?
check "pseudonymise: no key before the first not_before (no_key)" \
    grep -q '(no_key)' "$PS_TMP/nokey.err"

# A passphrase-protected keyring gives the same tokens: the passphrase from the
# config's keyring_passphrase_file, or from --passphrase-file.
cp "$PS_TMP/keyring.yaml" "$kr/service.yaml"
PSEUDOSTREAM_KEYRING_PASSPHRASE='artificial passphrase for tests' \
    "$PS_BIN" keyring encrypt "$kr/service.yaml" > /dev/null
sed "s|^keyring: .*|keyring: \"$kr/service.yaml\"|" "$PS_TMP/config.yaml" > "$PS_TMP/enc.yaml"
printf 'keyring_passphrase_file: "%s"\n' "$kr/pass" >> "$PS_TMP/enc.yaml"
token=$(echo 9990000018 | "$PS_BIN" pseudonymise -c "$PS_TMP/enc.yaml" --domain commissioning)
check "pseudonymise: protected keyring, keyring_passphrase_file, same token" \
    [ "$token" = "1.azmjrzwnzcbxkehom6whk6y2u2tfu7ic" ]
sed "s|^keyring: .*|keyring: \"$kr/service.yaml\"|" "$PS_TMP/config.yaml" > "$PS_TMP/enc2.yaml"
token=$(echo 9990000018 | "$PS_BIN" pseudonymise -c "$PS_TMP/enc2.yaml" --domain commissioning \
        --passphrase-file "$kr/pass")
check "pseudonymise: protected keyring, --passphrase-file, same token" \
    [ "$token" = "1.azmjrzwnzcbxkehom6whk6y2u2tfu7ic" ]
rc=0
echo 9990000018 | "$PS_BIN" pseudonymise -c "$PS_TMP/enc2.yaml" --domain commissioning \
    --passphrase-file "$kr/wrong" > /dev/null 2> "$PS_TMP/enc.err" || rc=$?
check "pseudonymise: wrong passphrase, exit 2 and one line with the reason" \
    [ "$rc" -eq 2 -a "$(wc -l < "$PS_TMP/enc.err")" = 1 -a \
      "$(grep -c 'wrong passphrase or damaged file' "$PS_TMP/enc.err")" = 1 ]
rc=0
echo 9990000018 | "$PS_BIN" pseudonymise -c "$PS_TMP/enc2.yaml" --domain commissioning \
    > /dev/null 2> "$PS_TMP/enc.err" || rc=$?
check "pseudonymise: protected keyring without a passphrase, exit 2" \
    [ "$rc" -eq 2 -a "$(grep -c 'passphrase' "$PS_TMP/enc.err")" = 1 ]

# ---------------------------------------- pseudonymise equals the stream
"$PS_BIN" generate -b "$PS_BOOTSTRAP" -t hospital.events -n 1500 --patients 200 --seed 11 \
    --manifest "$PS_TMP/manifest.jsonl" > /dev/null
# Every patient cleared for secondary use (the MESH reply form).
python3 - "$PS_TMP" <<'PY'
import json, sys
tmp = sys.argv[1]
patients = [json.loads(l) for l in open(f"{tmp}/manifest.jsonl")]
with open(f"{tmp}/optout.dat", "w") as cleared, open(f"{tmp}/nhs.in", "w") as numbers:
    for p in patients:
        for n in {p["nhs_number"], p["merged_nhs_number"]}:
            cleared.write(n + ",\r\n")
            numbers.write(n + "\n")
PY
"$PS_BIN" run -c "$PS_TMP/config.yaml" --exit-when-idle 3000 > "$PS_TMP/run.log"
"$PS_BIN" consume -b "$PS_BOOTSTRAP" --raw commissioning.events > "$PS_TMP/commissioning.raw"
# Every generated event is after the keyring's only not_before: the key in use now applies.
"$PS_BIN" pseudonymise -c "$PS_TMP/config.yaml" --domain commissioning < "$PS_TMP/nhs.in" \
    > "$PS_TMP/nhs.tokens"
if python3 - "$PS_TMP" <<'PY'
import json, sys
tmp = sys.argv[1]
keys = {bytes.fromhex(json.loads(l)["key_hex"]).decode()
        for l in open(f"{tmp}/commissioning.raw") if l.strip()}
tokens = {t for t in open(f"{tmp}/nhs.tokens").read().split("\n") if t}
unexplained = keys - tokens
print(f"  {len(keys)} patients on commissioning.events, {len(tokens)} tokens from pseudonymise, "
      f"{len(unexplained)} stream keys not among them")
sys.exit(0 if len(keys) >= 50 and not unexplained else 1)
PY
then ok "pseudonymise: every key on commissioning.events is a manifest number's token"
else bad "pseudonymise: every key on commissioning.events is a manifest number's token"
fi

# ------------------------------------------------------------ reidentify
rc=0
"$PS_BIN" reidentify -b "$PS_BOOTSTRAP" --escrow-topic pseudostream.no-escrow \
    --secret-key "$kr/authority.key" 1.azmjrzwnzcbxkehom6whk6y2u2tfu7ic \
    > "$PS_TMP/reid.out" 2> "$PS_TMP/reid.err" || rc=$?
check "reidentify: no record is exit 1 and says so" \
    [ "$rc" -eq 1 -a ! -s "$PS_TMP/reid.out" ] 
check "reidentify: names the token without a record" grep -q 'no escrow record' "$PS_TMP/reid.err"
chmod 644 "$kr/authority.key"
rc=0
"$PS_BIN" reidentify -b "$PS_BOOTSTRAP" --escrow-topic pseudostream.no-escrow \
    --secret-key "$kr/authority.key" 1.azmjrzwnzcbxkehom6whk6y2u2tfu7ic \
    > /dev/null 2> "$PS_TMP/reid.err" || rc=$?
check "reidentify: a secret key others may read is refused (exit 2)" \
    [ "$rc" -eq 2 -a "$(grep -c 'chmod 600' "$PS_TMP/reid.err")" = 1 ]

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
