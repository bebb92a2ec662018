#!/usr/bin/env bash
# Walk-forward backtest of Mizumori's ranking on the City of Kitchener open data, 2015–2018,
# with scikit-learn's HistGradientBoostingClassifier on the same pipe-year features and the
# same time split as a peer, and train+rank wall time of both side by side.
#
# The data is read in place (never copied into the repository); override its folder with
# KITCHENER_DIR. scikit-learn goes into a venv under target/ (pip, from PyPI).
# Usage: bench/analytics_kitchener.sh [extra `risk backtest` flags]
set -euo pipefail
cd "$(dirname "$0")/.."
data="${KITCHENER_DIR:-../shared/data/kitchener}"
assets="$data/water_mains.csv"
breaks="$data/water_main_breaks_1985_2018.csv"
from=2015
to=2018
train_years=10
out=target/bench-analytics
mkdir -p "$out"

venv=target/bench-venv
if ! "$venv/bin/python" -c "import sklearn, pandas" 2>/dev/null; then
  echo "installing scikit-learn into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "scikit-learn==1.9.1" "pandas==3.1.1"
fi

cargo build --release --quiet --bin mizumori
bin="${CARGO_TARGET_DIR:-target}/release/mizumori"
now() { date +%s.%N; }
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "scikit-learn $("$venv/bin/python" -c 'import sklearn; print(sklearn.__version__)')"

# The peer's input: the same pipe-year rows Mizumori's models train on, every year the
# walk-forward needs (the first test year's training window starts train_years before it).
"$bin" risk features --assets "$assets" --breaks "$breaks" --profile kitchener \
  --from $((from - train_years)) --to "$to" --out "$out/features.csv" 2>/dev/null
"$venv/bin/python" bench/peers/sklearn_hgb.py "$out/features.csv" "$from" "$to" "$train_years" "$out" \
  | tee "$out/sklearn.log"

# The backtest table, with the peer's scores scored by the same code as Mizumori's.
"$bin" risk backtest --assets "$assets" --breaks "$breaks" --profile kitchener \
  --from "$from" --to "$to" --train-years "$train_years" \
  --peer "sklearn-hgb=$out/hgb.csv" --peer "sklearn-hgb-per-km=$out/hgb-per-km.csv" \
  --out "$out/backtest.md" "$@" 2>/dev/null

# Train + rank as of the last test year: Mizumori's whole `risk rank` command (import, model
# selection on the two years before, training, scoring, writing the CSV) against the peer's
# fit + predict alone (its CSV reading and Python start-up are not counted). Best of 3 each,
# as the machine is shared.
mkdir -p "$out/last"
ours=()
theirs=()
for _ in 1 2 3; do
  /usr/bin/time -f "%e %U %S" -o "$out/rank.time" \
    "$bin" risk rank --assets "$assets" --breaks "$breaks" --profile kitchener \
    --as-of "$to-01-01" --train-years "$train_years" --out "$out/ranking.csv" >"$out/rank.log" 2>/dev/null
  ours+=("$(awk '{printf "%.2f/%.2f", $1, $2 + $3}' "$out/rank.time")")
  theirs+=("$("$venv/bin/python" bench/peers/sklearn_hgb.py "$out/features.csv" "$to" "$to" "$train_years" \
    "$out/last" | sed -n 's/.*fit+predict \([0-9.]*\) s (cpu \([0-9.]*\) s)/\1\/\2/p')")
done
cat "$out/rank.log"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared; times are wall/cpu seconds)"
echo "train+rank as of $to-01-01, 3 runs each:"
echo "  mizumori (whole risk rank command): ${ours[*]}"
echo "  sklearn-hgb (fit+predict only):     ${theirs[*]}"
best() { printf '%s\n' "$@" | cut -d/ -f"$field" | sort -g | head -1; }
for field in 1 2; do
  what=$([ $field = 1 ] && echo "wall" || echo "cpu")
  m=$(best "${ours[@]}")
  s=$(best "${theirs[@]}")
  echo "best $what: mizumori $m s, sklearn-hgb $s s, ratio sklearn/mizumori $(echo "scale=2; $s / $m" | bc)"
done
