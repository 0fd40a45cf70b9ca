#!/usr/bin/env bash
# Installs the Debian (bookworm) packages pseudostream builds and tests with,
# when any is missing. Needs root or sudo.
set -euo pipefail
packages=(build-essential cmake pkg-config python3
          librdkafka-dev libavro-dev libsodium-dev libcyaml-dev libyaml-dev
          libjansson-dev libcmocka-dev libmicrohttpd-dev python3-yaml)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" > /dev/null
fi
