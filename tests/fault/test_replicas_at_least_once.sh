#!/usr/bin/env bash
# Replica kill and stop in at-least-once mode (see replicas.sh).
PS_FAULT_MODE=at_least_once
source "$(dirname "$0")/replicas.sh"
