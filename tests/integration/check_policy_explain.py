#!/usr/bin/env python3
"""Checks `policy explain` against the topics of a run (see test_policy_explain.sh).

Usage: check_policy_explain.py TMPDIR EXPLAIN.md

TMPDIR holds hospital.events.jsonl and one DESTINATION_TOPIC.jsonl per
destination, as `pseudostream consume -c CONFIG` prints them. Every record of a
destination topic is matched to its input event by the source of its
pseudostream.lineage header, and every leaf field of the explain table is
checked against it:

  dropped                   the field never appears in the destination's records
  clear                     the value equals the input event's
  pseudonym (DOMAIN)        ^[0-9]+\\.[a-z2-7]{32}$
  generalised to year       an integer equal to the input's year
  generalised to year_month the input's "YYYY-MM"
  generalised to age band   ^([0-9]+-[0-9]+|90\\+)$, and the band of the age at the event
  generalised to district   the input postcode's outward code
  generalised to sector     the outward code and the inward digit
  date-shifted within ±N    a whole number of days within the window, the same
                            shift for every event of a patient (record key)
  redacted                  "[REDACTED]"

A null input value must stay null. Every field a record carries must be a row
of the table that is not "dropped" (nothing leaves unexplained).

Prints one line per check and 'N passed, N failed'; exits non-zero on a failure.
"""
import datetime
import glob
import json
import os
import re
import sys
from collections import defaultdict

tmp, explain_path = sys.argv[1], sys.argv[2]
src = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
results = []
TOKEN = re.compile(r"^[0-9]+\.[a-z2-7]{32}$")
AGE_BAND = re.compile(r"^([0-9]+-[0-9]+|90\+)$")
ABSENT = object()


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)))


def lines(name):
    with open(os.path.join(tmp, name)) as f:
        return [json.loads(line) for line in f if line.strip()]


# --- the explain document --------------------------------------------------
dests = {}
cur = schema = None
with open(explain_path, encoding="utf-8") as f:
    for line in f:
        line = line.rstrip("\n")
        m = re.match(r"^## Destination `([^`]+)`", line)
        if m:
            cur = dests.setdefault(m.group(1), {"topic": None, "tables": {}})
            schema = None
            continue
        m = re.match(r"^- Topic: `([^`]+)`", line)
        if m and cur is not None:
            cur["topic"] = m.group(1)
            continue
        m = re.match(r"^### Fields of `([^`]+)`", line)
        if m and cur is not None:
            schema = cur["tables"].setdefault(m.group(1), {})
            continue
        m = re.match(r"^\| `([^`]+)` \|([^|]*)\|([^|]*)\|(.*)\|$", line)
        if m and schema is not None:
            schema[m.group(1)] = (m.group(2).strip(), m.group(3).strip(), m.group(4).strip())

check("explain: three destinations, each with a topic and a table per input schema",
      len(dests) == 3 and all(d["topic"] and len(d["tables"]) == 2 for d in dests.values()),
      {n: (d["topic"], list(d["tables"])) for n, d in dests.items()})

# Where each schema keeps its event time (the age band is the age at that time).
event_time_path = {}
for avsc in glob.glob(os.path.join(src, "schemas", "*", "*.avsc")):
    with open(avsc) as f:
        s = json.load(f)
    if "pseudostream:event_time" in s:
        event_time_path[f"{s.get('namespace')}.{s['name']}"] = s["pseudostream:event_time"]


# --- values at a path --------------------------------------------------------
def collect(node, comps):
    """Every value at the path below node; ABSENT where the field is missing."""
    if not comps:
        return [node]
    if node is None:
        return []  # a null optional record has nothing below it
    c = comps[0]
    array = c.endswith("[]")
    name = c[:-2] if array else c
    if not isinstance(node, dict) or name not in node:
        return [ABSENT]
    value = node[name]
    if not array:
        return collect(value, comps[1:])
    out = []
    for item in value or []:
        out += collect(item, comps[1:])
    return out


def leaf_paths(node, prefix=""):
    """Paths of every non-null scalar in a decoded record, as the table writes them."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from leaf_paths(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(node, list):
        for item in node:
            yield from leaf_paths(item, prefix + "[]")
    elif node is not None:
        yield prefix


def when(text):
    if len(text) == 10:
        return datetime.datetime.fromisoformat(text + "T00:00:00+00:00")
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def age_band(birth, at):
    b, t = when(birth).date(), when(at).date()
    age = t.year - b.year - ((t.month, t.day) < (b.month, b.day))
    return "90+" if age >= 90 else f"{age // 5 * 5}-{age // 5 * 5 + 4}"


def outward_inward(postcode):
    s = postcode.replace(" ", "").upper()
    return s[:-3], s[-3:]


def source_of(m):
    return m.get("source")  # consume parses it from pseudostream.lineage


# --- the topics --------------------------------------------------------------
inputs = {f"hospital.events/{m['partition']}/{m['offset']}": m
          for m in lines("hospital.events.jsonl") if "value" in m}
check("input: events consumed", len(inputs) > 1000, len(inputs))

checked = defaultdict(int)   # receives kind -> values compared (non-null)
for name, dest in sorted(dests.items()):
    records = lines(dest["topic"] + ".jsonl")
    undecoded = [m for m in records if "value" not in m]
    check(f"{name}: records consumed and decoded", records and not undecoded,
          f"{len(records)} records, {len(undecoded)} undecodable")
    failures = defaultdict(list)
    unexplained = set()
    shifts = defaultdict(set)
    for rec in records:
        if "value" not in rec:
            continue
        ev = inputs.get(source_of(rec))
        if ev is None:
            failures["source header names an input event"].append(source_of(rec))
            continue
        table = dest["tables"].get(ev["schema"])
        if table is None:
            failures["input schema has a table"].append(ev["schema"])
            continue
        out, inp = rec["value"], ev["value"]
        for path in set(leaf_paths(out)):
            if path not in table or table[path][1] == "dropped":
                unexplained.add(path)
        for path, (tags, receives, decided) in table.items():
            comps = path.split(".")
            got = collect(out, comps)
            if receives == "dropped":
                if any(v is not ABSENT for v in got):
                    failures[f"{path}: dropped, yet present"].append(source_of(rec))
                continue
            want = collect(inp, comps)
            if len(got) != len(want) or any(v is ABSENT for v in got):
                failures[f"{path}: {receives}: not in the record"].append(source_of(rec))
                continue
            for g, w in zip(got, want):
                if w is None:
                    if g is not None:
                        failures[f"{path}: null input, non-null output"].append(g)
                    continue
                kind = receives.split(" (")[0].split(" within")[0]
                checked[kind] += 1
                if receives == "clear":
                    ok = g == w
                elif receives.startswith("pseudonym"):
                    ok = isinstance(g, str) and TOKEN.match(g) and g != w
                elif receives == "generalised to year":
                    ok = isinstance(g, int) and g == when(w).year
                elif receives == "generalised to year_month":
                    ok = g == w[:7]
                elif receives == "generalised to age band":
                    at = collect(inp, event_time_path[ev["schema"]].split("."))[0]
                    ok = isinstance(g, str) and AGE_BAND.match(g) and g == age_band(w, at)
                elif receives == "generalised to district":
                    ok = g == outward_inward(w)[0]
                elif receives == "generalised to sector":
                    o, i = outward_inward(w)
                    ok = g == f"{o} {i[0]}"
                elif receives.startswith("date-shifted within"):
                    window = int(re.search(r"(\d+) days", receives).group(1))
                    delta = when(g) - when(w)
                    ok = (delta.seconds == 0 and delta.microseconds == 0 and
                          1 <= abs(delta.days) <= window)
                    shifts[rec["key"]].add(delta.days)
                elif receives == "redacted":
                    ok = g == "[REDACTED]"
                else:
                    ok = False
                if not ok:
                    failures[f"{path}: {receives}"].append(f"{w!r} -> {g!r}")
    check(f"{name}: every field as the table says",
          not failures, {k: v[:3] for k, v in list(failures.items())[:5]})
    check(f"{name}: no field the table does not name (or says is dropped)",
          not unexplained, sorted(unexplained)[:10])
    if shifts:
        multi = {k: v for k, v in shifts.items() if len(v) != 1}
        check(f"{name}: one date shift per patient, for every event ({len(shifts)} patients)",
              not multi, list(multi.items())[:3])
        check(f"{name}: patients have different shifts",
              len({next(iter(v)) for v in shifts.values()}) > 1)

kinds = ["clear", "pseudonym", "generalised to year", "generalised to age band",
         "generalised to district", "date-shifted"]
check("every kind of treatment in the demo was compared on real values",
      all(checked[k] > 20 for k in kinds), dict(checked))

failed = results.count(False)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
