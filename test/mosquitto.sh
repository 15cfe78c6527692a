#!/usr/bin/env bash
# Starts/stops the test Mosquitto (Debian package) on $EDGE_TEST_HOST:$EDGE_MQTT_PORT
# with its own config, persistence and log under $EDGE_STATE_DIR.
set -euo pipefail
SVC=mosquitto
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${EDGE_MQTT_PORT:-11883}"
DATA="$EDGE_STATE_DIR/mosquitto"
PIDFILE="$EDGE_STATE_DIR/mosquitto.pid"
LOGFILE="$EDGE_STATE_DIR/mosquitto.log"
TIMEOUT="${EDGE_MQTT_START_TIMEOUT:-30}"

mosquitto_bin() { command -v mosquitto 2>/dev/null || { [ -x /usr/sbin/mosquitto ] && echo /usr/sbin/mosquitto; }; }

install() {
  if mosquitto_bin >/dev/null && command -v mosquitto_pub >/dev/null; then return 0; fi
  [ "$(id -u)" = 0 ] || die "mosquitto is missing; run as root or: sudo apt-get install mosquitto mosquitto-clients"
  log "installing mosquitto and mosquitto-clients with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends mosquitto mosquitto-clients >&2
}

# Ready = a QoS 1 publish is acknowledged (CONNECT, CONNACK, PUBLISH, PUBACK).
ready() {
  command -v mosquitto_pub >/dev/null || return 1
  timeout 5 mosquitto_pub -h "$EDGE_TEST_HOST" -p "$PORT" -q 1 -i "edgegw-ready-$$" \
    -t edgegw/ready -m ok >/dev/null 2>&1
}

up() {
  if ready; then log "already running on $EDGE_TEST_HOST:$PORT: reusing"; return 0; fi
  if ! our_pid >/dev/null; then
    port_open "$EDGE_TEST_HOST" "$PORT" && die "port $PORT is taken by something that is not an MQTT broker"
    install
    mkdir -p "$DATA"
    subst "$CONF_DIR/mosquitto.conf" PORT="$PORT" HOST="$EDGE_TEST_HOST" DATA="$DATA" \
      USER="$(id -un)" > "$EDGE_STATE_DIR/mosquitto.conf"
    log "starting on $EDGE_TEST_HOST:$PORT (log $LOGFILE)"
    start_bg "$(mosquitto_bin)" -c "$EDGE_STATE_DIR/mosquitto.conf"
  fi
  wait_for "$TIMEOUT" "mosquitto to accept a QoS 1 publish" ready
  log "ready on $EDGE_TEST_HOST:$PORT"
}

case "${1:-}" in
  up) up ;;
  down) stop_bg "$PORT" ;;
  status) status_of "$PORT" ready ;;
  wait) wait_for "$TIMEOUT" "mosquitto" ready ;;
  *) usage_common "" ;;
esac
