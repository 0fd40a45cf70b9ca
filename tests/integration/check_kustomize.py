#!/usr/bin/env python3
"""Checks one `kubectl kustomize` rendering: check_kustomize.py FILE NAME REPLICAS OUTDIR.

Writes the ConfigMap's config.yaml to OUTDIR/NAME.config.yaml for the caller to
load with the binary.
"""
import sys

import yaml

PARTITIONS = 12  # hospital.events: KEDA must never scale past it


def fail(msg):
    print(f"FAIL: {NAME}: {msg}")
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def restricted(ctx, where):
    """The container-level half of the "restricted" Pod Security Standard."""
    check(ctx is not None, f"{where}: no securityContext")
    check(ctx.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation")
    check(ctx.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
    check(ctx.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities.drop ALL")
    check("add" not in ctx.get("capabilities", {}), f"{where}: capabilities added")
    check(ctx.get("privileged") in (None, False), f"{where}: privileged")
    check(ctx.get("runAsUser") != 0, f"{where}: runs as root")


PATH, NAME, REPLICAS, OUTDIR = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
docs = [d for d in yaml.safe_load_all(open(PATH)) if d]
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)
for kind in ["StatefulSet", "Service", "ServiceMonitor", "NetworkPolicy", "ScaledObject",
             "ConfigMap", "ServiceAccount", "PodDisruptionBudget", "PrometheusRule"]:
    check(kind in by_kind, f"no {kind}")
check("Deployment" not in by_kind, "a Deployment: pod names would not be stable")

sts = by_kind["StatefulSet"][0]
check(sts["spec"]["replicas"] == REPLICAS, f"replicas {sts['spec']['replicas']} != {REPLICAS}")
pod = sts["spec"]["template"]["spec"]
psc = pod.get("securityContext", {})
check(psc.get("runAsNonRoot") is True, "pod runAsNonRoot")
check(psc.get("runAsUser", 0) != 0, "pod runAsUser is root")
check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "pod seccompProfile")
check(pod.get("automountServiceAccountToken") is False, "service account token mounted")
check(not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC"),
      "host namespaces")
for c in pod.get("initContainers", []) + pod["containers"]:
    restricted(c.get("securityContext"), c["name"])
for v in pod["volumes"]:
    check("hostPath" not in v, f"hostPath volume {v['name']}")

main = next(c for c in pod["containers"] if c["name"] == "pseudostream")
env = {e["name"]: e for e in main.get("env", [])}
for var in ["PSEUDOSTREAM_KAFKA_TRANSACTIONAL_ID", "PSEUDOSTREAM_KAFKA_PROPERTIES_GROUP_INSTANCE_ID"]:
    check(var in env, f"{var} not set")
    ref = env[var].get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    check(ref == "metadata.name", f"{var} is not the pod name")

port = next(p for p in main["ports"] if p["name"] == "metrics")
check(port["containerPort"] == 9464, "metrics port")
probes = {k: main.get(k) for k in ["livenessProbe", "readinessProbe", "startupProbe"]}
check(probes["livenessProbe"] and probes["livenessProbe"]["httpGet"]["path"] == "/healthz",
      "liveness probe on /healthz")
check(probes["readinessProbe"] and probes["readinessProbe"]["httpGet"]["path"] == "/readyz",
      "readiness probe on /readyz")
check(probes["startupProbe"] and probes["startupProbe"]["httpGet"]["path"] == "/healthz",
      "startup probe on /healthz")

# Secrets come from Kubernetes Secrets; the keyring reaches the filter through
# a memory-backed copy made by the init container (mode 0600).
volumes = {v["name"]: v for v in pod["volumes"]}
secret_names = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
check("pseudostream-keyring" in secret_names, "keyring Secret not mounted")
check("pseudostream-kafka" in secret_names, "Kafka credentials Secret not mounted")
mounts = {m["name"]: m for m in main["volumeMounts"]}
for name, m in mounts.items():
    check(m.get("readOnly") is True, f"mount {name} is writable")
check(volumes["keyring"].get("emptyDir", {}).get("medium") == "Memory", "keyring not in memory")
init = pod["initContainers"][0]
check("keyring-secret" in {m["name"] for m in init["volumeMounts"]}, "init container: secret")
check("0600" in init["command"], "init container: keyring copy is not mode 0600")

svc = by_kind["Service"][0]
check(any(p["name"] == "metrics" for p in svc["spec"]["ports"]), "Service: metrics port")
check(sts["spec"]["serviceName"] == svc["metadata"]["name"], "serviceName is not the Service")
sm = by_kind["ServiceMonitor"][0]
check(sm["spec"]["endpoints"][0]["port"] == "metrics", "ServiceMonitor port")
check(sm["spec"]["endpoints"][0]["path"] == "/metrics", "ServiceMonitor path")
np = by_kind["NetworkPolicy"][0]
check(set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"}, "NetworkPolicy types")

so = by_kind["ScaledObject"][0]
check(so["spec"]["scaleTargetRef"]["kind"] == "StatefulSet", "KEDA target is not the StatefulSet")
check(so["spec"]["maxReplicaCount"] == PARTITIONS, "KEDA cap is not the partition count")
check(so["spec"]["minReplicaCount"] == REPLICAS, "KEDA minimum is not the replica count")
trig = so["spec"]["triggers"][0]
check(trig["type"] == "kafka", "KEDA trigger type")
check(trig["metadata"].get("allowIdleConsumers") == "false", "KEDA allowIdleConsumers")
check(trig["metadata"]["consumerGroup"] == "pseudostream", "KEDA consumer group")

alerts = [r for g in by_kind["PrometheusRule"][0]["spec"]["groups"] for r in g["rules"]]
for a in alerts:
    check(a["expr"].count("pseudostream_") + a["expr"].count("up{") > 0, f"alert {a['alert']}")
    check("summary" in a.get("annotations", {}), f"alert {a['alert']}: no summary")

cm = next(c for c in by_kind["ConfigMap"] if c["metadata"]["name"].startswith("pseudostream-config"))
check(any(v.get("configMap", {}).get("name") == cm["metadata"]["name"] for v in pod["volumes"]),
      "the ConfigMap the pod mounts is not the generated one")
with open(f"{OUTDIR}/{NAME}.config.yaml", "w") as out:
    out.write(cm["data"]["config.yaml"])
print(f"{NAME}: {len(docs)} objects checked")
