#!/usr/bin/env bash
# Starts/stops the test Cassandra: org.apache.cassandra:cassandra-all from
# Maven Central (classpath resolved once with mvn and cached in
# $EDGE_CACHE_DIR), run as CassandraDaemon with a small heap. Data lives under
# $EDGE_STATE_DIR/cassandra and survives down/up.
set -euo pipefail
SVC=cassandra
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${EDGE_CASSANDRA_PORT:-19042}"
STORAGE_PORT="${EDGE_CASSANDRA_STORAGE_PORT:-17000}"
# Local-only JMX (for nodetool); empty disables it.
JMX_PORT="${EDGE_CASSANDRA_JMX_PORT-17199}"
VERSION="${EDGE_CASSANDRA_VERSION:-5.0.9}"
DATA="$EDGE_STATE_DIR/cassandra"
PIDFILE="$EDGE_STATE_DIR/cassandra.pid"
LOGFILE="$EDGE_STATE_DIR/cassandra.log"
TIMEOUT="${EDGE_CASSANDRA_START_TIMEOUT:-240}"
CP="$(cp_file "cassandra-$VERSION" "$CONF_DIR/cassandra")"
PING="$EDGE_STATE_DIR/bin/cqlping"

fetch() { mvn_classpath "$CONF_DIR/cassandra" "$CP" -Dcassandra.version="$VERSION"; }

# The readiness probe is a Go program (test/cqlping), built once per state dir
# and rebuilt when its source changes.
build_ping() {
  [ -x "$PING" ] && [ "$PING" -nt "$TEST_DIR/cqlping/main.go" ] && return 0
  command -v go >/dev/null || die "go not found (needed to build test/cqlping)"
  mkdir -p "$(dirname "$PING")"
  (cd "$REPO_ROOT" && CGO_ENABLED=0 go build -o "$PING" ./test/cqlping) || die "building test/cqlping failed"
}

# Ready = a CQL query succeeds.
ready() {
  [ -x "$PING" ] || return 1
  EDGE_TEST_HOST="$EDGE_TEST_HOST" EDGE_CASSANDRA_PORT="$PORT" "$PING" -timeout 5s >/dev/null 2>&1
}

# Module flags from Cassandra's conf/jvm17-server.options (servers) and
# jvm17-clients.options (nodetool needs sun.nio.ch exported too).
MODULE_FLAGS=(
    --add-exports java.base/sun.nio.ch=ALL-UNNAMED
    --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
    --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
    --add-exports java.sql/java.sql=ALL-UNNAMED
    --add-exports java.base/java.lang.ref=ALL-UNNAMED
    --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
    --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
    --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
    --add-opens java.base/java.lang.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
    --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
    --add-opens java.base/jdk.internal.math=ALL-UNNAMED
    --add-opens java.base/jdk.internal.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
    --add-opens java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens java.base/java.io=ALL-UNNAMED
    --add-opens java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
    --add-opens java.base/java.lang=ALL-UNNAMED
    --add-opens java.base/java.util=ALL-UNNAMED
)

# jvm_flags: sets CLASSPATH_STR (the classpath) and JVM_FLAGS (an array):
# module flags and GC settings from Cassandra's conf/jvm17-server.options and
# jvm-server.options, plus what conf/cassandra-env.sh adds (jamm agent, JMX).
# Call it in this shell, not in a command or process substitution: there a
# failure (die) ends only the subshell, and Cassandra would start with half
# its flags ("Expecting URI in variable: [cassandra.config]").
jvm_flags() {
  local jamm re='(^|:)([^:]*/jamm-[0-9.]*\.jar)(:|$)'
  CLASSPATH_STR=$(<"$CP") || die "cannot read the classpath file $CP"
  # Matched in bash, not with `tr | grep -m1`: under pipefail that pipeline
  # fails whenever grep exits before tr has written everything (SIGPIPE).
  [[ $CLASSPATH_STR =~ $re ]] || die "jamm not in the classpath ($CP)"
  jamm=${BASH_REMATCH[2]}
  JVM_FLAGS=(
    -Xms1g -Xmx1g -Xss256k -XX:+UseG1GC -XX:+ParallelRefProcEnabled
    -XX:MaxTenuringThreshold=1 -XX:G1HeapRegionSize=16m -XX:G1RSetUpdatingPauseTimePercent=5
    -XX:MaxGCPauseMillis=300 -XX:InitiatingHeapOccupancyPercent=70
    -ea -da:net.openhft... -XX:+UseThreadPriorities -XX:+HeapDumpOnOutOfMemoryError
    "-XX:HeapDumpPath=$DATA" -XX:+PerfDisableSharedMem -Djava.net.preferIPv4Stack=true
    -Djdk.attach.allowAttachSelf=true "-javaagent:$jamm"
    "${MODULE_FLAGS[@]}"
    -Dio.netty.tryReflectionSetAccessible=true
    -Dio.netty.allocator.useCacheForAllThreads=true -Dio.netty.allocator.maxOrder=11
    "-Dcassandra.config=file://$DATA/cassandra.yaml" -Dcassandra-foreground=yes
    "-Dcassandra.storagedir=$DATA" "-Dcassandra.logdir=$DATA/logs"
    "-Dlogback.configurationFile=$CONF_DIR/cassandra/logback.xml"
    "-Dcassandra.triggers_dir=$DATA/triggers" -XX:+ExitOnOutOfMemoryError
    -Dcassandra.skip_wait_for_gossip_to_settle=0
  )
  # Local JMX listens on loopback; pin its RMI port too (else random).
  if [ -n "$JMX_PORT" ]; then
    JVM_FLAGS+=("-Dcassandra.jmx.local.port=$JMX_PORT" "-Dcom.sun.management.jmxremote.rmi.port=$JMX_PORT")
  fi
}

up() {
  if ready; then log "already running on $EDGE_TEST_HOST:$PORT: reusing"; return 0; fi
  build_ping
  if ready; then log "already running on $EDGE_TEST_HOST:$PORT: reusing"; return 0; fi
  if ! our_pid >/dev/null; then
    local p; for p in "$PORT" "$STORAGE_PORT" ${JMX_PORT:+"$JMX_PORT"}; do
      port_open "$EDGE_TEST_HOST" "$p" && die "port $p is taken by something that is not our Cassandra"
    done
    fetch
    mkdir -p "$DATA/logs" "$DATA/triggers"
    subst "$CONF_DIR/cassandra/cassandra.yaml" HOST="$EDGE_TEST_HOST" PORT="$PORT" \
      STORAGE_PORT="$STORAGE_PORT" DATA="$DATA" > "$DATA/cassandra.yaml"
    local java; java=$(java_cmd) || exit 1
    jvm_flags
    log "starting Cassandra $VERSION on $EDGE_TEST_HOST:$PORT (log $LOGFILE)"
    ( cd "$DATA" && start_bg "$java" "${JVM_FLAGS[@]}" -cp "$CLASSPATH_STR" \
        org.apache.cassandra.service.CassandraDaemon )
  fi
  wait_for "$TIMEOUT" "a CQL query to succeed" ready
  log "ready on $EDGE_TEST_HOST:$PORT ($("$PING" -timeout 5s 2>/dev/null || true))"
}

nodetool() {
  [ -n "$JMX_PORT" ] || die "JMX is disabled (EDGE_CASSANDRA_JMX_PORT is empty)"
  fetch
  local java cp; java=$(java_cmd) || exit 1
  cp=$(<"$CP") || die "cannot read the classpath file $CP"
  exec "$java" "${MODULE_FLAGS[@]}" -Djdk.attach.allowAttachSelf=true \
    "-Dlogback.configurationFile=$CONF_DIR/cassandra/logback.xml" -Dcassandra.logdir="$DATA/logs" \
    -cp "$cp" org.apache.cassandra.tools.NodeTool -h 127.0.0.1 -p "$JMX_PORT" "$@"
}

case "${1:-}" in
  up) up ;;
  down) stop_bg "$PORT" "$STORAGE_PORT" ${JMX_PORT:+"$JMX_PORT"} ;;
  status) status_of "$PORT" ready ;;
  wait) build_ping; wait_for "$TIMEOUT" "Cassandra" ready ;;
  fetch) fetch ;;
  nodetool) shift; nodetool "$@" ;;
  *) usage_common "|fetch|nodetool ARGS" ;;
esac
