#!/usr/bin/env bash
# Ranking time at scale: a synthetic register of PIPES mains (default 1,000,000) with its
# break history, ranked by the release binary: `mizumori risk rank` end to end (import, model
# selection on the two years before, training, scoring, writing the CSV).
#
# Usage: bench/analytics_scale.sh [PIPES [BINARY...]]
#   With no binary, builds and times this tree's release binary once.
#   With binaries (e.g. the release binaries of two commits), times them interleaved,
#   ROUNDS times each (default 2), and checks with cmp that every ranking CSV is
#   byte-identical to the first binary's. On a shared machine compare CPU (user + sys), not
#   only wall time, and note the load average printed before each run.
set -euo pipefail
cd "$(dirname "$0")/.."
pipes="${1:-1000000}"
shift || true
out=target/bench-analytics/scale-$pipes
mkdir -p "$out"
if [ "$#" -eq 0 ]; then
  cargo build --release --quiet --bin mizumori
  set -- "${CARGO_TARGET_DIR:-target}/release/mizumori"
fi
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
if [ ! -s "$out/assets.csv" ]; then
  "$1" risk synth --out-dir "$out" --pipes "$pipes" --seed 1
fi
rounds="${ROUNDS:-$([ "$#" -gt 1 ] && echo 2 || echo 1)}"
for round in $(seq 1 "$rounds"); do
  k=0
  for bin in "$@"; do
    k=$((k + 1))
    echo "round $round, binary $k ($bin): load $(cut -d' ' -f1-3 /proc/loadavg)"
    /usr/bin/time -f "rank: %e s wall, %U s user, %S s sys, %M KB max RSS" \
      "$bin" risk rank --assets "$out/assets.csv" --breaks "$out/breaks.csv" --profile mizumori \
      --as-of 2024-01-01 --out "$out/ranking-$k.csv" 2>&1 | grep -v '^  \|^assets\|^breaks'
    if [ "$k" -gt 1 ]; then
      cmp "$out/ranking-1.csv" "$out/ranking-$k.csv" && echo "ranking $k is byte-identical to ranking 1"
    fi
  done
done
