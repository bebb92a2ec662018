#!/usr/bin/env bash
# Ranking time at scale: a synthetic register of PIPES mains (default 1,000,000) with its
# break history, ranked by the release binary: `mizumori risk rank` end to end (import, model
# selection on the two years before, training, scoring, writing the CSV).
# Usage: bench/analytics_scale.sh [PIPES]
set -euo pipefail
cd "$(dirname "$0")/.."
pipes="${1:-1000000}"
out=target/bench-analytics/scale-$pipes
mkdir -p "$out"
cargo build --release --quiet --bin mizumori
bin="${CARGO_TARGET_DIR:-target}/release/mizumori"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ ! -s "$out/assets.csv" ]; then
  "$bin" risk synth --out-dir "$out" --pipes "$pipes" --seed 1
fi
/usr/bin/time -f "rank: %e s wall, %U s user, %M KB max RSS" \
  "$bin" risk rank --assets "$out/assets.csv" --breaks "$out/breaks.csv" --profile mizumori \
  --as-of 2024-01-01 --out "$out/ranking.csv" 2>&1 | grep -v '^  \|^assets\|^breaks'
