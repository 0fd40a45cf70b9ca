#!/usr/bin/env bash
# Replica kill and stop in transactional mode (see replicas.sh).
PS_FAULT_MODE=transactional
source "$(dirname "$0")/replicas.sh"
