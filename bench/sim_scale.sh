#!/usr/bin/env bash
# How much CPU the simulator needs to serve ~1,000 devices at 1 s updates while every point of
# every device is polled once a second.
#
#   bench/sim_scale.sh                 # 24 copies of the demo city = 1,032 devices, 60 s
#   SCALE=48 SECS=120 bench/sim_scale.sh
#
# Starts `mizumori sim --scale N` and `mizumori collect` (into a throwaway SQLite file) on
# 127.0.0.1, waits for the collector to settle, then reads both processes' CPU time from
# /proc over SECS seconds and counts the readings stored meanwhile. Prints one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-24}
SECS=${SECS:-60}
WARMUP=${WARMUP:-15}
# Below the ephemeral range (32768+), where other programs get their free ports.
PORT=${PORT:-24000}
cargo build --release -q
BIN=target/release/mizumori
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

"$BIN" sim --scale "$SCALE" --listen "127.0.0.1:$PORT" --emit-collector-config > "$tmp/site.toml"
devices=$(grep -c '^\[\[device\]\]' "$tmp/site.toml")
points=$(grep -c '^\[\[device.point\]\]' "$tmp/site.toml")
"$BIN" sim --scale "$SCALE" --listen "127.0.0.1:$PORT" > "$tmp/sim.log" 2>&1 &
pids+=($!); sim=$!
sleep 2
"$BIN" collect --config "$tmp/site.toml" --store "sqlite://$tmp/m.sqlite" > "$tmp/collect.log" 2>&1 &
pids+=($!); col=$!
sleep "$WARMUP"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rows() { python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from reading').fetchone()[0])" "$tmp/m.sqlite"; }
hz=$(getconf CLK_TCK)
s0=$(ticks "$sim"); c0=$(ticks "$col"); r0=$(rows); t0=$(date +%s.%N)
sleep "$SECS"
s1=$(ticks "$sim"); c1=$(ticks "$col"); r1=$(rows); t1=$(date +%s.%N)
python3 - "$devices" "$points" "$s0" "$s1" "$c0" "$c1" "$r0" "$r1" "$t0" "$t1" "$hz" <<'PY'
import sys
devices, points, s0, s1, c0, c1, r0, r1 = map(int, sys.argv[1:9])
t0, t1, hz = float(sys.argv[9]), float(sys.argv[10]), int(sys.argv[11])
wall = t1 - t0
print(f"devices={devices} points={points} wall_s={wall:.1f} "
      f"sim_cpu={((s1 - s0) / hz) / wall:.3f}_cores collector_cpu={((c1 - c0) / hz) / wall:.3f}_cores "
      f"readings_per_s={(r1 - r0) / wall:.0f} expected_per_s={points}")
PY
