#!/usr/bin/env python3
"""The .deb's systemd unit is hardened (the directives docs/OPERATIONS.md
promises), and the configurations shipped for the .deb and for compose load
with the binary (--dump-config), so a key the parser refuses cannot ship.

Usage: test_systemd.py PSEUDOSTREAM_BINARY
"""
import configparser
import os
import subprocess
import sys

SRC = os.environ.get("PS_SOURCE_DIR", os.getcwd())
BINARY = sys.argv[1]
failures = []

unit = configparser.ConfigParser(strict=False, interpolation=None)
unit.optionxform = str
unit.read(os.path.join(SRC, "deploy/systemd/pseudostream.service"))
svc = unit["Service"]
required = {
    "DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
    "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
    "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes", "MemoryDenyWriteExecute": "yes",
    "RestartPreventExitStatus": "2",
}
for key, value in required.items():
    if svc.get(key) != value:
        failures.append(f"pseudostream.service: {key}={svc.get(key)!r}, want {value!r}")
if "keyring.yaml:/etc/pseudostream/keyring.yaml" not in svc.get("LoadCredential", ""):
    failures.append("pseudostream.service: the keyring is not a credential")
if not svc.get("ExecStart", "").startswith("/usr/bin/pseudostream run -c /etc/pseudostream/"):
    failures.append("pseudostream.service: ExecStart")

for conf in ["deploy/systemd/config.yaml", "deploy/compose/config.yaml"]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSEUDOSTREAM_")}
    r = subprocess.run([BINARY, "run", "-c", os.path.join(SRC, conf), "--dump-config"],
                       capture_output=True, text=True, env=env, check=False)
    if r.returncode != 0:
        failures.append(f"{conf} does not load: {r.stderr.strip()}")
    elif "metrics:\n  listen:" not in r.stdout:
        failures.append(f"{conf}: no metrics.listen")

for f in failures:
    print("FAIL:", f)
if failures:
    sys.exit(1)
print("systemd: unit hardened; shipped configurations load")
