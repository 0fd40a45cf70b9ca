#!/usr/bin/env python3
"""Checks the topics of an end-to-end run (see test_end_to_end.sh).

Usage: check_end_to_end.py TMPDIR VALID_COUNT MALFORMED_COUNT

Prints one line per check and 'N passed, N failed'; exits non-zero on a failure.
"""
import json
import os
import sys
from collections import defaultdict

tmp, valid_count, malformed_count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
SECONDARY = ["commissioning.events", "research.events"]
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + detail))


def lines(name):
    with open(os.path.join(tmp, name)) as f:
        return [json.loads(line) for line in f if line.strip()]


def nhs_valid(text):
    if text is None or len(text) != 10 or not text.isdigit():
        return False
    total = sum(int(text[i]) * (10 - i) for i in range(9))
    check_digit = 11 - total % 11
    check_digit = 0 if check_digit == 11 else check_digit
    return check_digit != 10 and check_digit == int(text[9])


manifest = lines("manifest.jsonl")
raw = {t: lines(t + ".raw.jsonl") for t in
       ["hospital.events", "ward.dashboard", "pseudostream.dead-letter"] + SECONDARY}
decoded = {t: lines(t + ".jsonl") for t in
           ["hospital.events", "ward.dashboard", "pseudostream.dead-letter"] + SECONDARY}

# 1. Every generated identifier, searched in every byte of secondary-use topics.
needles = set()
for p in manifest:
    for field in ["nhs_number", "nhs_number_spaced", "invalid_nhs_number", "family", "given",
                  "postcode", "address_line", "phone", "landline", "email", "local_id",
                  "fhir_id", "next_of_kin_family", "next_of_kin_phone", "merged_nhs_number",
                  "merged_local_id", "birth_date"]:
        needles.add(p[field].encode())
for topic in SECONDARY:
    blobs = []
    for m in raw[topic]:
        blobs.append(bytes.fromhex(m["key_hex"]))
        blobs.append(bytes.fromhex(m["value_hex"]))
        for name, value in m["headers"]:
            blobs.append(name.encode())
            blobs.append(bytes.fromhex(value))
    joined = b"\x00".join(blobs)
    text = "\n".join(json.dumps(m["value"]) for m in decoded[topic] if "value" in m).encode()
    leaks = sorted(n.decode() for n in needles if n in joined or n in text)
    check(f"{topic}: no generated identifier in keys, values, headers or decoded values",
          not leaks, f"{len(leaks)} found, e.g. {leaks[:3]}")
    headers = {name for m in raw[topic] for name, _ in m["headers"]}
    check(f"{topic}: only pseudostream headers", all(h.startswith("pseudostream.") for h in headers),
          str(headers))

# 2. The run's log lines carry no identifier either.
with open(os.path.join(tmp, "run.log"), "rb") as f:
    log = f.read()
leaks = sorted(n.decode() for n in needles if n in log)
check("run log: no generated identifier", not leaks, str(leaks[:3]))

# 3. Input accounting: every input is on the ward topic or the dead-letter topic.
inputs = decoded["hospital.events"]
good = [m for m in inputs if "value" in m]
bad = [m for m in inputs if "value" not in m]
check("input: valid and malformed counts as generated",
      len(good) == valid_count and len(bad) == malformed_count, f"{len(good)} / {len(bad)}")


def source_of(m):
    return m["headers"].get("pseudostream.source")


ward_sources = {source_of(m) for m in decoded["ward.dashboard"]}
dlq = decoded["pseudostream.dead-letter"]
dlq_sources = {source_of(m) for m in dlq}
input_source = {f"hospital.events/{m['partition']}/{m['offset']}": m for m in inputs}
check("ward: every valid event, once", len(decoded["ward.dashboard"]) == valid_count and
      ward_sources == {s for s, m in input_source.items() if "value" in m},
      f"{len(decoded['ward.dashboard'])} records")
check("dead letter: every malformed event, once", len(dlq) == malformed_count and
      dlq_sources == {s for s, m in input_source.items() if "value" not in m}, f"{len(dlq)}")
reasons = defaultdict(int)
for m in dlq:
    reasons[m["headers"].get("pseudostream.reason")] += 1
check("dead letter: every record has a reason", None not in reasons and len(reasons) >= 3,
      str(dict(reasons)))


def subject_nhs(event):
    value = event["value"]
    return value["pid"]["nhs_number"] if "pid" in value else value["patient"]["nhsNumber"]


# 4. Ward keeps identifiers intact.
ward_ok = all(subject_nhs(m) == subject_nhs(input_source[source_of(m)])
              and m["key"] == input_source[source_of(m)]["key"]
              for m in decoded["ward.dashboard"])
check("ward: identifiers and input key intact", ward_ok)

# 5. Secondary use: exactly the events with a valid NHS number; one pseudonym per
#    patient per domain, different across domains and patients.
expect = {s for s, m in input_source.items() if "value" in m and nhs_valid(subject_nhs(m))}
tokens = {}
for topic in SECONDARY:
    got = {source_of(m) for m in decoded[topic]}
    check(f"{topic}: every event with a valid NHS number, nothing else",
          got == expect and len(decoded[topic]) == len(expect),
          f"{len(got)} vs {len(expect)} expected")
    per_patient = defaultdict(set)
    for m in decoded[topic]:
        per_patient[subject_nhs(input_source[source_of(m)])].add(m["key"])
        value = m["value"]
        field = value["pid"]["nhs_number"] if "pid" in value else value["patient"]["nhsNumber"]
        if field != m["key"]:
            per_patient["mismatch"].add(m["key"])
    check(f"{topic}: key is the subject's pseudonym field", "mismatch" not in per_patient)
    check(f"{topic}: one pseudonym per patient",
          all(len(v) == 1 for v in per_patient.values()))
    flat = {k: next(iter(v)) for k, v in per_patient.items()}
    check(f"{topic}: different patients, different pseudonyms",
          len(set(flat.values())) == len(flat))
    tokens[topic] = flat
common = set(tokens[SECONDARY[0]]) & set(tokens[SECONDARY[1]])
check("pseudonyms differ across domains",
      common and all(tokens[SECONDARY[0]][n] != tokens[SECONDARY[1]][n] for n in common))

# 6. Commissioning: birth year, postcode district; no names or addresses at all.
sample = next(m["value"] for m in decoded["commissioning.events"] if "pid" in m["value"])
check("commissioning: birth year only", isinstance(sample["pid"].get("date_of_birth"), int))
check("commissioning: no name, address lines or local ids in its schema",
      not {"name", "local_identifiers", "telecom"} & set(sample["pid"]))
districts = {a["postcode"] for m in decoded["commissioning.events"] if "pid" in m["value"]
             for a in m["value"]["pid"].get("address", [])}
check("commissioning: postcodes are districts", districts and
      all(" " not in d and len(d) <= 4 for d in districts), str(sorted(districts)[:5]))

failed = results.count(False)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
