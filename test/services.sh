#!/usr/bin/env bash
# Starts/stops all test services: Mosquitto, Pulsar and Cassandra. The two
# JVMs start side by side. Same environment variables as the scripts it calls.
set -euo pipefail
SVC=services
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ALL=(mosquitto pulsar cassandra)

# each CMD SVC...: runs test/SVC.sh CMD for each SVC in parallel; fails if any failed.
each() {
  local cmd=$1 s rc=0; shift
  local -A pids=()
  for s in "$@"; do "$TEST_DIR/$s.sh" "$cmd" & pids[$s]=$!; done
  for s in "$@"; do wait "${pids[$s]}" || { log "$s $cmd failed"; rc=1; }; done
  return $rc
}

case "${1:-}" in
  up)
    t0=$SECONDS
    "$TEST_DIR/mosquitto.sh" up
    # Resolve the classpaths one after the other (a no-op once cached), then
    # start the JVMs together.
    "$TEST_DIR/pulsar.sh" fetch
    "$TEST_DIR/cassandra.sh" fetch
    each up pulsar cassandra
    log "all ready in $((SECONDS - t0))s" ;;
  down) each down "${ALL[@]}" ;;
  status) rc=0; for s in "${ALL[@]}"; do "$TEST_DIR/$s.sh" status || rc=1; done; exit $rc ;;
  wait) each wait "${ALL[@]}" ;;
  fetch) "$TEST_DIR/pulsar.sh" fetch; "$TEST_DIR/cassandra.sh" fetch ;;
  *) usage_common "|fetch" ;;
esac
