#!/usr/bin/env bash
# Prints the Debian version of the package built from this checkout:
#   on a release tag vX.Y.Z[-rc1]    X.Y.Z[~rc1]
#   N commits after tag vX.Y.Z        X.Y.Z+git<YYYYMMDDhhmmss>.<commit>
#   no tag at all                     0.0.0~git<YYYYMMDDhhmmss>.<commit>
# with the commit time in UTC, so later commits sort higher, and "+dirty"
# appended when the work tree has uncommitted changes. With --epoch it prints
# the commit time as seconds since 1970 (SOURCE_DATE_EPOCH) instead.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "version.sh: not a git checkout; set DEB_VERSION and SOURCE_DATE_EPOCH" >&2
  exit 1
fi
if [[ "${1:-}" == --epoch ]]; then
  git log -1 --format=%ct
  exit 0
fi

commit=$(git rev-parse --short=12 HEAD)
stamp=$(TZ=UTC0 git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S)
dirty=""
if ! git diff --quiet HEAD -- 2>/dev/null; then
  dirty="+dirty"
fi

debianise() { # v1.2.3-rc1 -> 1.2.3~rc1 (a pre-release sorts before its release)
  local v=${1#v}
  echo "${v/-/\~}"
}

if tag=$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null); then
  echo "$(debianise "$tag")$dirty"
elif tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*' 2>/dev/null); then
  echo "$(debianise "$tag")+git$stamp.$commit$dirty"
else
  echo "0.0.0~git$stamp.$commit$dirty"
fi
