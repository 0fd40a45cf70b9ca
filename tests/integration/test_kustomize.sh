#!/usr/bin/env bash
# Renders the Kubernetes base and the production overlay with `kubectl kustomize`
# (offline) and checks what docs/OPERATIONS.md promises: the restricted Pod
# Security Standard, probes, secret mounts, stable per-pod Kafka identities and
# the KEDA cap at the partition count. Also loads the rendered service
# configurations with the binary, so that a key the config parser refuses
# cannot ship. Skips (77) when kubectl or python3-yaml is missing.
set -euo pipefail
BIN=${1:?usage: test_kustomize.sh PSEUDOSTREAM_BINARY}
SRC=${PS_SOURCE_DIR:-$(pwd)}
if ! command -v kubectl > /dev/null; then
    echo "SKIP: kubectl is not installed (it is not a Debian package; see docs/OPERATIONS.md)"
    exit 77
fi
if ! python3 -c 'import yaml' 2> /dev/null; then
    echo "SKIP: python3-yaml is not installed (scripts/deps.sh installs it)"
    exit 77
fi
TMP=$(mktemp -d /tmp/pseudostream-kustomize-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
kubectl kustomize "$SRC/deploy/kubernetes/base" > "$TMP/base.yaml"
kubectl kustomize "$SRC/deploy/kubernetes/overlays/production" > "$TMP/production.yaml"
python3 "$SRC/tests/integration/check_kustomize.py" "$TMP/base.yaml" base 1 "$TMP"
python3 "$SRC/tests/integration/check_kustomize.py" "$TMP/production.yaml" production 3 "$TMP"

# The configurations the ConfigMaps carry must load (secret files stand in).
printf 'artificial-password\n' > "$TMP/password"
for variant in base production; do
    sed "s#/run/secrets/kafka/password#$TMP/password#" "$TMP/$variant.config.yaml" \
        > "$TMP/$variant.checked.yaml"
    PSEUDOSTREAM_KAFKA_TRANSACTIONAL_ID=pseudostream-0 \
        "$BIN" run -c "$TMP/$variant.checked.yaml" --dump-config > "$TMP/$variant.dump"
    if grep -q artificial-password "$TMP/$variant.dump"; then
        echo "FAIL: $variant: --dump-config shows the password"
        exit 1
    fi
done
echo "kustomize: base and production render and pass every check"
