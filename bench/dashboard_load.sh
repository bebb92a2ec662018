#!/usr/bin/env bash
# The dashboard under load: 200 points × 30 days of 1-minute readings (8.6 million) in the
# embedded store, a ranking of 20,000 mains, 50 concurrent clients (wrk) against the overview,
# a point's 30-day chart and the risk table, each logged in as an engineer.
#
#   bench/dashboard_load.sh                      # 30 s per page, 50 connections, 2 wrk threads
#   SECS=10 CONNS=50 bench/dashboard_load.sh
#   DB=/tmp/dash.sqlite bench/dashboard_load.sh  # keep (and reuse) the filled store
#   CARGO_FLAGS=--no-default-features bench/dashboard_load.sh  # without the PDF feature (Typst):
#       a much shorter first release build; these three pages never touch PDF code
#
# Reports per page: the time of the first request (nothing cached yet for that page's data),
# then requests/s and the p50/p90/p99 latency from wrk's --latency table, and the response size. The store is filled by dashboard/examples/load_server.rs (built in release),
# which then serves the dashboard as `mizumori serve` does.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/services.sh
SECS=${SECS:-30}
CONNS=${CONNS:-50}
THREADS=${THREADS:-2}
CARGO_FLAGS=${CARGO_FLAGS:-}
apt_install wrk curl
# shellcheck disable=SC2086 # CARGO_FLAGS is a list of flags
cargo build --release -q -p mizumori-dashboard $CARGO_FLAGS --example load_server
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/load_server
tmp=$(mktemp -d)
DB=${DB:-$tmp/dashboard.sqlite}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

port=$(free_port)
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
if [ ! -s "$DB" ]; then echo "filling $DB (about two minutes)…" >&2; fi
started=$(date +%s)
"$BIN" "$DB" --http "127.0.0.1:$port" --password "$password" --devices 20 --points 10 --days 30 > "$tmp/server.log" 2>&1 &
pids+=("$!")
until grep -q "dashboard on" "$tmp/server.log"; do
    kill -0 "${pids[0]}" 2>/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
    sleep 1
done
echo "store ready in $(( $(date +%s) - started )) s: $(du -h "$DB" | cut -f1) in $DB" >&2
base="http://127.0.0.1:$port"
curl -fsS -o /dev/null -c "$tmp/cookies" --data-urlencode username=bench --data-urlencode "password=$password" "$base/login"
cookie=$(awk '$6 == "mizumori_session" {print $6 "=" $7}' "$tmp/cookies")
[ -n "$cookie" ] || { echo "login failed" >&2; exit 1; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "wrk -t$THREADS -c$CONNS -d${SECS}s --latency, logged in as an engineer${CARGO_FLAGS:+; cargo $CARGO_FLAGS}"
# The machine may be shared: the 1-minute load average before and after each page says how much.
printf '%-44s %9s %9s %9s %9s %9s %9s %11s\n' page first "req/s" p50 p90 p99 bytes load
for path in "/" "/devices/d005/p03/chart.svg?range=30d&w=720" "/risk"; do
    read -r bytes first < <(curl -fsS -o /dev/null -w '%{size_download} %{time_total}\n' -H "Cookie: $cookie" "$base$path")
    # Warm the page cache and the connection pool before measuring.
    wrk -t"$THREADS" -c"$CONNS" -d3s -H "Cookie: $cookie" "$base$path" > /dev/null
    load_before=$(cut -d' ' -f1 /proc/loadavg)
    wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency -H "Cookie: $cookie" "$base$path" > "$tmp/wrk.txt"
    load="$load_before-$(cut -d' ' -f1 /proc/loadavg)"
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$tmp/wrk.txt")
    [ -z "$non2xx" ] || { cat "$tmp/wrk.txt" >&2; echo "errors on $path" >&2; exit 1; }
    awk -v path="$path" -v bytes="$bytes" -v first="$first" -v load="$load" '
        $1 == "50%" {p50 = $2} $1 == "90%" {p90 = $2} $1 == "99%" {p99 = $2}
        $1 == "Requests/sec:" {rps = $2}
        END {printf "%-44s %7.1fms %9s %9s %9s %9s %9s %11s\n", path, first * 1000, rps, p50, p90, p99, bytes, load}' "$tmp/wrk.txt"
done
