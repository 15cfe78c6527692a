#!/usr/bin/env bash
# Starts/stops the test Pulsar standalone, run from the official jars on Maven
# Central (classpath resolved once with mvn and cached in $EDGE_CACHE_DIR).
# Data (RocksDB metadata, bookie) lives under $EDGE_STATE_DIR/pulsar and
# survives down/up.
set -euo pipefail
SVC=pulsar
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${EDGE_PULSAR_PORT:-16650}"
HTTP_PORT="${EDGE_PULSAR_HTTP_PORT:-18080}"
BK_PORT="${EDGE_PULSAR_BK_PORT:-13181}"
DATA="$EDGE_STATE_DIR/pulsar"
PIDFILE="$EDGE_STATE_DIR/pulsar.pid"
LOGFILE="$EDGE_STATE_DIR/pulsar.log"
ADMIN="http://$EDGE_TEST_HOST:$HTTP_PORT"
# shellcheck source-path=SCRIPTDIR source=pulsar-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/pulsar-common.sh"

# Ready = the admin API answers and the default namespace exists. The
# answer is read whole, then matched: `curl | grep -q` fails under pipefail
# when grep exits at the match while curl still writes (many namespaces).
ready() {
  command -v curl >/dev/null || return 1
  local ns
  curl -fsS -o /dev/null --max-time 5 "$ADMIN/admin/v2/clusters" 2>/dev/null &&
    ns=$(curl -fsS --max-time 5 "$ADMIN/admin/v2/namespaces/public" 2>/dev/null) &&
    [[ $ns == *'"public/default"'* ]]
}

# Healthy = the broker's own health check passes: it produces to and reads
# from a heartbeat topic, so the bookie takes writes. Right after a start
# the admin API answers before that, and a test's first producer failed
# with "Not enough non-faulty bookies available".
healthy() {
  local out
  out=$(curl -fsS --max-time 10 "$ADMIN/admin/v2/brokers/health" 2>/dev/null) && [[ $out == ok ]]
}

up() {
  if ready; then
    wait_for "$TIMEOUT" "Pulsar broker health check (a message through the bookie)" healthy
    log "already running at $ADMIN: reusing"; return 0
  fi
  if ! our_pid >/dev/null; then
    local p; for p in "$PORT" "$HTTP_PORT" "$BK_PORT"; do
      port_open "$EDGE_TEST_HOST" "$p" && die "port $p is taken by something that is not our Pulsar"
    done
    command -v curl >/dev/null || die "curl not found (apt-get install curl)"
    fetch
    mkdir -p "$DATA"
    subst "$CONF_DIR/pulsar/standalone.conf" HOST="$EDGE_TEST_HOST" PORT="$PORT" \
      HTTP_PORT="$HTTP_PORT" > "$DATA/standalone.conf"
    client_conf > "$DATA/client.conf"
    log "starting Pulsar $VERSION standalone on $EDGE_TEST_HOST:$PORT, admin $ADMIN (log $LOGFILE)"
    start_standalone "$BK_PORT" 1g 1g 1g
  fi
  wait_for "$TIMEOUT" "Pulsar admin API and namespace public/default" ready
  wait_for "$TIMEOUT" "Pulsar broker health check (a message through the bookie)" healthy
  log "ready at pulsar://$EDGE_TEST_HOST:$PORT (admin $ADMIN)"
}

client_conf() {
  printf 'webServiceUrl=%s\nbrokerServiceUrl=pulsar://%s:%s\n' "$ADMIN" "$EDGE_TEST_HOST" "$PORT"
}

# tool CLASS ARGS...: runs one of Pulsar's own CLIs against the test instance.
tool() {
  local class=$1; shift
  mvn_classpath "$CONF_DIR/pulsar/tools" "$TOOLS_CP" -Dpulsar.version="$TOOLS_VERSION"
  mkdir -p "$DATA"; client_conf > "$DATA/client.conf"
  run_tool "$class" "$@"
}

case "${1:-}" in
  up) up ;;
  down) stop_bg "$PORT" "$HTTP_PORT" "$BK_PORT" ;;
  status) status_of "$PORT" ready ;;
  wait) wait_for "$TIMEOUT" "Pulsar" ready && wait_for "$TIMEOUT" "Pulsar broker health check" healthy ;;
  fetch) fetch ;;
  admin) shift; tool org.apache.pulsar.admin.cli.PulsarAdminTool "$@" ;;
  client) shift; tool org.apache.pulsar.client.cli.PulsarClientTool "$@" ;;
  consume)
    [ $# -ge 2 ] || die "usage: $0 consume TOPIC [pulsar-client consume options]"
    topic=$2; shift 2
    case $topic in *://*) ;; *) topic="persistent://public/default/$topic" ;; esac
    # Defaults (a throw-away subscription from the earliest message, no end)
    # for the options not given: pulsar-client rejects repeated options.
    defaults=(); given=" $* "
    for d in "-s|--subscription-name|edgegw-cli-$$" "-m|--subscription-mode|NonDurable" \
             "-p|--subscription-position|Earliest" "-n|--num-messages|0"; do
      IFS='|' read -r short long val <<< "$d"
      case $given in *" $short "*|*" $short="*|*" $long "*|*" $long="*) ;; *) defaults+=("$short" "$val") ;; esac
    done
    tool org.apache.pulsar.client.cli.PulsarClientTool consume "${defaults[@]}" "$@" "$topic" ;;
  *) usage_common "|fetch|admin ARGS|client ARGS|consume TOPIC [ARGS]" ;;
esac
