# Shared set-up for integration tests: an embedded broker, a throw-away
# keyring and a service configuration in a temporary folder.
# Usage: source lib.sh; ps_setup BINARY; ...; (ps_cleanup runs on exit)

ps_setup() {
    PS_BIN=$1
    PS_SRC=${PS_SOURCE_DIR:-$(pwd)}
    PS_TMP=$(mktemp -d /tmp/pseudostream-it-XXXXXX)
    trap ps_cleanup EXIT
    # PS_BROKER_ARGS: extra broker options (the fault tests pass --fault-file).
    "$PS_BIN" broker ${PS_BROKER_ARGS:-} --topic hospital.events:12 --topic ward.dashboard:6 \
        --topic commissioning.events:6 --topic research.events:6 \
        --topic pseudostream.dead-letter:6 --topic pseudostream.audit:6 \
        --topic pseudostream.opt-out:1 --topic pseudostream.escrow:6 \
        --topic case-finding.events:6 --bootstrap-file "$PS_TMP/bootstrap" \
        > "$PS_TMP/broker.out" 2> "$PS_TMP/broker.log" &
    PS_BROKER_PID=$!
    for _ in $(seq 1 100); do
        [ -s "$PS_TMP/bootstrap" ] && break
        sleep 0.1
    done
    PS_BOOTSTRAP=$(cat "$PS_TMP/bootstrap")
    [ -n "$PS_BOOTSTRAP" ] || { echo "broker did not start"; exit 1; }
    # A fixed, artificial secret: the test may recompute pseudonyms from it.
    PS_SECRET="AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    cat > "$PS_TMP/keyring.yaml" <<KEYRING
keys:
  - id: 1
    not_before: "2020-01-01T00:00:00Z"
    secret: "$PS_SECRET"
KEYRING
    chmod 600 "$PS_TMP/keyring.yaml"
    # Until a test writes its own, an empty opt-out list that is fresh: nobody
    # is cleared, so secondary use receives nothing (fail closed).
    : > "$PS_TMP/optout.dat"
    PS_OPTOUT_AS_OF=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    ps_write_config "$PS_SRC/policy/demo.yaml"
}

# ps_write_config POLICY: (re)writes $PS_TMP/config.yaml using POLICY, the
# opt-out list $PS_TMP/optout.dat (cleared form) dated $PS_OPTOUT_AS_OF.
ps_write_config() {
    cat > "$PS_TMP/config.yaml" <<CONFIG
kafka:
  bootstrap_servers: "$PS_BOOTSTRAP"
  group_id: pseudostream-it
  transactional_id: pseudostream-it-0
  properties:
    session.timeout.ms: "6000"
input:
  topics: [hospital.events]
dead_letter_topic: pseudostream.dead-letter
audit_topic: pseudostream.audit
opt_out:
  file: "$PS_TMP/optout.dat"
  form: cleared
  as_of: "$PS_OPTOUT_AS_OF"
  max_age_hours: 24
schemas:
  - file: "$PS_SRC/schemas/hl7v2/hl7v2_event.avsc"
    id: 1
  - file: "$PS_SRC/schemas/fhir/fhir_event.avsc"
    id: 2
policy: "$1"
keyring: "$PS_TMP/keyring.yaml"
delivery:
  mode: transactional
  batch_max_events: 1000
  transaction_interval_ms: 200
CONFIG
}

ps_cleanup() {
    [ -n "${PS_BROKER_PID:-}" ] && kill "$PS_BROKER_PID" 2>/dev/null && wait "$PS_BROKER_PID" 2>/dev/null
    [ -n "${PS_KEEP_TMP:-}" ] || rm -rf "$PS_TMP"
}
