#!/usr/bin/env python3
"""deploy/grafana/pseudostream.json is valid JSON, every panel queries a
pseudostream metric through the datasource variable, and every metric the
registry exports (filter/ops/ps_metrics.c) is shown on some panel."""
import json
import os
import re
import sys

SRC = os.environ.get("PS_SOURCE_DIR", os.getcwd())
dash = json.load(open(os.path.join(SRC, "deploy/grafana/pseudostream.json")))
source = open(os.path.join(SRC, "filter/ops/ps_metrics.c")).read()
exported = set(re.findall(r'"(pseudostream_[a-z_]+)', source))
exprs = " ".join(t["expr"] for p in dash["panels"] for t in p.get("targets", []))
failures = []
for name in sorted(exported):
    if name not in exprs:
        failures.append(f"metric {name} is on no panel")
ids = [p["id"] for p in dash["panels"]]
if len(ids) != len(set(ids)):
    failures.append("panel ids repeat")
for p in dash["panels"]:
    if p["type"] != "row" and p["datasource"]["uid"] != "${datasource}":
        failures.append(f"panel {p['title']}: fixed datasource")
for f in failures:
    print("FAIL:", f)
if failures:
    sys.exit(1)
print(f"grafana: {len(dash['panels'])} panels, {len(exported)} metrics shown")
