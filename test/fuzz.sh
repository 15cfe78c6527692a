#!/usr/bin/env bash
# Runs every Go fuzz target of the module (each `func FuzzXxx` in a
# *_test.go file) for a bounded time, one after the other:
#
#   test/fuzz.sh                     # FUZZTIME=10s each (what `make test` runs)
#   FUZZTIME=5m test/fuzz.sh         # longer (`make fuzz`)
#   FUZZ=Config test/fuzz.sh         # only targets whose package or name matches
#
# The committed seed corpora (testdata/fuzz/<Target>/) are replayed first by
# `go test -fuzz`; what the fuzzer learns stays in the Go build cache. A
# failing input is written to testdata/fuzz/<Target>/ by go test: fix the
# bug, then commit that file as a regression seed. Exits non-zero if any
# target failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FUZZTIME="${FUZZTIME:-10s}"
FUZZ="${FUZZ:-}"
# Workers per target: the machines here have 2 cores.
FUZZPARALLEL="${FUZZPARALLEL:-2}"

mapfile -t files < <(grep -rlE --include='*_test.go' --exclude-dir=.git --exclude-dir=.state \
  --exclude-dir=vendor '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . | sort)
targets=()
for f in "${files[@]}"; do
  dir=$(dirname "$f")
  while read -r name; do
    [ -n "$name" ] || continue
    case "$dir $name" in *"$FUZZ"*) targets+=("$dir $name") ;; esac
  done < <(grep -oE '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' "$f" | sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/')
done
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no fuzz targets match '$FUZZ'" >&2; exit 1; }

echo "fuzz: ${#targets[@]} targets, $FUZZTIME each" >&2
failed=() passed=0 t0=$SECONDS
for t in "${targets[@]}"; do
  read -r dir name <<< "$t"
  log=$(mktemp)
  start=$SECONDS
  ok=0
  for _ in 1 2; do
    if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -parallel "$FUZZPARALLEL" "$dir" > "$log" 2>&1; then
      ok=1; break
    fi
    # The go command sometimes ends a time-bounded fuzz run with a bare
    # "context deadline exceeded" and no failing input (a toolchain race at
    # the -fuzztime boundary, not a finding). Run that target once more;
    # a real finding always says "Failing input written to".
    if grep -q 'Failing input written to' "$log" || ! grep -q 'context deadline exceeded' "$log"; then
      break
    fi
    echo "fuzz: $dir $name ended with a bare 'context deadline exceeded' (no failing input); running it again" >&2
  done
  if [ "$ok" = 1 ]; then
    execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -n1 | cut -d' ' -f2)
    printf 'fuzz: ok   %-24s %-16s %6ss %10s execs\n' "$dir" "$name" "$((SECONDS - start))" "${execs:-?}" >&2
    passed=$((passed + 1))
  else
    printf 'fuzz: FAIL %-24s %-16s\n' "$dir" "$name" >&2
    tail -n 40 "$log" >&2
    failed+=("$dir $name")
  fi
  rm -f "$log"
done
echo "fuzz: done in $((SECONDS - t0))s" >&2
echo "${passed} passed, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'fuzz: failed: %s\n' "${failed[@]}" >&2
  echo "fuzz: the failing inputs are under the packages' testdata/fuzz/<Target>/; fix, then commit them as seeds" >&2
  exit 1
fi
