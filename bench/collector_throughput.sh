#!/usr/bin/env bash
# Collector throughput against the simulator: N pump-station controllers (46 points each, three
# requests per cycle) polled once a second, written to the embedded store and to InfluxDB; then,
# in the same run, a pymodbus 3.x asyncio client polling the same devices with the same requests.
#
#   bench/collector_throughput.sh                  # N=1000 devices, 60 s per part
#   N=200 SECS=30 bench/collector_throughput.sh
#
# Reports per part: readings/s stored, Modbus reads/s, collector CPU (cores), sample-to-store lag
# p50/p99 (from the collector's histogram; bucket upper bounds), and the simulator's CPU; then the
# ratio of reads per CPU-second, collector over pymodbus.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh
N=${N:-1000}
SECS=${SECS:-60}
WARMUP=${WARMUP:-20}
# Below the ephemeral range (32768+), where other programs get their free ports.
PORT=${PORT:-21000}
cargo build --release -q
BIN=$PWD/target/release/mizumori
ensure_pymodbus
apt_install influxdb
tmp=$(mktemp -d)
pids=()
# influxd is stopped first: a bare `wait` would wait for it forever.
cleanup() { stop_influxd; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

"$BIN" sim --scenario bench/scenarios/pump_stations.toml --scale "$N" --listen "127.0.0.1:$PORT" --emit-collector-config > "$tmp/site.toml"
points=$(grep -c '^\[\[device.point\]\]' "$tmp/site.toml")
"$BIN" sim --scenario bench/scenarios/pump_stations.toml --scale "$N" --listen "127.0.0.1:$PORT" > "$tmp/sim.log" 2>&1 &
sim=$!; pids+=("$sim")
sleep 3

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metric() { curl -fsS "http://127.0.0.1:$2/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
lag_buckets() { curl -fsS "http://127.0.0.1:$1/metrics" | grep '^collector_store_lag_seconds_bucket'; }
quantile() {  # quantile Q FILE_BEFORE FILE_AFTER: upper bound of the lag bucket holding the Q-th
              # quantile of the readings stored between the two snapshots
    python3 - "$@" <<'PY'
import re, sys
def read(path):
    rows = []
    for line in open(path):
        m = re.match(r'collector_store_lag_seconds_bucket\{le="([^"]+)"\} (\d+)', line)
        if m:
            rows.append((float("inf") if m[1] == "+Inf" else float(m[1]), int(m[2])))
    return rows
q, before, after = float(sys.argv[1]), read(sys.argv[2]), read(sys.argv[3])
rows = [(b, n1 - n0) for (b, n0), (_, n1) in zip(before, after)]
total = rows[-1][1]
print(next((b for b, n in rows if n >= q * total), float("inf")))
PY
}
hz=$(getconf CLK_TCK)

run_collector() {  # run_collector NAME STORE_URL
    local mport; mport=$(free_port)
    "$BIN" collect --config "$tmp/site.toml" --store "$2" --buffer-dir "$tmp/buffer-$1" --metrics "127.0.0.1:$mport" > "$tmp/collect-$1.log" 2>&1 &
    local col=$!; pids+=("$col")
    sleep "$WARMUP"
    local c0 s0 w0 r0 t0 c1 s1 w1 r1 t1 d0=0 d1=0
    # The store's own process, when it has one (InfluxDB), is counted separately.
    local db=${3:-}
    c0=$(ticks "$col"); s0=$(ticks "$sim"); w0=$(metric collector_readings_written_total "$mport"); r0=$(metric collector_requests_total "$mport"); t0=$(date +%s.%N)
    [ -n "$db" ] && d0=$(ticks "$db")
    lag_buckets "$mport" > "$tmp/lag0"
    sleep "$SECS"
    c1=$(ticks "$col"); s1=$(ticks "$sim"); w1=$(metric collector_readings_written_total "$mport"); r1=$(metric collector_requests_total "$mport"); t1=$(date +%s.%N)
    [ -n "$db" ] && d1=$(ticks "$db")
    lag_buckets "$mport" > "$tmp/lag1"
    local p50 p99; p50=$(quantile 0.5 "$tmp/lag0" "$tmp/lag1"); p99=$(quantile 0.99 "$tmp/lag0" "$tmp/lag1")
    kill -TERM "$col"; wait "$col" || true
    python3 - "$1" "$points" "$c0" "$c1" "$s0" "$s1" "$w0" "$w1" "$r0" "$r1" "$t0" "$t1" "$hz" "$p50" "$p99" "$d0" "$d1" <<'PY'
import sys
name = sys.argv[1]
points, c0, c1, s0, s1, w0, w1, r0, r1 = map(int, sys.argv[2:11])
t0, t1, hz = float(sys.argv[11]), float(sys.argv[12]), int(sys.argv[13])
p50, p99 = sys.argv[14], sys.argv[15]
d0, d1 = int(sys.argv[16]), int(sys.argv[17])
wall = t1 - t0
cpu = (c1 - c0) / hz / wall
reads = (r1 - r0) / wall
print(f"{name}: readings_per_s={(w1 - w0) / wall:.0f} (offered {points}/s) reads_per_s={reads:.0f} "
      f"collector_cpu={cpu:.2f}_cores store_process_cpu={(d1 - d0) / hz / wall:.2f}_cores sim_cpu={(s1 - s0) / hz / wall:.2f}_cores "
      f"lag_p50<={p50}s lag_p99<={p99}s reads_per_cpu_s={reads / cpu if cpu else float('nan'):.0f}")
PY
}

run_collector sqlite "sqlite://$tmp/bench.sqlite" | tee "$tmp/ours.txt"
start_influxd
run_collector influxdb "influx://${MIZUMORI_TEST_INFLUX_URL#http://}/bench" "$INFLUX_PID"

# The peer, polling the same devices the same way.
peer=$("$MIZUMORI_TEST_PYTHON" bench/peers/pymodbus_poller.py "$tmp/site.toml" "$SECS")
echo "pymodbus: $peer"
python3 - "$(cat "$tmp/ours.txt")" "$peer" <<'PY'
import re, sys
ours = float(re.search(r"reads_per_cpu_s=(\d+)", sys.argv[1])[1])
p = dict(kv.split("=") for kv in sys.argv[2].split())
peer_reads_s = int(p["reads"]) / float(p["wall_s"])
peer = int(p["reads"]) / float(p["cpu_s"])
print(f"pymodbus: reads_per_s={peer_reads_s:.0f} reads_per_cpu_s={peer:.0f}")
print(f"ratio (collector over pymodbus, reads per CPU-second, embedded store run): {ours / peer:.1f}x")
PY
