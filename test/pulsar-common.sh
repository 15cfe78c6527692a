# shellcheck shell=bash
# What test/pulsar.sh and test/pulsar-secure.sh share: the Pulsar version,
# the cached classpaths (Maven Central, resolved once with mvn), the JVM
# flags of Pulsar's bin/pulsar, and how to start a standalone or run one of
# Pulsar's CLIs. Sourced after lib.sh; the caller sets DATA (its state dir).

VERSION="${EDGE_PULSAR_VERSION:-4.0.7}"
TOOLS_VERSION="${EDGE_PULSAR_TOOLS_VERSION:-4.0.8}"
# shellcheck disable=SC2034 # read by the sourcing scripts
TIMEOUT="${EDGE_PULSAR_START_TIMEOUT:-240}"
CP="$(cp_file "pulsar-$VERSION" "$CONF_DIR/pulsar")"
TOOLS_CP="$(cp_file "pulsar-tools-$TOOLS_VERSION" "$CONF_DIR/pulsar/tools")"

fetch() {
  mvn_classpath "$CONF_DIR/pulsar" "$CP" -Dpulsar.version="$VERSION"
  mvn_classpath "$CONF_DIR/pulsar/tools" "$TOOLS_CP" -Dpulsar.version="$TOOLS_VERSION"
}

# pulsar_jvm_flags XMS XMX DIRECT: sets PULSAR_JVM_FLAGS (an array): heap
# and direct memory as given; module flags and system properties as in
# Pulsar's bin/pulsar (standalone). Called in this shell, not in a process
# substitution, so that nothing it does can fail unseen.
pulsar_jvm_flags() {
  PULSAR_JVM_FLAGS=(
    "-Xms$1" "-Xmx$2" "-XX:MaxDirectMemorySize=$3" -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError
    -Djute.maxbuffer=10485760 -Djava.net.preferIPv4Stack=true
    -Dio.netty.tryReflectionSetAccessible=true
    --add-opens java.base/java.io=ALL-UNNAMED --add-opens java.base/java.util.zip=ALL-UNNAMED
    --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/jdk.internal.misc=ALL-UNNAMED
    --add-opens java.base/sun.net=ALL-UNNAMED --add-opens java.management/sun.management=ALL-UNNAMED
    -Dlog4j.shutdownHookEnabled=false -Dlog4j2.is.webapp=false
    "-Dlog4j.configurationFile=$CONF_DIR/pulsar/log4j2.properties"
    -Dbookkeeper.metadata.bookie.drivers=org.apache.pulsar.metadata.bookkeeper.PulsarMetadataBookieDriver
    -Dbookkeeper.metadata.client.drivers=org.apache.pulsar.metadata.bookkeeper.PulsarMetadataClientDriver
  )
}

# start_standalone BK_PORT XMS XMX DIRECT: starts the standalone of
# $DATA/standalone.conf in the background, its metadata and bookie in $DATA.
start_standalone() {
  local bk=$1 java cp
  java=$(java_cmd) || exit 1
  cp=$(<"$CP") || die "cannot read the classpath file $CP"
  pulsar_jvm_flags "$2" "$3" "$4"
  ( cd "$DATA" && start_bg "$java" "${PULSAR_JVM_FLAGS[@]}" -cp "$cp" \
      org.apache.pulsar.PulsarStandaloneStarter --config "$DATA/standalone.conf" \
      --no-functions-worker --no-stream-storage \
      --metadata-dir "$DATA/metadata" --bookkeeper-dir "$DATA/bookkeeper" --bookkeeper-port "$bk" )
}

# run_tool CLASS ARGS...: replaces the shell with one of Pulsar's CLIs,
# configured by $DATA/client.conf (which the caller writes).
run_tool() {
  local class=$1 java cp; shift
  java=$(java_cmd) || exit 1
  cp=$(<"$TOOLS_CP") || die "cannot read the classpath file $TOOLS_CP"
  exec "$java" -Djava.net.preferIPv4Stack=true -Dpulsar.log.level=warn \
    "-Dlog4j.configurationFile=$CONF_DIR/pulsar/log4j2.properties" \
    -cp "$cp" "$class" "$DATA/client.conf" "$@"
}
