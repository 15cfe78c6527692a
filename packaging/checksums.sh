#!/usr/bin/env bash
# Writes DIR/SHA256SUMS over every file below DIR (binaries and packages),
# with paths relative to DIR, sorted: check with `cd DIR && sha256sum -c SHA256SUMS`.
set -euo pipefail
dir=${1:?usage: checksums.sh DIR}
cd "$dir"
find . -type f ! -name 'SHA256SUMS*' -printf '%P\n' | LC_ALL=C sort | xargs -r -d '\n' sha256sum > SHA256SUMS.tmp
mv SHA256SUMS.tmp SHA256SUMS
