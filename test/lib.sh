# shellcheck shell=bash disable=SC2034 # variables here are used by the scripts that source this
# Shared helpers for test/mosquitto.sh, test/pulsar.sh and test/cassandra.sh.
# Sourced, not run. Every path is derived from this file's location or the
# environment, never hard-coded.

TEST_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$TEST_DIR")"
CONF_DIR="$TEST_DIR/conf"

EDGE_TEST_HOST="${EDGE_TEST_HOST:-127.0.0.1}"
EDGE_STATE_DIR="${EDGE_STATE_DIR:-$REPO_ROOT/.state}"
EDGE_CACHE_DIR="${EDGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/edgegw}"
# Absolute, since the services run from their own data directories.
EDGE_STATE_DIR="$(mkdir -p "$EDGE_STATE_DIR" && cd "$EDGE_STATE_DIR" && pwd)"
EDGE_CACHE_DIR="$(mkdir -p "$EDGE_CACHE_DIR" && cd "$EDGE_CACHE_DIR" && pwd)"
# Seconds to wait for a service to stop after SIGTERM before SIGKILL.
EDGE_STOP_TIMEOUT="${EDGE_STOP_TIMEOUT:-30}"

log() { printf '%s: %s\n' "${SVC:-services}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# wait_for SECONDS WHAT CMD...: polls CMD until it succeeds or the deadline
# passes. If a pidfile is known ($PIDFILE) and its process dies, fails fast.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs)) pause=0.1
  until "$@"; do
    if [ -n "${PIDFILE:-}" ] && [ -f "$PIDFILE" ] && ! pid_alive "$(cat "$PIDFILE")"; then
      log "process exited while waiting for $what; last log lines:"
      [ -n "${LOGFILE:-}" ] && tail -n 30 "$LOGFILE" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "timed out after ${secs}s waiting for $what"
      [ -n "${LOGFILE:-}" ] && [ -f "$LOGFILE" ] && tail -n 30 "$LOGFILE" >&2
      return 1
    fi
    sleep "$pause"
    case $pause in 0.1) pause=0.25 ;; 0.25) pause=0.5 ;; esac
  done
}

# pid_alive PID: the process exists and is not a zombie (an exited child
# waits for its reaper, which may take seconds here). A JVM whose main thread
# has ended shows as a zombie too while its other threads still run.
pid_alive() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
  local st; st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "${st%% *}" != Z ] && return 0
  local tasks=("/proc/$1/task/"*)
  [ "${#tasks[@]}" -gt 1 ]
}

# our_pid: prints the pid from $PIDFILE when that process is alive and is
# ours (its command line mentions our state dir, so a recycled pid is not
# mistaken for ours).
our_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid cmdline; pid=$(cat "$PIDFILE")
  pid_alive "$pid" || return 1
  # Read, then match in bash: `tr | grep -q` fails under pipefail when grep
  # exits at the first match while tr still writes (a JVM's command line is
  # long), and a running service would be taken for not ours.
  cmdline=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$EDGE_STATE_DIR"* ]] || return 1
  echo "$pid"
}

# start_bg CMD...: runs CMD in its own session (so its process group can be
# signalled as a whole), logging to $LOGFILE, pid in $PIDFILE.
start_bg() {
  mkdir -p "$(dirname "$PIDFILE")"
  : > "$LOGFILE"
  setsid "$@" >> "$LOGFILE" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
}

# stop_bg PORT...: TERM the process group in $PIDFILE, KILL after
# $EDGE_STOP_TIMEOUT, then wait until every PORT is free.
stop_bg() {
  local port=$1 pid p
  if pid=$(our_pid); then
    log "stopping (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    if ! PIDFILE='' wait_for "$EDGE_STOP_TIMEOUT" "pid $pid to exit" group_gone "$pid" 2>/dev/null; then
      log "still running after ${EDGE_STOP_TIMEOUT}s: SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      PIDFILE='' wait_for 10 "pid $pid to die" group_gone "$pid" || die "pid $pid survives SIGKILL"
    fi
  elif port_open "$EDGE_TEST_HOST" "$port"; then
    rm -f "$PIDFILE"
    die "port $port answers but no process of ours (no live pidfile $PIDFILE); not stopping it"
  fi
  rm -f "$PIDFILE"
  for p in "$@"; do PIDFILE='' wait_for 20 "port $p to be free" port_closed "$p"; done
  log "down"
}

group_gone() {
  local p
  for p in "$1" $(pgrep -g "$1" 2>/dev/null); do pid_alive "$p" && return 1; done
  return 0
}
port_closed() { ! port_open "$EDGE_TEST_HOST" "$1"; }

# rss_of PID: resident memory of the process in MiB.
rss_of() { awk '/^VmRSS:/ {printf "%d MiB", $2/1024}' "/proc/$1/status" 2>/dev/null; }

# status_of PORT READYCMD...: prints the state, exits 0 only when ready.
status_of() {
  local port=$1; shift
  local pid=''
  pid=$(our_pid) || pid=''
  if "$@"; then
    if [ -n "$pid" ]; then
      echo "$SVC: ready on $EDGE_TEST_HOST:$port (pid $pid, rss $(rss_of "$pid"))"
    else
      echo "$SVC: ready on $EDGE_TEST_HOST:$port (not started by us)"
    fi
    return 0
  elif [ -n "$pid" ]; then
    echo "$SVC: starting or unhealthy (pid $pid), log $LOGFILE"
  else
    echo "$SVC: down"
  fi
  return 1
}

# mvn_classpath POMDIR OUTFILE [MVNARGS...]: resolves the dependencies of the
# pom in POMDIR into a classpath file, once; later calls reuse OUTFILE as
# long as every jar in it still exists. Serialised with a lock so that
# parallel `up`s do not write the local Maven repository at the same time.
mvn_classpath() {
  local pomdir=$1 out=$2; shift 2
  classpath_ok "$out" && return 0
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  mkdir -p "$(dirname "$out")"
  (
    flock 9
    classpath_ok "$out" && exit 0
    log "resolving $(basename "$out" .classpath) from Maven Central (once; cached in $out)"
    local tmp="$out.tmp.$$"
    if ! mvn -B -q -f "$pomdir/pom.xml" "$@" dependency:build-classpath \
         -Dmdep.outputFile="$tmp" -Dmdep.includeScope=runtime > "$tmp.log" 2>&1; then
      # (head may end the pipeline early: its status does not matter here)
      grep -E 'ERROR|BUILD' "$tmp.log" | sed 's/\x1b\[[0-9;]*m//g' | head -n 20 >&2 || true
      rm -f "$tmp" "$tmp.log"; exit 1
    fi
    rm -f "$tmp.log"
    mv "$tmp" "$out"
  ) 9> "$EDGE_CACHE_DIR/mvn.lock" || die "dependency resolution failed for $pomdir"
}

# cp_file NAME POMDIR: the cache file for NAME's classpath; a change to the
# pom gives a new name, so an edited pom is resolved again.
cp_file() { echo "$EDGE_CACHE_DIR/$1-$(sha256sum "$2/pom.xml" | cut -c1-8).classpath"; }

classpath_ok() {
  [ -s "$1" ] || return 1
  local cp jar jars
  cp=$(<"$1") || return 1
  IFS=: read -r -a jars <<<"$cp"
  for jar in "${jars[@]}"; do [ -z "$jar" ] || [ -f "$jar" ] || return 1; done
}

# java_cmd: the java to use.
java_cmd() {
  if [ -n "${JAVA_HOME:-}" ]; then echo "$JAVA_HOME/bin/java"; else command -v java || die "java not found"; fi
}

# subst FILE KEY=VALUE...: prints FILE with each @KEY@ replaced by VALUE.
subst() {
  local f=$1 kv args=(); shift
  for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
  sed "${args[@]}" "$f"
}

usage_common() {
  cat >&2 <<EOF
usage: $0 up|down|status|wait$1
  up      start (or reuse a running instance) and wait until ready
  down    stop what we started (TERM, then KILL) and wait until the port is free
  status  print the state; exit 0 only when ready
  wait    wait until ready (does not start)
EOF
  exit 2
}
