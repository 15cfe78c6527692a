#!/usr/bin/env bash
# Starts/stops a SECOND Pulsar standalone for the security tests: TLS only,
# token (JWT) and client-certificate authentication, authorization on. It
# runs from the same cached classpath as test/pulsar.sh, on its own ports and
# in its own state dir ($EDGE_STATE_DIR/pulsar-secure), and never touches the
# main test Pulsar.
#
# On first `up` it makes, under $EDGE_STATE_DIR/pulsar-secure/pki (mode 0700):
#   ca.crt ca.key         a test CA (tests sign client certificates with it)
#   broker.crt broker.key the broker's certificate (SAN IP:$EDGE_TEST_HOST, DNS:localhost)
#   secret.key            the HS256 token secret (tests mint role tokens with it)
#   superuser.token       a token for the superuser role edgegw-admin
set -euo pipefail
SVC=pulsar-secure
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${EDGE_PULSAR_SECURE_PORT:-16651}"            # pulsar+ssl://
HTTPS_PORT="${EDGE_PULSAR_SECURE_HTTPS_PORT:-18443}" # https:// admin
BK_PORT="${EDGE_PULSAR_SECURE_BK_PORT:-13182}"
DATA="$EDGE_STATE_DIR/pulsar-secure"
PKI="$DATA/pki"
PIDFILE="$EDGE_STATE_DIR/pulsar-secure.pid"
LOGFILE="$EDGE_STATE_DIR/pulsar-secure.log"
ADMIN="https://$EDGE_TEST_HOST:$HTTPS_PORT"
SUPERUSER=edgegw-admin
# The classpaths are test/pulsar.sh's (same poms, same cache files).
# shellcheck source-path=SCRIPTDIR source=pulsar-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/pulsar-common.sh"

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# token ROLE: an HS256 JWT for ROLE (no expiry), signed with the secret key.
token() {
  local h p s
  h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
  p=$(printf '{"sub":"%s"}' "$1" | b64url)
  s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -mac HMAC \
        -macopt "hexkey:$(od -An -v -tx1 "$PKI/secret.key" | tr -d " \n")" -binary | b64url)
  printf '%s.%s.%s\n' "$h" "$p" "$s"
}

# pki: the CA, broker certificate, token secret and superuser token, once.
pki() {
  [ -s "$PKI/superuser.token" ] && [ -s "$PKI/broker.crt" ] && return 0
  command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
  log "making a test CA, broker certificate and token secret in $PKI"
  ( umask 077
    mkdir -p "$PKI"
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=edgegw-test-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$EDGE_TEST_HOST" -keyout broker.key -out broker.csr 2>/dev/null
    printf 'subjectAltName=IP:%s,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' \
      "$EDGE_TEST_HOST" > broker.ext
    openssl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile broker.ext -out broker.crt 2>/dev/null
    rm -f broker.csr broker.ext ca.srl
    openssl rand 32 > secret.key
  ) || die "could not make the PKI in $PKI"
  ( umask 077; token "$SUPERUSER" > "$PKI/superuser.token.tmp" ) && mv "$PKI/superuser.token.tmp" "$PKI/superuser.token"
  chmod 0644 "$PKI/ca.crt"
}

# Ready = the admin API answers over TLS to the superuser and lists public/default.
# (Read whole, then matched: `curl | grep -q` fails under pipefail when grep
# exits at the match while curl still writes.)
ready() {
  command -v curl >/dev/null && [ -s "$PKI/superuser.token" ] || return 1
  local tok ns
  tok=$(<"$PKI/superuser.token") || return 1
  ns=$(curl -fsS --max-time 5 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $tok" \
    "$ADMIN/admin/v2/namespaces/public" 2>/dev/null) || return 1
  [[ $ns == *'"public/default"'* ]]
}

up() {
  if ready; then log "already running at $ADMIN: reusing"; return 0; fi
  if ! our_pid >/dev/null; then
    local p; for p in "$PORT" "$HTTPS_PORT" "$BK_PORT"; do
      port_open "$EDGE_TEST_HOST" "$p" && die "port $p is taken by something that is not our secure Pulsar"
    done
    command -v curl >/dev/null || die "curl not found (apt-get install curl)"
    fetch
    pki
    mkdir -p "$DATA"
    subst "$CONF_DIR/pulsar-secure/standalone.conf" HOST="$EDGE_TEST_HOST" PORT="$PORT" \
      HTTPS_PORT="$HTTPS_PORT" PKI="$PKI" > "$DATA/standalone.conf"
    log "starting Pulsar $VERSION standalone (TLS, tokens, authorization) on pulsar+ssl://$EDGE_TEST_HOST:$PORT, admin $ADMIN (log $LOGFILE)"
    # A smaller heap: this instance carries only the security tests' few messages.
    start_standalone "$BK_PORT" 256m 512m 512m
  fi
  wait_for "$TIMEOUT" "secure Pulsar admin API (TLS, superuser token) and namespace public/default" ready
  log "ready at pulsar+ssl://$EDGE_TEST_HOST:$PORT (admin $ADMIN, CA $PKI/ca.crt)"
}

client_conf() {
  printf '%s\n' "webServiceUrl=$ADMIN" "brokerServiceUrl=pulsar+ssl://$EDGE_TEST_HOST:$PORT" \
    "authPlugin=org.apache.pulsar.client.impl.auth.AuthenticationToken" \
    "authParams=file://$PKI/superuser.token" "tlsTrustCertsFilePath=$PKI/ca.crt" \
    "tlsAllowInsecureConnection=false" "tlsEnableHostnameVerification=true"
}

# tool CLASS ARGS...: one of Pulsar's CLIs, as the superuser, over TLS.
tool() {
  local class=$1; shift
  mvn_classpath "$CONF_DIR/pulsar/tools" "$TOOLS_CP" -Dpulsar.version="$TOOLS_VERSION"
  [ -s "$PKI/superuser.token" ] || die "no PKI yet: run $0 up first"
  ( umask 077; client_conf > "$DATA/client.conf" )
  run_tool "$class" "$@"
}

case "${1:-}" in
  up) up ;;
  down) stop_bg "$PORT" "$HTTPS_PORT" "$BK_PORT" ;;
  status) status_of "$PORT" ready ;;
  wait) wait_for "$TIMEOUT" "secure Pulsar" ready ;;
  fetch) fetch ;;
  pki) pki; echo "$PKI" ;;
  token) [ $# -eq 2 ] || die "usage: $0 token ROLE"; [ -s "$PKI/secret.key" ] || pki; token "$2" ;;
  admin) shift; tool org.apache.pulsar.admin.cli.PulsarAdminTool "$@" ;;
  *) usage_common "|fetch|pki|token ROLE|admin ARGS" ;;
esac
