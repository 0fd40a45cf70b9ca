#!/usr/bin/env python3
"""docker-compose.yml without Docker: it parses, names every service the docs
promise, pins every image tag, and gives each filter replica its own stable
Kafka identity, a health check on /healthz and the metrics port.

Usage: test_compose.py [PSEUDOSTREAM_BINARY] (the binary is not used). Exit 77
(skip) when python3-yaml is missing.
"""
import os
import re
import sys

try:
    import yaml
except ImportError:
    print("SKIP: python3-yaml is not installed (scripts/deps.sh installs it)")
    sys.exit(77)

SRC = os.environ.get("PS_SOURCE_DIR", os.getcwd())
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


with open(os.path.join(SRC, "docker-compose.yml")) as f:
    compose = yaml.safe_load(f)  # anchors and merge keys resolved as Docker would
services = compose.get("services", {})
for name in ["kafka", "schema-registry", "generator", "consume", "filter-0", "filter-1", "filter-2"]:
    check(name in services, f"service {name} missing")

for name, svc in services.items():
    image = svc.get("image")
    check(image is not None or "build" in svc, f"{name}: neither image nor build")
    if image:
        # A tag, not latest, and no floating major-only tag.
        m = re.fullmatch(r"[\w./-]+(?::[\w][\w.-]*)?(@sha256:[0-9a-f]{64})?", image)
        check(m is not None, f"{name}: image '{image}' does not parse")
        tag = image.split("@")[0].rpartition(":")[2] if ":" in image.split("@")[0] else ""
        check(tag not in ("", "latest"), f"{name}: image '{image}' is not pinned to a tag")
        check("@sha256:" in image or re.search(r"\d+\.\d+", tag),
              f"{name}: image '{image}' tag is not a version")

filters = {n: s for n, s in services.items() if n.startswith("filter-")}
check(len(filters) == 3, f"{len(filters)} filter replicas, not 3")
ids = set()
host_ports = set()
for name, svc in filters.items():
    cmd = svc.get("command", [])
    txn = [cmd[i + 1] for i, a in enumerate(cmd[:-1]) if a == "-X" and
           cmd[i + 1].startswith("transactional.id=")]
    gid = [cmd[i + 1] for i, a in enumerate(cmd[:-1]) if a == "-X" and
           cmd[i + 1].startswith("group.instance.id=")]
    check(len(txn) == 1 and len(gid) == 1, f"{name}: transactional.id / group.instance.id")
    ids.update(txn)
    check(svc.get("read_only") is True, f"{name}: not read_only")
    check(svc.get("cap_drop") == ["ALL"], f"{name}: capabilities not dropped")
    check("no-new-privileges:true" in svc.get("security_opt", []), f"{name}: no-new-privileges")
    hc = svc.get("healthcheck", {})
    check("/healthz" in " ".join(hc.get("test", [])), f"{name}: no health check on /healthz")
    ports = svc.get("ports", [])
    check(len(ports) == 1 and str(ports[0]).endswith(":9464"), f"{name}: metrics port")
    host_ports.update(str(p).split(":")[0] for p in ports)
check(len(ids) == 3, "filter replicas share a transactional.id")
check(len(host_ports) == 3, "filter replicas share a host port")

with open(os.path.join(SRC, "deploy/compose/config.yaml")) as f:
    conf = yaml.safe_load(f)
check(conf.get("metrics", {}).get("listen", "").endswith(":9464"),
      "deploy/compose/config.yaml: metrics.listen is not port 9464")

for f in failures:
    print("FAIL:", f)
if failures:
    sys.exit(1)
print(f"compose: {len(services)} services checked")
