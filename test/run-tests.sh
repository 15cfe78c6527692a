#!/usr/bin/env bash
# Runs every test of the project: starts Mosquitto, Pulsar and Cassandra once
# (reusing instances already running), runs all packages with the race
# detector against them, and stops the services it started.
# shellcheck disable=SC2086 # GOTESTFLAGS and pkgs are word lists, split on purpose
set -euo pipefail
cd "$(dirname "$0")/.."
started=()
for svc in mosquitto pulsar cassandra pulsar-secure; do
  if ! "test/$svc.sh" status >/dev/null 2>&1; then
    started+=("$svc")
  fi
done
cleanup() {
  for svc in "${started[@]}"; do
    "test/$svc.sh" down || true
  done
}
trap cleanup EXIT
t0=$(date +%s)
# Start the slow JVMs side by side.
pids=()
for svc in mosquitto pulsar cassandra pulsar-secure; do
  "test/$svc.sh" up & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
echo "services ready in $(( $(date +%s) - t0 ))s" >&2
# Everything but the fault tests, packages in parallel, sharing the services.
pkgs=$(go list ./... | grep -v -e '/test/fault$' -e '/test/security$')
CGO_ENABLED=1 go test -race -count=1 -timeout 30m ${GOTESTFLAGS:-} $pkgs
# The security tests push a flood through the shared Mosquitto and assert
# latency: alone.
CGO_ENABLED=1 go test -race -count=1 -timeout 15m ${GOTESTFLAGS:-} ./test/security/
# Every fuzz target, briefly (make fuzz runs them longer).
FUZZTIME="${FUZZTIME:-10s}" test/fuzz.sh
# The fault tests stop and restart the shared services: alone, last.
CGO_ENABLED=1 go test -race -count=1 -timeout 30m ${GOTESTFLAGS:-} ./test/fault/
