#!/usr/bin/env bash
# Builds the firmware: static, stripped, reproducible gateway and gatewayctl
# for every target into $DIST/<os>-<arch><variant>/ (dist/linux-arm64/,
# dist/linux-armv7/, ...), then writes $DIST/SHA256SUMS. `make firmware` runs
# it; the variables below come from the Makefile:
#
#   VERSION, COMMIT      stamped into the binaries (gateway version prints them)
#   FIRMWARE_TARGETS     e.g. "linux/arm64 linux/arm/v7 linux/arm/v6 linux/amd64"
#   FIRMWARE_CMDS        commands under cmd/ to build (default gateway gatewayctl)
#   FIRMWARE_TAGS        build tags, e.g. "nogpio,noembedded" for the smallest gateway
#                        (pulsar_noschema is always added, see below)
#   FIRMWARE_LDFLAGS     linker flags (-s -w -X ... -buildid=)
#   DIST                 output directory (default dist)
#
# Reproducible: the same commit, Go version, targets, tags and ldflags give
# byte-identical binaries wherever the checkout lives (-trimpath, no VCS
# stamp, empty build ID, CGO off, every GO* knob that changes code pinned).
#
# The firmware links third_party/athenz-stub instead of github.com/AthenZ/athenz:
# pulsar-client-go imports Athenz for an authentication the gateway never
# offers, and the real module brings the Athenz ZTS/ZMS clients and
# k8s.io/apimachinery (3.5 to 3.9 MB per binary). go.mod is left alone (the sink
# and the tests keep the real module); the build reads a generated copy of it
# with one replace more (-modfile), and its go.sum copy beside it. Relative
# replace paths are resolved against the module root (the directory holding
# go.mod), not against the -modfile's directory. The stub has no requirements,
# so go.sum already holds every hash the build needs; -mod=readonly makes it
# fail rather than edit the copies.
#
# The firmware is also built with -tags pulsar_noschema: the patched
# pulsar-client-go (third_party/pulsar-client-go/PATCH.md) then leaves out its
# JSON, Protobuf, ProtoNative and Avro schemas, and with them hamba/avro,
# json-iterator, reflect2 and the protobuf descriptor packages (1.7 MB of the
# stripped arm64 gateway). The gateway sends and reads raw bytes, without
# schemas.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${VERSION:?VERSION is not set (make firmware sets it)}"
: "${COMMIT:?COMMIT is not set (make firmware sets it)}"
DIST=${DIST:-dist}
FIRMWARE_TARGETS=${FIRMWARE_TARGETS:-linux/arm64 linux/arm/v7 linux/arm/v6 linux/amd64}
FIRMWARE_CMDS=${FIRMWARE_CMDS:-gateway gatewayctl}
FIRMWARE_TAGS=${FIRMWARE_TAGS:-}
# The tags go build gets: pulsar_noschema and FIRMWARE_TAGS, comma-separated
# (go build reads a list with a comma in it as comma-separated only).
tags=pulsar_noschema${FIRMWARE_TAGS:+,${FIRMWARE_TAGS// /,}}
FIRMWARE_LDFLAGS=${FIRMWARE_LDFLAGS:--s -w -X main.version=$VERSION -X main.commit=$COMMIT -buildid=}
GO=${GO:-go}

# target_dir linux/arm/v7 -> linux-armv7
target_dir() {
  local os arch variant
  IFS=/ read -r os arch variant <<<"$1"
  echo "$os-$arch$variant"
}

pkgs=()
for c in $FIRMWARE_CMDS; do pkgs+=("./cmd/$c"); done

modtmp=$(mktemp -d)
trap 'rm -rf "$modtmp"' EXIT
modfile=$modtmp/firmware.mod
cp go.mod "$modfile"
cp go.sum "$modtmp/firmware.sum"
"$GO" mod edit -replace=github.com/AthenZ/athenz=./third_party/athenz-stub "$modfile"

mkdir -p "$DIST"
for target in $FIRMWARE_TARGETS; do
  IFS=/ read -r os arch variant <<<"$target"
  env=(CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" GOFLAGS="${GOFLAGS:-}" GOWORK=off)
  case "$arch" in
    arm)
      [[ "$variant" =~ ^v[5-7]$ ]] || { echo "firmware.sh: $target: want linux/arm/v5, v6 or v7" >&2; exit 2; }
      env+=(GOARM="${variant#v}") ;;
    arm64) env+=(GOARM64=v8.0) ;;
    amd64) env+=(GOAMD64=v1) ;;
    *) [[ -z "$variant" ]] || { echo "firmware.sh: $target: unknown variant" >&2; exit 2; } ;;
  esac
  out="$DIST/$(target_dir "$target")"
  rm -rf "$out"
  mkdir -p "$out"
  echo "firmware: $target -> $out/ (tags $tags)" >&2
  env "${env[@]}" "$GO" build -modfile="$modfile" -mod=readonly -trimpath -buildvcs=false -tags "$tags" \
    -ldflags "$FIRMWARE_LDFLAGS" -o "$out/" "${pkgs[@]}"
  # The build name gatewayctl firmware push puts in the release manifest
  # (-trimpath keeps -ldflags, and so the version stamp, out of the build
  # information).
  echo "$VERSION" >"$out/VERSION"
done

packaging/checksums.sh "$DIST"
