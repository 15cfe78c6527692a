#!/usr/bin/env bash
# `make run`: starts the local Pulsar (reused if already up), turns on
# deduplication for public/default, runs the gateway on configs/dev.yaml
# (embedded MQTT broker on 127.0.0.1:1883) and the simulator, and tells you
# how to watch events arrive. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
state="${EDGE_STATE_DIR:-$PWD/.state}/dev"
mkdir -p "$state" && chmod 700 "$state"
admin="http://${EDGE_TEST_HOST:-127.0.0.1}:${EDGE_PULSAR_HTTP_PORT:-18080}"

started_pulsar=0
test/pulsar.sh status >/dev/null 2>&1 || started_pulsar=1
test/pulsar.sh up
curl -fsS -X POST -H 'Content-Type: application/json' -d true \
  "$admin/admin/v2/namespaces/public/default/deduplication" >/dev/null

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo >&2; echo "run: stopping" >&2
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$started_pulsar" = 1 ]; then test/pulsar.sh down || true; fi
}
trap cleanup INT TERM EXIT

EDGE_DEV_STATE="$state" bin/gateway -config configs/dev.yaml 2> >(tee "$state/gateway.log" >&2) &
pids+=($!)
for _ in $(seq 1 300); do
  curl -fsS http://127.0.0.1:9108/readyz >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "run: gateway exited; see $state/gateway.log" >&2; exit 1; }
  sleep 0.1
done
bin/simulate -broker tcp://127.0.0.1:1883 -scanners 4 -sensors 2 -rate 20 -missort 0.02 -quiet &
pids+=($!)

cat >&2 <<MSG

  The gateway is running on configs/dev.yaml; the simulator publishes 20 msg/s
  (4 dock scanners, 2 temperature sensors) to its embedded broker; about 2%
  of the scans are mis-sorts, which the "missort" rule turns into alerts.

  Watch it:
    curl -s http://127.0.0.1:9108/status.json        # backlog, uplink state, drops
    curl -s http://127.0.0.1:9108/metrics | grep edge_gateway_
    test/pulsar.sh consume events-scans              # events arriving in Pulsar (Pulsar's own client)
    test/pulsar.sh consume events-alerts             # the rules' mis-sort alerts (-missort 0.02)
    mosquitto_sub -h 127.0.0.1 -p 1883 -t 'site/#' -v # the raw MQTT traffic

  Ctrl-C stops everything this started.
MSG
wait "${pids[0]}"
