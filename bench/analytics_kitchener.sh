#!/usr/bin/env bash
# Walk-forward backtest of Mizumori's ranking on the City of Kitchener open data, 2015–2018.
# The data is read in place (never copied into the repository); override its folder with
# KITCHENER_DIR. Usage: bench/analytics_kitchener.sh [extra `risk backtest` flags]
#
# Not yet here: the scikit-learn HistGradientBoostingClassifier peer on the same features.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${KITCHENER_DIR:-../shared/data/kitchener}"
cargo build --release --quiet --bin mizumori
bin="${CARGO_TARGET_DIR:-target}/release/mizumori"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
start=$(date +%s.%N)
"$bin" risk backtest \
  --assets "$data/water_mains.csv" \
  --breaks "$data/water_main_breaks_1985_2018.csv" \
  --profile kitchener --from 2015 --to 2018 "$@" 2>/dev/null
end=$(date +%s.%N)
echo "backtest wall time: $(echo "$end - $start" | bc) s"
