#!/usr/bin/env bash
# Builds the Debian packages edgegw_<version>_<arch>.deb into $DIST from the
# firmware that `make firmware` left in $DIST/<target>/, one per target in
# FIRMWARE_TARGETS, then rewrites $DIST/SHA256SUMS. `make packages` runs it.
#
#   linux/arm64  -> arm64   (64-bit Raspberry Pi OS, Debian arm64)
#   linux/arm/v7 -> armhf   (Debian armhf is ARMv7; Pi 2 and later on 32-bit OS)
#   linux/arm/v6 -> armel   (Pi Zero and Pi 1; see packaging/README.md)
#   linux/amd64  -> amd64
#
# DEB_VERSION defaults to packaging/version.sh, SOURCE_DATE_EPOCH to the
# commit time; NFPM is the nfpm command (default: go run of a pinned version,
# which keeps nfpm out of go.mod).
set -euo pipefail
cd "$(dirname "$0")/.."

DIST=${DIST:-dist}
FIRMWARE_TARGETS=${FIRMWARE_TARGETS:-linux/arm64 linux/arm/v7 linux/arm/v6 linux/amd64}
NFPM_VERSION=${NFPM_VERSION:-v2.45.2}
GO=${GO:-go}
DEB_VERSION=${DEB_VERSION:-$(packaging/version.sh)}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(packaging/version.sh --epoch)}
export DEB_VERSION SOURCE_DATE_EPOCH

nfpm() {
  if [[ -n "${NFPM:-}" ]]; then
    $NFPM "$@"
  else
    # nfpm runs here, so it is built for this machine, not for the targets.
    env -u GOOS -u GOARCH -u GOARM -u GOARM64 -u GOAMD64 CGO_ENABLED=0 \
      "$GO" run "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION" "$@"
  fi
}

deb_arch() {
  case "$1" in
    linux/arm64) echo arm64 ;;
    linux/arm/v7) echo armhf ;;
    linux/arm/v6) echo armel ;;
    linux/amd64) echo amd64 ;;
    *) echo "packages.sh: no Debian architecture for $1" >&2; return 1 ;;
  esac
}

for target in $FIRMWARE_TARGETS; do
  IFS=/ read -r os arch variant <<<"$target"
  BIN_DIR="$DIST/$os-$arch$variant"
  DEB_ARCH=$(deb_arch "$target")
  export BIN_DIR DEB_ARCH
  for b in gateway gatewayctl; do
    [[ -x "$BIN_DIR/$b" ]] || { echo "packages.sh: $BIN_DIR/$b missing: run make firmware first" >&2; exit 1; }
  done
  deb="$DIST/edgegw_${DEB_VERSION}_$DEB_ARCH.deb"
  rm -f "$deb"
  nfpm package --config packaging/nfpm.yaml --packager deb --target "$deb" >&2
done

packaging/checksums.sh "$DIST"
