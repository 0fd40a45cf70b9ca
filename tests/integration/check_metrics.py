#!/usr/bin/env python3
"""Scrapes the operations port of a running `pseudostream run` (test_metrics.sh).

Usage: check_metrics.py PORT EXPECTED_EVENTS MANIFEST
"""
import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict

port, expected, manifest = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
base = f"http://127.0.0.1:{port}"
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)))


def get(path):
    try:
        with urllib.request.urlopen(base + path, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


def scrape():
    series = {}
    for line in get("/metrics")[1].splitlines():
        m = re.match(r'^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$', line)
        if m:
            labels = dict(re.findall(r'([a-z_]+)="([^"]*)"', m.group(2) or ""))
            series[(m.group(1), tuple(sorted(labels.items())))] = float(m.group(3))
    return series


def total(series, name, **want):
    return sum(v for (n, labels), v in series.items()
               if n == name and all(dict(labels).get(k) == w for k, w in want.items()))


statuses = []
deadline = time.time() + 60
while time.time() < deadline:
    ready, _ = get("/readyz")
    statuses.append(ready)
    if ready == 200:
        break
    time.sleep(0.2)
check("/readyz answers 503 before assignment, then 200", 503 in statuses and statuses[-1] == 200,
      statuses[-5:])
check("/healthz is live while the loop ticks", get("/healthz")[0] == 200)

deadline = time.time() + 120
series = {}
while time.time() < deadline:
    series = scrape()
    if total(series, "pseudostream_events_consumed_total") >= expected:
        time.sleep(1.5)  # let the last batch commit and the gauges settle
        series = scrape()
        break
    time.sleep(0.5)
consumed = total(series, "pseudostream_events_consumed_total")
dead = total(series, "pseudostream_events_dead_lettered_total")
check("every event consumed", consumed == expected, consumed)
destinations = {dict(l).get("destination") for (n, l) in series
                if n == "pseudostream_events_produced_total"}
check("three destinations reported", len(destinations) == 3, destinations)
for d in sorted(destinations):
    produced = total(series, "pseudostream_events_produced_total", destination=d)
    withheld = total(series, "pseudostream_events_withheld_total", destination=d)
    check(f"{d}: consumed = produced + withheld + dead-lettered",
          consumed == produced + withheld + dead, (consumed, produced, withheld, dead))
reasons = {dict(l).get("reason") for (n, l) in series if n == "pseudostream_events_withheld_total"}
check("withheld by reason: opt-out and invalid NHS numbers show",
      {"opt_out", "nhs_number_invalid"} <= reasons, reasons)
check("transactions committed", total(series, "pseudostream_transactions_committed_total") > 0)
check("lag back to zero", total(series, "pseudostream_consumer_lag") == 0,
      total(series, "pseudostream_consumer_lag"))
check("assigned partitions", total(series, "pseudostream_assigned_partitions") == 12)

text = get("/metrics")[1]
needles = set()
for line in open(manifest):
    p = json.loads(line)
    needles.update(p[k] for k in ("nhs_number", "family", "given", "postcode", "local_id"))
leaks = [n for n in needles if n in text]
check("no identifier anywhere in the metrics text", not leaks, leaks[:3])

failed = results.count(False)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
